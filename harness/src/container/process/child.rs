//! The child, from clone(2) to execve(2) ([`child_main`]): die with
//! isobench, signals back to their defaults, the mount plan, host name and
//! loopback, the wait for the parent's handshake, the deferred cgroup
//! namespace, stdio, the profile's hardening (capabilities, no_new_privs,
//! seccomp), then the init (when asked) and the exec. System calls
//! only: no allocation, no lock, no unwinding panic.

use std::os::fd::RawFd;
use std::ptr;

use nix::errno::Errno;
use nix::sys::stat::{umask, Mode};

use super::channel::{
    fail, wait_for_parent, SETUP_FAILED, STAGE_CGROUP_NS, STAGE_EXEC, STAGE_HOSTNAME, STAGE_LOOPBACK, STAGE_PDEATHSIG, STAGE_STDIO,
};
use super::harden;
use super::pid1::become_init;
use super::timeline::{stamp, Stamp};
use super::LaunchSpec;
use crate::container::ns::Namespace;
use crate::container::rootfs;
use crate::container::syscall::{Linux, Syscall};

pub(super) struct ChildCtx<'a> {
    pub(super) spec: &'a LaunchSpec,
    pub(super) err_fd: RawFd,
    pub(super) alive_r: RawFd,
    pub(super) alive_w: RawFd,
    /// The child's end of the handshake socket: one byte once the parent is
    /// done, with the group's v1 `tasks` files to which the child writes
    /// `0` ([`Placement::MoveSelf`](crate::container::cgroup::Placement::MoveSelf)), or none when the parent placed it.
    pub(super) go_r: Option<RawFd>,
    /// The parent's end of that socket, which the child closes (its copy
    /// would keep the socket open: no end-of-file when the parent gives up).
    pub(super) go_w: Option<RawFd>,
    /// Read end of the init's release pipe (init mode).
    pub(super) release_r: Option<RawFd>,
    pub(super) stdin: Option<RawFd>,
    pub(super) stdout: Option<RawFd>,
    /// The page shared with the parent for the child's steps ([`super::timeline`]).
    pub(super) stamps: *const std::sync::atomic::AtomicU64,
}

/// Makes `target` a copy of `fd`, inheritable across exec.
pub(super) fn install_fd(fd: RawFd, target: RawFd) -> nix::Result<()> {
    if fd == target {
        // dup2 onto itself keeps FD_CLOEXEC: clear it instead.
        // SAFETY: fcntl on an fd we own; no memory involved.
        return Errno::result(unsafe { libc::fcntl(fd, libc::F_SETFD, 0) }).map(drop);
    }
    // SAFETY: as above; dup2 returns a new fd without FD_CLOEXEC.
    Errno::result(unsafe { libc::dup2(fd, target) }).map(drop)
}

/// The child, from clone(2) to execve(2). System calls only: no allocation,
/// no locks, no panics that could unwind (every error goes to `fail`).
pub(super) fn child_main(ctx: &ChildCtx<'_>) -> ! {
    let spec = ctx.spec;
    // SAFETY: the shared page outlives the child's pre-exec life (see spawn).
    unsafe { stamp(ctx.stamps, Stamp::Started) };
    // SAFETY (whole block): plain system calls on fds and stack values
    // prepared by the parent; nothing here allocates or takes a lock.
    unsafe {
        // Die with isobench. If it died before this prctl, its end of the
        // liveness pipe is already closed and poll reports POLLHUP.
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) != 0 {
            fail(ctx, STAGE_PDEATHSIG, Errno::last());
        }
        libc::close(ctx.alive_w);
        if let Some(fd) = ctx.go_w {
            libc::close(fd);
        }
        let mut pfd = libc::pollfd { fd: ctx.alive_r, events: libc::POLLIN, revents: 0 };
        if libc::poll(&mut pfd, 1, 0) == 1 && pfd.revents & libc::POLLHUP != 0 {
            libc::_exit(SETUP_FAILED);
        }
        // Rust ignores SIGPIPE in its own processes and ignored signals stay
        // ignored across exec: give the command the default back, and no
        // blocked signals.
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        // isobench exec ignores SIGINT and SIGQUIT while the command runs, as
        // system(3) does; the command itself gets them (a ^C ends it).
        libc::signal(libc::SIGINT, libc::SIG_DFL);
        libc::signal(libc::SIGQUIT, libc::SIG_DFL);
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, ptr::null_mut());
        if spec.waits_before_setup() {
            wait_for_parent(ctx);
            stamp_placed(ctx);
        }
    }

    // Device nodes and dirs get exactly the modes in the plan.
    let old_umask = umask(Mode::empty());
    if let Err((i, errno)) = rootfs::apply(&spec.plan, &Linux) {
        fail(ctx, i as u32, errno);
    }
    umask(old_umask);

    if let Some(name) = &spec.hostname {
        if let Err(e) = Linux.sethostname(name) {
            fail(ctx, STAGE_HOSTNAME, e);
        }
    }
    // A new net namespace has only a loopback, and it starts down.
    if spec.namespaces.contains(Namespace::Net) && spec.loopback {
        if let Err(e) = Linux.link_up(c"lo") {
            fail(ctx, STAGE_LOOPBACK, e);
        }
    }
    // SAFETY: the shared page outlives the child's pre-exec life (see spawn).
    unsafe { stamp(ctx.stamps, Stamp::MountsDone) };
    if !spec.waits_before_setup() {
        wait_for_parent(ctx);
        stamp_placed(ctx);
    }
    // SAFETY: unshare(2) with a flag; no memory involved.
    if spec.defer_cgroup_ns() && unsafe { libc::unshare(libc::CLONE_NEWCGROUP) } != 0 {
        fail(ctx, STAGE_CGROUP_NS, Errno::last());
    }
    for (fd, target) in [(ctx.stdin, 0), (ctx.stdout, 1)] {
        if let Some(fd) = fd {
            if let Err(e) = install_fd(fd, target) {
                fail(ctx, STAGE_STDIO, e);
            }
        }
    }
    // SAFETY: close_range(2) with CLOSE_RANGE_CLOEXEC only sets flags: no fd
    // of the harness beyond stdio leaks into the container (the error pipe
    // already is close-on-exec). Older kernels say ENOSYS/EINVAL: ignored.
    unsafe {
        libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, libc::CLOSE_RANGE_CLOEXEC);
    }

    // Last, with every privileged step done: the profile's capabilities,
    // no_new_privs and seccomp filter, which the init and the command share.
    if let Some(h) = &spec.hardening {
        if let Err((stage, errno)) = harden::apply(h, &Linux) {
            fail(ctx, stage, errno);
        }
    }
    if spec.init {
        become_init(ctx)
    }
    exec_command(ctx)
}

/// Stamps the move into the cgroup, when there is one to be moved into.
fn stamp_placed(ctx: &ChildCtx<'_>) {
    if ctx.spec.cgroup.is_some() {
        // SAFETY: as for every stamp (see spawn).
        unsafe { stamp(ctx.stamps, Stamp::CgroupPlaced) };
    }
}

/// execve(2) of the first command candidate that exists; never returns.
pub(super) fn exec_command(ctx: &ChildCtx<'_>) -> ! {
    let spec = ctx.spec;
    let mut errno = Errno::ENOENT;
    // SAFETY: as for every stamp (see spawn); in init mode the page is
    // shared with the init's forked child too (MAP_SHARED).
    unsafe { stamp(ctx.stamps, Stamp::Exec) };
    for path in &spec.candidates {
        // SAFETY: path, argv and envp are NUL-terminated C strings and
        // null-terminated pointer arrays owned by `spec`, alive in this copy
        // of the parent's memory. execve returns only on failure.
        unsafe { libc::execve(path.as_ptr(), spec.argv_ptrs.as_ptr(), spec.env_ptrs.as_ptr()) };
        let e = Errno::last();
        // Like execvp(3): a missing candidate moves on, anything else (EACCES
        // and friends) is remembered as the more telling error.
        if !matches!(e, Errno::ENOENT | Errno::ENOTDIR) || errno == Errno::ENOENT {
            errno = e;
        }
    }
    fail(ctx, STAGE_EXEC, errno)
}
