//! `isobench merge RUN... --out DIR`: one report across several hosts or
//! configurations (a laptop and a server, KVM and TCG). Every column is named
//! `<env>@<host>` (or `@<folder name>` when two runs share a host), and each
//! column's overhead is taken against the native run of the same host or
//! configuration.

use std::path::{Path, PathBuf};

use crate::results::run::MergedRun;
use crate::results::{RunDir, RunRecord};

use super::ReportError;

/// The suffix naming each run: hostnames when they differ, else folder names.
fn suffixes(runs: &[(RunDir, RunRecord)]) -> Vec<String> {
    let hosts: Vec<String> = runs.iter().map(|(_, r)| r.host.as_ref().map_or("host", |h| h.hostname.as_str()).to_string()).collect();
    let distinct = hosts.iter().collect::<std::collections::BTreeSet<_>>().len() == hosts.len();
    if distinct {
        hosts
    } else {
        runs.iter().map(|(d, _)| d.path.file_name().map_or_else(|| "run".into(), |n| n.to_string_lossy().into_owned())).collect()
    }
}

/// Merges the results folders `runs` into `out` and renders its report.
/// Returns the path of report.md.
pub fn merge(runs: &[PathBuf], out: &Path) -> Result<PathBuf, ReportError> {
    let runs: Vec<(RunDir, RunRecord)> = runs
        .iter()
        .map(|p| {
            let dir = RunDir { path: p.clone() };
            dir.run_record().map(|r| (dir, r))
        })
        .collect::<Result<_, _>>()?;
    let names = suffixes(&runs);
    let out = RunDir::at(out)?;
    let mut sources = Vec::new();
    for ((dir, run), name) in runs.into_iter().zip(names) {
        for mut m in super::measurements(&dir)? {
            m.env = format!("{}@{name}", m.env);
            m.env_label = format!("{} @ {name}", m.env_label);
            out.save(&m)?;
        }
        let environments = (!run.environments.is_empty()).then_some(run.environments);
        sources.push(MergedRun { name, dir: dir.path, host: run.host, started_utc: run.started_utc, environments });
    }
    out.update_run(|r| {
        r.merged_from = Some(sources);
        r.parameters_mut().driver = Some("isobench merge".into());
    })?;
    super::render(&out)
}
