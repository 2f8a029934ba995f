//! Tests of the sidecar spec: its JSON shape, versioning and strictness.

use serde_json::json;

use super::{FileMode, Format, SidecarSpec, SignalName};

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

#[test]
fn the_literal_is_the_json_as_a_json_string() {
    let mut value = spec_json();
    value["secrets"][3]["template"] = json!("{{ .login }}\n\"q\" \\ \t\u{1} caf\u{e9}");
    let spec = SidecarSpec::from_json(&value.to_string()).unwrap();
    let literal = spec.to_json_literal();
    assert_eq!(literal, serde_json::to_string(&spec.to_json()).unwrap());
    let back: String = serde_json::from_str(&literal).unwrap();
    assert_eq!(SidecarSpec::from_json(&back).unwrap(), spec);
}
