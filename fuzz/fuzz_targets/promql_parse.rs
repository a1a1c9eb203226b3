//! The PromQL parser on arbitrary text: it returns a tree or an error, never panics; and a tree
//! printed in canonical form parses back to the same tree (the `format_query` guarantee), up to the
//! order of label matchers, which the printer sorts as Prometheus' does, and the sign of a zero
//! duration.
#![no_main]

use ember_query::ast::Expr;
use ember_query::parser::parse;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(expr) = parse(text) {
        let printed = expr.to_string();
        let again = parse(&printed)
            .unwrap_or_else(|e| panic!("{text:?} printed as {printed:?}, which fails: {e}"));
        assert_eq!(
            normalised(&again),
            normalised(&expr),
            "{text:?} printed as {printed:?} parses differently"
        );
    }
});

fn normalised(e: &Expr) -> Expr {
    let mut e = e.without_spans();
    e.walk_mut(&mut |n| {
        // A negative zero duration prints as `0s`, as in Prometheus.
        if let Expr::NumberLiteral(l) = n
            && l.duration
            && l.value == 0.0
        {
            l.value = 0.0;
        }
        let sel = match n {
            Expr::VectorSelector(v) => v,
            Expr::MatrixSelector(m) => &mut m.selector,
            _ => return,
        };
        sel.matchers.sort_by_key(|m| format!("{m:?}"));
    });
    e
}
