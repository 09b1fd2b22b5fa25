//! The pipeline against a real kernel: every verdict produced by the failure that causes it,
//! in network namespaces with nftables rules on the server and on a router between.

use crate::common;

use common::*;
use serde_json::Value;

/// The first probe of a JSON report.
fn probe(v: &Value) -> &Value {
    &v["probes"][0]
}

#[test]
fn open_port_through_a_router_v4_and_v6() {
    require_lab!();
    let lab = Lab::new();
    let _l4 = lab.listen(&lab.server, "198.18.2.2:5432");
    let _l6 = lab.listen(&lab.server, "[fd00:2::2]:5432");
    for target in [SERVER_V4, SERVER_V6] {
        let r = lab.canreach(&["--json", target, "5432"]);
        let v = r.json();
        assert_eq!(r.code, 0, "{}", r.stdout);
        assert_eq!(v["verdict"], "open");
        assert_eq!(probe(&v)["outcome"], "open");
        assert!(v["findings"].as_array().unwrap().is_empty());
    }
}

#[test]
fn closed_port_is_a_tcp_reset_v4_and_v6() {
    require_lab!();
    let lab = Lab::new();
    for target in [SERVER_V4, SERVER_V6] {
        let r = lab.canreach(&["--json", target, "5432"]);
        let v = r.json();
        assert_eq!(r.code, 4, "{}", r.stdout);
        assert_eq!(v["verdict"], "closed");
        assert_eq!(probe(&v)["error"], "ECONNREFUSED");
        assert!(probe(&v).get("icmp").is_none(), "a reset queues no ICMP");
        assert_eq!(ids(&v), ["port_closed"]);
    }
}

#[test]
fn firewall_tcp_reset_looks_closed_and_says_so() {
    require_lab!();
    let lab = Lab::new();
    let _l = lab.listen(&lab.server, "198.18.2.2:5432");
    lab.rule(&lab.server, "input", "tcp dport 5432 reject with tcp reset");
    let r = lab.canreach(&["--json", SERVER_V4, "5432"]);
    let v = r.json();
    assert_eq!(v["verdict"], "closed");
    assert!(
        v["findings"][0]["message"]
            .as_str()
            .unwrap()
            .contains("reject with tcp reset")
    );
}

#[test]
fn icmp_port_unreachable_from_the_server_is_rejected_not_closed() {
    require_lab!();
    let lab = Lab::new();
    lab.rule(
        &lab.server,
        "input",
        "tcp dport 5432 reject with icmpx port-unreachable",
    );
    for (target, from) in [(SERVER_V4, SERVER_V4), (SERVER_V6, SERVER_V6)] {
        let r = lab.canreach(&["--json", target, "5432"]);
        let v = r.json();
        assert_eq!(r.code, 5, "{}", r.stdout);
        assert_eq!(v["verdict"], "rejected");
        assert_eq!(probe(&v)["icmp"]["from"], from);
        assert_eq!(probe(&v)["icmp"]["sender"], "target");
        assert_eq!(ids(&v), ["firewall_reject_on_host"]);
    }
}

#[test]
fn admin_prohibited_on_the_server_and_on_the_router() {
    require_lab!();
    let lab = Lab::new();
    lab.rule(
        &lab.server,
        "input",
        "tcp dport 5001 reject with icmpx admin-prohibited",
    );
    lab.rule(
        &lab.router,
        "forward",
        "tcp dport 5002 reject with icmpx admin-prohibited",
    );
    // On the server: the host's own firewall.
    for target in [SERVER_V4, SERVER_V6] {
        let v = lab.canreach(&["--json", target, "5001"]).json();
        assert_eq!(v["verdict"], "rejected");
        assert_eq!(probe(&v)["icmp"]["sender"], "target");
    }
    // On the router: named, and not confused with the server.
    for (target, router) in [(SERVER_V4, ROUTER_V4), (SERVER_V6, ROUTER_V6)] {
        let r = lab.canreach(&["--json", target, "5002"]);
        let v = r.json();
        assert_eq!(r.code, 5);
        assert_eq!(v["verdict"], "rejected");
        assert_eq!(probe(&v)["icmp"]["from"], router);
        assert_eq!(probe(&v)["icmp"]["sender"], "on_the_way");
        assert_eq!(ids(&v), ["firewall_reject_on_path"]);
        assert!(
            v["findings"][0]["message"]
                .as_str()
                .unwrap()
                .contains(router)
        );
    }
}

#[test]
fn rejects_on_the_router_tcp_reset_and_port_unreachable() {
    require_lab!();
    let lab = Lab::new();
    let _l = lab.listen(&lab.server, "198.18.2.2:5432");
    let _l2 = lab.listen(&lab.server, "198.18.2.2:5433");
    lab.nft(
        &lab.router,
        "table inet lab_fwd {\n  chain c {\n    type filter hook forward priority 0;\n    \
         tcp dport 5432 reject with tcp reset\n    \
         tcp dport 5433 reject with icmpx port-unreachable\n  }\n}\n",
    );
    // A reset forged by the router looks exactly like a closed port: the report says both.
    let v = lab.canreach(&["--json", SERVER_V4, "5432"]).json();
    assert_eq!(v["verdict"], "closed");
    assert!(
        v["findings"][0]["message"]
            .as_str()
            .unwrap()
            .contains("reject with tcp reset")
    );
    // An ICMP port-unreachable names the router, not the server.
    let v = lab.canreach(&["--json", SERVER_V4, "5433"]).json();
    assert_eq!(v["verdict"], "rejected");
    assert_eq!(v["probes"][0]["icmp"]["from"], ROUTER_V4);
    assert_eq!(ids(&v), ["firewall_reject_on_path"]);
}

#[test]
fn silent_drop_on_the_server_is_filtered_within_the_deadline() {
    require_lab!();
    let lab = Lab::new();
    let _l = lab.listen(&lab.server, "198.18.2.2:5432");
    lab.rule(&lab.server, "input", "tcp dport 5432 drop");
    let r = lab.canreach(&["--json", "--timeout", "1.5", SERVER_V4, "5432"]);
    let v = r.json();
    assert_eq!(r.code, 6, "{}", r.stdout);
    assert_eq!(v["verdict"], "filtered");
    assert_eq!(probe(&v)["outcome"], "filtered");
    assert!(ids(&v).contains(&"silent_drop".to_string()));
    // The deadline holds: the whole process, start-up included, ends soon after 1.5 s.
    assert!(r.took.as_secs_f64() < 2.5, "took {:?}", r.took);
}

#[test]
fn absent_host_behind_a_router_is_unreachable_and_names_the_router() {
    require_lab!();
    let lab = Lab::new();
    for (target, router) in [(ABSENT_V4, ROUTER_V4), (ABSENT_V6, ROUTER_V6)] {
        let r = lab.canreach(&["--json", "--timeout", "8", target, "22"]);
        let v = r.json();
        assert_eq!(r.code, 7, "{}", r.stdout);
        assert_eq!(v["verdict"], "unreachable");
        assert_eq!(probe(&v)["icmp"]["from"], router);
        assert_eq!(ids(&v)[0], "host_unreachable");
    }
}

#[test]
fn no_route_on_this_machine_is_unreachable_at_once() {
    require_lab!();
    let lab = Lab::new();
    let r = lab.canreach(&["--json", NOWHERE_V4, "22"]);
    let v = r.json();
    assert_eq!(r.code, 7, "{}", r.stdout);
    assert_eq!(v["verdict"], "unreachable");
    assert_eq!(probe(&v)["error"], "ENETUNREACH");
    assert_eq!(ids(&v), ["no_route"]);
    assert!(probe(&v)["elapsed_ms"].as_f64().unwrap() < 100.0);
}

#[test]
fn a_name_with_a_and_aaaa_where_only_ipv4_listens_is_partial() {
    require_lab!();
    let lab = Lab::new();
    lab.etc_file(
        &lab.client,
        "hosts",
        "127.0.0.1 localhost\n198.18.2.2 dual.lab\nfd00:2::2 dual.lab\n",
    );
    let _l = lab.listen(&lab.server, "198.18.2.2:8080");
    let r = lab.canreach(&["--json", "dual.lab", "8080"]);
    let v = r.json();
    assert_eq!(r.code, 3, "{}", r.stdout);
    assert_eq!(v["verdict"], "partial");
    let mut addrs: Vec<&str> = v["dns"]["addresses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    addrs.sort();
    assert_eq!(addrs, [SERVER_V4, SERVER_V6]);
    let outcome_of = |a: &str| {
        v["probes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["address"] == a)
            .unwrap()["outcome"]
            .clone()
    };
    assert_eq!(outcome_of(SERVER_V4), "open");
    assert_eq!(outcome_of(SERVER_V6), "closed");
    let ids = ids(&v);
    assert_eq!(ids[0], "partial_reachability");
    assert!(
        v["findings"][0]["message"]
            .as_str()
            .unwrap()
            .contains("IPv4 works and IPv6 does not")
    );
}

#[test]
fn a_name_that_does_not_resolve_is_a_dns_error_in_json_too() {
    require_lab!();
    let lab = Lab::new();
    let r = lab.canreach(&["--json", "--timeout", "3", "nosuch.lab", "80"]);
    let v = r.json();
    assert_eq!(r.code, 8, "{}", r.stdout);
    assert_eq!(v["verdict"], "dns_error");
    assert!(v["dns"]["error"]["kind"].is_string());
    assert!(v["probes"].as_array().unwrap().is_empty());
    assert!(r.took.as_secs_f64() < 4.0, "took {:?}", r.took);
}

#[test]
fn text_report_names_the_device_and_the_next_steps() {
    require_lab!();
    let lab = Lab::new();
    lab.rule(
        &lab.router,
        "forward",
        "tcp dport 443 reject with icmpx admin-prohibited",
    );
    let r = lab.canreach(&[SERVER_V4, "443"]);
    assert_eq!(r.code, 5);
    assert!(
        r.stdout.starts_with("✗ REJECTED  198.18.2.2:443"),
        "{}",
        r.stdout
    );
    assert!(
        flat(&r.stdout).contains("ICMP administratively-prohibited from 198.18.1.1"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("Next steps"));
    assert!(!r.stdout.contains('\x1b'), "NO_COLOR is honoured");
}
