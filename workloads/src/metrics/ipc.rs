//! Inter-process communication cost between two processes.
//!
//! `ipc.pipe_rtt`: the parent writes one byte into a pipe, a forked echo
//! process reads it and writes one byte back on a second pipe, the parent
//! reads it: one closed-loop round trip, two context switches when both
//! processes share a CPU. Follows lmbench's lat_pipe and
//! `perf bench sched pipe`.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use nix::sys::wait::waitpid;
use nix::unistd::{fork, pipe, ForkResult, Pid};

use crate::catalog::MetricSpec;
use crate::protocol::{RunRequest, RunResult};

use super::{time_loop, MetricError};

/// A forked process that echoes every byte it reads on `rx` back on `tx`
/// and exits when `rx` reaches end of file. Dropping it closes nothing: the
/// caller closes its write end, then calls [`Echo::wait`].
pub(crate) struct Echo {
    pid: Pid,
}

impl Echo {
    /// Forks the echo process. `close_in_child` are the caller's ends, which
    /// the child must close so that end-of-file can reach it.
    pub(crate) fn spawn(rx: RawFd, tx: RawFd, close_in_child: &[RawFd], metric: &'static str) -> Result<Echo, MetricError> {
        // SAFETY: the child only calls close, read, write and _exit, all
        // async-signal-safe, so forking a multi-threaded caller is sound.
        match unsafe { fork() } {
            Ok(ForkResult::Child) => unsafe {
                for &fd in close_in_child {
                    libc::close(fd);
                }
                let mut b = [0u8; 1];
                loop {
                    if libc::read(rx, b.as_mut_ptr().cast(), 1) != 1 {
                        libc::_exit(0);
                    }
                    if libc::write(tx, b.as_ptr().cast(), 1) != 1 {
                        libc::_exit(1);
                    }
                }
            },
            Ok(ForkResult::Parent { child }) => Ok(Echo { pid: child }),
            Err(e) => Err(MetricError::Io { metric, context: "fork echo process", source: e.into() }),
        }
    }

    /// Reaps the echo process (after the caller closed its write end).
    pub(crate) fn wait(self) {
        let _ = waitpid(self.pid, None);
    }
}

fn io_err(metric: &'static str, context: &'static str) -> impl Fn(nix::Error) -> MetricError {
    move |e| MetricError::Io { metric, context, source: e.into() }
}

/// One byte out on `tx`, one byte back on `rx`.
#[inline(always)]
fn round_trip(tx: &OwnedFd, rx: &OwnedFd, metric: &'static str) -> Result<(), MetricError> {
    let mut b = [0u8; 1];
    if nix::unistd::write(tx, &b).map_err(io_err(metric, "write"))? != 1 {
        return Err(MetricError::Failed { metric, message: "short write".into() });
    }
    if nix::unistd::read(rx.as_raw_fd(), &mut b).map_err(io_err(metric, "read"))? != 1 {
        return Err(MetricError::Failed { metric, message: "echo process went away".into() });
    }
    Ok(())
}

pub fn pipe_rtt(spec: &'static MetricSpec, req: &RunRequest) -> Result<RunResult, MetricError> {
    let m = spec.name;
    let (down_r, down_w) = pipe().map_err(io_err(m, "pipe"))?;
    let (up_r, up_w) = pipe().map_err(io_err(m, "pipe"))?;
    let echo = Echo::spawn(down_r.as_raw_fd(), up_w.as_raw_fd(), &[down_w.as_raw_fd(), up_r.as_raw_fd()], m)?;
    drop(down_r);
    drop(up_w);
    let result = time_loop(spec, req, || round_trip(&down_w, &up_r, m));
    drop(down_w);
    echo.wait();
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{catalog, hist};

    #[test]
    fn pipe_rtt_measures_positive_round_trips() {
        let spec = catalog::lookup("ipc.pipe_rtt").unwrap();
        let r = pipe_rtt(spec, &RunRequest { metric: spec.name.into(), iterations: 200, max_ms: 10_000, warmup: 10 }).unwrap();
        assert_eq!(r.iterations, 200);
        let h = hist::decode(&r.histogram).unwrap();
        assert_eq!(h.len(), 200);
        // a round trip through two pipes and another process is > 100 ns
        assert!(h.min() > 100, "min {} ns", h.min());
    }
}
