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
use std::sync::Arc;

use super::series::SeriesCell;
use super::symbols::first_differing_label;
use crate::read::Series;

/// Below this many series one thread selects them all: a scoped thread costs tens of microseconds.
const PARALLEL_SELECT_MIN: usize = 512;

fn two_cores() -> bool {
    std::thread::available_parallelism().is_ok_and(|n| n.get() >= 2)
}

/// Orders two selected head series by labels. The head's series share most labels (the metric
/// name, job, instance, …) and an interned id is the same exactly when the string is: the label
/// sets are compared from the first label whose ids differ, which spares comparing the shared
/// strings (that was most of the cost of sorting a selection).
fn by_labels(a: &(Arc<SeriesCell>, Series), b: &(Arc<SeriesCell>, Series)) -> std::cmp::Ordering {
    let from = first_differing_label(&a.0.labels, &b.0.labels);
    let (a, b) = (a.1.labels().as_slice(), b.1.labels().as_slice());
    a[from.min(a.len())..].cmp(&b[from.min(b.len())..])
}

/// Sorts selected head series by labels. Each label set is first spelled as one byte string
/// (`name 0 value 0 …`, which orders as the set does while no string holds a 0 byte), so that a
/// comparison is one `memcmp` rather than a walk over label pairs: comparing label sets was most of
/// the cost of sorting a selection.
fn sort_by_labels(out: &mut Vec<(Arc<SeriesCell>, Series)>) {
    let mut keys: Vec<u8> = Vec::new();
    let mut spans: Vec<(usize, usize, usize)> = Vec::with_capacity(out.len());
    for (i, (_, s)) in out.iter().enumerate() {
        let start = keys.len();
        for l in s.labels().iter() {
            if l.name.as_bytes().contains(&0) || l.value.as_bytes().contains(&0) {
                // The spelling would not order as the label sets do.
                out.sort_unstable_by(by_labels);
                return;
            }
            keys.extend_from_slice(l.name.as_bytes());
            keys.push(0);
            keys.extend_from_slice(l.value.as_bytes());
            keys.push(0);
        }
        spans.push((start, keys.len(), i));
    }
    spans.sort_unstable_by(|a, b| keys[a.0..a.1].cmp(&keys[b.0..b.1]));
    let mut taken: Vec<Option<(Arc<SeriesCell>, Series)>> = out.drain(..).map(Some).collect();
    out.extend(spans.iter().filter_map(|&(_, _, i)| taken[i].take()));
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

    /// Series matching all `matchers` with at least one sample in `[mint, maxt]`, sorted by labels.
    pub(crate) fn select(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<Series> {
        let refs = self.refs_for(matchers);
        let stones = self.tombstones.read();
        let stones = &*stones;
        // Each series with its interned ids, which stay alive (the cell) until the list is sorted.
        let take = |refs: &[SeriesRef]| {
            let mut out = Vec::with_capacity(refs.len());
            for &r in refs {
                let Some(cell) = self.get(r) else { continue };
                let chunks = cell.state.lock().chunks_in(mint, maxt, self.disk());
                let chunks = hide_deleted(chunks, stones.get(r));
                if chunks.is_empty() {
                    continue;
                }
                let labels = self.symbols.resolve(&cell.labels);
                out.push((cell, Series::new(labels, chunks, mint, maxt)));
            }
            sort_by_labels(&mut out);
            out
        };
        if refs.len() < PARALLEL_SELECT_MIN || !two_cores() {
            return take(&refs).into_iter().map(|(_, s)| s).collect();
        }
        // Building label sets and chunk lists, and sorting them, was a twentieth of a histogram
        // query over 1,536 series on the query's critical path: two halves on two threads, merged.
        let (a, b) = refs.split_at(refs.len() / 2);
        let (a, b) = std::thread::scope(|s| {
            let other = s.spawn(|| take(b));
            let mine = take(a);
            (
                mine,
                other.join().expect("series selection thread panicked"),
            )
        });
        let mut out = Vec::with_capacity(a.len() + b.len());
        let (mut a, mut b) = (a.into_iter().peekable(), b.into_iter().peekable());
        loop {
            let next = match (a.peek(), b.peek()) {
                (Some(x), Some(y)) if by_labels(x, y).is_le() => a.next(),
                (Some(_), Some(_)) => b.next(),
                (Some(_), None) => a.next(),
                (None, Some(_)) => b.next(),
                (None, None) => return out,
            };
            out.extend(next.map(|(_, s)| s));
        }
    }

    /// The label sets of the series [`Head::select`] would return, in the same order, without taking
    /// their chunks (the series endpoint needs nothing else).
    pub(crate) fn select_labels(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<Labels> {
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
        out.sort_unstable();
        out
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
