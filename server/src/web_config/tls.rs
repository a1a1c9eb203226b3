//! The `tls_server_config` section: checking its fields against Go's names, and building a rustls
//! server configuration from it (certificates, versions, cipher suites, key-exchange groups, client
//! certificate policy). Does not accept connections ([`super::listen`] does).
//!
//! rustls (with the `ring` provider) is narrower than Go's crypto/tls: TLS 1.2 and 1.3 only, AEAD
//! ECDHE cipher suites only, no P-521. Names Go knows are accepted and those rustls cannot do are left
//! out; a configuration that leaves nothing usable is an error, never a silent downgrade.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, SupportedKxGroup, ring as provider};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ServerConfig, WebPkiClientVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};
use rustls::{SupportedCipherSuite, SupportedProtocolVersion};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, UnixTime};

use super::{PemSource, RawTls, TlsSettings, WebConfigError};

/// Go's `tls.ClientAuthType`, by the names the file uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuth {
    NoClientCert,
    /// Ask for a certificate, accept any or none (unverified).
    RequestClientCert,
    /// Require a certificate, accept any (unverified).
    RequireAnyClientCert,
    /// Verify a certificate against `client_ca_file` if the client sends one.
    VerifyClientCertIfGiven,
    /// Require a certificate verified against `client_ca_file`: the only setting that authenticates.
    RequireAndVerifyClientCert,
}

/// Accepted `client_auth_type` values (`RequireClientCert` is Prometheus' older spelling of
/// `RequireAnyClientCert`; an empty value means `NoClientCert`).
pub const CLIENT_AUTH_TYPES: &[(&str, ClientAuth)] = &[
    ("NoClientCert", ClientAuth::NoClientCert),
    ("RequestClientCert", ClientAuth::RequestClientCert),
    ("RequireAnyClientCert", ClientAuth::RequireAnyClientCert),
    ("RequireClientCert", ClientAuth::RequireAnyClientCert),
    (
        "VerifyClientCertIfGiven",
        ClientAuth::VerifyClientCertIfGiven,
    ),
    (
        "RequireAndVerifyClientCert",
        ClientAuth::RequireAndVerifyClientCert,
    ),
];

/// A TLS version as the file names it; ordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    Tls10,
    Tls11,
    Tls12,
    Tls13,
}

const TLS_VERSIONS: &[(&str, TlsVersion)] = &[
    ("TLS10", TlsVersion::Tls10),
    ("TLS11", TlsVersion::Tls11),
    ("TLS12", TlsVersion::Tls12),
    ("TLS13", TlsVersion::Tls13),
];

/// Every cipher suite name Go's `tls.CipherSuites()` lists (the names Prometheus accepts), with the
/// rustls suite it maps to. `None`: known to Go but not offered by rustls (CBC and RSA key exchange),
/// accepted and left out. TLS 1.3 suites are accepted and ignored, as in Go, where they cannot be
/// configured.
pub const GO_CIPHER_SUITES: &[(&str, Option<SupportedCipherSuite>)] = &[
    ("TLS_RSA_WITH_AES_128_CBC_SHA", None),
    ("TLS_RSA_WITH_AES_256_CBC_SHA", None),
    ("TLS_RSA_WITH_AES_128_GCM_SHA256", None),
    ("TLS_RSA_WITH_AES_256_GCM_SHA384", None),
    ("TLS_AES_128_GCM_SHA256", None),
    ("TLS_AES_256_GCM_SHA384", None),
    ("TLS_CHACHA20_POLY1305_SHA256", None),
    ("TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", None),
    ("TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", None),
    ("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", None),
    ("TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", None),
    (
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        Some(provider::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256),
    ),
    (
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        Some(provider::cipher_suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256),
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        Some(provider::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384),
    ),
    (
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        Some(provider::cipher_suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384),
    ),
    (
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        Some(provider::cipher_suite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256),
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        Some(provider::cipher_suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256),
    ),
];

/// The curve names Prometheus accepts, with the rustls group (`None`: P-521, which ring lacks).
pub const CURVES: &[(&str, Option<&dyn SupportedKxGroup>)] = &[
    ("CurveP256", Some(provider::kx_group::SECP256R1)),
    ("CurveP384", Some(provider::kx_group::SECP384R1)),
    ("CurveP521", None),
    ("X25519", Some(provider::kx_group::X25519)),
];

/// The suites HTTP/2 requires (RFC 7540 section 9.2.2); Go refuses to serve HTTP/2 with a TLS 1.2
/// suite list lacking both, and so does Ember.
const HTTP2_REQUIRED: &[&str] = &[
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
];

fn nonempty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.is_empty())
}

/// Relative file names are taken from the config file's directory.
fn join_dir(dir: &Path, p: String) -> PathBuf {
    let p = PathBuf::from(p);
    if p.is_absolute() { p } else { dir.join(p) }
}

/// Checks the section; `None` when it sets nothing that turns TLS on (as in Prometheus, where a
/// section with only versions or suites leaves the server on plain HTTP).
pub(super) fn settings(
    path: &Path,
    dir: &Path,
    raw: RawTls,
) -> Result<Option<TlsSettings>, WebConfigError> {
    let field = |f: &str| format!("tls_server_config.{f}");
    let invalid = |f: &str, msg: String| WebConfigError::invalid(path, field(f), msg);
    let cert_file = nonempty(raw.cert_file);
    let cert = nonempty(raw.cert);
    let key_file = nonempty(raw.key_file);
    let key = nonempty(raw.key);
    let ca_file = nonempty(raw.client_ca_file);
    let ca = nonempty(raw.client_ca);
    let auth_name = nonempty(raw.client_auth_type);
    let enabled = cert_file.is_some()
        || cert.is_some()
        || key_file.is_some()
        || key.is_some()
        || ca_file.is_some()
        || ca.is_some()
        || auth_name.is_some();
    if !enabled {
        return Ok(None);
    }
    // A file wins over inline text, as in Prometheus.
    let pem = |file: Option<String>, text: Option<String>| match (file, text) {
        (Some(f), _) => Some(PemSource::File(join_dir(dir, f))),
        (None, Some(t)) => Some(PemSource::Inline(t)),
        (None, None) => None,
    };
    let cert = pem(cert_file, cert).ok_or_else(|| {
        invalid(
            "cert_file",
            "TLS is on (a TLS field is set) but neither cert_file nor cert is".into(),
        )
    })?;
    let key = pem(key_file, key).ok_or_else(|| {
        invalid(
            "key_file",
            "TLS is on (a TLS field is set) but neither key_file nor key is".into(),
        )
    })?;
    let client_ca = pem(ca_file, ca);
    let client_auth = match auth_name.as_deref() {
        None => ClientAuth::NoClientCert,
        Some(name) => CLIENT_AUTH_TYPES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, a)| *a)
            .ok_or_else(|| {
                let names: Vec<&str> = CLIENT_AUTH_TYPES.iter().map(|(n, _)| *n).collect();
                invalid(
                    "client_auth_type",
                    format!(
                        "unknown value {name:?} (expected one of {})",
                        names.join(", ")
                    ),
                )
            })?,
    };
    if client_ca.is_some() && client_auth == ClientAuth::NoClientCert {
        return Err(invalid(
            "client_ca_file",
            "a client CA is set but client_auth_type is NoClientCert; set client_auth_type \
             (RequireAndVerifyClientCert to authenticate clients)"
                .into(),
        ));
    }
    if client_ca.is_none()
        && matches!(
            client_auth,
            ClientAuth::VerifyClientCertIfGiven | ClientAuth::RequireAndVerifyClientCert
        )
    {
        // Go would fall back to the system's roots; trusting every public CA to authenticate
        // clients is never what is meant, so Ember asks for the CA instead.
        return Err(invalid(
            "client_ca_file",
            format!(
                "client_auth_type {client_auth:?} verifies client certificates and needs client_ca_file (or client_ca)"
            ),
        ));
    }
    let version = |f: &str, v: Option<String>, default: TlsVersion| match nonempty(v) {
        None => Ok(default),
        Some(name) => TLS_VERSIONS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
            .ok_or_else(|| {
                invalid(
                    f,
                    format!("unknown TLS version {name:?} (expected TLS10, TLS11, TLS12 or TLS13)"),
                )
            }),
    };
    let min_version = version("min_version", raw.min_version, TlsVersion::Tls12)?;
    let max_version = version("max_version", raw.max_version, TlsVersion::Tls13)?;
    let cipher_suites = raw.cipher_suites.unwrap_or_default();
    for name in &cipher_suites {
        if !GO_CIPHER_SUITES.iter().any(|(n, _)| n == name) {
            return Err(invalid(
                "cipher_suites",
                format!(
                    "unknown cipher suite {name:?} (Go's crypto/tls names, e.g. TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256)"
                ),
            ));
        }
    }
    let curve_preferences = raw.curve_preferences.unwrap_or_default();
    for name in &curve_preferences {
        if !CURVES.iter().any(|(n, _)| n == name) {
            return Err(invalid(
                "curve_preferences",
                format!(
                    "unknown curve {name:?} (expected CurveP256, CurveP384, CurveP521 or X25519)"
                ),
            ));
        }
    }
    Ok(Some(TlsSettings {
        cert,
        key,
        client_ca,
        client_auth,
        min_version,
        max_version,
        cipher_suites,
        prefer_server_cipher_suites: raw.prefer_server_cipher_suites.unwrap_or(true),
        curve_preferences,
        client_allowed_sans: raw.client_allowed_sans,
    }))
}

pub(super) fn check_http2_cipher(
    path: &Path,
    t: &TlsSettings,
    http2: bool,
) -> Result<(), WebConfigError> {
    if http2
        && !t.cipher_suites.is_empty()
        && t.min_version < TlsVersion::Tls13
        && !t
            .cipher_suites
            .iter()
            .any(|s| HTTP2_REQUIRED.contains(&s.as_str()))
    {
        return Err(WebConfigError::invalid(
            path,
            "tls_server_config.cipher_suites",
            format!(
                "HTTP/2 (http_server_config.http2, on by default) needs {} or {} in the list",
                HTTP2_REQUIRED[0], HTTP2_REQUIRED[1]
            ),
        ));
    }
    Ok(())
}

fn read_pem(config: &Path, src: &PemSource) -> Result<(Vec<u8>, String), WebConfigError> {
    match src {
        PemSource::Inline(t) => Ok((t.clone().into_bytes(), "inline PEM".into())),
        PemSource::File(p) => std::fs::read(p)
            .map(|b| (b, p.display().to_string()))
            .map_err(|source| WebConfigError::Read {
                config: config.to_path_buf(),
                path: p.clone(),
                source,
            }),
    }
}

fn certificates(
    config: &Path,
    field: &str,
    src: &PemSource,
) -> Result<Vec<CertificateDer<'static>>, WebConfigError> {
    let (bytes, what) = read_pem(config, src)?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<_, _>>()
        .map_err(|e| WebConfigError::invalid(config, field, format!("{what}: {e}")))?;
    if certs.is_empty() {
        return Err(WebConfigError::invalid(
            config,
            field,
            format!("{what} holds no PEM certificate"),
        ));
    }
    Ok(certs)
}

/// Builds the rustls configuration; reads the certificate, key and CA files.
pub(super) fn server_config(
    config: &Path,
    t: &TlsSettings,
    http2: bool,
) -> Result<Arc<ServerConfig>, WebConfigError> {
    let invalid = |f: &str, msg: String| {
        WebConfigError::invalid(config, format!("tls_server_config.{f}"), msg)
    };
    let certs = certificates(config, "tls_server_config.cert_file", &t.cert)?;
    let (key_bytes, key_what) = read_pem(config, &t.key)?;
    let key = PrivateKeyDer::from_pem_slice(&key_bytes).map_err(|e| {
        invalid(
            "key_file",
            format!("{key_what}: no usable private key ({e})"),
        )
    })?;

    if t.max_version < TlsVersion::Tls12 {
        return Err(invalid(
            "max_version",
            "Ember serves TLS 1.2 and 1.3 only; max_version must be TLS12 or TLS13".into(),
        ));
    }
    if t.min_version > t.max_version {
        return Err(invalid(
            "min_version",
            format!(
                "{:?} is above max_version {:?}",
                t.min_version, t.max_version
            ),
        ));
    }
    let mut tls12 = t.min_version <= TlsVersion::Tls12;
    let tls13 = t.max_version >= TlsVersion::Tls13;

    let mut p: CryptoProvider = provider::default_provider();
    if !t.cipher_suites.is_empty() {
        let chosen: Vec<SupportedCipherSuite> = t
            .cipher_suites
            .iter()
            .filter_map(|n| GO_CIPHER_SUITES.iter().find(|(g, _)| g == n))
            .filter_map(|(_, s)| *s)
            .collect();
        if chosen.is_empty() && tls12 {
            if !tls13 {
                return Err(invalid(
                    "cipher_suites",
                    "none of the listed TLS 1.2 suites is available in Ember (rustls offers only \
                     the ECDHE AES-GCM and ChaCha20-Poly1305 suites), so no TLS 1.2 handshake could succeed"
                        .into(),
                ));
            }
            tracing::warn!(
                file = %config.display(),
                "none of the listed TLS 1.2 cipher suites is available in rustls: serving TLS 1.3 only"
            );
            tls12 = false;
        }
        // TLS 1.3 suites stay as rustls orders them; the list orders the TLS 1.2 ones.
        let mut suites: Vec<SupportedCipherSuite> = p
            .cipher_suites
            .iter()
            .copied()
            .filter(|s| s.tls13().is_some())
            .collect();
        suites.extend(chosen);
        p.cipher_suites = suites;
    }
    if !t.curve_preferences.is_empty() {
        let groups: Vec<&'static dyn SupportedKxGroup> = t
            .curve_preferences
            .iter()
            .filter_map(|n| CURVES.iter().find(|(c, _)| c == n))
            .filter_map(|(_, g)| *g)
            .collect();
        if groups.is_empty() {
            return Err(invalid(
                "curve_preferences",
                "none of the listed curves is available in Ember (X25519, CurveP256 and CurveP384 are)"
                    .into(),
            ));
        }
        p.kx_groups = groups;
    }
    let provider = Arc::new(p);

    let mut versions: Vec<&'static SupportedProtocolVersion> = Vec::new();
    if tls13 {
        versions.push(&rustls::version::TLS13);
    }
    if tls12 {
        versions.push(&rustls::version::TLS12);
    }
    let verifier = client_verifier(config, t, &provider)?;
    let mut sc = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .map_err(|e| invalid("min_version", e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .map_err(|e| invalid("cert_file", format!("certificate and key do not fit: {e}")))?;
    sc.ignore_client_order = t.prefer_server_cipher_suites;
    sc.alpn_protocols = if http2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    Ok(Arc::new(sc))
}

fn client_verifier(
    config: &Path,
    t: &TlsSettings,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, WebConfigError> {
    let field = "tls_server_config.client_ca_file";
    let roots = || -> Result<Arc<RootCertStore>, WebConfigError> {
        let mut roots = RootCertStore::empty();
        if let Some(src) = &t.client_ca {
            for c in certificates(config, field, src)? {
                roots
                    .add(c)
                    .map_err(|e| WebConfigError::invalid(config, field, e.to_string()))?;
            }
        }
        Ok(Arc::new(roots))
    };
    let webpki = |allow_none: bool| -> Result<Arc<dyn ClientCertVerifier>, WebConfigError> {
        let b = WebPkiClientVerifier::builder_with_provider(roots()?, provider.clone());
        let b = if allow_none {
            b.allow_unauthenticated()
        } else {
            b
        };
        b.build()
            .map_err(|e| WebConfigError::invalid(config, field, e.to_string()))
    };
    let any = |mandatory: bool| -> Arc<dyn ClientCertVerifier> {
        Arc::new(AnyClientCert {
            mandatory,
            provider: provider.clone(),
        })
    };
    let base = match t.client_auth {
        ClientAuth::NoClientCert => return Ok(WebPkiClientVerifier::no_client_auth()),
        ClientAuth::RequestClientCert => any(false),
        ClientAuth::RequireAnyClientCert => any(true),
        ClientAuth::VerifyClientCertIfGiven => webpki(true)?,
        ClientAuth::RequireAndVerifyClientCert => webpki(false)?,
    };
    Ok(match &t.client_allowed_sans {
        Some(allowed) => Arc::new(AllowedSans {
            inner: base,
            allowed: allowed.clone(),
        }),
        None => base,
    })
}

/// Go's `RequestClientCert`/`RequireAnyClientCert`: the certificate is taken without checking who
/// issued it. The handshake signature is still checked, so the client holds the certificate's key.
#[derive(Debug)]
struct AnyClientCert {
    mandatory: bool,
    provider: Arc<CryptoProvider>,
}

impl ClientCertVerifier for AnyClientCert {
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// `client_allowed_sans`: after the policy's own check, the client certificate must carry one of the
/// names, compared as exact strings against its DNS, e-mail, IP and URI alternative names (as
/// Prometheus compares them).
#[derive(Debug)]
struct AllowedSans {
    inner: Arc<dyn ClientCertVerifier>,
    allowed: Vec<String>,
}

/// The subject alternative names of a DER certificate as strings (IPs in their usual text form).
pub(crate) fn subject_alt_names(der: &[u8]) -> Result<Vec<String>, String> {
    use x509_parser::extensions::GeneralName;
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| e.to_string())?;
    let Some(san) = cert.subject_alternative_name().map_err(|e| e.to_string())? else {
        return Ok(vec![]);
    };
    let mut out = Vec::new();
    for name in &san.value.general_names {
        match name {
            GeneralName::DNSName(s) | GeneralName::RFC822Name(s) | GeneralName::URI(s) => {
                out.push((*s).to_string())
            }
            GeneralName::IPAddress(b) => {
                if let Ok(v4) = <[u8; 4]>::try_from(*b) {
                    out.push(std::net::IpAddr::from(v4).to_string());
                } else if let Ok(v6) = <[u8; 16]>::try_from(*b) {
                    out.push(std::net::IpAddr::from(v6).to_string());
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

impl ClientCertVerifier for AllowedSans {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let ok = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        let names = subject_alt_names(end_entity).map_err(|e| {
            rustls::Error::General(format!("cannot read the client certificate: {e}"))
        })?;
        if names.iter().any(|n| self.allowed.contains(n)) {
            Ok(ok)
        } else {
            Err(rustls::Error::General(format!(
                "client certificate names {names:?}, none of client_allowed_sans"
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
