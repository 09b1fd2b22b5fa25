//! Stage 0: turn what the user typed into a [`Target`] (a host and a [`Port`]).
//!
//! Accepts `host PORT`, `host:port`, `[v6]:port`, bare IPv6 literals and URLs
//! (`postgres://u@db:5432/x`, `https://h/`). Every rejection is a [`TargetError`]
//! whose `Display` is the one line the user sees before exit code 2, so each
//! message says what was wrong *and* what was expected.
//!
//! The argument is untrusted text: it may hold credentials (`postgres://u:pw@db`,
//! `https://h/?token=…`) and terminal control sequences. Nothing of a `Target` or a
//! `TargetError` keeps either: secrets are masked ([`mask_secrets`]) and control characters
//! escaped ([`crate::escape`]) wherever the typed text is kept for display, and a target with
//! control characters is refused. `Target` keeps no copy of the URL as typed: no stage needs
//! it (the check is TCP only); a future HTTP check should take it from the command line, in a
//! type that is neither `Serialize` nor `Debug`-printed.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

use thiserror::Error;

use crate::escape::{escape, needs_escape};
pub(crate) use crate::services::Port;
use crate::services::Services;

/// The host half of a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// An address literal: no DNS is involved.
    Ip(IpAddr),
    /// A name to resolve, as typed (case kept; a trailing dot kept: it means "no search domains").
    Name(String),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Ip(ip) => ip.fmt(f),
            Host::Name(n) => f.write_str(n),
        }
    }
}

/// How the port was chosen; shown so "why 5432?" never needs asking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortSource {
    /// A number the user typed.
    Number,
    /// A service name looked up in /etc/services (or the built-in table).
    Service,
    /// The usual port of a URL's scheme.
    Scheme,
}

/// What to check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The words as typed, for the report — with secrets masked (`postgres://u:***@db/x`,
    /// `?token=***`), control characters escaped, and at most [`MAX_ECHO`] characters.
    pub input: String,
    pub host: Host,
    pub port: Port,
    pub port_source: PortSource,
    /// The port's service name (/etc/services), for the report: "5432 (postgresql)".
    pub service: Option<String>,
    /// `canreach :PORT`: "what listens on PORT here?" — checks `localhost` and inspects this
    /// machine.
    pub here: bool,
    /// For a URL target: its scheme and path (never the user, password, query or fragment:
    /// the path is what an HTTP check asks for, and a query may carry a token).
    pub url: Option<UrlParts>,
    /// TCP (a connect), or UDP (`-u`, `udp://`: a datagram and its answer).
    pub transport: Transport,
}

/// What a target is checked over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum Transport {
    #[default]
    Tcp,
    Udp,
}

impl Transport {
    pub(crate) fn is_udp(self) -> bool {
        self == Transport::Udp
    }

    /// As in the JSON (`target.transport`).
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
        }
    }
}

/// What an application-level check needs of a URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlParts {
    /// Lower-case, as the URL parser gives it (`https`, `postgres`).
    pub scheme: String,
    /// The path, `/` at least.
    pub path: String,
    /// The user the URL names (`postgres://alice@db/`), percent-decoded: a database
    /// conversation introduces itself with it. Never the password, which is not kept.
    pub user: Option<String>,
    /// PostgreSQL's `sslmode` query parameter (`require`, `verify-full` …), lower-case: the
    /// one query parameter kept (a query may carry a token).
    pub sslmode: Option<String>,
}

impl Target {
    /// `host:port` as a person writes it (brackets around IPv6).
    pub(crate) fn display(&self) -> String {
        match self.host {
            Host::Ip(IpAddr::V6(ip)) => format!("[{ip}]:{}", self.port),
            _ => format!("{}:{}", self.host, self.port),
        }
    }
}

/// Everything that can be wrong with the input. Each message is one line.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum TargetError {
    #[error("no host given: write a name or address, e.g. `canreach db.example.com 5432`")]
    EmptyHost,
    #[error("no port given for {host}: add one, e.g. `canreach {host} 443` or `canreach {joined}`")]
    MissingPort {
        host: String,
        /// `host:443`, or `[v6]:443`.
        joined: String,
    },
    #[error("port 0 cannot be connected to: ports go from 1 to 65535")]
    PortZero,
    #[error("port {0} is out of range: ports go from 1 to 65535")]
    PortOutOfRange(String),
    #[error(
        "unknown port or service name `{0}`: give a number from 1 to 65535 or a name from /etc/services"
    )]
    UnknownService(String),
    #[error("two different ports given ({0} and {1}): give the port once")]
    ConflictingPorts(u16, u16),
    #[error("host name is {0} characters long: a DNS name has at most 253")]
    NameTooLong(usize),
    #[error("`{name}` is not a valid host name: {why}")]
    InvalidName { name: String, why: &'static str },
    #[error("`{0}` has an unclosed `[`: write an IPv6 address as [2001:db8::1]:443")]
    UnclosedBracket(String),
    #[error("`{0}` is not an IPv6 address (inside [ ] only an IPv6 address may stand)")]
    BadBracketAddress(String),
    #[error("unexpected text `{0}` after `]`: expected `:PORT` or nothing")]
    AfterBracket(String),
    #[error("`{0}` is not a valid URL: {1}")]
    BadUrl(String, String),
    #[error("URL `{0}` has no host")]
    UrlWithoutHost(String),
    #[error("URL scheme `{0}` has no usual port: give one, e.g. `{0}://host:PORT`")]
    UnknownScheme(String),
    #[error("IPv6 zone `%{0}` is not supported: use a global or unique-local address")]
    ZoneUnsupported(String),
    #[error(
        "`{0}` contains a control or invisible character: type the host and port as plain text"
    )]
    ControlCharacter(String),
    /// `u:pw@host`, `root@db:22`: a user (and password) before the host, without a URL scheme.
    #[error(
        "`{typed}` names a user before `@`: a target is only a host and a port, e.g. `canreach {host}`"
    )]
    UserInfo { typed: String, host: String },
}

/// Longest echo of typed text kept for the report or an error message, in characters.
pub(crate) const MAX_ECHO: usize = 200;

/// Typed text as it may be shown: secrets masked, control characters escaped, cut to
/// [`MAX_ECHO`] characters (`…` when cut). Every `TargetError` holding typed text holds this.
pub(crate) fn shown(s: &str) -> String {
    let masked = mask_secrets(s);
    let escaped = escape(&masked);
    match escaped.char_indices().nth(MAX_ECHO) {
        Some((i, _)) => format!("{}…", &escaped[..i]),
        None => escaped.into_owned(),
    }
}

// The masking of secrets lives in `crate::secrets`; this name stays for the callers that
// knew it here.
pub(crate) use crate::secrets::mask as mask_secrets;

/// Longest DNS name (RFC 1035, without the trailing dot).
const MAX_NAME: usize = 253;
const MAX_LABEL: usize = 63;

/// Parse the command line's TARGET and optional PORT.
pub fn parse(target: &str, port: Option<&str>, services: &Services) -> Result<Target, TargetError> {
    let input = shown(&match port {
        Some(p) => format!("{target} {p}"),
        None => target.to_string(),
    });
    let target = target.trim();
    // Refused before anything else: no message should have to show such text, and a URL
    // parser would silently drop tabs and newlines (WHATWG), checking another name than the
    // one on screen.
    if target
        .chars()
        .chain(port.unwrap_or("").trim().chars())
        .any(is_control_like)
    {
        return Err(TargetError::ControlCharacter(input));
    }
    let explicit = port.map(|p| parse_port(p.trim(), services)).transpose()?;

    let here_port = target
        .strip_prefix(':')
        .filter(|p| !p.is_empty() && !p.contains(':'));
    let mut url_parts = None;
    let (host, embedded) = if let Some(p) = here_port {
        (
            Host::Name("localhost".into()),
            Some(parse_port(p, services)?),
        )
    } else if target.contains("://") {
        let (h, p, parts) = parse_url(target, services)?;
        url_parts = Some(parts);
        (h, Some(p))
    } else if let Some((_, host)) = target.rsplit_once('@') {
        // Split at `:` like `host:port`, `u:pw@host` would put the password in the port's
        // error message; no stage needs the user, so none is accepted.
        return Err(TargetError::UserInfo {
            typed: shown(target),
            host: shown(host),
        });
    } else {
        split_host_port(target, services)?
    };

    let (port, port_source) = match (explicit, embedded) {
        (Some(a), Some(b)) if a.0 != b.0 && b.1 != PortSource::Scheme => {
            return Err(TargetError::ConflictingPorts(b.0.get(), a.0.get()));
        }
        // An explicit PORT wins over a scheme's usual port (`canreach https://h 8443`).
        (Some(a), _) => a,
        (None, Some(b)) => b,
        (None, None) => {
            let joined = match host {
                Host::Ip(IpAddr::V6(ip)) => format!("[{ip}]:443"),
                _ => format!("{host}:443"),
            };
            return Err(TargetError::MissingPort {
                host: host.to_string(),
                joined,
            });
        }
    };
    // `udp://host:port` is a UDP target; any other scheme is spoken over TCP.
    let transport = match &url_parts {
        Some(u) if u.scheme == "udp" => Transport::Udp,
        _ => Transport::Tcp,
    };
    Ok(Target {
        input,
        host,
        port,
        port_source,
        service: services.name_of(port).map(str::to_string),
        here: here_port.is_some(),
        url: url_parts,
        transport,
    })
}

/// A port number or service name.
pub(crate) fn parse_port(s: &str, services: &Services) -> Result<(Port, PortSource), TargetError> {
    if s.is_empty() {
        return Err(TargetError::UnknownService(shown(s)));
    }
    let numeric = s.strip_prefix(['-', '+']).unwrap_or(s);
    if !numeric.is_empty() && numeric.bytes().all(|b| b.is_ascii_digit()) {
        if s.starts_with('-') {
            return Err(TargetError::PortOutOfRange(shown(s)));
        }
        return match numeric.parse::<u32>() {
            Ok(0) => Err(TargetError::PortZero),
            Ok(n) if n <= 65535 => Ok((Port::new(n as u16).expect("non-zero"), PortSource::Number)),
            _ => Err(TargetError::PortOutOfRange(shown(s))),
        };
    }
    services
        .port_of(s)
        .map(|p| (p, PortSource::Service))
        .ok_or_else(|| TargetError::UnknownService(shown(s)))
}

type Embedded = Option<(Port, PortSource)>;

/// `host`, `host:port`, `[v6]`, `[v6]:port`, or a bare IPv6 literal.
fn split_host_port(s: &str, services: &Services) -> Result<(Host, Embedded), TargetError> {
    if let Some(rest) = s.strip_prefix('[') {
        let Some(end) = rest.find(']') else {
            return Err(TargetError::UnclosedBracket(shown(s)));
        };
        let inside = &rest[..end];
        let after = &rest[end + 1..];
        let host = parse_v6_with_zone(inside)
            .map_err(|e| e.unwrap_or_else(|| TargetError::BadBracketAddress(shown(inside))))?;
        let port = match after {
            "" => None,
            _ => match after.strip_prefix(':') {
                Some(p) => Some(parse_port(p, services)?),
                None => return Err(TargetError::AfterBracket(shown(after))),
            },
        };
        return Ok((host, port));
    }
    if s.contains(']') {
        return Err(TargetError::InvalidName {
            name: shown(s),
            why: "a `]` without a matching `[`",
        });
    }
    match s.matches(':').count() {
        0 => Ok((parse_host(s)?, None)),
        1 => {
            let (h, p) = s.split_once(':').expect("one colon");
            if h.is_empty() {
                return Err(TargetError::EmptyHost);
            }
            Ok((parse_host(h)?, Some(parse_port(p, services)?)))
        }
        // Two or more colons: only an IPv6 literal can look like this.
        _ => match parse_v6_with_zone(s) {
            Ok(h) => Ok((h, None)),
            Err(Some(e)) => Err(e),
            Err(None) => Err(TargetError::InvalidName {
                name: shown(s),
                why: "too many `:` for host:port, and not an IPv6 address (write [v6addr]:port)",
            }),
        },
    }
}

/// An IPv6 literal. `Err(None)` means "not IPv6 at all"; `Err(Some(_))` a specific problem.
fn parse_v6_with_zone(s: &str) -> Result<Host, Option<TargetError>> {
    if let Some((addr, zone)) = s.split_once('%') {
        if addr.parse::<Ipv6Addr>().is_ok() {
            return Err(Some(TargetError::ZoneUnsupported(shown(zone))));
        }
        return Err(None);
    }
    s.parse::<Ipv6Addr>()
        .map(|ip| Host::Ip(IpAddr::V6(ip)))
        .map_err(|_| None)
}

/// A host name or an IP literal, validated so that garbage never reaches the resolver.
pub(crate) fn parse_host(s: &str) -> Result<Host, TargetError> {
    if s.is_empty() {
        return Err(TargetError::EmptyHost);
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(Host::Ip(ip));
    }
    validate_name(s)?;
    Ok(Host::Name(s.to_string()))
}

fn validate_name(s: &str) -> Result<(), TargetError> {
    let invalid = |why| TargetError::InvalidName {
        name: shown(s),
        why,
    };
    if s.chars().any(is_control_like) {
        return Err(invalid("it contains a control or invisible character"));
    }
    let body = s.strip_suffix('.').unwrap_or(s);
    if body.len() > MAX_NAME {
        return Err(TargetError::NameTooLong(body.len()));
    }
    if body.is_empty() {
        return Err(invalid("it has no labels"));
    }
    for label in body.split('.') {
        if label.is_empty() {
            return Err(invalid(
                "it has an empty label (two dots in a row, or a leading dot)",
            ));
        }
        if label.len() > MAX_LABEL {
            return Err(invalid("a label is longer than 63 characters"));
        }
        // Underscores are not legal in host names but real ones exist (`_dmarc`, AD names);
        // the resolver, not we, should be the judge of those.
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(invalid(
                "only letters, digits, `-` and `.` may appear in a host name",
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(invalid("a label may not start or end with `-`"));
        }
    }
    // `1.2.3` or `999.1.1.1`: all-numeric labels with a numeric top label is a mistyped address.
    if body
        .rsplit('.')
        .next()
        .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(invalid(
            "it looks like an IPv4 address but is not a valid one",
        ));
    }
    Ok(())
}

/// A URL: host from the authority, port from the URL or the scheme's usual port.
fn parse_url(
    s: &str,
    services: &Services,
) -> Result<(Host, (Port, PortSource), UrlParts), TargetError> {
    let url = url::Url::parse(s).map_err(|e| TargetError::BadUrl(shown(s), e.to_string()))?;
    let parts = UrlParts {
        scheme: url.scheme().to_string(),
        path: match url.path() {
            "" => "/".to_string(),
            p => p.to_string(),
        },
        user: Some(url.username())
            .filter(|u| !u.is_empty())
            .map(percent_decoded),
        sslmode: url
            .query_pairs()
            .find(|(k, _)| k == "sslmode")
            .map(|(_, v)| v.to_ascii_lowercase()),
    };
    let host = match url.host() {
        Some(url::Host::Ipv4(ip)) => Host::Ip(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => Host::Ip(IpAddr::V6(ip)),
        Some(url::Host::Domain("")) | None => {
            return Err(TargetError::UrlWithoutHost(shown(s)));
        }
        Some(url::Host::Domain(d)) => parse_host(d)?,
    };
    if let Some(p) = url.port() {
        let port = Port::new(p).ok_or(TargetError::PortZero)?;
        return Ok((host, (port, PortSource::Number), parts));
    }
    let scheme = url.scheme();
    let port = services
        .scheme_port(scheme)
        .ok_or_else(|| TargetError::UnknownScheme(shown(scheme)))?;
    Ok((host, (port, PortSource::Scheme), parts))
}

/// `%XX` sequences decoded (invalid UTF-8 replaced); anything else kept as it is.
pub(crate) fn percent_decoded(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (b[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A character no host, port or URL typed on purpose contains: C0/C1 controls, DEL, bidi and
/// invisible format characters.
fn is_control_like(c: char) -> bool {
    c.is_control() || needs_escape(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn svc() -> Services {
        Services::parse("ssh 22/tcp\nhttps 443/tcp\npostgresql 5432/tcp postgres\n")
    }
    fn p(t: &str, port: Option<&str>) -> Result<Target, TargetError> {
        parse(t, port, &svc())
    }
    fn hp(t: &str, port: Option<&str>) -> (Host, u16) {
        let t = p(t, port).unwrap();
        (t.host, t.port.get())
    }
    fn name(n: &str) -> Host {
        Host::Name(n.into())
    }

    #[test]
    fn accepts_every_documented_form() {
        assert_eq!(hp("db.internal", Some("5432")), (name("db.internal"), 5432));
        assert_eq!(hp("db.internal:5432", None), (name("db.internal"), 5432));
        assert_eq!(
            hp("127.0.0.1:80", None),
            (Host::Ip(Ipv4Addr::LOCALHOST.into()), 80)
        );
        assert_eq!(
            hp("[::1]:8080", None),
            (Host::Ip(Ipv6Addr::LOCALHOST.into()), 8080)
        );
        assert_eq!(
            hp("::1", Some("22")),
            (Host::Ip(Ipv6Addr::LOCALHOST.into()), 22)
        );
        assert_eq!(
            hp("[::1]", Some("ssh")),
            (Host::Ip(Ipv6Addr::LOCALHOST.into()), 22)
        );
        assert_eq!(hp("host", Some("https")), (name("host"), 443));
        assert_eq!(hp("FQDN.example.", Some("1")), (name("FQDN.example."), 1));
    }

    #[test]
    fn urls_take_their_port_or_the_schemes() {
        assert_eq!(hp("https://h/", None), (name("h"), 443));
        assert_eq!(hp("http://h", None), (name("h"), 80));
        assert_eq!(hp("postgres://u:pw@db:6543/x", None), (name("db"), 6543));
        assert_eq!(hp("postgres://u@db/x", None), (name("db"), 5432));
        assert_eq!(hp("redis://cache", None), (name("cache"), 6379));
        assert_eq!(
            hp("http://[2001:db8::1]:81/", None),
            (Host::Ip("2001:db8::1".parse().unwrap()), 81)
        );
        assert_eq!(
            p("https://h/", None).unwrap().port_source,
            PortSource::Scheme
        );
        // An explicit PORT overrides the scheme's usual one.
        assert_eq!(hp("https://h/", Some("8443")), (name("h"), 8443));
    }

    #[test]
    fn udp_urls_are_udp_targets_and_need_a_port() {
        let t = p("udp://ns1.lab:53", None).unwrap();
        assert_eq!(
            (t.host, t.port.get(), t.transport),
            (name("ns1.lab"), 53, Transport::Udp)
        );
        let t = p("udp://[fd00:2::2]:123", None).unwrap();
        assert_eq!(t.transport.as_str(), "udp");
        assert_eq!(
            p("udp://h", None),
            Err(TargetError::UnknownScheme("udp".into()))
        );
        // Every other form is TCP.
        for typed in ["h:53", "https://h/", "postgres://db/x", ":22"] {
            assert_eq!(p(typed, None).unwrap().transport, Transport::Tcp, "{typed}");
        }
    }

    #[test]
    fn a_urls_user_and_sslmode_are_kept_never_its_password() {
        let u = p(
            "postgres://app%40corp:s3cr3t@db/orders?sslmode=REQUIRE&x=1",
            None,
        )
        .unwrap()
        .url
        .unwrap();
        assert_eq!(u.user.as_deref(), Some("app@corp"));
        assert_eq!(u.sslmode.as_deref(), Some("require"));
        assert_eq!(u.path, "/orders");
        assert!(!format!("{u:?}").contains("s3cr3t"));
        let u = p("redis://:s3cr3t@cache", None).unwrap().url.unwrap();
        assert_eq!((u.user, u.sslmode), (None, None));
    }

    #[test]
    fn a_bare_port_means_this_machine() {
        let t = p(":5432", None).unwrap();
        assert_eq!(
            (t.host, t.port.get(), t.here),
            (name("localhost"), 5432, true)
        );
        assert!(!p("localhost:5432", None).unwrap().here);
    }

    #[test]
    fn service_names_resolve_through_etc_services() {
        let t = p("h", Some("postgres")).unwrap();
        assert_eq!((t.port.get(), t.port_source), (5432, PortSource::Service));
    }

    #[test]
    fn rejects_bad_ports() {
        assert_eq!(p("h", Some("0")), Err(TargetError::PortZero));
        assert_eq!(p("h:0", None), Err(TargetError::PortZero));
        assert_eq!(
            p("h", Some("-1")),
            Err(TargetError::PortOutOfRange("-1".into()))
        );
        assert_eq!(
            p("h", Some("65536")),
            Err(TargetError::PortOutOfRange("65536".into()))
        );
        assert_eq!(
            p("h", Some("99999999999999999999")),
            Err(TargetError::PortOutOfRange("99999999999999999999".into()))
        );
        assert_eq!(
            p("h", Some("nosuch")),
            Err(TargetError::UnknownService("nosuch".into()))
        );
        assert_eq!(p("h:", None), Err(TargetError::UnknownService("".into())));
        assert_eq!(
            p("h", None).unwrap_err().to_string(),
            "no port given for h: add one, e.g. `canreach h 443` or `canreach h:443`"
        );
        assert!(
            p("::1", None)
                .unwrap_err()
                .to_string()
                .ends_with("`canreach [::1]:443`")
        );
        assert_eq!(
            p("h:22", Some("23")),
            Err(TargetError::ConflictingPorts(22, 23))
        );
        assert!(p("h:22", Some("22")).is_ok());
    }

    #[test]
    fn rejects_bad_hosts() {
        assert_eq!(p("", Some("1")), Err(TargetError::EmptyHost));
        assert_eq!(p(":", None), Err(TargetError::EmptyHost));
        assert_eq!(p(":", Some("22")), Err(TargetError::EmptyHost));
        assert!(matches!(
            p("a..b", Some("1")),
            Err(TargetError::InvalidName { .. })
        ));
        assert!(matches!(
            p("-a.b", Some("1")),
            Err(TargetError::InvalidName { .. })
        ));
        assert!(matches!(
            p("a b", Some("1")),
            Err(TargetError::InvalidName { .. })
        ));
        assert!(matches!(
            p("999.1.1.1", Some("1")),
            Err(TargetError::InvalidName { .. })
        ));
        assert!(matches!(
            p("h:1:2", None),
            Err(TargetError::InvalidName { .. })
        ));
        assert_eq!(
            p(&"a".repeat(300), Some("1")),
            Err(TargetError::NameTooLong(300))
        );
        assert!(matches!(
            p(&"a".repeat(64), Some("1")),
            Err(TargetError::InvalidName { .. })
        ));
        assert_eq!(
            p("[::1", Some("1")),
            Err(TargetError::UnclosedBracket("[::1".into()))
        );
        assert_eq!(
            p("[nope]:1", None),
            Err(TargetError::BadBracketAddress("nope".into()))
        );
        assert_eq!(
            p("[::1]x", None),
            Err(TargetError::AfterBracket("x".into()))
        );
        assert!(matches!(
            p("::1]:1", None),
            Err(TargetError::InvalidName { .. })
        ));
        assert!(matches!(p("http://", None), Err(TargetError::BadUrl(..))));
        assert!(matches!(
            p("gopher2://h", None),
            Err(TargetError::UnknownScheme(_))
        ));
        assert!(matches!(
            p("fe80::1%nosuchif0", Some("1")),
            Err(TargetError::ZoneUnsupported(_))
        ));
    }

    #[test]
    fn every_error_is_one_line() {
        for (t, port) in [
            ("", Some("0")),
            ("a..b", Some("1")),
            ("[::1", None),
            ("http://", None),
        ] {
            let e = p(t, port).unwrap_err().to_string();
            assert!(!e.contains('\n'), "{e}");
        }
    }

    #[test]
    fn secrets_in_urls_are_masked() {
        for (typed, masked) in [
            ("postgres://u:pw@db:6543/x", "postgres://u:***@db:6543/x"),
            ("postgres://u@db/x", "postgres://u@db/x"),
            (
                "https://ghp_0123456789abcdefghij@github.com/o/r",
                "https://***@github.com/o/r",
            ),
            ("redis://:hunter2@cache", "redis://:***@cache"),
            ("https://u:p@ss@h/", "https://u:***@h/"),
            (
                "https://h/a?token=abc&page=2&X-Api-Key=k#x",
                "https://h/a?token=***&page=2&X-Api-Key=***#x",
            ),
            (
                "https://h/?access_token=1&apikey=2&api_key=3&password=4&passwd=5&pwd=6&secret=7&sig=8&signature=9&auth=10&key=11",
                "https://h/?access_token=***&apikey=***&api_key=***&password=***&passwd=***&pwd=***&secret=***&sig=***&signature=***&auth=***&key=***",
            ),
            (
                "https://h/cb#access_token=t&state=s",
                "https://h/cb#access_token=***&state=s",
            ),
            ("https://h/?q=token", "https://h/?q=token"),
            ("db.example.com 5432", "db.example.com 5432"),
            (
                "--url=mysql://root:pw@h/db other://a:b@c",
                "--url=mysql://root:***@h/db other://a:***@c",
            ),
        ] {
            assert_eq!(mask_secrets(typed), masked, "{typed}");
        }
        assert!(matches!(
            mask_secrets("https://h/?a=1"),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    #[test]
    fn no_field_of_a_target_holds_a_secret() {
        for typed in [
            "postgres://app:s3cr3tpw@db:6543/x",
            "https://db/?token=s3cr3tpw",
            "https://db/#access_token=s3cr3tpw",
        ] {
            let t = p(typed, None).unwrap();
            let all = format!("{t:?} {} {}", t.input, t.display());
            assert!(!all.contains("s3cr3tpw"), "{all}");
            assert!(t.input.contains("***"), "{}", t.input);
        }
        let t = p("postgres://app:s3cr3tpw@db/x", Some("6543")).unwrap();
        assert_eq!(t.input, "postgres://app:***@db/x 6543");
    }

    #[test]
    fn no_error_echoes_a_secret_or_a_control_character() {
        for (typed, port) in [
            ("postgres://u:s3cr3tpw@db:99999/x", None),
            ("postgres://u:s3cr3tpw@/x", None),
            ("nosuchscheme://u:s3cr3tpw@h/?token=s3cr3tpw", None),
            ("https://u:s3cr3tpw@h:bad/", None),
            ("a\x1b[31mb", Some("80")),
            ("db", Some("\x1b]0;pwned\x07")),
            ("exe\u{202e}txt.example", Some("1")),
            ("http://ex\nample.com", None),
            ("[::1\x1b", None),
        ] {
            let e = p(typed, port).unwrap_err().to_string();
            assert!(!e.contains("s3cr3tpw"), "{e}");
            assert!(!e.chars().any(is_control_like), "{e:?}");
        }
        assert_eq!(
            p("a\x1b[31mb", Some("80")),
            Err(TargetError::ControlCharacter("a\\x1b[31mb 80".into()))
        );
        // Directly, a name with a control character is refused with a reason.
        assert_eq!(
            parse_host("a\x1bb").unwrap_err().to_string(),
            "`a\\x1bb` is not a valid host name: it contains a control or invisible character"
        );
        // Whitespace around the words is still forgiven.
        assert!(p(" db\n", Some("5432\n")).is_ok());
    }

    #[test]
    fn a_user_before_the_host_is_refused_without_echoing_the_password() {
        let e = p("u:s3cr3tpw@host", None).unwrap_err();
        assert_eq!(
            e,
            TargetError::UserInfo {
                typed: "u:***@host".into(),
                host: "host".into()
            }
        );
        assert!(!e.to_string().contains("s3cr3tpw"), "{e}");
        let e = p("root@db:22", None).unwrap_err().to_string();
        assert!(e.contains("`canreach db:22`"), "{e}");
        // In a URL the user part is the URL's (masked in `input`).
        assert!(p("ssh://u:s3cr3tpw@host/", None).is_ok());
    }

    #[test]
    fn long_echoes_are_cut() {
        let e = p("h", Some(&"x".repeat(5000))).unwrap_err().to_string();
        assert!(e.len() < 400, "{}", e.len());
        assert!(e.contains('…'));
        let t = p(&format!("https://h/{}", "a".repeat(5000)), None).unwrap();
        assert_eq!(t.input.chars().count(), MAX_ECHO + 1);
    }

    proptest::proptest! {
        // Whatever is typed, parsing returns (never panics), and a success names a real port.
        #[test]
        fn never_panics(t in "\\PC{0,80}|[\\x00-\\x{300}]{0,20}", port in proptest::option::of("\\PC{0,12}")) {
            match p(&t, port.as_deref()) {
                Ok(t) => {
                    proptest::prop_assert!(t.port.get() >= 1);
                    proptest::prop_assert!(!t.input.chars().any(is_control_like));
                }
                Err(e) => {
                    let e = e.to_string();
                    proptest::prop_assert!(!e.chars().any(is_control_like), "{e:?}");
                }
            }
        }
        #[test]
        fn every_valid_port_number_round_trips(n in 1u16..=65535) {
            let t = p("h", Some(&n.to_string())).unwrap();
            proptest::prop_assert_eq!(t.port.get(), n);
        }
    }
}
