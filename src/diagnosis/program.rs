//! What the program behind an open port did with the connection: hung up on it (reset,
//! close), greeted with a refusal or a banner, or never replied to the client's first message.
//! Reads what the session stage saw before the client spoke (`crate::session::watch`) and its
//! TLS/HTTP answers; `docs/ground-truth/beyond-connect.md`.

use super::advice::{Machine, Step, StepKind};
use super::commands::Command;
use super::context::Ctx;
use super::finding::Severity;
use super::finding::{Finding, FindingId};
use super::local::{accepts, inspect_program, owner_first, restart, show};
use super::mtu::retry_words;
use super::outcome::{AddressResult, Evidence, Outcome, Verdict};
use super::proxy::{passed_proxy, peer, peer_machine, peer_port};
use super::words::fmt_duration;
use crate::escape::escape_bytes;
use crate::local::servers::CONTAINER_PROXIES;
use crate::session::SessionFacts;
use crate::session::http::HttpFailure;
use crate::session::tls::TlsFailure;
use crate::session::watch::NotAccepted;
use crate::session::watch::{BannerKind, First};

/// Who to ask about the program behind the port: its owner and logs, or, through a proxy, the
/// logs of the destination the proxy reached.
pub(super) fn program_steps(cx: &Ctx, r: &AddressResult, s: &SessionFacts) -> Vec<Step> {
    if passed_proxy(s) {
        vec![read_logs_on(peer_machine(cx, r, s))]
    } else {
        vec![who_owns(cx, r), read_logs(cx, r)]
    }
}

/// Who accepted for the port on this machine, when the local stage saw a proxy own it.
fn accepted_by(cx: &Ctx) -> String {
    let proxy = cx.facts.local.as_ref().and_then(|l| {
        l.listeners
            .iter()
            .filter_map(|x| x.process.as_ref())
            .find(|p| CONTAINER_PROXIES.contains(&p.name.as_str()))
    });
    match proxy {
        Some(p) => format!(
            " Here it is {} (pid {}), a container runtime's proxy, that accepted: the container \
             behind it is not serving.",
            p.name, p.pid
        ),
        None => String::new(),
    }
}

pub(super) fn who_owns(cx: &Ctx, r: &AddressResult) -> Step {
    Step::run(
        StepKind::CheckListening,
        "See which program owns the port (a proxy or load balancer accepts for a backend)",
        Command::SsListening { port: cx.port() },
        cx.server_of(r.address.ip()),
    )
}

pub(super) fn read_logs(cx: &Ctx, r: &AddressResult) -> Step {
    read_logs_on(cx.server_of(r.address.ip()))
}

pub(super) fn read_logs_on(on: Machine) -> Step {
    Step::about(
        StepKind::ReadLogs,
        "Read the logs of the program behind the port (and of its backend, when it is a \
         proxy): they say why it drops connections.",
        on,
    )
}

/// The kernel accepted; the program reset the connection at once.
pub(crate) fn accepted_then_reset(cx: &Ctx) -> Option<Finding> {
    let r = cx
        .results()
        .find(|r| r.evidence == Evidence::AcceptedThenReset)
        .or_else(|| {
            cx.session_where(|_, s| s.first == First::Reset)
                .map(|(r, _)| r)
        })?;
    Some(
        Finding::new(
            FindingId::AcceptedThenReset,
            format!(
                "{} accepted the connection on port {}, then reset it at once: the kernel \
                 completed the handshake, but the program behind the port (or a proxy in front \
                 of it — docker-proxy, kube-proxy, a load balancer — whose backend is down) \
                 dropped it. A network problem would not look like this.{}",
                r.address.ip(),
                cx.port(),
                accepted_by(cx)
            ),
        )
        .about(r.address)
        .explains(
            (cx.verdict == Verdict::ServiceError)
                .then_some("it resets the connection as soon as it is accepted"),
        )
        .steps([who_owns(cx, r), read_logs(cx, r)])
        .rules_out(&[StepKind::TracePath, StepKind::FindDropRule]),
    )
}

/// The kernel accepted; the program closed without a word.
pub(crate) fn accepted_then_closed(cx: &Ctx) -> Option<Finding> {
    let (r, s) = cx.session_where(|_, s| s.first == First::Closed)?;
    Some(
        Finding::new(
            FindingId::AcceptedThenClosed,
            format!(
                "{} accepted the connection on port {}, then closed it within {} without a \
                 word: the program behind the port (or a proxy whose backend is down) hangs up \
                 on every client. `nc -z` would call this port open.{}",
                r.address.ip(),
                cx.port(),
                fmt_duration(s.window),
                accepted_by(cx)
            ),
        )
        .about(r.address)
        .explains(
            (cx.verdict == Verdict::ServiceError)
                .then_some("it closes the connection as soon as it is accepted"),
        )
        .steps([who_owns(cx, r), read_logs(cx, r)])
        .rules_out(&[StepKind::TracePath, StepKind::FindDropRule]),
    )
}

/// A greeting that is a refusal: a MySQL error packet, an SMTP 421/554.
pub(crate) fn service_refuses(cx: &Ctx) -> Option<Finding> {
    let (r, s) = cx.session_where(|_, s| {
        matches!(
            &s.first,
            First::Banner {
                kind: BannerKind::MySqlError { .. },
                ..
            }
        ) || matches!(&s.first, First::Banner { kind: BannerKind::Coded { code, .. }, .. } if *code >= 400)
    })?;
    let First::Banner { kind, .. } = &s.first else {
        return None;
    };
    let (what, step) = match kind {
        BannerKind::MySqlError { code, message } if *code == 1130 => (
            format!("MySQL/MariaDB refuses this client (error {code}: \"{message}\")"),
            Step::about(
                StepKind::AllowPort,
                "On the database, allow this client's address: create the user for it (`CREATE \
                 USER 'app'@'ADDRESS' …` and `GRANT …`), or use an account whose host pattern \
                 matches this machine.",
                cx.server_of(r.address.ip()),
            ),
        ),
        BannerKind::MySqlError { code, message } => (
            format!(
                "MySQL/MariaDB answered with error {code} instead of a greeting (\"{message}\")"
            ),
            read_logs(cx, r),
        ),
        BannerKind::Coded { code, text } => (
            format!("the server greets with a refusal: {code} {text}"),
            read_logs(cx, r),
        ),
        _ => return None,
    };
    Some(
        Finding::new(
            FindingId::ServiceRefuses,
            format!(
                "{}: {what}. The network is fine; the service turns this client away.",
                r.address.ip()
            ),
        )
        .about(r.address)
        .explains((cx.verdict == Verdict::ServiceError).then_some("it refuses this client"))
        .steps([step])
        .rules_out(&[StepKind::TracePath, StepKind::FindDropRule]),
    )
}

/// Nothing came back after the client spoke (TLS ClientHello or HTTP request), or the TLS
/// answer stopped halfway; and a smaller MSS did not help.
pub(crate) fn no_reply(cx: &Ctx) -> Option<Finding> {
    let (r, s) = cx.session_where(|r, s| {
        // A connection this machine's program never took: `program_not_accepting` says why.
        r.outcome == Outcome::ServiceError
            && s.not_accepted.is_none()
            && (matches!(
                s.tls.as_ref().and_then(|t| t.failure.as_ref()),
                Some(TlsFailure::NoReply | TlsFailure::Stalled { .. })
            ) || matches!(
                s.http.as_ref().and_then(|h| h.failure.as_ref()),
                Some(HttpFailure::NoReply)
            ))
    })?;
    let (who, port) = (peer(cx, r, s), peer_port(cx, s));
    let tls = s.tls.as_ref().filter(|t| {
        matches!(
            t.failure,
            Some(TlsFailure::NoReply | TlsFailure::Stalled { .. })
        )
    });
    let message = match tls.map(|t| (t, t.failure.as_ref())) {
        Some((t, Some(TlsFailure::Stalled { received }))) => format!(
            "{who} accepted the connection and began its answer to the TLS ClientHello \
             ({received} bytes{}), then stopped: nothing more came in {}. The program behind \
             port {port} (or a TLS terminator in front of it) hangs in the middle of its \
             handshake.{}",
            t.first_answer
                .map(|a| format!(", after {}", fmt_duration(a)))
                .unwrap_or_default(),
            fmt_duration(t.elapsed),
            retry_words(s)
        ),
        Some((t, _)) => format!(
            "{who} accepted the connection, but nothing came back after its TLS ClientHello in \
             {}: the program behind port {port} is hung or overloaded, or speaks another \
             protocol and waits for it.{}",
            fmt_duration(t.elapsed),
            retry_words(s)
        ),
        None => format!(
            "{who} accepted the connection, but nothing came back after its HTTP request \
             (HEAD, then GET on a new connection): the program behind port {port} is hung or \
             overloaded, or speaks another protocol and waits for it."
        ),
    };
    let steps = program_steps(cx, r, s);
    Some(
        Finding::new(FindingId::NoReply, message)
            .about(r.address)
            .explains((cx.verdict == Verdict::ServiceError).then(|| {
                // Any address whose answer began and stopped: the program hangs halfway.
                let stalled = cx.session_where(|r, s| {
                    r.outcome == Outcome::ServiceError
                        && matches!(
                            s.tls.as_ref().and_then(|t| t.failure.as_ref()),
                            Some(TlsFailure::Stalled { .. })
                        )
                });
                if stalled.is_some() {
                    "it begins its answer, then stops"
                } else {
                    "it never replies"
                }
            }))
            .steps(steps)
            .rules_out(&[StepKind::TracePath, StepKind::FindDropRule]),
    )
}

/// The server's greeting, identified (an open port that speaks first).
pub(crate) fn service_banner(cx: &Ctx) -> Option<Finding> {
    let (r, s) = cx.session_where(|r, s| {
        r.outcome == Outcome::Open && matches!(s.first, First::Banner { .. })
    })?;
    let First::Banner { kind, bytes } = &s.first else {
        return None;
    };
    let what = match kind {
        BannerKind::Ssh { software, .. } => format!("an SSH server ({software})"),
        BannerKind::Smtp { greeting } => format!("an SMTP server ({greeting})"),
        BannerKind::Ftp { greeting } => format!("an FTP server ({greeting})"),
        BannerKind::Pop3 { greeting } => format!("a POP3 server ({greeting})"),
        BannerKind::Imap { greeting } => format!("an IMAP server ({greeting})"),
        BannerKind::MySql { server_version } => format!("MySQL/MariaDB {server_version}"),
        _ => format!(
            "something that greets with `{}`",
            escape_bytes(&bytes[..bytes.len().min(60)])
        ),
    };
    Some(
        Finding::new(
            FindingId::ServiceBanner,
            format!("{} port {} is {what}.", r.address.ip(), cx.port()),
        )
        .about(r.address),
    )
}

/// A program on this machine did not take the connection within the watch for the accept
/// (`session::watch::ACCEPT_WAIT`): the kernel completed the handshake, and the connection
/// waits in the listener's accept queue — clients connect, then hang. Named with the program
/// (from the listener table), its queue, and whether its threads were all asleep (it does not
/// call `accept()`) or running (too busy to).
pub(crate) fn program_not_accepting(cx: &Ctx) -> Option<Finding> {
    let (a, n) = cx.facts.addresses.iter().find_map(|a| {
        let n = a.facts.session.as_ref()?.not_accepted.as_ref()?;
        Some((a.result.address, n))
    })?;
    let listener = cx
        .facts
        .local
        .as_ref()
        .and_then(|l| l.listeners.iter().find(|x| accepts(x, a.ip())));
    let who = match listener {
        Some(x) => format!("{} listens on {}", owner_first(x), show(x)),
        // The sentence goes on ", but did not take the connection".
        None => format!("A program listens on {a}"),
    };
    let mut steps: Vec<Step> = inspect_program(listener).into_iter().collect();
    steps.push(Step::run(
        StepKind::WatchQueue,
        "Watch its queue: a Recv-Q that stays above 0 means connections wait unaccepted",
        Command::SsQueue { port: a.port() },
        Machine::This,
    ));
    steps.push(if n.cut_short {
        Step::run(
            StepKind::RerunLonger,
            "Check again with a longer deadline",
            Command::Canreach {
                options: "--timeout 10s",
                args: cx.checked().input.clone(),
            },
            Machine::This,
        )
    } else {
        restart(
            listener,
            "Restart the program once you know why it stopped accepting (its logs say more); if \
             it is only overloaded, give it more workers.",
        )
    });
    Some(
        Finding::new(FindingId::ProgramNotAccepting, not_accepting_words(&who, n))
            // Cut short by the deadline, it is no proof yet: a warning, as the catalog says.
            .severity(if n.cut_short {
                Severity::Warning
            } else {
                Severity::Error
            })
            .steps(steps)
            .explains(
                (cx.verdict == Verdict::ServiceError)
                    .then_some("it does not take the connection (no accept)"),
            )
            // It listens, and the handshake completed: nothing drops packets, nothing to find.
            .rules_out(&[
                StepKind::FindDropRule,
                StepKind::FindRejectRule,
                StepKind::CheckLocalOutput,
                StepKind::TracePath,
                StepKind::TryOtherPort,
                StepKind::AskOwners,
                StepKind::CheckListening,
            ]),
    )
}

/// `program_not_accepting`'s words: how long the connection waited, the queue, and whether the
/// program slept (hung) or ran (too busy).
fn not_accepting_words(who: &str, n: &NotAccepted) -> String {
    let waited = fmt_duration(n.waited);
    // This check's own connections wait there too (the probe's, closed, and this one).
    let queue = match (n.queued, n.backlog) {
        (Some(q), Some(b)) => format!(" ({q} waiting, this check's among them; room for {b})"),
        (Some(q), None) => format!(" ({q} waiting, this check's among them)"),
        _ => String::new(),
    };
    if n.cut_short {
        return format!(
            "{who}, but had not taken the connection when the deadline ended the watch after \
             {waited}{queue}; a program is given {} before it is said not to take connections.",
            fmt_duration(crate::session::watch::ACCEPT_WAIT)
        );
    }
    let why = match n.asleep {
        Some(true) => {
            "Every thread of it was asleep meanwhile: it is not calling accept() — hung, or \
             stuck waiting on something else."
        }
        Some(false) => {
            "Its threads were running meanwhile: it (or this machine) is too busy to take new \
             connections."
        }
        None => "It is hung or too busy.",
    };
    format!(
        "{who}, but did not take the connection: it waited {waited} in the accept queue{queue} \
         without an accept(). The kernel completes the handshake by itself, so clients connect \
         — and then hang. {why}"
    )
}
