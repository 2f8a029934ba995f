//! JSON text helpers: the admission path writes its patch values as text instead of building
//! and serialising structs, and these escape strings exactly as serde_json does, so that the
//! output is byte for byte what serde_json would write. [`escape_at`] also serves the
//! webhook's reader.

/// Appends `value` as a JSON string literal, escaped as serde_json escapes: `"`, `\\` and the
/// control characters, nothing else.
pub(crate) fn push_string(out: &mut String, value: &str) {
    out.push('"');
    push_string_contents(out, value);
    out.push('"');
}

/// Appends `value` escaped as in a JSON string literal, without the quotes.
pub(crate) fn push_string_contents(out: &mut String, value: &str) {
    if !needs_escape(value) {
        out.push_str(value);
        return;
    }
    let mut start = 0;
    for (i, b) in value.bytes().enumerate() {
        let short = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..0x20 => "",
            _ => continue,
        };
        out.push_str(&value[start..i]);
        if short.is_empty() {
            out.push_str("\\u00");
            out.extend(hex_byte(b).map(char::from));
        } else {
            out.push_str(short);
        }
        start = i + 1;
    }
    out.push_str(&value[start..]);
}

/// Appends `value` as it appears inside a JSON string that holds JSON text: its JSON string
/// literal, escaped once more (quotes as `\"`, backslashes doubled).
pub(crate) fn push_nested_string(out: &mut String, value: &str) {
    if !needs_escape(value) {
        out.push_str("\\\"");
        out.push_str(value);
        out.push_str("\\\"");
        return;
    }
    let mut once = String::with_capacity(value.len() + 8);
    push_string(&mut once, value);
    // `once` has no control characters left: only its quotes and backslashes change.
    for c in once.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
}

/// Appends the decimal digits of `n`.
pub(crate) fn push_number(out: &mut String, n: impl itoa::Integer) {
    out.push_str(itoa::Buffer::new().format(n));
}

/// Whether `value` has a character that a JSON string escapes.
pub(crate) fn needs_escape(value: &str) -> bool {
    escape_at(value.as_bytes()).is_some()
}

/// The index of the first byte that a JSON string escapes (a control character, `"` or `\\`),
/// looked for eight bytes at a time, as serde_json's reader scans strings: admission asks
/// this of every string it reads or writes.
pub fn escape_at(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_le_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_le_bytes([0x80; 8]);
    // The high bit of each byte that is zero. A borrow can also mark a byte above a zero
    // byte, never one below it, so the lowest mark is a true one.
    let zero = |w: u64| w.wrapping_sub(ONES) & !w & HIGH;
    let mut chunks = bytes.chunks_exact(8);
    let mut at = 0;
    for chunk in &mut chunks {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_le_bytes(word);
        // Bytes below 0x20 are those whose value minus 0x20 borrows (those of 0x80 and above
        // never count, as `!w` clears them).
        let control = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
        let marks =
            control | zero(w ^ (ONES * u64::from(b'"'))) | zero(w ^ (ONES * u64::from(b'\\')));
        if marks != 0 {
            // Little-endian: the first byte in memory is the lowest.
            return Some(at + marks.trailing_zeros() as usize / 8);
        }
        at += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b < 0x20 || b == b'"' || b == b'\\')
        .map(|i| at + i)
}

/// The two lowercase hex digits of `byte`.
pub(crate) fn hex_byte(byte: u8) -> [u8; 2] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    [HEX[usize::from(byte >> 4)], HEX[usize::from(byte & 0xf)]]
}

#[cfg(test)]
mod tests;
