//! The proxy environment, read the way curl reads it, and an HTTP `CONNECT` through a proxy.
//!
//! "curl works but my program doesn't" (or the reverse) is often a proxy variable one of them
//! honours and the other ignores. [`proxy_for`] is a pure function of the environment with
//! curl's rules (lib/url.c `detect_proxy`, lib/noproxy.c), so the diagnosis can say which
//! variable applied, or which `no_proxy` entry exempted the host:
//!
//! - `<scheme>_proxy` in lower case, then in upper case — except `HTTP_PROXY`, which curl never
//!   reads (a CGI program's environment gets `HTTP_PROXY` from a request's `Proxy:` header);
//!   `ws` falls back to `http_proxy`, `wss` to `https_proxy`/`HTTPS_PROXY`; then `all_proxy`,
//!   then `ALL_PROXY`. The first variable that is *set* ends the search; set but empty means
//!   no proxy.
//! - `no_proxy`, else `NO_PROXY`: `*` alone exempts every host. Otherwise entries separated by
//!   commas (blanks around them allowed); for a host name, an entry matches the name itself or
//!   a domain above it (`example.com` and `.example.com` both match `www.example.com`, not
//!   `notexample.com`), case-insensitively, trailing dots ignored; for an IP address, an entry
//!   matches the same address, or (curl ≥ 7.86) a CIDR range `10.0.0.0/8`. Names are never
//!   resolved. An entry with a port (`example.com:8080`) never matches in curl: such entries
//!   naming this host are reported ([`Proxy::ignored_no_proxy`]) because other clients (Go)
//!   honour them.
//!
//! The proxy URL may carry credentials (`http://user:pass@proxy:3128`): they are never kept —
//! facts hold a masked form only.

use std::net::IpAddr;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use super::http::{self, HttpFailure, HttpResponse, USER_AGENT};

/// Which proxy a client following curl's rules would use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxyChoice {
    /// No proxy variable applies. `empty_variable`: the variable that ended the search set
    /// but empty (which means "no proxy").
    Direct { empty_variable: Option<String> },
    /// A proxy variable applies but a `no_proxy` entry exempts the host.
    Exempt {
        /// `no_proxy` or `NO_PROXY`.
        variable: String,
        /// The entry that matched, as written (`*` for all).
        entry: String,
        /// The proxy variable that would have applied.
        proxy_variable: String,
    },
    /// Connections go through this proxy.
    Proxy(Proxy),
    /// The variable that applies does not hold a usable proxy URL (curl fails then).
    Invalid {
        variable: String,
        /// The value, credentials masked.
        masked: String,
        error: ProxyUrlError,
    },
}

/// Why a proxy variable's value is not a usable proxy URL (typed: the URL library's text
/// is not a fact).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxyUrlError {
    /// The value does not parse as a URL.
    Unparsable,
    /// A scheme no client here would use for a proxy (lower-cased, escaped when shown).
    UnsupportedScheme(String),
    /// The URL names no host.
    NoHost,
}

/// A proxy from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proxy {
    /// The variable it came from, e.g. `https_proxy`.
    pub variable: String,
    /// `http`, `https`, `socks4`, `socks4a`, `socks5`, `socks5h`.
    pub scheme: String,
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// The port; curl's defaults when none is given: 443 for an `https` proxy, else 1080.
    pub port: u16,
    /// The URL with any credentials replaced by `***`: the only form fit to show.
    pub masked: String,
    /// The URL carried credentials (not kept).
    pub has_credentials: bool,
    /// `no_proxy` entries with a port that name this host and port: curl ignores them.
    pub ignored_no_proxy: Vec<String>,
}

/// The proxy for `url_scheme://host:port` given an environment lookup `env` (pass
/// `&|k| std::env::var(k).ok()` for the real one).
pub(crate) fn proxy_for(
    url_scheme: &str,
    host: &str,
    port: u16,
    env: &dyn Fn(&str) -> Option<String>,
) -> ProxyChoice {
    let scheme = url_scheme.to_ascii_lowercase();
    let Some((variable, value)) = proxy_variable(&scheme, env) else {
        return ProxyChoice::Direct {
            empty_variable: None,
        };
    };
    if value.is_empty() {
        return ProxyChoice::Direct {
            empty_variable: Some(variable),
        };
    }
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let (np_var, np_value) = match env("no_proxy") {
        Some(v) => ("no_proxy", Some(v)),
        None => ("NO_PROXY", env("NO_PROXY")),
    };
    let np_value = np_value.unwrap_or_default();
    if let Some(entry) = no_proxy_match(host, &np_value) {
        return ProxyChoice::Exempt {
            variable: np_var.to_owned(),
            entry,
            proxy_variable: variable,
        };
    }
    match parse_proxy_url(&value) {
        Ok((scheme, phost, pport, has_credentials)) => {
            let shown = if phost.contains(':') {
                format!("[{phost}]")
            } else {
                phost.clone()
            };
            let creds = if has_credentials { "***@" } else { "" };
            ProxyChoice::Proxy(Proxy {
                variable,
                masked: format!("{scheme}://{creds}{shown}:{pport}"),
                scheme,
                host: phost,
                port: pport,
                has_credentials,
                ignored_no_proxy: port_entries_naming(host, port, &np_value),
            })
        }
        Err(error) => ProxyChoice::Invalid {
            variable,
            masked: mask(&value),
            error,
        },
    }
}

/// The variable curl reads for `scheme`, and its value.
fn proxy_variable(scheme: &str, env: &dyn Fn(&str) -> Option<String>) -> Option<(String, String)> {
    let lower = format!("{scheme}_proxy");
    let mut names = vec![lower.clone()];
    // curl never reads HTTP_PROXY (see the module doc).
    if scheme != "http" {
        names.push(lower.to_ascii_uppercase());
    }
    match scheme {
        "ws" => names.push("http_proxy".into()),
        "wss" => names.extend(["https_proxy".into(), "HTTPS_PROXY".into()]),
        _ => {}
    }
    names.extend(["all_proxy".into(), "ALL_PROXY".into()]);
    names.into_iter().find_map(|n| env(&n).map(|v| (n, v)))
}

/// The `no_proxy` entry that exempts `host` (no brackets), with curl's matching; `None` if
/// none does.
pub(crate) fn no_proxy_match(host: &str, no_proxy: &str) -> Option<String> {
    if host.is_empty() || no_proxy.is_empty() {
        return None;
    }
    if no_proxy == "*" {
        return Some("*".into());
    }
    let ip: Option<IpAddr> = host.parse().ok();
    let name = host.strip_suffix('.').unwrap_or(host);
    for token in curl_tokens(no_proxy) {
        let matched = match ip {
            Some(addr) => ip_matches(addr, token),
            None => {
                let t = token.strip_suffix('.').unwrap_or(token);
                let t = t.strip_prefix('.').unwrap_or(t);
                name_matches(name, t)
            }
        };
        if matched {
            return Some(token.to_owned());
        }
    }
    None
}

/// curl's tokenizer: blanks are skipped around entries, commas separate them, and anything
/// else after an entry's trailing blanks ends the list (`"a b"` is just `a`).
fn curl_tokens(list: &str) -> Vec<&str> {
    let blank = |c: char| c == ' ' || c == '\t';
    let mut out = vec![];
    let mut rest = list;
    loop {
        rest = rest.trim_start_matches(blank);
        let end = rest
            .find(|c: char| blank(c) || c == ',')
            .unwrap_or(rest.len());
        if end > 0 {
            out.push(&rest[..end]);
        }
        rest = rest[end..].trim_start_matches(blank);
        if !rest.starts_with(',') {
            return out;
        }
        rest = rest.trim_start_matches(',');
    }
}

fn name_matches(name: &str, token: &str) -> bool {
    if token.is_empty() {
        return false;
    }
    if token.len() == name.len() {
        return name.eq_ignore_ascii_case(token);
    }
    if token.len() < name.len() {
        let cut = name.len() - token.len();
        return name.as_bytes()[cut - 1] == b'.'
            && name
                .get(cut..)
                .is_some_and(|tail| tail.eq_ignore_ascii_case(token));
    }
    false
}

/// An IP host against an entry: the same address, or inside `addr/bits`.
fn ip_matches(host: IpAddr, token: &str) -> bool {
    let (addr, bits) = match token.split_once('/') {
        Some((a, b)) => match b.parse::<u32>() {
            Ok(bits) => (a, Some(bits)),
            Err(_) => return false,
        },
        None => (token, None),
    };
    let Ok(net) = addr.parse::<IpAddr>() else {
        return false;
    };
    match (host, net) {
        (IpAddr::V4(h), IpAddr::V4(n)) => prefix_eq(&h.octets(), &n.octets(), bits),
        (IpAddr::V6(h), IpAddr::V6(n)) => prefix_eq(&h.octets(), &n.octets(), bits),
        _ => false,
    }
}

/// Equal in the first `bits` bits (all of them when `None` or 0, as curl reads `/0`).
fn prefix_eq(a: &[u8], b: &[u8], bits: Option<u32>) -> bool {
    let total = (a.len() * 8) as u32;
    let bits = match bits {
        None | Some(0) => total,
        Some(b) if b > total => return false,
        Some(b) => b,
    };
    let full = (bits / 8) as usize;
    if a[..full] != b[..full] {
        return false;
    }
    let rest = bits % 8;
    rest == 0 || (a[full] ^ b[full]) & (0xffu8 << (8 - rest)) == 0
}

/// Entries of the form `name:port` whose name covers `host` and whose port is `port`.
fn port_entries_naming(host: &str, port: u16, no_proxy: &str) -> Vec<String> {
    curl_tokens(no_proxy)
        .into_iter()
        .filter(|t| {
            let Some((name, p)) = t.rsplit_once(':') else {
                return false;
            };
            if p.parse::<u16>() != Ok(port) || name.contains(':') && !name.starts_with('[') {
                return false;
            }
            let name = name.trim_start_matches('[').trim_end_matches(']');
            let name = name.strip_prefix('.').unwrap_or(name);
            name_matches(host.strip_suffix('.').unwrap_or(host), name)
        })
        .map(str::to_owned)
        .collect()
}

/// Parse a proxy URL the way curl guesses it: no scheme means `http://`.
/// Returns scheme, host (IPv6 without brackets), port, and whether it had credentials.
fn parse_proxy_url(value: &str) -> Result<(String, String, u16, bool), ProxyUrlError> {
    let with_scheme = if value.contains("://") {
        value.to_owned()
    } else {
        format!("http://{value}")
    };
    let url = url::Url::parse(&with_scheme).map_err(|_| ProxyUrlError::Unparsable)?;
    let scheme = url.scheme().to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => 443,
        "http" | "socks4" | "socks4a" | "socks5" | "socks5h" => 1080,
        other => return Err(ProxyUrlError::UnsupportedScheme(other.to_owned())),
    };
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or(ProxyUrlError::NoHost)?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
        .to_owned();
    // url drops the scheme's default port (80 for http): ask for it explicitly.
    let port = url
        .port()
        .or_else(|| explicit_default_port(&with_scheme, &url))
        .unwrap_or(default_port);
    let has_credentials = !url.username().is_empty() || url.password().is_some();
    Ok((scheme, host, port, has_credentials))
}

/// `http://proxy:80` parses with no port (80 is http's default), but curl uses 80 then, not
/// 1080: find the port in the text.
fn explicit_default_port(text: &str, url: &url::Url) -> Option<u16> {
    let default = url.port_or_known_default()?;
    let authority = text.split("://").nth(1)?.split('/').next()?;
    let hostport = authority.rsplit('@').next()?;
    let port = hostport.rsplit_once(':')?.1;
    (port.parse::<u16>().ok()? == default).then_some(default)
}

/// A proxy value fit to show: `user:pass@` replaced by `***@` ([`crate::secrets::mask_user`]).
fn mask(value: &str) -> String {
    crate::secrets::mask_user(value)
}

/// What a proxy said to `CONNECT host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectFacts {
    /// `host:port` as sent.
    pub authority: String,
    /// The proxy's answer: 200 opens the tunnel; 407 wants credentials
    /// (`proxy_authenticate` says which), 403 forbids the destination, 502/503/504 the proxy
    /// could not reach it.
    pub response: Option<HttpResponse>,
    /// Bytes that came after the answer's head: the destination's first words, through the
    /// tunnel (read along with the head; the next reader must see them first).
    pub leftover: Vec<u8>,
    pub failure: Option<HttpFailure>,
    pub elapsed: Duration,
}

impl ConnectFacts {
    /// The tunnel is open.
    pub fn open(&self) -> bool {
        self.response.as_ref().is_some_and(|r| r.status / 100 == 2)
    }
}

/// The `CONNECT` request: no credentials, ever.
pub(crate) fn connect_request(host: &str, port: u16) -> (String, Vec<u8>) {
    let host = host.replace(['\r', '\n', ' '], "");
    let authority = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let req = format!(
        "CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: {USER_AGENT}\r\nProxy-Connection: Keep-Alive\r\n\r\n"
    );
    (authority, req.into_bytes())
}

/// Ask the proxy at the other end of `stream` for a tunnel to `host:port`; on 200 the stream
/// is the tunnel (after [`ConnectFacts::leftover`]).
pub async fn connect_tunnel<S>(
    stream: &mut S,
    host: &str,
    port: u16,
    deadline: Instant,
) -> ConnectFacts
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let start = Instant::now();
    let (authority, req) = connect_request(host, port);
    let mut facts = ConnectFacts {
        authority,
        response: None,
        leftover: vec![],
        failure: None,
        elapsed: Duration::ZERO,
    };
    let sent = tokio::time::timeout_at(deadline, async {
        stream.write_all(&req).await?;
        stream.flush().await
    })
    .await;
    match sent {
        Err(_) => facts.failure = Some(HttpFailure::NoReply),
        Ok(Err(e)) => {
            facts.failure = Some(HttpFailure::Io {
                errno: e.raw_os_error(),
            })
        }
        Ok(Ok(())) => match http::read_head(stream, deadline, http::Response, Vec::new()).await {
            Ok((r, rest)) => {
                // After a refusal the rest is the proxy's error page, not the destination.
                if r.status / 100 == 2 {
                    facts.leftover = rest;
                }
                facts.response = Some(r);
            }
            Err(e) => facts.failure = Some(e),
        },
    }
    facts.elapsed = start.elapsed();
    facts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    fn proxy(choice: ProxyChoice) -> Proxy {
        match choice {
            ProxyChoice::Proxy(p) => p,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn variables_in_curl_order() {
        // (scheme, environment, the variable that applies or None)
        type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], Option<&'a str>);
        let cases: &[Case] = &[
            ("http", &[], None),
            ("http", &[("HTTP_PROXY", "p:1")], None),
            ("http", &[("http_proxy", "p:1")], Some("http_proxy")),
            (
                "http",
                &[("HTTP_PROXY", "p:1"), ("ALL_PROXY", "p:2")],
                Some("ALL_PROXY"),
            ),
            ("https", &[("HTTPS_PROXY", "p:1")], Some("HTTPS_PROXY")),
            (
                "https",
                &[("https_proxy", "p:1"), ("HTTPS_PROXY", "p:2")],
                Some("https_proxy"),
            ),
            ("HTTPS", &[("https_proxy", "p:1")], Some("https_proxy")),
            ("https", &[("http_proxy", "p:1")], None),
            (
                "https",
                &[("all_proxy", "p:1"), ("ALL_PROXY", "p:2")],
                Some("all_proxy"),
            ),
            ("ftp", &[("FTP_PROXY", "p:1")], Some("FTP_PROXY")),
            ("ws", &[("http_proxy", "p:1")], Some("http_proxy")),
            ("wss", &[("HTTPS_PROXY", "p:1")], Some("HTTPS_PROXY")),
        ];
        for (scheme, vars, want) in cases {
            let got = proxy_for(scheme, "example.com", 443, &env(vars));
            match (want, &got) {
                (None, ProxyChoice::Direct { .. }) => {}
                (Some(v), ProxyChoice::Proxy(p)) if p.variable == *v => {}
                _ => panic!("{scheme} {vars:?}: want {want:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn set_but_empty_means_no_proxy() {
        let got = proxy_for(
            "https",
            "example.com",
            443,
            &env(&[("https_proxy", ""), ("ALL_PROXY", "p:1")]),
        );
        assert_eq!(
            got,
            ProxyChoice::Direct {
                empty_variable: Some("https_proxy".into())
            }
        );
    }

    #[test]
    fn proxy_url_forms_and_masking() {
        let p = proxy(proxy_for(
            "https",
            "example.com",
            443,
            &env(&[("https_proxy", "http://alice:s3cret@proxy.corp:3128/")]),
        ));
        assert_eq!(
            (p.scheme.as_str(), p.host.as_str(), p.port),
            ("http", "proxy.corp", 3128)
        );
        assert!(p.has_credentials);
        assert_eq!(p.masked, "http://***@proxy.corp:3128");
        assert!(!format!("{p:?}").contains("s3cret") && !format!("{p:?}").contains("alice"));

        let port = |v: &str| proxy(proxy_for("https", "h", 443, &env(&[("https_proxy", v)]))).port;
        assert_eq!(port("proxy.corp"), 1080);
        assert_eq!(port("http://proxy.corp"), 1080);
        assert_eq!(port("http://proxy.corp:80"), 80);
        assert_eq!(port("https://proxy.corp"), 443);
        assert_eq!(port("socks5h://proxy.corp"), 1080);
        let p = proxy(proxy_for(
            "https",
            "h",
            443,
            &env(&[("https_proxy", "[fd00::1]:8080")]),
        ));
        assert_eq!((p.host.as_str(), p.port), ("fd00::1", 8080));
        assert_eq!(p.masked, "http://[fd00::1]:8080");

        match proxy_for(
            "https",
            "h",
            443,
            &env(&[("https_proxy", "gopher://u:pw@x")]),
        ) {
            ProxyChoice::Invalid { masked, error, .. } => {
                assert_eq!(masked, "gopher://***@x");
                assert_eq!(error, ProxyUrlError::UnsupportedScheme("gopher".into()));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unusable_proxy_urls_are_typed() {
        // The URL library's text is not kept: only why, as a variant.
        assert_eq!(
            parse_proxy_url("http://[::1"),
            Err(ProxyUrlError::Unparsable)
        );
        assert_eq!(
            parse_proxy_url("file:///x"),
            Err(ProxyUrlError::UnsupportedScheme("file".into()))
        );
    }

    #[test]
    fn no_proxy_rules() {
        // (host, no_proxy, matching entry)
        let cases: &[(&str, &str, Option<&str>)] = &[
            ("www.example.com", "*", Some("*")),
            ("www.example.com", "*,foo", None),
            ("www.example.com", "example.com", Some("example.com")),
            ("www.example.com", ".example.com", Some(".example.com")),
            ("example.com", ".example.com", Some(".example.com")),
            ("EXAMPLE.com.", "example.COM", Some("example.COM")),
            ("notexample.com", "example.com", None),
            ("example.com.org", "example.com", None),
            ("a.b", " x.y , b ,", Some("b")),
            ("a.b", "x.y b", None),
            ("internal", "localhost,,internal", Some("internal")),
            ("example.com", "example.com:443", None),
            ("10.1.2.3", "10.0.0.0/8", Some("10.0.0.0/8")),
            ("10.1.2.3", "10.1.2.3", Some("10.1.2.3")),
            ("10.1.2.3", "11.0.0.0/8", None),
            ("10.1.2.3", "10.1.2.0/33", None),
            ("10.1.2.3", "3", None),
            ("::1", "::1", Some("::1")),
            ("[::1]", "::1", Some("::1")),
            ("fd00::5", "fd00::/8", Some("fd00::/8")),
            ("fe80::5", "fd00::/8", None),
            ("127.0.0.1", "localhost", None),
            ("localhost", "127.0.0.1", None),
            ("", "*", None),
            ("host", "", None),
        ];
        for (host, list, want) in cases {
            let h = host.trim_start_matches('[').trim_end_matches(']');
            assert_eq!(
                no_proxy_match(h, list).as_deref(),
                *want,
                "{host} in {list:?}"
            );
        }
    }

    #[test]
    fn exemption_names_the_variable_and_entry() {
        let vars = [
            ("https_proxy", "proxy:3128"),
            ("NO_PROXY", "localhost,.corp.example"),
        ];
        assert_eq!(
            proxy_for("https", "git.corp.example", 443, &env(&vars)),
            ProxyChoice::Exempt {
                variable: "NO_PROXY".into(),
                entry: ".corp.example".into(),
                proxy_variable: "https_proxy".into()
            }
        );
        // Lower case wins, even when it does not match.
        let vars = [
            ("https_proxy", "proxy:3128"),
            ("no_proxy", "other"),
            ("NO_PROXY", "*"),
        ];
        assert!(matches!(
            proxy_for("https", "git.corp.example", 443, &env(&vars)),
            ProxyChoice::Proxy(_)
        ));
    }

    #[test]
    fn port_qualified_entries_are_reported_not_applied() {
        let vars = [
            ("https_proxy", "proxy:3128"),
            (
                "no_proxy",
                "git.corp.example:443,other:443,.corp.example:8443",
            ),
        ];
        let p = proxy(proxy_for("https", "git.corp.example", 443, &env(&vars)));
        assert_eq!(p.ignored_no_proxy, vec!["git.corp.example:443".to_string()]);
    }

    #[test]
    fn connect_request_has_no_credentials() {
        let (auth, req) = connect_request("::1", 22);
        assert_eq!(auth, "[::1]:22");
        let req = String::from_utf8(req).unwrap();
        assert!(req.starts_with("CONNECT [::1]:22 HTTP/1.1\r\nHost: [::1]:22\r\n"));
        assert!(!req.to_ascii_lowercase().contains("authorization"));
        let (auth, req) = connect_request("db\r\nX: y", 5432);
        assert!(!auth.contains(['\r', '\n', ' ']));
        assert_eq!(String::from_utf8(req).unwrap().matches("\r\n").count(), 5);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(host in ".{0,40}", list in ".{0,80}", value in ".{0,60}") {
            let _ = no_proxy_match(&host, &list);
            let _ = port_entries_naming(&host, 443, &list);
            let vars = [("https_proxy", value.as_str()), ("no_proxy", list.as_str())];
            let _ = proxy_for("https", &host, 443, &env(&vars));
            let _ = mask(&value);
        }
    }
}
