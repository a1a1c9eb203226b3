//! Zero-copy decoding of remote write 1.0's `prometheus.WriteRequest`, the receiver's hot path.
//!
//! prost's derived decoder allocates two `Vec<u8>` per label, a `Vec` of labels and one of samples per
//! series; Prometheus senders put one sample in each series entry, so that was some fifteen allocations
//! per ingested sample. This decoder borrows label bytes from the body and appends samples to one flat
//! [`Batch`]. It accepts exactly what the prost messages in [`super::proto`] accept (same wire-type checks,
//! varint rules, last-value-wins scalars, UTF-8 check of metadata strings, group skipping and recursion
//! limit), and the `remote_write` fuzz target checks that the two agree on arbitrary input.
//!
//! It does not validate labels (the spec's rules are applied by the caller) and does not keep metadata.

#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use super::{Batch, SeriesEntry};

/// prost's nesting limit for messages and groups.
const RECURSION_LIMIT: u32 = 100;

type Result<T> = std::result::Result<T, &'static str>;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum WireType {
    Varint,
    Fixed64,
    Len,
    StartGroup,
    EndGroup,
    Fixed32,
}

/// Decodes a whole `prometheus.WriteRequest` into a batch, or says why it is malformed.
pub(super) fn decode_write_request(bytes: &[u8]) -> Result<Batch<'_>> {
    let mut batch = Batch::default();
    let mut c = Cursor(bytes);
    while !c.is_empty() {
        let (tag, wt) = c.key()?;
        match tag {
            1 => {
                let sub = c.message(wt)?;
                time_series(sub, RECURSION_LIMIT - 1, &mut batch)?;
            }
            3 => {
                let sub = c.message(wt)?;
                metric_metadata(sub, RECURSION_LIMIT - 1)?;
            }
            _ => c.skip(wt, tag, RECURSION_LIMIT)?,
        }
    }
    Ok(batch)
}

/// `prometheus.TimeSeries`; `depth` is the recursion budget its fields are decoded with.
fn time_series<'a>(bytes: &'a [u8], depth: u32, batch: &mut Batch<'a>) -> Result<()> {
    let mut entry = SeriesEntry::default();
    let mut c = Cursor(bytes);
    while !c.is_empty() {
        let (tag, wt) = c.key()?;
        match tag {
            1 => {
                let sub = c.message(wt)?;
                batch.pairs.push(label(sub, depth - 1)?);
            }
            2 => {
                let sub = c.message(wt)?;
                batch.samples.push(sample(sub, depth - 1)?);
            }
            3 => {
                let sub = c.message(wt)?;
                exemplar(sub, depth - 1)?;
                entry.exemplars += 1;
            }
            4 => {
                let sub = c.message(wt)?;
                histogram(sub, depth - 1)?;
                entry.histograms += 1;
            }
            _ => c.skip(wt, tag, depth)?,
        }
    }
    entry.pairs_end = batch.pairs.len();
    entry.samples_end = batch.samples.len();
    batch.series.push(entry);
    Ok(())
}

/// `prometheus.Label`: (name, value), each the last occurrence of its field, empty if absent.
#[inline]
fn label(bytes: &[u8], depth: u32) -> Result<(&[u8], &[u8])> {
    let (mut name, mut value): (&[u8], &[u8]) = (&[], &[]);
    let mut c = Cursor(bytes);
    while !c.is_empty() {
        let (tag, wt) = c.key()?;
        match tag {
            1 => name = c.len_delimited(wt)?,
            2 => value = c.len_delimited(wt)?,
            _ => c.skip(wt, tag, depth)?,
        }
    }
    Ok((name, value))
}

/// `prometheus.Sample` as (timestamp, value).
fn sample(bytes: &[u8], depth: u32) -> Result<(i64, f64)> {
    let (mut t, mut v) = (0i64, 0f64);
    let mut c = Cursor(bytes);
    while !c.is_empty() {
        let (tag, wt) = c.key()?;
        match tag {
            1 => v = c.double(wt)?,
            2 => t = c.int64(wt)?,
            _ => c.skip(wt, tag, depth)?,
        }
    }
    Ok((t, v))
}

/// `prometheus.Exemplar`, checked and discarded (exemplars are not stored yet).
fn exemplar(bytes: &[u8], depth: u32) -> Result<()> {
    let mut c = Cursor(bytes);
    while !c.is_empty() {
        let (tag, wt) = c.key()?;
        match tag {
            1 => {
                let sub = c.message(wt)?;
                label(sub, depth - 1)?;
            }
            2 => {
                c.double(wt)?;
            }
            3 => {
                c.int64(wt)?;
            }
            _ => c.skip(wt, tag, depth)?,
        }
    }
    Ok(())
}

/// A native histogram, checked as [`super::proto::HistogramStub`] is: only its timestamp field is known.
fn histogram(bytes: &[u8], depth: u32) -> Result<()> {
    let mut c = Cursor(bytes);
    while !c.is_empty() {
        let (tag, wt) = c.key()?;
        match tag {
            15 => {
                c.int64(wt)?;
            }
            _ => c.skip(wt, tag, depth)?,
        }
    }
    Ok(())
}

/// `prometheus.MetricMetadata`, checked and discarded.
fn metric_metadata(bytes: &[u8], depth: u32) -> Result<()> {
    let mut c = Cursor(bytes);
    while !c.is_empty() {
        let (tag, wt) = c.key()?;
        match tag {
            1 => {
                c.int64(wt)?;
            }
            2 | 4 | 5 => {
                std::str::from_utf8(c.len_delimited(wt)?)
                    .map_err(|_| "invalid string value: data is not UTF-8 encoded")?;
            }
            _ => c.skip(wt, tag, depth)?,
        }
    }
    Ok(())
}

/// The unread rest of one message.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A LEB128 varint of at most 10 bytes whose value fits 64 bits.
    #[inline]
    fn varint(&mut self) -> Result<u64> {
        // Keys and most lengths are one byte.
        if let Some((&b, rest)) = self.0.split_first()
            && b < 0x80
        {
            self.0 = rest;
            return Ok(u64::from(b));
        }
        self.varint_slow()
    }

    fn varint_slow(&mut self) -> Result<u64> {
        let mut value = 0u64;
        for (i, &b) in self.0.iter().take(10).enumerate() {
            value |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                if i == 9 && b >= 2 {
                    return Err("invalid varint");
                }
                self.0 = self.0.get(i + 1..).unwrap_or_default();
                return Ok(value);
            }
        }
        Err("invalid varint")
    }

    #[inline]
    fn key(&mut self) -> Result<(u32, WireType)> {
        let key = self.varint()?;
        let key = u32::try_from(key).map_err(|_| "invalid key value")?;
        let wt = match key & 7 {
            0 => WireType::Varint,
            1 => WireType::Fixed64,
            2 => WireType::Len,
            3 => WireType::StartGroup,
            4 => WireType::EndGroup,
            5 => WireType::Fixed32,
            _ => return Err("invalid wire type value"),
        };
        let tag = key >> 3;
        if tag == 0 {
            return Err("invalid tag value: 0");
        }
        Ok((tag, wt))
    }

    fn take(&mut self, len: u64) -> Result<&'a [u8]> {
        let len = usize::try_from(len).map_err(|_| "buffer underflow")?;
        let (head, rest) = self.0.split_at_checked(len).ok_or("buffer underflow")?;
        self.0 = rest;
        Ok(head)
    }

    fn len_delimited(&mut self, wt: WireType) -> Result<&'a [u8]> {
        expect(wt, WireType::Len)?;
        let len = self.varint()?;
        self.take(len)
    }

    /// The bytes of an embedded message field.
    fn message(&mut self, wt: WireType) -> Result<&'a [u8]> {
        self.len_delimited(wt)
    }

    fn int64(&mut self, wt: WireType) -> Result<i64> {
        expect(wt, WireType::Varint)?;
        // Two's complement reinterpretation, as protobuf's int64 is encoded.
        Ok(self.varint()? as i64)
    }

    fn double(&mut self, wt: WireType) -> Result<f64> {
        expect(wt, WireType::Fixed64)?;
        let (bytes, rest) = self.0.split_first_chunk::<8>().ok_or("buffer underflow")?;
        self.0 = rest;
        // Protobuf's fixed64 is little-endian.
        Ok(f64::from_le_bytes(*bytes))
    }

    /// Skips an unknown field as prost's `skip_field` does, groups included; `depth` is the recursion
    /// budget left.
    fn skip(&mut self, wt: WireType, tag: u32, depth: u32) -> Result<()> {
        if depth == 0 {
            return Err("recursion limit reached");
        }
        let len = match wt {
            WireType::Varint => {
                self.varint()?;
                0
            }
            WireType::Fixed32 => 4,
            WireType::Fixed64 => 8,
            WireType::Len => self.varint()?,
            WireType::StartGroup => loop {
                let (inner_tag, inner_wt) = self.key()?;
                if inner_wt == WireType::EndGroup {
                    if inner_tag != tag {
                        return Err("unexpected end group tag");
                    }
                    break 0;
                }
                self.skip(inner_wt, inner_tag, depth - 1)?;
            },
            WireType::EndGroup => return Err("unexpected end group tag"),
        };
        self.take(len).map(|_| ())
    }
}

fn expect(actual: WireType, expected: WireType) -> Result<()> {
    if actual == expected {
        Ok(())
    } else {
        Err("unexpected wire type")
    }
}
