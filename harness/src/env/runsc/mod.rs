//! The runsc environment: the agent inside gVisor, Google's application
//! kernel in user space (the sandbox of GKE Sandbox and of Cloud Run's first
//! generation), run through `runsc`, its OCI runtime, the way Docker's
//! `--runtime=runsc` runs it: `runsc --root STATE --platform=P
//! --network=sandbox run --bundle DIR ID`, foreground, on the very bundle
//! runc and crun run ([`super::oci`]: the same rootfs, namespaces, mounts,
//! profile and agent).
//!
//! What differs from runc is underneath the application: its system calls
//! never reach the host kernel directly. gVisor's Sentry serves them, caught
//! by the platform ([`platform`], `--gvisor-platform`, probed like the vm's
//! accelerator); files come through a gofer process, the network through
//! gVisor's own TCP/IP stack (netstack). The column is labelled with the
//! platform: `runsc (ptrace, default)`.
//!
//! Networking follows runsc's `--network=sandbox`: each start gets a network
//! namespace of its own (`isobench-<pid>-<n>` in /run/netns, swept by name)
//! holding `eth0`, a veth whose other end is in the run's private namespace
//! ([`crate::container::net`]), named as the bundle's network namespace path;
//! runsc takes the veth's address and routes over into netstack and reads
//! and writes its frames through a packet socket. `net.*.boundary` therefore
//! crosses netstack and the veth. The no-op starts of `isobench startup` run
//! with `--network=none` (loopback only, as runc's new empty namespace).
//!
//! Under `--profile docker` runsc gets every layer runc gets, from the same
//! code ([`super::oci`]): the namespace a start names is the bridged one
//! runc joins ([`oci::BridgedNet`]: `eth0` on a bridge of the run's
//! namespace, the published port DNAT'd there), which netstack takes over
//! as it takes the plain veth (path `netstack+bridge+NAT`); and the root is
//! the kernel's overlayfs on the image, mounted by `runsc run`'s own process
//! in a private mount namespace before exec
//! ([`oci::mount_overlay_then_exec`]) and named as `root.path`, so runsc's
//! gofer, its child, serves the merged view to the Sentry (not runsc's own
//! memory-backed `--overlay`, another filesystem).
//!
//! The fs.* metrics' storage path (`--container-storage`): a volume is a
//! bind mount in config.json (`<data dir>/runsc` on /mnt), which the
//! Sentry reaches through the gofer; the root is, under `docker`, the
//! overlayfs root above (also through the gofer), else runsc's own overlay
//! on the read-only image, `--overlay2=root:memory`, whose writes stay in
//! the Sentry's memory. The root's directory is the image's /mnt, not /tmp,
//! on which runsc mounts a tmpfs of its own. The row names which.
//!
//! runsc 20221219 (Debian 12's) refuses to network "in the root network
//! namespace", which it tells by /proc/sys/net/core/rmem_default existing;
//! kernels that show that sysctl in every namespace (6.18 here) make it
//! refuse every namespace. isobench then runs runsc in a private mount
//! namespace with an empty read-only tmpfs over /proc/sys/net (the host's
//! mount table is untouched), and run.json says so.
//!
//! A killed run: `runsc run` dies with isobench (PR_SET_PDEATHSIG), its
//! sandbox (`--attached`) and gofer die with it; the state dir is in the
//! bundle's pid-stamped temp dir, the netns is pid-stamped, the cgroup
//! (`/isobench-<pid>-runsc-<n>`) is swept like runc's, and [`sweep`] kills
//! any runsc process still holding a dead run's state dir.

pub mod platform;

use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use oci_spec::runtime::{LinuxNamespaceBuilder, LinuxNamespaceType, Spec};

use self::platform::{Platform, ProbeFailure, ProbeKey, Verdict};
use super::endpoint::{Endpoint, PathKind};
use super::oci::{self, apply_profile, config, container_id, noop_args, read_only_root, sweep_cgroups, CgroupUse, NetInstance, OciBundle};
use super::peer::{self, start_agent, Cleanup, NoopStart, PeerCommand, RUNSC};
use super::{EnvError, EnvKind, Environment, Instance, Options};
use crate::container::net::{Link, RunNetns};
use crate::container::profile::{Layer, PreparedProfile, Profile};
use crate::container::rootfs::{OverlayStage, Step};
use crate::container::NamespaceSet;
use crate::leftovers;
use crate::storage::{StorageKind, StoragePath};
use crate::workloads::Noop;

const ENV: &str = "runsc";

/// How long `runsc delete -force` may take before it is killed (it only
/// signals a sandbox and removes its state files).
const DELETE_TIMEOUT: Duration = Duration::from_secs(10);

/// How often a bounded wait looks whether the process has exited.
const POLL: Duration = Duration::from_millis(10);

/// The sandbox's end of its veth (what the agent sees in netstack).
pub const SANDBOX_IF: &str = "eth0";

/// The fs.* metrics' directory on the sandbox's root: the image's /mnt
/// (where the volume goes otherwise). Not /tmp: runsc mounts a tmpfs of the
/// Sentry's own on an empty /tmp, which is neither root path.
const ROOT_DATA_DIR: &str = "/mnt";

/// The sysctl runsc 20221219 takes for a sign of the root network namespace.
const ROOT_NS_MARKER: &str = "/proc/sys/net/core/rmem_default";

/// Whether runsc gets a network device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Network {
    /// `--network=sandbox` in the given namespace (netstack on its veth).
    Sandbox,
    /// `--network=none`: netstack with loopback only.
    None,
}

/// gVisor, prepared: its bundle, the platform verdict and how runsc is called.
pub struct Runsc {
    binary: PathBuf,
    version: Option<String>,
    namespaces: NamespaceSet,
    profile: PreparedProfile,
    verdict: Verdict,
    /// runsc must not see /proc/sys/net (see the module docs).
    hide_proc_sys_net: bool,
    /// `docker`'s overlay root, as runc's ([`oci::OciEnvironment`]): the
    /// stage whose `merged` is every container's `root.path`, and the
    /// steps that mount it in `runsc run`'s private mount namespace.
    overlay: Option<(OverlayStage, Arc<Vec<Step>>)>,
    /// The fs.* metrics' storage path, when a data directory was given.
    storage: Option<StoragePath>,
    // Dropped last: runsc's state lives in it.
    bundle: OciBundle,
}

/// Prepares runsc, or says in one line why it cannot run here (not
/// installed: "runsc not found; apt-get install runsc (scripts/setup installs it)").
pub fn prepare(opts: &Options) -> Result<Runsc, EnvError> {
    let binary = RUNSC.locate().map_err(|reason| EnvError::Unavailable { env: ENV, reason })?;
    Runsc::with_binary(binary, opts)
}

impl Runsc {
    /// [`prepare`] with the runsc binary given.
    pub fn with_binary(binary: PathBuf, opts: &Options) -> Result<Runsc, EnvError> {
        let unavailable = |reason: String| EnvError::Unavailable { env: ENV, reason };
        crate::container::require_root().map_err(|e| unavailable(e.to_string()))?;
        sweep_cgroups();
        let bundle =
            OciBundle::build_with(&opts.workloads, ENV, &opts.container.rootfs).map_err(|e| EnvError::Start { env: ENV, reason: e.to_string() })?;
        let profile = PreparedProfile::prepare(opts.container.profile).map_err(|e| unavailable(e.to_string()))?;
        let version = peer::version(&binary);
        let namespaces = opts.container.namespaces.unwrap_or(NamespaceSet::DEFAULT);
        let hide_proc_sys_net = root_ns_marker_everywhere().map_err(|e| unavailable(format!("the run's network namespace: {e}")))?;
        let overlay = match profile.has(Layer::Overlay) {
            true => {
                let start = |e: crate::container::rootfs::RootfsError| EnvError::Start { env: ENV, reason: e.to_string() };
                let stage = OverlayStage::prepare(bundle.rootfs(), profile.overlay_upper()).map_err(start)?;
                let steps = Arc::new(stage.steps().map_err(start)?);
                Some((stage, steps))
            }
            false => None,
        };
        let root = if overlay.is_some() { StorageKind::GoferRoot } else { StorageKind::SandboxOverlay };
        let storage = peer::storage_path_in(opts, ENV, StorageKind::GoferVolume, root, ROOT_DATA_DIR)?.map(|p| match p.kind {
            StorageKind::GoferVolume | StorageKind::GoferRoot => StoragePath { detail: Some(GOFER_DETAIL.into()), ..p },
            _ => p,
        });
        let mut env = Runsc { binary, version, namespaces, profile, verdict: placeholder_verdict(), hide_proc_sys_net, overlay, storage, bundle };
        let key = ProbeKey::new(env.version.as_deref().unwrap_or("unknown"));
        let cache = crate::paths::cache_dir().join(platform::CACHE_FILE);
        env.verdict = platform::decide_with(opts.gvisor_platform, &key, &cache, |p| env.probe(p, platform::PROBE_TIMEOUT))
            .map_err(|e| unavailable(e.to_string()))?;
        if env.verdict.source == platform::Source::Cached {
            // The cache says the platform runs; this bundle and profile must
            // too (as runc's prepare runs its no-op once).
            env.probe(env.verdict.platform, platform::PROBE_TIMEOUT)
                .map_err(|f| unavailable(format!("unsupported here: the {} platform: {}", env.verdict.platform, f.reason)))?;
        }
        Ok(env)
    }

    /// The platform that runs, and why.
    pub fn verdict(&self) -> &Verdict {
        &self.verdict
    }

    pub fn bundle(&self) -> &OciBundle {
        &self.bundle
    }

    /// Runs the bundle's no-op under `platform` without a network, bounded
    /// by `bound`: the time to its exit, or why it did not run (see
    /// [`probe_platform`]).
    pub fn probe(&self, platform: Platform, bound: Duration) -> Result<Duration, ProbeFailure> {
        probe_platform(&self.binary, &self.bundle, &self.profile, self.namespaces, platform, bound)
    }

    fn runtime(&self) -> Runtime {
        Runtime {
            binary: self.binary.clone(),
            state_root: self.bundle.state_root(),
            overlay: self.overlay.as_ref().map(|(_, s)| Arc::clone(s)),
            sandbox_overlay: self.sandbox_overlay(),
        }
    }

    /// Whether the agent's sandbox gets runsc's own root overlay
    /// (`--overlay2=root:memory`): the fs.* metrics on the root without
    /// `docker`'s overlayfs.
    fn sandbox_overlay(&self) -> bool {
        self.storage.as_ref().is_some_and(|s| s.kind == StorageKind::SandboxOverlay)
    }

    /// config.json of the agent's container `id`: [`sandbox_config`] with
    /// the fs.* metrics' volume bound when they use one, or a writable
    /// root for runsc's own overlay on it.
    fn agent_config(&self, id: &str, netns: &Path) -> Result<Spec, oci::OciError> {
        let mut spec = sandbox_config(&self.bundle, &self.root(), &self.profile, self.namespaces, &oci::agent_args(), id, Some(netns))?;
        match &self.storage {
            Some(StoragePath { kind: StorageKind::GoferVolume, host_dir: Some(host), agent_dir, .. }) => oci::add_volume(&mut spec, host, agent_dir)?,
            Some(StoragePath { kind: StorageKind::SandboxOverlay, .. }) => {
                // runsc puts its overlay only on a root config.json calls
                // writable; every write lands in the overlay's upper, in
                // the Sentry's memory, never in the shared image below.
                let path = spec.root().as_ref().map(|r| r.path().clone()).unwrap_or_default();
                spec.set_root(Some(oci_spec::runtime::RootBuilder::default().path(path).readonly(false).build()?));
            }
            _ => {}
        }
        Ok(spec)
    }

    /// The containers' `root.path`: the overlay's merged view under
    /// `docker` (the image its lowerdir, never written), else the image.
    fn root(&self) -> PathBuf {
        self.overlay.as_ref().map_or_else(|| self.bundle.rootfs().to_path_buf(), |(stage, _)| stage.merged())
    }
}

/// A verdict before the probes ran (never shown: prepare replaces it or fails).
fn placeholder_verdict() -> Verdict {
    Verdict { platform: Platform::Ptrace, reason: String::new(), source: platform::Source::Requested, attempts: Vec::new() }
}

/// Whether the sysctl runsc 20221219 takes for the root namespace's mark
/// shows in a namespace that is not the root one (the run's).
fn root_ns_marker_everywhere() -> Result<bool, crate::container::net::NetError> {
    let ns = RunNetns::shared()?;
    ns.run_in(|| Path::new(ROOT_NS_MARKER).exists())
}

/// runsc's binary and state dir: what every call of it needs.
#[derive(Debug, Clone)]
struct Runtime {
    binary: PathBuf,
    state_root: PathBuf,
    /// `docker`'s overlay: the steps that mount it on the containers'
    /// `root.path`, run by `runsc run` in a private mount namespace before
    /// exec (its gofer, a child, serves the merged view from there).
    overlay: Option<Arc<Vec<Step>>>,
    /// `--overlay2=root:memory`: runsc's own overlay on the root, its
    /// writes in the Sentry's memory.
    sandbox_overlay: bool,
}

impl Runtime {
    /// `runsc --root STATE --platform=P --network=N [--oci-seccomp] run --bundle DIR ID`.
    fn run(&self, bundle: &Path, id: &str, platform: Platform, network: Network, seccomp: bool, hide_proc_sys_net: bool) -> Command {
        let mut cmd = Command::new(&self.binary);
        cmd.arg("--root").arg(&self.state_root).arg(format!("--platform={platform}"));
        cmd.arg(match network {
            Network::Sandbox => "--network=sandbox",
            Network::None => "--network=none",
        });
        if self.sandbox_overlay {
            cmd.arg("--overlay2=root:memory");
        }
        if seccomp {
            // runsc ignores config.json's seccomp unless told to load it
            // into the Sentry's own seccomp for the application.
            cmd.arg("--oci-seccomp");
        }
        cmd.arg("run").arg("--bundle").arg(bundle).arg(id);
        if let Some(steps) = &self.overlay {
            oci::mount_overlay_then_exec(&mut cmd, Arc::clone(steps), false);
        }
        if network == Network::Sandbox && hide_proc_sys_net {
            hide_proc_sys_net_of(&mut cmd);
        }
        cmd
    }

    /// The entries of runsc's state dir that belong to container `id`.
    fn state_of(&self, id: &str) -> Vec<PathBuf> {
        std::fs::read_dir(&self.state_root)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().contains(id))
            .map(|e| e.path())
            .collect()
    }

    /// `runsc delete -force ID`, bounded by [`DELETE_TIMEOUT`], when runsc
    /// still has state for it: kills the sandbox and removes its state. What
    /// a runsc killed while it was creating the container left (a lock, a
    /// half-written state file, which `delete` refuses) is removed after.
    fn delete(&self, id: &str) {
        if self.state_of(id).is_empty() {
            return;
        }
        let mut cmd = Command::new(&self.binary);
        cmd.arg("--root").arg(&self.state_root).args(["delete", "-force", id]).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
        let _ = run_bounded(&mut cmd, DELETE_TIMEOUT);
        for left in self.state_of(id) {
            let _ = std::fs::remove_file(&left).or_else(|_| std::fs::remove_dir_all(&left));
        }
    }
}

/// Runs `cmd` (in a process group of its own) to its exit, or kills it and
/// every process below it once `bound` has passed (`Ok(None)`).
fn run_bounded(cmd: &mut Command, bound: Duration) -> std::io::Result<Option<(std::process::ExitStatus, Duration)>> {
    cmd.process_group(0);
    let t0 = Instant::now();
    let mut child = crate::process::spawn_agent(cmd)?;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some((status, t0.elapsed())));
        }
        if t0.elapsed() >= bound {
            kill_tree(child.id() as i32);
            let _ = child.wait();
            return Ok(None);
        }
        std::thread::sleep(POLL);
    }
}

/// SIGKILLs `pid` and every process below it (the sandbox has a session of
/// its own, so a process group does not reach it), leaves first found.
fn kill_tree(pid: i32) {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    let mut tree = vec![pid];
    let mut i = 0;
    let links = parent_links();
    while i < tree.len() {
        let cur = tree[i];
        tree.extend(links.iter().filter(|(_, pp)| *pp == cur).map(|(p, _)| *p));
        i += 1;
    }
    for p in tree.into_iter().rev() {
        let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
    }
}

/// (pid, ppid) of every process, from /proc/*/stat.
fn parent_links() -> Vec<(i32, i32)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else { continue };
        let Some((_, after)) = stat.rsplit_once(") ") else { continue };
        if let Some(ppid) = after.split_whitespace().nth(1).and_then(|s| s.parse().ok()) {
            out.push((pid, ppid));
        }
    }
    out
}

/// Runs the command in a private mount namespace where /proc/sys/net is an
/// empty read-only tmpfs (see the module docs). The host's mount table is
/// untouched: the mount happens in a copy of it.
fn hide_proc_sys_net_of(cmd: &mut Command) {
    oci::in_private_mount_ns(cmd, || {
        let flags = libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
        // SAFETY: mount(2) on static C strings.
        unsafe { libc::mount(c"none".as_ptr(), c"/proc/sys/net".as_ptr(), c"tmpfs".as_ptr(), flags, c"size=4k".as_ptr().cast()) }
    });
}

/// The config of one container of `runsc`: the bundle's (as runc gets it)
/// on `root` (the image, or the overlay's merged view) with the profile, and the network namespace at `netns` when given.
fn sandbox_config(
    bundle: &OciBundle,
    root: &Path,
    profile: &PreparedProfile,
    namespaces: NamespaceSet,
    args: &[String],
    id: &str,
    netns: Option<&Path>,
) -> Result<Spec, oci::OciError> {
    let mut spec = config(root, namespaces, args, &crate::container::default_hostname(), &CgroupUse::Path(format!("/{id}")))?;
    apply_profile(&mut spec, profile)?;
    drop_unknown_capabilities(&mut spec);
    // The overlay's merged view is writable whatever the image is.
    if root == bundle.rootfs() && bundle.prepared_rootfs().read_only() {
        read_only_root(&mut spec)?;
    }
    if let Some(path) = netns {
        let mut linux = spec.linux().clone().unwrap_or_default();
        let mut list = linux.namespaces().clone().unwrap_or_default();
        list.retain(|n| n.typ() != LinuxNamespaceType::Network);
        list.push(LinuxNamespaceBuilder::default().typ(LinuxNamespaceType::Network).path(path).build()?);
        linux.set_namespaces(Some(list));
        spec.set_linux(Some(linux));
    }
    Ok(spec)
}

/// Capabilities newer than runsc 0.0~20221219, which refuses a config that
/// names any of them ("converting capabilities: unknown capability"): only
/// `--profile bare` (every capability the caller holds) names them.
pub const UNKNOWN_CAPABILITIES: [&str; 3] = ["CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE"];

/// Takes [`UNKNOWN_CAPABILITIES`] out of every set of the process.
fn drop_unknown_capabilities(spec: &mut Spec) {
    let Some(mut process) = spec.process().clone() else { return };
    let Some(mut caps) = process.capabilities().clone() else { return };
    let keep = |set: &Option<oci_spec::runtime::Capabilities>| {
        // Compared by config.json's name (`CAP_BPF`), which serde writes.
        let known = |c: &&oci_spec::runtime::Capability| {
            serde_json::to_value(c).ok().and_then(|v| v.as_str().map(|n| !UNKNOWN_CAPABILITIES.contains(&n))).unwrap_or(true)
        };
        set.as_ref().map(|s| s.iter().filter(known).copied().collect())
    };
    caps.set_bounding(keep(caps.bounding()));
    caps.set_permitted(keep(caps.permitted()));
    caps.set_effective(keep(caps.effective()));
    caps.set_inheritable(keep(caps.inheritable()));
    caps.set_ambient(keep(caps.ambient()));
    process.set_capabilities(Some(caps));
    spec.set_process(Some(process));
}

/// Runs `bundle`'s no-op through `runsc run --platform=PLATFORM
/// --network=none`, bounded by `bound`: the time to a clean exit, or why
/// not ("runsc refused it: …", "no exit within N s: given up, its sandbox
/// killed"). Nothing of the probe is left either way.
pub fn probe_platform(
    binary: &Path,
    bundle: &OciBundle,
    profile: &PreparedProfile,
    namespaces: NamespaceSet,
    platform: Platform,
    bound: Duration,
) -> Result<Duration, ProbeFailure> {
    let fail = |reason: String, cacheable: bool| ProbeFailure { reason, cacheable };
    let id = container_id("runsc-probe");
    let spec =
        sandbox_config(bundle, bundle.rootfs(), profile, namespaces, &noop_args(Noop::Static), &id, None).map_err(|e| fail(e.to_string(), false))?;
    bundle.write_config(&spec).map_err(|e| fail(e.to_string(), false))?;
    let runtime = Runtime { binary: binary.to_path_buf(), state_root: bundle.state_root(), overlay: None, sandbox_overlay: false };
    let log = bundle.dir().join(format!("probe-{platform}.log"));
    let err = std::fs::File::create(&log).map_err(|e| fail(format!("create {}: {e}", log.display()), false))?;
    let mut cmd = runtime.run(bundle.dir(), &id, platform, Network::None, profile.seccomp().is_some(), false);
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(err);
    let outcome = run_bounded(&mut cmd, bound);
    runtime.delete(&id);
    match outcome {
        Ok(Some((status, took))) if status.success() => Ok(took),
        Ok(Some((status, _))) => Err(fail(format!("runsc refused it: {} ({status})", last_line(&log)), true)),
        Ok(None) => Err(fail(format!("no exit within {:.2} s: given up, its sandbox killed", bound.as_secs_f64()), true)),
        Err(e) => Err(fail(format!("spawn {}: {e}", binary.display()), false)),
    }
}

/// The last line runsc wrote (its error in plain words; the lines before it
/// are glog's), or the tail of the log when it has no line.
fn last_line(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    match text.lines().map(str::trim).rfind(|l| !l.is_empty()) {
        Some(line) => line.to_string(),
        None => peer::stderr_tail(log),
    }
}

/// A start's network: its own namespace with the veth's sandbox end.
struct SandboxNet {
    endpoint: Endpoint,
    // Dropped in this order: the veth, then the namespace.
    _link: Link,
    netns: RunNetns,
}

impl SandboxNet {
    /// A new namespace with `eth0` (.2 of a fresh /24) whose peer (.1) is in
    /// the run's namespace.
    fn create() -> Result<SandboxNet, String> {
        use std::sync::atomic::{AtomicU32, Ordering};
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let run_ns: Arc<RunNetns> = RunNetns::shared().map_err(|e| e.to_string())?;
        let subnet = run_ns.try_allocate_subnet().map_err(|e| e.to_string())?;
        let netns = RunNetns::create().map_err(|e| e.to_string())?;
        let host_if = format!("gvisor{}", SEQ.fetch_add(1, Ordering::Relaxed));
        let link = run_ns.add_veth(&host_if, netns.file().as_fd(), SANDBOX_IF, &subnet, None).map_err(|e| e.to_string())?;
        let endpoint = Endpoint {
            path: PathKind::Netstack,
            netns: Some(run_ns),
            bind: subnet.peer.into(),
            connect: subnet.peer.into(),
            forwards: None,
            host_scheduler: true,
        };
        Ok(SandboxNet { endpoint, _link: link, netns })
    }
}

/// A start's network: netstack on a veth of its own ([`SandboxNet`]), or
/// under `docker`'s bridge the namespace runc and crun join, `eth0` on a
/// bridge of the run's namespace with the published port's NAT
/// ([`oci::BridgedNet`]), which runsc's netstack takes over the same way.
enum StartNet {
    Veth(SandboxNet),
    Bridged(oci::BridgedNet),
}

impl StartNet {
    fn create(bridged: bool) -> Result<StartNet, String> {
        match bridged {
            true => oci::BridgedNet::create_as(PathKind::NetstackBridgeNat).map(StartNet::Bridged),
            false => SandboxNet::create().map(StartNet::Veth),
        }
    }

    fn netns_path(&self) -> &Path {
        match self {
            StartNet::Veth(n) => n.netns.path(),
            StartNet::Bridged(n) => n.netns.path(),
        }
    }

    fn endpoint(&self) -> &Endpoint {
        match self {
            StartNet::Veth(n) => &n.endpoint,
            StartNet::Bridged(n) => &n.endpoint,
        }
    }
}

impl Environment for Runsc {
    fn kind(&self) -> EnvKind {
        EnvKind::Runsc
    }

    /// The volume through the gofer, or the root: `docker`'s overlayfs
    /// through the gofer, else runsc's own overlay in the Sentry's memory.
    fn storage(&self) -> Result<StoragePath, String> {
        peer::storage_or_reason(&self.storage)
    }

    /// `runsc (ptrace, default)`: the platform first, then the profile.
    fn label(&self) -> String {
        let mut profile = self.profile.label();
        let missing: Vec<&str> = self.profile.layers().iter().filter(|l| !self.applies(**l)).map(|l| l.as_str()).collect();
        if !missing.is_empty() {
            profile = format!("{profile} without {}", missing.join(", "));
        }
        format!("runsc ({}, {profile})", self.verdict.platform)
    }

    fn metadata(&self) -> serde_json::Value {
        serde_json::json!({
            "runtime": self.binary,
            "version": self.version,
            "bundle": self.bundle.dir(),
            "rootfs": self.bundle.rootfs(),
            "rootfs_image": self.bundle.prepared_rootfs().label(),
            "rootfs_kind": self.bundle.prepared_rootfs().description(),
            "rootfs_read_only": self.bundle.prepared_rootfs().read_only(),
            "namespaces": self.namespaces.names(),
            "platform": self.verdict.metadata(),
            "network": {
                "mode": if self.bridged() {
                    "netstack+bridge+NAT: --network=sandbox, gVisor's netstack on the eth0 of a network namespace of the start's own, a veth on a bridge of the run's namespace, the published port DNAT'd to it there (the namespace runc and crun join under docker)"
                } else {
                    "--network=sandbox: gVisor's netstack on the veth eth0 of a network namespace of the start's own, whose peer is in the run's namespace"
                },
                "env_start": if self.bridged() {
                    "env.start includes making that namespace, veth, bridge and NAT table (phase network_ready; runsc takes eth0 over at boot); the container's env.start makes its bridge later"
                } else {
                    "env.start includes making that namespace and veth (runsc takes them over at boot); the container's env.start makes its veth later"
                },
                "proc_sys_net_hidden": self.hide_proc_sys_net.then_some(
                    "runsc ran in a private mount namespace with an empty tmpfs over /proc/sys/net: this kernel shows net.core.rmem_default in every network namespace, which runsc 20221219 takes for the root namespace and refuses"),
                "startup_noop": "--network=none (netstack with loopback only)",
            },
            "cgroups": "cgroupfs, one cgroup per container (/isobench-<pid>-runsc-<n>), made by runsc",
            "launcher": "runsc run --bundle (foreground; the sandbox --attached)",
            "profile": self.profile_metadata(),
        })
    }

    fn start(&mut self) -> Result<Box<dyn Instance>, EnvError> {
        let t0 = Instant::now();
        let net =
            StartNet::create(self.bridged()).map_err(|reason| EnvError::Start { env: ENV, reason: format!("the sandbox's network: {reason}") })?;
        let network_ms = t0.elapsed().as_secs_f64() * 1e3;
        let id = container_id(ENV);
        let spec = self.agent_config(&id, net.netns_path()).map_err(|e| EnvError::Start { env: ENV, reason: e.to_string() })?;
        self.bundle.write_config(&spec).map_err(|e| EnvError::Start { env: ENV, reason: e.to_string() })?;
        let runtime = self.runtime();
        let cmd =
            runtime.run(self.bundle.dir(), &id, self.verdict.platform, Network::Sandbox, self.profile.seccomp().is_some(), self.hide_proc_sys_net);
        let endpoint = net.endpoint().clone();
        let cleanup: Cleanup = Box::new(move || {
            runtime.delete(&id);
            drop(net);
        });
        let log = self.bundle.dir().join("stderr.log");
        let inner = start_agent(ENV, cmd, &log, Some(cleanup), t0)?;
        let ready_ms = inner.ready_after().as_secs_f64() * 1e3;
        Ok(Box::new(NetInstance::new(inner, endpoint, network_ms, ready_ms)))
    }
}

impl Runsc {
    fn profile_metadata(&self) -> serde_json::Value {
        let mut m = super::container::profile_metadata(&self.profile, "runsc");
        if let Some(o) = m.as_object_mut() {
            let applied = match self.profile.profile() {
                Profile::Bare => {
                    "config.json keeps every capability runsc knows (CAP_PERFMON, CAP_BPF and CAP_CHECKPOINT_RESTORE are left out: \
                     runsc 0.0~20221219 refuses them) and masks nothing; the Sentry holds the capabilities, not the host"
                }
                Profile::Default => {
                    "capabilities and noNewPrivileges are the Sentry's (gVisor's kernel), less CAP_NET_RAW, which runsc drops without --net-raw; \
                     runsc 0.0~20221219 ignores the masked paths (a masked /proc/cpuinfo stays readable); /proc and /sys are gVisor's own"
                }
                Profile::Docker => {
                    "as default, and the seccomp profile is loaded into the Sentry (--oci-seccomp) for the application's system calls, \
                     not into the host kernel"
                }
            };
            o.insert("under_runsc".into(), applied.into());
            let (applied, not): (Vec<Layer>, Vec<Layer>) = self.profile.layers().iter().partition(|l| self.applies(**l));
            o.insert("layers".into(), serde_json::json!(applied));
            if !not.is_empty() {
                o.insert("layers_not_applied".into(), serde_json::json!(not));
            }
            if let Some((stage, _)) = &self.overlay {
                let mut record = serde_json::to_value(stage.record()).unwrap_or_default();
                record["mounted_by"] = "isobench, in runsc run's own private mount namespace before exec; config.json's root.path is the merged \
                                        directory, which runsc's gofer (a child of runsc run) serves to the Sentry: the kernel's overlayfs, as runc gets it, \
                                        not runsc's own --overlay"
                    .into();
                o.insert("overlay".into(), record);
            }
        }
        m
    }
}

impl Runsc {
    /// Whether runsc's containers get `layer`: the hardening and the seccomp
    /// filter through config.json, the bridge through the network namespace
    /// named there (netstack takes over its bridged `eth0`). Not the overlay
    /// (the Sentry's gofer serves the bundle's root itself); run.json lists
    /// what is not applied as `layers_not_applied` and the label says
    /// `without overlay`.
    fn applies(&self, layer: Layer) -> bool {
        match layer {
            Layer::Hardening | Layer::Seccomp => true,
            Layer::Bridge => self.bridged(),
            Layer::Overlay => self.overlay.is_some(),
        }
    }

    /// `docker`'s bridge: each start's sandbox takes its network from a
    /// namespace isobench bridged and NAT'd ([`StartNet::Bridged`]); needs
    /// a network namespace in the set.
    fn bridged(&self) -> bool {
        self.profile.has(Layer::Bridge) && self.namespaces.contains(crate::container::Namespace::Net)
    }
}

impl NoopStart for Runsc {
    /// The no-op with `--network=none` (loopback only, as runc's new
    /// namespace), so a start-to-exit has no veth to make.
    fn noop_command(&mut self, noop: Noop) -> Result<PeerCommand, EnvError> {
        let id = container_id(ENV);
        let spec = sandbox_config(&self.bundle, &self.root(), &self.profile, self.namespaces, &noop_args(noop), &id, None)
            .map_err(|e| EnvError::Start { env: ENV, reason: e.to_string() })?;
        self.bundle.write_config(&spec).map_err(|e| EnvError::Start { env: ENV, reason: e.to_string() })?;
        let runtime = self.runtime();
        let cmd = runtime.run(self.bundle.dir(), &id, self.verdict.platform, Network::None, self.profile.seccomp().is_some(), false);
        Ok(PeerCommand { cmd, cleanup: Some(Box::new(move || runtime.delete(&id))) })
    }
}

/// What a row through the gofer says of O_DIRECT: the agent's O_DIRECT
/// opens reach the host as descriptors without it (the sandbox's and the
/// gofer's alike; seen on runsc 20221219, and checked against the live
/// runsc by harness/tests/storage.rs), so the host's page cache serves
/// what the agent asked to bypass it, as over a vm's 9p and virtiofs.
pub const GOFER_DETAIL: &str = "the host's files opened without O_DIRECT: the host's page cache serves";

/// The share of samples at or under the histogram's floor (1 ns per
/// operation: a sample whose clock did not move) above which a measurement
/// in gVisor is refused. A working CLOCK_MONOTONIC moves during any sample,
/// if only by the cost of reading it.
pub const STILL_CLOCK_MAX_SHARE: f64 = 0.05;

/// Below this fraction of the host's wall time for the same request, the
/// sandbox's clock is taken to have stood still (the request also carries
/// its warm-up, the files laid out before the loop and read back after it,
/// and the protocol, so this is judged only where the loop's own host time
/// is unknown: a metric that writes no marks).
pub const SANDBOX_CLOCK_MIN_SHARE: f64 = 0.5;

/// Host wall time under which [`SANDBOX_CLOCK_MIN_SHARE`] is not judged:
/// there the protocol's own round trips could be most of a request.
pub const SANDBOX_CLOCK_MIN_WALL: Duration = Duration::from_millis(200);

/// Below this fraction of the host's time for the same timed loop (between
/// the arrivals of the agent's marks around it), the sandbox's clock is
/// taken to have run slow. The agent's figure leaves out the gaps between
/// samples and one clock read per sample, and each mark's way out is in the
/// host's figure once, so a clock that keeps time gives close to 1: natively
/// and in runc and isobench's container 0.987–0.999 (2026-12-07, the 2-core
/// nested VM, fs, syscall, ipc and spawn metrics). Under runsc (ptrace) on
/// the same host it gave 0.77–0.95 for pipes, forks, fsync and file
/// creation and 0.31–0.41 for O_DIRECT random I/O: a figure kept is within
/// 5 % of the host's.
pub const SANDBOX_LOOP_MIN_SHARE: f64 = 0.95;

/// Host loop time under which [`SANDBOX_LOOP_MIN_SHARE`] is not judged and
/// the loop's host time is not used: the marks' own way out of the sandbox
/// (tens of µs under ptrace, more on a loaded host) could be much of it.
pub const SANDBOX_LOOP_MIN_WALL: Duration = Duration::from_millis(20);

/// Why a measurement taken inside gVisor cannot be trusted, if it cannot.
/// gVisor's vDSO answers CLOCK_MONOTONIC from a time the Sentry updates when
/// it runs; on this platform and host it then does not advance across work
/// that makes no system call (cpu.spin, a vDSO clock_gettime), so such
/// samples read 0 and a loop's elapsed time falls short of the host's.
/// `per_op` is the measurement's per-operation histogram (ns), `elapsed_ns`
/// the agent's time for the loop, `host_wall` the host's for the request,
/// `host_loop` the host's for the loop alone where the agent marked it.
pub fn clock_stood_still(per_op: &hdrhistogram::Histogram<u64>, elapsed_ns: u64, host_wall: Duration, host_loop: Option<Duration>) -> Option<String> {
    let n = per_op.len();
    let still = per_op.count_between(0, 1);
    if n > 0 && still as f64 > STILL_CLOCK_MAX_SHARE * n as f64 {
        return Some(format!(
            "the sandbox's clock did not advance within {still} of {n} samples (gVisor's CLOCK_MONOTONIC moves when the Sentry runs, not across work without system calls), so its timing of this operation would be wrong"
        ));
    }
    let slow = |share: f64, wall: Duration, over: &str| {
        let wall = wall.as_nanos() as f64;
        ((elapsed_ns as f64) < share * wall).then(|| {
            format!(
                "the sandbox's clock advanced {:.1} ms while the host's advanced {:.1} ms {over} ({:.3} of it, under the {share} accepted), so its timing of this operation would be wrong",
                elapsed_ns as f64 / 1e6,
                wall / 1e6,
                elapsed_ns as f64 / wall
            )
        })
    };
    match host_loop {
        Some(l) if l >= SANDBOX_LOOP_MIN_WALL => slow(SANDBOX_LOOP_MIN_SHARE, l, "over the same timed loop"),
        _ if host_wall >= SANDBOX_CLOCK_MIN_WALL => slow(SANDBOX_CLOCK_MIN_SHARE, host_wall, "for the same request"),
        _ => None,
    }
}

/// Kills the runsc processes (`runsc run`, its gofer, its sandbox and the
/// sandbox's stubs, which all carry `--root` of their state dir on their
/// command line) whose state dir is a temp dir of an isobench process that
/// no longer runs. Returns their pids. Called by every start's sweep; with
/// `runsc run` dying with isobench and the sandbox `--attached`, it finds
/// something only when that chain broke.
pub fn sweep() -> Vec<i32> {
    if !leftovers::in_initial_pid_namespace() {
        return Vec::new();
    }
    let tmp = std::env::temp_dir();
    let mut killed = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else { continue };
        let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) else { continue };
        let args: Vec<String> = cmdline.split(|b| *b == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
        if !args.first().and_then(|a| Path::new(a).file_name()).is_some_and(|n| n.to_string_lossy().starts_with("runsc")) {
            continue;
        }
        if args.iter().any(|a| stale_state_dir(a.strip_prefix("--root=").unwrap_or(a), &tmp)) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
            killed.push(pid);
        }
    }
    killed
}

/// Whether `arg` is a path in `tmp`'s `isobench-<pid>-runsc…` temp dir of a dead pid.
fn stale_state_dir(arg: &str, tmp: &Path) -> bool {
    let Ok(rest) = Path::new(arg).strip_prefix(tmp) else { return false };
    let Some(first) = rest.components().next() else { return false };
    let name = first.as_os_str().to_string_lossy();
    match leftovers::owner(&name) {
        Some((pid, what)) => what.starts_with(ENV) && !leftovers::alive(pid),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hist(values: &[u64]) -> hdrhistogram::Histogram<u64> {
        let mut h = hdrhistogram::Histogram::<u64>::new(3).unwrap();
        for v in values {
            h.record(*v).unwrap();
        }
        h
    }

    #[test]
    fn a_clock_that_stands_still_is_told_from_one_that_moves() {
        let moving = hist(&[20_000, 21_000, 30_000, 25_000]);
        assert_eq!(clock_stood_still(&moving, 1_000_000_000, Duration::from_millis(1100), None), None);
        // Short requests are not judged by the wall clock.
        assert_eq!(clock_stood_still(&moving, 10, Duration::from_millis(100), None), None);
        let still = hist(&[1; 19].iter().copied().chain([1746, 3697]).collect::<Vec<_>>());
        let why = clock_stood_still(&still, 1_477_031, Duration::from_millis(40), None).unwrap();
        assert!(why.starts_with("the sandbox's clock did not advance within 19 of 21 samples"), "{why}");
        let why = clock_stood_still(&moving, 57_708_000, Duration::from_millis(900), None).unwrap();
        assert_eq!(
            why,
            "the sandbox's clock advanced 57.7 ms while the host's advanced 900.0 ms for the same request (0.064 of it, under the 0.5 accepted), so its timing of this operation would be wrong"
        );
    }

    #[test]
    fn a_marked_loop_is_judged_by_its_own_host_time_not_the_requests() {
        let moving = hist(&[20_000, 21_000, 30_000, 25_000]);
        // A request mostly spent outside its loop (files laid out and read
        // back) with a clock that kept time over the loop: accepted, where
        // the request's wall alone would refuse it.
        let loop_ = Some(Duration::from_millis(480));
        assert!(clock_stood_still(&moving, 461_000_000, Duration::from_millis(1426), None).is_some());
        assert_eq!(clock_stood_still(&moving, 461_000_000, Duration::from_millis(1426), loop_), None);
        // A clock at a third of the host's over the loop: refused.
        let why = clock_stood_still(&moving, 160_000_000, Duration::from_millis(1426), loop_).unwrap();
        assert_eq!(
            why,
            "the sandbox's clock advanced 160.0 ms while the host's advanced 480.0 ms over the same timed loop (0.333 of it, under the 0.95 accepted), so its timing of this operation would be wrong"
        );
        // A loop too short for its marks to time it falls back to the request.
        assert_eq!(clock_stood_still(&moving, 1_000_000, Duration::from_millis(150), Some(Duration::from_millis(5))), None);
    }

    #[test]
    fn capabilities_runsc_does_not_know_are_left_out() {
        let mut spec = config(Path::new("/tmp/r"), NamespaceSet::DEFAULT, &oci::agent_args(), "h", &CgroupUse::None).unwrap();
        apply_profile(&mut spec, &PreparedProfile::prepare(Profile::Default).unwrap()).unwrap();
        let mut process = spec.process().clone().unwrap();
        let mut caps = process.capabilities().clone().unwrap();
        let mut with_new = caps.bounding().clone().unwrap();
        with_new.insert(oci_spec::runtime::Capability::Bpf);
        with_new.insert(oci_spec::runtime::Capability::Perfmon);
        caps.set_bounding(Some(with_new.clone()));
        caps.set_effective(Some(with_new));
        process.set_capabilities(Some(caps));
        spec.set_process(Some(process));
        drop_unknown_capabilities(&mut spec);
        let v = serde_json::to_value(&spec).unwrap();
        for set in ["bounding", "effective", "permitted"] {
            let names: Vec<&str> = v["process"]["capabilities"][set].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
            assert_eq!(names.len(), 14, "{set}: Docker's 14 stay: {names:?}");
            assert!(!names.iter().any(|n| UNKNOWN_CAPABILITIES.contains(n)), "{set}: {names:?}");
        }
    }

    #[test]
    fn only_a_dead_runs_runsc_state_dir_is_stale() {
        let tmp = Path::new("/tmp");
        assert!(stale_state_dir("/tmp/isobench-4194399-runsc-Ab12/state", tmp));
        assert!(!stale_state_dir(&format!("/tmp/isobench-{}-runsc-Ab12/state", std::process::id()), tmp));
        assert!(!stale_state_dir("/tmp/isobench-4194399-runc-Ab12/state", tmp));
        assert!(!stale_state_dir("/var/isobench-4194399-runsc-Ab12/state", tmp));
        assert!(!stale_state_dir("--platform=ptrace", tmp));
    }
}
