//! Templates in the syntax of Go's `text/template`, which upstream's templates use, so that
//! they keep working: `{{ .password }}`, `{{ index . "api-key" }}`, pipelines
//! (`{{ .cert | base64dec }}`), `{{ if }}`/`{{ else }}`/`{{ end }}`,
//! `{{ range $k, $v := . }}`, variables, string literals, `{{/* comments */}}` and the `{{-`
//! `-}}` trim markers.
//!
//! Functions: `index`, `default`, `quote`, `squote`, `upper`, `lower`, `trim`, `toJson`,
//! `base64enc`/`b64enc`, `base64dec`/`b64dec`, `sha256sum`, `sha512sum` (upstream's extras and
//! the Sprig functions its examples use). Anything else is an error that names the function
//! and its position, never a silent empty string; a missing key renders as empty, as in Go.
//! The data is the selected values: field names at the top level (`.login`, `.password`).
//!
//! No crate fitted: `gtmpl` is unmaintained (last release 2021) and drags in its own value
//! model, and Rust template engines (tera, minijinja, handlebars) use other syntaxes.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use sha2::{Digest, Sha256, Sha512};

/// Why a template does not render: where, and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{at}: {problem}")]
pub struct Error {
    pub at: Position,
    pub problem: Problem,
}

/// A place in a template: its line and column, from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

/// What was wrong with a template.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("unclosed action: expected }}}}")]
    Unclosed,
    #[error("unexpected {{{{{0}}}}}")]
    UnexpectedKeyword(String),
    #[error("{{{{{0}}}}} without {{{{end}}}}")]
    NoEnd(String),
    #[error("range declares at most two $variables")]
    RangeVariables,
    #[error("{{{{{0}}}}} is not supported")]
    Unsupported(String),
    #[error("empty command in pipeline")]
    EmptyCommand,
    #[error("unterminated string")]
    UnterminatedString,
    #[error("invalid escape \\{0}")]
    Escape(char),
    #[error("unexpected {0:?}")]
    UnexpectedWord(String),
    #[error("range over {0}, not a list or map")]
    RangeOver(&'static str),
    #[error("only a function can take arguments")]
    ArgumentsToValue,
    #[error("undefined variable {0}")]
    UndefinedVariable(String),
    #[error("{name} takes {takes} argument(s), got {got}")]
    Arity {
        name: String,
        takes: usize,
        got: usize,
    },
    #[error("index needs a value")]
    IndexOfNothing,
    #[error("{0}: the value is not base64")]
    NotBase64(String),
    #[error("{0}: the decoded value is not UTF-8")]
    NotUtf8(String),
    #[error("function {0:?} is not defined")]
    UndefinedFunction(String),
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "template:{}:{}", self.line, self.column)
    }
}

impl Position {
    fn err<T>(self, problem: Problem) -> Result<T, Error> {
        Err(Error { at: self, problem })
    }
}

/// A value as text, as an action prints it and as a `raw` file holds it: strings as they
/// are, nothing as nothing, everything else as compact JSON.
pub fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Renders `text` with `data`; the error names the position (`line:column`) and the problem.
pub fn render(text: &str, data: &Value) -> Result<String, Error> {
    let nodes = parse(text)?;
    let mut out = String::new();
    let mut scope = vec![("$".to_owned(), data.clone())];
    exec(&nodes, data, &mut scope, &mut out)?;
    Ok(out)
}

#[derive(Debug, Clone)]
enum Node {
    Text(String),
    Action {
        pos: Position,
        pipe: Pipe,
    },
    If {
        pos: Position,
        cond: Pipe,
        then: Vec<Node>,
        otherwise: Vec<Node>,
    },
    Range {
        pos: Position,
        vars: Vec<String>,
        over: Pipe,
        body: Vec<Node>,
        otherwise: Vec<Node>,
    },
}

/// `decl := cmd | cmd ...`
#[derive(Debug, Clone)]
struct Pipe {
    decl: Option<String>,
    commands: Vec<Vec<Arg>>,
}

#[derive(Debug, Clone)]
enum Arg {
    /// `.`, `.a.b`, `$`, `$x.a`: a root and a path.
    Field(Option<String>, Vec<String>),
    Str(String),
    Num(f64),
    Bool(bool),
    Ident(String),
}

/// A piece of a template: text, or the inside of an action.
#[derive(Debug, Clone)]
enum Token {
    Text(String),
    Action(String),
}

fn position(text: &str, offset: usize) -> Position {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rfind('\n')
        .map_or(before.len(), |n| before.len() - n - 1)
        + 1;
    Position { line, column }
}

fn parse(text: &str) -> Result<Vec<Node>, Error> {
    // Split into text and actions, applying trim markers.
    let mut tokens: Vec<(usize, Token)> = Vec::new();
    let mut rest = 0;
    while let Some(start) = text[rest..].find("{{").map(|i| i + rest) {
        let mut chunk = text[rest..start].to_owned();
        let inner_start = start + 2;
        let Some(end) = text[inner_start..].find("}}").map(|i| i + inner_start) else {
            return position(text, start).err(Problem::Unclosed);
        };
        let mut inner = &text[inner_start..end];
        if let Some(stripped) = inner
            .strip_prefix('-')
            .filter(|s| s.starts_with([' ', '\t', '\n', '\r']))
        {
            chunk = chunk.trim_end().to_owned();
            inner = stripped;
        }
        let mut trim_after = false;
        if let Some(stripped) = inner
            .strip_suffix('-')
            .filter(|s| s.ends_with([' ', '\t', '\n', '\r']))
        {
            trim_after = true;
            inner = stripped;
        }
        tokens.push((rest, Token::Text(chunk)));
        tokens.push((start, Token::Action(inner.trim().to_owned())));
        rest = end + 2;
        if trim_after {
            let skipped = text[rest..].len() - text[rest..].trim_start().len();
            rest += skipped;
        }
    }
    tokens.push((rest, Token::Text(text[rest..].to_owned())));
    let mut iter = tokens.into_iter().peekable();
    let (nodes, end) = block(text, &mut iter)?;
    match end {
        None => Ok(nodes),
        Some((pos, word)) => position(text, pos).err(Problem::UnexpectedKeyword(word)),
    }
}

type Tokens = std::iter::Peekable<std::vec::IntoIter<(usize, Token)>>;

/// The nodes of a block and the `{{end}}` or `{{else}}` (with its offset) that closed it.
type Block = (Vec<Node>, Option<(usize, String)>);

/// Parses nodes up to `{{end}}` or `{{else}}` (returned) or the end of the text.
fn block(text: &str, tokens: &mut Tokens) -> Result<Block, Error> {
    let mut nodes = Vec::new();
    while let Some((offset, token)) = tokens.next() {
        let action = match token {
            Token::Text(t) => {
                if !t.is_empty() {
                    nodes.push(Node::Text(t));
                }
                continue;
            }
            Token::Action(a) => a,
        };
        let pos = position(text, offset);
        if action.starts_with("/*") {
            continue;
        }
        let word = action.split_whitespace().next().unwrap_or_default();
        match word {
            "end" | "else" => return Ok((nodes, Some((offset, action)))),
            "if" | "range" => {
                let rest = action[word.len()..].trim();
                let (body, end) = block(text, tokens)?;
                let (otherwise, end) = match end {
                    Some((_, e)) if e == "else" => block(text, tokens)?,
                    other => (Vec::new(), other),
                };
                if !matches!(&end, Some((_, e)) if e == "end") {
                    return pos.err(Problem::NoEnd(word.to_owned()));
                }
                if word == "if" {
                    nodes.push(Node::If {
                        pos,
                        cond: pipe(rest, pos)?,
                        then: body,
                        otherwise,
                    });
                } else {
                    let (vars, over) = match rest.split_once(":=") {
                        Some((vars, over)) => (
                            vars.split(',')
                                .map(|v| v.trim().to_owned())
                                .collect::<Vec<_>>(),
                            over,
                        ),
                        None => (Vec::new(), rest),
                    };
                    if vars.len() > 2 || vars.iter().any(|v| !v.starts_with('$')) {
                        return pos.err(Problem::RangeVariables);
                    }
                    nodes.push(Node::Range {
                        pos,
                        vars,
                        over: pipe(over, pos)?,
                        body,
                        otherwise,
                    });
                }
            }
            "with" | "define" | "template" | "block" | "break" | "continue" => {
                return pos.err(Problem::Unsupported(word.to_owned()));
            }
            _ => nodes.push(Node::Action {
                pos,
                pipe: pipe(&action, pos)?,
            }),
        }
    }
    Ok((nodes, None))
}

fn pipe(text: &str, pos: Position) -> Result<Pipe, Error> {
    let (decl, text) = match text.split_once(":=") {
        Some((var, rest)) if var.trim().starts_with('$') && !var.contains('"') => {
            (Some(var.trim().to_owned()), rest)
        }
        _ => (None, text),
    };
    let words = lex(text, pos)?;
    let mut commands = vec![Vec::new()];
    for word in words {
        match word {
            Some(arg) => commands.last_mut().map(|c| c.push(arg)).unwrap_or_default(),
            None => commands.push(Vec::new()),
        }
    }
    if commands.iter().any(Vec::is_empty) {
        return pos.err(Problem::EmptyCommand);
    }
    Ok(Pipe { decl, commands })
}

/// Words of a pipeline; `None` is a `|`.
fn lex(text: &str, pos: Position) -> Result<Vec<Option<Arg>>, Error> {
    let mut out = Vec::new();
    let mut chars = text.trim().chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        if c == '|' {
            chars.next();
            out.push(None);
            continue;
        }
        if c == '"' || c == '`' {
            chars.next();
            let mut s = String::new();
            loop {
                match chars.next() {
                    None => return pos.err(Problem::UnterminatedString),
                    Some(q) if q == c => break,
                    Some('\\') if c == '"' => match chars.next() {
                        Some('n') => s.push('\n'),
                        Some('t') => s.push('\t'),
                        Some('r') => s.push('\r'),
                        Some(e @ ('\\' | '"')) => s.push(e),
                        other => return pos.err(Problem::Escape(other.unwrap_or(' '))),
                    },
                    Some(ch) => s.push(ch),
                }
            }
            out.push(Some(Arg::Str(s)));
            continue;
        }
        let mut word = String::new();
        while let Some(&ch) = chars.peek() {
            if ch.is_whitespace() || ch == '|' {
                break;
            }
            word.push(ch);
            chars.next();
        }
        let arg = if word == "true" || word == "false" {
            Arg::Bool(word == "true")
        } else if word.starts_with('.') || word.starts_with('$') {
            let (root, path) = if let Some(path) = word.strip_prefix('.') {
                (None, path)
            } else {
                match word.split_once('.') {
                    Some((var, path)) => (Some(var.to_owned()), path),
                    None => (Some(word.clone()), ""),
                }
            };
            let path = path
                .split('.')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            Arg::Field(root, path)
        } else if let Ok(n) = word.parse::<f64>() {
            Arg::Num(n)
        } else if word.chars().all(|c| c.is_alphanumeric() || c == '_') {
            Arg::Ident(word)
        } else {
            return pos.err(Problem::UnexpectedWord(word));
        };
        out.push(Some(arg));
    }
    Ok(out)
}

type Scope = Vec<(String, Value)>;

fn exec(nodes: &[Node], dot: &Value, scope: &mut Scope, out: &mut String) -> Result<(), Error> {
    for node in nodes {
        match node {
            Node::Text(t) => out.push_str(t),
            Node::Action { pos, pipe } => {
                let value = eval(pipe, dot, scope, *pos)?;
                if let Some(var) = &pipe.decl {
                    scope.push((var.clone(), value));
                } else {
                    out.push_str(&text(&value));
                }
            }
            Node::If {
                pos,
                cond,
                then,
                otherwise,
            } => {
                let branch = if truthy(&eval(cond, dot, scope, *pos)?) {
                    then
                } else {
                    otherwise
                };
                let depth = scope.len();
                exec(branch, dot, scope, out)?;
                scope.truncate(depth);
            }
            Node::Range {
                pos,
                vars,
                over,
                body,
                otherwise,
            } => {
                let items: Vec<(Value, Value)> = match eval(over, dot, scope, *pos)? {
                    Value::Array(a) => a
                        .into_iter()
                        .enumerate()
                        .map(|(i, v)| (Value::from(i), v))
                        .collect(),
                    Value::Object(m) => m.into_iter().map(|(k, v)| (Value::String(k), v)).collect(),
                    Value::Null => Vec::new(),
                    other => return pos.err(Problem::RangeOver(kind(&other))),
                };
                if items.is_empty() {
                    exec(otherwise, dot, scope, out)?;
                }
                for (key, value) in items {
                    let depth = scope.len();
                    match vars.as_slice() {
                        [v] => scope.push((v.clone(), value.clone())),
                        [k, v] => {
                            scope.push((k.clone(), key));
                            scope.push((v.clone(), value.clone()));
                        }
                        _ => {}
                    }
                    exec(body, &value, scope, out)?;
                    scope.truncate(depth);
                }
            }
        }
    }
    Ok(())
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(m) => !m.is_empty(),
    }
}

fn eval(pipe: &Pipe, dot: &Value, scope: &Scope, pos: Position) -> Result<Value, Error> {
    let mut last: Option<Value> = None;
    for command in &pipe.commands {
        let mut args: Vec<Value> = Vec::new();
        let Some((head, rest)) = command.split_first() else {
            return pos.err(Problem::EmptyCommand);
        };
        let Arg::Ident(name) = head else {
            if !rest.is_empty() || last.is_some() {
                return pos.err(Problem::ArgumentsToValue);
            }
            last = Some(operand(head, dot, scope, pos)?);
            continue;
        };
        for arg in rest {
            args.push(operand(arg, dot, scope, pos)?);
        }
        if let Some(previous) = last.take() {
            args.push(previous);
        }
        last = Some(call(name, &args, pos)?);
    }
    Ok(last.unwrap_or(Value::Null))
}

fn operand(arg: &Arg, dot: &Value, scope: &Scope, pos: Position) -> Result<Value, Error> {
    Ok(match arg {
        Arg::Str(s) => Value::String(s.clone()),
        Arg::Num(n) => serde_json::Number::from_f64(*n).map_or(Value::Null, Value::Number),
        Arg::Bool(b) => Value::Bool(*b),
        Arg::Ident(name) => call(name, &[], pos)?,
        Arg::Field(root, path) => {
            let mut value = match root {
                None => dot.clone(),
                Some(var) => match scope.iter().rev().find(|(name, _)| name == var) {
                    Some((_, v)) => v.clone(),
                    None => return pos.err(Problem::UndefinedVariable(var.clone())),
                },
            };
            for key in path {
                value = value.get(key).cloned().unwrap_or(Value::Null);
            }
            value
        }
    })
}

fn call(name: &str, args: &[Value], pos: Position) -> Result<Value, Error> {
    let arity = |n: usize| {
        if args.len() == n {
            Ok(())
        } else {
            pos.err(Problem::Arity {
                name: name.to_owned(),
                takes: n,
                got: args.len(),
            })
        }
    };
    let text = |i: usize| text(&args[i]);
    Ok(match name {
        "index" => {
            let Some((first, keys)) = args.split_first() else {
                return pos.err(Problem::IndexOfNothing);
            };
            let mut value = first.clone();
            for key in keys {
                value = match (&value, key) {
                    (Value::Object(m), Value::String(k)) => {
                        m.get(k).cloned().unwrap_or(Value::Null)
                    }
                    (Value::Array(a), Value::Number(n)) => n
                        .as_u64()
                        .and_then(|i| a.get(usize::try_from(i).ok()?))
                        .cloned()
                        .unwrap_or(Value::Null),
                    _ => Value::Null,
                };
            }
            value
        }
        "default" => {
            arity(2)?;
            if truthy(&args[1]) {
                args[1].clone()
            } else {
                args[0].clone()
            }
        }
        "quote" => {
            arity(1)?;
            Value::String(Value::String(text(0)).to_string())
        }
        "squote" => {
            arity(1)?;
            Value::String(format!("'{}'", text(0)))
        }
        "upper" => {
            arity(1)?;
            Value::String(text(0).to_uppercase())
        }
        "lower" => {
            arity(1)?;
            Value::String(text(0).to_lowercase())
        }
        "trim" => {
            arity(1)?;
            Value::String(text(0).trim().to_owned())
        }
        "toJson" => {
            arity(1)?;
            Value::String(args[0].to_string())
        }
        "base64enc" | "b64enc" => {
            arity(1)?;
            Value::String(STANDARD.encode(text(0)))
        }
        "base64dec" | "b64dec" => {
            arity(1)?;
            let Ok(bytes) = STANDARD.decode(text(0).trim()) else {
                return pos.err(Problem::NotBase64(name.to_owned()));
            };
            match String::from_utf8(bytes) {
                Ok(decoded) => Value::String(decoded),
                Err(_) => return pos.err(Problem::NotUtf8(name.to_owned())),
            }
        }
        "sha256sum" => {
            arity(1)?;
            Value::String(hex(&Sha256::digest(text(0).as_bytes())))
        }
        "sha512sum" => {
            arity(1)?;
            Value::String(hex(&Sha512::digest(text(0).as_bytes())))
        }
        other => return pos.err(Problem::UndefinedFunction(other.to_owned())),
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests;
