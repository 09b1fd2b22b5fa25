//! The name stage against a real DNS server: dnsmasq (started by the test in the server
//! namespace) answering the client namespace, whose /etc/netns/…/{resolv.conf,hosts} the test
//! writes. NXDOMAIN, NODATA (also behind a search line), SERVFAIL from a broken upstream, a dead
//! server (also a dead first server under default options), a stale /etc/hosts entry, a
//! search-domain expansion, and `localhost.`.

use crate::common;

use std::time::Duration;

use common::fake_dns::{Script, serve_on};
use common::*;
use hickory_proto::op::ResponseCode;

const RESOLV: &str = "nameserver 198.18.2.2\noptions timeout:1 attempts:1\n";

/// dnsmasq on 198.18.2.2:53 in the server namespace, authoritative for `lab`:
/// app.lab → 198.18.2.2, txtonly.lab has only a TXT record, broken.lab is forwarded to an
/// upstream at 198.18.2.2:5353.
fn dnsmasq(lab: &Lab) -> Started {
    let records = [
        "--txt-record=txtonly.lab,hello",
        "--server=/broken.lab/198.18.2.2#5353",
    ];
    let started = common::dnsmasq(lab, &records);
    // Ready when it answers.
    for _ in 0..100 {
        let r = lab.canreach(&["--json", "--no-trace", "--timeout", "1", "app.lab", "9"]);
        if r.json()["dns"]["servers"][0]["error"].is_null() {
            return started;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("dnsmasq did not start");
}

#[test]
fn nxdomain_and_nodata_are_told_apart_with_the_server_named() {
    require_lab!();
    let lab = Lab::new();
    lab.etc_file(&lab.client, "resolv.conf", RESOLV);
    let _dns = dnsmasq(&lab);
    let v = lab.canreach(&["--json", "nosuch.lab", "80"]).json();
    assert_eq!(v["verdict"], "dns_error");
    assert_eq!(v["dns"]["error"]["kind"], "nxdomain");
    assert_eq!(v["dns"]["servers"][0]["server"], "198.18.2.2:53");
    assert_eq!(v["dns"]["servers"][0]["error"]["kind"], "nxdomain");
    assert!(
        finding(&v, "dns_nxdomain")["message"]
            .as_str()
            .unwrap()
            .contains("198.18.2.2 → NXDOMAIN")
    );

    let v = lab.canreach(&["--json", "txtonly.lab", "80"]).json();
    assert_eq!(v["verdict"], "dns_error");
    assert_eq!(v["dns"]["error"]["kind"], "nodata");
    assert_eq!(ids(&v)[0], "dns_nodata");
    // The server said which records the name does have.
    assert_eq!(v["dns"]["servers"][0]["records"][0]["type"], "TXT");
    let msg = finding(&v, "dns_nodata")["message"].as_str().unwrap();
    assert!(msg.contains("It has TXT records only."), "{msg}");
}

#[test]
fn servfail_from_a_broken_upstream() {
    require_lab!();
    let lab = Lab::new();
    lab.etc_file(&lab.client, "resolv.conf", RESOLV);
    // The upstream dnsmasq forwards broken.lab to: a fake server that answers SERVFAIL.
    let socket = lab.udp(&lab.server, "198.18.2.2:5353");
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let upstream = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            socket.set_nonblocking(true).unwrap();
            let sock = tokio::net::UdpSocket::from_std(socket).unwrap();
            let script = Script::new(ResponseCode::ServFail, vec![]);
            let _server = serve_on(script, sock);
            tokio::task::spawn_blocking(move || stopped.recv())
                .await
                .ok();
        });
    });
    let _dns = dnsmasq(&lab);
    let v = lab.canreach(&["--json", "broken.lab", "80"]).json();
    let _ = stop.send(());
    upstream.join().unwrap();
    assert_eq!(v["verdict"], "dns_error", "{v}");
    assert_eq!(v["dns"]["error"]["kind"], "servfail");
    assert!(
        finding(&v, "dns_servfail")["message"]
            .as_str()
            .unwrap()
            .contains("upstream")
    );
}

#[test]
fn a_name_server_with_port_53_closed_is_diagnosed_at_once() {
    require_lab!();
    let lab = Lab::new();
    lab.etc_file(&lab.client, "resolv.conf", RESOLV);
    // No dnsmasq: the server's port 53 is closed.
    let r = lab.canreach(&["--json", "app.lab", "80"]);
    let v = r.json();
    assert_eq!(v["verdict"], "dns_error");
    assert_eq!(v["dns"]["error"]["kind"], "timeout");
    let p = &v["dns"]["servers"][0]["port53"];
    assert!(p["tcp"].as_str().unwrap().starts_with("closed"), "{p}");
    assert_eq!(p["udp"], "refused");
    // The closed port answers with ICMP port-unreachable: no need to wait for the timeout.
    assert!(
        v["elapsed_ms"].as_f64().unwrap() < 200.0,
        "{}",
        v["elapsed_ms"]
    );
    assert!(r.took < Duration::from_millis(500), "took {:?}", r.took);
}

#[test]
fn a_silent_name_server_is_diagnosed_within_its_timeout_plus_200_ms() {
    require_lab!();
    let lab = Lab::new();
    lab.etc_file(&lab.client, "resolv.conf", RESOLV);
    let _dns = dnsmasq(&lab);
    lab.rule(
        &lab.server,
        "input",
        "meta l4proto { tcp, udp } th dport 53 drop",
    );
    let r = lab.canreach(&["--json", "app.lab", "80"]);
    let v = r.json();
    assert_eq!(v["verdict"], "dns_error");
    assert_eq!(v["dns"]["error"]["kind"], "timeout");
    let p = &v["dns"]["servers"][0]["port53"];
    assert!(p["tcp"].as_str().unwrap().starts_with("filtered"), "{p}");
    assert_eq!(p["udp"], "no_answer");
    // timeout:1 in resolv.conf: 1000 ms, plus at most 200 ms.
    let ms = v["elapsed_ms"].as_f64().unwrap();
    assert!((1000.0..1200.0).contains(&ms), "{ms}");
}

#[test]
fn a_stale_hosts_entry_is_named_with_its_line_and_what_dns_says() {
    require_lab!();
    let lab = Lab::new();
    lab.etc_file(&lab.client, "resolv.conf", RESOLV);
    // The hosts file pins app.lab to the router's address; DNS says 198.18.2.2.
    lab.etc_file(
        &lab.client,
        "hosts",
        "127.0.0.1 localhost\n198.18.2.1 app.lab\n",
    );
    let _dns = dnsmasq(&lab);
    let v = lab.canreach(&["--json", "app.lab", "80"]).json();
    assert_eq!(
        v["dns"]["addresses"][0], "198.18.2.1",
        "the address applications use is probed"
    );
    let f = finding(&v, "hosts_override");
    let msg = f["message"].as_str().unwrap();
    assert!(
        msg.contains("/etc/hosts line 2") && msg.contains("198.18.2.2"),
        "{msg}"
    );
    assert_eq!(v["dns"]["hosts"][0]["line"], 2);
}

#[test]
fn a_name_that_resolves_only_with_a_search_domain() {
    require_lab!();
    let lab = Lab::new();
    lab.etc_file(&lab.client, "resolv.conf", &format!("{RESOLV}search lab\n"));
    let _l = lab.listen(&lab.server, "198.18.2.2:80");
    let _dns = dnsmasq(&lab);
    let v = lab.canreach(&["--json", "app", "80"]).json();
    assert_eq!(v["verdict"], "open", "{v}");
    assert_eq!(v["dns"]["servers"][0]["name_used"], "app.lab");
    let f = finding(&v, "search_domain_used");
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .contains("app resolved only as app.lab")
    );
}

/// resolv.conf with default options (`timeout:5`, `attempts:2`) whose first server is dead
/// (its port 53 dropped): glibc is still waiting on it at the check's 5 s deadline, but the DNS
/// view gives each server its own budget, so the report names the dead server, probes its port
/// 53, and says what the other server answered.
#[test]
fn a_dead_first_server_with_default_options_is_named() {
    require_lab!();
    let lab = Lab::new();
    lab.etc_file(&lab.client, "resolv.conf", RESOLV);
    let _dns = dnsmasq(&lab);
    // Then the configuration under test: the router (port 53 dropped) first.
    lab.etc_file(
        &lab.client,
        "resolv.conf",
        &format!("nameserver {ROUTER_V4_SERVER_SIDE}\nnameserver {SERVER_V4}\n"),
    );
    lab.rule(
        &lab.router,
        "input",
        "meta l4proto { tcp, udp } th dport 53 drop",
    );
    let r = lab.canreach(&["--json", "--no-trace", "app.lab", "80"]);
    let v = r.json();
    assert!(r.took < Duration::from_secs(7), "took {:?}", r.took);
    let first = &v["dns"]["servers"][0];
    assert_eq!(first["server"], "198.18.2.1:53", "{v}");
    assert_eq!(first["error"]["kind"], "timeout", "{first}");
    assert!(
        first["port53"]["tcp"]
            .as_str()
            .unwrap()
            .starts_with("filtered"),
        "{first}"
    );
    let second = &v["dns"]["servers"][1];
    assert_eq!(second["addresses"][0], "198.18.2.2", "{v}");
    // Half the 5 s left, not resolv.conf's 5 s.
    let waited = first["elapsed_ms"].as_f64().unwrap();
    assert!((2000.0..3000.0).contains(&waited), "{waited}");
    assert_eq!(v["verdict"], "dns_error", "{v}");
    let msg = finding(&v, "dns_timeout")["message"].as_str().unwrap();
    assert!(
        msg.contains("The first name server, 198.18.2.1,")
            && msg.contains("198.18.2.2 → 198.18.2.2"),
        "{msg}"
    );
}

/// With a `search` line, a name that has only a TXT record is NODATA as given (what glibc
/// reports), not the NXDOMAIN of the search-expanded name tried after it.
#[test]
fn nodata_as_given_is_not_hidden_by_the_search_line() {
    require_lab!();
    let lab = Lab::new();
    lab.etc_file(&lab.client, "resolv.conf", &format!("{RESOLV}search lab\n"));
    let _dns = dnsmasq(&lab);
    let v = lab.canreach(&["--json", "txtonly.lab", "80"]).json();
    assert_eq!(v["verdict"], "dns_error");
    assert_eq!(v["dns"]["error"]["kind"], "nodata", "{v}");
    assert_eq!(v["dns"]["servers"][0]["error"]["kind"], "nodata", "{v}");
    assert!(v["dns"]["servers"][0]["name_used"].is_null(), "{v}");
    assert_eq!(ids(&v)[0], "dns_nodata");
    // Too few dots: the search name comes first, and its NODATA is the one that matters.
    let v = lab.canreach(&["--json", "txtonly", "80"]).json();
    assert_eq!(v["dns"]["error"]["kind"], "nodata", "{v}");
    assert_eq!(v["dns"]["servers"][0]["name_used"], "txtonly.lab", "{v}");
    let msg = finding(&v, "dns_nodata")["message"].as_str().unwrap();
    assert!(
        msg.starts_with("The name txtonly.lab (txtonly with the search domain) exists"),
        "{msg}"
    );
}

/// `localhost.` is `localhost` (RFC 6761): loopback from the system view even though glibc would
/// miss the final-dot form in /etc/hosts and ask DNS (here: a server with port 53 closed).
#[test]
fn localhost_with_a_final_dot_is_loopback() {
    require_lab!();
    let lab = Lab::new();
    lab.etc_file(&lab.client, "resolv.conf", RESOLV);
    lab.etc_file(&lab.client, "hosts", "127.0.0.1 localhost\n");
    let v = lab.canreach(&["--json", "localhost.", "9"]).json();
    assert_ne!(v["verdict"], "dns_error", "{v}");
    assert_eq!(v["dns"]["addresses"][0], "127.0.0.1", "{v}");
    assert!(v["dns"]["servers"].as_array().unwrap().is_empty(), "{v}");
}

/// A name that resolves late (a dead first name server, `options timeout:4`: the answer comes
/// at 4 s of the 5 s deadline) leaves the probe the second that is left: the verdict, not
/// `inconclusive` after 0.4 ms of probing.
#[test]
fn a_name_that_resolves_late_still_gets_the_time_that_is_left() {
    require_lab!();
    let lab = Lab::new();
    lab.etc_file(&lab.client, "resolv.conf", RESOLV);
    let _dns = dnsmasq(&lab);
    let _l = lab.listen(&lab.server, "198.18.2.2:8080");
    lab.etc_file(
        &lab.client,
        "resolv.conf",
        &format!(
            "nameserver {ROUTER_V4_SERVER_SIDE}\nnameserver {SERVER_V4}\n\
             options timeout:4 attempts:1\n"
        ),
    );
    lab.rule(
        &lab.router,
        "input",
        "meta l4proto { tcp, udp } th dport 53 drop",
    );
    let r = lab.canreach(&["--json", "app.lab", "8080"]);
    let v = r.json();
    let resolved = v["dns"]["system"]["elapsed_ms"].as_f64().unwrap();
    assert!(resolved >= 3900.0, "the name resolved late: {resolved} ms");
    assert_eq!(v["dns"]["system"]["addresses"][0], SERVER_V4, "{v}");
    assert_eq!(v["verdict"], "open", "{}", r.stdout);
    assert!(
        v["elapsed_ms"].as_f64().unwrap() <= 5000.0,
        "{}",
        v["elapsed_ms"]
    );
}
