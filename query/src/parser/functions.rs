//! The PromQL function signature table: each function's name, argument types, how many optional
//! trailing arguments it takes, its return type, and whether Prometheus gates it behind the
//! experimental-functions flag.
//!
//! The parser uses it to resolve calls and to type-check their arguments; the AST's `Call` points into
//! it. It does not own what the functions compute (that is `crate::functions` and the evaluator).

use crate::ast::ValueType;

/// A function's signature.
#[derive(Debug, PartialEq, Eq)]
pub struct Function {
    pub name: &'static str,
    /// Types of the arguments. With `variadic != 0` the last type also applies to the extra arguments.
    pub arg_types: &'static [ValueType],
    /// 0: exactly `arg_types.len()` arguments. n > 0: the last argument may be omitted or repeated
    /// up to `arg_types.len() - 1 + n` arguments in total. -1: no upper bound.
    pub variadic: i32,
    pub return_type: ValueType,
    /// Needs Prometheus' `promql-experimental-functions` feature.
    pub experimental: bool,
}

impl Function {
    /// Fewest arguments accepted.
    pub fn min_args(&self) -> usize {
        if self.variadic == 0 {
            self.arg_types.len()
        } else {
            self.arg_types.len() - 1
        }
    }

    /// Most arguments accepted; `None` when unbounded.
    pub fn max_args(&self) -> Option<usize> {
        match self.variadic {
            0 => Some(self.arg_types.len()),
            n if n < 0 => None,
            n => Some(self.arg_types.len() - 1 + n as usize),
        }
    }

    /// The expected type of argument `i` (0-based), if the function takes that many.
    pub fn arg_type(&self, i: usize) -> Option<ValueType> {
        if i < self.arg_types.len() {
            Some(self.arg_types[i])
        } else if self.variadic != 0 {
            self.arg_types.last().copied()
        } else {
            None
        }
    }
}

const S: ValueType = ValueType::Scalar;
const V: ValueType = ValueType::Vector;
const M: ValueType = ValueType::Matrix;
const STR: ValueType = ValueType::String;

const fn func(
    name: &'static str,
    arg_types: &'static [ValueType],
    variadic: i32,
    return_type: ValueType,
    experimental: bool,
) -> Function {
    Function {
        name,
        arg_types,
        variadic,
        return_type,
        experimental,
    }
}

/// Every function Prometheus knows, sorted by name (looked up by binary search).
pub static FUNCTIONS: &[Function] = &[
    func("abs", &[V], 0, V, false),
    func("absent", &[V], 0, V, false),
    func("absent_over_time", &[M], 0, V, false),
    func("acos", &[V], 0, V, false),
    func("acosh", &[V], 0, V, false),
    func("asin", &[V], 0, V, false),
    func("asinh", &[V], 0, V, false),
    func("atan", &[V], 0, V, false),
    func("atanh", &[V], 0, V, false),
    func("avg_over_time", &[M], 0, V, false),
    func("ceil", &[V], 0, V, false),
    func("changes", &[M], 0, V, false),
    func("clamp", &[V, S, S], 0, V, false),
    func("clamp_max", &[V, S], 0, V, false),
    func("clamp_min", &[V, S], 0, V, false),
    func("cos", &[V], 0, V, false),
    func("cosh", &[V], 0, V, false),
    func("count_over_time", &[M], 0, V, false),
    func("day_of_month", &[V], 1, V, false),
    func("day_of_week", &[V], 1, V, false),
    func("day_of_year", &[V], 1, V, false),
    func("days_in_month", &[V], 1, V, false),
    func("deg", &[V], 0, V, false),
    func("delta", &[M], 0, V, false),
    func("deriv", &[M], 0, V, false),
    func("double_exponential_smoothing", &[M, S, S], 0, V, true),
    func("end", &[], 0, S, true),
    func("exp", &[V], 0, V, false),
    func("first_over_time", &[M], 0, V, false),
    func("floor", &[V], 0, V, false),
    func("histogram_avg", &[V], 0, V, false),
    func("histogram_count", &[V], 0, V, false),
    func("histogram_fraction", &[S, S, V], 0, V, false),
    func("histogram_quantile", &[S, V], 0, V, false),
    func("histogram_quantiles", &[V, STR, S, S], 9, V, true),
    func("histogram_stddev", &[V], 0, V, false),
    func("histogram_stdvar", &[V], 0, V, false),
    func("histogram_sum", &[V], 0, V, false),
    func("hour", &[V], 1, V, false),
    func("idelta", &[M], 0, V, false),
    func("increase", &[M], 0, V, false),
    func("info", &[V, V], 1, V, true),
    func("irate", &[M], 0, V, false),
    func("label_join", &[V, STR, STR, STR], -1, V, false),
    func("label_replace", &[V, STR, STR, STR, STR], 0, V, false),
    func("last_over_time", &[M], 0, V, false),
    func("ln", &[V], 0, V, false),
    func("log10", &[V], 0, V, false),
    func("log2", &[V], 0, V, false),
    func("mad_over_time", &[M], 0, V, true),
    func("max_of", &[S, S], 0, S, true),
    func("max_over_time", &[M], 0, V, false),
    func("min_of", &[S, S], 0, S, true),
    func("min_over_time", &[M], 0, V, false),
    func("minute", &[V], 1, V, false),
    func("month", &[V], 1, V, false),
    func("pi", &[], 0, S, false),
    func("predict_linear", &[M, S], 0, V, false),
    func("present_over_time", &[M], 0, V, false),
    func("quantile_over_time", &[S, M], 0, V, false),
    func("rad", &[V], 0, V, false),
    func("range", &[], 0, S, true),
    func("rate", &[M], 0, V, false),
    func("resets", &[M], 0, V, false),
    func("round", &[V, S], 1, V, false),
    func("scalar", &[V], 0, S, false),
    func("sgn", &[V], 0, V, false),
    func("sin", &[V], 0, V, false),
    func("sinh", &[V], 0, V, false),
    func("sort", &[V], 0, V, false),
    func("sort_by_label", &[V, STR], -1, V, true),
    func("sort_by_label_desc", &[V, STR], -1, V, true),
    func("sort_desc", &[V], 0, V, false),
    func("sqrt", &[V], 0, V, false),
    func("start", &[], 0, S, true),
    func("start_timestamp", &[V], 0, V, true),
    func("stddev_over_time", &[M], 0, V, false),
    func("stdvar_over_time", &[M], 0, V, false),
    func("step", &[], 0, S, true),
    func("sum_over_time", &[M], 0, V, false),
    func("tan", &[V], 0, V, false),
    func("tanh", &[V], 0, V, false),
    func("time", &[], 0, S, false),
    func("timestamp", &[V], 0, V, false),
    func("ts_of_first_over_time", &[M], 0, V, true),
    func("ts_of_last_over_time", &[M], 0, V, true),
    func("ts_of_max_over_time", &[M], 0, V, true),
    func("ts_of_min_over_time", &[M], 0, V, true),
    func("vector", &[S], 0, V, false),
    func("year", &[V], 1, V, false),
];

/// The function called `name`, if any.
pub fn lookup(name: &str) -> Option<&'static Function> {
    FUNCTIONS
        .binary_search_by(|f| f.name.cmp(name))
        .ok()
        .map(|i| &FUNCTIONS[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_for_binary_search() {
        assert!(FUNCTIONS.windows(2).all(|w| w[0].name < w[1].name));
    }

    #[test]
    fn arity_bounds_follow_variadic() {
        let round = lookup("round").unwrap();
        assert_eq!((round.min_args(), round.max_args()), (1, Some(2)));
        let join = lookup("label_join").unwrap();
        assert_eq!((join.min_args(), join.max_args()), (3, None));
        assert_eq!(join.arg_type(7), Some(ValueType::String));
        assert_eq!(lookup("rate").unwrap().arg_type(1), None);
        assert!(lookup("nope").is_none());
    }
}
