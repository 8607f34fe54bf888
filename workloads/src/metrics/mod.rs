//! The measurement loop shared by every metric, and the metric registry.
//!
//! Method (lmbench's): warm up untimed, then time the operation in samples of
//! `ops_per_sample` operations, each sample bounded by both a count and a
//! wall-clock limit so a slow environment (TCG) still finishes. One
//! histogram value per sample: the mean ns per operation of that sample. The
//! loop body holds only the measured operation; allocation, formatting and
//! process setup happen before the clock starts.
//!
//! CPU placement ([`Placement`], chosen by [`RunRequest::pin`]): by default
//! every metric runs pinned to one CPU with the processes and threads it
//! creates ([`CpuPin`]); `split` puts a two-party metric's peer (echo or
//! writer process, echo or sender thread) on another CPU; `none` pins
//! nothing. The result says what was applied ([`RunResult::pinning`]).

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::catalog::{self, MetricSpec};
use crate::hist;
use crate::protocol::{LoopPhase, PinMode, RunRequest, RunResult};

pub mod control;
pub mod fs;
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
    /// What this environment cannot do at all (O_DIRECT on tmpfs): a
    /// finding about the environment, not a failed measurement. The
    /// message reads "<metric>: not supported <reason>" ("fs.rand_read:
    /// not supported on ramfs: O_DIRECT refused (EINVAL)"), which the
    /// harness recognises ([`NOT_SUPPORTED`] right after the metric's name).
    #[error("{metric}: {NOT_SUPPORTED} {reason}")]
    NotSupported { metric: &'static str, reason: String },
    #[error(transparent)]
    Hist(#[from] hist::HistError),
}

/// What an agent's error message says right after the metric's name when
/// the environment cannot run the metric at all ([`MetricError::NotSupported`]).
pub const NOT_SUPPORTED: &str = "not supported";

/// Context a metric needs from the agent (paths resolved at start-up).
#[derive(Debug, Clone)]
pub struct Context {
    /// The static no-op binary that spawn metrics exec (its full path).
    pub noop: std::ffi::CString,
}

impl Context {
    /// The context for the no-op at `noop`.
    pub fn for_noop(noop: &std::path::Path) -> Context {
        Context { noop: std::ffi::CString::new(noop.as_os_str().as_encoded_bytes()).unwrap_or_default() }
    }
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
    cpu: Option<u32>,
}

impl CpuPin {
    /// The CPU this thread is pinned to (`None` when pinning failed).
    pub fn cpu(&self) -> Option<u32> {
        self.cpu
    }

    pub fn to_current_cpu() -> CpuPin {
        CpuPin::to(None)
    }

    /// Pins to `cpu`, or to the current CPU when `None` (or when `cpu` is not
    /// one this thread may run on: the pin is then to the current CPU too).
    pub fn to(cpu: Option<u32>) -> CpuPin {
        use nix::sched::sched_getaffinity;
        use nix::unistd::Pid;
        let saved = sched_getaffinity(Pid::from_raw(0)).ok();
        let allowed = |c: u32| saved.as_ref().is_some_and(|set| set.is_set(c as usize).unwrap_or(false));
        let cpu = match cpu {
            Some(c) if allowed(c) => c as i32,
            // SAFETY: sched_getcpu has no arguments and only reads the current CPU.
            _ => unsafe { libc::sched_getcpu() },
        };
        let pinned = u32::try_from(cpu).ok().filter(|&c| set_affinity(&[c]));
        CpuPin { saved, cpu: pinned }
    }
}

/// Restricts the calling thread to `cpus`; false when the kernel refused.
fn set_affinity(cpus: &[u32]) -> bool {
    let mut set = nix::sched::CpuSet::new();
    for &c in cpus {
        if set.set(c as usize).is_err() {
            return false;
        }
    }
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set).is_ok()
}

/// The CPUs the calling thread may run on (its affinity mask, which a
/// cgroup cpuset or a guest's vCPU count bounds), lowest first.
pub fn allowed_cpus() -> Vec<u32> {
    let Ok(set) = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)) else { return Vec::new() };
    (0..nix::sched::CpuSet::count()).filter(|&i| set.is_set(i).unwrap_or(false)).map(|i| i as u32).collect()
}

/// The CPU the calling thread runs on now.
pub fn current_cpu() -> Option<u32> {
    // SAFETY: sched_getcpu has no arguments and only reads the current CPU.
    u32::try_from(unsafe { libc::sched_getcpu() }).ok()
}

/// Where a metric's two ends run: the measuring thread on `own`, its peer
/// (the process or thread it creates) on `peer`. Chosen once per run from
/// the request and the CPUs this thread may use, before anything is pinned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    /// What is really applied (`Same` when `Split` was impossible).
    pub applied: PinMode,
    /// The measuring thread's CPU; `None`: unpinned.
    pub own: Option<u32>,
    /// The peer's CPU; `None`: unpinned (or a metric without a peer).
    pub peer: Option<u32>,
}

impl Placement {
    /// Nothing pinned: what `PinMode::None` applies, and what a metric
    /// called directly (not through [`run`]) gets in tests.
    pub const UNPINNED: Placement = Placement { applied: PinMode::None, own: None, peer: None };

    /// Chooses CPUs for `mode`. `cpu` is the measuring thread's CPU when it
    /// is allowed here, else the current one. Under `Split` the peer gets the
    /// lowest allowed CPU other than that; with one allowed CPU, or for a
    /// metric without a peer (`has_peer` false), `Split` becomes `Same`.
    pub fn choose(mode: PinMode, cpu: Option<u32>, has_peer: bool) -> Placement {
        if mode == PinMode::None {
            return Placement::UNPINNED;
        }
        let allowed = allowed_cpus();
        let own = cpu.filter(|c| allowed.contains(c)).or_else(current_cpu).or_else(|| allowed.first().copied());
        let other = allowed.iter().copied().find(|&c| Some(c) != own);
        match (mode, has_peer, other) {
            (PinMode::Split, true, Some(peer)) if own.is_some() => Placement { applied: PinMode::Split, own, peer: Some(peer) },
            _ => Placement { applied: PinMode::Same, own, peer: if has_peer { own } else { None } },
        }
    }

    /// Pins the calling (measuring) thread to `own` until the guard drops;
    /// no-op when unpinned.
    pub fn pin_own(&self) -> Option<CpuPin> {
        self.own.map(|c| CpuPin::to(Some(c)))
    }

    /// Runs `create` (a thread spawn: a new thread inherits its creator's
    /// mask) with the calling thread's affinity set to the peer's CPU, so
    /// that the thread starts there, then restores the measuring CPU. Under
    /// `Same` the masks already agree and under `None` nothing is pinned, so
    /// `create` just runs. Not for fork, which returns twice: see
    /// [`Placement::fork_peer`].
    pub fn spawn_peer<T>(&self, create: impl FnOnce() -> T) -> T {
        match (self.own, self.peer) {
            (Some(own), Some(peer)) if own != peer => {
                set_affinity(&[peer]);
                let out = create();
                set_affinity(&[own]);
                out
            }
            _ => create(),
        }
    }

    /// fork(2) with the child on the peer's CPU: the calling thread's mask is
    /// set to the peer's CPU around the fork and restored in the parent only,
    /// so the child inherits it and never touches its mask itself.
    ///
    /// # Safety
    /// As [`nix::unistd::fork`]: in a multi-threaded caller the child may only
    /// call async-signal-safe functions until it execs or exits.
    pub unsafe fn fork_peer(&self) -> nix::Result<nix::unistd::ForkResult> {
        match (self.own, self.peer) {
            (Some(own), Some(peer)) if own != peer => {
                set_affinity(&[peer]);
                // SAFETY: the caller upholds fork's contract (see above).
                let out = unsafe { nix::unistd::fork() };
                if matches!(out, Ok(nix::unistd::ForkResult::Parent { .. }) | Err(_)) {
                    set_affinity(&[own]);
                }
                out
            }
            // SAFETY: as above.
            _ => unsafe { nix::unistd::fork() },
        }
    }

    /// The CPUs for `RunResult::cpus`: measuring then peer, one entry when
    /// they share one, none when unpinned.
    pub fn cpus(&self) -> Vec<u32> {
        match (self.own, self.peer) {
            (Some(a), Some(b)) if a != b => vec![a, b],
            (Some(a), _) => vec![a],
            _ => Vec::new(),
        }
    }
}

/// Test-only record of where the ends of a metric really ran: the
/// measuring thread's mask, each peer's mask (read from
/// /proc/<pid>/status for a process, from the thread itself for a thread),
/// keyed by the test thread that ran the metric.
#[cfg(test)]
pub(crate) mod observe {
    use std::sync::Mutex;
    use std::thread::ThreadId;

    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Seen {
        pub role: &'static str,
        pub mask: Vec<u32>,
        /// sched_getcpu of a peer thread (it ran there).
        pub ran_on: Option<u32>,
    }

    static LOG: Mutex<Vec<(ThreadId, Seen)>> = Mutex::new(Vec::new());

    fn push(owner: ThreadId, seen: Seen) {
        LOG.lock().unwrap().push((owner, seen));
    }

    /// The id a peer thread records under (call before spawning it).
    pub fn creator() -> ThreadId {
        std::thread::current().id()
    }

    pub fn measuring() {
        push(creator(), Seen { role: "measuring", mask: super::allowed_cpus(), ran_on: super::current_cpu() });
    }

    pub fn peer_thread(owner: ThreadId) {
        push(owner, Seen { role: "peer thread", mask: super::allowed_cpus(), ran_on: super::current_cpu() });
    }

    /// A forked peer's mask as the kernel shows it (Cpus_allowed_list).
    pub fn peer_process(pid: i32) {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let list = status.lines().find_map(|l| l.strip_prefix("Cpus_allowed_list:")).unwrap_or("").trim().to_string();
        let mut mask = Vec::new();
        for part in list.split(',').filter(|p| !p.is_empty()) {
            let (a, b) = part.split_once('-').unwrap_or((part, part));
            mask.extend(a.parse::<u32>().unwrap()..=b.parse::<u32>().unwrap());
        }
        push(creator(), Seen { role: "peer process", mask, ran_on: None });
    }

    /// What the calling test thread's metric runs recorded, emptied.
    pub fn take() -> Vec<Seen> {
        let me = creator();
        let mut log = LOG.lock().unwrap();
        let (mine, rest): (Vec<_>, Vec<_>) = log.drain(..).partition(|(t, _)| *t == me);
        *log = rest;
        mine.into_iter().map(|(_, s)| s).collect()
    }
}

impl Drop for CpuPin {
    fn drop(&mut self) {
        if let Some(set) = &self.saved {
            let _ = nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), set);
        }
    }
}

/// Runs the metric named in `req`, placed on CPUs as `req.pin` asks (see
/// [`Placement`]); the result's `pinning` and `cpus` say what was applied.
///
/// Errors: an unknown or host-timed metric, a target given to an inside
/// metric or missing for a `*.boundary` one, or the metric failing.
pub fn run(req: &RunRequest, ctx: &Context) -> Result<RunResult, MetricError> {
    let spec =
        catalog::lookup(&req.metric).ok_or_else(|| MetricError::Unknown(req.metric.clone(), catalog::names().collect::<Vec<_>>().join(", ")))?;
    check(spec, req)?;
    if spec.host_timed {
        return Err(MetricError::Failed {
            metric: spec.name,
            message: "is timed by the harness from outside the environment, not by the agent".into(),
        });
    }
    if spec.across() != req.target.is_some() {
        let message = match spec.across() {
            true => "is measured across the boundary: the harness runs it on a host-side agent with a target (isobench run does)".to_string(),
            false => format!("takes no target (got {:?})", req.target),
        };
        return Err(MetricError::Failed { metric: spec.name, message });
    }
    // A boundary client's peer is the environment's server, which the
    // harness places (it picks both CPUs); here only the client is pinned.
    let place = Placement::choose(req.pin, req.cpu, spec.two_party() && !spec.boundary);
    let _pin = place.pin_own();
    let applied = |mut r: RunResult| {
        r.pinning = place.applied;
        r.cpus = place.cpus();
        r
    };
    if let Some(target) = &req.target {
        let target: std::net::SocketAddr =
            target.parse().map_err(|e| MetricError::Failed { metric: spec.name, message: format!("bad target {target:?}: {e}") })?;
        if spec.family == catalog::Family::App {
            return crate::app::load::measure(spec, req, target).map(applied);
        }
        return net::boundary_client(spec, req, target).map(applied);
    }
    let p = &place;
    let r = match spec.name {
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
        "ipc.pipe_rtt" => ipc::pipe_rtt(spec, req, p),
        "ipc.unix_rtt" => ipc::unix_rtt(spec, req, p),
        "ipc.eventfd_rtt" => ipc::eventfd_rtt(spec, req, p),
        "net.tcp_rr" => net::tcp_rr(spec, req, p),
        "net.udp_rr" => net::udp_rr(spec, req, p),
        "net.tcp_stream" => net::tcp_stream(spec, req, p),
        "ipc.pipe_bw" => ipc::pipe_bw(spec, req, p),
        "ipc.unix_bw" => ipc::unix_bw(spec, req, p),
        "fs.seq_write_bw" => fs::seq_write(spec, req, true),
        "fs.seq_write_buffered_bw" => fs::seq_write(spec, req, false),
        "fs.seq_read_bw" => fs::seq_read(spec, req, true),
        "fs.seq_read_buffered_bw" => fs::seq_read(spec, req, false),
        "fs.rand_read" => fs::rand_read(spec, req),
        "fs.rand_write" => fs::rand_write(spec, req),
        "fs.fsync" => fs::fsync(spec, req),
        "fs.create_unlink" => fs::create_unlink(spec, req),
        "fs.stat" => fs::stat(spec, req),
        "fs.open_close" => fs::open_close(spec, req),
        "cpu.spin" => control::cpu_spin(spec, req),
        "mem.copy_bw" => control::mem_copy_bw(spec, req),
        other => Err(MetricError::Failed { metric: spec.name, message: format!("{other} is in the catalogue but has no implementation") }),
    };
    r.map(applied)
}

/// Checks every parameter of `req` against its documented range
/// ([`crate::protocol::bounds`]) before anything is allocated or run; the
/// error names the parameter, the value and the range.
pub fn check(spec: &'static MetricSpec, req: &RunRequest) -> Result<(), MetricError> {
    use crate::protocol::bounds;
    let out = |name: &str, value: String, range: String| MetricError::Failed {
        metric: spec.name,
        message: format!("{name} {value} is out of range {range}"),
    };
    let within = |name: &str, v: u64, r: std::ops::RangeInclusive<u64>| match r.contains(&v) {
        true => Ok(()),
        false => Err(out(name, v.to_string(), format!("{}..={}", r.start(), r.end()))),
    };
    within("iterations", req.iterations, bounds::ITERATIONS)?;
    within("max_ms", req.max_ms, bounds::MAX_MS)?;
    within("warmup", req.warmup, bounds::WARMUP)?;
    if let Some(cpu) = req.cpu {
        within("cpu", cpu.into(), (*bounds::CPU.start()).into()..=(*bounds::CPU.end()).into())?;
    }
    match (req.rate, spec.open_loop()) {
        (None, _) => {}
        (Some(r), true) if !bounds::RATE.contains(&r) => {
            return Err(out("rate", r.to_string(), format!("{}..={}", bounds::RATE.start(), bounds::RATE.end())))
        }
        (Some(_), true) => {}
        (Some(r), false) => {
            return Err(MetricError::Failed {
                metric: spec.name,
                message: format!("takes no rate (got {r}): only the app.*.latency open loops have one"),
            })
        }
    }
    match (&req.data_dir, spec.needs_data_dir()) {
        (None, _) => {}
        (Some(d), true) => {
            let r = bounds::DATA_DIR_BYTES;
            if !r.contains(&d.len()) {
                return Err(out("data_dir", format!("of {} bytes", d.len()), format!("{}..={} bytes", r.start(), r.end())));
            }
            if !d.starts_with('/') {
                return Err(MetricError::Failed { metric: spec.name, message: format!("data_dir {d:?} is not an absolute path") });
            }
        }
        (Some(d), false) => {
            return Err(MetricError::Failed { metric: spec.name, message: format!("takes no data_dir (got {d:?}): only the fs metrics make files") })
        }
    }
    match (req.bytes, spec.name) {
        (None, _) => Ok(()),
        (Some(b), "mem.copy_bw") => within("bytes", b, bounds::BYTES),
        (Some(b), _) => {
            Err(MetricError::Failed { metric: spec.name, message: format!("takes no bytes (got {b}): only mem.copy_bw has a working set") })
        }
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
    #[cfg(test)]
    observe::measuring();
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
    crate::marks::mark(req.marks, LoopPhase::Begin);
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
    crate::marks::mark(req.marks, LoopPhase::End);
    Ok(RunResult {
        metric: spec.name.to_string(),
        iterations: done,
        elapsed_ns: busy.as_nanos() as u64,
        ops_per_sample: ops,
        histogram: hist::encode(&h)?,
        truncated: done < samples * ops,
        bytes_per_op: spec.bytes_per_op,
        timer_overhead_ns: overhead,
        pinning: PinMode::None,
        cpus: Vec::new(),
        io: None,
        load: None,
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

    /// Every two-party metric of the agent (no boundary ones: their peer is
    /// placed by the harness).
    const TWO_PARTY: [&str; 8] =
        ["ipc.pipe_rtt", "ipc.unix_rtt", "ipc.eventfd_rtt", "ipc.pipe_bw", "ipc.unix_bw", "net.tcp_rr", "net.udp_rr", "net.tcp_stream"];

    fn ctx() -> Context {
        Context { noop: std::ffi::CString::new("/bin/true").unwrap() }
    }

    /// Runs `metric` under `pin` through [`run`] and returns the result with
    /// what the test observer saw: the measuring thread's mask and the peers'.
    fn run_observed(metric: &str, pin: PinMode) -> (RunResult, Vec<u32>, Vec<observe::Seen>) {
        observe::take();
        let r = run(&RunRequest { pin, warmup: 16, ..req(metric, 64, 10_000) }, &ctx()).unwrap_or_else(|e| panic!("{metric}: {e}"));
        let seen = observe::take();
        let measuring: Vec<_> = seen.iter().filter(|s| s.role == "measuring").collect();
        assert_eq!(measuring.len(), 1, "{metric}: {seen:?}");
        let peers: Vec<_> = seen.iter().filter(|s| s.role != "measuring").cloned().collect();
        assert_eq!(peers.len(), 1, "{metric}: one peer: {seen:?}");
        for p in &peers {
            if let Some(cpu) = p.ran_on {
                assert!(p.mask.contains(&cpu), "{metric}: a peer thread ran on {cpu}, outside its mask {:?}", p.mask);
            }
        }
        (r, measuring[0].mask.clone(), peers)
    }

    #[test]
    fn split_puts_the_peer_on_another_cpu() {
        let allowed = allowed_cpus();
        if allowed.len() < 2 {
            eprintln!("skipped: only CPU {allowed:?} is allowed here, so split cannot be tested");
            return;
        }
        for metric in TWO_PARTY {
            let (r, own, peers) = run_observed(metric, PinMode::Split);
            assert_eq!(r.pinning, PinMode::Split, "{metric}");
            assert_eq!(r.cpus.len(), 2, "{metric}: {:?}", r.cpus);
            assert_ne!(r.cpus[0], r.cpus[1], "{metric}");
            assert_eq!(own, vec![r.cpus[0]], "{metric}: the measuring thread holds one CPU");
            assert_eq!(peers[0].mask, vec![r.cpus[1]], "{metric}: the {} holds the other", peers[0].role);
            assert_eq!(r.cpus[1], *allowed.iter().find(|&&c| c != r.cpus[0]).unwrap(), "{metric}: the lowest other allowed CPU");
        }
        assert_eq!(allowed_cpus(), allowed, "the test thread's mask is restored");
    }

    #[test]
    fn same_puts_both_ends_on_one_cpu() {
        for metric in TWO_PARTY {
            let (r, own, peers) = run_observed(metric, PinMode::Same);
            assert_eq!(r.pinning, PinMode::Same, "{metric}");
            assert_eq!(r.cpus.len(), 1, "{metric}: {:?}", r.cpus);
            assert_eq!(own, r.cpus, "{metric}");
            assert_eq!(peers[0].mask, r.cpus, "{metric}: the {} shares the CPU", peers[0].role);
        }
    }

    #[test]
    fn none_leaves_the_inherited_mask() {
        let inherited = allowed_cpus();
        for metric in TWO_PARTY {
            let (r, own, peers) = run_observed(metric, PinMode::None);
            assert_eq!(r.pinning, PinMode::None, "{metric}");
            assert!(r.cpus.is_empty(), "{metric}: {:?}", r.cpus);
            assert_eq!(own, inherited, "{metric}");
            assert_eq!(peers[0].mask, inherited, "{metric}");
        }
    }

    #[test]
    fn one_allowed_cpu_turns_split_into_a_reported_same() {
        // A thread of its own, so the narrowed mask dies with it.
        std::thread::spawn(|| {
            let only = *allowed_cpus().last().unwrap();
            assert!(set_affinity(&[only]));
            for metric in TWO_PARTY {
                let (r, own, peers) = run_observed(metric, PinMode::Split);
                assert_eq!(r.pinning, PinMode::Same, "{metric}: split was impossible and is reported as same");
                assert_eq!(r.cpus, vec![only], "{metric}");
                assert_eq!((own, peers[0].mask.clone()), (vec![only], vec![only]), "{metric}");
            }
            assert_eq!(allowed_cpus(), vec![only]);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_one_party_metric_is_pinned_under_split_and_free_under_none() {
        let r = run(&RunRequest { pin: PinMode::Split, ..req("syscall.getpid", 1000, 10_000) }, &ctx()).unwrap();
        assert_eq!((r.pinning, r.cpus.len()), (PinMode::Same, 1), "nothing to split: one CPU, reported as same");
        let r = run(&RunRequest { pin: PinMode::None, ..req("syscall.getpid", 1000, 10_000) }, &ctx()).unwrap();
        assert_eq!((r.pinning, r.cpus.len()), (PinMode::None, 0));
    }

    #[test]
    fn unknown_metric_names_the_known_ones() {
        let ctx = Context { noop: std::ffi::CString::new("/bin/true").unwrap() };
        let err = run(&req("syscall.nope", 1, 1), &ctx).unwrap_err().to_string();
        assert!(err.contains("syscall.nope") && err.contains("syscall.getpid"), "{err}");
    }
}
