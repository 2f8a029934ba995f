//! Tests of the webhook defaults: YAML loading and validation.

use bulwark_config::{Validate, Violation};

use super::{Defaults, Resources};

#[track_caller]
fn check_invalid(defaults: Defaults, field: &str, message: &str) {
    assert_eq!(defaults.validate(), Err(Violation::new(field, message)));
}

#[test]
fn the_defaults_are_valid() {
    assert_eq!(Defaults::default().validate(), Ok(()));
}

#[test]
fn loads_partial_yaml() {
    let yaml = "image: registry.example.com/injector-sidecar:1.0.0\nnative_sidecar: false\nrefresh_interval: 10m\nresources:\n  cpu_limit: null\n";
    let defaults: Defaults = serde_saphyr::from_str(yaml).unwrap();
    assert_eq!(
        defaults.image,
        "registry.example.com/injector-sidecar:1.0.0"
    );
    assert!(!defaults.native_sidecar);
    assert_eq!(defaults.refresh_interval.to_string(), "10m");
    assert_eq!(defaults.resources.cpu_limit, None);
    assert_eq!(defaults.resources.cpu_request.as_deref(), Some("20m"));
    assert_eq!(defaults.health_port, 9102);
    let err = serde_saphyr::from_str::<Defaults>("imag: x\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown field `imag`"), "{err}");
}

#[test]
fn invalid_defaults() {
    check_invalid(
        Defaults {
            image: " ".to_owned(),
            ..Defaults::default()
        },
        "image",
        "expected a container image reference",
    );
    check_invalid(
        Defaults {
            image_pull_policy: Some("Sometimes".to_owned()),
            ..Defaults::default()
        },
        "image_pull_policy",
        "invalid policy \"Sometimes\": expected Always, IfNotPresent or Never",
    );
    check_invalid(
        Defaults {
            refresh_interval: bulwark_config::Duration::from_secs(1),
            ..Defaults::default()
        },
        "refresh_interval",
        "expected at least 10s",
    );
    check_invalid(
        Defaults {
            ksm_config: Some("Bad Name".to_owned()),
            ..Defaults::default()
        },
        "ksm_config",
        "expected a Secret name",
    );
    check_invalid(
        Defaults {
            run_as_user: 0,
            ..Defaults::default()
        },
        "run_as_user",
        "expected a non-root numeric id from 1 to 2147483647",
    );
    check_invalid(
        Defaults {
            volume_size_limit: Some("big".to_owned()),
            ..Defaults::default()
        },
        "volume_size_limit",
        "expected a quantity such as 16Mi",
    );
    check_invalid(
        Defaults {
            health_port: 0,
            ..Defaults::default()
        },
        "health_port",
        "expected a port from 1 to 65535",
    );
    check_invalid(
        Defaults {
            resources: Resources {
                memory_request: Some("1Gi".to_owned()),
                ..Resources::default()
            },
            ..Defaults::default()
        },
        "resources.memory_request",
        "request 1Gi exceeds limit 128Mi: expected a request no larger than the limit",
    );
    check_invalid(
        Defaults {
            resources: Resources {
                cpu_limit: Some("fast".to_owned()),
                ..Resources::default()
            },
            ..Defaults::default()
        },
        "resources.cpu_limit",
        "invalid quantity \"fast\": expected a Kubernetes quantity such as 100m or 64Mi",
    );
}
