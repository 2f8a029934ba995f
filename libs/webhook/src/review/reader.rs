//! The fast path of reading an AdmissionReview: a serde `Deserializer` over JSON text that
//! scans strings eight bytes at a time and skips what the webhook does not read without
//! building it.
//!
//! Reading the review with serde_json was the largest part of an admission (a third of its
//! instructions, most of them serde_json scanning fields we skip), and it decides the
//! webhook's throughput against a bare server (issue 3).
//!
//! **Invariant:** this reader only ever answers what serde_json would answer, or nothing. It
//! gives up ([`from_str`] returns `None`) on anything it does not handle exactly as serde_json
//! does: every error, escapes it would have to check further, floats, depth beyond
//! [`MAX_DEPTH`]. The caller then reads the body with serde_json, which decides and words the
//! error; so this reader never needs an error message of its own and never changes an answer.
//! [`agrees_with_serde_json`](super::agrees_with_serde_json) checks the invariant in the tests
//! and under the fuzzer.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// The deepest nesting read; serde_json allows 128, and deeper input falls back to it.
const MAX_DEPTH: u32 = 64;

/// `T` read from `text`, or `None` where serde_json must decide.
pub(super) fn from_str<'de, T: de::Deserialize<'de>>(text: &'de str) -> Option<T> {
    let mut reader = Reader {
        text,
        pos: 0,
        depth: 0,
    };
    let value = T::deserialize(&mut reader).ok()?;
    reader.whitespace();
    (reader.pos == text.len()).then_some(value)
}

/// Why the reader gave up; never shown to anyone.
#[derive(Debug)]
struct GiveUp;

impl fmt::Display for GiveUp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("left to serde_json")
    }
}

impl std::error::Error for GiveUp {}

impl de::Error for GiveUp {
    fn custom<T: fmt::Display>(_: T) -> Self {
        GiveUp
    }
}

type Result<T> = std::result::Result<T, GiveUp>;

struct Reader<'de> {
    text: &'de str,
    pos: usize,
    depth: u32,
}

/// A JSON number without fraction or exponent.
enum Integer {
    Negative(i64),
    Positive(u64),
}

impl<'de> Reader<'de> {
    fn bytes(&self) -> &'de [u8] {
        self.text.as_bytes()
    }

    fn whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes().get(self.pos) {
            self.pos += 1;
        }
    }

    /// The next byte after whitespace, not consumed.
    fn peek(&mut self) -> Result<u8> {
        self.whitespace();
        self.bytes().get(self.pos).copied().ok_or(GiveUp)
    }

    fn expect(&mut self, byte: u8) -> Result<()> {
        if self.peek()? != byte {
            return Err(GiveUp);
        }
        self.pos += 1;
        Ok(())
    }

    fn literal(&mut self, word: &str) -> Result<()> {
        if !self.bytes()[self.pos..].starts_with(word.as_bytes()) {
            return Err(GiveUp);
        }
        self.pos += word.len();
        Ok(())
    }

    fn enter(&mut self) -> Result<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(GiveUp);
        }
        Ok(())
    }

    /// The rest of a string whose opening quote was just read: borrowed unless it has escapes.
    fn string(&mut self) -> Result<Cow<'de, str>> {
        let start = self.pos;
        let at = start + self.special_at(start)?;
        if self.bytes()[at] == b'"' {
            self.pos = at + 1;
            return Ok(Cow::Borrowed(&self.text[start..at]));
        }
        let mut out = String::from(&self.text[start..at]);
        self.pos = at;
        loop {
            match self.bytes()[self.pos] {
                b'"' => {
                    self.pos += 1;
                    return Ok(Cow::Owned(out));
                }
                b'\\' => {
                    self.pos += 1;
                    self.escape(&mut out)?;
                }
                _ => return Err(GiveUp),
            }
            let run = self.pos;
            let at = run + self.special_at(run)?;
            out.push_str(&self.text[run..at]);
            self.pos = at;
        }
    }

    /// Skips the rest of a string whose opening quote was just read, checking it as serde_json
    /// checks a string it ignores.
    fn skip_string(&mut self) -> Result<()> {
        loop {
            let at = self.pos + self.special_at(self.pos)?;
            match self.bytes()[at] {
                b'"' => {
                    self.pos = at + 1;
                    return Ok(());
                }
                b'\\' => {
                    self.pos = at + 1;
                    match self.bytes().get(self.pos).copied().ok_or(GiveUp)? {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.pos += 1,
                        b'u' => {
                            self.pos += 1;
                            self.hex4()?;
                        }
                        _ => return Err(GiveUp),
                    }
                }
                _ => return Err(GiveUp),
            }
        }
    }

    /// The offset from `from` of the next quote, backslash or control character.
    fn special_at(&self, from: usize) -> Result<usize> {
        bulwark_inject::json::escape_at(&self.bytes()[from..]).ok_or(GiveUp)
    }

    /// Decodes the escape after a backslash into `out`, as serde_json does for a string it
    /// returns: a lone surrogate is an error there, so it is left to serde_json here.
    fn escape(&mut self, out: &mut String) -> Result<()> {
        let byte = self.bytes().get(self.pos).copied().ok_or(GiveUp)?;
        self.pos += 1;
        let c = match byte {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let unit = self.hex4()?;
                let code = match unit {
                    0xD800..=0xDBFF => {
                        self.literal("\\u")?;
                        let low = self.hex4()?;
                        if !(0xDC00..=0xDFFF).contains(&low) {
                            return Err(GiveUp);
                        }
                        0x10000 + ((u32::from(unit) - 0xD800) << 10) + (u32::from(low) - 0xDC00)
                    }
                    0xDC00..=0xDFFF => return Err(GiveUp),
                    unit => u32::from(unit),
                };
                char::from_u32(code).ok_or(GiveUp)?
            }
            _ => return Err(GiveUp),
        };
        out.push(c);
        Ok(())
    }

    fn hex4(&mut self) -> Result<u16> {
        let digits = self.text.get(self.pos..self.pos + 4).ok_or(GiveUp)?;
        if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(GiveUp);
        }
        self.pos += 4;
        u16::from_str_radix(digits, 16).map_err(|_| GiveUp)
    }

    /// The digits of a number, checked against JSON's grammar; `None` for a number with a
    /// fraction or an exponent (only skipped, never read, here).
    fn number(&mut self) -> Result<Option<Integer>> {
        self.whitespace();
        let negative = self.bytes().get(self.pos) == Some(&b'-');
        if negative {
            self.pos += 1;
        }
        let digits = self.pos;
        match self.bytes().get(self.pos) {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(GiveUp),
        }
        // serde_json refuses a leading zero before more digits.
        if self.bytes()[digits] == b'0'
            && self.bytes().get(self.pos).is_some_and(u8::is_ascii_digit)
        {
            return Err(GiveUp);
        }
        let integer_end = self.pos;
        let mut whole = true;
        if self.bytes().get(self.pos) == Some(&b'.') {
            self.pos += 1;
            self.some_digits()?;
            whole = false;
        }
        if let Some(b'e' | b'E') = self.bytes().get(self.pos) {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.bytes().get(self.pos) {
                self.pos += 1;
            }
            self.some_digits()?;
            whole = false;
        }
        if !whole {
            return Ok(None);
        }
        let text = &self.text[digits..integer_end];
        let magnitude: u64 = text.parse().map_err(|_| GiveUp)?;
        Ok(Some(if negative {
            // serde_json reads -0 as a float, and so does not take it for an integer.
            if magnitude == 0 {
                return Err(GiveUp);
            }
            Integer::Negative(0_i64.checked_sub_unsigned(magnitude).ok_or(GiveUp)?)
        } else {
            Integer::Positive(magnitude)
        }))
    }

    fn digits(&mut self) {
        while self.bytes().get(self.pos).is_some_and(u8::is_ascii_digit) {
            self.pos += 1;
        }
    }

    fn some_digits(&mut self) -> Result<()> {
        let start = self.pos;
        self.digits();
        if self.pos == start {
            return Err(GiveUp);
        }
        Ok(())
    }

    /// Skips any value, checking it as serde_json checks a value it ignores.
    fn skip(&mut self) -> Result<()> {
        match self.peek()? {
            b'"' => {
                self.pos += 1;
                self.skip_string()
            }
            b'{' => {
                self.pos += 1;
                self.enter()?;
                if self.peek()? == b'}' {
                    self.pos += 1;
                } else {
                    loop {
                        self.expect(b'"')?;
                        self.skip_string()?;
                        self.expect(b':')?;
                        self.skip()?;
                        match self.peek()? {
                            b',' => self.pos += 1,
                            b'}' => {
                                self.pos += 1;
                                break;
                            }
                            _ => return Err(GiveUp),
                        }
                    }
                }
                self.depth -= 1;
                Ok(())
            }
            b'[' => {
                self.pos += 1;
                self.enter()?;
                if self.peek()? == b']' {
                    self.pos += 1;
                } else {
                    loop {
                        self.skip()?;
                        match self.peek()? {
                            b',' => self.pos += 1,
                            b']' => {
                                self.pos += 1;
                                break;
                            }
                            _ => return Err(GiveUp),
                        }
                    }
                }
                self.depth -= 1;
                Ok(())
            }
            b't' => self.literal("true"),
            b'f' => self.literal("false"),
            b'n' => self.literal("null"),
            _ => self.number().map(drop),
        }
    }

    fn integer(&mut self) -> Result<Integer> {
        self.number()?.ok_or(GiveUp)
    }
}

impl<'de> Deserializer<'de> for &mut Reader<'de> {
    type Error = GiveUp;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.peek()? {
            b'"' => self.deserialize_str(visitor),
            b'{' => self.deserialize_map(visitor),
            b'[' => self.deserialize_seq(visitor),
            b't' | b'f' => self.deserialize_bool(visitor),
            b'n' => {
                self.literal("null")?;
                visitor.visit_unit()
            }
            _ => match self.integer()? {
                Integer::Negative(n) => visitor.visit_i64(n),
                Integer::Positive(n) => visitor.visit_u64(n),
            },
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.peek()? {
            b't' => {
                self.literal("true")?;
                visitor.visit_bool(true)
            }
            b'f' => {
                self.literal("false")?;
                visitor.visit_bool(false)
            }
            _ => Err(GiveUp),
        }
    }

    fn deserialize_i8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_i64(visitor)
    }

    fn deserialize_i16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_i64(visitor)
    }

    fn deserialize_i32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_i64(visitor)
    }

    fn deserialize_i64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        if !matches!(self.peek()?, b'-' | b'0'..=b'9') {
            return Err(GiveUp);
        }
        self.deserialize_any(visitor)
    }

    fn deserialize_u8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_i64(visitor)
    }

    fn deserialize_u16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_i64(visitor)
    }

    fn deserialize_u32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_i64(visitor)
    }

    fn deserialize_u64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_i64(visitor)
    }

    fn deserialize_f32<V: Visitor<'de>>(self, _: V) -> Result<V::Value> {
        Err(GiveUp)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, _: V) -> Result<V::Value> {
        Err(GiveUp)
    }

    fn deserialize_char<V: Visitor<'de>>(self, _: V) -> Result<V::Value> {
        Err(GiveUp)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.expect(b'"')?;
        match self.string()? {
            Cow::Borrowed(s) => visitor.visit_borrowed_str(s),
            Cow::Owned(s) => visitor.visit_string(s),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, _: V) -> Result<V::Value> {
        Err(GiveUp)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, _: V) -> Result<V::Value> {
        Err(GiveUp)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        if self.peek()? == b'n' {
            self.literal("null")?;
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        if self.peek()? != b'n' {
            return Err(GiveUp);
        }
        self.literal("null")?;
        visitor.visit_unit()
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.expect(b'[')?;
        self.enter()?;
        let value = visitor.visit_seq(Elements {
            reader: &mut *self,
            first: true,
        })?;
        self.expect(b']')?;
        self.depth -= 1;
        Ok(value)
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _: usize, visitor: V) -> Result<V::Value> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: usize,
        visitor: V,
    ) -> Result<V::Value> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.expect(b'{')?;
        self.enter()?;
        let value = visitor.visit_map(Members {
            reader: &mut *self,
            first: true,
        })?;
        self.expect(b'}')?;
        self.depth -= 1;
        Ok(value)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        self.deserialize_map(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        _: V,
    ) -> Result<V::Value> {
        Err(GiveUp)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.skip()?;
        visitor.visit_unit()
    }
}

/// The members of an object whose `{` has been read.
struct Members<'a, 'de> {
    reader: &'a mut Reader<'de>,
    first: bool,
}

impl<'de> MapAccess<'de> for Members<'_, 'de> {
    type Error = GiveUp;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>> {
        match self.reader.peek()? {
            b'}' => return Ok(None),
            b',' if !self.first => self.reader.pos += 1,
            _ if self.first => {}
            _ => return Err(GiveUp),
        }
        self.first = false;
        // Keys are strings; `{"a":1,}` ends here too.
        if self.reader.peek()? != b'"' {
            return Err(GiveUp);
        }
        seed.deserialize(&mut *self.reader).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value> {
        self.reader.expect(b':')?;
        seed.deserialize(&mut *self.reader)
    }
}

/// The elements of an array whose `[` has been read.
struct Elements<'a, 'de> {
    reader: &'a mut Reader<'de>,
    first: bool,
}

impl<'de> SeqAccess<'de> for Elements<'_, 'de> {
    type Error = GiveUp;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>> {
        match self.reader.peek()? {
            b']' => return Ok(None),
            b',' if !self.first => {
                self.reader.pos += 1;
                // `[1,]` is not JSON.
                if self.reader.peek()? == b']' {
                    return Err(GiveUp);
                }
            }
            _ if self.first => {}
            _ => return Err(GiveUp),
        }
        self.first = false;
        seed.deserialize(&mut *self.reader).map(Some)
    }
}

#[cfg(test)]
mod tests;
