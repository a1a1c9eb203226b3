//! `info(v [, {label selector}])`: enriches each series of `v` with the data labels of the info
//! series (`target_info` unless the selector names others) that share its identifying labels
//! (`instance`, `job`), as Prometheus' experimental `info` function (`promql/info.go`) does.
//!
//! Owns which info series are selected (the selector's `__name__` matchers, its other matchers as
//! data-label filters, the identifying label values found on `v`), when they are looked at (the
//! `@` and offset governing `v`'s first selector, so the enrichment is as of the same time as the
//! data), the choice between several candidates (the newest sample wins, a tie is an error), the
//! label conflicts between info metrics, and which series of `v` pass through untouched (info
//! series themselves) or are dropped (no info series where a data matcher needs one). It does not
//! own label matching itself (`ember::Matcher`) or storage access (`selector`).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use ember::{MatchType, Matcher};
use ember_index::{Label, Labels};

use super::QueryError;
use super::eval::{Evaluator, Val, duplicate_labelset};
use super::plan::{At, Call, Node};
use super::selector::{self, InstantCursor};
use super::types::{METRIC_NAME, StepSeries, go_labels_string, labels_from};

/// The info metric `info` uses when its selector names none.
const TARGET_INFO: &str = "target_info";

/// The labels that tie a series to its info series. Fixed, as in Prometheus, so that no knowledge
/// of individual info metrics is needed.
const IDENTIFYING_LABELS: [&str; 2] = ["instance", "job"];

/// An info series as evaluated over the steps: at each step where it has a sample in the
/// lookback window, the timestamp of that sample (newer candidates win).
struct InfoSeries {
    labels: Labels,
    /// Index into the sorted info metric names.
    name: usize,
    /// `(step, sample timestamp)`.
    points: Vec<(i64, i64)>,
}

/// The info series selected for one `info` call.
#[derive(Default)]
struct InfoSet {
    /// The info metrics' names, sorted.
    names: Vec<String>,
    series: Vec<InfoSeries>,
}

/// What ties a series to an info series of one metric: that metric and the identifying labels.
type Signature<'a> = (usize, [Option<&'a str>; 2]);

fn identifying(labels: &Labels) -> [Option<&str>; 2] {
    IDENTIFYING_LABELS.map(|n| labels.get(n))
}

/// The `__name__` matchers that select info series: those given if any is positive; only negative
/// ones are narrowed to names ending in `_info`; none means `target_info`.
fn effective_name_matchers(given: &[Matcher]) -> Vec<Matcher> {
    if given
        .iter()
        .any(|m| matches!(m.kind(), MatchType::Equal | MatchType::Regex))
    {
        return given.to_vec();
    }
    if given.is_empty() {
        return vec![Matcher::equal(METRIC_NAME, TARGET_INFO)];
    }
    let mut v = vec![Matcher::regex(METRIC_NAME, ".+_info").expect("valid regex")];
    v.extend(given.iter().cloned());
    v
}

/// The `@` and offset at which `info`'s first argument reads its data, taken from its first vector
/// selector (in Prometheus' traversal order): the selector's own `@`, else that of the innermost
/// enclosing subquery that has one, with the offsets of the selector and of the subqueries up to
/// that one added. No selector: the evaluation time, no offset.
fn info_reference(node: &Node) -> (Option<At>, i64) {
    fn walk(node: &Node, subqueries: &mut Vec<(Option<At>, i64)>) -> Option<(Option<At>, i64)> {
        match node {
            Node::Vector(sel) | Node::Matrix { sel, .. } => {
                let (mut at, mut offset) = (sel.at, sel.offset);
                for &(sq_at, sq_offset) in subqueries.iter().rev() {
                    if at.is_some() {
                        break;
                    }
                    offset += sq_offset;
                    at = sq_at;
                }
                Some((at, offset))
            }
            Node::Subquery(sq) => {
                subqueries.push((sq.at, sq.offset));
                let found = walk(&sq.expr, subqueries);
                subqueries.pop();
                found
            }
            Node::Neg(inner) => walk(inner, subqueries),
            Node::Binary(b) => walk(&b.lhs, subqueries).or_else(|| walk(&b.rhs, subqueries)),
            Node::Aggregate(a) => walk(&a.expr, subqueries)
                .or_else(|| a.param.as_ref().and_then(|p| walk(p, subqueries))),
            Node::Call(c) => c.args.iter().find_map(|a| walk(a, subqueries)),
            Node::Number { .. } | Node::Str { .. } => None,
        }
    }
    walk(node, &mut Vec::new()).unwrap_or((None, 0))
}

impl Evaluator<'_> {
    pub(crate) fn eval_info(&self, c: &Call) -> Result<Val, QueryError> {
        let (at, offset) = info_reference(&c.args[0]);
        let base = self.eval(&c.args[0])?.into_series();

        let mut name_matchers: Vec<Matcher> = Vec::new();
        // The other matchers filter the info series and name the data labels to take.
        let mut data_matchers: BTreeMap<String, Vec<Matcher>> = BTreeMap::new();
        if let Some(Node::Vector(sel)) = c.args.get(1) {
            for m in &sel.matchers {
                if m.name() == METRIC_NAME {
                    name_matchers.push(m.clone());
                } else {
                    data_matchers
                        .entry(m.name().to_string())
                        .or_default()
                        .push(m.clone());
                }
            }
        }
        let name_matchers = effective_name_matchers(&name_matchers);

        // Series of the info metrics themselves are passed through, not enriched.
        let ignored: Vec<bool> = base
            .iter()
            .map(|s| {
                let name = s.labels.metric_name().unwrap_or("");
                name_matchers.iter().all(|m| m.matches(name))
            })
            .collect();

        let info =
            self.select_info_series(&base, &ignored, &data_matchers, name_matchers, at, offset)?;
        self.combine_with_info(&base, &ignored, &info, &data_matchers)
    }

    /// The info series that may enrich a non-ignored series of `base`, evaluated at the steps as
    /// of `at`/`offset`.
    fn select_info_series(
        &self,
        base: &[StepSeries],
        ignored: &[bool],
        data_matchers: &BTreeMap<String, Vec<Matcher>>,
        name_matchers: Vec<Matcher>,
        at: Option<At>,
        offset: i64,
    ) -> Result<InfoSet, QueryError> {
        let mut values: [BTreeSet<&str>; 2] = Default::default();
        for (s, _) in base.iter().zip(ignored).filter(|(_, ign)| !**ign) {
            for (vals, v) in values.iter_mut().zip(identifying(&s.labels)) {
                vals.extend(v);
            }
        }
        if values.iter().all(BTreeSet::is_empty) {
            return Ok(InfoSet::default());
        }
        // Only info series carrying one of the identifying values seen can match.
        let mut matchers = Vec::new();
        for (name, vals) in IDENTIFYING_LABELS.iter().zip(&values) {
            if vals.is_empty() {
                continue;
            }
            let alternation: Vec<String> = vals.iter().map(|v| regex::escape(v)).collect();
            let m = Matcher::regex(*name, alternation.join("|"))
                .map_err(|e| QueryError::Execution(e.to_string()))?;
            matchers.push(m);
        }
        matchers.extend(data_matchers.values().flatten().cloned());
        matchers.extend(name_matchers);

        let lookback = self.opts.lookback_delta_ms;
        let (first, last) = self.ref_range(at, offset);
        let selected = selector::select(self.db, &matchers, first - lookback + 1, last);
        let mut evaluated: Vec<(Labels, Vec<(i64, i64)>)> = Vec::new();
        for s in selected {
            let samples = selector::decode(self.ctx, &s, false)?;
            let mut cursor = InstantCursor::default();
            let mut points = Vec::new();
            for ts in self.steps.iter() {
                let r = self.ref_time(at, offset, ts);
                if let Some((t, _)) = cursor.at(&samples, r, lookback) {
                    self.ctx.add(1)?;
                    points.push((ts, t));
                }
            }
            if !points.is_empty() {
                evaluated.push((s.labels().clone(), points));
            }
        }
        let names: Vec<String> = evaluated
            .iter()
            .map(|(l, _)| l.metric_name().unwrap_or("").to_string())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let series = evaluated
            .into_iter()
            .map(|(labels, points)| {
                let name = labels.metric_name().unwrap_or("");
                let name = names
                    .binary_search_by(|n| n.as_str().cmp(name))
                    .expect("collected above");
                InfoSeries {
                    labels,
                    name,
                    points,
                }
            })
            .collect();
        Ok(InfoSet { names, series })
    }

    /// Step by step, each series of `base` with the data labels of the info series matching it.
    fn combine_with_info(
        &self,
        base: &[StepSeries],
        ignored: &[bool],
        set: &InfoSet,
        data_matchers: &BTreeMap<String, Vec<Matcher>>,
    ) -> Result<Val, QueryError> {
        // Without an info series, a series is kept only if every data matcher accepts "absent".
        let keep_unmatched = data_matchers.values().flatten().all(Matcher::matches_empty);
        let info = &set.series;
        let base_ids: Vec<[Option<&str>; 2]> =
            base.iter().map(|s| identifying(&s.labels)).collect();
        let info_ids: Vec<[Option<&str>; 2]> =
            info.iter().map(|s| identifying(&s.labels)).collect();

        let mut out: Vec<StepSeries> = Vec::new();
        let mut out_index: HashMap<Labels, usize> = HashMap::new();
        let mut base_cursors = vec![0usize; base.len()];
        let mut info_cursors = vec![0usize; info.len()];
        let mut candidates: HashMap<Signature, (usize, i64)> = HashMap::new();
        for ts in self.steps.iter() {
            self.ctx.check()?;
            let mut base_at: Vec<(usize, f64)> = Vec::new();
            for (i, s) in base.iter().enumerate() {
                if let Some(&(t, v)) = s.points.get(base_cursors[i])
                    && t == ts
                {
                    base_cursors[i] += 1;
                    base_at.push((i, v));
                }
            }
            candidates.clear();
            for (i, s) in info.iter().enumerate() {
                let Some(&(t, orig_t)) = s.points.get(info_cursors[i]) else {
                    continue;
                };
                if t != ts {
                    continue;
                }
                info_cursors[i] += 1;
                if base_at.is_empty() {
                    continue;
                }
                let sig = (s.name, info_ids[i]);
                match candidates.get(&sig) {
                    Some(&(_, existing_t)) if existing_t > orig_t => {}
                    Some(&(existing, existing_t)) if existing_t == orig_t => {
                        return Err(QueryError::Execution(format!(
                            "found duplicate series for info metric: existing {} @ {}, new {} @ {}",
                            go_labels_string(&info[existing].labels),
                            existing_t,
                            go_labels_string(&s.labels),
                            orig_t
                        )));
                    }
                    _ => {
                        candidates.insert(sig, (i, orig_t));
                    }
                }
            }

            for (i, v) in base_at {
                let s = &base[i];
                let labels = if ignored[i] {
                    s.labels.clone()
                } else {
                    let matched = enrich(&s.labels, base_ids[i], &candidates, set, data_matchers)?;
                    match matched {
                        Some(labels) => labels,
                        None if keep_unmatched => s.labels.clone(),
                        None => continue,
                    }
                };
                let o = *out_index.entry(labels).or_insert_with_key(|labels| {
                    out.push(StepSeries {
                        labels: labels.clone(),
                        drop_name: s.drop_name,
                        points: Vec::new(),
                    });
                    out.len() - 1
                });
                if out[o].points.last().is_some_and(|p| p.0 == ts) {
                    return Err(duplicate_labelset());
                }
                self.ctx.add(1)?;
                out[o].points.push((ts, v));
            }
        }
        Ok(Val::Vector(out))
    }
}

/// `labels` with the data labels of the info series chosen at this step for its identifying
/// labels, one of each info metric: only those named by a data matcher if there are any, never
/// one `labels` already has. `None` when no info series matched.
fn enrich(
    labels: &Labels,
    ids: [Option<&str>; 2],
    candidates: &HashMap<Signature, (usize, i64)>,
    set: &InfoSet,
    data_matchers: &BTreeMap<String, Vec<Matcher>>,
) -> Result<Option<Labels>, QueryError> {
    let mut added: BTreeMap<&str, &str> = BTreeMap::new();
    let mut matched = false;
    for name in 0..set.names.len() {
        let Some(&(is, _)) = candidates.get(&(name, ids)) else {
            continue;
        };
        matched = true;
        for l in &set.series[is].labels {
            if l.name == METRIC_NAME
                || (!data_matchers.is_empty() && !data_matchers.contains_key(&l.name))
            {
                continue;
            }
            // Two info metrics disagreeing about a label the series lacks.
            if let Some(&prev) = added.get(l.name.as_str())
                && prev != l.value
            {
                return Err(QueryError::Execution(format!(
                    "conflicting label: {}",
                    l.name
                )));
            }
            if labels.get(&l.name).is_none() {
                added.insert(&l.name, &l.value);
            }
        }
    }
    if !matched {
        return Ok(None);
    }
    let mut all: Vec<Label> = labels.iter().cloned().collect();
    all.extend(added.into_iter().map(|(n, v)| Label::new(n, v)));
    Ok(Some(labels_from(all)))
}
