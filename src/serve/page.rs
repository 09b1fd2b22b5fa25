//! `GET /`: the last probes (target, module, verdict, reason, time), each linking to its full
//! report (`GET /report?id=N`), as blackbox_exporter's page lists its last probes with their
//! logs. Targets and reasons come from outside: everything is escaped for HTML, and control
//! characters are shown escaped (`escape.rs`) before that.

use std::collections::VecDeque;
use std::sync::Mutex;

/// How many probes the page keeps.
pub(crate) const KEPT: usize = 100;

/// One probe, as the page shows it.
#[derive(Clone)]
pub(crate) struct Entry {
    pub id: u64,
    /// Unix seconds.
    pub at: i64,
    pub target: String,
    pub module: String,
    pub verdict: &'static str,
    pub success: bool,
    /// canreach's one-sentence summary.
    pub reason: String,
    /// The full report and the metrics, written when asked for (most never are).
    pub report: std::sync::Arc<dyn Fn() -> String + Send + Sync>,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("id", &self.id)
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

/// The last [`KEPT`] probes.
#[derive(Debug, Default)]
pub(crate) struct Recent {
    inner: Mutex<(u64, VecDeque<Entry>)>,
}

impl Recent {
    /// Keep `entry` (its id is given here); the oldest goes past [`KEPT`].
    pub(crate) fn push(&self, mut entry: Entry) -> u64 {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.0 += 1;
        entry.id = g.0;
        if g.1.len() == KEPT {
            g.1.pop_front();
        }
        g.1.push_back(entry);
        g.0
    }

    pub(crate) fn report(&self, id: u64) -> Option<String> {
        let write = {
            let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            g.1.iter().find(|e| e.id == id).map(|e| e.report.clone())
        };
        write.map(|w| w())
    }

    fn entries(&self) -> Vec<Entry> {
        let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.1.iter().rev().cloned().collect()
    }

    /// The page.
    pub(crate) fn html(&self, modules: &[String]) -> String {
        let mut rows = String::new();
        for e in self.entries() {
            rows.push_str(&format!(
                "<tr class=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><a href=\"/report?id={}\">report</a></td></tr>\n",
                if e.success { "ok" } else { "failed" },
                html(&crate::facts::utc_seconds(e.at)),
                html(&e.module),
                // As typed by whoever asked: its secrets masked (`escape::line`).
                html(&crate::escape::line(&e.target)),
                if e.success { "1" } else { "0" },
                html(e.verdict),
                html(&e.reason),
                e.id,
            ));
        }
        let module_list = modules
            .iter()
            .map(|m| format!("<code>{}</code>", html(m)))
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <title>canreach serve</title>\
             <style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}\
             td,th{{border:1px solid #ccc;padding:.2em .5em;text-align:left}}\
             tr.failed td{{background:#fdd}}</style></head><body>\n\
             <h1>canreach serve</h1>\n\
             <p>Probe with <code>/probe?target=HOST:PORT&amp;module=NAME</code>; own metrics at \
             <a href=\"/metrics\">/metrics</a>. Modules: {module_list}.</p>\n\
             <h2>Last probes</h2>\n<table id=\"probes\">\n\
             <tr><th>time</th><th>module</th><th>target</th><th>probe_success</th><th>verdict</th><th>reason</th><th>report</th></tr>\n\
             {rows}</table>\n</body></html>\n"
        )
    }
}

/// Text for HTML: control characters escaped as `escape.rs` shows them, then `& < > " '`.
pub(crate) fn html(s: &str) -> String {
    let visible = crate::escape::escape(s);
    let mut out = String::with_capacity(visible.len());
    for c in visible.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(target: &str) -> Entry {
        Entry {
            id: 0,
            at: 1_800_000_000,
            target: target.into(),
            module: "tcp_connect".into(),
            verdict: "closed",
            success: false,
            reason: "<b>nothing</b> listens".into(),
            report: std::sync::Arc::new(|| "report".to_string()),
        }
    }

    #[test]
    fn everything_outside_is_escaped() {
        let r = Recent::default();
        r.push(entry("<script>alert(1)</script>:1\u{202e}"));
        let page = r.html(&["tcp_connect".into()]);
        assert!(!page.contains("<script>"), "{page}");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;:1"));
        assert!(!page.contains('\u{202e}'));
        assert!(page.contains("&lt;b&gt;nothing&lt;/b&gt; listens"));
        assert!(page.contains("href=\"/report?id=1\""));
    }

    #[test]
    fn only_the_last_probes_are_kept() {
        let r = Recent::default();
        for i in 0..(KEPT + 5) {
            r.push(entry(&format!("h:{i}")));
        }
        assert!(r.report(1).is_none());
        assert!(r.report((KEPT + 5) as u64).is_some());
        assert_eq!(r.entries().len(), KEPT);
    }
}
