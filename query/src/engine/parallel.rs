//! Spreading independent per-series work over the machine's cores.
//!
//! Owns [`map_series`]: a map over a slice whose results come back in input order, computed on
//! rayon's pool, whose threads steal items from each other (so a slow series does not leave a
//! thread idle) and where a part no other thread took is run by the thread that split it. That
//! matters on a loaded machine: with a thread started per query, the query waited for that
//! thread to be scheduled and to finish even when the calling thread had done all the work — a
//! scheduler time slice (milliseconds) on a core busy with something else, more than a small
//! query's whole cost. It does not own what is computed, nor the order-dependent bookkeeping of
//! a query (sample counts, annotations, the first error), which callers replay in input order
//! afterwards so the outcome is exactly that of a sequential loop.

use std::sync::atomic::{AtomicBool, Ordering};

use rayon::prelude::*;

/// Below this much work (in samples decoded or points computed, about 5 ns each) sharing it costs
/// more than it saves.
pub(crate) const MIN_WORK: usize = 20_000;
/// Items one task takes at most as its minimum: few enough to balance, enough that stealing stays
/// rare when items are small (a series each).
const BATCH: usize = 8;

/// `items.iter().map(f)`, collected in order, on several threads when `work` (the caller's estimate
/// in samples or points) is at least [`MIN_WORK`]. `Some` for every item, except that once `stop`
/// returns true for a result, items not yet started are left `None` (the caller computes those
/// itself if it still needs them).
pub(crate) fn map_series<T, R>(
    items: &[T],
    work: usize,
    f: impl Fn(&T) -> R + Sync,
    stop: impl Fn(&R) -> bool + Sync,
) -> Vec<Option<R>>
where
    T: Sync,
    R: Send,
{
    let stopped = AtomicBool::new(false);
    let one = |item: &T| {
        if stopped.load(Ordering::Relaxed) {
            return None;
        }
        let r = f(item);
        if stop(&r) {
            stopped.store(true, Ordering::Relaxed);
        }
        Some(r)
    };
    if rayon::current_num_threads() < 2 || items.len() < 2 || work < MIN_WORK {
        return items.iter().map(one).collect();
    }
    items
        .par_iter()
        .with_min_len(min_len(items.len(), work))
        .map(one)
        .collect()
}

/// The fewest items a task takes: [`BATCH`] small items, but fewer large ones (a group of series
/// each), down to one, so that eight groups still go to two threads.
fn min_len(items: usize, work: usize) -> usize {
    let per_item = (work / items.max(1)).max(1);
    (MIN_WORK / 4 / per_item).clamp(1, BATCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_few_large_items_are_split_one_per_task_and_many_small_ones_in_batches() {
        // Eight aggregation groups of 32 series each (`sum by (mode)` over 256 CPU series).
        assert_eq!(min_len(8, 460_000), 1);
        // A range function over 1,536 series of 1,800 samples each.
        assert_eq!(min_len(1_536, 1_536 * 1_800), 2);
        // Tiny series: full batches.
        assert_eq!(min_len(10_000, 30_000), BATCH);
        assert_eq!(min_len(0, 0), BATCH);
    }

    #[test]
    fn eight_heavy_groups_run_on_two_threads() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        let items: Vec<usize> = (0..8).collect();
        let threads = pool.install(|| {
            map_series(
                &items,
                MIN_WORK * 8,
                |_| {
                    // Long enough that the second thread steals before the first finishes.
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    std::thread::current().id()
                },
                |_| false,
            )
        });
        let distinct: std::collections::HashSet<_> = threads.into_iter().flatten().collect();
        assert_eq!(distinct.len(), 2);
    }

    #[test]
    fn results_come_back_in_input_order() {
        let items: Vec<u64> = (0..1000).collect();
        let out = map_series(&items, MIN_WORK, |&x| x * 3, |_| false);
        let want: Vec<Option<u64>> = items.iter().map(|&x| Some(x * 3)).collect();
        assert_eq!(out, want);
        let few = map_series(&items[..5], 0, |&x| x + 1, |_| false);
        assert_eq!(few, vec![Some(1), Some(2), Some(3), Some(4), Some(5)]);
    }

    #[test]
    fn stopping_leaves_only_later_items_unstarted() {
        let items: Vec<u64> = (0..1000).collect();
        let out = map_series(&items, MIN_WORK, |&x| x, |&r| r == 500);
        assert_eq!(out[500], Some(500));
        for (i, r) in out.iter().enumerate() {
            if let Some(r) = r {
                assert_eq!(*r, i as u64);
            }
        }
    }
}
