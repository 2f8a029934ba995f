//! `cargo xtask image`: an OCI image layout per binary (`<target>/oci/<binary>`), holding one
//! image per architecture and the multi-arch index over them, with no container daemon.
//!
//! Each image is one gzip layer over nothing (distroless: no shell, no package manager):
//! the static binary at `/usr/local/bin/<binary>`, `/etc/passwd` and `/etc/group` with
//! `nonroot` (65532), `/etc/nsswitch.conf`, the CA bundle, `/tmp` and `/home/nonroot`. Its
//! config runs the binary as `65532:65532` with `SSL_CERT_FILE` set.
//!
//! Reproducible: tar entries are sorted, owned by numeric ids with no names, and dated at the
//! commit; gzip has no name or time in its header; JSON is canonical (`oci.rs`). Building twice
//! from the same binaries and commit gives the same digests, byte for byte.

use std::{collections::HashMap, io::Write as _, path::Path};

use anyhow::Context;
use flate2::{Compression, GzBuilder};
use oci_spec::image::{
    ANNOTATION_CREATED, ANNOTATION_DESCRIPTION, ANNOTATION_LICENSES, ANNOTATION_REVISION,
    ANNOTATION_SOURCE, ANNOTATION_TITLE, ANNOTATION_VERSION, ConfigBuilder, Descriptor,
    DescriptorBuilder, HistoryBuilder, ImageConfigurationBuilder, ImageIndexBuilder,
    ImageManifestBuilder, MediaType, Os, PlatformBuilder, RootFsBuilder,
};

use crate::{build::Arch, oci, oci::Layout, stamp::Stamp};

/// The CA bundle copied into every image (Debian's `ca-certificates`).
pub(crate) const CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
/// The user every image runs as, distroless's `nonroot`.
pub(crate) const NONROOT: u32 = 65532;

/// What an image says about its binary, from the binary's Cargo.toml.
pub(crate) struct Package<'a> {
    pub(crate) binary: &'a str,
    pub(crate) description: &'a str,
    pub(crate) license: &'a str,
}

/// What one image is made of.
pub(crate) struct ImageInput<'a> {
    pub(crate) package: &'a Package<'a>,
    pub(crate) arch: Arch,
    pub(crate) executable: &'a [u8],
    pub(crate) ca_bundle: &'a [u8],
}

/// The tag of the multi-arch index; each architecture's image is `<version>-<platform>`.
pub(crate) fn index_tag(stamp: &Stamp) -> String {
    stamp.version.clone()
}

pub(crate) fn platform_tag(stamp: &Stamp, arch: Arch) -> String {
    format!("{}-{}", stamp.version, arch.platform())
}

/// Writes the image of `input` into `layout`, names it `<version>-<platform>`, and returns its
/// manifest's descriptor with the platform set (for the index).
pub(crate) fn write_image(
    layout: &Layout,
    input: &ImageInput<'_>,
    stamp: &Stamp,
) -> anyhow::Result<Descriptor> {
    let tar = layer_tar(input, stamp.epoch)?;
    let diff_id = oci::sha256(&tar);
    let mut gz = GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), Compression::best());
    gz.write_all(&tar)?;
    let layer = layout.put_blob(MediaType::ImageLayerGzip, &gz.finish()?)?;

    let created = stamp.created()?;
    let annotations = annotations(input.package, stamp)?;
    let entrypoint = format!("/usr/local/bin/{}", input.package.binary);
    let config = ConfigBuilder::default()
        .user(format!("{NONROOT}:{NONROOT}"))
        .entrypoint(vec![entrypoint.clone()])
        .env(vec![
            "PATH=/usr/local/bin".to_owned(),
            format!("SSL_CERT_FILE={CA_BUNDLE}"),
        ])
        .working_dir("/")
        .labels(annotations.clone())
        .build()?;
    let configuration = ImageConfigurationBuilder::default()
        .created(created.clone())
        .architecture(input.arch.oci())
        .os(Os::Linux)
        .config(config)
        .rootfs(
            RootFsBuilder::default()
                .typ("layers")
                .diff_ids(vec![diff_id.to_string()])
                .build()?,
        )
        .history(vec![
            HistoryBuilder::default()
                .created(created)
                .created_by(format!("cargo xtask image: {entrypoint}"))
                .build()?,
        ])
        .build()?;
    let config = layout.put_json(MediaType::ImageConfig, &configuration)?;
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(config)
        .layers(vec![layer])
        .annotations(annotations)
        .build()?;
    let descriptor = layout.put_json(MediaType::ImageManifest, &manifest)?;
    layout.set_ref(&platform_tag(stamp, input.arch), &descriptor)?;
    Ok(DescriptorBuilder::default()
        .media_type(MediaType::ImageManifest)
        .digest(descriptor.digest().clone())
        .size(descriptor.size())
        .platform(
            PlatformBuilder::default()
                .architecture(input.arch.oci())
                .os(Os::Linux)
                .build()?,
        )
        .build()?)
}

/// Writes the multi-arch index over `images` and names it `<version>`.
pub(crate) fn write_index(
    layout: &Layout,
    package: &Package<'_>,
    images: Vec<Descriptor>,
    stamp: &Stamp,
) -> anyhow::Result<Descriptor> {
    let index = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(images)
        .annotations(annotations(package, stamp)?)
        .build()?;
    let descriptor = layout.put_json(MediaType::ImageIndex, &index)?;
    layout.set_ref(&index_tag(stamp), &descriptor)?;
    Ok(descriptor)
}

/// The standard OCI annotations (and config labels) of an image.
fn annotations(package: &Package<'_>, stamp: &Stamp) -> anyhow::Result<HashMap<String, String>> {
    Ok([
        (ANNOTATION_TITLE, package.binary.to_owned()),
        (ANNOTATION_DESCRIPTION, package.description.to_owned()),
        (ANNOTATION_LICENSES, package.license.to_owned()),
        (ANNOTATION_SOURCE, stamp.source.clone()),
        (ANNOTATION_REVISION, stamp.revision.clone()),
        (ANNOTATION_VERSION, stamp.version.clone()),
        (ANNOTATION_CREATED, stamp.created()?),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect())
}

/// One entry of the layer: a path (no leading `/`), its mode and owner, and file bytes or
/// `None` for a folder.
type Entry<'a> = (&'a str, u32, u32, Option<&'a [u8]>);

const PASSWD: &str = "root:x:0:0:root:/root:/sbin/nologin\n\
                      nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n\
                      nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n";
const GROUP: &str = "root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n";
/// musl itself reads only /etc/hosts and /etc/resolv.conf (the kubelet mounts both); this file
/// says the same to any other reader, as distroless's does.
const NSSWITCH: &str = "hosts: files dns\n";

/// The uncompressed layer: a tar stream whose bytes depend only on the inputs and `mtime`.
pub(crate) fn layer_tar(input: &ImageInput<'_>, mtime: i64) -> anyhow::Result<Vec<u8>> {
    let binary_path = format!("usr/local/bin/{}", input.package.binary);
    let mut entries: Vec<Entry<'_>> = vec![
        ("etc/", 0o755, 0, None),
        ("etc/group", 0o644, 0, Some(GROUP.as_bytes())),
        ("etc/nsswitch.conf", 0o644, 0, Some(NSSWITCH.as_bytes())),
        ("etc/passwd", 0o644, 0, Some(PASSWD.as_bytes())),
        ("etc/ssl/", 0o755, 0, None),
        ("etc/ssl/certs/", 0o755, 0, None),
        (
            "etc/ssl/certs/ca-certificates.crt",
            0o644,
            0,
            Some(input.ca_bundle),
        ),
        ("home/", 0o755, 0, None),
        ("home/nonroot/", 0o700, NONROOT, None),
        ("tmp/", 0o1777, 0, None),
        ("usr/", 0o755, 0, None),
        ("usr/local/", 0o755, 0, None),
        ("usr/local/bin/", 0o755, 0, None),
        (&binary_path, 0o755, 0, Some(input.executable)),
    ];
    entries.sort_by(|a, b| a.0.cmp(b.0));
    let mtime = u64::try_from(mtime).context("the commit time is before 1970")?;
    let mut tar = tar::Builder::new(Vec::new());
    for (path, mode, owner, contents) in entries {
        let mut header = tar::Header::new_ustar();
        header.set_path(path)?;
        header.set_mode(mode);
        header.set_uid(owner.into());
        header.set_gid(owner.into());
        header.set_mtime(mtime);
        match contents {
            Some(bytes) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(bytes.len() as u64);
                header.set_cksum();
                tar.append(&header, bytes)?;
            }
            None => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_size(0);
                header.set_cksum();
                tar.append(&header, std::io::empty())?;
            }
        }
    }
    Ok(tar.into_inner()?)
}

/// `cargo xtask image`: for each binary, a fresh layout under `out` with an image per
/// architecture in `arches` (from `cargo xtask build`'s output) and the index over them.
/// Returns each binary's index descriptor.
pub(crate) fn run(
    sh: &xshell::Shell,
    arches: &[Arch],
    binaries: &[&str],
    out: &Path,
    stamp: &Stamp,
) -> anyhow::Result<Vec<(String, Descriptor)>> {
    let ca_bundle = ca_bundle()?;
    let packages = crate::build::packages(sh)?;
    let mut made = Vec::new();
    for &binary in binaries {
        let found = packages
            .iter()
            .find(|p| p.name.as_str() == binary)
            .with_context(|| format!("no package named {binary} in the workspace"))?;
        let package = Package {
            binary,
            description: found.description.as_deref().unwrap_or(binary),
            license: found.license.as_deref().unwrap_or("NOASSERTION"),
        };
        let dir = layout_dir(out, binary);
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .with_context(|| format!("cannot clear {}", dir.display()))?;
        }
        let layout = Layout::create(&dir)?;
        let mut images = Vec::new();
        for &arch in arches {
            let path = crate::build::executable(sh, arch, binary);
            let executable = std::fs::read(&path).with_context(|| {
                format!(
                    "cannot read {}: run `cargo xtask build --arch {}` first",
                    path.display(),
                    arch.platform()
                )
            })?;
            crate::build::check_static(&executable)
                .map_err(|why| anyhow::anyhow!("{}: {why}", path.display()))?;
            let input = ImageInput {
                package: &package,
                arch,
                executable: &executable,
                ca_bundle: &ca_bundle,
            };
            let image = write_image(&layout, &input, stamp)?;
            eprintln!(
                "image: {binary} {}: {} ({})",
                arch.platform(),
                image.digest(),
                crate::mib(compressed_size(&layout, &image)?)
            );
            images.push(image);
        }
        let index = write_index(&layout, &package, images, stamp)?;
        eprintln!(
            "image: {binary}: {} -> {}:{}",
            index.digest(),
            dir.display(),
            index_tag(stamp)
        );
        made.push((binary.to_owned(), index));
    }
    Ok(made)
}

/// What pulling the image of `manifest` downloads: its manifest, config and layers.
pub(crate) fn compressed_size(layout: &Layout, manifest: &Descriptor) -> anyhow::Result<u64> {
    let parsed = oci_spec::image::ImageManifest::from_reader(layout.blob(manifest)?.as_slice())?;
    Ok(manifest.size()
        + parsed.config().size()
        + parsed.layers().iter().map(Descriptor::size).sum::<u64>())
}

/// The file at `path` (no leading `/`) in the layers of the image `manifest`.
pub(crate) fn file_in_image(
    layout: &Layout,
    manifest: &Descriptor,
    path: &str,
) -> anyhow::Result<Vec<u8>> {
    let parsed = oci_spec::image::ImageManifest::from_reader(layout.blob(manifest)?.as_slice())?;
    for layer in parsed.layers() {
        let gz = layout.blob(layer)?;
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(gz.as_slice()));
        for entry in archive.entries()? {
            let mut entry = entry?;
            if entry.path()?.as_os_str() == path {
                let mut bytes = Vec::new();
                std::io::Read::read_to_end(&mut entry, &mut bytes)?;
                return Ok(bytes);
            }
        }
    }
    anyhow::bail!("the image {} has no {path}", manifest.digest())
}

/// Reads the CA bundle the images carry.
pub(crate) fn ca_bundle() -> anyhow::Result<Vec<u8>> {
    std::fs::read(CA_BUNDLE).with_context(|| {
        format!(
            "cannot read {CA_BUNDLE}, the CA bundle the images carry (Debian's ca-certificates)"
        )
    })
}

/// The layout folder of `binary` under `out`.
pub(crate) fn layout_dir(out: &Path, binary: &str) -> std::path::PathBuf {
    out.join(binary)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PACKAGE: Package<'static> = Package {
        binary: "sentinel",
        description: "test",
        license: "Apache-2.0",
    };

    fn input(executable: &[u8]) -> ImageInput<'_> {
        ImageInput {
            package: &PACKAGE,
            arch: Arch::X86_64,
            executable,
            ca_bundle: b"-----BEGIN CERTIFICATE-----\n",
        }
    }

    #[test]
    fn the_layer_is_sorted_owned_and_dated() {
        let tar = layer_tar(&input(b"\x7fELF"), 1_700_000_000).unwrap();
        let mut archive = tar::Archive::new(tar.as_slice());
        let mut paths = Vec::new();
        for entry in archive.entries().unwrap() {
            let entry = entry.unwrap();
            let header = entry.header();
            let path = entry.path().unwrap().display().to_string();
            assert_eq!(header.mtime().unwrap(), 1_700_000_000, "{path}");
            assert_eq!(header.username().unwrap(), Some(""), "{path}");
            let expected_owner = if path == "home/nonroot/" { 65532 } else { 0 };
            assert_eq!(header.uid().unwrap(), expected_owner, "{path}");
            if path == "usr/local/bin/sentinel" {
                assert_eq!(header.mode().unwrap(), 0o755);
            }
            if path == "tmp/" {
                assert_eq!(header.mode().unwrap(), 0o1777);
            }
            paths.push(path);
        }
        let mut sorted = paths.clone();
        sorted.sort();
        assert_eq!(paths, sorted);
        assert!(!paths.iter().any(|p| p.contains("bin/sh")), "{paths:?}");
        assert_eq!(tar, layer_tar(&input(b"\x7fELF"), 1_700_000_000).unwrap());
        assert_ne!(tar, layer_tar(&input(b"\x7fELF"), 1_700_000_001).unwrap());
    }
}
