//! The minimal init that stays PID 1 in init mode ([`become_init`]): it
//! forks the command off, forwards signals to it, reaps every zombie and
//! exits with the command's status, as tini and `docker --init` do. Still
//! the clone of a multi-threaded process: system calls only.

use std::ptr;

use nix::errno::Errno;

use super::channel::{fail, SETUP_FAILED, STAGE_INIT_FORK};
use super::child::ChildCtx;

/// Name of the init process (comm, at most 15 bytes), as `ps` shows it.
pub(super) const INIT_NAME: &std::ffi::CStr = c"isobench-init";

/// Signals the init passes on to the command (SIGCHLD it handles itself).
pub(super) const FORWARDED_SIGNALS: [libc::c_int; 7] =
    [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGQUIT, libc::SIGUSR1, libc::SIGUSR2, libc::SIGWINCH];

/// Forks the command off and stays behind as its init; returns in the
/// command's process only.
pub(super) fn become_init(ctx: &ChildCtx<'_>) {
    // SAFETY (whole function): system calls on stack values and fds prepared
    // by the parent; no allocation, no lock (see the module comment).
    unsafe {
        // Block the signals the init waits for *before* forking, so that none
        // is lost in between (an unblocked, unhandled signal to a namespace's
        // init is dropped); the command unblocks them before exec.
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGCHLD);
        for sig in FORWARDED_SIGNALS {
            libc::sigaddset(&mut set, sig);
        }
        libc::sigprocmask(libc::SIG_BLOCK, &set, ptr::null_mut());
        // Without a pid namespace the init is no namespace init: make it the
        // reaper of the command's orphans all the same.
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong, 0, 0, 0);
        let init_pid = libc::getpid();
        // A raw fork: glibc's fork(3) runs atfork handlers that take the
        // allocator's locks, which another thread of isobench may have held
        // when we were cloned.
        let child = libc::syscall(libc::SYS_clone, libc::SIGCHLD as libc::c_ulong, 0usize, 0usize, 0usize, 0usize);
        if child < 0 {
            fail(ctx, STAGE_INIT_FORK, Errno::last());
        }
        if child == 0 {
            // The command: die with the init, default signal mask.
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0);
            if libc::getppid() != init_pid {
                libc::_exit(SETUP_FAILED);
            }
            let mut empty: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut empty);
            libc::sigprocmask(libc::SIG_SETMASK, &empty, ptr::null_mut());
            return;
        }
        let child = child as libc::pid_t;
        // The command reports its own exec failure; the parent's read ends
        // when the command has exec'd and this copy is closed. The init keeps
        // no stdio of its own: a reader sees EOF when the command's side closes.
        // Every other fd goes too (they are close-on-exec, but the init never
        // execs): a pipe end held here would keep a reader from seeing EOF.
        let keep = ctx.release_r.map_or(-1, |fd| fd);
        libc::close(0);
        libc::close(1);
        if keep > 3 {
            libc::syscall(libc::SYS_close_range, 3u32, (keep - 1) as u32, 0u32);
        }
        libc::syscall(libc::SYS_close_range, (keep.max(2) + 1) as u32, u32::MAX, 0u32);
        libc::prctl(libc::PR_SET_NAME, INIT_NAME.as_ptr() as libc::c_ulong, 0, 0, 0);
        let status = init_loop(child, &set);
        // Linger until isobench lets go (or dies), so that it can still look
        // at the namespaces of a command that exited at once.
        if let Some(fd) = ctx.release_r {
            let mut b = 0u8;
            while libc::read(fd, (&mut b as *mut u8).cast(), 1) < 0 && Errno::last() == Errno::EINTR {}
        }
        libc::_exit(status)
    }
}

/// Waits for signals: forwards the forwardable ones to `child`, reaps every
/// zombie on SIGCHLD, and returns the exit status of `child` once it is
/// reaped (128+n for a signal n). System calls only.
pub(super) fn init_loop(child: libc::pid_t, set: &libc::sigset_t) -> i32 {
    loop {
        // SAFETY: set is an initialised signal set; a null siginfo is allowed.
        let sig = unsafe { libc::sigwaitinfo(set, ptr::null_mut()) };
        if sig < 0 {
            continue;
        }
        if sig != libc::SIGCHLD {
            // SAFETY: kill(2) of our own child with a plain signal number.
            unsafe { libc::kill(child, sig) };
            continue;
        }
        // SIGCHLD coalesces: reap everything that has exited.
        loop {
            let mut status = 0;
            // SAFETY: waitpid(2) on our children, status on our stack.
            let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if pid <= 0 {
                break;
            }
            if pid == child {
                if libc::WIFEXITED(status) {
                    return libc::WEXITSTATUS(status);
                }
                if libc::WIFSIGNALED(status) {
                    return 128 + libc::WTERMSIG(status);
                }
            }
        }
    }
}
