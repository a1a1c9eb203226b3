//! A persisted block: one directory per time range, named by its ULID, holding
//!
//! ```text
//! <ulid>/meta.json     block metadata               (meta)
//! <ulid>/index         series, labels and postings   (the ember-index crate)
//! <ulid>/chunks/0000NN chunk segment files           (crate::chunks)
//! <ulid>/tombstones    deleted time ranges           (crate::tombstones)
//! ```
//!
//! This module owns the directory's layout, `meta.json`, opening a block for queries ([`Block`]) and
//! writing one (`writer`). It does not own the index format (the `ember-index` crate), planning
//! compactions ([`crate::compact`]) or deciding which blocks are loaded ([`crate::Db`]).

pub mod dir;
pub(crate) mod fileutil;
pub mod meta;
pub mod reader;
pub(crate) mod writer;

pub use meta::{BlockDesc, BlockMeta, BlockStats, Compaction, ThanosDownsample, ThanosMeta};
pub use reader::Block;

use std::path::{Path, PathBuf};

/// File name of a block's metadata.
pub const META_FILENAME: &str = "meta.json";
/// File name of a block's index.
pub const INDEX_FILENAME: &str = "index";
/// Directory of a block's chunk segment files.
pub const CHUNKS_DIRNAME: &str = "chunks";
/// File name of a block's tombstones.
pub const TOMBSTONES_FILENAME: &str = "tombstones";

/// The `chunks/` directory of the block in `block_dir`.
pub fn chunk_dir(block_dir: &Path) -> PathBuf {
    block_dir.join(CHUNKS_DIRNAME)
}
