//! End to end: the real `ember` binary scrapes Debian's `prometheus-node-exporter` and itself, follows
//! reloads by SIGHUP and `/-/reload`, refuses a bad configuration while keeping the running one, and
//! shows its targets, configuration and external labels through the HTTP API.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Proc, get, start_ember, start_ember_as_is, stop};
use serde_json::Value;

const NODE_EXPORTER: &str = "prometheus-node-exporter";

/// Starts node_exporter on 127.0.0.1 (a free port, retried if another process takes it first) with
/// only a few cheap collectors.
fn start_node_exporter() -> Option<(Proc, u16)> {
    if !common::peer_available(NODE_EXPORTER) {
        return None;
    }
    for _ in 0..3 {
        let port = common::free_port();
        let mut p = Proc::spawn(
            Command::new(NODE_EXPORTER)
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--collector.disable-defaults")
                .arg("--collector.cpu")
                .arg("--collector.loadavg")
                .arg("--collector.meminfo")
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        );
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(20) {
            if get(port, "/metrics").is_some_and(|(c, _)| c == 200) {
                return Some((p, port));
            }
            if p.try_exited() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    panic!("node_exporter did not start (3 attempts)");
}

fn write_config(path: &Path, text: &str) {
    // Written whole then renamed, so a reload never reads half a file.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn node_config(jobs: &[(&str, u16)]) -> String {
    let mut s = String::from(
        "global:\n  scrape_interval: 1s\n  external_labels: {site: lab}\nscrape_configs:\n",
    );
    for (job, port) in jobs {
        s.push_str(&format!(
            "  - job_name: {job}\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
        ));
    }
    s
}

fn api(port: u16, path: &str) -> Value {
    let (code, body) = get(port, path).expect("ember answers");
    assert_eq!(code, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

/// The result vector of an instant query.
fn query(port: u16, q: &str) -> Vec<Value> {
    let enc: String = form_urlencoded::byte_serialize(q.as_bytes()).collect();
    let v = api(port, &format!("/api/v1/query?query={enc}"));
    v["data"]["result"].as_array().cloned().unwrap_or_default()
}

fn wait_for(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(secs) {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("timed out after {secs} s waiting for {what}");
}

fn active_jobs(port: u16) -> Vec<String> {
    let v = api(port, "/api/v1/targets?state=active");
    let mut jobs: Vec<String> = v["data"]["activeTargets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["scrapePool"].as_str().unwrap().to_string())
        .collect();
    jobs.sort();
    jobs
}

fn post(port: u16, path: &str) -> (u16, String) {
    let mut r = common::agent()
        .post(format!("http://127.0.0.1:{port}{path}"))
        .send_empty()
        .expect("ember answers");
    (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
}

fn up_value(port: u16, job: &str) -> Option<String> {
    query(port, &format!("up{{job=\"{job}\"}}"))
        .first()
        .map(|s| s["value"][1].as_str().unwrap().to_string())
}

#[test]
fn node_exporter_is_scraped_and_shown_as_a_target() {
    let Some((_ne, ne_port)) = start_node_exporter() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("prometheus.yml");
    write_config(&cfg, &node_config(&[("node", ne_port)]));
    let flag = format!("--config.file={}", cfg.display());
    let (ember, port) = start_ember(&dir.path().join("data"), &[&flag]);

    wait_for("up{job=node} = 1", 30, || {
        up_value(port, "node").as_deref() == Some("1")
    });
    wait_for("node_exporter series", 30, || {
        !query(port, "node_load1{job=\"node\"}").is_empty()
    });
    let cpu = query(port, "node_cpu_seconds_total");
    assert!(!cpu.is_empty(), "cpu series stored");
    let m = &cpu[0]["metric"];
    assert_eq!(m["instance"], format!("127.0.0.1:{ne_port}"));
    assert_eq!(m["job"], "node");
    for name in [
        "scrape_duration_seconds",
        "scrape_samples_scraped",
        "scrape_samples_post_metric_relabeling",
        "scrape_series_added",
    ] {
        assert!(
            !query(port, &format!("{name}{{job=\"node\"}}")).is_empty(),
            "{name} reported"
        );
    }
    let scraped = query(port, "scrape_samples_scraped{job=\"node\"}");
    let n: f64 = scraped[0]["value"][1].as_str().unwrap().parse().unwrap();
    assert!(n > 10.0, "node_exporter exposes many samples, got {n}");

    let t = api(port, "/api/v1/targets");
    let active = t["data"]["activeTargets"].as_array().unwrap();
    assert_eq!(active.len(), 1);
    let a = &active[0];
    assert_eq!(a["scrapePool"], "node");
    assert_eq!(
        a["scrapeUrl"],
        format!("http://127.0.0.1:{ne_port}/metrics")
    );
    assert_eq!(a["health"], "up");
    assert_eq!(a["lastError"], "");
    assert_eq!(a["scrapeInterval"], "1s");
    assert_eq!(a["scrapeTimeout"], "1s");
    assert_eq!(a["labels"]["job"], "node");
    assert_eq!(
        a["discoveredLabels"]["__address__"],
        format!("127.0.0.1:{ne_port}")
    );
    assert!(a["lastScrape"].as_str().unwrap().starts_with("20"));
    assert!(a["lastScrapeDuration"].as_f64().unwrap() > 0.0);
    assert_eq!(t["data"]["droppedTargets"], serde_json::json!([]));

    let md = api(port, "/api/v1/targets/metadata?metric=node_load1");
    let md = md["data"].as_array().unwrap();
    assert_eq!(md.len(), 1);
    assert_eq!(md[0]["type"], "gauge");
    assert_eq!(md[0]["target"]["job"], "node");

    // The loaded file is what /status/config shows; external labels reach /federate.
    let c = api(port, "/api/v1/status/config");
    assert_eq!(
        c["data"]["yaml"].as_str().unwrap(),
        std::fs::read_to_string(&cfg).unwrap()
    );
    let (code, fed) = get(port, "/federate?match[]=node_load1").unwrap();
    assert_eq!(code, 200);
    let line = fed.lines().find(|l| l.starts_with("node_load1{")).unwrap();
    assert!(line.contains("site=\"lab\""), "{line}");
    assert!(line.contains("job=\"node\""), "{line}");
    stop(ember, "ember");
}

#[test]
fn reloads_by_sighup_and_http_change_targets_and_a_bad_config_keeps_the_old_ones() {
    let Some((_ne, ne_port)) = start_node_exporter() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("prometheus.yml");
    write_config(&cfg, &node_config(&[("node", ne_port)]));
    let flag = format!("--config.file={}", cfg.display());
    let (ember, port) = start_ember(&dir.path().join("data"), &[&flag, "--web.enable-lifecycle"]);
    wait_for("job node up", 30, || {
        up_value(port, "node").as_deref() == Some("1")
    });

    // SIGHUP: a second job appears.
    write_config(&cfg, &node_config(&[("node", ne_port), ("node2", ne_port)]));
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(ember.id() as i32, libc::SIGHUP) };
    wait_for("node2 target after SIGHUP", 20, || {
        active_jobs(port) == vec!["node", "node2"]
    });
    assert_eq!(
        api(port, "/api/v1/scrape_pools")["data"]["scrapePools"],
        serde_json::json!(["node", "node2"])
    );
    wait_for("job node2 up", 30, || {
        up_value(port, "node2").as_deref() == Some("1")
    });

    // /-/reload: the first job goes away and its series end (stale marker) at once.
    write_config(&cfg, &node_config(&[("node2", ne_port)]));
    let (code, body) = post(port, "/-/reload");
    assert_eq!(code, 200, "{body}");
    assert_eq!(active_jobs(port), vec!["node2"]);
    wait_for("job node marked stale", 20, || {
        up_value(port, "node").is_none()
    });
    assert!(query(port, "node_load1{job=\"node\"}").is_empty());

    // A bad file: 500 naming the problem, the old targets stay, the gauge says so.
    write_config(
        &cfg,
        "scrape_configs:\n  - job_name: broken\n    scrape_interval: often\n",
    );
    let (code, body) = post(port, "/-/reload");
    assert_eq!(code, 500, "{body}");
    assert!(body.contains("often"), "{body}");
    assert_eq!(active_jobs(port), vec!["node2"]);
    let (_, metrics) = get(port, "/metrics").unwrap();
    assert!(
        metrics.contains("prometheus_config_last_reload_successful 0"),
        "{metrics}"
    );
    assert!(metrics.contains("prometheus_config_last_reload_success_timestamp_seconds "));
    assert!(metrics.contains("prometheus_target_scrapes_exceeded_sample_limit_total 0"));
    let c = api(port, "/api/v1/status/config");
    assert!(c["data"]["yaml"].as_str().unwrap().contains("node2"));
    // Scraping goes on under the old configuration.
    wait_for("node2 still scraped", 20, || {
        up_value(port, "node2").as_deref() == Some("1")
    });

    // Fixed again: the gauge recovers.
    write_config(&cfg, &node_config(&[("node2", ne_port)]));
    assert_eq!(post(port, "/-/reload").0, 200);
    let (_, metrics) = get(port, "/metrics").unwrap();
    assert!(metrics.contains("prometheus_config_last_reload_successful 1"));

    // /-/quit stops the server cleanly.
    let (code, _) = post(port, "/-/quit");
    assert_eq!(code, 200);
    let mut ember = ember;
    assert!(
        ember
            .wait_exit(Duration::from_secs(30))
            .is_some_and(|s| s.success())
    );
}

#[test]
fn lifecycle_endpoints_are_refused_without_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let (ember, port) = start_ember(dir.path(), &[]);
    let (code, body) = post(port, "/-/reload");
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("Lifecycle API is not enabled"));
    assert_eq!(post(port, "/-/quit").0, 403);
    stop(ember, "ember");
}

#[test]
fn a_bad_config_file_stops_startup_naming_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.yml");
    std::fs::write(
        &cfg,
        "scrape_configs:\n  - job_name: x\n    bogus_field: 1\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ember"))
        .arg("--web.listen-address=127.0.0.1:0")
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--config.file={}", cfg.display()))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.yml") && err.contains("bogus_field"),
        "{err}"
    );
}

#[test]
fn ember_without_a_config_scrapes_itself() {
    let dir = tempfile::tempdir().unwrap();
    let (ember, port) = start_ember_as_is(dir.path(), &[]);
    let t = api(port, "/api/v1/targets");
    let active = t["data"]["activeTargets"].as_array().unwrap();
    assert_eq!(active.len(), 1);
    assert_eq!(active[0]["scrapePool"], "ember");
    assert_eq!(
        active[0]["scrapeUrl"],
        format!("http://127.0.0.1:{port}/metrics")
    );
    assert_eq!(active[0]["scrapeInterval"], "15s");
    // The first scrape comes within one interval (15 s) of start, at the target's offset.
    wait_for("up{job=ember} = 1", 40, || {
        up_value(port, "ember").as_deref() == Some("1")
    });
    assert!(!query(port, "prometheus_tsdb_head_series{job=\"ember\"}").is_empty());
    let c = api(port, "/api/v1/status/config");
    assert!(
        c["data"]["yaml"]
            .as_str()
            .unwrap()
            .contains(&format!("127.0.0.1:{port}"))
    );
    stop(ember, "ember");
}

#[test]
fn dropped_targets_and_state_filters_follow_prometheus() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("prometheus.yml");
    // Nothing listens on port 1: the kept target is down with its error shown.
    write_config(
        &cfg,
        "scrape_configs:\n  - job_name: mixed\n    scrape_interval: 1s\n    static_configs:\n      \
         - targets: ['127.0.0.1:1', 'skip.invalid:1']\n    relabel_configs:\n      \
         - {source_labels: [__address__], regex: 'skip.*', action: drop}\n",
    );
    let flag = format!("--config.file={}", cfg.display());
    let (ember, port) = start_ember(&dir.path().join("data"), &[&flag]);
    let all = api(port, "/api/v1/targets");
    let dropped = all["data"]["droppedTargets"].as_array().unwrap();
    assert_eq!(dropped.len(), 1);
    assert_eq!(dropped[0]["scrapePool"], "mixed");
    assert_eq!(
        dropped[0]["discoveredLabels"]["__address__"],
        "skip.invalid:1"
    );
    assert_eq!(dropped[0]["discoveredLabels"]["job"], "mixed");
    assert_eq!(all["data"]["droppedTargetCounts"]["mixed"], 1);
    assert_eq!(all["data"]["activeTargets"].as_array().unwrap().len(), 1);

    let only_dropped = api(port, "/api/v1/targets?state=dropped");
    assert_eq!(only_dropped["data"]["activeTargets"], serde_json::json!([]));
    assert_eq!(
        only_dropped["data"]["droppedTargets"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let only_active = api(port, "/api/v1/targets?state=active");
    assert_eq!(only_active["data"]["droppedTargets"], serde_json::json!([]));
    let other_pool = api(port, "/api/v1/targets?scrapePool=nope");
    assert_eq!(other_pool["data"]["activeTargets"], serde_json::json!([]));

    wait_for("target reported down", 20, || {
        let t = api(port, "/api/v1/targets?state=active");
        t["data"]["activeTargets"][0]["health"] == "down"
    });
    let t = api(port, "/api/v1/targets?state=active");
    let err = t["data"]["activeTargets"][0]["lastError"].as_str().unwrap();
    assert!(err.to_lowercase().contains("connect"), "{err}");
    assert_eq!(up_value(port, "mixed").as_deref(), Some("0"));
    stop(ember, "ember");
}

/// The series of `{job="node"}` as sorted label-set strings, with `le`/`quantile` values compared as
/// numbers (Prometheus 2 keeps them as exposed, Ember writes them in float form as Prometheus 3 does).
fn series_set(port: u16) -> Vec<String> {
    let v = api(port, "/api/v1/series?match[]=%7Bjob%3D%22node%22%7D");
    let mut out: Vec<String> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let mut pairs: Vec<(String, String)> = s
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| {
                    let v = v.as_str().unwrap().to_string();
                    let v = match (k.as_str(), v.parse::<f64>()) {
                        ("le" | "quantile", Ok(f)) => format!("{f}"),
                        _ => v,
                    };
                    (k.clone(), v)
                })
                .collect();
            pairs.sort();
            format!("{pairs:?}")
        })
        .collect();
    out.sort();
    out
}

#[test]
fn ember_stores_the_same_series_as_prometheus_from_the_same_exporter() {
    if !common::peer_available("prometheus") {
        return;
    }
    let Some((_ne, ne_port)) = start_node_exporter() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cfg_text = format!(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: node\n    \
         static_configs:\n      - targets: ['127.0.0.1:{ne_port}']\n        labels: {{team: a}}\n    \
         metric_relabel_configs:\n      - {{source_labels: [__name__], regex: 'go_memstats_.*', action: drop}}\n"
    );
    let prom_dir = dir.path().join("prom");
    std::fs::create_dir(&prom_dir).unwrap();
    let (_prom, prom_port) = common::start_prometheus(&prom_dir, &cfg_text, &[]);
    let cfg = dir.path().join("ember.yml");
    write_config(&cfg, &cfg_text);
    let flag = format!("--config.file={}", cfg.display());
    let (ember, port) = start_ember(&dir.path().join("data"), &[&flag]);
    // A few scrapes each, then both must hold the same series.
    wait_for("both have scraped 3 times", 60, || {
        [port, prom_port].iter().all(|p| {
            query(*p, "count_over_time(up{job=\"node\"}[1m])")
                .first()
                .and_then(|s| s["value"][1].as_str()?.parse::<f64>().ok())
                .is_some_and(|n| n >= 3.0)
        })
    });
    let ours = series_set(port);
    let theirs = series_set(prom_port);
    assert!(ours.len() > 50, "node_exporter series: {}", ours.len());
    let missing: Vec<&String> = theirs.iter().filter(|s| !ours.contains(s)).collect();
    let extra: Vec<&String> = ours.iter().filter(|s| !theirs.contains(s)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "only in Prometheus: {missing:#?}\nonly in Ember: {extra:#?}"
    );
    assert!(ours.iter().any(|s| s.contains("\"team\", \"a\"")));
    assert!(!ours.iter().any(|s| s.contains("go_memstats_")));
    stop(ember, "ember");
}
