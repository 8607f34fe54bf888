//! `isobench startup`: env.start of isobench's launcher beside the peers
//! (or per namespace), printed as a table and optionally saved.

use std::process::ExitCode;

use anyhow::{Context as _, Result};
use isobench_harness::env::Options;
use isobench_harness::results::RunDir;
use isobench_harness::startup;
use isobench_harness::workloads;

use crate::StartupArgs;

pub fn startup(args: StartupArgs) -> Result<ExitCode> {
    let StartupArgs { n, envs: columns, json, out, per_namespace, ns: namespaces, noop, profile } = args;
    isobench_harness::cleanup::sweep();
    let mut opts = Options::new(workloads::locate()?);
    opts.container.namespaces = namespaces;
    opts.container.profile = profile.profile;
    if per_namespace {
        let run = startup::per_namespace(&opts, noop, n, startup::DEFAULT_WARMUP, &mut |line| eprintln!("isobench: {line}"))?;
        print!("{}", isobench_harness::report::section::startup::per_namespace_table(&run));
        if let Some(path) = json {
            std::fs::write(&path, serde_json::to_vec_pretty(&run)?).with_context(|| format!("writing {}", path.display()))?;
        }
        if let Some(dir) = out {
            let dir = RunDir::at(&dir)?;
            dir.save_startup_per_namespace(&run)?;
            println!("{}", isobench_harness::report::render(&dir)?.display());
        }
        return Ok(ExitCode::SUCCESS);
    }
    let run = startup::measure(&columns, &opts, noop, n, startup::DEFAULT_WARMUP, &mut |line| eprintln!("isobench: {line}"))?;
    print!("{}", isobench_harness::report::section::startup::table(&run));
    if let Some(path) = json {
        std::fs::write(&path, serde_json::to_vec_pretty(&run)?).with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(dir) = out {
        let dir = RunDir::at(&dir)?;
        dir.save_startup(&run)?;
        println!("{}", isobench_harness::report::render(&dir)?.display());
    }
    Ok(ExitCode::SUCCESS)
}
