//! The minimal init that stays PID 1 in init mode ([`become_init`]): it
//! starts the command, forwards signals to it, reaps every zombie and exits
//! with the command's status, as tini and `docker --init` do. Still the
//! clone of a multi-threaded process: system calls only.
//!
//! The command is started as posix_spawn(3) starts a program (glibc's
//! `spawni`, musl's `posix_spawn`): clone(CLONE_VM|CLONE_VFORK) onto a small
//! stack of the init's own, the init suspended until the command has exec'd
//! or failed. A plain fork here copied the init's memory, which is a copy of
//! the whole isobench process (its heap, its threads' stacks), only for the
//! exec to throw it away: one address-space copy and teardown per
//! `isobench exec` (README, "Container start").

use std::mem::MaybeUninit;
use std::ptr;

use nix::errno::Errno;

use super::channel::{fail, SETUP_FAILED, STAGE_INIT_FORK};
use super::child::{exec_command, ChildCtx};

/// Name of the init process (comm, at most 15 bytes), as `ps` shows it.
pub(super) const INIT_NAME: &std::ffi::CStr = c"isobench-init";

/// Signals the init passes on to the command (SIGCHLD it handles itself).
pub(super) const FORWARDED_SIGNALS: [libc::c_int; 7] =
    [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGQUIT, libc::SIGUSR1, libc::SIGUSR2, libc::SIGWINCH];

/// Stack of the command's process between its clone and its exec, in the
/// init's frame: it only resets signals and calls execve(2) (musl's
/// posix_spawn gets by with 1 KiB plus a path; this leaves room for
/// execve's path candidates and the failure report).
const COMMAND_STACK_SIZE: usize = 32 * 1024;

/// What the command's process reads from the suspended init's frame.
struct CommandStart<'a> {
    ctx: &'a ChildCtx<'a>,
    init_pid: libc::pid_t,
}

/// Starts the command and stays behind as its init; never returns.
pub(super) fn become_init(ctx: &ChildCtx<'_>) -> ! {
    // SAFETY (whole function): system calls on stack values and fds prepared
    // by the parent; no allocation, no lock (see the module comment).
    unsafe {
        // Block the signals the init waits for *before* the command starts,
        // so that none is lost in between (an unblocked, unhandled signal to
        // a namespace's init is dropped); the command unblocks them before
        // exec.
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
        // Named before the command starts: the command may look (`ps`) before
        // the init runs again.
        libc::prctl(libc::PR_SET_NAME, INIT_NAME.as_ptr() as libc::c_ulong, 0, 0, 0);
        let start = CommandStart { ctx, init_pid: libc::getpid() };
        // Uninitialised: only the pages the command touches are faulted in.
        let mut stack = MaybeUninit::<[u8; COMMAND_STACK_SIZE]>::uninit();
        let base = stack.as_mut_ptr().cast::<u8>();
        // The stack grows down: its 16-byte aligned top.
        let top = base.add(COMMAND_STACK_SIZE);
        let top = top.wrapping_sub(top as usize % 16);
        // glibc's clone(3) is the bare system call around `command_main`,
        // without fork(3)'s atfork handlers (which take the allocator's
        // locks another thread of isobench may have held when we were
        // cloned). CLONE_VFORK: this frame, `start` and `stack` stay as they
        // are until the command has exec'd or exited.
        let child = libc::clone(
            command_main,
            top.cast(),
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            (&start as *const CommandStart<'_>).cast_mut().cast(),
        );
        if child < 0 {
            fail(ctx, STAGE_INIT_FORK, Errno::last());
        }
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

/// The command's process, in the init's memory until it execs: dies with
/// the init, takes the default action of every signal the init forwards
/// (handlers isobench installed are not the command's: run here they would
/// act on the init's memory; an ignored signal stays ignored across exec, as
/// under nohup(1)), unblocks them and execs. Never returns.
extern "C" fn command_main(data: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `data` is the init's `CommandStart`, alive while the init is
    // suspended (CLONE_VFORK); below, system calls on stack values only.
    unsafe {
        let start = &*(data as *const CommandStart<'_>);
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0);
        if libc::getppid() != start.init_pid {
            libc::_exit(SETUP_FAILED);
        }
        for sig in FORWARDED_SIGNALS.into_iter().chain([libc::SIGCHLD]) {
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(sig, ptr::null(), &mut old) == 0 && old.sa_sigaction != libc::SIG_IGN && old.sa_sigaction != libc::SIG_DFL {
                libc::signal(sig, libc::SIG_DFL);
            }
        }
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, ptr::null_mut());
        exec_command(start.ctx)
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
