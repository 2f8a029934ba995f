//! The block structure of a template and the escapes of its string literals, checked before
//! `gotmpl` parses it, because gotmpl 0.6.1 accepts what Go refuses and then renders part of
//! the template without a word: `x{{ end }}y` renders `x` (everything after a stray `end` is
//! dropped), `{{ if .a }}x` with no `end` renders as if it were closed, a second `{{ else }}`
//! is ignored, `{{ define }}` inside a block is taken, and `"a\q"` or `"a\'"` are read as
//! strings. Each is a corpus case (`parse/*`, `if/no-end`); remove this check when gotmpl
//! refuses them itself (the corpus test says so by passing without it).
//!
//! This is not a second parser: it reads only where actions start and end (skipping string,
//! raw-string and character literals and comments), the first one or two words of each
//! action, and the escapes inside double-quoted strings. Everything else, and every template
//! this check lets through, is gotmpl's to parse and refuse. Messages are Go's.

use super::NAME;

/// A block a template has opened and not yet ended.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Block {
    If,
    Range,
    With,
    /// `define` or `block`: a named template's body, which takes no `else`.
    Named,
}

struct Open {
    block: Block,
    /// Whether its plain `{{ else }}` has been seen, after which only `end` may come.
    after_else: bool,
}

/// Refuses `text` as Go's parser would when its blocks do not nest or a string literal has an
/// escape Go does not know; says nothing about anything else.
pub(super) fn check(text: &str) -> Result<(), String> {
    let fail = |at: usize, message: &str| {
        let line = 1 + text[..at].matches('\n').count();
        Err(format!("template: {NAME}:{line}: {message}"))
    };
    let mut open: Vec<Open> = Vec::new();
    let mut pos = 0;
    while let Some(found) = text[pos..].find("{{") {
        let start = pos + found;
        let mut at = start + 2;
        // `{{- ` trims; `{{-3}}` is a number.
        if text[at..].starts_with('-')
            && text[at + 1..].starts_with(|c: char| c.is_ascii_whitespace())
        {
            at += 1;
        }
        at += blank(&text[at..]);
        if text[at..].starts_with("/*") {
            // A comment is a whole action; an unclosed one is gotmpl's to refuse.
            let Some(close) = text[at..].find("*/") else {
                return Ok(());
            };
            pos = at + close + 2;
            continue;
        }
        let first = word(&text[at..]);
        match first {
            "if" | "range" | "with" | "block" => open.push(Open {
                block: match first {
                    "if" => Block::If,
                    "range" => Block::Range,
                    "with" => Block::With,
                    _ => Block::Named,
                },
                after_else: false,
            }),
            "define" if !open.is_empty() => return fail(start, "unexpected <define> in command"),
            "define" => open.push(Open {
                block: Block::Named,
                after_else: false,
            }),
            "end" if open.pop().is_none() => return fail(start, "unexpected {{end}}"),
            "else" => {
                let Some(top) = open.last_mut() else {
                    return fail(start, "unexpected {{else}}");
                };
                if top.block == Block::Named {
                    return fail(start, "unexpected {{else}}");
                }
                if top.after_else {
                    return fail(start, "expected end; found {{else}}");
                }
                let rest = &text[at + first.len()..];
                match word(&rest[blank(rest)..]) {
                    // `else with` is Go 1.23's, and gotmpl's.
                    "if" if top.block == Block::If => {}
                    "with" if top.block == Block::With => {}
                    "if" => return fail(start, "unexpected <if> in input"),
                    "with" => return fail(start, "unexpected <with> in input"),
                    _ => top.after_else = true,
                }
            }
            _ => {}
        }
        match action_end(&text[at..]) {
            Ok(Some(end)) => pos = at + end,
            // An unclosed action or literal is gotmpl's to refuse.
            Ok(None) => return Ok(()),
            Err((offset, message)) => return fail(at + offset, &message),
        }
    }
    match open.is_empty() {
        true => Ok(()),
        false => fail(text.len(), "unexpected EOF"),
    }
}

/// The length of the blanks at the start of `s`.
fn blank(s: &str) -> usize {
    s.len()
        - s.trim_start_matches(|c: char| c.is_ascii_whitespace())
            .len()
}

/// The word `s` starts with (letters, digits, `_`), or nothing.
fn word(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// Where the action that `s` is inside of ends (just past its `}}`), skipping literals; `None`
/// when it does not end; an invalid escape in a string as an error at its offset.
fn action_end(s: &str) -> Result<Option<usize>, (usize, String)> {
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '}' if s[i..].starts_with("}}") => return Ok(Some(i + 2)),
            '`' if !chars.any(|(_, c)| c == '`') => return Ok(None),
            '\'' => loop {
                match chars.next() {
                    Some((_, '\\')) => {
                        chars.next();
                    }
                    Some((_, '\'')) => break,
                    Some((_, '\n')) | None => return Ok(None),
                    Some(_) => {}
                }
            },
            '"' => loop {
                match chars.next() {
                    Some((at, '\\')) => {
                        escape(&mut chars).map_err(|()| (at, "invalid syntax".to_owned()))?
                    }
                    Some((_, '"')) => break,
                    Some((_, '\n')) | None => return Ok(None),
                    Some(_) => {}
                }
            },
            _ => {}
        }
    }
    Ok(None)
}

/// Consumes one escape of a Go double-quoted string after its `\`: `\a \b \f \n \r \t \v \\
/// \"`, `\x` and two hex digits, `\u` and four, `\U` and eight, or three octal digits.
fn escape(chars: &mut std::str::CharIndices<'_>) -> Result<(), ()> {
    let digits = |chars: &mut std::str::CharIndices<'_>, count: usize, radix: u32| {
        (0..count).all(|_| chars.next().is_some_and(|(_, c)| c.is_digit(radix)))
    };
    let ok = match chars.next().map(|(_, c)| c) {
        Some('a' | 'b' | 'f' | 'n' | 'r' | 't' | 'v' | '\\' | '"') => true,
        Some('x') => digits(chars, 2, 16),
        Some('u') => digits(chars, 4, 16),
        Some('U') => digits(chars, 8, 16),
        Some('0'..='7') => digits(chars, 2, 8),
        _ => false,
    };
    ok.then_some(()).ok_or(())
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn blocks_that_do_not_nest_are_refused_as_go_refuses_them() {
        for (text, go) in [
            ("x{{ end }}y", "template: secret:1: unexpected {{end}}"),
            (
                "{{ if .a }}x{{ else }}y",
                "template: secret:1: unexpected EOF",
            ),
            (
                "{{ if 1 }}\n\n{{ range . }}",
                "template: secret:3: unexpected EOF",
            ),
            ("{{ block \"b\" . }}x", "template: secret:1: unexpected EOF"),
            (
                "{{ if 1 }}{{ define \"a\" }}x{{ end }}{{ end }}",
                "template: secret:1: unexpected <define> in command",
            ),
            (
                "{{ if 1 }}a{{ else }}b{{ else }}c{{ end }}",
                "template: secret:1: expected end; found {{else}}",
            ),
            (
                "{{ if 1 }}a{{ else }}b{{ else if 1 }}c{{ end }}",
                "template: secret:1: expected end; found {{else}}",
            ),
            (
                "{{ range . }}a{{ else if 1 }}b{{ end }}",
                "template: secret:1: unexpected <if> in input",
            ),
            ("{{ else }}", "template: secret:1: unexpected {{else}}"),
            (
                "{{/* c */}}{{ end }}",
                "template: secret:1: unexpected {{end}}",
            ),
            ("{{ \"a\\'\" }}", "template: secret:1: invalid syntax"),
            ("{{ \"a\\q\" }}", "template: secret:1: invalid syntax"),
            ("{{ \"\\x4\" }}", "template: secret:1: invalid syntax"),
        ] {
            assert_eq!(check(text), Err(go.to_owned()), "{text:?}");
        }
    }

    #[test]
    fn what_go_accepts_passes() {
        for text in [
            "",
            "plain {{ .a }}",
            "{{ if 1 }}{{ block \"b\" . }}x{{ end }}{{ end }}",
            "{{- /* x */ -}}",
            "{{ \"}}\" }}{{ `{{ end }}` }}{{ '}' }}",
            "{{ if 1 -}} a {{- end }}",
            "{{ -3 }}{{- -3 }}",
            "{{ if 1 }}a{{ else if 2 }}b{{ else }}c{{ end }}",
            "{{ with 1 }}a{{ else with 2 }}b{{ end }}",
            "{{ range . }}a{{ else }}b{{ end }}",
            "{{ define \"a\" }}{{ if 1 }}x{{ end }}{{ end }}{{ template \"a\" }}",
            "{{ \"\\a\\b\\f\\n\\r\\t\\v\\\\\\\"\\x41\\u00e9\\U0001F642\\101\" }}",
            "{{ printf \"%s\" (index . \"end\") }}",
            // What it cannot read is gotmpl's to refuse.
            "{{ if 1 }}{{ .a",
        ] {
            assert_eq!(check(text), Ok(()), "{text:?}");
        }
    }
}
