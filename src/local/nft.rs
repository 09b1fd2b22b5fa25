//! This machine's nftables ruleset (`nft -t -j list ruleset`): which rules drop or reject a port.
//!
//! [`read`] runs `nft` with fixed arguments, bounded in time and size; [`parse`] reads its JSON
//! and is tested on fixtures and on arbitrary input (it must never panic: the ruleset is
//! whatever root, a container runtime or an attacker with CAP_NET_ADMIN loaded).
//! Only what can change a connection to or from the port is kept: rules in chains hooked to
//! `input` or `output` whose TCP destination-port match includes the port and whose verdict is
//! `drop` or `reject`, and such chains' `drop` policies.

use std::collections::HashMap;
use std::fmt;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Where `nft` is looked for, in order. Never through `PATH`: canreach is often run with sudo,
/// and a `PATH` entry writable by the user would run their `nft` as root.
pub(crate) const NFT_PATHS: [&str; 3] = ["/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft"];

/// Largest ruleset read. `-t` leaves set contents out, so real rulesets are far smaller; a
/// larger one is refused rather than read into memory and walked within the check's deadline.
pub(crate) const MAX_RULESET: usize = 4 << 20;

/// Most of nft's stderr kept (its first line is all that is reported).
const MAX_STDERR: usize = 64 << 10;

/// Longest rule text kept: a rule with a huge anonymous set stays one readable line.
const MAX_TEXT: usize = 300;

/// The chain hook a rule sits in: what traffic it sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Hook {
    /// Traffic to this machine.
    Input,
    /// Traffic this machine sends.
    Output,
}

impl Hook {
    /// The word nft and the JSON use: `input`, `output`.
    pub fn as_str(self) -> &'static str {
        match self {
            Hook::Input => "input",
            Hook::Output => "output",
        }
    }
}

impl fmt::Display for Hook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a rule (or a chain policy) does to a matching packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RuleVerdict {
    /// Silently discarded: the sender sees nothing.
    Drop,
    /// Answered with an ICMP error or a TCP reset.
    Reject,
}

impl RuleVerdict {
    /// The word nft and the JSON use: `drop`, `reject`.
    pub fn as_str(self) -> &'static str {
        match self {
            RuleVerdict::Drop => "drop",
            RuleVerdict::Reject => "reject",
        }
    }
}

impl fmt::Display for RuleVerdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A rule (or chain policy) that can stop the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirewallRule {
    /// `ip`, `ip6`, `inet`, …
    pub family: String,
    pub table: String,
    pub chain: String,
    pub hook: Hook,
    pub verdict: RuleVerdict,
    /// The rule as nft would print it, near enough: `tcp dport 5432 drop`; `policy drop` for a
    /// chain's policy. At most a few hundred characters (longer ends in `…`). Raw: escape it
    /// when printing.
    pub text: String,
    /// `nft` rule handle, to delete it with `nft delete rule FAMILY TABLE CHAIN handle N`.
    pub handle: Option<u64>,
}

/// Why the ruleset could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NftError {
    #[error("nft is not installed")]
    Missing,
    #[error("reading the firewall needs root (nft said: {0})")]
    NotPermitted(String),
    #[error("nft failed: {0}")]
    Failed(String),
    #[error("nft printed JSON that could not be read: {0}")]
    BadJson(String),
    #[error("the ruleset is too large to read (over {} MiB)", .0 >> 20)]
    TooLarge(usize),
    #[error("nft did not finish in time")]
    TimedOut,
    /// Running or reading nft failed: the OS's errno when there is one (the diagnosis words
    /// it from its errno table; the OS's text is not a fact).
    #[error("nft could not be run (errno {errno:?})")]
    Io { errno: Option<i32> },
}

/// The first of [`NFT_PATHS`] that is a file.
fn nft_path() -> Option<&'static Path> {
    NFT_PATHS
        .iter()
        .map(Path::new)
        .find(|p| p.metadata().is_ok_and(|m| m.is_file()))
}

/// Run `nft -t -j list ruleset` (absolute path, fixed arguments, no shell, empty environment)
/// and parse it for `port`. Killed and reaped at `deadline`; output over [`MAX_RULESET`] is
/// refused.
pub(crate) fn read(port: u16, deadline: Instant) -> Result<Vec<FirewallRule>, NftError> {
    parse(&read_ruleset(deadline)?, port)
}

/// [`read`] for a UDP port: rules matching `udp dport` (or `th dport`).
pub(crate) fn read_udp(port: u16, deadline: Instant) -> Result<Vec<FirewallRule>, NftError> {
    let doc: Value = serde_json::from_slice(&read_ruleset(deadline)?)
        .map_err(|e| NftError::BadJson(e.to_string()))?;
    parse_value_for(&doc, port, "udp")
}

/// The ruleset as `nft -t -j list ruleset` prints it (bounded, killed at `deadline`): one run
/// serves every port (see `local::shared`).
pub(crate) fn read_ruleset(deadline: Instant) -> Result<Vec<u8>, NftError> {
    let nft = nft_path().ok_or(NftError::Missing)?;
    let mut cmd = Command::new(nft);
    // `-t` (terse) leaves set elements out: a 500k-element set made 7.5 MB and 6.3 s of output.
    // An empty environment gives the C locale, so the messages matched below are English.
    cmd.args(["-t", "-j", "list", "ruleset"]).env_clear();
    let out = run_bounded(&mut cmd, deadline, MAX_RULESET)?;
    if !out.success {
        let msg = String::from_utf8_lossy(&out.stderr)
            .lines()
            .next()
            .unwrap_or("")
            .trim()
            .chars()
            .take(MAX_TEXT)
            .collect::<String>();
        return Err(if msg.contains("Operation not permitted") {
            NftError::NotPermitted(msg)
        } else {
            NftError::Failed(msg)
        });
    }
    Ok(out.stdout)
}

/// What a bounded run gathered.
#[derive(Debug)]
struct Output {
    success: bool,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

/// Run `cmd` with stdin closed, reading its stdout (at most `limit` bytes) and stderr until
/// both close, then reaping it — all before `deadline`. On a timeout or an oversized stdout the
/// child is killed (by its pid, `Child::kill`) and reaped, so no zombie and no stuck read
/// remain. Single-threaded: `poll` on both pipes.
fn run_bounded(cmd: &mut Command, deadline: Instant, limit: usize) -> Result<Output, NftError> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => NftError::Missing,
            _ => NftError::Io {
                errno: e.raw_os_error(),
            },
        })?;
    let result = pump(&mut child, deadline, limit);
    if result.is_err() {
        // Either it overran or something failed reading: it must not outlive the check.
        let _ = child.kill();
        let _ = child.wait();
    }
    result
}

fn pump(child: &mut Child, deadline: Instant, limit: usize) -> Result<Output, NftError> {
    let (Some(mut out), Some(mut err)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(NftError::Io { errno: None });
    };
    for fd in [out.as_raw_fd(), err.as_raw_fd()] {
        crate::sys::set_nonblocking(fd).map_err(|e| NftError::Io {
            errno: e.raw_os_error(),
        })?;
    }
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    let (mut out_open, mut err_open) = (true, true);
    let mut buf = vec![0u8; 64 << 10];
    while out_open || err_open {
        let ms = remaining_ms(deadline).ok_or(NftError::TimedOut)?;
        let fds = [
            out_open.then(|| out.as_raw_fd()),
            err_open.then(|| err.as_raw_fd()),
        ];
        let ready = match crate::sys::poll_readable(fds, ms) {
            Ok(r) => r,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(NftError::Io {
                    errno: e.raw_os_error(),
                });
            }
        };
        if ready[0] {
            out_open = drain(&mut out, &mut buf, &mut stdout, limit)?;
            if stdout.len() > limit {
                return Err(NftError::TooLarge(limit));
            }
        }
        if ready[1] {
            err_open = drain(&mut err, &mut buf, &mut stderr, MAX_STDERR)?;
            stderr.truncate(MAX_STDERR);
        }
    }
    // Both pipes closed: the child has exited or is about to. Reap it, still bounded.
    loop {
        if let Some(status) = child.try_wait().map_err(|e| NftError::Io {
            errno: e.raw_os_error(),
        })? {
            return Ok(Output {
                success: status.success(),
                stdout,
                stderr,
            });
        }
        remaining_ms(deadline).ok_or(NftError::TimedOut)?;
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Read what is available, stopping once `into` holds more than `cap` bytes; `Ok(false)` at
/// end of file.
fn drain(
    r: &mut impl Read,
    buf: &mut [u8],
    into: &mut Vec<u8>,
    cap: usize,
) -> Result<bool, NftError> {
    loop {
        match r.read(buf) {
            Ok(0) => return Ok(false),
            Ok(n) => into.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(NftError::Io {
                    errno: e.raw_os_error(),
                });
            }
        }
        // Stop on a flood; the caller decides what over `cap` means.
        if into.len() > cap {
            return Ok(true);
        }
    }
}

/// Milliseconds left until `deadline` for `poll` (at least 1 while time remains), `None` once
/// it has passed.
fn remaining_ms(deadline: Instant) -> Option<i32> {
    let left = deadline.checked_duration_since(Instant::now())?;
    if left.is_zero() {
        return None;
    }
    Some(i32::try_from(left.as_millis()).unwrap_or(i32::MAX).max(1))
}

/// A chain's identity: (family, table, name).
type ChainKey = (String, String, String);

/// Find the rules of an `nft -j list ruleset` document that drop or reject TCP `port`.
/// Any input gives `Ok` or [`NftError::BadJson`]; nothing in it can make this panic.
pub fn parse(json: &[u8], port: u16) -> Result<Vec<FirewallRule>, NftError> {
    let doc: Value = serde_json::from_slice(json).map_err(|e| NftError::BadJson(e.to_string()))?;
    parse_value(&doc, port)
}

/// [`parse`] on a document already decoded.
pub(crate) fn parse_value(doc: &Value, port: u16) -> Result<Vec<FirewallRule>, NftError> {
    parse_value_for(doc, port, "tcp")
}

/// [`parse_value`] for the destination port of `proto` (`tcp`, `udp`); `th dport` (any
/// transport header) matches both.
pub(crate) fn parse_value_for(
    doc: &Value,
    port: u16,
    proto: &str,
) -> Result<Vec<FirewallRule>, NftError> {
    let items = doc
        .get("nftables")
        .and_then(Value::as_array)
        .ok_or_else(|| NftError::BadJson("no `nftables` array".into()))?;
    // chain → hook, for rules to look up (a map: a hostile ruleset may have many chains).
    let mut hooks: HashMap<ChainKey, Hook> = HashMap::new();
    let mut found = Vec::new();
    for item in items {
        if let Some(c) = item.get("chain") {
            let hook = match c.get("hook").and_then(Value::as_str) {
                Some("input") => Hook::Input,
                Some("output") => Hook::Output,
                _ => continue,
            };
            let Some(key) = key(c, "name") else {
                continue;
            };
            hooks.insert(key.clone(), hook);
            if c.get("policy").and_then(Value::as_str) == Some("drop") {
                found.push(FirewallRule {
                    family: key.0,
                    table: key.1,
                    chain: key.2,
                    hook,
                    verdict: RuleVerdict::Drop,
                    text: "policy drop".into(),
                    handle: None,
                });
            }
        } else if let Some(r) = item.get("rule") {
            let Some(k) = key(r, "chain") else { continue };
            let Some(&hook) = hooks.get(&k) else {
                continue;
            };
            let Some(expr) = r.get("expr").and_then(Value::as_array) else {
                continue;
            };
            if let Some((verdict, text)) = rule_stops_port(expr, port, proto) {
                found.push(FirewallRule {
                    family: k.0,
                    table: k.1,
                    chain: k.2,
                    hook,
                    verdict,
                    text,
                    handle: r.get("handle").and_then(Value::as_u64),
                });
            }
        }
    }
    Ok(found)
}

fn key(v: &Value, name_field: &str) -> Option<ChainKey> {
    let s = |f: &str| v.get(f).and_then(Value::as_str).map(str::to_string);
    Some((s("family")?, s("table")?, s(name_field)?))
}

/// `Some((verdict, text))` when the rule matches destination `port` of `transport` (`tcp`,
/// `udp`) and drops or rejects.
fn rule_stops_port(expr: &[Value], port: u16, transport: &str) -> Option<(RuleVerdict, String)> {
    let mut matches_port = false;
    let mut words = Vec::new();
    let mut verdict = None;
    let str_at = |v: &Value, path: &[&str]| -> Option<String> {
        let mut cur = v;
        for p in path {
            cur = cur.get(*p)?;
        }
        cur.as_str().map(str::to_string)
    };
    for e in expr {
        if let Some(m) = e.get("match") {
            let field = str_at(m, &["left", "payload", "field"]).unwrap_or_default();
            let proto = str_at(m, &["left", "payload", "protocol"]).unwrap_or_default();
            let op = str_at(m, &["op"]).unwrap_or_else(|| "==".into());
            let right = m.get("right").unwrap_or(&Value::Null);
            words.push(format!("{proto} {field} {}{}", op_word(&op), show(right)));
            if field == "dport" && (proto == transport || proto == "th") {
                let hit = contains(right, port);
                matches_port = if op == "!=" { !hit } else { hit };
                if !matches_port {
                    return None;
                }
            }
        } else if e.get("drop").is_some() {
            verdict = Some(RuleVerdict::Drop);
        } else if let Some(r) = e.get("reject") {
            verdict = Some(RuleVerdict::Reject);
            let with = match (
                r.get("type").and_then(Value::as_str),
                r.get("expr").and_then(Value::as_str),
            ) {
                (Some("tcp reset"), _) => " with tcp reset".to_string(),
                (Some(t), Some(x)) => format!(" with {t} {x}"),
                _ => String::new(),
            };
            words.push(format!("reject{with}"));
        }
    }
    let verdict = verdict?;
    if verdict == RuleVerdict::Drop {
        words.push("drop".into());
    }
    matches_port.then(|| (verdict, bounded(words.join(" "))))
}

/// `s` cut to [`MAX_TEXT`] characters, ending in `…` when cut.
fn bounded(s: String) -> String {
    match s.char_indices().nth(MAX_TEXT) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s,
    }
}

fn op_word(op: &str) -> &str {
    match op {
        "==" | "in" => "",
        "!=" => "!= ",
        _ => op,
    }
}

/// A match's right-hand side as nft writes it. Sets and ranges nest (serde_json limits the
/// depth to 128); the text is cut by [`bounded`] afterwards, and sets are shown up to a count.
fn show(v: &Value) -> String {
    if let Some(set) = v.get("set").and_then(Value::as_array) {
        let mut parts: Vec<String> = set.iter().take(32).map(show).collect();
        if set.len() > 32 {
            parts.push("…".into());
        }
        return format!("{{ {} }}", parts.join(", "));
    }
    if let Some(r) = v.get("range").and_then(Value::as_array) {
        // `{"range": [1]}` is not a range nft writes, but it must not be an index panic.
        let end = |i: usize| r.get(i).map_or_else(|| "?".to_string(), show);
        return format!("{}-{}", end(0), end(1));
    }
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Does a match's right-hand side (number, set, range) include `port`?
fn contains(v: &Value, port: u16) -> bool {
    let p = u64::from(port);
    if let Some(n) = v.as_u64() {
        return n == p;
    }
    if let Some(set) = v.get("set").and_then(Value::as_array) {
        return set.iter().any(|x| contains(x, port));
    }
    if let Some(r) = v.get("range").and_then(Value::as_array) {
        return matches!((r.first().and_then(Value::as_u64), r.get(1).and_then(Value::as_u64)),
            (Some(a), Some(b)) if a <= p && p <= b);
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &[u8] = include_bytes!("../../tests/fixtures/nft_ruleset.json");

    #[test]
    fn finds_output_drop_input_reject_sets_ranges_and_policies() {
        let rules = parse(FIXTURE, 5432).unwrap();
        let texts: Vec<(Hook, &str)> = rules.iter().map(|r| (r.hook, r.text.as_str())).collect();
        assert!(
            texts.contains(&(Hook::Output, "tcp dport 5432 drop")),
            "{texts:?}"
        );
        assert!(
            texts.contains(&(
                Hook::Input,
                "tcp dport { 22, 5432 } reject with icmpx admin-prohibited"
            )),
            "{texts:?}"
        );
        assert!(
            texts.contains(&(Hook::Input, "tcp dport 5000-6000 drop")),
            "{texts:?}"
        );
        assert!(
            !texts.iter().any(|(_, t)| t.contains("8080")),
            "other ports are not reported"
        );
        assert!(!texts.iter().any(|(_, t)| t.contains("accept")));
        assert!(
            rules
                .iter()
                .filter(|r| r.text != "policy drop")
                .all(|r| r.handle.is_some())
        );
        assert!(
            rules
                .iter()
                .any(|r| r.text == "policy drop" && r.hook == Hook::Input)
        );
    }

    #[test]
    fn a_port_outside_every_rule_finds_only_policies() {
        let rules = parse(FIXTURE, 443).unwrap();
        assert!(rules.iter().all(|r| r.text == "policy drop"), "{rules:?}");
    }

    #[test]
    fn hook_and_verdict_read_as_words() {
        let rules = parse(FIXTURE, 5432).unwrap();
        assert_eq!(rules[0].hook.as_str(), "output");
        assert_eq!(rules[0].verdict.as_str(), "drop");
        assert_eq!(Hook::Input.to_string(), "input");
        assert_eq!(RuleVerdict::Reject.to_string(), "reject");
    }

    #[test]
    fn hostile_names_are_kept_and_flagged() {
        // As `nft -j -f` accepts and `nft -j list ruleset` prints them.
        let doc = br#"{"nftables": [
          {"chain": {"family": "inet", "table": "a b;$(id)\u001b[31m", "name": "c", "hook": "output", "policy": "drop"}},
          {"chain": {"family": "inet", "table": "lab_output", "name": "c", "hook": "output", "policy": "drop"}}
        ]}"#;
        let rules = parse(doc, 1).unwrap();
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0].table, "a b;$(id)\u{1b}[31m");
    }

    #[test]
    fn bad_json_is_an_error_not_a_panic() {
        assert!(matches!(parse(b"{", 1), Err(NftError::BadJson(_))));
        assert!(matches!(parse(b"{}", 1), Err(NftError::BadJson(_))));
        assert!(matches!(parse(b"[1]", 1), Err(NftError::BadJson(_))));
        assert_eq!(parse(br#"{"nftables": []}"#, 1), Ok(vec![]));
    }

    /// A chain hooked to input and one rule in it with these expressions.
    fn one_rule(expr: &str) -> Vec<u8> {
        format!(
            r#"{{"nftables": [
              {{"chain": {{"family": "inet", "table": "t", "name": "c", "hook": "input"}}}},
              {{"rule": {{"family": "inet", "table": "t", "chain": "c", "handle": 3, "expr": {expr}}}}}
            ]}}"#
        )
        .into_bytes()
    }

    #[test]
    fn udp_rules_match_udp_ports_and_th_rules_match_both() {
        let rule = |proto: &str| {
            one_rule(&format!(
                r#"[{{"match": {{"op": "==", "left": {{"payload": {{"protocol": "{proto}", "field": "dport"}}}}, "right": 53}}}}, {{"drop": null}}]"#
            ))
        };
        let doc = |b: Vec<u8>| serde_json::from_slice::<Value>(&b).unwrap();
        let udp = doc(rule("udp"));
        let found = parse_value_for(&udp, 53, "udp").unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].text, "udp dport 53 drop");
        assert_eq!(parse_value(&udp, 53), Ok(vec![]));
        assert_eq!(parse_value_for(&doc(rule("tcp")), 53, "udp"), Ok(vec![]));
        assert_eq!(
            parse_value_for(&doc(rule("th")), 53, "udp").unwrap().len(),
            1
        );
        assert_eq!(parse_value(&doc(rule("th")), 53).unwrap().len(), 1);
    }

    #[test]
    fn malformed_ranges_sets_and_matches_do_not_panic() {
        let dport = |right: &str| {
            format!(
                r#"[{{"match": {{"op": "==", "left": {{"payload": {{"protocol": "tcp", "field": "dport"}}}}, "right": {right}}}}}, {{"drop": null}}]"#
            )
        };
        for right in [
            r#"{"range": [1]}"#,
            r#"{"range": []}"#,
            r#"{"range": "x"}"#,
            r#"{"range": [1, "x"]}"#,
            r#"{"set": [{"range": [5432]}, []]}"#,
            r#"{"set": 5}"#,
            "null",
            r#"[[[[]]]]"#,
            "-1",
            "1e300",
        ] {
            assert_eq!(parse(&one_rule(&dport(right)), 5432), Ok(vec![]), "{right}");
        }
        // A one-element range matches nothing but still shows.
        for expr in [
            r#"[{"match": 5}, {"drop": 1}]"#,
            r#"[{"match": {"left": [], "right": {"range": [1]}}}, {"reject": 7}]"#,
            r#"[{"match": {"left": {"payload": 1}}}]"#,
            r#"[1, "x", null, {"reject": {"type": 5, "expr": []}}]"#,
            r#"{"not": "an array"}"#,
        ] {
            assert_eq!(parse(&one_rule(expr), 5432), Ok(vec![]), "{expr}");
        }
        let shown = show(&serde_json::json!({"range": [1]}));
        assert_eq!(shown, "1-?");
    }

    #[test]
    fn a_huge_anonymous_set_gives_a_bounded_text() {
        let set: Vec<String> = (1..=5000).map(|n| n.to_string()).collect();
        let expr = format!(
            r#"[{{"match": {{"op": "==", "left": {{"payload": {{"protocol": "tcp", "field": "dport"}}}}, "right": {{"set": [{}]}}}}}}, {{"drop": null}}]"#,
            set.join(",")
        );
        let rules = parse(&one_rule(&expr), 4999).unwrap();
        assert_eq!(rules.len(), 1);
        assert!(
            rules[0].text.chars().count() <= MAX_TEXT + 1,
            "{}",
            rules[0].text
        );
    }

    #[test]
    fn a_slow_child_is_killed_at_the_deadline() {
        let start = Instant::now();
        let mut cmd = Command::new("/bin/sh");
        cmd.args(["-c", "sleep 30"]);
        let r = run_bounded(&mut cmd, start + Duration::from_millis(200), 1024);
        assert_eq!(r.unwrap_err(), NftError::TimedOut);
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{:?}",
            start.elapsed()
        );
    }

    #[test]
    fn a_child_that_closes_its_pipes_but_lingers_is_bounded_too() {
        let start = Instant::now();
        let mut cmd = Command::new("/bin/sh");
        cmd.args(["-c", "exec >&- 2>&-; sleep 30"]);
        let r = run_bounded(&mut cmd, start + Duration::from_millis(200), 1024);
        assert_eq!(r.unwrap_err(), NftError::TimedOut);
        assert!(start.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn oversized_output_is_refused() {
        let mut cmd = Command::new("/bin/sh");
        cmd.args(["-c", "head -c 200000 /dev/zero; sleep 30"]);
        let start = Instant::now();
        let r = run_bounded(&mut cmd, start + Duration::from_secs(10), 100_000);
        assert_eq!(r.unwrap_err(), NftError::TooLarge(100_000));
        assert!(start.elapsed() < Duration::from_secs(5));
        assert_eq!(
            NftError::TooLarge(MAX_RULESET).to_string(),
            "the ruleset is too large to read (over 4 MiB)"
        );
    }

    #[test]
    fn a_normal_child_is_read_whole() {
        let mut cmd = Command::new("/bin/sh");
        cmd.args(["-c", "echo out; echo err >&2; exit 3"]);
        let r = run_bounded(&mut cmd, Instant::now() + Duration::from_secs(10), 1024).unwrap();
        assert_eq!(
            (r.success, r.stdout.as_slice(), r.stderr.as_slice()),
            (false, &b"out\n"[..], &b"err\n"[..])
        );
    }

    #[test]
    fn nft_is_never_looked_up_through_path() {
        assert!(NFT_PATHS.iter().all(|p| p.starts_with('/')));
        if let Some(p) = nft_path() {
            assert!(p.is_absolute());
        }
    }

    use proptest::prelude::*;

    /// JSON trees built from nft's own vocabulary, so the generator reaches the parser's
    /// branches (chains, rules, matches, sets, ranges) with wrong shapes everywhere.
    fn nft_value() -> impl Strategy<Value = Value> {
        let word = prop::sample::select(vec![
            "input",
            "output",
            "forward",
            "tcp",
            "th",
            "udp",
            "dport",
            "drop",
            "reject",
            "==",
            "!=",
            "in",
            "inet",
            "t",
            "c",
            "tcp reset",
            "icmpx",
        ]);
        let key = prop::sample::select(vec![
            "nftables", "chain", "rule", "hook", "family", "table", "name", "expr", "match",
            "left", "payload", "field", "protocol", "op", "right", "set", "range", "drop",
            "reject", "type", "handle", "policy",
        ]);
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            (0u64..70_000).prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            word.prop_map(Value::from),
            ".{0,8}".prop_map(Value::from),
        ];
        leaf.prop_recursive(6, 256, 8, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
                prop::collection::vec((key.clone(), inner), 0..6).prop_map(|kv| {
                    Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
                }),
            ]
        })
    }

    proptest! {
        #[test]
        fn parse_never_panics_on_any_tree(items in prop::collection::vec(nft_value(), 0..8), port in 1u16..) {
            let doc = serde_json::json!({ "nftables": items });
            let _ = parse_value(&doc, port);
            let _ = parse(doc.to_string().as_bytes(), port);
        }
        #[test]
        fn parse_never_panics_on_any_bytes(b in prop::collection::vec(any::<u8>(), 0..256), port in 1u16..) {
            let _ = parse(&b, port);
        }
        #[test]
        fn parse_never_panics_on_any_value(v in nft_value(), port in 1u16..) {
            let _ = parse_value(&v, port);
        }
    }
}
