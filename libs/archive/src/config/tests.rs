//! Tests: the seed's config loads unchanged; bad values name their field.

use std::collections::HashMap;

use bulwark_config::Loader;

use super::Config;

const SEED: &str = include_str!("../../tests/data/seed-config.yaml");

fn load(yaml: &str) -> Result<Config, String> {
    let env = HashMap::new();
    Loader::new(&env, "BULWARK_ARCHIVER_")
        .load_str(yaml, "config.yaml")
        .map_err(|e| e.to_string())
}

#[track_caller]
fn bad(from: &str, to: &str, expect: &str) {
    assert!(SEED.contains(from), "fixture lacks {from:?}");
    let e = load(&SEED.replacen(from, to, 1)).unwrap_err();
    assert!(e.contains(expect), "{e}");
}

#[test]
fn seed_config_loads_unchanged() {
    let c = load(SEED).unwrap();
    assert_eq!(c.s3.endpoint, None);
    assert_eq!(c.s3.bucket, "audit-archives");
    assert_eq!(c.s3.prefix, "archives/");
    assert_eq!(c.s3.storage_class.as_deref(), Some("STANDARD_IA"));
    assert_eq!(c.defaults.batch_size, 10_000);
    let db = &c.databases[0];
    assert_eq!(
        (db.name.as_str(), db.port, db.password_env.as_deref()),
        ("production_db", 5432, Some("DB_PASSWORD"))
    );
    let t = &db.tables[0];
    assert_eq!(
        (
            t.schema.as_str(),
            t.timestamp_column.as_str(),
            t.primary_key.as_str()
        ),
        ("public", "created_at", "id")
    );
    assert_eq!(c.retention_days(t), 90);
    assert_eq!(c.batch_size(t), 10_000);
}

#[test]
fn bad_values_name_the_field() {
    bad(
        "version: \"2.0\"",
        "version: \"1.0\"",
        "field `version`: unsupported version \"1.0\"",
    );
    bad(
        "retention_days: 90\n  batch_size",
        "retention_days: 0\n  batch_size",
        "field `defaults.retention_days`: must be at least 1 day",
    );
    bad(
        "        retention_days: 90",
        "        retention_days: -1",
        "databases[0].tables[0].retention_days",
    );
    bad("port: 5432", "port: 70000", "databases[0].port");
    bad(
        "password_env: DB_PASSWORD",
        "password_env: \"db password\"",
        "databases[0].password_env",
    );
    bad(
        "timestamp_column: created_at",
        "timestamp_colum: created_at",
        "unknown field `timestamp_colum`",
    );
    bad(
        "bucket: audit-archives",
        "bucket: \"\"",
        "field `s3.bucket`: must not be empty",
    );
}

#[test]
fn encryption_and_timeouts_are_read_and_checked() {
    let with = |extra: &str| {
        load(&SEED.replacen("  storage_class:", &format!("{extra}\n  storage_class:"), 1))
    };
    let c = with("  encryption: SSE-KMS\n  kms_key_id: alias/audit\n  bucket_key: true\n  timeout: 20s\n  connect_timeout: 2s\n  max_retries: 3\n  retry_timeout: 1m").unwrap();
    assert_eq!(c.s3.encryption, Some(super::Encryption::SseKms));
    assert_eq!(c.s3.kms_key_id.as_deref(), Some("alias/audit"));
    assert_eq!(c.s3.bucket_key, Some(true));
    assert_eq!(c.s3.timeout.map(|d| d.get().as_secs()), Some(20));
    assert_eq!(c.s3.max_retries, Some(3));
    assert_eq!(
        with("  encryption: none").unwrap().s3.encryption,
        Some(super::Encryption::None)
    );
    assert_eq!(
        with("  encryption: SSE-S3").unwrap().s3.encryption,
        Some(super::Encryption::SseS3)
    );
    for (extra, expect) in [
        (
            "  encryption: SSE-S3\n  kms_key_id: k",
            "field `s3.kms_key_id`: needs encryption: SSE-KMS",
        ),
        (
            "  bucket_key: true",
            "field `s3.bucket_key`: needs encryption: SSE-KMS",
        ),
        (
            "  encryption: SSE-KMS\n  kms_key_id: \"\"",
            "field `s3.kms_key_id`: must not be empty",
        ),
        ("  encryption: AES-512", "unknown variant `AES-512`"),
        ("  timeout: 0s", "field `s3.timeout`: must be more than 0s"),
        ("  timeout: 30", "invalid duration"),
    ] {
        let e = with(extra).unwrap_err();
        assert!(e.contains(expect), "{extra}: {e}");
    }
}

#[test]
fn select_filters_and_rejects_unknown_names() {
    let c = load(SEED).unwrap();
    assert_eq!(c.select(None, None).unwrap().len(), 1);
    let t = &c
        .select(Some("production_db"), Some("public.audit_logs"))
        .unwrap()[0];
    assert_eq!(
        (t.table.as_str(), t.retention_days, t.batch_size),
        ("audit_logs", 90, 10_000)
    );
    let e = c.select(Some("prod"), None).unwrap_err();
    assert_eq!(e.field, "--database");
    assert!(
        e.message.contains("configured: production_db"),
        "{}",
        e.message
    );
    assert_eq!(c.select(None, Some("nope")).unwrap_err().field, "--table");
}

/// An upstream v2.0 config's run settings work; `defaults` as upstream writes them.
#[test]
fn upstream_run_settings_work() {
    let yaml = SEED
        .replace(
            "  batch_size: 10000\n",
            "  batch_size: 10000\n  compression_level: 6\n  parallel_databases: false\n  max_parallel_databases: 3\n  sleep_between_batches: 2\n  lock_type: postgresql\n",
        )
        .replace("        retention_days: 90", "        retention_days: 90\n        critical: true");
    let c = load(&yaml).unwrap();
    assert_eq!(c.defaults.compression_level, Some(6));
    assert!(!c.defaults.fail_on_schema_drift);
    let zstd = load(&SEED.replace(
        "  batch_size: 10000\n",
        "  batch_size: 10000\n  compression: zstd\n  compression_level: 19\n",
    ))
    .unwrap();
    assert_eq!(zstd.defaults.compression, crate::object::Codec::Zstd);
    bad(
        "  batch_size: 10000\n",
        "  batch_size: 10000\n  compression: zstd\n  compression_level: 0\n",
        "must be between 1 and 19 (zstd's levels)",
    );
    bad(
        "  batch_size: 10000\n",
        "  batch_size: 10000\n  compression: lz4\n",
        "unknown variant `lz4`",
    );
    let held = load(&SEED.replace(
        "defaults:\n",
        "legal_holds:\n  check_table: compliance.holds\ndefaults:\n",
    ))
    .unwrap();
    assert_eq!(
        held.legal_holds.unwrap().table().as_deref(),
        Some("\"compliance\".\"holds\"")
    );
    assert_eq!(c.defaults.databases_in_parallel(), 1);
    assert_eq!(
        c.defaults.sleep_between_batches.0,
        std::time::Duration::from_secs(2)
    );
    assert!(c.databases[0].tables[0].critical);
    assert!(c.select(None, None).unwrap()[0].critical);
    let c = load(
        &yaml
            .replace("sleep_between_batches: 2", "sleep_between_batches: 500ms")
            .replace("parallel_databases: false", "parallel_databases: true"),
    )
    .unwrap();
    assert_eq!(
        c.defaults.sleep_between_batches.0,
        std::time::Duration::from_millis(500)
    );
    assert_eq!(c.defaults.databases_in_parallel(), 3);
    // Without the keys: ours.
    let c = load(SEED).unwrap();
    assert_eq!(c.defaults.databases_in_parallel(), 4);
    assert_eq!(c.defaults.compression_level, None);
    bad(
        "  batch_size: 10000\n",
        "  batch_size: 10000\n  compression_level: 10\n",
        "field `defaults.compression_level`: must be between 0 and 9",
    );
    bad(
        "  batch_size: 10000\n",
        "  batch_size: 10000\n  lock_type: redis\n",
        "field `defaults.lock_type`: only postgresql",
    );
    bad(
        "  batch_size: 10000\n",
        "  batch_size: 10000\n  sleep_between_batches: -1\n",
        "not a number of seconds",
    );
}

/// Every upstream key we do not implement is refused naming it and saying why, never
/// silently ignored.
#[test]
fn upstream_keys_we_do_not_implement_are_refused_with_the_reason() {
    for (from, to, field, why) in [
        (
            "defaults:\n",
            "legal_holds:\n  enabled: true\n  check_table: legal_holds\n  check_database: compliance\ndefaults:\n",
            "legal_holds.check_database",
            "batch's own snapshot",
        ),
        (
            "defaults:\n",
            "monitoring:\n  metrics_enabled: true\n  metrics_port: 8000\ndefaults:\n",
            "monitoring",
            "health.listen",
        ),
        (
            "defaults:\n",
            "notifications:\n  email: {}\ndefaults:\n",
            "notifications",
            "Prometheus",
        ),
        (
            "  region: us-east-1\n",
            "  region: us-east-1\n  aws_secret_access_key: x\n",
            "s3.aws_secret_access_key",
            "credentials in the config file are refused",
        ),
        (
            "  region: us-east-1\n",
            "  region: us-east-1\n  multipart_threshold_mb: 10\n",
            "s3.multipart_threshold_mb",
            "8 MiB parts",
        ),
        (
            "  batch_size: 10000\n",
            "  batch_size: 10000\n  vacuum_strategy: full\n",
            "defaults.vacuum_strategy",
            "VACUUM FULL would lock the table",
        ),
        (
            "  batch_size: 10000\n",
            "  batch_size: 10000\n  connection_pool_size: 5\n",
            "defaults.connection_pool_size",
            "two connections",
        ),
        (
            "    user: archiver\n",
            "    user: archiver\n    read_replica: replica.example.com\n",
            "databases[0].read_replica",
            "same snapshot",
        ),
        (
            "    user: archiver\n",
            "    user: archiver\n    password: hunter2\n",
            "databases[0].password",
            "password_env",
        ),
    ] {
        let e = load(&SEED.replacen(from, to, 1)).unwrap_err();
        assert!(
            e.contains(&format!("field `{field}`"))
                && e.contains("upstream's key is not supported")
                && e.contains(why),
            "{field}: {e}"
        );
        assert!(!e.contains("hunter2"), "{e}");
    }
}

/// `${VAR}` as upstream writes it: a whole value keeps the variable's type, a part is text,
/// an unset variable names itself and the field; the file's text is never rewritten.
#[test]
fn env_references_are_substituted_in_values() {
    let env: HashMap<String, String> = [
        ("DB_HOST", "db.internal"),
        ("DB_PORT", "6543"),
        ("STAGE", "prod"),
        ("DB_USER", "012345"),
        ("EVIL", "x\nversion: \"9.9\""),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let load_with = |yaml: &str| {
        Loader::new(&env, "BULWARK_ARCHIVER_")
            .load_str::<Config>(yaml, "config.yaml")
            .map_err(|e| e.to_string())
    };
    let yaml = SEED
        .replace("host: db.example.com", "host: ${DB_HOST}")
        .replace("port: 5432", "port: ${DB_PORT}")
        .replace("prefix: archives/", "prefix: archives/${STAGE}/")
        .replace("user: archiver", "user: \"${EVIL}\"");
    let c = load_with(&yaml).unwrap();
    assert_eq!(c.databases[0].host, "db.internal");
    assert_eq!(c.databases[0].port, 6543);
    assert_eq!(c.s3.prefix, "archives/prod/");
    // A value cannot add keys: the variable's text stays one string.
    assert_eq!(c.databases[0].user, "x\nversion: \"9.9\"");
    assert_eq!(c.version, "2.0");
    // A whole value that only looks like a number keeps its exact text.
    let c = load_with(&SEED.replace("user: archiver", "user: ${DB_USER}")).unwrap();
    assert_eq!(c.databases[0].user, "012345");
    let e = load_with(&SEED.replace("host: db.example.com", "host: ${NOPE}")).unwrap_err();
    assert!(
        e.contains("NOPE") && e.contains("databases[0].host") && e.contains("is not set"),
        "{e}"
    );
    // Not a reference: kept as it is.
    let c = load_with(&SEED.replace("prefix: archives/", "prefix: \"a${b-c}\"")).unwrap();
    assert_eq!(c.s3.prefix, "a${b-c}");
}
