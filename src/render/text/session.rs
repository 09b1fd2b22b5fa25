//! The text report's lines for one address's session (`label`, text): how the program took the
//! connection, its greeting, the proxy's tunnel, TLS, the reduced-MSS retry, HTTP.

use crate::diagnosis::http::http_words;
use crate::diagnosis::mtu::mss_failure_words;
use crate::diagnosis::tls::names;
use crate::diagnosis::words::fmt_rounded;
use crate::diagnosis::words::{bounded, io_words};
use crate::diagnosis::{errno_name, errno_text, fmt_duration};
use crate::escape::escape_bytes;
use crate::facts::utc;
use crate::session::http::{HttpFacts, HttpFailure};
use crate::session::stage::MssRetry;
use crate::session::tls::TlsFacts;
use crate::session::watch::First;
use crate::session::{SessionFacts, ViaProxy};

/// The lines a report shows for one address's session: `(label, text)`, raw (the renderer
/// escapes them).
pub(crate) fn lines(s: &SessionFacts) -> Vec<(&'static str, String)> {
    [
        first_look(s),
        accepted(s),
        proxy(s),
        s.tls.as_ref().map(|t| ("tls", tls_line(t))),
        s.mss_retry.as_ref().map(|r| ("mss", mss_line(r))),
        s.http.as_ref().map(|h| ("http", http_line(h))),
        s.service
            .as_ref()
            .map(|svc| ("service", crate::diagnosis::service::said_line(svc))),
        // Its verdict on the certificate is no finding here: only that TLS answered.
        s.tls_confirm.as_ref().map(|t| {
            let line = tls_line(t).replace("failed (see below)", "not accepted here");
            ("tls check", format!("second connection: {line}"))
        }),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// What the connection brought before the client spoke: a hang-up, a greeting, an error.
fn first_look(s: &SessionFacts) -> Option<(&'static str, String)> {
    match &s.first {
        First::Reset => Some(("after", "accepted, then reset at once".to_string())),
        First::Closed => Some(("after", "accepted, then closed without a word".to_string())),
        First::Banner { bytes, .. } => {
            let line = bytes.split(|b| *b == b'\n').next().unwrap_or(&[]);
            Some(("greeting", escape_bytes(&line[..line.len().min(100)])))
        }
        First::Error { errno } => Some(("after", socket_error_words(*errno))),
        First::Silent | First::Unwatched => None,
    }
}

/// On this machine: when the program took the connection, and how long it was watched.
fn accepted(s: &SessionFacts) -> Option<(&'static str, String)> {
    let a = s.accepted?;
    let line = match s.waiting_for_client {
        Some(r) => format!(
            "the program accepted the connection after {}; after {} it was waiting for the \
             client to speak",
            fmt_duration(a),
            fmt_duration(r)
        ),
        None => format!(
            "the program accepted the connection after {}; watched it for {}",
            fmt_duration(a),
            fmt_rounded(s.window)
        ),
    };
    Some(("accepted", line))
}

/// How the session went through the proxy.
fn proxy(s: &SessionFacts) -> Option<(&'static str, String)> {
    let line = match s.via.as_ref()? {
        ViaProxy::Tunnel(c) => {
            let what = match (&c.response, &c.failure) {
                (Some(r), _) => format!("{} {}", r.status, bounded(&r.reason, 80)),
                (None, Some(f)) => http_failure_words(f),
                (None, None) => "nothing".into(),
            };
            format!(
                "CONNECT {} → {what} in {}",
                c.authority,
                fmt_duration(c.elapsed)
            )
        }
        ViaProxy::Forward => "request sent to the proxy in absolute form".into(),
    };
    Some(("proxy", line))
}

/// The reduced-MSS connection beside a stalled handshake.
fn mss_line(r: &MssRetry) -> String {
    let what = match (&r.connect_error, &r.tls) {
        (Some(e), _) => mss_failure_words(*e),
        (None, Some(t)) if t.failure.is_none() => {
            format!("handshake completed in {}", fmt_duration(t.elapsed))
        }
        (None, Some(t)) => tls_line(t),
        (None, None) => "not tried".into(),
    };
    format!(
        "second try with MSS {}, opened after {}: {what}",
        r.mss,
        fmt_duration(r.opened)
    )
}

fn http_line(h: &HttpFacts) -> String {
    let what = match (&h.response, &h.failure) {
        (Some(r), _) => http_words(r),
        (None, Some(f)) => http_failure_words(f),
        (None, None) => "nothing".into(),
    };
    format!(
        "{} → {what} in {}",
        h.method.as_str(),
        fmt_duration(h.elapsed)
    )
}

/// A socket error before the client spoke, from the one errno table.
fn socket_error_words(errno: Option<i32>) -> String {
    match errno {
        Some(e) => format!("socket error: {} ({})", errno_text(e), errno_name(e)),
        None => "socket error (the system gave no error number)".into(),
    }
}

fn http_failure_words(f: &HttpFailure) -> String {
    match f {
        HttpFailure::NoReply => "no answer".into(),
        HttpFailure::Closed => "closed without an answer".into(),
        HttpFailure::Reset => "reset instead of an answer".into(),
        HttpFailure::ExpectsTls { .. } => "a TLS record: the port speaks TLS".into(),
        HttpFailure::NotHttp { .. } => "not HTTP".into(),
        HttpFailure::Truncated { .. } => "an answer cut short".into(),
        HttpFailure::TooLarge => "headers over 64 KiB".into(),
        HttpFailure::Io { errno } => io_words(*errno),
    }
}

fn tls_line(t: &TlsFacts) -> String {
    use crate::session::tls::TlsVersion;
    let version = match t.version {
        Some(TlsVersion::Tls12) => "TLS 1.2".to_string(),
        Some(TlsVersion::Tls13) => "TLS 1.3".to_string(),
        Some(TlsVersion::Other(v)) => format!("TLS 0x{v:04x}"),
        None => "no session".to_string(),
    };
    let mut parts = vec![version];
    if let Some(c) = &t.cipher_suite {
        parts.push(c.clone());
    }
    if let Some(a) = &t.alpn {
        parts.push(format!("ALPN {}", String::from_utf8_lossy(a)));
    }
    if let Some(leaf) = t.chain.first() {
        parts.push(format!(
            "certificate for {}, valid until {}",
            names(leaf),
            utc(leaf.not_after)
        ));
    }
    if t.failure.is_some() {
        parts.push("failed (see below)".into());
    }
    if t.unverified.is_some() {
        parts.push("certificate NOT VERIFIED (--insecure)".into());
    }
    format!("{} in {}", parts.join("; "), fmt_duration(t.elapsed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::mss::MssFailure;
    use std::time::Duration;

    /// A session watched for 8 ms that saw nothing.
    fn session() -> SessionFacts {
        let address = "198.18.0.8:3128".parse().unwrap();
        SessionFacts::new(address, Duration::from_millis(8), First::Silent)
    }

    #[test]
    fn http_io_errors_are_worded_from_the_errno_table() {
        // The fact holds an errno, never the OS's sentence; the words come from the one table.
        assert_eq!(
            http_failure_words(&HttpFailure::Io {
                errno: Some(libc::ENOBUFS)
            }),
            "No buffer space available (ENOBUFS)"
        );
        assert_eq!(
            http_failure_words(&HttpFailure::Io {
                errno: Some(libc::EPIPE)
            }),
            "Broken pipe"
        );
        let none = http_failure_words(&HttpFailure::Io { errno: None });
        assert_eq!(none, "an I/O error without an error number");
        assert!(!none.contains("os error"));
    }

    #[test]
    fn socket_errors_are_worded_from_the_errno_table() {
        assert_eq!(
            socket_error_words(Some(libc::EHOSTUNREACH)),
            "socket error: No route to host (EHOSTUNREACH)"
        );
        assert!(socket_error_words(None).starts_with("socket error"));
        assert_eq!(
            mss_failure_words(MssFailure::Connect {
                errno: Some(libc::ECONNREFUSED)
            }),
            "could not connect: Connection refused (ECONNREFUSED)"
        );
        assert_eq!(
            mss_failure_words(MssFailure::TimedOut),
            "could not connect before the deadline"
        );
        assert!(
            mss_failure_words(MssFailure::SetMss {
                errno: Some(libc::EINVAL)
            })
            .contains("EINVAL")
        );
    }

    #[test]
    fn the_accept_line_says_when_the_program_waited_for_the_client() {
        let mut s = session();
        s.accepted = Some(Duration::from_micros(300));
        let line = |s: &SessionFacts| {
            lines(s)
                .into_iter()
                .find(|(k, _)| *k == "accepted")
                .map(|(_, v)| v)
        };
        assert_eq!(
            line(&s).as_deref(),
            Some("the program accepted the connection after 0.3 ms; watched it for 8 ms")
        );
        s.waiting_for_client = Some(Duration::from_micros(1200));
        assert_eq!(
            line(&s).as_deref(),
            Some(
                "the program accepted the connection after 0.3 ms; after 1.2 ms it was waiting \
                 for the client to speak"
            )
        );
    }
}
