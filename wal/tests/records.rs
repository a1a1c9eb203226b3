//! Record encodings: round trips, edge values, rejection of malformed input.

use ember_index::{Label, Labels};
use ember_wal::Error;
use ember_wal::record::{
    RecordType, RefSample, RefSeries, Tombstone, decode_samples, decode_series, decode_tombstones,
    encode_samples, encode_series, encode_tombstones, record_type,
};
use proptest::prelude::*;

fn labels_strategy() -> impl Strategy<Value = Labels> {
    prop::collection::btree_map(
        any::<String>().prop_filter("names are non-empty", |s| !s.is_empty()),
        any::<String>(),
        0..8,
    )
    .prop_map(|m| Labels::new(m.into_iter().map(|(n, v)| Label::new(n, v)).collect()).unwrap())
}

fn i64_edgy() -> impl Strategy<Value = i64> {
    prop_oneof![
        Just(i64::MIN),
        Just(i64::MAX),
        Just(0i64),
        Just(-1i64),
        any::<i64>()
    ]
}

fn u64_edgy() -> impl Strategy<Value = u64> {
    prop_oneof![Just(u64::MAX), Just(0u64), Just(1u64 << 63), any::<u64>()]
}

proptest! {
    #[test]
    fn series_round_trip(
        series in prop::collection::vec((u64_edgy(), labels_strategy()), 0..10),
        prefix in 0usize..3,
    ) {
        let series: Vec<RefSeries> = series.into_iter().map(|(r, labels)| RefSeries { r, labels }).collect();
        let mut buf = Vec::new();
        encode_series(&series, &mut buf);
        prop_assert_eq!(record_type(&buf), RecordType::Series);
        // decode appends to whatever is already there
        let existing = RefSeries { r: 7, labels: Labels::empty() };
        let mut out = vec![existing.clone(); prefix];
        decode_series(&buf, &mut out).unwrap();
        prop_assert_eq!(&out[..prefix], &vec![existing; prefix][..]);
        prop_assert_eq!(&out[prefix..], &series[..]);
    }

    #[test]
    fn samples_round_trip_with_wrapping_deltas(
        samples in prop::collection::vec((u64_edgy(), i64_edgy(), any::<u64>()), 0..200),
    ) {
        let samples: Vec<RefSample> = samples
            .into_iter()
            .map(|(r, t, bits)| RefSample { r, t, v: f64::from_bits(bits) })
            .collect();
        let mut buf = Vec::new();
        encode_samples(&samples, &mut buf);
        prop_assert_eq!(record_type(&buf), RecordType::Samples);
        let mut out = Vec::new();
        decode_samples(&buf, &mut out).unwrap();
        prop_assert_eq!(out.len(), samples.len());
        for (a, b) in out.iter().zip(&samples) {
            // Compare value bits: NaN payloads must survive too.
            prop_assert_eq!((a.r, a.t, a.v.to_bits()), (b.r, b.t, b.v.to_bits()));
        }
    }

    #[test]
    fn tombstones_round_trip_one_interval_per_entry(
        stones in prop::collection::vec(
            (u64_edgy(), prop::collection::vec((i64_edgy(), i64_edgy()), 0..4)),
            0..20,
        ),
    ) {
        let stones: Vec<Tombstone> = stones.into_iter().map(|(r, intervals)| Tombstone { r, intervals }).collect();
        let mut buf = Vec::new();
        encode_tombstones(&stones, &mut buf);
        prop_assert_eq!(record_type(&buf), RecordType::Tombstones);
        let mut out = Vec::new();
        decode_tombstones(&buf, &mut out).unwrap();
        // Like Prometheus, each (ref, interval) is its own entry on disk.
        let flat = |ts: &[Tombstone]| -> Vec<(u64, i64, i64)> {
            ts.iter().flat_map(|t| t.intervals.iter().map(move |&(a, b)| (t.r, a, b))).collect()
        };
        prop_assert!(out.iter().all(|t| t.intervals.len() == 1));
        prop_assert_eq!(flat(&out), flat(&stones));
    }

    /// Decoders return errors, never panic, on arbitrary bytes.
    #[test]
    fn decoders_never_panic(typ in 0u8..5, body in prop::collection::vec(any::<u8>(), 0..300)) {
        let mut rec = vec![typ];
        rec.extend_from_slice(&body);
        let _ = decode_series(&rec, &mut Vec::new());
        let _ = decode_samples(&rec, &mut Vec::new());
        let _ = decode_tombstones(&rec, &mut Vec::new());
    }
}

#[test]
fn record_types_beyond_three_are_unknown() {
    assert_eq!(record_type(&[]), RecordType::Unknown(0));
    // Exemplars, mmap markers, metadata, histograms, samples v2, ...
    for t in [4u8, 5, 6, 7, 8, 9, 10, 11, 12, 13, 255] {
        assert_eq!(record_type(&[t, 0, 0]), RecordType::Unknown(t));
    }
}

#[test]
fn empty_samples_record_is_just_the_type_byte() {
    let mut buf = Vec::new();
    encode_samples(&[], &mut buf);
    assert_eq!(buf, [2]);
    let mut out = Vec::new();
    decode_samples(&buf, &mut out).unwrap();
    assert!(out.is_empty());
}

#[test]
fn series_with_invalid_utf8_is_rejected() {
    let mut rec = vec![1u8];
    rec.extend_from_slice(&5u64.to_be_bytes());
    rec.extend_from_slice(&[1, 1, b'a', 2, 0xff, 0xfe]);
    let err = decode_series(&rec, &mut Vec::new()).unwrap_err();
    assert!(
        matches!(err, Error::Record(ref m) if m.contains("UTF-8")),
        "{err}"
    );
}

#[test]
fn series_with_duplicate_names_is_rejected() {
    let mut rec = vec![1u8];
    rec.extend_from_slice(&5u64.to_be_bytes());
    rec.extend_from_slice(&[2, 1, b'a', 1, b'x', 1, b'a', 1, b'y']);
    assert!(decode_series(&rec, &mut Vec::new()).is_err());
}

#[test]
fn series_with_a_huge_label_count_is_rejected_without_allocating() {
    let mut rec = vec![1u8];
    rec.extend_from_slice(&5u64.to_be_bytes());
    rec.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]);
    assert!(decode_series(&rec, &mut Vec::new()).is_err());
}

#[test]
fn trailing_bytes_are_rejected() {
    let mut buf = Vec::new();
    encode_samples(&[RefSample { r: 1, t: 2, v: 3.0 }], &mut buf);
    buf.push(0);
    assert!(decode_samples(&buf, &mut Vec::new()).is_err());

    let mut buf = Vec::new();
    encode_tombstones(
        &[Tombstone {
            r: 1,
            intervals: vec![(1, 2)],
        }],
        &mut buf,
    );
    buf.extend_from_slice(&[0, 0, 0]);
    assert!(decode_tombstones(&buf, &mut Vec::new()).is_err());

    let mut buf = Vec::new();
    encode_series(
        &[RefSeries {
            r: 1,
            labels: Labels::from_pairs([("a", "b")]).unwrap(),
        }],
        &mut buf,
    );
    buf.push(9);
    assert!(decode_series(&buf, &mut Vec::new()).is_err());
}

#[test]
fn series_layout_matches_prometheus() {
    let mut buf = Vec::new();
    encode_series(
        &[RefSeries {
            r: 0x0102,
            labels: Labels::from_pairs([("job", "x"), ("a", "bc")]).unwrap(),
        }],
        &mut buf,
    );
    let mut want = vec![1u8];
    want.extend_from_slice(&0x0102u64.to_be_bytes());
    want.extend_from_slice(&[2, 1, b'a', 2, b'b', b'c', 3, b'j', b'o', b'b', 1, b'x']);
    assert_eq!(buf, want);
}

#[test]
fn tombstones_layout_matches_prometheus() {
    let mut buf = Vec::new();
    encode_tombstones(
        &[Tombstone {
            r: 9,
            intervals: vec![(-1, 1), (5, 6)],
        }],
        &mut buf,
    );
    let mut want = vec![3u8];
    for (a, b) in [(0x01u8, 0x02u8), (0x0a, 0x0c)] {
        want.extend_from_slice(&9u64.to_be_bytes());
        want.extend_from_slice(&[a, b]);
    }
    assert_eq!(buf, want);
}
