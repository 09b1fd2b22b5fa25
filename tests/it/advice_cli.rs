//! Advice against what the report already shows (issue 21, item 17): no step the evidence
//! rules out, the commands a person needs. Real servers on loopback; no root needed.

use crate::common;

use std::time::Duration;

/// A listener whose program and pid the report names: no `ss -ltnp` to find them.
#[test]
fn a_listener_the_report_names_needs_no_ss() {
    let addr = common::serve_each(|s| async move { drop(s) });
    let target = addr.to_string();
    let r = common::run_in(None, &["--json", "--tcp", &target]);
    let v = r.json();
    assert_eq!(v["verdict"], "service_error", "{}", r.stdout);
    assert_eq!(
        v["local"]["listeners"][0]["process"]["pid"],
        std::process::id(),
        "the report names the program: {}",
        r.stdout
    );
    for s in v["advice"].as_array().unwrap() {
        let cmd = s["command"].as_str().unwrap_or("");
        assert!(!cmd.contains("ss -ltnp"), "{cmd}: {}", r.stdout);
    }
}

/// A certificate this machine does not trust: the command that shows the chain, and the one
/// that trusts a CA.
#[test]
fn tls_advice_gives_the_commands_that_show_and_trust_the_chain() {
    // A self-signed certificate: canreach trusts it only if told to.
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let cfg = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![cert.der().clone()],
        rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    )
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(cfg));
    let addr = common::serve_each(move |s| {
        let acceptor = acceptor.clone();
        async move {
            let _ = tokio::time::timeout(Duration::from_secs(2), acceptor.accept(s)).await;
        }
    });
    let url = format!("https://127.0.0.1:{}/", addr.port());
    let r = common::run_in(None, &["--json", "--no-local", &url]);
    let v = r.json();
    assert_eq!(v["verdict"], "tls_error", "{}", r.stdout);
    let cmds: Vec<&str> = common::steps_for(&v, "tls_self_signed")
        .iter()
        .filter_map(|s| s["command"].as_str())
        .collect();
    let chain = format!(
        "openssl s_client -connect 127.0.0.1:{} -showcerts </dev/null",
        addr.port()
    );
    assert!(cmds.contains(&chain.as_str()), "{cmds:?}");
    assert!(
        cmds.iter().any(
            |c| c.contains("cp CA.crt /usr/local/share/ca-certificates/")
                && c.contains("update-ca-certificates")
        ),
        "{cmds:?}"
    );
}
