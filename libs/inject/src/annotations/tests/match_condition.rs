//! The webhook's `matchConditions` and the annotation parser agree on every value of
//! `keeper.security/inject`: the API server sends a pod to the webhook exactly when the
//! parser would inject it or deny it, so no pod the parser accepts is silently left alone.
//!
//! The expression is read from the shipped manifest and evaluated by the `cel` crate, an
//! interpreter written apart from ours, with the strings extension Kubernetes enables
//! (`trim()` and `lowerAscii()`; cel-go's `trim` strips Unicode White_Space, as Rust's does).

use std::collections::BTreeMap;
use std::sync::Arc;

use cel::{Context, Env, Program, Value};

use super::{map, parse};

/// Relative to the package root, where cargo runs tests (see `xtask tidy`'s `fixture_paths`).
const MANIFEST: &str = "../../manifests/injector-webhook/base/mutatingwebhookconfiguration.yaml";

/// The one match condition of the shipped webhook configuration.
fn expression() -> String {
    let text = std::fs::read_to_string(MANIFEST).unwrap_or_else(|e| panic!("{MANIFEST}: {e}"));
    let config: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
    let conditions = config["webhooks"][0]["matchConditions"]
        .as_array()
        .unwrap_or_else(|| panic!("{MANIFEST} has no matchConditions"));
    assert_eq!(conditions.len(), 1, "{conditions:?}");
    conditions[0]["expression"].as_str().unwrap().to_owned()
}

/// What the API server decides for a pod with `annotations` (`None`: no annotations at all).
fn sends(
    program: &Program,
    env: &Arc<Env>,
    annotations: Option<&BTreeMap<String, String>>,
) -> bool {
    let mut metadata = serde_json::json!({"name": "web"});
    if let Some(annotations) = annotations {
        metadata["annotations"] = serde_json::to_value(annotations).unwrap();
    }
    let object = serde_json::json!({"metadata": metadata, "spec": {"containers": []}});
    let mut context = Context::with_env(env.clone());
    context
        .add_variable("object", cel::to_value(&object).unwrap())
        .unwrap();
    match program.execute(&context) {
        Ok(Value::Bool(sent)) => sent,
        other => panic!("the match condition evaluated to {other:?} for {annotations:?}"),
    }
}

#[test]
fn the_match_condition_sends_exactly_the_pods_the_parser_acts_on() {
    let mut env = Env::stdlib();
    env.add_extension(cel::extensions::strings).unwrap();
    let env = Arc::new(env);
    let expression = expression();
    let program = env
        .compile(&expression)
        .unwrap_or_else(|e| panic!("{expression}: {e:?}"));

    assert!(!sends(&program, &env, None));
    assert!(!sends(&program, &env, Some(&map(&[]))));
    assert!(!sends(&program, &env, Some(&map(&[("secret", "db")]))));
    let values = [
        "true",
        "True",
        "TRUE",
        " true ",
        "\ttrue\n",
        "\u{a0}true\u{2003}",
        "tRuE",
        "false",
        "False",
        "FALSE",
        " false\n",
        "\u{85}false",
        "yes",
        "no",
        "1",
        "0",
        "",
        " ",
        "tru e",
        "true.",
        "\"true\"",
        "ｔｒｕｅ",
        "truе",
        "fałse",
    ];
    for value in values {
        let annotations = map(&[
            ("inject", value),
            ("ksm-config", "keeper-auth"),
            ("secret", "db"),
        ]);
        // Injected or denied: either way the webhook must see the pod.
        let acts = parse(&annotations) != Ok(None);
        assert_eq!(
            sends(&program, &env, Some(&annotations)),
            acts,
            "keeper.security/inject: {value:?}: the parser {} it",
            if acts { "acts on" } else { "ignores" }
        );
    }
}
