//! Templates in Go's `text/template`, with the functions the upstream injector's templates
//! use, so that a template renders here as it did there.
//!
//! Upstream renders a template named `secret` with Sprig's functions plus its own
//! `base64enc`, `base64dec`, `sha256sum` and `sha512sum`, over the record's fields decoded by
//! Go's `encoding/json` into `map[string]interface{}` (so every number is a `float64`). We do
//! the same: the engine is the `gotmpl` crate, the data is the same map with every number a
//! float, and [`sprig`] holds the functions, each with Go's argument checks (a `float64` where
//! a `string` is expected is an error, as Go's reflection makes it; a missing key is an
//! "invalid value" there). A missing key prints `<no value>`, as Go prints it for a map.
//!
//! A differential corpus (`tests/templates/`: 210 templates over a record with every shape of
//! value) is rendered by Go 1.19 with Sprig 3.2.3 (`golden.go`, run by `cargo xtask templates`,
//! its output committed as `expected.json`) and by this module (`tests/it/templates.rs`):
//! outputs must be identical, and a template Go refuses must be refused here. The few places
//! where we differ are listed in `corpus.json` (`divergence`), each with its reason and our
//! exact output: where Go writes something silently wrong into the file we refuse instead
//! (Sprig's `b64dec` writes its error text as the value), and two places where `gotmpl` is
//! not yet Go's (see the corpus).
//!
//! Why `gotmpl` (0.6, MIT, six releases in 2026, depends on `thiserror` only, no `unsafe`):
//! it reimplements the whole of `text/template`: parsing with positions, pipelines and
//! parenthesised sub-expressions, `if`/`else if`/`with`/`range`/`break`/`continue`,
//! `define`/`template`/`block`, variables, Go's number literals, `printf` with Go's verbs,
//! `eq`/`lt`/`and`/`or`/`not`/`len`/`index`/`slice`/`html`/`js`/`urlquery`, and caps on range
//! iterations and template recursion. Our own interpreter, which it replaced, had none of
//! these and rendered `{{ index .url 1 }}` as an empty string. `gtmpl` was last released in
//! 2021; tera, minijinja and handlebars have other syntaxes.

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use gotmpl::parse::{Expr, ListNode, Node, PipeNode};
use gotmpl::{FuncMap, Template, Value};

mod json;
mod sprig;
mod structure;

/// The template's name, as upstream names it; Go's messages carry it (`template: secret:1:5`).
pub const NAME: &str = "secret";

/// Why a template does not render: Go's message, which names the line (and, when executing,
/// the column and the action).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Error(String);

/// Sprig's functions and upstream's, made once.
static FUNCS: LazyLock<FuncMap> = LazyLock::new(sprig::funcs);

/// Renders `text` over `data` (the selected fields, as JSON) as upstream's Go would.
pub fn render(text: &str, data: &serde_json::Value) -> Result<String, Error> {
    structure::check(text).map_err(Error)?;
    let template = Template::new(NAME)
        .funcs(FUNCS.clone())
        .parse(text)
        .map_err(|e| Error(e.to_string()))?;
    for name in template.templates() {
        if let Some((line, function)) = template.lookup(name).and_then(undefined_function) {
            return Err(Error(format!(
                "template: {NAME}:{line}: function {function:?} not defined"
            )));
        }
    }
    template
        .execute_to_string(&value(data))
        .map_err(|e| Error(redact(format!("template: {NAME}: {e}"), data)))
}

/// `message` with every value of `data` that it quotes replaced by `<value>`. A few of
/// gotmpl's messages quote the value they failed on (`len: cannot take length of 5432`,
/// `printf: first arg must be string, got ...`), and errors are logged: no secret may reach
/// a log. Values shorter than three characters are left alone, or every `a` in a message
/// would go.
fn redact(mut message: String, data: &serde_json::Value) -> String {
    let mut values = Vec::new();
    leaves(data, &mut values);
    values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    for v in values.iter().filter(|v| v.chars().count() >= 3) {
        message = message.replace(v.as_str(), "<value>");
    }
    message
}

/// Every string in `data`, and every number as gotmpl prints it.
fn leaves(data: &serde_json::Value, out: &mut Vec<String>) {
    match data {
        serde_json::Value::String(s) => out.push(s.clone()),
        serde_json::Value::Number(_) => out.push(value(data).to_string()),
        serde_json::Value::Array(items) => items.iter().for_each(|v| leaves(v, out)),
        serde_json::Value::Object(map) => map.values().for_each(|v| leaves(v, out)),
        serde_json::Value::Null | serde_json::Value::Bool(_) => {}
    }
}

/// Go's builtin functions; gotmpl has the same.
const BUILTINS: [&str; 19] = [
    "and", "call", "html", "index", "slice", "js", "len", "not", "or", "print", "printf",
    "println", "urlquery", "eq", "ge", "gt", "le", "lt", "ne",
];

/// The first function `list` calls that is neither a builtin nor one of [`FUNCS`], with its
/// line. Go refuses such a template when it parses it; gotmpl only when the call runs, so a
/// misspelt function in a branch not taken today would render until the data changes.
fn undefined_function(list: &ListNode) -> Option<(usize, String)> {
    list.nodes.iter().find_map(|node| match node {
        Node::List(list) => undefined_function(list),
        Node::Action(action) => undefined_in_pipe(&action.pipe),
        Node::If(branch) | Node::Range(branch) | Node::With(branch) => {
            undefined_in_pipe(&branch.pipe)
                .or_else(|| undefined_function(&branch.body))
                .or_else(|| branch.else_body.as_ref().and_then(undefined_function))
        }
        Node::Template(call) => call.pipe.as_ref().and_then(undefined_in_pipe),
        Node::Define(define) => undefined_function(&define.body),
        Node::Text(_) | Node::Break(_) | Node::Continue(_) => None,
    })
}

fn undefined_in_pipe(pipe: &PipeNode) -> Option<(usize, String)> {
    pipe.commands
        .iter()
        .flat_map(|command| &command.args)
        .find_map(undefined_in_expr)
}

fn undefined_in_expr(expr: &Expr) -> Option<(usize, String)> {
    match expr {
        Expr::Identifier(pos, name)
            if !BUILTINS.contains(&name.as_str()) && !FUNCS.contains_key(name.as_str()) =>
        {
            Some((pos.line, name.to_string()))
        }
        Expr::Pipe(_, pipe) => undefined_in_pipe(pipe),
        Expr::Chain(_, inner, _) => undefined_in_expr(inner),
        _ => None,
    }
}

/// `data` as Go's `encoding/json` decodes it into an `interface{}`: objects become maps,
/// arrays lists, and every number a `float64`.
fn value(data: &serde_json::Value) -> Value {
    match data {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        // A JSON number always fits a float (serde_json has no arbitrary precision here);
        // Go's decoder rounds it the same way.
        serde_json::Value::Number(n) => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        serde_json::Value::String(s) => Value::String(Arc::from(s.as_str())),
        serde_json::Value::Array(items) => Value::List(items.iter().map(value).collect()),
        serde_json::Value::Object(map) => Value::Map(Arc::new(
            map.iter()
                .map(|(k, v)| (Arc::from(k.as_str()), value(v)))
                .collect::<BTreeMap<_, _>>(),
        )),
    }
}

#[cfg(test)]
mod tests;
