//! summary.csv: one row per env × metric, columns stable within a schema
//! version (see results/README.md): the distribution, then the overhead
//! against the baseline with its 95 % interval and the interference the row
//! was measured under. Columns are only ever added at the end.

use crate::collect::Summary;

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
