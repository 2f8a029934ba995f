//! The fake server's TLS identity: a throwaway CA generated at start, and a serving certificate
//! it signs for the server's loopback address, so that clients verify TLS for real (Python
//! through `REQUESTS_CA_BUNDLE`, the official Rust crate through `SSL_CERT_FILE`).

use std::net::IpAddr;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::Error;

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

    let ca_key = KeyPair::generate().map_err(tls)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(tls)?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Bulwark fake Keeper CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params.self_signed(&ca_key).map_err(tls)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let leaf_key = KeyPair::generate().map_err(tls)?;
    let mut leaf_params =
        CertificateParams::new(vec![ip.to_string(), "localhost".to_owned()]).map_err(tls)?;
    leaf_params
        .distinguished_name
        .push(DnType::CommonName, "fake keeper");
    leaf_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    // Python 3.13's default strict verification wants the authority key identifier.
    leaf_params.use_authority_key_identifier_extension = true;
    let leaf_cert = leaf_params.signed_by(&leaf_key, &issuer).map_err(tls)?;

    let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let signing_key = rustls::crypto::ring::sign::any_supported_type(&key_der)
        .map_err(|source| Error::Tls { source })?;
    let chain: Vec<CertificateDer<'static>> = vec![leaf_cert.der().clone(), ca_cert.der().clone()];
    let resolver = Arc::new(OneCertificate(Arc::new(CertifiedKey::new(
        chain,
        signing_key,
    ))));
    let mut config =
        bulwark_http::server_config(resolver).map_err(|source| Error::Tls { source })?;
    // The server speaks HTTP/1.1 only, which is all the SDKs use.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Identity {
        ca_pem: ca_cert.pem(),
        config: Arc::new(config),
    })
}
