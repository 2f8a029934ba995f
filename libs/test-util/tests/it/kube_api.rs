//! kube-rs against the fake API server, through a kubeconfig, as our binaries use it.

use std::fmt::Debug;
use std::time::Duration;

use bulwark_test_util::kube_api::{FakeKube, Fault};
use futures::{StreamExt, TryStreamExt};
use http::Method;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v1::Scale;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Pod, Secret};
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, PropagationPolicy, WatchEvent,
    WatchParams,
};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::watcher;
use kube::{Client, Config};
use serde_json::{Value, json};

/// How long a test waits for an event that should arrive at once.
const WAIT: Duration = Duration::from_secs(5);

async fn client(fake: &FakeKube) -> Client {
    let kubeconfig = Kubeconfig::from_yaml(&fake.kubeconfig_yaml("default")).unwrap();
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap();
    Client::try_from(config).unwrap()
}

/// The `code` and `reason` of the API error a call failed with.
#[track_caller]
fn api_error<T: Debug>(result: Result<T, kube::Error>) -> (u16, String) {
    match result {
        Err(kube::Error::Api(status)) => (status.code, status.reason.clone()),
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn pod(name: &str, labels: Value) -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {"containers": [{"name": "app", "image": "registry.example/app:1"}]},
    }))
    .unwrap()
}

fn deployment(name: &str, replicas: i32) -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "registry.example/app:1"}]},
            },
        },
    }))
    .unwrap()
}

fn container_names(pod: &Pod) -> Vec<String> {
    pod.spec
        .as_ref()
        .unwrap()
        .containers
        .iter()
        .map(|c| c.name.clone())
        .collect()
}

#[tokio::test]
async fn pods_round_trip() {
    let fake = FakeKube::start().await.unwrap();
    let pods: Api<Pod> = Api::default_namespaced(client(&fake).await);

    let created = pods
        .create(&PostParams::default(), &pod("web-1", json!({"app": "web"})))
        .await
        .unwrap();
    assert!(created.metadata.uid.is_some());
    assert!(created.metadata.creation_timestamp.is_some());
    assert_eq!(created.metadata.namespace.as_deref(), Some("default"));
    pods.create(&PostParams::default(), &pod("db-1", json!({"app": "db"})))
        .await
        .unwrap();
    let (code, reason) = api_error(
        pods.create(&PostParams::default(), &pod("web-1", json!({})))
            .await,
    );
    assert_eq!((code, reason.as_str()), (409, "AlreadyExists"));

    let got = pods.get("web-1").await.unwrap();
    assert_eq!(
        got.metadata.resource_version,
        created.metadata.resource_version
    );

    let web = pods
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap();
    assert_eq!(
        web.items
            .iter()
            .map(|p| p.metadata.name.clone().unwrap())
            .collect::<Vec<_>>(),
        ["web-1"]
    );
    assert!(web.metadata.resource_version.is_some());
    let not_web = pods
        .list(&ListParams::default().labels("app notin (web)"))
        .await
        .unwrap();
    assert_eq!(not_web.items.len(), 1);
    let by_name = pods
        .list(&ListParams::default().fields("metadata.name=db-1"))
        .await
        .unwrap();
    assert_eq!(by_name.items[0].metadata.name.as_deref(), Some("db-1"));

    // A merge patch moves the resourceVersion on, so the object read before it is stale.
    let labelled = pods
        .patch(
            "web-1",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"tier": "front"}}})),
        )
        .await
        .unwrap();
    assert_eq!(labelled.metadata.labels.as_ref().unwrap()["tier"], "front");
    assert_ne!(
        labelled.metadata.resource_version,
        created.metadata.resource_version
    );
    let (code, reason) = api_error(
        pods.replace("web-1", &PostParams::default(), &created)
            .await,
    );
    assert_eq!((code, reason.as_str()), (409, "Conflict"));
    let replaced = pods
        .replace("web-1", &PostParams::default(), &labelled)
        .await
        .unwrap();
    assert_eq!(
        replaced.metadata.resource_version, labelled.metadata.resource_version,
        "a no-op replace"
    );

    let sidecar = json!({"spec": {"containers": [{"name": "sidecar", "image": "registry.example/sidecar:1"}]}});
    let patched = pods
        .patch("web-1", &PatchParams::default(), &Patch::Strategic(sidecar))
        .await
        .unwrap();
    assert_eq!(container_names(&patched), ["app", "sidecar"]);

    let json_patch = serde_json::from_value(json!([
        {"op": "replace", "path": "/spec/containers/0/image", "value": "registry.example/app:2"},
    ]))
    .unwrap();
    let patched = pods
        .patch(
            "web-1",
            &PatchParams::default(),
            &Patch::<()>::Json(json_patch),
        )
        .await
        .unwrap();
    assert_eq!(
        patched.spec.unwrap().containers[0].image.as_deref(),
        Some("registry.example/app:2")
    );

    let deleted = pods
        .delete("web-1", &DeleteParams::default())
        .await
        .unwrap();
    assert_eq!(
        deleted.left().unwrap().metadata.name.as_deref(),
        Some("web-1")
    );
    let (code, reason) = api_error(pods.get("web-1").await);
    assert_eq!((code, reason.as_str()), (404, "NotFound"));
    assert_eq!(
        api_error(pods.delete("web-1", &DeleteParams::default()).await).0,
        404
    );
    assert!(pods.get_opt("web-1").await.unwrap().is_none());
    assert!(fake.get("v1", "pods", Some("default"), "db-1").is_some());
}

#[tokio::test]
async fn deployments_scale_through_the_subresource() {
    let fake = FakeKube::start().await.unwrap();
    let deployments: Api<Deployment> = Api::default_namespaced(client(&fake).await);
    let created = deployments
        .create(&PostParams::default(), &deployment("web", 2))
        .await
        .unwrap();
    assert_eq!(created.metadata.generation, Some(1));

    let scale = deployments.get_scale("web").await.unwrap();
    assert_eq!(scale.spec.as_ref().unwrap().replicas, Some(2));
    assert_eq!(
        scale.status.as_ref().unwrap().selector.as_deref(),
        Some("app=web")
    );

    let scaled = deployments
        .patch_scale(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 5}})),
        )
        .await
        .unwrap();
    assert_eq!(scaled.spec.unwrap().replicas, Some(5));
    let stored = deployments.get("web").await.unwrap();
    assert_eq!(stored.spec.unwrap().replicas, Some(5));
    assert_eq!(
        stored.metadata.generation,
        Some(2),
        "a spec change bumps the generation"
    );

    // The Scale read before the patch carries a stale resourceVersion.
    let (code, reason) = api_error(
        deployments
            .replace_scale("web", &PostParams::default(), &scale)
            .await,
    );
    assert_eq!((code, reason.as_str()), (409, "Conflict"));
    let fresh: Scale = deployments.get_scale("web").await.unwrap();
    let mut zero = fresh.clone();
    zero.spec.as_mut().unwrap().replicas = Some(0);
    let zeroed = deployments
        .replace_scale("web", &PostParams::default(), &zero)
        .await
        .unwrap();
    assert_eq!(zeroed.spec.unwrap().replicas, Some(0));
    let stored = fake
        .get("apps/v1", "deployments", Some("default"), "web")
        .unwrap();
    assert_eq!(stored["spec"]["replicas"], 0);

    let rollout = json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "registry.example/app:2"}]}}}});
    let patched = deployments
        .patch("web", &PatchParams::default(), &Patch::Strategic(rollout))
        .await
        .unwrap();
    let containers = patched.spec.unwrap().template.spec.unwrap().containers;
    assert_eq!(containers.len(), 1);
    assert_eq!(
        containers[0].image.as_deref(),
        Some("registry.example/app:2")
    );
}

#[tokio::test]
async fn leases_conflict_like_leader_election_expects() {
    let fake = FakeKube::start().await.unwrap();
    let a: Api<Lease> = Api::namespaced(client(&fake).await, "kube-system");
    let b: Api<Lease> = Api::namespaced(client(&fake).await, "kube-system");
    let lease: Lease = serde_json::from_value(json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "sentinel"},
        "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15},
    }))
    .unwrap();
    let created = a.create(&PostParams::default(), &lease).await.unwrap();

    // Both candidates read the same version; only the first write wins.
    let mut by_a = created.clone();
    by_a.spec.as_mut().unwrap().lease_transitions = Some(1);
    let mut by_b = created.clone();
    by_b.spec.as_mut().unwrap().holder_identity = Some("b".into());
    a.replace("sentinel", &PostParams::default(), &by_a)
        .await
        .unwrap();
    let (code, reason) = api_error(b.replace("sentinel", &PostParams::default(), &by_b).await);
    assert_eq!((code, reason.as_str()), (409, "Conflict"));

    // An empty resourceVersion makes the replace unconditional.
    by_b.metadata.resource_version = None;
    let taken = b
        .replace("sentinel", &PostParams::default(), &by_b)
        .await
        .unwrap();
    assert_eq!(taken.spec.unwrap().holder_identity.as_deref(), Some("b"));

    // A resourceVersion inside a patch is a precondition too.
    let stale = json!({"metadata": {"resourceVersion": created.metadata.resource_version}, "spec": {"holderIdentity": "c"}});
    let (code, _) = api_error(
        a.patch("sentinel", &PatchParams::default(), &Patch::Merge(stale))
            .await,
    );
    assert_eq!(code, 409);
}

#[tokio::test]
async fn secrets_round_trip() {
    let fake = FakeKube::start().await.unwrap();
    let secrets: Api<Secret> = Api::default_namespaced(client(&fake).await);
    let secret: Secret = serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "keeper", "labels": {"app": "injector"}},
        "type": "Opaque",
        "data": {"token": "c2VjcmV0"},
    }))
    .unwrap();
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let got = secrets.get("keeper").await.unwrap();
    assert_eq!(got.data.unwrap()["token"].0, b"secret");
    let listed = secrets
        .list(&ListParams::default().labels("app=injector"))
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1);
    let patched = secrets
        .patch(
            "keeper",
            &PatchParams::default(),
            &Patch::Merge(json!({"stringData": null, "data": {"extra": "eA=="}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.data.unwrap().len(), 2);
    secrets
        .delete("keeper", &DeleteParams::default())
        .await
        .unwrap();
    assert_eq!(api_error(secrets.get("keeper").await).0, 404);
    assert!(fake.list("v1", "secrets", Some("default")).is_empty());
}

#[tokio::test]
async fn raw_watch_sees_added_modified_and_deleted() {
    let fake = FakeKube::start().await.unwrap();
    let pods: Api<Pod> = Api::default_namespaced(client(&fake).await);
    let version = pods
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut events = pods
        .watch(&WatchParams::default().timeout(30), &version)
        .await
        .unwrap()
        .boxed();

    pods.create(&PostParams::default(), &pod("w", json!({"app": "web"})))
        .await
        .unwrap();
    pods.patch(
        "w",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"v": "2"}}})),
    )
    .await
    .unwrap();
    pods.delete("w", &DeleteParams::default()).await.unwrap();

    let mut seen = Vec::new();
    while seen.len() < 3 {
        let event = tokio::time::timeout(WAIT, events.try_next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        match event {
            WatchEvent::Added(p) => seen.push(("ADDED", p.metadata.resource_version.unwrap())),
            WatchEvent::Modified(p) => {
                seen.push(("MODIFIED", p.metadata.resource_version.unwrap()))
            }
            WatchEvent::Deleted(p) => seen.push(("DELETED", p.metadata.resource_version.unwrap())),
            WatchEvent::Bookmark(_) => {}
            WatchEvent::Error(e) => panic!("watch error {e:?}"),
        }
    }
    let kinds: Vec<_> = seen.iter().map(|(k, _)| *k).collect();
    assert_eq!(kinds, ["ADDED", "MODIFIED", "DELETED"]);
    let versions: Vec<u64> = seen.iter().map(|(_, v)| v.parse().unwrap()).collect();
    assert!(versions.windows(2).all(|w| w[0] < w[1]), "{versions:?}");
}

#[tokio::test]
async fn runtime_watcher_follows_changes() {
    let fake = FakeKube::start().await.unwrap();
    fake.insert(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "before", "labels": {"app": "web"}}}))
        .unwrap();
    let pods: Api<Pod> = Api::default_namespaced(client(&fake).await);
    let config = watcher::Config::default().labels("app=web");
    let mut events = watcher(pods.clone(), config).boxed();

    let mut next = async || {
        tokio::time::timeout(WAIT, events.try_next())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
    };
    assert!(matches!(next().await, watcher::Event::Init));
    match next().await {
        watcher::Event::InitApply(p) => assert_eq!(p.metadata.name.as_deref(), Some("before")),
        other => panic!("expected the existing pod, got {other:?}"),
    }
    assert!(matches!(next().await, watcher::Event::InitDone));

    pods.create(&PostParams::default(), &pod("after", json!({"app": "web"})))
        .await
        .unwrap();
    pods.create(&PostParams::default(), &pod("other", json!({"app": "db"})))
        .await
        .unwrap();
    pods.patch(
        "after",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"annotations": {"a": "b"}}})),
    )
    .await
    .unwrap();
    // Relabelling takes the pod out of the selection, which the watch reports as a deletion.
    pods.patch(
        "before",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": "gone"}}})),
    )
    .await
    .unwrap();
    pods.delete("after", &DeleteParams::default())
        .await
        .unwrap();

    let mut seen = Vec::new();
    while seen.len() < 4 {
        match next().await {
            watcher::Event::Apply(p) => seen.push(format!("apply {}", p.metadata.name.unwrap())),
            watcher::Event::Delete(p) => seen.push(format!("delete {}", p.metadata.name.unwrap())),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        seen,
        [
            "apply after",
            "apply after",
            "delete before",
            "delete after"
        ]
    );
}

#[tokio::test]
async fn generate_name_makes_unique_names() {
    let fake = FakeKube::start().await.unwrap();
    let pods: Api<Pod> = Api::default_namespaced(client(&fake).await);
    let mut template = pod("", json!({}));
    template.metadata.name = None;
    template.metadata.generate_name = Some("worker-".into());
    let a = pods
        .create(&PostParams::default(), &template)
        .await
        .unwrap()
        .metadata
        .name
        .unwrap();
    let b = pods
        .create(&PostParams::default(), &template)
        .await
        .unwrap()
        .metadata
        .name
        .unwrap();
    assert!(
        a.starts_with("worker-") && a.len() == "worker-".len() + 5,
        "{a}"
    );
    assert_ne!(a, b);
    assert_eq!(
        pods.list(&ListParams::default()).await.unwrap().items.len(),
        2
    );

    template.metadata.generate_name = None;
    let (code, reason) = api_error(pods.create(&PostParams::default(), &template).await);
    assert_eq!((code, reason.as_str()), (422, "Invalid"));
}

#[tokio::test]
async fn dry_run_stores_nothing() {
    let fake = FakeKube::start().await.unwrap();
    let pods: Api<Pod> = Api::default_namespaced(client(&fake).await);
    let dry = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    let version = fake.resource_version();

    let created = pods.create(&dry, &pod("ghost", json!({}))).await.unwrap();
    assert_eq!(created.metadata.name.as_deref(), Some("ghost"));
    assert_eq!(api_error(pods.get("ghost").await).0, 404);

    pods.create(&PostParams::default(), &pod("real", json!({})))
        .await
        .unwrap();
    let stored = fake.resource_version();
    let patch = Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}}));
    let patched = pods
        .patch("real", &PatchParams::default().dry_run(), &patch)
        .await
        .unwrap();
    assert_eq!(patched.metadata.labels.unwrap()["x"], "y");
    pods.delete("real", &DeleteParams::default().dry_run())
        .await
        .unwrap();

    let real = pods.get("real").await.unwrap();
    assert!(real.metadata.labels.unwrap_or_default().is_empty());
    assert_eq!(fake.resource_version(), stored);
    assert_eq!(stored, version + 1);
}

#[tokio::test]
async fn expired_resource_version_gives_410() {
    let fake = FakeKube::builder().history_limit(2).start().await.unwrap();
    let pods: Api<Pod> = Api::default_namespaced(client(&fake).await);
    let old = pods
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    for name in ["a", "b", "c"] {
        pods.create(&PostParams::default(), &pod(name, json!({})))
            .await
            .unwrap();
    }
    let mut events = pods
        .watch(&WatchParams::default(), &old)
        .await
        .unwrap()
        .boxed();
    match tokio::time::timeout(WAIT, events.try_next())
        .await
        .unwrap()
        .unwrap()
    {
        Some(WatchEvent::Error(status)) => {
            assert_eq!((status.code, status.reason.as_str()), (410, "Expired"));
        }
        other => panic!("expected a 410 error event, got {other:?}"),
    }
    assert!(
        tokio::time::timeout(WAIT, events.try_next())
            .await
            .unwrap()
            .unwrap()
            .is_none()
    );

    // Compaction expires every older version; the current one still works.
    fake.compact();
    let current = fake.resource_version().to_string();
    let mut events = pods
        .watch(&WatchParams::default(), &current)
        .await
        .unwrap()
        .boxed();
    pods.delete("c", &DeleteParams::default()).await.unwrap();
    let event = tokio::time::timeout(WAIT, events.try_next())
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(event, Some(WatchEvent::Deleted(_))), "{event:?}");
}

#[tokio::test]
async fn fault_injector_fails_matching_requests() {
    let fake = FakeKube::start().await.unwrap();
    let deployments: Api<Deployment> = Api::default_namespaced(client(&fake).await);
    deployments
        .create(&PostParams::default(), &deployment("web", 1))
        .await
        .unwrap();

    fake.fail_next(1, 500);
    let (code, reason) = api_error(deployments.get("web").await);
    assert_eq!((code, reason.as_str()), (500, "InternalError"));
    deployments.get("web").await.unwrap();

    fake.inject(
        Fault::new(2, 409)
            .method(Method::PATCH)
            .path_contains("/deployments/web/scale"),
    );
    let scale = Patch::Merge(json!({"spec": {"replicas": 3}}));
    deployments.get_scale("web").await.unwrap();
    assert_eq!(
        api_error(
            deployments
                .patch_scale("web", &PatchParams::default(), &scale)
                .await
        )
        .0,
        409
    );
    assert_eq!(
        api_error(
            deployments
                .patch_scale("web", &PatchParams::default(), &scale)
                .await
        )
        .0,
        409
    );
    let scaled = deployments
        .patch_scale("web", &PatchParams::default(), &scale)
        .await
        .unwrap();
    assert_eq!(scaled.spec.unwrap().replicas, Some(3));
}

#[tokio::test]
async fn request_log_records_what_the_client_did() {
    let fake = FakeKube::start().await.unwrap();
    let pods: Api<Pod> = Api::default_namespaced(client(&fake).await);
    pods.create(&PostParams::default(), &pod("a", json!({})))
        .await
        .unwrap();
    pods.list(&ListParams::default().labels("app=web"))
        .await
        .unwrap();
    pods.delete("a", &DeleteParams::default()).await.unwrap();
    let requests = fake.requests();
    let methods: Vec<Method> = requests.iter().map(|(m, _)| m.clone()).collect();
    assert_eq!(methods, [Method::POST, Method::GET, Method::DELETE]);
    assert!(requests[0].1.starts_with("/api/v1/namespaces/default/pods"));
    assert!(
        requests[1].1.contains("labelSelector=app%3Dweb"),
        "{}",
        requests[1].1
    );
    assert!(
        requests[2]
            .1
            .starts_with("/api/v1/namespaces/default/pods/a")
    );
    fake.clear_requests();
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn errors_are_status_objects() {
    let fake = FakeKube::start().await.unwrap();
    fake.insert(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a"}}))
        .unwrap();
    let client = client(&fake).await;
    let request = |method: &str, uri: &str, content_type: &str, body: &str| {
        http::Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", content_type)
            .body(body.as_bytes().to_vec())
            .unwrap()
    };
    let cases = [
        (
            "POST",
            "/api/v1/namespaces/default/pods",
            "application/json",
            "{not json",
            400,
            "BadRequest",
        ),
        (
            "GET",
            "/apis/example.com/v1/widgets",
            "application/json",
            "",
            404,
            "NotFound",
        ),
        (
            "GET",
            "/api/v1/namespaces/default/widgets",
            "application/json",
            "",
            404,
            "NotFound",
        ),
        (
            "PUT",
            "/api/v1/namespaces/default/pods",
            "application/json",
            "{}",
            405,
            "MethodNotAllowed",
        ),
        (
            "PATCH",
            "/api/v1/namespaces/default/pods/a",
            "application/json",
            "{}",
            415,
            "UnsupportedMediaType",
        ),
        (
            "PATCH",
            "/api/v1/namespaces/default/pods/a",
            "application/merge-patch+json",
            "[",
            400,
            "BadRequest",
        ),
        (
            "GET",
            "/api/v1/namespaces/default/pods?labelSelector=a%20in",
            "application/json",
            "",
            400,
            "BadRequest",
        ),
        (
            "POST",
            "/api/v1/namespaces/nowhere/pods",
            "application/json",
            r#"{"metadata":{"name":"a"}}"#,
            404,
            "NotFound",
        ),
    ];
    for (method, uri, content_type, body, code, reason) in cases {
        let result = client
            .request_text(request(method, uri, content_type, body))
            .await;
        let (got_code, got_reason) = api_error(result);
        assert_eq!(
            (got_code, got_reason.as_str()),
            (code, reason),
            "{method} {uri}"
        );
    }
}

#[tokio::test]
async fn requests_without_the_token_are_unauthorized() {
    let fake = FakeKube::start().await.unwrap();
    let anonymous = Client::try_from(Config::new(fake.url().parse().unwrap())).unwrap();
    assert!(
        anonymous.apiserver_version().await.is_ok(),
        "/version is public"
    );
    let pods: Api<Pod> = Api::default_namespaced(anonymous);
    let (code, reason) = api_error(pods.list(&ListParams::default()).await);
    assert_eq!((code, reason.as_str()), (401, "Unauthorized"));
}

#[tokio::test]
async fn kubeconfig_file_loads_and_discovery_works() {
    let fake = FakeKube::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = fake.write_kubeconfig(dir.path(), "kube-system").unwrap();
    let kubeconfig = Kubeconfig::read_from(&path).unwrap();
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap();
    assert_eq!(config.default_namespace, "kube-system");
    assert_eq!(config.cluster_url.to_string(), format!("{}/", fake.url()));
    let client = Client::try_from(config).unwrap();
    assert_eq!(client.apiserver_version().await.unwrap().minor, "33");
    let discovery = kube::discovery::Discovery::new(client.clone())
        .run()
        .await
        .unwrap();
    for group in ["", "apps", "coordination.k8s.io", "events.k8s.io"] {
        assert!(discovery.has_group(group), "{group:?}");
    }
    let namespaces: Api<Namespace> = Api::all(client);
    let names: Vec<_> = namespaces
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|n| n.metadata.name.unwrap())
        .collect();
    assert!(names.contains(&"default".to_owned()), "{names:?}");
}

#[tokio::test]
async fn status_subresource_and_main_resource_are_separate() {
    let fake = FakeKube::start().await.unwrap();
    let pods: Api<Pod> = Api::default_namespaced(client(&fake).await);
    pods.create(&PostParams::default(), &pod("a", json!({})))
        .await
        .unwrap();
    let running = Patch::Merge(json!({"status": {"phase": "Running"}}));
    let patched = pods
        .patch_status("a", &PatchParams::default(), &running)
        .await
        .unwrap();
    assert_eq!(patched.status.unwrap().phase.as_deref(), Some("Running"));
    let failed = Patch::Merge(json!({"status": {"phase": "Failed"}}));
    let main = pods
        .patch("a", &PatchParams::default(), &failed)
        .await
        .unwrap();
    assert_eq!(
        main.status.unwrap().phase.as_deref(),
        Some("Running"),
        "main writes keep status"
    );
}

#[tokio::test]
async fn apply_patch_creates_then_merges() {
    let fake = FakeKube::start().await.unwrap();
    let deployments: Api<Deployment> = Api::default_namespaced(client(&fake).await);
    let params = PatchParams::apply("bulwark-test").force();
    let applied = deployments
        .patch("web", &params, &Patch::Apply(deployment("web", 2)))
        .await
        .unwrap();
    assert_eq!(applied.spec.unwrap().replicas, Some(2));
    let managers: Vec<_> = applied
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    assert_eq!(managers, ["bulwark-test"]);
    let again = deployments
        .patch("web", &params, &Patch::Apply(deployment("web", 4)))
        .await
        .unwrap();
    assert_eq!(again.spec.unwrap().replicas, Some(4));
    let (code, _) = api_error(
        deployments
            .patch(
                "web",
                &PatchParams::default(),
                &Patch::Apply(deployment("web", 1)),
            )
            .await,
    );
    assert_eq!(code, 422, "apply needs a field manager");
}

#[tokio::test]
async fn lists_paginate_and_span_namespaces() {
    let fake = FakeKube::start().await.unwrap();
    let client = client(&fake).await;
    fake.insert(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}}))
        .unwrap();
    for (ns, name) in [
        ("default", "a"),
        ("default", "b"),
        ("team", "c"),
        ("team", "d"),
        ("team", "e"),
    ] {
        let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
        pods.create(&PostParams::default(), &pod(name, json!({})))
            .await
            .unwrap();
    }
    let all: Api<Pod> = Api::all(client.clone());
    let mut names = Vec::new();
    let mut params = ListParams::default().limit(2);
    loop {
        let page = all.list(&params).await.unwrap();
        assert!(page.items.len() <= 2);
        names.extend(page.items.into_iter().map(|p| p.metadata.name.unwrap()));
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => params = params.continue_token(&token),
            _ => break,
        }
    }
    assert_eq!(names, ["a", "b", "c", "d", "e"]);
    let metadata = all.list_metadata(&ListParams::default()).await.unwrap();
    assert_eq!(metadata.items.len(), 5);

    let team: Api<Pod> = Api::namespaced(client, "team");
    let deleted = team
        .delete_collection(&DeleteParams::default(), &ListParams::default())
        .await
        .unwrap();
    assert_eq!(deleted.left().unwrap().items.len(), 3);
    assert!(fake.list("v1", "pods", Some("team")).is_empty());
    assert_eq!(fake.list("v1", "pods", None).len(), 2);
}

#[tokio::test]
async fn finalizers_hold_deletion() {
    let fake = FakeKube::start().await.unwrap();
    let pods: Api<Pod> = Api::default_namespaced(client(&fake).await);
    let mut held = pod("held", json!({}));
    held.metadata.finalizers = Some(vec!["bulwark.io/cleanup".into()]);
    pods.create(&PostParams::default(), &held).await.unwrap();
    let params = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Foreground),
        ..DeleteParams::default()
    };
    let marked = pods.delete("held", &params).await.unwrap().left().unwrap();
    assert!(marked.metadata.deletion_timestamp.is_some());
    assert!(pods.get("held").await.is_ok());
    let release = Patch::Merge(json!({"metadata": {"finalizers": null}}));
    pods.patch("held", &PatchParams::default(), &release)
        .await
        .unwrap();
    assert_eq!(api_error(pods.get("held").await).0, 404);
}

#[tokio::test]
async fn shutdown_stops_the_server() {
    let fake = FakeKube::start().await.unwrap();
    let addr = fake.addr();
    assert!(addr.ip().is_loopback());
    let pods: Api<Pod> = Api::default_namespaced(client(&fake).await);
    let mut events = pods
        .watch(&WatchParams::default(), "0")
        .await
        .unwrap()
        .boxed();
    fake.shutdown().await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    // The open watch ends rather than hanging.
    let end = tokio::time::timeout(WAIT, async {
        while let Some(Ok(_)) = events.next().await {}
    })
    .await;
    assert!(end.is_ok());

    let dropped = FakeKube::start().await.unwrap();
    let addr = dropped.addr();
    drop(dropped);
    // The aborted server task releases its listener the next time the runtime polls it.
    let mut closed = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if tokio::net::TcpStream::connect(addr).await.is_err() {
            closed = true;
            break;
        }
    }
    assert!(closed, "the listener outlived the FakeKube");
}

#[tokio::test]
async fn watch_from_zero_starts_with_current_objects_and_bookmarks() {
    let fake = FakeKube::builder()
        .bookmark_interval(Duration::from_millis(100))
        .start()
        .await
        .unwrap();
    fake.insert(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "existing"}}))
        .unwrap();
    let pods: Api<Pod> = Api::default_namespaced(client(&fake).await);
    let params = WatchParams::default().timeout(30);
    let mut events = pods.watch(&params, "0").await.unwrap().boxed();
    let mut next = async || {
        tokio::time::timeout(WAIT, events.try_next())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
    };
    match next().await {
        WatchEvent::Added(p) => assert_eq!(p.metadata.name.as_deref(), Some("existing")),
        other => panic!("expected a synthetic ADDED, got {other:?}"),
    }
    match next().await {
        WatchEvent::Bookmark(b) => {
            assert_eq!(
                b.metadata.resource_version,
                fake.resource_version().to_string()
            );
        }
        other => panic!("expected a bookmark, got {other:?}"),
    }
}

#[tokio::test]
async fn streaming_list_watcher_gets_the_initial_state() {
    let fake = FakeKube::start().await.unwrap();
    for name in ["a", "b"] {
        fake.insert(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}}))
            .unwrap();
    }
    let pods: Api<Pod> = Api::default_namespaced(client(&fake).await);
    let config = watcher::Config::default().streaming_lists();
    let mut events = watcher(pods.clone(), config).boxed();
    let mut next = async || {
        tokio::time::timeout(WAIT, events.try_next())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
    };
    assert!(matches!(next().await, watcher::Event::Init));
    let mut initial = Vec::new();
    loop {
        match next().await {
            watcher::Event::InitApply(p) => initial.push(p.metadata.name.unwrap()),
            watcher::Event::InitDone => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(initial, ["a", "b"]);
    pods.create(&PostParams::default(), &pod("c", json!({})))
        .await
        .unwrap();
    match next().await {
        watcher::Event::Apply(p) => assert_eq!(p.metadata.name.as_deref(), Some("c")),
        other => panic!("unexpected {other:?}"),
    }
    let watched: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|(_, path)| path.contains("sendInitialEvents=true"))
        .collect();
    assert_eq!(watched.len(), 1, "{watched:?}");
}
