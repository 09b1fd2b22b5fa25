//! Silence explained, against a real kernel: liveness of the host, an early and honest
//! `filtered`, and the path walk naming the last device a SYN reached.

use crate::common;

use common::*;
use serde_json::Value;

/// Resolve the lab's neighbours (a closed port answers as soon as they are).
fn warm_up(lab: &Lab) {
    for target in [SERVER_V4, SERVER_V6] {
        for _ in 0..20 {
            if lab.canreach(&["--no-trace", target, "22"]).code == 4 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}

#[test]
fn drop_on_the_server_host_alive_filtered_early_v4_and_v6() {
    require_lab!();
    let lab = Lab::new();
    let _l4 = lab.listen(&lab.server, "198.18.2.2:5432");
    let _l6 = lab.listen(&lab.server, "[fd00:2::2]:5432");
    lab.rule(&lab.server, "input", "tcp dport 5432 drop");
    // A fresh namespace's IPv6 neighbour discovery can lose its first solicitation (the link
    // was just brought up) and retry after 1 s: warm the neighbour caches first, as the bench
    // scripts do, so the figures below are canreach's and not the lab's.
    warm_up(&lab);
    for (target, router) in [(SERVER_V4, ROUTER_V4), (SERVER_V6, ROUTER_V6)] {
        let r = lab.canreach(&["--json", target, "5432"]);
        let v = r.json();
        assert_eq!(r.code, 6, "{}", r.stdout);
        assert_eq!(v["verdict"], "filtered");
        // The host answered on its other (closed) ports: it is up.
        assert_eq!(v["liveness"]["alive"], true, "{}", v["liveness"]);
        assert!(
            v["liveness"]["probes"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["outcome"] == "closed")
        );
        // Decided from the round-trip time, long before the 5 s deadline…
        assert!(
            v["liveness"]["decided_after_ms"].as_f64().unwrap_or(0.0) >= 200.0,
            "{}",
            r.stdout
        );
        assert_eq!(v["liveness"]["second_syn"]["outcome"], "no_answer");
        assert!(
            r.took.as_secs_f64() < 1.5,
            "took {:?}: {}",
            r.took,
            r.stdout
        );
        // …and the path walk shows the router as the last device that answered.
        assert_eq!(v["trace"]["last_responding"]["address"], router);
        assert_eq!(v["trace"]["last_responding"]["ttl"], 1);
        let ids = ids(&v);
        assert!(ids.contains(&"host_up_port_dropped".into()), "{ids:?}");
        assert!(ids.contains(&"path_ends_after".into()), "{ids:?}");
    }
}

#[test]
fn drop_on_the_router_trace_names_the_router_v4_and_v6() {
    require_lab!();
    let lab = Lab::new();
    let _l4 = lab.listen(&lab.server, "198.18.2.2:8443");
    let _l6 = lab.listen(&lab.server, "[fd00:2::2]:8443");
    lab.rule(&lab.router, "forward", "tcp dport 8443 drop");
    for (target, router) in [(SERVER_V4, ROUTER_V4), (SERVER_V6, ROUTER_V6)] {
        let r = lab.canreach(&["--json", target, "8443"]);
        let v = r.json();
        assert_eq!(v["verdict"], "filtered", "{}", r.stdout);
        assert_eq!(v["liveness"]["alive"], true);
        assert_eq!(v["trace"]["last_responding"]["address"], router);
        assert_eq!(v["trace"]["hops"][0]["kind"], "time_exceeded");
        assert_eq!(v["trace"]["hops"][1]["kind"], "no_answer");
        let msg = v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["id"] == "path_ends_after")
            .unwrap()["message"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(msg.contains(&format!("reaches {router} (hop 1)")), "{msg}");
    }
}

#[test]
fn an_all_dropping_host_is_filtered_with_liveness_unknown_within_the_deadline() {
    require_lab!();
    let lab = Lab::new();
    lab.nft(
        &lab.server,
        "table inet lab_all {\n chain c {\n  type filter hook input priority 0; policy drop;\n }\n}\n",
    );
    for target in [SERVER_V4, SERVER_V6] {
        let r = lab.canreach(&["--json", "--timeout", "1.5", target, "5432"]);
        let v = r.json();
        assert_eq!(v["verdict"], "filtered", "{}", r.stdout);
        assert_eq!(v["liveness"]["alive"], Value::Null);
        assert!(
            v["liveness"]["decided_after_ms"].is_null(),
            "no evidence: no early verdict"
        );
        assert!(ids(&v).contains(&"host_not_answering".into()));
        // The verdict never comes later than the deadline (plus process start-up); tokio's
        // timers have millisecond granularity, hence the 2 ms.
        let elapsed = v["elapsed_ms"].as_f64().unwrap();
        assert!(elapsed <= 1502.0, "{elapsed}");
        assert!(r.took.as_secs_f64() < 2.0, "took {:?}", r.took);
    }
}

#[test]
fn an_absent_host_is_reported_down_by_its_router() {
    require_lab!();
    let lab = Lab::new();
    let r = lab.canreach(&["--json", ABSENT_V4, "5432"]);
    let v = r.json();
    assert_eq!(v["verdict"], "unreachable", "{}", r.stdout);
    assert_eq!(v["liveness"]["alive"], false, "{}", v["liveness"]);
    assert!(ids(&v).contains(&"host_down".into()));
    assert!(r.took.as_secs_f64() < 5.5, "took {:?}", r.took);
}

#[test]
fn trace_on_demand_reaches_an_open_port_and_no_trace_skips_it() {
    require_lab!();
    let lab = Lab::new();
    let _l = lab.listen(&lab.server, "198.18.2.2:5432");
    let v = lab
        .canreach(&["--json", "--trace", SERVER_V4, "5432"])
        .json();
    assert_eq!(v["verdict"], "open");
    assert_eq!(v["trace"]["reached_at"], 2, "{}", v["trace"]);
    assert_eq!(v["trace"]["hops"][0]["address"], ROUTER_V4);
    assert_eq!(v["trace"]["hops"][1]["kind"], "reached_target");
    assert!(v["findings"].as_array().unwrap().is_empty());

    lab.rule(&lab.server, "input", "tcp dport 5432 drop");
    let v = lab
        .canreach(&["--json", "--no-trace", SERVER_V4, "5432"])
        .json();
    assert_eq!(v["verdict"], "filtered");
    assert!(v["trace"].is_null());
}

/// A quick answer: the lab's neighbour caches warm first. In a new lab the first SYN waits
/// for the client's and the router's ARP; on a loaded machine that can take past the 10 ms
/// after which liveness probes start, failing the test on the lab, not on canreach.
#[test]
fn a_quick_answer_sends_no_liveness_probes() {
    require_lab!();
    let lab = Lab::new();
    warm_up(&lab);
    let v = lab.canreach(&["--json", SERVER_V4, "5432"]).json();
    assert_eq!(v["verdict"], "closed");
    assert!(v["liveness"].is_null());
    assert!(v["trace"].is_null());
}

#[test]
fn an_absent_host_is_told_as_fast_as_its_router_says_so_with_no_walk() {
    require_lab!();
    let lab = Lab::new();
    let r = lab.canreach(&["--json", ABSENT_V4, "5432"]);
    let v = r.json();
    assert_eq!(v["verdict"], "unreachable", "{}", r.stdout);
    let probe = v["probes"][0]["elapsed_ms"].as_f64().unwrap();
    // The router's host-unreachable (its ARP gave up after ~3 s) ends the check: no walk,
    // whose answers could only repeat that router.
    assert!(v["trace"].is_null(), "{}", v["trace"]);
    let elapsed = v["elapsed_ms"].as_f64().unwrap();
    assert!(elapsed <= probe + 60.0, "{elapsed} vs probe {probe}");
}

#[test]
fn total_silence_is_decided_once_neighbour_discovery_is_over_not_at_the_deadline() {
    require_lab!();
    let lab = Lab::new();
    lab.nft(
        &lab.server,
        "table inet lab_all {\n chain c {\n  type filter hook input priority 0; policy drop;\n }\n}\n",
    );
    warm_up_v4_router(&lab);
    let r = lab.canreach(&["--json", SERVER_V4, "5432"]);
    let v = r.json();
    assert_eq!(v["verdict"], "filtered", "{}", r.stdout);
    assert_eq!(v["liveness"]["alive"], Value::Null);
    let elapsed = v["elapsed_ms"].as_f64().unwrap();
    assert!((3000.0..=3300.0).contains(&elapsed), "{elapsed}");
    // The walk ran alongside and still names the router; it sent one wave, not 16 TTLs.
    assert_eq!(
        v["trace"]["last_responding"]["address"], ROUTER_V4,
        "{}",
        v["trace"]
    );
    assert!(v["trace"]["hops"].as_array().unwrap().len() <= 3);
}

/// The router answers a SYN with TTL 1 (its ARP/ND caches toward the client warm).
fn warm_up_v4_router(lab: &Lab) {
    let _ = lab.canreach(&["--no-trace", "--no-local", ROUTER_V4, "22"]);
}
