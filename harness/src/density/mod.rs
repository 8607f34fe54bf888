//! `isobench density`: how many instances of each environment fit on this
//! host and how fast they start when load arrives. For each environment
//! (the native agent first, the payload's own memory every other figure is
//! taken beyond), one start storm per concurrency ([`storm`]): N starts
//! with C in flight, each start's latency to agent-ready, the time until
//! all were ready, failures with their errors; then, with the N instances
//! idle, their memory from the host (PSS and USS of each instance's process
//! tree, Kata's footprint measure; the MemAvailable fall over N, gVisor's)
//! and their CPU time over a fixed window ([`proc`]). Published figures
//! (Firecracker's, gVisor's, Kata's) stand beside them in the report.
//!
//! Host settings are read, never changed: KSM's state is recorded.

pub mod proc;
pub mod storm;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::collect::interference::Probe;
use crate::env::{self, EnvError, EnvKind, Environment, Options};
use crate::results::density::{DensityEnv, DensityRun};

use storm::StormPlan;

/// Starts per storm unless told, for every environment but the vm: enough
/// for p99 to be a start of its own, sized for a 2-core 24 GiB host.
pub const DEFAULT_INSTANCES: u32 = 200;
/// Concurrencies unless told (the goal compares start rates at 2).
pub const DEFAULT_CONCURRENCY: [u32; 3] = [1, 2, 8];
/// [`DEFAULT_CONCURRENCY`] as the command line writes it.
pub const DEFAULT_CONCURRENCY_ARG: &str = "1,2,8";
/// [`DEFAULT_VM_CONCURRENCY`] as the command line writes it.
pub const DEFAULT_VM_CONCURRENCY_ARG: &str = "1,2";
/// The vm's starts per storm unless told: a TCG guest boots in seconds and
/// holds its RAM.
pub const DEFAULT_VM_INSTANCES: u32 = 16;
/// The vm's concurrencies unless told (TCG's boots are CPU-bound on 2 cores).
pub const DEFAULT_VM_CONCURRENCY: [u32; 2] = [1, 2];
/// MemAvailable a start must leave unless told, MiB.
pub const DEFAULT_MIN_AVAILABLE_MIB: u64 = 2048;
/// The idle window unless told, ms.
pub const DEFAULT_IDLE_WINDOW_MS: u64 = 5_000;
/// The environments unless told (native is always added as the baseline).
pub const DEFAULT_ENVS: [EnvKind; 6] = [EnvKind::Container, EnvKind::Runc, EnvKind::Crun, EnvKind::Bwrap, EnvKind::Runsc, EnvKind::Vm];

/// The memory source, as density.json records it.
pub const MEMORY_SOURCE: &str = "host side, every process of each instance's tree (the process isobench started: the container's init, the peer's command, QEMU, and all their descendants): PSS and USS (Private_Clean + Private_Dirty) from /proc/PID/smaps_rollup; MemAvailable from /proc/meminfo before the storm, with the instances idle, and after they stopped";
/// The CPU source, as density.json records it.
pub const CPU_SOURCE: &str =
    "/proc/PID/task/TID/schedstat (CPU run time, ns) summed over every thread of each instance's process tree, read at both ends of the window";

#[derive(Debug, thiserror::Error)]
pub enum DensityError {
    #[error("density: {0}")]
    Env(#[from] EnvError),
    #[error("density: {0}")]
    Proc(#[from] proc::ProcError),
    #[error("density: --instances must be at least 1")]
    NoInstances,
    #[error("density: a concurrency must be at least 1")]
    NoConcurrency,
}

/// What to measure.
#[derive(Debug, Clone)]
pub struct DensityPlan {
    /// Environments other than native, in order.
    pub envs: Vec<EnvKind>,
    pub instances: u32,
    pub concurrency: Vec<u32>,
    pub vm_instances: u32,
    pub vm_concurrency: Vec<u32>,
    pub min_available_mib: u64,
    pub idle_window: Duration,
}

impl DensityPlan {
    /// Refuses a plan with no start or no concurrency, before anything runs.
    pub fn check(&self) -> Result<(), DensityError> {
        if self.instances == 0 || self.vm_instances == 0 {
            return Err(DensityError::NoInstances);
        }
        if self.concurrency.iter().chain(&self.vm_concurrency).any(|&c| c == 0) || self.concurrency.is_empty() || self.vm_concurrency.is_empty() {
            return Err(DensityError::NoConcurrency);
        }
        Ok(())
    }
}

impl Default for DensityPlan {
    fn default() -> DensityPlan {
        DensityPlan {
            envs: DEFAULT_ENVS.to_vec(),
            instances: DEFAULT_INSTANCES,
            concurrency: DEFAULT_CONCURRENCY.to_vec(),
            vm_instances: DEFAULT_VM_INSTANCES,
            vm_concurrency: DEFAULT_VM_CONCURRENCY.to_vec(),
            min_available_mib: DEFAULT_MIN_AVAILABLE_MIB,
            idle_window: Duration::from_millis(DEFAULT_IDLE_WINDOW_MS),
        }
    }
}

/// What `measure` tells as it goes.
pub enum Event<'a> {
    /// A storm begins: env label, N, C.
    Storm { label: &'a str, requested: u32, concurrency: u32 },
    /// Starts so far in the storm: ready, failed, requested.
    Started { ready: u32, failed: u32, requested: u32 },
    /// A line for the user (a storm's outcome, a skipped environment).
    Note(&'a str),
}

/// Runs every storm (see the module docs). `interrupted` non-zero (SIGINT,
/// SIGTERM) stops at once: what was measured is returned with
/// `interrupted` set, and every instance started is gone.
pub fn measure(plan: &DensityPlan, opts: &Options, interrupted: &AtomicUsize, on: &(dyn Fn(Event<'_>) + Sync)) -> Result<DensityRun, DensityError> {
    plan.check()?;
    let probe = Probe::start();
    let mut run = DensityRun {
        min_available_mib: plan.min_available_mib,
        idle_window_ms: plan.idle_window.as_millis() as u64,
        memory_source: MEMORY_SOURCE.into(),
        cpu_source: CPU_SOURCE.into(),
        ksm: proc::ksm(),
        envs: Vec::new(),
        skipped: Vec::new(),
        interrupted: false,
        interference: None,
    };
    let kinds = std::iter::once(EnvKind::Native).chain(plan.envs.iter().copied().filter(|k| *k != EnvKind::Native));
    'envs: for kind in kinds {
        let (n, cs) = match kind {
            EnvKind::Vm => (plan.vm_instances, &plan.vm_concurrency),
            _ => (plan.instances, &plan.concurrency),
        };
        let mut out: Option<DensityEnv> = None;
        for &c in cs {
            if interrupted.load(Ordering::SeqCst) != 0 {
                run.interrupted = true;
                run.envs.extend(out);
                break 'envs;
            }
            let mut envs: Vec<Box<dyn Environment>> = Vec::new();
            for _ in 0..c {
                match env::prepare(kind, opts) {
                    Ok(e) => envs.push(e),
                    Err(e) => {
                        let line = e.to_string();
                        on(Event::Note(&line));
                        run.skipped.push(line);
                        run.envs.extend(out);
                        continue 'envs;
                    }
                }
            }
            let label = envs[0].label();
            let meta = envs[0].metadata();
            let vm = (kind == EnvKind::Vm).then(|| {
                let ram = meta["memory_mib"].as_u64().unwrap_or(0);
                let accel = meta["accel"].as_str().unwrap_or("unknown");
                (ram, accel.to_string())
            });
            let env_out = out.get_or_insert_with(|| DensityEnv { env: kind.as_str().into(), label: label.clone(), vm: None, storms: Vec::new() });
            on(Event::Storm { label: &label, requested: n, concurrency: c });
            let splan = StormPlan {
                requested: n,
                min_available_kib: plan.min_available_mib * 1024,
                first_guess_kib: vm.as_ref().map_or(0, |(ram, _)| ram * 1024),
                idle_window: plan.idle_window,
                vm,
            };
            let progress = |ready, failed, requested| on(Event::Started { ready, failed, requested });
            // The vm: an environment of its own per start (its network), see storm::PerStart.
            let prepare = || env::prepare(kind, opts);
            let per_start: Option<storm::PerStart<'_>> = (kind == EnvKind::Vm).then_some(&prepare);
            let outcome = storm::run(envs, per_start, &splan, interrupted, &progress)?;
            let s = &outcome.storm;
            let line = format!(
                "{label}: N={n} C={c}: {} ready, {} failed in {:.2} s{}{}",
                s.ready,
                s.failed(),
                s.all_ready_ns as f64 / 1e9,
                s.latency_ms(0.5).map_or(String::new(), |p| format!(", p50 {p:.1} ms")),
                s.stopped.as_ref().map_or(String::new(), |w| format!("; stopped: {w}"))
            );
            on(Event::Note(&line));
            if env_out.vm.is_none() {
                env_out.vm = outcome.vm;
            }
            env_out.storms.push(outcome.storm);
        }
        run.envs.extend(out);
    }
    if interrupted.load(Ordering::SeqCst) != 0 {
        run.interrupted = true;
    }
    run.interference = probe.finish();
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_lines_defaults_are_the_constants_and_a_bad_plan_is_refused() {
        let parse = |s: &str| s.split(',').map(|c| c.parse::<u32>().unwrap()).collect::<Vec<_>>();
        assert_eq!(parse(DEFAULT_CONCURRENCY_ARG), DEFAULT_CONCURRENCY);
        assert_eq!(parse(DEFAULT_VM_CONCURRENCY_ARG), DEFAULT_VM_CONCURRENCY);
        assert!(DensityPlan::default().check().is_ok());
        let none = DensityPlan { instances: 0, ..Default::default() };
        assert_eq!(none.check().unwrap_err().to_string(), "density: --instances must be at least 1");
        let zero = DensityPlan { vm_concurrency: vec![1, 0], ..Default::default() };
        assert_eq!(zero.check().unwrap_err().to_string(), "density: a concurrency must be at least 1");
    }
}
