//! Persistent blocks end to end: head compaction, leveled and vertical compaction, retention, leftovers
//! of interrupted writes, corrupt blocks, tombstones, and agreement with Prometheus' own tools
//! (`promtool tsdb list/analyze/dump` on Ember's blocks, Ember on blocks `promtool` created).
//!
//! Needs Debian's `promtool`; without it the peer checks fail unless EMBER_SKIP_PEER_TESTS=1.

mod common;

use common::copy_dir;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use ember::{Db, Labels, Matcher, Options, SyncPolicy};

const H: i64 = 3600 * 1000;
/// A multiple of 2 h, so block boundaries are predictable.
const T0: i64 = 1_699_999_200_000;

type Data = BTreeMap<String, Vec<(i64, u64)>>;

fn peer_available() -> bool {
    if Command::new("promtool").arg("--version").output().is_ok() {
        return true;
    }
    assert_eq!(
        std::env::var("EMBER_SKIP_PEER_TESTS").as_deref(),
        Ok("1"),
        "promtool not found: install Debian's `prometheus` package (or set EMBER_SKIP_PEER_TESTS=1)"
    );
    false
}

/// NaN payloads do not survive text formats; compare every NaN as one value.
fn bits(v: f64) -> u64 {
    if v.is_nan() {
        f64::NAN.to_bits()
    } else {
        v.to_bits()
    }
}

/// Labels as promtool prints them: `{a="b", c="d"}`.
fn label_text(l: &Labels) -> String {
    let parts: Vec<String> = l
        .iter()
        .map(|l| format!("{}=\"{}\"", l.name, l.value))
        .collect();
    format!("{{{}}}", parts.join(", "))
}

fn query_all(db: &Db, mint: i64, maxt: i64) -> Data {
    let mut out = Data::new();
    let series = db.querier(mint, maxt).try_select(&[]).unwrap();
    for w in series.windows(2) {
        assert!(w[0].labels() < w[1].labels(), "series sorted and unique");
    }
    for s in series {
        let samples = s.samples().unwrap();
        let iterated: Vec<(i64, f64)> = s.iter().collect();
        assert_eq!(
            samples
                .iter()
                .map(|&(t, v)| (t, bits(v)))
                .collect::<Vec<_>>(),
            iterated
                .iter()
                .map(|&(t, v)| (t, bits(v)))
                .collect::<Vec<_>>()
        );
        out.insert(
            label_text(s.labels()),
            samples.into_iter().map(|(t, v)| (t, bits(v))).collect(),
        );
    }
    out
}

fn promtool(args: &[&str], dir: &Path) -> String {
    let out = Command::new("promtool")
        .args(args)
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn promtool_dump(dir: &Path) -> Data {
    let mut got = Data::new();
    for line in promtool(&["tsdb", "dump"], dir).lines() {
        let close = line.rfind('}').expect("labels in braces");
        let mut rest = line[close + 1..].split_whitespace();
        let v: f64 = rest.next().unwrap().parse().unwrap();
        let t: i64 = rest.next().unwrap().parse().unwrap();
        got.entry(line[..=close].to_string())
            .or_default()
            .push((t, bits(v)));
    }
    got
}

/// With EMBER_TEST_ZSTD_TIER=1 every database here compresses its compacted blocks (the zstd tier), so
/// the compaction, retention and tombstone tests run against it too; promtool cannot read the tier, so
/// its checks of compacted blocks are then left out.
fn zstd_tier() -> bool {
    std::env::var("EMBER_TEST_ZSTD_TIER").as_deref() == Ok("1")
}

fn opts(block_range_ms: i64) -> Options {
    Options {
        block_range_ms,
        wal_sync: SyncPolicy::Never,
        compress_compacted_chunks: zstd_tier(),
        ..Options::default()
    }
}

fn value(series: usize, i: i64) -> f64 {
    match i % 97 {
        13 => f64::NAN,
        14 => f64::INFINITY,
        _ => (i * (series as i64 + 1)) as f64 * 0.125 - 3.0,
    }
}

/// Appends `n` samples per series at `step` from `start` for `series` series; returns what was written.
fn write(db: &Db, series: usize, start: i64, step: i64, n: i64, out: &mut Data) {
    let labels: Vec<Labels> = (0..series)
        .map(|s| Labels::from_pairs([("__name__", "m"), ("s", &*format!("s{s:02}"))]).unwrap())
        .collect();
    for batch in (0..n).collect::<Vec<_>>().chunks(50) {
        let mut app = db.appender();
        for &i in batch {
            for (s, l) in labels.iter().enumerate() {
                let (t, v) = (start + i * step, value(s, i));
                app.append(l, t, v).unwrap();
                out.entry(label_text(l)).or_default().push((t, bits(v)));
            }
        }
        app.commit().unwrap();
    }
}

fn assert_no_overlaps(db: &Db) {
    let mut metas = db.blocks();
    metas.sort_by_key(|m| m.min_time);
    for w in metas.windows(2) {
        assert!(
            w[0].max_time <= w[1].min_time,
            "blocks overlap: {:?} and {:?}",
            (w[0].min_time, w[0].max_time),
            (w[1].min_time, w[1].max_time)
        );
    }
}

#[test]
fn head_compaction_cuts_one_aligned_block_and_every_sample_is_returned_once() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let db = Db::open(dir, opts(2 * H)).unwrap();
    let mut want = Data::new();
    // 4 h at 15 s: the head spans more than 1.5 block ranges.
    write(&db, 5, T0, 15_000, 960, &mut want);
    assert!(db.blocks().is_empty());
    let stats = db.compact().unwrap();
    assert_eq!(stats.head_blocks.len(), 1);
    let metas = db.blocks();
    assert_eq!(metas.len(), 1);
    let m = &metas[0];
    assert_eq!((m.min_time, m.max_time), (T0, T0 + 2 * H));
    assert_eq!(m.compaction.level, 1);
    assert_eq!(m.stats.num_series, 5);
    assert_eq!(m.stats.num_samples, 5 * 480);
    // The head kept only the second half.
    let st = db.stats();
    assert_eq!(st.time_range.unwrap().0, T0 + 2 * H);
    assert_eq!(st.blocks, 1);
    assert!(st.blocks_bytes > 1_000, "{}", st.blocks_bytes);
    assert_eq!(query_all(&db, i64::MIN, i64::MAX), want);
    // A range inside the block only, one straddling block and head, one inside the head.
    for (lo, hi) in [
        (T0 + 600_000, T0 + H),
        (T0 + H, T0 + 3 * H),
        (T0 + 3 * H, T0 + 4 * H),
    ] {
        let expect: Data = want
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.iter()
                        .copied()
                        .filter(|&(t, _)| t >= lo && t <= hi)
                        .collect(),
                )
            })
            .collect();
        assert_eq!(query_all(&db, lo, hi), expect, "range {lo}..={hi}");
    }
    let q = db.querier(T0, T0 + H);
    assert_eq!(q.label_values("s", &[]).len(), 5);
    assert_eq!(q.label_names(&[]), vec!["__name__", "s"]);
    assert_eq!(q.select_labels(&[Matcher::equal("s", "s03")]).len(), 1);
    // A querier shares the database; the directory lock goes with the last user.
    drop(q);
    // Nothing more is due.
    assert!(db.compact().unwrap().head_blocks.is_empty());
    db.close().unwrap();

    let db = Db::open(dir, opts(2 * H)).unwrap();
    assert_eq!(db.blocks().len(), 1);
    assert_eq!(query_all(&db, i64::MIN, i64::MAX), want);
    db.close().unwrap();

    if !peer_available() || zstd_tier() {
        return;
    }
    let list = promtool(&["tsdb", "list"], dir);
    assert!(list.contains(&m.ulid.to_string()), "{list}");
    promtool(&["tsdb", "analyze"], dir);
    // promtool reads the block and replays Ember's WAL for the rest: everything written, once.
    assert_eq!(promtool_dump(dir), want);
}

#[test]
fn leveled_compaction_builds_larger_blocks_without_losing_or_repeating_samples() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let o = opts(1_000);
    let db = Db::open(dir, o.clone()).unwrap();
    let mut want = Data::new();
    // 40 s of data at 20 ms, compacting after every second of it.
    for sec in 0..40 {
        write(&db, 3, T0 + sec * 1_000, 20, 50, &mut want);
        db.compact().unwrap();
        assert_no_overlaps(&db);
    }
    let metas = db.blocks();
    let max_level = metas.iter().map(|m| m.compaction.level).max().unwrap();
    assert!(max_level >= 3, "levels: {metas:?}");
    // Windows are aligned to multiples of each range in absolute time, not to the first sample.
    assert!(
        metas.iter().any(|m| m.max_time - m.min_time >= 9_000),
        "a block of at least 9 s exists: {metas:?}"
    );
    for m in &metas {
        // Compacted blocks list their level-1 sources and their direct parents.
        if m.compaction.level > 1 {
            assert!(m.compaction.sources.len() >= 3);
            assert!(!m.compaction.parents.is_empty());
        }
        let dirs = std::fs::read_dir(dir).unwrap().count();
        assert!(dirs < 20, "parents are deleted ({dirs} entries)");
    }
    assert_eq!(query_all(&db, i64::MIN, i64::MAX), want);
    db.close().unwrap();
    let db = Db::open(dir, o).unwrap();
    assert_eq!(db.blocks(), metas);
    assert_eq!(query_all(&db, i64::MIN, i64::MAX), want);
    db.close().unwrap();
    if peer_available() && !zstd_tier() {
        promtool(&["tsdb", "analyze"], dir);
        assert_eq!(promtool_dump(dir), want);
    }
}

/// Copies a directory tree (blocks are small in tests).

#[test]
fn parents_left_by_an_interrupted_compaction_and_temporary_dirs_are_removed_on_open() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    let saved = tmp.path().join("saved");
    let o = opts(1_000);
    let db = Db::open(&dir, o.clone()).unwrap();
    let mut want = Data::new();
    for sec in 0..6 {
        write(&db, 2, T0 + sec * 1_000, 50, 20, &mut want);
        db.compact().unwrap();
        if sec == 3 {
            for m in db.blocks() {
                copy_dir(
                    &dir.join(m.ulid.to_string()),
                    &saved.join(m.ulid.to_string()),
                );
            }
        }
    }
    let after = db.blocks();
    let parents: Vec<_> = after
        .iter()
        .flat_map(|m| m.compaction.parents.iter().map(|p| p.ulid))
        .collect();
    assert!(!parents.is_empty(), "a compaction happened: {after:?}");
    db.close().unwrap();
    // A crash after the compacted block was renamed into place but before its parents were deleted, and
    // one in the middle of writing another block.
    for e in std::fs::read_dir(&saved).unwrap() {
        let e = e.unwrap();
        copy_dir(&e.path(), &dir.join(e.file_name()));
    }
    let junk = dir.join(format!("{}.tmp-for-creation", ulid::Ulid::new()));
    std::fs::create_dir_all(junk.join("chunks")).unwrap();
    std::fs::write(junk.join("chunks/000001"), b"half written").unwrap();

    let db = Db::open(&dir, o).unwrap();
    assert!(!junk.exists());
    assert_eq!(db.blocks(), after);
    for p in parents {
        assert!(!dir.join(p.to_string()).exists(), "parent {p} deleted");
    }
    assert_eq!(query_all(&db, i64::MIN, i64::MAX), want);
}

#[test]
fn a_corrupt_block_fails_the_open_naming_the_file_unless_told_to_skip_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let db = Db::open(dir, opts(2 * H)).unwrap();
    let mut want = Data::new();
    write(&db, 2, T0, 60_000, 240, &mut want);
    db.compact().unwrap();
    let ulid = db.blocks()[0].ulid;
    db.close().unwrap();
    let index = dir.join(ulid.to_string()).join("index");
    let bytes = std::fs::read(&index).unwrap();
    std::fs::write(&index, &bytes[..bytes.len() - 20]).unwrap();

    let err = match Db::open(dir, opts(2 * H)) {
        Ok(_) => panic!("a block with a cut index was opened"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains(&index.display().to_string()), "{err}");
    let db = Db::open(
        dir,
        Options {
            skip_corrupt_blocks: true,
            ..opts(2 * H)
        },
    )
    .unwrap();
    assert!(db.blocks().is_empty());
    // The head still serves what no block holds; the skipped block stays on disk for inspection.
    let got = query_all(&db, i64::MIN, i64::MAX);
    assert!(
        got.values()
            .all(|v| v.iter().all(|&(t, _)| t >= T0 + 2 * H))
    );
    assert!(!got.is_empty());
    assert!(index.exists());
}

#[test]
fn tombstones_hide_deleted_samples_and_compaction_drops_them() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let o = opts(1_000);
    let db = Db::open(dir, o.clone()).unwrap();
    let mut want = Data::new();
    for sec in 0..4 {
        write(&db, 2, T0 + sec * 1_000, 10, 100, &mut want);
        db.compact().unwrap();
    }
    let first = db.blocks()[0].clone();
    db.close().unwrap();
    let bdir = dir.join(first.ulid.to_string());
    let ix = ember_index::block::IndexReader::open(&bdir.join("index")).unwrap();
    let refs = ix
        .postings_for_matchers(&[Matcher::equal("s", "s01")])
        .unwrap();
    assert_eq!(refs.len(), 1);
    let (lo, hi) = (first.min_time + 100, first.min_time + 349);
    let mut ts = ember::Tombstones::new();
    ts.add(refs[0], ember::Interval::new(lo, hi));
    ts.write_to_dir(&bdir).unwrap();
    want.get_mut("{__name__=\"m\", s=\"s01\"}")
        .unwrap()
        .retain(|&(t, _)| t < lo || t > hi);

    let db = Db::open(dir, o.clone()).unwrap();
    assert_eq!(query_all(&db, i64::MIN, i64::MAX), want);
    // Keep compacting until the tombstoned block has been merged away.
    for sec in 4..12 {
        write(&db, 2, T0 + sec * 1_000, 10, 100, &mut want);
        db.compact().unwrap();
    }
    assert!(db.blocks().iter().all(|m| m.ulid != first.ulid));
    assert_eq!(query_all(&db, i64::MIN, i64::MAX), want);
}

#[test]
fn time_and_size_retention_delete_the_oldest_blocks() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let o = Options {
        retention_ms: 5_000,
        max_block_duration_ms: Some(1_000),
        ..opts(1_000)
    };
    let db = Db::open(dir, o.clone()).unwrap();
    let mut want = Data::new();
    for sec in 0..12 {
        write(&db, 2, T0 + sec * 1_000, 50, 20, &mut want);
        db.compact().unwrap();
    }
    let metas = db.blocks();
    let newest = metas.iter().map(|m| m.max_time).max().unwrap();
    assert!(
        metas.iter().all(|m| newest - m.max_time < 5_000),
        "{metas:?}"
    );
    assert_eq!(metas.len(), 5);
    let oldest = metas.iter().map(|m| m.min_time).min().unwrap();
    let kept: Data = want
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.iter().copied().filter(|&(t, _)| t >= oldest).collect(),
            )
        })
        .collect();
    assert_eq!(query_all(&db, i64::MIN, i64::MAX), kept);
    db.close().unwrap();

    // Size: room for the WAL and about two blocks.
    let block_bytes: u64 = {
        let p = dir.join(metas[0].ulid.to_string());
        std::fs::read_dir(p.join("chunks"))
            .unwrap()
            .chain(std::fs::read_dir(&p).unwrap())
            .map(|e| e.unwrap().metadata().unwrap())
            .filter(|m| m.is_file())
            .map(|m| m.len())
            .sum()
    };
    let wal_bytes: u64 = walkdir_size(&dir.join("wal"));
    let db = Db::open(
        dir,
        Options {
            retention_bytes: Some(wal_bytes + 2 * block_bytes + block_bytes / 2),
            ..o
        },
    )
    .unwrap();
    assert_eq!(db.blocks().len(), 2, "{:?}", db.blocks());
}

fn walkdir_size(p: &Path) -> u64 {
    std::fs::read_dir(p)
        .map(|rd| {
            rd.map(|e| {
                let e = e.unwrap();
                if e.file_type().unwrap().is_dir() {
                    walkdir_size(&e.path())
                } else {
                    e.metadata().unwrap().len()
                }
            })
            .sum()
        })
        .unwrap_or(0)
}

/// An OpenMetrics file of `series` gauges over `[start, start + n*15 s)`; returns the text and samples.
fn openmetrics(series: usize, start_ms: i64, n: i64, salt: u64) -> (String, Data) {
    let mut text = String::from("# HELP m A gauge.\n# TYPE m gauge\n");
    let mut data = Data::new();
    for s in 0..series {
        for i in 0..n {
            // Each sample's value depends only on (salt, series, timestamp), so two calls agree on shared
            // samples.
            let t = start_ms + i * 15_000;
            let mut seed = salt ^ ((s as u64) << 48) ^ t as u64;
            seed = (seed ^ (seed >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            seed = (seed ^ (seed >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            seed ^= seed >> 31;
            let v = match (t / 15_000) % 40 {
                5 => f64::NAN,
                6 => f64::NEG_INFINITY,
                _ => (seed % 1_000_000) as f64 / 8.0 - 1000.0,
            };
            let vt = if v.is_nan() {
                "NaN".to_string()
            } else if v.is_infinite() {
                "-Inf".to_string()
            } else {
                format!("{v:e}")
            };
            text.push_str(&format!("m{{s=\"s{s:02}\"}} {vt} {}\n", t / 1000));
            data.entry(format!("{{__name__=\"m\", s=\"s{s:02}\"}}"))
                .or_default()
                .push((t, bits(v)));
        }
    }
    text.push_str("# EOF\n");
    (text, data)
}

fn create_blocks(text: &str, dir: &Path) {
    let input = dir.with_extension("om");
    std::fs::write(&input, text).unwrap();
    let out = Command::new("promtool")
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&input)
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn blocks_created_by_promtool_are_read_series_by_series_and_survive_compaction() {
    if !peer_available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    // 9 h in 2 h blocks, starting at a multiple of 6 h so that the first three make a 6 h window.
    let t6 = T0 - 4 * H;
    assert_eq!(t6 % (6 * H), 0);
    let (text, want) = openmetrics(6, t6, 9 * 240, 1);
    create_blocks(&text, &dir);
    let db = Db::open(&dir, opts(2 * H)).unwrap();
    assert_eq!(db.blocks().len(), 5);
    assert_eq!(query_all(&db, i64::MIN, i64::MAX), want);
    let q = db.querier(t6, t6 + H);
    assert_eq!(
        q.label_values("s", &[Matcher::regex("s", "s0[12]").unwrap()]),
        vec!["s01", "s02"]
    );
    drop(q);
    let stats = db.compact().unwrap();
    assert!(!stats.compacted_blocks.is_empty());
    assert_no_overlaps(&db);
    assert_eq!(query_all(&db, i64::MIN, i64::MAX), want);
    db.close().unwrap();
    let db = Db::open(&dir, opts(2 * H)).unwrap();
    assert_eq!(query_all(&db, i64::MIN, i64::MAX), want);
    db.close().unwrap();
    if !zstd_tier() {
        assert_eq!(promtool_dump(&dir), want);
    }
}

#[test]
fn overlapping_blocks_are_merged_in_queries_and_by_vertical_compaction() {
    if !peer_available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    // Two imports of overlapping ranges; where both hold a timestamp they agree (a re-import).
    let (a, _) = openmetrics(3, T0, 480, 7);
    let (b, _) = openmetrics(3, T0 + H, 720, 7);
    let (_, want) = openmetrics(3, T0, 960, 7);
    create_blocks(&a, &dir);
    create_blocks(&b, &dir.with_file_name("db2"));
    for e in std::fs::read_dir(dir.with_file_name("db2")).unwrap() {
        let e = e.unwrap();
        copy_dir(&e.path(), &dir.join(e.file_name()));
    }
    let db = Db::open(&dir, opts(2 * H)).unwrap();
    assert_eq!(db.blocks().len(), 3);
    assert_eq!(query_all(&db, i64::MIN, i64::MAX), want);
    db.compact().unwrap();
    assert_no_overlaps(&db);
    assert_eq!(query_all(&db, i64::MIN, i64::MAX), want);
    db.close().unwrap();
    if !zstd_tier() {
        assert_eq!(promtool_dump(&dir), want);
    }
}

#[test]
fn a_commit_into_a_range_compacted_meanwhile_is_refused_not_lost() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let db = Db::open(dir, opts(2 * H)).unwrap();
    let a = Labels::from_pairs([("__name__", "late")]).unwrap();
    let mut early = db.appender();
    early.append(&a, T0, 1.0).unwrap();
    early.commit().unwrap();
    // Checked against the head as it is now: fine.
    let mut old = db.appender();
    old.append(&a, T0 + 60_000, 2.0).unwrap();
    let mut want = Data::new();
    write(&db, 2, T0, 15_000, 960, &mut want);
    assert_eq!(db.compact().unwrap().head_blocks.len(), 1);
    match old.commit() {
        Err(ember::Error::OutOfBounds { t, min_valid }) => {
            assert_eq!((t, min_valid), (T0 + 60_000, T0 + 2 * H));
        }
        other => panic!("expected out of bounds, got {other:?}"),
    }
    want.insert(label_text(&a), vec![(T0, bits(1.0))]);
    assert_eq!(query_all(&db, i64::MIN, i64::MAX), want);
    db.close().unwrap();
    let db = Db::open(dir, opts(2 * H)).unwrap();
    assert_eq!(query_all(&db, i64::MIN, i64::MAX), want);
}

#[test]
fn queries_running_during_compactions_see_every_committed_sample_exactly_once() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

    let tmp = tempfile::tempdir().unwrap();
    let db = Db::open(
        tmp.path(),
        Options {
            retention_ms: 0,
            ..opts(1_000)
        },
    )
    .unwrap();
    let ls: Vec<Labels> = (0..4)
        .map(|s| Labels::from_pairs([("__name__", "c"), ("s", &*s.to_string())]).unwrap())
        .collect();
    // Number of 10 ms steps committed so far.
    let committed = Arc::new(AtomicI64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (db, committed, done) = (db.clone(), committed.clone(), done.clone());
            std::thread::spawn(move || {
                let mut checks = 0;
                while !done.load(Ordering::Acquire) {
                    let n = committed.load(Ordering::Acquire);
                    for s in db.querier(i64::MIN, i64::MAX).try_select(&[]).unwrap() {
                        let got = s.samples().unwrap();
                        // Every committed step is there once, in order, and nothing else.
                        assert!(got.len() as i64 >= n, "{} of {n} steps", got.len());
                        for (i, &(t, v)) in got.iter().enumerate() {
                            assert_eq!((t, v), (T0 + i as i64 * 10, i as f64));
                        }
                    }
                    checks += 1;
                }
                checks
            })
        })
        .collect();
    for step in (0..3_000i64).collect::<Vec<_>>().chunks(25) {
        let mut app = db.appender();
        for &i in step {
            for l in &ls {
                app.append(l, T0 + i * 10, i as f64).unwrap();
            }
        }
        app.commit().unwrap();
        committed.store(step[step.len() - 1] + 1, Ordering::Release);
        db.compact().unwrap();
    }
    done.store(true, Ordering::Release);
    for r in readers {
        assert!(r.join().unwrap() > 0);
    }
    assert!(db.blocks().iter().any(|m| m.compaction.level > 1));
}

#[test]
fn a_directory_named_like_a_block_without_meta_json_is_skipped_and_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let stray = dir.join(ulid::Ulid::new().to_string());
    std::fs::create_dir_all(stray.join("chunks")).unwrap();
    let db = Db::open(dir, opts(2 * H)).unwrap();
    assert!(db.blocks().is_empty());
    drop(db);
    assert!(stray.exists());
    std::fs::write(stray.join("meta.json"), b"{\"ulid\": 5}").unwrap();
    let db = Db::open(dir, opts(2 * H)).unwrap();
    assert!(db.blocks().is_empty());
    assert!(stray.exists());
}

#[test]
fn a_damaged_chunk_fails_only_its_series_naming_segment_and_offset() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let db = Db::open(dir, opts(2 * H)).unwrap();
    let mut want = Data::new();
    write(&db, 3, T0, 15_000, 960, &mut want);
    db.compact().unwrap();
    let ulid = db.blocks()[0].ulid;
    db.close().unwrap();
    let seg = dir.join(ulid.to_string()).join("chunks").join("000001");
    let mut bytes = std::fs::read(&seg).unwrap();
    // The first chunk starts right after the 8-byte header; flip a byte of its data.
    bytes[8 + 10] ^= 0x55;
    std::fs::write(&seg, &bytes).unwrap();

    let db = Db::open(dir, opts(2 * H)).unwrap();
    let series = db.querier(i64::MIN, i64::MAX).select(&[]);
    assert_eq!(series.len(), 3);
    let mut failed = 0;
    for s in &series {
        match s.samples() {
            Ok(got) => {
                let got: Vec<(i64, u64)> = got.into_iter().map(|(t, v)| (t, bits(v))).collect();
                assert_eq!(got, want[&label_text(s.labels())]);
            }
            Err(ember::Error::CorruptFile {
                path,
                offset,
                reason,
            }) => {
                assert_eq!(path, seg);
                assert_eq!(offset, 8);
                assert!(reason.contains("checksum"), "{reason}");
                failed += 1;
            }
            Err(e) => panic!("unexpected error {e}"),
        }
    }
    assert_eq!(failed, 1);
    // A query over the head's range alone does not touch the block.
    let head_only = db.querier(T0 + 2 * H, i64::MAX).try_select(&[]).unwrap();
    assert!(head_only.iter().all(|s| s.samples().is_ok()));
}

#[test]
fn flipped_bytes_anywhere_in_a_block_give_errors_or_correct_data_never_a_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    let db = Db::open(&dir, opts(2 * H)).unwrap();
    let mut want = Data::new();
    write(&db, 3, T0, 60_000, 240, &mut want);
    db.compact().unwrap();
    let ulid = db.blocks()[0].ulid;
    let in_block: Data = query_all(&db, T0, T0 + 2 * H - 1);
    db.close().unwrap();
    let block = dir.join(ulid.to_string());
    let files: Vec<std::path::PathBuf> = ["meta.json", "index", "chunks/000001", "tombstones"]
        .iter()
        .map(|f| block.join(f))
        .collect();
    let originals: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = |n: usize| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng % n as u64) as usize
    };
    let (mut refused, mut failed_reads, mut intact) = (0, 0, 0);
    for _ in 0..400 {
        let f = next(files.len());
        let mut bytes = originals[f].clone();
        let at = next(bytes.len());
        bytes[at] ^= 1 << next(8);
        std::fs::write(&files[f], &bytes).unwrap();
        match ember::Block::open(&block) {
            Err(_) => refused += 1,
            Ok(b) => match b.select(&[], i64::MIN, i64::MAX) {
                Err(_) => failed_reads += 1,
                Ok(series) => {
                    let mut got = Data::new();
                    let mut bad = false;
                    for s in series {
                        match s.samples() {
                            Ok(v) => {
                                got.insert(
                                    label_text(s.labels()),
                                    v.into_iter().map(|(t, v)| (t, bits(v))).collect(),
                                );
                            }
                            Err(_) => bad = true,
                        }
                    }
                    if bad {
                        failed_reads += 1;
                    } else if got == in_block {
                        intact += 1;
                    } else {
                        // Only meta.json is outside every checksum; a changed digit there may rename
                        // the block's range or counts, never the samples.
                        assert_eq!(f, 0, "undetected change in {:?} at byte {at}", files[f]);
                    }
                }
            },
        }
        std::fs::write(&files[f], &originals[f]).unwrap();
    }
    eprintln!("refused {refused}, failed reads {failed_reads}, intact {intact}");
    assert!(refused > 0 && failed_reads > 0);
}

#[test]
fn a_compaction_reading_a_damaged_block_fails_marks_its_inputs_failed_and_is_not_retried() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let o = Options {
        retention_ms: 0,
        ..opts(1_000)
    };
    assert_eq!(T0 % 3_000, 0);
    let db = Db::open(dir, o.clone()).unwrap();
    let mut want = Data::new();
    write(&db, 2, T0, 20, 180, &mut want);
    db.compact().unwrap();
    let first = db.blocks();
    assert_eq!(first.len(), 3, "{first:?}");
    db.close().unwrap();
    let seg = dir.join(first[0].ulid.to_string()).join("chunks/000001");
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes[8 + 10] ^= 0xff;
    std::fs::write(&seg, &bytes).unwrap();

    let db = Db::open(dir, o).unwrap();
    write(&db, 2, T0 + 3_600, 20, 70, &mut want);
    let err = db.compact().unwrap_err();
    assert!(
        matches!(&err, ember::Error::CorruptFile { path, .. } if *path == seg),
        "{err}"
    );
    let metas = db.blocks();
    for m in &metas {
        assert_eq!(
            m.compaction.failed,
            first.iter().any(|f| f.ulid == m.ulid),
            "{metas:?}"
        );
    }
    assert!(
        std::fs::read_dir(dir).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .contains(".tmp")),
        "no leftovers"
    );
    // The planner leaves the failed blocks alone from now on.
    db.compact().unwrap();
    assert_eq!(db.blocks().len(), metas.len());
}

/// A plain HTTP/1.0 GET against 127.0.0.1; returns status and body.
fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    let status = resp.split_whitespace().nth(1)?.parse().ok()?;
    let body = resp.split_once("\r\n\r\n")?.1.to_string();
    Some((status, body))
}

#[test]
fn prometheus_opens_an_ember_data_directory_and_serves_every_sample() {
    if Command::new("prometheus")
        .arg("--version")
        .output()
        .is_err()
    {
        assert_eq!(std::env::var("EMBER_SKIP_PEER_TESTS").as_deref(), Ok("1"));
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let db = Db::open(&dir, opts(2 * H)).unwrap();
    let mut want = Data::new();
    write(&db, 4, T0, 15_000, 960, &mut want);
    db.compact().unwrap();
    assert_eq!(db.blocks().len(), 1);
    db.close().unwrap();

    let config = tmp.path().join("prometheus.yml");
    std::fs::write(&config, "global:\n  scrape_interval: 1m\n").unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut prom = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", dir.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        // Keep Prometheus from deleting the old test data by retention or compacting it meanwhile.
        .arg("--storage.tsdb.retention.time=100y")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let ready = loop {
        if let Some((200, _)) = http_get(port, "/-/ready") {
            break true;
        }
        if std::time::Instant::now() > deadline || prom.try_wait().unwrap().is_some() {
            break false;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    if !ready {
        prom.kill().ok();
        let out = prom.wait_with_output().unwrap();
        panic!(
            "prometheus did not become ready: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Every raw sample of the 4 h, through a range selector at the end.
    let at = (T0 + 4 * H) as f64 / 1000.0;
    let (status, body) =
        http_get(port, &format!("/api/v1/query?query=m%5B5h%5D&time={at}")).unwrap();
    prom.kill().ok();
    prom.wait().ok();
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let mut got = Data::new();
    for s in v["data"]["result"].as_array().unwrap() {
        let m = s["metric"].as_object().unwrap();
        let labels =
            Labels::from_pairs(m.iter().map(|(k, v)| (k.as_str(), v.as_str().unwrap()))).unwrap();
        let samples = s["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                let t = (p[0].as_f64().unwrap() * 1000.0).round() as i64;
                let v: f64 = p[1].as_str().unwrap().parse().unwrap();
                (t, bits(v))
            })
            .collect();
        got.insert(label_text(&labels), samples);
    }
    assert_eq!(got, want);
}

#[test]
fn the_background_compactor_cuts_blocks_and_stops_with_its_handle() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let db = Db::open(dir, opts(1_000)).unwrap();
    let compactor = db.start_compactor(std::time::Duration::from_millis(20));
    let mut want = Data::new();
    write(&db, 2, T0, 20, 300, &mut want);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    // 6 s of data: the compactor moves the first 5 s into blocks (the head keeps under 1.5 s).
    let head_start = || db.stats().time_range.map_or(i64::MIN, |r| r.0);
    while head_start() < T0 + 5_000 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(head_start(), T0 + 5_000);
    drop(compactor);
    let metas = db.blocks();
    assert_eq!(
        metas.iter().map(|m| m.min_time).min(),
        Some(T0),
        "{metas:?}"
    );
    assert_eq!(metas.iter().map(|m| m.max_time).max(), Some(T0 + 5_000));
    assert_eq!(query_all(&db, i64::MIN, i64::MAX), want);
    db.close().unwrap();
    // The compactor held no reference: the directory can be opened again at once.
    let db = Db::open(dir, opts(1_000)).unwrap();
    assert_eq!(query_all(&db, i64::MIN, i64::MAX), want);
}

/// `want` restricted to `[mint, maxt]`, series without samples there left out.
fn in_range(want: &Data, mint: i64, maxt: i64) -> Data {
    want.iter()
        .map(|(k, v)| {
            let kept: Vec<(i64, u64)> = v
                .iter()
                .copied()
                .filter(|&(t, _)| t >= mint && t <= maxt)
                .collect();
            (k.clone(), kept)
        })
        .filter(|(_, v)| !v.is_empty())
        .collect()
}

#[test]
fn repeated_queries_over_blocks_answer_the_same_from_the_decoded_chunk_cache() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let db = Db::open(dir, opts(2 * H)).unwrap();
    let mut want = Data::new();
    write(&db, 5, T0, 15_000, 960, &mut want);
    db.compact().unwrap();
    assert!(!db.blocks().is_empty());
    let cold = db.decoded_cache_stats().unwrap();
    assert_eq!((cold.hits, cold.misses, cold.entries), (0, 0, 0));

    let (mint, maxt) = (T0, T0 + 4 * H);
    assert_eq!(query_all(&db, mint, maxt), want);
    let filled = db.decoded_cache_stats().unwrap();
    assert!(filled.misses > 0 && filled.entries > 0, "{filled:?}");
    assert_eq!(query_all(&db, mint, maxt), want);
    let again = db.decoded_cache_stats().unwrap();
    assert!(
        again.hits >= filled.misses,
        "second query decodes nothing: {again:?}"
    );
    assert_eq!(again.misses, filled.misses);
    // Ranges that cut chunks in the middle take only their part of a cached chunk.
    for (lo, hi) in [
        (T0 + 7_500, T0 + H + 1),
        (T0 + H + 30_000, T0 + 3 * H),
        (T0, T0),
    ] {
        assert_eq!(
            query_all(&db, lo, hi),
            in_range(&want, lo, hi),
            "[{lo}, {hi}]"
        );
    }
    db.close().unwrap();

    let off = Options {
        decoded_chunk_cache_bytes: 0,
        ..opts(2 * H)
    };
    let db = Db::open(dir, off).unwrap();
    assert!(db.decoded_cache_stats().is_none());
    assert_eq!(query_all(&db, mint, maxt), want);
}

#[test]
fn series_listings_over_blocks_match_the_series_a_query_selects() {
    let tmp = tempfile::tempdir().unwrap();
    let db = Db::open(tmp.path(), opts(2 * H)).unwrap();
    let mut want = Data::new();
    // Two series only in the first half hour (so only in the first block), sorting before and
    // after all the others.
    for s in ["a_early", "zz_early"] {
        let l = Labels::from_pairs([("__name__", "m"), ("s", s)]).unwrap();
        let mut app = db.appender();
        for i in 0..120 {
            app.append(&l, T0 + i * 15_000, i as f64).unwrap();
        }
        app.commit().unwrap();
    }
    write(&db, 6, T0, 15_000, 960, &mut want);
    db.compact().unwrap();
    assert!(!db.blocks().is_empty());
    let listed = |db: &Db, lo: i64, hi: i64| -> Vec<String> {
        db.querier(lo, hi)
            .select_labels(&[])
            .iter()
            .map(label_text)
            .collect()
    };
    let selected =
        |db: &Db, lo: i64, hi: i64| -> Vec<String> { query_all(db, lo, hi).into_keys().collect() };
    // Whole blocks (listed without decoding chunk references), part of one, and between samples.
    for (lo, hi) in [
        (T0, T0 + 4 * H),
        (i64::MIN, i64::MAX),
        (T0 + H, T0 + H + 60_000),
        (T0 + 1, T0 + 2),
    ] {
        assert_eq!(listed(&db, lo, hi), selected(&db, lo, hi), "[{lo}, {hi}]");
    }
    // A series deleted from the first block is no longer listed over that block's range.
    let gone = Matcher::new(ember::MatchType::Equal, "s", "s03").unwrap();
    db.delete(&[gone], i64::MIN, T0 + 2 * H - 1).unwrap();
    let (lo, hi) = (T0, T0 + 2 * H - 1);
    let names = listed(&db, lo, hi);
    assert_eq!(names.len(), 7, "{names:?}");
    assert!(
        names.iter().any(|n| n.contains("a_early")) && names.iter().any(|n| n.contains("zz_early"))
    );
    assert_eq!(names, selected(&db, lo, hi));
}
