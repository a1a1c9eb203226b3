//! OpenMetrics 1.0 text.
//!
//! Stricter than the Prometheus text format: single spaces between tokens,
//! none inside label sets, every line ends in a line break, no blank lines,
//! comments only `# HELP`, `# TYPE`, `# UNIT` and the final `# EOF`.
//! Timestamps are seconds (converted to milliseconds). Exemplars
//! (`… # {labels} value [timestamp]`) are checked and dropped; `_created`
//! series of counters, histograms and summaries are skipped, as Prometheus
//! does unless it ingests created timestamps.

use std::borrow::Cow;

use super::lex::{Cursor, unescape};
use super::{Entry, MetricType, Sample, Step, parse_float};
use crate::Error;

const NO_EOF: &str = "data does not end with # EOF";

pub(super) fn next<'a>(cur: &mut Cursor<'a>, mtype: &mut MetricType) -> Result<Step<'a>, Error> {
    match cur.peek() {
        None => Err(cur.err(NO_EOF)),
        Some(b'\n') => Err(cur.err("unexpected empty line")),
        Some(b'#') => comment(cur, mtype),
        Some(_) => sample(cur, *mtype),
    }
}

/// Consumes the line break ending a line, which OpenMetrics requires.
fn end_line(cur: &mut Cursor<'_>, after: &str) -> Result<(), Error> {
    match cur.peek() {
        Some(b'\n') => {
            cur.bump();
            Ok(())
        }
        None => Err(cur.err(NO_EOF)),
        Some(_) => Err(cur.err(format!(
            "expected end of line after {after}, got {}",
            cur.found()
        ))),
    }
}

fn comment<'a>(cur: &mut Cursor<'a>, mtype: &mut MetricType) -> Result<Step<'a>, Error> {
    cur.bump(); // '#'
    if !cur.eat(b' ') {
        return Err(cur.err(format!("expected space after '#', got {}", cur.found())));
    }
    if cur.eat_str("EOF") {
        match cur.peek() {
            None => return Ok(Step::End),
            Some(b'\n') => cur.bump(),
            Some(_) => return Err(cur.err("invalid # EOF line")),
        }
        if !cur.at_end() {
            return Err(cur.err("unexpected data after # EOF"));
        }
        return Ok(Step::End);
    }
    let what = if cur.eat_str("HELP ") {
        "HELP"
    } else if cur.eat_str("TYPE ") {
        "TYPE"
    } else if cur.eat_str("UNIT ") {
        "UNIT"
    } else {
        return Err(cur.err("invalid comment: expected # HELP, # TYPE, # UNIT or # EOF"));
    };
    let family = if cur.peek() == Some(b'"') {
        cur.quoted(false)?
    } else {
        Cow::Borrowed(cur.metric_name())
    };
    if family.is_empty() {
        return Err(cur.err(format!(
            "expected metric name after {what}, got {}",
            cur.found()
        )));
    }
    if !cur.eat(b' ') {
        return Err(cur.err(format!(
            "expected space after metric name in {what}, got {}",
            cur.found()
        )));
    }
    let line = cur.line();
    let text = cur.rest_of_line();
    end_line(cur, what)?;
    let err = |message: String| Error::Exposition { line, message };
    match what {
        "HELP" => Ok(Step::Entry(Entry::Help {
            family,
            text: unescape(text, true),
        })),
        "UNIT" => {
            if !text.is_empty() {
                let ok = family
                    .strip_suffix(text)
                    .is_some_and(|head| head.len() > 1 && head.ends_with('_'));
                if !ok {
                    return Err(err(format!(
                        "unit {text:?} not a suffix of metric {family:?}"
                    )));
                }
            }
            Ok(Step::Entry(Entry::Unit {
                family,
                unit: Cow::Borrowed(text),
            }))
        }
        _ => {
            let kind = match text {
                "counter" => MetricType::Counter,
                "gauge" => MetricType::Gauge,
                "histogram" => MetricType::Histogram,
                "gaugehistogram" => MetricType::GaugeHistogram,
                "summary" => MetricType::Summary,
                "info" => MetricType::Info,
                "stateset" => MetricType::StateSet,
                "unknown" => MetricType::Unknown,
                other => return Err(err(format!("invalid metric type {other:?}"))),
            };
            *mtype = kind;
            Ok(Step::Entry(Entry::Type { family, kind }))
        }
    }
}

fn sample<'a>(cur: &mut Cursor<'a>, mtype: MetricType) -> Result<Step<'a>, Error> {
    let line = cur.line();
    let mut name: Option<Cow<'a, str>> = match cur.metric_name() {
        "" if cur.peek() == Some(b'{') => None,
        "" => return Err(cur.err(format!("expected metric name or '{{', got {}", cur.found()))),
        n => Some(Cow::Borrowed(n)),
    };
    let labels = if cur.peek() == Some(b'{') {
        cur.label_set(false, false, Some(&mut name), mtype)?
    } else {
        Vec::new()
    };
    let Some(name) = name else {
        return Err(cur.err("metric name not set"));
    };
    if !cur.eat(b' ') {
        return Err(cur.err(format!("expected space before value, got {}", cur.found())));
    }
    let value = number(cur, "value")?;
    let mut timestamp_ms = None;
    if cur.eat(b' ') {
        if cur.peek() != Some(b'#') {
            timestamp_ms = Some(timestamp(cur)?);
            if cur.eat(b' ') {
                exemplar(cur)?;
            }
        } else {
            exemplar(cur)?;
        }
    }
    end_line(cur, "sample")?;
    let skips_created = matches!(
        mtype,
        MetricType::Counter
            | MetricType::Histogram
            | MetricType::GaugeHistogram
            | MetricType::Summary
    );
    if skips_created && name.ends_with("_created") {
        return Ok(Step::Skip);
    }
    Ok(Step::Entry(Entry::Sample(Sample {
        name,
        labels,
        value,
        timestamp_ms,
        line,
    })))
}

fn number(cur: &mut Cursor<'_>, what: &str) -> Result<f64, Error> {
    let tok = cur.take_while(|b| b != b' ');
    if tok.is_empty() {
        return Err(cur.err(format!("expected {what}, got {}", cur.found())));
    }
    parse_float(tok).ok_or_else(|| cur.err(format!("invalid {what} {tok:?}")))
}

/// Seconds, possibly fractional, to milliseconds (truncated, as Prometheus).
fn timestamp(cur: &mut Cursor<'_>) -> Result<i64, Error> {
    let secs = number(cur, "timestamp")?;
    if !secs.is_finite() {
        return Err(cur.err(format!("invalid timestamp {secs}")));
    }
    // `as` saturates out-of-range values, which no real scrape sends.
    Ok((secs * 1000.0) as i64)
}

/// `# {labels} value [timestamp]`, after the space that precedes it.
fn exemplar(cur: &mut Cursor<'_>) -> Result<(), Error> {
    if !cur.eat_str("# ") || cur.peek() != Some(b'{') {
        return Err(cur.err(format!("expected exemplar '# {{', got {}", cur.found())));
    }
    cur.label_set(false, false, None, MetricType::Unknown)?;
    if !cur.eat(b' ') {
        return Err(cur.err(format!(
            "expected space before exemplar value, got {}",
            cur.found()
        )));
    }
    number(cur, "exemplar value")?;
    if cur.eat(b' ') {
        timestamp(cur)?;
    }
    Ok(())
}
