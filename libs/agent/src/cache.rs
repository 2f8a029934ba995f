//! The last good secrets, encrypted on the pod's tmpfs volume, for when Keeper is down.
//!
//! The cache lives next to the published files (`<mount>/..cache`, mode 0600, hidden from the
//! application's view of secret names), so it survives a restart of the sidecar and the init
//! container of a restarted pod sandbox reads it, but never reaches a disk: the volume is an
//! `emptyDir` with `medium: Memory`. It holds the rendered files, the bound KSM configuration
//! (a one-time token can be bound only once) and the fetch time, sealed with AES-256-GCM under
//! a key derived from the KSM configuration the pod was given (SHA-256 with a domain prefix):
//! whoever can read it could fetch the same secrets from Keeper anyway. A cache that is
//! missing, corrupt or sealed under another configuration is treated as absent; one older than
//! [`MAX_AGE`] is refused.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::publish;

/// How long cached secrets may be served (the seed's 24 hours).
pub const MAX_AGE: Duration = Duration::from_secs(24 * 60 * 60);

/// The cache file's name under the mount path.
pub const FILE: &str = "..cache";

/// The file of the binding of a one-time token, under the mount path: written as soon as
/// Keeper accepts the token, whatever happens to that fetch after, and kept however old.
pub const BINDING_FILE: &str = "..binding";

const MAGIC: &[u8; 4] = b"BWC1";

const BINDING_MAGIC: &[u8; 4] = b"BWB1";

/// The time, injectable so that tests can cross the 24-hour line.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> SystemTime;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that moves only when told to.
#[derive(Debug)]
pub struct ManualClock(Mutex<SystemTime>);

impl ManualClock {
    pub fn new(now: SystemTime) -> Self {
        Self(Mutex::new(now))
    }

    pub fn advance(&self, by: Duration) {
        let mut now = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What the cache holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub fetched_at: SystemTime,
    /// The bound KSM configuration, read from caches written before the binding had a file
    /// of its own ([`BINDING_FILE`]); new caches leave it out.
    pub bound_config: Option<String>,
    pub files: Vec<publish::File>,
}

/// Cached secrets and how old they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cached {
    pub entry: Entry,
    pub age: Duration,
}

/// Why the cache cannot serve.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the cached secrets are {} old, beyond the {} limit", human(*age), human(MAX_AGE))]
    Expired { age: Duration },
    #[error("the cache {path} is unreadable ({reason}); it is ignored")]
    Corrupt { path: String, reason: &'static str },
    #[error("cannot {action} the cache {path}: {source}")]
    Io {
        action: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Stored {
    fetched_at: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bound_config: Option<String>,
    files: Vec<StoredFile>,
}

#[derive(Serialize, Deserialize)]
struct StoredFile {
    path: String,
    mode: u32,
    content: String,
}

/// The encrypted cache of one pod.
pub struct Cache {
    path: PathBuf,
    binding: PathBuf,
    key: [u8; 32],
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Cache {
    /// The cache under `mount`, sealed with a key derived from `ksm_config` (the configuration
    /// text as the pod received it).
    pub fn new(mount: &Path, ksm_config: &str) -> Self {
        let mut hash = Sha256::new();
        hash.update(b"bulwark injector-sidecar cache v1\0");
        hash.update(ksm_config.trim().as_bytes());
        Self {
            path: mount.join(FILE),
            binding: mount.join(BINDING_FILE),
            key: hash.finalize().into(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Replaces the cache with `entry`, atomically.
    pub fn store(&self, entry: &Entry) -> Result<(), Error> {
        let stored = Stored {
            fetched_at: entry
                .fetched_at
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs(),
            bound_config: entry.bound_config.clone(),
            files: entry
                .files
                .iter()
                .map(|f| StoredFile {
                    path: f.path.clone(),
                    mode: f.mode,
                    content: STANDARD.encode(&f.content),
                })
                .collect(),
        };
        let plain = serde_json::to_vec(&stored).unwrap_or_default();
        self.write_sealed(&self.path, MAGIC, &plain)
    }

    /// Keeps `bound_config`, the configuration a one-time token became, in its own file.
    pub fn store_binding(&self, bound_config: &str) -> Result<(), Error> {
        self.write_sealed(&self.binding, BINDING_MAGIC, bound_config.as_bytes())
    }

    /// The configuration a one-time token of this pod was bound to, if one was.
    pub fn load_binding(&self) -> Result<Option<String>, Error> {
        let Some(plain) = self.read_sealed(&self.binding, BINDING_MAGIC)? else {
            return Ok(None);
        };
        String::from_utf8(plain)
            .map(Some)
            .map_err(|_| self.corrupt(&self.binding, "unexpected content"))
    }

    fn corrupt(&self, path: &Path, reason: &'static str) -> Error {
        Error::Corrupt {
            path: path.display().to_string(),
            reason,
        }
    }

    /// Seals `plain` and replaces `path` with it, atomically (mode 0600).
    fn write_sealed(&self, path: &Path, magic: &[u8; 4], plain: &[u8]) -> Result<(), Error> {
        let nonce: [u8; 12] = rand::random();
        let sealed = Aes256Gcm::new((&self.key).into())
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plain,
                    aad: magic,
                },
            )
            .unwrap_or_default();
        let mut tmp = path.to_path_buf().into_os_string();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let io = |action| {
            let path = path.display().to_string();
            move |source| Error::Io {
                action,
                path,
                source,
            }
        };
        let _ = fs::remove_file(&tmp);
        let mut out = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io("create"))?;
        out.write_all(magic).map_err(io("write"))?;
        out.write_all(&nonce).map_err(io("write"))?;
        out.write_all(&sealed).map_err(io("write"))?;
        drop(out);
        fs::rename(&tmp, path).map_err(io("replace"))?;
        Ok(())
    }

    /// What `path` holds, unsealed; `Ok(None)` when there is no such file.
    fn read_sealed(&self, path: &Path, magic: &[u8; 4]) -> Result<Option<Vec<u8>>, Error> {
        let bytes = match fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(Error::Io {
                    action: "read",
                    path: path.display().to_string(),
                    source,
                });
            }
        };
        let rest = bytes
            .strip_prefix(magic)
            .ok_or_else(|| self.corrupt(path, "unknown format"))?;
        if rest.len() < 12 {
            return Err(self.corrupt(path, "truncated"));
        }
        let (nonce, sealed) = rest.split_at(12);
        Aes256Gcm::new((&self.key).into())
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: magic,
                },
            )
            .map(Some)
            .map_err(|_| {
                self.corrupt(
                    path,
                    "it does not decrypt with this pod's KSM configuration",
                )
            })
    }

    /// The cached secrets if there are any usable ones at `now`: `Ok(None)` when there is no
    /// cache, [`Error::Expired`] past [`MAX_AGE`], [`Error::Corrupt`] when it cannot be opened.
    pub fn load(&self, now: SystemTime) -> Result<Option<Cached>, Error> {
        let Some(plain) = self.read_sealed(&self.path, MAGIC)? else {
            return Ok(None);
        };
        let corrupt = |reason| self.corrupt(&self.path, reason);
        let stored: Stored =
            serde_json::from_slice(&plain).map_err(|_| corrupt("unexpected content"))?;
        let fetched_at = UNIX_EPOCH + Duration::from_secs(stored.fetched_at);
        let age = now.duration_since(fetched_at).unwrap_or_default();
        if age > MAX_AGE {
            return Err(Error::Expired { age });
        }
        let files = stored
            .files
            .into_iter()
            .map(|f| {
                Ok(publish::File {
                    path: f.path,
                    mode: f.mode,
                    content: STANDARD
                        .decode(f.content)
                        .map_err(|_| corrupt("unexpected content"))?,
                })
            })
            .collect::<Result<_, Error>>()?;
        Ok(Some(Cached {
            entry: Entry {
                fetched_at,
                bound_config: stored.bound_config,
                files,
            },
            age,
        }))
    }
}

/// An age as the seed's log line writes it: `6h`, `1h5m`, `35m`, `40s`.
pub fn human(age: Duration) -> String {
    let secs = age.as_secs();
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, m) => format!("{m}m"),
        (h, 0) => format!("{h}h"),
        (h, m) => format!("{h}h{m}m"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::os::unix::fs::PermissionsExt;

    use super::*;

    const CONFIG: &str = r#"{"hostname":"keepersecurity.com","clientId":"x"}"#;

    fn entry(now: SystemTime) -> Entry {
        Entry {
            fetched_at: now,
            bound_config: Some("{\"appKey\":\"k\"}".to_owned()),
            files: vec![publish::File {
                path: "db.json".to_owned(),
                content: b"{\"password\":\"hunter2\"}".to_vec(),
                mode: 0o400,
            }],
        }
    }

    #[test]
    fn round_trip_across_instances_until_24_hours() {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_800_000_000));
        let written = entry(clock.now());
        Cache::new(dir.path(), CONFIG).store(&written).unwrap();
        let mode = fs::metadata(dir.path().join(FILE))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
        let raw = fs::read(dir.path().join(FILE)).unwrap();
        assert!(
            !raw.windows(7).any(|w| w == b"hunter2"),
            "the cache is not encrypted"
        );

        // A new instance (a restarted sidecar) reads it.
        let cache = Cache::new(dir.path(), CONFIG);
        clock.advance(Duration::from_secs(6 * 3600));
        let cached = cache.load(clock.now()).unwrap().unwrap();
        assert_eq!(cached.entry, written);
        assert_eq!(human(cached.age), "6h");
        clock.advance(Duration::from_secs(18 * 3600));
        assert!(
            cache.load(clock.now()).unwrap().is_some(),
            "exactly 24 hours still serves"
        );
        clock.advance(Duration::from_secs(1));
        let err = cache.load(clock.now()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the cached secrets are 24h old, beyond the 24h limit"
        );
    }

    #[test]
    fn missing_tampered_or_foreign_caches_are_not_served() {
        let dir = tempfile::tempdir().unwrap();
        let now = SystemTime::now();
        let cache = Cache::new(dir.path(), CONFIG);
        assert!(cache.load(now).unwrap().is_none());
        cache.store(&entry(now)).unwrap();
        let other = Cache::new(dir.path(), "another config");
        assert!(matches!(other.load(now), Err(Error::Corrupt { .. })));
        let mut raw = fs::read(cache.path()).unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 1;
        fs::write(cache.path(), &raw).unwrap();
        let err = cache.load(now).unwrap_err();
        assert!(err.to_string().contains("does not decrypt"), "{err}");
        fs::write(cache.path(), b"junk").unwrap();
        assert!(matches!(cache.load(now), Err(Error::Corrupt { .. })));
    }

    #[test]
    fn ages_read_like_the_seed() {
        for (secs, text) in [
            (40, "40s"),
            (35 * 60, "35m"),
            (6 * 3600, "6h"),
            (3900, "1h5m"),
        ] {
            assert_eq!(human(Duration::from_secs(secs)), text);
        }
    }
}
