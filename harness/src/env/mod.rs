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
use std::str::FromStr;
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
pub mod runsc;
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
    /// A name that is no environment (`--env`, `ISOBENCH_ENVS`).
    #[error("unknown environment {0:?}; choose from {choices} (see `isobench list`)", choices = EnvSelection::choices())]
    Unknown(String),
    /// An environment list with no name in it.
    #[error("no environment given; choose from {choices}", choices = EnvSelection::choices())]
    NoneGiven,
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
    /// gVisor: a user-space kernel between the container and the host.
    Runsc,
}

impl EnvKind {
    /// The core environments (`--env all`).
    pub const ALL: [EnvKind; 3] = [EnvKind::Native, EnvKind::Container, EnvKind::Vm];
    /// The peer runtimes (`--env peers`): what users deploy instead of
    /// isobench's launcher.
    pub const PEERS: [EnvKind; 5] = [EnvKind::Runc, EnvKind::Crun, EnvKind::Bwrap, EnvKind::Unshare, EnvKind::Runsc];

    pub fn as_str(self) -> &'static str {
        match self {
            EnvKind::Native => "native",
            EnvKind::Container => "container",
            EnvKind::Vm => "vm",
            EnvKind::Runc => "runc",
            EnvKind::Crun => "crun",
            EnvKind::Bwrap => "bwrap",
            EnvKind::Unshare => "unshare",
            EnvKind::Runsc => "runsc",
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
            EnvKind::Runsc => {
                "gVisor's runsc running the same OCI bundle: a user-space kernel (the Sentry) serves the system calls; platform by --gvisor-platform; a loop over which gVisor's clock runs slow is timed by the host (a mean, no percentiles)"
            }
        }
    }

    /// Every environment: the core ones, then the peers.
    pub fn every() -> impl Iterator<Item = EnvKind> {
        EnvKind::ALL.into_iter().chain(EnvKind::PEERS)
    }

    pub fn parse(s: &str) -> Option<EnvKind> {
        EnvKind::every().find(|k| k.as_str() == s)
    }
}

impl std::fmt::Display for EnvKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EnvKind {
    type Err = EnvError;

    /// Parses one environment's name. Errors: one line with the choices.
    fn from_str(s: &str) -> Result<EnvKind, EnvError> {
        EnvKind::parse(s.trim()).ok_or_else(|| EnvError::Unknown(s.trim().to_string()))
    }
}

/// Environments as `isobench run --env` and `ISOBENCH_ENVS` take them: a
/// comma-separated list of names, `all` (the core environments,
/// [`EnvKind::ALL`]) and `peers` (the peer runtimes, [`EnvKind::PEERS`]),
/// kept in the order given, each once. The default is `all`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvSelection(Vec<EnvKind>);

impl EnvSelection {
    /// The word for [`EnvKind::ALL`].
    pub const ALL_WORD: &'static str = "all";
    /// The word for [`EnvKind::PEERS`].
    pub const PEERS_WORD: &'static str = "peers";

    /// Every word a list takes, with what it stands for: each environment
    /// ([`EnvKind::describe`]), then `all` and `peers`.
    pub fn words() -> impl Iterator<Item = (&'static str, String)> {
        let group = |kinds: &[EnvKind]| kinds.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ");
        EnvKind::every().map(|k| (k.as_str(), k.describe().to_string())).chain([
            (EnvSelection::ALL_WORD, format!("the core environments: {}", group(&EnvKind::ALL))),
            (EnvSelection::PEERS_WORD, format!("the peer runtimes: {}", group(&EnvKind::PEERS))),
        ])
    }

    /// The words for messages: `native, container, ..., all or peers`.
    fn choices() -> String {
        let words: Vec<&str> = EnvSelection::words().map(|(w, _)| w).collect();
        match words.split_last() {
            Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
            None => String::new(),
        }
    }

    /// The environments, in the order chosen.
    pub fn kinds(&self) -> &[EnvKind] {
        &self.0
    }

    /// The environments, in the order chosen.
    pub fn into_kinds(self) -> Vec<EnvKind> {
        self.0
    }

    pub fn contains(&self, kind: EnvKind) -> bool {
        self.0.contains(&kind)
    }
}

impl Default for EnvSelection {
    fn default() -> EnvSelection {
        EnvSelection(EnvKind::ALL.to_vec())
    }
}

impl FromStr for EnvSelection {
    type Err = EnvError;

    /// Errors: one line naming the unknown word and the choices; a list
    /// with no word at all is [`EnvError::NoneGiven`].
    fn from_str(s: &str) -> Result<EnvSelection, EnvError> {
        let mut out = Vec::new();
        for word in s.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            let kinds = match word {
                EnvSelection::ALL_WORD => EnvKind::ALL.to_vec(),
                EnvSelection::PEERS_WORD => EnvKind::PEERS.to_vec(),
                name => vec![name.parse()?],
            };
            for k in kinds {
                if !out.contains(&k) {
                    out.push(k);
                }
            }
        }
        if out.is_empty() {
            return Err(EnvError::NoneGiven);
        }
        Ok(EnvSelection(out))
    }
}

impl std::fmt::Display for EnvSelection {
    /// `all` for the default, else the names, comma-separated: what parses
    /// back to the same selection.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if *self == EnvSelection::default() {
            return f.write_str(EnvSelection::ALL_WORD);
        }
        f.write_str(&self.0.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(","))
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
    /// `--gvisor-platform` for runsc: `auto` (probe) or one platform.
    pub gvisor_platform: runsc::platform::PlatformChoice,
    /// The run's data directory on the host (`crate::storage::RunData`),
    /// set by the runner when fs.* metrics are asked: each environment
    /// that has a storage path makes its subdirectory there.
    pub data_dir: Option<PathBuf>,
    /// `isobench run --command --data-dir DIR`: the user's directory
    /// itself (not a subdirectory per environment), bound where the fs.*
    /// metrics' volume goes: /mnt in the containers and peers, shared over
    /// virtio-9p on the vm's `guest::DATA_DIR`, the host directory for
    /// native and unshare. Set instead of `data_dir`; it overrides
    /// `--container-storage` and `--vm-storage`.
    pub command_data: Option<PathBuf>,
    /// `--container-storage`: the container's volume or its writable root.
    pub container_storage: crate::storage::ContainerStorage,
    /// `--vm-storage`: the vm's virtio-blk data disk or its 9p share.
    pub vm_storage: crate::storage::VmStorage,
}

impl Options {
    /// Defaults for everything but the workload binaries.
    pub fn new(workloads: Workloads) -> Options {
        Options {
            workloads,
            accel: Default::default(),
            log_dir: None,
            vm: Default::default(),
            container: Default::default(),
            gvisor_platform: Default::default(),
            data_dir: None,
            command_data: None,
            container_storage: Default::default(),
            vm_storage: Default::default(),
        }
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

    /// Where the fs.* metrics make their files (`Options::data_dir` given),
    /// or why this environment has no storage path yet.
    fn storage(&self) -> Result<crate::storage::StoragePath, String> {
        Err(format!("{}: no storage path for the fs metrics", self.kind()))
    }

    /// Where the user's command finds its files, or why it cannot be run
    /// here in the image (one line, shown as "not measured").
    fn command_root(&self) -> Result<CommandRoot, String> {
        Ok(CommandRoot::Image)
    }
}

/// Where the user's command (`isobench run --command`) finds its files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandRoot {
    /// The agent's own root is the image (`--rootfs`): the command is
    /// exec'd there by path.
    Image,
    /// The agent runs in the host's file system (native, unshare): the
    /// command's child chroot(2)s into the image's directory on the host
    /// first, so it runs the image's files like the others (as root; else
    /// the host's files, and its row says so).
    Host,
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

    /// The host process whose tree holds the instance (the container's init,
    /// the peer's command, QEMU), for what is measured from the host
    /// (`isobench density`: memory and CPU time of the tree); `None` where
    /// the environment does not say.
    fn host_pid(&self) -> Option<u32> {
        None
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
        EnvKind::Runsc => Ok(Box::new(runsc::prepare(opts)?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_selection_takes_names_all_and_peers_in_order_each_once() {
        let kinds = |s: &str| s.parse::<EnvSelection>().unwrap().into_kinds();
        assert_eq!(kinds("vm, native,vm"), [EnvKind::Vm, EnvKind::Native]);
        assert_eq!(kinds("all"), EnvKind::ALL);
        assert_eq!(kinds("container,peers"), [EnvKind::Container, EnvKind::Runc, EnvKind::Crun, EnvKind::Bwrap, EnvKind::Unshare, EnvKind::Runsc]);
        assert_eq!("all".parse::<EnvSelection>().unwrap(), EnvSelection::default());
        assert_eq!(EnvSelection::default().to_string(), "all");
        let some: EnvSelection = "peers,native".parse().unwrap();
        assert_eq!(some.to_string(), "runc,crun,bwrap,unshare,runsc,native");
        assert_eq!(some.to_string().parse::<EnvSelection>().unwrap(), some);
        for k in EnvKind::every() {
            assert_eq!(k.as_str().parse::<EnvKind>().unwrap(), k);
        }
    }

    #[test]
    fn an_unknown_environment_is_one_line_with_the_choices() {
        let e = "native,kvmx".parse::<EnvSelection>().unwrap_err().to_string();
        assert_eq!(
            e,
            "unknown environment \"kvmx\"; choose from native, container, vm, runc, crun, bwrap, unshare, runsc, all or peers (see `isobench list`)"
        );
        let e = " ,".parse::<EnvSelection>().unwrap_err().to_string();
        assert_eq!(e, "no environment given; choose from native, container, vm, runc, crun, bwrap, unshare, runsc, all or peers");
        let words: Vec<&str> = EnvSelection::words().map(|(w, _)| w).collect();
        assert_eq!(words.len(), EnvKind::ALL.len() + EnvKind::PEERS.len() + 2);
    }
}
