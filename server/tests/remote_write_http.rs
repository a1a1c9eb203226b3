//! The remote-write endpoint over real HTTP against the `ember` binary: each kind of bad input gets the
//! status code the spec asks for and a readable message, the server keeps serving, and everything
//! acknowledged before survives a restart.

mod common;

use common::agent;
use ember_server::remote_write::proto::{Label, Sample, TimeSeries, WriteRequest};
use prost::Message;

struct Server {
    child: common::Proc,
    port: u16,
}

impl Server {
    fn start(dir: &std::path::Path, extra: &[&str]) -> Server {
        let (child, port) = common::start_ember(dir, extra);
        Server { child, port }
    }

    fn get(&self, path: &str) -> (u16, String) {
        match agent()
            .get(format!("http://127.0.0.1:{}{path}", self.port))
            .call()
        {
            Ok(mut r) => (
                r.status().as_u16(),
                r.body_mut().read_to_string().unwrap_or_default(),
            ),
            Err(_) => (0, String::new()),
        }
    }

    fn post(
        &self,
        body: &[u8],
        content_type: Option<&str>,
        encoding: Option<&str>,
    ) -> (u16, String, Option<String>) {
        let mut req = agent().post(format!("http://127.0.0.1:{}/api/v1/write", self.port));
        if let Some(ct) = content_type {
            req = req.header("Content-Type", ct);
        }
        if let Some(e) = encoding {
            req = req.header("Content-Encoding", e);
        }
        let mut r = req.send(body).expect("request completes");
        let written = r
            .headers()
            .get("X-Prometheus-Remote-Write-Samples-Written")
            .map(|v| v.to_str().unwrap().to_string());
        (
            r.status().as_u16(),
            r.body_mut().read_to_string().unwrap_or_default(),
            written,
        )
    }

    fn stop(self) {
        common::stop(self.child, "ember");
    }
}

fn label(n: &str, v: &str) -> Label {
    Label {
        name: n.as_bytes().to_vec(),
        value: v.as_bytes().to_vec(),
    }
}

fn request(labels: Vec<Label>, samples: &[(i64, f64)]) -> Vec<u8> {
    let req = WriteRequest {
        timeseries: vec![TimeSeries {
            labels,
            samples: samples
                .iter()
                .map(|&(timestamp, value)| Sample { value, timestamp })
                .collect(),
            ..Default::default()
        }],
        metadata: vec![],
    };
    snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .unwrap()
}

/// (what, body, content type, content encoding, expected status, text the message must contain)
type BadCase = (
    &'static str,
    Vec<u8>,
    Option<&'static str>,
    Option<&'static str>,
    u16,
    &'static str,
);

const PROTO: Option<&str> = Some("application/x-protobuf");
const SNAPPY: Option<&str> = Some("snappy");

#[test]
fn bad_requests_get_clear_4xx_and_acked_data_survives() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(
        dir.path(),
        &[
            "--web.enable-remote-write-receiver",
            "--web.remote-write.max-body-bytes=65536",
        ],
    );
    let good = request(
        vec![label("__name__", "up"), label("job", "a")],
        &[(1000, 1.0), (2000, 2.0)],
    );
    assert_eq!(s.post(&good, PROTO, SNAPPY).0, 204);

    let cases: Vec<BadCase> = vec![
        (
            "json content type",
            good.clone(),
            Some("application/json"),
            SNAPPY,
            415,
            "content type",
        ),
        (
            "gzip encoding",
            good.clone(),
            PROTO,
            Some("gzip"),
            415,
            "encoding",
        ),
        (
            "unknown proto",
            good.clone(),
            Some("application/x-protobuf;proto=x.Y"),
            SNAPPY,
            415,
            "x.Y",
        ),
        (
            "bad snappy",
            b"\xff\xff\xff\xff\xff\xff\xff".to_vec(),
            PROTO,
            SNAPPY,
            400,
            "snappy",
        ),
        (
            "malformed protobuf",
            snap::raw::Encoder::new()
                .compress_vec(b"\x0a\xff\xff\xff\xff\x0f")
                .unwrap(),
            PROTO,
            SNAPPY,
            400,
            "WriteRequest",
        ),
        ("oversized body", vec![0u8; 100_000], PROTO, SNAPPY, 413, ""),
        (
            "unsorted labels",
            request(
                vec![label("job", "a"), label("__name__", "up")],
                &[(3000, 1.0)],
            ),
            PROTO,
            SNAPPY,
            400,
            "not sorted",
        ),
        (
            "duplicate label",
            request(
                vec![label("__name__", "up"), label("a", "1"), label("a", "2")],
                &[(3000, 1.0)],
            ),
            PROTO,
            SNAPPY,
            400,
            "duplicate label name",
        ),
        (
            "invalid UTF-8 value",
            request(
                vec![
                    label("__name__", "up"),
                    Label {
                        name: b"a".to_vec(),
                        value: vec![0xc3, 0x28],
                    },
                ],
                &[(3000, 1.0)],
            ),
            PROTO,
            SNAPPY,
            400,
            "UTF-8",
        ),
        (
            "out of order sample",
            request(
                vec![label("__name__", "up"), label("job", "a")],
                &[(1500, 5.0)],
            ),
            PROTO,
            SNAPPY,
            400,
            "out of order",
        ),
    ];
    for (what, body, ct, enc, code, needle) in cases {
        let (got, msg, _) = s.post(&body, ct, enc);
        assert_eq!(got, code, "{what}: {msg}");
        assert!(
            msg.contains(needle),
            "{what}: message {msg:?} lacks {needle:?}"
        );
        assert_eq!(
            s.get("/-/healthy").0,
            200,
            "server still serving after {what}"
        );
    }

    // Remote write 2.0 answers with the written-samples header.
    let v2 = ember_server::remote_write::proto::RequestV2 {
        symbols: ["", "__name__", "up", "job", "b"]
            .iter()
            .map(|x| x.as_bytes().to_vec())
            .collect(),
        timeseries: vec![ember_server::remote_write::proto::TimeSeriesV2 {
            labels_refs: vec![1, 2, 3, 4],
            samples: vec![ember_server::remote_write::proto::SampleV2 {
                value: 7.0,
                timestamp: 4000,
                start_timestamp: 0,
            }],
            ..Default::default()
        }],
    };
    let body = snap::raw::Encoder::new()
        .compress_vec(&v2.encode_to_vec())
        .unwrap();
    let (code, msg, written) = s.post(
        &body,
        Some("application/x-protobuf;proto=io.prometheus.write.v2.Request"),
        SNAPPY,
    );
    assert_eq!(code, 204, "{msg}");
    assert_eq!(written.as_deref(), Some("1"));
    s.stop();

    let db = ember::Db::open(dir.path(), ember::Options::default()).unwrap();
    let got: Vec<(String, Vec<(i64, f64)>)> = db
        .querier(0, 10_000)
        .select(&[])
        .into_iter()
        .map(|x| (x.labels().to_string(), x.samples().unwrap()))
        .collect();
    assert_eq!(
        got,
        vec![
            (r#"up{job="a"}"#.to_string(), vec![(1000, 1.0), (2000, 2.0)]),
            (r#"up{job="b"}"#.to_string(), vec![(4000, 7.0)]),
        ]
    );
}

#[test]
fn the_receiver_is_off_unless_enabled() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);
    let (code, msg, _) = s.post(
        &request(vec![label("__name__", "up")], &[(1, 1.0)]),
        PROTO,
        SNAPPY,
    );
    assert_eq!(code, 404);
    assert!(msg.contains("--web.enable-remote-write-receiver"), "{msg}");
    s.stop();
}

#[test]
fn a_stream_of_ten_times_the_series_limit_leaves_exactly_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(
        dir.path(),
        &[
            "--web.enable-remote-write-receiver",
            "--storage.tsdb.head-series-limit=50",
        ],
    );
    let mut refused_requests = 0;
    // 500 new series in 50 requests of 10.
    for batch in 0..50 {
        let req = WriteRequest {
            timeseries: (0..10)
                .map(|j| TimeSeries {
                    labels: vec![
                        label("__name__", "m"),
                        label("i", &(batch * 10 + j).to_string()),
                    ],
                    samples: vec![Sample {
                        value: 1.0,
                        timestamp: 1000,
                    }],
                    ..Default::default()
                })
                .collect(),
            metadata: vec![],
        };
        let body = snap::raw::Encoder::new()
            .compress_vec(&req.encode_to_vec())
            .unwrap();
        let (code, msg, _) = s.post(&body, PROTO, SNAPPY);
        if code == 400 {
            assert!(msg.contains("head series limit of 50"), "{msg}");
            refused_requests += 1;
        } else {
            assert_eq!(code, 204, "{msg}");
        }
    }
    assert_eq!(refused_requests, 45);
    // Existing series still ingest.
    let (code, msg, _) = s.post(
        &request(
            vec![label("__name__", "m"), label("i", "7")],
            &[(2000, 2.0)],
        ),
        PROTO,
        SNAPPY,
    );
    assert_eq!(code, 204, "{msg}");
    let metrics = s.get("/metrics").1;
    assert!(
        metrics.contains("prometheus_tsdb_head_series 50"),
        "{metrics}"
    );
    s.stop();
}
