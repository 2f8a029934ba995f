//! The fake server's TLS identity: a throwaway CA generated at start, and a serving certificate
//! it signs for the server's loopback address, so that clients verify TLS for real (Python
//! through `REQUESTS_CA_BUNDLE`, the official Rust crate through `SSL_CERT_FILE`).

use std::net::IpAddr;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::Error;
use crate::tls::TestCa;

/// The CA a client must trust, and the server configuration that presents its certificate.
#[derive(Debug)]
pub(crate) struct Identity {
    pub(crate) ca_pem: String,
    pub(crate) config: Arc<rustls::ServerConfig>,
}

/// Always presents the one certificate: clients connect by IP address and send no SNI.
#[derive(Debug)]
struct OneCertificate(Arc<CertifiedKey>);

impl ResolvesServerCert for OneCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

/// Generates a CA and a certificate for `ip` (and `localhost`) signed by it.
pub(crate) fn generate(ip: IpAddr) -> Result<Identity, Error> {
    let tls = |source: rcgen::Error| Error::Certificate { source };
    let pem = |e: rustls::pki_types::pem::Error| Error::Tls {
        source: rustls::Error::General(e.to_string()),
    };
    let ca = TestCa::new("Bulwark fake Keeper CA").map_err(tls)?;
    let leaf = ca.issue(&[&ip.to_string(), "localhost"]).map_err(tls)?;
    let chain = CertificateDer::pem_slice_iter(leaf.chain_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem)?;
    let key_der = PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).map_err(pem)?;
    let signing_key = rustls::crypto::ring::sign::any_supported_type(&key_der)
        .map_err(|source| Error::Tls { source })?;
    let resolver = Arc::new(OneCertificate(Arc::new(CertifiedKey::new(
        chain,
        signing_key,
    ))));
    let mut config =
        bulwark_http::server_config(resolver).map_err(|source| Error::Tls { source })?;
    // The server speaks HTTP/1.1 only, which is all the SDKs use.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Identity {
        ca_pem: ca.pem().to_owned(),
        config: Arc::new(config),
    })
}
