//! Crash safety of head compaction, block compaction and retention: a child process (this test binary
//! re-executed with an environment variable) appends batches, committing each and compacting after each,
//! and is killed with SIGKILL at a random moment. Reopening the directory must give exactly the batches
//! whose commit returned — plus, possibly, the one in flight, whose commit may have reached the WAL
//! without being reported — each sample once, with no overlapping blocks and no temporary directories.
//!
//! The random timings are seeded from the clock; the seed is printed so a failure can be replayed with
//! EMBER_CRASH_SEED.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use ember::{Db, Labels, Options, SyncPolicy};

const CHILD_DIR: &str = "EMBER_CRASH_CHILD_DIR";
const CHILD_START: &str = "EMBER_CRASH_CHILD_START";
const T0: i64 = 1_700_000_000_000;
const SERIES: usize = 4;
/// Samples per series per batch, 10 ms apart: a batch covers 100 ms, a block range 10 batches.
const PER_BATCH: i64 = 10;

fn opts() -> Options {
    Options {
        block_range_ms: 1_000,
        wal_sync: SyncPolicy::EveryCommit,
        wal_segment_size: 64 * 1024,
        // Keeps the number of blocks bounded so that retention deletes blocks during the run too.
        retention_ms: 20_000,
        // Ranges 1 s, 3 s, 9 s: leveled compaction happens within a round or two.
        max_block_duration_ms: Some(9_000),
        ..Options::default()
    }
}

fn labels(s: usize) -> Labels {
    Labels::from_pairs([("__name__", "crash"), ("s", &*format!("{s}"))]).unwrap()
}

fn sample(b: i64, k: i64, s: usize) -> (i64, f64) {
    (
        T0 + (b * PER_BATCH + k) * 10,
        (b * 1000 + k) as f64 + s as f64 / 8.0,
    )
}

/// The child: appends batches from `start` on, committing and compacting after each, forever (until
/// killed). Prints `committed N` once batch N's commit has returned.
#[test]
#[ignore = "runs only as the child process of crashing_at_random_points_keeps_exactly_the_committed_batches"]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    let start: i64 = std::env::var(CHILD_START).unwrap().parse().unwrap();
    let db = Db::open(&dir, opts()).unwrap();
    let ls: Vec<Labels> = (0..SERIES).map(labels).collect();
    let mut out = std::io::stdout();
    // Bounded: the parent kills the child long before this.
    for b in start..start + 100_000 {
        let mut app = db.appender();
        for k in 0..PER_BATCH {
            for (s, l) in ls.iter().enumerate() {
                let (t, v) = sample(b, k, s);
                app.append(l, t, v).unwrap();
            }
        }
        app.commit().unwrap();
        writeln!(out, "committed {b}").unwrap();
        out.flush().unwrap();
        db.compact().unwrap();
    }
}

/// The data in `dir`, per series.
fn read_back(dir: &Path) -> BTreeMap<String, Vec<(i64, f64)>> {
    let db = Db::open(dir, opts()).unwrap();
    let mut metas = db.blocks();
    metas.sort_by_key(|m| m.min_time);
    for w in metas.windows(2) {
        assert!(
            w[0].max_time <= w[1].min_time,
            "overlapping blocks {metas:?}"
        );
    }
    let mut out = BTreeMap::new();
    for s in db.querier(i64::MIN, i64::MAX).try_select(&[]).unwrap() {
        out.insert(
            s.labels().get("s").unwrap().to_string(),
            s.samples().unwrap(),
        );
    }
    db.close().unwrap();
    for e in std::fs::read_dir(dir).unwrap() {
        let name = e.unwrap().file_name();
        assert!(
            !name.to_string_lossy().contains(".tmp"),
            "leftover {name:?} after open"
        );
    }
    out
}

/// What batches `first..=last` hold, per series, restricted to samples at or after `from` (what
/// retention keeps).
fn expected(first: i64, last: i64, from: i64) -> BTreeMap<String, Vec<(i64, f64)>> {
    let mut out = BTreeMap::new();
    for s in 0..SERIES {
        let v: Vec<(i64, f64)> = (first..=last)
            .flat_map(|b| (0..PER_BATCH).map(move |k| sample(b, k, s)))
            .filter(|&(t, _)| t >= from)
            .collect();
        if !v.is_empty() {
            out.insert(s.to_string(), v);
        }
    }
    out
}

#[test]
fn crashing_at_random_points_keeps_exactly_the_committed_batches() {
    let mut rng = common::CrashRng::from_env();
    let seed = rng.seed();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    let mut start = 0i64;
    let mut compacted_rounds = 0;
    let mut interrupted_writes = 0;
    for round in 0..16 {
        // Let it run past a few head compactions, then kill it at a random moment.
        let want_batches = 5 + rng.below(40) as i64;
        let envs = [
            (CHILD_DIR, dir.clone().into_os_string()),
            (CHILD_START, start.to_string().into()),
        ];
        let reported = common::run_and_kill("crash_child", &envs, start + want_batches, &mut rng);
        let last = reported.expect("the child committed at least one batch");

        // Evidence that kills land inside block writes: a temporary block directory left behind.
        if std::fs::read_dir(&dir)
            .unwrap()
            .any(|e| e.unwrap().file_name().to_string_lossy().contains(".tmp"))
        {
            interrupted_writes += 1;
        }
        let got = read_back(&dir);
        let oldest_kept = got
            .values()
            .filter_map(|v| v.first().map(|s| s.0))
            .min()
            .unwrap();
        // Retention may have dropped whole old blocks; what is left must start at a block boundary.
        assert_eq!((oldest_kept - T0) % 1_000, 0, "round {round}");
        let exact = expected(0, last, oldest_kept);
        let with_in_flight = expected(0, last + 1, oldest_kept);
        assert!(
            got == exact || got == with_in_flight,
            "round {round} (seed {seed}): after batch {last} the data differs: got {} samples in s0, want {} or {}",
            got.get("0").map_or(0, Vec::len),
            exact.get("0").map_or(0, Vec::len),
            with_in_flight.get("0").map_or(0, Vec::len),
        );
        start = if got == exact { last + 1 } else { last + 2 };
        let db = Db::open(&dir, opts()).unwrap();
        if db.blocks().iter().any(|m| m.compaction.level > 1) {
            compacted_rounds += 1;
        }
        db.close().unwrap();
    }
    eprintln!("kills inside a block write: {interrupted_writes} of 16");
    assert!(compacted_rounds > 0, "no block compaction happened");
}
