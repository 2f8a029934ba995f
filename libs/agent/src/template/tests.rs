//! Tests of the template engine as the sidecar uses it: the forms upstream's templates use,
//! and refusals that name their place. Go's own verdict on 210 templates is checked in
//! `tests/it/templates.rs`.

use serde_json::json;

use super::render;

fn data() -> serde_json::Value {
    json!({"login": "app", "password": "p'a\"ss", "api-key": "k1", "url": ["a", "b"],
           "host": {"hostName": "db", "port": "5432"}, "cert": "aGVsbG8=", "empty": "",
           "port": 5432})
}

#[test]
fn the_forms_upstream_templates_use_render_as_in_go() {
    let cases = [
        ("user={{ .login }}", "user=app"),
        ("{{ index . \"api-key\" }}", "k1"),
        // The three that the old interpreter got wrong, the last one silently.
        ("{{ (index .host \"hostName\") }}", "db"),
        (
            "{{ printf \"%s:%s\" .host.hostName .host.port }}",
            "db:5432",
        ),
        ("{{ index .url 1 }}", "b"),
        ("{{ .cert | base64dec }}", "hello"),
        ("{{ .login | upper | quote }}", "\"APP\""),
        ("{{ .password | quote }}", "\"p'a\\\"ss\""),
        ("[{{ .missing }}]", "[<no value>]"),
        ("{{ .empty | default \"x\" }}", "x"),
        ("{{ if eq .login \"app\" }}yes{{ else }}no{{ end }}", "yes"),
        ("{{ with .host }}{{ .hostName }}{{ end }}", "db"),
        (
            "{{ range $i, $h := .url }}{{ $i }}={{ $h }};{{ end }}",
            "0=a;1=b;",
        ),
        (
            "{{ define \"u\" }}{{ .login }}{{ end }}{{ template \"u\" . }}",
            "app",
        ),
        ("a\n  {{- .login -}}  \nb", "aappb"),
        (
            "{{ .login | sha256sum }}",
            "a172cedcae47474b615c54d510a5d84a8dea3032e958587430b413538be3f333",
        ),
    ];
    for (template, expect) in cases {
        assert_eq!(render(template, &data()).unwrap(), expect, "{template}");
    }
}

#[test]
fn refusals_name_the_place_and_the_problem() {
    for (template, message) in [
        (
            "line\n{{ .login | nope }}",
            "template: secret:2: function \"nope\" not defined",
        ),
        ("{{ if .login }}x", "template: secret:1: unexpected EOF"),
        ("{{ .login", "template: secret:1:10: unclosed action"),
        (
            "{{ upper .port }}",
            "wrong type for value; expected string; got float64",
        ),
        ("{{ upper .missing }}", "invalid value; expected string"),
        ("{{ index .url 5 }}", "index out of range: 5"),
        ("{{ .notbase64 | b64dec }}", "base64 decode failed"),
    ] {
        let data = json!({"login": "app", "port": 5432, "url": ["a"], "notbase64": "a$b"});
        let error = render(template, &data).unwrap_err().to_string();
        assert!(error.contains(message), "{template}: {error}");
    }
}

#[test]
fn no_value_of_the_data_reaches_an_error() {
    let data = json!({"password": "hunter22", "pin": 5432, "list": ["s3cr3t"], "bad": "QUJD$$$"});
    for template in [
        "{{ len .pin }}",
        "{{ printf .pin }}",
        "{{ printf .list }}",
        "{{ .bad | b64dec }}",
        "{{ .password | fail }}",
        "{{ range $a, $b := .pin }}{{ end }}",
    ] {
        let error = render(template, &data).unwrap_err().to_string();
        for secret in ["hunter22", "5432", "s3cr3t", "QUJD", "$$$"] {
            assert!(!error.contains(secret), "{template}: {error}");
        }
        assert!(
            error.starts_with("template: secret:"),
            "{template}: {error}"
        );
    }
}
