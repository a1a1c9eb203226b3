//! Reading storage: selecting the series of a vector or matrix selector and decoding their samples.
//!
//! Owns the one place the evaluator touches the `Db`. Each selector evaluation selects its series
//! once over exactly the time range all its steps need (`[start - offset - lookback/range, end -
//! offset]`, tightened to one instant under `@`) and decodes each series' chunks once into a `Vec`
//! when the evaluator gets to that series; the per-step work then walks that vector with
//! forward-moving cursors ([`InstantCursor`], [`WindowCursor`]) and never decodes a chunk twice. It does not own what a step does with the values
//! (the evaluator), nor the time arithmetic of offsets and `@` (also the evaluator, which passes the
//! reference times in).

use ember::{Db, Matcher, Series};

use super::QueryError;
use super::limits::QueryCtx;
use crate::value::is_stale_nan;

/// Selects the series matching `matchers` that have samples in `[mint, maxt]` (both inclusive),
/// sorted by labels. Nothing is decoded yet: callers decode one series at a time ([`decode`]), so a
/// query holds one series' raw samples at once, not all of them.
pub(crate) fn select(db: &Db, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<Series> {
    if mint > maxt {
        return Vec::new();
    }
    db.querier(mint, maxt).select(matchers)
}

/// Decodes a selected series' samples in the selected range, oldest first. With `drop_stale`,
/// staleness markers are removed while decoding: a range vector never contains them, so windows can
/// then be plain sub-slices. Instant selection keeps them, because a marker is what ends a series
/// before its lookback runs out.
pub(crate) fn decode(
    ctx: &QueryCtx,
    s: &Series,
    drop_stale: bool,
) -> Result<Vec<(i64, f64)>, QueryError> {
    ctx.check()?;
    decode_samples(s, drop_stale)
}

/// [`decode`] without the deadline check, for worker threads (which check it themselves).
pub(crate) fn decode_samples(s: &Series, drop_stale: bool) -> Result<Vec<(i64, f64)>, QueryError> {
    let mut samples = Vec::new();
    decode_into(s, drop_stale, &mut samples)?;
    Ok(samples)
}

/// [`decode_samples`] into a reused buffer.
pub(crate) fn decode_into(
    s: &Series,
    drop_stale: bool,
    out: &mut Vec<(i64, f64)>,
) -> Result<(), QueryError> {
    s.samples_into(out)
        .map_err(|e| QueryError::Storage(e.to_string()))?;
    if drop_stale {
        out.retain(|&(_, v)| !is_stale_nan(v));
    }
    Ok(())
}

/// Instant-vector lookup over one series for non-decreasing reference times: the newest sample at or
/// before the reference time, if it is younger than the lookback delta and not a staleness marker.
#[derive(Default)]
pub(crate) struct InstantCursor {
    /// Index of the first sample after the last reference time.
    next: usize,
    last_ref: Option<i64>,
}

impl InstantCursor {
    pub(crate) fn at(
        &mut self,
        samples: &[(i64, f64)],
        ref_t: i64,
        lookback: i64,
    ) -> Option<(i64, f64)> {
        match self.last_ref {
            // Steps only move forward, except across an `@` reset; fall back to a search then.
            Some(prev) if ref_t < prev => self.next = samples.partition_point(|&(t, _)| t <= ref_t),
            _ => {
                while self.next < samples.len() && samples[self.next].0 <= ref_t {
                    self.next += 1;
                }
            }
        }
        self.last_ref = Some(ref_t);
        let (t, v) = *samples.get(self.next.checked_sub(1)?)?;
        // The window is left-open: a sample exactly one lookback delta old is out.
        if t <= ref_t - lookback || is_stale_nan(v) {
            return None;
        }
        Some((t, v))
    }
}

/// Range-vector windows `(maxt - range, maxt]` over one series for non-decreasing `maxt`. The series
/// must hold no staleness markers (see [`load`]).
#[derive(Default)]
pub(crate) struct WindowCursor {
    lo: usize,
    hi: usize,
}

impl WindowCursor {
    pub(crate) fn window<'a>(
        &mut self,
        samples: &'a [(i64, f64)],
        mint_exclusive: i64,
        maxt: i64,
    ) -> &'a [(i64, f64)] {
        if self.hi > 0 && samples[self.hi - 1].0 > maxt {
            // The window moved backwards; start over.
            self.lo = 0;
            self.hi = 0;
        }
        if self.lo > 0 && samples[self.lo - 1].0 > mint_exclusive {
            self.lo = samples.partition_point(|&(t, _)| t <= mint_exclusive);
        }
        while self.lo < samples.len() && samples[self.lo].0 <= mint_exclusive {
            self.lo += 1;
        }
        self.hi = self.hi.max(self.lo);
        while self.hi < samples.len() && samples[self.hi].0 <= maxt {
            self.hi += 1;
        }
        &samples[self.lo..self.hi]
    }

    /// The bounds `lo..hi` of the last window, as indices into the series' samples.
    pub(crate) fn bounds(&self) -> (usize, usize) {
        (self.lo, self.hi)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STALE: f64 = f64::from_bits(crate::value::STALE_NAN_BITS);

    #[test]
    fn instant_cursor_respects_lookback_and_staleness() {
        let s = [(0, 1.0), (10, 2.0), (20, STALE), (30, 4.0)];
        let mut c = InstantCursor::default();
        assert_eq!(c.at(&s, -1, 5), None);
        assert_eq!(c.at(&s, 0, 5), Some((0, 1.0)));
        assert_eq!(c.at(&s, 4, 5), Some((0, 1.0)));
        // Exactly one lookback old: out.
        assert_eq!(c.at(&s, 5, 5), None);
        assert_eq!(c.at(&s, 12, 5), Some((10, 2.0)));
        assert_eq!(c.at(&s, 21, 50), None);
        assert_eq!(c.at(&s, 31, 50), Some((30, 4.0)));
        // Backwards jump.
        assert_eq!(c.at(&s, 11, 50), Some((10, 2.0)));
    }

    #[test]
    fn window_cursor_is_left_open() {
        let s = [(0, 1.0), (10, 2.0), (20, 3.0), (30, 4.0)];
        let mut c = WindowCursor::default();
        assert_eq!(c.window(&s, -10, 0), &s[0..1]);
        assert_eq!(c.window(&s, 0, 20), &s[1..3]);
        assert_eq!(c.window(&s, 10, 30), &s[2..4]);
        assert!(c.window(&s, 30, 40).is_empty());
        assert_eq!(c.window(&s, -1, 10), &s[0..2]);
    }
}
