//! PromQL parser (Prometheus 3.x grammar) producing [`crate::ast::Expr`].

mod error;
pub mod functions;
#[allow(dead_code)]
pub(crate) mod literals;

pub use error::ParseError;
pub use functions::Function;

use crate::ast::{Expr, Span};

/// Parses a PromQL expression. Errors read like Prometheus' (`1:14: parse error: …`).
pub fn parse(input: &str) -> Result<Expr, ParseError> {
    Err(ParseError::new(input, Span::new(0, 0), "parser not available yet"))
}
