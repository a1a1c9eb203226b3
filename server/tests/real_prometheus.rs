//! Ember next to a real Prometheus (Debian's `prometheus`, installed by `.ci/run`), both on 127.0.0.1:
//! Prometheus scrapes itself and Ember every second and remote-writes everything into Ember. After both are
//! stopped gracefully (Prometheus flushes its remote-write queue on shutdown), every series and every
//! sample that Prometheus' own API returns for the last minute is in Ember's data directory, bit for bit.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};

use common::{free_port, stop};
use std::time::{Duration, Instant};

fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("timed out after {limit:?} waiting for {what}");
}

fn parse_value(s: &str) -> f64 {
    match s {
        "NaN" => f64::NAN,
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        s => s.parse().unwrap(),
    }
}

type SeriesSamples = BTreeMap<String, Vec<(i64, f64)>>;

/// Every series of the last minute as Prometheus answers `{__name__=~".+"}[1m]` at time `at`.
fn prometheus_samples(port: u16, at: f64) -> SeriesSamples {
    let url = format!("/api/v1/query?query=%7B__name__%3D~%22.%2B%22%7D%5B1m%5D&time={at}");
    let (code, body) = common::get(port, &url).expect("query Prometheus");
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let mut out = BTreeMap::new();
    for s in v["data"]["result"].as_array().unwrap() {
        let pairs: Vec<(String, String)> = s["metric"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
            .collect();
        let labels = ember::Labels::from_pairs(pairs).unwrap().to_string();
        let samples = s["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    (p[0].as_f64().unwrap() * 1000.0).round() as i64,
                    parse_value(p[1].as_str().unwrap()),
                )
            })
            .collect();
        out.insert(labels, samples);
    }
    out
}

fn ember_samples(dir: &Path, mint: i64, maxt: i64) -> SeriesSamples {
    let db = ember::Db::open(dir, ember::Options::default()).unwrap();
    let out = db
        .querier(mint, maxt)
        .select(&[])
        .into_iter()
        .map(|s| (s.labels().to_string(), s.samples().unwrap()))
        .collect();
    db.close().unwrap();
    out
}

#[test]
fn samples_remote_written_by_prometheus_equal_what_prometheus_stores() {
    if !common::peer_available("prometheus") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let prom_port = free_port();
    let ember_dir = tmp.path().join("ember");
    let (ember, ember_port) =
        common::start_ember(&ember_dir, &["--web.enable-remote-write-receiver"]);
    let config = format!(
        r#"global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: prometheus
    static_configs: [{{targets: ["127.0.0.1:{prom_port}"]}}]
  - job_name: ember
    static_configs: [{{targets: ["127.0.0.1:{ember_port}"]}}]
remote_write:
  - url: http://127.0.0.1:{ember_port}/api/v1/write
    queue_config: {{batch_send_deadline: 500ms, max_samples_per_send: 500}}
"#
    );
    let cfg = tmp.path().join("prometheus.yml");
    std::fs::write(&cfg, config).unwrap();
    let prom = common::Proc::spawn(
        Command::new("prometheus")
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .arg(format!(
                "--storage.tsdb.path={}",
                tmp.path().join("prom").display()
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    wait_until("Prometheus to be ready", Duration::from_secs(60), || {
        common::get(prom_port, "/-/ready").is_some_and(|(c, _)| c == 200)
    });
    // Let a few scrapes of both targets happen and reach Ember.
    wait_until(
        "samples to arrive in Ember",
        Duration::from_secs(60),
        || {
            common::get(ember_port, "/metrics").is_some_and(|(_, body)| {
                body.lines()
                    .find(|l| l.starts_with("ember_remote_write_samples_written_total"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|v| v.parse::<f64>().ok())
                    .is_some_and(|n| n > 5_000.0)
            })
        },
    );
    std::thread::sleep(Duration::from_secs(3));
    let at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        - 2.0;
    let theirs = prometheus_samples(prom_port, at);
    stop(prom, "prometheus");
    stop(ember, "ember");

    let at_ms = (at * 1000.0) as i64;
    let ours = ember_samples(&ember_dir, at_ms - 60_000 + 1, at_ms);
    assert!(
        theirs.len() > 100,
        "Prometheus returned only {} series",
        theirs.len()
    );
    assert!(
        theirs.keys().any(|k| k.contains("job=\"ember\"")),
        "Ember's own metrics were scraped"
    );
    let mut compared = 0;
    for (series, samples) in &theirs {
        let got = ours
            .get(series)
            .unwrap_or_else(|| panic!("series {series} missing in Ember"));
        assert_eq!(got.len(), samples.len(), "{series}: sample count");
        for (a, b) in got.iter().zip(samples) {
            assert_eq!(a.0, b.0, "{series}: timestamps");
            assert!(
                a.1.to_bits() == b.1.to_bits() || (a.1.is_nan() && b.1.is_nan()),
                "{series} at {}: {} vs {}",
                a.0,
                a.1,
                b.1
            );
            compared += 1;
        }
    }
    eprintln!("{} series, {compared} samples identical", theirs.len());
}

/// Starts Debian's Prometheus with `config` on `port`, its data under `dir`.
fn start_prometheus(dir: &Path, port: u16, config: &str) -> common::Proc {
    let cfg = dir.join(format!("prometheus-{port}.yml"));
    std::fs::write(&cfg, config).unwrap();
    let prom = common::Proc::spawn(
        Command::new("prometheus")
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join(format!("prom-{port}")).display()
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    wait_until("Prometheus to be ready", Duration::from_secs(60), || {
        common::get(port, "/-/ready").is_some_and(|(c, _)| c == 200)
    });
    prom
}

/// A second Prometheus federates from Ember (`/federate?match[]={job="prometheus"}`, honouring labels
/// and timestamps) while a first one remote-writes into Ember: every sample the federating Prometheus
/// stored is a sample Ember holds, at the same timestamp with the same value, and it federated every
/// series Ember holds for that job.
#[test]
fn prometheus_federating_from_ember_stores_embers_samples() {
    if !common::peer_available("prometheus") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let ember_dir = tmp.path().join("ember");
    let (ember, ember_port) =
        common::start_ember(&ember_dir, &["--web.enable-remote-write-receiver"]);
    let source_port = free_port();
    let source = start_prometheus(
        tmp.path(),
        source_port,
        &format!(
            r#"global: {{scrape_interval: 1s}}
scrape_configs:
  - job_name: prometheus
    static_configs: [{{targets: ["127.0.0.1:{source_port}"]}}]
remote_write:
  - url: http://127.0.0.1:{ember_port}/api/v1/write
    queue_config: {{batch_send_deadline: 500ms}}
"#
        ),
    );
    let fed_port = free_port();
    let federating = start_prometheus(
        tmp.path(),
        fed_port,
        &format!(
            r#"global: {{scrape_interval: 1s}}
scrape_configs:
  - job_name: federate
    honor_labels: true
    metrics_path: /federate
    params: {{'match[]': ['{{job="prometheus"}}']}}
    static_configs: [{{targets: ["127.0.0.1:{ember_port}"]}}]
"#
        ),
    );
    // Wait until the federating Prometheus has stored a good number of federated series.
    let query = "/api/v1/query?query=count(%7Bjob%3D%22prometheus%22%7D)";
    wait_until("federated series", Duration::from_secs(60), || {
        common::get(fed_port, query).is_some_and(|(c, body)| {
            c == 200
                && serde_json::from_str::<serde_json::Value>(&body)
                    .ok()
                    .is_some_and(|v| {
                        v["data"]["result"][0]["value"][1]
                            .as_str()
                            .and_then(|s| s.parse::<f64>().ok())
                            .is_some_and(|n| n > 100.0)
                    })
        })
    });
    std::thread::sleep(Duration::from_secs(4));
    let at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let federated: SeriesSamples = prometheus_samples(fed_port, at)
        .into_iter()
        .filter(|(k, _)| k.contains("job=\"prometheus\""))
        .collect();
    stop(federating, "federating prometheus");
    stop(source, "source prometheus");
    stop(ember, "ember");

    let at_ms = (at * 1000.0) as i64;
    let ours: SeriesSamples = ember_samples(&ember_dir, at_ms - 120_000, at_ms)
        .into_iter()
        .filter(|(k, _)| k.contains("job=\"prometheus\""))
        .collect();
    assert!(
        federated.len() > 100,
        "only {} series federated",
        federated.len()
    );
    let mut compared = 0;
    for (series, samples) in &federated {
        let held = ours
            .get(series)
            .unwrap_or_else(|| panic!("federated series {series} is not in Ember"));
        for (t, v) in samples {
            let mine = held
                .iter()
                .find(|(ht, _)| ht == t)
                .unwrap_or_else(|| panic!("{series}: federated sample at {t} is not in Ember"));
            assert!(
                mine.1.to_bits() == v.to_bits() || (mine.1.is_nan() && v.is_nan()),
                "{series} at {t}: Ember {} vs federated {v}",
                mine.1
            );
            compared += 1;
        }
    }
    // Every series Ember held at the last federation scrape was federated: series that were still
    // receiving samples in the last 5 s before the federating Prometheus stopped.
    let recent = at_ms - 5_000;
    let live: Vec<&String> = ours
        .iter()
        .filter(|(_, s)| {
            s.iter().any(|(t, _)| *t < recent - 2_000) && s.iter().any(|(t, _)| *t >= recent)
        })
        .map(|(k, _)| k)
        .collect();
    let missing: Vec<&&String> = live
        .iter()
        .filter(|k| !federated.contains_key(**k))
        .collect();
    assert!(
        missing.is_empty(),
        "{} live series not federated, e.g. {:?}",
        missing.len(),
        missing.first()
    );
    eprintln!(
        "{} series federated, {compared} samples identical to Ember's",
        federated.len()
    );
}
