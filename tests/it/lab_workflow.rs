//! Workflows against a real kernel (network namespaces; root): a port that opens during a
//! `--wait`, a wait that gives up, a reject by this machine's own firewall that ends the wait
//! at once, a mixed list of targets, quiet mode, and `-- COMMAND` only on success.

use crate::common;

use std::time::Duration;

use common::*;
use serde_json::Value;

fn marker(name: &str) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("canreach-lab-{name}-{}", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

#[test]
fn a_port_that_opens_during_the_wait_is_one_change_then_the_command_runs() {
    require_lab!();
    let lab = Lab::new();
    let ran = marker("opens");
    let cmd = format!("echo ran > {}", ran.display());
    let r = std::thread::scope(|s| {
        let opener = s.spawn(|| {
            std::thread::sleep(Duration::from_millis(1500));
            lab.listen(&lab.server, "198.18.2.2:5432")
        });
        let r = lab.canreach(&["--wait", "6s", SERVER_V4, "5432", "--", "sh", "-c", &cmd]);
        drop(opener.join().unwrap());
        r
    });
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let changes: Vec<&str> = r.stderr.lines().filter(|l| l.contains(" → ")).collect();
    assert_eq!(changes.len(), 1, "exactly one change: {}", r.stderr);
    assert!(
        changes[0].contains("198.18.2.2:5432: closed → open after"),
        "{}",
        changes[0]
    );
    assert!(
        r.stdout.starts_with("✓ OPEN  198.18.2.2:5432"),
        "{}",
        r.stdout
    );
    assert!(r.took < Duration::from_secs(6), "{:?}", r.took);
    assert_eq!(std::fs::read_to_string(&ran).unwrap(), "ran\n");
    let _ = std::fs::remove_file(&ran);
}

#[test]
fn a_wait_that_gives_up_prints_the_last_diagnosis_and_runs_nothing() {
    require_lab!();
    let lab = Lab::new();
    lab.rule(&lab.server, "input", "tcp dport 5433 drop");
    let ran = marker("gives-up");
    let cmd = format!("echo ran > {}", ran.display());
    // JSON: the text report of a filtered port names one command for two machines, which
    // `check_report`'s text check (commands only, not machines) would take for a repeat.
    let r = lab.canreach(&[
        "--json", "--wait", "3s", "-t", "2s", SERVER_V4, "5433", "--", "sh", "-c", &cmd,
    ]);
    assert_eq!(r.code, 6, "{}\n{}", r.stdout, r.stderr);
    let lines: Vec<Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "no change, only the last report: {}",
        r.stdout
    );
    assert_eq!(lines[0]["verdict"], "filtered");
    assert!(!lines[0]["advice"].as_array().unwrap().is_empty());
    assert!(r.took >= Duration::from_secs(2), "{:?}", r.took);
    assert!(r.took < Duration::from_millis(4500), "{:?}", r.took);
    assert!(
        !ran.exists(),
        "the command must not run when the wait failed"
    );
}

#[test]
fn a_reject_by_this_machines_own_firewall_ends_the_wait_at_once() {
    require_lab!();
    let lab = Lab::new();
    lab.rule(
        &lab.client,
        "output",
        "tcp dport 5434 reject with icmpx admin-prohibited",
    );
    let r = lab.canreach(&["--json", "--wait", "20s", SERVER_V4, "5434"]);
    assert_eq!(r.code, 5, "{}\n{}", r.stdout, r.stderr);
    assert!(r.took < Duration::from_secs(3), "{:?}", r.took);
    let last: Value = serde_json::from_str(r.stdout.lines().last().unwrap()).unwrap();
    assert_eq!(last["verdict"], "rejected");
}

#[test]
fn a_mixed_list_gives_each_verdict_in_input_order_and_the_most_severe_code() {
    require_lab!();
    let lab = Lab::new();
    let _l = lab.listen(&lab.server, "198.18.2.2:5432");
    lab.rule(&lab.server, "input", "tcp dport 5434 drop");
    lab.rule(
        &lab.router,
        "forward",
        "tcp dport 5435 reject with icmpx admin-prohibited",
    );
    let targets = [
        format!("{SERVER_V4}:5435"),
        format!("{SERVER_V4}:5432"),
        format!("{SERVER_V4}:5434"),
        format!("{SERVER_V4}:5433"),
    ];
    let args: Vec<&str> = ["--json"]
        .into_iter()
        .chain(targets.iter().map(String::as_str))
        .collect();
    let r = lab.canreach(&args);
    let reports: Vec<Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    for rep in &reports {
        check_report(&serde_json::to_string(rep).unwrap());
    }
    let got: Vec<(&str, &str)> = reports
        .iter()
        .map(|v| {
            (
                v["target"]["input"].as_str().unwrap(),
                v["verdict"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (targets[0].as_str(), "rejected"),
            (targets[1].as_str(), "open"),
            (targets[2].as_str(), "filtered"),
            (targets[3].as_str(), "closed"),
        ]
    );
    // filtered is the most severe of these.
    assert_eq!(r.code, 6);

    // The same list as text: a table in input order, then the three reports that failed.
    let r = lab.canreach(&targets.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(r.code, 6);
    // A row's reason may wrap onto the lines below it: the rows are the lines that start with
    // a word.
    let table = r.stdout.split("\n\n").next().unwrap();
    let rows: Vec<&str> = table
        .lines()
        .skip(1)
        .filter(|l| !l.starts_with(' '))
        .collect();
    assert_eq!(rows.len(), 4, "{table}");
    for (row, (t, v)) in rows.iter().zip(&got) {
        assert!(
            row.starts_with(t) && row.contains(&format!(" {v} ")),
            "{row}"
        );
    }
    assert_eq!(
        r.stdout.matches("\nWhat was checked\n").count(),
        3,
        "{}",
        r.stdout
    );
}

#[test]
fn quiet_prints_nothing_and_keeps_the_code() {
    require_lab!();
    let lab = Lab::new();
    let r = lab.canreach(&["-q", SERVER_V4, "5432"]);
    assert_eq!(r.code, 4);
    assert!(
        r.stdout.is_empty() && r.stderr.is_empty(),
        "{r:?}",
        r = r.stdout
    );
    let _l = lab.listen(&lab.server, "198.18.2.2:5432");
    let r = lab.canreach(&["-q", "--wait", "2s", SERVER_V4, "5432", SERVER_V6, "5432"]);
    // IPv6 listener missing: closed; the wait runs out.
    assert_eq!(r.code, 4);
    assert!(r.stdout.is_empty() && r.stderr.is_empty());
}
