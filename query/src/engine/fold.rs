//! Aggregations folded into the series loop of a range function over stored series:
//! `sum by (le) (rate(x[5m]))` computed without building `rate`'s output series.
//!
//! Owns when folding applies (with `range_call`, which knows whether the output label sets are
//! distinct), grouping the selected series by the labels the range function would give them,
//! running whole groups on several threads — each group's series in selector order, so every
//! accumulator receives its values in the order the unfolded path gives them and the result is
//! the same bits — and replaying the per-series bookkeeping (sample accounting, limits,
//! annotations, the first error) in series order, so limits fail and annotations appear exactly as
//! without folding. What it saves: an output series (labels and points) per input series, built
//! on a worker and dropped by the aggregation, and the aggregation's serial pass over them.
//!
//! Does not own the windows (`range_call`) or the accumulator numerics
//! (`crate::functions::aggregate`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use ember_index::Label;

use super::QueryError;
use super::aggregate::{SumCell, group_labels};
use super::eval::Evaluator;
use super::parallel;
use super::range_call::{Feed, Windows, stored_windows};
use super::types::{METRIC_NAME, StepSeries, Steps, drop_metric_name};
use crate::functions::aggregate::{self as fagg, Aggregator};

/// An aggregation without parameter (`sum`, `avg`, `count`, `min`, `max`, `group`, `stddev`,
/// `stdvar`) offered to a range call to fold into its series loop.
pub(crate) struct Fold<'a> {
    pub op: fagg::AggOp,
    pub grouping: &'a [String],
    pub without: bool,
}

/// Whether range function `name` drops the metric name from its output: all but
/// `first_over_time` and `last_over_time`, which keep it, and `absent_over_time`, whose output is
/// made from the selector rather than from the series.
pub(super) fn drops_name(name: &str) -> bool {
    !matches!(
        name,
        "first_over_time" | "last_over_time" | "absent_over_time"
    )
}

#[cfg(test)]
thread_local! {
    /// Aggregations this thread folded, so tests can tell the fold from the fallback.
    pub(super) static FOLDED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// One group's accumulators, a cell per step.
enum Row {
    Sum(Vec<SumCell>),
    Any(Vec<Aggregator>),
}

impl Row {
    fn new(op: fagg::AggOp, steps: usize) -> Row {
        if op == fagg::AggOp::Sum {
            Row::Sum(vec![SumCell::default(); steps])
        } else {
            Row::Any((0..steps).map(|_| Aggregator::new(op)).collect())
        }
    }

    /// Adds a series' points, which lie on the step grid in step order (as windows produce them).
    fn add(&mut self, steps: Steps, points: &[(i64, f64)]) {
        let mut k = 0;
        let mut grid_t = steps.start;
        for &(t, v) in points {
            while grid_t < t {
                k += 1;
                grid_t += steps.interval;
            }
            match self {
                Row::Sum(cells) => cells[k].add(v),
                Row::Any(cells) => cells[k].add(v),
            }
        }
    }

    fn points(self, steps: Steps) -> Vec<(i64, f64)> {
        match self {
            Row::Sum(cells) => steps
                .iter()
                .zip(cells)
                .filter_map(|(t, c)| Some((t, c.value()?)))
                .collect(),
            Row::Any(cells) => steps
                .iter()
                .zip(cells)
                .filter_map(|(t, mut c)| Some((t, c.result(f64::NAN)?)))
                .collect(),
        }
    }
}

/// A group computed: its accumulators, and its member series' windows with their points folded
/// away, and how many points each had. Stops at a series that failed: the replay stops there.
struct GroupRun {
    row: Row,
    series: Vec<(Windows, usize)>,
}

/// Each selected series' group, the members of each group (in selector order), and each group's
/// output labels: the labels the range function gives a series (the name dropped), grouped as
/// the aggregation groups them. Groups are numbered in first-seen order, as the aggregation does.
fn groups(
    selected: &[ember::Series],
    fold: &Fold<'_>,
) -> (Vec<usize>, Vec<Vec<usize>>, Vec<ember_index::Labels>) {
    let names: Vec<&str> = fold.grouping.iter().map(String::as_str).collect();
    // The output has no name, so neither `by (__name__)` nor `without` sees one.
    let kept =
        |l: &&Label| l.name != METRIC_NAME && names.contains(&l.name.as_str()) != fold.without;
    let mut index: HashMap<Vec<(&str, &str)>, usize> = HashMap::new();
    let mut members: Vec<Vec<usize>> = Vec::new();
    let mut labels = Vec::new();
    let mut key: Vec<(&str, &str)> = Vec::new();
    let of_series = selected
        .iter()
        .enumerate()
        .map(|(si, s)| {
            key.clear();
            key.extend(
                s.labels()
                    .iter()
                    .filter(kept)
                    .map(|l| (l.name.as_str(), l.value.as_str())),
            );
            let g = match index.get(key.as_slice()) {
                Some(&g) => g,
                None => {
                    let g = members.len();
                    members.push(Vec::new());
                    let out = drop_metric_name(s.labels());
                    labels.push(group_labels(&out, fold.grouping, fold.without));
                    index.insert(key.clone(), g);
                    g
                }
            };
            members[g].push(si);
            g
        })
        .collect();
    (of_series, members, labels)
}

/// Files a computed group's series tallies under their series; gives back its accumulators.
fn settle(members: &[usize], run: GroupRun, tallies: &mut [Option<(Windows, usize)>]) -> Row {
    for (&si, t) in members.iter().zip(run.series) {
        tallies[si] = Some(t);
    }
    run.row
}

impl Evaluator<'_> {
    /// The aggregation `fold` of the range function of `feed` over the `selected` series, which
    /// give distinct label sets once the name is dropped; `before`: the samples the query held
    /// when the range call started.
    pub(super) fn fold_stored(
        &self,
        feed: &Feed<'_>,
        selected: &[ember::Series],
        fold: &Fold<'_>,
        before: usize,
    ) -> Result<Vec<StepSeries>, QueryError> {
        #[cfg(test)]
        FOLDED.with(|n| n.set(n.get() + 1));
        let steps = self.steps;
        let (of_series, members, labels) = groups(selected, fold);
        let interrupt = self.ctx.interrupt();
        let run_group = |members: &Vec<usize>| {
            let mut run = GroupRun {
                row: Row::new(fold.op, steps.count()),
                series: Vec::with_capacity(members.len()),
            };
            for &si in members {
                let s = &selected[si];
                let mut w = stored_windows(feed, steps, &interrupt, s);
                w.note_non_counter(feed, s.labels());
                let points = std::mem::take(&mut w.points);
                let failed = w.err.is_some();
                if !failed {
                    run.row.add(steps, &points);
                }
                run.series.push((w, points.len()));
                if failed {
                    break;
                }
            }
            run
        };
        let budget = self.ctx.max_samples().saturating_sub(self.ctx.current());
        let produced = AtomicUsize::new(0);
        // As for an unfolded range call: the samples to decode and the windows to compute.
        let work = selected.iter().map(|s| s.num_chunks() * 120).sum::<usize>()
            + selected.len() * steps.count();
        let runs = parallel::map_series(&members, work, run_group, |r| {
            // Past the sample limit the replay fails anyway: no need to compute further.
            let points: usize = r.series.iter().map(|(_, n)| n).sum();
            let n = produced.fetch_add(points, Ordering::Relaxed);
            r.series.iter().any(|(w, _)| w.err.is_some()) || n + points > budget
        });
        // The replay, series by series in selector order. A group the threads did not start
        // (they stop early at an error or past the limit) is computed when its first series is
        // reached; a group stops at its first failing series, which the replay fails at.
        let mut rows: Vec<Option<Row>> = (0..members.len()).map(|_| None).collect();
        let mut tallies: Vec<Option<(Windows, usize)>> =
            (0..selected.len()).map(|_| None).collect();
        for (g, run) in runs.into_iter().enumerate() {
            if let Some(run) = run {
                rows[g] = Some(settle(&members[g], run, &mut tallies));
            }
        }
        let mut total = 0;
        for (si, &g) in of_series.iter().enumerate() {
            if rows[g].is_none() {
                rows[g] = Some(settle(&members[g], run_group(&members[g]), &mut tallies));
            }
            let (w, points) = tallies[si].take().expect(
                "a group's series are computed up to its first failure, where the replay stops",
            );
            self.account_range_series(feed, w, points)?;
            total += points;
        }
        self.ctx.set(before + total)?;
        let mut out: Vec<StepSeries> = labels
            .into_iter()
            .zip(rows)
            .map(|(labels, row)| StepSeries {
                labels,
                drop_name: false,
                points: row.map(|r| r.points(steps)).unwrap_or_default(),
            })
            .collect();
        out.retain(|s| !s.points.is_empty());
        Ok(out)
    }
}
