//! Percentiles of per-frame latency.
//!
//! The nearest-rank method: the p-th percentile of `n` sorted samples is the sample at rank
//! `ceil(p / 100 * n)` (1-based), so every percentile is a sample that really occurred, and the
//! result is exact on small inputs (the p50 of `[1, 2, 3, 4]` is 2; the p99 of 100 samples is
//! the 99th). The rank is computed in integers (per-mille), never in floating point.

use crate::clock::VirtualTime;

/// The `permille`/1000 quantile of `sorted` (ascending) by nearest rank; `None` when empty.
/// `permille` is clamped to 1..=1000 (p0 is the minimum).
///
/// ```
/// use scenario::report::percentile;
/// let s = [10, 20, 30, 40];
/// assert_eq!(percentile(&s, 500), Some(20));
/// assert_eq!(percentile(&s, 990), Some(40));
/// assert_eq!(percentile(&s, 250), Some(10));
/// assert_eq!(percentile::<u64>(&[], 500), None);
/// ```
pub fn percentile<T: Copy>(sorted: &[T], permille: u32) -> Option<T> {
    if sorted.is_empty() {
        return None;
    }
    let n = sorted.len() as u64;
    let p = u64::from(permille.clamp(1, 1000));
    let rank = (p * n).div_ceil(1000).max(1);
    sorted.get((rank - 1) as usize).copied()
}

/// p50, p99 and max of a set of latencies.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LatencyStats {
    /// Median (nearest rank).
    pub p50: VirtualTime,
    /// 99th percentile (nearest rank).
    pub p99: VirtualTime,
    /// Largest.
    pub max: VirtualTime,
    /// Number of samples.
    pub count: usize,
}

impl LatencyStats {
    /// The statistics of `samples` (any order); all zero when empty.
    ///
    /// ```
    /// use scenario::clock::VirtualTime;
    /// use scenario::report::LatencyStats;
    /// let s: Vec<_> = (1..=100).map(VirtualTime::from_us).collect();
    /// let st = LatencyStats::of(&s);
    /// assert_eq!((st.p50, st.p99, st.max), (VirtualTime::from_us(50), VirtualTime::from_us(99), VirtualTime::from_us(100)));
    /// ```
    pub fn of(samples: &[VirtualTime]) -> LatencyStats {
        let mut v = samples.to_vec();
        v.sort_unstable();
        LatencyStats {
            p50: percentile(&v, 500).unwrap_or_default(),
            p99: percentile(&v, 990).unwrap_or_default(),
            max: v.last().copied().unwrap_or_default(),
            count: v.len(),
        }
    }
}
