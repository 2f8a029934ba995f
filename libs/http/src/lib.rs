//! HTTP serving for Bulwark's binaries: one connection loop for plain HTTP and HTTPS with
//! graceful shutdown, the workspace's rustls configuration for servers and clients (ring
//! provider, TLS 1.2 and 1.3 only; clients trust the platform's roots plus a pod's extra CAs), and a certificate resolver that reloads the certificate and key when their files
//! change, so cert-manager can rotate them without a restart.

mod body;
mod client;
mod reload;
mod serve;

pub use body::ResponseBody;
pub use client::{CaError, client_config, error_chain};

pub use reload::{CertFiles, Error, ReloadingResolver};
pub use serve::{Handler, response, serve, server_config, text};
