//! The workspace's TLS client configuration: the platform's root certificates plus any extra
//! CA certificates a pod supplies (`keeper.security/ca-cert-*`), with the same ring provider
//! and TLS 1.2/1.3 floor as the servers.

use std::sync::Arc;

use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// Why extra CA certificates cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaError {
    #[error("no PEM certificate found")]
    Empty,
    #[error("{0}")]
    Invalid(String),
}

/// A client configuration trusting the platform's roots and the certificates in `extra_pem`.
pub fn client_config(extra_pem: Option<&[u8]>) -> Result<rustls::ClientConfig, CaError> {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    if let Some(pem) = extra_pem {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<_, _>>()
            .map_err(|e| CaError::Invalid(e.to_string()))?;
        if certs.is_empty() {
            return Err(CaError::Empty);
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| CaError::Invalid(e.to_string()))?;
        }
    }
    Ok(rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
    .map_err(|e| CaError::Invalid(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth())
}

/// An error and its causes on one line: hyper's own message is only "client error (Connect)".
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}
