//! RFC 6902 JSON Patch as the webhook emits it: `add` operations only, at RFC 6901 pointers,
//! and a small applier for `explain` and tests.
//!
//! Only `add` is ever needed, and it is only ever aimed at a member that is absent, at the end
//! of an array (`/-`) or at an array index: replacing a whole map or array would drop what the
//! pod or an earlier webhook put there (the bug of 1Password/kubernetes-secrets-injector#51).

use serde::{Serialize, Serializer};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::{Error, Result, json};

/// One JSON Patch operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Operation {
    /// Adds `value` at `path`: a new member, an array element, or `-` for the end.
    Add { path: String, value: Json },
}

/// A JSON value kept as its serialised text: an operation's value as [`Patch::operations`]
/// reads it back, or a value serialised with [`Json::of`]. Only this crate creates values from
/// text, and only text it wrote; the tests parse every patch independently.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Json(String);

impl Json {
    /// `value`, serialised now. k8s-openapi objects, maps with string keys and JSON values
    /// never fail to serialise; anything that would is `null`.
    pub fn of(value: &impl Serialize) -> Self {
        Self(serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned()))
    }

    /// The JSON text.
    pub fn get(&self) -> &str {
        &self.0
    }

    /// The JSON text, owned.
    pub(crate) fn into_string(self) -> String {
        self.0
    }

    /// The value, parsed.
    pub fn to_value(&self) -> Value {
        serde_json::from_str(&self.0).unwrap_or(Value::Null)
    }
}

impl Serialize for Json {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        RawValue::from_string(self.0.clone())
            .map_err(serde::ser::Error::custom)?
            .serialize(serializer)
    }
}

impl Operation {
    /// An `add` of `value` at `path`.
    pub fn add(path: String, value: &impl Serialize) -> Self {
        Operation::Add {
            path,
            value: Json::of(value),
        }
    }
}

/// A JSON Patch document of `add` operations, kept as its JSON text and written while it is
/// built: the webhook base64-encodes this text into its response, so an admission builds no
/// operation, path or value strings only to copy them into the document afterwards.
/// [`operations`](Self::operations) reads it back for `explain` and the tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Patch {
    /// `[`, the operations and `]`; empty while there are none.
    text: String,
    len: usize,
}

impl Patch {
    /// An empty patch.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty patch with room for `bytes` of text.
    pub(crate) fn with_capacity(bytes: usize) -> Self {
        Self {
            text: String::with_capacity(bytes),
            len: 0,
        }
    }

    /// Appends an `add` at the pointer of `tokens` of the JSON text that `value` writes.
    pub(crate) fn add(&mut self, tokens: &[&str], value: impl FnOnce(&mut String)) {
        self.add_at(tokens, false, value);
    }

    /// Appends an `add` at the end (`/-`) of the array at `tokens`.
    pub(crate) fn append(&mut self, tokens: &[&str], value: impl FnOnce(&mut String)) {
        self.add_at(tokens, true, value);
    }

    fn add_at(&mut self, tokens: &[&str], end: bool, value: impl FnOnce(&mut String)) {
        if self.text.pop().is_some() {
            self.text.push(',');
        } else {
            self.text.push('[');
        }
        self.text.push_str("{\"op\":\"add\",\"path\":\"");
        if !tokens.iter().any(|t| json::needs_escape(t)) {
            push_pointer(&mut self.text, tokens);
        } else {
            json::push_string_contents(&mut self.text, &pointer(tokens));
        }
        if end {
            self.text.push_str("/-");
        }
        self.text.push_str("\",\"value\":");
        value(&mut self.text);
        self.text.push_str("}]");
        self.len += 1;
    }

    /// Whether there are no operations.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The number of operations.
    pub fn len(&self) -> usize {
        self.len
    }

    /// The patch document as JSON text.
    pub fn as_json(&self) -> &str {
        if self.text.is_empty() {
            "[]"
        } else {
            &self.text
        }
    }

    /// The operations, read back from the text.
    pub fn operations(&self) -> Result<Vec<Operation>> {
        #[derive(serde::Deserialize)]
        struct Add<'a> {
            op: &'a str,
            path: String,
            value: &'a RawValue,
        }
        let ops: Vec<Add<'_>> = serde_json::from_str(self.as_json()).map_err(|e| Error::Patch {
            path: String::new(),
            message: format!("the patch is not a JSON Patch: {e}"),
        })?;
        ops.into_iter()
            .map(|Add { op, path, value }| match op {
                "add" => Ok(Operation::Add {
                    path,
                    value: Json(value.get().to_owned()),
                }),
                _ => Err(Error::Patch {
                    path,
                    message: format!("unexpected operation {op:?}"),
                }),
            })
            .collect()
    }
}

impl Serialize for Patch {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        RawValue::from_string(self.as_json().to_owned())
            .map_err(serde::ser::Error::custom)?
            .serialize(serializer)
    }
}

/// The JSON pointer of `tokens`, each escaped (`~` as `~0`, `/` as `~1`).
pub fn pointer(tokens: &[&str]) -> String {
    let mut out = String::with_capacity(tokens.iter().map(|t| t.len() + 1).sum::<usize>() + 4);
    push_pointer(&mut out, tokens);
    out
}

fn push_pointer(out: &mut String, tokens: &[&str]) {
    for token in tokens {
        out.push('/');
        if !token.bytes().any(|b| b == b'~' || b == b'/') {
            out.push_str(token);
            continue;
        }
        for c in token.chars() {
            match c {
                '~' => out.push_str("~0"),
                '/' => out.push_str("~1"),
                c => out.push(c),
            }
        }
    }
}

/// Applies `ops` to `doc` in order, as RFC 6902 says, or leaves a partly patched `doc` and
/// returns the first operation that does not apply.
pub fn apply(doc: &mut Value, ops: &[Operation]) -> Result<()> {
    for op in ops {
        let Operation::Add { path, value } = op;
        add(doc, path, value.to_value()).map_err(|message| Error::Patch {
            path: path.clone(),
            message,
        })?;
    }
    Ok(())
}

fn add(doc: &mut Value, path: &str, value: Value) -> Result<(), String> {
    if path.is_empty() {
        *doc = value;
        return Ok(());
    }
    let Some(rest) = path.strip_prefix('/') else {
        return Err("a pointer starts with /".to_owned());
    };
    let mut tokens: Vec<String> = rest.split('/').map(unescape).collect::<Result<_, _>>()?;
    let last = tokens.pop().unwrap_or_default();
    let mut target = doc;
    for token in &tokens {
        target = match target {
            Value::Object(map) => map.get_mut(token),
            Value::Array(items) => index(token, items.len())
                .ok()
                .and_then(|i| items.get_mut(i)),
            _ => None,
        }
        .ok_or_else(|| format!("no value at {token:?}"))?;
    }
    match target {
        Value::Object(map) => {
            map.insert(last, value);
            Ok(())
        }
        Value::Array(items) if last == "-" => {
            items.push(value);
            Ok(())
        }
        Value::Array(items) => {
            let i = index(&last, items.len() + 1)?;
            items.insert(i, value);
            Ok(())
        }
        _ => Err("the parent is neither an object nor an array".to_owned()),
    }
}

/// An array index below `bound`, in the strict RFC 6901 form (no sign, no leading zero).
fn index(token: &str, bound: usize) -> Result<usize, String> {
    let canonical = token == "0" || (!token.starts_with('0') && !token.is_empty());
    match token.parse::<usize>() {
        Ok(i) if canonical && token.bytes().all(|b| b.is_ascii_digit()) && i < bound => Ok(i),
        _ => Err(format!("{token:?} is not an index below {bound}")),
    }
}

fn unescape(token: &str) -> Result<String, String> {
    let mut out = String::with_capacity(token.len());
    let mut chars = token.chars();
    while let Some(c) = chars.next() {
        if c == '~' {
            match chars.next() {
                Some('0') => out.push('~'),
                Some('1') => out.push('/'),
                _ => return Err(format!("invalid escape in {token:?}: expected ~0 or ~1")),
            }
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
