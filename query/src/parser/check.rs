//! Type checking of a parsed expression, in the order Prometheus' `checkAST` visits nodes so that the
//! first error reported is the one Prometheus reports.
//!
//! Owns operand and argument types, argument counts of calls, the `bool`/scalar-comparison rules,
//! set-operator cardinality (it turns one-to-one into many-to-many and drops the matching of
//! binary expressions that are not vector/vector), and the non-empty-matcher rule of selectors. It
//! does not own syntax (`parse`).

use super::ParseError;
use super::literals::quote;
use crate::ast::*;

type Result<T> = std::result::Result<T, ParseError>;

pub(crate) fn check(input: &str, e: &mut Expr) -> Result<ValueType> {
    Checker { input }.check(e, false)
}

struct Checker<'a> {
    input: &'a str,
}

impl Checker<'_> {
    fn error(&self, span: Span, message: impl Into<String>) -> ParseError {
        ParseError::new(self.input, span, message)
    }

    fn expect_type(&self, e: &mut Expr, want: ValueType, context: &str) -> Result<()> {
        let got = self.check(e, false)?;
        if got != want {
            return Err(self.error(
                e.span(),
                format!(
                    "expected type {} in {context}, got {}",
                    want.documented_name(),
                    got.documented_name()
                ),
            ));
        }
        Ok(())
    }

    /// `bypass_empty` lifts the non-empty-matcher rule (the second argument of `info`).
    fn check(&self, e: &mut Expr, bypass_empty: bool) -> Result<ValueType> {
        let typ = e.value_type();
        match e {
            Expr::Aggregate(a) => {
                self.expect_type(&mut a.expr, ValueType::Vector, "aggregation expression")?;
                match a.op {
                    AggregateOp::Topk
                    | AggregateOp::Bottomk
                    | AggregateOp::Quantile
                    | AggregateOp::Limitk
                    | AggregateOp::LimitRatio => {
                        if let Some(p) = a.param.as_deref_mut() {
                            self.expect_type(p, ValueType::Scalar, "aggregation parameter")?;
                        }
                    }
                    AggregateOp::CountValues => {
                        if let Some(p) = a.param.as_deref_mut() {
                            self.expect_type(p, ValueType::String, "aggregation parameter")?;
                        }
                    }
                    _ => {}
                }
            }
            Expr::Binary(b) => self.check_binary(b)?,
            Expr::Call(c) => self.check_call(c)?,
            Expr::Paren(p) => {
                self.check(&mut p.expr, false)?;
            }
            Expr::Unary(u) => {
                let t = self.check(&mut u.expr, false)?;
                if t != ValueType::Scalar && t != ValueType::Vector {
                    return Err(self.error(
                        u.span,
                        format!(
                            "unary expression only allowed on expressions of type scalar or instant vector, got {}",
                            quote(t.documented_name())
                        ),
                    ));
                }
            }
            Expr::Subquery(s) => {
                let t = self.check(&mut s.expr, false)?;
                if t != ValueType::Vector {
                    return Err(self.error(
                        s.span,
                        format!(
                            "subquery is only allowed on instant vector, got {} instead",
                            t.name()
                        ),
                    ));
                }
            }
            Expr::MatrixSelector(m) => self.check_selector(&m.selector, false)?,
            Expr::VectorSelector(v) => self.check_selector(v, bypass_empty)?,
            Expr::NumberLiteral(_) | Expr::StringLiteral(_) => {}
        }
        Ok(typ)
    }

    fn check_selector(&self, v: &VectorSelector, bypass_empty: bool) -> Result<()> {
        if let Some(name) = &v.name {
            let before_name = &v.matchers[..v.matchers.len() - 1];
            if let Some(m) = before_name.iter().find(|m| m.name() == "__name__") {
                return Err(self.error(
                    v.span,
                    format!(
                        "metric name must not be set twice: {} or {}",
                        quote(name),
                        quote(m.value())
                    ),
                ));
            }
            return Ok(());
        }
        if !bypass_empty && v.matchers.iter().all(|m| m.matches("")) {
            return Err(self.error(
                v.span,
                "vector selector must contain at least one non-empty matcher",
            ));
        }
        Ok(())
    }

    fn check_call(&self, c: &mut Call) -> Result<()> {
        let f = c.func;
        let n = c.args.len();
        let nargs = f.arg_types.len();
        if f.variadic == 0 {
            if nargs != n {
                return Err(self.error(
                    c.span,
                    format!(
                        "expected {nargs} argument(s) in call to {}, got {n}",
                        quote(f.name)
                    ),
                ));
            }
        } else {
            let min = nargs - 1;
            if min > n {
                return Err(self.error(
                    c.span,
                    format!(
                        "expected at least {min} argument(s) in call to {}, got {n}",
                        quote(f.name)
                    ),
                ));
            }
            if let Some(max) = f.max_args()
                && f.variadic > 0
                && max < n
            {
                return Err(self.error(
                    c.span,
                    format!(
                        "expected at most {max} argument(s) in call to {}, got {n}",
                        quote(f.name)
                    ),
                ));
            }
        }
        if f.name == "info" && n > 1 {
            let arg = &c.args[1];
            if arg.value_type() != ValueType::Vector {
                return Err(self.error(
                    c.span,
                    format!(
                        "expected type instant vector in call to function \"info\", got {}",
                        arg.value_type().documented_name()
                    ),
                ));
            }
            match arg {
                Expr::VectorSelector(v) if v.name.is_some() => {
                    return Err(self.error(
                        v.span,
                        "expected label selectors only, got vector selector instead",
                    ));
                }
                Expr::VectorSelector(_) => {}
                other => {
                    return Err(self.error(other.span(), "expected label selectors only"));
                }
            }
        }
        for (i, arg) in c.args.iter_mut().enumerate() {
            let Some(want) = f.arg_type(i) else {
                break;
            };
            let bypass = f.name == "info" && i == 1;
            let got = self.check(arg, bypass)?;
            if got != want {
                return Err(self.error(
                    arg.span(),
                    format!(
                        "expected type {} in call to function {}, got {}",
                        want.documented_name(),
                        quote(f.name),
                        got.documented_name()
                    ),
                ));
            }
        }
        Ok(())
    }

    fn check_binary(&self, b: &mut BinaryExpr) -> Result<()> {
        let lt = self.check(&mut b.lhs, false)?;
        let rt = self.check(&mut b.rhs, false)?;
        let op_span = self.operator_span(b);
        if b.return_bool && !b.op.is_comparison() {
            return Err(self.error(
                op_span,
                "bool modifier can only be used on comparison operators",
            ));
        }
        if b.op.is_comparison()
            && !b.return_bool
            && lt == ValueType::Scalar
            && rt == ValueType::Scalar
        {
            return Err(self.error(
                op_span,
                "comparisons between scalars must use BOOL modifier",
            ));
        }
        let op_name = quote(b.op.as_str());
        if let Some(m) = b.matching.as_mut() {
            if b.op.is_set_operator() && m.card == VectorMatchCardinality::OneToOne {
                m.card = VectorMatchCardinality::ManyToMany;
            }
            if m.on
                && let Some(l) = m.labels.iter().find(|l| m.include.contains(l))
            {
                return Err(self.error(
                    op_span,
                    format!(
                        "label {} must not occur in ON and GROUP clause at once",
                        quote(l)
                    ),
                ));
            }
        }
        for (t, side) in [(lt, &b.lhs), (rt, &b.rhs)] {
            if t != ValueType::Scalar && t != ValueType::Vector {
                return Err(self.error(
                    side.span(),
                    "binary expression must contain only scalar and instant vector types",
                ));
            }
        }
        let both_vectors = lt == ValueType::Vector && rt == ValueType::Vector;
        if !both_vectors {
            if let Some(m) = &b.matching {
                if !m.labels.is_empty() {
                    return Err(self.error(
                        b.span,
                        "vector matching only allowed between instant vectors",
                    ));
                }
                if m.fill.lhs.is_some() || m.fill.rhs.is_some() {
                    return Err(self.error(
                        b.span,
                        "filling in missing series only allowed between instant vectors",
                    ));
                }
            }
            b.matching = None;
        } else if b.op.is_set_operator()
            && let Some(m) = &b.matching
        {
            if matches!(
                m.card,
                VectorMatchCardinality::OneToMany | VectorMatchCardinality::ManyToOne
            ) {
                return Err(self.error(
                    b.span,
                    format!("no grouping allowed for {op_name} operation"),
                ));
            }
            if m.fill.lhs.is_some() || m.fill.rhs.is_some() {
                return Err(self.error(
                    b.span,
                    "filling in missing series not allowed for set operators",
                ));
            }
        }
        if (lt == ValueType::Scalar || rt == ValueType::Scalar) && b.op.is_set_operator() {
            return Err(self.error(
                b.span,
                format!("set operator {op_name} not allowed in binary scalar expression"),
            ));
        }
        Ok(())
    }

    /// Where the operator is: from the end of the left operand (spaces skipped) to the start of
    /// the right one, as Prometheus computes it for its error positions.
    fn operator_span(&self, b: &BinaryExpr) -> Span {
        let bytes = self.input.as_bytes();
        let is_space = |c: u8| matches!(c, b' ' | b'\t' | b'\n' | b'\r');
        let mut start = b.lhs.span().end;
        while start < bytes.len() && is_space(bytes[start]) {
            start += 1;
        }
        let mut end = b.rhs.span().start.max(1) - 1;
        while end > start && is_space(bytes[end]) {
            end -= 1;
        }
        Span::new(start, end.max(start))
    }
}
