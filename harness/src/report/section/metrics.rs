//! One section per metric: what it measures and how, each environment's
//! distribution (n, p50, p90, p99, max) with the overhead against native at
//! p50 and p99, a row for each environment whose own clock was refused and
//! the host timed instead (a mean, no percentiles), and its charts.

use std::fmt::Write;

use crate::collect::Summary;
use crate::report::columns::{baseline_for, baseline_of, by_metric, host_timed, host_timed_cost, is_baseline};
use crate::report::format::{num, ratio};
use crate::report::ReportError;

use super::{Context, Section};

/// `## <metric>` for every metric measured, in catalogue order.
pub struct Metrics;

impl Section for Metrics {
    fn markdown(&self, cx: &Context<'_>) -> Result<String, ReportError> {
        let mut o = String::new();
        for ((_, name), group) in &by_metric(cx.measurements) {
            let spec = group[0].metric;
            let unit = spec.unit.label();
            let _ = writeln!(o, "## {name}\n\n{} — method: {}.\n", spec.operation, spec.reference);
            let _ = writeln!(o, "| environment | n | p50 ({unit}) | p90 | p99 | max | overhead vs native (p50) | overhead (p99) |");
            let _ = writeln!(o, "|---|---:|---:|---:|---:|---:|---:|---:|");
            for m in group {
                let native = baseline_for(group, m);
                let sm: Summary = m.summary();
                let r = |q: f64| native.and_then(|b| m.cost_ratio(b, q)).map_or_else(|| "n/a".to_string(), ratio);
                let (o50, o99) = match native {
                    Some(_) if !is_baseline(&m.env) => (r(0.5), r(0.99)),
                    Some(_) => ("baseline".into(), "baseline".into()),
                    None => ("no native run".into(), "".into()),
                };
                let mark = format!("{}{}", if m.truncated { " †" } else { "" }, super::caveats::interference_mark(m));
                let _ = writeln!(
                    o,
                    "| {}{}{mark} | {} | {} | {} | {} | {} | {o50} | {o99} |",
                    m.env_label,
                    network_path(cx, name, &m.env),
                    sm.n,
                    num(sm.p50),
                    num(sm.p90),
                    num(sm.p99),
                    num(sm.max)
                );
            }
            let timed = host_timed(cx.run, name);
            for (env, label, h) in &timed {
                let native = baseline_of(group, env);
                // The baseline's loop mean is shown: its row gives percentiles.
                let cost = native.and_then(|b| host_timed_cost(h, b).map(|c| (b, c))).map_or_else(
                    || "n/a".to_string(),
                    |(b, c)| format!("{} (means; native's {})", ratio(c), num(b.display(b.loop_mean_ns()))),
                );
                let _ = writeln!(
                    o,
                    "| {label} · timed by the host{} | {} ops | mean {} | – | – | – | {cost} | – |",
                    h.interference_mark(),
                    h.operations,
                    num(spec.unit.from_ns_per_op(h.mean_ns(), h.bytes_per_op)),
                );
            }
            if !timed.is_empty() {
                let why = &timed[0].2.refused;
                let mut why_cap = why.chars();
                let why = why_cap.next().map(|c| c.to_uppercase().chain(why_cap).collect::<String>()).unwrap_or_default();
                let _ = writeln!(
                    o,
                    "\n*Timed by the host*: {why}. The row's figure is the host's time from the agent's mark before the loop to its mark \
                     after, ÷ the operations: a mean without percentiles, compared with native's mean over its own loop (the same interval)."
                );
            }
            if let Some(note) = super::spawn::note(cx.run, name) {
                let _ = writeln!(o, "\n{note}");
            }
            if spec.unit.is_rate() {
                let _ = writeln!(
                    o,
                    "\nFor a rate, p90 and p99 are the slow tail (the bandwidth 90 % and 99 % of samples exceeded) and max is the fastest sample."
                );
            }
            o.push('\n');
            for stem in [name.to_string(), format!("{name}.percentiles")] {
                for p in cx.plots.iter().filter(|p| p.file_stem().is_some_and(|st| *st == *stem) && p.extension().is_some_and(|e| e == "svg")) {
                    let _ = writeln!(o, "![{stem}]({})\n", p.display());
                }
            }
        }
        Ok(o)
    }
}

/// ` · veth+bridge+NAT` (` · netstack+bridge+NAT` under runsc) after the
/// environment of a `*.boundary` row whose host side reached it through
/// Docker's bridge and a DNAT'd published port (`--profile docker`), so the
/// row says which path its figure crossed; the other paths are named in the
/// header's "cross-boundary paths".
fn network_path(cx: &Context<'_>, metric: &str, env: &str) -> &'static str {
    if !metric.ends_with(".boundary") {
        return "";
    }
    match cx.run.environments.get(env).and_then(|e| e.boundary.as_ref()).and_then(|b| b.path.as_deref()) {
        Some(BRIDGE_NAT_PATH) => " · veth+bridge+NAT",
        Some(NETSTACK_BRIDGE_NAT_PATH) => " · netstack+bridge+NAT",
        _ => "",
    }
}

/// run.json's `boundary.path` of Docker's bridge network (`PathKind::VethBridgeNat`).
const BRIDGE_NAT_PATH: &str = "veth_bridge_nat";

/// run.json's `boundary.path` of that bridge in front of runsc's netstack
/// (`PathKind::NetstackBridgeNat`).
const NETSTACK_BRIDGE_NAT_PATH: &str = "netstack_bridge_nat";
