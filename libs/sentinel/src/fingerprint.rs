//! Which workload a pod belongs to, read from its name, and the fingerprint that identifies an
//! error across pods, replicas and restarts.
//!
//! A pod name is read as the first of these that fits (`S` is a character of Kubernetes'
//! generated-name alphabet `bcdfghjklmnpqrstvwxz2456789`):
//!
//! | shape | owner | workload |
//! |---|---|---|
//! | `<name>-<6-10 S>-<5 S>` | Deployment, through its ReplicaSet | `<name>` |
//! | `<name>-<8+ digits>-<5 S>` | CronJob, through its Job | `<name>` |
//! | `<name>-<n>` (no leading zero) | StatefulSet | `<name>` |
//! | `<name>-<5 S>` | Job or DaemonSet | `<name>` |
//! | anything else | a bare pod | the pod name |
//!
//! Upstream's rules take any `[a-z0-9]` for the suffixes and 8-10 characters for the hash; a
//! ReplicaSet hash is a `uint32` written in that alphabet, so it is 6-10 characters for all
//! but one in 10,000 values (a shorter one is read as a Job's or DaemonSet's pod, which still
//! groups the pods of one ReplicaSet). The alphabet has no vowels, 0, 1 or 3, which keeps
//! ordinary name segments (`proxy`, `v1`, `k8s` is too short) from being taken for hashes.
//! Part 2 resolves the real owner through `ownerReferences` before acting; the name is only
//! for grouping.

use sha2::{Digest, Sha256};

use crate::normalize;

/// The workload a pod belongs to, by its name.
pub fn workload(pod: &str) -> &str {
    let mut parts = pod.rsplitn(3, '-');
    let (Some(last), Some(middle)) = (parts.next(), parts.next()) else {
        return pod;
    };
    let safe = |s: &str| {
        s.bytes()
            .all(|b| b"bcdfghjklmnpqrstvwxz2456789".contains(&b))
    };
    if let Some(name) = parts.next().filter(|n| !n.is_empty()) {
        let hash = (6..=10).contains(&middle.len()) && safe(middle);
        let schedule = middle.len() >= 8 && middle.bytes().all(|b| b.is_ascii_digit());
        if last.len() == 5 && safe(last) && (hash || schedule) {
            return name;
        }
    }
    let name = &pod[..pod.len() - last.len() - 1];
    if name.is_empty() {
        return pod;
    }
    let ordinal =
        last.bytes().all(|b| b.is_ascii_digit()) && (last == "0" || !last.starts_with('0'));
    if ordinal || last.len() == 5 && safe(last) {
        return name;
    }
    pod
}

/// An error's identity: 16 hex digits of the SHA-256 of
/// `v<normaliser version>|<namespace>|<workload>|<container>|<normalised message>`. Only the
/// message is free text, and it comes last, so the `|` separators are unambiguous.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint(pub u64);

impl Fingerprint {
    /// The fingerprint of an error from `workload`'s `container` in `namespace`.
    pub fn new(namespace: &str, workload: &str, container: &str, normalized: &str) -> Self {
        let mut h = Sha256::new();
        h.update(b"v");
        h.update(itoa::Buffer::new().format(normalize::VERSION).as_bytes());
        for part in [namespace, workload, container, normalized] {
            h.update(b"|");
            h.update(part.as_bytes());
        }
        let digest = h.finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        Self(u64::from_be_bytes(first))
    }

    /// Reads the 16 hex digits [`Display`](std::fmt::Display) writes.
    pub fn parse(text: &str) -> Option<Self> {
        if text.len() != 16 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        u64::from_str_radix(text, 16).ok().map(Self)
    }
}

impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl serde::Serialize for Fingerprint {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests;
