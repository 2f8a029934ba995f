//! URL routing and the verbs: get, list, create, replace, patch, delete, deletecollection,
//! and the `status`, `scale` and `eviction` subresources. Watches live in `watch.rs`.

use std::sync::Arc;

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE};
use http::{HeaderMap, Method, Request, Response};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde_json::{Value, json};

use super::Error;
use super::patch::{self, PatchKind};
use super::resources::{self, Resource};
use super::selector::{FieldSelector, LabelSelector, Selectors};
use super::server::{Body, Shared, json_response, text_response};
use super::store::{Deletion, Preconditions, Scope, Store, scale_of};
use super::watch;

/// The request size limit of a real API server (3 MiB).
const MAX_BODY: usize = 3 * 1024 * 1024;

/// Where a resource URL points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// A list URL; `namespace` is `None` for cluster-scoped resources and all-namespaces lists.
    Collection {
        resource: &'static Resource,
        namespace: Option<String>,
    },
    /// An object URL; `namespace` is empty for cluster-scoped resources.
    Object {
        resource: &'static Resource,
        namespace: String,
        name: String,
        subresource: Option<String>,
    },
}

/// The query parameters the fake understands; unknown ones are ignored, as Kubernetes does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Query {
    pub(crate) watch: bool,
    pub(crate) label_selector: String,
    pub(crate) field_selector: String,
    pub(crate) resource_version: Option<String>,
    pub(crate) timeout_seconds: Option<u64>,
    pub(crate) allow_bookmarks: bool,
    pub(crate) send_initial_events: bool,
    pub(crate) dry_run: bool,
    pub(crate) field_manager: Option<String>,
    pub(crate) limit: Option<usize>,
    pub(crate) continue_token: Option<String>,
}

impl Query {
    pub(crate) fn parse(raw: &str) -> Result<Self, Error> {
        let mut query = Query::default();
        for pair in raw.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let key = percent_decode(key, true)?;
            let value = percent_decode(value, true)?;
            match key.as_str() {
                "watch" => query.watch = parse_bool(&key, &value)?,
                "labelSelector" => query.label_selector = value,
                "fieldSelector" => query.field_selector = value,
                "resourceVersion" => query.resource_version = Some(value),
                "timeoutSeconds" => query.timeout_seconds = Some(parse_number(&key, &value)?),
                "allowWatchBookmarks" => query.allow_bookmarks = parse_bool(&key, &value)?,
                "sendInitialEvents" => query.send_initial_events = parse_bool(&key, &value)?,
                "dryRun" => query.dry_run = parse_dry_run(&value)?,
                "fieldManager" => query.field_manager = Some(value),
                "limit" => query.limit = Some(parse_number(&key, &value)?).filter(|n| *n > 0),
                "continue" => query.continue_token = Some(value).filter(|v| !v.is_empty()),
                _ => {}
            }
        }
        Ok(query)
    }

    pub(crate) fn selectors(&self) -> Result<Selectors, Error> {
        Ok(Selectors {
            labels: LabelSelector::parse(&self.label_selector)?,
            fields: FieldSelector::parse(&self.field_selector)?,
        })
    }
}

/// Serves one request that passed authentication and fault injection.
pub(crate) async fn respond(
    shared: &Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Error> {
    let (parts, body) = req.into_parts();
    let query = Query::parse(parts.uri.query().unwrap_or(""))?;
    let segments = parts
        .uri
        .path()
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| percent_decode(s, false))
        .collect::<Result<Vec<_>, _>>()?;
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let discovery = match segments.as_slice() {
        ["version"] => Some(resources::version()),
        ["healthz" | "livez" | "readyz"] => {
            return only_get(&parts.method).map(|()| text_response("ok"));
        }
        ["api"] => Some(resources::core_versions(&shared.addr.to_string())),
        ["apis"] => Some(resources::group_list()),
        ["api", "v1"] => resources::resource_list("", "v1"),
        ["apis", group] => resources::group(group),
        ["apis", group, version] => resources::resource_list(group, version),
        _ => None,
    };
    if let Some(document) = discovery {
        only_get(&parts.method)?;
        return Ok(json_response(200, &document));
    }
    let target = match segments.as_slice() {
        ["api", "v1", rest @ ..] if !rest.is_empty() => resolve("", "v1", rest)?,
        ["apis", group, version, rest @ ..] if !rest.is_empty() => resolve(group, version, rest)?,
        _ => return Err(Error::UnknownResource),
    };
    let metadata_only = wants_metadata_only(&parts.headers);
    let method = parts.method.clone();
    let headers = parts.headers;
    match target {
        Target::Collection {
            resource,
            namespace,
        } => match method {
            Method::GET if query.watch => {
                watch::respond(shared, resource, namespace, &query, metadata_only)
            }
            Method::GET => list(
                shared,
                resource,
                namespace.as_deref(),
                &query,
                metadata_only,
            ),
            Method::POST => {
                if resource.namespaced && namespace.is_none() {
                    return Err(Error::MethodNotAllowed);
                }
                require_json(&headers)?;
                let object = parse_json(&read_body(body).await?)?;
                let namespace = namespace.unwrap_or_default();
                let created = shared.write(|s| {
                    s.create(resource, &namespace, object, Scope::Main, query.dry_run)
                })?;
                Ok(json_response(201, &shape(created, metadata_only)))
            }
            Method::DELETE => {
                let options = DeleteOptions::parse(&read_body(body).await?)?;
                delete_collection(
                    shared,
                    resource,
                    namespace.as_deref(),
                    &query,
                    query.dry_run || options.dry_run,
                )
            }
            _ => Err(Error::MethodNotAllowed),
        },
        Target::Object {
            resource,
            namespace,
            name,
            subresource,
        } => {
            let scope = match subresource.as_deref() {
                None => Scope::Main,
                Some("status") if resource.status => Scope::Status,
                Some("scale") if resource.scale => {
                    let bytes = read_body(body).await?;
                    return scale(
                        shared, resource, &namespace, &name, &method, &headers, &bytes, &query,
                    );
                }
                Some("eviction") if resource.plural == "pods" && resource.group.is_empty() => {
                    if method != Method::POST {
                        return Err(Error::MethodNotAllowed);
                    }
                    shared.write(|s| {
                        s.delete(
                            resource,
                            &namespace,
                            &name,
                            &Preconditions::default(),
                            query.dry_run,
                        )
                    })?;
                    let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201});
                    return Ok(json_response(201, &status));
                }
                Some(_) => return Err(Error::UnknownResource),
            };
            match method {
                Method::GET => {
                    let object = shared.store().get(resource, &namespace, &name)?;
                    Ok(json_response(200, &shape(object, metadata_only)))
                }
                Method::PUT => {
                    require_json(&headers)?;
                    let object = parse_json(&read_body(body).await?)?;
                    let updated = shared.write(|s| {
                        s.update(resource, &namespace, &name, object, scope, query.dry_run)
                    })?;
                    Ok(json_response(200, &shape(updated, metadata_only)))
                }
                Method::PATCH => {
                    let kind = PatchKind::from_content_type(content_type(&headers))?;
                    let bytes = read_body(body).await?;
                    let manager = query.field_manager.as_deref();
                    let (patched, created) = shared.write(|s| {
                        s.patch(
                            resource,
                            &namespace,
                            &name,
                            kind,
                            &bytes,
                            manager,
                            scope,
                            query.dry_run,
                        )
                    })?;
                    Ok(json_response(
                        if created { 201 } else { 200 },
                        &shape(patched, metadata_only),
                    ))
                }
                Method::DELETE if scope == Scope::Main => {
                    let options = DeleteOptions::parse(&read_body(body).await?)?;
                    let dry_run = query.dry_run || options.dry_run;
                    let (object, deletion) = shared.write(|s| {
                        s.delete(resource, &namespace, &name, &options.preconditions, dry_run)
                    })?;
                    let code = if deletion == Deletion::Finished {
                        200
                    } else {
                        202
                    };
                    Ok(json_response(code, &shape(object, metadata_only)))
                }
                _ => Err(Error::MethodNotAllowed),
            }
        }
    }
}

/// Maps the path after `/api/v1` or `/apis/{group}/{version}` to a collection or an object.
pub(crate) fn resolve(group: &str, version: &str, rest: &[&str]) -> Result<Target, Error> {
    let lookup =
        |plural: &str| resources::find(group, version, plural).ok_or(Error::UnknownResource);
    match rest {
        // `namespaces/{name}/status` and `/finalize` are subresources of a namespace,
        // not collections inside it.
        ["namespaces", namespace, plural, tail @ ..]
            if !matches!(*plural, "status" | "finalize") =>
        {
            let resource = lookup(plural)?;
            if !resource.namespaced {
                return Err(Error::UnknownResource);
            }
            object_or_collection(resource, Some(namespace), tail)
        }
        [plural, tail @ ..] => {
            let resource = lookup(plural)?;
            if resource.namespaced {
                // A namespaced resource without a namespace only has the all-namespaces list.
                return match tail {
                    [] => Ok(Target::Collection {
                        resource,
                        namespace: None,
                    }),
                    _ => Err(Error::UnknownResource),
                };
            }
            object_or_collection(resource, None, tail)
        }
        [] => Err(Error::UnknownResource),
    }
}

fn object_or_collection(
    resource: &'static Resource,
    namespace: Option<&str>,
    tail: &[&str],
) -> Result<Target, Error> {
    let (name, subresource) = match tail {
        [] => {
            return Ok(Target::Collection {
                resource,
                namespace: namespace.map(str::to_owned),
            });
        }
        [name] => (*name, None),
        [name, sub] => (*name, Some((*sub).to_owned())),
        _ => return Err(Error::UnknownResource),
    };
    Ok(Target::Object {
        resource,
        namespace: namespace.unwrap_or("").to_owned(),
        name: name.to_owned(),
        subresource,
    })
}

fn list(
    shared: &Shared,
    resource: &'static Resource,
    namespace: Option<&str>,
    query: &Query,
    metadata_only: bool,
) -> Result<Response<Body>, Error> {
    let selectors = query.selectors()?;
    let (items, revision) = {
        let store = shared.store();
        (
            store.list(resource, namespace, &selectors),
            store.revision(),
        )
    };
    // A continue token is `{revision}:{namespace}:{name}` of the last item already returned.
    // Later pages show the objects as they are now, not as they were at that revision.
    let (after, revision) = match query.continue_token.as_deref() {
        Some(token) => {
            let mut parts = token.splitn(3, ':');
            let (Some(rv), Some(ns), Some(name)) = (parts.next(), parts.next(), parts.next())
            else {
                return Err(Error::BadRequest(format!(
                    "invalid continue token {token:?}"
                )));
            };
            let rv = rv
                .parse::<u64>()
                .map_err(|_| Error::BadRequest(format!("invalid continue token {token:?}")))?;
            (Some((ns.to_owned(), name.to_owned())), rv)
        }
        None => (None, revision),
    };
    let mut remaining: Vec<_> = items
        .into_iter()
        .filter(|(key, _)| {
            let (ns, name) = Store::key_parts(key);
            after
                .as_ref()
                .is_none_or(|(a_ns, a_name)| (ns, name) > (a_ns.as_str(), a_name.as_str()))
        })
        .collect();
    let mut metadata = json!({"resourceVersion": revision.to_string()});
    if let Some(limit) = query.limit.filter(|l| *l < remaining.len()) {
        let rest = remaining.split_off(limit);
        if let Some((key, _)) = remaining.last() {
            let (ns, name) = Store::key_parts(key);
            metadata["continue"] = format!("{revision}:{ns}:{name}").into();
            metadata["remainingItemCount"] = rest.len().into();
        }
    }
    let items: Vec<Value> = remaining
        .into_iter()
        .map(|(_, v)| shape(v, metadata_only))
        .collect();
    let (kind, api_version) = if metadata_only {
        (
            "PartialObjectMetadataList".to_owned(),
            "meta.k8s.io/v1".to_owned(),
        )
    } else {
        (resource.list_kind(), resource.api_version())
    };
    Ok(json_response(
        200,
        &json!({"kind": kind, "apiVersion": api_version, "metadata": metadata, "items": items}),
    ))
}

fn delete_collection(
    shared: &Shared,
    resource: &'static Resource,
    namespace: Option<&str>,
    query: &Query,
    dry_run: bool,
) -> Result<Response<Body>, Error> {
    let selectors = query.selectors()?;
    let (deleted, revision) = shared.write(|s| {
        let mut deleted = Vec::new();
        for (key, _) in s.list(resource, namespace, &selectors) {
            let (ns, name) = Store::key_parts(&key);
            let (ns, name) = (ns.to_owned(), name.to_owned());
            if let Ok((object, _)) =
                s.delete(resource, &ns, &name, &Preconditions::default(), dry_run)
            {
                deleted.push(object);
            }
        }
        (deleted, s.revision())
    });
    Ok(json_response(
        200,
        &json!({
            "kind": resource.list_kind(),
            "apiVersion": resource.api_version(),
            "metadata": {"resourceVersion": revision.to_string()},
            "items": deleted,
        }),
    ))
}

#[allow(clippy::too_many_arguments)]
fn scale(
    shared: &Shared,
    resource: &'static Resource,
    namespace: &str,
    name: &str,
    method: &Method,
    headers: &HeaderMap,
    body: &Bytes,
    query: &Query,
) -> Result<Response<Body>, Error> {
    let scale = match *method {
        Method::GET => scale_of(&shared.store().get(resource, namespace, name)?),
        Method::PUT => {
            require_json(headers)?;
            let desired = parse_json(body)?;
            shared.write(|s| {
                s.update_scale(resource, namespace, name, query.dry_run, |_| Ok(desired))
            })?
        }
        Method::PATCH => {
            let kind = PatchKind::from_content_type(content_type(headers))?;
            shared.write(|s| {
                s.update_scale(resource, namespace, name, query.dry_run, |current| {
                    patch::apply(kind, current, body)
                })
            })?
        }
        _ => return Err(Error::MethodNotAllowed),
    };
    Ok(json_response(200, &scale))
}

/// The parts of a `DeleteOptions` body the fake honours.
#[derive(Debug, Default)]
struct DeleteOptions {
    preconditions: Preconditions,
    dry_run: bool,
}

impl DeleteOptions {
    fn parse(body: &[u8]) -> Result<Self, Error> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(DeleteOptions::default());
        }
        let options = parse_json(body)?;
        let text = |pointer: &str| {
            options
                .pointer(pointer)
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let dry_run = match options.get("dryRun") {
            None | Some(Value::Null) => false,
            Some(Value::Array(values)) => {
                for v in values {
                    parse_dry_run(v.as_str().unwrap_or(""))?;
                }
                !values.is_empty()
            }
            Some(_) => return Err(Error::BadRequest("dryRun must be a list".into())),
        };
        Ok(DeleteOptions {
            preconditions: Preconditions {
                uid: text("/preconditions/uid"),
                resource_version: text("/preconditions/resourceVersion"),
            },
            dry_run,
        })
    }
}

/// Reduces an object to `PartialObjectMetadata` when the client asked for metadata only.
fn shape(object: Value, metadata_only: bool) -> Value {
    if !metadata_only {
        return object;
    }
    as_partial(&object)
}

/// The `meta.k8s.io/v1` `PartialObjectMetadata` of an object.
pub(crate) fn as_partial(object: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": object.get("metadata").cloned().unwrap_or_else(|| json!({})),
    })
}

/// Whether the `Accept` header asks for `PartialObjectMetadata`, as kube-rs's `*_metadata` calls do.
fn wants_metadata_only(headers: &HeaderMap) -> bool {
    headers
        .get_all(ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("as=PartialObjectMetadata"))
}

async fn read_body(body: Incoming) -> Result<Bytes, Error> {
    match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.is::<http_body_util::LengthLimitError>() => {
            Err(Error::RequestEntityTooLarge { limit: MAX_BODY })
        }
        Err(error) => Err(Error::BadRequest(format!(
            "failed to read the request body: {error}"
        ))),
    }
}

fn parse_json(body: &[u8]) -> Result<Value, Error> {
    serde_json::from_slice(body)
        .map_err(|e| Error::BadRequest(format!("invalid JSON in the request body: {e}")))
}

fn content_type(headers: &HeaderMap) -> Option<&str> {
    headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok())
}

/// POST and PUT bodies must be JSON; an absent content type is taken as JSON.
fn require_json(headers: &HeaderMap) -> Result<(), Error> {
    match content_type(headers).map(|ct| ct.split(';').next().unwrap_or("").trim()) {
        None | Some("application/json") => Ok(()),
        Some(_) => Err(Error::UnsupportedMediaType {
            accepted: "application/json",
        }),
    }
}

fn only_get(method: &Method) -> Result<(), Error> {
    if *method == Method::GET {
        Ok(())
    } else {
        Err(Error::MethodNotAllowed)
    }
}

fn parse_bool(key: &str, value: &str) -> Result<bool, Error> {
    match value {
        "true" | "1" => Ok(true),
        "false" | "0" | "" => Ok(false),
        _ => Err(Error::BadRequest(format!(
            "invalid value {value:?} for {key}: expected a boolean"
        ))),
    }
}

fn parse_number<T: std::str::FromStr>(key: &str, value: &str) -> Result<T, Error> {
    value.parse().map_err(|_| {
        Error::BadRequest(format!(
            "invalid value {value:?} for {key}: expected a number"
        ))
    })
}

fn parse_dry_run(value: &str) -> Result<bool, Error> {
    match value {
        "All" => Ok(true),
        _ => Err(Error::BadRequest(format!(
            "invalid dry run value {value:?}: only \"All\" is supported"
        ))),
    }
}

/// Decodes `%XX` escapes, and `+` as a space in query strings (kube-rs form-encodes them).
pub(crate) fn percent_decode(input: &str, plus_is_space: bool) -> Result<String, Error> {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| {
                        Error::BadRequest(format!("invalid percent-encoding in {input:?}"))
                    })?;
                out.push(hex);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| Error::BadRequest(format!("invalid UTF-8 in {input:?}")))
}
