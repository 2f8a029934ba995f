//! Integration tests of the test harnesses, as one test binary.

// Integration tests: a panic is how a failure is reported, in helpers as in `#[test]` functions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod keeper;
mod kube_api;
mod loki;
mod moto;
mod postgres;
