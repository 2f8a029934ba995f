//! The in-memory object store: objects, one global revision counter, and a bounded change history.
//!
//! The revision counter plays the part of etcd's revision: every committed write takes the next
//! value, which becomes the object's `metadata.resourceVersion`. The history keeps the last
//! changes so that watches can resume from a resourceVersion; once a change falls out of it,
//! resuming from before that change answers 410 Expired, like a compacted etcd.
//! All methods run under one mutex held by the caller, so each request is atomic.

use std::collections::{BTreeMap, VecDeque};

use serde_json::{Map, Value, json};

use super::Error;
use super::patch::{self, PatchKind};
use super::resources::{self, NAMESPACES, Resource};
use super::selector::Selectors;

/// Where an object lives: its resource's URL coordinates, namespace (empty when cluster-scoped) and name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Key {
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    namespace: String,
    name: String,
}

impl Key {
    pub(crate) fn new(resource: &'static Resource, namespace: &str, name: &str) -> Self {
        Key {
            group: resource.group,
            version: resource.version,
            plural: resource.plural,
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        }
    }

    fn is_of(&self, resource: &Resource) -> bool {
        self.group == resource.group
            && self.version == resource.version
            && self.plural == resource.plural
    }
}

/// One committed write, as watches replay it.
#[derive(Debug, Clone)]
pub(crate) struct Change {
    pub(crate) revision: u64,
    pub(crate) resource: &'static Resource,
    pub(crate) namespace: String,
    pub(crate) kind: ChangeKind,
    pub(crate) object: Value,
    /// The object before a modification, so that selector-filtered watches can tell
    /// an object entering or leaving the selection.
    pub(crate) previous: Option<Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChangeKind {
    Added,
    Modified,
    Deleted,
}

/// Which part of an object a write may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// The main resource: `status` is kept when the resource has a status subresource.
    Main,
    /// The `status` subresource: only `status` changes.
    Status,
    /// The test hooks: everything the caller sends is stored.
    Everything,
}

/// `DeleteOptions.preconditions`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Preconditions {
    pub(crate) uid: Option<String>,
    pub(crate) resource_version: Option<String>,
}

/// What a delete did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Deletion {
    /// The object is gone.
    Finished,
    /// The object has finalizers, so only its `deletionTimestamp` was set.
    Pending,
}

#[derive(Debug)]
pub(crate) struct Store {
    objects: BTreeMap<Key, Value>,
    revision: u64,
    history: VecDeque<Change>,
    history_limit: usize,
    /// Watches may resume from this revision or any later one; earlier changes are forgotten.
    compacted: u64,
    rng: u64,
}

impl Store {
    /// A store holding the namespaces of a fresh cluster.
    pub(crate) fn new(history_limit: usize, seed: u64) -> Self {
        let mut store = Store {
            objects: BTreeMap::new(),
            revision: 0,
            history: VecDeque::new(),
            history_limit: history_limit.max(1),
            compacted: 0,
            rng: seed,
        };
        for name in resources::SEED_NAMESPACES {
            let namespace =
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
            // Creating a well-formed namespace in an empty store cannot fail;
            // if it ever did, the namespace would simply be missing.
            let _ = store.create(NAMESPACES, "", namespace, Scope::Everything, false);
        }
        store
    }

    /// The revision of the latest committed write.
    pub(crate) fn revision(&self) -> u64 {
        self.revision
    }

    /// A random-looking `u64`, for uids, generated names and tokens.
    pub(crate) fn next_random(&mut self) -> u64 {
        // SplitMix64: tiny, and good enough for names that only need to differ.
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub(crate) fn get(
        &self,
        resource: &'static Resource,
        namespace: &str,
        name: &str,
    ) -> Result<Value, Error> {
        self.objects
            .get(&Key::new(resource, namespace, name))
            .cloned()
            .ok_or_else(|| not_found(resource, name))
    }

    /// Objects of a resource in a namespace (or all namespaces), in (namespace, name) order.
    pub(crate) fn list(
        &self,
        resource: &'static Resource,
        namespace: Option<&str>,
        selectors: &Selectors,
    ) -> Vec<(Key, Value)> {
        self.objects
            .iter()
            .filter(|(k, _)| k.is_of(resource) && namespace.is_none_or(|ns| k.namespace == ns))
            .filter(|(_, v)| selectors.matches(v))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// The namespace and name of a key, for pagination tokens.
    pub(crate) fn key_parts(key: &Key) -> (&str, &str) {
        (&key.namespace, &key.name)
    }

    /// Creates an object; `namespace` comes from the URL and is empty for cluster-scoped resources.
    pub(crate) fn create(
        &mut self,
        resource: &'static Resource,
        namespace: &str,
        mut body: Value,
        scope: Scope,
        dry_run: bool,
    ) -> Result<Value, Error> {
        let meta = metadata_mut(&mut body)?;
        if scope != Scope::Everything
            && meta
                .get("resourceVersion")
                .and_then(Value::as_str)
                .is_some_and(|rv| !rv.is_empty())
        {
            return Err(Error::BadRequest(
                "resourceVersion should not be set on objects to be created".into(),
            ));
        }
        let mut name = meta
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let generate = meta
            .get("generateName")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        check_identity(resource, namespace, None, &mut body)?;
        let namespace = if resource.namespaced { namespace } else { "" };
        if name.is_empty() {
            if generate.is_empty() {
                return Err(Error::Invalid {
                    kind: resource.kind.to_owned(),
                    name: String::new(),
                    message: "metadata.name: Required value: name or generateName is required"
                        .into(),
                });
            }
            // Retry a few times: a generated name may collide with an existing object.
            for _ in 0..8 {
                name = format!("{generate}{}", self.name_suffix());
                if !self
                    .objects
                    .contains_key(&Key::new(resource, namespace, &name))
                {
                    break;
                }
            }
        }
        validate_name(resource, &name)?;
        if resource.namespaced
            && scope != Scope::Everything
            && !self
                .objects
                .contains_key(&Key::new(NAMESPACES, "", namespace))
        {
            return Err(not_found(NAMESPACES, namespace));
        }
        let key = Key::new(resource, namespace, &name);
        if self.objects.contains_key(&key) {
            return Err(Error::AlreadyExists {
                resource: resource.group_resource(),
                name,
            });
        }
        let uid = self.uid();
        let meta = metadata_mut(&mut body)?;
        meta.insert("name".into(), name.into());
        let system = [
            ("uid", Value::from(uid)),
            ("creationTimestamp", now().into()),
            ("generation", 1.into()),
        ];
        for (field, value) in system {
            // The test hooks may seed these, for example an old creationTimestamp.
            if scope != Scope::Everything || !meta.contains_key(field) {
                meta.insert(field.into(), value);
            }
        }
        meta.remove("resourceVersion");
        meta.remove("deletionTimestamp");
        meta.remove("deletionGracePeriodSeconds");
        apply_defaults(resource, &mut body);
        self.commit(resource, key, body, ChangeKind::Added, None, dry_run)
    }

    /// Replaces an object; a non-empty `metadata.resourceVersion` in `body` is a precondition.
    pub(crate) fn update(
        &mut self,
        resource: &'static Resource,
        namespace: &str,
        name: &str,
        body: Value,
        scope: Scope,
        dry_run: bool,
    ) -> Result<Value, Error> {
        let old = self.get(resource, namespace, name)?;
        self.commit_update(resource, namespace, name, old, body, scope, dry_run)
    }

    /// Patches an object. An apply patch creates the object when it does not exist yet.
    /// Returns the result and whether it was created.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn patch(
        &mut self,
        resource: &'static Resource,
        namespace: &str,
        name: &str,
        kind: PatchKind,
        body: &[u8],
        field_manager: Option<&str>,
        scope: Scope,
        dry_run: bool,
    ) -> Result<(Value, bool), Error> {
        let old = match self.get(resource, namespace, name) {
            Ok(old) => old,
            Err(Error::NotFound { .. }) if kind == PatchKind::Apply && scope == Scope::Main => {
                let mut created = patch::apply(kind, &json!({}), body)?;
                metadata_mut(&mut created)?
                    .entry("name")
                    .or_insert_with(|| name.into());
                check_identity(resource, namespace, Some(name), &mut created)?;
                record_manager(&mut created, resource, field_manager)?;
                let created = self.create(resource, namespace, created, Scope::Main, dry_run)?;
                return Ok((created, true));
            }
            Err(e) => return Err(e),
        };
        let mut patched = patch::apply(kind, &old, body)?;
        if kind == PatchKind::Apply {
            record_manager(&mut patched, resource, field_manager)?;
        }
        let updated =
            self.commit_update(resource, namespace, name, old, patched, scope, dry_run)?;
        Ok((updated, false))
    }

    /// Reads or writes the `autoscaling/v1` `Scale` of an object: `change` gets the current
    /// `Scale` and returns the desired one, whose `spec.replicas` is written to the object.
    pub(crate) fn update_scale(
        &mut self,
        resource: &'static Resource,
        namespace: &str,
        name: &str,
        dry_run: bool,
        change: impl FnOnce(&Value) -> Result<Value, Error>,
    ) -> Result<Value, Error> {
        let old = self.get(resource, namespace, name)?;
        let desired = change(&scale_of(&old))?;
        if desired
            .get("kind")
            .and_then(Value::as_str)
            .is_some_and(|k| k != "Scale")
        {
            return Err(Error::BadRequest(
                "the body of a scale request must be a Scale".into(),
            ));
        }
        let wanted_rv = desired
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .unwrap_or("");
        if !wanted_rv.is_empty() && wanted_rv != resource_version(&old) {
            return Err(modified(resource, name));
        }
        let replicas = match desired.pointer("/spec/replicas") {
            None | Some(Value::Null) => 0,
            Some(v) => v
                .as_i64()
                .filter(|n| *n >= 0)
                .ok_or_else(|| Error::Invalid {
                    kind: "Scale".into(),
                    name: name.to_owned(),
                    message: format!(
                        "spec.replicas: Invalid value: {v}: must be greater than or equal to 0"
                    ),
                })?,
        };
        let mut next = old.clone();
        if let Some(object) = next.as_object_mut() {
            let spec = object.entry("spec").or_insert_with(|| json!({}));
            if let Some(spec) = spec.as_object_mut() {
                spec.insert("replicas".into(), replicas.into());
            }
        }
        let stored =
            self.commit_update(resource, namespace, name, old, next, Scope::Main, dry_run)?;
        Ok(scale_of(&stored))
    }

    /// Deletes an object, or only marks it for deletion while it has finalizers.
    pub(crate) fn delete(
        &mut self,
        resource: &'static Resource,
        namespace: &str,
        name: &str,
        preconditions: &Preconditions,
        dry_run: bool,
    ) -> Result<(Value, Deletion), Error> {
        let old = self.get(resource, namespace, name)?;
        if let Some(uid) = preconditions.uid.as_deref() {
            let actual = meta_str(&old, "uid");
            if uid != actual {
                return Err(precondition_failed(resource, name, "uid", uid, actual));
            }
        }
        if let Some(rv) = preconditions.resource_version.as_deref() {
            let actual = resource_version(&old);
            if rv != actual {
                return Err(precondition_failed(
                    resource,
                    name,
                    "resourceVersion",
                    rv,
                    actual,
                ));
            }
        }
        let has_finalizers = old
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty());
        if !has_finalizers {
            let key = Key::new(resource, namespace, name);
            return Ok((
                self.finish_delete(resource, key, old, dry_run),
                Deletion::Finished,
            ));
        }
        if old.pointer("/metadata/deletionTimestamp").is_some() {
            return Ok((old, Deletion::Pending));
        }
        let mut next = old.clone();
        let meta = metadata_mut(&mut next)?;
        meta.insert("deletionTimestamp".into(), now().into());
        meta.insert("deletionGracePeriodSeconds".into(), 0.into());
        let key = Key::new(resource, namespace, name);
        let marked = self.commit(
            resource,
            key,
            next,
            ChangeKind::Modified,
            Some(old),
            dry_run,
        )?;
        Ok((marked, Deletion::Pending))
    }

    /// Deletes an object at once, ignoring finalizers, for the test hooks.
    pub(crate) fn force_delete(
        &mut self,
        resource: &'static Resource,
        namespace: &str,
        name: &str,
    ) -> Option<Value> {
        let key = Key::new(resource, namespace, name);
        let old = self.objects.get(&key)?.clone();
        Some(self.finish_delete(resource, key, old, false))
    }

    /// Changes committed after `revision`, or `Expired` when some of them were forgotten.
    pub(crate) fn changes_after(&self, revision: u64) -> Result<Vec<Change>, Error> {
        if revision < self.compacted {
            return Err(Error::Expired {
                requested: revision,
                oldest: self.compacted,
            });
        }
        Ok(self
            .history
            .iter()
            .filter(|c| c.revision > revision)
            .cloned()
            .collect())
    }

    /// Forgets the whole history, as an etcd compaction at the current revision does.
    pub(crate) fn compact(&mut self) {
        self.history.clear();
        self.compacted = self.revision;
    }

    /// Inserts or replaces an object without preconditions, for the test hooks.
    pub(crate) fn upsert(&mut self, body: Value) -> Result<Value, Error> {
        let api_version = body.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        let kind = body.get("kind").and_then(Value::as_str).unwrap_or("");
        let resource =
            resources::find_by_kind(api_version, kind).ok_or_else(|| Error::UnknownKind {
                api_version: api_version.to_owned(),
                kind: kind.to_owned(),
            })?;
        let namespace = if resource.namespaced {
            body.pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or("default")
                .to_owned()
        } else {
            String::new()
        };
        let name = body
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        if !name.is_empty()
            && self
                .objects
                .contains_key(&Key::new(resource, &namespace, &name))
        {
            let mut body = body;
            metadata_mut(&mut body)?.remove("resourceVersion");
            return self.update(resource, &namespace, &name, body, Scope::Everything, false);
        }
        self.create(resource, &namespace, body, Scope::Everything, false)
    }

    #[allow(clippy::too_many_arguments)]
    fn commit_update(
        &mut self,
        resource: &'static Resource,
        namespace: &str,
        name: &str,
        old: Value,
        mut new: Value,
        scope: Scope,
        dry_run: bool,
    ) -> Result<Value, Error> {
        metadata_mut(&mut new)?;
        check_identity(resource, namespace, Some(name), &mut new)?;
        let old_rv = resource_version(&old).to_owned();
        let new_rv = resource_version(&new);
        if !new_rv.is_empty() && new_rv != old_rv {
            return Err(modified(resource, name));
        }
        let new_uid = meta_str(&new, "uid");
        let old_uid = meta_str(&old, "uid");
        if !new_uid.is_empty() && new_uid != old_uid {
            return Err(precondition_failed(resource, name, "uid", new_uid, old_uid));
        }
        let mut next = match scope {
            Scope::Status => {
                let mut next = old.clone();
                set_or_remove(&mut next, "status", new.get("status").cloned());
                next
            }
            Scope::Main if resource.status => {
                set_or_remove(&mut new, "status", old.get("status").cloned());
                new
            }
            Scope::Main | Scope::Everything => new,
        };
        // The server owns these fields; clients cannot change them by writing the object.
        let system = [
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
        ];
        let old_meta = old
            .get("metadata")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let meta = metadata_mut(&mut next)?;
        let seeded_generation = scope == Scope::Everything && meta.contains_key("generation");
        for field in system {
            if scope == Scope::Everything && meta.contains_key(field) && field != "uid" {
                continue;
            }
            match old_meta.get(field) {
                Some(v) => meta.insert(field.into(), v.clone()),
                None => meta.remove(field),
            };
        }
        meta.insert("resourceVersion".into(), old_rv.into());
        if next.get("spec") != old.get("spec") && !seeded_generation {
            let generation = old
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(0)
                + 1;
            metadata_mut(&mut next)?.insert("generation".into(), generation.into());
        }
        // A write that changes nothing commits nothing, so it neither bumps the
        // resourceVersion nor wakes watches, as in Kubernetes.
        if next == old {
            return Ok(old);
        }
        let key = Key::new(resource, namespace, name);
        let finalized = next.pointer("/metadata/deletionTimestamp").is_some()
            && next
                .pointer("/metadata/finalizers")
                .and_then(Value::as_array)
                .is_none_or(Vec::is_empty);
        if finalized {
            return Ok(self.finish_delete(resource, key, next, dry_run));
        }
        self.commit(
            resource,
            key,
            next,
            ChangeKind::Modified,
            Some(old),
            dry_run,
        )
    }

    fn finish_delete(
        &mut self,
        resource: &'static Resource,
        key: Key,
        mut object: Value,
        dry_run: bool,
    ) -> Value {
        if dry_run {
            return object;
        }
        self.revision += 1;
        if let Ok(meta) = metadata_mut(&mut object) {
            meta.insert("resourceVersion".into(), self.revision.to_string().into());
        }
        self.objects.remove(&key);
        self.record(
            resource,
            key.namespace,
            ChangeKind::Deleted,
            object.clone(),
            None,
        );
        object
    }

    fn commit(
        &mut self,
        resource: &'static Resource,
        key: Key,
        mut object: Value,
        kind: ChangeKind,
        previous: Option<Value>,
        dry_run: bool,
    ) -> Result<Value, Error> {
        if dry_run {
            if kind == ChangeKind::Added {
                metadata_mut(&mut object)?.remove("resourceVersion");
            }
            return Ok(object);
        }
        self.revision += 1;
        metadata_mut(&mut object)?
            .insert("resourceVersion".into(), self.revision.to_string().into());
        self.objects.insert(key.clone(), object.clone());
        self.record(resource, key.namespace, kind, object.clone(), previous);
        Ok(object)
    }

    fn record(
        &mut self,
        resource: &'static Resource,
        namespace: String,
        kind: ChangeKind,
        object: Value,
        previous: Option<Value>,
    ) {
        self.history.push_back(Change {
            revision: self.revision,
            resource,
            namespace,
            kind,
            object,
            previous,
        });
        while self.history.len() > self.history_limit {
            if let Some(dropped) = self.history.pop_front() {
                self.compacted = dropped.revision;
            }
        }
    }

    fn uid(&mut self) -> String {
        let hi = self.next_random();
        let lo = self.next_random();
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            hi >> 32,
            (hi >> 16) & 0xffff,
            hi & 0xfff,
            0x8000 | (lo >> 48 & 0x3fff),
            lo & 0xffff_ffff_ffff
        )
    }

    /// Five characters from the alphabet Kubernetes uses for generated names.
    fn name_suffix(&mut self) -> String {
        const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        let mut n = self.next_random();
        (0..5)
            .map(|_| {
                let c = ALPHABET[(n % ALPHABET.len() as u64) as usize];
                n /= ALPHABET.len() as u64;
                char::from(c)
            })
            .collect()
    }
}

/// The `autoscaling/v1` `Scale` view of a scalable object.
pub(crate) fn scale_of(object: &Value) -> Value {
    let mut metadata = Map::new();
    for field in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        if let Some(v) = object.pointer(&format!("/metadata/{field}")) {
            metadata.insert(field.into(), v.clone());
        }
    }
    let mut status = Map::new();
    status.insert(
        "replicas".into(),
        object
            .pointer("/status/replicas")
            .cloned()
            .unwrap_or_else(|| 0.into()),
    );
    let selector = selector_string(object.pointer("/spec/selector"));
    if !selector.is_empty() {
        status.insert("selector".into(), selector.into());
    }
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": metadata,
        "spec": {"replicas": object.pointer("/spec/replicas").cloned().unwrap_or_else(|| 0.into())},
        "status": status,
    })
}

/// Renders a `LabelSelector` object in the string syntax, as `Scale.status.selector` carries it.
fn selector_string(selector: Option<&Value>) -> String {
    let Some(selector) = selector else {
        return String::new();
    };
    let mut parts = Vec::new();
    if let Some(labels) = selector.get("matchLabels").and_then(Value::as_object) {
        for (k, v) in labels {
            parts.push(format!("{k}={}", v.as_str().unwrap_or("")));
        }
    }
    for expr in selector
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = expr.get("key").and_then(Value::as_str).unwrap_or("");
        let values: Vec<&str> = expr
            .get("values")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        match expr.get("operator").and_then(Value::as_str).unwrap_or("") {
            "In" => parts.push(format!("{key} in ({})", values.join(","))),
            "NotIn" => parts.push(format!("{key} notin ({})", values.join(","))),
            "Exists" => parts.push(key.to_owned()),
            "DoesNotExist" => parts.push(format!("!{key}")),
            _ => {}
        }
    }
    parts.join(",")
}

/// The object's `metadata.resourceVersion`, empty when absent.
pub(crate) fn resource_version(object: &Value) -> &str {
    meta_str(object, "resourceVersion")
}

fn meta_str<'a>(object: &'a Value, field: &str) -> &'a str {
    object
        .get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// The object's `metadata` map, created when missing; fails when the body is not an object.
fn metadata_mut(object: &mut Value) -> Result<&mut Map<String, Value>, Error> {
    let Value::Object(map) = object else {
        return Err(Error::BadRequest(
            "the request body must be a JSON object".into(),
        ));
    };
    let meta = map.entry("metadata").or_insert_with(|| json!({}));
    if meta.is_null() {
        *meta = json!({});
    }
    meta.as_object_mut()
        .ok_or_else(|| Error::BadRequest("metadata must be a JSON object".into()))
}

/// Fills in `apiVersion`, `kind`, `metadata.namespace` and (for updates) `metadata.name`
/// from the URL, and refuses a body that names a different object.
fn check_identity(
    resource: &'static Resource,
    namespace: &str,
    url_name: Option<&str>,
    body: &mut Value,
) -> Result<(), Error> {
    let api_version = resource.api_version();
    let Value::Object(map) = body else {
        return Err(Error::BadRequest(
            "the request body must be a JSON object".into(),
        ));
    };
    match map.get("apiVersion").and_then(Value::as_str) {
        None | Some("") => {
            map.insert("apiVersion".into(), api_version.clone().into());
        }
        Some(v) if v == api_version => {}
        Some(v) => {
            return Err(Error::BadRequest(format!(
                "the API version in the data ({v}) does not match the expected API version ({api_version})"
            )));
        }
    }
    match map.get("kind").and_then(Value::as_str) {
        None | Some("") => {
            map.insert("kind".into(), resource.kind.into());
        }
        Some(k) if k == resource.kind => {}
        Some(k) => {
            return Err(Error::BadRequest(format!(
                "the kind in the data ({k}) does not match the expected kind ({})",
                resource.kind
            )));
        }
    }
    let meta = metadata_mut(body)?;
    if let Some(url_name) = url_name {
        match meta.get("name").and_then(Value::as_str) {
            None | Some("") => {
                meta.insert("name".into(), url_name.into());
            }
            Some(n) if n == url_name => {}
            Some(n) => {
                return Err(Error::BadRequest(format!(
                    "the name of the object ({n}) does not match the name on the URL ({url_name})"
                )));
            }
        }
    }
    if resource.namespaced {
        match meta.get("namespace").and_then(Value::as_str) {
            None | Some("") => {
                meta.insert("namespace".into(), namespace.into());
            }
            Some(ns) if ns == namespace => {}
            Some(_) => {
                return Err(Error::BadRequest(
                    "the namespace of the provided object does not match the namespace sent on the request".into(),
                ));
            }
        }
    } else {
        meta.remove("namespace");
    }
    Ok(())
}

/// Names must be DNS subdomains (lowercase alphanumerics, `-` and `.`, at most 253 characters),
/// except RBAC names, which only need to be valid path segments.
fn validate_name(resource: &Resource, name: &str) -> Result<(), Error> {
    let valid = if resource.group == "rbac.authorization.k8s.io" {
        !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '%'])
    } else {
        !name.is_empty()
            && name.len() <= 253
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
            && name.starts_with(|c: char| c.is_ascii_alphanumeric())
            && name.ends_with(|c: char| c.is_ascii_alphanumeric())
    };
    if valid {
        return Ok(());
    }
    Err(Error::Invalid {
        kind: resource.kind.to_owned(),
        name: name.to_owned(),
        message: format!(
            "metadata.name: Invalid value: {name:?}: a lowercase RFC 1123 subdomain must consist of lower case \
             alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
        ),
    })
}

/// The defaults a real API server fills in that our tests read back.
fn apply_defaults(resource: &Resource, object: &mut Value) {
    if std::ptr::eq(resource, NAMESPACES) && object.pointer("/status/phase").is_none() {
        set_or_remove(object, "status", Some(json!({"phase": "Active"})));
    }
    if resource.scale
        && let Some(spec) = object.get_mut("spec").and_then(Value::as_object_mut)
    {
        spec.entry("replicas").or_insert_with(|| 1.into());
    }
}

/// Records the field manager of an apply patch in `metadata.managedFields`.
fn record_manager(
    object: &mut Value,
    resource: &Resource,
    manager: Option<&str>,
) -> Result<(), Error> {
    let Some(manager) = manager.filter(|m| !m.is_empty()) else {
        return Err(Error::Invalid {
            kind: "PatchOptions".into(),
            name: String::new(),
            message: "fieldManager: Required value: is required for apply patch".into(),
        });
    };
    let meta = metadata_mut(object)?;
    let entries = meta.entry("managedFields").or_insert_with(|| json!([]));
    if !entries.is_array() {
        *entries = json!([]);
    }
    if let Some(entries) = entries.as_array_mut() {
        let known = entries.iter().any(|e| {
            e.get("manager").and_then(Value::as_str) == Some(manager)
                && e.get("operation").and_then(Value::as_str) == Some("Apply")
        });
        if !known {
            entries.push(json!({
                "manager": manager,
                "operation": "Apply",
                "apiVersion": resource.api_version(),
                "time": now(),
                "fieldsType": "FieldsV1",
                "fieldsV1": {},
            }));
        }
    }
    Ok(())
}

fn set_or_remove(object: &mut Value, field: &str, value: Option<Value>) {
    if let Value::Object(map) = object {
        match value {
            Some(v) => map.insert(field.into(), v),
            None => map.remove(field),
        };
    }
}

fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn not_found(resource: &'static Resource, name: &str) -> Error {
    Error::NotFound {
        resource: resource.group_resource(),
        name: name.to_owned(),
    }
}

fn modified(resource: &'static Resource, name: &str) -> Error {
    Error::Conflict {
        resource: resource.group_resource(),
        name: name.to_owned(),
        message: "the object has been modified; please apply your changes to the latest version and try again"
            .into(),
    }
}

fn precondition_failed(
    resource: &'static Resource,
    name: &str,
    field: &str,
    wanted: &str,
    actual: &str,
) -> Error {
    Error::Conflict {
        resource: resource.group_resource(),
        name: name.to_owned(),
        message: format!(
            "precondition failed: {field} in precondition: {wanted}, {field} in object meta: {actual}"
        ),
    }
}
