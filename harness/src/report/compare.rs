//! `isobench compare RUN_A RUN_B`: what changed between two results folders,
//! per environment × metric, with a significance verdict that can gate CI.
//!
//! Method (criterion's shape, with a distribution-free interval): the change
//! is the cost ratio of the medians (B ÷ A in time per operation, per byte for
//! rates, so > 1 is slower). It is *significant* when the 95 % confidence
//! intervals of the two medians do not overlap and the change exceeds the
//! noise threshold: by default the run-to-run variation measured for that
//! metric on this project's machine, never finer than the histogram
//! ([`super::noise`]); `--noise` sets one for every metric. A smoke run
//! (`--quick`) on either side is not judged. The interval of a median needs no distribution: it spans
//! the order statistics at ranks n/2 ± 1.96·√n/2, read here from the
//! HdrHistogram ([`crate::collect::interval`], where every interval isobench
//! states is computed). `isobench compare --json` prints a [`Comparison`].

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::PathBuf;

use hdrhistogram::Histogram;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::collect::interval::{self, Z95};
use crate::collect::Measurement;

use super::format::{change, num, ratio_ci};

/// criterion's default noise threshold, for a caller that wants one fixed
/// figure; `isobench compare` and the report use the measured ones
/// ([`super::noise::threshold`]) unless told `--noise`.
pub const DEFAULT_NOISE: f64 = 0.02;

/// A significant regression larger than this fails `isobench compare`.
pub const DEFAULT_THRESHOLD: f64 = 0.05;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Significantly slower in B.
    Regressed,
    /// Significantly faster in B.
    Improved,
    /// Intervals overlap: no detectable change.
    NoChange,
    /// Intervals apart but the change is below the noise threshold.
    WithinNoise,
    /// Intervals apart and beyond the noise, but one of the runs is a smoke
    /// run (`--quick`): not called a regression or an improvement.
    NotJudged,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Regressed => "regressed",
            Verdict::Improved => "improved",
            Verdict::NoChange => "no change",
            Verdict::WithinNoise => "within noise",
            Verdict::NotJudged => "not judged (smoke run)",
        }
    }
}

/// One env × metric present in both runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Change {
    pub env: String,
    pub metric: String,
    pub unit: String,
    /// p50 of A and B in the metric's display unit.
    pub a_p50: f64,
    pub b_p50: f64,
    /// 95 % intervals of A's and B's medians, display unit (for a rate the
    /// slower end first).
    pub a_p50_ci95: [f64; 2],
    pub b_p50_ci95: [f64; 2],
    /// Cost ratio B ÷ A at the median (> 1: B is slower).
    pub ratio: f64,
    /// Its 95 % interval ([`interval::ratio_ci`]); `null` when an interval
    /// reaches 0.
    pub ratio_ci95: Option<[f64; 2]>,
    pub verdict: Verdict,
    /// The noise threshold this change was judged against (a fraction).
    #[serde(default)]
    pub noise: f64,
}

/// `isobench compare --json`: the whole comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Comparison {
    /// The baseline folder and the folder judged.
    pub a: PathBuf,
    pub b: PathBuf,
    /// `--noise`: one threshold for every metric; `null` when each was
    /// judged against its own measured run-to-run variation (each change
    /// carries the figure used).
    pub noise: Option<f64>,
    /// Significant regressions beyond this fraction fail (`--threshold`).
    pub threshold: f64,
    /// Every env × metric in both folders, in A's report order.
    pub changes: Vec<Change>,
    /// `<env> <metric>` of each significant regression beyond the threshold:
    /// the comparison failed (exit status 1) when there is one.
    pub regressions: Vec<String>,
    /// Notes on the comparison itself (one run used `--quick`, ...).
    #[serde(default)]
    pub warnings: Vec<String>,
    /// Every env × metric whose overhead against its own run's native both
    /// folders have: what isolation costs, compared (not a gate).
    #[serde(default)]
    pub overhead_changes: Vec<OverheadChange>,
}

/// One environment's overhead against native (its cost ratio at p50, each
/// from its own run) in A and in B.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OverheadChange {
    pub env: String,
    pub metric: String,
    /// The overhead in A and in B (> 1: slower than that run's native).
    pub a_overhead: f64,
    pub b_overhead: f64,
    /// Their 95 % intervals ([`Measurement::cost_ratio_ci95`]).
    pub a_ci95: [f64; 2],
    pub b_ci95: [f64; 2],
    /// B's overhead ÷ A's (> 1: isolation costs more in B).
    pub change: f64,
    /// Significant when the two intervals do not overlap and the change
    /// exceeds the noise threshold, as for [`Change`].
    pub verdict: Verdict,
    /// The noise threshold it was judged against (a fraction).
    #[serde(default)]
    pub noise: f64,
}

/// The overhead and its interval of `m` against its run's native in `ms`.
fn overhead_of(ms: &[Measurement], m: &Measurement) -> Option<(f64, (f64, f64))> {
    let suffix = super::columns::split_env(&m.env).1;
    let native =
        ms.iter().find(|b| b.metric.name == m.metric.name && super::columns::is_baseline(&b.env) && super::columns::split_env(&b.env).1 == suffix)?;
    Some((m.cost_ratio(native, 0.5)?, m.cost_ratio_ci95(native)?))
}

/// Compares the overheads of every non-native env × metric present, with a
/// native of its own run, in both `a` and `b`; `noise` as for [`compare`].
pub fn compare_overheads(a: &[Measurement], b: &[Measurement], noise: Option<f64>) -> Vec<OverheadChange> {
    let mut out = Vec::new();
    for ma in a.iter().filter(|m| !super::columns::is_baseline(&m.env)) {
        let Some(mb) = b.iter().find(|m| m.env == ma.env && m.metric.name == ma.metric.name) else { continue };
        let (Some((ra, (alo, ahi))), Some((rb, (blo, bhi)))) = (overhead_of(a, ma), overhead_of(b, mb)) else { continue };
        let change = rb / ra;
        let apart = blo > ahi || bhi < alo;
        let noise = noise.unwrap_or_else(|| super::noise::threshold(ma, mb));
        let verdict = match (apart, super::noise::beyond(change, noise)) {
            (false, _) => Verdict::NoChange,
            (true, false) => Verdict::WithinNoise,
            (true, true) if change > 1.0 => Verdict::Regressed,
            (true, true) => Verdict::Improved,
        };
        out.push(OverheadChange {
            env: ma.env.clone(),
            metric: ma.metric.name.to_string(),
            a_overhead: ra,
            b_overhead: rb,
            a_ci95: [alo, ahi],
            b_ci95: [blo, bhi],
            change,
            verdict,
            noise,
        });
    }
    out
}

/// The overhead comparison as a markdown table.
pub fn overhead_table(changes: &[OverheadChange], a_name: &str, b_name: &str) -> String {
    let mut o = format!("| environment | metric | A: {a_name} overhead | B: {b_name} overhead | B ÷ A | verdict |\n|---|---|---:|---:|---:|---|\n");
    for c in changes {
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} | {} |",
            c.env,
            c.metric,
            ratio_ci(c.a_overhead, c.a_ci95[0], c.a_ci95[1]),
            ratio_ci(c.b_overhead, c.b_ci95[0], c.b_ci95[1]),
            change(c.change),
            c.verdict.as_str()
        );
    }
    o
}

/// 95 % confidence interval of the median (ns per operation), from order
/// statistics ([`interval::median_ci`]).
pub fn median_ci(h: &Histogram<u64>) -> (f64, f64) {
    let (lo, hi) = interval::median_ci(h, Z95);
    (lo as f64, hi as f64)
}

/// Per-byte scale for rates, so runs with different working sets compare.
fn scale(m: &Measurement) -> f64 {
    if m.unit().is_rate() && m.bytes_per_op > 0 {
        1.0 / m.bytes_per_op as f64
    } else {
        1.0
    }
}

/// The cost ratio of `b` to `a` at the median and whether it is a
/// significant change (see the module documentation); `None` when either is
/// empty.
pub fn judge(a: &Measurement, b: &Measurement, noise: f64) -> Option<(f64, Verdict)> {
    let ratio = b.cost_ratio(a, 0.5)?;
    let (alo, ahi) = median_ci(&a.histogram);
    let (blo, bhi) = median_ci(&b.histogram);
    let (sa, sb) = (scale(a), scale(b));
    let apart = blo * sb > ahi * sa || bhi * sb < alo * sa;
    let verdict = match (apart, super::noise::beyond(ratio, noise)) {
        (false, _) => Verdict::NoChange,
        (true, false) => Verdict::WithinNoise,
        (true, true) if ratio > 1.0 => Verdict::Regressed,
        (true, true) => Verdict::Improved,
    };
    Some((ratio, verdict))
}

/// [`judge`] against the measured threshold of the metric
/// ([`super::noise::threshold`]): what the report's significance marks use.
pub fn judge_measured(a: &Measurement, b: &Measurement) -> Option<(f64, Verdict)> {
    judge(a, b, super::noise::threshold(a, b))
}

/// Compares every env × metric present in both `a` and `b`, each against
/// `noise` or, when `None`, its metric's measured threshold.
pub fn compare(a: &[Measurement], b: &[Measurement], noise: Option<f64>) -> Vec<Change> {
    let mut out = Vec::new();
    for ma in a {
        let Some(mb) = b.iter().find(|m| m.env == ma.env && m.metric.name == ma.metric.name) else { continue };
        let noise = noise.unwrap_or_else(|| super::noise::threshold(ma, mb));
        let Some((ratio, verdict)) = judge(ma, mb, noise) else { continue };
        let display_ci = |m: &Measurement| {
            let (lo, hi) = median_ci(&m.histogram);
            let (a, b) = (m.display(lo), m.display(hi));
            [a.min(b), a.max(b)]
        };
        out.push(Change {
            env: ma.env.clone(),
            metric: ma.metric.name.to_string(),
            unit: ma.unit().label().to_string(),
            a_p50: ma.summary().p50,
            b_p50: mb.summary().p50,
            a_p50_ci95: display_ci(ma),
            b_p50_ci95: display_ci(mb),
            ratio,
            ratio_ci95: mb.cost_ratio_ci95(ma).map(|(lo, hi)| [lo, hi]),
            verdict,
            noise,
        });
    }
    out
}

/// The environment × metric pairs one folder or both timed by the host
/// (`environments.<env>.host_timed`: a mean, no interval), which
/// [`compare`] cannot judge and leaves out: one note each, with the means
/// where both folders have one.
pub fn host_timed_notes(a: &crate::results::RunRecord, b: &crate::results::RunRecord) -> Vec<String> {
    let timed = |r: &crate::results::RunRecord| -> BTreeMap<(String, String), f64> {
        let mut m = BTreeMap::new();
        for (env, e) in r.columns_environments() {
            for (metric, h) in &e.host_timed {
                m.insert((env.clone(), metric.clone()), h.mean_ns());
            }
        }
        m
    };
    let (ta, tb) = (timed(a), timed(b));
    let mut keys: Vec<&(String, String)> = ta.keys().chain(tb.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .map(|k @ (env, metric)| {
            let how = match (ta.get(k), tb.get(k)) {
                (Some(x), Some(y)) => format!("timed by the host in both (means {:.0} → {:.0} ns per operation, B ÷ A {:.2})", x, y, y / x),
                (Some(_), None) => "timed by the host in A only".to_string(),
                _ => "timed by the host in B only".to_string(),
            };
            format!("{env} {metric}: {how}; not judged: a host-timed mean has no interval")
        })
        .collect()
}

/// For a smoke run: no change is called significant, as its figures are
/// not measurements to judge (the report gives them no significance marks
/// either); a regression or improvement becomes [`Verdict::NotJudged`],
/// while "no change" (overlapping intervals: a folder against itself) and
/// "within noise" stand.
pub fn not_judged(changes: &mut [Change], overheads: &mut [OverheadChange]) {
    let demote = |v: &mut Verdict| {
        if matches!(v, Verdict::Regressed | Verdict::Improved) {
            *v = Verdict::NotJudged;
        }
    };
    changes.iter_mut().for_each(|c| demote(&mut c.verdict));
    overheads.iter_mut().for_each(|c| demote(&mut c.verdict));
}

/// Regressions beyond `threshold` (e.g. 0.05: more than 5 % slower).
pub fn regressions(changes: &[Change], threshold: f64) -> Vec<&Change> {
    changes.iter().filter(|c| c.verdict == Verdict::Regressed && c.ratio > 1.0 + threshold).collect()
}

/// The comparison as a markdown table (readable in a terminal too).
pub fn table(changes: &[Change], a_name: &str, b_name: &str) -> String {
    let mut o =
        format!("| environment | metric | A: {a_name} p50 | B: {b_name} p50 | B ÷ A (cost) | noise | verdict |\n|---|---|---:|---:|---:|---:|---|\n");
    for c in changes {
        let _ = writeln!(
            o,
            "| {} | {} | {} {} | {} {} | {} | ±{:.0} % | {} |",
            c.env,
            c.metric,
            num(c.a_p50),
            c.unit,
            num(c.b_p50),
            c.unit,
            change(c.ratio),
            c.noise * 100.0,
            c.verdict.as_str()
        );
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use isobench_workloads::catalog;

    fn m(env: &str, metric: &str, values: impl IntoIterator<Item = u64>) -> Measurement {
        let mut m = Measurement::new(env, env, catalog::lookup(metric).unwrap());
        for v in values {
            m.histogram.record(v).unwrap();
        }
        m
    }

    /// A tight distribution around `center` ns: ±1 % uniform.
    fn tight(center: u64) -> Vec<u64> {
        (0..1000).map(|i| center - center / 100 + (i * center / 50) / 1000).collect()
    }

    #[test]
    fn same_distribution_is_no_change() {
        let a = [m("native", "syscall.getpid", tight(100_000))];
        let b = [m("native", "syscall.getpid", tight(100_000))];
        let c = compare(&a, &b, Some(DEFAULT_NOISE));
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].verdict, Verdict::NoChange, "{c:?}");
        assert!(regressions(&c, 0.05).is_empty());
    }

    #[test]
    fn twice_as_slow_is_a_regression_and_twice_as_fast_an_improvement() {
        let a = [m("vm", "ipc.pipe_rtt", tight(50_000))];
        let b = [m("vm", "ipc.pipe_rtt", tight(100_000))];
        let c = compare(&a, &b, Some(DEFAULT_NOISE));
        assert_eq!(c[0].verdict, Verdict::Regressed);
        assert!((c[0].ratio - 2.0).abs() < 0.01, "{}", c[0].ratio);
        assert_eq!(regressions(&c, 0.05).len(), 1);
        assert!(regressions(&c, 1.5).is_empty(), "a 2× change is under a 150 % threshold");
        let back = compare(&b, &a, Some(DEFAULT_NOISE));
        assert_eq!(back[0].verdict, Verdict::Improved);
        // for a rate, lower bandwidth is the regression
        let fast = [m("native", "ipc.pipe_bw", tight(10_000))];
        let slow = [m("native", "ipc.pipe_bw", tight(20_000))];
        let c = compare(&fast, &slow, Some(DEFAULT_NOISE));
        assert_eq!(c[0].verdict, Verdict::Regressed);
        assert!(c[0].b_p50 < c[0].a_p50, "half the bandwidth: {c:?}");
    }

    #[test]
    fn overlapping_noise_is_not_significant() {
        // wide distributions whose medians differ by 5 %: intervals overlap at n = 30
        let wide = |c: u64| (0..30).map(move |i| c / 2 + i * c / 30).collect::<Vec<_>>();
        let a = [m("container", "net.tcp_rr", wide(100_000))];
        let b = [m("container", "net.tcp_rr", wide(105_000))];
        let c = compare(&a, &b, Some(DEFAULT_NOISE));
        assert_eq!(c[0].verdict, Verdict::NoChange, "{c:?}");
        // tight and apart, but only 1 % off: within noise
        let a = [m("native", "syscall.getpid", tight(100_000))];
        let b = [m("native", "syscall.getpid", tight(101_500))];
        let c = compare(&a, &b, Some(DEFAULT_NOISE));
        assert_eq!(c[0].verdict, Verdict::WithinNoise, "{c:?}");
    }

    #[test]
    fn overheads_compare_with_the_same_threshold_and_identical_runs_show_no_change() {
        let run = |c: u64| vec![m("native", "syscall.getpid", tight(1000)), m("container", "syscall.getpid", tight(c))];
        let same = compare_overheads(&run(1100), &run(1100), Some(DEFAULT_NOISE));
        assert_eq!(same.len(), 1, "one non-native pair");
        assert_eq!(same[0].verdict, Verdict::NoChange);
        assert!((same[0].a_overhead - 1.1).abs() < 0.01 && (same[0].change - 1.0).abs() < 1e-9, "{same:?}");
        let worse = compare_overheads(&run(1100), &run(1500), Some(DEFAULT_NOISE));
        assert_eq!(worse[0].verdict, Verdict::Regressed, "{worse:?}");
        assert!(overhead_table(&worse, "a", "b").contains("| container | syscall.getpid | 1.10× ±0.0"));
        assert!(compare_overheads(&run(1100)[1..], &run(1100), Some(DEFAULT_NOISE)).is_empty(), "A has no native: no overhead");
    }

    #[test]
    fn measured_thresholds_judge_each_metric_and_identical_runs_show_no_change() {
        // syscall.getpid varies by 46 % between identical runs here: 30 % is noise,
        // 2× is not.
        let a = [m("native", "syscall.getpid", tight(100_000))];
        let c = compare(&a, &a, None);
        assert_eq!((c[0].verdict, c[0].noise), (Verdict::NoChange, 0.46), "a folder against itself: {c:?}");
        let c = compare(&a, &[m("native", "syscall.getpid", tight(130_000))], None);
        assert_eq!(c[0].verdict, Verdict::WithinNoise, "{c:?}");
        let c = compare(&a, &[m("native", "syscall.getpid", tight(200_000))], None);
        assert_eq!(c[0].verdict, Verdict::Regressed, "{c:?}");
        let mut c = compare(&a, &[m("native", "syscall.getpid", tight(200_000))], None);
        not_judged(&mut c, &mut []);
        assert_eq!(c[0].verdict, Verdict::NotJudged);
        let mut same = compare(&a, &a, None);
        not_judged(&mut same, &mut []);
        assert_eq!(same[0].verdict, Verdict::NoChange, "a smoke run against itself is still no change");
        assert!(regressions(&c, 0.05).is_empty(), "a smoke run fails nothing");
        assert!(table(&c, "a", "b").contains("| ±46 % | not judged (smoke run) |"), "{}", table(&c, "a", "b"));
    }

    #[test]
    fn host_timed_loops_are_named_not_dropped() {
        let record = |timed: &[(&str, u64)]| -> crate::results::RunRecord {
            let mut r = crate::results::RunRecord::default();
            for (metric, ns) in timed {
                let h = crate::results::run::HostTimedRecord { operations: 1000, host_loop_ns: ns * 1000, ..Default::default() };
                r.env_mut("runsc").host_timed.insert(metric.to_string(), h);
            }
            r
        };
        let a = record(&[("fs.rand_read", 50_000), ("fs.fsync", 400_000)]);
        let b = record(&[("fs.rand_read", 40_000), ("ipc.pipe_rtt", 150_000)]);
        assert_eq!(
            host_timed_notes(&a, &b),
            [
                "runsc fs.fsync: timed by the host in A only; not judged: a host-timed mean has no interval",
                "runsc fs.rand_read: timed by the host in both (means 50000 → 40000 ns per operation, B ÷ A 0.80); not judged: a host-timed mean has no interval",
                "runsc ipc.pipe_rtt: timed by the host in B only; not judged: a host-timed mean has no interval",
            ]
        );
        assert!(host_timed_notes(&record(&[]), &record(&[])).is_empty());
    }
}
