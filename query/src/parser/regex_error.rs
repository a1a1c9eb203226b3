//! Go's wording for invalid regular expressions in label matchers.
//!
//! Prometheus compiles matcher patterns with Go's `regexp/syntax`, whose errors read
//! `error parsing regexp: missing closing ): `(``: a fixed phrase per error code and the offending
//! piece of the pattern in backquotes. Users (and tools that match on messages) see that text, so the
//! parser translates the Rust regex parser's error kinds into it. Owns only that translation; which
//! patterns are valid is `ember_index`'s concern.

use regex_syntax::ast::ErrorKind;

/// Go's message for `pattern` if Rust's regex parser refuses it, else `None`.
pub(crate) fn go_regex_error(pattern: &str) -> Option<String> {
    let err = regex_syntax::ast::parse::Parser::new()
        .parse(pattern)
        .err()?;
    let span = err.span();
    let piece = pattern
        .get(span.start.offset..span.end.offset)
        .unwrap_or(pattern);
    let from_start = pattern.get(span.start.offset..).unwrap_or(pattern);
    let (code, expr) = match err.kind() {
        ErrorKind::GroupUnclosed => ("missing closing )", pattern),
        ErrorKind::GroupUnopened => ("unexpected )", pattern),
        ErrorKind::ClassUnclosed => ("missing closing ]", from_start),
        // Rust points at the operator with an empty span; Go quotes the operator.
        ErrorKind::RepetitionMissing => (
            "missing argument to repetition operator",
            from_start
                .get(..from_start.chars().next().map_or(0, char::len_utf8))
                .unwrap_or(""),
        ),
        ErrorKind::EscapeUnrecognized | ErrorKind::EscapeUnexpectedEof => {
            ("invalid escape sequence", piece)
        }
        ErrorKind::ClassRangeInvalid | ErrorKind::ClassRangeLiteral => {
            ("invalid character class range", piece)
        }
        ErrorKind::RepetitionCountInvalid
        | ErrorKind::RepetitionCountUnclosed
        | ErrorKind::RepetitionCountDecimalEmpty => ("invalid repeat count", piece),
        ErrorKind::GroupNameInvalid
        | ErrorKind::GroupNameEmpty
        | ErrorKind::GroupNameUnexpectedEof
        | ErrorKind::GroupNameDuplicate { .. } => ("invalid named capture", piece),
        _ => ("invalid or unsupported Perl syntax", piece),
    };
    Some(format!("error parsing regexp: {code}: `{expr}`"))
}

#[cfg(test)]
mod tests {
    use super::go_regex_error;

    #[test]
    fn common_mistakes_read_as_go_reports_them() {
        let cases = [
            ("(", "error parsing regexp: missing closing ): `(`"),
            ("a)", "error parsing regexp: unexpected ): `a)`"),
            ("x[ab", "error parsing regexp: missing closing ]: `[ab`"),
            (
                "*a",
                "error parsing regexp: missing argument to repetition operator: `*`",
            ),
            (
                r"\q",
                r"error parsing regexp: invalid escape sequence: `\q`",
            ),
            (
                "[z-a]",
                "error parsing regexp: invalid character class range: `z-a`",
            ),
        ];
        for (pattern, want) in cases {
            assert_eq!(go_regex_error(pattern).as_deref(), Some(want), "{pattern}");
        }
        assert_eq!(go_regex_error("a.*|b+"), None);
    }
}
