//! Measures resident memory per active series: opens a database, creates N series with 10 node-like
//! labels, appends K samples to each at a 15 s interval (a warm head), and reports the growth of the
//! process RSS divided by N, next to the head's own accounting by component.

use std::time::Instant;

use clap::Parser;
use ember::{Db, Options, SyncPolicy};

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 100_000)]
    series: usize,
    /// Samples per series (240 = 1 h at 15 s, the span the peers were measured at).
    #[arg(long, default_value_t = 240)]
    samples: usize,
    #[arg(long, default_value = "/tmp/ember-rss")]
    dir: std::path::PathBuf,
    /// Load this OpenMetrics export of the shared benchmark dataset (`loadgen openmetrics`) instead of the
    /// synthetic series; `--series`/`--samples` are then ignored.
    #[arg(long)]
    openmetrics: Option<std::path::PathBuf>,
    /// With --openmetrics: add constant labels until every series has this many (the 1 KiB target is for
    /// 10 labels; the dataset's series have 3 to 6).
    #[arg(long, default_value_t = 0)]
    pad_labels: usize,
    /// Keep completed chunks in RAM instead of memory-mapped head chunk files (the behaviour before
    /// `chunks_head/`), for a before/after comparison with one build.
    #[arg(long)]
    no_mmap_head_chunks: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let _ = std::fs::remove_dir_all(&args.dir);
    let db = Db::open(
        &args.dir,
        Options {
            wal_sync: SyncPolicy::Never,
            mmap_head_chunks: !args.no_mmap_head_chunks,
            ..Options::default()
        },
    )?;
    let before = ember_benches::rss_bytes();
    let started = Instant::now();
    if let Some(path) = &args.openmetrics {
        let (series, samples) = ember_benches::load_openmetrics(&db, path, args.pad_labels)?;
        return report(
            &db,
            before,
            started,
            series,
            samples as usize / series.max(1),
            &args.dir,
        );
    }
    let mut refs = Vec::with_capacity(args.series);
    let mut shapes: Vec<Shape> = (0..args.series).map(Shape::new).collect();
    let t0 = 1_700_000_000_000i64;
    let mut app = db.appender();
    for (i, shape) in shapes.iter().enumerate() {
        refs.push(app.append(&ember_benches::node_like_labels(i), t0, shape.v)?);
        if i % 10_000 == 9_999 {
            app.commit()?;
            app = db.appender();
        }
    }
    app.commit()?;
    for k in 1..args.samples {
        let mut app = db.appender();
        for (i, &r) in refs.iter().enumerate() {
            // As in the benchmark dataset: 10% of scrapes are 1 to 5 ms off the 15 s grid.
            let h = (i * 7 + k * 13) % 50;
            let jitter = if h < 5 { h as i64 + 1 } else { 0 };
            app.append_ref(r, t0 + k as i64 * 15_000 + jitter, shapes[i].step(k))?;
            if i % 10_000 == 9_999 {
                app.commit()?;
                app = db.appender();
            }
        }
        app.commit()?;
    }
    report(&db, before, started, args.series, args.samples, &args.dir)
}

fn report(
    db: &Db,
    before: u64,
    started: Instant,
    series: usize,
    samples: usize,
    dir: &std::path::Path,
) -> anyhow::Result<()> {
    let after = ember_benches::rss_bytes();
    let stats = db.stats();
    let m = stats.memory;
    let n = series as f64;
    println!(
        "{{\"series\":{},\"samples_per_series\":{},\"rss_before\":{},\"rss_after\":{},\"rss_per_series\":{:.0},\
         \"head_bytes_per_series\":{:.0},\"symbols\":{:.0},\"postings\":{:.0},\"series_maps\":{:.0},\"series_structs\":{:.0},\
         \"chunks\":{:.0},\"ingest_s\":{:.2}}}",
        series,
        samples,
        before,
        after,
        (after.saturating_sub(before)) as f64 / n,
        m.total() as f64 / n,
        m.symbols as f64 / n,
        m.postings as f64 / n,
        m.series_maps as f64 / n,
        m.series as f64 / n,
        m.chunks as f64 / n,
        started.elapsed().as_secs_f64()
    );
    db.clone().close()?;
    let _ = std::fs::remove_dir_all(dir);
    Ok(())
}

/// Value shapes in the proportions of the benchmark dataset (about half its series are constant): constant;
/// counters rising by a varying integer amount per scrape; gauges random-walking at 2 decimals; byte
/// gauges random-walking in multiples of 4096.
struct Shape {
    kind: usize,
    v: f64,
    seed: u64,
}

impl Shape {
    fn new(i: usize) -> Self {
        let kind = i % 8;
        let v = match kind {
            0..=3 => 1.0,
            4 | 5 => (i * 1000) as f64,
            6 => 42.17,
            _ => (1 << 30) as f64,
        };
        Shape {
            kind,
            v,
            seed: i as u64 * 0x9E37_79B9_7F4A_7C15 + 1,
        }
    }

    fn step(&mut self, _k: usize) -> f64 {
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let r = self.seed % 100;
        match self.kind {
            0..=3 => {}
            4 | 5 => self.v += (100 + r) as f64,
            6 => self.v = ((self.v * 100.0).round() + r as f64 - 50.0) / 100.0,
            _ => self.v += 4096.0 * (r as f64 - 50.0),
        }
        self.v
    }
}
