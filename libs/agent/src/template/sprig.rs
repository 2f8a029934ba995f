//! The functions of upstream's templates: Sprig 3.2.3's (`sprig.TxtFuncMap()`) that secret
//! templates use, and the four the upstream injector adds (`base64enc`, `base64dec`,
//! `sha256sum`, `sha512sum`). Each behaves as its Go original, checked by the corpus in
//! `tests/templates/`, including the argument checks Go's reflection makes when a template
//! calls a Go function: a parameter typed `string` refuses a `float64` ("wrong type for value;
//! expected string; got float64") and a missing key ("invalid value; expected string"), a
//! parameter typed `interface{}` takes anything, and a missing key arrives as nil.
//!
//! Where Sprig's function panics (`first` of a string, `div` by zero, `repeat` with a negative
//! count), the template fails, as Go's does. Where Sprig hides a failure in the output, we
//! refuse: `b64dec` of invalid base64 (Sprig returns the error's text as the value) and
//! `toJson` of what JSON cannot hold (Sprig returns an empty string).
//!
//! Sprig's `slice` replaces the builtin of the same name, as it does in Go.

use std::collections::BTreeMap;
use std::num::IntErrorKind;
use std::sync::Arc;

use base64::Engine;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use gotmpl::{FuncMap, TemplateError, Value, ValueFunc};
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};
use unicode_properties::{GeneralCategoryGroup, UnicodeGeneralCategory};

use super::json;

type Result<T> = std::result::Result<T, TemplateError>;
type Func = fn(&[Value]) -> Result<Value>;

/// The most a function may make of one string (`repeat`, `indent`): far more than any secret
/// file, and small enough that a template cannot take the pod's memory.
const MAX_LEN: usize = 16 << 20;

/// Every function, by the name templates call it.
pub(super) fn funcs() -> FuncMap {
    let table: &[(&str, Func)] = &[
        // Strings.
        ("trim", |a| {
            let [s] = strings("trim", a)?;
            Ok(string(s.trim_matches(char::is_whitespace)))
        }),
        ("trimAll", |a| {
            let [cutset, s] = strings("trimAll", a)?;
            Ok(string(s.trim_matches(|c| cutset.contains(c))))
        }),
        ("trimPrefix", |a| {
            let [prefix, s] = strings("trimPrefix", a)?;
            Ok(string(s.strip_prefix(prefix).unwrap_or(s)))
        }),
        ("trimSuffix", |a| {
            let [suffix, s] = strings("trimSuffix", a)?;
            Ok(string(s.strip_suffix(suffix).unwrap_or(s)))
        }),
        ("upper", |a| {
            let [s] = strings("upper", a)?;
            Ok(string(&s.chars().map(upper).collect::<String>()))
        }),
        ("lower", |a| {
            let [s] = strings("lower", a)?;
            Ok(string(&s.chars().map(lower).collect::<String>()))
        }),
        ("replace", |a| {
            let [old, new, s] = strings("replace", a)?;
            Ok(string(&s.replace(old, new)))
        }),
        ("quote", |a| {
            let quoted: Vec<String> = a
                .iter()
                .filter(|v| !is_nil(v))
                .map(|v| quote(&strval(v)))
                .collect();
            Ok(string(&quoted.join(" ")))
        }),
        ("squote", |a| {
            let quoted: Vec<String> = a
                .iter()
                .filter(|v| !is_nil(v))
                .map(|v| format!("'{}'", strval(v)))
                .collect();
            Ok(string(&quoted.join(" ")))
        }),
        ("contains", |a| {
            let [needle, s] = strings("contains", a)?;
            Ok(Value::Bool(s.contains(needle)))
        }),
        ("hasPrefix", |a| {
            let [prefix, s] = strings("hasPrefix", a)?;
            Ok(Value::Bool(s.starts_with(prefix)))
        }),
        ("hasSuffix", |a| {
            let [suffix, s] = strings("hasSuffix", a)?;
            Ok(Value::Bool(s.ends_with(suffix)))
        }),
        ("repeat", |a| {
            let [count, s] = exactly("repeat", a)?;
            let (count, s) = (int(count)?, str(s)?);
            Ok(string(&s.repeat(length("repeat", count, s.len())?)))
        }),
        ("nospace", |a| {
            let [s] = strings("nospace", a)?;
            Ok(string(
                &s.chars().filter(|c| !c.is_whitespace()).collect::<String>(),
            ))
        }),
        ("indent", |a| {
            let [spaces, s] = exactly("indent", a)?;
            Ok(string(&indent(int(spaces)?, str(s)?)?))
        }),
        ("nindent", |a| {
            let [spaces, s] = exactly("nindent", a)?;
            Ok(string(&format!("\n{}", indent(int(spaces)?, str(s)?)?)))
        }),
        ("cat", |a| {
            let parts: Vec<String> = a
                .iter()
                .filter(|v| !is_nil(v))
                .map(ToString::to_string)
                .collect();
            Ok(string(&parts.join(" ")))
        }),
        ("splitList", |a| {
            let [sep, s] = strings("splitList", a)?;
            let parts: Vec<Value> = if sep.is_empty() {
                s.chars()
                    .map(|c| string(c.encode_utf8(&mut [0; 4])))
                    .collect()
            } else {
                s.split(sep).map(string).collect()
            };
            Ok(Value::List(parts.into()))
        }),
        ("join", |a| {
            let [sep, list] = exactly("join", a)?;
            Ok(string(&strslice(list).join(str(sep)?)))
        }),
        ("toString", |a| {
            let [v] = exactly("toString", a)?;
            Ok(string(&strval(v)))
        }),
        ("sortAlpha", |a| {
            let [list] = exactly("sortAlpha", a)?;
            let mut sorted = match list {
                Value::List(_) => strslice(list),
                other => vec![strval(other)],
            };
            sorted.sort();
            Ok(Value::List(sorted.iter().map(|s| string(s)).collect()))
        }),
        // Encodings and digests.
        ("b64enc", |a| {
            let [s] = strings("b64enc", a)?;
            Ok(string(&STANDARD.encode(s)))
        }),
        ("base64enc", |a| {
            let [s] = strings("base64enc", a)?;
            Ok(string(&STANDARD.encode(s)))
        }),
        ("b64dec", |a| {
            let [s] = strings("b64dec", a)?;
            base64_decode(s).map(|s| string(&s))
        }),
        ("base64dec", |a| {
            let [s] = strings("base64dec", a)?;
            base64_decode(s).map(|s| string(&s))
        }),
        ("sha1sum", |a| {
            let [s] = strings("sha1sum", a)?;
            Ok(string(&hex(&Sha1::digest(s))))
        }),
        ("sha256sum", |a| {
            let [s] = strings("sha256sum", a)?;
            Ok(string(&hex(&Sha256::digest(s))))
        }),
        ("sha512sum", |a| {
            let [s] = strings("sha512sum", a)?;
            Ok(string(&hex(&Sha512::digest(s))))
        }),
        // Defaults and flow.
        ("default", |a| {
            let (fallback, given) = a.split_first().ok_or_else(|| at_least("default", 1, 0))?;
            Ok(match given.first() {
                Some(value) if !empty(value) => value.clone(),
                _ => fallback.clone(),
            })
        }),
        ("empty", |a| {
            let [v] = exactly("empty", a)?;
            Ok(Value::Bool(empty(v)))
        }),
        ("coalesce", |a| {
            Ok(a.iter().find(|v| !empty(v)).cloned().unwrap_or(Value::Nil))
        }),
        ("ternary", |a| {
            let [yes, no, condition] = exactly("ternary", a)?;
            Ok(if boolean(condition)? {
                yes.clone()
            } else {
                no.clone()
            })
        }),
        ("fail", |a| {
            let [message] = strings("fail", a)?;
            Err(TemplateError::Exec(message.to_owned()))
        }),
        // JSON.
        ("toJson", |a| {
            let [v] = exactly("toJson", a)?;
            json::encode(v, false, false)
                .map(|s| string(&s))
                .map_err(TemplateError::Exec)
        }),
        ("toPrettyJson", |a| {
            let [v] = exactly("toPrettyJson", a)?;
            json::encode(v, false, true)
                .map(|s| string(&s))
                .map_err(TemplateError::Exec)
        }),
        ("toRawJson", |a| {
            let [v] = exactly("toRawJson", a)?;
            json::encode(v, true, false)
                .map(|s| string(&s))
                .map_err(TemplateError::Exec)
        }),
        // Lists and dictionaries.
        ("list", |a| Ok(Value::List(a.into()))),
        ("dict", |a| {
            let mut dict = BTreeMap::new();
            for pair in a.chunks(2) {
                let value = pair.get(1).cloned().unwrap_or_else(|| string(""));
                dict.insert(Arc::from(strval(&pair[0])), value);
            }
            Ok(Value::Map(Arc::new(dict)))
        }),
        ("get", |a| {
            let [d, key] = exactly("get", a)?;
            Ok(map(d)?
                .get(str(key)?)
                .cloned()
                .unwrap_or_else(|| string("")))
        }),
        ("hasKey", |a| {
            let [d, key] = exactly("hasKey", a)?;
            Ok(Value::Bool(map(d)?.contains_key(str(key)?)))
        }),
        ("keys", |a| {
            let mut keys = Vec::new();
            for d in a {
                keys.extend(map(d)?.keys().map(|k| Value::String(k.clone())));
            }
            Ok(Value::List(keys.into()))
        }),
        ("first", |a| {
            let [list] = exactly("first", a)?;
            Ok(items("first", list)?.first().cloned().unwrap_or(Value::Nil))
        }),
        ("last", |a| {
            let [list] = exactly("last", a)?;
            Ok(items("last", list)?.last().cloned().unwrap_or(Value::Nil))
        }),
        ("has", |a| {
            let [needle, haystack] = exactly("has", a)?;
            if is_nil(haystack) {
                return Ok(Value::Bool(false));
            }
            Ok(Value::Bool(items("has", haystack)?.contains(needle)))
        }),
        ("slice", |a| {
            let (list, bounds) = a.split_first().ok_or_else(|| at_least("slice", 1, 0))?;
            let Value::List(list) = list else {
                return Err(exec(format!(
                    "list should be type of slice or array but {}",
                    kind(list)
                )));
            };
            if list.is_empty() {
                return Ok(Value::Nil);
            }
            let start = bounds.first().map_or(0, to_int64);
            let end = bounds.get(1).map_or(list.len() as i64, to_int64);
            let range = usize::try_from(start)
                .ok()
                .zip(usize::try_from(end).ok())
                .filter(|(start, end)| start <= end && *end <= list.len())
                .ok_or_else(|| {
                    exec(format!(
                        "slice bounds out of range [{start}:{end}] with length {}",
                        list.len()
                    ))
                })?;
            Ok(Value::List(list[range.0..range.1].into()))
        }),
        ("kindIs", |a| {
            let [target, v] = exactly("kindIs", a)?;
            Ok(Value::Bool(str(target)? == kind(v)))
        }),
        // Arithmetic on int64, as Sprig's: every operand goes through `toInt64`.
        ("add", |a| {
            Ok(Value::Int(
                a.iter().map(to_int64).fold(0, i64::wrapping_add),
            ))
        }),
        ("add1", |a| {
            let [v] = exactly("add1", a)?;
            Ok(Value::Int(to_int64(v).wrapping_add(1)))
        }),
        ("sub", |a| {
            let [x, y] = exactly("sub", a)?;
            Ok(Value::Int(to_int64(x).wrapping_sub(to_int64(y))))
        }),
        ("mul", |a| {
            let (first, rest) = a.split_first().ok_or_else(|| at_least("mul", 1, 0))?;
            Ok(Value::Int(
                rest.iter()
                    .map(to_int64)
                    .fold(to_int64(first), i64::wrapping_mul),
            ))
        }),
        ("div", |a| {
            let [x, y] = exactly("div", a)?;
            to_int64(x)
                .checked_div(to_int64(y))
                .map(Value::Int)
                .ok_or_else(divide_by_zero)
        }),
        ("mod", |a| {
            let [x, y] = exactly("mod", a)?;
            to_int64(x)
                .checked_rem(to_int64(y))
                .map(Value::Int)
                .ok_or_else(divide_by_zero)
        }),
        ("max", |a| {
            let (first, rest) = a.split_first().ok_or_else(|| at_least("max", 1, 0))?;
            Ok(Value::Int(
                rest.iter().map(to_int64).fold(to_int64(first), i64::max),
            ))
        }),
        ("min", |a| {
            let (first, rest) = a.split_first().ok_or_else(|| at_least("min", 1, 0))?;
            Ok(Value::Int(
                rest.iter().map(to_int64).fold(to_int64(first), i64::min),
            ))
        }),
        ("atoi", |a| {
            let [s] = strings("atoi", a)?;
            Ok(Value::Int(atoi(s)))
        }),
    ];
    table
        .iter()
        .map(|&(name, f)| (name.to_owned(), Arc::new(f) as ValueFunc))
        .collect()
}

fn is_nil(value: &Value) -> bool {
    matches!(value, Value::Nil)
}

fn string(s: &str) -> Value {
    Value::String(Arc::from(s))
}

fn exec(message: String) -> TemplateError {
    TemplateError::Exec(message)
}

/// The arguments of a function that takes exactly `N`.
fn exactly<'a, const N: usize>(name: &str, args: &'a [Value]) -> Result<&'a [Value; N]> {
    args.try_into().map_err(|_| {
        exec(format!(
            "wrong number of args for {name}: want {N} got {}",
            args.len()
        ))
    })
}

fn at_least(name: &str, want: usize, got: usize) -> TemplateError {
    exec(format!(
        "wrong number of args for {name}: want at least {want} got {got}"
    ))
}

/// The arguments of a function whose `N` parameters are all strings.
fn strings<'a, const N: usize>(name: &str, args: &'a [Value]) -> Result<[&'a str; N]> {
    let args = exactly::<N>(name, args)?;
    let mut out = [""; N];
    for (slot, arg) in out.iter_mut().zip(args) {
        *slot = str(arg)?;
    }
    Ok(out)
}

/// Go's type of a value as `%T` prints it, for messages.
fn go_type(value: &Value) -> &'static str {
    match value {
        Value::Nil => "<nil>",
        Value::Bool(_) => "bool",
        Value::Int(_) => "int",
        Value::Uint(_) => "uint64",
        Value::Float(_) => "float64",
        Value::String(_) => "string",
        Value::List(_) => "[]interface {}",
        Value::Map(_) => "map[string]interface {}",
        _ => "func",
    }
}

/// Go's `reflect.Kind` of a value, as Sprig's `kindIs` names it.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Nil => "invalid",
        Value::List(_) => "slice",
        Value::Map(_) => "map",
        other => go_type(other),
    }
}

/// The error Go's reflection makes when `value` is passed to a parameter of type `expected`.
fn wrong_type(value: &Value, expected: &str) -> TemplateError {
    match value {
        Value::Nil => exec(format!("invalid value; expected {expected}")),
        other => exec(format!(
            "wrong type for value; expected {expected}; got {}",
            go_type(other)
        )),
    }
}

fn str(value: &Value) -> Result<&str> {
    match value {
        Value::String(s) => Ok(s),
        other => Err(wrong_type(other, "string")),
    }
}

/// An `int` parameter: only an integer literal (or an integer a function made) fits; a number
/// from the data is a `float64`, which Go refuses.
fn int(value: &Value) -> Result<i64> {
    match value {
        Value::Int(n) => Ok(*n),
        other => Err(wrong_type(other, "int")),
    }
}

fn boolean(value: &Value) -> Result<bool> {
    match value {
        Value::Bool(b) => Ok(*b),
        other => Err(wrong_type(other, "bool")),
    }
}

fn map(value: &Value) -> Result<&BTreeMap<Arc<str>, Value>> {
    match value {
        Value::Map(m) => Ok(m),
        other => Err(wrong_type(other, "map[string]interface {}")),
    }
}

/// The elements of a list, for Sprig's list functions, which panic on anything else.
fn items<'a>(name: &str, value: &'a Value) -> Result<&'a [Value]> {
    match value {
        Value::List(items) => Ok(items),
        Value::Nil => Err(exec(format!("{name} of nil"))),
        other => Err(exec(format!("Cannot find {name} on type {}", kind(other)))),
    }
}

/// Sprig's `strval`: a string as it is, anything else as `%v` prints it.
fn strval(value: &Value) -> String {
    match value {
        Value::String(s) => s.to_string(),
        other => other.to_string(),
    }
}

/// Sprig's `strslice`: the elements of a list as strings (nil elements left out), nothing for
/// nil, and any other value as a list of itself.
fn strslice(value: &Value) -> Vec<String> {
    match value {
        Value::List(items) => items.iter().filter(|v| !is_nil(v)).map(strval).collect(),
        Value::Nil => Vec::new(),
        other => vec![strval(other)],
    }
}

/// Sprig's `empty`: nil, false, zero, and an empty string, list or map.
fn empty(value: &Value) -> bool {
    match value {
        Value::Nil => true,
        Value::Bool(b) => !b,
        Value::Int(n) => *n == 0,
        Value::Uint(n) => *n == 0,
        Value::Float(f) => *f == 0.0,
        Value::String(s) => s.is_empty(),
        Value::List(items) => items.is_empty(),
        Value::Map(map) => map.is_empty(),
        _ => false,
    }
}

/// `cast.ToInt64`, which Sprig's arithmetic applies to every operand: numbers truncated,
/// booleans as 1 and 0, strings parsed as Go integer literals (`42`, `0x2a`, `-7`; a trailing
/// `.0` dropped), and 0 for anything else, an unparsable string included.
fn to_int64(value: &Value) -> i64 {
    match value {
        Value::Int(n) => *n,
        Value::Uint(n) => *n as i64,
        // Go's conversion of a float64 out of range is unspecified; Rust's saturates.
        Value::Float(f) => *f as i64,
        Value::Bool(b) => i64::from(*b),
        Value::String(s) => go_int(trim_zero_decimal(s)).unwrap_or(0),
        _ => 0,
    }
}

/// cast's `trimZeroDecimal`: `"42.00"` is `"42"`; anything else is left alone.
fn trim_zero_decimal(s: &str) -> &str {
    match s.split_once('.') {
        Some((whole, zeros)) if !zeros.is_empty() && zeros.bytes().all(|b| b == b'0') => whole,
        _ => s,
    }
}

/// `strconv.ParseInt(s, 0, 64)`: an optional sign, then a decimal, `0x`, `0o`, `0b` or
/// leading-`0` octal integer, with single `_`s between digits (the prefix counts as one) only
/// when there is a prefix.
fn go_int(s: &str) -> Option<i64> {
    let (negative, digits) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = digits.to_ascii_lowercase();
    let (radix, body, prefixed) = if let Some(rest) = lower.strip_prefix("0x") {
        (16, rest, true)
    } else if let Some(rest) = lower.strip_prefix("0o") {
        (8, rest, true)
    } else if let Some(rest) = lower.strip_prefix("0b") {
        (2, rest, true)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..], true)
    } else {
        (10, lower.as_str(), false)
    };
    if body.is_empty()
        || (!prefixed && body.contains('_'))
        || body.ends_with('_')
        || body.contains("__")
    {
        return None;
    }
    let magnitude = u64::from_str_radix(&body.replace('_', ""), radix).ok()?;
    if negative {
        0i64.checked_sub_unsigned(magnitude)
    } else {
        i64::try_from(magnitude).ok()
    }
}

/// `strconv.Atoi`, whose error Sprig drops: 0 for what is not a decimal integer, and the
/// nearest bound for one out of range.
fn atoi(s: &str) -> i64 {
    match s.parse::<i64>() {
        Ok(n) => n,
        Err(e) => match e.kind() {
            IntErrorKind::PosOverflow => i64::MAX,
            IntErrorKind::NegOverflow => i64::MIN,
            _ => 0,
        },
    }
}

fn divide_by_zero() -> TemplateError {
    exec("runtime error: integer divide by zero".to_owned())
}

/// `count` copies of `unit` bytes, refused when negative (Go panics) or too large to hold.
fn length(name: &str, count: i64, unit: usize) -> Result<usize> {
    let count =
        usize::try_from(count).map_err(|_| exec(format!("{name}: negative count {count}")))?;
    match count.checked_mul(unit) {
        Some(total) if total <= MAX_LEN => Ok(count),
        _ => Err(exec(format!(
            "{name}: the result would exceed {} MiB",
            MAX_LEN >> 20
        ))),
    }
}

/// Sprig's `indent`: `spaces` spaces before the text and after each of its newlines.
fn indent(spaces: i64, s: &str) -> Result<String> {
    let pad = " ".repeat(length("indent", spaces, 1)?);
    let lines = s.matches('\n').count() + 1;
    length(
        "indent",
        i64::try_from(lines).unwrap_or(i64::MAX),
        pad.len() + 1,
    )?;
    Ok(format!("{pad}{}", s.replace('\n', &format!("\n{pad}"))))
}

/// `base64.StdEncoding.DecodeString`: padding required, non-zero trailing bits allowed, and
/// `\r` and `\n` anywhere ignored (so PEM-style wrapped base64 decodes), into UTF-8 text.
fn base64_decode(s: &str) -> Result<String> {
    const GO_STD: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new()
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(DecodePaddingMode::RequireCanonical),
    );
    let unwrapped: String = s.chars().filter(|c| !matches!(c, '\r' | '\n')).collect();
    // Go's message, which names where and never what: the input is a secret.
    let bytes = GO_STD.decode(&unwrapped).map_err(|e| {
        let at = match e {
            base64::DecodeError::InvalidByte(at, _)
            | base64::DecodeError::InvalidLastSymbol(at, _) => at,
            base64::DecodeError::InvalidLength(_) | base64::DecodeError::InvalidPadding => {
                unwrapped.len()
            }
        };
        exec(format!(
            "base64 decode failed: illegal base64 data at input byte {at}"
        ))
    })?;
    String::from_utf8(bytes).map_err(|e| {
        exec(format!(
            "base64 decode: the decoded value is not UTF-8 text (invalid byte at {}); a file template can only write text",
            e.utf8_error().valid_up_to()
        ))
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `unicode.ToUpper` of one character: its simple mapping, which leaves `ß` as it is where
/// Rust's full mapping makes `SS`.
fn upper(c: char) -> char {
    let mut mapped = c.to_uppercase();
    match (mapped.next(), mapped.next()) {
        (Some(one), None) => one,
        _ => c,
    }
}

/// `unicode.ToLower` of one character: its simple mapping (`İ` becomes `i`; Rust's full
/// mapping adds a combining dot, the only character whose full lower case is longer).
fn lower(c: char) -> char {
    c.to_lowercase().next().unwrap_or(c)
}

/// `strconv.Quote`: in double quotes, with `\"` and `\\`, the C escapes, and `\x`, `\u` or
/// `\U` for every character Go does not count as printable (letters, marks, numbers,
/// punctuation, symbols and the ASCII space are).
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            ' ' => out.push(' '),
            c if printable(c) => out.push(c),
            c if u32::from(c) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", u32::from(c)))
            }
            c if u32::from(c) < 0x10000 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push_str(&format!("\\U{:08x}", u32::from(c))),
        }
    }
    out.push('"');
    out
}

fn printable(c: char) -> bool {
    matches!(
        c.general_category_group(),
        GeneralCategoryGroup::Letter
            | GeneralCategoryGroup::Mark
            | GeneralCategoryGroup::Number
            | GeneralCategoryGroup::Punctuation
            | GeneralCategoryGroup::Symbol
    )
}

#[cfg(test)]
mod tests;
