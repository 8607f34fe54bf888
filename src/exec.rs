//! `isobench exec`: a command in a new container, whose exit status becomes
//! isobench's.

use std::process::ExitCode;

use anyhow::Result;
use isobench_harness::container::{self, ExecOptions};
use isobench_harness::workloads;

use crate::ExecArgs;

pub fn exec(args: ExecArgs) -> Result<ExitCode> {
    // The binaries as built (no walk of the sources: the command is the
    // user's), and the start-of-run sweep once the command has started, in
    // this thread while the container runs: it only touches what dead
    // processes left, and a thread of its own cost a stack, a malloc arena
    // and their copy in the container's init. Without a container started
    // it runs after. The README's "Container start" says what an exec costs.
    let workloads = workloads::locate_built()?;
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
    let mut swept = false;
    let result = container::exec_beside(&opts, &workloads, || {
        isobench_harness::cleanup::sweep();
        swept = true;
    });
    if !swept {
        isobench_harness::cleanup::sweep();
    }
    match result {
        Ok(status) => {
            // Everything this exec made is gone (the container reaped, its
            // cgroup, namespaces and temp dirs removed): the next start
            // need not sweep for it.
            isobench_harness::leftovers::unmark_owner();
            Ok(ExitCode::from(status.clamp(0, 255) as u8))
        }
        Err(e) => {
            eprintln!("isobench exec: {e}");
            Ok(ExitCode::from(e.exit_status().clamp(0, 255) as u8))
        }
    }
}
