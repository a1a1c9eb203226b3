//! Warnings and infos ("annotations") that function computations raise, with Prometheus' texts
//! (`util/annotations/annotations.go`) and its de-duplication and merge rules.
//!
//! Owns: the annotation kinds the float function library can produce, their message text, the
//! per-kind merge (the `histogram_quantile` monotonicity info accumulates buckets, times and a
//! count across steps), and the collection that keys annotations by message as Prometheus' map
//! does. Does not own: positions in the query text (the evaluator renders them, e.g. `1:15`, and
//! hands them in), or limiting how many annotations an API response shows.

use super::gofmt::{format_g, format_g_prec, quote};

/// Prometheus distinguishes warnings (something is probably wrong) from infos (something might be).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Warning,
    Info,
}

/// The range of the `histogram_quantile` monotonicity fix-ups merged into one info.
#[derive(Clone, Debug, PartialEq)]
pub struct MonotonicityFix {
    /// Metric name, only known when `__name__` removal is delayed.
    pub metric_name: Option<String>,
    pub min_ts: i64,
    pub max_ts: i64,
    pub min_bucket: f64,
    pub max_bucket: f64,
    pub max_diff: f64,
    /// How many further fix-ups were merged into this one (the text reports `merged + 1` samples).
    pub merged: usize,
}

/// One annotation. The message (see [`Annotation::message`]) is also its identity.
#[derive(Clone, Debug, PartialEq)]
pub enum Annotation {
    /// A quantile parameter outside `[0, 1]` or NaN.
    InvalidQuantile { q: f64 },
    /// A `limit_ratio` parameter outside `[-1, 1]`, capped to the nearest bound.
    InvalidRatio { ratio: f64, capped_to: f64 },
    /// A classic-histogram bucket whose `le` label is absent or not a float.
    BadBucketLabel {
        /// Only given when `__name__` removal is delayed.
        metric_name: Option<String>,
        le: String,
    },
    /// `rate`/`increase` over a float series whose name lacks a counter suffix.
    PossibleNonCounter { metric_name: String },
    /// Like [`Annotation::PossibleNonCounter`] when type-and-unit labels are enabled.
    PossibleNonCounterLabel {
        metric_name: String,
        type_label: String,
    },
    /// `histogram_quantile` had to make bucket counts monotonic.
    HistogramQuantileForcedMonotonicity(MonotonicityFix),
    /// `sort*` in a range query.
    SortInRangeQuery,
    /// A native histogram skipped by a float-only aggregation (`stddev`, `topk`, …).
    HistogramIgnoredInAggregation { aggregation: String },
    /// Histograms skipped by a float-only range function over a mixed range.
    HistogramIgnoredInMixedRange { metric_name: String },
    /// A function that cannot combine floats and histograms met both.
    MixedFloatsHistograms { metric_name: String },
}

const MONOTONICITY_TEXT: &str = "PromQL info: input to histogram_quantile needed to be fixed for \
     monotonicity (see https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile)";

fn with_metric_name(base: String, name: &Option<String>) -> String {
    match name.as_deref() {
        None | Some("") => base,
        Some(n) => format!("{base} for metric name {}", quote(n)),
    }
}

impl Annotation {
    /// Warning or info.
    pub fn severity(&self) -> Severity {
        match self {
            Annotation::InvalidQuantile { .. }
            | Annotation::InvalidRatio { .. }
            | Annotation::BadBucketLabel { .. }
            | Annotation::SortInRangeQuery
            | Annotation::MixedFloatsHistograms { .. } => Severity::Warning,
            Annotation::PossibleNonCounter { .. }
            | Annotation::PossibleNonCounterLabel { .. }
            | Annotation::HistogramQuantileForcedMonotonicity(_)
            | Annotation::HistogramIgnoredInAggregation { .. }
            | Annotation::HistogramIgnoredInMixedRange { .. } => Severity::Info,
        }
    }

    /// The text without position or merged details: what Prometheus de-duplicates by.
    pub fn message(&self) -> String {
        match self {
            Annotation::InvalidQuantile { q } => format!(
                "PromQL warning: quantile value should be between 0 and 1, got {}",
                format_g(*q)
            ),
            Annotation::InvalidRatio { ratio, capped_to } => format!(
                "PromQL warning: ratio value should be between -1 and 1, got {}, capping to {}",
                format_g(*ratio),
                format_g(*capped_to)
            ),
            Annotation::BadBucketLabel { metric_name, le } => with_metric_name(
                format!(
                    "PromQL warning: bucket label \"le\" is missing or has a malformed value of {}",
                    quote(le)
                ),
                metric_name,
            ),
            Annotation::PossibleNonCounter { metric_name } => format!(
                "PromQL info: metric might not be a counter, name does not end in \
                 _total/_sum/_count/_bucket: {}",
                quote(metric_name)
            ),
            Annotation::PossibleNonCounterLabel {
                metric_name,
                type_label,
            } => format!(
                "PromQL info: metric might not be a counter, __type__ label is not set to \
                 \"counter\" or \"histogram\", got {}: {}",
                quote(type_label),
                quote(metric_name)
            ),
            Annotation::HistogramQuantileForcedMonotonicity(fix) => {
                with_metric_name(MONOTONICITY_TEXT.to_string(), &fix.metric_name)
            }
            Annotation::SortInRangeQuery => "PromQL warning: sort is ineffective for range \
                 queries since results are always ordered by labels"
                .to_string(),
            Annotation::HistogramIgnoredInAggregation { aggregation } => {
                format!("PromQL info: ignored histogram in {aggregation} aggregation")
            }
            Annotation::HistogramIgnoredInMixedRange { metric_name } => format!(
                "PromQL info: ignored histograms in a range containing both floats and histograms \
                 for metric name {}",
                quote(metric_name)
            ),
            Annotation::MixedFloatsHistograms { metric_name } => format!(
                "PromQL warning: encountered a mix of histograms and floats for metric name {}",
                quote(metric_name)
            ),
        }
    }

    /// The text an API response shows: the message, the merged details where the kind has
    /// them, and the position (`line:column`) in parentheses. Prometheus adds details and
    /// position together, once the query text is known, so without a position this is the
    /// bare message.
    pub fn render(&self, position: Option<&str>) -> String {
        let Some(pos) = position else {
            return self.message();
        };
        match self {
            Annotation::HistogramQuantileForcedMonotonicity(fix) => format!(
                "{}, from buckets {} to {}, with a max diff of {}, over {} samples from {} to {} ({pos})",
                self.message(),
                format_g(fix.min_bucket),
                format_g(fix.max_bucket),
                format_g_prec(fix.max_diff, 2),
                fix.merged + 1,
                super::time::rfc3339(fix.min_ts / 1000),
                super::time::rfc3339(fix.max_ts / 1000),
            ),
            _ => format!("{} ({pos})", self.message()),
        }
    }

    /// Combines `self` (newly raised) with `previous` (same message): Prometheus keeps the newer
    /// annotation, except that monotonicity infos accumulate into the older one.
    fn merge_into(self, previous: Annotation) -> (Annotation, bool) {
        match (self, previous) {
            (
                Annotation::HistogramQuantileForcedMonotonicity(new),
                Annotation::HistogramQuantileForcedMonotonicity(mut old),
            ) => {
                old.min_ts = old.min_ts.min(new.min_ts);
                old.max_ts = old.max_ts.max(new.max_ts);
                if new.min_bucket < old.min_bucket {
                    old.min_bucket = new.min_bucket;
                }
                if new.max_bucket > old.max_bucket {
                    old.max_bucket = new.max_bucket;
                }
                if new.max_diff > old.max_diff {
                    old.max_diff = new.max_diff;
                }
                old.merged += new.merged + 1;
                (Annotation::HistogramQuantileForcedMonotonicity(old), true)
            }
            (new, _) => (new, false),
        }
    }
}

/// The quantile warning, if `q` is NaN or outside `[0, 1]`.
pub fn invalid_quantile(q: f64) -> Option<Annotation> {
    (q.is_nan() || !(0.0..=1.0).contains(&q)).then_some(Annotation::InvalidQuantile { q })
}

/// The info `rate`/`increase` raise for a float series whose metric name does not end in a
/// counter suffix (only checked when the series has a name and float samples).
pub fn possible_non_counter(metric_name: &str) -> Option<Annotation> {
    let counter_like = ["_total", "_sum", "_count", "_bucket"]
        .iter()
        .any(|s| metric_name.ends_with(s));
    (!metric_name.is_empty() && !counter_like).then(|| Annotation::PossibleNonCounter {
        metric_name: metric_name.to_string(),
    })
}

/// Annotations of one query, keyed by message as Prometheus' map is, in first-raised order
/// (Prometheus' order is its map's, i.e. unspecified).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Annotations {
    entries: Vec<(Annotation, Option<String>)>,
}

impl Annotations {
    pub fn new() -> Annotations {
        Annotations::default()
    }

    /// Adds `annotation` raised at `position`. An annotation with the same message is replaced
    /// (taking the new position), or, for monotonicity infos, merged (keeping the old position).
    pub fn add(&mut self, annotation: Annotation, position: Option<&str>) {
        let key = annotation.message();
        match self.entries.iter().position(|(a, _)| a.message() == key) {
            None => self
                .entries
                .push((annotation, position.map(str::to_string))),
            Some(i) => {
                let (previous, old_pos) = self.entries[i].clone();
                let (merged, keep_old_position) = annotation.merge_into(previous);
                let pos = if keep_old_position {
                    old_pos
                } else {
                    position.map(str::to_string)
                };
                self.entries[i] = (merged, pos);
            }
        }
    }

    /// Adds every annotation of `other`.
    pub fn merge(&mut self, other: Annotations) {
        for (a, pos) in other.entries {
            self.add(a, pos.as_deref());
        }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The annotations with their positions.
    pub fn iter(&self) -> impl Iterator<Item = (&Annotation, Option<&str>)> {
        self.entries.iter().map(|(a, p)| (a, p.as_deref()))
    }

    /// Rendered warnings, as an API response lists them.
    pub fn warnings(&self) -> Vec<String> {
        self.rendered(Severity::Warning)
    }

    /// Rendered infos.
    pub fn infos(&self) -> Vec<String> {
        self.rendered(Severity::Info)
    }

    fn rendered(&self, severity: Severity) -> Vec<String> {
        self.iter()
            .filter(|(a, _)| a.severity() == severity)
            .map(|(a, p)| a.render(p))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotation_texts_match_prometheus() {
        assert_eq!(invalid_quantile(0.5), None);
        assert_eq!(
            invalid_quantile(-1e-7).unwrap().message(),
            "PromQL warning: quantile value should be between 0 and 1, got -1e-07"
        );
        assert_eq!(
            invalid_quantile(f64::NAN).unwrap().render(Some("1:10")),
            "PromQL warning: quantile value should be between 0 and 1, got NaN (1:10)"
        );
        let info = possible_non_counter("http_requests").unwrap();
        assert_eq!(
            info.message(),
            "PromQL info: metric might not be a counter, name does not end in \
             _total/_sum/_count/_bucket: \"http_requests\""
        );
        assert!(possible_non_counter("x_total").is_none());
    }

    #[test]
    fn annotations_deduplicate_by_message() {
        let mut a = Annotations::new();
        a.add(Annotation::InvalidQuantile { q: 2.0 }, Some("1:1"));
        a.add(Annotation::InvalidQuantile { q: 2.0 }, Some("1:9"));
        a.add(Annotation::SortInRangeQuery, None);
        assert_eq!(a.len(), 2);
        assert_eq!(
            a.warnings()[0],
            "PromQL warning: quantile value should be between 0 and 1, got 2 (1:9)"
        );
        assert!(a.infos().is_empty());
    }
}
