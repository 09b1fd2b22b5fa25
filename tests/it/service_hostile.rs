//! Services that misbehave, as fake servers on loopback: one that accepts and never answers,
//! one that sends a byte a second, one whose words are full of characters a terminal acts
//! on, one that asks for the password in clear. The check ends within its deadline, shows
//! every word escaped in every format, and never sends or prints the URL's password.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{self, Run, ids, run_in};
use crate::hostile_cli::{HOSTILE, raw_characters};

/// The protocols a check can be asked to speak (`--protocol`), with what their server
/// sends first when it trickles: the start of a valid answer that asks for more.
const TRICKLED: [(&str, &[u8]); 7] = [
    // `N` to SSLRequest, then an ErrorResponse of 4 KiB.
    ("postgres", b"NE\0\0\x10\0SFATAL\0"),
    ("redis", b"-ERR slow\r\n"),
    // A greeting packet of 256 bytes.
    ("mysql", b"\0\x01\0\0\x0a5.5.5-10.11"),
    // An OP_MSG reply of 4 KiB.
    ("mongodb", b"\0\x10\0\0\0\0\0\0\0\0\0\0\xdd\x07\0\0"),
    // A response of 4 KiB.
    ("kafka", b"\0\0\x10\0\0\0\0\x01"),
    ("amqp", b"\x01\0\0\0\0\x10\0\0\x0a\0\x0a"),
    ("smtp", b"220-mx.test slow\r\n220-"),
];

/// A server that reads what comes and answers with `answer`, one byte a second (`None`:
/// never a byte).
fn slow_server(answer: Option<&'static [u8]>) -> std::net::SocketAddr {
    common::serve_each(move |mut s| async move {
        let (mut r, mut w) = s.split();
        let drain = async {
            let mut buf = [0u8; 1024];
            while r.read(&mut buf).await.is_ok_and(|n| n > 0) {}
            std::future::pending::<()>().await
        };
        let trickle = async {
            for b in answer.unwrap_or_default() {
                if w.write_all(&[*b]).await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            std::future::pending::<()>().await
        };
        tokio::join!(drain, trickle);
    })
}

#[test]
fn a_service_that_never_answers_or_trickles_ends_within_the_deadline() {
    // Every protocol, silent and trickling, all at once (each waits out its deadline).
    let cases: Vec<_> = TRICKLED
        .iter()
        .flat_map(|(protocol, answer)| [(*protocol, None), (*protocol, Some(*answer))])
        .collect();
    std::thread::scope(|scope| {
        let runs: Vec<_> = cases
            .iter()
            .map(|(protocol, answer)| {
                let port = slow_server(*answer).port().to_string();
                scope.spawn(move || {
                    let args = ["--json", "--no-local", "--timeout", "2s", "--protocol"];
                    let mut args = args.to_vec();
                    args.extend([*protocol, "127.0.0.1", &port]);
                    run_in(None, &args)
                })
            })
            .collect();
        for ((protocol, answer), run) in cases.iter().zip(runs) {
            let r = run.join().unwrap();
            let v = r.json();
            let what = format!(
                "{protocol}, {}",
                if answer.is_some() {
                    "trickled"
                } else {
                    "silent"
                }
            );
            // The deadline, and the process's own start and end.
            assert!(r.took < Duration::from_millis(2800), "{what}: {:?}", r.took);
            assert_ne!(v["verdict"], "open", "{what}: {}", r.stdout);
            assert_eq!(
                v["probes"][0]["session"]["protocol"]["name"], *protocol,
                "{what}"
            );
        }
    });
}

/// Everything the clients sent to a fake server.
type Heard = Arc<Mutex<Vec<u8>>>;

/// Read `n` bytes (or what comes before the end) into `heard`.
async fn hear(s: &mut tokio::net::TcpStream, n: usize, heard: &Heard) -> Vec<u8> {
    let mut got = vec![0u8; n];
    let mut have = 0;
    while have < n {
        match s.read(&mut got[have..]).await {
            Ok(0) | Err(_) => break,
            Ok(k) => have += k,
        }
    }
    got.truncate(have);
    heard.lock().unwrap().extend_from_slice(&got);
    got
}

/// Read until the client closes, into `heard`.
async fn hear_all(s: &mut tokio::net::TcpStream, heard: &Heard) {
    while !hear(s, 1024, heard).await.is_empty() {}
}

/// A PostgreSQL server: `N` to SSLRequest, then `answer` to the startup message.
fn fake_postgres(answer: Vec<u8>, heard: Heard) -> std::net::SocketAddr {
    common::serve_each(move |mut s| {
        let (answer, heard) = (answer.clone(), heard.clone());
        async move {
            if hear(&mut s, 8, &heard).await.len() < 8 {
                return;
            }
            let _ = s.write_all(b"N").await;
            let len = hear(&mut s, 4, &heard).await;
            let Ok(len) = <[u8; 4]>::try_from(len.as_slice()) else {
                return;
            };
            hear(&mut s, u32::from_be_bytes(len) as usize - 4, &heard).await;
            let _ = s.write_all(&answer).await;
            hear_all(&mut s, &heard).await;
        }
    })
}

/// A PostgreSQL message: its type, then its length and body.
fn pg_message(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![kind];
    m.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
    m.extend_from_slice(body);
    m
}

/// A Redis server: `answer` to whatever the client sends first.
fn fake_redis(answer: Vec<u8>, heard: Heard) -> std::net::SocketAddr {
    common::serve_each(move |mut s| {
        let (answer, heard) = (answer.clone(), heard.clone());
        async move {
            if !hear(&mut s, 6, &heard).await.is_empty() {
                let _ = s.write_all(&answer).await;
            }
            hear_all(&mut s, &heard).await;
        }
    })
}

/// A MySQL server that speaks first with `first` (a greeting or an ERR packet), then answers
/// a login with `ERR 1045`.
fn fake_mysql(first: Vec<u8>, heard: Heard) -> std::net::SocketAddr {
    common::serve_each(move |mut s| {
        let (first, heard) = (first.clone(), heard.clone());
        async move {
            let _ = s.write_all(&first).await;
            let head = hear(&mut s, 4, &heard).await;
            if head.len() == 4 {
                let len = u32::from_le_bytes([head[0], head[1], head[2], 0]) as usize;
                hear(&mut s, len, &heard).await;
                let _ = s.write_all(&mysql_err(2, 1045, "Access denied")).await;
            }
            hear_all(&mut s, &heard).await;
        }
    })
}

/// A MySQL ERR packet: sequence number `seq`, error `code`, SQL state HY000, `message`.
fn mysql_err(seq: u8, code: u16, message: &str) -> Vec<u8> {
    let mut p = vec![0xff];
    p.extend_from_slice(&code.to_le_bytes());
    p.extend_from_slice(b"#HY000");
    p.extend_from_slice(message.as_bytes());
    let mut packet = (p.len() as u32).to_le_bytes()[..3].to_vec();
    packet.push(seq);
    packet.extend(p);
    packet
}

/// A captured MariaDB 10.11 greeting.
const MYSQL_GREETING: &[u8] = include_bytes!("../fixtures/protocols/mysql/greeting.bin");

/// Every format a report is written in.
const FORMATS: [&[&str]; 4] = [
    &["--format", "text"],
    &["--json"],
    &["--format", "markdown"],
    &["--format", "nagios"],
];

/// A fake PostgreSQL, Redis and MySQL server, each answering with an error of its protocol
/// whose text is `words` (PostgreSQL's message, detail and hint).
fn erring_servers(words: &str) -> [(&'static str, std::net::SocketAddr); 3] {
    let heard = Heard::default();
    let mut pg_error = b"SFATAL\0VFATAL\0CXX000\0".to_vec();
    pg_error.extend_from_slice(format!("M{words}\0D{words}\0H{words}\0\0").as_bytes());
    let redis_error = format!("-ERR {words}\r\n").into_bytes();
    [
        (
            "postgres",
            fake_postgres(pg_message(b'E', &pg_error), heard.clone()),
        ),
        ("redis", fake_redis(redis_error, heard.clone())),
        ("mysql", fake_mysql(mysql_err(0, 1043, words), heard)),
    ]
}

/// canreach told to speak `protocol` to `addr`, in each of the formats: the format and the
/// run.
fn in_every_format(protocol: &str, addr: std::net::SocketAddr) -> Vec<(&'static str, Run)> {
    let port = addr.port().to_string();
    FORMATS
        .iter()
        .map(|format| {
            let mut args = format.to_vec();
            args.extend(["--no-local", "--timeout", "3s", "--protocol", protocol]);
            args.extend(["127.0.0.1", &port]);
            (format[format.len() - 1], run_in(None, &args))
        })
        .collect()
}

#[test]
fn a_services_hostile_words_are_escaped_in_every_format() {
    for (protocol, addr) in erring_servers(&format!("failure {HOSTILE}")) {
        for (format, r) in in_every_format(protocol, addr) {
            let all = format!("{}{}", r.stdout, r.stderr);
            let what = format!("{protocol} in {format}");
            assert!(all.contains("evil"), "{what}: the words are shown:\n{all}");
            assert!(
                raw_characters(&all).is_empty(),
                "{what}: raw {:?} in\n{all}",
                raw_characters(&all)
            );
            if format == "--json" {
                let v = r.json();
                assert_eq!(v["verdict"], "service_error", "{}", r.stdout);
                assert_eq!(ids(&v), ["service_error_reply"], "{}", r.stdout);
                let m = v["findings"][0]["message"].as_str().unwrap();
                assert!(m.contains("evil\\u{202e}gnp.exe"), "{m}");
            }
        }
    }
}

#[test]
fn a_services_long_words_are_bounded_in_every_format() {
    // Within each protocol's largest message (PostgreSQL's 8 KiB, a Redis line's 4 KiB),
    // longer than any finding quotes.
    for (protocol, addr) in erring_servers(&"x".repeat(2000)) {
        for (format, r) in in_every_format(protocol, addr) {
            // Its words at most a few hundred characters, wherever they are written.
            assert!(
                r.stdout.contains("xxxx"),
                "{protocol} in {format}: {}",
                r.stdout
            );
            assert!(
                !r.stdout.contains(&"x".repeat(600)),
                "{protocol} in {format}: {} bytes:\n{}",
                r.stdout.len(),
                r.stdout
            );
        }
    }
}

#[test]
fn a_url_password_is_never_sent_nor_shown() {
    // Servers that ask for it: PostgreSQL for a password in clear, Redis for AUTH, MySQL
    // through its greeting.
    let heard = Heard::default();
    let cleartext = pg_message(b'R', &3u32.to_be_bytes());
    let targets = [
        format!("postgres://app:s3cr3tpw@127.0.0.1:{}/orders", {
            fake_postgres(cleartext, heard.clone()).port()
        }),
        format!("redis://app:s3cr3tpw@127.0.0.1:{}/0", {
            fake_redis(
                b"-NOAUTH Authentication required.\r\n".to_vec(),
                heard.clone(),
            )
            .port()
        }),
        format!("mysql://app:s3cr3tpw@127.0.0.1:{}/orders", {
            fake_mysql(MYSQL_GREETING.to_vec(), heard.clone()).port()
        }),
    ];
    for url in &targets {
        for format in FORMATS {
            let mut args = format.to_vec();
            args.extend(["--no-local", "--timeout", "3s", url]);
            let r = run_in(None, &args);
            let all = format!("{}{}", r.stdout, r.stderr);
            assert!(
                !all.contains("s3cr3tpw"),
                "{args:?}: the password in\n{all}"
            );
            if format[0] == "--json" {
                let v = r.json();
                assert_eq!(v["verdict"], "open", "{url}: {}", r.stdout);
            }
        }
    }
    let heard = heard.lock().unwrap();
    assert!(!heard.is_empty());
    assert!(
        !heard.windows(8).any(|w| w == b"s3cr3tpw"),
        "the password was sent: {}",
        String::from_utf8_lossy(&heard)
    );
    // The servers heard the requests: the URL's user, without its password.
    assert!(heard.windows(4).any(|w| w == b"app\0"));
}
