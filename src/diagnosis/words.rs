//! canreach's words for plain values: durations, errno names and texts.

use std::time::Duration;

use crate::escape::escape_bytes;
use crate::facts::ms;

/// "0.3 ms", "12 ms", "1.50 s".
pub(crate) fn fmt_duration(d: Duration) -> String {
    let m = ms(d);
    if m < 10.0 {
        format!("{m:.1} ms")
    } else if m < 1000.0 {
        format!("{m:.0} ms")
    } else {
        format!("{:.2} s", m / 1000.0)
    }
}

/// A duration to a person's precision: whole milliseconds below a second ("7 ms"), else as
/// [`fmt_duration`]. For how long something was watched, not for a measured time.
pub(crate) fn fmt_rounded(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", (ms(d)).round())
    } else {
        fmt_duration(d)
    }
}

/// A duration as a person gives it on the command line: `3s`, `500ms`, `5m`, `1h`.
pub(crate) fn fmt_given(d: Duration) -> String {
    let ms = d.as_millis();
    match ms {
        _ if !ms.is_multiple_of(1000) => format!("{ms}ms"),
        _ if ms >= 3_600_000 && ms.is_multiple_of(3_600_000) => format!("{}h", ms / 3_600_000),
        _ if ms >= 60_000 && ms.is_multiple_of(60_000) => format!("{}m", ms / 60_000),
        _ => format!("{}s", ms / 1000),
    }
}

/// The symbolic name of an errno, as people search for it.
pub(crate) fn errno_name(e: i32) -> &'static str {
    match e {
        libc::ECONNREFUSED => "ECONNREFUSED",
        libc::ECONNRESET => "ECONNRESET",
        libc::EHOSTUNREACH => "EHOSTUNREACH",
        libc::ENETUNREACH => "ENETUNREACH",
        libc::ETIMEDOUT => "ETIMEDOUT",
        libc::EACCES => "EACCES",
        libc::EPERM => "EPERM",
        libc::EADDRNOTAVAIL => "EADDRNOTAVAIL",
        libc::EAFNOSUPPORT => "EAFNOSUPPORT",
        libc::EMFILE => "EMFILE",
        libc::ENFILE => "ENFILE",
        libc::ENOBUFS => "ENOBUFS",
        libc::ENOMEM => "ENOMEM",
        libc::EINVAL => "EINVAL",
        _ => "error",
    }
}

/// The system's text for an errno ("Connection refused").
pub(crate) fn errno_text(e: i32) -> String {
    let s = std::io::Error::from_raw_os_error(e).to_string();
    // std appends " (os error N)"; people know the text.
    s.split(" (os error").next().unwrap_or(&s).to_string()
}

/// At most `n` characters of outside text (escaped when rendered).
pub(crate) fn bounded(text: &str, n: usize) -> String {
    let mut out: String = text.chars().take(n).collect();
    if text.chars().count() > n {
        out.push('…');
    }
    out
}

/// The first line of what a peer sent, at most 80 bytes, escaped.
pub(crate) fn first_line(bytes: &[u8]) -> String {
    let line = bytes
        .split(|b| *b == b'\n')
        .find(|l| !l.iter().all(u8::is_ascii_whitespace))
        .unwrap_or(&[]);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    escape_bytes(&line[..line.len().min(80)])
}

/// An I/O error on an HTTP exchange, from the one errno table.
pub(crate) fn io_words(errno: Option<i32>) -> String {
    match errno {
        // An errno outside the table has no name people search for: its text alone.
        Some(e) if errno_name(e) == "error" => errno_text(e),
        Some(e) => format!("{} ({})", errno_text(e), errno_name(e)),
        None => "an I/O error without an error number".into(),
    }
}

#[cfg(test)]
mod given_tests {
    #[test]
    fn durations_as_typed() {
        use std::time::Duration;
        assert_eq!(super::fmt_given(Duration::from_millis(1500)), "1500ms");
        assert_eq!(super::fmt_given(Duration::from_secs(3)), "3s");
        assert_eq!(super::fmt_given(Duration::from_secs(300)), "5m");
        assert_eq!(super::fmt_given(Duration::from_secs(7200)), "2h");
        assert_eq!(super::fmt_given(Duration::from_secs(90)), "90s");
    }
}
