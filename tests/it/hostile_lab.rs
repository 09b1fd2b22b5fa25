//! Hostile machine state against a real kernel: a ruleset with a huge set, FIFOs where the
//! resolver's files should be. Each must neither hang the check nor blow its deadline.
//! Lab tests need root (network namespaces) and `nft`; see tests/it/common.

use crate::common;

use std::time::Duration;

use common::*;

#[test]
fn a_ruleset_with_a_huge_set_is_read_within_the_deadline() {
    require_lab!();
    let lab = Lab::new();
    // 200k addresses in a named set: without `nft -t` its elements are all printed (a 500k set
    // made 7.5 MB and 6.3 s of output).
    let elements: Vec<String> = (0..200_000u32)
        .map(|i| format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255))
        .collect();
    lab.nft(
        &lab.client,
        &format!(
            "table inet big {{\n  set blocked {{ type ipv4_addr; elements = {{ {} }} }}\n  chain c {{\n    type filter hook output priority 0;\n    ip daddr @blocked drop\n    tcp dport 5432 drop\n  }}\n}}\n",
            elements.join(", ")
        ),
    );
    let _l = lab.listen(&lab.server, "198.18.2.2:5432");
    let r = lab.canreach(&["--json", "--timeout", "3s", SERVER_V4, "5432"]);
    let v = r.json();
    assert_eq!(v["verdict"], "filtered", "{}", r.stdout);
    assert_eq!(v["local"]["firewall"]["inspected"], true, "{}", r.stdout);
    let rules = v["local"]["firewall"]["rules"].as_array().unwrap();
    assert!(
        rules.iter().any(|r| r["text"] == "tcp dport 5432 drop"),
        "{rules:?}"
    );
    assert!(r.took < Duration::from_millis(3800), "{:?}", r.took);
}

/// Put a FIFO at /etc/netns/NS/FILE: `ip netns exec` bind-mounts it over /etc/FILE.
fn fifo(ns: &str, file: &str) {
    let dir = format!("/etc/netns/{ns}");
    std::fs::create_dir_all(&dir).unwrap();
    let path = format!("{dir}/{file}");
    let _ = std::fs::remove_file(&path);
    let made = std::process::Command::new("mkfifo")
        .arg(&path)
        .status()
        .unwrap();
    assert!(made.success());
}

#[test]
fn fifos_as_hosts_and_resolv_conf_do_not_hang_the_check() {
    require_lab!();
    let lab = Lab::new();
    fifo(&lab.client, "hosts");
    fifo(&lab.client, "resolv.conf");
    // Bounded here too: the failure this guards against is a hang.
    let start = std::time::Instant::now();
    let out = assert_cmd::Command::new("ip")
        .args(["netns", "exec", &lab.client, env!("CARGO_BIN_EXE_canreach")])
        .args(["--json", "--timeout", "2s", "app.lab", "80"])
        .env("NO_COLOR", "1")
        .timeout(Duration::from_secs(10))
        .output()
        .unwrap();
    let took = start.elapsed();
    // getaddrinfo itself blocks on the FIFO (glibc opens it without O_NONBLOCK); it runs on a
    // thread abandoned at the deadline. What canreach reads itself must not block.
    assert!(took < Duration::from_millis(2800), "{took:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["target"]["input"], "app.lab 80", "{v}");
}
