//! One container's group ([`Cgroup`]), in whichever hierarchy the host has:
//! made with its limits, entered by the container's init before it execs
//! ([`Placement`], clone3's CLONE_INTO_CGROUP, or the parent's write of its
//! pid), accounted, killed as a whole and removed.

use std::path::{Path, PathBuf};

use nix::unistd::Pid;

use super::detect::{is_cgroup2, CgroupMode, Layout};

use super::{io_err, v1, v2, CgroupError, Limits, Usage, CGROUP_ROOT};
use crate::leftovers;

/// One container's group, in whichever hierarchy the host has. Dropping it
/// kills every member and removes the group.
#[derive(Debug)]
pub struct Cgroup {
    mode: CgroupMode,
    limits: Limits,
    backend: Backend,
    removed: bool,
}

#[derive(Debug)]
enum Backend {
    V1(v1::Group),
    V2(v2::Group),
}

/// How a new container process enters its group without the parent writing
/// its pid to `cgroup.procs` ([`Cgroup::placement`]). The parent's write
/// moves a whole thread group, so the kernel takes the global
/// `cgroup_threadgroup_rwsem` for writing, and that writer waits for an RCU
/// grace period unless another move happened just before: ~6 ms on a
/// 2-CPU v1 host, most of a container's start. A single thread that moves
/// itself (`0` written to a v1 hierarchy's `tasks`) is stable without that
/// lock, which the kernel then skips (cgroup_procs_write_start in
/// kernel/cgroup/cgroup.c): tens of microseconds.
#[derive(Debug)]
pub enum Placement {
    /// v1: the group's `tasks` file in each hierarchy, opened for writing by
    /// the parent (the kernel checks the opener's credentials, so a child in
    /// a new user namespace may write) and passed to the child, which, still
    /// single-threaded, writes `0` to each. Close-on-exec.
    MoveSelf(Vec<std::os::fd::OwnedFd>),
}

/// A fresh group name for this process: `isobench-<pid>-<seq>`
/// ([`leftovers::name`], which [`sweep`](super::sweep) tells by its owner pid).
fn group_name() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static SEQ: AtomicU32 = AtomicU32::new(0);
    leftovers::name(SEQ.fetch_add(1, Ordering::Relaxed))
}

impl Cgroup {
    /// Creates a group with `limits` under /sys/fs/cgroup.
    pub fn create(limits: &Limits) -> Result<Cgroup, CgroupError> {
        Self::create_at(Path::new(CGROUP_ROOT), limits)
    }

    /// Creates a group with `limits` under a cgroup root (a v2 mount, or a
    /// tmpfs holding v1 controller mounts), detecting its mode.
    pub fn create_at(root: &Path, limits: &Limits) -> Result<Cgroup, CgroupError> {
        Self::create_in(&Layout::detect(root), limits)
    }

    /// Creates a group with `limits` in a layout detected before (by
    /// [`CgroupHold::new`](super::CgroupHold::new), so that a container's start does not pay for
    /// statfs(2) of every hierarchy and the canonical paths of their mounts).
    pub fn create_in(layout: &Layout, limits: &Limits) -> Result<Cgroup, CgroupError> {
        let (root, mode) = (layout.root.as_path(), layout.mode);
        let name = group_name();
        let backend = match mode {
            CgroupMode::V2 => {
                let unified = if is_cgroup2(root) { root.to_path_buf() } else { root.join("unified") };
                Backend::V2(v2::Group::create(&unified, &name, limits)?)
            }
            CgroupMode::V1 => Backend::V1(v1::Group::create(root, mode, &layout.v1, &name, limits)?),
            // Limits live in the v1 controllers; a controller the host left
            // to the unified hierarchy is used there, when v1 lacks it.
            CgroupMode::Hybrid => match v1::Group::create(root, mode, &layout.v1, &name, limits) {
                Ok(g) => Backend::V1(g),
                Err(e @ CgroupError::ControllerMissing { .. }) => {
                    let unified = root.join("unified");
                    return match v2::Group::create(&unified, &name, limits) {
                        Ok(g) => Ok(Cgroup { mode: CgroupMode::V2, limits: *limits, backend: Backend::V2(g), removed: false }),
                        Err(_) => Err(e),
                    };
                }
                Err(e) => return Err(e),
            },
            CgroupMode::None => return Err(CgroupError::NotMounted(root.to_path_buf())),
        };
        Ok(Cgroup { mode, limits: *limits, backend, removed: false })
    }

    /// The kind of hierarchy the group lives in: the host's mode, except on a
    /// hybrid host whose unified hierarchy holds a controller v1 lacks (`v2`).
    pub fn mode(&self) -> CgroupMode {
        self.mode
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The group's directories (one in v2, one per controller in v1).
    pub fn paths(&self) -> Vec<PathBuf> {
        match &self.backend {
            Backend::V1(g) => g.paths(),
            Backend::V2(g) => vec![g.path().to_path_buf()],
        }
    }

    /// How a process about to be cloned gets into the group without the
    /// parent writing its pid ([`Placement`]); `None` where it cannot (the
    /// parent then calls [`add`](Self::add)). Errors: opening the group's
    /// `tasks` files.
    pub fn placement(&self) -> Result<Option<Placement>, CgroupError> {
        match &self.backend {
            Backend::V1(g) => g.tasks_files().map(|fds| Some(Placement::MoveSelf(fds))),
            Backend::V2(_) => Ok(None),
        }
    }

    /// A v2 group's directory, open (O_PATH) for clone3(2)'s
    /// CLONE_INTO_CGROUP, which creates a child in the group rather than
    /// moving it there; `None` for a v1 group. Errors: the open.
    pub fn clone_into_fd(&self) -> Result<Option<std::os::fd::OwnedFd>, CgroupError> {
        match &self.backend {
            Backend::V1(_) => Ok(None),
            Backend::V2(g) => {
                let flags = nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC;
                let fd = nix::fcntl::open(g.path(), flags, nix::sys::stat::Mode::empty())
                    .map_err(|e| io_err(format!("open {}", g.path().display()))(e.into()))?;
                // SAFETY: open(2) just returned this fd, owned by no one else.
                Ok(Some(unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) }))
            }
        }
    }

    /// Moves a process (with all its threads) into the group.
    pub fn add(&self, pid: Pid) -> Result<(), CgroupError> {
        match &self.backend {
            Backend::V1(g) => g.add(pid),
            Backend::V2(g) => g.add(pid),
        }
    }

    /// Host pids of the group's members now.
    pub fn members(&self) -> Vec<i32> {
        match &self.backend {
            Backend::V1(g) => g.members(),
            Backend::V2(g) => g.members(),
        }
    }

    /// What the group used so far (the kernel keeps the counters until the
    /// group is removed).
    pub fn usage(&self) -> Usage {
        match &self.backend {
            Backend::V1(g) => g.usage(),
            Backend::V2(g) => g.usage(),
        }
    }

    /// Kills every member (cgroup.kill in v2; freeze, SIGKILL, thaw in v1) and
    /// waits until the group is empty.
    pub fn kill(&self) -> Result<(), CgroupError> {
        match &self.backend {
            Backend::V1(g) => g.kill(),
            Backend::V2(g) => g.kill(),
        }
    }

    /// Kills the members and removes the group (and the `isobench` parent when
    /// no other container uses it).
    pub fn destroy(mut self) -> Result<(), CgroupError> {
        self.remove()
    }

    fn remove(&mut self) -> Result<(), CgroupError> {
        if self.removed {
            return Ok(());
        }
        self.removed = true;
        let killed = self.kill();
        let removed = match &self.backend {
            Backend::V1(g) => g.remove(),
            Backend::V2(g) => g.remove(),
        };
        killed.and(removed)
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        let _ = self.remove();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_names_carry_the_owner_pid() {
        let n = group_name();
        assert_eq!(leftovers::counted_owner_pid(&n), Some(std::process::id() as i32), "{n}");
    }
}
