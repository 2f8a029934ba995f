//! Template values as Go's `encoding/json` writes them, for Sprig's `toJson`, `toPrettyJson`
//! and `toRawJson`: serde_json does the writing, with a formatter that makes Go's choices
//! where they differ from serde_json's. Map keys come sorted, as Go sorts them; `<`, `>` and
//! `&` are escaped as `\u003c`, `\u003e` and `\u0026` unless `raw`; U+2028 and U+2029 always
//! are; numbers that are floats print as Go prints a `float64` (`5432`, `1e+21`, `1e-7`);
//! a NaN or an infinity is an error, as in Go.

use std::io;

use gotmpl::Value;
use serde::ser::{Error as _, Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::ser::{CompactFormatter, Formatter, PrettyFormatter};

/// `value` as Go's `json.Marshal` (`raw`: with HTML escaping off, as Sprig's `toRawJson`),
/// indented by two spaces when `pretty` (`json.MarshalIndent(v, "", "  ")`).
pub(super) fn encode(value: &Value, raw: bool, pretty: bool) -> Result<String, String> {
    let mut out = Vec::new();
    let result = if pretty {
        let formatter = Go {
            inner: PrettyFormatter::with_indent(b"  "),
            raw,
        };
        value_ser(value).serialize(&mut serde_json::Serializer::with_formatter(
            &mut out, formatter,
        ))
    } else {
        let formatter = Go {
            inner: CompactFormatter,
            raw,
        };
        value_ser(value).serialize(&mut serde_json::Serializer::with_formatter(
            &mut out, formatter,
        ))
    };
    result.map_err(|e| e.to_string())?;
    String::from_utf8(out).map_err(|e| e.to_string())
}

fn value_ser(value: &Value) -> Ser<'_> {
    Ser(value)
}

/// A template value as serde sees it.
struct Ser<'a>(&'a Value);

impl Serialize for Ser<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Nil => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Int(n) => s.serialize_i64(*n),
            Value::Uint(n) => s.serialize_u64(*n),
            Value::Float(f) if !f.is_finite() => {
                Err(S::Error::custom(format!("json: unsupported value: {f}")))
            }
            Value::Float(f) => s.serialize_f64(*f),
            Value::String(text) => s.serialize_str(text),
            Value::List(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items.iter() {
                    seq.serialize_element(&Ser(item))?;
                }
                seq.end()
            }
            Value::Map(map) => {
                let mut out = s.serialize_map(Some(map.len()))?;
                for (key, item) in map.iter() {
                    out.serialize_entry(&**key, &Ser(item))?;
                }
                out.end()
            }
            Value::Function(_) => Err(S::Error::custom("json: unsupported type: func")),
        }
    }
}

/// serde_json's formatter `F`, with Go's escaping and float format.
struct Go<F> {
    inner: F,
    raw: bool,
}

impl<F: Formatter> Formatter for Go<F> {
    fn write_f64<W: ?Sized + io::Write>(&mut self, writer: &mut W, value: f64) -> io::Result<()> {
        writer.write_all(float(value).as_bytes())
    }

    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut rest = fragment;
        while let Some(at) = rest.find(|c| self.escapes(c)) {
            writer.write_all(&rest.as_bytes()[..at])?;
            let c = rest[at..].chars().next().unwrap_or_default();
            write!(writer, "\\u{:04x}", u32::from(c))?;
            rest = &rest[at + c.len_utf8()..];
        }
        writer.write_all(rest.as_bytes())
    }

    // Everything else is the inner formatter's: the layout, and the escapes of control
    // characters, quotes and backslashes (Go 1.22 and later write `\b` and `\f` as serde_json
    // does; Go 1.19 wrote `\u0008` and `\u000c`).
    fn begin_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.inner.begin_array(w)
    }
    fn end_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.inner.end_array(w)
    }
    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.inner.begin_array_value(w, first)
    }
    fn end_array_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.inner.end_array_value(w)
    }
    fn begin_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.inner.begin_object(w)
    }
    fn end_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.inner.end_object(w)
    }
    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.inner.begin_object_key(w, first)
    }
    fn end_object_key<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.inner.end_object_key(w)
    }
    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.inner.begin_object_value(w)
    }
    fn end_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.inner.end_object_value(w)
    }
}

impl<F> Go<F> {
    /// Whether Go escapes `c` as `\uXXXX` where serde_json leaves it alone.
    fn escapes(&self, c: char) -> bool {
        matches!(c, '\u{2028}' | '\u{2029}') || (!self.raw && matches!(c, '<' | '>' | '&'))
    }
}

/// A `float64` as Go's `encoding/json` writes it: the shortest decimal that reads back the
/// same, without an exponent from 1e-6 to 1e21, and with one (`1e+21`, `1e-7`) outside.
fn float(f: f64) -> String {
    let abs = f.abs();
    if abs == 0.0 || (1e-6..1e21).contains(&abs) {
        // Rust's `Display` is the shortest round-trip decimal, never with an exponent.
        return format!("{f}");
    }
    // `{:e}` is the shortest round-trip mantissa: `1e21`, `1.5e-7`; Go signs the exponent.
    let e = format!("{f:e}");
    match e.split_once('e') {
        Some((mantissa, exp)) if !exp.starts_with('-') => format!("{mantissa}e+{exp}"),
        _ => e,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn floats_print_as_go_encodes_them() {
        for (f, go) in [
            (5432.0, "5432"),
            (0.25, "0.25"),
            (1767225600000.0, "1767225600000"),
            (1e21, "1e+21"),
            (1.5e21, "1.5e+21"),
            (1e-7, "1e-7"),
            (0.000001, "0.000001"),
            (-3.0, "-3"),
            (0.0, "0"),
        ] {
            assert_eq!(super::float(f), go, "{f}");
        }
    }
}
