//! Prometheus' XOR chunk encoding for float samples (Gorilla-style compression).
//!
//! Layout (all bit fields most significant bit first; `docs/format/chunks.md` has the full description):
//!
//! * 2 bytes: big-endian sample count.
//! * sample 0: timestamp as a zig-zag varint, value as its raw 64 bits.
//! * sample 1: timestamp delta as an unsigned varint, value as an XOR field.
//! * samples 2..: delta of deltas in a prefix-coded bucket (`0`, `10`+14, `110`+17, `1110`+20,
//!   `1111`+64 bits), then the value as an XOR field.
//! * zero bits up to the next byte boundary.
//!
//! XOR field: `0` when the value's bits equal the previous value's; `10` + the significant bits when the
//! XOR fits in the previous window of leading/trailing zeros; otherwise `11` + 5 bits of leading zeros
//! (clamped to 31) + 6 bits of significant-bit count (64 written as 0) + the significant bits.

use super::CHUNK_HEADER_SIZE;
use super::bstream::{BitReader, BitWriter};
use crate::{Error, Result};

/// Encoding byte Prometheus uses for XOR chunks in chunk segment files.
pub const ENCODING_XOR: u8 = 1;

/// Marks "no leading/trailing window chosen yet" in a fresh appender (Prometheus uses the same value).
const LEADING_UNSET: u8 = 0xff;

/// Initial capacity of a new chunk's byte vector (as Prometheus allocates).
/// Small on purpose: half of real series are constant and their chunks stay under 64 bytes.
const INITIAL_CAPACITY: usize = 32;

const ERR_SHORT: &str = "chunk shorter than its 2-byte header";
const ERR_TRUNCATED: &str = "chunk data ends before the header's sample count";
const ERR_VARINT: &str = "timestamp varint overflows 64 bits";
const ERR_WINDOW: &str = "value leading zeros plus significant bits exceed 64";

/// Appends samples to one open XOR chunk. Owns the chunk bytes and the encoder state (48 bytes besides
/// the byte vector; 72 with its header).
///
/// The bytes produced are exactly those Prometheus' XOR appender produces for the same samples. Bits are
/// gathered in a 64-bit accumulator and moved to the vector eight bytes at a time; [`Self::to_bytes`] and
/// [`Self::into_bytes`] add the pending bits and the current sample count.
#[derive(Debug, Clone)]
pub struct XorAppender {
    w: BitWriter,
    t: i64,
    /// Bits of the previous value.
    v: u64,
    t_delta: u64,
    num: u16,
    leading: u8,
    trailing: u8,
}

impl Default for XorAppender {
    fn default() -> Self {
        Self::new()
    }
}

impl XorAppender {
    /// An empty chunk: the 2-byte header with count 0.
    pub fn new() -> Self {
        let mut bytes = Vec::with_capacity(INITIAL_CAPACITY);
        bytes.extend_from_slice(&[0, 0]);
        XorAppender {
            w: BitWriter::new(bytes),
            t: i64::MIN,
            v: 0,
            t_delta: 0,
            num: 0,
            leading: LEADING_UNSET,
            trailing: 0,
        }
    }

    /// An empty chunk written into `buf` (cleared first), so that a caller encoding many chunks one after
    /// another can reuse one allocation ([`XorAppender::into_buffer`] gives it back).
    pub fn with_buffer(mut buf: Vec<u8>) -> Self {
        buf.clear();
        buf.extend_from_slice(&[0, 0]);
        XorAppender {
            w: BitWriter::new(buf),
            t: i64::MIN,
            v: 0,
            t_delta: 0,
            num: 0,
            leading: LEADING_UNSET,
            trailing: 0,
        }
    }

    /// Finishes the chunk like [`XorAppender::into_bytes`] but keeps the buffer's capacity.
    pub fn into_buffer(mut self) -> Vec<u8> {
        self.w.head_mut()[..CHUNK_HEADER_SIZE].copy_from_slice(&self.num.to_be_bytes());
        self.w.into_vec_keep_capacity()
    }

    /// Resumes appending to an existing complete chunk, decoding it to rebuild the encoder state.
    ///
    /// New samples continue at the exact bit where the last sample ended. Bytes past the last sample (and
    /// non-zero padding bits) are dropped. As in Prometheus, the rebuilt value window is the one the
    /// decoder last saw — "0 leading, 0 trailing" if no `11` window has been read yet, so the next changed
    /// value may be written with the `10` control and 64 significant bits — which keeps the bytes identical
    /// to what Prometheus appends to the same chunk.
    pub fn from_bytes(mut bytes: Vec<u8>) -> Result<Self> {
        let it = {
            let mut it = XorIterator::new(&bytes)?;
            while it.next_sample().is_some() {}
            if let Some(e) = it.err.take() {
                return Err(e);
            }
            DecodedState {
                num: it.read,
                t: it.t,
                v: it.v,
                t_delta: it.t_delta,
                leading: it.leading,
                trailing: it.trailing,
                end_bit: it.r.bit_pos(),
            }
        };
        if it.num == 0 {
            bytes.truncate(CHUNK_HEADER_SIZE);
            return Ok(XorAppender {
                w: BitWriter::new(bytes),
                t: i64::MIN,
                v: 0,
                t_delta: 0,
                num: 0,
                leading: LEADING_UNSET,
                trailing: 0,
            });
        }
        Ok(XorAppender {
            w: BitWriter::resume(bytes, it.end_bit),
            t: it.t,
            v: it.v,
            t_delta: it.t_delta,
            num: it.num,
            leading: it.leading,
            trailing: it.trailing,
        })
    }

    /// Appends a sample. The caller guarantees `t` is greater than the previous sample's timestamp.
    ///
    /// # Panics
    /// If the chunk already holds 65 535 samples (the header's limit), as Prometheus does.
    #[inline]
    pub fn append(&mut self, t: i64, v: f64) {
        let vb = v.to_bits();
        match self.num {
            0 => {
                let mut buf = [0u8; 10];
                let n = put_uvarint(&mut buf, zigzag(t));
                self.w.write_bytes(&buf[..n]);
                self.w.write_bits(vb, 64);
            }
            1 => {
                let d = t.wrapping_sub(self.t) as u64;
                let mut buf = [0u8; 10];
                let n = put_uvarint(&mut buf, d);
                self.w.write_bytes(&buf[..n]);
                self.write_value(vb);
                self.t_delta = d;
            }
            u16::MAX => panic!("XOR chunk capacity exceeded: a chunk holds at most 65535 samples"),
            _ => {
                let d = t.wrapping_sub(self.t) as u64;
                let dod = d.wrapping_sub(self.t_delta) as i64;
                self.write_dod(dod);
                self.write_value(vb);
                self.t_delta = d;
            }
        }
        self.t = t;
        self.v = vb;
        self.num += 1;
    }

    #[inline(always)]
    fn write_dod(&mut self, dod: i64) {
        let u = dod as u64;
        if dod == 0 {
            self.w.write_bits(0, 1);
        } else if bit_range(dod, 14) {
            self.w.write_bits((0b10 << 14) | (u & 0x3fff), 16);
        } else if bit_range(dod, 17) {
            self.w.write_bits((0b110 << 17) | (u & 0x1_ffff), 20);
        } else if bit_range(dod, 20) {
            self.w.write_bits((0b1110 << 20) | (u & 0xf_ffff), 24);
        } else {
            self.w.write_bits(0b1111, 4);
            self.w.write_bits(u, 64);
        }
    }

    #[inline(always)]
    fn write_value(&mut self, vb: u64) {
        let delta = vb ^ self.v;
        if delta == 0 {
            self.w.write_bits(0, 1);
            return;
        }
        // Only 5 bits hold the leading-zero count.
        let leading = (delta.leading_zeros() as u8).min(31);
        let trailing = delta.trailing_zeros() as u8;
        if self.leading != LEADING_UNSET && leading >= self.leading && trailing >= self.trailing {
            // The XOR fits in the previous window: '10' and the window's bits.
            let sig = 64 - u32::from(self.leading) - u32::from(self.trailing);
            let bits = delta >> self.trailing;
            if sig <= 62 {
                self.w.write_bits((0b10 << sig) | bits, sig + 2);
            } else {
                self.w.write_bits(0b10, 2);
                self.w.write_bits(bits, sig);
            }
            return;
        }
        self.leading = leading;
        self.trailing = trailing;
        let sig = 64 - u32::from(leading) - u32::from(trailing); // 1..=64
        // '11', 5 bits of leading zeros, 6 bits of significant-bit count (64 wraps to 0).
        let head = (0b11 << 11) | (u64::from(leading) << 6) | u64::from(sig & 0x3f);
        let bits = delta >> trailing;
        if sig <= 51 {
            self.w.write_bits((head << sig) | bits, sig + 13);
        } else {
            self.w.write_bits(head, 13);
            self.w.write_bits(bits, sig);
        }
    }

    /// Heap bytes reserved for the chunk (at least [`Self::size_bytes`]).
    #[inline]
    pub fn capacity_bytes(&self) -> usize {
        self.w.capacity()
    }

    /// Timestamp of the newest sample (meaningless while the chunk is empty).
    #[inline]
    pub fn last_t(&self) -> i64 {
        self.t
    }

    /// Value of the newest sample, bit-exact (meaningless while the chunk is empty).
    #[inline]
    pub fn last_v(&self) -> f64 {
        f64::from_bits(self.v)
    }

    /// Number of samples in the chunk.
    #[inline]
    pub fn num_samples(&self) -> u16 {
        self.num
    }

    /// Current encoded size in bytes, including the header and the partially filled last byte.
    #[inline]
    pub fn size_bytes(&self) -> usize {
        self.w.len_bytes()
    }

    /// A copy of the complete chunk as Prometheus would store it (valid at any moment).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.w.to_vec();
        out[..CHUNK_HEADER_SIZE].copy_from_slice(&self.num.to_be_bytes());
        out
    }

    /// Finishes the chunk: its exact bytes, capacity shrunk to fit.
    pub fn into_bytes(mut self) -> Vec<u8> {
        self.w.head_mut()[..CHUNK_HEADER_SIZE].copy_from_slice(&self.num.to_be_bytes());
        self.w.into_vec()
    }
}

struct DecodedState {
    num: u16,
    t: i64,
    v: u64,
    t_delta: u64,
    leading: u8,
    trailing: u8,
    end_bit: usize,
}

/// Prometheus' `bitRange`: whether `x` fits the `nbits`-bit bucket, whose range is
/// `-(2^(nbits-1) - 1) ..= 2^(nbits-1)` (one more positive value than two's complement would allow).
#[inline(always)]
fn bit_range(x: i64, nbits: u32) -> bool {
    let half = 1i64 << (nbits - 1);
    -(half - 1) <= x && x <= half
}

#[inline(always)]
fn zigzag(x: i64) -> u64 {
    ((x << 1) ^ (x >> 63)) as u64
}

#[inline(always)]
fn unzigzag(u: u64) -> i64 {
    ((u >> 1) as i64) ^ -((u & 1) as i64)
}

/// LEB128: 7 bits per byte, least significant group first, high bit set on all but the last byte.
#[inline]
fn put_uvarint(buf: &mut [u8; 10], mut x: u64) -> usize {
    let mut i = 0;
    while x >= 0x80 {
        buf[i] = (x as u8) | 0x80;
        x >>= 7;
        i += 1;
    }
    buf[i] = x as u8;
    i + 1
}

/// Sign-extends a delta of delta read from an `sz`-bit bucket, using the bucket's asymmetric range.
#[inline(always)]
fn bucket_value(raw: u64, sz: u32) -> i64 {
    if raw > 1 << (sz - 1) {
        raw as i64 - (1i64 << sz)
    } else {
        raw as i64
    }
}

/// Decodes samples from the bytes of one XOR chunk (header included).
///
/// Iteration ends after the header's sample count, or earlier on corrupt data; [`XorIterator::err`] then
/// tells which. Arbitrary bytes never cause a panic. Bytes after the last sample are ignored (Prometheus
/// ignores them too; some old Prometheus versions wrote one extra zero byte).
#[derive(Debug)]
pub struct XorIterator<'a> {
    r: BitReader<'a>,
    total: u16,
    read: u16,
    t: i64,
    v: u64,
    t_delta: u64,
    leading: u8,
    trailing: u8,
    /// `64 - leading - trailing`, cached for the reuse-window path.
    sig: u32,
    /// `next_sample` has returned `None`.
    exhausted: bool,
    err: Option<Error>,
}

impl<'a> XorIterator<'a> {
    /// An iterator over the chunk `bytes`; fails if they are shorter than the 2-byte header.
    pub fn new(bytes: &'a [u8]) -> Result<Self> {
        let Some(&[hi, lo]) = bytes.first_chunk::<2>() else {
            return Err(Error::CorruptChunk {
                reason: ERR_SHORT,
                bit_offset: bytes.len() * 8,
            });
        };
        Ok(XorIterator {
            r: BitReader::new(bytes, CHUNK_HEADER_SIZE),
            total: u16::from_be_bytes([hi, lo]),
            read: 0,
            t: 0,
            v: 0,
            t_delta: 0,
            // Prometheus' iterator starts from a zero window; a '10' before any '11' thus means 64 bits.
            leading: 0,
            trailing: 0,
            sig: 64,
            exhausted: false,
            err: None,
        })
    }

    /// The sample count from the chunk header.
    #[inline]
    pub fn num_samples(&self) -> u16 {
        self.total
    }

    /// The error that ended iteration early, if any.
    pub fn err(&self) -> Option<&Error> {
        self.err.as_ref()
    }

    /// The next sample; `None` at the end of the chunk or on corrupt data (see [`XorIterator::err`]).
    #[inline]
    pub fn next_sample(&mut self) -> Option<(i64, f64)> {
        if self.read >= self.total {
            self.exhausted = true;
            return None;
        }
        let res = match self.read {
            0 => self.read_first(),
            1 => self.read_second(),
            _ => self.read_later(),
        };
        match res {
            // The sample comes back in registers rather than re-read from `self`, which keeps a caller's
            // wide load of (t, v) from stalling on the two narrow stores just made.
            Ok((t, v)) => {
                self.read += 1;
                Some((t, f64::from_bits(v)))
            }
            Err(reason) => {
                self.fail(reason);
                None
            }
        }
    }

    /// Appends every remaining sample to `out`, as calling [`XorIterator::next_sample`] until it
    /// returns `None` would (check [`XorIterator::err`] afterwards). One loop with the common case
    /// inlined: a query decodes whole chunks, and the per-call state checks of `next_sample` cost
    /// about a fifth of the decode.
    pub fn decode_into(&mut self, out: &mut Vec<(i64, f64)>) {
        out.reserve(usize::from(self.total.saturating_sub(self.read)));
        while self.read < 2 {
            match self.next_sample() {
                Some(s) => out.push(s),
                None => return,
            }
        }
        while self.read < self.total {
            match self.read_later() {
                Ok((t, v)) => {
                    self.read += 1;
                    out.push((t, f64::from_bits(v)));
                }
                Err(reason) => {
                    self.fail(reason);
                    return;
                }
            }
        }
        self.exhausted = true;
    }

    /// The first sample with timestamp `>= t`, not looking back: if the sample last returned (by
    /// `next_sample` or `seek`) already qualifies, it is returned again (Prometheus' `Seek` semantics).
    /// Once `next_sample` has returned `None`, returns `None`.
    pub fn seek(&mut self, t: i64) -> Option<(i64, f64)> {
        if self.exhausted {
            return None;
        }
        if self.read > 0 && self.t >= t {
            return Some((self.t, f64::from_bits(self.v)));
        }
        loop {
            let s = self.next_sample()?;
            if s.0 >= t {
                return Some(s);
            }
        }
    }

    #[cold]
    #[inline(never)]
    fn fail(&mut self, reason: &'static str) {
        self.err = Some(Error::CorruptChunk {
            reason,
            bit_offset: self.r.bit_pos(),
        });
        self.total = self.read;
        self.exhausted = true;
    }

    fn read_uvarint(&mut self) -> Result<u64, &'static str> {
        let mut x = 0u64;
        for i in 0..10 {
            let b = self.r.read_bits(8).ok_or(ERR_TRUNCATED)?;
            if b < 0x80 {
                if i == 9 && b > 1 {
                    return Err(ERR_VARINT);
                }
                return Ok(x | (b << (7 * i)));
            }
            x |= (b & 0x7f) << (7 * i);
        }
        Err(ERR_VARINT)
    }

    #[cold]
    fn read_first(&mut self) -> Result<(i64, u64), &'static str> {
        let t = unzigzag(self.read_uvarint()?);
        let v = self.r.read_bits(64).ok_or(ERR_TRUNCATED)?;
        self.t = t;
        self.v = v;
        Ok((t, v))
    }

    #[cold]
    fn read_second(&mut self) -> Result<(i64, u64), &'static str> {
        let d = self.read_uvarint()?;
        let v = self.read_value()?;
        self.t_delta = d;
        self.t = self.t.wrapping_add(d as i64);
        Ok((self.t, v))
    }

    /// Samples 2.. : delta of delta, then value, both decoded from one refilled buffer when they fit
    /// in it (always, except for 64-bit deltas of deltas and wide value windows); the rest takes the
    /// field-by-field path.
    #[inline(always)]
    fn read_later(&mut self) -> Result<(i64, u64), &'static str> {
        self.r.refill();
        let avail = self.r.buffered();
        let b = self.r.peek();
        // Buffered bits past `avail` are zero at the end of the stream and real stream bits elsewhere
        // (where `avail` >= 57), so the prefix can be classified before the length check.
        let (dod, n) = if (b as i64) >= 0 {
            (0, 1)
        } else {
            match (!b).leading_zeros() {
                1 => (bucket_value((b >> 48) & 0x3fff, 14), 16),
                2 => (bucket_value((b >> 44) & 0x1_ffff, 17), 20),
                3 => (bucket_value((b >> 40) & 0xf_ffff, 20), 24),
                _ => return self.read_later_checked(),
            }
        };
        if n + 1 > avail {
            return self.read_later_checked();
        }
        // The value field starts right after the n (<= 24) timestamp bits.
        let vb = b << n;
        let v = if (vb as i64) >= 0 {
            self.r.consume(n + 1);
            self.v
        } else if (vb >> 62) & 1 == 0 && n + 2 + self.sig <= avail {
            // '10' with the window's bits also buffered (so sig <= 62 here).
            let sig = self.sig;
            self.r.consume(n + 2 + sig);
            self.v ^= ((vb << 2) >> (64 - sig)) << self.trailing;
            self.v
        } else if (vb >> 62) & 1 == 1 && self.window_fits(vb, avail - n) {
            // '11', and the new window's header and bits are buffered too.
            let leading = ((vb >> 57) & 0x1f) as u32;
            let sig = ((vb >> 51) & 0x3f) as u32; // not 0: window_fits rejects 64 bits
            let trailing = 64 - leading - sig;
            self.r.consume(n + 13 + sig);
            self.leading = leading as u8;
            self.trailing = trailing as u8;
            self.sig = sig;
            self.v ^= ((vb << 13) >> (64 - sig)) << trailing;
            self.v
        } else {
            self.r.consume(n);
            self.read_value()?
        };
        let t_delta = self.t_delta.wrapping_add(dod as u64);
        let t = self.t.wrapping_add(t_delta as i64);
        self.t_delta = t_delta;
        self.t = t;
        Ok((t, v))
    }

    /// Whether a '11' value field at the top of `vb` declares a valid window of 1..=51 bits that lies
    /// entirely within the `avail` buffered bits.
    #[inline(always)]
    fn window_fits(&self, vb: u64, avail: u32) -> bool {
        let leading = ((vb >> 57) & 0x1f) as u32;
        let sig = ((vb >> 51) & 0x3f) as u32;
        sig != 0 && leading + sig <= 64 && 13 + sig <= avail
    }

    /// Field-by-field decoding of samples 2.., checking the available bits before every field.
    #[cold]
    #[inline(never)]
    fn read_later_checked(&mut self) -> Result<(i64, u64), &'static str> {
        self.r.refill();
        let b = self.r.peek();
        let avail = self.r.buffered();
        let dod = if b >> 63 == 0 {
            if avail < 1 {
                return Err(ERR_TRUNCATED);
            }
            self.r.consume(1);
            0
        } else {
            // Bits below `avail` are zero at the end of the stream, so this count is safe to branch on.
            match (!b).leading_zeros() {
                1 => {
                    if avail < 16 {
                        return Err(ERR_TRUNCATED);
                    }
                    self.r.consume(16);
                    bucket_value((b >> 48) & 0x3fff, 14)
                }
                2 => {
                    if avail < 20 {
                        return Err(ERR_TRUNCATED);
                    }
                    self.r.consume(20);
                    bucket_value((b >> 44) & 0x1_ffff, 17)
                }
                3 => {
                    if avail < 24 {
                        return Err(ERR_TRUNCATED);
                    }
                    self.r.consume(24);
                    bucket_value((b >> 40) & 0xf_ffff, 20)
                }
                _ => self.read_dod64()?,
            }
        };
        let v = self.read_value()?;
        self.t_delta = self.t_delta.wrapping_add(dod as u64);
        self.t = self.t.wrapping_add(self.t_delta as i64);
        Ok((self.t, v))
    }

    #[cold]
    #[inline(never)]
    fn read_dod64(&mut self) -> Result<i64, &'static str> {
        if self.r.remaining_bits() < 68 {
            return Err(ERR_TRUNCATED);
        }
        self.r.consume(4);
        Ok(self.r.read_bits(64).ok_or(ERR_TRUNCATED)? as i64)
    }

    #[inline(always)]
    fn read_value(&mut self) -> Result<u64, &'static str> {
        self.r.refill();
        let b = self.r.peek();
        let avail = self.r.buffered();
        if b >> 63 == 0 {
            if avail < 1 {
                return Err(ERR_TRUNCATED);
            }
            self.r.consume(1);
            return Ok(self.v);
        }
        if avail < 2 {
            return Err(ERR_TRUNCATED);
        }
        if (b >> 62) & 1 == 0 {
            // '10': reuse the previous window.
            let sig = self.sig;
            let bits = if sig + 2 <= avail {
                self.r.consume(sig + 2);
                (b << 2) >> (64 - sig)
            } else {
                if self.r.remaining_bits() < (sig + 2) as usize {
                    return Err(ERR_TRUNCATED);
                }
                self.r.consume(2);
                self.r.read_bits(sig).ok_or(ERR_TRUNCATED)?
            };
            self.v ^= bits << self.trailing;
            return Ok(self.v);
        }
        // '11': new window.
        if avail < 13 {
            return Err(ERR_TRUNCATED);
        }
        let leading = ((b >> 57) & 0x1f) as u32;
        let mut sig = ((b >> 51) & 0x3f) as u32;
        if sig == 0 {
            sig = 64;
        }
        if leading + sig > 64 {
            return Err(ERR_WINDOW);
        }
        self.r.consume(13);
        let bits = self.r.read_bits(sig).ok_or(ERR_TRUNCATED)?;
        let trailing = 64 - leading - sig;
        self.leading = leading as u8;
        self.trailing = trailing as u8;
        self.sig = sig;
        self.v ^= bits << trailing;
        Ok(self.v)
    }
}

impl Iterator for XorIterator<'_> {
    type Item = (i64, f64);

    #[inline]
    fn next(&mut self) -> Option<(i64, f64)> {
        self.next_sample()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(usize::from(self.total - self.read)))
    }
}

impl std::iter::FusedIterator for XorIterator<'_> {}

#[cfg(test)]
mod tests;
