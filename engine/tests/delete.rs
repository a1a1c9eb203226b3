//! Deletion, tombstone cleaning and snapshots end to end: deleted samples disappear from queries in the
//! head and in blocks, stay deleted across restarts (WAL replay, checkpoints) and head compaction,
//! `clean_tombstones` removes them from disk, and a snapshot opens as a database with the same data.

use std::collections::BTreeMap;
use std::path::Path;

use ember::{Db, Matcher, Options, SyncPolicy, Tombstones};

const H: i64 = 3600 * 1000;
/// A multiple of 2 h, so block boundaries are predictable.
const T0: i64 = 1_699_999_200_000;
const STEP: i64 = 15_000;

type Data = BTreeMap<String, Vec<(i64, f64)>>;

fn opts() -> Options {
    Options {
        wal_sync: SyncPolicy::Never,
        // Small segments so a checkpoint has complete segments to fold.
        wal_segment_size: 64 << 10,
        ..Options::default()
    }
}

fn query(db: &Db, matchers: &[Matcher]) -> Data {
    db.querier(i64::MIN, i64::MAX)
        .try_select(matchers)
        .unwrap()
        .into_iter()
        .map(|s| (s.labels().to_string(), s.samples().unwrap()))
        .collect()
}

/// Writes series `job=a` and `job=b` with one sample per 15 s over `[from, to)`, `value = t / 1000`.
fn write(db: &Db, from: i64, to: i64) {
    let mut app = db.appender();
    for job in ["a", "b"] {
        let l = ember::Labels::from_pairs([("__name__", "m"), ("job", job)]).unwrap();
        let mut t = from;
        while t < to {
            app.append(&l, t, (t / 1000) as f64).unwrap();
            t += STEP;
        }
    }
    app.commit().unwrap();
}

/// What `write(from, to)` stores for one series, without the samples in `[dmin, dmax]`.
fn expected(from: i64, to: i64, deleted: Option<(i64, i64)>) -> Vec<(i64, f64)> {
    (0..)
        .map(|i| from + i * STEP)
        .take_while(|&t| t < to)
        .filter(|&t| deleted.is_none_or(|(lo, hi)| t < lo || t > hi))
        .map(|t| (t, (t / 1000) as f64))
        .collect()
}

fn job(j: &str) -> Vec<Matcher> {
    vec![Matcher::equal("job", j)]
}

fn series_a(d: &Data) -> &Vec<(i64, f64)> {
    &d[r#"m{job="a"}"#]
}

fn series_b(d: &Data) -> &Vec<(i64, f64)> {
    &d[r#"m{job="b"}"#]
}

#[test]
fn a_deletion_in_the_head_hides_samples_and_survives_restart_and_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    write(&db, T0, T0 + H);
    let del = (T0 + 10 * 60_000, T0 + 20 * 60_000);
    let stats = db.delete(&job("a"), del.0, del.1).unwrap();
    assert_eq!(stats.head_series, 1);
    assert!(stats.blocks.is_empty());

    let check = |db: &Db| {
        let got = query(db, &[]);
        assert_eq!(*series_a(&got), expected(T0, T0 + H, Some(del)));
        assert_eq!(*series_b(&got), expected(T0, T0 + H, None));
    };
    check(&db);
    // Samples appended after the deletion are not hidden, as in Prometheus: the interval was clamped to
    // the data the series held.
    write(&db, T0 + H, T0 + H + 5 * 60_000);
    let after = query(&db, &job("a"));
    assert_eq!(
        *series_a(&after),
        expected(T0, T0 + H + 5 * 60_000, Some(del))
    );
    db.close().unwrap();

    let db = Db::open(dir.path(), opts()).unwrap();
    assert_eq!(db.replay_stats().tombstones, 1);
    let got = query(&db, &job("a"));
    assert_eq!(
        *series_a(&got),
        expected(T0, T0 + H + 5 * 60_000, Some(del))
    );
    // Fold every WAL segment into a checkpoint: the tombstone must be carried into it.
    let t = db.truncate_head(T0).unwrap();
    assert!(t.checkpoint.is_some(), "a checkpoint was written: {t:?}");
    db.close().unwrap();

    let db = Db::open(dir.path(), opts()).unwrap();
    assert!(db.replay_stats().checkpoint.is_some());
    assert_eq!(db.replay_stats().tombstones, 1);
    let got = query(&db, &[]);
    assert_eq!(
        *series_a(&got),
        expected(T0, T0 + H + 5 * 60_000, Some(del))
    );
    assert_eq!(*series_b(&got), expected(T0, T0 + H + 5 * 60_000, None));
    db.close().unwrap();
}

#[test]
fn head_compaction_leaves_deleted_samples_out_of_the_block() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    write(&db, T0, T0 + 4 * H);
    let del = (T0 + H, T0 + H + 30 * 60_000);
    db.delete(&job("a"), del.0, del.1).unwrap();
    let stats = db.compact().unwrap();
    assert_eq!(stats.head_blocks.len(), 1, "{stats:?}");
    let blocks = db.blocks();
    assert_eq!(blocks.len(), 1);
    let b = &blocks[0];
    // Written without the deleted samples, not with tombstones.
    let per_series = (2 * H / STEP) as u64;
    let gone = ((del.1 - del.0) / STEP + 1) as u64;
    assert_eq!(b.stats.num_samples, 2 * per_series - gone);
    assert_eq!(b.stats.num_tombstones, 0);
    let block_dir = dir.path().join(b.ulid.to_string());
    assert!(Tombstones::read_from_dir(&block_dir).unwrap().is_empty());

    let check = |db: &Db| {
        let got = query(db, &[]);
        assert_eq!(*series_a(&got), expected(T0, T0 + 4 * H, Some(del)));
        assert_eq!(*series_b(&got), expected(T0, T0 + 4 * H, None));
    };
    check(&db);
    db.close().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    check(&db);
    db.close().unwrap();
}

#[test]
fn a_deletion_in_a_block_writes_tombstones_and_clean_tombstones_rewrites_the_block() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    write(&db, T0, T0 + 4 * H);
    db.compact().unwrap();
    let old = db.blocks()[0].clone();
    assert_eq!((old.min_time, old.max_time), (T0, T0 + 2 * H));

    // Spans the block's end and the head.
    let del = (T0 + 90 * 60_000, T0 + 150 * 60_000);
    let stats = db.delete(&job("b"), del.0, del.1).unwrap();
    assert_eq!(stats.blocks, vec![old.ulid]);
    assert_eq!(stats.head_series, 1);
    let old_dir = dir.path().join(old.ulid.to_string());
    let stones = Tombstones::read_from_dir(&old_dir).unwrap();
    assert_eq!(stones.total(), 1);
    assert_eq!(db.blocks()[0].stats.num_tombstones, 1);
    let on_disk = ember::BlockMeta::read_from_dir(&old_dir).unwrap();
    assert_eq!(on_disk.stats.num_tombstones, 1);

    let check = |db: &Db| {
        let got = query(db, &[]);
        assert_eq!(*series_a(&got), expected(T0, T0 + 4 * H, None));
        assert_eq!(*series_b(&got), expected(T0, T0 + 4 * H, Some(del)));
    };
    check(&db);
    db.close().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    check(&db);

    let (replaced, written) = db.clean_tombstones().unwrap();
    assert_eq!(replaced, vec![old.ulid]);
    assert_eq!(written.len(), 1);
    assert!(!old_dir.exists(), "the old block is deleted");
    let new = db.blocks()[0].clone();
    assert_eq!(new.ulid, written[0]);
    assert_eq!(new.compaction.parents[0].ulid, old.ulid);
    assert_eq!(new.stats.num_tombstones, 0);
    let gone_in_block = ((T0 + 2 * H - del.0) / STEP) as u64;
    assert_eq!(new.stats.num_samples, old.stats.num_samples - gone_in_block);
    assert!(
        Tombstones::read_from_dir(&dir.path().join(new.ulid.to_string()))
            .unwrap()
            .is_empty()
    );
    check(&db);
    // Nothing left to clean.
    assert_eq!(db.clean_tombstones().unwrap(), (vec![], vec![]));
    db.close().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    check(&db);
    db.close().unwrap();
}

#[test]
fn clean_tombstones_deletes_a_block_whose_samples_were_all_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    write(&db, T0, T0 + 4 * H);
    db.compact().unwrap();
    let old = db.blocks()[0].clone();
    db.delete(&[Matcher::equal("__name__", "m")], T0, T0 + 2 * H - 1)
        .unwrap();
    assert!(query(&db, &[]).values().all(|s| s[0].0 >= T0 + 2 * H));
    let (replaced, written) = db.clean_tombstones().unwrap();
    assert_eq!((replaced, written), (vec![old.ulid], vec![]));
    assert!(db.blocks().is_empty());
    assert!(!dir.path().join(old.ulid.to_string()).exists());
    db.close().unwrap();
}

#[test]
fn a_deletion_that_matches_nothing_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    write(&db, T0, T0 + 4 * H);
    db.compact().unwrap();
    let before = query(&db, &[]);
    let stats = db.delete(&job("nope"), i64::MIN, i64::MAX).unwrap();
    assert_eq!(stats, ember::DeleteStats::default());
    // Outside every series' data.
    let stats = db.delete(&job("a"), 0, T0 - 1).unwrap();
    assert_eq!(stats, ember::DeleteStats::default());
    assert_eq!(db.blocks()[0].stats.num_tombstones, 0);
    assert_eq!(query(&db, &[]), before);
    db.close().unwrap();
}

fn same_data_after_open(snap: &Path, want: &Data) {
    let db = Db::open(snap, opts()).unwrap();
    assert_eq!(&query(&db, &[]), want);
    db.close().unwrap();
}

#[test]
fn a_snapshot_opens_as_a_database_with_the_same_data() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    write(&db, T0, T0 + 4 * H);
    db.compact().unwrap();
    let del = (T0 + 30 * 60_000, T0 + 3 * H);
    db.delete(&job("a"), del.0, del.1).unwrap();
    let all = query(&db, &[]);
    assert_eq!(*series_a(&all), expected(T0, T0 + 4 * H, Some(del)));

    let snaps = tempfile::tempdir().unwrap();
    let with_head = snaps.path().join("with-head");
    let s = db.snapshot(&with_head, true).unwrap();
    assert_eq!(s.blocks, 1);
    assert!(s.head_block.is_some());
    let no_head = snaps.path().join("no-head");
    let s = db.snapshot(&no_head, false).unwrap();
    assert_eq!((s.blocks, s.head_block), (1, None));
    // The snapshot's block files are links to the same data, not copies that could differ.
    let b = db.blocks()[0].ulid.to_string();
    let a = std::fs::read(dir.path().join(&b).join("index")).unwrap();
    assert_eq!(a, std::fs::read(no_head.join(&b).join("index")).unwrap());
    // Writing on after the snapshot does not change it.
    write(&db, T0 + 4 * H, T0 + 5 * H);
    db.close().unwrap();

    same_data_after_open(&with_head, &all);
    let blocks_only: Data = all
        .iter()
        .map(|(k, v)| {
            let kept = v.iter().copied().filter(|&(t, _)| t < T0 + 2 * H).collect();
            (k.clone(), kept)
        })
        .collect();
    same_data_after_open(&no_head, &blocks_only);
}

#[test]
fn a_snapshot_into_the_data_directory_or_a_block_named_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    write(&db, T0, T0 + H);
    assert!(db.snapshot(dir.path(), true).is_err());
    let ulid_named = dir.path().join(ulid::Ulid::new().to_string());
    let err = db.snapshot(&ulid_named, true).unwrap_err().to_string();
    assert!(err.contains("named like a block"), "{err}");
    assert!(!ulid_named.exists());
    db.close().unwrap();
}
