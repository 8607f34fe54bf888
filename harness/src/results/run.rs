//! run.json as a type: [`RunRecord`] (host facts, parameters, one
//! [`EnvRecord`] per environment by name, what a merge was made from).
//!
//! A run writes it step by step through [`RunDir::update_run`]
//! (environment started, measurement pinned, environment skipped, ...), each
//! step a read-modify-write of the whole file, atomically; the report reads
//! it back as this type. Every field is optional or has a default, so a file
//! written before a field existed still reads (schema 1 throughout); keys
//! this type does not know are kept as they were (`other`), and so are the
//! facts each environment records about itself beyond the few the report
//! reads ([`EnvMetadata::other`]).
//!
//! [`RunDir::update_run`]: super::RunDir::update_run

use std::collections::BTreeMap;
use std::path::PathBuf;

use isobench_workloads::protocol::{AgentInfo, PinMode};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::collect::host::HostInfo;

use super::ResultsError;

/// Everything run.json holds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RunRecord {
    /// [`super::SCHEMA_VERSION`] of the writer.
    #[serde(default)]
    pub schema: u32,
    /// The harness's crate version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isobench_version: Option<String>,
    /// When the first writer of this folder started (RFC 3339, seconds, UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_utc: Option<String>,
    /// Host facts, collected by the first writer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<HostInfo>,
    /// How the run was asked for; each writer (bench binary, command) adds
    /// its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Parameters>,
    /// Environment name (`native`, `vm`, ...) → what happened to it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub environments: BTreeMap<String, EnvRecord>,
    /// A signal (Ctrl-C's SIGINT, SIGTERM) stopped the run: only what
    /// finished before is here.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub interrupted: bool,
    /// The signal that stopped the run ("SIGTERM"); absent from runs made
    /// before the field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interrupted_by: Option<String>,
    /// `isobench merge`: the folders this one was made from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_from: Option<Vec<MergedRun>>,
    /// Every process that measured into this folder, in order: one for
    /// `isobench run`, one per bench binary for `cargo bench`, one more for
    /// each `isobench run --append`. Each measurement names its own
    /// (`run_id` in measurements.json).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runs: Vec<RunPart>,
    /// An `isobench run` began writing and has not finished: it is still
    /// running (the folder is locked) or was killed part-way. `compare` and
    /// `merge` refuse such a folder unless `--allow-incomplete`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub in_progress: bool,
    /// Keys this version does not know, kept as they were.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// One process that measured into a folder (`runs[]`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RunPart {
    /// `<UTC timestamp>-<pid>`: what each of its measurements carries.
    pub run_id: String,
    /// `isobench run`, `cargo bench`.
    pub driver: String,
    /// When it started (RFC 3339, seconds, UTC).
    pub started_utc: String,
    /// When it finished; absent while it runs and after it was killed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_utc: Option<String>,
    /// The host it ran on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// The folder already held measurements when it started: added with
    /// `isobench run --append`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub appended: bool,
}

impl RunRecord {
    /// The record of environment `name`, created empty when absent.
    pub fn env_mut(&mut self, name: &str) -> &mut EnvRecord {
        self.environments.entry(name.to_string()).or_default()
    }

    /// Every environment's record under its report column's name: this
    /// run's own, and in a merged folder each input's as `env@name` (see
    /// `report::merge`), in no particular order.
    pub fn columns_environments(&self) -> Vec<(String, &EnvRecord)> {
        let mut v: Vec<(String, &EnvRecord)> = self.environments.iter().map(|(n, e)| (n.clone(), e)).collect();
        for m in self.merged_from.iter().flatten() {
            for (n, e) in m.environments.iter().flatten() {
                v.push((format!("{n}@{}", m.name), e));
            }
        }
        v
    }

    /// The id of the process writing now (the last of `runs`).
    pub fn current_run_id(&self) -> Option<&str> {
        self.runs.last().map(|p| p.run_id.as_str())
    }

    /// The runs added to the first one with `isobench run --append`.
    pub fn appended(&self) -> impl Iterator<Item = &RunPart> {
        self.runs.iter().filter(|p| p.appended)
    }

    /// `parameters`, created empty when absent.
    pub fn parameters_mut(&mut self) -> &mut Parameters {
        self.parameters.get_or_insert_with(Parameters::default)
    }
}

/// How the run was asked for. Which fields are set depends on the driver
/// (`isobench run`, `cargo bench`, `isobench merge`); a later writer's fields
/// replace an earlier one's ([`Parameters::update`]), the others stay.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Parameters {
    /// `isobench run`, `cargo bench`, `isobench merge`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    /// VM accelerator asked for (`auto`, `kvm`, `tcg`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accel: Option<String>,
    /// `cargo bench`: measured through criterion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub criterion: Option<bool>,
    /// `cargo bench`: criterion's own HTML report of the same samples.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub criterion_report: Option<PathBuf>,
    /// Environments asked for, in order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub envs: Option<Vec<String>>,
    /// Iterations per metric when `--iterations` overrode the catalogue:
    /// `Some(None)` is recorded as `null` (the catalogue's counts).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub iterations: Option<Option<u64>>,
    /// Time bound of one measurement, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_ms: Option<u64>,
    /// Metrics asked for, in order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Vec<String>>,
    /// CPU pinning of two-party metrics (`--pin`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin: Option<PinMode>,
    /// `--quick`: smoke-run iteration counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quick: Option<bool>,
    /// `isobench run --command`: the commands and how they ran (results
    /// in command.json).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<super::command::CommandParameters>,
    /// `--budget`: the time the run was planned to fit, s (its bound per
    /// measurement is `max_ms`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_s: Option<u64>,
    /// Keys this version does not know, kept as they were.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

impl Parameters {
    /// Sets every field `newer` has; keeps the rest.
    pub fn update(&mut self, newer: Parameters) {
        fn set<T>(slot: &mut Option<T>, v: Option<T>) {
            if v.is_some() {
                *slot = v;
            }
        }
        let Parameters { driver, accel, criterion, criterion_report, envs, iterations, max_ms, metrics, pin, quick, command, budget_s, other } =
            newer;
        set(&mut self.driver, driver);
        set(&mut self.accel, accel);
        set(&mut self.criterion, criterion);
        set(&mut self.criterion_report, criterion_report);
        set(&mut self.envs, envs);
        set(&mut self.iterations, iterations);
        set(&mut self.max_ms, max_ms);
        set(&mut self.metrics, metrics);
        set(&mut self.pin, pin);
        set(&mut self.quick, quick);
        set(&mut self.command, command);
        set(&mut self.budget_s, budget_s);
        self.other.extend(other);
    }
}

/// One environment of the run (`environments.<name>`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EnvRecord {
    /// Column label with caveats, e.g. `vm (emulated (TCG))`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// What the environment says about itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<EnvMetadata>,
    /// Host-measured start → agent ready of the measured instance, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_ms: Option<f64>,
    /// What the instance's agent saw when it became ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<AgentInfo>,
    /// Why the environment could not run here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    /// Metric → the pinning its measurement really had.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pinning: BTreeMap<String, PinRecord>,
    /// The path the `net.*.boundary` metrics took.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boundary: Option<BoundaryRecord>,
    /// Why `net.*.boundary` was not measured here (peers, rootless veth).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boundary_not_measured: Option<String>,
    /// Metric → why it does not run in this environment (e.g. a system call
    /// gVisor does not implement): reported, not a failed run.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub not_supported: BTreeMap<String, String>,
    /// Metric → its mean per operation as the host timed its loop, where
    /// the environment's own clock was refused (runsc): no percentiles.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub host_timed: BTreeMap<String, HostTimedRecord>,
    /// The measured instance's cgroup accounting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<UsageRecord>,
    /// Where the fs.* metrics made their files (absent when none ran).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<StorageRecord>,
    /// Why the fs.* metrics were not measured here (an environment without
    /// a data directory yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_not_measured: Option<String>,
    /// Every boot of the run, across all processes that wrote it
    /// (`metadata.boots` holds the last process's only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boots_all: Option<Vec<BootRecord>>,
    /// Every container start of the run, across all processes that wrote it
    /// (`metadata.starts` holds the last process's only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts_all: Option<Vec<ContainerStartRecord>>,
    /// Keys this version does not know, kept as they were.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// A metric whose in-environment timing was refused (gVisor's clock ran
/// slow across its loop), timed instead by the host from the agent's mark
/// before the loop to its mark after (`environments.<env>.host_timed.<metric>`).
/// One interval for the whole loop, so a mean per operation and nothing
/// finer: no histogram, no percentiles.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct HostTimedRecord {
    /// Operations the loop ran.
    pub operations: u64,
    /// The host's time for the loop, ns.
    pub host_loop_ns: u64,
    /// The environment's own clock's time for the same loop (the sum of
    /// its samples), ns: what was refused.
    pub env_loop_ns: u64,
    /// Bytes one operation moved (rates; 0 for latencies).
    #[serde(default)]
    pub bytes_per_op: u64,
    /// Why the environment's timing was refused.
    pub refused: String,
    /// fs.* metrics: the storage path, in words, as on a measured row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<String>,
    /// The run that measured it (`runs[].run_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// What else the machine did meanwhile, as for a measurement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interference: Option<crate::collect::Interference>,
}

impl HostTimedRecord {
    /// The host's time per operation, ns: the loop ÷ its operations.
    pub fn mean_ns(&self) -> f64 {
        self.host_loop_ns as f64 / self.operations.max(1) as f64
    }

    /// ` ⚠` when it was taken under interference, as a measurement's mark.
    pub fn interference_mark(&self) -> &'static str {
        if self.interference.as_ref().is_some_and(|i| i.flagged()) {
            " ⚠"
        } else {
            ""
        }
    }
}

/// The storage path of an environment's fs.* metrics (`environments.<env>.storage`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StorageRecord {
    /// Which path ([`crate::storage::StorageKind`]): host_directory,
    /// volume, container_root, virtio_blk, virtio_9p, virtiofs, or runsc's
    /// gofer_volume, sandbox_overlay, gofer_root.
    pub kind: Option<crate::storage::StorageKind>,
    /// The directory the agent was given, as it sees it.
    pub agent_dir: String,
    /// The host directory behind it, where there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_dir: Option<String>,
    /// The host directory's file system (statfs(2)), where there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_fs: Option<String>,
    /// How the path is attached where that decides its speed (a vm's
    /// `cache=none,aio=io_uring` disk, its 9p `msize=512000`, its
    /// virtiofsd's `cache=none`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The file system the agent saw under its directory (tmpfs, overlay,
    /// ext4...), from its first fs.* result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fs: Option<String>,
    /// Metric → the bytes it moved and verified (the agent's check).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub io: BTreeMap<String, isobench_workloads::protocol::IoCheck>,
}

impl StorageRecord {
    /// The storage path in words, for a row: "volume (host directory
    /// bind-mounted), ext4".
    pub fn describe(&self) -> String {
        let kind = self.kind.map_or("data directory", crate::storage::StorageKind::describe);
        let path = match &self.fs {
            Some(fs) => format!("{kind}, {fs}"),
            None => kind.to_string(),
        };
        match &self.detail {
            Some(detail) => format!("{path} ({detail})"),
            None => path,
        }
    }
}

impl EnvRecord {
    /// The label, or `name` for a record without one.
    pub fn label_or<'a>(&'a self, name: &'a str) -> &'a str {
        self.label.as_deref().unwrap_or(name)
    }

    /// The metadata field the report reads for `f`, when there is metadata.
    pub fn meta<'a, T>(&'a self, f: impl FnOnce(&'a EnvMetadata) -> Option<T>) -> Option<T> {
        self.metadata.as_ref().and_then(f)
    }
}

/// An environment's facts about itself (`environments.<name>.metadata`):
/// the few the report reads as fields, everything else (rootfs, namespaces,
/// guest image, network, ...) as the environment wrote it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EnvMetadata {
    /// The vm's accelerator: `kvm` or `tcg`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accel: Option<String>,
    /// Why that accelerator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accel_reason: Option<String>,
    /// The container's rootfs: `minimal`, `debian`, or a directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rootfs_image: Option<String>,
    /// A caveat the environment wants in the report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
    /// The vm's boots (the writing process's), most recent last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boots: Option<Vec<BootRecord>>,
    /// A container's security profile (`--profile`): the container
    /// environment's and the OCI peers'.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<ProfileRecord>,
    /// The container's starts (the writing process's), most recent last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts: Option<Vec<ContainerStartRecord>>,
    /// Every other fact, as the environment wrote it.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// A container's security profile (`environments.<env>.metadata.profile`):
/// which profile, its layers, and what it takes from the container.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ProfileRecord {
    /// `bare`, `default` or `docker`: the named profile of these layers
    /// (with another set of layers, `bare` or `default` by the hardening).
    pub name: String,
    /// The column label's part: the name, or e.g. `bare + seccomp: not a
    /// security boundary` for a set of layers no profile names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The layers added to the namespaces: `hardening`, `seccomp`, `overlay`.
    #[serde(default)]
    pub layers: Vec<String>,
    /// False for `bare`, which is namespaces only.
    #[serde(default)]
    pub security_boundary: bool,
    /// `not a security boundary` for `bare`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The capabilities kept; `None`: every one of the caller's.
    #[serde(default)]
    pub capabilities: Option<Vec<String>>,
    #[serde(default)]
    pub no_new_privs: bool,
    #[serde(default)]
    pub masked_paths: Vec<String>,
    #[serde(default)]
    pub readonly_paths: Vec<String>,
    /// The seccomp filter, for `docker`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seccomp: Option<SeccompRecord>,
    /// The overlayfs root, for `docker` (isobench's container only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overlay: Option<crate::container::rootfs::OverlayRecord>,
    /// Every other fact.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// The seccomp layer of a profile (`metadata.profile.seccomp`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SeccompRecord {
    /// The profile file (Docker's format).
    pub profile: PathBuf,
    /// The Debian package that installs it.
    #[serde(default)]
    pub package: Option<String>,
    /// What a call no rule names gets (`SCMP_ACT_ERRNO`).
    #[serde(default)]
    pub default_action: Option<String>,
    #[serde(default)]
    pub default_errno: Option<u32>,
    /// Rules that apply here (this architecture, these capabilities).
    #[serde(default)]
    pub rules: Option<usize>,
    /// Length of the BPF program isobench compiled, in instructions; `None`
    /// where the OCI runtime compiled it.
    #[serde(default)]
    pub bpf_instructions: Option<usize>,
    /// `isobench` (libseccomp in the parent) or the runtime's name.
    #[serde(default)]
    pub compiled_by: Option<String>,
    /// Every other fact.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// One boot's phases, ms from QEMU's start (`metadata.boots[]` and
/// `boots_all[]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BootRecord {
    /// 1 for the environment's first start, then 2, 3, ...
    pub start: u32,
    /// The console log's first byte: the kernel runs (with a bzImage, its
    /// decompressor may be what printed).
    pub first_console_output_ms: Option<f64>,
    /// The agent's `ready` line: /init reached and the channel up.
    pub agent_ready_ms: f64,
    /// The shutdown request: the workload done, as the instance sees it.
    pub shutdown_requested_ms: Option<f64>,
    /// QEMU exited after the guest powered off.
    pub qemu_exited_ms: Option<f64>,
    /// The guest's CLOCK_BOOTTIME at `ready`: its own view of its boot.
    pub guest_uptime_at_ready_ms: f64,
    /// The guest's clocksource at `ready` (`tsc`, `kvm-clock`, ...).
    pub clocksource: Option<String>,
}

impl BootRecord {
    /// The host-measured phases, in order, that have happened.
    pub fn phases(&self) -> Vec<(String, f64)> {
        [
            ("first_console_output", self.first_console_output_ms),
            ("agent_ready", Some(self.agent_ready_ms)),
            ("shutdown_requested", self.shutdown_requested_ms),
            ("qemu_exited", self.qemu_exited_ms),
        ]
        .into_iter()
        .filter_map(|(name, ms)| ms.map(|ms| (name.to_string(), ms)))
        .collect()
    }

    /// What tells two records of one boot apart from records of others: a
    /// later record of the same boot knows more and replaces the earlier.
    pub fn key(&self) -> (u32, u64) {
        (self.start, self.agent_ready_ms.to_bits())
    }
}

/// One container start's phases (`metadata.starts[]` and `starts_all[]`),
/// ms from the start being asked for ([`Environment::start`]), all on the
/// host's CLOCK_MONOTONIC: the launcher stamps its own steps and the
/// container's child stamps the steps only it sees (`container::process::timeline`).
/// A step that does not exist in a start (no cgroup) or has not happened
/// (the instance still runs) is `None`.
///
/// [`Environment::start`]: crate::env::Environment::start
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ContainerStartRecord {
    /// 1 for the environment's first start, then 2, 3, ...
    pub start: u32,
    /// clone(2) called: what came before is the launcher's own preparation
    /// (pipes, the child's stack, a cgroup v2 group).
    pub clone_ms: f64,
    /// clone(2) returned: the namespaces exist, the child runs in them.
    pub namespaces_ready_ms: f64,
    /// The child applied its mount plan (rootfs, /proc, /dev, /sys,
    /// pivot_root), set its host name and brought its loopback up.
    pub mounts_done_ms: Option<f64>,
    /// The child is in its cgroup (moved itself in after the parent's
    /// handshake, or born in it).
    pub cgroup_placed_ms: Option<f64>,
    /// The agent's execve(2) called.
    pub exec_ms: Option<f64>,
    /// The agent's `ready` line read by the host: the end of `start`.
    pub agent_ready_ms: f64,
    /// Shutdown asked for (at once in an `env.start` loop; after the
    /// workload for the measured instance).
    pub shutdown_requested_ms: Option<f64>,
    /// The container's init (the agent) reaped.
    pub reaped_ms: Option<f64>,
    /// Its cgroup read and removed: nothing of the start is left.
    pub cleaned_up_ms: Option<f64>,
}

impl ContainerStartRecord {
    /// The steps that happened, (name, ms), in the order they happened.
    pub fn phases(&self) -> Vec<(String, f64)> {
        let mut v: Vec<(String, f64)> = [
            ("clone", Some(self.clone_ms)),
            ("namespaces_ready", Some(self.namespaces_ready_ms)),
            ("mounts_done", self.mounts_done_ms),
            ("cgroup_placed", self.cgroup_placed_ms),
            ("exec", self.exec_ms),
            ("agent_ready", Some(self.agent_ready_ms)),
            ("shutdown_requested", self.shutdown_requested_ms),
            ("reaped", self.reaped_ms),
            ("cleaned_up", self.cleaned_up_ms),
        ]
        .into_iter()
        .filter_map(|(name, ms)| ms.map(|ms| (name.to_string(), ms)))
        .collect();
        v.sort_by(|a, b| a.1.total_cmp(&b.1));
        v
    }

    /// What tells two records of one start apart from records of others
    /// (as [`BootRecord::key`]).
    pub fn key(&self) -> (u32, u64) {
        (self.start, self.agent_ready_ms.to_bits())
    }
}

/// The pinning one measurement had (`environments.<env>.pinning.<metric>`).
/// `applied` differs from `requested` where `split` was impossible (one
/// allowed CPU) or the metric has no peer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PinRecord {
    pub requested: PinMode,
    pub applied: PinMode,
    /// The CPUs of the measuring thread and its peer.
    #[serde(default)]
    pub cpus: Vec<u32>,
}

/// The path the `net.*.boundary` metrics took (`environments.<env>.boundary`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BoundaryRecord {
    /// `loopback`, `veth`, `tap`, `slirp`.
    #[serde(default)]
    pub path: Option<String>,
    /// The path in words.
    #[serde(default)]
    pub description: Option<String>,
    /// The network namespace of the host side; `None`: the host's own.
    #[serde(default)]
    pub netns: Option<String>,
    /// The address the environment's agent binds.
    #[serde(default)]
    pub environment_address: Option<String>,
    /// Every other fact (forwards, the address the host side connects to, ...).
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// What the measured instance used, as its cgroup accounts it
/// (`environments.<env>.usage`); `None` where a counter is not available.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct UsageRecord {
    /// CPU time of all members, user + system, ns.
    #[serde(default)]
    pub cpu_ns: Option<u64>,
    /// Highest memory charged to the group, bytes.
    #[serde(default)]
    pub memory_peak_bytes: Option<u64>,
    /// Members killed by the OOM killer.
    #[serde(default)]
    pub oom_kills: Option<u64>,
    /// Forks refused because of the pids limit.
    #[serde(default)]
    pub pids_limit_hits: Option<u64>,
    /// Every other counter.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// One folder an `isobench merge` was made from (`merged_from[]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MergedRun {
    /// The column suffix its environments got (`env@name`).
    pub name: String,
    pub dir: PathBuf,
    #[serde(default)]
    pub host: Option<HostInfo>,
    #[serde(default)]
    pub started_utc: Option<String>,
    #[serde(default)]
    pub environments: Option<BTreeMap<String, EnvRecord>>,
}

/// A record from the JSON an environment gives (`metadata()`,
/// `resource_usage()`, a boundary's `metadata()`): `None` for `null`.
/// Errors: the value does not have the record's shape (`what` names it).
pub fn from_env_value<T: DeserializeOwned>(what: &str, v: Value) -> Result<Option<T>, ResultsError> {
    if v.is_null() {
        return Ok(None);
    }
    serde_json::from_value(v).map(Some).map_err(|source| ResultsError::Record { what: what.to_string(), source })
}

/// A field that is present, even as `null`, is `Some`: an explicit `null`
/// survives a rewrite.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_and_explicit_nulls_survive_a_rewrite() {
        let json = serde_json::json!({
            "schema": 1,
            "future": { "x": 1 },
            "parameters": { "driver": "isobench run", "iterations": null, "quick": true, "later": "kept" },
            "environments": {
                "vm": { "label": "vm", "metadata": { "accel": "tcg", "modules": ["a"], "boots": [] }, "boots_all": [], "new_fact": 2 },
                "container": { "usage": { "cpu_ns": 5, "memory_peak_bytes": null, "oom_kills": 0, "pids_limit_hits": null } },
                "native": { "boundary": { "path": "loopback", "description": "lo", "netns": null, "environment_address": "127.0.0.1", "forwards": null } }
            }
        });
        let r: RunRecord = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(r.parameters.as_ref().unwrap().iterations, Some(None));
        assert_eq!(r.environments["vm"].meta(|m| m.accel.clone()).as_deref(), Some("tcg"));
        assert_eq!(serde_json::to_value(&r).unwrap(), json);
        let none: Parameters = serde_json::from_str("{}").unwrap();
        assert_eq!(none.iterations, None);
        assert_eq!(serde_json::to_value(none).unwrap(), serde_json::json!({}));
    }

    #[test]
    fn a_later_writers_parameters_replace_only_what_they_set() {
        let mut p = Parameters { driver: Some("cargo bench".into()), quick: Some(true), ..Default::default() };
        p.update(Parameters { pin: Some(PinMode::Split), iterations: Some(None), ..Default::default() });
        assert_eq!((p.driver.as_deref(), p.quick, p.pin, p.iterations), (Some("cargo bench"), Some(true), Some(PinMode::Split), Some(None)));
    }
}
