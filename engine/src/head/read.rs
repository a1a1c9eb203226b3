//! Reading the head: selecting series by matchers and time range.
//!
//! Deleted ranges (the head's tombstones) are hidden here.
//!
//! Owns the snapshot a query works on: closed chunks are shared (`Arc`, or a map of their head chunk
//! file), the open chunk is copied, so a
//! query sees a fixed set of samples while appends go on and holds no lock while it iterates. It does not
//! own the [`Series`] type and its iteration, nor the merging of head and blocks ([`crate::read`]).

use ember_index::{Labels, Matcher, SeriesRef};

use super::Head;
use crate::delete::hide_deleted;
use crate::label_key::{Keys, pick, sort_by_labels};
use crate::read::Series;

/// Below this many series one thread selects them all: handing half to another thread costs more.
const PARALLEL_SELECT_MIN: usize = 512;

fn two_cores() -> bool {
    std::thread::available_parallelism().is_ok_and(|n| n.get() >= 2)
}

/// Series sorted by labels, with their keys ([`crate::label_key`]) when every set could be spelled.
pub(crate) type Sorted = (Vec<Series>, Option<Keys>);

/// Two sorted halves of one selection (disjoint) merged into one.
fn merge_halves((a, ka): Sorted, (b, kb): Sorted) -> Sorted {
    let n = a.len() + b.len();
    let (Some(mut keys), Some(kb)) = (ka, kb) else {
        let mut all = a;
        all.extend(b);
        all.sort_unstable_by(|x, y| x.labels().cmp(y.labels()));
        return (all, None);
    };
    let split = keys.len();
    keys.append(kb);
    let mut order = Vec::with_capacity(n);
    let (mut i, mut j) = (0, split);
    while i < split || j < n {
        if j == n || (i < split && keys.get(i) <= keys.get(j)) {
            order.push(i);
            i += 1;
        } else {
            order.push(j);
            j += 1;
        }
    }
    keys.reorder(&order);
    let mut all = a;
    all.extend(b);
    (pick(all, &order), Some(keys))
}

impl Head {
    /// Refs of the series matching all `matchers`. Prometheus refuses an empty selector in PromQL; at
    /// the storage level "no matchers" means every series, which tools such as dumps need.
    fn refs_for(&self, matchers: &[Matcher]) -> Vec<SeriesRef> {
        let p = self.postings.read();
        if matchers.is_empty() {
            p.all().to_vec()
        } else {
            p.postings_for_matchers(matchers)
        }
    }

    /// Series matching all `matchers` with at least one sample in `[mint, maxt]`, sorted by labels,
    /// with their keys when every set could be spelled (a block's selection is matched against them).
    pub(crate) fn select(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Sorted {
        let refs = self.refs_for(matchers);
        let stones = self.tombstones.read();
        let stones = &*stones;
        let take = |refs: &[SeriesRef]| {
            let mut out = Vec::with_capacity(refs.len());
            for &r in refs {
                let Some(cell) = self.get(r) else { continue };
                let chunks = cell.state.lock().chunks_in(mint, maxt, self.disk());
                let chunks = hide_deleted(chunks, stones.get(r));
                if chunks.is_empty() {
                    continue;
                }
                out.push(Series::new(
                    self.symbols.resolve(&cell.labels),
                    chunks,
                    mint,
                    maxt,
                ));
            }
            // Comparing label sets pair by pair was most of the cost of sorting a selection.
            sort_by_labels(out, Series::labels)
        };
        if refs.len() < PARALLEL_SELECT_MIN || !two_cores() {
            return take(&refs);
        }
        // Building label sets and chunk lists, and sorting them, was a twentieth of a histogram
        // query over 1,536 series on the query's critical path: two halves on rayon's pool, merged.
        // A half no other thread took is done by the thread that split the work, so a busy core
        // does not stall the query (a scoped thread was waited for, a scheduler slice under load).
        let (a, b) = refs.split_at(refs.len() / 2);
        let (a, b) = rayon::join(|| take(a), || take(b));
        merge_halves(a, b)
    }

    /// The label sets of the series [`Head::select`] would return, in the same order (with their
    /// keys when every set could be spelled), without taking their chunks (the series endpoint
    /// needs nothing else).
    pub(crate) fn select_labels(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> (Vec<Labels>, Option<Keys>) {
        let refs = self.refs_for(matchers);
        let stones = self.tombstones.read();
        let mut out = Vec::with_capacity(refs.len());
        for r in refs {
            let Some(cell) = self.get(r) else { continue };
            let deleted = stones.get(r);
            let live = if deleted.is_empty() {
                cell.state.lock().has_chunks_in(mint, maxt)
            } else {
                let chunks = cell.state.lock().chunks_in(mint, maxt, self.disk());
                !hide_deleted(chunks, deleted).is_empty()
            };
            if live {
                out.push(self.symbols.resolve(&cell.labels));
            }
        }
        sort_by_labels(out, |l| l)
    }
}

impl Head {
    /// Every series with samples in `[mint, maxt]`, with its chunks overlapping that range, sorted by
    /// labels: the input of a block cut from the head.
    pub(crate) fn series_for_block(
        &self,
        mint: i64,
        maxt: i64,
    ) -> Vec<crate::block::writer::SeriesToWrite> {
        let refs = self.refs_for(&[]);
        let stones = self.tombstones.read();
        let mut out = Vec::with_capacity(refs.len());
        for r in refs {
            let Some(cell) = self.get(r) else { continue };
            // Deleted samples stay out of the block: the head's tombstones do not travel with it.
            let chunks = hide_deleted(
                cell.state.lock().chunks_in(mint, maxt, self.disk()),
                stones.get(r),
            );
            if !chunks.is_empty() {
                out.push(crate::block::writer::SeriesToWrite {
                    labels: self.symbols.resolve(&cell.labels),
                    chunks,
                });
            }
        }
        out.sort_unstable_by(|a, b| a.labels.cmp(&b.labels));
        out
    }
}
