//! Tests: every case of upstream's rule schema, first-match order, the refusals, the
//! shipped rules against upstream's regexes run one by one, and lines matched in pairs as
//! they are one by one.

use std::collections::HashMap;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use regex_automata::{Input, MatchKind, PatternSet, meta};

use super::walk::Walk;
use super::*;
use crate::model::Labels;

fn set(yaml: &str) -> RuleSet {
    RuleSet::parse(yaml, "rules.yaml").unwrap_or_else(|e| panic!("{e}"))
}

fn error(yaml: &str) -> String {
    match RuleSet::parse(yaml, "rules.yaml") {
        Ok(_) => panic!("accepted:\n{yaml}"),
        Err(e) => e,
    }
}

/// The name of the rule `line` matches in `namespace` with `labels`.
fn hit(rules: &RuleSet, namespace: &str, labels: &[(&str, &str)], line: &str) -> String {
    hit_message(rules, namespace, labels, line, line)
}

fn hit_message(
    rules: &RuleSet,
    namespace: &str,
    labels: &[(&str, &str)],
    message: &str,
    line: &str,
) -> String {
    let labels = Labels::new(labels.iter().copied());
    let mut scratch = rules.matcher().scratch();
    let subject = Subject {
        namespace,
        labels: &labels,
        parts: &[message],
        line,
    };
    let one_pass = rules
        .first_match(&subject, &mut scratch)
        .map_or(DEFAULT_RULE, |r| r.name.as_str())
        .to_owned();
    assert_eq!(one_pass, one_by_one(rules, &subject), "line {line:?}");
    one_pass
}

/// `f` of `pattern` compiled (once per thread: the property tests ask thousands of times).
fn compiled(pattern: &str, f: impl FnOnce(&Regex) -> bool) -> bool {
    thread_local! {
        static COMPILED: std::cell::RefCell<HashMap<String, Regex>> = Default::default();
    }
    COMPILED.with_borrow_mut(|c| {
        let re = c
            .entry(pattern.to_owned())
            .or_insert_with(|| Regex::new(pattern).unwrap_or_else(|e| panic!("{e}")));
        f(re)
    })
}

/// Upstream's algorithm: each rule in turn, each criterion in turn.
fn one_by_one(rules: &RuleSet, s: &Subject<'_>) -> String {
    for r in rules.rules().iter().filter(|r| r.enabled) {
        if !r.namespaces.passes(s.namespace) {
            continue;
        }
        if !r.labels.iter().all(|(k, t)| t.passes(s.labels.get(k))) {
            continue;
        }
        if let Some(p) = &r.pattern
            && !compiled(p, |re| {
                s.parts.iter().any(|m| re.is_match(m)) || re.is_match(s.line)
            })
        {
            continue;
        }
        if !r.keywords.is_empty() {
            let hay = format!("{} {}", s.parts.join(" "), s.line).to_lowercase();
            if !r.keywords.iter().any(|k| hay.contains(&k.to_lowercase())) {
                continue;
            }
        }
        return r.name.clone();
    }
    DEFAULT_RULE.to_owned()
}

#[test]
fn first_rule_in_file_order_wins_not_the_leftmost_match() {
    let rules = set(r#"
rules:
  - {name: late-word, match: {pattern: "refused"}, priority: P3}
  - {name: early-word, match: {pattern: "dial"}, priority: P1}
"#);
    // "dial" starts first in the line, but `late-word` comes first in the file.
    assert_eq!(
        hit(&rules, "a", &[], "dial tcp: connection refused"),
        "late-word"
    );
    assert_eq!(hit(&rules, "a", &[], "dial tcp: timeout"), "early-word");
    assert_eq!(hit(&rules, "a", &[], "all good"), DEFAULT_RULE);
}

#[test]
fn keywords_are_any_of_case_insensitive_and_and_with_the_pattern() {
    let rules = set(r#"
rules:
  - {name: both, match: {pattern: "timeout", keywords: [payments, BILLING]}, priority: P1}
  - {name: words, match: {keywords: [OOM, "Größe"]}, priority: P2}
"#);
    assert_eq!(hit(&rules, "a", &[], "timeout calling billing"), "both");
    assert_eq!(hit(&rules, "a", &[], "Payments: timeout"), "both");
    assert_eq!(
        hit(&rules, "a", &[], "timeout calling search"),
        DEFAULT_RULE
    );
    assert_eq!(hit(&rules, "a", &[], "killed: oom"), "words");
    // Non-ASCII keywords fold case as Go's strings.ToLower does.
    assert_eq!(hit(&rules, "a", &[], "GRÖSSE überschritten"), DEFAULT_RULE);
    assert_eq!(hit(&rules, "a", &[], "GRÖẞE überschritten"), "words");
    assert_eq!(hit(&rules, "a", &[], "größe überschritten"), "words");
}

#[test]
fn pattern_matches_the_message_or_the_line() {
    let rules = set(r#"
rules:
  - {name: anchored, match: {pattern: "^connection reset"}, priority: P2}
"#);
    let line = r#"{"level":"error","msg":"connection reset by peer"}"#;
    assert_eq!(
        hit_message(&rules, "a", &[], "connection reset by peer", line),
        "anchored"
    );
    assert_eq!(hit(&rules, "a", &[], line), DEFAULT_RULE);
}

#[test]
fn patterns_see_each_part_of_a_message_unescaped_but_not_the_join() {
    let rules = set(r#"
rules:
  - {name: anchored-err, match: {pattern: "^dial tcp"}, priority: P1}
  - {name: quoted, match: {pattern: 'open "db"'}, priority: P2}
  - {name: across, match: {pattern: "sync: dial"}, priority: P3}
"#);
    let hit_read = |line: &str| {
        let read = crate::extract::read(line);
        let parts = read.parts();
        assert!(!parts.is_empty());
        let labels = Labels::default();
        let subject = Subject {
            namespace: "a",
            labels: &labels,
            parts: &parts,
            line,
        };
        let one_pass = rules
            .first_match(&subject, &mut rules.matcher().scratch())
            .map_or(DEFAULT_RULE, |r| r.name.as_str())
            .to_owned();
        assert_eq!(one_pass, one_by_one(&rules, &subject), "line {line:?}");
        one_pass
    };
    // The error is a slice of the line, where `^` does not hold before it.
    assert_eq!(
        hit_read(r#"{"msg":"failed to sync","err":"dial tcp 10.0.0.1:5432: refused"}"#),
        "anchored-err"
    );
    // The line holds `open \"db\"`; the message part is unescaped.
    assert_eq!(hit_read(r#"{"msg":"cannot open \"db\""}"#), "quoted");
    // The `: ` that joins a message and its error is not in the line: a pattern does not
    // match across it (upstream matches its `msg` alone).
    assert_eq!(
        hit_read(r#"{"msg":"failed to sync","err":"dial udp"}"#),
        DEFAULT_RULE
    );
    assert_eq!(
        crate::extract::message(r#"{"msg":"failed to sync","err":"dial udp"}"#),
        "failed to sync: dial udp"
    );
}

#[test]
fn labels_equal_negated_and_regex() {
    let rules = set(r#"
rules:
  - name: prod-api
    match: {pattern: "error", labels: {app: api, env: "~^prod(-|$)", tier: "!batch"}}
    priority: P1
"#);
    let ok = [("app", "api"), ("env", "prod-eu")];
    assert_eq!(hit(&rules, "a", &ok, "error"), "prod-api");
    // `!v` passes when the label is absent, and fails only on that exact value.
    let batch = [("app", "api"), ("env", "prod"), ("tier", "batch")];
    assert_eq!(hit(&rules, "a", &batch, "error"), DEFAULT_RULE);
    let web = [("app", "api"), ("env", "prod"), ("tier", "web")];
    assert_eq!(hit(&rules, "a", &web, "error"), "prod-api");
    assert_eq!(
        hit(
            &rules,
            "a",
            &[("app", "api"), ("env", "production")],
            "error"
        ),
        DEFAULT_RULE
    );
    // A missing label fails the equality and regex forms.
    assert_eq!(hit(&rules, "a", &[("env", "prod")], "error"), DEFAULT_RULE);
    assert_eq!(hit(&rules, "a", &[("app", "api")], "error"), DEFAULT_RULE);
}

#[test]
fn namespaces_positive_negative_and_mixed() {
    let rules = set(r#"
rules:
  - {name: only, match: {pattern: x, namespaces: [prod, staging]}, priority: P1}
  - {name: not-system, match: {pattern: y, namespaces: ["!kube-system", "!monitoring"]}, priority: P2}
  - {name: mixed, match: {pattern: z, namespaces: [prod, "!prod"]}, priority: P3}
  - {name: negated-first, match: {pattern: w, namespaces: ["!prod", prod]}, priority: P3}
"#);
    assert_eq!(hit(&rules, "prod", &[], "x"), "only");
    assert_eq!(hit(&rules, "dev", &[], "x"), DEFAULT_RULE);
    assert_eq!(hit(&rules, "dev", &[], "y"), "not-system");
    assert_eq!(hit(&rules, "kube-system", &[], "y"), DEFAULT_RULE);
    // Entries are read in order and the first that names the namespace decides, as upstream's.
    assert_eq!(hit(&rules, "prod", &[], "z"), "mixed");
    assert_eq!(hit(&rules, "prod", &[], "w"), DEFAULT_RULE);
    assert_eq!(hit(&rules, "dev", &[], "z"), DEFAULT_RULE);
}

#[test]
fn a_disabled_rule_is_skipped_and_the_next_one_matches() {
    let rules = set(r#"
rules:
  - {name: off, match: {pattern: boom}, priority: P1, enabled: false}
  - {name: on, match: {pattern: boom}, priority: P2}
"#);
    assert_eq!(hit(&rules, "a", &[], "boom"), "on");
    assert!(!rules.rules()[0].enabled);
}

#[test]
fn every_priority_alias_upstream_accepts() {
    for (text, want) in [
        ("P1", Priority::P1),
        ("p1", Priority::P1),
        ("critical", Priority::P1),
        ("CRITICAL", Priority::P1),
        ("P2", Priority::P2),
        ("p2", Priority::P2),
        ("high", Priority::P2),
        ("HIGH", Priority::P2),
        ("P3", Priority::P3),
        ("p3", Priority::P3),
        ("medium", Priority::P3),
        ("MEDIUM", Priority::P3),
        ("P4", Priority::P4),
        ("p4", Priority::P4),
        ("low", Priority::P4),
        ("LOW", Priority::P4),
        ("Low", Priority::P4),
    ] {
        let rules = set(&format!(
            "rules:\n  - {{name: r, match: {{pattern: x}}, priority: {text}}}\n"
        ));
        assert_eq!(rules.rules()[0].priority, want, "{text}");
    }
    let e = error("rules:\n  - {name: r, match: {pattern: x}, priority: P5}\n");
    assert!(
        e.contains("rules[0].priority") && e.contains("\"r\"") && e.contains("P5"),
        "{e}"
    );
}

#[test]
fn remediation_actions_params_and_cooldown() {
    let rules = set(r#"
rules:
  - name: up
    match: {pattern: a}
    priority: P2
    remediation: {action: scale-up, params: {replicas: "+2", max_replicas: "10"}, cooldown: 10m}
  - name: down
    match: {pattern: b}
    priority: P2
    remediation: {action: scale-down, params: {replicas: "3"}}
  - name: restart
    match: {pattern: c}
    priority: P1
    remediation: {action: restart-pod, cooldown: 0s}
"#);
    let r = rules.rules();
    assert_eq!(
        r[0].action,
        Action::ScaleUp {
            replicas: action::Replicas::By(2),
            max_replicas: Some(10)
        }
    );
    assert_eq!(r[0].cooldown.as_secs(), 600);
    assert_eq!(
        r[1].action,
        Action::ScaleDown {
            replicas: action::Replicas::To(3),
            min_replicas: 1
        }
    );
    // Absent or zero: upstream's 5 minutes.
    assert_eq!(r[1].cooldown, DEFAULT_COOLDOWN);
    assert_eq!(r[2].cooldown, DEFAULT_COOLDOWN);
}

#[test]
fn bad_rules_are_refused_with_file_rule_and_field() {
    let cases = [
        (
            "- {name: r, match: {pattern: '(unclosed'}, priority: P1}",
            "rules[0].match.pattern",
            "invalid regex",
        ),
        (
            "- {name: r, match: {}, priority: P1}",
            "rules[0].match.pattern",
            "pattern or keywords",
        ),
        (
            "- {name: r, match: {keywords: ['']}, priority: P1}",
            "rules[0].match.keywords[0]",
            "empty",
        ),
        (
            "- {name: r, match: {pattern: x, labels: {app: '~(['}}, priority: P1}",
            "rules[0].match.labels.app",
            "invalid regex",
        ),
        (
            "- {name: r, match: {pattern: x, namespaces: ['!']}, priority: P1}",
            "rules[0].match.namespaces[0]",
            "no namespace",
        ),
        (
            "- {name: r, match: {pattern: x}, priority: P1, remediation: {action: exec-script}}",
            "rules[0].remediation.action",
            "never runs it",
        ),
        (
            "- {name: r, match: {pattern: x}, priority: P1, remediation: {action: trigger-argo-workflow}}",
            "rules[0].remediation.action",
            "never runs it",
        ),
        (
            "- {name: r, match: {pattern: x}, priority: P1, remediation: {action: reboot}}",
            "rules[0].remediation.action",
            "unknown action",
        ),
        (
            "- {name: r, match: {pattern: x}, priority: P1, remediation: {action: scale-up, params: {replicas: '-1'}}}",
            "rules[0].remediation.params.replicas",
            "+N",
        ),
        (
            "- {name: r, match: {pattern: x}, priority: P1, remediation: {action: scale-up, params: {min_replicas: '1'}}}",
            "rules[0].remediation.params.min_replicas",
            "max_replicas",
        ),
        (
            "- {name: r, match: {pattern: x}, priority: P1, remediation: {action: none, params: {x: '1'}}}",
            "rules[0].remediation.params.x",
            "takes none",
        ),
        (
            "- {name: default, match: {pattern: x}, priority: P1}",
            "rules[0].name",
            "reserved",
        ),
        (
            "- {name: r, match: {pattern: x}, priority: P1}\n- {name: r, match: {pattern: y}, priority: P2}",
            "rules[1].name",
            "unique",
        ),
        ("- {name: r, match: {pattern: x}}", "rules[0]", "priority"),
        (
            "- {name: r, match: {pattern: x}, priority: P1, enabeld: true}",
            "rules[0]",
            "enabeld",
        ),
    ];
    for (rule, field, what) in cases {
        let e = error(&format!("rules:\n{rule}\n"));
        assert!(e.starts_with("rules.yaml"), "{e}");
        assert!(e.contains(field), "{rule}: want {field}: {e}");
        assert!(e.contains(what), "{rule}: want {what}: {e}");
        // Semantic errors name the rule; serde's (a missing or unknown key) give its index.
        let serde = rule.contains("enabeld") || rule.ends_with("{pattern: x}}");
        assert!(
            serde || e.contains("rule \"r\"") || e.contains("`default`"),
            "{rule}: {e}"
        );
    }
}

#[test]
fn the_seed_rules_yaml_loads() {
    let rules = set(r#"
rules:
  - name: crashloop-backoff
    match:
      pattern: "CrashLoopBackOff|Back-off restarting failed container"
    priority: P1
    remediation:
      action: restart-pod
      cooldown: 5m
    enabled: true
  # ... additional rules
"#);
    assert_eq!(rules.rules()[0].action.name(), "restart-pod");
}

#[test]
fn shipped_rules_cover_upstreams_fifteen_in_order_and_are_fast() {
    let rules = RuleSet::defaults();
    let names: Vec<&str> = rules.rules().iter().map(|r| r.name.as_str()).collect();
    let upstream = [
        "crashloop-backoff",
        "oom-killed",
        "panic",
        "image-pull-error",
        "probe-failed",
        "node-pressure",
        "connection-refused",
        "timeout",
        "permission-denied",
        "database-error",
        "tls-error",
        "dns-error",
        "quota-exceeded",
        "pod-evicted",
    ];
    assert_eq!(&names[..upstream.len()], upstream);
    assert_eq!(names.last(), Some(&"generic-error"));
    assert!(names.len() > 15);
    for r in rules.rules() {
        assert!(!r.slow_pattern, "{} uses a Unicode word boundary", r.name);
    }
    assert!(uses_unicode_word_boundary(r"(?i)\berror\b"));
    assert!(!uses_unicode_word_boundary(r"(?i)(?-u:\b)error(?-u:\b)"));
}

#[test]
fn shipped_rules_classify_typical_lines() {
    let rules = RuleSet::defaults();
    for (line, want) in [
        (
            "Back-off restarting failed container app in pod api-0",
            "crashloop-backoff",
        ),
        ("container killed: OOMKilled", "oom-killed"),
        (
            "panic: runtime error: index out of range [3] with length 3",
            "panic",
        ),
        ("goroutine 1 [running]:", "panic"),
        (
            "Failed to pull image \"x\": manifest unknown",
            "image-pull-error",
        ),
        (
            "Readiness probe failed: HTTP probe failed with statuscode: 503",
            "probe-failed",
        ),
        (
            "dial tcp 10.0.0.1:5432: connect: connection refused",
            "connection-refused",
        ),
        ("context deadline exceeded", "timeout"),
        (
            "User \"system:serviceaccount:a:b\" cannot list pods: Forbidden",
            "permission-denied",
        ),
        (
            "pq: database \"app\" does not exist: ERROR",
            "database-error",
        ),
        ("x509: certificate signed by unknown authority", "tls-error"),
        (
            "lookup db.internal on 10.96.0.10:53: no such host",
            "dns-error",
        ),
        ("Error: resource quota exceeded for cpu", "quota-exceeded"),
        (
            "pods \"x\" is forbidden: exceeded quota: compute",
            "permission-denied",
        ),
        (
            "The node was low on resource: memory. Container was evicted.",
            "pod-evicted",
        ),
        ("write /data/x: no space left on device", "disk-full"),
        ("Traceback (most recent call last):", "unhandled-exception"),
        ("level=error msg=\"something odd\"", "generic-error"),
        ("ERROR: über-Fehler", "generic-error"),
        ("errors are fine", DEFAULT_RULE),
        ("Fehler: über", DEFAULT_RULE),
    ] {
        assert_eq!(hit(&rules, "app", &[], line), want, "{line}");
    }
}

#[test]
fn the_manifests_ship_the_default_rules() {
    // The Kustomize base carries its own copy (kustomize reads only files under its folder).
    let shipped = include_str!("../../../../manifests/sentinel/base/rules.yaml");
    assert_eq!(
        shipped,
        crate::rules::DEFAULT_RULES,
        "manifests/sentinel/base/rules.yaml differs from default-rules.yaml: copy it over"
    );
}

/// Text that the shipped rules and a few with assertions and a Unicode `\b` match, almost
/// match, or that lies around such text.
const PIECES: &[&str] = &[
    "error",
    "ERROR",
    "Error:",
    "errors",
    "xerror",
    "level=error",
    "\"level\":\"error\"",
    "timeout",
    "timed out",
    "connection refused",
    "dial tcp 10.0.0.1:5432: connect:",
    "refused",
    "OOMKilled",
    "panic:",
    "PANIC: ",
    "goroutine 1 [running]",
    "database",
    "sql",
    "x509",
    "certificate",
    "no such host",
    "quota",
    "exceeded",
    "node",
    "drain",
    "evicted",
    "SIGSEGV",
    "Traceback (most recent call last)",
    "Caused by: ",
    "too many open files",
    "leader lost",
    "rate limited",
    "throttled",
    "ImagePullBackOff",
    "probe",
    "failed",
    "Échec",
    "échec",
    "fehler",
    "Fehler",
    "é",
    "ü",
    "日本",
    " ",
    "  ",
    ":",
    "\"",
    "=",
    "-",
    "a",
    "_",
    "1",
];

/// Rules with the assertions the shipped ones lack: anchors, ASCII and Unicode `\b` (under
/// which a non-ASCII byte stops the lazy DFA).
const EDGES: &str = r#"
rules:
  - name: unicode-word
    match:
      pattern: '(?i)\b(?:échec|fehler)\b'
    priority: P2
  - name: starts-with-panic
    match:
      pattern: '^panic'
    priority: P1
  - name: ends-with-timeout
    match:
      pattern: 'timeout$'
    priority: P3
  - name: ascii-word
    match:
      pattern: '(?-u:\b)refused(?-u:\b)'
    priority: P3
"#;

/// A pattern that matches the empty string, which can match between the bytes of a character
/// (`é`), where the meta regex does not report it; without a Unicode `\b`, which would make
/// every such line fall back anyway.
const EMPTY: &str = r#"
rules:
  - name: word-error
    match:
      pattern: '(?i)(?-u:\b)error(?-u:\b)'
    priority: P2
  - name: empty-inside-a-word
    match:
      pattern: '(?-u:\B)'
    priority: P4
"#;

fn lines() -> impl Strategy<Value = String> {
    proptest::collection::vec(proptest::sample::select(PIECES), 0..12).prop_map(|p| p.concat())
}

#[test]
fn pages_match_as_lines_do_one_by_one() {
    let labels = Labels::new([("namespace", "prod"), ("pod", "api-0")]);
    for rules in [RuleSet::defaults(), set(EDGES), set(EMPTY)] {
        let mut runner = TestRunner::new(Config {
            cases: 2_000,
            failure_persistence: None,
            ..Config::default()
        });
        let scratch = std::cell::RefCell::new(rules.matcher().scratch());
        // Each line with a part that is a slice of it (from a cut to its end) and a part of
        // its own (as an unescaped message is).
        let entry = (lines(), any::<proptest::sample::Index>(), lines());
        let page = proptest::collection::vec(entry, 0..5);
        runner
            .run(&page, |page| {
                let texts: Vec<&str> = page.iter().map(|(l, _, _)| l.as_str()).collect();
                let mut scratch = scratch.borrow_mut();
                let mut scanned = rules.scan_page(&texts, &mut scratch);
                for (i, (line, cut, apart)) in page.iter().enumerate() {
                    let mut cut = cut.index(line.len() + 1);
                    while !line.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    for parts in [&[][..], &[&line[cut..]], &[&line[cut..], apart.as_str()]] {
                        let s = Subject {
                            parts,
                            ..line_subject(&labels, line)
                        };
                        let got = scanned.first_match(i, "prod", &labels, parts);
                        let got = got.map_or(DEFAULT_RULE, |r| r.name.as_str());
                        let want = one_by_one(&rules, &s);
                        prop_assert_eq!(got, want, "line {:?}, parts {:?}", line, parts);
                    }
                }
                Ok(())
            })
            .unwrap_or_else(|e| panic!("{e}"));
        // Lines whose only place for an empty match is inside a character.
        let tricky = ["aéa", "1é_", "a日b", "x", "", "é"];
        let mut scratch = scratch.borrow_mut();
        let mut scanned = rules.scan_page(&tricky, &mut scratch);
        for (i, line) in tricky.iter().enumerate() {
            let s = line_subject(&labels, line);
            let got = scanned.first_match(i, "prod", &labels, &[]);
            let got = got.map_or(DEFAULT_RULE, |r| r.name.as_str());
            assert_eq!(got, one_by_one(&rules, &s), "line {line:?}");
        }
    }
}

fn line_subject<'a>(labels: &'a Labels, line: &'a str) -> Subject<'a> {
    Subject {
        namespace: "prod",
        labels,
        parts: &[],
        line,
    }
}

/// The walk either answers as the meta regex does or gives up, also when its state cache is
/// cleared under it (which leaves the other line's state stale) and on a quit byte.
#[test]
fn the_walk_agrees_with_the_set_or_falls_back() {
    let mut patterns: Vec<String> = RuleSet::defaults()
        .rules()
        .iter()
        .filter_map(|r| r.pattern.clone())
        .collect();
    patterns.push(r"(?i)\b(?:échec|fehler)\b".to_owned());
    let set = meta::Builder::new()
        .configure(
            meta::Config::new()
                .match_kind(MatchKind::All)
                .which_captures(regex_automata::nfa::thompson::WhichCaptures::None),
        )
        .build_many(&patterns)
        .unwrap_or_else(|e| panic!("{e}"));
    let found = |line: &str| {
        let mut s = PatternSet::new(patterns.len());
        set.which_overlapping_matches(&Input::new(line), &mut s);
        s
    };
    for (walk, name) in [
        (Walk::new(&patterns), "walk"),
        (Walk::with_tiny_cache(&patterns), "walk with a tiny cache"),
    ] {
        let walk = walk.unwrap_or_else(|| panic!("{name}: not built"));
        let mut runner = TestRunner::new(Config {
            cases: 2_000,
            failure_persistence: None,
            ..Config::default()
        });
        let cache = std::cell::RefCell::new(walk.create_cache());
        let (answered, gave_up) = (std::cell::Cell::new(0), std::cell::Cell::new(0));
        runner
            .run(&(lines(), lines()), |(a, b)| {
                let mut got = [
                    PatternSet::new(patterns.len()),
                    PatternSet::new(patterns.len()),
                ];
                let [ga, gb] = &mut got;
                let lines = [a.as_bytes(), b.as_bytes()];
                match walk.scan_pair(&mut cache.borrow_mut(), lines, [ga, gb]) {
                    Ok(()) => {
                        answered.set(answered.get() + 1);
                        prop_assert_eq!(&got[0], &found(&a), "{}: line {:?}", name, a);
                        prop_assert_eq!(&got[1], &found(&b), "{}: line {:?}", name, b);
                    }
                    Err(_) => gave_up.set(gave_up.get() + 1),
                }
                Ok(())
            })
            .unwrap_or_else(|e| panic!("{e}"));
        let (answered, gave_up) = (answered.get(), gave_up.get());
        eprintln!("{name}: answered {answered}, gave up {gave_up}");
        assert!(answered > 100, "{name}: answered only {answered}");
        assert!(
            gave_up > 0,
            "{name}: never gave up (non-ASCII under a Unicode \\b)"
        );
    }
}
