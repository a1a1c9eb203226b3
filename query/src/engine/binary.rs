//! Binary operators: the operator set, element operations with Prometheus' float semantics, and the
//! scalar/scalar and vector/scalar cases.
//!
//! Owns what an operator does to two values (Go's `math.Mod` and `math.Pow`, comparisons that filter
//! by returning the left value and a keep flag, `bool` turning them into 0/1), what a filtering
//! comparison with the scalar on the left returns (the vector's value), when `__name__` goes
//! (arithmetic and `bool` only), and dispatch on operand types. Vector/vector matching lives in
//! `matching`.

use super::QueryError;
use super::eval::{Evaluator, Val};
use super::plan::Binary;
use super::types::{StepSeries, drop_metric_name};

/// The binary operators, independent of how the parser spells them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Atan2,
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    /// `</` and `>/` trim native-histogram buckets; between floats they yield nothing.
    TrimUpper,
    TrimLower,
    And,
    Or,
    Unless,
}

impl BinOp {
    pub(crate) fn is_comparison(self) -> bool {
        matches!(
            self,
            BinOp::Eq | BinOp::Ne | BinOp::Gt | BinOp::Lt | BinOp::Ge | BinOp::Le
        )
    }

    /// Arithmetic changes what the value means, so the metric name (and type/unit) no longer apply.
    pub(crate) fn changes_metric_schema(self) -> bool {
        matches!(
            self,
            BinOp::Add
                | BinOp::Sub
                | BinOp::Mul
                | BinOp::Div
                | BinOp::Mod
                | BinOp::Pow
                | BinOp::Atan2
        )
    }
}

pub(crate) fn btos(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

/// Go's `math.Mod`: the result has the sign of `x` (Rust's `%` on floats agrees).
fn go_mod(x: f64, y: f64) -> f64 {
    x % y
}

/// Scalar/scalar operation (comparisons yield 0 or 1; they always carry `bool` here).
pub(crate) fn scalar_binop(op: BinOp, l: f64, r: f64) -> f64 {
    match op {
        BinOp::Add => l + r,
        BinOp::Sub => l - r,
        BinOp::Mul => l * r,
        BinOp::Div => l / r,
        BinOp::Mod => go_mod(l, r),
        BinOp::Pow => l.powf(r),
        BinOp::Atan2 => l.atan2(r),
        BinOp::Eq => btos(l == r),
        BinOp::Ne => btos(l != r),
        BinOp::Gt => btos(l > r),
        BinOp::Lt => btos(l < r),
        BinOp::Ge => btos(l >= r),
        BinOp::Le => btos(l <= r),
        // The parser admits neither between scalars.
        BinOp::TrimUpper | BinOp::TrimLower | BinOp::And | BinOp::Or | BinOp::Unless => f64::NAN,
    }
}

/// Operation between two vector elements: the value and whether the element is kept (filtering
/// comparisons return the left value and keep it only when the comparison holds).
pub(crate) fn elem_binop(op: BinOp, l: f64, r: f64) -> (f64, bool) {
    match op {
        BinOp::Eq => (l, l == r),
        BinOp::Ne => (l, l != r),
        BinOp::Gt => (l, l > r),
        BinOp::Lt => (l, l < r),
        BinOp::Ge => (l, l >= r),
        BinOp::Le => (l, l <= r),
        // Prometheus drops float/float trims (with an "incompatible sample types" info).
        BinOp::TrimUpper | BinOp::TrimLower => (0.0, false),
        _ => (scalar_binop(op, l, r), true),
    }
}

/// Vector/scalar operation on one value. `swap` means the scalar is the left operand. `None`: a
/// filtering comparison dropped the element.
pub(crate) fn vector_scalar_value(
    op: BinOp,
    v: f64,
    scalar: f64,
    swap: bool,
    return_bool: bool,
) -> Option<f64> {
    let (l, r) = if swap { (scalar, v) } else { (v, scalar) };
    let (mut out, keep) = elem_binop(op, l, r);
    // A filtering comparison keeps the vector element's value, whichever side it is on.
    if op.is_comparison() && swap {
        out = r;
    }
    if return_bool {
        return Some(btos(keep));
    }
    keep.then_some(out)
}

impl Evaluator<'_> {
    /// A binary expression over all steps, dispatched on the operand types.
    pub(crate) fn eval_binary(&self, b: &Binary) -> Result<Val, QueryError> {
        let before = self.ctx.current();
        let lhs = self.eval(&b.lhs)?;
        let rhs = self.eval(&b.rhs)?;
        match (lhs, rhs) {
            (Val::Scalar(l), Val::Scalar(r)) => {
                let v: Vec<f64> = l
                    .into_iter()
                    .zip(r)
                    .map(|(l, r)| scalar_binop(b.op, l, r))
                    .collect();
                self.ctx.set(before + v.len())?;
                Ok(Val::Scalar(v))
            }
            (Val::Vector(l), Val::Scalar(r)) => self.vector_scalar_val(b, l, &r, false, before),
            (Val::Scalar(l), Val::Vector(r)) => self.vector_scalar_val(b, r, &l, true, before),
            (Val::Vector(l), Val::Vector(r)) => self.vector_vector(b, l, r, before),
            _ => Err(QueryError::Execution(format!(
                "invalid operand types for binary operator {:?}",
                b.op
            ))),
        }
    }

    /// Vector/scalar over all steps. The result labels of a series do not depend on the step, so
    /// this maps series by series instead of gathering per step; series that end up with one label
    /// set (after the name drop) are merged, and fail only when they collide at a step, exactly as
    /// the per-step path would.
    fn vector_scalar_val(
        &self,
        b: &Binary,
        vec: Vec<StepSeries>,
        scalar: &[f64],
        swap: bool,
        before: usize,
    ) -> Result<Val, QueryError> {
        let delayed = self.delayed();
        let mut out = Vec::with_capacity(vec.len());
        for mut s in vec {
            self.ctx.check()?;
            s.points.retain_mut(|(t, v)| {
                let sc = scalar[self.steps.index(*t)];
                match vector_scalar_value(b.op, *v, sc, swap, b.return_bool) {
                    Some(nv) => {
                        *v = nv;
                        true
                    }
                    None => false,
                }
            });
            if s.points.is_empty() {
                continue;
            }
            if b.op.changes_metric_schema() || b.return_bool {
                if !delayed {
                    s.labels = drop_metric_name(&s.labels);
                }
                s.drop_name = true;
            }
            out.push(s);
        }
        if !delayed {
            out = super::eval::merge_same_labelsets(out)?;
        }
        let total: usize = out.iter().map(|s| s.points.len()).sum();
        self.ctx.set(before + total)?;
        Ok(Val::Vector(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalar_on_left_comparison_keeps_vector_value() {
        // 1 < x keeps x's value, not the scalar's.
        assert_eq!(
            vector_scalar_value(BinOp::Lt, 5.0, 1.0, true, false),
            Some(5.0)
        );
        assert_eq!(vector_scalar_value(BinOp::Lt, 0.5, 1.0, true, false), None);
        assert_eq!(
            vector_scalar_value(BinOp::Lt, 0.5, 1.0, true, true),
            Some(0.0)
        );
        assert_eq!(
            vector_scalar_value(BinOp::Sub, 0.5, 1.0, true, false),
            Some(0.5)
        );
    }

    #[test]
    fn go_mod_sign_follows_dividend() {
        assert_eq!(go_mod(-7.0, 3.0), -1.0);
        assert!(go_mod(1.0, 0.0).is_nan());
    }
}
