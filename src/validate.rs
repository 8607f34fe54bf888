//! `isobench validate`: isobench's native figures beside perf bench, iperf3,
//! hyperfine and fio, printed as a table and optionally saved.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use isobench_harness::env::{EnvKind, Options};
use isobench_harness::results::RunDir;
use isobench_harness::storage::RunData;
use isobench_harness::workloads;

pub fn validate(quick: bool, out: Option<PathBuf>, data_dir: Option<PathBuf>) -> Result<ExitCode> {
    let workloads = workloads::locate()?;
    let _registration = isobench_harness::registry::register("isobench validate", out.as_deref());
    let noop = workloads.noop.clone();
    // fio's and the fs metrics' files: a directory of this command's own (swept
    // after a kill), on the results' file system unless told, as `isobench run`.
    // The results folder is made first, so that its parent exists.
    let run = out.as_deref().map(RunDir::at).transpose()?;
    let base = data_dir.unwrap_or_else(|| out.as_deref().and_then(|o| o.parent()).map_or_else(|| PathBuf::from("."), PathBuf::from));
    let base = if base.as_os_str().is_empty() { PathBuf::from(".") } else { base };
    let run_data = RunData::create(&base)?;
    let mut native = isobench_harness::env::prepare(EnvKind::Native, &Options::new(workloads))?;
    let mut inst = native.start()?;
    eprintln!(
        "isobench: validating against independent tools (perf bench, iperf3, hyperfine, fio in {}){}",
        run_data.path().display(),
        if quick { ", quick" } else { "" }
    );
    let mut checks = isobench_harness::validate::run(inst.agent(), &noop, quick);
    checks.extend(isobench_harness::validate::storage(inst.agent(), run_data.path(), quick));
    let mut hosts = isobench_harness::boundary::HostSides::new(&workloads::locate()?);
    checks.extend(isobench_harness::validate::apps(inst.as_mut(), &mut hosts, quick));
    drop(hosts);
    inst.shutdown()?;
    print!("{}", isobench_harness::report::section::cross_check::table(&checks));
    drop(run_data);
    if let Some(run) = run {
        isobench_harness::runner::record_host_beside(&run, "isobench validate")?;
        run.save_validation(&checks)?;
        println!("{}", isobench_harness::report::render(&run)?.display());
    }
    Ok(ExitCode::SUCCESS)
}
