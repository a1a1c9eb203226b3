//! Evaluator tests on hand-built plans, independent of the parser: they pin the evaluator's
//! semantics (lookback, staleness, windows, matching, aggregation, subquery grids) directly. This
//! module holds the fixtures and plan builders; `selection` and `operators` hold the tests.

mod calls;
mod fold;
mod operators;
mod selection;
mod stats;

use std::time::{Duration, Instant};

use ember::{Db, Labels, Matcher, Options};

use super::aggregate::AggOp;
use super::binary::BinOp;
use super::eval;
use super::limits::Cancel;
use super::matching::{Card, Matching};
use super::plan::{Aggregate, Binary, Call, Node, Selector, Ty};
use super::{QueryError, QueryOpts, QueryResult};
use crate::value::{STALE_NAN_BITS, Value};

pub(super) const M: i64 = 60_000;

pub(super) struct Fixture {
    _dir: tempfile::TempDir,
    pub db: Db,
}

pub(super) fn ls(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied()).unwrap()
}

pub(super) fn fixture(series: &[(Labels, Vec<(i64, f64)>)]) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    // Append in time order across series: the head refuses samples far behind its newest one.
    let mut all: Vec<(i64, &Labels, f64)> = series
        .iter()
        .flat_map(|(l, s)| s.iter().map(move |&(t, v)| (t, l, v)))
        .collect();
    all.sort_by_key(|x| x.0);
    let mut app = db.appender();
    for (t, l, v) in all {
        app.append(l, t, v).unwrap();
    }
    app.commit().unwrap();
    Fixture { _dir: dir, db }
}

pub(super) fn sel(name: &str, extra: &[(&str, &str)]) -> Selector {
    let mut matchers = vec![Matcher::equal("__name__", name)];
    matchers.extend(extra.iter().map(|(n, v)| Matcher::equal(*n, *v)));
    Selector {
        matchers,
        offset: 0,
        at: None,
        anchored: false,
        smoothed: false,
        pos: 0,
    }
}

pub(super) fn vs(name: &str) -> Node {
    Node::Vector(sel(name, &[]))
}

pub(super) fn call(name: &str, args: Vec<Node>) -> Node {
    Node::Call(Box::new(Call {
        name: name.into(),
        args,
        ret: Ty::Vector,
        pos: 0,
    }))
}

pub(super) fn matching(card: Card, on: bool, names: &[&str], include: &[&str]) -> Matching {
    Matching {
        card,
        on,
        names: names.iter().map(|s| s.to_string()).collect(),
        include: include.iter().map(|s| s.to_string()).collect(),
        fill_lhs: None,
        fill_rhs: None,
    }
}

pub(super) fn bin(op: BinOp, lhs: Node, rhs: Node, m: Matching) -> Node {
    Node::Binary(Box::new(Binary {
        op,
        lhs,
        rhs,
        matching: m,
        return_bool: false,
        pos: 0,
    }))
}

pub(super) fn agg(op: AggOp, expr: Node, param: Option<Node>, by: &[&str], without: bool) -> Node {
    Node::Aggregate(Box::new(Aggregate {
        op,
        expr,
        param,
        grouping: by.iter().map(|s| s.to_string()).collect(),
        without,
        pos: 0,
    }))
}

pub(super) fn run(
    f: &Fixture,
    plan: &Node,
    start: i64,
    end: i64,
    step: i64,
) -> Result<QueryResult, QueryError> {
    run_opts(f, plan, start, end, step, &QueryOpts::default())
}

pub(super) fn run_opts(
    f: &Fixture,
    plan: &Node,
    start: i64,
    end: i64,
    step: i64,
    opts: &QueryOpts,
) -> Result<QueryResult, QueryError> {
    eval::run(
        &f.db,
        opts,
        plan,
        None,
        start,
        end,
        step,
        Instant::now() + Duration::from_secs(30),
        &Cancel::new(),
    )
}

/// An instant query's vector as (labels, value), sorted by labels.
pub(super) fn vector(r: QueryResult) -> Vec<(Labels, f64)> {
    match r.value {
        Value::Vector(v) => {
            let mut out: Vec<_> = v.into_iter().map(|s| (s.labels, s.v)).collect();
            out.sort_by(|a, b| a.0.cmp(&b.0));
            out
        }
        other => panic!("not a vector: {other:?}"),
    }
}

pub(super) fn matrix(r: QueryResult) -> Vec<(Labels, Vec<(i64, f64)>)> {
    match r.value {
        Value::Matrix(m) => m.into_iter().map(|s| (s.labels, s.samples)).collect(),
        other => panic!("not a matrix: {other:?}"),
    }
}

pub(super) fn stale() -> f64 {
    f64::from_bits(STALE_NAN_BITS)
}

pub(super) fn delayed() -> QueryOpts {
    QueryOpts {
        delayed_name_removal: true,
        ..QueryOpts::default()
    }
}

pub(super) fn msel(name: &str, range: i64) -> Node {
    Node::Matrix {
        sel: sel(name, &[]),
        range,
    }
}

pub(super) fn str_call(name: &str, arg: Node, strs: &[&str]) -> Node {
    let mut args = vec![arg];
    args.extend(strs.iter().map(|s| Node::string(s.to_string())));
    call(name, args)
}
