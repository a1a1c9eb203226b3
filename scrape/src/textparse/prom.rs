//! The Prometheus text exposition format, version 0.0.4.
//!
//! Lines are samples (`name{labels} value [timestamp_ms]`), `# HELP` and
//! `# TYPE` lines, other comments (ignored) and blank lines. Spaces and tabs
//! may separate any two tokens; the last line need not end in a line break.

use std::borrow::Cow;

use super::lex::{Cursor, unescape};
use super::{Entry, MetricType, Sample, Step, parse_float};
use crate::Error;

pub(super) fn next<'a>(cur: &mut Cursor<'a>, mtype: &mut MetricType) -> Result<Step<'a>, Error> {
    cur.skip_blanks();
    match cur.peek() {
        None => Ok(Step::End),
        Some(b'\n') => {
            cur.bump();
            Ok(Step::Skip)
        }
        Some(b'#') => comment(cur, mtype),
        Some(_) => sample(cur, *mtype).map(|s| Step::Entry(Entry::Sample(s))),
    }
}

fn comment<'a>(cur: &mut Cursor<'a>, mtype: &mut MetricType) -> Result<Step<'a>, Error> {
    cur.bump(); // '#'
    if cur.skip_blanks() == 0 {
        cur.skip_line();
        return Ok(Step::Skip);
    }
    let is_help = if cur.eat_str("HELP") {
        true
    } else if cur.eat_str("TYPE") {
        false
    } else {
        cur.skip_line();
        return Ok(Step::Skip);
    };
    // `# HELPFUL` or `# TYPE` alone is an ordinary comment.
    if cur.skip_blanks() == 0 {
        cur.skip_line();
        return Ok(Step::Skip);
    }
    let what = if is_help { "HELP" } else { "TYPE" };
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
    let at_eol = matches!(cur.peek(), None | Some(b'\n'));
    if !at_eol && cur.skip_blanks() == 0 {
        return Err(cur.err(format!(
            "expected blank after metric name in {what}, got {}",
            cur.found()
        )));
    }
    let line = cur.line();
    let text = cur.rest_of_line();
    cur.eat(b'\n');
    if is_help {
        return Ok(Step::Entry(Entry::Help {
            family,
            text: unescape(text, false),
        }));
    }
    let kind = match text.trim_end_matches([' ', '\t']) {
        "counter" => MetricType::Counter,
        "gauge" => MetricType::Gauge,
        "histogram" => MetricType::Histogram,
        "summary" => MetricType::Summary,
        "untyped" => MetricType::Unknown,
        other => {
            return Err(Error::Exposition {
                line,
                message: format!("invalid metric type {other:?}"),
            });
        }
    };
    *mtype = kind;
    Ok(Step::Entry(Entry::Type { family, kind }))
}

fn sample<'a>(cur: &mut Cursor<'a>, mtype: MetricType) -> Result<Sample<'a>, Error> {
    let line = cur.line();
    let mut name: Option<Cow<'a, str>> = match cur.metric_name() {
        "" if cur.peek() == Some(b'{') => None,
        "" => return Err(cur.err(format!("expected metric name or '{{', got {}", cur.found()))),
        n => Some(Cow::Borrowed(n)),
    };
    cur.skip_blanks();
    let labels = if cur.peek() == Some(b'{') {
        cur.label_set(true, true, Some(&mut name), mtype)?
    } else {
        Vec::new()
    };
    let Some(name) = name else {
        return Err(cur.err("metric name not set"));
    };
    cur.skip_blanks();
    let tok = cur.take_while(|b| !matches!(b, b' ' | b'\t' | b'{'));
    if tok.is_empty() {
        return Err(cur.err(format!(
            "expected value after metric {name:?}, got {}",
            cur.found()
        )));
    }
    let value = parse_float(tok).ok_or_else(|| cur.err(format!("invalid value {tok:?}")))?;
    let mut timestamp_ms = None;
    if cur.skip_blanks() > 0 && cur.peek().is_some_and(|b| b.is_ascii_digit()) {
        let ts = cur.take_while(|b| b.is_ascii_digit());
        let ts: i64 = ts
            .parse()
            .map_err(|_| cur.err(format!("timestamp {ts:?} out of range")))?;
        timestamp_ms = Some(ts);
        cur.skip_blanks();
    }
    match cur.peek() {
        None => {}
        Some(b'\n') => cur.bump(),
        Some(_) => {
            return Err(cur.err(format!(
                "expected timestamp or end of line after value, got {}",
                cur.found()
            )));
        }
    }
    Ok(Sample {
        name,
        labels,
        value,
        timestamp_ms,
        line,
    })
}
