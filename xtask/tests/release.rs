//! What a release made, checked from outside: skopeo and umoci read the layouts, the image's
//! binary runs as 65532 in an otherwise empty root and answers `--version` and `/health`, images
//! rebuild to the same digests, the SBOMs pass CycloneDX's own schema and list every crate the
//! binaries carry and none they do not link, OpenSSL accepts the cosign signatures, and `verify`
//! refuses a changed layer byte or signature.
//!
//! `cargo xtask ci` runs this after `cargo xtask release --arch x86_64 --out DIR`, with
//! `BULWARK_RELEASE_OUT=DIR`: it needs the four release binaries, which take minutes to build,
//! so a plain `cargo test` leaves it out (`#[ignore]`) instead of building them beside the
//! other tests.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

use std::{
    io::{Read as _, Write as _},
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;
use sha2::{Digest as _, Sha256};

const BINARIES: [&str; 4] = [
    "injector-webhook",
    "injector-sidecar",
    "sentinel",
    "archiver",
];

fn out() -> PathBuf {
    PathBuf::from(std::env::var("BULWARK_RELEASE_OUT").expect(
        "BULWARK_RELEASE_OUT names the folder of `cargo xtask release --arch x86_64 --out DIR`",
    ))
}

fn xtask() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_xtask"));
    // The workspace root; cargo runs tests from the package root (xtask/).
    command.current_dir("..");
    command
}

fn run(command: &mut Command) -> String {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

fn blob(layout: &Path, digest: &str) -> Vec<u8> {
    let bytes = std::fs::read(layout.join("blobs/sha256").join(&digest[7..])).unwrap();
    assert_eq!(sha256(&bytes), digest);
    bytes
}

/// The `index.json` entry named `name`.
fn entry(layout: &Path, name: &str) -> Value {
    json(&layout.join("index.json"))["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["annotations"]["org.opencontainers.image.ref.name"] == name)
        .unwrap_or_else(|| panic!("{} has no {name}", layout.display()))
        .clone()
}

fn version() -> String {
    let toml = std::fs::read_to_string("../Cargo.toml").unwrap();
    let table: toml::Table = toml.parse().unwrap();
    table["workspace"]["package"]["version"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
#[ignore = "needs the release binaries: run by `cargo xtask ci` after `cargo xtask release`"]
fn layouts_parse_back_and_skopeo_reads_them() {
    let version = version();
    for binary in BINARIES {
        let layout = out().join(binary);
        // By hand: index -> image -> config and layer, every digest, size and diff id.
        let index_entry = entry(&layout, &version);
        let index: Value =
            serde_json::from_slice(&blob(&layout, index_entry["digest"].as_str().unwrap()))
                .unwrap();
        let image_entry = &index["manifests"][0];
        assert_eq!(image_entry["platform"]["architecture"], "amd64");
        let image_bytes = blob(&layout, image_entry["digest"].as_str().unwrap());
        assert_eq!(
            image_bytes.len() as u64,
            image_entry["size"].as_u64().unwrap()
        );
        let image: Value = serde_json::from_slice(&image_bytes).unwrap();
        let config: Value =
            serde_json::from_slice(&blob(&layout, image["config"]["digest"].as_str().unwrap()))
                .unwrap();
        let layer = &image["layers"][0];
        let gz = blob(&layout, layer["digest"].as_str().unwrap());
        assert_eq!(gz.len() as u64, layer["size"].as_u64().unwrap());
        let mut tar = Vec::new();
        flate2::read::GzDecoder::new(gz.as_slice())
            .read_to_end(&mut tar)
            .unwrap();
        assert_eq!(config["rootfs"]["diff_ids"][0], sha256(&tar));
        assert_eq!(config["config"]["User"], "65532:65532");
        assert_eq!(
            image["annotations"]["org.opencontainers.image.version"],
            version.as_str()
        );
        assert!(
            gz.len() < 10_000_000,
            "{binary}: {} bytes compressed",
            gz.len()
        );

        // skopeo: the multi-arch index resolves to this machine's image.
        let inspect: Value = serde_json::from_str(&run(Command::new("skopeo")
            .args(["inspect", &format!("oci:{}:{version}", layout.display())])))
        .unwrap();
        assert_eq!(inspect["Architecture"], "amd64");
        assert_eq!(inspect["Layers"][0], layer["digest"]);
        assert_eq!(inspect["Labels"]["org.opencontainers.image.title"], binary);
        let config: Value = serde_json::from_str(&run(Command::new("skopeo").args([
            "inspect",
            "--config",
            &format!("oci:{}:{version}-amd64", layout.display()),
        ])))
        .unwrap();
        assert_eq!(config["config"]["User"], "65532:65532");
        assert_eq!(
            config["config"]["Entrypoint"][0],
            format!("/usr/local/bin/{binary}")
        );
        assert!(
            config["config"]["Env"]
                .as_array()
                .unwrap()
                .contains(&Value::from(
                    "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"
                ))
        );
    }
}

/// `program`, through `sudo -n` unless we are root: umoci keeps the image's owners, and
/// chroot needs root.
fn privileged(program: &str) -> Command {
    let uid = run(Command::new("id").arg("-u"));
    if uid.trim() == "0" {
        Command::new(program)
    } else {
        let mut command = Command::new("sudo");
        command.args(["-n", program]);
        command
    }
}

/// Unpacks the image of `binary` with umoci into a new folder.
fn unpack(binary: &str, into: &Path) -> PathBuf {
    let bundle = into.join(binary);
    run(privileged("umoci").args([
        "unpack",
        "--image",
        &format!("{}:{}-amd64", out().join(binary).display(), version()),
        bundle.to_str().unwrap(),
    ]));
    bundle
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
#[ignore = "needs the release binaries: run by `cargo xtask ci` after `cargo xtask release`"]
fn the_image_runs_as_nonroot_in_an_empty_root() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = unpack("sentinel", dir.path());
    let config = json(&bundle.join("config.json"));
    assert_eq!(config["process"]["user"]["uid"], 65532);
    assert_eq!(config["process"]["user"]["gid"], 65532);
    let rootfs = bundle.join("rootfs");
    // Nothing but what the image is meant to hold: no shell, no package manager.
    let mut files = Vec::new();
    let mut stack = vec![rootfs.clone()];
    while let Some(folder) = stack.pop() {
        for entry in std::fs::read_dir(folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path.strip_prefix(&rootfs).unwrap().display().to_string());
            }
        }
    }
    files.sort();
    assert_eq!(
        files,
        [
            "etc/group",
            "etc/nsswitch.conf",
            "etc/passwd",
            "etc/ssl/certs/ca-certificates.crt",
            "usr/local/bin/sentinel"
        ]
    );

    // An empty environment but for `env`, in new mount and PID namespaces.
    let chroot_program = ["/usr/sbin/chroot", "/usr/bin/chroot"]
        .into_iter()
        .find(|p| Path::new(p).is_file())
        .expect("chroot (coreutils)");
    let chroot = |env: &[String], args: &[&str]| {
        let mut command = privileged("env");
        command
            .arg("-i")
            .args(env)
            .args(["unshare", "--mount", "--pid", "--fork", "--kill-child"])
            .arg(chroot_program)
            .args(["--userspec=65532:65532"])
            .arg(&rootfs)
            .arg("/usr/local/bin/sentinel")
            .args(args);
        command
    };
    let answer = run(&mut chroot(&[], &["--version"]));
    assert!(
        answer.starts_with(&format!("sentinel {} (", version())),
        "{answer}"
    );

    let port = free_port();
    // No cluster here: remediation off, or sentinel refuses to start (it says why).
    let mut server = chroot(
        &[
            format!("BULWARK_SENTINEL_WEB__LISTEN=127.0.0.1:{port}"),
            "BULWARK_SENTINEL_REMEDIATION__ENABLED=false".to_owned(),
        ],
        &[],
    );
    server.stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = server.spawn().unwrap();
    let started = Instant::now();
    let response = loop {
        if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) {
            stream
                .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .unwrap();
            let mut response = String::new();
            stream.read_to_string(&mut response).unwrap();
            break response;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "sentinel did not listen in the chroot"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    // unshare ignores SIGTERM while it waits: kill the children of what we started (the
    // server under unshare, or unshare under sudo, whose --kill-child takes the server along).
    run(privileged("pkill").args(["-KILL", "-P", &child.id().to_string()]));
    let _ = child.wait();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
}

#[test]
#[ignore = "needs the release binaries: run by `cargo xtask ci` after `cargo xtask release`"]
fn images_rebuild_to_the_same_digests() {
    let again = tempfile::tempdir().unwrap();
    let version = version();
    // The architectures the release made, from its index.
    let layout = out().join("sentinel");
    let index: Value = serde_json::from_slice(&blob(
        &layout,
        entry(&layout, &version)["digest"].as_str().unwrap(),
    ))
    .unwrap();
    let arches: Vec<String> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["platform"]["architecture"].as_str().unwrap().to_owned())
        .collect();
    let mut image = xtask();
    image.args(["image", "--out", again.path().to_str().unwrap()]);
    for arch in &arches {
        image.args(["--arch", arch]);
    }
    run(&mut image);
    for binary in BINARIES {
        let tags = std::iter::once(version.clone())
            .chain(arches.iter().map(|arch| format!("{version}-{arch}")));
        for tag in tags {
            let first = entry(&out().join(binary), &tag);
            let second = entry(&again.path().join(binary), &tag);
            assert_eq!(first["digest"], second["digest"], "{binary}:{tag}");
        }
    }
}

/// The registry crates whose source paths `executable` carries.
fn carried(executable: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(executable);
    let mut found: Vec<String> = text
        .split("/index.crates.io-")
        .skip(1)
        .filter_map(|rest| rest.split('/').nth(1))
        .map(str::to_owned)
        .collect();
    found.sort();
    found.dedup();
    found
}

#[test]
#[ignore = "needs the release binaries: run by `cargo xtask ci` after `cargo xtask release`"]
fn sboms_are_valid_and_list_what_is_linked() {
    let dir = tempfile::tempdir().unwrap();
    let venv_python =
        PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/bulwark-venv/bin/python3");
    for binary in BINARIES {
        let file = out().join("sbom").join(format!("{binary}-amd64.cdx.json"));
        // CycloneDX's own validator, with the 1.5 schema it ships.
        run(Command::new(&venv_python).arg("-c").arg(format!(
            "import sys\n\
             from cyclonedx.validation.json import JsonStrictValidator\n\
             from cyclonedx.schema import SchemaVersion\n\
             error = JsonStrictValidator(SchemaVersion.V1_5).validate_str(open({file:?}).read())\n\
             sys.exit(str(error) if error else 0)\n",
            file = file.display().to_string()
        )));
        let sbom = json(&file);
        let listed: Vec<String> = sbom["components"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                format!(
                    "{}-{}",
                    c["name"].as_str().unwrap(),
                    c["version"].as_str().unwrap()
                )
            })
            .collect();
        assert_eq!(sbom["metadata"]["component"]["name"], binary);
        // Every crate the binary (from the image, unpacked by umoci) carries is listed.
        let bundle = unpack(binary, dir.path());
        let executable = std::fs::read(bundle.join("rootfs/usr/local/bin").join(binary)).unwrap();
        let carried = carried(&executable);
        assert!(carried.len() > 20, "{binary}: {carried:?}");
        for krate in &carried {
            assert!(
                listed.contains(krate),
                "{binary}: {krate} is linked but not listed"
            );
        }
        // Nothing that runs only at build time or in tests, nor another binary's crates.
        for name in [
            "cc",
            "syn",
            "proc-macro2",
            "quote",
            "serde_derive",
            "bulwark-test-util",
        ] {
            assert!(
                !listed.iter().any(|l| l.rsplit_once('-').unwrap().0 == name),
                "{binary} lists {name}"
            );
        }
        // PostgreSQL is the archiver's and sentinel's (its shared store); object storage only
        // the archiver's.
        let foreign: &[&str] = match binary {
            "archiver" => &[],
            "sentinel" => &["object_store"],
            _ => &["sqlx-core", "object_store"],
        };
        for name in foreign {
            assert!(
                !listed.iter().any(|l| l.starts_with(&format!("{name}-"))),
                "{binary} lists another binary's {name}"
            );
        }
        let licensed = sbom["components"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["licenses"][0]["expression"].is_string())
            .count();
        assert!(
            licensed * 10 >= listed.len() * 9,
            "{binary}: {licensed} of {} licensed",
            listed.len()
        );
        // Attached to its image: the referrer names the image as its subject.
        let layout = out().join(binary);
        let image = entry(&layout, &format!("{}-amd64", version()));
        let tag = format!("sha256-{}.sbom", &image["digest"].as_str().unwrap()[7..]);
        let referrer: Value = serde_json::from_slice(&blob(
            &layout,
            entry(&layout, &tag)["digest"].as_str().unwrap(),
        ))
        .unwrap();
        assert_eq!(referrer["artifactType"], "application/vnd.cyclonedx+json");
        assert_eq!(referrer["subject"]["digest"], image["digest"]);
        assert_eq!(
            blob(&layout, referrer["layers"][0]["digest"].as_str().unwrap()),
            std::fs::read(&file).unwrap()
        );
    }
}

/// Copies the layout of `binary` into `dir`.
fn copy_layout(binary: &str, dir: &Path) -> PathBuf {
    let target = dir.join(binary);
    run(Command::new("cp")
        .arg("-a")
        .arg(out().join(binary))
        .arg(&target));
    target
}

/// `cargo xtask verify` of `binary` in `dir` with the release's public key.
fn verify(binary: &str, dir: &Path) -> std::process::Output {
    xtask()
        .args(["verify", "--bin", binary, "--key"])
        .arg(out().join("key/cosign.pub"))
        .arg("--out")
        .arg(dir)
        .output()
        .unwrap()
}

/// Rewrites the blob `digest`, which `index.json` names directly (as a signature manifest),
/// through `change`, and its entry in `index.json` to match: as a forger would, so that only
/// the signature itself can tell.
fn forge(layout: &Path, digest: &str, change: impl FnOnce(&mut Vec<u8>)) {
    let mut bytes = blob(layout, digest);
    let old_size = bytes.len();
    change(&mut bytes);
    let forged = sha256(&bytes);
    std::fs::write(layout.join("blobs/sha256").join(&forged[7..]), &bytes).unwrap();
    let mut index = json(&layout.join("index.json"));
    let mut found = false;
    for entry in index["manifests"].as_array_mut().unwrap() {
        if entry["digest"] == digest {
            assert_eq!(entry["size"], old_size);
            entry["digest"] = Value::from(forged.clone());
            entry["size"] = Value::from(bytes.len());
            found = true;
        }
    }
    assert!(found, "index.json does not name {digest}");
    std::fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
}

#[test]
#[ignore = "needs the release binaries: run by `cargo xtask ci` after `cargo xtask release`"]
fn signatures_verify_and_tampering_is_refused() {
    let binary = "sentinel";
    let layout = out().join(binary);
    let version = version();
    // OpenSSL, not our code, accepts the cosign signature of the index.
    let index = entry(&layout, &version);
    let signatures = entry(
        &layout,
        &format!("sha256-{}.sig", &index["digest"].as_str().unwrap()[7..]),
    );
    let manifest: Value =
        serde_json::from_slice(&blob(&layout, signatures["digest"].as_str().unwrap())).unwrap();
    let layer = &manifest["layers"][0];
    assert_eq!(
        layer["mediaType"],
        "application/vnd.dev.cosign.simplesigning.v1+json"
    );
    let payload = blob(&layout, layer["digest"].as_str().unwrap());
    let parsed: Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(
        parsed["critical"]["image"]["docker-manifest-digest"],
        index["digest"]
    );
    assert_eq!(
        parsed["critical"]["type"],
        "cosign container image signature"
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("payload"), &payload).unwrap();
    let signature = layer["annotations"]["dev.cosignproject.cosign/signature"]
        .as_str()
        .unwrap();
    let mut decode = Command::new("base64")
        .args(["-d"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    decode
        .stdin
        .take()
        .unwrap()
        .write_all(signature.as_bytes())
        .unwrap();
    let der = decode.wait_with_output().unwrap().stdout;
    std::fs::write(dir.path().join("sig.der"), der).unwrap();
    let checked = run(Command::new("openssl")
        .args(["dgst", "-sha256", "-verify"])
        .arg(out().join("key/cosign.pub"))
        .arg("-signature")
        .arg(dir.path().join("sig.der"))
        .arg(dir.path().join("payload")));
    assert!(checked.contains("Verified OK"), "{checked}");

    // Untouched: verify passes.
    let whole = tempfile::tempdir().unwrap();
    copy_layout(binary, whole.path());
    let output = verify(binary, whole.path());
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    // One changed byte in the layer.
    let changed = tempfile::tempdir().unwrap();
    let copy = copy_layout(binary, changed.path());
    let image = entry(&copy, &format!("{version}-amd64"));
    let image_manifest: Value =
        serde_json::from_slice(&blob(&copy, image["digest"].as_str().unwrap())).unwrap();
    let layer = image_manifest["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = copy.join("blobs/sha256").join(&layer[7..]);
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    let output = verify(binary, changed.path());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("was changed"), "{stderr}");

    // One changed byte in a signature.
    let resigned = tempfile::tempdir().unwrap();
    let copy = copy_layout(binary, resigned.path());
    let mut flipped = signature.as_bytes().to_vec();
    flipped[10] = if flipped[10] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    forge(&copy, signatures["digest"].as_str().unwrap(), |bytes| {
        let text = String::from_utf8(bytes.clone()).unwrap();
        *bytes = text.replace(signature, &flipped).into_bytes();
    });
    let output = verify(binary, resigned.path());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "a changed signature verified");
    assert!(stderr.contains("does not verify"), "{stderr}");
}

/// Kills `child` when dropped.
struct Reaper(std::process::Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
#[ignore = "needs the release binaries: run by `cargo xtask ci` after `cargo xtask release`"]
fn push_keeps_every_digest() {
    // Debian's docker-registry (the CNCF distribution registry) on loopback, in a temp folder.
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = dir.path().join("config.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let registry = Reaper(
        Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the registry did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let repository = format!("127.0.0.1:{port}/bulwark");
    run(xtask()
        .args(["push", "--bin", "sentinel", "--with-signatures", "--out"])
        .arg(out())
        .env("BULWARK_REGISTRY", &repository));

    // What the registry serves, read back by skopeo, is byte for byte what was signed.
    let layout = out().join("sentinel");
    let version = version();
    let index = entry(&layout, &version);
    let image = entry(&layout, &format!("{version}-amd64"));
    let digest_hex = |d: &Value| d["digest"].as_str().unwrap()[7..].to_owned();
    for (tag, expected) in [
        (version.clone(), index["digest"].clone()),
        (
            format!("sha256-{}.sig", digest_hex(&index)),
            entry(&layout, &format!("sha256-{}.sig", digest_hex(&index)))["digest"].clone(),
        ),
        (
            format!("sha256-{}.sbom", digest_hex(&image)),
            entry(&layout, &format!("sha256-{}.sbom", digest_hex(&image)))["digest"].clone(),
        ),
    ] {
        let raw = Command::new("skopeo")
            .args(["inspect", "--raw", "--tls-verify=false"])
            .arg(format!("docker://{repository}/sentinel:{tag}"))
            .output()
            .unwrap();
        assert!(
            raw.status.success(),
            "{tag}: {}",
            String::from_utf8_lossy(&raw.stderr)
        );
        assert_eq!(Value::from(sha256(&raw.stdout)), expected, "{tag}");
    }
    // The platform image came along with the index, under its own digest.
    let pulled = run(Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", "--format", "{{.Digest}}"])
        .arg(format!(
            "docker://{repository}/sentinel@{}",
            image["digest"].as_str().unwrap()
        )));
    assert_eq!(pulled.trim(), image["digest"].as_str().unwrap());
    drop(registry);
}
