//! PromQL parser (Prometheus 3.x grammar) producing [`crate::ast::Expr`].

mod check;
mod error;
pub mod functions;
mod lexer;
#[allow(dead_code)]
pub(crate) mod literals;
mod parse;
mod printer;
mod regex_error;
#[cfg(test)]
mod tests;

pub use error::ParseError;
pub use functions::Function;

use ember_index::Matcher;

use crate::ast::Expr;

/// Parses a PromQL expression and type-checks it. Errors read like Prometheus'
/// (`1:14: parse error: unexpected …`); only the first problem is reported.
///
/// Every feature Prometheus gates behind a flag is accepted (experimental functions, `limitk`,
/// duration arithmetic, `anchored`/`smoothed`, `fill` modifiers), as Prometheus' own test engine
/// accepts them.
pub fn parse(input: &str) -> Result<Expr, ParseError> {
    let mut e = parse::Parser::new(input).parse_expr()?;
    check::check(input, &mut e)?;
    Ok(e)
}

/// Parses a lone vector selector (`up{job="a"}`, `{__name__=~"x.*"}`), as the API's `match[]`
/// parameters are parsed, and returns its matchers (the metric name last, as `__name__="…"`).
pub fn parse_metric_selector(input: &str) -> Result<Vec<Matcher>, ParseError> {
    let sel = parse::Parser::new(input).parse_selector()?;
    let mut e = Expr::VectorSelector(sel);
    check::check(input, &mut e)?;
    match e {
        Expr::VectorSelector(v) => Ok(v.matchers),
        _ => unreachable!("a selector stays a selector"),
    }
}
