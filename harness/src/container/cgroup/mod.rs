//! Control groups: a per-container group of processes whose CPU, memory and
//! process count the kernel limits and accounts, and that can be killed as a
//! whole (cgroups(7)).
//!
//! A host mounts cgroups in one of three ways, told apart by the filesystem
//! magic of what is mounted (statfs(2)), as systemd and runc do, never by
//! guessing from path names:
//!
//! - **v2** (unified): one `cgroup2` hierarchy at /sys/fs/cgroup holding every
//!   controller; limits are `cpu.max`, `memory.max`, `pids.max`, and
//!   `cgroup.kill` kills every member at once ([`v2`]).
//! - **v1** (legacy): a tmpfs at /sys/fs/cgroup with one `cgroup` hierarchy per
//!   controller (cpu, cpuacct, memory, pids, freezer, ...), each with its own
//!   tree; limits are `cpu.cfs_quota_us`, `memory.limit_in_bytes`,
//!   `pids.max`, and killing everything means freezing the group first so
//!   nothing forks while the members are signalled ([`v1`]).
//! - **hybrid**: v1 controllers plus an (often controller-less) cgroup2 at
//!   /sys/fs/cgroup/unified. The controllers live in v1, so limits go there.
//!
//! Every container gets its own group `isobench-<pid>-<seq>` under a parent
//! `isobench` at the root of each hierarchy used; `<pid>` is the isobench
//! process that made it, so [`sweep`] can remove the groups of runs that were
//! killed before they could remove their own. The container's init is placed
//! in the group before it execs (and before it creates a cgroup namespace, so
//! that the namespace's root is the container's own group).
//!
//! What a group costs a container's start (measured by `isobench startup`'s
//! isobench+cgroup column): the layout is detected once per launch spec and
//! the `isobench` parents stay while it lives ([`CgroupHold`]), so a start
//! pays a mkdir per hierarchy used (v1: cpuacct and memory, the freezer
//! without a pid namespace, cpu and pids with limits) and the move of the
//! init into it; the rmdir after the exit is outside the timed region. On v1
//! and hybrid hosts the launcher makes the group while the child sets up its
//! mounts, and the child moves itself ([`Placement`]); on v2 the group is
//! made first and the child cloned into it ([`Cgroup::clone_into_fd`]).
//! Only where neither works (another architecture, a kernel before 5.7)
//! does the parent write the pid into `cgroup.procs`, which takes the
//! kernel's `cgroup_threadgroup_rwsem`, a per-cpu rwsem whose writer waits
//! for an RCU grace period (several ms) unless another move happened just
//! before; `cgroup_favordynmods=true` on the kernel command line,
//! CONFIG_CGROUP_FAVOR_DYNMODS, or a cgroup2 mount with `favordynmods`
//! remove that wait. isobench changes none of the host's settings.
//!
//! - [`detect`]: the host's mode and [`Layout`], by filesystem magic
//! - [`limits`]: `--cpus`, `--memory`, `--pids` and what a group used
//! - [`group`]: one container's [`Cgroup`] and how its init gets in ([`Placement`])
//! - [`hold`]: the `isobench` parents a launch spec's containers share ([`CgroupHold`])
//! - [`fs`]: group directories and control files, shared by [`v1`] and [`v2`]

use std::path::{Path, PathBuf};

use crate::leftovers;

pub mod detect;
pub mod fs;
pub mod group;
pub mod hold;
pub mod limits;
pub mod v1;
pub mod v2;

pub use detect::{cgroup_mode, cgroup_mode_at, CgroupMode, Layout};
pub use group::{Cgroup, Placement};
pub use hold::CgroupHold;
pub use limits::{Limits, Usage, CPU_PERIOD_US};

use detect::is_cgroup2;
use fs::remove_tree;
use hold::remove_parent_if_empty;

/// Where cgroup filesystems are mounted on every distribution.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The parent of every container group, at the root of each hierarchy.
pub const PARENT: &str = "isobench";

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("no cgroup filesystem is mounted at {0}; mount cgroup2 there (mount -t cgroup2 none {0}) or run without --cpus/--memory/--pids")]
    NotMounted(PathBuf),
    #[error("the {controller} controller is not available in the {mode} hierarchy at {root}, so --{flag} cannot be applied; {remedy}, or leave --{flag} out", root = .root.display())]
    ControllerMissing { controller: &'static str, flag: &'static str, mode: CgroupMode, root: PathBuf, remedy: String },
    #[error("cgroup limits are unavailable in rootless mode (the cgroup tree belongs to root and isobench assumes no delegation); run as root, e.g. with sudo, or leave out --cpus/--memory/--pids")]
    Rootless,
    #[error("invalid {flag} value {value:?}: {why}")]
    InvalidLimit { flag: &'static str, value: String, why: &'static str },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl CgroupError {
    /// [`CgroupError::ControllerMissing`] with the remedy that can work
    /// here, from the kernel's own table of controllers (/proc/cgroups).
    pub(crate) fn missing(controller: &'static str, flag: &'static str, mode: CgroupMode, root: PathBuf) -> CgroupError {
        let table = std::fs::read_to_string("/proc/cgroups").unwrap_or_default();
        let remedy = remedy(controller, mode, &root, &table);
        CgroupError::ControllerMissing { controller, flag, mode, root, remedy }
    }
}

/// What makes `controller` usable, given where it was missing (`root`: the
/// unified hierarchy under `V2`, the controller's v1 directory otherwise)
/// and the kernel's /proc/cgroups (`subsys hierarchy num_cgroups enabled`;
/// hierarchy 0 means no v1 hierarchy holds it, so cgroup2 may enable it).
/// A controller bound to a v1 hierarchy cannot be enabled in cgroup2's
/// `cgroup.subtree_control` (EBUSY on a hybrid host), so that is only
/// suggested when it is free.
fn remedy(controller: &str, mode: CgroupMode, root: &Path, proc_cgroups: &str) -> String {
    let row = proc_cgroups
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.first() == Some(&controller));
    let (hierarchy, enabled) = match row.as_deref() {
        Some([_, h, _, e, ..]) => (h.parse::<u32>().unwrap_or(0), *e == "1"),
        _ => return format!("this kernel has no {controller} controller (/proc/cgroups does not list it)"),
    };
    let v1_dir = if mode == CgroupMode::V2 { root.parent().unwrap_or(root).join(controller) } else { root.to_path_buf() };
    let unified = match mode {
        CgroupMode::V2 => root.to_path_buf(),
        _ => root.parent().unwrap_or(root).join("unified"),
    };
    if !enabled {
        format!("the kernel has it disabled (cgroup_disable={controller} on its command line): boot without that")
    } else if hierarchy != 0 {
        format!(
            "it is bound to cgroup v1 hierarchy {hierarchy}, so cgroup2 cannot enable it: mount that hierarchy at {} \
             (mkdir -p {0} && mount -t cgroup -o {controller} cgroup {0}, naming any controllers co-mounted with it) \
             or boot with systemd.unified_cgroup_hierarchy=1",
            v1_dir.display()
        )
    } else if mode == CgroupMode::V1 {
        format!("no hierarchy holds it: mount one (mkdir -p {0} && mount -t cgroup -o {controller} cgroup {0})", v1_dir.display())
    } else {
        format!("no v1 hierarchy holds it, so cgroup2 can: enable it (echo +{controller} > {}/cgroup.subtree_control)", unified.display())
    }
}

pub(crate) fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> CgroupError {
    let context = context.into();
    move |source| CgroupError::Io { context, source }
}

/// Removes the groups of isobench processes that no longer exist, killing
/// anything still in them; the groups of live runs are left alone. Returns
/// the directories removed. Called at every start (`cleanup::sweep`).
pub fn sweep() -> Vec<PathBuf> {
    sweep_at(Path::new(CGROUP_ROOT))
}

/// [`sweep`] under another cgroup root.
pub fn sweep_at(root: &Path) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    if !leftovers::in_initial_pid_namespace() {
        return removed;
    }
    let parents: Vec<(PathBuf, bool)> = match cgroup_mode_at(root) {
        CgroupMode::None => return removed,
        CgroupMode::V2 if is_cgroup2(root) => vec![(root.join(PARENT), true)],
        mode => {
            let mut v = v1::hierarchies(root).into_iter().map(|h| (h.join(PARENT), false)).collect::<Vec<_>>();
            if mode != CgroupMode::V1 {
                v.push((root.join("unified").join(PARENT), true));
            }
            v
        }
    };
    for (parent, unified) in parents {
        if !parent.is_dir() {
            continue;
        }
        removed.extend(leftovers::sweep(&parent, leftovers::counted_owner_pid, |e| {
            if !e.file_type().is_ok_and(|t| t.is_dir()) {
                return false;
            }
            let dir = e.path();
            if unified {
                v2::kill_dir(&dir);
            } else {
                v1::kill_dir(&dir);
            }
            remove_tree(&dir).is_ok()
        }));
        remove_parent_if_empty(&parent);
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The trial's host: hybrid, memory bound to v1 hierarchy 4; the old
    /// hint (`echo +memory > cgroup.subtree_control`) fails there with EBUSY.
    #[test]
    fn the_remedy_for_a_missing_controller_is_one_that_can_work_here() {
        let table = "#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpu\t1\t11\t1\nmemory\t4\t72\t1\nhugetlb\t0\t1\t1\nrdma\t0\t1\t0\n";
        let unified = Path::new("/sys/fs/cgroup/unified");
        let bound = remedy("memory", CgroupMode::V2, unified, table);
        assert!(
            bound.starts_with("it is bound to cgroup v1 hierarchy 4, so cgroup2 cannot enable it: mount that hierarchy at /sys/fs/cgroup/memory"),
            "{bound}"
        );
        assert!(!bound.contains("subtree_control"), "{bound}");
        let hybrid = remedy("memory", CgroupMode::Hybrid, Path::new("/sys/fs/cgroup/memory"), table);
        assert!(hybrid.contains("mount -t cgroup -o memory cgroup /sys/fs/cgroup/memory") && !hybrid.contains("subtree_control"), "{hybrid}");
        let free = remedy("hugetlb", CgroupMode::Hybrid, Path::new("/sys/fs/cgroup/hugetlb"), table);
        assert_eq!(free, "no v1 hierarchy holds it, so cgroup2 can: enable it (echo +hugetlb > /sys/fs/cgroup/unified/cgroup.subtree_control)");
        let v1 = remedy("hugetlb", CgroupMode::V1, Path::new("/sys/fs/cgroup/hugetlb"), table);
        assert!(v1.starts_with("no hierarchy holds it: mount one (mkdir -p /sys/fs/cgroup/hugetlb"), "{v1}");
        assert!(remedy("rdma", CgroupMode::V2, unified, table).contains("cgroup_disable=rdma"));
        assert!(remedy("pids", CgroupMode::V2, unified, table).starts_with("this kernel has no pids controller"));
        let line =
            CgroupError::ControllerMissing { controller: "memory", flag: "memory", mode: CgroupMode::V2, root: unified.to_path_buf(), remedy: bound }
                .to_string();
        assert!(
            line.starts_with(
                "the memory controller is not available in the v2 hierarchy at /sys/fs/cgroup/unified, so --memory cannot be applied; it is bound"
            ),
            "{line}"
        );
        assert!(line.ends_with(", or leave --memory out") && !line.contains('\n'), "{line}");
    }

    #[test]
    fn a_plain_directory_is_no_cgroup_root() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(cgroup_mode_at(d.path()), CgroupMode::None);
        assert!(matches!(Cgroup::create_at(d.path(), &Limits::default()), Err(CgroupError::NotMounted(_))));
        assert!(sweep_at(d.path()).is_empty());
    }
}
