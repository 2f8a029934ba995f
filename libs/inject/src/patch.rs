//! RFC 6902 JSON Patch as the webhook emits it: a list of typed `add` operations at RFC 6901
//! pointers, serialised once, into the AdmissionReview response.
//!
//! Only `add` is ever needed, and it is only ever aimed at a member that is absent, at the end
//! of an array (`/-`) or at an array index: replacing a whole map or array would drop what the
//! pod or an earlier webhook put there (the bug of 1Password/kubernetes-secrets-injector#51).
//! The one scalar it may replace is an annotation of ours (the marker and the spec).

use serde::{Serialize, Serializer};

use crate::memo::Json;
use crate::objects::{Volume, VolumeMount};

/// A JSON Patch document.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Patch<'a>(Vec<Operation<'a>>);

/// One JSON Patch operation.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Operation<'a> {
    /// Adds `value` at `path`: a new member, an array element, or `-` for the end.
    Add { path: String, value: Value<'a> },
}

/// What an operation adds.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Value<'a> {
    Bool(bool),
    /// A new `metadata.annotations`.
    Annotations(Annotations),
    Volume(Volume<'a>),
    Volumes(Vec<Volume<'a>>),
    Mount(VolumeMount<'static>),
    Mounts([VolumeMount<'static>; 1]),
    /// A value serialised before, such as a keeper container.
    Json(Json),
    /// An array of values serialised before.
    Jsons(Vec<Json>),
}

/// Annotations as a JSON object, in the order given, their values serialised before.
#[derive(Debug, Clone, PartialEq)]
pub struct Annotations(pub Vec<(&'static str, Json)>);

impl Serialize for Annotations {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}

impl<'a> Patch<'a> {
    /// An empty patch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `value` at the pointer of `tokens`.
    pub(crate) fn add(&mut self, tokens: &[&str], value: Value<'a>) {
        self.0.push(Operation::Add {
            path: pointer(tokens),
            value,
        });
    }

    /// Adds `value` at the end of the array at `tokens`.
    pub(crate) fn append(&mut self, tokens: &[&str], value: Value<'a>) {
        let mut path = pointer(tokens);
        path.push_str("/-");
        self.0.push(Operation::Add { path, value });
    }

    /// Whether there are no operations.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The number of operations.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The operations in order.
    pub fn operations(&self) -> &[Operation<'a>] {
        &self.0
    }

    /// The patch document as JSON text.
    pub fn to_json(&self) -> Vec<u8> {
        // Every value here is a plain struct, a string or a map with string keys, which
        // serde_json always serialises. A pod's patch is a few KiB.
        let mut out = Vec::with_capacity(4096);
        match serde_json::to_writer(&mut out, self) {
            Ok(()) => out,
            Err(_) => b"[]".to_vec(),
        }
    }
}

/// The JSON pointer of `tokens`, each escaped as RFC 6901 says (`~` as `~0`, `/` as `~1`).
pub fn pointer(tokens: &[&str]) -> String {
    let mut out = String::with_capacity(tokens.iter().map(|t| t.len() + 1).sum());
    for token in tokens {
        out.push('/');
        let mut rest = *token;
        while let Some(at) = rest.bytes().position(|b| b == b'~' || b == b'/') {
            out.push_str(&rest[..at]);
            out.push_str(if rest.as_bytes()[at] == b'~' {
                "~0"
            } else {
                "~1"
            });
            rest = &rest[at + 1..];
        }
        out.push_str(rest);
    }
    out
}

#[cfg(test)]
mod tests;
