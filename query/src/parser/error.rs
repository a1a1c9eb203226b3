//! The parser's error type: Prometheus' `<line>:<col>: parse error: <message>` shape.
//!
//! Owns turning a byte position into Prometheus' line and column (1-based line, column counted in
//! bytes from the last line break). It does not own the wording of individual messages, which the
//! lexer, parser and checker produce.

use crate::ast::Span;

/// Why a query does not parse. Only the first problem found is reported, as Prometheus does.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{location}: parse error: {message}")]
pub struct ParseError {
    /// Byte range the error refers to.
    pub span: Span,
    /// `line:col` of `span.start` (or `unknown position` for an empty query).
    pub location: String,
    /// The message without position, e.g. `unexpected end of input`.
    pub message: String,
}

impl ParseError {
    /// An error at `span` of `input`.
    pub fn new(input: &str, span: Span, message: impl Into<String>) -> ParseError {
        ParseError {
            span,
            location: location(input, span.start),
            message: message.into(),
        }
    }
}

/// Prometheus' `StartPosInput`: `line:col`, both 1-based, the column in bytes.
fn location(input: &str, pos: usize) -> String {
    if input.is_empty() {
        return "unknown position".to_string();
    }
    if pos > input.len() {
        return "invalid position".to_string();
    }
    let before = &input.as_bytes()[..pos];
    let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
    let last_break = before.iter().rposition(|&b| b == b'\n');
    let col = match last_break {
        Some(i) => pos - i,
        None => pos + 1,
    };
    format!("{line}:{col}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_counts_lines_and_byte_columns() {
        assert_eq!(location("abc", 0), "1:1");
        assert_eq!(location("abc", 3), "1:4");
        assert_eq!(location("a\nbc", 3), "2:2");
        assert_eq!(location("a\nbc", 2), "2:1");
        assert_eq!(location("é x", 3), "1:4");
        assert_eq!(location("", 0), "unknown position");
    }
}
