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
    let out = write(&db, Protocol::V1, &body).unwrap();
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

/// The fields the receiver uses from a 1.0 request, from prost's decoder (the reference).
type Reference = Vec<(Vec<(Vec<u8>, Vec<u8>)>, Vec<(i64, u64)>, usize, usize)>;

fn reference_v1(bytes: &[u8]) -> Option<Reference> {
    let req = WriteRequest::decode(bytes).ok()?;
    Some(
        req.timeseries
            .into_iter()
            .map(|ts| {
                (
                    ts.labels.into_iter().map(|l| (l.name, l.value)).collect(),
                    ts.samples
                        .iter()
                        .map(|s| (s.timestamp, s.value.to_bits()))
                        .collect(),
                    ts.histograms.len(),
                    ts.exemplars.len(),
                )
            })
            .collect(),
    )
}

fn wire_v1(bytes: &[u8]) -> Option<Reference> {
    let batch = decode_v1(bytes).ok()?;
    Some(
        batch
            .series()
            .map(|s| {
                (
                    s.labels
                        .unwrap()
                        .iter()
                        .map(|(n, v)| (n.to_vec(), v.to_vec()))
                        .collect(),
                    s.samples.iter().map(|&(t, v)| (t, v.to_bits())).collect(),
                    s.histograms,
                    s.exemplars,
                )
            })
            .collect(),
    )
}

#[test]
fn wire_decoder_agrees_with_prost_on_edge_cases() {
    let full = WriteRequest {
        timeseries: vec![TimeSeries {
            labels: vec![label("__name__", "up"), label("", "")],
            samples: vec![Sample {
                value: f64::NAN,
                timestamp: -5,
            }],
            exemplars: vec![Exemplar {
                labels: vec![label("trace_id", "x")],
                value: 1.0,
                timestamp: 2,
            }],
            histograms: vec![HistogramStub { timestamp: 7 }],
        }],
        metadata: vec![MetricMetadata {
            r#type: 1,
            metric_family_name: "up".into(),
            help: "h".into(),
            unit: String::new(),
        }],
    }
    .encode_to_vec();
    let cases: Vec<Vec<u8>> = vec![
        full.clone(),
        full[..full.len() - 1].to_vec(),
        vec![],
        // Unknown fields of every wire type at the top level, a group included.
        b"\x10\x01\x19\x01\x02\x03\x04\x05\x06\x07\x08\x22\x00\x2b\x08\x01\x2c\x35\x01\x02\x03\x04"
            .to_vec(),
        // Mismatched end group, stray end group, tag 0, wire types 6 and 7.
        b"\x2b\x34".to_vec(),
        b"\x2c".to_vec(),
        b"\x00\x00".to_vec(),
        b"\x0e".to_vec(),
        b"\x0f".to_vec(),
        // A ten-byte varint whose last byte overflows 64 bits, and one that does not.
        b"\x10\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02".to_vec(),
        b"\x10\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01".to_vec(),
        // timeseries with the wrong wire type; a label repeated field-wise (last wins).
        b"\x08\x01".to_vec(),
        b"\x0a\x0a\x0a\x08\x0a\x01a\x0a\x01b\x12\x01c".to_vec(),
        // A sample whose double is cut short; a metadata string that is not UTF-8.
        b"\x0a\x05\x12\x03\x09\x00\x00".to_vec(),
        b"\x1a\x03\x12\x01\xff".to_vec(),
        // Groups nested past the recursion limit.
        [vec![0x2b; 120], vec![0x2c; 120]].concat(),
        [vec![0x2b; 90], vec![0x2c; 90]].concat(),
    ];
    for (i, c) in cases.iter().enumerate() {
        assert_eq!(wire_v1(c), reference_v1(c), "case {i}: {c:02x?}");
    }
}

proptest::proptest! {
    #[test]
    fn wire_decoder_agrees_with_prost_on_mutated_requests(
        series in proptest::collection::vec(
            (
                proptest::collection::vec(("[a-z_]{0,4}", "[a-z]{0,3}"), 0..4),
                proptest::collection::vec((proptest::num::i64::ANY, proptest::num::f64::ANY), 0..3),
                0..2usize,
                0..2usize,
            ),
            0..4,
        ),
        edits in proptest::collection::vec((proptest::num::usize::ANY, proptest::num::u8::ANY), 0..3),
        cut in proptest::option::of(proptest::num::usize::ANY),
    ) {
        let req = WriteRequest {
            timeseries: series
                .into_iter()
                .map(|(labels, samples, h, e)| TimeSeries {
                    labels: labels.iter().map(|(n, v)| label(n, v)).collect(),
                    samples: samples
                        .into_iter()
                        .map(|(timestamp, value)| Sample { value, timestamp })
                        .collect(),
                    histograms: vec![HistogramStub { timestamp: 3 }; h],
                    exemplars: vec![
                        Exemplar {
                            labels: vec![label("t", "1")],
                            value: 1.0,
                            timestamp: 1
                        };
                        e
                    ],
                })
                .collect(),
            metadata: vec![],
        };
        let mut bytes = req.encode_to_vec();
        if !bytes.is_empty() {
            for (at, b) in edits {
                let n = bytes.len();
                bytes[at % n] = b;
            }
            if let Some(c) = cut {
                bytes.truncate(c % (bytes.len() + 1));
            }
        }
        proptest::prop_assert_eq!(wire_v1(&bytes), reference_v1(&bytes));
    }
}

#[test]
fn a_known_series_is_still_refused_when_its_labels_break_the_rules() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), ember::Options::default()).unwrap();
    let ok = v1(vec![(
        vec![label("__name__", "up"), label("job", "a")],
        vec![(1000, 1.0)],
    )]);
    assert!(!write(&db, Protocol::V1, &ok).unwrap().has_rejections());
    // Each spells the stored set once empty values are dropped, but is invalid as sent.
    let bad_name = Label {
        name: vec![0xff],
        value: vec![],
    };
    let cases = vec![
        vec![label("", ""), label("__name__", "up"), label("job", "a")],
        vec![label("__name__", "up"), label("job", "a"), bad_name],
        vec![label("__name__", "up"), label("job", "a"), label("job", "")],
        vec![label("job", "a"), label("__name__", "up")],
    ];
    for (i, labels) in cases.into_iter().enumerate() {
        let body = v1(vec![(labels, vec![(2000 + i as i64, 1.0)])]);
        let out = write(&db, Protocol::V1, &body).unwrap();
        assert_eq!(
            (out.series_rejected, out.samples_written),
            (1, 0),
            "case {i}"
        );
    }
    let no_name = v1(vec![(
        vec![label("__name__", ""), label("job", "a")],
        vec![(3000, 1.0)],
    )]);
    assert_eq!(
        write(&db, Protocol::V1, &no_name).unwrap().series_rejected,
        1
    );
    // The same set with an empty-valued extra label is the stored series.
    let extra = v1(vec![(
        vec![label("__name__", "up"), label("a", ""), label("job", "a")],
        vec![(4000, 2.0)],
    )]);
    let out = write(&db, Protocol::V1, &extra).unwrap();
    assert_eq!((out.samples_written, out.series_rejected), (1, 0));
    assert_eq!(db.stats().num_series, 1);
}

#[test]
fn every_sample_of_known_and_new_series_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), ember::Options::default()).unwrap();
    let names: Vec<String> = (0..50).map(|i| format!("s{i}")).collect();
    let request = |from: i64, per_entry: i64| {
        let mut series = Vec::new();
        for n in &names {
            for chunk in (from..from + 20)
                .collect::<Vec<_>>()
                .chunks(per_entry as usize)
            {
                series.push((
                    vec![label("__name__", "load"), label("series", n)],
                    chunk.iter().map(|&i| (i * 1000, i as f64)).collect(),
                ));
            }
        }
        v1(series)
    };
    // New series (built and validated), then known ones with many samples per entry, then one sample
    // per entry as Prometheus sends.
    for (from, per_entry) in [(0, 20), (20, 20), (40, 1)] {
        let out = write(&db, Protocol::V1, &request(from, per_entry)).unwrap();
        assert_eq!((out.samples_written, out.has_rejections()), (1000, false));
    }
    let got = db
        .querier(0, 100_000)
        .select(&[ember::Matcher::equal("__name__", "load")]);
    assert_eq!(got.len(), 50);
    for s in &got {
        let want: Vec<(i64, f64)> = (0..60).map(|i| (i * 1000, i as f64)).collect();
        assert_eq!(s.samples().unwrap(), want);
    }
}
