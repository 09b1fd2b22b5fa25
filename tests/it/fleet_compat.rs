//! `canreach serve` beside blackbox_exporter 0.23 (Debian's `prometheus-blackbox-exporter`),
//! on the same module file and the same targets, in the namespace lab of
//! `tests/it/common/fleet.rs`: an open port, a closed one, a router's reject, a silent drop, a
//! name that does not exist, HTTP 200 and 503, TLS good and expired.

use crate::common;

use common::fleet::*;
use common::*;

/// The harness itself: the lab's targets are what the table in `fleet::cases` says, by
/// blackbox_exporter (probe_success, the HTTP status) and by the CLI (verdict, finding).
#[test]
fn the_lab_targets_are_what_the_table_says() {
    require_lab!();
    let fleet = FleetLab::new("fleet-table");
    let _bb = fleet.blackbox();
    for case in cases() {
        let r = fleet.probe(BLACKBOX, &case);
        assert_eq!(r.status, 200, "{}: {}", case.what, r.body);
        let m = parse_metrics(&r.body);
        assert_eq!(
            m.value("probe_success"),
            Some(if case.success { 1.0 } else { 0.0 }),
            "blackbox, {}:\n{}",
            case.what,
            r.body
        );
        if let Some(code) = case.http_status {
            assert_eq!(
                m.value("probe_http_status_code"),
                Some(f64::from(code)),
                "blackbox, {}",
                case.what
            );
        }
        let ca = fleet.dir.path("ca.pem");
        let mut args = vec!["--json", "--timeout", "2.5"];
        if case.module == "tcp_connect" {
            args.push("--tcp");
        }
        args.push(&case.target);
        let run = run_in_env(
            Some(&fleet.lab.client),
            &args,
            &[("SSL_CERT_FILE", ca.to_str().unwrap())],
        );
        let v = run.json();
        assert_eq!(
            v["verdict"], case.verdict,
            "CLI, {}: {}",
            case.what, v["summary"]
        );
        // probe_failure_info names the report's strongest error (its first finding of
        // severity `error`; `partial_reachability`, a warning, comes before it for dual.lab).
        if let Some(f) = case.finding {
            let first_error = v["findings"]
                .as_array()
                .unwrap()
                .iter()
                .find(|x| x["severity"] == "error")
                .map(|x| x["id"].as_str().unwrap());
            assert_eq!(first_error, Some(f), "CLI, {}: {:?}", case.what, ids(&v));
        }
    }
}

/// The series that say the same thing in both exporters' output for one probe: their values
/// must agree (times are not among them; the hash is of the address, the expiry is the
/// certificate's, the lengths are the lab server's answer).
const SAME_VALUE: [&str; 12] = [
    "probe_success",
    "probe_ip_protocol",
    "probe_ip_addr_hash",
    "probe_failed_due_to_regex",
    "probe_http_status_code",
    "probe_http_ssl",
    "probe_http_version",
    "probe_http_redirects",
    "probe_ssl_earliest_cert_expiry",
    "probe_ssl_last_chain_expiry_timestamp_seconds",
    "probe_http_content_length",
    "probe_http_uncompressed_body_length",
];

/// Every disagreement of one probe between blackbox_exporter (`b`) and canreach serve (`c`),
/// and between canreach serve and what the lab's table says.
fn disagreements(case: &Case, b: &Reply, c: &Reply) -> Vec<String> {
    let mut out = vec![];
    let mut say = |s: String| {
        out.push(format!(
            "{} ({} {}): {s}",
            case.what, case.module, case.target
        ))
    };
    if c.status != 200 {
        say(format!("canreach answered HTTP {}: {}", c.status, c.body));
        return out;
    }
    match c.header("content-type") {
        Some(t) if t.starts_with("text/plain") && t.contains("version=0.0.4") => {}
        t => say(format!("content type {t:?}, not the text format 0.0.4")),
    }
    let bm = parse_metrics(&b.body);
    let cm = parse_metrics(&c.body);

    // Every metric blackbox_exporter gives, by name, with its type.
    for name in bm.names() {
        if !cm.names().contains(name) {
            say(format!("missing {name}"));
        } else if bm.types.get(name) != cm.types.get(name) {
            say(format!(
                "{name} has type {:?}, blackbox_exporter {:?}",
                cm.types.get(name),
                bm.types.get(name)
            ));
        }
    }
    // The same label names (and, for phases, TLS versions and the certificate, the same
    // values).
    for name in bm.names() {
        let keys = |m: &Metrics| -> std::collections::BTreeSet<Vec<String>> {
            m.all(name)
                .iter()
                .map(|s| {
                    s.labels
                        .iter()
                        .map(|(k, v)| match name {
                            "probe_http_duration_seconds"
                            | "probe_tls_version_info"
                            | "probe_ssl_last_chain_info" => format!("{k}={v}"),
                            _ => k.clone(),
                        })
                        .collect()
                })
                .collect()
        };
        if cm.names().contains(name) && keys(&bm) != keys(&cm) {
            say(format!(
                "{name} labels {:?}, blackbox_exporter {:?}",
                keys(&cm),
                keys(&bm)
            ));
        }
    }
    for name in SAME_VALUE {
        if let (Some(bv), Some(cv)) = (bm.value(name), cm.value(name))
            && bv != cv
        {
            say(format!("{name} {cv}, blackbox_exporter {bv}"));
        }
    }
    // What the table says.
    let success = if case.success { 1.0 } else { 0.0 };
    if cm.value("probe_success") != Some(success) {
        say(format!(
            "probe_success {:?}, expected {success}",
            cm.value("probe_success")
        ));
    }
    if let Some(code) = case.http_status
        && cm.value("probe_http_status_code") != Some(f64::from(code))
    {
        say(format!(
            "probe_http_status_code {:?}, expected {code}",
            cm.value("probe_http_status_code")
        ));
    }
    let verdicts: Vec<&str> = cm
        .all("canreach_verdict_info")
        .iter()
        .map(|s| s.labels.get("verdict").map_or("", String::as_str))
        .collect();
    if verdicts != [case.verdict] || cm.value("canreach_verdict_info") != Some(1.0) {
        say(format!(
            "canreach_verdict_info verdicts {verdicts:?}, expected [{:?}] 1",
            case.verdict
        ));
    }
    let failures = cm.all("probe_failure_info");
    match (case.finding, failures.as_slice()) {
        (None, []) => {}
        (None, f) => say(format!("a success with probe_failure_info {f:?}")),
        (Some(_), []) => say("a failure without probe_failure_info".into()),
        (Some(finding), [f]) => {
            let label = |k: &str| f.labels.get(k).map(String::as_str);
            let got = (label("verdict"), label("finding"), label("phase"));
            let want = (Some(case.verdict), Some(finding), case.phase);
            if got != want || f.value != 1.0 {
                say(format!(
                    "probe_failure_info {got:?} {}, expected {want:?} 1",
                    f.value
                ));
            }
            let mut keys: Vec<&str> = f.labels.keys().map(String::as_str).collect();
            keys.sort();
            if keys != ["finding", "phase", "verdict"] {
                say(format!("probe_failure_info labels {keys:?}"));
            }
        }
        (Some(_), f) => say(format!("{} probe_failure_info series: {f:?}", f.len())),
    }
    // Within the scrape timeout, as blackbox_exporter's.
    let limit: f64 = SCRAPE_TIMEOUT.parse().unwrap();
    if c.took.as_secs_f64() > limit {
        say(format!(
            "answered after {:?}, past the {limit} s scrape timeout",
            c.took
        ));
    }
    out
}

#[test]
fn canreach_serve_gives_every_blackbox_metric_and_says_why() {
    require_lab!();
    let fleet = FleetLab::new("fleet-compat");
    let bb = fleet.blackbox();
    let cr = fleet.canreach_serve();
    let mut all = vec![];
    for case in cases() {
        let b = fleet.probe(BLACKBOX, &case);
        assert_eq!(
            b.status, 200,
            "blackbox_exporter, {}: {}",
            case.what, b.body
        );
        let c = fleet.probe(CANREACH, &case);
        all.extend(disagreements(&case, &b, &c));
    }
    // Requests both refuse: an unknown module, no target.
    for (what, path) in [
        (
            "unknown module",
            "/probe?target=198.18.2.2:8001&module=nosuch",
        ),
        ("no target", "/probe?module=tcp_connect"),
    ] {
        let get = |addr| {
            http_get(
                &fleet.lab.client,
                addr,
                path,
                &[],
                std::time::Duration::from_secs(5),
            )
            .unwrap()
        };
        let (b, c) = (get(BLACKBOX), get(CANREACH));
        if (b.status, c.status) != (400, 400) || c.body.trim_end().lines().count() != 1 {
            all.push(format!(
                "{what}: canreach {} {:?}, blackbox_exporter {}",
                c.status, c.body, b.status
            ));
        }
    }
    assert!(
        all.is_empty(),
        "canreach serve and blackbox_exporter disagree:\n  {}\n{}\n{}",
        all.join("\n  "),
        cr.log_tail(),
        bb.log_tail()
    );
}
