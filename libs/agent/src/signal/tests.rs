//! Tests of finding and signalling the application's processes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::time::{Duration, Instant};

use bulwark_sidecar_spec::{Signal, SignalName};

use super::{Error, Process, parse_stat, send, targets};

fn fake_proc(entries: &[(i32, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (pid, stat) in entries {
        let p = dir.path().join(pid.to_string());
        std::fs::create_dir(&p).unwrap();
        std::fs::write(p.join("stat"), stat).unwrap();
    }
    std::fs::create_dir(dir.path().join("self")).unwrap();
    std::fs::write(dir.path().join("uptime"), "1 1").unwrap();
    dir
}

fn signal(process: Option<&str>) -> Signal {
    Signal {
        signal: SignalName::Hup,
        process: process.map(str::to_owned),
    }
}

#[test]
fn stat_names_may_hold_spaces_and_parentheses() {
    assert_eq!(
        parse_stat(42, "42 (my (odd) app) S 0 42 42 0 -1"),
        Some(Process {
            pid: 42,
            parent: 0,
            name: "my (odd) app".to_owned()
        })
    );
    assert_eq!(parse_stat(1, "garbage"), None);
}

#[test]
fn without_a_name_the_main_process_of_every_other_container() {
    let proc = fake_proc(&[
        (1, "1 (pause) S 0 1 1"),
        (7, "7 (nginx) S 0 7 7"),
        (8, "8 (nginx) S 7 7 7"),
        (12, "12 (injector-sidec) S 0 12 12"),
        (20, "20 (java) S 0 20 20"),
    ]);
    let found: Vec<i32> = targets(proc.path(), 12, &signal(None))
        .unwrap()
        .iter()
        .map(|p| p.pid)
        .collect();
    assert_eq!(found, [7, 20]);
}

#[test]
fn with_a_name_every_process_of_that_name() {
    let proc = fake_proc(&[
        (1, "1 (pause) S 0 1 1"),
        (7, "7 (nginx) S 0 7 7"),
        (8, "8 (nginx) S 7 7 7"),
        (9, "9 (a-very-long-pro) S 0 9 9"),
    ]);
    let names = |name| -> Vec<i32> {
        targets(proc.path(), 99, &signal(Some(name)))
            .unwrap()
            .iter()
            .map(|p| p.pid)
            .collect()
    };
    assert_eq!(names("nginx"), [7, 8]);
    // The kernel truncates names to 15 bytes.
    assert_eq!(names("a-very-long-process-name"), [9]);
    let err = targets(proc.path(), 99, &signal(Some("postgres"))).unwrap_err();
    assert!(
        matches!(err, Error::NoTarget(ref m) if m.contains("\"postgres\"")),
        "{err}"
    );
}

#[test]
fn no_visible_container_says_what_to_check() {
    let proc = fake_proc(&[(1, "1 (pause) S 0 1 1"), (5, "5 (me) S 0 5 5")]);
    let err = targets(proc.path(), 5, &signal(None)).unwrap_err();
    assert!(err.to_string().contains("shareProcessNamespace"), "{err}");
}

#[test]
fn a_real_process_is_signalled_by_name() {
    let mut child = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let own = i32::try_from(std::process::id()).unwrap();
    let sig = Signal {
        signal: SignalName::Usr1,
        process: Some("sleep".to_owned()),
    };
    // Other tests may run `sleep` too; only ours must be among the targets.
    let found = targets(Path::new("/proc"), own, &sig).unwrap();
    let pid = i32::try_from(child.id()).unwrap();
    assert!(found.iter().any(|p| p.pid == pid), "{found:?}");
    // Signal through a /proc that shows only our child.
    let dir = tempfile::tempdir().unwrap();
    let ours = dir.path().join(pid.to_string());
    std::fs::create_dir(&ours).unwrap();
    std::fs::copy(format!("/proc/{pid}/stat"), ours.join("stat")).unwrap();
    assert_eq!(send(dir.path(), own, &sig).unwrap(), 1);
    let deadline = Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "sleep was not signalled");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(
        status.signal(),
        Some(rustix::process::Signal::USR1.as_raw())
    );
}
