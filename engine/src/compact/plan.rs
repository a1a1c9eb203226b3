//! The compaction planner: given the metas of the blocks on disk, which blocks to merge next.
//!
//! The rules are Prometheus' leveled compactor's (`tsdb/compact.go`): blocks whose time ranges overlap
//! are merged first, all of them at once; otherwise, leaving the newest block alone (so a fresh block
//! can still be backed up on its own for a while), the smallest range step above the base range whose
//! aligned window is filled (or lies wholly behind the newest block) by more than one block is merged;
//! otherwise a large block with more than 5 % tombstones is rewritten on its own. Blocks whose previous
//! compaction failed are not picked again by the leveled rule.
//!
//! This module decides only; it reads and writes nothing.

use ulid::Ulid;

use crate::block::BlockMeta;

/// `steps` ranges starting at `min`, each `factor` times the previous (Prometheus'
/// `ExponentialBlockRanges`): 2 h, 6 h, 18 h, 54 h, … for the defaults.
pub fn exponential_block_ranges(min: i64, steps: usize, factor: i64) -> Vec<i64> {
    let mut out = Vec::with_capacity(steps);
    let mut cur = min;
    for _ in 0..steps {
        out.push(cur);
        cur = cur.saturating_mul(factor);
    }
    out
}

/// The compaction ranges for a base block range and the largest block allowed: ten ×3 steps from the
/// base, cut before the first step above `max_block`. The base range is always kept.
pub fn block_ranges(base: i64, max_block: i64) -> Vec<i64> {
    let mut r = exponential_block_ranges(base.max(1), 10, 3);
    if let Some(cut) = r.iter().skip(1).position(|&v| v > max_block) {
        r.truncate(cut + 1);
    }
    r
}

/// The largest block Prometheus builds by default: 31 days, or a tenth of the time retention when that
/// is smaller (so that retention deletes data in steps of at most a tenth).
pub fn default_max_block_duration(retention_ms: i64) -> i64 {
    const DAYS_31: i64 = 31 * 24 * 3600 * 1000;
    if retention_ms > 0 && retention_ms / 10 < DAYS_31 {
        retention_ms / 10
    } else {
        DAYS_31
    }
}

/// The ULIDs of the blocks to compact into one next (in ascending `min_time`), or nothing.
pub fn plan(metas: &[BlockMeta], ranges: &[i64]) -> Vec<Ulid> {
    let mut ms: Vec<&BlockMeta> = metas.iter().collect();
    ms.sort_by_key(|m| (m.min_time, m.ulid));
    if ms.is_empty() {
        return Vec::new();
    }
    let overlapping = select_overlapping(&ms);
    if !overlapping.is_empty() {
        return overlapping;
    }
    ms.pop();
    let chosen = select_leveled(&ms, ranges);
    if !chosen.is_empty() {
        return chosen;
    }
    let half = ranges.get(ranges.len() / 2).copied().unwrap_or(i64::MAX);
    for m in ms.iter().rev() {
        let s = &m.stats;
        if m.max_time - m.min_time < half {
            // A small block is only worth rewriting when everything in it is deleted.
            if s.num_tombstones > 0 && s.num_tombstones >= s.num_series {
                return vec![m.ulid];
            }
            break;
        }
        if s.num_tombstones as f64 / (s.num_series + 1) as f64 > 0.05 {
            return vec![m.ulid];
        }
    }
    Vec::new()
}

/// The first run of blocks (sorted by `min_time`) whose ranges overlap, whole.
fn select_overlapping(ms: &[&BlockMeta]) -> Vec<Ulid> {
    let mut out = Vec::new();
    let Some(first) = ms.first() else {
        return out;
    };
    let mut global_max = first.max_time;
    for (i, m) in ms.iter().enumerate().skip(1) {
        if m.min_time < global_max {
            if out.is_empty() {
                out.push(ms[i - 1].ulid);
            }
            out.push(m.ulid);
        } else if !out.is_empty() {
            break;
        }
        global_max = global_max.max(m.max_time);
    }
    out
}

fn select_leveled(ms: &[&BlockMeta], ranges: &[i64]) -> Vec<Ulid> {
    let (Some(last), true) = (ms.last(), ranges.len() >= 2) else {
        return Vec::new();
    };
    let high = last.min_time;
    for &range in ranges.iter().skip(1) {
        for part in split_by_range(ms, range) {
            if part.iter().any(|m| m.compaction.failed) {
                continue;
            }
            let (Some(first), Some(end)) = (part.first(), part.last()) else {
                continue;
            };
            let (mint, maxt) = (first.min_time, end.max_time);
            if (maxt - mint == range || maxt <= high) && part.len() > 1 {
                return part.iter().map(|m| m.ulid).collect();
            }
        }
    }
    Vec::new()
}

/// Groups blocks (sorted by `min_time`) by the `range`-aligned window they fall in; a block that does
/// not fit inside one window belongs to none.
pub(crate) fn split_by_range<'a>(ms: &[&'a BlockMeta], range: i64) -> Vec<Vec<&'a BlockMeta>> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(m) = ms.get(i) {
        let t0 = m.min_time.div_euclid(range) * range;
        let end = t0.saturating_add(range);
        if m.max_time > end {
            i += 1;
            continue;
        }
        let mut group = Vec::new();
        while let Some(m) = ms.get(i) {
            if m.max_time > end {
                break;
            }
            group.push(*m);
            i += 1;
        }
        if !group.is_empty() {
            out.push(group);
        }
    }
    out
}

/// Metadata of the block that compacting `parents` produces under `ulid`: the union of their ranges
/// and sources, one level above the highest parent, with the parents listed.
pub fn compacted_meta(ulid: Ulid, parents: &[&BlockMeta]) -> BlockMeta {
    let mut meta = BlockMeta::new(0, 0);
    meta.ulid = ulid;
    meta.min_time = parents.iter().map(|p| p.min_time).min().unwrap_or(0);
    meta.max_time = parents.iter().map(|p| p.max_time).max().unwrap_or(0);
    meta.compaction.level = parents
        .iter()
        .map(|p| p.compaction.level)
        .max()
        .unwrap_or(0)
        + 1;
    let mut sources: Vec<Ulid> = parents
        .iter()
        .flat_map(|p| p.compaction.sources.iter().copied())
        .collect();
    sources.sort();
    sources.dedup();
    meta.compaction.sources = sources;
    meta.compaction.parents = parents.iter().map(|p| p.desc()).collect();
    meta
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3600 * 1000;

    fn meta(n: u128, min: i64, max: i64) -> BlockMeta {
        let mut m = BlockMeta::new(min, max);
        m.ulid = Ulid::from(n);
        m.compaction.sources = vec![m.ulid];
        m
    }

    fn ranges() -> Vec<i64> {
        block_ranges(2 * H, default_max_block_duration(15 * 24 * H))
    }

    #[test]
    fn ranges_grow_by_three_and_stop_at_a_tenth_of_retention() {
        assert_eq!(ranges(), vec![2 * H, 6 * H, 18 * H]);
        assert_eq!(
            block_ranges(2 * H, default_max_block_duration(0)),
            vec![2 * H, 6 * H, 18 * H, 54 * H, 162 * H, 486 * H]
        );
        // A retention shorter than ten base ranges still keeps the base range.
        assert_eq!(block_ranges(2 * H, H), vec![2 * H]);
    }

    #[test]
    fn three_aligned_2h_blocks_are_not_compacted_until_a_newer_block_exists() {
        let mut ms = vec![
            meta(1, 0, 2 * H),
            meta(2, 2 * H, 4 * H),
            meta(3, 4 * H, 6 * H),
        ];
        // The newest block is left out; the other two neither fill the 6 h window nor end before the
        // start of the newest remaining one, so another 2 h block may still join them.
        assert!(plan(&ms, &ranges()).is_empty());
        ms.push(meta(4, 6 * H, 8 * H));
        assert_eq!(
            plan(&ms, &ranges()),
            vec![Ulid::from(1), Ulid::from(2), Ulid::from(3)]
        );
    }

    #[test]
    fn a_single_block_or_a_lone_newest_block_is_left_alone() {
        assert!(plan(&[meta(1, 0, 2 * H)], &ranges()).is_empty());
        assert!(plan(&[meta(1, 0, 6 * H), meta(2, 6 * H, 8 * H)], &ranges()).is_empty());
    }

    #[test]
    fn overlapping_blocks_are_merged_first_whatever_their_levels() {
        let ms = vec![
            meta(1, 0, 2 * H),
            meta(2, 2 * H, 4 * H),
            meta(3, 3 * H, 5 * H),
            meta(4, 10 * H, 12 * H),
        ];
        assert_eq!(plan(&ms, &ranges()), vec![Ulid::from(2), Ulid::from(3)]);
    }

    #[test]
    fn six_hour_blocks_become_an_eighteen_hour_block() {
        let ms = vec![
            meta(1, 0, 6 * H),
            meta(2, 6 * H, 12 * H),
            meta(3, 12 * H, 18 * H),
            meta(4, 18 * H, 20 * H),
        ];
        assert_eq!(
            plan(&ms, &ranges()),
            vec![Ulid::from(1), Ulid::from(2), Ulid::from(3)]
        );
    }

    #[test]
    fn a_block_whose_compaction_failed_is_not_planned_again() {
        let mut ms = vec![
            meta(1, 0, 2 * H),
            meta(2, 2 * H, 4 * H),
            meta(3, 4 * H, 6 * H),
            meta(4, 6 * H, 8 * H),
        ];
        assert_eq!(plan(&ms, &ranges()).len(), 3);
        ms[1].compaction.failed = true;
        assert!(plan(&ms, &ranges()).is_empty());
    }

    #[test]
    fn a_large_block_with_many_tombstones_is_rewritten_alone() {
        let mut ms = vec![meta(1, 0, 18 * H), meta(2, 18 * H, 20 * H)];
        ms[0].stats.num_series = 100;
        ms[0].stats.num_tombstones = 10;
        assert_eq!(plan(&ms, &ranges()), vec![Ulid::from(1)]);
        ms[0].stats.num_tombstones = 5;
        assert!(plan(&ms, &ranges()).is_empty());
    }

    #[test]
    fn split_by_range_groups_by_aligned_window_and_skips_misfits() {
        let ms = [
            meta(1, 0, 10),
            meta(2, 10, 20),
            meta(3, 25, 40),
            meta(4, 50, 60),
            meta(5, 90, 100),
        ];
        let refs: Vec<&BlockMeta> = ms.iter().collect();
        let got: Vec<Vec<u128>> = split_by_range(&refs, 30)
            .iter()
            .map(|g| g.iter().map(|m| u128::from(m.ulid)).collect())
            .collect();
        // [25,40) crosses the 30 boundary and fits no window.
        assert_eq!(got, vec![vec![1, 2], vec![4], vec![5]]);
        let neg = [meta(1, -20, -10)];
        let refs: Vec<&BlockMeta> = neg.iter().collect();
        assert_eq!(split_by_range(&refs, 30).len(), 1);
    }

    #[test]
    fn compacted_meta_unions_ranges_sources_and_raises_the_level() {
        let mut a = meta(1, 0, 2 * H);
        let mut b = meta(2, 2 * H, 4 * H);
        a.compaction.sources = vec![Ulid::from(7), Ulid::from(1)];
        b.compaction.level = 2;
        let m = compacted_meta(Ulid::from(9), &[&a, &b]);
        assert_eq!((m.min_time, m.max_time), (0, 4 * H));
        assert_eq!(m.compaction.level, 3);
        assert_eq!(
            m.compaction.sources,
            vec![Ulid::from(1), Ulid::from(2), Ulid::from(7)]
        );
        assert_eq!(m.compaction.parents, vec![a.desc(), b.desc()]);
        assert_eq!(m.ulid, Ulid::from(9));
    }
}
