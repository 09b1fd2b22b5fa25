//! Routers' ICMP rate limits against a real kernel. A Linux router sends at most a burst of
//! about six ICMP errors to one peer, then one a second (`icmp_ratelimit` 1000 ms, burst
//! factor 6; IPv6 alike, refilled faster for a /64 route). Checks run back to back spend that
//! burst; the same check must still give the same verdict every time.

use crate::common;

use std::time::Duration;

use common::*;
use serde_json::Value;

/// Run the same check `n` times back to back; print what each run saw (for the record).
fn back_to_back(lab: &Lab, args: &[&str], n: usize) -> Vec<(Value, Duration)> {
    (0..n)
        .map(|i| {
            let r = lab.canreach(args);
            let v = r.json();
            eprintln!(
                "{args:?} run {i}: {} in {:?} {:?}",
                v["verdict"],
                r.took,
                ids(&v)
            );
            (v, r.took)
        })
        .collect()
}

/// Every run names the router's reject; runs whose first SYN met a spent budget say so.
fn assert_all_rejected_by(runs: &[(Value, Duration)], router: &str) -> usize {
    let mut limited = 0;
    for (v, _) in runs {
        assert_eq!(v["verdict"], "rejected", "{v}");
        let m = finding(v, "firewall_reject_on_path")["message"]
            .as_str()
            .unwrap();
        assert!(m.contains(router), "{m}");
        if ids(v).contains(&"icmp_rate_limited".to_string()) {
            let m = finding(v, "icmp_rate_limited")["message"].as_str().unwrap();
            assert!(m.contains(router) && m.contains("retransmission"), "{m}");
            limited += 1;
        }
        // Never "not a lost packet" or a drop for a port a router rejects.
        assert!(!ids(v).contains(&"silent_drop".to_string()), "{v}");
    }
    limited
}

/// The case: a router rejects one port with admin-prohibited; ten checks in a row
/// (more than the burst) all say `rejected`, naming the router, v4 and v6.
#[test]
fn back_to_back_checks_of_a_port_a_router_rejects_stay_rejected() {
    require_lab!();
    let lab = Lab::new();
    let _l4 = lab.listen(&lab.server, "198.18.2.2:5432");
    let _l6 = lab.listen(&lab.server, "[fd00:2::2]:5432");
    lab.rule(
        &lab.router,
        "forward",
        "tcp dport 5432 reject with icmpx type admin-prohibited",
    );
    let runs = back_to_back(&lab, &["--json", SERVER_V4, "5432"], 10);
    let limited = assert_all_rejected_by(&runs, ROUTER_V4);
    // Ten checks in well under ten seconds outrun the budget: the later ones met silence
    // first and were rescued by the retransmission (the test exercises the limit).
    assert!(limited >= 1, "no run met the rate limit");
    let runs = back_to_back(&lab, &["--json", SERVER_V6, "5432"], 10);
    assert_all_rejected_by(&runs, ROUTER_V6);
}

/// The same with a router that lies with host-unreachable (a firewall, as the host answers
/// on other ports): still `rejected` every time, never "the host is down".
#[test]
fn back_to_back_checks_of_a_router_host_unreachable_stay_rejected() {
    require_lab!();
    let lab = Lab::new();
    lab.rule(
        &lab.router,
        "forward",
        "tcp dport 5432 reject with icmp type host-unreachable",
    );
    let runs = back_to_back(&lab, &["--json", SERVER_V4, "5432"], 10);
    let limited = assert_all_rejected_by(&runs, ROUTER_V4);
    assert!(limited >= 1, "no run met the rate limit");
    for (v, _) in &runs {
        assert!(!ids(v).contains(&"host_down".to_string()), "{v}");
    }
}

/// A port the server drops, on a live host, with the router's budget intact: the walk shows
/// the router answering, so its budget was not spent and the silence is a drop — decided
/// fast, without waiting for the kernel's retransmission (issue #12's fast `filtered`).
#[test]
fn a_drop_behind_a_router_that_answers_the_walk_is_decided_without_the_retransmission() {
    require_lab!();
    let lab = Lab::new();
    let _l = lab.listen(&lab.server, "198.18.2.2:5432");
    lab.rule(&lab.server, "input", "tcp dport 5432 drop");
    // Neighbour caches first (a closed port answers with a reset: no router ICMP spent), so
    // that the host's answers are not held up by a fresh namespace's neighbour discovery.
    for _ in 0..20 {
        if lab.canreach(&["--no-trace", SERVER_V4, "22"]).code == 4 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let r = lab.canreach(&["--json", SERVER_V4, "5432"]);
    let v = r.json();
    assert_eq!(v["verdict"], "filtered", "{}", r.stdout);
    assert_eq!(
        v["trace"]["hops"][0]["kind"], "time_exceeded",
        "{}",
        r.stdout
    );
    assert!(
        v["liveness"]["decided_after_ms"].as_f64().is_some(),
        "{}",
        r.stdout
    );
    assert!(
        v["liveness"]["retransmit_wait_ms"].is_null(),
        "the walk vouched for the router: no wait for the retransmission: {}",
        r.stdout
    );
    let m = finding(&v, "host_up_port_dropped")["message"]
        .as_str()
        .unwrap();
    assert!(!m.contains("ICMP errors"), "{m}");
}

/// The router's budget spent by checks just before (rejects of another port), then a port the
/// server drops: the walk cannot show the router answering, so the check waits for the
/// kernel's retransmission — no reject comes — and says what that silence means.
#[test]
fn a_drop_checked_after_the_budget_was_spent_waits_for_the_retransmission_and_says_so() {
    require_lab!();
    let lab = Lab::new();
    let _l = lab.listen(&lab.server, "198.18.2.2:6543");
    lab.rule(
        &lab.router,
        "forward",
        "tcp dport 5432 reject with icmpx type admin-prohibited",
    );
    lab.rule(&lab.server, "input", "tcp dport 6543 drop");
    // Spend the router's burst toward the client: until a check's reject answered only the
    // retransmission, which took the token that had refilled since.
    let spent = (0..15).any(|_| {
        let v = lab.canreach(&["--json", SERVER_V4, "5432"]).json();
        ids(&v).contains(&"icmp_rate_limited".to_string())
    });
    assert!(
        spent,
        "fifteen rejects did not spend the router's ICMP budget"
    );
    let r = lab.canreach(&["--json", SERVER_V4, "6543"]);
    let v = r.json();
    assert_eq!(v["verdict"], "filtered", "{}", r.stdout);
    let waited = v["liveness"]["retransmit_wait_ms"]
        .as_f64()
        .unwrap_or_else(|| panic!("no retransmission wait: {}", r.stdout));
    assert!(waited >= 1000.0, "{waited}");
    let m = finding(&v, "host_up_port_dropped")["message"]
        .as_str()
        .unwrap();
    assert!(
        m.contains("retransmitted SYN") && m.contains("no reject came"),
        "{m}"
    );
    // One warning about the budget, not two.
    let all: Vec<&str> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        all.iter().filter(|m| m.contains("six ICMP errors")).count(),
        1,
        "{all:?}"
    );
}
