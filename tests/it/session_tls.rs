//! The TLS stage against in-process rustls servers on 127.0.0.1, with certificates made at test
//! time by rcgen: each way a handshake can fail gives its own typed fact.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use canreach::session::tls::{
    self, AfterHandshake, TlsAlert, TlsFacts, TlsFailure, TlsRequest, TlsVersion, TrustStore,
    Versions,
};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType, IsCa, KeyPair,
    date_time_ymd,
};
use rustls::crypto::ring;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, SupportedProtocolVersion};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

static TLS12_ONLY: &[&SupportedProtocolVersion] = &[&rustls::version::TLS12];
static TLS13_ONLY: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13];

type Issuer = CertifiedIssuer<'static, KeyPair>;

fn ca(name: &str, parent: Option<&Issuer>) -> Issuer {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::CommonName, name);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let key = KeyPair::generate().unwrap();
    match parent {
        None => CertifiedIssuer::self_signed(p, key).unwrap(),
        Some(parent) => CertifiedIssuer::signed_by(p, key, parent).unwrap(),
    }
}

struct Leaf {
    der: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
}

fn leaf_with(
    names: &[&str],
    issuer: Option<&Issuer>,
    edit: impl FnOnce(&mut CertificateParams),
) -> Leaf {
    let mut p =
        CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    p.distinguished_name.push(DnType::CommonName, names[0]);
    edit(&mut p);
    let key = KeyPair::generate().unwrap();
    let cert = match issuer {
        Some(i) => p.signed_by(&key, i).unwrap(),
        None => p.self_signed(&key).unwrap(),
    };
    Leaf {
        der: cert.der().clone(),
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    }
}

fn leaf(issuer: &Issuer) -> Leaf {
    leaf_with(&["localhost", "127.0.0.1"], Some(issuer), |_| {})
}

/// Root → intermediate, the usual private PKI.
struct Pki {
    root: Issuer,
    int: Issuer,
}

fn pki(prefix: &str) -> Pki {
    let root = ca(&format!("{prefix} Root CA"), None);
    let int = ca(&format!("{prefix} Intermediate"), Some(&root));
    Pki { root, int }
}

fn trust(root: &Issuer) -> TrustStore {
    TrustStore::from_certs([root.der().clone()]).unwrap()
}

struct ServerSpec {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    versions: &'static [&'static SupportedProtocolVersion],
    client_ca: Option<CertificateDer<'static>>,
    /// With `client_ca`: a client certificate is asked for but not required.
    client_optional: bool,
    alpn: Vec<Vec<u8>>,
}

fn spec(chain: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>) -> ServerSpec {
    ServerSpec {
        chain,
        key,
        versions: rustls::ALL_VERSIONS,
        client_ca: None,
        client_optional: false,
        alpn: vec![],
    }
}

/// A rustls server for one connection; it holds the connection open (reading) for a while.
async fn tls_server(s: ServerSpec) -> SocketAddr {
    let provider = Arc::new(ring::default_provider());
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(s.versions)
        .unwrap();
    let builder = match s.client_ca {
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            roots.add(ca).unwrap();
            let mut v = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            if s.client_optional {
                v = v.allow_unauthenticated();
            }
            builder.with_client_cert_verifier(v.build().unwrap())
        }
        None => builder.with_no_client_auth(),
    };
    let mut cfg = builder.with_single_cert(s.chain, s.key).unwrap();
    cfg.alpn_protocols = s.alpn;
    let acceptor = TlsAcceptor::from(Arc::new(cfg));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let Ok((tcp, _)) = listener.accept().await else {
            return;
        };
        let _ = tokio::time::timeout(Duration::from_secs(3), async move {
            if let Ok(mut tls) = acceptor.accept(tcp).await {
                let mut buf = [0u8; 64];
                let _ = tls.read(&mut buf).await;
            }
        })
        .await;
    });
    addr
}

async fn client(addr: SocketAddr, name: &str, roots: &TrustStore, versions: Versions) -> TlsFacts {
    let stream = TcpStream::connect(addr).await.unwrap();
    let req = TlsRequest {
        server_name: name,
        alpn: &[b"h2", b"http/1.1"],
        roots,
        versions,
    };
    let deadline = Instant::now() + Duration::from_secs(3);
    tls::handshake_session(stream, &req, deadline).await.0
}

#[tokio::test]
async fn valid_chain_gives_version_suite_alpn_and_chain() {
    let p = pki("Good");
    let l = leaf(&p.int);
    let mut s = spec(vec![l.der.clone(), p.int.der().clone()], l.key);
    s.alpn = vec![b"h2".to_vec()];
    let addr = tls_server(s).await;
    let f = client(addr, "localhost", &trust(&p.root), Versions::Any).await;
    assert_eq!(f.failure, None, "{f:?}");
    assert_eq!(f.version, Some(TlsVersion::Tls13));
    assert!(f.cipher_suite.as_deref().unwrap().starts_with("TLS13_"));
    assert_eq!(f.alpn.as_deref(), Some(&b"h2"[..]));
    assert_eq!(f.chain.len(), 2);
    let leaf = &f.chain[0];
    assert_eq!(leaf.subject, "CN=localhost");
    assert_eq!(leaf.issuer, "CN=Good Intermediate");
    assert_eq!(leaf.dns_names, vec!["localhost".to_string()]);
    assert_eq!(
        leaf.ip_addresses,
        vec!["127.0.0.1".parse::<std::net::IpAddr>().unwrap()]
    );
    assert!(!leaf.self_signed);
    assert!(f.chain[1].is_ca);
    let digest = ::ring::digest::digest(&::ring::digest::SHA256, &l.der);
    assert_eq!(&leaf.sha256[..], digest.as_ref());
    assert!(leaf.not_after > leaf.not_before);
    assert_eq!(f.client_cert, None);
    assert_eq!(f.trust_anchors, 1);
}

#[tokio::test]
async fn ip_literal_server_name_and_tls12() {
    let p = pki("Ip");
    let l = leaf(&p.int);
    let mut s = spec(vec![l.der.clone(), p.int.der().clone()], l.key);
    s.versions = TLS12_ONLY;
    let addr = tls_server(s).await;
    let f = client(addr, "127.0.0.1", &trust(&p.root), Versions::Any).await;
    assert_eq!(f.failure, None, "{f:?}");
    assert_eq!(f.version, Some(TlsVersion::Tls12));
    assert_eq!(f.alpn, None);
}

#[tokio::test]
async fn expired() {
    let p = pki("Exp");
    let l = leaf_with(&["localhost"], Some(&p.int), |c| {
        c.not_before = date_time_ymd(2000, 1, 1);
        c.not_after = date_time_ymd(2001, 1, 1);
    });
    let addr = tls_server(spec(vec![l.der, p.int.der().clone()], l.key)).await;
    let f = client(addr, "localhost", &trust(&p.root), Versions::Any).await;
    assert_eq!(
        f.failure,
        Some(TlsFailure::Expired {
            not_after: 978_307_200,
            subject: "CN=localhost".into()
        })
    );
    // The chain is known even though verification failed.
    assert_eq!(f.chain.len(), 2);
    assert_eq!(f.chain[0].not_after, 978_307_200);
    assert!(f.verify_error.is_some());
}

#[tokio::test]
async fn not_yet_valid() {
    let p = pki("Early");
    let l = leaf_with(&["localhost"], Some(&p.int), |c| {
        c.not_before = date_time_ymd(2999, 1, 1);
        c.not_after = date_time_ymd(3000, 1, 1);
    });
    let addr = tls_server(spec(vec![l.der, p.int.der().clone()], l.key)).await;
    let f = client(addr, "localhost", &trust(&p.root), Versions::Any).await;
    assert!(
        matches!(&f.failure, Some(TlsFailure::NotYetValid { subject, .. }) if subject == "CN=localhost"),
        "{f:?}"
    );
}

#[tokio::test]
async fn wrong_name() {
    let p = pki("Name");
    let l = leaf_with(
        &["other.example", "www.other.example"],
        Some(&p.int),
        |_| {},
    );
    let addr = tls_server(spec(vec![l.der, p.int.der().clone()], l.key)).await;
    let f = client(addr, "localhost", &trust(&p.root), Versions::Any).await;
    assert_eq!(
        f.failure,
        Some(TlsFailure::WrongName {
            presented: vec!["other.example".into(), "www.other.example".into()]
        })
    );
}

#[tokio::test]
async fn self_signed() {
    let p = pki("Unrelated");
    let l = leaf_with(&["localhost"], None, |_| {});
    let addr = tls_server(spec(vec![l.der], l.key)).await;
    let f = client(addr, "localhost", &trust(&p.root), Versions::Any).await;
    assert_eq!(f.failure, Some(TlsFailure::SelfSigned), "{f:?}");
    assert!(f.chain[0].self_signed);
}

#[tokio::test]
async fn self_signed_ca_as_leaf() {
    // What `openssl req -x509` makes: CA:TRUE, used as a server certificate.
    let p = pki("Unrelated2");
    let l = leaf_with(&["localhost"], None, |c| {
        c.is_ca = IsCa::Ca(BasicConstraints::Unconstrained)
    });
    let addr = tls_server(spec(vec![l.der], l.key)).await;
    let f = client(addr, "localhost", &trust(&p.root), Versions::Any).await;
    assert_eq!(f.failure, Some(TlsFailure::SelfSigned), "{f:?}");
}

#[tokio::test]
async fn unknown_issuer() {
    let trusted = pki("Trusted");
    let other = pki("Other");
    let l = leaf(&other.int);
    let addr = tls_server(spec(vec![l.der, other.int.der().clone()], l.key)).await;
    let f = client(addr, "localhost", &trust(&trusted.root), Versions::Any).await;
    assert_eq!(
        f.failure,
        Some(TlsFailure::UnknownIssuer {
            issuer: "CN=Other Root CA".into(),
            public_ca_elsewhere: false
        })
    );
}

#[tokio::test]
async fn unknown_issuer_named_like_a_public_root() {
    // A CA with the distinguished name of a public root (not its key): the second opinion
    // knows the name, so the issuer is reported as a public CA this machine does not trust.
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name = DistinguishedName::new();
    p.distinguished_name.push(DnType::CountryName, "US");
    p.distinguished_name
        .push(DnType::OrganizationName, "Internet Security Research Group");
    p.distinguished_name
        .push(DnType::CommonName, "ISRG Root X1");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let fake = CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap();
    let l = leaf(&fake);
    let trusted = pki("Local");
    let addr = tls_server(spec(vec![l.der], l.key)).await;
    let f = client(addr, "localhost", &trust(&trusted.root), Versions::Any).await;
    assert_eq!(
        f.failure,
        Some(TlsFailure::UnknownIssuer {
            issuer: "C=US, O=Internet Security Research Group, CN=ISRG Root X1".into(),
            public_ca_elsewhere: true
        })
    );
}

#[tokio::test]
async fn missing_intermediate() {
    let p = pki("Half");
    let l = leaf(&p.int);
    // Only the leaf: the intermediate is not sent.
    let addr = tls_server(spec(vec![l.der], l.key)).await;
    let f = client(addr, "localhost", &trust(&p.root), Versions::Any).await;
    assert_eq!(
        f.failure,
        Some(TlsFailure::MissingIntermediate {
            issuer: "CN=Half Intermediate".into()
        })
    );
    assert_eq!(f.chain.len(), 1);
}

async fn client_cert_required(versions: &'static [&'static SupportedProtocolVersion]) -> TlsFacts {
    let p = pki("Srv");
    let clients = ca("Client CA", None);
    let l = leaf(&p.int);
    let mut s = spec(vec![l.der, p.int.der().clone()], l.key);
    s.versions = versions;
    s.client_ca = Some(clients.der().clone());
    let addr = tls_server(s).await;
    client(addr, "localhost", &trust(&p.root), Versions::Any).await
}

#[tokio::test]
async fn client_cert_required_tls13() {
    let f = client_cert_required(TLS13_ONLY).await;
    assert_eq!(
        f.failure,
        Some(TlsFailure::ClientCertRequired {
            issuers: vec!["CN=Client CA".into()]
        }),
        "{f:?}"
    );
    // The refusal came after the handshake, on the first read.
    assert!(
        matches!(f.after, Some(AfterHandshake::Alert(a)) if a == TlsAlert::from(rustls::AlertDescription::CertificateRequired))
    );
    assert_eq!(f.version, Some(TlsVersion::Tls13));
    assert!(!f.client_cert.unwrap().went_on_without);
}

#[tokio::test]
async fn client_cert_required_tls12() {
    let f = client_cert_required(TLS12_ONLY).await;
    assert_eq!(
        f.failure,
        Some(TlsFailure::ClientCertRequired {
            issuers: vec!["CN=Client CA".into()]
        }),
        "{f:?}"
    );
    assert_eq!(f.after, None);
}

#[tokio::test]
async fn client_cert_optional_is_not_a_failure() {
    let p = pki("Opt");
    let clients = ca("Optional Client CA", None);
    let l = leaf(&p.int);
    let mut s = spec(vec![l.der, p.int.der().clone()], l.key);
    s.client_ca = Some(clients.der().clone());
    s.client_optional = true;
    let addr = tls_server(s).await;
    let f = client(addr, "localhost", &trust(&p.root), Versions::Any).await;
    assert_eq!(f.failure, None, "{f:?}");
    assert_eq!(f.after, Some(AfterHandshake::SentNothing));
    let req = f.client_cert.unwrap();
    assert_eq!(req.issuers, vec!["CN=Optional Client CA".to_string()]);
    assert!(req.went_on_without);
}

#[tokio::test]
async fn protocol_mismatch() {
    let p = pki("Ver");
    let l = leaf(&p.int);
    let mut s = spec(vec![l.der, p.int.der().clone()], l.key);
    s.versions = TLS13_ONLY;
    let addr = tls_server(s).await;
    let f = client(addr, "localhost", &trust(&p.root), Versions::Only12).await;
    assert!(
        matches!(&f.failure, Some(TlsFailure::ProtocolMismatch { alert: Some(a), .. }) if *a == TlsAlert::from(rustls::AlertDescription::ProtocolVersion)),
        "{f:?}"
    );
}

#[tokio::test]
async fn plain_http_server_is_not_tls_and_its_words_are_kept() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 512];
        let _ = s.read(&mut buf).await;
        let _ = s
            .write_all(b"HTTP/1.1 400 Bad Request\r\nServer: nginx\r\nContent-Length: 0\r\n\r\n")
            .await;
    });
    let f = client(addr, "localhost", &TrustStore::system(), Versions::Any).await;
    match f.failure {
        Some(TlsFailure::NotTls { first_bytes }) => {
            assert!(first_bytes.starts_with(b"HTTP/1.1 400 Bad Request\r\n"));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn ssh_port_is_not_tls() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let _ = s.write_all(b"SSH-2.0-OpenSSH_9.2\r\n").await;
        let mut buf = [0u8; 512];
        let _ = s.read(&mut buf).await;
        let _ = s.write_all(b"Invalid SSH identification string.\r\n").await;
    });
    let f = client(addr, "localhost", &TrustStore::system(), Versions::Any).await;
    match f.failure {
        Some(TlsFailure::NotTls { first_bytes }) => assert!(first_bytes.starts_with(b"SSH-2.0-")),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn silent_server_is_no_reply_within_the_deadline() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (s, _) = listener.accept().await.unwrap();
        tokio::time::sleep(Duration::from_secs(3)).await;
        drop(s);
    });
    let stream = TcpStream::connect(addr).await.unwrap();
    let start = Instant::now();
    let f = tls::handshake(
        stream,
        "localhost",
        &[],
        &TrustStore::system(),
        start + Duration::from_millis(300),
    )
    .await;
    assert_eq!(f.failure, Some(TlsFailure::NoReply));
    assert!(start.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn handshake_that_stops_midway_is_stalled() {
    // The start of a ServerHello record, then nothing: what a path-MTU black hole looks like
    // when the first segments pass and the full-size ones do not.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 2048];
        let _ = s.read(&mut buf).await;
        let _ = s
            .write_all(&[0x16, 0x03, 0x03, 0x10, 0x00, 0x02, 0x00])
            .await;
        tokio::time::sleep(Duration::from_secs(3)).await;
    });
    let stream = TcpStream::connect(addr).await.unwrap();
    let start = Instant::now();
    let f = tls::handshake(
        stream,
        "[::1]",
        &[],
        &TrustStore::system(),
        start + Duration::from_millis(300),
    )
    .await;
    assert_eq!(f.failure, Some(TlsFailure::Stalled { received: 7 }));
    assert!(start.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn server_closing_at_once_is_closed() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 512];
        let _ = s.read(&mut buf).await;
        drop(s);
    });
    let f = client(addr, "localhost", &TrustStore::system(), Versions::Any).await;
    assert!(
        matches!(f.failure, Some(TlsFailure::Closed | TlsFailure::Reset)),
        "{f:?}"
    );
}

#[test]
fn empty_trust_store_is_an_error() {
    assert!(TrustStore::from_certs(Vec::<CertificateDer<'static>>::new()).is_err());
    assert!(TrustStore::from_certs([CertificateDer::from(vec![1u8, 2, 3])]).is_err());
}
