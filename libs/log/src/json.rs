//! The JSON lines formatter: one object per event with its fields at the top level.

use std::fmt;
use std::io::Write;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

/// A layer that writes each event as one JSON object on one line.
///
/// Keys: `ts` (RFC 3339, UTC), `level` (lowercase), `msg`, `target`, then the fields of the
/// enclosing spans from outermost to innermost, then the event's own fields. A field named
/// like a reserved key is kept under a `field.` prefix rather than overwriting it.
pub struct JsonLayer<W> {
    writer: W,
}

impl<W> fmt::Debug for JsonLayer<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonLayer").finish_non_exhaustive()
    }
}

impl<W> JsonLayer<W> {
    /// A layer writing to `writer`.
    pub fn new(writer: W) -> Self {
        Self { writer }
    }
}

/// Span fields, stored in the span's extensions when it is created or recorded.
struct SpanFields(Map<String, Value>);

const RESERVED: [&str; 4] = ["ts", "level", "msg", "target"];

impl<S, W> Layer<S> for JsonLayer<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + 'static,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = FieldVisitor::default();
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(SpanFields(fields.map));
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut ext = span.extensions_mut();
        if let Some(SpanFields(map)) = ext.get_mut::<SpanFields>() {
            let mut fields = FieldVisitor {
                map: std::mem::take(map),
                message: None,
            };
            values.record(&mut fields);
            *map = fields.map;
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let meta = event.metadata();
        let mut fields = FieldVisitor::default();
        event.record(&mut fields);
        let mut extra = Map::new();
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(SpanFields(map)) = span.extensions().get::<SpanFields>() {
                    insert_all(&mut extra, map.clone());
                }
            }
        }
        insert_all(&mut extra, fields.map);
        // The fixed keys come first, in a stable order, so lines read well in a terminal too.
        let head = [
            ("ts", Value::String(jiff::Timestamp::now().to_string())),
            (
                "level",
                Value::String(meta.level().as_str().to_ascii_lowercase()),
            ),
            (
                "msg",
                Value::String(fields.message.take().unwrap_or_default()),
            ),
            ("target", Value::String(meta.target().to_owned())),
        ];
        let pairs = head
            .iter()
            .map(|(k, v)| (*k, v))
            .chain(extra.iter().map(|(k, v)| (k.as_str(), v)));
        let Ok(bytes) = encode_line(pairs) else {
            return;
        };
        // A failed log write has nowhere to be reported; dropping the line is the only option.
        let _ = self.writer.make_writer().write_all(&bytes);
    }
}

/// Encodes `pairs` as one JSON object followed by a newline, keeping their order.
fn encode_line<'a>(
    pairs: impl Iterator<Item = (&'a str, &'a Value)>,
) -> serde_json::Result<Vec<u8>> {
    let mut bytes = Vec::with_capacity(256);
    bytes.push(b'{');
    for (i, (k, v)) in pairs.enumerate() {
        if i > 0 {
            bytes.push(b',');
        }
        serde_json::to_writer(&mut bytes, k)?;
        bytes.push(b':');
        serde_json::to_writer(&mut bytes, v)?;
    }
    bytes.extend_from_slice(b"}\n");
    Ok(bytes)
}

fn insert_all(line: &mut Map<String, Value>, fields: Map<String, Value>) {
    for (k, v) in fields {
        let key = if RESERVED.contains(&k.as_str()) {
            format!("field.{k}")
        } else {
            k
        };
        line.insert(key, v);
    }
}

#[derive(Default)]
struct FieldVisitor {
    map: Map<String, Value>,
    message: Option<String>,
}

impl FieldVisitor {
    fn put(&mut self, field: &Field, value: Value) {
        if field.name() == "message" {
            self.message = Some(match value {
                Value::String(s) => s,
                other => other.to_string(),
            });
        } else {
            self.map.insert(field.name().to_owned(), value);
        }
    }
}

impl Visit for FieldVisitor {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, Value::String(format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Value::String(value.to_owned()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, Value::from(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        // The whole source chain, because operators need the root cause in one line.
        let mut text = value.to_string();
        let mut source = value.source();
        while let Some(s) = source {
            text.push_str(": ");
            text.push_str(&s.to_string());
            source = s.source();
        }
        self.put(field, Value::String(text));
    }
}

#[cfg(test)]
mod tests;
