//! Validating metrics output with Prometheus' own `promtool check metrics`.

use std::io::Write;
use std::process::{Command, Stdio};

/// Runs `promtool check metrics` on `exposition`. Returns promtool's complaints on failure.
///
/// Panics when promtool is missing, with the command that installs it: a missing tool must
/// fail the test run rather than silently skip the check.
pub fn check_metrics(exposition: &str) -> Result<(), String> {
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) => panic!(
            "cannot run promtool ({e}): run `cargo xtask prereqs` or `apt-get install prometheus`"
        ),
    };
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(exposition.as_bytes())
            .map_err(|e| e.to_string())?;
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "promtool check metrics failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}
