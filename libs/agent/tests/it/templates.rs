//! The differential corpus: every template in `tests/templates/corpus.json` rendered by our
//! engine, against what Go's `text/template` with Sprig made of it (`expected.json`, written
//! by `golden.go` through `cargo xtask templates`). An output must be identical, byte for
//! byte; a template Go refuses (at parse or execution) must be refused here too. A case where
//! we deliberately differ carries `divergence` in the corpus: its reason, and our own output
//! or our refusal, which is then what is checked (and Go must still disagree, or the entry is
//! stale).

use std::collections::BTreeMap;

use bulwark_agent::template;
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
struct Corpus {
    data: BTreeMap<String, Value>,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    template: String,
    #[serde(default)]
    data: Option<String>,
    #[serde(default)]
    divergence: Option<Divergence>,
}

/// Where we differ from Go on purpose, or where our engine does and we say so.
#[derive(Deserialize)]
struct Divergence {
    reason: String,
    #[serde(flatten)]
    ours: Outcome,
}

#[derive(Deserialize)]
struct Expected {
    go: String,
    sprig: String,
    results: BTreeMap<String, Outcome>,
}

#[derive(Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "lowercase")]
enum Outcome {
    Output(String),
    Error(String),
}

#[test]
fn every_template_renders_as_go_renders_it() {
    let corpus: Corpus =
        serde_json::from_str(include_str!("../templates/corpus.json")).expect("corpus.json");
    let expected: Expected =
        serde_json::from_str(include_str!("../templates/expected.json")).expect("expected.json");
    let names: Vec<&String> = corpus.cases.iter().map(|c| &c.name).collect();
    assert_eq!(
        names
            .iter()
            .copied()
            .collect::<std::collections::BTreeSet<_>>(),
        expected.results.keys().collect(),
        "expected.json is not the corpus's: run `cargo xtask templates`"
    );

    let (mut same, mut refused, mut divergences, mut failures) = (0, 0, 0, Vec::new());
    for case in &corpus.cases {
        let data = &corpus.data[case.data.as_deref().unwrap_or("record")];
        let ours = template::render(&case.template, data);
        let go = &expected.results[&case.name];
        let name = &case.name;
        match (&case.divergence, go, &ours) {
            (Some(d), _, _)
                if go == &d.ours
                    || matches!((go, &d.ours), (Outcome::Error(_), Outcome::Error(_))) =>
            {
                failures.push(format!(
                    "{name}: Go now agrees with the divergence ({}); remove it",
                    d.reason
                ));
            }
            (
                Some(Divergence {
                    ours: Outcome::Output(want),
                    ..
                }),
                _,
                Ok(got),
            ) if got == want => divergences += 1,
            (
                Some(Divergence {
                    ours: Outcome::Error(want),
                    ..
                }),
                _,
                Err(e),
            ) if e.to_string().contains(want.as_str()) => divergences += 1,
            (Some(d), _, _) => failures.push(format!(
                "{name}: diverges from Go as listed ({}), expected {:?}, got {ours:?}",
                d.reason, d.ours
            )),
            (None, Outcome::Output(want), Ok(got)) if got == want => same += 1,
            (None, Outcome::Error(_), Err(_)) => refused += 1,
            (None, go, ours) => failures.push(format!(
                "{name}: {:?}\n    Go:   {go:?}\n    ours: {ours:?}",
                case.template
            )),
        }
    }
    println!(
        "template corpus against {} with Sprig {}: {} cases, {same} identical outputs, {refused} refused by both, {divergences} listed divergences, {} differences",
        expected.go,
        expected.sprig,
        corpus.cases.len(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} differences from Go:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
