//! Tests: which actions fit which owners, scale arithmetic at its bounds, and kubectl's
//! rollback: previous revision by number (not age), a chosen revision, a paused Deployment,
//! a template already in place, the hash label and the annotations.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use serde_json::json;

use super::*;

fn up(by: i32, max: Option<u32>) -> Action {
    Action::ScaleUp {
        replicas: Replicas::By(by),
        max_replicas: max,
    }
}

#[test]
fn actions_fit_their_owners() {
    assert!(fits(up(1, None), OwnerKind::Deployment).is_ok());
    assert!(fits(up(1, None), OwnerKind::StatefulSet).is_ok());
    let e = fits(up(1, None), OwnerKind::DaemonSet).unwrap_err();
    assert_eq!(e, "scale-up does not apply to a DaemonSet");
    assert!(
        fits(
            Action::Rollback { to_revision: None },
            OwnerKind::StatefulSet
        )
        .is_err()
    );
    assert!(fits(Action::RolloutRestart, OwnerKind::DaemonSet).is_ok());
    assert!(fits(Action::RolloutRestart, OwnerKind::Pod).is_err());
    assert!(
        fits(
            Action::RestartPod {
                grace_period_seconds: None
            },
            OwnerKind::Job
        )
        .is_ok()
    );
    assert!(fits(Action::DeleteStuckPods, OwnerKind::Deployment).is_ok());
    let e = fits(Action::DeleteStuckPods, OwnerKind::StatefulSet).unwrap_err();
    assert!(e.contains("two pods with one identity"), "{e}");
}

#[test]
fn scale_moves_one_way_within_bounds() {
    assert_eq!(scale(up(2, Some(5)), 2), Some(4));
    assert_eq!(scale(up(2, Some(5)), 4), Some(5));
    assert_eq!(scale(up(2, Some(5)), 5), None);
    // Above the maximum already: a scale-up does not lower it.
    assert_eq!(scale(up(1, Some(5)), 8), None);
    let to = |n| Action::ScaleUp {
        replicas: Replicas::To(n),
        max_replicas: None,
    };
    assert_eq!(scale(to(3), 1), Some(3));
    assert_eq!(scale(to(3), 4), None);
    let down = |by, min| Action::ScaleDown {
        replicas: Replicas::By(by),
        min_replicas: min,
    };
    assert_eq!(scale(down(-1, 1), 3), Some(2));
    assert_eq!(scale(down(-5, 2), 3), Some(2));
    assert_eq!(scale(down(-1, 2), 2), None);
    assert_eq!(scale(down(-1, 0), 1), Some(0));
    // Below the minimum already: a scale-down does not raise it.
    assert_eq!(scale(down(-1, 3), 1), None);
    assert_eq!(scale(Action::None, 1), None);
}

fn template(image: &str, hash: &str) -> serde_json::Value {
    json!({"metadata": {"labels": {"app": "api", "pod-template-hash": hash}},
           "spec": {"containers": [{"name": "app", "image": image}]}})
}

fn rs(name: &str, revision: &str, image: &str, age: &str) -> ReplicaSet {
    serde_json::from_value(json!({
        "metadata": {"name": name, "creationTimestamp": age, "annotations": {
            "deployment.kubernetes.io/revision": revision,
            "deployment.kubernetes.io/desired-replicas": "3",
            "kubectl.kubernetes.io/last-applied-configuration": "{}",
            "team": "payments"}},
        "spec": {"selector": {"matchLabels": {"app": "api"}}, "template": template(image, name)}
    }))
    .unwrap()
}

fn deployment(image: &str, paused: bool) -> Deployment {
    serde_json::from_value(json!({
        "metadata": {"name": "api"},
        "spec": {"paused": paused, "selector": {"matchLabels": {"app": "api"}},
                 "template": template(image, "x")}
    }))
    .unwrap()
}

#[test]
fn rollback_picks_the_previous_revision_by_number() {
    // Revision 10 is older by creation time than revision 9's ReplicaSet (it was re-used),
    // which upstream's creation-time ordering gets wrong.
    let sets = [
        rs("api-a", "9", "api:9", "2026-12-05T10:00:00Z"),
        rs("api-b", "10", "api:10", "2026-12-01T10:00:00Z"),
        rs("api-c", "8", "api:8", "2026-12-04T10:00:00Z"),
    ];
    let d = deployment("api:10", false);
    let Rollback::Apply {
        revision,
        template,
        annotations,
    } = rollback(&d, &sets, None).unwrap()
    else {
        panic!("expected a rollback");
    };
    assert_eq!(revision, 9);
    let t = serde_json::to_value(&template).unwrap();
    assert_eq!(t["spec"]["containers"][0]["image"], "api:9");
    assert_eq!(
        t["metadata"]["labels"],
        json!({"app": "api"}),
        "pod-template-hash stripped"
    );
    assert_eq!(
        annotations,
        BTreeMap::from([("team".to_owned(), "payments".to_owned())])
    );
    let Rollback::Apply { revision, .. } = rollback(&d, &sets, Some(8)).unwrap() else {
        panic!("expected a rollback");
    };
    assert_eq!(revision, 8);
}

#[test]
fn rollback_refusals_and_no_ops() {
    let sets = [
        rs("api-a", "1", "api:1", "2026-12-05T10:00:00Z"),
        rs("api-b", "2", "api:2", "2026-12-05T11:00:00Z"),
    ];
    let e = rollback(&deployment("api:2", true), &sets, None).unwrap_err();
    assert!(e.contains("paused"), "{e}");
    let e = rollback(&deployment("api:2", false), &sets, Some(7)).unwrap_err();
    assert!(e.contains("no revision 7"), "{e}");
    let e = rollback(&deployment("api:1", false), &sets[..1], None).unwrap_err();
    assert!(e.contains("no previous revision"), "{e}");
    // The Deployment already runs revision 1's template (only the hash label differs).
    assert_eq!(
        rollback(&deployment("api:1", false), &sets, None).unwrap(),
        Rollback::AlreadyThere { revision: 1 }
    );
}
