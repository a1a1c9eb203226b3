//! The evaluator's internal value shapes and the label helpers every operator shares.
//!
//! Owns [`Steps`] (the evaluation grid of one evaluator), [`StepSeries`] (a series of an expression
//! evaluated over all steps, or of a range vector), and label edits done the way Prometheus does them
//! (dropping the metric name, the Go `labels.String()` text used in error messages).
//! It does not own the public result types (`crate::value`).

use ember_index::{Label, Labels};

use crate::functions::gofmt::quote;

/// `__name__`.
pub(crate) const METRIC_NAME: &str = "__name__";

/// Labels Prometheus drops together with the metric name (`schema.IsMetadataLabel`): the name and the
/// type/unit metadata labels, which describe the metric and stop being true once a value is transformed.
const METADATA_LABELS: [&str; 3] = ["__name__", "__type__", "__unit__"];

/// The timestamps one evaluator produces values at: `start, start + interval, …, <= end`. An instant
/// query is a grid of one step (`start == end`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Steps {
    pub start: i64,
    pub end: i64,
    pub interval: i64,
}

impl Steps {
    pub(crate) fn count(&self) -> usize {
        if self.end < self.start {
            return 0;
        }
        ((self.end - self.start) / self.interval) as usize + 1
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = i64> + use<> {
        let Steps {
            start,
            end,
            interval,
        } = *self;
        (0..self.count() as i64)
            .map(move |i| start + i * interval)
            .take_while(move |&t| t <= end)
    }

    /// Index of step timestamp `t` (which must lie on the grid).
    pub(crate) fn index(&self, t: i64) -> usize {
        ((t - self.start) / self.interval) as usize
    }

    pub(crate) fn is_instant(&self) -> bool {
        self.start == self.end
    }
}

/// A series produced by evaluating an expression over the steps (points at step timestamps, one at
/// most per step), or a range vector's series (raw sample timestamps).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct StepSeries {
    pub labels: Labels,
    /// Prometheus' `DropName`: the metric name is to be removed at the end of evaluation (delayed name
    /// removal); without that feature the name is already gone when this is set.
    pub drop_name: bool,
    pub points: Vec<(i64, f64)>,
}

/// `labels` without the metric name and the metadata labels.
pub(crate) fn drop_metric_name(labels: &Labels) -> Labels {
    if labels.iter().any(|l| l.name.starts_with("__")) {
        labels.without(&METADATA_LABELS)
    } else {
        labels.clone()
    }
}

/// Builds a label set from labels already known to be valid (taken from other label sets).
pub(crate) fn labels_from(v: Vec<Label>) -> Labels {
    Labels::new(v).expect("names come from valid label sets")
}

/// Prometheus' `labels.Labels.String()`: `{__name__="up", job="x"}`, every label inside the braces,
/// values quoted as Go's `strconv.Quote` does. Used where Prometheus puts label sets into error text.
pub(crate) fn go_labels_string(labels: &Labels) -> String {
    let mut s = String::from("{");
    for (i, l) in labels.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        if is_legacy_label_name(&l.name) {
            s.push_str(&l.name);
        } else {
            s.push_str(&quote(&l.name));
        }
        s.push('=');
        s.push_str(&quote(&l.value));
    }
    s.push('}');
    s
}

fn is_legacy_label_name(n: &str) -> bool {
    let mut c = n.chars();
    matches!(c.next(), Some(ch) if ch.is_ascii_alphabetic() || ch == '_')
        && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_grid() {
        let s = Steps {
            start: 0,
            end: 10,
            interval: 3,
        };
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![0, 3, 6, 9]);
        assert_eq!(s.count(), 4);
        assert_eq!(s.index(6), 2);
    }

    #[test]
    fn go_string_puts_name_inside_braces() {
        let l = Labels::from_pairs([("__name__", "up"), ("job", "a\"b")]).unwrap();
        assert_eq!(go_labels_string(&l), r#"{__name__="up", job="a\"b"}"#);
        assert_eq!(go_labels_string(&Labels::empty()), "{}");
    }

    #[test]
    fn drop_name_removes_metadata_labels() {
        let l =
            Labels::from_pairs([("__name__", "up"), ("__type__", "gauge"), ("a", "b")]).unwrap();
        assert_eq!(
            drop_metric_name(&l),
            Labels::from_pairs([("a", "b")]).unwrap()
        );
    }
}
