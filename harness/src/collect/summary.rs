//! Summary statistics of one measurement, in the metric's display unit:
//! HdrHistogram percentiles (p50, p90, p99, p99.9), min, max, mean, stdev.
//! Percentiles are read from the histogram (3 significant digits), so they
//! are exact to 0.1 %. A row of summary.csv and summary.json also carries
//! the overhead against its baseline with the overhead's 95 % interval
//! ([`Summary::against`]) and the interference it was measured under.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Measurement;

/// One row of summary.csv and summary.json.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Summary {
    pub env: String,
    pub env_label: String,
    pub metric: String,
    pub unit: String,
    /// Histogram samples (one per sample of `ops_per_sample` operations).
    pub n: u64,
    pub min: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    /// p99.9 (`p99_9` in summary.csv and summary.json).
    #[serde(rename = "p99_9")]
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
    pub stdev: f64,
    /// The column the overhead is taken against (`native`, or `native@host`
    /// in a merged report); `null` for a baseline itself or without one.
    #[serde(default)]
    pub baseline: Option<String>,
    /// Cost ratio at p50 against the baseline: time per operation ÷ the
    /// baseline's (per byte for rates), so > 1 is slower.
    #[serde(default)]
    pub overhead: Option<f64>,
    /// The overhead's 95 % confidence interval (distribution-free: see
    /// `collect::interval`).
    #[serde(default)]
    pub overhead_ci95_low: Option<f64>,
    #[serde(default)]
    pub overhead_ci95_high: Option<f64>,
    /// CPUs the machine was busy outside the run while this was measured;
    /// `null` where it was not recorded.
    #[serde(default)]
    pub outside_cpus: Option<f64>,
    /// CPUs the hypervisor stole meanwhile.
    #[serde(default)]
    pub steal_cpus: Option<f64>,
    /// Taken under interference (see `collect::interference`): busy outside
    /// the run, stolen, or beside another isobench run.
    #[serde(default)]
    pub interference: Option<bool>,
}

impl Summary {
    /// Summarizes `m`. For a rate (GiB/s, Gbit/s) each percentile is that of
    /// time per operation converted to a rate, so p90/p99 are the *slow*
    /// tail (the bandwidth 90 %/99 % of samples exceeded), `min`/`max` are
    /// the slowest/fastest sample, and `mean` is bytes moved ÷ time taken.
    pub fn of(m: &Measurement) -> Summary {
        let h = &m.histogram;
        let q = |p: f64| m.display(h.value_at_quantile(p) as f64);
        let rate = m.unit().is_rate();
        let (min, max) =
            if rate { (m.display(h.max() as f64), m.display(h.min() as f64)) } else { (m.display(h.min() as f64), m.display(h.max() as f64)) };
        let (mean, stdev) = if rate {
            // Per-sample rates, weighted by how often each time was seen.
            let n = h.len().max(1) as f64;
            let rates: Vec<(f64, f64)> = h.iter_recorded().map(|v| (m.display(v.value_iterated_to() as f64), v.count_at_value() as f64)).collect();
            let mean_rate = rates.iter().map(|(r, c)| r * c).sum::<f64>() / n;
            let var = rates.iter().map(|(r, c)| c * (r - mean_rate).powi(2)).sum::<f64>() / n;
            (m.display(h.mean()), var.sqrt())
        } else {
            (m.display(h.mean()), m.unit().from_ns_per_op(h.stdev(), m.bytes_per_op))
        };
        Summary {
            env: m.env.clone(),
            env_label: m.env_label.clone(),
            metric: m.metric.name.to_string(),
            unit: m.unit().as_str().to_string(),
            n: h.len(),
            min,
            p50: q(0.50),
            p90: q(0.90),
            p99: q(0.99),
            p999: q(0.999),
            max,
            mean,
            stdev,
            baseline: None,
            overhead: None,
            overhead_ci95_low: None,
            overhead_ci95_high: None,
            outside_cpus: m.interference.as_ref().map(|i| i.outside_cpus()),
            steal_cpus: m.interference.as_ref().map(|i| i.steal_cpus()),
            interference: m.interference.as_ref().map(|i| i.flagged()),
        }
    }

    /// The same row with its overhead against `base` (`m`'s baseline
    /// measurement, whose column name is `base.env`).
    pub fn against(mut self, m: &Measurement, base: &Measurement) -> Summary {
        self.baseline = Some(base.env.clone());
        self.overhead = m.cost_ratio(base, 0.5);
        let ci = m.cost_ratio_ci95(base);
        self.overhead_ci95_low = ci.map(|c| c.0);
        self.overhead_ci95_high = ci.map(|c| c.1);
        self
    }

    /// Value at an arbitrary quantile of time per operation, display unit.
    pub fn quantile(m: &Measurement, q: f64) -> f64 {
        m.display(m.histogram.value_at_quantile(q) as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use isobench_workloads::catalog;

    #[test]
    fn percentiles_in_display_units() {
        let spec = catalog::lookup("ipc.pipe_rtt").unwrap(); // µs
        let mut m = Measurement::new("native", "native", spec);
        for v in 1..=1000u64 {
            m.histogram.record(v * 1000).unwrap(); // 1..1000 µs in ns
        }
        let s = m.summary();
        assert_eq!(s.unit, "us");
        assert_eq!(s.n, 1000);
        assert!((s.min - 1.0).abs() < 0.01);
        assert!((s.p50 - 500.0).abs() / 500.0 < 0.002, "{}", s.p50);
        assert!((s.p99 - 990.0).abs() / 990.0 < 0.002, "{}", s.p99);
        assert!((s.mean - 500.5).abs() / 500.5 < 0.002, "{}", s.mean);
        assert!(s.max >= 999.0);
    }

    #[test]
    fn rates_are_bytes_over_time_with_the_slow_tail_at_p99() {
        let spec = catalog::lookup("ipc.pipe_bw").unwrap(); // GiB/s, 64 KiB per op
        let mut m = Measurement::new("native", "native", spec);
        assert_eq!(m.bytes_per_op, 65536);
        // 900 samples at 64 KiB per 10 µs, 100 at 64 KiB per 100 µs
        m.histogram.record_n(10_000, 900).unwrap();
        m.histogram.record_n(100_000, 100).unwrap();
        let s = m.summary();
        assert_eq!(s.unit, "GiB/s");
        let fast = 65536.0 / 10_000.0 * 1e9 / (1u64 << 30) as f64; // 6.10 GiB/s
        let slow = fast / 10.0;
        assert!((s.p50 - fast).abs() / fast < 0.002, "{}", s.p50);
        assert!((s.p99 - slow).abs() / slow < 0.002, "p99 is the slow tail: {}", s.p99);
        assert!(s.min < s.p50 && s.max >= s.p50, "{s:?}");
        // mean = bytes / time: 1000 × 64 KiB over 900×10 µs + 100×100 µs = 19 ms
        let mean = 1000.0 * 65536.0 / 19e-3 / (1u64 << 30) as f64;
        assert!((s.mean - mean).abs() / mean < 0.002, "{} vs {mean}", s.mean);
        // cost ratio: half the bandwidth costs 2×
        let mut slow_m = Measurement::new("vm", "vm", spec);
        slow_m.histogram.record_n(20_000, 1000).unwrap();
        let r = slow_m.cost_ratio(&m, 0.5).unwrap();
        assert!((r - 2.0).abs() < 0.01, "{r}");
        let row = slow_m.summary().against(&slow_m, &m);
        assert_eq!(row.baseline.as_deref(), Some("native"));
        let (lo, hi) = (row.overhead_ci95_low.unwrap(), row.overhead_ci95_high.unwrap());
        assert!(lo <= r && r <= hi && hi - lo < 0.5, "{lo} {r} {hi}");
    }
}
