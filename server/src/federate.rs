//! `/federate`: the newest sample of every series matching a `match[]` selector, in Prometheus' text
//! exposition format, so another Prometheus (or Ember) can scrape this one.
//!
//! Owns choosing the samples as Prometheus' federation handler does (newest sample within the lookback
//! delta before now, staleness markers dropped, series without a metric name skipped, metric families
//! in metric-name order, `instance=""` added to series without an `instance` label as Prometheus adds
//! its external labels) and writing them (`# TYPE name untyped`, Go's `%g` values, millisecond
//! timestamps), adding the configuration's external labels. It does not own selector parsing
//! ([`crate::params`]) or storage. Ember stores no native histograms yet, so none appears.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use ember::{Db, Labels, Matcher};
use ember_query::functions::gofmt::format_g;
use ember_query::value::is_stale_nan;

use crate::http::AppState;
use crate::params::{Form, parse_metric_selector};

/// Prometheus' text exposition format.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

pub async fn federate(State(st): State<Arc<AppState>>, form: Form) -> Response {
    let sets: Result<Vec<Vec<Matcher>>, String> = form
        .values("match[]")
        .into_iter()
        .map(parse_metric_selector)
        .collect();
    let sets = match sets {
        Ok(s) => s,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response(),
    };
    let Some(db) = st.db().cloned() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "TSDB not ready\n").into_response();
    };
    let lookback = st.query.lookback_ms();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let external = st
        .reloader()
        .map(|r| r.external_labels())
        .unwrap_or_default();
    let work = move || exposition_with_external(&db, &sets, now - lookback, now, &external);
    match tokio::task::spawn_blocking(work).await {
        Ok(Ok(body)) => ([(header::CONTENT_TYPE, TEXT_FORMAT)], body).into_response(),
        Ok(Err(e)) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    }
}

/// The exposition of the newest sample in `[mint, maxt]` of each series matching any set.
pub fn exposition(
    db: &Db,
    sets: &[Vec<Matcher>],
    mint: i64,
    maxt: i64,
) -> Result<String, ember::Error> {
    exposition_with_external(db, sets, mint, maxt, &Labels::empty())
}

/// [`exposition`] with the configuration's external labels: each is added, after the series' own
/// labels and in name order, to every series that lacks a label of that name (`instance=""` is
/// always among them unless configured), as Prometheus' federation handler does.
pub fn exposition_with_external(
    db: &Db,
    sets: &[Vec<Matcher>],
    mint: i64,
    maxt: i64,
    external: &Labels,
) -> Result<String, ember::Error> {
    let mut ext: Vec<(String, String)> = external
        .iter()
        .map(|l| (l.name.clone(), l.value.clone()))
        .collect();
    if !ext.iter().any(|(n, _)| n == "instance") {
        ext.push(("instance".to_string(), String::new()));
        ext.sort();
    }
    let q = db.querier(mint, maxt);
    // Keyed by label set: the union of the sets without duplicates, in label order.
    let mut newest: BTreeMap<Labels, (i64, f64)> = BTreeMap::new();
    for set in sets {
        for s in q.select(set) {
            if newest.contains_key(s.labels()) {
                continue;
            }
            let mut it = s.iter();
            let last = it.by_ref().filter(|&(t, _)| t >= mint && t <= maxt).last();
            if let Some(e) = it.take_err() {
                return Err(e);
            }
            match last {
                Some((_, v)) if is_stale_nan(v) => {}
                Some(p) => {
                    newest.insert(s.labels().clone(), p);
                }
                None => {}
            }
        }
    }
    let mut samples: Vec<(Labels, (i64, f64))> = newest.into_iter().collect();
    // Families by metric name; within one, label order (the sort is stable).
    samples.sort_by(|a, b| a.0.metric_name().cmp(&b.0.metric_name()));
    let mut out = String::new();
    let mut last_name: Option<&str> = None;
    for (labels, (t, v)) in &samples {
        let Some(name) = labels.metric_name() else {
            continue;
        };
        if last_name != Some(name) {
            let _ = writeln!(out, "# TYPE {name} untyped");
            last_name = Some(name);
        }
        out.push_str(name);
        out.push('{');
        let mut first = true;
        for l in labels.iter().filter(|l| l.name != "__name__") {
            if !first {
                out.push(',');
            }
            first = false;
            push_label(&mut out, &l.name, &l.value);
        }
        for (n, v) in &ext {
            if labels.get(n).is_some() {
                continue;
            }
            if !first {
                out.push(',');
            }
            first = false;
            push_label(&mut out, n, v);
        }
        let _ = writeln!(out, "}} {} {t}", text_float(*v));
    }
    Ok(out)
}

fn push_label(out: &mut String, name: &str, value: &str) {
    out.push_str(name);
    out.push_str("=\"");
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The text format's float (`expfmt.writeFloat`): Go's shortest `%g`, with `0` for both zeros.
fn text_float(v: f64) -> String {
    if v == 0.0 { "0".into() } else { format_g(v) }
}

#[cfg(test)]
mod tests {
    #[test]
    fn floats_are_written_as_expfmt_does() {
        assert_eq!(super::text_float(-0.0), "0");
        assert_eq!(super::text_float(1.0), "1");
        assert_eq!(super::text_float(1e6), "1e+06");
        assert_eq!(super::text_float(123_456.0), "123456");
        assert_eq!(super::text_float(0.5), "0.5");
        assert_eq!(super::text_float(f64::INFINITY), "+Inf");
        assert_eq!(super::text_float(f64::NAN), "NaN");
    }
}
