//! Tests of the sidecar spec: its JSON shape, versioning and strictness.

use serde_json::json;

use super::{FileMode, Format, SidecarSpec, SignalName, file_name};

fn spec_json() -> serde_json::Value {
    json!({
        "version": 1,
        "mountPath": "/keeper/secrets",
        "auth": {"method": "azure-key-vault", "vaultName": "kv1", "secretName": "ksm"},
        "secrets": [
            {"path": "/keeper/secrets/a.env", "source": {"kind": "record", "record": {"folder": ["P"], "name": "a"}, "fields": ["login"]}, "format": "env", "envPrefix": "A_", "mode": "0440"},
            {"path": "/keeper/secrets/b", "source": {"kind": "notation", "notation": "keeper://b/field/x[]", "record": {"name": "b"}, "selector": {"type": "field", "name": "x", "index": "all"}}, "format": "raw"},
            {"path": "/keeper/secrets/c.pem", "source": {"kind": "file", "record": {"name": "c"}, "file": "c.pem"}, "format": "raw"},
            {"path": "/keeper/secrets/d", "source": {"kind": "record", "record": {"name": "d"}}, "format": "template", "template": "{{ .login }}"}
        ],
        "folders": [{"folder": {"path": ["A", "B"]}, "outputDir": "/keeper/secrets"}, {"folder": {"uid": "AbCdEfGhIjKlMnOpQrSt_-"}, "outputDir": "/keeper/secrets/u"}],
        "refreshInterval": "1h30m",
        "failOnError": false,
        "strictLookup": true,
        "fileMode": "0400",
        "signal": {"signal": "SIGHUP", "process": "nginx"},
        "caCertFile": "/keeper/ca/ca.crt",
        "healthPort": 9102
    })
}

#[track_caller]
fn check_rejected(json: serde_json::Value, message: &str) {
    let err = SidecarSpec::from_json(&json.to_string())
        .unwrap_err()
        .to_string();
    assert!(err.starts_with(message), "{err}");
}

#[test]
fn round_trips_through_json() {
    let text = spec_json().to_string();
    let spec = SidecarSpec::from_json(&text).unwrap();
    assert_eq!(serde_json::to_value(&spec).unwrap(), spec_json());
    assert_eq!(SidecarSpec::from_json(&spec.to_json()).unwrap(), spec);
    assert_eq!(spec.file_mode, FileMode::OWNER_READ);
}

#[test]
fn other_versions_are_refused() {
    let mut json = spec_json();
    json["version"] = json!(2);
    check_rejected(
        json,
        "invalid sidecar spec: version 2 is not supported: this build reads version 1; run a sidecar image as new as the webhook",
    );
    check_rejected(json!({}), "invalid sidecar spec: missing field `version`");
}

#[test]
fn unknown_fields_are_refused() {
    let mut json = spec_json();
    json["newFeature"] = json!(true);
    check_rejected(json, "invalid sidecar spec: unknown field `newFeature`");
    let mut json = spec_json();
    json["secrets"][0]["source"]["extra"] = json!(1);
    check_rejected(json, "invalid sidecar spec: unknown field `extra`");
    let mut json = spec_json();
    json["fileMode"] = json!("0044");
    check_rejected(json, "invalid sidecar spec: invalid file mode \"0044\"");
}

#[test]
fn file_modes() {
    for (text, bits) in [("0400", 0o400), ("440", 0o440), ("0777", 0o777)] {
        assert_eq!(text.parse::<FileMode>().map(FileMode::bits), Ok(bits));
    }
    for bad in ["", "44", "0044", "0800", "01777", "abc"] {
        assert_eq!(bad.parse::<FileMode>(), Err(()), "{bad}");
    }
    assert_eq!(FileMode::GROUP_READ.to_string(), "0440");
    assert_eq!(FileMode::new(0o1000), None);
}

#[test]
fn signals_and_formats() {
    assert_eq!("sighup".parse::<SignalName>(), Ok(SignalName::Hup));
    assert_eq!("WINCH".parse::<SignalName>(), Ok(SignalName::Winch));
    assert_eq!("KILL".parse::<SignalName>(), Err(()));
    assert_eq!(SignalName::Usr1.number(), 10);
    assert_eq!(SignalName::Term.as_str(), "SIGTERM");
    assert_eq!("properties".parse::<Format>(), Ok(Format::Properties));
    assert_eq!("template".parse::<Format>(), Err(()));
    assert_eq!(Format::Yaml.extension(), ".yaml");
}

/// Specs with every variant of every enum, and strings that need escaping.
fn every_variant() -> Vec<serde_json::Value> {
    let mut specs = vec![spec_json()];
    let mut value = spec_json();
    value["auth"] = json!({"method": "secret"});
    value["secrets"] = json!([
        {"path": "/keeper/secrets/t", "source": {"kind": "notation", "notation": "keeper://t/type", "record": {"name": "t"}, "selector": {"type": "type"}}, "format": "raw"},
        {"path": "/keeper/secrets/u", "source": {"kind": "notation", "notation": "keeper://u/title", "record": {"folder": ["F", "G"], "name": "u"}, "selector": {"type": "title"}}, "format": "raw"},
        {"path": "/keeper/secrets/v", "source": {"kind": "notation", "notation": "keeper://v/notes", "record": {"name": "v"}, "selector": {"type": "notes"}}, "format": "raw"},
        {"path": "/keeper/secrets/w", "source": {"kind": "notation", "notation": "keeper://w/field/p[2][a]", "record": {"name": "w"}, "selector": {"type": "field", "name": "p", "index": {"at": 2}, "property": "a"}}, "format": "raw"},
        {"path": "/keeper/secrets/x", "source": {"kind": "notation", "notation": "keeper://x/custom_field/c", "record": {"name": "x"}, "selector": {"type": "custom_field", "name": "c"}}, "format": "raw"},
        {"path": "/keeper/secrets/y.yaml", "source": {"kind": "record", "record": {"name": "y \"q\" \\ \u{1} caf\u{e9}"}}, "format": "yaml"},
        {"path": "/keeper/secrets/z.ini", "source": {"kind": "record", "record": {"name": "z"}, "fields": ["a", "b"]}, "format": "ini"},
        {"path": "/keeper/secrets/p.properties", "source": {"kind": "record", "record": {"name": "p"}}, "format": "properties"}
    ]);
    value["folders"] = json!([]);
    value["signal"] = json!(null);
    value["caCertFile"] = json!(null);
    specs.push(value.clone());
    value["auth"] = json!({"method": "aws-secrets-manager", "secretId": "arn:aws:secretsmanager:eu-west-1:1:secret:k", "region": "eu-west-1"});
    value["signal"] = json!({"signal": "SIGUSR2"});
    specs.push(value.clone());
    value["auth"] = json!({"method": "aws-secrets-manager", "secretId": "k", "region": null});
    specs.push(value.clone());
    value["auth"] =
        json!({"method": "gcp-secret-manager", "secretId": "projects/p/secrets/s/versions/1"});
    value["secrets"] = json!([]);
    value["folders"] = json!([{"folder": {"uid": "u\"1"}, "outputDir": "/keeper/secrets/\u{7f}"}]);
    specs.push(value);
    specs
}

#[test]
fn file_modes_print_four_octal_digits() {
    for (bits, text) in [
        (0o400, "0400"),
        (0o440, "0440"),
        (0o777, "0777"),
        (0o604, "0604"),
    ] {
        assert_eq!(FileMode::new(bits).unwrap().to_string(), text);
    }
}

#[test]
fn every_variant_round_trips_through_json() {
    for value in every_variant() {
        let spec = SidecarSpec::from_json(&value.to_string()).unwrap();
        assert_eq!(serde_json::to_value(&spec).unwrap(), value);
        assert_eq!(SidecarSpec::from_json(&spec.to_json()).unwrap(), spec);
    }
}

#[test]
fn file_names_are_lowercased_and_safe() {
    for (name, lowercase, expect) in [
        ("DB-Credentials", true, "db-credentials"),
        ("DB-Credentials", false, "DB-Credentials"),
        ("  api keys  ", true, "api-keys"),
        ("a/b\\c\td", true, "a-b-c-d"),
        ("Ärger Ünd", true, "ärger-ünd"),
        ("x\u{7f}y", true, "x-y"),
        ("..", true, "-"),
        (".", false, "-"),
        ("", true, "-"),
        ("...", true, "..."),
        ("Web.Config", true, "web.config"),
        ("~tilde~", false, "~tilde~"),
    ] {
        assert_eq!(file_name(name, lowercase), expect, "{name:?}");
    }
    assert_eq!(file_name(&"A".repeat(300), true), "a".repeat(200));
    assert_eq!(file_name(&"é".repeat(150), false), "é".repeat(100));
}
