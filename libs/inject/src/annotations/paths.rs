//! Output paths: every file the sidecar writes lies under the shared volume, has its own path,
//! and no file lies where another output needs a directory.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Bound;

use bulwark_sidecar_spec::{Folder, Secret, file_name};

use super::PREFIX;
use crate::{Error, MOUNT_PATH, Result};

/// Where an output was asked for, named in the errors about it (and written only for them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Origin<'a> {
    /// An annotation, by its name after the prefix.
    Annotation(&'a str),
    /// An entry of `secrets:` in `keeper.security/config`.
    ConfigSecret(usize),
    /// An entry of `folders:` in `keeper.security/config`.
    ConfigFolder(usize),
}

impl fmt::Display for Origin<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Annotation(name) => write!(f, "{PREFIX}{name}"),
            Origin::ConfigSecret(i) => write!(f, "{PREFIX}config (secrets[{i}])"),
            Origin::ConfigFolder(i) => write!(f, "{PREFIX}config (folders[{i}])"),
        }
    }
}

/// The output files and folders found so far, and beside them where each was asked for
/// (for errors only; the request takes the outputs as they are).
#[derive(Default)]
pub(super) struct Outputs<'a> {
    pub(super) secrets: Vec<Secret>,
    secret_origins: Vec<Origin<'a>>,
    pub(super) folders: Vec<Folder>,
    folder_origins: Vec<Origin<'a>>,
}

impl<'a> Outputs<'a> {
    pub(super) fn push_secret(&mut self, (origin, secret): (Origin<'a>, Secret)) {
        self.secret_origins.push(origin);
        self.secrets.push(secret);
    }

    pub(super) fn push_folder(&mut self, (origin, folder): (Origin<'a>, Folder)) {
        self.folder_origins.push(origin);
        self.folders.push(folder);
    }

    /// Every output file has its own path, and no file lies where a directory must be.
    pub(super) fn check_paths(&self) -> Result<()> {
        let mut files: BTreeMap<&str, Origin<'a>> = BTreeMap::new();
        for (&origin, secret) in self.secret_origins.iter().zip(&self.secrets) {
            if let Some(other) = files.insert(&secret.path, origin) {
                return Err(Error::invalid(
                    origin.to_string(),
                    format!(
                        "output path {} is also written by {other}: expected a distinct path for every secret",
                        secret.path
                    ),
                ));
            }
        }
        // A directory may be shared by several folders; the first one names the conflict.
        let mut dirs: BTreeMap<&str, Origin<'a>> = BTreeMap::new();
        for (&origin, folder) in self.folder_origins.iter().zip(&self.folders) {
            dirs.entry(&folder.output_dir).or_insert(origin);
        }
        // The first entry at or after `below` starts with it if any does, since every key
        // that starts with `below` sorts right after it.
        fn first_below<'a>(map: &BTreeMap<&str, Origin<'a>>, below: &str) -> Option<Origin<'a>> {
            map.range::<str, _>((Bound::Included(below), Bound::Unbounded))
                .next()
                .filter(|(p, _)| p.starts_with(below))
                .map(|(_, o)| *o)
        }
        let mut below = String::new();
        for (path, &origin) in &files {
            below.clear();
            below.push_str(path);
            below.push('/');
            let nested = first_below(&files, &below)
                .or_else(|| dirs.get(path).copied())
                .or_else(|| first_below(&dirs, &below));
            if let Some(other) = nested {
                return Err(Error::invalid(
                    origin.to_string(),
                    format!(
                        "output path {path} is a file, but {other} needs a directory there: expected paths that do not nest"
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// An output file path: absolute under the mount, or relative to it.
pub(super) fn output_file(origin: impl fmt::Display + Copy, path: &str) -> Result<String> {
    let path = output_path(origin, path)?;
    if path == MOUNT_PATH {
        return Err(Error::invalid(
            origin.to_string(),
            format!("output path {path} is the shared directory itself: expected a file under it"),
        ));
    }
    Ok(path)
}

/// An output directory: absolute under the mount (or the mount itself), or relative to it.
pub(super) fn output_dir(origin: impl fmt::Display + Copy, path: &str) -> Result<String> {
    output_path(
        origin,
        path.strip_suffix('/')
            .filter(|p| !p.is_empty())
            .unwrap_or(path),
    )
}

/// Resolves and checks a path under the shared volume: only that directory is shared with the
/// application containers, and the keeper containers' root filesystem is read-only, so a path
/// elsewhere could never be written (upstream defect 4).
fn output_path(origin: impl fmt::Display + Copy, path: &str) -> Result<String> {
    let full = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("{MOUNT_PATH}/{path}")
    };
    let outside = || {
        Error::invalid(
            origin.to_string(),
            format!(
                "output path {path:?} is outside the shared volume: expected a path under {MOUNT_PATH}, the only directory the keeper containers share with the application"
            ),
        )
    };
    if full != MOUNT_PATH && !full.starts_with(&format!("{MOUNT_PATH}/")) {
        return Err(outside());
    }
    let rest = &full[MOUNT_PATH.len()..];
    let rest = rest.strip_prefix('/').unwrap_or(rest);
    if !rest.is_empty() {
        for component in rest.split('/') {
            if component.is_empty() || component == "." || component == ".." {
                return Err(Error::invalid(
                    origin.to_string(),
                    format!(
                        "output path {path:?} has an empty, '.' or '..' component: expected a plain path under {MOUNT_PATH}"
                    ),
                ));
            }
            if component.len() > 255 || component.contains('\0') {
                return Err(Error::invalid(
                    origin.to_string(),
                    format!(
                        "output path {path:?} has a component longer than 255 bytes or with a NUL: expected a valid file name"
                    ),
                ));
            }
        }
    }
    if full.len() > 4096 {
        return Err(Error::invalid(
            origin.to_string(),
            "output path is longer than 4096 bytes",
        ));
    }
    Ok(full)
}

/// The default path of an output named after `name`: `{MOUNT_PATH}/{file_name}{extension}`.
pub(super) fn default_output_path(name: &str, lowercase: bool, extension: &str) -> String {
    let name = file_name(name, lowercase);
    let mut path = String::with_capacity(MOUNT_PATH.len() + 1 + name.len() + extension.len());
    path.push_str(MOUNT_PATH);
    path.push('/');
    path.push_str(&name);
    path.push_str(extension);
    path
}
