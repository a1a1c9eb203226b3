//! Helpers shared by the integration tests that SIGKILL a child process while it writes: a seeded
//! random source whose seed is printed (so a failure can be replayed with `EMBER_CRASH_SEED`), and
//! running one of the test binary's own ignored tests as the child, killing it at a random moment.
//! What the child does and what the parent checks afterwards stay in each test.
#![allow(dead_code)]

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// xorshift64, seeded from `EMBER_CRASH_SEED` or the clock.
pub struct CrashRng {
    seed: u64,
    state: u64,
}

impl CrashRng {
    pub fn from_env() -> Self {
        let seed: u64 = std::env::var("EMBER_CRASH_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
                    | 1
            });
        eprintln!("EMBER_CRASH_SEED={seed}");
        CrashRng { seed, state: seed }
    }

    /// The seed, for messages that say how to replay a failure.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// A number below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        self.state % n
    }
}

/// Runs the ignored test `child_test` of this test binary with `envs` set. The child prints
/// `committed N` after each batch it committed. Once it reported batch `until` (or after 60 s), waits
/// a random moment under 20 ms, SIGKILLs it, and returns the last batch it reported (`None`: none).
pub fn run_and_kill(
    child_test: &str,
    envs: &[(&str, OsString)],
    until: i64,
    rng: &mut CrashRng,
) -> Option<i64> {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        child_test,
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ]);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(n) = line.strip_prefix("committed ") {
                tx.send(n.parse::<i64>().unwrap()).ok();
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = None;
    while last.is_none_or(|l| l < until) && Instant::now() < deadline {
        if let Ok(n) = rx.recv_timeout(Duration::from_millis(100)) {
            last = Some(n);
        }
    }
    std::thread::sleep(Duration::from_micros(rng.below(20_000)));
    child.kill().unwrap();
    child.wait().unwrap();
    reader.join().unwrap();
    rx.try_iter().last().max(last)
}

/// Copies the directory tree `from` into `to`, leaving out `lock` files (a copy is opened by a
/// database of its own, which creates its lock).
pub fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else if e.file_name() != "lock" {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}
