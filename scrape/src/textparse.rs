//! Parsers for scraped text: the Prometheus text exposition format (0.0.4,
//! `text/plain`) and OpenMetrics 1.0 (`application/openmetrics-text`).
//!
//! Owns turning bytes into entries: samples (metric name, labels, value,
//! optional timestamp in milliseconds) and `# TYPE` / `# HELP` / `# UNIT`
//! metadata. Written from the two format specifications, with Prometheus'
//! choices where the specifications leave room: `le` and `quantile` label
//! values of histograms and summaries are normalised to OpenMetrics float
//! form (`le="1"` becomes `le="1.0"`, as Prometheus 3 does), OpenMetrics
//! `_created` series are skipped, exemplars are checked for syntax and
//! dropped, every NaN is the same NaN (never Prometheus' stale marker).
//! It does not own what samples mean (counters, staleness, limits) nor the
//! protobuf format.
//!
//! Parsing stops at the first error, which names the line: Prometheus fails
//! the whole scrape on any error, so nothing after it is worth reading.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

mod lex;
mod openmetrics;
mod prom;
#[cfg(test)]
mod tests;

use std::borrow::Cow;

use ember_index::{Label, Labels};

use crate::Error;

/// Which text format a scrape returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// The Prometheus text format, version 0.0.4.
    PrometheusText,
    /// OpenMetrics 1.0 text.
    OpenMetrics,
}

impl Format {
    /// The format a `Content-Type` header names, or `None` when it names
    /// neither text format (protobuf, blank, unparsable): Prometheus 3 then
    /// uses the job's `fallback_scrape_protocol` or fails the scrape, a
    /// policy left to the caller.
    pub fn from_content_type(content_type: &str) -> Option<Format> {
        let media = content_type.split(';').next().unwrap_or("").trim();
        if media.eq_ignore_ascii_case("application/openmetrics-text") {
            Some(Format::OpenMetrics)
        } else if media.eq_ignore_ascii_case("text/plain") {
            Some(Format::PrometheusText)
        } else {
            None
        }
    }
}

/// A metric family's type, from `# TYPE`. The text format's `untyped` is
/// [`MetricType::Unknown`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
    GaugeHistogram,
    Summary,
    Info,
    StateSet,
    #[default]
    Unknown,
}

/// One parsed item. Strings borrow from the input unless unescaping made a
/// new one.
#[derive(Clone, Debug, PartialEq)]
pub enum Entry<'a> {
    Sample(Sample<'a>),
    Type {
        family: Cow<'a, str>,
        kind: MetricType,
    },
    Help {
        family: Cow<'a, str>,
        text: Cow<'a, str>,
    },
    /// OpenMetrics only.
    Unit {
        family: Cow<'a, str>,
        unit: Cow<'a, str>,
    },
}

/// Label name/value pairs in the order written.
pub type LabelPairs<'a> = Vec<(Cow<'a, str>, Cow<'a, str>)>;

/// One sample line.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample<'a> {
    pub name: Cow<'a, str>,
    /// In the order written; names are unique (checked).
    pub labels: LabelPairs<'a>,
    pub value: f64,
    /// Milliseconds since the epoch (OpenMetrics' seconds are converted).
    pub timestamp_ms: Option<i64>,
    /// 1-based line of the sample in the input.
    pub line: usize,
}

impl Sample<'_> {
    /// The series' label set with `__name__`; fails on an empty label name.
    pub fn to_labels(&self) -> Result<Labels, ember_index::Error> {
        let mut v = Vec::with_capacity(self.labels.len() + 1);
        v.push(Label::new(ember_index::METRIC_NAME, self.name.as_ref()));
        v.extend(
            self.labels
                .iter()
                .map(|(n, val)| Label::new(n.as_ref(), val.as_ref())),
        );
        Labels::new(v)
    }
}

/// Prometheus' `value.NormalNaN`: every scraped NaN gets these bits, so none
/// can be mistaken for the stale marker.
pub const NORMAL_NAN_BITS: u64 = 0x7ff8_0000_0000_0001;

/// Parses `input` in the format `content_type` names; anything that is not
/// OpenMetrics is read as the Prometheus text format.
pub fn parse<'a>(content_type: &str, input: &'a [u8]) -> Parser<'a> {
    let format = Format::from_content_type(content_type).unwrap_or(Format::PrometheusText);
    Parser::new(format, input)
}

/// An iterator over the entries of one scrape. After an error it ends.
pub struct Parser<'a> {
    format: Format,
    cur: lex::Cursor<'a>,
    /// The input was not UTF-8: reported as the first item.
    utf8_error: Option<Error>,
    /// The type from the latest `# TYPE` line.
    mtype: MetricType,
    done: bool,
}

/// What one step of a format parser produced.
enum Step<'a> {
    Entry(Entry<'a>),
    /// A blank line, comment or skipped series.
    Skip,
    End,
}

impl<'a> Parser<'a> {
    pub fn new(format: Format, input: &'a [u8]) -> Parser<'a> {
        let (text, utf8_error) = match std::str::from_utf8(input) {
            Ok(t) => (t, None),
            Err(e) => {
                let good = input.get(..e.valid_up_to()).unwrap_or_default();
                let line = 1 + good.iter().filter(|b| **b == b'\n').count();
                let err = Error::Exposition {
                    line,
                    message: "invalid UTF-8".to_string(),
                };
                ("", Some(err))
            }
        };
        Parser {
            format,
            cur: lex::Cursor::new(text),
            utf8_error,
            mtype: MetricType::Unknown,
            done: false,
        }
    }

    pub fn format(&self) -> Format {
        self.format
    }
}

impl<'a> Iterator for Parser<'a> {
    type Item = Result<Entry<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(e) = self.utf8_error.take() {
            self.done = true;
            return Some(Err(e));
        }
        while !self.done {
            let step = match self.format {
                Format::PrometheusText => prom::next(&mut self.cur, &mut self.mtype),
                Format::OpenMetrics => openmetrics::next(&mut self.cur, &mut self.mtype),
            };
            match step {
                Ok(Step::Entry(e)) => return Some(Ok(e)),
                Ok(Step::Skip) => {}
                Ok(Step::End) => self.done = true,
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
        None
    }
}

/// Parses a float as Go's `strconv.ParseFloat` without the forms Prometheus
/// refuses (hex floats, `_` separators); NaN becomes [`NORMAL_NAN_BITS`].
fn parse_float(s: &str) -> Option<f64> {
    if s.is_empty() || s.contains(['p', 'P', '_']) {
        return None;
    }
    let lower = s.to_ascii_lowercase();
    let unsigned = lower.trim_start_matches(['+', '-']);
    // Rust also takes "infinity"/"nan" like Go; Go refuses a signed NaN.
    if unsigned.starts_with("nan") && unsigned.len() != lower.len() {
        return None;
    }
    let v: f64 = s.parse().ok()?;
    Some(if v.is_nan() {
        f64::from_bits(NORMAL_NAN_BITS)
    } else {
        v
    })
}

/// Prometheus' normalisation of `le` (histograms) and `quantile`
/// (summaries) values to OpenMetrics float form.
fn normalize_label_value<'a>(mtype: MetricType, name: &str, value: Cow<'a, str>) -> Cow<'a, str> {
    let applies = (mtype == MetricType::Histogram && name == "le")
        || (mtype == MetricType::Summary && name == "quantile");
    if !applies {
        return value;
    }
    match parse_float(&value) {
        Some(f) => {
            let formatted = format_openmetrics_float(f);
            if formatted == value {
                value
            } else {
                Cow::Owned(formatted)
            }
        }
        None => value,
    }
}

/// Go's `strconv.FormatFloat(f, 'g', -1, 64)` with `.0` appended when the
/// result has neither `.` nor `e` (Prometheus' `FormatOpenMetricsFloat`).
pub fn format_openmetrics_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".to_string();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.to_string();
    }
    let mut s = format_go_g(f);
    if !s.contains(['.', 'e']) {
        s.push_str(".0");
    }
    s
}

/// Go's `%g` with the shortest round-trip digits. Go picks the exponent form
/// when the decimal exponent is below -4 or at least 6 (the precision it
/// uses for this decision when printing shortest), e.g. `1e+06`, `1.5e-05`.
fn format_go_g(f: f64) -> String {
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.to_string();
    }
    // Rust's `{:e}` prints the shortest round-trip digits: "-1.2345e-7".
    let e = format!("{f:e}");
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let neg = mant.starts_with('-');
    let digits: String = mant.chars().filter(char::is_ascii_digit).collect();
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if !(-4..6).contains(&exp) {
        let (first, rest) = digits.split_at(1.min(digits.len()));
        out.push_str(first);
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        out.push_str(&format!("{:02}", exp.unsigned_abs()));
    } else if exp < 0 {
        out.push_str("0.");
        for _ in 0..(-exp - 1) {
            out.push('0');
        }
        out.push_str(&digits);
    } else {
        let int_len = usize::try_from(exp).unwrap_or(0) + 1;
        if digits.len() <= int_len {
            out.push_str(&digits);
            for _ in digits.len()..int_len {
                out.push('0');
            }
        } else {
            let (i, frac) = digits.split_at(int_len);
            out.push_str(i);
            out.push('.');
            out.push_str(frac);
        }
    }
    out
}
