//! The official Python SDK (`keeper-secrets-manager-core` 17.3.0) against the fake Keeper
//! server: it binds a one-time token, then reads records, fields, notation, a file and folders,
//! reuses its bound config, and survives throttling and a key rotation. This is the proof that
//! the fake speaks the real wire protocol.
//!
//! The SDK verifies TLS against the fake's CA through `REQUESTS_CA_BUNDLE`: `requests` reads it
//! whenever the SDK passes `verify=True`, so no insecure mode is needed.

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use bulwark_test_util::keeper::{FakeKeeper, Field, File, Folder, Record};
use serde_json::{Value, json};

/// The script that drives the SDK.
/// Relative to the package root, where cargo runs tests (and the processes they start).
const SCRIPT: &str = "tests/data/ksm_read.py";
/// How long one SDK run may take; a throttled run waits `retry_after` once.
const SDK_TIMEOUT: Duration = Duration::from_secs(120);
/// What to run when the SDK is missing.
const PIP_HINT: &str = "run `cargo xtask prereqs`, or `~/.cache/bulwark-venv/bin/python3 -m pip install keeper-secrets-manager-core==17.3.0`";
/// Environment variables that would steer the SDK or `requests` away from the test's config.
const FOREIGN_ENV: &[&str] = &[
    "KSM_CONFIG",
    "KSM_CONFIG_FILE",
    "KSM_TOKEN",
    "KSM_HOSTNAME",
    "KSM_SKIP_VERIFY",
    "CURL_CA_BUNDLE",
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// The venv that `cargo xtask prereqs` fills, else the first `python3` on PATH.
fn python() -> PathBuf {
    std::env::home_dir()
        .map(|home| home.join(".cache/bulwark-venv/bin/python3"))
        .filter(|venv| venv.is_file())
        .unwrap_or_else(|| PathBuf::from("python3"))
}

/// Fails with the install command when the SDK cannot be imported.
fn require_sdk(python: &Path) {
    let probe = Command::new(python)
        .args(["-c", "import keeper_secrets_manager_core"])
        .output();
    match probe {
        Ok(output) if output.status.success() => {}
        Ok(output) => panic!(
            "the official Keeper SDK is not importable by {}: {PIP_HINT}\n{}",
            python.display(),
            String::from_utf8_lossy(&output.stderr)
        ),
        Err(error) => panic!("cannot run {}: {error}; {PIP_HINT}", python.display()),
    }
}

/// What one SDK run printed: its JSON report and its log (stderr).
struct Run {
    out: Value,
    log: String,
}

/// The SDK script with `config` (which the SDK updates in place) and `plan`, trusting the
/// fake's CA, in an environment that nothing but the config steers.
fn sdk_command(fake: &FakeKeeper, dir: &Path, config: &Path, plan: &Value) -> Command {
    let python = python();
    require_sdk(&python);
    let plan_path = dir.join("plan.json");
    fs::write(&plan_path, plan.to_string()).unwrap();
    let ca = fake.write_ca(dir).unwrap();
    let mut command = Command::new(&python);
    command
        .arg(SCRIPT)
        .arg(config)
        .arg(&plan_path)
        .env("REQUESTS_CA_BUNDLE", &ca)
        .stdin(Stdio::null());
    for name in FOREIGN_ENV {
        command.env_remove(name);
    }
    command
}

/// Runs the SDK script and returns what it printed; fails the test if the script fails.
fn run_sdk(fake: &FakeKeeper, dir: &Path, config: &Path, plan: &Value) -> Run {
    let stdout_path = dir.join("sdk.out");
    let stderr_path = dir.join("sdk.err");
    let mut child = sdk_command(fake, dir, config, plan)
        .stdout(fs::File::create(&stdout_path).unwrap())
        .stderr(fs::File::create(&stderr_path).unwrap())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > SDK_TIMEOUT {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!(
                "the SDK did not finish within {SDK_TIMEOUT:?}; its log:\n{}",
                fs::read_to_string(&stderr_path).unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let log = fs::read_to_string(&stderr_path).unwrap();
    assert!(
        status.success(),
        "the SDK failed ({status}); its log:\n{log}"
    );
    let out = fs::read_to_string(&stdout_path).unwrap();
    let out = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}\n{log}"));
    Run { out, log }
}

/// Writes a config file readable by its owner only, as the SDK wants it.
fn write_config(dir: &Path, config: &Value) -> PathBuf {
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join("client-config.json");
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .unwrap();
    file.write_all(config.to_string().as_bytes()).unwrap();
    path
}

fn read_config(path: &Path) -> Value {
    serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap()
}

/// Binary content, not valid UTF-8, so that the file round trip cannot hide an encoding step.
const FILE_CONTENT: &[u8] = b"-----BEGIN CERTIFICATE-----\n\x00\xff\xfe binary \x80\n";

/// What the tests store, and the UIDs to look things up by.
struct Seeded {
    login: Record,
    escaped: Record,
    member: Record,
    shared: Folder,
    sub: Folder,
    subsub: Folder,
}

/// A login record with complex fields and a file, a record whose title needs escaping in
/// notation and whose data is encrypted with the app key, and a record in a subfolder of a
/// shared folder, which has a subfolder of its own.
fn seed(fake: &FakeKeeper) -> Seeded {
    let login = Record::login("Prod DB", "alice", "pa$$w0rd!")
        .field(Field::new(
            "url",
            ["https://db.internal", "https://db-replica.internal"],
        ))
        .field(Field::new(
            "name",
            [json!({"first": "Ada", "middle": "", "last": "Lovelace"})],
        ))
        .custom(Field::labeled("text", "API Key", ["ak-123"]))
        .custom(Field::labeled(
            "phone",
            "On call",
            [json!({"number": "555-0100", "type": "Mobile"})],
        ))
        .notes("rotate monthly")
        .file(File::new("tls.pem", FILE_CONTENT).with_mime_type("application/x-pem-file"));
    let escaped = Record::new("databaseCredentials", r"ops/db [eu]\prod")
        .field(Field::new(
            "host",
            [json!({"hostName": "db.eu", "port": "5432"})],
        ))
        .field(Field::new("password", ["eu-secret"]))
        .without_record_key();
    let shared = Folder::shared("Payments");
    let sub = Folder::subfolder("db", shared.uid());
    let subsub = Folder::subfolder("replica", sub.uid());
    let member = Record::login("Payments API", "svc", "pay-secret").in_folder(sub.uid());
    for folder in [&shared, &sub, &subsub] {
        fake.set_folder(folder.clone()).unwrap();
    }
    for record in [&login, &escaped, &member] {
        fake.set_record(record.clone()).unwrap();
    }
    Seeded {
        login,
        escaped,
        member,
        shared,
        sub,
        subsub,
    }
}

/// The `fields` list the SDK should decrypt for `record`: every standard field, then a
/// `fileRef` listing the attachments.
fn expected_fields(record: &Record) -> Value {
    let mut fields: Vec<Value> = record.fields.iter().map(field_json).collect();
    if !record.files.is_empty() {
        let uids: Vec<&str> = record.files.iter().map(|f| f.uid.as_str()).collect();
        fields.push(json!({"type": "fileRef", "value": uids}));
    }
    Value::Array(fields)
}

fn field_json(field: &Field) -> Value {
    match &field.label {
        Some(label) => json!({"type": field.field_type, "label": label, "value": field.value}),
        None => json!({"type": field.field_type, "value": field.value}),
    }
}

/// The record the SDK reported with `uid`.
fn reported<'a>(out: &'a Value, uid: &str) -> &'a Value {
    out["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["uid"] == uid)
        .unwrap_or_else(|| panic!("the SDK did not read record {uid}: {out}"))
}

fn plan(seeded: &Seeded) -> Value {
    let uid = seeded.login.uid();
    let member = seeded.member.uid();
    json!({
        "record_uid": uid,
        "fields": [
            {"record": uid, "kind": "standard", "key": "password"},
            {"record": uid, "kind": "standard", "key": "login"},
            {"record": uid, "kind": "custom", "key": "API Key"},
            {"record": uid, "kind": "custom", "key": "phone"},
        ],
        "notation": [
            format!("keeper://{uid}/field/password"),
            format!("{uid}/custom_field/API Key"),
            format!("keeper://{uid}/field/url[1]"),
            format!("keeper://{uid}/field/url"),
            format!("keeper://{uid}/field/name[0][first]"),
            format!("keeper://{uid}/custom_field/On call[0][number]"),
            format!("keeper://{uid}/type"),
            format!("keeper://{uid}/notes"),
            format!("keeper://{uid}/file/tls.pem"),
            r"keeper://ops\/db \[eu\]\\prod/field/password".to_owned(),
            format!("keeper://{member}/field/login"),
        ],
        "notation_single": [
            format!("{uid}/field/name[first]"),
            format!("keeper://{uid}/field/url[0]"),
        ],
        "files": [{"record": uid, "title": "tls.pem"}],
        "folders": true,
    })
}

#[test]
fn python_sdk_binds_a_token_and_reads_records_fields_notation_files_and_folders() {
    let fake = FakeKeeper::start().unwrap();
    let seeded = seed(&fake);
    let dir = tempfile::tempdir().unwrap();
    let token = fake.one_time_token();
    let config = write_config(dir.path(), &fake.token_config(&token));

    let run = run_sdk(&fake, dir.path(), &config, &plan(&seeded));
    let out = &run.out;

    // Binding: the SDK swapped its token for the app key and registered its public key.
    let bound = read_config(&config);
    assert!(bound.get("clientKey").is_none(), "{bound}");
    for key in ["appKey", "clientId", "privateKey", "appOwnerPublicKey"] {
        assert!(bound[key].is_string(), "{key} missing from {bound}");
    }
    assert_eq!(bound["serverPublicKey"], fake.server_public_key());
    assert_eq!(fake.bound_clients(), 1);
    let payloads = fake.payloads("get_secret");
    assert!(payloads[0]["publicKey"].is_string(), "{}", payloads[0]);
    assert!(payloads[1..].iter().all(|p| p["publicKey"].is_null()));
    assert!(payloads.iter().all(|p| p["clientVersion"] == "mp17.3.0"));
    assert!(
        payloads
            .iter()
            .any(|p| p["requestedRecords"] == json!([seeded.login.uid()])),
        "no request asked for one record: {payloads:?}"
    );

    // Every record, decrypted: the direct one, the app-keyed one, the folder member.
    assert_eq!(out["bad_records"], 0, "{out}");
    assert_eq!(out["bad_folders"], 0, "{out}");
    assert_eq!(out["records"].as_array().unwrap().len(), 3, "{out}");
    assert_eq!(out["app"]["title"], "Bulwark test application");
    let login = reported(out, seeded.login.uid());
    assert_eq!(login["title"], "Prod DB");
    assert_eq!(login["type"], "login");
    assert_eq!(login["notes"], "rotate monthly");
    assert_eq!(login["password"], "pa$$w0rd!");
    assert_eq!(login["fields"], expected_fields(&seeded.login));
    let custom: Vec<Value> = seeded.login.custom.iter().map(field_json).collect();
    assert_eq!(login["custom"], Value::Array(custom));
    assert_eq!(
        login["files"],
        json!([{
            "uid": seeded.login.files[0].uid,
            "name": "tls.pem",
            "title": "tls.pem",
            "type": "application/x-pem-file",
            "size": FILE_CONTENT.len(),
        }])
    );
    let escaped = reported(out, seeded.escaped.uid());
    assert_eq!(escaped["title"], r"ops/db [eu]\prod");
    assert_eq!(escaped["fields"], expected_fields(&seeded.escaped));
    let member = reported(out, seeded.member.uid());
    assert_eq!(member["password"], "pay-secret");
    assert_eq!(member["folder_uid"], seeded.shared.uid());
    assert_eq!(member["inner_folder_uid"], seeded.sub.uid());
    assert_eq!(
        out["shared_folders"],
        json!([{"uid": seeded.shared.uid(), "name": "Payments", "records": [seeded.member.uid()]}])
    );

    // One record by UID.
    let record = out["record"].as_array().unwrap();
    assert_eq!(record.len(), 1);
    assert_eq!(record[0]["uid"], seeded.login.uid());

    // Fields by type and by label.
    assert_eq!(
        out["fields"],
        json!([
            ["pa$$w0rd!"],
            ["alice"],
            ["ak-123"],
            [{"number": "555-0100", "type": "Mobile"}],
        ])
    );

    // Notation: selectors, indexes, object properties, an escaped title, a file.
    let uid = seeded.login.uid();
    let notation = &out["notation"];
    let file_b64 = base64_url(FILE_CONTENT);
    let expected = [
        (
            format!("keeper://{uid}/field/password"),
            json!(["pa$$w0rd!"]),
        ),
        (format!("{uid}/custom_field/API Key"), json!(["ak-123"])),
        (
            format!("keeper://{uid}/field/url[1]"),
            json!(["https://db-replica.internal"]),
        ),
        (
            format!("keeper://{uid}/field/url"),
            json!(["https://db.internal", "https://db-replica.internal"]),
        ),
        (
            format!("keeper://{uid}/field/name[0][first]"),
            json!(["Ada"]),
        ),
        (
            format!("keeper://{uid}/custom_field/On call[0][number]"),
            json!(["555-0100"]),
        ),
        (format!("keeper://{uid}/type"), json!(["login"])),
        (format!("keeper://{uid}/notes"), json!(["rotate monthly"])),
        (format!("keeper://{uid}/file/tls.pem"), json!([file_b64])),
        (
            r"keeper://ops\/db \[eu\]\\prod/field/password".to_owned(),
            json!(["eu-secret"]),
        ),
        (
            format!("keeper://{}/field/login", seeded.member.uid()),
            json!(["svc"]),
        ),
    ];
    for (query, value) in expected {
        assert_eq!(notation[&query], value, "notation {query}");
    }
    assert_eq!(
        out["notation_single"][format!("{uid}/field/name[first]")],
        "Ada"
    );
    assert_eq!(
        out["notation_single"][format!("keeper://{uid}/field/url[0]")],
        "https://db.internal"
    );

    // The attachment, downloaded and decrypted.
    assert_eq!(out["files"]["tls.pem"], base64_std(FILE_CONTENT));
    assert!(fake.requests("download") >= 2, "{:?}", fake.log());

    // Folders: the shared folder and its subfolder tree, names decrypted.
    assert_eq!(
        out["folders"],
        sorted_by_uid(vec![
            json!({"uid": seeded.shared.uid(), "parent": null, "name": "Payments"}),
            json!({"uid": seeded.sub.uid(), "parent": seeded.shared.uid(), "name": "db"}),
            json!({"uid": seeded.subsub.uid(), "parent": seeded.sub.uid(), "name": "replica"}),
        ])
    );
    assert_eq!(fake.requests("get_folders"), 1);
    assert!(
        fake.log().iter().all(|r| r.status == 200),
        "{:?}",
        fake.log()
    );
    assert!(!run.log.contains("pa$$w0rd!"));

    // A second run reuses the bound config, with no token, and sees changes made meanwhile.
    fake.update_field(seeded.login.uid(), "password", ["rotated!"])
        .unwrap();
    assert!(fake.remove_record(seeded.escaped.uid()));
    let before = fake.requests("get_secret");
    let again = json!({"record_uid": seeded.login.uid()});
    let run = run_sdk(&fake, dir.path(), &config, &again);
    assert_eq!(
        reported(&run.out, seeded.login.uid())["password"],
        "rotated!"
    );
    assert_eq!(run.out["records"].as_array().unwrap().len(), 2);
    assert_eq!(fake.requests("get_secret"), before + 2);
    assert!(
        fake.payloads("get_secret")[before..]
            .iter()
            .all(|p| p["publicKey"].is_null())
    );
    assert_eq!(fake.bound_clients(), 1);
}

#[test]
fn python_sdk_survives_throttling_and_key_rotation() {
    let fake = FakeKeeper::start().unwrap();
    let seeded = seed(&fake);
    let dir = tempfile::tempdir().unwrap();
    let token = fake.one_time_token();
    let config = write_config(dir.path(), &fake.token_config(&token));
    let old_key_id = fake.server_public_key_id();
    run_sdk(&fake, dir.path(), &config, &json!({}));
    let bound_requests = fake.log().len();

    fake.throttle_next(1, Duration::from_millis(200));
    let new_key_id = fake.rotate_key();
    assert_ne!(new_key_id, old_key_id);
    let run = run_sdk(
        &fake,
        dir.path(),
        &config,
        &json!({"record_uid": seeded.member.uid()}),
    );
    assert_eq!(
        reported(&run.out, seeded.member.uid())["password"],
        "pay-secret"
    );

    // Throttled once, told the new key id once, then served under the new id.
    let log = fake.log();
    let round: Vec<(u16, Option<&str>)> = log[bound_requests..]
        .iter()
        .map(|r| (r.status, r.key_id.as_deref()))
        .collect();
    assert_eq!(round[0], (403, Some(old_key_id.as_str())), "{round:?}");
    assert_eq!(round[1], (400, Some(old_key_id.as_str())), "{round:?}");
    assert!(
        round[2..]
            .iter()
            .all(|r| *r == (200, Some(new_key_id.as_str()))),
        "{round:?}"
    );
    assert_eq!(read_config(&config)["serverPublicKeyId"], new_key_id);
    assert!(run.log.contains("Request throttled"), "{}", run.log);
    assert!(
        run.log.contains(&format!(
            "Server has requested we use public key {new_key_id}"
        )),
        "{}",
        run.log
    );
}

#[test]
fn python_sdk_reads_with_a_prebound_config() {
    let fake = FakeKeeper::start().unwrap();
    let seeded = seed(&fake);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &fake.bound_config().unwrap());
    let run = run_sdk(&fake, dir.path(), &config, &json!({}));
    assert_eq!(run.out["records"].as_array().unwrap().len(), 3);
    assert_eq!(
        reported(&run.out, seeded.login.uid())["password"],
        "pa$$w0rd!"
    );
    assert_eq!(fake.requests("get_secret"), 1);
    assert!(fake.payloads("get_secret")[0]["publicKey"].is_null());
}

#[test]
fn outage_resets_connections_until_the_server_is_back() {
    let fake = FakeKeeper::start().unwrap();
    fake.set_down(true);
    // The server accepts and resets at once: the client reads an error or end of stream.
    let mut stream = TcpStream::connect(fake.addr()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let _ = stream.write_all(b"\x16\x03\x01\x00\x00");
    let mut buf = [0u8; 16];
    match stream.read(&mut buf) {
        Ok(0) | Err(_) => {}
        Ok(n) => panic!("a down server answered {n} bytes"),
    }
    fake.set_down(false);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &fake.bound_config().unwrap());
    run_sdk(&fake, dir.path(), &config, &json!({}));
    assert_eq!(fake.requests("get_secret"), 1);

    // A 503 from a load balancer is an error the SDK reports, not a throttle it waits out.
    fake.set_unavailable(true);
    let started = fake.log().len();
    let output = sdk_command(&fake, dir.path(), &config, &json!({}))
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("503"));
    assert_eq!(fake.log()[started].status, 503);
    assert_eq!(fake.log().len(), started + 1);
}

fn sorted_by_uid(mut folders: Vec<Value>) -> Value {
    folders.sort_by(|a, b| a["uid"].as_str().cmp(&b["uid"].as_str()));
    Value::Array(folders)
}

fn base64_std(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn base64_url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
