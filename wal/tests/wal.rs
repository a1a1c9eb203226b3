//! Writer + reader behaviour: round trips, segment/page layout rules,
//! compression flags, sync policies and group commit.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ember_wal::{Compression, PAGE_SIZE, Reader, SyncPolicy, Wal, WalOptions, segment_path};
use proptest::prelude::*;

const SEG: usize = 64 * 1024;

fn opts(compression: Compression, sync: SyncPolicy) -> WalOptions {
    WalOptions {
        segment_size: SEG,
        compression,
        sync,
    }
}

/// Deterministic record bytes; `compressible` draws from 4 symbols so zstd
/// actually shrinks it, otherwise bytes are (pseudo-)random.
fn make_record(len: usize, seed: u64, compressible: bool) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if compressible { (x % 4) as u8 } else { x as u8 }
        })
        .collect()
}

fn read_all(dir: &Path) -> Vec<Vec<u8>> {
    let mut r = Reader::open_dir(dir).unwrap();
    let mut out = Vec::new();
    while let Some(rec) = r.next_record().unwrap() {
        out.push(rec.to_vec());
    }
    out
}

fn record_strategy() -> impl Strategy<Value = Vec<u8>> {
    let len = prop_oneof![
        3 => 0usize..64,
        3 => 0usize..8 * 1024,
        2 => 0usize..200 * 1024,
    ];
    (len, any::<u64>(), any::<bool>()).prop_map(|(l, s, c)| make_record(l, s, c))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Sessions of `log` calls, each session a fresh `Wal::open` (so a new
    /// segment), records of 0..200 KiB with 64 KiB segments: records span
    /// pages and force segment rolls and oversized segments.
    #[test]
    fn reader_returns_exactly_the_records_written(
        sessions in prop::collection::vec(
            prop::collection::vec(prop::collection::vec(record_strategy(), 0..4), 0..4),
            1..4,
        ),
        zstd in any::<bool>(),
        close_cleanly in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let compression = if zstd { Compression::Zstd } else { Compression::None };
        let mut expected = Vec::new();
        for session in &sessions {
            let wal = Wal::open(dir.path(), opts(compression, SyncPolicy::Never)).unwrap();
            for batch in session {
                let recs: Vec<&[u8]> = batch.iter().map(|r| r.as_slice()).collect();
                wal.log(&recs).unwrap();
                expected.extend(batch.iter().cloned());
            }
            if close_cleanly {
                wal.close().unwrap();
            } else {
                // A crash after the last log: nothing padded, nothing extra.
                std::mem::forget(wal);
            }
        }
        let got = read_all(dir.path());
        prop_assert_eq!(got.len(), expected.len());
        for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
            prop_assert!(g == e, "record {} differs ({} vs {} bytes)", i, g.len(), e.len());
        }
    }
}

#[test]
fn open_starts_a_new_segment_after_the_last() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), opts(Compression::None, SyncPolicy::Never)).unwrap();
    assert_eq!(wal.current_segment(), 0);
    wal.log(&[b"one"]).unwrap();
    wal.close().unwrap();

    let wal = Wal::open(dir.path(), opts(Compression::None, SyncPolicy::Never)).unwrap();
    assert_eq!(wal.current_segment(), 1);
    assert_eq!(Wal::segment_range(dir.path()).unwrap(), Some((0, 1)));
    wal.log(&[b"two"]).unwrap();
    wal.close().unwrap();
    // The old segment was never touched again.
    assert_eq!(
        std::fs::metadata(segment_path(dir.path(), 0))
            .unwrap()
            .len(),
        PAGE_SIZE as u64
    );
    assert_eq!(read_all(dir.path()), vec![b"one".to_vec(), b"two".to_vec()]);
}

#[test]
fn segment_range_of_an_empty_dir_is_none() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("not-a-segment"), b"x").unwrap();
    assert_eq!(Wal::segment_range(dir.path()).unwrap(), None);
}

#[test]
fn record_that_does_not_fit_the_segment_starts_a_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), opts(Compression::None, SyncPolicy::Never)).unwrap();
    // 40 KiB: a 32761-byte first fragment fills page 0, the last fragment of
    // 8199 bytes ends at offset 32768 + 7 + 8199 = 40974.
    wal.log(&[&make_record(40 * 1024, 1, false)]).unwrap();
    // Room left in the 2-page segment, counting one header: 32768 - 40974 % 32768 - 7.
    let left = PAGE_SIZE - (40974 % PAGE_SIZE) - 7;
    assert_eq!(left, 24555);
    wal.log(&[&make_record(left, 2, false)]).unwrap();
    assert_eq!(
        wal.current_segment(),
        0,
        "a record of exactly the room left stays"
    );
    wal.log(&[&make_record(1, 3, false)]).unwrap();
    assert_eq!(wal.current_segment(), 1, "a full segment rolls");
    wal.log(&[&make_record(30 * 1024, 4, false)]).unwrap();
    // The 1-byte and 30 KiB records end at 8 + 7 + 30720 = 30735; a 40 KiB
    // record does not fit the 2026 bytes left and rolls again.
    assert_eq!(wal.current_segment(), 1);
    wal.log(&[&make_record(40 * 1024, 5, false)]).unwrap();
    assert_eq!(wal.current_segment(), 2);
    wal.close().unwrap();
    let len = |i| {
        std::fs::metadata(segment_path(dir.path(), i))
            .unwrap()
            .len()
    };
    assert_eq!(len(0), SEG as u64);
    assert_eq!(
        len(1),
        PAGE_SIZE as u64,
        "a rolled segment's last page is padded"
    );
    assert_eq!(read_all(dir.path()).len(), 5);
}

#[test]
fn record_larger_than_a_segment_gets_one_oversized_segment() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), opts(Compression::None, SyncPolicy::Never)).unwrap();
    let big = make_record(200 * 1024, 9, false);
    wal.log(&[b"small"]).unwrap();
    wal.log(&[&big]).unwrap();
    wal.log(&[b"after"]).unwrap();
    wal.close().unwrap();
    assert_eq!(Wal::segment_range(dir.path()).unwrap(), Some((0, 2)));
    assert!(
        std::fs::metadata(segment_path(dir.path(), 1))
            .unwrap()
            .len()
            > SEG as u64
    );
    assert_eq!(
        read_all(dir.path()),
        vec![b"small".to_vec(), big, b"after".to_vec()]
    );
}

#[test]
fn fragment_header_never_starts_in_the_last_six_bytes_of_a_page() {
    let dir = tempfile::tempdir().unwrap();
    let big_segments = WalOptions {
        segment_size: 1 << 20,
        ..opts(Compression::None, SyncPolicy::Never)
    };
    let wal = Wal::open(dir.path(), big_segments).unwrap();
    // Leaves exactly 6 bytes in page 0: they become padding.
    wal.log(&[&make_record(PAGE_SIZE - 7 - 6, 1, false)])
        .unwrap();
    wal.log(&[b"next"]).unwrap();
    // Leaves exactly 7 bytes in page 1: room for a header, so the next record
    // starts there with an empty first fragment, as Prometheus writes it.
    let used = 7 + 4;
    wal.log(&[&make_record(PAGE_SIZE - used - 7 - 7, 2, false)])
        .unwrap();
    wal.log(&[b"split"]).unwrap();
    wal.close().unwrap();

    let bytes = std::fs::read(segment_path(dir.path(), 0)).unwrap();
    assert!(bytes[PAGE_SIZE - 6..PAGE_SIZE].iter().all(|&b| b == 0));
    assert_eq!(bytes[PAGE_SIZE], 1, "full fragment at the next page");
    let at = 2 * PAGE_SIZE - 7;
    assert_eq!(&bytes[at..at + 3], &[2, 0, 0], "empty first fragment");
    assert_eq!(bytes[2 * PAGE_SIZE], 4, "last fragment on the next page");
    let recs = read_all(dir.path());
    assert_eq!(recs.len(), 4);
    assert_eq!(recs[3], b"split");
}

#[test]
fn zstd_compresses_only_when_it_saves_space_and_sets_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), opts(Compression::Zstd, SyncPolicy::Never)).unwrap();
    let compressible = make_record(10_000, 1, true);
    wal.log(&[&compressible]).unwrap();
    wal.close().unwrap();
    let bytes = std::fs::read(segment_path(dir.path(), 0)).unwrap();
    assert_eq!(bytes[0], 0x10 | 1, "zstd flag + full");
    let len = u16::from_be_bytes([bytes[1], bytes[2]]) as usize;
    assert!(len < 10_000 / 2, "compressed to {len}");

    let wal = Wal::open(dir.path(), opts(Compression::Zstd, SyncPolicy::Never)).unwrap();
    wal.log(&[b"tiny"]).unwrap();
    wal.close().unwrap();
    let bytes = std::fs::read(segment_path(dir.path(), 1)).unwrap();
    assert_eq!(bytes[0], 1, "no flag: compression would not have helped");
    assert_eq!(read_all(dir.path()), vec![compressible, b"tiny".to_vec()]);
}

#[test]
fn every_log_reaches_the_os_before_returning() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), opts(Compression::None, SyncPolicy::Never)).unwrap();
    wal.log(&[b"a", b"b"]).unwrap();
    // Visible through a separate file handle while the WAL is still open.
    assert_eq!(read_all(dir.path()), vec![b"a".to_vec(), b"b".to_vec()]);
    wal.log(&[b"c"]).unwrap();
    std::mem::forget(wal); // a killed process: no close, no drop
    assert_eq!(read_all(dir.path()).len(), 3);
}

#[test]
fn group_commit_under_four_threads_keeps_every_record() {
    const THREADS: u32 = 4;
    const COMMITS: u32 = 60;
    let dir = tempfile::tempdir().unwrap();
    let wal =
        Arc::new(Wal::open(dir.path(), opts(Compression::None, SyncPolicy::EveryCommit)).unwrap());
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let wal = Arc::clone(&wal);
            std::thread::spawn(move || {
                for i in 0..COMMITS {
                    // 1-3 records per commit, sized so segments roll mid-test.
                    let n = 1 + (i % 3);
                    let recs: Vec<Vec<u8>> = (0..n)
                        .map(|k| {
                            let mut r = format!("{t}:{i}:{k}:").into_bytes();
                            r.resize(r.len() + 1500, b'x');
                            r
                        })
                        .collect();
                    let refs: Vec<&[u8]> = recs.iter().map(|r| r.as_slice()).collect();
                    wal.log(&refs).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let fsyncs = wal.fsync_count();
    Arc::try_unwrap(wal).unwrap().close().unwrap();
    eprintln!("{} commits, {fsyncs} fsync rounds", THREADS * COMMITS);
    assert!(fsyncs <= u64::from(THREADS * COMMITS) + 1);

    // Reopen (new segment) and verify every thread's records, in its order.
    Wal::open(dir.path(), WalOptions::default())
        .unwrap()
        .close()
        .unwrap();
    let mut next = vec![(0u32, 0u32); THREADS as usize];
    let mut count = 0;
    for rec in read_all(dir.path()) {
        let s = String::from_utf8_lossy(&rec[..rec.iter().position(|&b| b == b'x').unwrap()])
            .into_owned();
        let parts: Vec<u32> = s
            .trim_end_matches(':')
            .split(':')
            .map(|p| p.parse().unwrap())
            .collect();
        let (t, i, k) = (parts[0] as usize, parts[1], parts[2]);
        assert_eq!((i, k), next[t], "thread {t} out of order");
        next[t] = if k + 1 == 1 + (i % 3) {
            (i + 1, 0)
        } else {
            (i, k + 1)
        };
        count += 1;
    }
    assert!(next.iter().all(|&(i, _)| i == COMMITS));
    assert_eq!(
        count,
        (0..COMMITS).map(|i| 1 + i % 3).sum::<u32>() * THREADS
    );
}

#[test]
fn interval_policy_fsyncs_in_the_background_and_stops_on_close() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(
        dir.path(),
        opts(
            Compression::None,
            SyncPolicy::Interval(Duration::from_millis(5)),
        ),
    )
    .unwrap();
    let before = wal.fsync_count();
    wal.log(&[b"r"]).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while wal.fsync_count() == before {
        assert!(std::time::Instant::now() < deadline, "no background fsync");
        std::thread::sleep(Duration::from_millis(2));
    }
    wal.close().unwrap();
}

#[test]
fn next_segment_pads_the_old_segment_and_returns_the_new_index() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), opts(Compression::None, SyncPolicy::Never)).unwrap();
    wal.log(&[b"x"]).unwrap();
    assert_eq!(wal.next_segment().unwrap(), 1);
    assert_eq!(
        std::fs::metadata(segment_path(dir.path(), 0))
            .unwrap()
            .len(),
        PAGE_SIZE as u64
    );
    wal.log(&[b"y"]).unwrap();
    wal.close().unwrap();
    assert_eq!(read_all(dir.path()), vec![b"x".to_vec(), b"y".to_vec()]);
}

#[test]
fn truncate_deletes_older_segments_but_never_the_active_one() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), opts(Compression::None, SyncPolicy::Never)).unwrap();
    for i in 0..3u8 {
        wal.log(&[&[i]]).unwrap();
        wal.next_segment().unwrap();
    }
    wal.truncate(2).unwrap();
    assert_eq!(Wal::segment_range(dir.path()).unwrap(), Some((2, 3)));
    assert!(wal.truncate(4).is_err());
    wal.close().unwrap();
    assert_eq!(read_all(dir.path()), vec![vec![2u8]]);
    assert!(
        Reader::open_range(dir.path(), 0, 3).is_err(),
        "segment 0 is gone"
    );
    let mut r = Reader::open_range(dir.path(), 3, u32::MAX).unwrap();
    assert!(r.next_record().unwrap().is_none());
}

/// Segment bytes assembled by hand from the format description, independent
/// of Ember's writer: what Prometheus (with snappy) would have written.
#[test]
fn reads_a_hand_built_prometheus_segment() {
    fn frag(out: &mut Vec<u8>, typ: u8, data: &[u8]) {
        out.push(typ);
        out.extend_from_slice(&(data.len() as u16).to_be_bytes());
        out.extend_from_slice(&crc32c::crc32c(data).to_be_bytes());
        out.extend_from_slice(data);
    }
    let big = make_record(40_000, 7, false);
    let snappy_rec = b"snappy snappy snappy snappy snappy".repeat(10);
    let compressed = snap::raw::Encoder::new().compress_vec(&snappy_rec).unwrap();

    let mut seg = Vec::new();
    frag(&mut seg, 1, b"hello");
    let room = PAGE_SIZE - seg.len() - 7;
    frag(&mut seg, 2, &big[..room]);
    frag(&mut seg, 4, &big[room..]);
    frag(&mut seg, 0x08 | 1, &compressed);
    seg.resize(seg.len().next_multiple_of(PAGE_SIZE), 0);

    let dir = tempfile::tempdir().unwrap();
    // Six-digit names, as older Prometheus versions wrote.
    std::fs::write(dir.path().join("000000"), &seg).unwrap();
    assert_eq!(
        read_all(dir.path()),
        vec![b"hello".to_vec(), big, snappy_rec]
    );
}
