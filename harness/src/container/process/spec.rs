//! What to launch ([`LaunchSpec`]): the command and its `PATH` search inside
//! the container, its environment, host name, namespaces, mount plan, cgroup
//! limits, init mode and parent-side setup, with the uid/gid maps of a new
//! user namespace ([`IdMaps`]); all of it prepared before clone(2), because
//! the child allocates nothing (see the module comment of [`super`]).

use std::ffi::{CString, OsString};
use std::os::fd::BorrowedFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;
use std::ptr;
use std::sync::Arc;

use nix::sched::CloneFlags;
use nix::unistd::Pid;

use super::channel::{
    STAGE_CAPS, STAGE_CGROUP_MOVE, STAGE_CGROUP_NS, STAGE_HOSTNAME, STAGE_INIT_FORK, STAGE_LOOPBACK, STAGE_NO_NEW_PRIVS, STAGE_PDEATHSIG,
    STAGE_SECCOMP, STAGE_STDIO,
};
use super::harden::Hardening;
use crate::container::cgroup::{CgroupHold, Limits};
use crate::container::ns::{Namespace, NamespaceSet};
use crate::container::profile::{Layer, PreparedProfile, Profile};
use crate::container::rootfs::{self, DevTemplate, OverlayStage, Step};
use crate::container::ContainerError;

/// `PATH` inside the container.
pub const CONTAINER_PATH: &str = "/bin:/sbin:/usr/bin:/usr/sbin";

/// The environment a container's command gets: `PATH`
/// ([`CONTAINER_PATH`]), `HOME=/`, and the caller's `TERM` when set. The
/// native agent gets the same (`env::native`), so the two agents differ in
/// isolation only.
pub fn container_environment() -> Vec<(&'static str, String)> {
    let mut env = vec![("PATH", CONTAINER_PATH.to_string()), ("HOME", "/".to_string())];
    if let Ok(term) = std::env::var("TERM") {
        env.push(("TERM", term));
    }
    env
}

/// Everything the child needs, prepared before clone(2).
pub struct LaunchSpec {
    pub(super) namespaces: NamespaceSet,
    pub(super) plan: Vec<Step>,
    pub(super) hostname: Option<CString>,
    /// Absolute paths inside the container to try in turn (the `PATH` search).
    pub(super) candidates: Vec<CString>,
    /// Owned strings behind `argv_ptrs` and `env_ptrs`.
    pub(super) argv: Vec<CString>,
    #[allow(dead_code)] // read only through env_ptrs
    pub(super) env: Vec<CString>,
    pub(super) argv_ptrs: Vec<*const libc::c_char>,
    pub(super) env_ptrs: Vec<*const libc::c_char>,
    /// `Some`: run in a new cgroup with these limits.
    pub(super) cgroup: Option<Limits>,
    /// The cgroup layout and parents, resolved by [`LaunchSpec::with_cgroup`].
    pub(super) cgroup_hold: Option<Arc<CgroupHold>>,
    /// Fork a minimal init that stays PID 1 (see the module comment).
    pub(super) init: bool,
    /// Bring the new network namespace's loopback up (`--net none`: no).
    pub(super) loopback: bool,
    /// The uid/gid maps the parent writes for a new user namespace.
    pub(super) id_maps: Option<IdMaps>,
    /// `Some`: the parent runs a setup while the child waits in its new
    /// namespaces ([`LaunchSpec::with_parent_setup`]); the inner `None` once
    /// the first spawn has taken it.
    pub(super) parent_setup: Option<std::sync::Mutex<Option<ParentSetup>>>,
    /// The /dev every container of this spec binds (see [`DevTemplate`]);
    /// each [`ContainerProcess`](super::ContainerProcess) holds it too, so it outlives them.
    pub(super) dev: Option<Arc<DevTemplate>>,
    /// The security profile ([`LaunchSpec::with_profile`]); bare until set.
    pub(super) profile: Profile,
    /// The profile's layers; none until set.
    pub(super) layers: Vec<Layer>,
    /// The rootfs given to [`LaunchSpec::new`]: the image, the overlay's lowerdir.
    pub(super) root: std::path::PathBuf,
    /// The overlay root's stage, with the `overlay` layer: kept as long as
    /// the spec (its temp dir goes with it).
    pub(super) overlay: Option<Arc<OverlayStage>>,
    /// What the child drops right before exec; `None` for bare.
    pub(super) hardening: Option<Hardening>,
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
    pub(super) fn write(&self, pid: Pid) -> Result<(), ContainerError> {
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
        let env = container_environment()
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .map(|s| CString::new(s).map_err(|e| ContainerError::Nul(OsString::from_vec(e.into_vec()))))
            .collect::<Result<Vec<_>, _>>()?;
        let hostname = match hostname {
            Some(h) if namespaces.contains(Namespace::Uts) => Some(CString::new(h).map_err(|_| ContainerError::Nul(h.into()))?),
            _ => None,
        };
        // Root can make the nodes once on the host; rootless, each container
        // binds the host's nodes one by one.
        let dev = match namespaces.contains(Namespace::Mount) {
            true => DevTemplate::prepare()?.map(Arc::new),
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
            profile: Profile::Bare,
            layers: Vec::new(),
            root: rootfs.to_path_buf(),
            overlay: None,
            hardening: None,
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
    /// With an overlay root the image is its lowerdir, never written, and
    /// the plan stays as it is.
    pub fn with_read_only_root(mut self, rootfs: &Path) -> Result<LaunchSpec, ContainerError> {
        if self.overlay.is_some() {
            return Ok(self);
        }
        self.plan = rootfs::mount_plan_dev(rootfs, self.namespaces, true, self.dev.as_ref().map(|d| d.path()))?;
        if self.layers.contains(&Layer::Hardening) {
            rootfs::harden_plan(&mut self.plan);
        }
        Ok(self)
    }

    /// Runs the container under `profile` (see
    /// [`profile`](crate::container::profile)): with its hardening, the
    /// mount plan gets runc's masked and read-only paths and a nodev root,
    /// and the child drops to Docker's capabilities and sets no_new_privs
    /// before exec; with its seccomp layer, the child loads the filter
    /// compiled in `profile` last; with its overlay layer, the rootfs given
    /// to [`new`](Self::new) becomes the lowerdir of an overlay mounted on a
    /// stage directory ([`OverlayStage`]) right after the mounts are made
    /// private, and the plan binds and pivots into the merged view. Without
    /// this call a spec is `bare`: namespaces only, not a security boundary.
    /// Errors: an overlay without a mount namespace, or a stage that cannot
    /// be made.
    pub fn with_profile(mut self, profile: &PreparedProfile) -> Result<LaunchSpec, ContainerError> {
        self.profile = profile.profile();
        self.layers = profile.layers().to_vec();
        self.hardening = Hardening::new(profile);
        if profile.has(Layer::Overlay) {
            if !self.namespaces.contains(Namespace::Mount) {
                return Err(rootfs::RootfsError::OverlayNeedsMountNs.into());
            }
            let stage = OverlayStage::prepare(&self.root, profile.overlay_upper())?;
            let mut plan = rootfs::mount_plan_dev(&stage.merged(), self.namespaces, false, self.dev.as_ref().map(|d| d.path()))?;
            // After the first step (every mount private), before the bind of the root.
            plan.splice(1..1, stage.steps()?);
            self.plan = plan;
            self.overlay = Some(Arc::new(stage));
        }
        if profile.has(Layer::Hardening) {
            rootfs::harden_plan(&mut self.plan);
        }
        Ok(self)
    }

    /// Binds the host directory `host` (absolute) onto `target` (a
    /// directory of the rootfs, relative: `mnt`) just before pivot_root, as
    /// `docker run -v host:/target` does: the container's volume. Call it
    /// after [`with_profile`](Self::with_profile) and
    /// [`with_read_only_root`](Self::with_read_only_root), which remake the
    /// plan. Errors: a path with a NUL byte, a plan without pivot_root (no
    /// mount namespace: a bind would show on the host).
    pub fn with_volume(mut self, host: &Path, target: &str) -> Result<LaunchSpec, ContainerError> {
        let at = self.plan.iter().position(|s| *s == Step::PivotRoot).ok_or(rootfs::RootfsError::VolumeNeedsMountNs)?;
        let source = CString::new(host.as_os_str().as_bytes()).map_err(|_| rootfs::RootfsError::VolumePath(host.into()))?;
        let target = CString::new(target).map_err(|_| rootfs::RootfsError::VolumePath(target.into()))?;
        self.plan.insert(at, Step::Mount { source: Some(source), target, fstype: None, flags: nix::mount::MsFlags::MS_BIND, data: None });
        Ok(self)
    }

    pub fn profile(&self) -> Profile {
        self.profile
    }

    /// The layers of its profile.
    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }

    /// The overlay root's stage, with the overlay layer.
    pub fn overlay(&self) -> Option<&OverlayStage> {
        self.overlay.as_deref()
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
    /// Runs in the first [`spawn`](super::spawn) of this spec only; a later spawn of the
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

    /// The container's host name, when it has a uts namespace.
    pub fn hostname(&self) -> Option<&str> {
        self.hostname.as_deref().and_then(|h| h.to_str().ok())
    }

    pub fn init(&self) -> bool {
        self.init
    }

    /// The flags of the clone(2) itself: the cgroup namespace is left out
    /// when the child must first be placed in its group (it unshares it then).
    pub(super) fn clone_flags(&self) -> CloneFlags {
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
    /// thread that called [`spawn`](super::spawn), and that thread's libc
    /// may write it meanwhile (a failed call, or a function that saves and
    /// restores errno around its work: a stale value written back). So the
    /// child never decides anything by errno: where a step depends on what
    /// is there, it asks by a return value (`Syscall::path_kind`); errno
    /// only names the failure of a launch that fails anyway, where a
    /// garbled one is possible. (Masking /proc/asound once failed in CI
    /// with ENOENT when the bind's ENOENT read back as the previous step's
    /// ENOTDIR.)
    pub(super) fn shares_memory(&self) -> bool {
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
    pub(super) fn waits_before_setup(&self) -> bool {
        self.parent_setup.is_some()
            || (self.id_maps.is_some()
                && self.plan.iter().any(|s| matches!(s, Step::Mkdir { .. } | Step::Mknod { .. } | Step::Touch { .. } | Step::Symlink { .. })))
    }

    pub(super) fn defer_cgroup_ns(&self) -> bool {
        self.cgroup.is_some() && self.namespaces.contains(Namespace::Cgroup)
    }

    pub fn namespaces(&self) -> NamespaceSet {
        self.namespaces
    }

    pub fn plan(&self) -> &[Step] {
        &self.plan
    }

    pub(super) fn describe(&self, stage: u32) -> String {
        match stage {
            STAGE_PDEATHSIG => "prctl(PR_SET_PDEATHSIG)".into(),
            STAGE_HOSTNAME => "sethostname".into(),
            STAGE_LOOPBACK => "bring up the loopback interface".into(),
            STAGE_STDIO => "set up stdin/stdout".into(),
            STAGE_CGROUP_NS => "unshare the cgroup namespace".into(),
            STAGE_INIT_FORK => "start the command from the init (clone)".into(),
            STAGE_CGROUP_MOVE => "move itself into its cgroup (0 written to tasks)".into(),
            STAGE_CAPS => "drop capabilities to the profile's set".into(),
            STAGE_NO_NEW_PRIVS => "prctl(PR_SET_NO_NEW_PRIVS)".into(),
            STAGE_SECCOMP => "load the seccomp filter".into(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::process::channel::STAGE_LOOPBACK;

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
