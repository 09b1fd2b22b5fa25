//! The HTTP side: axum on the runtime's one thread, the probes on a `LocalSet` beside it.
//!
//! A request is checked (parameters, module, target, `--allow`, the scrape timeout header)
//! and answered 400/403 at once when wrong. Then it takes a probe slot (`--max-concurrent`);
//! when none is free it waits in a bounded queue (four times the slots; past that, 503), but
//! never past its own deadline. The probe itself runs as a local task (the pipeline's futures
//! stay on this thread), which keeps its slot until it ends, records the probe for `GET /`
//! and `/metrics`, and hands the answer back.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio::time::Instant;

use crate::local::shared::Lasting;
use crate::services::Services;

use super::allow::Allow;
use super::config::{Module, Modules};
use super::metrics;
use super::own::{Own, Refusal};
use super::page::{Entry, Recent};
use super::probe::{self, BadRequest, Parsed};

/// The longest query string accepted.
pub(crate) const QUERY_MAX: usize = 4096;
/// How many requests may wait for a slot, per slot.
pub(crate) const QUEUE_PER_SLOT: usize = 4;

/// Everything the handlers share.
#[derive(Debug)]
pub(crate) struct App {
    pub modules: Modules,
    pub allow: Allow,
    pub offset: Duration,
    pub own: Own,
    pub recent: Recent,
    pub services: Services,
    pub inspector: Lasting,
    permits: Arc<Semaphore>,
    waiting: AtomicUsize,
    queue_max: usize,
    jobs: mpsc::UnboundedSender<Job>,
}

/// A probe to run on the local set.
pub(crate) struct Job {
    parsed: Parsed,
    module: Module,
    target: String,
    debug: bool,
    deadline: Instant,
    _permit: OwnedSemaphorePermit,
    reply: oneshot::Sender<Answer>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job").field("target", &self.target).finish()
    }
}

/// What a probe answers: the metrics, and the report before them for `debug=true`.
#[derive(Debug)]
pub struct Answer {
    metrics: String,
    report: String,
}

impl App {
    pub fn new(
        modules: Modules,
        allow: Allow,
        offset: Duration,
        max_concurrent: usize,
    ) -> (Arc<App>, mpsc::UnboundedReceiver<Job>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let app = App {
            modules,
            allow,
            offset,
            own: Own::new(),
            recent: Recent::default(),
            services: Services::load(),
            inspector: Lasting::default(),
            permits: Arc::new(Semaphore::new(max_concurrent)),
            waiting: AtomicUsize::new(0),
            queue_max: max_concurrent * QUEUE_PER_SLOT,
            jobs: tx,
        };
        (Arc::new(app), rx)
    }
}

pub(crate) fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/probe", get(probe))
        .route("/metrics", get(own_metrics))
        .route("/report", get(report))
        .fallback(|| async {
            one_line(
                StatusCode::NOT_FOUND,
                "not found: see / for what this exporter serves",
            )
        })
        .with_state(app)
}

/// A one-line plain-text answer.
fn one_line(status: StatusCode, line: &str) -> Response {
    let mut r = (status, format!("{line}\n")).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn text(body: String, content_type: &'static str) -> Response {
    let mut r = (StatusCode::OK, body).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

async fn index(State(app): State<Arc<App>>) -> Response {
    let names: Vec<String> = app.modules.modules.keys().cloned().collect();
    let mut r = (StatusCode::OK, app.recent.html(&names)).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    r.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'"),
    );
    r
}

async fn own_metrics(State(app): State<Arc<App>>) -> Response {
    text(app.own.encode(), metrics::CONTENT_TYPE)
}

async fn report(State(app): State<Arc<App>>, RawQuery(q): RawQuery) -> Response {
    let q = q.unwrap_or_default();
    let id = url::form_urlencoded::parse(q.as_bytes())
        .find(|(k, _)| k == "id")
        .and_then(|(_, v)| v.parse::<u64>().ok());
    match id.and_then(|id| app.recent.report(id)) {
        Some(r) => text(r, "text/plain; charset=utf-8"),
        None => one_line(
            StatusCode::NOT_FOUND,
            "no such probe: the page keeps the last 100",
        ),
    }
}

/// The probe's parameters.
#[derive(Debug, Default)]
struct Params {
    target: Option<String>,
    module: Option<String>,
    debug: bool,
}

fn params(q: &str) -> Result<Params, BadRequest> {
    if q.len() > QUERY_MAX {
        return Err(BadRequest::TooLong("query", QUERY_MAX));
    }
    let mut p = Params::default();
    for (k, v) in url::form_urlencoded::parse(q.as_bytes()) {
        match k.as_ref() {
            "target" | "module" => {
                let (slot, name) = if k == "target" {
                    (&mut p.target, "target")
                } else {
                    (&mut p.module, "module")
                };
                if slot.replace(v.into_owned()).is_some() {
                    return Err(BadRequest::Repeated(name));
                }
            }
            "debug" => p.debug = v == "true",
            // Other parameters are not canreach's (Prometheus may add its own): ignored,
            // as blackbox_exporter does.
            _ => {}
        }
    }
    Ok(p)
}

/// The checks before a probe runs.
fn prepare(
    app: &App,
    q: &str,
    headers: &HeaderMap,
) -> Result<(Params, Module, Parsed, Duration), (StatusCode, BadRequest)> {
    let bad = |e| (StatusCode::BAD_REQUEST, e);
    let p = params(q).map_err(bad)?;
    let name = p.module.clone().ok_or(bad(BadRequest::NoModule))?;
    if name.len() > 128 {
        return Err(bad(BadRequest::TooLong("module", 128)));
    }
    let module = app
        .modules
        .get(&name)
        .ok_or_else(|| bad(BadRequest::UnknownModule(probe::shown(&name, 60))))?
        .clone();
    let raw = p.target.clone().ok_or(bad(BadRequest::NoTarget))?;
    let parsed = probe::parse_target(&raw, module.prober, &app.services).map_err(bad)?;
    if !app.allow.admits(&parsed.target.host) {
        return Err((
            StatusCode::FORBIDDEN,
            BadRequest::NotAllowed(probe::shown(&raw, 80)),
        ));
    }
    let header = match headers.get("x-prometheus-scrape-timeout-seconds") {
        None => None,
        Some(v) => Some(
            v.to_str()
                .map_err(|_| bad(BadRequest::Header("(not text)".into())))?
                .to_string(),
        ),
    };
    let timeout =
        probe::probe_timeout(header.as_deref(), app.offset, module.timeout).map_err(bad)?;
    Ok((p, module, parsed, timeout))
}

/// Decrements a gauge when dropped (a request abandoned while it queues).
struct Waiting<'a>(&'a App);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::SeqCst);
        self.0.own.queued.dec();
    }
}

async fn probe(State(app): State<Arc<App>>, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    let arrived = Instant::now();
    let q = q.unwrap_or_default();
    let (p, module, parsed, timeout) = match prepare(&app, &q, &headers) {
        Ok(v) => v,
        Err((status, e)) => {
            app.own.refused(if status == StatusCode::FORBIDDEN {
                Refusal::NotAllowed
            } else {
                Refusal::BadRequest
            });
            return one_line(status, &e.to_string());
        }
    };
    let deadline = arrived + timeout;
    let permit = match app.permits.clone().try_acquire_owned() {
        Ok(p) => p,
        Err(_) => {
            if app.waiting.fetch_add(1, Ordering::SeqCst) >= app.queue_max {
                app.waiting.fetch_sub(1, Ordering::SeqCst);
                app.own.refused(Refusal::Busy);
                return one_line(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "busy: every probe slot is taken and the queue is full (--max-concurrent)",
                );
            }
            app.own.queued.inc();
            let _waiting = Waiting(&app);
            // A slot that comes free too late would run a probe with no fair time left (a
            // silence of a few milliseconds proves nothing): it must leave at least half the
            // probe's time, or 1 s.
            let latest = deadline - (timeout / 2).min(Duration::from_secs(1));
            match tokio::time::timeout_at(latest, app.permits.clone().acquire_owned()).await {
                Ok(Ok(p)) => p,
                _ => {
                    app.own.refused(Refusal::Busy);
                    return one_line(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "busy: no probe slot came free in time for a fair probe (--max-concurrent)",
                    );
                }
            }
        }
    };
    let (reply, answer) = oneshot::channel();
    let target = p.target.clone().unwrap_or_default();
    let job = Job {
        parsed,
        module,
        target,
        debug: p.debug,
        deadline,
        _permit: permit,
        reply,
    };
    if app.jobs.send(job).is_err() {
        return one_line(StatusCode::SERVICE_UNAVAILABLE, "shutting down");
    }
    match answer.await {
        Ok(a) if p.debug => {
            let mut body = a.report;
            body.push_str("\nMetrics that would have been returned:\n");
            body.push_str(&a.metrics);
            text(body, "text/plain; charset=utf-8")
        }
        Ok(a) => text(a.metrics, metrics::CONTENT_TYPE),
        Err(_) => one_line(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the probe ended without an answer",
        ),
    }
}

/// Run the jobs on the current `LocalSet` until `stop` fires and every running probe ended.
pub(crate) async fn run_jobs(
    app: Arc<App>,
    mut jobs: mpsc::UnboundedReceiver<Job>,
    mut stop: oneshot::Receiver<()>,
) {
    let mut running = tokio::task::JoinSet::new();
    let mut stopping = false;
    loop {
        tokio::select! {
            job = jobs.recv(), if !stopping => match job {
                Some(job) => {
                    let app = app.clone();
                    running.spawn_local(async move { run_job(&app, job).await });
                }
                None => stopping = true,
            },
            _ = &mut stop, if !stopping => stopping = true,
            Some(_) = running.join_next() => {}
            else => break,
        }
        if stopping && running.is_empty() {
            break;
        }
    }
}

async fn run_job(app: &App, job: Job) {
    app.own.in_flight.inc();
    let done = probe::run(
        job.parsed,
        &job.module,
        job.deadline,
        &app.inspector,
        &app.allow,
        &app.services,
    )
    .await;
    app.own.in_flight.dec();
    let metrics_text = metrics::encode(&done.result);
    let last = done
        .hops
        .last()
        .map(|h| h.report.summary.clone())
        .unwrap_or_default();
    app.own.probed(
        &job.module.name,
        done.result.verdict.as_str(),
        done.result.success,
        done.result.duration,
    );
    let success = done.result.success;
    let verdict = done.result.verdict.as_str();
    let module = job.module.name.clone();
    let prober = job.module.prober;
    let done = Arc::new(done);
    let report = if job.debug {
        report_text(&done, &module, prober)
    } else {
        String::new()
    };
    let kept = (done.clone(), module.clone(), metrics_text.clone());
    app.recent.push(Entry {
        id: 0,
        at: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64),
        target: job.target,
        module,
        verdict,
        success,
        reason: last,
        report: Arc::new(move || {
            let (done, module, metrics) = &kept;
            format!(
                "{}\nMetrics that were returned:\n{metrics}",
                report_text(done, module, prober)
            )
        }),
    });
    let _ = job.reply.send(Answer {
        metrics: metrics_text,
        report,
    });
}

/// canreach's text report of every hop, and how the probe ended.
fn report_text(done: &probe::Done, module: &str, prober: super::config::Prober) -> String {
    let mut report = String::new();
    let many = done.hops.len() > 1;
    for (i, hop) in done.hops.iter().enumerate() {
        if many {
            let _ = writeln!(
                report,
                "── {} of {}: {}",
                i + 1,
                done.hops.len(),
                // The URL as typed or as a `Location` gave it: secrets masked, escaped.
                crate::escape::line(hop.url.as_deref().unwrap_or(""))
            );
        }
        let mut buf = Vec::new();
        let _ = crate::render::text::render(&hop.report, &mut buf);
        report.push_str(&String::from_utf8_lossy(&buf));
    }
    if let Some(note) = &done.redirect_note {
        let _ = writeln!(report, "\nThe probe failed on the redirect: {note}.");
    }
    let _ = writeln!(
        report,
        "\nprobe_success {} (module {}, prober {})",
        u8::from(done.result.success),
        crate::escape::escape(module),
        prober.as_str()
    );
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_bounded_and_single() {
        assert!(matches!(
            params(&"a".repeat(QUERY_MAX + 1)),
            Err(BadRequest::TooLong(..))
        ));
        assert!(matches!(
            params("target=a&target=b&module=m"),
            Err(BadRequest::Repeated("target"))
        ));
        let p = params("target=127.0.0.1%3A22&module=tcp_connect&debug=true&x=1").unwrap();
        assert_eq!(p.target.as_deref(), Some("127.0.0.1:22"));
        assert!(p.debug);
    }
}
