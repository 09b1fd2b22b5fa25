//! `GET /` of `canreach serve` in a real browser: Debian's Chromium, headless, loads the page
//! after a few probes (in the namespace lab of `tests/it/common/fleet.rs`) and dumps the DOM it
//! built, scripts run. The page must list each probe's target, module, verdict and reason,
//! link to its full report, and show a hostile target as text, never as markup.

use crate::common;

use std::time::Duration;

use common::fleet::*;

/// Chromium, headless, in namespace `ns`: the DOM of `url` once loaded (its scripts run),
/// serialised. Its profile lives in `dir`; its process group is killed when it is done or
/// after 60 s.
fn dump_dom(ns: &str, dir: &TempDir, url: &str) -> String {
    require_program("chromium", "chromium");
    require_program("unshare", "util-linux");
    let profile = dir.path("chromium-profile");
    std::fs::create_dir_all(&profile).unwrap();
    let user_data = format!("--user-data-dir={}", profile.display());
    let out = dir.path("dom.html");
    // Its caches and settings in the lab's directory too, not in this user's home.
    let home = dir.path("chromium-home");
    std::fs::create_dir_all(&home).unwrap();
    let env = [
        ("HOME", home.as_path()),
        ("XDG_CONFIG_HOME", home.as_path()),
        ("XDG_CACHE_HOME", home.as_path()),
    ];
    // In a PID namespace of its own (chromium its init): the helpers it forks and leaves
    // behind are reaped there when it ends, not left as zombies on this machine.
    let mut p = spawn_full(
        ns,
        "unshare",
        &[
            "--pid",
            "--fork",
            "--kill-child",
            "--mount-proc",
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            &user_data,
            "--dump-dom",
            url,
        ],
        &env,
        Some(&out),
        &dir.path("chromium.log"),
    );
    let start = std::time::Instant::now();
    while p.alive() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "chromium did not finish in 60 s\n{}",
            p.log_tail()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let dom = std::fs::read_to_string(&out).unwrap_or_default();
    assert!(
        dom.contains("</html>"),
        "no document from chromium: {dom:?}\n{}",
        p.log_tail()
    );
    drop(p);
    dom
}

/// `html` as text: tags dropped, the five entities and numeric ones decoded, spaces folded.
fn text_of(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                out.push(' ');
            }
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    let mut decoded = String::new();
    let mut rest = out.as_str();
    while let Some(i) = rest.find('&') {
        decoded.push_str(&rest[..i]);
        let after = &rest[i..];
        let end = after.find(';').filter(|e| *e <= 10);
        let (text, used) = match end.map(|e| &after[1..e]) {
            Some("lt") => ("<".to_string(), 4),
            Some("gt") => (">".to_string(), 4),
            Some("amp") => ("&".to_string(), 5),
            Some("quot") => ("\"".to_string(), 6),
            Some("apos") => ("'".to_string(), 6),
            Some(n) if n.starts_with('#') => {
                let v = n
                    .strip_prefix("#x")
                    .map(|h| u32::from_str_radix(h, 16))
                    .unwrap_or_else(|| n[1..].parse());
                match v.ok().and_then(char::from_u32) {
                    Some(c) => (c.to_string(), n.len() + 2),
                    None => ("&".to_string(), 1),
                }
            }
            _ => ("&".to_string(), 1),
        };
        decoded.push_str(&text);
        rest = &after[used..];
    }
    decoded.push_str(rest);
    decoded.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The table rows of `html` (`<tr …>…</tr>`), raw.
fn rows(html: &str) -> Vec<&str> {
    let mut out = vec![];
    let mut rest = html;
    while let Some(i) = rest.find("<tr") {
        let Some(j) = rest[i..].find("</tr>") else {
            break;
        };
        out.push(&rest[i..i + j + 5]);
        rest = &rest[i + j + 5..];
    }
    out
}

/// The `href` of the first link in `html`.
fn first_href(html: &str) -> Option<String> {
    let i = html.find("href=\"")? + 6;
    let j = html[i..].find('"')?;
    Some(text_of(&html[i..i + j]))
}

/// A target that is markup: a valid URL (the path carries it), probed through http_2xx. Were
/// it written into the page unescaped, Chromium would build an `img` and run its handler.
const HOSTILE: &str =
    "http://198.18.2.2:8080/<img src=x onerror=\"document.body.setAttribute('data-pwned','1')\">";

/// A target with a terminal escape and a right-to-left override in its path: refused (400),
/// and never raw in the answer or the page.
const CONTROLS: &str = "http://198.18.2.2:8080/\u{1b}[31mred\u{202e}txt.exe";

/// The text of each cell (`<td>`) of a row.
fn cells(row: &str) -> Vec<String> {
    row.split("<td")
        .skip(1)
        .map(|c| {
            let inner = c.split_once('>').map_or("", |x| x.1);
            text_of(inner.split("</td>").next().unwrap_or(""))
        })
        .collect()
}

/// Does the DOM hold markup made from [`HOSTILE`]: an `img` element, or the attribute its
/// handler sets? (Shown as text, the same words appear only escaped: `&lt;img`.)
fn hostile_markup(dom: &str) -> bool {
    dom.contains("<img") || dom.contains("data-pwned=\"")
}

#[test]
fn the_page_shows_the_last_probes_in_a_browser_and_a_hostile_target_as_text() {
    require_lab!();
    let fleet = FleetLab::new("fleet-browser");
    let cr = fleet.canreach_serve();
    let mut shown: Vec<Case> = cases()
        .into_iter()
        .filter(|c| {
            [
                "open port",
                "closed port",
                "NXDOMAIN",
                "HTTP 503",
                "TLS expired",
            ]
            .contains(&c.what)
        })
        .collect();
    shown.push(Case {
        what: "markup target",
        module: "http_2xx",
        target: HOSTILE.to_string(),
        success: true,
        http_status: Some(200),
        verdict: "open",
        finding: None,
        phase: None,
    });
    let ca = fleet.dir.path("ca.pem");
    let mut summaries = vec![];
    for c in &shown {
        let r = fleet.probe(CANREACH, c);
        assert_eq!(r.status, 200, "{}: {}", c.what, r.body);
        // The reason the page should give: the check's own summary, as the CLI words it
        // for the same target from the same place.
        let mut args = vec!["--json", "--timeout", "2.5"];
        if c.module == "tcp_connect" {
            args.push("--tcp");
        }
        args.push(&c.target);
        let v = common::run_in_env(
            Some(&fleet.lab.client),
            &args,
            &[("SSL_CERT_FILE", ca.to_str().unwrap())],
        )
        .json();
        assert_eq!(v["verdict"], c.verdict, "{}", c.what);
        summaries.push(v["summary"].as_str().unwrap().to_string());
    }

    let controls = Case {
        what: "control characters",
        target: CONTROLS.to_string(),
        ..shown[shown.len() - 1].clone()
    };
    let r = fleet.probe(CANREACH, &controls);
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.body.trim_end().lines().count(), 1, "{}", r.body);
    assert!(!r.body.contains(['\u{1b}', '\u{202e}']), "{:?}", r.body);

    let dom = dump_dom(
        &fleet.lab.client,
        &fleet.dir,
        &format!("http://{CANREACH}/"),
    );
    assert!(
        !hostile_markup(&dom),
        "the hostile target became markup:\n{dom}"
    );
    assert!(
        !dom.contains(['\u{1b}', '\u{202e}']),
        "a raw control character in the page:\n{dom}"
    );
    let rows = rows(&dom);
    let mut wrong = vec![];
    for (c, summary) in shown.iter().zip(&summaries) {
        // The target as typed (escaped as everywhere in canreach), or as the URL parser
        // normalised it (percent-encoded); one cell each for the module, the target, the
        // verdict, the reason and the time.
        let typed = canreach::escape::escape(&c.target).into_owned();
        let forms = [
            typed.clone(),
            c.target
                .replace('<', "%3C")
                .replace('>', "%3E")
                .replace('"', "%22")
                .replace(' ', "%20"),
        ];
        let Some(row) = rows.iter().find(|r| {
            let cells = cells(r);
            cells.iter().any(|x| forms.contains(x)) && cells.iter().any(|x| x == c.module)
        }) else {
            wrong.push(format!(
                "{}: no row with a cell {:?} and a cell {}",
                c.what, typed, c.module
            ));
            continue;
        };
        let cells = cells(row);
        if !cells.iter().any(|x| x == c.verdict) {
            wrong.push(format!("{}: no cell {}: {cells:?}", c.what, c.verdict));
        }
        if !cells.iter().any(|x| x == summary) {
            wrong.push(format!("{}: no cell {summary:?}: {cells:?}", c.what));
        }
        if !cells.iter().any(|x| x.ends_with(" UTC")) {
            wrong.push(format!("{}: no time: {cells:?}", c.what));
        }
        // Its link leads to the full report of this probe (its summary, wrapped there).
        match first_href(row) {
            None => wrong.push(format!("{}: no link in row: {row}", c.what)),
            Some(href) => {
                let path = if href.starts_with('/') {
                    href.clone()
                } else {
                    format!("/{href}")
                };
                match http_get(
                    &fleet.lab.client,
                    CANREACH,
                    &path,
                    &[],
                    Duration::from_secs(10),
                ) {
                    Ok(r) if r.status == 200 && text_of(&r.body).contains(summary.as_str()) => {}
                    Ok(r) => wrong.push(format!(
                        "{}: {href} answered {}: {}",
                        c.what, r.status, r.body
                    )),
                    Err(e) => wrong.push(format!("{}: {href}: {e}", c.what)),
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "the page, as Chromium built it:\n  {}\n{dom}\n{}",
        wrong.join("\n  "),
        cr.log_tail()
    );
}
