//! Bytes per sample of Ember's blocks on the shared benchmark dataset, with and without the zstd tier for
//! compacted blocks (`Options::compress_compacted_chunks`).
//!
//! Loads an OpenMetrics export (`loadgen openmetrics`, default 6 h) into memory, appends it to a fresh
//! database in time order, 15 minutes at a time, running `Db::compact` after each step: the head cuts
//! 2 h blocks as it goes. After the data, marker samples at the next 2 h boundary B, at B + 2 h and at
//! B + 6 h make the head cut its last data block and two blocks past it; with those, Prometheus' planner
//! (which leaves the newest block out and merges a 6 h window once it is full or lies before the
//! next-newest block) merges the three 2 h blocks of the dataset into one 6 h block (level 2). The
//! dataset must start on a multiple of 6 h (`loadgen openmetrics --start-ms 1699984800000`).
//!
//! Reports, per run, the 6 h block's bytes (total, chunks, index) per sample, the 2 h head blocks' for
//! comparison, and checks that every sample reads back.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Parser;
use ember::{Db, Labels, Options, SyncPolicy};

#[derive(Parser)]
struct Args {
    /// The OpenMetrics export of the benchmark dataset.
    #[arg(long)]
    openmetrics: PathBuf,
    /// Scratch directory for the databases (emptied first).
    #[arg(long, default_value = "/tmp/ember-block-bytes")]
    dir: PathBuf,
    /// Also rewrite the compacted block's chunks with several zstd tier settings (level, frame size,
    /// format version) and report size and read/write times for each.
    #[arg(long)]
    sweep: bool,
}

const H: i64 = 3600 * 1000;
const STEP: i64 = 15 * 60 * 1000;

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let started = Instant::now();
    let data = ember_benches::read_openmetrics(&args.openmetrics)?;
    let samples: usize = data.iter().map(|(_, s)| s.len()).sum();
    let mint = data
        .iter()
        .filter_map(|(_, s)| s.first())
        .map(|s| s.0)
        .min();
    let maxt = data.iter().filter_map(|(_, s)| s.last()).map(|s| s.0).max();
    let (Some(mint), Some(maxt)) = (mint, maxt) else {
        anyhow::bail!("{}: no samples", args.openmetrics.display());
    };
    anyhow::ensure!(
        mint / (6 * H) == (maxt - 1) / (6 * H),
        "the dataset [{mint}, {maxt}] does not fit one 6 h window; export it with --start-ms at a multiple of 6 h"
    );
    println!(
        "{{\"kind\":\"dataset\",\"series\":{},\"samples\":{samples},\"mint\":{mint},\"maxt\":{maxt},\"load_s\":{:.1}}}",
        data.len(),
        started.elapsed().as_secs_f64()
    );
    for compress in [false, true] {
        let dir = args.dir.join(if compress { "zstd" } else { "plain" });
        let block = run(&dir, &data, mint, maxt, compress)?;
        if !compress && args.sweep {
            sweep(
                &block.join("chunks"),
                &args.dir.join("sweep"),
                samples as f64,
            )?;
        }
    }
    Ok(())
}

/// Rewrites the chunks of the plain compacted block at `chunks` with each zstd tier setting; reports
/// bytes per sample, the time to write the tier, to read every chunk back in order and to read single
/// chunks at random (each through a fresh reader, so no cached frame helps), and checks every chunk
/// reads back byte for byte.
fn sweep(chunks: &Path, scratch: &Path, samples: f64) -> anyhow::Result<()> {
    use ember::chunks::{ChunkReader, ChunkWriter, RawChunk, ZstdParams};
    let plain = ChunkReader::open(chunks)?;
    let all: Vec<(ember::chunks::ChunkRef, u8, Vec<u8>)> = plain
        .iter()
        .map(|r| r.map(|(r, c)| (r, c.encoding, c.data.to_vec())))
        .collect::<Result<_, _>>()?;
    let mut configs = vec![ZstdParams::v1(3)];
    for (level, frame_kib) in [
        (3, 64),
        (9, 64),
        (3, 128),
        (9, 128),
        (3, 256),
        (3, 1024),
        (9, 256),
        (19, 256),
        (9, 1024),
        (19, 1024),
    ] {
        configs.push(ZstdParams {
            level,
            frame_target: frame_kib << 10,
            ..ZstdParams::default()
        });
    }
    for params in configs {
        let dir = scratch.join(format!(
            "v{}-l{}-f{}",
            params.version, params.level, params.frame_target
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let started = Instant::now();
        let mut w = ChunkWriter::create(&dir)?.with_zstd_params(params);
        for (r, enc, data) in &all {
            let got = w.write_chunks(&[RawChunk {
                encoding: *enc,
                data,
            }])?;
            anyhow::ensure!(
                got == [*r],
                "reference {got:?} differs from the plain {r:?}"
            );
        }
        let (_, stats) = w.finish_with_stats()?;
        let write_s = started.elapsed().as_secs_f64();
        let bytes = dir_bytes(&dir);
        let started = Instant::now();
        let rd = ChunkReader::open(&dir)?;
        let mut decoded = 0usize;
        for (r, enc, data) in &all {
            let c = rd.read(*r)?;
            anyhow::ensure!(
                c.encoding == *enc && c.data.as_ref() == &data[..],
                "chunk {r:?} reads back different bytes"
            );
            if *enc == ember::chunkenc::ENCODING_XOR {
                let mut it = ember::chunkenc::XorIterator::new(&c.data)?;
                while it.next_sample().is_some() {
                    decoded += 1;
                }
            }
        }
        anyhow::ensure!(decoded as f64 == samples, "decoded {decoded} samples");
        let read_s = started.elapsed().as_secs_f64();
        // Random single-chunk reads, each on a cold reader (opening included).
        let picks = 200;
        let started = Instant::now();
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..picks {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let (r, _, _) = &all[(x % all.len() as u64) as usize];
            let rd = ChunkReader::open(&dir)?;
            std::hint::black_box(rd.read(*r)?);
        }
        let one_us = started.elapsed().as_secs_f64() * 1e6 / f64::from(picks);
        println!(
            "{{\"kind\":\"tier_sweep\",\"version\":{},\"level\":{},\"frame_kib\":{},\"chunk_bytes\":{bytes},\"chunk_bytes_per_sample\":{:.4},\"write_s\":{write_s:.2},\"read_all_chunks_s\":{read_s:.2},\"cold_read_one_chunk_us\":{one_us:.0},\"decimal_chunks\":{},\"float_chunks\":{},\"raw_chunks\":{}}}",
            params.version,
            params.level,
            params.frame_target >> 10,
            bytes as f64 / samples,
            stats.decimal_chunks,
            stats.float_chunks,
            stats.raw_chunks,
        );
        std::fs::remove_dir_all(&dir)?;
    }
    Ok(())
}

fn run(
    dir: &Path,
    data: &[ember_benches::ExportedSeries],
    mint: i64,
    maxt: i64,
    compress: bool,
) -> anyhow::Result<PathBuf> {
    let _ = std::fs::remove_dir_all(dir);
    let db = Db::open(
        dir,
        Options {
            wal_sync: SyncPolicy::Never,
            compress_compacted_chunks: compress,
            ..Options::default()
        },
    )?;
    let started = Instant::now();
    let mut refs: Vec<Option<ember::SeriesRef>> = vec![None; data.len()];
    let mut cursor = vec![0usize; data.len()];
    let mut from = mint;
    while from <= maxt {
        let to = from + STEP;
        let mut app = db.appender();
        let mut pending = 0;
        for (i, (labels, samples)) in data.iter().enumerate() {
            while let Some(&(t, v)) = samples.get(cursor[i]).filter(|s| s.0 < to) {
                match refs[i] {
                    Some(r) => app.append_ref(r, t, v)?,
                    None => refs[i] = Some(app.append(labels, t, v)?),
                }
                cursor[i] += 1;
                pending += 1;
            }
            if pending >= 50_000 {
                app.commit()?;
                app = db.appender();
                pending = 0;
            }
        }
        app.commit()?;
        db.compact()?;
        from = to;
    }
    let append_s = started.elapsed().as_secs_f64();
    // The 2 h blocks cut from the head so far (always Prometheus' format).
    let head_blocks = db.blocks();
    let (hb_bytes, hb_samples) = head_blocks.iter().fold((0u64, 0u64), |(b, n), m| {
        (
            b + dir_bytes(&dir.join(m.ulid.to_string())),
            n + m.stats.num_samples,
        )
    });
    let marker = Labels::from_pairs([("__name__", "block_bytes_marker")])?;
    let boundary = (maxt / (2 * H) + 1) * 2 * H;
    for t in [boundary, boundary + 2 * H, boundary + 6 * H] {
        let mut app = db.appender();
        app.append(&marker, t, 1.0)?;
        app.commit()?;
    }
    db.compact()?;
    let metas = db.blocks();
    let Some(big) = metas
        .iter()
        .find(|m| m.compaction.level >= 2 && m.min_time <= mint && m.max_time > maxt)
    else {
        anyhow::bail!("no compacted block covers the dataset: {metas:?}");
    };
    let bdir = dir.join(big.ulid.to_string());
    let chunks = dir_bytes(&bdir.join("chunks"));
    let index = std::fs::metadata(bdir.join("index"))?.len();
    let total = dir_bytes(&bdir);
    let n = big.stats.num_samples as f64;

    // Every sample reads back from the compacted block.
    let q = db.querier(mint, maxt);
    let mut read = 0usize;
    for s in q.try_select(&[])? {
        if s.labels().get("__name__") != Some("block_bytes_marker") {
            read += s.samples()?.len();
        }
    }
    let want: usize = data.iter().map(|(_, s)| s.len()).sum();
    anyhow::ensure!(read == want, "read back {read} samples, wrote {want}");
    let read_s = {
        let t = Instant::now();
        for s in q.try_select(&[])? {
            std::hint::black_box(s.samples()?);
        }
        t.elapsed().as_secs_f64()
    };
    println!(
        "{{\"kind\":\"block_bytes\",\"zstd\":{compress},\"block_range_h\":{:.2},\"level\":{},\"samples\":{},\"series\":{},\"chunks\":{},\"bytes\":{total},\"chunk_bytes\":{chunks},\"index_bytes\":{index},\"bytes_per_sample\":{:.4},\"chunk_bytes_per_sample\":{:.4},\"append_compact_s\":{append_s:.1},\"read_all_s\":{read_s:.2},\"head_blocks\":{},\"head_block_bytes_per_sample\":{:.4}}}",
        (big.max_time - big.min_time) as f64 / H as f64,
        big.compaction.level,
        big.stats.num_samples,
        big.stats.num_series,
        big.stats.num_chunks,
        total as f64 / n,
        chunks as f64 / n,
        head_blocks.len(),
        hb_bytes as f64 / hb_samples.max(1) as f64,
    );
    db.close()?;
    Ok(bdir)
}

fn dir_bytes(p: &Path) -> u64 {
    std::fs::read_dir(p)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| match e.file_type() {
                    Ok(t) if t.is_dir() => dir_bytes(&e.path()),
                    _ => e.metadata().map(|m| m.len()).unwrap_or(0),
                })
                .sum()
        })
        .unwrap_or(0)
}
