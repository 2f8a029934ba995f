//! A moto server (S3, and any AWS API moto serves) on loopback for tests: `python3 -m moto.server` on a free port, in memory.
//!
//! moto takes seconds to start, so tests share one server per test binary through
//! [`MotoServer::shared`] and keep apart by bucket ([`MotoServer::create_unique_bucket`]).
//! moto accepts any credentials; [`ACCESS_KEY_ID`] and [`SECRET_ACCESS_KEY`] are conventional.
//! A server of one's own can be told to check signatures and IAM policies
//! ([`MotoServer::enforce_auth_after`]), which the AWS Secrets Manager tests use.

use std::{
    fs::File,
    io::{self, Read, Seek, Write},
    net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream},
    process::{Child, ChildStdin, Command, Stdio},
    sync::{
        Mutex, OnceLock, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

/// An `Authorization` header moto takes as an authenticated S3 caller (it does not check the
/// signature unless told to); without one, moto answers for an anonymous caller, whom a
/// private object is forbidden.
const S3_AUTH: (&str, &str) = (
    "Authorization",
    "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0",
);

/// An access key id for moto, which accepts any.
pub const ACCESS_KEY_ID: &str = "testing";
/// A secret access key for moto, which accepts any.
pub const SECRET_ACCESS_KEY: &str = "testing";
/// moto's default region; buckets need no location constraint there.
pub const REGION: &str = "us-east-1";

/// S3 client options for `bucket` at `endpoint` (a moto server's, or a misbehaving
/// stand-in's) with moto's region and credentials, over plain HTTP.
pub fn s3_options(endpoint: &str, bucket: impl Into<String>) -> bulwark_storage::S3Options {
    bulwark_storage::S3Options {
        bucket: bucket.into(),
        endpoint: Some(endpoint.to_owned()),
        region: Some(REGION.to_owned()),
        allow_http: true,
        credentials: Some(bulwark_storage::S3Credentials {
            access_key_id: ACCESS_KEY_ID.to_owned(),
            secret_access_key: bulwark_storage::Secret::new(SECRET_ACCESS_KEY),
            session_token: None,
        }),
        ..bulwark_storage::S3Options::default()
    }
}

/// The Python to run moto with: the first `python3` on PATH, so that CI can put a virtual
/// environment with moto first.
const PYTHON: &str = "python3";

/// How long moto may take to answer its first request; it imports a lot of Python.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How often a free port is picked again when another process took it first.
const PORT_ATTEMPTS: usize = 3;
/// How long one request to moto may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs `python3 -m moto.server -H 127.0.0.1 -p PORT` (PORT is the last argument), and exits
/// when stdin closes. The test process holds the other end of stdin, so moto goes away when
/// the tests end, however they end: the shared server is a static and is never dropped.
const BOOTSTRAP: &str = r#"
import os, runpy, sys, threading

def exit_when_stdin_closes():
    sys.stdin.buffer.read()
    os._exit(0)

threading.Thread(target=exit_when_stdin_closes, daemon=True).start()
sys.argv = ["moto.server", "-H", "127.0.0.1", "-p", sys.argv[1]]
runpy.run_module("moto.server", run_name="__main__", alter_sys=True)
"#;

/// Why moto could not be started or used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("python3 not found on PATH: moto needs it (run `cargo xtask ci` or install python3)")]
    NoPython(#[source] io::Error),
    #[error("moto is not installed: run `cargo xtask ci` or pip install 'moto[server]' ({detail})")]
    NotInstalled { detail: String },
    #[error("cannot start moto")]
    Spawn(#[source] io::Error),
    #[error("moto exited before it was ready ({status}); its output:\n{log}")]
    Exited {
        status: std::process::ExitStatus,
        log: String,
    },
    #[error("moto did not answer on {addr} within {}s; its output:\n{log}", START_TIMEOUT.as_secs())]
    NotReady { addr: SocketAddr, log: String },
    #[error("invalid bucket name {name:?}: use 3 to 63 lowercase letters, digits and hyphens")]
    InvalidBucketName { name: String },
    #[error("cannot reach moto at {addr}")]
    Request {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error("moto answered {method} {path} with {status_line}: {body}")]
    Status {
        method: &'static str,
        path: String,
        status_line: String,
        body: String,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A running moto server; killed on drop (the [`MotoServer::shared`] one at process exit).
#[derive(Debug)]
pub struct MotoServer {
    child: Child,
    /// Held so that moto's stdin closes when this process ends; see [`BOOTSTRAP`].
    _stdin: ChildStdin,
    addr: SocketAddr,
    endpoint: String,
}

impl MotoServer {
    /// Starts a server of its own; prefer [`MotoServer::shared`], since each takes seconds.
    pub fn start() -> Result<Self> {
        let mut attempt = 1;
        loop {
            match Self::start_on(&[PYTHON], free_port()?) {
                Err(Error::Exited { log, .. })
                    if log.contains("Address already in use") && attempt < PORT_ATTEMPTS =>
                {
                    attempt += 1;
                }
                result => return result,
            }
        }
    }

    /// The server shared by every test in this process, started on first use.
    ///
    /// A failed start is not remembered: the next caller tries again and gets its own error.
    pub fn shared() -> Result<&'static Self> {
        static SHARED: OnceLock<MotoServer> = OnceLock::new();
        static STARTING: Mutex<()> = Mutex::new(());
        if let Some(server) = SHARED.get() {
            return Ok(server);
        }
        // Tests that arrive while moto starts wait for it rather than start their own.
        let _starting = STARTING.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(server) = SHARED.get() {
            return Ok(server);
        }
        let server = Self::start()?;
        Ok(SHARED.get_or_init(|| server))
    }

    /// The endpoint URL, `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Creates a bucket (moto accepts an unsigned `PUT /<bucket>`). Creating one that exists
    /// succeeds.
    pub fn create_bucket(&self, name: &str) -> Result<()> {
        let valid = (3..=63).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !name.starts_with('-')
            && !name.ends_with('-');
        if !valid {
            return Err(Error::InvalidBucketName {
                name: name.to_owned(),
            });
        }
        self.request("PUT", &format!("/{name}")).map(drop)
    }

    /// Creates a bucket named `<prefix>-<n>`, unique in this process, and returns its name.
    pub fn create_unique_bucket(&self, prefix: &str) -> Result<String> {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let name = format!(
            "{}-{}-{}",
            prefix.to_ascii_lowercase(),
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        self.create_bucket(&name)?;
        Ok(name)
    }

    /// Starts moto with `python` (the program and its leading arguments) on `port`.
    fn start_on(python: &[&str], port: u16) -> Result<Self> {
        let Some((program, python_args)) = python.split_first() else {
            return Err(Error::Spawn(io::Error::other("no python program given")));
        };
        // A file rather than a pipe: moto logs every request, and a full pipe would stall it.
        let mut log = tempfile::tempfile().map_err(Error::Spawn)?;
        let stdout = log.try_clone().map_err(Error::Spawn)?;
        let stderr = log.try_clone().map_err(Error::Spawn)?;
        let mut child = Command::new(program)
            .args(python_args)
            .args(["-c", BOOTSTRAP, &port.to_string()])
            .stdin(Stdio::piped())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .map_err(|error| match error.kind() {
                io::ErrorKind::NotFound => Error::NoPython(error),
                _ => Error::Spawn(error),
            })?;
        let Some(stdin) = child.stdin.take() else {
            let _ = child.kill();
            return Err(Error::Spawn(io::Error::other("no stdin pipe")));
        };
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let mut server = Self {
            child,
            _stdin: stdin,
            addr,
            endpoint: format!("http://{addr}"),
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                let log = read_log(&mut log);
                if let Some(missing) = log.lines().find(|line| line.contains("No module named")) {
                    return Err(Error::NotInstalled {
                        detail: missing.trim().to_owned(),
                    });
                }
                return Err(Error::Exited { status, log });
            }
            if server.request("GET", "/").is_ok() {
                return Ok(server);
            }
            if Instant::now() > deadline {
                return Err(Error::NotReady {
                    addr,
                    log: read_log(&mut log),
                });
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Sends a bodiless HTTP/1.1 request and returns the response body of a 2xx answer.
    fn request(&self, method: &'static str, path: &str) -> Result<String> {
        self.call(method, path, &[], b"")
    }

    /// Calls an AWS API on this server without a real signature, for test setup: moto tells
    /// the service from the credential scope of the (unchecked) `Authorization` header, so
    /// `service` is the signing name (`iam`, `secretsmanager`). A query-protocol call takes
    /// `form` pairs; a JSON-protocol call takes `target` (`secretsmanager.CreateSecret`) and a
    /// JSON `body`. Returns the body of a 2xx answer.
    pub fn aws(
        &self,
        service: &str,
        target: Option<&str>,
        form: &[(&str, &str)],
        json: Option<&str>,
    ) -> Result<String> {
        let authorization = format!(
            "AWS4-HMAC-SHA256 Credential={ACCESS_KEY_ID}/20260101/{REGION}/{service}/aws4_request, SignedHeaders=host, Signature=0"
        );
        let (content_type, body) = match json {
            Some(json) => ("application/x-amz-json-1.1", json.to_owned()),
            None => (
                "application/x-www-form-urlencoded",
                form.iter()
                    .map(|(k, v)| format!("{}={}", url_encode(k), url_encode(v)))
                    .collect::<Vec<_>>()
                    .join("&"),
            ),
        };
        let mut headers = vec![
            ("Authorization", authorization.as_str()),
            ("Content-Type", content_type),
        ];
        if let Some(target) = target {
            headers.push(("X-Amz-Target", target));
        }
        self.call("POST", "/", &headers, body.as_bytes())
    }

    /// From now on, moto checks every request's signature and the caller's IAM policies,
    /// except for the next `unchecked` requests (moto's `INITIAL_NO_AUTH_ACTION_COUNT`). Only
    /// on a server of one's own ([`MotoServer::start`]): the setting is server-wide.
    pub fn enforce_auth_after(&self, unchecked: u32) -> Result<()> {
        self.call(
            "POST",
            "/moto-api/reset-auth",
            &[],
            unchecked.to_string().as_bytes(),
        )
        .map(drop)
    }

    /// The keys under `prefix` in `bucket`, from S3's own listing (`ListObjectsV2`, every
    /// page), for tests that check what a bucket holds without our storage code; the shared
    /// server only (it does not check signatures).
    pub fn list_keys(&self, bucket: &str, prefix: &str) -> Result<Vec<String>> {
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut path = format!("/{bucket}?list-type=2&prefix={}", url_encode(prefix));
            if let Some(token) = &token {
                path.push_str(&format!("&continuation-token={}", url_encode(token)));
            }
            let xml =
                String::from_utf8_lossy(&self.call_bytes("GET", &path, &[], b"")?).into_owned();
            keys.extend(elements(&xml, "Key"));
            token = elements(&xml, "NextContinuationToken").into_iter().next();
            if token.is_none() {
                return Ok(keys);
            }
        }
    }

    /// The bytes of the object `key` in `bucket` (`GetObject`).
    pub fn get_object(&self, bucket: &str, key: &str) -> Result<Vec<u8>> {
        let path = format!(
            "/{bucket}/{}",
            key.split('/')
                .map(path_encode)
                .collect::<Vec<_>>()
                .join("/")
        );
        self.call_bytes("GET", &path, &[S3_AUTH], b"")
    }

    /// Sends an HTTP/1.1 request and returns the response body of a 2xx answer.
    fn call(
        &self,
        method: &'static str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<String> {
        self.call_bytes(method, path, headers, body)
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Sends an HTTP/1.1 request and returns the response body of a 2xx answer, as bytes.
    fn call_bytes(
        &self,
        method: &'static str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Vec<u8>> {
        let failed = |source| Error::Request {
            addr: self.addr,
            source,
        };
        let mut stream = TcpStream::connect_timeout(&self.addr, REQUEST_TIMEOUT).map_err(failed)?;
        stream
            .set_read_timeout(Some(REQUEST_TIMEOUT))
            .map_err(failed)?;
        let extra: String = headers
            .iter()
            .map(|(name, value)| format!("{name}: {value}\r\n"))
            .collect();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n",
            self.addr,
            body.len()
        );
        stream.write_all(request.as_bytes()).map_err(failed)?;
        stream.write_all(body).map_err(failed)?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).map_err(failed)?;
        let split = response
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or(response.len());
        let head = String::from_utf8_lossy(&response[..split]).into_owned();
        let raw = response.get(split + 4..).unwrap_or_default().to_vec();
        let body = if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            dechunk(&raw)
        } else {
            raw
        };
        let status_line = head.lines().next().unwrap_or_default();
        let success = status_line
            .split_whitespace()
            .nth(1)
            .is_some_and(|code| code.starts_with('2'));
        if !success {
            return Err(Error::Status {
                method,
                path: path.to_owned(),
                status_line: status_line.to_owned(),
                body: String::from_utf8_lossy(&body).into_owned(),
            });
        }
        Ok(body)
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        // Killing an exited child fails harmlessly; `wait` reaps it either way.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The text of every `<tag>...</tag>` in `xml`, in order (S3's listings escape `&`, `<`, `>`).
fn elements(xml: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    xml.split(&open)
        .skip(1)
        .filter_map(|rest| rest.split_once(&close).map(|(text, _)| text))
        .map(|text| {
            text.replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&apos;", "'")
                .replace("&amp;", "&")
        })
        .collect()
}

/// The body of a `Transfer-Encoding: chunked` answer.
fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(line_end) = raw.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size = std::str::from_utf8(&raw[..line_end])
            .ok()
            .and_then(|line| {
                usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16).ok()
            })
            .unwrap_or(0);
        if size == 0 {
            return out;
        }
        let start = line_end + 2;
        let Some(chunk) = raw.get(start..start + size) else {
            return out;
        };
        out.extend_from_slice(chunk);
        raw = raw.get(start + size + 2..).unwrap_or_default();
    }
}

/// Percent-encoding of one path segment: what RFC 3986 allows in a segment stays as it is
/// (S3 and moto read `year=2026` and `year%3D2026` differently in a signed request).
fn path_encode(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'-'
            | b'_'
            | b'.'
            | b'~'
            | b'='
            | b':'
            | b'@'
            | b'!'
            | b'$'
            | b'\''
            | b'('
            | b')'
            | b'*'
            | b'+'
            | b','
            | b';' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `application/x-www-form-urlencoded` encoding of one key or value.
fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A loopback port that was free a moment ago.
fn free_port() -> Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(Error::Spawn)?;
    Ok(listener.local_addr().map_err(Error::Spawn)?.port())
}

fn read_log(log: &mut File) -> String {
    let mut text = String::new();
    if log.rewind().is_ok() {
        let _ = log.read_to_string(&mut text);
    }
    text
}

#[cfg(test)]
mod tests;
