//! The agent protocol: JSON lines, one request and one response per line.
//!
//! The harness writes a [`Request`]; the agent answers with one [`Response`].
//! On start the agent sends `Response::Ready` before reading anything, so the
//! harness can time "environment started → agent running". The transport is a
//! pair of pipes (native, container) or a virtio-serial port (guest); the bytes
//! are the same everywhere.
//!
//! ```text
//! harness → {"op":"run","metric":"syscall.getpid","iterations":100000,"max_ms":5000}
//! agent   → {"kind":"result","metric":"syscall.getpid","iterations":100000,...}
//! ```

use serde::{Deserialize, Serialize};

/// Name of the virtio-serial port the guest agent serves on
/// (`/sys/class/virtio-ports/*/name`).
pub const VIRTIO_PORT_NAME: &str = "org.isobench.agent";

/// Longest request line the agent reads, newline included: a request is a
/// few hundred bytes, so 64 KiB leaves room for any future field while
/// bounding what a runaway writer can make the agent hold. A longer line
/// gets `Response::Error` and is discarded up to its newline unread.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// The documented range of each [`RunRequest`] parameter; the agent answers
/// `Response::Error` outside it before it allocates or runs anything
/// (`metrics::check`).
pub mod bounds {
    use std::ops::RangeInclusive;

    /// `iterations`: at least one sample; at most 10^9 operations (500
    /// times the largest catalogue count; `max_ms` bounds the time anyway).
    pub const ITERATIONS: RangeInclusive<u64> = 1..=1_000_000_000;
    /// `max_ms`: 1 ms to one hour for one measurement.
    pub const MAX_MS: RangeInclusive<u64> = 1..=3_600_000;
    /// `warmup`: untimed and not bounded by `max_ms`, so bounded here: the
    /// harness sends at most 1000; 100 000 fork+exec warm-ups under TCG are
    /// already hours.
    pub const WARMUP: RangeInclusive<u64> = 0..=100_000;
    /// `bytes` (mem.copy_bw only): 1 MiB to 1 GiB, the copy buffer's size;
    /// the agent then shrinks it to what the memory of the environment
    /// allows (`metrics::control::fit_in_memory`: a third of MemAvailable
    /// and of the cgroup's memory limit left, for two buffers) and reports
    /// the size used.
    pub const BYTES: RangeInclusive<u64> = (1 << 20)..=(1 << 30);
    /// `cpu` (run and serve): a CPU number the kernel's affinity masks can
    /// hold (CPU_SETSIZE); one this environment does not allow falls back
    /// to the CPU the thread runs on.
    pub const CPU: RangeInclusive<u32> = 0..=1023;
    /// `data_dir` (fs.* only): an absolute path of at most PATH_MAX - 1
    /// bytes (4095, the kernel's limit for one path), so the agent never
    /// holds a longer one; the directory must exist.
    pub const DATA_DIR_BYTES: RangeInclusive<usize> = 1..=4095;
    /// `rate` (app.*.latency only): 1 to 10 million requests per second,
    /// beyond any server one machine runs; NaN is outside.
    pub const RATE: RangeInclusive<f64> = 1.0..=10_000_000.0;
    /// `exec.runs`: timed runs of the user's command in one request (the
    /// harness sends one per request, to time each from the host too).
    pub const EXEC_RUNS: RangeInclusive<u32> = 1..=10_000;
    /// `exec.warmup`: untimed runs first, like hyperfine's `--warmup`.
    pub const EXEC_WARMUP: RangeInclusive<u32> = 0..=1_000;
    /// `exec.argv`: a program and at most 4095 arguments (the line's 64 KiB
    /// bounds their bytes anyway).
    pub const EXEC_ARGS: RangeInclusive<usize> = 1..=4096;
}

/// A request from the harness.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Ask for [`AgentInfo`] again.
    Info,
    /// Run one metric. For a metric measured across the environment's
    /// boundary this is sent to the *host-side* agent, with
    /// [`RunRequest::target`] naming the environment agent's server.
    Run(RunRequest),
    /// Start the environment's end of a cross-boundary metric: a server thread
    /// (echo for round trips, sender for streams) bound to
    /// [`ServeRequest::bind`]. Answered with `Response::Serving`.
    Serve(ServeRequest),
    /// Wait for the server thread of the last `Serve` to end (the host side
    /// closed its connection) and report what it moved (`Response::Served`).
    Join,
    /// Exit (native, container) or power the guest off (vm). The agent answers
    /// `Response::Bye` first.
    Shutdown,
    /// Start a real server (redis, nginx) inside the environment for the
    /// app.* metrics (`app::server`); answered with `Response::AppServing`
    /// once it accepts connections. One at a time.
    AppStart(AppStartRequest),
    /// Stop the server of the last `AppStart` and remove its directory
    /// (`Response::AppStopped`). Shutdown and end of input stop it too.
    AppStop,
    /// Run the user's command (`isobench run --command`) inside the
    /// environment, each run timed by the agent's own clock around
    /// fork, exec and wait. Answered with `Response::Executed`.
    Exec(ExecRequest),
    /// Read a small text file inside the environment (at most
    /// [`MAX_READ_BYTES`]), e.g. a vm's /etc/debian_version to show which
    /// root it runs on. Answered with `Response::File`.
    ReadFile { path: String },
}

/// "Start application A bound to this address, its files in this
/// directory".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppStartRequest {
    pub app: crate::app::App,
    /// `ip:port` to listen on; port 0 picks a free one.
    pub bind: String,
    /// An absolute path, as the agent sees it, that does not exist yet and
    /// whose parent does: the server's configuration, docroot and log go
    /// there; removed when the server stops. Natively the harness names it
    /// with its pid (so a killed run's sweep finds it).
    pub dir: String,
}

/// "Run this program `warmup` times untimed, then `runs` times timed":
/// hyperfine's method with `--shell=none`, inside the environment. The
/// agent execs `argv[0]` by path (searched in `PATH` of `env` when it has
/// no slash) inside its own root, or inside `root` when given; the
/// command's stdin, stdout and stderr are /dev/null (hyperfine's
/// `--output=null`), so its output never reaches the protocol channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecRequest {
    /// The program and its arguments, as execve(2) gets them.
    pub argv: Vec<String>,
    /// The command's environment (`NAME=value`), nothing else.
    #[serde(default)]
    pub env: Vec<String>,
    /// The working directory, inside the command's root; `/` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// A directory (as the agent sees it) that the child chroot(2)s into
    /// before exec: the image's files for an agent that runs in the host's
    /// file system (native). Absent: the agent's own root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<String>,
    /// With `root`: the child enters a mount namespace of its own before
    /// the chroot, in which `root` is bound read-only onto itself, so a
    /// command can never write into a shared cached image, and the host's
    /// mount table never changes (native, unshare). Made once by the agent
    /// and held by a file descriptor: `exec::private_namespace`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_root: Option<PrivateRoot>,
    /// Timed runs.
    pub runs: u32,
    /// Untimed runs first.
    #[serde(default)]
    pub warmup: u32,
}

/// What the private mount namespace of [`ExecRequest::private_root`]
/// holds besides the read-only image.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PrivateRoot {
    /// A tmpfs on the image's /tmp (when it has one), as the container's
    /// read-only root gets.
    #[serde(default)]
    pub tmp: bool,
    /// A host directory (as the agent sees it) bound read-write on this
    /// absolute path inside the image, which must exist there: the user's
    /// `--data-dir` on /mnt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<(String, String)>,
}

/// How one run of the command ended, as waitpid(2) told it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ExitStatus {
    /// The exit code, when it exited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<i32>,
    /// The signal that killed it, when one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
}

impl ExitStatus {
    /// Exited with code 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

impl std::fmt::Display for ExitStatus {
    /// "exit status 1", "killed by signal 9".
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.code, self.signal) {
            (Some(c), _) => write!(f, "exit status {c}"),
            (None, Some(s)) => write!(f, "killed by signal {s}"),
            (None, None) => f.write_str("unknown wait status"),
        }
    }
}

/// One run of the command: the agent's clock around fork, exec and wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecRun {
    /// CLOCK_MONOTONIC from before fork(2) to after waitpid(2), ns.
    pub ns: u64,
    pub status: ExitStatus,
}

/// The answer to [`Request::Exec`]. The agent stops at the first run that
/// does not exit 0 (warm-up or timed), as hyperfine does, so the last
/// entry is then the failed one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecResult {
    /// The path execve(2) got, inside the command's root.
    pub path: String,
    /// The warm-up runs, untimed by the harness.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warmup: Vec<ExecRun>,
    /// The timed runs.
    pub runs: Vec<ExecRun>,
}

/// The most a `ReadFile` answer holds: it travels in one response line.
pub const MAX_READ_BYTES: u64 = 16 * 1024;

/// "Run metric M for n iterations, or at most t ms".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRequest {
    /// Dotted metric name from the catalogue.
    pub metric: String,
    /// Operations to time (rounded up to a whole number of samples).
    pub iterations: u64,
    /// Wall-clock bound in milliseconds: the loop stops after the sample in
    /// which it is exceeded, even if fewer iterations ran.
    pub max_ms: u64,
    /// Untimed operations run first (cache and branch-predictor warm-up).
    #[serde(default)]
    pub warmup: u64,
    /// Working-set size in bytes for metrics that have one (mem.copy_bw): the
    /// harness picks it from the host, so every environment copies the same
    /// amount. `None`: the agent picks (`metrics::control::copy_bytes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// Cross-boundary metrics only: the `ip:port` of the environment agent's
    /// server (what `Response::Serving` said, mapped to an address the host
    /// side can reach).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Pin the measuring thread (and what it creates) to this CPU instead of
    /// the one it happens to run on (see `metrics::CpuPin`). Ignored under
    /// [`PinMode::None`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<u32>,
    /// Where the measuring thread's peer runs (see [`PinMode`]); absent on
    /// the wire means [`PinMode::Same`], what agents did before the field.
    #[serde(default, skip_serializing_if = "PinMode::is_default")]
    pub pin: PinMode,
    /// fs.* metrics only: the directory, as the agent sees it, under which
    /// the metric makes its files (a directory of its own, removed when
    /// the metric ends). The agent writes nowhere else.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<String>,
    /// app.*.latency metrics only: the offered rate of the open loop,
    /// requests per second (the harness picks it from the closed-loop
    /// figure; see `app::load`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    /// Write a [`Response::Mark`] line just before the timed loop starts
    /// and one just after it ends, so the harness can time the loop with
    /// its own clock: under runsc, whose clock can run slow
    /// (`crate::marks`). Metrics without a timed loop of their own
    /// (cross-boundary and app clients) write none.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub marks: bool,
}

impl RunRequest {
    /// A request for `iterations` operations of `metric`, at most `max_ms`
    /// ms, no warm-up, no working set, no target, no CPU choice, pinning
    /// [`PinMode::Same`].
    pub fn new(metric: impl Into<String>, iterations: u64, max_ms: u64) -> RunRequest {
        RunRequest {
            metric: metric.into(),
            iterations,
            max_ms,
            warmup: 0,
            bytes: None,
            target: None,
            cpu: None,
            pin: PinMode::Same,
            data_dir: None,
            rate: None,
            marks: false,
        }
    }
}

/// How a two-party metric places its two ends (the measuring thread and its
/// peer: the forked echo or writer process, the echo or sender thread, or a
/// boundary server) on CPUs. One-party metrics (spawn.*, syscall.*, cpu.spin,
/// mem.copy_bw) run pinned to one CPU under `Same` and `Split` alike, and
/// unpinned under `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum PinMode {
    /// Both ends on one CPU: a round trip is two context switches, the same
    /// quantity a 1-vCPU guest measures (the default).
    #[default]
    Same,
    /// The measuring thread on one CPU, its peer on another (the lowest
    /// allowed CPU other than the measuring one): cross-CPU wake-ups. Falls
    /// back to `Same`, and says so in [`RunResult::pinning`], where only one
    /// CPU is allowed.
    Split,
    /// No pinning: the scheduler places both ends, so a figure may be a
    /// bimodal mix of same-CPU and cross-CPU round trips.
    None,
}

impl PinMode {
    /// Every mode, in the order the command line lists them.
    pub const ALL: [PinMode; 3] = [PinMode::Same, PinMode::Split, PinMode::None];

    /// The name on the command line and in run.json: "same", "split", "none".
    pub fn as_str(self) -> &'static str {
        match self {
            PinMode::Same => "same",
            PinMode::Split => "split",
            PinMode::None => "none",
        }
    }

    /// True for [`PinMode::Same`] (serde's `skip_serializing_if`).
    pub fn is_default(&self) -> bool {
        *self == PinMode::Same
    }
}

impl std::fmt::Display for PinMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for PinMode {
    type Err = String;

    /// Parses "same", "split" or "none". Errors: one line naming the bad
    /// value and the choices.
    fn from_str(s: &str) -> Result<PinMode, String> {
        PinMode::ALL
            .into_iter()
            .find(|m| m.as_str() == s.trim())
            .ok_or_else(|| format!("unknown pinning mode {s:?}; choose same (both ends on one CPU), split (on two CPUs) or none (unpinned)"))
    }
}

/// "Serve the environment's end of cross-boundary metric M on this address".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServeRequest {
    /// A `*.boundary` metric of the catalogue.
    pub metric: String,
    /// `ip:port` to bind; port 0 picks a free one (user-mode networking
    /// forwards fixed ports, so it names them).
    pub bind: String,
    /// Pin the server thread to this CPU (else the one it runs on). Ignored
    /// under [`PinMode::None`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<u32>,
    /// `Same` and `Split`: the server thread is pinned to one CPU (`cpu`, or
    /// the one it starts on; the harness picks `cpu` so that the host side's
    /// end is on the same or another CPU). `None`: not pinned.
    #[serde(default, skip_serializing_if = "PinMode::is_default")]
    pub pin: PinMode,
}

/// What the agent knows about where it runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct AgentInfo {
    /// The agent's PID as the agent sees it (1 in a container or guest).
    pub pid: u32,
    pub hostname: String,
    /// `uname -r` as seen from inside.
    pub kernel: String,
    /// Current clocksource, when /sys is readable.
    pub clocksource: Option<String>,
    /// Seconds since boot (CLOCK_BOOTTIME), as seen from inside.
    pub uptime_s: f64,
    /// Measured cost of one clock_gettime(CLOCK_MONOTONIC), ns.
    pub timer_overhead_ns: f64,
    /// Agent crate version.
    pub version: String,
    /// Metrics this agent implements.
    pub metrics: Vec<String>,
    /// What the spawn metrics exec, and from where; `None` from agents older
    /// than the field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spawn: Option<SpawnTarget>,
    /// The agent's privileges as its own /proc/self/status shows them inside
    /// the environment (a container's profile at work); `None` from an
    /// older agent or without /proc.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security: Option<SecurityStatus>,
    /// The memory of the machine the agent runs on, as its own /proc
    /// shows it when it answered (a guest's view of its RAM; in a
    /// container, the host's, since /proc/meminfo is not namespaced);
    /// `None` from an older agent or without /proc.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<MemoryView>,
    /// What a guest's /init mounted from the kernel command line (its root
    /// disk, its data disk or shared directory) or why it could not;
    /// empty outside a guest and from older agents.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<GuestMount>,
}

/// One mount a guest's /init made for the harness (`guest::setup`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct GuestMount {
    /// `root` (the image the guest switched its root to) or `data` (the
    /// fs.* metrics' directory).
    pub role: String,
    /// The device or 9p tag, e.g. `/dev/vdb` or `isobench-data`.
    pub source: String,
    /// Where it is mounted, seen from the guest's final root.
    pub target: String,
    /// ext4 or 9p.
    pub fstype: String,
    /// Mount options passed (e.g. `trans=virtio,version=9p2000.L,msize=512000`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub options: String,
    /// Why it failed (a module missing from the kernel, no such device);
    /// `None` when mounted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// /proc/meminfo's totals and the agent's own resident set (proc(5)), KiB.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct MemoryView {
    /// MemTotal: the RAM the kernel manages.
    pub mem_total_kib: u64,
    /// MemAvailable: what could be allocated without swapping.
    pub mem_available_kib: u64,
    /// VmRSS of the agent itself (/proc/self/status).
    pub agent_rss_kib: Option<u64>,
}

impl MemoryView {
    /// From the texts of /proc/meminfo and /proc/self/status; `None` when
    /// meminfo lacks MemTotal or MemAvailable (kernels before 3.14).
    pub fn parse(meminfo: &str, status: &str) -> Option<MemoryView> {
        let kib = |text: &str, name: &str| -> Option<u64> {
            text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))?.trim().trim_end_matches("kB").trim().parse().ok()
        };
        Some(MemoryView {
            mem_total_kib: kib(meminfo, "MemTotal")?,
            mem_available_kib: kib(meminfo, "MemAvailable")?,
            agent_rss_kib: kib(status, "VmRSS"),
        })
    }

    /// This machine's, as the calling process sees it.
    pub fn of_self() -> Option<MemoryView> {
        let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
        MemoryView::parse(&meminfo, &std::fs::read_to_string("/proc/self/status").unwrap_or_default())
    }
}

/// The privilege lines of /proc/self/status (proc(5)), as the kernel
/// writes them.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct SecurityStatus {
    /// `CapEff`: the effective capabilities, hex (`00000000a80425fb` is
    /// Docker's default set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cap_eff: Option<String>,
    /// `NoNewPrivs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_new_privs: Option<bool>,
    /// `Seccomp`: 0 none, 1 strict, 2 a filter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seccomp: Option<u32>,
    /// `Seccomp_filters`: filters stacked on the process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seccomp_filters: Option<u32>,
    /// `Speculation_Store_Bypass`: the SSB mitigation state (some kernels
    /// switch it on with a seccomp filter).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speculation_store_bypass: Option<String>,
}

impl SecurityStatus {
    /// The lines of a /proc/PID/status text.
    pub fn parse(status: &str) -> SecurityStatus {
        let field = |name: &str| status.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(':')).map(|v| v.trim().to_string());
        SecurityStatus {
            cap_eff: field("CapEff"),
            no_new_privs: field("NoNewPrivs").map(|v| v == "1"),
            seccomp: field("Seccomp").and_then(|v| v.parse().ok()),
            seccomp_filters: field("Seccomp_filters").and_then(|v| v.parse().ok()),
            speculation_store_bypass: field("Speculation_Store_Bypass"),
        }
    }

    /// /proc/self/status of the calling process; `None` without /proc.
    pub fn of_self() -> Option<SecurityStatus> {
        std::fs::read_to_string("/proc/self/status").ok().map(|s| SecurityStatus::parse(&s))
    }
}

/// What `spawn.fork_exec` and `spawn.posix_spawn` exec, as the agent sees
/// it: the same relative path and environment in every environment, so
/// that only the no-op's directory (and what holds it) differs.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct SpawnTarget {
    /// The path given to execve(2), relative to `dir`.
    pub path: String,
    /// The no-op's directory, the agent's working directory while a spawn
    /// metric runs.
    pub dir: String,
    /// The environment given to the no-op (`NAME=value`).
    pub envp: Vec<String>,
    /// The file system holding the no-op (statfs(2)'s type, by name).
    pub fs: String,
    /// The no-op's device and inode as the agent sees them: equal in two
    /// environments when they exec the very same file.
    pub dev: u64,
    pub ino: u64,
}

/// The result of one [`RunRequest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    pub metric: String,
    /// Operations timed.
    pub iterations: u64,
    /// CLOCK_MONOTONIC time of the whole measured loop, ns (what criterion's
    /// `iter_custom` receives).
    pub elapsed_ns: u64,
    /// Operations per histogram sample (see `catalog::MetricSpec`).
    pub ops_per_sample: u64,
    /// hdrhistogram V2 serialization (base64) of per-operation latency in ns,
    /// 3 significant digits; one value per sample.
    pub histogram: String,
    /// True when `max_ms` stopped the loop before `iterations`.
    pub truncated: bool,
    /// Bytes one operation moved (rates: ipc.*_bw, net.tcp_stream,
    /// mem.copy_bw); 0 for latencies.
    #[serde(default)]
    pub bytes_per_op: u64,
    /// The clock-read cost subtracted from every sample, ns.
    #[serde(default)]
    pub timer_overhead_ns: f64,
    /// The pinning really applied: the requested [`RunRequest::pin`], or
    /// `Same` when `Split` was asked but only one CPU is allowed here (a
    /// 1-vCPU guest, a cpuset) or the metric has no peer. Agents older than
    /// the field always pinned `Same`, its default.
    #[serde(default)]
    pub pinning: PinMode,
    /// The CPUs the measuring thread and its peer were pinned to: one entry
    /// when they shared one CPU, two under `Split` (measuring, peer), none
    /// when unpinned. The host side's own CPU for a `*.boundary` client.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cpus: Vec<u32>,
    /// fs.* metrics: where the bytes went and the proof that they did;
    /// `None` for every other metric.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub io: Option<IoCheck>,
    /// app.* metrics: the load that was applied (closed or open loop,
    /// connections, offered and achieved rates, the uncorrected service
    /// times of an open loop); `None` for every other metric.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load: Option<crate::app::load::LoadReport>,
}

/// What an fs.* metric did to its files, checked by the agent after the
/// timed loop: the file's size as fstat(2) shows it and the bytes read
/// back and found equal to what was written (`metrics::fs`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct IoCheck {
    /// The metric's directory as the agent saw it (under `data_dir`).
    pub dir: String,
    /// The file system holding it (statfs(2)'s type, by name: ext4,
    /// tmpfs, overlay, 9p...).
    pub fs: String,
    /// Whether the file was opened with O_DIRECT (the page cache bypassed).
    pub direct: bool,
    /// Bytes the timed operations moved (written or read).
    pub moved_bytes: u64,
    /// The test file's size after the loop (fstat(2)); 0 for metrics whose
    /// file is removed inside the operation (fs.create_unlink).
    pub file_bytes: u64,
    /// Bytes read back after the loop (or checked inside it, for the
    /// read metrics) and found equal to what was written.
    pub verified_bytes: u64,
    /// A 64-bit checksum of the bytes read back after the loop, equal to
    /// that of the bytes the agent meant to write (else the metric fails).
    pub checksum: u64,
}

/// A response from the agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Response {
    /// Sent once, unprompted, when the agent is ready.
    Ready(AgentInfo),
    Info(AgentInfo),
    Result(RunResult),
    /// Answer to `Serve`: the server is bound and accepting.
    Serving {
        /// The bound `ip:port` (the real port when 0 was asked).
        addr: String,
        /// The CPU the server thread is pinned to (as the environment's
        /// kernel numbers it); `None` when unpinned (or an older agent).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cpu: Option<u32>,
    },
    /// Answer to `Join`: the server thread ended cleanly.
    Served {
        /// Bytes the server wrote to the host side (echoes or stream).
        bytes: u64,
    },
    /// The request failed; the agent keeps serving.
    Error {
        message: String,
    },
    /// Answer to `Shutdown`.
    Bye,
    /// Answer to `AppStart`: the server accepts connections.
    AppServing {
        /// The `ip:port` it listens on (the real port when 0 was asked).
        addr: String,
        /// Its process group id as the environment numbers it.
        pgid: u32,
    },
    /// Answer to `AppStop`: how the server exited.
    AppStopped {
        status: String,
    },
    /// Answer to `Exec`.
    Executed(ExecResult),
    /// Answer to `ReadFile`: the file's text (lossily UTF-8), whole.
    File {
        text: String,
    },
    /// Not an answer: written during a `Run` that asked for marks
    /// ([`RunRequest::marks`]), at the edges of its timed loop, before the
    /// `Result`.
    Mark {
        phase: LoopPhase,
    },
}

/// Which edge of a timed loop a [`Response::Mark`] stands at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LoopPhase {
    /// Written just before the loop's clock starts.
    Begin,
    /// Written just after its clock stops.
    End,
}

/// Serializes a message as one JSON line (with the trailing newline).
pub fn to_line<T: Serialize>(msg: &T) -> String {
    let mut s = serde_json::to_string(msg).expect("protocol types always serialize");
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_pinning_mode_parses_back_and_the_error_names_every_one() {
        let e = "both".parse::<PinMode>().unwrap_err();
        for m in PinMode::ALL {
            assert_eq!(m.to_string().parse::<PinMode>(), Ok(m));
            assert!(e.contains(m.as_str()), "{e}");
        }
        assert_eq!(PinMode::default(), PinMode::Same);
    }

    #[test]
    fn the_privilege_lines_of_proc_status_are_read_as_the_kernel_writes_them() {
        let text = "Name:\tsh\nCapEff:\t00000000a80425fb\nNoNewPrivs:\t1\nSeccomp:\t2\nSeccomp_filters:\t1\nSpeculation_Store_Bypass:\tthread force mitigated\n";
        let s = SecurityStatus::parse(text);
        assert_eq!(s.cap_eff.as_deref(), Some("00000000a80425fb"));
        assert_eq!((s.no_new_privs, s.seccomp, s.seccomp_filters), (Some(true), Some(2), Some(1)));
        assert_eq!(s.speculation_store_bypass.as_deref(), Some("thread force mitigated"));
        assert_eq!(SecurityStatus::parse("Name:\tx\n"), SecurityStatus::default());
        let me = SecurityStatus::of_self().unwrap();
        assert!(me.cap_eff.is_some() && me.seccomp.is_some());
    }

    #[test]
    fn the_memory_view_reads_meminfo_and_the_agents_own_rss() {
        let meminfo = "MemTotal:         254012 kB\nMemFree:          200000 kB\nMemAvailable:     221340 kB\n";
        let v = MemoryView::parse(meminfo, "Name:\tagent\nVmRSS:\t    1234 kB\n").unwrap();
        assert_eq!((v.mem_total_kib, v.mem_available_kib, v.agent_rss_kib), (254012, 221340, Some(1234)));
        assert_eq!(MemoryView::parse("MemTotal: 1 kB\n", ""), None, "a kernel without MemAvailable");
        let me = MemoryView::of_self().unwrap();
        assert!(me.mem_available_kib <= me.mem_total_kib && me.agent_rss_kib.is_some_and(|r| r > 0), "{me:?}");
    }

    #[test]
    fn request_wire_format() {
        let r = Request::Run(RunRequest::new("syscall.getpid", 10, 5));
        let line = to_line(&r);
        assert!(line.ends_with('\n'));
        assert!(line.starts_with(r#"{"op":"run","metric":"syscall.getpid""#), "{line}");
        let back: Request = serde_json::from_str(line.trim()).unwrap();
        assert_eq!(back, r);
        let s: Request = serde_json::from_str(r#"{"op":"shutdown"}"#).unwrap();
        assert_eq!(s, Request::Shutdown);
        // warmup is optional on the wire
        let r: Request = serde_json::from_str(r#"{"op":"run","metric":"m","iterations":1,"max_ms":1}"#).unwrap();
        assert!(matches!(r, Request::Run(RunRequest { warmup: 0, target: None, cpu: None, .. })));
        let s: Request = serde_json::from_str(r#"{"op":"serve","metric":"net.tcp_rr.boundary","bind":"10.199.1.2:0"}"#).unwrap();
        assert_eq!(
            s,
            Request::Serve(ServeRequest { metric: "net.tcp_rr.boundary".into(), bind: "10.199.1.2:0".into(), cpu: None, pin: PinMode::Same })
        );
        assert_eq!(to_line(&Request::Join), "{\"op\":\"join\"}\n");
        // exec: env, cwd, root and warmup are optional on the wire
        let e: Request = serde_json::from_str(r#"{"op":"exec","argv":["true"],"runs":3}"#).unwrap();
        assert_eq!(
            e,
            Request::Exec(ExecRequest { argv: vec!["true".into()], env: vec![], cwd: None, root: None, private_root: None, runs: 3, warmup: 0 })
        );
        assert_eq!(to_line(&e), "{\"op\":\"exec\",\"argv\":[\"true\"],\"env\":[],\"runs\":3,\"warmup\":0}\n");
    }

    #[test]
    fn response_wire_format() {
        let line = to_line(&Response::Error { message: "unknown metric".into() });
        assert_eq!(line, "{\"kind\":\"error\",\"message\":\"unknown metric\"}\n");
        assert_eq!(
            to_line(&Response::Serving { addr: "10.199.1.2:4000".into(), cpu: None }),
            "{\"kind\":\"serving\",\"addr\":\"10.199.1.2:4000\"}\n"
        );
        let done = Response::Executed(ExecResult {
            path: "/bin/false".into(),
            warmup: vec![],
            runs: vec![ExecRun { ns: 500_000, status: ExitStatus { code: Some(1), signal: None } }],
        });
        assert_eq!(to_line(&done), "{\"kind\":\"executed\",\"path\":\"/bin/false\",\"runs\":[{\"ns\":500000,\"status\":{\"code\":1}}]}\n");
        let r: Response = serde_json::from_str(r#"{"kind":"bye"}"#).unwrap();
        assert_eq!(r, Response::Bye);
    }
}
