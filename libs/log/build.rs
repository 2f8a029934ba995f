//! Records the git commit the binaries are built from and its date, for `--version` and the
//! build-info log line. A release build without `.git` sets `BULWARK_GIT_SHA` instead, and
//! `SOURCE_DATE_EPOCH` (the reproducible-builds convention) sets the date. The date is the
//! commit's, not the clock's, so that the same commit builds the same bytes.

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=BULWARK_GIT_SHA");
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
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
    #[allow(clippy::disallowed_methods)] // A build script, not runtime code.
    let epoch = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok());
    let date = match epoch {
        // `date -u -d @EPOCH +%F`, without a date library in a build script.
        Some(secs) => Some(civil_date(secs.div_euclid(86_400))),
        None => Command::new("git")
            .args(["log", "-1", "--format=%cs"])
            .current_dir(&top)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty()),
    };
    println!(
        "cargo:rustc-env=BULWARK_BUILD_DATE={}",
        date.as_deref().unwrap_or("unknown")
    );
}

/// The `YYYY-MM-DD` of `days` since 1970-01-01 (Howard Hinnant's days-to-civil algorithm).
fn civil_date(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}
