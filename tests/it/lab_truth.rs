//! The edges where a tool guesses, against a real kernel: a listener that does not accept, a
//! router that lies with host-unreachable, advice per address family, a deadline too short to
//! mean anything. Each test names the situation and asserts the verdict and the words.

use crate::common;

use std::time::Duration;

use common::*;

/// A program that listens but does not accept: its queue (`listen(0)`: one slot) is full, the
/// kernel drops new SYNs silently. canreach must say so — not "a firewall drops it" — and, on
/// this machine, once the kernel's retried SYNs met the queue still full (the check waits
/// through them while it stays full, within its deadline: `-t 3s` here), without walking a
/// path to itself.
#[test]
fn a_listener_whose_accept_queue_is_full_is_not_accepting() {
    require_lab!();
    let lab = Lab::new();
    let l = lab.listen_backlog(&lab.server, "127.0.0.1:5432", 0);
    let holder = lab.hold(&lab.server, &l);
    let _waiting = lab.connect(&lab.server, "127.0.0.1:5432");
    std::thread::sleep(Duration::from_millis(50));
    let r = run_in(
        Some(&lab.server),
        &["--json", "-t", "3s", "--tcp", "127.0.0.1", "5432"],
    );
    let v = r.json();
    assert_eq!(v["verdict"], "filtered", "{}", r.stdout);
    let ids = ids(&v);
    assert_eq!(ids[0], "listener_not_accepting", "{ids:?}");
    let m = finding(&v, "listener_not_accepting")["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        m.contains("accept queue is full") && m.contains(&holder.pid.to_string()),
        "{m}"
    );
    assert!(!ids.contains(&"silent_drop".to_string()), "{ids:?}");
    assert!(
        v["summary"].as_str().unwrap().contains("not accepting"),
        "{}",
        v["summary"]
    );
    assert!(v["trace"].is_null(), "no walk to this machine");
    assert!(
        v["liveness"].is_null(),
        "no liveness probes of this machine"
    );
    // No hunt for a firewall rule, no "check that it listens": it listens, and says why not.
    for s in v["advice"].as_array().unwrap() {
        let c = s["command"].as_str().unwrap_or("");
        assert!(!c.contains("-e drop") && !c.contains("ss -ltnp"), "{c}");
    }
    assert!(r.took < Duration::from_millis(3500), "{:?}", r.took);
    // Through the kernel's retries at 1 s and 2 s (each dropped at the full queue), and no
    // longer: the next, at 3 s, would come past the deadline. (Without
    // tcp_syn_linear_timeouts, the retries come at 1 s and 3 s: the first only.)
    let linear = std::process::Command::new("ip")
        .args(["netns", "exec", &lab.server, "sysctl", "-n"])
        .arg("net.ipv4.tcp_syn_linear_timeouts")
        .output()
        .unwrap();
    let last_retry = if linear.stdout.is_empty() {
        1000.0
    } else {
        2000.0
    };
    let waited = v["probes"][0]["elapsed_ms"].as_f64().unwrap();
    assert!(
        (last_retry..last_retry + 500.0).contains(&waited),
        "waited through the retries: {waited}"
    );
    assert_eq!(
        v["probes"][0]["queue"]["waited_retransmit"], true,
        "{}",
        r.stdout
    );
}

/// The same drop seen from another machine: a live host whose port is silent keeps "a full
/// accept queue" among the causes.
#[test]
fn from_another_machine_a_full_queue_stays_among_the_causes() {
    require_lab!();
    let lab = Lab::new();
    let _l = lab.listen_backlog(&lab.server, "198.18.2.2:5432", 0);
    let _waiting = lab.connect(&lab.server, "198.18.2.2:5432");
    let r = lab.canreach(&["--json", SERVER_V4, "5432"]);
    let v = r.json();
    assert_eq!(v["verdict"], "filtered", "{}", r.stdout);
    let m = finding(&v, "host_up_port_dropped")["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(m.contains("not accepting connections"), "{m}");
}

/// A router that rejects one port with host-unreachable (at once), while the host answers on
/// its other ports: that router is a firewall — `rejected`, naming it — not an absent host.
#[test]
fn a_router_that_lies_with_host_unreachable_is_a_firewall_there() {
    require_lab!();
    let lab = Lab::new();
    lab.rule(
        &lab.router,
        "forward",
        "tcp dport 5432 reject with icmp type host-unreachable",
    );
    let r = lab.canreach(&["--json", SERVER_V4, "5432"]);
    let v = r.json();
    assert_eq!(v["verdict"], "rejected", "{}", r.stdout);
    assert_eq!(r.code, 5);
    let m = finding(&v, "firewall_reject_on_path")["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(m.contains(ROUTER_V4) && m.contains("far sooner"), "{m}");
    assert!(!ids(&v).contains(&"host_down".to_string()));
}

/// `::1` dialled, the server listens on 0.0.0.0 only: the advice names an address that covers
/// ::1 and never tells a client to connect to a wildcard.
#[test]
fn bind_advice_covers_the_family_dialled_and_never_points_a_client_at_a_wildcard() {
    require_lab!();
    let lab = Lab::new();
    let _l = lab.listen(&lab.server, "0.0.0.0:8081");
    let r = run_in(Some(&lab.server), &["--json", "--tcp", "::1", "8081"]);
    let v = r.json();
    assert_eq!(v["verdict"], "closed", "{}", r.stdout);
    finding(&v, "listens_on_other_family");
    let texts: Vec<String> = v["advice"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["text"].as_str().unwrap().to_string())
        .collect();
    let all = texts.join(" | ");
    assert!(all.contains("(::)"), "listen on :: covers ::1: {all}");
    assert!(
        all.contains("127.0.0.1:8081"),
        "a concrete address for the client: {all}"
    );
    assert!(!all.contains("at 0.0.0.0"), "{all}");
    assert!(!all.contains("0.0.0.0 (or"), "{all}");
}

/// `--timeout 1ms` leaves a probe no fair chance: an open port is never called `filtered`,
/// however often it is tried.
#[test]
fn a_tiny_deadline_is_never_a_drop() {
    require_lab!();
    let lab = Lab::new();
    let _l = lab.listen(&lab.server, "198.18.2.2:5432");
    for _ in 0..10 {
        let r = lab.canreach(&["--json", "--timeout", "1ms", SERVER_V4, "5432"]);
        let v = r.json();
        assert!(
            matches!(v["verdict"].as_str(), Some("open" | "inconclusive")),
            "{}",
            r.stdout
        );
        if v["verdict"] == "inconclusive" {
            assert_eq!(r.code, 9);
            finding(&v, "out_of_time");
        }
    }
}

/// A name server that is not there (its address on this machine's own network, where ARP
/// fails after ~3 s): the connected UDP probe hears "host unreachable" and ends the wait then,
/// as glibc does, instead of at resolv.conf's timeout; its port 53 is described at once.
#[test]
fn an_absent_name_server_is_named_when_arp_gives_up() {
    require_lab!();
    let lab = Lab::new();
    lab.etc_file(
        &lab.client,
        "resolv.conf",
        "nameserver 198.18.1.99\noptions timeout:8 attempts:1\n",
    );
    let r = lab.canreach(&["--json", "--timeout", "20", "app.lab", "80"]);
    let v = r.json();
    assert_eq!(v["verdict"], "dns_error", "{}", r.stdout);
    let s = &v["dns"]["servers"][0];
    assert_eq!(s["port53"]["udp"], "unreachable", "{s}");
    assert!(r.took < Duration::from_secs(6), "{:?}", r.took);
}
