//! Tests of the output formats: every format reads back the exact values, including awkward ones.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use bulwark_sidecar_spec::{FileMode, Format};
use serde_json::{Value, json};

use super::{Error, render};
use crate::select::{Content, Output};

fn awkward() -> BTreeMap<String, Value> {
    serde_json::from_value(json!({
        "login": "app",
        "password": "it's \"quoted\" = $HOME\nline2\ttab",
        "empty": "",
        "unicode": "pässwörd ✓",
        "name": {"first": "Ada", "last": "L"},
        "port": 5432,
    }))
    .unwrap()
}

fn output(format: Format, content: Content) -> Output {
    Output {
        path: "/keeper/secrets/db".to_owned(),
        format,
        template: None,
        env_prefix: None,
        mode: FileMode::OWNER_READ,
        content,
        record_uid: "AAAAAAAAAAAAAAAAAAAAAA".to_owned(),
    }
}

fn values(format: Format) -> String {
    String::from_utf8(render(&output(format, Content::Values(awkward())), None).unwrap()).unwrap()
}

#[test]
fn json_and_yaml_read_back_exactly() {
    let json: Value = serde_json::from_str(&values(Format::Json)).unwrap();
    assert_eq!(json, serde_json::to_value(awkward()).unwrap());
    assert!(values(Format::Json).starts_with("{\n  \""));
    let yaml: Value = serde_saphyr::from_str(&values(Format::Yaml)).unwrap();
    assert_eq!(yaml, serde_json::to_value(awkward()).unwrap());
}

#[test]
fn env_files_are_read_back_by_a_posix_shell() {
    let mut out = output(Format::Env, Content::Values(awkward()));
    out.env_prefix = Some("DB_".to_owned());
    let text = String::from_utf8(render(&out, None).unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("db.env");
    std::fs::write(&file, &text).unwrap();
    // The shell prints each variable as JSON-escaped text, which we compare to the values.
    let script = format!(
        ". '{}'; for v in DB_LOGIN DB_PASSWORD DB_EMPTY DB_UNICODE DB_NAME DB_PORT; do eval \"printf '%s\\0' \\\"\\${{$v}}\\\"\"; done",
        file.display()
    );
    let shell = std::process::Command::new("sh")
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(
        shell.status.success(),
        "{}",
        String::from_utf8_lossy(&shell.stderr)
    );
    let read: Vec<String> = String::from_utf8(shell.stdout)
        .unwrap()
        .split('\0')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let expect = [
        "app",
        "it's \"quoted\" = $HOME\nline2\ttab",
        "pässwörd ✓",
        r#"{"first":"Ada","last":"L"}"#,
        "5432",
    ];
    assert_eq!(read, expect);
    assert!(text.contains("DB_EMPTY=''\n"));
}

#[test]
fn env_keys_that_clash_are_an_error() {
    let clash: BTreeMap<String, Value> =
        serde_json::from_value(json!({"api-key": "a", "api_key": "b"})).unwrap();
    let err = render(&output(Format::Env, Content::Values(clash)), None).unwrap_err();
    assert!(
        matches!(err, Error::KeyClash { ref key, .. } if key == "API_KEY"),
        "{err}"
    );
    assert!(!err.to_string().contains("\"a\""));
}

#[test]
fn properties_and_ini_escape() {
    let props = values(Format::Properties);
    assert!(
        props.contains("password=it's \"quoted\" = $HOME\\nline2\\ttab\n"),
        "{props}"
    );
    let ini = values(Format::Ini);
    assert!(ini.starts_with("[secret]\n"));
    assert!(
        ini.contains("password = \"it's \\\"quoted\\\" = $HOME\\nline2\\ttab\"\n"),
        "{ini}"
    );
    let key: BTreeMap<String, Value> = serde_json::from_value(json!({"a b=c": " v"})).unwrap();
    let text = render(&output(Format::Properties, Content::Values(key)), None).unwrap();
    assert_eq!(String::from_utf8(text).unwrap(), "a\\ b\\=c=\\ v\n");
}

#[test]
fn raw_is_one_value() {
    let one: BTreeMap<String, Value> = serde_json::from_value(json!({"password": "x\ny"})).unwrap();
    assert_eq!(
        render(&output(Format::Raw, Content::Values(one)), None).unwrap(),
        b"x\ny"
    );
    let err = render(&output(Format::Raw, Content::Values(awkward())), None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "/keeper/secrets/db: format raw needs exactly one value, but the selection has 6: select one field, or use another format"
    );
    assert_eq!(
        render(
            &output(Format::Raw, Content::Value(json!({"first": "Ada"}))),
            None
        )
        .unwrap(),
        br#"{"first":"Ada"}"#
    );
    let file = Content::File {
        record_uid: String::new(),
        file_uid: String::new(),
    };
    assert_eq!(
        render(&output(Format::Raw, file), Some(&[0, 159, 255])).unwrap(),
        [0, 159, 255]
    );
}

#[test]
fn templates_render_with_the_values() {
    let mut out = output(Format::Template, Content::Values(awkward()));
    out.template =
        Some("postgres://{{ .login }}@db:{{ .port }}/{{ .name.first | lower }}".to_owned());
    assert_eq!(render(&out, None).unwrap(), b"postgres://app@db:5432/ada");
    out.template = Some("{{ .login | frobnicate }}".to_owned());
    assert_eq!(
        render(&out, None).unwrap_err().to_string(),
        "/keeper/secrets/db: template: secret:1: function \"frobnicate\" not defined"
    );
}
