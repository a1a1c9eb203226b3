use std::path::{Path, PathBuf};

use super::writer::plan_cuts;
use super::*;
use crate::Error;
use crate::chunkenc::{ENCODING_XOR, XorAppender, XorIterator};

/// Chunk bytes and the samples encoded in them.
type TestChunk = (Vec<u8>, Vec<(i64, f64)>);

/// Deterministic XOR chunks of varying length (1 to 200 samples), each with its samples.
fn xor_chunks(n: usize) -> Vec<TestChunk> {
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut t = 1_700_000_000_000i64;
    (0..n)
        .map(|_| {
            let count = 1 + (next() % 200) as usize;
            let mut a = XorAppender::new();
            let mut samples = Vec::with_capacity(count);
            for _ in 0..count {
                t += 15_000 + (next() % 3) as i64 - 1;
                let v = (next() % 1000) as f64 / 8.0;
                a.append(t, v);
                samples.push((t, v));
            }
            (a.into_bytes(), samples)
        })
        .collect()
}

fn decode(data: &[u8]) -> Vec<(i64, f64)> {
    let mut it = XorIterator::new(data).unwrap();
    let out: Vec<_> = it.by_ref().collect();
    assert!(it.err().is_none(), "{:?}", it.err());
    out
}

fn write_all(dir: &Path, segment_size: u64, chunks: &[TestChunk]) -> Vec<ChunkRef> {
    let mut w = ChunkWriter::with_segment_size(dir, segment_size).unwrap();
    let refs = chunks
        .iter()
        .map(|(data, _)| w.write_chunk(ENCODING_XOR, data).unwrap())
        .collect();
    w.finish().unwrap();
    refs
}

/// Asserts `e` is a `CorruptFile` naming `path` and `offset`.
#[track_caller]
fn assert_corrupt_at(e: &Error, path: &Path, offset: u64) {
    match e {
        Error::CorruptFile {
            path: p, offset: o, ..
        } => {
            assert_eq!((p.as_path(), *o), (path, offset), "{e}");
            let msg = e.to_string();
            assert!(msg.contains(&path.display().to_string()) && msg.contains(&offset.to_string()));
        }
        other => panic!(
            "expected corruption at {}:{offset}, got {other}",
            path.display()
        ),
    }
}

#[test]
fn ref_holds_segment_in_upper_and_offset_in_lower_32_bits() {
    let r = ChunkRef::new(2, 0x1234);
    assert_eq!(r.0, (2u64 << 32) | 0x1234);
    assert_eq!((r.segment(), r.offset()), (2, 0x1234));
    assert_eq!(ChunkRef::from(u64::MAX).segment(), u32::MAX);
    assert_eq!(format!("{:?}", ChunkRef::new(1, 8)), "ChunkRef(1:8)");
    assert_eq!(
        segment_path(Path::new("c"), 0),
        PathBuf::from("c").join("000001")
    );
}

/// The documented bytes: header, then `len`, encoding, data, and a big-endian CRC-32C of encoding and
/// data. Encoding `'1'` with data `"23456789"` makes the checksummed bytes the standard CRC check input
/// `"123456789"`, whose CRC-32C (Castagnoli) is 0xE3069283; IEEE CRC-32 would give 0xCBF43926.
#[test]
fn segment_bytes_match_the_documented_layout() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = ChunkWriter::create(dir.path()).unwrap();
    let r = w.write_chunk(b'1', b"23456789").unwrap();
    let files = w.finish().unwrap();
    assert_eq!(r, ChunkRef::new(0, 8));
    assert_eq!(files, vec![dir.path().join("000001")]);
    let mut want = vec![0x85, 0xBD, 0x40, 0xDD, 0x01, 0, 0, 0, 0x08, b'1'];
    want.extend_from_slice(b"23456789");
    want.extend_from_slice(&[0xE3, 0x06, 0x92, 0x83]);
    assert_eq!(std::fs::read(&files[0]).unwrap(), want);

    let rd = ChunkReader::open(dir.path()).unwrap();
    let c = rd.chunk(r).unwrap();
    assert_eq!((c.encoding, c.data), (b'1', &b"23456789"[..]));
}

#[test]
fn length_field_uses_several_bytes_for_long_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let data = vec![0xAB; 300];
    let mut w = ChunkWriter::create(dir.path()).unwrap();
    let a = w.write_chunk(ENCODING_XOR, &data).unwrap();
    let b = w.write_chunk(ENCODING_XOR, &[]).unwrap();
    let files = w.finish().unwrap();
    let bytes = std::fs::read(&files[0]).unwrap();
    // 300 = 0b10_0101100: low group 0x2C with the continuation bit, then 0x02.
    assert_eq!(&bytes[8..11], &[0xAC, 0x02, ENCODING_XOR]);
    assert_eq!(b.offset(), 8 + 2 + 1 + 300 + 4);
    let rd = ChunkReader::open(dir.path()).unwrap();
    assert_eq!(rd.chunk(a).unwrap().data, &data[..]);
    assert_eq!(rd.chunk(b).unwrap().data, &[] as &[u8]);
    assert_eq!(rd.size(), bytes.len() as u64);
}

#[test]
fn chunks_round_trip_across_segments_cut_at_a_small_size() {
    let dir = tempfile::tempdir().unwrap();
    let chunks = xor_chunks(300);
    let segment_size = 4096;
    let refs = write_all(dir.path(), segment_size, &chunks);

    let rd = ChunkReader::open(dir.path()).unwrap();
    assert!(rd.num_segments() > 5, "{} segments", rd.num_segments());
    for i in 0..rd.num_segments() as u32 {
        let len = std::fs::metadata(rd.segment_path(i).unwrap())
            .unwrap()
            .len();
        assert!(len <= segment_size, "segment {i} has {len} bytes");
    }
    // References are dense and in write order: same segment with growing offsets, or the next segment.
    assert_eq!(refs[0], ChunkRef::new(0, 8));
    for w in refs.windows(2) {
        assert!(
            (w[1].segment() == w[0].segment() && w[1].offset() > w[0].offset())
                || (w[1].segment() == w[0].segment() + 1 && w[1].offset() == 8),
            "{:?} -> {:?}",
            w[0],
            w[1]
        );
    }
    for (r, (data, samples)) in refs.iter().zip(&chunks) {
        let c = rd.chunk(*r).unwrap();
        assert_eq!(c.encoding, ENCODING_XOR);
        assert_eq!(c.data, &data[..]);
        assert_eq!(&decode(c.data), samples);
    }
    // The sequential walk finds exactly the written chunks.
    let walked: Vec<_> = rd.iter().map(|r| r.unwrap()).collect();
    assert_eq!(walked.len(), chunks.len());
    for ((r, c), (want_ref, (data, _))) in walked.iter().zip(refs.iter().zip(&chunks)) {
        assert_eq!((r, c.data), (want_ref, &data[..]));
    }
}

#[test]
fn write_chunks_fills_the_current_segment_then_cuts_by_estimated_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = ChunkWriter::with_segment_size(dir.path(), 100).unwrap();
    let d = [7u8; 30];
    let one = RawChunk {
        encoding: 1,
        data: &d,
    };
    assert_eq!(w.write_chunks(&[one]).unwrap(), vec![ChunkRef::new(0, 8)]);
    assert_eq!(w.segment_len(), 8 + 1 + 1 + 30 + 4);
    // Each chunk is estimated at 30 + 10 bytes: the first fits beside the 44 bytes written (84), the
    // second would not (124), so it opens segment 2.
    let refs = w.write_chunks(&[one, one]).unwrap();
    assert_eq!(refs, vec![ChunkRef::new(0, 44), ChunkRef::new(1, 8)]);
    assert_eq!(w.finish().unwrap().len(), 2);
}

#[test]
fn cut_plan_follows_prometheus_batching() {
    // Each chunk is estimated at len + 10 bytes (5-byte length field, encoding, CRC); header 8.
    let cases: &[(u64, u64, &[u64], &[bool])] = &[
        (100, 8, &[40, 40], &[false, true]),
        (100, 8, &[30, 30], &[false, false]),
        (100, 0, &[40, 40], &[false, true]),
        (100, 60, &[30], &[false]),
        (100, 60, &[31], &[true]),
        (100, 60, &[10, 10, 80, 10], &[false, false, true, true]),
        (100, 8, &[200, 5], &[false, true]),
        (100, 60, &[200, 5], &[true, true]),
        (100, 8, &[], &[]),
    ];
    for &(size, pos, lens, want) in cases {
        assert_eq!(
            plan_cuts(size, pos, lens.iter().copied()),
            want,
            "size {size} pos {pos} lens {lens:?}"
        );
    }
}

#[test]
fn oversized_chunk_gets_a_segment_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let big = vec![1u8; 500];
    let mut w = ChunkWriter::with_segment_size(dir.path(), 100).unwrap();
    let a = w.write_chunk(1, b"ab").unwrap();
    let b = w.write_chunk(1, &big).unwrap();
    let c = w.write_chunk(1, b"cd").unwrap();
    assert_eq!(w.finish().unwrap().len(), 3);
    assert_eq!((a.segment(), b.segment(), c.segment()), (0, 1, 2));
    let rd = ChunkReader::open(dir.path()).unwrap();
    assert_eq!(rd.chunk(b).unwrap().data, &big[..]);
}

#[test]
fn truncated_segment_gives_errors_naming_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let chunks = xor_chunks(6);
    let refs = write_all(dir.path(), 1 << 20, &chunks);
    let path = dir.path().join("000001");
    let full = std::fs::read(&path).unwrap();
    let ends: Vec<u64> = refs
        .iter()
        .skip(1)
        .map(|r| u64::from(r.offset()))
        .chain([full.len() as u64])
        .collect();

    for len in 0..full.len() {
        std::fs::write(&path, &full[..len]).unwrap();
        let rd = match ChunkReader::open(dir.path()) {
            Ok(rd) => rd,
            Err(e) => {
                assert!(len < SEGMENT_HEADER_SIZE, "open failed at {len}: {e}");
                assert_corrupt_at(&e, &path, 0);
                continue;
            }
        };
        assert!(len >= SEGMENT_HEADER_SIZE);
        for (r, end) in refs.iter().zip(&ends) {
            match rd.chunk(*r) {
                Ok(_) => assert!(*end <= len as u64),
                Err(e) => {
                    assert!(*end > len as u64, "{e}");
                    assert_corrupt_at(&e, &path, u64::from(r.offset()));
                }
            }
        }
        // The walk yields the whole chunks, then stops with an error at the torn one (if any).
        let mut it = rd.segment_iter(0).unwrap();
        let intact = ends.iter().filter(|&&e| e <= len as u64).count();
        for r in &refs[..intact] {
            assert_eq!(it.next().unwrap().unwrap().0, *r);
        }
        match it.next() {
            None => assert!(intact == refs.len() || len == refs[intact].offset() as usize),
            Some(Err(e)) => assert_corrupt_at(&e, &path, u64::from(refs[intact].offset())),
            Some(Ok(c)) => panic!("chunk {:?} from a torn frame", c.0),
        }
        assert!(it.next().is_none());
        let boundary = if intact == 0 { 8 } else { ends[intact - 1] };
        assert_eq!(it.position(), boundary);
    }
}

#[test]
fn every_bit_flip_is_caught_for_the_chunk_it_hits() {
    let dir = tempfile::tempdir().unwrap();
    let chunks = xor_chunks(5);
    let refs = write_all(dir.path(), 1 << 20, &chunks);
    let path = dir.path().join("000001");
    let full = std::fs::read(&path).unwrap();
    let starts: Vec<usize> = refs.iter().map(|r| r.offset() as usize).collect();

    for p in 0..full.len() {
        let mut damaged = full.clone();
        damaged[p] ^= 1 << (p % 8);
        std::fs::write(&path, &damaged).unwrap();
        let rd = match ChunkReader::open(dir.path()) {
            Ok(rd) => rd,
            Err(e) => {
                assert!(p < 5, "open failed for a flip at {p}: {e}");
                continue;
            }
        };
        assert!(p >= 5, "header flip at {p} went unnoticed");
        // The chunk whose frame holds byte p (none for the header padding).
        let hit = starts.iter().rposition(|&s| s <= p);
        for (i, r) in refs.iter().enumerate() {
            match rd.chunk(*r) {
                Ok(c) => {
                    assert_ne!(Some(i), hit, "flip at {p} not detected");
                    assert_eq!(c.data, &chunks[i].0[..]);
                }
                Err(e) => {
                    assert_eq!(Some(i), hit, "chunk {i} broken by a flip at {p}: {e}");
                    assert_corrupt_at(&e, &path, starts[i] as u64);
                }
            }
        }
        let walked: Vec<_> = rd.segment_iter(0).unwrap().collect();
        let good = walked.iter().filter(|r| r.is_ok()).count();
        assert_eq!(good, hit.unwrap_or(refs.len()));
    }
}

#[test]
fn references_outside_the_block_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let refs = write_all(dir.path(), 1 << 20, &xor_chunks(2));
    let rd = ChunkReader::open(dir.path()).unwrap();
    let path = dir.path().join("000001");
    assert!(matches!(
        rd.chunk(ChunkRef::new(1, 8)),
        Err(Error::InvalidChunkRef { chunk_ref, .. }) if chunk_ref == (1 << 32) | 8
    ));
    assert_corrupt_at(&rd.chunk(ChunkRef::new(0, 3)).unwrap_err(), &path, 3);
    assert_corrupt_at(
        &rd.chunk(ChunkRef::new(0, u32::MAX)).unwrap_err(),
        &path,
        u64::from(u32::MAX),
    );
    // An offset inside a chunk reads garbage as a frame, which the checksum refuses.
    let inside = ChunkRef::new(0, refs[0].offset() + 3);
    assert_corrupt_at(
        &rd.chunk(inside).unwrap_err(),
        &path,
        u64::from(inside.offset()),
    );
}

#[test]
fn segment_numbering_must_be_contiguous_from_one() {
    let dir = tempfile::tempdir().unwrap();
    write_all(dir.path(), 100, &xor_chunks(3));
    assert_eq!(ChunkReader::open(dir.path()).unwrap().num_segments(), 3);
    // Files that are not numbers (a leftover temporary file) are not segments.
    std::fs::write(dir.path().join("000004.tmp"), b"junk").unwrap();
    assert_eq!(ChunkReader::open(dir.path()).unwrap().num_segments(), 3);
    std::fs::remove_file(dir.path().join("000002")).unwrap();
    let e = ChunkReader::open(dir.path()).unwrap_err();
    assert!(
        e.to_string().contains("000003") && e.to_string().contains("000002"),
        "{e}"
    );
}

#[test]
fn empty_chunks_directory_is_a_block_without_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let w = ChunkWriter::create(dir.path().join("chunks")).unwrap();
    assert!(w.finish().unwrap().is_empty());
    let rd = ChunkReader::open(dir.path().join("chunks")).unwrap();
    assert_eq!((rd.num_segments(), rd.size()), (0, 0));
    assert_eq!(rd.iter().count(), 0);
    assert!(matches!(
        ChunkReader::open(dir.path().join("missing")),
        Err(Error::Io { .. })
    ));
}

#[test]
fn writer_refuses_a_used_directory_and_unusable_segment_sizes() {
    let dir = tempfile::tempdir().unwrap();
    write_all(dir.path(), 1 << 20, &xor_chunks(1));
    assert!(matches!(
        ChunkWriter::create(dir.path()),
        Err(Error::ChunkWriteRefused { .. })
    ));
    let fresh = tempfile::tempdir().unwrap();
    for size in [0, 8, u64::from(u32::MAX) + 1] {
        assert!(matches!(
            ChunkWriter::with_segment_size(fresh.path(), size),
            Err(Error::ChunkWriteRefused { .. })
        ));
    }
}

#[test]
fn segment_iter_rejects_bad_headers_and_stops_at_trailing_zeros() {
    let p = Path::new("seg");
    for bad in [
        &b""[..],
        b"\x85\xBD\x40",
        b"\x85\xBD\x40\xDE\x01\0\0\0",
        b"\x85\xBD\x40\xDD\x02\0\0\0",
    ] {
        assert!(SegmentIter::new(0, p, bad).is_err());
    }
    let mut bytes = vec![0x85, 0xBD, 0x40, 0xDD, 0x01, 0, 0, 0];
    assert_eq!(SegmentIter::new(3, p, &bytes).unwrap().count(), 0);
    // Preallocated space a crash left behind: zeros are not a valid frame (CRC of [0] is not 0).
    bytes.extend_from_slice(&[0; 16]);
    let mut it = SegmentIter::new(3, p, &bytes).unwrap();
    assert_corrupt_at(&it.next().unwrap().unwrap_err(), p, 8);
    assert!(it.next().is_none());
    assert_eq!(it.position(), 8);
}

#[test]
fn zstd_segments_keep_the_references_and_cuts_of_plain_ones() {
    // Version 2 (columnar) with small frames, and version 1, which stays readable.
    for params in [
        compressed::ZstdParams {
            frame_target: 16 << 10,
            ..compressed::ZstdParams::default()
        },
        compressed::ZstdParams::v1(compressed::ZSTD_LEVEL),
    ] {
        zstd_segments_keep_references_with(params);
    }
}

fn zstd_segments_keep_references_with(params: compressed::ZstdParams) {
    let chunks = xor_chunks(600);
    let (plain_dir, zstd_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut plain = ChunkWriter::with_segment_size(plain_dir.path(), 100_000).unwrap();
    let mut zstd = ChunkWriter::with_segment_size(zstd_dir.path(), 100_000)
        .unwrap()
        .with_zstd_params(params);
    let (mut prefs, mut zrefs) = (Vec::new(), Vec::new());
    // Several chunks per call, as a block writer passes a series' chunks.
    for group in chunks.chunks(7) {
        let raw: Vec<RawChunk<'_>> = group
            .iter()
            .map(|(d, _)| RawChunk {
                encoding: ENCODING_XOR,
                data: d,
            })
            .collect();
        prefs.extend(plain.write_chunks(&raw).unwrap());
        zrefs.extend(zstd.write_chunks(&raw).unwrap());
    }
    let (pfiles, zfiles) = (plain.finish().unwrap(), zstd.finish().unwrap());
    assert!(pfiles.len() > 1, "the test must cross segments");
    assert_eq!(pfiles.len(), zfiles.len());
    assert_eq!(prefs, zrefs);
    let rd = ChunkReader::open(zstd_dir.path()).unwrap();
    let mut frames = 0;
    for (i, f) in zfiles.iter().enumerate() {
        let bytes = std::fs::read(f).unwrap();
        assert!(is_zstd_segment(&bytes));
        let (z, _, path) = rd.zstd_segment(i as u32).unwrap();
        assert_eq!(path, f.as_path());
        assert_eq!(z.version(), params.version);
        // The logical length is the plain segment's length.
        assert_eq!(
            u64::from(z.logical_len()),
            std::fs::metadata(&pfiles[i]).unwrap().len()
        );
        assert!(bytes.len() < z.logical_len() as usize);
        frames += z.frames().len();
    }
    assert!(frames > zfiles.len(), "segments hold several frames");
    for (r, (data, samples)) in zrefs.iter().zip(&chunks) {
        let c = rd.read(*r).unwrap();
        assert_eq!((c.encoding, c.data.as_ref()), (ENCODING_XOR, &data[..]));
        assert_eq!(&decode(&c.data), samples);
    }
}

/// Values a series can take, weighted towards what scrapes produce (decimals, counters) but including
/// every special: NaNs with payloads, Prometheus' stale marker, infinities, -0.0, subnormals, raw bits.
pub(crate) fn arb_value() -> impl proptest::strategy::Strategy<Value = u64> {
    use proptest::prelude::*;
    prop_oneof![
        4 => (-1_000_000i64..1_000_000, 0u32..6).prop_map(|(m, e)| (m as f64 / 10f64.powi(e as i32)).to_bits()),
        2 => any::<u32>().prop_map(|x| f64::from(x).to_bits()),
        1 => any::<u64>(),
        1 => prop::sample::select(vec![
            0x7ff0_0000_0000_0002u64, // stale marker
            f64::NAN.to_bits(),
            0x7ff8_dead_beef_0001,
            0xfff0_0000_0000_0001, // signalling NaN, sign set
            f64::INFINITY.to_bits(),
            f64::NEG_INFINITY.to_bits(),
            (-0.0f64).to_bits(),
            1,
            f64::MAX.to_bits(),
        ]),
    ]
}

/// Series as runs of samples: irregular, sometimes huge or negative timestamp steps, repeated values.
fn arb_series() -> impl proptest::strategy::Strategy<Value = Vec<(i64, u64)>> {
    use proptest::prelude::*;
    (
        any::<i64>(),
        prop::collection::vec(
            (
                prop_oneof![
                    6 => Just(15_000i64),
                    3 => 14_990i64..15_010,
                    1 => any::<i64>(),
                ],
                prop_oneof![3 => Just(None), 2 => arb_value().prop_map(Some)],
            ),
            0..300,
        ),
    )
        .prop_map(|(t0, steps)| {
            let (mut t, mut v) = (t0, 0f64.to_bits());
            steps
                .into_iter()
                .map(|(dt, nv)| {
                    t = t.wrapping_add(dt);
                    if let Some(nv) = nv {
                        v = nv;
                    }
                    (t, v)
                })
                .collect()
        })
}

fn xor_bytes(samples: &[(i64, u64)]) -> Vec<u8> {
    let mut a = XorAppender::new();
    for &(t, v) in samples {
        a.append(t, f64::from_bits(v));
    }
    a.into_bytes()
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    /// Any sample sequences written through the columnar tier come back as exactly the bytes the plain
    /// tier holds at the same references, and decode to the same bits; chunks of other encodings and
    /// bytes the XOR encoder would not produce ride along unchanged.
    #[test]
    fn columnar_segments_read_back_the_plain_bytes(
        series in proptest::collection::vec(arb_series(), 1..40),
        frame_target in 64usize..40_000,
        foreign in proptest::collection::vec(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..50), 0..5),
    ) {
        let mut chunks: Vec<(u8, Vec<u8>)> = series.iter().map(|s| (ENCODING_XOR, xor_bytes(s))).collect();
        for (i, f) in foreign.iter().enumerate() {
            chunks.insert((i * 7) % (chunks.len() + 1), (if i % 2 == 0 { ENCODING_XOR } else { 2 }, f.clone()));
        }
        let raw: Vec<RawChunk<'_>> = chunks.iter().map(|(e, d)| RawChunk { encoding: *e, data: d }).collect();
        let plain_dir = tempfile::tempdir().unwrap();
        let mut plain = ChunkWriter::create(plain_dir.path()).unwrap();
        let plain_refs = plain.write_chunks(&raw).unwrap();
        plain.finish().unwrap();
        let zdir = tempfile::tempdir().unwrap();
        let params = compressed::ZstdParams { frame_target, ..compressed::ZstdParams::default() };
        let mut zw = ChunkWriter::create(zdir.path()).unwrap().with_zstd_params(params);
        let zrefs = zw.write_chunks(&raw).unwrap();
        let (_, stats) = zw.finish_with_stats().unwrap();
        proptest::prop_assert_eq!(&plain_refs, &zrefs);
        // Every chunk is accounted for; Ember's own XOR chunks never need the raw fallback.
        proptest::prop_assert_eq!(stats.decimal_chunks + stats.float_chunks + stats.raw_chunks, chunks.len() as u64);
        proptest::prop_assert!(stats.decimal_chunks + stats.float_chunks >= series.len() as u64);
        let prd = ChunkReader::open(plain_dir.path()).unwrap();
        let zrd = ChunkReader::open(zdir.path()).unwrap();
        proptest::prop_assert_eq!(zrd.zstd_segment(0).unwrap().0.version(), compressed::ZSTD_SEGMENT_FORMAT_V2);
        for (i, r) in zrefs.iter().enumerate() {
            let p = prd.chunk(*r).unwrap();
            let z = zrd.read(*r).unwrap();
            proptest::prop_assert_eq!((p.encoding, p.data), (z.encoding, z.data.as_ref()));
            if let Some(s) = series.get(i).filter(|_| foreign.is_empty()) {
                let got: Vec<(i64, u64)> = decode(&z.data).into_iter().map(|(t, v)| (t, v.to_bits())).collect();
                proptest::prop_assert_eq!(&got, s);
            }
        }
    }
}

/// A version 2 segment of real XOR chunks (several frames) built in memory, with the chunks.
fn columnar_segment() -> (Vec<u8>, Vec<(u32, Vec<u8>)>) {
    // Scrape-like: counters with quarter-unit increments, jittered timestamps, and a few random floats.
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let chunks: Vec<Vec<u8>> = (0..400)
        .map(|c| {
            let (mut t, mut v) = (1_700_000_000_000 + c * 7, 0.0f64);
            let samples: Vec<(i64, u64)> = (0..120)
                .map(|_| {
                    let r = next();
                    t += 15_000
                        + if r % 4 == 0 {
                            (r >> 8) as i64 % 5 - 2
                        } else {
                            0
                        };
                    v = if c % 50 == 0 {
                        f64::from_bits(r >> 2)
                    } else {
                        v + (r >> 16) as f64 % 8.0 * 0.25
                    };
                    (t, v.to_bits())
                })
                .collect();
            xor_bytes(&samples)
        })
        .collect();
    let raw: Vec<RawChunk<'_>> = chunks
        .iter()
        .map(|d| RawChunk {
            encoding: ENCODING_XOR,
            data: d,
        })
        .collect();
    let params = compressed::ZstdParams {
        frame_target: 8 << 10,
        ..compressed::ZstdParams::default()
    };
    let (bytes, offsets) = compressed::encode_segment(&raw, params).unwrap();
    let v1 = compressed::encode_segment(&raw, compressed::ZstdParams::v1(compressed::ZSTD_LEVEL))
        .unwrap()
        .0;
    assert!(
        bytes.len() * 4 < v1.len() * 3,
        "columnar {} bytes, version 1 {}",
        bytes.len(),
        v1.len()
    );
    (bytes, offsets.into_iter().zip(chunks).collect())
}

#[test]
fn columnar_segments_beat_version_one_and_read_from_memory() {
    let (bytes, chunks) = columnar_segment();
    let path = PathBuf::from("mem/000001");
    let rd = ChunkReader::from_segment_bytes("mem", vec![(path, bytes)]).unwrap();
    assert!(rd.zstd_segment(0).unwrap().0.frames().len() > 3);
    for (off, d) in &chunks {
        assert_eq!(
            rd.read(ChunkRef::new(0, *off)).unwrap().data.as_ref(),
            &d[..]
        );
    }
}

/// Every truncation, and a flipped bit at every position, of a columnar segment: opening fails or each
/// chunk reads back as written or fails naming the file. Never a panic, never different bytes.
#[test]
fn damaged_columnar_segments_fail_with_file_and_offset_never_with_other_bytes() {
    let (orig, chunks) = columnar_segment();
    let path = PathBuf::from("mem/000001");
    let check = |bytes: Vec<u8>, what: &str| -> (bool, bool) {
        let rd = match ChunkReader::from_segment_bytes("mem", vec![(path.clone(), bytes)]) {
            Ok(rd) => rd,
            Err(e) => {
                assert!(
                    matches!(&e, Error::CorruptFile { path: p, .. } if *p == path),
                    "{what}: {e}"
                );
                return (true, false);
            }
        };
        let mut failed = false;
        for (off, d) in &chunks {
            match rd.read(ChunkRef::new(0, *off)) {
                Ok(c) => assert_eq!(c.data.as_ref(), &d[..], "{what}"),
                Err(e) => {
                    assert!(
                        matches!(&e, Error::CorruptFile { path: p, .. } if *p == path),
                        "{what}: {e}"
                    );
                    failed = true;
                }
            }
        }
        (false, failed)
    };
    for cut in (0..orig.len())
        .step_by(97)
        .chain(orig.len() - 30..orig.len())
    {
        let (refused, _) = check(orig[..cut].to_vec(), &format!("cut at {cut}"));
        assert!(refused, "a segment cut at {cut} opened");
    }
    let mut unnoticed = 0;
    for at in (0..orig.len())
        .step_by(13)
        .chain(orig.len() - 200..orig.len())
    {
        let mut bad = orig.clone();
        bad[at] ^= 1 << (at % 8);
        let (refused, failed) = check(bad, &format!("bit flipped at {at}"));
        if !refused && !failed {
            unnoticed += 1;
        }
    }
    // Only the 3 unchecked header padding bytes may go unnoticed (step 13 hits none of them).
    assert_eq!(unnoticed, 0);
}

#[test]
fn version_one_segments_stay_readable() {
    let chunks = xor_chunks(50);
    let raw: Vec<RawChunk<'_>> = chunks
        .iter()
        .map(|(d, _)| RawChunk {
            encoding: ENCODING_XOR,
            data: d,
        })
        .collect();
    let (bytes, offsets) =
        compressed::encode_segment(&raw, compressed::ZstdParams::v1(compressed::ZSTD_LEVEL))
            .unwrap();
    assert_eq!(bytes[4], compressed::ZSTD_SEGMENT_FORMAT_V1);
    let rd = ChunkReader::from_segment_bytes("mem", vec![("mem/000001".into(), bytes)]).unwrap();
    for (off, (d, samples)) in offsets.iter().zip(&chunks) {
        let c = rd.read(ChunkRef::new(0, *off)).unwrap();
        assert_eq!(c.data.as_ref(), &d[..]);
        assert_eq!(&decode(&c.data), samples);
    }
}
