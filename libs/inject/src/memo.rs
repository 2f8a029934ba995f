//! The JSON of values that repeat from pod to pod, written once and reused.
//!
//! A keeper container is a function of the webhook's defaults and a few per-pod choices
//! ([`KeeperKey`](crate::plan::KeeperKey)), which most pods of a cluster share, and the pods of
//! one workload share their [`SidecarSpec`](crate::SidecarSpec). Serialising them is most of
//! the cost of an admission (2.5 KiB of a 3.5 KiB patch, through serde_json's escaping a byte
//! at a time), so the [`Injector`](crate::Injector) keeps the JSON of the last few of each,
//! found by the typed value it was made from: the typed value stays the one source of truth,
//! and equal values always have equal JSON. Measured on the webhook benchmark's review (callgrind,
//! `--admit-only`, with the `base64` crate's encoder): 145.7k instructions per admission
//! without the memos, 95.3k with them; the webhook's throughput went from 0.47-0.49 of the bare
//! server's to 0.56-0.58 (`cargo bench -p injector-webhook`).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use serde::{Serialize, Serializer};
use serde_json::value::RawValue;

/// How many values a memo keeps: a cluster's pods share a few sets of keeper choices, and a
/// rollout admits the pods of one workload together.
const CAPACITY: usize = 64;

/// A JSON value serialised before, shared by the patches that carry it.
#[derive(Debug, Clone)]
pub struct Json(Arc<RawValue>);

impl Json {
    /// `value` as JSON. The values here (plain structs, strings, maps with string keys) always
    /// serialise; anything that would not is `null`.
    pub fn of(value: &impl Serialize) -> Self {
        Self(Arc::from(
            serde_json::value::to_raw_value(value).unwrap_or_default(),
        ))
    }

    /// The JSON text.
    pub fn get(&self) -> &str {
        self.0.get()
    }
}

impl PartialEq for Json {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl Serialize for Json {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        <RawValue as Serialize>::serialize(&self.0, serializer)
    }
}

/// The JSON of the last [`CAPACITY`] values made from distinct keys.
#[derive(Debug)]
pub(crate) struct JsonMemo<K> {
    entries: Mutex<VecDeque<(K, Json)>>,
}

impl<K: PartialEq + Clone> JsonMemo<K> {
    pub(crate) fn new() -> Self {
        Self {
            entries: Mutex::new(VecDeque::with_capacity(CAPACITY)),
        }
    }

    /// The JSON made from `key` by `make`, made now unless an equal key made it before.
    pub(crate) fn get(&self, key: &K, make: impl FnOnce(&K) -> Json) -> Json {
        // A panic while the lock was held cannot leave the entries inconsistent: each is
        // pushed whole.
        let lock = || self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, json)) = lock().iter().find(|(k, _)| k == key) {
            return json.clone();
        }
        let json = make(key);
        let mut entries = lock();
        if entries.len() == CAPACITY {
            entries.pop_back();
        }
        entries.push_front((key.clone(), json.clone()));
        json
    }

    /// How many values are kept.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests;
