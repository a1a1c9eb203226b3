//! The evaluator's view of an expression: a small tree with everything resolved that evaluation needs
//! (durations in milliseconds, matchers compiled, operators and functions classified, value types
//! known, source positions kept for annotation text).
//!
//! Owns the plan types and the translation from the parser's `ast::Expr` ([`lower`]). Keeping the
//! evaluator on its own tree confines knowledge of the AST's shape to this file. It does not own
//! parsing or type checking (the parser rejects ill-typed expressions before they get here).

use ember::Matcher;

use super::aggregate::AggOp;
use super::binary::BinOp;
use super::matching::Matching;

/// PromQL value types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ty {
    Scalar,
    Vector,
    Matrix,
    String,
}

impl Ty {
    /// Prometheus' names, as used in error messages.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Ty::Scalar => "scalar",
            Ty::Vector => "vector",
            Ty::Matrix => "matrix",
            Ty::String => "string",
        }
    }
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
    Number(f64),
    Str(String),
    Vector(Selector),
    Matrix { sel: Selector, range: i64 },
    Subquery(Box<Subquery>),
    Neg(Box<Node>),
    Binary(Box<Binary>),
    Aggregate(Box<Aggregate>),
    Call(Box<Call>),
}

impl Node {
    pub(crate) fn ty(&self) -> Ty {
        match self {
            Node::Number(_) => Ty::Scalar,
            Node::Str(_) => Ty::String,
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
            Node::Number(_) | Node::Str(_) => None,
        }
    }

    /// Whether the node yields the same value at every step (Prometheus' step-invariance: an `@`
    /// pins it, and nothing above reads the evaluation time). Such subtrees are evaluated once and
    /// their result repeated across the steps.
    pub(crate) fn is_step_invariant(&self) -> bool {
        match self {
            Node::Number(_) | Node::Str(_) => true,
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
