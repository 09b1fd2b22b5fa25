//! TLS failures in canreach's words: the one table of TLS alerts (standard name, meaning, who
//! fixes it) and the words for every [`TlsError`] kind the session stage maps rustls's errors
//! to. The stage keeps only numbers and kinds; rustls's own Display/Debug text never reaches a
//! report, because it is a library's words (and changes with the library's version).

use crate::session::tls::{CertProblem, Incompatible, TlsAlert, TlsError};

use crate::diagnosis::words::{errno_name, errno_text};

/// Who can make the failure go away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fixer {
    /// The server's owner (its TLS configuration or software).
    Server,
    /// This client (its name, certificate, settings).
    Client,
    /// Either side, or a device on the way that alters the traffic.
    Either,
}

/// One row of the alert table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AlertRow {
    pub code: u8,
    /// The name in the IANA "TLS Alerts" registry (RFC 8446 §6), as people search for it.
    pub name: &'static str,
    /// What the server means by it, as the end of "the server ended the handshake: …".
    pub meaning: &'static str,
    pub fixer: Fixer,
    /// What to do, as a step's text.
    pub fix: &'static str,
}

const fn row(
    code: u8,
    name: &'static str,
    meaning: &'static str,
    fixer: Fixer,
    fix: &'static str,
) -> AlertRow {
    AlertRow {
        code,
        name,
        meaning,
        fixer,
        fix,
    }
}

const SERVER_LOG: &str = "Read the server's TLS log around this time: it says what it refused.";
const SOMETHING_ALTERS: &str = "Compare with a client on another network (a device on the way \
    that inspects or alters TLS causes this), and read the server's TLS log.";
const CLIENT_CERT: &str = "Configure this client with a certificate the server accepts (ask the \
    server's owner which CA it trusts for clients).";

/// Every alert of the IANA registry a server may send, by number.
pub(crate) const ALERTS: &[AlertRow] = &[
    row(
        0,
        "close_notify",
        "it closed the TLS session before the handshake completed",
        Fixer::Server,
        SERVER_LOG,
    ),
    row(
        10,
        "unexpected_message",
        "it received a message it did not expect at that point of the handshake (a broken \
         implementation, or something on the way altering the traffic)",
        Fixer::Either,
        SOMETHING_ALTERS,
    ),
    row(
        20,
        "bad_record_mac",
        "a record failed its integrity check (something on the way alters the traffic, or an \
         implementation is broken)",
        Fixer::Either,
        SOMETHING_ALTERS,
    ),
    row(
        21,
        "decryption_failed",
        "it could not decrypt a record (an obsolete alert: an old server)",
        Fixer::Server,
        "Update the server's TLS software.",
    ),
    row(
        22,
        "record_overflow",
        "a record was longer than the protocol allows",
        Fixer::Either,
        SOMETHING_ALTERS,
    ),
    row(
        30,
        "decompression_failure",
        "it could not decompress a record (an obsolete alert: an old server)",
        Fixer::Server,
        "Update the server's TLS software.",
    ),
    row(
        40,
        "handshake_failure",
        "it found no set of security parameters it accepts among those this client offered \
         (versions, cipher suites, groups, signature schemes)",
        Fixer::Server,
        "Enable TLS 1.2 or 1.3 with current cipher suites on the server.",
    ),
    row(
        41,
        "no_certificate",
        "it wanted a client certificate and got none (an obsolete alert: an old server)",
        Fixer::Client,
        CLIENT_CERT,
    ),
    row(
        42,
        "bad_certificate",
        "it rejected a certificate (this client's, when one was sent)",
        Fixer::Client,
        CLIENT_CERT,
    ),
    row(
        43,
        "unsupported_certificate",
        "it does not support the kind of certificate it was sent",
        Fixer::Client,
        CLIENT_CERT,
    ),
    row(
        44,
        "certificate_revoked",
        "a certificate it was sent has been revoked by its issuer",
        Fixer::Client,
        CLIENT_CERT,
    ),
    row(
        45,
        "certificate_expired",
        "a certificate it was sent has expired or is not valid yet",
        Fixer::Client,
        CLIENT_CERT,
    ),
    row(
        46,
        "certificate_unknown",
        "it could not accept a certificate it was sent, for a reason it does not say",
        Fixer::Client,
        CLIENT_CERT,
    ),
    row(
        47,
        "illegal_parameter",
        "a field of this client's handshake was out of range or inconsistent (often: no \
         parameter in common that it accepts)",
        Fixer::Server,
        "Enable TLS 1.2 or 1.3 with current cipher suites and groups on the server.",
    ),
    row(
        48,
        "unknown_ca",
        "it does not trust the CA that issued a certificate it was sent (this client's)",
        Fixer::Client,
        CLIENT_CERT,
    ),
    row(
        49,
        "access_denied",
        "it refuses this client by its own access control (an allow list or a policy), after a \
         valid handshake",
        Fixer::Server,
        "Ask the server's owner to allow this client (its address, or its certificate).",
    ),
    row(
        50,
        "decode_error",
        "it could not decode a message (a broken implementation, or something on the way \
         altering the traffic)",
        Fixer::Either,
        SOMETHING_ALTERS,
    ),
    row(
        51,
        "decrypt_error",
        "a signature, a key exchange or the handshake's final check did not verify",
        Fixer::Either,
        SOMETHING_ALTERS,
    ),
    row(
        60,
        "export_restriction",
        "it refused on export rules (an obsolete alert: an old server)",
        Fixer::Server,
        "Update the server's TLS software.",
    ),
    row(
        70,
        "protocol_version",
        "it does not speak a TLS version this client offers (1.2 and 1.3)",
        Fixer::Server,
        "Enable TLS 1.2 or 1.3 on the server.",
    ),
    row(
        71,
        "insufficient_security",
        "its settings demand cipher suites this client does not offer",
        Fixer::Server,
        "Configure the server with current TLS 1.2/1.3 cipher suites.",
    ),
    row(
        80,
        "internal_error",
        "it failed internally, for a reason unrelated to this client",
        Fixer::Server,
        SERVER_LOG,
    ),
    row(
        86,
        "inappropriate_fallback",
        "it saw a downgraded retry of a handshake",
        Fixer::Either,
        SOMETHING_ALTERS,
    ),
    row(
        90,
        "user_canceled",
        "it cancelled the handshake",
        Fixer::Server,
        SERVER_LOG,
    ),
    row(
        100,
        "no_renegotiation",
        "it refuses to renegotiate",
        Fixer::Server,
        SERVER_LOG,
    ),
    row(
        109,
        "missing_extension",
        "this client's handshake lacks an extension it requires",
        Fixer::Either,
        "Read the server's TLS log: it names the extension it requires.",
    ),
    row(
        110,
        "unsupported_extension",
        "this client sent an extension it does not allow there",
        Fixer::Either,
        "Read the server's TLS log: it names the extension it refused.",
    ),
    row(
        111,
        "certificate_unobtainable",
        "it could not fetch a certificate it needed",
        Fixer::Server,
        SERVER_LOG,
    ),
    row(
        112,
        "unrecognized_name",
        "it does not know the name this client asked for (SNI), so no site there is \
         configured for it",
        Fixer::Either,
        "Connect with a name the server is configured for, or configure the server (its \
         virtual hosts, its certificates) for this name.",
    ),
    row(
        113,
        "bad_certificate_status_response",
        "it did not accept a certificate status (OCSP) response",
        Fixer::Either,
        SERVER_LOG,
    ),
    row(
        114,
        "bad_certificate_hash_value",
        "a certificate's hash did not match",
        Fixer::Either,
        SERVER_LOG,
    ),
    row(
        115,
        "unknown_psk_identity",
        "it does not know the pre-shared key this client offered",
        Fixer::Client,
        "Configure this client with the pre-shared key the server expects.",
    ),
    row(
        116,
        "certificate_required",
        "it requires a client certificate and none was sent",
        Fixer::Client,
        CLIENT_CERT,
    ),
    row(
        120,
        "no_application_protocol",
        "it supports none of the application protocols (ALPN) this client offered",
        Fixer::Either,
        "Use the protocol the server speaks on this port, or enable this one on the server.",
    ),
    row(
        121,
        "ech_required",
        "it requires encrypted ClientHello, which this client did not use",
        Fixer::Client,
        "Use a client with encrypted ClientHello for this server.",
    ),
];

/// The row of an alert, when it is in the registry.
pub(crate) fn alert_row(a: TlsAlert) -> Option<&'static AlertRow> {
    ALERTS.iter().find(|r| r.code == a.0)
}

/// The alert's standard name (`unrecognized_name`), or `alert 200` for a number outside the
/// registry.
pub(crate) fn alert_name(a: TlsAlert) -> String {
    alert_row(a).map_or_else(|| format!("alert {}", a.0), |r| r.name.to_string())
}

/// "it does not know the name … — alert unrecognized_name": the meaning, then the evidence.
pub(crate) fn alert_words(a: TlsAlert) -> (String, Fixer, &'static str) {
    match alert_row(a) {
        Some(r) => (format!("{} — alert {}", r.meaning, r.name), r.fixer, r.fix),
        None => (
            format!(
                "it sent an alert outside the TLS registry — alert number {}",
                a.0
            ),
            Fixer::Server,
            SERVER_LOG,
        ),
    }
}

/// What the server lacks, as the end of "the server and this client share …".
pub(crate) fn incompatible_words(i: Incompatible) -> &'static str {
    match i {
        Incompatible::Version => "no TLS version: the server speaks neither TLS 1.2 nor 1.3",
        Incompatible::CipherSuite => "no cipher suite",
        Incompatible::KeyExchange => "no key-exchange group (elliptic curve)",
        Incompatible::SignatureScheme => "no signature scheme",
        Incompatible::Extension => {
            "no usable handshake: the server leaves out or misuses an extension TLS requires"
        }
        Incompatible::EncryptedClientHello => {
            "no encrypted ClientHello configuration: the server refused it"
        }
        Incompatible::Other => "no set of parameters this client accepts",
    }
}

fn cert_words(p: CertProblem) -> &'static str {
    match p {
        CertProblem::Expired => "a certificate of the chain has expired",
        CertProblem::NotYetValid => "a certificate of the chain is not valid yet",
        CertProblem::WrongName => "the certificate is not valid for the name asked for",
        CertProblem::UnknownIssuer => "the certificate's issuer is not trusted here",
        CertProblem::Revoked => "the certificate has been revoked by its issuer",
        CertProblem::RevocationUnknown => "the certificate's revocation status is unknown",
        CertProblem::BadSignature => "a signature in the certificate chain does not verify",
        CertProblem::BadEncoding => "the certificate cannot be decoded",
        CertProblem::UnsupportedAlgorithm => {
            "the certificate is signed with an algorithm this client does not accept"
        }
        CertProblem::WrongPurpose => {
            "the certificate is not issued for TLS servers (its extended key usage)"
        }
        CertProblem::UnhandledCriticalExtension => {
            "the certificate has a critical extension this client does not understand"
        }
        CertProblem::Other => {
            "the certificate is not acceptable as a server certificate (e.g. a CA certificate \
             used as the server's own)"
        }
    }
}

/// A [`TlsError`] in words: what happened (the end of "the TLS handshake failed: …"), who
/// fixes it, and the step's text.
pub(crate) fn error_words(e: TlsError) -> (String, Fixer, &'static str) {
    const FIX_CERT: &str = "Give the server a valid certificate from a CA the clients trust.";
    const UPDATE: &str = "Update or fix the server's TLS software or configuration.";
    let (words, fixer, fix): (String, Fixer, &'static str) = match e {
        TlsError::Alert(a) => {
            let (w, f, x) = alert_words(a);
            return (format!("the server ended the handshake: {w}"), f, x);
        }
        TlsError::InvalidMessage => (
            "the server sent a malformed or unexpected TLS message (a broken implementation, or \
             a device on the way that alters the traffic)"
                .into(),
            Fixer::Either,
            SOMETHING_ALTERS,
        ),
        TlsError::PeerMisbehaved => (
            "the server broke the rules of the TLS protocol".into(),
            Fixer::Server,
            UPDATE,
        ),
        TlsError::PeerIncompatible(i) => (
            format!("the server and this client share {}", incompatible_words(i)),
            Fixer::Server,
            "Enable TLS 1.2 or 1.3 with current parameters on the server.",
        ),
        TlsError::Certificate(p) => (cert_words(p).into(), Fixer::Server, FIX_CERT),
        TlsError::NoCertificate => (
            "the server presented no certificate".into(),
            Fixer::Server,
            FIX_CERT,
        ),
        TlsError::DecryptError => (
            "a record from the server could not be decrypted (a broken implementation, or a \
             device on the way that alters the traffic)"
                .into(),
            Fixer::Either,
            SOMETHING_ALTERS,
        ),
        TlsError::OversizedRecord => (
            "the server sent a record larger than TLS allows".into(),
            Fixer::Server,
            UPDATE,
        ),
        TlsError::NoApplicationProtocol => (
            "the server supports none of the application protocols (ALPN) this client offered"
                .into(),
            Fixer::Either,
            "Use the protocol the server speaks on this port, or enable this one on the server.",
        ),
        TlsError::HandshakeNotComplete => (
            "the connection ended before the handshake completed".into(),
            Fixer::Server,
            SERVER_LOG,
        ),
        TlsError::InvalidServerName => (
            "the name asked for is not valid as a TLS server name".into(),
            Fixer::Client,
            "Connect with the server's DNS name or IP address.",
        ),
        TlsError::LocalSetup => (
            "this client could not set up TLS (its configuration, its clock or its random \
             numbers)"
                .into(),
            Fixer::Client,
            "Check this machine's clock and its TLS settings (SSL_CERT_FILE, SSL_CERT_DIR).",
        ),
        TlsError::Io(Some(errno)) => (
            format!(
                "the socket failed during the handshake: {} ({})",
                errno_text(errno),
                errno_name(errno)
            ),
            Fixer::Either,
            SERVER_LOG,
        ),
        TlsError::Io(None) | TlsError::Unclassified => (
            "the TLS library reported an error canreach does not classify".into(),
            Fixer::Either,
            SERVER_LOG,
        ),
    };
    (words, fixer, fix)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::AlertDescription;

    /// Every alert rustls knows has a row, under the registry's name, and no number twice.
    #[test]
    fn every_alert_rustls_knows_has_a_row() {
        for n in 0..=255u8 {
            let known = !matches!(AlertDescription::from(n), AlertDescription::Unknown(_));
            assert_eq!(known, alert_row(TlsAlert(n)).is_some(), "alert {n}");
        }
        let mut codes: Vec<u8> = ALERTS.iter().map(|r| r.code).collect();
        codes.dedup();
        assert_eq!(codes.len(), ALERTS.len(), "sorted and unique");
        for r in ALERTS {
            assert!(
                r.name.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{}",
                r.name
            );
        }
    }

    #[test]
    fn standard_names_not_rustls_spellings() {
        let name = |a| alert_name(TlsAlert::from(a));
        assert_eq!(
            name(AlertDescription::UnrecognisedName),
            "unrecognized_name"
        );
        assert_eq!(name(AlertDescription::UnknownCA), "unknown_ca");
        assert_eq!(name(AlertDescription::AccessDenied), "access_denied");
        assert_eq!(name(AlertDescription::ProtocolVersion), "protocol_version");
        assert_eq!(
            name(AlertDescription::CertificateRequired),
            "certificate_required"
        );
        assert_eq!(name(AlertDescription::InternalError), "internal_error");
        assert_eq!(alert_name(TlsAlert(200)), "alert 200");
    }

    #[test]
    fn alert_words_say_what_and_who() {
        let (w, f, fix) = alert_words(TlsAlert::from(AlertDescription::UnrecognisedName));
        assert!(w.contains("does not know the name"), "{w}");
        assert!(w.ends_with("— alert unrecognized_name"), "{w}");
        assert_eq!(f, Fixer::Either);
        assert!(fix.contains("virtual hosts"));
        let (w, f, _) = alert_words(TlsAlert::from(AlertDescription::InternalError));
        assert!(w.contains("failed internally"));
        assert_eq!(f, Fixer::Server);
        let (_, f, _) = alert_words(TlsAlert::from(AlertDescription::BadCertificate));
        assert_eq!(f, Fixer::Client);
        let (w, _, _) = alert_words(TlsAlert(200));
        assert!(w.contains("200"));
    }

    #[test]
    fn error_words_have_no_library_spelling() {
        use crate::session::tls::tls_error;
        let errors = [
            rustls::Error::InvalidMessage(rustls::InvalidMessage::MissingData("x")),
            rustls::Error::PeerMisbehaved(rustls::PeerMisbehaved::IllegalMiddleboxChangeCipherSpec),
            rustls::Error::PeerIncompatible(rustls::PeerIncompatible::NoCipherSuitesInCommon),
            rustls::Error::AlertReceived(AlertDescription::AccessDenied),
            rustls::Error::InvalidCertificate(rustls::CertificateError::Revoked),
            rustls::Error::NoCertificatesPresented,
            rustls::Error::DecryptError,
            rustls::Error::HandshakeNotComplete,
            rustls::Error::General("secret library words".into()),
            rustls::Error::FailedToGetCurrentTime,
        ];
        let kinds: Vec<TlsError> = errors.iter().map(tls_error).collect();
        assert_eq!(
            kinds,
            [
                TlsError::InvalidMessage,
                TlsError::PeerMisbehaved,
                TlsError::PeerIncompatible(Incompatible::CipherSuite),
                TlsError::Alert(TlsAlert(49)),
                TlsError::Certificate(CertProblem::Revoked),
                TlsError::NoCertificate,
                TlsError::DecryptError,
                TlsError::HandshakeNotComplete,
                TlsError::Unclassified,
                TlsError::LocalSetup,
            ]
        );
        for (e, k) in errors.iter().zip(kinds) {
            let (w, _, fix) = error_words(k);
            for text in [&w, fix] {
                assert!(!text.contains(&e.to_string()), "{text}");
                assert!(!text.contains(&format!("{e:?}")), "{text}");
                assert!(!text.contains(&format!("{k:?}")), "{text}");
            }
        }
        let (w, _, _) = error_words(TlsError::Alert(TlsAlert(49)));
        assert!(w.starts_with("the server ended the handshake: it refuses this client"));
        assert!(w.ends_with("alert access_denied"));
        let (w, _, _) = error_words(TlsError::Io(Some(libc::ECONNRESET)));
        assert!(w.contains("ECONNRESET"), "{w}");
    }
}
