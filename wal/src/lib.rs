//! `ember-wal`: Ember's write-ahead log, laid out on disk exactly like
//! Prometheus' (`tsdb/wlog`), so each can read the other's segments.
//!
//! * [`Wal`] appends records to numbered segment files (32 KiB pages, records
//!   split into CRC-checked fragments), with group-commit fsync.
//! * [`Reader`] replays them, reporting damage as a positioned
//!   [`Error::Corruption`]; [`repair`] cuts the log back to the last intact
//!   record.
//! * [`record`] holds the series / samples / tombstones payload encodings.
//! * [`checkpoint`] compacts a WAL prefix into the records still needed.
//!
//! This crate does not know about the head, series lifetimes or when to
//! checkpoint; the engine drives those. The format and Ember's policies are
//! documented in `docs/format/wal.md`.

pub mod checkpoint;
mod error;
mod reader;
pub mod record;
mod repair;
mod segment;
mod writer;

pub use error::{CorruptionKind, Error, Result};
pub use reader::Reader;
pub use repair::{is_torn_tail, repair};
pub use segment::{DEFAULT_SEGMENT_SIZE, MAX_RECORD_SIZE, PAGE_SIZE, segment_path};
pub use writer::{Compression, SyncPolicy, Wal, WalOptions};
