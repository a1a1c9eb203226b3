//! Record payload encodings, byte-compatible with Prometheus' `tsdb/record`.
//!
//! Owns: the series (type 1), samples (type 2) and tombstones (type 3) record
//! formats, and the varint helpers they use.
//! Does not own: how records are framed in segments (the writer/reader) or
//! what the engine does with them. Other Prometheus record types (exemplars,
//! metadata, histograms, samples-v2, ...) are reported as
//! [`RecordType::Unknown`] and left to the caller to skip.
//!
//! Integer arithmetic on refs and timestamps wraps, as Go's does, so that any
//! values round-trip (e.g. a delta between `i64::MIN` and `i64::MAX`).

use ember_index::{Label, Labels};

use crate::error::{Error, Result};

const SERIES: u8 = 1;
const SAMPLES: u8 = 2;
const TOMBSTONES: u8 = 3;

/// A series and the head-local reference the other records use for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefSeries {
    pub r: u64,
    pub labels: Labels,
}

/// One float sample of series `r`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RefSample {
    pub r: u64,
    pub t: i64,
    pub v: f64,
}

/// Deleted time ranges (inclusive `(mint, maxt)`) of series `r`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tombstone {
    pub r: u64,
    pub intervals: Vec<(i64, i64)>,
}

/// The record type, from its first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordType {
    Series,
    Samples,
    Tombstones,
    /// Any other first byte (an empty record reports `Unknown(0)`).
    Unknown(u8),
}

/// Classify a record by its type byte.
pub fn record_type(rec: &[u8]) -> RecordType {
    match rec.first() {
        Some(&SERIES) => RecordType::Series,
        Some(&SAMPLES) => RecordType::Samples,
        Some(&TOMBSTONES) => RecordType::Tombstones,
        Some(&b) => RecordType::Unknown(b),
        None => RecordType::Unknown(0),
    }
}

/// Append a series record: per series, ref (u64 BE), label count (uvarint),
/// then each name and value as uvarint length + bytes.
pub fn encode_series(series: &[RefSeries], buf: &mut Vec<u8>) {
    buf.push(SERIES);
    for s in series {
        buf.extend_from_slice(&s.r.to_be_bytes());
        put_uvarint(buf, s.labels.len() as u64);
        for l in s.labels.iter() {
            put_uvarint(buf, l.name.len() as u64);
            buf.extend_from_slice(l.name.as_bytes());
            put_uvarint(buf, l.value.len() as u64);
            buf.extend_from_slice(l.value.as_bytes());
        }
    }
}

/// Append a samples record: the first sample's ref (u64 BE) and timestamp
/// (i64 BE) as a base, then for every sample (the first included)
/// varint(ref − base ref), varint(t − base t) and the value's bits (u64 BE).
/// An empty slice encodes as the type byte alone.
pub fn encode_samples(samples: &[RefSample], buf: &mut Vec<u8>) {
    buf.push(SAMPLES);
    let Some(first) = samples.first() else {
        return;
    };
    buf.reserve(16 + samples.len() * 12);
    buf.extend_from_slice(&first.r.to_be_bytes());
    buf.extend_from_slice(&first.t.to_be_bytes());
    for s in samples {
        put_varint(buf, s.r.wrapping_sub(first.r) as i64);
        put_varint(buf, s.t.wrapping_sub(first.t));
        buf.extend_from_slice(&s.v.to_bits().to_be_bytes());
    }
}

/// Append a tombstones record: one (ref u64 BE, varint mint, varint maxt)
/// triple per interval. A tombstone without intervals writes nothing.
pub fn encode_tombstones(stones: &[Tombstone], buf: &mut Vec<u8>) {
    buf.push(TOMBSTONES);
    for s in stones {
        for &(mint, maxt) in &s.intervals {
            buf.extend_from_slice(&s.r.to_be_bytes());
            put_varint(buf, mint);
            put_varint(buf, maxt);
        }
    }
}

/// Decode a series record, appending to `out`. Fails (leaving `out` as it
/// was) on a wrong type byte, truncation, trailing bytes, non-UTF-8 strings or
/// a label set `Labels` rejects (empty or duplicate names).
pub fn decode_series(rec: &[u8], out: &mut Vec<RefSeries>) -> Result<()> {
    let before = out.len();
    let res = decode_series_into(rec, out);
    if res.is_err() {
        out.truncate(before);
    }
    res
}

fn decode_series_into(rec: &[u8], out: &mut Vec<RefSeries>) -> Result<()> {
    let mut d = Decoder::new(rec, SERIES, "series")?;
    let mut labels = Vec::new();
    while !d.is_empty() {
        let r = d.be_u64()?;
        let n = d.uvarint()?;
        // Each label needs at least two length bytes: bound the count by the
        // remaining input before trusting it for an allocation.
        if n > (d.remaining() / 2) as u64 {
            return Err(Error::Record(format!(
                "series {r} claims {n} labels in {} remaining bytes",
                d.remaining()
            )));
        }
        labels.clear();
        labels.reserve(n as usize);
        for _ in 0..n {
            let name = d.str("label name")?;
            let value = d.str("label value")?;
            labels.push(Label::new(name, value));
        }
        let labels = Labels::new(std::mem::take(&mut labels))
            .map_err(|e| Error::Record(format!("series {r}: {e}")))?;
        out.push(RefSeries { r, labels });
    }
    Ok(())
}

/// Decode a samples record, appending to `out`. This is the replay hot path.
pub fn decode_samples(rec: &[u8], out: &mut Vec<RefSample>) -> Result<()> {
    let before = out.len();
    let res = decode_samples_into(rec, out);
    if res.is_err() {
        out.truncate(before);
    }
    res
}

fn decode_samples_into(rec: &[u8], out: &mut Vec<RefSample>) -> Result<()> {
    let mut d = Decoder::new(rec, SAMPLES, "samples")?;
    if d.is_empty() {
        return Ok(());
    }
    let base_ref = d.be_u64()?;
    let base_t = d.be_u64()? as i64;
    // Every sample takes at least 10 bytes (two 1-byte varints + value).
    out.reserve(d.remaining() / 10);
    let mut b = d.rest();
    while !b.is_empty() {
        let (dr, n) = read_varint(b)?;
        b = &b[n..];
        let (dt, n) = read_varint(b)?;
        b = &b[n..];
        let Some((v, tail)) = b.split_first_chunk::<8>() else {
            return Err(Error::Record(format!(
                "samples record truncated in a value ({} bytes left)",
                b.len()
            )));
        };
        b = tail;
        out.push(RefSample {
            r: base_ref.wrapping_add(dr as u64),
            t: base_t.wrapping_add(dt),
            v: f64::from_bits(u64::from_be_bytes(*v)),
        });
    }
    Ok(())
}

/// Decode a tombstones record, appending one [`Tombstone`] with a single
/// interval per encoded triple (as Prometheus does: intervals of one series
/// are not merged back together).
pub fn decode_tombstones(rec: &[u8], out: &mut Vec<Tombstone>) -> Result<()> {
    let before = out.len();
    let res = decode_tombstones_into(rec, out);
    if res.is_err() {
        out.truncate(before);
    }
    res
}

fn decode_tombstones_into(rec: &[u8], out: &mut Vec<Tombstone>) -> Result<()> {
    let mut d = Decoder::new(rec, TOMBSTONES, "tombstones")?;
    while !d.is_empty() {
        let r = d.be_u64()?;
        let mint = d.varint()?;
        let maxt = d.varint()?;
        out.push(Tombstone {
            r,
            intervals: vec![(mint, maxt)],
        });
    }
    Ok(())
}

/// Cursor over a record's bytes after its type byte.
struct Decoder<'a> {
    b: &'a [u8],
}

impl<'a> Decoder<'a> {
    fn new(rec: &'a [u8], want: u8, what: &str) -> Result<Decoder<'a>> {
        match rec.split_first() {
            Some((&t, rest)) if t == want => Ok(Decoder { b: rest }),
            Some((&t, _)) => Err(Error::Record(format!(
                "not a {what} record: type byte {t}, expected {want}"
            ))),
            None => Err(Error::Record(format!("empty record, expected {what}"))),
        }
    }

    fn is_empty(&self) -> bool {
        self.b.is_empty()
    }

    fn remaining(&self) -> usize {
        self.b.len()
    }

    fn rest(self) -> &'a [u8] {
        self.b
    }

    fn be_u64(&mut self) -> Result<u64> {
        let Some((v, tail)) = self.b.split_first_chunk::<8>() else {
            return Err(Error::Record(format!(
                "record truncated: 8-byte integer needed, {} bytes left",
                self.b.len()
            )));
        };
        self.b = tail;
        Ok(u64::from_be_bytes(*v))
    }

    fn uvarint(&mut self) -> Result<u64> {
        let (v, n) = read_uvarint(self.b)?;
        self.b = &self.b[n..];
        Ok(v)
    }

    fn varint(&mut self) -> Result<i64> {
        let (v, n) = read_varint(self.b)?;
        self.b = &self.b[n..];
        Ok(v)
    }

    fn str(&mut self, what: &str) -> Result<&'a str> {
        let len = self.uvarint()?;
        if len > self.b.len() as u64 {
            return Err(Error::Record(format!(
                "{what} of {len} bytes but only {} left",
                self.b.len()
            )));
        }
        let (s, tail) = self.b.split_at(len as usize);
        self.b = tail;
        std::str::from_utf8(s).map_err(|e| Error::Record(format!("{what} is not UTF-8: {e}")))
    }
}

/// Unsigned LEB128, as Go's `binary.PutUvarint`.
#[inline]
pub(crate) fn put_uvarint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push(v as u8 | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

/// Zig-zag signed varint, as Go's `binary.PutVarint`.
#[inline]
pub(crate) fn put_varint(buf: &mut Vec<u8>, v: i64) {
    put_uvarint(buf, ((v << 1) ^ (v >> 63)) as u64);
}

/// Decode an unsigned varint; returns the value and its length. Rejects
/// truncation and values over 64 bits (Go's `binary.Uvarint` rules).
#[inline(always)]
fn read_uvarint(b: &[u8]) -> Result<(u64, usize)> {
    // One-byte fast path: sample deltas are usually tiny.
    if let Some(&b0) = b.first()
        && b0 < 0x80
    {
        return Ok((b0 as u64, 1));
    }
    read_uvarint_slow(b)
}

#[cold]
#[inline(never)]
fn read_uvarint_slow(b: &[u8]) -> Result<(u64, usize)> {
    let mut v = 0u64;
    for (i, &byte) in b.iter().enumerate().take(10) {
        if byte < 0x80 {
            if i == 9 && byte > 1 {
                return Err(Error::Record("varint overflows 64 bits".into()));
            }
            return Ok((v | (byte as u64) << (7 * i), i + 1));
        }
        v |= ((byte & 0x7f) as u64) << (7 * i);
    }
    if b.len() >= 10 {
        Err(Error::Record("varint overflows 64 bits".into()))
    } else {
        Err(Error::Record("record truncated inside a varint".into()))
    }
}

#[inline(always)]
fn read_varint(b: &[u8]) -> Result<(i64, usize)> {
    let (u, n) = read_uvarint(b)?;
    Ok((((u >> 1) as i64) ^ -((u & 1) as i64), n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_match_go_encoding() {
        let mut b = Vec::new();
        put_varint(&mut b, -1);
        put_varint(&mut b, 1);
        put_varint(&mut b, i64::MIN);
        put_uvarint(&mut b, 300);
        assert_eq!(&b[..2], &[0x01, 0x02]);
        assert_eq!(
            &b[2..12],
            &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]
        );
        assert_eq!(&b[12..], &[0xac, 0x02]);
        assert_eq!(read_varint(&b[2..]).unwrap(), (i64::MIN, 10));
    }

    #[test]
    fn varint_overflow_and_truncation_are_errors() {
        assert!(read_uvarint(&[0xff; 9]).is_err());
        assert!(
            read_uvarint(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]).is_err()
        );
        assert!(read_uvarint(&[0x80; 11]).is_err());
        assert!(read_uvarint(&[]).is_err());
    }

    #[test]
    fn samples_layout_matches_prometheus() {
        let mut buf = Vec::new();
        encode_samples(
            &[
                RefSample {
                    r: 10,
                    t: 1000,
                    v: 1.5,
                },
                RefSample {
                    r: 9,
                    t: 1001,
                    v: 2.0,
                },
            ],
            &mut buf,
        );
        let mut want = vec![2u8];
        want.extend_from_slice(&10u64.to_be_bytes());
        want.extend_from_slice(&1000i64.to_be_bytes());
        want.extend_from_slice(&[0, 0]);
        want.extend_from_slice(&1.5f64.to_bits().to_be_bytes());
        want.extend_from_slice(&[0x01, 0x02]); // -1, +1 zig-zagged
        want.extend_from_slice(&2.0f64.to_bits().to_be_bytes());
        assert_eq!(buf, want);
    }

    #[test]
    fn decoders_reject_the_wrong_type_and_leave_out_untouched() {
        let mut buf = Vec::new();
        encode_samples(&[RefSample { r: 1, t: 2, v: 3.0 }], &mut buf);
        let mut series = Vec::new();
        assert!(decode_series(&buf, &mut series).is_err());
        let mut samples = vec![RefSample { r: 0, t: 0, v: 0.0 }];
        let mut truncated = buf.clone();
        truncated.pop();
        assert!(decode_samples(&truncated, &mut samples).is_err());
        assert_eq!(samples.len(), 1);
    }
}
