//! The metric catalogue: every metric's name, family, display unit and the
//! reference method it follows; `isobench list` prints it.
//! The agent implements each entry and the harness reads the same table, so
//! a metric exists in exactly one place.

use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Metric families: the first part of every metric's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Spawn,
    Syscall,
    Ipc,
    Net,
    /// File I/O in the environment's data directory (`metrics::fs`).
    Fs,
    /// Sanity controls (cpu.spin, mem.copy_bw): near-zero overhead expected.
    Control,
    /// Real applications (redis, nginx) started inside the environment and
    /// loaded from the host side (`app`). Not part of `all`: they start
    /// servers and need them in the environment's files.
    App,
}

impl Family {
    pub const ALL: [Family; 7] = [Family::Spawn, Family::Syscall, Family::Ipc, Family::Net, Family::Fs, Family::Control, Family::App];

    pub fn as_str(self) -> &'static str {
        match self {
            Family::Spawn => "spawn",
            Family::Syscall => "syscall",
            Family::Ipc => "ipc",
            Family::Net => "net",
            Family::Fs => "fs",
            Family::Control => "control",
            Family::App => "app",
        }
    }

    /// The family names, comma-separated, for messages.
    fn names() -> String {
        Family::ALL.map(Family::as_str).join(", ")
    }
}

impl std::fmt::Display for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Family {
    type Err = CatalogError;

    /// Parses a family name ("syscall"). Errors: one line with the choices.
    fn from_str(s: &str) -> Result<Family, CatalogError> {
        Family::ALL.into_iter().find(|f| f.as_str() == s.trim()).ok_or_else(|| CatalogError::UnknownFamily(s.trim().to_string()))
    }
}

/// The first parts of metric names that are not a family's name (`cpu`,
/// `mem`, `env`): each selects the metrics whose names start with it, so
/// `--metric cpu` means cpu.spin as `--metric syscall` means every
/// syscall.* metric.
pub fn prefixes() -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for m in CATALOG {
        let first = m.name.split('.').next().unwrap_or(m.name);
        if !out.contains(&first) && !Family::ALL.iter().any(|f| f.as_str() == first) {
            out.push(first);
        }
    }
    out
}

/// A name or list the catalogue does not know; each message is one line
/// naming the choices.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    #[error("unknown metric {0:?}; known: {names} (or a family: {families}, or all)", names = names().collect::<Vec<_>>().join(", "), families = Family::names())]
    UnknownMetric(String),
    #[error("unknown metric family {0:?}; choose from {families}, a name's first part ({prefixes}) or all (or a metric name: see `isobench list`)", families = Family::names(), prefixes = prefixes().join(", "))]
    UnknownFamily(String),
    #[error("no metric given; name metrics (see `isobench list`), families ({families}) or all", families = Family::names())]
    Empty,
}

/// The unit a metric is *displayed* in. Histograms always hold nanoseconds per
/// operation; [`Unit::from_ns_per_op`] converts a recorded value for display
/// (a rate needs the bytes one operation moves).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum Unit {
    #[serde(rename = "ns")]
    Ns,
    #[serde(rename = "us")]
    Us,
    #[serde(rename = "ms")]
    Ms,
    /// Gibibytes (2^30 bytes) per second.
    #[serde(rename = "GiB/s")]
    GiBps,
    /// Gigabits (10^9 bits) per second, as iperf3 and netperf report.
    #[serde(rename = "Gbit/s")]
    Gbitps,
    /// Megabytes (10^6 bytes) per second, as fio's "MB/s".
    #[serde(rename = "MB/s")]
    MBps,
    /// Requests per second, as redis-benchmark and wrk report: the
    /// histogram holds ns of wall time per completed request.
    #[serde(rename = "req/s")]
    ReqPerS,
}

impl Unit {
    /// True for rates (bigger is better), false for times (smaller is better).
    pub fn is_rate(self) -> bool {
        matches!(self, Unit::GiBps | Unit::Gbitps | Unit::MBps | Unit::ReqPerS)
    }

    /// Converts `ns` nanoseconds per operation into this unit; a rate divides
    /// the `bytes_per_op` one operation moved by the time.
    pub fn from_ns_per_op(self, ns: f64, bytes_per_op: u64) -> f64 {
        match self {
            Unit::Ns => ns,
            Unit::Us => ns / 1e3,
            Unit::Ms => ns / 1e6,
            Unit::GiBps if ns > 0.0 => bytes_per_op as f64 / ns * 1e9 / (1u64 << 30) as f64,
            Unit::Gbitps if ns > 0.0 => bytes_per_op as f64 * 8.0 / ns,
            Unit::MBps if ns > 0.0 => bytes_per_op as f64 / ns * 1e3,
            Unit::ReqPerS if ns > 0.0 => 1e9 / ns,
            Unit::GiBps | Unit::Gbitps | Unit::MBps | Unit::ReqPerS => 0.0,
        }
    }

    /// ASCII name used in csv/json ("ns", "us", "ms", "GiB/s", "Gbit/s", "MB/s").
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Ns => "ns",
            Unit::Us => "us",
            Unit::Ms => "ms",
            Unit::GiBps => "GiB/s",
            Unit::Gbitps => "Gbit/s",
            Unit::MBps => "MB/s",
            Unit::ReqPerS => "req/s",
        }
    }

    /// Name for humans (report tables and plot axes).
    pub fn label(self) -> &'static str {
        match self {
            Unit::Us => "µs",
            other => other.as_str(),
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
    /// Bytes one operation moves (rates only; 0 for latencies). The agent
    /// reports what it really moved in `RunResult::bytes_per_op`.
    pub bytes_per_op: u64,
    /// Timed by the harness from outside the environment (env.start), not by
    /// the agent.
    pub host_timed: bool,
    /// Measured across the environment's boundary: the environment's agent
    /// serves (`Request::Serve`), an agent on the host side times the client
    /// end (`RunRequest::target`). See [`MetricSpec::inside`].
    pub boundary: bool,
}

impl MetricSpec {
    /// True for a metric with two ends, a measuring thread and a peer (the
    /// ipc.* and net.* families: echo or writer process, echo or sender
    /// thread, boundary server), which `PinMode::Split` puts on two CPUs.
    pub fn two_party(&self) -> bool {
        matches!(self.family, Family::Ipc | Family::Net)
    }

    /// True for the fs.* metrics, which work in a data directory the
    /// harness names (`RunRequest::data_dir`).
    pub fn needs_data_dir(&self) -> bool {
        self.name.starts_with("fs.")
    }

    /// True for a metric whose operations are sent from the host side to
    /// something the environment serves (the `*.boundary` metrics, the app
    /// metrics): the host-side agent runs it with a target.
    pub fn across(&self) -> bool {
        self.boundary || self.family == Family::App
    }

    /// app.*.latency: the open loop at an offered rate (`RunRequest::rate`);
    /// the other app metrics are the closed loop.
    pub fn open_loop(&self) -> bool {
        self.family == Family::App && self.name.ends_with(LATENCY_SUFFIX)
    }

    /// For an open-loop app metric, its closed-loop twin
    /// (`app.redis.get.latency` → `app.redis.get`).
    pub fn closed_twin(&self) -> Option<&'static MetricSpec> {
        self.open_loop().then(|| self.name.strip_suffix(LATENCY_SUFFIX).and_then(lookup)).flatten()
    }

    /// For a `*.boundary` metric, the same metric measured inside the
    /// environment on its loopback (`net.tcp_rr.boundary` → `net.tcp_rr`).
    pub fn inside(&self) -> Option<&'static MetricSpec> {
        self.name.strip_suffix(BOUNDARY_SUFFIX).and_then(lookup)
    }
}

/// Name suffix of the cross-boundary metrics.
pub const BOUNDARY_SUFFIX: &str = ".boundary";

/// Name suffix of the open-loop app metrics.
pub const LATENCY_SUFFIX: &str = ".latency";

/// Closed-loop connections of the redis metrics (one thread each).
pub const REDIS_CONNECTIONS: u32 = 4;
/// Requests pipelined per redis connection in the closed loop
/// (redis-benchmark `-P 16`): enough to saturate the server's one thread.
pub const REDIS_PIPELINE: u32 = 16;
/// Closed-loop connections of the nginx metrics (wrk `-c 4 -t 4`), one
/// request outstanding each (HTTP/1.1 without pipelining, as wrk).
pub const NGINX_CONNECTIONS: u32 = 4;
/// Connections of every open loop (wrk2 `-c 4`), one request outstanding
/// each.
pub const OPEN_CONNECTIONS: u32 = 4;
/// The open loop's offered rate as a share of what a closed loop of its
/// own shape (its connections, one request outstanding each) achieves
/// against the same server just before: below saturation, where latency is
/// the server's and the path's, not a queue's.
pub const OPEN_LOAD_FRACTION: f64 = 0.5;

/// One closed-loop (throughput) and one open-loop (latency) app metric.
macro_rules! app_metrics {
    ($name:literal, $lat:literal, $op:literal, $closed_ref:literal, $open_ref:literal, $n:literal) => {
        [
            MetricSpec {
                name: $name,
                family: Family::App,
                unit: Unit::ReqPerS,
                operation: concat!($op, "; closed loop at saturation (fixed connections, each sends its next batch when the last is answered), completed requests per second of wall time, one sample per 20 ms window; the server runs inside the environment, the load on the host side across its boundary"),
                reference: $closed_ref,
                ops_per_sample: 1,
                iterations: $n * 10,
                quick_iterations: $n,
                bytes_per_op: 0,
                host_timed: false,
                boundary: false,
            },
            MetricSpec {
                name: $lat,
                family: Family::App,
                unit: Unit::Us,
                operation: concat!($op, "; open loop at a constant offered rate, 4 connections with one request outstanding each, latency from each request's intended send time (coordinated-omission corrected); the rate is half of what a closed loop of that shape achieves against the same server just before (named on the row); the uncorrected service time is recorded beside it; both into histograms of fixed bounds, 1 ns to 60 s at 3 significant figures, allocated before the clock starts (wrk2's hdr_init): a longer latency is recorded as 60 s and counted as clipped"),
                reference: $open_ref,
                ops_per_sample: 1,
                iterations: 20_000,
                quick_iterations: 2_000,
                bytes_per_op: 0,
                host_timed: false,
                boundary: false,
            },
        ]
    };
}

const APP_REDIS_GET: [MetricSpec; 2] = app_metrics!(
    "app.redis.get",
    "app.redis.get.latency",
    "RESP GET of a 64-byte value from redis-server (no persistence)",
    "redis-benchmark -t get -d 64 -c 4 -P 16 (4 connections, pipeline 16)",
    "wrk2's method (constant rate, latency from the intended send time; HdrHistogram's coordinated-omission correction), RESP GET",
    200_000
);
const APP_REDIS_SET: [MetricSpec; 2] = app_metrics!(
    "app.redis.set",
    "app.redis.set.latency",
    "RESP SET of a 64-byte value into redis-server (no persistence)",
    "redis-benchmark -t set -d 64 -c 4 -P 16 (4 connections, pipeline 16)",
    "wrk2's method (constant rate, latency from the intended send time; HdrHistogram's coordinated-omission correction), RESP SET",
    200_000
);
const APP_NGINX_1K: [MetricSpec; 2] = app_metrics!(
    "app.nginx.1k",
    "app.nginx.1k.latency",
    "HTTP/1.1 keep-alive GET of a 1 KiB static file from nginx (one worker, access log off)",
    "wrk -c 4 -t 4 (4 keep-alive connections)",
    "wrk2 -R RATE -c 4 (constant rate, latency from the intended send time)",
    20_000
);
const APP_NGINX_64K: [MetricSpec; 2] = app_metrics!(
    "app.nginx.64k",
    "app.nginx.64k.latency",
    "HTTP/1.1 keep-alive GET of a 64 KiB static file from nginx (one worker, access log off, sendfile)",
    "wrk -c 4 -t 4 (4 keep-alive connections)",
    "wrk2 -R RATE -c 4 (constant rate, latency from the intended send time)",
    20_000
);

/// Every metric the agent implements.
pub const CATALOG: &[MetricSpec] = &[
    MetricSpec {
        name: "env.start",
        family: Family::Spawn,
        unit: Unit::Ms,
        operation: "host-timed, one whole start and stop: asked to start (before any per-start work: the container's clone, QEMU's launch) → the agent's ready line read → shutdown asked at once → the environment's process reaped → what the start made removed (the container's cgroup); what is prepared once per environment (rootfs, launch spec, guest image) is outside",
        reference: "Firecracker's boot-time method (host-side, process start to guest user space), with the exit and clean-up as runc's run",
        ops_per_sample: 1,
        iterations: 10,
        quick_iterations: 3,
        bytes_per_op: 0,
        host_timed: true,
        boundary: false,
    },
    MetricSpec {
        name: "spawn.fork_exit",
        family: Family::Spawn,
        unit: Unit::Us,
        operation: "fork, child _exit(0), waitpid",
        reference: "lmbench lat_proc fork",
        ops_per_sample: 1,
        iterations: 5_000,
        quick_iterations: 200,
        bytes_per_op: 0,
        host_timed: false,
        boundary: false,
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
        bytes_per_op: 0,
        host_timed: false,
        boundary: false,
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
        bytes_per_op: 0,
        host_timed: false,
        boundary: false,
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
        bytes_per_op: 0,
        host_timed: false,
        boundary: false,
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
        bytes_per_op: 0,
        host_timed: false,
        boundary: false,
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
        bytes_per_op: 0,
        host_timed: false,
        boundary: false,
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
        bytes_per_op: 0,
        host_timed: false,
        boundary: false,
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
        bytes_per_op: 0,
        host_timed: false,
        boundary: false,
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
        bytes_per_op: 0,
        host_timed: false,
        boundary: false,
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
        bytes_per_op: 0,
        host_timed: false,
        boundary: false,
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
        bytes_per_op: 0,
        host_timed: false,
        boundary: false,
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
        bytes_per_op: 0,
        host_timed: false,
        boundary: false,
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
        bytes_per_op: 0,
        host_timed: false,
        boundary: false,
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
        bytes_per_op: 0,
        host_timed: false,
        boundary: false,
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
        bytes_per_op: 0,
        host_timed: false,
        boundary: false,
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
        bytes_per_op: 0,
        host_timed: false,
        boundary: false,
    },
    MetricSpec {
        name: "ipc.pipe_bw",
        family: Family::Ipc,
        unit: Unit::GiBps,
        operation: "64 KiB moved through a pipe from a writer process to the reader (the agent)",
        reference: "lmbench bw_pipe",
        ops_per_sample: 16,
        iterations: 200_000,
        quick_iterations: 2_000,
        bytes_per_op: 64 * 1024,
        host_timed: false,
        boundary: false,
    },
    MetricSpec {
        name: "ipc.unix_bw",
        family: Family::Ipc,
        unit: Unit::GiBps,
        operation: "64 KiB moved through an AF_UNIX stream socketpair from a writer process to the reader",
        reference: "lmbench bw_unix",
        ops_per_sample: 16,
        iterations: 200_000,
        quick_iterations: 2_000,
        bytes_per_op: 64 * 1024,
        host_timed: false,
        boundary: false,
    },
    MetricSpec {
        name: "net.tcp_stream",
        family: Family::Net,
        unit: Unit::Gbitps,
        operation: "128 KiB received over loopback TCP from a sender writing 128 KiB chunks (receiver-side throughput)",
        reference: "iperf3 -c 127.0.0.1 (receiver side), netperf TCP_STREAM",
        // 8 MiB a sample, more than loopback's socket buffers hold, so no
        // sample is one burst of already-queued data read at memcpy speed.
        ops_per_sample: 64,
        iterations: 400_000,
        quick_iterations: 2_000,
        bytes_per_op: 128 * 1024,
        host_timed: false,
        boundary: false,
    },
    MetricSpec {
        name: "net.tcp_rr.boundary",
        family: Family::Net,
        unit: Unit::Us,
        operation: "one byte from the host side + one byte echoed by the environment, across its boundary (veth, tap, slirp; loopback between two processes natively); TCP_NODELAY, closed-loop round trip timed on the host side",
        reference: "netperf TCP_RR (netperf on the host, netserver in the container or guest)",
        ops_per_sample: 1,
        iterations: 20_000,
        quick_iterations: 500,
        bytes_per_op: 0,
        host_timed: false,
        boundary: true,
    },
    MetricSpec {
        name: "net.udp_rr.boundary",
        family: Family::Net,
        unit: Unit::Us,
        operation: "one byte datagram from the host side + its echo from the environment, across its boundary; closed-loop round trip timed on the host side",
        reference: "netperf UDP_RR (netperf on the host, netserver in the container or guest)",
        ops_per_sample: 1,
        iterations: 20_000,
        quick_iterations: 500,
        bytes_per_op: 0,
        host_timed: false,
        boundary: true,
    },
    MetricSpec {
        name: "net.tcp_stream.boundary",
        family: Family::Net,
        unit: Unit::Gbitps,
        operation: "128 KiB received on the host side from a sender in the environment writing 128 KiB chunks, across its boundary (environment → host; receiver-side throughput)",
        reference: "iperf3 -R against a server in the container or guest (receiver side), netperf TCP_STREAM",
        // 8 MiB a sample: more than the socket buffers hold, so a sample is
        // not one burst of already-queued data read at memcpy speed.
        ops_per_sample: 64,
        iterations: 400_000,
        quick_iterations: 1_280,
        bytes_per_op: 128 * 1024,
        host_timed: false,
        boundary: true,
    },
    MetricSpec {
        name: "fs.seq_write_bw",
        family: Family::Fs,
        unit: Unit::MBps,
        operation: "pwrite(2) of 1 MiB with O_DIRECT at the next offset of a 32 MiB file in the data directory (laid out and synced before the clock, then overwritten pass after pass: no write allocates a block or extends the file)",
        reference: "fio --rw=write --bs=1M --direct=1 --ioengine=psync --iodepth=1 --size=32M --overwrite=1",
        ops_per_sample: 4,
        iterations: 512,
        quick_iterations: 16,
        bytes_per_op: 1 << 20,
        host_timed: false,
        boundary: false,
    },
    MetricSpec {
        name: "fs.seq_write_buffered_bw",
        family: Family::Fs,
        unit: Unit::MBps,
        operation: "pwrite(2) of 1 MiB through the page cache at the next offset of a 32 MiB file laid out before the clock, fdatasync(2) after every 16th (at most 16 MiB dirty; the cost of reaching the disk is in every 16th operation)",
        reference: "fio --rw=write --bs=1M --direct=0 --ioengine=psync --size=32M --fdatasync=16 --overwrite=1",
        ops_per_sample: 4,
        iterations: 512,
        quick_iterations: 16,
        bytes_per_op: 1 << 20,
        host_timed: false,
        boundary: false,
    },
    MetricSpec {
        name: "fs.seq_read_bw",
        family: Family::Fs,
        unit: Unit::MBps,
        operation: "pread(2) of 1 MiB with O_DIRECT at the next offset of a 32 MiB file laid out before the clock starts",
        reference: "fio --rw=read --bs=1M --direct=1 --ioengine=psync --iodepth=1 --size=32M",
        ops_per_sample: 4,
        iterations: 512,
        quick_iterations: 16,
        bytes_per_op: 1 << 20,
        host_timed: false,
        boundary: false,
    },
    MetricSpec {
        name: "fs.seq_read_buffered_bw",
        family: Family::Fs,
        unit: Unit::MBps,
        operation: "pread(2) of 1 MiB through the page cache at the next offset of a 32 MiB file whose cached pages are dropped (posix_fadvise DONTNEED) at the start of each pass, so reads miss this kernel's cache (a guest's host may still cache its disk image)",
        reference: "fio --rw=read --bs=1M --direct=0 --ioengine=psync --size=32M --invalidate=1",
        ops_per_sample: 4,
        iterations: 512,
        quick_iterations: 16,
        bytes_per_op: 1 << 20,
        host_timed: false,
        boundary: false,
    },
    MetricSpec {
        name: "fs.rand_read",
        family: Family::Fs,
        unit: Unit::Us,
        operation: "pread(2) of 4 KiB with O_DIRECT at a random 4 KiB-aligned offset of a 32 MiB file, queue depth 1 (IOPS = 10^6 / mean µs)",
        reference: "fio --rw=randread --bs=4k --direct=1 --ioengine=psync --iodepth=1 --size=32M (clat)",
        ops_per_sample: 1,
        iterations: 20_000,
        quick_iterations: 500,
        bytes_per_op: 0,
        host_timed: false,
        boundary: false,
    },
    MetricSpec {
        name: "fs.rand_write",
        family: Family::Fs,
        unit: Unit::Us,
        operation: "pwrite(2) of 4 KiB with O_DIRECT at a random 4 KiB-aligned offset of a 32 MiB file laid out before the clock starts, queue depth 1 (IOPS = 10^6 / mean µs)",
        reference: "fio --rw=randwrite --bs=4k --direct=1 --ioengine=psync --iodepth=1 --size=32M (clat)",
        ops_per_sample: 1,
        iterations: 20_000,
        quick_iterations: 500,
        bytes_per_op: 0,
        host_timed: false,
        boundary: false,
    },
    MetricSpec {
        name: "fs.fsync",
        family: Family::Fs,
        unit: Unit::Us,
        operation: "pwrite(2) of 4 KiB through the page cache at the next offset of a 1 MiB file laid out before the clock starts, then fdatasync(2)",
        reference: "fio --rw=write --bs=4k --direct=0 --ioengine=psync --fdatasync=1 --size=1M (write + sync latency)",
        ops_per_sample: 1,
        iterations: 2_000,
        quick_iterations: 100,
        bytes_per_op: 0,
        host_timed: false,
        boundary: false,
    },
    MetricSpec {
        name: "fs.create_unlink",
        family: Family::Fs,
        unit: Unit::Us,
        operation: "open(O_CREAT|O_EXCL) of a new file in the data directory, write(2) of 4 KiB, close, unlink",
        reference: "lmbench lat_fs (create + delete of a 4 KiB file), one file at a time",
        ops_per_sample: 1,
        iterations: 10_000,
        quick_iterations: 500,
        bytes_per_op: 0,
        host_timed: false,
        boundary: false,
    },
    MetricSpec {
        name: "fs.stat",
        family: Family::Fs,
        unit: Unit::Ns,
        operation: "stat(2) of a 4 KiB file in the data directory (a real file, where syscall.stat takes /dev/null)",
        reference: "lmbench lat_syscall stat FILE",
        ops_per_sample: 20,
        iterations: 300_000,
        quick_iterations: 5_000,
        bytes_per_op: 0,
        host_timed: false,
        boundary: false,
    },
    MetricSpec {
        name: "fs.open_close",
        family: Family::Fs,
        unit: Unit::Ns,
        operation: "open(O_RDONLY) + close of a 4 KiB file in the data directory (a real file, where syscall.open_close takes /dev/null)",
        reference: "lmbench lat_syscall open FILE",
        ops_per_sample: 20,
        iterations: 200_000,
        quick_iterations: 5_000,
        bytes_per_op: 0,
        host_timed: false,
        boundary: false,
    },
    MetricSpec {
        name: "cpu.spin",
        family: Family::Control,
        unit: Unit::Ns,
        operation: "1000 rounds of a dependent xorshift64 arithmetic loop, no memory traffic, no system call",
        reference: "control: pure user-mode compute, which no isolation should slow",
        ops_per_sample: 10,
        iterations: 200_000,
        quick_iterations: 5_000,
        bytes_per_op: 0,
        host_timed: false,
        boundary: false,
    },
    MetricSpec {
        name: "mem.copy_bw",
        family: Family::Control,
        unit: Unit::GiBps,
        operation: "memcpy of a buffer twice the last-level cache (at least 16 MiB, at most a third of the memory left: MemAvailable and the memory cgroup's limit)",
        reference: "lmbench bw_mem bcopy; STREAM copy",
        ops_per_sample: 1,
        iterations: 200,
        quick_iterations: 10,
        bytes_per_op: 0,
        host_timed: false,
        boundary: false,
    },
    APP_REDIS_GET[0],
    APP_REDIS_GET[1],
    APP_REDIS_SET[0],
    APP_REDIS_SET[1],
    APP_NGINX_1K[0],
    APP_NGINX_1K[1],
    APP_NGINX_64K[0],
    APP_NGINX_64K[1],
];

/// What `all` selects: every metric but the app family's.
pub fn in_all() -> impl Iterator<Item = &'static MetricSpec> {
    CATALOG.iter().filter(|m| m.family != Family::App)
}

/// Looks a metric up by its dotted name.
pub fn lookup(name: &str) -> Option<&'static MetricSpec> {
    CATALOG.iter().find(|m| m.name == name)
}

/// All metric names, in catalogue order.
pub fn names() -> impl Iterator<Item = &'static str> {
    CATALOG.iter().map(|m| m.name)
}

/// Metrics chosen by name, family or `all`, as `isobench run --metric` takes
/// them: a comma-separated list of metric names (`syscall.getpid`), family
/// names (`syscall`, every metric of the family in catalogue order) and
/// `all` (the whole catalogue but the app family, which starts real
/// servers and is chosen by naming it: `app`), kept in the order given,
/// each metric once. A word without a dot is a family (every metric name
/// has one). The default is `all`.
#[derive(Debug, Clone)]
pub struct MetricSelection(Vec<&'static MetricSpec>);

impl MetricSelection {
    /// The word for the whole catalogue.
    pub const ALL_WORD: &'static str = "all";

    /// The metrics, in the order chosen.
    pub fn specs(&self) -> &[&'static MetricSpec] {
        &self.0
    }

    /// The metrics, in the order chosen.
    pub fn into_specs(self) -> Vec<&'static MetricSpec> {
        self.0
    }

    /// True when every metric of the catalogue is chosen, in catalogue order.
    pub fn is_all(&self) -> bool {
        self.0.len() == in_all().count() && self.0.iter().zip(in_all()).all(|(a, b)| a.name == b.name)
    }
}

impl Default for MetricSelection {
    fn default() -> MetricSelection {
        MetricSelection(in_all().collect())
    }
}

impl PartialEq for MetricSelection {
    fn eq(&self, other: &MetricSelection) -> bool {
        self.0.len() == other.0.len() && self.0.iter().zip(&other.0).all(|(a, b)| a.name == b.name)
    }
}

impl FromStr for MetricSelection {
    type Err = CatalogError;

    /// Errors: one line naming the unknown word and the choices; a list
    /// with no word at all is [`CatalogError::Empty`].
    fn from_str(s: &str) -> Result<MetricSelection, CatalogError> {
        let mut out: Vec<&'static MetricSpec> = Vec::new();
        for word in s.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            let matched: Vec<&'static MetricSpec> = if word == MetricSelection::ALL_WORD {
                in_all().collect()
            } else if !word.contains('.') && prefixes().contains(&word) {
                CATALOG.iter().filter(|m| m.name.split('.').next() == Some(word)).collect()
            } else if !word.contains('.') {
                let family: Family = word.parse()?;
                CATALOG.iter().filter(|m| m.family == family).collect()
            } else {
                vec![lookup(word).ok_or_else(|| CatalogError::UnknownMetric(word.to_string()))?]
            };
            for m in matched {
                if !out.iter().any(|x| x.name == m.name) {
                    out.push(m);
                }
            }
        }
        if out.is_empty() {
            return Err(CatalogError::Empty);
        }
        Ok(MetricSelection(out))
    }
}

impl std::fmt::Display for MetricSelection {
    /// `all` for the whole catalogue, else the names, comma-separated: what
    /// parses back to the same selection.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_all() {
            return f.write_str(MetricSelection::ALL_WORD);
        }
        f.write_str(&self.0.iter().map(|m| m.name).collect::<Vec<_>>().join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_names_first_part_selects_its_metrics_as_a_family_does() {
        assert_eq!(prefixes(), ["env", "cpu", "mem"]);
        let names = |s: &str| s.parse::<MetricSelection>().unwrap().0.iter().map(|m| m.name).collect::<Vec<_>>();
        assert_eq!(names("cpu"), ["cpu.spin"]);
        assert_eq!(names("env,mem"), ["env.start", "mem.copy_bw"]);
        assert!(names("syscall").iter().all(|n| n.starts_with("syscall.")));
        let e = "cpux".parse::<MetricSelection>().unwrap_err().to_string();
        assert!(e.contains("spawn, syscall, ipc, net, fs, control, app") && e.contains("(env, cpu, mem)"), "{e}");
    }

    #[test]
    fn names_are_unique_and_prefixed_by_family() {
        let mut seen = std::collections::HashSet::new();
        for m in CATALOG {
            assert!(seen.insert(m.name), "duplicate metric {}", m.name);
            if m.family != Family::Control && !m.host_timed {
                assert!(m.name.starts_with(m.family.as_str()), "{} is not in family {:?}", m.name, m.family);
            }
            assert_eq!(m.unit.is_rate(), m.bytes_per_op > 0 || m.name == "mem.copy_bw" || m.unit == Unit::ReqPerS, "{}", m.name);
            if m.family == Family::App {
                assert_eq!(m.open_loop(), m.unit == Unit::Us, "{}", m.name);
                assert_eq!(m.closed_twin().map(|t| t.unit), m.open_loop().then_some(Unit::ReqPerS), "{}", m.name);
                assert!(
                    m.across() && crate::app::App::of_metric(m.name).is_some() && crate::app::proto::Op::of_metric(m.name).is_some(),
                    "{}",
                    m.name
                );
            }
            assert_eq!(m.family == Family::Fs, m.needs_data_dir(), "{}", m.name);
            assert!(m.ops_per_sample >= 1 && m.quick_iterations >= m.ops_per_sample);
            assert_eq!(m.boundary, m.name.ends_with(BOUNDARY_SUFFIX), "{}", m.name);
            if m.boundary {
                let inside = m.inside().unwrap_or_else(|| panic!("{} has no inside twin", m.name));
                assert_eq!((inside.unit, inside.bytes_per_op, inside.family), (m.unit, m.bytes_per_op, m.family));
            }
        }
        assert!(lookup("syscall.getpid").is_some());
        assert!(lookup("syscall.nope").is_none());
    }

    #[test]
    fn every_name_has_a_dot_so_a_word_without_one_is_a_family() {
        for m in CATALOG {
            assert!(m.name.contains('.'), "{}", m.name);
        }
        for f in Family::ALL {
            assert!(!f.as_str().contains('.') && f.as_str() != MetricSelection::ALL_WORD);
            assert_eq!(f.as_str().parse::<Family>(), Ok(f));
        }
    }

    #[test]
    fn a_selection_takes_names_families_and_all_in_order_each_once() {
        let names = |s: &str| s.parse::<MetricSelection>().unwrap().specs().iter().map(|m| m.name).collect::<Vec<_>>();
        assert_eq!(names("ipc.pipe_rtt, syscall.getpid,ipc.pipe_rtt"), ["ipc.pipe_rtt", "syscall.getpid"]);
        assert_eq!(names("control"), ["cpu.spin", "mem.copy_bw"]);
        assert_eq!(names("mem.copy_bw,control"), ["mem.copy_bw", "cpu.spin"]);
        let all = "all".parse::<MetricSelection>().unwrap();
        assert_eq!(all, MetricSelection::default());
        assert_eq!(all.specs().len(), CATALOG.len() - 8, "all but the 8 app metrics");
        assert!(all.specs().iter().all(|m| m.family != Family::App));
        assert_eq!(names("app").len(), 8);
        assert_eq!(names("all,app").len(), CATALOG.len());
        assert_eq!(all.to_string(), "all");
        let some = "syscall,ipc.pipe_rtt".parse::<MetricSelection>().unwrap();
        assert_eq!(some.to_string().parse::<MetricSelection>().unwrap(), some);
        assert!(!some.is_all());
    }

    #[test]
    fn an_unknown_word_is_one_line_with_the_choices() {
        let e = "syscall.getpidd".parse::<MetricSelection>().unwrap_err();
        assert_eq!(e, CatalogError::UnknownMetric("syscall.getpidd".into()));
        let line = e.to_string();
        assert!(!line.contains('\n') && line.starts_with("unknown metric \"syscall.getpidd\"; known: env.start, "), "{line}");
        assert!(line.contains("syscall.getpid,") && line.ends_with("(or a family: spawn, syscall, ipc, net, fs, control, app, or all)"), "{line}");
        let e = "sycall".parse::<MetricSelection>().unwrap_err().to_string();
        assert_eq!(
            e,
            "unknown metric family \"sycall\"; choose from spawn, syscall, ipc, net, fs, control, app, a name's first part (env, cpu, mem) or all (or a metric name: see `isobench list`)"
        );
        assert_eq!(" , ".parse::<MetricSelection>().unwrap_err(), CatalogError::Empty);
    }
}
