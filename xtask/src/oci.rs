//! An OCI image layout on disk, as the image spec's `image-layout.md` defines it: the
//! `oci-layout` marker, `index.json` naming what the layout holds, and the content-addressed
//! `blobs/sha256/`. skopeo, umoci, crane, oras and cosign read this layout.
//!
//! Every JSON document is built from oci-spec's typed structs and written with its object keys
//! sorted (oci-spec keeps annotations in a `HashMap`, whose order changes from run to run), and
//! `index.json` lists its entries sorted by name: the same inputs give the same bytes and so
//! the same digests.

use std::{
    path::{Path, PathBuf},
    str::FromStr,
};

use anyhow::Context;
use oci_spec::image::{
    ANNOTATION_REF_NAME, Descriptor, Digest, ImageIndex, ImageIndexBuilder, MediaType,
    OciLayoutBuilder,
};
use serde::Serialize;
use sha2::{Digest as _, Sha256};

/// A layout folder that exists and has the `oci-layout` marker.
pub(crate) struct Layout {
    root: PathBuf,
}

impl Layout {
    /// Opens the layout at `root`, making an empty one when the folder holds none.
    pub(crate) fn create(root: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(root.join("blobs/sha256"))
            .with_context(|| format!("cannot create the OCI layout {}", root.display()))?;
        let layout = Layout {
            root: root.to_owned(),
        };
        if !root.join("oci-layout").exists() {
            let marker = OciLayoutBuilder::default()
                .image_layout_version("1.0.0")
                .build()?;
            write_file(&root.join("oci-layout"), &canonical_json(&marker)?)?;
        }
        if !root.join("index.json").exists() {
            layout.write_index(&empty_index()?)?;
        }
        Ok(layout)
    }

    /// Opens an existing layout, refusing a folder that is not one.
    pub(crate) fn open(root: &Path) -> anyhow::Result<Self> {
        anyhow::ensure!(
            root.join("oci-layout").is_file() && root.join("index.json").is_file(),
            "{} is not an OCI image layout (no oci-layout and index.json)",
            root.display()
        );
        Ok(Layout {
            root: root.to_owned(),
        })
    }

    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// Stores `bytes` as a blob and returns its descriptor.
    pub(crate) fn put_blob(
        &self,
        media_type: MediaType,
        bytes: &[u8],
    ) -> anyhow::Result<Descriptor> {
        let digest = sha256(bytes);
        write_file(&self.blob_path(&digest), bytes)?;
        Ok(Descriptor::new(media_type, bytes.len() as u64, digest))
    }

    /// Stores `value` as canonical JSON and returns its descriptor.
    pub(crate) fn put_json(
        &self,
        media_type: MediaType,
        value: &impl Serialize,
    ) -> anyhow::Result<Descriptor> {
        self.put_blob(media_type, &canonical_json(value)?)
    }

    /// The blob `descriptor` names, refused unless its size and digest are the descriptor's.
    pub(crate) fn blob(&self, descriptor: &Descriptor) -> anyhow::Result<Vec<u8>> {
        let digest = descriptor.digest();
        let path = self.blob_path(digest);
        let bytes = std::fs::read(&path)
            .with_context(|| format!("blob {digest} is missing from {}", self.root.display()))?;
        anyhow::ensure!(
            bytes.len() as u64 == descriptor.size(),
            "blob {digest} holds {} bytes, but its descriptor says {}",
            bytes.len(),
            descriptor.size()
        );
        let actual = sha256(&bytes);
        anyhow::ensure!(
            actual == *digest,
            "blob {digest} was changed: its content hashes to {actual}"
        );
        Ok(bytes)
    }

    /// The layout's `index.json`.
    pub(crate) fn index(&self) -> anyhow::Result<ImageIndex> {
        let path = self.root.join("index.json");
        ImageIndex::from_file(&path).with_context(|| format!("cannot read {}", path.display()))
    }

    /// The entry of `index.json` named `name` (its `org.opencontainers.image.ref.name`).
    pub(crate) fn resolve(&self, name: &str) -> anyhow::Result<Descriptor> {
        self.index()?
            .manifests()
            .iter()
            .find(|d| ref_name(d) == Some(name))
            .cloned()
            .with_context(|| format!("{} has no entry named {name:?}", self.root.display()))
    }

    /// Names `descriptor` `name` in `index.json`, replacing an earlier entry of that name.
    pub(crate) fn set_ref(&self, name: &str, descriptor: &Descriptor) -> anyhow::Result<()> {
        let mut named = descriptor.clone();
        let mut annotations = named.annotations().clone().unwrap_or_default();
        annotations.insert(ANNOTATION_REF_NAME.to_owned(), name.to_owned());
        named.set_annotations(Some(annotations));
        let mut index = self.index()?;
        let mut entries: Vec<Descriptor> = index
            .manifests()
            .iter()
            .filter(|d| ref_name(d) != Some(name))
            .cloned()
            .chain([named])
            .collect();
        entries.sort_by(|a, b| ref_name(a).cmp(&ref_name(b)));
        index.set_manifests(entries);
        self.write_index(&index)
    }

    fn write_index(&self, index: &ImageIndex) -> anyhow::Result<()> {
        write_file(&self.root.join("index.json"), &canonical_json(index)?)
    }

    fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(digest.digest())
    }
}

/// The `org.opencontainers.image.ref.name` of an `index.json` entry.
pub(crate) fn ref_name(descriptor: &Descriptor) -> Option<&str> {
    descriptor
        .annotations()
        .as_ref()?
        .get(ANNOTATION_REF_NAME)
        .map(String::as_str)
}

fn empty_index() -> anyhow::Result<ImageIndex> {
    Ok(ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(Vec::new())
        .build()?)
}

/// `value` as JSON with every object's keys sorted.
pub(crate) fn canonical_json(value: &impl Serialize) -> anyhow::Result<Vec<u8>> {
    let mut value = serde_json::to_value(value)?;
    sort_keys(&mut value);
    Ok(serde_json::to_vec(&value)?)
}

fn sort_keys(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            map.sort_keys();
            map.values_mut().for_each(sort_keys);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(sort_keys),
        _ => {}
    }
}

/// The `sha256:` digest of `bytes`.
pub(crate) fn sha256(bytes: &[u8]) -> Digest {
    let hex = hex_lower(&Sha256::digest(bytes));
    Digest::from_str(&format!("sha256:{hex}")).unwrap_or_else(|_| unreachable!("a sha256 digest"))
}

pub(crate) fn hex_lower(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

fn write_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn json_keys_are_sorted_whatever_the_map_order() {
        let first = oci_spec::image::DescriptorBuilder::default()
            .media_type(MediaType::ImageManifest)
            .size(3u64)
            .digest(sha256(b"abc"))
            .annotations(HashMap::from(
                [("b", "2"), ("a", "1"), ("c", "3")].map(|(k, v)| (k.to_owned(), v.to_owned())),
            ))
            .build()
            .unwrap();
        let bytes = String::from_utf8(canonical_json(&first).unwrap()).unwrap();
        let a = bytes.find("\"a\"").unwrap();
        let b = bytes.find("\"b\"").unwrap();
        let c = bytes.find("\"c\"").unwrap();
        assert!(a < b && b < c, "{bytes}");
        assert!(bytes.find("\"annotations\"") < bytes.find("\"digest\""));
    }

    #[test]
    fn changed_blobs_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::create(dir.path()).unwrap();
        let descriptor = layout
            .put_blob(MediaType::ImageLayerGzip, b"layer bytes")
            .unwrap();
        assert_eq!(layout.blob(&descriptor).unwrap(), b"layer bytes");
        let path = dir
            .path()
            .join("blobs/sha256")
            .join(descriptor.digest().digest());
        std::fs::write(&path, b"layer bytez").unwrap();
        let error = layout.blob(&descriptor).unwrap_err().to_string();
        assert!(error.contains("was changed"), "{error}");
        std::fs::write(&path, b"layer").unwrap();
        let error = layout.blob(&descriptor).unwrap_err().to_string();
        assert!(error.contains("holds 5 bytes"), "{error}");
    }

    #[test]
    fn names_are_replaced_and_sorted() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::create(dir.path()).unwrap();
        let one = layout.put_blob(MediaType::ImageManifest, b"1").unwrap();
        let two = layout.put_blob(MediaType::ImageManifest, b"2").unwrap();
        layout.set_ref("b", &one).unwrap();
        layout.set_ref("a", &one).unwrap();
        layout.set_ref("b", &two).unwrap();
        let index = Layout::open(dir.path()).unwrap().index().unwrap();
        let names: Vec<_> = index.manifests().iter().filter_map(ref_name).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(layout.resolve("b").unwrap().digest(), two.digest());
        assert!(Layout::open(&dir.path().join("nope")).is_err());
    }
}
