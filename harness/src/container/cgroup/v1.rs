//! cgroup v1: one hierarchy per controller (or per group of co-mounted
//! controllers, like Debian's `cpu,cpuacct`), each a tree of its own, so a
//! container's group is one directory in each hierarchy isobench uses and the
//! init is written into each one's `cgroup.procs`.
//!
//! Limits: `cpu.cfs_quota_us` per `cpu.cfs_period_us`, `memory.limit_in_bytes`
//! (and `memory.memsw.limit_in_bytes`, memory + swap, set to the same value so
//! that the limit is not stretched by swapping), `pids.max`. v1 has no
//! `cgroup.kill`: the freezer stops every member (so none can fork a new one
//! while they are being signalled), each gets SIGKILL, and the group is thawed
//! so the kills are delivered.

use std::path::{Path, PathBuf};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::detect::is_cgroup1;
use super::fs::{make_group_dir, members_of, read_u64, remove_tree, write_file, Backoff};
use super::hold::remove_parent_if_empty;
use super::{io_err, CgroupError, CgroupMode, Limits, Usage, PARENT};

/// The controllers isobench uses: limits (cpu, memory, pids), CPU accounting
/// (cpuacct) and killing (freezer).
pub const CONTROLLERS: [&str; 5] = ["freezer", "cpu", "cpuacct", "memory", "pids"];

/// Mount points of the v1 hierarchies of [`CONTROLLERS`] under `root`,
/// canonical and without duplicates (co-mounted controllers share one).
pub fn hierarchies(root: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    for c in CONTROLLERS {
        if let Some(h) = hierarchy(root, c) {
            if !out.contains(&h) {
                out.push(h);
            }
        }
    }
    out
}

/// (controller, mount point of its hierarchy) for each of [`CONTROLLERS`]
/// mounted under `root`; resolved once per [`super::Layout`].
pub fn controller_mounts(root: &Path) -> Vec<(&'static str, PathBuf)> {
    CONTROLLERS.into_iter().filter_map(|c| hierarchy(root, c).map(|h| (c, h))).collect()
}

fn hierarchy(root: &Path, controller: &str) -> Option<PathBuf> {
    let p = root.join(controller);
    if is_cgroup1(&p) {
        p.canonicalize().ok()
    } else {
        None
    }
}

/// One container's group: a directory in each hierarchy.
#[derive(Debug)]
pub struct Group {
    /// (controller, its group directory), one entry per controller present;
    /// co-mounted controllers share a directory.
    dirs: Vec<(&'static str, PathBuf)>,
}

impl Group {
    /// Creates the group `name` under the `isobench` parent of each
    /// hierarchy in `mounts` ([`controller_mounts`] of `root`, whose mode is
    /// `mode`) that it needs, with `limits` applied.
    pub fn create(root: &Path, mode: CgroupMode, mounts: &[(&'static str, PathBuf)], name: &str, limits: &Limits) -> Result<Group, CgroupError> {
        let hierarchy = |_: &Path, controller: &str| mounts.iter().find(|(c, _)| *c == controller).map(|(_, h)| h.clone());
        for (wanted, controller, flag) in
            [(limits.cpus.is_some(), "cpu", "cpus"), (limits.memory.is_some(), "memory", "memory"), (limits.pids.is_some(), "pids", "pids")]
        {
            if wanted && hierarchy(root, controller).is_none() {
                return Err(CgroupError::missing(controller, flag, mode, root.join(controller)));
            }
        }
        let mut group = Group { dirs: Vec::new() };
        for c in CONTROLLERS {
            // Every hierarchy costs a mkdir, a write and an rmdir per
            // container: cpu and pids only when limited (freezer to kill,
            // cpuacct and memory to account are always used).
            if (c == "cpu" && limits.cpus.is_none()) || (c == "pids" && limits.pids.is_none()) {
                continue;
            }
            let Some(h) = hierarchy(root, c) else { continue };
            let dir = h.join(PARENT).join(name);
            if !group.dirs.iter().any(|(_, d)| *d == dir) {
                // The parent usually exists (a CgroupHold keeps it between
                // containers): one mkdir, and the parent's only when missing.
                let made = match std::fs::create_dir(&dir) {
                    Ok(()) => Ok(dir.clone()),
                    Err(_) => make_group_dir(&h.join(PARENT), name, |_| Ok(())),
                };
                if let Err(e) = made {
                    let _ = group.remove();
                    return Err(e);
                }
            }
            group.dirs.push((c, dir));
        }
        if let Err(e) = group.apply(limits) {
            let _ = group.remove();
            return Err(e);
        }
        Ok(group)
    }

    fn dir(&self, controller: &str) -> Option<&Path> {
        self.dirs.iter().find(|(c, _)| *c == controller).map(|(_, d)| d.as_path())
    }

    fn apply(&self, limits: &Limits) -> Result<(), CgroupError> {
        if let (Some(quota), Some(dir)) = (limits.cpu_quota_us(), self.dir("cpu")) {
            write_file(dir, "cpu.cfs_period_us", &super::CPU_PERIOD_US.to_string())?;
            write_file(dir, "cpu.cfs_quota_us", &quota.to_string())?;
        }
        if let (Some(bytes), Some(dir)) = (limits.memory, self.dir("memory")) {
            // memsw must stay >= memory: set memory first (it only grows from
            // unlimited here), then memsw.
            write_file(dir, "memory.limit_in_bytes", &bytes.to_string())?;
            if dir.join("memory.memsw.limit_in_bytes").exists() {
                write_file(dir, "memory.memsw.limit_in_bytes", &bytes.to_string())?;
            }
        }
        if let (Some(n), Some(dir)) = (limits.pids, self.dir("pids")) {
            write_file(dir, "pids.max", &n.to_string())?;
        }
        Ok(())
    }

    /// The group's directories, one per hierarchy.
    pub fn paths(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = Vec::new();
        for (_, d) in &self.dirs {
            if !v.contains(d) {
                v.push(d.clone());
            }
        }
        v
    }

    /// Each hierarchy's `tasks` file of the group, open for writing
    /// (close-on-exec), for [`super::Placement::MoveSelf`].
    pub fn tasks_files(&self) -> Result<Vec<std::os::fd::OwnedFd>, CgroupError> {
        self.paths()
            .into_iter()
            .map(|dir| {
                let p = dir.join("tasks");
                std::fs::OpenOptions::new().write(true).open(&p).map(Into::into).map_err(io_err(format!("open {} for writing", p.display())))
            })
            .collect()
    }

    pub fn add(&self, pid: Pid) -> Result<(), CgroupError> {
        for dir in self.paths() {
            write_file(&dir, "cgroup.procs", &pid.to_string())?;
        }
        Ok(())
    }

    pub fn members(&self) -> Vec<i32> {
        let mut pids: Vec<i32> = self.paths().iter().flat_map(|d| members_of(d)).collect();
        pids.sort_unstable();
        pids.dedup();
        pids
    }

    pub fn usage(&self) -> Usage {
        let memory = self.dir("memory");
        Usage {
            cpu_ns: self.dir("cpuacct").and_then(|d| read_u64(d, "cpuacct.usage")),
            memory_peak_bytes: memory.and_then(|d| read_u64(d, "memory.max_usage_in_bytes")),
            // The oom_kill counter in memory.oom_control exists since Linux 4.13.
            oom_kills: memory.and_then(|d| super::fs::read_keyed(d, "memory.oom_control", "oom_kill")),
            pids_limit_hits: self.dir("pids").and_then(|d| super::fs::read_keyed(d, "pids.events", "max")),
        }
    }

    pub fn kill(&self) -> Result<(), CgroupError> {
        if self.members().is_empty() {
            return Ok(());
        }
        match self.dir("freezer") {
            Some(f) => kill_frozen(f, &self.paths()),
            None => kill_dirs(&self.paths()),
        }
        let mut backoff = Backoff::new();
        loop {
            let left = self.members();
            if left.is_empty() {
                return Ok(());
            }
            if !backoff.pause() {
                return Err(io_err("kill the processes of the container's cgroup")(std::io::Error::other(format!("still running: {left:?}"))));
            }
            // Without a freezer a member may have forked after the signal.
            kill_dirs(&self.paths());
        }
    }

    pub fn remove(&self) -> Result<(), CgroupError> {
        let mut first_err = None;
        for dir in self.paths() {
            if let Err(e) = remove_tree(&dir) {
                first_err.get_or_insert(e);
            }
            if let Some(parent) = dir.parent() {
                remove_parent_if_empty(parent);
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

fn kill_dirs(dirs: &[PathBuf]) {
    for d in dirs {
        for pid in members_of(d) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

/// Freeze, SIGKILL every member, thaw.
fn kill_frozen(freezer: &Path, dirs: &[PathBuf]) {
    if std::fs::write(freezer.join("freezer.state"), "FROZEN").is_ok() {
        let mut backoff = Backoff::new();
        while std::fs::read_to_string(freezer.join("freezer.state")).is_ok_and(|s| s.trim() != "FROZEN") && backoff.pause() {}
    }
    kill_dirs(dirs);
    let _ = std::fs::write(freezer.join("freezer.state"), "THAWED");
}

/// Kills the members of a stale group found by [`super::sweep`] (one
/// hierarchy's directory; the freezer hierarchy's is frozen first).
pub fn kill_dir(dir: &Path) {
    if dir.join("freezer.state").exists() {
        kill_frozen(dir, &[dir.to_path_buf()]);
    } else {
        kill_dirs(&[dir.to_path_buf()]);
    }
}
