//! The `isobench` parent groups that the containers of one launch spec
//! share ([`CgroupHold`]): held between containers rather than removed after
//! each and made again before the next, and removed when the last hold of
//! this process goes and no group is left in them.

use std::path::{Path, PathBuf};

use super::detect::Layout;
use super::CGROUP_ROOT;

/// Removes the `isobench` parent if no container group is left in it, unless
/// a [`CgroupHold`] of this process keeps it. Another run may be creating
/// its group at the same moment: rmdir then fails with EBUSY or ENOTEMPTY,
/// which is fine, and [`make_group_dir`](super::fs::make_group_dir) retries when its parent vanished.
pub(crate) fn remove_parent_if_empty(parent: &Path) {
    if PARENT_HOLDS.load(std::sync::atomic::Ordering::SeqCst) == 0 {
        let _ = std::fs::remove_dir(parent);
    }
}

/// Live [`CgroupHold`]s of this process.
static PARENT_HOLDS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// What the containers of one launch spec share in the cgroup tree: the
/// [`Layout`], detected when the spec is made, and the `isobench` parent
/// groups, which stay between its containers rather than be removed after
/// each and made again before the next (a container's own group is still
/// made and removed per container). While any hold of this process lives,
/// no container's removal takes a parent away; when the last one is
/// dropped, the parents go if no group is left in them (another run's may
/// be). A run killed before that leaves only empty parents, which the next
/// start's [`sweep`](super::sweep) removes.
#[derive(Debug)]
pub struct CgroupHold {
    layout: Layout,
    /// Every hierarchy's parent, freezer included (another group of this
    /// process may have used it while removals were held).
    parents: Vec<PathBuf>,
}

impl CgroupHold {
    /// Detects the host's layout under /sys/fs/cgroup and starts holding
    /// the parents (made by the first container's group, as before).
    pub fn new() -> CgroupHold {
        PARENT_HOLDS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let layout = Layout::detect(Path::new(CGROUP_ROOT));
        CgroupHold { parents: layout.parents(), layout }
    }

    /// The same for containers with a pid namespace of their own: on v1 their
    /// groups skip the freezer hierarchy (one mkdir, attach and rmdir less
    /// per container). The freezer is there so that killing a group's members
    /// one by one races no fork; with a pid namespace the kernel itself kills
    /// every process in it when its init dies, and the init dies with
    /// isobench (PR_SET_PDEATHSIG) or by isobench's SIGKILL, so a whole-group
    /// kill never depends on it. Limits and accounting (cpu, cpuacct,
    /// memory, pids) are unchanged.
    pub fn for_pid_namespace() -> CgroupHold {
        let mut hold = Self::new();
        hold.layout.v1.retain(|(c, _)| *c != "freezer");
        hold
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }
}

impl Default for CgroupHold {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for CgroupHold {
    fn drop(&mut self) {
        if PARENT_HOLDS.fetch_sub(1, std::sync::atomic::Ordering::SeqCst) == 1 {
            for parent in &self.parents {
                let _ = std::fs::remove_dir(parent);
            }
        }
    }
}
