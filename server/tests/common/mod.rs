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

/// SIGTERM, then waits (bounded) and requires a clean exit.
pub fn stop(mut child: Child, what: &str) {
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
    panic!("{what} did not stop within 60 s of SIGTERM");
}

/// Starts `ember` on a free loopback port over `dir` with `extra` flags and waits until it is ready.
pub fn start_ember(dir: &Path, extra: &[&str]) -> (Child, u16) {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_ember"))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg(format!("--storage.tsdb.path={}", dir.display()))
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_ready(port, "ember");
    (child, port)
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
