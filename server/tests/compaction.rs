//! The server's storage maintenance with the real binary: blocks are cut from the head while data
//! arrives, queries over blocks and head return every sample once, the blocks survive a restart and
//! Debian's promtool reads them, and `--storage.tsdb.retention.time` deletes old blocks.

use std::path::Path;
use std::time::{Duration, Instant};

mod common;

use common::WriteSeries;
use serde_json::Value;

const MIN: i64 = 60_000;
const SERIES: usize = 3;

/// Samples every 15 s over `minutes` minutes from `base` for three series, written one minute at a
/// time across all series, as a scraper would deliver them (the head refuses samples far behind its
/// newest one).
fn write_minutes(port: u16, base: i64, minutes: i64) -> usize {
    let mut written = 0;
    for m in 0..minutes {
        let batch: Vec<WriteSeries> = (0..SERIES)
            .map(|i| {
                let labels = vec![
                    ("__name__".to_string(), "work_done_total".to_string()),
                    ("worker".to_string(), i.to_string()),
                ];
                let samples = (0..4)
                    .map(|k| {
                        let t = base + m * MIN + k * 15_000;
                        (t, (t - base) as f64 / 1000.0 * (i + 1) as f64)
                    })
                    .collect();
                (labels, samples)
            })
            .collect();
        let (code, body) = common::remote_write_v1(port, &batch);
        assert_eq!(code, 204, "{body}");
        written += SERIES * 4;
    }
    written
}

fn query(port: u16, q: &str, t_ms: i64) -> Value {
    let path = format!(
        "/api/v1/query?query={}&time={}",
        form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>(),
        t_ms as f64 / 1000.0
    );
    let (code, body) = common::get(port, &path).expect("query answered");
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// The value of a one-series instant query as a number.
fn scalar_result(v: &Value) -> f64 {
    let r = &v["data"]["result"];
    assert_eq!(r.as_array().map(Vec::len), Some(1), "{v}");
    r[0]["value"][1].as_str().unwrap().parse().unwrap()
}

/// A metric's value in `/metrics` (first sample of that name).
fn metric(port: u16, name: &str) -> f64 {
    let (_, body) = common::get(port, "/metrics").unwrap();
    body.lines()
        .find_map(|l| {
            let rest = l.strip_prefix(name)?;
            let v = rest.strip_prefix(' ')?;
            v.trim().parse().ok()
        })
        .unwrap_or_else(|| panic!("{name} not in /metrics:\n{body}"))
}

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn block_dirs(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            (name.len() == 26 && name.chars().all(|c| c.is_ascii_alphanumeric())).then_some(name)
        })
        .collect();
    out.sort();
    out
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

const FLAGS: [&str; 4] = [
    "--web.enable-remote-write-receiver",
    "--storage.tsdb.min-block-duration=10m",
    "--storage.tsdb.max-block-duration=10m",
    "--storage.tsdb.compaction-interval=1s",
];

#[test]
fn blocks_cut_while_writing_answer_every_sample_once_and_survive_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let (ember, port) = common::start_ember(&dir, &FLAGS);
    let base = now_ms() / MIN * MIN - 60 * MIN;
    let written = write_minutes(port, base, 60);
    // The head spans 60 m of 10 m blocks: at least four blocks must be cut (it keeps at most 15 m).
    // (The block count moves as each block lands, the counter when the whole pass ends.)
    wait_for("four head blocks", || {
        metric(port, "prometheus_tsdb_blocks_loaded") >= 4.0
            && metric(port, "prometheus_tsdb_compactions_total") >= 4.0
    });
    assert_eq!(
        metric(port, "prometheus_tsdb_compactions_failed_total"),
        0.0
    );
    let blocks = block_dirs(&dir);
    assert!(blocks.len() >= 4, "block dirs: {blocks:?}");
    // The head keeps at most 1.5 block ranges; its bounds are exported as Prometheus names them.
    let head_span = metric(port, "prometheus_tsdb_head_max_time")
        - metric(port, "prometheus_tsdb_head_min_time");
    assert!(
        (0.0..=15.0 * MIN as f64).contains(&head_span),
        "head spans {head_span} ms"
    );

    let end = base + 60 * MIN;
    let count = |port| {
        scalar_result(&query(
            port,
            "sum(count_over_time(work_done_total[2h]))",
            end,
        ))
    };
    assert_eq!(
        count(port),
        written as f64,
        "every sample once across blocks and head"
    );
    // Values come back intact from blocks: the first sample of worker 2 is 0, the last 3539.
    let first = query(
        port,
        r#"min_over_time(work_done_total{worker="2"}[2h])"#,
        end,
    );
    assert_eq!(scalar_result(&first), 0.0);
    let last = query(
        port,
        r#"max_over_time(work_done_total{worker="2"}[2h])"#,
        end,
    );
    assert_eq!(scalar_result(&last), (60.0 * 60.0 - 15.0) * 3.0);
    // Those queries decoded block chunks into the cache; asking again finds them there and answers
    // the same.
    let misses = metric(port, "ember_decoded_chunk_cache_misses_total");
    assert!(misses > 0.0, "block chunks were decoded");
    assert!(metric(port, "ember_decoded_chunk_cache_bytes") > 0.0);
    assert_eq!(
        count(port),
        written as f64,
        "the same answer from cached chunks"
    );
    assert!(metric(port, "ember_decoded_chunk_cache_hits_total") >= misses);
    common::stop(ember, "ember");

    if common::peer_available("promtool") {
        let out = std::process::Command::new("promtool")
            .args(["tsdb", "list"])
            .arg(&dir)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "promtool tsdb list: {out:?}");
        for b in &blocks {
            assert!(text.contains(b.as_str()), "promtool lists {b}:\n{text}");
        }
    }

    // Reopened: the blocks load and the head replays only what they do not hold.
    let (ember, port) = common::start_ember(&dir, &FLAGS);
    assert!(metric(port, "prometheus_tsdb_blocks_loaded") >= 4.0);
    assert_eq!(
        count(port),
        written as f64,
        "every sample once after a restart"
    );
    common::stop(ember, "ember");
}

#[test]
fn retention_time_deletes_blocks_older_than_the_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let mut flags = FLAGS.to_vec();
    flags.push("--storage.tsdb.retention.time=20m");
    let (ember, port) = common::start_ember(&dir, &flags);
    let base = now_ms() / MIN * MIN - 60 * MIN;
    let written = write_minutes(port, base, 60);
    let end = base + 60 * MIN;
    // Blocks cover up to ~45 m; those ending 20 m or more before the newest block's end go.
    wait_for("retention to delete blocks", || {
        metric(port, "ember_tsdb_blocks_deleted_total") >= 1.0
    });
    let count = scalar_result(&query(
        port,
        "sum(count_over_time(work_done_total[2h]))",
        end,
    ));
    assert!(
        count < written as f64 && count > 0.0,
        "{count} of {written} samples left"
    );
    // Nothing older than the retention window behind the newest block survives.
    let oldest = query(
        port,
        "min_over_time(timestamp(work_done_total)[2h:15s])",
        end,
    );
    for s in oldest["data"]["result"].as_array().unwrap() {
        let t: f64 = s["value"][1].as_str().unwrap().parse().unwrap();
        assert!(
            t * 1000.0 >= (base + 20 * MIN) as f64,
            "sample at {t} survived, data started at {}",
            base / 1000
        );
    }
    let (_, info) = common::get(port, "/api/v1/status/runtimeinfo").unwrap();
    let info: Value = serde_json::from_str(&info).unwrap();
    assert_eq!(info["data"]["storageRetention"], "20m");
    common::stop(ember, "ember");
}
