//! Prometheus' PromQL HTTP API against the `ember` binary: `/api/v1/query` and `/api/v1/query_range`
//! results byte-for-byte as Prometheus writes them, Prometheus' messages and error types for bad
//! parameters, bad PromQL, timeouts and the sample limit; `/api/v1/series`, `/api/v1/labels` and label
//! values with `match[]`; `/federate`; the endpoints Ember answers empty; and Debian's `promtool query`
//! as a real client.

use std::process::Command;

mod common;

use common::agent;
use ember_server::remote_write::proto::{Label, Sample, TimeSeries, WriteRequest};
use prost::Message;
use serde_json::{Value, json};

/// 2015-07-01T20:10:00Z, in milliseconds: the start of the seeded data.
const T0: i64 = 1_435_781_400_000;

/// A series to write: its labels (sorted by name) and samples.
type SeriesSpec<'a> = (&'a [(&'a str, &'a str)], &'a [(i64, f64)]);
/// Request parameters, in order.
type Params<'a> = Vec<(&'a str, &'a str)>;

struct Ember {
    child: common::Proc,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Ember {
    fn start(extra: &[&str]) -> Ember {
        let dir = tempfile::tempdir().unwrap();
        let mut flags = vec!["--web.enable-remote-write-receiver"];
        flags.extend_from_slice(extra);
        let (child, port) = common::start_ember(dir.path(), &flags);
        Ember {
            child,
            port,
            _dir: dir,
        }
    }

    /// Starts ember and writes the standard data set: two `up` series and a counter, at T0, +15 s, +30 s.
    fn seeded(extra: &[&str]) -> Ember {
        let e = Ember::start(extra);
        e.write(&[
            (
                &[("__name__", "up"), ("instance", "i1"), ("job", "a")],
                &[(T0, 1.0), (T0 + 15_000, 1.0), (T0 + 30_000, 0.0)],
            ),
            (
                &[("__name__", "up"), ("instance", "i2"), ("job", "b")],
                &[(T0, 1.0), (T0 + 15_000, 1.0), (T0 + 30_000, 1.0)],
            ),
            (
                &[
                    ("__name__", "http_requests_total"),
                    ("code", "200"),
                    ("job", "a"),
                ],
                &[(T0, 10.0), (T0 + 15_000, 20.0), (T0 + 30_000, 30.5)],
            ),
        ]);
        e
    }

    /// Remote-writes series given as (labels, samples).
    fn write(&self, series: &[SeriesSpec]) {
        let req = WriteRequest {
            timeseries: series
                .iter()
                .map(|(labels, samples)| TimeSeries {
                    labels: labels
                        .iter()
                        .map(|(n, v)| Label {
                            name: n.as_bytes().to_vec(),
                            value: v.as_bytes().to_vec(),
                        })
                        .collect(),
                    samples: samples
                        .iter()
                        .map(|&(timestamp, value)| Sample { value, timestamp })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
            metadata: vec![],
        };
        let body = snap::raw::Encoder::new()
            .compress_vec(&req.encode_to_vec())
            .unwrap();
        let r = agent()
            .post(format!("http://127.0.0.1:{}/api/v1/write", self.port))
            .header("Content-Type", "application/x-protobuf")
            .header("Content-Encoding", "snappy")
            .send(&body[..])
            .unwrap();
        assert_eq!(r.status(), 204, "remote write failed");
    }

    fn url(&self, path_and_query: &str) -> String {
        format!("http://127.0.0.1:{}{path_and_query}", self.port)
    }

    /// GET with `params` URL-encoded; status and body text.
    fn get(&self, path: &str, params: &[(&str, &str)]) -> (u16, String) {
        let mut req = agent().get(self.url(path));
        for (k, v) in params {
            req = req.query(*k, *v);
        }
        let mut r = req.call().unwrap();
        (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
    }

    fn get_json(&self, path: &str, params: &[(&str, &str)]) -> (u16, Value) {
        let (code, body) = self.get(path, params);
        let v = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
        (code, v)
    }

    /// POST `params` as an `application/x-www-form-urlencoded` body.
    fn post_form(&self, path: &str, params: &[(&str, &str)]) -> (u16, String) {
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params)
            .finish();
        let mut r = agent()
            .post(self.url(path))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .send(body.as_bytes())
            .unwrap();
        (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
    }

    fn stop(self) {
        common::stop(self.child, "ember");
    }
}

fn secs(ms: i64) -> String {
    format!("{}", ms as f64 / 1000.0)
}

#[test]
fn instant_query_returns_a_vector_as_prometheus_writes_it() {
    let e = Ember::seeded(&[]);
    let (code, body) = e.get(
        "/api/v1/query",
        &[("query", "up"), ("time", &secs(T0 + 30_000))],
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        body,
        r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"up","instance":"i1","job":"a"},"value":[1435781430,"0"]},{"metric":{"__name__":"up","instance":"i2","job":"b"},"value":[1435781430,"1"]}]}}"#
    );
    // RFC 3339 time, and the parameters in a form body: the same answer.
    let (code, posted) = e.post_form(
        "/api/v1/query",
        &[("query", "up"), ("time", "2015-07-01T20:10:30Z")],
    );
    assert_eq!(code, 200);
    assert_eq!(posted, body);
    // Milliseconds are kept as Prometheus writes them.
    let (_, v) = e.get_json(
        "/api/v1/query",
        &[("query", "sum(up)"), ("time", "1435781451.781")],
    );
    assert_eq!(
        v["data"]["result"],
        json!([{"metric": {}, "value": [1435781451.781, "1"]}])
    );
    e.stop();
}

#[test]
fn limit_truncates_a_vector_and_warns() {
    let e = Ember::seeded(&[]);
    let (code, v) = e.get_json(
        "/api/v1/query",
        &[("query", "up"), ("time", &secs(T0)), ("limit", "1")],
    );
    assert_eq!(code, 200);
    assert_eq!(v["data"]["result"].as_array().unwrap().len(), 1);
    assert_eq!(v["warnings"], json!(["results truncated due to limit"]));
    e.stop();
}

#[test]
fn range_query_returns_a_matrix_as_prometheus_writes_it() {
    let e = Ember::seeded(&[]);
    let (code, body) = e.get(
        "/api/v1/query_range",
        &[
            ("query", r#"up{job="a"}"#),
            ("start", &secs(T0)),
            ("end", &secs(T0 + 30_000)),
            ("step", "15s"),
        ],
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        body,
        r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"__name__":"up","instance":"i1","job":"a"},"values":[[1435781400,"1"],[1435781415,"1"],[1435781430,"0"]]}]}}"#
    );
    // A fractional step: timestamps keep their milliseconds as `.500`.
    let (_, v) = e.get(
        "/api/v1/query_range",
        &[
            ("query", "http_requests_total"),
            ("start", "2015-07-01T20:10:00Z"),
            ("end", &secs(T0 + 15_000)),
            ("step", "7.5"),
        ],
    );
    assert!(
        v.contains(r#""values":[[1435781400,"10"],[1435781407.500,"10"],[1435781415,"20"]]"#),
        "{v}"
    );
    e.stop();
}

#[test]
fn stats_parameter_adds_sample_counts_and_timings() {
    let e = Ember::seeded(&[]);
    let range = |stats: &str| {
        e.get_json(
            "/api/v1/query_range",
            &[
                ("query", "up"),
                ("start", &secs(T0)),
                ("end", &secs(T0 + 30_000)),
                ("step", "15s"),
                ("stats", stats),
            ],
        )
    };
    // Without the parameter: no stats object.
    let (_, plain) = range("");
    assert_eq!(plain["data"].get("stats"), None);
    // `all`: two series at three steps, one sample each, and the counts per step.
    let (code, v) = range("all");
    assert_eq!(code, 200, "{v}");
    let stats = &v["data"]["stats"];
    assert_eq!(stats["samples"]["totalQueryableSamples"], json!(6));
    assert_eq!(stats["samples"]["samplesRead"], json!(6));
    assert_eq!(
        stats["samples"]["totalQueryableSamplesPerStep"],
        json!([[1435781400, 2], [1435781415, 2], [1435781430, 2]])
    );
    assert!(stats["samples"]["peakSamples"].as_u64().unwrap() >= 6);
    for t in [
        "evalTotalTime",
        "resultSortTime",
        "queryPreparationTime",
        "innerEvalTime",
        "execQueueTime",
        "execTotalTime",
    ] {
        let secs = stats["timings"][t].as_f64().unwrap_or(-1.0);
        assert!((0.0..60.0).contains(&secs), "{t}: {stats}");
    }
    // `true`: totals only; the result itself is unchanged.
    let (_, v) = range("true");
    assert_eq!(v["data"]["result"], plain["data"]["result"]);
    assert_eq!(
        v["data"]["stats"]["samples"].get("totalQueryableSamplesPerStep"),
        None
    );
    // Other values work as `true` with 3.x's deprecation warning.
    let (_, v) = range("1");
    assert_eq!(
        v["data"]["stats"]["samples"]["totalQueryableSamples"],
        json!(6)
    );
    assert_eq!(
        v["warnings"],
        json!([
            "value \"1\" for parameter \"stats\" is deprecated and will be rejected in the next major release, use \"true\" or \"all\""
        ])
    );
    e.stop();
}

#[test]
fn scalar_and_string_results_have_prometheus_shapes() {
    let e = Ember::start(&[]);
    let cases = [
        ("1.5", r#"[1435781451.781,"1.5"]"#),
        ("1/0", r#"[1435781451.781,"+Inf"]"#),
        ("-1/0", r#"[1435781451.781,"-Inf"]"#),
        ("0/0", r#"[1435781451.781,"NaN"]"#),
        (
            "1e30",
            r#"[1435781451.781,"1000000000000000000000000000000"]"#,
        ),
    ];
    for (q, result) in cases {
        let (code, body) = e.get("/api/v1/query", &[("query", q), ("time", "1435781451.781")]);
        assert_eq!(code, 200, "{q}: {body}");
        assert_eq!(
            body,
            format!(r#"{{"status":"success","data":{{"resultType":"scalar","result":{result}}}}}"#),
            "{q}"
        );
    }
    let (_, body) = e.get("/api/v1/query", &[("query", r#""a<b""#), ("time", "10.5")]);
    assert_eq!(
        body,
        r#"{"status":"success","data":{"resultType":"string","result":[10.5,"a\u003cb"]}}"#
    );
    // A scalar over a range is a matrix with one unlabelled series.
    let (_, v) = e.get_json(
        "/api/v1/query_range",
        &[
            ("query", "vector(1)"),
            ("start", "0"),
            ("end", "20"),
            ("step", "10"),
        ],
    );
    assert_eq!(
        v["data"],
        json!({"resultType": "matrix", "result": [{"metric": {}, "values": [[0, "1"], [10, "1"], [20, "1"]]}]})
    );
    e.stop();
}

#[test]
fn bad_parameters_are_bad_data_with_prometheus_messages() {
    let e = Ember::seeded(&[]);
    let range = |extra: &[(&'static str, &'static str)]| {
        let mut p = vec![("query", "up"), ("start", "1"), ("end", "2"), ("step", "1")];
        for (k, v) in extra {
            p.retain(|(pk, _)| pk != k);
            p.push((*k, *v));
        }
        p
    };
    // (path, parameters, message)
    let cases: Vec<(&str, Params, &str)> = vec![
        (
            "/api/v1/query",
            vec![("query", "up"), ("time", "x")],
            r#"invalid parameter "time": invalid time value for 'time': cannot parse "x" to a valid timestamp"#,
        ),
        (
            "/api/v1/query",
            vec![("query", "up"), ("limit", "x")],
            r#"invalid parameter "limit": strconv.Atoi: parsing "x": invalid syntax"#,
        ),
        (
            "/api/v1/query",
            vec![("query", "up"), ("limit", "-1")],
            r#"invalid parameter "limit": limit must be non-negative"#,
        ),
        (
            "/api/v1/query",
            vec![("query", "up"), ("timeout", "x")],
            r#"invalid parameter "timeout": cannot parse "x" to a valid duration"#,
        ),
        (
            "/api/v1/query",
            vec![("query", "up"), ("lookback_delta", "x")],
            r#"error parsing lookback delta duration: cannot parse "x" to a valid duration"#,
        ),
        (
            "/api/v1/query_range",
            range(&[("start", "x")]),
            r#"invalid parameter "start": cannot parse "x" to a valid timestamp"#,
        ),
        (
            "/api/v1/query_range",
            range(&[("end", "x")]),
            r#"invalid parameter "end": cannot parse "x" to a valid timestamp"#,
        ),
        (
            "/api/v1/query_range",
            range(&[("end", "0")]),
            r#"invalid parameter "end": end timestamp must not be before start time"#,
        ),
        (
            "/api/v1/query_range",
            range(&[("step", "x")]),
            r#"invalid parameter "step": cannot parse "x" to a valid duration"#,
        ),
        (
            "/api/v1/query_range",
            vec![("query", "up"), ("start", "1"), ("end", "2")],
            r#"invalid parameter "step": cannot parse "" to a valid duration"#,
        ),
        (
            "/api/v1/query_range",
            range(&[("step", "0")]),
            r#"invalid parameter "step": zero or negative query resolution step widths are not accepted. Try a positive integer"#,
        ),
        (
            "/api/v1/query_range",
            range(&[("step", "1e10")]),
            r#"invalid parameter "step": cannot parse "1e10" to a valid duration. It overflows int64"#,
        ),
        (
            "/api/v1/query_range",
            range(&[("start", "0"), ("end", "100000")]),
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
        ),
        (
            "/api/v1/query_range",
            range(&[("query", "up[5m]")]),
            r#"invalid parameter "query": invalid expression type "range vector" for range query, must be Scalar or instant Vector"#,
        ),
        ("/api/v1/series", vec![], "no match[] parameter provided"),
        (
            "/api/v1/series",
            vec![("match[]", r#"{a=""}"#)],
            r#"invalid parameter "match[]": match[] must contain at least one non-empty matcher"#,
        ),
        (
            "/api/v1/series",
            vec![("match[]", "up"), ("start", "x")],
            r#"invalid parameter "start": invalid time value for 'start': cannot parse "x" to a valid timestamp"#,
        ),
        (
            "/api/v1/labels",
            vec![("end", "x")],
            r#"invalid parameter "end": invalid time value for 'end': cannot parse "x" to a valid timestamp"#,
        ),
    ];
    for (path, params, want) in cases {
        let (code, v) = e.get_json(path, &params);
        assert_eq!(
            (code, &v),
            (
                400,
                &json!({"status": "error", "errorType": "bad_data", "error": want})
            ),
            "{path} {params:?}"
        );
    }
    e.stop();
}

#[test]
fn bad_promql_is_bad_data_with_a_position() {
    let e = Ember::start(&[]);
    for (q, want) in [
        (
            "up(",
            r#"invalid parameter "query": 1:4: parse error: unclosed left parenthesis"#,
        ),
        (
            "sum(up",
            r#"invalid parameter "query": 1:7: parse error: unclosed left parenthesis"#,
        ),
        (
            "rate(up)",
            r#"invalid parameter "query": 1:6: parse error: expected type range vector in call to function "rate", got instant vector"#,
        ),
    ] {
        for path in [
            "/api/v1/query",
            "/api/v1/format_query",
            "/api/v1/parse_query",
        ] {
            let (code, v) = e.get_json(path, &[("query", q)]);
            assert_eq!(code, 400, "{path} {q}");
            assert_eq!(v["errorType"], "bad_data");
            assert_eq!(v["error"], want, "{path} {q}");
        }
    }
    let (code, v) = e.get_json(
        "/api/v1/query_range",
        &[
            ("query", "up +"),
            ("start", "0"),
            ("end", "1"),
            ("step", "1"),
        ],
    );
    assert_eq!(code, 400);
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .starts_with(r#"invalid parameter "query": 1:5: parse error: "#),
        "{v}"
    );
    e.stop();
}

/// Writes 200 `load` series of 200 samples from T0 on: enough that evaluating 10,000 steps over them
/// takes tens of milliseconds or more.
fn seed_load(e: &Ember) {
    let samples: Vec<(i64, f64)> = (0..200).map(|i| (T0 + i * 15_000, i as f64)).collect();
    let names: Vec<String> = (0..200).map(|i| format!("s{i}")).collect();
    let labels: Vec<[(&str, &str); 2]> = names
        .iter()
        .map(|n| [("__name__", "load"), ("series", n.as_str())])
        .collect();
    let series: Vec<SeriesSpec> = labels.iter().map(|l| (&l[..], &samples[..])).collect();
    e.write(&series);
}

#[test]
fn timeout_gives_the_timeout_error_type() {
    let e = Ember::start(&[]);
    seed_load(&e);
    let range = |timeout: Option<&'static str>| {
        let mut p = vec![
            ("query", "sum(rate(load[5m]))"),
            ("start", "1435781400"),
            ("end", "1435784400"),
            ("step", "0.3"),
        ];
        p.extend(timeout.map(|t| ("timeout", t)));
        p
    };
    let started = std::time::Instant::now();
    let (code, _) = e.get("/api/v1/query_range", &range(None));
    assert_eq!(code, 200);
    eprintln!("untimed query took {:?}", started.elapsed());
    // A zero timeout expires before evaluation starts; a 1 ms one during evaluation.
    for (timeout, want) in [
        ("0", "query timed out in query execution"),
        ("1ms", "query timed out in expression evaluation"),
    ] {
        let (code, v) = e.get_json("/api/v1/query_range", &range(Some(timeout)));
        assert_eq!(
            (code, v),
            (
                503,
                json!({"status": "error", "errorType": "timeout", "error": want})
            ),
            "timeout={timeout}"
        );
    }
    e.stop();
}

/// A range query over the `load` data that takes about a second. Window sorts (quantiles, median
/// absolute deviation) over 200-sample windows at 10,000 steps: work no engine shortcut removes.
const SLOW_QUERY: &str = "sum(quantile_over_time(0.5, load[50m])) + sum(mad_over_time(load[50m])) \
     + sum(quantile_over_time(0.9, load[49m]))";

fn slow_range_params() -> Params<'static> {
    vec![
        ("query", SLOW_QUERY),
        ("start", "1435781400"),
        ("end", "1435784400"),
        ("step", "0.3"),
    ]
}

#[test]
fn queries_beyond_max_concurrency_wait_and_can_time_out_in_the_queue() {
    let e = Ember::start(&["--query.max-concurrency=1"]);
    seed_load(&e);
    let port = e.port;
    let slow = std::thread::spawn(move || {
        let started = std::time::Instant::now();
        let mut req = agent().get(format!("http://127.0.0.1:{port}/api/v1/query_range"));
        for (k, v) in slow_range_params() {
            req = req.query(k, v);
        }
        let code = req.call().unwrap().status().as_u16();
        (code, started.elapsed())
    });
    // Time for the slow query to take the only slot, even on a busy machine.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let (code, v) = e.get_json(
        "/api/v1/query",
        &[("query", "vector(1)"), ("time", "0"), ("timeout", "200ms")],
    );
    let (slow_code, slow_took) = slow.join().unwrap();
    assert_eq!(slow_code, 200);
    assert!(
        slow_took.as_millis() > 500,
        "the slow query took only {slow_took:?}"
    );
    assert_eq!(
        (code, v),
        (
            503,
            json!({"status": "error", "errorType": "timeout", "error": "query timed out in query queue"})
        )
    );
    // With the slot free again, the same query runs.
    let (code, _) = e.get(
        "/api/v1/query",
        &[("query", "vector(1)"), ("timeout", "100ms")],
    );
    assert_eq!(code, 200);
    e.stop();
}

#[test]
fn a_client_that_goes_away_cancels_its_query() {
    let e = Ember::start(&["--query.max-concurrency=1"]);
    seed_load(&e);
    let started = std::time::Instant::now();
    let (code, _) = e.get("/api/v1/query_range", &slow_range_params());
    assert_eq!(code, 200);
    let full = started.elapsed();
    // The same query from a client that gives up after 100 ms.
    let impatient: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(std::time::Duration::from_millis(100)))
        .build()
        .into();
    let mut req = impatient.get(e.url("/api/v1/query_range"));
    for (k, v) in slow_range_params() {
        req = req.query(k, v);
    }
    assert!(req.call().is_err(), "the query should outlast the client");
    // The only slot is free again long before the abandoned query would have finished.
    let started = std::time::Instant::now();
    let (code, v) = e.get_json("/api/v1/query", &[("query", "vector(1)"), ("time", "0")]);
    let waited = started.elapsed();
    assert_eq!(code, 200, "{v}");
    assert!(
        waited < full / 2,
        "waited {waited:?} for the slot; the full query takes {full:?}"
    );
    e.stop();
}

#[test]
fn max_samples_flag_limits_queries_with_an_execution_error() {
    let e = Ember::seeded(&["--query.max-samples=1"]);
    let (code, v) = e.get_json("/api/v1/query", &[("query", "up"), ("time", &secs(T0))]);
    assert_eq!(code, 422, "{v}");
    assert_eq!(
        v,
        json!({"status": "error", "errorType": "execution",
               "error": "query processing would load too many samples into memory in query execution"})
    );
    let (_, v) = e.get_json("/api/v1/status/flags", &[]);
    assert_eq!(v["data"]["query.max-samples"], "1");
    assert_eq!(v["data"]["query.timeout"], "2m");
    e.stop();
}

#[test]
fn series_selects_by_match_and_unions_sets() {
    let e = Ember::seeded(&[]);
    let (code, v) = e.get_json("/api/v1/series", &[("match[]", r#"up{job="a"}"#)]);
    assert_eq!(code, 200);
    assert_eq!(
        v,
        json!({"status": "success", "data": [{"__name__": "up", "instance": "i1", "job": "a"}]})
    );
    // Two overlapping sets: each series once, in label order.
    let (_, v) = e.get_json(
        "/api/v1/series",
        &[("match[]", r#"{job="a"}"#), ("match[]", "up")],
    );
    assert_eq!(
        v["data"],
        json!([
            {"__name__": "http_requests_total", "code": "200", "job": "a"},
            {"__name__": "up", "instance": "i1", "job": "a"},
            {"__name__": "up", "instance": "i2", "job": "b"},
        ])
    );
    // A time range without samples selects nothing; POST works too.
    let (code, body) = e.post_form(
        "/api/v1/series",
        &[("match[]", "up"), ("start", "0"), ("end", "1000")],
    );
    assert_eq!(
        (code, body.as_str()),
        (200, r#"{"status":"success","data":[]}"#)
    );
    // A selector that is not one.
    let (code, v) = e.get_json("/api/v1/series", &[("match[]", "up+1")]);
    assert_eq!(code, 400);
    assert_eq!(
        v["error"],
        r#"invalid parameter "match[]": 1:3: parse error: unexpected <op:+>"#
    );
    let (_, v) = e.get_json("/api/v1/series", &[("match[]", "up"), ("limit", "1")]);
    assert_eq!(v["data"].as_array().unwrap().len(), 1);
    assert_eq!(v["warnings"], json!(["results truncated due to limit"]));
    e.stop();
}

#[test]
fn labels_and_label_values_filter_by_match() {
    let e = Ember::seeded(&[]);
    let (_, v) = e.get_json("/api/v1/labels", &[]);
    assert_eq!(v["data"], json!(["__name__", "code", "instance", "job"]));
    let (_, v) = e.get_json("/api/v1/labels", &[("match[]", "http_requests_total")]);
    assert_eq!(v["data"], json!(["__name__", "code", "job"]));
    let (_, v) = e.get_json(
        "/api/v1/labels",
        &[
            ("match[]", "http_requests_total"),
            ("match[]", r#"up{job="b"}"#),
        ],
    );
    assert_eq!(v["data"], json!(["__name__", "code", "instance", "job"]));
    let (_, v) = e.get_json(
        "/api/v1/label/job/values",
        &[("match[]", r#"{instance=~"i.*"}"#)],
    );
    assert_eq!(v["data"], json!(["a", "b"]));
    let (_, v) = e.get_json(
        "/api/v1/label/__name__/values",
        &[("match[]", r#"{job="a"}"#)],
    );
    assert_eq!(v["data"], json!(["http_requests_total", "up"]));
    let (_, v) = e.get_json("/api/v1/label/job/values", &[("limit", "1")]);
    assert_eq!(v["data"], json!(["a"]));
    assert_eq!(v["warnings"], json!(["results truncated due to limit"]));
    let (code, v) = e.get_json("/api/v1/label/job/values", &[("match[]", "{}")]);
    assert_eq!(code, 400);
    assert_eq!(
        v["error"],
        "match[] must contain at least one non-empty matcher"
    );
    e.stop();
}

#[test]
fn federate_writes_the_newest_samples_in_text_format() {
    let e = Ember::start(&[]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let (t1, t2) = (now - 60_000, now - 30_000);
    e.write(&[
        (&[("__name__", "up"), ("job", "b")], &[(t1, 1.0), (t2, 0.0)]),
        (
            &[("__name__", "up"), ("instance", "x"), ("job", "a")],
            &[(t1, 1.0)],
        ),
        (
            &[("__name__", "a_metric"), ("path", "/\"q\"\\")],
            &[(t2, 1.5e6)],
        ),
        // Older than the 5 m lookback: not federated.
        (
            &[("__name__", "old"), ("job", "a")],
            &[(now - 600_000, 7.0)],
        ),
    ]);
    let (code, body) = e.get(
        "/federate",
        &[("match[]", "up"), ("match[]", r#"{__name__=~"a_.*|old"}"#)],
    );
    assert_eq!(code, 200);
    assert_eq!(
        body,
        format!(
            "# TYPE a_metric untyped\n\
             a_metric{{path=\"/\\\"q\\\"\\\\\",instance=\"\"}} 1.5e+06 {t2}\n\
             # TYPE up untyped\n\
             up{{instance=\"x\",job=\"a\"}} 1 {t1}\n\
             up{{job=\"b\",instance=\"\"}} 0 {t2}\n"
        )
    );
    let (code, body) = e.get("/federate", &[]);
    assert_eq!((code, body.as_str()), (200, ""));
    let (code, body) = e.get("/federate", &[("match[]", "-up")]);
    assert_eq!(
        (code, body.as_str()),
        (400, "1:1: parse error: unexpected <op:->\n")
    );
    e.stop();
}

#[test]
fn format_and_parse_query_describe_the_expression() {
    let e = Ember::start(&[]);
    let (code, v) = e.get_json("/api/v1/format_query", &[("query", "sum(up)by(job)")]);
    assert_eq!(code, 200);
    assert_eq!(v["data"], "sum by (job) (up)");
    let (code, v) = e.get_json(
        "/api/v1/parse_query",
        &[("query", "up{job=\"a\"} offset 1m")],
    );
    assert_eq!(code, 200);
    assert_eq!(
        v["data"],
        json!({
            "type": "vectorSelector",
            "name": "up",
            "offset": 60000,
            "offsetExpr": null,
            "matchers": [
                {"name": "job", "type": "=", "value": "a"},
                {"name": "__name__", "type": "=", "value": "up"},
            ],
            "timestamp": null,
            "startOrEnd": null,
            "anchored": false,
            "smoothed": false,
        })
    );
    let (_, v) = e.get_json("/api/v1/parse_query", &[("query", "1 + rate(x[5m])")]);
    assert_eq!(v["data"]["type"], "binaryExpr");
    assert_eq!(
        v["data"]["lhs"],
        json!({"type": "numberLiteral", "val": "1"})
    );
    assert_eq!(v["data"]["rhs"]["func"]["argTypes"], json!(["matrix"]));
    assert_eq!(v["data"]["rhs"]["args"][0]["range"], 300000);
    e.stop();
}

#[test]
fn endpoints_without_data_yet_answer_empty_and_unknown_paths_404() {
    let e = Ember::start(&[]);
    let cases = [
        ("/api/v1/metadata", json!({})),
        (
            "/api/v1/targets",
            json!({"activeTargets": [], "droppedTargets": [], "droppedTargetCounts": {}}),
        ),
        ("/api/v1/targets/metadata", json!([])),
        ("/api/v1/rules", json!({"groups": []})),
        ("/api/v1/alerts", json!({"alerts": []})),
        ("/api/v1/status/config", json!({"yaml": ""})),
        ("/api/v1/query_exemplars?query=up", json!([])),
    ];
    for (path, data) in cases {
        let (code, v) = e.get_json(path, &[]);
        assert_eq!(code, 200, "{path}");
        assert_eq!(v, json!({"status": "success", "data": data}), "{path}");
    }
    // Unrouted paths get Go's plain-text 404, inside /api/v1/ too, as from Prometheus' router.
    for path in ["/api/v1/no_such_endpoint", "/no/such/page"] {
        let (code, body) = e.get(path, &[]);
        assert_eq!(
            (code, body.as_str()),
            (404, "404 page not found\n"),
            "{path}"
        );
    }
    e.stop();
}

/// Runs `promtool query <args>` against ember; its stdout.
fn promtool(e: &Ember, args: &[&str]) -> String {
    let url = format!("http://127.0.0.1:{}", e.port);
    let mut cmd = Command::new("promtool");
    cmd.arg("query").arg(args[0]).arg(&url).args(&args[1..]);
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "promtool {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn promtool_queries_ember() {
    if !common::peer_available("promtool") {
        return;
    }
    let e = Ember::seeded(&[]);
    let out = promtool(&e, &["instant", "--time=2015-07-01T20:10:30Z", "up"]);
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            r#"up{instance="i1", job="a"} => 0 @[1435781430]"#,
            r#"up{instance="i2", job="b"} => 1 @[1435781430]"#,
        ]
    );
    let out = promtool(
        &e,
        &[
            "range",
            "--start=2015-07-01T20:10:00Z",
            "--end=2015-07-01T20:10:30Z",
            "--step=15s",
            r#"up{job="a"}"#,
        ],
    );
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            r#"up{instance="i1", job="a"} =>"#,
            "1 @[1435781400]",
            "1 @[1435781415]",
            "0 @[1435781430]",
        ]
    );
    let out = promtool(
        &e,
        &[
            "series",
            "--match=up",
            "--start=2015-07-01T20:00:00Z",
            "--end=2015-07-01T21:00:00Z",
        ],
    );
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            r#"{__name__="up", instance="i1", job="a"}"#,
            r#"{__name__="up", instance="i2", job="b"}"#,
        ]
    );
    e.stop();
}
