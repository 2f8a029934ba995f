//! Atomic publication of the secret files under the mount path, with the kubelet's
//! `AtomicWriter` technique (`pkg/volume/util/atomic_writer.go`): every version of the whole
//! set is written into a fresh hidden directory, and one `rename` of the `..data` symlink
//! switches readers from the old set to the new one. The paths applications open are
//! symlinks through `..data` (`db.json -> ..data/db.json`, `dbs -> ..data/dbs`), so a reader
//! sees either the old set or the new one, never a partial file or a mix of both.
//!
//! A set identical to the published one (content, mode) is not written again, so files keep
//! their inode and mtime and nothing is signalled. Files of secrets that disappeared go with
//! the old directory; their top-level links are removed. The previous directory is kept until
//! the next publication, so a reader that resolved `..data` just before a switch still finds
//! its files.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt, symlink};
use std::path::{Component, Path, PathBuf};

/// The symlink to the current data directory.
pub const DATA: &str = "..data";

/// One file to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    /// Relative to the mount path, e.g. `db.json` or `dbs/mysql.json`.
    pub path: String,
    pub content: Vec<u8>,
    /// Permission bits, such as `0o400`.
    pub mode: u32,
}

/// What a publication changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// Files added or rewritten (content or mode changed).
    pub written: Vec<String>,
    /// Files removed.
    pub removed: Vec<String>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.written.is_empty() && self.removed.is_empty()
    }
}

/// Why the files could not be published.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: the path must stay inside {root} and must not start with ..")]
    Path { path: String, root: String },
    #[error(
        "{path}: already exists and was not written by the sidecar: remove it or choose another path"
    )]
    Occupied { path: String },
    #[error("{path} is listed twice")]
    Duplicate { path: String },
    #[error("{path}: both a file and a directory")]
    FileAndDir { path: String },
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.display().to_string();
    move |source| Error::Io {
        action,
        path,
        source,
    }
}

/// The relative path of `absolute` under `root`, checked: no `..`, no hidden `..` prefix.
pub fn relative(root: &Path, absolute: &str) -> Result<String, Error> {
    let bad = || Error::Path {
        path: absolute.to_owned(),
        root: root.display().to_string(),
    };
    let rel = Path::new(absolute).strip_prefix(root).map_err(|_| bad())?;
    let mut parts = Vec::new();
    for component in rel.components() {
        match component {
            Component::Normal(part) => {
                let part = part.to_str().ok_or_else(bad)?;
                if part.starts_with("..") {
                    return Err(bad());
                }
                parts.push(part);
            }
            _ => return Err(bad()),
        }
    }
    if parts.is_empty() {
        return Err(bad());
    }
    Ok(parts.join("/"))
}

/// Publishes `files` under `root` as one atomic set.
pub fn publish(root: &Path, files: &[File]) -> Result<Changes, Error> {
    let mut wanted: BTreeMap<&str, &File> = BTreeMap::new();
    for file in files {
        if file
            .path
            .split('/')
            .any(|p| p.is_empty() || p == "." || p.starts_with(".."))
        {
            return Err(Error::Path {
                path: file.path.clone(),
                root: root.display().to_string(),
            });
        }
        if wanted.insert(&file.path, file).is_some() {
            return Err(Error::Duplicate {
                path: file.path.clone(),
            });
        }
    }
    for path in wanted.keys() {
        let mut prefix = String::new();
        for part in path.split('/') {
            if !prefix.is_empty() && wanted.contains_key(prefix.as_str()) {
                return Err(Error::FileAndDir { path: prefix });
            }
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(part);
        }
    }
    let current = read_current(root);
    let mut changes = Changes::default();
    for (path, file) in &wanted {
        let same = current
            .get(*path)
            .is_some_and(|(content, mode)| *content == file.content && *mode == file.mode);
        if !same {
            changes.written.push((*path).to_owned());
        }
    }
    changes.removed = current
        .keys()
        .filter(|p| !wanted.contains_key(p.as_str()))
        .cloned()
        .collect();
    if changes.is_empty() && root.join(DATA).exists() {
        return Ok(changes);
    }

    // Top-level names must be ours (links into ..data) or free.
    let tops: BTreeSet<&str> = wanted.keys().filter_map(|p| p.split('/').next()).collect();
    for top in &tops {
        let link = root.join(top);
        if let Ok(meta) = fs::symlink_metadata(&link)
            && !is_our_link(&link, top, &meta)
        {
            return Err(Error::Occupied {
                path: link.display().to_string(),
            });
        }
    }

    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let dir_name = format!("..{stamp}");
    let dir = root.join(&dir_name);
    fs::DirBuilder::new()
        .mode(0o755)
        .create(&dir)
        .map_err(io("create", &dir))?;
    for (path, file) in &wanted {
        let target = dir.join(path);
        if let Some(parent) = target.parent() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(parent)
                .map_err(io("create", parent))?;
        }
        let mut out = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(file.mode)
            .open(&target)
            .map_err(io("create", &target))?;
        out.write_all(&file.content).map_err(io("write", &target))?;
        // The umask may have narrowed the mode at creation.
        fs::set_permissions(&target, fs::Permissions::from_mode(file.mode))
            .map_err(io("chmod", &target))?;
    }
    let old = fs::read_link(root.join(DATA)).ok();
    let tmp = root.join("..data_tmp");
    let _ = fs::remove_file(&tmp);
    symlink(&dir_name, &tmp).map_err(io("link", &tmp))?;
    fs::rename(&tmp, root.join(DATA)).map_err(io("rename", &tmp))?;
    for top in &tops {
        let link = root.join(top);
        if fs::symlink_metadata(&link).is_err() {
            symlink(PathBuf::from(DATA).join(top), &link).map_err(io("link", &link))?;
        }
    }
    // Links of top-level names that are gone now dangle: remove them.
    for removed in &changes.removed {
        let top = removed.split('/').next().unwrap_or_default();
        if !tops.contains(top) {
            let _ = fs::remove_file(root.join(top));
        }
    }
    // The previous directory stays until the next publication, so that a reader that resolved
    // `..data` just before the switch can still open its files; older ones go.
    let keep = old.and_then(|o| o.to_str().map(str::to_owned));
    for entry in fs::read_dir(root).map_err(io("list", root))?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let ours = name.len() > 2 && name[2..].bytes().all(|b| b.is_ascii_digit());
        if name.starts_with("..") && ours && name != dir_name && Some(&name) != keep.as_ref() {
            let path = entry.path();
            fs::remove_dir_all(&path).map_err(io("remove", &path))?;
        }
    }
    Ok(changes)
}

fn is_our_link(link: &Path, top: &str, meta: &fs::Metadata) -> bool {
    meta.file_type().is_symlink()
        && fs::read_link(link).is_ok_and(|t| t == Path::new(DATA).join(top))
}

/// The published files and their modes, read through `..data`.
fn read_current(root: &Path) -> BTreeMap<String, (Vec<u8>, u32)> {
    let mut out = BTreeMap::new();
    let data = root.join(DATA);
    let mut stack = vec![(data, String::new())];
    while let Some((dir, prefix)) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let rel = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                stack.push((entry.path(), rel));
            } else if let Ok(content) = fs::read(entry.path()) {
                out.insert(rel, (content, meta.permissions().mode() & 0o7777));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
