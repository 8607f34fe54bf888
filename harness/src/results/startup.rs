//! startup.json and its kin: an `isobench startup` run as a type
//! ([`StartupRun`]: every column's start-to-exit samples, in the order
//! measured), with the statistics every view of it uses (quantiles, the
//! median's confidence interval, ratios of columns) and the statistics alone
//! as `isobench startup --json` prints them ([`StartupSummary`]).

use hdrhistogram::Histogram;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::collect::interval::{self, Z95, Z975};
use crate::collect::Interference;
use crate::workloads::Noop;

/// One column's samples.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct StartupRow {
    /// Column name: clone, clone+exec, exec, isobench, isobench+cgroup, runc, crun, bwrap, unshare.
    pub env: String,
    /// With caveats, e.g. `crun (cgroups disabled)`.
    pub label: String,
    /// What one sample runs.
    pub command: String,
    /// Start-to-exit times, ns, in the order measured.
    pub samples_ns: Vec<u64>,
    /// The launcher's columns (`isobench`, `isobench+cgroup`, per
    /// namespace): the no-op's own part of each sample, ns, in the same
    /// order: its execve(2) called (stamped by the container's child) → its
    /// exit reaped. What a container start with the agent in its place does
    /// not run (the agent's own start and shutdown stand there instead: the
    /// report's three-figures row subtracts this). Empty for other columns
    /// and in files written before it was recorded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command_ns: Vec<u64>,
}

impl StartupRow {
    /// Quantile `q` (0..=1) of the samples, ns (nearest rank).
    pub fn quantile_ns(&self, q: f64) -> u64 {
        quantile(&self.samples_ns, q)
    }

    /// The median of [`command_ns`](Self::command_ns), ns; `None` when not
    /// recorded.
    pub fn command_p50_ns(&self) -> Option<u64> {
        (!self.command_ns.is_empty()).then(|| quantile(&self.command_ns, 0.5))
    }

    /// 95 % confidence interval of the median, ns
    /// ([`interval::median_ci_sorted`]: the samples at ranks n/2 ∓
    /// 1.96·√n/2, as `isobench compare` judges changes, here from the exact
    /// samples so it agrees with [`quantile_ns`](Self::quantile_ns)). With
    /// fewer than ~10 samples it is the whole range.
    pub fn median_ci_ns(&self) -> (u64, u64) {
        self.median_ci_at(Z95)
    }

    /// The interval of the median at `z` (see [`median_ci_ns`](Self::median_ci_ns)).
    pub fn median_ci_at(&self, z: f64) -> (u64, u64) {
        let mut v = self.samples_ns.clone();
        v.sort_unstable();
        interval::median_ci_sorted(&v, z)
    }

    /// The samples as an hdrhistogram (ns, 3 significant digits), as the
    /// agent's metrics are recorded.
    pub fn histogram(&self) -> Histogram<u64> {
        let mut h = isobench_workloads::hist::new_ns();
        for &s in &self.samples_ns {
            // `record`, not `saturating_record`: only record grows an
            // auto-resizing histogram (saturating would clamp at its start).
            h.record(s.max(1)).expect("an auto-resizing histogram takes any value");
        }
        h
    }
}

/// Quantile `q` (0..=1) of `samples`, nearest rank; 0 when empty.
fn quantile(samples: &[u64], q: f64) -> u64 {
    let mut v = samples.to_vec();
    v.sort_unstable();
    if v.is_empty() {
        return 0;
    }
    let rank = ((q.clamp(0.0, 1.0) * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

/// A whole `isobench startup` run.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct StartupRun {
    /// Kept rounds (samples per row).
    pub n: usize,
    /// The namespaces of the clone floors, isobench and the OCI/bwrap peers
    /// (`user,pid,…`); `None` in a per-namespace run, where each row has its
    /// own, and in files written before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespaces: Option<String>,
    pub warmup: usize,
    /// The no-op every column ran; files written before it was recorded ran
    /// the static one.
    #[serde(default)]
    pub noop: Noop,
    /// One CPUID's cost on this host before the rounds, ns
    /// ([`crate::collect::host::cpuid_ns`]): where it exits to a hypervisor
    /// the static no-op's own start-up is slow (see [`Noop::Static`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpuid_ns: Option<f64>,
    pub rows: Vec<StartupRow>,
    /// Whether the isobench+cgroup column's timed region ends with its
    /// groups removed, as env.start's container does; files written before
    /// it did removed them after the timed region.
    #[serde(default)]
    pub cgroup_removal_timed: bool,
    /// Columns that could not run here: (name, one line why).
    pub skipped: Vec<(String, String)>,
    /// What else the machine did during the rounds (absent in files written
    /// before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interference: Option<Interference>,
}

impl StartupRun {
    pub fn row(&self, env: &str) -> Option<&StartupRow> {
        self.rows.iter().find(|r| r.env == env)
    }

    /// `env`'s quantile `q` over `base`'s (e.g. runc's p50 / isobench's p50).
    pub fn ratio(&self, env: &str, base: &str, q: f64) -> Option<f64> {
        let (a, b) = (self.row(env)?.quantile_ns(q), self.row(base)?.quantile_ns(q));
        (b > 0).then(|| a as f64 / b as f64)
    }

    /// `env`'s p50 over `base`'s with its 95 % interval: (ratio, low, high),
    /// from [`StartupRun::ratio_ci95`].
    pub fn p50_ratio_ci(&self, env: &str, base: &str) -> Option<(f64, f64, f64)> {
        let (lo, hi) = self.ratio_ci95(env, base)?;
        Some((self.ratio(env, base, 0.5)?, lo, hi))
    }

    /// The 95 % interval of `env`'s p50 over `base`'s
    /// ([`interval::ratio_ci`]).
    pub fn ratio_ci95(&self, env: &str, base: &str) -> Option<(f64, f64)> {
        let f = |(lo, hi): (u64, u64)| (lo as f64, hi as f64);
        interval::ratio_ci(f(self.row(env)?.median_ci_at(Z975)), f(self.row(base)?.median_ci_at(Z975)))
    }

    /// The statistics of every column, as `isobench startup --json` prints
    /// them; ratios against the column `base` (`isobench`, or the first
    /// row of a per-namespace run) when it ran.
    pub fn summary(&self, base: &str) -> StartupSummary {
        let base = self.row(base).map(|r| r.env.clone());
        let columns = self
            .rows
            .iter()
            .map(|r| {
                let (lo, hi) = r.median_ci_ns();
                let vs = base.as_deref().filter(|b| *b != r.env);
                StartupColumn {
                    env: r.env.clone(),
                    label: r.label.clone(),
                    command: r.command.clone(),
                    n: r.samples_ns.len(),
                    p50_ns: r.quantile_ns(0.5),
                    p90_ns: r.quantile_ns(0.9),
                    p50_ci95_ns: [lo, hi],
                    base: vs.map(str::to_string),
                    vs_base: vs.and_then(|b| self.ratio(&r.env, b, 0.5)),
                    vs_base_ci95: vs.and_then(|b| self.ratio_ci95(&r.env, b)).map(|(lo, hi)| [lo, hi]),
                }
            })
            .collect();
        StartupSummary {
            n: self.n,
            warmup: self.warmup,
            namespaces: self.namespaces.clone(),
            noop: self.noop,
            cpuid_ns: self.cpuid_ns,
            columns,
            skipped: self.skipped.clone(),
            interference: self.interference.clone(),
        }
    }
}

/// `isobench startup --json`: a run's statistics per column (its samples
/// are in startup.json, or the file of `--samples`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StartupSummary {
    /// Kept rounds.
    pub n: usize,
    pub warmup: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespaces: Option<String>,
    pub noop: Noop,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpuid_ns: Option<f64>,
    pub columns: Vec<StartupColumn>,
    /// Columns that could not run here: (name, one line why).
    pub skipped: Vec<(String, String)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interference: Option<Interference>,
}

/// One column of a [`StartupSummary`]: start to exit of the no-op, ns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StartupColumn {
    pub env: String,
    pub label: String,
    pub command: String,
    /// Samples (kept rounds that ran).
    pub n: usize,
    pub p50_ns: u64,
    pub p90_ns: u64,
    /// 95 % confidence interval of the p50 ([`StartupRow::median_ci_ns`]).
    pub p50_ci95_ns: [u64; 2],
    /// The column the ratio is taken against (`isobench`); absent for that
    /// column itself or when it did not run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
    /// p50 ÷ the base column's p50.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vs_base: Option<f64>,
    /// Its 95 % interval ([`StartupRun::ratio_ci95`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vs_base_ci95: Option<[f64; 2]>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(label: &str, samples_ns: Vec<u64>) -> StartupRow {
        StartupRow { env: label.into(), label: label.into(), command: String::new(), samples_ns, command_ns: Vec::new() }
    }

    #[test]
    fn a_rows_histogram_keeps_its_values() {
        let r = row("x", (0..200).map(|i| 1_000_000 + i * 500).collect());
        let h = r.histogram();
        assert_eq!(h.len(), 200);
        let p50 = h.value_at_quantile(0.5) as f64;
        assert!((p50 - r.quantile_ns(0.5) as f64).abs() / p50 < 0.002, "{p50} vs {}", r.quantile_ns(0.5));
        // Ranks 100 ∓ 13.9: samples 86 and 114 (1-based), inside p10..p90.
        let (lo, hi) = r.median_ci_ns();
        assert_eq!((lo, hi), (1_000_000 + 85 * 500, 1_000_000 + 113 * 500));
        assert!(lo >= r.quantile_ns(0.1) && hi <= r.quantile_ns(0.9));
        let few = row("x", vec![5, 1, 3]);
        assert_eq!(few.median_ci_ns(), (1, 5), "three samples: the whole range");
    }

    #[test]
    fn the_summary_has_each_columns_quantiles_interval_and_ratio() {
        let iso = row("isobench", (1..=100).map(|i| 1_000_000 + i * 1000).collect());
        let runc = row("runc", (1..=100).map(|i| 10_000_000 + i * 10_000).collect());
        let run = StartupRun {
            n: 100,
            namespaces: None,
            warmup: 3,
            noop: Noop::Static,
            cpuid_ns: None,
            rows: vec![iso, runc],
            cgroup_removal_timed: true,
            skipped: vec![],
            interference: None,
        };
        let s = run.summary("isobench");
        assert_eq!(s.columns.len(), 2);
        let (i, r) = (&s.columns[0], &s.columns[1]);
        assert_eq!((i.p50_ns, i.p90_ns, i.n), (1_050_000, 1_090_000, 100));
        assert!(i.p50_ci95_ns[0] < i.p50_ns && i.p50_ci95_ns[1] > i.p50_ns, "{i:?}");
        assert_eq!((i.base.as_deref(), i.vs_base), (None, None), "no ratio of a column with itself");
        assert_eq!(r.base.as_deref(), Some("isobench"));
        let ratio = r.vs_base.unwrap();
        assert!((ratio - 10_500_000.0 / 1_050_000.0).abs() < 1e-9, "{ratio}");
        let [lo, hi] = r.vs_base_ci95.unwrap();
        assert!(lo < ratio && ratio < hi, "{lo} {ratio} {hi}");
        assert!(run.summary("nothing").columns.iter().all(|c| c.vs_base.is_none()));
    }

    #[test]
    fn a_ratio_of_medians_carries_the_interval_of_both() {
        let a = row("a", (0..100).map(|i| 2_000 + i).collect());
        let b = row("b", (0..100).map(|i| 1_000 + i).collect());
        let run = StartupRun {
            n: 100,
            namespaces: None,
            warmup: 0,
            noop: Noop::Static,
            cpuid_ns: None,
            rows: vec![a.clone(), b.clone()],
            cgroup_removal_timed: true,
            skipped: vec![],
            interference: None,
        };
        let (r, lo, hi) = run.p50_ratio_ci("a", "b").unwrap();
        assert_eq!(Some((lo, hi)), run.ratio_ci95("a", "b"));
        assert!(lo < r && r < hi, "{lo} {r} {hi}");
        assert_eq!(run.p50_ratio_ci("a", "missing"), None);
    }

    #[test]
    fn a_startup_file_from_before_the_noop_was_recorded_ran_the_static_one() {
        let old = r#"{"n":2,"namespaces":"pid,mnt","warmup":1,"rows":[{"env":"isobench","label":"isobench","command":"/noop","samples_ns":[1,2]}],"skipped":[]}"#;
        let run: StartupRun = serde_json::from_str(old).unwrap();
        assert_eq!((run.noop, run.cpuid_ns), (Noop::Static, None));
        assert!(!run.cgroup_removal_timed, "an old file's cgroup removal was outside the timed region");
        let nolibc = StartupRun {
            n: 1,
            namespaces: None,
            warmup: 0,
            noop: Noop::Nolibc,
            cpuid_ns: None,
            rows: vec![],
            cgroup_removal_timed: true,
            skipped: vec![],
            interference: None,
        };
        assert_eq!(serde_json::to_value(nolibc).unwrap()["noop"], "nolibc");
        assert_eq!("nolibc".parse::<Noop>(), Ok(Noop::Nolibc));
        assert_eq!("glibc".parse::<Noop>().unwrap_err(), "unknown no-op \"glibc\"; choose from static or nolibc");
    }
}
