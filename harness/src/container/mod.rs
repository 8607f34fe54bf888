//! isobench's container launcher: a process cloned into new pid, mount, uts,
//! ipc and net namespaces (each switchable), pivot_root'ed into a rootfs
//! built from the static workload binaries, with /proc mounted inside its own
//! pid namespace, where it runs as PID 1.
//!
//! It is what `unshare --fork --pid --mount-proc --mount --uts --ipc --net
//! chroot DIR CMD` does, made measurable: [`exec`] runs any command that way
//! (`isobench exec`), and the container environment
//! ([`crate::env::container`]) runs the agent that way.
//!
//! - [`ns`]: the namespace set, its parsing and clone(2) flags
//! - [`rootfs`]: the minimal rootfs, the mount plan, temp-dir sweeping
//! - [`init`]: clone(2) and the child's side up to execve(2)
//! - [`syscall`]: the privileged calls behind a trait, recorded in unit tests

use std::ffi::OsString;
use std::path::PathBuf;

use nix::errno::Errno;

pub mod init;
pub mod ns;
pub mod rootfs;
pub mod syscall;

pub use init::{spawn, ContainerProcess, LaunchSpec, Stdio};
pub use ns::{Namespace, NamespaceSet, NsError};
pub use rootfs::{cleanup, MinimalRootfs, RootfsError};

use crate::workloads::Workloads;

#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error("the container launcher needs root (rootless mode through a user namespace is not implemented yet); run isobench as root, e.g. with sudo")]
    NotRoot,
    #[error("no command given; usage: isobench exec [--ns LIST] [--rootfs DIR] -- CMD ARGS...")]
    NoCommand,
    #[error(transparent)]
    Ns(#[from] NsError),
    #[error(transparent)]
    Rootfs(#[from] RootfsError),
    #[error("{0:?} contains a NUL byte")]
    Nul(OsString),
    #[error("clone into new namespaces ({namespaces}) failed: {errno}")]
    Clone { namespaces: NamespaceSet, errno: Errno },
    #[error("container setup failed: {step}: {errno}")]
    Setup { step: String, errno: Errno },
    #[error("cannot execute {command:?} in the container: {errno}")]
    Exec { command: String, errno: Errno },
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
}

/// What `isobench exec` runs, and where.
#[derive(Debug, Clone)]
pub struct ExecOptions {
    /// Namespaces to create (`--ns`); [`NamespaceSet::DEFAULT`] unless told.
    pub namespaces: NamespaceSet,
    /// `--rootfs DIR`: run in DIR (never modified on the host; it must hold
    /// /proc, /dev and /sys directories when a mount namespace is used).
    /// `None`: the minimal rootfs (the agent, noop and a static busybox when
    /// installed), built in a temp dir for this run and removed after it.
    pub rootfs: Option<PathBuf>,
    /// The command and its arguments; a bare name is searched in the
    /// container's PATH (/bin:/sbin:/usr/bin:/usr/sbin).
    pub command: Vec<OsString>,
    /// Host name inside a new uts namespace; `None`: `isobench-XXXX`.
    pub hostname: Option<String>,
}

impl ExecOptions {
    /// The defaults for `command`: default namespaces, minimal rootfs.
    pub fn new(command: Vec<OsString>) -> ExecOptions {
        ExecOptions { namespaces: NamespaceSet::DEFAULT, rootfs: None, command, hostname: None }
    }
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

/// Runs a command in a new container, like `unshare -fp --mount-proc` with
/// the other namespaces of the set, and returns its exit status (128+n when
/// signal n killed it).
///
/// The command is the container's PID 1; when it exits, the kernel kills
/// whatever else runs in the pid namespace. While it runs, isobench ignores
/// SIGINT and SIGQUIT as system(3) does: the terminal sends them to the
/// command too, and the command decides. If isobench itself is killed, the
/// container dies with it (PR_SET_PDEATHSIG) and the temp rootfs is swept by
/// [`cleanup`] at the next start.
pub fn exec(opts: &ExecOptions, workloads: &Workloads) -> Result<i32, ContainerError> {
    require_root()?;
    if opts.command.is_empty() {
        return Err(ContainerError::NoCommand);
    }
    let mount_ns = opts.namespaces.contains(Namespace::Mount);
    let minimal;
    let rootfs = match &opts.rootfs {
        Some(dir) => rootfs::check_rootfs(dir, mount_ns)?,
        None => {
            minimal = MinimalRootfs::build(workloads)?;
            minimal.path().canonicalize().map_err(|e| ContainerError::Io { context: format!("rootfs {}", minimal.path().display()), source: e })?
        }
    };
    let hostname = opts.hostname.clone().unwrap_or_else(default_hostname);
    let spec = LaunchSpec::new(opts.namespaces, &rootfs, &opts.command, Some(&hostname))?;
    let mut child = spawn(&spec, Stdio::default())?;
    let _ignore = IgnoreInteractiveSignals::new();
    child.wait()
}

/// SIGINT and SIGQUIT ignored for its lifetime, the previous actions restored
/// on drop.
struct IgnoreInteractiveSignals {
    saved: Vec<(nix::sys::signal::Signal, nix::sys::signal::SigAction)>,
}

impl IgnoreInteractiveSignals {
    fn new() -> Self {
        use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
        let ignore = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
        let mut saved = Vec::new();
        for sig in [Signal::SIGINT, Signal::SIGQUIT] {
            // SAFETY: installs SIG_IGN, which runs no code in a handler.
            if let Ok(old) = unsafe { sigaction(sig, &ignore) } {
                saved.push((sig, old));
            }
        }
        IgnoreInteractiveSignals { saved }
    }
}

impl Drop for IgnoreInteractiveSignals {
    fn drop(&mut self) {
        for (sig, old) in &self.saved {
            // SAFETY: restores the action that was installed before.
            let _ = unsafe { nix::sys::signal::sigaction(*sig, old) };
        }
    }
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
