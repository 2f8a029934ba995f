//! Quoting for the SQL the pipeline builds (COPY takes no bind parameters), and the text
//! escapes of PostgreSQL's COPY format.

/// A quoted identifier: `"name"`, with `"` doubled.
pub(crate) fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A quoted literal: `'text'`, with `'` doubled (standard_conforming_strings is on since 9.1).
pub(crate) fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Undoes COPY's text-format escapes of one field, appending to `out`: runs without a
/// backslash are copied whole.
pub(crate) fn unescape_into(mut field: &[u8], out: &mut Vec<u8>) {
    while let Some(at) = memchr::memchr(b'\\', field) {
        out.extend_from_slice(&field[..at]);
        match field.get(at + 1) {
            Some(b'n') => out.push(b'\n'),
            Some(b't') => out.push(b'\t'),
            Some(b'r') => out.push(b'\r'),
            Some(b'b') => out.push(8),
            Some(b'f') => out.push(12),
            Some(b'v') => out.push(11),
            Some(other) => out.push(*other),
            None => {
                out.push(b'\\');
                return;
            }
        }
        field = &field[at + 2..];
    }
    out.extend_from_slice(field);
}

/// Escapes one field for COPY's text format.
pub(crate) fn escape(field: &[u8], out: &mut Vec<u8>) {
    for &b in field {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b => out.push(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_and_copy_escapes() {
        assert_eq!(ident("we\"ird"), "\"we\"\"ird\"");
        assert_eq!(literal("it's"), "'it''s'");
        let raw = b"a\\b\tc\nd";
        let mut escaped = Vec::new();
        escape(raw, &mut escaped);
        assert_eq!(escaped, b"a\\\\b\\tc\\nd");
        let mut back = Vec::new();
        unescape_into(&escaped, &mut back);
        assert_eq!(back, raw);
        // Every escape COPY writes, and a trailing lone backslash kept as it is.
        let mut all = Vec::new();
        unescape_into(b"\\n\\t\\r\\b\\f\\v\\\\x\\", &mut all);
        assert_eq!(all, b"\n\t\r\x08\x0c\x0b\\x\\");
    }
}
