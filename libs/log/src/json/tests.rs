//! Tests for the JSON line shape.

use std::io;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tracing_subscriber::layer::SubscriberExt;

use super::JsonLayer;

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

fn capture(f: impl FnOnce()) -> Vec<Value> {
    let out = Capture::default();
    let subscriber = tracing_subscriber::registry().with(JsonLayer::new(out.clone()));
    tracing::subscriber::with_default(subscriber, f);
    let bytes = out.0.lock().unwrap().clone();
    String::from_utf8(bytes)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn seed_shape_level_msg_and_flat_fields() {
    let lines = capture(|| {
        tracing::warn!(
            age = "6h",
            reason = "keeper API unavailable",
            "using cached secrets"
        );
    });
    let l = &lines[0];
    assert_eq!(l["level"], "warn");
    assert_eq!(l["msg"], "using cached secrets");
    assert_eq!(l["age"], "6h");
    assert_eq!(l["reason"], "keeper API unavailable");
    assert!(l["ts"].as_str().unwrap().ends_with('Z'));
}

#[test]
fn fixed_keys_come_first() {
    let out = Capture::default();
    let subscriber = tracing_subscriber::registry().with(JsonLayer::new(out.clone()));
    tracing::subscriber::with_default(subscriber, || tracing::info!(a = 1, "m"));
    let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
    assert!(text.starts_with(r#"{"ts":""#), "{text}");
    assert!(
        text.contains(r#"","level":"info","msg":"m","target":""#),
        "{text}"
    );
    assert!(text.ends_with(",\"a\":1}\n"), "{text}");
}

#[test]
fn typed_fields_span_fields_and_error_chains() {
    let lines = capture(|| {
        let span = tracing::info_span!("request", pod = "myapp-abc", namespace = "prod");
        let _g = span.enter();
        let err = std::io::Error::other("timeout");
        tracing::error!(
            count = 3_u64,
            ok = false,
            error = &err as &dyn std::error::Error,
            "failed to fetch secrets"
        );
    });
    let l = &lines[0];
    assert_eq!(l["level"], "error");
    assert_eq!(l["pod"], "myapp-abc");
    assert_eq!(l["namespace"], "prod");
    assert_eq!(l["count"], 3);
    assert_eq!(l["ok"], false);
    assert_eq!(l["error"], "timeout");
}

#[test]
fn reserved_names_do_not_overwrite() {
    let lines = capture(|| tracing::info!(level = "x", "hello"));
    assert_eq!(lines[0]["level"], "info");
    assert_eq!(lines[0]["field.level"], "x");
}

#[test]
fn one_line_per_event_even_with_newlines() {
    let lines = capture(|| tracing::info!(detail = "a\nb", "multi\nline"));
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["msg"], "multi\nline");
}
