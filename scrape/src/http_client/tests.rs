use std::io::Write;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;
use crate::config::Config;

/// Serves one fixed answer to every request; keeps the last request's text.
async fn server(
    status: &'static str,
    body: Vec<u8>,
    gzip: bool,
) -> (u16, Arc<parking_lot::Mutex<String>>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let last = Arc::new(parking_lot::Mutex::new(String::new()));
    let last2 = last.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 1024];
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(k) => buf.extend_from_slice(&chunk[..k]),
                }
            }
            let req = String::from_utf8_lossy(&buf).to_string();
            let wants_gzip = req.to_lowercase().contains("accept-encoding: gzip");
            *last2.lock() = req;
            let (payload, enc) = if gzip && wants_gzip {
                let mut e =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                e.write_all(&body).unwrap();
                (e.finish().unwrap(), "Content-Encoding: gzip\r\n")
            } else {
                (body.clone(), "")
            };
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\n{enc}Content-Length: {}\r\nConnection: close\r\n\r\n",
                payload.len()
            );
            let _ = s.write_all(head.as_bytes()).await;
            let _ = s.write_all(&payload).await;
        }
    });
    (port, last)
}

fn scrape_config(extra: &str) -> ScrapeConfig {
    let text = format!(
        "scrape_configs:\n- job_name: j\n{extra}  static_configs: [{{targets: ['x:1']}}]\n"
    );
    Config::parse(&text).unwrap().scrape_configs.remove(0)
}

#[tokio::test]
async fn gzip_bodies_are_decompressed_and_the_limit_applies_to_the_decompressed_size() {
    let body = "m 1\n".repeat(1000).into_bytes();
    let (port, last) = server("200 OK", body.clone(), true).await;
    let url = format!("http://127.0.0.1:{port}/metrics");
    let f = Fetcher::new(&scrape_config("")).unwrap();
    let got = f.fetch(&url, StdDuration::from_secs(5)).await.unwrap();
    assert_eq!(got.bytes, body);
    assert!(got.content_type.starts_with("text/plain"));
    let req = last.lock().to_lowercase();
    assert!(req.contains("accept-encoding: gzip"), "{req}");
    assert!(
        req.contains(&format!("accept: {}", ACCEPT_HEADER.to_lowercase())),
        "{req}"
    );
    // 4000 bytes decompressed, far fewer on the wire: the limit is on the former.
    let f = Fetcher::new(&scrape_config("  body_size_limit: 3KB\n")).unwrap();
    let err = f.fetch(&url, StdDuration::from_secs(5)).await.unwrap_err();
    assert!(
        matches!(err, Error::BodySizeLimitExceeded { limit: 3072 }),
        "{err}"
    );
    // enable_compression: false asks for identity.
    let f = Fetcher::new(&scrape_config("  enable_compression: false\n")).unwrap();
    assert_eq!(
        f.fetch(&url, StdDuration::from_secs(5))
            .await
            .unwrap()
            .bytes,
        body
    );
    assert!(
        last.lock()
            .to_lowercase()
            .contains("accept-encoding: identity")
    );
}

#[tokio::test]
async fn credentials_are_sent_and_non_200_fails_with_the_status() {
    let (port, last) = server("503 Service Unavailable", b"down".to_vec(), false).await;
    let url = format!("http://127.0.0.1:{port}/metrics");
    let f = Fetcher::new(&scrape_config("  basic_auth: {username: u, password: p}\n")).unwrap();
    let err = f.fetch(&url, StdDuration::from_secs(5)).await.unwrap_err();
    assert!(
        err.to_string().contains("server returned HTTP status 503"),
        "{err}"
    );
    // base64("u:p")
    assert!(last.lock().contains("dTpw"), "{}", last.lock());
    let f = Fetcher::new(&scrape_config("  authorization: {credentials: tok}\n")).unwrap();
    let _ = f.fetch(&url, StdDuration::from_secs(5)).await;
    assert!(
        last.lock()
            .to_lowercase()
            .contains("authorization: bearer tok")
    );
}

#[tokio::test]
async fn a_silent_target_times_out_with_the_timeout_named() {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    // Accepts and never answers.
    let _keep = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = l.accept().await {
            held.push(s);
        }
    });
    let f = Fetcher::new(&scrape_config("")).unwrap();
    let url = format!("http://127.0.0.1:{port}/metrics");
    let err = f
        .fetch(&url, StdDuration::from_millis(300))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("context deadline exceeded"),
        "{err}"
    );
}

#[test]
fn unreadable_ca_file_fails_naming_the_job_and_file() {
    let e = Fetcher::new(&scrape_config(
        "  tls_config: {ca_file: /nonexistent/ca.pem}\n",
    ))
    .err()
    .unwrap()
    .to_string();
    assert!(
        e.contains("\"j\"") && e.contains("/nonexistent/ca.pem"),
        "{e}"
    );
}

#[test]
fn accept_header_follows_scrape_protocols() {
    let default = scrape_config("");
    assert_eq!(accept_header(&default.scrape_protocols), ACCEPT_HEADER);
    let c = scrape_config("  scrape_protocols: [PrometheusText0.0.4, PrometheusProto]\n");
    assert_eq!(
        accept_header(&c.scrape_protocols),
        "text/plain;version=0.0.4;q=0.6,*/*;q=0.5"
    );
}

#[test]
fn content_type_falls_back_only_when_configured() {
    assert_eq!(
        resolve_content_type("text/plain; version=0.0.4", None).unwrap(),
        "text/plain; version=0.0.4"
    );
    let e = resolve_content_type("", None).unwrap_err().to_string();
    assert!(e.contains("blank Content-Type"), "{e}");
    let e = resolve_content_type("application/json", None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("application/json"), "{e}");
    assert_eq!(
        resolve_content_type("application/json", Some("OpenMetricsText1.0.0")).unwrap(),
        "application/openmetrics-text;version=1.0.0"
    );
}
