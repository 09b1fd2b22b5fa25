//! Test helpers: fixtures, a scripted fake server on loopback, and an allocation meter.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// The bytes of `tests/fixtures/protocols/<name>`, in the test binary.
macro_rules! fixture {
    ($name:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/protocols/",
            $name
        ))
    };
}
pub(crate) use fixture;

/// The bytes of an annotated hex fixture (`#` starts a comment; whitespace is ignored):
/// fixtures built by hand from a protocol's specification, readable field by field.
macro_rules! fixture_hex {
    ($name:literal) => {
        $crate::session::protocols::testing::from_hex(include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/protocols/",
            $name
        )))
    };
}
pub(crate) use fixture_hex;

/// Hex text with `#` comments to bytes. Panics on a bad digit: a broken fixture is a test bug.
pub(crate) fn from_hex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text
        .lines()
        .map(|l| l.split('#').next().unwrap_or(""))
        .flat_map(|l| l.bytes())
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    assert!(digits.len().is_multiple_of(2), "odd number of hex digits");
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}

/// The most bytes held at once by `f`, on this thread (the meter counts only the calling
/// thread's allocations, so tests running beside it do not disturb it).
pub(crate) fn measure_bytes(f: impl FnOnce()) -> u64 {
    allocation_counter::measure(f).bytes_max
}

/// One step of a fake server's script.
#[derive(Debug, Clone)]
pub(crate) enum Act {
    /// Read exactly this many bytes from the client.
    Read(usize),
    /// Send these bytes.
    Send(Vec<u8>),
    Sleep(Duration),
    /// Close (FIN) and stop.
    Close,
}

/// A server on 127.0.0.1 that takes one connection and plays `acts`. Its handle returns every
/// byte the client sent, read until the client closed (or 2 s passed).
pub(crate) async fn fake_server(acts: Vec<Act>) -> (SocketAddr, JoinHandle<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut got = Vec::new();
        for act in acts {
            match act {
                Act::Read(n) => {
                    let mut buf = vec![0u8; n];
                    if s.read_exact(&mut buf).await.is_err() {
                        return got;
                    }
                    got.extend_from_slice(&buf);
                }
                Act::Send(b) => {
                    if s.write_all(&b).await.is_err() {
                        return got;
                    }
                }
                Act::Sleep(d) => tokio::time::sleep(d).await,
                Act::Close => {
                    let _ = s.shutdown().await;
                    rest(&mut s, &mut got).await;
                    return got;
                }
            }
        }
        rest(&mut s, &mut got).await;
        got
    });
    (addr, task)
}

async fn rest(s: &mut tokio::net::TcpStream, got: &mut Vec<u8>) {
    let mut buf = [0u8; 4096];
    while let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf)).await {
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_with_comments() {
        assert_eq!(from_hex("0a 0B # ten, eleven\n  ff"), [10, 11, 255]);
    }

    #[test]
    fn the_meter_sees_this_threads_allocations() {
        let n = measure_bytes(|| {
            let v = vec![0u8; 10_000];
            std::hint::black_box(v);
        });
        assert!(n >= 10_000, "{n}");
        assert!(measure_bytes(|| {}) < 100);
    }
}
