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
///
/// `out` must be new (or an empty folder) and no input may be or hold it
/// (nor it an input): a merge never writes into one of its inputs. The
/// merge is built in a temporary folder beside `out`, pid-stamped
/// ([`crate::leftovers`]), and renamed into place once complete, so a
/// failed merge leaves nothing.
pub fn merge(runs: &[PathBuf], out: &Path) -> Result<PathBuf, ReportError> {
    let out_abs = std::path::absolute(out).map_err(|source| ReportError::Io { path: out.to_path_buf(), source })?;
    for r in runs {
        let input = r.canonicalize().map_err(|source| ReportError::Io { path: r.clone(), source })?;
        let target = out_abs.canonicalize().unwrap_or_else(|_| out_abs.clone());
        if target.starts_with(&input) || input.starts_with(&target) {
            return Err(ReportError::MergeInto { out: out.to_path_buf(), input: r.clone() });
        }
    }
    if std::fs::read_dir(out).is_ok_and(|mut d| d.next().is_some()) {
        return Err(ReportError::MergeOver { out: out.to_path_buf() });
    }
    let parent = out_abs.parent().unwrap_or(Path::new("/"));
    std::fs::create_dir_all(parent).map_err(|source| ReportError::Io { path: parent.to_path_buf(), source })?;
    // What a killed merge left beside it.
    crate::leftovers::sweep(parent, merge_owner, |e| std::fs::remove_dir_all(e.path()).is_ok());
    let tmp = tempfile::Builder::new()
        .prefix(&crate::leftovers::temp_prefix(MERGE_TEMP))
        .tempdir_in(parent)
        .map_err(|source| ReportError::Io { path: parent.to_path_buf(), source })?;
    build(runs, &RunDir::at(tmp.path())?)?;
    // An empty `out` is replaced by rename(2) as a whole.
    let tmp = tmp.keep();
    if let Err(source) = std::fs::rename(&tmp, out) {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(ReportError::Io { path: out.to_path_buf(), source });
    }
    Ok(out.join("report.md"))
}

/// What the temporary folders of merges are called after the pid.
const MERGE_TEMP: &str = "merge";

/// The owner pid of a merge's temporary folder.
fn merge_owner(name: &str) -> Option<i32> {
    crate::leftovers::owner(name).filter(|(_, rest)| rest.starts_with(MERGE_TEMP)).map(|(pid, _)| pid)
}

/// Writes the merge of `runs` into `out` and renders it.
fn build(runs: &[PathBuf], out: &RunDir) -> Result<PathBuf, ReportError> {
    let runs: Vec<(RunDir, RunRecord)> = runs
        .iter()
        .map(|p| {
            let dir = RunDir { path: p.clone() };
            dir.run_record().map(|r| (dir, r))
        })
        .collect::<Result<_, _>>()?;
    let names = suffixes(&runs);
    // One smoke run among the inputs makes the merge one: no significance marks.
    let quick = runs.iter().any(|(_, r)| r.parameters.as_ref().and_then(|p| p.quick) == Some(true));
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
        if quick {
            r.parameters_mut().quick = Some(true);
        }
    })?;
    super::render(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::Measurement;
    use isobench_workloads::catalog;

    fn run_folder(path: &Path) -> PathBuf {
        let dir = RunDir::at(path).unwrap();
        let mut m = Measurement::new("native", "native", catalog::lookup("syscall.getpid").unwrap());
        m.histogram.record(100).unwrap();
        dir.save(&m).unwrap();
        path.to_path_buf()
    }

    fn listing(p: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(p).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        v.sort();
        v
    }

    #[test]
    fn a_merge_never_writes_into_an_input() {
        let d = tempfile::tempdir().unwrap();
        let (a, b) = (run_folder(&d.path().join("a")), run_folder(&d.path().join("b")));
        let before = listing(&a);
        for out in [a.clone(), a.join("merged"), d.path().to_path_buf()] {
            let e = merge(&[a.clone(), b.clone()], &out).unwrap_err();
            assert!(matches!(e, ReportError::MergeInto { .. }), "{e}");
        }
        assert_eq!(listing(&a), before, "the input is untouched");
        let e = merge(&[a.clone(), b.clone()], &b.join("histograms")).unwrap_err();
        assert!(matches!(e, ReportError::MergeInto { .. }), "{e}");
    }

    #[test]
    fn a_merge_appears_whole_or_not_at_all() {
        let d = tempfile::tempdir().unwrap();
        let (a, b) = (run_folder(&d.path().join("a")), run_folder(&d.path().join("b")));
        // An input whose histogram is gone fails the merge half-way.
        std::fs::remove_dir_all(b.join("histograms")).unwrap();
        let out = d.path().join("merged");
        merge(&[a.clone(), b.clone()], &out).unwrap_err();
        assert!(!out.exists(), "a failed merge leaves no folder");
        assert_eq!(listing(d.path()), ["a", "b"], "nor its temporary folder");
        let b = run_folder(&d.path().join("b"));
        std::fs::create_dir(&out).unwrap();
        let report = merge(&[a, b], &out).unwrap();
        assert_eq!(report, out.join("report.md"));
        assert!(report.is_file() && out.join("measurements.json").is_file());
        assert_eq!(listing(d.path()), ["a", "b", "merged"]);
        let e = merge(&[d.path().join("a"), d.path().join("b")], &out).unwrap_err();
        assert!(matches!(e, ReportError::MergeOver { .. }), "a folder that holds something is not merged over: {e}");
    }

    #[test]
    fn a_smoke_input_makes_a_smoke_merge_and_the_inputs_starts_stay() {
        let d = tempfile::tempdir().unwrap();
        let (a, b) = (run_folder(&d.path().join("a")), run_folder(&d.path().join("b")));
        for (p, quick) in [(&a, true), (&b, false)] {
            let dir = RunDir { path: p.clone() };
            dir.update_run(|r| {
                r.parameters_mut().quick = Some(quick);
                r.env_mut("container").start_ms = Some(if quick { 12.5 } else { 25.0 });
            })
            .unwrap();
            let mut m = Measurement::new("container", "container", catalog::lookup("syscall.getpid").unwrap());
            m.histogram.record(150).unwrap();
            dir.save(&m).unwrap();
        }
        let out = d.path().join("merged");
        let md = std::fs::read_to_string(merge(&[a, b], &out).unwrap()).unwrap();
        assert_eq!(RunDir { path: out }.run_record().unwrap().parameters.unwrap().quick, Some(true));
        assert!(md.contains("**Smoke run (`--quick`) — do not quote.**"), "{md}");
        // Each input's container started as its own record says.
        assert!(md.contains("| container @ a | 12.5 |") && md.contains("| container @ b | 25.0 |"), "{md}");
    }
}
