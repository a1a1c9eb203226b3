//! Byte-level encoding shared by the block index writer and reader: Go's
//! `encoding/binary` varints (unsigned LEB128 and zigzag signed), big-endian
//! fixed-width integers, and a bounds-checked cursor whose every error names
//! the absolute file offset where decoding failed.
//!
//! Nothing here knows about index sections; `reader.rs` and `writer.rs` build
//! the sections from these pieces.

use crate::Error;

/// Length of a CRC32 checksum trailer.
pub(crate) const CRC_LEN: usize = 4;

/// Go's `binary.MaxVarintLen64`.
const MAX_VARINT_LEN64: usize = 10;

pub(crate) fn put_uvarint(out: &mut Vec<u8>, mut x: u64) {
    while x >= 0x80 {
        out.push((x as u8) | 0x80);
        x >>= 7;
    }
    out.push(x as u8);
}

pub(crate) fn put_varint(out: &mut Vec<u8>, x: i64) {
    // Zigzag, as Go's `binary.PutVarint`: small magnitudes of either sign
    // stay short.
    put_uvarint(out, ((x << 1) ^ (x >> 63)) as u64);
}

pub(crate) fn uvarint_len(mut x: u64) -> usize {
    let mut n = 1;
    while x >= 0x80 {
        x >>= 7;
        n += 1;
    }
    n
}

pub(crate) fn put_uvarint_str(out: &mut Vec<u8>, s: &str) {
    put_uvarint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

pub(crate) fn put_be32(out: &mut Vec<u8>, x: u32) {
    out.extend_from_slice(&x.to_be_bytes());
}

pub(crate) fn put_be64(out: &mut Vec<u8>, x: u64) {
    out.extend_from_slice(&x.to_be_bytes());
}

/// Decodes an unsigned varint with Go's `binary.Uvarint` rules: at most ten
/// bytes, and a tenth byte above 1 overflows. Returns the value and its
/// length, or `None` if `b` ends first or the value overflows.
#[inline]
pub(crate) fn uvarint(b: &[u8]) -> Option<(u64, usize)> {
    // One byte is the common case (symbol references, counts, small deltas).
    if let Some(&byte) = b.first()
        && byte < 0x80
    {
        return Some((u64::from(byte), 1));
    }
    let mut x = 0u64;
    let mut shift = 0u32;
    for (i, &byte) in b.iter().enumerate().take(MAX_VARINT_LEN64) {
        if byte < 0x80 {
            if i == MAX_VARINT_LEN64 - 1 && byte > 1 {
                return None;
            }
            return Some((x | (u64::from(byte) << shift), i + 1));
        }
        x |= u64::from(byte & 0x7f) << shift;
        shift += 7;
    }
    None
}

/// A read position inside `buf`, which starts at absolute file offset `base`.
/// Every method checks bounds and reports failures as
/// [`Error::CorruptIndex`] at the absolute offset of the failing field.
#[derive(Clone)]
pub(crate) struct Cursor<'a> {
    buf: &'a [u8],
    base: u64,
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(buf: &'a [u8], base: u64) -> Cursor<'a> {
        Cursor { buf, base, pos: 0 }
    }

    /// Absolute file offset of the next byte.
    #[inline]
    pub(crate) fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    fn err(&self, reason: String) -> Error {
        Error::corrupt(self.offset(), reason)
    }

    pub(crate) fn bytes(&mut self, n: usize, what: &str) -> Result<&'a [u8], Error> {
        if self.remaining() < n {
            return Err(self.err(format!(
                "{what}: needs {n} bytes, only {} left in the section",
                self.remaining()
            )));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub(crate) fn be32(&mut self, what: &str) -> Result<u32, Error> {
        let b = self.bytes(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn be64(&mut self, what: &str) -> Result<u64, Error> {
        let b = self.bytes(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }

    #[inline]
    pub(crate) fn uvarint(&mut self, what: &str) -> Result<u64, Error> {
        match uvarint(&self.buf[self.pos..]) {
            Some((x, n)) => {
                self.pos += n;
                Ok(x)
            }
            None => Err(self.err(format!("{what}: truncated or overflowing varint"))),
        }
    }

    /// A uvarint that must fit in 32 bits (symbol references).
    #[inline]
    pub(crate) fn uvarint32(&mut self, what: &str) -> Result<u32, Error> {
        let at = self.offset();
        let x = self.uvarint(what)?;
        u32::try_from(x)
            .map_err(|_| Error::corrupt(at, format!("{what}: {x} does not fit in 32 bits")))
    }

    /// A uvarint used as a length or count; bounded by `usize`.
    #[inline]
    pub(crate) fn uvarint_usize(&mut self, what: &str) -> Result<usize, Error> {
        let at = self.offset();
        let x = self.uvarint(what)?;
        usize::try_from(x).map_err(|_| Error::corrupt(at, format!("{what}: {x} is too large")))
    }

    #[inline]
    pub(crate) fn varint(&mut self, what: &str) -> Result<i64, Error> {
        let ux = self.uvarint(what)?;
        Ok(((ux >> 1) as i64) ^ -((ux & 1) as i64))
    }

    pub(crate) fn uvarint_bytes(&mut self, what: &str) -> Result<&'a [u8], Error> {
        let n = self.uvarint_usize(what)?;
        self.bytes(n, what)
    }

    pub(crate) fn uvarint_str(&mut self, what: &str) -> Result<&'a str, Error> {
        let at = self.offset();
        let b = self.uvarint_bytes(what)?;
        std::str::from_utf8(b).map_err(|_| Error::corrupt(at, format!("{what} is not UTF-8")))
    }
}

/// Checks a CRC32C trailer. `content` starts at absolute offset `at`; the
/// checksum is the four big-endian bytes right after it.
pub(crate) fn check_crc(content: &[u8], at: u64, trailer: &[u8], what: &str) -> Result<(), Error> {
    let want = u32::from_be_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
    let got = crc32c::crc32c(content);
    if got != want {
        return Err(Error::corrupt(
            at,
            format!("{what}: checksum mismatch (stored {want:#010x}, computed {got:#010x})"),
        ));
    }
    Ok(())
}

/// Opens the section at `off` framed as `len <4 bytes BE> | content | CRC32`
/// (symbol table, postings lists, offset tables), verifying bounds and the
/// checksum. Returns a cursor over the content.
pub(crate) fn be32_section<'a>(file: &'a [u8], off: u64, what: &str) -> Result<Cursor<'a>, Error> {
    let start = usize::try_from(off)
        .ok()
        .filter(|&s| s <= file.len())
        .ok_or_else(|| {
            Error::corrupt(
                file.len() as u64,
                format!("{what}: starts at byte {off}, beyond the end of the file"),
            )
        })?;
    let mut c = Cursor::new(&file[start..], off);
    let len = c.be32(&format!("{what} length"))? as usize;
    let content_at = c.offset();
    if c.remaining() < len.saturating_add(CRC_LEN) {
        return Err(Error::corrupt(
            content_at,
            format!(
                "{what}: length {len} plus checksum runs past the end of the file ({} bytes left)",
                c.remaining()
            ),
        ));
    }
    let content = c.bytes(len, what)?;
    let trailer = c.bytes(CRC_LEN, what)?;
    check_crc(content, content_at, trailer, what)?;
    Ok(Cursor::new(content, content_at))
}

/// Opens the section at `off` framed as `len <uvarint> | content | CRC32`
/// (series entries), never reading past `end`. Returns a cursor over the
/// content.
pub(crate) fn uvarint_section<'a>(
    file: &'a [u8],
    off: u64,
    end: usize,
    what: &str,
) -> Result<Cursor<'a>, Error> {
    let end = end.min(file.len());
    let start = usize::try_from(off)
        .ok()
        .filter(|&s| s < end)
        .ok_or_else(|| Error::corrupt(off, format!("{what}: starts outside its section")))?;
    let mut c = Cursor::new(&file[start..end], off);
    // The field name is formatted only on failure: this runs once per series entry read.
    let len = c.uvarint_usize("length").map_err(|e| match e {
        Error::CorruptIndex { offset, reason } => {
            Error::corrupt(offset, format!("{what} {reason}"))
        }
        e => e,
    })?;
    let content_at = c.offset();
    if c.remaining() < len.saturating_add(CRC_LEN) {
        return Err(Error::corrupt(
            content_at,
            format!(
                "{what}: length {len} plus checksum runs past the end of its section ({} bytes left)",
                c.remaining()
            ),
        ));
    }
    let content = c.bytes(len, what)?;
    let trailer = c.bytes(CRC_LEN, what)?;
    check_crc(content, content_at, trailer, what)?;
    Ok(Cursor::new(content, content_at))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_at_the_edges() {
        for x in [0u64, 1, 127, 128, 300, u32::MAX as u64, u64::MAX] {
            let mut b = Vec::new();
            put_uvarint(&mut b, x);
            assert_eq!(b.len(), uvarint_len(x));
            assert_eq!(uvarint(&b), Some((x, b.len())));
        }
        for x in [0i64, -1, 1, i64::MIN, i64::MAX, -64, 64] {
            let mut b = Vec::new();
            put_varint(&mut b, x);
            assert_eq!(Cursor::new(&b, 0).varint("x").unwrap(), x);
        }
    }

    #[test]
    fn uvarint_rejects_overflow_and_truncation_like_go() {
        // Ten bytes whose last is 2: more than 64 bits.
        let mut b = vec![0xffu8; 9];
        b.push(0x02);
        assert_eq!(uvarint(&b), None);
        assert_eq!(uvarint(&[0x80, 0x80]), None);
        assert_eq!(uvarint(&[0xff; 11]), None);
    }

    #[test]
    fn cursor_errors_name_the_absolute_offset() {
        let b = [0u8, 0, 0];
        let mut c = Cursor::new(&b, 100);
        c.bytes(1, "x").unwrap();
        match c.be32("field") {
            Err(Error::CorruptIndex { offset, .. }) => assert_eq!(offset, 101),
            other => panic!("{other:?}"),
        }
    }
}
