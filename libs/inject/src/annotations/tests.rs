//! Tests of the annotation parser: every form of every annotation, and every error message.
//!
//! Pairs are written with short keys (`"secret"` for `keeper.security/secret`); unless a test
//! says otherwise they are added to `inject: "true"` and `ksm-config: keeper-auth`.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{CaCert, InjectionRequest, Owner, parse};
use bulwark_sidecar_spec::Auth;

mod match_condition;

const BASE: &[(&str, &str)] = &[("inject", "true"), ("ksm-config", "keeper-auth")];

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| {
            let k = if k.contains('/') {
                (*k).to_owned()
            } else {
                format!("keeper.security/{k}")
            };
            (k, (*v).to_owned())
        })
        .collect()
}

fn with_base(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut all = map(BASE);
    all.extend(map(pairs));
    all
}

/// Parses `pairs` (with the base) and hands the request to `expect`.
#[track_caller]
fn check(pairs: &[(&str, &str)], expect: impl FnOnce(&InjectionRequest)) {
    match parse(&with_base(pairs)) {
        Ok(Some(request)) => expect(&request),
        Ok(None) => panic!("not requested"),
        Err(e) => panic!("denied: {e}"),
    }
}

/// Checks the secrets of the request, as the spec's JSON.
#[track_caller]
fn check_secrets(pairs: &[(&str, &str)], expect: Value) {
    check(pairs, |r| {
        assert_eq!(serde_json::to_value(&r.secrets).unwrap(), expect)
    });
}

/// Checks the folders of the request, as the spec's JSON.
#[track_caller]
fn check_folders(pairs: &[(&str, &str)], expect: Value) {
    check(pairs, |r| {
        assert_eq!(serde_json::to_value(&r.folders).unwrap(), expect)
    });
}

/// Checks the request's warnings.
#[track_caller]
fn check_warnings(pairs: &[(&str, &str)], expect: &[&str]) {
    check(pairs, |r| assert_eq!(r.warnings, expect));
}

/// Checks that `pairs` (with the base) are denied with exactly `message`.
#[track_caller]
fn check_err(pairs: &[(&str, &str)], message: &str) {
    check_err_raw(&with_base(pairs), message);
}

#[track_caller]
fn check_err_raw(annotations: &BTreeMap<String, String>, message: &str) {
    match parse(annotations) {
        Ok(r) => panic!("accepted: {r:?}"),
        Err(e) => assert_eq!(e.to_string(), message),
    }
}

/// The JSON of one whole-record secret.
fn record(name: &str, path: &str) -> Value {
    json!({"path": path, "source": {"kind": "record", "record": {"name": name}}, "format": "json"})
}

// The inject flag.

#[test]
fn inject_absent_or_false_is_not_a_request() {
    assert_eq!(parse(&map(&[])), Ok(None));
    assert_eq!(parse(&map(&[("secret", "db")])), Ok(None));
    assert_eq!(
        parse(&map(&[("inject", "false"), ("secret", "db")])),
        Ok(None)
    );
    assert_eq!(parse(&map(&[("inject", "FALSE")])), Ok(None));
}

#[test]
fn inject_true_in_any_case() {
    let request = parse(&map(&[
        ("inject", " True "),
        ("ksm-config", "a"),
        ("secret", "db"),
    ]));
    assert!(matches!(request, Ok(Some(_))));
}

#[test]
fn inject_must_be_a_boolean() {
    check_err_raw(
        &map(&[("inject", "yes"), ("secret", "db")]),
        r#"keeper.security/inject: invalid value "yes": expected "true" or "false""#,
    );
}

#[test]
fn inject_must_select_something() {
    check_err(
        &[],
        "keeper.security/inject: injection is enabled but selects nothing: expected at least one of keeper.security/secret, secrets, secret-<name>, file-<name>, folder, folder-uid or config",
    );
}

// Authentication.

#[test]
fn auth_secret_is_the_default() {
    check(&[("secret", "db")], |r| {
        assert_eq!(r.auth, Auth::Secret);
        assert_eq!(r.ksm_config.as_deref(), Some("keeper-auth"));
    });
    check(&[("secret", "db"), ("auth-method", "secret")], |r| {
        assert_eq!(r.auth, Auth::Secret)
    });
}

#[test]
fn ksm_config_may_be_left_to_the_webhook_default() {
    let request = parse(&map(&[("inject", "true"), ("secret", "db")]))
        .unwrap()
        .unwrap();
    assert_eq!(request.ksm_config, None);
}

#[test]
fn ksm_config_must_name_a_secret() {
    check_err(
        &[("secret", "db"), ("ksm-config", "Keeper_Auth")],
        r#"keeper.security/ksm-config: invalid name "Keeper_Auth": expected the name of a Secret in the pod's namespace (lowercase letters, digits, '-' and '.')"#,
    );
    check_err(
        &[("secret", "db"), ("ksm-config", " ")],
        "keeper.security/ksm-config: empty value: expected the name of a Secret in the pod's namespace (lowercase letters, digits, '-' and '.')",
    );
}

#[test]
fn auth_secret_is_the_old_name_of_ksm_config() {
    let annotations = map(&[
        ("inject", "true"),
        ("auth-secret", "old-auth"),
        ("secret", "db"),
    ]);
    let request = parse(&annotations).unwrap().unwrap();
    assert_eq!(request.ksm_config.as_deref(), Some("old-auth"));
    assert_eq!(
        request.warnings,
        [
            "keeper.security/auth-secret: deprecated since upstream 0.10.0: use keeper.security/ksm-config"
        ]
    );
    check(&[("auth-secret", "keeper-auth"), ("secret", "db")], |r| {
        assert_eq!(r.ksm_config.as_deref(), Some("keeper-auth"));
    });
    check_err(
        &[("auth-secret", "old-auth"), ("secret", "db")],
        r#"keeper.security/auth-secret: names Secret "old-auth" but keeper.security/ksm-config names "keeper-auth": remove the old auth-secret annotation"#,
    );
}

#[test]
fn oidc_is_refused() {
    check_err(
        &[("secret", "db"), ("auth-method", "oidc")],
        "keeper.security/auth-method: not supported: Keeper Secrets Manager has no OIDC login for applications yet; use auth-method secret, aws-secrets-manager, gcp-secret-manager or azure-key-vault",
    );
}

#[test]
fn unknown_auth_method() {
    check_err(
        &[("secret", "db"), ("auth-method", "vault")],
        r#"keeper.security/auth-method: invalid value "vault": expected secret, aws-secrets-manager, gcp-secret-manager or azure-key-vault"#,
    );
}

/// The cloud auth annotations of the upstream examples 08, 09 and 10.
fn cloud(method: &str, fields: &[(&'static str, &'static str)]) -> BTreeMap<String, String> {
    let mut pairs = vec![
        ("inject", "true"),
        ("auth-method", method),
        ("secret", "demo-secret"),
    ];
    pairs.extend_from_slice(fields);
    map(&pairs)
}

#[test]
fn aws_secrets_manager() {
    let r = parse(&cloud(
        "aws-secrets-manager",
        &[
            ("aws-secret-id", "prod/keeper/ksm-config"),
            ("aws-region", "us-west-2"),
        ],
    ))
    .unwrap()
    .unwrap();
    assert_eq!(
        r.auth,
        Auth::AwsSecretsManager {
            secret_id: "prod/keeper/ksm-config".to_owned(),
            region: Some("us-west-2".to_owned())
        }
    );
    assert_eq!(r.ksm_config, None);
    let r = parse(&cloud(
        "aws-secrets-manager",
        &[("aws-secret-id", "arn:aws:secretsmanager:x")],
    ))
    .unwrap()
    .unwrap();
    assert_eq!(
        r.auth,
        Auth::AwsSecretsManager {
            secret_id: "arn:aws:secretsmanager:x".to_owned(),
            region: None
        }
    );
    check_err_raw(
        &cloud("aws-secrets-manager", &[("aws-region", "us-west-2")]),
        "keeper.security/aws-secret-id: required with keeper.security/auth-method: aws-secrets-manager: expected the name or ARN of the AWS secret holding the KSM configuration",
    );
}

#[test]
fn gcp_secret_manager() {
    let id = "projects/my-project/secrets/ksm-config/versions/latest";
    let r = parse(&cloud("gcp-secret-manager", &[("gcp-secret-id", id)]))
        .unwrap()
        .unwrap();
    assert_eq!(
        r.auth,
        Auth::GcpSecretManager {
            secret_id: id.to_owned()
        }
    );
    let r = parse(&cloud(
        "gcp-secret-manager",
        &[("gcp-secret-id", "projects/p/secrets/s")],
    ));
    assert!(matches!(r, Ok(Some(_))));
    check_err_raw(
        &cloud("gcp-secret-manager", &[("gcp-secret-id", "ksm-config")]),
        r#"keeper.security/gcp-secret-id: invalid secret "ksm-config": expected projects/<project>/secrets/<secret>/versions/<version>"#,
    );
}

#[test]
fn azure_key_vault() {
    let r = parse(&cloud(
        "azure-key-vault",
        &[
            ("azure-vault-name", "mykeyvault"),
            ("azure-secret-name", "ksm-config"),
        ],
    ))
    .unwrap()
    .unwrap();
    assert_eq!(
        r.auth,
        Auth::AzureKeyVault {
            vault_name: "mykeyvault".to_owned(),
            secret_name: "ksm-config".to_owned()
        }
    );
    check_err_raw(
        &cloud(
            "azure-key-vault",
            &[("azure-vault-name", "kv"), ("azure-secret-name", "x")],
        ),
        r#"keeper.security/azure-vault-name: invalid vault name "kv": expected 3 to 24 letters, digits and '-'"#,
    );
    check_err_raw(
        &cloud(
            "azure-key-vault",
            &[
                ("azure-vault-name", "mykeyvault"),
                ("azure-secret-name", "ksm_config"),
            ],
        ),
        r#"keeper.security/azure-secret-name: invalid secret name "ksm_config": expected up to 127 letters, digits and '-'"#,
    );
    check_err_raw(
        &cloud("azure-key-vault", &[("azure-vault-name", "mykeyvault")]),
        "keeper.security/azure-secret-name: required with keeper.security/auth-method: azure-key-vault: expected a Key Vault secret name (letters, digits and '-')",
    );
}

#[test]
fn cloud_fields_need_their_auth_method() {
    check_err(
        &[("secret", "db"), ("aws-secret-id", "prod/keeper")],
        "keeper.security/aws-secret-id: only used with keeper.security/auth-method: aws-secrets-manager, but the auth method is secret",
    );
    check_err_raw(
        &cloud(
            "gcp-secret-manager",
            &[
                ("gcp-secret-id", "projects/p/secrets/s"),
                ("azure-vault-name", "mykeyvault"),
            ],
        ),
        "keeper.security/azure-vault-name: only used with keeper.security/auth-method: azure-key-vault, but the auth method is gcp-secret-manager",
    );
    check_err_raw(
        &cloud(
            "aws-secrets-manager",
            &[("aws-secret-id", "x"), ("ksm-config", "keeper-auth")],
        ),
        "keeper.security/ksm-config: only used with keeper.security/auth-method: secret, but the auth method is aws-secrets-manager, which reads the KSM configuration from the cloud provider",
    );
}

// Levels 1 and 2: secret and secrets.

#[test]
fn secret_is_one_record() {
    check_secrets(
        &[("secret", "database-credentials")],
        json!([record(
            "database-credentials",
            "/keeper/secrets/database-credentials.json"
        )]),
    );
    check_secrets(
        &[("secret", " Prod DB/Primary ")],
        json!([record(
            "Prod DB/Primary",
            "/keeper/secrets/prod-db-primary.json"
        )]),
    );
    check_err(
        &[("secret", "")],
        "keeper.security/secret: empty value: expected a record title or UID",
    );
}

#[test]
fn secrets_is_a_comma_separated_list() {
    check_secrets(
        &[("secrets", "database-creds, api-keys,, tls-cert ")],
        json!([
            record("database-creds", "/keeper/secrets/database-creds.json"),
            record("api-keys", "/keeper/secrets/api-keys.json"),
            record("tls-cert", "/keeper/secrets/tls-cert.json"),
        ]),
    );
    check_err(
        &[("secrets", " , ")],
        "keeper.security/secrets: no record named: expected a comma-separated list of record titles or UIDs",
    );
}

#[test]
fn format_and_template_apply_to_whole_records() {
    check_secrets(
        &[("secret", "db"), ("format", "env"), ("env-prefix", "DB_")],
        json!([{"path": "/keeper/secrets/db.env", "source": {"kind": "record", "record": {"name": "db"}}, "format": "env", "envPrefix": "DB_"}]),
    );
    check_secrets(
        &[
            ("secret", "db"),
            ("template", "postgresql://{{ .login }}@db"),
        ],
        json!([{"path": "/keeper/secrets/db", "source": {"kind": "record", "record": {"name": "db"}}, "format": "template", "template": "postgresql://{{ .login }}@db"}]),
    );
    check_err(
        &[("secret", "db"), ("format", "xml")],
        r#"keeper.security/format: invalid format "xml": expected json, env, properties, yaml, ini or raw"#,
    );
    check_err(
        &[("secret", "db"), ("format", "env"), ("template", "x")],
        "keeper.security/template: set keeper.security/format or keeper.security/template, not both",
    );
}

#[test]
fn format_without_whole_records_and_env_prefix_without_env_warn() {
    check_warnings(
        &[
            ("secret-pw", "db[password]"),
            ("format", "yaml"),
            ("env-prefix", "DB_"),
        ],
        &[
            "keeper.security/format: has no effect: it applies to whole records selected by keeper.security/secret, secrets or secret-<name>",
            "keeper.security/env-prefix: has no effect unless keeper.security/format is env (it prefixes the keys of env files; environment variables are not injected)",
        ],
    );
}

// Levels 3 and 4: secret-<name>.

/// Checks the one secret that `secret-<name>: value` gives.
#[track_caller]
fn check_secret_value(name: &str, value: &str, expect: Value) {
    let k = format!("secret-{name}");
    check_secrets(&[(&k, value)], json!([expect]));
}

#[test]
fn secret_name_with_a_path_is_the_record_name() {
    check_secret_value(
        "database",
        "/keeper/secrets/app/db.json",
        record("database", "/keeper/secrets/app/db.json"),
    );
}

#[test]
fn secret_name_record_and_path() {
    check_secret_value(
        "stripe",
        "stripe-api-key:/keeper/secrets/stripe.json",
        record("stripe-api-key", "/keeper/secrets/stripe.json"),
    );
    check_secret_value(
        "stripe",
        "stripe-api-key",
        record("stripe-api-key", "/keeper/secrets/stripe.json"),
    );
}

#[test]
fn secret_name_field_extraction() {
    let raw = |path: &str| json!({"path": path, "source": {"kind": "record", "record": {"name": "database-creds"}, "fields": ["password"]}, "format": "raw"});
    check_secret_value(
        "password",
        "database-creds[password]:/keeper/secrets/db-pass",
        raw("/keeper/secrets/db-pass"),
    );
    check_secret_value(
        "password",
        "database-creds[password]",
        raw("/keeper/secrets/password"),
    );
}

#[test]
fn secret_name_keeper_notation() {
    let notation = |path: &str| {
        json!({
            "path": path,
            "source": {
                "kind": "notation",
                "notation": "keeper://XXXXXXXXXXXXXXXXXXXXXX/field/password",
                "record": {"name": "XXXXXXXXXXXXXXXXXXXXXX"},
                "selector": {"type": "field", "name": "password"}
            },
            "format": "raw"
        })
    };
    check_secret_value(
        "db",
        "keeper://XXXXXXXXXXXXXXXXXXXXXX/field/password",
        notation("/keeper/secrets/db"),
    );
    check_secret_value(
        "db",
        "keeper://XXXXXXXXXXXXXXXXXXXXXX/field/password:/keeper/secrets/pw",
        notation("/keeper/secrets/pw"),
    );
    check_secret_value(
        "db",
        "XXXXXXXXXXXXXXXXXXXXXX/field/password",
        notation("/keeper/secrets/db"),
    );
}

#[test]
fn secret_name_folder_paths_of_the_upstream_example_13() {
    check_secret_value(
        "prod-db-pass",
        "Production/Databases/mysql-prod/field/password:/keeper/secrets/prod-db-password.txt",
        json!({
            "path": "/keeper/secrets/prod-db-password.txt",
            "source": {
                "kind": "notation",
                "notation": "keeper://Production/Databases/mysql-prod/field/password",
                "record": {"folder": ["Production", "Databases"], "name": "mysql-prod"},
                "selector": {"type": "field", "name": "password"}
            },
            "format": "raw"
        }),
    );
    check_secret_value(
        "dev-db-full",
        "Development/Databases/mysql-dev:/keeper/secrets/dev-db-full.json",
        json!({
            "path": "/keeper/secrets/dev-db-full.json",
            "source": {"kind": "record", "record": {"folder": ["Development", "Databases"], "name": "mysql-dev"}},
            "format": "json"
        }),
    );
    check_secret_value(
        "record-type",
        "Production/Databases/mysql-prod/type:/keeper/secrets/record-type.txt",
        json!({
            "path": "/keeper/secrets/record-type.txt",
            "source": {
                "kind": "notation",
                "notation": "keeper://Production/Databases/mysql-prod/type",
                "record": {"folder": ["Production", "Databases"], "name": "mysql-prod"},
                "selector": {"type": "type"}
            },
            "format": "raw"
        }),
    );
    check_secret_value(
        "dev-api",
        "keeper://Development/APIs/test-api/field/api_key:/keeper/secrets/dev-api-key.txt",
        json!({
            "path": "/keeper/secrets/dev-api-key.txt",
            "source": {
                "kind": "notation",
                "notation": "keeper://Development/APIs/test-api/field/api_key",
                "record": {"folder": ["Development", "APIs"], "name": "test-api"},
                "selector": {"type": "field", "name": "api_key"}
            },
            "format": "raw"
        }),
    );
}

#[test]
fn secret_name_file_notation_is_a_file() {
    check_secret_value(
        "cert",
        "keeper://XXXXXXXXXXXXXXXXXXXXXX/file/cert.pem",
        json!({
            "path": "/keeper/secrets/cert",
            "source": {"kind": "file", "record": {"name": "XXXXXXXXXXXXXXXXXXXXXX"}, "file": "cert.pem"},
            "format": "raw"
        }),
    );
}

#[test]
fn secret_name_escaped_titles() {
    check_secret_value(
        "web",
        r"https:\/\/example.com login",
        record("https://example.com login", "/keeper/secrets/web.json"),
    );
    check_secret_value(
        "db",
        r"keeper://My\/Title/custom_field/pass\[1\][0]:/keeper/secrets/pw",
        json!({
            "path": "/keeper/secrets/pw",
            "source": {
                "kind": "notation",
                "notation": r"keeper://My\/Title/custom_field/pass\[1\][0]",
                "record": {"name": "My/Title"},
                "selector": {"type": "custom_field", "name": "pass[1]", "index": {"at": 0}}
            },
            "format": "raw"
        }),
    );
}

#[test]
fn secret_name_errors() {
    let expected = "expected /path, record, record:/path, record[field]:/path, Folder/record:/path or keeper://record/field/name[:/path]";
    check_err(
        &[("secret-db", " ")],
        &format!("keeper.security/secret-db: empty value: {expected}"),
    );
    check_err(
        &[("secret-db", "keeper://UID/field")],
        &format!(
            r#"keeper.security/secret-db: invalid reference "keeper://UID/field": selector `field` needs a parameter, as in keeper://<record>/field/<name>; {expected}"#
        ),
    );
    check_err(
        &[("secret-db", r"a\qb")],
        &format!(
            r#"keeper.security/secret-db: invalid reference "a\\qb": invalid escape \q: only \/, \[, \] and \\ are escapes; {expected}"#
        ),
    );
    check_err(
        &[("secret-db", "rec[field")],
        &format!(
            r#"keeper.security/secret-db: invalid reference "rec[field": unescaped [ in record title: write \[ for a literal bracket; {expected}"#
        ),
    );
}

#[test]
fn output_paths_must_lie_under_the_shared_volume() {
    // The custom paths of the upstream docs (level 3) and example 04 cannot work (defect 4).
    check_err(
        &[("secret-database", "/app/config/db.json")],
        r#"keeper.security/secret-database: output path "/app/config/db.json" is outside the shared volume: expected a path under /keeper/secrets, the only directory the keeper containers share with the application"#,
    );
    check_err(
        &[("secret-stripe", "stripe-api-key:/app/secrets/stripe.json")],
        r#"keeper.security/secret-stripe: output path "/app/secrets/stripe.json" is outside the shared volume: expected a path under /keeper/secrets, the only directory the keeper containers share with the application"#,
    );
    check_err(
        &[("secret-x", "/keeper/secrets-other/x")],
        r#"keeper.security/secret-x: output path "/keeper/secrets-other/x" is outside the shared volume: expected a path under /keeper/secrets, the only directory the keeper containers share with the application"#,
    );
    check_err(
        &[("secret-x", "/keeper/secrets/../etc/passwd")],
        r#"keeper.security/secret-x: output path "/keeper/secrets/../etc/passwd" has an empty, '.' or '..' component: expected a plain path under /keeper/secrets"#,
    );
    check_err(
        &[("secret-x", "/keeper/secrets//x")],
        r#"keeper.security/secret-x: output path "/keeper/secrets//x" has an empty, '.' or '..' component: expected a plain path under /keeper/secrets"#,
    );
    check_err(
        &[("secret-x", "/keeper/secrets")],
        "keeper.security/secret-x: output path /keeper/secrets is the shared directory itself: expected a file under it",
    );
}

#[test]
fn output_paths_are_distinct_and_do_not_nest() {
    check_err(
        &[
            ("secret", "db"),
            ("secret-copy", "other:/keeper/secrets/db.json"),
        ],
        "keeper.security/secret-copy: output path /keeper/secrets/db.json is also written by keeper.security/secret: expected a distinct path for every secret",
    );
    check_err(
        &[
            ("secret-a", "a:/keeper/secrets/x"),
            ("secret-b", "b:/keeper/secrets/x/y"),
        ],
        "keeper.security/secret-a: output path /keeper/secrets/x is a file, but keeper.security/secret-b needs a directory there: expected paths that do not nest",
    );
    check_err(
        &[
            ("secret-a", "a:/keeper/secrets/shared"),
            ("folder", "Shared"),
            ("folder-path", "shared"),
        ],
        "keeper.security/secret-a: output path /keeper/secrets/shared is a file, but keeper.security/folder needs a directory there: expected paths that do not nest",
    );
    check_err(
        &[
            ("secret-a", "a:/keeper/secrets/shared"),
            ("folder", "Shared"),
            ("folder-path", "shared/deep"),
        ],
        "keeper.security/secret-a: output path /keeper/secrets/shared is a file, but keeper.security/folder needs a directory there: expected paths that do not nest",
    );
    // A sibling whose name merely starts with the same characters does not nest.
    check(
        &[
            ("secret-a", "a:/keeper/secrets/x"),
            ("secret-b", "b:/keeper/secrets/x-y"),
        ],
        |r| {
            assert_eq!(r.secrets.len(), 2);
        },
    );
}

// file-<name>.

#[test]
fn file_attachments() {
    let file = |record: Value, file: &str, path: &str| json!({"path": path, "source": {"kind": "file", "record": record, "file": file}, "format": "raw"});
    check_secrets(
        &[(
            "file-cert",
            "tls-certificate:server.crt:/keeper/secrets/certs/server.crt",
        )],
        json!([file(
            json!({"name": "tls-certificate"}),
            "server.crt",
            "/keeper/secrets/certs/server.crt"
        )]),
    );
    check_secrets(
        &[("file-cert", "tls-certificate:Server.CRT")],
        json!([file(
            json!({"name": "tls-certificate"}),
            "Server.CRT",
            "/keeper/secrets/Server.CRT"
        )]),
    );
    check_secrets(
        &[("file-cert", "server.crt")],
        json!([file(
            json!({"name": "cert"}),
            "server.crt",
            "/keeper/secrets/server.crt"
        )]),
    );
    check_secrets(
        &[(
            "file-key",
            "keeper://XXXXXXXXXXXXXXXXXXXXXX/file/server.key:/keeper/secrets/k",
        )],
        json!([file(
            json!({"name": "XXXXXXXXXXXXXXXXXXXXXX"}),
            "server.key",
            "/keeper/secrets/k"
        )]),
    );
    check_secrets(
        &[("file-key", "Prod/TLS: main:server.key")],
        json!([file(
            json!({"folder": ["Prod"], "name": "TLS: main"}),
            "server.key",
            "/keeper/secrets/server.key"
        )]),
    );
}

#[test]
fn file_attachment_errors() {
    let expected = "expected record:file-name[:/path] or keeper://record/file/file-name[:/path]";
    check_err(
        &[("file-cert", "")],
        &format!("keeper.security/file-cert: empty value: {expected}"),
    );
    check_err(
        &[(
            "file-cert",
            "keeper://XXXXXXXXXXXXXXXXXXXXXX/field/password",
        )],
        &format!(
            r#"keeper.security/file-cert: invalid reference "keeper://XXXXXXXXXXXXXXXXXXXXXX/field/password": not a file selector; {expected}"#
        ),
    );
    check_err(
        &[("file-cert", "tls:certs/server.crt")],
        &format!(
            r#"keeper.security/file-cert: invalid reference "tls:certs/server.crt": a file name cannot contain / (write \/ for a literal slash); {expected}"#
        ),
    );
    // The custom path of the upstream example 05.
    check_err(
        &[(
            "file-cert",
            "tls-certificate:server.crt:/app/certs/server.crt",
        )],
        r#"keeper.security/file-cert: output path "/app/certs/server.crt" is outside the shared volume: expected a path under /keeper/secrets, the only directory the keeper containers share with the application"#,
    );
}

// Folders.

#[test]
fn folders_by_path_or_uid() {
    check_folders(
        &[("folder", "Production/Databases")],
        json!([{"folder": {"path": ["Production", "Databases"]}, "outputDir": "/keeper/secrets"}]),
    );
    check_folders(
        &[
            ("folder", "/Production/Data\\/bases/"),
            ("folder-path", "/keeper/secrets/db/"),
        ],
        json!([{"folder": {"path": ["Production", "Data/bases"]}, "outputDir": "/keeper/secrets/db"}]),
    );
    check_folders(
        &[
            ("folder-uid", "AbCdEfGhIjKlMnOpQrSt_-"),
            ("folder-path", "db"),
        ],
        json!([{"folder": {"uid": "AbCdEfGhIjKlMnOpQrSt_-"}, "outputDir": "/keeper/secrets/db"}]),
    );
}

#[test]
fn folder_errors_and_warnings() {
    check_err(
        &[("folder", "A"), ("folder-uid", "AbCdEfGhIjKlMnOpQrSt_-")],
        "keeper.security/folder-uid: set keeper.security/folder or keeper.security/folder-uid, not both",
    );
    check_err(
        &[("folder-uid", "abc")],
        r#"keeper.security/folder-uid: invalid folder UID "abc": expected 22 characters of letters, digits, '-' and '_'"#,
    );
    check_err(
        &[("folder", "A//B")],
        r#"keeper.security/folder: invalid folder path "A//B": empty segment in "A//B": expected names separated by single slashes"#,
    );
    check_err(
        &[("folder", "A"), ("folder-path", "/data")],
        r#"keeper.security/folder-path: output path "/data" is outside the shared volume: expected a path under /keeper/secrets, the only directory the keeper containers share with the application"#,
    );
    check_warnings(
        &[("secret", "db"), ("folder-path", "db")],
        &[
            "keeper.security/folder-path: has no effect without keeper.security/folder or keeper.security/folder-uid",
        ],
    );
}

// Level 5: config.

#[test]
fn config_of_the_upstream_example_02() {
    let config = "secrets:\n  - record: postgres-credentials\n    path: /keeper/secrets/postgres-credentials.env\n    format: env\n";
    check_secrets(
        &[("config", config)],
        json!([{"path": "/keeper/secrets/postgres-credentials.env", "source": {"kind": "record", "record": {"name": "postgres-credentials"}}, "format": "env"}]),
    );
}

#[test]
fn config_templates_fields_notation_and_files() {
    let config = r#"
secrets:
  - record: postgres-credentials
    path: db/url.txt
    template: |
      postgresql://{{ .login }}:{{ .password }}@{{ .hostname }}:5432/mydb
  - record: database-credentials
    fields: [login, password]
    mode: "0440"
  - record: database-credentials
    fields: [password]
    path: password
  - notation: keeper://XXXXXXXXXXXXXXXXXXXXXX/field/password
    path: notation.txt
  - record: TLS Certificate
    fileName: cert.pem
  - notation: keeper://Shared/API/notes
    path: notes.txt
"#;
    check_secrets(
        &[("config", config)],
        json!([
            {
                "path": "/keeper/secrets/db/url.txt",
                "source": {"kind": "record", "record": {"name": "postgres-credentials"}},
                "format": "template",
                "template": "postgresql://{{ .login }}:{{ .password }}@{{ .hostname }}:5432/mydb\n"
            },
            {
                "path": "/keeper/secrets/database-credentials.json",
                "source": {"kind": "record", "record": {"name": "database-credentials"}, "fields": ["login", "password"]},
                "format": "json",
                "mode": "0440"
            },
            {
                "path": "/keeper/secrets/password",
                "source": {"kind": "record", "record": {"name": "database-credentials"}, "fields": ["password"]},
                "format": "raw"
            },
            {
                "path": "/keeper/secrets/notation.txt",
                "source": {
                    "kind": "notation",
                    "notation": "keeper://XXXXXXXXXXXXXXXXXXXXXX/field/password",
                    "record": {"name": "XXXXXXXXXXXXXXXXXXXXXX"},
                    "selector": {"type": "field", "name": "password"}
                },
                "format": "raw"
            },
            {
                "path": "/keeper/secrets/cert.pem",
                "source": {"kind": "file", "record": {"name": "TLS Certificate"}, "file": "cert.pem"},
                "format": "raw"
            },
            {
                "path": "/keeper/secrets/notes.txt",
                "source": {
                    "kind": "notation",
                    "notation": "keeper://Shared/API/notes",
                    "record": {"folder": ["Shared"], "name": "API"},
                    "selector": {"type": "notes"}
                },
                "format": "raw"
            }
        ]),
    );
}

#[test]
fn config_folders() {
    let config = "folders:\n  - uid: AbCdEfGhIjKlMnOpQrSt_-\n    outputPath: /keeper/secrets/a\n  - path: Production/Databases\n  - folderPath: Staging\n    outputPath: staging\n";
    check_folders(
        &[("config", config)],
        json!([
            {"folder": {"uid": "AbCdEfGhIjKlMnOpQrSt_-"}, "outputDir": "/keeper/secrets/a"},
            {"folder": {"path": ["Production", "Databases"]}, "outputDir": "/keeper/secrets"},
            {"folder": {"path": ["Staging"]}, "outputDir": "/keeper/secrets/staging"}
        ]),
    );
}

#[test]
fn config_errors() {
    let cases: &[(&str, &str)] = &[
        (
            "secrets: [",
            "keeper.security/config: invalid YAML: line 1 column 10: unclosed bracket '['; expected secrets: [{record, path, fields, format, template, file}] and folders: [{uid or path, outputPath}]",
        ),
        (
            "secrets:\n  - recrd: x\n",
            "keeper.security/config: invalid YAML: line 2 column 5: unknown field `recrd`, expected one of record, notation, path, fields, format, template, file, fileName, mode, envPrefix, injectAsEnvVars, injectAsK8sSecret, k8sSecretName, k8sSecretKeys, k8sSecretType; expected secrets: [{record, path, fields, format, template, file}] and folders: [{uid or path, outputPath}]",
        ),
        (
            "secrets:\n  - path: x\n",
            "keeper.security/config (secrets[0]): expected record (a title or UID) or notation (keeper://...)",
        ),
        (
            "secrets:\n  - record: a\n    notation: keeper://a/type\n",
            "keeper.security/config (secrets[0]): set record or notation, not both",
        ),
        (
            "secrets:\n  - record: a\n    format: env\n    template: x\n",
            "keeper.security/config (secrets[0]): set format or template, not both",
        ),
        (
            "secrets:\n  - record: a\n    format: toml\n",
            r#"keeper.security/config (secrets[0].format): invalid format "toml": expected json, env, properties, yaml, ini or raw"#,
        ),
        (
            "secrets:\n  - record: a\n    file: a.pem\n    fileName: b.pem\n",
            "keeper.security/config (secrets[0]): set file or fileName (an alias), not both",
        ),
        (
            "secrets:\n  - record: a\n    file: a.pem\n    fields: [x]\n",
            "keeper.security/config (secrets[0]): set fields or file, not both",
        ),
        (
            "secrets:\n  - notation: keeper://a/field/x\n    fields: [y]\n",
            "keeper.security/config (secrets[0]): a notation selects by itself: remove fields and file",
        ),
        (
            "secrets:\n  - notation: keeper://a/field/x\n    format: json\n",
            "keeper.security/config (secrets[0]): format json does not apply: a file or a notation yields one value, written raw",
        ),
        (
            "secrets:\n  - notation: keeper://a/field/x[\n",
            r#"keeper.security/config (secrets[0].notation): invalid notation "keeper://a/field/x[": unclosed [: expected [index] or [property]"#,
        ),
        (
            "secrets:\n  - record: a\n    mode: '0999'\n",
            r#"keeper.security/config (secrets[0].mode): invalid mode "0999": expected octal permissions with owner read, such as 0440"#,
        ),
        (
            "secrets:\n  - record: a\n    path: /app/a.json\n",
            r#"keeper.security/config (secrets[0].path): output path "/app/a.json" is outside the shared volume: expected a path under /keeper/secrets, the only directory the keeper containers share with the application"#,
        ),
        (
            "secrets:\n  - record: a\n    template: ' '\n",
            "keeper.security/config (secrets[0].template): empty template",
        ),
        (
            "folders:\n  - uid: AbCdEfGhIjKlMnOpQrSt_-\n    path: A\n",
            "keeper.security/config (folders[0]): expected exactly one of uid and path (or its alias folderPath)",
        ),
        (
            "folders:\n  - uid: short\n",
            r#"keeper.security/config (folders[0]): invalid folder UID "short": expected 22 characters of letters, digits, '-' and '_'"#,
        ),
    ];
    for (config, message) in cases {
        check_err(&[("config", config)], message);
    }
}

#[test]
fn config_env_prefix_needs_the_env_format() {
    check_warnings(
        &[("config", "secrets:\n  - record: a\n    envPrefix: A_\n")],
        &["keeper.security/config (secrets[0].envPrefix) has no effect unless format is env"],
    );
    check_secrets(
        &[(
            "config",
            "secrets:\n  - record: a\n    format: env\n    envPrefix: A_\n",
        )],
        json!([{"path": "/keeper/secrets/a.json", "source": {"kind": "record", "record": {"name": "a"}}, "format": "env", "envPrefix": "A_"}]),
    );
}

// Modes with side effects in admission.

#[test]
fn env_var_mode_is_refused() {
    let reason = "it would fetch secrets during admission and write their values into the pod spec, where anyone who can read the pod sees them and etcd stores them; read the files under /keeper/secrets instead (format env gives a file that a shell can source)";
    check_err(
        &[
            ("secret", "demo-secret"),
            ("inject-env-vars", "true"),
            ("env-prefix", "APP_"),
        ],
        &format!("keeper.security/inject-env-vars: not supported: {reason}"),
    );
    check_err(
        &[(
            "config",
            "secrets:\n  - record: a\n    injectAsEnvVars: true\n",
        )],
        &format!("keeper.security/config (secrets[0].injectAsEnvVars): not supported: {reason}"),
    );
    check(&[("secret", "db"), ("inject-env-vars", "false")], |r| {
        assert_eq!(r.warnings, Vec::<String>::new())
    });
    check_err(
        &[("secret", "db"), ("inject-env-vars", "maybe")],
        r#"keeper.security/inject-env-vars: invalid value "maybe": expected "true" or "false""#,
    );
}

#[test]
fn kubernetes_secret_mode_is_refused() {
    let reason = "creating Secrets during admission is a side effect (it breaks dry-run and sideEffects: None) and copies secret values into etcd; read the files under /keeper/secrets, or use the External Secrets Operator's Keeper provider for Kubernetes Secrets";
    for (pairs, annotation) in [
        (
            vec![
                ("inject-as-k8s-secret", "true"),
                ("k8s-secret-name", "app-secrets"),
            ],
            "keeper.security/inject-as-k8s-secret",
        ),
        (
            vec![("k8s-secret-rotation", "true")],
            "keeper.security/k8s-secret-rotation",
        ),
        (
            vec![
                ("inject-as-k8s-secret", "false"),
                ("k8s-secret-mode", "merge"),
            ],
            "keeper.security/k8s-secret-mode",
        ),
    ] {
        let mut pairs = pairs;
        pairs.push(("secret", "demo-secret"));
        check_err(&pairs, &format!("{annotation}: not supported: {reason}"));
    }
    for (config, field) in [
        (
            "secrets:\n  - record: a\n    injectAsK8sSecret: true\n    k8sSecretName: db\n",
            "secrets[0].injectAsK8sSecret",
        ),
        (
            "secrets:\n  - record: a\n    fileName: c.pem\n    k8sSecretType: kubernetes.io/tls\n",
            "secrets[0].k8sSecretType",
        ),
        (
            "secrets:\n  - record: a\n    k8sSecretKeys: {username: USER}\n",
            "secrets[0].k8sSecretKeys",
        ),
        (
            "folders:\n  - uid: AbCdEfGhIjKlMnOpQrSt_-\n    injectAsK8sSecret: true\n",
            "folders[0].injectAsK8sSecret",
        ),
        (
            "folders:\n  - uid: AbCdEfGhIjKlMnOpQrSt_-\n    k8sSecretNamePrefix: api-\n",
            "folders[0].k8sSecretNamePrefix",
        ),
    ] {
        check_err(
            &[("config", config)],
            &format!("keeper.security/config ({field}): not supported: {reason}"),
        );
    }
}

// Behaviour.

#[test]
fn refresh_interval() {
    check(&[("secret", "db")], |r| {
        assert_eq!(r.refresh_interval, None)
    });
    for (value, shown) in [
        ("30s", "30s"),
        ("5m", "5m"),
        ("1h30m", "1h30m"),
        ("12h", "12h"),
    ] {
        check(&[("secret", "db"), ("refresh-interval", value)], |r| {
            assert_eq!(
                r.refresh_interval.map(|d| d.to_string()).as_deref(),
                Some(shown)
            );
        });
    }
    check_err(
        &[("secret", "db"), ("refresh-interval", "5s")],
        "keeper.security/refresh-interval: 5s is too short: expected at least 10s, since Keeper throttles clients that poll faster",
    );
    check_err(
        &[("secret", "db"), ("refresh-interval", "soon")],
        r#"keeper.security/refresh-interval: invalid duration "soon": missing number; expected a number followed by ms, s, m, h or d, as in 30s, 5m, 24h or 1h30m"#,
    );
    check_err(
        &[("secret", "db"), ("refresh-interval", "1.5h")],
        r#"keeper.security/refresh-interval: invalid duration "1.5h": missing unit; expected a number followed by ms, s, m, h or d, as in 30s, 5m, 24h or 1h30m"#,
    );
}

#[test]
fn booleans() {
    check(&[("secret", "db")], |r| {
        assert!(!r.init_only);
        assert_eq!(r.fail_on_error, None);
        assert!(!r.strict_lookup);
        assert_eq!(r.native_sidecar, None);
        assert!(r.init_first);
    });
    check(
        &[
            ("secret", "db"),
            ("init-only", "TRUE"),
            ("fail-on-error", "False"),
            ("strict-lookup", "true"),
            ("init-first", "false"),
        ],
        |r| {
            assert!(r.init_only);
            assert_eq!(r.fail_on_error, Some(false));
            assert!(r.strict_lookup);
            assert!(!r.init_first);
        },
    );
    check(&[("secret", "db"), ("native-sidecar", "false")], |r| {
        assert_eq!(r.native_sidecar, Some(false))
    });
    for name in [
        "init-only",
        "fail-on-error",
        "strict-lookup",
        "native-sidecar",
        "init-first",
        "inject-as-k8s-secret",
    ] {
        check_err(
            &[("secret", "db"), (name, "1")],
            &format!(r#"keeper.security/{name}: invalid value "1": expected "true" or "false""#),
        );
    }
}

#[test]
fn signals() {
    for (value, name) in [
        ("SIGHUP", "SIGHUP"),
        ("hup", "SIGHUP"),
        ("USR2", "SIGUSR2"),
        ("SigTerm", "SIGTERM"),
    ] {
        check(&[("secret", "db"), ("signal", value)], |r| {
            assert_eq!(r.signal.as_ref().map(|s| s.signal.as_str()), Some(name));
        });
    }
    check(
        &[
            ("secret", "db"),
            ("signal", "SIGHUP"),
            ("signal-process", "nginx"),
        ],
        |r| {
            assert_eq!(
                r.signal.as_ref().and_then(|s| s.process.as_deref()),
                Some("nginx")
            );
        },
    );
    check_err(
        &[("secret", "db"), ("signal", "SIGKILL")],
        r#"keeper.security/signal: invalid signal "SIGKILL": expected SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2 or SIGWINCH"#,
    );
    check_err(
        &[
            ("secret", "db"),
            ("signal", "SIGHUP"),
            ("signal-process", "a-very-long-process"),
        ],
        r#"keeper.security/signal-process: invalid process name "a-very-long-process": expected a name of at most 15 bytes without '/', as in /proc/<pid>/comm"#,
    );
    check_warnings(
        &[("secret", "db"), ("signal-process", "nginx")],
        &["keeper.security/signal-process: has no effect without keeper.security/signal"],
    );
}

#[test]
fn init_only_warns_about_sidecar_annotations() {
    check_warnings(
        &[
            ("secret", "db"),
            ("init-only", "true"),
            ("refresh-interval", "1m"),
            ("signal", "SIGHUP"),
            ("native-sidecar", "true"),
        ],
        &[
            "keeper.security/refresh-interval: has no effect with keeper.security/init-only: \"true\" (there is no sidecar)",
            "keeper.security/signal: has no effect with keeper.security/init-only: \"true\" (there is no sidecar)",
            "keeper.security/native-sidecar: has no effect with keeper.security/init-only: \"true\" (there is no sidecar)",
        ],
    );
}

#[test]
fn ca_certificates() {
    check(&[("secret", "db"), ("ca-cert-secret", "corp-ca")], |r| {
        assert_eq!(
            r.ca_cert,
            Some(CaCert::Secret {
                name: "corp-ca".to_owned(),
                key: "ca.crt".to_owned()
            })
        );
    });
    check(
        &[
            ("secret", "db"),
            ("ca-cert-configmap", "corp-ca"),
            ("ca-cert-key", "root.pem"),
        ],
        |r| {
            assert_eq!(
                r.ca_cert,
                Some(CaCert::ConfigMap {
                    name: "corp-ca".to_owned(),
                    key: "root.pem".to_owned()
                })
            );
        },
    );
    check_err(
        &[
            ("secret", "db"),
            ("ca-cert-secret", "a"),
            ("ca-cert-configmap", "b"),
        ],
        "keeper.security/ca-cert-configmap: set keeper.security/ca-cert-secret or keeper.security/ca-cert-configmap, not both",
    );
    check_err(
        &[
            ("secret", "db"),
            ("ca-cert-secret", "a"),
            ("ca-cert-key", "ca/crt"),
        ],
        r#"keeper.security/ca-cert-key: invalid key "ca/crt": expected letters, digits, '-', '_' and '.'"#,
    );
    check_err(
        &[("secret", "db"), ("ca-cert-configmap", "Corp CA")],
        r#"keeper.security/ca-cert-configmap: invalid name "Corp CA": expected the name of a ConfigMap in the pod's namespace (lowercase letters, digits, '-' and '.')"#,
    );
    check_warnings(
        &[("secret", "db"), ("ca-cert-key", "root.pem")],
        &[
            "keeper.security/ca-cert-key: has no effect without keeper.security/ca-cert-secret or keeper.security/ca-cert-configmap",
        ],
    );
}

// Our additions.

#[test]
fn containers() {
    check(
        &[("secret", "db"), ("containers", "app, worker,app,")],
        |r| {
            assert_eq!(
                r.containers,
                Some(vec!["app".to_owned(), "worker".to_owned()])
            );
        },
    );
    check_err(
        &[("secret", "db"), ("containers", ",")],
        "keeper.security/containers: no container named: expected a comma-separated list of container names",
    );
    check_err(
        &[("secret", "db"), ("containers", "App_1")],
        r#"keeper.security/containers: invalid container name "App_1": expected a comma-separated list of container names"#,
    );
}

#[test]
fn output_mode() {
    check(&[("secret", "db"), ("output-mode", "0440")], |r| {
        assert_eq!(r.output_mode.map(|m| m.bits()), Some(0o440));
    });
    check(&[("secret", "db"), ("output-mode", "644")], |r| {
        assert_eq!(r.output_mode.map(|m| m.bits()), Some(0o644));
    });
    for bad in ["0o440", "0044", "1777", "rw", "04400"] {
        check_err(
            &[("secret", "db"), ("output-mode", bad)],
            &format!(
                "keeper.security/output-mode: invalid mode {bad:?}: expected octal permissions with owner read, such as 0400, 0440 or 0444"
            ),
        );
    }
}

#[test]
fn output_owner() {
    check(&[("secret", "db"), ("output-owner", "1000")], |r| {
        assert_eq!(
            r.output_owner,
            Some(Owner {
                uid: 1000,
                gid: None
            })
        );
    });
    check(&[("secret", "db"), ("output-owner", "1000:3000")], |r| {
        assert_eq!(
            r.output_owner,
            Some(Owner {
                uid: 1000,
                gid: Some(3000)
            })
        );
    });
    let expected = "expected a numeric user, or user:group, such as 1000 or 1000:3000";
    for (bad, why) in [
        ("0", "the keeper containers never run as root"),
        ("nginx", "not a user id"),
        ("1000:", "not a group id"),
        ("4294967295", "not a user id"),
    ] {
        check_err(
            &[("secret", "db"), ("output-owner", bad)],
            &format!("keeper.security/output-owner: invalid owner {bad:?}: {why}; {expected}"),
        );
    }
}

#[test]
fn resource_overrides() {
    check(
        &[
            ("secret", "db"),
            ("cpu-request", "5m"),
            ("cpu-limit", "0.5"),
            ("memory-request", "16Mi"),
            ("memory-limit", "1e8"),
            ("volume-size-limit", "16Mi"),
        ],
        |r| {
            assert_eq!(r.resources.cpu_request.as_deref(), Some("5m"));
            assert_eq!(r.resources.cpu_limit.as_deref(), Some("0.5"));
            assert_eq!(r.resources.memory_request.as_deref(), Some("16Mi"));
            assert_eq!(r.resources.memory_limit.as_deref(), Some("1e8"));
            assert_eq!(r.volume_size_limit.as_deref(), Some("16Mi"));
        },
    );
    check_err(
        &[("secret", "db"), ("cpu-limit", "-1")],
        r#"keeper.security/cpu-limit: invalid quantity "-1": expected a Kubernetes quantity such as 100m or 0.5"#,
    );
    check_err(
        &[("secret", "db"), ("memory-limit", "lots")],
        r#"keeper.security/memory-limit: invalid quantity "lots": expected a Kubernetes quantity such as 64Mi or 1Gi"#,
    );
    check_err(
        &[("secret", "db"), ("volume-size-limit", "16MB")],
        r#"keeper.security/volume-size-limit: invalid quantity "16MB": expected a Kubernetes quantity such as 64Mi or 1Gi"#,
    );
}

// Unknown keys.

#[test]
fn unknown_keys_are_warned_about() {
    check_warnings(
        &[
            ("secret", "db"),
            ("refresh-intervall", "5m"),
            ("totally-unknown", "x"),
            ("secret-", "x"),
            ("example.com/refresh-intervall", "5m"),
            ("vault.hashicorp.com/agent-inject", "true"),
        ],
        &[
            "keeper.security/refresh-intervall: unknown annotation, ignored (did you mean keeper.security/refresh-interval?)",
            "keeper.security/secret-: unknown annotation, ignored (did you mean keeper.security/secret?)",
            "keeper.security/totally-unknown: unknown annotation, ignored",
        ],
    );
}

#[test]
fn the_seed_annotations_load_unchanged() {
    // From the seed's GitOps section: the auth reference and the refresh interval, plus the
    // minimal secret of its quick reference.
    check(
        &[
            ("ksm-config", "keeper-auth"),
            ("refresh-interval", "10m"),
            ("secret", "my-secret"),
        ],
        |r| {
            assert_eq!(r.ksm_config.as_deref(), Some("keeper-auth"));
            assert_eq!(
                r.refresh_interval.map(|d| d.to_string()).as_deref(),
                Some("10m")
            );
            assert_eq!(r.warnings, Vec::<String>::new());
        },
    );
}

#[test]
fn unknown_key_warnings_are_bounded() {
    let keys: Vec<String> = (0..25).map(|i| format!("unknown-{i:02}")).collect();
    let mut pairs: Vec<(&str, &str)> = keys.iter().map(|k| (k.as_str(), "x")).collect();
    pairs.push(("secret", "db"));
    check(&pairs, |r| {
        assert_eq!(r.warnings.len(), 21);
        assert_eq!(
            r.warnings[0],
            "keeper.security/unknown-00: unknown annotation, ignored"
        );
        assert_eq!(
            r.warnings[20],
            "5 more unknown keeper.security/* annotations, ignored"
        );
    });
}
