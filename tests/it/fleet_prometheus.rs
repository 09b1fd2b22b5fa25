//! End to end: a real Prometheus (Debian's `prometheus`) scrapes `canreach serve` through the
//! relabelling and evaluates the alert rules that docs/fleet.md gives (read from the doc),
//! beside blackbox_exporter itself on the same targets, in the namespace lab of
//! `tests/it/common/fleet.rs`; the test then asks Prometheus's HTTP API what it stored and which
//! alerts it raised.

use crate::common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::fleet::*;

/// The jobs: each module of the lab's table through each exporter, named
/// `EXPORTER_MODULE` (`canreach_http_2xx`).
fn jobs(cases: &[Case], exporters: &[(&str, &str)]) -> Vec<Job> {
    let mut jobs = vec![];
    for (name, addr) in exporters {
        for module in ["tcp_connect", "http_2xx"] {
            jobs.push(Job {
                name: job_name(name, module),
                exporter: addr.to_string(),
                module: module.to_string(),
                targets: cases
                    .iter()
                    .filter(|c| c.module == module)
                    .map(|c| c.target.clone())
                    .collect(),
            });
        }
    }
    jobs
}

fn job_name(exporter: &str, module: &str) -> String {
    format!("{exporter}_{module}")
}

/// Wait until Prometheus holds two scrapes of every target of every job (`up` stored twice).
fn wait_two_scrapes(fleet: &FleetLab, expected: usize, prom: &mut common::fleet::Proc) {
    let start = Instant::now();
    loop {
        let counts = fleet.query("count_over_time(up[5m])");
        let done = counts.iter().filter(|(_, n)| *n >= 2.0).count();
        if counts.len() == expected && done == expected {
            return;
        }
        assert!(prom.alive(), "prometheus exited\n{}", prom.log_tail());
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "two scrapes of {expected} series not stored after 30 s: {counts:?}\n{}",
            prom.log_tail()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// `query`'s result by `(job, instance)`.
fn by_instance(
    rows: Vec<(BTreeMap<String, String>, f64)>,
) -> BTreeMap<(String, String), (BTreeMap<String, String>, f64)> {
    rows.into_iter()
        .map(|(l, v)| ((l["job"].clone(), l["instance"].clone()), (l, v)))
        .collect()
}

#[test]
fn prometheus_stores_probe_success_and_the_reason_of_each_target() {
    require_lab!();
    let fleet = FleetLab::new("fleet-prom");
    let _bb = fleet.blackbox();
    let cr = fleet.canreach_serve();
    let cases = cases();
    let jobs = jobs(&cases, &[("blackbox", BLACKBOX), ("canreach", CANREACH)]);
    let rules = fleet.dir.path("rules.yml");
    std::fs::write(&rules, rules_from_docs()).unwrap();
    let config = prometheus_yaml(&jobs, &relabel_from_docs(), Some(&rules));
    let mut prom = fleet.prometheus(&config);
    wait_two_scrapes(&fleet, cases.len() * 2, &mut prom);

    let up = by_instance(fleet.query("up"));
    let success = by_instance(fleet.query("probe_success"));
    let failure = by_instance(fleet.query("probe_failure_info"));
    let mut wrong = vec![];
    for case in &cases {
        let key = |exporter: &str| (job_name(exporter, case.module), case.target.clone());
        let (b, c) = (key("blackbox"), key("canreach"));
        for k in [&b, &c] {
            // A scrape that failed (an error status, a timeout, text Prometheus could not
            // parse) stores up 0.
            if up.get(k).map(|x| x.1) != Some(1.0) {
                wrong.push(format!("{k:?}: up {:?}", up.get(k)));
            }
        }
        let want = if case.success { 1.0 } else { 0.0 };
        let got = success.get(&c).map(|x| x.1);
        if got != Some(want) || success.get(&b).map(|x| x.1) != Some(want) {
            wrong.push(format!(
                "{}: probe_success canreach {got:?}, blackbox_exporter {:?}, expected {want}",
                case.what,
                success.get(&b).map(|x| x.1)
            ));
        }
        match (case.finding, failure.get(&c)) {
            (None, None) => {}
            (None, Some(f)) => wrong.push(format!("{}: a success with {f:?}", case.what)),
            (Some(_), None) => wrong.push(format!("{}: no probe_failure_info", case.what)),
            (Some(finding), Some((labels, v))) => {
                let get = |k: &str| labels.get(k).map(String::as_str);
                let got = (get("verdict"), get("finding"), get("phase"), *v);
                let want = (Some(case.verdict), Some(finding), case.phase, 1.0);
                if got != want {
                    wrong.push(format!(
                        "{}: probe_failure_info {got:?}, expected {want:?}",
                        case.what
                    ));
                }
            }
        }
    }

    // docs/fleet.md's alert rules, evaluated on what was stored: every rule loads and
    // evaluates, and each failing target raises TargetFails (pending for its `for:`) with its
    // reason in the labels; a target that works raises none. Read once two evaluation rounds
    // have begun since the scrapes were stored (a round evaluates the rules one by one).
    let start = Instant::now();
    let rounds = Duration::from_secs(2 * u64::from(SCRAPE_INTERVAL_S));
    let alerts = loop {
        let groups = fleet.api("/api/v1/rules")["groups"].clone();
        let rules: Vec<serde_json::Value> = groups
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|g| g["rules"].as_array().unwrap().clone())
            .collect();
        let failing = cases.iter().filter(|c| !c.success).count();
        let alerts = fleet.api("/api/v1/alerts")["alerts"]
            .as_array()
            .unwrap()
            .clone();
        let fails = alerts
            .iter()
            .filter(|a| a["labels"]["alertname"] == "TargetFails")
            .count();
        if start.elapsed() >= rounds
            && !rules.is_empty()
            && rules.iter().all(|r| r["health"] == "ok")
            && fails >= failing
        {
            break alerts;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "docs/fleet.md's rules after 20 s: {rules:?}\nalerts: {alerts:?}\n{}",
            prom.log_tail()
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    for case in &cases {
        let mine: Vec<&serde_json::Value> = alerts
            .iter()
            .filter(|a| {
                a["labels"]["alertname"] == "TargetFails"
                    && a["labels"]["instance"] == case.target.as_str()
            })
            .collect();
        match (case.finding, mine.as_slice()) {
            (None, []) => {}
            (Some(finding), [a]) => {
                let l = &a["labels"];
                let got = (&l["verdict"], &l["finding"], &l["phase"], &l["job"]);
                let job = job_name("canreach", case.module);
                if got
                    != (
                        &case.verdict.into(),
                        &finding.into(),
                        &case.phase.into(),
                        &job.into(),
                    )
                {
                    wrong.push(format!("{}: TargetFails {l}", case.what));
                }
            }
            (_, mine) => wrong.push(format!("{}: TargetFails alerts {mine:?}", case.what)),
        }
        // The doc's other rules: a drop, and a probe that succeeds while canreach sees the
        // service behind the port fail (reset after the accept).
        for (rule, expected) in [
            (
                "TargetFiltered",
                !case.success && case.verdict == "filtered",
            ),
            (
                "ServiceBehindPortFails",
                case.success && ["service_error", "tls_error"].contains(&case.verdict),
            ),
        ] {
            let raised = alerts
                .iter()
                .filter(|a| {
                    a["labels"]["alertname"] == rule
                        && a["labels"]["instance"] == case.target.as_str()
                })
                .count();
            if raised != usize::from(expected) {
                wrong.push(format!("{}: {raised} {rule} alerts", case.what));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "Prometheus stored:\n  {}\n{}\n{}",
        wrong.join("\n  "),
        cr.log_tail(),
        prom.log_tail()
    );
}
