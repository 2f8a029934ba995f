//! Tests of the pod mutation over real-world pod shapes.
//!
//! Every admission here is checked the same way (see [`admit`]): the patch is applied to the
//! original pod JSON by the independent `json-patch` crate, the result must deserialize as a
//! k8s-openapi `Pod`, every keeper container must read back the same through k8s-openapi,
//! nothing the pod had may be lost or changed, and admitting the patched pod again must give
//! an empty patch.
//! In the expectation tables, `Value::Null` means "absent".

use k8s_openapi::api::core::v1::{Container, Pod};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::annotations;
use crate::fixtures::PodJson;
use bulwark_sidecar_spec::{Auth, SidecarSpec};

use crate::{Defaults, Error, Injector, Mutation, Outcome, Result, mutate};

/// A [`Mutation`] with its patch as JSON, so that it outlives the injector that made it.
#[derive(Debug)]
struct Admitted {
    outcome: Outcome,
    patch: Value,
    warnings: Vec<String>,
    spec: Option<SidecarSpec>,
}

impl Admitted {
    fn of(mutation: Mutation<'_>) -> Self {
        Self {
            outcome: mutation.outcome,
            patch: serde_json::from_slice(&mutation.patch.to_json()).expect("the patch is JSON"),
            warnings: mutation.warnings,
            spec: mutation.spec,
        }
    }

    fn is_empty(&self) -> bool {
        self.patch.as_array().is_some_and(Vec::is_empty)
    }
}

/// A pod admitted: the mutation, and the pod with its patch applied by `json-patch`.
struct Explained {
    mutation: Admitted,
    pod: Value,
}

/// Admits the pod `object` with `defaults`, as the webhook does.
fn explain(object: &Value, defaults: &Defaults) -> Result<Explained> {
    let text = object.to_string();
    let pod = crate::Pod::from_json(&text).map_err(|e| Error::Pod(e.to_string()))?;
    let injector = Injector::new(defaults.clone());
    let mutation = Admitted::of(injector.inject(&pod)?);
    let pod = independent_patch(object, &mutation);
    Ok(Explained { mutation, pod })
}

/// The patch as JSON.
fn patch_json(mutation: &Admitted) -> Value {
    mutation.patch.clone()
}

/// Admits `pod` with `defaults`, checks the properties above, and returns the mutation and
/// the patched pod.
#[track_caller]
fn admit_with(pod: &PodJson, defaults: &Defaults) -> (Admitted, Value) {
    let explained = explain(pod.json(), defaults).unwrap_or_else(|e| panic!("denied: {e}"));
    verify(pod.json(), &explained.pod, &explained.mutation, defaults);
    (explained.mutation, explained.pod)
}

/// The injection request of `annotations`, which must ask for one.
#[track_caller]
fn request_of(annotations: &[(&str, &str)]) -> crate::InjectionRequest {
    let map = annotations
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    annotations::parse(&map).unwrap().unwrap()
}

#[track_caller]
fn admit(pod: &PodJson) -> (Admitted, Value) {
    admit_with(pod, &Defaults::default())
}

/// Applies the mutation's patch with the `json-patch` crate.
#[track_caller]
fn independent_patch(original: &Value, mutation: &Admitted) -> Value {
    let patch: json_patch::Patch =
        serde_json::from_value(patch_json(mutation)).expect("the patch is RFC 6902 JSON");
    let mut patched = original.clone();
    json_patch::patch(&mut patched, &patch).expect("the patch applies");
    patched
}

#[track_caller]
fn verify(original: &Value, patched: &Value, mutation: &Admitted, defaults: &Defaults) {
    Pod::deserialize(patched).expect("the patched pod is a Pod");
    // The keeper containers are our own structs, not k8s-openapi's: every member must be one
    // that k8s-openapi knows and reads back the same (a misspelt key or a wrong shape would be
    // dropped or rejected here).
    for list in ["containers", "initContainers"] {
        for c in patched["spec"][list].as_array().into_iter().flatten() {
            if !c["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("keeper-secrets-"))
            {
                continue;
            }
            let typed = Container::deserialize(c).expect("a keeper container is a Container");
            assert_eq!(
                &serde_json::to_value(typed).unwrap(),
                c,
                "k8s-openapi reads it differently"
            );
        }
    }
    // Our annotations are the only values the patch may change (the marker from anything
    // but "true", the spec from anything).
    let mut original = original.clone();
    if let Some(map) = original
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        map.remove(crate::INJECTED);
        map.remove(bulwark_sidecar_spec::SPEC_ANNOTATION);
    }
    assert!(
        preserved(&original, patched),
        "the patch lost or changed something:\n{original:#}\n{patched:#}"
    );
    if !mutation.is_empty() {
        let again = explain(patched, defaults).expect("a second admission succeeds");
        assert!(
            again.mutation.is_empty(),
            "not idempotent: {:?}",
            again.mutation.patch
        );
        assert_ne!(again.mutation.outcome, Outcome::Injected);
    }
}

/// Whether everything in `original` is still in `patched`: objects keep every member, arrays
/// keep their elements in order (others may be inserted), scalars are equal.
fn preserved(original: &Value, patched: &Value) -> bool {
    match (original, patched) {
        (Value::Object(a), Value::Object(b)) => a
            .iter()
            .all(|(k, v)| b.get(k).is_some_and(|w| preserved(v, w))),
        (Value::Array(a), Value::Array(b)) => {
            let mut rest = b.iter();
            a.iter().all(|v| rest.any(|w| preserved(v, w)))
        }
        (a, b) => a == b,
    }
}

/// Checks values at JSON pointers of the patched pod.
#[track_caller]
fn check(pod: PodJson, expect: &[(&str, Value)]) {
    check_with(pod, &Defaults::default(), expect);
}

#[track_caller]
fn check_with(pod: PodJson, defaults: &Defaults, expect: &[(&str, Value)]) {
    let (_, patched) = admit_with(&pod, defaults);
    for (at, want) in expect {
        let got = patched.pointer(at).unwrap_or(&Value::Null);
        assert_eq!(got, want, "at {at} in\n{patched:#}");
    }
}

/// Checks the patch operations' paths, in order.
#[track_caller]
fn check_paths(pod: PodJson, expect: &[&str]) {
    let (mutation, _) = admit(&pod);
    let paths: Vec<Value> = patch_json(&mutation)
        .as_array()
        .expect("an array")
        .iter()
        .map(|op| op["path"].clone())
        .collect();
    assert_eq!(paths, expect.iter().map(|p| json!(p)).collect::<Vec<_>>());
}

/// Checks that admission denies `pod` with exactly `message`.
#[track_caller]
fn check_denied(pod: PodJson, message: &str) {
    match explain(pod.json(), &Defaults::default()) {
        Ok(e) => panic!("admitted: {:?}", e.mutation.patch),
        Err(e) => assert_eq!(e.to_string(), message),
    }
}

/// Checks the warnings of an admission.
#[track_caller]
fn check_warnings(pod: PodJson, expect: &[&str]) {
    let (mutation, _) = admit(&pod);
    assert_eq!(mutation.warnings, expect);
}

/// The spec that the container at `at` receives: its spec variable resolved as the kubelet
/// resolves a downward API reference to an annotation.
#[track_caller]
fn spec_at(patched: &Value, at: &str) -> SidecarSpec {
    let env = patched
        .pointer(&format!("{at}/env"))
        .and_then(Value::as_array)
        .expect("an env list");
    let field_path = env
        .iter()
        .find(|e| e["name"] == bulwark_sidecar_spec::SPEC_ENV)
        .and_then(|e| e.pointer("/valueFrom/fieldRef/fieldPath"))
        .and_then(Value::as_str)
        .expect("the spec variable refers to a field of the pod");
    let annotation = field_path
        .strip_prefix("metadata.annotations['")
        .and_then(|rest| rest.strip_suffix("']"))
        .expect("the field is an annotation");
    let json = patched["metadata"]["annotations"][annotation]
        .as_str()
        .expect("the annotation is set");
    SidecarSpec::from_json(json).expect("a valid spec")
}

/// Checks the spec that the init container (the first init container) receives.
#[track_caller]
fn check_spec(pod: PodJson, expect: impl FnOnce(&SidecarSpec)) {
    let (mutation, patched) = admit(&pod);
    let spec = spec_at(&patched, "/spec/initContainers/0");
    assert_eq!(Some(&spec), mutation.spec.as_ref());
    expect(&spec);
}

fn restricted(run_as_user: Value, run_as_group: Value) -> Value {
    let mut sc = json!({
        "allowPrivilegeEscalation": false,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": true,
        "runAsNonRoot": true,
        "seccompProfile": {"type": "RuntimeDefault"}
    });
    for (k, v) in [("runAsUser", run_as_user), ("runAsGroup", run_as_group)] {
        if !v.is_null() {
            sc[k] = v;
        }
    }
    sc
}

const RO_MOUNT: &str =
    r#"{"name": "keeper-secrets", "mountPath": "/keeper/secrets", "readOnly": true}"#;

fn ro_mount() -> Value {
    serde_json::from_str(RO_MOUNT).expect("json")
}

#[test]
fn deployment_pod_without_name_or_uid() {
    check_paths(
        PodJson::deployment(),
        &[
            "/metadata/annotations/keeper.security~1injected",
            "/metadata/annotations/keeper.security~1sidecar-spec",
            "/spec/volumes",
            "/spec/containers/0/volumeMounts",
            "/spec/initContainers",
        ],
    );
    let (mutation, patched) = admit(&PodJson::deployment());
    assert_eq!(mutation.outcome, Outcome::Injected);
    assert_eq!(mutation.warnings, Vec::<String>::new());
    assert_eq!(
        patched.pointer("/metadata/annotations/keeper.security~1injected"),
        Some(&json!("true"))
    );
    assert_eq!(
        patched["spec"]["volumes"],
        json!([{"name": "keeper-secrets", "emptyDir": {"medium": "Memory"}}])
    );
    assert_eq!(
        patched["spec"]["containers"][0]["volumeMounts"],
        json!([ro_mount()])
    );
    let image = Defaults::default().image;
    let init = &patched["spec"]["initContainers"][0];
    let sidecar = &patched["spec"]["initContainers"][1];
    assert_eq!(init["name"], "keeper-secrets-init");
    assert_eq!(init["image"], json!(image));
    assert_eq!(init["args"], json!(["--mode=init"]));
    assert_eq!(init["terminationMessagePolicy"], "FallbackToLogsOnError");
    assert_eq!(
        init["securityContext"],
        restricted(json!(65532), json!(65532))
    );
    assert_eq!(
        init["resources"],
        json!({"requests": {"cpu": "20m", "memory": "64Mi"}, "limits": {"cpu": "100m", "memory": "128Mi"}})
    );
    assert_eq!(
        init["volumeMounts"],
        json!([{"name": "keeper-secrets", "mountPath": "/keeper/secrets"}])
    );
    let env_names: Vec<&Value> = init["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["name"])
        .collect();
    assert_eq!(
        env_names,
        [
            "BULWARK_INJECT_SPEC",
            "BULWARK_INJECT_KSM_CONFIG",
            "BULWARK_INJECT_POD_NAME",
            "BULWARK_INJECT_POD_NAMESPACE"
        ]
    );
    assert_eq!(
        init["env"][1]["valueFrom"],
        json!({"secretKeyRef": {"name": "keeper-auth", "key": "config"}})
    );
    assert_eq!(
        init["env"][2]["valueFrom"],
        json!({"fieldRef": {"fieldPath": "metadata.name"}})
    );
    assert_eq!(sidecar["name"], "keeper-secrets-sidecar");
    assert_eq!(sidecar["restartPolicy"], "Always");
    assert_eq!(sidecar["args"], json!(["--mode=sidecar"]));
    assert_eq!(
        sidecar["ports"],
        json!([{"name": "keeper-metrics", "containerPort": 9102, "protocol": "TCP"}])
    );
    assert_eq!(
        sidecar["livenessProbe"],
        json!({"httpGet": {"path": "/health", "port": 9102}, "periodSeconds": 10})
    );
    assert_eq!(
        sidecar["readinessProbe"],
        json!({"httpGet": {"path": "/ready", "port": 9102}, "periodSeconds": 10})
    );
    assert_eq!(
        spec_at(&patched, "/spec/initContainers/1"),
        spec_at(&patched, "/spec/initContainers/0")
    );
    assert_eq!(patched["spec"]["containers"].as_array().unwrap().len(), 1);
    assert_eq!(patched["metadata"].get("name"), None);
    assert_eq!(patched["metadata"].get("uid"), None);
}

#[test]
fn spec_of_the_deployment_pod() {
    check_spec(PodJson::deployment(), |spec| {
        let want = json!({
            "version": 1,
            "mountPath": "/keeper/secrets",
            "auth": {"method": "secret"},
            "secrets": [{
                "path": "/keeper/secrets/database-credentials.json",
                "source": {"kind": "record", "record": {"name": "database-credentials"}},
                "format": "json"
            }],
            "folders": [],
            "refreshInterval": "5m",
            "failOnError": true,
            "strictLookup": false,
            "fileMode": "0444",
            "signal": null,
            "caCertFile": null,
            "healthPort": 9102
        });
        assert_eq!(serde_json::to_value(spec).unwrap(), want);
    });
}

#[test]
fn no_annotations_map_adds_the_whole_map() {
    // A pod without annotations cannot ask for injection itself; the request comes from
    // elsewhere, and the marker must then be added as a whole map.
    let pod = PodJson::bare();
    let request = request_of(&[
        ("keeper.security/inject", "true"),
        ("keeper.security/secret", "db"),
        ("keeper.security/ksm-config", "auth"),
    ]);
    let typed = crate::Pod::deserialize(pod.json()).unwrap();
    let injector = Injector::new(Defaults::default());
    let mutation = Admitted::of(mutate(&typed, request, &injector).unwrap());
    let spec = mutation.spec.as_ref().unwrap().to_json();
    assert_eq!(
        patch_json(&mutation)[0],
        json!({"op": "add", "path": "/metadata/annotations", "value": {"keeper.security/injected": "true", "keeper.security/sidecar-spec": spec}})
    );
    let patched = independent_patch(pod.json(), &mutation);
    verify(pod.json(), &patched, &mutation, &Defaults::default());
    assert_eq!(
        patched["metadata"]["annotations"],
        json!({"keeper.security/injected": "true", "keeper.security/sidecar-spec": spec})
    );
}

#[test]
fn existing_annotations_volumes_and_mounts_get_elements_added() {
    let pod = PodJson::deployment()
        .with_annotation("example.com/owner~team", "payments")
        .with_annotation("kubectl.kubernetes.io/restartedAt", "2026-01-02T03:04:05Z")
        .with_volume(json!({"name": "config", "configMap": {"name": "web-config"}}))
        .with(
            "/spec/containers/0/volumeMounts",
            json!([{"name": "config", "mountPath": "/etc/web"}]),
        );
    check_paths(
        pod.clone(),
        &[
            "/metadata/annotations/keeper.security~1injected",
            "/metadata/annotations/keeper.security~1sidecar-spec",
            "/spec/volumes/-",
            "/spec/containers/0/volumeMounts/-",
            "/spec/initContainers",
        ],
    );
    check(
        pod,
        &[
            (
                "/metadata/annotations/example.com~1owner~0team",
                json!("payments"),
            ),
            ("/spec/volumes/0/name", json!("config")),
            ("/spec/volumes/1/name", json!("keeper-secrets")),
            ("/spec/containers/0/volumeMounts/0/name", json!("config")),
            ("/spec/containers/0/volumeMounts/1", ro_mount()),
        ],
    );
}

#[test]
fn our_init_containers_run_before_the_pods_own() {
    let pod = PodJson::deployment().with_init_container(json!({
        "name": "migrate", "image": "web-migrate:1.4.2", "command": ["migrate", "up"]
    }));
    check_paths(
        pod.clone(),
        &[
            "/metadata/annotations/keeper.security~1injected",
            "/metadata/annotations/keeper.security~1sidecar-spec",
            "/spec/volumes",
            "/spec/containers/0/volumeMounts",
            "/spec/initContainers/0/volumeMounts",
            "/spec/initContainers/0",
            "/spec/initContainers/1",
        ],
    );
    check(
        pod,
        &[
            ("/spec/initContainers/0/name", json!("keeper-secrets-init")),
            (
                "/spec/initContainers/1/name",
                json!("keeper-secrets-sidecar"),
            ),
            ("/spec/initContainers/2/name", json!("migrate")),
            ("/spec/initContainers/2/volumeMounts", json!([ro_mount()])),
            ("/spec/initContainers/3", Value::Null),
        ],
    );
}

#[test]
fn init_first_false_appends_after_the_pods_init_containers() {
    let pod = PodJson::deployment()
        .with_annotation("init-first", "false")
        .with_init_container(json!({"name": "istio-init", "image": "proxyv2"}));
    check_paths(
        pod.clone(),
        &[
            "/metadata/annotations/keeper.security~1injected",
            "/metadata/annotations/keeper.security~1sidecar-spec",
            "/spec/volumes",
            "/spec/containers/0/volumeMounts",
            "/spec/initContainers/0/volumeMounts",
            "/spec/initContainers/-",
            "/spec/initContainers/-",
        ],
    );
    check(
        pod,
        &[
            ("/spec/initContainers/0/name", json!("istio-init")),
            ("/spec/initContainers/1/name", json!("keeper-secrets-init")),
            (
                "/spec/initContainers/2/name",
                json!("keeper-secrets-sidecar"),
            ),
        ],
    );
}

#[test]
fn classic_sidecar_when_native_is_off() {
    let expect = [
        ("/spec/initContainers/0/name", json!("keeper-secrets-init")),
        ("/spec/initContainers/1", Value::Null),
        ("/spec/containers/1/name", json!("keeper-secrets-sidecar")),
        ("/spec/containers/1/restartPolicy", Value::Null),
        (
            "/spec/containers/1/readinessProbe/httpGet/path",
            json!("/ready"),
        ),
    ];
    check(
        PodJson::deployment().with_annotation("native-sidecar", "false"),
        &expect,
    );
    let defaults = Defaults {
        native_sidecar: false,
        ..Defaults::default()
    };
    check_with(PodJson::deployment(), &defaults, &expect);
    check_paths(
        PodJson::deployment().with_annotation("native-sidecar", "false"),
        &[
            "/metadata/annotations/keeper.security~1injected",
            "/metadata/annotations/keeper.security~1sidecar-spec",
            "/spec/volumes",
            "/spec/containers/0/volumeMounts",
            "/spec/initContainers",
            "/spec/containers/-",
        ],
    );
}

#[test]
fn native_sidecar_by_annotation_overrides_the_default() {
    let defaults = Defaults {
        native_sidecar: false,
        ..Defaults::default()
    };
    check_with(
        PodJson::deployment().with_annotation("native-sidecar", "true"),
        &defaults,
        &[
            (
                "/spec/initContainers/1/name",
                json!("keeper-secrets-sidecar"),
            ),
            ("/spec/initContainers/1/restartPolicy", json!("Always")),
            ("/spec/containers/1", Value::Null),
        ],
    );
}

#[test]
fn init_only_adds_no_sidecar() {
    let pod = PodJson::deployment()
        .with_annotation("init-only", "true")
        .with("/spec/restartPolicy", json!("Never"));
    check(
        pod.clone(),
        &[
            ("/spec/initContainers/0/name", json!("keeper-secrets-init")),
            ("/spec/initContainers/1", Value::Null),
            ("/spec/containers/1", Value::Null),
            ("/spec/containers/0/volumeMounts", json!([ro_mount()])),
        ],
    );
    check_paths(
        pod,
        &[
            "/metadata/annotations/keeper.security~1injected",
            "/metadata/annotations/keeper.security~1sidecar-spec",
            "/spec/volumes",
            "/spec/containers/0/volumeMounts",
            "/spec/initContainers",
        ],
    );
}

#[test]
fn every_container_is_mounted_by_default() {
    let pod = PodJson::deployment()
        .with_container(json!({"name": "worker", "image": "web-worker:1"}))
        .with_container(json!({"name": "nginx", "image": "nginx:1.27", "volumeMounts": []}));
    check(
        pod,
        &[
            ("/spec/containers/0/volumeMounts", json!([ro_mount()])),
            ("/spec/containers/1/volumeMounts", json!([ro_mount()])),
            ("/spec/containers/2/volumeMounts", json!([ro_mount()])),
        ],
    );
}

#[test]
fn per_container_selection_mounts_only_the_named_containers() {
    let pod = PodJson::deployment()
        .with_annotation("containers", "worker, migrate")
        .with_container(json!({"name": "worker", "image": "web-worker:1"}))
        .with_container(json!({"name": "istio-proxy", "image": "proxyv2:1.24"}))
        .with_init_container(json!({"name": "migrate", "image": "web-migrate:1"}));
    check(
        pod,
        &[
            ("/spec/containers/0/volumeMounts", Value::Null),
            ("/spec/containers/1/volumeMounts", json!([ro_mount()])),
            ("/spec/containers/2/volumeMounts", Value::Null),
            ("/spec/initContainers/2/name", json!("migrate")),
            ("/spec/initContainers/2/volumeMounts", json!([ro_mount()])),
        ],
    );
}

#[test]
fn unknown_selected_container_is_denied() {
    check_denied(
        PodJson::deployment().with_annotation("containers", "api"),
        r#"keeper.security/containers: the pod has no container named "api": expected some of app"#,
    );
}

#[test]
fn signal_shares_the_process_namespace() {
    let pod = PodJson::deployment()
        .with_annotation("signal", "SIGHUP")
        .with(
            "/spec/securityContext",
            json!({"runAsUser": 1000, "runAsGroup": 3000}),
        );
    check_paths(
        pod.clone(),
        &[
            "/metadata/annotations/keeper.security~1injected",
            "/metadata/annotations/keeper.security~1sidecar-spec",
            "/spec/shareProcessNamespace",
            "/spec/volumes",
            "/spec/containers/0/volumeMounts",
            "/spec/initContainers",
        ],
    );
    // The keeper containers inherit the pod's user, so kill(2) needs no capability.
    check(
        pod.clone(),
        &[
            ("/spec/shareProcessNamespace", json!(true)),
            (
                "/spec/initContainers/1/securityContext",
                restricted(Value::Null, Value::Null),
            ),
        ],
    );
    check_warnings(pod.clone(), &[]);
    check_spec(pod, |spec| {
        assert_eq!(
            serde_json::to_value(&spec.signal).unwrap(),
            json!({"signal": "SIGHUP"})
        );
        assert_eq!(spec.file_mode.to_string(), "0400");
    });
}

#[test]
fn signal_to_another_user_needs_the_kill_capability() {
    let pod = PodJson::deployment()
        .with_annotation("signal", "usr1")
        .with_annotation("signal-process", "nginx");
    let mut sc = restricted(json!(65532), json!(65532));
    sc["capabilities"] = json!({"add": ["KILL"], "drop": ["ALL"]});
    check(
        pod.clone(),
        &[("/spec/initContainers/1/securityContext", sc)],
    );
    check_warnings(
        pod.clone(),
        &[
            "keeper.security/signal: the sidecar gets capability KILL to signal processes of other users, which restricted pod security rejects; set runAsUser on the pod or keeper.security/output-owner to the application's user to avoid it",
        ],
    );
    check_spec(pod, |spec| {
        assert_eq!(
            serde_json::to_value(&spec.signal).unwrap(),
            json!({"signal": "SIGUSR1", "process": "nginx"})
        );
    });
}

#[test]
fn signal_keeps_an_existing_shared_process_namespace() {
    let pod = PodJson::deployment()
        .with_annotation("signal", "SIGHUP")
        .with("/spec/shareProcessNamespace", json!(true));
    let (mutation, _) = admit(&pod);
    assert!(
        !mutation
            .patch
            .as_array()
            .unwrap()
            .iter()
            .any(|op| op["path"] == "/spec/shareProcessNamespace")
    );
}

#[test]
fn signal_with_a_private_process_namespace_is_denied() {
    check_denied(
        PodJson::deployment()
            .with_annotation("signal", "SIGHUP")
            .with("/spec/shareProcessNamespace", json!(false)),
        "keeper.security/signal: needs shareProcessNamespace: true so that the sidecar sees the application's processes, but the pod sets it to false",
    );
}

#[test]
fn signal_with_init_only_does_nothing_and_says_so() {
    let pod = PodJson::deployment()
        .with_annotation("signal", "SIGHUP")
        .with_annotation("init-only", "true");
    check(pod.clone(), &[("/spec/shareProcessNamespace", Value::Null)]);
    check_spec(pod, |spec| assert_eq!(spec.signal, None));
}

#[test]
fn already_injected_pods_get_an_empty_patch() {
    let (mutation, patched) = admit(&PodJson::deployment());
    let injected = PodJson(patched);
    let (again, _) = admit(&injected);
    assert!(again.is_empty());
    assert_eq!(again.outcome, Outcome::AlreadyInjected);
    assert_eq!(again.warnings, Vec::<String>::new());
    assert!(!mutation.is_empty());
}

#[test]
fn marker_alone_means_injected_with_a_warning() {
    let pod = PodJson::deployment().with_annotation("injected", "true");
    let (mutation, _) = admit(&pod);
    assert!(mutation.is_empty());
    assert_eq!(mutation.outcome, Outcome::AlreadyInjected);
    assert_eq!(
        mutation.warnings,
        [
            "keeper.security/injected is \"true\" but the pod has no keeper-secrets-init container, so nothing was injected: remove the annotation to inject"
        ]
    );
}

#[test]
fn our_container_names_mean_injected() {
    for pod in [
        PodJson::deployment()
            .with_container(json!({"name": "keeper-secrets-sidecar", "image": "x"})),
        PodJson::deployment()
            .with_init_container(json!({"name": "keeper-secrets-init", "image": "x"})),
    ] {
        let (mutation, _) = admit(&pod);
        assert!(mutation.is_empty());
        assert_eq!(mutation.outcome, Outcome::AlreadyInjected);
    }
}

#[test]
fn a_marker_other_than_true_is_overwritten() {
    check(
        PodJson::deployment().with_annotation("injected", "false"),
        &[(
            "/metadata/annotations/keeper.security~1injected",
            json!("true"),
        )],
    );
}

#[test]
fn invalid_annotations_of_an_injected_pod_are_not_read_again() {
    let (_, patched) = admit(&PodJson::deployment());
    let pod = PodJson(patched).with_annotation("refresh-interval", "soon");
    let (mutation, _) = admit(&pod);
    assert!(mutation.is_empty());
}

#[test]
fn a_declared_tmpfs_volume_is_used_as_it_is() {
    // The shape of the upstream example 13: the pod declares and mounts keeper-secrets itself.
    let pod = PodJson::deployment()
        .with_volume(json!({"name": "keeper-secrets", "emptyDir": {"medium": "Memory"}}))
        .with("/spec/containers/0/volumeMounts", json!([ro_mount()]))
        .with_container(json!({"name": "worker", "image": "w"}));
    check_paths(
        pod.clone(),
        &[
            "/metadata/annotations/keeper.security~1injected",
            "/metadata/annotations/keeper.security~1sidecar-spec",
            "/spec/containers/1/volumeMounts",
            "/spec/initContainers",
        ],
    );
    check(
        pod,
        &[
            ("/spec/volumes/1", Value::Null),
            ("/spec/containers/0/volumeMounts/1", Value::Null),
            ("/spec/containers/1/volumeMounts", json!([ro_mount()])),
        ],
    );
}

#[test]
fn a_declared_volume_on_disk_is_denied() {
    check_denied(
        PodJson::deployment().with_volume(json!({"name": "keeper-secrets", "emptyDir": {}})),
        "pod conflicts with injection: the pod declares volume keeper-secrets, but not as an emptyDir with medium Memory: remove it, the webhook adds it (secrets must stay in memory)",
    );
}

#[test]
fn another_volume_at_our_mount_path_is_denied() {
    check_denied(
        PodJson::deployment()
            .with_volume(json!({"name": "old", "secret": {"secretName": "old"}}))
            .with(
                "/spec/containers/0/volumeMounts",
                json!([{"name": "old", "mountPath": "/keeper/secrets/"}]),
            ),
        r#"pod conflicts with injection: container "app" mounts volume "old" at /keeper/secrets, where the keeper secrets go: move it"#,
    );
}

#[test]
fn the_health_port_must_be_free() {
    check_denied(
        PodJson::deployment().with(
            "/spec/containers/0/ports/-",
            json!({"containerPort": 9102, "name": "metrics"}),
        ),
        r#"pod conflicts with injection: container "app" uses port 9102, which the keeper sidecar serves health and metrics on: use another port, or change the webhook's health_port"#,
    );
    // Without a sidecar the port is not needed.
    check(
        PodJson::deployment()
            .with_annotation("init-only", "true")
            .with("/spec/containers/0/ports/-", json!({"containerPort": 9102})),
        &[("/spec/initContainers/0/name", json!("keeper-secrets-init"))],
    );
}

#[test]
fn windows_pods_are_denied() {
    check_denied(
        PodJson::deployment().with("/spec/os", json!({"name": "windows"})),
        r#"pod conflicts with injection: the keeper containers run on Linux only, but the pod's spec.os.name is "windows""#,
    );
    check_denied(
        PodJson::deployment().with(
            "/spec/nodeSelector",
            json!({"kubernetes.io/os": "windows", "pool": "win"}),
        ),
        r#"pod conflicts with injection: the keeper containers run on Linux only, but the pod's nodeSelector kubernetes.io/os is "windows""#,
    );
    let affinity = |terms: serde_json::Value| json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}}});
    let os = |operator: &str, values: &[&str]| {
        json!({"matchExpressions": [
            {"key": "pool", "operator": "Exists"},
            {"key": "kubernetes.io/os", "operator": operator, "values": values}
        ]})
    };
    check_denied(
        PodJson::deployment().with(
            "/spec/affinity",
            affinity(json!([os("In", &["windows"]), os("NotIn", &["linux"])])),
        ),
        r#"pod conflicts with injection: the keeper containers run on Linux only, but the pod's required node affinity matches no Linux node (kubernetes.io/os In ["windows"])"#,
    );
    // A pod that may still land on Linux, or that names Linux, is injected.
    for pod in [
        PodJson::deployment().with("/spec/nodeSelector", json!({"kubernetes.io/os": "linux"})),
        PodJson::deployment().with("/spec/os", json!({"name": "linux"})),
        PodJson::deployment().with(
            "/spec/affinity",
            affinity(json!([
                os("In", &["windows"]),
                os("In", &["linux", "windows"])
            ])),
        ),
        PodJson::deployment().with(
            "/spec/affinity",
            affinity(json!([os("NotIn", &["windows"])])),
        ),
    ] {
        let (mutation, _) = admit(&pod);
        assert!(!mutation.patch.as_array().unwrap().is_empty(), "{pod:?}");
    }
}

#[test]
fn a_pod_without_containers_is_invalid() {
    check_denied(
        PodJson::deployment().with("/spec/containers", json!([])),
        "invalid pod: the pod has no containers",
    );
}

#[test]
fn not_requested_pods_get_an_empty_patch() {
    for pod in [
        PodJson::bare(),
        PodJson::deployment().without_annotation("inject"),
        PodJson::deployment().with_annotation("inject", "false"),
    ] {
        let (mutation, patched) = admit(&pod);
        assert!(mutation.is_empty());
        assert_eq!(mutation.outcome, Outcome::NotRequested);
        assert_eq!(&patched, pod.json());
    }
}

#[test]
fn files_belong_to_the_pods_user() {
    // The pod's user reads the files: the keeper containers run as it, and files are 0400.
    let pod = PodJson::deployment().with("/spec/securityContext", json!({"runAsUser": 1000}));
    check(
        pod.clone(),
        &[(
            "/spec/initContainers/0/securityContext",
            restricted(Value::Null, Value::Null),
        )],
    );
    check_spec(pod, |spec| assert_eq!(spec.file_mode.to_string(), "0400"));
}

#[test]
fn files_are_group_readable_with_an_fs_group() {
    let pod = PodJson::deployment()
        .with(
            "/spec/securityContext",
            json!({"runAsUser": 1000, "fsGroup": 2000}),
        )
        .with(
            "/spec/containers/0/securityContext",
            json!({"runAsUser": 1001}),
        );
    check_spec(pod, |spec| assert_eq!(spec.file_mode.to_string(), "0440"));
}

#[test]
fn files_are_world_readable_when_the_readers_are_unknown() {
    check_spec(PodJson::deployment(), |spec| {
        assert_eq!(spec.file_mode.to_string(), "0444")
    });
}

#[test]
fn a_root_pod_user_is_not_inherited() {
    let pod = PodJson::deployment().with("/spec/securityContext", json!({"runAsUser": 0}));
    check(
        pod,
        &[(
            "/spec/initContainers/0/securityContext",
            restricted(json!(65532), json!(65532)),
        )],
    );
}

#[test]
fn output_owner_and_mode_override_the_choice() {
    let pod = PodJson::deployment()
        .with_annotation("output-owner", "1000:3000")
        .with_annotation("output-mode", "0440");
    check(
        pod.clone(),
        &[(
            "/spec/initContainers/0/securityContext",
            restricted(json!(1000), json!(3000)),
        )],
    );
    check_spec(pod, |spec| assert_eq!(spec.file_mode.to_string(), "0440"));
}

#[test]
fn resource_overrides_merge_with_the_defaults() {
    check(
        PodJson::deployment()
            .with_annotation("cpu-limit", "500m")
            .with_annotation("memory-request", "32Mi"),
        &[(
            "/spec/initContainers/0/resources",
            json!({"requests": {"cpu": "20m", "memory": "32Mi"}, "limits": {"cpu": "500m", "memory": "128Mi"}}),
        )],
    );
    let defaults = Defaults {
        resources: crate::Resources {
            cpu_request: None,
            cpu_limit: None,
            memory_request: None,
            memory_limit: None,
        },
        ..Defaults::default()
    };
    check_with(
        PodJson::deployment(),
        &defaults,
        &[("/spec/initContainers/0/resources", Value::Null)],
    );
}

#[test]
fn a_request_above_its_limit_is_denied() {
    check_denied(
        PodJson::deployment().with_annotation("memory-request", "256Mi"),
        "keeper.security/memory-request: the memory request 256Mi exceeds the memory limit 128Mi: expected a request no larger than the limit",
    );
    check_denied(
        PodJson::deployment().with_annotation("cpu-limit", "10m"),
        "keeper.security/cpu-limit: the cpu request 20m exceeds the cpu limit 10m: expected a request no larger than the limit",
    );
}

#[test]
fn volume_size_limit() {
    let expect = [(
        "/spec/volumes/0/emptyDir",
        json!({"medium": "Memory", "sizeLimit": "16Mi"}),
    )];
    check(
        PodJson::deployment().with_annotation("volume-size-limit", "16Mi"),
        &expect,
    );
    let defaults = Defaults {
        volume_size_limit: Some("16Mi".to_owned()),
        ..Defaults::default()
    };
    check_with(PodJson::deployment(), &defaults, &expect);
}

#[test]
fn custom_ca_from_a_secret_or_a_config_map() {
    let pod = PodJson::deployment().with_annotation("ca-cert-secret", "corp-ca");
    check(
        pod.clone(),
        &[
            (
                "/spec/volumes/1",
                json!({"name": "keeper-ca-cert", "secret": {"secretName": "corp-ca", "items": [{"key": "ca.crt", "path": "ca.crt"}]}}),
            ),
            (
                "/spec/initContainers/0/volumeMounts/1",
                json!({"name": "keeper-ca-cert", "mountPath": "/keeper/ca", "readOnly": true}),
            ),
            ("/spec/containers/0/volumeMounts", json!([ro_mount()])),
        ],
    );
    check_spec(pod, |spec| {
        assert_eq!(spec.ca_cert_file.as_deref(), Some("/keeper/ca/ca.crt"));
    });
    check(
        PodJson::deployment()
            .with_annotation("ca-cert-configmap", "corp-ca")
            .with_annotation("ca-cert-key", "root.pem"),
        &[(
            "/spec/volumes/1",
            json!({"name": "keeper-ca-cert", "configMap": {"name": "corp-ca", "items": [{"key": "root.pem", "path": "ca.crt"}]}}),
        )],
    );
    check_denied(
        PodJson::deployment()
            .with_annotation("ca-cert-secret", "corp-ca")
            .with_volume(json!({"name": "keeper-ca-cert", "emptyDir": {}})),
        "pod conflicts with injection: the pod declares volume keeper-ca-cert, which keeper.security/ca-cert-* needs: rename it",
    );
}

#[test]
fn cloud_auth_gives_the_keeper_containers_the_applications_workload_identity() {
    // What EKS's pod identity webhook puts into every container when it runs before us.
    let irsa = json!({"name": "irsa-app", "image": "app",
        "env": [{"name": "AWS_STS_REGIONAL_ENDPOINTS", "value": "regional"},
                {"name": "AWS_ROLE_ARN", "value": "arn:aws:iam::111122223333:role/keeper"},
                {"name": "AWS_WEB_IDENTITY_TOKEN_FILE", "value": "/var/run/secrets/eks.amazonaws.com/serviceaccount/token"},
                {"name": "UNRELATED", "value": "x"},
                {"name": "FROM_SECRET", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}],
        "volumeMounts": [{"name": "aws-iam-token", "mountPath": "/var/run/secrets/eks.amazonaws.com/serviceaccount", "readOnly": true}]});
    let pod = PodJson::deployment()
        .without_annotation("ksm-config")
        .with_annotation("auth-method", "aws-secrets-manager")
        .with_annotation("aws-secret-id", "prod/keeper/ksm-config")
        .with_annotation("aws-region", "us-west-2")
        .with_container(irsa);
    let (mutation, patched) = admit(&pod);
    assert!(mutation.warnings.is_empty(), "{:?}", mutation.warnings);
    let spec = spec_at(&patched, "/spec/initContainers/0");
    assert_eq!(
        spec.auth,
        Auth::AwsSecretsManager {
            secret_id: "prod/keeper/ksm-config".to_owned(),
            region: Some("us-west-2".to_owned())
        }
    );
    for keeper in ["/spec/initContainers/0", "/spec/initContainers/1"] {
        let container = patched.pointer(keeper).unwrap();
        let env: Vec<(&str, Option<&str>)> = container["env"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["name"].as_str().unwrap(), e["value"].as_str()))
            .collect();
        assert!(
            !env.iter()
                .any(|(n, _)| *n == bulwark_sidecar_spec::KSM_CONFIG_ENV),
            "{env:?}"
        );
        assert!(
            env.contains(&(
                "AWS_ROLE_ARN",
                Some("arn:aws:iam::111122223333:role/keeper")
            )),
            "{env:?}"
        );
        assert!(
            env.contains(&("AWS_STS_REGIONAL_ENDPOINTS", Some("regional"))),
            "{env:?}"
        );
        assert!(
            !env.iter()
                .any(|(n, _)| *n == "UNRELATED" || *n == "FROM_SECRET"),
            "{env:?}"
        );
        assert!(
            container["volumeMounts"]
                .as_array()
                .unwrap()
                .contains(&json!({"name": "aws-iam-token", "mountPath": "/var/run/secrets/eks.amazonaws.com/serviceaccount", "readOnly": true})),
            "{container}"
        );
    }

    // Azure Workload Identity's variables; GCP needs none (the metadata server answers).
    let azure = json!({"name": "azure-app", "image": "app",
        "env": [{"name": "AZURE_CLIENT_ID", "value": "c1"}, {"name": "AZURE_TENANT_ID", "value": "t1"},
                {"name": "AZURE_FEDERATED_TOKEN_FILE", "value": "/var/run/secrets/azure/tokens/azure-identity-token"},
                {"name": "AZURE_AUTHORITY_HOST", "value": "https://login.microsoftonline.com/"}],
        "volumeMounts": [{"name": "azure-identity-token", "mountPath": "/var/run/secrets/azure/tokens", "readOnly": true}]});
    let (_, patched) = admit(
        &PodJson::deployment()
            .without_annotation("ksm-config")
            .with_annotation("auth-method", "azure-key-vault")
            .with_annotation("azure-vault-name", "mykeyvault")
            .with_annotation("azure-secret-name", "ksm")
            .with_container(azure),
    );
    let env = patched
        .pointer("/spec/initContainers/0/env")
        .unwrap()
        .to_string();
    assert!(
        env.contains("AZURE_FEDERATED_TOKEN_FILE") && env.contains("\"t1\""),
        "{env}"
    );
    check_spec(
        PodJson::deployment()
            .without_annotation("ksm-config")
            .with_annotation("auth-method", "gcp-secret-manager")
            .with_annotation("gcp-secret-id", "projects/p/secrets/s/versions/1"),
        |spec| {
            assert_eq!(
                spec.auth,
                Auth::GcpSecretManager {
                    secret_id: "projects/p/secrets/s/versions/1".to_owned()
                }
            );
        },
    );

    // No identity yet: admitted (the identity webhook may run after us), with a warning.
    check_warnings(
        PodJson::deployment()
            .without_annotation("ksm-config")
            .with_annotation("auth-method", "azure-key-vault")
            .with_annotation("azure-vault-name", "mykeyvault")
            .with_annotation("azure-secret-name", "ksm"),
        &[
            "keeper.security/auth-method azure-key-vault: no container has AZURE_FEDERATED_TOKEN_FILE yet; the keeper containers need Azure Workload Identity's webhook to add it (label the pod azure.workload.identity/use: \"true\")",
        ],
    );
}

#[test]
fn ksm_config_comes_from_the_defaults_when_the_pod_names_none() {
    let defaults = Defaults {
        ksm_config: Some("cluster-keeper".to_owned()),
        ..Defaults::default()
    };
    check_with(
        PodJson::deployment().without_annotation("ksm-config"),
        &defaults,
        &[(
            "/spec/initContainers/0/env/1/valueFrom/secretKeyRef/name",
            json!("cluster-keeper"),
        )],
    );
    check_denied(
        PodJson::deployment().without_annotation("ksm-config"),
        "keeper.security/ksm-config: required with keeper.security/auth-method: secret (the default): expected the name of a Secret in the pod's namespace whose key config holds the KSM configuration",
    );
}

#[test]
fn defaults_reach_the_spec_and_the_containers() {
    let defaults = Defaults {
        image: "registry.example.com/injector-sidecar:1.2.3".to_owned(),
        image_pull_policy: None,
        refresh_interval: "10m".parse().unwrap(),
        fail_on_error: false,
        health_port: 9200,
        args: vec!["--log-format=json".to_owned()],
        ..Defaults::default()
    };
    let (mutation, patched) = admit_with(&PodJson::deployment(), &defaults);
    let sidecar = &patched["spec"]["initContainers"][1];
    assert_eq!(
        sidecar["image"],
        "registry.example.com/injector-sidecar:1.2.3"
    );
    assert_eq!(sidecar.get("imagePullPolicy"), None);
    assert_eq!(
        sidecar["args"],
        json!(["--mode=sidecar", "--log-format=json"])
    );
    assert_eq!(sidecar["livenessProbe"]["httpGet"]["port"], 9200);
    let spec = mutation.spec.unwrap();
    assert_eq!(spec.refresh_interval.to_string(), "10m");
    assert!(!spec.fail_on_error);
    assert_eq!(spec.health_port, 9200);
}

#[test]
fn annotations_override_the_defaults_in_the_spec() {
    check_spec(
        PodJson::deployment()
            .with_annotation("refresh-interval", "1h30m")
            .with_annotation("fail-on-error", "false")
            .with_annotation("strict-lookup", "true"),
        |spec| {
            assert_eq!(spec.refresh_interval.to_string(), "1h30m");
            assert!(!spec.fail_on_error);
            assert!(spec.strict_lookup);
        },
    );
}

#[test]
fn every_selection_form_reaches_the_spec() {
    let config = "secrets:\n  - record: api-keys\n    path: api.env\n    format: env\n    envPrefix: API_\nfolders:\n  - path: Production/Shared\n    outputPath: shared\n";
    check_spec(
        PodJson::deployment()
            .with_annotation("secrets", "stripe, slack")
            .with_annotation(
                "secret-db-pass",
                "database-credentials[password]:/keeper/secrets/db/password",
            )
            .with_annotation("file-cert", "tls-certificate:server.crt")
            .with_annotation("folder-uid", "AbCdEfGhIjKlMnOpQrStUv")
            .with_annotation("config", config),
        |spec| {
            let paths: Vec<&str> = spec.secrets.iter().map(|s| s.path.as_str()).collect();
            assert_eq!(
                paths,
                [
                    "/keeper/secrets/database-credentials.json",
                    "/keeper/secrets/stripe.json",
                    "/keeper/secrets/slack.json",
                    "/keeper/secrets/db/password",
                    "/keeper/secrets/server.crt",
                    "/keeper/secrets/api.env",
                ]
            );
            let dirs: Vec<&str> = spec.folders.iter().map(|f| f.output_dir.as_str()).collect();
            assert_eq!(dirs, ["/keeper/secrets/shared", "/keeper/secrets"]);
        },
    );
}

#[test]
fn the_patch_is_the_same_for_the_same_pod() {
    let (a, _) = admit(&PodJson::deployment().with_annotation("secrets", "b, a, c"));
    let (b, _) = admit(&PodJson::deployment().with_annotation("secrets", "b, a, c"));
    assert_eq!(patch_json(&a), patch_json(&b));
}

#[test]
fn signal_reaches_unmounted_containers_too() {
    // Without signal-process the sidecar signals every other container's main process, so a
    // container of another user needs the capability even when it gets no mount.
    let pod = PodJson::deployment()
        .with_annotation("signal", "SIGHUP")
        .with_annotation("containers", "app")
        .with("/spec/securityContext", json!({"runAsUser": 1000}))
        .with_container(
            json!({"name": "worker", "image": "w", "securityContext": {"runAsUser": 2000}}),
        );
    check(
        pod,
        &[(
            "/spec/initContainers/1/securityContext/capabilities",
            json!({"add": ["KILL"], "drop": ["ALL"]}),
        )],
    );
}

#[test]
fn resources_hold_only_what_is_set() {
    let request = request_of(&[
        ("keeper.security/inject", "true"),
        ("keeper.security/secret", "db"),
        ("keeper.security/memory-limit", "64Mi"),
    ]);
    let none = crate::Resources {
        cpu_request: None,
        cpu_limit: None,
        memory_request: None,
        memory_limit: None,
    };
    let mut defaults = Defaults {
        resources: none.clone(),
        ..Defaults::default()
    };
    let json =
        |r: Option<crate::objects::Resources<'_>>| r.map(|r| serde_json::to_value(r).unwrap());
    assert_eq!(
        json(crate::plan::resources(&request.resources, &defaults)),
        Some(json!({"limits": {"memory": "64Mi"}}))
    );
    defaults.resources.cpu_request = Some("5m".to_owned());
    assert_eq!(
        json(crate::plan::resources(&request.resources, &defaults)),
        Some(json!({"limits": {"memory": "64Mi"}, "requests": {"cpu": "5m"}}))
    );
    let mut bare = request.clone();
    bare.resources = Default::default();
    defaults.resources = none;
    assert_eq!(crate::plan::resources(&bare.resources, &defaults), None);
}

#[test]
fn the_mount_is_volume_at_mount_path() {
    let mount: k8s_openapi::api::core::v1::VolumeMount =
        serde_json::from_value(serde_json::to_value(super::MOUNT).unwrap()).unwrap();
    assert_eq!(mount.name, crate::VOLUME);
    assert_eq!(mount.mount_path, crate::MOUNT_PATH);
    assert_eq!(mount.read_only, Some(true));
}
