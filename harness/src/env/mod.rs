//! Environments: where a workload runs. Every environment goes through one
//! trait, so a new one (firecracker, gVisor, a peer runtime) is one file and
//! one line in [`EnvKind`].
//!
//! Life cycle: [`prepare`] once (build a rootfs, find the guest image, probe
//! the accelerator) → [`Environment::start`] an [`Instance`] (a running agent)
//! → drive it through [`Instance::agent`] as often as wanted →
//! [`Instance::shutdown`]. Dropping an instance kills what it started; dropping
//! an environment removes what `prepare` created.

use std::path::PathBuf;
use std::time::Duration;

use isobench_workloads::protocol::AgentInfo;

use crate::agent::{AgentClient, AgentError};
use crate::workloads::Workloads;

pub mod bwrap;
pub mod container;
pub mod crun;
mod endpoint;
pub mod native;
pub mod oci;
pub mod peer;
pub mod runc;
pub mod unshare;
pub mod vm;

pub use endpoint::{Endpoint, PathKind};

#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    /// The environment cannot run on this host; `reason` says what to do.
    #[error("{env}: skipped: {reason}")]
    Unavailable { env: &'static str, reason: String },
    #[error("{env}: start failed: {reason}")]
    Start { env: &'static str, reason: String },
    #[error("{env}: {source}")]
    Agent {
        env: &'static str,
        #[source]
        source: AgentError,
    },
    #[error("{env}: {context}: {source}")]
    Io {
        env: &'static str,
        context: String,
        #[source]
        source: std::io::Error,
    },
}

/// The environments isobench knows, in report column order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EnvKind {
    Native,
    Container,
    Vm,
    /// Peer runtimes: optional columns, each skipped with one line when missing.
    Runc,
    Crun,
    Bwrap,
    Unshare,
}

impl EnvKind {
    /// The core environments (`--env all`).
    pub const ALL: [EnvKind; 3] = [EnvKind::Native, EnvKind::Container, EnvKind::Vm];
    /// The peer runtimes (`--env peers`): what users deploy instead of
    /// isobench's launcher.
    pub const PEERS: [EnvKind; 4] = [EnvKind::Runc, EnvKind::Crun, EnvKind::Bwrap, EnvKind::Unshare];

    pub fn as_str(self) -> &'static str {
        match self {
            EnvKind::Native => "native",
            EnvKind::Container => "container",
            EnvKind::Vm => "vm",
            EnvKind::Runc => "runc",
            EnvKind::Crun => "crun",
            EnvKind::Bwrap => "bwrap",
            EnvKind::Unshare => "unshare",
        }
    }

    /// One line for `--help` and `isobench list`.
    pub fn describe(self) -> &'static str {
        match self {
            EnvKind::Native => "the agent as a plain child process on the host (the baseline)",
            EnvKind::Container => "isobench's own launcher: new pid/mnt/uts/ipc/net namespaces, pivot_root into a minimal rootfs",
            EnvKind::Vm => "a QEMU guest (KVM when a probe boot works, else TCG) with the agent as /init",
            EnvKind::Runc => "runc (Docker's, Kubernetes' runtime) running an OCI bundle of the same rootfs and namespaces",
            EnvKind::Crun => "crun (Podman's runtime) running the same OCI bundle; cgroups disabled on hybrid cgroup hosts",
            EnvKind::Bwrap => "bubblewrap (Flatpak's sandbox) with the same rootfs bound as / and the same namespaces",
            EnvKind::Unshare => "util-linux unshare -pfmnuiC --mount-proc around the agent, in the host's filesystem",
        }
    }

    pub fn parse(s: &str) -> Option<EnvKind> {
        EnvKind::ALL.into_iter().chain(EnvKind::PEERS).find(|k| k.as_str() == s)
    }
}

impl std::fmt::Display for EnvKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What `prepare` needs from the caller.
#[derive(Debug, Clone)]
pub struct Options {
    pub workloads: Workloads,
    /// Accelerator choice for the vm: `auto` (probe), `kvm` or `tcg`.
    pub accel: crate::vm::AccelChoice,
    /// Where a vm keeps its console log (the results folder, when there is one).
    pub log_dir: Option<PathBuf>,
    /// vm settings beyond the accelerator (machine type, size, ...).
    pub vm: crate::vm::VmSettings,
    /// container settings (namespaces, limits, ...).
    pub container: crate::container::ContainerSettings,
}

impl Options {
    /// Defaults for everything but the workload binaries.
    pub fn new(workloads: Workloads) -> Options {
        Options { workloads, accel: Default::default(), log_dir: None, vm: Default::default(), container: Default::default() }
    }
}

/// An environment, prepared and ready to start instances.
pub trait Environment: Send {
    fn kind(&self) -> EnvKind;

    /// Column label for reports, with any caveat the reader must see
    /// (e.g. `vm (emulated (TCG))`).
    fn label(&self) -> String {
        self.kind().as_str().to_string()
    }

    /// Facts for run.json (`environments.<name>`): accelerator and why, rootfs,
    /// namespaces, guest image, ...
    fn metadata(&self) -> serde_json::Value {
        serde_json::Value::Null
    }

    /// Starts one instance and returns once its agent said `Ready`.
    fn start(&mut self) -> Result<Box<dyn Instance>, EnvError>;
}

/// One running agent inside an environment.
pub trait Instance: Send {
    fn agent(&mut self) -> &mut AgentClient;

    /// What the agent reported when it became ready.
    fn info(&self) -> &AgentInfo;

    /// Host-measured time from "start the environment" to the agent's `Ready`.
    fn ready_after(&self) -> Duration;

    /// Host-measured start phases that have happened so far, in order:
    /// (name, milliseconds from "start the environment"). The vm gives
    /// `first_console_output` and `agent_ready` while running; environments
    /// without phases give none.
    fn phases(&self) -> Vec<(String, f64)> {
        Vec::new()
    }

    /// What the instance has used so far, as its cgroup accounts it
    /// (`cpu_ns`, `memory_peak_bytes`, `oom_kills`, `pids_limit_hits`);
    /// `Null` where the environment has no such accounting.
    fn resource_usage(&self) -> serde_json::Value {
        serde_json::Value::Null
    }

    /// How the host side reaches this instance's agent for the
    /// `*.boundary` metrics (the `boundary` module); set up on first call
    /// (a container's veth), the same afterwards. `Unavailable` with the
    /// reason where there is no boundary to measure (peers, rootless veth).
    fn endpoint(&mut self) -> Result<Endpoint, EnvError> {
        Err(EnvError::Unavailable {
            env: "peer",
            reason: "a peer runtime's boundary is not measured: its networking is the deployer's (CNI, slirp4netns, ...)".into(),
        })
    }

    /// Asks the agent to exit (the guest to power off) and waits until the
    /// process (QEMU, container init) is gone. Returns the host-measured time
    /// from the shutdown request to the process having exited.
    fn shutdown(self: Box<Self>) -> Result<Duration, EnvError>;
}

/// Prepares one environment, or says in one line why it cannot run here.
pub fn prepare(kind: EnvKind, opts: &Options) -> Result<Box<dyn Environment>, EnvError> {
    match kind {
        EnvKind::Native => Ok(Box::new(native::Native::prepare(opts)?)),
        EnvKind::Container => Ok(Box::new(container::Container::prepare(opts)?)),
        EnvKind::Vm => Ok(Box::new(vm::Vm::prepare(opts)?)),
        EnvKind::Runc => Ok(Box::new(runc::prepare(opts)?)),
        EnvKind::Crun => Ok(Box::new(crun::prepare(opts)?)),
        EnvKind::Bwrap => Ok(Box::new(bwrap::prepare(opts)?)),
        EnvKind::Unshare => Ok(Box::new(unshare::prepare(opts)?)),
    }
}
