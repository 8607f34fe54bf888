//! The overview: one table of every metric's p50 per environment with its
//! overhead against native and a significance mark, the sanity gate on
//! container figures that namespaces cannot slow, the overhead chart, and
//! the closing note on method and files.

use std::fmt::Write;

use isobench_workloads::catalog::Family;

use crate::collect::Measurement;
use crate::report::columns::{baseline_for, baseline_of, by_metric, columns, host_timed, host_timed_cost, is_baseline, split_env};
use crate::report::compare::{judge_measured, Verdict};
use crate::report::format::{num, percent, ratio, ratio_ci_percent};
use crate::report::noise;
use crate::report::plot::{NEAR_NATIVE, NEAR_NATIVE_PLOT};
use crate::report::ReportError;

use super::caveats::interference_mark;
use super::{Context, Section};

/// Families where a namespace container should cost nothing: the report
/// flags a container/native p50 ratio outside [`SANE_RATIO`] there.
pub const SANE_FAMILIES: [Family; 3] = [Family::Syscall, Family::Ipc, Family::Control];
/// Container/native ratio band expected for [`SANE_FAMILIES`].
pub const SANE_RATIO: (f64, f64) = (0.9, 1.1);

/// The sanity gate: "suspicious: check noise" when a container figure of a
/// family that namespaces cannot slow is more than 10 % off native.
pub fn suspicious(m: &Measurement, native: &Measurement) -> bool {
    split_env(&m.env).0 == "container"
        && SANE_FAMILIES.contains(&m.metric.family)
        && m.cost_ratio(native, 0.5).is_some_and(|r| r < SANE_RATIO.0 || r > SANE_RATIO.1)
}

/// `## Summary: p50, and overhead vs native`.
pub struct Summary;

impl Section for Summary {
    fn markdown(&self, cx: &Context<'_>) -> Result<String, ReportError> {
        let ms = cx.measurements;
        if ms.is_empty() {
            // A folder of startup or validate records only: no empty table.
            return Ok(String::new());
        }
        let mut o = String::new();
        let cols = columns(ms);
        let groups = by_metric(ms);
        let _ = writeln!(o, "## Summary: p50, and overhead vs native\n");
        let _ = write!(o, "| metric | unit |");
        for (_, label) in &cols {
            let _ = write!(o, " {label} |");
        }
        let _ = write!(o, "\n|---|---|");
        for _ in &cols {
            o.push_str("---:|");
        }
        o.push('\n');
        let mut flagged = Vec::new();
        let mut host_timed_cells = false;
        let quick = cx.run.parameters.as_ref().and_then(|p| p.quick).unwrap_or(false);
        for ((_, name), group) in &groups {
            let unit = group[0].unit().label();
            let _ = write!(o, "| {name} | {unit} |");
            for (env, _) in &cols {
                match group.iter().find(|m| &m.env == env) {
                    None => match host_timed(cx.run, name).into_iter().find(|(e, _, _)| e == env) {
                        // The environment's clock was refused; the host timed the loop.
                        Some((_, _, h)) => {
                            let spec = group[0].metric;
                            let base = baseline_of(group, env);
                            let cost = base.and_then(|b| host_timed_cost(h, b));
                            let shown = cost.map(|c| format!(" ({})", ratio(c))).unwrap_or_default();
                            let _ = write!(
                                o,
                                " host-timed mean {}{}{shown} |",
                                num(spec.unit.from_ns_per_op(h.mean_ns(), h.bytes_per_op)),
                                h.interference_mark()
                            );
                            host_timed_cells = true;
                        }
                        None => o.push_str(" – |"),
                    },
                    Some(m) => {
                        let p50 = m.summary().p50;
                        let mark = format!("{}{}", if m.truncated { "†" } else { "" }, interference_mark(m));
                        let native = baseline_for(group, m);
                        match native.and_then(|b| m.cost_ratio(b, 0.5).map(|r| (b, r))) {
                            Some((b, r)) if !is_baseline(env) => {
                                let flag = if !quick && suspicious(m, b) {
                                    flagged.push(format!("{name} ({})", m.env_label));
                                    " ‡ suspicious: check noise"
                                } else {
                                    ""
                                };
                                // One marker per cell: the sanity flag, else the
                                // significance against native (median CIs apart and
                                // beyond noise); a smoke run has neither.
                                let sig = match judge_measured(b, m) {
                                    _ if quick => "",
                                    _ if !flag.is_empty() => flag,
                                    Some((_, Verdict::Regressed | Verdict::Improved)) => " *",
                                    Some(_) => " ≈",
                                    None => "",
                                };
                                let shown = match m.cost_ratio_ci95(b) {
                                    Some((lo, hi)) => ratio_ci_percent(r, lo, hi),
                                    None => ratio(r),
                                };
                                let _ = write!(o, " {}{mark} ({shown}){sig} |", num(p50));
                            }
                            _ => {
                                let _ = write!(o, " {}{mark} |", num(p50));
                            }
                        }
                    }
                }
            }
            o.push('\n');
        }
        o.push('\n');
        let _ = writeln!(
            o,
            "Overhead is the cost ratio at p50: time per operation ÷ native's (for a rate, native's bandwidth ÷ this one's), so > 1× always means slower than native. \
             ± is the ratio's 95 % interval. {}",
            match quick {
                true => "A smoke run (`--quick`) carries no significance marks: do not quote it.".to_string(),
                false => format!(
                    "`*` significant: the 95 % confidence intervals of the two medians do not overlap (distribution-free, from the order statistics at ranks n/2 ± 1.96·√n/2) and the difference exceeds the metric's noise threshold ({}: {}); `≈` within noise.",
                    thresholds(ms),
                    noise::SOURCE
                ),
            }
        );
        if host_timed_cells {
            let _ = writeln!(
                o,
                "\nA *host-timed mean* stands where the environment's own clock ran slow over the loop (gVisor's; see Caveats): the host's time \
                 for the loop ÷ its operations, compared with native's mean over its loop, not with its p50. It has no interval, and is a row of \
                 host_timed.csv, not of summary.csv."
            );
        }
        if ms.iter().any(|m| !interference_mark(m).is_empty()) {
            let _ = writeln!(
                o,
                "\n⚠ Measured under interference (the machine busy outside this run, stolen time, or another isobench run): see Caveats."
            );
        }
        if !flagged.is_empty() {
            let _ = writeln!(
                o,
                "\n‡ Sanity gate: namespaces do not slow syscalls, IPC or plain compute, so a container/native ratio outside {:.1}–{:.1}× there means the machine was too noisy to trust this run: {}.",
                SANE_RATIO.0,
                SANE_RATIO.1,
                flagged.join(", ")
            );
        }
        o.push('\n');
        Ok(o)
    }
}

/// The noise thresholds of the metrics in `ms`, as "syscall 33–46 %, ipc
/// 23–32 %" (per family, the range over its metrics).
fn thresholds(ms: &[Measurement]) -> String {
    let mut out = Vec::new();
    for family in Family::ALL {
        let t: Vec<f64> = by_metric(ms)
            .values()
            .filter(|g| g[0].metric.family == family && g.len() > 1)
            .filter_map(|g| {
                let b = g.iter().find(|m| is_baseline(&m.env))?;
                g.iter().filter(|m| !is_baseline(&m.env)).map(|m| noise::threshold(b, m)).reduce(f64::max)
            })
            .collect();
        let (lo, hi) = t.iter().fold((f64::MAX, 0f64), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
        match t.len() {
            0 => {}
            _ if (hi - lo).abs() < 0.005 => out.push(format!("{family} {}", percent(hi))),
            _ => out.push(format!("{family} {}–{}", percent(lo).trim_end_matches(" %"), percent(hi))),
        }
    }
    out.join(", ")
}

/// `## Overhead at a glance`: the overhead chart, when it was drawn, and
/// its linear companion for the environments near 1× when the overview is
/// on a log axis.
pub struct OverheadChart;

impl Section for OverheadChart {
    fn markdown(&self, cx: &Context<'_>) -> Result<String, ReportError> {
        if cx.svg("overhead").is_none() {
            return Ok(String::new());
        }
        let mut o = String::from("## Overhead at a glance\n\n![overhead](plots/overhead.svg)\n\n");
        if cx.svg(NEAR_NATIVE_PLOT).is_some() {
            let _ = writeln!(
                o,
                "The ratios within {NEAR_NATIVE}× of native, on a linear axis, where figures near 1× can be told apart (the chart names the bars beyond it, which only the chart above shows):\n\n![overhead near native](plots/{NEAR_NATIVE_PLOT}.svg)\n"
            );
        }
        let timed = host_timed_by_column(cx);
        if !timed.is_empty() {
            let _ = writeln!(
                o,
                "Not drawn: the loops timed by the host, a mean each with no p50 or interval (their ratios of means are in Summary and host_timed.csv): {}.\n",
                timed.iter().map(|(label, metrics)| format!("{label}: {}", metrics.join(", "))).collect::<Vec<_>>().join("; ")
            );
        }
        Ok(o)
    }
}

/// Each column with loops timed by the host: its label and those metrics,
/// in the report's order.
fn host_timed_by_column(cx: &Context<'_>) -> Vec<(String, Vec<&'static str>)> {
    let mut by: Vec<(String, String, Vec<&'static str>)> = Vec::new();
    for spec in isobench_workloads::catalog::CATALOG {
        for (env, label, _) in host_timed(cx.run, spec.name) {
            match by.iter_mut().find(|(e, _, _)| *e == env) {
                Some((_, _, metrics)) => metrics.push(spec.name),
                None => by.push((env, label, vec![spec.name])),
            }
        }
    }
    by.sort_by_key(|(env, _, _)| crate::report::columns::env_order(env));
    by.into_iter().map(|(_, label, metrics)| (label, metrics)).collect()
}

/// The closing note of the measurements: how their figures were taken and
/// which files hold them (nothing in a folder without measurements, such as
/// `startup --out` or `layers --out` alone).
pub struct Footer;

impl Section for Footer {
    fn markdown(&self, cx: &Context<'_>) -> Result<String, ReportError> {
        if cx.measurements.is_empty() {
            return Ok(String::new());
        }
        let host_timed = if host_timed_by_column(cx).is_empty() { "" } else { " host_timed.csv (the loops timed by the host)," };
        Ok(format!(
            "Latencies are per operation, recorded in HdrHistogram (3 significant digits); round trips are closed-loop. \
             Overhead = environment p50 ÷ native p50 from the same run. Files: summary.csv, summary.json,{host_timed} histograms/ (HdrHistogram V2), run.json.\n\n"
        ))
    }
}
