//! Process-level tests of `injector-webhook`: the CLI contract and the service lifecycle.

// Integration tests: a panic is how a failure is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use bulwark_test_util::binary;

const EXE: &str = env!("CARGO_BIN_EXE_injector-webhook");

#[test]
fn cli_contract() {
    binary::check_cli_contract(
        Path::new(EXE),
        "injector-webhook",
        &[],
        "health:\n  listen: nowhere\n",
        "health.listen",
    );
}

#[test]
fn serves_health_and_metrics_then_stops_on_sigterm() {
    binary::check_service_lifecycle(
        Path::new(EXE),
        &[],
        &[("BULWARK_INJECTOR_WEBHOOK_HEALTH__LISTEN", "127.0.0.1:0")],
    );
}
