//! Fuzz target: arbitrary bytes as an AdmissionReview or pod JSON, or as annotations of a
//! Deployment-created pod, through the annotation parser and the mutation.
//!
//! The properties live in `bulwark_inject::fuzzing::check` (so that `cargo test` runs them
//! too): no panic, the patch applies and only adds, the patched pod is a pod, a second
//! admission is a no-op, and the sidecar spec survives JSON. The same bytes also go through
//! the webhook's own entry point, the AdmissionReview codec, which must answer every input,
//! and its fast reader must answer them as serde_json does or leave them to it.

#![no_main]

static WEBHOOK: std::sync::LazyLock<std::sync::Arc<bulwark_webhook::Webhook>> = std::sync::LazyLock::new(|| {
    bulwark_webhook::Webhook::new(bulwark_inject::Defaults { ksm_config: Some("keeper-auth".into()), ..Default::default() })
});

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    bulwark_inject::fuzzing::check(data);
    assert!(
        bulwark_webhook::review::agrees_with_serde_json(data),
        "the fast reader answers differently from serde_json"
    );
    let admitted = WEBHOOK.admit(data);
    assert!(!admitted.body.is_empty());
});
