//! Fuzzes the XOR chunk codec two ways with every input:
//!
//! 1. The input as chunk bytes: iterating, seeking and resuming must never panic, must stop within the
//!    header's sample count, and must report an error whenever it stops early.
//! 2. The input as a sample sequence: encoding then decoding must give back every timestamp and every
//!    value bit pattern exactly, also when appending resumes from the bytes of a prefix.
#![no_main]

use ember::chunkenc::{XorAppender, XorIterator};
use libfuzzer_sys::fuzz_target;

/// Little-endian reader over the fuzz input that yields zeros once the input is used up.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take::<1>().map(|[b]| b)
    }
    fn u16(&mut self) -> Option<u16> {
        self.take().map(u16::from_le_bytes)
    }
    fn u32(&mut self) -> Option<u32> {
        self.take().map(u32::from_le_bytes)
    }
    fn u64(&mut self) -> Option<u64> {
        self.take().map(u64::from_le_bytes)
    }
}

fn check_raw_bytes(data: &[u8]) {
    let Ok(mut it) = XorIterator::new(data) else {
        assert!(data.len() < 2);
        return;
    };
    let total = usize::from(it.num_samples());
    let mut n = 0;
    let mut last = None;
    while let Some((t, _)) = it.next_sample() {
        n += 1;
        last = Some(t);
    }
    assert!(n <= total);
    assert!(
        n == total || it.err().is_some(),
        "stopped early without an error"
    );
    assert_eq!(it.next_sample(), None);

    // Seek to a timestamp taken from the input, then drain.
    let target = data
        .get(2..10)
        .map_or(0, |b| i64::from_le_bytes(b.try_into().unwrap()));
    let mut it = XorIterator::new(data).unwrap();
    if let Some((t, _)) = it.seek(target) {
        assert!(t >= target);
        // Seeking backwards stays put.
        assert_eq!(it.seek(i64::MIN).map(|s| s.0), Some(t));
    }
    while it.next_sample().is_some() {}

    // Resuming from bytes that decode completely must keep those samples and accept one more.
    if let Ok(mut a) = XorAppender::from_bytes(data.to_vec()) {
        assert_eq!(usize::from(a.num_samples()), n);
        let room = a.num_samples() < u16::MAX;
        if let Some(t) = last.and_then(|t| t.checked_add(1)).filter(|_| room) {
            a.append(t, f64::NAN);
            let bytes = a.into_bytes();
            let mut it = XorIterator::new(&bytes).unwrap();
            assert_eq!(it.by_ref().count(), n + 1);
            assert!(it.err().is_none());
        }
    }
}

/// Reads a strictly increasing sample sequence from the input. Each sample takes a selector byte that
/// picks the size class of the timestamp delta (so every delta-of-delta bucket is reached) and how the
/// value relates to the previous one (repeat, small mantissa change, or arbitrary bits).
fn samples_from(data: &[u8]) -> Vec<(i64, u64)> {
    let mut inp = Input(data);
    let Some(start) = inp.u64() else {
        return Vec::new();
    };
    let mut t = start as i64;
    let mut v = 0u64;
    let mut delta = 15_000i64;
    let mut out = Vec::new();
    while let Some(sel) = inp.u8() {
        let new_delta = match sel & 0x7 {
            0 | 1 => Some(delta),
            2 => inp.u8().map(|d| delta.saturating_add(i64::from(d as i8))),
            3 => inp.u16().map(|d| delta.saturating_add(i64::from(d as i16))),
            4 => inp.u32().map(|d| delta.saturating_add(i64::from(d as i32))),
            5 => inp.u32().map(|d| i64::from(d >> 12) + 1),
            _ => inp.u64().map(|d| (d >> 1) as i64),
        };
        let Some(new_delta) = new_delta else { break };
        let new_delta = new_delta.max(1);
        let Some(next_t) = t.checked_add(new_delta) else {
            continue;
        };
        v = match (sel >> 3) & 0x3 {
            0 => v,
            1 => match inp.u8() {
                Some(d) => v ^ u64::from(d),
                None => break,
            },
            2 => match inp.u16() {
                Some(d) => v ^ (u64::from(d) << (sel >> 5)),
                None => break,
            },
            _ => match inp.u64() {
                Some(d) => d,
                None => break,
            },
        };
        if out.len() == usize::from(u16::MAX) {
            break;
        }
        out.push((next_t, v));
        t = next_t;
        delta = new_delta;
    }
    out
}

fn decode(bytes: &[u8]) -> Vec<(i64, u64)> {
    let mut it = XorIterator::new(bytes).unwrap();
    let out: Vec<_> = it.by_ref().map(|(t, v)| (t, v.to_bits())).collect();
    assert!(
        it.err().is_none(),
        "own chunk failed to decode: {:?}",
        it.err()
    );
    out
}

fn check_round_trip(data: &[u8]) {
    let samples = samples_from(data);
    let mut a = XorAppender::new();
    for &(t, v) in &samples {
        a.append(t, f64::from_bits(v));
    }
    assert_eq!(usize::from(a.num_samples()), samples.len());
    assert_eq!(a.size_bytes(), a.to_bytes().len());
    let bytes = a.into_bytes();
    assert_eq!(decode(&bytes), samples);

    // Resume half way through and append the rest.
    let cut = samples.len() / 2;
    let mut head = XorAppender::new();
    for &(t, v) in &samples[..cut] {
        head.append(t, f64::from_bits(v));
    }
    let mut resumed = XorAppender::from_bytes(head.into_bytes()).unwrap();
    for &(t, v) in &samples[cut..] {
        resumed.append(t, f64::from_bits(v));
    }
    assert_eq!(decode(&resumed.into_bytes()), samples);
}

fuzz_target!(|data: &[u8]| {
    check_raw_bytes(data);
    check_round_trip(data);
});
