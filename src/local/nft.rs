//! This machine's nftables ruleset (`nft -j list ruleset`): which rules drop or reject a port.
//!
//! [`read`] runs `nft` with fixed arguments; [`parse`] reads its JSON and is tested on fixtures.
//! Only what can change a connection to or from the port is kept: rules in chains hooked to
//! `input` or `output` whose TCP destination-port match includes the port and whose verdict is
//! `drop` or `reject`, and such chains' `drop` policies.

use serde::Serialize;
use serde_json::Value;

/// A rule (or chain policy) that can stop the connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FirewallRule {
    /// `ip`, `ip6`, `inet`, …
    pub family: String,
    pub table: String,
    pub chain: String,
    /// `input` (traffic to this machine) or `output` (traffic this machine sends).
    pub hook: String,
    /// `drop` or `reject`.
    pub verdict: String,
    /// The rule as nft would print it, near enough: `tcp dport 5432 drop`; `policy drop` for a
    /// chain's policy.
    pub text: String,
    /// `nft` rule handle, to delete it with `nft delete rule FAMILY TABLE CHAIN handle N`.
    #[serde(skip_serializing_if = "Option::is_none")]
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
}

/// Run `nft -j list ruleset` (fixed arguments, no shell) and parse it for `port`.
pub fn read(port: u16) -> Result<Vec<FirewallRule>, NftError> {
    let out = std::process::Command::new("nft")
        .args(["-j", "list", "ruleset"])
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|_| NftError::Missing)?;
    if !out.status.success() {
        let msg = String::from_utf8_lossy(&out.stderr)
            .lines()
            .next()
            .unwrap_or("")
            .trim()
            .to_string();
        return Err(if msg.contains("Operation not permitted") {
            NftError::NotPermitted(msg)
        } else {
            NftError::Failed(msg)
        });
    }
    parse(&out.stdout, port)
}

/// Find the rules of an `nft -j list ruleset` document that drop or reject TCP `port`.
pub fn parse(json: &[u8], port: u16) -> Result<Vec<FirewallRule>, NftError> {
    let doc: Value = serde_json::from_slice(json).map_err(|e| NftError::BadJson(e.to_string()))?;
    let items = doc["nftables"]
        .as_array()
        .ok_or_else(|| NftError::BadJson("no `nftables` array".into()))?;
    // chain (family, table, name) → hook, for rules to look up.
    let mut hooks: Vec<((String, String, String), String)> = Vec::new();
    let mut found = Vec::new();
    for item in items {
        if let Some(c) = item.get("chain") {
            let (Some(hook), Some(key)) = (c["hook"].as_str(), key(c, "name")) else {
                continue;
            };
            if hook != "input" && hook != "output" {
                continue;
            }
            hooks.push((key.clone(), hook.to_string()));
            if c["policy"] == "drop" {
                found.push(FirewallRule {
                    family: key.0,
                    table: key.1,
                    chain: key.2,
                    hook: hook.to_string(),
                    verdict: "drop".into(),
                    text: "policy drop".into(),
                    handle: None,
                });
            }
        } else if let Some(r) = item.get("rule") {
            let Some(k) = key(r, "chain") else { continue };
            let Some((_, hook)) = hooks.iter().find(|(h, _)| *h == k) else {
                continue;
            };
            let Some(expr) = r["expr"].as_array() else {
                continue;
            };
            if let Some((verdict, text)) = rule_stops_port(expr, port) {
                found.push(FirewallRule {
                    family: k.0,
                    table: k.1,
                    chain: k.2,
                    hook: hook.clone(),
                    verdict,
                    text,
                    handle: r["handle"].as_u64(),
                });
            }
        }
    }
    Ok(found)
}

fn key(v: &Value, name_field: &str) -> Option<(String, String, String)> {
    Some((
        v["family"].as_str()?.to_string(),
        v["table"].as_str()?.to_string(),
        v[name_field].as_str()?.to_string(),
    ))
}

/// `Some((verdict, text))` when the rule matches TCP destination `port` and drops or rejects.
fn rule_stops_port(expr: &[Value], port: u16) -> Option<(String, String)> {
    let mut matches_port = false;
    let mut words = Vec::new();
    let mut verdict = None;
    for e in expr {
        if let Some(m) = e.get("match") {
            let payload = &m["left"]["payload"];
            let field = payload["field"].as_str().unwrap_or("");
            let proto = payload["protocol"].as_str().unwrap_or("");
            let op = m["op"].as_str().unwrap_or("==");
            let right = &m["right"];
            words.push(format!("{proto} {field} {}{}", op_word(op), show(right)));
            if field == "dport" && (proto == "tcp" || proto == "th") {
                let hit = contains(right, port);
                matches_port = if op == "!=" { !hit } else { hit };
                if !matches_port {
                    return None;
                }
            }
        } else if e.get("drop").is_some() {
            verdict = Some("drop");
        } else if let Some(r) = e.get("reject") {
            verdict = Some("reject");
            let with = match (r["type"].as_str(), r["expr"].as_str()) {
                (Some("tcp reset"), _) => " with tcp reset".to_string(),
                (Some(t), Some(x)) => format!(" with {t} {x}"),
                _ => String::new(),
            };
            words.push(format!("reject{with}"));
        }
    }
    let verdict = verdict?;
    if verdict == "drop" {
        words.push("drop".into());
    }
    matches_port.then(|| (verdict.to_string(), words.join(" ")))
}

fn op_word(op: &str) -> &str {
    match op {
        "==" | "in" => "",
        "!=" => "!= ",
        _ => op,
    }
}

fn show(v: &Value) -> String {
    if let Some(set) = v.get("set").and_then(Value::as_array) {
        let parts: Vec<String> = set.iter().map(show).collect();
        return format!("{{ {} }}", parts.join(", "));
    }
    if let Some(r) = v.get("range").and_then(Value::as_array) {
        return format!("{}-{}", show(&r[0]), show(&r[1]));
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
        let texts: Vec<(&str, &str)> = rules
            .iter()
            .map(|r| (r.hook.as_str(), r.text.as_str()))
            .collect();
        assert!(
            texts.contains(&("output", "tcp dport 5432 drop")),
            "{texts:?}"
        );
        assert!(
            texts.contains(&(
                "input",
                "tcp dport { 22, 5432 } reject with icmpx admin-prohibited"
            )),
            "{texts:?}"
        );
        assert!(
            texts.contains(&("input", "tcp dport 5000-6000 drop")),
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
                .any(|r| r.text == "policy drop" && r.hook == "input")
        );
    }

    #[test]
    fn a_port_outside_every_rule_finds_only_policies() {
        let rules = parse(FIXTURE, 443).unwrap();
        assert!(rules.iter().all(|r| r.text == "policy drop"), "{rules:?}");
    }

    #[test]
    fn forward_chains_are_not_this_machines_traffic() {
        let rules = parse(FIXTURE, 9999).unwrap();
        assert!(rules.iter().all(|r| r.hook != "forward"));
    }

    #[test]
    fn bad_json_is_an_error_not_a_panic() {
        assert!(matches!(parse(b"{", 1), Err(NftError::BadJson(_))));
        assert!(matches!(parse(b"{}", 1), Err(NftError::BadJson(_))));
        assert_eq!(parse(br#"{"nftables": []}"#, 1), Ok(vec![]));
    }
}
