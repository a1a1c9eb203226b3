//! Bit-granular writer and reader for chunk encodings.
//!
//! Bits are stored most-significant first: the first bit written is the top bit of the first byte, and a
//! stream whose length is not a multiple of eight ends with zero bits up to the byte boundary. Both sides
//! move 64 bits at a time through a word-sized buffer, so the per-sample cost is a few shifts rather than
//! a loop over bits or bytes.

/// Appends bits to a byte vector.
///
/// Whole bytes live in `bytes`; up to 63 further bits wait in `acc` (left-aligned: the oldest pending bit
/// is bit 63) and are moved to `bytes` eight bytes at a time once 64 bits have gathered.
#[derive(Debug, Clone)]
pub(crate) struct BitWriter {
    bytes: Vec<u8>,
    acc: u64,
    pending: u32,
}

impl BitWriter {
    /// A writer that continues right after the (byte-aligned) content of `bytes`.
    pub(crate) fn new(bytes: Vec<u8>) -> Self {
        BitWriter {
            bytes,
            acc: 0,
            pending: 0,
        }
    }

    /// A writer that continues after the first `bit_len` bits of `bytes`; the rest of `bytes` (bytes past
    /// the end and unused bits of the last partial byte) is discarded.
    pub(crate) fn resume(mut bytes: Vec<u8>, bit_len: usize) -> Self {
        let full = bit_len / 8;
        let rem = (bit_len % 8) as u32;
        let mut acc = 0;
        if rem > 0 {
            let last = bytes.get(full).copied().unwrap_or(0);
            // Keep only the `rem` used bits of the partial byte, left-aligned in the accumulator.
            acc = u64::from(last & !(0xffu8 >> rem)) << 56;
        }
        bytes.truncate(full);
        BitWriter {
            bytes,
            acc,
            pending: rem,
        }
    }

    /// Writes the `n` low bits of `v`, most significant first. `1 <= n <= 64`; the bits of `v` above
    /// the low `n` must be zero.
    #[inline(always)]
    pub(crate) fn write_bits(&mut self, v: u64, n: u32) {
        debug_assert!((1..=64).contains(&n));
        debug_assert!(
            n == 64 || v >> n == 0,
            "write_bits: value {v:#x} wider than {n} bits"
        );
        let free = 64 - self.pending; // 1..=64
        if n < free {
            // Fits with room to spare: `free - n` is in 1..=63.
            self.acc |= v << (free - n);
            self.pending += n;
        } else {
            // Completes the accumulator; `rest` (0..=63) bits of `v` carry over.
            let rest = n - free;
            let word = self.acc | (v >> rest);
            if self.bytes.capacity() - self.bytes.len() < 8 {
                self.grow();
            }
            self.bytes.extend_from_slice(&word.to_be_bytes());
            self.acc = if rest == 0 { 0 } else { v << (64 - rest) };
            self.pending = rest;
        }
    }

    /// Writes one bit.
    /// Grows by a quarter (at least 32 bytes) instead of doubling: an open head chunk lives for hours, and
    /// with doubling a chunk of 300 bytes would hold 512, which is most of a series' memory budget. The
    /// extra reallocations (about 7 per 120-sample chunk) cost nothing measurable.
    #[cold]
    fn grow(&mut self) {
        let extra = (self.bytes.len() / 4).max(32);
        self.bytes.reserve_exact(extra);
    }

    #[cfg(test)]
    pub(crate) fn write_bit(&mut self, bit: bool) {
        self.write_bits(u64::from(bit), 1);
    }

    /// Writes the bytes of `b` (at the current bit position, which need not be byte-aligned).
    #[inline]
    pub(crate) fn write_bytes(&mut self, b: &[u8]) {
        for &byte in b {
            self.write_bits(u64::from(byte), 8);
        }
    }

    /// The whole bytes written so far (pending bits excluded). Used to patch byte-aligned headers.
    pub(crate) fn head_mut(&mut self) -> &mut [u8] {
        &mut self.bytes
    }

    /// Total length in bytes once the pending bits are padded to a byte boundary.
    #[inline]
    pub(crate) fn capacity(&self) -> usize {
        self.bytes.capacity()
    }

    #[inline]
    pub(crate) fn len_bytes(&self) -> usize {
        self.bytes.len() + self.pending.div_ceil(8) as usize
    }

    /// Number of bits written so far.
    #[cfg(test)]
    pub(crate) fn len_bits(&self) -> usize {
        self.bytes.len() * 8 + self.pending as usize
    }

    fn pending_bytes(&self) -> ([u8; 8], usize) {
        (self.acc.to_be_bytes(), self.pending.div_ceil(8) as usize)
    }

    /// A copy of the stream, the last byte padded with zero bits.
    pub(crate) fn to_vec(&self) -> Vec<u8> {
        let (tail, n) = self.pending_bytes();
        let mut out = Vec::with_capacity(self.bytes.len() + n);
        out.extend_from_slice(&self.bytes);
        out.extend_from_slice(&tail[..n]);
        out
    }

    /// The stream, the last byte padded with zero bits, keeping the vector's capacity.
    pub(crate) fn into_vec_keep_capacity(mut self) -> Vec<u8> {
        let (tail, n) = self.pending_bytes();
        self.bytes.extend_from_slice(&tail[..n]);
        self.bytes
    }

    /// The stream, the last byte padded with zero bits, capacity shrunk to fit.
    pub(crate) fn into_vec(mut self) -> Vec<u8> {
        let (tail, n) = self.pending_bytes();
        self.bytes.extend_from_slice(&tail[..n]);
        self.bytes.shrink_to_fit();
        self.bytes
    }
}

/// Reads bits from a byte slice. Reading past the end fails (returns `None`) without consuming anything;
/// it never panics, whatever the bytes.
///
/// `buf` holds the next `nbits` unread bits left-aligned (the next bit is bit 63). Refills load eight bytes
/// at once where eight are left and byte by byte in the last few. Bits of `buf` below `nbits` are either
/// zero or the stream's own next bits (a refill may load a byte partially), never anything else, so OR-ing
/// a later refill over them is harmless.
#[derive(Debug, Clone)]
pub(crate) struct BitReader<'a> {
    data: &'a [u8],
    /// Index of the next byte of `data` not yet (fully) accounted for in `buf`.
    pos: usize,
    buf: u64,
    nbits: u32,
}

impl<'a> BitReader<'a> {
    /// A reader starting at byte `start` of `data` (past the end is allowed: nothing can be read then).
    pub(crate) fn new(data: &'a [u8], start: usize) -> Self {
        BitReader {
            data,
            pos: start.min(data.len()),
            buf: 0,
            nbits: 0,
        }
    }

    /// Offset in bits, from the start of `data`, of the next unread bit.
    #[inline]
    pub(crate) fn bit_pos(&self) -> usize {
        self.pos * 8 - self.nbits as usize
    }

    /// Bits left to read in the whole stream.
    #[inline]
    pub(crate) fn remaining_bits(&self) -> usize {
        (self.data.len() - self.pos) * 8 + self.nbits as usize
    }

    /// Tops up the buffer: afterwards at least 57 bits are buffered, or every remaining bit is.
    #[inline(always)]
    pub(crate) fn refill(&mut self) {
        if self.nbits > 56 {
            return;
        }
        if let Some(word) = self.data.get(self.pos..self.pos + 8) {
            let mut b = [0u8; 8];
            b.copy_from_slice(word);
            self.buf |= u64::from_be_bytes(b) >> self.nbits;
            let take = (64 - self.nbits) / 8; // 1..=8 whole bytes
            self.pos += take as usize;
            self.nbits += take * 8;
        } else if self.pos < self.data.len() {
            self.refill_tail();
        }
    }

    /// Refill from the last (fewer than 8) bytes: load them all into one zero-padded word.
    #[inline(never)]
    fn refill_tail(&mut self) {
        let rest = self.data.get(self.pos..).unwrap_or(&[]);
        let k = rest.len().min(8);
        let mut b = [0u8; 8];
        b[..k].copy_from_slice(&rest[..k]);
        self.buf |= u64::from_be_bytes(b) >> self.nbits;
        let take = (((64 - self.nbits) / 8) as usize).min(k);
        self.pos += take;
        self.nbits += take as u32 * 8;
    }

    /// The buffered bits, left-aligned; only the top [`Self::buffered`] of them are meaningful.
    #[inline(always)]
    pub(crate) fn peek(&self) -> u64 {
        self.buf
    }

    /// Number of bits currently buffered.
    #[inline(always)]
    pub(crate) fn buffered(&self) -> u32 {
        self.nbits
    }

    /// Drops `n` buffered bits; `1 <= n <= buffered()`.
    #[inline(always)]
    pub(crate) fn consume(&mut self, n: u32) {
        debug_assert!(n >= 1 && n <= self.nbits);
        // Two shifts so that n == 64 clears the buffer instead of overflowing the shift.
        self.buf = (self.buf << 1) << (n - 1);
        self.nbits -= n;
    }

    /// Reads `n` bits (`1 <= n <= 64`) as the low bits of the result.
    #[inline(always)]
    pub(crate) fn read_bits(&mut self, n: u32) -> Option<u64> {
        debug_assert!((1..=64).contains(&n));
        if n > self.nbits {
            self.refill();
            if n > self.nbits {
                return self.read_bits_split(n);
            }
        }
        let v = self.buf >> (64 - n);
        self.consume(n);
        Some(v)
    }

    /// Slow path of `read_bits`: the stream ends within `n` bits, or `n` exceeds what one refill buffers.
    #[cold]
    #[inline(never)]
    fn read_bits_split(&mut self, n: u32) -> Option<u64> {
        if self.remaining_bits() < n as usize || n <= 32 {
            // After a refill fewer than `n <= 32` bits are buffered only at the end of the stream.
            return None;
        }
        let hi = self.read_bits(n - 32)?;
        let lo = self.read_bits(32)?;
        Some((hi << 32) | lo)
    }

    /// Reads one bit.
    #[cfg(test)]
    pub(crate) fn read_bit(&mut self) -> Option<bool> {
        self.read_bits(1).map(|b| b == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Reference: one bit at a time into bytes, most significant bit first.
    fn naive(fields: &[(u64, u32)]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut nbits = 0usize;
        for &(v, n) in fields {
            for i in (0..n).rev() {
                if nbits & 7 == 0 {
                    out.push(0);
                }
                if (v >> i) & 1 == 1 {
                    *out.last_mut().unwrap() |= 0x80 >> (nbits & 7);
                }
                nbits += 1;
            }
        }
        out
    }

    fn field() -> impl Strategy<Value = (u64, u32)> {
        (1u32..=64, any::<u64>())
            .prop_map(|(n, v)| (if n == 64 { v } else { v & ((1 << n) - 1) }, n))
    }

    #[test]
    fn writer_pads_last_byte_with_zeros() {
        let mut w = BitWriter::new(Vec::new());
        w.write_bits(0b101, 3);
        assert_eq!(w.len_bytes(), 1);
        assert_eq!(w.to_vec(), vec![0b1010_0000]);
        w.write_bits(0x1ff, 9);
        assert_eq!(w.into_vec(), vec![0b1011_1111, 0b1111_0000]);
    }

    #[test]
    fn writer_keeps_prefix_bytes() {
        let mut w = BitWriter::new(vec![0xaa, 0xbb]);
        w.write_bit(true);
        w.write_bytes(&[0xff]);
        assert_eq!(w.to_vec(), vec![0xaa, 0xbb, 0xff, 0x80]);
        w.head_mut()[0] = 0x01;
        assert_eq!(w.into_vec(), vec![0x01, 0xbb, 0xff, 0x80]);
    }

    #[test]
    fn reader_fails_past_end_without_consuming() {
        let data = [0xde, 0xad, 0xbe];
        let mut r = BitReader::new(&data, 1);
        assert_eq!(r.read_bits(4), Some(0xa));
        assert_eq!(r.read_bits(13), None);
        assert_eq!(r.bit_pos(), 12);
        assert_eq!(r.read_bits(12), Some(0xdbe));
        assert_eq!(r.read_bit(), None);
        assert_eq!(r.remaining_bits(), 0);
        let mut r = BitReader::new(&data, 7);
        assert_eq!(r.read_bit(), None);
    }

    #[test]
    fn reader_64_bit_reads_across_refills() {
        let data: Vec<u8> = (0u8..40).collect();
        let mut r = BitReader::new(&data, 0);
        assert_eq!(r.read_bits(3), Some(0));
        let mut expect = BitReader::new(&data, 0);
        expect.read_bits(3).unwrap();
        for _ in 0..4 {
            let hi = expect.read_bits(32).unwrap();
            let lo = expect.read_bits(32).unwrap();
            assert_eq!(r.read_bits(64), Some((hi << 32) | lo));
        }
    }

    proptest! {
        #[test]
        fn writer_matches_naive_and_reader_inverts(
            prefix in proptest::collection::vec(any::<u8>(), 0..3),
            fields in proptest::collection::vec(field(), 0..40),
        ) {
            let mut w = BitWriter::new(prefix.clone());
            for &(v, n) in &fields {
                w.write_bits(v, n);
            }
            let total_bits = w.len_bits();
            let mut expect = prefix.clone();
            expect.extend(naive(&fields));
            prop_assert_eq!(w.to_vec(), expect.clone());
            prop_assert_eq!(w.len_bytes(), expect.len());

            let mut r = BitReader::new(&expect, prefix.len());
            for &(v, n) in &fields {
                prop_assert_eq!(r.read_bits(n), Some(v));
            }
            prop_assert_eq!(r.bit_pos(), total_bits);
            prop_assert!(r.remaining_bits() < 8);

            // Resuming at every field boundary continues the same stream.
            let mut bits = prefix.len() * 8;
            for (i, &(_, n)) in fields.iter().enumerate() {
                bits += n as usize;
                let mut w2 = BitWriter::resume(expect.clone(), bits);
                for &(v, n) in &fields[i + 1..] {
                    w2.write_bits(v, n);
                }
                prop_assert_eq!(w2.into_vec(), expect.clone());
            }
        }
    }
}
