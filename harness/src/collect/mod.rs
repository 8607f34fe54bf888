//! Collectors: what a run measured, summarized the way latency people read
//! it (HdrHistogram percentiles, not a mean alone), with the intervals every
//! figure's uncertainty is stated by (`interval`), the host facts that make a
//! figure interpretable (`host`), and what else the machine did while it was
//! taken (`interference`).

pub mod host;
pub mod interference;
pub mod interval;
pub mod summary;

use hdrhistogram::Histogram;
use isobench_workloads::app::load::LoadReport;
use isobench_workloads::catalog::{self, MetricSpec, Unit};
use isobench_workloads::hist;
use isobench_workloads::protocol::RunResult;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use interference::Interference;
pub use summary::Summary;

#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error("the agent measured {0:?}, which is not in the catalogue")]
    UnknownMetric(String),
    #[error(transparent)]
    Hist(#[from] hist::HistError),
}

/// Everything measured for one environment × metric, possibly merged from
/// several agent runs (criterion calls the agent once per sample).
#[derive(Debug, Clone)]
pub struct Measurement {
    /// Environment name: "native", "container", "vm".
    pub env: String,
    /// Column label with caveats, e.g. "vm (emulated (TCG))".
    pub env_label: String,
    pub metric: &'static MetricSpec,
    /// Per-operation latency, ns.
    pub histogram: Histogram<u64>,
    /// Operations timed, over all runs.
    pub iterations: u64,
    /// Time the timed loops took, ns, over all runs.
    pub elapsed_ns: u64,
    /// Some run stopped at its time bound before its iteration count.
    pub truncated: bool,
    /// Bytes one operation moved (rates), as the agent reported it.
    pub bytes_per_op: u64,
    /// What else the machine did while this was measured; `None` when it
    /// was not recorded (folders from before it was).
    pub interference: Option<Interference>,
    /// The run that measured it (`runs[].run_id` of run.json); `None` in
    /// folders from before it was recorded, and until it is saved.
    pub run_id: Option<String>,
    /// When it was saved (RFC 3339, seconds, UTC).
    pub measured_utc: Option<String>,
    /// fs.* metrics: the storage path the files were on, in words ("volume
    /// (host directory bind-mounted), ext4"); `None` for other metrics.
    pub storage: Option<String>,
    /// app.* metrics: the load applied (closed or open loop, connections,
    /// rates, the open loop's uncorrected service times); `None` for other
    /// metrics.
    pub load: Option<LoadReport>,
}

impl Measurement {
    pub fn new(env: &str, env_label: &str, metric: &'static MetricSpec) -> Self {
        Measurement {
            env: env.to_string(),
            env_label: env_label.to_string(),
            metric,
            histogram: hist::new_ns(),
            iterations: 0,
            elapsed_ns: 0,
            truncated: false,
            bytes_per_op: metric.bytes_per_op,
            interference: None,
            run_id: None,
            measured_utc: None,
            storage: None,
            load: None,
        }
    }

    /// Adds one agent result.
    pub fn add(&mut self, r: &RunResult) -> Result<(), CollectError> {
        if r.metric != self.metric.name {
            return Err(CollectError::UnknownMetric(r.metric.clone()));
        }
        let h = hist::decode(&r.histogram)?;
        self.histogram.add(&h).expect("auto-resizing histograms always add");
        self.iterations += r.iterations;
        self.elapsed_ns += r.elapsed_ns;
        self.truncated |= r.truncated;
        if r.bytes_per_op > 0 {
            self.bytes_per_op = r.bytes_per_op;
        }
        if r.load.is_some() {
            self.load = r.load.clone();
        }
        Ok(())
    }

    /// The loop's time ÷ its operations, ns: the mean a loop timed by the
    /// host is compared with (the same interval, by this clock).
    pub fn loop_mean_ns(&self) -> f64 {
        self.elapsed_ns as f64 / self.iterations.max(1) as f64
    }

    /// A value in ns per operation, in the metric's display unit.
    pub fn display(&self, ns_per_op: f64) -> f64 {
        self.metric.unit.from_ns_per_op(ns_per_op, self.bytes_per_op)
    }

    /// Cost of this measurement relative to `base` at quantile `q` of time
    /// per operation: > 1 means slower than `base`, for latencies and rates
    /// alike (a rate at half the bandwidth costs 2×).
    pub fn cost_ratio(&self, base: &Measurement, q: f64) -> Option<f64> {
        let b = base.histogram.value_at_quantile(q) as f64;
        let v = self.histogram.value_at_quantile(q) as f64;
        // Rates are compared per byte: working sets may differ (mem.copy_bw in a small guest).
        let (v, b) = if self.unit().is_rate() && self.bytes_per_op > 0 && base.bytes_per_op > 0 {
            (v / self.bytes_per_op as f64, b / base.bytes_per_op as f64)
        } else {
            (v, b)
        };
        (b > 0.0 && v > 0.0).then(|| v / b)
    }

    /// The 95 % interval of [`cost_ratio`](Self::cost_ratio) at the median
    /// ([`interval::ratio_ci`] of the two medians' intervals), per byte for
    /// rates as the ratio is.
    pub fn cost_ratio_ci95(&self, base: &Measurement) -> Option<(f64, f64)> {
        let ci = |m: &Measurement| {
            let (lo, hi) = interval::median_ci(&m.histogram, interval::Z975);
            let per = if m.unit().is_rate() && self.bytes_per_op > 0 && base.bytes_per_op > 0 { m.bytes_per_op as f64 } else { 1.0 };
            (lo as f64 / per, hi as f64 / per)
        };
        interval::ratio_ci(ci(self), ci(base))
    }

    pub fn unit(&self) -> Unit {
        self.metric.unit
    }

    pub fn summary(&self) -> Summary {
        Summary::of(self)
    }

    /// File-name stem: `<env>.<metric>`.
    pub fn stem(&self) -> String {
        format!("{}.{}", self.env, self.metric.name)
    }

    pub fn record(&self) -> MeasurementRecord {
        MeasurementRecord {
            env: self.env.clone(),
            env_label: self.env_label.clone(),
            metric: self.metric.name.to_string(),
            unit: self.metric.unit,
            iterations: self.iterations,
            elapsed_ns: self.elapsed_ns,
            truncated: self.truncated,
            bytes_per_op: self.bytes_per_op,
            histogram: format!("histograms/{}.hdr", self.stem()),
            interference: self.interference.clone(),
            run_id: self.run_id.clone(),
            measured_utc: self.measured_utc.clone(),
            storage: self.storage.clone(),
            load: self.load.clone(),
        }
    }

    /// Rebuilds a measurement from its record and histogram.
    pub fn from_record(rec: &MeasurementRecord, histogram: Histogram<u64>) -> Result<Self, CollectError> {
        let metric = catalog::lookup(&rec.metric).ok_or_else(|| CollectError::UnknownMetric(rec.metric.clone()))?;
        Ok(Measurement {
            env: rec.env.clone(),
            env_label: rec.env_label.clone(),
            metric,
            histogram,
            iterations: rec.iterations,
            elapsed_ns: rec.elapsed_ns,
            truncated: rec.truncated,
            bytes_per_op: rec.bytes_per_op,
            interference: rec.interference.clone(),
            run_id: rec.run_id.clone(),
            measured_utc: rec.measured_utc.clone(),
            storage: rec.storage.clone(),
            load: rec.load.clone(),
        })
    }
}

/// How a measurement is listed in `measurements.json` (its histogram lives in
/// `histograms/`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MeasurementRecord {
    pub env: String,
    pub env_label: String,
    pub metric: String,
    pub unit: Unit,
    pub iterations: u64,
    pub elapsed_ns: u64,
    pub truncated: bool,
    /// Bytes one operation moved (rates; 0 for latencies).
    #[serde(default)]
    pub bytes_per_op: u64,
    /// Relative path of the hdrhistogram V2 file.
    pub histogram: String,
    /// What else the machine did while this was measured (absent in folders
    /// written before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interference: Option<Interference>,
    /// The run that measured it: one of run.json's `runs[].run_id` (absent
    /// in folders from before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// When it was saved (RFC 3339, seconds, UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measured_utc: Option<String>,
    /// fs.* metrics: the storage path the files were on, in words (absent
    /// for other metrics and in folders from before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<String>,
    /// app.* metrics: the load applied (absent for other metrics).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load: Option<LoadReport>,
}
