//! Unit and property tests of the XOR codec: bit-exact round trips, Prometheus' byte choices, corrupt input.
use super::*;
use proptest::prelude::*;

fn encode(samples: &[(i64, u64)]) -> Vec<u8> {
    let mut a = XorAppender::new();
    for &(t, v) in samples {
        a.append(t, f64::from_bits(v));
    }
    a.into_bytes()
}

fn decode(bytes: &[u8]) -> Result<Vec<(i64, u64)>> {
    let mut it = XorIterator::new(bytes)?;
    let out: Vec<_> = it.by_ref().map(|(t, v)| (t, v.to_bits())).collect();
    match it.err.take() {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// `decode_into` yields the samples, the error and the exhausted state of a `next_sample` loop.
fn decode_into_matches_next_sample(bytes: &[u8]) -> std::result::Result<(), TestCaseError> {
    let (Ok(mut a), Ok(mut b)) = (XorIterator::new(bytes), XorIterator::new(bytes)) else {
        return Ok(());
    };
    let mut one_by_one = Vec::new();
    while let Some((t, v)) = a.next_sample() {
        one_by_one.push((t, v.to_bits()));
    }
    let mut batch = vec![(7, 7.0)];
    b.decode_into(&mut batch);
    let batch: Vec<(i64, u64)> = batch[1..].iter().map(|&(t, v)| (t, v.to_bits())).collect();
    prop_assert_eq!(batch, one_by_one);
    prop_assert_eq!(format!("{:?}", a.err()), format!("{:?}", b.err()));
    prop_assert_eq!(b.next_sample(), None);
    prop_assert_eq!(a.seek(i64::MIN), b.seek(i64::MIN));
    Ok(())
}

/// Positive timestamp deltas around a base of 1 000 000 ms such that two consecutive picks give a
/// delta of delta on and around every bucket boundary.
fn boundary_deltas() -> Vec<i64> {
    const BASE: i64 = 1_000_000;
    let mut out = vec![1, 2, BASE];
    for bits in [14u32, 17, 20] {
        let half = 1i64 << (bits - 1);
        for edge in [half - 1, half, half + 1] {
            out.push(BASE + edge);
            out.push(BASE - edge);
        }
    }
    out
}

fn timestamps() -> impl Strategy<Value = Vec<i64>> {
    let delta = prop_oneof![
        4 => 1i64..100_000,
        3 => proptest::sample::select(boundary_deltas()),
        1 => 1i64..=i64::MAX,
        1 => Just(1i64),
    ];
    (any::<i64>(), proptest::collection::vec(delta, 0..160)).prop_map(|(start, deltas)| {
        let mut ts = vec![start];
        let mut t = start;
        for d in deltas {
            // Deltas that would overflow are skipped, so series near i64::MAX keep going.
            if let Some(n) = t.checked_add(d) {
                ts.push(n);
                t = n;
            }
        }
        ts
    })
}

fn value_bits() -> impl Strategy<Value = u64> {
    prop_oneof![
        2 => any::<u64>(),
        2 => (0u32..4).prop_map(|i| [1.0f64, 1.5, 2.0, 100.25][i as usize].to_bits()),
        1 => proptest::sample::select(vec![
            f64::NAN.to_bits(),
            0x7ff0_0000_0000_0001, // signalling NaN payload
            0xfff8_dead_beef_0001, // negative quiet NaN with payload
            f64::INFINITY.to_bits(),
            f64::NEG_INFINITY.to_bits(),
            (-0.0f64).to_bits(),
            0,
            1,                     // smallest subnormal
            0x800f_ffff_ffff_ffff, // negative subnormal
            u64::MAX,
        ]),
        1 => (any::<u64>(), 0u32..64).prop_map(|(v, s)| v >> s),
    ]
}

fn series() -> impl Strategy<Value = Vec<(i64, u64)>> {
    timestamps().prop_flat_map(|ts| {
        let n = ts.len();
        (Just(ts), proptest::collection::vec(value_bits(), n))
            .prop_map(|(ts, vs)| ts.into_iter().zip(vs).collect())
    })
}

/// A deliberately naive second encoder, one `bool` per bit, written straight from the format
/// description; the real encoder must agree with it byte for byte.
fn reference_encode(samples: &[(i64, u64)]) -> Vec<u8> {
    fn push(bits: &mut Vec<bool>, v: u64, n: u32) {
        for i in (0..n).rev() {
            bits.push((v >> i) & 1 == 1);
        }
    }
    fn push_uvarint(bits: &mut Vec<bool>, mut x: u64) {
        loop {
            let low = x % 128;
            x /= 128;
            push(bits, if x > 0 { low + 128 } else { low }, 8);
            if x == 0 {
                return;
            }
        }
    }
    let mut bits = Vec::new();
    push(&mut bits, samples.len() as u64, 16);
    let mut window: Option<(u32, u32)> = None;
    let (mut pt, mut pv, mut pdelta) = (0i64, 0u64, 0i64);
    for (i, &(t, v)) in samples.iter().enumerate() {
        if i == 0 {
            let zz = if t >= 0 {
                (t as u64) * 2
            } else {
                (!(t as u64)) * 2 + 1
            };
            push_uvarint(&mut bits, zz);
            push(&mut bits, v, 64);
        } else {
            let delta = t.wrapping_sub(pt);
            if i == 1 {
                push_uvarint(&mut bits, delta as u64);
            } else {
                let dod = delta.wrapping_sub(pdelta);
                match dod {
                    0 => push(&mut bits, 0, 1),
                    -8191..=8192 => push(&mut bits, (0b10 << 14) | (dod as u64 % (1 << 14)), 16),
                    -65535..=65536 => push(&mut bits, (0b110 << 17) | (dod as u64 % (1 << 17)), 20),
                    -524287..=524288 => {
                        push(&mut bits, (0b1110 << 20) | (dod as u64 % (1 << 20)), 24)
                    }
                    _ => {
                        push(&mut bits, 0b1111, 4);
                        push(&mut bits, dod as u64, 64);
                    }
                }
            }
            let x = v ^ pv;
            if x == 0 {
                push(&mut bits, 0, 1);
            } else {
                let lead = x.leading_zeros().min(31);
                let trail = x.trailing_zeros();
                match window {
                    Some((l, tr)) if lead >= l && trail >= tr => {
                        push(&mut bits, 0b10, 2);
                        for b in (tr..64 - l).rev() {
                            bits.push((x >> b) & 1 == 1);
                        }
                    }
                    _ => {
                        window = Some((lead, trail));
                        let sig = 64 - lead - trail;
                        push(&mut bits, 0b11, 2);
                        push(&mut bits, u64::from(lead), 5);
                        push(&mut bits, u64::from(sig % 64), 6);
                        for b in (trail..64 - lead).rev() {
                            bits.push((x >> b) & 1 == 1);
                        }
                    }
                }
            }
            pdelta = delta;
        }
        pt = t;
        pv = v;
    }
    bits.chunks(8)
        .map(|c| {
            c.iter()
                .enumerate()
                .fold(0u8, |acc, (i, &b)| acc | (u8::from(b) << (7 - i)))
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn matches_reference_encoder(samples in series()) {
        prop_assert_eq!(encode(&samples), reference_encode(&samples));
    }

    #[test]
    fn round_trip_is_bit_exact(samples in series()) {
        let mut a = XorAppender::new();
        for (i, &(t, v)) in samples.iter().enumerate() {
            a.append(t, f64::from_bits(v));
            let snapshot = a.to_bytes();
            prop_assert_eq!(snapshot.len(), a.size_bytes());
            prop_assert_eq!(decode(&snapshot).unwrap(), samples[..=i].to_vec());
        }
        prop_assert_eq!(a.num_samples() as usize, samples.len());
        let bytes = a.into_bytes();
        prop_assert_eq!(bytes.capacity(), bytes.len());
        prop_assert_eq!(decode(&bytes).unwrap(), samples.clone());
    }

    #[test]
    fn resume_mid_way_is_bit_exact(samples in series(), cut in any::<prop::sample::Index>()) {
        let cut = cut.index(samples.len() + 1);
        let first = encode(&samples[..cut]);
        let mut a = XorAppender::from_bytes(first.clone()).unwrap();
        prop_assert_eq!(a.to_bytes(), first.clone());
        prop_assert_eq!(a.num_samples() as usize, cut);
        for &(t, v) in &samples[cut..] {
            a.append(t, f64::from_bits(v));
        }
        let bytes = a.into_bytes();
        prop_assert_eq!(decode(&bytes).unwrap(), samples.clone());
        // The resumed chunk starts with the prefix's bits, unchanged.
        let whole_bytes = first.len() - 1;
        prop_assert_eq!(&bytes[2..whole_bytes.max(2)], &first[2..whole_bytes.max(2)]);
    }

    #[test]
    fn seek_finds_first_at_or_after(samples in series(), probe in any::<prop::sample::Index>(), off in -2i64..=2) {
        let bytes = encode(&samples);
        let target = samples[probe.index(samples.len())].0.saturating_add(off);
        let expect = samples.iter().find(|s| s.0 >= target).copied();
        let mut it = XorIterator::new(&bytes).unwrap();
        let got = it.seek(target).map(|(t, v)| (t, v.to_bits()));
        prop_assert_eq!(got, expect);
        // Seeking again to the same or an earlier time stays put.
        prop_assert_eq!(it.seek(target).map(|(t, v)| (t, v.to_bits())), expect);
        prop_assert_eq!(it.seek(i64::MIN).map(|(t, v)| (t, v.to_bits())), expect);
        if let Some((t, _)) = expect {
            let rest: Vec<_> = it.map(|(t, v)| (t, v.to_bits())).collect();
            let after: Vec<_> = samples.iter().filter(|s| s.0 > t).copied().collect();
            prop_assert_eq!(rest, after);
        }
    }

    #[test]
    fn decode_into_equals_next_sample_on_valid_chunks(samples in series()) {
        decode_into_matches_next_sample(&encode(&samples))?;
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200), target in any::<i64>()) {
        if let Ok(mut it) = XorIterator::new(&bytes) {
            let n = it.by_ref().count();
            prop_assert!(n <= it.num_samples() as usize);
            prop_assert!(n == it.num_samples() as usize || it.err().is_some());
        }
        if let Ok(mut it) = XorIterator::new(&bytes) {
            it.seek(target);
            while it.next_sample().is_some() {}
        }
        decode_into_matches_next_sample(&bytes)?;
        if let Ok(mut a) = XorAppender::from_bytes(bytes.clone()) {
            let t = decode(&a.to_bytes()).unwrap().last().map_or(0, |s| s.0);
            let room = a.num_samples() < u16::MAX;
            if let Some(t2) = t.checked_add(1).filter(|_| room) {
                a.append(t2, 1.0);
                prop_assert!(decode(&a.to_bytes()).is_ok());
            }
        }
    }
}

#[test]
fn empty_chunk_is_the_header() {
    let a = XorAppender::new();
    assert_eq!(a.size_bytes(), 2);
    assert_eq!(a.to_bytes(), vec![0, 0]);
    assert_eq!(decode(&a.into_bytes()).unwrap(), vec![]);
    let a = XorAppender::from_bytes(vec![0, 0]).unwrap();
    assert_eq!(a.num_samples(), 0);
}

#[test]
fn short_input_is_an_error() {
    for bytes in [&[][..], &[0u8][..]] {
        assert!(matches!(
            XorIterator::new(bytes),
            Err(Error::CorruptChunk { .. })
        ));
        assert!(XorAppender::from_bytes(bytes.to_vec()).is_err());
    }
}

#[test]
fn bucket_edges_match_prometheus_bit_range() {
    // bitRange(x, n): -(2^(n-1) - 1) <= x <= 2^(n-1).
    assert!(bit_range(8192, 14) && bit_range(-8191, 14));
    assert!(!bit_range(8193, 14) && !bit_range(-8192, 14));
    assert!(bit_range(65536, 17) && !bit_range(-65536, 17));
    assert!(bit_range(524288, 20) && !bit_range(524289, 20));
    for (dod, len) in [
        (8192i64, 16usize),
        (-8191, 16),
        (8193, 20),
        (-8192, 20),
        (524288, 24),
        (-524288, 68),
    ] {
        let mut a = XorAppender::new();
        a.append(0, 0.0);
        a.append(1_000_000, 0.0);
        let before = a.w.len_bits();
        a.append(2_000_000 + dod, 0.0);
        assert_eq!(a.w.len_bits() - before, len + 1, "dod {dod}");
        assert_eq!(decode(&a.to_bytes()).unwrap()[2].0, 2_000_000 + dod);
    }
}

#[test]
fn extreme_timestamps_round_trip() {
    let samples = [
        (i64::MIN, 0),
        (i64::MIN + 1, 1),
        (0, 2),
        (i64::MAX - 1, 3),
        (i64::MAX, 4),
    ];
    assert_eq!(decode(&encode(&samples)).unwrap(), samples.to_vec());
}

#[test]
fn resumed_window_matches_prometheus() {
    // Prometheus rebuilds the appender from its iterator, whose window starts at 0/0; a chunk holding
    // only equal values therefore continues with '10' and 64 significant bits.
    let mut a = XorAppender::new();
    a.append(1, 1.0);
    a.append(2, 1.0);
    let mut fresh = a.clone();
    let mut resumed = XorAppender::from_bytes(a.to_bytes()).unwrap();
    let before = resumed.w.len_bits();
    fresh.append(3, 2.0);
    resumed.append(3, 2.0);
    assert_eq!(fresh.w.len_bits() - before, 1 + 2 + 5 + 6 + 11);
    assert_eq!(resumed.w.len_bits() - before, 1 + 2 + 64);
    assert_eq!(
        decode(&resumed.to_bytes()).unwrap(),
        decode(&fresh.to_bytes()).unwrap()
    );
}

#[test]
fn resume_ignores_trailing_garbage() {
    let mut bytes = encode(&[(1, 0), (2, 5.0f64.to_bits())]);
    let n = bytes.len();
    bytes[n - 1] |= 0x01; // a padding bit set by someone else
    bytes.extend_from_slice(&[0xff, 0xee]);
    let mut a = XorAppender::from_bytes(bytes).unwrap();
    assert_eq!(a.size_bytes(), n);
    a.append(3, 6.0);
    assert_eq!(
        decode(&a.to_bytes()).unwrap(),
        vec![(1, 0), (2, 5.0f64.to_bits()), (3, 6.0f64.to_bits())]
    );
}

#[test]
#[should_panic(expected = "capacity exceeded")]
fn append_past_capacity_panics() {
    let mut a = XorAppender::new();
    for t in 0..=i64::from(u16::MAX) {
        a.append(t, 0.0);
    }
}

#[test]
fn full_chunk_decodes() {
    let mut a = XorAppender::new();
    for t in 0..i64::from(u16::MAX) {
        a.append(t * 15, (t % 7) as f64);
    }
    let bytes = a.into_bytes();
    assert_eq!(&bytes[..2], &[0xff, 0xff]);
    let it = XorIterator::new(&bytes).unwrap();
    assert_eq!(it.count(), 65535);
}

#[test]
fn truncated_chunks_report_corruption() {
    let samples: Vec<(i64, u64)> = (0..50)
        .map(|i| (i * 15_000 + (i * i) % 7, (i as f64 * 1.37).to_bits()))
        .collect();
    let bytes = encode(&samples);
    for len in 2..bytes.len() {
        let mut it = XorIterator::new(&bytes[..len]).unwrap();
        let n = it.by_ref().count();
        assert!(n < samples.len(), "len {len}");
        match it.err() {
            Some(Error::CorruptChunk { bit_offset, .. }) => assert!(*bit_offset <= len * 8),
            other => panic!("len {len}: expected CorruptChunk, got {other:?}"),
        }
        assert_eq!(it.next_sample(), None);
        assert!(XorAppender::from_bytes(bytes[..len].to_vec()).is_err());
    }
}

#[test]
fn count_larger_than_data_reports_corruption() {
    let mut bytes = encode(&[(1000, 1.0f64.to_bits()), (2000, 2.0f64.to_bits())]);
    bytes[0] = 0x01; // 258 samples claimed
    let mut it = XorIterator::new(&bytes).unwrap();
    assert_eq!(it.num_samples(), 258);
    let got: Vec<_> = it.by_ref().collect();
    assert!(got.len() >= 2 && got.len() < 258);
    assert!(matches!(it.err(), Some(Error::CorruptChunk { .. })));
    // A header-only chunk claiming samples fails on the first one.
    let mut it = XorIterator::new(&[0, 1]).unwrap();
    assert_eq!(it.next_sample(), None);
    assert!(matches!(
        it.err(),
        Some(Error::CorruptChunk { bit_offset: 16, .. })
    ));
}

#[test]
fn bad_window_and_varint_are_errors() {
    // Sample 1 value field '11' + leading 31 + sig 40: 71 bits, impossible.
    let mut w = BitWriter::new(vec![0, 2]);
    w.write_bits(0, 8); // t0 = 0
    w.write_bits(0, 64); // v0 = 0.0
    w.write_bits(1, 8); // delta 1
    w.write_bits((0b11 << 11) | (31 << 6) | 40, 13);
    w.write_bits(0, 40);
    let bytes = w.to_vec();
    let mut it = XorIterator::new(&bytes).unwrap();
    assert!(it.next_sample().is_some());
    assert!(it.next_sample().is_none());
    assert!(matches!(
        it.err(),
        Some(Error::CorruptChunk {
            reason: ERR_WINDOW,
            ..
        })
    ));
    // An 11-byte varint.
    let mut bytes = vec![0, 1];
    bytes.extend_from_slice(&[0xff; 11]);
    let mut it = XorIterator::new(&bytes).unwrap();
    assert!(it.next_sample().is_none());
    assert!(matches!(
        it.err(),
        Some(Error::CorruptChunk {
            reason: ERR_VARINT,
            ..
        })
    ));
}

#[test]
fn size_hint_bounds_remaining() {
    let bytes = encode(&[(1, 0), (2, 0), (3, 0)]);
    let mut it = XorIterator::new(&bytes).unwrap();
    it.next();
    assert_eq!(it.size_hint(), (0, Some(2)));
}
