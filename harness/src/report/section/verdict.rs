//! **Verdict**: the answer first, generated from the figures. Per
//! environment, each family's typical overhead against native (the geometric
//! mean of its metrics' cost ratios at p50, with a 95 % interval) and its
//! start time, one sentence per environment in hyperfine's style ("container
//! ran syscall 1.02 ± 0.03 times slower than native"), and the caveats that
//! change how every figure below reads (an emulated vm, a smoke run, no
//! native column).
//!
//! A family's interval combines its metrics' own 95 % intervals (each the
//! ratio interval of two medians, [`Measurement::cost_ratio_ci95`]) on the
//! log scale, as the standard error of a mean of independent estimates:
//! it says how precisely this run measured the typical overhead, not how
//! much the family's metrics differ from one another (the summary table
//! below shows those).

use std::fmt::Write;

use isobench_workloads::catalog::Family;

use crate::collect::interval::Z95;
use crate::collect::Measurement;
use crate::report::columns::{baseline_for, baseline_of, by_metric, columns, host_timed, is_baseline, split_env};
use crate::report::format::{cell, pm_times, ratio_ci};
use crate::report::ReportError;
use crate::results::RunRecord;

use super::caveats::interference_mark;
use super::{Context, Section};

/// The metric that times a whole start: shown as the start column, not in
/// its family's overhead.
const START_METRIC: &str = "env.start";

/// One family's typical overhead in one environment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FamilyOverhead {
    /// Geometric mean of the metrics' cost ratios.
    pub ratio: f64,
    /// Its 95 % interval.
    pub low: f64,
    pub high: f64,
    /// Metrics it is the mean of.
    pub metrics: usize,
}

/// The geometric mean of `(ratio, low, high)` triples with its 95 %
/// interval (see the module documentation); `None` for none, or for a
/// ratio or bound that is not positive.
pub fn geometric_mean(ratios: &[(f64, f64, f64)]) -> Option<FamilyOverhead> {
    if ratios.is_empty() || ratios.iter().any(|&(r, lo, hi)| r <= 0.0 || lo <= 0.0 || hi <= 0.0) {
        return None;
    }
    if let [(ratio, low, high)] = *ratios {
        // One metric: its own interval, as its row shows it.
        return Some(FamilyOverhead { ratio, low, high, metrics: 1 });
    }
    let k = ratios.len() as f64;
    let mean = ratios.iter().map(|(r, _, _)| r.ln()).sum::<f64>() / k;
    // Each metric's standard error on the log scale from its interval.
    let var = ratios.iter().map(|(_, lo, hi)| ((hi.ln() - lo.ln()) / (2.0 * Z95)).powi(2)).sum::<f64>();
    let se = var.sqrt() / k;
    Some(FamilyOverhead { ratio: mean.exp(), low: (mean - Z95 * se).exp(), high: (mean + Z95 * se).exp(), metrics: ratios.len() })
}

/// Each non-baseline environment's family overheads, in column order:
/// (env, label, [(family, overhead)]).
pub type Overheads = Vec<(String, String, Vec<(Family, FamilyOverhead)>)>;

/// The family overheads of every environment of `ms` that has a baseline.
pub fn overheads(ms: &[Measurement]) -> Overheads {
    let groups = by_metric(ms);
    let mut out = Vec::new();
    for (env, label) in columns(ms) {
        if is_baseline(&env) {
            continue;
        }
        let mut families = Vec::new();
        for family in Family::ALL {
            let ratios: Vec<(f64, f64, f64)> = groups
                .values()
                .filter(|g| g[0].metric.family == family && g[0].metric.name != START_METRIC)
                .filter_map(|g| {
                    let m = g.iter().find(|m| m.env == env)?;
                    let b = baseline_for(g, m)?;
                    let r = m.cost_ratio(b, 0.5)?;
                    let (lo, hi) = m.cost_ratio_ci95(b)?;
                    Some((r, lo, hi))
                })
                .collect();
            if let Some(o) = geometric_mean(&ratios) {
                families.push((family, o));
            }
        }
        out.push((env, label, families));
    }
    out
}

/// "syscall 1.02 ± 0.03 times slower than native" (or faster, with the
/// inverse ratio and interval, as hyperfine words it); "ipc as fast as
/// native (1.00 ± 0.01)" when the interval holds 1.
pub fn phrase(family: Family, o: &FamilyOverhead, baseline: &str) -> String {
    if o.low <= 1.0 && 1.0 <= o.high {
        return format!("{family} as fast as {baseline} ({})", pm_times(o.ratio, o.low, o.high));
    }
    let (r, lo, hi, word) = if o.ratio >= 1.0 { (o.ratio, o.low, o.high, "slower") } else { (1.0 / o.ratio, 1.0 / o.high, 1.0 / o.low, "faster") };
    format!("{family} {} times {word} than {baseline}", pm_times(r, lo, hi))
}

/// `## Verdict`.
pub struct Verdict;

impl Section for Verdict {
    fn markdown(&self, cx: &Context<'_>) -> Result<String, ReportError> {
        let ms = cx.measurements;
        if ms.is_empty() {
            return Ok(String::new());
        }
        let quick = cx.run.parameters.as_ref().and_then(|p| p.quick).unwrap_or(false);
        let mut o = String::from("## Verdict\n\n");
        if quick {
            o.push_str("**Smoke run (`--quick`) — do not quote.** Few iterations per metric: the figures show that every path works, not what it costs; no significance marks are given.\n\n");
        } else if let Some(p) = cx.run.parameters.as_ref().filter(|p| p.budget_s.is_some()) {
            let budget = crate::budget::words(std::time::Duration::from_secs(p.budget_s.unwrap_or(0)));
            let bound = p.max_ms.map_or(String::new(), |ms| format!(", each measurement bounded to {ms} ms"));
            let _ = writeln!(
                o,
                "**Time-budgeted run (`--budget {budget}`{bound}):** fewer samples than the full job, so wider intervals; the figures are measurements, quotable with the intervals shown.\n"
            );
        }
        let overheads = overheads(ms);
        let families: Vec<Family> = Family::ALL.into_iter().filter(|f| overheads.iter().any(|(_, _, fs)| fs.iter().any(|(g, _)| g == f))).collect();
        let starts: Vec<(String, f64)> = columns(ms).into_iter().filter_map(|(env, _)| start_ms(cx, ms, &env).map(|s| (env, s))).collect();
        let has_baseline = columns(ms).iter().any(|(e, _)| is_baseline(e));
        if !has_baseline {
            o.push_str(
                "No overhead ratios: this run did not measure `native`, the baseline every ratio is taken against. \
                 Run again with `native` among the environments (`--env native,…`).\n\n",
            );
        } else if overheads.is_empty() {
            o.push_str("Only `native` was measured: there is nothing to compare it with.\n\n");
        }
        if !overheads.is_empty() && !families.is_empty() {
            let _ = write!(o, "| environment | start (ms) |");
            for f in &families {
                let _ = write!(o, " {f} |");
            }
            o.push_str("\n|---|---:|");
            for _ in &families {
                o.push_str("---:|");
            }
            o.push('\n');
            for (env, label, fs) in &overheads {
                let start = starts.iter().find(|(e, _)| e == env).map_or_else(|| "–".to_string(), |(_, s)| ms_fmt(*s));
                let _ = write!(o, "| {} | {start} |", cell(label));
                for f in &families {
                    match fs.iter().find(|(g, _)| g == f) {
                        Some((_, x)) => {
                            let _ = write!(o, " {} |", ratio_ci(x.ratio, x.low, x.high));
                        }
                        None => o.push_str(" – |"),
                    }
                }
                o.push('\n');
            }
            o.push('\n');
        }
        for (env, label, fs) in &overheads {
            let baseline = match split_env(env).1 {
                "" => "native".to_string(),
                suffix => format!("native@{suffix}"),
            };
            let mut parts: Vec<String> = fs.iter().map(|(f, x)| phrase(*f, x, &baseline)).collect();
            if let Some((_, s)) = starts.iter().find(|(e, _)| e == env) {
                let base = starts.iter().find(|(e, _)| *e == baseline).map(|(_, b)| format!(" ({baseline}: {} ms)", ms_fmt(*b))).unwrap_or_default();
                parts.push(format!("{}started in {} ms{base}", if fs.is_empty() { "" } else { "and " }, ms_fmt(*s)));
            }
            if !parts.is_empty() {
                let verb = if fs.is_empty() { "" } else { "ran " };
                let _ = writeln!(o, "- **{label}** {verb}{}.", join_sentence(&parts));
            }
        }
        if !overheads.is_empty() {
            o.push('\n');
        }
        let mut caveats = Vec::new();
        if ms.iter().any(|m| m.env_label.contains("TCG")) {
            caveats.push(
                "the vm column is emulation (TCG): QEMU interpreted the guest's CPU because this host offers no usable hardware virtualization, \
                 so its ratios measure an emulator, not a hypervisor. This project has no KVM figures of its own yet; under KVM what stays \
                 inside the guest (system calls, IPC, compute) runs on the CPU itself and what leaves it (the start, virtio I/O across the \
                 boundary and to its disk) exits to the hypervisor: see Caveats for which metric is which"
                    .to_string(),
            );
        }
        for (name, e) in &cx.run.environments {
            if e.skipped.is_some() {
                caveats.push(format!("{name} was not measured: it could not run here (the reason is under Caveats)"));
            }
        }
        caveats.extend(partial_families(ms, &overheads, cx.run));
        caveats.extend(undirect_storage(ms, &overheads, cx.run));
        let disturbed = ms.iter().filter(|m| !interference_mark(m).is_empty()).count();
        if disturbed > 0 {
            caveats.push(format!(
                "{disturbed} of {} measurements were taken while the machine was busy with something else (marked ⚠; see Caveats): expect noise",
                ms.len()
            ));
        }
        if cx.run.in_progress {
            caveats.push("the run into this folder did not finish: some figures may be missing".into());
        }
        if cx.run.appended().next().is_some() {
            caveats.push(format!("this folder holds {} runs (--append): see Caveats", cx.run.runs.len()));
        }
        for c in &caveats {
            let _ = writeln!(o, "- ⚠ {c}.");
        }
        if !caveats.is_empty() {
            o.push('\n');
        }
        if !overheads.is_empty() && !families.is_empty() {
            o.push_str(
                "Each family's figure is the geometric mean of its metrics' cost ratios at p50 (time per operation ÷ native's; > 1× is slower) \
                 with a 95 % interval from the metrics' own intervals; start is the p50 of `env.start` where measured, else the measured instance's start.\n\n",
            );
        }
        Ok(o)
    }
}

/// Where an environment's family figure stands on fewer metrics than its
/// baseline measured (a metric timed by the host, refused or failed
/// there): one caveat per such family, naming the metrics left out, so a
/// figure is never read as covering metrics it does not.
fn partial_families(ms: &[Measurement], overheads: &Overheads, run: &RunRecord) -> Vec<String> {
    let groups = by_metric(ms);
    let mut out = Vec::new();
    for (env, label, _) in overheads {
        for family in Family::ALL {
            let with_baseline: Vec<&Vec<&Measurement>> = groups
                .values()
                .filter(|g| g[0].metric.family == family && g[0].metric.name != START_METRIC)
                .filter(|g| baseline_of(g, env).is_some())
                .collect();
            let left_out: Vec<&str> = with_baseline.iter().filter(|g| !g.iter().any(|m| &m.env == env)).map(|g| g[0].metric.name).collect();
            let covered = with_baseline.len() - left_out.len();
            if left_out.is_empty() {
                continue;
            }
            if covered == 0 {
                // No figure at all: said only where the host timed them (an
                // environment that cannot run a family has its reason below).
                let timed: Vec<&str> = left_out.iter().copied().filter(|metric| host_timed(run, metric).iter().any(|(e, _, _)| e == env)).collect();
                if !timed.is_empty() {
                    out.push(format!(
                        "{label} has no {family} figure: its {} loops were timed by the host, a mean each with no interval (in Summary): {}",
                        family,
                        timed.join(", ")
                    ));
                }
                continue;
            }
            out.push(format!(
                "{label}'s {family} figure stands on {covered} of the {} {family} metrics its baseline measured; left out, with no p50 of their own \
                 there (timed by the host, not measured or failed: see Summary and Caveats): {}",
                with_baseline.len(),
                left_out.join(", ")
            ));
        }
    }
    out
}

/// Where an environment's fs figure includes O_DIRECT metrics its storage
/// path served from the host's page cache (the path drops O_DIRECT:
/// [`crate::storage::StorageKind::drops_o_direct`]) while its baseline's
/// went to the disk: one caveat naming them and the path.
fn undirect_storage(ms: &[Measurement], overheads: &Overheads, run: &RunRecord) -> Vec<String> {
    let mut out = Vec::new();
    let records = run.columns_environments();
    for (env, label, fs) in overheads {
        if !fs.iter().any(|(f, _)| *f == Family::Fs) {
            continue;
        }
        let Some(st) = records.iter().find(|(n, _)| n == env).and_then(|(_, e)| e.storage.as_ref()) else { continue };
        if !st.kind.is_some_and(crate::storage::StorageKind::drops_o_direct) {
            continue;
        }
        let direct: Vec<&str> =
            ms.iter().filter(|m| &m.env == env && st.io.get(m.metric.name).is_some_and(|io| io.direct)).map(|m| m.metric.name).collect();
        if !direct.is_empty() {
            out.push(format!(
                "{label}'s fs figure includes O_DIRECT metrics that its storage path, a {}, passed to the host without O_DIRECT, so the host's page cache served them where its baseline's went to the host's file system with O_DIRECT: {}",
                st.kind.map_or("data directory", crate::storage::StorageKind::describe),
                direct.join(", ")
            ));
        }
    }
    out
}

/// `a`, `a and b`, `a, b and c`.
fn join_sentence(parts: &[String]) -> String {
    match parts {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] if last.starts_with("and ") => format!("{} {last}", init.join(", ")),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// Milliseconds of a start as the verdict shows them: about three
/// significant digits (4700, 48.1, 2.61).
fn ms_fmt(v: f64) -> String {
    match v {
        v if v >= 100.0 => format!("{v:.0}"),
        v if v >= 10.0 => format!("{v:.1}"),
        v => format!("{v:.2}"),
    }
}

/// The start time of `env`: `env.start`'s p50 where measured, else the
/// measured instance's start (run.json `start_ms`).
fn start_ms(cx: &Context<'_>, ms: &[Measurement], env: &str) -> Option<f64> {
    if let Some(m) = ms.iter().find(|m| m.env == env && m.metric.name == START_METRIC) {
        return Some(m.summary().p50);
    }
    // The measured instance's start; a merged folder's from its input's record.
    cx.run.columns_environments().into_iter().find(|(n, _)| n == env).and_then(|(_, e)| e.start_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_geometric_mean_and_its_interval() {
        let g = geometric_mean(&[(2.0, 1.9, 2.1), (8.0, 7.6, 8.4)]).unwrap();
        assert!((g.ratio - 4.0).abs() < 1e-9, "{g:?}");
        assert!(g.low < 4.0 && g.high > 4.0 && g.high / g.low < 1.1, "{g:?}");
        // One metric: its own interval back.
        let one = geometric_mean(&[(1.5, 1.4, 1.6)]).unwrap();
        assert!((one.low - 1.4).abs() < 1e-9 && (one.high - 1.6).abs() < 1e-9, "{one:?}");
        assert_eq!(geometric_mean(&[]), None);
        assert_eq!(geometric_mean(&[(1.0, 0.0, 1.2)]), None);
    }

    #[test]
    fn sentences_read_like_hyperfines() {
        let slow = FamilyOverhead { ratio: 1.02, low: 1.01, high: 1.05, metrics: 2 };
        assert_eq!(phrase(Family::Syscall, &slow, "native"), "syscall 1.02 ± 0.03 times slower than native");
        let fast = FamilyOverhead { ratio: 0.5, low: 0.48, high: 0.52, metrics: 1 };
        assert_eq!(phrase(Family::Ipc, &fast, "native"), "ipc 2.00 ± 0.08 times faster than native");
        let same = FamilyOverhead { ratio: 1.0, low: 0.99, high: 1.01, metrics: 1 };
        assert_eq!(phrase(Family::Ipc, &same, "native@a"), "ipc as fast as native@a (1.00 ± 0.01)");
        assert_eq!(join_sentence(&["a".into(), "b".into(), "c".into()]), "a, b and c");
        assert_eq!(join_sentence(&["a".into(), "b".into(), "and started".into()]), "a, b and started");
    }
}
