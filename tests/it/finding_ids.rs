//! Every finding id has a test that asserts it: each id of `FindingId::ALL` is named (as its
//! quoted id, or as `FindingId::Variant`) inside a test function that asserts, in the
//! integration tests or in the unit tests under src/, and not only where that test asserts
//! its absence (`!ids.contains(…)`, `assert_ne!`). A new id without such a test fails here.

use std::path::{Path, PathBuf};

use canreach::diagnosis::FindingId;

/// Every `.rs` file under `dir`, recursively.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The length of the string, raw string or character literal that starts at `s[0]`, or
/// `None` when none does (a lifetime `'a` is not a literal).
fn literal_len(s: &[u8]) -> Option<usize> {
    match s[0] {
        b'"' => {
            let mut i = 1;
            while i < s.len() {
                match s[i] {
                    b'\\' => i += 2,
                    b'"' => return Some(i + 1),
                    _ => i += 1,
                }
            }
            Some(s.len())
        }
        b'r' if s.get(1).is_some_and(|c| *c == b'"' || *c == b'#') => {
            let hashes = s[1..].iter().take_while(|c| **c == b'#').count();
            if s.get(1 + hashes) != Some(&b'"') {
                return None;
            }
            let close: Vec<u8> = std::iter::once(b'"')
                .chain(std::iter::repeat_n(b'#', hashes))
                .collect();
            let body = 2 + hashes;
            s[body..]
                .windows(close.len())
                .position(|w| w == close.as_slice())
                .map(|p| body + p + close.len())
        }
        b'\'' => {
            if s.get(1) == Some(&b'\\') {
                s[2..].iter().position(|c| *c == b'\'').map(|p| p + 3)
            } else {
                // One character (up to 4 bytes of UTF-8), then the closing quote.
                (2..=5)
                    .find(|&n| s.get(n) == Some(&b'\''))
                    .filter(|&n| {
                        std::str::from_utf8(&s[1..n]).is_ok_and(|c| c.chars().count() == 1)
                    })
                    .map(|n| n + 1)
            }
        }
        _ => None,
    }
}

/// `text` with every comment replaced by spaces (line breaks kept), literals untouched.
fn without_comments(text: &str) -> String {
    let s = text.as_bytes();
    let mut out = s.to_vec();
    let mut i = 0;
    while i < s.len() {
        let prev_ident = i > 0 && (s[i - 1].is_ascii_alphanumeric() || s[i - 1] == b'_');
        if s[i..].starts_with(b"//") {
            while i < s.len() && s[i] != b'\n' {
                out[i] = b' ';
                i += 1;
            }
        } else if s[i..].starts_with(b"/*") {
            let mut depth = 0;
            while i < s.len() {
                if s[i..].starts_with(b"/*") {
                    depth += 1;
                    out[i] = b' ';
                    out[i + 1] = b' ';
                    i += 2;
                } else if s[i..].starts_with(b"*/") {
                    depth -= 1;
                    out[i] = b' ';
                    out[i + 1] = b' ';
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if s[i] != b'\n' {
                        out[i] = b' ';
                    }
                    i += 1;
                }
            }
        } else if let Some(n) = (!prev_ident).then(|| literal_len(&s[i..])).flatten() {
            i += n;
        } else {
            i += 1;
        }
    }
    // Only ASCII bytes were replaced, by ASCII spaces.
    String::from_utf8(out).unwrap()
}

/// The test functions of a file (comments removed): each one's name and body.
fn test_functions(text: &str) -> Vec<(String, String)> {
    let s = text.as_bytes();
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = ["#[test]", "#[tokio::test"]
        .iter()
        .filter_map(|a| text[from..].find(a).map(|p| from + p))
        .min()
    {
        from = at + 2;
        let Some(fn_at) = text[at..].find("fn ").map(|p| at + p) else {
            break;
        };
        let name: String = text[fn_at + 3..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let Some(open) = text[fn_at..].find('{').map(|p| fn_at + p) else {
            break;
        };
        let mut depth = 0;
        let mut i = open;
        while i < s.len() {
            let prev_ident = s[i - 1].is_ascii_alphanumeric() || s[i - 1] == b'_';
            if let Some(n) = (!prev_ident).then(|| literal_len(&s[i..])).flatten() {
                i += n;
                continue;
            }
            match s[i] {
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                _ => {}
            }
            i += 1;
        }
        found.push((name, text[open..=i.min(s.len() - 1)].to_string()));
        from = i.max(from);
    }
    found
}

/// Does `body` name `needle` where it is asserted present: not on a line that asserts its
/// absence (a negated `contains`, `assert_ne!`)?
fn named_positively(body: &str, needle: &str) -> bool {
    body.match_indices(needle).any(|(at, _)| {
        let line_start = body[..at].rfind('\n').map_or(0, |p| p + 1);
        let line_end = body[at..].find('\n').map_or(body.len(), |p| at + p);
        let before = &body[line_start..at];
        // A `!` that negates (not a macro's, not `!=`) with a `.contains(` after it.
        let b = before.as_bytes();
        let negated = (0..b.len()).any(|i| {
            b[i] == b'!'
                && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_'))
                && b.get(i + 1) != Some(&b'=')
                && before[i..].contains(".contains(")
        });
        !negated && !body[line_start..line_end].contains("assert_ne!")
    })
}

#[test]
fn every_finding_id_is_asserted_by_a_test() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    rust_files(&root.join("tests"), &mut files);
    let this = Path::new(file!()).file_name().unwrap();
    let tests: Vec<(String, String)> = files
        .iter()
        // This file names every id, asserting none.
        .filter(|p| p.file_name() != Some(this))
        .flat_map(|p| {
            let text = std::fs::read_to_string(p).unwrap();
            test_functions(&without_comments(&text))
                .into_iter()
                .map(move |(name, body)| (format!("{}::{name}", p.display()), body))
        })
        .filter(|(_, body)| body.contains("assert"))
        .collect();
    assert!(
        tests.len() > 300,
        "only {} test functions found",
        tests.len()
    );
    let missing: Vec<&str> = FindingId::ALL
        .iter()
        .filter(|id| {
            let quoted = format!("\"{}\"", id.as_str());
            let variant = format!("FindingId::{id:?}");
            !tests.iter().any(|(_, body)| {
                named_positively(body, &quoted) || named_positively(body, &variant)
            })
        })
        .map(|id| id.as_str())
        .collect();
    assert!(
        missing.is_empty(),
        "finding ids no test asserts (name each in a test that produces it): {missing:?}"
    );
}

#[test]
fn the_scan_finds_test_bodies_and_skips_comments_and_negations() {
    let src = r##"
        // #[test] fn commented() { "x" }
        #[test]
        fn one() {
            let s = "}{"; let c = '}'; let r = r#"{"#;
            assert!(ids(&v).contains(&"port_closed".into()));
        }
        #[tokio::test(start_paused = true)]
        async fn two<'a>() {
            assert!(!ids(&v).contains(&"silent_drop".to_string()));
        }
    "##;
    let fns = test_functions(&without_comments(src));
    let names: Vec<&str> = fns.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["one", "two"]);
    assert!(fns[0].1.trim_end().ends_with('}') && fns[0].1.contains("port_closed"));
    assert!(named_positively(&fns[0].1, "\"port_closed\""));
    assert!(!named_positively(&fns[1].1, "\"silent_drop\""));
}
