//! The metric catalogue: every metric's name, family, display unit and the
//! reference method it follows. Names and units are those of DESIGN.md; the
//! agent implements each entry and the harness reads the same table, so a
//! metric exists in exactly one place.

use serde::{Deserialize, Serialize};

/// Metric families, as in DESIGN.md ("spawn", "syscall", "ipc", "net").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Spawn,
    Syscall,
    Ipc,
    Net,
}

impl Family {
    pub const ALL: [Family; 4] = [Family::Spawn, Family::Syscall, Family::Ipc, Family::Net];

    pub fn as_str(self) -> &'static str {
        match self {
            Family::Spawn => "spawn",
            Family::Syscall => "syscall",
            Family::Ipc => "ipc",
            Family::Net => "net",
        }
    }
}

/// The unit a metric is *displayed* in. Histograms always hold nanoseconds per
/// operation; [`Unit::from_ns`] converts a recorded value for display.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Unit {
    #[serde(rename = "ns")]
    Ns,
    #[serde(rename = "us")]
    Us,
    #[serde(rename = "ms")]
    Ms,
}

impl Unit {
    /// Nanoseconds in one of this unit.
    pub fn ns_per_unit(self) -> f64 {
        match self {
            Unit::Ns => 1.0,
            Unit::Us => 1e3,
            Unit::Ms => 1e6,
        }
    }

    /// Converts a value in nanoseconds to this unit.
    pub fn from_ns(self, ns: f64) -> f64 {
        ns / self.ns_per_unit()
    }

    /// ASCII name used in csv/json ("ns", "us", "ms").
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Ns => "ns",
            Unit::Us => "us",
            Unit::Ms => "ms",
        }
    }

    /// Name for humans (report tables and plot axes).
    pub fn label(self) -> &'static str {
        match self {
            Unit::Ns => "ns",
            Unit::Us => "µs",
            Unit::Ms => "ms",
        }
    }
}

/// One metric of the catalogue.
#[derive(Debug, Clone, Copy)]
pub struct MetricSpec {
    /// Dotted name, e.g. `syscall.getpid`.
    pub name: &'static str,
    pub family: Family,
    /// Display unit; the histogram is in ns per operation.
    pub unit: Unit,
    /// What one operation is, in one line.
    pub operation: &'static str,
    /// The tool or paper whose method this follows.
    pub reference: &'static str,
    /// Operations timed together as one histogram sample (lmbench's batching:
    /// an operation much shorter than the clock read is timed in batches and
    /// the per-operation mean of each batch is recorded).
    pub ops_per_sample: u64,
    /// Iterations for a full run and for `--quick`.
    pub iterations: u64,
    pub quick_iterations: u64,
}

/// Every metric the agent implements.
pub const CATALOG: &[MetricSpec] = &[
    MetricSpec {
        name: "spawn.fork_exit",
        family: Family::Spawn,
        unit: Unit::Us,
        operation: "fork, child _exit(0), waitpid",
        reference: "lmbench lat_proc fork",
        ops_per_sample: 1,
        iterations: 5_000,
        quick_iterations: 200,
    },
    MetricSpec {
        name: "spawn.fork_exec",
        family: Family::Spawn,
        unit: Unit::Us,
        operation: "fork + execve of the static noop binary + waitpid",
        reference: "lmbench lat_proc exec",
        ops_per_sample: 1,
        iterations: 2_000,
        quick_iterations: 100,
    },
    MetricSpec {
        name: "spawn.posix_spawn",
        family: Family::Spawn,
        unit: Unit::Us,
        operation: "posix_spawn of the static noop binary + waitpid (glibc uses clone(CLONE_VM|CLONE_VFORK))",
        reference: "lmbench lat_proc exec, with posix_spawn in place of fork",
        ops_per_sample: 1,
        iterations: 2_000,
        quick_iterations: 100,
    },
    MetricSpec {
        name: "spawn.thread",
        family: Family::Spawn,
        unit: Unit::Us,
        operation: "thread create (pthread_create through std::thread) + join of an empty thread",
        reference: "pthread_create/pthread_join round, as in lmbench-style micro-benchmarks",
        ops_per_sample: 1,
        iterations: 10_000,
        quick_iterations: 300,
    },
    MetricSpec {
        name: "syscall.getpid",
        family: Family::Syscall,
        unit: Unit::Ns,
        operation: "raw getpid system call (syscall instruction, no libc cache, no vDSO)",
        reference: "lmbench lat_syscall null; perf bench syscall basic",
        ops_per_sample: 100,
        iterations: 2_000_000,
        quick_iterations: 50_000,
    },
    MetricSpec {
        name: "syscall.clock_gettime",
        family: Family::Syscall,
        unit: Unit::Ns,
        operation: "clock_gettime(CLOCK_MONOTONIC) through the vDSO (a real system call when the clocksource has no vDSO support)",
        reference: "vDSO clock read, as timed by perf bench / lmbench's timing loop",
        ops_per_sample: 100,
        iterations: 2_000_000,
        quick_iterations: 50_000,
    },
    MetricSpec {
        name: "syscall.read_devnull",
        family: Family::Syscall,
        unit: Unit::Ns,
        operation: "read(2) of 1 byte from an open /dev/null (returns end of file)",
        reference: "lmbench lat_syscall read",
        ops_per_sample: 100,
        iterations: 1_000_000,
        quick_iterations: 20_000,
    },
    MetricSpec {
        name: "syscall.write_devnull",
        family: Family::Syscall,
        unit: Unit::Ns,
        operation: "write(2) of 1 byte to an open /dev/null",
        reference: "lmbench lat_syscall write",
        ops_per_sample: 100,
        iterations: 1_000_000,
        quick_iterations: 20_000,
    },
    MetricSpec {
        name: "syscall.open_close",
        family: Family::Syscall,
        unit: Unit::Ns,
        operation: "open(\"/dev/null\", O_RDONLY) + close",
        reference: "lmbench lat_syscall open",
        ops_per_sample: 20,
        iterations: 200_000,
        quick_iterations: 5_000,
    },
    MetricSpec {
        name: "syscall.stat",
        family: Family::Syscall,
        unit: Unit::Ns,
        operation: "stat(\"/dev/null\")",
        reference: "lmbench lat_syscall stat",
        ops_per_sample: 20,
        iterations: 300_000,
        quick_iterations: 5_000,
    },
    MetricSpec {
        name: "syscall.mmap_munmap",
        family: Family::Syscall,
        unit: Unit::Ns,
        operation: "mmap of 4 KiB anonymous memory, one byte written (the page fault), munmap",
        reference: "lmbench lat_mmap / lat_pagefault, one page",
        ops_per_sample: 10,
        iterations: 100_000,
        quick_iterations: 2_000,
    },
    MetricSpec {
        name: "ipc.pipe_rtt",
        family: Family::Ipc,
        unit: Unit::Us,
        operation: "one byte each way between two processes over two pipes (closed-loop round trip)",
        reference: "lmbench lat_pipe; perf bench sched pipe",
        ops_per_sample: 1,
        iterations: 50_000,
        quick_iterations: 2_000,
    },
    MetricSpec {
        name: "ipc.unix_rtt",
        family: Family::Ipc,
        unit: Unit::Us,
        operation: "one byte each way between two processes over an AF_UNIX stream socketpair (closed-loop round trip)",
        reference: "lmbench lat_unix",
        ops_per_sample: 1,
        iterations: 50_000,
        quick_iterations: 2_000,
    },
    MetricSpec {
        name: "ipc.eventfd_rtt",
        family: Family::Ipc,
        unit: Unit::Us,
        operation: "an 8-byte eventfd signal each way between two processes (closed-loop round trip)",
        reference: "lat_pipe's method over eventfd(2)",
        ops_per_sample: 1,
        iterations: 50_000,
        quick_iterations: 2_000,
    },
    MetricSpec {
        name: "net.tcp_rr",
        family: Family::Net,
        unit: Unit::Us,
        operation: "one byte request + one byte response over loopback TCP (TCP_NODELAY, closed-loop round trip)",
        reference: "netperf TCP_RR",
        ops_per_sample: 1,
        iterations: 20_000,
        quick_iterations: 1_000,
    },
    MetricSpec {
        name: "net.udp_rr",
        family: Family::Net,
        unit: Unit::Us,
        operation: "one byte request + one byte response over loopback UDP (closed-loop round trip)",
        reference: "netperf UDP_RR",
        ops_per_sample: 1,
        iterations: 20_000,
        quick_iterations: 1_000,
    },
];

/// Looks a metric up by its dotted name.
pub fn lookup(name: &str) -> Option<&'static MetricSpec> {
    CATALOG.iter().find(|m| m.name == name)
}

/// All metric names, in catalogue order.
pub fn names() -> impl Iterator<Item = &'static str> {
    CATALOG.iter().map(|m| m.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_prefixed_by_family() {
        let mut seen = std::collections::HashSet::new();
        for m in CATALOG {
            assert!(seen.insert(m.name), "duplicate metric {}", m.name);
            assert!(m.name.starts_with(m.family.as_str()), "{} is not in family {:?}", m.name, m.family);
            assert!(m.ops_per_sample >= 1 && m.quick_iterations >= m.ops_per_sample);
        }
        assert!(lookup("syscall.getpid").is_some());
        assert!(lookup("syscall.nope").is_none());
    }
}
