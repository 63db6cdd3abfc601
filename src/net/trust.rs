//! Which servers the engine trusts, for TDP and storage alike: the bundled web roots, the
//! operating system's store (where a company's IT installs its TLS-inspection CA) and any CA
//! files the user adds. Extra CAs add to the roots and never replace them, and nothing here
//! touches process-wide TLS settings.
//!
//! reqwest's errors do not carry the certificate chain, so the verifier is wrapped: when a
//! server's certificate fails, the error it returns names the host and the CA at the top of the
//! chain the server presented; that is what the user has to ask IT about.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, OtherError, RootCertStore, SignatureScheme};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A server certificate that did not verify, as the wrapped verifier saw it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{host} presented a certificate {problem}")]
pub struct UntrustedCertificate {
    /// The host name the connection was for.
    pub host: String,
    /// The issuer at the top of the chain the server sent (its common name when it has one).
    pub issuer: Option<String>,
    pub problem: Problem,
}

/// What was wrong with a server's certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// Signed by a CA that is not among the trusted roots: TLS inspection, a private CA.
    UnknownIssuer,
    Expired,
    NotYetValid,
    WrongName,
    Revoked,
    Other,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Problem::UnknownIssuer => "from a CA that this computer does not trust",
            Problem::Expired => "that has expired",
            Problem::NotYetValid => "that is not valid yet (is this computer's clock right?)",
            Problem::WrongName => "made out for another name",
            Problem::Revoked => "that has been revoked",
            Problem::Other => "that could not be verified",
        })
    }
}

/// Why the trust settings could not be built: an extra CA file that cannot be used.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TrustError {
    #[error("cannot read the CA certificate file {path}: {reason}")]
    Unreadable { path: PathBuf, reason: String },
    #[error("{0} holds no PEM certificate (expected -----BEGIN CERTIFICATE-----)")]
    NoCertificate(PathBuf),
    #[error("{path} holds a certificate that cannot be used as a CA: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("could not set up TLS: {0}")]
    Setup(String),
}

/// A TLS client configuration to hand to every HTTP client of a job.
#[derive(Clone)]
pub struct Trust {
    config: rustls::ClientConfig,
}

impl std::fmt::Debug for Trust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Trust")
    }
}

impl Trust {
    /// Bundled roots, the OS store, and the certificates in `extra_ca_files`.
    pub fn new(extra_ca_files: &[PathBuf]) -> Result<Self, TrustError> {
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        // A store that cannot be read (no CA bundle installed) leaves the bundled roots.
        let native = rustls_native_certs::load_native_certs();
        for e in &native.errors {
            tracing::warn!("could not read part of the OS certificate store: {e}");
        }
        let (added, ignored) = roots.add_parsable_certificates(native.certs);
        tracing::debug!("OS certificate store: {added} roots added, {ignored} ignored");
        for path in extra_ca_files {
            for cert in read_pem(path)? {
                roots.add(cert).map_err(|e| TrustError::Invalid {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|e| TrustError::Setup(e.to_string()))?;
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TrustError::Setup(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NamingVerifier { inner }))
            .with_no_client_auth();
        // What reqwest asks for by itself when it builds the configuration.
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Trust { config })
    }

    /// A client builder that verifies servers with these roots.
    pub(crate) fn apply(&self, builder: reqwest::ClientBuilder) -> reqwest::ClientBuilder {
        builder.use_preconfigured_tls(self.config.clone())
    }
}

fn read_pem(path: &Path) -> Result<Vec<CertificateDer<'static>>, TrustError> {
    let bytes = std::fs::read(path).map_err(|e| TrustError::Unreadable {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TrustError::Invalid {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TrustError::NoCertificate(path.to_path_buf()));
    }
    Ok(certs)
}

/// The webpki verifier, with failures that say who presented what.
#[derive(Debug)]
struct NamingVerifier {
    inner: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for NamingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            .map_err(|e| match e {
                rustls::Error::InvalidCertificate(cause) => {
                    let top = intermediates.last().unwrap_or(end_entity);
                    let named = UntrustedCertificate {
                        host: server_name.to_str().into_owned(),
                        issuer: issuer_name(top),
                        problem: problem(&cause),
                    };
                    rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(
                        Arc::new(named),
                    )))
                }
                other => other,
            })
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

fn problem(e: &CertificateError) -> Problem {
    match e {
        CertificateError::UnknownIssuer | CertificateError::BadSignature => Problem::UnknownIssuer,
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => Problem::Expired,
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            Problem::NotYetValid
        }
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            Problem::WrongName
        }
        CertificateError::Revoked => Problem::Revoked,
        _ => Problem::Other,
    }
}

/// The issuer's common name, or its whole distinguished name when it has none.
fn issuer_name(cert: &CertificateDer<'_>) -> Option<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let issuer = parsed.issuer();
    let cn = issuer
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_string);
    cn.or_else(|| Some(issuer.to_string()))
        .filter(|s| !s.is_empty())
}
