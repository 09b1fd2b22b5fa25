//! The local side against a real kernel: listeners started by the test inside a namespace,
//! canreach run in that same namespace (as root, and as `nobody`), and an OUTPUT-chain drop.

use crate::common;

use std::process::{Command, Stdio};

use common::*;
use serde_json::Value;

#[test]
fn loopback_only_listener_dialled_on_the_lan_address() {
    require_lab!();
    let lab = Lab::new();
    let l = lab.listen(&lab.server, "127.0.0.1:8080");
    let holder = lab.hold(&lab.server, &l);
    let r = run_in(Some(&lab.server), &["--json", SERVER_V4, "8080"]);
    let v = r.json();
    assert_eq!(v["verdict"], "closed", "{}", r.stdout);
    let listeners = v["local"]["listeners"].as_array().unwrap();
    assert_eq!(listeners.len(), 1);
    assert_eq!(listeners[0]["address"], "127.0.0.1");
    // The lab's process that holds the socket is its owner.
    assert_eq!(listeners[0]["process"]["pid"], holder.pid);
    assert_eq!(listeners[0]["user"], "root");
    let f = finding(&v, "listens_on_loopback_only");
    assert!(f["message"].as_str().unwrap().contains(SERVER_V4));
    // The dev server's own setting, with an address that covers the one dialled.
    assert!(
        steps_for(&v, "listens_on_loopback_only")[0]["text"]
            .as_str()
            .unwrap()
            .contains("--host 0.0.0.0"),
        "8080: dev server setting"
    );
}

#[test]
fn ipv4_only_listener_when_localhost_gives_ipv6_first() {
    require_lab!();
    let lab = Lab::new();
    lab.etc_file(&lab.server, "hosts", "::1 localhost\n127.0.0.1 localhost\n");
    let _l = Accepting::start(lab.listen(&lab.server, "127.0.0.1:3000"));
    let r = run_in(Some(&lab.server), &["--json", "localhost", "3000"]);
    let v = r.json();
    assert_eq!(v["verdict"], "partial", "{}", r.stdout);
    assert_eq!(
        v["dns"]["addresses"][0], "::1",
        "the system tries ::1 first"
    );
    let ids = ids(&v);
    assert_eq!(ids[0], "partial_reachability");
    assert!(
        finding(&v, "partial_reachability")["message"]
            .as_str()
            .unwrap()
            .contains("localhost` trap")
    );
    let f = finding(&v, "listens_on_other_family");
    assert!(f["message"].as_str().unwrap().contains("IPv4 only"), "{f}");
}

#[test]
fn listener_bound_to_another_interface_address() {
    require_lab!();
    let lab = Lab::new();
    sh(&[
        "ip",
        "-n",
        &lab.server,
        "addr",
        "add",
        "198.18.2.3/24",
        "dev",
        "eth0",
    ]);
    let _l = lab.listen(&lab.server, "198.18.2.3:5432");
    let r = run_in(Some(&lab.server), &["--json", SERVER_V4, "5432"]);
    let v = r.json();
    assert_eq!(v["verdict"], "closed", "{}", r.stdout);
    let f = finding(&v, "bound_to_other_address");
    assert!(f["message"].as_str().unwrap().contains("198.18.2.3:5432"));
    assert!(
        steps_for(&v, "bound_to_other_address")[0]["text"]
            .as_str()
            .unwrap()
            .contains("listen_addresses"),
        "PostgreSQL's setting"
    );
}

#[test]
fn bare_port_with_nothing_listening_names_the_usual_server() {
    require_lab!();
    let lab = Lab::new();
    let r = run_with_init(&lab.server, Init::Systemd, &["--json", ":5432"]);
    let v = r.json();
    assert_eq!(v["verdict"], "closed", "{}", r.stdout);
    assert_eq!(v["target"]["host"], "localhost");
    assert!(v["local"]["listeners"].as_array().unwrap().is_empty());
    let ids = ids(&v);
    assert!(ids.contains(&"nothing_listens_here".into()), "{ids:?}");
    finding(&v, "usual_server_not_running");
    assert_eq!(
        steps_for(&v, "usual_server_not_running")[0]["command"],
        "systemctl status postgresql"
    );
}

#[test]
fn the_usual_server_running_on_another_port_is_found() {
    require_lab!();
    // A process named redis-server (a copy of nc) listening on 6380, while 6379 is dialled.
    let dir = std::env::temp_dir().join(format!("canreach-lab-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fake = dir.join("redis-server");
    let Ok(_) = common::copy_program("/usr/bin/nc.openbsd", &fake) else {
        if std::env::var("CANREACH_REQUIRE_LAB").as_deref() == Ok("1") {
            panic!("needs /usr/bin/nc.openbsd (apt-get install netcat-openbsd)");
        }
        eprintln!("SKIPPED: needs /usr/bin/nc.openbsd");
        return;
    };
    let lab = Lab::new();
    let server = Started(
        Command::new("ip")
            .args(["netns", "exec", &lab.server])
            .arg(&fake)
            .args(["-k", "-l", "127.0.0.1", "6380"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn_in_lab()
            .unwrap(),
    );
    // Wait until it listens.
    for _ in 0..100 {
        if run_in(
            Some(&lab.server),
            &["--json", "--no-trace", "127.0.0.1", "6380"],
        )
        .code
            == 0
        {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let r = run_in(Some(&lab.server), &["--json", ":6379"]);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    let v = r.json();
    assert_eq!(v["verdict"], "closed", "{}", r.stdout);
    let f = finding(&v, "usual_server_elsewhere");
    let msg = f["message"].as_str().unwrap();
    assert!(msg.starts_with("Redis is running"), "{msg}");
    assert!(msg.contains("127.0.0.1:6380"), "{msg}");
}

#[test]
fn unprivileged_run_degrades_with_a_clear_message() {
    require_lab!();
    if Command::new("setpriv").arg("--version").output().is_err() {
        panic!("needs setpriv (util-linux)");
    }
    let lab = Lab::new();
    let _l = lab.listen(&lab.server, "127.0.0.1:8080");
    // A copy that `nobody` can execute, wherever the build directory is.
    let dir = std::env::temp_dir().join(format!("canreach-nobody-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bin = dir.join("canreach");
    common::copy_program(env!("CARGO_BIN_EXE_canreach"), &bin).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            &lab.server,
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
        ])
        .arg(&bin)
        .args(["--json", SERVER_V4, "8080"])
        .env("NO_COLOR", "1")
        .output_in_lab()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(v["verdict"], "closed");
    assert_eq!(v["local"]["privileged"], false);
    let l = &v["local"]["listeners"][0];
    assert_eq!(l["uid"], 0, "the socket's owner is still known by uid");
    assert!(l["process"].is_null(), "but not its process, without root");
    assert!(
        finding(&v, "owner_hidden")["message"]
            .as_str()
            .unwrap()
            .contains("without root")
    );
    assert_eq!(v["local"]["firewall"]["inspected"], false);
    assert!(
        finding(&v, "firewall_not_inspected")["message"]
            .as_str()
            .unwrap()
            .contains("needs root")
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn an_output_chain_drop_on_this_machine_is_found_and_named() {
    require_lab!();
    let lab = Lab::new();
    let _l = lab.listen(&lab.server, "198.18.2.2:5432");
    lab.rule(&lab.client, "output", "tcp dport 5432 drop");
    let r = lab.canreach(&["--json", SERVER_V4, "5432"]);
    let v = r.json();
    assert_eq!(v["verdict"], "filtered", "{}", r.stdout);
    let rules = v["local"]["firewall"]["rules"].as_array().unwrap();
    assert_eq!(rules[0]["hook"], "output");
    assert_eq!(rules[0]["text"], "tcp dport 5432 drop");
    let f = finding(&v, "local_firewall_output");
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .contains("tcp dport 5432 drop")
    );
    // canreach runs as root here: no sudo in front of this machine's commands.
    assert!(
        steps_for(&v, "local_firewall_output")[1]["command"]
            .as_str()
            .unwrap()
            .starts_with("nft delete rule inet lab_output c handle")
    );
    // The path walk's SYNs to the same port die here too: not even hop 1 answers.
    assert!(ids(&v).contains(&"path_no_answer".into()), "{:?}", ids(&v));
}

#[test]
fn an_output_chain_reject_is_this_machines_own_firewall() {
    require_lab!();
    let lab = Lab::new();
    lab.rule(&lab.client, "output", "tcp dport 5432 reject");
    let r = lab.canreach(&["--json", SERVER_V4, "5432"]);
    let v = r.json();
    assert_eq!(v["verdict"], "rejected", "{}", r.stdout);
    assert_eq!(v["probes"][0]["icmp"]["sender"], "this_machine");
    assert_eq!(v["probes"][0]["icmp"]["from"], CLIENT_V4);
    // This machine's own rule is the cause: it is the headline and comes first.
    let ids = ids(&v);
    assert_eq!(
        ids[..2],
        ["local_firewall_output", "local_policy_reject"],
        "{ids:?}"
    );
    assert!(
        v["summary"]
            .as_str()
            .unwrap()
            .contains("this machine's own firewall"),
        "{}",
        v["summary"]
    );
    assert!(
        finding(&v, "local_firewall_output")["message"]
            .as_str()
            .unwrap()
            .contains("tcp dport 5432 reject")
    );
}

/// How the machine canreach runs on starts its services, as a test makes it: /run/systemd/system
/// present (systemd's own test) or not.
#[derive(Clone, Copy, PartialEq)]
enum Init {
    Systemd,
    None,
}

/// canreach in namespace `ns`, in mount and PID namespaces of its own (its /proc shows only
/// its own processes) whose /run is empty but for
/// /run/systemd/system with [`Init::Systemd`]: the host's own init decides nothing.
fn run_with_init(ns: &str, init: Init, args: &[&str]) -> Run {
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            ns,
            "unshare",
            "--mount",
            "--propagation",
            "private",
            // Its own processes too: a program of the host named like a usual server (a
            // developer's PostgreSQL, a copy of sleep named postgres) must not be found.
            "--pid",
            "--fork",
            "--mount-proc",
        ])
        .args([
            "sh",
            "-c",
            "mount -t tmpfs canreach-test /run || exit 99; \
             if [ \"$0\" = systemd ]; then mkdir -p /run/systemd/system; fi; exec \"$@\"",
            if init == Init::Systemd {
                "systemd"
            } else {
                "none"
            },
            env!("CARGO_BIN_EXE_canreach"),
        ])
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output_in_lab()
        .unwrap();
    let out = checked(out);
    assert_ne!(out.status.code(), Some(99), "tmpfs on /run");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        took: std::time::Duration::ZERO,
    }
}

/// On a machine without systemd (a container), no `systemctl` or `journalctl` is advised for
/// it, but the init scripts' `service` (issue 21, item 17).
#[test]
fn without_systemd_the_usual_server_is_started_with_service() {
    require_lab!();
    let lab = Lab::new();
    let r = run_with_init(&lab.server, Init::None, &["--json", ":22"]);
    let v = r.json();
    assert_eq!(v["verdict"], "closed", "{}", r.stdout);
    let cmds: Vec<&str> = steps_for(&v, "usual_server_not_running")
        .iter()
        .filter_map(|s| s["command"].as_str())
        .collect();
    assert_eq!(
        cmds,
        ["service ssh status", "service ssh start"],
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("systemctl") && !r.stdout.contains("journalctl"));
    let r = run_with_init(&lab.server, Init::Systemd, &["--json", ":22"]);
    assert!(r.stdout.contains("systemctl start ssh"), "{}", r.stdout);
}

/// As `nobody`, with nothing listening on the port: the report says so, and no step asks to
/// look for a firewall rule "if it does listen there" (issue 21, item 17).
#[test]
fn as_nobody_nothing_listening_gives_no_firewall_hunt() {
    require_lab!();
    let lab = Lab::new();
    let dir = std::env::temp_dir().join(format!("canreach-nobody2-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bin = dir.join("canreach");
    common::copy_program(env!("CARGO_BIN_EXE_canreach"), &bin).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = Command::new("ip")
        .args(["netns", "exec", &lab.server])
        .args([
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
        ])
        .arg(&bin)
        .args(["--json", "localhost", "21999"])
        .env("NO_COLOR", "1")
        .output_in_lab()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let out = checked(out);
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(v["verdict"], "closed");
    assert_eq!(v["local"]["privileged"], false);
    finding(&v, "nothing_listens_here");
    let advice = v["advice"].as_array().unwrap();
    assert!(
        advice[0]["text"]
            .as_str()
            .unwrap()
            .starts_with("Start the program"),
        "{advice:?}"
    );
    for s in advice {
        let text = s["text"].as_str().unwrap();
        assert!(!text.contains("If it does listen there"), "{text}");
        assert!(
            !s["command"].as_str().unwrap_or("").contains("nft list"),
            "{s}"
        );
    }
}

#[test]
fn a_bare_port_checks_what_localhost_gives_and_claims_nothing_else() {
    require_lab!();
    let lab = Lab::new();
    // This namespace's /etc/hosts maps localhost to 127.0.0.1 only; its lo has ::1 as well.
    lab.etc_file(&lab.server, "hosts", "127.0.0.1 localhost\n");
    let _l = Accepting::start(lab.listen(&lab.server, "127.0.0.1:3000"));
    let here = run_in(Some(&lab.server), &["--json", ":3000"]);
    let named = run_in(Some(&lab.server), &["--json", "localhost", "3000"]);
    let v = here.json();
    assert_eq!(v["verdict"], "open", "{}", here.stdout);
    assert_eq!(here.code, 0);
    assert_eq!(
        v["dns"]["system"]["addresses"],
        serde_json::json!(["127.0.0.1"])
    );
    // The addresses probed are the name's: no ::1 it does not give.
    assert_eq!(v["dns"]["addresses"], v["dns"]["system"]["addresses"]);
    assert!(!here.stdout.contains("gives ::1"), "{}", here.stdout);
    // The same answer as the name with its port, and this machine inspected as before.
    assert_eq!(named.json()["verdict"], v["verdict"]);
    assert_eq!(v["local"]["listeners"][0]["address"], "127.0.0.1");
}

#[test]
fn a_bare_port_still_names_the_localhost_trap_where_the_name_gives_both() {
    require_lab!();
    let lab = Lab::new();
    lab.etc_file(&lab.server, "hosts", "::1 localhost\n127.0.0.1 localhost\n");
    let _l = Accepting::start(lab.listen(&lab.server, "127.0.0.1:3000"));
    let r = run_in(Some(&lab.server), &["--json", ":3000"]);
    let v = r.json();
    assert_eq!(v["verdict"], "partial", "{}", r.stdout);
    assert_eq!(
        v["dns"]["addresses"],
        serde_json::json!(["::1", "127.0.0.1"])
    );
    assert!(
        finding(&v, "partial_reachability")["message"]
            .as_str()
            .unwrap()
            .contains("localhost` trap")
    );
}
