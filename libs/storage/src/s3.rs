//! Amazon S3 and S3-compatible servers (MinIO, moto) through object_store's S3 client.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use bulwark_config::Secret;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::{BackoffConfig, ClientOptions, ObjectStore, RetryConfig};
use rustls::{
    RootCertStore,
    pki_types::{CertificateDer, pem::PemObject},
};

use crate::{Error, HyperConnector, Result, platform_roots};

/// Where and how to reach one S3 bucket.
#[derive(Debug, Clone, Default)]
pub struct S3Options {
    /// The bucket name.
    pub bucket: String,
    /// The endpoint URL of an S3-compatible server, such as `http://minio:9000`;
    /// `None` for AWS S3, whose endpoint follows from the region.
    pub endpoint: Option<String>,
    /// The region; `None` takes `AWS_REGION` (through object_store's environment chain when no
    /// static credentials are given), then `us-east-1`.
    pub region: Option<String>,
    /// Allows a plain `http://` endpoint. Without it such requests fail and are not retried.
    pub allow_http: bool,
    /// Addresses the bucket as `<bucket>.<host>` (virtual-hosted style) instead of
    /// `<host>/<bucket>` (path style, the default, which every S3-compatible server accepts).
    /// With an `endpoint`, the endpoint must then already name the bucket.
    pub virtual_hosted_style: bool,
    /// Static credentials. `None` uses object_store's chain: the `AWS_*` environment variables,
    /// web identity (IRSA), ECS and EKS pod identity, then the instance metadata service.
    pub credentials: Option<S3Credentials>,
    /// A PEM file of extra CA certificates to trust besides the platform's, for an endpoint
    /// with a private CA.
    pub ca_bundle: Option<PathBuf>,
    /// Server-side encryption of the objects written; `None` leaves it to the bucket's default.
    pub encryption: Option<S3Encryption>,
    /// How long one request may take, from sending it to the end of the response body;
    /// `None` is object_store's 30 s.
    pub timeout: Option<Duration>,
    /// How long connecting may take; `None` is object_store's 5 s.
    pub connect_timeout: Option<Duration>,
    /// How often a failed request (5xx, throttling, timeouts, connection errors) is retried,
    /// with backoff; `None` is object_store's 10.
    pub max_retries: Option<usize>,
    /// No retry starts later than this after the first attempt; `None` is object_store's 3 min.
    pub retry_timeout: Option<Duration>,
}

/// Server-side encryption of what is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum S3Encryption {
    /// SSE-S3: keys managed by the storage service (`AES256`).
    S3,
    /// SSE-KMS: a KMS key, by id, alias or ARN, or the account's `aws/s3` key when `None`.
    Kms {
        key_id: Option<String>,
        /// Use an S3 Bucket Key (fewer KMS calls); `None` keeps the bucket's setting.
        bucket_key: Option<bool>,
    },
}

/// An access key pair, and a session token for temporary credentials.
#[derive(Debug, Clone)]
pub struct S3Credentials {
    pub access_key_id: String,
    pub secret_access_key: Secret,
    pub session_token: Option<Secret>,
}

/// Builds the S3 store for `options`.
///
/// Nothing is contacted yet: a wrong endpoint or bucket shows on the first request.
pub fn s3(options: &S3Options) -> Result<Arc<dyn ObjectStore>> {
    let connector = match &options.ca_bundle {
        Some(path) => {
            let mut roots = platform_roots();
            add_ca_bundle(&mut roots, path)?;
            HyperConnector::with_roots(roots)
        }
        None => HyperConnector::new(),
    };
    // Explicit credentials make the store independent of the process environment; without them
    // the environment is where IRSA and friends announce themselves.
    let mut builder = match &options.credentials {
        Some(credentials) => {
            let builder = AmazonS3Builder::new()
                .with_access_key_id(&credentials.access_key_id)
                .with_secret_access_key(credentials.secret_access_key.expose());
            match &credentials.session_token {
                Some(token) => builder.with_token(token.expose()),
                None => builder,
            }
        }
        None => AmazonS3Builder::from_env(),
    };
    // Client options first: `with_client_options` replaces what `with_allow_http` set.
    let mut client = ClientOptions::new();
    if let Some(timeout) = options.timeout {
        client = client.with_timeout(timeout);
    }
    if let Some(timeout) = options.connect_timeout {
        client = client.with_connect_timeout(timeout);
    }
    builder = builder
        .with_client_options(client)
        .with_bucket_name(&options.bucket)
        .with_allow_http(options.allow_http)
        .with_virtual_hosted_style_request(options.virtual_hosted_style)
        .with_http_connector(connector);
    if let Some(endpoint) = &options.endpoint {
        builder = builder.with_endpoint(endpoint);
    }
    if let Some(region) = &options.region {
        builder = builder.with_region(region);
    }
    let defaults = RetryConfig::default();
    builder = builder.with_retry(RetryConfig {
        backoff: BackoffConfig::default(),
        max_retries: options.max_retries.unwrap_or(defaults.max_retries),
        retry_timeout: options.retry_timeout.unwrap_or(defaults.retry_timeout),
    });
    match &options.encryption {
        None => {}
        Some(S3Encryption::S3) => {
            builder = builder.with_config(sse_key(&options.bucket)?, "AES256");
        }
        Some(S3Encryption::Kms { key_id, bucket_key }) => {
            builder = match key_id {
                Some(key_id) => builder.with_sse_kms_encryption(key_id),
                None => builder.with_config(sse_key(&options.bucket)?, "aws:kms"),
            };
            if let Some(enabled) = bucket_key {
                builder = builder.with_bucket_key(*enabled);
            }
        }
    }
    let store = builder.build().map_err(|source| Error::S3 {
        bucket: options.bucket.clone(),
        source,
    })?;
    Ok(Arc::new(store))
}

/// The `server_side_encryption` setting (object_store does not export its enum's variant).
fn sse_key(bucket: &str) -> Result<AmazonS3ConfigKey> {
    "aws_server_side_encryption"
        .parse()
        .map_err(|source| Error::S3 {
            bucket: bucket.to_owned(),
            source,
        })
}

/// Adds every certificate in the PEM file at `path` to `roots`.
fn add_ca_bundle(roots: &mut RootCertStore, path: &Path) -> Result<()> {
    let pem = std::fs::read(path).map_err(|source| Error::ReadCaBundle {
        path: path.to_owned(),
        source,
    })?;
    let certs = CertificateDer::pem_slice_iter(&pem).filter_map(|cert| cert.ok());
    let (added, _ignored) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(Error::EmptyCaBundle {
            path: path.to_owned(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
