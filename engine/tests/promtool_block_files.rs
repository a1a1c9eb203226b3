//! Reads blocks written by real Prometheus tooling: `promtool tsdb create-blocks-from openmetrics` turns
//! a generated OpenMetrics file into blocks, and Ember must parse each block's `meta.json` and
//! `tombstones`, open its chunk segments, walk every chunk, and decode them back to exactly the samples
//! written. Without the index, chunks cannot be mapped to series, so the samples are compared as one
//! multiset over all chunks of all blocks.
//!
//! Needs Debian's `promtool`; without it the test fails unless EMBER_SKIP_PEER_TESTS=1.

use std::path::{Path, PathBuf};
use std::process::Command;

use ember::BlockMeta;
use ember::chunkenc::{ENCODING_XOR, XorAppender, XorIterator};
use ember::chunks::{ChunkReader, ChunkWriter};
use ember::tombstones::Tombstones;

/// Same convention as the server's peer tests.
fn peer_available(bin: &str) -> bool {
    if Command::new(bin).arg("--version").output().is_ok() {
        return true;
    }
    assert_eq!(
        std::env::var("EMBER_SKIP_PEER_TESTS").as_deref(),
        Ok("1"),
        "{bin} not found: install Debian's `prometheus` package (or set EMBER_SKIP_PEER_TESTS=1 to skip)"
    );
    eprintln!("SKIPPED: {bin} not installed");
    false
}

/// NaN payloads are not preserved by text exposition; compare all NaNs as one value.
fn key(t: i64, v: f64) -> (i64, u64) {
    (
        t,
        if v.is_nan() {
            f64::NAN.to_bits()
        } else {
            v.to_bits()
        },
    )
}

/// Four gauge series over 2.5 hours at 15 s (so promtool cuts two 2-hour blocks and several chunks per
/// series), with values covering repeats, fractions, negatives, huge and tiny magnitudes and the
/// special values; one series has half-second timestamps.
fn openmetrics() -> (String, Vec<(i64, u64)>) {
    let mut text = String::from("# HELP ember_test A generated gauge.\n# TYPE ember_test gauge\n");
    let mut samples = Vec::new();
    let start_ms = 1_700_000_000_000i64;
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    for series in 0..4 {
        for i in 0..600i64 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let t = start_ms + i * 15_000 + if series == 3 { 500 } else { 0 };
            let v = match (series, i % 50) {
                (_, 7) => f64::NAN,
                (_, 8) => f64::INFINITY,
                (_, 9) => f64::NEG_INFINITY,
                (0, _) => (i / 20) as f64,
                (1, _) => (seed % 100_000) as f64 / 100.0 - 500.0,
                (2, _) => f64::from_bits(seed >> 2) * 1e-300,
                _ => 1e300 / (1 + seed % 1000) as f64,
            };
            let value = if v.is_nan() {
                "NaN".to_string()
            } else if v.is_infinite() {
                if v > 0.0 { "+Inf" } else { "-Inf" }.to_string()
            } else {
                format!("{v:e}")
            };
            // Seconds with at most one (binary-exact) decimal, so the text gives back the exact milliseconds.
            let secs = format!("{}.{}", t / 1000, (t % 1000) / 100);
            text.push_str(&format!(
                "ember_test{{series=\"s{series}\"}} {value} {secs}\n"
            ));
            samples.push(key(t, v));
        }
    }
    text.push_str("# EOF\n");
    (text, samples)
}

fn block_dirs(out: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("meta.json").exists())
        .collect();
    dirs.sort();
    dirs
}

#[test]
fn blocks_written_by_promtool_read_back_to_the_written_samples() {
    if !peer_available("promtool") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (text, mut want) = openmetrics();
    let input = tmp.path().join("input.om");
    std::fs::write(&input, text).unwrap();
    let out = tmp.path().join("blocks");
    let res = Command::new("promtool")
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&input)
        .arg(&out)
        .output()
        .expect("run promtool");
    assert!(
        res.status.success(),
        "promtool failed: {}",
        String::from_utf8_lossy(&res.stderr)
    );

    let blocks = block_dirs(&out);
    assert!(blocks.len() >= 2, "expected several blocks, got {blocks:?}");
    let mut got = Vec::new();
    let mut chunks_seen = 0;
    for dir in &blocks {
        let meta = BlockMeta::read_from_dir(dir).unwrap();
        assert_eq!(
            dir.file_name().unwrap().to_str().unwrap(),
            meta.ulid.to_string()
        );
        assert_eq!(meta.version, 1);
        assert_eq!(meta.compaction.level, 1);
        assert_eq!(meta.compaction.sources, vec![meta.ulid]);
        assert!(Tombstones::read_from_dir(dir).unwrap().is_empty());

        let rd = ChunkReader::open(dir.join("chunks")).unwrap();
        let mut block_samples = 0u64;
        let mut block_chunks = 0u64;
        let rewritten = tempfile::tempdir().unwrap();
        let mut w = ChunkWriter::create(rewritten.path()).unwrap();
        for item in rd.iter() {
            let (r, chunk) = item.unwrap();
            assert_eq!(
                rd.chunk(r).unwrap(),
                chunk,
                "random access agrees with the walk"
            );
            assert_eq!(chunk.encoding, ENCODING_XOR);
            let mut it = XorIterator::new(chunk.data).unwrap();
            let samples: Vec<_> = it.by_ref().collect();
            assert!(it.err().is_none(), "{r:?}: {:?}", it.err());
            for &(t, v) in &samples {
                // maxTime is exclusive.
                assert!(
                    meta.min_time <= t && t < meta.max_time,
                    "{t} outside {dir:?}"
                );
                got.push(key(t, v));
            }
            // Ember's encoder produces Prometheus' bytes for the same samples, except that Prometheus
            // releases before the September 2024 bstream fix (Debian ships 2.42) leave one extra zero
            // byte after a stream that ends with a byte-aligned full byte; decoders ignore it.
            let mut a = XorAppender::new();
            for &(t, v) in &samples {
                a.append(t, v);
            }
            let ours = a.into_bytes();
            let legacy_pad = chunk.data.len() == ours.len() + 1 && chunk.data.last() == Some(&0);
            assert!(
                ours == chunk.data || (legacy_pad && chunk.data.starts_with(&ours)),
                "re-encoding {r:?} differs"
            );
            assert_eq!(w.write_chunk(chunk.encoding, chunk.data).unwrap(), r);
            block_samples += samples.len() as u64;
            block_chunks += 1;
        }
        assert_eq!(meta.stats.num_samples, block_samples);
        assert_eq!(meta.stats.num_chunks, block_chunks);
        chunks_seen += block_chunks;

        // Writing the same chunks in file order gives promtool's segment files byte for byte.
        let written = w.finish().unwrap();
        assert_eq!(written.len(), rd.num_segments());
        for (i, path) in written.iter().enumerate() {
            assert_eq!(
                std::fs::read(path).unwrap(),
                std::fs::read(rd.segment_path(i as u32).unwrap()).unwrap(),
                "segment {i} of {dir:?}"
            );
        }
        // Ember's meta.json serialization is Prometheus' too.
        assert_eq!(
            meta.to_json(),
            std::fs::read(dir.join("meta.json")).unwrap(),
            "meta.json of {dir:?}"
        );
        rewritten.close().unwrap();
    }
    assert!(chunks_seen > 4 * 4, "only {chunks_seen} chunks");
    got.sort_unstable();
    want.sort_unstable();
    assert_eq!(got.len(), want.len());
    assert!(got == want, "decoded samples differ from the written ones");
}
