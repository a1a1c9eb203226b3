//! Damage handling: torn tails, flipped bytes, invalid fragments, repair,
//! and "never panic on any bytes".

use std::fs::OpenOptions;
use std::path::Path;

use ember_wal::{
    Compression, CorruptionKind, Error, PAGE_SIZE, Reader, SyncPolicy, Wal, WalOptions,
    is_torn_tail, repair, segment_path,
};
use proptest::prelude::*;

const SEG: usize = 64 * 1024;

fn never(compression: Compression) -> WalOptions {
    WalOptions {
        segment_size: SEG,
        compression,
        sync: SyncPolicy::Never,
    }
}

fn record(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect()
}

/// All records, plus the error that ended reading (if any).
fn read(dir: &Path) -> (Vec<Vec<u8>>, Option<Error>) {
    let mut r = Reader::open_dir(dir).unwrap();
    let mut out = Vec::new();
    loop {
        match r.next_record() {
            Ok(Some(rec)) => out.push(rec.to_vec()),
            Ok(None) => return (out, None),
            Err(e) => return (out, Some(e)),
        }
    }
}

/// Start offsets (segment, offset) of every record, from a clean read.
fn positions(dir: &Path) -> Vec<(u32, u64)> {
    let mut r = Reader::open_dir(dir).unwrap();
    let mut out = Vec::new();
    while r.next_record().unwrap().is_some() {
        out.push(r.position().unwrap());
    }
    out
}

fn copy_dir(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[test]
fn torn_tail_is_truncated_on_repair() {
    for compression in [Compression::None, Compression::Zstd] {
        let dir = tempfile::tempdir().unwrap();
        // Segments large enough that segment 1 never rolls.
        let opts = WalOptions {
            segment_size: 1 << 20,
            ..never(compression)
        };
        let wal = Wal::open(dir.path(), opts).unwrap();
        // Segment 0 stays intact; segment 1 is the one torn. Its last page
        // holds the tail of a record begun on the previous page, several
        // small records, a record with an empty body and a padding run.
        wal.log(&[&record(1000, 1)]).unwrap();
        wal.next_segment().unwrap();
        let sizes = [
            100, 5000, 20_000, 3, 0, 9000, 30_000, 50, 7, 1000, 0, 2000, 11, 64, 5, 300, 0, 1, 90,
        ];
        let expected: Vec<Vec<u8>> = std::iter::once(record(1000, 1))
            .chain(sizes.iter().enumerate().map(|(i, &n)| record(n, i as u8)))
            .collect();
        for r in &expected[1..] {
            wal.log(&[r]).unwrap();
        }
        std::mem::forget(wal); // crash: the last page is left partial

        let path = segment_path(dir.path(), 1);
        let full = std::fs::read(&path).unwrap();
        let starts = positions(dir.path());
        assert_eq!(starts.len(), expected.len());
        // Start offsets of the records in segment 1, in order.
        let seg1: Vec<u64> = starts.iter().filter(|p| p.0 == 1).map(|p| p.1).collect();
        let in_seg0 = starts.len() - seg1.len();

        let last_page = (full.len() - 1) / PAGE_SIZE * PAGE_SIZE;
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        let mut eofs = 0;
        // Cut at every offset of the last page, shrinking the file step by step.
        for cut in (last_page..full.len()).rev() {
            file.set_len(cut as u64).unwrap();
            let (got, err) = read(dir.path());
            // Records starting at or after the cut cannot be there; the one
            // the cut falls in may be complete (cut in trailing padding) or torn.
            let before = in_seg0 + seg1.iter().filter(|&&s| s < cut as u64).count();
            assert!(
                got.len() == before || got.len() + 1 == before,
                "cut {cut}: {} records, {before} started before the cut",
                got.len()
            );
            assert_eq!(got[..], expected[..got.len()], "cut {cut}: not a prefix");
            match err {
                None => {}
                Some(Error::Corruption {
                    kind: CorruptionKind::UnexpectedEof,
                    segment,
                    offset,
                    ref path,
                    ..
                }) => {
                    eofs += 1;
                    assert_eq!(segment, 1);
                    assert_eq!(path, &segment_path(dir.path(), 1));
                    // The reported offset is the start of the torn record,
                    // which is the first record not returned.
                    assert_eq!(offset, seg1[got.len() - in_seg0], "cut {cut}");
                    assert!(is_torn_tail(dir.path(), err.as_ref().unwrap()).unwrap());
                    // Repair a copy and check the prefix reads cleanly. (Every
                    // 61st cut: repair fsyncs, and the cut loop is 32 Ki long.)
                    if cut % 61 == 0 || cut == full.len() - 1 {
                        let copy = tempfile::tempdir().unwrap();
                        copy_dir(dir.path(), copy.path());
                        repair(copy.path(), segment, offset).unwrap();
                        let (after, err) = read(copy.path());
                        assert!(err.is_none(), "cut {cut}: {err:?}");
                        assert_eq!(after, got, "cut {cut}: repair lost records");
                    }
                }
                Some(e) => panic!("cut {cut}: unexpected error {e}"),
            }
        }
        // Most cuts land inside some record.
        assert!(
            eofs * 2 > full.len() - last_page,
            "only {eofs} torn records seen"
        );
    }
}

#[test]
fn torn_tail_followed_by_the_empty_segment_of_a_reopen_is_still_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), never(Compression::None)).unwrap();
    wal.log(&[&record(100, 1), &record(40_000, 2)]).unwrap();
    std::mem::forget(wal);
    let path = segment_path(dir.path(), 0);
    let len = std::fs::metadata(&path).unwrap().len();
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len - 10)
        .unwrap();
    // The restarted process opens the WAL first: segment 1 is created empty.
    Wal::open(dir.path(), never(Compression::None))
        .unwrap()
        .close()
        .unwrap();

    let (got, err) = read(dir.path());
    assert_eq!(got.len(), 1);
    let err = err.unwrap();
    assert_eq!(err.corruption_kind(), Some(CorruptionKind::UnexpectedEof));
    assert!(is_torn_tail(dir.path(), &err).unwrap());
    let Error::Corruption {
        segment, offset, ..
    } = err
    else {
        unreachable!()
    };
    assert_eq!((segment, offset), (0, 107));
    repair(dir.path(), segment, offset).unwrap();
    assert_eq!(Wal::segment_range(dir.path()).unwrap(), Some((0, 0)));
    let (got, err) = read(dir.path());
    assert!(err.is_none());
    assert_eq!(got, vec![record(100, 1)]);
}

#[test]
fn flipped_byte_in_an_older_segment_is_a_checksum_error_and_repair_keeps_the_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), never(Compression::None)).unwrap();
    let expected: Vec<Vec<u8>> = (0..40).map(|i| record(3000 + i * 500, i as u8)).collect();
    for r in &expected {
        wal.log(&[r]).unwrap();
    }
    wal.close().unwrap();
    let (first, last) = Wal::segment_range(dir.path()).unwrap().unwrap();
    assert!(last - first >= 3, "need several segments");

    let starts = positions(dir.path());
    // The third record of segment 1.
    let victim = starts.iter().position(|p| p.0 == 1).unwrap() + 2;
    let (seg, off) = starts[victim];
    let path = segment_path(dir.path(), seg);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[off as usize + 7 + 20] ^= 0x40; // inside the first fragment's data
    std::fs::write(&path, &bytes).unwrap();

    let (got, err) = read(dir.path());
    assert_eq!(got[..], expected[..victim]);
    let err = err.unwrap();
    let msg = err.to_string();
    match &err {
        Error::Corruption {
            kind: CorruptionKind::Checksum,
            segment,
            offset,
            path: p,
            ..
        } => {
            assert_eq!((*segment, *offset), (seg, off));
            assert_eq!(p, &path);
        }
        other => panic!("expected a checksum corruption, got {other}"),
    }
    assert!(
        msg.starts_with(&format!(
            "WAL corruption in segment {} at offset {off}: checksum mismatch",
            path.display()
        )),
        "{msg}"
    );
    assert!(
        !is_torn_tail(dir.path(), &err).unwrap(),
        "not a tail: later segments hold data"
    );

    repair(dir.path(), seg, off).unwrap();
    assert_eq!(Wal::segment_range(dir.path()).unwrap(), Some((first, seg)));
    let (got, err) = read(dir.path());
    assert!(err.is_none(), "{err:?}");
    assert_eq!(got[..], expected[..victim]);
    // Writing resumes in a fresh segment after the repaired one.
    let wal = Wal::open(dir.path(), never(Compression::None)).unwrap();
    assert_eq!(wal.current_segment(), seg + 1);
    wal.log(&[b"again"]).unwrap();
    wal.close().unwrap();
    assert_eq!(read(dir.path()).0.last().unwrap(), b"again");
}

#[test]
fn flipped_byte_in_a_later_fragment_reports_the_record_start() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), never(Compression::None)).unwrap();
    wal.log(&[b"head", &record(50_000, 3), b"tail"]).unwrap();
    wal.close().unwrap();
    let path = segment_path(dir.path(), 0);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[PAGE_SIZE + 100] ^= 1; // in the last fragment, on page 1
    std::fs::write(&path, &bytes).unwrap();
    let (got, err) = read(dir.path());
    assert_eq!(got, vec![b"head".to_vec()]);
    match err.unwrap() {
        Error::Corruption { kind, offset, .. } => {
            assert_eq!(kind, CorruptionKind::Checksum);
            assert_eq!(offset, 11, "start of the record's first fragment");
        }
        e => panic!("{e}"),
    }
}

/// One hand-made segment per way a header can be impossible.
#[test]
fn impossible_fragments_are_invalid_fragment_errors() {
    fn frag(typ: u8, data: &[u8]) -> Vec<u8> {
        let mut out = vec![typ];
        out.extend_from_slice(&(data.len() as u16).to_be_bytes());
        out.extend_from_slice(&crc32c::crc32c(data).to_be_bytes());
        out.extend_from_slice(data);
        out
    }
    let ok = frag(1, b"fine");
    let cases: Vec<(&str, Vec<u8>, u64)> = vec![
        ("unknown type 5", [ok.clone(), frag(5, b"x")].concat(), 11),
        (
            "both compression flags",
            [ok.clone(), frag(0x18 | 1, b"x")].concat(),
            11,
        ),
        ("reserved bit", [ok.clone(), frag(0x21, b"x")].concat(), 11),
        (
            "middle without first",
            [ok.clone(), frag(3, b"x")].concat(),
            11,
        ),
        ("last without first", frag(4, b"x"), 0),
        (
            "full inside a record",
            [ok.clone(), frag(2, b"a"), frag(1, b"b")].concat(),
            11,
        ),
        (
            "first inside a record",
            [frag(2, b"a"), frag(2, b"b")].concat(),
            0,
        ),
        (
            "compression flag changes",
            [frag(2, b"a"), frag(0x10 | 4, b"b")].concat(),
            0,
        ),
        (
            "length past the page",
            {
                let mut seg = frag(1, &vec![7u8; PAGE_SIZE - 20 - 7]);
                let mut bad = frag(1, b"0123456789abcdefghij");
                bad[1..3].copy_from_slice(&30u16.to_be_bytes());
                seg.extend_from_slice(&bad);
                seg
            },
            (PAGE_SIZE - 20) as u64,
        ),
        (
            "non-zero byte in padding",
            [ok.clone(), vec![0, 0, 9]].concat(),
            11,
        ),
        (
            "header in the last 6 bytes",
            {
                let mut seg = frag(1, &vec![1u8; PAGE_SIZE - 7 - 6]);
                seg.extend_from_slice(&[1, 0, 0, 0, 0, 0]);
                seg
            },
            (PAGE_SIZE - 6) as u64,
        ),
    ];
    for (name, seg, offset) in cases {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("00000000"), &seg).unwrap();
        let (_, err) = read(dir.path());
        match err {
            Some(Error::Corruption {
                kind: CorruptionKind::InvalidFragment,
                offset: o,
                ..
            }) => {
                assert_eq!(o, offset, "{name}")
            }
            other => panic!("{name}: {other:?}"),
        }
    }
}

#[test]
fn undecompressible_payload_is_a_decompress_error() {
    let mut seg = vec![0x10 | 1];
    let junk = b"definitely not zstd";
    seg.extend_from_slice(&(junk.len() as u16).to_be_bytes());
    seg.extend_from_slice(&crc32c::crc32c(junk).to_be_bytes());
    seg.extend_from_slice(junk);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("00000000"), &seg).unwrap();
    let (_, err) = read(dir.path());
    assert_eq!(
        err.unwrap().corruption_kind(),
        Some(CorruptionKind::Decompress)
    );
}

#[test]
fn zero_bytes_at_the_end_of_a_segment_are_a_clean_end() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), never(Compression::None)).unwrap();
    wal.log(&[b"x"]).unwrap();
    std::mem::forget(wal);
    let path = segment_path(dir.path(), 0);
    // A crash can leave a zero-filled block past the last write.
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.resize(bytes.len() + 3 * PAGE_SIZE / 2, 0);
    std::fs::write(&path, &bytes).unwrap();
    let (got, err) = read(dir.path());
    assert!(err.is_none());
    assert_eq!(got, vec![b"x".to_vec()]);
}

#[test]
fn reader_keeps_returning_its_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("00000000"), [4u8, 0, 0, 0, 0, 0, 0]).unwrap();
    let mut r = Reader::open_dir(dir.path()).unwrap();
    let a = r.next_record().unwrap_err().to_string();
    let b = r.next_record().unwrap_err().to_string();
    assert_eq!(a, b);
}

#[test]
fn record_decode_errors_are_located_by_the_reader() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), never(Compression::None)).unwrap();
    wal.log(&[b"\x02 not really samples"]).unwrap();
    wal.close().unwrap();
    let mut r = Reader::open_dir(dir.path()).unwrap();
    let rec = r.next_record().unwrap().unwrap().to_vec();
    let err = ember_wal::record::decode_samples(&rec, &mut Vec::new()).unwrap_err();
    assert!(matches!(err, Error::Record(_)));
    match r.locate(err) {
        Error::Corruption {
            kind,
            segment,
            offset,
            ..
        } => {
            assert_eq!((kind, segment, offset), (CorruptionKind::Record, 0, 0))
        }
        e => panic!("{e}"),
    }
}

#[test]
fn segment_gaps_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("00000000"), b"").unwrap();
    std::fs::write(dir.path().join("00000002"), b"").unwrap();
    assert!(matches!(
        Reader::open_dir(dir.path()),
        Err(Error::Layout { .. })
    ));
    assert!(matches!(
        Wal::open(dir.path(), WalOptions::default()),
        Err(Error::Layout { .. })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Any mutation of a valid segment yields records then Ok(None) or an
    /// error — never a panic, never a hang.
    #[test]
    fn mutated_segments_never_panic(
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
        zstd in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let comp = if zstd { Compression::Zstd } else { Compression::None };
        let wal = Wal::open(dir.path(), never(comp)).unwrap();
        wal.log(&[&record(10, 1), &vec![3u8; 40_000], &record(3000, 2), b""]).unwrap();
        wal.close().unwrap();
        let path = segment_path(dir.path(), 0);
        let mut bytes = std::fs::read(&path).unwrap();
        for (i, v) in flips {
            let i = i.index(bytes.len());
            bytes[i] = v;
        }
        bytes.truncate(cut.index(bytes.len() + 1));
        std::fs::write(&path, &bytes).unwrap();
        let _ = read(dir.path());
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2_000)) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("00000000"), &bytes).unwrap();
        let _ = read(dir.path());
    }
}
