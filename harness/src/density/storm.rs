//! A start storm: N starts of one environment with C in flight at once,
//! each worker thread owning one prepared environment, then the instances
//! held idle while their memory and CPU time are read from the host, then
//! stopped. The method is Firecracker's (its paper's "150 microVMs per
//! second, p99 146 ms at 50 concurrent starts": each start's latency to
//! ready, and the time until every instance is ready), with gVisor's
//! MemAvailable fall and Kata's PSS for the memory.
//!
//! Instances are started and shut down on the same worker thread: a
//! child's `PR_SET_PDEATHSIG` fires when the thread that forked it exits
//! (`process.rs`), so a worker holds its instances until the measurement
//! is done and stops them itself; a SIGKILL of isobench takes them along.
//!
//! Before every start the safety margin is checked: the start is refused
//! (and the storm stops there, saying how far it got) when MemAvailable,
//! less what each start in flight is expected to take, would fall below the
//! margin. The expectation is the largest of the environment's first guess
//! (the vm's guest RAM) and the fall per ready instance seen so far.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};

use crate::env::{Environment, Instance};
use crate::results::density::{IdleCost, MemorySample, StartFailure, Storm, VmMemory};

use super::proc::{self, ProcError};

/// After the last start and after a stop, the wait before MemAvailable is
/// read, so memory freed or faulted lazily (page tables, RCU-freed
/// namespaces) has landed.
pub const SETTLE: Duration = Duration::from_millis(500);

/// A storm whose first this many starts all failed is stopped: the
/// environment does not work here, and going on would only repeat it.
pub const GIVE_UP_AFTER_FAILURES: u32 = 5;

/// What one storm does.
#[derive(Debug, Clone)]
pub struct StormPlan {
    pub requested: u32,
    /// The safety margin, KiB of MemAvailable.
    pub min_available_kib: u64,
    /// What one instance is expected to take before any was measured, KiB.
    pub first_guess_kib: u64,
    /// The idle window for the CPU time; zero: not measured.
    pub idle_window: Duration,
    /// For the vm: guest RAM (MiB) and accelerator, to read QEMU's mappings.
    pub vm: Option<(u64, String)>,
}

/// Prepares an environment of its own for every start, kept with its
/// instance: for the vm, whose environment holds one network (a tap, or
/// user-mode forwarded ports) that a second live guest could not attach to.
/// The preparation (the accelerator's verdict is cached) is outside each
/// start's latency and inside the storm's time.
pub type PerStart<'a> = &'a (dyn Fn() -> Result<Box<dyn Environment>, crate::env::EnvError> + Sync);

/// What the workers share.
#[derive(Default)]
struct Admission {
    admitted: u32,
    in_flight: u32,
    ready: u32,
    failed: u32,
    stopped: Option<String>,
    latencies_ns: Vec<u64>,
    failures: BTreeMap<String, u32>,
    pids: Vec<u32>,
    /// The first ready instance's own view of its machine's memory (the
    /// guest's, for the vm).
    guest_view: Option<isobench_workloads::protocol::MemoryView>,
    last_ready: Option<Instant>,
}

/// A live instance and, when it has one of its own ([`PerStart`]), its environment.
type Held = (Box<dyn Instance>, Option<Box<dyn Environment>>);

/// Progress: (ready, failed, requested).
pub type Progress<'a> = &'a (dyn Fn(u32, u32, u32) + Sync);

/// Runs one storm with one worker per environment in `envs` (the
/// concurrency). `interrupted` non-zero stops admitting starts; what is
/// running is measured no further and stopped.
pub fn run(
    envs: Vec<Box<dyn Environment>>,
    per_start: Option<PerStart<'_>>,
    plan: &StormPlan,
    interrupted: &AtomicUsize,
    progress: Progress<'_>,
) -> Result<Outcome, ProcError> {
    let concurrency = envs.len() as u32;
    let before = proc::available_kib(0)?;
    let shared = Mutex::new(Admission::default());
    let done = Barrier::new(envs.len() + 1);
    let release = Barrier::new(envs.len() + 1);
    let t0 = Instant::now();
    let admit = || -> Option<()> {
        let mut a = shared.lock().unwrap_or_else(|e| e.into_inner());
        if a.stopped.is_some() {
            return None;
        }
        if interrupted.load(Ordering::SeqCst) != 0 {
            a.stopped = Some("interrupted".into());
            return None;
        }
        if a.admitted >= plan.requested {
            return None;
        }
        if a.failed >= GIVE_UP_AFTER_FAILURES && a.ready == 0 {
            a.stopped = Some(format!("the first {} starts all failed", a.failed));
            return None;
        }
        let available = match proc::available_kib(a.admitted) {
            Ok(kib) => kib,
            Err(e) => {
                a.stopped = Some(e.to_string());
                return None;
            }
        };
        let seen = if a.ready > 0 { before.saturating_sub(available) / u64::from(a.ready) } else { 0 };
        let expected = seen.max(plan.first_guess_kib);
        let after = available.saturating_sub(expected * u64::from(a.in_flight + 1));
        if after < plan.min_available_kib {
            a.stopped = Some(format!(
                "safety margin: another start would leave about {} MiB of MemAvailable (now {} MiB, about {} MiB per instance), under the {} MiB kept free; stopped after {} of {} starts",
                after / 1024,
                available / 1024,
                expected / 1024,
                plan.min_available_kib / 1024,
                a.admitted,
                plan.requested
            ));
            return None;
        }
        a.admitted += 1;
        a.in_flight += 1;
        Some(())
    };
    let mut at_rest = None;
    std::thread::scope(|s| {
        for mut env in envs {
            let (shared, done, release, admit) = (&shared, &done, &release, &admit);
            s.spawn(move || {
                // Each instance is dropped before the environment it came from.
                let mut held: Vec<Held> = Vec::new();
                while admit().is_some() {
                    let (r, own) = match per_start.map(|prepare| prepare()) {
                        None => (env.start(), None),
                        Some(Ok(mut own)) => (own.start(), Some(own)),
                        Some(Err(e)) => (Err(e), None),
                    };
                    let (ready, failed) = {
                        let mut a = shared.lock().unwrap_or_else(|e| e.into_inner());
                        a.in_flight -= 1;
                        match &r {
                            Ok(inst) => {
                                a.ready += 1;
                                a.latencies_ns.push(inst.ready_after().as_nanos() as u64);
                                a.pids.extend(inst.host_pid());
                                if a.guest_view.is_none() {
                                    a.guest_view = inst.info().memory.clone();
                                }
                                a.last_ready = Some(Instant::now());
                            }
                            Err(e) => {
                                a.failed += 1;
                                *a.failures.entry(e.to_string()).or_default() += 1;
                            }
                        }
                        (a.ready, a.failed)
                    };
                    if let Ok(inst) = r {
                        held.push((inst, own));
                    }
                    progress(ready, failed, plan.requested);
                }
                done.wait();
                release.wait();
                let fast = interrupted.load(Ordering::SeqCst) != 0;
                for (inst, own) in held {
                    if fast {
                        drop(inst); // kills what the instance started
                    } else {
                        let _ = inst.shutdown();
                    }
                    drop(own);
                }
            });
        }
        done.wait();
        if interrupted.load(Ordering::SeqCst) == 0 {
            let pids = shared.lock().unwrap_or_else(|e| e.into_inner()).pids.clone();
            at_rest = Some(measure_at_rest(&pids, plan, interrupted));
        }
        release.wait();
    });
    let a = shared.into_inner().unwrap_or_else(|e| e.into_inner());
    let guest_view = a.guest_view.clone();
    let (memory, idle, mut vm) = match at_rest {
        Some(r) => {
            let (mut memory, idle, vm) = r?;
            std::thread::sleep(SETTLE);
            memory.available_before_kib = before;
            memory.available_after_kib = proc::available_kib(0)?;
            (Some(memory), idle, vm)
        }
        None => (None, None, None),
    };
    if let Some(vm) = vm.as_mut() {
        vm.guest_view = guest_view;
    }
    let storm = Storm {
        requested: plan.requested,
        concurrency,
        ready: a.ready,
        latencies_ns: a.latencies_ns,
        all_ready_ns: a.last_ready.map_or(0, |t| (t - t0).as_nanos() as u64),
        failures: a.failures.into_iter().map(|(error, count)| StartFailure { error, count }).collect(),
        stopped: a.stopped,
        memory,
        idle,
    };
    Ok(Outcome { storm, vm })
}

/// A storm and, for the vm, QEMU's mappings as its first instance had them.
pub struct Outcome {
    pub storm: Storm,
    pub vm: Option<VmMemory>,
}

type AtRest = (MemorySample, Option<IdleCost>, Option<VmMemory>);

/// The memory and idle CPU of the instances whose host processes are
/// `pids`, all ready and idle.
fn measure_at_rest(pids: &[u32], plan: &StormPlan, interrupted: &AtomicUsize) -> Result<AtRest, ProcError> {
    std::thread::sleep(SETTLE);
    let loaded = proc::available_kib(pids.len() as u32)?;
    let trees = proc::trees(pids)?;
    let mut m = MemorySample { instances: pids.len() as u32, available_loaded_kib: loaded, ..Default::default() };
    for t in &trees {
        let (pss, uss) = proc::pss_uss_kib(t);
        m.processes += t.len() as u32;
        m.pss_kib.push(pss);
        m.uss_kib.push(uss);
    }
    let vm = plan.vm.as_ref().zip(pids.first()).map(|((ram, accel), &pid)| proc::vm_memory(pid, *ram, accel));
    let idle = (!plan.idle_window.is_zero() && !pids.is_empty()).then(|| {
        let all: Vec<i32> = trees.iter().flatten().copied().collect();
        let t = Instant::now();
        let c0 = proc::cpu_ns(&all);
        // Sleep in slices so an interrupt is not held up by the window.
        while t.elapsed() < plan.idle_window && interrupted.load(Ordering::SeqCst) == 0 {
            std::thread::sleep(Duration::from_millis(100).min(plan.idle_window.saturating_sub(t.elapsed())));
        }
        let c1 = proc::cpu_ns(&all);
        IdleCost { instances: pids.len() as u32, window_ns: t.elapsed().as_nanos() as u64, cpu_ns: c1.saturating_sub(c0) }
    });
    Ok((m, idle, vm))
}
