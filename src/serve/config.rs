//! The module file: blackbox_exporter's own YAML (`modules:`, `prober: tcp | http`), read
//! strictly.
//!
//! Every key blackbox_exporter's tcp and http probers read that canreach implements is read
//! here with blackbox_exporter's default; any other key, and any other prober, is refused at
//! start with `FILE:LINE: what is missing` (exit 2). A key silently ignored would make a
//! module look like it checks something it does not. Values are bounded: a timeout of at
//! most [`TIMEOUT_MAX`], lists of at most [`LIST_MAX`] entries, strings of at most
//! [`STRING_MAX`] bytes, a file of at most [`FILE_MAX`] bytes (and the YAML parser's own
//! budget against alias bombs).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::session::ask::{Ask, HttpAsk, Step};
use crate::session::tls::TrustStore;

/// The largest module file read.
pub(crate) const FILE_MAX: u64 = 1024 * 1024;
/// The longest module timeout: canreach's longest check.
pub(crate) const TIMEOUT_MAX: Duration = Duration::from_secs(300);
/// The most entries of a list (status codes, headers, dialogue steps).
pub(crate) const LIST_MAX: usize = 100;
/// The longest string value (a header, a pattern, a line to send).
pub(crate) const STRING_MAX: usize = 4096;
/// The largest compiled pattern (the regex crate's own limit is 10 MiB).
const REGEX_SIZE_MAX: usize = 1 << 20;

/// What a module probes with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Prober {
    /// blackbox_exporter's `tcp`: a connect (TLS, a dialogue, if asked).
    Tcp,
    /// blackbox_exporter's `http`: one request, redirects followed.
    Http,
    /// canreach's whole check, the protocol chosen from the target as the CLI does.
    Canreach,
}

impl Prober {
    pub fn as_str(self) -> &'static str {
        match self {
            Prober::Tcp => "tcp",
            Prober::Http => "http",
            Prober::Canreach => "canreach",
        }
    }
}

/// An IP family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ip {
    V4,
    V6,
}

/// A module, ready to probe with.
#[derive(Debug, Clone)]
pub(crate) struct Module {
    pub name: String,
    pub prober: Prober,
    /// The module's `timeout`, if set.
    pub timeout: Option<Duration>,
    /// `preferred_ip_protocol` (blackbox_exporter's default: ip6).
    pub preferred: Ip,
    /// `ip_protocol_fallback` (default true).
    pub fallback: bool,
    /// tcp: `tls`.
    pub tls: bool,
    /// http: `valid_status_codes` (empty: 2xx).
    pub valid_status_codes: Vec<u16>,
    /// http: `valid_http_versions` (empty: any), as `HTTP/1.1`.
    pub valid_http_versions: Vec<String>,
    /// http: follow redirects (`no_follow_redirects: false`, `follow_redirects: true`).
    pub follow_redirects: bool,
    pub fail_if_ssl: bool,
    pub fail_if_not_ssl: bool,
    /// What the session stage is asked (method, headers, TLS name and store, dialogue).
    pub ask: Arc<Ask>,
    /// tls_config.insecure_skip_verify.
    pub insecure: bool,
}

impl Module {
    fn new(name: &str, prober: Prober) -> Module {
        Module {
            name: name.to_string(),
            prober,
            timeout: None,
            preferred: Ip::V6,
            fallback: true,
            tls: false,
            valid_status_codes: vec![],
            valid_http_versions: vec![],
            follow_redirects: true,
            fail_if_ssl: false,
            fail_if_not_ssl: false,
            ask: Arc::new(Ask::default()),
            insecure: false,
        }
    }

    /// The HTTP request this module asks for (http modules).
    pub(crate) fn http_ask(&self) -> Option<&HttpAsk> {
        self.ask.http.as_ref()
    }
}

/// The modules, by name.
#[derive(Debug, Clone)]
pub(crate) struct Modules {
    pub modules: BTreeMap<String, Module>,
}

impl Modules {
    /// Without `--config`: `tcp_connect`, `http_2xx` (blackbox_exporter's defaults) and
    /// `canreach` (the CLI's whole check).
    pub(crate) fn builtin() -> Modules {
        let mut modules = BTreeMap::new();
        modules.insert(
            "tcp_connect".into(),
            Module::new("tcp_connect", Prober::Tcp),
        );
        let mut http = Module::new("http_2xx", Prober::Http);
        http.ask = Arc::new(Ask {
            http: Some(HttpAsk {
                method: "GET".into(),
                headers: vec![],
                target: None,
            }),
            ..Ask::default()
        });
        modules.insert("http_2xx".into(), http);
        modules.insert("canreach".into(), Module::new("canreach", Prober::Canreach));
        Modules { modules }
    }

    pub(crate) fn get(&self, name: &str) -> Option<&Module> {
        self.modules.get(name)
    }
}

/// Why a module file was refused: one line, `FILE:LINE: what`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct ConfigError(pub String);

fn at(file: &str, line: u64, what: impl std::fmt::Display) -> ConfigError {
    let shown = crate::escape::escape(&format!("{what}")).into_owned();
    if line == 0 {
        ConfigError(format!("{file}: {shown}"))
    } else {
        ConfigError(format!("{file}:{line}: {shown}"))
    }
}

// The file as blackbox_exporter writes it. `deny_unknown_fields` everywhere: a key canreach
// does not read is refused, never ignored.

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    // `modules:` with nothing after it is null: taken as no module (refused in `parse`).
    #[serde(default)]
    modules: Option<BTreeMap<String, Spanned<RawModule>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModule {
    prober: Spanned<String>,
    #[serde(default)]
    timeout: Option<Spanned<String>>,
    #[serde(default)]
    tcp: Option<Spanned<RawTcp>>,
    #[serde(default)]
    http: Option<Spanned<RawHttp>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTcp {
    #[serde(default)]
    preferred_ip_protocol: Option<Spanned<String>>,
    #[serde(default)]
    ip_protocol_fallback: Option<bool>,
    #[serde(default)]
    tls: Option<bool>,
    #[serde(default)]
    tls_config: Option<RawTls>,
    #[serde(default)]
    query_response: Option<Spanned<Vec<Spanned<RawQuery>>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQuery {
    #[serde(default)]
    expect: Option<Spanned<String>>,
    #[serde(default)]
    send: Option<Spanned<String>>,
    #[serde(default)]
    starttls: Option<Spanned<bool>>,
    #[serde(default)]
    labels: Option<Spanned<Vec<Spanned<RawLabel>>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLabel {
    name: String,
    value: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    #[serde(default)]
    valid_status_codes: Option<Spanned<Vec<Spanned<i64>>>>,
    #[serde(default)]
    valid_http_versions: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    method: Option<Spanned<String>>,
    #[serde(default)]
    headers: Option<Spanned<BTreeMap<String, Spanned<String>>>>,
    #[serde(default)]
    no_follow_redirects: Option<bool>,
    #[serde(default)]
    follow_redirects: Option<bool>,
    #[serde(default)]
    fail_if_ssl: Option<bool>,
    #[serde(default)]
    fail_if_not_ssl: Option<bool>,
    #[serde(default)]
    preferred_ip_protocol: Option<Spanned<String>>,
    #[serde(default)]
    ip_protocol_fallback: Option<bool>,
    #[serde(default)]
    tls_config: Option<RawTls>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    #[serde(default)]
    ca_file: Option<Spanned<String>>,
    #[serde(default)]
    server_name: Option<Spanned<String>>,
    #[serde(default)]
    insecure_skip_verify: Option<bool>,
}

/// Read and check the module file at `path`.
pub(crate) fn load(path: &Path) -> Result<Modules, ConfigError> {
    let file = crate::escape::escape(&path.display().to_string()).into_owned();
    let meta = std::fs::metadata(path).map_err(|e| at(&file, 0, io_words(&e)))?;
    if !meta.is_file() {
        return Err(at(&file, 0, "not a regular file"));
    }
    if meta.len() > FILE_MAX {
        return Err(at(
            &file,
            0,
            format!("the file is larger than {} KiB", FILE_MAX / 1024),
        ));
    }
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(FILE_MAX + 1).read_to_end(&mut bytes))
        .map_err(|e| at(&file, 0, io_words(&e)))?;
    if bytes.len() as u64 > FILE_MAX {
        return Err(at(
            &file,
            0,
            format!("the file is larger than {} KiB", FILE_MAX / 1024),
        ));
    }
    let text = std::str::from_utf8(&bytes).map_err(|e| {
        let line = bytes[..e.valid_up_to()]
            .iter()
            .filter(|b| **b == b'\n')
            .count() as u64
            + 1;
        at(&file, line, "not UTF-8 text")
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    parse(text, &file, base)
}

fn io_words(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// Parse the module file's `text`; `file` names it in errors, `base` is where relative
/// `ca_file` paths start (blackbox_exporter: the working directory; here the file's own
/// directory would surprise nobody either, so relative paths are refused).
pub fn parse(text: &str, file: &str, base: &Path) -> Result<Modules, ConfigError> {
    let _ = base;
    let raw: RawFile = serde_saphyr::from_str(text).map_err(|e| yaml_error(file, &e))?;
    // An empty file (or `modules:` with none) would start an exporter that answers every
    // probe "unknown module": most likely the wrong file.
    let raw_modules = raw.modules.unwrap_or_default();
    if raw_modules.is_empty() {
        return Err(at(
            file,
            0,
            "no module is defined (`modules:` needs at least one)",
        ));
    }
    let mut modules = BTreeMap::new();
    for (name, m) in raw_modules {
        let line = m.referenced.line();
        if name.is_empty()
            || name.len() > 128
            || name.chars().any(|c| c.is_control() || c.is_whitespace())
        {
            return Err(at(
                file,
                line,
                "a module name must be 1 to 128 characters without spaces or control characters",
            ));
        }
        let module = module(&name, m.value, file)?;
        modules.insert(name, module);
    }
    Ok(Modules { modules })
}

/// The parser's error as one line: its line number, and what was wrong in canreach's words.
fn yaml_error(file: &str, e: &serde_saphyr::Error) -> ConfigError {
    let inner = e.without_snippet();
    let line = e.location().map_or(0, |l| l.line());
    if let serde_saphyr::Error::SerdeUnknownField {
        field, expected, ..
    } = inner
    {
        return at(
            file,
            line,
            format!(
                "`{field}` is not implemented by canreach serve (here it reads: {})",
                expected.join(", ")
            ),
        );
    }
    if let serde_saphyr::Error::DuplicateMappingKey { key, .. } = inner {
        return at(
            file,
            line,
            match key {
                Some(k) => format!("the key `{k}` appears twice"),
                None => "a key appears twice".to_string(),
            },
        );
    }
    let text = inner.to_string();
    let first = text.lines().next().unwrap_or("").trim();
    // The parser writes "error: line N column M: what".
    let what = first.strip_prefix("error: ").unwrap_or(first);
    let what = match what.find(": ") {
        Some(i) if what.starts_with("line ") => &what[i + 2..],
        _ => what,
    };
    // The place is in front already ("FILE:LINE:"); some messages end with it again.
    let what = match what.rfind(" at line ") {
        Some(i) => &what[..i],
        None => what,
    };
    at(file, line, what)
}

fn module(name: &str, raw: RawModule, file: &str) -> Result<Module, ConfigError> {
    let prober = prober_of(&raw.prober, file)?;
    let mut m = Module::new(name, prober);
    if let Some(t) = &raw.timeout {
        m.timeout = Some(timeout_of(t, file)?);
    }
    // A section for another prober is ignored by blackbox_exporter: refused here, so that a
    // module never looks like it checks what it does not.
    let stray = match (prober, &raw.tcp, &raw.http) {
        (Prober::Tcp | Prober::Canreach, _, Some(h)) => Some(("http", h.referenced.line())),
        (Prober::Http | Prober::Canreach, Some(t), _) => Some(("tcp", t.referenced.line())),
        _ => None,
    };
    if let Some((section, line)) = stray {
        return Err(at(
            file,
            line,
            format!(
                "`{section}` settings in a module whose prober is {}: they would be ignored",
                prober.as_str()
            ),
        ));
    }
    let mut ask = Ask::default();
    if let Some(tcp) = raw.tcp.map(|t| t.value) {
        tcp_settings(tcp, &mut m, &mut ask, file)?;
    }
    if prober == Prober::Http {
        let mut h = HttpAsk {
            method: "GET".into(),
            headers: vec![],
            target: None,
        };
        if let Some(http) = raw.http.map(|h| h.value) {
            http_settings(http, name, &mut m, &mut ask, &mut h, file)?;
        }
        ask.http = Some(h);
    }
    m.ask = Arc::new(ask);
    Ok(m)
}

fn prober_of(prober: &Spanned<String>, file: &str) -> Result<Prober, ConfigError> {
    match prober.value.as_str() {
        "tcp" => Ok(Prober::Tcp),
        "http" => Ok(Prober::Http),
        "canreach" => Ok(Prober::Canreach),
        other => Err(at(
            file,
            prober.referenced.line(),
            format!(
                "prober `{other}` is not implemented by canreach serve (it implements tcp, http and canreach)"
            ),
        )),
    }
}

fn timeout_of(t: &Spanned<String>, file: &str) -> Result<Duration, ConfigError> {
    let d = parse_duration(&t.value).ok_or_else(|| {
        at(
            file,
            t.referenced.line(),
            format!(
                "timeout `{}` is not a duration (write 5s, 1500ms, 1m30s)",
                t.value
            ),
        )
    })?;
    if d.is_zero() || d > TIMEOUT_MAX {
        return Err(at(
            file,
            t.referenced.line(),
            format!(
                "timeout `{}` is out of range: from 1ms to {}s",
                t.value,
                TIMEOUT_MAX.as_secs()
            ),
        ));
    }
    Ok(d)
}

/// The `tcp` section: address family, TLS, and the `query_response` dialogue.
fn tcp_settings(tcp: RawTcp, m: &mut Module, ask: &mut Ask, file: &str) -> Result<(), ConfigError> {
    if let Some(p) = &tcp.preferred_ip_protocol {
        m.preferred = ip(p, file)?;
    }
    m.fallback = tcp.ip_protocol_fallback.unwrap_or(true);
    m.tls = tcp.tls.unwrap_or(false);
    if let Some(t) = tcp.tls_config {
        tls(&t, ask, m, file)?;
    }
    let Some(q) = tcp.query_response else {
        return Ok(());
    };
    if q.value.len() > LIST_MAX {
        return Err(at(
            file,
            q.referenced.line(),
            format!("query_response has more than {LIST_MAX} steps"),
        ));
    }
    for step in q.value {
        let line = step.referenced.line();
        let step = query_step(step, file)?;
        if !step.labels.is_empty() && ask.dialogue.iter().any(|s| !s.labels.is_empty()) {
            // One set of labels: blackbox_exporter writes one probe_expect_info.
            return Err(at(
                file,
                line,
                "query_response: `labels` in more than one step",
            ));
        }
        ask.dialogue.push(step);
    }
    Ok(())
}

/// The `http` section of module `name`: address family, statuses and versions that count,
/// the request (method, headers), redirects, TLS.
fn http_settings(
    http: RawHttp,
    name: &str,
    m: &mut Module,
    ask: &mut Ask,
    h: &mut HttpAsk,
    file: &str,
) -> Result<(), ConfigError> {
    if let Some(p) = &http.preferred_ip_protocol {
        m.preferred = ip(p, file)?;
    }
    m.fallback = http.ip_protocol_fallback.unwrap_or(true);
    if let Some(codes) = http.valid_status_codes {
        m.valid_status_codes = status_codes(codes, file)?;
    }
    if let Some(versions) = http.valid_http_versions {
        m.valid_http_versions = http_versions(versions, file)?;
    }
    if let Some(method) = http.method {
        h.method = http_method(&method, file)?;
    }
    if let Some(headers) = http.headers {
        h.headers = http_headers(headers, file)?;
    }
    match (http.no_follow_redirects, http.follow_redirects) {
        (Some(no), Some(yes)) if no == yes => {
            return Err(at(
                file,
                0,
                format!(
                    "module `{name}`: no_follow_redirects and follow_redirects contradict each other"
                ),
            ));
        }
        (Some(no), _) => m.follow_redirects = !no,
        (None, Some(yes)) => m.follow_redirects = yes,
        (None, None) => {}
    }
    m.fail_if_ssl = http.fail_if_ssl.unwrap_or(false);
    m.fail_if_not_ssl = http.fail_if_not_ssl.unwrap_or(false);
    if let Some(t) = http.tls_config {
        tls(&t, ask, m, file)?;
    }
    Ok(())
}

fn status_codes(codes: Spanned<Vec<Spanned<i64>>>, file: &str) -> Result<Vec<u16>, ConfigError> {
    check_len(codes.value.len(), codes.referenced.line(), file)?;
    codes
        .value
        .into_iter()
        .map(|c| match u16::try_from(c.value) {
            Ok(code) if (100..=599).contains(&code) => Ok(code),
            _ => Err(at(
                file,
                c.referenced.line(),
                format!("status code {} is not from 100 to 599", c.value),
            )),
        })
        .collect()
}

fn http_versions(
    versions: Spanned<Vec<Spanned<String>>>,
    file: &str,
) -> Result<Vec<String>, ConfigError> {
    check_len(versions.value.len(), versions.referenced.line(), file)?;
    let known = ["HTTP/1.0", "HTTP/1.1", "HTTP/2.0", "HTTP/2", "HTTP/3.0"];
    versions
        .value
        .into_iter()
        .map(|v| {
            if known.contains(&v.value.as_str()) {
                Ok(v.value)
            } else {
                Err(at(
                    file,
                    v.referenced.line(),
                    format!(
                        "`{}` is not an HTTP version (HTTP/1.0, HTTP/1.1, HTTP/2.0)",
                        short(&v.value)
                    ),
                ))
            }
        })
        .collect()
}

fn http_method(method: &Spanned<String>, file: &str) -> Result<String, ConfigError> {
    let ok = !method.value.is_empty()
        && method.value.len() <= 32
        && method
            .value
            .bytes()
            .all(|b| b.is_ascii_alphabetic() || b == b'-');
    if !ok {
        return Err(at(
            file,
            method.referenced.line(),
            format!("method `{}` is not an HTTP method", short(&method.value)),
        ));
    }
    Ok(method.value.to_ascii_uppercase())
}

fn http_headers(
    headers: Spanned<BTreeMap<String, Spanned<String>>>,
    file: &str,
) -> Result<Vec<(String, String)>, ConfigError> {
    check_len(headers.value.len(), headers.referenced.line(), file)?;
    let mut out = Vec::new();
    for (k, v) in headers.value {
        let line = v.referenced.line();
        let name_ok = !k.is_empty()
            && k.len() <= 256
            && k.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_!#$%&'*+.^`|~".contains(&b));
        if !name_ok {
            return Err(at(
                file,
                line,
                format!("header name `{}` is not an HTTP token", short(&k)),
            ));
        }
        if v.value.len() > STRING_MAX || v.value.chars().any(|c| c.is_control() && c != '\t') {
            return Err(at(
                file,
                line,
                format!(
                    "the value of header `{k}` has a control character or is longer than {STRING_MAX} bytes"
                ),
            ));
        }
        out.push((k, v.value));
    }
    Ok(out)
}

fn check_len(n: usize, line: u64, file: &str) -> Result<(), ConfigError> {
    if n > LIST_MAX {
        return Err(at(file, line, format!("more than {LIST_MAX} entries")));
    }
    Ok(())
}

/// At most 60 characters of a value, for a message.
fn short(s: &str) -> String {
    let mut out: String = s.chars().take(60).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

fn ip(p: &Spanned<String>, file: &str) -> Result<Ip, ConfigError> {
    match p.value.as_str() {
        "ip4" => Ok(Ip::V4),
        "ip6" => Ok(Ip::V6),
        other => Err(at(
            file,
            p.referenced.line(),
            format!(
                "preferred_ip_protocol `{}` is neither ip4 nor ip6",
                short(other)
            ),
        )),
    }
}

fn tls(t: &RawTls, ask: &mut Ask, m: &mut Module, file: &str) -> Result<(), ConfigError> {
    m.insecure = t.insecure_skip_verify.unwrap_or(false);
    if let Some(name) = &t.server_name {
        let ok = !name.value.is_empty()
            && name.value.len() <= 253
            && !name
                .value
                .chars()
                .any(|c| c.is_control() || c.is_whitespace());
        if !ok {
            return Err(at(
                file,
                name.referenced.line(),
                "server_name must be a host name of at most 253 characters",
            ));
        }
        ask.server_name = Some(name.value.clone());
    }
    let store = match &t.ca_file {
        Some(ca) => Some(ca_store(ca, file)?),
        None => None,
    };
    ask.roots = match (store, m.insecure) {
        (Some(s), false) => Some(Arc::new(s)),
        (Some(s), true) => Some(Arc::new(s.insecure())),
        (None, true) => Some(Arc::new(TrustStore::system().insecure())),
        (None, false) => None,
    };
    Ok(())
}

/// The trust anchors of a `ca_file` (PEM), read now: a file that cannot be used is refused at
/// start, not at the first probe.
fn ca_store(ca: &Spanned<String>, file: &str) -> Result<TrustStore, ConfigError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let line = ca.referenced.line();
    let path = Path::new(&ca.value);
    let shown = short(&ca.value);
    if !path.is_absolute() {
        return Err(at(
            file,
            line,
            format!("ca_file `{shown}` must be an absolute path"),
        ));
    }
    let bytes =
        read_bounded(path).map_err(|e| at(file, line, format!("ca_file `{shown}`: {e}")))?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&bytes)
        .filter_map(Result::ok)
        .collect();
    TrustStore::from_certs(certs).map_err(|e| at(file, line, format!("ca_file `{shown}`: {e}")))
}

fn read_bounded(path: &Path) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(FILE_MAX + 1).read_to_end(&mut bytes))
        .map_err(|e| io_words(&e))?;
    if bytes.len() as u64 > FILE_MAX {
        return Err(format!("larger than {} KiB", FILE_MAX / 1024));
    }
    Ok(bytes)
}

fn query_step(step: Spanned<RawQuery>, file: &str) -> Result<Step, ConfigError> {
    let line = step.referenced.line();
    let q = step.value;
    if let Some(s) = &q.starttls
        && s.value
    {
        return Err(at(
            file,
            s.referenced.line(),
            "query_response `starttls` is not implemented by canreach serve",
        ));
    }
    let expect = q.expect.as_ref().map(|e| pattern(e, file)).transpose()?;
    let send = match &q.send {
        Some(s) if s.value.len() > STRING_MAX => {
            return Err(at(
                file,
                s.referenced.line(),
                format!("send is longer than {STRING_MAX} bytes"),
            ));
        }
        Some(s) => Some(s.value.clone()),
        None => None,
    };
    let labels = match &q.labels {
        Some(ls) if expect.is_none() => {
            return Err(at(
                file,
                ls.referenced.line(),
                "query_response `labels` needs an `expect` in the same step",
            ));
        }
        Some(ls) => labels(ls, file)?,
        None => Vec::new(),
    };
    if expect.is_none() && send.is_none() {
        return Err(at(
            file,
            line,
            "a query_response step needs `expect` or `send`",
        ));
    }
    Ok(Step {
        expect,
        send,
        labels,
    })
}

/// An `expect` pattern, compiled within [`REGEX_SIZE_MAX`].
fn pattern(e: &Spanned<String>, file: &str) -> Result<regex::bytes::Regex, ConfigError> {
    if e.value.len() > STRING_MAX {
        return Err(at(
            file,
            e.referenced.line(),
            format!("expect is longer than {STRING_MAX} bytes"),
        ));
    }
    regex::bytes::RegexBuilder::new(&e.value)
        .size_limit(REGEX_SIZE_MAX)
        .build()
        .map_err(|err| {
            let why = err.to_string();
            let why = why.lines().last().unwrap_or("").trim().to_string();
            at(
                file,
                e.referenced.line(),
                format!("expect `{}` is not a pattern: {why}", short(&e.value)),
            )
        })
}

/// A step's `labels`: Prometheus label names, each once, at most 16.
fn labels(
    ls: &Spanned<Vec<Spanned<RawLabel>>>,
    file: &str,
) -> Result<Vec<(String, String)>, ConfigError> {
    if ls.value.len() > 16 {
        return Err(at(file, ls.referenced.line(), "more than 16 labels"));
    }
    let mut labels: Vec<(String, String)> = Vec::new();
    for l in &ls.value {
        let n = &l.value.name;
        let ok = !n.is_empty()
            && n.len() <= 64
            && !n.starts_with("__")
            && n.bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
            && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !ok || labels.iter().any(|(k, _)| k == n) {
            return Err(at(
                file,
                l.referenced.line(),
                format!(
                    "`{}` is not a Prometheus label name, or is given twice",
                    short(n)
                ),
            ));
        }
        if l.value.value.len() > STRING_MAX {
            return Err(at(
                file,
                l.referenced.line(),
                format!("a label value is longer than {STRING_MAX} bytes"),
            ));
        }
        labels.push((n.clone(), l.value.value.clone()));
    }
    Ok(labels)
}

/// A Prometheus duration: `[0-9]+(ms|s|m|h|d|w|y)` units, in decreasing order (`1m30s`).
pub(crate) fn parse_duration(s: &str) -> Option<Duration> {
    if s.is_empty() || s.len() > 32 {
        return None;
    }
    let units: [(&str, u64); 7] = [
        ("y", 365 * 86_400_000),
        ("w", 7 * 86_400_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
        ("ms", 1),
    ];
    let mut rest = s;
    let mut total: u64 = 0;
    let mut last_rank = 0usize;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        // `ms` before `m`.
        let (rank, (unit, ms)) = units
            .iter()
            .enumerate()
            .filter(|(_, (u, _))| rest.starts_with(u))
            .max_by_key(|(_, (u, _))| u.len())?;
        if rank < last_rank || (rank == last_rank && total > 0) {
            return None;
        }
        last_rank = rank;
        rest = &rest[unit.len()..];
        total = total.checked_add(n.checked_mul(*ms)?)?;
    }
    Some(Duration::from_millis(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(s: &str) -> Result<Modules, String> {
        parse(s, "m.yml", Path::new("/")).map_err(|e| e.0)
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s"), Some(Duration::from_secs(5)));
        assert_eq!(parse_duration("1500ms"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_duration("5"), None);
        assert_eq!(parse_duration("s"), None);
        assert_eq!(parse_duration("30s1m"), None);
        assert_eq!(parse_duration("-5s"), None);
        assert_eq!(parse_duration("99999999999999999999y"), None);
    }

    #[test]
    fn debians_example_modules_that_canreach_implements_are_read() {
        let m = parse_str(
            "modules:
  http_2xx:
    prober: http
  http_post_2xx:
    prober: http
    http:
      method: POST
  tcp_connect:
    prober: tcp
  pop3s_banner:
    prober: tcp
    tcp:
      query_response:
      - expect: \"^+OK\"
      tls: true
      tls_config:
        insecure_skip_verify: false
  ssh_banner:
    prober: tcp
    tcp:
      query_response:
      - expect: \"^SSH-2.0-\"
      - send: \"SSH-2.0-blackbox-ssh-check\"
  irc_banner:
    prober: tcp
    tcp:
      query_response:
      - send: \"NICK prober\"
      - send: \"USER prober prober prober :prober\"
      - expect: \"PING :([^ ]+)\"
        send: \"PONG ${1}\"
      - expect: \"^:[^ ]+ 001\"
",
        )
        .unwrap();
        assert_eq!(m.modules.len(), 6);
        let post = m.get("http_post_2xx").unwrap();
        assert_eq!(post.prober, Prober::Http);
        assert_eq!(post.http_ask().unwrap().method, "POST");
        assert!(post.follow_redirects);
        assert_eq!(post.preferred, Ip::V6);
        assert!(post.fallback);
        let pop = m.get("pop3s_banner").unwrap();
        assert!(pop.tls);
        assert_eq!(pop.ask.dialogue.len(), 1);
        assert_eq!(m.get("irc_banner").unwrap().ask.dialogue.len(), 4);
    }

    #[test]
    fn every_http_key_of_the_issue_is_read() {
        let m = parse_str(
            "modules:
  web:
    prober: http
    timeout: 3s
    http:
      valid_status_codes: [200, 301]
      valid_http_versions: [\"HTTP/1.1\"]
      method: head
      headers:
        Host: vhost.example
        X-Probe: canreach
      no_follow_redirects: true
      fail_if_ssl: false
      fail_if_not_ssl: true
      preferred_ip_protocol: ip4
      ip_protocol_fallback: false
      tls_config:
        server_name: vhost.example
        insecure_skip_verify: true
",
        )
        .unwrap();
        let w = m.get("web").unwrap();
        assert_eq!(w.timeout, Some(Duration::from_secs(3)));
        assert_eq!(w.valid_status_codes, [200, 301]);
        assert_eq!(w.valid_http_versions, ["HTTP/1.1"]);
        assert_eq!(w.http_ask().unwrap().method, "HEAD");
        assert_eq!(w.http_ask().unwrap().headers.len(), 2);
        assert!(!w.follow_redirects);
        assert!(w.fail_if_not_ssl && !w.fail_if_ssl);
        assert_eq!((w.preferred, w.fallback), (Ip::V4, false));
        assert!(w.insecure);
        assert_eq!(w.ask.server_name.as_deref(), Some("vhost.example"));
        assert!(w.ask.roots.is_some());
    }

    /// Each refusal names the file, the line of the offending key or value, and what is
    /// missing, on one line.
    #[test]
    fn refusals_name_their_line() {
        let cases: &[(&str, u64, &str)] = &[
            (
                "modules:\n  a:\n    prober: icmp\n",
                3,
                "prober `icmp` is not implemented",
            ),
            (
                "modules:\n  a:\n    prober: http\n    http:\n      fail_if_body_matches_regexp: [x]\n",
                5,
                "`fail_if_body_matches_regexp` is not implemented",
            ),
            (
                "modules:\n  a:\n    prober: tcp\n    tcp:\n      source_ip_address: 1.2.3.4\n",
                5,
                "`source_ip_address` is not implemented",
            ),
            (
                "modules:\n  a:\n    prober: tcp\n    dns:\n      query_name: x\n",
                4,
                "`dns` is not implemented",
            ),
            (
                "modules:\n  a:\n    prober: tcp\n    timeout: 10h\n",
                4,
                "out of range",
            ),
            (
                "modules:\n  a:\n    prober: tcp\n    timeout: soon\n",
                4,
                "not a duration",
            ),
            (
                "modules:\n  a:\n    prober: http\n    http:\n      valid_status_codes: [200, 99999]\n",
                5,
                "not from 100 to 599",
            ),
            (
                "modules:\n  a:\n    prober: tcp\n    tcp:\n      query_response:\n        - expect: \"(\"\n",
                6,
                "is not a pattern",
            ),
            (
                "modules:\n  a:\n    prober: tcp\n    tcp:\n      query_response:\n        - starttls: true\n",
                6,
                "starttls",
            ),
            (
                "modules:\n  a:\n    prober: tcp\n    tcp:\n      tls_config:\n        cert_file: /x\n",
                6,
                "`cert_file` is not implemented",
            ),
            (
                "modules:\n  a:\n    prober: tcp\n    http:\n      method: GET\n",
                5,
                "would be ignored",
            ),
            (
                "modules:\n  a:\n    prober: http\n    http:\n      headers:\n        \"X\\nY\": z\n",
                6,
                "not an HTTP token",
            ),
            (
                "modules:\n  a:\n    prober: tcp\n    tcp:\n      preferred_ip_protocol: ip5\n",
                5,
                "neither ip4 nor ip6",
            ),
            (
                "modules:\n  a:\n    prober: tcp\n  a:\n    prober: http\n",
                4,
                "the key `a` appears twice",
            ),
            (
                "modules:\n  a:\n    prober: tcp\n    timeout: 5s\n    timeout: 3s\n",
                5,
                "the key `timeout` appears twice",
            ),
            (
                "modules:\n  a:\n    prober: tcp\n    tcp:\n      query_response:\n        - send: x\n          labels: [{name: v, value: x}]\n",
                7,
                "needs an `expect`",
            ),
            (
                "modules:\n  a:\n    prober: tcp\n    tcp:\n      query_response:\n        - expect: x\n          labels: [{name: v, value: x}]\n        - expect: y\n          labels: [{name: w, value: y}]\n",
                8,
                "more than one step",
            ),
            (
                "modules:\n  a:\n    prober: tcp\n    tcp:\n      query_response:\n        - expect: x\n          labels: [{name: __x, value: x}]\n",
                7,
                "not a Prometheus label name",
            ),
            ("modules: [\n", 1, ""),
        ];
        for (text, line, what) in cases {
            let e = parse_str(text).expect_err(text);
            assert!(e.starts_with(&format!("m.yml:{line}: ")), "{text:?} → {e}");
            assert!(e.contains(what), "{text:?} → {e}");
            assert!(!e.contains('\n'), "{e}");
            // The place once, in front; none of the parser's own words for it.
            assert!(!e.contains(" at line ") && !e.contains("Options"), "{e}");
        }
    }

    #[test]
    fn a_file_without_modules_is_refused() {
        for text in ["", "# nothing yet\n", "modules:\n", "modules: {}\n"] {
            let e = parse_str(text).expect_err(text);
            assert_eq!(
                e, "m.yml: no module is defined (`modules:` needs at least one)",
                "{text:?}"
            );
        }
    }

    #[test]
    fn huge_values_are_refused() {
        let long = "x".repeat(STRING_MAX + 1);
        let e = parse_str(&format!(
            "modules:\n  a:\n    prober: tcp\n    tcp:\n      query_response:\n        - send: \"{long}\"\n"
        ))
        .unwrap_err();
        assert!(e.starts_with("m.yml:6: send is longer"), "{e}");
        let codes = vec!["200"; LIST_MAX + 1].join(", ");
        let e = parse_str(&format!(
            "modules:\n  a:\n    prober: http\n    http:\n      valid_status_codes: [{codes}]\n"
        ))
        .unwrap_err();
        assert!(e.contains("more than 100 entries"), "{e}");
        // A billion laughs: the parser's budget stops it.
        let mut bomb = String::from("a: &a [x,x,x,x,x,x,x,x,x,x]\n");
        for i in 0..9 {
            let prev = (b'a' + i) as char;
            let next = (b'a' + i + 1) as char;
            bomb.push_str(&format!(
                "{next}: &{next} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]\n"
            ));
        }
        bomb.push_str("modules: {}\n");
        let e = parse_str(&bomb).unwrap_err();
        assert!(e.starts_with("m.yml:"), "{e}");
        assert!(!e.contains('\n'));
    }
}
