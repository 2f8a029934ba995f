//! Rows of `COPY ... TO STDOUT` (text format) as JSON lines, one object per row keyed by
//! column name.
//!
//! The JSON types are what readers and query engines expect (README lists every type):
//! integers and floats are numbers (a string for NaN and infinities), `numeric` and `money`
//! strings holding the exact value, booleans `true`/`false`, `json` and `jsonb` embedded,
//! timestamps RFC 3339 (`2026-06-07T23:18:09.170185+00:00`; a `timestamp` without zone has no
//! offset), `bytea` base64, arrays JSON arrays (PostgreSQL's `array_to_json` makes them in the
//! COPY query, see `pipeline::read`), NULL `null`, and everything else the value's text form,
//! which its input function reads back. A `json` or `jsonb` column (or an array) that is SQL
//! NULL is left out of its line, so that it stays apart from the JSON value `null`; restore
//! reads `json`, `jsonb` and `bytea` columns from the line itself and hands the rest to
//! `json_populate_record`.
//! Converting text here instead of in `row_to_json` halves the database's share of the work.

use base64::Engine;

/// How a column's text form becomes JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `int2`, `int4`, `int8`, `float4`, `float8`: a number, or a string for NaN and
    /// infinities.
    Number,
    /// `bool`: PostgreSQL prints `t` or `f`.
    Bool,
    /// `json`, `jsonb`, and arrays (which the COPY query turns into JSON): already JSON.
    Json,
    /// `timestamptz`, `timestamp`: RFC 3339.
    Timestamp,
    /// `bytea`, printed as hex (`\x0a1b`): base64.
    Bytea,
    /// Anything else: a string of its text form.
    Text,
}

impl Kind {
    /// The kind of a column whose (base) type is `typname` of category `category`
    /// (`pg_type.typname`, `pg_type.typcategory`).
    pub(crate) fn of(typname: &str, category: &str) -> Self {
        if category == "A" {
            return Kind::Json;
        }
        match typname {
            "int2" | "int4" | "int8" | "float4" | "float8" => Kind::Number,
            "bool" => Kind::Bool,
            "json" | "jsonb" => Kind::Json,
            "timestamptz" | "timestamp" => Kind::Timestamp,
            "bytea" => Kind::Bytea,
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
                (Some(text), Kind::Timestamp) => timestamp(text, out),
                (Some(text), Kind::Bytea) => bytea(text, out),
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

/// Appends PostgreSQL's ISO timestamp (`2026-06-07 23:18:09.170185+00`) as an RFC 3339
/// string (`2026-06-07T23:18:09.170185+00:00`). What RFC 3339 cannot say (`infinity`, a BC
/// date, an offset with seconds) stays PostgreSQL's text, which restore reads back.
fn timestamp(text: &[u8], out: &mut Vec<u8>) {
    match rfc3339(text) {
        Some(rfc) => {
            out.push(b'"');
            out.extend_from_slice(&rfc);
            out.push(b'"');
        }
        None => string(text, out),
    }
}

/// The RFC 3339 form of PostgreSQL's ISO timestamp, if it has one.
fn rfc3339(text: &[u8]) -> Option<Vec<u8>> {
    let iso = text.len() >= 19
        && text[4] == b'-'
        && text[10] == b' '
        && text[..4].iter().all(u8::is_ascii_digit)
        && !text.ends_with(b" BC");
    if !iso {
        return None;
    }
    let mut rfc = Vec::with_capacity(text.len() + 4);
    rfc.extend_from_slice(&text[..10]);
    rfc.push(b'T');
    let rest = &text[11..];
    // The offset, if any, starts at the last `+` or `-` after the time.
    match rest.iter().rposition(|b| matches!(b, b'+' | b'-')) {
        Some(at) => {
            let (time, offset) = rest.split_at(at);
            rfc.extend_from_slice(time);
            rfc.extend_from_slice(offset);
            match offset.len() {
                // `+00` -> `+00:00`; `+05:30` as it is.
                3 => rfc.extend_from_slice(b":00"),
                6 => {}
                // `+05:53:28` (a historic local mean time) has no RFC 3339 form.
                _ => return None,
            }
        }
        None => rfc.extend_from_slice(rest),
    }
    Some(rfc)
}

/// Appends PostgreSQL's hex form of a `bytea` (`\x0a1b`) as a base64 string.
fn bytea(text: &[u8], out: &mut Vec<u8>) {
    let Some(hex) = text.strip_prefix(b"\\x") else {
        return string(text, out);
    };
    let mut bytes = Vec::with_capacity(hex.len() / 2);
    for pair in hex.chunks(2) {
        let digit = |b: u8| (b as char).to_digit(16);
        match (
            pair.first().copied().and_then(digit),
            pair.get(1).copied().and_then(digit),
        ) {
            (Some(hi), Some(lo)) => bytes.push((hi * 16 + lo) as u8),
            _ => return string(text, out),
        }
    }
    out.push(b'"');
    out.extend_from_slice(
        base64::engine::general_purpose::STANDARD
            .encode(&bytes)
            .as_bytes(),
    );
    out.push(b'"');
}

/// Appends `text` as a JSON string. Bytes that are not UTF-8 (a `SQL_ASCII` database) become
/// U+FFFD, as JSON must be UTF-8.
fn string(text: &[u8], out: &mut Vec<u8>) {
    // Writing a string into a Vec cannot fail.
    let _ = serde_json::to_writer(out, &*String::from_utf8_lossy(text));
}

#[cfg(test)]
mod tests;
