//! The step runner stops at the first failure and names it.

use super::*;

fn ok(_: &Shell) -> anyhow::Result<()> {
    Ok(())
}

fn broken(_: &Shell) -> anyhow::Result<()> {
    anyhow::bail!("exit status 101")
}

#[test]
fn steps_stop_at_the_first_failure_and_name_it() {
    let sh = Shell::new().unwrap();
    let steps = [
        Step {
            name: "first",
            run: ok,
        },
        Step {
            name: "second",
            run: broken,
        },
        Step {
            name: "third",
            run: |_| panic!("ran after a failed step"),
        },
    ];
    let err = run_steps(&sh, &steps).unwrap_err();
    assert_eq!(
        format!("{err:#}"),
        "ci step `second` failed: exit status 101"
    );

    let timings = run_steps(&sh, &steps[..1]).unwrap();
    assert_eq!(
        timings.iter().map(|(name, _)| *name).collect::<Vec<_>>(),
        ["first"]
    );
}

#[test]
fn ci_steps_are_unique_and_start_with_prereqs() {
    let names: Vec<&str> = STEPS.iter().map(|step| step.name).collect();
    assert_eq!(names.first(), Some(&"prereqs"));
    let mut unique = names.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), names.len(), "{names:?}");
}
