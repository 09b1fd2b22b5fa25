//! The TLS handshake, and everything it showed: version, suite, ALPN, the certificate chain the
//! server presented, and — when it failed — why, as a typed [`TlsFailure`].
//!
//! rustls 0.23 with the *ring* provider. Two hooks keep what rustls would otherwise drop:
//!
//! - `RecordingVerifier` delegates to rustls's `WebPkiServerVerifier` but first records the
//!   chain (DER) and then the error. After a failed verification rustls's
//!   `peer_certificates()` is `None`, so without it an expired certificate could not be shown.
//! - `RecordingClientAuth` records the issuers a server asking for a client certificate
//!   accepts (`certificate_authorities`), and sends none.
//!
//! The TCP stream is wrapped in [`super::Recording`], which keeps the first bytes the server
//! sent: a plain-text server answering a ClientHello with `HTTP/1.1 400 …` is recognised
//! ([`TlsFailure::NotTls`]) and its words kept.
//!
//! With TLS 1.3 a server that *requires* a client certificate completes the handshake and
//! sends its refusal (`certificate_required` alert) after it read the client's Finished, so
//! when a certificate was asked for, a short bounded read follows the handshake (see
//! [`post_handshake_window`]).

use std::net::IpAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ResolvesClientCert, WantsClientCert};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms, ring};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    AlertDescription, CertificateError, ClientConfig, ConfigBuilder, DigitallySignedStruct,
    RootCertStore, SignatureScheme,
};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate, X509Name};

use super::{FIRST_BYTES_MAX, Recorded, Recording, looks_like_tls_record, snapshot};

/// An established TLS session over the recorded TCP stream: hand it to [`super::http`].
pub(crate) type TlsSession = tokio_rustls::client::TlsStream<Recording<TcpStream>>;

/// Why a trust store could not be built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TrustError {
    /// None of the certificates given could be used as a trust anchor.
    #[error("no usable trust anchor among {given} certificate(s)")]
    NoAnchors { given: usize },
}

/// Why `--cacert FILE` could not be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CaFileError {
    #[error(transparent)]
    Read(#[from] crate::dns::files::FileError),
    #[error("{path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)")]
    NoCertificates { path: String },
    #[error("{path} is not valid PEM: {problem}")]
    Pem { path: String, problem: String },
    #[error("none of the {given} certificate(s) in {path} can be trusted as a CA")]
    NoAnchors { path: String, given: usize },
}

/// The largest `--cacert` bundle read (Debian's whole bundle is ~220 KB).
pub(crate) const CA_FILE_MAX: u64 = 8 * 1024 * 1024;

/// The certificates this client trusts, and how they were loaded.
#[derive(Debug, Clone)]
pub struct TrustStore {
    roots: Arc<RootCertStore>,
    /// Every certificate the store was given, as given: a server certificate that is one of
    /// them, byte for byte, is trusted as it is, as OpenSSL (and so curl) trusts it (see
    /// [`trusted_as_is`]). Kept whole rather than hashed: the store is loaded on every run,
    /// the comparison happens only after a verification failed.
    given: Arc<[CertificateDer<'static>]>,
    /// `--insecure`: verify for the record, then go on whatever the outcome.
    skip_verification: bool,
    /// Subjects of the anchors, as x509-parser prints them, to match against issuers.
    subjects: Vec<String>,
    /// Problems met while loading (unreadable files, unparsable certificates): facts, since
    /// an empty store explains every "unknown issuer".
    pub load_errors: Vec<String>,
    /// Only the bundle file of a store that has directories too ([`TrustStore::system_quick`]):
    /// an unknown issuer must be asked of [`TrustStore::system`] before it is reported.
    partial: bool,
}

impl TrustStore {
    /// This machine's trust store, loaded once per process with `rustls-native-certs`, which
    /// honours `SSL_CERT_FILE` / `SSL_CERT_DIR` as OpenSSL does (and so curl on this machine).
    pub fn system() -> Arc<TrustStore> {
        static SYSTEM: OnceLock<Arc<TrustStore>> = OnceLock::new();
        Arc::clone(SYSTEM.get_or_init(|| {
            if let Some(store) = TrustStore::bundle_not_a_file() {
                return store;
            }
            let loaded = rustls_native_certs::load_native_certs();
            let mut roots = RootCertStore::empty();
            let (_, ignored) = roots.add_parsable_certificates(borrowed(&loaded.certs));
            let mut load_errors: Vec<String> =
                loaded.errors.iter().map(|e| e.to_string()).collect();
            if ignored > 0 {
                load_errors.push(format!("{ignored} certificate(s) could not be parsed"));
            }
            Arc::new(TrustStore::from_root_store(
                roots,
                loaded.certs,
                load_errors,
            ))
        }))
    }

    /// The system store's bundle file alone, when the system store also has certificate
    /// directories to read; else [`TrustStore::system`] itself.
    ///
    /// rustls-native-certs reads every file of every directory (on Debian, `/etc/ssl/certs`:
    /// ~150 files besides the bundle that holds the same certificates) where OpenSSL looks a
    /// directory up lazily, by hash, only for an issuer it did not find: reading them all was
    /// most of a TLS check of a local server. So the bundle is read first, and the whole store
    /// only when the bundle did not know the issuer (`session::stage` then asks again).
    /// Which file and directories: `SSL_CERT_FILE`/`SSL_CERT_DIR` as rustls-native-certs reads
    /// them (a file alone when only the file is set), else OpenSSL's usual places
    /// (openssl-probe, as rustls-native-certs does).
    pub(crate) fn system_quick() -> Arc<TrustStore> {
        static QUICK: OnceLock<Arc<TrustStore>> = OnceLock::new();
        Arc::clone(QUICK.get_or_init(|| {
            if let Some(store) = TrustStore::bundle_not_a_file() {
                return store;
            }
            let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
            let (file, dirs) = match (env("SSL_CERT_FILE"), env("SSL_CERT_DIR")) {
                (file, Some(_)) => (file.map(std::path::PathBuf::from), true),
                (Some(_), None) => (None, false),
                (None, None) => {
                    let p = openssl_probe::probe();
                    (p.cert_file, !p.cert_dir.is_empty())
                }
            };
            match file {
                Some(file) if dirs => {
                    let loaded = rustls_native_certs::load_certs_from_paths(Some(&file), None);
                    let mut roots = RootCertStore::empty();
                    let (_, ignored) = roots.add_parsable_certificates(borrowed(&loaded.certs));
                    if roots.is_empty() || !loaded.errors.is_empty() || ignored > 0 {
                        // Nothing quick to gain from a bundle that does not load cleanly.
                        return TrustStore::system();
                    }
                    let mut store = TrustStore::from_root_store(roots, loaded.certs, vec![]);
                    store.partial = true;
                    Arc::new(store)
                }
                _ => TrustStore::system(),
            }
        }))
    }

    /// An empty store, with the reason, when the bundle file is there but is no regular file.
    /// rustls-native-certs opens it with a blocking `open` (it reads only regular files from
    /// the directories), and a FIFO put at /etc/ssl/certs/ca-certificates.crt would hold the
    /// runtime's one thread, and so the check, past its deadline.
    fn bundle_not_a_file() -> Option<Arc<TrustStore>> {
        let file = std::env::var_os("SSL_CERT_FILE")
            .filter(|v| !v.is_empty())
            .map(std::path::PathBuf::from)
            .or_else(|| openssl_probe::probe().cert_file)?;
        if crate::dns::files::regular_or_absent(&file) {
            return None;
        }
        let why = format!("{} is not a regular file: not read", file.display());
        Some(Arc::new(TrustStore::from_root_store(
            RootCertStore::empty(),
            vec![],
            vec![why],
        )))
    }

    /// Is this the bundle file alone ([`TrustStore::system_quick`])?
    pub(crate) fn is_partial(&self) -> bool {
        self.partial
    }

    /// A store trusting nothing: for a session that speaks no TLS.
    pub fn empty() -> Arc<TrustStore> {
        Arc::new(TrustStore::from_root_store(
            RootCertStore::empty(),
            vec![],
            vec![],
        ))
    }

    /// A store trusting exactly `certs` (tests; `--cacert`).
    pub fn from_certs<'a>(
        certs: impl IntoIterator<Item = CertificateDer<'a>>,
    ) -> Result<TrustStore, TrustError> {
        let certs: Vec<CertificateDer<'static>> =
            certs.into_iter().map(|c| c.into_owned()).collect();
        let given = certs.len();
        let mut roots = RootCertStore::empty();
        let (_, ignored) = roots.add_parsable_certificates(borrowed(&certs));
        if roots.is_empty() {
            return Err(TrustError::NoAnchors { given });
        }
        let errors = if ignored > 0 {
            vec![format!("{ignored} certificate(s) could not be parsed")]
        } else {
            vec![]
        };
        Ok(TrustStore::from_root_store(roots, certs, errors))
    }

    /// `--cacert FILE`: the PEM certificates of FILE, and only them, as curl's `--cacert`
    /// (read bounded, a regular file only: it must not block on a FIFO).
    pub(crate) fn from_pem_file(path: &std::path::Path) -> Result<TrustStore, CaFileError> {
        use rustls::pki_types::pem::PemObject;
        let shown = || crate::escape::escape(&path.display().to_string()).into_owned();
        let bytes = crate::dns::files::read_bounded(path, CA_FILE_MAX)?;
        let certs = CertificateDer::pem_slice_iter(&bytes)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| CaFileError::Pem {
                path: shown(),
                problem: e.to_string(),
            })?;
        if certs.is_empty() {
            return Err(CaFileError::NoCertificates { path: shown() });
        }
        TrustStore::from_certs(certs).map_err(|e| match e {
            TrustError::NoAnchors { given } => CaFileError::NoAnchors {
                path: shown(),
                given,
            },
        })
    }

    /// The same store, for `--insecure`: every chain is still verified, and the outcome
    /// recorded ([`TlsFacts::unverified`]), but the handshake goes on whatever it is.
    pub(crate) fn insecure(&self) -> TrustStore {
        TrustStore {
            skip_verification: true,
            ..self.clone()
        }
    }

    fn from_root_store(
        roots: RootCertStore,
        given: Vec<CertificateDer<'static>>,
        load_errors: Vec<String>,
    ) -> TrustStore {
        let subjects = roots
            .subjects()
            .iter()
            .filter_map(|dn| {
                X509Name::from_der(dn.as_ref())
                    .ok()
                    .map(|(_, n)| clean(&n.to_string()))
            })
            .collect();
        TrustStore {
            roots: Arc::new(roots),
            given: given.into(),
            subjects,
            load_errors,
            partial: false,
            skip_verification: false,
        }
    }

    /// Number of trust anchors.
    pub(crate) fn len(&self) -> usize {
        self.roots.len()
    }

    /// Whether the store has no anchor at all (nothing will verify).
    pub(crate) fn is_empty(&self) -> bool {
        self.roots.is_empty()
    }

    /// Whether `name` (as x509-parser prints it) is the subject of a trust anchor.
    pub(crate) fn has_subject(&self, name: &str) -> bool {
        self.subjects.iter().any(|s| s == name)
    }
}

fn sha256(der: &[u8]) -> [u8; 32] {
    let digest = ::ring::digest::digest(&::ring::digest::SHA256, der);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// Views of `certs` that borrow them (a trust store parses what it needs and keeps no DER).
fn borrowed<'a>(certs: &'a [CertificateDer<'_>]) -> impl Iterator<Item = CertificateDer<'a>> {
    certs.iter().map(|c| CertificateDer::from(c.as_ref()))
}

/// What a check's TLS handshakes trust: `--cacert` and `--insecure`. `Copy`, so the
/// pipeline's options stay plain values; a `--cacert` store is loaded once per process.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Trust {
    /// `--cacert FILE`: only these certificates (`None`: this machine's store).
    pub cacert: Option<&'static TrustStore>,
    /// `--insecure`: verify for the record, and go on whatever the outcome.
    pub insecure: bool,
}

impl Trust {
    /// The store a TLS check uses.
    pub(crate) fn roots(&self) -> Arc<TrustStore> {
        match (self.cacert, self.insecure) {
            (Some(s), false) => Arc::new(s.clone()),
            (Some(s), true) => Arc::new(s.insecure()),
            (None, false) => TrustStore::system_quick(),
            // What verification would say is reported: with the whole store, as OpenSSL
            // would have looked (the bundle alone could miss an issuer).
            (None, true) => Arc::new(TrustStore::system().insecure()),
        }
    }
}

/// The public web PKI (Mozilla's list, from `webpki-roots`): the second opinion that tells a
/// public CA this machine does not trust from a private CA.
fn public_roots() -> &'static TrustStore {
    static PUBLIC: OnceLock<TrustStore> = OnceLock::new();
    PUBLIC.get_or_init(|| {
        let roots = RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        TrustStore::from_root_store(roots, vec![], vec![])
    })
}

/// Which protocol versions to offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Versions {
    /// TLS 1.2 and 1.3 (the normal client).
    #[default]
    Any,
    /// TLS 1.2 only: a retry that tells "the server needs TLS 1.2" apart.
    Only12,
}

/// What to ask for in a handshake.
#[derive(Debug, Clone, Copy)]
pub struct TlsRequest<'a> {
    /// Sent as SNI and verified against the certificate; an IP literal is allowed (no SNI is
    /// sent then, and the certificate must name the address).
    pub server_name: &'a str,
    /// ALPN protocols to offer (`b"h2"`, `b"http/1.1"`); empty offers none.
    pub alpn: &'a [&'a [u8]],
    pub roots: &'a TrustStore,
    pub versions: Versions,
}

/// A negotiated protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsVersion {
    Tls12,
    Tls13,
    /// Anything else, by its wire number.
    Other(u16),
}

/// One certificate of the presented chain, as parsed (never trusted: the server chose it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFacts {
    /// RFC 4514-style distinguished names, e.g. `CN=example.com, O=Example`.
    pub subject: String,
    pub issuer: String,
    /// DNS names in the subjectAltName extension.
    pub dns_names: Vec<String>,
    /// IP addresses in the subjectAltName extension.
    pub ip_addresses: Vec<IpAddr>,
    /// Validity, unix seconds.
    pub not_before: i64,
    pub not_after: i64,
    /// SHA-256 of the DER, as `openssl x509 -fingerprint -sha256` shows it (without colons).
    pub sha256: [u8; 32],
    /// Subject equals issuer and the signature verifies with the certificate's own key.
    pub self_signed: bool,
    /// basicConstraints CA:TRUE.
    pub is_ca: bool,
    /// Set when the DER could not be parsed (the other fields are then empty / zero).
    pub parse_error: Option<String>,
}

impl CertFacts {
    /// The SHA-256 fingerprint as upper-case hex pairs separated by colons.
    pub(crate) fn fingerprint_hex(&self) -> String {
        self.sha256
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":")
    }
}

/// What a server asking for a client certificate accepts, and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCertRequest {
    /// The accepted issuers' names (may be empty: "any").
    pub issuers: Vec<String>,
    /// `true` when the handshake completed and the server went on without one (optional
    /// client authentication); `false` when it refused, or the handshake failed first for
    /// another reason (then see [`TlsFacts::failure`]).
    pub went_on_without: bool,
}

/// What the server did right after a handshake in which it asked for a client certificate
/// (the only case where this client reads before speaking).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterHandshake {
    /// Nothing within the window: it waits for the client (normal).
    SentNothing,
    /// It sent application data first (the bytes, ≤ 1 KiB; read from the session, so the
    /// next reader does not see them again).
    Data(Vec<u8>),
    /// It closed the connection.
    Closed,
    /// It reset the connection.
    Reset,
    /// It sent an alert.
    Alert(TlsAlert),
    /// The read failed otherwise.
    Failed(TlsError),
}

impl AfterHandshake {
    /// The server turned the client away after the handshake (an alert, a close, a reset,
    /// a failed read): it wanted a client certificate.
    pub(crate) fn refused(&self) -> bool {
        matches!(
            self,
            AfterHandshake::Alert(_)
                | AfterHandshake::Failed(_)
                | AfterHandshake::Closed
                | AfterHandshake::Reset
        )
    }
}

/// Why the handshake did not give a usable, verified session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsFailure {
    /// A certificate of the chain had expired (`subject` names which).
    Expired { not_after: i64, subject: String },
    /// A certificate of the chain is not valid yet (clock, or a certificate issued early).
    NotYetValid { not_before: i64, subject: String },
    /// The leaf does not name the host asked for; what it names instead.
    WrongName { presented: Vec<String> },
    /// The server sent a self-signed leaf.
    SelfSigned,
    /// The chain ends at an issuer this machine does not trust. `public_ca_elsewhere`: the
    /// public web PKI would have accepted it (this machine's store lacks a public CA).
    UnknownIssuer {
        issuer: String,
        public_ca_elsewhere: bool,
    },
    /// The leaf's issuer is neither among the certificates sent nor trusted: most likely the
    /// server does not send its intermediate certificate (see [`chain_failure`] for the rule).
    MissingIntermediate { issuer: String },
    /// The server wants a client certificate, from one of these issuers.
    ClientCertRequired { issuers: Vec<String> },
    /// No common version or cipher suite, or a protocol-level refusal: the server's alert, or
    /// what this client found missing in the server's answer.
    ProtocolMismatch {
        alert: Option<TlsAlert>,
        incompatible: Option<Incompatible>,
    },
    /// The server sent another alert (e.g. `unrecognized_name`, `access_denied`).
    Alert { alert: TlsAlert },
    /// The server does not speak TLS: what it sent instead (≤ 1 KiB).
    NotTls { first_bytes: Vec<u8> },
    /// Nothing at all came back before the deadline.
    NoReply,
    /// Part of the server's handshake came, then nothing before the deadline: the signature
    /// of a path-MTU black hole (small packets pass, the large certificate flight does not).
    Stalled { received: u64 },
    /// The server closed the connection during the handshake.
    Closed,
    /// The server reset the connection during the handshake.
    Reset,
    /// Anything else, as a kind (rustls's and the OS's own words are not kept).
    Other(TlsError),
}

/// A TLS alert, by its number in the IANA "TLS Alerts" registry. The diagnosis knows each
/// one's standard name (`unrecognized_name`) and meaning; a number it does not know is kept as
/// it came, so nothing the server said is lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TlsAlert(pub u8);

impl From<AlertDescription> for TlsAlert {
    fn from(a: AlertDescription) -> Self {
        TlsAlert(u8::from(a))
    }
}

/// What a handshake that failed for none of the named reasons ran into, as a kind mapped from
/// rustls's error (see [`tls_error`]). The diagnosis words each kind and says who fixes it;
/// rustls's Display/Debug text is not kept, so a report never carries a library's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsError {
    /// The server sent a malformed or unexpected TLS message (`InvalidMessage`).
    InvalidMessage,
    /// The server broke the protocol's rules (`PeerMisbehaved`).
    PeerMisbehaved,
    /// The server lacks something this client requires (`PeerIncompatible`).
    PeerIncompatible(Incompatible),
    /// The server sent an alert (when no named failure fits).
    Alert(TlsAlert),
    /// A certificate problem other than the named failures.
    Certificate(CertProblem),
    /// The server presented no certificate at all.
    NoCertificate,
    /// A record from the server could not be decrypted (`DecryptError`).
    DecryptError,
    /// The server sent a record over the protocol's size limit.
    OversizedRecord,
    /// No application protocol (ALPN) in common.
    NoApplicationProtocol,
    /// The connection ended before the handshake completed (`HandshakeNotComplete`).
    HandshakeNotComplete,
    /// The name asked for is not a valid TLS server name.
    InvalidServerName,
    /// This client could not set itself up (configuration, clock, random numbers).
    LocalSetup,
    /// The socket failed, with the OS's errno when there is one.
    Io(Option<i32>),
    /// Anything else rustls reports (`General`, `Other`, …).
    Unclassified,
}

/// What the server lacks (rustls's `PeerIncompatible`, grouped by what a person changes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Incompatible {
    /// No TLS version in common (the server speaks neither 1.2 nor 1.3).
    Version,
    /// No cipher suite in common.
    CipherSuite,
    /// No key-exchange group in common.
    KeyExchange,
    /// No signature scheme in common.
    SignatureScheme,
    /// The server left out or misused an extension the protocol requires.
    Extension,
    /// The server refused encrypted ClientHello.
    EncryptedClientHello,
    /// Something else rustls found missing.
    Other,
}

/// A certificate problem, by kind (rustls's `CertificateError`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertProblem {
    Expired,
    NotYetValid,
    WrongName,
    UnknownIssuer,
    Revoked,
    /// Revocation was asked for and could not be decided.
    RevocationUnknown,
    BadSignature,
    /// The certificate could not be decoded.
    BadEncoding,
    /// Signed with an algorithm this client does not support.
    UnsupportedAlgorithm,
    /// Not issued for server authentication (extended key usage).
    WrongPurpose,
    /// It carries a critical extension this client does not understand.
    UnhandledCriticalExtension,
    /// Another problem (e.g. a CA certificate used as the server's own).
    Other,
}

/// rustls's error as a kind; the one mapping from rustls's errors to canreach's facts.
pub(crate) fn tls_error(e: &rustls::Error) -> TlsError {
    use rustls::Error as E;
    match e {
        E::InvalidMessage(_) => TlsError::InvalidMessage,
        E::PeerMisbehaved(_) => TlsError::PeerMisbehaved,
        E::PeerIncompatible(p) => TlsError::PeerIncompatible(incompatible(p)),
        E::AlertReceived(a) => TlsError::Alert(TlsAlert::from(*a)),
        E::InvalidCertificate(c) => TlsError::Certificate(cert_problem(c)),
        E::NoCertificatesPresented => TlsError::NoCertificate,
        E::DecryptError => TlsError::DecryptError,
        E::PeerSentOversizedRecord => TlsError::OversizedRecord,
        E::NoApplicationProtocol => TlsError::NoApplicationProtocol,
        E::HandshakeNotComplete => TlsError::HandshakeNotComplete,
        E::UnsupportedNameType => TlsError::InvalidServerName,
        E::FailedToGetCurrentTime
        | E::FailedToGetRandomBytes
        | E::EncryptError
        | E::BadMaxFragmentSize
        | E::InconsistentKeys(_) => TlsError::LocalSetup,
        _ => TlsError::Unclassified,
    }
}

fn incompatible(p: &rustls::PeerIncompatible) -> Incompatible {
    use rustls::PeerIncompatible as P;
    match p {
        P::ServerDoesNotSupportTls12Or13
        | P::Tls12NotOffered
        | P::Tls12NotOfferedOrEnabled
        | P::ServerTlsVersionIsDisabledByOurConfig
        | P::SupportedVersionsExtensionRequired
        | P::Tls13RequiredForQuic => Incompatible::Version,
        P::NoCipherSuitesInCommon => Incompatible::CipherSuite,
        P::NoKxGroupsInCommon
        | P::NoEcPointFormatsInCommon
        | P::UncompressedEcPointsRequired
        | P::KeyShareExtensionRequired
        | P::NamedGroupsExtensionRequired
        | P::EcPointsExtensionRequired => Incompatible::KeyExchange,
        P::NoSignatureSchemesInCommon
        | P::NoCertificateRequestSignatureSchemesInCommon
        | P::SignatureAlgorithmsExtensionRequired => Incompatible::SignatureScheme,
        P::ExtendedMasterSecretExtensionRequired
        | P::IncorrectCertificateTypeExtension
        | P::UnsolicitedCertificateTypeExtension
        | P::NullCompressionRequired
        | P::ServerSentHelloRetryRequestWithUnknownExtension => Incompatible::Extension,
        P::ServerRejectedEncryptedClientHello(_) => Incompatible::EncryptedClientHello,
        _ => Incompatible::Other,
    }
}

#[allow(deprecated)] // `UnsupportedSignatureAlgorithm` is deprecated but still sent by older paths
fn cert_problem(c: &CertificateError) -> CertProblem {
    use CertificateError as C;
    match c {
        C::Expired | C::ExpiredContext { .. } => CertProblem::Expired,
        C::NotValidYet | C::NotValidYetContext { .. } => CertProblem::NotYetValid,
        C::NotValidForName | C::NotValidForNameContext { .. } => CertProblem::WrongName,
        C::UnknownIssuer => CertProblem::UnknownIssuer,
        C::Revoked => CertProblem::Revoked,
        C::UnknownRevocationStatus
        | C::ExpiredRevocationList
        | C::ExpiredRevocationListContext { .. } => CertProblem::RevocationUnknown,
        C::BadSignature => CertProblem::BadSignature,
        C::BadEncoding => CertProblem::BadEncoding,
        C::UnsupportedSignatureAlgorithm
        | C::UnsupportedSignatureAlgorithmContext { .. }
        | C::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => {
            CertProblem::UnsupportedAlgorithm
        }
        C::InvalidPurpose | C::InvalidPurposeContext { .. } => CertProblem::WrongPurpose,
        C::UnhandledCriticalExtension => CertProblem::UnhandledCriticalExtension,
        _ => CertProblem::Other,
    }
}

/// Everything one handshake showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFacts {
    pub server_name: String,
    pub elapsed: Duration,
    pub version: Option<TlsVersion>,
    /// rustls's name of the suite, e.g. `TLS13_AES_256_GCM_SHA384`.
    pub cipher_suite: Option<String>,
    pub alpn: Option<Vec<u8>>,
    /// The chain as presented, leaf first (also when verification failed).
    pub chain: Vec<CertFacts>,
    /// What the verification of the chain said, as a kind (when it failed).
    pub verify_error: Option<TlsError>,
    /// How many trust anchors the chain was checked against (0: this machine trusts nothing,
    /// which explains every unknown issuer).
    pub trust_anchors: usize,
    /// Set when the server asked for a client certificate.
    pub client_cert: Option<ClientCertRequest>,
    /// Set when a post-handshake read was made (a client certificate was asked for).
    pub after: Option<AfterHandshake>,
    pub failure: Option<TlsFailure>,
    /// After how long the server's first byte came (from the start of the handshake).
    pub first_answer: Option<Duration>,
    /// When the handshake was given up (the deadline, or the caller stopped it): what the
    /// kernel knew of the connection's segments at that moment.
    pub given_up: Option<crate::sys::TcpSegments>,
    /// Set when verification was skipped (`--insecure`): what it would have said.
    pub unverified: Option<Unverified>,
}

/// `--insecure`: the chain was verified for the record only, and the handshake went on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unverified {
    /// The failure verification would have been (`None`: the chain would have verified).
    pub would_fail: Option<TlsFailure>,
}

impl TlsFacts {
    /// A handshake with `server_name` against `trust_anchors` roots that has, after
    /// `elapsed`, neither failed nor given anything yet: the handshake fills in the rest.
    pub(crate) fn new(server_name: String, elapsed: Duration, trust_anchors: usize) -> Self {
        TlsFacts {
            server_name,
            elapsed,
            version: None,
            cipher_suite: None,
            alpn: None,
            chain: vec![],
            verify_error: None,
            trust_anchors,
            client_cert: None,
            after: None,
            failure: None,
            first_answer: None,
            given_up: None,
            unverified: None,
        }
    }

    /// The handshake completed and the chain verified.
    pub fn ok(&self) -> bool {
        self.failure.is_none()
    }
}

/// What the two hooks saw during one handshake.
#[derive(Debug, Default)]
struct Seen {
    chain: Vec<CertificateDer<'static>>,
    error: Option<rustls::Error>,
    now: Option<UnixTime>,
    /// `Some` once the server asked for a client certificate: the raw issuer names.
    client_cert_issuers: Option<Vec<Vec<u8>>>,
}

type Shared = Arc<Mutex<Seen>>;

fn lock(s: &Shared) -> std::sync::MutexGuard<'_, Seen> {
    match s.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// Delegates to `WebPkiServerVerifier`; records the chain and the verdict.
#[derive(Debug)]
struct RecordingVerifier {
    /// `None` when the trust store is empty (rustls refuses to build a verifier then): every
    /// chain is then of an unknown issuer.
    inner: Option<Arc<WebPkiServerVerifier>>,
    /// The certificates the store was given: a server certificate that is one of them is
    /// trusted as it is.
    given: Arc<[CertificateDer<'static>]>,
    /// `--insecure`.
    skip_verification: bool,
    algs: WebPkiSupportedAlgorithms,
    seen: Shared,
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        {
            let mut seen = lock(&self.seen);
            seen.chain = std::iter::once(end_entity)
                .chain(intermediates)
                .map(|c| c.clone().into_owned())
                .collect();
            seen.now = Some(now);
        }
        let verdict = match &self.inner {
            Some(v) => {
                v.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            }
            None => Err(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer,
            )),
        };
        // webpki refuses a CA certificate as the server's own (`CaUsedAsEndEntity`) even
        // when it is trusted as it is: `openssl req -x509` makes such certificates (CA:TRUE),
        // and OpenSSL, so curl, accepts one found in the trust store. So does this client.
        let verdict = match verdict {
            Err(rustls::Error::InvalidCertificate(_))
                if self.given.iter().any(|c| c.as_ref() == end_entity.as_ref()) =>
            {
                trusted_as_is(end_entity, server_name, now)
            }
            v => v,
        };
        if let Err(e) = &verdict {
            lock(&self.seen).error = Some(e.clone());
        }
        if self.skip_verification {
            // `--insecure`: the outcome is recorded above; the handshake goes on.
            return Ok(ServerCertVerified::assertion());
        }
        verdict
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}

/// A server certificate that is itself one of the trusted certificates, checked as OpenSSL
/// checks a chain of that one certificate: valid now, valid for the name (webpki's own name
/// rules), and, when it limits its purposes, allowed to serve TLS. Its signature needs no
/// check: the very bytes are trusted. Its CA flag does not matter, as it does not to OpenSSL.
fn trusted_as_is(
    der: &CertificateDer<'_>,
    server_name: &ServerName<'_>,
    now: UnixTime,
) -> Result<ServerCertVerified, rustls::Error> {
    use rustls::Error::InvalidCertificate;
    let Ok((_, cert)) = X509Certificate::from_der(der) else {
        return Err(InvalidCertificate(CertificateError::BadEncoding));
    };
    let at = |t: i64| UnixTime::since_unix_epoch(Duration::from_secs(t.max(0).unsigned_abs()));
    let (not_before, not_after) = (
        cert.validity().not_before.timestamp(),
        cert.validity().not_after.timestamp(),
    );
    let now_s = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
    if now_s < not_before {
        return Err(InvalidCertificate(CertificateError::NotValidYetContext {
            time: now,
            not_before: at(not_before),
        }));
    }
    if now_s > not_after {
        return Err(InvalidCertificate(CertificateError::ExpiredContext {
            time: now,
            not_after: at(not_after),
        }));
    }
    if let Ok(Some(eku)) = cert.extended_key_usage()
        && !(eku.value.server_auth || eku.value.any)
    {
        return Err(InvalidCertificate(CertificateError::InvalidPurpose));
    }
    let parsed = rustls::server::ParsedCertificate::try_from(der)?;
    rustls::client::verify_server_name(&parsed, server_name)?;
    Ok(ServerCertVerified::assertion())
}

/// Records the issuers a server accepts for a client certificate; never sends one.
#[derive(Debug)]
struct RecordingClientAuth {
    seen: Shared,
}

impl ResolvesClientCert for RecordingClientAuth {
    fn resolve(
        &self,
        root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        lock(&self.seen).client_cert_issuers =
            Some(root_hint_subjects.iter().map(|s| s.to_vec()).collect());
        None
    }

    fn has_certs(&self) -> bool {
        // Only tells rustls whether to keep the transcript for a client signature: none is
        // ever made.
        false
    }
}

fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    Arc::clone(PROVIDER.get_or_init(|| Arc::new(ring::default_provider())))
}

fn config(req: &TlsRequest<'_>, seen: &Shared) -> Result<ClientConfig, rustls::Error> {
    let provider = provider();
    let inner = if req.roots.is_empty() {
        None
    } else {
        Some(
            WebPkiServerVerifier::builder_with_provider(
                Arc::clone(&req.roots.roots),
                Arc::clone(&provider),
            )
            .build()
            .map_err(|e| rustls::Error::General(e.to_string()))?,
        )
    };
    let verifier = Arc::new(RecordingVerifier {
        inner,
        given: Arc::clone(&req.roots.given),
        skip_verification: req.roots.skip_verification,
        algs: provider.signature_verification_algorithms,
        seen: Arc::clone(seen),
    });
    let builder = ClientConfig::builder_with_provider(provider);
    let builder = match req.versions {
        Versions::Any => builder.with_protocol_versions(rustls::ALL_VERSIONS),
        Versions::Only12 => builder.with_protocol_versions(&[&rustls::version::TLS12]),
    }?;
    let builder: ConfigBuilder<ClientConfig, WantsClientCert> = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut cfg = builder.with_client_cert_resolver(Arc::new(RecordingClientAuth {
        seen: Arc::clone(seen),
    }));
    cfg.alpn_protocols = req.alpn.iter().map(|p| p.to_vec()).collect();
    Ok(cfg)
}

/// How long to wait for a refusal after a TLS 1.3 handshake in which a client certificate was
/// asked for: the server sends it after reading our Finished, one round trip after the
/// handshake ended, so the handshake's own duration (≥ one round trip) is a fair bound;
/// at least 100 ms (scheduling), at most 1 s; never past `deadline`.
pub(crate) fn post_handshake_window(handshake: Duration) -> Duration {
    handshake.clamp(Duration::from_millis(100), Duration::from_secs(1))
}

/// Handshake over `stream` offering TLS 1.2 and 1.3; facts only (the session is closed).
pub async fn handshake(
    stream: TcpStream,
    server_name: &str,
    alpn: &[&[u8]],
    roots: &TrustStore,
    deadline: Instant,
) -> TlsFacts {
    let req = TlsRequest {
        server_name,
        alpn,
        roots,
        versions: Versions::Any,
    };
    handshake_session(stream, &req, deadline).await.0
}

/// Handshake as asked; the facts, and the session when it is usable (verified, and not
/// refused after the handshake) — for an HTTP request over it ([`super::http::request`]).
pub async fn handshake_session(
    stream: TcpStream,
    req: &TlsRequest<'_>,
    deadline: Instant,
) -> (TlsFacts, Option<TlsSession>) {
    handshake_until(stream, req, deadline, std::future::pending()).await
}

/// [`handshake_session`], given up when `stop` completes as if the deadline had come: the
/// facts then say what had come back by that moment.
pub(crate) async fn handshake_until(
    stream: TcpStream,
    req: &TlsRequest<'_>,
    deadline: Instant,
    stop: impl std::future::Future<Output = ()>,
) -> (TlsFacts, Option<TlsSession>) {
    let start = Instant::now();
    let seen: Shared = Arc::default();
    let mut facts = TlsFacts::new(req.server_name.to_owned(), Duration::ZERO, req.roots.len());
    // `[::1]` as written in URLs is the IP literal `::1`.
    let bare = req
        .server_name
        .strip_prefix('[')
        .and_then(|n| n.strip_suffix(']'))
        .unwrap_or(req.server_name);
    let Ok(name) = ServerName::try_from(bare.to_owned()) else {
        facts.failure = Some(TlsFailure::Other(TlsError::InvalidServerName));
        return (facts, None);
    };
    let Ok(cfg) = config(req, &seen) else {
        facts.failure = Some(TlsFailure::Other(TlsError::LocalSetup));
        return (facts, None);
    };
    let fd = std::os::fd::AsRawFd::as_raw_fd(&stream);
    let recording = Recording::new(stream);
    let received = recording.handle();
    let (mut session, error) = connect(cfg, name, recording, fd, deadline, stop, &mut facts).await;
    // What was negotiated, before a refusal after the handshake can take the session away.
    if let Some(s) = &session {
        negotiated(s, &mut facts);
    }
    // A client certificate was asked for and the handshake "succeeded": the refusal, if any,
    // comes on the first read (TLS 1.3).
    let asked = lock(&seen).client_cert_issuers.is_some();
    if let (Some(s), true) = (session.as_mut(), asked) {
        let after = read_after_handshake(s, start, deadline).await;
        if after.refused() {
            session = None;
        }
        facts.after = Some(after);
    }
    judge_chain(
        &seen,
        &snapshot(&received),
        error.as_ref(),
        start,
        req,
        &mut facts,
    );
    facts.elapsed = start.elapsed();
    (facts, session)
}

/// Run the handshake until it ends, the deadline, or `stop`; when it is given up, what the
/// kernel had received by then goes into `facts.given_up`.
async fn connect(
    cfg: ClientConfig,
    name: ServerName<'static>,
    recording: Recording<TcpStream>,
    fd: std::os::fd::RawFd,
    deadline: Instant,
    stop: impl std::future::Future<Output = ()>,
    facts: &mut TlsFacts,
) -> (Option<TlsSession>, Option<HandshakeError>) {
    let connect = TlsConnector::from(Arc::new(cfg)).connect(name, recording);
    tokio::pin!(connect, stop);
    let outcome = tokio::select! {
        r = &mut connect => Some(r),
        _ = tokio::time::sleep_until(deadline) => None,
        _ = &mut stop => None,
    };
    match outcome {
        Some(Ok(s)) => (Some(s), None),
        Some(Err(e)) => (None, Some(HandshakeError::from_io(e))),
        None => {
            // Read while the handshake (which owns the socket) is still alive: what the
            // kernel had received by now, in order and out of it.
            facts.given_up = crate::sys::tcp_segments(fd);
            (None, Some(HandshakeError::Timeout))
        }
    }
}

/// The version, cipher suite and ALPN the handshake agreed on.
fn negotiated(s: &TlsSession, facts: &mut TlsFacts) {
    let (_, conn) = s.get_ref();
    facts.version = conn.protocol_version().map(|v| match u16::from(v) {
        0x0303 => TlsVersion::Tls12,
        0x0304 => TlsVersion::Tls13,
        n => TlsVersion::Other(n),
    });
    facts.cipher_suite = conn
        .negotiated_cipher_suite()
        .map(|s| s.suite().as_str().unwrap_or("unknown").to_owned());
    facts.alpn = conn.alpn_protocol().map(<[u8]>::to_vec);
}

/// The first read after a handshake in which a client certificate was asked for: where a TLS
/// 1.3 server refuses a client without one ([`post_handshake_window`]).
async fn read_after_handshake(
    s: &mut TlsSession,
    start: Instant,
    deadline: Instant,
) -> AfterHandshake {
    let window = post_handshake_window(start.elapsed());
    let until = (Instant::now() + window).min(deadline);
    let mut buf = vec![0u8; FIRST_BYTES_MAX];
    match tokio::time::timeout_at(until, s.read(&mut buf)).await {
        Err(_) => AfterHandshake::SentNothing,
        Ok(Ok(0)) => AfterHandshake::Closed,
        Ok(Ok(n)) => AfterHandshake::Data(buf[..n].to_vec()),
        Ok(Err(e)) => match HandshakeError::from_io(e) {
            HandshakeError::Tls(rustls::Error::AlertReceived(a)) => {
                AfterHandshake::Alert(TlsAlert::from(a))
            }
            HandshakeError::Reset => AfterHandshake::Reset,
            HandshakeError::Closed => AfterHandshake::Closed,
            other => AfterHandshake::Failed(other.kind()),
        },
    }
}

/// What the recording verifier kept (the chain, its error, the client certificate asked
/// for), and from it and the handshake's error the failure.
fn judge_chain(
    seen: &Shared,
    recorded: &Recorded,
    error: Option<&HandshakeError>,
    start: Instant,
    req: &TlsRequest<'_>,
    facts: &mut TlsFacts,
) {
    let (chain_der, verify_error, now, issuers) = {
        let s = lock(seen);
        (
            s.chain.clone(),
            s.error.clone(),
            s.now,
            s.client_cert_issuers.clone(),
        )
    };
    facts.chain = chain_der.iter().map(|c| parse_cert(c)).collect();
    facts.verify_error = verify_error.as_ref().map(tls_error);
    if req.roots.skip_verification && !chain_der.is_empty() {
        let would_fail = verify_error.as_ref().map(|e| match e {
            rustls::Error::InvalidCertificate(ce) => {
                cert_failure(ce, &facts.chain, &chain_der, now, req)
            }
            other => TlsFailure::Other(tls_error(other)),
        });
        facts.unverified = Some(Unverified { would_fail });
    }
    let issuer_names: Option<Vec<String>> =
        issuers.map(|list| list.iter().map(|n| dn_to_string(n)).collect());
    facts.first_answer = recorded
        .first_at
        .map(|t| t.saturating_duration_since(start));
    facts.failure = match (error, &facts.after) {
        (Some(e), _) => Some(classify(
            e,
            recorded,
            &facts.chain,
            &chain_der,
            now,
            issuer_names.as_deref(),
            req,
        )),
        (None, Some(after)) if after.refused() => Some(TlsFailure::ClientCertRequired {
            issuers: issuer_names.clone().unwrap_or_default(),
        }),
        // A chain accepted without verification (`--insecure`, a module's
        // `insecure_skip_verify`): why it would have failed is in `facts.unverified`.
        (None, _) => None,
    };
    facts.client_cert = issuer_names.map(|issuers| ClientCertRequest {
        issuers,
        went_on_without: facts.failure.is_none(),
    });
}

/// A handshake error, with rustls's error taken back out of the `io::Error` tokio-rustls wraps
/// it in.
#[derive(Debug)]
enum HandshakeError {
    Tls(rustls::Error),
    Reset,
    Closed,
    Timeout,
    Io(std::io::Error),
}

impl HandshakeError {
    fn from_io(e: std::io::Error) -> Self {
        use std::io::ErrorKind as K;
        if let Some(t) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
            return HandshakeError::Tls(t.clone());
        }
        match e.kind() {
            K::ConnectionReset | K::ConnectionAborted => HandshakeError::Reset,
            // A write after the peer closed: EPIPE.
            K::UnexpectedEof | K::BrokenPipe => HandshakeError::Closed,
            _ => HandshakeError::Io(e),
        }
    }

    /// The error as a kind (a reset, a close or the deadline have their own failures; here
    /// they are socket errors without an errno).
    fn kind(&self) -> TlsError {
        match self {
            HandshakeError::Tls(e) => tls_error(e),
            HandshakeError::Reset => TlsError::Io(Some(libc::ECONNRESET)),
            HandshakeError::Closed | HandshakeError::Timeout => TlsError::HandshakeNotComplete,
            HandshakeError::Io(e) => TlsError::Io(e.raw_os_error()),
        }
    }
}

/// Turn a failed handshake into a [`TlsFailure`]. Order matters:
/// 1. the server sent something that is not TLS → `NotTls` (whatever rustls called it);
/// 2. a client certificate was asked for and the server then ended the handshake (alert,
///    close, reset) → `ClientCertRequired`;
/// 3. certificate errors → [`cert_failure`];
/// 4. alerts, incompatibility, connection ends, the deadline.
fn classify(
    err: &HandshakeError,
    recorded: &Recorded,
    chain: &[CertFacts],
    chain_der: &[CertificateDer<'static>],
    now: Option<UnixTime>,
    client_cert_issuers: Option<&[String]>,
    req: &TlsRequest<'_>,
) -> TlsFailure {
    if !recorded.first.is_empty() && !looks_like_tls_record(&recorded.first) {
        return TlsFailure::NotTls {
            first_bytes: recorded.first.clone(),
        };
    }
    if let Some(issuers) = client_cert_issuers {
        let refused = matches!(
            err,
            HandshakeError::Tls(rustls::Error::AlertReceived(_))
                | HandshakeError::Closed
                | HandshakeError::Reset
        );
        if refused {
            return TlsFailure::ClientCertRequired {
                issuers: issuers.to_vec(),
            };
        }
    }
    match err {
        HandshakeError::Tls(rustls::Error::InvalidCertificate(ce)) => {
            cert_failure(ce, chain, chain_der, now, req)
        }
        HandshakeError::Tls(rustls::Error::AlertReceived(a)) => match a {
            AlertDescription::ProtocolVersion
            | AlertDescription::HandshakeFailure
            | AlertDescription::InsufficientSecurity
            | AlertDescription::IllegalParameter => TlsFailure::ProtocolMismatch {
                alert: Some(TlsAlert::from(*a)),
                incompatible: None,
            },
            AlertDescription::CertificateRequired => {
                TlsFailure::ClientCertRequired { issuers: vec![] }
            }
            _ => TlsFailure::Alert {
                alert: TlsAlert::from(*a),
            },
        },
        HandshakeError::Tls(rustls::Error::PeerIncompatible(p)) => TlsFailure::ProtocolMismatch {
            alert: None,
            incompatible: Some(incompatible(p)),
        },
        HandshakeError::Reset => TlsFailure::Reset,
        HandshakeError::Closed => TlsFailure::Closed,
        HandshakeError::Timeout if recorded.total == 0 => TlsFailure::NoReply,
        HandshakeError::Timeout => TlsFailure::Stalled {
            received: recorded.total,
        },
        HandshakeError::Tls(_) | HandshakeError::Io(_) => TlsFailure::Other(err.kind()),
    }
}

/// A certificate error, made precise with the chain itself.
fn cert_failure(
    ce: &CertificateError,
    chain: &[CertFacts],
    chain_der: &[CertificateDer<'static>],
    now: Option<UnixTime>,
    req: &TlsRequest<'_>,
) -> TlsFailure {
    let secs = |t: &UnixTime| i64::try_from(t.as_secs()).unwrap_or(i64::MAX);
    let now_s = now.as_ref().map(secs);
    match ce {
        CertificateError::ExpiredContext { not_after, .. } => {
            let not_after = secs(not_after);
            TlsFailure::Expired {
                not_after,
                subject: subject_where(chain, |c| c.not_after == not_after),
            }
        }
        CertificateError::Expired => {
            let c = chain
                .iter()
                .find(|c| now_s.is_some_and(|n| c.not_after < n));
            TlsFailure::Expired {
                not_after: c.map_or(0, |c| c.not_after),
                subject: c.map(|c| c.subject.clone()).unwrap_or_default(),
            }
        }
        CertificateError::NotValidYetContext { not_before, .. } => {
            let not_before = secs(not_before);
            TlsFailure::NotYetValid {
                not_before,
                subject: subject_where(chain, |c| c.not_before == not_before),
            }
        }
        CertificateError::NotValidYet => {
            let c = chain
                .iter()
                .find(|c| now_s.is_some_and(|n| c.not_before > n));
            TlsFailure::NotYetValid {
                not_before: c.map_or(0, |c| c.not_before),
                subject: c.map(|c| c.subject.clone()).unwrap_or_default(),
            }
        }
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            TlsFailure::WrongName {
                presented: chain.first().map(presented_names).unwrap_or_default(),
            }
        }
        // webpki says UnknownIssuer for a missing intermediate too, and
        // `Other(CaUsedAsEndEntity)` for a self-signed CA certificate used as a leaf.
        CertificateError::UnknownIssuer | CertificateError::Other(_) => {
            if chain.first().is_some_and(|c| c.self_signed) {
                return TlsFailure::SelfSigned;
            }
            if matches!(ce, CertificateError::UnknownIssuer) {
                let public = public_opinion(chain_der, req.server_name, now);
                chain_failure(chain, req.roots, public_roots(), public)
            } else {
                TlsFailure::Other(TlsError::Certificate(cert_problem(ce)))
            }
        }
        other => TlsFailure::Other(TlsError::Certificate(cert_problem(other))),
    }
}

fn subject_where(chain: &[CertFacts], f: impl Fn(&CertFacts) -> bool) -> String {
    chain
        .iter()
        .find(|c| f(c))
        .map(|c| c.subject.clone())
        .unwrap_or_default()
}

/// The names a leaf is valid for: its DNS and IP subjectAltNames (what webpki matches; the
/// common name is not consulted, so it is not listed).
fn presented_names(c: &CertFacts) -> Vec<String> {
    c.dns_names
        .iter()
        .cloned()
        .chain(c.ip_addresses.iter().map(|a| a.to_string()))
        .collect()
}

/// Would the public web PKI accept this chain (any verdict but "unknown issuer")?
fn public_opinion(
    chain_der: &[CertificateDer<'static>],
    server_name: &str,
    now: Option<UnixTime>,
) -> bool {
    let (Some((leaf, rest)), Some(now)) = (chain_der.split_first(), now) else {
        return false;
    };
    let Ok(name) = ServerName::try_from(server_name.to_owned()) else {
        return false;
    };
    let Ok(v) =
        WebPkiServerVerifier::builder_with_provider(Arc::clone(&public_roots().roots), provider())
            .build()
    else {
        return false;
    };
    !matches!(
        v.verify_server_cert(leaf, rest, &name, &[], now),
        Err(rustls::Error::InvalidCertificate(
            CertificateError::UnknownIssuer
        ))
    )
}

/// Tell an unknown issuer from a missing intermediate, as far as the presented chain allows.
///
/// The rule: follow the chain from the leaf through the certificates the server sent (each
/// step: a sent certificate whose subject is the current issuer). Let *top* be where it stops.
/// - The leaf's issuer is not among the certificates sent, is not a trust anchor of this
///   machine, is not a public root, and is not the leaf itself → `MissingIntermediate`.
///   (A private CA that signed the leaf directly, with its root not installed, looks the same
///   on the wire; "the server does not send its intermediate" is the common case and the
///   advice — send the full chain, or install the CA — covers both.)
/// - Otherwise → `UnknownIssuer { issuer: top's issuer }`; when top is itself self-signed (the
///   server sent its root), the unknown issuer is top's own subject.
///
/// `public_ca_elsewhere` is the second opinion: the public web PKI accepts the chain, or the
/// issuer is one of its roots.
pub(crate) fn chain_failure(
    chain: &[CertFacts],
    local: &TrustStore,
    public: &TrustStore,
    public_accepts: bool,
) -> TlsFailure {
    let Some(leaf) = chain.first() else {
        return TlsFailure::UnknownIssuer {
            issuer: String::new(),
            public_ca_elsewhere: false,
        };
    };
    let mut top = leaf;
    // At most one step per certificate sent, so a loop of names cannot hang it.
    for _ in 1..chain.len() {
        if top.self_signed {
            break;
        }
        match chain
            .iter()
            .find(|c| !std::ptr::eq(*c, top) && c.subject == top.issuer)
        {
            Some(next) => top = next,
            None => break,
        }
    }
    let issuer = if top.self_signed {
        top.subject.clone()
    } else {
        top.issuer.clone()
    };
    let public_ca_elsewhere = public_accepts || public.has_subject(&issuer);
    let leaf_issuer_sent = chain.iter().skip(1).any(|c| c.subject == leaf.issuer);
    if !leaf_issuer_sent
        && leaf.issuer != leaf.subject
        && !local.has_subject(&leaf.issuer)
        && !public_ca_elsewhere
    {
        return TlsFailure::MissingIntermediate {
            issuer: leaf.issuer.clone(),
        };
    }
    TlsFailure::UnknownIssuer {
        issuer,
        public_ca_elsewhere,
    }
}

/// Parse one certificate; never panics, whatever the bytes.
pub(crate) fn parse_cert(der: &[u8]) -> CertFacts {
    let sha256 = sha256(der);
    let mut facts = CertFacts {
        subject: String::new(),
        issuer: String::new(),
        dns_names: vec![],
        ip_addresses: vec![],
        not_before: 0,
        not_after: 0,
        sha256,
        self_signed: false,
        is_ca: false,
        parse_error: None,
    };
    let cert = match X509Certificate::from_der(der) {
        Ok((_, c)) => c,
        Err(e) => {
            facts.parse_error = Some(e.to_string());
            return facts;
        }
    };
    facts.subject = clean(&cert.subject().to_string());
    facts.issuer = clean(&cert.issuer().to_string());
    facts.not_before = cert.validity().not_before.timestamp();
    facts.not_after = cert.validity().not_after.timestamp();
    facts.is_ca = cert.is_ca();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                _ if facts.dns_names.len() + facts.ip_addresses.len() >= SANS_MAX => break,
                GeneralName::DNSName(n) => facts.dns_names.push(clean(n)),
                GeneralName::IPAddress(b) => {
                    if let Ok(a) = <[u8; 4]>::try_from(*b) {
                        facts.ip_addresses.push(IpAddr::from(a));
                    } else if let Ok(a) = <[u8; 16]>::try_from(*b) {
                        facts.ip_addresses.push(IpAddr::from(a));
                    }
                }
                _ => {}
            }
        }
    }
    facts.self_signed =
        cert.subject().as_raw() == cert.issuer().as_raw() && cert.verify_signature(None).is_ok();
    facts
}

/// The most names kept from one certificate's subjectAltName (CDN certificates carry
/// hundreds; a hostile one could carry thousands).
const SANS_MAX: usize = 500;
/// The longest name kept.
const NAME_MAX: usize = 512;

/// A name from a certificate, fit to keep: the server chose its bytes, so control characters
/// (terminal escapes) are dropped and the length is bounded. Applied to every name alike, so
/// names still compare equal when they were equal.
fn clean(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control())
        .take(NAME_MAX)
        .collect()
}

/// A DER distinguished name (from a CertificateRequest) as text; hex when unparsable.
fn dn_to_string(der: &[u8]) -> String {
    match X509Name::from_der(der) {
        Ok((_, n)) => clean(&n.to_string()),
        Err(_) => der.iter().map(|b| format!("{b:02x}")).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_certificates_do_not_panic() {
        for bytes in [
            &b""[..],
            &[0x30][..],
            &[0x30, 0x82, 0xff, 0xff][..],
            &[0u8; 64][..],
            b"-----BEGIN CERTIFICATE-----",
        ] {
            let c = parse_cert(bytes);
            assert!(c.parse_error.is_some());
            assert!(!c.self_signed);
        }
    }

    #[test]
    fn window_is_bounded() {
        assert_eq!(
            post_handshake_window(Duration::from_millis(2)),
            Duration::from_millis(100)
        );
        assert_eq!(
            post_handshake_window(Duration::from_millis(300)),
            Duration::from_millis(300)
        );
        assert_eq!(
            post_handshake_window(Duration::from_secs(9)),
            Duration::from_secs(1)
        );
    }

    fn cert(subject: &str, issuer: &str, self_signed: bool) -> CertFacts {
        let mut c = parse_cert(b"");
        c.subject = subject.into();
        c.issuer = issuer.into();
        c.self_signed = self_signed;
        c.parse_error = None;
        c
    }

    fn empty_store() -> TrustStore {
        TrustStore::from_root_store(RootCertStore::empty(), vec![], vec![])
    }

    #[test]
    fn chain_rule() {
        let none = empty_store();
        // Only the leaf, issuer elsewhere: missing intermediate.
        assert_eq!(
            chain_failure(&[cert("CN=leaf", "CN=Int", false)], &none, &none, false),
            TlsFailure::MissingIntermediate {
                issuer: "CN=Int".into()
            }
        );
        // Leaf + intermediate whose issuer is unknown.
        assert_eq!(
            chain_failure(
                &[
                    cert("CN=leaf", "CN=Int", false),
                    cert("CN=Int", "CN=Root", false)
                ],
                &none,
                &none,
                false
            ),
            TlsFailure::UnknownIssuer {
                issuer: "CN=Root".into(),
                public_ca_elsewhere: false
            }
        );
        // The server sends its own (untrusted) root too.
        assert_eq!(
            chain_failure(
                &[
                    cert("CN=leaf", "CN=Int", false),
                    cert("CN=Int", "CN=Root", false),
                    cert("CN=Root", "CN=Root", true)
                ],
                &none,
                &none,
                true
            ),
            TlsFailure::UnknownIssuer {
                issuer: "CN=Root".into(),
                public_ca_elsewhere: true
            }
        );
        // A loop of names does not hang.
        let looped = [
            cert("CN=leaf", "CN=A", false),
            cert("CN=A", "CN=B", false),
            cert("CN=B", "CN=A", false),
        ];
        assert!(matches!(
            chain_failure(&looped, &none, &none, false),
            TlsFailure::UnknownIssuer { .. }
        ));
        assert!(matches!(
            chain_failure(&[], &none, &none, false),
            TlsFailure::UnknownIssuer { .. }
        ));
    }
}
