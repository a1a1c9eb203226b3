//! Set algebra over postings lists: sorted, duplicate-free `SeriesRef` slices.
//!
//! Owns intersection, union and difference, each choosing between a linear
//! merge and galloping (exponential) search depending on how lopsided the
//! inputs are. Inputs are assumed sorted and duplicate-free (checked only in
//! debug builds); outputs are too. It does not own where lists come from.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use crate::SeriesRef;

/// Size ratio above which the smaller side seeks through the larger by
/// galloping instead of walking it element by element.
const GALLOP_RATIO: usize = 16;

/// Up to this many non-empty lists, `merge` picks the minimum head by a
/// linear scan; above it, a binary heap.
const LINEAR_MERGE_MAX: usize = 4;

fn debug_check_sorted(l: &[SeriesRef]) {
    debug_assert!(
        l.windows(2).all(|w| w[0] < w[1]),
        "postings list not sorted/unique"
    );
}

/// First index `i >= from` with `list[i] >= target` (or `list.len()`),
/// probing 1, 2, 4… ahead before binary searching: cost is logarithmic in the
/// distance moved, not in the list length.
pub fn gallop(list: &[SeriesRef], from: usize, target: SeriesRef) -> usize {
    let rest = &list[from..];
    if rest.first().is_none_or(|&x| x >= target) {
        return from;
    }
    // Invariant: rest[lo] < target.
    let mut lo = 0;
    let mut step = 1;
    while lo + step < rest.len() && rest[lo + step] < target {
        lo += step;
        step *= 2;
    }
    let hi = (lo + step).min(rest.len());
    from + lo + 1 + rest[lo + 1..hi].partition_point(|&x| x < target)
}

/// Whether two lists share at least one element; stops at the first one.
pub fn intersects(a: &[SeriesRef], b: &[SeriesRef]) -> bool {
    let (small, large) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    if small.is_empty() || small[0] > *large.last().unwrap() || *small.last().unwrap() < large[0] {
        return false;
    }
    let mut j = 0;
    for &x in small {
        j = gallop(large, j, x);
        match large.get(j) {
            None => return false,
            Some(&y) if y == x => return true,
            _ => {}
        }
    }
    false
}

fn intersect_two(a: &[SeriesRef], b: &[SeriesRef], out: &mut Vec<SeriesRef>) {
    out.clear();
    let (small, large) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    if small.is_empty() {
        return;
    }
    if large.len() / small.len() >= GALLOP_RATIO {
        let mut j = 0;
        for &x in small {
            j = gallop(large, j, x);
            if j == large.len() {
                break;
            }
            if large[j] == x {
                out.push(x);
                j += 1;
            }
        }
    } else {
        let (mut i, mut j) = (0, 0);
        while i < small.len() && j < large.len() {
            match small[i].cmp(&large[j]) {
                Ordering::Less => i += 1,
                Ordering::Greater => j += 1,
                Ordering::Equal => {
                    out.push(small[i]);
                    i += 1;
                    j += 1;
                }
            }
        }
    }
}

/// Elements present in every list. No lists means no elements (as in
/// Prometheus, an empty intersection is empty, not "everything").
pub fn intersect(lists: &[&[SeriesRef]]) -> Vec<SeriesRef> {
    lists.iter().for_each(|l| debug_check_sorted(l));
    match lists {
        [] => return Vec::new(),
        [one] => return one.to_vec(),
        _ => {}
    }
    // Smallest first: the running result can only shrink, so starting small
    // keeps every step cheap and makes galloping through big lists likely.
    let mut order: Vec<&[SeriesRef]> = lists.to_vec();
    order.sort_unstable_by_key(|l| l.len());
    let mut acc = Vec::with_capacity(order[0].len());
    intersect_two(order[0], order[1], &mut acc);
    let mut scratch = Vec::with_capacity(acc.len());
    for l in &order[2..] {
        if acc.is_empty() {
            break;
        }
        intersect_two(&acc, l, &mut scratch);
        std::mem::swap(&mut acc, &mut scratch);
    }
    acc
}

fn merge_two(a: &[SeriesRef], b: &[SeriesRef]) -> Vec<SeriesRef> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            Ordering::Less => {
                out.push(a[i]);
                i += 1;
            }
            Ordering::Greater => {
                out.push(b[j]);
                j += 1;
            }
            Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
}

/// Sorted union of all lists, without duplicates.
pub fn merge(lists: &[&[SeriesRef]]) -> Vec<SeriesRef> {
    lists.iter().for_each(|l| debug_check_sorted(l));
    let lists: Vec<&[SeriesRef]> = lists.iter().copied().filter(|l| !l.is_empty()).collect();
    match lists.as_slice() {
        [] => Vec::new(),
        [one] => one.to_vec(),
        [a, b] => merge_two(a, b),
        _ if lists.len() <= LINEAR_MERGE_MAX => merge_linear(&lists),
        _ => {
            let lo = lists.iter().map(|l| l[0]).min().unwrap();
            let hi = lists.iter().map(|l| *l.last().unwrap()).max().unwrap();
            let total: usize = lists.iter().map(|l| l.len()).sum();
            let words = usize::try_from((hi - lo) / 64 + 1).unwrap_or(usize::MAX);
            if words <= total.saturating_mul(BITMAP_WORDS_PER_ELEMENT) {
                merge_bitmap(&lists, lo, words, total)
            } else {
                merge_heap(&lists)
            }
        }
    }
}

/// Many-list unions switch from a heap to a bitmap over `[min, max]` when the
/// bitmap has at most this many 64-bit words per input element. Head refs are
/// handed out by a counter, so unions of many lists are usually dense enough:
/// setting bits and scanning words then beats a heap's `log k` sifts.
const BITMAP_WORDS_PER_ELEMENT: usize = 2;

fn merge_bitmap(
    lists: &[&[SeriesRef]],
    lo: SeriesRef,
    words: usize,
    total: usize,
) -> Vec<SeriesRef> {
    let mut bits = vec![0u64; words];
    for l in lists {
        for &x in *l {
            let d = x - lo;
            bits[(d / 64) as usize] |= 1 << (d % 64);
        }
    }
    let mut out = Vec::with_capacity(total);
    for (w, &word) in bits.iter().enumerate() {
        let mut word = word;
        while word != 0 {
            let b = word.trailing_zeros() as u64;
            out.push(lo + w as u64 * 64 + b);
            word &= word - 1;
        }
    }
    out
}

fn merge_linear(lists: &[&[SeriesRef]]) -> Vec<SeriesRef> {
    let mut pos = vec![0usize; lists.len()];
    let mut out = Vec::with_capacity(lists.iter().map(|l| l.len()).max().unwrap_or(0));
    loop {
        let mut min = None::<SeriesRef>;
        for (l, &p) in lists.iter().zip(&pos) {
            if let Some(&x) = l.get(p) {
                min = Some(min.map_or(x, |m| m.min(x)));
            }
        }
        let Some(m) = min else { break };
        out.push(m);
        for (l, p) in lists.iter().zip(pos.iter_mut()) {
            if l.get(*p) == Some(&m) {
                *p += 1;
            }
        }
    }
    out
}

fn merge_heap(lists: &[&[SeriesRef]]) -> Vec<SeriesRef> {
    let mut heap: BinaryHeap<Reverse<(SeriesRef, usize)>> = lists
        .iter()
        .enumerate()
        .map(|(i, l)| Reverse((l[0], i)))
        .collect();
    let mut pos = vec![1usize; lists.len()];
    let mut out = Vec::with_capacity(lists.iter().map(|l| l.len()).max().unwrap_or(0));
    while let Some(mut top) = heap.peek_mut() {
        let Reverse((x, i)) = *top;
        if out.last() != Some(&x) {
            out.push(x);
        }
        // Replace the head in place (one sift-down) rather than pop + push.
        match lists[i].get(pos[i]) {
            Some(&next) => {
                pos[i] += 1;
                *top = Reverse((next, i));
            }
            None => {
                std::collections::binary_heap::PeekMut::pop(top);
            }
        }
    }
    out
}

/// Elements of `a` not in `b`.
pub fn subtract(a: &[SeriesRef], b: &[SeriesRef]) -> Vec<SeriesRef> {
    debug_check_sorted(a);
    debug_check_sorted(b);
    if b.is_empty() || a.is_empty() || a[0] > *b.last().unwrap() || *a.last().unwrap() < b[0] {
        return a.to_vec();
    }
    let mut out = Vec::with_capacity(a.len());
    if b.len().saturating_mul(GALLOP_RATIO) <= a.len() {
        // Few removals from a long list: copy the runs between them wholesale.
        let mut i = 0;
        for &y in b {
            let j = gallop(a, i, y);
            out.extend_from_slice(&a[i..j]);
            i = j;
            if i == a.len() {
                break;
            }
            if a[i] == y {
                i += 1;
            }
        }
        out.extend_from_slice(&a[i..]);
    } else if a.len().saturating_mul(GALLOP_RATIO) <= b.len() {
        // Short list against a long one: seek in `b` for each element.
        let mut j = 0;
        for &x in a {
            j = gallop(b, j, x);
            if b.get(j) != Some(&x) {
                out.push(x);
            }
        }
    } else {
        let mut j = 0;
        for &x in a {
            while j < b.len() && b[j] < x {
                j += 1;
            }
            if b.get(j) != Some(&x) {
                out.push(x);
            }
        }
    }
    out
}

/// `a` minus the union of `lists`, without necessarily building the union:
/// when `a` is small relative to the lists, subtracting each list in turn by
/// galloping touches far fewer elements than merging them first.
pub fn subtract_all(a: &[SeriesRef], lists: &[&[SeriesRef]]) -> Vec<SeriesRef> {
    let lists: Vec<&[SeriesRef]> = lists.iter().copied().filter(|l| !l.is_empty()).collect();
    match lists.as_slice() {
        [] => a.to_vec(),
        [one] => subtract(a, one),
        _ => {
            let total: usize = lists.iter().map(|l| l.len()).sum();
            if a.len().saturating_mul(lists.len()) < total {
                let mut acc = subtract(a, lists[0]);
                for l in &lists[1..] {
                    if acc.is_empty() {
                        break;
                    }
                    acc = subtract(&acc, l);
                }
                acc
            } else {
                subtract(a, &merge(&lists))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gallop_finds_lower_bound() {
        let l = [1, 3, 5, 7, 9, 11, 13];
        for from in 0..l.len() {
            for t in 0..15 {
                let want = from + l[from..].partition_point(|&x| x < t);
                assert_eq!(gallop(&l, from, t), want, "from {from} target {t}");
            }
        }
        assert_eq!(gallop(&[], 0, 5), 0);
    }

    #[test]
    fn intersect_of_nothing_is_empty() {
        assert!(intersect(&[]).is_empty());
        assert_eq!(intersect(&[&[1, 2]]), vec![1, 2]);
    }

    #[test]
    fn lopsided_inputs_take_the_galloping_paths() {
        let big: Vec<u64> = (0..10_000).map(|x| x * 2).collect();
        let small = [3, 4, 500, 19_998, 20_001];
        assert_eq!(intersect(&[&big, &small]), vec![4, 500, 19_998]);
        assert_eq!(subtract(&small, &big), vec![3, 20_001]);
        let s = subtract(&big, &small);
        assert_eq!(s.len(), big.len() - 3);
        assert!(!s.contains(&500));
        assert!(intersects(&small, &big));
        assert!(!intersects(&[1, 3, 5], &big));
    }

    #[test]
    fn merge_many_lists_dedups_on_both_dense_and_sparse_paths() {
        // Dense refs take the bitmap; refs a million apart take the heap.
        for spread in [1u64, 1_000_000] {
            let lists: Vec<Vec<u64>> = (0..10)
                .map(|i| (0..20).map(|x| x * (i + 1) * spread + 7).collect())
                .collect();
            let refs: Vec<&[u64]> = lists.iter().map(|l| l.as_slice()).collect();
            let mut want: Vec<u64> = lists.iter().flatten().copied().collect();
            want.sort_unstable();
            want.dedup();
            assert_eq!(merge(&refs), want, "spread {spread}");
            assert_eq!(merge_heap(&refs), want);
            assert_eq!(
                merge_bitmap(&refs, 7, (want.last().unwrap() - 7) as usize / 64 + 1, 0),
                want
            );
        }
    }
}
