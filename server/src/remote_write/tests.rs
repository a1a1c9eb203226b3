use super::proto::*;
use super::*;
use prost::Message;

fn label(n: &str, v: &str) -> Label {
    Label {
        name: n.as_bytes().to_vec(),
        value: v.as_bytes().to_vec(),
    }
}

/// A series as a test writes it: labels in wire order, and (timestamp, value) samples.
type WireSeries = (Vec<Label>, Vec<(i64, f64)>);

fn v1(series: Vec<WireSeries>) -> Vec<u8> {
    WriteRequest {
        timeseries: series
            .into_iter()
            .map(|(labels, s)| TimeSeries {
                labels,
                samples: s
                    .into_iter()
                    .map(|(timestamp, value)| Sample { value, timestamp })
                    .collect(),
                ..Default::default()
            })
            .collect(),
        metadata: vec![],
    }
    .encode_to_vec()
}

#[test]
fn content_type_selects_the_protocol_and_unknown_types_are_refused() {
    assert_eq!(negotiate(None, None).unwrap(), Protocol::V1);
    assert_eq!(
        negotiate(Some("application/x-protobuf"), Some("snappy")).unwrap(),
        Protocol::V1
    );
    assert_eq!(
        negotiate(
            Some("application/x-protobuf;proto=prometheus.WriteRequest"),
            None
        )
        .unwrap(),
        Protocol::V1
    );
    assert_eq!(
        negotiate(
            Some("application/x-protobuf; proto=io.prometheus.write.v2.Request"),
            Some("snappy")
        )
        .unwrap(),
        Protocol::V2
    );
    assert!(matches!(
        negotiate(Some("application/json"), None),
        Err(WriteError::UnsupportedMediaType(_))
    ));
    assert!(matches!(
        negotiate(Some("application/x-protobuf;proto=foo.Bar"), None),
        Err(WriteError::UnsupportedMediaType(_))
    ));
    assert!(matches!(
        negotiate(None, Some("gzip")),
        Err(WriteError::UnsupportedMediaType(_))
    ));
}

#[test]
fn a_snappy_bomb_is_refused_before_decompressing() {
    // A valid snappy stream of 64 MiB of zeros compresses to ~3 MiB; with a 1 MiB limit it must be refused
    // from its declared length alone.
    let big = vec![0u8; 64 << 20];
    let compressed = snap::raw::Encoder::new().compress_vec(&big).unwrap();
    let limits = Limits {
        max_body_bytes: 32 << 20,
        max_decompressed_bytes: 1 << 20,
    };
    let err = decompress(&compressed, &limits).unwrap_err();
    assert!(matches!(err, WriteError::TooLarge(_)), "{err}");
    let err = decompress(
        &compressed,
        &Limits {
            max_body_bytes: 1000,
            max_decompressed_bytes: 1 << 30,
        },
    )
    .unwrap_err();
    assert!(matches!(err, WriteError::TooLarge(_)), "{err}");
}

#[test]
fn malformed_snappy_and_protobuf_are_bad_requests() {
    let err = decompress(b"\xff\xff\xff\xff\xff\xff", &Limits::default()).unwrap_err();
    assert!(
        matches!(err, WriteError::BadRequest(ref m) if m.contains("snappy")),
        "{err}"
    );
    let err = decode(Protocol::V1, b"\x0a\xff\xff\xff\xff\x0f").unwrap_err();
    assert!(
        matches!(err, WriteError::BadRequest(ref m) if m.contains("WriteRequest")),
        "{err}"
    );
}

#[test]
fn v1_round_trip_and_label_rules() {
    let body = v1(vec![
        (
            vec![label("__name__", "up"), label("job", "a")],
            vec![(1000, 1.0), (2000, 0.0)],
        ),
        (
            vec![label("job", "a"), label("__name__", "up")],
            vec![(1000, 1.0)],
        ),
        (
            vec![
                label("__name__", "up"),
                label("job", "a"),
                label("job", "b"),
            ],
            vec![(1000, 1.0)],
        ),
        (vec![label("job", "a")], vec![(1000, 1.0)]),
        (
            vec![
                label("__name__", "up"),
                Label {
                    name: b"job".to_vec(),
                    value: vec![0xff, 0xfe],
                },
            ],
            vec![(1000, 1.0)],
        ),
    ]);
    let s = decode(Protocol::V1, &body).unwrap();
    assert_eq!(s.len(), 5);
    assert_eq!(s[0].labels.as_ref().unwrap().to_string(), r#"up{job="a"}"#);
    assert_eq!(s[0].samples, vec![(1000, 1.0), (2000, 0.0)]);
    assert!(s[1].labels.as_ref().unwrap_err().contains("not sorted"));
    assert!(
        s[2].labels
            .as_ref()
            .unwrap_err()
            .contains("duplicate label name")
    );
    assert!(s[3].labels.as_ref().unwrap_err().contains("no metric name"));
    assert!(
        s[4].labels.as_ref().unwrap_err().contains("UTF-8"),
        "{:?}",
        s[4].labels
    );
}

#[test]
fn v2_resolves_symbols_and_refuses_bad_references() {
    let req = RequestV2 {
        symbols: ["", "__name__", "up", "job", "a"]
            .iter()
            .map(|s| s.as_bytes().to_vec())
            .collect(),
        timeseries: vec![
            TimeSeriesV2 {
                labels_refs: vec![1, 2, 3, 4],
                samples: vec![SampleV2 {
                    value: 1.0,
                    timestamp: 5,
                    start_timestamp: 0,
                }],
                ..Default::default()
            },
            TimeSeriesV2 {
                labels_refs: vec![1, 2, 3],
                ..Default::default()
            },
            TimeSeriesV2 {
                labels_refs: vec![1, 99],
                ..Default::default()
            },
        ],
    };
    let s = decode(Protocol::V2, &req.encode_to_vec()).unwrap();
    assert_eq!(s[0].labels.as_ref().unwrap().to_string(), r#"up{job="a"}"#);
    assert_eq!(s[0].samples, vec![(5, 1.0)]);
    assert!(s[1].labels.as_ref().unwrap_err().contains("odd number"));
    assert!(
        s[2].labels
            .as_ref()
            .unwrap_err()
            .contains("outside the symbol table")
    );
    let bad = RequestV2 {
        symbols: vec![b"x".to_vec()],
        timeseries: vec![],
    };
    assert!(matches!(
        decode(Protocol::V2, &bad.encode_to_vec()),
        Err(WriteError::BadRequest(_))
    ));
}

#[test]
fn apply_writes_valid_samples_and_reports_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), ember::Options::default()).unwrap();
    let body = v1(vec![
        (
            vec![label("__name__", "up"), label("job", "a")],
            vec![(1000, 1.0), (500, 2.0), (2000, 3.0)],
        ),
        (vec![label("job", "a")], vec![(1000, 1.0)]),
    ]);
    let out = apply(&db, decode(Protocol::V1, &body).unwrap()).unwrap();
    assert_eq!(out.samples_written, 2);
    assert_eq!(out.samples_rejected, 2);
    assert_eq!(out.series_rejected, 1);
    assert!(out.has_rejections());
    let msg = out.message();
    assert!(
        msg.contains("out of order") && msg.contains("no metric name"),
        "{msg}"
    );
    let got = db
        .querier(0, 10_000)
        .select(&[ember::Matcher::equal("job", "a")]);
    assert_eq!(got[0].samples().unwrap(), vec![(1000, 1.0), (2000, 3.0)]);
}
