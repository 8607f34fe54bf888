//! Process and thread creation cost.
//!
//! - `spawn.fork_exit`: fork, the child `_exit(0)`s, waitpid (lmbench lat_proc fork).
//! - `spawn.fork_exec`: fork, execve of the static `noop` (no dynamic
//!   loader), waitpid (lmbench lat_proc exec, which also execs a static program).
//! - `spawn.posix_spawn`: the same program through posix_spawn(3), which glibc
//!   implements with clone(CLONE_VM|CLONE_VFORK): no page-table copy.
//! - `spawn.thread`: create and join an empty thread.
//!
//! Every argument vector is built before the clock starts: a forked child of
//! a multi-threaded process must not allocate.

use std::ffi::CString;
use std::ptr;

use crate::catalog::MetricSpec;
use crate::protocol::{RunRequest, RunResult};

use super::{time_loop, Context, MetricError};

fn last_os(metric: &'static str, context: &'static str) -> MetricError {
    MetricError::Io { metric, context, source: std::io::Error::last_os_error() }
}

/// Waits for `pid` and checks it exited 0.
fn reap(metric: &'static str, pid: libc::pid_t) -> Result<(), MetricError> {
    let mut status = 0;
    // SAFETY: status is a valid out-pointer; pid is our child.
    if unsafe { libc::waitpid(pid, &mut status, 0) } != pid {
        return Err(last_os(metric, "waitpid"));
    }
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        return Err(MetricError::Failed { metric, message: format!("child exited with wait status {status:#x}") });
    }
    Ok(())
}

fn check_noop(metric: &'static str, path: &CString) -> Result<(), MetricError> {
    if std::path::Path::new(path.to_str().unwrap_or("")).is_file() {
        Ok(())
    } else {
        Err(MetricError::Failed { metric, message: format!("noop binary {path:?} not found") })
    }
}

pub fn fork_exit(spec: &'static MetricSpec, req: &RunRequest) -> Result<RunResult, MetricError> {
    time_loop(spec, req, || {
        // SAFETY: the child calls only _exit.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            unsafe { libc::_exit(0) };
        }
        if pid < 0 {
            return Err(last_os(spec.name, "fork"));
        }
        reap(spec.name, pid)
    })
}

pub fn fork_exec(spec: &'static MetricSpec, req: &RunRequest, ctx: &Context) -> Result<RunResult, MetricError> {
    let m = spec.name;
    let path: &CString = &ctx.noop;
    check_noop(m, path)?;
    let argv: [*const libc::c_char; 2] = [path.as_ptr(), ptr::null()];
    let envp: [*const libc::c_char; 1] = [ptr::null()];
    time_loop(spec, req, || {
        // SAFETY: the child calls only execve and _exit (async-signal-safe)
        // on memory prepared before fork.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            unsafe {
                libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr());
                libc::_exit(127);
            }
        }
        if pid < 0 {
            return Err(last_os(m, "fork"));
        }
        reap(m, pid)
    })
}

pub fn posix_spawn(spec: &'static MetricSpec, req: &RunRequest, ctx: &Context) -> Result<RunResult, MetricError> {
    let m = spec.name;
    let path: &CString = &ctx.noop;
    check_noop(m, path)?;
    let argv: [*mut libc::c_char; 2] = [path.as_ptr().cast_mut(), ptr::null_mut()];
    let envp: [*mut libc::c_char; 1] = [ptr::null_mut()];
    time_loop(spec, req, || {
        let mut pid: libc::pid_t = 0;
        // SAFETY: path, argv and envp are NUL-terminated and outlive the
        // call; posix_spawn does not write through argv/envp.
        let rc = unsafe { libc::posix_spawn(&mut pid, path.as_ptr(), ptr::null(), ptr::null(), argv.as_ptr(), envp.as_ptr()) };
        if rc != 0 {
            return Err(MetricError::Io { metric: m, context: "posix_spawn", source: std::io::Error::from_raw_os_error(rc) });
        }
        reap(m, pid)
    })
}

pub fn thread(spec: &'static MetricSpec, req: &RunRequest) -> Result<RunResult, MetricError> {
    time_loop(spec, req, || {
        std::thread::Builder::new()
            .spawn(|| {})
            .map_err(|e| MetricError::Io { metric: spec.name, context: "thread spawn", source: e })?
            .join()
            .map_err(|_| MetricError::Failed { metric: spec.name, message: "empty thread panicked".into() })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{catalog, hist};

    fn req(spec: &MetricSpec, n: u64) -> RunRequest {
        RunRequest { warmup: 1, ..RunRequest::new(spec.name, n, 10_000) }
    }

    #[test]
    fn fork_exec_and_posix_spawn_of_true_and_of_a_missing_binary() {
        for name in ["spawn.fork_exec", "spawn.posix_spawn"] {
            let spec = catalog::lookup(name).unwrap();
            let f = if name == "spawn.fork_exec" { fork_exec } else { posix_spawn };
            let ctx = Context { noop: CString::new("/bin/true").unwrap() };
            let r = f(spec, &req(spec, 20), &ctx).unwrap();
            let h = hist::decode(&r.histogram).unwrap();
            assert_eq!(h.len(), 20);
            assert!(h.min() > 10_000, "{name}: spawning a program takes more than 10 µs, got {} ns", h.min());

            let ctx = Context { noop: CString::new("/nonexistent/noop").unwrap() };
            assert!(f(spec, &req(spec, 20), &ctx).unwrap_err().to_string().contains("not found"));
            // a program that fails is an error, not a fast sample
            let ctx = Context { noop: CString::new("/bin/false").unwrap() };
            assert!(f(spec, &req(spec, 20), &ctx).unwrap_err().to_string().contains("wait status"), "{name}");
        }
    }

    #[test]
    fn fork_exit_and_thread() {
        let spec = catalog::lookup("spawn.fork_exit").unwrap();
        let h = hist::decode(&fork_exit(spec, &req(spec, 30)).unwrap().histogram).unwrap();
        assert_eq!(h.len(), 30);
        assert!(h.min() > 1_000, "fork+exit+wait takes more than 1 µs, got {} ns", h.min());
        let spec = catalog::lookup("spawn.thread").unwrap();
        let h = hist::decode(&thread(spec, &req(spec, 30)).unwrap().histogram).unwrap();
        assert_eq!(h.len(), 30);
        assert!(h.min() > 500, "thread create+join takes more than 0.5 µs, got {} ns", h.min());
    }
}
