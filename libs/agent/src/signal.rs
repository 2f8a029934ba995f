//! The signal to the application after its files changed (`keeper.security/signal`).
//!
//! The pod shares one PID namespace (the webhook sets `shareProcessNamespace`), so the
//! sidecar sees the application's processes in `/proc`. It signals the processes named by
//! `keeper.security/signal-process` (`/proc/<pid>/comm`), or else the main process of every
//! other container: the processes whose parent is outside the namespace (parent PID 0),
//! except the pause process (PID 1) and itself.

use std::path::Path;

use bulwark_sidecar_spec::{Signal, SignalName};
use rustix::process::{Pid, Signal as Sig, kill_process};

/// Why no signal could be sent.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot list processes in {dir}: {source}")]
    Proc {
        dir: String,
        #[source]
        source: std::io::Error,
    },
    #[error("no process to signal: {0}")]
    NoTarget(String),
    #[error(
        "cannot send {signal} to process {pid} ({name}): {source}; the sidecar needs the same user as the application, or capability KILL"
    )]
    Kill {
        signal: &'static str,
        pid: i32,
        name: String,
        #[source]
        source: std::io::Error,
    },
}

/// A process as `/proc/<pid>/stat` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    pub pid: i32,
    pub parent: i32,
    /// The command name (`comm`), at most 15 bytes.
    pub name: String,
}

/// The processes that `signal` is for, found under `proc` (normally `/proc`), excluding
/// process `own`.
pub fn targets(proc: &Path, own: i32, signal: &Signal) -> Result<Vec<Process>, Error> {
    let dir_error = |source| Error::Proc {
        dir: proc.display().to_string(),
        source,
    };
    let mut found = Vec::new();
    for entry in std::fs::read_dir(proc).map_err(dir_error)? {
        let Ok(entry) = entry else { continue };
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        // A process may exit while we look: skip what we cannot read.
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Some(process) = parse_stat(pid, &stat) else {
            continue;
        };
        if process.pid == own {
            continue;
        }
        let wanted = match &signal.process {
            Some(name) => process.name == *name || truncated(name) == process.name,
            None => process.parent == 0 && process.pid != 1,
        };
        if wanted {
            found.push(process);
        }
    }
    found.sort_by_key(|p| p.pid);
    if found.is_empty() {
        let what = match &signal.process {
            Some(name) => format!("no process named {name:?} in the pod"),
            None => "no other container's main process is visible; is shareProcessNamespace set?"
                .to_owned(),
        };
        return Err(Error::NoTarget(what));
    }
    Ok(found)
}

/// Sends `signal` to every target; returns how many were signalled. A process that exited in
/// the meantime is not an error.
pub fn send(proc: &Path, own: i32, signal: &Signal) -> Result<usize, Error> {
    let mut sent = 0;
    for process in targets(proc, own, signal)? {
        let Some(pid) = Pid::from_raw(process.pid) else {
            continue;
        };
        match kill_process(pid, number(signal.signal)) {
            Ok(()) => {
                tracing::info!(
                    pid = process.pid,
                    process = process.name,
                    signal = signal.signal.as_str(),
                    "Signalled the application."
                );
                sent += 1;
            }
            Err(rustix::io::Errno::SRCH) => {}
            Err(errno) => {
                return Err(Error::Kill {
                    signal: signal.signal.as_str(),
                    pid: process.pid,
                    name: process.name,
                    source: errno.into(),
                });
            }
        }
    }
    Ok(sent)
}

fn number(name: SignalName) -> Sig {
    match name {
        SignalName::Hup => Sig::HUP,
        SignalName::Int => Sig::INT,
        SignalName::Quit => Sig::QUIT,
        SignalName::Term => Sig::TERM,
        SignalName::Usr1 => Sig::USR1,
        SignalName::Usr2 => Sig::USR2,
        SignalName::Winch => Sig::WINCH,
    }
}

/// The kernel keeps 15 bytes of a command name.
fn truncated(name: &str) -> &str {
    let mut end = name.len().min(15);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

/// Parses `/proc/<pid>/stat`: `pid (comm) state ppid ...`. The name may itself contain spaces
/// and parentheses, so it runs to the last `)`.
fn parse_stat(pid: i32, stat: &str) -> Option<Process> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat.get(open + 1..close)?.to_owned();
    let mut rest = stat.get(close + 1..)?.split_ascii_whitespace();
    let _state = rest.next()?;
    let parent = rest.next()?.parse().ok()?;
    Some(Process { pid, parent, name })
}

#[cfg(test)]
mod tests;
