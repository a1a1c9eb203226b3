// Tests may panic: the decoder lints of the parent module do not apply here.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::type_complexity)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use proptest::prelude::*;

use super::*;

fn iv(mint: i64, maxt: i64) -> Interval {
    Interval::new(mint, maxt)
}

fn stones(entries: &[(u64, i64, i64)]) -> Tombstones {
    let mut t = Tombstones::new();
    for &(s, a, b) in entries {
        t.add(s, iv(a, b));
    }
    t
}

#[track_caller]
fn assert_corrupt_at(e: &Error, path: &Path, offset: u64) {
    match e {
        Error::CorruptFile {
            path: p, offset: o, ..
        } => assert_eq!((p.as_path(), *o), (path, offset), "{e}"),
        other => panic!("expected corruption at {offset}, got {other}"),
    }
}

#[test]
fn empty_file_matches_what_prometheus_writes() {
    // promtool's `create-blocks-from` writes exactly these 9 bytes: magic, version, CRC-32C of nothing.
    let bytes = [0x01, 0x30, 0xBA, 0x30, 0x01, 0, 0, 0, 0];
    assert_eq!(Tombstones::new().encode(), bytes);
    assert!(
        Tombstones::decode(&bytes, Path::new("t"))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn entries_are_uvarint_series_and_zigzag_times_then_big_endian_crc() {
    let t = stones(&[(3, 1, 5), (300, -1, 64)]);
    let entries = [0x03, 0x02, 0x0A, 0xAC, 0x02, 0x01, 0x80, 0x01];
    let mut want = vec![0x01, 0x30, 0xBA, 0x30, 0x01];
    want.extend_from_slice(&entries);
    want.extend_from_slice(&crc32c::crc32c(&entries).to_be_bytes());
    assert_eq!(t.encode(), want);
    assert_eq!(Tombstones::decode(&want, Path::new("t")).unwrap(), t);
}

#[test]
fn add_merges_overlapping_and_adjacent_intervals() {
    let cases: &[(&[(i64, i64)], &[(i64, i64)])] = &[
        (&[(1, 5), (10, 20)], &[(1, 5), (10, 20)]),
        (&[(10, 20), (1, 5)], &[(1, 5), (10, 20)]),
        (&[(1, 5), (6, 9)], &[(1, 9)]),
        (&[(6, 9), (1, 5)], &[(1, 9)]),
        (&[(1, 5), (7, 9)], &[(1, 5), (7, 9)]),
        (&[(1, 5), (3, 4)], &[(1, 5)]),
        (&[(3, 4), (1, 5)], &[(1, 5)]),
        (&[(1, 2), (4, 5), (7, 8), (3, 6)], &[(1, 8)]),
        (&[(1, 2), (10, 12), (20, 22), (11, 21)], &[(1, 2), (10, 22)]),
        (&[(5, 5), (5, 5)], &[(5, 5)]),
        (&[(5, 4)], &[]),
        (
            &[(i64::MIN, 0), (i64::MAX, i64::MAX), (1, i64::MAX - 1)],
            &[(i64::MIN, i64::MAX)],
        ),
        (
            &[(i64::MIN, i64::MIN), (i64::MIN + 2, 0)],
            &[(i64::MIN, i64::MIN), (i64::MIN + 2, 0)],
        ),
    ];
    for (adds, want) in cases {
        let mut t = Tombstones::new();
        for &(a, b) in *adds {
            t.add(7, iv(a, b));
        }
        let want: Vec<_> = want.iter().map(|&(a, b)| iv(a, b)).collect();
        assert_eq!(t.get(7), want.as_slice(), "adds {adds:?}");
    }
}

#[test]
fn merge_truncate_and_remove() {
    let mut a = stones(&[(1, 0, 10), (2, 100, 200)]);
    a.merge(&stones(&[(1, 11, 20), (3, 5, 5), (2, 0, 1)]));
    assert_eq!(a.get(1), &[iv(0, 20)]);
    assert_eq!(a.get(2), &[iv(0, 1), iv(100, 200)]);
    assert_eq!((a.num_series(), a.total()), (3, 4));
    assert_eq!(a.iter().map(|(s, _)| s).collect::<Vec<_>>(), vec![1, 2, 3]);
    a.truncate_before(6);
    assert_eq!(a.get(2), &[iv(100, 200)]);
    assert_eq!(a.get(3), &[]);
    assert_eq!(a.num_series(), 2);
    a.remove_series(1);
    assert_eq!(a.total(), 1);
    assert!(iv(3, 4).is_subrange_of(&[iv(0, 1), iv(2, 5)]));
    assert!(!iv(1, 3).is_subrange_of(&[iv(0, 1), iv(2, 5)]));
}

#[test]
fn file_round_trips_through_the_block_directory() {
    let dir = tempfile::tempdir().unwrap();
    assert!(Tombstones::read_from_dir(dir.path()).unwrap().is_empty());
    let t = stones(&[
        (0, i64::MIN, i64::MIN + 10),
        (1, -5, 5),
        (u64::MAX, 0, i64::MAX),
        (42, 1_000, 2_000),
        (42, 5_000, 6_000),
    ]);
    let size = t.write_to_dir(dir.path()).unwrap();
    let path = dir.path().join("tombstones");
    assert_eq!(std::fs::metadata(&path).unwrap().len(), size);
    assert!(!dir.path().join("tombstones.tmp").exists());
    assert_eq!(Tombstones::read_from_dir(dir.path()).unwrap(), t);
}

#[test]
fn bad_files_give_errors_naming_file_and_offset() {
    let path = Path::new("/b/tombstones");
    let good = stones(&[(3, 1, 5), (4, 7, 9)]).encode();
    let with_entries = |entries: &[u8]| {
        let mut b = vec![0x01, 0x30, 0xBA, 0x30, 0x01];
        b.extend_from_slice(entries);
        b.extend_from_slice(&crc32c::crc32c(entries).to_be_bytes());
        b
    };
    let mut bad_magic = good.clone();
    bad_magic[0] = 0x02;
    let mut bad_version = good.clone();
    bad_version[4] = 2;
    let mut bad_crc = good.clone();
    *bad_crc.last_mut().unwrap() ^= 1;
    let cases: Vec<(&str, Vec<u8>, u64)> = vec![
        ("empty", vec![], 0),
        ("shorter than header and crc", good[..8].to_vec(), 0),
        ("bad magic", bad_magic, 0),
        ("bad version", bad_version, 4),
        ("bad crc", bad_crc, good.len() as u64 - 4),
        ("truncated entry", with_entries(&[3, 2, 10, 4, 14]), 8),
        ("varint cut off", with_entries(&[3, 2, 0x80]), 5),
        ("11-byte varint", with_entries(&[0x80; 11]), 5),
        (
            "10th varint byte above 1",
            with_entries(&[
                0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x02, 0, 0,
            ]),
            5,
        ),
    ];
    for (name, bytes, offset) in cases {
        let e = Tombstones::decode(&bytes, path).unwrap_err();
        assert_corrupt_at(&e, path, offset);
        assert!(e.to_string().contains("/b/tombstones"), "{name}: {e}");
    }
    // The largest 10-byte varint (u64::MAX) is valid.
    let max = with_entries(&[
        0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01, 0, 0,
    ]);
    assert_eq!(
        Tombstones::decode(&max, path).unwrap().get(u64::MAX),
        &[iv(0, 0)]
    );
}

#[test]
fn every_bit_flip_and_truncation_is_refused() {
    let path = Path::new("t");
    let good = stones(&[(1, 0, 100), (2, -50, 1 << 40), (9, 7, 7)]).encode();
    for p in 0..good.len() * 8 {
        let mut b = good.clone();
        b[p / 8] ^= 1 << (p % 8);
        assert!(Tombstones::decode(&b, path).is_err(), "flip of bit {p}");
    }
    for len in 0..good.len() {
        assert!(
            Tombstones::decode(&good[..len], path).is_err(),
            "cut at {len}"
        );
    }
}

proptest! {
    /// Intervals added in any order cover exactly the timestamps a set-of-points model covers, kept
    /// sorted, disjoint and non-adjacent; encoding and decoding preserves them.
    #[test]
    fn intervals_match_a_point_set_model(adds in prop::collection::vec((0u64..3, 0i64..60, 0i64..12), 0..25)) {
        let mut t = Tombstones::new();
        let mut model: BTreeMap<u64, BTreeSet<i64>> = BTreeMap::new();
        for &(s, start, len) in &adds {
            t.add(s, iv(start, start + len));
            model.entry(s).or_default().extend(start..=start + len);
        }
        for (s, points) in &model {
            let ivs = t.get(*s);
            for w in ivs.windows(2) {
                prop_assert!(w[0].maxt + 1 < w[1].mint, "{:?}", ivs);
            }
            let covered: BTreeSet<i64> = ivs.iter().flat_map(|i| i.mint..=i.maxt).collect();
            prop_assert_eq!(&covered, points);
        }
        prop_assert_eq!(t.num_series(), model.len());
        prop_assert_eq!(Tombstones::decode(&t.encode(), Path::new("t")).unwrap(), t);
    }
}
