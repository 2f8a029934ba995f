//! Building the client: a kubeconfig file and context when given, otherwise the in-cluster
//! service account, otherwise the default kubeconfig.

use std::path::PathBuf;

use kube::config::{Config, KubeConfigOptions, Kubeconfig};

use crate::{Error, Result};

/// Where the client's configuration comes from.
#[derive(Debug, Clone, Default)]
pub struct ClientOptions {
    /// A kubeconfig file; `None` means in-cluster config, falling back to the default kubeconfig.
    pub kubeconfig: Option<PathBuf>,
    /// A context in the kubeconfig; `None` means its current context.
    pub context: Option<String>,
}

/// Builds a client as `options` say.
pub async fn client(options: &ClientOptions) -> Result<kube::Client> {
    let kube_opts = KubeConfigOptions {
        context: options.context.clone(),
        ..Default::default()
    };
    let config = match &options.kubeconfig {
        Some(path) => {
            let kubeconfig = Kubeconfig::read_from(path).map_err(|source| Error::Kubeconfig {
                path: path.display().to_string(),
                source,
            })?;
            Config::from_custom_kubeconfig(kubeconfig, &kube_opts)
                .await
                .map_err(|e| Error::Config(Box::new(e)))?
        }
        None if options.context.is_some() => Config::from_kubeconfig(&kube_opts)
            .await
            .map_err(|e| Error::Config(Box::new(e)))?,
        None => Config::infer()
            .await
            .map_err(|e| Error::Config(Box::new(e)))?,
    };
    kube::Client::try_from(config).map_err(Error::Client)
}

/// A readiness probe: the API server answers `/version`.
pub async fn api_probe(client: &kube::Client) -> Result<(), Error> {
    client
        .apiserver_version()
        .await
        .map(|_| ())
        .map_err(Error::Api)
}
