//! isobench's container launcher: a process cloned into new namespaces (pid,
//! mount, uts, ipc and net by default; user and cgroup too, each switchable),
//! placed in a cgroup of its own with optional CPU, memory and pids limits,
//! pivot_root'ed into a rootfs built from the static workload binaries, with
//! /proc mounted inside its own pid namespace. `isobench exec` puts a minimal
//! init in front of the command as PID 1; the container environment runs the
//! agent itself as PID 1. Without root it runs rootless, through a user
//! namespace in which the caller is root.
//!
//! It is what `unshare --fork --pid --mount-proc --mount --uts --ipc --net
//! chroot DIR CMD` does, made measurable: [`exec()`] runs any command that way
//! (`isobench exec`), and the container environment (`env::container`)
//! runs the agent that way.
//!
//! - [`ns`]: the namespace set, its parsing and clone(2) flags
//! - [`cgroup`]: v1/v2/hybrid detection, per-container groups, limits, kill
//! - [`rootfs`]: the minimal rootfs, a distribution's (debootstrap), the
//!   user's choice, the mount plan
//! - [`net`]: the run's private network namespace, veth pairs and taps
//! - [`process`]: clone(2), the uid/gid map and cgroup handshake, the
//!   child's side up to execve(2), and the minimal PID 1
//! - [`profile`]: `--profile bare|default|docker`: what is added to the
//!   namespaces (capabilities, no_new_privs, masked paths, seccomp)
//! - [`seccomp`]: the distribution's seccomp profile, resolved and compiled
//! - [`syscall`]: the privileged calls behind a trait, recorded in unit tests
//! - `exec`: `isobench exec` ([`exec()`], [`ExecOptions`], [`NetMode`], [`show_ns`])
//! - `signals`: isobench's SIGINT/SIGQUIT/SIGTERM/SIGHUP while a command
//!   runs: `docker stop`'s grace period, then everything killed

use std::ffi::OsString;

use nix::errno::Errno;

pub mod cgroup;
mod exec;
pub mod net;
pub mod ns;
pub mod process;
pub mod profile;
pub mod rootfs;
pub mod seccomp;
mod signals;
pub mod syscall;

pub use cgroup::{Cgroup, CgroupError, CgroupHold, CgroupMode, Limits, Usage};
pub use exec::{exec, exec_beside, show_ns, ExecOptions, NetMode};
pub use ns::{Namespace, NamespaceSet, NsError};
pub use process::{spawn, ContainerProcess, LaunchSpec, NsInfo, ParentSetup, Stdio};
pub use profile::{Layer, PreparedProfile, Profile};
pub use rootfs::{MinimalRootfs, PreparedRootfs, RootfsChoice, RootfsError};
pub use signals::DEFAULT_STOP_TIMEOUT;

#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error("this needs root; run isobench as root, e.g. with sudo")]
    NotRoot,
    #[error("no command given; usage: isobench exec [--ns LIST] [--rootfs DIR] -- CMD ARGS...")]
    NoCommand,
    #[error(transparent)]
    Ns(#[from] NsError),
    #[error(transparent)]
    Rootfs(#[from] RootfsError),
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    #[error(transparent)]
    Profile(#[from] profile::ProfileError),
    #[error("{0:?} contains a NUL byte")]
    Nul(OsString),
    #[error("clone into new namespaces ({namespaces}) failed: {errno}")]
    Clone { namespaces: NamespaceSet, errno: Errno },
    /// A step of the mount plan (or another setup step) failed in the
    /// child; `hint` is empty or a parenthesised cause and remedy (see
    /// `process::parent::setup_hint`).
    #[error("container setup failed: {step}: {errno}{hint}")]
    Setup { step: String, errno: Errno, hint: String },
    /// The hook of [`LaunchSpec::with_parent_setup`] failed (its own words).
    #[error("container setup failed: parent setup: {0}")]
    ParentSetup(String),
    #[error("cannot execute {command:?} in the container: {errno}")]
    Exec { command: String, errno: Errno },
    #[error("{0}")]
    Net(String),
    #[error("wait for the container: {0}")]
    Wait(Errno),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl ContainerError {
    /// The exit status `isobench exec` should end with for this error, as
    /// shells and container runtimes do: 127 command not found, 126 found but
    /// not executable, 125 the launcher itself failed.
    pub fn exit_status(&self) -> i32 {
        match self {
            ContainerError::Exec { errno: Errno::ENOENT | Errno::ENOTDIR, .. } => 127,
            ContainerError::Exec { .. } => 126,
            _ => 125,
        }
    }
}

/// container-environment settings a user can choose; `None` keeps the
/// environment's default.
#[derive(Debug, Clone, Default)]
pub struct ContainerSettings {
    /// Namespaces of the container environment (`--ns`).
    pub namespaces: Option<NamespaceSet>,
    /// cgroup limits of every container instance (`--cpus`, `--memory`,
    /// `--pids`); any limit implies a cgroup.
    pub limits: Limits,
    /// Whether each instance gets a cgroup of its own (accounting, kill as a
    /// whole); `None`: yes when the host has cgroups.
    pub cgroup: Option<bool>,
    /// The rootfs of the container environment and of the runc, crun and
    /// bwrap peers (`--rootfs minimal|debian|DIR`).
    pub rootfs: RootfsChoice,
    /// The security profile of the container environment and of the runc
    /// and crun peers (`--profile`); `default` unless told.
    pub profile: Profile,
    /// Another set of layers than the profile's (`isobench layers`
    /// measures each alone); `None`: the profile's.
    pub layers: Option<Vec<profile::Layer>>,
    /// Where an overlay root's upper lives (`--overlay-upper`).
    pub overlay_upper: rootfs::UpperKind,
}

impl ContainerSettings {
    /// Whether a container gets a cgroup: explicitly asked, limits given, or
    /// by default when cgroups are mounted. Refuses limits with `cgroup: false`.
    /// The profile (or [`layers`](Self::layers)) made ready for the
    /// container environment and `isobench startup`.
    pub fn prepare_profile(&self) -> Result<PreparedProfile, profile::ProfileError> {
        PreparedProfile::prepare_layers(self.layers.as_deref().unwrap_or(self.profile.layers()), self.overlay_upper)
    }

    pub fn wants_cgroup(&self) -> Result<bool, CgroupError> {
        decide_cgroup(self.cgroup, &self.limits)
    }
}

/// `explicit` (`--cgroup`/`--no-cgroup` or a setting), else yes when the host
/// has cgroups; limits always need one.
fn decide_cgroup(explicit: Option<bool>, limits: &Limits) -> Result<bool, CgroupError> {
    if !nix::unistd::geteuid().is_root() {
        // Rootless: the cgroup tree belongs to root (no delegation is assumed).
        return match limits.is_empty() && explicit != Some(true) {
            true => Ok(false),
            false => Err(CgroupError::Rootless),
        };
    }
    match explicit {
        Some(false) if !limits.is_empty() => {
            Err(CgroupError::InvalidLimit { flag: "--cpus/--memory/--pids", value: "with no cgroup".into(), why: "limits need a cgroup" })
        }
        Some(b) => Ok(b),
        None => Ok(!limits.is_empty() || cgroup::cgroup_mode() != CgroupMode::None),
    }
}

/// The namespaces a container really gets: as root, `asked`; as another
/// user (rootless mode), `asked` plus a user namespace, which owns the others
/// and in which the caller is root.
pub fn effective_namespaces(asked: NamespaceSet) -> NamespaceSet {
    let mut ns = asked;
    if !nix::unistd::geteuid().is_root() {
        ns.insert(Namespace::User);
    }
    ns
}

/// True when isobench runs without root (the container then runs in a user
/// namespace, without cgroup, see [`effective_namespaces`]).
pub fn rootless() -> bool {
    !nix::unistd::geteuid().is_root()
}

/// Fails with [`ContainerError::NotRoot`] unless running as root.
pub fn require_root() -> Result<(), ContainerError> {
    if nix::unistd::geteuid().is_root() {
        Ok(())
    } else {
        Err(ContainerError::NotRoot)
    }
}

/// A host name for a new container: `isobench-` and four hex digits.
pub fn default_hostname() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let mix = nanos ^ std::process::id().rotate_left(16) ^ SEQ.fetch_add(0x9e37, Ordering::Relaxed);
    format!("isobench-{:04x}", mix & 0xffff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_status_follows_shell_conventions() {
        let nf = ContainerError::Exec { command: "x".into(), errno: Errno::ENOENT };
        assert_eq!(nf.exit_status(), 127);
        assert_eq!(ContainerError::Exec { command: "x".into(), errno: Errno::EACCES }.exit_status(), 126);
        assert_eq!(ContainerError::NotRoot.exit_status(), 125);
        assert_eq!(nf.to_string(), "cannot execute \"x\" in the container: ENOENT: No such file or directory");
    }

    #[test]
    fn hostnames_look_like_isobench_xxxx() {
        let h = default_hostname();
        assert!(h.starts_with("isobench-") && h.len() == 13, "{h}");
        assert!(h[9..].chars().all(|c| c.is_ascii_hexdigit()));
    }
}
