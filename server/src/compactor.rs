//! The server's storage maintenance loop: runs [`ember::Db::compact`] (head blocks, leveled compaction,
//! retention) at start and then at a fixed interval, on its own thread, and reports what it did in the
//! `prometheus_tsdb_*` compaction metrics.
//!
//! Owns the schedule and the thread's life (stopped and joined before the database closes, so no block
//! is half-written at shutdown; a crash mid-compaction is safe anyway, see docs/format/block.md). It does
//! not own what compaction does (`ember::Db::compact`).

use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

use ember::Db;

use crate::http::AppState;

/// A running maintenance loop. [`Compactor::stop`] ends it.
pub struct Compactor {
    stop: mpsc::Sender<()>,
    thread: JoinHandle<()>,
}

impl Compactor {
    /// Starts the loop: one pass now (a restart may find a head due for compaction), then one every
    /// `interval` (Prometheus: 1 min).
    pub fn start(state: Arc<AppState>, db: Db, interval: Duration) -> std::io::Result<Compactor> {
        let (stop, stopped) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("ember-compactor".into())
            .spawn(move || {
                loop {
                    run_once(&state, &db);
                    match stopped.recv_timeout(interval) {
                        Err(RecvTimeoutError::Timeout) => continue,
                        // Told to stop, or the handle is gone.
                        _ => break,
                    }
                }
            })?;
        Ok(Compactor { stop, thread })
    }

    /// Stops the loop, waiting for a pass in progress to finish.
    pub fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.thread.join();
    }
}

fn run_once(state: &AppState, db: &Db) {
    let started = std::time::Instant::now();
    match db.compact() {
        Ok(stats) => {
            let written = stats.head_blocks.len() + stats.compacted_blocks.len();
            if written > 0 || !stats.deleted_blocks.is_empty() {
                tracing::info!(
                    head_blocks = stats.head_blocks.len(),
                    compacted_blocks = stats.compacted_blocks.len(),
                    deleted_blocks = stats.deleted_blocks.len(),
                    took = ?started.elapsed(),
                    "compaction done"
                );
            }
            state.record_compaction(&stats, started.elapsed());
        }
        // Closed: shutting down; the loop is about to be stopped.
        Err(ember::Error::Closed) => {}
        Err(e) => {
            tracing::error!(error = %e, "compaction failed");
            state.record_compaction_failure();
        }
    }
    state.record_blocks(db.blocks().len());
}
