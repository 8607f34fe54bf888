//! The measurement loop shared by every metric, and the metric registry.
//!
//! Method (lmbench's): warm up untimed, then time the operation in samples of
//! `ops_per_sample` operations, each sample bounded by both a count and a
//! wall-clock limit so a slow environment (TCG) still finishes. One
//! histogram value per sample: the mean ns per operation of that sample. The
//! loop body holds only the measured operation; allocation, formatting and
//! process setup happen before the clock starts. Every metric runs pinned to
//! one CPU, with the processes and threads it creates ([`CpuPin`]).

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::catalog::{self, MetricSpec};
use crate::hist;
use crate::protocol::{RunRequest, RunResult};

pub mod control;
pub mod ipc;
pub mod net;
pub mod spawn;
pub mod syscall;

#[derive(Debug, thiserror::Error)]
pub enum MetricError {
    #[error("unknown metric {0:?}; known: {1}")]
    Unknown(String, String),
    #[error("{metric}: {context}: {source}")]
    Io {
        metric: &'static str,
        context: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{metric}: {message}")]
    Failed { metric: &'static str, message: String },
    #[error(transparent)]
    Hist(#[from] hist::HistError),
}

/// Context a metric needs from the agent (paths resolved at start-up).
#[derive(Debug, Clone)]
pub struct Context {
    /// The static no-op binary that spawn metrics exec.
    pub noop: std::ffi::CString,
}

/// Pins the calling thread (and so every process or thread it then creates)
/// to the CPU it is running on, and restores the previous affinity on drop.
///
/// A round trip between two processes on one CPU costs two context switches;
/// on two CPUs it costs cross-CPU wake-ups, which in a virtual machine can be
/// ten times slower (an IPI to a halted vCPU). Left to the scheduler, the pair
/// lands either way from one run to the next and the figure is bimodal.
/// Pinning makes it one well-defined quantity, the same one a 1-vCPU guest
/// measures (`perf bench sched pipe` offers the same choice with `-T`).
pub struct CpuPin {
    saved: Option<nix::sched::CpuSet>,
}

impl CpuPin {
    pub fn to_current_cpu() -> CpuPin {
        CpuPin::to(None)
    }

    /// Pins to `cpu`, or to the current CPU when `None` (or when `cpu` is not
    /// one this thread may run on: the pin is then to the current CPU too).
    pub fn to(cpu: Option<u32>) -> CpuPin {
        use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
        use nix::unistd::Pid;
        let saved = sched_getaffinity(Pid::from_raw(0)).ok();
        let allowed = |c: u32| saved.as_ref().is_some_and(|set| set.is_set(c as usize).unwrap_or(false));
        let cpu = match cpu {
            Some(c) if allowed(c) => c as i32,
            // SAFETY: sched_getcpu has no arguments and only reads the current CPU.
            _ => unsafe { libc::sched_getcpu() },
        };
        if cpu >= 0 {
            let mut one = CpuSet::new();
            if one.set(cpu as usize).is_ok() {
                let _ = sched_setaffinity(Pid::from_raw(0), &one);
            }
        }
        CpuPin { saved }
    }
}

impl Drop for CpuPin {
    fn drop(&mut self) {
        if let Some(set) = &self.saved {
            let _ = nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), set);
        }
    }
}

/// Runs the metric named in `req`, pinned to one CPU (see [`CpuPin`]).
pub fn run(req: &RunRequest, ctx: &Context) -> Result<RunResult, MetricError> {
    let spec =
        catalog::lookup(&req.metric).ok_or_else(|| MetricError::Unknown(req.metric.clone(), catalog::names().collect::<Vec<_>>().join(", ")))?;
    if spec.host_timed {
        return Err(MetricError::Failed {
            metric: spec.name,
            message: "is timed by the harness from outside the environment, not by the agent".into(),
        });
    }
    if spec.boundary != req.target.is_some() {
        let message = match spec.boundary {
            true => "is measured across the boundary: the harness runs it on a host-side agent with a target (isobench run does)".to_string(),
            false => format!("takes no target (got {:?})", req.target),
        };
        return Err(MetricError::Failed { metric: spec.name, message });
    }
    let _pin = CpuPin::to(req.cpu);
    if let Some(target) = &req.target {
        let target: std::net::SocketAddr =
            target.parse().map_err(|e| MetricError::Failed { metric: spec.name, message: format!("bad target {target:?}: {e}") })?;
        return net::boundary_client(spec, req, target);
    }
    match spec.name {
        "spawn.fork_exit" => spawn::fork_exit(spec, req),
        "spawn.fork_exec" => spawn::fork_exec(spec, req, ctx),
        "spawn.posix_spawn" => spawn::posix_spawn(spec, req, ctx),
        "spawn.thread" => spawn::thread(spec, req),
        "syscall.getpid" => syscall::getpid(spec, req),
        "syscall.clock_gettime" => syscall::clock_gettime(spec, req),
        "syscall.read_devnull" => syscall::read_devnull(spec, req),
        "syscall.write_devnull" => syscall::write_devnull(spec, req),
        "syscall.open_close" => syscall::open_close(spec, req),
        "syscall.stat" => syscall::stat(spec, req),
        "syscall.mmap_munmap" => syscall::mmap_munmap(spec, req),
        "ipc.pipe_rtt" => ipc::pipe_rtt(spec, req),
        "ipc.unix_rtt" => ipc::unix_rtt(spec, req),
        "ipc.eventfd_rtt" => ipc::eventfd_rtt(spec, req),
        "net.tcp_rr" => net::tcp_rr(spec, req),
        "net.udp_rr" => net::udp_rr(spec, req),
        "net.tcp_stream" => net::tcp_stream(spec, req),
        "ipc.pipe_bw" => ipc::pipe_bw(spec, req),
        "ipc.unix_bw" => ipc::unix_bw(spec, req),
        "cpu.spin" => control::cpu_spin(spec, req),
        "mem.copy_bw" => control::mem_copy_bw(spec, req),
        other => Err(MetricError::Failed { metric: spec.name, message: format!("{other} is in the catalogue but has no implementation") }),
    }
}

/// Times `op` as `req` asks and builds the [`RunResult`].
///
/// Each sample's duration has the measured cost of one clock read
/// ([`timer_overhead_ns`]) subtracted before it is divided by the operations
/// in the sample, as lmbench subtracts its timing overhead. `op` returns
/// `Err` to abort the run (a failed syscall is never timed as if it had
/// worked).
pub fn time_loop<E>(spec: &MetricSpec, req: &RunRequest, mut op: impl FnMut() -> Result<(), E>) -> Result<RunResult, E>
where
    E: From<hist::HistError>,
{
    let ops = spec.ops_per_sample.max(1);
    let overhead = timer_overhead_ns();
    let overhead_d = Duration::from_nanos(overhead as u64);
    for _ in 0..req.warmup {
        op()?;
    }
    let samples = req.iterations.div_ceil(ops).max(1);
    let limit = Duration::from_millis(req.max_ms);
    let mut h: Histogram<u64> = hist::new_ns();
    let mut done = 0u64;
    let mut busy = Duration::ZERO;
    let start = Instant::now();
    for _ in 0..samples {
        let t0 = Instant::now();
        for _ in 0..ops {
            op()?;
        }
        let t1 = Instant::now();
        let d = (t1 - t0).saturating_sub(overhead_d);
        busy += d;
        done += ops;
        let per_op = (d.as_nanos() / ops as u128).max(1) as u64;
        h.record(per_op).expect("auto-resizing histogram accepts any value");
        if t1 - start >= limit {
            break;
        }
    }
    Ok(RunResult {
        metric: spec.name.to_string(),
        iterations: done,
        elapsed_ns: busy.as_nanos() as u64,
        ops_per_sample: ops,
        histogram: hist::encode(&h)?,
        truncated: done < samples * ops,
        bytes_per_op: spec.bytes_per_op,
        timer_overhead_ns: overhead,
    })
}

/// Cost of one `Instant::now()` (clock_gettime(CLOCK_MONOTONIC)), ns: the
/// median of many back-to-back pairs, measured once per process.
pub fn timer_overhead_ns() -> f64 {
    static OVERHEAD: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *OVERHEAD.get_or_init(|| {
        const N: usize = 2_001;
        let mut v: Vec<u64> = Vec::with_capacity(N);
        for _ in 0..N {
            let a = Instant::now();
            let b = Instant::now();
            v.push((b - a).as_nanos() as u64);
        }
        v.sort_unstable();
        v[N / 2] as f64
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(metric: &str, iterations: u64, max_ms: u64) -> RunRequest {
        RunRequest::new(metric, iterations, max_ms)
    }

    #[test]
    fn loop_counts_whole_samples_and_respects_the_time_bound() {
        let spec = catalog::lookup("syscall.getpid").unwrap();
        let mut calls = 0u64;
        let r = time_loop::<MetricError>(spec, &req("syscall.getpid", 250, 10_000), || {
            calls += 1;
            Ok(())
        })
        .unwrap();
        // 250 rounded up to whole samples of 100
        assert_eq!(r.iterations, 300);
        assert_eq!(calls, 300);
        assert!(!r.truncated);
        assert_eq!(hist::decode(&r.histogram).unwrap().len(), 3);

        // a slow operation stops at the time limit
        let spec = catalog::lookup("ipc.pipe_rtt").unwrap();
        let r = time_loop::<MetricError>(spec, &req("ipc.pipe_rtt", 1_000_000, 20), || {
            std::thread::sleep(Duration::from_millis(5));
            Ok(())
        })
        .unwrap();
        assert!(r.truncated);
        // every sample sleeps ≥ 5 ms, so the 20 ms bound is crossed by the 4th
        assert!((1..=4).contains(&r.iterations), "{}", r.iterations);
        assert!(r.elapsed_ns >= 5_000_000 * r.iterations);
    }

    #[test]
    fn pin_holds_one_cpu_and_restores_the_mask() {
        use nix::sched::sched_getaffinity;
        use nix::unistd::Pid;
        let count = |s: &nix::sched::CpuSet| (0..nix::sched::CpuSet::count()).filter(|&i| s.is_set(i).unwrap_or(false)).count();
        let before = sched_getaffinity(Pid::from_raw(0)).unwrap();
        {
            let _pin = CpuPin::to_current_cpu();
            assert_eq!(count(&sched_getaffinity(Pid::from_raw(0)).unwrap()), 1);
        }
        assert_eq!(count(&sched_getaffinity(Pid::from_raw(0)).unwrap()), count(&before));
    }

    #[test]
    fn unknown_metric_names_the_known_ones() {
        let ctx = Context { noop: std::ffi::CString::new("/bin/true").unwrap() };
        let err = run(&req("syscall.nope", 1, 1), &ctx).unwrap_err().to_string();
        assert!(err.contains("syscall.nope") && err.contains("syscall.getpid"), "{err}");
    }
}
