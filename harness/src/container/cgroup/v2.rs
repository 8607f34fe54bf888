//! cgroup v2, the unified hierarchy: one tree for every controller.
//!
//! A controller is usable in a group only when its parent lists it in
//! `cgroup.subtree_control`, and (the "no internal processes" rule) a group
//! other than the root that hands controllers down may hold no processes
//! itself. So the `isobench` parent sits at the root of the hierarchy, holds
//! no process, and passes cpu, memory and pids down to the container groups.
//! `cgroup.kill` (Linux 5.14) kills every member in one write; on older
//! kernels the group is frozen (`cgroup.freeze`) before each member is
//! signalled, so nothing can fork in between.

use std::path::{Path, PathBuf};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::fs::{make_group_dir, members_of, read_keyed, read_u64, remove_tree, write_file, Backoff};
use super::hold::remove_parent_if_empty;
use super::{io_err, CgroupError, CgroupMode, Limits, Usage, PARENT};

/// The controllers isobench hands down to container groups.
pub const CONTROLLERS: [&str; 3] = ["cpu", "memory", "pids"];

/// One container's group in the unified hierarchy.
#[derive(Debug)]
pub struct Group {
    dir: PathBuf,
}

/// The controllers a group can enable for its children.
pub fn available(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("cgroup.controllers")).map(|t| t.split_whitespace().map(String::from).collect()).unwrap_or_default()
}

impl Group {
    /// Creates `<root>/isobench/<name>` with `limits` applied; refuses a limit
    /// whose controller the hierarchy does not have.
    pub fn create(root: &Path, name: &str, limits: &Limits) -> Result<Group, CgroupError> {
        let have = available(root);
        for (wanted, controller, flag) in
            [(limits.cpus.is_some(), "cpu", "cpus"), (limits.memory.is_some(), "memory", "memory"), (limits.pids.is_some(), "pids", "pids")]
        {
            if wanted && !have.iter().any(|c| c == controller) {
                return Err(CgroupError::missing(controller, flag, CgroupMode::V2, root.to_path_buf()));
            }
        }
        let enable: Vec<&str> = CONTROLLERS.into_iter().filter(|c| have.iter().any(|h| h == c)).collect();
        let dir = make_group_dir(&root.join(PARENT), name, |parent| {
            for dir in [root, parent] {
                for c in &enable {
                    // Already enabled is fine; a failure shows up below as a
                    // missing limit file, with the path in the message.
                    let _ = std::fs::write(dir.join("cgroup.subtree_control"), format!("+{c}"));
                }
            }
            if parent.is_dir() {
                Ok(())
            } else {
                Err(io_err(format!("create cgroup {}", parent.display()))(std::io::ErrorKind::NotFound.into()))
            }
        })?;
        let group = Group { dir };
        if let Err(e) = group.apply(limits) {
            let _ = group.remove();
            return Err(e);
        }
        Ok(group)
    }

    fn apply(&self, limits: &Limits) -> Result<(), CgroupError> {
        if let Some(quota) = limits.cpu_quota_us() {
            write_file(&self.dir, "cpu.max", &format!("{quota} {}", super::CPU_PERIOD_US))?;
        }
        if let Some(bytes) = limits.memory {
            write_file(&self.dir, "memory.max", &bytes.to_string())?;
            // The limit means memory, not memory + swap.
            if self.dir.join("memory.swap.max").exists() {
                write_file(&self.dir, "memory.swap.max", "0")?;
            }
        }
        if let Some(n) = limits.pids {
            write_file(&self.dir, "pids.max", &n.to_string())?;
        }
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    pub fn add(&self, pid: Pid) -> Result<(), CgroupError> {
        write_file(&self.dir, "cgroup.procs", &pid.to_string())
    }

    pub fn members(&self) -> Vec<i32> {
        members_of(&self.dir)
    }

    pub fn usage(&self) -> Usage {
        Usage {
            cpu_ns: read_keyed(&self.dir, "cpu.stat", "usage_usec").map(|us| us * 1000),
            // memory.peak exists since Linux 5.19.
            memory_peak_bytes: read_u64(&self.dir, "memory.peak"),
            oom_kills: read_keyed(&self.dir, "memory.events", "oom_kill"),
            pids_limit_hits: read_keyed(&self.dir, "pids.events", "max"),
        }
    }

    pub fn kill(&self) -> Result<(), CgroupError> {
        if read_keyed(&self.dir, "cgroup.events", "populated") == Some(0) {
            return Ok(());
        }
        kill_dir(&self.dir);
        wait_empty(&self.dir)
    }

    pub fn remove(&self) -> Result<(), CgroupError> {
        remove_tree(&self.dir)?;
        if let Some(parent) = self.dir.parent() {
            remove_parent_if_empty(parent);
        }
        Ok(())
    }
}

/// SIGKILL to every member of the group at `dir` and below: cgroup.kill when
/// the kernel has it, else freeze, signal each member, thaw.
pub fn kill_dir(dir: &Path) {
    if std::fs::write(dir.join("cgroup.kill"), "1").is_ok() {
        return;
    }
    let frozen = std::fs::write(dir.join("cgroup.freeze"), "1").is_ok();
    if frozen {
        let mut backoff = Backoff::new();
        while read_keyed(dir, "cgroup.events", "frozen") != Some(1) && backoff.pause() {}
    }
    for pid in members_of(dir) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
    if frozen {
        // A frozen task does not die until thawed.
        let _ = std::fs::write(dir.join("cgroup.freeze"), "0");
    }
}

/// Waits until no process is left in the group (`populated 0`).
fn wait_empty(dir: &Path) -> Result<(), CgroupError> {
    let mut backoff = Backoff::new();
    loop {
        let populated = read_keyed(dir, "cgroup.events", "populated").map_or_else(|| !members_of(dir).is_empty(), |p| p != 0);
        if !populated || !dir.exists() {
            return Ok(());
        }
        if !backoff.pause() {
            return Err(io_err(format!("kill the processes of cgroup {}", dir.display()))(std::io::Error::other(format!(
                "still running: {:?}",
                members_of(dir)
            ))));
        }
    }
}
