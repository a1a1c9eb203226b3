//! The PromQL syntax tree, as the parser (`crate::parser`) produces it and the evaluator consumes it.
//!
//! Owns the node types, their value types ([`Expr::value_type`]), source positions ([`Span`]) and the
//! duration arithmetic of ranges, subquery steps and offsets ([`Duration`], [`DurationExpr`]). It
//! mirrors Prometheus' AST closely so that Prometheus' behaviour (including its canonical printing,
//! implemented in `parser::printer`) carries over: parentheses are kept as [`Expr::Paren`], a unary
//! minus on a number literal is folded into the literal, the metric name written before the braces is
//! also present as a `__name__` matcher, and the `offset`/`@` of a range selector live on its inner
//! vector selector. It does not own parsing, type checking or printing.

use ember_index::Matcher;

pub use crate::parser::functions::Function;

/// A byte range in the query text (`start` inclusive, `end` exclusive).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Span {
        Span { start, end }
    }
}

/// The type a PromQL expression evaluates to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ValueType {
    Scalar,
    String,
    /// An instant vector.
    Vector,
    /// A range vector.
    Matrix,
}

impl ValueType {
    /// Prometheus' internal name (`scalar`, `string`, `vector`, `matrix`).
    pub fn name(self) -> &'static str {
        match self {
            ValueType::Scalar => "scalar",
            ValueType::String => "string",
            ValueType::Vector => "vector",
            ValueType::Matrix => "matrix",
        }
    }

    /// The user-facing name used in error messages (`instant vector`, `range vector`, …).
    pub fn documented_name(self) -> &'static str {
        match self {
            ValueType::Vector => "instant vector",
            ValueType::Matrix => "range vector",
            other => other.name(),
        }
    }
}

/// A PromQL expression.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    NumberLiteral(NumberLiteral),
    StringLiteral(StringLiteral),
    VectorSelector(VectorSelector),
    MatrixSelector(MatrixSelector),
    Subquery(SubqueryExpr),
    Unary(UnaryExpr),
    Binary(BinaryExpr),
    Aggregate(AggregateExpr),
    Call(Call),
    Paren(ParenExpr),
}

/// A number. `-1` is a literal with value -1 (the parser folds unary signs into literals).
#[derive(Clone, Debug)]
pub struct NumberLiteral {
    pub value: f64,
    /// Written as a duration (`5m`, value in seconds); printed back as one.
    pub duration: bool,
    pub span: Span,
}

impl PartialEq for NumberLiteral {
    /// Bitwise on the value so that NaN literals compare equal to themselves and `-0` differs from `0`.
    fn eq(&self, other: &NumberLiteral) -> bool {
        let same = self.value.to_bits() == other.value.to_bits()
            || (self.value.is_nan() && other.value.is_nan());
        same && self.duration == other.duration && self.span == other.span
    }
}

/// A string, unquoted.
#[derive(Clone, Debug, PartialEq)]
pub struct StringLiteral {
    pub value: String,
    pub span: Span,
}

/// An `@` modifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AtModifier {
    /// `@ <unix seconds>`, in milliseconds.
    Timestamp(i64),
    /// `@ start()`: the start of the query range.
    Start,
    /// `@ end()`: the end of the query range.
    End,
}

/// An instant vector selector: `name{matchers} @ t offset d`.
#[derive(Clone, Debug, PartialEq)]
pub struct VectorSelector {
    /// The metric name written before the braces, if any.
    pub name: Option<String>,
    /// All matchers; when `name` is set, the last one is `__name__="<name>"`.
    pub matchers: Vec<Matcher>,
    /// `offset` (negative allowed). A literal zero offset is stored as `None`, as Prometheus does.
    pub offset: Option<Duration>,
    pub at: Option<AtModifier>,
    /// Experimental `anchored` modifier.
    pub anchored: bool,
    /// Experimental `smoothed` modifier.
    pub smoothed: bool,
    /// From the name (or `{`) to the end of the last modifier applied directly to the selector.
    pub span: Span,
}

/// A range vector selector `selector[range]`. Its `offset`, `@`, `anchored` and `smoothed` are those
/// of the inner selector, whether written before or after the brackets.
#[derive(Clone, Debug, PartialEq)]
pub struct MatrixSelector {
    pub selector: VectorSelector,
    pub range: Duration,
    pub span: Span,
}

/// A subquery `expr[range:step] @ t offset d`.
#[derive(Clone, Debug, PartialEq)]
pub struct SubqueryExpr {
    pub expr: Box<Expr>,
    pub range: Duration,
    /// `None` when written without a step (`x[1h:]`): the evaluator's default interval applies.
    pub step: Option<Duration>,
    pub offset: Option<Duration>,
    pub at: Option<AtModifier>,
    pub span: Span,
}

/// Unary `+` / `-` on a non-literal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnaryOp {
    Plus,
    Minus,
}

impl UnaryOp {
    pub fn as_str(self) -> &'static str {
        match self {
            UnaryOp::Plus => "+",
            UnaryOp::Minus => "-",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct UnaryExpr {
    pub op: UnaryOp,
    pub expr: Box<Expr>,
    pub span: Span,
}

/// Binary operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Atan2,
    /// `==`
    Eql,
    /// `!=`
    Neq,
    /// `>`
    Gtr,
    /// `<`
    Lss,
    /// `>=`
    Gte,
    /// `<=`
    Lte,
    /// `</`: native histogram trim of observations above a threshold.
    TrimUpper,
    /// `>/`: native histogram trim of observations below a threshold.
    TrimLower,
    And,
    Or,
    Unless,
}

impl BinaryOp {
    pub fn as_str(self) -> &'static str {
        match self {
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Mod => "%",
            BinaryOp::Pow => "^",
            BinaryOp::Atan2 => "atan2",
            BinaryOp::Eql => "==",
            BinaryOp::Neq => "!=",
            BinaryOp::Gtr => ">",
            BinaryOp::Lss => "<",
            BinaryOp::Gte => ">=",
            BinaryOp::Lte => "<=",
            BinaryOp::TrimUpper => "</",
            BinaryOp::TrimLower => ">/",
            BinaryOp::And => "and",
            BinaryOp::Or => "or",
            BinaryOp::Unless => "unless",
        }
    }

    /// `==`, `!=`, `>`, `<`, `>=`, `<=`.
    pub fn is_comparison(self) -> bool {
        matches!(
            self,
            BinaryOp::Eql
                | BinaryOp::Neq
                | BinaryOp::Gtr
                | BinaryOp::Lss
                | BinaryOp::Gte
                | BinaryOp::Lte
        )
    }

    /// `and`, `or`, `unless`.
    pub fn is_set_operator(self) -> bool {
        matches!(self, BinaryOp::And | BinaryOp::Or | BinaryOp::Unless)
    }

    /// Binding strength, higher binds tighter (`or` 1 … `^` 6).
    pub fn precedence(self) -> u8 {
        match self {
            BinaryOp::Or => 1,
            BinaryOp::And | BinaryOp::Unless => 2,
            BinaryOp::Eql
            | BinaryOp::Neq
            | BinaryOp::Gtr
            | BinaryOp::Lss
            | BinaryOp::Gte
            | BinaryOp::Lte
            | BinaryOp::TrimUpper
            | BinaryOp::TrimLower => 3,
            BinaryOp::Add | BinaryOp::Sub => 4,
            BinaryOp::Mul | BinaryOp::Div | BinaryOp::Mod | BinaryOp::Atan2 => 5,
            BinaryOp::Pow => 6,
        }
    }

    /// Only `^` associates to the right.
    pub fn is_right_associative(self) -> bool {
        self == BinaryOp::Pow
    }
}

/// How the elements of two vectors pair up in a binary operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VectorMatchCardinality {
    OneToOne,
    /// `group_left`
    ManyToOne,
    /// `group_right`
    OneToMany,
    /// Set operators.
    ManyToMany,
}

impl VectorMatchCardinality {
    pub fn as_str(self) -> &'static str {
        match self {
            VectorMatchCardinality::OneToOne => "one-to-one",
            VectorMatchCardinality::ManyToOne => "many-to-one",
            VectorMatchCardinality::OneToMany => "one-to-many",
            VectorMatchCardinality::ManyToMany => "many-to-many",
        }
    }
}

/// Experimental `fill`, `fill_left`, `fill_right` modifiers: the value a missing partner takes.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct FillValues {
    pub lhs: Option<f64>,
    pub rhs: Option<f64>,
}

/// Vector matching of a binary operation between two instant vectors.
#[derive(Clone, Debug, PartialEq)]
pub struct VectorMatching {
    pub card: VectorMatchCardinality,
    /// `true` for `on(labels)`, `false` for `ignoring(labels)` (or no clause).
    pub on: bool,
    /// The labels of `on`/`ignoring`.
    pub labels: Vec<String>,
    /// The extra labels of `group_left(…)`/`group_right(…)`.
    pub include: Vec<String>,
    pub fill: FillValues,
}

#[derive(Clone, Debug, PartialEq)]
pub struct BinaryExpr {
    pub op: BinaryOp,
    pub lhs: Box<Expr>,
    pub rhs: Box<Expr>,
    /// The `bool` modifier of a comparison.
    pub return_bool: bool,
    /// Present exactly when both operands are instant vectors (set operators: many-to-many).
    pub matching: Option<VectorMatching>,
    /// From the start of `lhs` to the end of `rhs`.
    pub span: Span,
}

/// Aggregation operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AggregateOp {
    Sum,
    Avg,
    Count,
    Min,
    Max,
    Group,
    Stddev,
    Stdvar,
    Topk,
    Bottomk,
    Quantile,
    CountValues,
    Limitk,
    LimitRatio,
}

impl AggregateOp {
    pub fn as_str(self) -> &'static str {
        match self {
            AggregateOp::Sum => "sum",
            AggregateOp::Avg => "avg",
            AggregateOp::Count => "count",
            AggregateOp::Min => "min",
            AggregateOp::Max => "max",
            AggregateOp::Group => "group",
            AggregateOp::Stddev => "stddev",
            AggregateOp::Stdvar => "stdvar",
            AggregateOp::Topk => "topk",
            AggregateOp::Bottomk => "bottomk",
            AggregateOp::Quantile => "quantile",
            AggregateOp::CountValues => "count_values",
            AggregateOp::Limitk => "limitk",
            AggregateOp::LimitRatio => "limit_ratio",
        }
    }

    /// Looks up an operator by its (lower-case) keyword.
    pub fn from_keyword(s: &str) -> Option<AggregateOp> {
        Some(match s {
            "sum" => AggregateOp::Sum,
            "avg" => AggregateOp::Avg,
            "count" => AggregateOp::Count,
            "min" => AggregateOp::Min,
            "max" => AggregateOp::Max,
            "group" => AggregateOp::Group,
            "stddev" => AggregateOp::Stddev,
            "stdvar" => AggregateOp::Stdvar,
            "topk" => AggregateOp::Topk,
            "bottomk" => AggregateOp::Bottomk,
            "quantile" => AggregateOp::Quantile,
            "count_values" => AggregateOp::CountValues,
            "limitk" => AggregateOp::Limitk,
            "limit_ratio" => AggregateOp::LimitRatio,
            _ => return None,
        })
    }

    /// Whether the operator takes a parameter before the vector (`topk(3, x)`).
    pub fn has_param(self) -> bool {
        matches!(
            self,
            AggregateOp::Topk
                | AggregateOp::Bottomk
                | AggregateOp::Quantile
                | AggregateOp::CountValues
                | AggregateOp::Limitk
                | AggregateOp::LimitRatio
        )
    }

    /// `limitk` and `limit_ratio` need Prometheus' experimental-functions flag.
    pub fn is_experimental(self) -> bool {
        matches!(self, AggregateOp::Limitk | AggregateOp::LimitRatio)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct AggregateExpr {
    pub op: AggregateOp,
    pub expr: Box<Expr>,
    /// The parameter of `topk`, `bottomk`, `quantile`, `count_values`, `limitk`, `limit_ratio`.
    pub param: Option<Box<Expr>>,
    /// The labels of `by (…)` or `without (…)`.
    pub grouping: Vec<String>,
    pub without: bool,
    pub span: Span,
}

/// A function call. `func` comes from the parser's function table.
#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    pub func: &'static Function,
    pub args: Vec<Expr>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ParenExpr {
    pub expr: Box<Expr>,
    pub span: Span,
}

/// A range, subquery step or offset.
///
/// Prometheus 3 accepts arithmetic in these places (`x[5m + 1m]`, `offset (1h * 2)`, `x[step() * 4]`);
/// the expression is kept for printing, and its value is computed at parse time when it does not
/// depend on the query.
#[derive(Clone, Debug, PartialEq)]
pub struct Duration {
    /// The value in milliseconds when known at parse time: always for a plain literal, and for
    /// arithmetic without `step()`/`range()` that evaluates to a valid duration. `None` otherwise; use
    /// [`Duration::resolve`] then (Prometheus also reports those errors only at evaluation time).
    pub ms: Option<i64>,
    /// The expression as written; `None` for a plain literal (`5m`, `300`, `-1h`).
    pub expr: Option<DurationExpr>,
}

/// What `step()` and `range()` stand for when a [`Duration`] is resolved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DurationContext {
    /// The query's step in milliseconds (0 for an instant query).
    pub step_ms: i64,
    /// `end - start` of the query in milliseconds (0 for an instant query).
    pub range_ms: i64,
}

impl Duration {
    /// A plain literal of `ms` milliseconds.
    pub fn from_ms(ms: i64) -> Duration {
        Duration {
            ms: Some(ms),
            expr: None,
        }
    }

    /// The value in milliseconds. Offsets pass `allow_negative = true`; ranges and steps must be
    /// positive. Errors carry Prometheus' evaluation-time wording (`4:9: duration must be greater
    /// than 0`, with the expression's byte range).
    pub fn resolve(&self, ctx: DurationContext, allow_negative: bool) -> Result<i64, String> {
        match (self.ms, &self.expr) {
            (Some(ms), _) => Ok(ms),
            (None, Some(expr)) => expr.resolve(ctx, allow_negative),
            (None, None) => Ok(0),
        }
    }

    /// Whether the value depends on the query's step or range.
    pub fn is_query_dependent(&self) -> bool {
        self.expr
            .as_ref()
            .is_some_and(DurationExpr::is_query_dependent)
    }
}

/// Operators of duration arithmetic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DurationOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
}

impl DurationOp {
    pub fn as_str(self) -> &'static str {
        match self {
            DurationOp::Add => "+",
            DurationOp::Sub => "-",
            DurationOp::Mul => "*",
            DurationOp::Div => "/",
            DurationOp::Mod => "%",
            DurationOp::Pow => "^",
        }
    }
}

/// Duration arithmetic, in seconds as Prometheus computes it.
#[derive(Clone, Debug, PartialEq)]
pub enum DurationExpr {
    /// A number (seconds) or duration literal; `-5m` is a literal of -300.
    Literal(NumberLiteral),
    /// `step()`: the query step.
    Step(Span),
    /// `range()`: the query range.
    Range(Span),
    /// `-expr` on a non-literal (`-step()`, `-(1m)`).
    Neg {
        expr: Box<DurationExpr>,
        span: Span,
    },
    Binary {
        op: DurationOp,
        lhs: Box<DurationExpr>,
        rhs: Box<DurationExpr>,
    },
    /// `min_of(a, b)` / `max_of(a, b)`.
    Extremum {
        max: bool,
        lhs: Box<DurationExpr>,
        rhs: Box<DurationExpr>,
        span: Span,
    },
    Paren {
        expr: Box<DurationExpr>,
        span: Span,
    },
}

impl DurationExpr {
    pub fn span(&self) -> Span {
        match self {
            DurationExpr::Literal(n) => n.span,
            DurationExpr::Step(s) | DurationExpr::Range(s) => *s,
            DurationExpr::Neg { span, .. }
            | DurationExpr::Extremum { span, .. }
            | DurationExpr::Paren { span, .. } => *span,
            DurationExpr::Binary { lhs, rhs, .. } => Span::new(lhs.span().start, rhs.span().end),
        }
    }

    /// Whether `step()` or `range()` occurs.
    pub fn is_query_dependent(&self) -> bool {
        match self {
            DurationExpr::Literal(_) => false,
            DurationExpr::Step(_) | DurationExpr::Range(_) => true,
            DurationExpr::Neg { expr, .. } | DurationExpr::Paren { expr, .. } => {
                expr.is_query_dependent()
            }
            DurationExpr::Binary { lhs, rhs, .. } | DurationExpr::Extremum { lhs, rhs, .. } => {
                lhs.is_query_dependent() || rhs.is_query_dependent()
            }
        }
    }

    /// The value in seconds. Errors: division or modulo by zero.
    pub fn eval_seconds(&self, ctx: DurationContext) -> Result<f64, String> {
        Ok(match self {
            DurationExpr::Literal(n) => n.value,
            DurationExpr::Step(_) => ctx.step_ms as f64 / 1000.0,
            DurationExpr::Range(_) => ctx.range_ms as f64 / 1000.0,
            DurationExpr::Neg { expr, .. } => -expr.eval_seconds(ctx)?,
            DurationExpr::Paren { expr, .. } => expr.eval_seconds(ctx)?,
            DurationExpr::Extremum { max, lhs, rhs, .. } => {
                let (l, r) = (lhs.eval_seconds(ctx)?, rhs.eval_seconds(ctx)?);
                // Go's math.Max/Min: NaN wins.
                if l.is_nan() || r.is_nan() {
                    f64::NAN
                } else if *max {
                    l.max(r)
                } else {
                    l.min(r)
                }
            }
            DurationExpr::Binary { op, lhs, rhs } => {
                let (l, r) = (lhs.eval_seconds(ctx)?, rhs.eval_seconds(ctx)?);
                let span = self.span();
                match op {
                    DurationOp::Add => l + r,
                    DurationOp::Sub => l - r,
                    DurationOp::Mul => l * r,
                    DurationOp::Div if r == 0.0 => {
                        return Err(format!("{}:{}: division by zero", span.start, span.end));
                    }
                    DurationOp::Div => l / r,
                    DurationOp::Mod if r == 0.0 => {
                        return Err(format!("{}:{}: modulo by zero", span.start, span.end));
                    }
                    DurationOp::Mod => l % r,
                    DurationOp::Pow => l.powf(r),
                }
            }
        })
    }

    /// The value in milliseconds, checked as Prometheus checks evaluated duration expressions.
    pub fn resolve(&self, ctx: DurationContext, allow_negative: bool) -> Result<i64, String> {
        let secs = self.eval_seconds(ctx)?;
        let span = self.span();
        if !secs.is_finite() {
            return Err(format!(
                "{}:{}: duration is NaN or infinite",
                span.start, span.end
            ));
        }
        if secs <= 0.0 && !allow_negative {
            return Err(format!(
                "{}:{}: duration must be greater than 0",
                span.start, span.end
            ));
        }
        let limit = 9_223_372_036.854_776_f64;
        if secs > limit || secs < -limit {
            return Err(format!(
                "{}:{}: duration is out of range",
                span.start, span.end
            ));
        }
        // Prometheus truncates to whole milliseconds here.
        Ok((secs * 1000.0) as i64)
    }
}

impl Expr {
    /// The type the expression evaluates to.
    pub fn value_type(&self) -> ValueType {
        match self {
            Expr::NumberLiteral(_) => ValueType::Scalar,
            Expr::StringLiteral(_) => ValueType::String,
            Expr::VectorSelector(_) | Expr::Aggregate(_) => ValueType::Vector,
            Expr::MatrixSelector(_) | Expr::Subquery(_) => ValueType::Matrix,
            Expr::Unary(u) => u.expr.value_type(),
            Expr::Paren(p) => p.expr.value_type(),
            Expr::Call(c) => c.func.return_type,
            Expr::Binary(b) => {
                if b.lhs.value_type() == ValueType::Scalar
                    && b.rhs.value_type() == ValueType::Scalar
                {
                    ValueType::Scalar
                } else {
                    ValueType::Vector
                }
            }
        }
    }

    /// Where the expression is in the query text (Prometheus' position ranges).
    pub fn span(&self) -> Span {
        match self {
            Expr::NumberLiteral(n) => n.span,
            Expr::StringLiteral(s) => s.span,
            Expr::VectorSelector(v) => v.span,
            Expr::MatrixSelector(m) => m.span,
            Expr::Subquery(s) => s.span,
            Expr::Unary(u) => u.span,
            Expr::Binary(b) => b.span,
            Expr::Aggregate(a) => a.span,
            Expr::Call(c) => c.span,
            Expr::Paren(p) => p.span,
        }
    }

    /// The direct sub-expressions, in source order (aggregation parameter before the operand).
    pub fn children(&self) -> Vec<&Expr> {
        match self {
            Expr::NumberLiteral(_)
            | Expr::StringLiteral(_)
            | Expr::VectorSelector(_)
            | Expr::MatrixSelector(_) => Vec::new(),
            Expr::Subquery(s) => vec![&s.expr],
            Expr::Unary(u) => vec![&u.expr],
            Expr::Paren(p) => vec![&p.expr],
            Expr::Binary(b) => vec![&b.lhs, &b.rhs],
            Expr::Aggregate(a) => a.param.iter().map(|p| &**p).chain([&*a.expr]).collect(),
            Expr::Call(c) => c.args.iter().collect(),
        }
    }

    /// Mutable [`Expr::children`].
    pub fn children_mut(&mut self) -> Vec<&mut Expr> {
        match self {
            Expr::NumberLiteral(_)
            | Expr::StringLiteral(_)
            | Expr::VectorSelector(_)
            | Expr::MatrixSelector(_) => Vec::new(),
            Expr::Subquery(s) => vec![&mut s.expr],
            Expr::Unary(u) => vec![&mut u.expr],
            Expr::Paren(p) => vec![&mut p.expr],
            Expr::Binary(b) => vec![&mut b.lhs, &mut b.rhs],
            Expr::Aggregate(a) => {
                let mut v: Vec<&mut Expr> = Vec::new();
                if let Some(p) = a.param.as_mut() {
                    v.push(p);
                }
                v.push(&mut a.expr);
                v
            }
            Expr::Call(c) => c.args.iter_mut().collect(),
        }
    }

    /// Calls `f` on every node, parents before children.
    pub fn walk(&self, f: &mut dyn FnMut(&Expr)) {
        f(self);
        for c in self.children() {
            c.walk(f);
        }
    }

    /// Calls `f` on every node, parents before children, allowing changes.
    pub fn walk_mut(&mut self, f: &mut dyn FnMut(&mut Expr)) {
        f(self);
        for c in self.children_mut() {
            c.walk_mut(f);
        }
    }

    /// The expression with every position set to zero: two parses of differently spaced text
    /// compare equal after this.
    pub fn without_spans(&self) -> Expr {
        let mut e = self.clone();
        e.walk_mut(&mut |n| match n {
            Expr::NumberLiteral(x) => x.span = Span::default(),
            Expr::StringLiteral(x) => x.span = Span::default(),
            Expr::VectorSelector(x) => clear_selector(x),
            Expr::MatrixSelector(x) => {
                x.span = Span::default();
                clear_duration(&mut x.range);
                clear_selector(&mut x.selector);
            }
            Expr::Subquery(x) => {
                x.span = Span::default();
                clear_duration(&mut x.range);
                x.step.iter_mut().for_each(clear_duration);
                x.offset.iter_mut().for_each(clear_duration);
            }
            Expr::Unary(x) => x.span = Span::default(),
            Expr::Binary(x) => x.span = Span::default(),
            Expr::Aggregate(x) => x.span = Span::default(),
            Expr::Call(x) => x.span = Span::default(),
            Expr::Paren(x) => x.span = Span::default(),
        });
        e
    }
}

fn clear_selector(v: &mut VectorSelector) {
    v.span = Span::default();
    v.offset.iter_mut().for_each(clear_duration);
}

fn clear_duration(d: &mut Duration) {
    if let Some(e) = d.expr.as_mut() {
        clear_duration_expr(e);
    }
}

fn clear_duration_expr(e: &mut DurationExpr) {
    match e {
        DurationExpr::Literal(n) => n.span = Span::default(),
        DurationExpr::Step(s) | DurationExpr::Range(s) => *s = Span::default(),
        DurationExpr::Neg { expr, span } | DurationExpr::Paren { expr, span } => {
            *span = Span::default();
            clear_duration_expr(expr);
        }
        DurationExpr::Binary { lhs, rhs, .. } => {
            clear_duration_expr(lhs);
            clear_duration_expr(rhs);
        }
        DurationExpr::Extremum { lhs, rhs, span, .. } => {
            *span = Span::default();
            clear_duration_expr(lhs);
            clear_duration_expr(rhs);
        }
    }
}
