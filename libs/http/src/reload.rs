//! A `ResolvesServerCert` that re-reads the certificate chain and key when they change.
//!
//! Kubernetes updates Secret volumes by swapping a symlink, and cert-manager rewrites both
//! files; a reader can still catch the certificate of one generation and the key of another.
//! So a reload only takes effect when the pair parses *and* the key matches the certificate;
//! otherwise the served pair stays as it was and the next poll tries again.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

/// Why a certificate could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} holds no PEM certificate", path.display())]
    NoCertificate { path: PathBuf },
    #[error("{} holds no usable PEM private key", path.display())]
    Key {
        path: PathBuf,
        #[source]
        source: rustls::Error,
    },
    #[error("the key in {} does not match the certificate in {}", key.display(), cert.display())]
    Mismatch { cert: PathBuf, key: PathBuf },
}

impl Error {
    /// A bounded label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Read { .. } => "read",
            Error::NoCertificate { .. } => "no_certificate",
            Error::Key { .. } => "key",
            Error::Mismatch { .. } => "mismatch",
        }
    }
}

/// The PEM files of a serving certificate chain and its private key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Serves the most recently loaded valid certificate.
#[derive(Debug)]
pub struct ReloadingResolver {
    files: CertFiles,
    current: RwLock<Arc<CertifiedKey>>,
    /// SHA-256 of the certificate and key bytes last loaded, to skip unchanged files.
    digest: Mutex<[u8; 32]>,
}

impl ReloadingResolver {
    /// Loads `files`; unlike a reload, the first load must succeed.
    pub fn load(files: CertFiles) -> Result<Arc<Self>, Error> {
        let (key, digest) = read_pair(&files)?;
        Ok(Arc::new(Self {
            files,
            current: RwLock::new(Arc::new(key)),
            digest: Mutex::new(digest),
        }))
    }

    /// Re-reads the files. Returns whether the served certificate changed; on error the
    /// current certificate stays in place.
    pub fn reload(&self) -> Result<bool, Error> {
        let (key, digest) = read_pair(&self.files)?;
        let mut last = self.digest.lock().unwrap_or_else(|p| p.into_inner());
        if *last == digest {
            return Ok(false);
        }
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(key);
        *last = digest;
        Ok(true)
    }

    /// Polls the files every `interval` until `shutdown`, logging changes and failures.
    pub async fn watch(self: Arc<Self>, interval: Duration, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                () = tokio::time::sleep(interval) => {}
                () = shutdown.cancelled() => return,
            }
            let this = self.clone();
            match tokio::task::spawn_blocking(move || this.reload()).await {
                Ok(Ok(true)) => {
                    tracing::info!(cert = %self.files.cert.display(), "Reloaded the serving certificate.")
                }
                Ok(Ok(false)) => {}
                Ok(Err(error)) => tracing::warn!(
                    error = &error as &dyn std::error::Error,
                    "Failed to reload the serving certificate; still serving the previous one."
                ),
                Err(error) => tracing::warn!(%error, "Certificate reload task failed."),
            }
        }
    }

    /// The certificate served now.
    pub fn current(&self) -> Arc<CertifiedKey> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl ResolvesServerCert for ReloadingResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

fn read_pair(files: &CertFiles) -> Result<(CertifiedKey, [u8; 32]), Error> {
    let read = |path: &PathBuf| {
        std::fs::read(path).map_err(|source| Error::Read {
            path: path.clone(),
            source,
        })
    };
    let cert_pem = read(&files.cert)?;
    let key_pem = read(&files.key)?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .filter_map(Result::ok)
        .collect();
    if chain.is_empty() {
        return Err(Error::NoCertificate {
            path: files.cert.clone(),
        });
    }
    let key_err = |source| Error::Key {
        path: files.key.clone(),
        source,
    };
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| key_err(rustls::Error::General(e.to_string())))?;
    let provider = CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()));
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(key_err)?;
    let certified = CertifiedKey::new(chain, signing);
    certified.keys_match().map_err(|_| Error::Mismatch {
        cert: files.cert.clone(),
        key: files.key.clone(),
    })?;
    let mut digest = Sha256::new();
    digest.update(&cert_pem);
    digest.update(&key_pem);
    Ok((certified, digest.finalize().into()))
}

#[cfg(test)]
pub(crate) mod tests;
