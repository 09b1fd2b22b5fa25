//! What runs on the machine does not change a result: the test binary has PID, mount and
//! network namespaces of its own, and each lab a PID namespace inside them (see
//! `common/sandbox.rs`). Here, processes named like the usual servers run outside a lab, and
//! the lab's checks must not see them — while the same program started inside the lab is
//! seen, so the decoys are ones canreach would report.

use crate::common;

use std::process::{Command, Stdio};

use common::sandbox;
use common::*;

/// The usual servers' process names, each with a port it usually serves.
const DECOYS: [(&str, &str); 5] = [
    ("postgres", "5432"),
    ("redis-server", "6379"),
    ("mysqld", "3306"),
    ("nginx", "80"),
    ("sshd", "22"),
];

#[test]
fn the_tests_run_in_namespaces_of_their_own() {
    if !sandbox::inside() {
        let why = "the tests run in the machine's PID namespace: `unshare --pid` is not \
                   allowed here (see common/sandbox.rs)";
        common::cannot_run(module_path!(), why);
        return;
    }
    // The namespace's first process is the shell that started this binary: its /proc
    // begins with this run, and lists nothing from before it.
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    let parent: u32 = after_name.split(' ').nth(1).unwrap().parse().unwrap();
    assert_eq!(parent, 1, "{stat}");
    assert_eq!(std::fs::read_to_string("/proc/1/comm").unwrap(), "sh\n");
    assert_eq!(
        std::fs::read_to_string("/etc/hosts").unwrap(),
        sandbox::HOSTS,
        "the stock /etc/hosts"
    );
    // A network namespace with a loopback device and nothing else, up.
    let dev = std::fs::read_to_string("/proc/net/dev").unwrap();
    let devices: Vec<&str> = dev
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(str::trim)
        .collect();
    assert_eq!(devices, ["lo"], "{dev}");
    assert!(std::net::TcpListener::bind("127.0.0.1:0").is_ok());
    // Its own /tmp and lab namespace names: two runs on one machine share none of them.
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    for dir in ["/tmp", "/run/netns", "/etc/netns"] {
        assert!(
            mounts.lines().any(|l| {
                let f: Vec<&str> = l.split(' ').collect();
                f.get(4) == Some(&dir) && l.contains(" - tmpfs canreach-test ")
            }),
            "{dir} is not the run's own:\n{mounts}"
        );
    }
}

#[test]
fn processes_outside_a_lab_are_not_seen_by_its_checks() {
    require_lab!();
    let dir = std::env::temp_dir().join(format!("canreach-decoys-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sleep = std::fs::canonicalize("/bin/sleep").unwrap();
    let mut decoys = Vec::new();
    for (name, _) in DECOYS {
        // A copy of sleep under the server's name: its /proc/PID/comm is that name.
        let exe = dir.join(name);
        crate::common::copy_program(&sleep, &exe).unwrap();
        decoys.push(Started(
            Command::new(&exe)
                .arg("600")
                .stdin(Stdio::null())
                .spawn()
                .unwrap(),
        ));
    }
    let lab = Lab::new();
    for (name, port) in DECOYS {
        let r = run_in(Some(&lab.server), &["--json", &format!(":{port}")]);
        let v = r.json();
        assert_eq!(v["verdict"], "closed", "{name}: {}", r.stdout);
        assert_eq!(v["local"]["usual_servers"], serde_json::json!([]), "{name}");
        assert!(
            ids(&v).contains(&"usual_server_not_running".to_string()),
            "{name}: {:?}",
            ids(&v)
        );
    }
    // The control: the same program under the same name, started in the lab, is seen.
    let inside = Started(
        Command::new("ip")
            .args(["netns", "exec", &lab.server])
            .arg(dir.join("postgres"))
            .arg("600")
            .stdin(Stdio::null())
            .spawn_in_lab()
            .unwrap(),
    );
    // (Once `ip netns exec` has become the program.)
    let comm = format!("/proc/{}/comm", inside.0.id());
    while std::fs::read_to_string(&comm).unwrap() != "postgres\n" {
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let r = run_in(Some(&lab.server), &["--json", ":5432"]);
    let v = r.json();
    let msg = finding(&v, "usual_server_elsewhere")["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(msg.starts_with("PostgreSQL is running (postgres"), "{msg}");
    drop(inside);
    drop(decoys);
    let _ = std::fs::remove_dir_all(&dir);
}
