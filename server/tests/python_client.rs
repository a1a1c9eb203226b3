//! Ember queried by a real client library: Python's `prometheus_api_client` (installed by `.ci/run`
//! with pip). Data is remote-written into Ember, then a script run by `python3` calls
//! `PrometheusConnect`'s `all_metrics`, `get_current_metric_value`, `custom_query`, `custom_query_range`
//! and `get_metric_range_data` against it, with GET and with POST, and prints what it got as JSON; every
//! value must equal what the test computes from the samples it wrote.

mod common;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};

use common::WriteSeries;
use serde_json::{Value, json};

/// The client's calls; reads the URL, method and times from argv, prints one JSON object.
const SCRIPT: &str = r#"
import json, sys
from datetime import datetime, timedelta, timezone
from prometheus_api_client import PrometheusConnect

url, method, now = sys.argv[1], sys.argv[2], int(sys.argv[3])
at = lambda s: datetime.fromtimestamp(s, tz=timezone.utc)
prom = PrometheusConnect(url=url, method=method)
out = {
    "check_prometheus_connection": prom.check_prometheus_connection(),
    "all_metrics": prom.all_metrics(),
    "current": prom.get_current_metric_value("py_temperature", {"room": "hall"}),
    "current_at": prom.get_current_metric_value(
        "py_requests_total", {"job": "api"}, params={"time": now - 60}
    ),
    "custom_query": prom.custom_query(
        "sum by (job) (py_requests_total)", params={"time": now - 60}
    ),
    "custom_query_range": prom.custom_query_range(
        "py_temperature", start_time=at(now - 240), end_time=at(now - 30), step="15"
    ),
    "range_data": prom.get_metric_range_data(
        "py_requests_total",
        label_config={"code": "500"},
        start_time=at(now - 200),
        end_time=at(now - 20),
        chunk_size=timedelta(seconds=60),
    ),
}
print(json.dumps(out))
"#;

/// Prometheus' default lookback delta.
const LOOKBACK_MS: i64 = 300_000;

/// The series written: labels and samples every 15 s, half a second past the second (so no sample sits
/// on an evaluation time or a range edge), the newest 15 s before `now_s`.
fn dataset(now_s: i64) -> Vec<WriteSeries> {
    let ts = |i: i64| (now_s - 300 + 15 * i) * 1000 + 500;
    let series = |labels: &[(&str, &str)], f: fn(i64) -> f64| -> WriteSeries {
        (
            labels
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            (0..20).map(|i| (ts(i), f(i))).collect(),
        )
    };
    vec![
        series(
            &[
                ("__name__", "py_requests_total"),
                ("job", "api"),
                ("code", "200"),
            ],
            |i| 10.5 * i as f64,
        ),
        series(
            &[
                ("__name__", "py_requests_total"),
                ("job", "api"),
                ("code", "500"),
            ],
            |i| i as f64,
        ),
        series(&[("__name__", "py_temperature"), ("room", "hall")], |i| {
            20.0 + 0.25 * i as f64
        }),
        series(
            &[("__name__", "py_temperature"), ("room", "kitchen")],
            |i| 18.0 - 0.5 * i as f64,
        ),
    ]
}

/// The labels of a series as the API returns them (`metric`).
fn metric(labels: &[(String, String)]) -> Value {
    Value::Object(
        labels
            .iter()
            .map(|(n, v)| (n.clone(), Value::String(v.clone())))
            .collect(),
    )
}

fn label<'a>(s: &'a WriteSeries, name: &str) -> &'a str {
    s.0.iter().find(|(n, _)| n == name).map_or("", |(_, v)| v)
}

/// The value an instant selector sees at `t_ms`: the newest sample at or before it, within the lookback.
fn value_at(samples: &[(i64, f64)], t_ms: i64) -> Option<f64> {
    samples
        .iter()
        .rev()
        .find(|(t, _)| *t <= t_ms && *t > t_ms - LOOKBACK_MS)
        .map(|(_, v)| *v)
}

/// Prometheus' JSON number for a timestamp in milliseconds.
fn ts_json(ms: i64) -> Value {
    json!(ms as f64 / 1000.0)
}

/// A sample value as Prometheus writes it (the values here are all short decimals).
fn v_json(v: f64) -> Value {
    Value::String(format!("{v}"))
}

/// Sorts a list of results by their labels: the API promises no order for instant vectors.
fn by_metric(v: &Value) -> Vec<Value> {
    let mut r = v
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .clone();
    r.sort_by_key(|s| s["metric"].to_string());
    r
}

/// `v` with every number as a float: Python writes back the integer timestamps Prometheus' codec
/// writes without a fraction as integers, and the expected values here are built as floats.
fn floats(v: Value) -> Value {
    match v {
        Value::Number(n) => json!(n.as_f64().unwrap()),
        Value::Array(a) => Value::Array(a.into_iter().map(floats).collect()),
        Value::Object(o) => Value::Object(o.into_iter().map(|(k, v)| (k, floats(v))).collect()),
        v => v,
    }
}

fn run_script(script: &std::path::Path, url: &str, method: &str, now_s: i64) -> Value {
    let out = Command::new("python3")
        .arg(script)
        .args([url, method, &now_s.to_string()])
        .stdin(Stdio::null())
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "python client ({method}) failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "python client printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    floats(v)
}

#[test]
fn prometheus_api_client_reads_back_what_was_written() {
    if !common::python_module_available("prometheus_api_client") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (ember, port) = common::start_ember(
        &tmp.path().join("ember"),
        &["--web.enable-remote-write-receiver"],
    );
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let data = dataset(now_s);
    let (code, body) = common::remote_write_v1(port, &data);
    assert_eq!(code, 204, "remote write: {body}");
    let script = tmp.path().join("client.py");
    std::fs::write(&script, SCRIPT).unwrap();
    let url = format!("http://127.0.0.1:{port}");

    let named = |name: &'static str| data.iter().filter(move |s| label(s, "__name__") == name);
    let at = |t_ms: i64, series: &mut dyn Iterator<Item = &WriteSeries>| -> Vec<Value> {
        let mut out: Vec<Value> = series
            .filter_map(|s| {
                value_at(&s.1, t_ms)
                    .map(|v| json!({"metric": metric(&s.0), "value": [ts_json(t_ms), v_json(v)]}))
            })
            .collect();
        out.sort_by_key(|s| s["metric"].to_string());
        out
    };
    let t = (now_s - 60) * 1000;
    let expect_current_at = at(t, &mut named("py_requests_total"));
    let mut sums: BTreeMap<&str, f64> = BTreeMap::new();
    for s in named("py_requests_total") {
        *sums.entry(label(s, "job")).or_default() += value_at(&s.1, t).unwrap();
    }
    let expect_sum: Vec<Value> = sums
        .iter()
        .map(|(job, v)| json!({"metric": {"job": job}, "value": [ts_json(t), v_json(*v)]}))
        .collect();
    let hall = named("py_temperature")
        .find(|s| label(s, "room") == "hall")
        .unwrap();
    let expect_range: Vec<Value> = {
        let mut out: Vec<Value> = named("py_temperature")
            .map(|s| {
                let values: Vec<Value> = (0..)
                    .map(|k| (now_s - 240 + 15 * k) * 1000)
                    .take_while(|&t| t <= (now_s - 30) * 1000)
                    .filter_map(|t| value_at(&s.1, t).map(|v| json!([ts_json(t), v_json(v)])))
                    .collect();
                json!({"metric": metric(&s.0), "values": values})
            })
            .collect();
        out.sort_by_key(|s| s["metric"].to_string());
        out
    };
    // get_metric_range_data asks for `selector[60s]` at the end of each 60 s chunk and concatenates the
    // raw samples: together, every sample in (start, end].
    let errors = named("py_requests_total")
        .find(|s| label(s, "code") == "500")
        .unwrap();
    let expect_raw: Vec<Value> = errors
        .1
        .iter()
        .filter(|(t, _)| *t > (now_s - 200) * 1000 && *t <= (now_s - 20) * 1000)
        .map(|&(t, v)| json!([ts_json(t), v_json(v)]))
        .collect();

    assert!(
        expect_range
            .iter()
            .all(|s| s["values"].as_array().unwrap().len() == 15)
    );
    assert_eq!(expect_raw.len(), 12);
    for method in ["GET", "POST"] {
        let got = run_script(&script, &url, method, now_s);
        // TODO(/tmp/envelope-bugs.md, bug 8): Ember answers `/` with 404, so this is false; Prometheus
        // redirects to its UI. The client only uses it as a health check, so it is reported, not asserted.
        if got["check_prometheus_connection"] != true {
            eprintln!(
                "known difference ({method}): check_prometheus_connection() is false (GET / is 404)"
            );
        }
        assert_eq!(
            got["all_metrics"],
            json!(["py_requests_total", "py_temperature"]),
            "{method}"
        );
        // No time given: evaluated at the server's now, which is after the newest sample (15 s before
        // `now_s`) and within the lookback.
        let current = by_metric(&got["current"]);
        assert_eq!(current.len(), 1, "{method}: {current:?}");
        assert_eq!(current[0]["metric"], metric(&hall.0), "{method}");
        assert_eq!(
            current[0]["value"][1],
            v_json(hall.1.last().unwrap().1),
            "{method}"
        );
        let evaluated = current[0]["value"][0].as_f64().unwrap();
        assert!(
            (now_s as f64..now_s as f64 + 120.0).contains(&evaluated),
            "{method}: evaluated at {evaluated}, test started at {now_s}"
        );
        assert_eq!(by_metric(&got["current_at"]), expect_current_at, "{method}");
        assert_eq!(by_metric(&got["custom_query"]), expect_sum, "{method}");
        assert_eq!(
            by_metric(&got["custom_query_range"]),
            expect_range,
            "{method}"
        );
        let chunks = got["range_data"].as_array().unwrap();
        assert_eq!(chunks.len(), 3, "{method}: one result per 60 s chunk");
        let raw: Vec<Value> = chunks
            .iter()
            .inspect(|c| assert_eq!(c["metric"], metric(&errors.0), "{method}"))
            .flat_map(|c| c["values"].as_array().unwrap().clone())
            .collect();
        assert_eq!(raw, expect_raw, "{method}");
    }
    common::stop(ember, "ember");
}
