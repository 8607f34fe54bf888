//! `isobench run`: the options become a [`Plan`] and the environments'
//! [`Options`], the runner measures into a results folder, and the outcome
//! becomes the exit status.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use anyhow::{Context as _, Result};
use isobench_harness::container::ContainerSettings;
use isobench_harness::env::{EnvKind, Options};
use isobench_harness::results::{Reuse, RunDir};
use isobench_harness::runner::{self, Plan};
use isobench_harness::storage::{RunData, StorageError};
use isobench_harness::vm::VmSettings;
use isobench_harness::workloads;

use crate::progress::Progress;
use crate::RunArgs;

/// Exit status when the run finished but some environment or metric could
/// not be measured (the results folder still holds everything else).
const EXIT_INCOMPLETE: u8 = 3;
/// Exit status after a signal stopped the run, results kept: 128 + the
/// signal's number, as a shell reports a process killed by it (130 for
/// Ctrl-C's SIGINT, 143 for SIGTERM).
const EXIT_SIGNAL_BASE: u8 = 128;

pub fn run(args: RunArgs) -> Result<ExitCode> {
    crate::command::check(&args.command)?;
    // A budget too short is refused before anything is made.
    let budget =
        args.budget.map(|b| isobench_harness::budget::plan(b, &with_native(args.envs.kinds().to_vec()), args.metrics.specs())).transpose()?;
    if args.vm_net.is_some() && !args.envs.contains(EnvKind::Vm) {
        eprintln!("isobench: note: --vm-net has no effect without the vm environment (--env)");
    }
    if let Some(packages) = &args.image_packages {
        if args.rootfs != isobench_harness::container::RootfsChoice::Distro {
            anyhow::bail!("--image-packages installs packages into the --rootfs debian image; add --rootfs debian");
        }
        // Read by every environment that prepares the image (container,
        // peers, the vm's root disk): set before any thread starts.
        std::env::set_var(isobench_harness::container::rootfs::distro::PACKAGES_ENV, packages);
    }
    let container_settings = ContainerSettings {
        namespaces: args.container_ns,
        limits: args.container_limits.limits(),
        cgroup: args.container_limits.cgroup(),
        rootfs: args.rootfs.clone(),
        profile: args.profile.profile,
        layers: None,
        overlay_upper: args.profile.overlay_upper,
    };
    // The signal's number, so the exit status and run.json can name it.
    let interrupted = Arc::new(AtomicUsize::new(0));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register_usize(sig, Arc::clone(&interrupted), sig as usize).context("installing the SIGINT and SIGTERM handlers")?;
    }
    isobench_harness::cleanup::sweep();
    let workloads = workloads::locate()?;
    let reuse = match (args.append, args.force) {
        (true, _) => Reuse::Append,
        (_, true) => Reuse::Force,
        _ => Reuse::Refuse,
    };
    // A --data-dir that is not a directory is refused before the results
    // folder is made (it would be left empty).
    if let Some(dir) = args.data_dir.as_deref().filter(|d| !d.is_dir()) {
        match args.command.commands.is_empty() {
            true => return Err(StorageError::NotADirectory(dir.display().to_string()).into()),
            false => {
                crate::command::data_dir(dir)?;
            }
        }
    }
    // Held until the run ends: a second run into the folder is refused.
    let (out, _lock) = match &args.out {
        Some(dir) => RunDir::claim(dir, reuse)?,
        None => RunDir::claim(&RunDir::create_in(&PathBuf::from("results"))?.path, Reuse::Refuse)?,
    };
    let vm = VmSettings {
        machine: Some(args.machine),
        boot: args.vm_boot,
        memory_mib: Some(args.vm_memory),
        cpus: Some(args.vm_cpus),
        require_kvm: args.require_kvm,
        net: args.vm_net,
    };
    // --command's data directory: the user's own, given as it is.
    let command_data = match (&args.data_dir, args.command.commands.is_empty()) {
        (Some(dir), false) => Some(crate::command::data_dir(dir)?),
        _ => None,
    };
    // The fs metrics' files: a directory of this run's own, removed with it
    // (and swept after a kill), on the results' file system unless told.
    let run_data = match args.command.commands.is_empty() && args.metrics.specs().iter().any(|m| m.needs_data_dir()) {
        true => {
            let base = args.data_dir.clone().unwrap_or_else(|| out.path.parent().map_or_else(|| PathBuf::from("."), PathBuf::from));
            Some(RunData::create(&base)?)
        }
        false => None,
    };
    let opts = Options {
        data_dir: run_data.as_ref().map(|d| d.path().to_path_buf()),
        command_data,
        container_storage: args.container_storage,
        vm_storage: args.vm_storage,
        accel: args.accel,
        log_dir: Some(out.path.clone()),
        container: container_settings,
        vm,
        gvisor_platform: args.gvisor_platform,
        ..Options::new(workloads)
    };
    let plan = Plan {
        envs: with_native(args.envs.into_kinds()),
        metrics: args.metrics.into_specs(),
        quick: args.quick,
        iterations: args.iterations,
        max_ms: args.max_ms,
        pin: args.pin,
        budget,
    };
    // Other runs measuring at the same time name this one, and it them.
    let _registration = isobench_harness::registry::register("isobench run", Some(&out.path));
    if !args.quiet {
        eprintln!("isobench: writing {}", out.path.display());
    }
    let mut display = Progress::new(args.quiet);
    if !args.command.commands.is_empty() {
        let outcome = crate::command::run(&args.command, plan.envs.clone(), &opts, &out, &interrupted, &mut display)?;
        if let Some(report) = &outcome.report {
            eprintln!("isobench: report: {}", report.display());
        }
        if outcome.interrupted {
            let n = interrupted.load(Ordering::SeqCst);
            let by = runner::signal_name(n).map(|s| format!(" by {s}")).unwrap_or_default();
            eprintln!("isobench: interrupted{by}; the runs so far kept in {}", out.path.display());
            return Ok(ExitCode::from(EXIT_SIGNAL_BASE.saturating_add(u8::try_from(n).unwrap_or(0))));
        }
        if !outcome.problems.is_empty() {
            eprintln!(
                "isobench: incomplete: {} command × environment pair(s) failed or not measured; the rest is in {}",
                outcome.problems.len(),
                out.path.display()
            );
            return Ok(ExitCode::from(EXIT_INCOMPLETE));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let outcome = runner::execute(&plan, &opts, &out, &interrupted, &mut |ev| display.show(ev))?;
    display.finish();
    drop(run_data);
    if args.json {
        println!("{}", std::fs::read_to_string(out.path.join("summary.json")).context("reading summary.json")?.trim());
    } else if let Some(report) = &outcome.report {
        println!("{}", report.display());
    }
    if outcome.interrupted {
        let n = interrupted.load(Ordering::SeqCst);
        let by = runner::signal_name(n).map(|s| format!(" by {s}")).unwrap_or_default();
        eprintln!("isobench: interrupted{by}; {} measurement(s) kept in {}", outcome.measured, out.path.display());
        return Ok(ExitCode::from(EXIT_SIGNAL_BASE.saturating_add(u8::try_from(n).unwrap_or(0))));
    }
    if !outcome.skipped.is_empty() || !outcome.failed.is_empty() {
        eprintln!(
            "isobench: incomplete: {} skipped environment(s), {} failed measurement(s), {} not measured (no boundary, or not supported there); the rest is in {}",
            outcome.skipped.len(),
            outcome.failed.len(),
            outcome.not_measured.len(),
            out.path.display()
        );
        return Ok(ExitCode::from(EXIT_INCOMPLETE));
    }
    Ok(ExitCode::SUCCESS)
}

/// `envs` with `native` first when it lacks it: every overhead ratio is
/// taken against native, so a run without it would have none.
fn with_native(mut envs: Vec<EnvKind>) -> Vec<EnvKind> {
    if !envs.is_empty() && !envs.contains(&EnvKind::Native) {
        eprintln!("isobench: note: native added to the environments: every overhead ratio is taken against it");
        envs.insert(0, EnvKind::Native);
    }
    envs
}
