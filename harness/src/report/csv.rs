//! summary.csv: one row per env × metric, columns stable within a schema
//! version (see results/README.md): the distribution, then the overhead
//! against the baseline with its 95 % interval and the interference the row
//! was measured under. Columns are only ever added at the end.

use crate::collect::{Measurement, Summary};
use crate::results::RunRecord;
use isobench_workloads::catalog;

use super::columns::{baseline_of, by_metric, catalog_index, column_label, env_order, host_timed_cost};
use super::ReportError;

/// Column order of summary.csv.
pub const COLUMNS: [&str; 21] = [
    "env",
    "env_label",
    "metric",
    "unit",
    "n",
    "min",
    "p50",
    "p90",
    "p99",
    "p99_9",
    "max",
    "mean",
    "stdev",
    "schema",
    "baseline",
    "overhead",
    "overhead_ci95_low",
    "overhead_ci95_high",
    "outside_cpus",
    "steal_cpus",
    "interference",
];

pub fn summary_csv(rows: &[Summary]) -> Result<Vec<u8>, ReportError> {
    let mut w = ::csv::Writer::from_writer(Vec::new());
    w.write_record(COLUMNS)?;
    for s in rows {
        let f = |v: f64| format!("{v:.4}");
        // An absent figure is an empty cell.
        let opt = |v: Option<f64>| v.map(f).unwrap_or_default();
        w.write_record([
            s.env.clone(),
            s.env_label.clone(),
            s.metric.clone(),
            s.unit.clone(),
            s.n.to_string(),
            f(s.min),
            f(s.p50),
            f(s.p90),
            f(s.p99),
            f(s.p999),
            f(s.max),
            f(s.mean),
            f(s.stdev),
            crate::results::SCHEMA_VERSION.to_string(),
            s.baseline.clone().unwrap_or_default(),
            opt(s.overhead),
            opt(s.overhead_ci95_low),
            opt(s.overhead_ci95_high),
            opt(s.outside_cpus),
            opt(s.steal_cpus),
            s.interference.map(|b| b.to_string()).unwrap_or_default(),
        ])?;
    }
    w.into_inner().map_err(|e| ReportError::Csv(e.into_error().into()))
}

/// Column order of host_timed.csv.
pub const HOST_TIMED_COLUMNS: [&str; 16] = [
    "env",
    "env_label",
    "metric",
    "unit",
    "operations",
    "mean",
    "host_loop_ns",
    "env_loop_ns",
    "clock_share",
    "baseline",
    "baseline_mean",
    "mean_overhead",
    "storage",
    "interference",
    "run_id",
    "schema",
];

/// host_timed.csv: one row per loop whose environment's clock was refused
/// and the host timed instead (run.json's `environments.<env>.host_timed`,
/// a merged folder's inputs' too), the counterpart of summary.csv's rows,
/// which are histograms. `mean` is the host's time per operation in the
/// metric's unit, `clock_share` the environment's time for the loop ÷ the
/// host's, `mean_overhead` the cost ratio of means against the baseline's
/// loop (> 1 slower, per byte for rates): there are no percentiles, so no
/// p50 ratio. `None` when the folder has no such loop.
pub fn host_timed_csv(run: &RunRecord, ms: &[Measurement]) -> Result<Option<Vec<u8>>, ReportError> {
    let mut rows: Vec<_> = run
        .columns_environments()
        .into_iter()
        .flat_map(|(name, e)| e.host_timed.iter().map(move |(metric, h)| (name.clone(), column_label(&name, e), metric, h)))
        .filter_map(|(name, label, metric, h)| catalog::lookup(metric).map(|spec| (name, label, spec, h)))
        .collect();
    if rows.is_empty() {
        return Ok(None);
    }
    rows.sort_by_key(|(name, _, spec, _)| (catalog_index(spec.name), env_order(name)));
    let groups = by_metric(ms);
    let mut w = ::csv::Writer::from_writer(Vec::new());
    w.write_record(HOST_TIMED_COLUMNS)?;
    for (name, label, spec, h) in rows {
        let f = |v: f64| format!("{v:.4}");
        let base = groups.get(&(catalog_index(spec.name), spec.name)).and_then(|g| baseline_of(g, &name));
        let base_mean = base.map(|b| b.display(b.loop_mean_ns()));
        let share = (h.host_loop_ns > 0).then(|| h.env_loop_ns as f64 / h.host_loop_ns as f64);
        w.write_record([
            name.clone(),
            label,
            spec.name.to_string(),
            spec.unit.label().to_string(),
            h.operations.to_string(),
            f(spec.unit.from_ns_per_op(h.mean_ns(), h.bytes_per_op)),
            h.host_loop_ns.to_string(),
            h.env_loop_ns.to_string(),
            share.map(f).unwrap_or_default(),
            base.map(|b| b.env.clone()).unwrap_or_default(),
            base_mean.map(f).unwrap_or_default(),
            base.and_then(|b| host_timed_cost(h, b)).map(f).unwrap_or_default(),
            h.storage.clone().unwrap_or_default(),
            h.interference.as_ref().map(|i| i.flagged().to_string()).unwrap_or_default(),
            h.run_id.clone().unwrap_or_default(),
            crate::results::SCHEMA_VERSION.to_string(),
        ])?;
    }
    w.into_inner().map(Some).map_err(|e| ReportError::Csv(e.into_error().into()))
}
