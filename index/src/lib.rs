//! `ember-index`: label sets, label matchers, sorted-postings set algebra and
//! the in-memory postings (inverted) index used by the head block, and the
//! `index` file of persisted blocks ([`block`]).
//!
//! This crate owns the *meaning* of a series identity (a [`Labels`] set) and of
//! selecting series by label ([`Matcher`], [`MemPostings::postings_for_matchers`],
//! [`block::IndexReader::postings_for_matchers`]). It does not own sample
//! storage, the WAL, chunk files, block directories or locking: [`MemPostings`]
//! is a plain data structure that the head wraps in a lock of its choosing.

pub mod block;
mod error;
mod fast_regex;
pub mod labels;
pub mod matcher;
pub mod mem_postings;
pub mod postings;

pub use error::Error;
pub use labels::{Label, Labels, METRIC_NAME, stable_hash_of_pairs};
pub use matcher::{MatchType, Matcher};
pub use mem_postings::MemPostings;
pub use postings::{intersect, intersects, merge, subtract, subtract_all};

/// Reference to a series in the head. Postings lists are sorted, duplicate-free
/// lists of these.
pub type SeriesRef = u64;
