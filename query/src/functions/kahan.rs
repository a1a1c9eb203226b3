//! Compensated (Kahan–Neumaier) summation, Prometheus' `util/kahansum`.
//!
//! Owns the single increment step every compensated sum in PromQL is built from (`sum`, `avg`,
//! `sum_over_time`, `avg_over_time`, `stddev_over_time`, the linear regression), and a small
//! accumulator around it. Does not own the final combination of sum and compensation: the callers
//! differ there on purpose (e.g. `sum_over_time` returns an infinite sum unchanged).

/// One Kahan–Neumaier step: adds `inc` to `sum` whose running compensation is `c`; returns the new
/// sum and compensation. When the sum becomes infinite the compensation is reset to zero, so that
/// `sum + c` stays infinite instead of turning into NaN.
pub fn kahan_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if t.is_infinite() {
        0.0
    } else if sum.abs() >= inc.abs() {
        // Neumaier's improvement: compensate with whichever operand lost low-order bits.
        c + ((sum - t) + inc)
    } else {
        c + ((inc - t) + sum)
    };
    (t, c)
}

/// A running compensated sum.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct KahanSum {
    pub sum: f64,
    pub c: f64,
}

impl KahanSum {
    pub fn new() -> KahanSum {
        KahanSum::default()
    }

    pub fn add(&mut self, v: f64) {
        (self.sum, self.c) = kahan_inc(v, self.sum, self.c);
    }

    /// `sum + c`, as the `sum` aggregation reports it.
    pub fn value(&self) -> f64 {
        self.sum + self.c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compensation_recovers_small_terms_lost_next_to_huge_ones() {
        let mut k = KahanSum::new();
        for v in [1.0, 1e100, 1.0, -1e100] {
            k.add(v);
        }
        // Naively 1 + 1e100 + 1 - 1e100 = 0; the compensation keeps both ones.
        assert_eq!(k.value(), 2.0);
    }

    #[test]
    fn infinite_sum_resets_compensation() {
        assert_eq!(kahan_inc(f64::MAX, f64::MAX, 5.0), (f64::INFINITY, 0.0));
    }
}
