//! The server's storage maintenance: [`ember::Db::start_compactor_with`] (head blocks, leveled
//! compaction, retention at start and then every interval) with each pass counted in the
//! `prometheus_tsdb_*` compaction metrics.
//!
//! Owns the link between passes and metrics, and the handle's life: the server drops it before closing
//! the database, so no block is half-written at a clean shutdown (a crash mid-compaction is safe anyway,
//! see docs/format/block.md). It does not own what compaction does (`ember::Db::compact`).

use std::sync::Arc;
use std::time::Duration;

use ember::Db;

use crate::http::AppState;

/// The running maintenance loop; [`Compactor::stop`] (or dropping it) ends it.
pub struct Compactor(ember::Compactor);

impl Compactor {
    /// Starts the loop: one pass now, then one every `interval` (Prometheus: 1 min).
    pub fn start(state: Arc<AppState>, db: &Db, interval: Duration) -> Compactor {
        Compactor(db.start_compactor_with(interval, move |outcome, took| {
            match outcome {
                Ok(stats) => state.record_compaction(stats, took),
                // Closed: shutting down, not a failure.
                Err(ember::Error::Closed) => {}
                Err(_) => state.record_compaction_failure(),
            }
        }))
    }

    /// Stops the loop, waiting for a pass in progress to finish.
    pub fn stop(self) {
        drop(self.0);
    }
}
