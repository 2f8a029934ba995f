//! The four PATCH flavours of the Kubernetes API, applied to plain JSON objects.
//!
//! JSON patch and merge patch come from the `json-patch` crate.
//! Strategic merge patch is implemented here for the list fields that matter to our binaries:
//! without a schema, the merge key of a list is chosen by the field's name, as the Kubernetes
//! types declare it (`containers` by `name`, `volumeMounts` by `mountPath`, ...).
//! Server-side apply is approximated by a strategic merge of the applied configuration.

use serde_json::{Map, Value};

use super::Error;

/// The PATCH flavour, chosen by the request's `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PatchKind {
    Json,
    Merge,
    Strategic,
    Apply,
}

const PATCH_TYPES: &str = "application/json-patch+json, application/merge-patch+json, \
                           application/strategic-merge-patch+json, application/apply-patch+yaml";

impl PatchKind {
    /// Maps a `Content-Type` header value to a patch flavour, ignoring parameters such as charset.
    pub(crate) fn from_content_type(content_type: Option<&str>) -> Result<Self, Error> {
        let mime = content_type
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim();
        match mime {
            "application/json-patch+json" => Ok(PatchKind::Json),
            "application/merge-patch+json" => Ok(PatchKind::Merge),
            "application/strategic-merge-patch+json" => Ok(PatchKind::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+json" => Ok(PatchKind::Apply),
            _ => Err(Error::UnsupportedMediaType {
                accepted: PATCH_TYPES,
            }),
        }
    }
}

/// Parses a patch body and applies it to a copy of `target`.
pub(crate) fn apply(kind: PatchKind, target: &Value, body: &[u8]) -> Result<Value, Error> {
    let mut doc = target.clone();
    match kind {
        PatchKind::Json => {
            let patch: json_patch::Patch = serde_json::from_slice(body)
                .map_err(|e| Error::BadRequest(format!("invalid json patch: {e}")))?;
            json_patch::patch(&mut doc, &patch.0).map_err(|e| unprocessable(&e.to_string()))?;
        }
        PatchKind::Merge => {
            let patch = parse_object(body, "merge patch")?;
            json_patch::merge(&mut doc, &patch);
        }
        PatchKind::Strategic => {
            let patch = parse_object(body, "strategic merge patch")?;
            strategic_merge(&mut doc, &patch)?;
        }
        PatchKind::Apply => {
            // YAML is a superset of JSON and kube-rs sends JSON; a real YAML body is refused
            // rather than misread.
            let patch = parse_object(body, "apply patch (this fake reads JSON bodies only)")?;
            strategic_merge(&mut doc, &patch)?;
        }
    }
    Ok(doc)
}

/// Applies a strategic merge patch in place.
///
/// Supported directives: `null` deletes a key, `$patch: delete` on a map or list element
/// deletes it, `$patch: replace` on a map replaces it, `{"$patch": "replace"}` as a list element
/// replaces the list, and `$deleteFromPrimitiveList/<field>` removes values from a primitive list.
/// `$setElementOrder` and `$retainKeys` are accepted and ignored.
pub(crate) fn strategic_merge(target: &mut Value, patch: &Value) -> Result<(), Error> {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return Ok(());
    };
    match patch.get("$patch").and_then(Value::as_str) {
        Some("replace") => {
            *target = Value::Object(without_directives(patch));
            return Ok(());
        }
        Some("delete") => {
            *target = Value::Object(Map::new());
            return Ok(());
        }
        Some("merge") | None => {}
        Some(other) => {
            return Err(Error::BadRequest(format!(
                "unknown patch directive {other:?}"
            )));
        }
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(target) = target else {
        return Ok(());
    };
    for (key, value) in patch {
        if let Some(field) = key.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(list)), Value::Array(remove)) = (target.get_mut(field), value)
            {
                list.retain(|v| !remove.contains(v));
            }
            continue;
        }
        if key.starts_with('$') {
            continue;
        }
        if value.is_null() || is_delete_directive(value) {
            target.remove(key);
            continue;
        }
        match value {
            Value::Object(_) => {
                strategic_merge(target.entry(key.clone()).or_insert(Value::Null), value)?
            }
            Value::Array(items) => {
                let merged = match target.remove(key) {
                    Some(Value::Array(existing)) => merge_list(key, existing, items)?,
                    _ => fresh_list(items)?,
                };
                target.insert(key.clone(), Value::Array(merged));
            }
            _ => {
                target.insert(key.clone(), value.clone());
            }
        }
    }
    Ok(())
}

/// How a list field merges, by field name, as the Kubernetes API types declare it.
enum ListStrategy {
    /// Elements are maps merged by this key.
    ByKey(&'static str),
    /// Elements are scalars, and the patch adds the ones that are missing.
    Union,
    /// The patch replaces the list.
    Replace,
}

fn strategy(field: &str, items: &[Value]) -> ListStrategy {
    match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "env"
        | "imagePullSecrets"
        | "resourceClaims" => ListStrategy::ByKey("name"),
        "volumeMounts" => ListStrategy::ByKey("mountPath"),
        "volumeDevices" => ListStrategy::ByKey("devicePath"),
        "hostAliases" => ListStrategy::ByKey("ip"),
        "conditions" => ListStrategy::ByKey("type"),
        "ownerReferences" => ListStrategy::ByKey("uid"),
        "topologySpreadConstraints" => ListStrategy::ByKey("topologyKey"),
        // Container ports merge by `containerPort`, service ports by `port`.
        "ports" if items.iter().any(|i| i.get("containerPort").is_some()) => {
            ListStrategy::ByKey("containerPort")
        }
        "ports" => ListStrategy::ByKey("port"),
        "finalizers" => ListStrategy::Union,
        _ => ListStrategy::Replace,
    }
}

fn merge_list(field: &str, mut existing: Vec<Value>, items: &[Value]) -> Result<Vec<Value>, Error> {
    if items.iter().any(is_replace_directive) {
        return fresh_list(items);
    }
    match strategy(field, items) {
        ListStrategy::Replace => fresh_list(items),
        ListStrategy::Union => {
            for item in items {
                if !existing.contains(item) {
                    existing.push(item.clone());
                }
            }
            Ok(existing)
        }
        ListStrategy::ByKey(merge_key) => {
            for item in items {
                let key = item.get(merge_key).filter(|k| !k.is_null()).ok_or_else(|| {
                    Error::BadRequest(format!(
                        "map in list {field:?} does not contain declared merge key {merge_key:?}"
                    ))
                })?;
                let position = existing.iter().position(|e| e.get(merge_key) == Some(key));
                match (position, is_delete_directive(item)) {
                    (Some(i), true) => {
                        existing.remove(i);
                    }
                    (None, true) => {}
                    (Some(i), false) => strategic_merge(&mut existing[i], item)?,
                    (None, false) => {
                        let mut added = Value::Object(Map::new());
                        strategic_merge(&mut added, item)?;
                        existing.push(added);
                    }
                }
            }
            Ok(existing)
        }
    }
}

/// A list that replaces whatever was there, with directives stripped from its elements.
fn fresh_list(items: &[Value]) -> Result<Vec<Value>, Error> {
    let mut out = Vec::with_capacity(items.len());
    for item in items
        .iter()
        .filter(|i| !is_replace_directive(i) && !is_delete_directive(i))
    {
        if item.is_object() {
            let mut clean = Value::Object(Map::new());
            strategic_merge(&mut clean, item)?;
            out.push(clean);
        } else {
            out.push(item.clone());
        }
    }
    Ok(out)
}

fn is_delete_directive(value: &Value) -> bool {
    value.get("$patch").and_then(Value::as_str) == Some("delete")
}

fn is_replace_directive(value: &Value) -> bool {
    value.as_object().is_some_and(|m| m.len() == 1)
        && value.get("$patch").and_then(Value::as_str) == Some("replace")
}

fn without_directives(map: &Map<String, Value>) -> Map<String, Value> {
    map.iter()
        .filter(|(k, _)| !k.starts_with('$'))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn parse_object(body: &[u8], what: &str) -> Result<Value, Error> {
    match serde_json::from_slice::<Value>(body) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(Error::BadRequest(format!(
            "invalid {what}: expected a JSON object"
        ))),
        Err(e) => Err(Error::BadRequest(format!("invalid {what}: {e}"))),
    }
}

/// A patch that parsed but could not be applied, which Kubernetes reports as 422.
fn unprocessable(message: &str) -> Error {
    Error::Unprocessable(message.to_owned())
}
