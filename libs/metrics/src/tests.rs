//! Tests for the exposition: histograms render as histograms with the expected buckets.

use super::{BYTES_BUCKETS, Buckets, BuildInfo, Metrics};

#[test]
fn renders_histograms_counters_and_build_info() {
    let (recorder, m) = Metrics::local(&[Buckets {
        name: "t_size_bytes",
        bounds: BYTES_BUCKETS,
    }])
    .unwrap();
    metrics::with_local_recorder(&recorder, || {
        super::describe_build_info(BuildInfo {
            binary: "t",
            version: "0.1.0",
            git_sha: "abc",
        });
        metrics::describe_counter!("t_requests_total", "Requests.");
        metrics::describe_histogram!("t_latency_seconds", metrics::Unit::Seconds, "Latency.");
        metrics::describe_histogram!("t_size_bytes", metrics::Unit::Bytes, "Sizes.");
        metrics::counter!("t_requests_total", "result" => "ok").increment(2);
        metrics::histogram!("t_latency_seconds").record(0.003);
        metrics::histogram!("t_size_bytes").record(2000.0);
    });
    let text = m.render();
    assert!(
        text.contains("# TYPE t_latency_seconds histogram"),
        "{text}"
    );
    assert!(
        text.contains("t_latency_seconds_bucket{le=\"0.005\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("t_latency_seconds_bucket{le=\"0.0025\"} 0"),
        "{text}"
    );
    assert!(
        text.contains("t_size_bytes_bucket{le=\"4096\"} 1"),
        "{text}"
    );
    assert!(text.contains("t_requests_total{result=\"ok\"} 2"), "{text}");
    assert!(
        text.contains("bulwark_build_info{binary=\"t\",version=\"0.1.0\",git_sha=\"abc\"} 1"),
        "{text}"
    );
    assert!(text.contains("# HELP t_requests_total Requests."), "{text}");
}
