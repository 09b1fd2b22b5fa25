//! Making untrusted text safe to print on a terminal.
//!
//! Much of what canreach reports comes from others: the argument typed (or pasted) by the user,
//! names in DNS answers, lines of /etc/hosts, process names and command lines, nft rule text.
//! Any of them may carry an ESC sequence (which can recolour, move the cursor, retitle the
//! window or hide text), a carriage return (which overwrites what was printed before), or a
//! Unicode bidi override that makes `exe.txt` read as `txt.exe`. Renderers pass such text
//! through [`escape`] at print time; stages keep the raw value so diagnosis compares the truth.
//!
//! What is escaped, by [`needs_escape`]:
//! * C0 controls (U+0000–U+001F — TAB, CR and LF included: a report line is one line), DEL
//!   (U+007F) as `\x1b`-style escapes;
//! * C1 controls (U+0080–U+009F: U+009B is a one-character CSI on some terminals),
//! * bidi embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069, U+061C),
//! * zero-width and invisible format characters that can spoof (U+200B–U+200F, U+2060–U+2065,
//!   U+206A–U+206F, U+180E, U+FEFF) and the line/paragraph separators (U+2028, U+2029),
//!
//! all as `\u{202e}`-style escapes. A plain space is kept. A backslash is kept as is: the
//! output is for people, and a typed `\x1b` printed literally misleads no terminal.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Does `c` have to be escaped before it reaches a terminal?
pub fn needs_escape(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{1f}'
        | '\u{7f}'..='\u{9f}'
        | '\u{61c}'
        | '\u{180e}'
        | '\u{200b}'..='\u{200f}'
        | '\u{2028}'..='\u{202e}'
        | '\u{2060}'..='\u{206f}'
        | '\u{feff}')
}

/// `s` with every character of [`needs_escape`] written as an escape: `\x1b` for C0 and DEL,
/// `\u{202e}` for the others. Borrowed when there is nothing to escape (the usual case).
pub fn escape(s: &str) -> Cow<'_, str> {
    let Some(first) = s.find(needs_escape) else {
        return Cow::Borrowed(s);
    };
    let mut out = String::with_capacity(s.len() + 8);
    out.push_str(&s[..first]);
    for c in s[first..].chars() {
        push_escaped(&mut out, c);
    }
    Cow::Owned(out)
}

/// One line for stderr (or any line that repeats what the user or the machine gave):
/// secrets masked ([`crate::secrets::mask`]), then every character [`needs_escape`] catches
/// escaped, so the line is one line and cannot be overwritten, recoloured or reordered.
pub fn line(s: &str) -> String {
    escape(&crate::secrets::mask(s)).into_owned()
}

/// [`escape`] for an owned string: no copy when there is nothing to escape. Escaping twice
/// changes nothing (the output holds no character [`needs_escape`] catches, and a backslash is
/// kept), so text may be escaped where it is made and again where it is printed.
pub(crate) fn escape_owned(s: String) -> String {
    match escape(&s) {
        Cow::Borrowed(_) => s,
        Cow::Owned(e) => e,
    }
}

/// JSON text with every character [`needs_escape`] catches that serde_json writes raw (DEL,
/// C1 controls, bidi and invisible characters) written as a `\uXXXX` escape. The value a JSON
/// reader gets is unchanged; the bytes on a terminal (`canreach --json | less`, a CI log) hold
/// no such character. serde_json escapes every C0 control inside strings itself, so the C0
/// characters left (newlines, indentation) are the document's own whitespace and are kept;
/// every other such character is inside a string, where `\uXXXX` is valid.
pub(crate) fn json_text(s: &str) -> Cow<'_, str> {
    let raw = |c: char| c >= '\u{7f}' && needs_escape(c);
    let Some(first) = s.find(raw) else {
        return Cow::Borrowed(s);
    };
    let mut out = String::with_capacity(s.len() + 12);
    out.push_str(&s[..first]);
    for c in s[first..].chars() {
        if raw(c) {
            // Every such character is in the Basic Multilingual Plane: one escape each.
            let _ = write!(out, "\\u{:04x}", c as u32);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn push_escaped(out: &mut String, c: char) {
    if !needs_escape(c) {
        out.push(c);
    } else if (c as u32) < 0x80 {
        // Writing to a String cannot fail.
        let _ = write!(out, "\\x{:02x}", c as u32);
    } else {
        let _ = write!(out, "\\u{{{:x}}}", c as u32);
    }
}

/// Raw bytes (a file line, `/proc/PID/cmdline`) for display: valid UTF-8 runs are
/// [`escape`]d, each byte that is not UTF-8 is written `\xNN`.
pub(crate) fn escape_bytes(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len());
    for chunk in b.utf8_chunks() {
        for c in chunk.valid().chars() {
            push_escaped(&mut out, c);
        }
        for byte in chunk.invalid() {
            let _ = write!(out, "\\x{byte:02x}");
        }
    }
    out
}

/// `s` as one word for a POSIX shell, for advice the user will paste (`sudo nft delete rule
/// inet TABLE …`, `sudo canreach TARGET`): unchanged when it is made only of characters no
/// shell treats specially (`A-Z a-z 0-9 _ . / : @ % + = , -`, not starting with `-`), else in
/// single quotes (a `'` inside written `'\''`). Names from nft or DNS are not constrained to
/// identifiers: a table can be named `x;$(id)` through `nft -j -f`.
///
/// Apply [`escape`] to the result when printing it; control characters inside the quotes then
/// show as `\x1b` (a pasted command then names nothing, rather than something else).
pub(crate) fn shell_word(s: &str) -> Cow<'_, str> {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_./:@%+=,-".contains(c);
    if !s.is_empty() && !s.starts_with('-') && s.chars().all(plain) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(format!("'{}'", s.replace('\'', "'\\''")))
}

/// A DNS name for display: always the ASCII form (`xn--…` for internationalised labels), so
/// what is shown is what was asked for, with the Unicode form appended in parentheses only when
/// it is safe to show: `xn--bcher-kva.example (bücher.example)`.
///
/// The Unicode form is safe when it decodes without error, contains nothing [`needs_escape`]
/// catches, and no label mixes scripts that have look-alike letters — Latin, Greek and
/// Cyrillic (`pаypal` with a Cyrillic `а`). A label wholly in one of them (`пример`), or in
/// any other script, with digits and `-`, is shown. This is a simple rule, not UTS #39: the
/// ASCII form stays first, so a person comparing names compares the unambiguous one.
///
/// An ASCII name is returned as is (case kept), escaped if it carries control characters; a
/// name that is not a valid IDN is returned escaped.
pub(crate) fn display_name(name: &str) -> String {
    if name.is_ascii() && !name.to_ascii_lowercase().contains("xn--") {
        return escape(name).into_owned();
    }
    let Ok(ascii) = idna::domain_to_ascii(name) else {
        return escape(name).into_owned();
    };
    if name.chars().any(needs_escape) {
        // The input carried something idna let through (or mapped away): show only ASCII.
        return escape(&ascii).into_owned();
    }
    let (unicode, result) = idna::domain_to_unicode(&ascii);
    if result.is_err() || unicode.eq_ignore_ascii_case(&ascii) || !unicode_is_safe(&unicode) {
        return ascii;
    }
    format!("{ascii} ({unicode})")
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Script {
    Latin,
    Greek,
    Cyrillic,
    Other,
}

/// The script of a letter, among those that matter for look-alikes; `None` for digits, `-`,
/// `.` and other characters common to every script.
fn script(c: char) -> Option<Script> {
    match c {
        'a'..='z' | 'A'..='Z' => Some(Script::Latin),
        '0'..='9' | '-' | '.' | '_' => None,
        '\u{c0}'..='\u{24f}' | '\u{1e00}'..='\u{1eff}' | '\u{2c60}'..='\u{2c7f}' => {
            Some(Script::Latin)
        }
        '\u{370}'..='\u{3ff}' | '\u{1f00}'..='\u{1fff}' => Some(Script::Greek),
        '\u{400}'..='\u{52f}' | '\u{1c80}'..='\u{1c8f}' | '\u{2de0}'..='\u{2dff}' => {
            Some(Script::Cyrillic)
        }
        '\u{a640}'..='\u{a69f}' => Some(Script::Cyrillic),
        _ => Some(Script::Other),
    }
}

fn unicode_is_safe(unicode: &str) -> bool {
    if unicode.chars().any(|c| needs_escape(c) || c.is_control()) {
        return false;
    }
    unicode.split('.').all(|label| {
        let mut seen: Option<Script> = None;
        for s in label.chars().filter_map(script) {
            if s == Script::Other {
                continue;
            }
            match seen {
                None => seen = Some(s),
                Some(prev) if prev != s => return false,
                Some(_) => {}
            }
        }
        true
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed() {
        assert!(matches!(escape("db.example.com 5432"), Cow::Borrowed(_)));
        assert!(matches!(escape("bücher — ünïcode"), Cow::Borrowed(_)));
        assert!(matches!(escape(""), Cow::Borrowed(_)));
    }

    #[test]
    fn controls_bidi_and_invisibles_are_escaped() {
        assert_eq!(escape("a\x1b[31mb"), "a\\x1b[31mb");
        assert_eq!(escape("a\tb\r\nc\x7f"), "a\\x09b\\x0d\\x0ac\\x7f");
        assert_eq!(escape("\u{9b}2J"), "\\u{9b}2J");
        assert_eq!(escape("exe\u{202e}txt.sh"), "exe\\u{202e}txt.sh");
        assert_eq!(escape("\u{2066}x\u{2069}"), "\\u{2066}x\\u{2069}");
        assert_eq!(escape("pay\u{200b}pal"), "pay\\u{200b}pal");
        assert_eq!(escape("\u{feff}bom"), "\\u{feff}bom");
        assert_eq!(escape("a\0b"), "a\\x00b");
        assert_eq!(escape("a b"), "a b", "a space is kept");
    }

    #[test]
    fn escaping_twice_changes_nothing() {
        for s in [
            "a\x1b[31mb",
            "x\u{202e}y\u{9b}\u{7f}",
            "plain \\x1b",
            "\u{2066}",
        ] {
            let once = escape_owned(s.to_string());
            assert_eq!(escape(&once), once.as_str(), "{s:?}");
        }
    }

    #[test]
    fn json_text_escapes_what_serde_leaves_raw() {
        let v = serde_json::json!({ "m": "a\u{202e}b\u{9b}c\u{7f}d\x1be ü" });
        let raw = serde_json::to_string(&v).unwrap();
        let safe = json_text(&raw);
        assert_eq!(safe, r#"{"m":"a\u202eb\u009bc\u007fd\u001be ü"}"#);
        let back: serde_json::Value = serde_json::from_str(&safe).unwrap();
        assert_eq!(back, v, "the value is unchanged");
        assert!(matches!(json_text(r#"{"a":"ü"}"#), Cow::Borrowed(_)));
    }

    #[test]
    fn bytes_keep_valid_text_and_show_invalid_bytes() {
        assert_eq!(escape_bytes(b"ok"), "ok");
        assert_eq!(escape_bytes(b"a\xffb"), "a\\xffb");
        assert_eq!(escape_bytes(b"\x1b]0;x\x07"), "\\x1b]0;x\\x07");
        assert_eq!(escape_bytes("ü\u{202e}".as_bytes()), "ü\\u{202e}");
        assert_eq!(escape_bytes(b"\xc3"), "\\xc3", "a truncated sequence");
    }

    #[test]
    fn names_show_ascii_first_and_unicode_when_safe() {
        assert_eq!(display_name("db.Example.com."), "db.Example.com.");
        assert_eq!(
            display_name("bücher.example"),
            "xn--bcher-kva.example (bücher.example)"
        );
        assert_eq!(
            display_name("xn--bcher-kva.example"),
            "xn--bcher-kva.example (bücher.example)"
        );
        assert_eq!(
            display_name("пример.испытание"),
            "xn--e1afmkfd.xn--80akhbyknj4f (пример.испытание)"
        );
        // Latin with a Cyrillic `а` (U+0430): ASCII only.
        assert_eq!(display_name("p\u{430}ypal.com"), "xn--pypal-4ve.com");
        // Latin with Greek omicron.
        assert!(!display_name("g\u{3bf}\u{3bf}gle.com").contains('('));
        // A label in one script next to a Latin TLD is fine.
        assert!(display_name("пример.com").ends_with("(пример.com)"));
        assert_eq!(display_name("a\x1bb.com"), "a\\x1bb.com");
        assert!(!display_name("a\u{202e}b.com").contains('\u{202e}'));
    }

    #[test]
    fn shell_words_are_quoted_only_when_needed() {
        assert_eq!(shell_word("inet"), "inet");
        assert_eq!(shell_word("db.example.com:5432"), "db.example.com:5432");
        assert_eq!(shell_word("x;$(id)"), "'x;$(id)'");
        assert_eq!(shell_word("a b"), "'a b'");
        assert_eq!(shell_word("it's"), "'it'\\''s'");
        assert_eq!(shell_word("https://h/?a=1&b=2"), "'https://h/?a=1&b=2'");
        assert_eq!(shell_word(""), "''");
        assert_eq!(shell_word("-rf"), "'-rf'");
        assert_eq!(escape(&shell_word("a\x1b[31m")), "'a\\x1b[31m'");
    }

    proptest::proptest! {
        #[test]
        fn json_text_keeps_the_value_and_shows_no_control(s in "[\\x00-\\x{3000}]{0,40}") {
            let raw = serde_json::to_string_pretty(&vec![&s]).unwrap().replace('\n', "");
            let safe = json_text(&raw);
            proptest::prop_assert!(!safe.chars().any(|c| c.is_control() || needs_escape(c)), "{safe:?}");
            let back: Vec<String> = serde_json::from_str(&safe).unwrap();
            proptest::prop_assert_eq!(&back[0], &s);
        }
        #[test]
        fn escape_output_has_no_control_or_bidi(s in "\\PC*|[\\x00-\\x{3000}]{0,40}") {
            let e = escape(&s);
            proptest::prop_assert!(!e.chars().any(|c| c.is_control() || needs_escape(c)), "{e:?}");
        }
        #[test]
        fn escape_bytes_output_has_no_control(b in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            let e = escape_bytes(&b);
            proptest::prop_assert!(!e.chars().any(|c| c.is_control() || needs_escape(c)), "{e:?}");
        }
        #[test]
        fn display_name_never_panics_nor_shows_controls(s in "[\\x00-\\x{3000}]{0,40}") {
            let d = display_name(&s);
            proptest::prop_assert!(!d.chars().any(|c| c.is_control() || needs_escape(c)), "{d:?}");
        }
    }
}
