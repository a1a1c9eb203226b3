//! The one error type of the `ember` crate. Each variant says what went wrong and where, so a caller can
//! match on the kind (out-of-order vs. I/O vs. corruption) without parsing strings.

use std::path::PathBuf;

/// Everything an `ember` operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A sample older than the newest sample of its series (out-of-order ingestion is not enabled).
    #[error("out of order sample: timestamp {t} is before the series' last timestamp {last}")]
    OutOfOrderSample { t: i64, last: i64 },

    /// A second sample at the same timestamp with a different value. The same value again is accepted
    /// and ignored, as Prometheus does.
    #[error("duplicate sample for timestamp {t}: new value differs from the stored value")]
    DuplicateSampleForTimestamp { t: i64 },

    /// A sample too old for the head's appendable window (or outside the allowed range).
    #[error(
        "out of bounds: timestamp {t} is before the head's minimum appendable time {min_valid}"
    )]
    OutOfBounds { t: i64, min_valid: i64 },

    /// A label set that cannot name a series.
    #[error("invalid labels: {0}")]
    InvalidLabels(#[from] ember_index::Error),

    /// A sample without any label: a series needs at least one label (normally `__name__`).
    #[error("invalid labels: the label set is empty")]
    EmptyLabelSet,

    /// A new series was refused because the head holds as many series as its limit allows; samples of
    /// existing series are still accepted.
    #[error(
        "head series limit of {limit} reached: new series are refused until series are removed"
    )]
    HeadSeriesLimit { limit: u64 },

    /// A series reference that the head does not hold.
    #[error("unknown series reference {0}")]
    UnknownSeriesRef(u64),

    /// A chunk's bytes do not decode as the encoding claims.
    #[error("corrupt chunk: {reason} (at bit {bit_offset})")]
    CorruptChunk {
        reason: &'static str,
        bit_offset: usize,
    },

    /// The write-ahead log failed or holds corrupted data.
    #[error(transparent)]
    Wal(#[from] ember_wal::Error),

    /// The data directory is inconsistent (e.g. a sample record for a series never defined).
    #[error("corruption in {path}: {reason}")]
    Corruption { path: PathBuf, reason: String },

    /// A file of a persisted block (chunk segment, tombstones) is damaged: `offset` is the byte where
    /// reading stopped, so a repair tool can cut there.
    #[error("corrupt {path} at byte {offset}: {reason}")]
    CorruptFile {
        path: PathBuf,
        offset: u64,
        reason: String,
    },

    /// A block's `meta.json` is not valid JSON, lacks a required field, or has an unsupported version.
    #[error("invalid block meta {path}: {reason}")]
    InvalidMeta { path: PathBuf, reason: String },

    /// A chunk reference that points at no chunk of the block: its segment does not exist or its offset
    /// lies outside the segment.
    #[error("chunk reference {chunk_ref:#018x} is invalid for {dir}: {reason}")]
    InvalidChunkRef {
        chunk_ref: u64,
        dir: PathBuf,
        reason: String,
    },

    /// A chunk cannot be written to a block: it is larger than a chunk reference or the length field can
    /// describe, or the block has run out of segment numbers.
    #[error("cannot write chunk to {dir}: {reason}")]
    ChunkWriteRefused { dir: PathBuf, reason: String },

    /// I/O on a file or directory of the database.
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The database was closed.
    #[error("database is closed")]
    Closed,
}

/// Result alias for the `ember` crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
