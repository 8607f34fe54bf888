//! `isobench density`: the glue from the command line to
//! [`isobench_harness::density::measure`], its progress (a bar per storm on
//! a terminal, a line per storm otherwise), the table, and the results folder.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use isobench_harness::density::{self, DensityPlan, Event};
use isobench_harness::env::Options;
use isobench_harness::report::section::density::table;
use isobench_harness::results::RunDir;
use isobench_harness::{runner, workloads};

use crate::DensityArgs;

/// Exit status after a signal: 128 + its number, as a shell reports it.
const EXIT_SIGNAL_BASE: u8 = 128;

pub fn density(args: DensityArgs) -> Result<ExitCode> {
    let interrupted = Arc::new(AtomicUsize::new(0));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register_usize(sig, Arc::clone(&interrupted), sig as usize).context("installing the SIGINT and SIGTERM handlers")?;
    }
    isobench_harness::cleanup::sweep();
    let plan = DensityPlan {
        envs: args.envs.into_kinds(),
        instances: args.instances,
        concurrency: args.concurrency,
        vm_instances: args.vm_instances,
        vm_concurrency: args.vm_concurrency,
        min_available_mib: args.min_available,
        idle_window: Duration::from_millis(args.idle_window),
    };
    plan.check()?;
    let workloads = workloads::locate()?;
    let out = match &args.out {
        Some(dir) => RunDir::at(dir)?,
        None => RunDir::create_in(&PathBuf::from("results"))?,
    };
    let _registration = isobench_harness::registry::register("isobench density", Some(&out.path));
    runner::record_host_beside(&out, "isobench density")?;
    let opts = Options { accel: args.accel, log_dir: Some(out.path.clone()), ..Options::new(workloads) };
    if !args.quiet {
        eprintln!("isobench: writing {}", out.path.display());
    }
    let bar = Mutex::new(None::<indicatif::ProgressBar>);
    let quiet = args.quiet;
    let on = |ev: Event<'_>| {
        use std::io::IsTerminal;
        let mut bar = bar.lock().unwrap_or_else(|e| e.into_inner());
        match ev {
            Event::Storm { label, requested, concurrency } if !quiet && std::io::stderr().is_terminal() => {
                let b = indicatif::ProgressBar::new(u64::from(requested));
                b.set_style(
                    indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} [{elapsed_precise}, ETA {eta}] {msg}").expect("a valid template"),
                );
                b.set_message(format!("{label}, C={concurrency}"));
                *bar = Some(b);
            }
            Event::Storm { label, requested, concurrency } if !quiet => eprintln!("isobench: {label}: {requested} starts, {concurrency} at once"),
            Event::Started { ready, failed, .. } => {
                if let Some(b) = bar.as_ref() {
                    b.set_position(u64::from(ready + failed));
                }
            }
            Event::Note(line) => match bar.take() {
                Some(b) => {
                    b.finish_and_clear();
                    eprintln!("isobench: {line}");
                }
                None if !quiet || line.contains("skipped") => eprintln!("isobench: {line}"),
                None => {}
            },
            _ => {}
        }
    };
    let run = density::measure(&plan, &opts, &interrupted, &on)?;
    if let Some(b) = bar.lock().unwrap_or_else(|e| e.into_inner()).take() {
        b.finish_and_clear();
    }
    // Saved before anything else can fail: measured results are never lost.
    out.save_density(&run)?;
    let text = table(&run);
    if args.json {
        eprint!("{text}");
        println!("{}", serde_json::to_string_pretty(&run)?);
    } else if !args.quiet {
        eprint!("{text}");
    }
    let report = isobench_harness::report::render(&out)?;
    if !args.json {
        println!("{}", report.display());
    }
    if run.interrupted {
        let n = interrupted.load(Ordering::SeqCst);
        let by = runner::signal_name(n).map(|s| format!(" by {s}")).unwrap_or_default();
        eprintln!("isobench: interrupted{by}; every instance started was stopped; what was measured is in {}", out.path.display());
        return Ok(ExitCode::from(EXIT_SIGNAL_BASE.saturating_add(u8::try_from(n).unwrap_or(0))));
    }
    Ok(ExitCode::SUCCESS)
}
