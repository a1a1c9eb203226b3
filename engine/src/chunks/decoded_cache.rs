//! A bounded, shared cache of decoded chunks that never change.
//!
//! A block's chunks never change once written, and dashboards ask for the same hours again and again
//! (every refresh re-runs the same range queries, shifted by a few seconds). Decoding XOR chunks was
//! about half of the CPU time of range queries over blocks, so a query that finds a chunk here copies
//! its samples instead of decoding them again.
//!
//! Owns the cache: keys (a reader's process-unique number, segment, offset), the byte budget, and
//! eviction. Two generations per shard approximate LRU at O(1) cost: new and recently used entries
//! live in the hot map; when it outgrows half the shard's budget it becomes the cold map (dropping
//! the previous cold one), and an entry found in the cold map moves back to the hot one. So the cache
//! never holds more than its budget, and a working set smaller than half of it stays resident.
//!
//! Does not own decoding (the query's series reader asks, decodes on a miss and offers the result),
//! nor deciding which chunks may be cached: block chunks and the head's memory-mapped chunks, which
//! never change once written (`crate::read::ChunkData`).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

/// Samples of one decoded chunk.
pub(crate) type Decoded = Arc<[(i64, f64)]>;

/// (reader or mapped-file number, segment, offset): names one chunk of one open block or head chunk
/// file for as long as the process runs, since those numbers are never reused.
pub(crate) type Key = (u64, u32, u32);

/// Independent locks, so that the two threads of one query (and concurrent queries) rarely wait.
const SHARDS: usize = 16;
/// Bytes an entry costs beyond its samples: the map slot, the `Arc` header, the key.
const ENTRY_OVERHEAD: usize = 64;

/// See the module documentation.
pub struct DecodedChunkCache {
    shard_budget: usize,
    shards: Box<[Mutex<Shard>]>,
}

/// Keys are three small integers; SipHash's flood resistance buys nothing here (the process makes
/// its keys) and cost more than the rest of a lookup.
#[derive(Default, Clone, Copy)]
struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type Map = HashMap<Key, Decoded, std::hash::BuildHasherDefault<KeyHasher>>;

#[derive(Default)]
struct Shard {
    hot: Map,
    hot_bytes: usize,
    cold: Map,
    cold_bytes: usize,
    /// Counted under the shard's lock, which a lookup holds anyway: one counter shared by all
    /// shards was a cache line the query threads took from each other on every lookup.
    hits: u64,
    misses: u64,
}

/// What the cache holds and how it has been used, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DecodedCacheStats {
    pub hits: u64,
    pub misses: u64,
    pub bytes: u64,
    pub entries: u64,
    pub budget_bytes: u64,
}

fn cost(samples: &[(i64, f64)]) -> usize {
    std::mem::size_of_val(samples) + ENTRY_OVERHEAD
}

impl std::fmt::Debug for DecodedChunkCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecodedChunkCache")
            .field("stats", &self.stats())
            .finish()
    }
}

impl DecodedChunkCache {
    /// A cache holding at most `budget_bytes` of decoded samples (and their bookkeeping).
    pub fn new(budget_bytes: usize) -> Self {
        DecodedChunkCache {
            shard_budget: budget_bytes / SHARDS,
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
        }
    }

    fn shard(&self, key: &Key) -> &Mutex<Shard> {
        // Offsets of neighbouring chunks differ in their low bits; mix in the reader and segment.
        let h =
            (u64::from(key.2) >> 4) ^ key.0.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ u64::from(key.1);
        &self.shards[(h as usize) % SHARDS]
    }

    /// The decoded samples of chunk `key`, if cached.
    pub(crate) fn get(&self, key: &Key) -> Option<Decoded> {
        let mut s = self.shard(key).lock();
        if let Some(d) = s.hot.get(key) {
            let d = d.clone();
            s.hits += 1;
            return Some(d);
        }
        let found = s.cold.remove(key);
        if let Some(d) = &found {
            s.cold_bytes -= cost(d);
            let d = d.clone();
            s.insert_hot(*key, d, self.shard_budget);
            s.hits += 1;
        } else {
            s.misses += 1;
        }
        found
    }

    /// Offers the decoded samples of chunk `key`. Chunks larger than a shard's hot half are not kept.
    pub(crate) fn insert(&self, key: Key, samples: Decoded) {
        if cost(&samples) > self.shard_budget / 2 {
            return;
        }
        self.shard(&key)
            .lock()
            .insert_hot(key, samples, self.shard_budget);
    }

    pub fn stats(&self) -> DecodedCacheStats {
        let mut st = DecodedCacheStats {
            budget_bytes: (self.shard_budget * SHARDS) as u64,
            ..Default::default()
        };
        for s in self.shards.iter() {
            let s = s.lock();
            st.hits += s.hits;
            st.misses += s.misses;
            st.bytes += (s.hot_bytes + s.cold_bytes) as u64;
            st.entries += (s.hot.len() + s.cold.len()) as u64;
        }
        st
    }
}

impl Shard {
    fn insert_hot(&mut self, key: Key, samples: Decoded, budget: usize) {
        if let Some(old) = self.hot.remove(&key) {
            self.hot_bytes -= cost(&old);
        }
        let c = cost(&samples);
        if self.hot_bytes + c > budget / 2 {
            // The hot generation becomes the cold one; what was cold and not used since is dropped.
            // Turning over before inserting keeps each generation within half the budget.
            self.cold = std::mem::take(&mut self.hot);
            self.cold_bytes = std::mem::replace(&mut self.hot_bytes, 0);
        }
        self.hot.insert(key, samples);
        self.hot_bytes += c;
    }
}

static NEXT_READER: AtomicU64 = AtomicU64::new(1);

/// A number no other chunk reader of this process has or will have.
pub(crate) fn next_reader_number() -> u64 {
    NEXT_READER.fetch_add(1, Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(n: usize) -> Decoded {
        (0..n).map(|i| (i as i64, i as f64)).collect()
    }

    #[test]
    fn a_cached_chunk_is_returned_until_evicted_and_misses_are_counted() {
        let c = DecodedChunkCache::new(1 << 20);
        assert!(c.get(&(1, 1, 8)).is_none());
        c.insert((1, 1, 8), samples(120));
        assert_eq!(c.get(&(1, 1, 8)).unwrap().len(), 120);
        // Another reader's chunk at the same place is another chunk.
        assert!(c.get(&(2, 1, 8)).is_none());
        let st = c.stats();
        assert_eq!((st.hits, st.misses, st.entries), (1, 2, 1));
        assert_eq!(st.bytes, (120 * 16 + ENTRY_OVERHEAD) as u64);
    }

    #[test]
    fn the_cache_never_holds_more_than_its_budget_and_keeps_what_is_used() {
        let budget = 256 << 10;
        let c = DecodedChunkCache::new(budget);
        c.insert((9, 1, 0), samples(120));
        for i in 0..5_000u32 {
            c.insert((1, 1, i * 16), samples(120));
            // Touch one chunk all along: it must survive the generations turning over.
            assert!(c.get(&(9, 1, 0)).is_some(), "evicted after {i} inserts");
            assert!(c.stats().bytes <= budget as u64);
        }
        // Most of the stream was evicted.
        assert!(c.stats().entries < 5_000 / 4);
    }

    #[test]
    fn chunks_too_large_for_a_shard_are_not_kept() {
        let c = DecodedChunkCache::new(16 << 10);
        c.insert((1, 1, 0), samples(10_000));
        assert_eq!(c.stats().entries, 0);
    }
}
