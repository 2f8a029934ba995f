//! Fuzz target: arbitrary bytes as an AdmissionReview, a pod, or the annotations of a
//! Deployment-created pod, through the webhook's whole admission path.
//!
//! The properties live in `bulwark_webhook::fuzzing` (so that `cargo test` runs them too): an
//! answer for every input, the uid echoed, a patch that `json-patch` applies and that only
//! adds, a patched pod that k8s-openapi reads as a Pod, a spec that reads back, offline
//! `explain` agreeing with the webhook, and a second admission that is a no-op.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    bulwark_webhook::fuzzing::check(data);
});
