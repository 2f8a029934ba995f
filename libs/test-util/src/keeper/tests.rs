//! Unit tests of the fake Keeper server: the cryptography against vectors made with Python's
//! `cryptography` (the library the official Python SDK uses), and the protocol against a small
//! client written here from the SDKs' description, without any network.

use base64::Engine;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use p256::SecretKey;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use serde_json::{Value, json};

use super::crypto::{self, CryptoError, Key};
use super::model::{Field, File, Folder, Record};
use super::protocol::{Reply, route};
use super::state::{FIRST_KEY_ID, State};

const BASE_URL: &str = "https://127.0.0.9";

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

fn scalar(first: u8) -> SecretKey {
    let bytes: Vec<u8> = (first..first + 32).collect();
    SecretKey::from_slice(&bytes).unwrap()
}

// Cryptography.

/// `cryptography`: the server scalar is 1..=32, the ephemeral scalar 101..=132, the IV
/// 200..=211, and the plaintext below; `eph.exchange(ECDH(), server)` → SHA-256 → AES-GCM.
const PYTHON_ECIES_BLOB: &str = "04254ee6d1bad1c74ce2fd28ac529a166af4950a0e3da0bc53d96bf40dce38ebe7df5937f11e869d453729a222f63e709d0740b97544e1416b1e5a401b385fb950c8c9cacbcccdcecfd0d1d2d32aedfdffd79520d90e582f71e6782a2430a84b7d7fc5d168d490f88a00d560c0c4ea4bff1b980c73face87e1c9e01ac7";
const PYTHON_ECIES_PLAINTEXT: &[u8] = b"transmission key bytes, 32 long!";

#[test]
fn ecies_opens_what_python_sealed() {
    let opened = crypto::ecies_decrypt(&scalar(1), &hex(PYTHON_ECIES_BLOB)).unwrap();
    assert_eq!(opened, PYTHON_ECIES_PLAINTEXT);
    assert_eq!(
        crypto::ecies_decrypt(&scalar(2), &hex(PYTHON_ECIES_BLOB)),
        Err(CryptoError::Decrypt)
    );
}

#[test]
fn ecies_round_trip_with_fixed_keys() {
    let server = scalar(1);
    let ephemeral = scalar(101);
    let blob = crypto::ecies_encrypt_with(&ephemeral, &server.public_key(), b"a secret key");
    // Ephemeral point, then IV, ciphertext and tag: the same shape as Python's blob.
    assert_eq!(blob.len(), 65 + 12 + b"a secret key".len() + 16);
    assert_eq!(&blob[..65], &hex(PYTHON_ECIES_BLOB)[..65]);
    assert_eq!(
        crypto::ecies_decrypt(&server, &blob).unwrap(),
        b"a secret key"
    );
    let mut tampered = blob.clone();
    tampered[70] ^= 1;
    assert_eq!(
        crypto::ecies_decrypt(&server, &tampered),
        Err(CryptoError::Decrypt)
    );
    assert_eq!(
        crypto::ecies_decrypt(&server, &blob[..64]),
        Err(CryptoError::TooShort)
    );
}

#[test]
fn server_public_key_encoding_matches_python() {
    let encoded = crypto::url_b64(&crypto::point_bytes(&scalar(1).public_key()));
    assert_eq!(
        encoded,
        "BFFcPW6545a5BNP-yn9U_c0MwemXvzddylFa0KbDtANfRTa-OlDzGPv5pUdZAqIhUCvvDVfgjFOyzApW8X2fk1Q"
    );
}

#[test]
fn gcm_framing_matches_python() {
    let key = [7u8; 32];
    let sealed = crypto::gcm_encrypt_with_iv(&key, &[9u8; 12], br#"{"title":"x"}"#);
    assert_eq!(
        sealed,
        hex("0909090909090909090909095ca7f0fdca9ca4439a40b31a9bc28f95fc645b1d956e536d37284a9e0b")
    );
    assert_eq!(
        crypto::gcm_decrypt(&key, &sealed).unwrap(),
        br#"{"title":"x"}"#
    );
    let random_iv = crypto::gcm_encrypt(&key, b"abc");
    assert_eq!(random_iv.len(), 12 + 3 + 16);
    assert_eq!(crypto::gcm_decrypt(&key, &random_iv).unwrap(), b"abc");
    assert_eq!(
        crypto::gcm_decrypt(&[8u8; 32], &sealed),
        Err(CryptoError::Decrypt)
    );
    assert_eq!(
        crypto::gcm_decrypt(&[7u8; 16], &sealed),
        Err(CryptoError::KeyLength)
    );
}

#[test]
fn cbc_framing_matches_python() {
    let key = [7u8; 32];
    let python = hex("05050505050505050505050505050505d465d065a038e2d94cc2f1399a6d0438");
    assert_eq!(
        crypto::cbc_decrypt(&key, &python).unwrap(),
        br#"{"name":"db"}"#
    );
    let sealed = crypto::cbc_encrypt(&key, br#"{"name":"db"}"#);
    assert_eq!(sealed.len(), 32);
    assert_eq!(
        crypto::cbc_decrypt(&key, &sealed).unwrap(),
        br#"{"name":"db"}"#
    );
}

#[test]
fn client_id_matches_python() {
    let token: Vec<u8> = (0..32).collect();
    assert_eq!(
        crypto::client_id(&token),
        "HDWtY7+/cWpJ86C1KBh6DgWY4ovDJBrjliUeY7fvzOEVISYTHNlkqkoyz0IHQrqO0GLFvBPnFb6JvPOzemsZEg=="
    );
}

#[test]
fn signature_verifies_and_fails_on_tampering() {
    let client = scalar(50);
    let message = b"encrypted transmission key, then the encrypted payload";
    let signature: Signature = SigningKey::from(&client).sign(message);
    let der = signature.to_der();
    crypto::verify_signature(&client.public_key(), message, der.as_bytes()).unwrap();

    let mut tampered = message.to_vec();
    tampered[3] ^= 1;
    assert_eq!(
        crypto::verify_signature(&client.public_key(), &tampered, der.as_bytes()),
        Err(CryptoError::Signature)
    );
    assert_eq!(
        crypto::verify_signature(&scalar(51).public_key(), message, der.as_bytes()),
        Err(CryptoError::Signature)
    );
    assert_eq!(
        crypto::verify_signature(
            &client.public_key(),
            message,
            signature.to_bytes().as_slice()
        ),
        Err(CryptoError::SignatureEncoding)
    );
}

#[test]
fn base64_decoding_accepts_both_alphabets() {
    let bytes = [0xfbu8, 0xff, 0xbf, 0x01];
    assert_eq!(crypto::std_b64(&bytes), "+/+/AQ==");
    assert_eq!(crypto::url_b64(&bytes), "-_-_AQ");
    assert_eq!(crypto::decode_b64("+/+/AQ==").unwrap(), bytes);
    assert_eq!(crypto::decode_b64("-_-_AQ").unwrap(), bytes);
    assert_eq!(crypto::decode_b64("not base64!"), Err(CryptoError::Base64));
}

// The protocol, through a client that does what the SDKs do.

/// A KSM client: a one-time token and a signing key.
struct Client {
    token: Key,
    key: SecretKey,
    client_id: String,
    version: &'static str,
}

/// A sent request's answer and the transmission key to open it with.
struct Answer {
    reply: Reply,
    transmission_key: Key,
}

impl Client {
    fn new(token: &str) -> Client {
        let token: Key = crypto::decode_b64(token).unwrap().try_into().unwrap();
        Client {
            token,
            key: crypto::random_secret_key(),
            client_id: crypto::client_id(&token),
            version: "mp17.3.0",
        }
    }

    fn public_key_b64(&self) -> String {
        crypto::std_b64(&crypto::point_bytes(&self.key.public_key()))
    }

    /// Sends `payload` (completed with `clientVersion` and `clientId`) to `endpoint`.
    fn send(&self, state: &mut State, endpoint: &str, mut payload: Value, key_id: &str) -> Answer {
        payload["clientVersion"] = self.version.into();
        payload["clientId"] = self.client_id.clone().into();
        let transmission_key = crypto::random_key();
        let encrypted_key =
            crypto::ecies_encrypt(&state.server_key.public_key(), &transmission_key);
        let body = crypto::gcm_encrypt(&transmission_key, payload.to_string().as_bytes());
        let mut signed = encrypted_key.clone();
        signed.extend_from_slice(&body);
        let signature: Signature = SigningKey::from(&self.key).sign(&signed);
        let headers = headers(
            key_id,
            &crypto::std_b64(&encrypted_key),
            &crypto::std_b64(signature.to_der().as_bytes()),
        );
        let path = format!("/api/rest/sm/v1/{endpoint}");
        let reply = route(state, &Method::POST, &path, &headers, &body);
        Answer {
            reply,
            transmission_key,
        }
    }

    /// Binds with the current key id; returns the application key.
    fn bind(&self, state: &mut State) -> Key {
        let key_id = state.current_key_id().to_string();
        let payload = json!({"publicKey": self.public_key_b64()});
        let response = self.send(state, "get_secret", payload, &key_id).open();
        let sealed = crypto::decode_b64(response["encryptedAppKey"].as_str().unwrap()).unwrap();
        crypto::gcm_decrypt(&self.token, &sealed)
            .unwrap()
            .try_into()
            .unwrap()
    }

    fn get(&self, state: &mut State, endpoint: &str, payload: Value) -> Value {
        let key_id = state.current_key_id().to_string();
        self.send(state, endpoint, payload, &key_id).open()
    }
}

impl Answer {
    fn open(&self) -> Value {
        assert_eq!(
            self.reply.status,
            StatusCode::OK,
            "{}",
            String::from_utf8_lossy(&self.reply.body)
        );
        let plain = crypto::gcm_decrypt(&self.transmission_key, &self.reply.body).unwrap();
        serde_json::from_slice(&plain).unwrap()
    }

    /// The status and the `error` code of a failed request.
    fn error(&self) -> (u16, String) {
        let body: Value = serde_json::from_slice(&self.reply.body).unwrap_or(Value::Null);
        let code = body["error"].as_str().unwrap_or_default().to_owned();
        (self.reply.status.as_u16(), code)
    }
}

fn headers(key_id: &str, transmission_key: &str, signature: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let value = |v: &str| HeaderValue::from_str(v).unwrap();
    headers.insert("PublicKeyId", value(key_id));
    headers.insert("TransmissionKey", value(transmission_key));
    headers.insert("Authorization", value(&format!("Signature {signature}")));
    headers
}

/// Opens a record entry the way the SDKs do; returns its decrypted data and its record key.
fn open_record(entry: &Value, wrapping_key: &Key) -> (Value, Key) {
    let record_key: Key = match entry.get("recordKey").and_then(Value::as_str) {
        Some(sealed) => crypto::gcm_decrypt(wrapping_key, &crypto::decode_b64(sealed).unwrap())
            .unwrap()
            .try_into()
            .unwrap(),
        None => *wrapping_key,
    };
    let data = crypto::decode_b64(entry["data"].as_str().unwrap()).unwrap();
    let plain = crypto::gcm_decrypt(&record_key, &data).unwrap();
    (serde_json::from_slice(&plain).unwrap(), record_key)
}

fn state_with_records() -> (State, Record, Record, Record) {
    let mut state = State::new(BASE_URL.to_owned(), "app");
    let direct = Record::login("Direct", "alice", "s3cret")
        .custom(Field::labeled("text", "API Key", ["k-123"]))
        .file(File::new(
            "cert.pem",
            b"-----BEGIN CERTIFICATE-----".to_vec(),
        ));
    let app_keyed = Record::new("file", "App keyed").without_record_key();
    state
        .set_folder(Folder::shared("Payments").with_uid("shared-folder-uid-0001"))
        .unwrap();
    state
        .set_folder(
            Folder::subfolder("db", "shared-folder-uid-0001").with_uid("subfolder-uid-00000001"),
        )
        .unwrap();
    let in_folder =
        Record::login("In folder", "bob", "hunter2").in_folder("subfolder-uid-00000001");
    for record in [&direct, &app_keyed, &in_folder] {
        state.set_record(record.clone()).unwrap();
    }
    (state, direct, app_keyed, in_folder)
}

#[test]
fn binding_delivers_the_app_key_and_records_decrypt() {
    let (mut state, direct, app_keyed, in_folder) = state_with_records();
    let client = Client::new(&state.mint_token());
    let key_id = FIRST_KEY_ID.to_string();
    let payload = json!({"publicKey": client.public_key_b64()});
    let response = client
        .send(&mut state, "get_secret", payload, &key_id)
        .open();

    // The binding fields use URL-safe base64 without padding; the owner key is a P-256 point.
    for field in ["encryptedAppKey", "appOwnerPublicKey", "appData"] {
        let text = response[field].as_str().unwrap();
        assert!(
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(text)
                .is_ok(),
            "{field}: {text}"
        );
    }
    let owner = crypto::decode_b64(response["appOwnerPublicKey"].as_str().unwrap()).unwrap();
    crypto::parse_point(&owner).unwrap();
    let sealed = crypto::decode_b64(response["encryptedAppKey"].as_str().unwrap()).unwrap();
    let app_key: Key = crypto::gcm_decrypt(&client.token, &sealed)
        .unwrap()
        .try_into()
        .unwrap();
    assert_eq!(app_key, state.app.key);

    let app_data = crypto::decode_b64(response["appData"].as_str().unwrap()).unwrap();
    let app_data: Value =
        serde_json::from_slice(&crypto::gcm_decrypt(&app_key, &app_data).unwrap()).unwrap();
    assert_eq!(app_data["title"], "app");

    let records = response["records"].as_array().unwrap();
    assert_eq!(records.len(), 2);
    let entry = |uid: &str| records.iter().find(|r| r["recordUid"] == uid).unwrap();

    // A direct share: `recordKey` wrapped by the app key, standard base64 with padding.
    let direct_entry = entry(direct.uid());
    let (data, record_key) = open_record(direct_entry, &app_key);
    for text in [
        &direct_entry["recordKey"],
        &direct_entry["data"],
        &direct_entry["files"][0]["fileKey"],
        &direct_entry["files"][0]["data"],
    ] {
        assert!(is_standard_b64(text.as_str().unwrap()), "{text}");
    }
    assert_eq!(data["title"], "Direct");
    assert_eq!(data["type"], "login");
    assert_eq!(
        data["fields"][1],
        json!({"type": "password", "value": ["s3cret"]})
    );
    assert_eq!(data["custom"][0]["label"], "API Key");
    let file = &direct_entry["files"][0];
    assert_eq!(
        data["fields"][2],
        json!({"type": "fileRef", "value": [file["fileUid"]]})
    );

    // The file: key wrapped by the record key, metadata by the file key, content downloadable.
    let file_key: Key = crypto::gcm_decrypt(
        &record_key,
        &crypto::decode_b64(file["fileKey"].as_str().unwrap()).unwrap(),
    )
    .unwrap()
    .try_into()
    .unwrap();
    let meta = crypto::gcm_decrypt(
        &file_key,
        &crypto::decode_b64(file["data"].as_str().unwrap()).unwrap(),
    )
    .unwrap();
    let meta: Value = serde_json::from_slice(&meta).unwrap();
    assert_eq!(meta["name"], "cert.pem");
    assert_eq!(meta["size"], 27);
    let url = file["url"].as_str().unwrap();
    let path = url.strip_prefix(BASE_URL).unwrap();
    let download = route(&mut state, &Method::GET, path, &HeaderMap::new(), b"");
    assert_eq!(download.status, StatusCode::OK);
    assert_eq!(
        crypto::gcm_decrypt(&file_key, &download.body).unwrap(),
        b"-----BEGIN CERTIFICATE-----"
    );

    // A record without `recordKey` is encrypted with the app key itself.
    let app_keyed_entry = entry(app_keyed.uid());
    assert!(app_keyed_entry.get("recordKey").is_none());
    assert_eq!(
        open_record(app_keyed_entry, &app_key).0["title"],
        "App keyed"
    );

    // A folder member: the folder key is wrapped by the app key, the record key by the folder
    // key, and a record in a subfolder names it in `innerFolderUid`.
    let folder = &response["folders"][0];
    assert_eq!(folder["folderUid"], "shared-folder-uid-0001");
    let folder_key: Key = crypto::gcm_decrypt(
        &app_key,
        &crypto::decode_b64(folder["folderKey"].as_str().unwrap()).unwrap(),
    )
    .unwrap()
    .try_into()
    .unwrap();
    let member = &folder["records"][0];
    assert_eq!(member["recordUid"], in_folder.uid());
    assert_eq!(member["innerFolderUid"], "subfolder-uid-00000001");
    assert_eq!(open_record(member, &folder_key).0["title"], "In folder");
    assert!(open_record_fails(member, &app_key));

    assert_eq!(state.log.len(), 2, "one API request and one download");
    assert_eq!(
        state.log[0].payload.as_ref().unwrap()["publicKey"],
        client.public_key_b64()
    );
}

/// Whether `text` is standard base64 with canonical padding, which the Rust crate requires.
fn is_standard_b64(text: &str) -> bool {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .is_ok()
}

fn open_record_fails(entry: &Value, wrapping_key: &Key) -> bool {
    let sealed = crypto::decode_b64(entry["recordKey"].as_str().unwrap()).unwrap();
    crypto::gcm_decrypt(wrapping_key, &sealed).is_err()
}

#[test]
fn bound_client_reads_without_public_key_and_filters_records() {
    let (mut state, direct, _, in_folder) = state_with_records();
    let client = Client::new(&state.mint_token());
    client.bind(&mut state);

    let all = client.get(&mut state, "get_secret", json!({}));
    assert!(all.get("encryptedAppKey").is_none());
    assert_eq!(all["records"].as_array().unwrap().len(), 2);
    assert_eq!(all["folders"].as_array().unwrap().len(), 1);

    let one = client.get(
        &mut state,
        "get_secret",
        json!({"requestedRecords": [direct.uid()], "requestedFolders": null}),
    );
    assert_eq!(one["records"].as_array().unwrap().len(), 1);
    assert_eq!(one["records"][0]["recordUid"], direct.uid());
    assert_eq!(one["folders"], json!([]));

    let folder = client.get(
        &mut state,
        "get_secret",
        json!({"requestedFolders": ["shared-folder-uid-0001"]}),
    );
    assert_eq!(folder["records"], json!([]));
    assert_eq!(
        folder["folders"][0]["records"][0]["recordUid"],
        in_folder.uid()
    );

    let payloads: Vec<&Value> = state
        .log
        .iter()
        .filter_map(|r| r.payload.as_ref())
        .collect();
    assert_eq!(payloads[2]["requestedRecords"], json!([direct.uid()]));
}

#[test]
fn get_folders_wraps_subfolder_keys_in_cbc() {
    let (mut state, ..) = state_with_records();
    let client = Client::new(&state.mint_token());
    let app_key = client.bind(&mut state);
    let response = client.get(&mut state, "get_folders", json!({}));
    let folders = response["folders"].as_array().unwrap();
    assert_eq!(folders.len(), 2);

    let root = &folders[0];
    assert_eq!(root["parent"], "");
    let root_key: Key = crypto::gcm_decrypt(
        &app_key,
        &crypto::decode_b64(root["folderKey"].as_str().unwrap()).unwrap(),
    )
    .unwrap()
    .try_into()
    .unwrap();
    let sub = &folders[1];
    assert_eq!(sub["parent"], "shared-folder-uid-0001");
    let sub_key: Key = crypto::cbc_decrypt(
        &root_key,
        &crypto::decode_b64(sub["folderKey"].as_str().unwrap()).unwrap(),
    )
    .unwrap()
    .try_into()
    .unwrap();
    for (folder, key, name) in [(root, root_key, "Payments"), (sub, sub_key, "db")] {
        let data = folder["data"].as_str().unwrap();
        // See `folder_name_json`: the Rust crate decodes this with and without padding.
        assert!(!data.contains('='), "{data}");
        let plain = crypto::cbc_decrypt(&key, &crypto::decode_b64(data).unwrap()).unwrap();
        let plain: Value = serde_json::from_slice(&plain).unwrap();
        assert_eq!(plain["name"], name);
    }
}

#[test]
fn tampered_requests_are_refused() {
    let (mut state, ..) = state_with_records();
    let client = Client::new(&state.mint_token());
    client.bind(&mut state);
    let key_id = FIRST_KEY_ID.to_string();

    // A body changed after signing: the signature no longer covers it.
    let transmission_key = crypto::random_key();
    let encrypted_key = crypto::ecies_encrypt(&state.server_key.public_key(), &transmission_key);
    let payload = json!({"clientVersion": "mp17.3.0", "clientId": client.client_id});
    let body = crypto::gcm_encrypt(&transmission_key, payload.to_string().as_bytes());
    let mut signed = encrypted_key.clone();
    signed.extend_from_slice(&body);
    let signature: Signature = SigningKey::from(&client.key).sign(&signed);
    let signature = crypto::std_b64(signature.to_der().as_bytes());
    let headers = headers(&key_id, &crypto::std_b64(&encrypted_key), &signature);
    let path = "/api/rest/sm/v1/get_secret";
    let resealed = crypto::gcm_encrypt(&transmission_key, payload.to_string().as_bytes());
    let reply = route(&mut state, &Method::POST, path, &headers, &resealed);
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    let ok = route(&mut state, &Method::POST, path, &headers, &body);
    assert_eq!(ok.status, StatusCode::OK);

    // Another key signing for this client.
    let impostor = Client {
        key: crypto::random_secret_key(),
        ..Client::new(&crypto::url_b64(&client.token))
    };
    let answer = impostor.send(&mut state, "get_secret", json!({}), &key_id);
    assert_eq!(answer.error(), (403, "access_denied".to_owned()));
    // Binding the used token again with another key.
    let rebind = json!({"publicKey": impostor.public_key_b64()});
    let answer = impostor.send(&mut state, "get_secret", rebind, &key_id);
    assert_eq!(answer.error(), (403, "access_denied".to_owned()));

    // A token the server never minted, and an unregistered client version.
    let stranger = Client::new(&crypto::url_b64(&crypto::random_key()));
    let answer = stranger.send(&mut state, "get_secret", json!({}), &key_id);
    assert_eq!(answer.error(), (401, "invalid_client".to_owned()));
    let old = Client {
        version: "python",
        ..Client::new(&crypto::url_b64(&client.token))
    };
    let answer = old.send(&mut state, "get_secret", json!({}), &key_id);
    assert_eq!(answer.error(), (400, "invalid_client_version".to_owned()));

    // A request without the headers at all.
    let reply = route(&mut state, &Method::POST, path, &HeaderMap::new(), &body);
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
}

#[test]
fn unbound_client_must_send_its_public_key() {
    let (mut state, ..) = state_with_records();
    let client = Client::new(&state.mint_token());
    let key_id = FIRST_KEY_ID.to_string();
    let answer = client.send(&mut state, "get_secret", json!({}), &key_id);
    assert_eq!(answer.error(), (403, "access_denied".to_owned()));
    // Binding twice with the same key (a lost response) delivers the app key again.
    let first = client.bind(&mut state);
    assert_eq!(client.bind(&mut state), first);
}

#[test]
fn throttling_answers_403_then_recovers() {
    let (mut state, ..) = state_with_records();
    let client = Client::new(&state.mint_token());
    client.bind(&mut state);
    state.throttle = 2;
    state.retry_after = std::time::Duration::from_millis(1500);
    let key_id = FIRST_KEY_ID.to_string();
    for _ in 0..2 {
        let answer = client.send(&mut state, "get_secret", json!({}), &key_id);
        assert_eq!(answer.error(), (403, "throttled".to_owned()));
        let body: Value = serde_json::from_slice(&answer.reply.body).unwrap();
        assert_eq!(body["retry_after"], 1.5);
    }
    client.get(&mut state, "get_secret", json!({}));
    let statuses: Vec<u16> = state.log.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 403, 403, 200]);
}

#[test]
fn key_rotation_is_announced_once_per_client() {
    let (mut state, ..) = state_with_records();
    let python = Client::new(&state.mint_token());
    let rust = Client::new(&state.mint_token());
    python.bind(&mut state);
    rust.bind(&mut state);
    let old = FIRST_KEY_ID.to_string();
    state.key_ids.push(FIRST_KEY_ID + 1);
    let new = (FIRST_KEY_ID + 1).to_string();

    let answer = python.send(&mut state, "get_secret", json!({}), &old);
    assert_eq!(answer.error(), (400, "key".to_owned()));
    let body: Value = serde_json::from_slice(&answer.reply.body).unwrap();
    assert_eq!(body["key_id"], FIRST_KEY_ID + 1);
    // Python retries with the new id; the Rust crate, with a custom key, with the old one.
    python
        .send(&mut state, "get_secret", json!({}), &new)
        .open();
    let answer = rust.send(&mut state, "get_secret", json!({}), &old);
    assert_eq!(answer.error(), (400, "key".to_owned()));
    rust.send(&mut state, "get_secret", json!({}), &old).open();
    rust.send(&mut state, "get_secret", json!({}), &new).open();

    // An id the server never used is always refused.
    for _ in 0..2 {
        let answer = rust.send(&mut state, "get_secret", json!({}), "10");
        assert_eq!(answer.error(), (400, "key".to_owned()));
    }
}

#[test]
fn record_changes_show_in_the_next_response() {
    let (mut state, direct, ..) = state_with_records();
    let client = Client::new(&state.mint_token());
    let app_key = client.bind(&mut state);
    let before = client.get(
        &mut state,
        "get_secret",
        json!({"requestedRecords": [direct.uid()]}),
    );
    let revision = before["records"][0]["revision"].as_i64().unwrap();

    state
        .update_field(direct.uid(), "API Key", vec![json!("k-456")])
        .unwrap();
    state
        .update_field(direct.uid(), "PASSWORD", vec![json!("new")])
        .unwrap();
    let after = client.get(
        &mut state,
        "get_secret",
        json!({"requestedRecords": [direct.uid()]}),
    );
    let entry = &after["records"][0];
    assert!(entry["revision"].as_i64().unwrap() > revision);
    let (data, _) = open_record(entry, &app_key);
    assert_eq!(data["custom"][0]["value"], json!(["k-456"]));
    assert_eq!(data["fields"][1]["value"], json!(["new"]));
    assert!(matches!(
        state.update_field(direct.uid(), "nothing", vec![]),
        Err(super::Error::UnknownField { .. })
    ));
    assert!(matches!(
        state.set_record(Record::new("login", "x").in_folder("missing")),
        Err(super::Error::UnknownFolder { .. })
    ));

    state.records.remove(direct.uid());
    let gone = client.get(
        &mut state,
        "get_secret",
        json!({"requestedRecords": [direct.uid()]}),
    );
    assert_eq!(gone["records"], json!([]));
}

#[test]
fn unavailable_server_answers_503() {
    let (mut state, ..) = state_with_records();
    state.unavailable = true;
    let reply = route(
        &mut state,
        &Method::POST,
        "/api/rest/sm/v1/get_secret",
        &HeaderMap::new(),
        b"",
    );
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(state.log[0].endpoint, "get_secret");
    assert_eq!(state.log[0].status, 503);
}
