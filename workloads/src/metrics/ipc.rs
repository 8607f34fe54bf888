//! Inter-process communication cost between two processes.
//!
//! `ipc.pipe_rtt`: the parent writes one byte into a pipe, a forked echo
//! process reads it and writes one byte back on a second pipe, the parent
//! reads it: one closed-loop round trip, two context switches when both
//! processes share a CPU. Follows lmbench's lat_pipe and
//! `perf bench sched pipe`. `ipc.unix_rtt` does the same over an AF_UNIX
//! stream socketpair (lmbench lat_unix), `ipc.eventfd_rtt` over two eventfds
//! (8-byte counter writes and reads).
//!
//! `ipc.pipe_bw` and `ipc.unix_bw`: a forked writer sends 64 KiB writes as
//! fast as it can; the agent times reading 64 KiB at a time (lmbench bw_pipe
//! and bw_unix, which also move 64 KiB chunks).
//!
//! The echo or writer process is forked through [`Placement::spawn_peer`]:
//! on the measuring thread's CPU (`same`), on another CPU (`split`), or
//! wherever the scheduler puts it (`none`).

use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use nix::sys::wait::waitpid;
use nix::unistd::{pipe, ForkResult, Pid};

use crate::catalog::MetricSpec;
use crate::protocol::{RunRequest, RunResult};

use super::{time_loop, MetricError, Placement};

/// A forked process that echoes every byte it reads on `rx` back on `tx`
/// and exits when `rx` reaches end of file. Dropping it closes nothing: the
/// caller closes its write end, then calls [`Echo::wait`].
pub(crate) struct Echo {
    pid: Pid,
}

impl Echo {
    /// Forks the echo process on the peer CPU of `place`. `close_in_child`
    /// are the caller's ends, which the child must close so that end-of-file
    /// can reach it.
    pub(crate) fn spawn(
        rx: RawFd,
        tx: RawFd,
        close_in_child: &[RawFd],
        msg: usize,
        metric: &'static str,
        place: &Placement,
    ) -> Result<Echo, MetricError> {
        let msg = msg.min(8);
        // SAFETY: the child only calls close, read, write and _exit, all
        // async-signal-safe, so forking a multi-threaded caller is sound
        // (fork_peer leaves the child's mask as it inherited it).
        match unsafe { place.fork_peer() } {
            Ok(ForkResult::Child) => unsafe {
                for &fd in close_in_child {
                    libc::close(fd);
                }
                let mut b = [1u8, 0, 0, 0, 0, 0, 0, 0];
                loop {
                    if libc::read(rx, b.as_mut_ptr().cast(), msg) != msg as isize {
                        libc::_exit(0);
                    }
                    // an eventfd counter read back as 1
                    b[0] = 1;
                    if libc::write(tx, b.as_ptr().cast(), msg) != msg as isize {
                        libc::_exit(1);
                    }
                }
            },
            Ok(ForkResult::Parent { child }) => {
                #[cfg(test)]
                super::observe::peer_process(child.as_raw());
                Ok(Echo { pid: child })
            }
            Err(e) => Err(MetricError::Io { metric, context: "fork echo process", source: e.into() }),
        }
    }

    /// Reaps the echo process (after the caller closed its write end).
    pub(crate) fn wait(self) {
        let _ = waitpid(self.pid, None);
    }

    /// Kills and reaps the echo process (for channels without end of file).
    pub(crate) fn kill(self) {
        let _ = nix::sys::signal::kill(self.pid, nix::sys::signal::SIGKILL);
        let _ = waitpid(self.pid, None);
    }
}

fn io_err(metric: &'static str, context: &'static str) -> impl Fn(nix::Error) -> MetricError {
    move |e| MetricError::Io { metric, context, source: e.into() }
}

/// `msg` bytes out on `tx`, `msg` bytes back on `rx` (1 for pipes and
/// sockets, 8 for an eventfd counter whose value is 1).
#[inline(always)]
fn round_trip(tx: &OwnedFd, rx: &OwnedFd, msg: usize, metric: &'static str) -> Result<(), MetricError> {
    let mut b = [1u8, 0, 0, 0, 0, 0, 0, 0];
    if nix::unistd::write(tx, &b[..msg]).map_err(io_err(metric, "write"))? != msg {
        return Err(MetricError::Failed { metric, message: "short write".into() });
    }
    if nix::unistd::read(rx.as_raw_fd(), &mut b[..msg]).map_err(io_err(metric, "read"))? != msg {
        return Err(MetricError::Failed { metric, message: "echo process went away".into() });
    }
    Ok(())
}

pub fn pipe_rtt(spec: &'static MetricSpec, req: &RunRequest, place: &Placement) -> Result<RunResult, MetricError> {
    let m = spec.name;
    let (down_r, down_w) = pipe().map_err(io_err(m, "pipe"))?;
    let (up_r, up_w) = pipe().map_err(io_err(m, "pipe"))?;
    let echo = Echo::spawn(down_r.as_raw_fd(), up_w.as_raw_fd(), &[down_w.as_raw_fd(), up_r.as_raw_fd()], 1, m, place)?;
    drop(down_r);
    drop(up_w);
    let result = time_loop(spec, req, || round_trip(&down_w, &up_r, 1, m));
    drop(down_w);
    echo.wait();
    result
}

pub fn unix_rtt(spec: &'static MetricSpec, req: &RunRequest, place: &Placement) -> Result<RunResult, MetricError> {
    use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
    let m = spec.name;
    let (ours, theirs) = socketpair(AddressFamily::Unix, SockType::Stream, None, SockFlag::SOCK_CLOEXEC).map_err(io_err(m, "socketpair"))?;
    let echo = Echo::spawn(theirs.as_raw_fd(), theirs.as_raw_fd(), &[ours.as_raw_fd()], 1, m, place)?;
    drop(theirs);
    let result = time_loop(spec, req, || round_trip(&ours, &ours, 1, m));
    drop(ours);
    echo.wait();
    result
}

pub fn eventfd_rtt(spec: &'static MetricSpec, req: &RunRequest, place: &Placement) -> Result<RunResult, MetricError> {
    use nix::sys::eventfd::{EfdFlags, EventFd};
    let m = spec.name;
    let down = EventFd::from_flags(EfdFlags::EFD_CLOEXEC).map_err(io_err(m, "eventfd"))?;
    let up = EventFd::from_flags(EfdFlags::EFD_CLOEXEC).map_err(io_err(m, "eventfd"))?;
    let down: OwnedFd = down.into();
    let up: OwnedFd = up.into();
    // Both processes keep both eventfds (an eventfd has no end of file), so
    // the echo process is stopped with a signal instead.
    let echo = Echo::spawn(down.as_raw_fd(), up.as_raw_fd(), &[], 8, m, place)?;
    let result = time_loop(spec, req, || round_trip(&down, &up, 8, m));
    echo.kill();
    result
}

/// Chunk of the bandwidth metrics (lmbench's bw_pipe default).
pub const BW_CHUNK: usize = 64 * 1024;

/// A forked process that writes `BW_CHUNK`-byte chunks to `tx` until the
/// reader goes away (EPIPE; SIGPIPE is ignored in the agent and so here).
fn spawn_writer(tx: RawFd, close_in_child: &[RawFd], buf: &[u8], metric: &'static str, place: &Placement) -> Result<Echo, MetricError> {
    // SAFETY: the child only calls close, write and _exit on memory that
    // existed before the fork.
    match unsafe { place.fork_peer() } {
        Ok(ForkResult::Child) => unsafe {
            for &fd in close_in_child {
                libc::close(fd);
            }
            loop {
                let mut off = 0;
                while off < buf.len() {
                    let n = libc::write(tx, buf.as_ptr().add(off).cast(), buf.len() - off);
                    if n <= 0 {
                        libc::_exit(0);
                    }
                    off += n as usize;
                }
            }
        },
        Ok(ForkResult::Parent { child }) => {
            #[cfg(test)]
            super::observe::peer_process(child.as_raw());
            Ok(Echo { pid: child })
        }
        Err(e) => Err(MetricError::Io { metric, context: "fork writer process", source: e.into() }),
    }
}

/// Reads exactly one chunk from `rx`.
#[inline(always)]
fn read_chunk(rx: RawFd, buf: &mut [u8], metric: &'static str) -> Result<(), MetricError> {
    let mut off = 0;
    while off < buf.len() {
        match nix::unistd::read(rx, &mut buf[off..]) {
            Ok(0) => return Err(MetricError::Failed { metric, message: "writer process went away".into() }),
            Ok(n) => off += n,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(MetricError::Io { metric, context: "read", source: e.into() }),
        }
    }
    Ok(())
}

/// Times reading `BW_CHUNK` bytes per operation from a writer process on
/// the other end of `ours`/`theirs`.
fn bandwidth(spec: &'static MetricSpec, req: &RunRequest, rx: OwnedFd, tx: OwnedFd, place: &Placement) -> Result<RunResult, MetricError> {
    let m = spec.name;
    let out = vec![0x5au8; BW_CHUNK];
    let mut inb = vec![0u8; BW_CHUNK];
    let writer = spawn_writer(tx.as_raw_fd(), &[rx.as_raw_fd()], &out, m, place)?;
    drop(tx);
    let result = time_loop(spec, req, || read_chunk(rx.as_raw_fd(), &mut inb, m));
    // The writer sees EPIPE (or ECONNRESET) and exits.
    drop(rx);
    writer.wait();
    let r = result?;
    if inb.iter().any(|&b| b != 0x5a) {
        return Err(MetricError::Failed { metric: m, message: "bytes arrived corrupted".into() });
    }
    Ok(r)
}

pub fn pipe_bw(spec: &'static MetricSpec, req: &RunRequest, place: &Placement) -> Result<RunResult, MetricError> {
    let (rx, tx) = pipe().map_err(io_err(spec.name, "pipe"))?;
    bandwidth(spec, req, rx, tx, place)
}

pub fn unix_bw(spec: &'static MetricSpec, req: &RunRequest, place: &Placement) -> Result<RunResult, MetricError> {
    use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
    let (rx, tx) = socketpair(AddressFamily::Unix, SockType::Stream, None, SockFlag::SOCK_CLOEXEC).map_err(io_err(spec.name, "socketpair"))?;
    bandwidth(spec, req, rx, tx, place)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{catalog, hist};

    #[test]
    fn round_trips_between_two_processes_are_positive() {
        for (name, f) in [
            ("ipc.pipe_rtt", pipe_rtt as fn(&'static MetricSpec, &RunRequest, &Placement) -> Result<RunResult, MetricError>),
            ("ipc.unix_rtt", unix_rtt),
            ("ipc.eventfd_rtt", eventfd_rtt),
        ] {
            let spec = catalog::lookup(name).unwrap();
            let r = f(spec, &RunRequest { warmup: 10, ..RunRequest::new(spec.name, 200, 10_000) }, &Placement::UNPINNED).unwrap();
            assert_eq!(r.iterations, 200, "{name}");
            let h = hist::decode(&r.histogram).unwrap();
            assert_eq!(h.len(), 200, "{name}");
            // a round trip through the kernel and another process is > 100 ns
            assert!(h.min() > 100, "{name}: min {} ns", h.min());
        }
    }

    #[test]
    fn bandwidth_metrics_move_the_bytes_they_claim() {
        for (name, f) in
            [("ipc.pipe_bw", pipe_bw as fn(&'static MetricSpec, &RunRequest, &Placement) -> Result<RunResult, MetricError>), ("ipc.unix_bw", unix_bw)]
        {
            let spec = catalog::lookup(name).unwrap();
            let r = f(spec, &RunRequest { warmup: 16, ..RunRequest::new(spec.name, 320, 10_000) }, &Placement::UNPINNED).unwrap();
            assert_eq!(r.iterations, 320, "{name}");
            assert_eq!(r.bytes_per_op, BW_CHUNK as u64, "{name}");
            // 320 chunks of 64 KiB were read whole (read_chunk fails on a short stream)
            assert_eq!(hist::decode(&r.histogram).unwrap().len(), 20, "{name}");
            let gib_s = spec.unit.from_ns_per_op(r.elapsed_ns as f64 / r.iterations as f64, r.bytes_per_op);
            assert!(gib_s.is_finite() && gib_s > 0.0, "{name}: {gib_s}");
        }
    }
}
