//! Fuzzes the reading of block chunk segment files (`<block>/chunks/000001`), entirely in memory (no
//! files, so it runs thousands of inputs a second). Checked with every input:
//!
//! 1. The input as a whole segment file: the sequential walk never panics, yields references with
//!    strictly increasing offsets that random access (`read_chunk_at`) resolves to the same chunk, ends
//!    either exactly at the end of the input or with one error naming the fuzz path and the offset where
//!    the intact prefix ends, and every XOR chunk it yields decodes (or fails) without panicking.
//!    Random access at arbitrary offsets never panics either.
//! 2. The input cut into chunk payloads, framed with correct lengths and CRCs (so the checksum does not
//!    stop the fuzzer at the first frame): the walk must give back exactly those payloads.
//! 3. The input as an Ember zstd segment (magic forced; once with the input's own version byte, once
//!    forced to version 2): parsing the frame table, decompressing every frame, walking its chunks and
//!    random access at arbitrary offsets never panic, and every error is a corrupt-file error naming the
//!    fuzz path.
//! 4. The input as a columnar payload (what a version 2 zstd frame decompresses to): decoding never
//!    panics, and what it returns is exactly the claimed length.
//! 5. Chunks derived from the input (real XOR chunks of input-driven samples, including NaNs, stale
//!    markers and irregular timestamps, plus raw payloads) written as a version 2 segment of several
//!    frames read back exactly, and their columns decode to the same frames; then one byte, picked by the
//!    input, is flipped: opening fails, or each chunk reads back as written or fails with an error
//!    naming the segment, never as different bytes.
#![no_main]

use std::path::{Path, PathBuf};

use ember::Error;
use ember::chunkenc::{ENCODING_XOR, XorAppender, XorIterator};
use ember::chunks::compressed::{ZSTD_SEGMENT_FORMAT_V2, ZSTD_SEGMENT_MAGIC, encode_segment};
use ember::chunks::{
    ChunkReader, ChunkRef, RawChunk, SegmentIter, ZstdParams, ZstdSegment, columnar, read_chunk_at,
};
use libfuzzer_sys::fuzz_target;

const PATH: &str = "fuzz/chunks/000001";

fn drain_xor(data: &[u8]) {
    if let Ok(mut it) = XorIterator::new(data) {
        let total = usize::from(it.num_samples());
        let n = it.by_ref().count();
        assert!(n == total || it.err().is_some());
    }
}

fn check_raw(data: &[u8]) {
    let path = Path::new(PATH);
    for off in (0..data.len().min(64)).chain([data.len(), usize::MAX]) {
        let _ = read_chunk_at(path, data, off as u32);
    }
    let Ok(mut it) = SegmentIter::new(0, path, data) else {
        return;
    };
    let mut last = None;
    let mut failed = false;
    for item in it.by_ref() {
        match item {
            Ok((r, chunk)) => {
                assert!(!failed);
                assert_eq!(r.segment(), 0);
                assert!(last.is_none_or(|l| r.offset() > l));
                last = Some(r.offset());
                assert_eq!(read_chunk_at(path, data, r.offset()).unwrap(), chunk);
                if chunk.encoding == ENCODING_XOR {
                    drain_xor(chunk.data);
                }
            }
            Err(Error::CorruptFile {
                path: p, offset, ..
            }) => {
                assert!(!failed);
                failed = true;
                assert_eq!(p, path);
                assert!((offset as usize) < data.len());
            }
            Err(e) => panic!("unexpected error kind: {e}"),
        }
    }
    assert!(it.next().is_none());
    if !failed {
        assert_eq!(it.position(), data.len() as u64);
    }
}

/// Frames payloads cut from `data` (each prefixed in the input by its length byte; the top bit of the
/// length byte picks encoding XOR or an unknown one) into a valid segment.
fn check_framed(data: &[u8]) {
    let mut seg = vec![0x85, 0xBD, 0x40, 0xDD, 0x01, 0, 0, 0];
    let mut payloads = Vec::new();
    let mut rest = data;
    while let Some((&len_byte, tail)) = rest.split_first() {
        let n = usize::from(len_byte & 0x7f).min(tail.len());
        let (payload, tail) = tail.split_at(n);
        let encoding = if len_byte & 0x80 == 0 {
            ENCODING_XOR
        } else {
            9
        };
        let mut v = n as u64;
        while v >= 0x80 {
            seg.push(v as u8 | 0x80);
            v >>= 7;
        }
        seg.push(v as u8);
        seg.push(encoding);
        seg.extend_from_slice(payload);
        let crc = crc32c::crc32c_append(crc32c::crc32c(&[encoding]), payload);
        seg.extend_from_slice(&crc.to_be_bytes());
        payloads.push((encoding, payload));
        rest = tail;
    }
    let got: Vec<_> = SegmentIter::new(0, Path::new(PATH), &seg)
        .unwrap()
        .map(|r| r.unwrap().1)
        .collect();
    assert_eq!(got.len(), payloads.len());
    for (c, (enc, payload)) in got.iter().zip(&payloads) {
        assert_eq!((c.encoding, c.data), (*enc, *payload));
        if c.encoding == ENCODING_XOR {
            drain_xor(c.data);
        }
    }
}

fn assert_corrupt_in(e: &Error, path: &Path) {
    match e {
        Error::CorruptFile { path: p, .. } => assert_eq!(p, path),
        other => panic!("unexpected error kind: {other}"),
    }
}

fn check_zstd_raw(data: &[u8], force_v2: bool) {
    let path = Path::new(PATH);
    let mut seg = ZSTD_SEGMENT_MAGIC.to_be_bytes().to_vec();
    if force_v2 {
        seg.push(ZSTD_SEGMENT_FORMAT_V2);
    }
    seg.extend_from_slice(data);
    let z = match ZstdSegment::parse(path, &seg) {
        Ok(z) => z,
        Err(e) => return assert_corrupt_in(&e, path),
    };
    for i in 0..z.frames().len() {
        if let Err(e) = z.frame_chunks(path, &seg, i) {
            assert_corrupt_in(&e, path);
        }
    }
    let end = z.logical_len();
    for off in (0..64u32).chain([end.saturating_sub(1), end, u32::MAX]) {
        match z.read_chunk(path, &seg, off) {
            Ok((enc, bytes)) if enc == ENCODING_XOR => drain_xor(&bytes),
            Ok(_) => {}
            Err(e) => assert_corrupt_in(&e, path),
        }
    }
}

fn check_columnar_payload(data: &[u8]) {
    let Some((len_bytes, payload)) = data.split_first_chunk::<2>() else {
        return;
    };
    let logical = usize::from(u16::from_le_bytes(*len_bytes));
    if let Ok(frames) = columnar::decode(payload, logical) {
        assert_eq!(frames.len(), logical);
        // Whatever decodes is a run of frames the encoder can store again and get back.
        let again = columnar::encode(&frames, &mut Default::default());
        assert_eq!(columnar::decode(&again, logical).unwrap(), frames);
    }
}

/// An XOR chunk of samples driven by `bytes`: each byte picks a timestamp step and a value (kept,
/// stepped by a decimal, raw bits, stale marker, NaN, infinity, -0.0).
fn xor_chunk_from(bytes: &[u8]) -> Vec<u8> {
    let mut a = XorAppender::new();
    let (mut t, mut v) = (1_700_000_000_000i64, 0.0f64);
    let mut bits = 0x9E37_79B9_7F4A_7C15u64;
    for &b in bytes.iter().take(u16::MAX as usize) {
        t = t.wrapping_add(match b >> 6 {
            0 | 1 => 15_000,
            2 => 15_000 + i64::from(b & 7) - 3,
            _ => i64::from(b) * 1_000_003 - 200_000_000,
        });
        bits = bits.rotate_left(7) ^ u64::from(b);
        v = match b % 8 {
            0 | 1 | 2 => v,
            3 => v + f64::from(b) * 0.25,
            4 => f64::from_bits(bits),
            5 => f64::from_bits(0x7ff0_0000_0000_0002),
            6 => [f64::NAN, f64::INFINITY, -0.0][usize::from(b / 8) % 3],
            _ => f64::from(b) / 10.0,
        };
        a.append(t, v);
    }
    a.into_bytes()
}

fn check_zstd_written(data: &[u8]) {
    let Some((&flip_at, rest)) = data.split_first() else {
        return;
    };
    let mut chunks: Vec<(u8, Vec<u8>)> = Vec::new();
    let mut rest = rest;
    while let Some((&len_byte, tail)) = rest.split_first() {
        let n = usize::from(len_byte).min(tail.len());
        let (p, tail) = tail.split_at(n);
        // Odd length bytes: a real XOR chunk of input-driven samples; even: the bytes themselves.
        chunks.push(if len_byte % 2 == 1 {
            (ENCODING_XOR, xor_chunk_from(p))
        } else {
            (len_byte % 3, p.to_vec())
        });
        rest = tail;
    }
    if chunks.is_empty() {
        return;
    }
    let raw: Vec<RawChunk<'_>> = chunks
        .iter()
        .map(|(e, d)| RawChunk {
            encoding: *e,
            data: d,
        })
        .collect();
    // Small frames, so that a few chunks already span several.
    let params = ZstdParams {
        frame_target: 256 + usize::from(flip_at) * 4,
        ..ZstdParams::default()
    };
    let (bytes, offsets) = encode_segment(&raw, params).unwrap();
    let path = PathBuf::from(PATH);
    let rd = ChunkReader::from_segment_bytes("fuzz/chunks", vec![(path.clone(), bytes.clone())])
        .unwrap();
    for (off, (enc, d)) in offsets.iter().zip(&chunks) {
        let c = rd.read(ChunkRef::new(0, *off)).unwrap();
        assert_eq!((c.encoding, c.data.as_ref()), (*enc, &d[..]));
    }
    let mut bad = bytes;
    let at = usize::from(flip_at) * bad.len() / 256;
    bad[at] ^= 1 << (flip_at % 8);
    let rd = match ChunkReader::from_segment_bytes("fuzz/chunks", vec![(path.clone(), bad)]) {
        Ok(rd) => rd,
        Err(e) => return assert_corrupt_in(&e, &path),
    };
    for (off, (enc, d)) in offsets.iter().zip(&chunks) {
        match rd.read(ChunkRef::new(0, *off)) {
            Ok(c) => assert_eq!(
                (c.encoding, c.data.as_ref()),
                (*enc, &d[..]),
                "flipped byte {at}"
            ),
            Err(e) => assert_corrupt_in(&e, &path),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    check_raw(data);
    check_framed(data);
    check_zstd_raw(data, false);
    check_zstd_raw(data, true);
    check_columnar_payload(data);
    check_zstd_written(data);
});
