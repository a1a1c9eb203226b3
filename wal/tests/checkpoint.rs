//! Checkpoints: filtering by series and mint, chaining on a previous
//! checkpoint, replay together with the remaining segments, `.tmp` cleanup.

use std::path::Path;

use ember_index::Labels;
use ember_wal::checkpoint::{CheckpointStats, checkpoint, checkpoint_dir, last_checkpoint};
use ember_wal::record::{
    RecordType, RefSample, RefSeries, Tombstone, decode_samples, decode_series, decode_tombstones,
    encode_samples, encode_series, encode_tombstones, record_type,
};
use ember_wal::{Compression, Reader, SyncPolicy, Wal, WalOptions};

#[derive(Debug, Default, PartialEq)]
struct Replayed {
    series: Vec<u64>,
    samples: Vec<(u64, i64)>,
    stones: Vec<(u64, i64, i64)>,
    /// Records of types Ember does not decode (here: exemplars).
    unknown: usize,
}

fn replay(mut r: Reader) -> Replayed {
    let mut out = Replayed::default();
    while let Some(rec) = r.next_record().unwrap() {
        match record_type(rec) {
            RecordType::Series => {
                let mut v = Vec::new();
                decode_series(rec, &mut v).unwrap();
                out.series.extend(v.iter().map(|s| s.r));
            }
            RecordType::Samples => {
                let mut v = Vec::new();
                decode_samples(rec, &mut v).unwrap();
                out.samples.extend(v.iter().map(|s| (s.r, s.t)));
            }
            RecordType::Tombstones => {
                let mut v = Vec::new();
                decode_tombstones(rec, &mut v).unwrap();
                out.stones
                    .extend(v.iter().map(|t| (t.r, t.intervals[0].0, t.intervals[0].1)));
            }
            RecordType::Unknown(4) => out.unknown += 1,
            RecordType::Unknown(t) => panic!("unexpected record type {t}"),
        }
    }
    out
}

fn series(r: u64) -> Vec<u8> {
    let mut buf = Vec::new();
    let labels = Labels::from_pairs([("__name__", "m"), ("id", &r.to_string())]).unwrap();
    encode_series(&[RefSeries { r, labels }], &mut buf);
    buf
}

fn samples(refs: &[u64], t: i64) -> Vec<u8> {
    let s: Vec<RefSample> = refs
        .iter()
        .map(|&r| RefSample { r, t, v: r as f64 })
        .collect();
    let mut buf = Vec::new();
    encode_samples(&s, &mut buf);
    buf
}

fn stone(r: u64, mint: i64, maxt: i64) -> Vec<u8> {
    let mut buf = Vec::new();
    encode_tombstones(
        &[Tombstone {
            r,
            intervals: vec![(mint, maxt)],
        }],
        &mut buf,
    );
    buf
}

/// Segment i (0..4) holds: series 2i+1 and 2i+2, samples for every series so
/// far at t = 100 * i, a tombstone for series 2i+1 ending at 100 * i, and an
/// exemplar-type record (unknown to Ember).
fn write_segments(dir: &Path, wal: &Wal) {
    for i in 0..4u64 {
        let refs: Vec<u64> = (1..=2 * i + 2).collect();
        wal.log(&[
            &series(2 * i + 1),
            &series(2 * i + 2),
            &samples(&refs, 100 * i as i64),
            &stone(2 * i + 1, 0, 100 * i as i64),
            &[4u8, 1, 2, 3],
        ])
        .unwrap();
        wal.next_segment().unwrap();
    }
    assert_eq!(Wal::segment_range(dir).unwrap(), Some((0, 4)));
}

#[test]
fn checkpoint_keeps_live_series_and_recent_data_and_replays_with_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let opts = WalOptions {
        segment_size: 64 * 1024,
        sync: SyncPolicy::Never,
        ..Default::default()
    };
    let wal = Wal::open(dir.path(), opts).unwrap();
    write_segments(dir.path(), &wal);
    let before = replay(Reader::open_dir(dir.path()).unwrap());

    // Keep even refs; drop data before t = 100. Covers segments 0..=2.
    let keep = |r: u64| r.is_multiple_of(2);
    let stats = checkpoint(dir.path(), 0, 2, &keep, 100, Compression::Zstd).unwrap();
    assert_eq!(
        stats,
        CheckpointStats {
            total_series: 6,
            dropped_series: 3,
            total_samples: 2 + 4 + 6,
            // t=0 (2 samples) dropped by mint; at t=100 and t=200 the odd refs.
            dropped_samples: 2 + 2 + 3,
            total_tombstones: 3,
            // All tombstones are of odd refs.
            dropped_tombstones: 3,
        }
    );
    let (cp, idx) = last_checkpoint(dir.path()).unwrap().unwrap();
    assert_eq!((cp.clone(), idx), (checkpoint_dir(dir.path(), 2), 2));
    wal.truncate(3).unwrap();
    assert_eq!(Wal::segment_range(dir.path()).unwrap(), Some((3, 4)));

    let after = replay(Reader::open_with_checkpoint(dir.path()).unwrap());
    let mut expected = Replayed {
        series: vec![2, 4, 6],
        samples: vec![(2, 100), (4, 100), (2, 200), (4, 200), (6, 200)],
        stones: vec![],
        unknown: 0, // the checkpoint drops types it does not know
    };
    // Segment 3 (and the empty 4) replay unfiltered.
    let seg3 = replay(Reader::open_range(dir.path(), 3, 4).unwrap());
    expected.series.extend(&seg3.series);
    expected.samples.extend(&seg3.samples);
    expected.stones.extend(&seg3.stones);
    expected.unknown += seg3.unknown;
    assert_eq!(after, expected);
    assert!(before.samples.len() > after.samples.len());

    // A second checkpoint builds on the first and replaces it.
    wal.log(&[&samples(&[8], 400)]).unwrap();
    wal.next_segment().unwrap(); // segment 5 is now active
    let keep_all = |_: u64| true;
    let stats = checkpoint(dir.path(), 3, 4, &keep_all, 0, Compression::None).unwrap();
    assert_eq!(stats.total_series, 3 + 2);
    assert_eq!(
        stats.dropped_series + stats.dropped_samples + stats.dropped_tombstones,
        0
    );
    assert_eq!(last_checkpoint(dir.path()).unwrap().unwrap().1, 4);
    assert!(!cp.exists(), "older checkpoint deleted");
    wal.truncate(5).unwrap();
    let replayed = replay(Reader::open_with_checkpoint(dir.path()).unwrap());
    assert_eq!(replayed.series, vec![2, 4, 6, 7, 8]);
    assert_eq!(replayed.samples.last(), Some(&(8, 400)));
    wal.close().unwrap();
}

#[test]
fn checkpoint_refuses_to_skip_segments_after_the_previous_one() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(
        dir.path(),
        WalOptions {
            sync: SyncPolicy::Never,
            ..Default::default()
        },
    )
    .unwrap();
    write_segments(dir.path(), &wal);
    checkpoint(dir.path(), 0, 1, &|_| true, 0, Compression::None).unwrap();
    assert!(checkpoint(dir.path(), 3, 3, &|_| true, 0, Compression::None).is_err());
    assert!(
        checkpoint(dir.path(), 0, 1, &|_| true, 0, Compression::None).is_err(),
        "already covered"
    );
    // `from` below the previous checkpoint is fine: reading resumes after it.
    checkpoint(dir.path(), 0, 3, &|_| true, 0, Compression::None).unwrap();
    wal.close().unwrap();
}

#[test]
fn leftover_tmp_checkpoint_is_ignored_and_cleaned() {
    let dir = tempfile::tempdir().unwrap();
    let opts = WalOptions {
        sync: SyncPolicy::Never,
        ..Default::default()
    };
    let wal = Wal::open(dir.path(), opts.clone()).unwrap();
    write_segments(dir.path(), &wal);

    // A crash mid-checkpoint left a partial directory behind, with a higher
    // index than any real checkpoint.
    let tmp = dir.path().join("checkpoint.00000003.tmp");
    std::fs::create_dir(&tmp).unwrap();
    std::fs::write(tmp.join("00000000"), b"\x02garbage").unwrap();
    assert_eq!(last_checkpoint(dir.path()).unwrap(), None);
    let all = replay(Reader::open_with_checkpoint(dir.path()).unwrap());
    assert_eq!(all.series.len(), 8);

    checkpoint(dir.path(), 0, 1, &|_| true, 0, Compression::None).unwrap();
    assert!(!tmp.exists(), "checkpoint() cleans leftovers");
    wal.close().unwrap();

    std::fs::create_dir(&tmp).unwrap();
    Wal::open(dir.path(), opts).unwrap().close().unwrap();
    assert!(!tmp.exists(), "Wal::open cleans leftovers");
}
