//! Interference: what else the machine did while a measurement ran. A
//! [`Probe`] reads the machine's CPU time and the run's own before and after
//! a measurement; the difference is the CPU time spent outside the run (a
//! neighbour's build, a second benchmark, a daemon), stated in CPUs over the
//! measurement's wall time, with the time the hypervisor stole and the other
//! isobench runs that were active ([`crate::registry`]).
//!
//! Method: sar's and mpstat's (deltas of `/proc/stat`'s aggregate `cpu`
//! line: user + nice + system + irq + softirq is busy, steal apart), minus
//! the run's own process tree as `pidstat` counts a process (utime + stime +
//! cutime + cstime of `/proc/<pid>/stat`, over isobench and every live
//! descendant). Every environment's processes are descendants of isobench:
//! the launcher's clone, the peers' runtimes and their containers, QEMU
//! under `scripts/vm-run`, the boundary's host-side agents; what they reap
//! reaches the tree through cutime/cstime, so a spawned no-op counts too.
//! Kernel threads working for the run (a kworker tearing down a network
//! namespace) count as outside.
//!
//! Both sources count in clock ticks (USER_HZ, 10 ms), so a figure is only
//! good to [`Interference::quantization_ns`]: one tick per counter read and
//! per CPU. A measurement is flagged only when what it saw exceeds its
//! threshold by more than that bound, so a short measurement is flagged only
//! by a large interference and a quiet one never by rounding.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use procfs::CurrentSI;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::registry::{self, RunEntry};

/// A measurement is taken under interference when the machine spent more
/// than this many CPUs outside the run, beyond the counters' rounding: a
/// tenth of one CPU. A single-threaded neighbour (a compiler, a second
/// benchmark) takes up to a whole CPU; on the shared 2-CPU development VM
/// other builds kept 1.2–1.7 CPUs busy outside 1.5 s native runs, with or
/// without a `while :; do :; done` beside them (the machine was full either
/// way; 2026-12-07). An idle host's daemons use a small fraction of the
/// threshold (not measured there: that machine is never idle).
pub const INTERFERENCE_CPUS: f64 = 0.10;

/// ... or when the hypervisor stole more than this many CPUs (all CPUs
/// together): every stolen tick lengthens whatever was being timed on that
/// CPU. Twice what the nested development VM loses on average (0.023 CPU
/// over its first 2.2 hours of uptime, /proc/stat, 2026-12-07).
pub const STEAL_CPUS: f64 = 0.05;

/// Counters of `/proc/stat`'s `cpu` line summed as busy (user, nice,
/// system, irq, softirq); each is rounded to a tick on its own.
const MACHINE_FIELDS: u64 = 5;

/// Counters of `/proc/<pid>/stat` summed per process (utime, stime, cutime,
/// cstime).
const PROCESS_FIELDS: u64 = 4;

/// Counters rounded per CPU between two readings: one tick where a tick of
/// user/system accounting lands at either end (kernel HZ ≥ 100, so at most a
/// USER_HZ tick each).
const TICKS_PER_CPU: u64 = 2;

/// One process of the run's tree: (pid, its start in ticks after boot).
type ProcessKey = (i32, u64);

/// One reading of the machine and of the run's tree, in clock ticks.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// user + nice + system + irq + softirq over all CPUs.
    pub busy_ticks: u64,
    pub steal_ticks: u64,
    /// Online CPUs.
    pub cpus: u32,
    /// Each process of the tree → utime + stime + cutime + cstime.
    pub tree: BTreeMap<ProcessKey, u64>,
}

impl Sample {
    /// Reads `/proc/stat` and the tree under `root` (this process).
    pub fn read(root: i32) -> procfs::ProcResult<Sample> {
        let stats = procfs::KernelStats::current()?;
        let mut s = Sample::from_kernel_stats(&stats);
        s.tree = tree_of(root)?;
        Ok(s)
    }

    /// The machine's part of a reading (an empty tree).
    pub fn from_kernel_stats(k: &procfs::KernelStats) -> Sample {
        let t = &k.total;
        Sample {
            busy_ticks: t.user + t.nice + t.system + t.irq.unwrap_or(0) + t.softirq.unwrap_or(0),
            steal_ticks: t.steal.unwrap_or(0),
            cpus: k.cpu_time.len().max(1) as u32,
            tree: BTreeMap::new(),
        }
    }

    fn tree_ticks(&self) -> u64 {
        self.tree.values().sum()
    }
}

/// The processes of the tree under `root` with their CPU time so far: a
/// walk of every process's parent in /proc.
fn tree_of(root: i32) -> procfs::ProcResult<BTreeMap<ProcessKey, u64>> {
    let mut children: BTreeMap<i32, Vec<procfs::process::Stat>> = BTreeMap::new();
    let mut own = None;
    for p in procfs::process::all_processes()?.flatten() {
        // A process that exits between the listing and its read is gone.
        let Ok(stat) = p.stat() else { continue };
        if stat.pid == root {
            own = Some(stat);
        } else {
            children.entry(stat.ppid).or_default().push(stat);
        }
    }
    let mut tree = BTreeMap::new();
    let mut todo: Vec<procfs::process::Stat> = own.into_iter().collect();
    while let Some(s) = todo.pop() {
        let ticks = s.utime + s.stime + s.cutime.max(0) as u64 + s.cstime.max(0) as u64;
        tree.insert((s.pid, s.starttime), ticks);
        todo.extend(children.remove(&s.pid).unwrap_or_default());
    }
    Ok(tree)
}

/// What else the machine did during one measurement (measurements.json's
/// `interference`, startup.json's, summary.csv's `outside_cpus`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Interference {
    /// Wall time between the two readings, ns.
    pub wall_ns: u64,
    /// Online CPUs.
    pub cpus: u32,
    /// CPU time the whole machine was busy (`/proc/stat`: user + nice +
    /// system + irq + softirq), ns.
    pub machine_busy_ns: u64,
    /// CPU time of the run's own process tree (isobench and its
    /// descendants), ns; below 0 only when a process of the tree was reaped
    /// outside it.
    pub tree_ns: i64,
    /// CPU time the hypervisor stole (`/proc/stat` steal), ns.
    pub steal_ns: u64,
    /// How far the tick-counted figures can be off, ns: a tick per counter
    /// read and two per CPU.
    pub quantization_ns: u64,
    /// Processes of the run's tree seen by either reading.
    pub tree_processes: u32,
    /// One clock tick of the counters, ns (USER_HZ 100: 10 ms).
    pub tick_ns: u64,
    /// Other isobench runs active during the measurement.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub concurrent_runs: Vec<RunEntry>,
}

impl Interference {
    /// The figures between two readings `wall` apart, counted in ticks of
    /// `1 / ticks_per_s`.
    pub fn between(before: &Sample, after: &Sample, wall: Duration, ticks_per_s: u64) -> Interference {
        let tick_ns = 1_000_000_000 / ticks_per_s.max(1);
        let keys: BTreeSet<&ProcessKey> = before.tree.keys().chain(after.tree.keys()).collect();
        let cpus = after.cpus.max(before.cpus);
        let ticks = MACHINE_FIELDS + PROCESS_FIELDS * keys.len() as u64 + TICKS_PER_CPU * cpus as u64;
        Interference {
            wall_ns: wall.as_nanos() as u64,
            cpus,
            machine_busy_ns: after.busy_ticks.saturating_sub(before.busy_ticks) * tick_ns,
            tree_ns: (after.tree_ticks() as i64 - before.tree_ticks() as i64) * tick_ns as i64,
            steal_ns: after.steal_ticks.saturating_sub(before.steal_ticks) * tick_ns,
            quantization_ns: ticks * tick_ns,
            tree_processes: keys.len() as u32,
            tick_ns,
            concurrent_runs: Vec::new(),
        }
    }

    fn per_cpu(&self, ns: f64) -> f64 {
        if self.wall_ns == 0 {
            return 0.0;
        }
        ns / self.wall_ns as f64
    }

    /// CPU time spent outside the run, ns (0 when rounding made it negative).
    pub fn outside_ns(&self) -> u64 {
        (self.machine_busy_ns as i64 - self.tree_ns).max(0) as u64
    }

    /// CPUs busy outside the run on average during the measurement (at
    /// most the machine's CPUs, which rounding can exceed).
    pub fn outside_cpus(&self) -> f64 {
        self.per_cpu(self.outside_ns() as f64).min(self.cpus.max(1) as f64)
    }

    /// CPUs stolen by the hypervisor on average.
    pub fn steal_cpus(&self) -> f64 {
        self.per_cpu(self.steal_ns as f64)
    }

    /// [`quantization_ns`](Self::quantization_ns) in CPUs over the wall time.
    pub fn quantization_cpus(&self) -> f64 {
        self.per_cpu(self.quantization_ns as f64)
    }

    /// The machine was busy outside the run beyond [`INTERFERENCE_CPUS`] and
    /// the rounding.
    pub fn busy(&self) -> bool {
        self.outside_cpus() - self.quantization_cpus() > INTERFERENCE_CPUS
    }

    /// The hypervisor stole beyond [`STEAL_CPUS`] and the rounding (one
    /// counter, a tick per CPU at each end).
    pub fn stolen(&self) -> bool {
        let rounding = self.per_cpu(((1 + TICKS_PER_CPU * self.cpus as u64) * self.tick_ns) as f64);
        self.steal_cpus() - rounding > STEAL_CPUS
    }

    /// Taken under interference: busy outside, stolen, or beside another run.
    pub fn flagged(&self) -> bool {
        self.busy() || self.stolen() || !self.concurrent_runs.is_empty()
    }

    /// Why it is flagged, in words ("1.02 CPUs busy outside the run", ...);
    /// empty when it is not.
    pub fn reasons(&self) -> Vec<String> {
        let mut r = Vec::new();
        if self.busy() {
            r.push(format!("{:.2} CPUs busy outside the run", self.outside_cpus()));
        }
        if self.stolen() {
            r.push(format!("{:.2} CPUs stolen by the hypervisor", self.steal_cpus()));
        }
        for other in &self.concurrent_runs {
            r.push(format!("measured while {} ran", other.describe()));
        }
        r
    }
}

/// Readings around one measurement: [`Probe::start`] before it,
/// [`Probe::finish`] after.
#[derive(Debug)]
pub struct Probe {
    started: Instant,
    started_ms: u64,
    before: Option<Sample>,
    live_at_start: Vec<RunEntry>,
}

impl Probe {
    /// Reads the machine, this process's tree and the registry of runs.
    pub fn start() -> Probe {
        let live_at_start = registry::live();
        let before = Sample::read(std::process::id() as i32).ok();
        Probe { started: Instant::now(), started_ms: registry::now_ms(), before, live_at_start }
    }

    /// Reads again; `None` when /proc could not be read.
    pub fn finish(self) -> Option<Interference> {
        let wall = self.started.elapsed();
        let after = Sample::read(std::process::id() as i32).ok()?;
        let mut i = Interference::between(self.before.as_ref()?, &after, wall, procfs::ticks_per_second());
        i.concurrent_runs = registry::others_between(self.started_ms, registry::now_ms(), &self.live_at_start);
        Some(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use procfs::FromBufReadSI;

    /// `/proc/stat` text with the aggregate line's counters (ticks).
    fn proc_stat(user: u64, system: u64, softirq: u64, steal: u64) -> procfs::KernelStats {
        let text = format!(
            "cpu  {user} 0 {system} 900000 100 0 {softirq} {steal} 0 0\n\
             cpu0 0 0 0 450000 50 0 0 0 0 0\n\
             cpu1 0 0 0 450000 50 0 0 0 0 0\n\
             intr 0\nctxt 1\nbtime 1700000000\nprocesses 10\nprocs_running 1\nprocs_blocked 0\n"
        );
        procfs::KernelStats::from_buf_read(text.as_bytes(), procfs::current_system_info()).unwrap()
    }

    fn sample(user: u64, system: u64, softirq: u64, steal: u64, tree: &[(i32, u64)]) -> Sample {
        let mut s = Sample::from_kernel_stats(&proc_stat(user, system, softirq, steal));
        s.tree = tree.iter().map(|&(pid, ticks)| ((pid, 7), ticks)).collect();
        s
    }

    #[test]
    fn a_quiet_measurement_is_not_flagged() {
        // 2 s on 2 CPUs; the run used 150 ticks, the machine 152 (daemons: 0.01 CPU).
        let before = sample(1000, 500, 10, 100, &[(1, 300), (2, 50)]);
        let after = sample(1100, 550, 12, 101, &[(1, 350), (2, 150)]);
        let i = Interference::between(&before, &after, Duration::from_secs(2), 100);
        assert_eq!(i.cpus, 2);
        assert_eq!((i.machine_busy_ns, i.tree_ns), (1_520_000_000, 1_500_000_000));
        assert!((i.outside_cpus() - 0.01).abs() < 1e-9, "{}", i.outside_cpus());
        assert!(!i.busy() && !i.stolen() && !i.flagged(), "{i:?}");
        assert!(i.reasons().is_empty());
    }

    #[test]
    fn a_busy_loop_beside_the_run_is_flagged() {
        // The same run with a neighbour using one CPU: 200 more busy ticks in 2 s.
        let before = sample(1000, 500, 10, 100, &[(1, 300), (2, 50)]);
        let after = sample(1300, 550, 12, 101, &[(1, 350), (2, 150)]);
        let i = Interference::between(&before, &after, Duration::from_secs(2), 100);
        assert!((i.outside_cpus() - 1.01).abs() < 1e-9, "{}", i.outside_cpus());
        assert!(i.busy() && i.flagged(), "{i:?}");
        assert_eq!(i.reasons(), ["1.01 CPUs busy outside the run"]);
    }

    #[test]
    fn rounding_alone_never_flags_a_short_measurement() {
        // 50 ms: 3 ticks outside is 0.6 CPUs, within the counters' rounding
        // (5 + 4 + 2·2 ticks = 130 ms = 2.6 CPUs over 50 ms).
        let before = sample(1000, 500, 0, 0, &[(1, 300)]);
        let after = sample(1005, 500, 0, 0, &[(1, 302)]);
        let i = Interference::between(&before, &after, Duration::from_millis(50), 100);
        assert!((i.outside_cpus() - 0.6).abs() < 1e-9 && i.quantization_cpus() > 2.5, "{i:?}");
        assert!(!i.flagged());
        // A child that exits and is reaped by its parent in the tree: its
        // time moves into the parent's cutime, and the tree's total is exact.
        let before = sample(1000, 500, 0, 0, &[(1, 300), (2, 50)]);
        let after = sample(1070, 500, 0, 0, &[(1, 300 + 10 + 60)]);
        let i = Interference::between(&before, &after, Duration::from_secs(1), 100);
        assert_eq!((i.tree_ns, i.outside_ns(), i.tree_processes), (200_000_000, 500_000_000, 2), "{i:?}");
        // More tree time than the machine's (rounding): outside is 0, not negative.
        let after = sample(1000, 500, 0, 0, &[(1, 302), (2, 50)]);
        assert_eq!(Interference::between(&before, &after, Duration::from_secs(1), 100).outside_ns(), 0);
    }

    #[test]
    fn steal_beyond_its_threshold_is_flagged() {
        let before = sample(1000, 500, 0, 100, &[(1, 0)]);
        let after = sample(1000, 500, 0, 150, &[(1, 0)]);
        let i = Interference::between(&before, &after, Duration::from_secs(2), 100);
        assert!((i.steal_cpus() - 0.25).abs() < 1e-9);
        assert!(i.stolen() && !i.busy() && i.flagged(), "{i:?}");
        let after = sample(1000, 500, 0, 102, &[(1, 0)]);
        assert!(!Interference::between(&before, &after, Duration::from_secs(2), 100).stolen());
    }

    #[test]
    fn another_run_flags_and_is_named() {
        let mut i = Interference { wall_ns: 1_000_000_000, cpus: 2, ..Default::default() };
        i.concurrent_runs.push(RunEntry {
            pid: 42,
            pid_start: 1,
            command: "isobench run".into(),
            results: Some("/r/b".into()),
            started_utc: String::new(),
            started_ms: 0,
            ended_ms: None,
        });
        assert!(i.flagged());
        assert_eq!(i.reasons(), ["measured while isobench run (pid 42, /r/b) ran"]);
    }

    #[test]
    fn this_process_is_the_root_of_its_tree_and_a_child_is_in_it() {
        let me = std::process::id() as i32;
        let mut child = std::process::Command::new("sleep").arg("5").spawn().unwrap();
        let s = Sample::read(me).unwrap();
        let pids: Vec<i32> = s.tree.keys().map(|(p, _)| *p).collect();
        assert!(pids.contains(&me) && pids.contains(&(child.id() as i32)), "{pids:?}");
        assert!(!pids.contains(&1), "{pids:?}");
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
