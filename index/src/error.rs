//! The crate's single error type. Every fallible operation in `ember-index`
//! returns [`Error`]: malformed label sets and matchers, misuse of the block
//! index writer, I/O failures while writing an index file, and corrupt index
//! bytes found by the block index reader.

use std::path::PathBuf;

/// Errors produced by `ember-index`.
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
    /// A block index file could not be written (or read back while writing).
    /// The `io::Error` is flattened to its kind and message so the enum stays
    /// `Clone + Eq`.
    #[error("{op} {path}: {message}", path = path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        kind: std::io::ErrorKind,
        message: String,
    },
    /// The block index writer was called out of order or with data the
    /// format cannot hold (unsorted symbols or series, unknown symbols,
    /// unsorted chunks, a file beyond 64 GiB...).
    #[error("invalid index write: {0}")]
    InvalidIndexWrite(String),
    /// Block index bytes are truncated, fail a checksum or do not decode.
    /// `offset` is the byte offset in the index file where the problem was
    /// found.
    #[error("corrupt index at byte {offset}: {reason}")]
    CorruptIndex { offset: u64, reason: String },
}

impl Error {
    pub(crate) fn io(op: &'static str, path: &std::path::Path, e: std::io::Error) -> Error {
        Error::Io {
            op,
            path: path.to_path_buf(),
            kind: e.kind(),
            message: e.to_string(),
        }
    }

    pub(crate) fn corrupt(offset: u64, reason: impl Into<String>) -> Error {
        Error::CorruptIndex {
            offset,
            reason: reason.into(),
        }
    }
}
