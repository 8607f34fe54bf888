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
    for m in &run.metrics {
        let base = run.median_p50(&m.metric, "bare").map_or_else(|| "n/a".into(), |p| format!("{} {}", num(p), m.unit));
        let _ = write!(o, "| {} | {base} |", m.metric);
        for v in &others {
            let cell = run.ratio(&m.metric, &v.name).map_or_else(|| "n/a".into(), |r| format!("{:.2}× ({:.2}–{:.2})", r.median, r.lo, r.hi));
            let _ = write!(o, " {cell} |");
        }
        let _ = writeln!(o);
    }
    let _ = writeln!(o);
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
    o
}
