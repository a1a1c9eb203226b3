//! The crate's single error type.
//!
//! Owns: how failures are classified and how they print. A [`Error::Corruption`]
//! always carries the segment file path and the byte offset of the broken record
//! so that an operator (or [`crate::repair`]) can act on it.
//! Does not own: deciding what to do about a corruption — that is the engine's
//! policy (see `docs/format/wal.md`, "Torn tails and repair").

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What kind of damage a [`Error::Corruption`] describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CorruptionKind {
    /// The segment file ends inside a fragment header or body, or a record whose
    /// first/middle fragments were read is never finished. This is what a crash
    /// in the middle of a write leaves behind (a "torn tail").
    UnexpectedEof,
    /// A fragment's CRC32-Castagnoli does not match its data.
    Checksum,
    /// A fragment header that the writer could never have produced: unknown type
    /// bits, both compression flags, reserved bits, a length running past the
    /// page end, a header in the last 6 bytes of a page, non-zero bytes in page
    /// padding, or fragments out of order (e.g. `middle` without `first`).
    InvalidFragment,
    /// The record's fragments were intact but its compressed payload did not
    /// decompress.
    Decompress,
    /// The record was read intact but its contents do not decode as the record
    /// type it claims to be (see [`crate::record`]).
    Record,
}

impl fmt::Display for CorruptionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CorruptionKind::UnexpectedEof => "unexpected end of segment",
            CorruptionKind::Checksum => "checksum mismatch",
            CorruptionKind::InvalidFragment => "invalid fragment",
            CorruptionKind::Decompress => "decompression failed",
            CorruptionKind::Record => "invalid record",
        })
    }
}

/// Errors returned by `ember-wal`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An operating-system call on `path` failed.
    #[error("WAL I/O error on {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// The bytes on disk are not a valid WAL. `offset` is where the broken
    /// record (its first fragment) starts in the segment file `path`, so
    /// truncating the file there keeps every intact record before it.
    #[error("WAL corruption in segment {} at offset {offset}: {kind}: {reason}", path.display())]
    Corruption {
        /// Full path of the segment file (inside the WAL or a checkpoint dir).
        path: PathBuf,
        segment: u32,
        offset: u64,
        kind: CorruptionKind,
        reason: String,
    },

    /// A record decoder in [`crate::record`] rejected its input. Decoders only
    /// see bytes, not where they came from; [`crate::Reader::locate`] turns this
    /// into a positioned [`Error::Corruption`] of kind [`CorruptionKind::Record`].
    #[error("invalid WAL record: {0}")]
    Record(String),

    /// The directory's segment files are not a contiguous run, or a requested
    /// segment is missing.
    #[error("WAL directory {}: {reason}", dir.display())]
    Layout { dir: PathBuf, reason: String },

    /// The caller passed something the WAL cannot honour (bad option, a repair
    /// offset past the end of the file, truncating the active segment, ...).
    #[error("invalid WAL request: {0}")]
    InvalidArgument(String),

    /// An earlier write or fsync failed. After a failed fsync the kernel may
    /// have dropped dirty pages while clearing the error, so a later fsync
    /// "succeeding" proves nothing: the WAL refuses further work and the
    /// process must reopen it (which starts a fresh segment) and replay.
    #[error("WAL is unusable after an earlier failure: {0}")]
    Poisoned(String),
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn corruption(
        path: &Path,
        segment: u32,
        offset: u64,
        kind: CorruptionKind,
        reason: impl Into<String>,
    ) -> Error {
        Error::Corruption {
            path: path.to_path_buf(),
            segment,
            offset,
            kind,
            reason: reason.into(),
        }
    }

    /// A copy of this error (`io::Error` is not `Clone`; its kind and message
    /// are preserved). Used to keep returning a reader's failure.
    pub(crate) fn duplicate(&self) -> Error {
        match self {
            Error::Io { path, source } => Error::Io {
                path: path.clone(),
                source: io::Error::new(source.kind(), source.to_string()),
            },
            Error::Corruption {
                path,
                segment,
                offset,
                kind,
                reason,
            } => Error::Corruption {
                path: path.clone(),
                segment: *segment,
                offset: *offset,
                kind: *kind,
                reason: reason.clone(),
            },
            Error::Record(r) => Error::Record(r.clone()),
            Error::Layout { dir, reason } => Error::Layout {
                dir: dir.clone(),
                reason: reason.clone(),
            },
            Error::InvalidArgument(r) => Error::InvalidArgument(r.clone()),
            Error::Poisoned(r) => Error::Poisoned(r.clone()),
        }
    }

    /// The corruption kind, if this is a [`Error::Corruption`].
    pub fn corruption_kind(&self) -> Option<CorruptionKind> {
        match self {
            Error::Corruption { kind, .. } => Some(*kind),
            _ => None,
        }
    }
}

/// Attach a path to an `io::Error`.
pub(crate) trait IoContext<T> {
    fn at(self, path: &Path) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, path: &Path) -> Result<T> {
        self.map_err(|e| Error::io(path, e))
    }
}
