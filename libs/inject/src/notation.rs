//! Keeper references as annotations write them: `keeper://` notation, folder paths to records,
//! `record[field]` and the escapes of the official SDKs.
//!
//! Notation follows the Python SDK's `parse_notation` (`keeper_secrets_manager_core/core.py`):
//! `[keeper://]<record>/<selector>[/<parameter>][<index>][<property>]`, with `\/`, `\[`, `\]`
//! and `\\` as the only escapes, and legacy `name[first]` read as `name[][first]`.
//! Like the upstream injector (`pkg/ksm/client.go parseNotationPath`), the record may be
//! preceded by folder names: `keeper://Production/Databases/mysql/field/password`.
//! The selector is found from the right (the last segment for `type`, `title` and `notes`,
//! the one before last for `field`, `custom_field` and `file`), so that a folder named `notes`
//! is still a folder.

use bulwark_sidecar_spec::{Index, RecordRef, Selector};

/// The scheme of Keeper notation.
pub(crate) const SCHEME: &str = "keeper://";

/// What a reference selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reference {
    /// A whole record.
    Record(RecordRef),
    /// One record with only one field, from `record[field]`.
    Field(RecordRef, String),
    /// A value selected by notation.
    Notation {
        canonical: String,
        record: RecordRef,
        selector: Selector,
    },
    /// A file attachment.
    File(RecordRef, String),
}

/// Why a reference does not parse; the annotation parser adds which annotation and the
/// expected forms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Error {
    #[error("empty reference: expected a record title or UID")]
    Empty,
    #[error("invalid escape \\{0}: only \\/, \\[, \\] and \\\\ are escapes")]
    Escape(char),
    #[error("a trailing \\ escapes nothing")]
    TrailingEscape,
    #[error("empty segment in {0:?}: expected names separated by single slashes")]
    EmptySegment(String),
    #[error("missing record: expected a record title or UID")]
    NoRecord,
    #[error("empty {0}")]
    EmptyName(&'static str),
    #[error("unescaped {bracket} in {what}: write \\{bracket} for a literal bracket")]
    Bracket { bracket: char, what: &'static str },
    #[error("a {0} cannot contain / (write \\/ for a literal slash)")]
    Slash(&'static str),
    #[error("selector `{0}` needs a parameter, as in keeper://<record>/{0}/<name>")]
    NoParameter(&'static str),
    #[error("unexpected text after ]: expected [index] or [property]")]
    AfterBracket,
    #[error("unclosed [: expected [index] or [property]")]
    Unclosed,
    #[error("nested [: write \\[ for a literal bracket")]
    Nested,
    #[error("invalid index [{0}]: expected [] or a number")]
    Index(String),
    #[error("empty [property]: expected a property name such as [first]")]
    EmptyProperty,
    #[error("too many [...] groups: expected at most [index][property]")]
    Groups,
    #[error("not a file selector")]
    NotFile,
}

/// One character of a reference and whether it was escaped.
type Char = (char, bool);

/// Parses a reference with or without `keeper://`: notation, or a folder path ending in a
/// record, or (without `/`) a record title or UID, optionally followed by `[field]`.
pub(crate) fn parse(text: &str) -> Result<Reference, Error> {
    let (scheme, rest) = match text.strip_prefix(SCHEME) {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let segments = split(rest)?;
    if !scheme && segments.len() == 1 {
        return single(&segments[0]);
    }
    let n = segments.len();
    let keyword = |i: usize| -> Option<&'static str> {
        let seg = segments.get(i)?;
        let word: String = seg.iter().map(|(c, _)| *c).collect();
        ["type", "title", "notes", "field", "custom_field", "file"]
            .into_iter()
            .find(|k| *k == word && seg.iter().all(|(_, escaped)| !escaped))
    };
    let last = keyword(n - 1);
    if n >= 2 && matches!(last, Some("type" | "title" | "notes")) {
        let record = record(&segments[..n - 1])?;
        let selector = match last {
            Some("type") => Selector::Type,
            Some("title") => Selector::Title,
            _ => Selector::Notes,
        };
        let canonical = canonical(&record, &selector);
        return Ok(Reference::Notation {
            canonical,
            record,
            selector,
        });
    }
    if let Some(word) = last.filter(|w| matches!(*w, "field" | "custom_field" | "file")) {
        return Err(Error::NoParameter(word));
    }
    match keyword(n.wrapping_sub(2)).filter(|_| n >= 3) {
        Some("file") => {
            let record = record(&segments[..n - 2])?;
            let name = plain(&segments[n - 1], "file name")?;
            Ok(Reference::File(record, name))
        }
        Some(word @ ("field" | "custom_field")) => {
            let record = record(&segments[..n - 2])?;
            let (name, index, property) = parameter(&segments[n - 1])?;
            let selector = if word == "field" {
                Selector::Field {
                    name,
                    index,
                    property,
                }
            } else {
                Selector::CustomField {
                    name,
                    index,
                    property,
                }
            };
            let canonical = canonical(&record, &selector);
            Ok(Reference::Notation {
                canonical,
                record,
                selector,
            })
        }
        _ => Ok(Reference::Record(record(&segments)?)),
    }
}

/// Parses a folder path such as `Production/Databases` (leading and trailing `/` allowed).
pub(crate) fn folder_path(text: &str) -> Result<Vec<String>, Error> {
    let trimmed = text.strip_prefix('/').unwrap_or(text);
    let trimmed = match trimmed.strip_suffix('/') {
        Some(t) if !t.ends_with('\\') => t,
        _ => trimmed,
    };
    split(trimmed)?
        .iter()
        .map(|seg| plain(seg, "folder name"))
        .collect()
}

/// Parses a record reference that must not carry a selector: `Folder/Sub/Record` or `Record`.
pub(crate) fn record_path(text: &str) -> Result<RecordRef, Error> {
    record(&split(text)?)
}

/// Parses one name with escapes and no `/`, such as a file name.
pub(crate) fn name(text: &str, what: &'static str) -> Result<String, Error> {
    match split(text)?.as_slice() {
        [one] => plain(one, what),
        _ => Err(Error::Slash(what)),
    }
}

/// Splits at the last unescaped `sep`, returning the text before and after it.
pub(crate) fn rsplit_unescaped<'a>(text: &'a str, sep: &str) -> Option<(&'a str, &'a str)> {
    let mut found = None;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        if c == '\\' {
            escaped = true;
            continue;
        }
        if text[i..].starts_with(sep) {
            found = Some(i);
        }
    }
    found.map(|i| (&text[..i], &text[i + sep.len()..]))
}

/// Escapes a title, label or file name for notation.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '/' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Splits at unescaped `/` and resolves escapes; every segment must be non-empty.
fn split(text: &str) -> Result<Vec<Vec<Char>>, Error> {
    if text.is_empty() {
        return Err(Error::Empty);
    }
    let mut segments = vec![Vec::new()];
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(e @ ('/' | '[' | ']' | '\\')) => {
                    segments
                        .last_mut()
                        .into_iter()
                        .for_each(|s| s.push((e, true)));
                }
                Some(e) => return Err(Error::Escape(e)),
                None => return Err(Error::TrailingEscape),
            },
            '/' => segments.push(Vec::new()),
            c => segments
                .last_mut()
                .into_iter()
                .for_each(|s| s.push((c, false))),
        }
    }
    if segments.iter().any(Vec::is_empty) {
        return Err(Error::EmptySegment(text.to_owned()));
    }
    Ok(segments)
}

/// A single segment without `keeper://`: a record title or UID, or `record[field]`.
fn single(seg: &[Char]) -> Result<Reference, Error> {
    if seg.last() == Some(&(']', false))
        && let Some(open) = seg.iter().position(|c| *c == ('[', false))
    {
        let name = plain(&seg[..open], "record title")?;
        let field = plain(&seg[open + 1..seg.len() - 1], "field name")?;
        return Ok(Reference::Field(
            RecordRef {
                folder: Vec::new(),
                name,
            },
            field,
        ));
    }
    Ok(Reference::Record(RecordRef {
        folder: Vec::new(),
        name: plain(seg, "record title")?,
    }))
}

/// The record at the end of `segments`, and the folders before it.
fn record(segments: &[Vec<Char>]) -> Result<RecordRef, Error> {
    let Some((last, folders)) = segments.split_last() else {
        return Err(Error::NoRecord);
    };
    Ok(RecordRef {
        folder: folders
            .iter()
            .map(|seg| plain(seg, "folder name"))
            .collect::<Result<_, _>>()?,
        name: plain(last, "record title")?,
    })
}

/// A segment without unescaped brackets, as a string.
fn plain(seg: &[Char], what: &'static str) -> Result<String, Error> {
    if seg.is_empty() {
        return Err(Error::EmptyName(what));
    }
    if let Some((c, _)) = seg
        .iter()
        .find(|(c, escaped)| !escaped && matches!(c, '[' | ']'))
    {
        return Err(Error::Bracket { bracket: *c, what });
    }
    Ok(seg.iter().map(|(c, _)| *c).collect())
}

/// A field parameter: `name`, `name[0]`, `name[]`, `name[0][first]` or legacy `name[first]`.
fn parameter(seg: &[Char]) -> Result<(String, Option<Index>, Option<String>), Error> {
    let open = seg.iter().position(|c| *c == ('[', false));
    let name = plain(&seg[..open.unwrap_or(seg.len())], "field name")?;
    let Some(mut at) = open else {
        return Ok((name, None, None));
    };
    let mut groups = Vec::new();
    while at < seg.len() {
        if seg[at] != ('[', false) {
            return Err(Error::AfterBracket);
        }
        let Some(len) = seg[at + 1..].iter().position(|c| *c == (']', false)) else {
            return Err(Error::Unclosed);
        };
        let inner = &seg[at + 1..at + 1 + len];
        if inner.contains(&('[', false)) {
            return Err(Error::Nested);
        }
        groups.push(inner.iter().map(|(c, _)| *c).collect::<String>());
        at += len + 2;
    }
    let index_of = |s: &str| -> Option<Index> {
        if s.is_empty() {
            Some(Index::All)
        } else if s.bytes().all(|b| b.is_ascii_digit()) {
            s.parse().ok().map(Index::At)
        } else {
            None
        }
    };
    match groups.as_slice() {
        [one] => match index_of(one) {
            Some(index) => Ok((name, Some(index), None)),
            None => Ok((name, Some(Index::All), Some(one.clone()))),
        },
        [first, second] => {
            let index = index_of(first).ok_or_else(|| Error::Index(first.clone()))?;
            if second.is_empty() {
                return Err(Error::EmptyProperty);
            }
            Ok((name, Some(index), Some(second.clone())))
        }
        _ => Err(Error::Groups),
    }
}

/// The `keeper://` form of a notation, with escapes, for logs and the spec.
fn canonical(record: &RecordRef, selector: &Selector) -> String {
    let mut out = String::from(SCHEME);
    for folder in &record.folder {
        out.push_str(&escape(folder));
        out.push('/');
    }
    out.push_str(&escape(&record.name));
    let (word, param) = match selector {
        Selector::Type => ("type", None),
        Selector::Title => ("title", None),
        Selector::Notes => ("notes", None),
        Selector::Field {
            name,
            index,
            property,
        } => ("field", Some((name, index, property))),
        Selector::CustomField {
            name,
            index,
            property,
        } => ("custom_field", Some((name, index, property))),
    };
    out.push('/');
    out.push_str(word);
    if let Some((name, index, property)) = param {
        out.push('/');
        out.push_str(&escape(name));
        match index {
            Some(Index::All) => out.push_str("[]"),
            Some(Index::At(i)) => out.push_str(&format!("[{i}]")),
            None => {}
        }
        if let Some(property) = property {
            out.push('[');
            out.push_str(&escape(property));
            out.push(']');
        }
    }
    out
}

#[cfg(test)]
mod tests;
