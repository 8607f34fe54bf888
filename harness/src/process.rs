//! Child processes isobench starts (agents, QEMU): each dies with isobench.
//!
//! `PR_SET_PDEATHSIG(SIGKILL)` is set between fork and exec, so a `kill -9`
//! of isobench takes its children with it and nothing outlives a run. The
//! signal fires when the *thread* that forked exits, which is why every
//! instance is started and shut down on the same thread.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};

/// Spawns `cmd` so that it is killed when the spawning thread exits.
pub fn spawn_agent(cmd: &mut Command) -> io::Result<Child> {
    // SAFETY: the closure runs between fork and exec and only calls prctl and
    // getppid, which are async-signal-safe; it allocates nothing.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died between fork and prctl.
            if libc::getppid() == 1 {
                return Err(io::Error::other("parent exited during spawn"));
            }
            Ok(())
        });
    }
    cmd.spawn()
}
