//! The normaliser: a message with its volatile parts replaced by placeholders, so that the
//! same error with a different request id, address or duration gets the same fingerprint.
//!
//! **Version 1** ([`VERSION`], part of every fingerprint: a change here must bump it, which
//! starts new fingerprints rather than merging old ones wrongly). One scan, leftmost token
//! first; where two kinds start at the same byte, the earlier in this list wins:
//!
//! | kind | example | becomes |
//! |---|---|---|
//! | timestamp, with fraction and offset | `2024-01-02T03:04:05.123+02:00`, `03:04:05` | `<TS>` |
//! | UUID, any case | `3F2504E0-4F89-11D3-9A0C-0305E82C3301` | `<UUID>` |
//! | email address | `ops@example.com` | `<EMAIL>` |
//! | IPv6, bracketed with a port or bare | `[fe80::1]:8443`, `2001:db8::7` | `<IP>` |
//! | IPv4, with a port | `10.0.0.12:5432` | `<IP>` |
//! | generated pod name | `api-7d9f8b6c5-x2k4q` | `api-<POD>` |
//! | generated ReplicaSet name (the hash has a digit) | `api-7d9f8b6c5` | `api-<RS>` |
//! | Job or DaemonSet pod name (the suffix has a digit) | `fluent-bit-x2k4q` | `fluent-bit-<POD>` |
//! | duration | `35ms`, `1m30s`, `2.5s` | `<DUR>` |
//! | number, with a quantity's unit | `42`, `1.5`, `512Mi`, `10GB` | `<N>` |
//! | hex id with a digit and a letter, 7+ long, or `0x...` | `deadbeef12`, `0x1f` | `<HEX>` |
//! | double-quoted value; single-quoted without spaces | `"my-secret"`, `'x'` | `"<Q>"`, `'<Q>'` |
//!
//! A status code (three digits from 100 to 599 after `status`, `code`, `returned`, `HTTP` or
//! `HTTP/1.1`) is kept: it tells a 503 from a 429. A generated name's suffix needs a digit
//! where a plain word could have the same letters (`use-https`).
//!
//! Everything else is kept as it is, whitespace included, so that the message can be rebuilt
//! exactly from its normal form and the replaced values (an error keeps one normal form and
//! only the values per sample). Word boundaries are ASCII (`(?-u:\b)`), so the scan stays on
//! the lazy DFA for any input. The patterns are tried anchored, only where a token can start
//! (`next_start`, which must change with them: a property test holds it to the plain search).

use regex_automata::meta::{Cache, Regex};
use regex_automata::{Anchored, Input};

/// The normaliser's version, part of every fingerprint.
pub const VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Timestamp,
    Uuid,
    Email,
    Ip,
    Ipv6,
    Pod,
    ReplicaSet,
    ShortPod,
    Duration,
    Number,
    Hex,
    Quoted,
}

const B: &str = r"(?-u:\b)";
/// Kubernetes' `rand.SafeEncodeString` alphabet: generated name suffixes use only these.
const SAFE: &str = "[bcdfghjklmnpqrstvwxz2456789]";

fn patterns() -> Vec<(Kind, String)> {
    let hex4 = "[0-9a-fA-F]{1,4}";
    vec![
        (
            Kind::Timestamp,
            r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}(?::?\d{2})?)?"
                .to_owned(),
        ),
        (
            Kind::Timestamp,
            format!(r"{B}\d{{2}}:\d{{2}}:\d{{2}}(?:[.,]\d+)?{B}"),
        ),
        (
            Kind::Uuid,
            format!(
                "{B}[0-9a-fA-F]{{8}}-[0-9a-fA-F]{{4}}-[0-9a-fA-F]{{4}}-[0-9a-fA-F]{{4}}-[0-9a-fA-F]{{12}}{B}"
            ),
        ),
        (
            Kind::Email,
            r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}".to_owned(),
        ),
        (
            Kind::Ip,
            r"\[[0-9a-fA-F:.]*:[0-9a-fA-F:.]*(?:%[A-Za-z0-9_.-]+)?\](?::\d{1,5})?".to_owned(),
        ),
        (Kind::Ipv6, format!("{B}(?:{hex4}:){{7}}{hex4}{B}")),
        (
            Kind::Ipv6,
            format!("(?:{B}{hex4}(?::{hex4}){{0,6}})?::(?:{hex4}(?::{hex4}){{0,6}}{B})?"),
        ),
        (
            Kind::Ip,
            format!(r"{B}\d{{1,3}}(?:\.\d{{1,3}}){{3}}(?::\d{{1,5}})?{B}"),
        ),
        (
            Kind::Pod,
            format!("{B}[a-z0-9](?:[-a-z0-9]*[a-z0-9])?-{SAFE}{{6,10}}-{SAFE}{{5}}{B}"),
        ),
        (
            Kind::ReplicaSet,
            format!("{B}[a-z0-9](?:[-a-z0-9]*[a-z0-9])?-{SAFE}{{6,10}}{B}"),
        ),
        (
            Kind::ShortPod,
            format!("{B}[a-z0-9](?:[-a-z0-9]*[a-z0-9])?-{SAFE}{{5}}{B}"),
        ),
        (
            Kind::Duration,
            format!(
                r"{B}\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h)(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))*{B}"
            ),
        ),
        (
            Kind::Number,
            format!(r"{B}\d+(?:\.\d+)?(?:[KMGTPE]i?B?|[kK]B|B)?{B}"),
        ),
        (
            Kind::Hex,
            format!("{B}(?:0x[0-9a-fA-F]+|[0-9a-fA-F]{{7,}}){B}"),
        ),
        (
            Kind::Quoted,
            r#""(?:[^"\\]|\\.)*"|'(?:[^'\\\s]|\\.)*'"#.to_owned(),
        ),
    ]
}

/// The compiled normaliser; build once, use from any thread.
#[derive(Debug, Clone)]
pub struct Normalizer {
    re: Regex,
    kinds: Vec<Kind>,
}

impl Default for Normalizer {
    fn default() -> Self {
        Self::new()
    }
}

impl Normalizer {
    /// Compiles the version-1 patterns.
    pub fn new() -> Self {
        let (kinds, pats): (Vec<Kind>, Vec<String>) = patterns().into_iter().unzip();
        let re = Regex::new_many(&pats)
            .unwrap_or_else(|e| unreachable!("the normaliser's patterns are tested: {e}"));
        Self { re, kinds }
    }

    /// Writes the normal form of `message` into `out` (cleared first), with where each
    /// placeholder stands and what it replaced, so that the message can be rebuilt from the
    /// normal form ([`Normalized::values`], [`rebuild`]).
    ///
    /// The leftmost token is found by trying an anchored search at each position where a
    /// token can start ([`next_start`]), in order: the first that matches is the match an
    /// unanchored leftmost-first search would report, without its scan back for the start.
    pub fn normalize_into(&self, message: &str, out: &mut Normalized) {
        out.text.clear();
        out.tokens.clear();
        let cache = out.cache.get_or_insert_with(|| self.re.create_cache());
        let bytes = message.as_bytes();
        let has_at = memchr::memchr(b'@', bytes).is_some();
        let mut last = 0;
        let (mut from, mut searched) = (0, 0);
        while let Some(at) = next_start(bytes, from, searched, has_at) {
            let input = Input::new(message).range(at..).anchored(Anchored::Yes);
            let Some(m) = self.re.search_with(cache, &input) else {
                from = at + 1;
                continue;
            };
            // No pattern matches the empty string, so the next search starts past this one.
            (from, searched) = (m.end(), m.end());
            let text = &message[m.range()];
            let kind = self.kinds[m.pattern().as_usize()];
            let Some((kept, placeholder)) = self.replacement(kind, text, &message[..m.start()])
            else {
                continue;
            };
            out.text.push_str(&message[last..m.start() + kept.len()]);
            out.tokens.push(Token {
                at: out.text.len(),
                len: placeholder.len(),
                original: m.start() + kept.len()..m.end(),
            });
            out.text.push_str(placeholder);
            last = m.end();
        }
        out.text.push_str(&message[last..]);
    }

    /// The normal form of `message`.
    pub fn normalize(&self, message: &str) -> String {
        let mut out = Normalized::default();
        self.normalize_into(message, &mut out);
        out.text
    }

    /// What replaces `text`, as a kept prefix of `text` and a placeholder; `None` keeps the
    /// text as it is.
    fn replacement<'t>(
        &self,
        kind: Kind,
        text: &'t str,
        before: &str,
    ) -> Option<(&'t str, &'static str)> {
        let digit = || text.bytes().any(|b| b.is_ascii_digit());
        Some(match kind {
            Kind::Timestamp => ("", "<TS>"),
            Kind::Uuid => ("", "<UUID>"),
            Kind::Email => ("", "<EMAIL>"),
            Kind::Ip => ("", "<IP>"),
            Kind::Ipv6 if digit() && text != "::" => ("", "<IP>"),
            Kind::Pod => (strip_suffixes(text, 2), "-<POD>"),
            Kind::ReplicaSet if digit_in_last(text) => (strip_suffixes(text, 1), "-<RS>"),
            Kind::ShortPod if digit_in_last(text) => (strip_suffixes(text, 1), "-<POD>"),
            Kind::Duration => ("", "<DUR>"),
            Kind::Number => {
                if is_status(text, before) {
                    return None;
                }
                ("", "<N>")
            }
            Kind::Hex => {
                let letter = text.bytes().any(|b| b.is_ascii_alphabetic());
                if !(text.starts_with("0x") || digit() && letter) {
                    return None;
                }
                ("", "<HEX>")
            }
            Kind::Quoted if text.starts_with('"') => ("", "\"<Q>\""),
            Kind::Quoted => ("", "'<Q>'"),
            Kind::Ipv6 | Kind::ReplicaSet | Kind::ShortPod => return None,
        })
    }
}

/// An HTTP status: three digits from 100 to 599 right after a word that introduces one
/// (`status`, `code`, `returned`, `HTTP`, with `:` or `=` between), which tells a 503 from a
/// 429; any other number is a value.
fn is_status(text: &str, before: &str) -> bool {
    let b = text.as_bytes();
    if b.len() != 3 || !matches!(b[0], b'1'..=b'5') || !b.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let word = before
        .trim_end_matches([' ', ':', '='])
        .rsplit([' ', '"', '(', ',', ';'])
        .next()
        .unwrap_or_default()
        .as_bytes();
    let ends_with = |w: &str| {
        word.len() >= w.len() && word[word.len() - w.len()..].eq_ignore_ascii_case(w.as_bytes())
    };
    ["status", "code", "returned", "http"]
        .iter()
        .any(|w| ends_with(w))
        || word.len() >= 5 && word[..5].eq_ignore_ascii_case(b"http/")
}

/// Byte classes for [`next_start`].
const WORD: u8 = 1;
const HEX: u8 = 2;
const DIGIT: u8 = 4;
/// `[-a-z0-9]`: the characters of a generated name.
const NAME: u8 = 8;
const LOWER: u8 = 16;
/// `[A-Za-z0-9._%+-]`: the characters of an email's local part.
const LOCAL: u8 = 32;

static CLASS: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        let mut f = 0;
        if b.is_ascii_alphanumeric() || b == b'_' {
            f |= WORD;
        }
        if b.is_ascii_hexdigit() {
            f |= HEX;
        }
        if b.is_ascii_digit() {
            f |= DIGIT;
        }
        if b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' {
            f |= NAME;
        }
        if b.is_ascii_lowercase() {
            f |= LOWER;
        }
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'%' | b'+' | b'-') {
            f |= LOCAL;
        }
        table[i] = f;
        i += 1;
    }
    table
};

fn class(b: u8) -> u8 {
    CLASS[usize::from(b)]
}

/// The first position from `from` on where a token may start: every position where one
/// does is reported, and few others. `searched` is where the current search began (the end
/// of the last token), `has_at` whether the message holds an `@`.
///
/// Why this exists (measured with `cargo bench -p sentinel --bench detect`, one core): the
/// unanchored leftmost-first search of the 15 patterns cost 479 ns per message of the
/// benchmark's corpus (76 bytes, 1.6 tokens on average), most of it in finding where each
/// match starts; anchored searches at the starts this scan reports cost 371 ns, and the
/// pipeline went from 0.73 to 0.85 M lines/s. It must agree with the patterns above: each
/// case below names the patterns it stands for, and `tests::starts_agree_with_the_search`
/// compares the normal forms with those of the plain unanchored search on generated
/// messages built to hit the edges.
fn next_start(bytes: &[u8], from: usize, searched: usize, has_at: bool) -> Option<usize> {
    let len = bytes.len();
    let run = |mut i: usize, f: u8| {
        while i < len && class(bytes[i]) & f != 0 {
            i += 1;
        }
        i
    };
    let mut p = from;
    while p < len {
        let b = bytes[p];
        let c = class(b);
        // Email: the first character of the local part before an `@` (or where the search
        // began, inside one); the pattern matches from there or nowhere in that run.
        if has_at && c & LOCAL != 0 && (p == searched || class(bytes[p - 1]) & LOCAL == 0) {
            let end = run(p, LOCAL);
            if end < len && bytes[end] == b'@' {
                return Some(p);
            }
        }
        if c & WORD == 0 {
            match b {
                // Quoted values, a bracketed IPv6 address, a compressed one from `::`.
                b'"' | b'\'' | b'[' => return Some(p),
                b':' if p + 1 < len && bytes[p + 1] == b':' => return Some(p),
                // A character beyond ASCII may be a digit: `\d` takes any Unicode digit.
                0xC0.. => return Some(p),
                _ => {}
            }
            p += 1;
            continue;
        }
        // Every other pattern starts with `\b` and a word character, but the timestamp.
        let boundary = p == 0 || class(bytes[p - 1]) & WORD == 0;
        if c & DIGIT != 0 {
            // Timestamps, IPv4, durations, numbers, `0x`, and names, UUIDs, IPv6 and hex
            // starting with a digit; the full timestamp (`\d{4}-`) needs no boundary.
            if boundary || four_digits_then_dash(bytes, p) {
                return Some(p);
            }
        } else if boundary {
            // A UUID (8 hex digits), hex id (7 or more) or IPv6 group (1 to 4, then `:`).
            let hex = run(p, HEX);
            if hex - p >= 7 || hex - p <= 4 && hex < len && bytes[hex] == b':' {
                return Some(p);
            }
            if c & LOWER != 0 {
                // A generated name: `[-a-z0-9]` with a `-` in it.
                let name = run(hex, NAME);
                if bytes[hex..name].contains(&b'-') {
                    return Some(p);
                }
                // A word of lower-case letters, digits and hex: no token starts inside it (a
                // timestamp would need a `-`, which would have made it a name), unless a
                // character beyond ASCII follows, which may be a digit of a timestamp.
                p = if name < len && bytes[name] >= 0x80 {
                    p + 1
                } else {
                    name.max(p + 1)
                };
                continue;
            }
        }
        p += 1;
    }
    None
}

/// Whether the full timestamp's `\d{4}-` can start at `p`, an ASCII digit: three more digits
/// (any character beyond ASCII is taken for one, as `\d` is Unicode's), then `-`.
fn four_digits_then_dash(bytes: &[u8], p: usize) -> bool {
    let mut i = p + 1;
    for _ in 0..3 {
        match bytes.get(i) {
            Some(b) if b.is_ascii_digit() => i += 1,
            Some(&b) if b >= 0xC0 => {
                i += 1;
                while bytes.get(i).is_some_and(|b| b & 0xC0 == 0x80) {
                    i += 1;
                }
            }
            _ => return false,
        }
    }
    bytes.get(i) == Some(&b'-')
}

/// `text` without its last `n` `-segments`.
fn strip_suffixes(text: &str, n: usize) -> &str {
    let mut end = text.len();
    for _ in 0..n {
        end = text[..end].rfind('-').unwrap_or(0);
    }
    &text[..end]
}

fn digit_in_last(text: &str) -> bool {
    let last = text.rsplit('-').next().unwrap_or_default();
    last.bytes().any(|b| b.is_ascii_digit())
}

/// A normal form and where its placeholders stand.
#[derive(Debug, Clone, Default)]
pub struct Normalized {
    pub text: String,
    tokens: Vec<Token>,
    /// The regex's working memory, made at first use (its pool costs more per search).
    cache: Option<Cache>,
}

#[derive(Debug, Clone)]
struct Token {
    /// Where the placeholder starts in `text`, and its length.
    at: usize,
    len: usize,
    /// What it replaced in the message.
    original: std::ops::Range<usize>,
}

impl Normalized {
    /// The replaced values of `message` (the text this was made from), encoded compactly: per
    /// placeholder its offset in the normal form, its length and the value it stands for,
    /// each length as a LEB128 varint. With the normal form, [`rebuild`] gives the message
    /// back exactly; an error keeps its normal form once and only this per sample.
    pub fn values(&self, message: &str) -> Box<[u8]> {
        let mut out = Vec::with_capacity(self.tokens.len() * 8);
        let mut prev = 0;
        for t in &self.tokens {
            let value = &message.as_bytes()[t.original.clone()];
            varint(&mut out, t.at - prev);
            varint(&mut out, t.len);
            varint(&mut out, value.len());
            out.extend_from_slice(value);
            prev = t.at + t.len;
        }
        out.into_boxed_slice()
    }
}

fn varint(out: &mut Vec<u8>, mut n: usize) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn read_varint(bytes: &mut &[u8]) -> Option<usize> {
    let mut n = 0usize;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = bytes.split_first()?;
        *bytes = rest;
        n |= usize::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Some(n);
        }
    }
    None
}

/// The message that `normalized` and `values` (from [`Normalized::values`]) were made from;
/// `None` when they do not belong together.
pub fn rebuild(normalized: &str, values: &[u8]) -> Option<String> {
    let mut out = String::with_capacity(normalized.len() + values.len());
    let mut rest = values;
    let mut at = 0;
    while !rest.is_empty() {
        let gap = read_varint(&mut rest)?;
        let len = read_varint(&mut rest)?;
        let vlen = read_varint(&mut rest)?;
        let start = at + gap;
        out.push_str(normalized.get(at..start)?);
        let (value, tail) = (rest.get(..vlen)?, rest.get(vlen..)?);
        out.push_str(std::str::from_utf8(value).ok()?);
        rest = tail;
        at = start.checked_add(len)?;
        normalized.get(start..at)?;
    }
    out.push_str(normalized.get(at..)?);
    Some(out)
}

#[cfg(test)]
mod tests;
