//! Fuzzes the reading of block chunk segment files (`<block>/chunks/000001`). Checked with every input:
//!
//! 1. The input as a whole segment file: the sequential walk never panics, yields references with
//!    strictly increasing offsets that random access (`read_chunk_at`) resolves to the same chunk, ends
//!    either exactly at the end of the input or with one error naming the fuzz path and the offset where
//!    the intact prefix ends, and every XOR chunk it yields decodes (or fails) without panicking.
//!    Random access at arbitrary offsets never panics either.
//! 2. The input cut into chunk payloads, framed with correct lengths and CRCs (so the checksum does not
//!    stop the fuzzer at the first frame): the walk must give back exactly those payloads.
//! 3. The input as an Ember zstd segment (magic forced): parsing the frame table, decompressing every
//!    frame, walking its chunks and random access at arbitrary offsets never panic, and every error is
//!    a corrupt-file error naming the fuzz path.
//! 4. The input's payloads written as a real zstd segment (several frames) read back exactly; then one
//!    byte of the file, picked by the input, is flipped: opening fails, or each chunk reads back as
//!    written or fails with an error naming the file, never as different bytes.
#![no_main]

use std::path::Path;

use ember::Error;
use ember::chunkenc::{ENCODING_XOR, XorIterator};
use ember::chunks::compressed::ZSTD_SEGMENT_MAGIC;
use ember::chunks::{ChunkReader, ChunkWriter, SegmentIter, ZstdSegment, read_chunk_at};
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
            Err(Error::CorruptFile { path: p, offset, .. }) => {
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
        let encoding = if len_byte & 0x80 == 0 { ENCODING_XOR } else { 9 };
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

fn check_zstd_raw(data: &[u8]) {
    let path = Path::new(PATH);
    let mut seg = ZSTD_SEGMENT_MAGIC.to_be_bytes().to_vec();
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

/// Payloads cut from `data` as in `check_framed`, repeated so that they span several 64 KiB frames.
fn check_zstd_written(data: &[u8]) {
    let Some((&flip_at, rest)) = data.split_first() else {
        return;
    };
    let mut payloads: Vec<Vec<u8>> = Vec::new();
    let mut rest = rest;
    while let Some((&len_byte, tail)) = rest.split_first() {
        let n = usize::from(len_byte).min(tail.len());
        let (p, tail) = tail.split_at(n);
        payloads.push(p.to_vec());
        rest = tail;
    }
    if payloads.is_empty() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut w = ChunkWriter::create(dir.path()).unwrap().with_zstd(1);
    let mut written = Vec::new();
    let mut total = 0;
    'outer: for round in 0u32.. {
        for (i, p) in payloads.iter().enumerate() {
            // Vary the bytes per round so zstd cannot fold the repetitions into nothing.
            let mut p = p.clone();
            p.extend_from_slice(&round.to_le_bytes());
            let enc = (i % 3) as u8;
            written.push((w.write_chunk(enc, &p).unwrap(), enc, p.clone()));
            total += p.len() + 10;
            if total > 140 << 10 {
                break 'outer;
            }
        }
    }
    let files = w.finish().unwrap();
    let seg = files[0].clone();
    let rd = ChunkReader::open(dir.path()).unwrap();
    for (r, enc, p) in &written {
        let c = rd.read(*r).unwrap();
        assert_eq!((c.encoding, c.data.as_ref()), (*enc, &p[..]));
    }
    drop(rd);
    let mut bytes = std::fs::read(&seg).unwrap();
    let at = usize::from(flip_at) * bytes.len() / 256;
    bytes[at] ^= 1 << (flip_at % 8);
    std::fs::write(&seg, &bytes).unwrap();
    let rd = match ChunkReader::open(dir.path()) {
        Ok(rd) => rd,
        Err(e) => return assert_corrupt_in(&e, &seg),
    };
    for (r, enc, p) in &written {
        match rd.read(*r) {
            Ok(c) => assert_eq!((c.encoding, c.data.as_ref()), (*enc, &p[..]), "flipped byte {at}"),
            Err(e) => assert_corrupt_in(&e, &seg),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    check_raw(data);
    check_framed(data);
    check_zstd_raw(data);
    check_zstd_written(data);
});
