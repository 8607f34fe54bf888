//! `isobench validate`: isobench's native figures beside perf bench, iperf3
//! and hyperfine, printed as a table and optionally saved.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use isobench_harness::env::{EnvKind, Options};
use isobench_harness::results::RunDir;
use isobench_harness::workloads;

pub fn validate(quick: bool, out: Option<PathBuf>) -> Result<ExitCode> {
    let workloads = workloads::locate()?;
    let _registration = isobench_harness::registry::register("isobench validate", out.as_deref());
    let noop = workloads.noop.clone();
    let mut native = isobench_harness::env::prepare(EnvKind::Native, &Options::new(workloads))?;
    let mut inst = native.start()?;
    eprintln!("isobench: validating against independent tools (perf bench, iperf3, hyperfine){}", if quick { ", quick" } else { "" });
    let checks = isobench_harness::validate::run(inst.agent(), &noop, quick);
    inst.shutdown()?;
    print!("{}", isobench_harness::report::section::cross_check::table(&checks));
    if let Some(dir) = out {
        let run = RunDir::at(&dir)?;
        isobench_harness::runner::record_host_beside(&run, "isobench validate")?;
        run.save_validation(&checks)?;
        println!("{}", isobench_harness::report::render(&run)?.display());
    }
    Ok(ExitCode::SUCCESS)
}
