//! Services in their own words, against real servers (Debian's PostgreSQL 15, Redis, MariaDB)
//! run in the lab's server namespace, misconfigured the usual ways. canreach runs in the
//! client namespace (198.18.1.2) and reaches them through the router.

use serde_json::Value;

use crate::common::services::{self, PG_BIN, Server};
use crate::common::{CLIENT_V4, Lab, SERVER_V4, finding, ids, steps_for};

/// pg_hba.conf: the client's subnet logs in with a password (SCRAM).
const PG_PASSWORD_FOR_CLIENTS: &str =
    "local all all trust\nhost all all 198.18.1.0/24 scram-sha-256\n";

/// pg_hba.conf: the client's subnet is let in without a password (`trust`), so the server
/// goes on to the role and the database.
const PG_TRUST_FOR_CLIENTS: &str = "local all all trust\nhost all all 198.18.1.0/24 trust\n";

/// Start PostgreSQL in a lab's server namespace with `hba` as its pg_hba.conf.
fn postgres(hba: &'static str) -> impl FnOnce(&Lab) -> Server {
    move |lab| services::postgres(&lab.server, SERVER_V4, hba)
}

/// Which server a test starts: each is a Debian package CI installs.
#[derive(Clone, Copy)]
enum Needs {
    Postgres,
    Redis,
    MariaDb,
}

/// A lab with `server` started in it by `start`, or `None` (said why) where the lab or the
/// server's package is missing.
fn started(server: Needs, start: impl FnOnce(&Lab) -> Server) -> Option<(Lab, Server)> {
    if let Some(why) = crate::common::lab_unavailable() {
        crate::common::cannot_run(module_path!(), &why);
        return None;
    }
    let (path, package) = match server {
        Needs::Postgres => (PG_BIN, "postgresql-15"),
        Needs::Redis => ("/usr/bin/redis-server", "redis-server"),
        Needs::MariaDb => ("/usr/sbin/mariadbd", "mariadb-server"),
    };
    if !services::available(module_path!(), path, package) {
        return None;
    }
    let lab = Lab::new();
    let s = start(&lab);
    Some((lab, s))
}

/// canreach from the client namespace, with a protocol or a URL chosen by the test.
fn check(lab: &Lab, args: &[&str]) -> Value {
    let mut all = vec!["--json", "--no-trace", "--timeout", "5s"];
    all.extend_from_slice(args);
    let r = crate::common::run_in(Some(&lab.client), &all);
    r.json()
}

/// canreach from the client namespace on `url`, its `SERVER` the lab's server address.
fn check_url(lab: &Lab, url: &str) -> Value {
    check(lab, &[&url.replace("SERVER", SERVER_V4)])
}

/// What the first address's session learnt in the service's protocol (JSON
/// `session.protocol`).
fn protocol(v: &Value) -> &Value {
    &v["probes"][0]["session"]["protocol"]
}

/// The report is `service_error` with `id` its only finding: that finding's message.
fn refused_with<'v>(v: &'v Value, server: &Server, id: &str) -> &'v str {
    assert_eq!(v["verdict"], "service_error", "{v}\n{}", server.log_tail());
    assert_eq!(ids(v), [id], "{v}");
    finding(v, id)["message"].as_str().unwrap()
}

/// The report is `open`: what `service_answered` says of the service.
fn open_saying<'v>(v: &'v Value, server: &Server) -> &'v str {
    assert_eq!(v["verdict"], "open", "{v}\n{}", server.log_tail());
    finding(v, "service_answered")["message"].as_str().unwrap()
}

/// The first planned step `id` proposed.
fn first_step<'v>(v: &'v Value, id: &str) -> &'v str {
    steps_for(v, id)[0]["text"].as_str().unwrap()
}

/// No trace of `secret` in the report (the URL's password is never printed).
fn never_shown(v: &Value, secret: &str) {
    let all = v.to_string();
    assert!(!all.contains(secret), "{all}");
}

#[test]
fn postgres_without_a_pg_hba_entry_for_this_client_names_the_host_it_saw() {
    // Admits only another subnet.
    let Some((lab, pg)) = started(
        Needs::Postgres,
        postgres("local all all trust\nhost all all 198.18.9.0/24 scram-sha-256\n"),
    ) else {
        return;
    };
    let v = check_url(&lab, "postgres://app:s3cr3tpw@SERVER/orders");
    let m = refused_with(&v, &pg, "pg_no_hba_entry");
    assert!(m.contains(&format!("host \"{CLIENT_V4}\"")), "{m}");
    let step = first_step(&v, "pg_no_hba_entry");
    assert!(
        step.contains(&format!("host orders app {CLIENT_V4}/32 scram-sha-256")),
        "{step}"
    );
    let p = protocol(&v);
    assert_eq!(p["name"], "postgres");
    assert_eq!(p["tls"], "refused");
    assert_eq!(p["error"]["code"], "28000");
    // The URL's password is neither sent nor printed.
    never_shown(&v, "s3cr3tpw");
    let log = pg.log_tail();
    assert!(log.contains("no pg_hba.conf entry"), "{log}");
    assert!(!log.contains("s3cr3tpw"), "{log}");
}

#[test]
fn postgres_that_asks_for_a_password_is_open_naming_the_method() {
    let Some((lab, pg)) = started(Needs::Postgres, postgres(PG_PASSWORD_FOR_CLIENTS)) else {
        return;
    };
    // By the port's usual service: no scheme, no flag.
    let v = check(&lab, &[SERVER_V4, "5432"]);
    let m = open_saying(&v, &pg);
    assert!(
        m.contains("PostgreSQL answers; it asks for a password (SCRAM-SHA-256)"),
        "{m}"
    );
    assert_eq!(protocol(&v)["name"], "postgres");
    assert_eq!(protocol(&v)["auth_method"], "SCRAM-SHA-256");
    // Today's main watched the port and said nothing of the service.
    assert_eq!(v["probes"][0]["session"]["first"]["kind"], "not_watched");
}

#[test]
fn redis_in_protected_mode_reached_from_another_host_is_refused_in_its_words() {
    let Some((lab, redis)) = started(Needs::Redis, |lab| {
        services::redis(&lab.server, SERVER_V4, &[])
    }) else {
        return;
    };
    let v = check_url(&lab, "redis://SERVER");
    refused_with(&v, &redis, "redis_protected_mode");
    let step = first_step(&v, "redis_protected_mode");
    assert!(
        step.contains("requirepass") && step.contains("protected-mode no"),
        "{step}"
    );
    assert_eq!(protocol(&v)["error"]["code"], "DENIED");
}

#[test]
fn redis_with_a_password_is_open_and_needs_auth() {
    let Some((lab, redis)) = started(Needs::Redis, |lab| {
        services::redis(&lab.server, SERVER_V4, &["--requirepass", "s3cr3tpw"])
    }) else {
        return;
    };
    let v = check(&lab, &["--protocol", "redis", SERVER_V4, "6379"]);
    let m = open_saying(&v, &redis);
    assert!(
        m.contains("Redis answers; it asks for a password (AUTH)"),
        "{m}"
    );
    assert_eq!(protocol(&v)["auth_method"], "AUTH");
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
    let Some((lab, db)) = started(Needs::MariaDb, |lab| {
        services::mariadb(
            &lab.server,
            SERVER_V4,
            "CREATE USER 'app'@'198.18.9.%' IDENTIFIED BY 'x';\n",
            &["--skip-name-resolve"],
        )
    }) else {
        return;
    };
    let v = check_url(&lab, "mariadb://app:s3cr3tpw@SERVER/");
    let m = refused_with(&v, &db, "mysql_host_not_allowed");
    assert!(
        m.contains(&format!("\"Host '{CLIENT_V4}' is not allowed to connect")),
        "{m}"
    );
    // Decoded, never the packet's raw bytes.
    assert!(!v.to_string().contains("\\\\x"), "{v}");
    assert_eq!(protocol(&v)["error"]["code"], "1130");
    never_shown(&v, "s3cr3tpw");
}

/// `max_connect_errors=10`, name resolution on (MariaDB 10.11 counts a handshake dropped
/// halfway toward blocking the host only then), an account for every host.
fn mariadb_that_blocks(lab: &Lab) -> Server {
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
    // The control: this setup does block a host that drops its handshakes.
    let Some((lab, db)) = started(Needs::MariaDb, mariadb_that_blocks) else {
        return;
    };
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
            let m = open_saying(&v, &db);
            assert!(
                m.contains("MariaDB 10.") && m.contains("asks for a password"),
                "{m}"
            );
        }
    }
    assert_eq!(raw_first_packet(&lab), None, "blocked after 200 checks");
    // Told to say nothing (`--protocol tcp`): the greeting is watched on the probe's own
    // connection (one handshake dropped, as by any plain connect: serve_lab.rs counts them).
    let v = check(&lab, &["--protocol", "tcp", SERVER_V4, "3306"]);
    assert_eq!(v["verdict"], "open", "{v}");
    assert_eq!(v["probes"][0]["session"]["first"]["kind"], "banner", "{v}");
}

#[test]
fn postgres_without_tls_fails_a_url_that_requires_it() {
    let Some((lab, pg)) = started(Needs::Postgres, postgres(PG_PASSWORD_FOR_CLIENTS)) else {
        return;
    };
    let v = check_url(&lab, "postgresql://SERVER/orders?sslmode=require");
    refused_with(&v, &pg, "pg_tls_refused");
    assert_eq!(protocol(&v)["tls"], "refused");
    // The same server without the requirement: open (libpq's `prefer` goes on in plain text).
    let v = check_url(&lab, "postgresql://SERVER/orders");
    open_saying(&v, &pg);
}

#[test]
fn redis_with_every_client_slot_taken_says_so() {
    let Some((lab, redis)) = started(Needs::Redis, |lab| {
        services::redis(
            &lab.server,
            SERVER_V4,
            &["--protected-mode", "no", "--maxclients", "1"],
        )
    }) else {
        return;
    };
    // wait_listening's own connection has gone; this one takes the only slot.
    std::thread::sleep(std::time::Duration::from_millis(100));
    let _held = lab.connect(&lab.client, &format!("{SERVER_V4}:6379"));
    std::thread::sleep(std::time::Duration::from_millis(100));
    let v = check_url(&lab, "redis://SERVER");
    let m = refused_with(&v, &redis, "too_many_clients");
    assert!(m.contains("\"ERR max number of clients reached\""), "{m}");
}

#[test]
fn postgres_with_tls_is_spoken_to_inside_the_tls_session() {
    let Some((lab, pg)) = started(Needs::Postgres, |lab| {
        services::postgres_tls(
            &lab.server,
            SERVER_V4,
            "local all all trust\nhostssl all all 198.18.1.0/24 scram-sha-256\n",
        )
    }) else {
        return;
    };
    // libpq's default (`prefer`): TLS without verifying the certificate, then the startup
    // inside it (`hostssl` admits only that).
    let v = check_url(&lab, "postgres://SERVER/");
    open_saying(&v, &pg);
    assert_eq!(protocol(&v)["tls"], "accepted");
    // Inside TLS the server offers channel binding too.
    assert_eq!(
        protocol(&v)["auth_method"],
        "SCRAM-SHA-256-PLUS SCRAM-SHA-256"
    );
    let s = &v["probes"][0]["session"];
    assert_eq!(s["tls"]["chain"][0]["subject"], "CN=db.lab", "{s}");
    // `verify-full` verifies it, as libpq does: self-signed.
    let v = check_url(&lab, "postgres://SERVER/?sslmode=verify-full");
    assert_eq!(v["verdict"], "tls_error", "{v}");
}

#[test]
fn a_postgres_standby_that_serves_no_one_is_named() {
    let Some((lab, pg)) = started(Needs::Postgres, |lab| {
        services::postgres_standby(&lab.server, SERVER_V4, PG_PASSWORD_FOR_CLIENTS)
    }) else {
        return;
    };
    let v = check_url(&lab, "postgres://SERVER/");
    let m = refused_with(&v, &pg, "service_starting");
    assert!(m.contains("in recovery"), "{m}");
    assert_eq!(protocol(&v)["error"]["code"], "57P03");
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
    let Some((lab, pg)) = started(Needs::Postgres, |lab| {
        services::postgres_conf(
            &lab.server,
            SERVER_V4,
            "local all all trust\nhost all postgres 198.18.1.0/24 trust\n\
         host all all 198.18.1.0/24 scram-sha-256\n",
            "max_connections = 2\nsuperuser_reserved_connections = 0\n",
        )
    }) else {
        return;
    };
    let _held = [pg_session(&lab), pg_session(&lab)];
    let v = check_url(&lab, "postgres://SERVER/");
    let m = refused_with(&v, &pg, "too_many_clients");
    assert!(m.contains("\"sorry, too many clients already\""), "{m}");
    assert_eq!(protocol(&v)["error"]["code"], "53300");
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
    assert_eq!(protocol(&v)["failure"], "no_reply");
}

#[test]
fn postgres_asked_for_a_database_that_does_not_exist_names_it() {
    // `trust` lets the client in, so the server gets as far as the database.
    let Some((lab, pg)) = started(Needs::Postgres, postgres(PG_TRUST_FOR_CLIENTS)) else {
        return;
    };
    let v = check_url(&lab, "postgres://postgres:s3cr3tpw@SERVER/orders");
    let m = refused_with(&v, &pg, "database_missing");
    assert!(
        m.contains("PostgreSQL has no database \"orders\"")
            && m.contains("\"database \"orders\" does not exist\"")
            && m.contains("(SQLSTATE 3D000)"),
        "{m}"
    );
    assert_eq!(protocol(&v)["error"]["code"], "3D000");
    never_shown(&v, "s3cr3tpw");
    let log = pg.log_tail();
    assert!(log.contains("database \"orders\" does not exist"), "{log}");
    // Without a database in the URL, canreach's own (missing too) is no finding: open.
    let v = check_url(&lab, "postgres://SERVER");
    open_saying(&v, &pg);
}

#[test]
fn mariadb_with_every_connection_taken_says_too_many_connections() {
    let Some((lab, db)) = started(Needs::MariaDb, |lab| {
        services::mariadb(
            &lab.server,
            SERVER_V4,
            "CREATE USER 'app'@'%' IDENTIFIED BY 'x';\n",
            &["--skip-name-resolve", "--max-connections=10"],
        )
    }) else {
        return;
    };
    // 10 is MariaDB's least max_connections, and it keeps one connection more for an
    // administrator: eleven connections, greeted and left waiting, take every slot.
    let _held: Vec<_> = (0..11)
        .map(|_| lab.connect(&lab.client, &format!("{SERVER_V4}:3306")))
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let v = check_url(&lab, "mysql://app:s3cr3tpw@SERVER/");
    let m = refused_with(&v, &db, "too_many_clients");
    assert!(m.contains("\"Too many connections\" (error 1040)"), "{m}");
    assert_eq!(protocol(&v)["error"]["code"], "1040");
    never_shown(&v, "s3cr3tpw");
}

/// Send `commands` (RESP inline lines) to the Redis at SERVER_V4 from the client
/// namespace and read until `replies` lines have come back: those lines.
fn redis_say(lab: &Lab, commands: &[u8], replies: usize) -> Vec<String> {
    use std::io::{BufRead, BufReader, Write};
    let mut s = lab.connect(&lab.client, &format!("{SERVER_V4}:6379"));
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    s.write_all(commands).unwrap();
    let mut lines = BufReader::new(s).lines();
    (0..replies)
        .map(|_| lines.next().unwrap().unwrap())
        .collect()
}

#[test]
fn redis_still_loading_its_data_says_so() {
    let Some((lab, redis)) = started(Needs::Redis, |lab| {
        services::redis(&lab.server, SERVER_V4, &["--protected-mode", "no"])
    }) else {
        return;
    };
    // 500 keys of 1 KiB, saved to its dump file.
    let value = "v".repeat(1024);
    let mut commands: Vec<u8> = (0..500)
        .flat_map(|i| format!("SET key:{i} {value}\r\n").into_bytes())
        .collect();
    commands.extend_from_slice(b"SAVE\r\n");
    let said = redis_say(&lab, &commands, 501);
    assert!(said.iter().all(|l| l == "+OK"), "{:?}", &said[..3]);
    // Started again on that file, loading it slowly (Redis's own test setting: 10 ms a
    // key, 5 s in all), answering clients between keys.
    let redis = services::redis_again(
        redis,
        &lab.server,
        SERVER_V4,
        &[
            "--protected-mode",
            "no",
            "--key-load-delay",
            "10000",
            "--loading-process-events-interval-bytes",
            "1024",
        ],
    );
    let v = check_url(&lab, "redis://SERVER");
    let m = refused_with(&v, &redis, "service_starting");
    assert!(
        m.contains("\"LOADING Redis is loading the dataset in memory\""),
        "{m}"
    );
    assert_eq!(protocol(&v)["error"]["code"], "LOADING");
}

#[test]
fn redis_that_cannot_save_its_data_refuses_in_its_words() {
    // With a save point: Redis refuses writes and PING after a failed save only then
    // (`stop-writes-on-bgsave-error`, on by default).
    let Some((lab, redis)) = started(Needs::Redis, |lab| {
        services::redis(
            &lab.server,
            SERVER_V4,
            &["--protected-mode", "no", "--save", "3600 1"],
        )
    }) else {
        return;
    };
    // Its directory made read-only for it: the next save fails.
    use std::os::unix::fs::PermissionsExt;
    let dir = &redis.dir.0;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o555)).unwrap();
    assert_eq!(
        redis_say(&lab, b"BGSAVE\r\n", 1),
        ["+Background saving started"]
    );
    let start = std::time::Instant::now();
    while !redis_say(&lab, b"PING\r\n", 1)[0].starts_with("-MISCONF") {
        assert!(start.elapsed().as_secs() < 5, "{}", redis.log_tail());
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let v = check_url(&lab, "redis://SERVER");
    let m = refused_with(&v, &redis, "service_error_reply");
    assert!(
        m.contains("\"MISCONF Redis is configured to save RDB snapshots")
            && m.contains("it cannot save its data set to disk"),
        "{m}"
    );
    assert_eq!(protocol(&v)["error"]["code"], "MISCONF");
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn a_wait_on_a_postgres_in_recovery_goes_on_until_it_serves_then_ends_open() {
    use crate::common::InLab;
    use std::process::{Command, Stdio};
    let Some((lab, pg)) = started(Needs::Postgres, |lab| {
        services::postgres_standby(&lab.server, SERVER_V4, PG_PASSWORD_FOR_CLIENTS)
    }) else {
        return;
    };
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &lab.client, env!("CARGO_BIN_EXE_canreach")])
        .args(["--json", "--no-trace", "--wait", "20s", "--timeout", "2s"])
        .arg(format!("postgres://canreach:s3cr3tpw@{SERVER_V4}/"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for k in crate::common::PROXY_VARS {
        cmd.env_remove(k);
    }
    let waiting = cmd.spawn_in_lab().unwrap();
    // Checks meanwhile get 57P03 ("the database system is not accepting connections").
    std::thread::sleep(std::time::Duration::from_millis(1500));
    // Promoted as `pg_ctl promote` does it: a file `promote` in the data directory, then
    // SIGUSR1 to the postmaster. It then ends recovery and serves.
    let promote = pg.dir.path("data").join("promote");
    std::fs::write(&promote, "").unwrap();
    std::os::unix::fs::chown(&promote, Some(65534), Some(65534)).unwrap();
    let pid = pg.proc.0.id().to_string();
    let sent = Command::new("kill").args(["-USR1", &pid]).status().unwrap();
    assert!(sent.success());
    let out = waiting.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{}", pg.log_tail());
    // One change: from the refusal in recovery to open.
    assert_eq!(lines[0]["event"], "change", "{stdout}");
    assert_eq!(lines[0]["from"], "service_error", "{stdout}");
    assert_eq!(lines[0]["to"], "open", "{stdout}");
    let report = lines.last().unwrap();
    assert_eq!(report["verdict"], "open", "{stdout}");
    assert_eq!(report["wait"]["ended"], "open", "{stdout}");
    assert_eq!(protocol(report)["auth_method"], "SCRAM-SHA-256", "{stdout}");
    assert!(report["wait"]["checks"].as_u64().unwrap() >= 2, "{stdout}");
    // The change line names the target with its password masked; stderr neither.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !format!("{stdout}{stderr}").contains("s3cr3tpw"),
        "{stdout}{stderr}"
    );
    assert!(
        lines[0]["target"].as_str().unwrap().contains("canreach:"),
        "{stdout}"
    );
}

#[test]
fn postgres_with_no_role_for_the_urls_user_quotes_the_server() {
    let Some((lab, pg)) = started(Needs::Postgres, postgres(PG_TRUST_FOR_CLIENTS)) else {
        return;
    };
    let v = check_url(&lab, "postgres://app:s3cr3tpw@SERVER/postgres");
    let m = refused_with(&v, &pg, "service_error_reply");
    assert!(
        m.contains("PostgreSQL answered with an error: FATAL \"role \"app\" does not exist\" (SQLSTATE 28000)"),
        "{m}"
    );
    assert_eq!(protocol(&v)["error"]["code"], "28000");
    never_shown(&v, "s3cr3tpw");
}
