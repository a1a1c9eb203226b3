//! Ember's counterpart of `promtool tsdb bench write`, on the same input and the same work: label sets
//! from a JSON-lines file, split into shards of 1,000 series; for every 100 scrapes one thread per shard
//! appends 100 scrapes, committing once per scrape, timestamps +30 s and values +1000 per scrape. It prints
//! the same two lines (`total samples`, `samples/sec`) so `bench/promtool.sh`-style parsing works, plus
//! the WAL sync policy used.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use ember::{Db, Labels, Options, SyncPolicy};

#[derive(Parser)]
struct Args {
    /// JSON-lines label sets (e.g. `loadgen series-json` output).
    series: PathBuf,
    #[arg(long, default_value_t = 10_000)]
    metrics: usize,
    #[arg(long, default_value_t = 1_500)]
    scrapes: usize,
    /// Data directory (emptied first).
    #[arg(long, default_value = "/tmp/ember-bench-write")]
    out: PathBuf,
    /// WAL sync: `never` (what Prometheus does on commit), `every-commit`, or milliseconds between fsyncs.
    #[arg(long, default_value = "never")]
    sync: String,
    /// After writing, reopen the directory and report WAL replay speed.
    #[arg(long)]
    replay: bool,
}

const TIME_DELTA: i64 = 30_000;

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let labels = ember_benches::read_series_json(&args.series, args.metrics)?;
    let sync = match args.sync.as_str() {
        "never" => SyncPolicy::Never,
        "every-commit" => SyncPolicy::EveryCommit,
        ms => SyncPolicy::Interval(Duration::from_millis(ms.parse()?)),
    };
    let _ = std::fs::remove_dir_all(&args.out);
    let db = Db::open(
        &args.out,
        Options {
            wal_sync: sync,
            ..Options::default()
        },
    )?;
    let total = AtomicU64::new(0);
    let scrapes = args.scrapes.div_ceil(100) * 100;
    let started = Instant::now();
    let mut shards: Vec<Shard> = labels.chunks(1000).map(Shard::new).collect();
    for i in (0..scrapes).step_by(100) {
        std::thread::scope(|s| {
            for shard in shards.iter_mut() {
                let (db, total) = (&db, &total);
                s.spawn(move || {
                    let n = shard
                        .ingest(db, 100, TIME_DELTA * i as i64)
                        .expect("append");
                    total.fetch_add(n, Ordering::Relaxed);
                });
            }
        });
    }
    let elapsed = started.elapsed();
    let total = total.load(Ordering::Relaxed);
    println!(" > total samples: {total}");
    println!(" > samples/sec: {}", total as f64 / elapsed.as_secs_f64());
    println!(
        " > wal sync: {sync:?}, series: {}, rss: {} MiB",
        labels.len(),
        ember_benches::rss_bytes() >> 20
    );
    db.close()?;
    if args.replay {
        // Reopen: replays the WAL just written. CPU time from getrusage gives the per-core rate.
        let cpu0 = ember_benches::cpu_seconds();
        let started = Instant::now();
        let db = Db::open(&args.out, Options::default())?;
        let wall = started.elapsed().as_secs_f64();
        let cpu = ember_benches::cpu_seconds() - cpu0;
        // Samples of completed chunks are attached from chunks_head/ rather than re-appended.
        let n = db.replay_stats().samples + db.replay_stats().samples_in_mmapped_chunks;
        println!(
            " > replay: {n} samples in {wall:.3} s wall, {cpu:.3} s CPU: {:.0} samples/s, {:.0} samples per CPU-second",
            n as f64 / wall,
            n as f64 / cpu
        );
        db.close()?;
    }
    Ok(())
}

struct Shard<'a> {
    labels: &'a [Labels],
    refs: Vec<Option<ember::SeriesRef>>,
    values: Vec<i64>,
}

impl<'a> Shard<'a> {
    fn new(labels: &'a [Labels]) -> Self {
        Shard {
            labels,
            refs: vec![None; labels.len()],
            values: vec![123_456_789; labels.len()],
        }
    }

    fn ingest(&mut self, db: &Db, scrapes: usize, base_t: i64) -> ember::Result<u64> {
        let mut ts = base_t;
        let mut total = 0;
        for _ in 0..scrapes {
            let mut app = db.appender();
            ts += TIME_DELTA;
            for (j, l) in self.labels.iter().enumerate() {
                self.values[j] += 1000;
                let v = self.values[j] as f64;
                match self.refs[j] {
                    Some(r) => app.append_ref(r, ts, v)?,
                    None => self.refs[j] = Some(app.append(l, ts, v)?),
                }
                total += 1;
            }
            app.commit()?;
        }
        Ok(total)
    }
}
