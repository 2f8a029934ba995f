//! Tests for loading, overrides, validation and error messages.

use std::collections::HashMap;

use serde::Deserialize;

use super::{Error, Loader, Validate, Violation};
use crate::Duration;

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct Cfg {
    #[serde(default)]
    loki: Loki,
    #[serde(default)]
    databases: Vec<Db>,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
struct Loki {
    url: String,
    poll_interval: Duration,
    enabled: bool,
}

impl Default for Loki {
    fn default() -> Self {
        Self {
            url: "http://loki:3100".into(),
            poll_interval: Duration::from_secs(30),
            enabled: true,
        }
    }
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct Db {
    name: String,
    port: u16,
    password_env: Option<String>,
}

impl Validate for Cfg {
    fn validate(&self) -> Result<(), Violation> {
        for (i, db) in self.databases.iter().enumerate() {
            if db.port == 0 {
                return Err(Violation::new(
                    format!("databases[{i}].port"),
                    "must not be 0",
                ));
            }
        }
        Ok(())
    }
}

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[track_caller]
fn load(yaml: &str, vars: &[(&str, &str)]) -> Result<Cfg, Error> {
    let source = env(vars);
    Loader::new(&source, "T_").load_str(yaml, "config.yaml")
}

#[track_caller]
fn err(yaml: &str, vars: &[(&str, &str)]) -> String {
    load(yaml, vars).unwrap_err().to_string()
}

#[test]
fn loads_yaml_with_defaults() {
    let c = load(
        "loki:\n  poll_interval: 5m\ndatabases:\n  - name: a\n    port: 5432\n",
        &[],
    )
    .unwrap();
    assert_eq!(c.loki.poll_interval, Duration::from_secs(300));
    assert_eq!(c.loki.url, "http://loki:3100");
    assert_eq!(c.databases[0].port, 5432);
}

#[test]
fn empty_document_gives_defaults() {
    assert_eq!(load("", &[]).unwrap().loki, Loki::default());
    assert_eq!(
        load("# only a comment\n", &[]).unwrap().loki,
        Loki::default()
    );
}

#[test]
fn errors_name_file_line_and_field() {
    let e = err("loki:\n  poll_interval: 5x\n", &[]);
    assert!(e.starts_with("config.yaml:2:"), "{e}");
    assert!(e.contains("field `loki.poll_interval`"), "{e}");
    assert!(e.contains("expected a number followed by"), "{e}");
    assert!(!e.contains("error: line"), "{e}");

    let e = err("loki:\n  pol_interval: 5m\n", &[]);
    assert!(e.starts_with("config.yaml:2:"), "{e}");
    assert!(e.contains("unknown field `pol_interval`"), "{e}");

    let e = err("databases:\n  - name: a\n    port: lots\n", &[]);
    assert!(e.contains("databases[0].port"), "{e}");
    assert!(e.starts_with("config.yaml:3:"), "{e}");
}

#[test]
fn syntax_errors_have_a_line() {
    let e = err("loki: [unclosed\n", &[]);
    assert!(e.starts_with("config.yaml:"), "{e}");
}

#[test]
fn env_overrides_nested_fields_with_types() {
    let c = load(
        "databases:\n  - name: a\n    port: 1\n",
        &[
            ("T_LOKI__POLL_INTERVAL", "1m"),
            ("T_LOKI__ENABLED", "false"),
            ("T_DATABASES__0__PORT", "6432"),
        ],
    )
    .unwrap();
    assert_eq!(c.loki.poll_interval, Duration::from_secs(60));
    assert!(!c.loki.enabled);
    assert_eq!(c.databases[0].port, 6432);
}

#[test]
fn bad_override_names_the_variable() {
    let e = err("", &[("T_LOKI__POLL_INTERVAL", "soon")]);
    assert!(
        e.starts_with("environment variable T_LOKI__POLL_INTERVAL"),
        "{e}"
    );
    assert!(e.contains("loki.poll_interval"), "{e}");

    let e = err("", &[("T_DATABASES__3__PORT", "1")]);
    assert!(e.contains("T_DATABASES__3__PORT"), "{e}");

    let e = err("", &[("T_LOKI____URL", "x")]);
    assert!(e.contains("names no field"), "{e}");
}

#[test]
fn validation_names_the_field() {
    let e = err("databases:\n  - name: a\n    port: 0\n", &[]);
    assert_eq!(e, "config.yaml: field `databases[0].port`: must not be 0");
}

#[test]
fn secret_from_env() {
    let source = env(&[("DB_PASSWORD", "s3cret"), ("EMPTY", "")]);
    let loader = Loader::new(&source, "T_");
    assert_eq!(
        loader
            .secret_from_env("DB_PASSWORD", "databases[0].password_env")
            .unwrap()
            .expose(),
        "s3cret"
    );
    let e = loader
        .secret_from_env("NOPE", "databases[0].password_env")
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "environment variable NOPE (field `databases[0].password_env`): is not set"
    );
    let e = loader
        .secret_from_env("EMPTY", "x")
        .unwrap_err()
        .to_string();
    assert!(e.contains("is set but empty"), "{e}");
}

#[test]
fn missing_file_names_the_path() {
    let source = env(&[]);
    let e = Loader::new(&source, "T_")
        .load::<Cfg>(Some(std::path::Path::new("/nonexistent/bulwark.yaml")))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "cannot read config file /nonexistent/bulwark.yaml"
    );
    assert_eq!(e.metric_label(), "read");
}
