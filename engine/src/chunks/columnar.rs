//! The columnar payload of a version 2 Ember zstd segment frame (`docs/format/chunk_segments.md`,
//! "Columnar frames").
//!
//! XOR chunks are bit-packed, so zstd finds little to squeeze in them. Before compressing a run of chunk
//! frames, [`encode`] decodes every XOR chunk to its samples and lays the run out as columns zstd does
//! well on: timestamps as deltas of deltas (almost all zero on regular scrapes), values as decimal
//! mantissa deltas when every value of the chunk is exactly `mantissa × 10^exponent`, otherwise as XORs
//! of consecutive bit patterns split into byte planes. [`decode`] turns the columns back into samples and
//! re-encodes each chunk with [`XorAppender`]; since XOR encoding is deterministic, that gives back the
//! original chunk frame byte for byte. [`encode`] checks exactly that for every chunk and keeps any chunk
//! that would not come back identical (other encodings, bytes written by another encoder, a CRC that
//! does not match) as its raw frame, so decoding never changes a byte.
//!
//! This module owns the payload's layout only; zstd, the frame table and checksums around it are
//! [`super::compressed`]'s. [`decode`] works on arbitrary bytes without panicking and bounds everything
//! it allocates by the frame's logical length.
#![deny(clippy::indexing_slicing, clippy::unwrap_used)]

use crate::chunkenc::{ENCODING_XOR, XorAppender, XorIterator};

use super::segment::parse_frame;

/// Kind of one chunk in the payload.
const KIND_RAW: u8 = 0;
const KIND_DECIMAL: u8 = 1;
const KIND_FLOAT: u8 = 2;

/// Mantissa streams: first differences, or second differences (better for steady counters).
const MODE_DELTA: u8 = 0;
const MODE_DELTA2: u8 = 1;

/// Exact powers of ten as `f64` (every one up to 10^22 is representable).
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];
const MAX_EXP: i32 = 22;
/// Mantissas stay within the integers an `f64` holds exactly, so `m as f64` is exact.
const MAX_MANTISSA: i64 = 1 << 53;

/// Most payload bytes a frame of `logical_len` chunk-frame bytes may have: the reader refuses larger
/// claims before decompressing, and the writer stores a run raw rather than exceed it.
pub fn max_payload(logical_len: usize) -> usize {
    logical_len.saturating_mul(4).saturating_add(4096)
}

/// What [`encode`] did with a run of chunks, for measurement.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct EncodeStats {
    pub decimal_chunks: u64,
    pub float_chunks: u64,
    pub raw_chunks: u64,
}

/// The value a decimal pair stands for: one correctly rounded IEEE operation on exact operands, so
/// the same bits on every platform.
fn decimal_value(m: i64, e: i32) -> Option<f64> {
    let p = *POW10.get(e.unsigned_abs() as usize)?;
    Some(if e >= 0 { m as f64 * p } else { m as f64 / p })
}

/// The smallest-exponent-first decimal form of `v` whose value has exactly `v`'s bits, if any.
fn to_decimal(v: f64) -> Option<(i64, i32)> {
    let bits = v.to_bits();
    if !v.is_finite() {
        return None;
    }
    if v == 0.0 {
        // -0.0 has no decimal form with these rules (0 × 10^e is +0.0).
        return (bits == 0).then_some((0, 0));
    }
    if v.fract() == 0.0 && v.abs() <= MAX_MANTISSA as f64 {
        let mut m = v as i64;
        let mut e = 0;
        while m % 10 == 0 && e < MAX_EXP {
            m /= 10;
            e += 1;
        }
        return (decimal_value(m, e).map(f64::to_bits) == Some(bits)).then_some((m, e));
    }
    if v.fract() == 0.0 {
        // Beyond 2^53: only a positive exponent can hold it.
        let mut m = v;
        let mut e = 0;
        while m.abs() > MAX_MANTISSA as f64 && e < MAX_EXP {
            m = (m / 10.0).round();
            e += 1;
        }
        let m = m as i64;
        return (decimal_value(m, e).map(f64::to_bits) == Some(bits)).then_some((m, e));
    }
    for k in 1..=MAX_EXP {
        let p = POW10.get(k as usize).copied().unwrap_or(1.0);
        let x = (v * p).round();
        if x.abs() > MAX_MANTISSA as f64 {
            return None;
        }
        let m = x as i64;
        if decimal_value(m, -k).map(f64::to_bits) == Some(bits) {
            return Some((m, -k));
        }
    }
    None
}

/// The mantissas of `values` at one common exponent, if every value has an exact decimal form there.
fn decimal_chunk(values: &[u64]) -> Option<(i32, Vec<i64>)> {
    let mut pairs = Vec::with_capacity(values.len());
    let mut exp: Option<i32> = None;
    for &b in values {
        let (m, e) = to_decimal(f64::from_bits(b))?;
        if m != 0 {
            exp = Some(exp.map_or(e, |x| x.min(e)));
        }
        pairs.push((m, e));
    }
    // All zeros: any exponent will do.
    let exp = exp.unwrap_or(0);
    let mut out = Vec::with_capacity(values.len());
    for (&(m, e), &b) in pairs.iter().zip(values) {
        let scale = POW10.get((e - exp).max(0) as usize)?;
        let m = if m == 0 {
            0
        } else {
            m.checked_mul(*scale as i64)?
        };
        if m.abs() > MAX_MANTISSA || decimal_value(m, exp).map(f64::to_bits) != Some(b) {
            return None;
        }
        out.push(m);
    }
    Some((exp, out))
}

fn zigzag(x: i64) -> u64 {
    ((x << 1) ^ (x >> 63)) as u64
}

fn unzigzag(u: u64) -> i64 {
    ((u >> 1) as i64) ^ -((u & 1) as i64)
}

fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn uvarint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

/// A chunk frame as Ember's writer lays it out: minimal length varint, encoding, data, CRC-32C.
fn frame_bytes(encoding: u8, data: &[u8], out: &mut Vec<u8>) {
    put_uvarint(out, data.len() as u64);
    out.push(encoding);
    out.extend_from_slice(data);
    let crc = crc32c::crc32c_append(crc32c::crc32c(&[encoding]), data);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// The samples of an XOR chunk frame, if re-encoding them gives back exactly `frame`.
fn canonical_samples(frame: &[u8]) -> Option<Vec<(i64, u64)>> {
    let (chunk, end) = parse_frame(frame, 0).ok()?;
    if chunk.encoding != ENCODING_XOR || end != frame.len() {
        return None;
    }
    let mut it = XorIterator::new(chunk.data).ok()?;
    let mut samples = Vec::with_capacity(usize::from(it.num_samples()));
    while let Some((t, v)) = it.next_sample() {
        samples.push((t, v.to_bits()));
    }
    if it.err().is_some() {
        return None;
    }
    let mut rebuilt = Vec::with_capacity(frame.len());
    frame_bytes(ENCODING_XOR, &reencode(&samples), &mut rebuilt);
    (rebuilt == frame).then_some(samples)
}

fn reencode(samples: &[(i64, u64)]) -> Vec<u8> {
    let mut app = XorAppender::new();
    for &(t, v) in samples {
        app.append(t, f64::from_bits(v));
    }
    app.into_bytes()
}

/// Column state carried from one chunk to the next within a frame: consecutive chunks usually belong to
/// the same series, so the first sample of a chunk is coded against the last one of the previous chunk.
#[derive(Default)]
struct Carry {
    t: i64,
    dt: i64,
    m: i64,
    dm: i64,
    float: u64,
}

#[derive(Default)]
struct Columns {
    kinds: Vec<u8>,
    counts: Vec<u8>,
    times: Vec<u8>,
    dec_heads: Vec<u8>,
    mantissas: Vec<u8>,
    floats: Vec<u64>,
    raw: Vec<u8>,
}

/// The columnar payload of `frames`, a run of whole chunk frames (what a plain segment would hold at
/// consecutive offsets). Frames that would not decode back to the same bytes are stored raw; bytes that
/// do not parse as frames at all are stored as one raw run, so [`decode`] returns `frames` exactly
/// whatever they hold.
pub fn encode(frames: &[u8], stats: &mut EncodeStats) -> Vec<u8> {
    encode_with(frames, stats, false)
}

/// The payload holding `frames` as one raw item: for the rare run whose columns would be much larger
/// than the frames (long runs of repeated non-decimal values cost XOR a bit or two per sample but the
/// float column 8 bytes), which the reader's size bound would refuse.
pub(crate) fn encode_raw(frames: &[u8]) -> Vec<u8> {
    encode_with(frames, &mut EncodeStats::default(), true)
}

fn encode_with(frames: &[u8], stats: &mut EncodeStats, force_raw: bool) -> Vec<u8> {
    let mut c = Columns::default();
    let mut carry = Carry::default();
    let mut pos = 0;
    while pos < frames.len() {
        let rest = frames.get(pos..).unwrap_or_default();
        let end = match parse_frame(rest, 0) {
            Ok(_) if force_raw => rest.len(),
            Ok((_, end)) => end,
            // Not a frame: keep everything left as one raw item.
            Err(_) => rest.len(),
        };
        let frame = rest.get(..end).unwrap_or_default();
        pos += end.max(1);
        match canonical_samples(frame).filter(|_| !force_raw) {
            Some(samples) => push_samples(&mut c, &mut carry, &samples, stats),
            None => {
                stats.raw_chunks += 1;
                c.kinds.push(KIND_RAW);
                put_uvarint(&mut c.raw, frame.len() as u64);
                c.raw.extend_from_slice(frame);
            }
        }
    }
    let mut out = Vec::with_capacity(frames.len());
    put_uvarint(&mut out, c.kinds.len() as u64);
    out.extend_from_slice(&c.kinds);
    let mut planes = Vec::with_capacity(c.floats.len() * 8);
    for shift in (0..8).rev() {
        planes.extend(c.floats.iter().map(|x| (x >> (shift * 8)) as u8));
    }
    for section in [
        &c.counts,
        &c.times,
        &c.dec_heads,
        &c.mantissas,
        &planes,
        &c.raw,
    ] {
        put_uvarint(&mut out, section.len() as u64);
        out.extend_from_slice(section);
    }
    out
}

fn push_samples(c: &mut Columns, carry: &mut Carry, samples: &[(i64, u64)], st: &mut EncodeStats) {
    put_uvarint(&mut c.counts, samples.len() as u64);
    for &(t, _) in samples {
        let dt = t.wrapping_sub(carry.t);
        put_uvarint(&mut c.times, zigzag(dt.wrapping_sub(carry.dt)));
        carry.t = t;
        carry.dt = dt;
    }
    let values: Vec<u64> = samples.iter().map(|s| s.1).collect();
    if let Some((exp, ms)) = decimal_chunk(&values) {
        st.decimal_chunks += 1;
        c.kinds.push(KIND_DECIMAL);
        // Pick whichever difference order takes fewer bytes for this chunk.
        let (mut d1, mut d2) = (0usize, 0usize);
        let (mut m, mut dm) = (carry.m, carry.dm);
        for &x in &ms {
            let d = x.wrapping_sub(m);
            d1 += uvarint_len(zigzag(d));
            d2 += uvarint_len(zigzag(d.wrapping_sub(dm)));
            m = x;
            dm = d;
        }
        let mode = if d2 < d1 { MODE_DELTA2 } else { MODE_DELTA };
        c.dec_heads.push(mode);
        c.dec_heads.push(exp as i8 as u8);
        for &x in &ms {
            let d = x.wrapping_sub(carry.m);
            let coded = if mode == MODE_DELTA2 {
                d.wrapping_sub(carry.dm)
            } else {
                d
            };
            put_uvarint(&mut c.mantissas, zigzag(coded));
            carry.m = x;
            carry.dm = d;
        }
    } else {
        st.float_chunks += 1;
        c.kinds.push(KIND_FLOAT);
        for &v in &values {
            c.floats.push(v ^ carry.float);
            carry.float = v;
        }
    }
}

/// Reads sections of a payload, failing instead of panicking on short input.
struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Cursor<'a> {
    fn new(b: &'a [u8], what: &'static str) -> Self {
        Cursor { b, pos: 0, what }
    }

    #[inline(always)]
    fn uvarint(&mut self) -> Result<u64, String> {
        // Most columns are mostly one-byte values (zero deltas of deltas).
        if let Some(&b) = self.b.get(self.pos).filter(|&&b| b < 0x80) {
            self.pos += 1;
            return Ok(u64::from(b));
        }
        self.uvarint_slow()
    }

    #[inline(never)]
    fn uvarint_slow(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..70).step_by(7) {
            let Some(&byte) = self.b.get(self.pos) else {
                return Err(format!(
                    "{} column ends inside a varint at byte {}",
                    self.what, self.pos
                ));
            };
            self.pos += 1;
            if shift == 63 && byte > 1 {
                return Err(format!("{} column: varint overflows 64 bits", self.what));
            }
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(format!("{} column: varint longer than 10 bytes", self.what))
    }

    fn bytes(&mut self, n: usize) -> Result<&'a [u8], String> {
        let s = self
            .pos
            .checked_add(n)
            .and_then(|end| self.b.get(self.pos..end))
            .ok_or_else(|| {
                format!(
                    "{} column: {n} bytes wanted at byte {}, {} there",
                    self.what,
                    self.pos,
                    self.b.len()
                )
            })?;
        self.pos += n;
        Ok(s)
    }

    fn byte(&mut self) -> Result<u8, String> {
        self.bytes(1)
            .map(|b| b.first().copied().unwrap_or_default())
    }

    fn section(&mut self, what: &'static str) -> Result<Cursor<'a>, String> {
        let n = self.uvarint()?;
        let n = usize::try_from(n).map_err(|_| format!("{what} column length {n} is too large"))?;
        let b = self
            .bytes(n)
            .map_err(|_| format!("{what} column of {n} bytes runs past the payload"))?;
        Ok(Cursor::new(b, what))
    }

    fn finished(&self) -> Result<(), String> {
        if self.pos == self.b.len() {
            Ok(())
        } else {
            Err(format!(
                "{} column has {} bytes left over",
                self.what,
                self.b.len() - self.pos
            ))
        }
    }
}

/// The chunk frames `payload` stands for; fails unless they come to exactly `logical_len` bytes and
/// every column is used up. Never allocates more than `logical_len` bytes of output plus one chunk's
/// samples (at most 65 535).
pub fn decode(payload: &[u8], logical_len: usize) -> Result<Vec<u8>, String> {
    let mut p = Cursor::new(payload, "payload");
    let n = p.uvarint()?;
    // Every item stands for at least one byte of chunk frames (whole frames take 6 or more, but a raw
    // run may hold a few bytes that are no frame at all).
    if n > logical_len as u64 {
        return Err(format!("{n} chunks cannot fit {logical_len} logical bytes"));
    }
    let kinds = p.bytes(n as usize)?;
    let mut counts = p.section("count")?;
    let mut times = p.section("timestamp")?;
    let mut heads = p.section("decimal header")?;
    let mut mantissas = p.section("mantissa")?;
    let planes = p.section("float")?.b;
    let mut raw = p.section("raw")?;
    p.finished()?;
    if planes.len() % 8 != 0 {
        return Err(format!(
            "float column of {} bytes is not whole 8-byte values",
            planes.len()
        ));
    }
    let nfloat = planes.len() / 8;
    let mut next_float = 0usize;
    let mut out = Vec::with_capacity(logical_len);
    let mut carry = Carry::default();
    let mut samples: Vec<(i64, u64)> = Vec::new();
    // One chunk's bytes, reused from chunk to chunk.
    let mut scratch = Vec::new();
    for (i, &kind) in kinds.iter().enumerate() {
        if kind == KIND_RAW {
            let len = raw.uvarint()?;
            let len = usize::try_from(len)
                .ok()
                .filter(|&l| l <= logical_len.saturating_sub(out.len()))
                .ok_or_else(|| format!("raw chunk {i} of {len} bytes overruns the frame"))?;
            out.extend_from_slice(raw.bytes(len)?);
            continue;
        }
        if kind != KIND_DECIMAL && kind != KIND_FLOAT {
            return Err(format!("chunk {i} has unknown kind {kind}"));
        }
        let count = counts.uvarint()?;
        if count > u64::from(u16::MAX) {
            return Err(format!(
                "chunk {i} claims {count} samples, more than a chunk holds"
            ));
        }
        samples.clear();
        for _ in 0..count {
            let dod = unzigzag(times.uvarint()?);
            let dt = carry.dt.wrapping_add(dod);
            let t = carry.t.wrapping_add(dt);
            carry.t = t;
            carry.dt = dt;
            samples.push((t, 0));
        }
        if kind == KIND_DECIMAL {
            let mode = heads.byte()?;
            let exp = i32::from(heads.byte()? as i8);
            if mode > MODE_DELTA2 || exp.abs() > MAX_EXP {
                return Err(format!(
                    "chunk {i}: decimal mode {mode} / exponent {exp} out of range"
                ));
            }
            // The same operation as `decimal_value`, with the power looked up once per chunk.
            let p = POW10
                .get(exp.unsigned_abs() as usize)
                .copied()
                .ok_or_else(|| format!("chunk {i}: exponent {exp} out of range"))?;
            let delta2 = mode == MODE_DELTA2;
            for s in samples.iter_mut() {
                let coded = unzigzag(mantissas.uvarint()?);
                let d = if delta2 {
                    coded.wrapping_add(carry.dm)
                } else {
                    coded
                };
                let m = carry.m.wrapping_add(d);
                carry.m = m;
                carry.dm = d;
                let v = if exp >= 0 { m as f64 * p } else { m as f64 / p };
                s.1 = v.to_bits();
            }
        } else {
            for s in samples.iter_mut() {
                if next_float >= nfloat {
                    return Err(format!("chunk {i}: float column exhausted"));
                }
                let mut x = 0u64;
                for plane in 0..8 {
                    let b = planes
                        .get(plane * nfloat + next_float)
                        .copied()
                        .unwrap_or(0);
                    x = (x << 8) | u64::from(b);
                }
                next_float += 1;
                carry.float ^= x;
                s.1 = carry.float;
            }
        }
        let mut app = XorAppender::with_buffer(std::mem::take(&mut scratch));
        for &(t, v) in &samples {
            app.append(t, f64::from_bits(v));
        }
        scratch = app.into_buffer();
        frame_bytes(ENCODING_XOR, &scratch, &mut out);
        if out.len() > logical_len {
            return Err(format!(
                "chunk {i} takes the frame past its {logical_len} logical bytes"
            ));
        }
    }
    for c in [&counts, &times, &heads, &mantissas, &raw] {
        c.finished()?;
    }
    if next_float != nfloat {
        return Err(format!(
            "float column holds {nfloat} values, chunks use {next_float}"
        ));
    }
    if out.len() != logical_len {
        return Err(format!(
            "columns decode to {} bytes, the frame holds {logical_len}",
            out.len()
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn frames_of(chunks: &[Vec<(i64, f64)>]) -> Vec<u8> {
        let mut out = Vec::new();
        for c in chunks {
            let mut app = XorAppender::new();
            for &(t, v) in c {
                app.append(t, v);
            }
            frame_bytes(ENCODING_XOR, &app.into_bytes(), &mut out);
        }
        out
    }

    #[test]
    fn decimal_forms_are_exact_and_refuse_what_they_cannot_hold() {
        for v in [
            0.1, 1.5, -2.25, 123456.789, 1e15, 3e20, 0.3, 1e-7, 42.0, -7.0,
        ] {
            let (m, e) = to_decimal(v).unwrap();
            assert_eq!(decimal_value(m, e).unwrap().to_bits(), v.to_bits(), "{v}");
        }
        for v in [
            -0.0,
            f64::NAN,
            f64::INFINITY,
            std::f64::consts::PI,
            1e300,
            5e-324,
        ] {
            if let Some((m, e)) = to_decimal(v) {
                assert_eq!(decimal_value(m, e).unwrap().to_bits(), v.to_bits(), "{v}");
            }
        }
        assert_eq!(to_decimal(-0.0), None);
        assert_eq!(to_decimal(f64::NAN), None);
    }

    #[test]
    fn mixed_chunks_decode_to_the_same_frames() {
        let stale = f64::from_bits(0x7ff0_0000_0000_0002);
        let chunks = vec![
            (0..120)
                .map(|i| (1000 + i * 15_000, i as f64 * 0.5))
                .collect(),
            (0..120)
                .map(|i| (2_000_000 + i * 15_000 + (i % 3), (i as f64).sin()))
                .collect(),
            vec![(5, stale), (6, 1.0), (9, f64::NAN), (10, -0.0)],
            vec![],
            (0..50)
                .map(|i| (i * 1000, 1e18 + (i * 1000) as f64))
                .collect(),
        ];
        let frames = frames_of(&chunks);
        let mut st = EncodeStats::default();
        let payload = encode(&frames, &mut st);
        assert_eq!(st.raw_chunks, 0);
        assert!(st.decimal_chunks >= 2 && st.float_chunks >= 2, "{st:?}");
        assert_eq!(decode(&payload, frames.len()).unwrap(), frames);
    }

    #[test]
    fn non_canonical_and_foreign_frames_are_kept_raw() {
        let mut frames = frames_of(&[vec![(1, 1.0), (2, 2.0)]]);
        // A trailing zero byte after the last sample (as Prometheus 2.x sometimes wrote).
        let mut app = XorAppender::new();
        app.append(10, 3.0);
        let mut data = app.into_bytes();
        data.push(0);
        frame_bytes(ENCODING_XOR, &data, &mut frames);
        // Another encoding.
        frame_bytes(2, b"histogram bytes", &mut frames);
        // A bad CRC.
        let mut bad = Vec::new();
        frame_bytes(ENCODING_XOR, &[0, 0], &mut bad);
        *bad.last_mut().unwrap() ^= 1;
        frames.extend_from_slice(&bad);
        let mut st = EncodeStats::default();
        let payload = encode(&frames, &mut st);
        assert_eq!(st.raw_chunks, 3);
        assert_eq!(st.decimal_chunks, 1);
        assert_eq!(decode(&payload, frames.len()).unwrap(), frames);
    }

    #[test]
    fn bytes_that_are_no_frame_survive_the_round_trip() {
        // A whole frame followed by a 3-byte tail that parses as nothing: two items in 9 bytes.
        let mut frames = Vec::new();
        frame_bytes(7, &[], &mut frames);
        frames.extend_from_slice(&[1, 2, 3]);
        for run in [&frames[..], &frames[6..], &[][..]] {
            let payload = encode(run, &mut EncodeStats::default());
            assert_eq!(decode(&payload, run.len()).unwrap(), run);
        }
    }

    #[test]
    fn truncated_or_flipped_payloads_fail_or_decode_without_panic() {
        let chunks: Vec<Vec<(i64, f64)>> = (0..5)
            .map(|s| {
                (0..100)
                    .map(|i| (i * 15_000, (s * i) as f64 / 4.0))
                    .collect()
            })
            .collect();
        let frames = frames_of(&chunks);
        let payload = encode(&frames, &mut EncodeStats::default());
        for cut in 0..payload.len() {
            assert!(decode(&payload[..cut], frames.len()).is_err(), "cut {cut}");
        }
        for at in 0..payload.len() {
            for bit in 0..8 {
                let mut p = payload.clone();
                p[at] ^= 1 << bit;
                let _ = decode(&p, frames.len());
            }
        }
    }
}
