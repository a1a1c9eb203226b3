//! Aggregation operators over the float values of one group at one step: `sum`, `avg`, `count`,
//! `group`, `min`, `max`, `stddev`, `stdvar`, `quantile`, and the selecting `topk`, `bottomk`,
//! `limitk`, `limit_ratio`.
//!
//! Owns the numerics and selection rules of `aggregation`/`aggregationK` in Prometheus'
//! `engine.go`: a Kahan-compensated `sum`; `avg` as a compensated sum divided by the count that
//! switches to an incremental mean if the sum would overflow; Welford's `stddev`/`stdvar` (not
//! compensated, unlike `stddev_over_time`); NaN handling of `min`/`max`; Go's `container/heap`
//! behaviour for `topk`/`bottomk`/`limitk`, so equal values keep the same series as in
//! Prometheus, and the output order. Does not own grouping labels, the parameter checks that
//! fail a query (NaN k, overflowing k, NaN ratio), the labels hash `limit_ratio` samples by, or
//! `count_values` grouping (its label text is [`super::gofmt::format_value_label`]).

use super::kahan::kahan_inc;
use super::quantile::quantile;

/// A value aggregation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AggOp {
    Sum,
    Avg,
    Count,
    Group,
    Min,
    Max,
    Stddev,
    Stdvar,
    Quantile,
}

/// The running state of one group's aggregation at one step.
#[derive(Clone, Debug)]
pub struct Aggregator {
    op: AggOp,
    seen: bool,
    value: f64,
    mean: f64,
    kahan_c: f64,
    count: f64,
    incremental_mean: bool,
    values: Vec<f64>,
}

impl Aggregator {
    pub fn new(op: AggOp) -> Aggregator {
        Aggregator {
            op,
            seen: false,
            value: 0.0,
            mean: 0.0,
            kahan_c: 0.0,
            count: 0.0,
            incremental_mean: false,
            values: Vec::new(),
        }
    }

    /// Forgets all values (keeping allocations) for the next step.
    pub fn reset(&mut self) {
        let values = std::mem::take(&mut self.values);
        *self = Aggregator::new(self.op);
        self.values = values;
        self.values.clear();
    }

    /// Whether any value was added since the last reset.
    pub fn is_empty(&self) -> bool {
        !self.seen
    }

    /// Adds one series' value.
    pub fn add(&mut self, v: f64) {
        if !self.seen {
            // The first value initialises every field as Prometheus does.
            self.seen = true;
            self.value = v;
            self.mean = v;
            self.count = 1.0;
            match self.op {
                // Welford's running sum of squares starts at 0, or NaN if the value already
                // makes the variance undefined.
                AggOp::Stddev | AggOp::Stdvar => {
                    self.value = if v.is_nan() || v.is_infinite() {
                        f64::NAN
                    } else {
                        0.0
                    };
                }
                AggOp::Quantile => self.values.push(v),
                AggOp::Group => self.value = 1.0,
                _ => {}
            }
            return;
        }
        match self.op {
            AggOp::Sum => (self.value, self.kahan_c) = kahan_inc(v, self.value, self.kahan_c),
            AggOp::Avg => {
                self.count += 1.0;
                if !self.incremental_mean {
                    let (sum, c) = kahan_inc(v, self.value, self.kahan_c);
                    if !sum.is_infinite() {
                        (self.value, self.kahan_c) = (sum, c);
                        return;
                    }
                    // The sum would overflow: carry on with an incremental mean, which cannot.
                    self.incremental_mean = true;
                    self.mean = self.value / (self.count - 1.0);
                    self.kahan_c /= self.count - 1.0;
                }
                let q = (self.count - 1.0) / self.count;
                (self.mean, self.kahan_c) =
                    kahan_inc(v / self.count, q * self.mean, q * self.kahan_c);
            }
            AggOp::Count => self.count += 1.0,
            AggOp::Group => {}
            // A NaN so far is replaced by anything; a NaN value never replaces a number.
            AggOp::Max => {
                if self.value < v || self.value.is_nan() {
                    self.value = v;
                }
            }
            AggOp::Min => {
                if self.value > v || self.value.is_nan() {
                    self.value = v;
                }
            }
            AggOp::Stddev | AggOp::Stdvar => {
                self.count += 1.0;
                let delta = v - self.mean;
                self.mean += delta / self.count;
                self.value += delta * (v - self.mean);
            }
            AggOp::Quantile => self.values.push(v),
        }
    }

    /// The aggregate; `None` if nothing was added. `param` is φ for `quantile` (see
    /// [`quantile`] for values outside `[0, 1]`) and ignored otherwise.
    pub fn result(&mut self, param: f64) -> Option<f64> {
        if !self.seen {
            return None;
        }
        Some(match self.op {
            AggOp::Sum => self.value + self.kahan_c,
            AggOp::Avg if self.incremental_mean => self.mean + self.kahan_c,
            AggOp::Avg => self.value / self.count + self.kahan_c / self.count,
            AggOp::Count => self.count,
            AggOp::Stdvar => self.value / self.count,
            AggOp::Stddev => (self.value / self.count).sqrt(),
            AggOp::Quantile => quantile(param, &mut self.values),
            AggOp::Group | AggOp::Min | AggOp::Max => self.value,
        })
    }
}

/// Aggregates `values` in order with `op` (a convenience over [`Aggregator`]).
pub fn aggregate(op: AggOp, values: &[f64], param: f64) -> Option<f64> {
    let mut a = Aggregator::new(op);
    for &v in values {
        a.add(v);
    }
    a.result(param)
}

/// A selecting aggregation and its parameter.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Select {
    /// The `k` largest values, largest first (NaN only if nothing else is left).
    Topk(i64),
    /// The `k` smallest values, smallest first (NaN only if nothing else is left).
    Bottomk(i64),
    /// The first `k` series offered.
    Limitk(i64),
    /// The series whose sampling offset falls within the ratio, see [`limit_ratio_keeps`].
    LimitRatio(f64),
}

/// Go's `int64(k)` bounded by the number of input series, as `topk`/`bottomk`/`limitk` use it
/// (the evaluator has already rejected NaN and k outside the `i64` range). A result below 1
/// means no output at this step.
pub fn k_from_param(param: f64, num_series: usize) -> i64 {
    (param.trunc() as i64).min(num_series as i64)
}

/// The ratio `limit_ratio` uses: clamped to `[-1, 1]` (with the invalid-ratio warning raised by
/// the evaluator). A ratio of 0 selects nothing at that step.
pub fn clamp_ratio(param: f64) -> f64 {
    param.clamp(-1.0, 1.0)
}

/// A series' sampling offset in `[0, 1]` from its labels hash (Prometheus' `labels.Hash()`,
/// XXH64 over the label bytes): `hash / u64::MAX` in floating point.
pub fn ratio_sample_offset(labels_hash: u64) -> f64 {
    labels_hash as f64 / u64::MAX as f64
}

/// Whether `limit_ratio(ratio, …)` keeps a series with sampling `offset`: offsets below a
/// positive ratio, or at/above `1 + ratio` for a negative one, so `limit_ratio(r)` and
/// `limit_ratio(r - 1)` split the series into complementary sets.
pub fn limit_ratio_keeps(ratio: f64, offset: f64) -> bool {
    if ratio >= 0.0 {
        offset < ratio
    } else {
        offset >= 1.0 + ratio
    }
}

/// One group's selection at one step. Items are whatever identifies a series to the caller.
#[derive(Clone, Debug)]
pub struct Selection<T> {
    select: Select,
    /// A binary heap in Go's `container/heap` layout: for `topk` (and, with its value order,
    /// `limitk`/`limit_ratio`) the smallest value on top, for `bottomk` the largest.
    heap: Vec<(f64, T)>,
}

impl<T> Selection<T> {
    pub fn new(select: Select) -> Selection<T> {
        Selection {
            select,
            heap: Vec::new(),
        }
    }

    /// Prometheus' heap `Less`: a NaN is "less" than anything (so it sits on top and is the
    /// first to be replaced); otherwise by value, ascending except for `bottomk`.
    fn less(&self, i: usize, j: usize) -> bool {
        let (a, b) = (self.heap[i].0, self.heap[j].0);
        if a.is_nan() {
            return true;
        }
        match self.select {
            Select::Bottomk(_) => a > b,
            _ => a < b,
        }
    }

    fn up(&mut self, mut j: usize) {
        while j > 0 {
            let parent = (j - 1) / 2;
            if !self.less(j, parent) {
                break;
            }
            self.heap.swap(parent, j);
            j = parent;
        }
    }

    fn down(&mut self, start: usize) -> bool {
        let n = self.heap.len();
        let mut i = start;
        loop {
            let left = 2 * i + 1;
            if left >= n {
                break;
            }
            let mut child = left;
            if left + 1 < n && self.less(left + 1, left) {
                child = left + 1;
            }
            if !self.less(child, i) {
                break;
            }
            self.heap.swap(i, child);
            i = child;
        }
        i > start
    }

    fn push(&mut self, value: f64, item: T) {
        self.heap.push((value, item));
        let last = self.heap.len() - 1;
        self.up(last);
    }

    /// Offers one series' value. For `limit_ratio` the caller offers only the series
    /// [`limit_ratio_keeps`] accepts.
    pub fn offer(&mut self, value: f64, item: T) {
        match self.select {
            Select::Topk(k) | Select::Bottomk(k) => {
                if (self.heap.len() as i64) < k {
                    self.push(value, item);
                    return;
                }
                if k < 1 {
                    return;
                }
                let top = self.heap[0].0;
                let better = match self.select {
                    Select::Topk(_) => top < value,
                    _ => top > value,
                };
                if better || (top.is_nan() && !value.is_nan()) {
                    self.heap[0] = (value, item);
                    // Go's heap.Fix, skipped for k = 1 as Prometheus does.
                    if k > 1 && !self.down(0) {
                        self.up(0);
                    }
                }
            }
            Select::Limitk(k) => {
                if (self.heap.len() as i64) < k {
                    // The first item is placed directly, later ones pushed (sifted by value).
                    self.push(value, item);
                }
            }
            Select::LimitRatio(_) => self.push(value, item),
        }
    }

    /// Whether `limitk` has its `k` items (later offers are ignored, so the caller may stop).
    pub fn is_full(&self) -> bool {
        matches!(self.select, Select::Limitk(k) if self.heap.len() as i64 >= k)
    }

    /// The selected items in Prometheus' output order: `topk` descending and `bottomk` ascending
    /// by value with NaN last; `limitk`/`limit_ratio` in heap order.
    pub fn into_sorted(mut self) -> Vec<(f64, T)> {
        match self.select {
            Select::Topk(_) | Select::Bottomk(_) => {
                let reverse_less = |heap: &[(f64, T)], i: usize, j: usize| {
                    // sort.Reverse of the heap order: `Less(j, i)`.
                    let (a, b) = (heap[j].0, heap[i].0);
                    if a.is_nan() {
                        return true;
                    }
                    match self.select {
                        Select::Bottomk(_) => a > b,
                        _ => a < b,
                    }
                };
                let n = self.heap.len();
                if n <= 12 {
                    // Go's sort.Sort runs an insertion sort on up to 12 elements; replaying it
                    // reproduces the order of equal values and NaNs exactly.
                    for i in 1..n {
                        let mut j = i;
                        while j > 0 && reverse_less(&self.heap, j, j - 1) {
                            self.heap.swap(j, j - 1);
                            j -= 1;
                        }
                    }
                } else {
                    // Larger k: Go's pattern-defeating quicksort is not stable, so the order
                    // among equal values can differ from Prometheus'; values are ordered alike.
                    let desc = matches!(self.select, Select::Topk(_));
                    self.heap
                        .sort_by(|a, b| match (a.0.is_nan(), b.0.is_nan()) {
                            (true, true) => std::cmp::Ordering::Equal,
                            (true, false) => std::cmp::Ordering::Greater,
                            (false, true) => std::cmp::Ordering::Less,
                            _ if desc => b.0.partial_cmp(&a.0).expect("not NaN"),
                            _ => a.0.partial_cmp(&b.0).expect("not NaN"),
                        });
                }
                self.heap
            }
            Select::Limitk(_) | Select::LimitRatio(_) => self.heap,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn select_values(select: Select, values: &[f64]) -> Vec<f64> {
        let mut s = Selection::new(select);
        for (i, &v) in values.iter().enumerate() {
            s.offer(v, i);
        }
        s.into_sorted().into_iter().map(|(v, _)| v).collect()
    }

    proptest! {
        #[test]
        fn topk_and_bottomk_return_the_extreme_values_in_order(
            values in prop::collection::vec(-50i32..50, 0..40),
            k in 1i64..20,
        ) {
            let values: Vec<f64> = values.into_iter().map(f64::from).collect();
            let mut sorted = values.clone();
            sorted.sort_by(|a, b| b.partial_cmp(a).unwrap());
            let n = (k as usize).min(values.len());
            prop_assert_eq!(select_values(Select::Topk(k), &values), sorted[..n].to_vec());
            sorted.reverse();
            prop_assert_eq!(select_values(Select::Bottomk(k), &values), sorted[..n].to_vec());
        }

        #[test]
        fn limitk_keeps_the_first_k_offered(
            values in prop::collection::vec(-50i32..50, 0..40),
            k in 1i64..20,
        ) {
            let mut s = Selection::new(Select::Limitk(k));
            for (i, &v) in values.iter().enumerate() {
                s.offer(f64::from(v), i);
            }
            let mut kept: Vec<usize> = s.into_sorted().into_iter().map(|(_, i)| i).collect();
            kept.sort_unstable();
            let n = (k as usize).min(values.len());
            prop_assert_eq!(kept, (0..n).collect::<Vec<_>>());
        }

        #[test]
        fn sum_of_small_integers_is_exact(values in prop::collection::vec(-1000i32..1000, 1..50)) {
            let floats: Vec<f64> = values.iter().map(|&v| f64::from(v)).collect();
            let exact: i32 = values.iter().sum();
            prop_assert_eq!(aggregate(AggOp::Sum, &floats, 0.0), Some(f64::from(exact)));
        }
    }

    #[test]
    fn larger_k_sorts_without_the_insertion_sort() {
        let values: Vec<f64> = (0..30).map(|i| f64::from(i % 7)).collect();
        let got = select_values(Select::Topk(20), &values);
        assert_eq!(got.len(), 20);
        assert!(got.windows(2).all(|w| w[0] >= w[1]));
        let mut with_nan = values.clone();
        with_nan.extend([f64::NAN; 3]);
        let got = select_values(Select::Bottomk(40), &with_nan);
        assert!(got[..30].iter().all(|v| !v.is_nan()) && got[30..].iter().all(|v| v.is_nan()));
    }
}
