//! TLS with rustls (ring): the upstream client's configuration (system roots plus an internal
//! CA, an optional client certificate, or an explicit opt-out of verification), the listener's
//! certificate, and plain-language reasons for handshake failures.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig,
    SignatureScheme,
};

/// TLS settings for the upstream.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UpstreamTls {
    /// PEM bundle of extra trusted CAs (`--upstream-ca`).
    pub ca: Option<PathBuf>,
    /// PEM certificate chain and key presented to the upstream.
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// Skip certificate verification (`--upstream-insecure`).
    pub insecure: bool,
}

/// A certificate or key file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {what} {}", path.display())]
    Read {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    #[error("{what} {} holds no certificate (expected PEM \"BEGIN CERTIFICATE\" blocks)", path.display())]
    Empty { what: &'static str, path: PathBuf },
    #[error("{what} {} is not accepted", path.display())]
    Rejected {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: rustls::Error,
    },
}

fn certificates(what: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let read = |source| TlsError::Read {
        what,
        path: path.to_owned(),
        source,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(read)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(read)?;
    if certs.is_empty() {
        return Err(TlsError::Empty {
            what,
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|source| TlsError::Read {
        what: "private key",
        path: path.to_owned(),
        source,
    })
}

/// The upstream client's configuration (ALPN is set by the connector).
///
/// # Errors
/// [`TlsError`] naming the file that cannot be used.
pub fn upstream_client_config(tls: &UpstreamTls) -> Result<ClientConfig, TlsError> {
    let builder = ClientConfig::builder();
    let builder = if tls.insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification::new()))
    } else {
        let mut roots = RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        let (added, _) = roots.add_parsable_certificates(native.certs);
        if added == 0 {
            // No system store (a minimal container): fall back to the Mozilla roots.
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        if let Some(ca) = &tls.ca {
            for cert in certificates("--upstream-ca", ca)? {
                roots.add(cert).map_err(|source| TlsError::Rejected {
                    what: "--upstream-ca",
                    path: ca.clone(),
                    source,
                })?;
            }
        }
        builder.with_root_certificates(roots)
    };
    match &tls.client_cert {
        Some((cert, key)) => {
            let chain = certificates("--upstream-client-cert", cert)?;
            builder
                .with_client_auth_cert(chain, private_key(key)?)
                .map_err(|source| TlsError::Rejected {
                    what: "--upstream-client-key",
                    path: key.clone(),
                    source,
                })
        }
        None => Ok(builder.with_no_client_auth()),
    }
}

/// The listener's configuration, offering HTTP/2 and HTTP/1.1 by ALPN.
///
/// # Errors
/// [`TlsError`] naming the file that cannot be used.
pub fn listener_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let chain = certificates("--tls-cert", cert)?;
    let mut config = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, private_key(key)?)
        .map_err(|source| TlsError::Rejected {
            what: "--tls-key",
            path: key.to_owned(),
            source,
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A plain-language reason when `err`'s causes include a TLS failure.
pub fn describe_failure(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut source = Some(err);
    while let Some(cause) = source {
        let rustls_error = cause.downcast_ref::<rustls::Error>().or_else(|| {
            cause
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        });
        if let Some(tls) = rustls_error {
            return Some(match tls {
                rustls::Error::InvalidCertificate(reason) => match reason {
                    CertificateError::UnknownIssuer => "TLS: the upstream's certificate is signed by an unknown CA (give the GHES CA bundle with --upstream-ca FILE)".to_owned(),
                    CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                        "TLS: the upstream's certificate is not valid for this host name (wrong host name; use the name the certificate was issued for)".to_owned()
                    }
                    CertificateError::Expired | CertificateError::ExpiredContext { .. } => "TLS: the upstream's certificate has expired".to_owned(),
                    other => format!("TLS: the upstream's certificate was rejected: {other:?}"),
                },
                other => format!("TLS: {other}"),
            });
        }
        source = cause.source();
    }
    // The connector may hand the rustls error over as text inside an io::Error (whose
    // `source()` skips the error it wraps): classify by rustls's own wording then.
    let mut text = String::new();
    let mut source = Some(err);
    while let Some(cause) = source {
        text.push_str(&cause.to_string());
        text.push('\n');
        source = cause.source();
    }
    let lower = text.to_ascii_lowercase();
    if lower.contains("invalid peer certificate") {
        let reason = if lower.contains("unknownissuer") || lower.contains("unknown issuer") {
            "TLS: the upstream's certificate is signed by an unknown CA (give the GHES CA bundle with --upstream-ca FILE)".to_owned()
        } else if lower.contains("not valid for name") || lower.contains("notvalidforname") {
            "TLS: the upstream's certificate is not valid for this host name (wrong host name; use the name the certificate was issued for)".to_owned()
        } else if lower.contains("expired") {
            "TLS: the upstream's certificate has expired".to_owned()
        } else {
            format!(
                "TLS: the upstream's certificate was rejected ({})",
                text.lines().next_back().unwrap_or_default()
            )
        };
        return Some(reason);
    }
    if lower.contains("received fatal alert") || lower.contains("tls handshake") {
        let detail = text
            .lines()
            .rfind(|l| !l.is_empty())
            .unwrap_or_default()
            .to_owned();
        return Some(format!(
            "TLS: the upstream refused the handshake ({detail}); it may require a client certificate (--upstream-client-cert and --upstream-client-key)"
        ));
    }
    None
}

/// `--upstream-insecure`: accepts any certificate, still checking handshake signatures.
#[derive(Debug)]
struct NoVerification(Arc<rustls::crypto::CryptoProvider>);

impl NoVerification {
    fn new() -> Self {
        Self(Arc::new(rustls::crypto::ring::default_provider()))
    }
}

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
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
            &self.0.signature_verification_algorithms,
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
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
