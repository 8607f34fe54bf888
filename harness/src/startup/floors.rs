//! The two clone floors of the startup table: clone(2) into the same new
//! namespaces as the launcher, whose child exits at once (what the kernel
//! alone costs) or execs the no-op (the raw clone+exec floor the launcher is
//! held to). Their children run in the harness's memory until they exit or
//! exec, and the harness waits in clone(2) until then (posix_spawn's way): no
//! copy of the harness's page tables is made or torn down, as in the
//! launcher.

use std::path::Path;
use std::time::Instant;

use nix::sched::CloneFlags;

use crate::container::NamespaceSet;

use super::StartupError;

/// Stack of a floor's child, which only returns or execs.
const CLONE_STACK_SIZE: usize = 64 * 1024;
/// The floors' children share the harness's memory, and the harness waits in
/// clone(2) until the child has exec'd or exited.
const FLOOR_CLONE_FLAGS: CloneFlags = CloneFlags::CLONE_VM.union(CloneFlags::CLONE_VFORK);

/// One floor, ready to be sampled.
pub(super) enum Floor {
    /// clone + `_exit(0)` + waitpid.
    Exit { flags: CloneFlags, stack: Vec<u8> },
    /// clone + execve of the no-op + waitpid.
    Exec { flags: CloneFlags, stack: Vec<u8>, exec: ExecArgs },
}

impl Floor {
    /// The clone+_exit floor into `namespaces`.
    pub(super) fn exit(namespaces: NamespaceSet) -> Floor {
        Floor::Exit { flags: namespaces.clone_flags() | FLOOR_CLONE_FLAGS, stack: vec![0u8; CLONE_STACK_SIZE] }
    }

    /// The clone+exec floor into `namespaces`, exec'ing `noop`.
    pub(super) fn exec(namespaces: NamespaceSet, noop: &Path) -> Result<Floor, StartupError> {
        Ok(Floor::Exec { flags: namespaces.clone_flags() | FLOOR_CLONE_FLAGS, stack: vec![0u8; CLONE_STACK_SIZE], exec: ExecArgs::new(noop)? })
    }

    /// One sample: ns from clone to reaped exit, or why it failed.
    pub(super) fn sample(&mut self) -> Result<u64, String> {
        match self {
            Floor::Exit { flags, stack } => {
                let t0 = Instant::now();
                // SAFETY: the child runs only the closure, which returns at
                // once (the child exits with 0) on its own stack; CLONE_VFORK
                // holds us in clone(2) until then, so the boxed closure it
                // shares with us stays alive and nothing else runs on it.
                let pid = unsafe { nix::sched::clone(Box::new(|| 0), stack, *flags, Some(libc::SIGCHLD)) }.map_err(|e| format!("clone: {e}"))?;
                nix::sys::wait::waitpid(pid, None).map_err(|e| format!("waitpid: {e}"))?;
                Ok(t0.elapsed().as_nanos() as u64)
            }
            Floor::Exec { flags, stack, exec } => {
                let t0 = Instant::now();
                // SAFETY: the child only calls execve(2) with C strings and
                // pointer arrays prepared before the clone, then _exit(2) if
                // that failed: no allocation, no lock. It runs in our memory
                // on its own stack, and CLONE_VFORK holds us in clone(2) until
                // it has exec'd or exited, so what it reads stays alive.
                let pid =
                    unsafe { nix::sched::clone(Box::new(|| exec.exec()), stack, *flags, Some(libc::SIGCHLD)) }.map_err(|e| format!("clone: {e}"))?;
                let status = nix::sys::wait::waitpid(pid, None).map_err(|e| format!("waitpid: {e}"))?;
                let ns = t0.elapsed().as_nanos() as u64;
                match status {
                    nix::sys::wait::WaitStatus::Exited(_, 0) => Ok(ns),
                    other => Err(format!("clone+exec of {:?} ended with {other:?}", exec.path)),
                }
            }
        }
    }
}

/// execve(2) arguments of the clone+exec floor, prepared before the clone.
pub(super) struct ExecArgs {
    path: std::ffi::CString,
    argv: [*const libc::c_char; 2],
    envp: [*const libc::c_char; 1],
}

impl ExecArgs {
    fn new(noop: &Path) -> Result<ExecArgs, StartupError> {
        use std::os::unix::ffi::OsStrExt;
        let path = std::ffi::CString::new(noop.as_os_str().as_bytes())
            .map_err(|_| StartupError::Io { context: format!("{}", noop.display()), source: std::io::Error::other("NUL in path") })?;
        let argv = [path.as_ptr(), std::ptr::null()];
        Ok(ExecArgs { path, argv, envp: [std::ptr::null()] })
    }

    /// In the cloned child: execve, or exit 127.
    fn exec(&self) -> isize {
        // SAFETY: path, argv and envp are NUL-terminated and null-terminated,
        // owned by self (argv[0] points into `path`, whose heap buffer does
        // not move with the struct); _exit(2) is async-signal-safe.
        unsafe {
            libc::execve(self.path.as_ptr(), self.argv.as_ptr(), self.envp.as_ptr());
            libc::_exit(127)
        }
    }
}
