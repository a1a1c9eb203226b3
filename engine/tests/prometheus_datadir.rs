//! Ember reads a data directory written by a real Prometheus server (Debian's 2.42): blocks Prometheus
//! cut from its head, its memory-mapped head chunks (`chunks_head/`), plus its WAL (segments and
//! checkpoint), after a clean shutdown (SIGTERM) and after SIGKILL. The data goes in through Prometheus' remote-write receiver and every series and sample must
//! come back from `ember::Db::open` bit for bit, NaN payloads (the stale marker among them) included.
//!
//! Needs `/usr/bin/prometheus`; without it the test fails unless EMBER_SKIP_PEER_TESTS=1, in which case
//! it prints that it was skipped.

mod common;

use common::copy_dir;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ember::{Block, Db, Options, SyncPolicy};
use prost::Message;

const PROMETHEUS: &str = "/usr/bin/prometheus";
const MIN: i64 = 60_000;
/// Prometheus' block range in these tests (`--storage.tsdb.min-block-duration=10m`).
const BLOCK_RANGE: i64 = 10 * MIN;
/// A multiple of the block range, so the blocks Prometheus cuts are predictable.
const T0: i64 = 1_699_999_200_000;
const STEP: i64 = 15_000;
const MINUTES: i64 = 60;
/// Prometheus' stale marker, a NaN with a payload no computation produces.
const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;
/// Go's `math.NaN()`, a different payload than Rust's `f64::NAN`.
const GO_NAN: u64 = 0x7ff8_0000_0000_0001;

// Remote-write 1.0 messages (prometheus/prompb/remote.proto, types.proto), only the fields used here.
#[derive(Clone, PartialEq, prost::Message)]
struct WriteRequest {
    #[prost(message, repeated, tag = "1")]
    timeseries: Vec<TimeSeries>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct TimeSeries {
    #[prost(message, repeated, tag = "1")]
    labels: Vec<LabelPair>,
    #[prost(message, repeated, tag = "2")]
    samples: Vec<Sample>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct LabelPair {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(string, tag = "2")]
    value: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Sample {
    #[prost(double, tag = "1")]
    value: f64,
    #[prost(int64, tag = "2")]
    timestamp: i64,
}

type Key = Vec<(String, String)>;
/// Series (sorted label pairs) to samples as (timestamp, value bits).
type Data = BTreeMap<Key, Vec<(i64, u64)>>;

fn prometheus_available() -> bool {
    if Path::new(PROMETHEUS).exists() {
        return true;
    }
    assert_eq!(
        std::env::var("EMBER_SKIP_PEER_TESTS").as_deref(),
        Ok("1"),
        "{PROMETHEUS} not found: install Debian's `prometheus` package (or set EMBER_SKIP_PEER_TESTS=1)"
    );
    eprintln!("SKIPPED: {PROMETHEUS} is missing; the Prometheus data directory test did not run");
    false
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .http_status_as_error(false)
        .build()
        .into()
}

/// A deterministic pseudo-random sequence (xorshift), so a failure can be reproduced.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn key(pairs: &[(&str, &str)]) -> Key {
    let mut k: Key = pairs
        .iter()
        .map(|&(n, v)| (n.to_string(), v.to_string()))
        .collect();
    k.sort();
    k
}

/// The dataset: per series, its samples over `MINUTES` minutes at `STEP`. Counters, gauges with NaN
/// (two payloads), ±Inf, extremes and subnormals, series that go stale (one for good, one coming
/// back), one that starts late (only in the WAL), and label values with unusual characters.
fn dataset() -> Data {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut data = Data::new();
    let times: Vec<i64> = (0..MINUTES * MIN / STEP).map(|i| T0 + i * STEP).collect();
    for k in 0..12 {
        let inst = format!("10.0.0.{k}:9100");
        let mut total = 0.0f64;
        let samples = times
            .iter()
            .map(|&t| {
                total += (rng.next() % 1000) as f64 / 8.0;
                (t, total.to_bits())
            })
            .collect();
        data.insert(
            key(&[
                ("__name__", "compat_requests_total"),
                ("instance", &inst),
                ("job", "compat"),
                ("code", if k % 3 == 0 { "500" } else { "200" }),
            ]),
            samples,
        );
        let specials = [
            f64::NAN.to_bits(),
            GO_NAN,
            f64::INFINITY.to_bits(),
            f64::NEG_INFINITY.to_bits(),
            // Not -0.0: remote write cannot carry it. Protobuf 3 leaves out a double equal to its
            // default 0, and -0.0 == 0 (Prometheus' own sender drops it the same way).
            f64::MIN.to_bits(),
            f64::MAX.to_bits(),
            f64::MIN_POSITIVE.to_bits(),
            1u64, // the smallest subnormal
        ];
        let samples = times
            .iter()
            .enumerate()
            .map(|(i, &t)| {
                let v = if (i + k) % 17 == 0 {
                    specials[(i / 17 + k) % specials.len()]
                } else {
                    ((rng.unit() - 0.5) * 10f64.powi((k as i32) - 4)).to_bits()
                };
                (t, v)
            })
            .collect();
        data.insert(
            key(&[
                ("__name__", "compat_temperature_celsius"),
                ("instance", &inst),
                ("job", "compat"),
            ]),
            samples,
        );
    }
    // Goes stale at minute 25 and never comes back.
    let mut gone: Vec<(i64, u64)> = times
        .iter()
        .filter(|&&t| t < T0 + 25 * MIN)
        .map(|&t| (t, ((t - T0) as f64 / 1000.0).to_bits()))
        .collect();
    gone.push((T0 + 25 * MIN, STALE_NAN));
    data.insert(
        key(&[("__name__", "compat_up"), ("instance", "gone")]),
        gone,
    );
    // Stale from minute 31 to 40, then back.
    let flap = times
        .iter()
        .filter(|&&t| t <= T0 + 31 * MIN || t >= T0 + 40 * MIN)
        .map(|&t| {
            let v = if t == T0 + 31 * MIN {
                STALE_NAN
            } else {
                1f64.to_bits()
            };
            (t, v)
        })
        .collect();
    data.insert(
        key(&[("__name__", "compat_up"), ("instance", "flap")]),
        flap,
    );
    // Starts after the last block Prometheus cuts: only its WAL holds it.
    let late = times
        .iter()
        .filter(|&&t| t >= T0 + 52 * MIN)
        .map(|&t| (t, (rng.unit() * 1e9).to_bits()))
        .collect();
    data.insert(key(&[("__name__", "compat_late"), ("job", "compat")]), late);
    let odd = times
        .iter()
        .step_by(3)
        .map(|&t| (t, (t as f64).to_bits()))
        .collect();
    data.insert(
        key(&[
            ("__name__", "compat_odd_labels"),
            ("path", "/a \"quoted\" \\ back\\slash\nnewline"),
            ("unicode", "température ✓ 日本"),
            ("empty_looking", " "),
        ]),
        odd,
    );
    data
}

/// Remote-writes the samples of `data` with timestamps in `[from, to)`, one request.
fn remote_write(port: u16, data: &Data, from: i64, to: i64) {
    let req = WriteRequest {
        timeseries: data
            .iter()
            .filter_map(|(k, samples)| {
                let samples: Vec<Sample> = samples
                    .iter()
                    .filter(|&&(t, _)| t >= from && t < to)
                    .map(|&(t, v)| Sample {
                        value: f64::from_bits(v),
                        timestamp: t,
                    })
                    .collect();
                (!samples.is_empty()).then(|| TimeSeries {
                    labels: k
                        .iter()
                        .map(|(n, v)| LabelPair {
                            name: n.clone(),
                            value: v.clone(),
                        })
                        .collect(),
                    samples,
                })
            })
            .collect(),
    };
    let body = snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .unwrap();
    let mut resp = agent()
        .post(format!("http://127.0.0.1:{port}/api/v1/write"))
        .header("Content-Type", "application/x-protobuf")
        .header("Content-Encoding", "snappy")
        .header("X-Prometheus-Remote-Write-Version", "0.1.0")
        .send(&body[..])
        .expect("remote write to Prometheus");
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    assert!(
        (200..300).contains(&status),
        "Prometheus refused the batch [{from}, {to}): {status} {text}"
    );
}

/// A Prometheus child process, killed when dropped.
struct Prometheus {
    child: Option<Child>,
    port: u16,
    log: PathBuf,
}

impl Prometheus {
    fn start(data_dir: &Path, work: &Path) -> Prometheus {
        Prometheus::start_with_blocks(data_dir, work, "10m")
    }

    /// Started with `block` as its block duration (its head chunk range too).
    fn start_with_blocks(data_dir: &Path, work: &Path, block: &str) -> Prometheus {
        let port = free_port();
        let config = work.join("prometheus.yml");
        std::fs::write(&config, "global:\n  scrape_interval: 1m\n").unwrap();
        let log = work.join("prometheus.log");
        let child = Command::new(PROMETHEUS)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg(format!("--storage.tsdb.path={}", data_dir.display()))
            .arg(format!("--storage.tsdb.min-block-duration={block}"))
            .arg(format!("--storage.tsdb.max-block-duration={block}"))
            .arg("--web.enable-remote-write-receiver")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("starting prometheus");
        let mut p = Prometheus {
            child: Some(child),
            port,
            log,
        };
        p.wait_ready();
        p
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_ready(&mut self) {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(60) {
            if let Some(s) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "prometheus exited ({s}) before becoming ready:\n{}",
                    self.log()
                );
            }
            let ready = agent()
                .get(format!("http://127.0.0.1:{}/-/ready", self.port))
                .call()
                .is_ok_and(|r| r.status().as_u16() == 200);
            if ready {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("prometheus not ready within 60 s:\n{}", self.log());
    }

    /// The value of an unlabelled gauge on `/metrics`.
    fn metric(&self, name: &str) -> Option<f64> {
        let mut r = agent()
            .get(format!("http://127.0.0.1:{}/metrics", self.port))
            .call()
            .ok()?;
        let body = r.body_mut().read_to_string().ok()?;
        body.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
    }

    /// Polls `prometheus_tsdb_blocks_loaded` until it reaches `want` (bounded); returns the last value.
    fn wait_blocks(&self, want: f64) -> f64 {
        let start = Instant::now();
        let mut last = 0.0;
        while start.elapsed() < Duration::from_secs(90) {
            last = self.metric("prometheus_tsdb_blocks_loaded").unwrap_or(0.0);
            if last >= want {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        last
    }

    fn signal(&mut self, sig: &str) {
        let pid = self.child.as_ref().unwrap().id();
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(pid.to_string())
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig} {pid} failed");
    }

    /// Sends `sig` and waits (bounded) for the process to exit.
    fn stop(mut self, sig: &str) {
        self.signal(sig);
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(60) {
            if self.child.as_mut().unwrap().try_wait().unwrap().is_some() {
                self.child = None;
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("prometheus did not exit within 60 s of SIG{sig}");
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().ok();
            c.wait().ok();
        }
    }
}

/// How many blocks Prometheus cuts from a head spanning `[mint, maxt]`: while the head spans more than
/// 1.5 block ranges, its oldest range-aligned window becomes a block.
fn expected_head_blocks(mut mint: i64, maxt: i64) -> usize {
    let mut n = 0;
    while maxt - mint > BLOCK_RANGE / 2 * 3 {
        mint = (mint.div_euclid(BLOCK_RANGE) + 1) * BLOCK_RANGE;
        n += 1;
    }
    n
}

/// How many chunks in `<dir>/chunks_head` end at or after `floor` (read with Ember's own walker, before
/// Ember opens the directory).
fn head_chunks_after(dir: &Path, floor: i64) -> u64 {
    let mut n = 0;
    if let Ok(files) = std::fs::read_dir(dir.join("chunks_head")) {
        for f in files {
            let bytes = std::fs::read(f.unwrap().path()).unwrap();
            ember::chunks_head::scan_file(&bytes, |c| n += u64::from(c.max_t >= floor))
                .expect("Prometheus' chunk files walk cleanly");
        }
    }
    n
}

fn block_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.join("meta.json").is_file()
                && p.file_name()
                    .unwrap()
                    .to_str()
                    .is_some_and(|n| n.len() == 26)
        })
        .collect();
    out.sort();
    out
}

fn to_data(series: Vec<ember::Series>) -> Data {
    let mut out = Data::new();
    for s in series {
        let k: Key = s
            .labels()
            .iter()
            .map(|l| (l.name.to_string(), l.value.to_string()))
            .collect();
        let samples = s
            .samples()
            .unwrap_or_else(|e| panic!("decoding {k:?}: {e}"))
            .into_iter()
            .map(|(t, v)| (t, v.to_bits()))
            .collect();
        assert!(out.insert(k.clone(), samples).is_none(), "{k:?} twice");
    }
    out
}

/// Asserts equality with a readable first difference instead of two huge dumps.
fn assert_same(what: &str, got: &Data, want: &Data) {
    let got_keys: Vec<&Key> = got.keys().collect();
    let want_keys: Vec<&Key> = want.keys().collect();
    assert_eq!(got_keys, want_keys, "{what}: series differ");
    for (k, w) in want {
        let g = &got[k];
        if g != w {
            let i = g
                .iter()
                .zip(w)
                .position(|(a, b)| a != b)
                .unwrap_or(g.len().min(w.len()));
            panic!(
                "{what}: {k:?} differs at sample {i}: got {:?} (of {}), want {:?} (of {})",
                g.get(i).map(|&(t, v)| (t, format!("{v:#018x}"))),
                g.len(),
                w.get(i).map(|&(t, v)| (t, format!("{v:#018x}"))),
                w.len()
            );
        }
    }
}

/// Restricts `data` to timestamps in `[mint, maxt)`, dropping series left empty.
fn window(data: &Data, mint: i64, maxt: i64) -> Data {
    data.iter()
        .filter_map(|(k, s)| {
            let s: Vec<(i64, u64)> = s
                .iter()
                .copied()
                .filter(|&(t, _)| t >= mint && t < maxt)
                .collect();
            (!s.is_empty()).then(|| (k.clone(), s))
        })
        .collect()
}

/// Writes the dataset into a fresh Prometheus minute by minute and waits for its head compaction;
/// returns the running server, the data written and how many blocks it was waited for.
///
/// Prometheus truncates (and checkpoints) its WAL once per compaction run, after all the blocks the run
/// cut. With `paced`, each batch that makes a block due waits for Prometheus to cut it, so every block
/// comes from a run of its own and the WAL is truncated once per block (which makes a checkpoint by the
/// fourth); otherwise the batches go in as fast as Prometheus takes them.
fn fill_prometheus(data_dir: &Path, work: &Path, paced: bool) -> (Prometheus, Data, usize) {
    let prom = Prometheus::start(data_dir, work);
    let data = dataset();
    let mut due = 0;
    for m in 0..MINUTES {
        let (from, to) = (T0 + m * MIN, T0 + (m + 1) * MIN);
        remote_write(prom.port, &data, from, to);
        let newest = data
            .values()
            .flatten()
            .map(|&(t, _)| t)
            .filter(|&t| t < to)
            .max()
            .unwrap();
        let now_due = expected_head_blocks(T0, newest);
        if paced && now_due > due {
            let got = prom.wait_blocks(now_due as f64);
            assert_eq!(
                got,
                now_due as f64,
                "Prometheus did not cut block {now_due} within 90 s:\n{}",
                prom.log()
            );
        }
        due = now_due;
    }
    assert!(due >= 1, "the dataset must span enough for a block");
    let got = prom.wait_blocks(1.0);
    assert!(
        got >= 1.0,
        "Prometheus cut no block within 90 s (blocks_loaded = {got}):\n{}",
        prom.log()
    );
    (prom, data, due)
}

fn ember_opts() -> Options {
    Options {
        block_range_ms: BLOCK_RANGE,
        wal_sync: SyncPolicy::Never,
        ..Options::default()
    }
}

/// Opens `dir` with Ember and checks the blocks one by one, then the whole database, against `want`.
/// Every chunk of Prometheus' head chunk files that ends at or after `floor` must be attached (not
/// rebuilt from the WAL); with `mapped` there must be such chunks.
fn check_dir(what: &str, dir: &Path, want: &Data, mapped: bool) {
    let floor = block_dirs(dir)
        .iter()
        .map(|b| Block::open(b).unwrap().meta().max_time)
        .max()
        .unwrap_or(i64::MIN);
    let live_chunks = head_chunks_after(dir, floor);
    let blocks = block_dirs(dir);
    assert!(!blocks.is_empty(), "{what}: no block in {}", dir.display());
    // Each block alone holds exactly the samples of its range.
    for b in &blocks {
        let block =
            Block::open(b).unwrap_or_else(|e| panic!("{what}: opening {}: {e}", b.display()));
        let (mint, maxt) = (block.meta().min_time, block.meta().max_time);
        let got = to_data(block.select(&[], mint, maxt - 1).unwrap());
        assert_same(
            &format!("{what}: block {}", b.display()),
            &got,
            &window(want, mint, maxt),
        );
    }
    let db = Db::open(dir, ember_opts()).unwrap_or_else(|e| panic!("{what}: Db::open: {e}"));
    assert_eq!(
        db.blocks().len(),
        blocks.len(),
        "{what}: every block loaded"
    );
    let stats = db.stats();
    let (hmin, _) = stats
        .time_range
        .unwrap_or_else(|| panic!("{what}: the WAL held no sample"));
    let blocks_end = db.blocks().iter().map(|m| m.max_time).max().unwrap();
    assert!(
        hmin >= blocks_end,
        "{what}: head starts at {hmin}, blocks end at {blocks_end}"
    );
    eprintln!(
        "{what}: {} blocks up to {blocks_end}, head from {hmin} with {} series; replay: {:?}",
        blocks.len(),
        stats.num_series,
        db.replay_stats()
    );
    let st = db.replay_stats();
    // Every chunk in the files that reaches into the head's range is used, none is reported damaged.
    assert_eq!(st.mmapped_chunks, live_chunks, "{what}: {st:?}");
    assert!(st.head_chunks.damage.is_none(), "{what}: {st:?}");
    if mapped {
        assert!(
            st.mmapped_chunks > 0 && st.samples_in_mmapped_chunks > 0,
            "{what}: no chunk of Prometheus' chunks_head/ used: {st:?}"
        );
    }
    let got = to_data(db.querier(i64::MIN, i64::MAX).try_select(&[]).unwrap());
    assert_same(what, &got, want);
    let stale = &got[&key(&[("__name__", "compat_up"), ("instance", "gone")])];
    assert_eq!(
        stale.last().unwrap().1,
        STALE_NAN,
        "{what}: stale marker kept"
    );
    db.close().unwrap();
    // Opened again (now with Ember's own lock and WAL segment), still the same.
    let db = Db::open(dir, ember_opts()).unwrap();
    let got = to_data(db.querier(i64::MIN, i64::MAX).try_select(&[]).unwrap());
    assert_same(&format!("{what} (reopened)"), &got, want);
    db.close().unwrap();
}

#[test]
fn ember_reads_every_sample_of_a_cleanly_stopped_prometheus() {
    if !prometheus_available() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let data_dir = work.path().join("data");
    let (prom, data, want_blocks) = fill_prometheus(&data_dir, work.path(), true);
    let loaded = prom.wait_blocks(want_blocks as f64);
    assert_eq!(
        loaded,
        want_blocks as f64,
        "Prometheus cuts a block per 10 min window while the head spans more than 15 min:\n{}",
        prom.log()
    );
    prom.stop("TERM");
    assert_eq!(block_dirs(&data_dir).len(), want_blocks);
    // Five WAL truncations: each starts a new segment, the fourth folds the oldest two into a checkpoint.
    let checkpoints: Vec<String> = std::fs::read_dir(data_dir.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("checkpoint."))
        .collect();
    assert!(
        !checkpoints.is_empty(),
        "expected Prometheus to have checkpointed its WAL"
    );
    // The head holds only the newest, still open chunk range here: no mapped chunk is due.
    check_dir("SIGTERM", &data_dir, &data, false);
}

#[test]
fn ember_reads_every_sample_of_a_killed_prometheus() {
    if !prometheus_available() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let data_dir = work.path().join("data");
    let (prom, data, _) = fill_prometheus(&data_dir, work.path(), false);
    // Killed as soon as one block exists, possibly amid further head compactions: whatever state that
    // leaves (a block written but the WAL not yet truncated, a half-written block directory), nothing
    // acknowledged may be missing or doubled.
    prom.stop("KILL");
    let copy = work.path().join("copy");
    copy_dir(&data_dir, &copy);
    // Prometheus buffers chunk writes; after a kill the files may hold few chunks or none.
    check_dir("SIGKILL", &copy, &data, false);
}

#[test]
fn ember_serves_a_prometheus_head_from_its_memory_mapped_chunks() {
    if !prometheus_available() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let data_dir = work.path().join("data");
    // With 2 h blocks the hour of data stays in the head: chunks of 120 samples, so the first half
    // hour of every series is a completed chunk in chunks_head/ and the rest is in the WAL only.
    let prom = Prometheus::start_with_blocks(&data_dir, work.path(), "2h");
    let data = dataset();
    for m in 0..MINUTES {
        remote_write(prom.port, &data, T0 + m * MIN, T0 + (m + 1) * MIN);
    }
    prom.stop("TERM");
    assert!(block_dirs(&data_dir).is_empty());
    let on_disk = head_chunks_after(&data_dir, i64::MIN);
    assert!(on_disk > 0, "Prometheus wrote no head chunk");
    let db = Db::open(
        &data_dir,
        Options {
            wal_sync: SyncPolicy::Never,
            ..Options::default()
        },
    )
    .unwrap();
    let st = db.replay_stats().clone();
    eprintln!("{on_disk} chunks on disk; replay: {st:?}");
    assert_eq!(st.mmapped_chunks, on_disk, "{st:?}");
    assert!(st.samples_in_mmapped_chunks > 0 && st.head_chunks.damage.is_none());
    let got = to_data(db.querier(i64::MIN, i64::MAX).try_select(&[]).unwrap());
    assert_same("2h blocks, SIGTERM", &got, &data);
    // The mapped chunks are still what Ember reads after its own restart.
    db.close().unwrap();
    let db = Db::open(&data_dir, ember_opts()).unwrap();
    assert!(db.replay_stats().mmapped_chunks >= on_disk);
    let got = to_data(db.querier(i64::MIN, i64::MAX).try_select(&[]).unwrap());
    assert_same("2h blocks, reopened", &got, &data);
}
