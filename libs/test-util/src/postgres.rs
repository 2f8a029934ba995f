//! A throwaway PostgreSQL cluster for tests: `initdb` and `pg_ctl` from the installed server, a
//! temporary directory, and a unix socket in it as the only listener (no TCP port, so clusters
//! never clash).
//!
//! `initdb` refuses to run as root, so as root the tools run as the `postgres` user through
//! `runuser`, and the directory is handed to that user first.

use std::{
    fs, io,
    os::unix::fs::chown,
    path::{Path, PathBuf},
    process::{Command, ExitStatus, Output, Stdio},
    sync::atomic::{AtomicBool, Ordering},
};

use tempfile::TempDir;

/// Where Debian and Ubuntu install the server tools, one directory per major version.
const DEBIAN_ROOT: &str = "/usr/lib/postgresql";
/// Other places the server tools live: the source-build default and the plain system paths.
const OTHER_BIN_DIRS: [&str; 3] = ["/usr/local/pgsql/bin", "/usr/local/bin", "/usr/bin"];
/// The superuser that `initdb` creates and that [`TestPostgres::url`] connects as.
const SUPERUSER: &str = "postgres";
/// The longest unix socket path the kernel accepts is 107 bytes; the socket file name
/// (`.s.PGSQL.5432`) takes 14 of them.
const MAX_SOCKET_DIR_LEN: usize = 107 - 14;
/// Lines of the server log quoted in a start failure.
const LOG_TAIL_LINES: usize = 20;

/// Why a cluster could not be set up or controlled.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "postgresql server binaries (initdb and pg_ctl) not found in {searched}: \
         install them with `apt-get install postgresql`"
    )]
    NotInstalled { searched: String },
    #[error(
        "running as root, but there is no postgres user to run initdb as \
         (initdb refuses root; `apt-get install postgresql` creates the user)"
    )]
    NoPostgresUser,
    #[error("cannot create the cluster directory")]
    TempDir(#[source] io::Error),
    #[error(
        "the cluster directory {} is too long to hold a unix socket: use a shorter TMPDIR",
        path.display()
    )]
    SocketDirTooLong { path: PathBuf },
    #[error("cannot hand the cluster directory {} to the postgres user", path.display())]
    Chown {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot run {program}")]
    Spawn {
        program: String,
        #[source]
        source: io::Error,
    },
    #[error("{program} failed ({status}): {output}")]
    Failed {
        program: String,
        status: ExitStatus,
        output: String,
    },
    #[error("postgresql did not start ({status}); server log {}:\n{log}", log_file.display())]
    Start {
        status: ExitStatus,
        log_file: PathBuf,
        log: String,
    },
    #[error("cannot remove the cluster directory {}", path.display())]
    Remove {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A running PostgreSQL cluster in a temporary directory; stopped and removed on drop.
///
/// The superuser `postgres` connects without a password (`trust`) over the unix socket in
/// [`TestPostgres::socket_dir`]. `fsync` is off: a crash of the machine loses data, a crash of
/// the server (see [`TestPostgres::stop_server`]) does not.
#[derive(Debug)]
pub struct TestPostgres {
    dir: TempDir,
    bin_dir: PathBuf,
    as_postgres_user: bool,
    running: AtomicBool,
}

impl TestPostgres {
    /// Creates a cluster with `initdb` and starts it; about a second.
    pub fn start() -> Result<Self> {
        let bin_dir = find_bin_dir(Path::new(DEBIAN_ROOT), &OTHER_BIN_DIRS)?;
        let as_postgres_user = running_as_root();
        let dir = tempfile::Builder::new()
            .prefix("bulwark-pg-")
            .tempdir()
            .map_err(Error::TempDir)?;
        if dir.path().as_os_str().len() > MAX_SOCKET_DIR_LEN {
            return Err(Error::SocketDirTooLong {
                path: dir.path().to_owned(),
            });
        }
        if as_postgres_user {
            let (uid, gid) = postgres_user()?;
            chown(dir.path(), Some(uid), Some(gid)).map_err(|source| Error::Chown {
                path: dir.path().to_owned(),
                source,
            })?;
        }
        let cluster = Self {
            dir,
            bin_dir,
            as_postgres_user,
            running: AtomicBool::new(false),
        };
        let mut initdb = cluster.server_tool("initdb");
        initdb
            .arg("--pgdata")
            .arg(cluster.data_dir())
            .args(["--auth=trust", "--username", SUPERUSER])
            .args(["--no-sync", "--encoding=UTF8", "--locale=C.UTF-8"]);
        run(initdb, "initdb")?;
        cluster.start_server()?;
        Ok(cluster)
    }

    /// The directory holding the server's unix socket: the `host` of a connection.
    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The data directory (`PGDATA`).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The server log.
    pub fn log_file(&self) -> PathBuf {
        self.dir.path().join("postgres.log")
    }

    /// A connection URL for `database` in the form sqlx understands, such as
    /// `postgres://postgres@localhost/app?host=/tmp/bulwark-pg-XXXX`.
    /// `database` is used as written, so keep it to letters, digits and underscores.
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://{SUPERUSER}@localhost/{database}?host={}",
            self.socket_dir().display()
        )
    }

    /// Creates a database owned by the superuser.
    pub fn create_database(&self, name: &str) -> Result<()> {
        let mut createdb = Command::new(self.bin_dir.join("createdb"));
        createdb
            .arg("--host")
            .arg(self.socket_dir())
            .args(["--username", SUPERUSER, "--"])
            .arg(name);
        run(createdb, "createdb").map(drop)
    }

    /// Runs `sql` with `psql` in `database` as the superuser, stopping at the first error, and
    /// returns its unaligned, tuples-only output, trimmed.
    pub fn psql(&self, database: &str, sql: &str) -> Result<String> {
        let mut psql = Command::new(self.bin_dir.join("psql"));
        psql.args(["-XAtq", "-v", "ON_ERROR_STOP=1", "--host"])
            .arg(self.socket_dir())
            .args([
                "--username",
                SUPERUSER,
                "--dbname",
                database,
                "--command",
                sql,
            ]);
        run(psql, "psql").map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// Stops the server cleanly (`pg_ctl stop -m fast`, which disconnects every client) and
    /// starts it again on the same data. Clients see their connections closed.
    pub fn restart(&self) -> Result<()> {
        self.pg_ctl_stop("fast")?;
        self.start_server()
    }

    /// Kills the server as a crash would (`pg_ctl stop -m immediate`): no checkpoint, and the
    /// next [`TestPostgres::start_server`] recovers from the write-ahead log.
    pub fn stop_server(&self) -> Result<()> {
        self.pg_ctl_stop("immediate")
    }

    /// Starts the server, after [`TestPostgres::stop_server`]; waits until it accepts
    /// connections.
    pub fn start_server(&self) -> Result<()> {
        // pg_ctl hands `-o` to the server through a shell, hence the quoting.
        let server_options = format!(
            "-k '{}' -c listen_addresses='' -c fsync=off",
            self.socket_dir().display()
        );
        let mut pg_ctl = self.server_tool("pg_ctl");
        pg_ctl
            .arg("--pgdata")
            .arg(self.data_dir())
            .arg("--log")
            .arg(self.log_file())
            .args(["--wait", "--timeout=60", "-o", &server_options, "start"]);
        match output(pg_ctl, "pg_ctl start")? {
            output if output.status.success() => {
                self.running.store(true, Ordering::SeqCst);
                Ok(())
            }
            output => Err(Error::Start {
                status: output.status,
                log_file: self.log_file(),
                log: log_tail(&self.log_file()),
            }),
        }
    }

    /// Stops the server and removes its directory, reporting what drop would ignore.
    pub fn stop(self) -> Result<()> {
        if self.running.load(Ordering::SeqCst) {
            self.stop_server()?;
        }
        fs::remove_dir_all(self.dir.path()).map_err(|source| Error::Remove {
            path: self.dir.path().to_owned(),
            source,
        })
        // Dropping `self.dir` now finds nothing left to remove.
    }

    fn pg_ctl_stop(&self, mode: &str) -> Result<()> {
        let mut pg_ctl = self.server_tool("pg_ctl");
        pg_ctl.arg("--pgdata").arg(self.data_dir()).args([
            "--wait",
            "--timeout=60",
            "--mode",
            mode,
            "stop",
        ]);
        run(pg_ctl, "pg_ctl stop")?;
        self.running.store(false, Ordering::SeqCst);
        Ok(())
    }

    /// A server tool, run as the `postgres` user when we are root.
    fn server_tool(&self, name: &str) -> Command {
        let program = self.bin_dir.join(name);
        let mut command = if self.as_postgres_user {
            let mut runuser = Command::new("runuser");
            runuser.args(["-u", SUPERUSER, "--"]).arg(program);
            runuser
        } else {
            Command::new(program)
        };
        // The postgres user may not be allowed into the caller's working directory.
        command.current_dir(self.dir.path());
        command
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        if self.running.load(Ordering::SeqCst) {
            // Nothing to report to from drop; `stop` is the checked path.
            let _ = self.stop_server();
        }
        // `TempDir` removes the directory after this.
    }
}

/// The newest `<debian_root>/<version>/bin`, else the first of `others`, with both `initdb`
/// and `pg_ctl`.
fn find_bin_dir(debian_root: &Path, others: &[&str]) -> Result<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir(debian_root)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .collect();
    versions.sort();
    let candidates = versions
        .into_iter()
        .rev()
        .map(|(_, bin)| bin)
        .chain(others.iter().map(PathBuf::from));
    for bin in candidates {
        if bin.join("initdb").is_file() && bin.join("pg_ctl").is_file() {
            return Ok(bin);
        }
    }
    Err(Error::NotInstalled {
        searched: format!("{}/*/bin, {}", debian_root.display(), others.join(", ")),
    })
}

/// Whether the effective user is root, from `/proc/self/status` (the `Uid:` line lists real,
/// effective, saved and filesystem ids). Anything unreadable counts as not root.
fn running_as_root() -> bool {
    fs::read_to_string("/proc/self/status").is_ok_and(|status| effective_uid_is_root(&status))
}

fn effective_uid_is_root(status: &str) -> bool {
    status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|uids| uids.split_whitespace().nth(1))
        .is_some_and(|euid| euid == "0")
}

/// The uid and gid of the `postgres` user, from `/etc/passwd`.
fn postgres_user() -> Result<(u32, u32)> {
    let passwd = fs::read_to_string("/etc/passwd").unwrap_or_default();
    user_ids(&passwd, SUPERUSER).ok_or(Error::NoPostgresUser)
}

/// The uid and gid of `user` in a passwd file.
fn user_ids(passwd: &str, user: &str) -> Option<(u32, u32)> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        if fields.next()? != user {
            return None;
        }
        let uid = fields.nth(1)?.parse().ok()?;
        let gid = fields.next()?.parse().ok()?;
        Some((uid, gid))
    })
}

/// Runs `command` to completion, capturing its output.
fn output(mut command: Command, program: &str) -> Result<Output> {
    command
        .stdin(Stdio::null())
        .output()
        .map_err(|source| Error::Spawn {
            program: program.to_owned(),
            source,
        })
}

/// Runs `command` and fails with its output unless it succeeds.
fn run(command: Command, program: &str) -> Result<Output> {
    let output = output(command, program)?;
    if output.status.success() {
        return Ok(output);
    }
    let mut text = String::from_utf8_lossy(&output.stderr).trim().to_owned();
    if text.is_empty() {
        text = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    }
    Err(Error::Failed {
        program: program.to_owned(),
        status: output.status,
        output: text,
    })
}

/// The last lines of the server log, or why it cannot be read.
fn log_tail(path: &Path) -> String {
    match fs::read_to_string(path) {
        Ok(log) => {
            let lines: Vec<&str> = log.lines().collect();
            lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
        }
        Err(error) => format!("(cannot read the log: {error})"),
    }
}

#[cfg(test)]
mod tests;
