//! Fuzz target: arbitrary bytes as an AdmissionReview or pod JSON, or as annotations of a
//! Deployment-created pod, through the annotation parser and the mutation.
//!
//! The properties live in `bulwark_inject::fuzzing::check` (so that `cargo test` runs them
//! too): no panic, the patch applies and only adds, the patched pod is a pod, a second
//! admission is a no-op, and the sidecar spec survives JSON.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    bulwark_inject::fuzzing::check(data);
});
