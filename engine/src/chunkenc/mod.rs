//! Sample encodings inside one chunk.
//!
//! A chunk is a self-contained byte string holding up to 65 535 samples of one series. This module owns
//! how samples are laid out inside those bytes — today only Prometheus' Gorilla-style XOR encoding
//! ([`ENCODING_XOR`], see `docs/format/chunks.md`), produced by [`XorAppender`] and read back by
//! [`XorIterator`]. The bytes are the same ones Prometheus stores, so chunks can be exchanged with it
//! unchanged.
//!
//! It does not own chunk files on disk (segment framing, checksums, references) nor the decision of when
//! to cut a new chunk: the head decides that, using [`XorAppender::size_bytes`] and
//! [`XorAppender::num_samples`].

mod bstream;
mod xor;

pub use xor::{ENCODING_XOR, XorAppender, XorIterator};

/// Size of the chunk header: the big-endian `u16` sample count that precedes the encoded samples.
pub const CHUNK_HEADER_SIZE: usize = 2;
