//! The raw clone: clone(2), or clone3(2) with CLONE_INTO_CGROUP, of a child
//! that runs [`child_main`] on a stack of its own ([`ChildStack`]), with
//! CLONE_VM where the spec shares the parent's memory until the exec.

use std::os::fd::RawFd;
use std::ptr;

use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::unistd::Pid;

use super::child::{child_main, ChildCtx};

/// Stack of the cloned child until it execs; it only runs the steps below.
pub(super) const CHILD_STACK_SIZE: usize = 256 * 1024;

/// The child's stack until it execs: [`CHILD_STACK_SIZE`] bytes of fresh
/// anonymous memory with a PROT_NONE guard page below, so an overflow faults
/// instead of writing into the harness's heap (with CLONE_VM it is the
/// harness's memory). Only the pages the child touches are ever faulted in:
/// a zeroed heap buffer of the same size cost ~0.1 ms per start in page
/// faults or memset.
pub(super) struct ChildStack {
    base: *mut libc::c_void,
    len: usize,
    guard: usize,
}

impl ChildStack {
    pub(super) fn new() -> Result<ChildStack, Errno> {
        // SAFETY: sysconf has no memory effects.
        let guard = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
        let len = CHILD_STACK_SIZE + guard;
        // SAFETY: a new private anonymous mapping, owned by the returned
        // value and unmapped by its Drop.
        let base = unsafe {
            libc::mmap(
                ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(Errno::last());
        }
        let stack = ChildStack { base, len, guard };
        // SAFETY: the lowest page of the mapping just made.
        if unsafe { libc::mprotect(base, guard, libc::PROT_NONE) } != 0 {
            return Err(Errno::last());
        }
        Ok(stack)
    }

    /// The usable part, above the guard page.
    pub(super) fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: [base+guard, base+len) is mapped read-write and owned by self.
        unsafe { std::slice::from_raw_parts_mut(self.base.cast::<u8>().add(self.guard), self.len - self.guard) }
    }
}

impl Drop for ChildStack {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, no longer used (see spawn).
        unsafe { libc::munmap(self.base, self.len) };
    }
}

/// clone(2) of a child that runs [`child_main`]`(ctx)` on `stack`.
///
/// Not nix's `clone`, which passes the child a pointer to a boxed closure
/// that lives in its own stack frame and is freed when it returns: harmless
/// in a copy of memory, a use-after-free with CLONE_VM. Here the child gets
/// `ctx` itself, which the caller keeps alive.
///
/// # Safety
/// With CLONE_VM in `flags`, `ctx`, what it borrows and `stack` must stay
/// alive and unmoved until the child has exec'd or exited.
///
/// With `cgroup` (an fd of a cgroup v2 directory) the child is created in
/// that group, by clone3(2) with CLONE_INTO_CGROUP (Linux 5.7): no move
/// afterwards, so no global lock (see [`Placement`](crate::container::cgroup::Placement)). Returns the pid and
/// whether the child was born in the group; `false` where clone3 or the flag
/// is not there (another architecture, an older kernel), after a plain clone.
pub(super) unsafe fn clone_child(ctx: &ChildCtx<'_>, stack: &mut [u8], flags: CloneFlags, cgroup: Option<RawFd>) -> Result<(Pid, bool), Errno> {
    extern "C" fn entry(data: *mut libc::c_void) -> libc::c_int {
        // SAFETY: `data` is the `ctx` passed below, alive for the child's
        // pre-exec life (the caller's contract).
        let ctx = unsafe { &*(data as *const ChildCtx<'_>) };
        child_main(ctx)
    }
    let data = ctx as *const ChildCtx<'_> as *mut libc::c_void;
    #[cfg(target_arch = "x86_64")]
    if let Some(fd) = cgroup {
        if !CLONE3_INTO_CGROUP_MISSING.load(std::sync::atomic::Ordering::Relaxed) {
            // SAFETY: the caller's contract, as for clone(2) below.
            match unsafe { clone3_into_cgroup(entry, data, stack, flags, fd) } {
                Ok(pid) => return Ok((pid, true)),
                // No clone3 (before 5.3), no CLONE_INTO_CGROUP (before 5.7:
                // its field is past the size those kernels know).
                Err(Errno::ENOSYS | Errno::E2BIG) => CLONE3_INTO_CGROUP_MISSING.store(true, std::sync::atomic::Ordering::Relaxed),
                // Refused for this group or these flags: a plain clone, and
                // the parent places the child (or clone says why not).
                Err(Errno::EINVAL | Errno::EOPNOTSUPP | Errno::EBUSY) => {}
                Err(e) => return Err(e),
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = cgroup;
    // The stack grows down: pass its 16-byte aligned top.
    let top = stack.as_mut_ptr_range().end;
    let top = top.wrapping_sub(top as usize % 16);
    // SAFETY: entry never returns (child_main execs or exits); the stack is
    // ours and unused by anything else; ctx outlives the child's use of it.
    let pid = unsafe { libc::clone(entry, top.cast(), flags.bits() | libc::SIGCHLD, data) };
    Errno::result(pid).map(|p| (Pid::from_raw(p), false))
}

/// Set once clone3 with CLONE_INTO_CGROUP has failed as unsupported.
#[cfg(target_arch = "x86_64")]
static CLONE3_INTO_CGROUP_MISSING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// `struct clone_args` of clone3(2), as far as `cgroup` (CLONE_ARGS_SIZE_VER2).
#[cfg(target_arch = "x86_64")]
#[repr(C)]
#[derive(Default)]
pub(super) struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// linux/sched.h: create the child in the cgroup v2 directory `cgroup`.
#[cfg(target_arch = "x86_64")]
pub(super) const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// clone3(2) with CLONE_INTO_CGROUP, the child running `entry(data)` on
/// `stack`. glibc has no clone3 wrapper, and a child on a new stack cannot
/// return into the caller's frames, so the child's side is a few
/// instructions of assembly: with rax = 0 and rsp at the top of `stack`
/// (the kernel adds the size), it clears the frame pointer, aligns the
/// stack and calls `entry`, which never returns (it execs or _exits).
///
/// # Safety
/// As [`clone_child`]; `entry` must never return.
#[cfg(target_arch = "x86_64")]
pub(super) unsafe fn clone3_into_cgroup(
    entry: extern "C" fn(*mut libc::c_void) -> libc::c_int,
    data: *mut libc::c_void,
    stack: &mut [u8],
    flags: CloneFlags,
    cgroup: RawFd,
) -> Result<Pid, Errno> {
    let args = CloneArgs {
        // clone3 takes the exit signal apart from the flags.
        flags: flags.bits() as u32 as u64 | CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
        stack: stack.as_mut_ptr() as u64,
        stack_size: stack.len() as u64 & !15,
        cgroup: cgroup as u64,
        ..Default::default()
    };
    let ret: i64;
    // SAFETY: the syscall reads `args` (alive across it); in the parent only
    // rax, rcx and r11 change. In the child nothing after the call runs:
    // `entry` ends in execve or _exit, and `ud2` traps should it return.
    unsafe {
        std::arch::asm!(
            "syscall",
            "test rax, rax",
            "jnz 2f",
            "xor ebp, ebp",
            "and rsp, -16",
            "mov rdi, r12",
            "call r13",
            "ud2",
            "2:",
            inlateout("rax") libc::SYS_clone3 => ret,
            in("rdi") &args as *const CloneArgs,
            in("rsi") std::mem::size_of::<CloneArgs>(),
            in("r12") data,
            in("r13") entry,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    if ret < 0 {
        return Err(Errno::from_raw(-ret as i32));
    }
    Ok(Pid::from_raw(ret as i32))
}
