//! Which evals the runner skips, and why. Ember stores no native histograms and the engine seam
//! carries no start timestamps, so evals that depend on either cannot be judged: they are skipped
//! and counted, never failed.
//!
//! Owns: the skip reasons and the state loads leave behind until the next `clear`.
//! Does not own: running anything (`runner`).
//!
//! The policy, deliberately conservative (when unsure, skip rather than fail):
//! - an eval whose expected result contains a native histogram is skipped;
//! - after `load_with_nhcb` or a load with `@st` lines, every eval until `clear` is skipped
//!   (derived histograms and start timestamps can change any result over those series);
//! - after a load with native histogram samples, an eval is skipped when its expression could
//!   select one of those series: it mentions one of their metric names as a word, matches on
//!   `__name__`, or contains a selector without a metric name (`{job="x"}`). An unnamed
//!   histogram series taints everything. Without the PromQL parser this is a textual check, which
//!   errs towards skipping.

use std::collections::BTreeSet;
use std::fmt;

use super::script::{Eval, Load};
use super::series::SeqValue;

/// Why an eval did not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SkipReason {
    /// The expected result contains a native histogram (`{{…}}`).
    HistogramExpected,
    /// The expression may select a series that was loaded with native histogram samples.
    HistogramLoaded,
    /// Since the last `clear`, a `load_with_nhcb` ran: Prometheus would also have derived native
    /// histograms with custom buckets.
    NhcbLoaded,
    /// Since the last `clear`, a `load` had `@st` start timestamps.
    StartTimestampsLoaded,
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SkipReason::HistogramExpected => "native histogram in expected result",
            SkipReason::HistogramLoaded => "may select native histogram series",
            SkipReason::NhcbLoaded => "load_with_nhcb",
            SkipReason::StartTimestampsLoaded => "@st start timestamps loaded",
        })
    }
}

/// What the loads since the last `clear` make unreliable.
#[derive(Debug, Default)]
pub struct Taint {
    /// Everything is unreliable, for this reason.
    all: Option<SkipReason>,
    /// Metric names of series that had native histogram samples.
    histogram_names: BTreeSet<String>,
}

impl Taint {
    /// Records what a load brings in.
    pub fn add_load(&mut self, load: &Load) {
        if load.with_nhcb {
            self.all = self.all.or(Some(SkipReason::NhcbLoaded));
        }
        if load.series.iter().any(|s| s.start_timestamps.is_some()) {
            self.all = self.all.or(Some(SkipReason::StartTimestampsLoaded));
        }
        for s in &load.series {
            if !s.values.iter().any(|v| matches!(v, SeqValue::Histogram)) {
                continue;
            }
            match s.labels.metric_name() {
                Some(name) => {
                    self.histogram_names.insert(name.to_string());
                }
                // A series without a name can be selected by almost anything.
                None => self.all = self.all.or(Some(SkipReason::HistogramLoaded)),
            }
        }
    }

    /// Why `eval` must be skipped, if it must.
    pub fn skip_reason(&self, eval: &Eval) -> Option<SkipReason> {
        if eval.expects_histograms() {
            return Some(SkipReason::HistogramExpected);
        }
        if self.all.is_some() {
            return self.all;
        }
        let reaches = !self.histogram_names.is_empty()
            && (may_select_without_name(&eval.expr)
                || self
                    .histogram_names
                    .iter()
                    .any(|n| mentions_word(&eval.expr, n))
                // `info()` joins `target_info` without naming it.
                || (self.histogram_names.contains("target_info") && eval.expr.contains("info(")));
        reaches.then_some(SkipReason::HistogramLoaded)
    }
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// Whether `word` occurs in `expr` not inside a longer identifier (quoted text included, which
/// only makes the check more conservative).
fn mentions_word(expr: &str, word: &str) -> bool {
    expr.match_indices(word).any(|(i, _)| {
        let before = expr[..i].chars().next_back();
        let after = expr[i + word.len()..].chars().next();
        !before.is_some_and(is_ident) && !after.is_some_and(is_ident)
    })
}

/// Whether the expression may contain a selector that is not pinned to a literal metric name:
/// any `__name__` matcher, or a `{` not directly preceded (spaces aside) by a metric name — after
/// `(`, `,`, an operator, or a keyword such as `and`.
fn may_select_without_name(expr: &str) -> bool {
    if expr.contains("__name__") {
        return true;
    }
    const KEYWORDS: [&str; 5] = ["and", "or", "unless", "atan2", "bool"];
    expr.match_indices('{').any(|(i, _)| {
        let before = expr[..i].trim_end();
        let word_start = before
            .char_indices()
            .rev()
            .take_while(|&(_, c)| is_ident(c))
            .last()
            .map_or(before.len(), |(j, _)| j);
        let word = &before[word_start..];
        word.is_empty()
            || word.starts_with(|c: char| c.is_ascii_digit())
            || KEYWORDS.contains(&word.to_ascii_lowercase().as_str())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::promqltest::script::{CommandKind, parse_script};

    fn taint_after(load: &str) -> Taint {
        let mut t = Taint::default();
        for c in parse_script("t", load).unwrap().commands {
            if let CommandKind::Load(l) = c.kind {
                t.add_load(&l);
            }
        }
        t
    }

    fn eval(expr: &str) -> Eval {
        let text = format!("eval instant at 0 {expr}\n");
        match parse_script("t", &text).unwrap().commands.remove(0).kind {
            CommandKind::Eval(e) => *e,
            _ => unreachable!(),
        }
    }

    #[test]
    fn float_only_loads_skip_nothing() {
        let t = taint_after("load 1m\n  f 1\n");
        assert_eq!(t.skip_reason(&eval("{__name__=~\".+\"}")), None);
    }

    #[test]
    fn histogram_expectation_is_always_skipped() {
        let t = Taint::default();
        let text = "eval instant at 0 h\n  h {{count:1}}\n";
        let CommandKind::Eval(e) = parse_script("t", text).unwrap().commands.remove(0).kind else {
            unreachable!()
        };
        assert_eq!(t.skip_reason(&e), Some(SkipReason::HistogramExpected));
    }

    #[test]
    fn histogram_load_skips_only_evals_that_may_reach_it() {
        let t = taint_after("load 1m\n  hist {{count:1}}\n  float_metric 1\n  hist_count 1\n");
        let reason = |e: &str| t.skip_reason(&eval(e));
        let skipped = Some(SkipReason::HistogramLoaded);
        assert_eq!(reason("histogram_count(hist)"), skipped);
        assert_eq!(reason("rate(hist[5m]) + float_metric"), skipped);
        assert_eq!(reason("{__name__=~\"h.*\"}"), skipped);
        assert_eq!(reason("sum({job=\"x\"})"), skipped);
        assert_eq!(reason("float_metric and {job=\"x\"}"), skipped);
        assert_eq!(reason("float_metric"), None);
        assert_eq!(
            reason("hist_count * 2"),
            None,
            "a longer name is another series"
        );
        assert_eq!(reason("rate(float_metric{job=\"x\"}[5m])"), None);
        assert_eq!(reason("float_metric {job=\"x\"}"), None);
    }

    #[test]
    fn unnamed_histogram_series_taints_everything() {
        let t = taint_after("load 1m\n  {job=\"x\"} {{count:1}}\n");
        assert_eq!(
            t.skip_reason(&eval("float_metric")),
            Some(SkipReason::HistogramLoaded)
        );
    }

    #[test]
    fn nhcb_and_start_timestamps_taint_everything() {
        let t = taint_after("load_with_nhcb 1m\n  h_bucket{le=\"1\"} 1\n");
        assert_eq!(t.skip_reason(&eval("other")), Some(SkipReason::NhcbLoaded));
        let t = taint_after("load 1m\n  c@st 0s\n  c 1\n");
        assert_eq!(
            t.skip_reason(&eval("other")),
            Some(SkipReason::StartTimestampsLoaded)
        );
    }
}
