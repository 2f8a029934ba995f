//! What the webhook hands to the init and sidecar containers: the spec, the KSM configuration
//! and the pod's identity, all in environment variables (see `bulwark_sidecar_spec`).

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
    #[error(
        "the KSM configuration from {method} is not supported yet: use keeper.security/auth-method: secret with keeper.security/ksm-config"
    )]
    Unsupported { method: &'static str },
}

impl Inputs {
    /// Reads the inputs from `env` (the process environment in production).
    pub fn read(env: &dyn Source) -> Result<Self, Error> {
        let get = |name: &'static str| env.get(name).map_err(Error::NotUtf8);
        let text = get(spec::SPEC_ENV)?.ok_or(Error::Missing(spec::SPEC_ENV))?;
        let spec = SidecarSpec::from_json(&text).map_err(|e| Error::Spec {
            var: spec::SPEC_ENV,
            message: e.to_string(),
        })?;
        let (ksm_config, ksm) = match &spec.auth {
            Auth::Secret => {
                let text = get(spec::KSM_CONFIG_ENV)?
                    .filter(|v| !v.trim().is_empty())
                    .ok_or(Error::Missing(spec::KSM_CONFIG_ENV))?;
                // Parsed here, so that a configuration no retry can fix stops the container
                // as invalid input rather than as an undelivered secret.
                let ksm = KsmConfig::parse(&text).map_err(|error| Error::KsmConfig {
                    var: spec::KSM_CONFIG_ENV,
                    error,
                })?;
                (Secret::new(text), ksm)
            }
            // The cloud SDKs would more than double the sidecar's size and memory; until
            // there is a measured way to fetch from them within its budget, say so clearly.
            Auth::AwsSecretsManager { .. } => {
                return Err(Error::Unsupported {
                    method: "aws-secrets-manager",
                });
            }
            Auth::GcpSecretManager { .. } => {
                return Err(Error::Unsupported {
                    method: "gcp-secret-manager",
                });
            }
            Auth::AzureKeyVault { .. } => {
                return Err(Error::Unsupported {
                    method: "azure-key-vault",
                });
            }
        };
        let name = get(spec::POD_NAME_ENV)?.unwrap_or_default();
        let namespace = get(spec::POD_NAMESPACE_ENV)?.unwrap_or_default();
        let pod = match (namespace.is_empty(), name.is_empty()) {
            (_, true) => String::new(),
            (true, false) => name,
            (false, false) => format!("{namespace}/{name}"),
        };
        Ok(Self {
            spec,
            ksm_config,
            ksm,
            pod,
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
        let err = Inputs::read(&env(&[(spec::SPEC_ENV, &aws)])).unwrap_err();
        assert!(
            err.to_string()
                .contains("aws-secrets-manager is not supported yet"),
            "{err}"
        );
    }
}
