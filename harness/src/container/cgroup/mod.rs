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

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::unistd::Pid;
use serde::Serialize;

use crate::leftovers;

pub mod v1;
pub mod v2;

/// Where cgroup filesystems are mounted on every distribution.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The parent of every container group, at the root of each hierarchy.
pub const PARENT: &str = "isobench";

/// The CFS period isobench sets with `--cpus` (the kernel's default, 100 ms):
/// `--cpus 1.5` is a quota of 150 ms of CPU time per 100 ms.
pub const CPU_PERIOD_US: u64 = 100_000;

/// How long removing a group may be retried while the kernel still tears down
/// its last members (rmdir says EBUSY until then).
const REMOVE_PATIENCE: Duration = Duration::from_secs(5);

/// Pauses between two tries of a retried step: from [`FIRST_PAUSE`],
/// doubling up to [`LONGEST_PAUSE`]. Most waits (a task leaving its group
/// just after it was reaped) end within microseconds, and a fixed
/// millisecond pause would be most of a container's start-to-exit time.
const FIRST_PAUSE: Duration = Duration::from_micros(20);
const LONGEST_PAUSE: Duration = Duration::from_millis(5);

/// Retries with exponential pauses for at most [`REMOVE_PATIENCE`].
pub(crate) struct Backoff {
    t0: std::time::Instant,
    pause: Duration,
}

impl Backoff {
    pub(crate) fn new() -> Backoff {
        Backoff { t0: std::time::Instant::now(), pause: FIRST_PAUSE }
    }

    /// Sleeps before the next try; false once patience has run out.
    pub(crate) fn pause(&mut self) -> bool {
        if self.t0.elapsed() >= REMOVE_PATIENCE {
            return false;
        }
        std::thread::sleep(self.pause);
        self.pause = (self.pause * 2).min(LONGEST_PAUSE);
        true
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("no cgroup filesystem is mounted at {0}; mount cgroup2 there (mount -t cgroup2 none {0}) or run without --cpus/--memory/--pids")]
    NotMounted(PathBuf),
    #[error("the {controller} controller is not available in the {mode} hierarchy at {root}, so --{flag} cannot be applied; enable it (echo +{controller} > {root}/cgroup.subtree_control) or leave --{flag} out", root = .root.display())]
    ControllerMissing { controller: &'static str, flag: &'static str, mode: CgroupMode, root: PathBuf },
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

pub(crate) fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> CgroupError {
    let context = context.into();
    move |source| CgroupError::Io { context, source }
}

/// How the host mounts cgroups, detected by filesystem magic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CgroupMode {
    /// cgroup2 mounted at /sys/fs/cgroup.
    V2,
    /// v1 controllers under a tmpfs at /sys/fs/cgroup, no cgroup2.
    V1,
    /// v1 controllers plus a cgroup2 at /sys/fs/cgroup/unified.
    Hybrid,
    /// Nothing recognisable at /sys/fs/cgroup.
    None,
}

impl CgroupMode {
    pub fn as_str(self) -> &'static str {
        match self {
            CgroupMode::V2 => "v2",
            CgroupMode::V1 => "v1",
            CgroupMode::Hybrid => "hybrid",
            CgroupMode::None => "none",
        }
    }
}

impl fmt::Display for CgroupMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn fs_type(path: &Path) -> Option<nix::sys::statfs::FsType> {
    nix::sys::statfs::statfs(path).ok().map(|s| s.filesystem_type())
}

pub(crate) fn is_cgroup2(path: &Path) -> bool {
    fs_type(path) == Some(nix::sys::statfs::CGROUP2_SUPER_MAGIC)
}

pub(crate) fn is_cgroup1(path: &Path) -> bool {
    fs_type(path) == Some(nix::sys::statfs::CGROUP_SUPER_MAGIC)
}

/// Detects the cgroup mode of the host (by `statfs` magic, as systemd and
/// runc do, not by guessing from paths).
pub fn cgroup_mode() -> CgroupMode {
    cgroup_mode_at(Path::new(CGROUP_ROOT))
}

/// [`cgroup_mode`] for a cgroup root other than /sys/fs/cgroup.
pub fn cgroup_mode_at(root: &Path) -> CgroupMode {
    use nix::sys::statfs::{CGROUP2_SUPER_MAGIC, CGROUP_SUPER_MAGIC, TMPFS_MAGIC};
    match fs_type(root) {
        Some(t) if t == CGROUP2_SUPER_MAGIC => CgroupMode::V2,
        Some(t) if t == TMPFS_MAGIC => {
            let v1 = std::fs::read_dir(root).map(|d| d.flatten().any(|e| is_cgroup1(&e.path()))).unwrap_or(false);
            match (v1, is_cgroup2(&root.join("unified"))) {
                (true, true) => CgroupMode::Hybrid,
                (true, false) => CgroupMode::V1,
                // Only a cgroup2 under a tmpfs: usable as v2, but not a layout
                // any distribution ships; call it what it has.
                (false, true) => CgroupMode::V2,
                (false, false) => CgroupMode::None,
            }
        }
        Some(t) if t == CGROUP_SUPER_MAGIC => CgroupMode::V1,
        _ => CgroupMode::None,
    }
}

/// Resource limits of a container (`--cpus`, `--memory`, `--pids`); `None`
/// leaves a resource unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Limits {
    /// CPUs' worth of time per period (1.5 = one and a half CPUs).
    pub cpus: Option<f64>,
    /// Memory in bytes, beyond which the kernel reclaims and then OOM-kills
    /// inside the group. Swap is not allowed on top.
    pub memory: Option<u64>,
    /// Maximum number of tasks (processes and threads); fork fails with EAGAIN
    /// beyond it.
    pub pids: Option<u64>,
}

impl Limits {
    pub fn is_empty(&self) -> bool {
        self.cpus.is_none() && self.memory.is_none() && self.pids.is_none()
    }

    /// The CFS quota for [`CPU_PERIOD_US`].
    pub fn cpu_quota_us(&self) -> Option<u64> {
        self.cpus.map(|c| ((c * CPU_PERIOD_US as f64).round() as u64).max(1000))
    }

    /// Parses `--cpus`: a positive decimal number of CPUs (0.01 or more).
    pub fn parse_cpus(s: &str) -> Result<f64, CgroupError> {
        let bad = |why| CgroupError::InvalidLimit { flag: "--cpus", value: s.to_string(), why };
        let v: f64 = s.trim().parse().map_err(|_| bad("expected a number of CPUs such as 0.5 or 2"))?;
        if !v.is_finite() || v < 0.01 {
            return Err(bad("must be at least 0.01 (the kernel's smallest quota is 1 ms per 100 ms period)"));
        }
        Ok(v)
    }

    /// Parses `--memory`: bytes, or a number with a binary suffix k, m, g
    /// (`64m` = 64 MiB); at least 1 MiB.
    pub fn parse_memory(s: &str) -> Result<u64, CgroupError> {
        let bad = |why| CgroupError::InvalidLimit { flag: "--memory", value: s.to_string(), why };
        let t = s.trim().to_ascii_lowercase();
        let t = t.strip_suffix("ib").or_else(|| t.strip_suffix('b')).unwrap_or(&t);
        let (num, shift) = match t.chars().last() {
            Some('k') => (&t[..t.len() - 1], 10),
            Some('m') => (&t[..t.len() - 1], 20),
            Some('g') => (&t[..t.len() - 1], 30),
            _ => (t, 0),
        };
        let n: u64 = num.parse().map_err(|_| bad("expected bytes or a size such as 64m or 1g"))?;
        let bytes = n.checked_shl(shift).filter(|b| b >> shift == n).ok_or_else(|| bad("too large"))?;
        if bytes < 1 << 20 {
            return Err(bad("must be at least 1m (a smaller limit kills the container before it starts)"));
        }
        Ok(bytes)
    }

    /// Parses `--pids`: a positive number of tasks.
    pub fn parse_pids(s: &str) -> Result<u64, CgroupError> {
        let bad = |why| CgroupError::InvalidLimit { flag: "--pids", value: s.to_string(), why };
        match s.trim().parse::<u64>() {
            Ok(0) => Err(bad("must be at least 1 (the container's init is a task)")),
            Ok(n) => Ok(n),
            Err(_) => Err(bad("expected a number of tasks such as 64")),
        }
    }
}

/// What a container's group used, read when the container has ended.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Usage {
    /// CPU time of all members, user + system, nanoseconds.
    pub cpu_ns: Option<u64>,
    /// Highest memory charged to the group at any time, bytes.
    pub memory_peak_bytes: Option<u64>,
    /// Members killed by the OOM killer because of the memory limit.
    pub oom_kills: Option<u64>,
    /// Forks refused because of the pids limit.
    pub pids_limit_hits: Option<u64>,
}

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
/// ([`leftovers::name`], which [`sweep`] tells by its owner pid).
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
    /// [`CgroupHold::new`], so that a container's start does not pay for
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

/// Removes a group directory and any groups below it, deepest first, retrying
/// while the kernel still says EBUSY (its last members are exiting); then the
/// parent, when it has become empty.
pub(crate) fn remove_tree(dir: &Path) -> Result<(), CgroupError> {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree(&e.path())?;
            }
        }
    }
    let mut backoff = Backoff::new();
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && backoff.pause() => {}
            Err(e) => return Err(io_err(format!("remove cgroup {}", dir.display()))(e)),
        }
    }
}

/// Removes the `isobench` parent if no container group is left in it, unless
/// a [`CgroupHold`] of this process keeps it. Another run may be creating
/// its group at the same moment: rmdir then fails with EBUSY or ENOTEMPTY,
/// which is fine, and [`make_group_dir`] retries when its parent vanished.
pub(crate) fn remove_parent_if_empty(parent: &Path) {
    if PARENT_HOLDS.load(std::sync::atomic::Ordering::SeqCst) == 0 {
        let _ = std::fs::remove_dir(parent);
    }
}

/// Live [`CgroupHold`]s of this process.
static PARENT_HOLDS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// A host's cgroup layout, detected once: its mode and, for v1 and hybrid,
/// the mount of each controller's hierarchy.
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
    mode: CgroupMode,
    v1: Vec<(&'static str, PathBuf)>,
}

impl Layout {
    /// Detects the layout under `root` (statfs(2) magic, see [`cgroup_mode_at`]).
    pub fn detect(root: &Path) -> Layout {
        let mode = cgroup_mode_at(root);
        let v1 = if matches!(mode, CgroupMode::V1 | CgroupMode::Hybrid) { v1::controller_mounts(root) } else { Vec::new() };
        Layout { root: root.to_path_buf(), mode, v1 }
    }

    pub fn mode(&self) -> CgroupMode {
        self.mode
    }

    /// The `isobench` parent directory of every hierarchy the layout has.
    fn parents(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = Vec::new();
        for (_, h) in &self.v1 {
            if !v.contains(&h.join(PARENT)) {
                v.push(h.join(PARENT));
            }
        }
        match self.mode {
            CgroupMode::V2 if is_cgroup2(&self.root) => v.push(self.root.join(PARENT)),
            CgroupMode::V2 | CgroupMode::Hybrid => v.push(self.root.join("unified").join(PARENT)),
            _ => {}
        }
        v
    }
}

/// What the containers of one launch spec share in the cgroup tree: the
/// [`Layout`], detected when the spec is made, and the `isobench` parent
/// groups, which stay between its containers rather than be removed after
/// each and made again before the next (a container's own group is still
/// made and removed per container). While any hold of this process lives,
/// no container's removal takes a parent away; when the last one is
/// dropped, the parents go if no group is left in them (another run's may
/// be). A run killed before that leaves only empty parents, which the next
/// start's [`sweep`] removes.
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

/// Creates `parent/name`, creating `parent` first; retries when a concurrent
/// run removed the parent in between.
pub(crate) fn make_group_dir(
    parent: &Path,
    name: &str,
    mut prepare_parent: impl FnMut(&Path) -> Result<(), CgroupError>,
) -> Result<PathBuf, CgroupError> {
    let dir = parent.join(name);
    for _ in 0..100 {
        match std::fs::create_dir(parent) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io_err(format!("create cgroup {}", parent.display()))(e)),
        }
        match prepare_parent(parent) {
            Err(CgroupError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => continue,
            r => r?,
        }
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_err(format!("create cgroup {}", dir.display()))(e)),
        }
    }
    Err(CgroupError::Io { context: format!("create cgroup {}", dir.display()), source: std::io::Error::other("its parent kept disappearing") })
}

/// Writes `value` to a control file of a group.
pub(crate) fn write_file(dir: &Path, file: &str, value: &str) -> Result<(), CgroupError> {
    let p = dir.join(file);
    std::fs::write(&p, value).map_err(io_err(format!("write {value:?} to {}", p.display())))
}

pub(crate) fn read_u64(dir: &Path, file: &str) -> Option<u64> {
    std::fs::read_to_string(dir.join(file)).ok()?.trim().parse().ok()
}

/// The value of `key` in a flat-keyed file (`key value` per line).
pub(crate) fn read_keyed(dir: &Path, file: &str, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(dir.join(file)).ok()?;
    text.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok())
}

/// The pids listed in a `cgroup.procs` file.
pub(crate) fn read_procs(dir: &Path) -> Vec<i32> {
    std::fs::read_to_string(dir.join("cgroup.procs")).map(|t| t.lines().filter_map(|l| l.trim().parse().ok()).collect()).unwrap_or_default()
}

/// Members of a group and the groups below it.
pub(crate) fn members_of(dir: &Path) -> Vec<i32> {
    let mut pids = read_procs(dir);
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                pids.extend(members_of(&e.path()));
            }
        }
    }
    pids
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

    #[test]
    fn parses_limits() {
        assert_eq!(Limits::parse_memory("64m").unwrap(), 64 << 20);
        assert_eq!(Limits::parse_memory("1G").unwrap(), 1 << 30);
        assert_eq!(Limits::parse_memory("2MiB").unwrap(), 2 << 20);
        assert_eq!(Limits::parse_memory("1048576").unwrap(), 1 << 20);
        let e = Limits::parse_memory("12x").unwrap_err().to_string();
        assert_eq!(e, "invalid --memory value \"12x\": expected bytes or a size such as 64m or 1g");
        assert!(Limits::parse_memory("4k").is_err(), "below 1 MiB");
        assert!(Limits::parse_memory("99999999999g").is_err());
        assert_eq!(Limits::parse_cpus("1.5").unwrap(), 1.5);
        assert!(Limits::parse_cpus("0").is_err() && Limits::parse_cpus("x").is_err() && Limits::parse_cpus("NaN").is_err());
        assert_eq!(Limits::parse_pids("64").unwrap(), 64);
        assert!(Limits::parse_pids("0").is_err() && Limits::parse_pids("-1").is_err());
        let l = Limits { cpus: Some(0.5), ..Default::default() };
        assert_eq!(l.cpu_quota_us(), Some(50_000));
        assert!(Limits::default().is_empty() && !l.is_empty());
    }

    #[test]
    fn group_names_carry_the_owner_pid() {
        let n = group_name();
        assert_eq!(leftovers::counted_owner_pid(&n), Some(std::process::id() as i32), "{n}");
    }

    #[test]
    fn modes_serialize_and_print_in_lower_case() {
        for (m, s) in [(CgroupMode::V1, "v1"), (CgroupMode::V2, "v2"), (CgroupMode::Hybrid, "hybrid"), (CgroupMode::None, "none")] {
            assert_eq!(serde_json::to_value(m).unwrap(), serde_json::json!(s));
            assert_eq!(m.to_string(), s);
        }
    }

    #[test]
    fn a_plain_directory_is_no_cgroup_root() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(cgroup_mode_at(d.path()), CgroupMode::None);
        assert!(matches!(Cgroup::create_at(d.path(), &Limits::default()), Err(CgroupError::NotMounted(_))));
        assert!(sweep_at(d.path()).is_empty());
    }
}
