//! Helpers shared by the server's integration tests: ports, an HTTP client, starting and stopping the
//! `ember` binary and peer processes.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A client that reports 4xx/5xx as responses, not errors.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .http_status_as_error(false)
        .build()
        .into()
}

/// GET returning status and body, or `None` if the server did not answer.
pub fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut r = agent()
        .get(format!("http://127.0.0.1:{port}{path}"))
        .call()
        .ok()?;
    let code = r.status().as_u16();
    Some((code, r.body_mut().read_to_string().ok()?))
}

/// Polls `/-/ready` until it answers 200 (bounded).
pub fn wait_ready(port: u16, what: &str) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        if get(port, "/-/ready").is_some_and(|(c, _)| c == 200) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{what} did not become ready within 60 s");
}

/// A child process that is killed if the test ends (or panics) without stopping it.
pub struct Proc(Option<Child>);

impl Proc {
    pub fn spawn(cmd: &mut Command) -> Proc {
        Proc(Some(cmd.spawn().expect("spawn")))
    }

    pub fn id(&self) -> u32 {
        self.0.as_ref().unwrap().id()
    }

    /// Whether the process has exited.
    pub fn try_exited(&mut self) -> bool {
        self.0
            .as_mut()
            .is_none_or(|c| c.try_wait().ok().flatten().is_some())
    }

    /// Waits up to `timeout` for the process to exit by itself; its status, or `None` if it still runs.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Some(s) = self.0.as_mut()?.try_wait().ok().flatten() {
                self.0 = None;
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            c.kill().ok();
            c.wait().ok();
        }
    }
}

/// SIGTERM, then waits (bounded) and requires a clean exit.
pub fn stop(mut p: Proc, what: &str) {
    let mut child = p.0.take().unwrap();
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "{what} exited with {status}");
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill().ok();
    child.wait().ok();
    panic!("{what} did not stop within 60 s of SIGTERM");
}

/// Starts `ember` over `dir` with `extra` flags on a port the kernel picks (read back from its log, so
/// parallel tests cannot race for a port) and waits until it is ready.
pub fn start_ember(dir: &Path, extra: &[&str]) -> (Proc, u16) {
    let (proc, port) = spawn_ember(dir, extra);
    wait_ready(port, "ember");
    (proc, port)
}

/// Starts `ember` as [`start_ember`] does but returns once it has bound its port, without probing
/// readiness over plain HTTP (for servers that need TLS or credentials to answer).
///
/// Unless `extra` has a `--config.file`, the server gets an empty configuration: without one `ember`
/// scrapes itself, and these tests count on holding only the data they write.
pub fn spawn_ember(dir: &Path, extra: &[&str]) -> (Proc, u16) {
    if extra.iter().any(|a| a.starts_with("--config.file")) {
        return spawn_ember_as_is(dir, extra);
    }
    let empty = empty_config_file();
    let flag = format!("--config.file={}", empty.display());
    let mut args = vec![flag.as_str()];
    args.extend_from_slice(extra);
    spawn_ember_as_is(dir, &args)
}

/// An empty `prometheus.yml` shared by the tests (written once, atomically).
fn empty_config_file() -> std::path::PathBuf {
    let path = std::env::temp_dir().join("ember-tests-empty-prometheus.yml");
    if !path.exists() {
        // Named per thread too: tests of one binary run in parallel, and a rename by one would
        // leave another's rename without its source.
        let tmp = std::env::temp_dir().join(format!(
            "ember-tests-empty-prometheus.yml.{}.{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::write(&tmp, "").unwrap();
        std::fs::rename(&tmp, &path).unwrap();
    }
    path
}

/// Starts `ember` with exactly `extra` (no configuration added) and waits until it is ready.
pub fn start_ember_as_is(dir: &Path, extra: &[&str]) -> (Proc, u16) {
    let (proc, port) = spawn_ember_as_is(dir, extra);
    wait_ready(port, "ember");
    (proc, port)
}

/// [`spawn_ember`] without the added empty configuration.
pub fn spawn_ember_as_is(dir: &Path, extra: &[&str]) -> (Proc, u16) {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_ember"))
        .arg("--web.listen-address=127.0.0.1:0")
        .arg(format!("--storage.tsdb.path={}", dir.display()))
        .args(extra)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let proc = Proc(Some(child));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if !sent && let Some(addr) = line.split("address=").nth(1) {
                let port = addr
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .rsplit(':')
                    .next()
                    .unwrap_or("")
                    .parse::<u16>();
                if let Ok(port) = port {
                    tx.send(port).ok();
                    sent = true;
                }
            }
            // Keep draining so the child never blocks on a full pipe.
        }
    });
    let port = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("ember did not report its listen address");
    (proc, port)
}

/// Whether Debian's `prometheus`/`promtool` binary `bin` is installed; without it the test fails unless
/// EMBER_SKIP_PEER_TESTS=1, and then says it skipped.
pub fn peer_available(bin: &str) -> bool {
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

/// One series to remote-write: its labels (any order; sorted before sending, as the protocol requires)
/// and its (timestamp in ms, value) samples.
pub type WriteSeries = (Vec<(String, String)>, Vec<(i64, f64)>);

/// Remote-writes `series` to `port` with protocol 1.0 (snappy-compressed protobuf), as Prometheus'
/// remote-write queue sends it; status and body of the answer.
pub fn remote_write_v1(port: u16, series: &[WriteSeries]) -> (u16, String) {
    use ember_server::remote_write::proto::{Label, Sample, TimeSeries, WriteRequest};
    use prost::Message;
    let req = WriteRequest {
        timeseries: series
            .iter()
            .map(|(labels, samples)| {
                let mut labels = labels.clone();
                labels.sort();
                TimeSeries {
                    labels: labels
                        .into_iter()
                        .map(|(n, v)| Label {
                            name: n.into_bytes(),
                            value: v.into_bytes(),
                        })
                        .collect(),
                    samples: samples
                        .iter()
                        .map(|&(timestamp, value)| Sample { value, timestamp })
                        .collect(),
                    ..Default::default()
                }
            })
            .collect(),
        metadata: vec![],
    };
    let body = snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .unwrap();
    let mut r = agent()
        .post(format!("http://127.0.0.1:{port}/api/v1/write"))
        .header("Content-Type", "application/x-protobuf")
        .header("Content-Encoding", "snappy")
        .header("X-Prometheus-Remote-Write-Version", "0.1.0")
        .send(&body[..])
        .expect("remote write request");
    let code = r.status().as_u16();
    (code, r.body_mut().read_to_string().unwrap_or_default())
}

/// Starts Debian's `prometheus` on 127.0.0.1 with `config_yaml`, its data under `dir`, and `extra`
/// flags; waits until it is ready. The port is picked free and then handed to Prometheus, so another
/// process can take it in between: a Prometheus that exits before it is ready is retried on a new port.
pub fn start_prometheus(dir: &Path, config_yaml: &str, extra: &[&str]) -> (Proc, u16) {
    let cfg = dir.join("prometheus.yml");
    std::fs::write(&cfg, config_yaml).unwrap();
    for _attempt in 0..3 {
        let port = free_port();
        let mut proc = Proc::spawn(
            Command::new("prometheus")
                .arg(format!("--config.file={}", cfg.display()))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.join("data").display()
                ))
                .args(extra)
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        );
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(60) {
            if get(port, "/-/ready").is_some_and(|(c, _)| c == 200) {
                return (proc, port);
            }
            if proc.0.as_mut().unwrap().try_wait().unwrap().is_some() {
                break; // most likely lost the port: try another
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    panic!("prometheus did not become ready (3 attempts)");
}

/// Whether `python3` can import `module`. Same convention as [`peer_available`]: without it the test
/// fails unless EMBER_SKIP_PEER_TESTS=1, and then says it skipped.
pub fn python_module_available(module: &str) -> bool {
    let ok = Command::new("python3")
        .arg("-c")
        .arg(format!("import {module}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return true;
    }
    assert_eq!(
        std::env::var("EMBER_SKIP_PEER_TESTS").as_deref(),
        Ok("1"),
        "python3 cannot import {module}: `pip install` it (.ci/run does) or set EMBER_SKIP_PEER_TESTS=1 to skip"
    );
    eprintln!("SKIPPED: python3 module {module} not installed");
    false
}
