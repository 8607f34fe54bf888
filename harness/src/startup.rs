//! `env.start` side by side: how long starting an isolated `noop` takes, from
//! "start it" to "it ran and exited", through isobench's own launcher and
//! through each peer the way each is really used — runc and crun: `run` of
//! an OCI bundle in the foreground; bubblewrap and unshare(1): the command to
//! its exit — with three floors below them: a raw clone(2) into the same new
//! namespaces whose child exits at once (what the kernel alone costs), the
//! same clone whose child execs the no-op (the raw clone+exec floor
//! the launcher is held to: issue #3 asks for within 1.3× of it), and a
//! plain fork+exec of the no-op on the host (what any process start costs).
//! The no-op is `noop`, a static glibc binary, or with `--noop nolibc`
//! `noop-nolibc`, which runs no C library start-up ([`Noop`]).
//!
//! Samples are interleaved in rounds, one sample of every column per round,
//! so drift of the machine (frequency, page cache, another tenant) hits every
//! column alike, after a few warm-up rounds that are not kept (the first runc
//! pays its binary's page-ins). Each round runs the columns in a new random
//! order (a fixed seed: the same order on every run): a start leaves work
//! behind that the kernel finishes later (a network namespace is torn down
//! by a kworker, runc's exit is followed by its cgroup's removal), and in a
//! fixed order the same column would always pay for its predecessor's.
//! Preparation (a rootfs, a bundle, config.json for the next container ID) is
//! outside the timed region; each timed region is spawn → wait, nothing else,
//! except that the isobench+cgroup column removes the container's emptied
//! groups right after its timed region ([`CGROUP_METHOD`] says so in the
//! report).
//! The method follows Firecracker's boot-time test (time to the workload, on
//! the host clock) and hyperfine's (repeat, interleave, report percentiles).

use std::ffi::OsString;
use std::fs::File;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::container::{self, ContainerError, LaunchSpec, MinimalRootfs, NamespaceSet};
use crate::env::peer::{NoopStart, PeerCommand};
use crate::env::{self, EnvError, EnvKind, Options};
pub use crate::workloads::Noop;

/// Seed of the per-round column order (see the module comment).
const ORDER_SEED: u64 = 0x1503_b0c4;

/// Rounds run before the kept ones, per column.
pub const DEFAULT_WARMUP: usize = 3;
/// Kept rounds of `isobench startup` without `--n`.
pub const DEFAULT_N: usize = 50;
/// Stack of the clone floors' child, which only returns or execs.
const CLONE_STACK_SIZE: usize = 64 * 1024;
/// The floors' children share the harness's memory, and the harness waits in
/// clone(2) until the child has exec'd or exited (posix_spawn's way): no copy
/// of the harness's page tables is made or torn down, as in the launcher.
const FLOOR_CLONE_FLAGS: nix::sched::CloneFlags = nix::sched::CloneFlags::CLONE_VM.union(nix::sched::CloneFlags::CLONE_VFORK);

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Container(#[from] ContainerError),
    #[error("unknown start column {0:?}; choose from {names} (or all, peers)", names = Column::names())]
    Unknown(String),
    #[error("--n must be at least 1")]
    NoRounds,
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

/// One column of the startup table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Column {
    /// clone(2) with the container's namespace flags, child `_exit(0)`, waitpid:
    /// what creating and destroying the namespaces alone costs.
    Clone,
    /// clone(2) with the same flags, child execve(2) of the no-op
    /// (the host's copy, no rootfs), waitpid: the raw floor the launcher is
    /// held to (issue #3: within 1.3× of it).
    CloneExec,
    /// fork+exec of the no-op on the host, wait: any process start.
    Exec,
    /// isobench's launcher: clone into new namespaces, pivot_root into the
    /// minimal rootfs, /proc /dev /sys, exec the no-op, wait.
    Isobench,
    /// The same with a cgroup of its own (no limits), created before the
    /// exec and removed after the exit, as runc does for every container.
    IsobenchCgroup,
    /// A peer runtime.
    Peer(EnvKind),
    /// isobench's launcher with this namespace set instead of the options'
    /// (the per-namespace breakdown).
    IsobenchWith(NamespaceSet),
}

impl Column {
    /// Every column, in table order.
    pub fn all() -> Vec<Column> {
        let mut v = vec![Column::Clone, Column::CloneExec, Column::Exec, Column::Isobench, Column::IsobenchCgroup];
        v.extend(EnvKind::PEERS.map(Column::Peer));
        v
    }

    pub fn name(self) -> String {
        match self {
            Column::Clone => "clone".into(),
            Column::CloneExec => "clone+exec".into(),
            Column::Exec => "exec".into(),
            Column::Isobench => "isobench".into(),
            Column::IsobenchCgroup => "isobench+cgroup".into(),
            Column::Peer(k) => k.as_str().into(),
            Column::IsobenchWith(set) => format!("isobench[{set}]"),
        }
    }

    pub fn names() -> String {
        Column::all().iter().map(|c| c.name()).collect::<Vec<_>>().join(", ")
    }

    /// A comma list of names, `all`, or `peers` (also `container` for
    /// `isobench`).
    pub fn parse_list(s: &str) -> Result<Vec<Column>, StartupError> {
        let mut out: Vec<Column> = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let cols = match part {
                "all" => Column::all(),
                "peers" => EnvKind::PEERS.map(Column::Peer).to_vec(),
                "container" => vec![Column::Isobench],
                _ => vec![Column::all().into_iter().find(|c| c.name() == part).ok_or_else(|| StartupError::Unknown(part.to_string()))?],
            };
            for c in cols {
                if !out.contains(&c) {
                    out.push(c);
                }
            }
        }
        if out.is_empty() {
            return Err(StartupError::Unknown(s.to_string()));
        }
        Ok(out)
    }
}

/// One column's samples.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct StartupRow {
    /// Column name: clone, clone+exec, exec, isobench, isobench+cgroup, runc, crun, bwrap, unshare.
    pub env: String,
    /// With caveats, e.g. `crun (cgroups disabled)`.
    pub label: String,
    /// What one sample runs.
    pub command: String,
    /// Start-to-exit times, ns, in the order measured.
    pub samples_ns: Vec<u64>,
}

impl StartupRow {
    /// Quantile `q` (0..=1) of the samples, ns (nearest rank).
    pub fn quantile_ns(&self, q: f64) -> u64 {
        let mut v = self.samples_ns.clone();
        v.sort_unstable();
        if v.is_empty() {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * v.len() as f64).ceil() as usize).clamp(1, v.len());
        v[rank - 1]
    }

    /// 95 % confidence interval of the median, ns: the samples at ranks
    /// n/2 ∓ 1.96·√n/2 (distribution-free, the binomial argument; J.-Y. Le
    /// Boudec, *Performance Evaluation of Computer and Communication
    /// Systems*, 2010, Thm. 2.1 — as `isobench compare`, here from the exact
    /// samples so it agrees with [`quantile_ns`](Self::quantile_ns)). With
    /// fewer than ~10 samples it is the whole range.
    pub fn median_ci_ns(&self) -> (u64, u64) {
        let mut v = self.samples_ns.clone();
        v.sort_unstable();
        if v.is_empty() {
            return (0, 0);
        }
        let n = v.len() as f64;
        let d = 1.96 * n.sqrt() / 2.0;
        let at = |rank: f64| v[(rank.clamp(1.0, n) as usize) - 1];
        (at((n / 2.0 - d).floor()), at((n / 2.0 + d).ceil()))
    }

    /// The samples as an hdrhistogram (ns, 3 significant digits), as the
    /// agent's metrics are recorded.
    pub fn histogram(&self) -> Histogram<u64> {
        let mut h = isobench_workloads::hist::new_ns();
        for &s in &self.samples_ns {
            // `record`, not `saturating_record`: only record grows an
            // auto-resizing histogram (saturating would clamp at its start).
            h.record(s.max(1)).expect("an auto-resizing histogram takes any value");
        }
        h
    }
}

/// One namespace set's start cost in a per-namespace run (ms).
struct NamespaceCost {
    label: String,
    p50: f64,
    p90: f64,
    /// 95 % confidence interval of the p50: distribution-free, the order
    /// statistics at ranks n/2 ± 1.96·√n/2, as `isobench compare` judges
    /// changes ([`crate::report::compare::median_ci`]).
    ci: (f64, f64),
    /// p50 − the `none` row's p50, and whether that is within noise (the two
    /// intervals overlap); `None` for the `none` row itself or without one.
    over_none: Option<(f64, bool)>,
}

/// A whole `isobench startup` run.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct StartupRun {
    /// Kept rounds (samples per row).
    pub n: usize,
    /// The namespaces of the clone floors, isobench and the OCI/bwrap peers
    /// (`user,pid,…`); `None` in a per-namespace run, where each row has its
    /// own, and in files written before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespaces: Option<String>,
    pub warmup: usize,
    /// The no-op every column ran; files written before it was recorded ran
    /// the static one.
    #[serde(default)]
    pub noop: Noop,
    /// One CPUID's cost on this host before the rounds, ns
    /// ([`crate::collect::host::cpuid_ns`]): where it exits to a hypervisor
    /// the static no-op's own start-up is slow (see [`Noop::Static`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpuid_ns: Option<f64>,
    pub rows: Vec<StartupRow>,
    /// Columns that could not run here: (name, one line why).
    pub skipped: Vec<(String, String)>,
}

impl StartupRun {
    pub fn row(&self, env: &str) -> Option<&StartupRow> {
        self.rows.iter().find(|r| r.env == env)
    }

    /// `env`'s quantile `q` over `base`'s (e.g. runc's p50 / isobench's p50).
    pub fn ratio(&self, env: &str, base: &str, q: f64) -> Option<f64> {
        let (a, b) = (self.row(env)?.quantile_ns(q), self.row(base)?.quantile_ns(q));
        (b > 0).then(|| a as f64 / b as f64)
    }

    /// The same table for report.md: one row per column with p50, p90 (ms)
    /// and the p50 ratios to isobench's launcher and to the clone floor,
    /// then the skipped columns and their reasons.
    pub fn markdown(&self) -> String {
        let ms = |ns: u64| ns as f64 / 1e6;
        let ratio = |env: &str, base: &str| self.ratio(env, base, 0.5).map_or("–".to_string(), |r| format!("{r:.2}×"));
        let mut s = format!(
            "env.start: host-side time from starting a no-op isolated to its exit, {} interleaved rounds after {} warm-up (the columns in a new random order each round, so none always follows the same one); lower is better. The no-op: {}.\n\n",
            self.n,
            self.warmup,
            self.noop.describe()
        );
        s += "The two clone floors run their child in the harness's memory until it exits or execs (CLONE_VM|CLONE_VFORK, as \
              posix_spawn(3) does, and as isobench's launcher runs its child with CLONE_VM), so neither pays for a copy of the harness's \
              page tables; exec (host) is Rust's Command, which uses posix_spawn too. They are floors for the columns here only: the \
              harness process is larger than the agent whose spawn.fork_exit / spawn.fork_exec they resemble.\n\n";
        s += CGROUP_METHOD;
        s += "\n\n| env | what runs | p50 ms | p90 ms | p50 / isobench | p50 / clone floor | p50 / clone+exec floor |\n|---|---|---:|---:|---:|---:|---:|\n";
        for r in &self.rows {
            s += &format!(
                "| {} | `{}` | {:.3} | {:.3} | {} | {} | {} |\n",
                r.label,
                r.command.replace('|', "\\|"),
                ms(r.quantile_ns(0.5)),
                ms(r.quantile_ns(0.9)),
                ratio(&r.env, "isobench"),
                ratio(&r.env, "clone"),
                ratio(&r.env, "clone+exec")
            );
        }
        for (env, why) in &self.skipped {
            s += &format!("\n- {env}: skipped: {why}");
        }
        if !self.skipped.is_empty() {
            s += "\n";
        }
        if let Some(note) = self.cpuid_note() {
            s += &format!("\nNote: {note}.\n");
        }
        s
    }

    /// One line when this host's CPUID exits to a hypervisor and the run used
    /// the static no-op, whose libc start-up then weighs on every column.
    pub fn cpuid_note(&self) -> Option<String> {
        use crate::collect::host::{start_cpuid_us, GLIBC_START_CPUIDS, START_CPUID_CAVEAT_US};
        let ns = self.cpuid_ns.filter(|&ns| start_cpuid_us(ns) >= START_CPUID_CAVEAT_US && self.noop == Noop::Static)?;
        Some(format!(
            "CPUID costs {:.1} µs here (it exits to the hypervisor): the static no-op's {GLIBC_START_CPUIDS} CPUIDs add ≈{:.2} ms to \
             every column that execs it, which pulls every ratio towards 1 (the peers, glibc programs themselves, pay them in their \
             own start too, with either no-op); `--noop nolibc` measures without them",
            ns / 1e3,
            start_cpuid_us(ns) / 1e3
        ))
    }

    /// The table `isobench startup` prints.
    pub fn table(&self) -> String {
        let ms = |ns: u64| ns as f64 / 1e6;
        let ratio = |env: &str, base: &str| self.ratio(env, base, 0.5).map_or("-".to_string(), |r| format!("{r:.2}×"));
        let mut s = format!("env.start: start to exit of a no-op, {} interleaved rounds in random order (+{} warm-up)\n", self.n, self.warmup);
        s += &format!("no-op: {}\n", self.noop.describe());
        if let Some(ns) = &self.namespaces {
            s += &format!("namespaces: {ns} (unshare: pid,mnt,net,uts,ipc,cgroup)\n");
        }
        s += &format!("{:<26} {:>9} {:>9} {:>12} {:>9} {:>14}\n", "env", "p50 ms", "p90 ms", "vs isobench", "vs clone", "vs clone+exec");
        for r in &self.rows {
            s += &format!(
                "{:<26} {:>9.3} {:>9.3} {:>12} {:>9} {:>14}\n",
                r.label,
                ms(r.quantile_ns(0.5)),
                ms(r.quantile_ns(0.9)),
                ratio(&r.env, "isobench"),
                ratio(&r.env, "clone"),
                ratio(&r.env, "clone+exec")
            );
        }
        for (env, why) in &self.skipped {
            s += &format!("{env}: skipped: {why}\n");
        }
        if let Some(note) = self.cpuid_note() {
            s += &format!("note: {note}\n");
        }
        s
    }
}

/// What the isobench+cgroup column times and what it leaves out, for the
/// report.
pub const CGROUP_METHOD: &str = "isobench+cgroup times creating the container's groups (one per cgroup v1 hierarchy used, or one v2 group), \
placing the init in them before it execs, and the container's run to its reaped exit. Removing the emptied groups (rmdir) and reading \
their usage happen after the timed region, before the next sample starts: nothing outlives the run. On v1 and hybrid hosts the \
groups are made while the init sets up its mounts and the init moves itself in (0 written to each hierarchy's tasks file), which \
the kernel does without its global cgroup_threadgroup_rwsem. On v2 the group is made first and the init is cloned into it \
(clone3 with CLONE_INTO_CGROUP, Linux 5.7, x86-64). Only where neither applies does isobench write the init's pid into cgroup.procs, \
which takes that rwsem for writing and, when no move happened for a while, first waits for an RCU grace period (several ms) unless \
the kernel was booted with cgroup_favordynmods=true or built with CONFIG_CGROUP_FAVOR_DYNMODS, or the cgroup2 is mounted with \
favordynmods; isobench does not change the host's settings.";

/// One column ready to be sampled.
struct Starter {
    row: StartupRow,
    kind: StarterKind,
}

enum StarterKind {
    Clone { flags: nix::sched::CloneFlags, stack: Vec<u8> },
    CloneExec { flags: nix::sched::CloneFlags, stack: Vec<u8>, exec: ExecArgs },
    Exec { noop: PathBuf },
    Isobench { spec: Box<LaunchSpec>, _rootfs: MinimalRootfs },
    Peer { env: Box<dyn NoopStart>, noop: Noop, log: PathBuf, _dir: tempfile::TempDir },
}

/// execve(2) arguments of the clone+exec floor, prepared before the clone.
struct ExecArgs {
    path: std::ffi::CString,
    argv: [*const libc::c_char; 2],
    envp: [*const libc::c_char; 1],
}

impl ExecArgs {
    fn new(noop: &std::path::Path) -> Result<ExecArgs, StartupError> {
        use std::os::unix::ffi::OsStrExt;
        let path = std::ffi::CString::new(noop.as_os_str().as_bytes())
            .map_err(|_| StartupError::Io { context: format!("{}", noop.display()), source: std::io::Error::other("NUL in path") })?;
        let argv = [path.as_ptr(), std::ptr::null()];
        Ok(ExecArgs { path, argv, envp: [std::ptr::null()] })
    }

    /// In the cloned child: execve, or exit 127.
    fn exec(&self) -> isize {
        // SAFETY: path, argv and envp are NUL-terminated and null-terminated,
        // owned by self (argv[0] points into `path`, whose heap buffer does
        // not move with the struct); _exit(2) is async-signal-safe.
        unsafe {
            libc::execve(self.path.as_ptr(), self.argv.as_ptr(), self.envp.as_ptr());
            libc::_exit(127)
        }
    }
}

fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> StartupError {
    let context = context.into();
    move |source| StartupError::Io { context, source }
}

fn devnull() -> Result<File, StartupError> {
    File::options().read(true).write(true).open("/dev/null").map_err(io_err("open /dev/null"))
}

impl Starter {
    /// One sample: ns from spawn to reaped exit, or why it failed.
    fn sample(&mut self) -> Result<u64, String> {
        match &mut self.kind {
            StarterKind::Clone { flags, stack } => {
                let t0 = Instant::now();
                // SAFETY: the child runs only the closure, which returns at
                // once (the child exits with 0) on its own stack; CLONE_VFORK
                // holds us in clone(2) until then, so the boxed closure it
                // shares with us stays alive and nothing else runs on it.
                let pid = unsafe { nix::sched::clone(Box::new(|| 0), stack, *flags, Some(libc::SIGCHLD)) }.map_err(|e| format!("clone: {e}"))?;
                nix::sys::wait::waitpid(pid, None).map_err(|e| format!("waitpid: {e}"))?;
                Ok(t0.elapsed().as_nanos() as u64)
            }
            StarterKind::CloneExec { flags, stack, exec } => {
                let t0 = Instant::now();
                // SAFETY: the child only calls execve(2) with C strings and
                // pointer arrays prepared before the clone, then _exit(2) if
                // that failed: no allocation, no lock. It runs in our memory
                // on its own stack, and CLONE_VFORK holds us in clone(2) until
                // it has exec'd or exited, so what it reads stays alive.
                let pid =
                    unsafe { nix::sched::clone(Box::new(|| exec.exec()), stack, *flags, Some(libc::SIGCHLD)) }.map_err(|e| format!("clone: {e}"))?;
                let status = nix::sys::wait::waitpid(pid, None).map_err(|e| format!("waitpid: {e}"))?;
                let ns = t0.elapsed().as_nanos() as u64;
                match status {
                    nix::sys::wait::WaitStatus::Exited(_, 0) => Ok(ns),
                    other => Err(format!("clone+exec of {:?} ended with {other:?}", exec.path)),
                }
            }
            StarterKind::Exec { noop } => {
                let t0 = Instant::now();
                let status =
                    Command::new(&*noop).stdin(Stdio::null()).stdout(Stdio::null()).status().map_err(|e| format!("exec {}: {e}", noop.display()))?;
                let ns = t0.elapsed().as_nanos() as u64;
                status.success().then_some(ns).ok_or_else(|| format!("noop exited with {status}"))
            }
            StarterKind::Isobench { spec, .. } => {
                let null = devnull().map_err(|e| e.to_string())?;
                let stdio = container::Stdio { stdin: Some(null.as_fd()), stdout: Some(null.as_fd()) };
                let t0 = Instant::now();
                let mut p = container::spawn(spec, stdio).map_err(|e| e.to_string())?;
                let status = p.wait_exit().map_err(|e| e.to_string())?;
                let ns = t0.elapsed().as_nanos() as u64;
                // After the timed region (see CGROUP_METHOD): the emptied group goes.
                p.release_cgroup().map_err(|e| e.to_string())?;
                (status == 0).then_some(ns).ok_or_else(|| format!("noop exited with status {status}"))
            }
            StarterKind::Peer { env, noop, log, .. } => {
                let PeerCommand { mut cmd, cleanup } = env.noop_command(*noop).map_err(|e| e.to_string())?;
                let err = File::create(&*log).map_err(|e| format!("create {}: {e}", log.display()))?;
                cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(err);
                let t0 = Instant::now();
                let status = crate::process::spawn_agent(&mut cmd).and_then(|mut c| c.wait());
                let ns = t0.elapsed().as_nanos() as u64;
                if let Some(c) = cleanup {
                    c();
                }
                match status {
                    Ok(s) if s.success() => Ok(ns),
                    Ok(s) => Err(format!("{} ({s})", crate::env::peer::stderr_tail(log))),
                    Err(e) => Err(format!("spawn {}: {e}", cmd.get_program().to_string_lossy())),
                }
            }
        }
    }
}

fn describe(cmd: &Command) -> String {
    std::iter::once(cmd.get_program()).chain(cmd.get_args()).map(|a| a.to_string_lossy().into_owned()).collect::<Vec<_>>().join(" ")
}

fn prepare_peer(kind: EnvKind, opts: &Options) -> Result<(Box<dyn NoopStart>, String), EnvError> {
    Ok(match kind {
        EnvKind::Runc | EnvKind::Crun => {
            let e = if kind == EnvKind::Runc { env::runc::prepare(opts)? } else { env::crun::prepare(opts)? };
            let label = env::Environment::label(&e);
            (Box::new(e), label)
        }
        EnvKind::Bwrap => (Box::new(env::bwrap::prepare(opts)?), "bwrap".into()),
        EnvKind::Unshare => (Box::new(env::unshare::prepare(opts)?), "unshare".into()),
        other => return Err(EnvError::Unavailable { env: other.as_str(), reason: "not a peer runtime".into() }),
    })
}

/// Measures `columns` (`n` kept rounds after `warmup`), interleaved.
/// `progress` gets one line per step. A column that cannot run here, or
/// fails during the run, lands in `skipped` with its reason; only isobench's
/// own launcher failing to prepare is an error.
///
/// Every column execs the `noop_kind` no-op: the floors and unshare(1) the
/// host's copy, the launcher, the OCI bundles and bwrap the copy at the root
/// of their rootfs (`/noop` or `/noop-nolibc`, both always installed there).
pub fn measure(
    columns: &[Column],
    opts: &Options,
    noop_kind: Noop,
    n: usize,
    warmup: usize,
    progress: &mut dyn FnMut(&str),
) -> Result<StartupRun, StartupError> {
    if n == 0 {
        return Err(StartupError::NoRounds);
    }
    container::require_root()?;
    // Before the rounds, so that it is the host the rounds start on.
    let cpuid_ns = crate::collect::host::cpuid_ns();
    let host_noop = noop_kind.path(&opts.workloads);
    let namespaces = opts.container.namespaces.unwrap_or(NamespaceSet::DEFAULT);
    let noop = format!("/{}", noop_kind.name_in_rootfs());
    let mut starters = Vec::new();
    let mut skipped = Vec::new();
    progress(&format!("no-op: {}", noop_kind.describe()));
    for &col in columns {
        let row = |label: String, command: String| StartupRow { env: col.name(), label, command, samples_ns: Vec::with_capacity(n) };
        match col {
            Column::Clone => starters.push(Starter {
                row: row("clone+_exit (floor)".into(), format!("clone({}) + _exit + waitpid", namespaces.names().join(","))),
                kind: StarterKind::Clone { flags: namespaces.clone_flags() | FLOOR_CLONE_FLAGS, stack: vec![0u8; CLONE_STACK_SIZE] },
            }),
            Column::CloneExec => starters.push(Starter {
                row: row("clone+exec (floor)".into(), format!("clone({}) + execve {} + waitpid", namespaces.names().join(","), host_noop.display())),
                kind: StarterKind::CloneExec {
                    flags: namespaces.clone_flags() | FLOOR_CLONE_FLAGS,
                    stack: vec![0u8; CLONE_STACK_SIZE],
                    exec: ExecArgs::new(host_noop)?,
                },
            }),
            Column::Exec => starters.push(Starter {
                row: row("exec (host)".into(), format!("fork+exec {} + wait", host_noop.display())),
                kind: StarterKind::Exec { noop: host_noop.to_path_buf() },
            }),
            Column::Isobench | Column::IsobenchCgroup | Column::IsobenchWith(_) => {
                let namespaces = if let Column::IsobenchWith(set) = col { set } else { namespaces };
                let rootfs = MinimalRootfs::build(&opts.workloads).map_err(ContainerError::from)?;
                let root = rootfs.path().canonicalize().map_err(io_err("canonicalize the rootfs"))?;
                let mut spec = LaunchSpec::new(namespaces, &root, &[OsString::from(&noop)], Some(&container::default_hostname()))?;
                let mut what = format!("isobench launcher ({})", namespaces.names().join(","));
                if col == Column::IsobenchCgroup {
                    if container::cgroup::cgroup_mode() == container::cgroup::CgroupMode::None {
                        skipped.push((col.name(), "no cgroup fs mounted at /sys/fs/cgroup".to_string()));
                        continue;
                    }
                    spec = spec.with_cgroup(container::cgroup::Limits::default());
                    what += " + a cgroup";
                }
                starters.push(Starter {
                    row: row(if let Column::IsobenchWith(set) = col { set.to_string() } else { col.name() }, format!("{what} {noop}")),
                    kind: StarterKind::Isobench { spec: Box::new(spec), _rootfs: rootfs },
                });
            }
            Column::Peer(kind) => match prepare_peer(kind, opts) {
                Ok((mut e, label)) => {
                    let command = match e.noop_command(noop_kind) {
                        Ok(PeerCommand { cmd, cleanup }) => {
                            let mut d = describe(&cmd);
                            // An OCI runtime's command line names the bundle,
                            // whose config.json names the no-op.
                            if !d.contains(noop.as_str()) {
                                d += &format!(" (process: {noop})");
                            }
                            if let Some(c) = cleanup {
                                c();
                            }
                            d
                        }
                        Err(err) => {
                            skipped.push((kind.as_str().to_string(), err.to_string()));
                            continue;
                        }
                    };
                    let dir =
                        tempfile::Builder::new().prefix(&crate::leftovers::temp_prefix("startup")).tempdir().map_err(io_err("create a temp dir"))?;
                    let log = dir.path().join("stderr.log");
                    starters.push(Starter { row: row(label, command), kind: StarterKind::Peer { env: e, noop: noop_kind, log, _dir: dir } });
                }
                Err(err) => {
                    let why = match err {
                        EnvError::Unavailable { reason, .. } => reason,
                        other => other.to_string(),
                    };
                    progress(&format!("{}: skipped: {why}", kind.as_str()));
                    skipped.push((kind.as_str().to_string(), why));
                }
            },
        }
    }
    progress(&format!("{} columns, {n} rounds (+{warmup} warm-up), interleaved in random order", starters.len()));
    let mut rng = fastrand::Rng::with_seed(ORDER_SEED);
    for round in 0..warmup + n {
        let mut failed = Vec::new();
        let mut order: Vec<usize> = (0..starters.len()).collect();
        rng.shuffle(&mut order);
        for i in order {
            let s = &mut starters[i];
            match s.sample() {
                Ok(ns) if round >= warmup => s.row.samples_ns.push(ns),
                Ok(_) => {}
                Err(why) => failed.push((i, why)),
            }
        }
        // A column that fails once is dropped (with its reason): the others go on.
        failed.sort_by_key(|(i, _)| *i);
        for (i, why) in failed.into_iter().rev() {
            let s = starters.remove(i);
            progress(&format!("{}: failed: {why}", s.row.env));
            skipped.push((s.row.env, format!("failed: {why}")));
        }
        if (round + 1) % 10 == 0 {
            progress(&format!("round {}/{}", round + 1, warmup + n));
        }
    }
    let namespaces = columns.iter().all(|c| !matches!(c, Column::IsobenchWith(_))).then(|| namespaces.names().join(","));
    Ok(StartupRun { n, warmup, namespaces, noop: noop_kind, cpuid_ns, rows: starters.into_iter().map(|s| s.row).collect(), skipped })
}

/// The peer column with the lowest p50 in `run`, if any ran.
pub fn fastest_peer(run: &StartupRun) -> Option<&StartupRow> {
    let peers: Vec<&str> = EnvKind::PEERS.iter().map(|k| k.as_str()).collect();
    run.rows.iter().filter(|r| peers.contains(&r.env.as_str())).min_by_key(|r| r.quantile_ns(0.5))
}

/// The report's side-by-side of a run with the static no-op and one with
/// `noop-nolibc` (two runs, one after the other, so drift between them is
/// not cancelled as it is within a run; the `clone` row, which execs
/// nothing, shows how large that drift was): each column's p50 with both,
/// their difference (what the static no-op's own start adds to that column),
/// and the launcher's ratios to the floor and to the fastest peer with each.
/// Runs with different namespaces are not compared: one line says so.
pub fn noop_share_markdown(with_static: &StartupRun, with_nolibc: &StartupRun) -> String {
    let mut s = String::from("\n## What the no-op's own start adds\n\n");
    if with_static.namespaces != with_nolibc.namespaces {
        let ns = |r: &StartupRun| r.namespaces.clone().unwrap_or_else(|| "not recorded".into());
        s += &format!(
            "Not compared: the two runs have different namespaces (static no-op: {}; noop-nolibc: {}). Run both with the same --ns.\n",
            ns(with_static),
            ns(with_nolibc)
        );
        return s;
    }
    let ms = |r: &StartupRow| r.quantile_ns(0.5) as f64 / 1e6;
    s += "The same columns once with the static glibc `noop` and once with `noop-nolibc` (two runs, one after the other; the clone \
          floor execs nothing, so its difference is the drift between the runs). The difference is the static no-op's own start-up, \
          which every column pays alike; where CPUID exits to a hypervisor (`cpuid_ns` in run.json and startup.json) it can be most \
          of a start, and it pulls every ratio towards 1. The peers are themselves glibc programs (runc a Go one): their own start-up \
          is in their columns with either no-op, so their ratios to isobench, which starts from a running process, depend on the \
          host as much as on the isolation.\n\n\
          | env | p50 ms, static noop | p50 ms, noop-nolibc | difference ms |\n|---|---:|---:|---:|\n";
    for a in &with_static.rows {
        if let Some(b) = with_nolibc.row(&a.env) {
            s += &format!("| {} | {:.3} | {:.3} | {:+.3} |\n", a.label, ms(a), ms(b), ms(a) - ms(b));
        }
    }
    let ratio = |run: &StartupRun, env: &str, base: &str| run.ratio(env, base, 0.5).map_or("–".to_string(), |r| format!("{r:.2}×"));
    let peer = |run: &StartupRun| {
        fastest_peer(run).and_then(|p| Some(format!("{:.2}× ({})", run.ratio(&p.env, "isobench", 0.5)?, p.label))).unwrap_or_else(|| "–".into())
    };
    s += "\n| ratio of p50s | static noop | noop-nolibc |\n|---|---:|---:|\n";
    s += &format!(
        "| isobench / clone+exec floor | {} | {} |\n",
        ratio(with_static, "isobench", "clone+exec"),
        ratio(with_nolibc, "isobench", "clone+exec")
    );
    s += &format!(
        "| isobench+cgroup / clone+exec floor | {} | {} |\n",
        ratio(with_static, "isobench+cgroup", "clone+exec"),
        ratio(with_nolibc, "isobench+cgroup", "clone+exec")
    );
    s += &format!("| fastest peer / isobench | {} | {} |\n", peer(with_static), peer(with_nolibc));
    s
}

/// The per-namespace cost breakdown of isobench's launcher: start-to-exit of
/// the `noop` no-op with no namespace, with each namespace alone (in
/// [`container::ns::CREATION_ORDER`]), and with all of them, interleaved
/// round by round like every startup column.
pub fn per_namespace(opts: &Options, noop: Noop, n: usize, warmup: usize, progress: &mut dyn FnMut(&str)) -> Result<StartupRun, StartupError> {
    let mut columns = vec![Column::IsobenchWith(NamespaceSet::NONE)];
    for ns in container::ns::CREATION_ORDER {
        let mut one = NamespaceSet::NONE;
        one.insert(ns);
        columns.push(Column::IsobenchWith(one));
    }
    columns.push(Column::IsobenchWith(NamespaceSet::all()));
    measure(&columns, opts, noop, n, warmup, progress)
}

impl StartupRun {
    /// One [`NamespaceCost`] per row, compared with the row `none`.
    fn per_namespace_rows(&self) -> Vec<NamespaceCost> {
        let ms = |ns: f64| ns / 1e6;
        let ci = |r: &StartupRow| {
            let (lo, hi) = r.median_ci_ns();
            (ms(lo as f64), ms(hi as f64))
        };
        let base = self.rows.iter().find(|r| r.label == "none").map(|r| (ms(r.quantile_ns(0.5) as f64), ci(r)));
        self.rows
            .iter()
            .map(|r| {
                let (p50, interval) = (ms(r.quantile_ns(0.5) as f64), ci(r));
                let over_none = base.filter(|_| r.label != "none").map(|(b, (blo, bhi))| (p50 - b, interval.0 <= bhi && blo <= interval.1));
                NamespaceCost { label: r.label.clone(), p50, p90: ms(r.quantile_ns(0.9) as f64), ci: interval, over_none }
            })
            .collect()
    }

    /// The per-namespace table for report.md: each set's p50/p90, the p50's
    /// confidence interval and its cost over no namespace at all.
    pub fn per_namespace_markdown(&self) -> String {
        let mut s = format!(
            "isobench's launcher starting a no-op with one namespace at a time; {} interleaved rounds in random order after {} warm-up. The no-op: {}.\n\n\
             | namespaces | p50 ms | p50 95 % CI | p90 ms | p50 − no namespace (ms) |\n|---|---:|---:|---:|---:|\n",
            self.n,
            self.warmup,
            self.noop.describe()
        );
        for NamespaceCost { label, p50, p90, ci: (lo, hi), over_none } in self.per_namespace_rows() {
            let delta = over_none.map_or("–".to_string(), |(d, noise)| format!("{d:+.3}{}", if noise { " ≈" } else { "" }));
            s += &format!("| {label} | {p50:.3} | {lo:.3}–{hi:.3} | {p90:.3} | {delta} |\n");
        }
        s += "\n≈: within noise, the 95 % confidence intervals of this median and of no namespace's overlap (distribution-free, \
              from the order statistics at ranks n/2 ± 1.96·√n/2; with fewer than ~10 rounds an interval is the whole range).\n";
        for (what, why) in &self.skipped {
            s += &format!("\n- {what}: skipped: {why}");
        }
        s
    }

    /// The same as a plain table, as `isobench startup --per-namespace`
    /// prints it.
    pub fn per_namespace_table(&self) -> String {
        let mut s =
            format!("env.start per namespace: start to exit of a no-op, {} interleaved rounds in random order (+{} warm-up)\n", self.n, self.warmup);
        s += &format!("no-op: {}\n", self.noop.describe());
        s += &format!("{:<34} {:>9} {:>15} {:>9} {:>14}\n", "namespaces", "p50 ms", "p50 95% CI", "p90 ms", "Δ vs none (ms)");
        for NamespaceCost { label, p50, p90, ci: (lo, hi), over_none } in self.per_namespace_rows() {
            let delta = over_none.map_or("-".to_string(), |(d, noise)| format!("{d:+.3}{}", if noise { " ~" } else { "  " }));
            s += &format!("{label:<34} {p50:>9.3} {:>15} {p90:>9.3} {delta:>14}\n", format!("{lo:.3}-{hi:.3}"));
        }
        s += "~: within noise (the two medians' 95% confidence intervals overlap; with fewer than ~10 rounds an interval is the whole range)\n";
        for (what, why) in &self.skipped {
            s += &format!("{what}: skipped: {why}\n");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(label: &str, samples_ns: Vec<u64>) -> StartupRow {
        StartupRow { env: label.into(), label: label.into(), command: String::new(), samples_ns }
    }

    /// 200 samples spread evenly over [base, base + 100 µs).
    fn spread(base: u64) -> Vec<u64> {
        (0..200).map(|i| base + i * 500).collect()
    }

    #[test]
    fn a_rows_histogram_keeps_its_values() {
        let r = row("x", spread(1_000_000));
        let h = r.histogram();
        assert_eq!(h.len(), 200);
        let p50 = h.value_at_quantile(0.5) as f64;
        assert!((p50 - r.quantile_ns(0.5) as f64).abs() / p50 < 0.002, "{p50} vs {}", r.quantile_ns(0.5));
        // Ranks 100 ∓ 13.9: samples 86 and 114 (1-based), inside p10..p90.
        let (lo, hi) = r.median_ci_ns();
        assert_eq!((lo, hi), (1_000_000 + 85 * 500, 1_000_000 + 113 * 500));
        assert!(lo >= r.quantile_ns(0.1) && hi <= r.quantile_ns(0.9));
        let few = row("x", vec![5, 1, 3]);
        assert_eq!(few.median_ci_ns(), (1, 5), "three samples: the whole range");
    }

    #[test]
    fn per_namespace_deltas_say_when_they_are_within_noise() {
        let run = StartupRun {
            n: 200,
            warmup: 3,
            namespaces: None,
            noop: Noop::Static,
            cpuid_ns: None,
            rows: vec![row("none", spread(1_000_000)), row("uts", spread(1_001_000)), row("net", spread(1_400_000))],
            skipped: vec![],
        };
        let rows = run.per_namespace_rows();
        let delta = |label: &str| rows.iter().find(|r| r.label == label).unwrap().over_none.unwrap();
        assert!(rows[0].over_none.is_none(), "none is not compared with itself");
        assert!(delta("uts").1, "1 µs over a 100 µs spread is noise");
        let (d, noise) = delta("net");
        assert!(!noise && (d - 0.4).abs() < 0.001, "{d}");
        let table = run.per_namespace_table();
        assert!(table.lines().any(|l| l.starts_with("uts") && l.trim_end().ends_with('~')), "{table}");
        assert!(table.lines().any(|l| l.starts_with("none") && l.trim_end().ends_with(" -")), "{table}");
        assert!(table.lines().any(|l| l.starts_with("net") && l.contains("+0.400") && !l.trim_end().ends_with('~')), "{table}");
        let md = run.per_namespace_markdown();
        assert!(md.contains("| uts | 1.050 |") && md.contains(" ≈ |"), "{md}");
    }

    fn run_of(noop: Noop, namespaces: Option<&str>, rows: Vec<StartupRow>) -> StartupRun {
        StartupRun { n: 200, warmup: 3, namespaces: namespaces.map(str::to_string), noop, cpuid_ns: None, rows, skipped: vec![] }
    }

    #[test]
    fn a_startup_file_from_before_the_noop_was_recorded_ran_the_static_one() {
        let old = r#"{"n":2,"namespaces":"pid,mnt","warmup":1,"rows":[{"env":"isobench","label":"isobench","command":"/noop","samples_ns":[1,2]}],"skipped":[]}"#;
        let run: StartupRun = serde_json::from_str(old).unwrap();
        assert_eq!((run.noop, run.cpuid_ns), (Noop::Static, None));
        let json = serde_json::to_value(run_of(Noop::Nolibc, None, vec![])).unwrap();
        assert_eq!(json["noop"], "nolibc");
        assert_eq!("nolibc".parse::<Noop>(), Ok(Noop::Nolibc));
        assert_eq!("glibc".parse::<Noop>().unwrap_err(), "unknown no-op \"glibc\"; use static (glibc, the default) or nolibc");
    }

    #[test]
    fn the_side_by_side_subtracts_per_column_and_refuses_other_namespaces() {
        let rows = |floor: u64, iso: u64, unshare: u64| {
            vec![
                row("clone+exec", spread(floor)),
                row("isobench", spread(iso)),
                StartupRow { env: "unshare".into(), label: "unshare".into(), command: String::new(), samples_ns: spread(unshare) },
            ]
        };
        let a = run_of(Noop::Static, Some("user,pid"), rows(1_800_000, 2_200_000, 4_200_000));
        let b = run_of(Noop::Nolibc, Some("user,pid"), rows(800_000, 1_200_000, 3_200_000));
        let md = noop_share_markdown(&a, &b);
        // The p50 of each row is its base + 49.5 µs: every difference is 1 ms.
        let p50 = |base: u64| (base + 49_500) as f64 / 1e6;
        assert!(md.contains(&format!("| isobench | {:.3} | {:.3} | +1.000 |", p50(2_200_000), p50(1_200_000))), "{md}");
        assert!(md.contains(&format!("| clone+exec | {:.3} | {:.3} | +1.000 |", p50(1_800_000), p50(800_000))), "{md}");
        let ratio = |a: u64, b: u64| p50(a) / p50(b);
        assert!(
            md.contains(&format!("| isobench / clone+exec floor | {:.2}× | {:.2}× |", ratio(2_200_000, 1_800_000), ratio(1_200_000, 800_000))),
            "{md}"
        );
        assert!(
            md.contains(&format!(
                "| fastest peer / isobench | {:.2}× (unshare) | {:.2}× (unshare) |",
                ratio(4_200_000, 2_200_000),
                ratio(3_200_000, 1_200_000)
            )),
            "{md}"
        );
        let other = run_of(Noop::Nolibc, Some("pid"), rows(800_000, 1_200_000, 3_200_000));
        let md = noop_share_markdown(&a, &other);
        assert!(md.contains("Not compared") && !md.contains("| isobench |"), "{md}");
    }

    #[test]
    fn the_cpuid_note_needs_a_static_run_on_a_host_whose_cpuid_exits() {
        let mut run = run_of(Noop::Static, None, vec![]);
        run.cpuid_ns = Some(40.0);
        assert_eq!(run.cpuid_note(), None, "native CPUID");
        run.cpuid_ns = Some(10_000.0);
        let note = run.cpuid_note().unwrap();
        assert!(note.starts_with("CPUID costs 10.0 µs here") && note.contains("≈0.68 ms"), "{note}");
        assert!(run.table().contains(&note));
        run.noop = Noop::Nolibc;
        assert_eq!(run.cpuid_note(), None, "the nolibc no-op runs no CPUID");
    }
}
