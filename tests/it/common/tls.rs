//! TLS servers for tests: a CA made at test time and a leaf it signs, as a rustls acceptor.

use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A server's acceptor and the CA that signed its certificate.
pub struct TestTls {
    pub acceptor: tokio_rustls::TlsAcceptor,
    /// The CA certificate, to trust (`TrustStore::from_certs`).
    pub ca_der: CertificateDer<'static>,
    /// The same as PEM, for `SSL_CERT_FILE`.
    pub ca_pem: String,
}

/// A CA named `ca_name` and a leaf for `names` (DNS names or IP addresses) it signs.
pub fn ca_signed(ca_name: &str, names: Vec<String>) -> TestTls {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::CommonName, ca_name);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let root = CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(names)
        .unwrap()
        .signed_by(&key, &root)
        .unwrap();
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![leaf.der().clone()],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    )
    .unwrap();
    TestTls {
        acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(cfg)),
        ca_der: root.der().clone(),
        ca_pem: root.pem(),
    }
}

/// Names enough for a certificate flight of several full-size segments: the lab server's
/// addresses and 150 long names (what a path-MTU black hole swallows).
pub fn many_names() -> Vec<String> {
    let mut names = vec![super::SERVER_V4.to_string(), super::SERVER_V6.to_string()];
    names.extend((0..150).map(|i| format!("name-{i}.a-rather-long-domain.lab.example")));
    names
}
