//! Rendering a selected secret into the bytes of its file: json, env, properties, yaml, ini,
//! raw, or a template (see [`crate::template`]).
//!
//! The rules make every format read back to exactly the values Keeper holds:
//! - **env**: `KEY='value'` lines for POSIX shells (`. file` or `set -a; . file`). Keys are the
//!   prefix plus the name upper-cased, with every character outside `[A-Z0-9_]` turned into `_`
//!   (and a leading digit prefixed with `_`); values are single-quoted, with `'` written as
//!   `'\''`, so newlines, `$`, quotes and spaces survive. Two names that map to the same key
//!   are an error rather than one silently replacing the other (upstream kept the last).
//! - **properties**: `java.util.Properties` escapes: `\\`, `\n`, `\r`, `\t`, `\f`, and in keys
//!   also space, `=`, `:`, `#` and `!`; a leading space of a value is escaped.
//! - **ini**: one `[secret]` section; values are double-quoted with `\\`, `\"`, `\n`, `\r`
//!   and `\t` escapes.
//! - **json** and **yaml**: the values as they are, keys sorted; json is indented by two spaces.
//! - **raw**: one value: a string as its bytes, anything else as JSON; a file attachment as
//!   its bytes.
//!
//! Non-string values (numbers, objects such as `name` or `phone`, lists of several values) are
//! written as compact JSON in the line formats.

use std::collections::BTreeMap;

use bulwark_sidecar_spec::Format;
use serde_json::Value;

use crate::select::{Content, Output};
use crate::template;

/// Why a secret cannot be rendered; names the file, never a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error(
        "{path}: format raw needs exactly one value, but the selection has {count}: select one field, or use another format"
    )]
    NotOneValue { path: String, count: usize },
    #[error(
        "{path}: the names {first:?} and {second:?} both become the env key {key}: select fields, or label them apart"
    )]
    KeyClash {
        path: String,
        first: String,
        second: String,
        key: String,
    },
    #[error("{path}: cannot render {format}: {message}")]
    Format {
        path: String,
        format: &'static str,
        message: String,
    },
    #[error("{path}: {source}")]
    Template {
        path: String,
        #[source]
        source: template::Error,
    },
}

/// The bytes of `output`'s file; `file` holds the downloaded attachment for [`Content::File`].
pub fn render(output: &Output, file: Option<&[u8]>) -> Result<Vec<u8>, Error> {
    let path = &output.path;
    let values = match &output.content {
        Content::File { .. } => {
            return match output.format {
                Format::Template => template(
                    output,
                    &single(
                        "file",
                        Value::String(
                            String::from_utf8_lossy(file.unwrap_or_default()).into_owned(),
                        ),
                    ),
                ),
                _ => Ok(file.unwrap_or_default().to_vec()),
            };
        }
        Content::Value(value) => {
            if matches!(output.format, Format::Raw) {
                return Ok(raw(value));
            }
            single("value", value.clone())
        }
        Content::Values(values) => values.clone(),
    };
    match output.format {
        Format::Json => {
            let mut text = serde_json::to_string_pretty(&values).map_err(|e| Error::Format {
                path: path.clone(),
                format: "json",
                message: e.to_string(),
            })?;
            text.push('\n');
            Ok(text.into_bytes())
        }
        Format::Yaml => serde_saphyr::to_string(&values)
            .map(String::into_bytes)
            .map_err(|e| Error::Format {
                path: path.clone(),
                format: "yaml",
                message: e.to_string(),
            }),
        Format::Env => env(path, &values, output.env_prefix.as_deref().unwrap_or("")),
        Format::Properties => Ok(properties(&values)),
        Format::Ini => Ok(ini(&values)),
        Format::Raw => match values.values().collect::<Vec<_>>().as_slice() {
            [one] => Ok(raw(one)),
            many => Err(Error::NotOneValue {
                path: path.clone(),
                count: many.len(),
            }),
        },
        Format::Template => template(output, &values),
    }
}

fn single(name: &str, value: Value) -> BTreeMap<String, Value> {
    BTreeMap::from([(name.to_owned(), value)])
}

fn template(output: &Output, values: &BTreeMap<String, Value>) -> Result<Vec<u8>, Error> {
    let text = output.template.as_deref().unwrap_or_default();
    let data = Value::Object(values.clone().into_iter().collect());
    template::render(text, &data)
        .map(String::into_bytes)
        .map_err(|source| Error::Template {
            path: output.path.clone(),
            source,
        })
}

/// A value as text, as a `raw` file and the line formats hold it: strings as they are,
/// nothing as nothing, everything else as compact JSON.
fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn raw(value: &Value) -> Vec<u8> {
    text(value).into_bytes()
}

fn env(path: &str, values: &BTreeMap<String, Value>, prefix: &str) -> Result<Vec<u8>, Error> {
    let mut seen: BTreeMap<String, &str> = BTreeMap::new();
    let mut out = String::new();
    for (name, value) in values {
        let mut key: String = format!("{prefix}{name}")
            .chars()
            .map(|c| {
                let c = c.to_ascii_uppercase();
                if c.is_ascii_alphanumeric() || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        if key.starts_with(|c: char| c.is_ascii_digit()) {
            key.insert(0, '_');
        }
        if let Some(first) = seen.insert(key.clone(), name) {
            return Err(Error::KeyClash {
                path: path.to_owned(),
                first: first.to_owned(),
                second: name.clone(),
                key,
            });
        }
        out.push_str(&key);
        out.push_str("='");
        out.push_str(&text(value).replace('\'', "'\\''"));
        out.push_str("'\n");
    }
    Ok(out.into_bytes())
}

fn properties(values: &BTreeMap<String, Value>) -> Vec<u8> {
    let escape = |s: &str, key: bool| {
        let mut out = String::with_capacity(s.len());
        for (i, c) in s.chars().enumerate() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{c}' => out.push_str("\\f"),
                ' ' if key || i == 0 => out.push_str("\\ "),
                '=' | ':' | '#' | '!' if key => {
                    out.push('\\');
                    out.push(c);
                }
                c => out.push(c),
            }
        }
        out
    };
    let mut out = String::new();
    for (name, value) in values {
        out.push_str(&escape(name, true));
        out.push('=');
        out.push_str(&escape(&text(value), false));
        out.push('\n');
    }
    out.into_bytes()
}

fn ini(values: &BTreeMap<String, Value>) -> Vec<u8> {
    let mut out = String::from("[secret]\n");
    for (name, value) in values {
        out.push_str(name);
        out.push_str(" = \"");
        for c in text(value).chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c => out.push(c),
            }
        }
        out.push_str("\"\n");
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests;
