//! The crate's single error type. Every fallible constructor in `ember-index`
//! returns [`Error`]; nothing here performs I/O, so all variants describe
//! malformed input.

/// Errors produced when building label sets or matchers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A label had an empty name. Names are any non-empty UTF-8 string.
    #[error("label name must not be empty")]
    EmptyLabelName,
    /// The same label name appeared more than once in one label set.
    #[error("duplicate label name {0:?}")]
    DuplicateLabelName(String),
    /// Raw bytes handed to a decoder-facing constructor were not UTF-8.
    /// `what` is `"label name"` or `"label value"`.
    #[error("{what} is not valid UTF-8")]
    InvalidUtf8 { what: &'static str },
    /// A `=~`/`!~` matcher's pattern did not compile.
    #[error("invalid regular expression {pattern:?}: {message}")]
    InvalidRegex { pattern: String, message: String },
}
