//! Ember: an embeddable time-series database with Prometheus' data model, chunk encoding and WAL format.
//!
//! Open a [`Db`], write samples through an [`Appender`] (a batch is durable in the write-ahead log when
//! [`Appender::commit`] returns), and read them back through a [`Querier`]:
//!
//! ```
//! use ember::{Db, Labels, Matcher, Options};
//!
//! # fn main() -> ember::Result<()> {
//! let dir = std::env::temp_dir().join(format!("ember-doc-{}", std::process::id()));
//! let db = Db::open(&dir, Options::default())?;
//!
//! let up = Labels::from_pairs([("__name__", "up"), ("job", "node")])?;
//! let mut app = db.appender();
//! let r = app.append(&up, 1_000, 1.0)?;     // by label set; returns the series ref
//! app.append_ref(r, 16_000, 0.0)?;          // by ref: no label lookup
//! app.commit()?;                            // in the WAL (fsynced) when this returns
//!
//! let q = db.querier(0, 60_000);
//! let series = q.select(&[Matcher::equal("job", "node")]);
//! assert_eq!(series.len(), 1);
//! assert_eq!(series[0].samples()?, vec![(1_000, 1.0), (16_000, 0.0)]);
//! assert_eq!(q.label_values("job", &[]), vec!["node"]);
//! db.close()?;
//! # std::fs::remove_dir_all(&dir).ok();
//! # Ok(())
//! # }
//! ```
//!
//! Reopening the directory replays the WAL (last checkpoint, then segments) and restores every committed
//! sample. [`Db::compact`], called periodically, moves the oldest part of the head into persistent blocks
//! in Prometheus' on-disk format (`docs/format/block.md`), merges blocks into larger ones and applies
//! retention; queries read the head and the blocks together, each sample once. Errors are typed ([`Error`]): out-of-order and duplicate samples, out-of-bounds timestamps,
//! invalid labels, I/O and corruption, each naming what and where.

pub mod appender;
pub mod block;
pub mod chunkenc;
pub mod chunks;
pub mod chunks_head;
pub mod compact;
pub mod db;
pub mod delete;
pub mod error;
pub(crate) mod head;
pub(crate) mod label_key;
pub(crate) mod read;
pub mod snapshot;
pub mod tombstones;

pub use appender::Appender;
pub use block::{Block, BlockMeta};
pub use chunks::{ChunkReader, ChunkRef, ChunkWriter, DecodedCacheStats};
pub use chunks_head::{HeadChunkRef, HeadChunksLoad};
pub use db::{Cardinality, CompactStats, Compactor, Db, DbStats, Options, Querier, TruncateStats};
pub use delete::DeleteStats;
pub use ember_index::{Label, Labels, MatchType, Matcher, SeriesRef};
pub use ember_wal::SyncPolicy;
pub use error::{Error, Result};
pub use head::HeadMemory;
pub use head::replay::ReplayStats;
pub use read::{SampleIter, Series};
pub use snapshot::SnapshotStats;
pub use tombstones::{Interval, Tombstones};
