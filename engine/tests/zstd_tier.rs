//! The optional zstd tier for compacted blocks (`Options::compress_compacted_chunks`): compacted blocks
//! store their chunks in Ember's zstd segments and read back bit for bit, before and after a reopen;
//! head blocks stay in Prometheus' format; the index is unchanged by compression; Prometheus' own tool
//! refuses the compressed segments instead of misreading them; damage is reported with file and offset.
//!
//! The promtool check needs Debian's `promtool`; without it that test fails unless
//! EMBER_SKIP_PEER_TESTS=1.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use ember::chunkenc::XorAppender;
use ember::chunks::compressed::{ZSTD_FOOTER_SIZE, ZSTD_FRAME_ENTRY_SIZE_V2, ZSTD_SEGMENT_MAGIC};
use ember::chunks::{ChunkReader, ChunkWriter, ZstdParams};
use ember::{BlockMeta, ChunkRef, Db, Error, Labels, Options, SyncPolicy};

const T0: i64 = 1_699_999_200_000;
const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;

type Data = BTreeMap<String, Vec<(i64, u64)>>;

fn opts(compress: bool) -> Options {
    Options {
        block_range_ms: 1_000,
        wal_sync: SyncPolicy::Never,
        compress_compacted_chunks: compress,
        ..Options::default()
    }
}

fn value(s: usize, i: i64) -> u64 {
    match (i + s as i64) % 41 {
        3 => f64::NAN.to_bits(),
        5 => STALE_NAN,
        7 => f64::NEG_INFINITY.to_bits(),
        _ => ((i * (s as i64 + 3)) as f64 * 0.25 + (i % 7) as f64).to_bits(),
    }
}

/// Writes `n` samples 10 ms apart from `start` for 8 series, compacting after each second.
fn fill(db: &Db, seconds: i64, want: &mut Data) {
    let labels: Vec<Labels> = (0..8)
        .map(|s| Labels::from_pairs([("__name__", "m"), ("s", &*format!("s{s}"))]).unwrap())
        .collect();
    for sec in 0..seconds {
        let mut app = db.appender();
        for i in 0..100 {
            let t = T0 + sec * 1_000 + i * 10;
            for (s, l) in labels.iter().enumerate() {
                let v = value(s, sec * 100 + i);
                app.append(l, t, f64::from_bits(v)).unwrap();
                want.entry(format!("{l:?}")).or_default().push((t, v));
            }
        }
        app.commit().unwrap();
        db.compact().unwrap();
    }
}

fn query_all(db: &Db) -> Data {
    let mut out = Data::new();
    for s in db.querier(i64::MIN, i64::MAX).try_select(&[]).unwrap() {
        let samples = s.samples().unwrap();
        out.insert(
            format!("{:?}", s.labels()),
            samples.into_iter().map(|(t, v)| (t, v.to_bits())).collect(),
        );
    }
    out
}

fn segments(block: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(block.join("chunks"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

fn magic(path: &Path) -> u32 {
    let b = std::fs::read(path).unwrap();
    u32::from_be_bytes(b[..4].try_into().unwrap())
}

fn chunk_bytes(dir: &Path, metas: &[BlockMeta]) -> u64 {
    metas
        .iter()
        .filter(|m| m.compaction.level >= 2)
        .flat_map(|m| segments(&dir.join(m.ulid.to_string())))
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum()
}

#[test]
fn compacted_blocks_use_zstd_segments_and_read_back_every_sample() {
    let tmp = tempfile::tempdir().unwrap();
    let (zdir, pdir) = (tmp.path().join("zstd"), tmp.path().join("plain"));
    let (mut want, mut want_plain) = (Data::new(), Data::new());
    let db = Db::open(&zdir, opts(true)).unwrap();
    fill(&db, 12, &mut want);
    let plain = Db::open(&pdir, opts(false)).unwrap();
    fill(&plain, 12, &mut want_plain);
    assert_eq!(want, want_plain);

    let metas = db.blocks();
    assert!(
        metas.iter().any(|m| m.compaction.level >= 2),
        "compaction ran: {metas:?}"
    );
    assert!(metas.iter().any(|m| m.compaction.level == 1));
    for m in &metas {
        for seg in segments(&zdir.join(m.ulid.to_string())) {
            let want_magic = if m.compaction.level >= 2 {
                ZSTD_SEGMENT_MAGIC
            } else {
                0x85BD_40DD
            };
            assert_eq!(
                magic(&seg),
                want_magic,
                "{} level {}",
                seg.display(),
                m.compaction.level
            );
        }
    }
    assert_eq!(query_all(&db), want);

    // Same data, same blocks: the index does not depend on compression (references are logical
    // offsets), only the chunk files shrink.
    let pmetas = plain.blocks();
    assert_eq!(
        metas
            .iter()
            .map(|m| (m.min_time, m.max_time))
            .collect::<Vec<_>>(),
        pmetas
            .iter()
            .map(|m| (m.min_time, m.max_time))
            .collect::<Vec<_>>()
    );
    for (z, p) in metas.iter().zip(&pmetas) {
        let zi = std::fs::read(zdir.join(z.ulid.to_string()).join("index")).unwrap();
        let pi = std::fs::read(pdir.join(p.ulid.to_string()).join("index")).unwrap();
        assert!(
            zi == pi,
            "index of {} differs from the uncompressed one",
            z.ulid
        );
    }
    let (zb, pb) = (chunk_bytes(&zdir, &metas), chunk_bytes(&pdir, &pmetas));
    assert!(zb < pb, "compressed chunks {zb} bytes, plain {pb}");
    eprintln!("compacted chunk bytes: zstd {zb}, plain {pb}");

    db.close().unwrap();
    plain.close().unwrap();
    // Reopened, with the option off: reading does not depend on it.
    let db = Db::open(&zdir, opts(false)).unwrap();
    assert_eq!(db.blocks().len(), metas.len());
    assert_eq!(query_all(&db), want);
    // Compacting compressed blocks further (reading zstd, writing zstd) keeps every sample.
    let db2 = {
        db.close().unwrap();
        Db::open(&zdir, opts(true)).unwrap()
    };
    fill_more(&db2, &mut want);
    assert_eq!(query_all(&db2), want);
}

/// Twelve more seconds after the first twelve, so that the 9 s range step merges compressed blocks.
fn fill_more(db: &Db, want: &mut Data) {
    let labels: Vec<Labels> = (0..8)
        .map(|s| Labels::from_pairs([("__name__", "m"), ("s", &*format!("s{s}"))]).unwrap())
        .collect();
    for sec in 12..30 {
        let mut app = db.appender();
        for i in 0..100 {
            let t = T0 + sec * 1_000 + i * 10;
            for (s, l) in labels.iter().enumerate() {
                let v = value(s, sec * 100 + i);
                app.append(l, t, f64::from_bits(v)).unwrap();
                want.entry(format!("{l:?}")).or_default().push((t, v));
            }
        }
        app.commit().unwrap();
        db.compact().unwrap();
    }
    assert!(
        db.blocks().iter().any(|m| m.compaction.level >= 3),
        "a compressed block was compacted again: {:?}",
        db.blocks()
    );
}

#[test]
fn promtool_refuses_zstd_segments() {
    if Command::new("promtool").arg("--version").output().is_err() {
        assert_eq!(
            std::env::var("EMBER_SKIP_PEER_TESTS").as_deref(),
            Ok("1"),
            "promtool not found (set EMBER_SKIP_PEER_TESTS=1 to skip)"
        );
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let db = Db::open(dir, opts(true)).unwrap();
    fill(&db, 12, &mut Data::new());
    // Only compacted blocks left on disk, so promtool meets a compressed segment whatever it reads.
    let metas = db.blocks();
    db.close().unwrap();
    for m in metas.iter().filter(|m| m.compaction.level < 2) {
        std::fs::remove_dir_all(dir.join(m.ulid.to_string())).unwrap();
    }
    std::fs::remove_dir_all(dir.join("wal")).unwrap();
    let out = Command::new("promtool")
        .args(["tsdb", "dump"])
        .arg(dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "promtool accepted a zstd segment; printed:\n{stdout}"
    );
    assert!(
        stdout.trim().is_empty(),
        "promtool printed samples: {stdout}"
    );
    assert!(stderr.contains("magic"), "promtool's complaint: {stderr}");
}

/// A compressed segment of many chunks (several frames) written with the public writer.
/// Every third chunk is a real XOR chunk (stored as columns), the others pseudo-random bytes under
/// encodings 2 and 3 (stored raw inside the columnar frames).
fn write_segment(dir: &Path) -> (Vec<(ChunkRef, Vec<u8>)>, PathBuf) {
    let params = ZstdParams {
        frame_target: 64 << 10,
        ..ZstdParams::default()
    };
    let mut w = ChunkWriter::create(dir).unwrap().with_zstd_params(params);
    let mut written = Vec::new();
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    for i in 0..3000u32 {
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        // Pseudo-random bytes compress poorly, so 3000 chunks span several 64 KiB frames.
        let data: Vec<u8> = if i % 3 == 0 {
            let mut a = XorAppender::new();
            for j in 0..(40 + i % 90) {
                a.append(T0 + i64::from(j) * 15_000, (next() % 1000) as f64 / 8.0);
            }
            a.into_bytes()
        } else {
            (0..(40 + i % 90)).map(|_| next() as u8).collect()
        };
        let r = w.write_chunk(1 + (i % 3) as u8, &data).unwrap();
        written.push((r, data));
    }
    let files = w.finish().unwrap();
    assert_eq!(files.len(), 1);
    (written, files[0].clone())
}

fn assert_corrupt_at(e: &Error, path: &Path, offset: u64) {
    match e {
        Error::CorruptFile {
            path: p, offset: o, ..
        } => {
            assert_eq!((p.as_path(), *o), (path, offset), "{e}");
            assert!(e.to_string().contains(&path.display().to_string()), "{e}");
        }
        other => panic!("expected a corrupt-file error at {offset}, got {other}"),
    }
}

#[test]
fn damaged_zstd_segments_report_file_and_offset() {
    let tmp = tempfile::tempdir().unwrap();
    let (written, seg) = write_segment(tmp.path());
    let rd = ChunkReader::open(tmp.path()).unwrap();
    for (r, data) in &written {
        let c = rd.read(*r).unwrap();
        assert_eq!(c.data.as_ref(), &data[..]);
    }
    // The borrowing accessors refuse compressed segments rather than return something else.
    assert!(matches!(
        rd.chunk(written[0].0),
        Err(Error::InvalidChunkRef { .. })
    ));
    let z = rd.zstd_segment(0).unwrap().0.clone();
    let frames = z.frames().to_vec();
    assert!(frames.len() >= 3, "{} frames", frames.len());
    drop(rd);

    // A flipped byte in frame 1's compressed bytes: its chunks fail at the frame's offset, the others
    // still read.
    let orig = std::fs::read(&seg).unwrap();
    let mut bad = orig.clone();
    let f1 = frames[1];
    bad[f1.file_offset as usize + f1.compressed_len as usize / 2] ^= 0x40;
    std::fs::write(&seg, &bad).unwrap();
    let rd = ChunkReader::open(tmp.path()).unwrap();
    let f1_end = f1.logical_start + f1.logical_len;
    let mut failed = 0;
    for (r, data) in &written {
        if (f1.logical_start..f1_end).contains(&r.offset()) {
            assert_corrupt_at(&rd.read(*r).unwrap_err(), &seg, f1.file_offset);
            failed += 1;
        } else {
            assert_eq!(rd.read(*r).unwrap().data.as_ref(), &data[..]);
        }
    }
    assert!(failed > 0);
    drop(rd);

    // A damaged frame table, a cut file and a reference past the end fail with their offsets.
    let table = orig.len() - ZSTD_FOOTER_SIZE - frames.len() * ZSTD_FRAME_ENTRY_SIZE_V2;
    let mut bad = orig.clone();
    bad[table + 5] ^= 1;
    std::fs::write(&seg, &bad).unwrap();
    assert_corrupt_at(
        &ChunkReader::open(tmp.path()).unwrap_err(),
        &seg,
        table as u64,
    );
    std::fs::write(&seg, &orig[..orig.len() - 3]).unwrap();
    let e = ChunkReader::open(tmp.path()).unwrap_err();
    assert!(
        matches!(e, Error::CorruptFile { ref path, .. } if *path == seg),
        "{e}"
    );
    std::fs::write(&seg, &orig).unwrap();
    let rd = ChunkReader::open(tmp.path()).unwrap();
    let end = z.logical_len();
    assert_corrupt_at(
        &rd.read(ChunkRef::new(0, end)).unwrap_err(),
        &seg,
        u64::from(end),
    );
    // An offset inside a frame that is not where a chunk starts fails the chunk's checks.
    let mid = ChunkRef::new(0, written[10].0.offset() + 1);
    assert!(matches!(rd.read(mid), Err(Error::CorruptFile { .. })));
}

#[test]
fn a_damaged_compressed_block_fails_only_the_series_it_holds_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let db = Db::open(dir, opts(true)).unwrap();
    fill(&db, 12, &mut Data::new());
    let m = db
        .blocks()
        .into_iter()
        .find(|m| m.compaction.level >= 2)
        .unwrap();
    db.close().unwrap();
    let seg = segments(&dir.join(m.ulid.to_string()))[0].clone();
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes[12] ^= 0xff; // inside the first zstd frame
    std::fs::write(&seg, &bytes).unwrap();
    let db = Db::open(dir, opts(true)).unwrap();
    let series = db.querier(m.min_time, m.max_time - 1).select(&[]);
    let errors: Vec<String> = series
        .iter()
        .filter_map(|s| s.samples().err())
        .map(|e| e.to_string())
        .collect();
    assert!(!errors.is_empty());
    for e in &errors {
        assert!(e.contains(&seg.display().to_string()), "{e}");
        assert!(e.contains("zstd frame 0"), "{e}");
    }
}

/// The resilience property the fuzz target checks on random inputs, here over chosen positions of one
/// multi-frame segment: after any single flipped bit, opening fails or every chunk reads back as
/// written or fails naming the file; never different bytes. Every byte of the header, frame table and
/// footer is tried, and a spread of positions inside the compressed frames.
#[test]
fn a_flipped_bit_anywhere_in_a_zstd_segment_never_yields_different_chunk_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let (written, seg) = write_segment(tmp.path());
    let orig = std::fs::read(&seg).unwrap();
    let frames = ChunkReader::open(tmp.path())
        .unwrap()
        .zstd_segment(0)
        .unwrap()
        .0
        .frames()
        .len();
    let table = orig.len() - ZSTD_FOOTER_SIZE - frames * ZSTD_FRAME_ENTRY_SIZE_V2;
    let positions: Vec<usize> = (0..8)
        .chain((8..table).step_by(499))
        .chain(table..orig.len())
        .collect();
    let (mut refused, mut damaged, mut harmless) = (0, 0, 0);
    for &at in &positions {
        let mut bad = orig.clone();
        bad[at] ^= 1 << (at % 8);
        std::fs::write(&seg, &bad).unwrap();
        let rd = match ChunkReader::open(tmp.path()) {
            Ok(rd) => rd,
            Err(e) => {
                assert!(
                    matches!(&e, Error::CorruptFile { path, .. } if *path == seg),
                    "{e}"
                );
                refused += 1;
                continue;
            }
        };
        let mut failed = false;
        for (r, data) in &written {
            match rd.read(*r) {
                Ok(c) => assert_eq!(c.data.as_ref(), &data[..], "bit flipped at byte {at}"),
                Err(e) => {
                    assert!(
                        matches!(&e, Error::CorruptFile { path, .. } if *path == seg),
                        "{e}"
                    );
                    failed = true;
                }
            }
        }
        if failed { damaged += 1 } else { harmless += 1 }
    }
    eprintln!(
        "{} flips: {refused} refused at open, {damaged} failed reads, {harmless} harmless",
        positions.len()
    );
    // Only the 3 unchecked header padding bytes may be harmless.
    assert!(harmless <= 3, "{harmless} flips went unnoticed");
    assert!(refused > 0 && damaged > 0);
}
