//! Rows of `COPY ... TO STDOUT` (text format) as JSON lines, one object per row keyed by
//! column name.
//!
//! PostgreSQL sends each value in its text form, which is the form its input functions read
//! back; restore hands every line to `json_populate_record`, so any type round-trips. The
//! JSON types follow `row_to_json` where it matters to readers: integers, floats and numerics
//! are numbers (unless NaN or infinite), booleans are `true`/`false`, `json` and `jsonb` are
//! embedded, NULL is `null`, and everything else is a string of its text form. A `json` or
//! `jsonb` column that is SQL NULL is left out of its line, so that it stays apart from the
//! JSON value `null` (which is written as `null`); restore reads such columns from the line
//! itself, where an absent key is SQL NULL.
//! Converting here instead of in `row_to_json` halves the database's share of the work.

/// How a column's text form becomes JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `int2`, `int4`, `int8`, `float4`, `float8`, `numeric`: a number, or a string for NaN
    /// and infinities.
    Number,
    /// `bool`: PostgreSQL prints `t` or `f`.
    Bool,
    /// `json`, `jsonb`: already JSON.
    Json,
    /// Anything else: a string.
    Text,
}

impl Kind {
    /// The kind of a column of the type named `typname` (`pg_type.typname`).
    pub(crate) fn of(typname: &str) -> Self {
        match typname {
            "int2" | "int4" | "int8" | "float4" | "float8" | "numeric" => Kind::Number,
            "bool" => Kind::Bool,
            "json" | "jsonb" => Kind::Json,
            _ => Kind::Text,
        }
    }
}

/// The columns of a table, in order, with their JSON keys written out once.
#[derive(Debug, Clone)]
pub(crate) struct Columns {
    /// `"name":` for each column.
    keys: Vec<Vec<u8>>,
    kinds: Vec<Kind>,
}

/// The unescaped fields of the last row, kept in one buffer that rows reuse.
#[derive(Debug, Default)]
pub(crate) struct Fields {
    text: Vec<u8>,
    /// Each field's span in `text`; `None` for NULL.
    spans: Vec<Option<(usize, usize)>>,
}

impl Fields {
    /// Field `i`'s text, `None` for NULL or a field that is not there.
    pub(crate) fn get(&self, i: usize) -> Option<&[u8]> {
        let (start, end) = (*self.spans.get(i)?)?;
        self.text.get(start..end)
    }
}

/// A line that is not a row of the expected columns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a COPY row has {found} fields, the table has {expected} columns")]
pub(crate) struct FieldCount {
    pub(crate) found: usize,
    pub(crate) expected: usize,
}

impl Columns {
    /// Columns named `names` of the given kinds.
    pub(crate) fn new(columns: &[(String, Kind)]) -> Self {
        let keys = columns
            .iter()
            .map(|(name, _)| {
                let mut key = Vec::with_capacity(name.len() + 3);
                string(name.as_bytes(), &mut key);
                key.push(b':');
                key
            })
            .collect();
        Self {
            keys,
            kinds: columns.iter().map(|(_, kind)| *kind).collect(),
        }
    }

    /// How many columns there are.
    pub(crate) fn len(&self) -> usize {
        self.kinds.len()
    }

    /// Appends the JSON line (with its newline) of one COPY text row to `out`; `fields`
    /// receives each field's unescaped text, to read keys from.
    pub(crate) fn row(
        &self,
        line: &[u8],
        out: &mut Vec<u8>,
        fields: &mut Fields,
    ) -> Result<(), FieldCount> {
        fields.text.clear();
        fields.spans.clear();
        let mut start = 0;
        let ends = memchr::memchr_iter(b'\t', line).chain(std::iter::once(line.len()));
        for end in ends {
            let raw = &line[start..end];
            start = end + 1;
            if raw == b"\\N" {
                fields.spans.push(None);
            } else {
                let at = fields.text.len();
                crate::sql::unescape_into(raw, &mut fields.text);
                fields.spans.push(Some((at, fields.text.len())));
            }
        }
        if fields.spans.len() != self.len() {
            return Err(FieldCount {
                found: fields.spans.len(),
                expected: self.len(),
            });
        }
        out.push(b'{');
        let mut first = true;
        for (i, (key, kind)) in self.keys.iter().zip(&self.kinds).enumerate() {
            let value = fields.get(i);
            if value.is_none() && *kind == Kind::Json {
                continue;
            }
            if !first {
                out.push(b',');
            }
            first = false;
            out.extend_from_slice(key);
            match (value, kind) {
                (None, _) => out.extend_from_slice(b"null"),
                (Some(text), Kind::Number) if is_json_number(text) => out.extend_from_slice(text),
                (Some(text), Kind::Bool) if text == b"t" => out.extend_from_slice(b"true"),
                (Some(text), Kind::Bool) if text == b"f" => out.extend_from_slice(b"false"),
                (Some(text), Kind::Json) => out.extend_from_slice(text),
                (Some(text), _) => string(text, out),
            }
        }
        out.extend_from_slice(b"}\n");
        Ok(())
    }
}

/// True when PostgreSQL's text for a number is also a JSON number (not `NaN`, `Infinity`).
fn is_json_number(text: &[u8]) -> bool {
    let digits = text.strip_prefix(b"-").unwrap_or(text);
    digits.first().is_some_and(u8::is_ascii_digit)
        && digits
            .iter()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
}

/// Appends `text` as a JSON string. Bytes that are not UTF-8 (a `SQL_ASCII` database) become
/// U+FFFD, as JSON must be UTF-8.
fn string(text: &[u8], out: &mut Vec<u8>) {
    // Writing a string into a Vec cannot fail.
    let _ = serde_json::to_writer(out, &*String::from_utf8_lossy(text));
}

#[cfg(test)]
mod tests;
