//! Renders a results folder ([`crate::results`]) into what a reader opens:
//! summary.csv and summary.json (host_timed.csv beside them when a loop was
//! timed by the host), the charts in plots/, and report.md with
//! report.html (the same markdown, self-contained). Everything here reads the
//! folder's typed records; nothing is measured.
//!
//! report.md is the ordered list of [`section::SECTIONS`], each a type that
//! renders one part from the records; [`format`] says how every number looks,
//! [`columns`] in which order metrics and environments appear.

pub mod columns;
pub mod compare;
mod csv;
pub mod format;
pub mod html;
pub mod merge;
pub mod noise;
pub mod phases;
pub mod plot;
pub mod section;

use std::path::PathBuf;

use crate::collect::{Measurement, Summary};
use crate::results::{write_atomic, ResultsError, RunDir, RunRecord};
use crate::workloads::Noop;

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Results(#[from] ResultsError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("summary.csv: {0}")]
    Csv(#[from] ::csv::Error),
    #[error("merge: --out {} is or holds or is inside the input {}; a merge never writes into its inputs", out.display(), input.display())]
    MergeInto { out: PathBuf, input: PathBuf },
    #[error("merge: --out {} is not empty; name a new folder", out.display())]
    MergeOver { out: PathBuf },
    #[error("plot {path}: {message}")]
    Plot { path: PathBuf, message: String },
    /// A file of the report could not be written after a chart had already
    /// failed: the chart's failure is the first cause (a full file system
    /// fills up at the chart), so it is the one named.
    #[error("{first}; then {path} could not be written either", path = path.display())]
    After { first: Box<ReportError>, path: PathBuf },
}

/// Every saved measurement of `dir`, in report order (catalogue ×
/// environment).
pub fn measurements(dir: &RunDir) -> Result<Vec<Measurement>, ReportError> {
    let mut ms = dir.measurements()?;
    columns::sort(&mut ms);
    Ok(ms)
}

/// Writes summary.csv, summary.json, plots/, report.md and report.html of
/// `dir` from what is saved there. Returns the path of report.md. A chart
/// that cannot be drawn is a warning in the report, never a lost result.
pub fn render(dir: &RunDir) -> Result<PathBuf, ReportError> {
    let ms = measurements(dir)?;
    let summaries = summaries(&ms);
    write_atomic(&dir.path.join("summary.csv"), &csv::summary_csv(&summaries)?)?;
    dir.write_json("summary.json", &summaries)?;
    let run = dir.run_record()?;
    // Loops timed by the host have no histogram, so no summary.csv row:
    // their own file, gone once no such loop is left (a later measurement
    // replaced it).
    let host_timed = dir.path.join("host_timed.csv");
    match csv::host_timed_csv(&run, &ms)? {
        Some(bytes) => write_atomic(&host_timed, &bytes)?,
        None => match std::fs::remove_file(&host_timed) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(ResultsError::Io { path: host_timed, source: e }.into()),
            _ => {}
        },
    }
    let (plots, warnings, first) = draw(dir, &run, &ms)?;
    let md = section::markdown(&section::Context { dir, run: &run, measurements: &ms, plots: &plots, warnings: &warnings })?;
    let path = dir.path.join("report.md");
    let html = dir.path.join("report.html");
    let written = write_atomic(&path, md.as_bytes()).and_then(|()| write_atomic(&html, html::render(&md, &dir.path).as_bytes()));
    match (written, first) {
        (Ok(()), _) => Ok(path),
        (Err(ResultsError::Io { path, .. }), Some(first)) => Err(ReportError::After { first: Box::new(first), path }),
        (Err(e), _) => Err(e.into()),
    }
}

/// The rows of summary.csv and summary.json: each measurement's summary
/// with its overhead against its baseline (the native column of the same
/// host or configuration), when there is one and it is not one itself.
pub fn summaries(ms: &[Measurement]) -> Vec<Summary> {
    let groups = columns::by_metric(ms);
    ms.iter()
        .map(|m| {
            let group = &groups[&(columns::catalog_index(m.metric.name), m.metric.name)];
            match columns::baseline_for(group, m) {
                Some(b) if !columns::is_baseline(&m.env) => m.summary().against(m, b),
                _ => m.summary(),
            }
        })
        .collect()
}

/// What [`draw`] made: the charts' paths, the warnings for the report,
/// and the first chart's failure.
type Drawn = (Vec<PathBuf>, Vec<String>, Option<ReportError>);

/// Draws every chart: the measurements' and boot phases' (a failure is a
/// warning for the report), then each per-namespace run's (a failure leaves
/// its section without a chart). Returns the charts' paths relative to the
/// folder, the warnings, and the first chart's failure.
fn draw(dir: &RunDir, run: &RunRecord, ms: &[Measurement]) -> Result<Drawn, ReportError> {
    let plots_dir = dir.path.join("plots");
    let mut warnings = Vec::new();
    let mut first = None;
    let mut plots = match plot::render_all(&plots_dir, ms, &phases::from_run(run)) {
        Ok(p) => p,
        Err(e) => {
            warnings.push(format!("plots were not drawn: {e}"));
            first = Some(e);
            Vec::new()
        }
    };
    for noop in Noop::ALL {
        if let Some(per_ns) = dir.startup_per_namespace(noop)? {
            plots.extend(plot::per_namespace(&plots_dir, &per_ns).unwrap_or_default());
        }
    }
    if let Some(layers) = dir.layers()? {
        match plot::layers(&plots_dir, &layers) {
            Ok(p) => plots.extend(p),
            Err(e) => warnings.push(format!("the layers' charts were not drawn: {e}")),
        }
    }
    if let Some(density) = dir.density()? {
        match plot::density(&plots_dir, &density) {
            Ok(p) => plots.extend(p),
            Err(e) => warnings.push(format!("the density charts were not drawn: {e}")),
        }
    }
    match plot::storage(&plots_dir, ms) {
        Ok(p) => plots.extend(p),
        Err(e) => warnings.push(format!("the storage charts were not drawn: {e}")),
    }
    match plot::apps(&plots_dir, ms) {
        Ok(p) => plots.extend(p),
        Err(e) => warnings.push(format!("the application charts were not drawn: {e}")),
    }
    match plot::container_phases(&plots_dir, &phases::container_from_run(run)) {
        Ok(p) => plots.extend(p),
        Err(e) => {
            warnings.push(format!("the container start phases were not drawn: {e}"));
            first.get_or_insert(e);
        }
    }
    Ok((plots, warnings, first))
}
