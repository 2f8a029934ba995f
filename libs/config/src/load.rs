//! Loading a typed config: YAML text, then environment overrides, then validation.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use crate::{Secret, Source};

/// Everything that can be wrong with a configuration. Each variant names where the value came
/// from (file and line, or environment variable), the field and what was expected.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read config file {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{origin}{}: {}{message}", fmt_location(*.location), fmt_field(field))]
    Invalid {
        /// The file name, or `<defaults>` when no file was given.
        origin: String,
        /// One-based line and column, when the YAML parser knows them.
        location: Option<(u64, u64)>,
        /// The dotted field path (`databases[0].tables[1].name`), empty for the whole document.
        field: String,
        message: String,
    },
    #[error("environment variable {var} (field `{field}`): {message}")]
    Env {
        var: String,
        field: String,
        message: String,
    },
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A bounded label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Read { .. } => "read",
            Error::Invalid { .. } => "invalid",
            Error::Env { .. } => "env",
        }
    }
}

fn fmt_location(location: Option<(u64, u64)>) -> String {
    location
        .map(|(line, col)| format!(":{line}:{col}"))
        .unwrap_or_default()
}

fn fmt_field(field: &str) -> String {
    if field.is_empty() {
        String::new()
    } else {
        format!("field `{field}`: ")
    }
}

/// A semantic problem found after parsing, such as a retention of zero days.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The dotted field path.
    pub field: String,
    /// What was expected, as a lowercase fragment.
    pub message: String,
}

impl Violation {
    /// Builds a violation for `field`.
    pub fn new(field: impl Into<String>, message: impl fmt::Display) -> Self {
        Self {
            field: field.into(),
            message: message.to_string(),
        }
    }
}

/// Checks that a parsed config makes sense as a whole.
pub trait Validate {
    /// Returns the first violation found.
    fn validate(&self) -> std::result::Result<(), Violation>;

    /// Whether `${VAR}` in the file's string values is replaced by the variable's value (the
    /// archiver's, as upstream's config does it); off for every other config. A value that is
    /// exactly `${VAR}` keeps a plain integer's or a boolean's type (so `port: ${DB_PORT}` is a
    /// number) and is otherwise its exact text; within a longer string it is spliced in as
    /// text. A variable
    /// that is not set is an error naming it and the field. Substitution works on the parsed
    /// values, never on the file's text, so a variable cannot add keys.
    const SUBSTITUTES_ENV: bool = false;
}

/// Loads configs of one binary: YAML from a file, overridden by `<PREFIX><FIELD>` variables.
///
/// Nested fields are joined with `__`, so with prefix `BULWARK_SENTINEL_` the variable
/// `BULWARK_SENTINEL_LOKI__POLL_INTERVAL=1m` sets `loki.poll_interval`, and
/// `BULWARK_SENTINEL_DATABASES__0__PORT` sets `databases[0].port`. Values are read as YAML
/// scalars, so `true`, `8080` and `5m` keep their types.
pub struct Loader<'a> {
    source: &'a dyn Source,
    prefix: String,
}

impl fmt::Debug for Loader<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Loader")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl<'a> Loader<'a> {
    /// A loader reading overrides from `source` under `prefix` (for example `BULWARK_ARCHIVER_`).
    pub fn new(source: &'a dyn Source, prefix: impl Into<String>) -> Self {
        Self {
            source,
            prefix: prefix.into(),
        }
    }

    /// Loads `path`, or only defaults and overrides when `path` is `None`.
    pub fn load<T: DeserializeOwned + Validate>(&self, path: Option<&Path>) -> Result<T> {
        match path {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
                    path: path.to_owned(),
                    source,
                })?;
                self.load_str(&text, &path.display().to_string())
            }
            None => self.load_str("{}", "<defaults>"),
        }
    }

    /// Loads YAML `text`; `origin` names it in errors.
    pub fn load_str<T: DeserializeOwned + Validate>(&self, text: &str, origin: &str) -> Result<T> {
        let text = if text.trim().is_empty() { "{}" } else { text };
        let overrides = self.overrides()?;
        let value: T = if overrides.is_empty() && !T::SUBSTITUTES_ENV {
            from_yaml(text, origin)?
        } else {
            // Parse once to report syntax errors with their line, then merge the overrides.
            let mut tree: serde_json::Value = from_yaml(text, origin)?;
            if tree.is_null() {
                tree = serde_json::Value::Object(Default::default());
            }
            if T::SUBSTITUTES_ENV {
                substitute(&mut tree, self.source, &mut Vec::new())?;
            }
            for o in &overrides {
                set_path(&mut tree, &o.path, o.value.clone()).map_err(|e| Error::Env {
                    var: o.var.clone(),
                    field: o.field(),
                    message: e.to_string(),
                })?;
            }
            serde_path_to_error::deserialize(tree).map_err(|e| {
                let field = e.path().to_string();
                let message = e.into_inner().to_string();
                let by_var = overrides.iter().find(|o| {
                    let f = o.field();
                    field.starts_with(&f) || f.starts_with(&field)
                });
                match by_var {
                    Some(o) => Error::Env {
                        var: o.var.clone(),
                        field,
                        message,
                    },
                    None => Error::Invalid {
                        origin: origin.to_owned(),
                        location: None,
                        field: clean_field(&field),
                        message,
                    },
                }
            })?
        };
        value.validate().map_err(|v| Error::Invalid {
            origin: origin.to_owned(),
            location: None,
            field: v.field,
            message: v.message,
        })?;
        Ok(value)
    }

    /// Resolves a `*_env` indirection such as the archiver's `password_env: DB_PASSWORD`:
    /// `var` must be set and non-empty. `field` names the config field in errors.
    pub fn secret_from_env(&self, var: &str, field: &str) -> Result<Secret> {
        let env_err = |message: &str| Error::Env {
            var: var.to_owned(),
            field: field.to_owned(),
            message: message.to_owned(),
        };
        match self.source.get(var) {
            Ok(Some(v)) if !v.is_empty() => Ok(Secret::new(v)),
            Ok(Some(_)) => Err(env_err("is set but empty")),
            Ok(None) => Err(env_err("is not set")),
            Err(_) => Err(env_err("is not valid UTF-8")),
        }
    }

    fn overrides(&self) -> Result<Vec<Override>> {
        self.source
            .with_prefix(&self.prefix)
            .into_iter()
            .map(|(var, raw)| {
                let rest = &var[self.prefix.len()..];
                let path: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
                if path.iter().any(String::is_empty) {
                    return Err(Error::Env {
                        var: var.clone(),
                        field: String::new(),
                        message: "names no field; nested fields are joined with `__`".into(),
                    });
                }
                // Values are YAML scalars so that numbers and booleans keep their types; a
                // value that is not valid YAML is taken as a plain string.
                let value = serde_saphyr::from_str::<serde_json::Value>(&raw)
                    .unwrap_or(serde_json::Value::String(raw));
                Ok(Override { var, path, value })
            })
            .collect()
    }
}

/// Replaces `${VAR}` in the string values of `tree` (see [`Validate::SUBSTITUTES_ENV`]);
/// `path` is where `tree` is, for errors.
fn substitute(
    tree: &mut serde_json::Value,
    source: &dyn Source,
    path: &mut Vec<String>,
) -> Result<()> {
    let field = |path: &[String]| field_of(path);
    match tree {
        serde_json::Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                path.push(key.clone());
                substitute(value, source, path)?;
                path.pop();
            }
        }
        serde_json::Value::Array(items) => {
            for (i, value) in items.iter_mut().enumerate() {
                path.push(i.to_string());
                substitute(value, source, path)?;
                path.pop();
            }
        }
        serde_json::Value::String(text) if text.contains("${") => {
            let lookup = |name: &str| match source.get(name) {
                Ok(Some(value)) => Ok(value),
                Ok(None) => Err(Error::Env {
                    var: name.to_owned(),
                    field: field(path),
                    message: format!("is not set, and the file refers to it as ${{{name}}}"),
                }),
                Err(_) => Err(Error::Env {
                    var: name.to_owned(),
                    field: field(path),
                    message: "is not valid UTF-8".to_owned(),
                }),
            };
            let whole = text
                .strip_prefix("${")
                .and_then(|rest| rest.strip_suffix('}'))
                .filter(|name| is_var_name(name));
            if let Some(name) = whole {
                let raw = lookup(name)?;
                *tree = typed(raw);
                return Ok(());
            }
            let mut out = String::with_capacity(text.len());
            let mut rest = text.as_str();
            while let Some(start) = rest.find("${") {
                out.push_str(&rest[..start]);
                let after = &rest[start + 2..];
                match after
                    .find('}')
                    .map(|end| (&after[..end], &after[end + 1..]))
                {
                    Some((name, tail)) if is_var_name(name) => {
                        out.push_str(&lookup(name)?);
                        rest = tail;
                    }
                    _ => {
                        out.push_str("${");
                        rest = after;
                    }
                }
            }
            out.push_str(rest);
            *text = out;
        }
        _ => {}
    }
    Ok(())
}

/// A variable's value standing for a whole config value: an integer written the plain way
/// (`5432`, `-1`) or `true`/`false` keeps that type, so `port: ${DB_PORT}` is a number;
/// anything else (`012345`, `1.10`, `#x`, `'q'`) stays the exact text, never reinterpreted.
fn typed(raw: String) -> serde_json::Value {
    let digits = raw.strip_prefix('-').unwrap_or(&raw);
    let plain_integer = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    match raw.as_str() {
        "true" => serde_json::Value::Bool(true),
        "false" => serde_json::Value::Bool(false),
        _ if plain_integer => raw
            .parse::<i64>()
            .map(serde_json::Value::from)
            .unwrap_or(serde_json::Value::String(raw)),
        _ => serde_json::Value::String(raw),
    }
}

/// Whether `name` can be a variable in `${...}`.
fn is_var_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

struct Override {
    var: String,
    path: Vec<String>,
    value: serde_json::Value,
}

impl Override {
    fn field(&self) -> String {
        field_of(&self.path)
    }
}

/// A config path as errors name it: `databases[0].port`.
fn field_of(path: &[String]) -> String {
    let mut out = String::new();
    for seg in path {
        if seg.parse::<usize>().is_ok() {
            out.push_str(&format!("[{seg}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(seg);
        }
    }
    out
}

/// Why an override cannot be set at its path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum PathError {
    #[error("`{0}` is not in the file, so it has no list item to set")]
    NoList(String),
    #[error("`{0}` is not an index into a list")]
    NotAnIndex(String),
    #[error("index {index} is out of range: the list has {len} items")]
    OutOfRange { index: usize, len: usize },
    #[error("cannot set `{0}` inside a scalar value")]
    InScalar(String),
}

fn set_path(
    tree: &mut serde_json::Value,
    path: &[String],
    value: serde_json::Value,
) -> std::result::Result<(), PathError> {
    let Some((head, rest)) = path.split_first() else {
        *tree = value;
        return Ok(());
    };
    let child = match tree {
        serde_json::Value::Object(map) => {
            if !map.contains_key(head) && rest.first().is_some_and(|s| s.parse::<usize>().is_ok()) {
                return Err(PathError::NoList(head.clone()));
            }
            map.entry(head.clone())
                .or_insert_with(|| serde_json::Value::Object(Default::default()))
        }
        serde_json::Value::Array(items) => {
            let index: usize = head
                .parse()
                .map_err(|_| PathError::NotAnIndex(head.clone()))?;
            let len = items.len();
            items
                .get_mut(index)
                .ok_or(PathError::OutOfRange { index, len })?
        }
        _ => return Err(PathError::InScalar(head.clone())),
    };
    set_path(child, rest, value)
}

/// serde_path_to_error prints `.` for the root; we print nothing.
fn clean_field(field: &str) -> String {
    if field == "." {
        String::new()
    } else {
        field.to_owned()
    }
}

fn from_yaml<T: DeserializeOwned>(text: &str, origin: &str) -> Result<T> {
    let mut failed_at = None;
    let result = serde_saphyr::with_deserializer_from_str(text, |de| {
        let mut track = serde_path_to_error::Track::new();
        let tracked = serde_path_to_error::Deserializer::new(de, &mut track);
        T::deserialize(tracked).inspect_err(|_| failed_at = Some(track.path()))
    });
    result.map_err(|e| Error::Invalid {
        origin: origin.to_owned(),
        location: e
            .location()
            .map(|l| (l.line(), l.column()))
            .filter(|&(l, _)| l > 0),
        field: failed_at
            .map(|p| clean_field(&p.to_string()))
            .unwrap_or_default(),
        message: plain_message(&e),
    })
}

/// The parser's message without its own location suffix and source snippet, which we print
/// in our own `file:line:col` form.
fn plain_message(e: &serde_saphyr::Error) -> String {
    let full = e.to_string();
    let mut msg = full.lines().next().unwrap_or_default().trim();
    msg = msg.strip_prefix("error: ").unwrap_or(msg);
    // Drop a leading `line N column M: `.
    if let Some(rest) = msg.strip_prefix("line ")
        && let Some((position, tail)) = rest.split_once(": ")
        && position
            .split(' ')
            .all(|w| w == "column" || w.chars().all(|c| c.is_ascii_digit()))
    {
        msg = tail;
    }
    if let Some(i) = msg.rfind(" at line ") {
        msg = &msg[..i];
    }
    msg.to_owned()
}

#[cfg(test)]
mod tests;
