//! Shared driver of the criterion benches: each environment is started once
//! per bench binary (a guest boots once, not per sample), every metric of a
//! family is one criterion group with one function per environment
//! (`native`, `container`, `vm`), and `iter_custom` hands criterion the time
//! measured *inside* the environment by the agent.
//!
//! Alongside criterion's own statistics, every operation's latency goes into
//! an hdrhistogram; after each group it is saved into the run's results folder
//! (shared by all bench binaries of one `cargo bench`) and the report is
//! re-rendered, so an interrupted `cargo bench` keeps what it measured.
//! Each saved measurement carries the interference around its criterion run
//! (warm-up included), and each bench binary registers as a run so that
//! concurrent runs name each other (`collect::interference`, `registry`).
//!
//! Environment variables, each parsed by the type of the `isobench run`
//! option it stands for (the README's table lists them all):
//! `ISOBENCH_ENVS` (`--env`: environments, `all` or `peers`; default the
//! core three), `ISOBENCH_ACCEL` (`--accel`), `ISOBENCH_GVISOR_PLATFORM`
//! (`--gvisor-platform`), `ISOBENCH_MACHINE`
//! (`--machine`), `ISOBENCH_PIN` (`--pin`: CPU pinning of two-party
//! metrics; default same), `ISOBENCH_RUN_DIR` (`--out`: the results
//! folder). A bad value stops the bench with the variable's name and the
//! same line `isobench run` gives.

use std::str::FromStr;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use criterion::{Criterion, SamplingMode};
use isobench_harness::collect::interference::Probe;
use isobench_harness::env::{self, EnvSelection, Environment, Instance, Options};
use isobench_harness::report;
use isobench_harness::results::run::Parameters;
use isobench_harness::results::RunDir;
use isobench_harness::vm::{AccelChoice, Machine};
use isobench_harness::{collect::Measurement, runner, workloads};
use isobench_workloads::catalog::{Family, CATALOG};
use isobench_workloads::protocol::{PinMode, RunRequest};

/// Time bound of one agent call; criterion asks for counts it expects to fit
/// in its measurement time, so this only stops a runaway.
const CALL_LIMIT_MS: u64 = 120_000;

struct Running {
    env: Box<dyn Environment>,
    inst: Box<dyn Instance>,
}

/// The variable `var` parsed as `T`; `None` when unset, empty or not
/// Unicode. A bad value stops the bench with the type's one-line error.
fn from_env<T: FromStr>(var: &str) -> Option<T>
where
    T::Err: std::fmt::Display,
{
    let value = std::env::var(var).ok().filter(|v| !v.trim().is_empty())?;
    Some(value.parse().unwrap_or_else(|e| panic!("{var}: {e}")))
}

/// Criterion settings sized for a 2-core machine and a TCG guest: the whole
/// `cargo bench` stays within minutes. Command-line flags still override.
pub fn criterion() -> Criterion {
    Criterion::default().sample_size(10).warm_up_time(Duration::from_millis(800)).measurement_time(Duration::from_secs(3)).configure_from_args()
}

/// Benchmarks every metric of `family` in every available environment.
pub fn bench_family(c: &mut Criterion, family: Family) {
    // criterion's own charts use the same plotters text backend as ours.
    if let Err(e) = report::plot::ensure_font() {
        eprintln!("isobench: charts will fail: {e}");
    }
    let results = isobench_harness::paths::repo_root().join("results");
    let out = RunDir::for_cargo_bench(&results).expect("results folder");
    // criterion's own HTML report of the same run (CARGO_TARGET_DIR aware).
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| isobench_harness::paths::repo_root().join("target"), std::path::PathBuf::from);
    let criterion_report = target.join("criterion").join("report").join("index.html");
    let pin: PinMode = from_env("ISOBENCH_PIN").unwrap_or_default();
    let parameters = Parameters { criterion: Some(true), criterion_report: Some(criterion_report), pin: Some(pin), ..Parameters::default() };
    runner::record_host(&out, "cargo bench", parameters).expect("run.json");
    // Other runs measuring at the same time name this one, and it them.
    let _registration = isobench_harness::registry::register(&format!("cargo bench ({})", family.as_str()), Some(&out.path));
    let workloads = workloads::locate().unwrap_or_else(|e| panic!("{e}"));
    let accel: AccelChoice = from_env("ISOBENCH_ACCEL").unwrap_or_default();
    let mut opts = Options { accel, log_dir: Some(out.path.clone()), ..Options::new(workloads) };
    opts.vm.machine = from_env::<Machine>("ISOBENCH_MACHINE");
    opts.gvisor_platform = from_env("ISOBENCH_GVISOR_PLATFORM").unwrap_or_default();
    isobench_harness::cleanup::sweep();

    let mut running: Vec<Running> = Vec::new();
    let envs: EnvSelection = from_env("ISOBENCH_ENVS").unwrap_or_default();
    for kind in envs.into_kinds() {
        let started = env::prepare(kind, &opts).and_then(|mut env| env.start().map(|inst| Running { env, inst }));
        match started {
            Ok(r) => {
                runner::record_env(&out, r.env.as_ref(), r.inst.as_ref()).expect("run.json");
                running.push(r);
            }
            Err(e) => {
                // One line, e.g. "vm: skipped: no guest image; run scripts/build-guest".
                eprintln!("{e}");
                let reason = match &e {
                    env::EnvError::Unavailable { reason, .. } => reason.clone(),
                    other => other.to_string(),
                };
                runner::record_skip(&out, kind, &reason).expect("run.json");
            }
        }
    }

    // Host-side agents of the *.boundary metrics, one per network namespace.
    let mut hosts = isobench_harness::boundary::HostSides::new(&opts.workloads);
    for spec in CATALOG.iter().filter(|m| m.family == family && !m.host_timed) {
        let mut group = c.benchmark_group(spec.name);
        for r in running.iter_mut() {
            let label = r.env.label();
            if spec.boundary {
                if let Err(e) = r.inst.endpoint() {
                    // e.g. a peer runtime, or veth without root: one line, no column.
                    eprintln!("{label}: {}: {e}", spec.name);
                    continue;
                }
            }
            let mut m = Measurement::new(r.env.kind().as_str(), &label, spec);
            let kind = r.env.kind();
            let inst = r.inst.as_mut();
            let hosts = &mut hosts;
            let probe = Probe::start();
            group.bench_function(kind.as_str(), |b| {
                b.iter_custom(|iters| {
                    let req = RunRequest { bytes: runner::working_set(spec), pin, ..RunRequest::new(spec.name, iters, CALL_LIMIT_MS) };
                    let res = match spec.boundary {
                        false => inst.agent().run(&req).map_err(runner::MeasureError::Agent),
                        true => runner::measure_boundary(&out, kind, &mut *inst, hosts, spec, &req),
                    };
                    let res = res.unwrap_or_else(|e| panic!("{label}: {}: {e}", spec.name));
                    m.add(&res).expect("agent result matches its request");
                    runner::record_pinning(&out, kind, spec, pin, &res).expect("run.json");
                    // The agent times whole samples; scale to what criterion asked for.
                    let ns = res.elapsed_ns as u128 * iters as u128 / res.iterations.max(1) as u128;
                    Duration::from_nanos(ns as u64)
                })
            });
            m.interference = probe.finish();
            // Saved at once: a later failure must not lose it. (A benchmark
            // filtered out on criterion's command line measured nothing.)
            if m.iterations > 0 {
                out.save(&m).expect("saving a measurement");
            }
        }
        group.finish();
        report::render(&out).expect("rendering the report");
    }

    drop(hosts);
    let mut envs = Vec::new();
    for r in running {
        let label = r.env.label();
        if let Err(e) = r.inst.shutdown() {
            eprintln!("{label}: unclean stop: {e}");
        }
        runner::record_metadata(&out, r.env.as_ref()).expect("run.json");
        envs.push(r.env);
    }

    // Host-timed metrics (env.start) run with no other instance alive: each
    // iteration is one whole start and stop as the catalogue defines it
    // (start asked → ready → shutdown → reaped → cleaned up), through
    // runner::measure_start, the function `isobench run` uses.
    for spec in CATALOG.iter().filter(|m| m.family == family && m.host_timed) {
        let mut group = c.benchmark_group(spec.name);
        group.sampling_mode(SamplingMode::Flat);
        for env in envs.iter_mut() {
            let label = env.label();
            let mut m = Measurement::new(env.kind().as_str(), &label, spec);
            let kind = env.kind();
            let probe = Probe::start();
            group.bench_function(kind.as_str(), |b| {
                b.iter_custom(|iters| {
                    let one = runner::measure_start(env.as_mut(), spec, iters, &AtomicUsize::new(0))
                        .unwrap_or_else(|e| panic!("{label}: {}: {e}", spec.name));
                    m.histogram.add(&one.histogram).expect("auto-resizing histograms add");
                    m.iterations += one.iterations;
                    m.elapsed_ns += one.elapsed_ns;
                    Duration::from_nanos(one.elapsed_ns)
                })
            });
            m.interference = probe.finish();
            if m.iterations > 0 {
                out.save(&m).expect("saving a measurement");
            }
            runner::record_metadata(&out, env.as_ref()).expect("run.json");
        }
        group.finish();
    }
    let path = report::render(&out).expect("rendering the report");
    eprintln!("isobench: report: {}", path.display());
}
