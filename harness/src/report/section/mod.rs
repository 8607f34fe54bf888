//! report.md as an ordered list of sections: [`SECTIONS`]. Each section is a
//! type implementing [`Section`], which renders its part of the report from
//! the [`Context`] (the folder's run record, measurements, charts and
//! warnings, and the folder itself for records of their own such as
//! startup.json); a section with nothing to show renders nothing. report.html
//! is the same markdown, so both follow this one list.
//!
//! To add a section (a new metric family's table, a new record's view):
//! write a type in a module here that implements [`Section`], reading what
//! it needs from the context (a family measured by the runner finds its
//! measurements in `cx.measurements` and its facts in `cx.run`; a record of
//! its own is read from `cx.dir` through its loader in [`crate::results`]),
//! and add it at its place in [`SECTIONS`]. Numbers go through
//! [`super::format`], so they look like every other table's.

mod apps;
mod boot;
mod caveats;
pub mod command;
mod container_start;
pub mod cross_check;
pub mod density;
mod host;
mod instances;
pub mod layers;
mod metrics;
mod spawn;
pub mod startup;
mod storage;
mod summary;
pub mod verdict;

use std::path::PathBuf;

use crate::collect::Measurement;
use crate::results::{RunDir, RunRecord};

use super::ReportError;

/// What every section renders from.
pub struct Context<'a> {
    /// The results folder, for records a section reads itself.
    pub dir: &'a RunDir,
    /// run.json.
    pub run: &'a RunRecord,
    /// Every measurement, in report order (catalogue × environment).
    pub measurements: &'a [Measurement],
    /// Charts drawn, relative to the folder (`plots/…`).
    pub plots: &'a [PathBuf],
    /// Problems of the rendering itself (a chart not drawn), for the caveats.
    pub warnings: &'a [String],
}

impl Context<'_> {
    /// The SVG chart named `stem` among those drawn, if any.
    pub fn svg(&self, stem: &str) -> Option<&PathBuf> {
        self.plots.iter().find(|p| p.file_stem().is_some_and(|s| s == stem) && p.extension().is_some_and(|e| e == "svg"))
    }
}

/// One part of report.md.
pub trait Section {
    /// The section's markdown, ending with its blank line; empty when it has
    /// nothing to show.
    fn markdown(&self, cx: &Context<'_>) -> Result<String, ReportError>;
}

/// report.md, in order.
pub const SECTIONS: &[&dyn Section] = &[
    &host::Title,
    &verdict::Verdict,
    &summary::OverheadChart,
    &summary::Summary,
    &caveats::Caveats,
    &metrics::Metrics,
    &instances::FirstStart,
    &instances::Usage,
    &boot::BootPhases,
    &container_start::ContainerStartPhases,
    &storage::Storage,
    &apps::Apps,
    &summary::Footer,
    &startup::ContainerStart,
    &startup::NoopShare,
    &startup::PerNamespace,
    &layers::LayerCosts,
    &density::Density,
    &command::Command,
    &cross_check::CrossCheck,
    &host::Host,
];

/// report.md: every section of [`SECTIONS`] in order.
pub fn markdown(cx: &Context<'_>) -> Result<String, ReportError> {
    let mut md = String::new();
    for s in SECTIONS {
        md.push_str(&s.markdown(cx)?);
    }
    Ok(md)
}
