//! The PromQL-free parts of the HTTP API against the `ember` binary: Prometheus' JSON envelope and shapes
//! for labels, label values and the status endpoints, and Debian's `promtool query labels` as a real
//! client. The PromQL endpoints and `match[]` in depth: `tests/query_api.rs`.

use std::process::Command;

mod common;

use common::agent;
use ember_server::remote_write::proto::*;
use prost::Message;

fn get_json(port: u16, path: &str) -> (u16, serde_json::Value) {
    let mut r = agent()
        .get(format!("http://127.0.0.1:{port}{path}"))
        .call()
        .unwrap();
    let code = r.status().as_u16();
    (
        code,
        serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap(),
    )
}

#[test]
fn label_and_status_endpoints_answer_like_prometheus() {
    let dir = tempfile::tempdir().unwrap();
    let (child, port) = common::start_ember(dir.path(), &["--web.enable-remote-write-receiver"]);
    let ts = |name: &str, job: &str| TimeSeries {
        labels: vec![
            Label {
                name: b"__name__".to_vec(),
                value: name.as_bytes().to_vec(),
            },
            Label {
                name: b"job".to_vec(),
                value: job.as_bytes().to_vec(),
            },
        ],
        samples: vec![Sample {
            value: 1.0,
            timestamp: 1000,
        }],
        ..Default::default()
    };
    let req = WriteRequest {
        timeseries: vec![ts("up", "a"), ts("up", "b"), ts("down", "a")],
        metadata: vec![],
    };
    let body = snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .unwrap();
    let r = agent()
        .post(format!("http://127.0.0.1:{port}/api/v1/write"))
        .send(&body[..])
        .unwrap();
    assert_eq!(r.status(), 204);

    let (code, v) = get_json(port, "/api/v1/labels");
    assert_eq!(code, 200);
    assert_eq!(
        v,
        serde_json::json!({"status": "success", "data": ["__name__", "job"]})
    );
    let (_, v) = get_json(port, "/api/v1/label/job/values");
    assert_eq!(v["data"], serde_json::json!(["a", "b"]));
    let (code, v) = get_json(port, "/api/v1/labels?match[]=down");
    assert_eq!(code, 200);
    assert_eq!(v["data"], serde_json::json!(["__name__", "job"]));
    let (code, v) = get_json(port, "/api/v1/labels?match[]=up%2B1");
    assert_eq!(code, 400);
    assert_eq!(v["status"], "error");
    assert_eq!(v["errorType"], "bad_data");
    let (_, v) = get_json(port, "/api/v1/status/tsdb");
    assert_eq!(v["data"]["headStats"]["numSeries"], 3);
    assert_eq!(
        v["data"]["seriesCountByMetricName"][0],
        serde_json::json!({"name": "up", "value": 2})
    );
    let (_, v) = get_json(port, "/api/v1/status/buildinfo");
    assert_eq!(v["data"]["version"], env!("CARGO_PKG_VERSION"));
    let (_, v) = get_json(port, "/api/v1/status/flags");
    assert_eq!(v["data"]["web.enable-remote-write-receiver"], "true");
    let (_, v) = get_json(port, "/api/v1/status/runtimeinfo");
    assert!(v["data"]["startTime"].as_str().unwrap().ends_with('Z'));
    let (_, v) = get_json(port, "/api/v1/status/walreplay");
    assert!(v["data"]["max"].is_number());

    if Command::new("promtool").arg("--version").output().is_ok() {
        let out = Command::new("promtool")
            .args([
                "query",
                "labels",
                &format!("http://127.0.0.1:{port}"),
                "job",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "promtool: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .collect::<Vec<_>>(),
            ["a", "b"]
        );
    } else {
        assert_eq!(
            std::env::var("EMBER_SKIP_PEER_TESTS").as_deref(),
            Ok("1"),
            "promtool not installed"
        );
        eprintln!("SKIPPED: promtool part (not installed)");
    }
    common::stop(child, "ember");
}
