//! The integration tests, as one test binary: each module was a test binary of its own, and
//! each of those linked the whole crate again. `cargo test lab_local::` runs one module's
//! tests; the helpers (the namespace lab, fake servers) are in `common`.

#[macro_use]
mod common;

mod advice_cli;
mod app_cli;
mod app_truth;
mod cli;
mod dns_fake;
mod dns_idn;
mod finding_ids;
mod findings_cli;
mod fleet_browser;
mod fleet_compat;
mod fleet_prometheus;
mod host_proof;
mod hostile_cli;
mod hostile_lab;
mod lab_app;
mod lab_dns;
mod lab_local;
mod lab_members;
mod lab_pipeline;
mod lab_ratelimit;
mod lab_services;
mod lab_silence;
mod lab_truth;
mod lab_truth_local;
mod lab_udp;
mod lab_udp_protocol;
mod lab_workflow;
mod nagios_cli;
mod proxy_cli;
mod serve_cli;
mod serve_lab;
mod service_fakes;
mod service_hostile;
mod service_starttls;
mod session_after;
mod session_http;
mod session_lab_mtu;
mod session_mss;
mod session_proxy;
mod session_tls;
mod session_waiting;
mod session_watch;
mod words_cli;
mod workflow_cli;
