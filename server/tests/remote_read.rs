//! Remote read against the `ember` binary: our own client decodes both response types (samples, and the
//! framed, CRC-checked streamed XOR chunks, whose chunks must decode with Ember's iterator to the written
//! samples), and a real Prometheus configured with `remote_read` pointed at Ember answers a query for a
//! metric only Ember holds.

use std::process::{Command, Stdio};

mod common;

use common::{agent, free_port, start_ember, stop, wait_ready};
use ember_server::remote_write::proto::*;
use prost::Message;

fn post(port: u16, path: &str, body: Vec<u8>) -> (u16, Option<String>, Vec<u8>) {
    let mut r = agent()
        .post(format!("http://127.0.0.1:{port}{path}"))
        .header("Content-Type", "application/x-protobuf")
        .header("Content-Encoding", "snappy")
        .send(&body[..])
        .unwrap();
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string());
    (r.status().as_u16(), ct, r.body_mut().read_to_vec().unwrap())
}

/// 300 samples of `only_in_ember{job="x"}` ending one minute before now, 15 s apart, plus a decoy series.
fn load(port: u16) -> Vec<(i64, f64)> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let start = now - 60_000 - 299 * 15_000;
    let samples: Vec<(i64, f64)> = (0..300)
        .map(|k| (start + k * 15_000, (k * k) as f64 / 7.0))
        .collect();
    let series = |name: &str, job: &str| TimeSeries {
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
        samples: samples
            .iter()
            .map(|&(timestamp, value)| Sample { value, timestamp })
            .collect(),
        ..Default::default()
    };
    let req = WriteRequest {
        timeseries: vec![series("only_in_ember", "x"), series("decoy", "y")],
        metadata: vec![],
    };
    let (code, _, body) = post(
        port,
        "/api/v1/write",
        snap::raw::Encoder::new()
            .compress_vec(&req.encode_to_vec())
            .unwrap(),
    );
    assert_eq!(code, 204, "{}", String::from_utf8_lossy(&body));
    samples
}

fn read_request(types: Vec<i32>, from: i64, to: i64) -> Vec<u8> {
    let req = ReadRequest {
        queries: vec![Query {
            start_timestamp_ms: from,
            end_timestamp_ms: to,
            matchers: vec![LabelMatcher {
                r#type: 0,
                name: "__name__".into(),
                value: "only_in_ember".into(),
            }],
        }],
        accepted_response_types: types,
    };
    snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .unwrap()
}

#[test]
fn both_response_types_return_exactly_the_stored_samples() {
    let dir = tempfile::tempdir().unwrap();
    let (ember, port) = start_ember(dir.path(), &["--web.enable-remote-write-receiver"]);
    let samples = load(port);
    let (from, to) = (samples[0].0, samples[299].0);

    let (code, ct, body) = post(port, "/api/v1/read", read_request(vec![0], from, to));
    assert_eq!((code, ct.as_deref()), (200, Some("application/x-protobuf")));
    let resp = ReadResponse::decode(
        snap::raw::Decoder::new()
            .decompress_vec(&body)
            .unwrap()
            .as_slice(),
    )
    .unwrap();
    assert_eq!(resp.results.len(), 1);
    assert_eq!(
        resp.results[0].timeseries.len(),
        1,
        "only the matching series"
    );
    let got: Vec<(i64, f64)> = resp.results[0].timeseries[0]
        .samples
        .iter()
        .map(|s| (s.timestamp, s.value))
        .collect();
    assert_eq!(got, samples);

    let (code, ct, body) = post(port, "/api/v1/read", read_request(vec![1, 0], from, to));
    assert_eq!(
        (code, ct.as_deref()),
        (200, Some(ember_server::remote_read::STREAMED_CONTENT_TYPE))
    );
    let mut pos = 0;
    let mut decoded = Vec::new();
    while pos < body.len() {
        let (mut len, mut shift) = (0usize, 0);
        loop {
            let b = body[pos];
            pos += 1;
            len |= ((b & 0x7f) as usize) << shift;
            if b < 0x80 {
                break;
            }
            shift += 7;
        }
        let crc = u32::from_be_bytes(body[pos..pos + 4].try_into().unwrap());
        let data = &body[pos + 4..pos + 4 + len];
        assert_eq!(crc32c::crc32c(data), crc, "frame checksum");
        pos += 4 + len;
        let frame = ChunkedReadResponse::decode(data).unwrap();
        assert_eq!(frame.query_index, 0);
        for s in frame.chunked_series {
            for c in s.chunks {
                assert_eq!(c.r#type, 1, "XOR");
                decoded.extend(ember::chunkenc::XorIterator::new(&c.data).unwrap());
            }
        }
    }
    assert_eq!(decoded, samples);
    stop(ember, "ember");
}

#[test]
fn prometheus_remote_read_sees_what_only_ember_holds() {
    if !common::peer_available("prometheus") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (ember, port) = start_ember(
        &tmp.path().join("ember"),
        &["--web.enable-remote-write-receiver"],
    );
    let samples = load(port);
    let prom_port = free_port();
    let cfg = tmp.path().join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "remote_read:\n  - url: http://127.0.0.1:{port}/api/v1/read\n    read_recent: true\n"
        ),
    )
    .unwrap();
    let prom = common::Proc::spawn(
        Command::new("prometheus")
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .arg(format!(
                "--storage.tsdb.path={}",
                tmp.path().join("prom").display()
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    wait_ready(prom_port, "prometheus");
    let at = samples[299].0 as f64 / 1000.0;
    let url =
        format!("http://127.0.0.1:{prom_port}/api/v1/query?query=only_in_ember%5B75m%5D&time={at}");
    let mut r = agent().get(url).call().unwrap();
    let body = r.body_mut().read_to_string().unwrap();
    stop(prom, "prometheus");
    stop(ember, "ember");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let result = v["data"]["result"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"));
    assert_eq!(result.len(), 1, "{body}");
    assert_eq!(result[0]["metric"]["job"], "x");
    let got: Vec<(i64, f64)> = result[0]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                (p[0].as_f64().unwrap() * 1000.0).round() as i64,
                p[1].as_str().unwrap().parse().unwrap(),
            )
        })
        .collect();
    // 75 minutes back from the last sample, left-open: the last 300 samples (all of them).
    assert_eq!(got, samples);
}
