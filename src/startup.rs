//! `isobench startup`: env.start of isobench's launcher beside the peers
//! (or per namespace), printed as a table (or, with `--json`, each column's
//! statistics as JSON) and optionally saved.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context as _, Result};
use isobench_harness::collect::interference::Probe;
use isobench_harness::env::Options;
use isobench_harness::results::{RunDir, StartupRun};
use isobench_harness::startup;
use isobench_harness::workloads;

use crate::StartupArgs;

/// The file of `--samples`, refused before anything is measured when its
/// folder does not exist.
fn check_writable(path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        bail!("--samples {}: no folder {}", path.display(), dir.display());
    }
    Ok(())
}

pub fn startup(args: StartupArgs) -> Result<ExitCode> {
    let StartupArgs { n, envs: columns, json, samples, out, per_namespace, ns: namespaces, noop, profile, gvisor_platform } = args;
    if let Some(path) = &samples {
        check_writable(path)?;
    }
    isobench_harness::cleanup::sweep();
    let _registration = isobench_harness::registry::register("isobench startup", out.as_deref());
    let mut opts = Options::new(workloads::locate()?);
    opts.container.namespaces = namespaces;
    opts.container.profile = profile.profile;
    opts.gvisor_platform = gvisor_platform;
    opts.container.overlay_upper = profile.overlay_upper;
    // Host facts (rcu_expedited changes a network namespace's cost) as run
    // records them, taken before the measurement: its load average is the
    // machine's at the start, not this command's own.
    let out = match out {
        Some(dir) => {
            let dir = RunDir::at(&dir)?;
            isobench_harness::runner::record_host_beside(&dir, "isobench startup")?;
            Some(dir)
        }
        None => None,
    };
    let progress = &mut |line: &str| eprintln!("isobench: {line}");
    let probe = Probe::start();
    let mut run = match per_namespace {
        true => startup::per_namespace(&opts, noop, n, startup::DEFAULT_WARMUP, progress)?,
        false => startup::measure(&columns, &opts, noop, n, startup::DEFAULT_WARMUP, progress)?,
    };
    run.interference = probe.finish();
    let table = match per_namespace {
        true => isobench_harness::report::section::startup::per_namespace_table(&run),
        false => isobench_harness::report::section::startup::table(&run),
    };
    if let Some(note) = interference_note(&run) {
        eprintln!("isobench: {note}");
    }
    if json {
        // stdout carries the JSON alone; the table goes to stderr.
        eprint!("{table}");
        let base = if per_namespace { "none" } else { "isobench" };
        println!("{}", serde_json::to_string_pretty(&run.summary(base))?);
    } else {
        print!("{table}");
    }
    if let Some(path) = samples {
        std::fs::write(&path, serde_json::to_vec_pretty(&run)?).with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(dir) = out {
        match per_namespace {
            true => dir.save_startup_per_namespace(&run)?,
            false => dir.save_startup(&run)?,
        }
        let report = isobench_harness::report::render(&dir)?;
        if json {
            eprintln!("{}", report.display());
        } else {
            println!("{}", report.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One line when the rounds ran under interference.
fn interference_note(run: &StartupRun) -> Option<String> {
    let i = run.interference.as_ref().filter(|i| i.flagged())?;
    Some(format!("warning: measured under interference: {}", i.reasons().join("; ")))
}
