//! Compaction: cutting the oldest part of the head into a level-1 block, and merging blocks into larger
//! ones (leveled compaction, vertical merges of overlapping blocks).
//!
//! Owns the planner ([`plan`]) and the rules for which ranges are built. It does not own the block file
//! formats (`crate::block`, `crate::chunks`, the index crate) nor when compaction runs (the caller of
//! [`crate::Db::compact`]).

pub mod plan;

pub use plan::{
    block_ranges, compacted_meta, default_max_block_duration, exponential_block_ranges,
};
