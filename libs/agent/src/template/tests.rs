//! Tests of the template engine: Go `text/template` forms, and errors that name their place.

use serde_json::json;

use super::render;

fn data() -> serde_json::Value {
    json!({"login": "app", "password": "p'a\"ss", "api-key": "k1", "hosts": ["a", "b"],
           "name": {"first": "Ada"}, "cert": "aGVsbG8=", "empty": ""})
}

#[test]
fn go_template_basics() {
    let cases = [
        ("user={{ .login }}", "user=app"),
        ("{{ index . \"api-key\" }}", "k1"),
        ("{{ .name.first }}", "Ada"),
        ("{{ .cert | base64dec }}", "hello"),
        ("{{ .login | upper | quote }}", "\"APP\""),
        ("{{ .password | quote }}", "\"p'a\\\"ss\""),
        ("{{ .missing }}|", "|"),
        ("{{ .empty | default \"x\" }}", "x"),
        ("{{ if .login }}yes{{ else }}no{{ end }}", "yes"),
        ("{{ if .empty }}yes{{ else }}no{{ end }}", "no"),
        ("{{ range .hosts }}[{{ . }}]{{ end }}", "[a][b]"),
        (
            "{{ range $i, $h := .hosts }}{{ $i }}={{ $h }};{{ end }}",
            "0=a;1=b;",
        ),
        ("{{ $u := .login }}{{ $u }}", "app"),
        ("a\n  {{- .login -}}  \nb", "aappb"),
        ("{{/* comment */}}x", "x"),
        // `printf app | sha256sum`
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
fn errors_name_the_position() {
    for (template, message) in [
        (
            "line\n{{ .a | nope }}",
            "template:2:1: function \"nope\" is not defined",
        ),
        ("{{ if .a }}x", "template:1:1: {{if}} without {{end}}"),
        ("{{ .a", "template:1:1: unclosed action: expected }}"),
        ("x{{ end }}", "template:1:2: unexpected {{end}}"),
        (
            "{{ with .a }}{{ end }}",
            "template:1:1: {{with}} is not supported",
        ),
        ("{{ \"a\\q\" }}", "template:1:1: invalid escape \\q"),
        (
            "{{ .a | upper 1 }}",
            "template:1:1: upper takes 1 argument(s), got 2",
        ),
    ] {
        assert_eq!(
            render(template, &data()).unwrap_err().to_string(),
            message,
            "{template}"
        );
    }
}
