//! The members a MongoDB replica set and the brokers a Kafka cluster advertise, checked from
//! the client namespace (198.18.1.2) as its clients would reach them next. Neither has a
//! Debian server package: small fake servers (`common::fake_services`) speak the replies in
//! the server namespace (198.18.2.2), behind the router.

use crate::common::fake_services::{self, hello_reply};
use crate::common::{Accepting, Lab, SERVER_V4, finding, ids, steps_for};

/// canreach from the client namespace.
fn check(lab: &Lab, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["--json", "--no-trace", "--timeout", "5s"];
    all.extend_from_slice(args);
    crate::common::run_in(Some(&lab.client), &all).json()
}

fn message<'a>(v: &'a serde_json::Value, id: &str) -> &'a str {
    finding(v, id)["message"].as_str().unwrap()
}

#[test]
fn a_replica_set_whose_members_all_answer_is_open_with_no_warning() {
    require_lab!();
    let lab = Lab::new();
    lab.etc_file(
        &lab.client.clone(),
        "hosts",
        &format!("127.0.0.1 localhost\n{SERVER_V4} mongo-0.lab mongo-1.lab\n"),
    );
    let hosts = ["mongo-0.lab:27017", "mongo-1.lab:27018"];
    let hello = hello_reply("rs0", hosts[0], hosts[0], &hosts, true);
    let _m0 = fake_services::mongodb(lab.listen(&lab.server, "198.18.2.2:27017"), hello);
    let _m1 = Accepting::start(lab.listen(&lab.server, "198.18.2.2:27018"));
    let v = check(&lab, &["--protocol", "mongodb", SERVER_V4, "27017"]);
    assert_eq!(v["verdict"], "open", "{v}");
    assert!(
        !ids(&v).contains(&"advertised_member_unreachable".to_string()),
        "{v}"
    );
    let m = message(&v, "advertised_members");
    assert!(
        m.starts_with(
            "MongoDB replica set \"rs0\" (198.18.2.2 answered: the writable primary) \
             advertises 2 members: primary mongo-0.lab:27017, mongo-1.lab:27018. From here 2 \
             of them resolve and answer."
        ),
        "{m}"
    );
}

#[test]
fn replica_set_members_that_do_not_resolve_refuse_or_stay_silent_are_named() {
    require_lab!();
    let lab = Lab::new();
    lab.etc_file(
        &lab.client.clone(),
        "hosts",
        &format!("127.0.0.1 localhost\n{SERVER_V4} mongo-0.lab\n"),
    );
    // 27019: nothing listens (refused); 27020: dropped on the server (silent).
    lab.rule(&lab.server, "input", "tcp dport 27020 drop");
    let hosts = [
        "mongo-0.lab:27017",
        "mongo-2.mongo.svc.cluster.local:27017",
        "198.18.2.2:27019",
        "198.18.2.2:27020",
    ];
    let hello = hello_reply("rs0", hosts[0], hosts[0], &hosts, true);
    let _m0 = fake_services::mongodb(lab.listen(&lab.server, "198.18.2.2:27017"), hello);
    let v = check(&lab, &["--protocol", "mongodb", SERVER_V4, "27017"]);
    // The member asked answers: the target is open; its set fails the application.
    assert_eq!(v["verdict"], "open", "{v}");
    let m = message(&v, "advertised_member_unreachable");
    assert!(
        m.starts_with("198.18.2.2: 3 advertised members cannot be reached from here"),
        "{m}"
    );
    assert!(
        m.contains("\"mongo-2.mongo.svc.cluster.local:27017\" does not resolve here"),
        "{m}"
    );
    assert!(m.contains("\"198.18.2.2:27019\" refused (TCP reset"), "{m}");
    assert!(
        m.contains("\"198.18.2.2:27020\" silent (no answer in"),
        "{m}"
    );
    assert!(!m.contains("mongo-0.lab"), "{m}");
    let step = steps_for(&v, "advertised_member_unreachable")[0]["text"]
        .as_str()
        .unwrap();
    assert!(step.contains("rs.conf()"), "{step}");
    assert!(step.contains("directConnection=true"), "{step}");
    let info = message(&v, "advertised_members");
    assert!(
        info.contains("From here 1 of them resolves and answers"),
        "{info}"
    );
    // JSON: the set and this member's state; each member with what reaching it gave.
    let rs = &v["probes"][0]["session"]["protocol"]["replica_set"];
    assert_eq!(rs["name"], "rs0", "{v}");
    assert_eq!(rs["writable_primary"], true);
    assert_eq!(rs["me"], "mongo-0.lab:27017");
    let a = &v["advertised"];
    assert_eq!(a["protocol"], "mongodb");
    assert_eq!(a["from"], "198.18.2.2:27017");
    let reach: Vec<&str> = a["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["reach"].as_str().unwrap())
        .collect();
    assert_eq!(reach, ["answers", "fails", "fails", "fails"], "{a}");
    let members = &a["members"];
    assert_eq!(members[0]["primary"], true);
    assert_eq!(members[0]["me"], true);
    assert!(members[1]["lookup_error"]["kind"].is_string(), "{a}");
    assert_eq!(members[2]["probes"][0]["outcome"], "closed", "{a}");
    assert_eq!(members[3]["probes"][0]["outcome"], "filtered", "{a}");
    // The text report names them too (and fits 80 columns: `check_report`).
    let r = crate::common::run_in(
        Some(&lab.client),
        &["--no-trace", "--protocol", "mongodb", SERVER_V4, "27017"],
    );
    let text = crate::common::flat(&r.stdout);
    assert!(
        text.contains("\"mongo-2.mongo.svc.cluster.local:27017\" does not resolve here"),
        "{}",
        r.stdout
    );
}

#[test]
fn a_kafka_broker_advertising_localhost_is_named_and_a_reachable_one_is_not() {
    require_lab!();
    let lab = Lab::new();
    let _local = fake_services::kafka(
        lab.listen(&lab.server, "198.18.2.2:9092"),
        "lab-cluster",
        &[(1, "localhost", 9092)],
    );
    let v = check(&lab, &["--protocol", "kafka", SERVER_V4, "9092"]);
    assert_eq!(v["verdict"], "open", "{v}");
    let m = message(&v, "advertised_member_unreachable");
    assert!(
        m.starts_with("198.18.2.2: 1 advertised broker cannot be reached from here: broker 1 \"localhost:9092\""),
        "{m}"
    );
    assert!(m.contains("refused"), "{m}");
    assert!(
        m.contains("a loopback address is this machine itself"),
        "{m}"
    );
    let step = steps_for(&v, "advertised_member_unreachable")[0]["text"]
        .as_str()
        .unwrap();
    assert!(step.contains("advertised.listeners"), "{step}");
    let info = message(&v, "advertised_members");
    assert!(info.starts_with("Kafka cluster \"lab-cluster\""), "{info}");
    let b = &v["advertised"]["members"][0];
    assert_eq!(v["advertised"]["protocol"], "kafka", "{v}");
    assert_eq!(b["role"], "broker");
    assert_eq!(b["node_id"], 1);
    assert_eq!(b["reach"], "fails");
    // localhost here: ::1 and 127.0.0.1, this machine, where nothing listens on 9092.
    let probes = b["probes"].as_array().unwrap();
    assert!(probes.iter().any(|p| p["address"] == "127.0.0.1"), "{b}");
    assert!(probes.iter().all(|p| p["outcome"] == "closed"), "{b}");

    // The same broker advertising its own lab address: reachable, no warning.
    let _own = fake_services::kafka(
        lab.listen(&lab.server, "198.18.2.2:9093"),
        "lab-cluster",
        &[(1, SERVER_V4, 9093)],
    );
    let v = check(&lab, &["--protocol", "kafka", SERVER_V4, "9093"]);
    assert_eq!(v["verdict"], "open", "{v}");
    assert!(
        !ids(&v).contains(&"advertised_member_unreachable".to_string()),
        "{v}"
    );
    let info = message(&v, "advertised_members");
    assert!(
        info.contains("From here 1 of them resolves and answers"),
        "{info}"
    );
}
