//! Object storage for Bulwark: S3 and S3-compatible servers, and local directories, each as an
//! `Arc<dyn ObjectStore>`.
//!
//! Stores talk HTTP through [`HyperConnector`] (hyper and rustls with the ring provider), so the
//! workspace keeps one TLS stack: neither reqwest nor aws-lc-rs is linked.

mod connector;
mod s3;

use std::{
    io,
    path::{Path, PathBuf},
    sync::Arc,
};

use object_store::{ObjectStore, local::LocalFileSystem};

pub use bulwark_config::Secret;
pub use connector::{HyperConnector, platform_roots};
pub use object_store;
pub use s3::{S3Credentials, S3Encryption, S3Options, s3};

/// Why a store could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot configure the s3 store for bucket {bucket:?}")]
    S3 {
        bucket: String,
        #[source]
        source: object_store::Error,
    },
    #[error("cannot read the ca bundle {}", path.display())]
    ReadCaBundle {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the ca bundle {} holds no usable certificate", path.display())]
    EmptyCaBundle { path: PathBuf },
    #[error("cannot create the local store directory {}", path.display())]
    CreateDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot open the local store at {}", path.display())]
    Local {
        path: PathBuf,
        #[source]
        source: object_store::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A store on a local directory, created if missing. Object paths map to files below it.
pub fn local(path: &Path) -> Result<Arc<dyn ObjectStore>> {
    std::fs::create_dir_all(path).map_err(|source| Error::CreateDir {
        path: path.to_owned(),
        source,
    })?;
    let store = LocalFileSystem::new_with_prefix(path).map_err(|source| Error::Local {
        path: path.to_owned(),
        source,
    })?;
    Ok(Arc::new(store))
}

#[cfg(test)]
mod test_server;
#[cfg(test)]
mod tests;
