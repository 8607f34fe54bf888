//! summary.csv: one row per env × metric, columns stable within a schema
//! version (see results/README.md).

use crate::collect::Summary;

use super::ReportError;

/// Column order of summary.csv.
pub const COLUMNS: [&str; 14] = ["env", "env_label", "metric", "unit", "n", "min", "p50", "p90", "p99", "p99_9", "max", "mean", "stdev", "schema"];

pub fn summary_csv(rows: &[Summary]) -> Result<Vec<u8>, ReportError> {
    let mut w = ::csv::Writer::from_writer(Vec::new());
    w.write_record(COLUMNS)?;
    for s in rows {
        let f = |v: f64| format!("{v:.4}");
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
        ])?;
    }
    w.into_inner().map_err(|e| ReportError::Csv(e.into_error().into()))
}
