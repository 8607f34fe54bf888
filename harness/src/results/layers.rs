//! What `isobench layers` measured (`layers.json`, [`LayersRun`]): the
//! container started with no layer (`bare`), with each layer of `--profile
//! docker` alone, and with all of them (`docker`), interleaved round by
//! round, and each metric's per-round median under each. The report turns
//! the rounds into each layer's cost as a ratio to `bare` with its interval
//! ([`LayersRun::ratio`]).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{ResultsError, RunDir};
use crate::collect::interference::Interference;
use crate::collect::interval::{median_ci_sorted, Z95};

/// The file in a results folder.
pub const LAYERS_FILE: &str = "layers.json";

/// One `isobench layers` run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LayersRun {
    /// Rounds kept: each ran every variant once, in a new random order.
    pub rounds: usize,
    /// Starts timed per variant per round for `env.start`.
    pub starts_per_round: u64,
    /// The variants, `bare` first and `docker` last.
    pub variants: Vec<LayerVariant>,
    /// Per metric: the per-round medians under each variant.
    pub metrics: Vec<LayerMetric>,
    /// Variants or metrics that could not run here: one line each.
    #[serde(default)]
    pub skipped: Vec<String>,
    /// The interference the rounds ran under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interference: Option<Interference>,
}

/// One container configuration of the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LayerVariant {
    /// `bare`, `hardening`, `seccomp`, `overlay`, `bridge` or `docker`.
    pub name: String,
    /// Its column label, with the profile in it (`container (docker)`).
    pub label: String,
    /// The layers it adds to the namespaces.
    pub layers: Vec<String>,
    /// The settings of each layer as run.json records a profile
    /// (`metadata.profile`: capabilities, paths, the seccomp filter, the
    /// overlay's lowerdir and upper) and, once measured, the boundary path.
    pub settings: Value,
}

/// One metric's per-round medians.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LayerMetric {
    pub metric: String,
    /// The unit of `p50` (the catalogue's display unit).
    pub unit: String,
    /// Per variant name: each round's median in `unit`.
    pub p50: BTreeMap<String, Vec<f64>>,
    /// Per variant name: each round's median time per operation, ns (for a
    /// rate too), from which the ratios are taken.
    pub ns_per_op: BTreeMap<String, Vec<f64>>,
    /// Per variant name: the rounds whose measurement of this metric was
    /// taken under interference (busy outside the run, stolen, or beside
    /// another isobench run), with why; a variant without any is absent.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub interfered: BTreeMap<String, Vec<InterferedRound>>,
}

/// One round of one variant's measurement of a metric that was taken under
/// interference ([`Interference::flagged`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct InterferedRound {
    /// The round, from 1.
    pub round: usize,
    /// Why, in words ([`Interference::reasons`]).
    pub reasons: Vec<String>,
}

/// A ratio to `bare` over the rounds: the median of the per-round ratios and
/// its 95 % interval (order statistics of the rounds, as
/// [`median_ci_sorted`]: with few rounds it spans nearly all of them).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LayerRatio {
    pub median: f64,
    pub lo: f64,
    pub hi: f64,
    pub rounds: usize,
}

/// Ratios are ranked as integers of this many parts per unit.
const RATIO_SCALE: f64 = 1e6;

impl LayersRun {
    /// The cost of `variant` for `metric` as a ratio to `bare` (> 1:
    /// slower; for a rate, the time per byte): per round, then the median
    /// and interval over rounds. `None` without both.
    pub fn ratio(&self, metric: &str, variant: &str) -> Option<LayerRatio> {
        let m = self.metrics.iter().find(|m| m.metric == metric)?;
        let (v, b) = (m.ns_per_op.get(variant)?, m.ns_per_op.get("bare")?);
        let mut r: Vec<u64> = v.iter().zip(b).filter(|(v, b)| **v > 0.0 && **b > 0.0).map(|(v, b)| (v / b * RATIO_SCALE) as u64).collect();
        if r.is_empty() {
            return None;
        }
        r.sort_unstable();
        let median = r[r.len() / 2] as f64 / RATIO_SCALE;
        let median = if r.len() % 2 == 0 { (r[r.len() / 2 - 1] as f64 / RATIO_SCALE + median) / 2.0 } else { median };
        let (lo, hi) = median_ci_sorted(&r, Z95);
        Some(LayerRatio { median, lo: lo as f64 / RATIO_SCALE, hi: hi as f64 / RATIO_SCALE, rounds: r.len() })
    }

    /// The rounds (from 1) in which `metric` under `variant` was measured
    /// under interference.
    pub fn interfered_rounds(&self, metric: &str, variant: &str) -> Vec<usize> {
        let m = self.metrics.iter().find(|m| m.metric == metric);
        m.and_then(|m| m.interfered.get(variant)).map_or_else(Vec::new, |v| v.iter().map(|r| r.round).collect())
    }

    /// The rounds of a ratio cell under interference: those of `variant` or
    /// of `bare` (each round's ratio takes both), sorted, once each.
    pub fn interfered_ratio_rounds(&self, metric: &str, variant: &str) -> Vec<usize> {
        let mut r = self.interfered_rounds(metric, variant);
        r.extend(self.interfered_rounds(metric, "bare"));
        r.sort_unstable();
        r.dedup();
        r
    }

    /// The median over rounds of `variant`'s per-round medians of `metric`, in its unit.
    pub fn median_p50(&self, metric: &str, variant: &str) -> Option<f64> {
        let mut v = self.metrics.iter().find(|m| m.metric == metric)?.p50.get(variant)?.clone();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        Some(v[v.len() / 2])
    }
}

impl RunDir {
    /// Saves an `isobench layers` run (layers.json).
    pub fn save_layers(&self, run: &LayersRun) -> Result<(), ResultsError> {
        self.write_json(LAYERS_FILE, run)
    }

    /// The saved `isobench layers` run, if there is one.
    pub fn layers(&self) -> Result<Option<LayersRun>, ResultsError> {
        self.read_json(LAYERS_FILE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ratio_is_taken_per_round_then_its_median_and_interval() {
        let ns = |b: &[f64], s: &[f64]| BTreeMap::from([("bare".to_string(), b.to_vec()), ("seccomp".to_string(), s.to_vec())]);
        let run = LayersRun {
            rounds: 5,
            starts_per_round: 1,
            variants: Vec::new(),
            metrics: vec![LayerMetric {
                metric: "syscall.getpid".into(),
                unit: "ns".into(),
                p50: ns(&[100.0, 200.0, 100.0, 100.0, 100.0], &[120.0, 240.0, 150.0, 110.0, 130.0]),
                ns_per_op: ns(&[100.0, 200.0, 100.0, 100.0, 100.0], &[120.0, 240.0, 150.0, 110.0, 130.0]),
                interfered: BTreeMap::from([
                    ("bare".to_string(), vec![InterferedRound { round: 2, reasons: vec!["1.10 CPUs busy outside the run".into()] }]),
                    ("seccomp".to_string(), vec![InterferedRound { round: 2, reasons: vec![] }, InterferedRound { round: 4, reasons: vec![] }]),
                ]),
            }],
            skipped: Vec::new(),
            interference: None,
        };
        // Per round: 1.2, 1.2, 1.5, 1.1, 1.3 — a slow round of both (200/240) is still 1.2.
        let r = run.ratio("syscall.getpid", "seccomp").unwrap();
        assert!((r.median - 1.2).abs() < 1e-9, "{r:?}");
        assert!(r.lo <= 1.1 + 1e-9 && r.hi >= 1.3 - 1e-9 && r.rounds == 5, "{r:?}");
        assert!((run.ratio("syscall.getpid", "bare").unwrap().median - 1.0).abs() < 1e-9);
        assert!(run.ratio("syscall.getpid", "overlay").is_none() && run.ratio("ipc.pipe_rtt", "seccomp").is_none());
        assert_eq!(run.median_p50("syscall.getpid", "bare"), Some(100.0));
        assert_eq!(run.interfered_rounds("syscall.getpid", "bare"), [2]);
        assert_eq!(run.interfered_ratio_rounds("syscall.getpid", "seccomp"), [2, 4], "the variant's rounds and bare's, once each");
        assert!(run.interfered_ratio_rounds("syscall.getpid", "overlay") == [2] && run.interfered_rounds("ipc.pipe_rtt", "bare").is_empty());
    }
}
