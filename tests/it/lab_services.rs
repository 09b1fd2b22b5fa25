//! Services in their own words, against real servers (Debian's PostgreSQL 15, Redis, MariaDB)
//! run in the lab's server namespace, misconfigured the usual ways. canreach runs in the
//! client namespace (198.18.1.2) and reaches them through the router.

use crate::common::services::{self, PG_BIN};
use crate::common::{CLIENT_V4, Lab, SERVER_V4, finding, ids, steps_for};

/// canreach from the client namespace, with a protocol or a URL chosen by the test.
fn check(lab: &Lab, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["--json", "--no-trace", "--timeout", "5s"];
    all.extend_from_slice(args);
    let r = crate::common::run_in(Some(&lab.client), &all);
    r.json()
}

#[test]
fn postgres_without_a_pg_hba_entry_for_this_client_names_the_host_it_saw() {
    require_lab!();
    if !services::available(module_path!(), PG_BIN, "postgresql-15") {
        return;
    }
    let lab = Lab::new();
    // Admits only another subnet.
    let pg = services::postgres(
        &lab.server,
        SERVER_V4,
        "local all all trust\nhost all all 198.18.9.0/24 scram-sha-256\n",
    );
    let url = format!("postgres://app:s3cr3tpw@{SERVER_V4}/orders");
    let v = check(&lab, &[&url]);
    assert_eq!(v["verdict"], "service_error", "{v}\n{}", pg.log_tail());
    assert_eq!(ids(&v)[0], "pg_no_hba_entry", "{:?}", ids(&v));
    let m = finding(&v, "pg_no_hba_entry")["message"].as_str().unwrap();
    assert!(
        m.contains(&format!("host \\\"{CLIENT_V4}\\\""))
            || m.contains(&format!("host \"{CLIENT_V4}\"")),
        "{m}"
    );
    let step = steps_for(&v, "pg_no_hba_entry")[0]["text"]
        .as_str()
        .unwrap();
    assert!(
        step.contains(&format!("host orders app {CLIENT_V4}/32 scram-sha-256")),
        "{step}"
    );
    let p = &v["probes"][0]["session"]["protocol"];
    assert_eq!(p["name"], "postgres");
    assert_eq!(p["tls"], "refused");
    assert_eq!(p["error"]["code"], "28000");
    // The URL's password is neither sent nor printed.
    let all = v.to_string();
    assert!(!all.contains("s3cr3tpw"), "{all}");
    let log = pg.log_tail();
    assert!(log.contains("no pg_hba.conf entry"), "{log}");
    assert!(!log.contains("s3cr3tpw"), "{log}");
}

#[test]
fn postgres_that_asks_for_a_password_is_open_naming_the_method() {
    require_lab!();
    if !services::available(module_path!(), PG_BIN, "postgresql-15") {
        return;
    }
    let lab = Lab::new();
    let pg = services::postgres(
        &lab.server,
        SERVER_V4,
        "local all all trust\nhost all all 198.18.1.0/24 scram-sha-256\n",
    );
    // By the port's usual service: no scheme, no flag.
    let v = check(&lab, &[SERVER_V4, "5432"]);
    assert_eq!(v["verdict"], "open", "{v}\n{}", pg.log_tail());
    let p = &v["probes"][0]["session"]["protocol"];
    assert_eq!(p["name"], "postgres");
    assert_eq!(p["auth_method"], "SCRAM-SHA-256");
    let m = finding(&v, "service_answered")["message"].as_str().unwrap();
    assert!(
        m.contains("PostgreSQL answers; it asks for a password (SCRAM-SHA-256)"),
        "{m}"
    );
    // Today's main watched the port and said nothing of the service.
    assert_eq!(v["probes"][0]["session"]["first"]["kind"], "not_watched");
}

#[test]
fn redis_in_protected_mode_reached_from_another_host_is_refused_in_its_words() {
    require_lab!();
    if !services::available(module_path!(), "/usr/bin/redis-server", "redis-server") {
        return;
    }
    let lab = Lab::new();
    let redis = services::redis(&lab.server, SERVER_V4, &[]);
    let v = check(&lab, &[&format!("redis://{SERVER_V4}")]);
    assert_eq!(v["verdict"], "service_error", "{v}\n{}", redis.log_tail());
    assert_eq!(ids(&v), ["redis_protected_mode"], "{v}");
    let steps = steps_for(&v, "redis_protected_mode")[0]["text"]
        .as_str()
        .unwrap();
    assert!(
        steps.contains("requirepass") && steps.contains("protected-mode no"),
        "{steps}"
    );
    let p = &v["probes"][0]["session"]["protocol"];
    assert_eq!(p["error"]["code"], "DENIED");
}

#[test]
fn redis_with_a_password_is_open_and_needs_auth() {
    require_lab!();
    if !services::available(module_path!(), "/usr/bin/redis-server", "redis-server") {
        return;
    }
    let lab = Lab::new();
    let redis = services::redis(&lab.server, SERVER_V4, &["--requirepass", "s3cr3tpw"]);
    let v = check(&lab, &["--protocol", "redis", SERVER_V4, "6379"]);
    assert_eq!(v["verdict"], "open", "{v}\n{}", redis.log_tail());
    let p = &v["probes"][0]["session"]["protocol"];
    assert_eq!(p["auth_method"], "AUTH");
    let m = finding(&v, "service_answered")["message"].as_str().unwrap();
    assert!(
        m.contains("Redis answers; it asks for a password (AUTH)"),
        "{m}"
    );
}

/// MariaDB's answer to a fresh connection from the client namespace: the first packet's
/// error code, or `None` for a greeting (read, then dropped: the handshake left halfway).
fn raw_first_packet(lab: &Lab) -> Option<u16> {
    use std::io::Read;
    let addr: std::net::SocketAddr = format!("{SERVER_V4}:3306").parse().unwrap();
    crate::common::in_namespace(&lab.client, move || {
        let mut s =
            std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(3)).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(3)))
            .unwrap();
        let mut buf = [0u8; 512];
        let n = s.read(&mut buf).unwrap();
        assert!(n > 6, "{:?}", &buf[..n]);
        // 3-byte length, sequence number, then 0xFF and the code (little-endian) for ERR.
        (buf[4] == 0xff).then(|| u16::from_le_bytes([buf[5], buf[6]]))
    })
}

#[test]
fn mariadb_with_a_user_only_for_another_subnet_refuses_the_host_decoded() {
    require_lab!();
    if !services::available(module_path!(), "/usr/sbin/mariadbd", "mariadb-server") {
        return;
    }
    let lab = Lab::new();
    let db = services::mariadb(
        &lab.server,
        SERVER_V4,
        "CREATE USER 'app'@'198.18.9.%' IDENTIFIED BY 'x';\n",
        &["--skip-name-resolve"],
    );
    let v = check(&lab, &[&format!("mariadb://app:s3cr3tpw@{SERVER_V4}/")]);
    assert_eq!(v["verdict"], "service_error", "{v}\n{}", db.log_tail());
    assert_eq!(ids(&v), ["mysql_host_not_allowed"], "{v}");
    let m = finding(&v, "mysql_host_not_allowed")["message"]
        .as_str()
        .unwrap();
    assert!(
        m.contains(&format!("\"Host '{CLIENT_V4}' is not allowed to connect")),
        "{m}"
    );
    // Decoded, never the packet's raw bytes.
    assert!(!v.to_string().contains("\\\\x"), "{v}");
    let p = &v["probes"][0]["session"]["protocol"];
    assert_eq!(p["error"]["code"], "1130");
    assert!(!v.to_string().contains("s3cr3tpw"));
}

/// `max_connect_errors=10`, name resolution on (MariaDB 10.11 counts a handshake dropped
/// halfway toward blocking the host only then), an account for every host.
fn mariadb_that_blocks(lab: &Lab) -> services::Server {
    // The server resolves the client's address from its hosts file (a failed lookup is
    // "temporary" to MariaDB, which then keeps no count for the host); DNS, never asked,
    // would stay inside the lab.
    let server = lab.server.clone();
    lab.etc_file(
        &server,
        "hosts",
        &format!("127.0.0.1 localhost\n{CLIENT_V4} client.lab\n"),
    );
    lab.etc_file(
        &server,
        "resolv.conf",
        "nameserver 198.18.2.1\noptions timeout:1 attempts:1\n",
    );
    services::mariadb(
        &lab.server,
        SERVER_V4,
        "CREATE USER 'app'@'%' IDENTIFIED BY 'x';\n",
        &["--max-connect-errors=10"],
    )
}

#[test]
fn two_hundred_checks_leave_mariadb_unblocked_where_dropped_handshakes_block_it() {
    require_lab!();
    if !services::available(module_path!(), "/usr/sbin/mariadbd", "mariadb-server") {
        return;
    }
    // The control: this setup does block a host that drops its handshakes.
    let lab = Lab::new();
    let db = mariadb_that_blocks(&lab);
    // Measured: the tenth dropped handshake blocks the host; the eleventh connection gets 1129.
    for i in 0..10 {
        assert_eq!(
            raw_first_packet(&lab),
            None,
            "connection {i}: {}",
            db.log_tail()
        );
    }
    assert_eq!(
        raw_first_packet(&lab),
        Some(1129),
        "10 dropped handshakes should block the host:\n{}",
        db.log_tail()
    );
    // And canreach names it.
    let v = check(&lab, &["--protocol", "mysql", SERVER_V4, "3306"]);
    assert_eq!(ids(&v), ["mysql_host_blocked"], "{v}");
    drop(db);
    drop(lab);

    // A fresh server, the same setup: 200 checks in a row.
    let lab = Lab::new();
    let db = mariadb_that_blocks(&lab);
    for i in 0..200 {
        let v = check(&lab, &[SERVER_V4, "3306"]);
        assert_eq!(v["verdict"], "open", "check {i}: {v}\n{}", db.log_tail());
        if i == 0 {
            let m = finding(&v, "service_answered")["message"].as_str().unwrap();
            assert!(
                m.contains("MariaDB 10.") && m.contains("asks for a password"),
                "{m}"
            );
        }
    }
    assert_eq!(raw_first_packet(&lab), None, "blocked after 200 checks");
}

#[test]
fn postgres_without_tls_fails_a_url_that_requires_it() {
    require_lab!();
    if !services::available(module_path!(), PG_BIN, "postgresql-15") {
        return;
    }
    let lab = Lab::new();
    let pg = services::postgres(
        &lab.server,
        SERVER_V4,
        "local all all trust\nhost all all 198.18.1.0/24 scram-sha-256\n",
    );
    let url = format!("postgresql://{SERVER_V4}/orders?sslmode=require");
    let v = check(&lab, &[&url]);
    assert_eq!(v["verdict"], "service_error", "{v}\n{}", pg.log_tail());
    assert_eq!(ids(&v), ["pg_tls_refused"], "{v}");
    assert_eq!(v["probes"][0]["session"]["protocol"]["tls"], "refused");
    // The same server without the requirement: open (libpq's `prefer` goes on in plain text).
    let v = check(&lab, &[&format!("postgresql://{SERVER_V4}/orders")]);
    assert_eq!(v["verdict"], "open", "{v}");
}

#[test]
fn redis_with_every_client_slot_taken_says_so() {
    require_lab!();
    if !services::available(module_path!(), "/usr/bin/redis-server", "redis-server") {
        return;
    }
    let lab = Lab::new();
    let redis = services::redis(
        &lab.server,
        SERVER_V4,
        &["--protected-mode", "no", "--maxclients", "1"],
    );
    // wait_listening's own connection has gone; this one takes the only slot.
    std::thread::sleep(std::time::Duration::from_millis(100));
    let _held = lab.connect(&lab.client, &format!("{SERVER_V4}:6379"));
    std::thread::sleep(std::time::Duration::from_millis(100));
    let v = check(&lab, &[&format!("redis://{SERVER_V4}")]);
    assert_eq!(v["verdict"], "service_error", "{v}\n{}", redis.log_tail());
    assert_eq!(ids(&v), ["too_many_clients"], "{v}");
    let m = finding(&v, "too_many_clients")["message"].as_str().unwrap();
    assert!(m.contains("max number of clients reached"), "{m}");
}

#[test]
fn postgres_with_tls_is_spoken_to_inside_the_tls_session() {
    require_lab!();
    if !services::available(module_path!(), PG_BIN, "postgresql-15") {
        return;
    }
    let lab = Lab::new();
    let pg = services::postgres_tls(
        &lab.server,
        SERVER_V4,
        "local all all trust\nhostssl all all 198.18.1.0/24 scram-sha-256\n",
    );
    // libpq's default (`prefer`): TLS without verifying the certificate, then the startup
    // inside it (`hostssl` admits only that).
    let v = check(&lab, &[&format!("postgres://{SERVER_V4}/")]);
    assert_eq!(v["verdict"], "open", "{v}\n{}", pg.log_tail());
    let s = &v["probes"][0]["session"];
    assert_eq!(s["protocol"]["tls"], "accepted");
    // Inside TLS the server offers channel binding too.
    assert_eq!(
        s["protocol"]["auth_method"],
        "SCRAM-SHA-256-PLUS SCRAM-SHA-256"
    );
    assert_eq!(s["tls"]["chain"][0]["subject"], "CN=db.lab", "{s}");
    // `verify-full` verifies it, as libpq does: self-signed.
    let v = check(
        &lab,
        &[&format!("postgres://{SERVER_V4}/?sslmode=verify-full")],
    );
    assert_eq!(v["verdict"], "tls_error", "{v}");
}

#[test]
fn a_postgres_standby_that_serves_no_one_is_named() {
    require_lab!();
    if !services::available(module_path!(), PG_BIN, "postgresql-15") {
        return;
    }
    let lab = Lab::new();
    let pg = services::postgres_standby(
        &lab.server,
        SERVER_V4,
        "local all all trust\nhost all all 198.18.1.0/24 scram-sha-256\n",
    );
    let v = check(&lab, &[&format!("postgres://{SERVER_V4}/")]);
    assert_eq!(v["verdict"], "service_error", "{v}\n{}", pg.log_tail());
    assert_eq!(ids(&v), ["service_starting"], "{v}");
    assert_eq!(
        v["probes"][0]["session"]["protocol"]["error"]["code"],
        "57P03"
    );
    let m = finding(&v, "service_starting")["message"].as_str().unwrap();
    assert!(m.contains("in recovery"), "{m}");
}

/// A PostgreSQL session as `postgres` (a `trust` line), held open until dropped.
fn pg_session(lab: &Lab) -> std::net::TcpStream {
    use std::io::{Read, Write};
    let mut s = lab.connect(&lab.client, &format!("{SERVER_V4}:5432"));
    let body = b"\0\x03\0\0user\0postgres\0\0";
    let mut msg = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    msg.extend_from_slice(body);
    s.write_all(&msg).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(3)))
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    // Until ReadyForQuery (`Z`, length 5, status `I`).
    while !got.windows(6).any(|w| w == b"Z\0\0\0\x05I") {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "closed: {got:?}");
        got.extend_from_slice(&buf[..n]);
    }
    s
}

#[test]
fn postgres_with_every_connection_slot_taken_says_so() {
    require_lab!();
    if !services::available(module_path!(), PG_BIN, "postgresql-15") {
        return;
    }
    let lab = Lab::new();
    let pg = services::postgres_conf(
        &lab.server,
        SERVER_V4,
        "local all all trust\nhost all postgres 198.18.1.0/24 trust\n\
         host all all 198.18.1.0/24 scram-sha-256\n",
        "max_connections = 2\nsuperuser_reserved_connections = 0\n",
    );
    let _held = [pg_session(&lab), pg_session(&lab)];
    let v = check(&lab, &[&format!("postgres://{SERVER_V4}/")]);
    assert_eq!(v["verdict"], "service_error", "{v}\n{}", pg.log_tail());
    assert_eq!(ids(&v), ["too_many_clients"], "{v}");
    assert_eq!(
        v["probes"][0]["session"]["protocol"]["error"]["code"],
        "53300"
    );
}

#[test]
fn a_local_postgres_port_whose_program_never_accepts_is_named_as_such() {
    require_lab!();
    let lab = Lab::new();
    let l = lab.listen_backlog(&lab.client, "127.0.0.1:5432", 16);
    let _holder = lab.hold(&lab.client, &l);
    let r = crate::common::run_in(
        Some(&lab.client),
        &["--json", "--timeout", "2s", "127.0.0.1", "5432"],
    );
    let v = r.json();
    assert_eq!(v["verdict"], "service_error", "{}", r.stdout);
    // Not "PostgreSQL did not answer": the program never took the connection.
    assert_eq!(ids(&v), ["program_not_accepting"], "{}", r.stdout);
    assert_eq!(v["probes"][0]["session"]["protocol"]["failure"], "no_reply");
}
