//! The parts of Prometheus' HTTP API v1 that read storage without evaluating PromQL: series, label
//! names and values (with `match[]` selectors), the status endpoints (`buildinfo`, `runtimeinfo`,
//! `flags`, `tsdb`, `walreplay`, `config`), and the endpoints Ember answers empty until it has what
//! they report (metadata, exemplars, targets, rules, alerts). Responses use Prometheus' JSON envelope
//! (`{"status":"success","data":…}`, or `{"status":"error","errorType":…,"error":…}` with its status
//! codes), which [`success`] and [`ApiError`] own. PromQL evaluation lives in [`crate::query_api`],
//! parameter parsing in [`crate::params`].

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use ember::{Db, Labels};
use serde_json::{Value, json};

use crate::http::AppState;
use crate::params::{
    Form, MAX_TIME_MS, MIN_TIME_MS, parse_limit, parse_match_params, parse_time_param,
};

const JSON: (axum::http::HeaderName, &str) = (axum::http::header::CONTENT_TYPE, "application/json");

/// A success envelope.
pub fn success(data: Value) -> Response {
    success_with_warnings(data, &[])
}

/// A success envelope with `warnings` (omitted when empty, as Prometheus does). Keys in Prometheus'
/// order: `status`, `data`, `warnings`.
pub fn success_with_warnings(data: Value, warnings: &[String]) -> Response {
    let mut body = String::from(r#"{"status":"success","data":"#);
    push_go_json(&mut body, &data);
    if !warnings.is_empty() {
        body.push_str(r#","warnings":"#);
        push_go_json(&mut body, &json!(warnings));
    }
    body.push('}');
    ([JSON], body).into_response()
}

/// Appends `v` as JSON with Go's HTML-safe escaping of `<`, `>`, `&`, U+2028 and U+2029 (as
/// Prometheus' codec writes them). These characters occur only inside JSON strings, so replacing them
/// in the serialized text is exact.
fn push_go_json(out: &mut String, v: &Value) {
    let text = v.to_string();
    // Almost no text has a character Go escapes and serde_json does not: copied whole.
    if !text.contains(['<', '>', '&', '\u{2028}', '\u{2029}']) {
        out.push_str(&text);
        return;
    }
    for c in text.chars() {
        match c {
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
}

/// An error envelope with Prometheus' error type and status code (keys in Prometheus' order).
pub fn error(code: StatusCode, error_type: &str, msg: impl Into<String>) -> Response {
    let mut body = String::from(r#"{"status":"error","errorType":"#);
    crate::query_json::push_str(&mut body, error_type);
    body.push_str(r#","error":"#);
    crate::query_json::push_str(&mut body, &msg.into());
    body.push('}');
    (code, [JSON], body).into_response()
}

/// Prometheus' API error types, each with its status code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// 400: a parameter or the query is unusable.
    BadData(String),
    /// 422: the query failed while running.
    Execution(String),
    /// 499 (client closed the request).
    Canceled(String),
    /// 503: the query ran out of time.
    Timeout(String),
    /// 500.
    Internal(String),
    /// 503: storage is not open yet.
    Unavailable(String),
    /// 404.
    NotFound(String),
}

impl ApiError {
    /// Prometheus' `invalidParamError`: `invalid parameter "name": reason`.
    pub fn invalid_param(name: &str, reason: impl std::fmt::Display) -> ApiError {
        ApiError::BadData(format!("invalid parameter \"{name}\": {reason}"))
    }

    /// Error type name and status code.
    pub fn kind(&self) -> (&'static str, StatusCode) {
        match self {
            ApiError::BadData(_) => ("bad_data", StatusCode::BAD_REQUEST),
            ApiError::Execution(_) => ("execution", StatusCode::UNPROCESSABLE_ENTITY),
            ApiError::Canceled(_) => (
                "canceled",
                StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
            ),
            ApiError::Timeout(_) => ("timeout", StatusCode::SERVICE_UNAVAILABLE),
            ApiError::Internal(_) => ("internal", StatusCode::INTERNAL_SERVER_ERROR),
            ApiError::Unavailable(_) => ("unavailable", StatusCode::SERVICE_UNAVAILABLE),
            ApiError::NotFound(_) => ("not_found", StatusCode::NOT_FOUND),
        }
    }

    pub fn message(&self) -> &str {
        match self {
            ApiError::BadData(m)
            | ApiError::Execution(m)
            | ApiError::Canceled(m)
            | ApiError::Timeout(m)
            | ApiError::Internal(m)
            | ApiError::Unavailable(m)
            | ApiError::NotFound(m) => m,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (ty, code) = self.kind();
        error(code, ty, self.message())
    }
}

/// The database, or `unavailable` while the WAL replays (Prometheus: `tsdb not ready`).
pub(crate) fn ready_db(st: &AppState) -> Result<Db, ApiError> {
    st.db()
        .cloned()
        .ok_or_else(|| ApiError::Unavailable("WAL replay in progress".into()))
}

/// `limit`, `start`, `end` (defaulting to all time) and `match[]`, checked in Prometheus' order.
struct RangeParams {
    limit: usize,
    start: i64,
    end: i64,
    matcher_sets: Vec<Vec<ember::Matcher>>,
}

fn range_params(form: &Form) -> Result<RangeParams, ApiError> {
    let limit =
        parse_limit(form.value("limit")).map_err(|e| ApiError::invalid_param("limit", e))?;
    let start = parse_time_param(form, "start", MIN_TIME_MS)
        .map_err(|e| ApiError::invalid_param("start", e))?;
    let end = parse_time_param(form, "end", MAX_TIME_MS)
        .map_err(|e| ApiError::invalid_param("end", e))?;
    let matcher_sets = parse_match_params(&form.values("match[]")).map_err(ApiError::BadData)?;
    Ok(RangeParams {
        limit,
        start,
        end,
        matcher_sets,
    })
}

const TRUNCATED: &str = "results truncated due to limit";

/// Sorted union of `f` over each matcher set (over everything when there is none).
fn union(
    sets: &[Vec<ember::Matcher>],
    f: impl Fn(&[ember::Matcher]) -> Vec<String>,
) -> Vec<String> {
    if sets.len() <= 1 {
        return f(sets.first().map_or(&[][..], |s| &s[..]));
    }
    let all: BTreeSet<String> = sets.iter().flat_map(|s| f(s)).collect();
    all.into_iter().collect()
}

/// Truncates to `limit` (0: none) and says so in a warning.
fn limited(mut v: Vec<String>, limit: usize) -> Response {
    if limit > 0 && v.len() > limit {
        v.truncate(limit);
        return success_with_warnings(json!(v), &[TRUNCATED.to_string()]);
    }
    success(json!(v))
}

pub async fn labels(State(st): State<Arc<AppState>>, form: Form) -> Result<Response, ApiError> {
    let p = range_params(&form)?;
    let db = ready_db(&st)?;
    let names = st
        .offload
        .run(move || {
            let q = db.querier(p.start, p.end);
            union(&p.matcher_sets, |m| q.label_names(m))
        })
        .await
        .map_err(ApiError::Internal)?;
    Ok(limited(names, p.limit))
}

pub async fn label_values(
    State(st): State<Arc<AppState>>,
    uri: Uri,
    form: Form,
) -> Result<Response, ApiError> {
    // The name is taken from the raw path: axum's extractors refuse a segment that is not UTF-8
    // with their own text, and Prometheus answers `bad_data` for it.
    let encoded = uri
        .path()
        .strip_prefix("/api/v1/label/")
        .and_then(|p| p.strip_suffix("/values"))
        .unwrap_or("");
    let bytes = percent_decode(encoded);
    let name = String::from_utf8(bytes).map_err(|e| {
        ApiError::BadData(format!(
            "invalid label name: {}",
            go_quote_bytes(e.as_bytes())
        ))
    })?;
    let name = match name.strip_prefix("U__") {
        Some(escaped) => unescape_name(escaped).unwrap_or(name),
        None => name,
    };
    if name.is_empty() {
        return Err(ApiError::BadData(format!(
            "invalid label name: {}",
            ember_query::functions::gofmt::quote(&name)
        )));
    }
    let p = range_params(&form)?;
    let db = ready_db(&st)?;
    let limit = p.limit;
    let values = st
        .offload
        .run(move || {
            let q = db.querier(p.start, p.end);
            union(&p.matcher_sets, |m| q.label_values(&name, m))
        })
        .await
        .map_err(ApiError::Internal)?;
    Ok(limited(values, limit))
}

/// `%XX` escapes of a raw path segment decoded to bytes (a malformed escape stays as written).
fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && let (Some(h), Some(l)) = (
                b.get(i + 1).and_then(|&c| hex(c)),
                b.get(i + 2).and_then(|&c| hex(c)),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

/// Go's `%q` of a byte string that is not valid UTF-8: valid characters quoted as Go does, each
/// invalid byte as `\xNN`.
fn go_quote_bytes(bytes: &[u8]) -> String {
    let mut out = String::from("\"");
    for chunk in bytes.utf8_chunks() {
        let q = ember_query::functions::gofmt::quote(chunk.valid());
        out.push_str(&q[1..q.len() - 1]);
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out.push('"');
    out
}

/// Prometheus' `model.UnescapeName` for the `U__` value-encoding escaping (`_2E_` is `.`, `__` is
/// `_`); `None` when the text is not a valid escaping, and the name is then taken as written.
fn unescape_name(s: &str) -> Option<String> {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '_' {
            out.push(c);
            continue;
        }
        if chars.peek() == Some(&'_') {
            chars.next();
            out.push('_');
            continue;
        }
        let mut hex = String::new();
        loop {
            match chars.next() {
                Some('_') => break,
                Some(h) if h.is_ascii_hexdigit() => hex.push(h),
                _ => return None,
            }
        }
        out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
    }
    Some(out)
}

pub async fn series(State(st): State<Arc<AppState>>, form: Form) -> Result<Response, ApiError> {
    let matches = form.values("match[]");
    if matches.is_empty() {
        return Err(ApiError::BadData("no match[] parameter provided".into()));
    }
    let limit =
        parse_limit(form.value("limit")).map_err(|e| ApiError::invalid_param("limit", e))?;
    let start = parse_time_param(&form, "start", MIN_TIME_MS)
        .map_err(|e| ApiError::invalid_param("start", e))?;
    let end = parse_time_param(&form, "end", MAX_TIME_MS)
        .map_err(|e| ApiError::invalid_param("end", e))?;
    let sets = parse_match_params(&matches).map_err(|e| ApiError::invalid_param("match[]", e))?;
    let db = ready_db(&st)?;
    let body = st
        .offload
        .run(move || {
            let q = db.querier(start, end);
            // Each set's label sets come sorted and unique; only a union of several needs merging.
            let all: Vec<Labels> = if let [set] = &sets[..] {
                q.select_labels(set)
            } else {
                let mut all: BTreeSet<Labels> = BTreeSet::new();
                for set in &sets {
                    all.extend(q.select_labels(set));
                }
                all.into_iter().collect()
            };
            let truncated = limit > 0 && all.len() > limit;
            let shown = &all[..if truncated { limit } else { all.len() }];
            // Written directly rather than through a `serde_json::Value` tree: the tree costs an allocation
            // per label name and value, which was most of this endpoint's time.
            let mut body = String::with_capacity(64 + shown.len() * 128);
            body.push_str(r#"{"status":"success","data":["#);
            for (i, l) in shown.iter().enumerate() {
                if i > 0 {
                    body.push(',');
                }
                push_labels_object(&mut body, l);
            }
            body.push(']');
            if truncated {
                body.push_str(r#","warnings":"#);
                push_go_json(&mut body, &json!([TRUNCATED]));
            }
            body.push('}');
            body
        })
        .await
        .map_err(ApiError::Internal)?;
    Ok(([JSON], body).into_response())
}

/// A label set as a JSON object in label order, byte for byte as [`push_go_json`] writes the
/// `serde_json` object of it.
fn push_labels_object(out: &mut String, l: &Labels) {
    out.push('{');
    for (i, l) in l.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_serde_str(out, &l.name);
        out.push(':');
        push_serde_str(out, &l.value);
    }
    out.push('}');
}

/// Bytes that start an escape in [`push_serde_str`]: a table lookup per byte instead of a chain of
/// comparisons, as almost no byte of a label needs one.
static MAY_ESCAPE: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 0x20 {
        t[c] = true;
        c += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t[b'<' as usize] = true;
    t[b'>' as usize] = true;
    t[b'&' as usize] = true;
    t[0xe2] = true;
    t
};

/// A JSON string escaped as `serde_json` escapes it, then with [`push_go_json`]'s HTML-safe
/// escapes.
fn push_serde_str(out: &mut String, s: &str) {
    // A byte scan: every character escaped is ASCII except U+2028 and U+2029 (E2 80 A8 / A9), so
    // every cut falls on a character boundary. Decoding each character to test it was a tenth of
    // the series endpoint's time.
    out.push('"');
    let b = s.as_bytes();
    let (mut start, mut i) = (0, 0);
    while i < b.len() {
        if !MAY_ESCAPE[b[i] as usize] {
            i += 1;
            continue;
        }
        let (text, len): (std::borrow::Cow<'static, str>, usize) = match b[i] {
            b'"' => ("\\\"".into(), 1),
            b'\\' => ("\\\\".into(), 1),
            0x08 => ("\\b".into(), 1),
            0x0c => ("\\f".into(), 1),
            b'\n' => ("\\n".into(), 1),
            b'\r' => ("\\r".into(), 1),
            b'\t' => ("\\t".into(), 1),
            c @ (0..=0x1f | b'<' | b'>' | b'&') => (format!("\\u{c:04x}").into(), 1),
            0xe2 if b.get(i + 1) == Some(&0x80) && matches!(b.get(i + 2), Some(0xa8 | 0xa9)) => (
                format!("\\u{:04x}", 0x2000 + u32::from(b[i + 2]) - 0x80).into(),
                3,
            ),
            _ => {
                i += 1;
                continue;
            }
        };
        out.push_str(&s[start..i]);
        out.push_str(&text);
        i += len;
        start = i;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// `/api/v1/metadata`: Ember keeps no metric metadata yet.
pub async fn metadata(form: Form) -> Result<Response, ApiError> {
    for (key, msg) in [
        ("limit", "limit must be a number"),
        ("limit_per_metric", "limit_per_metric must be a number"),
    ] {
        let v = form.value(key);
        if !v.is_empty() && v.parse::<i64>().is_err() {
            return Err(ApiError::BadData(msg.into()));
        }
    }
    Ok(success(json!({})))
}

/// `/api/v1/targets/metadata`: the metric metadata each active target last exposed, filtered by
/// `match_target` (a selector over target labels), `metric` and `limit`.
pub async fn targets_metadata(
    State(st): State<Arc<AppState>>,
    form: Form,
) -> Result<Response, ApiError> {
    let v = form.value("limit");
    let limit = if v.is_empty() {
        None
    } else {
        let n = v
            .parse::<i64>()
            .map_err(|_| ApiError::BadData("limit must be a number".into()))?;
        (n >= 0).then_some(n as usize)
    };
    let match_target = form.value("match_target");
    let matchers = if match_target.is_empty() {
        Vec::new()
    } else {
        crate::params::parse_metric_selector(match_target).map_err(ApiError::BadData)?
    };
    let metric = form.value("metric");
    let mut out = Vec::new();
    if let Some(p) = st.reloader().and_then(|r| r.pools()) {
        'targets: for (target, md) in p.target_metadata() {
            if !matchers
                .iter()
                .all(|m| m.matches(target.get(m.name()).unwrap_or("")))
            {
                continue;
            }
            for (name, m) in md {
                if !metric.is_empty() && name != metric {
                    continue;
                }
                if limit.is_some_and(|l| out.len() >= l) {
                    break 'targets;
                }
                out.push(json!({
                    "target": labels_value(&target),
                    "metric": name,
                    "type": metric_type(m.kind),
                    "help": m.help,
                    "unit": m.unit,
                }));
            }
        }
    }
    Ok(success(Value::Array(out)))
}

fn metric_type(t: ember_scrape::textparse::MetricType) -> &'static str {
    use ember_scrape::textparse::MetricType as T;
    match t {
        T::Counter => "counter",
        T::Gauge => "gauge",
        T::Histogram => "histogram",
        T::GaugeHistogram => "gaugehistogram",
        T::Summary => "summary",
        T::Info => "info",
        T::StateSet => "stateset",
        T::Unknown => "unknown",
    }
}

fn labels_value(l: &Labels) -> Value {
    Value::Object(
        l.iter()
            .map(|l| (l.name.clone(), Value::String(l.value.clone())))
            .collect(),
    )
}

/// `/api/v1/targets`: the scrape pools' targets, with Prometheus' `state` (`active`, `dropped`,
/// `any`) and `scrapePool` filters.
pub async fn targets(State(st): State<Arc<AppState>>, form: Form) -> Response {
    let state = form.value("state").to_lowercase();
    let pool = form.value("scrapePool");
    let show_active = matches!(state.as_str(), "" | "any" | "active");
    let show_dropped = matches!(state.as_str(), "" | "any" | "dropped");
    let snap = st
        .reloader()
        .and_then(|r| r.pools())
        .map(|p| p.snapshot())
        .unwrap_or_default();
    let wanted = |p: &str| pool.is_empty() || p == pool;
    let active: Vec<Value> = if show_active {
        snap.active
            .iter()
            .filter(|t| wanted(&t.pool))
            .map(|t| {
                json!({
                    "discoveredLabels": labels_value(&t.discovered),
                    "labels": labels_value(&t.labels),
                    "scrapePool": t.pool,
                    "scrapeUrl": t.url,
                    "globalUrl": global_url(&t.url),
                    "lastError": t.status.last_error,
                    "lastScrape": t.status.last_scrape.map_or_else(
                        || "0001-01-01T00:00:00Z".to_string(),
                        rfc3339,
                    ),
                    "lastScrapeDuration": t.status.last_duration.as_secs_f64(),
                    "health": t.status.health.as_str(),
                    "scrapeInterval": t.interval,
                    "scrapeTimeout": t.timeout,
                })
            })
            .collect()
    } else {
        Vec::new()
    };
    let mut data = json!({"activeTargets": active});
    if show_dropped {
        let dropped: Vec<Value> = snap
            .dropped
            .iter()
            .filter(|t| wanted(&t.pool))
            .map(|t| json!({"discoveredLabels": labels_value(&t.discovered), "scrapePool": t.pool}))
            .collect();
        data["droppedTargets"] = Value::Array(dropped);
        data["droppedTargetCounts"] = json!(snap.dropped_counts);
    } else {
        data["droppedTargets"] = json!([]);
        data["droppedTargetCounts"] = Value::Null;
    }
    success(data)
}

/// The URL under which others reach a target: a loopback host is replaced by this machine's name, as
/// Prometheus does with its default external URL.
fn global_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (hostport, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) if !p.contains(']') => (h, Some(p)),
        _ => (hostport, None),
    };
    if !matches!(host, "localhost" | "127.0.0.1" | "[::1]" | "::1") {
        return url.to_string();
    }
    let name = hostname();
    match port {
        Some(p) => format!("{scheme}://{name}:{p}{path}"),
        None => format!("{scheme}://{name}{path}"),
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// `/api/v1/scrape_pools`: the job names of the running scrape pools, sorted.
pub async fn scrape_pools(State(st): State<Arc<AppState>>) -> Response {
    let names = st
        .reloader()
        .and_then(|r| r.pools())
        .map(|p| p.pool_names())
        .unwrap_or_default();
    success(json!({ "scrapePools": names }))
}

/// `/api/v1/rules`: no rule evaluation yet.
pub async fn rules(form: Form) -> Result<Response, ApiError> {
    parse_match_params(&form.values("match[]")).map_err(ApiError::BadData)?;
    Ok(success(json!({"groups": []})))
}

/// `/api/v1/alerts`: no alerting rules yet.
pub async fn alerts() -> Response {
    success(json!({"alerts": []}))
}

/// `/api/v1/status/config`: the running configuration as its file was written (Prometheus prints
/// its re-marshalled form, defaults filled in; Ember shows the text it loaded).
pub async fn config(State(st): State<Arc<AppState>>) -> Response {
    let yaml = st.reloader().map(|r| r.config().1).unwrap_or_default();
    success(json!({ "yaml": yaml }))
}

/// Unknown paths: JSON `not_found` under `/api/v1/`, Go's plain-text 404 elsewhere.
/// Unrouted paths, inside `/api/v1/` too, get Go's plain-text 404 as from Prometheus' router; the
/// API's `not_found` error type is for things a handler looked up and did not find.
pub async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "404 page not found\n",
    )
        .into_response()
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
        "storageRetention": storage_retention(&st.flags),
    }))
}

/// Prometheus' `storageRetention` text: the time limit, `or` the size limit (`15d`, `10GiB`,
/// `15d or 512MiB`), from the flags the server started with.
fn storage_retention(flags: &[(String, String)]) -> String {
    let flag = |name: &str| {
        flags
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    };
    let mut parts = Vec::new();
    let time = flag("storage.tsdb.retention.time");
    if !matches!(time, "" | "0s") {
        parts.push(time.to_string());
    }
    if let Ok(bytes) = flag("storage.tsdb.retention.size").parse::<u64>()
        && bytes > 0
    {
        parts.push(base2_bytes(bytes));
    }
    parts.join(" or ")
}

/// A byte count in the largest binary unit that divides it, as Go's `units.Base2Bytes` prints exact
/// sizes (`512MiB`, `1GiB`, `1500B`).
fn base2_bytes(n: u64) -> String {
    for (unit, shift) in [
        ("PiB", 50),
        ("TiB", 40),
        ("GiB", 30),
        ("MiB", 20),
        ("KiB", 10),
    ] {
        if n >= 1 << shift && n.is_multiple_of(1 << shift) {
            return format!("{}{unit}", n >> shift);
        }
    }
    format!("{n}B")
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

pub async fn tsdb(State(st): State<Arc<AppState>>, form: Form) -> Response {
    let Some(db) = st.db() else {
        return ApiError::Unavailable("WAL replay in progress".into()).into_response();
    };
    let limit = match Some(form.value("limit"))
        .filter(|v| !v.is_empty())
        .map(str::parse::<usize>)
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
pub(crate) fn rfc3339(t: std::time::SystemTime) -> String {
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
    fn label_objects_are_written_as_the_serde_tree_was() {
        let odd = "q\"b\\s/<>&\u{2028}\u{2029}\u{1}\u{8}\u{c}\n\r\t\u{1f}\u{7f}é😀";
        for pairs in [
            vec![("__name__", "up"), ("job", "node")],
            vec![("a", odd), ("b<", "x"), ("c", "&&")],
            vec![("z", "\u{0}")],
        ] {
            let l = ember::Labels::from_pairs(pairs).unwrap();
            let tree = serde_json::Value::Object(
                l.iter()
                    .map(|l| (l.name.clone(), serde_json::Value::String(l.value.clone())))
                    .collect(),
            );
            let mut want = String::new();
            super::push_go_json(&mut want, &tree);
            let mut got = String::new();
            super::push_labels_object(&mut got, &l);
            assert_eq!(got, want);
        }
    }

    proptest::proptest! {
        /// Any label value is written as the serde tree writes it.
        #[test]
        fn any_label_value_is_written_as_the_serde_tree_was(v in "\\PC*", w in proptest::prelude::any::<String>()) {
            // An empty value means no label, as in Prometheus.
            for value in [v, w].into_iter().filter(|v| !v.is_empty()) {
                let l = ember::Labels::from_pairs([("a", value.as_str())]).unwrap();
                let tree = serde_json::json!({ "a": value });
                let mut want = String::new();
                super::push_go_json(&mut want, &tree);
                let mut got = String::new();
                super::push_labels_object(&mut got, &l);
                proptest::prop_assert_eq!(got, want);
            }
        }
    }

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
