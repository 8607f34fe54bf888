//! OCI bundles and runtimes (runc, crun): what Docker, Kubernetes and Podman
//! run a container through, driven the way their shims do — a bundle (a
//! rootfs and a `config.json`, runtime-spec 1.0) and `RUNTIME run --bundle
//! DIR ID`, foreground, the container's stdio being the runtime's.
//!
//! The config is generated with the `oci-spec` crate's own types from what
//! isobench's container uses: the same minimal rootfs (writable), the same
//! namespaces (pid, mnt, uts, ipc, net by default), the same mounts (/proc,
//! a tmpfs /dev with /dev/pts and /dev/shm, read-only /sys), `/isobench-agent`
//! as the process. What a runtime adds on its own is what users get too:
//! runc's and crun's default devices and a device cgroup. The security
//! profile (`--profile`, see [`crate::container::profile`]) is the one
//! isobench's own container gets, written into the config
//! ([`apply_profile`]): `default` is Docker's capabilities,
//! noNewPrivileges and runc's masked and read-only paths; `docker` adds the
//! same resolved seccomp profile as oci-spec's `LinuxSeccomp`, which the
//! runtime compiles with its own libseccomp; `bare` keeps every capability
//! and masks nothing.
//!
//! `docker`'s overlay and bridge are given to the runtime the way Docker
//! gives them to runc: the overlay is mounted before the runtime runs and
//! named as the bundle's `root.path` (Docker's `overlay2/<id>/merged`),
//! here by the runtime's own process in a private mount namespace of its
//! own, right before exec, from the same [`OverlayStage`] steps isobench's
//! container mounts (so the mount is never in the host's table and goes
//! with the runtime; a tmpfs upper is each container's own); and the
//! bridge is a network namespace isobench prepares per container with
//! `eth0` on a bridge of the run's namespace and the published port's NAT
//! table there ([`RunNetns::add_bridged_veth`]), named by path in
//! config.json's network namespace entry (as Docker's libnetwork prepares
//! a sandbox and runc joins it).
//!
//! State lives in the bundle's temp dir (`--root`), not in /run/runc, so a
//! killed run leaves nothing a sweep cannot find; cgroups get names a sweep
//! can tell ([`sweep_cgroups`]).
//!
//! crun on a hybrid cgroup host (v1 controllers plus a cgroup2 with a
//! controller in it, as here) refuses to start anything: "cgroups in hybrid
//! mode not supported, drop all controllers from cgroupv2". isobench then runs
//! crun with `--cgroup-manager=disabled` in a private mount namespace where
//! /sys/fs/cgroup/unified is unmounted ([`CgroupUse::None`],
//! [`OciRuntime::hybrid_workaround`]), which changes nothing on the host, and
//! labels the column so.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use oci_spec::runtime::{
    LinuxDeviceCgroupBuilder, LinuxNamespaceBuilder, LinuxNamespaceType, LinuxResourcesBuilder, Mount, Process, RootBuilder, Spec,
};

use std::time::{Duration, Instant};

use super::container::CONTAINER_IF;
use super::peer::{start_agent, Cleanup, NoopStart, PeerCommand, PeerInstance, Tool, CRUN as CRUN_TOOL};
use super::{Endpoint, EnvError, EnvKind, Environment, Instance, Options, PathKind};
use crate::agent::AgentClient;
use crate::collect::host::{cgroup_mode, CgroupMode};
use crate::container::net::{BridgedVeth, RunNetns, CONTAINER_PORT, PUBLISHED_PORT};
use crate::container::process::CONTAINER_PATH;
use crate::container::profile::{last_capability, Layer, PreparedProfile, Profile, MASKED_PATHS, READONLY_PATHS};
use crate::container::rootfs::{self, OverlayStage, PreparedRootfs, RootfsChoice, Step};
use crate::container::{Namespace, NamespaceSet};
use crate::leftovers::{self, temp_prefix};
use crate::storage::{StorageKind, StoragePath};
use crate::vm::qemu::Forwards;
use crate::workloads::Noop;
use crate::workloads::Workloads;
use isobench_workloads::protocol::AgentInfo;
use std::os::fd::AsFd;

#[derive(Debug, thiserror::Error)]
pub enum OciError {
    #[error("oci config: {0}")]
    Spec(#[from] oci_spec::OciSpecError),
    #[error(transparent)]
    Rootfs(#[from] rootfs::RootfsError),
    #[error("the {0} namespace has no OCI equivalent in isobench's mapping")]
    Namespace(Namespace),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> OciError {
    let context = context.into();
    move |source| OciError::Io { context, source }
}

/// The OCI namespace type of one of isobench's namespaces.
pub fn oci_namespace(ns: Namespace) -> LinuxNamespaceType {
    match ns {
        Namespace::User => LinuxNamespaceType::User,
        Namespace::Pid => LinuxNamespaceType::Pid,
        Namespace::Net => LinuxNamespaceType::Network,
        Namespace::Ipc => LinuxNamespaceType::Ipc,
        Namespace::Uts => LinuxNamespaceType::Uts,
        Namespace::Mount => LinuxNamespaceType::Mount,
        Namespace::Cgroup => LinuxNamespaceType::Cgroup,
    }
}

/// Mount destinations isobench's own mount plan makes (see
/// [`rootfs::mount_plan`]); the runtime-spec defaults also mount /dev/mqueue
/// and a cgroup fs, which isobench's container does not.
const MOUNTS: [&str; 5] = ["/proc", "/dev", "/dev/pts", "/dev/shm", "/sys"];

/// What the generated config asks of cgroups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CgroupUse {
    /// A cgroup at `cgroupsPath` (the runtime's cgroupfs manager) with
    /// runc's default device rules, as Docker runs containers.
    Path(String),
    /// No cgroupsPath, no resources: for `--cgroup-manager=disabled`.
    None,
}

/// The `config.json` of a bundle whose rootfs is `rootfs` (absolute).
pub fn config(rootfs: &Path, namespaces: NamespaceSet, args: &[String], hostname: &str, cgroups: &CgroupUse) -> Result<Spec, OciError> {
    let mut process = Process::default();
    process.set_terminal(Some(false));
    process.set_args(Some(args.to_vec()));
    process.set_env(Some(vec![format!("PATH={CONTAINER_PATH}"), "HOME=/".to_string()]));
    process.set_cwd("/".into());

    let namespaces = namespaces.iter().map(|ns| LinuxNamespaceBuilder::default().typ(oci_namespace(ns)).build()).collect::<Result<Vec<_>, _>>()?;
    // oci-spec's defaults are runc spec's: the masked and read-only /proc
    // and /sys paths stay; namespaces and cgroups are ours.
    let mut linux = oci_spec::runtime::Linux::default();
    // A user namespace needs its maps in the spec (runc refuses one without):
    // every id to itself, as isobench's launcher maps them as root.
    let user_ns = namespaces.iter().any(|n| n.typ() == LinuxNamespaceType::User);
    linux.set_namespaces(Some(namespaces));
    if user_ns {
        let identity = || oci_spec::runtime::LinuxIdMappingBuilder::default().container_id(0u32).host_id(0u32).size(u32::MAX).build();
        linux.set_uid_mappings(Some(vec![identity()?]));
        linux.set_gid_mappings(Some(vec![identity()?]));
    }
    match cgroups {
        CgroupUse::Path(path) => {
            // Deny every device, then the runtime appends its default allowed
            // ones (null, zero, full, tty, random, urandom, pts): runc spec's
            // default and Docker's.
            let deny_all = LinuxDeviceCgroupBuilder::default().allow(false).access("rwm").build()?;
            linux.set_cgroups_path(Some(PathBuf::from(path)));
            linux.set_resources(Some(LinuxResourcesBuilder::default().devices(vec![deny_all]).build()?));
        }
        CgroupUse::None => {
            linux.set_cgroups_path(None);
            linux.set_resources(None);
        }
    }

    let mounts: Vec<Mount> =
        oci_spec::runtime::get_default_mounts().into_iter().filter(|m| MOUNTS.iter().any(|d| m.destination() == Path::new(d))).collect();

    let mut spec = Spec::default();
    spec.set_root(Some(RootBuilder::default().path(rootfs).readonly(false).build()?));
    spec.set_process(Some(process));
    spec.set_hostname(Some(hostname.to_string()));
    spec.set_mounts(Some(mounts));
    spec.set_linux(Some(linux));
    Ok(spec)
}

/// Writes `profile` into `spec`: the process's capabilities (bounding,
/// permitted, effective; inheritable and ambient empty, as Docker has them),
/// noNewPrivileges, the masked and read-only paths, and for `docker` the
/// resolved seccomp profile. `bare`: every capability isobench itself
/// holds, no noNewPrivileges, nothing masked.
pub fn apply_profile(spec: &mut Spec, profile: &PreparedProfile) -> Result<(), OciError> {
    use oci_spec::runtime::{Capability, LinuxCapabilitiesBuilder};
    let names: Vec<String> = match profile.profile().capabilities() {
        Some(list) => list.iter().map(|s| s.to_string()).collect(),
        // The caller's own (a runtime cannot give more): its permitted set,
        // within what this kernel knows.
        None => caps::read(None, caps::CapSet::Permitted)
            .unwrap_or_default()
            .into_iter()
            .filter(|c| u32::from(c.index()) <= last_capability())
            .map(|c| c.to_string())
            .collect(),
    };
    // oci-spec reads a capability's config.json name (`CAP_CHOWN`) through serde.
    let set: oci_spec::runtime::Capabilities = names.iter().filter_map(|n| serde_json::from_value::<Capability>(n.as_str().into()).ok()).collect();
    let hardened = profile.profile() != Profile::Bare;
    let caps = LinuxCapabilitiesBuilder::default()
        .bounding(set.clone())
        .permitted(set.clone())
        .effective(set)
        .inheritable(oci_spec::runtime::Capabilities::new())
        .ambient(oci_spec::runtime::Capabilities::new())
        .build()?;
    let mut process = spec.process().clone().unwrap_or_default();
    process.set_capabilities(Some(caps));
    process.set_no_new_privileges(Some(hardened));
    spec.set_process(Some(process));
    let mut linux = spec.linux().clone().unwrap_or_default();
    let paths = |list: &[&str]| if hardened { list.iter().map(|s| s.to_string()).collect() } else { Vec::new() };
    linux.set_masked_paths(Some(paths(&MASKED_PATHS)));
    linux.set_readonly_paths(Some(paths(&READONLY_PATHS)));
    linux.set_seccomp(profile.seccomp().map(|s| s.oci().clone()));
    spec.set_linux(Some(linux));
    Ok(())
}

/// Makes `spec`'s root read-only with a tmpfs on /tmp, as isobench's launcher
/// mounts a shared rootfs ([`rootfs::mount_plan_with`]).
pub fn read_only_root(spec: &mut Spec) -> Result<(), OciError> {
    let path = spec.root().as_ref().map(|r| r.path().clone()).unwrap_or_default();
    spec.set_root(Some(RootBuilder::default().path(path).readonly(true).build()?));
    let tmp = oci_spec::runtime::MountBuilder::default()
        .destination("/tmp")
        .typ("tmpfs")
        .source("tmpfs")
        .options(vec!["nosuid".into(), "nodev".into(), "mode=1777".into(), "size=65536k".into()])
        .build()?;
    let mut mounts = spec.mounts().clone().unwrap_or_default();
    mounts.push(tmp);
    spec.set_mounts(Some(mounts));
    Ok(())
}

/// Adds to `spec` the bind mount of the host directory `host` on `target`,
/// as `docker run -v HOST:TARGET` writes it into config.json (`rbind`,
/// `rprivate`, read-write): the fs.* metrics' volume.
pub fn add_volume(spec: &mut Spec, host: &Path, target: &str) -> Result<(), OciError> {
    let bind = oci_spec::runtime::MountBuilder::default()
        .destination(target)
        .typ("bind")
        .source(host)
        .options(vec!["rbind".into(), "rprivate".into()])
        .build()?;
    let mut mounts = spec.mounts().clone().unwrap_or_default();
    mounts.push(bind);
    spec.set_mounts(Some(mounts));
    Ok(())
}

/// A bundle in a temp dir: `config.json`, the runtime's state (`state/`),
/// and a minimal rootfs (its own temp dir). Removed on drop.
pub struct OciBundle {
    dir: tempfile::TempDir,
    rootfs: PreparedRootfs,
    root: PathBuf,
}

impl OciBundle {
    /// `what` names the temp dir (`isobench-<pid>-<what>-…`).
    pub fn build(workloads: &Workloads, what: &str) -> Result<OciBundle, OciError> {
        Self::build_with(workloads, what, &RootfsChoice::Minimal)
    }

    /// [`build`](Self::build) with another rootfs; a shared one (`debian`) is
    /// used in place as an absolute `root.path`, with `root.readonly`.
    pub fn build_with(workloads: &Workloads, what: &str, choice: &RootfsChoice) -> Result<OciBundle, OciError> {
        let rootfs = PreparedRootfs::prepare(choice, workloads, true)?;
        let root = rootfs.path().to_path_buf();
        let dir = tempfile::Builder::new()
            .prefix(&temp_prefix(what))
            .tempdir()
            .map_err(io_err(format!("create a temp dir in {}", std::env::temp_dir().display())))?;
        std::fs::create_dir(dir.path().join("state")).map_err(io_err("create the runtime's state dir"))?;
        Ok(OciBundle { dir, rootfs, root })
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The rootfs (canonical path).
    pub fn rootfs(&self) -> &Path {
        &self.root
    }

    pub fn prepared_rootfs(&self) -> &PreparedRootfs {
        &self.rootfs
    }

    /// The runtime's `--root` (container state).
    pub fn state_root(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("config.json")
    }

    /// Writes `config.json` (through a temp name and a rename).
    pub fn write_config(&self, spec: &Spec) -> Result<(), OciError> {
        let tmp = self.dir.path().join("config.json.tmp");
        spec.save(&tmp)?;
        std::fs::rename(&tmp, self.config_path()).map_err(io_err("rename config.json into place"))
    }
}

/// A container ID of this process: `isobench-<pid>-<runtime>-<n>`, which
/// [`sweep_cgroups`] can tell from others' (runc allows `[\w+-.]`).
pub fn container_id(runtime: &str) -> String {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    format!("{}{}", temp_prefix(runtime), SEQ.fetch_add(1, Ordering::Relaxed))
}

/// An OCI runtime binary and how isobench calls it.
#[derive(Debug, Clone)]
pub struct OciRuntime {
    pub binary: PathBuf,
    /// `--root`: where the runtime keeps container state.
    pub state_root: PathBuf,
    /// crun on a hybrid host: `--cgroup-manager=disabled`, cgroup2 hidden.
    pub hybrid_workaround: bool,
    /// `docker`'s overlay: the steps that mount it on the bundle's root,
    /// run by the runtime's process in a private mount namespace before
    /// exec ([`run`](Self::run)).
    pub overlay: Option<Arc<Vec<Step>>>,
}

impl OciRuntime {
    fn base(&self) -> Command {
        let mut cmd = Command::new(&self.binary);
        cmd.arg("--root").arg(&self.state_root);
        if self.hybrid_workaround {
            cmd.arg("--cgroup-manager=disabled");
            hide_cgroup2(&mut cmd);
        }
        cmd
    }

    /// `RUNTIME run --bundle DIR ID`: runs the container in the foreground
    /// until its process exits, then deletes it.
    pub fn run(&self, bundle: &Path, id: &str) -> Command {
        let mut cmd = match &self.overlay {
            None => self.base(),
            Some(steps) => {
                let mut cmd = Command::new(&self.binary);
                cmd.arg("--root").arg(&self.state_root);
                if self.hybrid_workaround {
                    cmd.arg("--cgroup-manager=disabled");
                }
                mount_overlay_then_exec(&mut cmd, Arc::clone(steps), self.hybrid_workaround);
                cmd
            }
        };
        cmd.arg("run").arg("--bundle").arg(bundle).arg(id);
        cmd
    }

    /// True while the runtime has state for `id` (created, running or stopped
    /// but not deleted).
    pub fn has_state(&self, id: &str) -> bool {
        self.state_root.join(id).exists()
    }

    /// `RUNTIME delete -f ID` when the runtime still has state for it: kills
    /// the container's processes and removes its state and cgroup.
    pub fn delete(&self, id: &str) {
        if self.has_state(id) {
            let _ = self.base().args(["delete", "-f", id]).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).status();
        }
    }

    /// The host pid of `id`'s process (`RUNTIME state ID`: its `pid`).
    pub fn init_pid(&self, id: &str) -> Result<u32, String> {
        let out = self.base().args(["state", id]).stdin(Stdio::null()).output().map_err(|e| format!("{} state {id}: {e}", self.binary.display()))?;
        let state: serde_json::Value = serde_json::from_slice(&out.stdout)
            .map_err(|e| format!("{} state {id}: {e} ({})", self.binary.display(), String::from_utf8_lossy(&out.stderr).trim()))?;
        state["pid"]
            .as_u64()
            .filter(|&p| p > 0)
            .map(|p| p as u32)
            .ok_or_else(|| format!("{} state {id} names no pid: {state}", self.binary.display()))
    }

    /// The IDs the runtime lists in its state root (`RUNTIME list -q`).
    pub fn list(&self) -> Vec<String> {
        match self.base().args(["list", "-q"]).stdin(Stdio::null()).stderr(Stdio::null()).output() {
            Ok(out) => String::from_utf8_lossy(&out.stdout).lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect(),
            Err(_) => Vec::new(),
        }
    }
}

/// True on a host where crun refuses to run: v1 controllers and a cgroup2
/// at /sys/fs/cgroup/unified with a controller enabled in it.
pub fn hybrid_with_cgroup2_controllers() -> bool {
    cgroup_mode() == CgroupMode::Hybrid && std::fs::read_to_string("/sys/fs/cgroup/unified/cgroup.controllers").is_ok_and(|c| !c.trim().is_empty())
}

/// Runs the command in a private mount namespace of its own where the
/// hybrid cgroup2 mount is gone, so crun sees a v1-only host. The host's
/// mount table is untouched: the umount happens in a copy of it.
fn hide_cgroup2(cmd: &mut Command) {
    in_private_mount_ns(cmd, || {
        // SAFETY: umount2(2) on a static C string.
        unsafe { libc::umount2(c"/sys/fs/cgroup/unified".as_ptr(), libc::MNT_DETACH) }
    });
}

/// Runs the command in a private mount namespace of its own where `steps`
/// (an [`OverlayStage`]'s) have mounted the overlay root, and, with
/// `hide_cgroup2`, the hybrid cgroup2 mount is gone as in [`hide_cgroup2`].
/// The host's mount table is untouched, and the overlay goes with the
/// runtime's process and its container.
pub(super) fn mount_overlay_then_exec(cmd: &mut Command, steps: Arc<Vec<Step>>, hide_cgroup2: bool) {
    // SAFETY: the closure runs between fork and exec; it makes unshare(2),
    // mount(2), umount2(2) on a static C string and the steps' syscalls on
    // C strings made before the fork (`rootfs::apply` allocates nothing,
    // as the container's child relies on), and io::Error::from_raw_os_error
    // does not allocate.
    unsafe {
        cmd.pre_exec(move || {
            if libc::unshare(libc::CLONE_NEWNS) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::mount(std::ptr::null(), c"/".as_ptr(), std::ptr::null(), libc::MS_REC | libc::MS_PRIVATE, std::ptr::null()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if hide_cgroup2 && libc::umount2(c"/sys/fs/cgroup/unified".as_ptr(), libc::MNT_DETACH) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            rootfs::apply(&steps, &crate::container::syscall::Linux).map_err(|(_, errno)| std::io::Error::from_raw_os_error(errno as i32))
        });
    }
}

/// Runs the command in a private copy of the host's mount namespace, where
/// `then` (a mount or umount on static strings, returning its syscall's
/// result) changes what the command sees; the host's mount table is
/// untouched.
pub(super) fn in_private_mount_ns(cmd: &mut Command, then: fn() -> libc::c_int) {
    // SAFETY: the closure runs between fork and exec; it makes only
    // unshare(2), mount(2) and `then`'s one call on static C strings (no
    // allocation, no locks), and io::Error::last_os_error does not allocate.
    unsafe {
        cmd.pre_exec(move || {
            if libc::unshare(libc::CLONE_NEWNS) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // Private first, or the change would propagate to the host's
            // shared mounts.
            if libc::mount(std::ptr::null(), c"/".as_ptr(), std::ptr::null(), libc::MS_REC | libc::MS_PRIVATE, std::ptr::null()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if then() != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Removes cgroups left by runc/crun containers of isobench processes that
/// no longer exist (named `isobench-<pid>-…` at the root of each hierarchy;
/// a killed `runc run` cannot delete its container's). Only empty cgroups go
/// (rmdir fails on a populated one). Returns the cgroups removed.
pub fn sweep_cgroups() -> Vec<PathBuf> {
    sweep_cgroups_in(Path::new("/sys/fs/cgroup"))
}

/// [`sweep_cgroups`] under another cgroup root.
pub fn sweep_cgroups_in(root: &Path) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    // v2 (or the hybrid's unified dir) holds them directly; v1 one level down.
    let mut parents = vec![root.to_path_buf()];
    if let Ok(entries) = std::fs::read_dir(root) {
        parents.extend(entries.flatten().filter(|e| e.file_type().is_ok_and(|t| t.is_dir())).map(|e| e.path()));
    }
    for parent in parents {
        removed.extend(leftovers::sweep(&parent, leftovers::owner_pid, |e| e.file_type().is_ok_and(|t| t.is_dir()) && remove_dead_cgroup(&e.path())));
    }
    removed
}

/// How long the sweep waits for the processes it killed in a dead run's
/// cgroup to leave it (a sandbox's ptrace stubs exit after their tracer).
const DEAD_CGROUP_DRAIN: Duration = Duration::from_secs(2);

/// Removes a dead run's cgroup; processes still in it (a runtime's children
/// that outlived the run, e.g. gVisor's stubs) are killed first and the
/// removal retried until they are gone or [`DEAD_CGROUP_DRAIN`] passes.
fn remove_dead_cgroup(dir: &Path) -> bool {
    let deadline = Instant::now() + DEAD_CGROUP_DRAIN;
    for child in std::fs::read_dir(dir).into_iter().flatten().flatten().filter(|e| e.file_type().is_ok_and(|t| t.is_dir())) {
        remove_dead_cgroup(&child.path());
    }
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return true,
            Err(e) if e.raw_os_error() == Some(nix::libc::EBUSY) && Instant::now() < deadline => {
                for pid in std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default().lines().filter_map(|l| l.trim().parse::<i32>().ok())
                {
                    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(_) => return false,
        }
    }
}

/// A peer environment through an OCI runtime (runc, crun): one bundle,
/// prepared once; each start writes `config.json` for a new container ID and
/// runs it in the foreground.
pub struct OciEnvironment {
    kind: EnvKind,
    tool: Tool,
    runtime: OciRuntime,
    version: Option<String>,
    namespaces: NamespaceSet,
    /// The security profile every container of it gets.
    profile: PreparedProfile,
    /// `docker`'s overlay root: the stage whose `merged` is every
    /// container's `root.path` (the bundle's rootfs its lowerdir).
    overlay: Option<OverlayStage>,
    /// The fs.* metrics' storage path: a volume in config.json's mounts,
    /// or the container's /tmp (the overlay under `docker`, else a tmpfs).
    storage: Option<StoragePath>,
    // Dropped last: the runtime's state lives in it.
    bundle: OciBundle,
}

impl OciEnvironment {
    /// run.json's `metadata.profile`: the runtime applies the capabilities,
    /// paths and seccomp filter of config.json; isobench mounts the overlay
    /// root it is given and prepares the bridged network namespace it joins.
    /// Layers of the profile not applied (none today) are listed as such.
    fn profile_record(&self) -> serde_json::Value {
        let mut m = super::container::profile_metadata(&self.profile, self.tool.name);
        let (applied, not): (Vec<Layer>, Vec<Layer>) = self.profile.layers().iter().partition(|l| self.applies(**l));
        m["layers"] = serde_json::json!(applied);
        if !not.is_empty() {
            m["layers_not_applied"] = serde_json::json!(not);
        }
        if let Some(stage) = &self.overlay {
            m["overlay"] = serde_json::to_value(stage.record()).unwrap_or_default();
            m["overlay"]["mounted_by"] =
                format!("isobench, in {}'s own private mount namespace before exec; config.json's root.path is the merged directory", self.tool.name)
                    .into();
        }
        m
    }

    /// Whether containers of this environment get `layer`.
    fn applies(&self, layer: Layer) -> bool {
        match layer {
            Layer::Hardening | Layer::Seccomp => true,
            Layer::Overlay => self.overlay.is_some(),
            Layer::Bridge => self.bridged(),
        }
    }

    /// `docker`'s bridge: the agent's containers join a network namespace
    /// isobench prepared with `eth0` on a bridge ([`BridgedNet`]); needs a
    /// network namespace in the set.
    fn bridged(&self) -> bool {
        self.profile.has(Layer::Bridge) && self.namespaces.contains(Namespace::Net)
    }

    /// Finds the runtime, builds the bundle and runs `/noop` in it once, so
    /// a runtime that cannot work here is `Unavailable` with its own words
    /// ("unsupported here: …"), not a failure later.
    pub fn prepare(kind: EnvKind, tool: Tool, opts: &Options) -> Result<OciEnvironment, EnvError> {
        let env = kind.as_str();
        let binary = tool.locate().map_err(|reason| EnvError::Unavailable { env, reason })?;
        Self::with_binary(kind, tool, binary, opts)
    }

    /// [`prepare`](Self::prepare) with the runtime binary given.
    pub fn with_binary(kind: EnvKind, tool: Tool, binary: PathBuf, opts: &Options) -> Result<OciEnvironment, EnvError> {
        let env = kind.as_str();
        crate::container::require_root().map_err(|e| EnvError::Unavailable { env, reason: e.to_string() })?;
        // Cgroups of runs killed with SIGKILL (building the bundle sweeps
        // their temp dirs, and with them the runtime's state).
        sweep_cgroups();
        let bundle =
            OciBundle::build_with(&opts.workloads, env, &opts.container.rootfs).map_err(|e| EnvError::Start { env, reason: e.to_string() })?;
        // Only crun refuses hybrid hosts; runc handles them.
        let hybrid_workaround = tool == CRUN_TOOL && hybrid_with_cgroup2_controllers();
        let namespaces = opts.container.namespaces.unwrap_or(NamespaceSet::DEFAULT);
        let profile = opts.container.prepare_profile().map_err(|e| EnvError::Unavailable { env, reason: e.to_string() })?;
        let overlay = match profile.has(Layer::Overlay) {
            true => {
                Some(OverlayStage::prepare(bundle.rootfs(), profile.overlay_upper()).map_err(|e| EnvError::Start { env, reason: e.to_string() })?)
            }
            false => None,
        };
        let steps = overlay.as_ref().map(OverlayStage::steps).transpose().map_err(|e| EnvError::Start { env, reason: e.to_string() })?.map(Arc::new);
        let runtime = OciRuntime { binary: binary.clone(), state_root: bundle.state_root(), hybrid_workaround, overlay: steps };
        let storage = super::peer::storage_path(opts, env, StorageKind::Volume, StorageKind::ContainerRoot)?;
        let mut e = OciEnvironment { kind, tool, runtime, version: super::peer::version(&binary), namespaces, profile, overlay, storage, bundle };
        e.probe()?;
        Ok(e)
    }

    fn cgroups(&self, id: &str) -> CgroupUse {
        if self.runtime.hybrid_workaround {
            CgroupUse::None
        } else {
            CgroupUse::Path(format!("/{id}"))
        }
    }

    /// Writes the config for a new container running `args`; returns its ID.
    fn prepare_container(&mut self, args: &[String]) -> Result<String, EnvError> {
        self.prepare_container_in(args, None)
    }

    /// [`prepare_container`](Self::prepare_container), joining the network
    /// namespace at `netns` when given.
    fn prepare_container_in(&mut self, args: &[String], netns: Option<&Path>) -> Result<String, EnvError> {
        let env = self.kind.as_str();
        let id = container_id(env);
        // With the overlay the root is its merged view, writable (the
        // image, its lowerdir, is never written).
        let root = self.overlay.as_ref().map_or_else(|| self.bundle.rootfs().to_path_buf(), OverlayStage::merged);
        let mut spec = config(&root, self.namespaces, args, &crate::container::default_hostname(), &self.cgroups(&id))
            .map_err(|e| EnvError::Start { env, reason: e.to_string() })?;
        apply_profile(&mut spec, &self.profile).map_err(|e| EnvError::Start { env, reason: e.to_string() })?;
        if self.overlay.is_none() && self.bundle.prepared_rootfs().read_only() {
            read_only_root(&mut spec).map_err(|e| EnvError::Start { env, reason: e.to_string() })?;
        }
        if let Some(path) = netns {
            join_network_namespace(&mut spec, path).map_err(|e| EnvError::Start { env, reason: e.to_string() })?;
        }
        if let Some(StoragePath { kind: StorageKind::Volume, host_dir: Some(host), agent_dir, .. }) = &self.storage {
            add_volume(&mut spec, host, agent_dir).map_err(|e| EnvError::Start { env, reason: e.to_string() })?;
        }
        self.bundle.write_config(&spec).map_err(|e| EnvError::Start { env, reason: e.to_string() })?;
        Ok(id)
    }

    fn probe(&mut self) -> Result<(), EnvError> {
        let env = self.kind.as_str();
        let id = self.prepare_container(&noop_args(Noop::Static))?;
        let out = self.runtime.run(self.bundle.dir(), &id).stdin(Stdio::null()).stdout(Stdio::null()).output();
        self.runtime.delete(&id);
        let out = out.map_err(|e| EnvError::Io { env, context: format!("run {}", self.runtime.binary.display()), source: e })?;
        if out.status.success() {
            return Ok(());
        }
        let msg = String::from_utf8_lossy(&out.stderr).split_whitespace().collect::<Vec<_>>().join(" ");
        Err(EnvError::Unavailable { env, reason: format!("unsupported here: {msg}") })
    }

    pub fn runtime(&self) -> &OciRuntime {
        &self.runtime
    }

    pub fn bundle(&self) -> &OciBundle {
        &self.bundle
    }
}

impl Environment for OciEnvironment {
    fn kind(&self) -> EnvKind {
        self.kind
    }

    /// The volume bound on /mnt, or the container's /tmp: the overlay's
    /// upper under `docker`, else a tmpfs over the read-only image.
    fn storage(&self) -> Result<StoragePath, String> {
        super::peer::storage_or_reason(&self.storage)
    }

    /// `runc (docker)`, `crun (default, cgroups disabled)`, ...: the
    /// profile, and the cgroup workaround where crun needed it.
    fn label(&self) -> String {
        let mut profile = self.profile.label();
        let missing: Vec<&str> = self.profile.layers().iter().filter(|l| !self.applies(**l)).map(|l| l.as_str()).collect();
        if !missing.is_empty() {
            profile = format!("{profile} without {}", missing.join(", "));
        }
        if self.runtime.hybrid_workaround {
            format!("{} ({profile}, cgroups disabled)", self.kind)
        } else {
            format!("{} ({profile})", self.kind)
        }
    }

    fn metadata(&self) -> serde_json::Value {
        serde_json::json!({
            "runtime": self.runtime.binary,
            "version": self.version,
            "bundle": self.bundle.dir(),
            "rootfs": self.bundle.rootfs(),
            "rootfs_image": self.bundle.prepared_rootfs().label(),
            "rootfs_kind": self.bundle.prepared_rootfs().description(),
            "rootfs_read_only": self.bundle.prepared_rootfs().read_only(),
            "namespaces": self.namespaces.names(),
            "cgroups": if self.runtime.hybrid_workaround {
                "disabled (--cgroup-manager=disabled): crun refuses hybrid cgroup hosts, so it runs in a private mount namespace without /sys/fs/cgroup/unified"
            } else {
                "cgroupfs, one cgroup per container (/isobench-<pid>-<runtime>-<n>), default device rules"
            },
            "launcher": format!("{} run --bundle (foreground)", self.tool.name),
            "profile": self.profile_record(),
            "network": if self.bridged() {
                serde_json::json!({
                    "mode": "veth+bridge+NAT: config.json joins a network namespace of the start's own whose eth0 is a veth on a bridge of the run's namespace, the published port DNAT'd to it there",
                    "env_start": "env.start includes making that namespace, veth, bridge and NAT table (phase network_ready); the container's env.start makes its bridge later, at the first boundary metric",
                    "startup_noop": "no bridge: the runtime makes the container's network namespace, as isobench's container's start does",
                })
            } else if self.namespaces.contains(Namespace::Net) {
                serde_json::json!({
                    "mode": "veth: eth0 made in the container's network namespace (its pid from `state`) at the first app or boundary metric, its peer in the run's namespace, as isobench's container gets it",
                    "env_start": "no network device: the runtime makes an empty network namespace, as isobench's container's start does",
                })
            } else {
                serde_json::Value::Null
            },
        })
    }

    fn start(&mut self) -> Result<Box<dyn Instance>, EnvError> {
        let t0 = Instant::now();
        let env = self.kind.as_str();
        let net = match self.bridged() {
            true => {
                Some(BridgedNet::create().map_err(|reason| EnvError::Start { env, reason: format!("the container's bridge network: {reason}") })?)
            }
            false => None,
        };
        let network_ms = t0.elapsed().as_secs_f64() * 1e3;
        let id = self.prepare_container_in(&agent_args(), net.as_ref().map(|n| n.netns.path()))?;
        let cmd = self.runtime.run(self.bundle.dir(), &id);
        let runtime = self.runtime.clone();
        let endpoint = net.as_ref().map(|n| n.endpoint.clone());
        let lazy = LazyVeth { runtime: self.runtime.clone(), id: id.clone(), own_netns: self.namespaces.contains(Namespace::Net) };
        let cleanup: Cleanup = Box::new(move || {
            runtime.delete(&id);
            drop(net);
        });
        let log = self.bundle.dir().join("stderr.log");
        let inner = start_agent(env, cmd, &log, Some(cleanup), t0)?;
        match endpoint {
            None => Ok(Box::new(VethInstance { env, net: VethState::Pending(lazy), inner })),
            Some(endpoint) => {
                let ready_ms = inner.ready_after().as_secs_f64() * 1e3;
                Ok(Box::new(NetInstance::new(inner, endpoint, network_ms, ready_ms)))
            }
        }
    }
}

impl NoopStart for OciEnvironment {
    fn noop_command(&mut self, noop: Noop) -> Result<PeerCommand, EnvError> {
        let id = self.prepare_container(&noop_args(noop))?;
        let runtime = self.runtime.clone();
        let cmd = self.runtime.run(self.bundle.dir(), &id);
        Ok(PeerCommand { cmd, cleanup: Some(Box::new(move || runtime.delete(&id))) })
    }
}

/// Makes `spec`'s container join the network namespace at `path` instead of
/// getting a new one (runtime-spec's namespace `path`).
pub fn join_network_namespace(spec: &mut Spec, path: &Path) -> Result<(), OciError> {
    let mut linux = spec.linux().clone().unwrap_or_default();
    let mut list = linux.namespaces().clone().unwrap_or_default();
    list.retain(|n| n.typ() != LinuxNamespaceType::Network);
    list.push(LinuxNamespaceBuilder::default().typ(LinuxNamespaceType::Network).path(path).build()?);
    linux.set_namespaces(Some(list));
    spec.set_linux(Some(linux));
    Ok(())
}

/// One container's network under `docker`'s bridge: a network namespace of
/// its own (`isobench-<pid>-<n>` in /run/netns, swept by name) holding
/// `eth0`, whose veth's other end is on a bridge of the run's namespace with
/// the published port's NAT table, as isobench's container gets it.
pub(super) struct BridgedNet {
    pub(super) endpoint: Endpoint,
    // Dropped in this order: the table, veth and bridge, then the namespace.
    _bridged: BridgedVeth,
    pub(super) netns: RunNetns,
}

impl BridgedNet {
    /// runc's and crun's: the path is [`PathKind::VethBridgeNat`].
    fn create() -> Result<BridgedNet, String> {
        Self::create_as(PathKind::VethBridgeNat)
    }

    /// The bridged namespace, its endpoint's path named `path` (runsc's
    /// netstack drives the same `eth0`: [`PathKind::NetstackBridgeNat`]).
    pub(super) fn create_as(path: PathKind) -> Result<BridgedNet, String> {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let run_ns: Arc<RunNetns> = RunNetns::shared().map_err(|e| e.to_string())?;
        let subnet = run_ns.try_allocate_subnet().map_err(|e| e.to_string())?;
        let netns = RunNetns::create().map_err(|e| e.to_string())?;
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let bridged = run_ns
            .add_bridged_veth(&format!("obr{n}"), &format!("obv{n}"), netns.file().as_fd(), CONTAINER_IF, &subnet)
            .map_err(|e| e.to_string())?;
        let endpoint = Endpoint {
            path,
            netns: Some(run_ns),
            bind: subnet.peer.into(),
            connect: bridged.published.into(),
            forwards: Some(Forwards { tcp: (CONTAINER_PORT, PUBLISHED_PORT), udp: (CONTAINER_PORT, PUBLISHED_PORT) }),
            host_scheduler: true,
        };
        Ok(BridgedNet { endpoint, _bridged: bridged, netns })
    }
}

/// How runc's or crun's container (without `docker`'s bridge) gets its veth
/// on the first cross-boundary metric, as isobench's container does
/// (`env::container`): `eth0` created by netlink directly in the
/// container's network namespace (`/proc/<its pid>/ns/net`, the pid from
/// `RUNTIME state`), its peer with the subnet's host address in the run's
/// private namespace; `env.start` times a start without a network device
/// on both launchers alike.
struct LazyVeth {
    runtime: OciRuntime,
    id: String,
    /// The container has a network namespace of its own (else it shares
    /// the host's).
    own_netns: bool,
}

impl LazyVeth {
    fn create(&self) -> Result<VethState, String> {
        if !self.own_netns {
            return Ok(VethState::Host);
        }
        let pid = self.runtime.init_pid(&self.id)?;
        let netns = RunNetns::shared().map_err(|e| e.to_string())?;
        let subnet = netns.try_allocate_subnet().map_err(|e| e.to_string())?;
        let ns_path = format!("/proc/{pid}/ns/net");
        let peer_ns = std::fs::File::open(&ns_path).map_err(|e| format!("open {ns_path}: {e}"))?;
        // Pid-stamped by the container's host pid, as isobench's container's.
        let link = netns.add_veth(&format!("ocv{pid}"), peer_ns.as_fd(), CONTAINER_IF, &subnet, None).map_err(|e| e.to_string())?;
        let endpoint = Endpoint {
            path: PathKind::Veth,
            netns: Some(netns),
            bind: subnet.peer.into(),
            connect: subnet.peer.into(),
            forwards: None,
            host_scheduler: true,
        };
        Ok(VethState::Veth { endpoint, _link: link })
    }
}

enum VethState {
    /// Not made yet.
    Pending(LazyVeth),
    /// No network namespace: the host's network.
    Host,
    /// `eth0` in the container (its peer deleted on drop, and by the kernel
    /// with the container's namespace).
    Veth {
        endpoint: Endpoint,
        _link: crate::container::net::Link,
    },
    Unavailable(String),
}

/// runc's or crun's agent, its veth made on the first cross-boundary metric
/// ([`LazyVeth`]).
pub struct VethInstance {
    env: &'static str,
    // Dropped before `net`: the container goes first, and its veth with its
    // namespace; dropping the link after that finds nothing left to delete.
    inner: PeerInstance,
    net: VethState,
}

impl Instance for VethInstance {
    fn agent(&mut self) -> &mut AgentClient {
        self.inner.agent()
    }

    fn info(&self) -> &AgentInfo {
        self.inner.info()
    }

    fn ready_after(&self) -> Duration {
        self.inner.ready_after()
    }

    fn host_pid(&self) -> Option<u32> {
        Some(self.inner.command_pid())
    }

    /// `eth0` of the container, made on the first call.
    fn endpoint(&mut self) -> Result<Endpoint, EnvError> {
        if let VethState::Pending(lazy) = &self.net {
            self.net = lazy.create().unwrap_or_else(VethState::Unavailable);
        }
        match &self.net {
            VethState::Host => Ok(Endpoint::loopback(PathKind::HostNetwork)),
            VethState::Veth { endpoint, .. } => Ok(endpoint.clone()),
            VethState::Unavailable(reason) => Err(EnvError::Unavailable { env: self.env, reason: reason.clone() }),
            VethState::Pending(_) => unreachable!("made above"),
        }
    }

    fn shutdown(self: Box<Self>) -> Result<Duration, EnvError> {
        let VethInstance { inner, net, .. } = *self;
        let took = Box::new(inner).shutdown();
        drop(net);
        took
    }
}

/// The agent of a peer reached over a network of isobench's making: runc or
/// crun on `docker`'s bridge, runsc on its veth or bridge (netstack serves
/// the sandbox's side).
pub struct NetInstance {
    inner: PeerInstance,
    endpoint: Endpoint,
    phases: Vec<(String, f64)>,
}

impl NetInstance {
    /// `network_ready_ms`: the start's namespace, veth (and bridge and NAT
    /// table) made; `ready_ms`: the agent's ready line read.
    pub fn new(inner: PeerInstance, endpoint: Endpoint, network_ready_ms: f64, ready_ms: f64) -> NetInstance {
        NetInstance { inner, endpoint, phases: vec![("network_ready".into(), network_ready_ms), ("agent_ready".into(), ready_ms)] }
    }

    /// The host pid of `runc run` / `crun run` / `runsc run`.
    pub fn command_pid(&self) -> u32 {
        self.inner.command_pid()
    }
}

impl Instance for NetInstance {
    fn agent(&mut self) -> &mut AgentClient {
        self.inner.agent()
    }

    fn info(&self) -> &AgentInfo {
        self.inner.info()
    }

    fn ready_after(&self) -> Duration {
        self.inner.ready_after()
    }

    /// The runtime's command: the container's (or the sandbox's Sentry and
    /// gofer) processes are in its tree.
    fn host_pid(&self) -> Option<u32> {
        Some(self.command_pid())
    }

    /// `network_ready` and `agent_ready`.
    fn phases(&self) -> Vec<(String, f64)> {
        self.phases.clone()
    }

    /// `eth0` of the container or sandbox, through the bridge's published
    /// port where there is one.
    fn endpoint(&mut self) -> Result<Endpoint, EnvError> {
        Ok(self.endpoint.clone())
    }

    fn shutdown(self: Box<Self>) -> Result<Duration, EnvError> {
        Box::new(self.inner).shutdown()
    }
}

/// Arguments of the agent inside a bundle.
pub fn agent_args() -> Vec<String> {
    vec![format!("/{}", crate::workloads::AGENT_NAME)]
}

/// Arguments of a no-op inside a bundle (what env.start measures).
pub fn noop_args(noop: Noop) -> Vec<String> {
    vec![format!("/{}", noop.name_in_rootfs())]
}

/// For `Command::args`.
pub fn os(v: &[String]) -> Vec<OsString> {
    v.iter().map(OsString::from).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_has_isobench_namespaces_mounts_and_the_agent() {
        let spec =
            config(Path::new("/tmp/r"), NamespaceSet::DEFAULT, &agent_args(), "isobench-1", &CgroupUse::Path("/isobench-1-runc-0".into())).unwrap();
        let v = serde_json::to_value(&spec).unwrap();
        assert_eq!(v["process"]["args"], serde_json::json!(["/isobench-agent"]));
        assert_eq!(v["process"]["terminal"], false);
        assert_eq!(v["root"]["path"], "/tmp/r");
        assert_eq!(v["root"]["readonly"], false);
        let mut ns: Vec<_> = v["linux"]["namespaces"].as_array().unwrap().iter().map(|n| n["type"].as_str().unwrap().to_string()).collect();
        ns.sort();
        assert_eq!(ns, ["ipc", "mount", "network", "pid", "uts"]);
        let dests: Vec<_> = v["mounts"].as_array().unwrap().iter().map(|m| m["destination"].as_str().unwrap()).collect();
        assert_eq!(dests, MOUNTS);
        assert_eq!(v["linux"]["cgroupsPath"], "/isobench-1-runc-0");
        assert_eq!(v["linux"]["resources"]["devices"][0]["allow"], false);
    }

    #[test]
    fn each_profile_is_written_into_the_config() {
        let spec = |p: Profile| {
            let mut s = config(Path::new("/tmp/r"), NamespaceSet::DEFAULT, &agent_args(), "h", &CgroupUse::None).unwrap();
            apply_profile(&mut s, &PreparedProfile::prepare(p).unwrap()).unwrap();
            serde_json::to_value(&s).unwrap()
        };
        let default = spec(Profile::Default);
        let mut eff: Vec<String> = serde_json::from_value(default["process"]["capabilities"]["effective"].clone()).unwrap();
        eff.sort();
        let mut docker: Vec<String> = crate::container::profile::DOCKER_CAPABILITIES.iter().map(|s| s.to_string()).collect();
        docker.sort();
        assert_eq!(eff, docker);
        assert_eq!(default["process"]["capabilities"]["bounding"].as_array().unwrap().len(), 14);
        assert_eq!(default["process"]["capabilities"]["inheritable"], serde_json::json!([]));
        assert_eq!(default["process"]["noNewPrivileges"], true);
        assert_eq!(default["linux"]["maskedPaths"].as_array().unwrap().len(), MASKED_PATHS.len());
        assert!(default["linux"]["readonlyPaths"].as_array().unwrap().iter().any(|p| p == "/proc/sys"));
        assert!(default["linux"].get("seccomp").is_none());
        let bare = spec(Profile::Bare);
        assert_eq!(bare["process"]["noNewPrivileges"], false);
        assert!(bare["process"]["capabilities"]["effective"].as_array().unwrap().iter().any(|c| c == "CAP_SYS_ADMIN"));
        assert_eq!(bare["linux"]["maskedPaths"], serde_json::json!([]));
        assert_eq!(bare["linux"]["readonlyPaths"], serde_json::json!([]));
    }

    #[test]
    fn a_user_namespace_comes_with_identity_maps() {
        let all: NamespaceSet = "all".parse().unwrap();
        let v = serde_json::to_value(config(Path::new("/tmp/r"), all, &noop_args(Noop::Static), "h", &CgroupUse::None).unwrap()).unwrap();
        for key in ["uidMappings", "gidMappings"] {
            assert_eq!(v["linux"][key], serde_json::json!([{ "containerID": 0, "hostID": 0, "size": u32::MAX }]), "{key}");
        }
        let v = serde_json::to_value(config(Path::new("/tmp/r"), NamespaceSet::DEFAULT, &noop_args(Noop::Static), "h", &CgroupUse::None).unwrap())
            .unwrap();
        assert!(v["linux"].get("uidMappings").is_none(), "no user namespace, no maps: {}", v["linux"]);
    }

    #[test]
    fn config_round_trips_through_oci_spec_types() {
        let spec = config(Path::new("/tmp/r"), NamespaceSet::DEFAULT, &noop_args(Noop::Static), "h", &CgroupUse::None).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.json");
        spec.save(&p).unwrap();
        let back = Spec::load(&p).unwrap();
        assert_eq!(back, spec);
        let linux = back.linux().as_ref().unwrap();
        assert!(linux.cgroups_path().is_none() && linux.resources().is_none(), "no cgroups for --cgroup-manager=disabled");
    }

    #[test]
    fn stale_cgroups_of_dead_pids_are_swept_live_ones_kept() {
        let root = tempfile::tempdir().unwrap();
        let dead = root.path().join("memory/isobench-4194399-runc-0");
        let live = root.path().join(format!("memory/isobench-{}-runc-1", std::process::id()));
        let v2 = root.path().join("isobench-4194399-crun-3");
        let other = root.path().join("memory/docker");
        for d in [&dead, &live, &v2, &other] {
            std::fs::create_dir_all(d).unwrap();
        }
        let mut removed = sweep_cgroups_in(root.path());
        removed.sort();
        let mut want = vec![v2.clone(), dead.clone()];
        want.sort();
        assert_eq!(removed, want);
        assert!(live.exists() && other.exists());
    }
}
