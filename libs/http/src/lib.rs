//! HTTP serving for Bulwark's binaries: one connection loop for plain HTTP and HTTPS with
//! graceful shutdown, the workspace's rustls configuration (ring provider, TLS 1.2 and 1.3
//! only), and a certificate resolver that reloads the certificate and key when their files
//! change, so cert-manager can rotate them without a restart.

mod reload;
mod serve;

pub use reload::{CertFiles, Error, ReloadingResolver};
pub use serve::{Handler, ResponseBody, response, serve, server_config, text};
