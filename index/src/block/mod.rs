//! The `index` file of a persisted block, in Prometheus' TSDB index format
//! version 2 (see `docs/format/index.md`).
//!
//! Owns writing that file ([`IndexWriter`]: symbols, series, label indices,
//! postings, the two offset tables and the table of contents, byte-for-byte as
//! Prometheus 2.x writes them) and reading it ([`IndexReader`]: symbol and
//! series lookups, postings, label names/values and `postings_for_matchers`
//! with Prometheus' matcher semantics, every section bounds- and
//! CRC-checked). It does not own the chunk segment files the chunk references
//! point into, `meta.json`, tombstones, or choosing and syncing the block
//! directory: those belong to the engine's block writer.
//!
//! ```
//! use ember_index::block::{ChunkMeta, IndexReader, IndexWriter};
//! use ember_index::{Labels, Matcher};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("index");
//! let a = Labels::from_pairs([("__name__", "up"), ("job", "api")]).unwrap();
//! let b = Labels::from_pairs([("__name__", "up"), ("job", "db")]).unwrap();
//! let mut w = IndexWriter::create(&path).unwrap();
//! // Every label string, sorted and unique; Prometheus also adds "".
//! for s in ["", "__name__", "api", "db", "job", "up"] {
//!     w.add_symbol(s).unwrap();
//! }
//! let chunk = |min_time, max_time, chunk_ref| ChunkMeta { min_time, max_time, chunk_ref };
//! w.add_series(&a, &[chunk(0, 99, 8), chunk(100, 199, 40)]).unwrap();
//! w.add_series(&b, &[chunk(0, 199, 72)]).unwrap();
//! w.close().unwrap();
//!
//! let r = IndexReader::open(&path).unwrap();
//! let refs = r.postings_for_matchers(&[Matcher::not_equal("job", "api")]).unwrap();
//! assert_eq!(refs.len(), 1);
//! let (mut labels, mut chunks) = (Labels::empty(), Vec::new());
//! r.series(refs[0], &mut labels, &mut chunks).unwrap();
//! assert_eq!((labels, chunks), (b, vec![chunk(0, 199, 72)]));
//! assert_eq!(r.label_values("job", &[]).unwrap(), ["api", "db"]);
//! ```

mod encoding;
mod reader;
mod writer;

pub use reader::{IndexReader, SeriesPairs, Symbols};
pub use writer::IndexWriter;

/// First four bytes of every index file.
pub const MAGIC_INDEX: u32 = 0xBAAA_D700;
/// The only format version Ember reads and writes.
pub const FORMAT_V2: u8 = 2;
/// Magic plus version byte.
pub const HEADER_LEN: usize = 5;
/// Six big-endian u64 section offsets plus a CRC32.
pub const TOC_LEN: usize = 6 * 8 + 4;
/// Series entries start at multiples of this; a series' reference is its
/// offset divided by it, which lets 4-byte postings address 64 GiB.
pub const SERIES_ALIGN: u64 = 16;
/// The reader keeps one in this many postings-offset entries (plus each
/// name's last) in memory, and one in this many symbol offsets, as
/// Prometheus does.
pub const SAMPLE_EVERY: usize = 32;

/// Where a chunk of a series lives and which time range it covers, as stored
/// in the series entry. `chunk_ref` is opaque here (Prometheus packs the
/// segment file number in the upper 32 bits and the byte offset in the lower).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ChunkMeta {
    pub min_time: i64,
    pub max_time: i64,
    pub chunk_ref: u64,
}

/// The table of contents at the end of the file: absolute offsets of each
/// section, 0 meaning absent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Toc {
    pub symbols: u64,
    pub series: u64,
    pub label_indices: u64,
    pub label_indices_table: u64,
    pub postings: u64,
    pub postings_table: u64,
}

impl Toc {
    fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(TOC_LEN);
        for x in [
            self.symbols,
            self.series,
            self.label_indices,
            self.label_indices_table,
            self.postings,
            self.postings_table,
        ] {
            encoding::put_be64(&mut b, x);
        }
        let crc = crc32c::crc32c(&b);
        encoding::put_be32(&mut b, crc);
        b
    }
}
