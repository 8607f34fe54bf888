//! `isobench exec`: a command in a new container, whose exit status becomes
//! isobench's.

use std::process::ExitCode;

use anyhow::Result;
use isobench_harness::container::{self, ExecOptions};
use isobench_harness::workloads;

use crate::ExecArgs;

pub fn exec(args: ExecArgs) -> Result<ExitCode> {
    // The binaries as built (no walk of the sources: the command is the
    // user's), and the start-of-run sweep beside the launch rather than
    // before it: it only touches what dead processes left, and it is joined
    // before isobench exits. The README's "Container start" says what an
    // exec costs.
    let workloads = workloads::locate_built()?;
    let sweep = std::thread::spawn(isobench_harness::cleanup::sweep);
    let opts = ExecOptions {
        namespaces: args.namespaces,
        rootfs: args.rootfs,
        command: args.command,
        hostname: args.hostname,
        limits: args.limits.limits(),
        cgroup: args.limits.cgroup(),
        show_ns: args.show_ns,
        net: args.net,
        profile: args.profile.profile,
        overlay_upper: args.profile.overlay_upper,
        stop_timeout: std::time::Duration::from_secs(args.stop_timeout),
    };
    let result = container::exec(&opts, &workloads);
    let _ = sweep.join();
    match result {
        Ok(status) => Ok(ExitCode::from(status.clamp(0, 255) as u8)),
        Err(e) => {
            eprintln!("isobench exec: {e}");
            Ok(ExitCode::from(e.exit_status().clamp(0, 255) as u8))
        }
    }
}
