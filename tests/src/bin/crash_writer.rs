//! Child process of the crash tests: opens the database, continues the deterministic workload after the
//! newest batch already stored, and prints `acked K` after each batch's commit returned. The parent kills
//! it with SIGKILL at a random moment and checks the reopened database against those lines.

use std::io::Write;

use ember::{Db, Options};
use ember_tests::{STEP_MS, batch_series, series_labels, value};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .expect("usage: crash_writer DIR SEGMENT_SIZE CHECKPOINT_EVERY");
    let segment_size: usize = args.next().map_or(Ok(64 << 10), |s| s.parse())?;
    let checkpoint_every: u64 = args.next().map_or(Ok(0), |s| s.parse())?;
    let opts = Options {
        wal_segment_size: segment_size,
        ..Options::default()
    };
    let db = Db::open(&dir, opts)?;
    let next = db
        .stats()
        .time_range
        .map_or(1, |(_, maxt)| (maxt / STEP_MS) as u64 + 1);
    let mut out = std::io::stdout().lock();
    writeln!(out, "start {next}")?;
    out.flush()?;
    let mut refs = std::collections::HashMap::new();
    for k in next.. {
        let mut app = db.appender();
        for i in batch_series(k) {
            let t = k as i64 * STEP_MS;
            match refs.get(&i) {
                Some(&r) => app.append_ref(r, t, value(k, i))?,
                None => {
                    let r = app.append(&series_labels(i), t, value(k, i))?;
                    refs.insert(i, r);
                }
            }
        }
        app.commit()?;
        writeln!(out, "acked {k}")?;
        out.flush()?;
        if checkpoint_every > 0 && k % checkpoint_every == 0 {
            // Keeps every sample (all are newer than t=0) but rolls, checkpoints and deletes segments, so
            // kills also land inside checkpointing.
            db.truncate_head(0)?;
            writeln!(out, "checkpointed {k}")?;
            out.flush()?;
        }
    }
    Ok(())
}
