//! Records the git commit the binaries are built from, for `--version` and the build-info log
//! line. A release build without `.git` sets `BULWARK_GIT_SHA` instead.

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=BULWARK_GIT_SHA");
    let top = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    // Rebuild when HEAD moves: HEAD itself changes on checkout, the branch ref on commit.
    let mut watch = vec![
        ".git/HEAD".to_owned(),
        ".git/index".to_owned(),
        ".git/packed-refs".to_owned(),
    ];
    if let Ok(head) = std::fs::read_to_string(top.join(".git/HEAD"))
        && let Some(r) = head.trim().strip_prefix("ref: ")
    {
        watch.push(format!(".git/{r}"));
    }
    for f in watch {
        if top.join(&f).exists() {
            println!("cargo:rerun-if-changed={}", top.join(f).display());
        }
    }
    #[allow(clippy::disallowed_methods)] // A build script, not runtime code.
    let sha = std::env::var("BULWARK_GIT_SHA")
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| {
            let out = Command::new("git")
                .args(["rev-parse", "--short=12", "HEAD"])
                .current_dir(&top)
                .output()
                .ok()?;
            let sha = String::from_utf8(out.stdout).ok()?.trim().to_owned();
            if !out.status.success() || sha.is_empty() {
                return None;
            }
            let dirty = Command::new("git")
                .args(["status", "--porcelain", "--untracked-files=no"])
                .current_dir(&top)
                .output()
                .is_ok_and(|o| !o.stdout.is_empty());
            Some(if dirty { format!("{sha}-dirty") } else { sha })
        });
    println!(
        "cargo:rustc-env=BULWARK_GIT_SHA={}",
        sha.as_deref().unwrap_or("unknown")
    );
}
