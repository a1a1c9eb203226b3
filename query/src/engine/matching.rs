//! Vector/vector operations over all steps: label matching (`on`/`ignoring`), cardinality
//! (`group_left`/`group_right`), fill values, the set operators `and`/`or`/`unless`, and the labels
//! of results.
//!
//! Owns Prometheus' `VectorBinop`/`VectorAnd`/`VectorOr`/`VectorUnless` semantics and their errors
//! ("found duplicate series for the match group …", "multiple matches for labels: …", duplicate
//! label sets at a step), computed without per-step label work: each series' match signature is
//! computed once, each (left, right) pairing's result labels once, and the steps move values only.
//! It does not own the element operations themselves (`binary`).

use std::collections::{HashMap, HashSet};

use ember_index::{Label, Labels};

use super::QueryError;
use super::binary::{BinOp, btos, elem_binop};
use super::eval::{Evaluator, Val, duplicate_labelset};
use super::plan::Binary;
use super::types::{METRIC_NAME, StepSeries, drop_metric_name, go_labels_string, labels_from};

/// Matching cardinality.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Card {
    OneToOne,
    ManyToOne,
    OneToMany,
    ManyToMany,
}

/// How the two sides of a vector/vector operation are matched.
#[derive(Clone, Debug)]
pub(crate) struct Matching {
    pub card: Card,
    /// `on(...)` (true) or `ignoring(...)` (false; also the default with an empty list).
    pub on: bool,
    pub names: Vec<String>,
    /// `group_left(...)`/`group_right(...)` labels copied from the "one" side.
    pub include: Vec<String>,
    /// Fill value for a missing "many"-side sample (`fill_left`, or `fill`).
    pub fill_lhs: Option<f64>,
    /// Fill value for a missing "one"-side sample (`fill_right`, or `fill`).
    pub fill_rhs: Option<f64>,
}

impl Matching {
    /// The labels a series matches on: `on` keeps the listed labels, `ignoring` drops them and the
    /// metric name.
    pub(crate) fn match_labels(&self, l: &Labels) -> Labels {
        let names: Vec<&str> = self.names.iter().map(String::as_str).collect();
        if self.on {
            l.keep_only(&names)
        } else {
            let mut all = names;
            all.push(METRIC_NAME);
            l.without(&all)
        }
    }

    /// Labels of a result element. `many` is the "many" side (the left operand unless
    /// `group_right` swapped them), `one` the other.
    fn result_labels(&self, many: &Labels, one: &Labels, op: BinOp, drop_name: bool) -> Labels {
        let mut out = if drop_name || op.changes_metric_schema() {
            drop_metric_name(many)
        } else {
            many.clone()
        };
        if self.card == Card::OneToOne {
            let names: Vec<&str> = self.names.iter().map(String::as_str).collect();
            out = if self.on {
                out.keep_only(&names)
            } else {
                out.without(&names)
            };
        }
        if !self.include.is_empty() {
            let mut v: Vec<Label> = out
                .iter()
                .filter(|l| !self.include.contains(&l.name))
                .cloned()
                .collect();
            for name in &self.include {
                if let Some(val) = one.get(name) {
                    v.push(Label::new(name.clone(), val));
                }
            }
            out = labels_from(v);
        }
        out
    }
}

/// One operand of a result element: a series of either side, or a fill value standing in for the
/// missing partner of match signature `sig`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Operand {
    Left(usize),
    Right(usize),
    Fill(usize),
}

/// A multiply-rotate hasher for the small integer keys of the per-step pairing cache: SipHash would
/// be most of the cost of a pairing lookup.
#[derive(Default)]
struct IntHasher(u64);

impl std::hash::Hasher for IntHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }

    fn write_isize(&mut self, n: isize) {
        self.write_u64(n as u64);
    }
}

type PairMap = HashMap<(Operand, Operand), usize, std::hash::BuildHasherDefault<IntHasher>>;

/// Output series of one operation, found by label set.
struct Output {
    series: Vec<StepSeries>,
    by_labels: HashMap<Labels, usize>,
    /// Points in all series so far.
    points: usize,
}

impl Output {
    fn index(&mut self, labels: Labels, drop_name: bool) -> usize {
        if let Some(&i) = self.by_labels.get(&labels) {
            return i;
        }
        let i = self.series.len();
        self.by_labels.insert(labels.clone(), i);
        self.series.push(StepSeries {
            labels,
            drop_name,
            points: Vec::new(),
        });
        i
    }

    /// Adds a point; two elements with one label set at a step is Prometheus' duplicate error.
    fn push(&mut self, i: usize, ts: i64, v: f64) -> Result<(), QueryError> {
        let s = &mut self.series[i];
        if s.points.last().is_some_and(|p| p.0 == ts) {
            return Err(duplicate_labelset());
        }
        s.points.push((ts, v));
        self.points += 1;
        Ok(())
    }
}

impl Evaluator<'_> {
    pub(crate) fn vector_vector(
        &self,
        b: &Binary,
        lhs: Vec<StepSeries>,
        rhs: Vec<StepSeries>,
        before: usize,
    ) -> Result<Val, QueryError> {
        let m = &b.matching;
        // Match signatures, once per series, as ordinals shared by both sides.
        let mut ordinals: HashMap<Labels, usize> = HashMap::new();
        let mut sig = |s: &StepSeries| {
            let key = m.match_labels(&s.labels);
            let next = ordinals.len();
            *ordinals.entry(key).or_insert(next)
        };
        let lsig: Vec<usize> = lhs.iter().map(&mut sig).collect();
        let rsig: Vec<usize> = rhs.iter().map(&mut sig).collect();
        let num_sigs = ordinals.len();

        let mut out = Output {
            series: Vec::new(),
            by_labels: HashMap::new(),
            points: 0,
        };
        let mut pair_out = PairMap::default();
        let (mut lcur, mut rcur) = (vec![0usize; lhs.len()], vec![0usize; rhs.len()]);
        // (series index, value) of the series with a point at the current step.
        let mut lnow: Vec<(usize, f64)> = Vec::new();
        let mut rnow: Vec<(usize, f64)> = Vec::new();
        let mut marks = vec![false; num_sigs];
        let mut one_at: Vec<Option<usize>> = vec![None; num_sigs];
        let mut matched_sets: Vec<HashSet<usize>> = Vec::new();
        let mut held = self.ctx.current();

        for ts in self.steps.iter() {
            self.ctx.check()?;
            present(&lhs, &mut lcur, ts, &mut lnow);
            present(&rhs, &mut rcur, ts, &mut rnow);
            self.ctx.set(held + lnow.len() + rnow.len())?;
            let produced_before = out.points;
            match b.op {
                BinOp::And | BinOp::Unless => {
                    marks.iter_mut().for_each(|x| *x = false);
                    for &(ri, _) in &rnow {
                        marks[rsig[ri]] = true;
                    }
                    let want = b.op == BinOp::And;
                    for &(li, v) in &lnow {
                        if marks[lsig[li]] == want {
                            let o = self.set_output(
                                &mut out,
                                &mut pair_out,
                                Operand::Left(li),
                                &lhs[li],
                            );
                            out.push(o, ts, v)?;
                        }
                    }
                }
                BinOp::Or => {
                    marks.iter_mut().for_each(|x| *x = false);
                    for &(li, v) in &lnow {
                        marks[lsig[li]] = true;
                        let o =
                            self.set_output(&mut out, &mut pair_out, Operand::Left(li), &lhs[li]);
                        out.push(o, ts, v)?;
                    }
                    for &(ri, v) in &rnow {
                        if !marks[rsig[ri]] {
                            let o = self.set_output(
                                &mut out,
                                &mut pair_out,
                                Operand::Right(ri),
                                &rhs[ri],
                            );
                            out.push(o, ts, v)?;
                        }
                    }
                }
                op => {
                    let ctx = JoinStep {
                        op,
                        b,
                        lhs: &lhs,
                        rhs: &rhs,
                        lsig: &lsig,
                        rsig: &rsig,
                        delayed: self.delayed(),
                    };
                    ctx.run(
                        ts,
                        &lnow,
                        &rnow,
                        &mut one_at,
                        &mut marks,
                        &mut matched_sets,
                        &mut out,
                        &mut pair_out,
                    )?;
                }
            }
            held += out.points - produced_before;
        }
        let mut series = out.series;
        series.retain(|s| !s.points.is_empty());
        let total: usize = series.iter().map(|s| s.points.len()).sum();
        self.ctx.set(before + total)?;
        Ok(Val::Vector(series))
    }

    /// The output series a set operator passes series `operand` through to (same labels).
    fn set_output(
        &self,
        out: &mut Output,
        pair_out: &mut PairMap,
        operand: Operand,
        s: &StepSeries,
    ) -> usize {
        *pair_out
            .entry((operand, operand))
            .or_insert_with(|| out.index(s.labels.clone(), s.drop_name))
    }
}

/// Collects `(series index, value)` of the series with a point at `ts`, advancing their cursors.
fn present(series: &[StepSeries], cur: &mut [usize], ts: i64, now: &mut Vec<(usize, f64)>) {
    now.clear();
    for (i, s) in series.iter().enumerate() {
        if let Some(&(t, v)) = s.points.get(cur[i])
            && t == ts
        {
            cur[i] += 1;
            now.push((i, v));
        }
    }
}

/// One step of an arithmetic or comparison operation between vectors.
struct JoinStep<'a> {
    op: BinOp,
    b: &'a Binary,
    lhs: &'a [StepSeries],
    rhs: &'a [StepSeries],
    lsig: &'a [usize],
    rsig: &'a [usize],
    delayed: bool,
}

impl JoinStep<'_> {
    #[allow(clippy::too_many_arguments)]
    fn run(
        &self,
        ts: i64,
        lnow: &[(usize, f64)],
        rnow: &[(usize, f64)],
        one_at: &mut [Option<usize>],
        matched: &mut [bool],
        matched_sets: &mut Vec<HashSet<usize>>,
        out: &mut Output,
        pair_out: &mut PairMap,
    ) -> Result<(), QueryError> {
        let m = &self.b.matching;
        let no_fill = m.fill_lhs.is_none() && m.fill_rhs.is_none();
        if (lnow.is_empty() && rnow.is_empty()) || ((lnow.is_empty() || rnow.is_empty()) && no_fill)
        {
            return Ok(());
        }
        // The code handles one-to-one and many-to-one; group_right swaps the sides (values are
        // swapped back when computed). Fill values are not swapped: as in Prometheus, `fill_right`
        // stands in for the "one" side and `fill_left` for the "many" side (fill-modifier.test).
        let swapped = m.card == Card::OneToMany;
        let (many, one) = if swapped { (rnow, lnow) } else { (lnow, rnow) };
        let many_operand = |i| {
            if swapped {
                Operand::Right(i)
            } else {
                Operand::Left(i)
            }
        };
        let one_operand = |i| {
            if swapped {
                Operand::Left(i)
            } else {
                Operand::Right(i)
            }
        };
        let one_series = if swapped { self.lhs } else { self.rhs };
        let (many_sig, one_sig) = if swapped {
            (self.rsig, self.lsig)
        } else {
            (self.lsig, self.rsig)
        };

        one_at.iter_mut().for_each(|x| *x = None);
        for (k, &(i, _)) in one.iter().enumerate() {
            let sig = one_sig[i];
            if let Some(prev) = one_at[sig] {
                let side = if swapped { "left" } else { "right" };
                let this = &one_series[i].labels;
                let other = &one_series[one[prev].0].labels;
                // Sorted as strings, so the message does not depend on series order.
                let mut pair = [go_labels_string(this), go_labels_string(other)];
                pair.sort();
                return Err(QueryError::Execution(format!(
                    "found duplicate series for the match group {} on the {side} hand-side of the \
                     operation: [{}, {}];many-to-many matching not allowed: matching labels must be \
                     unique on one side",
                    go_labels_string(&m.match_labels(this)),
                    pair[0],
                    pair[1]
                )));
            }
            one_at[sig] = Some(k);
        }
        let one_to_one = m.card == Card::OneToOne;
        if one_to_one {
            matched.iter_mut().for_each(|x| *x = false);
        } else {
            matched_sets.resize_with(one_at.len(), HashSet::new);
            matched_sets.iter_mut().for_each(HashSet::clear);
        }

        let mut apply = |many_op: Operand,
                         many_v: f64,
                         one_op: Operand,
                         one_v: f64,
                         sig: usize,
                         out: &mut Output,
                         matched: &mut [bool],
                         matched_sets: &mut [HashSet<usize>]|
         -> Result<(), QueryError> {
            let (l, r) = if swapped {
                (one_v, many_v)
            } else {
                (many_v, one_v)
            };
            let (mut v, keep) = elem_binop(self.op, l, r);
            if self.b.return_bool {
                v = btos(keep);
            }
            let o = match pair_out.get(&(many_op, one_op)) {
                Some(&o) => o,
                None => {
                    let series_labels = |op: Operand| match op {
                        Operand::Left(i) => Some(&self.lhs[i].labels),
                        Operand::Right(i) => Some(&self.rhs[i].labels),
                        Operand::Fill(_) => None,
                    };
                    // A fill value carries its partner's match labels.
                    let (many_l, one_l) = match (series_labels(many_op), series_labels(one_op)) {
                        (Some(a), Some(b)) => (a.clone(), b.clone()),
                        (Some(a), None) => (a.clone(), m.match_labels(a)),
                        (None, Some(b)) => (m.match_labels(b), b.clone()),
                        (None, None) => unreachable!("a fill value always has a partner"),
                    };
                    let drop = !self.delayed && self.b.return_bool;
                    let labels = m.result_labels(&many_l, &one_l, self.op, drop);
                    let o = out.index(labels, self.b.return_bool);
                    pair_out.insert((many_op, one_op), o);
                    o
                }
            };
            if one_to_one {
                if matched[sig] {
                    return Err(QueryError::Execution(
                        "multiple matches for labels: many-to-one matching must be explicit \
                         (group_left/group_right)"
                            .into(),
                    ));
                }
                matched[sig] = true;
            } else if !matched_sets[sig].insert(o) {
                return Err(QueryError::Execution(
                    "multiple matches for labels: grouping labels must ensure unique matches"
                        .into(),
                ));
            }
            if keep || self.b.return_bool {
                out.push(o, ts, v)?;
            }
            Ok(())
        };

        for &(i, v) in many {
            let sig = many_sig[i];
            match one_at[sig] {
                Some(k) => {
                    let (j, ov) = one[k];
                    apply(
                        many_operand(i),
                        v,
                        one_operand(j),
                        ov,
                        sig,
                        out,
                        matched,
                        matched_sets,
                    )?;
                }
                None => {
                    if let Some(fill) = m.fill_rhs {
                        apply(
                            many_operand(i),
                            v,
                            Operand::Fill(sig),
                            fill,
                            sig,
                            out,
                            matched,
                            matched_sets,
                        )?;
                    }
                }
            }
        }
        if let Some(fill) = m.fill_lhs {
            for &(j, ov) in one {
                let sig = one_sig[j];
                let done = if one_to_one {
                    matched[sig]
                } else {
                    !matched_sets[sig].is_empty()
                };
                if !done {
                    apply(
                        Operand::Fill(sig),
                        fill,
                        one_operand(j),
                        ov,
                        sig,
                        out,
                        matched,
                        matched_sets,
                    )?;
                }
            }
        }
        Ok(())
    }
}
