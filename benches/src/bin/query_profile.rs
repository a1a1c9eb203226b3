//! Runs one PromQL query repeatedly against a copy of a data directory, in process, so the evaluation
//! can be profiled (`perf record`, `valgrind --tool=callgrind`) without HTTP or other queries around it.
//! Prints the median wall time and the process CPU time per run.

use std::time::Instant;

use clap::Parser;
use ember::{Db, Options};
use ember_query::engine::{Engine, QueryOpts};

// The server's allocator and settings, so a profile shows the allocation costs the server has.
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[allow(non_upper_case_globals)]
#[unsafe(export_name = "_rjem_malloc_conf")]
pub static malloc_conf: &[u8; 47] = b"narenas:2,dirty_decay_ms:1000,muzzy_decay_ms:0\0";

#[derive(Parser)]
struct Args {
    /// A data directory (opened read-write: pass a copy of a live server's).
    #[arg(long)]
    dir: std::path::PathBuf,
    /// The PromQL expression.
    #[arg(long)]
    query: String,
    /// Evaluation time of an instant query, or end of a range query (ms since the epoch); default: the
    /// newest sample.
    #[arg(long)]
    end: Option<i64>,
    /// Range query over this many ms before `end` (0: instant query).
    #[arg(long, default_value_t = 0)]
    range_ms: i64,
    #[arg(long, default_value_t = 60_000)]
    step_ms: i64,
    #[arg(long, default_value_t = 20)]
    repeat: usize,
    /// Treat `query` as a series selector and list the matching label sets over the range, as
    /// `/api/v1/series` does, instead of evaluating it.
    #[arg(long)]
    series: bool,
    /// Bytes of the decoded-chunk cache (0 disables it, so every run decodes; default as `Options`).
    #[arg(long)]
    decoded_cache_bytes: Option<usize>,
}

/// One evaluation; a function of its own so `valgrind --tool=callgrind --collect-atstart=no
/// --toggle-collect='query_profile::run_once'` counts the query and not the data directory's replay.
#[inline(never)]
fn run_once(engine: &Engine, db: &Db, a: &Args, end: i64) -> anyhow::Result<()> {
    if a.series {
        let matchers = ember_query::parser::parse_metric_selector(&a.query)?;
        std::hint::black_box(db.querier(end - a.range_ms, end).select_labels(&matchers));
    } else if a.range_ms > 0 {
        std::hint::black_box(engine.range(db, &a.query, end - a.range_ms, end, a.step_ms)?);
    } else {
        std::hint::black_box(engine.instant(db, &a.query, end)?);
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let mut opts = Options::default();
    if let Some(b) = a.decoded_cache_bytes {
        opts.decoded_chunk_cache_bytes = b;
    }
    let db = Db::open(&a.dir, opts)?;
    let end = match a.end {
        Some(e) => e,
        None => db.stats().time_range.map_or(0, |(_, max)| max),
    };
    let engine = Engine::new(QueryOpts::default());
    let mut walls = Vec::with_capacity(a.repeat);
    let cpu0 = ember_benches::cpu_seconds();
    for _ in 0..a.repeat {
        let t = Instant::now();
        run_once(&engine, &db, &a, end)?;
        walls.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let cpu = (ember_benches::cpu_seconds() - cpu0) * 1e3 / a.repeat as f64;
    walls.sort_by(f64::total_cmp);
    println!(
        "median {:.3} ms, min {:.3} ms, cpu {:.3} ms/run",
        walls[walls.len() / 2],
        walls[0],
        cpu
    );
    db.close()?;
    Ok(())
}
