//! Which HTTP statuses count as a working answer: `--expect-status`.
//!
//! By default a final answer of 2xx or 3xx is one (a redirect is the server working; canreach
//! does not follow it), and 4xx or 5xx is not: the application that asked for the URL does not
//! get what it asked for. `--expect-status` replaces that set with a list of codes, classes
//! and ranges, the way Prometheus's blackbox exporter lists `valid_status_codes`:
//! `404`, `2xx`, `200-299`, or several of them separated by commas (`200,301-302,4xx`).

use std::fmt;

/// The lowest and highest status a set can hold: the three-digit codes RFC 9110 defines.
const LOWEST: u16 = 100;
const HIGHEST: u16 = 599;

/// A set of HTTP status codes (100–599): a bit per code, so it is `Copy` and costs 64 bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct StatusSet([u64; 8]);

/// Why an `--expect-status` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum StatusSetError {
    #[error("no status code given")]
    Empty,
    #[error("`{0}` is not a status code, a class (4xx) or a range (200-299)")]
    NotAStatus(String),
    #[error("{0} is not an HTTP status (100 to 599)")]
    OutOfRange(u16),
    #[error("the range `{0}` ends before it starts")]
    Backwards(String),
}

impl StatusSet {
    /// No code at all.
    pub(crate) const fn empty() -> StatusSet {
        StatusSet([0; 8])
    }

    /// The default: every 2xx and 3xx.
    pub(crate) fn working() -> StatusSet {
        let mut s = StatusSet::empty();
        s.insert_range(200, 399);
        s
    }

    /// The codes given (a blackbox module's `valid_status_codes`), or every 2xx when none is:
    /// blackbox_exporter's default. Codes outside 100–599 are left out.
    pub(crate) fn valid_codes(codes: &[u16]) -> StatusSet {
        let mut s = StatusSet::empty();
        if codes.is_empty() {
            s.insert_range(200, 299);
        }
        for &c in codes.iter().filter(|c| (LOWEST..=HIGHEST).contains(c)) {
            s.insert_range(c, c);
        }
        s
    }

    fn insert_range(&mut self, from: u16, to: u16) {
        for code in from..=to {
            let i = usize::from(code - LOWEST);
            self.0[i / 64] |= 1 << (i % 64);
        }
    }

    /// Whether `code` is in the set (a code outside 100–599 never is).
    pub(crate) fn contains(&self, code: u16) -> bool {
        if !(LOWEST..=HIGHEST).contains(&code) {
            return false;
        }
        let i = usize::from(code - LOWEST);
        self.0[i / 64] & (1 << (i % 64)) != 0
    }

    /// Parse `404`, `2xx`, `200-299`, or a comma-separated list of them.
    pub(crate) fn parse(text: &str) -> Result<StatusSet, StatusSetError> {
        let mut set = StatusSet::empty();
        let code = |t: &str| -> Result<u16, StatusSetError> {
            let t = t.trim();
            if t.len() != 3 || !t.bytes().all(|b| b.is_ascii_digit()) {
                return Err(StatusSetError::NotAStatus(t.chars().take(40).collect()));
            }
            let n: u16 = t.parse().unwrap_or(0);
            if (LOWEST..=HIGHEST).contains(&n) {
                Ok(n)
            } else {
                Err(StatusSetError::OutOfRange(n))
            }
        };
        for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let lower = item.to_ascii_lowercase();
            if let Some(class) = lower.strip_suffix("xx") {
                if class.len() != 1 {
                    return Err(StatusSetError::NotAStatus(item.chars().take(40).collect()));
                }
                let n = code(&format!("{class}00"))?;
                set.insert_range(n, n + 99);
            } else if let Some((from, to)) = item.split_once('-') {
                let (from, to) = (code(from)?, code(to)?);
                if to < from {
                    return Err(StatusSetError::Backwards(item.chars().take(40).collect()));
                }
                set.insert_range(from, to);
            } else {
                let n = code(item)?;
                set.insert_range(n, n);
            }
        }
        if set == StatusSet::empty() {
            return Err(StatusSetError::Empty);
        }
        Ok(set)
    }
}

impl Default for StatusSet {
    fn default() -> Self {
        StatusSet::working()
    }
}

/// The set as people write it: whole classes as `2xx`, runs as `301-308`, single codes as
/// they are, comma-separated (`2xx, 404`).
impl fmt::Display for StatusSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = Vec::new();
        let mut code = LOWEST;
        while code <= HIGHEST {
            if !self.contains(code) {
                code += 1;
                continue;
            }
            let mut end = code;
            while end < HIGHEST && self.contains(end + 1) {
                end += 1;
            }
            // Whole classes inside the run, as `2xx`; the rest as ranges.
            let mut c = code;
            while c <= end {
                if c.is_multiple_of(100) && c + 99 <= end {
                    parts.push(format!("{}xx", c / 100));
                    c += 100;
                } else {
                    let stop = end.min(c - c % 100 + 99);
                    parts.push(if stop == c {
                        c.to_string()
                    } else {
                        format!("{c}-{stop}")
                    });
                    c = stop + 1;
                }
            }
            code = end + 1;
        }
        f.write_str(&parts.join(", "))
    }
}

impl fmt::Debug for StatusSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StatusSet({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let s = StatusSet::parse("404").unwrap();
        assert!(s.contains(404) && !s.contains(200));
        let s = StatusSet::parse("2xx, 404").unwrap();
        assert!(s.contains(200) && s.contains(299) && s.contains(404) && !s.contains(300));
        let s = StatusSet::parse("200-204,3XX").unwrap();
        assert!(s.contains(204) && !s.contains(205) && s.contains(302));
        assert_eq!(s.to_string(), "200-204, 3xx");
        assert_eq!(StatusSet::working().to_string(), "2xx, 3xx");
        assert_eq!(StatusSet::parse("404").unwrap().to_string(), "404");
        assert_eq!(
            StatusSet::parse("150-250").unwrap().to_string(),
            "150-199, 200-250"
        );
        assert_eq!(
            StatusSet::parse("150-399").unwrap().to_string(),
            "150-199, 2xx, 3xx"
        );
    }

    #[test]
    fn refusals() {
        assert_eq!(StatusSet::parse(""), Err(StatusSetError::Empty));
        assert_eq!(StatusSet::parse(" , "), Err(StatusSetError::Empty));
        assert_eq!(
            StatusSet::parse("600"),
            Err(StatusSetError::OutOfRange(600))
        );
        assert_eq!(
            StatusSet::parse("6xx"),
            Err(StatusSetError::OutOfRange(600))
        );
        assert_eq!(StatusSet::parse("099"), Err(StatusSetError::OutOfRange(99)));
        assert!(matches!(
            StatusSet::parse("ok"),
            Err(StatusSetError::NotAStatus(_))
        ));
        assert!(matches!(
            StatusSet::parse("2000"),
            Err(StatusSetError::NotAStatus(_))
        ));
        assert!(matches!(
            StatusSet::parse("299-200"),
            Err(StatusSetError::Backwards(_))
        ));
        assert!(!StatusSet::working().contains(65535));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(text in "\\PC{0,40}") {
            let _ = StatusSet::parse(&text);
        }
    }
}
