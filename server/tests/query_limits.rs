//! `--query.max-memory`: a query over every series that would hold more sample bytes than the budget
//! fails with an `execution` error naming the flag, while a small query running at the same time
//! succeeds, and the server keeps serving.

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[test]
fn query_over_the_memory_budget_fails_while_a_concurrent_small_query_succeeds() {
    let tmp = tempfile::tempdir().unwrap();
    // 64 KiB = 4,096 sample points.
    let (ember, port) = common::start_ember(
        tmp.path(),
        &[
            "--web.enable-remote-write-receiver",
            "--query.max-memory=64KiB",
        ],
    );
    let end = now_ms() / 1000 * 1000;
    // 500 series x 20 samples at 15 s: 10,000 points over the last 5 minutes.
    let series: Vec<common::WriteSeries> = (0..500)
        .map(|i| {
            let labels = vec![
                ("__name__".to_string(), "load".to_string()),
                ("id".to_string(), i.to_string()),
            ];
            let samples = (0..20)
                .map(|k| (end - (19 - k) * 15_000, (i * k) as f64))
                .collect();
            (labels, samples)
        })
        .collect();
    let (code, body) = common::remote_write_v1(port, &series);
    assert_eq!(code, 204, "{body}");

    let t = end as f64 / 1000.0;
    // A range vector over every series holds all 10,000 points at once.
    let big = format!("/api/v1/query?query=load%5B5m%5D&time={t}");
    let small = format!("/api/v1/query?query=load%7Bid%3D%227%22%7D&time={t}");
    let big_thread = std::thread::spawn(move || common::get(port, &big).unwrap());
    let small_answer = common::get(port, &small).unwrap();
    let big_answer = big_thread.join().unwrap();

    assert_eq!(big_answer.0, 422, "{}", big_answer.1);
    let v: serde_json::Value = serde_json::from_str(&big_answer.1).unwrap();
    assert_eq!(v["errorType"], "execution");
    assert_eq!(
        v["error"],
        "query processing would hold more than 65536 bytes of samples in memory (--query.max-memory)"
    );

    assert_eq!(small_answer.0, 200, "{}", small_answer.1);
    let v: serde_json::Value = serde_json::from_str(&small_answer.1).unwrap();
    assert_eq!(v["data"]["result"][0]["value"][1], "133"); // id 7, last sample k = 19

    // Under the budget the same kind of query is answered: 111 series (ids 1, 10-19, 100-199) x 20
    // points = 2,220 of the 4,096 allowed.
    let fits = format!("/api/v1/query?query=load%7Bid%3D~%221.*%22%7D%5B5m%5D&time={t}");
    let (code, body) = common::get(port, &fits).unwrap();
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["data"]["result"].as_array().unwrap().len(), 111);
    common::stop(ember, "ember");
}

/// Non-finite and out-of-range times (`Inf`, `-Inf`, `NaN`, `1e308`) are clamped to Prometheus'
/// `MinTime`/`MaxTime`: every query is answered, none takes the server down, even with offsets and
/// subqueries that push the times further out.
#[test]
fn extreme_query_times_are_answered_and_never_crash_the_server() {
    let tmp = tempfile::tempdir().unwrap();
    let (ember, port) = common::start_ember(tmp.path(), &[]);
    let queries = [
        "1",
        "time()",
        "up%20offset%20-1y",
        "rate(up%5B5m%5D)",
        "max_over_time(up%5B5m%3A1m%5D%20offset%20-292y)",
        "max_over_time(up%5B1h%3A%5D)",
    ];
    for q in queries {
        for t in ["Inf", "-Inf", "NaN", "1e308", "-1e20"] {
            let (code, body) = common::get(port, &format!("/api/v1/query?query={q}&time={t}"))
                .unwrap_or_else(|| panic!("no answer for {q} at {t}"));
            assert_eq!(code, 200, "{q} at {t}: {body}");
        }
        for (s, e) in [("-Inf", "-Inf"), ("Inf", "Inf"), ("1e20", "1e20")] {
            let path = format!("/api/v1/query_range?query={q}&start={s}&end={e}&step=60");
            let (code, body) =
                common::get(port, &path).unwrap_or_else(|| panic!("no answer for {path}"));
            assert_eq!(code, 200, "{path}: {body}");
        }
    }
    let (code, _) = common::get(port, "/-/healthy").unwrap();
    assert_eq!(code, 200);
    common::stop(ember, "ember");
}
