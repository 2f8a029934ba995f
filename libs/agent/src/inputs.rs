//! What the webhook hands to the init and sidecar containers: the spec, the KSM configuration
//! and the pod's identity, all in environment variables (see `bulwark_sidecar_spec`), or, for
//! the cloud auth methods, the place the KSM configuration is stored, fetched with the pod's
//! workload identity (`bulwark_cloud`).

use std::time::{Duration, Instant};

use bulwark_cloud::Location;
use bulwark_config::{Secret, Source};
use bulwark_ksm::KsmConfig;
use bulwark_sidecar_spec::{self as spec, Auth, SidecarSpec};

/// The init container fetches once and exits; the sidecar keeps refreshing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Init,
    Sidecar,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Init => "init",
            Mode::Sidecar => "sidecar",
        }
    }
}

/// The container's inputs.
#[derive(Debug, Clone)]
pub struct Inputs {
    pub spec: SidecarSpec,
    /// The KSM configuration as the pod received it (the cache key derives from it); its
    /// `Debug` is redacted.
    pub ksm_config: Secret,
    /// That configuration, parsed; its `Debug` shows nothing secret.
    pub ksm: KsmConfig,
    /// The pod, for logs: `namespace/name`, or empty when the downward API gives none.
    pub pod: String,
}

/// Why the inputs are unusable; the container exits 64 with this message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error(
        "{0} is not set: this container is started by the Bulwark injector webhook, which sets it"
    )]
    Missing(&'static str),
    #[error(transparent)]
    NotUtf8(#[from] bulwark_config::NotUnicode),
    #[error("{var}: {message}")]
    Spec { var: &'static str, message: String },
    #[error("{var}: {error}")]
    KsmConfig {
        var: &'static str,
        error: bulwark_ksm::ConfigError,
    },
    #[error("the KSM configuration in {method}: {error}")]
    Stored {
        method: &'static str,
        error: bulwark_ksm::ConfigError,
    },
    #[error("cannot fetch the KSM configuration: {0}")]
    Cloud(bulwark_cloud::Error),
}

impl Error {
    /// Whether only a change to the pod's inputs can help (the container exits 64); otherwise
    /// the store could not be reached for now.
    pub fn is_invalid_input(&self) -> bool {
        !matches!(self, Error::Cloud(e) if e.is_transient())
    }

    /// How a container in `mode` exits on this error, which it logs: 64 when only a change to
    /// the pod helps; otherwise (a store that cannot be reached) as for undelivered secrets,
    /// which in init mode `fail_on_error` decides.
    pub fn exit_code(&self, mode: Mode, fail_on_error: bool) -> u8 {
        if self.is_invalid_input() {
            tracing::error!(error = %self, "Invalid inputs.");
            bulwark_config::EXIT_USAGE
        } else if mode == Mode::Init && !fail_on_error {
            tracing::warn!(error = %self, "Cannot deliver the secrets; starting the pod without them (keeper.security/fail-on-error: \"false\").");
            0
        } else {
            tracing::error!(error = %self, "Cannot deliver the secrets.");
            crate::run::EXIT_UNDELIVERED
        }
    }
}

/// The inputs before the KSM configuration is at hand: when the spec says it is stored in a
/// cloud, [`Pending::fetch`] gets it.
#[derive(Debug, Clone)]
pub struct Pending {
    pub spec: SidecarSpec,
    pod: String,
}

impl Inputs {
    /// Reads the inputs from `env` (the process environment in production), for a pod whose
    /// KSM configuration comes in the environment; see [`Pending`] for the cloud methods.
    pub fn read(env: &dyn Source) -> Result<Self, Error> {
        Self::begin(env)?.finish(env, None)
    }

    /// Reads the spec and the pod's identity.
    pub fn begin(env: &dyn Source) -> Result<Pending, Error> {
        let get = |name: &'static str| env.get(name).map_err(Error::NotUtf8);
        let text = get(spec::SPEC_ENV)?.ok_or(Error::Missing(spec::SPEC_ENV))?;
        let spec = SidecarSpec::from_json(&text).map_err(|e| Error::Spec {
            var: spec::SPEC_ENV,
            message: e.to_string(),
        })?;
        let name = get(spec::POD_NAME_ENV)?.unwrap_or_default();
        let namespace = get(spec::POD_NAMESPACE_ENV)?.unwrap_or_default();
        let pod = match (namespace.is_empty(), name.is_empty()) {
            (_, true) => String::new(),
            (true, false) => name,
            (false, false) => format!("{namespace}/{name}"),
        };
        Ok(Pending { spec, pod })
    }
}

impl Pending {
    /// Where the KSM configuration is stored, for the cloud auth methods.
    pub fn location(&self) -> Option<Location> {
        match &self.spec.auth {
            Auth::Secret => None,
            Auth::AwsSecretsManager { secret_id, region } => Some(Location::Aws {
                secret_id: secret_id.clone(),
                region: region.clone(),
            }),
            Auth::GcpSecretManager { secret_id } => Some(Location::Gcp {
                secret_id: secret_id.clone(),
            }),
            Auth::AzureKeyVault {
                vault_name,
                secret_name,
            } => Some(Location::Azure {
                vault_name: vault_name.clone(),
                secret_name: secret_name.clone(),
            }),
        }
    }

    /// The inputs, with the KSM configuration from the environment or, for the cloud
    /// methods, fetched from where it is stored (see [`Pending::fetch`]).
    pub async fn resolve(
        self,
        env: &dyn Source,
        ca_pem: Option<&[u8]>,
        budget: Duration,
    ) -> Result<Inputs, Error> {
        let stored = match self.location() {
            None => None,
            Some(location) => Some(self.fetch(&location, env, ca_pem, budget).await?),
        };
        self.finish(env, stored)
    }

    /// Fetches the stored KSM configuration with the identity `env` describes, retrying a
    /// store that cannot be reached from 1 s doubling for at most `budget`.
    pub async fn fetch(
        &self,
        location: &Location,
        env: &dyn Source,
        ca_pem: Option<&[u8]>,
        budget: Duration,
    ) -> Result<Secret, Error> {
        let client =
            bulwark_cloud::Client::new(ca_pem, Duration::from_secs(30)).map_err(Error::Cloud)?;
        let started = Instant::now();
        let mut pause = Duration::from_secs(1);
        loop {
            match client.fetch(location, env).await {
                Ok(secret) => return Ok(secret),
                Err(error) if error.is_transient() && started.elapsed() + pause <= budget => {
                    tracing::warn!(method = location.method(), error = %error, retry_in_ms = u64::try_from(pause.as_millis()).unwrap_or(u64::MAX), "Cannot fetch the KSM configuration yet; retrying.");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(16));
                }
                Err(error) => return Err(Error::Cloud(error)),
            }
        }
    }

    /// The inputs, with the configuration from the environment, or `stored` (fetched from
    /// where the spec says it is).
    pub fn finish(self, env: &dyn Source, stored: Option<Secret>) -> Result<Inputs, Error> {
        let (text, parse_error): (Secret, fn(bulwark_ksm::ConfigError) -> Error) =
            match (&self.spec.auth, stored) {
                (Auth::Secret, _) => {
                    let text = env
                        .get(spec::KSM_CONFIG_ENV)
                        .map_err(Error::NotUtf8)?
                        .filter(|v| !v.trim().is_empty())
                        .ok_or(Error::Missing(spec::KSM_CONFIG_ENV))?;
                    (Secret::new(text), |error| Error::KsmConfig {
                        var: spec::KSM_CONFIG_ENV,
                        error,
                    })
                }
                (Auth::AwsSecretsManager { .. }, Some(text)) => (text, |error| Error::Stored {
                    method: "aws-secrets-manager",
                    error,
                }),
                (Auth::GcpSecretManager { .. }, Some(text)) => (text, |error| Error::Stored {
                    method: "gcp-secret-manager",
                    error,
                }),
                (Auth::AzureKeyVault { .. }, Some(text)) => (text, |error| Error::Stored {
                    method: "azure-key-vault",
                    error,
                }),
                (_, None) => return Err(Error::Missing("the stored KSM configuration")),
            };
        // Parsed here, so that a configuration no retry can fix stops the container as
        // invalid input rather than as an undelivered secret.
        let ksm = KsmConfig::parse(text.expose()).map_err(parse_error)?;
        Ok(Inputs {
            spec: self.spec,
            ksm_config: text,
            ksm,
            pod: self.pod,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::HashMap;

    use super::*;

    fn spec_json(auth: &str) -> String {
        format!(
            r#"{{"version":1,"mountPath":"/keeper/secrets","auth":{auth},"secrets":[],"folders":[],"refreshInterval":"5m","failOnError":true,"strictLookup":false,"fileMode":"0400","healthPort":9102}}"#
        )
    }

    /// A bare one-time token, as Keeper shows it.
    const TOKEN: &str = "EU:gLrtbJbzJt0ZBb5dZ4ENtlN3t_kOHXd6CvcW-Q4Cw-k";

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn reads_the_spec_the_config_and_the_pod() {
        let spec = spec_json(r#"{"method":"secret"}"#);
        let inputs = Inputs::read(&env(&[
            (spec::SPEC_ENV, &spec),
            (spec::KSM_CONFIG_ENV, TOKEN),
            (spec::POD_NAME_ENV, "web-1"),
            (spec::POD_NAMESPACE_ENV, "prod"),
        ]))
        .unwrap();
        assert_eq!(inputs.pod, "prod/web-1");
        assert_eq!(inputs.ksm_config.expose(), TOKEN);
        assert!(!format!("{inputs:?}").contains("gLrtbJ"));
    }

    #[test]
    fn missing_or_bad_inputs_name_the_variable() {
        let err = Inputs::read(&env(&[])).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("BULWARK_INJECT_SPEC is not set"),
            "{err}"
        );
        let spec = spec_json(r#"{"method":"secret"}"#);
        let err = Inputs::read(&env(&[(spec::SPEC_ENV, &spec)])).unwrap_err();
        assert_eq!(err, Error::Missing(spec::KSM_CONFIG_ENV));
        let err = Inputs::read(&env(&[(spec::SPEC_ENV, "{\"version\":2}")])).unwrap_err();
        assert!(
            err.to_string().contains("version 2 is not supported"),
            "{err}"
        );
        // {"hostname": "x"}: neither bound nor a token; no retry can fix it.
        let err = Inputs::read(&env(&[
            (spec::SPEC_ENV, &spec),
            (spec::KSM_CONFIG_ENV, "eyJob3N0bmFtZSI6ICJ4In0="),
        ]))
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "BULWARK_INJECT_KSM_CONFIG: the KSM configuration has no appKey or clientKey (bind a one-time token, or use a bound configuration)"
        );
        let err = Inputs::read(&env(&[
            (spec::SPEC_ENV, &spec),
            (spec::KSM_CONFIG_ENV, "EU:not a token"),
        ]))
        .unwrap_err();
        assert!(matches!(err, Error::KsmConfig { .. }), "{err}");
        let aws = spec_json(r#"{"method":"aws-secrets-manager","secretId":"x"}"#);
        let pending = Inputs::begin(&env(&[(spec::SPEC_ENV, &aws)])).unwrap();
        assert_eq!(
            pending.location(),
            Some(Location::Aws {
                secret_id: "x".to_owned(),
                region: None
            })
        );
        let err = pending
            .finish(
                &env(&[]),
                Some(Secret::new("{\"hostname\": \"x\"}".to_owned())),
            )
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("the KSM configuration in aws-secrets-manager: "),
            "{err}"
        );
        assert!(err.is_invalid_input());
    }
}
