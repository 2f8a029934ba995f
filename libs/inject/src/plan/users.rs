//! Who runs what in an injected pod: the user the keeper containers run as, and so the owner
//! of the files, and the users of the containers that read the files or receive a signal.

use bulwark_sidecar_spec::FileMode;

use super::Target;
use crate::Defaults;
use crate::annotations::Owner;
use crate::pod::{Container as PodContainer, PodSpec};

/// Who runs what: the user of the keeper containers and of the containers that read the files.
pub(super) struct Users {
    /// What the keeper containers set as `runAsUser` and `runAsGroup` (`None` inherits).
    pub(super) run_as: (Option<i64>, Option<i64>),
    /// The user the keeper containers run as.
    uid: i64,
    /// The effective users of the mounted application containers (`None`: the image decides).
    readers: Vec<Option<i64>>,
    /// The effective users of the pod's regular containers, which a signal may reach.
    signalled: Vec<Option<i64>>,
    fs_group: bool,
}

impl Users {
    pub(super) fn of(
        spec: &PodSpec<'_>,
        owner: Option<Owner>,
        defaults: &Defaults,
        targets: &[Target],
    ) -> Self {
        let pod = spec.security_context.as_ref();
        let pod_uid = pod.and_then(|s| s.run_as_user);
        // The keeper containers run as the output owner if one is named; else as the pod's
        // user, so that the files belong to the application; else as the image's nonroot user.
        let (run_as, uid) = match (owner, pod_uid) {
            (Some(owner), _) => ((Some(owner.uid), owner.gid), owner.uid),
            (None, Some(uid)) if uid > 0 => ((None, None), uid),
            _ => (
                (Some(defaults.run_as_user), Some(defaults.run_as_group)),
                defaults.run_as_user,
            ),
        };
        let user = |c: &PodContainer<'_>| {
            c.security_context
                .as_ref()
                .and_then(|s| s.run_as_user)
                .or(pod_uid)
        };
        let init = spec.init_containers.as_deref().unwrap_or_default();
        let mut readers = Vec::new();
        for target in targets {
            match *target {
                Target::App(i) => readers.push(user(&spec.containers[i])),
                Target::Init(i) => readers.push(user(&init[i])),
            }
        }
        // Without a process name the sidecar signals the main process of every other
        // container, mounted or not.
        let signalled = spec.containers.iter().map(user).collect();
        Self {
            run_as,
            uid,
            readers,
            signalled,
            fs_group: pod.and_then(|s| s.fs_group).is_some(),
        }
    }

    /// `0400` when every reader is the owner, `0440` when the pod's `fsGroup` owns the volume
    /// (the kubelet sets it on the tmpfs and every container has it), `0444` otherwise: the
    /// volume is only mounted into this pod's selected containers, and upstream's fixed 0400
    /// left applications of other users unable to read (upstream defect 5).
    pub(super) fn default_mode(&self) -> FileMode {
        if self.readers.iter().all(|u| *u == Some(self.uid)) {
            FileMode::OWNER_READ
        } else if self.fs_group {
            FileMode::GROUP_READ
        } else {
            FileMode::ALL_READ
        }
    }

    /// Whether the sidecar may signal every mounted container without `CAP_KILL`: kill(2)
    /// needs the same user unless the sender has that capability.
    pub(super) fn can_signal(&self) -> bool {
        self.signalled.iter().all(|u| *u == Some(self.uid))
    }
}
