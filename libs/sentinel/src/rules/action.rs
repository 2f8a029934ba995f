//! A rule's remediation action and its parameters, checked when the rules load so that a rule
//! never fails at the moment it should act.

use std::collections::BTreeMap;

/// A rule's `remediation.params`, as written.
pub type Params = BTreeMap<String, String>;

/// What a rule does when it matches (carried out by part 2's remediation engine).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    None,
    /// Delete the pod, with `grace_period_seconds` when given (else the pod's own).
    RestartPod {
        grace_period_seconds: Option<u32>,
    },
    /// Raise the owning workload's replicas, never above `max_replicas`.
    ScaleUp {
        replicas: Replicas,
        max_replicas: Option<u32>,
    },
    /// Lower the owning workload's replicas, never below `min_replicas` (default 1).
    ScaleDown {
        replicas: Replicas,
        min_replicas: u32,
    },
    /// kubectl's `rollout undo`: the previous revision, or `to_revision`.
    Rollback {
        to_revision: Option<u64>,
    },
    /// Set `kubectl.kubernetes.io/restartedAt` on the owning workload's pod template.
    RolloutRestart,
    /// Force-delete pods stuck terminating past their grace period.
    DeleteStuckPods,
}

/// A replica change: `+N`/`-N` relative, or `N` absolute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replicas {
    By(i32),
    To(u32),
}

impl Action {
    /// The action names, as rules write them.
    pub const NAMES: [&'static str; 7] = [
        "none",
        "restart-pod",
        "scale-up",
        "scale-down",
        "rollback",
        "rollout-restart",
        "delete-stuck-pods",
    ];

    /// Reads `action` and its `params`; errors name the field (`action` or `params.<key>`).
    pub fn parse(action: &str, params: &Params) -> Result<Self, (String, String)> {
        let allowed: &[&str] = match action {
            "none" | "rollout-restart" | "delete-stuck-pods" => &[],
            "restart-pod" => &["grace_period_seconds"],
            "scale-up" => &["replicas", "max_replicas"],
            "scale-down" => &["replicas", "min_replicas"],
            "rollback" => &["to_revision"],
            "exec-script" | "trigger-argo-workflow" => {
                return Err((
                    "action".into(),
                    format!(
                        "{action:?} is not supported: upstream declares it but never runs it; \
                         use one of {}",
                        Self::NAMES.join(", ")
                    ),
                ));
            }
            other => {
                return Err((
                    "action".into(),
                    format!(
                        "unknown action {other:?}; expected one of {}",
                        Self::NAMES.join(", ")
                    ),
                ));
            }
        };
        if let Some(key) = params.keys().find(|k| !allowed.contains(&k.as_str())) {
            let expected = if allowed.is_empty() {
                "it takes none".to_owned()
            } else {
                format!("expected {}", allowed.join(", "))
            };
            return Err((
                format!("params.{key}"),
                format!("{action} has no parameter {key:?}; {expected}"),
            ));
        }
        let number = |key: &str| -> Result<Option<u64>, (String, String)> {
            params
                .get(key)
                .map(|v| {
                    v.parse::<u64>().map_err(|_| {
                        (
                            format!("params.{key}"),
                            format!("{v:?} is not a whole number"),
                        )
                    })
                })
                .transpose()
        };
        let small = |key: &str| -> Result<Option<u32>, (String, String)> {
            number(key)?
                .map(|n| {
                    u32::try_from(n).map_err(|_| (format!("params.{key}"), "is too large".into()))
                })
                .transpose()
        };
        Ok(match action {
            "none" => Self::None,
            "rollout-restart" => Self::RolloutRestart,
            "delete-stuck-pods" => Self::DeleteStuckPods,
            "restart-pod" => Self::RestartPod {
                grace_period_seconds: small("grace_period_seconds")?,
            },
            "scale-up" => Self::ScaleUp {
                replicas: replicas(params, 1, '+')?,
                max_replicas: small("max_replicas")?,
            },
            "scale-down" => Self::ScaleDown {
                replicas: replicas(params, -1, '-')?,
                min_replicas: small("min_replicas")?.unwrap_or(1),
            },
            _ => Self::Rollback {
                to_revision: number("to_revision")?,
            },
        })
    }

    /// The name rules use.
    pub const fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::RestartPod { .. } => "restart-pod",
            Self::ScaleUp { .. } => "scale-up",
            Self::ScaleDown { .. } => "scale-down",
            Self::Rollback { .. } => "rollback",
            Self::RolloutRestart => "rollout-restart",
            Self::DeleteStuckPods => "delete-stuck-pods",
        }
    }
}

/// `replicas`: `<sign>N` (the only sign this action allows) or an absolute `N`.
fn replicas(params: &Params, default: i32, sign: char) -> Result<Replicas, (String, String)> {
    let Some(text) = params.get("replicas") else {
        return Ok(Replicas::By(default));
    };
    let bad = || {
        (
            "params.replicas".to_owned(),
            format!("{text:?} is not {sign}N or a replica count N"),
        )
    };
    if let Some(n) = text.strip_prefix(sign) {
        let n: i32 = n.parse().map_err(|_| bad())?;
        if n <= 0 {
            return Err(bad());
        }
        return Ok(Replicas::By(if sign == '-' { -n } else { n }));
    }
    text.parse::<u32>().map(Replicas::To).map_err(|_| bad())
}
