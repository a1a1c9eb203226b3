//! The parts of Prometheus' HTTP API v1 that need no PromQL: label names and values, and the status
//! endpoints (`buildinfo`, `runtimeinfo`, `flags`, `tsdb`, `walreplay`). Responses use Prometheus' JSON
//! envelope (`{"status":"success","data":…}`, or `{"status":"error","errorType":…,"error":…}` with its
//! status codes). Query endpoints join once the PromQL engine lands.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::http::AppState;

/// A success envelope.
pub fn success(data: Value) -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        json!({"status": "success", "data": data}).to_string(),
    )
        .into_response()
}

/// An error envelope with Prometheus' error type and status code.
pub fn error(code: StatusCode, error_type: &str, msg: impl Into<String>) -> Response {
    (
        code,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        json!({"status": "error", "errorType": error_type, "error": msg.into()}).to_string(),
    )
        .into_response()
}

fn unavailable() -> Response {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "WAL replay in progress",
    )
}

/// `match[]` needs the PromQL selector parser, which is not built yet: say so instead of ignoring it.
fn refuse_match(params: &[(String, String)]) -> Option<Response> {
    params.iter().any(|(k, _)| k == "match[]").then(|| {
        error(
            StatusCode::BAD_REQUEST,
            "bad_data",
            "match[] is not supported yet: it needs the PromQL parser, which Ember does not have yet",
        )
    })
}

pub async fn labels(
    State(st): State<Arc<AppState>>,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    if let Some(r) = refuse_match(&params) {
        return r;
    }
    let Some(db) = st.db() else {
        return unavailable();
    };
    success(json!(db.querier(i64::MIN, i64::MAX).label_names(&[])))
}

pub async fn label_values(
    State(st): State<Arc<AppState>>,
    Path(name): Path<String>,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    if let Some(r) = refuse_match(&params) {
        return r;
    }
    let Some(db) = st.db() else {
        return unavailable();
    };
    success(json!(
        db.querier(i64::MIN, i64::MAX).label_values(&name, &[])
    ))
}

pub async fn buildinfo() -> Response {
    success(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "revision": "",
        "branch": "",
        "buildUser": "",
        "buildDate": "",
        "goVersion": "",
    }))
}

pub async fn runtimeinfo(State(st): State<Arc<AppState>>) -> Response {
    let cwd = std::env::current_dir()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    success(json!({
        "startTime": rfc3339(st.start_time),
        "CWD": cwd,
        "reloadConfigSuccess": true,
        "lastConfigTime": rfc3339(st.start_time),
        "corruptionCount": 0,
        "goroutineCount": 0,
        "GOMAXPROCS": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "GOGC": "",
        "GODEBUG": "",
        "storageRetention": "unlimited (retention arrives with blocks)",
    }))
}

pub async fn flags(State(st): State<Arc<AppState>>) -> Response {
    let map: serde_json::Map<String, Value> = st
        .flags
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    success(Value::Object(map))
}

pub async fn walreplay(State(st): State<Arc<AppState>>) -> Response {
    let Some(db) = st.db() else {
        // Prometheus reports progress during replay; Ember replays before it has the numbers to show.
        return success(json!({"min": 0, "max": 0, "current": 0}));
    };
    let r = db.replay_stats();
    let n = r.segments as i64;
    success(json!({"min": 0, "max": n.max(1) - 1, "current": n.max(1) - 1}))
}

pub async fn tsdb(
    State(st): State<Arc<AppState>>,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    let Some(db) = st.db() else {
        return unavailable();
    };
    let limit = match params
        .iter()
        .find(|(k, _)| k == "limit")
        .map(|(_, v)| v.parse::<usize>())
    {
        None => 10,
        Some(Ok(n)) if n > 0 => n,
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "bad_data",
                "limit must be a positive number",
            );
        }
    };
    let s = db.stats();
    let c = db.cardinality(limit);
    let list = |v: &[(String, u64)]| {
        json!(
            v.iter()
                .map(|(n, c)| json!({"name": n, "value": c}))
                .collect::<Vec<_>>()
        )
    };
    let (min, max) = s.time_range.unwrap_or((i64::MAX, i64::MIN));
    success(json!({
        "headStats": {"numSeries": s.num_series, "numLabelPairs": c.series_count_by_label_value_pair.len(), "chunkCount": 0, "minTime": min, "maxTime": max},
        "seriesCountByMetricName": list(&c.series_count_by_metric_name),
        "labelValueCountByLabelName": list(&c.label_value_count_by_label_name),
        "memoryInBytesByLabelName": list(&c.memory_in_bytes_by_label_name),
        "seriesCountByLabelValuePair": list(&c.series_count_by_label_value_pair),
    }))
}

/// `SystemTime` as RFC 3339 in UTC with millisecond precision, as Prometheus prints times.
fn rfc3339(t: std::time::SystemTime) -> String {
    let d = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_formats_known_instants() {
        let at = |s: u64, ms: u64| {
            std::time::UNIX_EPOCH + std::time::Duration::from_millis(s * 1000 + ms)
        };
        assert_eq!(super::rfc3339(at(0, 0)), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            super::rfc3339(at(951_782_400, 5)),
            "2000-02-29T00:00:00.005Z"
        );
        assert_eq!(
            super::rfc3339(at(1_795_579_200, 999)),
            "2026-11-25T04:00:00.999Z"
        );
    }
}
