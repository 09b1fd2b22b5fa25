//! SMTP, IMAP and POP3: the greeting, the capabilities (STARTTLS offered?), and goodbye.
//!
//! What canreach sends, and how each ends (RFC 5321, RFC 3501/9051, RFC 1939/2449/2595):
//!
//! | | greeting | capabilities | STARTTLS, when asked and offered | goodbye |
//! |---|---|---|---|---|
//! | SMTP | `220` ready; `421`/`554` refused | `EHLO <name>` | `STARTTLS` → `220` | `QUIT` → `221` |
//! | IMAP | `* OK`, `* PREAUTH`; `* BYE` refused | in the greeting's `[CAPABILITY …]`, else `a001 CAPABILITY` | `a002 STARTTLS` → `a002 OK` | `a003 LOGOUT` → `* BYE`, `a003 OK` |
//! | POP3 | `+OK`; `-ERR` refused | `CAPA` | `STLS` → `+OK` | `QUIT` → `+OK` |
//!
//! When STARTTLS is accepted the conversation stops there ([`Ending::HandedOver`]): the
//! caller makes the TLS handshake on the same stream. After a refusing greeting, SMTP's `554`
//! still gets `QUIT` (the server waits for it, RFC 5321 §3.1); `421`, `* BYE` and `-ERR` are
//! followed by the server's close. No login is ever attempted.
//!
//! Measured on OpenSMTPD 6.8 and Dovecot 2.3 (fixtures in `tests/fixtures/protocols/mail/`).

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use super::wire::Wire;
use super::{Ending, Failed, WireFailure, text};

/// The longest line read (RFC 5321 allows 512 for a reply line; IMAP capability lists run
/// longer).
pub(crate) const LINE_MAX: usize = 2048;
/// The most lines of one reply read.
pub(crate) const LINES_MAX: usize = 64;
/// The most of one line's text kept.
pub(crate) const TEXT_MAX: usize = 512;
/// The most capabilities kept.
pub(crate) const CAPABILITIES_MAX: usize = 64;
/// The most of one capability kept.
const CAPABILITY_MAX: usize = 128;

/// Which mail protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mail {
    Smtp,
    Imap,
    Pop3,
}

/// The name canreach gives in `EHLO`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EhloName {
    /// A domain name (kept to letters, digits, `-` and `.`).
    Domain(String),
}

impl EhloName {
    /// The text after `EHLO `.
    pub(crate) fn render(&self) -> String {
        match self {
            EhloName::Domain(d) => {
                let clean: String = d
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '.')
                    .take(255)
                    .collect();
                if clean.is_empty() {
                    "canreach.invalid".into()
                } else {
                    clean
                }
            }
        }
    }
}

/// What to ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MailRequest {
    pub ehlo: EhloName,
    /// Ask for STARTTLS when offered, and hand the stream back for TLS.
    pub starttls: bool,
}

/// Whether the greeting welcomes the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ready {
    /// `220`, `* OK`, `+OK`.
    Welcome,
    /// `* PREAUTH`: the connection is already logged in (IMAP).
    Preauth,
    /// `421`, `554`, `* BYE`, `-ERR`: the server refuses (busy, blocked, or no service).
    Refused,
}

/// The greeting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Greeting {
    pub ready: Ready,
    /// SMTP's reply code.
    pub code: Option<u16>,
    /// Each line's text (after the code or status), ≤ [`TEXT_MAX`] bytes each.
    pub lines: Vec<String>,
}

/// The answer to STARTTLS/STLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartTls {
    /// Go ahead: the stream is handed over.
    Accepted,
    /// Refused (e.g. SMTP `454 TLS not available`): the code (SMTP) and text.
    Refused { code: Option<u16>, text: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailStep {
    Greeting,
    Capabilities,
    StartTls,
    Goodbye,
}

/// What the mail conversation learnt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailFacts {
    pub protocol: Mail,
    pub greeting: Option<Greeting>,
    /// The capabilities were asked and answered (POP3's `CAPA` and SMTP's `EHLO` can be
    /// refused by old servers).
    pub capabilities_known: bool,
    /// EHLO keywords, IMAP capabilities, CAPA lines: as the server spelled them.
    pub capabilities: Vec<String>,
    pub starttls_offered: bool,
    /// SMTP: the first line of the EHLO reply, where many servers name the address they saw
    /// (`… Hello canreach.invalid [198.18.0.2]`).
    pub ehlo_greeting: Option<String>,
    pub starttls: Option<StartTls>,
    pub failure: Option<Failed<MailStep>>,
    pub ended: Ending,
    pub elapsed: Duration,
}

/// Why a line is not this protocol's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NotMail;

/// An SMTP reply line: code, whether more lines follow (`250-`), the text.
pub(crate) fn parse_smtp_line(line: &[u8]) -> Result<(u16, bool, &[u8]), NotMail> {
    let (digits, rest) = line.split_at_checked(3).ok_or(NotMail)?;
    if !digits.iter().all(u8::is_ascii_digit) || !(b'2'..=b'5').contains(&digits[0]) {
        return Err(NotMail);
    }
    let code = digits
        .iter()
        .fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
    match rest.split_first() {
        None => Ok((code, false, b"")),
        Some((b' ', t)) => Ok((code, false, t)),
        Some((b'-', t)) => Ok((code, true, t)),
        _ => Err(NotMail),
    }
}

/// EHLO keywords (the reply's lines after the first) and whether STARTTLS is one.
pub(crate) fn ehlo_capabilities(lines: &[String]) -> (Vec<String>, bool) {
    let caps: Vec<String> = lines
        .iter()
        .skip(1)
        .take(CAPABILITIES_MAX)
        .map(|l| l.chars().take(CAPABILITY_MAX).collect())
        .collect();
    let starttls = caps.iter().any(|c| {
        c.split_ascii_whitespace()
            .next()
            .is_some_and(|k| k.eq_ignore_ascii_case("STARTTLS"))
    });
    (caps, starttls)
}

/// An IMAP untagged greeting: status, text, and the `[CAPABILITY …]` response code if any.
pub(crate) fn parse_imap_greeting(
    line: &[u8],
) -> Result<(Ready, String, Option<Vec<String>>), NotMail> {
    let rest = line.strip_prefix(b"* ").ok_or(NotMail)?;
    let (word, tail) = split_word(rest);
    let ready = match word.to_ascii_uppercase().as_slice() {
        b"OK" => Ready::Welcome,
        b"PREAUTH" => Ready::Preauth,
        b"BYE" => Ready::Refused,
        _ => return Err(NotMail),
    };
    let mut caps = None;
    if let Some(code) = tail.strip_prefix(b"[")
        && let Some(end) = code.iter().position(|&b| b == b']')
    {
        let (name, list) = split_word(&code[..end]);
        if name.eq_ignore_ascii_case(b"CAPABILITY") {
            caps = Some(words(list));
        }
    }
    Ok((ready, text(tail, TEXT_MAX), caps))
}

/// `* CAPABILITY …`: the list.
pub(crate) fn parse_imap_capability(line: &[u8]) -> Option<Vec<String>> {
    let rest = line.strip_prefix(b"* ")?;
    let (word, tail) = split_word(rest);
    word.eq_ignore_ascii_case(b"CAPABILITY")
        .then(|| words(tail))
}

/// A tagged completion `a001 OK …`: whether it is `OK`, and the text. `None`: not this tag's.
pub(crate) fn parse_imap_tagged(line: &[u8], tag: &str) -> Option<(bool, String)> {
    let rest = line.strip_prefix(tag.as_bytes())?.strip_prefix(b" ")?;
    let (word, tail) = split_word(rest);
    Some((word.eq_ignore_ascii_case(b"OK"), text(tail, TEXT_MAX)))
}

/// A POP3 status line: `+OK …` (true) or `-ERR …` (false), and the text.
pub(crate) fn parse_pop3_status(line: &[u8]) -> Result<(bool, String), NotMail> {
    if let Some(t) = line.strip_prefix(b"+OK") {
        return Ok((true, text(t.strip_prefix(b" ").unwrap_or(t), TEXT_MAX)));
    }
    if let Some(t) = line.strip_prefix(b"-ERR") {
        return Ok((false, text(t.strip_prefix(b" ").unwrap_or(t), TEXT_MAX)));
    }
    Err(NotMail)
}

fn split_word(b: &[u8]) -> (&[u8], &[u8]) {
    match b.iter().position(|&c| c == b' ') {
        Some(i) => (&b[..i], &b[i + 1..]),
        None => (b, &[]),
    }
}

fn words(b: &[u8]) -> Vec<String> {
    b.split(|&c| c == b' ')
        .filter(|w| !w.is_empty())
        .take(CAPABILITIES_MAX)
        .map(|w| text(w, CAPABILITY_MAX))
        .collect()
}

fn has(caps: &[String], word: &str) -> bool {
    caps.iter().any(|c| {
        c.split_ascii_whitespace()
            .next()
            .is_some_and(|k| k.eq_ignore_ascii_case(word))
    })
}

/// An SMTP reply: its code and every line's text.
async fn smtp_reply<S>(wire: &mut Wire<'_, S>) -> Result<(u16, Vec<String>), WireFailure>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut lines = Vec::new();
    loop {
        let line = wire.line(LINE_MAX).await?;
        let (code, more, t) = parse_smtp_line(&line).map_err(|_| stranger(&line))?;
        if lines.len() < LINES_MAX {
            lines.push(text(t, TEXT_MAX));
        } else {
            return Err(WireFailure::TooLarge);
        }
        if !more {
            return Ok((code, lines));
        }
    }
}

/// A line that is not this protocol's: itself is the fact (a TLS record says the port wants
/// TLS).
fn stranger(line: &[u8]) -> WireFailure {
    let first_bytes = line[..line.len().min(crate::session::FIRST_BYTES_MAX)].to_vec();
    if crate::session::looks_like_tls_record(&first_bytes) {
        WireFailure::ExpectsTls { first_bytes }
    } else {
        WireFailure::NotThisProtocol { first_bytes }
    }
}

/// Send `cmd` and read one line.
async fn ask_line<S>(wire: &mut Wire<'_, S>, cmd: &[u8]) -> Result<Vec<u8>, WireFailure>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    wire.send(cmd).await?;
    wire.line(LINE_MAX).await
}

/// The conversation for `protocol` (see the module's table).
pub(crate) async fn converse<S>(
    protocol: Mail,
    stream: &mut S,
    req: &MailRequest,
    deadline: Instant,
) -> MailFacts
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let start = Instant::now();
    let mut facts = MailFacts {
        protocol,
        greeting: None,
        capabilities_known: false,
        capabilities: Vec::new(),
        starttls_offered: false,
        ehlo_greeting: None,
        starttls: None,
        failure: None,
        ended: Ending::Closed,
        elapsed: Duration::ZERO,
    };
    let mut wire = Wire::new(stream, deadline);
    let r = match protocol {
        Mail::Smtp => smtp(&mut wire, req, &mut facts).await,
        Mail::Imap => imap(&mut wire, req, &mut facts).await,
        Mail::Pop3 => pop3(&mut wire, req, &mut facts).await,
    };
    if let Err((step, failure)) = r {
        facts.ended = match failure {
            WireFailure::NoReply => Ending::Deadline,
            _ if wire.peer_ended() => Ending::ByServer,
            _ => Ending::Closed,
        };
        facts.failure = Some(Failed { step, failure });
    }
    if facts.ended != Ending::HandedOver {
        wire.close().await;
    }
    facts.elapsed = start.elapsed();
    facts
}

type Step<T> = Result<T, (MailStep, WireFailure)>;

fn at<T>(step: MailStep, r: Result<T, WireFailure>) -> Step<T> {
    r.map_err(|f| (step, f))
}

async fn smtp<S>(wire: &mut Wire<'_, S>, req: &MailRequest, facts: &mut MailFacts) -> Step<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (code, lines) = at(MailStep::Greeting, smtp_reply(wire).await)?;
    let ready = if code == 220 {
        Ready::Welcome
    } else {
        Ready::Refused
    };
    facts.greeting = Some(Greeting {
        ready,
        code: Some(code),
        lines,
    });
    if ready == Ready::Refused {
        if code == 554 {
            // RFC 5321 §3.1: the server waits for QUIT after a 554 greeting.
            return quit_smtp(wire, facts).await;
        }
        facts.ended = Ending::ByServer;
        return Ok(());
    }
    let ehlo = format!("EHLO {}\r\n", req.ehlo.render());
    at(MailStep::Capabilities, wire.send(ehlo.as_bytes()).await)?;
    let (code, lines) = at(MailStep::Capabilities, smtp_reply(wire).await)?;
    if code == 250 {
        let (caps, starttls) = ehlo_capabilities(&lines);
        facts.ehlo_greeting = lines.first().cloned();
        facts.capabilities = caps;
        facts.starttls_offered = starttls;
        facts.capabilities_known = true;
    }
    if req.starttls && facts.starttls_offered {
        at(MailStep::StartTls, wire.send(b"STARTTLS\r\n").await)?;
        let (code, lines) = at(MailStep::StartTls, smtp_reply(wire).await)?;
        if code == 220 {
            facts.starttls = Some(StartTls::Accepted);
            facts.ended = Ending::HandedOver;
            return Ok(());
        }
        facts.starttls = Some(StartTls::Refused {
            code: Some(code),
            text: lines.join(" "),
        });
    }
    quit_smtp(wire, facts).await
}

async fn quit_smtp<S>(wire: &mut Wire<'_, S>, facts: &mut MailFacts) -> Step<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    at(MailStep::Goodbye, wire.send(b"QUIT\r\n").await)?;
    // The 221 is a courtesy: a server that closes at once has still heard QUIT.
    match smtp_reply(wire).await {
        Ok(_) | Err(WireFailure::Closed | WireFailure::Reset) => {
            facts.ended = Ending::Goodbye;
            Ok(())
        }
        Err(f) => Err((MailStep::Goodbye, f)),
    }
}

async fn imap<S>(wire: &mut Wire<'_, S>, req: &MailRequest, facts: &mut MailFacts) -> Step<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let line = at(MailStep::Greeting, wire.line(LINE_MAX).await)?;
    let (ready, t, caps) =
        parse_imap_greeting(&line).map_err(|_| (MailStep::Greeting, stranger(&line)))?;
    facts.greeting = Some(Greeting {
        ready,
        code: None,
        lines: vec![t],
    });
    if ready == Ready::Refused {
        facts.ended = Ending::ByServer;
        return Ok(());
    }
    if let Some(caps) = caps {
        facts.capabilities = caps;
        facts.capabilities_known = true;
    } else {
        at(
            MailStep::Capabilities,
            wire.send(b"a001 CAPABILITY\r\n").await,
        )?;
        for _ in 0..LINES_MAX {
            let line = at(MailStep::Capabilities, wire.line(LINE_MAX).await)?;
            if let Some(c) = parse_imap_capability(&line) {
                facts.capabilities = c;
                facts.capabilities_known = true;
            } else if parse_imap_tagged(&line, "a001").is_some() {
                break;
            }
        }
    }
    facts.starttls_offered = has(&facts.capabilities, "STARTTLS");
    if req.starttls && facts.starttls_offered {
        let line = at(
            MailStep::StartTls,
            ask_line(wire, b"a002 STARTTLS\r\n").await,
        )?;
        match parse_imap_tagged(&line, "a002") {
            Some((true, _)) => {
                facts.starttls = Some(StartTls::Accepted);
                facts.ended = Ending::HandedOver;
                return Ok(());
            }
            Some((false, text)) => facts.starttls = Some(StartTls::Refused { code: None, text }),
            None => return Err((MailStep::StartTls, stranger(&line))),
        }
    }
    at(MailStep::Goodbye, wire.send(b"a003 LOGOUT\r\n").await)?;
    for _ in 0..LINES_MAX {
        match wire.line(LINE_MAX).await {
            Ok(line) if parse_imap_tagged(&line, "a003").is_some() => break,
            Ok(_) => {}
            Err(WireFailure::Closed | WireFailure::Reset) => break,
            Err(f) => return Err((MailStep::Goodbye, f)),
        }
    }
    facts.ended = Ending::Goodbye;
    Ok(())
}

async fn pop3<S>(wire: &mut Wire<'_, S>, req: &MailRequest, facts: &mut MailFacts) -> Step<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let line = at(MailStep::Greeting, wire.line(LINE_MAX).await)?;
    let (ok, t) = parse_pop3_status(&line).map_err(|_| (MailStep::Greeting, stranger(&line)))?;
    facts.greeting = Some(Greeting {
        ready: if ok { Ready::Welcome } else { Ready::Refused },
        code: None,
        lines: vec![t],
    });
    if !ok {
        facts.ended = Ending::ByServer;
        return Ok(());
    }
    let line = at(MailStep::Capabilities, ask_line(wire, b"CAPA\r\n").await)?;
    let (ok, _) =
        parse_pop3_status(&line).map_err(|_| (MailStep::Capabilities, stranger(&line)))?;
    if ok {
        let mut ended = false;
        for _ in 0..LINES_MAX {
            let line = at(MailStep::Capabilities, wire.line(LINE_MAX).await)?;
            if line == b"." {
                ended = true;
                break;
            }
            if facts.capabilities.len() < CAPABILITIES_MAX {
                facts.capabilities.push(text(&line, CAPABILITY_MAX));
            }
        }
        if !ended {
            return Err((MailStep::Capabilities, WireFailure::TooLarge));
        }
        facts.capabilities_known = true;
    }
    facts.starttls_offered = has(&facts.capabilities, "STLS");
    if req.starttls && facts.starttls_offered {
        let line = at(MailStep::StartTls, ask_line(wire, b"STLS\r\n").await)?;
        match parse_pop3_status(&line) {
            Ok((true, _)) => {
                facts.starttls = Some(StartTls::Accepted);
                facts.ended = Ending::HandedOver;
                return Ok(());
            }
            Ok((false, text)) => facts.starttls = Some(StartTls::Refused { code: None, text }),
            Err(_) => return Err((MailStep::StartTls, stranger(&line))),
        }
    }
    at(MailStep::Goodbye, wire.send(b"QUIT\r\n").await)?;
    match wire.line(LINE_MAX).await {
        Ok(_) | Err(WireFailure::Closed | WireFailure::Reset) => {
            facts.ended = Ending::Goodbye;
            Ok(())
        }
        Err(f) => Err((MailStep::Goodbye, f)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::protocols::testing::{Act, fake_server, fixture, measure_bytes};

    fn lines(b: &[u8]) -> Vec<&[u8]> {
        b.split(|&c| c == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .collect()
    }

    #[test]
    fn smtp_lines() {
        let g = lines(fixture!("mail/smtp_greeting.bin"));
        assert_eq!(
            parse_smtp_line(g[0]),
            Ok((220, false, &b"server.test ESMTP OpenSMTPD"[..]))
        );
        let ehlo: Vec<String> = lines(fixture!("mail/smtp_ehlo.bin"))
            .iter()
            .map(|l| {
                let (code, _, t) = parse_smtp_line(l).unwrap();
                assert_eq!(code, 250);
                text(t, TEXT_MAX)
            })
            .collect();
        let (caps, starttls) = ehlo_capabilities(&ehlo);
        assert!(starttls);
        assert_eq!(
            caps,
            [
                "8BITMIME",
                "ENHANCEDSTATUSCODES",
                "SIZE 36700160",
                "DSN",
                "STARTTLS",
                "HELP"
            ]
        );
        assert!(
            ehlo[0].contains("[198.18.0.2]"),
            "the address the server saw"
        );
        assert_eq!(
            parse_smtp_line(lines(fixture!("mail/smtp_starttls.bin"))[0])
                .unwrap()
                .0,
            220
        );
        assert_eq!(parse_smtp_line(b"421 4.3.2 Too busy").unwrap().0, 421);
        assert_eq!(parse_smtp_line(b"SSH-2.0-x"), Err(NotMail));
        assert_eq!(parse_smtp_line(b"HTTP/1.1"), Err(NotMail));
        assert_eq!(parse_smtp_line(b"220x"), Err(NotMail));
        assert_eq!(parse_smtp_line(b"22"), Err(NotMail));
    }

    #[test]
    fn imap_lines() {
        let g = lines(fixture!("mail/imap_greeting.bin"));
        let (ready, t, caps) = parse_imap_greeting(g[0]).unwrap();
        assert_eq!(ready, Ready::Welcome);
        assert!(t.ends_with("Dovecot (Debian) ready."));
        let caps = caps.unwrap();
        assert!(has(&caps, "STARTTLS") && has(&caps, "LOGINDISABLED"));
        let c = lines(fixture!("mail/imap_capability.bin"));
        assert_eq!(parse_imap_capability(c[0]), Some(caps));
        assert_eq!(
            parse_imap_tagged(c[1], "a001"),
            Some((
                true,
                "Pre-login capabilities listed, post-login capabilities have more.".into()
            ))
        );
        assert_eq!(parse_imap_tagged(c[1], "a002"), None);
        let s = lines(fixture!("mail/imap_starttls.bin"));
        assert!(parse_imap_tagged(s[0], "a001").unwrap().0);
        let bye = parse_imap_greeting(b"* BYE Too many connections").unwrap();
        assert_eq!(bye.0, Ready::Refused);
        assert_eq!(
            parse_imap_greeting(b"* PREAUTH ok").unwrap().0,
            Ready::Preauth
        );
        assert_eq!(parse_imap_greeting(b"+OK pop3"), Err(NotMail));
    }

    #[test]
    fn pop3_lines() {
        let g = lines(fixture!("mail/pop3_greeting.bin"));
        assert_eq!(
            parse_pop3_status(g[0]),
            Ok((true, "Dovecot (Debian) ready.".into()))
        );
        assert_eq!(
            parse_pop3_status(b"-ERR [SYS/TEMP] Too many connections"),
            Ok((false, "[SYS/TEMP] Too many connections".into()))
        );
        assert_eq!(parse_pop3_status(b"* OK imap"), Err(NotMail));
    }

    #[test]
    fn ehlo_names() {
        assert_eq!(
            EhloName::Domain("a.b\r\nRCPT TO:<x>".into()).render(),
            "a.bRCPTTOx"
        );
        assert_eq!(EhloName::Domain("\r\n".into()).render(), "canreach.invalid");
    }

    proptest::proptest! {
        #[test]
        fn parsers_never_panic_nor_allocate_past_their_bound(
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..4 * LINE_MAX)
        ) {
            let used = measure_bytes(|| {
                let _ = parse_smtp_line(&bytes);
                let _ = parse_imap_greeting(&bytes);
                let _ = parse_imap_capability(&bytes);
                let _ = parse_imap_tagged(&bytes, "a001");
                let _ = parse_pop3_status(&bytes);
            });
            // A text and a capability list (3 bytes per replaced byte at worst).
            let bound = 3 * TEXT_MAX + CAPABILITIES_MAX * (3 * CAPABILITY_MAX + 32) + 1024;
            proptest::prop_assert!(used <= bound as u64, "{used}");
        }
    }

    fn request(starttls: bool) -> MailRequest {
        MailRequest {
            ehlo: EhloName::Domain("canreach.invalid".into()),
            starttls,
        }
    }

    async fn run(protocol: Mail, acts: Vec<Act>, starttls: bool) -> (MailFacts, Vec<u8>) {
        let (addr, server) = fake_server(acts).await;
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let facts = converse(
            protocol,
            &mut s,
            &request(starttls),
            Instant::now() + Duration::from_secs(5),
        )
        .await;
        drop(s);
        (facts, server.await.unwrap())
    }

    #[tokio::test]
    async fn smtp_greeting_ehlo_quit() {
        let ehlo = b"EHLO canreach.invalid\r\n";
        let (facts, got) = run(
            Mail::Smtp,
            vec![
                Act::Send(fixture!("mail/smtp_greeting.bin").to_vec()),
                Act::Read(ehlo.len()),
                Act::Send(fixture!("mail/smtp_ehlo.bin").to_vec()),
                Act::Read(6),
                Act::Send(fixture!("mail/smtp_quit.bin").to_vec()),
                Act::Close,
            ],
            false,
        )
        .await;
        assert_eq!(facts.failure, None);
        assert_eq!(facts.greeting.unwrap().code, Some(220));
        assert!(facts.starttls_offered);
        assert_eq!(facts.starttls, None);
        assert_eq!(facts.ended, Ending::Goodbye);
        assert_eq!(got, [&ehlo[..], b"QUIT\r\n"].concat());
    }

    #[tokio::test]
    async fn smtp_starttls_hands_over() {
        let (facts, got) = run(
            Mail::Smtp,
            vec![
                Act::Send(fixture!("mail/smtp_greeting.bin").to_vec()),
                Act::Read(18),
                Act::Send(fixture!("mail/smtp_ehlo.bin").to_vec()),
                Act::Read(10),
                Act::Send(fixture!("mail/smtp_starttls.bin").to_vec()),
            ],
            true,
        )
        .await;
        assert_eq!(facts.starttls, Some(StartTls::Accepted));
        assert_eq!(facts.ended, Ending::HandedOver);
        assert!(got.ends_with(b"STARTTLS\r\n"));
    }

    #[tokio::test]
    async fn smtp_421_greeting_is_refused() {
        let (facts, got) = run(
            Mail::Smtp,
            vec![
                Act::Send(b"421 4.7.0 mail.example Too many connections\r\n".to_vec()),
                Act::Close,
            ],
            true,
        )
        .await;
        let g = facts.greeting.unwrap();
        assert_eq!((g.ready, g.code), (Ready::Refused, Some(421)));
        assert_eq!(facts.ended, Ending::ByServer);
        assert!(got.is_empty());
    }

    #[tokio::test]
    async fn imap_greeting_with_capabilities_then_logout() {
        let (facts, got) = run(
            Mail::Imap,
            vec![
                Act::Send(fixture!("mail/imap_greeting.bin").to_vec()),
                Act::Read(13),
                Act::Send(fixture!("mail/imap_logout.bin").to_vec()),
                Act::Close,
            ],
            false,
        )
        .await;
        assert_eq!(facts.failure, None);
        assert!(facts.capabilities_known && facts.starttls_offered);
        assert_eq!(facts.ended, Ending::Goodbye);
        assert_eq!(got, b"a003 LOGOUT\r\n");
    }

    #[tokio::test]
    async fn imap_asks_capabilities_when_the_greeting_has_none() {
        let (facts, got) = run(
            Mail::Imap,
            vec![
                Act::Send(b"* OK IMAP4rev1 ready\r\n".to_vec()),
                Act::Read(17),
                Act::Send(fixture!("mail/imap_capability.bin").to_vec()),
                Act::Read(15),
                Act::Send(fixture!("mail/imap_starttls.bin").to_vec().replace_tag()),
            ],
            true,
        )
        .await;
        assert!(facts.capabilities_known);
        assert_eq!(facts.starttls, Some(StartTls::Accepted));
        assert_eq!(got, b"a001 CAPABILITY\r\na002 STARTTLS\r\n");
    }

    #[tokio::test]
    async fn pop3_capa_stls_quit() {
        let (facts, got) = run(
            Mail::Pop3,
            vec![
                Act::Send(fixture!("mail/pop3_greeting.bin").to_vec()),
                Act::Read(6),
                Act::Send(fixture!("mail/pop3_capa.bin").to_vec()),
                Act::Read(6),
                Act::Send(fixture!("mail/pop3_quit.bin").to_vec()),
                Act::Close,
            ],
            false,
        )
        .await;
        assert_eq!(facts.failure, None);
        assert!(facts.capabilities.iter().any(|c| c == "STLS"));
        assert!(facts.starttls_offered);
        assert_eq!(facts.ended, Ending::Goodbye);
        assert_eq!(got, b"CAPA\r\nQUIT\r\n");

        let (facts, _) = run(
            Mail::Pop3,
            vec![
                Act::Send(fixture!("mail/pop3_greeting.bin").to_vec()),
                Act::Read(6),
                Act::Send(fixture!("mail/pop3_capa.bin").to_vec()),
                Act::Read(6),
                Act::Send(fixture!("mail/pop3_stls.bin").to_vec()),
            ],
            true,
        )
        .await;
        assert_eq!(facts.starttls, Some(StartTls::Accepted));
        assert_eq!(facts.ended, Ending::HandedOver);
    }

    #[tokio::test]
    async fn pop3_err_greeting_and_a_stranger() {
        let (facts, _) = run(
            Mail::Pop3,
            vec![
                Act::Send(b"-ERR [SYS/TEMP] Too many connections\r\n".to_vec()),
                Act::Close,
            ],
            true,
        )
        .await;
        assert_eq!(facts.greeting.unwrap().ready, Ready::Refused);
        assert_eq!(facts.ended, Ending::ByServer);

        let (facts, _) = run(
            Mail::Pop3,
            vec![Act::Send(b"SSH-2.0-OpenSSH_9.2\r\n".to_vec()), Act::Close],
            true,
        )
        .await;
        let Some(Failed {
            step: MailStep::Greeting,
            failure: WireFailure::NotThisProtocol { first_bytes },
        }) = facts.failure
        else {
            panic!("{facts:?}")
        };
        assert!(first_bytes.starts_with(b"SSH-2.0"));
    }

    trait ReplaceTag {
        fn replace_tag(self) -> Vec<u8>;
    }

    impl ReplaceTag for Vec<u8> {
        /// The captured STARTTLS answer was to tag a001; this conversation's STARTTLS is a002.
        fn replace_tag(mut self) -> Vec<u8> {
            self[3] = b'2';
            self
        }
    }
}
