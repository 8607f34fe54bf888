//! System call cost. `syscall.getpid` issues the raw `getpid` system call
//! (the `syscall` instruction through libc's generic `syscall()`), so neither
//! a libc PID cache nor the vDSO can answer it: the figure is one user→kernel
//! →user transition. Follows lmbench's lat_syscall "null" and
//! `perf bench syscall basic`.

use crate::catalog::MetricSpec;
use crate::protocol::{RunRequest, RunResult};

use super::{time_loop, MetricError};

#[inline(always)]
fn raw_getpid() -> libc::c_long {
    // SAFETY: SYS_getpid takes no arguments, touches no memory and cannot fail.
    unsafe { libc::syscall(libc::SYS_getpid) }
}

pub fn getpid(spec: &'static MetricSpec, req: &RunRequest) -> Result<RunResult, MetricError> {
    time_loop(spec, req, || {
        std::hint::black_box(raw_getpid());
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn raw_getpid_is_our_pid() {
        assert_eq!(super::raw_getpid() as u32, std::process::id());
    }
}
