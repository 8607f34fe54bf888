//! "What each layer costs" (`isobench layers`, layers.json): per metric,
//! `bare`'s median and each variant's cost as a ratio to `bare` with its
//! 95 % interval, every column labelled with its profile, and a chart per
//! metric.

use std::fmt::Write;

use crate::report::format::num;
use crate::report::ReportError;
use crate::results::layers::LayersRun;

use super::{Context, Section};

/// The section.
pub struct LayerCosts;

impl Section for LayerCosts {
    fn markdown(&self, cx: &Context<'_>) -> Result<String, ReportError> {
        let Some(run) = cx.dir.layers()? else { return Ok(String::new()) };
        let mut o = table(&run);
        for m in &run.metrics {
            if let Some(svg) = cx.svg(&format!("layers-{}", m.metric)) {
                let _ = writeln!(o, "![layers-{}]({})\n", m.metric, svg.display());
            }
        }
        Ok(o)
    }
}

/// The table, as `isobench layers` prints it too.
pub fn table(run: &LayersRun) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "## What each layer of `--profile docker` costs\n");
    let _ = writeln!(
        o,
        "The container environment with no layer (`bare`), each layer alone and all of them (`docker`), measured in {} rounds, each in a new random order; \
         the ratio to `bare` is taken within each round (> 1: slower; for a rate, the time per byte), and the table shows its median \
         over the rounds with its 95 % interval (order statistics of the rounds: with few rounds it spans nearly all of them). \
         `env.start` is the median of {} starts per round. The bridge layer changes only the boundary network (`net.*.boundary`: veth+bridge+NAT \
         instead of a plain veth); overlay changes the root filesystem.\n",
        run.rounds, run.starts_per_round
    );
    let others: Vec<_> = run.variants.iter().filter(|v| v.name != "bare").collect();
    let bare = run.variants.iter().find(|v| v.name == "bare");
    let _ = write!(o, "| metric | {} p50 |", bare.map_or("container (bare)", |b| b.label.as_str()));
    for v in &others {
        let _ = write!(o, " {} |", v.label);
    }
    let _ = writeln!(o);
    let _ = writeln!(o, "|---|---:|{}", "---:|".repeat(others.len()));
    let mut marked = false;
    // `⚠k/n`: k of the cell's n rounds were measured under interference.
    let mut mark = |rounds: &[usize], of: usize| match rounds.len() {
        0 => String::new(),
        k => {
            marked = true;
            format!(" ⚠{k}/{of}")
        }
    };
    for m in &run.metrics {
        let rounds = m.ns_per_op.get("bare").map_or(0, Vec::len);
        let base = run
            .median_p50(&m.metric, "bare")
            .map_or_else(|| "n/a".into(), |p| format!("{} {}{}", num(p), m.unit, mark(&run.interfered_rounds(&m.metric, "bare"), rounds)));
        let _ = write!(o, "| {} | {base} |", m.metric);
        for v in &others {
            let cell = run.ratio(&m.metric, &v.name).map_or_else(
                || "n/a".into(),
                |r| format!("{:.2}× ({:.2}–{:.2}){}", r.median, r.lo, r.hi, mark(&run.interfered_ratio_rounds(&m.metric, &v.name), r.rounds)),
            );
            let _ = write!(o, " {cell} |");
        }
        let _ = writeln!(o);
    }
    let _ = writeln!(o);
    // Written after the layers and the run-wide note, below the table's own lines.
    let mut notes = String::new();
    if marked {
        let o = &mut notes;
        let _ = writeln!(
            o,
            "⚠k/n: k of the n rounds behind that cell were measured under interference (for a ratio, the variant's round or `bare`'s, \
             as each round's ratio takes both): busy CPUs outside the run, time stolen by the hypervisor, or another isobench run beside it. \
             The interval still spans every round; treat a marked cell's figure with that in mind.\n"
        );
        for v in &run.variants {
            let mut cells = Vec::new();
            let mut example = None;
            for m in &run.metrics {
                if let Some(list) = m.interfered.get(&v.name).filter(|l| !l.is_empty()) {
                    let rounds: Vec<String> = list.iter().map(|r| r.round.to_string()).collect();
                    let word = if rounds.len() == 1 { "round" } else { "rounds" };
                    cells.push(format!("{} ({word} {})", m.metric, rounds.join(", ")));
                    example = example.or_else(|| list.iter().find(|r| !r.reasons.is_empty()).map(|r| r.reasons.join("; ")));
                }
            }
            if !cells.is_empty() {
                let why = example.map_or_else(String::new, |e| format!("; e.g. {e}"));
                let _ = writeln!(o, "- ⚠ {}: {}{why}", v.label, cells.join(", "));
            }
        }
        let _ = writeln!(o);
    }
    // A variant named after its one layer needs no line.
    let combined: Vec<String> =
        others.iter().filter(|v| v.layers.len() != 1 || v.layers[0] != v.name).map(|v| format!("{} = {}", v.name, v.layers.join(" + "))).collect();
    if !combined.is_empty() {
        let _ = writeln!(o, "Layers: {}.\n", combined.join("; "));
    }
    for line in &run.skipped {
        let _ = writeln!(o, "- not measured: {line}");
    }
    if let Some(i) = run.interference.as_ref().filter(|i| i.flagged()) {
        let _ = writeln!(o, "- ⚠ measured under interference: {}\n", i.reasons().join("; "));
    }
    o.push_str(&notes);
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::layers::{InterferedRound, LayerMetric, LayerVariant};
    use std::collections::BTreeMap;

    fn run(interfered: BTreeMap<String, Vec<InterferedRound>>) -> LayersRun {
        let variant = |name: &str| LayerVariant {
            name: name.into(),
            label: format!("container ({name})"),
            layers: if name == "bare" { vec![] } else { vec![name.into()] },
            settings: serde_json::Value::Null,
        };
        let per = |v: &[f64]| BTreeMap::from([("bare".to_string(), vec![100.0; 3]), ("seccomp".to_string(), v.to_vec())]);
        LayersRun {
            rounds: 3,
            starts_per_round: 1,
            variants: vec![variant("bare"), variant("seccomp")],
            metrics: ["syscall.getpid", "ipc.pipe_rtt"]
                .into_iter()
                .map(|metric| LayerMetric {
                    metric: metric.into(),
                    unit: "ns".into(),
                    p50: per(&[110.0, 120.0, 130.0]),
                    ns_per_op: per(&[110.0, 120.0, 130.0]),
                    interfered: if metric == "syscall.getpid" { interfered.clone() } else { BTreeMap::new() },
                })
                .collect(),
            skipped: Vec::new(),
            interference: None,
        }
    }

    #[test]
    fn a_cell_measured_under_interference_is_marked_and_the_others_are_not() {
        let clean = table(&run(BTreeMap::new()));
        assert!(!clean.contains('⚠'), "{clean}");
        let busy = InterferedRound { round: 2, reasons: vec!["1.30 CPUs busy outside the run".into()] };
        let t = table(&run(BTreeMap::from([("seccomp".to_string(), vec![busy.clone()])])));
        let row = |metric: &str| t.lines().find(|l| l.starts_with(&format!("| {metric} |"))).unwrap().to_string();
        assert_eq!(row("syscall.getpid"), "| syscall.getpid | 100.0 ns | 1.20× (1.10–1.30) ⚠1/3 |", "{t}");
        assert!(!row("ipc.pipe_rtt").contains('⚠'), "another metric of the same variant is not marked: {t}");
        assert!(t.contains("- ⚠ container (seccomp): syscall.getpid (round 2); e.g. 1.30 CPUs busy outside the run"), "{t}");
        // A round of bare's marks bare's cell and every ratio taken from it.
        let t = table(&run(BTreeMap::from([("bare".to_string(), vec![busy])])));
        assert!(t.contains("| syscall.getpid | 100.0 ns ⚠1/3 | 1.20× (1.10–1.30) ⚠1/3 |"), "{t}");
    }
}
