//! Summary statistics of one measurement, in the metric's display unit:
//! HdrHistogram percentiles (p50, p90, p99, p99.9), min, max, mean, stdev.
//! Percentiles are read from the histogram (3 significant digits), so they
//! are exact to 0.1 %.

use serde::Serialize;

use super::Measurement;

/// One row of summary.csv.
#[derive(Debug, Clone, PartialEq, Serialize)]
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
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
    pub stdev: f64,
}

impl Summary {
    pub fn of(m: &Measurement) -> Summary {
        let h = &m.histogram;
        let u = m.unit();
        let q = |p: f64| u.from_ns(h.value_at_quantile(p) as f64);
        Summary {
            env: m.env.clone(),
            env_label: m.env_label.clone(),
            metric: m.metric.name.to_string(),
            unit: u.as_str().to_string(),
            n: h.len(),
            min: u.from_ns(h.min() as f64),
            p50: q(0.50),
            p90: q(0.90),
            p99: q(0.99),
            p999: q(0.999),
            max: u.from_ns(h.max() as f64),
            mean: u.from_ns(h.mean()),
            stdev: u.from_ns(h.stdev()),
        }
    }

    /// Value at an arbitrary quantile, display unit.
    pub fn quantile(m: &Measurement, q: f64) -> f64 {
        m.unit().from_ns(m.histogram.value_at_quantile(q) as f64)
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
}
