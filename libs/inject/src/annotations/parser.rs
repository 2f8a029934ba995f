//! The parser of one pod's annotations: our annotations by name, the readers of single values
//! (booleans, names, quantities, signals, ...), and the warnings collected on the way.
//! The readers of what the annotations select live beside it (`auth`, `secrets`, `config`).

use std::collections::BTreeMap;

use bulwark_config::Duration;
use bulwark_sidecar_spec::{FileMode, Signal, SignalName};

use super::names::{is_dns_label, is_dns_subdomain, suggest};
use super::{
    CaCert, ENV_VARS_REASON, K8S_SECRET_REASON, KNOWN, MAX_UNKNOWN_WARNINGS, MIN_REFRESH, Owner,
    PREFIX, key,
};
use crate::{Error, Result, quantity};

/// Reads one pod's annotations, collecting warnings.
pub(super) struct Parser<'a> {
    /// Our annotations by name without the prefix, in name order.
    pub(super) ours: BTreeMap<&'a str, &'a str>,
    pub(super) warnings: Vec<String>,
}

impl<'a> Parser<'a> {
    /// A parser of the `keeper.security/*` annotations among `annotations`.
    pub(super) fn new(annotations: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let ours = annotations
            .into_iter()
            .filter_map(|(k, v)| Some((k.strip_prefix(PREFIX)?, v)))
            .collect();
        Self {
            ours,
            warnings: Vec::new(),
        }
    }

    /// The warnings collected so far.
    pub(super) fn into_warnings(self) -> Vec<String> {
        self.warnings
    }

    /// The value of annotation `name` (without the prefix).
    pub(super) fn get(&self, name: &str) -> Option<&'a str> {
        self.ours.get(name).copied()
    }

    pub(super) fn warn(&mut self, name: &str, message: &str) {
        self.warnings.push(format!("{PREFIX}{name}: {message}"));
    }

    /// A boolean annotation: `true` or `false` in any case, as upstream compares lowercased.
    pub(super) fn bool(&self, name: &str) -> Result<Option<bool>> {
        let Some(value) = self.get(name) else {
            return Ok(None);
        };
        match value.trim() {
            v if v.eq_ignore_ascii_case("true") => Ok(Some(true)),
            v if v.eq_ignore_ascii_case("false") => Ok(Some(false)),
            _ => Err(Error::invalid(
                key(name),
                format!("invalid value {value:?}: expected \"true\" or \"false\""),
            )),
        }
    }

    /// A non-empty, trimmed string annotation.
    pub(super) fn string(&self, name: &str, expected: &str) -> Result<Option<String>> {
        Ok(self.trimmed(name, || expected)?.map(str::to_owned))
    }

    /// The trimmed value of annotation `name`, refused when empty; `expected` describes the
    /// form for the error and is only built for one.
    pub(super) fn trimmed<E: std::fmt::Display>(
        &self,
        name: &str,
        expected: impl FnOnce() -> E,
    ) -> Result<Option<&'a str>> {
        match self.get(name).map(str::trim) {
            None => Ok(None),
            Some("") => Err(Error::invalid(
                key(name),
                format!("empty value: expected {}", expected()),
            )),
            Some(value) => Ok(Some(value)),
        }
    }

    /// The name of a Secret or ConfigMap: a DNS subdomain.
    pub(super) fn object_name(&self, name: &str, what: &str) -> Result<Option<String>> {
        let expected = || {
            format!(
                "the name of a {what} in the pod's namespace (lowercase letters, digits, '-' and '.')"
            )
        };
        let Some(value) = self.trimmed(name, expected)? else {
            return Ok(None);
        };
        if !is_dns_subdomain(value) {
            return Err(Error::invalid(
                key(name),
                format!("invalid name {value:?}: expected {}", expected()),
            ));
        }
        Ok(Some(value.to_owned()))
    }

    /// Refuses the annotations whose upstream behaviour has side effects in admission.
    pub(super) fn refuse_side_effects(&self) -> Result<()> {
        for name in ["inject-env-vars", "inject-as-k8s-secret"] {
            if self.bool(name)? == Some(true) {
                let reason = if name == "inject-env-vars" {
                    ENV_VARS_REASON
                } else {
                    K8S_SECRET_REASON
                };
                return Err(Error::Unsupported {
                    annotation: key(name),
                    reason,
                });
            }
        }
        if let Some(k) = self.ours.keys().find(|k| k.starts_with("k8s-secret-")) {
            return Err(Error::Unsupported {
                annotation: key(k),
                reason: K8S_SECRET_REASON,
            });
        }
        Ok(())
    }

    /// Warns about every `keeper.security/*` key that nothing reads.
    pub(super) fn warn_unknown(&mut self) {
        let unknown: Vec<&str> = self
            .ours
            .keys()
            .copied()
            .filter(|name| {
                let dynamic = ["secret-", "file-"]
                    .iter()
                    .any(|p| name.strip_prefix(p).is_some_and(|rest| !rest.is_empty()));
                !dynamic && !KNOWN.contains(name)
            })
            .collect();
        for name in unknown.iter().take(MAX_UNKNOWN_WARNINGS) {
            let message = match suggest(name) {
                Some(known) => {
                    format!("unknown annotation, ignored (did you mean {PREFIX}{known}?)")
                }
                None => "unknown annotation, ignored".to_owned(),
            };
            self.warn(name, &message);
        }
        if let Some(more) = unknown
            .len()
            .checked_sub(MAX_UNKNOWN_WARNINGS)
            .filter(|n| *n > 0)
        {
            self.warnings.push(format!(
                "{more} more unknown {PREFIX}* annotations, ignored"
            ));
        }
    }

    pub(super) fn refresh_interval(&self) -> Result<Option<Duration>> {
        let Some(value) = self.get("refresh-interval") else {
            return Ok(None);
        };
        let interval = value
            .trim()
            .parse::<Duration>()
            .map_err(|e| Error::invalid(key("refresh-interval"), e.to_string()))?;
        if interval.get() < MIN_REFRESH {
            return Err(Error::invalid(
                key("refresh-interval"),
                format!(
                    "{interval} is too short: expected at least 10s, since Keeper throttles clients that poll faster"
                ),
            ));
        }
        Ok(Some(interval))
    }

    pub(super) fn signal(&mut self) -> Result<Option<Signal>> {
        let process = match self.string("signal-process", "a process name")? {
            Some(name)
                if name.len() > 15 || name.contains('/') || name.chars().any(char::is_control) =>
            {
                return Err(Error::invalid(
                    key("signal-process"),
                    format!(
                        "invalid process name {name:?}: expected a name of at most 15 bytes without '/', as in /proc/<pid>/comm"
                    ),
                ));
            }
            process => process,
        };
        let Some(value) = self.get("signal") else {
            if process.is_some() {
                self.warn(
                    "signal-process",
                    "has no effect without keeper.security/signal",
                );
            }
            return Ok(None);
        };
        let signal = value.parse::<SignalName>().map_err(|()| {
            Error::invalid(
                key("signal"),
                format!("invalid signal {value:?}: expected SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2 or SIGWINCH"),
            )
        })?;
        Ok(Some(Signal { signal, process }))
    }

    pub(super) fn ca_cert(&mut self) -> Result<Option<CaCert>> {
        let secret = self.object_name("ca-cert-secret", "Secret")?;
        let config_map = self.object_name("ca-cert-configmap", "ConfigMap")?;
        let key_name = match self.string("ca-cert-key", "a key such as ca.crt")? {
            Some(k)
                if k.len() > 253
                    || !k
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')) =>
            {
                return Err(Error::invalid(
                    key("ca-cert-key"),
                    format!("invalid key {k:?}: expected letters, digits, '-', '_' and '.'"),
                ));
            }
            k => k,
        };
        let k = key_name.clone().unwrap_or_else(|| "ca.crt".to_owned());
        match (secret, config_map) {
            (Some(_), Some(_)) => Err(Error::invalid(
                key("ca-cert-configmap"),
                "set keeper.security/ca-cert-secret or keeper.security/ca-cert-configmap, not both",
            )),
            (Some(name), None) => Ok(Some(CaCert::Secret { name, key: k })),
            (None, Some(name)) => Ok(Some(CaCert::ConfigMap { name, key: k })),
            (None, None) => {
                if key_name.is_some() {
                    self.warn("ca-cert-key", "has no effect without keeper.security/ca-cert-secret or keeper.security/ca-cert-configmap");
                }
                Ok(None)
            }
        }
    }

    pub(super) fn containers(&self) -> Result<Option<Vec<String>>> {
        let Some(list) = self.get("containers") else {
            return Ok(None);
        };
        let mut names: Vec<String> = Vec::new();
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            if !is_dns_label(name) {
                return Err(Error::invalid(
                    key("containers"),
                    format!(
                        "invalid container name {name:?}: expected a comma-separated list of container names"
                    ),
                ));
            }
            if !names.iter().any(|n| n == name) {
                names.push(name.to_owned());
            }
        }
        if names.is_empty() {
            return Err(Error::invalid(
                key("containers"),
                "no container named: expected a comma-separated list of container names",
            ));
        }
        Ok(Some(names))
    }

    pub(super) fn output_mode(&self) -> Result<Option<FileMode>> {
        self.get("output-mode")
            .map(|v| {
                v.parse().map_err(|()| {
                    Error::invalid(
                        key("output-mode"),
                        format!("invalid mode {v:?}: expected octal permissions with owner read, such as 0400, 0440 or 0444"),
                    )
                })
            })
            .transpose()
    }

    pub(super) fn output_owner(&self) -> Result<Option<Owner>> {
        let Some(value) = self.get("output-owner") else {
            return Ok(None);
        };
        let invalid = |why: &str| {
            Error::invalid(
                key("output-owner"),
                format!(
                    "invalid owner {value:?}: {why}; expected a numeric user, or user:group, such as 1000 or 1000:3000"
                ),
            )
        };
        let id = |s: &str| {
            s.trim()
                .parse::<u32>()
                .ok()
                .filter(|n| *n <= i32::MAX as u32)
        };
        let (uid, gid) = match value.split_once(':') {
            Some((u, g)) => (id(u), Some(id(g).ok_or_else(|| invalid("not a group id"))?)),
            None => (id(value), None),
        };
        let uid = uid.ok_or_else(|| invalid("not a user id"))?;
        if uid == 0 {
            return Err(invalid("the keeper containers never run as root"));
        }
        Ok(Some(Owner {
            uid: i64::from(uid),
            gid: gid.map(i64::from),
        }))
    }

    pub(super) fn quantity(&self, name: &str) -> Result<Option<String>> {
        let Some(value) = self.get(name).map(str::trim) else {
            return Ok(None);
        };
        if quantity::parse(value).is_none() {
            let example = if name.starts_with("cpu") {
                "100m or 0.5"
            } else {
                "64Mi or 1Gi"
            };
            return Err(Error::invalid(
                key(name),
                format!(
                    "invalid quantity {value:?}: expected a Kubernetes quantity such as {example}"
                ),
            ));
        }
        Ok(Some(value.to_owned()))
    }
}
