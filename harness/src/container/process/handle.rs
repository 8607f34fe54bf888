//! The parent's handle on a running container ([`ContainerProcess`]): its
//! init's pid, its namespaces next to the host's ([`NsInfo`]), and waiting
//! for it, killing it and removing its cgroup.

use std::os::fd::OwnedFd;
use std::sync::Arc;

use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::timeline::{monotonic_ns, LaunchTimes};
use crate::container::cgroup::{Cgroup, Usage};
use crate::container::ns::Namespace;
use crate::container::rootfs::DevTemplate;
use crate::container::ContainerError;

/// The container's PID 1, seen from the host. Dropping it kills it
/// (SIGKILL, which takes the whole pid namespace) and reaps it.
#[derive(Debug)]
pub struct ContainerProcess {
    pub(super) pid: Pid,
    pub(super) status: Option<i32>,
    /// The container's group, destroyed once the init has exited.
    pub(super) cgroup: Option<Cgroup>,
    /// What the group used, read just before it was destroyed.
    pub(super) usage: Option<Usage>,
    /// In init mode, the init lingers after the command exited until this
    /// pipe closes, so the namespaces can still be inspected
    /// ([`ContainerProcess::namespaces`]); closed by any wait.
    pub(super) release: Option<OwnedFd>,
    /// Keeps the spec's /dev template alive while the container runs.
    pub(super) _dev: Option<Arc<DevTemplate>>,
    /// Whether the init has a pid namespace of its own (then its exit ends
    /// every process of the container).
    pub(super) pid_ns: bool,
    /// When each step of the launch, the reap and the clean-up happened.
    pub(super) times: LaunchTimes,
}

impl ContainerProcess {
    /// The host pid of the container's init.
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// When each step of this container's life happened so far (see
    /// [`LaunchTimes`]).
    pub fn times(&self) -> &LaunchTimes {
        &self.times
    }

    /// The container's cgroup while it runs.
    pub fn cgroup(&self) -> Option<&Cgroup> {
        self.cgroup.as_ref()
    }

    /// What the container's cgroup used, once the container has ended and
    /// been waited for; `None` without a cgroup or before that.
    pub fn usage(&self) -> Option<&Usage> {
        self.usage.as_ref()
    }

    /// The namespaces of the container's init next to isobench's own, one per
    /// kind (`lsns` style). Reliable until the first wait in init mode; a
    /// command-as-PID-1 may have exited already, and then the inodes are 0.
    pub fn namespaces(&self) -> Vec<NsInfo> {
        let inode = |pid: &str, ns: Namespace| -> u64 {
            std::fs::read_link(format!("/proc/{pid}/ns/{}", ns.as_str()))
                .ok()
                .and_then(|l| l.to_str().and_then(|s| s.rsplit_once('[')).and_then(|(_, n)| n.trim_end_matches(']').parse().ok()))
                .unwrap_or(0)
        };
        let pid = self.pid.to_string();
        crate::container::ns::CREATION_ORDER
            .into_iter()
            .map(|ns| NsInfo { namespace: ns, host: inode("self", ns), container: inode(&pid, ns) })
            .collect()
    }

    /// Waits for the init to exit; returns its exit status, or 128+n when a
    /// signal n killed it (the shell's convention).
    /// Its cgroup is removed before this returns (see [`wait_exit`](Self::wait_exit)).
    pub fn wait(&mut self) -> Result<i32, ContainerError> {
        let status = self.wait_exit()?;
        self.release_cgroup()?;
        Ok(status)
    }

    /// Like [`wait`](Self::wait), without blocking: `None` while it runs.
    pub fn try_wait(&mut self) -> Result<Option<i32>, ContainerError> {
        let status = self.wait_flags(Some(WaitPidFlag::WNOHANG))?;
        if status.is_some() {
            self.release_cgroup()?;
        }
        Ok(status)
    }

    fn wait_flags(&mut self, flags: Option<WaitPidFlag>) -> Result<Option<i32>, ContainerError> {
        if let Some(s) = self.status {
            return Ok(Some(s));
        }
        self.release = None;
        loop {
            match waitpid(self.pid, flags) {
                Ok(WaitStatus::Exited(_, code)) => self.status = Some(code),
                Ok(WaitStatus::Signaled(_, sig, _)) => self.status = Some(128 + sig as i32),
                Ok(WaitStatus::StillAlive) => return Ok(None),
                Ok(_) => continue,
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(ContainerError::Wait(e)),
            }
            // The init is gone. With a pid namespace the kernel has killed
            // and waited for every other member before the init could be
            // reaped (zap_pid_ns_processes); without one, whatever it left in
            // the group is killed now: the container has exited only when
            // nothing of it runs.
            if let (false, Some(cgroup)) = (self.pid_ns, &self.cgroup) {
                cgroup.kill()?;
            }
            self.times.reaped_ns = Some(monotonic_ns());
            if self.cgroup.is_none() {
                self.times.cleaned_up_ns = self.times.reaped_ns;
            }
            return Ok(self.status);
        }
    }

    /// Waits until the container has exited, like [`wait`](Self::wait), but
    /// leaves its emptied cgroup in place (and its usage unread) until
    /// [`release_cgroup`](Self::release_cgroup), a later wait, or drop:
    /// `isobench startup` times spawn → exit with this and removes the group
    /// after the timed region, as it says in its report.
    pub fn wait_exit(&mut self) -> Result<i32, ContainerError> {
        self.wait_flags(None).map(|s| s.expect("blocking wait returns a status"))
    }

    /// Reads the exited container's cgroup usage ([`usage`](Self::usage)) and
    /// removes the group (killing anything still in it). Does nothing
    /// without a group or once done. Errors: the group could not be emptied
    /// or removed.
    pub fn release_cgroup(&mut self) -> Result<(), ContainerError> {
        if let Some(cgroup) = self.cgroup.take() {
            self.usage = Some(cgroup.usage());
            cgroup.destroy()?;
            self.times.cleaned_up_ns = Some(monotonic_ns());
        }
        Ok(())
    }

    /// SIGKILL to the init (and so to the whole pid namespace), then reap.
    pub fn kill(&mut self) -> Result<i32, ContainerError> {
        if self.status.is_none() {
            let _ = kill(self.pid, Signal::SIGKILL);
        }
        self.wait()
    }
}

impl Drop for ContainerProcess {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}

/// One namespace of a container next to the host's (`isobench exec --show-ns`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NsInfo {
    pub namespace: Namespace,
    /// Inode of isobench's own namespace of this kind.
    pub host: u64,
    /// Inode of the container init's; equal to `host` when not new.
    pub container: u64,
}

impl NsInfo {
    pub fn is_new(&self) -> bool {
        self.host != self.container
    }
}
