//! `cargo xtask sbom`: a CycloneDX 1.5 SBOM per binary and architecture, listing exactly the
//! crates linked into that binary, stored beside its image as an OCI referrer artifact.
//!
//! "Exactly the crates linked" is what cargo resolves for the release build: `cargo tree` for
//! the four binaries together (as `cargo xtask build` builds them, so features unify the same
//! way), for the target triple, following normal edges only: build-dependencies,
//! dev-dependencies and proc-macros run on the build machine and are not in the binary. Each
//! component carries its license expression, package URL, the registry checksum from
//! Cargo.lock and its repository.
//!
//! The release's check reads the other way round: every crate whose source path the binary
//! itself carries (panic locations) must be listed (`crates_in_executable`).

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Context;
use oci_spec::image::{
    ANNOTATION_CREATED, Descriptor, ImageManifest, ImageManifestBuilder, MediaType,
};
use serde::Serialize;
use xshell::{Shell, cmd};

use crate::{build::Arch, build::BINARIES, oci, oci::Layout, stamp::Stamp};

/// The media type of a CycloneDX JSON document, as an OCI artifact type.
pub(crate) const CYCLONEDX: &str = "application/vnd.cyclonedx+json";

/// A crate in one binary's dependency graph.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Crate {
    pub(crate) name: String,
    pub(crate) version: String,
    /// A crate of this workspace (a path dependency), not one from the registry.
    pub(crate) local: bool,
    pub(crate) license: Option<String>,
}

impl Crate {
    pub(crate) fn purl(&self) -> String {
        format!("pkg:cargo/{}@{}", self.name, self.version)
    }
}

/// The resolved graph of each binary: its crates and who depends on whom.
#[derive(Debug, Default)]
pub(crate) struct Graph {
    pub(crate) crates: BTreeSet<Crate>,
    pub(crate) edges: BTreeMap<String, BTreeSet<String>>,
    pub(crate) root: Option<Crate>,
}

/// Runs `cargo tree` for `arch` and returns each binary's graph.
pub(crate) fn resolve(sh: &Shell, arch: Arch) -> anyhow::Result<BTreeMap<String, Graph>> {
    let triple = arch.triple();
    let packages: Vec<String> = BINARIES
        .iter()
        .flat_map(|b| ["-p".to_owned(), (*b).to_owned()])
        .collect();
    let format = "{p}|{l}";
    let tree = cmd!(
        sh,
        "cargo tree --locked --target {triple} -e normal,no-proc-macro --prefix depth --no-dedupe --format {format} {packages...}"
    )
    .quiet()
    .read()
    .context("cargo tree failed")?;
    parse_tree(&tree)
}

/// Parses `cargo tree --prefix depth --format '{p}|{l}'` for several roots.
pub(crate) fn parse_tree(tree: &str) -> anyhow::Result<BTreeMap<String, Graph>> {
    let mut graphs = BTreeMap::new();
    let mut current: Option<(String, Graph)> = None;
    let mut stack: Vec<String> = Vec::new();
    for line in tree.lines().filter(|l| !l.trim().is_empty()) {
        let digits = line.bytes().take_while(u8::is_ascii_digit).count();
        let depth: usize = line[..digits]
            .parse()
            .with_context(|| format!("unexpected cargo tree line {line:?}"))?;
        let (package, license) = line[digits..]
            .split_once('|')
            .with_context(|| format!("unexpected cargo tree line {line:?}"))?;
        let krate = parse_package(package, license)?;
        let purl = krate.purl();
        if depth == 0 {
            if let Some((name, graph)) = current.take() {
                graphs.insert(name, graph);
            }
            stack.clear();
            let graph = Graph {
                root: Some(krate.clone()),
                ..Graph::default()
            };
            current = Some((krate.name.clone(), graph));
        } else {
            let (_, graph) = current.as_mut().context("cargo tree output has no root")?;
            stack.truncate(depth);
            let parent = stack
                .last()
                .with_context(|| format!("cargo tree line {line:?} has no parent"))?;
            graph
                .edges
                .entry(parent.clone())
                .or_default()
                .insert(purl.clone());
            graph.crates.insert(krate);
        }
        stack.push(purl);
    }
    if let Some((name, graph)) = current {
        graphs.insert(name, graph);
    }
    Ok(graphs)
}

/// `name v1.2.3` or `name v1.2.3 (/path/to/it)`.
fn parse_package(package: &str, license: &str) -> anyhow::Result<Crate> {
    let mut words = package.split(' ');
    let (Some(name), Some(version)) = (words.next(), words.next()) else {
        anyhow::bail!("unexpected cargo tree package {package:?}");
    };
    let version = version
        .strip_prefix('v')
        .with_context(|| format!("unexpected cargo tree version in {package:?}"))?;
    let rest: Vec<&str> = words.collect();
    let local = rest.iter().any(|w| w.starts_with("(/"));
    Ok(Crate {
        name: name.to_owned(),
        version: version.to_owned(),
        local,
        license: Some(license.trim())
            .filter(|l| !l.is_empty())
            .map(str::to_owned),
    })
}

/// The registry checksum of every locked package, keyed by `name@version`.
fn checksums() -> anyhow::Result<BTreeMap<String, String>> {
    let path = crate::project_root().join("Cargo.lock");
    let lock: toml::Table = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .parse()
        .context("Cargo.lock")?;
    let mut out = BTreeMap::new();
    for package in lock
        .get("package")
        .and_then(|p| p.as_array())
        .into_iter()
        .flatten()
    {
        let field = |k: &str| package.get(k).and_then(|v| v.as_str());
        if let (Some(name), Some(version), Some(sum)) =
            (field("name"), field("version"), field("checksum"))
        {
            out.insert(format!("{name}@{version}"), sum.to_owned());
        }
    }
    Ok(out)
}

// CycloneDX 1.5 JSON, only the parts we write (https://cyclonedx.org/docs/1.5/json/).

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Bom {
    bom_format: &'static str,
    spec_version: &'static str,
    serial_number: String,
    version: u32,
    metadata: Metadata,
    components: Vec<Component>,
    dependencies: Vec<Dependency>,
}

#[derive(Serialize)]
struct Metadata {
    timestamp: String,
    tools: Tools,
    component: Component,
    properties: Vec<Property>,
}

#[derive(Serialize)]
struct Tools {
    components: Vec<Component>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Component {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(rename = "bom-ref")]
    bom_ref: String,
    name: String,
    version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    licenses: Vec<License>,
    purl: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    hashes: Vec<Hash>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    external_references: Vec<Reference>,
}

#[derive(Serialize)]
struct License {
    expression: String,
}

#[derive(Serialize)]
struct Hash {
    alg: &'static str,
    content: String,
}

#[derive(Serialize)]
struct Reference {
    #[serde(rename = "type")]
    kind: &'static str,
    url: String,
}

#[derive(Serialize)]
struct Property {
    name: &'static str,
    value: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Dependency {
    #[serde(rename = "ref")]
    reference: String,
    depends_on: Vec<String>,
}

/// The CycloneDX document of one binary's `graph` for `arch`.
pub(crate) fn document(
    graph: &Graph,
    arch: Arch,
    stamp: &Stamp,
    checksums: &BTreeMap<String, String>,
) -> anyhow::Result<Vec<u8>> {
    let root = graph.root.as_ref().context("the graph has no root")?;
    let component = |krate: &Crate, kind: &'static str, scope: Option<&'static str>| {
        let key = format!("{}@{}", krate.name, krate.version);
        Component {
            kind,
            bom_ref: krate.purl(),
            name: krate.name.clone(),
            version: krate.version.clone(),
            scope,
            licenses: krate
                .license
                .iter()
                .map(|expression| License {
                    expression: expression.clone(),
                })
                .collect(),
            purl: krate.purl(),
            hashes: checksums
                .get(&key)
                .filter(|_| !krate.local)
                .map(|sum| Hash {
                    alg: "SHA-256",
                    content: sum.clone(),
                })
                .into_iter()
                .collect(),
            external_references: if krate.local {
                vec![Reference {
                    kind: "vcs",
                    url: stamp.source.clone(),
                }]
            } else {
                vec![Reference {
                    kind: "distribution",
                    url: format!(
                        "https://crates.io/api/v1/crates/{}/{}/download",
                        krate.name, krate.version
                    ),
                }]
            },
        }
    };
    let serial = oci::sha256(
        format!(
            "{}/{}/{}/{}",
            root.name,
            arch.triple(),
            stamp.revision,
            stamp.epoch
        )
        .as_bytes(),
    );
    let hex = serial.digest();
    let bom = Bom {
        bom_format: "CycloneDX",
        spec_version: "1.5",
        // A UUID derived from what the document describes, so that it is reproducible.
        serial_number: format!(
            "urn:uuid:{}-{}-5{}-8{}-{}",
            &hex[0..8],
            &hex[8..12],
            &hex[13..16],
            &hex[17..20],
            &hex[20..32]
        ),
        version: 1,
        metadata: Metadata {
            timestamp: stamp.created()?,
            tools: Tools {
                components: vec![Component {
                    kind: "application",
                    bom_ref: "bulwark-xtask-sbom".to_owned(),
                    name: "cargo xtask sbom".to_owned(),
                    version: stamp.version.clone(),
                    scope: None,
                    licenses: Vec::new(),
                    purl: format!("pkg:cargo/xtask@{}", stamp.version),
                    hashes: Vec::new(),
                    external_references: Vec::new(),
                }],
            },
            component: component(root, "application", None),
            properties: vec![
                Property {
                    name: "cdx:rustc:sbom:target:triple",
                    value: arch.triple().to_owned(),
                },
                Property {
                    name: "bulwark:revision",
                    value: stamp.revision.clone(),
                },
            ],
        },
        components: graph
            .crates
            .iter()
            .map(|krate| component(krate, "library", Some("required")))
            .collect(),
        dependencies: std::iter::once(root.purl())
            .chain(graph.crates.iter().map(Crate::purl))
            .map(|reference| Dependency {
                depends_on: graph
                    .edges
                    .get(&reference)
                    .map(|set| set.iter().cloned().collect())
                    .unwrap_or_default(),
                reference,
            })
            .collect(),
    };
    let mut bytes = serde_json::to_vec_pretty(&bom)?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// Stores `sbom` in `layout` as a referrer of `image` (an OCI 1.1 artifact manifest whose
/// `subject` is the image), named `sha256-<image digest>.sbom` as cosign names attached SBOMs.
pub(crate) fn attach(
    layout: &Layout,
    image: &Descriptor,
    sbom: &[u8],
    stamp: &Stamp,
) -> anyhow::Result<Descriptor> {
    let blob = layout.put_blob(MediaType::Other(CYCLONEDX.to_owned()), sbom)?;
    let empty = layout.put_blob(MediaType::EmptyJSON, b"{}")?;
    let subject = Descriptor::new(
        MediaType::ImageManifest,
        image.size(),
        image.digest().clone(),
    );
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .artifact_type(MediaType::Other(CYCLONEDX.to_owned()))
        .config(empty)
        .layers(vec![blob])
        .subject(subject)
        .annotations(std::collections::HashMap::from([(
            ANNOTATION_CREATED.to_owned(),
            stamp.created()?,
        )]))
        .build()?;
    let descriptor = layout.put_json(MediaType::ImageManifest, &manifest)?;
    layout.set_ref(&format!("{}.sbom", tag_of(image)), &descriptor)?;
    Ok(descriptor)
}

/// `sha256-<hex>`: how cosign turns a digest into a tag for what it attaches to it.
pub(crate) fn tag_of(descriptor: &Descriptor) -> String {
    format!("sha256-{}", descriptor.digest().digest())
}

/// The SBOM stored for `image`, read back through its referrer manifest.
pub(crate) fn attached(layout: &Layout, image: &Descriptor) -> anyhow::Result<Vec<u8>> {
    let referrer = layout.resolve(&format!("{}.sbom", tag_of(image)))?;
    let manifest = ImageManifest::from_reader(layout.blob(&referrer)?.as_slice())?;
    anyhow::ensure!(
        manifest.subject().as_ref().map(Descriptor::digest) == Some(image.digest()),
        "the SBOM referrer of {} names another subject",
        image.digest()
    );
    let layer = manifest
        .layers()
        .first()
        .context("the SBOM referrer has no layer")?;
    layout.blob(layer)
}

/// `cargo xtask sbom`: an SBOM for each binary's image of each architecture in its layout
/// under `out`, also written as `<out>/sbom/<binary>-<platform>.cdx.json`.
pub(crate) fn run(
    sh: &Shell,
    arches: &[Arch],
    binaries: &[&str],
    out: &std::path::Path,
    stamp: &Stamp,
) -> anyhow::Result<()> {
    let sums = checksums()?;
    let files = out.join("sbom");
    std::fs::create_dir_all(&files)
        .with_context(|| format!("cannot create {}", files.display()))?;
    for &arch in arches {
        let graphs = resolve(sh, arch)?;
        for &binary in binaries {
            let graph = graphs
                .get(binary)
                .with_context(|| format!("cargo tree did not list {binary}"))?;
            let layout = Layout::open(&crate::image::layout_dir(out, binary))
                .with_context(|| format!("no image of {binary}: run `cargo xtask image` first"))?;
            let image = layout.resolve(&crate::image::platform_tag(stamp, arch))?;
            let sbom = document(graph, arch, stamp, &sums)?;
            let file = files.join(format!("{binary}-{}.cdx.json", arch.platform()));
            std::fs::write(&file, &sbom)
                .with_context(|| format!("cannot write {}", file.display()))?;
            let referrer = attach(&layout, &image, &sbom, stamp)?;
            eprintln!(
                "sbom: {binary} {}: {} crates, {} -> {}",
                arch.platform(),
                graph.crates.len(),
                referrer.digest(),
                file.display()
            );
        }
    }
    Ok(())
}

/// Checks the SBOM attached to the image `image` of `binary`: a CycloneDX 1.5 document whose
/// components include every registry crate that the binary in the image's layer carries.
/// Returns how many of its crates the binary shows.
pub(crate) fn check_against_image(
    layout: &Layout,
    image: &Descriptor,
    binary: &str,
) -> anyhow::Result<usize> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Listed {
        bom_format: String,
        spec_version: String,
        components: Vec<Named>,
    }
    #[derive(serde::Deserialize)]
    struct Named {
        name: String,
        version: String,
    }
    let sbom = attached(layout, image)?;
    let listed: Listed = serde_json::from_slice(&sbom).context("the SBOM is not CycloneDX JSON")?;
    anyhow::ensure!(
        listed.bom_format == "CycloneDX" && listed.spec_version == "1.5",
        "the SBOM is {} {}, not CycloneDX 1.5",
        listed.bom_format,
        listed.spec_version
    );
    let listed: BTreeSet<(String, String)> = listed
        .components
        .into_iter()
        .map(|c| (c.name, c.version))
        .collect();
    let executable =
        crate::image::file_in_image(layout, image, &format!("usr/local/bin/{binary}"))?;
    let carried = crates_in_executable(&executable);
    let missing: Vec<String> = carried
        .difference(&listed)
        .map(|(n, v)| format!("{n} {v}"))
        .collect();
    anyhow::ensure!(
        missing.is_empty(),
        "the SBOM of {binary} ({}) does not list crates its binary carries: {}",
        image.digest(),
        missing.join(", ")
    );
    Ok(carried.len())
}

/// The registry crates (`name`, `version`) whose source paths `executable` carries: the files
/// of panic locations, which every crate with a panicking path compiles in.
pub(crate) fn crates_in_executable(executable: &[u8]) -> BTreeSet<(String, String)> {
    const MARK: &[u8] = b"/index.crates.io-";
    let mut found = BTreeSet::new();
    let mut rest = executable;
    while let Some(at) = find(rest, MARK) {
        rest = &rest[at + MARK.len()..];
        // `<hash>/<name>-<version>/`
        let Some(slash) = rest.iter().position(|&b| b == b'/') else {
            break;
        };
        let after = &rest[slash + 1..];
        let end = after
            .iter()
            .position(|&b| b == b'/' || b == 0 || !b.is_ascii_graphic())
            .unwrap_or(after.len());
        if let Ok(dir) = std::str::from_utf8(&after[..end])
            && let Some(pair) = split_name_version(dir)
        {
            found.insert(pair);
        }
    }
    found
}

/// `serde_json-1.0.154` -> (`serde_json`, `1.0.154`): the version starts at the first `-`
/// followed by something that parses as semver.
fn split_name_version(dir: &str) -> Option<(String, String)> {
    dir.match_indices('-').find_map(|(at, _)| {
        let version = &dir[at + 1..];
        cargo_metadata::semver::Version::parse(version)
            .ok()
            .map(|_| (dir[..at].to_owned(), version.to_owned()))
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TREE: &str = "\
0sentinel v0.1.0 (/w/bins/sentinel)|Apache-2.0
1anyhow v1.0.104|MIT OR Apache-2.0
1bulwark-app v0.1.0 (/w/libs/app)|Apache-2.0
2anyhow v1.0.104|MIT OR Apache-2.0
2tokio v1.54.1|MIT
3pin-project-lite v0.2.16|Apache-2.0 OR MIT

0archiver v0.1.0 (/w/bins/archiver)|Apache-2.0
1tokio v1.54.1|MIT
";

    #[test]
    fn the_tree_gives_each_binary_its_crates_and_edges() {
        let graphs = parse_tree(TREE).unwrap();
        let sentinel = &graphs["sentinel"];
        let names: Vec<&str> = sentinel.crates.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            ["anyhow", "bulwark-app", "pin-project-lite", "tokio"]
        );
        assert!(
            sentinel
                .crates
                .iter()
                .any(|c| c.name == "bulwark-app" && c.local)
        );
        assert_eq!(
            sentinel.edges["pkg:cargo/bulwark-app@0.1.0"],
            ["pkg:cargo/anyhow@1.0.104", "pkg:cargo/tokio@1.54.1"]
                .map(str::to_owned)
                .into()
        );
        assert_eq!(
            sentinel.edges["pkg:cargo/tokio@1.54.1"],
            ["pkg:cargo/pin-project-lite@0.2.16".to_owned()].into()
        );
        let archiver = &graphs["archiver"];
        assert_eq!(archiver.crates.len(), 1);
        assert!(parse_tree("1orphan v1.0.0|MIT\n").is_err());
    }

    #[test]
    fn crate_paths_are_read_out_of_executables() {
        let bytes = b"\0xx/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/serde_json-1.0.154/src/de.rs\0\
            /r/index.crates.io-1949cf8c6b5b557f/tokio-util-0.7.20/src/a.rs\
            /r/index.crates.io-1949cf8c6b5b557f/rustls-pki-types-1.0.0-rc.1/src/b.rs";
        let found: Vec<(String, String)> = crates_in_executable(bytes).into_iter().collect();
        let expected = [
            ("rustls-pki-types", "1.0.0-rc.1"),
            ("serde_json", "1.0.154"),
            ("tokio-util", "0.7.20"),
        ]
        .map(|(n, v)| (n.to_owned(), v.to_owned()));
        assert_eq!(found, expected);
    }
}
