//! The `ember` binary. Run alone it will start the Prometheus-compatible server (not built yet: the HTTP
//! API, scraping and remote write come with later work); its subcommands hold the tools.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "ember",
    version,
    about = "Ember: a Prometheus-compatible time-series database"
)]
struct Cli {
    /// Base path for metrics storage (as Prometheus' --storage.tsdb.path).
    #[arg(long = "storage.tsdb.path", default_value = "data")]
    storage_path: PathBuf,
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Tools for a data directory.
    Tsdb {
        #[command(subcommand)]
        cmd: TsdbCmd,
    },
}

#[derive(Subcommand)]
enum TsdbCmd {
    /// Opens a data directory (replaying its WAL) and prints what it holds.
    Stats {
        /// The data directory.
        #[arg(default_value = "data")]
        dir: PathBuf,
        /// Cut the WAL at a corruption instead of refusing to open (keeps everything before it).
        #[arg(long)]
        repair: bool,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        None => {
            eprintln!(
                "ember: the HTTP server is not built yet; opening {} to check the storage instead",
                cli.storage_path.display()
            );
            stats(&cli.storage_path, false)
        }
        Some(Cmd::Tsdb {
            cmd: TsdbCmd::Stats { dir, repair },
        }) => stats(&dir, repair),
    }
}

fn stats(dir: &std::path::Path, repair: bool) -> anyhow::Result<()> {
    let opts = ember::Options {
        repair_wal: repair,
        ..Default::default()
    };
    let db = ember::Db::open(dir, opts).with_context(|| format!("opening {}", dir.display()))?;
    let s = db.stats();
    let r = db.replay_stats();
    println!("data dir:        {}", dir.display());
    println!("series:          {}", s.num_series);
    match s.time_range {
        Some((a, b)) => println!("time range (ms): {a} .. {b}"),
        None => println!("time range (ms): empty"),
    }
    println!("head memory:     {} bytes", s.memory.total());
    println!(
        "WAL replay:      checkpoint {:?}, {} segments, {} series records, {} samples, {} rejected, {} unknown-ref, {} skipped records",
        r.checkpoint,
        r.segments,
        r.series_records,
        r.samples,
        r.rejected_samples,
        r.unknown_ref_samples,
        r.skipped_records
    );
    if let Some((seg, off)) = r.repaired_at {
        println!("WAL was cut at segment {seg} offset {off}");
    }
    db.close()?;
    Ok(())
}
