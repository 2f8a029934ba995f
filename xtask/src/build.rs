//! `cargo xtask build [--arch x86_64|aarch64]`: release builds of the four binaries for the
//! static musl targets, each then read as an ELF file and refused unless it is static (no
//! program interpreter, no needed shared library), with its size.
//!
//! It installs what it can when missing (the rustup target; Debian's `musl-tools` for the C
//! code of ring and zstd) and says so. aarch64 needs `cargo-zigbuild` with `zig`
//! (`../shared/research/feasibility.md`); without them it stops with the reason, and
//! `--arch x86_64` builds what can be built.

use std::path::PathBuf;

use anyhow::Context;
use object::read::elf::{Dyn, ElfFile64, ProgramHeader};
use xshell::{Shell, cmd};

use crate::{find_program, prereqs};

/// The binaries a release ships.
pub(crate) const BINARIES: [&str; 4] = [
    "injector-webhook",
    "injector-sidecar",
    "sentinel",
    "archiver",
];

/// A CPU architecture the images are built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arch {
    X86_64,
    Aarch64,
}

impl Arch {
    pub(crate) fn parse(name: &str) -> anyhow::Result<Self> {
        match name {
            "x86_64" | "amd64" => Ok(Arch::X86_64),
            "aarch64" | "arm64" => Ok(Arch::Aarch64),
            other => {
                anyhow::bail!("unknown architecture {other:?}: x86_64 (amd64) or aarch64 (arm64)")
            }
        }
    }

    /// The architecture's name in OCI and Docker platforms.
    pub(crate) fn platform(self) -> &'static str {
        match self {
            Arch::X86_64 => "amd64",
            Arch::Aarch64 => "arm64",
        }
    }

    pub(crate) fn oci(self) -> oci_spec::image::Arch {
        match self {
            Arch::X86_64 => oci_spec::image::Arch::Amd64,
            Arch::Aarch64 => oci_spec::image::Arch::ARM64,
        }
    }

    pub(crate) fn triple(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64-unknown-linux-musl",
            Arch::Aarch64 => "aarch64-unknown-linux-musl",
        }
    }
}

/// Where cargo puts builds for the child processes of `sh`.
pub(crate) fn target_dir(sh: &Shell) -> PathBuf {
    sh.var("CARGO_TARGET_DIR")
        .map_or_else(|_| crate::project_root().join("target"), PathBuf::from)
}

/// The release executable of `binary` for `arch`.
pub(crate) fn executable(sh: &Shell, arch: Arch, binary: &str) -> PathBuf {
    target_dir(sh)
        .join(arch.triple())
        .join("release")
        .join(binary)
}

/// The workspace's own packages, as `cargo metadata` reads their Cargo.toml files.
pub(crate) fn packages(sh: &Shell) -> anyhow::Result<Vec<cargo_metadata::Package>> {
    let metadata = cargo_metadata::MetadataCommand::new()
        .current_dir(sh.current_dir())
        .no_deps()
        .exec()
        .context("cargo metadata failed")?;
    Ok(metadata.packages)
}

/// Builds the four binaries for each of `arches`, checks each is static, and prints a line each.
///
/// The four are always built by one cargo command per architecture, so that features are
/// unified across them exactly as in a release (the SBOM resolves them the same way).
pub(crate) fn run(sh: &Shell, arches: &[Arch]) -> anyhow::Result<()> {
    for &arch in arches {
        let triple = arch.triple();
        ensure_target(sh, triple)?;
        let packages: Vec<String> = BINARIES
            .iter()
            .flat_map(|b| ["-p".to_owned(), (*b).to_owned()])
            .collect();
        match arch {
            Arch::X86_64 => {
                if find_program("musl-gcc").is_none() {
                    eprintln!(
                        "build: installing musl-tools (musl-gcc builds the C code of ring and zstd)"
                    );
                    prereqs::apt_install(sh, &["musl-tools"])?;
                }
                eprintln!(
                    "build: cargo build --release --target {triple} for {}",
                    BINARIES.join(", ")
                );
                cmd!(
                    sh,
                    "cargo build --release --locked --target {triple} {packages...}"
                )
                .env("CC_x86_64_unknown_linux_musl", "musl-gcc")
                .run()
                .with_context(|| format!("the {triple} build failed"))?;
            }
            Arch::Aarch64 => {
                if find_program("cargo-zigbuild").is_none() || !has_zig(sh) {
                    anyhow::bail!(
                        "aarch64 needs cargo-zigbuild and zig (cargo install cargo-zigbuild; pip install ziglang), which this machine lacks: build x86_64 alone with --arch x86_64"
                    );
                }
                eprintln!(
                    "build: cargo zigbuild --release --target {triple} for {}",
                    BINARIES.join(", ")
                );
                cmd!(
                    sh,
                    "cargo zigbuild --release --locked --target {triple} {packages...}"
                )
                .run()
                .with_context(|| format!("the {triple} build failed"))?;
            }
        }
        for name in BINARIES {
            let path = executable(sh, arch, name);
            let data =
                std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
            check_static(&data).map_err(|why| anyhow::anyhow!("{}: {why}", path.display()))?;
            eprintln!(
                "build: {name} {triple}: static, {}",
                crate::mib(data.len() as u64)
            );
        }
    }
    Ok(())
}

/// Adds the rustup target `triple` when it is missing.
fn ensure_target(sh: &Shell, triple: &str) -> anyhow::Result<()> {
    let installed = cmd!(sh, "rustup target list --installed")
        .quiet()
        .read()
        .context("rustup is needed to add the musl targets")?;
    if installed.lines().any(|line| line.trim() == triple) {
        return Ok(());
    }
    eprintln!("build: rustup target add {triple}");
    cmd!(sh, "rustup target add {triple}")
        .run()
        .with_context(|| format!("the Rust standard library for {triple} cannot be had"))
}

/// `Ok` when `data` is a static 64-bit ELF executable: no `PT_INTERP` program header (a
/// dynamic loader to start it) and no `DT_NEEDED` entry (a shared library to load).
pub(crate) fn check_static(data: &[u8]) -> Result<(), String> {
    let elf = ElfFile64::<object::Endianness>::parse(data)
        .map_err(|e| format!("not a 64-bit ELF file: {e}"))?;
    let endian = elf.endian();
    for header in elf.elf_program_headers() {
        if header.p_type(endian) == object::elf::PT_INTERP {
            return Err("dynamically linked: it names a program interpreter".to_owned());
        }
        let dynamic = header
            .dynamic(endian, data)
            .map_err(|e| format!("unreadable dynamic segment: {e}"))?;
        if dynamic
            .unwrap_or_default()
            .iter()
            .any(|entry| entry.d_tag(endian) == object::elf::DT_NEEDED)
        {
            return Err("dynamically linked: it needs shared libraries".to_owned());
        }
    }
    Ok(())
}

/// Whether cargo-zigbuild can find zig: on PATH, or as the `ziglang` Python package.
pub(crate) fn has_zig(sh: &Shell) -> bool {
    find_program("zig").is_some()
        || cmd!(sh, "python3 -c 'import ziglang'")
            .quiet()
            .ignore_stderr()
            .run()
            .is_ok()
}

#[cfg(test)]
mod tests {
    use super::check_static;

    #[test]
    fn dynamic_executables_are_refused() {
        // The test binary itself is linked against the C library.
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let error = check_static(&me).unwrap_err();
        assert!(error.starts_with("dynamically linked"), "{error}");
        assert!(
            check_static(b"#!/bin/sh\n")
                .unwrap_err()
                .starts_with("not a 64-bit ELF")
        );
    }

    #[test]
    fn a_static_executable_passes() {
        // A static executable made here with the system's C compiler, when there is one.
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("hello.c");
        std::fs::write(&source, "int main(void) { return 0; }\n").unwrap();
        let out = dir.path().join("hello");
        let made = std::process::Command::new("cc")
            .args(["-static", "-o"])
            .arg(&out)
            .arg(&source)
            .status();
        match made {
            Ok(status) if status.success() => {
                check_static(&std::fs::read(&out).unwrap()).unwrap();
            }
            _ => panic!("cc -static is needed for this test (gcc and libc6-dev)"),
        }
    }
}
