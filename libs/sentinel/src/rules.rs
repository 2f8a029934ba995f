//! The rules file: upstream's schema (research/sentinel.md §1.3), read strictly and checked
//! whole before anything uses it, so that a bad rule is refused with the file, the rule's
//! index and name, and the field.
//!
//! ```yaml
//! rules:
//!   - name: crashloop-backoff
//!     match:
//!       pattern: "CrashLoopBackOff|Back-off restarting failed container"  # regex, message OR line
//!       keywords: [crashloop]            # any of them, case-insensitive
//!       labels: {app: "api", tier: "!batch", env: "~^prod"}
//!       namespaces: ["!kube-system"]
//!     priority: P1                       # P1-P4, p1-p4, critical, high, medium, low (any case)
//!     remediation: {action: restart-pod, params: {}, cooldown: 5m}
//!     enabled: true
//! ```
//!
//! Differences from upstream, each on purpose: `enabled: false` disables a rule (upstream
//! forces every rule on); a label regex is compiled once, here, and a bad one is refused
//! (upstream compiles it on every line and treats a bad one as "no match"); the actions
//! upstream declares but never runs (`exec-script`, `trigger-argo-workflow`) are refused with
//! the reason instead of failing at the first error; `default` is reserved for the lines no
//! rule matches.

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use bulwark_config::{Duration, Loader, Validate, Violation};
use regex_automata::meta::Regex;
use serde::{Deserialize, Serialize};

use crate::model::Labels;

pub mod action;
mod matcher;
mod walk;

pub use action::{Action, Params};
pub use matcher::{Matcher, Scratch, Subject};

/// The rule name under which lines that no rule matches are recorded, as upstream does.
pub const DEFAULT_RULE: &str = "default";

/// Cooldown of a rule that gives none (or zero), as upstream's.
pub const DEFAULT_COOLDOWN: std::time::Duration = std::time::Duration::from_secs(300);

/// The rules Sentinel ships: upstream's 15 in their order, made fast (no Unicode `\b`), and a
/// few more; `rules_file` replaces them.
pub const DEFAULT_RULES: &str = include_str!("rules/default-rules.yaml");

/// How urgent an error is. Ordered: `P1` is the most urgent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Priority {
    P1,
    P2,
    P3,
    P4,
}

impl Priority {
    /// All priorities, most urgent first.
    pub const ALL: [Self; 4] = [Self::P1, Self::P2, Self::P3, Self::P4];

    /// Reads a priority as upstream's loader does (`P1`, `p1`, `critical`, `CRITICAL`, ...),
    /// in any case.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text.to_ascii_lowercase().as_str() {
            "p1" | "critical" => Self::P1,
            "p2" | "high" => Self::P2,
            "p3" | "medium" => Self::P3,
            "p4" | "low" => Self::P4,
            _ => return None,
        })
    }

    /// `P1`..`P4`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::P1 => "P1",
            Self::P2 => "P2",
            Self::P3 => "P3",
            Self::P4 => "P4",
        }
    }

    /// Upstream's label: Critical, High, Medium, Low.
    pub const fn label(self) -> &'static str {
        match self {
            Self::P1 => "Critical",
            Self::P2 => "High",
            Self::P3 => "Medium",
            Self::P4 => "Low",
        }
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A rules file as written.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesFile {
    pub rules: Vec<RuleSpec>,
}

/// One rule as written; [`RulesFile::validate`] checks it and [`RuleSet::new`] compiles it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    pub name: String,
    #[serde(rename = "match", default)]
    pub matcher: MatchSpec,
    /// Kept as text so that a bad value is reported with the rule's name.
    pub priority: String,
    #[serde(default)]
    pub remediation: Option<RemediationSpec>,
    #[serde(default = "enabled")]
    pub enabled: bool,
}

const fn enabled() -> bool {
    true
}

/// What a line must show for a rule to match; every given criterion must hold.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatchSpec {
    /// A regular expression (Rust `regex` syntax, which reads RE2's), searched in the whole
    /// line and in each part of the message ([`crate::extract::Message::parts`]).
    #[serde(default)]
    pub pattern: Option<String>,
    /// Any one of these, case-insensitively, in the line or a part of the message.
    #[serde(default)]
    pub keywords: Vec<String>,
    /// Stream labels: `value` (equal), `!value` (anything else, or absent), `~regex`.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// `ns` (one of these) or `!ns` (not this one).
    #[serde(default)]
    pub namespaces: Vec<String>,
}

/// What to do when the rule matches.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemediationSpec {
    pub action: String,
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    #[serde(default)]
    pub cooldown: Option<Duration>,
}

impl RulesFile {
    /// Reads and checks a rules file; `origin` (its path) names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, bulwark_config::Error> {
        // Rules take no environment overrides: the loader gets an empty source.
        let env = std::collections::HashMap::<String, String>::new();
        Loader::new(&env, "").load_str(text, origin)
    }
}

impl Validate for RulesFile {
    fn validate(&self) -> Result<(), Violation> {
        let mut names = HashSet::new();
        for (i, rule) in self.rules.iter().enumerate() {
            let at = |field: &str| format!("rules[{i}].{field}");
            let named = |message: String| format!("rule {:?}: {message}", rule.name);
            if rule.name.trim().is_empty() {
                return Err(Violation::new(at("name"), "must not be empty"));
            }
            if rule.name == DEFAULT_RULE {
                return Err(Violation::new(
                    at("name"),
                    "`default` is reserved for the lines no rule matches",
                ));
            }
            if !names.insert(rule.name.as_str()) {
                return Err(Violation::new(
                    at("name"),
                    named("is used by an earlier rule; names must be unique".into()),
                ));
            }
            check_match(&rule.matcher)
                .map_err(|(field, m)| Violation::new(at(&format!("match.{field}")), named(m)))?;
            if Priority::parse(&rule.priority).is_none() {
                return Err(Violation::new(
                    at("priority"),
                    named(format!(
                        "unknown priority {:?}; expected P1-P4, critical, high, medium or low",
                        rule.priority
                    )),
                ));
            }
            if let Some(r) = &rule.remediation {
                Action::parse(&r.action, &r.params).map_err(|(field, m)| {
                    Violation::new(at(&format!("remediation.{field}")), named(m))
                })?;
            }
        }
        Ok(())
    }
}

fn check_match(m: &MatchSpec) -> Result<(), (String, String)> {
    if m.pattern.is_none() && m.keywords.is_empty() {
        return Err((
            "pattern".into(),
            "a rule needs a pattern or keywords".into(),
        ));
    }
    if let Some(p) = &m.pattern {
        if p.is_empty() {
            return Err(("pattern".into(), "must not be empty".into()));
        }
        Regex::new(p).map_err(|e| ("pattern".into(), regex_error(&e)))?;
    }
    if let Some(i) = m.keywords.iter().position(String::is_empty) {
        return Err((format!("keywords[{i}]"), "must not be empty".into()));
    }
    for (key, value) in &m.labels {
        if key.is_empty() {
            return Err(("labels".into(), "a label name must not be empty".into()));
        }
        if let Some(re) = value.strip_prefix('~') {
            Regex::new(re).map_err(|e| (format!("labels.{key}"), regex_error(&e)))?;
        }
    }
    if let Some(i) = m.namespaces.iter().position(|n| n.is_empty() || n == "!") {
        return Err((format!("namespaces[{i}]"), "names no namespace".into()));
    }
    Ok(())
}

fn regex_error(e: &regex_automata::meta::BuildError) -> String {
    match e.syntax_error() {
        Some(syntax) => format!("invalid regex: {syntax}"),
        None => format!("invalid regex: {e}"),
    }
}

/// A rule, checked and ready to use.
#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    pub priority: Priority,
    pub pattern: Option<String>,
    pub keywords: Vec<String>,
    pub labels: Vec<(String, LabelTest)>,
    pub namespaces: Namespaces,
    pub action: Action,
    pub cooldown: std::time::Duration,
    pub enabled: bool,
    /// Whether the pattern needs Unicode word boundaries, which keep the set off its fast
    /// engine for any line with a non-ASCII byte (`check` warns).
    pub slow_pattern: bool,
}

/// One `labels` entry.
#[derive(Debug, Clone)]
pub enum LabelTest {
    Equals(String),
    /// Passes when the label is absent, as upstream's does.
    NotEquals(String),
    Matches {
        re: Box<Regex>,
        source: String,
    },
}

/// As written: `value`, `!value` or `~regex`.
impl fmt::Display for LabelTest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Equals(v) => f.write_str(v),
            Self::NotEquals(v) => write!(f, "!{v}"),
            Self::Matches { source, .. } => write!(f, "~{source}"),
        }
    }
}

impl LabelTest {
    fn new(value: &str) -> Self {
        if let Some(v) = value.strip_prefix('!') {
            Self::NotEquals(v.to_owned())
        } else if let Some(re) = value.strip_prefix('~') {
            // Checked by `RulesFile::validate`; an unbuildable regex matches nothing.
            Self::Matches {
                re: Box::new(Regex::new(re).unwrap_or_else(|_| never_matches())),
                source: re.to_owned(),
            }
        } else {
            Self::Equals(value.to_owned())
        }
    }

    /// Whether `actual` (the stream's value, if it has the label) passes.
    pub fn passes(&self, actual: Option<&str>) -> bool {
        match (self, actual) {
            (Self::Equals(v), Some(a)) => v == a,
            (Self::NotEquals(v), a) => a != Some(v.as_str()),
            (Self::Matches { re, .. }, Some(a)) => re.is_match(a),
            (Self::Equals(_) | Self::Matches { .. }, None) => false,
        }
    }
}

fn never_matches() -> Regex {
    // An empty alternation never matches; building it cannot fail.
    Regex::new_many::<&str>(&[]).unwrap_or_else(|_| unreachable!("an empty regex set builds"))
}

/// The `namespaces` entries, in order, with upstream's semantics.
#[derive(Debug, Clone, Default)]
pub struct Namespaces(Vec<(bool, String)>);

impl Namespaces {
    fn new(entries: &[String]) -> Self {
        Self(
            entries
                .iter()
                .map(|e| match e.strip_prefix('!') {
                    Some(ns) => (true, ns.to_owned()),
                    None => (false, e.clone()),
                })
                .collect(),
        )
    }

    /// The entries as written (`ns`, `!ns`), in order.
    pub fn entries(&self) -> Vec<String> {
        self.0
            .iter()
            .map(|(negated, ns)| {
                if *negated {
                    format!("!{ns}")
                } else {
                    ns.clone()
                }
            })
            .collect()
    }

    /// No entries: every namespace. Otherwise the first entry that names `namespace` decides
    /// (`ns` passes, `!ns` fails); when none names it, it passes only if every entry is a
    /// negation.
    pub fn passes(&self, namespace: &str) -> bool {
        for (negated, ns) in &self.0 {
            if ns == namespace {
                return !negated;
            }
        }
        self.0.iter().all(|(negated, _)| *negated)
    }
}

/// A page of lines scanned for the rules' patterns ([`RuleSet::scan_page`]).
#[derive(Debug)]
pub struct ScannedPage<'r, 'p> {
    rules: &'r RuleSet,
    lines: &'p [&'p str],
    scratch: &'p mut Scratch,
}

impl<'r> ScannedPage<'r, '_> {
    /// [`RuleSet::first_match`] of line `i` of the page, from `namespace` with `labels`, whose
    /// message has `parts`.
    pub fn first_match(
        &mut self,
        i: usize,
        namespace: &str,
        labels: &Labels,
        parts: &[&str],
    ) -> Option<&'r Rule> {
        let subject = Subject {
            namespace,
            labels,
            parts,
            line: self.lines[i],
        };
        let rules = self.rules;
        rules
            .matcher
            .first_match_scanned(&rules.rules, &subject, i, self.scratch)
            .map(|k| &rules.rules[k])
    }
}

/// The rules in file order, and the one-pass matcher over the enabled ones.
#[derive(Debug, Clone)]
pub struct RuleSet {
    rules: Vec<Rule>,
    matcher: Matcher,
}

impl RuleSet {
    /// Compiles a checked rules file.
    pub fn new(file: &RulesFile) -> Result<Self, String> {
        let rules: Vec<Rule> = file.rules.iter().map(Rule::new).collect();
        let matcher = Matcher::new(&rules)?;
        Ok(Self { rules, matcher })
    }

    /// Reads, checks and compiles rules from YAML text.
    pub fn parse(text: &str, origin: &str) -> Result<Self, String> {
        let file = RulesFile::parse(text, origin).map_err(|e| e.to_string())?;
        Self::new(&file).map_err(|e| format!("{origin}: {e}"))
    }

    /// The shipped rules ([`DEFAULT_RULES`]).
    pub fn defaults() -> Self {
        Self::parse(DEFAULT_RULES, "default-rules.yaml")
            .unwrap_or_else(|e| unreachable!("the shipped rules are tested: {e}"))
    }

    /// Every rule, disabled ones included, in file order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The matcher over the enabled rules.
    pub fn matcher(&self) -> &Matcher {
        &self.matcher
    }

    /// The first enabled rule (in file order) that `subject` satisfies; `None` means the
    /// [`DEFAULT_RULE`] at `P4`.
    pub fn first_match(&self, subject: &Subject<'_>, scratch: &mut Scratch) -> Option<&Rule> {
        self.matcher
            .first_match(&self.rules, subject, scratch)
            .map(|i| &self.rules[i])
    }

    /// Scans a page of lines at once, which is faster than one by one (two lines in step,
    /// the DFA's states kept warm); then ask the page each line's first match.
    pub fn scan_page<'r, 'p>(
        &'r self,
        lines: &'p [&'p str],
        scratch: &'p mut Scratch,
    ) -> ScannedPage<'r, 'p> {
        self.matcher.scan_page(lines, scratch);
        ScannedPage {
            rules: self,
            lines,
            scratch,
        }
    }
}

impl Rule {
    fn new(spec: &RuleSpec) -> Self {
        let remediation = spec.remediation.as_ref();
        let action = remediation
            .and_then(|r| Action::parse(&r.action, &r.params).ok())
            .unwrap_or(Action::None);
        let cooldown = remediation
            .and_then(|r| r.cooldown)
            .map(Duration::get)
            .filter(|d| !d.is_zero())
            .unwrap_or(DEFAULT_COOLDOWN);
        let pattern = spec.matcher.pattern.clone();
        let slow_pattern = pattern.as_deref().is_some_and(uses_unicode_word_boundary);
        Self {
            name: spec.name.clone(),
            priority: Priority::parse(&spec.priority).unwrap_or(Priority::P4),
            pattern,
            keywords: spec.matcher.keywords.clone(),
            labels: spec
                .matcher
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), LabelTest::new(v)))
                .collect(),
            namespaces: Namespaces::new(&spec.matcher.namespaces),
            action,
            cooldown,
            enabled: spec.enabled,
            slow_pattern,
        }
    }
}

/// Whether `pattern` uses a Unicode word boundary (`\b`, `\B` outside `(?-u)`), which sends
/// every line holding a non-ASCII byte to the slow PikeVM (research/sentinel.md §4).
pub fn uses_unicode_word_boundary(pattern: &str) -> bool {
    regex_syntax::parse(pattern).is_ok_and(|hir| {
        let looks = hir.properties().look_set();
        looks.contains_word_unicode()
    })
}

#[cfg(test)]
mod tests;
