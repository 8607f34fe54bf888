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
//! chroot DIR CMD` does, made measurable: [`exec`] runs any command that way
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
//! - [`syscall`]: the privileged calls behind a trait, recorded in unit tests

use std::ffi::OsString;

use nix::errno::Errno;

pub mod cgroup;
pub mod net;
pub mod ns;
pub mod process;
pub mod rootfs;
pub mod syscall;

pub use cgroup::{Cgroup, CgroupError, CgroupHold, CgroupMode, Limits, Usage};
pub use ns::{Namespace, NamespaceSet, NsError};
pub use process::{spawn, ContainerProcess, LaunchSpec, NsInfo, ParentSetup, Stdio};
pub use rootfs::{MinimalRootfs, PreparedRootfs, RootfsChoice, RootfsError};

use crate::workloads::Workloads;

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
    #[error("{0:?} contains a NUL byte")]
    Nul(OsString),
    #[error("clone into new namespaces ({namespaces}) failed: {errno}")]
    Clone { namespaces: NamespaceSet, errno: Errno },
    #[error("container setup failed: {step}: {errno}")]
    Setup { step: String, errno: Errno },
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
}

impl ContainerSettings {
    /// Whether a container gets a cgroup: explicitly asked, limits given, or
    /// by default when cgroups are mounted. Refuses limits with `cgroup: false`.
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

/// What `isobench exec` runs, and where.
#[derive(Debug, Clone)]
pub struct ExecOptions {
    /// Namespaces to create (`--ns`); [`NamespaceSet::DEFAULT`] unless told.
    pub namespaces: NamespaceSet,
    /// `--rootfs DIR`: run in DIR (never modified by isobench; it must hold
    /// /proc, /dev and /sys directories when a mount namespace is used).
    /// `--rootfs debian`: the host distribution's rootfs, built once with
    /// debootstrap into the cache and mounted read-only.
    /// Default: the minimal rootfs (the agent, noop and a static busybox when
    /// installed), built in a temp dir for this run and removed after it.
    pub rootfs: RootfsChoice,
    /// The command and its arguments; a bare name is searched in the
    /// container's PATH (/bin:/sbin:/usr/bin:/usr/sbin).
    pub command: Vec<OsString>,
    /// Host name inside a new uts namespace; `None`: `isobench-XXXX`.
    pub hostname: Option<String>,
    /// cgroup limits (`--cpus`, `--memory`, `--pids`).
    pub limits: Limits,
    /// A cgroup for the container; `None`: when the host has cgroups.
    pub cgroup: Option<bool>,
    /// Print the namespaces created, `lsns` style, on stderr (`--show-ns`).
    pub show_ns: bool,
    /// The container's network (`--net`): loopback only, or a veth pair too.
    pub net: NetMode,
}

/// What network a container with a network namespace gets (`--net`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NetMode {
    /// Nothing: the loopback stays down, as the kernel creates it.
    None,
    /// Only its loopback, up (the default).
    #[default]
    Loopback,
    /// Loopback plus `eth0`, one end of a veth pair whose other end is in
    /// the run's private network namespace ([`net::RunNetns`]), addresses
    /// .2 (container) and .1 of a /24 that exists only there. Root only.
    Veth,
}

impl std::str::FromStr for NetMode {
    type Err = String;
    fn from_str(s: &str) -> Result<NetMode, String> {
        match s {
            "none" => Ok(NetMode::None),
            "loopback" => Ok(NetMode::Loopback),
            "veth" => Ok(NetMode::Veth),
            other => Err(format!("unknown network {other:?}; use none, loopback or veth")),
        }
    }
}

impl ExecOptions {
    /// The defaults for `command`: default namespaces, minimal rootfs.
    pub fn new(command: Vec<OsString>) -> ExecOptions {
        ExecOptions {
            namespaces: NamespaceSet::DEFAULT,
            rootfs: RootfsChoice::Minimal,
            command,
            hostname: None,
            limits: Limits::default(),
            cgroup: None,
            show_ns: false,
            net: NetMode::Loopback,
        }
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

/// Runs a command in a new container, like `unshare -fp --mount-proc` with
/// the other namespaces of the set, and returns its exit status (128+n when
/// signal n killed it). Without root it runs rootless: in a user namespace
/// where the caller is root, without cgroup (limits are refused).
///
/// PID 1 is the launcher's minimal init ([`process`]): it forwards signals to
/// the command, reaps orphans and exits with the command's status; then the
/// kernel kills whatever else runs in the pid namespace, and the cgroup (when
/// there is one) is killed as a whole and removed. While it runs, isobench
/// ignores SIGINT and SIGQUIT as system(3) does (the terminal sends them to
/// the command too, and the command decides) and passes SIGTERM and SIGHUP on
/// to the init. If isobench itself is killed, the container dies with it
/// (PR_SET_PDEATHSIG) and the temp rootfs and cgroup are swept at the next
/// start (`cleanup::sweep`).
pub fn exec(opts: &ExecOptions, workloads: &Workloads) -> Result<i32, ContainerError> {
    if opts.command.is_empty() {
        return Err(ContainerError::NoCommand);
    }
    // Installed before anything is created: a SIGTERM that arrives while the
    // container is being set up is held and delivered to its init once it
    // exists, so every clean-up below still runs.
    let _ignore = IgnoreInteractiveSignals::new();
    let forward = ForwardTermination::install();
    let namespaces = effective_namespaces(opts.namespaces);
    let with_cgroup = decide_cgroup(opts.cgroup, &opts.limits)?;
    let mount_ns = namespaces.contains(Namespace::Mount);
    let rootfs = PreparedRootfs::prepare(&opts.rootfs, workloads, mount_ns)?;
    let hostname = opts.hostname.clone().unwrap_or_else(default_hostname);
    let mut spec = LaunchSpec::new(namespaces, rootfs.path(), &opts.command, Some(&hostname))?.with_init(true);
    if rootfs.read_only() {
        spec = spec.with_read_only_root(rootfs.path())?;
    }
    if with_cgroup {
        spec = spec.with_cgroup(opts.limits);
    }
    // The veth's host end lives as long as this call; the kernel also removes
    // the pair when the container's network namespace goes.
    let veth: VethSlot = Default::default();
    if opts.net == NetMode::None {
        if !namespaces.contains(Namespace::Net) {
            return Err(ContainerError::Net("--net none needs a network namespace: add net to --ns".into()));
        }
        spec = spec.with_loopback(false);
    }
    if opts.net == NetMode::Veth {
        spec = spec.with_parent_setup(veth_setup(namespaces, std::sync::Arc::clone(&veth))?);
    }
    let mut child = spawn(&spec, Stdio::default())?;
    forward.to(child.pid());
    if opts.show_ns {
        eprint!("{}", show_ns(&child, namespaces));
    }
    child.wait()
}

/// The parent-side hook that gives a container `eth0`: a veth pair from the
/// run's network namespace, created directly in the child's (see
/// [`NetMode::Veth`]). Refused without root or without a network namespace.
/// Where the hook leaves the veth's host end and the run's namespace it is
/// in, both kept for as long as the container runs.
type VethSlot = std::sync::Arc<std::sync::Mutex<Option<(net::Link, std::sync::Arc<net::RunNetns>)>>>;

fn veth_setup(namespaces: NamespaceSet, keep: VethSlot) -> Result<ParentSetup, ContainerError> {
    if rootless() {
        return Err(ContainerError::Net("--net veth needs root (CAP_NET_ADMIN on the host); use --net loopback".into()));
    }
    if !namespaces.contains(Namespace::Net) {
        return Err(ContainerError::Net("--net veth needs a network namespace: add net to --ns".into()));
    }
    let netns = net::RunNetns::shared().map_err(|e| ContainerError::Net(e.to_string()))?;
    Ok(Box::new(move |pid: nix::unistd::Pid| {
        let subnet = netns.try_allocate_subnet().map_err(|e| e.to_string())?;
        let path = format!("/proc/{pid}/ns/net");
        let peer = std::fs::File::open(&path).map_err(|e| format!("open {path}: {e}"))?;
        let link = netns.add_veth(&format!("ibv{pid}"), std::os::fd::AsFd::as_fd(&peer), "eth0", &subnet, None).map_err(|e| e.to_string())?;
        *keep.lock().unwrap_or_else(|e| e.into_inner()) = Some((link, netns));
        Ok(())
    }))
}

/// `lsns`-style lines for `--show-ns`: each kind, its inode on the host and
/// in the container, and whether the container got a new one.
pub fn show_ns(child: &ContainerProcess, asked: NamespaceSet) -> String {
    let mut out = format!("{:<7} {:>12} {:>12}  {}\n", "NS", "HOST", "CONTAINER", "STATUS");
    for info in child.namespaces() {
        let status = match (info.is_new(), asked.contains(info.namespace)) {
            (true, _) => "new",
            (false, true) => "NOT NEW",
            (false, false) => "shared with the host",
        };
        out.push_str(&format!("{:<7} {:>12} {:>12}  {}\n", info.namespace.as_str(), info.host, info.container, status));
    }
    if let Some(cg) = child.cgroup() {
        for p in cg.paths() {
            out.push_str(&format!("cgroup  {} ({})\n", p.display(), cg.mode()));
        }
    }
    out
}

/// While alive, SIGTERM and SIGHUP to isobench are passed on to the container's
/// init (which passes them on to the command), so `kill <isobench>` ends the
/// command the way it would end it outside, and isobench can still remove the
/// cgroup and exit with the command's status (143 after SIGTERM).
struct ForwardTermination {
    saved: Vec<(nix::sys::signal::Signal, nix::sys::signal::SigAction)>,
}

/// The pid signals are forwarded to; 0 when none.
static FORWARD_TO: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);
/// A signal that arrived before there was a pid to forward it to.
static PENDING: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

extern "C" fn forward_signal(sig: libc::c_int) {
    use std::sync::atomic::Ordering::SeqCst;
    let pid = FORWARD_TO.load(SeqCst);
    if pid > 0 {
        // SAFETY: kill(2) is async-signal-safe.
        unsafe { libc::kill(pid, sig) };
    } else {
        PENDING.store(sig, SeqCst);
    }
}

impl ForwardTermination {
    /// Catches SIGTERM and SIGHUP from now on; until [`to`](Self::to) names
    /// the target, the last one is held.
    fn install() -> Self {
        use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
        use std::sync::atomic::Ordering::SeqCst;
        FORWARD_TO.store(0, SeqCst);
        PENDING.store(0, SeqCst);
        let action = SigAction::new(SigHandler::Handler(forward_signal), SaFlags::SA_RESTART, SigSet::empty());
        let mut saved = Vec::new();
        for sig in [Signal::SIGTERM, Signal::SIGHUP] {
            // SAFETY: the handler only reads an atomic and calls kill(2).
            if let Ok(old) = unsafe { sigaction(sig, &action) } {
                saved.push((sig, old));
            }
        }
        ForwardTermination { saved }
    }

    /// Forwards to `pid` from now on, and delivers a held signal.
    fn to(&self, pid: nix::unistd::Pid) {
        use std::sync::atomic::Ordering::SeqCst;
        FORWARD_TO.store(pid.as_raw(), SeqCst);
        let held = PENDING.swap(0, SeqCst);
        if held != 0 {
            // SAFETY: kill(2) with a pid we own and a signal number that was
            // delivered to us.
            unsafe { libc::kill(pid.as_raw(), held) };
        }
    }
}

impl Drop for ForwardTermination {
    fn drop(&mut self) {
        for (sig, old) in &self.saved {
            // SAFETY: restores the action that was installed before.
            let _ = unsafe { nix::sys::signal::sigaction(*sig, old) };
        }
        FORWARD_TO.store(0, std::sync::atomic::Ordering::Relaxed);
    }
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
