//! The evaluator's view of an expression: a small tree with everything resolved that evaluation needs
//! (durations in milliseconds, matchers compiled, operators and functions classified, value types
//! known, source positions kept for annotation text).
//!
//! Owns the plan types and the translation from the parser's `ast::Expr` ([`lower`]). Keeping the
//! evaluator on its own tree confines knowledge of the AST's shape to this file. It does not own
//! parsing or type checking (the parser rejects ill-typed expressions before they get here).

use ember::Matcher;

use super::QueryError;
use super::aggregate::AggOp;
use super::binary::BinOp;
use super::matching::{Card, Matching};
use crate::ast;

/// PromQL value types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ty {
    Scalar,
    Vector,
    Matrix,
    String,
}

/// An `@` modifier.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum At {
    Time(i64),
    Start,
    End,
}

/// A vector selector with its modifiers.
#[derive(Clone, Debug)]
pub(crate) struct Selector {
    pub matchers: Vec<Matcher>,
    /// `offset`, in milliseconds (negative allowed).
    pub offset: i64,
    pub at: Option<At>,
    /// Experimental `anchored` modifier (range selectors): the window reaches back one lookback
    /// delta for the sample in force at its start.
    pub anchored: bool,
    /// Experimental `smoothed` modifier: values interpolated at the window edges (range selectors)
    /// or at the step (instant selectors) from the samples around them.
    pub smoothed: bool,
    /// Byte offset of the selector in the query text.
    pub pos: usize,
}

#[derive(Clone, Debug)]
pub(crate) struct Subquery {
    pub expr: Node,
    pub range: i64,
    /// `None` when written without a step (`x[5m:]`).
    pub step: Option<i64>,
    pub offset: i64,
    pub at: Option<At>,
    pub pos: usize,
}

#[derive(Clone, Debug)]
pub(crate) struct Binary {
    pub op: BinOp,
    pub lhs: Node,
    pub rhs: Node,
    /// Label matching for vector/vector operations.
    pub matching: Matching,
    pub return_bool: bool,
    pub pos: usize,
}

#[derive(Clone, Debug)]
pub(crate) struct Aggregate {
    pub op: AggOp,
    pub expr: Node,
    pub param: Option<Node>,
    pub grouping: Vec<String>,
    pub without: bool,
    pub pos: usize,
}

#[derive(Clone, Debug)]
pub(crate) struct Call {
    pub name: String,
    pub args: Vec<Node>,
    pub ret: Ty,
    pub pos: usize,
}

#[derive(Clone, Debug)]
pub(crate) enum Node {
    /// A number literal; `pos` is its byte offset in the query, where known.
    Number {
        v: f64,
        pos: Option<usize>,
    },
    Str {
        s: String,
        pos: Option<usize>,
    },
    Vector(Selector),
    Matrix {
        sel: Selector,
        range: i64,
    },
    Subquery(Box<Subquery>),
    Neg(Box<Node>),
    Binary(Box<Binary>),
    Aggregate(Box<Aggregate>),
    Call(Box<Call>),
}

impl Node {
    /// A number without a source position.
    #[cfg(test)]
    pub(crate) fn num(v: f64) -> Node {
        Node::Number { v, pos: None }
    }

    /// A string without a source position.
    #[cfg(test)]
    pub(crate) fn string(s: impl Into<String>) -> Node {
        Node::Str {
            s: s.into(),
            pos: None,
        }
    }

    pub(crate) fn ty(&self) -> Ty {
        match self {
            Node::Number { .. } => Ty::Scalar,
            Node::Str { .. } => Ty::String,
            Node::Vector(_) => Ty::Vector,
            Node::Matrix { .. } | Node::Subquery(_) => Ty::Matrix,
            Node::Neg(n) => n.ty(),
            Node::Binary(b) => {
                if b.lhs.ty() == Ty::Scalar && b.rhs.ty() == Ty::Scalar {
                    Ty::Scalar
                } else {
                    Ty::Vector
                }
            }
            Node::Aggregate(_) => Ty::Vector,
            Node::Call(c) => c.ret,
        }
    }

    /// Byte offset of the node in the query text, where known.
    pub(crate) fn pos(&self) -> Option<usize> {
        match self {
            Node::Vector(s) | Node::Matrix { sel: s, .. } => Some(s.pos),
            Node::Subquery(s) => Some(s.pos),
            Node::Binary(b) => Some(b.pos),
            Node::Aggregate(a) => Some(a.pos),
            Node::Call(c) => Some(c.pos),
            Node::Neg(n) => n.pos(),
            Node::Number { pos, .. } | Node::Str { pos, .. } => *pos,
        }
    }

    /// Whether the node yields the same value at every step (Prometheus' step-invariance: an `@`
    /// pins it, and nothing above reads the evaluation time). Such subtrees are evaluated once and
    /// their result repeated across the steps.
    pub(crate) fn is_step_invariant(&self) -> bool {
        match self {
            Node::Number { .. } | Node::Str { .. } => true,
            Node::Vector(s) | Node::Matrix { sel: s, .. } => s.at.is_some(),
            Node::Subquery(s) => s.at.is_some(),
            Node::Neg(n) => n.is_step_invariant(),
            Node::Binary(b) => b.lhs.is_step_invariant() && b.rhs.is_step_invariant(),
            // As in Prometheus, only the operand decides (not the parameter).
            Node::Aggregate(a) => a.expr.is_step_invariant(),
            Node::Call(c) => {
                let args = c.args.iter().all(Node::is_step_invariant);
                if c.name == "timestamp" {
                    // timestamp() reads sample times; pinned only when applied to a pinned selector.
                    return args && matches!(c.args.first(), Some(Node::Vector(_)));
                }
                !AT_MODIFIER_UNSAFE.contains(&c.name.as_str()) && args
            }
        }
    }
}

/// Functions whose value depends on the evaluation time even when their arguments do not.
const AT_MODIFIER_UNSAFE: &[&str] = &[
    "days_in_month",
    "day_of_month",
    "day_of_week",
    "day_of_year",
    "hour",
    "minute",
    "month",
    "year",
    "predict_linear",
    "time",
    "timestamp",
];

/// The query parameters lowering resolves: `start()`/`end()`/`range()`/`step()` and duration
/// arithmetic that refers to them.
#[derive(Clone, Copy, Debug)]
pub(crate) struct QueryTimes {
    pub start: i64,
    pub end: i64,
    /// 0 for an instant query.
    pub step: i64,
}

impl QueryTimes {
    fn duration_ctx(&self) -> ast::DurationContext {
        ast::DurationContext {
            step_ms: self.step,
            range_ms: self.end - self.start,
        }
    }

    fn duration(&self, d: &ast::Duration, allow_negative: bool) -> Result<i64, QueryError> {
        d.resolve(self.duration_ctx(), allow_negative)
            .map_err(QueryError::Execution)
    }
}

/// The expression inside any parentheses (Prometheus unwraps them around parameters).
fn unparen(e: &ast::Expr) -> &ast::Expr {
    match e {
        ast::Expr::Paren(p) => unparen(&p.expr),
        other => other,
    }
}

fn lower_at(at: Option<ast::AtModifier>) -> Option<At> {
    at.map(|a| match a {
        ast::AtModifier::Timestamp(t) => At::Time(t),
        ast::AtModifier::Start => At::Start,
        ast::AtModifier::End => At::End,
    })
}

fn lower_selector(v: &ast::VectorSelector, q: &QueryTimes) -> Result<Selector, QueryError> {
    Ok(Selector {
        matchers: v.matchers.clone(),
        offset: match &v.offset {
            Some(d) => q.duration(d, true)?,
            None => 0,
        },
        at: lower_at(v.at),
        anchored: v.anchored,
        smoothed: v.smoothed,
        pos: v.span.start,
    })
}

fn lower_op(op: ast::BinaryOp) -> BinOp {
    match op {
        ast::BinaryOp::Add => BinOp::Add,
        ast::BinaryOp::Sub => BinOp::Sub,
        ast::BinaryOp::Mul => BinOp::Mul,
        ast::BinaryOp::Div => BinOp::Div,
        ast::BinaryOp::Mod => BinOp::Mod,
        ast::BinaryOp::Pow => BinOp::Pow,
        ast::BinaryOp::Atan2 => BinOp::Atan2,
        ast::BinaryOp::Eql => BinOp::Eq,
        ast::BinaryOp::Neq => BinOp::Ne,
        ast::BinaryOp::Gtr => BinOp::Gt,
        ast::BinaryOp::Lss => BinOp::Lt,
        ast::BinaryOp::Gte => BinOp::Ge,
        ast::BinaryOp::Lte => BinOp::Le,
        ast::BinaryOp::TrimUpper => BinOp::TrimUpper,
        ast::BinaryOp::TrimLower => BinOp::TrimLower,
        ast::BinaryOp::And => BinOp::And,
        ast::BinaryOp::Or => BinOp::Or,
        ast::BinaryOp::Unless => BinOp::Unless,
    }
}

fn lower_matching(m: Option<&ast::VectorMatching>) -> Matching {
    let Some(m) = m else {
        return Matching {
            card: Card::OneToOne,
            on: false,
            names: Vec::new(),
            include: Vec::new(),
            fill_lhs: None,
            fill_rhs: None,
        };
    };
    Matching {
        card: match m.card {
            ast::VectorMatchCardinality::OneToOne => Card::OneToOne,
            ast::VectorMatchCardinality::ManyToOne => Card::ManyToOne,
            ast::VectorMatchCardinality::OneToMany => Card::OneToMany,
            ast::VectorMatchCardinality::ManyToMany => Card::ManyToMany,
        },
        on: m.on,
        names: m.labels.clone(),
        include: m.include.clone(),
        fill_lhs: m.fill.lhs,
        fill_rhs: m.fill.rhs,
    }
}

fn lower_agg_op(op: ast::AggregateOp) -> AggOp {
    match op {
        ast::AggregateOp::Sum => AggOp::Sum,
        ast::AggregateOp::Avg => AggOp::Avg,
        ast::AggregateOp::Count => AggOp::Count,
        ast::AggregateOp::Min => AggOp::Min,
        ast::AggregateOp::Max => AggOp::Max,
        ast::AggregateOp::Group => AggOp::Group,
        ast::AggregateOp::Stddev => AggOp::Stddev,
        ast::AggregateOp::Stdvar => AggOp::Stdvar,
        ast::AggregateOp::Topk => AggOp::Topk,
        ast::AggregateOp::Bottomk => AggOp::Bottomk,
        ast::AggregateOp::Quantile => AggOp::Quantile,
        ast::AggregateOp::CountValues => AggOp::CountValues,
        ast::AggregateOp::Limitk => AggOp::Limitk,
        ast::AggregateOp::LimitRatio => AggOp::LimitRatio,
    }
}

fn ty_of(t: ast::ValueType) -> Ty {
    match t {
        ast::ValueType::Scalar => Ty::Scalar,
        ast::ValueType::String => Ty::String,
        ast::ValueType::Vector => Ty::Vector,
        ast::ValueType::Matrix => Ty::Matrix,
    }
}

/// Translates a parsed expression into a plan for a query over `q`: durations resolved (including
/// `step()`/`range()` arithmetic), `start()`/`end()`/`range()`/`step()` calls folded into numbers as
/// Prometheus folds them, parentheses dropped.
pub(crate) fn lower(e: &ast::Expr, q: &QueryTimes) -> Result<Node, QueryError> {
    Ok(match e {
        ast::Expr::NumberLiteral(n) => Node::Number {
            v: n.value,
            pos: Some(n.span.start),
        },
        ast::Expr::StringLiteral(s) => Node::Str {
            s: s.value.clone(),
            pos: Some(s.span.start),
        },
        ast::Expr::VectorSelector(v) => Node::Vector(lower_selector(v, q)?),
        ast::Expr::MatrixSelector(m) => Node::Matrix {
            sel: lower_selector(&m.selector, q)?,
            range: q.duration(&m.range, false)?,
        },
        ast::Expr::Subquery(s) => Node::Subquery(Box::new(Subquery {
            expr: lower(&s.expr, q)?,
            range: q.duration(&s.range, false)?,
            step: match &s.step {
                Some(d) => Some(q.duration(d, false)?),
                None => None,
            },
            offset: match &s.offset {
                Some(d) => q.duration(d, true)?,
                None => 0,
            },
            at: lower_at(s.at),
            pos: s.span.start,
        })),
        ast::Expr::Unary(u) => match u.op {
            ast::UnaryOp::Plus => lower(&u.expr, q)?,
            ast::UnaryOp::Minus => Node::Neg(Box::new(lower(&u.expr, q)?)),
        },
        ast::Expr::Paren(p) => lower(&p.expr, q)?,
        ast::Expr::Binary(b) => Node::Binary(Box::new(Binary {
            op: lower_op(b.op),
            lhs: lower(&b.lhs, q)?,
            rhs: lower(&b.rhs, q)?,
            matching: lower_matching(b.matching.as_ref()),
            return_bool: b.return_bool,
            pos: b.span.start,
        })),
        ast::Expr::Aggregate(a) => Node::Aggregate(Box::new(Aggregate {
            op: lower_agg_op(a.op),
            expr: lower(unparen(&a.expr), q)?,
            param: match &a.param {
                Some(p) => Some(lower(unparen(p), q)?),
                None => None,
            },
            grouping: a.grouping.clone(),
            without: a.without,
            pos: a.span.start,
        })),
        ast::Expr::Call(c) => {
            let pos = Some(c.span.start);
            // Query-context functions are constants of the query (Prometheus folds them).
            match c.func.name {
                "start" => {
                    return Ok(Node::Number {
                        v: q.start as f64 / 1e3,
                        pos,
                    });
                }
                "end" => {
                    return Ok(Node::Number {
                        v: q.end as f64 / 1e3,
                        pos,
                    });
                }
                "range" => {
                    let v = (q.end - q.start) as f64 / 1e3;
                    return Ok(Node::Number { v, pos });
                }
                "step" => {
                    let v = if q.start == q.end {
                        0.0
                    } else {
                        q.step as f64 / 1e3
                    };
                    return Ok(Node::Number { v, pos });
                }
                _ => {}
            }
            Node::Call(Box::new(Call {
                name: c.func.name.to_string(),
                args: c
                    .args
                    .iter()
                    .map(|a| lower(unparen(a), q))
                    .collect::<Result<_, _>>()?,
                ret: ty_of(c.func.return_type),
                pos: c.span.start,
            }))
        }
    })
}
