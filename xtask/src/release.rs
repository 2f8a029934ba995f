//! `cargo xtask release`: build, image, sbom, sign and verify every binary for every
//! architecture, run each built binary (aarch64 under qemu-user-static), optionally push, write
//! the Kustomize component that pins the digests, and print a closing table.

use std::path::{Path, PathBuf};

use anyhow::Context;
use xshell::{Shell, cmd};

use crate::{
    args::Args, build, build::Arch, find_program, image, oci::Layout, prereqs, sbom, sign,
    stamp::Stamp,
};

pub(crate) fn run(sh: &Shell, args: &Args) -> anyhow::Result<()> {
    let stamp = Stamp::read(sh)?;
    let out = args.out(sh);
    let key = args
        .key_if_given()
        .cloned()
        .unwrap_or_else(|| out.join("key/cosign.key"));
    print_plan(args, &stamp, &out, &key);
    if args.dry_run {
        return Ok(());
    }
    if args.arches.contains(&Arch::Aarch64) {
        aarch64_tools(sh)?;
    }
    // The binaries' `--version` says what the images' annotations say, even if the work tree
    // changes while they build.
    let _sha = sh.push_env("BULWARK_GIT_SHA", stamp.short_revision());
    let _epoch = sh.push_env("SOURCE_DATE_EPOCH", stamp.epoch.to_string());
    build::run(sh, &args.arches)?;
    let indexes = image::run(sh, &args.arches, &args.binaries, &out, &stamp)?;
    sbom::run(sh, &args.arches, &args.binaries, &out, &stamp)?;
    if args.key_if_given().is_none() {
        let dir = key.parent().context("the key has no folder")?;
        if dir.exists() {
            std::fs::remove_dir_all(dir)
                .with_context(|| format!("cannot clear {}", dir.display()))?;
        }
        sign::keygen(dir)?;
    }
    sign::run(&key, &args.binaries, &out, &stamp)?;
    sign::verify(&key.with_extension("pub"), &args.binaries, &out, &stamp)?;
    for &arch in &args.arches {
        for &binary in &args.binaries {
            let version = run_version(sh, arch, binary)?;
            eprintln!("release: {binary} {}: {version}", arch.platform());
        }
    }
    if args.push {
        // A throwaway key's signatures mean nothing to anyone else: they stay local.
        let signatures = args.key_if_given().is_some();
        push(sh, &args.binaries, &out, &stamp, signatures)?;
    }
    let component = write_component(&out, &indexes, &stamp)?;
    eprintln!(
        "release: the digests are pinned in {} (a Kustomize component: production includes it)",
        component.display()
    );
    let table = table(&args.binaries, &args.arches, &out, &stamp)?;
    let notes = out.join("release-notes.md");
    std::fs::write(&notes, release_notes(&table, &stamp))
        .with_context(|| format!("cannot write {}", notes.display()))?;
    println!("\n{}", table.join("\n"));
    Ok(())
}

fn print_plan(args: &Args, stamp: &Stamp, out: &Path, key: &Path) {
    let arches: Vec<&str> = args.arches.iter().map(|a| a.platform()).collect();
    eprintln!(
        "release plan: {} {} ({}), {} for {}",
        stamp.version,
        stamp.revision,
        stamp.created().unwrap_or_default(),
        args.binaries.join(", "),
        arches.join(", ")
    );
    if stamp.revision.ends_with("-dirty") {
        eprintln!(
            "  (the work tree has uncommitted changes: the images say so in their revision, and \
             cannot be rebuilt from any commit)"
        );
    }
    let triples: Vec<&str> = args.arches.iter().map(|a| a.triple()).collect();
    eprintln!(
        "  1. build: cargo build --release for {} (aarch64 with cargo zigbuild)",
        triples.join(", ")
    );
    eprintln!(
        "  2. image: OCI layouts in {}/<binary>, tagged {} and {}-<arch>",
        out.display(),
        stamp.version,
        stamp.version
    );
    eprintln!("  3. sbom: CycloneDX 1.5 per binary and architecture, attached as referrers");
    if args.key_if_given().is_some() {
        eprintln!("  4. sign: cosign signatures with {}", key.display());
    } else {
        eprintln!(
            "  4. sign: cosign signatures with a new key pair in {}",
            key.display()
        );
    }
    eprintln!("  5. verify: every blob and signature against the public key");
    eprintln!("  6. run: each binary answers --version (aarch64 under qemu-aarch64-static)");
    if args.push {
        eprintln!(
            "  7. push: skopeo copy to {} (images, signatures, SBOMs)",
            stamp.registry
        );
    }
    eprintln!(
        "  8. pin: {}/kustomize/kustomization.yaml sets each image by digest",
        out.display()
    );
}

/// cargo-zigbuild and zig for the aarch64 build, qemu-user-static to run what it makes.
fn aarch64_tools(sh: &Shell) -> anyhow::Result<()> {
    if find_program("cargo-zigbuild").is_none() {
        eprintln!("release: cargo install --locked cargo-zigbuild (the aarch64 linker driver)");
        cmd!(sh, "cargo install --locked cargo-zigbuild")
            .run()
            .context("cannot install cargo-zigbuild")?;
    }
    if !crate::build::has_zig(sh) {
        eprintln!("release: pip install ziglang (zig, for cargo zigbuild)");
        let python = prereqs::venv_dir(&crate::home_dir()?).join("bin/python3");
        cmd!(sh, "{python} -m pip install --quiet ziglang")
            .run()
            .context("cannot install ziglang into the venv")?;
    }
    if find_program("qemu-aarch64-static").is_none() {
        eprintln!("release: installing qemu-user-static (runs the aarch64 binaries here)");
        prereqs::apt_install(sh, &["qemu-user-static"])?;
    }
    Ok(())
}

/// Runs the built `binary` for `arch` with `--version` and returns its answer.
pub(crate) fn run_version(sh: &Shell, arch: Arch, binary: &str) -> anyhow::Result<String> {
    let exe = build::executable(sh, arch, binary);
    let output = match arch {
        Arch::X86_64 => cmd!(sh, "{exe} --version").quiet().read(),
        Arch::Aarch64 => cmd!(sh, "qemu-aarch64-static {exe} --version")
            .quiet()
            .read(),
    }
    .with_context(|| format!("{} --version failed", exe.display()))?;
    anyhow::ensure!(
        output.starts_with(&format!("{binary} ")),
        "{} --version printed {output:?}",
        exe.display()
    );
    Ok(output)
}

/// Copies each layout to `<registry>/<binary>`: the multi-arch index with its images, then the
/// SBOM referrers and (when `signatures`) the signatures under their cosign tags. Digests are
/// kept (`--preserve-digests`): the pushed index is the one that was signed and pinned. A
/// registry on loopback is spoken to over plain HTTP, as Docker does by default.
pub(crate) fn push(
    sh: &Shell,
    binaries: &[&str],
    out: &Path,
    stamp: &Stamp,
    signatures: bool,
) -> anyhow::Result<()> {
    if find_program("skopeo").is_none() {
        prereqs::apt_install(sh, &["skopeo"])?;
    }
    for &binary in binaries {
        let dir = image::layout_dir(out, binary);
        let layout = Layout::open(&dir)?;
        let repository = stamp.repository(binary);
        let signed = if signatures {
            all_signatures(&layout)?
        } else {
            Vec::new()
        };
        for (name, _) in sign::signable(&layout)?.into_iter().chain(signed) {
            // Per-architecture tags stay local: the index carries the images.
            if name != image::index_tag(stamp) && !name.starts_with("sha256-") {
                continue;
            }
            let source = format!("oci:{}:{name}", dir.display());
            let target = format!("docker://{repository}:{name}");
            let tls = if loopback(&stamp.registry) {
                "--dest-tls-verify=false"
            } else {
                "--dest-tls-verify=true"
            };
            eprintln!("push: {target}");
            cmd!(
                sh,
                "skopeo copy --quiet --all --preserve-digests --retry-times 3 {tls} {source} {target}"
            )
            .run()
            .with_context(|| format!("cannot push {target}"))?;
        }
    }
    Ok(())
}

/// Whether `registry` (`host[:port][/path]`) is on this machine.
fn loopback(registry: &str) -> bool {
    let host = registry.split('/').next().unwrap_or_default();
    let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
    host == "localhost"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn all_signatures(layout: &Layout) -> anyhow::Result<Vec<(String, oci_spec::image::Descriptor)>> {
    Ok(layout
        .index()?
        .manifests()
        .iter()
        .filter_map(|d| Some((crate::oci::ref_name(d)?.to_owned(), d.clone())))
        .filter(|(name, _)| name.ends_with(".sig"))
        .collect())
}

/// A Kustomize component that sets every image to its multi-arch index by digest.
fn write_component(
    out: &Path,
    indexes: &[(String, oci_spec::image::Descriptor)],
    stamp: &Stamp,
) -> anyhow::Result<PathBuf> {
    let dir = out.join("kustomize");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut text = format!(
        "# Written by `cargo xtask release` for {} ({}): deploy these images by digest.\n\
         apiVersion: kustomize.config.k8s.io/v1alpha1\n\
         kind: Component\n\
         images:\n",
        stamp.version, stamp.revision
    );
    for (binary, index) in indexes {
        text.push_str(&format!(
            "  - name: {}\n    digest: {}\n",
            stamp.repository(binary),
            index.digest()
        ));
    }
    // The sidecar image the webhook injects is a string in its config, which `images` does
    // not reach: the same digest through the webhook's environment (as
    // manifests/components/release-images does).
    if let Some((binary, index)) = indexes.iter().find(|(b, _)| b == "injector-sidecar") {
        text.push_str(&format!(
            "patches:\n  - target:\n      kind: Deployment\n      name: injector-webhook\n    \
             patch: |-\n      - op: add\n        path: /spec/template/spec/containers/0/env/-\n        \
             value:\n          name: BULWARK_INJECTOR_WEBHOOK_DEFAULTS__IMAGE\n          \
             value: {}@{}\n",
            stamp.repository(binary),
            index.digest()
        ));
    }
    let path = dir.join("kustomization.yaml");
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// The closing table, as Markdown rows: binary, architecture, compressed size, digest.
fn table(
    binaries: &[&str],
    arches: &[Arch],
    out: &Path,
    stamp: &Stamp,
) -> anyhow::Result<Vec<String>> {
    let mut rows = vec![
        "| binary | arch | compressed | digest |".to_owned(),
        "|---|---|---:|---|".to_owned(),
    ];
    for &binary in binaries {
        let layout = Layout::open(&image::layout_dir(out, binary))?;
        for &arch in arches {
            let manifest = layout.resolve(&image::platform_tag(stamp, arch))?;
            let size = image::compressed_size(&layout, &manifest)?;
            rows.push(format!(
                "| {binary} | {} | {} | `{}` |",
                arch.platform(),
                crate::mib(size),
                manifest.digest()
            ));
        }
        let index = layout.resolve(&image::index_tag(stamp))?;
        rows.push(format!("| {binary} | index | | `{}` |", index.digest()));
    }
    Ok(rows)
}

fn release_notes(table: &[String], stamp: &Stamp) -> String {
    format!(
        "Images for {version} (commit {revision}), by digest. Each is signed keylessly by this \
         repository's release workflow; check one with\n\n\
         ```\n\
         cosign verify {registry}/sentinel@<digest> \\\n  \
         --certificate-identity {source}/.github/workflows/release.yml@refs/tags/v{version} \\\n  \
         --certificate-oidc-issuer https://token.actions.githubusercontent.com\n\
         ```\n\n{table}\n",
        version = stamp.version,
        revision = stamp.revision,
        registry = stamp.registry,
        source = stamp.source,
        table = table.join("\n")
    )
}
