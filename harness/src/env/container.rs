//! The container environment: the agent as PID 1 of isobench's own container
//! (new pid, mnt, uts, ipc and net namespaces, pivot_root into the minimal
//! rootfs), driven over stdin/stdout pipes exactly like the native agent, so
//! the difference between the two columns is what the namespaces cost.
//!
//! The rootfs is the cached minimal one (built once per content, shared,
//! mounted read-only with a tmpfs on /tmp), or with `--rootfs debian` the
//! cached distribution rootfs; the launch spec (mount plan, /dev template,
//! cgroup layout) is made once in `prepare`, so a start is the launch
//! itself. Each instance gets a cgroup of its own when the host has cgroups
//! (with the `--cpus`/`--memory`/`--pids` limits, if any), killed and
//! removed with it.
//!
//! Each start's phases ([`ContainerStartRecord`]: clone, namespaces ready,
//! mounts done, cgroup placed, exec, agent ready, shutdown, reaped, cleaned
//! up) are kept for run.json's `metadata.starts`, as the vm keeps its boots.
//!
//! Every instance runs under the settings' security profile (`--profile`,
//! `default` unless told; see [`crate::container::profile`]), prepared once
//! here with the launch spec (the seccomp filter of `docker` is compiled in
//! `prepare`, not at each start); the column label names it
//! (`container (docker)`) and run.json records what it drops
//! ([`profile_metadata`]).

use std::fs::File;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use isobench_workloads::protocol::AgentInfo;

use super::{Endpoint, EnvError, EnvKind, Environment, Instance, Options, PathKind};
use crate::agent::AgentClient;
use crate::container::net::{BridgedVeth, Link, RunNetns, CONTAINER_PORT, PUBLISHED_PORT};
use crate::container::process::{monotonic_ns, LaunchTimes};
use crate::container::profile::{Layer, PreparedProfile, MASKED_PATHS, NOT_A_BOUNDARY, READONLY_PATHS};
use crate::container::seccomp::PROFILE_PACKAGE;
use crate::container::{self, Cgroup, CgroupMode, ContainerProcess, LaunchSpec, Limits, Namespace, NamespaceSet, PreparedRootfs, Stdio, Usage};
use crate::results::run::ContainerStartRecord;
use crate::storage::{ContainerStorage, StorageKind, StoragePath};
use crate::vm::qemu::Forwards;

const ENV: &str = "container";

/// Start records kept for `metadata()["starts"]` (a `cargo bench` of
/// env.start makes hundreds); older ones are dropped.
pub const MAX_START_RECORDS: usize = 2_000;

type Starts = Arc<Mutex<Vec<ContainerStartRecord>>>;

/// Where the volume of the fs.* metrics is bound: a directory every
/// minimal rootfs has (`/mnt`).
const VOLUME_TARGET: &str = "mnt";
/// The fs.* metrics' directory on the container's writable root: /tmp, a
/// tmpfs over the read-only image, or the overlay's upper layer under
/// `--profile docker` (the agent reports which file system it found).
const ROOT_DATA_DIR: &str = "/tmp";

pub struct Container {
    namespaces: NamespaceSet,
    /// `Some(limits)`: every instance in a cgroup of its own with them.
    cgroup: Option<Limits>,
    cgroup_mode: CgroupMode,
    rootfs: PreparedRootfs,
    /// Canonical path of `rootfs`, what the mount plan binds.
    root: PathBuf,
    /// The security profile, prepared once.
    profile: PreparedProfile,
    /// The agent's launch, made once: every start spawns it.
    spec: LaunchSpec,
    starts: Starts,
    count: u32,
    /// The fs.* metrics' storage path, when a data directory was given.
    storage: Option<StoragePath>,
}

impl Container {
    /// Builds the minimal rootfs in a temp dir; `Unavailable` when not root.
    pub fn prepare(opts: &Options) -> Result<Self, EnvError> {
        let asked = opts.container.namespaces.unwrap_or(NamespaceSet::DEFAULT);
        container::effective_namespaces(asked)
            .check_proc(!asked.contains(Namespace::User))
            .map_err(|e| EnvError::Start { env: ENV, reason: e.to_string() })?;
        Self::with_namespaces(opts, asked)
    }

    /// Like [`prepare`](Self::prepare), with another namespace set.
    pub fn with_namespaces(opts: &Options, namespaces: NamespaceSet) -> Result<Self, EnvError> {
        let namespaces = container::effective_namespaces(namespaces);
        let settings = &opts.container;
        let cgroup = match settings.wants_cgroup().map_err(|e| EnvError::Start { env: ENV, reason: e.to_string() })? {
            true => {
                // One trial group now, so a limit the host cannot express is
                // reported before any measurement, not at the first start.
                Cgroup::create(&settings.limits).and_then(Cgroup::destroy).map_err(|e| EnvError::Unavailable { env: ENV, reason: e.to_string() })?;
                Some(settings.limits)
            }
            false => None,
        };
        let rootfs = PreparedRootfs::prepare(&settings.rootfs, &opts.workloads, namespaces.contains(Namespace::Mount))
            .map_err(|e| EnvError::Start { env: ENV, reason: e.to_string() })?;
        let root = rootfs.path().to_path_buf();
        let profile = settings.prepare_profile().map_err(|e| EnvError::Unavailable { env: ENV, reason: e.to_string() })?;
        let mut spec =
            launch_spec(namespaces, &root, cgroup, rootfs.read_only(), &profile).map_err(|e| EnvError::Start { env: ENV, reason: e.to_string() })?;
        let storage = match (opts.command_data.as_ref().or(opts.data_dir.as_ref()), opts.container_storage) {
            (None, _) => None,
            (Some(dir), _) if opts.command_data.is_some() => {
                spec = spec.with_volume(dir, VOLUME_TARGET).map_err(|e| EnvError::Unavailable { env: ENV, reason: e.to_string() })?;
                Some(StoragePath {
                    kind: StorageKind::Volume,
                    agent_dir: format!("/{VOLUME_TARGET}"),
                    host_dir: Some(dir.clone()),
                    detail: None,
                    fs: None,
                })
            }
            (Some(data), ContainerStorage::Volume) => {
                let host = data.join(ENV);
                std::fs::create_dir_all(&host).map_err(|e| EnvError::Start { env: ENV, reason: format!("data directory: {e}") })?;
                spec = spec.with_volume(&host, VOLUME_TARGET).map_err(|e| EnvError::Unavailable { env: ENV, reason: e.to_string() })?;
                Some(StoragePath { kind: StorageKind::Volume, agent_dir: format!("/{VOLUME_TARGET}"), host_dir: Some(host), detail: None, fs: None })
            }
            (Some(_), ContainerStorage::Root) => {
                Some(StoragePath { kind: StorageKind::ContainerRoot, agent_dir: ROOT_DATA_DIR.into(), host_dir: None, detail: None, fs: None })
            }
        };
        Ok(Container {
            namespaces,
            cgroup,
            cgroup_mode: container::cgroup::cgroup_mode(),
            rootfs,
            root,
            profile,
            spec,
            starts: Starts::default(),
            count: 0,
            storage,
        })
    }

    /// Every start's phases so far, oldest first (at most [`MAX_START_RECORDS`]).
    pub fn starts(&self) -> Vec<ContainerStartRecord> {
        self.starts.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn rootfs(&self) -> &std::path::Path {
        &self.root
    }

    pub fn namespaces(&self) -> NamespaceSet {
        self.namespaces
    }

    /// The limits of each instance's cgroup; `None` when instances get none.
    pub fn cgroup_limits(&self) -> Option<&Limits> {
        self.cgroup.as_ref()
    }
}

impl Environment for Container {
    fn kind(&self) -> EnvKind {
        EnvKind::Container
    }

    fn storage(&self) -> Result<StoragePath, String> {
        self.storage.clone().ok_or_else(|| "no data directory was given".into())
    }

    /// `container (default)`, `container (docker)`, `container (bare: not a
    /// security boundary)`.
    fn label(&self) -> String {
        self.profile.column_label(ENV)
    }

    fn metadata(&self) -> serde_json::Value {
        let mut profile = profile_metadata(&self.profile, "isobench");
        if let Some(stage) = self.spec.overlay() {
            profile["overlay"] = serde_json::to_value(stage.record()).unwrap_or_default();
        }
        serde_json::json!({
            "profile": profile,
            "namespaces": self.namespaces.names(),
            "rootfs": self.root,
            "rootfs_image": self.rootfs.label(),
            "rootfs_kind": self.rootfs.description(),
            "rootfs_read_only": self.rootfs.read_only(),
            "busybox": self.rootfs.busybox(),
            "launcher": "isobench (clone + pivot_root)",
            "pid1": "agent",
            "hostname": self.spec.hostname(),
            "starts": self.starts(),
            "rootless": container::rootless(),
            "cgroup": self.cgroup.map(|limits| serde_json::json!({
                "mode": self.cgroup_mode,
                "limits": limits,
                "cpu_period_us": container::cgroup::CPU_PERIOD_US,
            })),
        })
    }

    /// Starts the agent (`/isobench-agent`, no arguments) as the container's
    /// PID 1 and returns once it said `Ready`.
    fn start(&mut self) -> Result<Box<dyn Instance>, EnvError> {
        Ok(Box::new(self.start_instance()?))
    }
}

impl Container {
    /// [`Environment::start`] with the concrete type, for callers that want
    /// the instance's cgroup usage ([`ContainerInstance::cgroup_usage`]).
    pub fn start_instance(&mut self) -> Result<ContainerInstance, EnvError> {
        let t0_ns = monotonic_ns();
        let io = |context: &str| {
            let context = context.to_string();
            move |e: nix::errno::Errno| EnvError::Io { env: ENV, context, source: e.into() }
        };
        let (stdin_r, stdin_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(io("pipe for the agent's stdin"))?;
        let (stdout_r, stdout_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(io("pipe for the agent's stdout"))?;
        let process = container::spawn(&self.spec, Stdio { stdin: Some(stdin_r.as_fd()), stdout: Some(stdout_w.as_fd()) })
            .map_err(|e| EnvError::Start { env: ENV, reason: e.to_string() })?;
        let net = match (self.namespaces.contains(Namespace::Net), container::rootless()) {
            (false, _) => NetState::Host,
            (true, true) => NetState::Unavailable("veth needs root (CAP_NET_ADMIN on the host); the container runs rootless".into()),
            (true, false) => NetState::Pending,
        };
        // The container holds its own copies; ours would keep the pipes open
        // after the agent exits.
        drop(stdin_r);
        drop(stdout_w);
        let mut agent = AgentClient::new(Box::new(File::from(stdout_r)), Box::new(File::from(stdin_w)));
        let info = agent.wait_ready().map_err(|e| EnvError::Agent { env: ENV, source: e })?;
        // On the monotonic clock from `t0_ns`, like every step of the
        // record: an Instant taken apart from `t0_ns` could put the agent's
        // ready after the shutdown stamped right behind it.
        let ready_after = Duration::from_nanos(monotonic_ns().saturating_sub(t0_ns));
        self.count += 1;
        let record = start_record(self.count, t0_ns, process.times(), ready_after);
        {
            let mut starts = self.starts.lock().unwrap_or_else(|e| e.into_inner());
            if starts.len() >= MAX_START_RECORDS {
                starts.remove(0);
            }
            starts.push(record.clone());
        }
        let bridge = self.profile.has(Layer::Bridge);
        Ok(ContainerInstance { process, agent, info, ready_after, net, bridge, t0_ns, record, starts: Arc::clone(&self.starts) })
    }
}

/// The agent's launch (`/isobench-agent`, no arguments) as PID 1 of a
/// container with `namespaces` in `root`: in a cgroup of its own when
/// `cgroup` has limits (possibly none), `root` bound read-only when shared.
fn launch_spec(
    namespaces: NamespaceSet,
    root: &std::path::Path,
    cgroup: Option<Limits>,
    read_only: bool,
    profile: &PreparedProfile,
) -> Result<LaunchSpec, container::ContainerError> {
    let agent_path = format!("/{}", crate::workloads::AGENT_NAME);
    let mut spec = LaunchSpec::new(namespaces, root, &[agent_path.into()], Some(&container::default_hostname()))?.with_profile(profile)?;
    if let Some(limits) = cgroup {
        spec = spec.with_cgroup(limits);
    }
    if read_only {
        spec = spec.with_read_only_root(root)?;
    }
    Ok(spec)
}

/// ms from `t0_ns` to `ns` (both CLOCK_MONOTONIC).
fn since(t0_ns: u64, ns: u64) -> f64 {
    ns.saturating_sub(t0_ns) as f64 / 1e6
}

/// Start `n`'s record from the launch's times, up to the agent's ready.
fn start_record(n: u32, t0_ns: u64, t: &LaunchTimes, ready_after: Duration) -> ContainerStartRecord {
    let at = |ns: Option<u64>| ns.map(|ns| since(t0_ns, ns));
    ContainerStartRecord {
        start: n,
        clone_ms: since(t0_ns, t.clone_ns),
        // Whichever saw it first: the child running, or the parent's clone
        // returning.
        namespaces_ready_ms: since(t0_ns, t.child_started_ns.map_or(t.cloned_ns, |c| c.min(t.cloned_ns))),
        mounts_done_ms: at(t.mounts_done_ns),
        cgroup_placed_ms: at(t.cgroup_placed_ns),
        exec_ms: at(t.exec_ns),
        agent_ready_ms: ready_after.as_secs_f64() * 1e3,
        shutdown_requested_ms: None,
        reaped_ms: None,
        cleaned_up_ms: None,
    }
}

/// What run.json records of a profile (`metadata.profile`, read back as
/// [`ProfileRecord`](crate::results::run::ProfileRecord)): its name, its
/// layers, whether it is a security boundary, and what it drops;
/// `compiled_by` says who turns the seccomp profile into BPF (isobench, or
/// the OCI runtime from config.json).
pub fn profile_metadata(p: &PreparedProfile, compiled_by: &str) -> serde_json::Value {
    let profile = p.profile();
    let hardened = p.has(Layer::Hardening);
    serde_json::json!({
        "name": profile,
        "label": p.label(),
        "layers": p.layers(),
        "security_boundary": profile.is_security_boundary(),
        "note": (!profile.is_security_boundary()).then_some(NOT_A_BOUNDARY),
        "capabilities": profile.capabilities(),
        "no_new_privs": hardened,
        "masked_paths": if hardened { &MASKED_PATHS[..] } else { &[] },
        "readonly_paths": if hardened { &READONLY_PATHS[..] } else { &[] },
        "seccomp": p.seccomp().map(|s| serde_json::json!({
            "profile": s.path(),
            "package": PROFILE_PACKAGE,
            "default_action": s.oci().default_action().to_string(),
            "default_errno": s.oci().default_errno_ret(),
            "architectures": s.oci().architectures(),
            "rules": s.oci().syscalls().as_ref().map_or(0, Vec::len),
            "calls_named": s.rule_names(),
            "bpf_instructions": (compiled_by == "isobench").then(|| p.filter().map(|f| f.len())).flatten(),
            "compiled_by": compiled_by,
        })),
    })
}

/// The agent running as a container's PID 1. Dropping it kills the init
/// (SIGKILL, taking the pid namespace with it) and reaps it.
pub struct ContainerInstance {
    // Field order: the agent's pipes close before the process is killed.
    agent: AgentClient,
    process: ContainerProcess,
    info: AgentInfo,
    ready_after: Duration,
    net: NetState,
    /// The profile's bridge layer: the veth goes on a bridge, reached
    /// through a DNAT'd published port.
    bridge: bool,
    /// When the start was asked for (CLOCK_MONOTONIC ns).
    t0_ns: u64,
    /// This start's phases; copied into the environment's list as they happen.
    record: ContainerStartRecord,
    starts: Starts,
}

/// The instance's end of the boundary network.
enum NetState {
    /// No network namespace: the container shares the host's network.
    Host,
    /// Not set up yet (on the first `*.boundary` metric, so `env.start`
    /// times what a container start costs without a network device).
    Pending,
    /// `eth0` in the container, the veth's other end in the run's network
    /// namespace (deleted on drop; the kernel would also delete it with the
    /// container's namespace).
    Veth {
        endpoint: Endpoint,
        _link: Link,
    },
    /// The same veth on a bridge of the run's namespace with the NAT table
    /// publishing the container's port (removed on drop).
    Bridged {
        endpoint: Endpoint,
        _bridged: BridgedVeth,
    },
    Unavailable(String),
}

impl ContainerInstance {
    /// The host pid of the container's init (the agent).
    pub fn host_pid(&self) -> i32 {
        self.process.pid().as_raw()
    }

    /// What the instance's cgroup has used so far (CPU time, peak memory,
    /// OOM kills, refused forks); `None` without a cgroup.
    pub fn cgroup_usage(&self) -> Option<Usage> {
        self.process.cgroup().map(Cgroup::usage)
    }

    /// The instance's cgroup directories (one per v1 hierarchy, one in v2).
    pub fn cgroup_paths(&self) -> Vec<PathBuf> {
        self.process.cgroup().map(Cgroup::paths).unwrap_or_default()
    }

    /// This start's phases known so far.
    pub fn record(&self) -> &ContainerStartRecord {
        &self.record
    }

    /// Writes this start's record back into the environment's list.
    fn publish(&self) {
        let mut starts = self.starts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = starts.iter_mut().rev().find(|r| r.start == self.record.start) {
            *r = self.record.clone();
        }
    }

    /// Shuts the agent down and waits for the whole container to be gone,
    /// recording when; returns the record of the finished start.
    pub fn stop(mut self) -> Result<(Duration, ContainerStartRecord), EnvError> {
        let t0 = Instant::now();
        self.record.shutdown_requested_ms = Some(since(self.t0_ns, monotonic_ns()));
        self.agent.shutdown().map_err(|e| EnvError::Agent { env: ENV, source: e })?;
        let status = self.process.wait().map_err(|e| EnvError::Start { env: ENV, reason: e.to_string() })?;
        let took = t0.elapsed();
        let times = *self.process.times();
        self.record.reaped_ms = times.reaped_ns.map(|ns| since(self.t0_ns, ns));
        self.record.cleaned_up_ms = times.cleaned_up_ns.map(|ns| since(self.t0_ns, ns));
        self.publish();
        if status != 0 {
            return Err(EnvError::Start { env: ENV, reason: format!("agent exited with status {status}") });
        }
        Ok((took, self.record.clone()))
    }
}

impl ContainerInstance {
    fn add_veth(&self) -> Result<NetState, String> {
        let netns = RunNetns::shared().map_err(|e| e.to_string())?;
        let subnet = netns.try_allocate_subnet().map_err(|e| e.to_string())?;
        let ns_path = format!("/proc/{}/ns/net", self.host_pid());
        let peer_ns = File::open(&ns_path).map_err(|e| format!("open {ns_path}: {e}"))?;
        let host_if = format!("ibv{}", self.host_pid());
        if self.bridge {
            let bridge = format!("ibr{}", self.host_pid());
            let bridged = netns.add_bridged_veth(&bridge, &host_if, peer_ns.as_fd(), CONTAINER_IF, &subnet).map_err(|e| e.to_string())?;
            let endpoint = Endpoint {
                path: PathKind::VethBridgeNat,
                netns: Some(netns),
                bind: subnet.peer.into(),
                connect: bridged.published.into(),
                forwards: Some(Forwards { tcp: (CONTAINER_PORT, PUBLISHED_PORT), udp: (CONTAINER_PORT, PUBLISHED_PORT) }),
                host_scheduler: true,
            };
            return Ok(NetState::Bridged { endpoint, _bridged: bridged });
        }
        let link = netns.add_veth(&host_if, peer_ns.as_fd(), CONTAINER_IF, &subnet, None).map_err(|e| e.to_string())?;
        let endpoint = Endpoint {
            path: PathKind::Veth,
            netns: Some(netns),
            bind: subnet.peer.into(),
            connect: subnet.peer.into(),
            forwards: None,
            host_scheduler: true,
        };
        Ok(NetState::Veth { endpoint, _link: link })
    }
}

/// The container's end of its veth pair.
pub const CONTAINER_IF: &str = "eth0";

impl Instance for ContainerInstance {
    fn agent(&mut self) -> &mut AgentClient {
        &mut self.agent
    }

    fn info(&self) -> &AgentInfo {
        &self.info
    }

    fn ready_after(&self) -> Duration {
        self.ready_after
    }

    fn phases(&self) -> Vec<(String, f64)> {
        self.record.phases()
    }

    /// A veth pair on first call: `eth0` inside the container with the
    /// .2 address of a /24 of the run's private network namespace, where the
    /// other end has .1 (the networking rule: nothing of isobench's on the
    /// host's network); created through netlink directly in the container's
    /// namespace.
    fn endpoint(&mut self) -> Result<Endpoint, EnvError> {
        if let NetState::Pending = self.net {
            self.net = match self.add_veth() {
                Ok(state) => state,
                Err(reason) => NetState::Unavailable(reason),
            };
        }
        match &self.net {
            NetState::Host => Ok(Endpoint::loopback(PathKind::HostNetwork)),
            NetState::Veth { endpoint, .. } | NetState::Bridged { endpoint, .. } => Ok(endpoint.clone()),
            NetState::Unavailable(reason) => Err(EnvError::Unavailable { env: ENV, reason: reason.clone() }),
            NetState::Pending => unreachable!("resolved above"),
        }
    }

    fn host_pid(&self) -> Option<u32> {
        u32::try_from(ContainerInstance::host_pid(self)).ok()
    }

    fn resource_usage(&self) -> serde_json::Value {
        self.cgroup_usage().map_or(serde_json::Value::Null, |u| serde_json::to_value(u).expect("usage serializes"))
    }

    fn shutdown(self: Box<Self>) -> Result<Duration, EnvError> {
        self.stop().map(|(took, _)| took)
    }
}
