//! Restart time of a data directory holding a large head: writes `--series` node_exporter-like series
//! for `--minutes` at `--interval-s` through `ember::Db` appends in scrape order (every series at t, then
//! every series at t + interval, …; one commit per target of `--commit-every` series; WAL sync `never`,
//! as Prometheus), closes the database, then reopens it `--reopens` times and prints for each open the
//! wall seconds, CPU seconds, samples replayed, series, samples per CPU-second and RSS after the open.
//!
//! Each reopen runs in a fresh child process (this binary with `--open-only`) so RSS and getrusage
//! describe that open alone, not what earlier opens left in the allocator.
//! It measures; it does not judge the figures against a target.

use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;
use ember::{Db, Options, SyncPolicy};

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 1_000_000)]
    series: usize,
    #[arg(long, default_value_t = 120)]
    minutes: u64,
    #[arg(long, default_value_t = 15)]
    interval_s: u64,
    /// Series per commit: one scrape target's worth (node_exporter exposes about a thousand).
    #[arg(long, default_value_t = 1_000)]
    commit_every: usize,
    /// Data directory (emptied first; deleted at the end unless `--keep`).
    #[arg(long, default_value = "/tmp/ember-replay-1m")]
    out: PathBuf,
    /// How many times to reopen and time the replay.
    #[arg(long, default_value_t = 3)]
    reopens: usize,
    /// Keep the data directory at the end.
    #[arg(long)]
    keep: bool,
    /// Only open `--out` once and print the replay figures (the child mode the reopens use).
    #[arg(long)]
    open_only: bool,
    /// Keep completed chunks in RAM and replay everything from the WAL (no `chunks_head/`), as before
    /// memory-mapped head chunks; applies to writing and to every reopen.
    #[arg(long)]
    no_mmap_head_chunks: bool,
}

/// Block-aligned start (a multiple of 2 h), so a 2 h run fills exactly one head chunk range.
const START_MS: i64 = 1_764_547_200_000;

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.open_only {
        return open_once(&args);
    }
    write(&args)?;
    let exe = std::env::current_exe()?;
    for k in 1..=args.reopens {
        let mut cmd = std::process::Command::new(&exe);
        cmd.arg("--open-only").arg("--out").arg(&args.out);
        if args.no_mmap_head_chunks {
            cmd.arg("--no-mmap-head-chunks");
        }
        let out = cmd.output()?;
        if !out.status.success() {
            anyhow::bail!(
                "reopen {k} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        print!("reopen {k}: {}", String::from_utf8_lossy(&out.stdout));
    }
    if !args.keep {
        std::fs::remove_dir_all(&args.out)?;
    }
    Ok(())
}

fn write(args: &Args) -> anyhow::Result<()> {
    let _ = std::fs::remove_dir_all(&args.out);
    let db = Db::open(
        &args.out,
        Options {
            wal_sync: SyncPolicy::Never,
            mmap_head_chunks: !args.no_mmap_head_chunks,
            ..Options::default()
        },
    )?;
    let labels: Vec<_> = (0..args.series)
        .map(ember_benches::node_like_labels)
        .collect();
    let mut refs: Vec<Option<ember::SeriesRef>> = vec![None; args.series];
    // Counters for most series, gauges for every fifth, so chunks are neither all-constant nor all-random.
    let mut values: Vec<f64> = (0..args.series).map(|i| (i % 1000) as f64).collect();
    let scrapes = args.minutes * 60 / args.interval_s;
    let interval = (args.interval_s * 1000) as i64;
    let started = Instant::now();
    let cpu0 = ember_benches::cpu_seconds();
    let mut total = 0u64;
    for s in 0..scrapes {
        // Scrapes of one target are not exactly `interval` apart; a few ms of jitter is what timestamps
        // from real scrapes look like and what the chunk encoder has to cope with.
        let t0 = START_MS + s as i64 * interval;
        for (c, chunk) in labels.chunks(args.commit_every).enumerate() {
            let t = t0 + ((s as usize * 7 + c * 13) % 5) as i64;
            let base = c * args.commit_every;
            let mut app = db.appender();
            for (j, l) in chunk.iter().enumerate() {
                let i = base + j;
                values[i] = if i.is_multiple_of(5) {
                    ((s as usize + i) % 97) as f64 * 0.25
                } else {
                    values[i] + ((s as usize * 31 + i) % 17) as f64
                };
                match refs[i] {
                    Some(r) => app.append_ref(r, t, values[i])?,
                    None => refs[i] = Some(app.append(l, t, values[i])?),
                }
                total += 1;
            }
            app.commit()?;
        }
        if (s + 1).is_multiple_of(40) {
            eprintln!(
                "  wrote {} of {scrapes} scrapes, {total} samples, {:.0} s",
                s + 1,
                started.elapsed().as_secs_f64()
            );
        }
    }
    let wall = started.elapsed().as_secs_f64();
    let cpu = ember_benches::cpu_seconds() - cpu0;
    drop(labels);
    let rss = ember_benches::rss_bytes();
    db.close()?;
    let wal_bytes = dir_bytes(&args.out.join("wal"))?;
    let chunk_file_bytes = dir_bytes(&args.out.join("chunks_head")).unwrap_or(0);
    println!(
        "write: {} series, {total} samples in {wall:.1} s wall, {cpu:.1} s CPU ({:.2} M samples/s), rss {} MiB, WAL {:.2} GiB ({:.2} B/sample), chunks_head {:.2} GiB",
        args.series,
        total as f64 / wall / 1e6,
        rss >> 20,
        wal_bytes as f64 / (1u64 << 30) as f64,
        wal_bytes as f64 / total as f64,
        chunk_file_bytes as f64 / (1u64 << 30) as f64
    );
    Ok(())
}

fn open_once(args: &Args) -> anyhow::Result<()> {
    let rss0 = ember_benches::rss_bytes();
    let cpu0 = ember_benches::cpu_seconds();
    let started = Instant::now();
    let db = Db::open(
        &args.out,
        Options {
            mmap_head_chunks: !args.no_mmap_head_chunks,
            ..Options::default()
        },
    )?;
    let wall = started.elapsed().as_secs_f64();
    let cpu = ember_benches::cpu_seconds() - cpu0;
    let rss = ember_benches::rss_bytes();
    let st = db.replay_stats().clone();
    let series = db.stats().num_series;
    // Every sample of the head is restored: appended from the WAL, or (its WAL record still read and
    // skipped) held by a chunk attached from chunks_head/.
    let restored = st.samples + st.samples_in_mmapped_chunks;
    println!(
        "{wall:.2} s wall, {cpu:.2} s CPU, {restored} samples restored ({} appended from the WAL, {} in {} mapped chunks), {series} series, {:.2} M samples per CPU-second ({:.2} M/s wall), rss after open {} MiB (+{} MiB), head chunk bytes in RAM {} MiB, {} segments, rejected {}, unknown ref {}",
        st.samples,
        st.samples_in_mmapped_chunks,
        st.mmapped_chunks,
        restored as f64 / cpu / 1e6,
        restored as f64 / wall / 1e6,
        rss >> 20,
        (rss - rss0) >> 20,
        db.stats().memory.chunks >> 20,
        st.segments,
        st.rejected_samples,
        st.unknown_ref_samples
    );
    db.close()?;
    Ok(())
}

fn dir_bytes(dir: &std::path::Path) -> std::io::Result<u64> {
    let mut n = 0;
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let m = e.metadata()?;
        n += if m.is_dir() {
            dir_bytes(&e.path())?
        } else {
            m.len()
        };
    }
    Ok(n)
}
