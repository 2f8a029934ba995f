//! The message of a log line: what the application said, without the timestamp, level and
//! other fields around it. Upstream finds JSON fields with a regex that stops at the first
//! escaped quote; here JSON goes through serde_json and quoted logfmt values through the same
//! unescaping, so `"msg":"say \"hi\""` gives `say "hi"`.
//!
//! In order, the first that applies:
//! 1. A JSON object: `msg` or `message`, then `error` or `err` after `: ` (zap, logrus, slog,
//!    bunyan and Pino all log this way); a non-string value is taken as its JSON text. With
//!    none of these fields, the whole line.
//! 2. klog (`E1205 06:28:43.123456   12345 file.go:123] ...`): the header goes; structured
//!    klog (`"Reconciler error" err="..."`) is read like logfmt's `msg` and `err`.
//! 3. logfmt with a `msg` or `message` key, and `err` or `error` as in JSON.
//! 4. Text: a leading timestamp, level and thread tag (`2024-01-02T03:04:05Z ERROR [main]`,
//!    `[error]`) go.
//!
//! The result is cut to [`MAX_MESSAGE`] bytes on a character boundary.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

/// Longest message kept, in bytes (upstream's 500).
pub const MAX_MESSAGE: usize = 500;

/// A line's message as it was read: one part, or a message and an error (`msg` and `err`)
/// that the message joins with `: `. Rules are matched against the parts
/// ([`Message::parts`]), as upstream matches them against its `msg`; the joined text is what
/// is normalised, fingerprinted and shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message<'a> {
    first: Cow<'a, str>,
    second: Option<Cow<'a, str>>,
}

impl<'a> Message<'a> {
    fn one(text: Cow<'a, str>) -> Self {
        Self {
            first: text,
            second: None,
        }
    }

    /// The parts, each borrowed from the line or unescaped.
    pub fn parts(&self) -> Parts<'_> {
        match &self.second {
            Some(second) => Parts([&self.first, second], 2),
            None => Parts([&self.first, ""], 1),
        }
    }

    /// The message: the parts joined with `: ` and cut to [`MAX_MESSAGE`] bytes on a
    /// character boundary. Borrowed from the line when it is one part the line holds as it
    /// is; otherwise written into `buf` (cleared first), so that no line allocates.
    pub fn text<'b>(&self, buf: &'b mut String) -> &'b str
    where
        'a: 'b,
    {
        if let (Cow::Borrowed(s), None) = (&self.first, &self.second) {
            return &s[..cut_at(s, MAX_MESSAGE)];
        }
        // Only what is kept is copied, so the buffer never outgrows the cut.
        buf.clear();
        let second = self.second.as_deref();
        let pieces = [Some(&*self.first), second.map(|_| ": "), second];
        for piece in pieces.into_iter().flatten() {
            let room = MAX_MESSAGE - buf.len();
            buf.push_str(&piece[..cut_at(piece, room)]);
            if piece.len() > room {
                break;
            }
        }
        buf
    }

    /// The message as [`Message::text`] gives it, owned only when it must be.
    pub fn into_text(self) -> Cow<'a, str> {
        match (self.first, self.second) {
            (Cow::Borrowed(s), None) => Cow::Borrowed(&s[..cut_at(s, MAX_MESSAGE)]),
            (first, second) => {
                let mut buf = String::new();
                Self { first, second }.text(&mut buf);
                Cow::Owned(buf)
            }
        }
    }
}

/// A message's one or two parts, as a slice.
#[derive(Debug, Clone, Copy)]
pub struct Parts<'m>([&'m str; 2], usize);

impl<'m> std::ops::Deref for Parts<'m> {
    type Target = [&'m str];

    fn deref(&self) -> &Self::Target {
        &self.0[..self.1]
    }
}

/// The message of `line` (see [`read`]).
pub fn message(line: &str) -> Cow<'_, str> {
    read(line).into_text()
}

/// The message of `line`, as its parts.
pub fn read(line: &str) -> Message<'_> {
    let trimmed = line.trim();
    let found = if trimmed.starts_with('{') {
        json(trimmed)
    } else {
        None
    };
    found.unwrap_or_else(|| {
        let rest = strip_klog_header(trimmed);
        logfmt(rest).unwrap_or_else(|| Message::one(Cow::Borrowed(strip_text_header(rest))))
    })
}

/// Where `text` cut to at most `max` bytes ends, on a character boundary.
fn cut_at(text: &str, max: usize) -> usize {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    end
}

#[derive(Deserialize)]
struct JsonFields<'a> {
    #[serde(borrow, default)]
    msg: Option<&'a RawValue>,
    #[serde(borrow, default)]
    message: Option<&'a RawValue>,
    #[serde(borrow, default)]
    error: Option<&'a RawValue>,
    #[serde(borrow, default)]
    err: Option<&'a RawValue>,
}

fn json(line: &str) -> Option<Message<'_>> {
    let fields: JsonFields<'_> = serde_json::from_str(line).ok()?;
    let msg = text(fields.msg).or_else(|| text(fields.message));
    let err = text(fields.error).or_else(|| text(fields.err));
    Some(join(msg, err).unwrap_or(Message::one(Cow::Borrowed(line))))
}

/// A JSON field's text: a string unescaped, `null` as none, anything else as its JSON.
fn text(value: Option<&RawValue>) -> Option<Cow<'_, str>> {
    let raw = value?.get();
    if raw.starts_with('"') {
        unquote(raw)
    } else if raw == "null" {
        None
    } else {
        Some(Cow::Borrowed(raw))
    }
    .filter(|s| !s.is_empty())
}

fn join<'a>(msg: Option<Cow<'a, str>>, err: Option<Cow<'a, str>>) -> Option<Message<'a>> {
    match (msg, err) {
        (Some(first), second) => Some(Message { first, second }),
        (None, err) => err.map(Message::one),
    }
}

/// klog's header: `Lmmdd hh:mm:ss.uuuuuu threadid file:line] `.
fn strip_klog_header(line: &str) -> &str {
    let b = line.as_bytes();
    let is_klog = b.len() > 22
        && matches!(b[0], b'I' | b'W' | b'E' | b'F')
        && b[1..5].iter().all(u8::is_ascii_digit)
        && b[5] == b' '
        && b[8] == b':'
        && b[11] == b':';
    if !is_klog {
        return line;
    }
    match line.find("] ") {
        Some(end) => &line[end + 2..],
        None => line,
    }
}

/// A `msg`/`message` (and `err`/`error`) from logfmt, or from structured klog, whose message
/// is a leading quoted string.
fn logfmt(text: &str) -> Option<Message<'_>> {
    let mut msg = None;
    let mut err = None;
    let mut rest = text;
    if text.starts_with('"') {
        let (value, after) = quoted(text)?;
        msg = Some(value);
        rest = after;
    }
    for (key, value) in Pairs(rest) {
        match key {
            "msg" | "message" if msg.is_none() => msg = Some(value),
            "err" | "error" if err.is_none() => err = Some(value),
            _ => {}
        }
    }
    msg.as_ref()?;
    join(msg.filter(|m| !m.is_empty()), err.filter(|e| !e.is_empty()))
}

/// logfmt's `key=value key="quoted value"` pairs; anything else ends the scan.
struct Pairs<'a>(&'a str);

impl<'a> Iterator for Pairs<'a> {
    type Item = (&'a str, Cow<'a, str>);

    fn next(&mut self) -> Option<Self::Item> {
        let s = self.0.trim_start();
        let eq = s.find(|c: char| c == '=' || c.is_whitespace())?;
        if s.as_bytes()[eq] != b'=' || eq == 0 {
            return None;
        }
        let key = &s[..eq];
        let after = &s[eq + 1..];
        if after.starts_with('"') {
            let (value, rest) = quoted(after)?;
            self.0 = rest;
            Some((key, value))
        } else {
            let end = after.find(char::is_whitespace).unwrap_or(after.len());
            self.0 = &after[end..];
            Some((key, Cow::Borrowed(&after[..end])))
        }
    }
}

/// A double-quoted string at the start of `s` (Go's and logfmt's escapes, which JSON's cover
/// for everything these loggers write), and what follows it.
fn quoted(s: &str) -> Option<(Cow<'_, str>, &str)> {
    let b = s.as_bytes();
    let mut i = 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => {
                let literal = &s[..=i];
                let value = unquote(literal).unwrap_or(Cow::Borrowed(&s[1..i]));
                return Some((value, &s[i + 1..]));
            }
            _ => i += 1,
        }
    }
    None
}

/// A string literal's value (`literal` starts and ends with `"`): the text between the quotes
/// when it has no escapes, which needs no copy; otherwise unescaped as JSON.
fn unquote(literal: &str) -> Option<Cow<'_, str>> {
    let inner = literal.get(1..literal.len().checked_sub(1)?)?;
    if memchr::memchr(b'\\', inner.as_bytes()).is_none() {
        return Some(Cow::Borrowed(inner));
    }
    serde_json::from_str::<String>(literal).ok().map(Cow::Owned)
}

/// A leading timestamp (`2024-01-02T03:04:05.123Z`, `2024/01/02 03:04:05`), level word (not
/// `panic:`, which is Go's own wording of the error) and a `[thread]` tag after the level.
fn strip_text_header(line: &str) -> &str {
    let mut rest = line;
    let b = rest.as_bytes();
    let dated = b.len() >= 19
        && b[..4].iter().all(u8::is_ascii_digit)
        && matches!(b[4], b'-' | b'/')
        && matches!(b[10], b'T' | b' ')
        && b[13] == b':';
    if dated {
        // `2024-01-02T03:04:05Z` is one word; in `2024-01-02 03:04:05` the time is the next.
        let from = if b[10] == b' ' { 11 } else { 0 };
        let end = rest[from..].find(' ').map_or(rest.len(), |e| from + e);
        rest = rest[end..].trim_start();
    }
    let word_end = rest.find(char::is_whitespace).unwrap_or(rest.len());
    let word = rest[..word_end].trim_matches(|c| matches!(c, '[' | ']' | ':'));
    let is_level = [
        "TRACE", "DEBUG", "INFO", "WARN", "WARNING", "ERROR", "ERR", "FATAL", "CRITICAL", "CRIT",
        "SEVERE", "ALERT", "EMERG", "NOTICE",
    ]
    .iter()
    .any(|l| word.eq_ignore_ascii_case(l));
    if is_level && word_end < rest.len() {
        rest = rest[word_end..].trim_start();
        // A thread or logger tag after the level, as logback and log4j write: `[main]`.
        if rest.starts_with('[')
            && let Some(end) = rest.find(']')
            && !rest[..end].contains(' ')
            && end + 1 < rest.len()
        {
            rest = rest[end + 1..].trim_start();
        }
    }
    if rest.is_empty() { line } else { rest }
}

#[cfg(test)]
mod tests;
