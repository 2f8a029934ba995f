//! Running one of our binaries as a child process, the way Kubernetes does: start it, find
//! the health address it logs, probe it over HTTP, send SIGTERM, and time the exit.

// These are assertion helpers for tests: panicking with the reason is their job.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A running binary whose JSON log lines are collected.
#[derive(Debug)]
pub struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Running {
    /// Starts `exe` with `args` and extra environment `env`, logging JSON to standard output.
    pub fn start(exe: &Path, args: &[&str], env: &[(&str, &str)]) -> std::io::Result<Self> {
        let mut cmd = Command::new(exe);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn()?;
        let (tx, lines) = mpsc::channel();
        let streams: [Box<dyn Read + Send>; 2] = [
            Box::new(
                child
                    .stdout
                    .take()
                    .ok_or_else(|| std::io::Error::other("no stdout"))?,
            ),
            Box::new(
                child
                    .stderr
                    .take()
                    .ok_or_else(|| std::io::Error::other("no stderr"))?,
            ),
        ];
        for stream in streams {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        Ok(Self {
            child,
            lines,
            seen: Vec::new(),
        })
    }

    /// Waits up to `timeout` for a JSON log line whose `msg` is `msg` and returns it.
    pub fn wait_for_log(
        &mut self,
        msg: &str,
        timeout: Duration,
    ) -> Result<serde_json::Value, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.lines.recv_timeout(left).map_err(|_| {
                format!(
                    "no log line {msg:?} within {timeout:?}; saw:\n{}",
                    self.seen.join("\n")
                )
            })?;
            self.seen.push(line.clone());
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                && v["msg"] == msg
            {
                return Ok(v);
            }
        }
    }

    /// The health server address, from the `Serving /health, /ready and /metrics.` log line.
    pub fn health_addr(&mut self) -> Result<SocketAddr, String> {
        let line = self.wait_for_log(
            "Serving /health, /ready and /metrics.",
            Duration::from_secs(20),
        )?;
        line["addr"]
            .as_str()
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| format!("no addr in {line}"))
    }

    /// Sends SIGTERM and waits up to `timeout` for the exit.
    pub fn terminate(&mut self, timeout: Duration) -> Result<(ExitStatus, Duration), String> {
        let start = Instant::now();
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .map_err(|e| e.to_string())?;
        if !status.success() {
            return Err(format!("kill -TERM failed: {status}"));
        }
        self.wait(timeout).map(|s| (s, start.elapsed()))
    }

    /// Waits up to `timeout` for the process to exit; kills it if it does not.
    pub fn wait(&mut self, timeout: Duration) -> Result<ExitStatus, String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().map_err(|e| e.to_string())? {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                return Err(format!("still running after {timeout:?}"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the process with SIGKILL, as a node failure or the OOM killer would, and reaps it.
    pub fn kill(&mut self) -> std::io::Result<()> {
        self.child.kill()?;
        self.child.wait().map(|_| ())
    }

    /// All output lines received so far (after draining what is pending).
    pub fn output(&mut self) -> Vec<String> {
        while let Ok(line) = self.lines.try_recv() {
            self.seen.push(line);
        }
        self.seen.clone()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A blocking HTTP/1.1 GET on loopback, returning status and body; for probing binaries
/// without an async runtime.
pub fn http_get(addr: SocketAddr, path: &str) -> Result<(u16, String), String> {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).map_err(|e| e.to_string())?;
    let (status, body) = parse_response(&raw)?;
    Ok((status, String::from_utf8(body).map_err(|e| e.to_string())?))
}

/// Splits a raw HTTP/1.1 response into its status and body, undoing chunked encoding.
pub(crate) fn parse_response(raw: &[u8]) -> Result<(u16, Vec<u8>), String> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("malformed response")?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("malformed status line in {head:?}"))?;
    let body = &raw[split + 4..];
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        Ok((status, dechunk(body)?))
    } else {
        Ok((status, body.to_vec()))
    }
}

fn dechunk(mut body: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let line = body
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("malformed chunk")?;
        let size = std::str::from_utf8(&body[..line]).map_err(|e| e.to_string())?;
        let size = usize::from_str_radix(size.trim(), 16).map_err(|e| e.to_string())?;
        if size == 0 {
            return Ok(out);
        }
        let rest = &body[line + 2..];
        out.extend_from_slice(rest.get(..size).ok_or("short chunk")?);
        body = rest.get(size + 2..).ok_or("short chunk")?;
    }
}

/// The checks every long-running binary must pass: it starts with `args` and `env`, answers
/// `/health` with 200, serves `/metrics` that promtool accepts, and exits 0 within 5 s of
/// SIGTERM.
pub fn check_service_lifecycle(exe: &Path, args: &[&str], env: &[(&str, &str)]) {
    let mut bin = Running::start(exe, args, env).expect("start binary");
    let addr = bin.health_addr().unwrap();
    assert_eq!(http_get(addr, "/health").unwrap(), (200, "ok\n".to_owned()));
    let (status, metrics) = http_get(addr, "/metrics").unwrap();
    assert_eq!(status, 200);
    assert!(metrics.contains("bulwark_build_info{"), "{metrics}");
    crate::promtool::check_metrics(&metrics).unwrap();
    let (status, took) = bin.terminate(Duration::from_secs(5)).unwrap();
    assert!(
        status.success(),
        "exit status {status}; output:\n{}",
        bin.output().join("\n")
    );
    assert!(took < Duration::from_secs(5), "took {took:?}");
    let out = bin.output();
    assert!(
        out.iter().any(|l| l.contains("\"msg\":\"Stopped.\"")),
        "{out:?}"
    );
}

/// Runs `exe` to completion with `args` and `env`; returns exit code and all output.
pub fn run_to_exit(exe: &Path, args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut cmd = Command::new(exe);
    cmd.args(args).stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run binary");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

/// The command-line contract every binary keeps: `--help` and `--version` (with the git
/// commit) exit 0, and a bad config file exits 64 with a message naming the file and field.
/// `bad_config` must be invalid at `field`; `args` are added before `--config`.
pub fn check_cli_contract(exe: &Path, name: &str, args: &[&str], bad_config: &str, field: &str) {
    let (code, out) = run_to_exit(exe, &["--help"], &[]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("--log-format") && out.contains("--log-level") && out.contains("--config"),
        "{out}"
    );
    let (code, out) = run_to_exit(exe, &["--version"], &[]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.starts_with(&format!("{name} {} (", env!("CARGO_PKG_VERSION"))),
        "{out}"
    );

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, bad_config).unwrap();
    let path = path.to_str().unwrap();
    let mut full: Vec<&str> = args.to_vec();
    full.extend(["--config", path]);
    let (code, out) = run_to_exit(exe, &full, &[]);
    assert_eq!(code, Some(64), "{out}");
    assert!(
        out.contains(path) && out.contains(&format!("field `{field}`")),
        "{out}"
    );

    let (code, out) = run_to_exit(exe, &["--log-format", "xml"], &[]);
    assert_eq!(code, Some(2), "{out}");
}
