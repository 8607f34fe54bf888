//! `isobench merge RUN... --out DIR`: one report across several hosts or
//! configurations (a laptop and a server, KVM and TCG). Every column is named
//! `<env>@<host>` (or `@<folder name>` when two runs share a host), and each
//! column's overhead is taken against the native run of the same host or
//! configuration.

use std::path::{Path, PathBuf};

use serde_json::json;

use super::{ReportError, RunDir};

/// The suffix naming each run: hostnames when they differ, else folder names.
fn suffixes(runs: &[RunDir]) -> Result<Vec<String>, ReportError> {
    let hosts: Vec<String> = runs
        .iter()
        .map(|r| r.run_json().map(|v| v.pointer("/host/hostname").and_then(|h| h.as_str()).unwrap_or("host").to_string()))
        .collect::<Result<_, _>>()?;
    let distinct = hosts.iter().collect::<std::collections::BTreeSet<_>>().len() == hosts.len();
    Ok(if distinct {
        hosts
    } else {
        runs.iter().map(|r| r.path.file_name().map_or_else(|| "run".into(), |n| n.to_string_lossy().into_owned())).collect()
    })
}

/// Merges the results folders `runs` into `out` and renders its report.
/// Returns the path of report.md.
pub fn merge(runs: &[PathBuf], out: &Path) -> Result<PathBuf, ReportError> {
    let dirs: Vec<RunDir> = runs.iter().map(|p| RunDir { path: p.clone() }).collect();
    let names = suffixes(&dirs)?;
    let out = RunDir::at(out)?;
    let mut sources = Vec::new();
    for (dir, name) in dirs.iter().zip(&names) {
        for mut m in dir.measurements()? {
            m.env = format!("{}@{name}", m.env);
            m.env_label = format!("{} @ {name}", m.env_label);
            out.save(&m)?;
        }
        let run = dir.run_json()?;
        sources.push(json!({
            "name": name,
            "dir": dir.path,
            "host": run.get("host"),
            "started_utc": run.get("started_utc"),
            "environments": run.get("environments"),
        }));
    }
    out.update_run_json(json!({ "merged_from": sources, "parameters": { "driver": "isobench merge" } }))?;
    out.render()
}
