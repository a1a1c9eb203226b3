//! Canonical PromQL text of a syntax tree: `Display` for [`Expr`] and its nodes, producing exactly
//! what Prometheus 3's `Expr.String()` produces for the same tree (used by the query API's
//! `format_query`, in error messages and in tests that compare against Prometheus).
//!
//! The canonical form is not the input text: spacing is normalised (`sum by (job) (x)`,
//! `a + on (b) group_left (c) d`), matchers are sorted and the `__name__` matcher that repeats the
//! metric name is dropped, ranges and offsets are written as durations (`x[300]` prints `x[5m]`), `@`
//! timestamps get three decimals and number literals are written without an exponent. Parentheses
//! are printed only where the tree has [`Expr::Paren`] (or a parenthesised duration expression),
//! so a tree the parser produced prints back as text that parses to the same tree.
//!
//! Owns only printing; the Go-compatible quoting and number/duration formatting it relies on live in
//! `literals`. It does not own the multi-line "prettier" layout.

use std::fmt::{self, Display, Formatter, Write};

use ember_index::{MatchType, Matcher};

use super::literals::{format_duration_ms, format_float, format_float_g, quote};
use crate::ast::{
    AggregateExpr, AtModifier, BinaryExpr, Call, Duration, DurationExpr, Expr, MatrixSelector,
    NumberLiteral, ParenExpr, StringLiteral, SubqueryExpr, UnaryExpr, VectorMatchCardinality,
    VectorMatching, VectorSelector,
};

/// The label that holds the metric name.
const METRIC_NAME: &str = "__name__";

impl Display for Expr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Expr::NumberLiteral(n) => n.fmt(f),
            Expr::StringLiteral(s) => s.fmt(f),
            Expr::VectorSelector(v) => v.fmt(f),
            Expr::MatrixSelector(m) => m.fmt(f),
            Expr::Subquery(s) => s.fmt(f),
            Expr::Unary(u) => u.fmt(f),
            Expr::Binary(b) => b.fmt(f),
            Expr::Aggregate(a) => a.fmt(f),
            Expr::Call(c) => c.fmt(f),
            Expr::Paren(p) => p.fmt(f),
        }
    }
}

impl Display for NumberLiteral {
    /// A duration literal prints as a duration (`5m`, `-1h30m`, whole milliseconds); any other
    /// number in Go's `'f'` format with the shortest exact digits (`1000000`, `0.0001`, `+Inf`).
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let v = self.value;
        if self.duration && v.is_finite() {
            // Prometheus converts seconds to integer nanoseconds (truncating), then prints whole
            // milliseconds of the magnitude.
            let ms = |secs: f64| (secs * 1e9) as i64 / 1_000_000;
            if v < 0.0 {
                write!(f, "-{}", format_duration_ms(ms(-v)))
            } else {
                f.write_str(&format_duration_ms(ms(v)))
            }
        } else {
            f.write_str(&format_float(v))
        }
    }
}

impl Display for StringLiteral {
    /// Go's `strconv.Quote`, whatever quotes the query used.
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(&quote(&self.value))
    }
}

/// Whether Prometheus' legacy label-name rule (`[a-zA-Z_][a-zA-Z0-9_]*`) holds; names that fail it
/// are printed quoted.
fn is_legacy_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The legacy metric-name rule: label-name characters plus `:`.
fn is_legacy_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// A label name as PromQL accepts it back: bare when legacy, quoted otherwise.
fn push_label_name(out: &mut String, name: &str) {
    if is_legacy_label_name(name) {
        out.push_str(name);
    } else {
        out.push_str(&quote(name));
    }
}

/// `a, "b.c"`: the label list of `by`, `without`, `on`, `ignoring`, `group_left`, `group_right`.
fn write_label_list(f: &mut Formatter<'_>, names: &[String]) -> fmt::Result {
    let mut out = String::new();
    for (i, name) in names.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        push_label_name(&mut out, name);
    }
    f.write_str(&out)
}

/// `name="value"`, with the value always Go-quoted.
fn matcher_text(m: &Matcher) -> String {
    let mut out = String::new();
    push_label_name(&mut out, m.name());
    out.push_str(m.kind().as_str());
    out.push_str(&quote(m.value()));
    out
}

impl Display for AtModifier {
    /// `@ 10.000`, `@ start()`, `@ end()`.
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            AtModifier::Timestamp(ms) => write!(f, "@ {:.3}", *ms as f64 / 1000.0),
            AtModifier::Start => f.write_str("@ start()"),
            AtModifier::End => f.write_str("@ end()"),
        }
    }
}

/// ` @ …` when set.
fn write_at(f: &mut Formatter<'_>, at: Option<&AtModifier>) -> fmt::Result {
    match at {
        Some(at) => write!(f, " {at}"),
        None => Ok(()),
    }
}

/// ` offset …` when set. A plain zero offset is not printed, as in Prometheus (which cannot tell it
/// from no offset).
fn write_offset(f: &mut Formatter<'_>, offset: Option<&Duration>) -> fmt::Result {
    match offset {
        Some(d) if d.expr.is_some() || d.ms.is_some_and(|ms| ms != 0) => write!(f, " offset {d}"),
        _ => Ok(()),
    }
}

/// ` anchored` / ` smoothed`; Prometheus prints only `anchored` if both are somehow set.
fn write_extended_range(f: &mut Formatter<'_>, v: &VectorSelector) -> fmt::Result {
    if v.anchored {
        f.write_str(" anchored")
    } else if v.smoothed {
        f.write_str(" smoothed")
    } else {
        Ok(())
    }
}

/// The name and braces of a selector, without modifiers: `up{job="a"}`, `{__name__="my.metric"}`.
fn write_selector_body(f: &mut Formatter<'_>, v: &VectorSelector) -> fmt::Result {
    let name = v.name.as_deref().unwrap_or("");
    let mut inside: Vec<String> = v
        .matchers
        .iter()
        // The matcher the parser adds for a name written before the braces; an explicit empty name
        // matcher (`{__name__=""}`) is kept.
        .filter(|m| {
            !(m.name() == METRIC_NAME
                && m.kind() == MatchType::Equal
                && m.value() == name
                && !name.is_empty())
        })
        .map(matcher_text)
        .collect();
    inside.sort();
    if is_legacy_metric_name(name) || name.is_empty() {
        f.write_str(name)?;
    } else {
        // Only a hand-built tree gets here: the parser sets `name` from an identifier. Quoting the
        // name inside the braces keeps the output parseable (`{"my.metric"}`).
        inside.insert(0, quote(name));
    }
    if !inside.is_empty() {
        write!(f, "{{{}}}", inside.join(","))?;
    }
    Ok(())
}

impl Display for VectorSelector {
    /// `name{matchers} @ t anchored offset d`, in that order.
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write_selector_body(f, self)?;
        write_at(f, self.at.as_ref())?;
        write_extended_range(f, self)?;
        write_offset(f, self.offset.as_ref())
    }
}

impl Display for MatrixSelector {
    /// `name{matchers}[range] anchored @ t offset d`: the modifiers of the inner selector move after
    /// the brackets.
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let v = &self.selector;
        write_selector_body(f, v)?;
        write!(f, "[{}]", self.range)?;
        write_extended_range(f, v)?;
        write_at(f, v.at.as_ref())?;
        write_offset(f, v.offset.as_ref())
    }
}

impl Display for SubqueryExpr {
    /// `expr[range:step] @ t offset d`; `expr[range:]` without a step.
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{}[{}:", self.expr, self.range)?;
        if let Some(step) = &self.step {
            step.fmt(f)?;
        }
        f.write_char(']')?;
        write_at(f, self.at.as_ref())?;
        write_offset(f, self.offset.as_ref())
    }
}

impl Display for UnaryExpr {
    /// `-x`, `-(a + b)`: no space, parentheses only where the tree has them.
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.op.as_str(), self.expr)
    }
}

/// ` on (a) group_left (b) fill (0)`: the vector-matching clauses of a binary operation. Nothing for
/// a plain one-to-one or set operation without labels.
fn write_matching(f: &mut Formatter<'_>, m: &VectorMatching) -> fmt::Result {
    let grouped = matches!(
        m.card,
        VectorMatchCardinality::ManyToOne | VectorMatchCardinality::OneToMany
    );
    // `ignoring ()` is kept before a group modifier: the grammar needs one of the two clauses there.
    if !m.labels.is_empty() || m.on || grouped {
        f.write_str(if m.on { " on (" } else { " ignoring (" })?;
        write_label_list(f, &m.labels)?;
        f.write_char(')')?;
    }
    if grouped {
        f.write_str(if m.card == VectorMatchCardinality::ManyToOne {
            " group_left ("
        } else {
            " group_right ("
        })?;
        write_label_list(f, &m.include)?;
        f.write_char(')')?;
    }
    match (m.fill.lhs, m.fill.rhs) {
        // Go compares the values, so a NaN on both sides prints as two clauses.
        (Some(l), Some(r)) if l == r => write!(f, " fill ({})", format_float_g(l))?,
        (l, r) => {
            if let Some(l) = l {
                write!(f, " fill_left ({})", format_float_g(l))?;
            }
            if let Some(r) = r {
                write!(f, " fill_right ({})", format_float_g(r))?;
            }
        }
    }
    Ok(())
}

impl Display for BinaryExpr {
    /// `lhs op[ bool][ matching] rhs`, one space around the operator.
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.lhs, self.op.as_str())?;
        if self.return_bool {
            f.write_str(" bool")?;
        }
        if let Some(m) = &self.matching {
            write_matching(f, m)?;
        }
        write!(f, " {}", self.rhs)
    }
}

impl Display for AggregateExpr {
    /// `sum(x)`, `sum by (a, b) (x)`, `sum without () (x)`, `topk(3, x)`: the grouping goes before
    /// the arguments; an empty `by ()` is dropped, an empty `without ()` is not.
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(self.op.as_str())?;
        if self.without || !self.grouping.is_empty() {
            f.write_str(if self.without { " without (" } else { " by (" })?;
            write_label_list(f, &self.grouping)?;
            f.write_str(") ")?;
        }
        f.write_char('(')?;
        if let Some(p) = &self.param {
            write!(f, "{p}, ")?;
        }
        write!(f, "{})", self.expr)
    }
}

impl Display for Call {
    /// `name(arg, arg)`.
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{}(", self.func.name)?;
        for (i, a) in self.args.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            a.fmt(f)?;
        }
        f.write_char(')')
    }
}

impl Display for ParenExpr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "({})", self.expr)
    }
}

impl Display for Duration {
    /// The expression as written (`5m + 1m`, `step()`, `(5m)`), or for a plain literal its value as
    /// a duration (`5m`, `-1h`, `0s`), whatever unit or number the query used.
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match &self.expr {
            Some(e) => e.fmt(f),
            None => {
                let ms = self.ms.unwrap_or(0);
                if ms < 0 {
                    f.write_char('-')?;
                }
                f.write_str(&format_duration_ms(ms))
            }
        }
    }
}

impl Display for DurationExpr {
    /// Binary operators with one space each side, `-` directly before its operand, `step()`,
    /// `range()`, `min_of(a, b)`/`max_of(a, b)`, and the parentheses the query had.
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            DurationExpr::Literal(n) => n.fmt(f),
            DurationExpr::Step(_) => f.write_str("step()"),
            DurationExpr::Range(_) => f.write_str("range()"),
            DurationExpr::Neg { expr, .. } => write!(f, "-{expr}"),
            DurationExpr::Binary { op, lhs, rhs } => write!(f, "{lhs} {} {rhs}", op.as_str()),
            DurationExpr::Extremum { max, lhs, rhs, .. } => {
                let name = if *max { "max_of" } else { "min_of" };
                write!(f, "{name}({lhs}, {rhs})")
            }
            DurationExpr::Paren { expr, .. } => write!(f, "({expr})"),
        }
    }
}

#[cfg(test)]
mod round_trip;
#[cfg(test)]
mod tests;
