//! The evaluator behind the promqltest runner's [`TestEngine`] seam: each script's data goes into a
//! fresh temporary [`Db`], and its queries run through [`Engine`] with the options Prometheus'
//! test engine uses.
//!
//! Owns the temporary database's life (created on `clear`, removed on the next `clear` or on drop),
//! how loaded series are appended (all of a load in time order, so the head's out-of-bounds window
//! never refuses a series that starts earlier than another one ended), and the engine options of
//! Prometheus' `NewTestEngine` (5 m lookback, 10 000 max samples, 1 m default subquery step,
//! delayed `__name__` removal). It does not own script parsing or result comparison
//! (`crate::promqltest`).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use ember::{Db, Options};

use super::{Engine, QueryOpts, QueryResult};
use crate::promqltest::{QueryOutcome, TestEngine};
use crate::value::Series;

/// Prometheus' `promqltest.DefaultMaxSamplesPerQuery`.
const TEST_MAX_SAMPLES: usize = 10_000;

/// The head refuses samples more than half a block range behind its newest one; scripts load
/// hours or days of data in one go and may load an earlier series after a later one, so the test
/// database uses a block range far beyond any script's span.
const TEST_BLOCK_RANGE_MS: i64 = 100 * 365 * 24 * 3600 * 1000;

/// A [`TestEngine`] over a temporary Ember database.
pub struct EmberTestEngine {
    engine: Engine,
    db: Option<Db>,
    dir: Option<PathBuf>,
}

impl EmberTestEngine {
    /// With the options of Prometheus' test engine.
    pub fn new() -> EmberTestEngine {
        EmberTestEngine::with_opts(QueryOpts {
            max_samples: TEST_MAX_SAMPLES,
            delayed_name_removal: true,
            ..QueryOpts::default()
        })
    }

    pub fn with_opts(opts: QueryOpts) -> EmberTestEngine {
        EmberTestEngine {
            engine: Engine::new(opts),
            db: None,
            dir: None,
        }
    }

    fn close(&mut self) {
        if let Some(db) = self.db.take() {
            let _ = db.close();
        }
        if let Some(dir) = self.dir.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }

    fn db(&mut self) -> Result<&Db, String> {
        if self.db.is_none() {
            self.clear()?;
        }
        Ok(self.db.as_ref().expect("opened by clear"))
    }
}

impl Default for EmberTestEngine {
    fn default() -> Self {
        EmberTestEngine::new()
    }
}

impl Drop for EmberTestEngine {
    fn drop(&mut self) {
        self.close();
    }
}

/// A directory name no other test engine (in this or another process) uses.
fn fresh_dir() -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    std::env::temp_dir().join(format!(
        "ember-promqltest-{}-{n}-{nanos}",
        std::process::id()
    ))
}

fn outcome(r: QueryResult) -> QueryOutcome {
    QueryOutcome {
        value: r.value,
        warnings: r.warnings,
        infos: r.infos,
    }
}

impl TestEngine for EmberTestEngine {
    fn clear(&mut self) -> Result<(), String> {
        self.close();
        let dir = fresh_dir();
        let opts = Options {
            block_range_ms: TEST_BLOCK_RANGE_MS,
            // Scripts never crash; skipping the fsync keeps loads fast.
            wal_sync: ember::SyncPolicy::Never,
            ..Options::default()
        };
        let db = Db::open(&dir, opts).map_err(|e| format!("opening test database: {e}"))?;
        self.db = Some(db);
        self.dir = Some(dir);
        Ok(())
    }

    fn load(&mut self, series: &[Series]) -> Result<(), String> {
        let db = self.db()?;
        let mut all: Vec<(i64, usize, f64)> = series
            .iter()
            .enumerate()
            .flat_map(|(i, s)| s.samples.iter().map(move |&(t, v)| (t, i, v)))
            .collect();
        // Stable: a series' own samples keep their order at equal times.
        all.sort_by_key(|x| x.0);
        let mut app = db.appender();
        let mut refs = vec![None; series.len()];
        for (t, i, v) in all {
            match refs[i] {
                Some(r) => app.append_ref(r, t, v),
                None => app
                    .append(&series[i].labels, t, v)
                    .map(|r| refs[i] = Some(r)),
            }
            .map_err(|e| format!("loading {}: {e}", series[i].labels))?;
        }
        app.commit().map_err(|e| format!("committing load: {e}"))
    }

    fn instant(&mut self, expr: &str, t_ms: i64) -> Result<QueryOutcome, String> {
        let db = self.db()?.clone();
        self.engine
            .instant(&db, expr, t_ms)
            .map(outcome)
            .map_err(|e| e.to_string())
    }

    fn range(
        &mut self,
        expr: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> Result<QueryOutcome, String> {
        let db = self.db()?.clone();
        self.engine
            .range(&db, expr, start_ms, end_ms, step_ms)
            .map(outcome)
            .map_err(|e| e.to_string())
    }
}
