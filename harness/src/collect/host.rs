//! Host facts recorded with every run (run.json): without the CPU, kernel,
//! frequency governor, cgroup mode and load, a latency figure cannot be
//! compared with anyone else's.

use std::path::Path;
use std::process::Command;

use serde::Serialize;

/// The cgroup mode detection lives with the launcher's cgroup code
/// ([`crate::container::cgroup`]); re-exported here for the host facts.
pub use crate::container::cgroup::{cgroup_mode, cgroup_mode_at, CgroupMode};

/// Host metadata for run.json.
#[derive(Debug, Clone, Serialize)]
pub struct HostInfo {
    pub hostname: String,
    pub cpu_model: String,
    /// Online logical CPUs.
    pub cpus: usize,
    pub kernel: String,
    pub kernel_cmdline: String,
    /// cpufreq governor of cpu0, when the host exposes cpufreq.
    pub governor: Option<String>,
    pub clocksource: Option<String>,
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
    pub mitigations: std::collections::BTreeMap<String, String>,
    /// /sys/kernel/rcu_expedited (1 makes synchronize_rcu, hence namespace
    /// teardown, faster).
    pub rcu_expedited: Option<bool>,
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
            isobench_revision: first_line_of("git", &["describe", "--always", "--dirty", "--abbrev=12"], Some(&crate::workloads::repo_root())),
            qemu_version: qemu_version(),
            smt: read_bool("/sys/devices/system/cpu/smt/active"),
            boost: read_bool("/sys/devices/system/cpu/cpufreq/boost")
                .or_else(|| read_bool("/sys/devices/system/cpu/intel_pstate/no_turbo").map(|no| !no)),
            mitigations: mitigations(),
            rcu_expedited: read_bool("/sys/kernel/rcu_expedited"),
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
    }

    #[test]
    fn a_plain_directory_is_no_cgroup_root() {
        let d = tempfile::tempdir().unwrap();
        // tmpfs or ext4 without cgroup mounts below it
        assert_eq!(cgroup_mode_at(d.path()), CgroupMode::None);
    }
}
