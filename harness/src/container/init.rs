//! The container's init: clone(2) into new namespaces, and what the child does
//! before it execs the command, which then runs as the namespace's PID 1.
//!
//! The harness is multi-threaded (cargo test, criterion). A child cloned from
//! a multi-threaded process holds a copy of memory in which another thread may
//! have owned the allocator's lock (or, with CLONE_VM, which the launcher
//! uses unless an init is put in front, shares that memory while the other
//! threads run: see `LaunchSpec::shares_memory`), so the child must not
//! allocate or lock:
//! [`LaunchSpec`] prepares every C string, pointer array and the mount plan
//! before the clone, and the child only makes system calls. A failure is
//! reported to the parent as 8 bytes (stage, errno) on a close-on-exec pipe,
//! whose end-of-file without data tells the parent the exec succeeded (the
//! fork/exec error pipe of posix_spawn and Rust's std::process).
//!
//! Lifetime: the child sets PR_SET_PDEATHSIG(SIGKILL), so if isobench dies
//! (even by SIGKILL) its container's PID 1 dies, and with it every process in
//! the pid namespace, and with them the mount namespace and its mounts. With
//! a cgroup ([`LaunchSpec::with_cgroup`]) the group is killed as a whole when
//! the container ends, and a group left by a killed isobench is swept at the
//! next start.
//!
//! The handshake: after the clone the parent writes the child's uid/gid
//! maps, makes its cgroup and runs a parent-side setup
//! ([`LaunchSpec::with_parent_setup`], e.g. a veth into the child's network
//! namespace), then sends one byte on a socket pair; without any of the
//! three there is no handshake at all. The child meanwhile mounts its
//! rootfs, sets its hostname and brings its loopback up, and waits for the
//! byte only before it execs, so the two halves overlap (it waits before
//! its mounts instead when they need its ids mapped or a parent setup is
//! promised first: [`LaunchSpec::waits_before_setup`]).
//!
//! cgroup placement: on v1 and hybrid hosts the byte carries the group's
//! `tasks` files (SCM_RIGHTS) and the child moves itself by writing `0` to
//! each, which the kernel does without the global lock a parent's
//! `cgroup.procs` write takes (see [`Placement`]); on v2 the group is made
//! before the clone and the child is born in it (clone3 with
//! CLONE_INTO_CGROUP), and only without that does the parent write the
//! child's pid into `cgroup.procs`. Either way the child execs already
//! limited and accounted, and creates its cgroup namespace
//! (unshare(CLONE_NEWCGROUP)) only after, so the namespace's root is the
//! container's own group rather than isobench's.
//!
//! PID 1 ([`LaunchSpec::with_init`]): a command that was not written to be an
//! init (a shell, `sleep`) neither reaps the orphans re-parented to it nor
//! gets the default action of SIGTERM (the kernel protects a namespace's init
//! from signals it has no handler for). In init mode the child forks once
//! more after the setup: the copy that stays is a minimal init, as tini and
//! `docker --init` provide, which forwards SIGTERM, SIGINT, SIGHUP, SIGQUIT,
//! SIGUSR1/2 and SIGWINCH to the command, reaps every zombie, and exits with
//! the command's status (128+n when signal n killed it). It too only makes
//! system calls: it is still the clone of a multi-threaded process.

use std::ffi::{CString, OsString};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;
use std::ptr;
use std::sync::Arc;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::signal::{kill, Signal};
use nix::sys::stat::{umask, Mode};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use nix::sched::CloneFlags;

use super::cgroup::{Cgroup, CgroupHold, CgroupMode, Limits, Placement, Usage};
use super::ns::{Namespace, NamespaceSet};
use super::rootfs::{self, DevTemplate, Step, CONTAINER_PATH};
use super::syscall::{Linux, Syscall};
use super::ContainerError;

/// Stack of the cloned child until it execs; it only runs the steps below.
const CHILD_STACK_SIZE: usize = 256 * 1024;

/// Stages reported by the child (a mount plan step is reported by index).
const STAGE_PDEATHSIG: u32 = 0x1000_0000;
const STAGE_HOSTNAME: u32 = 0x1000_0001;
const STAGE_LOOPBACK: u32 = 0x1000_0002;
const STAGE_STDIO: u32 = 0x1000_0003;
const STAGE_EXEC: u32 = 0x1000_0004;
const STAGE_CGROUP_NS: u32 = 0x1000_0005;
const STAGE_INIT_FORK: u32 = 0x1000_0006;
const STAGE_CGROUP_MOVE: u32 = 0x1000_0007;

/// Name of the init process (comm, at most 15 bytes), as `ps` shows it.
const INIT_NAME: &std::ffi::CStr = c"isobench-init";

/// Signals the init passes on to the command (SIGCHLD it handles itself).
const FORWARDED_SIGNALS: [libc::c_int; 7] = [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGQUIT, libc::SIGUSR1, libc::SIGUSR2, libc::SIGWINCH];

/// Exit status of a child that failed before exec (the parent reports the
/// real error from the pipe; this is only what waitpid sees).
const SETUP_FAILED: i32 = 127;

/// Everything the child needs, prepared before clone(2).
pub struct LaunchSpec {
    namespaces: NamespaceSet,
    plan: Vec<Step>,
    hostname: Option<CString>,
    /// Absolute paths inside the container to try in turn (the `PATH` search).
    candidates: Vec<CString>,
    /// Owned strings behind `argv_ptrs` and `env_ptrs`.
    argv: Vec<CString>,
    #[allow(dead_code)] // read only through env_ptrs
    env: Vec<CString>,
    argv_ptrs: Vec<*const libc::c_char>,
    env_ptrs: Vec<*const libc::c_char>,
    /// `Some`: run in a new cgroup with these limits.
    cgroup: Option<Limits>,
    /// The cgroup layout and parents, resolved by [`LaunchSpec::with_cgroup`].
    cgroup_hold: Option<Arc<CgroupHold>>,
    /// Fork a minimal init that stays PID 1 (see the module comment).
    init: bool,
    /// Bring the new network namespace's loopback up (`--net none`: no).
    loopback: bool,
    /// The uid/gid maps the parent writes for a new user namespace.
    id_maps: Option<IdMaps>,
    /// `Some`: the parent runs a setup while the child waits in its new
    /// namespaces ([`LaunchSpec::with_parent_setup`]); the inner `None` once
    /// the first spawn has taken it.
    parent_setup: Option<std::sync::Mutex<Option<ParentSetup>>>,
    /// The /dev every container of this spec binds (see [`DevTemplate`]);
    /// each [`ContainerProcess`] holds it too, so it outlives them.
    dev: Option<Arc<DevTemplate>>,
}

/// What the parent does to a child that is in its new namespaces but has not
/// gone on to its setup yet (e.g. move one end of a veth pair into
/// `/proc/<pid>/ns/net`); the argument is the child's host pid. An `Err` is
/// one line saying what failed, and aborts the launch.
pub type ParentSetup = Box<dyn FnOnce(Pid) -> Result<(), String> + Send>;

/// The uid and gid maps of a container's user namespace
/// (user_namespaces(7)): lines `inside outside count`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdMaps {
    pub uid_map: String,
    pub gid_map: String,
    /// Write `deny` to /proc/PID/setgroups before the gid map. The kernel
    /// requires it when the writer lacks CAP_SETGID over the parent namespace
    /// (an unprivileged caller): otherwise a process could drop a group with
    /// setgroups(2) that was denying it access. Root keeps setgroups allowed.
    pub deny_setgroups: bool,
}

impl IdMaps {
    /// As root: every id maps to itself, so the container's root is the
    /// host's root and files keep their owners (the user namespace is there
    /// to be measured and to own the other namespaces). As another user:
    /// root inside is the caller outside, one id each (rootless mode).
    pub fn for_caller() -> IdMaps {
        Self::for_ids(nix::unistd::geteuid().as_raw(), nix::unistd::getegid().as_raw())
    }

    /// The maps for a caller with effective ids `uid` and `gid`.
    pub fn for_ids(uid: u32, gid: u32) -> IdMaps {
        if uid == 0 {
            IdMaps { uid_map: "0 0 4294967295\n".into(), gid_map: "0 0 4294967295\n".into(), deny_setgroups: false }
        } else {
            IdMaps { uid_map: format!("0 {uid} 1\n"), gid_map: format!("0 {gid} 1\n"), deny_setgroups: true }
        }
    }

    /// Writes the maps of process `pid` (once, before it goes on).
    fn write(&self, pid: Pid) -> Result<(), ContainerError> {
        let write = |file: &str, text: &str| {
            let path = format!("/proc/{pid}/{file}");
            std::fs::write(&path, text).map_err(|e| ContainerError::Io { context: format!("write {:?} to {path}", text.trim()), source: e })
        };
        write("uid_map", &self.uid_map)?;
        if self.deny_setgroups {
            write("setgroups", "deny")?;
        }
        write("gid_map", &self.gid_map)
    }
}

// SAFETY: the raw pointers point into `argv` and `env`, owned by the same
// struct and never mutated after construction.
unsafe impl Send for LaunchSpec {}
unsafe impl Sync for LaunchSpec {}

impl LaunchSpec {
    /// Prepares the launch of `command` in `rootfs` (absolute, canonical).
    /// A command without a `/` is looked up in [`CONTAINER_PATH`] inside the
    /// container, as execvp(3) would there.
    pub fn new(namespaces: NamespaceSet, rootfs: &Path, command: &[OsString], hostname: Option<&str>) -> Result<LaunchSpec, ContainerError> {
        let first = command.first().ok_or(ContainerError::NoCommand)?;
        let cstr = |s: &OsString| CString::new(s.as_bytes()).map_err(|_| ContainerError::Nul(s.clone()));
        let argv = command.iter().map(cstr).collect::<Result<Vec<_>, _>>()?;
        let candidates = if first.as_bytes().contains(&b'/') {
            vec![argv[0].clone()]
        } else {
            let mut v = Vec::new();
            for dir in CONTAINER_PATH.split(':') {
                let mut p = dir.as_bytes().to_vec();
                p.push(b'/');
                p.extend_from_slice(first.as_bytes());
                v.push(CString::new(p).map_err(|_| ContainerError::Nul(first.clone()))?);
            }
            v
        };
        let mut env = vec![format!("PATH={CONTAINER_PATH}"), "HOME=/".to_string()];
        if let Ok(term) = std::env::var("TERM") {
            env.push(format!("TERM={term}"));
        }
        let env = env
            .into_iter()
            .map(|s| CString::new(s).map_err(|e| ContainerError::Nul(OsString::from_vec(e.into_vec()))))
            .collect::<Result<Vec<_>, _>>()?;
        let hostname = match hostname {
            Some(h) if namespaces.contains(Namespace::Uts) => Some(CString::new(h).map_err(|_| ContainerError::Nul(h.into()))?),
            _ => None,
        };
        // Root can make the nodes once on the host; rootless, each container
        // binds the host's nodes one by one.
        let dev = match namespaces.contains(Namespace::Mount) {
            true => DevTemplate::build()?.map(Arc::new),
            false => None,
        };
        let plan = rootfs::mount_plan_dev(rootfs, namespaces, false, dev.as_ref().map(|d| d.path()))?;
        let id_maps = namespaces.contains(Namespace::User).then(IdMaps::for_caller);
        let argv_ptrs = argv.iter().map(|a| a.as_ptr()).chain([ptr::null()]).collect();
        let env_ptrs = env.iter().map(|a| a.as_ptr()).chain([ptr::null()]).collect();
        Ok(LaunchSpec {
            namespaces,
            plan,
            hostname,
            candidates,
            argv,
            env,
            argv_ptrs,
            env_ptrs,
            cgroup: None,
            cgroup_hold: None,
            init: false,
            loopback: true,
            id_maps,
            parent_setup: None,
            dev,
        })
    }

    /// Runs the container in a cgroup of its own with `limits` (possibly
    /// none: the group still accounts usage and kills everything at the end).
    /// The host's cgroup layout is detected here, once, and the `isobench`
    /// parent groups stay while the spec does ([`CgroupHold`]).
    pub fn with_cgroup(mut self, limits: Limits) -> LaunchSpec {
        self.cgroup = Some(limits);
        let hold = if self.namespaces.contains(Namespace::Pid) { CgroupHold::for_pid_namespace() } else { CgroupHold::new() };
        self.cgroup_hold = Some(Arc::new(hold));
        self
    }

    /// Mounts `rootfs` (the one given to [`new`](Self::new)) read-only, with
    /// a tmpfs on /tmp: for a rootfs shared between containers
    /// ([`rootfs::mount_plan_with`]).
    pub fn with_read_only_root(mut self, rootfs: &Path) -> Result<LaunchSpec, ContainerError> {
        self.plan = rootfs::mount_plan_dev(rootfs, self.namespaces, true, self.dev.as_ref().map(|d| d.path()))?;
        Ok(self)
    }

    /// Runs `setup` in the parent with the child's host pid, once the child
    /// is in its new namespaces (all but a cgroup namespace deferred behind
    /// cgroup placement), its uid/gid maps are written and its cgroup is
    /// made, but before it moves into that group, mounts anything, sets its
    /// hostname, brings up its loopback or execs: the place to create a veth
    /// into its network namespace (`/proc/<pid>/ns/net`). It rides on the
    /// handshake the maps and the cgroup already use, so a spec without it
    /// costs nothing more.
    ///
    /// Runs in the first [`spawn`] of this spec only; a later spawn of the
    /// same spec fails with [`ContainerError::ParentSetup`] rather than start
    /// a container without it. An `Err` from `setup` aborts the launch with
    /// [`ContainerError::ParentSetup`] (the child is killed and reaped).
    pub fn with_parent_setup(mut self, setup: ParentSetup) -> LaunchSpec {
        self.parent_setup = Some(std::sync::Mutex::new(Some(setup)));
        self
    }

    /// Puts a minimal init as PID 1 in front of the command (see the module
    /// comment); without it the command itself is PID 1.
    pub fn with_init(mut self, init: bool) -> LaunchSpec {
        self.init = init;
        self
    }

    /// With `false`, a new network namespace's loopback stays down, as the
    /// kernel creates it (`--net none`: no network at all). Default: up.
    pub fn with_loopback(mut self, up: bool) -> LaunchSpec {
        self.loopback = up;
        self
    }

    pub fn cgroup(&self) -> Option<&Limits> {
        self.cgroup.as_ref()
    }

    pub fn init(&self) -> bool {
        self.init
    }

    /// The flags of the clone(2) itself: the cgroup namespace is left out
    /// when the child must first be placed in its group (it unshares it then).
    fn clone_flags(&self) -> CloneFlags {
        let mut flags = self.namespaces.clone_flags();
        if self.defer_cgroup_ns() {
            flags.remove(CloneFlags::CLONE_NEWCGROUP);
        }
        flags
    }

    /// Whether the child runs in the parent's memory (CLONE_VM, as
    /// posix_spawn(3) does) until it execs, rather than in a copy: the copy
    /// (page tables of the whole harness, write-protected for copy-on-write,
    /// and torn down again at execve) is most of what a fork of a large
    /// process costs. Not in init mode: the init never execs and would keep
    /// running in isobench's memory. Unlike posix_spawn the parent is not
    /// suspended (no CLONE_VFORK: it writes the uid/gid maps and places the
    /// child while the child waits), so both run at once on one thread's
    /// thread-local storage: the child's libc calls write the errno of the
    /// thread that called [`spawn`]. The parent only reads errno right after
    /// its own failed calls, and the only ones that overlap the child's
    /// setup are a blocking read (EINTR at worst) and writes that do not fail,
    /// so the shared errno can at worst garble the errno of an error message
    /// in a launch that fails anyway.
    fn shares_memory(&self) -> bool {
        !self.init
    }

    /// Whether the child waits for the parent's handshake (uid/gid maps,
    /// cgroup placement, parent setup) before its mount plan, rather than
    /// after its whole setup, just before it execs. Late is the default:
    /// the parent's map writes and mkdirs of the cgroup then overlap the
    /// child's mounts instead of preceding them. Early when the plan creates
    /// files (rootless: a tmpfs /dev with bind-mount targets), which must
    /// belong to a mapped id in a new user namespace, and with a parent
    /// setup, which is promised to run before the child's setup
    /// ([`with_parent_setup`](Self::with_parent_setup)).
    /// Either way the child is mapped, placed and set up before it unshares
    /// its cgroup namespace and execs.
    fn waits_before_setup(&self) -> bool {
        self.parent_setup.is_some()
            || (self.id_maps.is_some()
                && self.plan.iter().any(|s| matches!(s, Step::Mkdir { .. } | Step::Mknod { .. } | Step::Touch { .. } | Step::Symlink { .. })))
    }

    fn defer_cgroup_ns(&self) -> bool {
        self.cgroup.is_some() && self.namespaces.contains(Namespace::Cgroup)
    }

    pub fn namespaces(&self) -> NamespaceSet {
        self.namespaces
    }

    pub fn plan(&self) -> &[Step] {
        &self.plan
    }

    fn describe(&self, stage: u32) -> String {
        match stage {
            STAGE_PDEATHSIG => "prctl(PR_SET_PDEATHSIG)".into(),
            STAGE_HOSTNAME => "sethostname".into(),
            STAGE_LOOPBACK => "bring up the loopback interface".into(),
            STAGE_STDIO => "set up stdin/stdout".into(),
            STAGE_CGROUP_NS => "unshare the cgroup namespace".into(),
            STAGE_INIT_FORK => "fork the command from the init".into(),
            STAGE_CGROUP_MOVE => "move itself into its cgroup (0 written to tasks)".into(),
            i => self.plan.get(i as usize).map_or_else(|| format!("stage {i}"), ToString::to_string),
        }
    }
}

/// File descriptors to install as the container's stdin and stdout; `None`
/// inherits the harness's own.
#[derive(Default, Clone, Copy)]
pub struct Stdio<'a> {
    pub stdin: Option<BorrowedFd<'a>>,
    pub stdout: Option<BorrowedFd<'a>>,
}

/// The container's PID 1, seen from the host. Dropping it kills it
/// (SIGKILL, which takes the whole pid namespace) and reaps it.
#[derive(Debug)]
pub struct ContainerProcess {
    pid: Pid,
    status: Option<i32>,
    /// The container's group, destroyed once the init has exited.
    cgroup: Option<Cgroup>,
    /// What the group used, read just before it was destroyed.
    usage: Option<Usage>,
    /// In init mode, the init lingers after the command exited until this
    /// pipe closes, so the namespaces can still be inspected
    /// ([`ContainerProcess::namespaces`]); closed by any wait.
    release: Option<OwnedFd>,
    /// Keeps the spec's /dev template alive while the container runs.
    _dev: Option<Arc<DevTemplate>>,
    /// Whether the init has a pid namespace of its own (then its exit ends
    /// every process of the container).
    pid_ns: bool,
}

impl ContainerProcess {
    /// The host pid of the container's init.
    pub fn pid(&self) -> Pid {
        self.pid
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
        super::ns::CREATION_ORDER.into_iter().map(|ns| NsInfo { namespace: ns, host: inode("self", ns), container: inode(&pid, ns) }).collect()
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

/// Clones the container's init into new namespaces and execs the command
/// there. Returns once the command has been exec'd (or the setup failed, in
/// which case the error names the step and the child is already reaped and
/// its cgroup removed).
pub fn spawn(spec: &LaunchSpec, stdio: Stdio<'_>) -> Result<ContainerProcess, ContainerError> {
    let pipe =
        |what: &str| nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| ContainerError::Io { context: format!("pipe for {what}"), source: e.into() });
    let (err_r, err_w) = pipe("setup errors")?;
    let (alive_r, alive_w) = pipe("parent liveness")?;
    // A v1 (or hybrid) group is made after the clone, while the child sets
    // up, and the child moves itself in (see `Placement`); a v2 group is
    // made before, and the child is cloned into it (`clone_child`).
    let make_cgroup = || match (&spec.cgroup, &spec.cgroup_hold) {
        (Some(limits), Some(hold)) => Cgroup::create_in(hold.layout(), limits).map(Some),
        (Some(limits), None) => Cgroup::create(limits).map(Some),
        (None, _) => Ok(None),
    };
    let cgroup_after_clone = match &spec.cgroup_hold {
        Some(hold) => matches!(hold.layout().mode(), CgroupMode::V1 | CgroupMode::Hybrid),
        None => false,
    };
    let cgroup = if cgroup_after_clone { None } else { make_cgroup()? };
    // Taken before the clone: a spec whose hook already ran fails here, with
    // nothing started yet.
    let parent_setup = match &spec.parent_setup {
        Some(slot) => Some(slot.lock().unwrap_or_else(|e| e.into_inner()).take().ok_or_else(|| {
            ContainerError::ParentSetup("the parent setup of this launch spec already ran in an earlier spawn; build a new spec".into())
        })?),
        None => None,
    };
    let handshake = spec.cgroup.is_some() || spec.id_maps.is_some() || parent_setup.is_some();
    // A unix socket pair rather than a pipe: the go byte can carry the
    // group's `tasks` files (SCM_RIGHTS), opened after the clone.
    let go = if handshake {
        Some(
            nix::sys::socket::socketpair(
                nix::sys::socket::AddressFamily::Unix,
                nix::sys::socket::SockType::SeqPacket,
                None,
                nix::sys::socket::SockFlag::SOCK_CLOEXEC,
            )
            .map_err(|e| ContainerError::Io {
                context: "socket pair for the uid/gid maps, cgroup placement and parent setup".into(),
                source: e.into(),
            })?,
        )
    } else {
        None
    };
    let release = if spec.init { Some(pipe("init release")?) } else { None };
    let ctx = ChildCtx {
        spec,
        err_fd: err_w.as_raw_fd(),
        alive_r: alive_r.as_raw_fd(),
        alive_w: alive_w.as_raw_fd(),
        go_r: go.as_ref().map(|(r, _)| r.as_raw_fd()),
        go_w: go.as_ref().map(|(_, w)| w.as_raw_fd()),
        release_r: release.as_ref().map(|(r, _)| r.as_raw_fd()),
        stdin: stdio.stdin.map(|f| f.as_raw_fd()),
        stdout: stdio.stdout.map(|f| f.as_raw_fd()),
    };
    let mut stack = ChildStack::new().map_err(|e| ContainerError::Io { context: "map the child's stack".into(), source: e.into() })?;
    let mut flags = spec.clone_flags();
    if spec.shares_memory() {
        flags |= CloneFlags::CLONE_VM;
    }
    // SAFETY: the callback only makes system calls (see the module comment)
    // and never returns (execve or _exit). Without CLONE_VM the child gets a
    // copy of our memory, so the borrowed `ctx` stays valid in it. With
    // CLONE_VM (see `shares_memory`) it runs in our memory, on `stack`, and
    // reads `spec` and `ctx`, which outlive its pre-exec life: this function
    // returns only after the error pipe's end-of-file (the child exec'd or
    // died) or, on every error path, after `process` is dropped, which kills
    // and reaps the child, and `process` is declared after `stack` and `ctx`
    // so it is dropped first.
    let into_cgroup = cgroup.as_ref().map(Cgroup::clone_into_fd).transpose()?.flatten();
    let (pid, born_in_group) = unsafe { clone_child(&ctx, stack.as_mut_slice(), flags, into_cgroup.as_ref().map(|f| f.as_raw_fd())) }
        .map_err(|errno| ContainerError::Clone { namespaces: spec.namespaces, errno })?;
    drop(into_cgroup);
    let (release_r, release_w) = release.map_or((None, None), |(r, w)| (Some(r), Some(w)));
    drop(release_r);
    let mut process = ContainerProcess {
        pid,
        status: None,
        cgroup,
        usage: None,
        release: release_w,
        _dev: spec.dev.clone(),
        pid_ns: spec.namespaces.contains(Namespace::Pid),
    };
    let mut parent_error = None;
    if let Some((go_r, go_w)) = go {
        drop(go_r);
        // Map its ids, place it, run the parent setup, then let it go on; if
        // any fails, dropping go_w unwritten makes it exit, and `process`
        // (dropped on the way out) kills and reaps it. The child may be in
        // its own setup meanwhile (see `waits_before_setup`) and fail there:
        // its report, read below, is then the error that counts.
        let handshake = || -> Result<(), ContainerError> {
            if let Some(maps) = &spec.id_maps {
                maps.write(pid)?;
            }
            let mut tasks = Vec::new();
            if cgroup_after_clone {
                process.cgroup = make_cgroup()?;
            }
            if let (false, Some(cgroup)) = (born_in_group, &process.cgroup) {
                match cgroup.placement()? {
                    Some(Placement::MoveSelf(fds)) => tasks = fds,
                    None => cgroup.add(pid)?,
                }
            }
            if let Some(setup) = parent_setup {
                setup(pid).map_err(ContainerError::ParentSetup)?;
            }
            let raw: Vec<RawFd> = tasks.iter().map(|f| f.as_raw_fd()).collect();
            let cmsg = [nix::sys::socket::ControlMessage::ScmRights(&raw)];
            let cmsgs: &[nix::sys::socket::ControlMessage] = if raw.is_empty() { &[] } else { &cmsg };
            // The byte says how many fds come with it, so that the child
            // can tell a truncated message from none.
            let count = [raw.len() as u8];
            nix::sys::socket::sendmsg::<()>(go_w.as_raw_fd(), &[std::io::IoSlice::new(&count)], cmsgs, nix::sys::socket::MsgFlags::empty(), None)
                .map_err(|e| ContainerError::Io { context: "release the container after its parent-side setup".into(), source: e.into() })?;
            Ok(())
        };
        parent_error = handshake().err();
        if parent_error.is_some() {
            // Not waiting for the child to notice: its report, if it failed
            // first, is already in the pipe.
            let _ = kill(pid, Signal::SIGKILL);
        }
    }
    // Our copy of the write end must go, or the read below never ends.
    drop(err_w);
    let report = read_report(&err_r);
    drop(alive_w);
    match report {
        Ok(None) if parent_error.is_none() => Ok(process),
        Ok(None) => Err(parent_error.expect("checked above")),
        Ok(Some((stage, errno))) => {
            let _ = process.wait();
            Err(match stage {
                STAGE_EXEC => ContainerError::Exec { command: spec.argv[0].to_string_lossy().into_owned(), errno },
                _ => ContainerError::Setup { step: spec.describe(stage), errno },
            })
        }
        Err(e) => Err(ContainerError::Io { context: "read the container's setup report".into(), source: e }),
    }
}

/// The child's stack until it execs: [`CHILD_STACK_SIZE`] bytes of fresh
/// anonymous memory with a PROT_NONE guard page below, so an overflow faults
/// instead of writing into the harness's heap (with CLONE_VM it is the
/// harness's memory). Only the pages the child touches are ever faulted in:
/// a zeroed heap buffer of the same size cost ~0.1 ms per start in page
/// faults or memset.
struct ChildStack {
    base: *mut libc::c_void,
    len: usize,
    guard: usize,
}

impl ChildStack {
    fn new() -> Result<ChildStack, Errno> {
        // SAFETY: sysconf has no memory effects.
        let guard = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
        let len = CHILD_STACK_SIZE + guard;
        // SAFETY: a new private anonymous mapping, owned by the returned
        // value and unmapped by its Drop.
        let base = unsafe {
            libc::mmap(
                ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(Errno::last());
        }
        let stack = ChildStack { base, len, guard };
        // SAFETY: the lowest page of the mapping just made.
        if unsafe { libc::mprotect(base, guard, libc::PROT_NONE) } != 0 {
            return Err(Errno::last());
        }
        Ok(stack)
    }

    /// The usable part, above the guard page.
    fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: [base+guard, base+len) is mapped read-write and owned by self.
        unsafe { std::slice::from_raw_parts_mut(self.base.cast::<u8>().add(self.guard), self.len - self.guard) }
    }
}

impl Drop for ChildStack {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, no longer used (see spawn).
        unsafe { libc::munmap(self.base, self.len) };
    }
}

/// clone(2) of a child that runs [`child_main`]`(ctx)` on `stack`.
///
/// Not nix's `clone`, which passes the child a pointer to a boxed closure
/// that lives in its own stack frame and is freed when it returns: harmless
/// in a copy of memory, a use-after-free with CLONE_VM. Here the child gets
/// `ctx` itself, which the caller keeps alive.
///
/// # Safety
/// With CLONE_VM in `flags`, `ctx`, what it borrows and `stack` must stay
/// alive and unmoved until the child has exec'd or exited.
///
/// With `cgroup` (an fd of a cgroup v2 directory) the child is created in
/// that group, by clone3(2) with CLONE_INTO_CGROUP (Linux 5.7): no move
/// afterwards, so no global lock (see [`Placement`]). Returns the pid and
/// whether the child was born in the group; `false` where clone3 or the flag
/// is not there (another architecture, an older kernel), after a plain clone.
unsafe fn clone_child(ctx: &ChildCtx<'_>, stack: &mut [u8], flags: CloneFlags, cgroup: Option<RawFd>) -> Result<(Pid, bool), Errno> {
    extern "C" fn entry(data: *mut libc::c_void) -> libc::c_int {
        // SAFETY: `data` is the `ctx` passed below, alive for the child's
        // pre-exec life (the caller's contract).
        let ctx = unsafe { &*(data as *const ChildCtx<'_>) };
        child_main(ctx)
    }
    let data = ctx as *const ChildCtx<'_> as *mut libc::c_void;
    #[cfg(target_arch = "x86_64")]
    if let Some(fd) = cgroup {
        if !CLONE3_INTO_CGROUP_MISSING.load(std::sync::atomic::Ordering::Relaxed) {
            // SAFETY: the caller's contract, as for clone(2) below.
            match unsafe { clone3_into_cgroup(entry, data, stack, flags, fd) } {
                Ok(pid) => return Ok((pid, true)),
                // No clone3 (before 5.3), no CLONE_INTO_CGROUP (before 5.7:
                // its field is past the size those kernels know).
                Err(Errno::ENOSYS | Errno::E2BIG) => CLONE3_INTO_CGROUP_MISSING.store(true, std::sync::atomic::Ordering::Relaxed),
                // Refused for this group or these flags: a plain clone, and
                // the parent places the child (or clone says why not).
                Err(Errno::EINVAL | Errno::EOPNOTSUPP | Errno::EBUSY) => {}
                Err(e) => return Err(e),
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = cgroup;
    // The stack grows down: pass its 16-byte aligned top.
    let top = stack.as_mut_ptr_range().end;
    let top = top.wrapping_sub(top as usize % 16);
    // SAFETY: entry never returns (child_main execs or exits); the stack is
    // ours and unused by anything else; ctx outlives the child's use of it.
    let pid = unsafe { libc::clone(entry, top.cast(), flags.bits() | libc::SIGCHLD, data) };
    Errno::result(pid).map(|p| (Pid::from_raw(p), false))
}

/// Set once clone3 with CLONE_INTO_CGROUP has failed as unsupported.
#[cfg(target_arch = "x86_64")]
static CLONE3_INTO_CGROUP_MISSING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// `struct clone_args` of clone3(2), as far as `cgroup` (CLONE_ARGS_SIZE_VER2).
#[cfg(target_arch = "x86_64")]
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// linux/sched.h: create the child in the cgroup v2 directory `cgroup`.
#[cfg(target_arch = "x86_64")]
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// clone3(2) with CLONE_INTO_CGROUP, the child running `entry(data)` on
/// `stack`. glibc has no clone3 wrapper, and a child on a new stack cannot
/// return into the caller's frames, so the child's side is a few
/// instructions of assembly: with rax = 0 and rsp at the top of `stack`
/// (the kernel adds the size), it clears the frame pointer, aligns the
/// stack and calls `entry`, which never returns (it execs or _exits).
///
/// # Safety
/// As [`clone_child`]; `entry` must never return.
#[cfg(target_arch = "x86_64")]
unsafe fn clone3_into_cgroup(
    entry: extern "C" fn(*mut libc::c_void) -> libc::c_int,
    data: *mut libc::c_void,
    stack: &mut [u8],
    flags: CloneFlags,
    cgroup: RawFd,
) -> Result<Pid, Errno> {
    let args = CloneArgs {
        // clone3 takes the exit signal apart from the flags.
        flags: flags.bits() as u32 as u64 | CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
        stack: stack.as_mut_ptr() as u64,
        stack_size: stack.len() as u64 & !15,
        cgroup: cgroup as u64,
        ..Default::default()
    };
    let ret: i64;
    // SAFETY: the syscall reads `args` (alive across it); in the parent only
    // rax, rcx and r11 change. In the child nothing after the call runs:
    // `entry` ends in execve or _exit, and `ud2` traps should it return.
    unsafe {
        std::arch::asm!(
            "syscall",
            "test rax, rax",
            "jnz 2f",
            "xor ebp, ebp",
            "and rsp, -16",
            "mov rdi, r12",
            "call r13",
            "ud2",
            "2:",
            inlateout("rax") libc::SYS_clone3 => ret,
            in("rdi") &args as *const CloneArgs,
            in("rsi") std::mem::size_of::<CloneArgs>(),
            in("r12") data,
            in("r13") entry,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    if ret < 0 {
        return Err(Errno::from_raw(-ret as i32));
    }
    Ok(Pid::from_raw(ret as i32))
}

/// Reads the child's (stage, errno) report; `None` at end-of-file: it exec'd.
fn read_report(fd: &OwnedFd) -> std::io::Result<Option<(u32, Errno)>> {
    let mut buf = [0u8; 8];
    let mut got = 0;
    while got < buf.len() {
        match nix::unistd::read(fd.as_raw_fd(), &mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    if got < buf.len() {
        return Ok(None);
    }
    let stage = u32::from_le_bytes(buf[..4].try_into().unwrap());
    let errno = i32::from_le_bytes(buf[4..].try_into().unwrap());
    Ok(Some((stage, Errno::from_raw(errno))))
}

struct ChildCtx<'a> {
    spec: &'a LaunchSpec,
    err_fd: RawFd,
    alive_r: RawFd,
    alive_w: RawFd,
    /// The child's end of the handshake socket: one byte once the parent is
    /// done, with the group's v1 `tasks` files to which the child writes
    /// `0` ([`Placement::MoveSelf`]), or none when the parent placed it.
    go_r: Option<RawFd>,
    /// The parent's end of that socket, which the child closes (its copy
    /// would keep the socket open: no end-of-file when the parent gives up).
    go_w: Option<RawFd>,
    /// Read end of the init's release pipe (init mode).
    release_r: Option<RawFd>,
    stdin: Option<RawFd>,
    stdout: Option<RawFd>,
}

/// Writes the failure report and exits; async-signal-safe.
fn fail(ctx: &ChildCtx<'_>, stage: u32, errno: Errno) -> ! {
    let mut buf = [0u8; 8];
    buf[..4].copy_from_slice(&stage.to_le_bytes());
    buf[4..].copy_from_slice(&(errno as i32).to_le_bytes());
    // SAFETY: write(2) of a stack buffer and _exit(2) are async-signal-safe.
    unsafe {
        libc::write(ctx.err_fd, buf.as_ptr().cast(), buf.len());
        libc::_exit(SETUP_FAILED)
    }
}

/// Makes `target` a copy of `fd`, inheritable across exec.
fn install_fd(fd: RawFd, target: RawFd) -> nix::Result<()> {
    if fd == target {
        // dup2 onto itself keeps FD_CLOEXEC: clear it instead.
        // SAFETY: fcntl on an fd we own; no memory involved.
        return Errno::result(unsafe { libc::fcntl(fd, libc::F_SETFD, 0) }).map(drop);
    }
    // SAFETY: as above; dup2 returns a new fd without FD_CLOEXEC.
    Errno::result(unsafe { libc::dup2(fd, target) }).map(drop)
}

/// The child, from clone(2) to execve(2). System calls only: no allocation,
/// no locks, no panics that could unwind (every error goes to `fail`).
fn child_main(ctx: &ChildCtx<'_>) -> ! {
    let spec = ctx.spec;
    // SAFETY (whole block): plain system calls on fds and stack values
    // prepared by the parent; nothing here allocates or takes a lock.
    unsafe {
        // Die with isobench. If it died before this prctl, its end of the
        // liveness pipe is already closed and poll reports POLLHUP.
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) != 0 {
            fail(ctx, STAGE_PDEATHSIG, Errno::last());
        }
        libc::close(ctx.alive_w);
        if let Some(fd) = ctx.go_w {
            libc::close(fd);
        }
        let mut pfd = libc::pollfd { fd: ctx.alive_r, events: libc::POLLIN, revents: 0 };
        if libc::poll(&mut pfd, 1, 0) == 1 && pfd.revents & libc::POLLHUP != 0 {
            libc::_exit(SETUP_FAILED);
        }
        // Rust ignores SIGPIPE in its own processes and ignored signals stay
        // ignored across exec: give the command the default back, and no
        // blocked signals.
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        // isobench exec ignores SIGINT and SIGQUIT while the command runs, as
        // system(3) does; the command itself gets them (a ^C ends it).
        libc::signal(libc::SIGINT, libc::SIG_DFL);
        libc::signal(libc::SIGQUIT, libc::SIG_DFL);
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, ptr::null_mut());
        if spec.waits_before_setup() {
            wait_for_parent(ctx);
        }
    }

    // Device nodes and dirs get exactly the modes in the plan.
    let old_umask = umask(Mode::empty());
    if let Err((i, errno)) = rootfs::apply(&spec.plan, &Linux) {
        fail(ctx, i as u32, errno);
    }
    umask(old_umask);

    if let Some(name) = &spec.hostname {
        if let Err(e) = Linux.sethostname(name) {
            fail(ctx, STAGE_HOSTNAME, e);
        }
    }
    // A new net namespace has only a loopback, and it starts down.
    if spec.namespaces.contains(Namespace::Net) && spec.loopback {
        if let Err(e) = Linux.link_up(c"lo") {
            fail(ctx, STAGE_LOOPBACK, e);
        }
    }
    if !spec.waits_before_setup() {
        wait_for_parent(ctx);
    }
    // SAFETY: unshare(2) with a flag; no memory involved.
    if spec.defer_cgroup_ns() && unsafe { libc::unshare(libc::CLONE_NEWCGROUP) } != 0 {
        fail(ctx, STAGE_CGROUP_NS, Errno::last());
    }
    for (fd, target) in [(ctx.stdin, 0), (ctx.stdout, 1)] {
        if let Some(fd) = fd {
            if let Err(e) = install_fd(fd, target) {
                fail(ctx, STAGE_STDIO, e);
            }
        }
    }
    // SAFETY: close_range(2) with CLOSE_RANGE_CLOEXEC only sets flags: no fd
    // of the harness beyond stdio leaks into the container (the error pipe
    // already is close-on-exec). Older kernels say ENOSYS/EINVAL: ignored.
    unsafe {
        libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, libc::CLOSE_RANGE_CLOEXEC);
    }

    if spec.init {
        become_init(ctx);
    }
    exec_command(ctx)
}

/// Most `tasks` files the parent sends: one per v1 hierarchy isobench uses.
const MAX_TASKS_FDS: usize = 8;

/// Waits until the parent has written our uid/gid maps, made our cgroup and
/// run its setup (the byte on the handshake socket: the number of `tasks`
/// files that come with it), then moves into the group through them; without a handshake
/// there is nothing to wait for. End of file without the byte: the parent
/// gave up (or died); so do we. System calls only (recvmsg into buffers on
/// the stack).
fn wait_for_parent(ctx: &ChildCtx<'_>) {
    let Some(go) = ctx.go_r else { return };
    /// Control-message buffer, aligned for `cmsghdr`.
    #[repr(C, align(8))]
    struct Cmsg([u8; 128]);
    const _: () = assert!(std::mem::size_of::<libc::cmsghdr>() + MAX_TASKS_FDS * std::mem::size_of::<RawFd>() <= 128);
    let mut b = 0u8;
    let mut cbuf = Cmsg([0; 128]);
    let n = loop {
        let mut iov = libc::iovec { iov_base: (&mut b as *mut u8).cast(), iov_len: 1 };
        // SAFETY: msghdr is plain data; every pointer in it points to a
        // buffer on this stack frame that outlives the call.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.0.as_mut_ptr().cast();
        msg.msg_controllen = cbuf.0.len() as _;
        // SAFETY: recvmsg(2) into the buffers described by msg; the received
        // fds are close-on-exec (MSG_CMSG_CLOEXEC).
        let n = unsafe { libc::recvmsg(go, &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if n < 0 && Errno::last() == Errno::EINTR {
            continue;
        }
        if n == 1 {
            // Fds the kernel could not pass (MSG_CTRUNC: no room in cbuf or
            // no free fd slot) would leave us outside our group, silently.
            if msg.msg_flags & libc::MSG_CTRUNC != 0 {
                fail(ctx, STAGE_CGROUP_MOVE, Errno::EMFILE);
            }
            let mut moved_into = 0u8;
            // SAFETY: walking the control messages the kernel wrote into
            // cbuf with the CMSG_* accessors; each SCM_RIGHTS payload is
            // an array of ints of the length its header says.
            unsafe {
                let mut c = libc::CMSG_FIRSTHDR(&msg);
                while !c.is_null() {
                    if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                        let data = libc::CMSG_DATA(c).cast::<RawFd>();
                        let count = ((*c).cmsg_len as usize - (data as usize - c as usize)) / std::mem::size_of::<RawFd>();
                        for i in 0..count {
                            let fd = data.add(i).read_unaligned();
                            // A single thread moving itself: no global lock
                            // (see `Placement`).
                            let moved = libc::write(fd, b"0".as_ptr().cast(), 1);
                            let errno = Errno::last();
                            libc::close(fd);
                            if moved != 1 {
                                fail(ctx, STAGE_CGROUP_MOVE, errno);
                            }
                            moved_into += 1;
                        }
                    }
                    c = libc::CMSG_NXTHDR(&msg, c);
                }
            }
            if moved_into != b {
                fail(ctx, STAGE_CGROUP_MOVE, Errno::EBADMSG);
            }
        }
        break n;
    };
    if n != 1 {
        // SAFETY: _exit(2) is async-signal-safe.
        unsafe { libc::_exit(SETUP_FAILED) }
    }
}

/// Forks the command off and stays behind as its init; returns in the
/// command's process only.
fn become_init(ctx: &ChildCtx<'_>) {
    // SAFETY (whole function): system calls on stack values and fds prepared
    // by the parent; no allocation, no lock (see the module comment).
    unsafe {
        // Block the signals the init waits for *before* forking, so that none
        // is lost in between (an unblocked, unhandled signal to a namespace's
        // init is dropped); the command unblocks them before exec.
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGCHLD);
        for sig in FORWARDED_SIGNALS {
            libc::sigaddset(&mut set, sig);
        }
        libc::sigprocmask(libc::SIG_BLOCK, &set, ptr::null_mut());
        // Without a pid namespace the init is no namespace init: make it the
        // reaper of the command's orphans all the same.
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong, 0, 0, 0);
        let init_pid = libc::getpid();
        // A raw fork: glibc's fork(3) runs atfork handlers that take the
        // allocator's locks, which another thread of isobench may have held
        // when we were cloned.
        let child = libc::syscall(libc::SYS_clone, libc::SIGCHLD as libc::c_ulong, 0usize, 0usize, 0usize, 0usize);
        if child < 0 {
            fail(ctx, STAGE_INIT_FORK, Errno::last());
        }
        if child == 0 {
            // The command: die with the init, default signal mask.
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0);
            if libc::getppid() != init_pid {
                libc::_exit(SETUP_FAILED);
            }
            let mut empty: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut empty);
            libc::sigprocmask(libc::SIG_SETMASK, &empty, ptr::null_mut());
            return;
        }
        let child = child as libc::pid_t;
        // The command reports its own exec failure; the parent's read ends
        // when the command has exec'd and this copy is closed. The init keeps
        // no stdio of its own: a reader sees EOF when the command's side closes.
        // Every other fd goes too (they are close-on-exec, but the init never
        // execs): a pipe end held here would keep a reader from seeing EOF.
        let keep = ctx.release_r.map_or(-1, |fd| fd);
        libc::close(0);
        libc::close(1);
        if keep > 3 {
            libc::syscall(libc::SYS_close_range, 3u32, (keep - 1) as u32, 0u32);
        }
        libc::syscall(libc::SYS_close_range, (keep.max(2) + 1) as u32, u32::MAX, 0u32);
        libc::prctl(libc::PR_SET_NAME, INIT_NAME.as_ptr() as libc::c_ulong, 0, 0, 0);
        let status = init_loop(child, &set);
        // Linger until isobench lets go (or dies), so that it can still look
        // at the namespaces of a command that exited at once.
        if let Some(fd) = ctx.release_r {
            let mut b = 0u8;
            while libc::read(fd, (&mut b as *mut u8).cast(), 1) < 0 && Errno::last() == Errno::EINTR {}
        }
        libc::_exit(status)
    }
}

/// Waits for signals: forwards the forwardable ones to `child`, reaps every
/// zombie on SIGCHLD, and returns the exit status of `child` once it is
/// reaped (128+n for a signal n). System calls only.
fn init_loop(child: libc::pid_t, set: &libc::sigset_t) -> i32 {
    loop {
        // SAFETY: set is an initialised signal set; a null siginfo is allowed.
        let sig = unsafe { libc::sigwaitinfo(set, ptr::null_mut()) };
        if sig < 0 {
            continue;
        }
        if sig != libc::SIGCHLD {
            // SAFETY: kill(2) of our own child with a plain signal number.
            unsafe { libc::kill(child, sig) };
            continue;
        }
        // SIGCHLD coalesces: reap everything that has exited.
        loop {
            let mut status = 0;
            // SAFETY: waitpid(2) on our children, status on our stack.
            let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if pid <= 0 {
                break;
            }
            if pid == child {
                if libc::WIFEXITED(status) {
                    return libc::WEXITSTATUS(status);
                }
                if libc::WIFSIGNALED(status) {
                    return 128 + libc::WTERMSIG(status);
                }
            }
        }
    }
}

/// execve(2) of the first command candidate that exists; never returns.
fn exec_command(ctx: &ChildCtx<'_>) -> ! {
    let spec = ctx.spec;
    let mut errno = Errno::ENOENT;
    for path in &spec.candidates {
        // SAFETY: path, argv and envp are NUL-terminated C strings and
        // null-terminated pointer arrays owned by `spec`, alive in this copy
        // of the parent's memory. execve returns only on failure.
        unsafe { libc::execve(path.as_ptr(), spec.argv_ptrs.as_ptr(), spec.env_ptrs.as_ptr()) };
        let e = Errno::last();
        // Like execvp(3): a missing candidate moves on, anything else (EACCES
        // and friends) is remembered as the more telling error.
        if !matches!(e, Errno::ENOENT | Errno::ENOTDIR) || errno == Errno::ENOENT {
            errno = e;
        }
    }
    fail(ctx, STAGE_EXEC, errno)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn bare_command_is_searched_in_the_container_path() {
        let spec = LaunchSpec::new(NamespaceSet::DEFAULT, Path::new("/r"), &argv(&["ps", "-o", "pid"]), Some("isobench-1")).unwrap();
        let cands: Vec<_> = spec.candidates.iter().map(|c| c.to_str().unwrap()).collect();
        assert_eq!(cands, ["/bin/ps", "/sbin/ps", "/usr/bin/ps", "/usr/sbin/ps"]);
        assert_eq!(spec.argv_ptrs.len(), 4);
        assert!(spec.argv_ptrs[3].is_null() && spec.env_ptrs.last().unwrap().is_null());
        assert_eq!(spec.env[0].to_str().unwrap(), format!("PATH={CONTAINER_PATH}"));
        assert_eq!(spec.hostname.as_deref(), Some(c"isobench-1"));
    }

    #[test]
    fn path_commands_are_used_as_given_and_hostname_needs_uts() {
        let ns: NamespaceSet = "pid,mnt".parse().unwrap();
        let spec = LaunchSpec::new(ns, Path::new("/r"), &argv(&["/noop"]), Some("h")).unwrap();
        assert_eq!(spec.candidates, [c"/noop".to_owned()]);
        assert!(spec.hostname.is_none(), "no uts namespace: the host's name must not be changed");
    }

    #[test]
    fn empty_command_and_nul_bytes_are_refused() {
        assert!(matches!(LaunchSpec::new(NamespaceSet::DEFAULT, Path::new("/r"), &[], None), Err(ContainerError::NoCommand)));
        assert!(matches!(LaunchSpec::new(NamespaceSet::DEFAULT, Path::new("/r"), &argv(&["a\0b"]), None), Err(ContainerError::Nul(_))));
    }

    #[test]
    fn id_maps_identity_for_root_one_id_and_no_setgroups_otherwise() {
        let root = IdMaps::for_ids(0, 0);
        assert_eq!((root.uid_map.as_str(), root.gid_map.as_str(), root.deny_setgroups), ("0 0 4294967295\n", "0 0 4294967295\n", false));
        let user = IdMaps::for_ids(1000, 100);
        assert_eq!((user.uid_map.as_str(), user.gid_map.as_str(), user.deny_setgroups), ("0 1000 1\n", "0 100 1\n", true));
        let spec = LaunchSpec::new("user,pid".parse().unwrap(), Path::new("/r"), &argv(&["sh"]), None).unwrap();
        assert!(spec.id_maps.is_some());
        assert!(LaunchSpec::new(NamespaceSet::DEFAULT, Path::new("/r"), &argv(&["sh"]), None).unwrap().id_maps.is_none());
    }

    #[test]
    fn cgroup_namespace_is_left_out_of_clone_only_with_a_cgroup() {
        let ns: NamespaceSet = "pid,cgroup".parse().unwrap();
        let spec = LaunchSpec::new(ns, Path::new("/r"), &argv(&["sh"]), None).unwrap();
        assert!(spec.clone_flags().contains(CloneFlags::CLONE_NEWCGROUP), "no group to be placed in: created by clone");
        let spec = spec.with_cgroup(Limits::default());
        assert!(!spec.clone_flags().contains(CloneFlags::CLONE_NEWCGROUP), "unshared after placement");
        assert!(spec.clone_flags().contains(CloneFlags::CLONE_NEWPID));
    }

    #[test]
    fn stages_are_described_by_the_plan_step() {
        let spec = LaunchSpec::new(NamespaceSet::DEFAULT, Path::new("/r"), &argv(&["sh"]), None).unwrap();
        assert_eq!(spec.describe(0), "make / and every mount under it private");
        assert_eq!(spec.describe(STAGE_LOOPBACK), "bring up the loopback interface");
    }
}
