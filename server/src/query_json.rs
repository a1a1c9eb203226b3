//! Query results and syntax trees as JSON, written the way Prometheus' API writes them.
//!
//! Results are written by hand rather than through `serde_json` because Prometheus' codec has its own
//! number forms that a JSON value model cannot keep: sample timestamps are milliseconds printed as
//! `secs.mmm` with the zeros kept (`1.500`), sample values are strings in Go's shortest `'f'` form
//! (`'e'` below 1e-6 and from 1e21 on), scalars and strings carry `float64(t)/1000` as a JSON number
//! and their value in `'f'` form throughout, and strings are escaped as Go escapes them (`<`, `>`, `&`,
//! U+2028 and U+2029 as `\u` sequences). The syntax tree follows Prometheus' `translateAST`
//! (`/api/v1/parse_query`), whose objects are Go maps and so have sorted keys.

use std::fmt::Write;

use ember::Labels;
use ember_query::ast::{AtModifier, Duration, DurationExpr, DurationOp, Expr, VectorSelector};
use ember_query::engine::QueryStats;
use ember_query::functions::gofmt::format_value_label;
use ember_query::value::Value;
use serde_json::{Value as Json, json};

/// The success envelope of a query: `{"status":"success","data":{"resultType":…,"result":…}}`, with
/// `data.stats` (rendered by [`stats`]) when given, and `warnings` and `infos` when there are any.
pub fn envelope(
    value: &Value,
    warnings: &[String],
    infos: &[String],
    stats: Option<&str>,
) -> String {
    let mut out = String::with_capacity(256);
    out.push_str(r#"{"status":"success","data":{"resultType":""#);
    out.push_str(result_type(value));
    out.push_str(r#"","result":"#);
    write_value(&mut out, value);
    if let Some(stats) = stats {
        out.push_str(r#","stats":"#);
        out.push_str(stats);
    }
    out.push('}');
    for (key, list) in [("warnings", warnings), ("infos", infos)] {
        if list.is_empty() {
            continue;
        }
        let _ = write!(out, r#","{key}":["#);
        for (i, w) in list.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_str(&mut out, w);
        }
        out.push(']');
    }
    out.push('}');
    out
}

/// Prometheus' `timings` of a query, in seconds.
pub struct TimingsJson {
    pub eval_total: f64,
    pub result_sort: f64,
    pub query_preparation: f64,
    pub inner_eval: f64,
    pub exec_queue: f64,
    pub exec_total: f64,
}

/// The `stats` object of a query answer, with Prometheus 3.x's fields in its order: `timings`, and
/// `samples` with the totals and, when kept, the per-step counts as `[time, count]` pairs.
pub fn stats(stats: &QueryStats, timings: &TimingsJson) -> String {
    let s = &stats.samples;
    let mut out = String::with_capacity(256);
    out.push_str(r#"{"timings":{"#);
    for (i, (name, secs)) in [
        ("evalTotalTime", timings.eval_total),
        ("resultSortTime", timings.result_sort),
        ("queryPreparationTime", timings.query_preparation),
        ("innerEvalTime", timings.inner_eval),
        ("execQueueTime", timings.exec_queue),
        ("execTotalTime", timings.exec_total),
    ]
    .into_iter()
    .enumerate()
    {
        let sep = if i > 0 { "," } else { "" };
        let _ = write!(out, r#"{sep}"{name}":{}"#, go_json_number(secs));
    }
    out.push_str(r#"},"samples":{"#);
    let per_step = |out: &mut String, name: &str, pick: fn(&(i64, u64, u64)) -> u64| {
        let Some(steps) = &s.per_step else { return };
        let _ = write!(out, r#""{name}":["#);
        for (i, p) in steps.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push('[');
            push_timestamp(out, p.0);
            let _ = write!(out, ",{}]", pick(p));
        }
        out.push_str("],");
    };
    per_step(&mut out, "totalQueryableSamplesPerStep", |p| p.1);
    let _ = write!(out, r#""totalQueryableSamples":{},"#, s.total_queryable);
    per_step(&mut out, "samplesReadPerStep", |p| p.2);
    let _ = write!(
        out,
        r#""samplesRead":{},"peakSamples":{}}}}}"#,
        s.read, s.peak
    );
    out
}

pub fn result_type(value: &Value) -> &'static str {
    match value {
        Value::Scalar { .. } => "scalar",
        Value::String { .. } => "string",
        Value::Vector(_) => "vector",
        Value::Matrix(_) => "matrix",
    }
}

/// Keeps the first `limit` series of a vector or matrix; whether anything was cut.
pub fn truncate(value: &mut Value, limit: usize) -> bool {
    match value {
        Value::Vector(v) if v.len() > limit => v.truncate(limit),
        Value::Matrix(m) if m.len() > limit => m.truncate(limit),
        _ => return false,
    }
    true
}

fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Scalar { t, v } => {
            let _ = write!(out, "[{},", go_json_number(*t as f64 / 1000.0));
            push_str(out, &format_value_label(*v));
            out.push(']');
        }
        Value::String { t, s } => {
            let _ = write!(out, "[{},", go_json_number(*t as f64 / 1000.0));
            push_str(out, s);
            out.push(']');
        }
        Value::Vector(samples) => {
            out.push('[');
            for (i, s) in samples.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(r#"{"metric":"#);
                write_labels(out, &s.labels);
                out.push_str(r#","value":"#);
                write_point(out, s.t, s.v);
                out.push('}');
            }
            out.push(']');
        }
        Value::Matrix(series) => {
            out.push('[');
            for (i, s) in series.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(r#"{"metric":"#);
                write_labels(out, &s.labels);
                if !s.samples.is_empty() {
                    out.push_str(r#","values":["#);
                    for (j, &(t, v)) in s.samples.iter().enumerate() {
                        if j > 0 {
                            out.push(',');
                        }
                        write_point(out, t, v);
                    }
                    out.push(']');
                }
                out.push('}');
            }
            out.push(']');
        }
    }
}

fn write_labels(out: &mut String, labels: &Labels) {
    out.push('{');
    for (i, l) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_str(out, &l.name);
        out.push(':');
        push_str(out, &l.value);
    }
    out.push('}');
}

/// `[<timestamp>,"<value>"]`.
fn write_point(out: &mut String, t: i64, v: f64) {
    out.push('[');
    push_timestamp(out, t);
    out.push_str(",\"");
    push_sample_value(out, v);
    out.push_str("\"]");
}

/// Prometheus' `jsonutil.MarshalTimestamp`: whole seconds, then `.mmm` unless the milliseconds are 0.
pub fn push_timestamp(out: &mut String, t: i64) {
    let abs = t.unsigned_abs();
    if t < 0 {
        out.push('-');
    }
    out.push_str(itoa::Buffer::new().format(abs / 1000));
    let frac = abs % 1000;
    if frac != 0 {
        let _ = write!(out, ".{frac:03}");
    }
}

/// Prometheus' `jsonutil.MarshalFloat` without the quotes: Go's shortest `'f'` form, `'e'` form when
/// the magnitude is below 1e-6 or at least 1e21; `NaN`, `+Inf`, `-Inf`.
pub fn sample_value(v: f64) -> String {
    let mut s = String::new();
    push_sample_value(&mut s, v);
    s
}

/// [`sample_value`] appended to `out`. Most samples are whole numbers (counters, byte and count
/// gauges), and formatting them as floats was the larger part of serialising a range query.
pub fn push_sample_value(out: &mut String, v: f64) {
    // Below 2^53 a whole float's shortest round-trip text is its integer digits; -0 keeps its sign.
    if v.fract() == 0.0 && v.abs() < 9_007_199_254_740_992.0 && !(v == 0.0 && v.is_sign_negative())
    {
        out.push_str(itoa::Buffer::new().format(v as i64));
        return;
    }
    let abs = v.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) && v.is_finite() {
        out.push_str(&ember_query::functions::gofmt::format_shortest_exp(v));
    } else if v.is_finite() {
        ember_query::functions::gofmt::push_shortest_fixed(out, v);
    } else {
        out.push_str(&format_value_label(v));
    }
}

/// Go's `encoding/json` form of a float64 (used for scalar and string timestamps).
fn go_json_number(v: f64) -> String {
    let abs = v.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        // encoding/json trims `e-07` to `e-7`.
        let s = ember_query::functions::gofmt::format_shortest_exp(v);
        match s.split_once("e-0") {
            Some((m, d)) => format!("{m}e-{d}"),
            None => s,
        }
    } else {
        format!("{v}")
    }
}

/// Appends `s` as a JSON string escaped as Prometheus' codec (jsoniter, compatible with Go's
/// `encoding/json` with HTML escaping) does.
pub fn push_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Whether the expression contains a series selector (exemplar queries with none answer 204).
pub fn has_selector(e: &Expr) -> bool {
    match e {
        Expr::VectorSelector(_) | Expr::MatrixSelector(_) => true,
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) => false,
        Expr::Subquery(s) => has_selector(&s.expr),
        Expr::Unary(u) => has_selector(&u.expr),
        Expr::Binary(b) => has_selector(&b.lhs) || has_selector(&b.rhs),
        Expr::Aggregate(a) => has_selector(&a.expr) || a.param.as_deref().is_some_and(has_selector),
        Expr::Call(c) => c.args.iter().any(has_selector),
        Expr::Paren(p) => has_selector(&p.expr),
    }
}

/// Prometheus' `translateAST`: the tree the UI's explain view draws.
pub fn ast(e: &Expr) -> Json {
    match e {
        Expr::Aggregate(a) => json!({
            "type": "aggregation",
            "op": a.op.as_str(),
            "expr": ast(&a.expr),
            "param": a.param.as_deref().map_or(Json::Null, ast),
            "grouping": a.grouping,
            "without": a.without,
        }),
        Expr::Binary(b) => {
            let matching = b.matching.as_ref().map_or(Json::Null, |m| {
                json!({
                    "card": m.card.as_str(),
                    "labels": m.labels,
                    "on": m.on,
                    "include": m.include,
                    "fillValues": {"lhs": m.fill.lhs, "rhs": m.fill.rhs},
                })
            });
            json!({
                "type": "binaryExpr",
                "op": b.op.as_str(),
                "lhs": ast(&b.lhs),
                "rhs": ast(&b.rhs),
                "matching": matching,
                "bool": b.return_bool,
            })
        }
        Expr::Call(c) => json!({
            "type": "call",
            "func": {
                "name": c.func.name,
                "argTypes": c.func.arg_types.iter().map(|t| t.name()).collect::<Vec<_>>(),
                "variadic": c.func.variadic,
                "returnType": c.func.return_type.name(),
            },
            "args": c.args.iter().map(ast).collect::<Vec<_>>(),
        }),
        Expr::MatrixSelector(m) => {
            let mut obj = selector(&m.selector, "matrixSelector");
            obj["range"] = json!(m.range.ms.unwrap_or(0));
            obj["rangeExpr"] = duration_expr(&m.range);
            obj
        }
        Expr::Subquery(s) => json!({
            "type": "subquery",
            "expr": ast(&s.expr),
            "range": s.range.ms.unwrap_or(0),
            "rangeExpr": duration_expr(&s.range),
            "offset": s.offset.as_ref().and_then(|d| d.ms).unwrap_or(0),
            "offsetExpr": s.offset.as_ref().map_or(Json::Null, duration_expr),
            "step": s.step.as_ref().and_then(|d| d.ms).unwrap_or(0),
            "stepExpr": s.step.as_ref().map_or(Json::Null, duration_expr),
            "timestamp": timestamp(s.at),
            "startOrEnd": start_or_end(s.at),
        }),
        Expr::NumberLiteral(n) => {
            json!({"type": "numberLiteral", "val": format_value_label(n.value)})
        }
        Expr::Paren(p) => json!({"type": "parenExpr", "expr": ast(&p.expr)}),
        Expr::StringLiteral(s) => json!({"type": "stringLiteral", "val": s.value}),
        Expr::Unary(u) => json!({"type": "unaryExpr", "op": u.op.as_str(), "expr": ast(&u.expr)}),
        Expr::VectorSelector(v) => selector(v, "vectorSelector"),
    }
}

fn selector(v: &VectorSelector, kind: &str) -> Json {
    json!({
        "type": kind,
        "name": v.name.as_deref().unwrap_or(""),
        "offset": v.offset.as_ref().and_then(|d| d.ms).unwrap_or(0),
        "offsetExpr": v.offset.as_ref().map_or(Json::Null, duration_expr),
        "matchers": v.matchers.iter().map(|m| json!({
            "name": m.name(),
            "value": m.value(),
            "type": m.kind().as_str(),
        })).collect::<Vec<_>>(),
        "timestamp": timestamp(v.at),
        "startOrEnd": start_or_end(v.at),
        "anchored": v.anchored,
        "smoothed": v.smoothed,
    })
}

fn timestamp(at: Option<AtModifier>) -> Json {
    match at {
        Some(AtModifier::Timestamp(ms)) => json!(ms),
        _ => Json::Null,
    }
}

fn start_or_end(at: Option<AtModifier>) -> Json {
    match at {
        Some(AtModifier::Start) => json!("start"),
        Some(AtModifier::End) => json!("end"),
        _ => Json::Null,
    }
}

/// A duration written as arithmetic; `null` for a plain literal, as in Prometheus.
fn duration_expr(d: &Duration) -> Json {
    d.expr
        .as_ref()
        .map_or(Json::Null, |e| duration_node(e, false))
}

fn duration_node(e: &DurationExpr, wrapped: bool) -> Json {
    let node = |op: &str, lhs: Json, rhs: Json| json!({"type": "durationExpr", "op": op, "lhs": lhs, "rhs": rhs, "wrapped": wrapped});
    match e {
        DurationExpr::Literal(n) => json!({
            "type": "numberLiteral",
            "val": format_value_label(n.value),
            "duration": n.duration,
        }),
        DurationExpr::Step(_) => node("step", Json::Null, Json::Null),
        DurationExpr::Range(_) => node("range", Json::Null, Json::Null),
        DurationExpr::Neg { expr, .. } => node("-", Json::Null, duration_node(expr, false)),
        DurationExpr::Binary { op, lhs, rhs } => node(
            duration_op(*op),
            duration_node(lhs, false),
            duration_node(rhs, false),
        ),
        DurationExpr::Extremum { max, lhs, rhs, .. } => node(
            if *max { "max" } else { "min" },
            duration_node(lhs, false),
            duration_node(rhs, false),
        ),
        DurationExpr::Paren { expr, .. } => duration_node(expr, true),
    }
}

fn duration_op(op: DurationOp) -> &'static str {
    op.as_str()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_marshalled_like_prometheus() {
        let ts = |t| {
            let mut s = String::new();
            push_timestamp(&mut s, t);
            s
        };
        assert_eq!(ts(1_435_781_451_781), "1435781451.781");
        assert_eq!(ts(1500), "1.500");
        assert_eq!(ts(1005), "1.005");
        assert_eq!(ts(0), "0");
        assert_eq!(ts(-1500), "-1.500");
        assert_eq!(ts(20_000), "20");
    }

    #[test]
    fn sample_values_are_marshalled_like_prometheus() {
        assert_eq!(sample_value(1.0), "1");
        assert_eq!(sample_value(0.1), "0.1");
        assert_eq!(sample_value(-0.0), "-0");
        assert_eq!(sample_value(123_456_789.0), "123456789");
        assert_eq!(sample_value(1e21), "1e+21");
        assert_eq!(sample_value(1.5e-7), "1.5e-07");
        assert_eq!(sample_value(1e20), "100000000000000000000");
        assert_eq!(sample_value(f64::INFINITY), "+Inf");
        assert_eq!(sample_value(f64::NEG_INFINITY), "-Inf");
        assert_eq!(sample_value(f64::NAN), "NaN");
        assert_eq!(sample_value(-42.0), "-42");
        assert_eq!(sample_value(9_007_199_254_740_991.0), "9007199254740991");
        assert_eq!(sample_value(9_007_199_254_740_992.0), "9007199254740992");
        assert_eq!(sample_value(123.25), "123.25");
        assert_eq!(sample_value(-0.000_5), "-0.0005");
    }

    proptest::proptest! {
        /// The whole-number shortcut gives the text of the general float formatting.
        #[test]
        fn sample_values_format_as_the_general_float_path(
            bits in proptest::prelude::any::<u64>(),
            whole in proptest::prelude::any::<i64>(),
        ) {
            for v in [f64::from_bits(bits), whole as f64, (whole % 100_000) as f64] {
                let abs = v.abs();
                let general = if abs != 0.0 && !(1e-6..1e21).contains(&abs) && v.is_finite() {
                    ember_query::functions::gofmt::format_shortest_exp(v)
                } else {
                    format_value_label(v)
                };
                proptest::prop_assert_eq!(sample_value(v), general);
            }
        }
    }

    #[test]
    fn scalars_and_strings_use_go_json_numbers() {
        let scalar = Value::Scalar {
            t: 1_435_781_451_781,
            v: 1e30,
        };
        assert_eq!(
            envelope(&scalar, &[], &[], None),
            r#"{"status":"success","data":{"resultType":"scalar","result":[1435781451.781,"1000000000000000000000000000000"]}}"#
        );
        let string = Value::String {
            t: 10_500,
            s: "a<b".into(),
        };
        assert_eq!(
            envelope(&string, &["w".into()], &[], None),
            r#"{"status":"success","data":{"resultType":"string","result":[10.5,"a\u003cb"]},"warnings":["w"]}"#
        );
    }
}
