//! Percentiles of per-frame latency, exact on small inputs and bounded in memory on any.
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

/// Samples kept exactly before a [`LatencySummary`] answers from its histogram alone.
pub const EXACT_SAMPLES: usize = 4096;

/// Sub-buckets per power of two in a [`LatencySummary`]'s histogram (`2^SUB_BITS`): a bucket
/// spans at most `2^-SUB_BITS` of its lower bound.
const SUB_BITS: u32 = 10;

/// The log-linear bucket of `v`: values below `2^SUB_BITS` each have their own bucket; above,
/// each power of two is cut into `2^SUB_BITS` equal buckets. Monotonic in `v`.
fn bucket_of(v: u64) -> u32 {
    if v < (1 << SUB_BITS) {
        return v as u32;
    }
    let shift = 63 - v.leading_zeros() - SUB_BITS;
    ((shift + 1) << SUB_BITS) + ((v >> shift) as u32 - (1 << SUB_BITS))
}

/// The smallest value of bucket `b` ([`bucket_of`]'s inverse on bucket bounds).
fn bucket_floor(b: u32) -> u64 {
    if b < (1 << SUB_BITS) {
        return u64::from(b);
    }
    let shift = (b >> SUB_BITS) - 1;
    let mantissa = u64::from(b & ((1 << SUB_BITS) - 1)) + (1 << SUB_BITS);
    mantissa << shift
}

/// Latencies summarised in bounded memory, however many frames a run has.
///
/// Up to [`EXACT_SAMPLES`] samples the percentiles are exact (nearest rank over every sample,
/// as [`LatencyStats::of`]). Beyond, they come from a log-linear histogram: every value below
/// 1024 ns has its own bucket, and each power of two above is cut into 1024 buckets, so a
/// percentile is the lower bound of the bucket holding the nearest-rank sample — never above
/// the exact value, and at most 2^-10 (0.098 %) of it below. The maximum and the count are
/// always exact. Memory: at most [`EXACT_SAMPLES`] values plus one counter per distinct bucket
/// (at most 55,296 for 64-bit values; a few hundred in practice). Deterministic: the same
/// samples in any order give the same answer.
///
/// ```
/// use scenario::clock::VirtualTime;
/// use scenario::report::LatencySummary;
/// let mut s = LatencySummary::default();
/// for us in 1..=100 {
///     s.add(VirtualTime::from_us(us));
/// }
/// let st = s.stats();
/// assert_eq!((st.p50, st.p99, st.max), (VirtualTime::from_us(50), VirtualTime::from_us(99), VirtualTime::from_us(100)));
/// ```
#[derive(Clone, Debug, Default)]
pub struct LatencySummary {
    exact: Vec<u64>,
    hist: std::collections::BTreeMap<u32, u64>,
    count: u64,
    max: u64,
}

impl LatencySummary {
    /// Records one latency.
    pub fn add(&mut self, t: VirtualTime) {
        let v = t.as_ns();
        if self.count < EXACT_SAMPLES as u64 {
            self.exact.push(v);
        } else if !self.exact.is_empty() {
            self.exact = Vec::new();
        }
        *self.hist.entry(bucket_of(v)).or_default() += 1;
        self.count += 1;
        self.max = self.max.max(v);
    }

    /// Samples recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Whether the percentiles are exact (at most [`EXACT_SAMPLES`] samples).
    pub fn is_exact(&self) -> bool {
        self.count <= EXACT_SAMPLES as u64
    }

    /// The `permille`/1000 quantile by nearest rank (exact, or from the histogram: type doc).
    fn quantile(&self, permille: u32) -> u64 {
        if self.count == 0 {
            return 0;
        }
        if self.is_exact() {
            let mut v = self.exact.clone();
            v.sort_unstable();
            return percentile(&v, permille).unwrap_or(0);
        }
        let p = u64::from(permille.clamp(1, 1000));
        let rank = (p * self.count).div_ceil(1000).max(1);
        let mut seen = 0;
        for (&b, &n) in &self.hist {
            seen += n;
            if seen >= rank {
                return bucket_floor(b).min(self.max);
            }
        }
        self.max
    }

    /// p50, p99, max and count.
    pub fn stats(&self) -> LatencyStats {
        LatencyStats {
            p50: VirtualTime::from_ns(self.quantile(500)),
            p99: VirtualTime::from_ns(self.quantile(990)),
            max: VirtualTime::from_ns(self.max),
            count: self.count as usize,
        }
    }
}

/// Entries a [`FrameSample`] keeps at most.
pub const FRAME_SAMPLE_CAP: usize = 4096;

/// A bounded, deterministic sample of per-frame values (the report's `latency_us.per_frame`).
///
/// Every value is kept while there are at most [`FRAME_SAMPLE_CAP`]; when one more arrives,
/// every other kept entry goes and the stride doubles: the sample is then every `every`-th
/// value in arrival order (`every` a power of two), between half the cap and the cap entries.
/// The same values in the same order give the same sample.
///
/// ```
/// use scenario::report::{FrameSample, FRAME_SAMPLE_CAP};
/// let mut s = FrameSample::default();
/// for f in 0..(FRAME_SAMPLE_CAP as u64 * 3) {
///     s.add(f, f * 10);
/// }
/// assert_eq!(s.every(), 4);
/// assert!(s.entries().len() <= FRAME_SAMPLE_CAP);
/// assert!(s.entries().iter().all(|&(f, v)| f % 4 == 0 && v == f * 10));
/// ```
#[derive(Clone, Debug)]
pub struct FrameSample {
    kept: Vec<(u64, u64)>,
    every: u64,
    seen: u64,
}

impl Default for FrameSample {
    fn default() -> Self {
        FrameSample {
            kept: Vec::new(),
            every: 1,
            seen: 0,
        }
    }
}

impl FrameSample {
    /// Offers the value of `frame` (kept if its arrival index is on the stride).
    pub fn add(&mut self, frame: u64, value: u64) {
        let i = self.seen;
        self.seen += 1;
        if !i.is_multiple_of(self.every) {
            return;
        }
        if self.kept.len() == FRAME_SAMPLE_CAP {
            let mut k = 0;
            self.kept.retain(|_| {
                k += 1;
                k % 2 == 1
            });
            self.every *= 2;
            if !i.is_multiple_of(self.every) {
                return;
            }
        }
        self.kept.push((frame, value));
    }

    /// The kept `(frame, value)` pairs, in arrival order.
    pub fn entries(&self) -> &[(u64, u64)] {
        &self.kept
    }

    /// The stride: 1 while every value is kept.
    pub fn every(&self) -> u64 {
        self.every
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_tight() {
        let mut last = 0;
        for v in (0..5000u64).chain((1..60).map(|e| (1u64 << e) + 12345)) {
            let b = bucket_of(v);
            assert!(b >= last, "bucket of {v} went back");
            last = b;
            let lo = bucket_floor(b);
            assert!(lo <= v, "{v}: floor {lo}");
            // The bucket spans at most 2^-10 of its floor.
            assert!((v - lo) as f64 <= lo as f64 / 1024.0, "{v}: floor {lo}");
            assert_eq!(bucket_of(lo), b);
        }
        assert_eq!(bucket_floor(bucket_of(u64::MAX)), 2047 << 53);
    }

    #[test]
    fn beyond_the_exact_samples_percentiles_stay_within_the_stated_error() {
        // 50,000 latencies from 1 ms to 50 ms, shuffled deterministically.
        let n = 50_000u64;
        let vals: Vec<u64> = (0..n).map(|i| 1_000_000 + (i * 7919 % n) * 980).collect();
        let mut s = LatencySummary::default();
        for &v in &vals {
            s.add(VirtualTime::from_ns(v));
        }
        assert!(!s.is_exact());
        let mut sorted = vals.clone();
        sorted.sort_unstable();
        let st = s.stats();
        for (got, permille) in [(st.p50, 500), (st.p99, 990)] {
            let want = percentile(&sorted, permille).expect("samples");
            let got = got.as_ns();
            assert!(got <= want, "{got} above {want}");
            assert!(
                (want - got) as f64 <= want as f64 / 1024.0,
                "{got} too far below {want}"
            );
        }
        assert_eq!(
            st.max.as_ns(),
            *sorted.last().expect("samples"),
            "max is exact"
        );
        assert_eq!(st.count, n as usize);
        assert!(s.exact.is_empty(), "the exact samples are given up");
        // 1 ms to 50 ms spans under 6 powers of two: at most 6 * 1024 buckets.
        assert!(s.hist.len() <= 6 * 1024, "{} buckets", s.hist.len());
    }

    #[test]
    fn up_to_the_exact_samples_percentiles_equal_nearest_rank() {
        let mut s = LatencySummary::default();
        let vals: Vec<u64> = (0..EXACT_SAMPLES as u64)
            .map(|i| (i * 31) % 977 + 5)
            .collect();
        for &v in &vals {
            s.add(VirtualTime::from_ns(v * 1_000_003));
        }
        assert!(s.is_exact());
        let ns: Vec<VirtualTime> = vals
            .iter()
            .map(|&v| VirtualTime::from_ns(v * 1_000_003))
            .collect();
        assert_eq!(s.stats(), LatencyStats::of(&ns));
    }

    #[test]
    fn a_frame_sample_stays_bounded_and_keeps_the_stride() {
        let mut s = FrameSample::default();
        for f in 0..FRAME_SAMPLE_CAP as u64 {
            s.add(f, f);
        }
        assert_eq!((s.every(), s.entries().len()), (1, FRAME_SAMPLE_CAP));
        s.add(FRAME_SAMPLE_CAP as u64, 0);
        assert_eq!(s.every(), 2);
        assert_eq!(s.entries().len(), FRAME_SAMPLE_CAP / 2 + 1);
        for f in FRAME_SAMPLE_CAP as u64 + 1..400_000 {
            s.add(f, f);
        }
        assert!(s.entries().len() <= FRAME_SAMPLE_CAP);
        assert!(s.entries().len() >= FRAME_SAMPLE_CAP / 2);
        let e = s.every();
        assert!(s.entries().iter().all(|&(f, _)| f % e == 0), "stride {e}");
    }
}
