//! Process creation cost. `spawn.fork_exec`: fork, execve of the static
//! `noop` binary (no dynamic loader), waitpid for its exit, as lmbench's
//! lat_proc "exec" (which also execs a static program).

use std::ffi::CString;
use std::ptr;

use crate::catalog::MetricSpec;
use crate::protocol::{RunRequest, RunResult};

use super::{time_loop, Context, MetricError};

pub fn fork_exec(spec: &'static MetricSpec, req: &RunRequest, ctx: &Context) -> Result<RunResult, MetricError> {
    let m = spec.name;
    let path: &CString = &ctx.noop;
    if !std::path::Path::new(path.to_str().unwrap_or("")).is_file() {
        return Err(MetricError::Failed { metric: m, message: format!("noop binary {path:?} not found") });
    }
    // Built before the clock starts: the child must not allocate after fork.
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
            return Err(MetricError::Io { metric: m, context: "fork", source: std::io::Error::last_os_error() });
        }
        let mut status = 0;
        // SAFETY: status is a valid out-pointer; pid is our child.
        if unsafe { libc::waitpid(pid, &mut status, 0) } != pid {
            return Err(MetricError::Io { metric: m, context: "waitpid", source: std::io::Error::last_os_error() });
        }
        if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
            return Err(MetricError::Failed { metric: m, message: format!("noop exited with wait status {status:#x}") });
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{catalog, hist};

    #[test]
    fn fork_exec_of_true_and_a_missing_binary() {
        let spec = catalog::lookup("spawn.fork_exec").unwrap();
        let req = RunRequest { metric: spec.name.into(), iterations: 20, max_ms: 10_000, warmup: 1 };
        let ctx = Context { noop: CString::new("/bin/true").unwrap() };
        let r = fork_exec(spec, &req, &ctx).unwrap();
        let h = hist::decode(&r.histogram).unwrap();
        assert_eq!(h.len(), 20);
        assert!(h.min() > 10_000, "fork+exec+wait takes more than 10 µs, got {} ns", h.min());

        let ctx = Context { noop: CString::new("/nonexistent/noop").unwrap() };
        assert!(fork_exec(spec, &req, &ctx).unwrap_err().to_string().contains("not found"));
        // a binary that fails is an error, not a fast sample
        let ctx = Context { noop: CString::new("/bin/false").unwrap() };
        assert!(fork_exec(spec, &req, &ctx).unwrap_err().to_string().contains("wait status"));
    }
}
