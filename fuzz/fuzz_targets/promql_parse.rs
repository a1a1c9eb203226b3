//! The PromQL parser on arbitrary text: it returns a tree or an error, never panics; and a tree
//! printed in canonical form parses back to the same tree (the `format_query` guarantee), up to the
//! order of label matchers, which the printer sorts as Prometheus' does, and float precision of
//! duration literals.
#![no_main]

use ember_query::ast::Expr;
use ember_query::parser::parse;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
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
        // A negative zero duration prints as `0s`, and a huge one can lose a millisecond on the way
        // through float nanoseconds, both as in Prometheus' printer.
        if let Expr::NumberLiteral(l) = n
            && l.duration
        {
            l.value = if l.value == 0.0 {
                0.0
            } else {
                (l.value as f32) as f64
            };
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
