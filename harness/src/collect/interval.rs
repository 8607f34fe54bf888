//! Confidence intervals, written once for every figure that carries one: the
//! median of a measurement (from its HdrHistogram), the median of exact
//! samples (`isobench startup`'s rows), and a cost ratio of two medians
//! (summary.csv's overhead, `isobench compare`'s change).
//!
//! Method: distribution-free, from order statistics. The median's 95 %
//! interval spans the values at ranks n/2 ∓ 1.96·√n/2: the number of samples
//! below the true median is Binomial(n, ½), whose normal approximation gives
//! those ranks (J.-Y. Le Boudec, *Performance Evaluation of Computer and
//! Communication Systems*, 2010, Thm. 2.1). A ratio of two medians gets the
//! interval spanned by the two medians' intervals (lowest over highest,
//! highest over lowest), each taken at 97.5 % so that both hold at once with
//! at least 95 % (Bonferroni): conservative, and it needs no assumption about
//! the shape of either distribution.

use hdrhistogram::Histogram;

/// z of a two-sided 95 % interval.
pub const Z95: f64 = 1.96;

/// z of a two-sided 97.5 % interval: two of them hold together with at least
/// 95 % (Bonferroni), so a ratio of two medians uses it for each.
pub const Z975: f64 = 2.2414;

/// The interval of the median of a histogram's values at `z`: the values at
/// quantiles ½ ∓ z·√n/2/n (clamped to 0..=1), in the histogram's unit. With
/// fewer than ~10 values it is close to the whole range.
pub fn median_ci(h: &Histogram<u64>, z: f64) -> (u64, u64) {
    let n = h.len().max(1) as f64;
    let d = z * n.sqrt() / 2.0 / n;
    (h.value_at_quantile((0.5 - d).max(0.0)), h.value_at_quantile((0.5 + d).min(1.0)))
}

/// The interval of the median of exact values `sorted` (ascending) at `z`:
/// the values at ranks ⌊n/2 − z·√n/2⌋ and ⌈n/2 + z·√n/2⌉ (1-based, clamped
/// to 1..=n). `(0, 0)` when there are none.
pub fn median_ci_sorted(sorted: &[u64], z: f64) -> (u64, u64) {
    if sorted.is_empty() {
        return (0, 0);
    }
    let n = sorted.len() as f64;
    let d = z * n.sqrt() / 2.0;
    let at = |rank: f64| sorted[(rank.clamp(1.0, n) as usize) - 1];
    (at((n / 2.0 - d).floor()), at((n / 2.0 + d).ceil()))
}

/// The 95 % interval of the ratio `value ÷ base` of two medians whose
/// intervals at [`Z975`] are `value` and `base` (any unit, the same for
/// both): (lowest ÷ highest, highest ÷ lowest). `None` when an end is not
/// positive.
pub fn ratio_ci(value: (f64, f64), base: (f64, f64)) -> Option<(f64, f64)> {
    (value.0 > 0.0 && base.0 > 0.0).then(|| (value.0 / base.1, value.1 / base.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_of_the_median_interval() {
        let v: Vec<u64> = (1..=200).collect();
        // 100 ∓ 13.86: ranks 86 and 114
        assert_eq!(median_ci_sorted(&v, Z95), (86, 114));
        assert_eq!(median_ci_sorted(&[5], Z95), (5, 5));
        assert_eq!(median_ci_sorted(&[], Z95), (0, 0));
        let mut h = isobench_workloads::hist::new_ns();
        for x in &v {
            h.record(*x * 1000).unwrap();
        }
        let (lo, hi) = median_ci(&h, Z95);
        assert!((85_000..=87_100).contains(&lo) && (113_000..=115_100).contains(&hi), "{lo} {hi}");
        let (wlo, whi) = median_ci(&h, Z975);
        assert!(wlo <= lo && whi >= hi, "97.5 % is wider");
    }

    #[test]
    fn a_ratio_spans_the_two_intervals() {
        assert_eq!(ratio_ci((180.0, 220.0), (90.0, 110.0)), Some((180.0 / 110.0, 220.0 / 90.0)));
        assert_eq!(ratio_ci((0.0, 1.0), (1.0, 1.0)), None);
        let (lo, hi) = ratio_ci((99.0, 101.0), (99.0, 101.0)).unwrap();
        assert!(lo < 1.0 && hi > 1.0);
    }
}
