//! Spreading independent per-series work over the machine's cores.
//!
//! Owns [`map_series`]: a map over a slice whose results come back in input order, computed by a few
//! scoped threads that take items from a shared counter (so a slow series does not leave a thread
//! idle). It does not own what is computed, nor the order-dependent bookkeeping of a query (sample
//! counts, annotations, the first error), which callers replay in input order afterwards so the
//! outcome is exactly that of a sequential loop.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Below this much work (in samples decoded or points computed, about 5 ns each) the threads cost
/// more than they save: a scoped thread costs tens of microseconds to start and wake.
pub(crate) const MIN_WORK: usize = 20_000;
/// Items a thread takes at once: few enough to balance, enough to keep the counter cold.
const BATCH: usize = 8;

/// Worker threads for one query's per-series work, the calling thread included. Two: the machines
/// Ember is measured on have two cores, and concurrent queries share them anyway.
fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(2))
}

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
    let threads = threads();
    if threads < 2 || items.len() < 2 || work < MIN_WORK {
        let mut out = Vec::with_capacity(items.len());
        let mut stopped = false;
        for item in items {
            if stopped {
                out.push(None);
                continue;
            }
            let r = f(item);
            stopped = stop(&r);
            out.push(Some(r));
        }
        return out;
    }
    let next = AtomicUsize::new(0);
    let stopped = AtomicBool::new(false);
    let work = || {
        let mut done: Vec<(usize, R)> = Vec::new();
        loop {
            let from = next.fetch_add(BATCH, Ordering::Relaxed);
            if from >= items.len() {
                break;
            }
            for (i, item) in items.iter().enumerate().skip(from).take(BATCH) {
                if stopped.load(Ordering::Relaxed) {
                    return done;
                }
                let r = f(item);
                if stop(&r) {
                    stopped.store(true, Ordering::Relaxed);
                }
                done.push((i, r));
            }
        }
        done
    };
    let parts: Vec<Vec<(usize, R)>> = std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..threads).map(|_| scope.spawn(work)).collect();
        let mut parts = vec![work()];
        for h in helpers {
            match h.join() {
                Ok(p) => parts.push(p),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        parts
    });
    let mut out: Vec<Option<R>> = (0..items.len()).map(|_| None).collect();
    for (i, r) in parts.into_iter().flatten() {
        out[i] = Some(r);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

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
