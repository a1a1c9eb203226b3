//! A bounded, shared cache of decoded chunks that never change.
//!
//! A block's chunks never change once written, and dashboards ask for the same hours again and again
//! (every refresh re-runs the same range queries, shifted by a few seconds). Decoding XOR chunks was
//! about half of the CPU time of range queries over blocks, so a query that finds a chunk here copies
//! its samples instead of decoding them again.
//!
//! Owns the cache: keys (a reader's process-unique number, segment, offset), the byte budget, and
//! eviction. Each shard evicts by CLOCK, an approximation of LRU: entries sit in a ring of slots
//! with a "used" bit that a lookup sets; to make room, a hand sweeps the ring, clearing set bits and
//! evicting the first entry whose bit is clear. A lookup only sets a bit (no entry moves), and a
//! working set up to the whole budget stays resident. (Two generations of half the budget each,
//! the design before, kept only half of it for sure: a query whose chunks took 36 MB of a 64 MB
//! cache decoded part of them again on every run.) The cache never holds more than its budget.
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

type Map = HashMap<Key, usize, std::hash::BuildHasherDefault<KeyHasher>>;

/// One place on a shard's clock.
struct Slot {
    key: Key,
    /// `None` once evicted (the slot is then on the free list).
    samples: Option<Decoded>,
    /// Looked up since the hand last passed.
    used: bool,
}

#[derive(Default)]
struct Shard {
    /// Where each cached chunk's slot is.
    map: Map,
    slots: Vec<Slot>,
    /// Empty slots, reused before the ring grows.
    free: Vec<usize>,
    /// The next slot the sweep looks at.
    hand: usize,
    bytes: usize,
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
        let mut guard = self.shard(key).lock();
        let s = &mut *guard;
        match s.map.get(key) {
            Some(&i) => {
                let slot = &mut s.slots[i];
                slot.used = true;
                let d = slot.samples.clone();
                s.hits += 1;
                d
            }
            None => {
                s.misses += 1;
                None
            }
        }
    }

    /// Offers the decoded samples of chunk `key`. Chunks larger than half a shard's budget are not
    /// kept.
    pub(crate) fn insert(&self, key: Key, samples: Decoded) {
        if cost(&samples) > self.shard_budget / 2 {
            return;
        }
        self.shard(&key)
            .lock()
            .insert(key, samples, self.shard_budget);
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
            st.bytes += s.bytes as u64;
            st.entries += s.map.len() as u64;
        }
        st
    }
}

impl Shard {
    fn insert(&mut self, key: Key, samples: Decoded, budget: usize) {
        if let Some(&i) = self.map.get(&key) {
            // Decoded again by a query that missed it concurrently: the same samples.
            self.slots[i].used = true;
            return;
        }
        let c = cost(&samples);
        while self.bytes + c > budget && !self.map.is_empty() {
            self.evict_one();
        }
        let slot = Slot {
            key,
            samples: Some(samples),
            used: false,
        };
        let i = match self.free.pop() {
            Some(i) => {
                self.slots[i] = slot;
                i
            }
            None => {
                self.slots.push(slot);
                self.slots.len() - 1
            }
        };
        self.map.insert(key, i);
        self.bytes += c;
    }

    /// Moves the hand to the first entry not used since it last passed, clearing the bits it
    /// passes, and evicts that entry. Ends within two turns: the first clears every bit.
    fn evict_one(&mut self) {
        loop {
            if self.hand >= self.slots.len() {
                self.hand = 0;
            }
            let i = self.hand;
            self.hand += 1;
            let slot = &mut self.slots[i];
            let Some(samples) = &slot.samples else {
                continue;
            };
            if slot.used {
                slot.used = false;
                continue;
            }
            self.bytes -= cost(samples);
            slot.samples = None;
            self.map.remove(&slot.key);
            self.free.push(i);
            return;
        }
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

    /// `n` keys that fall in the same shard, so that a test sees one clock.
    fn keys_of_one_shard(c: &DecodedChunkCache, n: usize) -> Vec<Key> {
        let first = (1, 1, 0);
        let keys: Vec<Key> = (0..10_000u32)
            .map(|i| (1, 1, i * 16))
            .filter(|k| std::ptr::eq(c.shard(k), c.shard(&first)))
            .take(n)
            .collect();
        assert_eq!(keys.len(), n);
        keys
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
    fn a_working_set_of_most_of_the_budget_stays_resident_over_repeated_scans() {
        let c = DecodedChunkCache::new(1 << 20);
        // Chunks of one shard, filling 90% of its budget (64 KiB), scanned as a query does.
        let same_shard = keys_of_one_shard(&c, 30);
        let each = cost(&samples(120));
        assert!(30 * each <= c.shard_budget && 30 * each > c.shard_budget * 9 / 10);
        for k in &same_shard {
            c.insert(*k, samples(120));
        }
        for round in 0..3 {
            for k in &same_shard {
                assert!(c.get(k).is_some(), "round {round}: {k:?} evicted");
            }
        }
        // One more chunk evicts one not used since the hand last passed, not the whole set.
        c.insert((2, 1, 0), samples(120));
        assert!(c.stats().bytes <= 1 << 20);
    }

    #[test]
    fn an_entry_not_used_since_the_hand_passed_is_evicted_before_used_ones() {
        let c = DecodedChunkCache::new(16 * 4 * cost(&samples(120)));
        let keys = keys_of_one_shard(&c, 5);
        // A shard holds four; use all but the second, then a fifth needs room.
        for k in &keys[..4] {
            c.insert(*k, samples(120));
        }
        for k in [keys[0], keys[2], keys[3]] {
            assert!(c.get(&k).is_some());
        }
        c.insert(keys[4], samples(120));
        assert!(c.get(&keys[1]).is_none(), "the unused one went");
        for k in [keys[0], keys[2], keys[3], keys[4]] {
            assert!(c.get(&k).is_some(), "{k:?}");
        }
    }

    #[test]
    fn chunks_too_large_for_a_shard_are_not_kept() {
        let c = DecodedChunkCache::new(16 << 10);
        c.insert((1, 1, 0), samples(10_000));
        assert_eq!(c.stats().entries, 0);
    }
}
