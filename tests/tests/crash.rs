//! Crash consistency: a child process commits batches in a loop and is killed with SIGKILL at random
//! points, many times over one data directory. After each kill the directory is reopened and checked
//! against a model built from the child's `acked K` lines: every acknowledged batch is there whole, a batch
//! in flight is there whole or not at all, and nothing else is there.

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ember::{Db, Options};
use ember_tests::{PER_BATCH, STEP_MS, batch_series, series_labels, value};
use rand::{Rng, SeedableRng};

struct Run {
    acked: u64,
    started: u64,
}

fn run_child_and_kill(
    dir: &std::path::Path,
    kill_after: Duration,
    seg: usize,
    cp_every: u64,
) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_crash_writer"))
        .arg(dir)
        .arg(seg.to_string())
        .arg(cp_every.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn crash_writer");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + kill_after;
    let mut run = Run {
        acked: 0,
        started: 0,
    };
    // Wait for start-up (replay) before the kill timer counts, so kills land in the write loop.
    if let Ok(line) = rx.recv_timeout(Duration::from_secs(60)) {
        run.started = line.strip_prefix("start ").unwrap().parse().unwrap();
    }
    let deadline = deadline.max(Instant::now() + kill_after);
    while Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(1))
            && let Some(k) = line.strip_prefix("acked ")
        {
            run.acked = k.parse().unwrap();
        }
    }
    child.kill().expect("SIGKILL child"); // std sends SIGKILL on Unix
    let status = child.wait().unwrap();
    assert!(
        status.code().is_none(),
        "child exited by itself: {status:?}"
    );
    // Lines already written before the kill are still in the pipe: an `acked` there was acknowledged.
    reader.join().unwrap();
    while let Ok(line) = rx.try_recv() {
        if let Some(k) = line.strip_prefix("acked ") {
            run.acked = k.parse().unwrap();
        }
    }
    run
}

/// Reads the whole database into `series index -> (t -> value bits)`.
fn read_all(db: &Db) -> BTreeMap<usize, BTreeMap<i64, u64>> {
    let index: std::collections::HashMap<_, _> = (0..ember_tests::SERIES)
        .map(|i| (series_labels(i), i))
        .collect();
    let mut out = BTreeMap::new();
    for s in db.querier(i64::MIN, i64::MAX).select(&[]) {
        let i = *index
            .get(s.labels())
            .unwrap_or_else(|| panic!("unexpected series {}", s.labels()));
        let samples = s.samples().expect("chunks decode");
        let m: &mut BTreeMap<i64, u64> = out.entry(i).or_default();
        for (t, v) in samples {
            assert!(
                m.insert(t, v.to_bits()).is_none(),
                "sample at {t} returned twice"
            );
        }
    }
    out
}

fn check(dir: &std::path::Path, acked: u64) -> u64 {
    let db = Db::open(dir, Options::default()).expect("reopen after SIGKILL");
    let all = read_all(&db);
    let present: HashSet<i64> = all.values().flat_map(|m| m.keys().copied()).collect();
    let max_batch = present
        .iter()
        .map(|t| (t / STEP_MS) as u64)
        .max()
        .unwrap_or(0);
    assert!(
        max_batch >= acked,
        "acknowledged batch {acked} missing (newest present {max_batch})"
    );
    assert!(
        max_batch <= acked + 1,
        "batch {max_batch} present but only {acked} acknowledged"
    );
    let mut total = 0;
    for k in 1..=max_batch {
        for i in batch_series(k) {
            let got = all.get(&i).and_then(|m| m.get(&(k as i64 * STEP_MS)));
            assert_eq!(
                got,
                Some(&value(k, i).to_bits()),
                "batch {k} series {i} (acked {acked})"
            );
            total += 1;
        }
    }
    let stored: usize = all.values().map(|m| m.len()).sum();
    assert_eq!(stored, total, "samples present that no batch wrote");
    assert_eq!(total, max_batch as usize * PER_BATCH);
    db.close().unwrap();
    max_batch
}

/// The tests of this file run one at a time: a child forked for one test would otherwise inherit (until it
/// execs) the other test's open lock file and make that test's next child see the directory as locked.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn crash_loop(seed: u64, kills: usize, seg: usize, cp_every: u64) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut acked_total = 0;
    for round in 0..kills {
        let kill_after = Duration::from_millis(rng.gen_range(5..120));
        let run = run_child_and_kill(dir.path(), kill_after, seg, cp_every);
        assert!(run.started >= 1, "round {round}: child did not start");
        let newest = check(dir.path(), run.acked.max(acked_total));
        acked_total = acked_total.max(run.acked).max(newest);
    }
    assert!(
        acked_total > 20,
        "too little progress to mean anything: {acked_total} batches"
    );
}

#[test]
fn every_acknowledged_batch_survives_sigkill() {
    crash_loop(1, 60, 64 << 10, 0);
}

#[test]
fn sigkill_during_checkpointing_loses_nothing() {
    crash_loop(2, 60, 32 << 10, 10);
}
