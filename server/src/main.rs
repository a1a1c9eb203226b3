//! The `ember` binary. Alone it runs the server: binds the listen address at once (answering `/-/healthy`,
//! and `/-/ready` with 503 while the WAL replays), opens the data directory, then serves until SIGTERM or
//! SIGINT, when it stops taking requests, flushes and closes the WAL. Its subcommands hold the tools.
//!
//! Built so far: health/readiness, the remote-write receiver (1.0 and 2.0), remote read, `/metrics`,
//! Prometheus' query API (`--query.*` flags), scraping the targets of a `prometheus.yml`
//! (`--config.file`; without it, an embedded configuration scraping this server), reloaded on SIGHUP
//! or `POST /-/reload` with `--web.enable-lifecycle`, and blocks with compaction and retention
//! (`--storage.tsdb.*` flags; the loop is `ember_server::compactor`), and the TSDB admin API (deletion,
//! tombstone cleaning, snapshots) with `--web.enable-admin-api`.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use ember_scrape::ScrapePools;
use ember_server::compactor::Compactor;
use ember_server::config_reload::{Reloader, Source, reload_on_sighup};
use ember_server::http::{AppState, router};
use ember_server::query_api::QueryConfig;
use ember_server::remote_write::Limits;

mod promql_test;

#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's settings, read at its start-up: hand freed pages back to the kernel within a second
/// (its default is ten) so resident memory follows what the head and queries hold, and keep few
/// arenas because two cores cannot use more.
#[allow(non_upper_case_globals)]
#[unsafe(export_name = "_rjem_malloc_conf")]
pub static malloc_conf: &[u8; 47] = b"narenas:2,dirty_decay_ms:1000,muzzy_decay_ms:0\0";

#[derive(Parser)]
#[command(
    name = "ember",
    version,
    about = "Ember: a Prometheus-compatible time-series database"
)]
struct Cli {
    /// Address to listen on for the HTTP API (as Prometheus' --web.listen-address; loopback by default).
    #[arg(long = "web.listen-address", default_value = "127.0.0.1:9090")]
    listen_address: SocketAddr,
    /// Base path for metrics storage (as Prometheus' --storage.tsdb.path).
    #[arg(long = "storage.tsdb.path", default_value = "data")]
    storage_path: PathBuf,
    /// Accept remote-write requests at /api/v1/write (as Prometheus' flag of the same name).
    #[arg(long = "web.enable-remote-write-receiver")]
    remote_write_receiver: bool,
    /// Largest remote-write body accepted, in bytes (compressed).
    #[arg(long = "web.remote-write.max-body-bytes", default_value_t = 32 << 20)]
    max_body_bytes: usize,
    /// Largest remote-write body accepted after snappy decompression, in bytes.
    #[arg(long = "web.remote-write.max-decompressed-bytes", default_value_t = 256 << 20)]
    max_decompressed_bytes: usize,
    /// Most series the head may hold; samples that would create more are refused (remote write answers
    /// 400 naming the limit) while existing series keep ingesting. 0 means no limit.
    #[arg(long = "storage.tsdb.head-series-limit", default_value_t = 0)]
    head_series_limit: u64,
    /// When the WAL is fsynced. `every-commit` (default): a write is acknowledged only after its samples
    /// are fsynced (concurrent requests share one fsync), so acknowledged data survives a power loss.
    /// A duration (`1s`, `100ms`): fsync in the background at that interval; an acknowledged write is
    /// already in the OS page cache, so it survives a crash or kill of the process but a power loss can
    /// lose the last interval. `never`: fsync only when a segment is completed and on shutdown
    /// (what Prometheus does); survives a process kill, not a power loss.
    #[arg(long = "storage.tsdb.wal-sync", default_value = "every-commit", value_parser = parse_wal_sync)]
    wal_sync: ember::SyncPolicy,
    /// Most time a query may take, waiting for a slot included (a Prometheus duration: 2m, 30s).
    #[arg(long = "query.timeout", default_value = "2m", value_parser = parse_flag_duration)]
    query_timeout: std::time::Duration,
    /// Most queries evaluated at once; further queries wait for a slot.
    #[arg(long = "query.max-concurrency", default_value_t = 20)]
    query_max_concurrency: usize,
    /// Most samples a single query may hold in memory.
    #[arg(long = "query.max-samples", default_value_t = 50_000_000)]
    query_max_samples: usize,
    /// Bytes of samples a single query may hold in memory (16 per sample point; e.g. 512MiB, 1GB);
    /// a query that would exceed it fails with an execution error while others go on. 0: no budget.
    #[arg(long = "query.max-memory", default_value = "0", value_parser = parse_bytes)]
    query_max_memory: usize,
    /// How far back an instant selector looks for a sample.
    #[arg(long = "query.lookback-delta", default_value = "5m", value_parser = parse_flag_duration)]
    query_lookback_delta: std::time::Duration,
    /// How long to keep samples (as Prometheus' flag: `15d`, `12h`, `1y`): blocks whose newest sample is
    /// older than this behind the newest block are deleted. Unset: 15d, unless a size limit is set.
    #[arg(long = "storage.tsdb.retention.time", value_parser = parse_flag_duration)]
    retention_time: Option<std::time::Duration>,
    /// Most bytes blocks and WAL may take (`512MB`, `10GB`); the oldest blocks are deleted beyond it.
    /// 0: no size limit.
    #[arg(long = "storage.tsdb.retention.size", default_value = "0", value_parser = parse_bytes)]
    retention_size: usize,
    /// Ember only: bytes of decoded block chunks kept for later queries (`64MB`, `0` disables).
    /// Repeated range queries over blocks, such as dashboard refreshes, then copy samples instead of
    /// decoding them again. Filled only by queries; see `ember_decoded_chunk_cache_*` metrics.
    #[arg(long = "storage.tsdb.decoded-chunk-cache-size", default_value = "64MB", value_parser = parse_bytes)]
    decoded_chunk_cache_size: usize,
    /// Time range of the blocks cut from the head (Prometheus' hidden flag of the same name).
    #[arg(long = "storage.tsdb.min-block-duration", default_value = "2h", value_parser = parse_flag_duration)]
    min_block_duration: std::time::Duration,
    /// Largest block compaction builds. Unset: a tenth of the retention time, at most 31d.
    #[arg(long = "storage.tsdb.max-block-duration", value_parser = parse_flag_duration)]
    max_block_duration: Option<std::time::Duration>,
    /// How often compaction and retention run (Prometheus: every minute).
    #[arg(long = "storage.tsdb.compaction-interval", default_value = "1m", value_parser = parse_flag_duration, hide = true)]
    compaction_interval: std::time::Duration,
    /// Prometheus' web configuration file: TLS, basic auth, response headers (docs/format/web-config.md).
    #[arg(long = "web.config.file")]
    web_config_file: Option<PathBuf>,
    /// Prometheus configuration file (docs/format/prometheus-config.md). Without it Ember scrapes its
    /// own /metrics every 15 s as job "ember".
    #[arg(long = "config.file")]
    config_file: Option<PathBuf>,
    /// Enable shutdown and reload over HTTP (POST or PUT /-/quit and /-/reload).
    #[arg(long = "web.enable-lifecycle")]
    enable_lifecycle: bool,
    /// Enable the TSDB admin API (POST or PUT /api/v1/admin/tsdb/delete_series, clean_tombstones,
    /// snapshot).
    #[arg(long = "web.enable-admin-api")]
    enable_admin_api: bool,
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
    /// Runs promqltest-format scripts against Ember's PromQL engine; prints each failing eval and
    /// `N passed, N failed, N skipped`. Exit status 1 if any eval failed, 2 if a file is unreadable.
    PromqlTest {
        /// Script files (Prometheus' promqltest format).
        #[arg(required = true)]
        files: Vec<PathBuf>,
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
    // promql-test opens a database per script; its replay logs would bury the report.
    let default_filter = match cli.cmd {
        Some(Cmd::PromqlTest { .. }) => "warn",
        _ => "info",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| default_filter.into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match cli.cmd {
        Some(Cmd::Tsdb {
            cmd: TsdbCmd::Stats { dir, repair },
        }) => stats(&dir, repair),
        Some(Cmd::PromqlTest { files }) => {
            let code = promql_test::run(&files, &mut std::io::stdout(), &mut std::io::stderr());
            std::process::exit(code.into())
        }
        None => serve(cli),
    }
}

fn serve(cli: Cli) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        // Read before binding: an invalid file stops start-up with its error, as in Prometheus.
        let web = match &cli.web_config_file {
            Some(p) => Some(ember_server::web_config::WebConfigFile::open(p)?),
            None => None,
        };
        // As Prometheus: 15 d unless a size limit alone is set; an explicit 0 disables time retention.
        let retention_ms = match cli.retention_time {
            Some(d) => d.as_millis() as i64,
            None if cli.retention_size > 0 => 0,
            None => 15 * 24 * 3600 * 1000,
        };
        let limits = Limits {
            max_body_bytes: cli.max_body_bytes,
            max_decompressed_bytes: cli.max_decompressed_bytes,
        };
        let flags = vec![
            (
                "web.listen-address".to_string(),
                cli.listen_address.to_string(),
            ),
            (
                "storage.tsdb.path".to_string(),
                cli.storage_path.display().to_string(),
            ),
            (
                "web.enable-remote-write-receiver".to_string(),
                cli.remote_write_receiver.to_string(),
            ),
            (
                "storage.tsdb.head-series-limit".to_string(),
                cli.head_series_limit.to_string(),
            ),
            (
                "storage.tsdb.wal-sync".to_string(),
                wal_sync_flag(cli.wal_sync),
            ),
            (
                "web.remote-write.max-body-bytes".to_string(),
                cli.max_body_bytes.to_string(),
            ),
            (
                "web.remote-write.max-decompressed-bytes".to_string(),
                cli.max_decompressed_bytes.to_string(),
            ),
            (
                "query.timeout".to_string(),
                flag_duration(cli.query_timeout),
            ),
            (
                "query.max-concurrency".to_string(),
                cli.query_max_concurrency.to_string(),
            ),
            (
                "query.max-samples".to_string(),
                cli.query_max_samples.to_string(),
            ),
            (
                "query.max-memory".to_string(),
                cli.query_max_memory.to_string(),
            ),
            (
                "query.lookback-delta".to_string(),
                flag_duration(cli.query_lookback_delta),
            ),
            (
                "storage.tsdb.retention.time".to_string(),
                flag_duration(std::time::Duration::from_millis(retention_ms as u64)),
            ),
            (
                "storage.tsdb.retention.size".to_string(),
                cli.retention_size.to_string(),
            ),
            (
                "storage.tsdb.min-block-duration".to_string(),
                flag_duration(cli.min_block_duration),
            ),
            (
                "config.file".to_string(),
                cli.config_file
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
            ),
            (
                "web.enable-lifecycle".to_string(),
                cli.enable_lifecycle.to_string(),
            ),
            (
                "web.enable-admin-api".to_string(),
                cli.enable_admin_api.to_string(),
            ),
            (
                "web.config.file".to_string(),
                cli.web_config_file
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
            ),
        ];
        let query = QueryConfig {
            timeout: cli.query_timeout,
            max_samples: cli.query_max_samples,
            max_memory_bytes: cli.query_max_memory,
            lookback_delta: cli.query_lookback_delta,
            max_concurrency: cli.query_max_concurrency,
        };
        let state = AppState::with_query_config(cli.remote_write_receiver, limits, flags, &query);
        state.set_admin_api(cli.enable_admin_api);
        let listener = tokio::net::TcpListener::bind(cli.listen_address)
            .await
            .with_context(|| format!("binding {}", cli.listen_address))?;
        // The bound address, not the requested one: with port 0 the kernel picks, and tests read it here.
        let bound = listener.local_addr()?;
        // Read before serving: an invalid configuration stops start-up with its error, as in Prometheus.
        let source = match &cli.config_file {
            Some(p) => Source::File(p.clone()),
            None => Source::Embedded {
                address: self_scrape_address(bound),
            },
        };
        let reloader = Reloader::load(source, cli.enable_lifecycle).map_err(anyhow::Error::msg)?;
        state.set_reloader(reloader.clone());
        let hup = reload_on_sighup(reloader.clone());
        tracing::info!(address = %bound, "listening");
        let quit = reloader.clone();
        let server = tokio::spawn(ember_server::web_config::serve(
            listener,
            router(state.clone()),
            web,
            async move {
                tokio::select! {
                    _ = shutdown_signal() => {}
                    _ = quit.quit.notified() => tracing::info!("/-/quit: shutting down"),
                }
            },
        ));
        let dir = cli.storage_path.clone();
        let opts = ember::Options {
            head_series_limit: (cli.head_series_limit > 0).then_some(cli.head_series_limit),
            wal_sync: cli.wal_sync,
            retention_ms,
            retention_bytes: (cli.retention_size > 0).then_some(cli.retention_size as u64),
            block_range_ms: (cli.min_block_duration.as_millis() as i64).max(1),
            max_block_duration_ms: cli.max_block_duration.map(|d| d.as_millis() as i64),
            decoded_chunk_cache_bytes: cli.decoded_chunk_cache_size,
            ..Default::default()
        };
        let db = tokio::task::spawn_blocking(move || ember::Db::open(&dir, opts))
            .await?
            .with_context(|| format!("opening {}", cli.storage_path.display()))?;
        tracing::info!(stats = ?db.replay_stats(), blocks = db.blocks().len(), "storage ready");
        let pools = ScrapePools::new(db.clone());
        state.set_db(db.clone());
        let compactor = Compactor::start(state.clone(), &db, cli.compaction_interval);
        reloader
            .attach(pools.clone())
            .await
            .map_err(anyhow::Error::msg)
            .context("starting scrape pools")?;
        server.await??;
        hup.abort();
        tracing::info!("shutting down: stopping scrapes");
        pools.stop().await;
        tracing::info!("shutting down: finishing compaction, closing the WAL");
        compactor.stop();
        if let Some(db) = state.db() {
            db.clone().close()?;
        }
        Ok(())
    })
}

/// The address at which this server scrapes itself: an unspecified listen address (`0.0.0.0`, `::`)
/// is reached over loopback.
fn self_scrape_address(bound: SocketAddr) -> String {
    if bound.ip().is_unspecified() {
        format!("localhost:{}", bound.port())
    } else {
        bound.to_string()
    }
}

/// A duration flag in Prometheus' syntax (`2m`, `1h30m`).
fn parse_flag_duration(s: &str) -> Result<std::time::Duration, String> {
    let ns = ember_server::params::parse_model_duration(s)?;
    Ok(std::time::Duration::from_nanos(ns as u64))
}

fn parse_wal_sync(s: &str) -> Result<ember::SyncPolicy, String> {
    match s {
        "every-commit" => Ok(ember::SyncPolicy::EveryCommit),
        "never" => Ok(ember::SyncPolicy::Never),
        d => match parse_flag_duration(d) {
            Ok(d) if !d.is_zero() => Ok(ember::SyncPolicy::Interval(d)),
            _ => Err(format!(
                "{d:?} is not every-commit, never or a non-zero duration such as 1s"
            )),
        },
    }
}

fn wal_sync_flag(p: ember::SyncPolicy) -> String {
    match p {
        ember::SyncPolicy::EveryCommit => "every-commit".into(),
        ember::SyncPolicy::Never => "never".into(),
        ember::SyncPolicy::Interval(d) => flag_duration(d),
    }
}

/// A duration as Prometheus' `model.Duration` prints it (`2m`, `1h30m`), for `/api/v1/status/flags`.
fn flag_duration(d: std::time::Duration) -> String {
    let mut ms = d.as_millis() as u64;
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, mult) in [
        ("y", 365 * 86_400_000),
        ("w", 7 * 86_400_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
        ("ms", 1),
    ] {
        // Years and weeks only when exact, as Prometheus' model.Duration prints them.
        if (unit == "y" || unit == "w") && !ms.is_multiple_of(mult) {
            continue;
        }
        if ms >= mult {
            out.push_str(&format!("{}{unit}", ms / mult));
            ms %= mult;
        }
    }
    out
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing the SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
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
    println!(
        "head chunks:     {} files, {} chunks mapped ({} WAL samples covered by them), {} left out as truncated",
        r.head_chunks.files,
        r.mmapped_chunks,
        r.samples_in_mmapped_chunks,
        r.mmapped_chunks_truncated
    );
    if let Some((path, off, reason)) = &r.head_chunks.damage {
        println!(
            "head chunk file {} damaged at byte {off} ({reason}); cut there, the WAL replayed the rest",
            path.display()
        );
    }
    db.close()?;
    Ok(())
}

/// A byte size as Prometheus writes them (`512MB`, `1GiB`, `0`): B, KB, MB, GB, TB in powers of
/// 1024 as Prometheus' `units.Base2Bytes` reads them, the `iB` forms alike; a bare number is bytes.
fn parse_bytes(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(digits);
    let n: usize = num
        .parse()
        .map_err(|_| format!("invalid size {s:?}: expected a number and a unit such as 512MB"))?;
    let mult: usize = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "KB" | "KIB" => 1 << 10,
        "MB" | "MIB" => 1 << 20,
        "GB" | "GIB" => 1 << 30,
        "TB" | "TIB" => 1 << 40,
        _ => return Err(format!("invalid size {s:?}: unknown unit {unit:?}")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("invalid size {s:?}: too large"))
}

#[cfg(test)]
mod tests {
    use super::parse_bytes;

    #[test]
    fn byte_sizes_read_as_prometheus_writes_them() {
        assert_eq!(parse_bytes("0"), Ok(0));
        assert_eq!(parse_bytes("512"), Ok(512));
        assert_eq!(parse_bytes("64KiB"), Ok(64 << 10));
        assert_eq!(parse_bytes("512MB"), Ok(512 << 20));
        assert_eq!(parse_bytes("2GB"), Ok(2 << 30));
        assert!(parse_bytes("12XB").unwrap_err().contains("unknown unit"));
        assert!(parse_bytes("MB").is_err());
    }
}
