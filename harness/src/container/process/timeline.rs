//! When each step of a launch happened ([`LaunchTimes`]), on one clock
//! (CLOCK_MONOTONIC, which Rust's `Instant` reads too): the parent stamps
//! its own steps (spawn entered, clone(2) called and returned, the command's
//! exec seen, the init reaped, its cgroup removed); the child stamps the
//! steps only it sees (mount plan done, moved into its cgroup, execve
//! called) into a page shared with the parent ([`ChildStamps`], mapped
//! MAP_SHARED before the clone, so it is shared whether or not the child
//! runs in the parent's memory, and by the init's forked command too). The
//! child's side is a vDSO clock read and an atomic store: no allocation.
//! Firecracker's boot-time method, with the steps of a container start.

use std::sync::atomic::{AtomicU64, Ordering};

use nix::errno::Errno;

/// CLOCK_MONOTONIC now, ns (allocation-free: the vDSO).
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes the timespec on our stack.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// The steps of one launch, CLOCK_MONOTONIC ns ([`monotonic_ns`]); `None`
/// for a step that has not happened (yet) or does not exist in this launch
/// (no cgroup).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LaunchTimes {
    /// `spawn` entered: pipes, the child's stack and (v2) its cgroup follow.
    pub spawn_ns: u64,
    /// clone(2)/clone3(2) called.
    pub clone_ns: u64,
    /// clone returned in the parent: the child exists in its new namespaces.
    pub cloned_ns: u64,
    /// The child's first instruction, stamped by the child: the same fact
    /// seen from the child, which on a busy machine runs (and may finish
    /// its mounts) before the parent's clone returns.
    pub child_started_ns: Option<u64>,
    /// The child has applied its mount plan, set its host name and brought
    /// its loopback up.
    pub mounts_done_ns: Option<u64>,
    /// The child is in its cgroup: moved itself in after the parent's
    /// handshake, or was born in it (clone3 with CLONE_INTO_CGROUP).
    pub cgroup_placed_ns: Option<u64>,
    /// The command's execve(2) called (in init mode, by the init's child).
    pub exec_ns: Option<u64>,
    /// The parent saw the exec succeed (end of file on the error pipe).
    pub exec_seen_ns: u64,
    /// waitpid returned the init's exit.
    pub reaped_ns: Option<u64>,
    /// The container's cgroup removed after its usage was read (= reaped
    /// without a cgroup).
    pub cleaned_up_ns: Option<u64>,
}

/// Slots of the shared page, written by the child.
#[derive(Debug, Clone, Copy)]
#[repr(usize)]
pub(super) enum Stamp {
    MountsDone = 0,
    CgroupPlaced = 1,
    Exec = 2,
    /// The child's first instruction: it runs in its new namespaces.
    Started = 3,
}

const SLOTS: usize = 4;

/// The page the child writes its stamps into (0: not stamped), mapped
/// MAP_SHARED|MAP_ANONYMOUS before the clone and unmapped on drop.
pub(super) struct ChildStamps {
    page: *mut AtomicU64,
    len: usize,
}

impl ChildStamps {
    pub(super) fn new() -> Result<ChildStamps, Errno> {
        let len = std::mem::size_of::<AtomicU64>() * SLOTS;
        // SAFETY: a fresh anonymous shared mapping, zero-filled by the kernel
        // (every slot starts as "not stamped").
        let page =
            unsafe { libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED | libc::MAP_ANONYMOUS, -1, 0) };
        if page == libc::MAP_FAILED {
            return Err(Errno::last());
        }
        Ok(ChildStamps { page: page.cast(), len })
    }

    /// The pointer the child stamps through ([`stamp`]).
    pub(super) fn as_ptr(&self) -> *const AtomicU64 {
        self.page
    }

    /// What the child stamped into `slot`, if it did.
    pub(super) fn read(&self, slot: Stamp) -> Option<u64> {
        // SAFETY: the slot lies within the mapping, alive while self is.
        let v = unsafe { (*self.page.add(slot as usize)).load(Ordering::Acquire) };
        (v != 0).then_some(v)
    }
}

impl Drop for ChildStamps {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`; the child has exec'd or exited
        // (see spawn), so no one writes to it any more.
        unsafe { libc::munmap(self.page.cast(), self.len) };
    }
}

/// In the child: stamps `slot` with the clock now. Allocation-free.
///
/// # Safety
/// `page` is [`ChildStamps::as_ptr`] of a mapping that is still mapped.
pub(super) unsafe fn stamp(page: *const AtomicU64, slot: Stamp) {
    if !page.is_null() {
        // SAFETY: the caller's contract; the slot is within the mapping.
        unsafe { (*page.add(slot as usize)).store(monotonic_ns(), Ordering::Release) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forked_child_stamps_the_shared_page() {
        let stamps = ChildStamps::new().unwrap();
        assert_eq!(stamps.read(Stamp::Exec), None);
        let before = monotonic_ns();
        // SAFETY: the child only stamps (a clock read, an atomic store) and _exits.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            unsafe {
                stamp(stamps.as_ptr(), Stamp::Exec);
                libc::_exit(0);
            }
        }
        let mut status = 0;
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        let t = stamps.read(Stamp::Exec).expect("the child's stamp is seen by the parent");
        assert!(t >= before && t <= monotonic_ns());
        assert_eq!(stamps.read(Stamp::MountsDone), None);
    }
}
