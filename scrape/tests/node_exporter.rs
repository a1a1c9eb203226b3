//! Parses the real output of Debian's `prometheus-node-exporter`: every line
//! must parse, and the parser must find one sample per sample line.
//!
//! Fails when the exporter is not installed unless EMBER_SKIP_PEER_TESTS=1 (then skipped with a message)
//! (`apt-get install -y prometheus-node-exporter`).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ember_scrape::textparse::{self, Entry, Format};

const BINARY: &str = "prometheus-node-exporter";

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A bare HTTP/1.0 GET: (content type, body).
fn get(port: u16, accept: &str) -> std::io::Result<(String, Vec<u8>)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    write!(
        s,
        "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\nAccept: {accept}\r\n\r\n"
    )?;
    let mut resp = Vec::new();
    s.read_to_end(&mut resp)?;
    let split = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("HTTP header end");
    let head = String::from_utf8_lossy(&resp[..split]).to_string();
    assert!(
        head.starts_with("HTTP/1.") && head.contains(" 200 "),
        "{head}"
    );
    let ct = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-type")
                .then(|| v.trim().to_string())
        })
        .unwrap_or_default();
    Ok((ct, resp[split + 4..].to_vec()))
}

fn check(ct: &str, body: &[u8]) -> usize {
    let mut samples = 0;
    for item in textparse::parse(ct, body) {
        match item {
            Ok(Entry::Sample(s)) => {
                s.to_labels().unwrap();
                samples += 1;
            }
            Ok(_) => {}
            Err(e) => panic!("node exporter output does not parse: {e}"),
        }
    }
    let text = String::from_utf8(body.to_vec()).unwrap();
    let lines = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .count();
    let created = if Format::from_content_type(ct) == Some(Format::OpenMetrics) {
        // `_created` lines of counters, histograms and summaries are skipped.
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter(|l| {
                l.split(['{', ' '])
                    .next()
                    .is_some_and(|n| n.ends_with("_created"))
            })
            .count()
    } else {
        0
    };
    assert_eq!(samples, lines - created, "samples vs sample lines");
    samples
}

#[test]
fn every_line_of_node_exporter_output_parses() {
    let port = free_port();
    let child = match Command::new(BINARY)
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(c) => KillOnDrop(c),
        Err(e) => {
            // The project's peer-test rule: a missing peer fails the test unless skipping is asked for.
            assert_eq!(
                std::env::var("EMBER_SKIP_PEER_TESTS").as_deref(),
                Ok("1"),
                "{BINARY} cannot start ({e}): install Debian's prometheus-node-exporter \
                 (or set EMBER_SKIP_PEER_TESTS=1 to skip)"
            );
            eprintln!("SKIPPED: {BINARY} not installed");
            return;
        }
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let (ct, body) = loop {
        match get(port, "text/plain") {
            Ok(r) => break r,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("node exporter did not answer: {e}"),
        }
    };
    let n = check(&ct, &body);
    assert!(n > 100, "only {n} samples");
    // Newer exporters negotiate OpenMetrics; Debian's may not.
    let (ct, body) = get(
        port,
        "application/openmetrics-text;version=1.0.0,text/plain;q=0.5",
    )
    .unwrap();
    check(&ct, &body);
    drop(child);
}
