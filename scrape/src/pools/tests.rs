use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration as StdDuration, Instant};

use ember::{Db, Matcher};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;
use crate::scrape_loop::{Health, STALE_NAN_BITS};

/// A minimal exporter: answers every GET with `m{path="<path>"} <n>` where
/// n counts its requests, and remembers the headers of the last request.
struct Exporter {
    port: u16,
    requests: Arc<AtomicU64>,
    last_request: Arc<parking_lot::Mutex<String>>,
}

async fn exporter() -> Exporter {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let requests = Arc::new(AtomicU64::new(0));
    let last_request = Arc::new(parking_lot::Mutex::new(String::new()));
    let (r2, l2) = (requests.clone(), last_request.clone());
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            let n = r2.fetch_add(1, Ordering::SeqCst) + 1;
            let last = l2.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(k) => buf.extend_from_slice(&chunk[..k]),
                    }
                }
                let req = String::from_utf8_lossy(&buf).to_string();
                let path = req.split_whitespace().nth(1).unwrap_or("/").to_string();
                *last.lock() = req;
                let body = format!("# TYPE m gauge\nm{{path=\"{path}\"}} {n}\n");
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(resp.as_bytes()).await;
            });
        }
    });
    Exporter {
        port,
        requests,
        last_request,
    }
}

fn config(text: &str) -> Config {
    Config::parse(text).unwrap()
}

fn open() -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), ember::Options::default()).unwrap();
    (dir, db)
}

/// Waits (bounded) until `f` holds.
async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < StdDuration::from_secs(20) {
        if f() {
            return;
        }
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

fn values(db: &Db, name: &str, job: &str) -> Vec<u64> {
    db.querier(i64::MIN, i64::MAX)
        .select(&[Matcher::equal("__name__", name), Matcher::equal("job", job)])
        .iter()
        .flat_map(|s| s.samples().unwrap())
        .map(|(_, v)| v.to_bits())
        .collect()
}

/// The loop of a one-target job; holding the `Arc` keeps its address from
/// being reused, so pointer equality means "the same loop".
fn the_loop(p: &ScrapePools, job: &str) -> Arc<LoopSpec> {
    let st = p.state.lock();
    let loops = &st.pools[job].loops;
    assert_eq!(loops.len(), 1);
    loops.values().next().unwrap().spec.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_keeps_unchanged_loops_restarts_changed_and_stales_removed() {
    let (_d, db) = open();
    let e = exporter().await;
    let port = e.port;
    let pools = ScrapePools::new(db.clone());
    let base = format!(
        "global: {{scrape_interval: 1s}}\nscrape_configs:\n\
         - job_name: a\n  metrics_path: /a\n  static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n\
         - job_name: b\n  metrics_path: /b\n  static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n"
    );
    pools.apply_config(&config(&base)).unwrap();
    eventually("job a scraped", || {
        values(&db, "up", "a").first() == Some(&1f64.to_bits())
    })
    .await;
    eventually("job b scraped", || !values(&db, "m", "b").is_empty()).await;
    let a_before = the_loop(&pools, "a");
    let b_before = the_loop(&pools, "b");
    let snap = pools.snapshot();
    assert_eq!(snap.active.len(), 2);
    let t = snap.active.iter().find(|t| t.pool == "a").unwrap();
    assert_eq!(t.url, format!("http://127.0.0.1:{port}/a"));
    assert_eq!(t.labels.get("job"), Some("a"));
    assert!(t.labels.get("__address__").is_none());
    assert_eq!(
        t.discovered.get("__address__"),
        Some(format!("127.0.0.1:{port}").as_str())
    );
    assert_eq!(t.interval, "1s");
    eventually("health known", || {
        pools
            .snapshot()
            .active
            .iter()
            .all(|t| t.status.health == Health::Up)
    })
    .await;

    // Same a, b with a new label (changed config), c new.
    let next = format!(
        "global: {{scrape_interval: 1s}}\nscrape_configs:\n\
         - job_name: a\n  metrics_path: /a\n  static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n\
         - job_name: b\n  metrics_path: /b\n  honor_labels: true\n  static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n\
         - job_name: c\n  metrics_path: /c\n  static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n"
    );
    pools.apply_config(&config(&next)).unwrap();
    assert!(
        Arc::ptr_eq(&the_loop(&pools, "a"), &a_before),
        "unchanged job keeps its loop"
    );
    assert!(
        !Arc::ptr_eq(&the_loop(&pools, "b"), &b_before),
        "changed job gets a new loop"
    );
    eventually("job c scraped", || !values(&db, "m", "c").is_empty()).await;

    // Dropping job a writes stale markers for its series and report series.
    let only_c = format!(
        "global: {{scrape_interval: 1s}}\nscrape_configs:\n\
         - job_name: c\n  metrics_path: /c\n  static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n"
    );
    pools.apply_config(&config(&only_c)).unwrap();
    eventually("stale markers for a", || {
        values(&db, "m", "a").last() == Some(&STALE_NAN_BITS)
            && values(&db, "up", "a").last() == Some(&STALE_NAN_BITS)
    })
    .await;
    let snap = pools.snapshot();
    assert_eq!(snap.active.len(), 1);
    assert_eq!(snap.active[0].pool, "c");
    // The exporter saw Prometheus' headers.
    let req = e.last_request.lock().to_lowercase();
    assert!(
        req.contains("accept: application/openmetrics-text;version=1.0.0"),
        "{req}"
    );
    assert!(
        req.contains("x-prometheus-scrape-timeout-seconds: 1"),
        "{req}"
    );
    assert!(e.requests.load(Ordering::SeqCst) >= 3);
    pools.stop().await;
    assert_eq!(pools.sizes(), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_target_is_down_with_the_error_and_relabel_drops_are_listed() {
    let (_d, db) = open();
    // A port nothing listens on.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = dead.local_addr().unwrap().port();
    drop(dead);
    let pools = ScrapePools::new(db.clone());
    let cfg = format!(
        "global: {{scrape_interval: 1s}}\nscrape_configs:\n\
         - job_name: x\n  static_configs: [{{targets: ['127.0.0.1:{port}', 'drop.me:1']}}]\n  \
         relabel_configs: [{{source_labels: [__address__], regex: 'drop.*', action: drop}}]\n\
         - job_name: k8s\n  kubernetes_sd_configs: [{{role: pod}}]\n"
    );
    pools.apply_config(&config(&cfg)).unwrap();
    assert_eq!(pools.unsupported_sd_configs(), 1);
    eventually("target down", || {
        pools
            .snapshot()
            .active
            .first()
            .is_some_and(|t| t.status.health == Health::Down)
    })
    .await;
    let snap = pools.snapshot();
    let t = &snap.active[0];
    assert!(
        t.status.last_error.contains("onnect"),
        "{}",
        t.status.last_error
    );
    assert_eq!(snap.dropped.len(), 1);
    assert_eq!(
        snap.dropped[0].discovered.get("__address__"),
        Some("drop.me:1")
    );
    assert_eq!(snap.dropped_counts["x"], 1);
    assert_eq!(values(&db, "up", "x"), vec![0f64.to_bits()]);
    pools.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_client_setting_fails_the_apply_and_keeps_running_pools() {
    let (_d, db) = open();
    let pools = ScrapePools::new(db.clone());
    pools
        .apply_config(&config(
            "scrape_configs:\n- job_name: a\n  static_configs: [{targets: ['127.0.0.1:1']}]\n",
        ))
        .unwrap();
    let bad = "scrape_configs:\n- job_name: b\n  tls_config: {ca_file: /nonexistent/ca.pem}\n  static_configs: [{targets: ['127.0.0.1:1']}]\n";
    let err = pools.apply_config(&config(bad)).unwrap_err().to_string();
    assert!(err.contains("ca_file") && err.contains("\"b\""), "{err}");
    let snap = pools.snapshot();
    assert_eq!(snap.active.len(), 1);
    assert_eq!(snap.active[0].pool, "a");
    pools.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_discovery_adds_and_removes_targets_as_the_file_changes() {
    let (_d, db) = open();
    let e = exporter().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("targets.json");
    std::fs::write(&file, "[]").unwrap();
    let pools = ScrapePools::new(db.clone());
    let cfg = format!(
        "global: {{scrape_interval: 1s}}\nscrape_configs:\n\
         - job_name: f\n  file_sd_configs: [{{files: ['{}']}}]\n",
        file.display()
    );
    pools.apply_config(&config(&cfg)).unwrap();
    assert_eq!(pools.snapshot().active.len(), 0);
    std::fs::write(
        &file,
        format!(
            r#"[{{"targets": ["127.0.0.1:{}"], "labels": {{"team": "x"}}}}]"#,
            e.port
        ),
    )
    .unwrap();
    eventually("file target scraped", || !values(&db, "m", "f").is_empty()).await;
    let snap = pools.snapshot();
    assert_eq!(snap.active[0].labels.get("team"), Some("x"));
    assert!(snap.active[0].discovered.get("__meta_filepath").is_some());
    std::fs::write(&file, "[]").unwrap();
    eventually("file target removed and stale", || {
        pools.snapshot().active.is_empty() && values(&db, "m", "f").last() == Some(&STALE_NAN_BITS)
    })
    .await;
    pools.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_limit_fails_every_scrape_of_the_job_until_targets_fit() {
    let (_d, db) = open();
    let e = exporter().await;
    let port = e.port;
    let pools = ScrapePools::new(db.clone());
    let cfg = |limit: u32| {
        format!(
            "global: {{scrape_interval: 1s}}\nscrape_configs:\n\
             - job_name: t\n  target_limit: {limit}\n  static_configs: [{{targets: ['127.0.0.1:{port}', 'localhost:{port}']}}]\n"
        )
    };
    pools.apply_config(&config(&cfg(1))).unwrap();
    eventually("both targets down", || {
        let s = pools.snapshot();
        s.active.len() == 2 && s.active.iter().all(|t| t.status.health == Health::Down)
    })
    .await;
    let s = pools.snapshot();
    assert!(
        s.active[0]
            .status
            .last_error
            .contains("target_limit exceeded (number of targets: 2, limit: 1)"),
        "{}",
        s.active[0].status.last_error
    );
    assert_eq!(e.requests.load(Ordering::SeqCst), 0, "nothing scraped");
    pools.apply_config(&config(&cfg(2))).unwrap();
    eventually("both targets up", || {
        pools
            .snapshot()
            .active
            .iter()
            .all(|t| t.status.health == Health::Up)
    })
    .await;
    pools.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rapid_reloads_while_scraping_end_in_the_last_configuration() {
    let (_d, db) = open();
    let e = exporter().await;
    let port = e.port;
    let pools = ScrapePools::new(db.clone());
    let cfg = |jobs: &[&str], honor: bool| {
        let mut s = String::from("global: {scrape_interval: 100ms}\nscrape_configs:\n");
        for j in jobs {
            s.push_str(&format!(
                "- job_name: {j}\n  honor_labels: {honor}\n  metrics_path: /{j}\n  static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n"
            ));
        }
        config(&s)
    };
    let sets: [&[&str]; 4] = [&["a", "b"], &["b", "c"], &["a", "b", "c"], &["c"]];
    for i in 0..40 {
        pools
            .apply_config(&cfg(sets[i % sets.len()], i % 3 == 0))
            .unwrap();
        tokio::time::sleep(StdDuration::from_millis(15)).await;
    }
    pools.apply_config(&cfg(&["a", "b", "c"], false)).unwrap();
    eventually("b scraped under the settled configuration", || {
        pools
            .snapshot()
            .active
            .iter()
            .any(|t| t.pool == "b" && t.status.health == Health::Up)
    })
    .await;
    pools.apply_config(&cfg(&["a", "c"], false)).unwrap();
    assert_eq!(pools.pool_names(), vec!["a", "c"]);
    eventually("both final jobs up", || {
        let s = pools.snapshot();
        s.active.len() == 2 && s.active.iter().all(|t| t.status.health == Health::Up)
    })
    .await;
    // b was removed last: its series end with a marker.
    eventually("b stale", || {
        values(&db, "up", "b").last() == Some(&STALE_NAN_BITS)
    })
    .await;
    pools.stop().await;
}
