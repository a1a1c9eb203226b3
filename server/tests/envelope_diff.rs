//! Ember next to a real Prometheus 2.42 (Debian's `prometheus`): both are given the same data over
//! remote write 1.0, then the same list of API requests, good and bad, and must answer each with the same
//! HTTP status, the same `status` and `errorType`, the same JSON shape (keys and value types, recursively)
//! and, where Prometheus 2.42 and 3.x agree on the semantics, the same result sets and error text.
//!
//! Ember follows current Prometheus (3.x), so the oracle is one major version behind. Where 2.42 and 3.x
//! differ, the case says so and why, and checks only what both versions share; what Ember says instead is
//! pinned against 3.x's source (`web/api/v1/api.go`, `promql/parser`) where it is a message.
//!
//! Not asked at all, because Prometheus 2.42 lacks them: `/api/v1/parse_query` (added in 3.0; Ember's
//! is covered in `query_api.rs`), and the `limit` (query, series, labels, label values) and
//! `lookback_delta` parameters, both added after 2.42, which ignores them.
//!
//! The data avoids the one query-semantics change between 2.x and 3.x that the results would show:
//! range selectors became left-open in 3.0. Samples sit at `:01.234` past each minute and every
//! evaluation time is a whole minute, so no sample lies on a range's left edge.

mod common;
#[path = "envelope_diff/compare.rs"]
mod compare;
#[path = "envelope_diff/endpoints.rs"]
mod endpoints;
#[path = "envelope_diff/queries.rs"]
mod queries;

use std::fmt::Write as _;

use common::WriteSeries;
use compare::{Check, ask, compare};
use serde_json::Value;

/// Samples per series, one a minute.
const SAMPLES: i64 = 40;
const INTERVAL_MS: i64 = 60_000;
/// How far past each whole minute a sample sits (see the module comment).
const OFFSET_MS: i64 = 1_234;

/// The data set, starting at `base` (a whole minute, 40 minutes ago): counters (one with a reset), gauges,
/// values that exercise Go's float formatting, and a classic histogram.
fn dataset(base: i64) -> Vec<WriteSeries> {
    let ts = |i: i64| base + OFFSET_MS + i * INTERVAL_MS;
    let series = |labels: &[(&str, &str)], f: &dyn Fn(i64) -> f64| -> WriteSeries {
        (
            labels
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            (0..SAMPLES).map(|i| (ts(i), f(i))).collect(),
        )
    };
    let req = |job, instance, code| {
        vec![
            ("__name__", "http_requests_total"),
            ("job", job),
            ("instance", instance),
            ("code", code),
        ]
    };
    let mut out = vec![
        series(&req("api", "a", "200"), &|i| (10 * i + (i * i) % 7) as f64),
        // Resets between the 20th and 21st sample.
        series(&req("api", "a", "500"), &|i| {
            if i < 20 {
                3.0 * i as f64
            } else {
                (i - 20) as f64 + 0.5
            }
        }),
        series(&req("db", "b", "200"), &|i| 7.5 * i as f64),
        series(
            &[("__name__", "temperature_celsius"), ("room", "kitchen")],
            &|i| 18.0 + ((i * 7) % 13) as f64 * 0.5,
        ),
        series(
            &[("__name__", "temperature_celsius"), ("room", "hall")],
            &|i| 21.25 - ((i * 5) % 9) as f64 * 0.25,
        ),
        series(&[("__name__", "odd_values"), ("kind", "tiny")], &|i| {
            1e-7 * (i + 1) as f64
        }),
        series(&[("__name__", "odd_values"), ("kind", "huge")], &|i| {
            1.5e21 * (i + 1) as f64
        }),
        series(&[("__name__", "odd_values"), ("kind", "third")], &|i| {
            i as f64 / 3.0
        }),
        series(&[("__name__", "odd_values"), ("kind", "negative")], &|i| {
            -0.1 * i as f64
        }),
        series(&[("__name__", "odd_values"), ("kind", "nan")], &|i| {
            if i % 5 == 0 { f64::NAN } else { i as f64 }
        }),
    ];
    out.push(series(
        &[
            ("__name__", "odd_labels"),
            ("path", "/a\"b\\c<d>&é\n\u{2028}"),
        ],
        &|i| i as f64,
    ));
    for (le, per_minute) in [("0.1", 2), ("0.5", 5), ("1", 7), ("+Inf", 8)] {
        out.push(series(
            &[
                ("__name__", "request_duration_seconds_bucket"),
                ("job", "api"),
                ("le", le),
            ],
            &move |i| (per_minute * i) as f64,
        ));
    }
    out.push(series(
        &[("__name__", "request_duration_seconds_sum"), ("job", "api")],
        &|i| 3.3 * i as f64,
    ));
    out.push(series(
        &[
            ("__name__", "request_duration_seconds_count"),
            ("job", "api"),
        ],
        &|i| (8 * i) as f64,
    ));
    out
}

/// Request parameters, in order.
type Params = Vec<(&'static str, String)>;

fn params(v: &[(&'static str, &str)]) -> Params {
    v.iter().map(|(k, v)| (*k, v.to_string())).collect()
}

/// Seconds since the epoch for a query parameter, in the float form both servers take.
fn secs(ms: i64) -> String {
    format!("{}", ms as f64 / 1000.0)
}

/// RFC 3339 (UTC, milliseconds) for `ms` since the epoch.
fn rfc3339(ms: i64) -> String {
    let (days, rem) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let (h, mi, s, milli) = (
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000,
    );
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{milli:03}Z")
}

/// The times the requests ask about, for data starting at `base`: `t` (30 minutes in) for instant
/// queries, `start`..`end` (10 to 35 minutes in) for ranges.
struct Times {
    base: i64,
    t: String,
    start: String,
    end: String,
}

impl Times {
    fn new(base: i64) -> Times {
        let min = 60_000;
        Times {
            base,
            t: secs(base + 30 * min),
            start: secs(base + 10 * min),
            end: secs(base + 35 * min),
        }
    }

    fn instant(&self, query: &str) -> Params {
        params(&[("query", query), ("time", &self.t)])
    }

    fn range(&self, query: &str, step: &str) -> Params {
        params(&[
            ("query", query),
            ("start", &self.start),
            ("end", &self.end),
            ("step", step),
        ])
    }
}

/// What a server reports of its head in `/api/v1/status/tsdb`: series, oldest and newest timestamp.
fn head_stats(port: u16) -> (i64, i64, i64) {
    let (code, body) = common::get(port, "/api/v1/status/tsdb").unwrap();
    assert_eq!(code, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    let h = &v["data"]["headStats"];
    (
        h["numSeries"].as_i64().unwrap(),
        h["minTime"].as_i64().unwrap(),
        h["maxTime"].as_i64().unwrap(),
    )
}

#[test]
fn ember_answers_the_api_as_prometheus_2_42_does() {
    if !common::peer_available("prometheus") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (ember, ember_port) = common::start_ember(
        &tmp.path().join("ember"),
        &["--web.enable-remote-write-receiver"],
    );
    let prom_dir = tmp.path().join("prometheus");
    std::fs::create_dir_all(&prom_dir).unwrap();
    // No scrape configs: Prometheus holds only what is written to it.
    let (prom, prom_port) = common::start_prometheus(
        &prom_dir,
        "global:\n  scrape_interval: 1m\n",
        &["--web.enable-remote-write-receiver"],
    );

    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let base = now_ms / 60_000 * 60_000 - 40 * 60_000;
    let data = dataset(base);
    for (who, port) in [("prometheus", prom_port), ("ember", ember_port)] {
        let (code, body) = common::remote_write_v1(port, &data);
        assert_eq!(code, 204, "remote write into {who}: {body}");
    }
    // Both stored all of it.
    let (p, e) = (head_stats(prom_port), head_stats(ember_port));
    assert_eq!(p, e, "tsdb_head_series_agree: (series, minTime, maxTime)");
    assert_eq!(p.0, data.len() as i64);

    let times = Times::new(base);
    let mut cases = queries::cases(&times);
    cases.extend(endpoints::cases(&times));
    let mut report = String::new();
    let mut failed = Vec::new();
    let mut known = Vec::new();
    for case in &cases {
        let prom_answer = ask(prom_port, case);
        let ember_answer = ask(ember_port, case);
        let diffs = compare(case, &prom_answer, &ember_answer);
        let verdict = match (&case.check, diffs.is_empty()) {
            (Check::KnownBug { what, .. }, false) => {
                known.push(case.name);
                format!("known difference ({what})")
            }
            (Check::KnownBug { .. }, true) => {
                "agrees now: drop its KnownBug mark and its entry in /tmp/envelope-bugs.md".into()
            }
            (c, true) => match c.why() {
                Some(why) => format!("ok, within limits: {why}"),
                None => "ok".into(),
            },
            (_, false) => {
                failed.push(case.name);
                "DIFFERS".into()
            }
        };
        let _ = writeln!(report, "{:<52} {verdict}", case.name);
        if !diffs.is_empty() {
            let _ = writeln!(
                report,
                "    {:?} {} {:?}\n    prometheus: {} {}\n    ember:      {} {}",
                case.method,
                case.path,
                case.params,
                prom_answer.status,
                prom_answer.body.trim_end(),
                ember_answer.status,
                ember_answer.body.trim_end()
            );
            for d in &diffs {
                let _ = writeln!(report, "    - {d}");
            }
        }
    }
    eprintln!("{report}");
    eprintln!(
        "{} cases: {} agree, {} known differences, {} differ",
        cases.len(),
        cases.len() - failed.len() - known.len(),
        known.len(),
        failed.len()
    );
    common::stop(prom, "prometheus");
    common::stop(ember, "ember");
    assert!(failed.is_empty(), "answers differ: {failed:?}");
}
