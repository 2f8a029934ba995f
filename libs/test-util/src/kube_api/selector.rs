//! Label and field selectors, parsed from the `labelSelector` and `fieldSelector` query parameters.
//!
//! Label selectors follow the apimachinery grammar: `k=v`, `k==v`, `k!=v`, `k in (a,b)`,
//! `k notin (a,b)`, `k`, `!k`, and the numeric `k>n` / `k<n`.
//! Field selectors accept `path=v`, `path==v` and `path!=v` for any dotted path into the object,
//! which is more than a real server allows per resource but never less.

use serde_json::Value;

use super::Error;

/// The label and field selectors of one list or watch request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Selectors {
    pub(crate) labels: LabelSelector,
    pub(crate) fields: FieldSelector,
}

impl Selectors {
    /// Whether both selectors select the object.
    pub(crate) fn matches(&self, object: &Value) -> bool {
        self.labels.matches_object(object) && self.fields.matches(object)
    }
}

/// A parsed label selector; every requirement must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LabelSelector {
    requirements: Vec<Requirement>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Requirement {
    key: String,
    op: Op,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Op {
    Equals(String),
    NotEquals(String),
    In(Vec<String>),
    NotIn(Vec<String>),
    Exists,
    DoesNotExist,
    GreaterThan(i64),
    LessThan(i64),
}

/// A parsed field selector; every requirement must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FieldSelector {
    requirements: Vec<FieldRequirement>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct FieldRequirement {
    path: Vec<String>,
    negated: bool,
    value: String,
}

impl LabelSelector {
    /// Parses a selector; an empty string selects everything.
    pub(crate) fn parse(input: &str) -> Result<Self, Error> {
        let mut requirements = Vec::new();
        for term in split_top_level(input)? {
            let term = term.trim();
            if term.is_empty() {
                if input.trim().is_empty() {
                    continue;
                }
                return Err(bad_label(input, "empty requirement"));
            }
            requirements.push(parse_requirement(term).map_err(|why| bad_label(term, why))?);
        }
        Ok(LabelSelector { requirements })
    }

    /// Whether an object with these `metadata.labels` is selected.
    pub(crate) fn matches(&self, labels: Option<&serde_json::Map<String, Value>>) -> bool {
        self.requirements.iter().all(|r| {
            let value = labels.and_then(|l| l.get(&r.key)).and_then(Value::as_str);
            match (&r.op, value) {
                (Op::Equals(want), Some(v)) => v == want,
                (Op::Equals(_), None) => false,
                (Op::NotEquals(want), v) => v != Some(want.as_str()),
                (Op::In(set), Some(v)) => set.iter().any(|s| s == v),
                (Op::In(_), None) => false,
                (Op::NotIn(set), v) => v.is_none_or(|v| !set.iter().any(|s| s == v)),
                (Op::Exists, v) => v.is_some(),
                (Op::DoesNotExist, v) => v.is_none(),
                (Op::GreaterThan(n), Some(v)) => v.parse::<i64>().is_ok_and(|v| v > *n),
                (Op::LessThan(n), Some(v)) => v.parse::<i64>().is_ok_and(|v| v < *n),
                (Op::GreaterThan(_) | Op::LessThan(_), None) => false,
            }
        })
    }

    /// Whether a whole object is selected by its labels.
    pub(crate) fn matches_object(&self, object: &Value) -> bool {
        self.matches(
            object
                .pointer("/metadata/labels")
                .and_then(Value::as_object),
        )
    }
}

impl FieldSelector {
    /// Parses a selector; an empty string selects everything.
    pub(crate) fn parse(input: &str) -> Result<Self, Error> {
        let mut requirements = Vec::new();
        for term in input.split(',') {
            let term = term.trim();
            if term.is_empty() {
                if input.trim().is_empty() {
                    continue;
                }
                return Err(bad_field(input));
            }
            let (path, negated, value) = if let Some((p, v)) = term.split_once("!=") {
                (p, true, v)
            } else if let Some((p, v)) = term.split_once("==") {
                (p, false, v)
            } else if let Some((p, v)) = term.split_once('=') {
                (p, false, v)
            } else {
                return Err(bad_field(term));
            };
            let path = path.trim();
            if path.is_empty() || path.split('.').any(str::is_empty) {
                return Err(bad_field(term));
            }
            requirements.push(FieldRequirement {
                path: path.split('.').map(str::to_owned).collect(),
                negated,
                value: value.trim().to_owned(),
            });
        }
        Ok(FieldSelector { requirements })
    }

    /// Whether the object is selected; a missing field compares as the empty string, as in Kubernetes.
    pub(crate) fn matches(&self, object: &Value) -> bool {
        self.requirements.iter().all(|r| {
            let mut current = Some(object);
            for segment in &r.path {
                current = current.and_then(|v| v.get(segment));
            }
            let actual = match current {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            };
            (actual == r.value) != r.negated
        })
    }
}

/// Splits on commas that are not inside the parentheses of a set.
fn split_top_level(input: &str) -> Result<Vec<&str>, Error> {
    let mut terms = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in input.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| bad_label(input, "unbalanced parentheses"))?
            }
            ',' if depth == 0 => {
                terms.push(&input[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(bad_label(input, "unbalanced parentheses"));
    }
    terms.push(&input[start..]);
    Ok(terms)
}

fn parse_requirement(term: &str) -> Result<Requirement, &'static str> {
    if let Some(key) = term.strip_prefix('!') {
        let key = key.trim();
        validate_key(key)?;
        return Ok(Requirement {
            key: key.to_owned(),
            op: Op::DoesNotExist,
        });
    }
    let split = term
        .find(|c: char| "=!<>( \t".contains(c))
        .unwrap_or(term.len());
    let (key, rest) = term.split_at(split);
    validate_key(key)?;
    let rest = rest.trim();
    let op = if rest.is_empty() {
        Op::Exists
    } else if let Some(v) = rest.strip_prefix("!=") {
        Op::NotEquals(value(v)?)
    } else if let Some(v) = rest.strip_prefix("==") {
        Op::Equals(value(v)?)
    } else if let Some(v) = rest.strip_prefix('=') {
        Op::Equals(value(v)?)
    } else if let Some(v) = rest.strip_prefix('>') {
        Op::GreaterThan(
            v.trim()
                .parse()
                .map_err(|_| "expected an integer after '>'")?,
        )
    } else if let Some(v) = rest.strip_prefix('<') {
        Op::LessThan(
            v.trim()
                .parse()
                .map_err(|_| "expected an integer after '<'")?,
        )
    } else if let Some(set) = rest.strip_prefix("notin") {
        Op::NotIn(values(set)?)
    } else if let Some(set) = rest.strip_prefix("in") {
        Op::In(values(set)?)
    } else {
        return Err("expected an operator: =, ==, !=, in, notin, >, <");
    };
    Ok(Requirement {
        key: key.to_owned(),
        op,
    })
}

fn values(set: &str) -> Result<Vec<String>, &'static str> {
    let inner = set
        .trim()
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .ok_or("expected a parenthesised set of values")?;
    inner.split(',').map(value).collect()
}

fn value(v: &str) -> Result<String, &'static str> {
    let v = v.trim();
    if v.len() > 63
        || !v
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err("invalid label value");
    }
    Ok(v.to_owned())
}

fn validate_key(key: &str) -> Result<(), &'static str> {
    if key.is_empty()
        || !key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
    {
        return Err("invalid label key");
    }
    Ok(())
}

fn bad_label(input: &str, why: &str) -> Error {
    Error::BadRequest(format!("unable to parse requirement {input:?}: {why}"))
}

fn bad_field(input: &str) -> Error {
    Error::BadRequest(format!(
        "invalid field selector {input:?}: expected path=value, path==value or path!=value"
    ))
}
