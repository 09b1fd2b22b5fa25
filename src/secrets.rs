//! Masking secrets in text canreach shows: the one place that knows what a secret looks like.
//!
//! A report is pasted into tickets and chats, and much of what it quotes comes from others:
//! the target as typed (`postgres://app:pw@db/x`), a line of a targets file, a redirect's
//! `Location`, a listening program's command line (`redis-server --requirepass pw`). canreach
//! cannot know every program's options, so a secret is recognised by its *shape*:
//!
//! * the password of a URL's user part (`scheme://user:***@host`, `//user:***@host`), or a
//!   long user name standing alone (a token: `https://***@github.com/`);
//! * a user part without a scheme, as in Go's DSNs (`user:***@tcp(db:3306)/app`) or a
//!   target typed `user:***@host`;
//! * the value of a `NAME=VALUE` whose name is a secret's (`is_secret_name`):
//!   `PASSWORD=***`, `--env=DB_PASSWORD=***`, `?api_key=***&page=2`, `PASSWORD = ***`;
//! * the value of a `"NAME": VALUE` or `NAME: VALUE` (JSON, YAML, HTTP headers):
//!   `--config={"password":"***"}`, `-H 'X-Api-Key: ***'`, `Cookie: ***`,
//!   `Authorization: ***`;
//! * the value after an option named like a secret (`--password ***`, `--jwt ***`,
//!   `--sas ***`), even one starting with a single `-` (`--password -x`), since an option
//!   that takes a password takes the next word whatever it is.
//!
//! A value that is a file name is kept where the name says *key* (`-key cert.pem`,
//! `--tls-key /etc/ssl/x.key`): a path to a key is no secret, and showing it helps. Names
//! that end in `-file`, `-path`, `-dir`, `-size` … (`--password-file /run/pw`) are not secrets
//! either.
//!
//! [`mask`] works on any text (one argument, one line); [`mask_args`] on a command line's
//! arguments, where it knows which words belong together. Both only mask: escaping control
//! characters is [`crate::escape`]'s work, and is done when printing.

use std::borrow::Cow;
use std::ops::Range;

/// What replaces a secret.
pub(crate) const MASK: &str = "***";

/// A URL user name this long, without a password, is taken for a token.
const TOKEN_USER_LEN: usize = 20;

/// Parts of a name (split at `-`, `_`, `.`, and where a lower-case letter meets an upper-case
/// one) that make it a secret's by themselves.
const SECRET_PARTS: [&str; 12] = [
    "pass", "pwd", "pw", "key", "auth", "oauth", "sas", "sig", "otp", "hmac", "passcode", "pin",
];

/// Substrings of a name, its separators removed and lower-cased, that make it a secret's.
const SECRET_WORDS: [&str; 20] = [
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "credential",
    "apikey",
    "cookie",
    "bearer",
    "jwt",
    "requirepass",
    "masterauth",
    "privatekey",
    "accesskey",
    "authorization",
    "signature",
    "sessionid",
    "sessiontoken",
    "pgpass",
    "xapikey",
];

/// A name whose last part is one of these names a file, a size or a kind, not a secret
/// (`--password-file`, `--key-size`, `--token-type`).
const NOT_SECRET_LAST: [&str; 16] = [
    "file",
    "files",
    "path",
    "dir",
    "directory",
    "stdin",
    "fd",
    "size",
    "bits",
    "type",
    "length",
    "len",
    "format",
    "alg",
    "algorithm",
    "env",
];

/// Parts that make a name a secret's only because it names a key, whose value may be a path.
const KEY_PARTS: [&str; 1] = ["key"];

/// The lower-case parts of an option or variable name.
fn parts(name: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut prev_lower = false;
    for c in name.chars() {
        if !c.is_ascii_alphanumeric() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            prev_lower = false;
            continue;
        }
        if c.is_ascii_uppercase() && prev_lower && !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
        prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        cur.push(c.to_ascii_lowercase());
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// How a name makes its value a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Not a secret's name.
    No,
    /// A key's: a value that is a file name is kept.
    Key,
    /// A secret's.
    Yes,
}

fn kind(name: &str) -> Kind {
    let name = name.trim_start_matches('-');
    // The shell's working directory, not a password.
    if name == "PWD" || name.is_empty() {
        return Kind::No;
    }
    let parts = parts(name);
    if parts
        .last()
        .is_some_and(|l| NOT_SECRET_LAST.contains(&l.as_str()))
    {
        return Kind::No;
    }
    let compact: String = parts.concat();
    if SECRET_WORDS.iter().any(|w| compact.contains(w)) {
        return Kind::Yes;
    }
    let mut found = Kind::No;
    for p in &parts {
        if KEY_PARTS.contains(&p.as_str()) {
            found = Kind::Key;
        } else if SECRET_PARTS.contains(&p.as_str()) {
            return Kind::Yes;
        }
    }
    found
}

/// Is a parameter, option, variable or header name one whose value is a secret?
/// `password`, `DB_PASSWORD`, `X-Api-Key`, `access_token`, `client_secret`, `PGPASSWORD`,
/// `sig`, `jwt`, `sessionId`, `--credentials`; not `keyword`, `author`, `passive`,
/// `--password-file` (a path), `PWD` (the working directory).
#[cfg(test)]
pub(crate) fn is_secret_name(name: &str) -> bool {
    kind(name) != Kind::No
}

/// Does a value look like a file name (a key's path, not the key)?
fn is_path(value: &str) -> bool {
    const EXTS: [&str; 9] = [
        ".pem", ".key", ".crt", ".cer", ".der", ".p12", ".pfx", ".jks", ".pub",
    ];
    let v = value.trim_matches(['"', '\'']);
    v.starts_with('/')
        || v.starts_with("./")
        || v.starts_with("../")
        || v.starts_with("~/")
        || EXTS.iter().any(|e| v.to_ascii_lowercase().ends_with(e))
}

/// Is the value of a name of this kind a secret?
fn secret_value(k: Kind, value: &str) -> bool {
    match k {
        Kind::No => false,
        Kind::Key => !is_path(value),
        Kind::Yes => !value.is_empty(),
    }
}

/// `text` with every secret of the shapes in the module's list replaced by `MASK`.
/// Borrowed when there was none (the usual case).
pub(crate) fn mask(text: &str) -> Cow<'_, str> {
    let mut spans = Vec::new();
    let urls = url_spans(text, &mut spans);
    userinfo_spans(text, &mut spans);
    pair_spans(text, &urls, &mut spans);
    option_spans(text, &mut spans);
    apply(text, spans)
}

/// Replace each of `spans` (byte ranges, possibly overlapping) by [`MASK`].
fn apply(text: &str, mut spans: Vec<Range<usize>>) -> Cow<'_, str> {
    spans.retain(|s| !s.is_empty() && !already_masked(&text[s.clone()]));
    if spans.is_empty() {
        return Cow::Borrowed(text);
    }
    spans.sort_by_key(|s| (s.start, s.end));
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for s in spans {
        if s.end <= at {
            continue;
        }
        let start = s.start.max(at);
        out.push_str(&text[at..start]);
        if start == s.start {
            out.push_str(MASK);
        }
        at = s.end;
    }
    out.push_str(&text[at..]);
    Cow::Owned(out)
}

/// A value that is the mask itself, perhaps followed by punctuation that is not part of a
/// secret: text masked once and then quoted in a message (`` `h?token=***`: … ``), where the
/// value runs on to the quote. Masking it again would eat the punctuation.
fn already_masked(value: &str) -> bool {
    value
        .strip_prefix(MASK)
        .is_some_and(|rest| !rest.chars().any(char::is_alphanumeric))
}

/// Characters that end a URL, a word or a value in running text.
fn ends_word(c: char) -> bool {
    c.is_whitespace() || c == '"' || c == '\''
}

/// URLs (`scheme://…` and `//…` at a word's start): the user part's password, or a long user
/// name alone; the values of query and fragment parameters named like secrets. Returns where
/// the URLs are.
fn url_spans(text: &str, spans: &mut Vec<Range<usize>>) -> Vec<Range<usize>> {
    let mut urls = Vec::new();
    let mut from = 0;
    while let Some(i) = text[from..].find("//").map(|i| i + from) {
        from = i + 2;
        // `scheme://` or `//` where a word (or a quoted or `=` value) starts.
        let before = text[..i].chars().next_back();
        let is_url = match before {
            Some(':') => text[..i - 1]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_ascii_alphanumeric()),
            None => true,
            Some(c) => ends_word(c) || "=(,;<[{".contains(c),
        };
        if !is_url {
            continue;
        }
        let start = i + 2;
        let end = text[start..]
            .find(ends_word)
            .map_or(text.len(), |e| e + start);
        let url = &text[start..end];
        urls.push(start..end);
        let auth_end = url.find(['/', '?', '#']).unwrap_or(url.len());
        if let Some(at) = url[..auth_end].rfind('@') {
            let userinfo = &url[..at];
            match userinfo.find(':') {
                Some(colon) => spans.push(start + colon + 1..start + at),
                None if userinfo.chars().count() >= TOKEN_USER_LEN => {
                    spans.push(start..start + at);
                }
                None => {}
            }
        }
        let rest = &url[auth_end..];
        if let Some(q) = rest.find(['?', '#']) {
            params(&rest[q + 1..], start + auth_end + q + 1, spans);
        }
        from = end.max(from);
    }
    urls
}

/// `a=1&token=x#access_token=y`: the values of secret-named parameters.
fn params(query: &str, offset: usize, spans: &mut Vec<Range<usize>>) {
    let mut pos = 0;
    for pair in query.split(['&', '#', '?']) {
        if let Some((k, v)) = pair.split_once('=') {
            let value_start = offset + pos + k.len() + 1;
            if secret_value(kind(k), v) {
                spans.push(value_start..value_start + v.len());
            }
        }
        pos += pair.len() + 1;
    }
}

/// `user:password@host` without a scheme (Go's DSNs, a typed target): the password.
fn userinfo_spans(text: &str, spans: &mut Vec<Range<usize>>) {
    for (at, _) in text.match_indices('@') {
        // The word the `@` is in, from its start (or a quote, `=`, `(`, `,`, `;`).
        let start = text[..at]
            .char_indices()
            .rev()
            .find(|(_, c)| ends_word(*c) || "=(,;<[{/".contains(*c))
            .map_or(0, |(s, c)| s + c.len_utf8());
        let word = &text[start..at];
        let Some(colon) = word.find(':') else {
            continue;
        };
        let user = &word[..colon];
        let host_follows = text[at + 1..].chars().next().is_some_and(|c| !ends_word(c));
        if colon + 1 < word.len()
            && host_follows
            && user
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._%+-".contains(c))
        {
            spans.push(start + colon + 1..at);
        }
    }
}

/// Header names whose value runs to the end of the text (an argument: `-H 'Cookie: a=1; b=2'`).
fn is_header(name: &str) -> bool {
    let compact: String = parts(name).concat();
    name.contains('-')
        || matches!(
            compact.as_str(),
            "authorization" | "cookie" | "setcookie" | "proxyauthorization"
        )
}

/// `NAME=VALUE`, `NAME = VALUE`, `"NAME": VALUE`, `NAME: VALUE`: the value, when the name is a
/// secret's. Not inside `urls`, whose parameters [`url_spans`] reads (a `#` ends a value there).
fn pair_spans(text: &str, urls: &[Range<usize>], spans: &mut Vec<Range<usize>>) {
    let bytes = text.as_bytes();
    for (sep, c) in text.char_indices().filter(|(_, c)| *c == '=' || *c == ':') {
        if urls.iter().any(|u| u.contains(&sep)) {
            continue;
        }
        // The name before the separator: spaces (for `=`), a closing quote, then name
        // characters (with dashes of an option and dots of a property).
        let mut k_end = sep;
        if c == '=' {
            while k_end > 0 && bytes[k_end - 1] == b' ' {
                k_end -= 1;
            }
        }
        let quoted = k_end > 0 && matches!(bytes[k_end - 1], b'"' | b'\'');
        if quoted {
            k_end -= 1;
        }
        let mut k_start = k_end;
        while k_start > 0
            && (bytes[k_start - 1].is_ascii_alphanumeric()
                || matches!(bytes[k_start - 1], b'_' | b'-' | b'.'))
        {
            k_start -= 1;
        }
        let name = &text[k_start..k_end];
        let k = kind(name);
        if k == Kind::No {
            continue;
        }
        // Value start: after spaces.
        let mut v = sep + 1;
        while v < bytes.len() && bytes[v] == b' ' {
            v += 1;
        }
        if c == ':' {
            // Not a key-value pair: `auth.example:443`, `db:5432`, `token:x` (no space, no
            // quotes, not a header), and never a URL's `https://`.
            let spaced = v > sep + 1;
            if name.contains('.') || text[sep..].starts_with("://") {
                continue;
            }
            if !(quoted || spaced || is_header(name)) {
                continue;
            }
        }
        if v >= bytes.len() {
            continue;
        }
        let header = c == ':' && !quoted && is_header(name);
        let value = match bytes[v] {
            q @ (b'"' | b'\'') => {
                let close = text[v + 1..]
                    .find(q as char)
                    .map_or(text.len(), |e| e + v + 1);
                v + 1..close
            }
            _ if header => v..text.len(),
            _ => {
                let end = text[v..]
                    .find(|c: char| c.is_whitespace() || c == '&' || c == ';')
                    .map_or(text.len(), |e| e + v);
                v..end
            }
        };
        let shown = &text[value.clone()];
        if c == ':' && shown.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if secret_value(k, shown) {
            spans.push(value);
        }
    }
}

/// The words of `text` with their byte ranges.
fn words(text: &str) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        match (c.is_whitespace(), start) {
            (true, Some(s)) => {
                out.push(s..i);
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push(s..text.len());
    }
    out
}

/// Does an option named `name` take the word `next` as its secret value?
fn takes_value(name: &str, next: &str) -> bool {
    let k = kind(name);
    // `mongod --auth --port 1`: `auth` alone is a switch; a password option takes the next
    // word even when it starts with one `-`, never a `--option`.
    let weak = parts(name).iter().all(|p| p == "auth");
    k != Kind::No
        && !next.starts_with("--")
        && !(weak && next.starts_with('-'))
        && secret_value(k, next)
}

/// `--password VALUE` inside running text (a shell command line quoted in one argument).
fn option_spans(text: &str, spans: &mut Vec<Range<usize>>) {
    let ws = words(text);
    for pair in ws.windows(2) {
        let word = &text[pair[0].clone()];
        let Some(name) = word.strip_prefix('-') else {
            continue;
        };
        if name.contains(['=', ':']) {
            continue;
        }
        if takes_value(name, &text[pair[1].clone()]) {
            spans.push(pair[1].clone());
        }
    }
}

/// A proxy's URL (or `host:port` with a user part) fit to show: the whole user part, user
/// name included, replaced by [`MASK`] (`http://***@proxy:3128`): a proxy's user name is a
/// credential as much as its password. The rest is [`mask`]ed.
pub(crate) fn mask_user(value: &str) -> String {
    let (prefix, rest) = match value.find("://") {
        Some(i) => value.split_at(i + 3),
        None => ("", value),
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let shown = match rest[..authority_end].rfind('@') {
        Some(at) => format!("{prefix}{MASK}{}", &rest[at..]),
        None => value.to_owned(),
    };
    mask(&shown).into_owned()
}

/// `NAME = VALUE` spread over arguments, `NAME` (or `NAME=`) being `arg` and the rest in
/// `next`: the arguments after `arg` that belong to it, as shown (`=` and the mask, one for
/// each), when the name is a secret's and the value one. `None` otherwise.
fn spaced_pair(arg: &str, next: &[String]) -> Option<Vec<Cow<'static, str>>> {
    let (name, value) = match (arg.strip_suffix('='), next) {
        (Some(name), [value, ..]) if !name.contains('=') => (name, value.as_str()),
        (None, [eq, value, ..]) if eq == "=" && !arg.contains('=') => (arg, value.as_str()),
        (None, [eq_value, ..]) if !arg.contains('=') => (arg, eq_value.strip_prefix('=')?),
        _ => return None,
    };
    if name.starts_with('-') || !secret_value(kind(name), value) {
        return None;
    }
    Some(
        match (arg.ends_with('='), next.first().map(String::as_str)) {
            (true, _) => vec![Cow::Borrowed(MASK)],
            (false, Some("=")) => vec![Cow::Borrowed("="), Cow::Borrowed(MASK)],
            _ => vec![Cow::Owned(format!("={MASK}"))],
        },
    )
}

/// A command line's arguments, joined by spaces, with secrets masked: every argument by
/// [`mask`], and the argument after an option named like a secret whole (an argument can hold
/// spaces: `--password 'a b'`), plus a few programs' own short options:
/// `-pX` for mysql-like programs, `-pX` and `-p X` for sshpass and the mongo tools (for
/// others `-p8080` is a port), `-a X` for redis-like ones.
pub(crate) fn mask_args(args: &[String]) -> String {
    let prog = args
        .first()
        .and_then(|a| a.split(' ').next())
        .map(|a| a.rsplit('/').next().unwrap_or(a).to_ascii_lowercase())
        .unwrap_or_default();
    // Programs whose `-p` is a password, not a port: attached only for mysql (`-p dbname`
    // asks for the password), attached or next for sshpass and the mongo tools.
    let mysql_like = prog.contains("mysql") || prog.contains("mariadb");
    let p_next = prog == "sshpass" || prog.starts_with("mongo");
    let redis_like = prog.starts_with("redis");
    let mut out: Vec<Cow<'_, str>> = Vec::with_capacity(args.len());
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_str();
        i += 1;
        // `NAME = VALUE` as separate arguments (`NAME= VALUE`, `NAME =VALUE` too).
        if !out.is_empty()
            && let Some(shown) = spaced_pair(arg, &args[i..])
        {
            out.push(mask(arg));
            i += shown.len();
            out.extend(shown);
            continue;
        }
        let Some(flag) = arg.strip_prefix('-').filter(|_| !out.is_empty()) else {
            out.push(mask(arg));
            continue;
        };
        let name = flag.trim_start_matches('-');
        if (mysql_like || p_next) && flag.len() > 1 && flag.starts_with('p') && !flag.contains('=')
            || mysql_like && flag.starts_with("p=")
        {
            // `-pX` (mysql reads `-p=X` as the password `=X`).
            out.push(Cow::Owned(format!("-p{MASK}")));
            continue;
        }
        let short_password = (redis_like && arg == "-a") || (p_next && arg == "-p");
        let next = args.get(i).map(String::as_str);
        let value_next = match next {
            // A short password option always takes the next word, even one starting with `-`.
            Some(_) if short_password => true,
            Some(n) if !name.contains(['=', ':']) => takes_value(name, n),
            _ => false,
        };
        out.push(mask(arg));
        if value_next {
            out.push(Cow::Borrowed(MASK));
            i += 1;
        }
    }
    out.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every shape in the module's list, with the secret `hunter2`, and what must be shown.
    const MASKED: &[(&str, &str)] = &[
        // URLs.
        (
            "postgres://app:hunter2@db:5432/x",
            "postgres://app:***@db:5432/x",
        ),
        (
            "https://admin:hunter2@host/next?token=hunter2",
            "https://admin:***@host/next?token=***",
        ),
        (
            "https://h/cb#access_token=hunter2&state=1",
            "https://h/cb#access_token=***&state=1",
        ),
        (
            "https://ghp_hunter2hunter2hunter2@github.com/o/r",
            "https://***@github.com/o/r",
        ),
        ("//u:hunter2@h/", "//u:***@h/"),
        (
            "mongodb+srv://u:hunter2@c.example/db",
            "mongodb+srv://u:***@c.example/db",
        ),
        (
            "https://s.blob.example/c?sv=2022&sig=hunter2&se=2026",
            "https://s.blob.example/c?sv=2022&sig=***&se=2026",
        ),
        // A user part without a scheme.
        ("user:hunter2@tcp(db:3306)/app", "user:***@tcp(db:3306)/app"),
        ("u:hunter2@host", "u:***@host"),
        ("--dsn=user:hunter2@tcp(db)/x", "--dsn=user:***@tcp(db)/x"),
        // NAME=VALUE.
        ("PASSWORD=hunter2", "PASSWORD=***"),
        ("--env=DB_PASSWORD=hunter2", "--env=DB_PASSWORD=***"),
        ("PASSWORD = hunter2", "PASSWORD = ***"),
        (
            "host=db user=app password=hunter2 dbname=x",
            "host=db user=app password=*** dbname=x",
        ),
        (
            "Server=db;Password=hunter2;Database=x",
            "Server=db;Password=***;Database=x",
        ),
        (
            "spring.datasource.password=hunter2",
            "spring.datasource.password=***",
        ),
        ("GITHUB_TOKEN=hunter2", "GITHUB_TOKEN=***"),
        ("AWS_SECRET_ACCESS_KEY=hunter2", "AWS_SECRET_ACCESS_KEY=***"),
        ("--secret=hunter2", "--secret=***"),
        // JSON, YAML, headers.
        (
            r#"--config={"password":"hunter2"}"#,
            r#"--config={"password":"***"}"#,
        ),
        (
            r#"{"user": "app", "password": "hunter2"}"#,
            r#"{"user": "app", "password": "***"}"#,
        ),
        ("password: hunter2", "password: ***"),
        ("X-Api-Key: hunter2", "X-Api-Key: ***"),
        ("X-Api-Key:hunter2", "X-Api-Key:***"),
        ("Cookie: session=hunter2; theme=dark", "Cookie: ***"),
        ("Authorization: Bearer hunter2", "Authorization: ***"),
        // Options inside one argument (`sh -c '…'`).
        (
            "app --password hunter2 --port 1",
            "app --password *** --port 1",
        ),
        ("app --password -hunter2", "app --password ***"),
        ("app --jwt hunter2", "app --jwt ***"),
        ("app --bearer hunter2", "app --bearer ***"),
        ("app --cookie hunter2", "app --cookie ***"),
        ("app --session-id hunter2", "app --session-id ***"),
        ("app --sas hunter2", "app --sas ***"),
        ("app --credentials hunter2", "app --credentials ***"),
    ];

    /// Text with no secret, shown as it is.
    const KEPT: &[&str] = &[
        "openssl s_server -key cert.pem -cert cert.pem",
        "nginx --tls-key /etc/ssl/private/x.key",
        "app --password-file /run/secrets/pw",
        "ssh-keygen --key-size 4096",
        "mongod --auth --port 27017",
        "env PWD=/root LANG=C app",
        "postgres: app db 127.0.0.1(5432) idle",
        "nginx: master process /usr/sbin/nginx -g daemon off;",
        "https://example.com/search?q=keyword&page=2",
        "auth.example.com:443",
        "token:443",
        "git@github.com:org/repo.git",
        "mail root@example.com",
        "https://user@example.com/",
        "CN=auth.example.com, O=Example",
        "--author alice --keyword x --passive",
        "the key is shown",
        "canreach https://h/ --timeout 3s",
        "key=cert.pem",
        "",
    ];

    #[test]
    fn every_shape_of_secret_is_masked() {
        for (text, shown) in MASKED {
            let got = mask(text);
            assert_eq!(got, *shown, "{text}");
            assert!(!got.contains("hunter2"), "{text} → {got}");
            // Masking twice changes nothing.
            assert_eq!(mask(&got), got, "{text}");
        }
    }

    /// A message that quotes text already masked (`shown` masks the typed target, then the
    /// whole usage line is masked again) keeps the punctuation after the mask.
    #[test]
    fn masked_text_quoted_in_a_message_keeps_its_punctuation() {
        for typed in [
            "h:abc?token=hunter2",
            "https://h/?token=hunter2",
            "PASSWORD=hunter2",
        ] {
            let line = format!("unknown port `{}`: give a number", mask(typed));
            assert_eq!(mask(&line), line, "{typed}");
        }
        // A real secret that starts like the mask is still masked.
        assert_eq!(mask("token=***hunter2 x"), "token=*** x");
    }

    #[test]
    fn text_without_a_secret_is_kept() {
        for text in KEPT {
            assert!(
                matches!(mask(text), Cow::Borrowed(_)),
                "{text} → {}",
                mask(text)
            );
        }
    }

    #[test]
    fn secret_names() {
        for n in [
            "password",
            "DB_PASSWORD",
            "X-Api-Key",
            "apiKey",
            "access_token",
            "client_secret",
            "PGPASSWORD",
            "sig",
            "jwt",
            "sessionId",
            "session-id",
            "credentials",
            "requirepass",
            "--bearer",
            "cookie",
            "sas",
            "key",
        ] {
            assert!(is_secret_name(n), "{n}");
        }
        for n in [
            "keyword",
            "author",
            "passive",
            "password-file",
            "key_size",
            "PWD",
            "page",
            "session",
            "user",
            "",
        ] {
            assert!(!is_secret_name(n), "{n}");
        }
    }

    #[test]
    fn a_proxys_whole_user_part_is_masked() {
        assert_eq!(
            mask_user("http://alice:hunter2@proxy:3128"),
            "http://***@proxy:3128"
        );
        assert_eq!(mask_user("alice@proxy:3128"), "***@proxy:3128");
        assert_eq!(mask_user("http://proxy:3128/"), "http://proxy:3128/");
        assert_eq!(
            mask_user("http://proxy:3128/?token=hunter2"),
            "http://proxy:3128/?token=***"
        );
    }

    fn masked_args(line: &str) -> String {
        let args: Vec<String> = line.split('\u{1}').map(str::to_string).collect();
        mask_args(&args)
    }

    /// Command lines (arguments separated by \u{1} here, as NULs in /proc/PID/cmdline).
    #[test]
    fn command_lines_are_masked_argument_by_argument() {
        for (argv, shown) in [
            (
                "redis-server\u{1}--requirepass\u{1}hunter2\u{1}--port\u{1}6379",
                "redis-server --requirepass *** --port 6379",
            ),
            (
                "/usr/sbin/mysqld\u{1}--password=hunter2\u{1}--user=mysql",
                "/usr/sbin/mysqld --password=*** --user=mysql",
            ),
            (
                "mysql\u{1}-uroot\u{1}-phunter2\u{1}-h\u{1}db",
                "mysql -uroot -p*** -h db",
            ),
            ("mysql\u{1}-p\u{1}dbname", "mysql -p dbname"),
            ("nc\u{1}-p8080", "nc -p8080"),
            (
                "mysql\u{1}-p=hunter2\u{1}--port=3306",
                "mysql -p*** --port=3306",
            ),
            ("sshpass\u{1}-phunter2\u{1}ssh\u{1}h", "sshpass -p*** ssh h"),
            (
                "/usr/bin/sshpass\u{1}-p\u{1}-hunter2\u{1}ssh\u{1}h",
                "/usr/bin/sshpass -p *** ssh h",
            ),
            (
                "mongosh\u{1}-u\u{1}app\u{1}-p\u{1}hunter2",
                "mongosh -u app -p ***",
            ),
            (
                "redis-cli\u{1}-a\u{1}hunter2\u{1}ping",
                "redis-cli -a *** ping",
            ),
            ("app\u{1}--token\u{1}hunter2", "app --token ***"),
            (
                "app\u{1}--api-key\u{1}hunter2\u{1}--secret=hunter2",
                "app --api-key *** --secret=***",
            ),
            (
                "mongod\u{1}--auth\u{1}--port\u{1}27017",
                "mongod --auth --port 27017",
            ),
            ("app\u{1}--token", "app --token"),
            (
                "env\u{1}PASSWORD=hunter2\u{1}GITHUB_TOKEN=ghp_x\u{1}AWS_SECRET_ACCESS_KEY=y\u{1}LANG=C\u{1}app",
                "env PASSWORD=*** GITHUB_TOKEN=*** AWS_SECRET_ACCESS_KEY=*** LANG=C app",
            ),
            (
                "worker\u{1}--db\u{1}postgres://app:hunter2@db:5432/x",
                "worker --db postgres://app:***@db:5432/x",
            ),
            (
                "psql\u{1}host=db user=app password=hunter2 dbname=x",
                "psql host=db user=app password=*** dbname=x",
            ),
            (
                "curl\u{1}-H\u{1}Authorization: Bearer hunter2\u{1}https://h/?api_key=hunter2",
                "curl -H Authorization: *** https://h/?api_key=***",
            ),
            // The issue's list (#21, item 11).
            ("app\u{1}--password\u{1}-hunter2", "app --password ***"),
            (
                "app\u{1}--env=DB_PASSWORD=hunter2",
                "app --env=DB_PASSWORD=***",
            ),
            (
                "app\u{1}--config={\"password\":\"hunter2\"}",
                "app --config={\"password\":\"***\"}",
            ),
            ("app\u{1}PASSWORD = hunter2", "app PASSWORD = ***"),
            // The same as three arguments (`app PASSWORD = x` typed unquoted).
            ("app\u{1}PASSWORD\u{1}=\u{1}hunter2", "app PASSWORD = ***"),
            ("app\u{1}PASSWORD=\u{1}hunter2", "app PASSWORD= ***"),
            (
                "app\u{1}PASSWORD\u{1}=hunter2\u{1}--port\u{1}1",
                "app PASSWORD =*** --port 1",
            ),
            (
                "app\u{1}PASSWORD\u{1}=\u{1}hunter2\u{1}-v",
                "app PASSWORD = *** -v",
            ),
            ("app\u{1}MODE\u{1}=\u{1}fast", "app MODE = fast"),
            (
                "app\u{1}user:hunter2@tcp(db:3306)/app",
                "app user:***@tcp(db:3306)/app",
            ),
            ("app\u{1}//u:hunter2@h/", "app //u:***@h/"),
            (
                "curl\u{1}-H\u{1}X-Api-Key: hunter2\u{1}https://h/",
                "curl -H X-Api-Key: *** https://h/",
            ),
            (
                "curl\u{1}-H\u{1}Cookie: sid=hunter2; a=b\u{1}https://h/",
                "curl -H Cookie: *** https://h/",
            ),
            ("app\u{1}--credentials\u{1}hunter2", "app --credentials ***"),
            ("app\u{1}--jwt\u{1}hunter2", "app --jwt ***"),
            ("app\u{1}--bearer\u{1}hunter2", "app --bearer ***"),
            ("app\u{1}--cookie\u{1}hunter2", "app --cookie ***"),
            ("app\u{1}--session-id\u{1}hunter2", "app --session-id ***"),
            ("app\u{1}--sas\u{1}hunter2", "app --sas ***"),
            (
                "app\u{1}--password\u{1}two words hunter2",
                "app --password ***",
            ),
            // Not secrets.
            (
                "openssl\u{1}s_server\u{1}-key\u{1}cert.pem\u{1}-accept\u{1}4433",
                "openssl s_server -key cert.pem -accept 4433",
            ),
            (
                "app\u{1}--password-file\u{1}/run/secrets/pw",
                "app --password-file /run/secrets/pw",
            ),
            (
                "postgres: app db 127.0.0.1(5432) idle",
                "postgres: app db 127.0.0.1(5432) idle",
            ),
            (
                "nginx: master process /usr/sbin/nginx\u{1}-g\u{1}daemon off;",
                "nginx: master process /usr/sbin/nginx -g daemon off;",
            ),
        ] {
            let got = masked_args(argv);
            assert_eq!(got, shown, "{argv:?}");
            assert!(!got.contains("hunter2"), "{got}");
        }
        assert_eq!(mask_args(&[]), "");
    }

    proptest::proptest! {
        #[test]
        fn masking_never_panics_and_is_stable(s in "\\PC{0,60}|[ -~]{0,60}") {
            let once = mask(&s).into_owned();
            proptest::prop_assert_eq!(mask(&once).into_owned(), once.clone());
        }
        #[test]
        fn a_secret_after_a_secret_name_never_shows(
            name in "(password|token|api_key|secret|DB_PASSWORD|X-Api-Key)",
            value in "[A-Za-z0-9]{6,20}",
            sep in "(=| = |: )",
        ) {
            let text = format!("x {name}{sep}{value} y");
            let m = mask(&text);
            proptest::prop_assert!(!m.contains(&value), "{} → {}", text, m);
        }
    }
}
