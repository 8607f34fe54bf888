//! Host facts recorded with every run (run.json): without the CPU, kernel,
//! frequency governor, cgroup mode and load, a latency figure cannot be
//! compared with anyone else's.

use std::path::Path;
use std::process::Command;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

/// The cgroup mode detection lives with the launcher's cgroup code
/// ([`crate::container::cgroup`]); re-exported here for the host facts.
pub use crate::container::cgroup::{cgroup_mode, cgroup_mode_at, CgroupMode};

/// Host metadata for run.json (read back by the report; fields added after
/// the first version default when an older file lacks them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct HostInfo {
    pub hostname: String,
    pub cpu_model: String,
    /// Online logical CPUs.
    pub cpus: usize,
    pub kernel: String,
    #[serde(default)]
    pub kernel_cmdline: String,
    /// cpufreq governor of cpu0, when the host exposes cpufreq.
    pub governor: Option<String>,
    pub clocksource: Option<String>,
    #[serde(deserialize_with = "cgroup_mode_named")]
    pub cgroup_mode: CgroupMode,
    /// 1-minute load average at the start of the run.
    pub load_avg_1m: f64,
    /// `git describe` of the isobench checkout, when it is one.
    pub isobench_revision: Option<String>,
    pub qemu_version: Option<String>,
    /// Simultaneous multithreading active (/sys/devices/system/cpu/smt/active).
    pub smt: Option<bool>,
    /// Turbo/boost enabled (cpufreq `boost`, or intel_pstate's `no_turbo` inverted).
    pub boost: Option<bool>,
    /// CPU vulnerability mitigations as the kernel reports them
    /// (/sys/devices/system/cpu/vulnerabilities/*): name → status line.
    #[serde(default)]
    pub mitigations: std::collections::BTreeMap<String, String>,
    /// /sys/kernel/rcu_expedited (1 makes synchronize_rcu, hence namespace
    /// teardown, faster).
    pub rcu_expedited: Option<bool>,
    /// The CPU flags include `hypervisor`: this host is itself a guest.
    #[serde(default)]
    pub hypervisor: bool,
    /// What one CPUID instruction costs here, ns ([`cpuid_ns`]); `None` off x86-64.
    pub cpuid_ns: Option<f64>,
}

/// Reads a [`CgroupMode`] by the name it is written with (`v2`, `hybrid`, ...).
fn cgroup_mode_named<'de, D: Deserializer<'de>>(d: D) -> Result<CgroupMode, D::Error> {
    let name = String::deserialize(d)?;
    [CgroupMode::V2, CgroupMode::V1, CgroupMode::Hybrid, CgroupMode::None]
        .into_iter()
        .find(|m| m.as_str() == name)
        .ok_or_else(|| serde::de::Error::custom(format!("unknown cgroup mode {name:?}")))
}

/// CPUID instructions the static glibc `noop` executes before it exits:
/// counted by single-stepping it under ptrace (glibc 2.36, Debian 12, on the
/// development host: `init_cpu_features` and the cache-descriptor leaves);
/// another glibc or CPU runs a few more or fewer. The nolibc no-op runs none.
pub const GLIBC_START_CPUIDS: u32 = 68;

/// Batches of CPUID instructions [`cpuid_ns`] times; the fastest counts.
const CPUID_BATCHES: usize = 5;
/// CPUID instructions per batch.
const CPUID_PER_BATCH: u32 = 100;
/// Above this a CPUID is taken to exit to a hypervisor: a native CPUID
/// (leaf 0) costs tens of ns; in a guest it always exits (VT-x and SVM both
/// intercept it), a few hundred ns to a microsecond under KVM, more nested.
pub const CPUID_EXIT_NS: f64 = 250.0;

/// From this many µs of CPUID in the static no-op's start-up
/// ([`GLIBC_START_CPUIDS`] × one CPUID) on, the report warns that start-up
/// figures carry it: about a tenth of a fast container start.
pub const START_CPUID_CAVEAT_US: f64 = 50.0;

/// What the static no-op's CPUIDs cost at `cpuid_ns` per CPUID, µs.
pub fn start_cpuid_us(cpuid_ns: f64) -> f64 {
    f64::from(GLIBC_START_CPUIDS) * cpuid_ns / 1e3
}

/// The cost of one CPUID (leaf 0), ns: the fastest of [`CPUID_BATCHES`]
/// batches of [`CPUID_PER_BATCH`], so an interrupt inflates one batch only.
/// It matters to start-up figures: glibc probes the CPU with dozens of CPUIDs
/// before `main` ([`GLIBC_START_CPUIDS`] in the static `noop`), so
/// where each exits to a hypervisor (≈1 µs under KVM, 8–14 µs measured in a
/// nested paravirtual guest) a glibc program's own start is slow and `isobench
/// startup --noop nolibc` shows the isolation without it. `None` off x86-64.
pub fn cpuid_ns() -> Option<f64> {
    #[cfg(target_arch = "x86_64")]
    {
        let mut best = f64::INFINITY;
        for _ in 0..CPUID_BATCHES {
            let t0 = std::time::Instant::now();
            for _ in 0..CPUID_PER_BATCH {
                // SAFETY: CPUID exists on every x86-64 CPU and only writes
                // registers (the intrinsic is safe in newer Rust).
                #[allow(unused_unsafe)]
                std::hint::black_box(unsafe { std::arch::x86_64::__cpuid(std::hint::black_box(0)) });
            }
            best = best.min(t0.elapsed().as_nanos() as f64 / f64::from(CPUID_PER_BATCH));
        }
        Some(best)
    }
    #[cfg(not(target_arch = "x86_64"))]
    None
}

fn read_bool(path: &str) -> Option<bool> {
    read_trim(path).map(|s| s == "1" || s == "on")
}

/// name → status of every entry in /sys/devices/system/cpu/vulnerabilities.
pub fn mitigations() -> std::collections::BTreeMap<String, String> {
    let mut m = std::collections::BTreeMap::new();
    if let Ok(dir) = std::fs::read_dir("/sys/devices/system/cpu/vulnerabilities") {
        for e in dir.flatten() {
            if let Some(v) = read_trim(&e.path().to_string_lossy()) {
                m.insert(e.file_name().to_string_lossy().into_owned(), v);
            }
        }
    }
    m
}

fn read_trim(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok().map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

fn first_line_of(cmd: &str, args: &[&str], dir: Option<&Path>) -> Option<String> {
    let mut c = Command::new(cmd);
    c.args(args);
    if let Some(d) = dir {
        c.current_dir(d);
    }
    let out = c.output().ok().filter(|o| o.status.success())?;
    String::from_utf8_lossy(&out.stdout).lines().next().map(|l| l.trim().to_string())
}

/// The QEMU version line, e.g. "QEMU emulator version 7.2.19 (Debian ...)".
pub fn qemu_version() -> Option<String> {
    first_line_of("qemu-system-x86_64", &["--version"], None)
}

impl HostInfo {
    /// Reads the host facts (cheap: a few /proc and /sys files, two commands).
    pub fn collect() -> HostInfo {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_else(|| "unknown".into());
        let uname = nix::sys::utsname::uname().ok();
        HostInfo {
            hostname: nix::unistd::gethostname().ok().and_then(|h| h.into_string().ok()).unwrap_or_else(|| "host".into()),
            cpu_model,
            cpus: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            kernel: uname.map(|u| u.release().to_string_lossy().into_owned()).unwrap_or_default(),
            kernel_cmdline: read_trim("/proc/cmdline").unwrap_or_default(),
            governor: read_trim("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
            clocksource: read_trim("/sys/devices/system/clocksource/clocksource0/current_clocksource"),
            cgroup_mode: cgroup_mode(),
            load_avg_1m: read_trim("/proc/loadavg").and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok())).unwrap_or(0.0),
            isobench_revision: first_line_of("git", &["describe", "--always", "--dirty", "--abbrev=12"], Some(&crate::paths::repo_root())),
            qemu_version: qemu_version(),
            smt: read_bool("/sys/devices/system/cpu/smt/active"),
            boost: read_bool("/sys/devices/system/cpu/cpufreq/boost")
                .or_else(|| read_bool("/sys/devices/system/cpu/intel_pstate/no_turbo").map(|no| !no)),
            mitigations: mitigations(),
            rcu_expedited: read_bool("/sys/kernel/rcu_expedited"),
            hypervisor: cpuinfo.lines().filter(|l| l.starts_with("flags")).any(|l| l.split_whitespace().any(|f| f == "hypervisor")),
            cpuid_ns: cpuid_ns(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collects_this_hosts_facts() {
        let h = HostInfo::collect();
        assert!(h.cpus >= 1);
        assert!(!h.kernel.is_empty());
        assert_eq!(h.kernel, std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap().trim());
        // every vulnerability file the kernel lists is recorded
        let listed = std::fs::read_dir("/sys/devices/system/cpu/vulnerabilities").map(|d| d.count()).unwrap_or(0);
        assert_eq!(h.mitigations.len(), listed);
        // this machine family mounts cgroups somehow; "none" would be a detection bug
        assert_ne!(h.cgroup_mode, CgroupMode::None);
        assert_eq!(h.hypervisor, std::fs::read_to_string("/proc/cpuinfo").unwrap().contains(" hypervisor"));
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn cpuid_costs_what_a_timed_loop_of_it_says() {
        // An independent measurement: 2000 CPUIDs timed as one block. The
        // fastest-batch figure can only be below that mean (plus timer noise).
        let t0 = std::time::Instant::now();
        for _ in 0..2000 {
            #[allow(unused_unsafe)]
            // SAFETY: as in cpuid_ns.
            std::hint::black_box(unsafe { std::arch::x86_64::__cpuid(std::hint::black_box(0)) });
        }
        let mean = t0.elapsed().as_nanos() as f64 / 2000.0;
        let best = cpuid_ns().unwrap();
        assert!(best <= mean * 1.5 + 50.0, "cpuid_ns {best} ns vs a plain loop's mean {mean} ns");
        // CPUID serialises the pipeline: no CPU retires one in under ~10 ns,
        // so less means the loop was optimised away.
        assert!(best >= 10.0, "{best} ns per CPUID");
        // Off a hypervisor it does not exit; a bare-metal CPU never takes 100 µs.
        let guest = std::fs::read_to_string("/proc/cpuinfo").unwrap().split_whitespace().any(|f| f == "hypervisor");
        assert!(guest || best < CPUID_EXIT_NS, "{best} ns per CPUID on bare metal");
        assert!(best < 100_000.0, "{best} ns per CPUID");
    }

    #[test]
    fn a_plain_directory_is_no_cgroup_root() {
        let d = tempfile::tempdir().unwrap();
        // tmpfs or ext4 without cgroup mounts below it
        assert_eq!(cgroup_mode_at(d.path()), CgroupMode::None);
    }
}
