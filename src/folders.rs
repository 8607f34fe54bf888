//! The commands over results folders that exist: `isobench report`
//! re-renders one, `isobench compare` judges one against a baseline,
//! `isobench merge` puts several into one report.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context as _, Result};
use isobench_harness::results::RunDir;

/// A results folder, or one clear error naming it.
fn results_folder(dir: &Path) -> Result<RunDir> {
    // An `isobench density` folder has its record and no measurements.
    let density_only = dir.join(isobench_harness::results::density::DENSITY_FILE).is_file();
    if !dir.join("measurements.json").is_file() && !density_only {
        bail!("{} is not an isobench results folder (no measurements.json)", dir.display());
    }
    Ok(RunDir { path: dir.to_path_buf() })
}

/// A results folder whose run.json reads and whose run finished (unless
/// `allow_incomplete`), or one clear error naming it.
fn finished_folder(dir: &Path, allow_incomplete: bool) -> Result<RunDir> {
    let d = results_folder(dir)?;
    d.complete_run(allow_incomplete)?;
    Ok(d)
}

/// `isobench compare`: B against the baseline A, per environment × metric;
/// exit status 1 on a significant regression beyond `threshold`. With
/// `json`, stdout carries the [`Comparison`] alone.
pub fn compare(
    a: &Path,
    b: &Path,
    threshold: f64,
    noise: Option<f64>,
    markdown: Option<PathBuf>,
    json: bool,
    allow_incomplete: bool,
) -> Result<ExitCode> {
    use isobench_harness::report::compare::{self, Comparison};
    let (ra, rb) = (finished_folder(a, allow_incomplete)?, finished_folder(b, allow_incomplete)?);
    let mut changes = compare::compare(&isobench_harness::report::measurements(&ra)?, &isobench_harness::report::measurements(&rb)?, noise);
    if changes.is_empty() {
        bail!("{} and {} have no environment × metric in common", a.display(), b.display());
    }
    let name = |p: &Path| p.file_name().map_or_else(|| p.display().to_string(), |n| n.to_string_lossy().into_owned());
    let mut overheads =
        compare::compare_overheads(&isobench_harness::report::measurements(&ra)?, &isobench_harness::report::measurements(&rb)?, noise);
    let mut warnings = Vec::new();
    let quick = |r: &RunDir| r.run_record().ok().and_then(|v| v.parameters?.quick);
    if let (Some(qa), Some(qb)) = (quick(&ra), quick(&rb)) {
        if qa != qb {
            warnings.push("one run used --quick and the other did not; their iteration counts and warm-ups differ".to_string());
        }
    }
    // Loops timed by the host (runsc) have no histogram to judge: named, not dropped.
    warnings.extend(compare::host_timed_notes(&ra.run_record()?, &rb.run_record()?));
    if quick(&ra) == Some(true) || quick(&rb) == Some(true) {
        warnings.push("a smoke run (--quick) is compared: its figures are not measurements to judge; no change is called a regression or an improvement, and nothing fails".to_string());
        compare::not_judged(&mut changes, &mut overheads);
    }
    let table = compare::table(&changes, &name(a), &name(b));
    let overhead_table = compare::overhead_table(&overheads, &name(a), &name(b));
    let bad: Vec<String> = compare::regressions(&changes, threshold).iter().map(|c| format!("{} {}", c.env, c.metric)).collect();
    if json {
        let comparison = Comparison {
            a: a.to_path_buf(),
            b: b.to_path_buf(),
            noise,
            threshold,
            regressions: bad.clone(),
            warnings: warnings.clone(),
            changes: changes.clone(),
            overhead_changes: overheads.clone(),
        };
        println!("{}", serde_json::to_string_pretty(&comparison)?);
    } else {
        print!("{table}");
        if !overheads.is_empty() {
            print!("\nOverhead against each run's own native (what isolation costs), A → B:\n\n{overhead_table}");
        }
        let noise_words = match noise {
            Some(n) => format!("{:.0} % (--noise)", n * 100.0),
            None => format!("the row's noise threshold ({})", isobench_harness::report::noise::SOURCE),
        };
        println!(
            "\nregressed/improved: the 95 % confidence intervals of the medians do not overlap and the change exceeds {noise_words}; \
             within noise: intervals apart but the change is smaller; no change: the intervals overlap. \
             Only regressions beyond --threshold ({:.0} %) of the absolute figures fail the comparison; \
             the overheads are judged the same way, on their own 95 % intervals, and reported.",
            threshold * 100.0
        );
    }
    for w in &warnings {
        eprintln!("isobench compare: warning: {w}");
    }
    if let Some(file) = markdown {
        let text = match overheads.is_empty() {
            true => table.clone(),
            false => format!("{table}\n{overhead_table}"),
        };
        std::fs::write(&file, text).with_context(|| format!("writing {}", file.display()))?;
    }
    if bad.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        let list: Vec<String> = compare::regressions(&changes, threshold).iter().map(|c| format!("{} {} {:.2}×", c.env, c.metric, c.ratio)).collect();
        eprintln!("isobench compare: {} significant regression(s) beyond {:.0} %: {}", bad.len(), threshold * 100.0, list.join(", "));
        Ok(ExitCode::from(1))
    }
}

/// `isobench report`: re-renders `dir`'s summary, plots and report.
pub fn report(dir: &Path) -> Result<ExitCode> {
    let report = isobench_harness::report::render(&results_folder(dir)?)?;
    println!("{}", report.display());
    Ok(ExitCode::SUCCESS)
}

/// `isobench merge`: `runs` into one results folder `out`.
pub fn merge(runs: &[PathBuf], out: &Path, allow_incomplete: bool) -> Result<ExitCode> {
    for r in runs {
        finished_folder(r, allow_incomplete)?;
    }
    let report = isobench_harness::report::merge::merge(runs, out)?;
    println!("{}", report.display());
    Ok(ExitCode::SUCCESS)
}
