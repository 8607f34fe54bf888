//! `isobench layers`: the glue from the command line to
//! [`isobench_harness::layers::measure`], the table, and the results folder.

use std::process::ExitCode;

use anyhow::Result;
use isobench_harness::env::Options;
use isobench_harness::layers::{self, LayersPlan};
use isobench_harness::report::section::layers::table;
use isobench_harness::results::RunDir;

use isobench_harness::workloads;

use crate::LayersArgs;

pub fn layers(args: LayersArgs) -> Result<ExitCode> {
    isobench_harness::cleanup::sweep();
    let _registration = isobench_harness::registry::register("isobench layers", args.out.as_deref());
    let mut opts = Options::new(workloads::locate()?);
    opts.container.overlay_upper = args.overlay_upper;
    // Host facts before the measurement, as startup and run record them.
    let out = match &args.out {
        Some(dir) => {
            let dir = RunDir::at(dir)?;
            isobench_harness::runner::record_host_beside(&dir, "isobench layers")?;
            Some(dir)
        }
        None => None,
    };
    let metrics = args.metrics.map_or_else(layers::default_metrics, |m| m.into_specs());
    let plan = LayersPlan { metrics, rounds: args.rounds, quick: args.quick, max_ms: args.max_ms };
    let run = layers::measure(&plan, &opts, &mut |line| eprintln!("isobench: {line}"))?;
    let text = table(&run);
    if args.json {
        eprint!("{text}");
        println!("{}", serde_json::to_string_pretty(&run)?);
    } else {
        print!("{text}");
    }
    if let Some(dir) = out {
        dir.save_layers(&run)?;
        let report = isobench_harness::report::render(&dir)?;
        eprintln!("isobench: {}", report.display());
    }
    Ok(ExitCode::SUCCESS)
}
