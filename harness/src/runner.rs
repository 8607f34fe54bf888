//! `isobench run`: every requested environment × metric measured without
//! criterion, each measurement saved the moment it exists, then the report
//! rendered. Environments run one after another (one instance each, started
//! once), so a slow guest boot is paid once.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use isobench_workloads::catalog::{Family, MetricSpec};
use isobench_workloads::protocol::{PinMode, RunRequest, RunResult};

use crate::collect::host::HostInfo;
use crate::collect::interference::Probe;
use crate::collect::{CollectError, Measurement};
use crate::env::{self, EnvError, EnvKind, Environment, Instance, Options};
use crate::report::ReportError;
use crate::results::run::{from_env_value, BootRecord, ContainerStartRecord, EnvMetadata, HostTimedRecord, Parameters, PinRecord, RunPart};
use crate::results::{ResultsError, RunDir};

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Results(#[from] ResultsError),
    #[error(transparent)]
    Report(#[from] ReportError),
    #[error(transparent)]
    Collect(#[from] CollectError),
}

/// What to measure.
#[derive(Debug, Clone)]
pub struct Plan {
    pub envs: Vec<EnvKind>,
    pub metrics: Vec<&'static MetricSpec>,
    /// Use each metric's `quick_iterations` (for tests and smoke runs).
    pub quick: bool,
    /// Overrides the catalogue's iteration count.
    pub iterations: Option<u64>,
    /// Time bound of one measurement, ms.
    pub max_ms: u64,
    /// Where two-party metrics put their two ends (`isobench run --pin`).
    pub pin: PinMode,
    /// `--budget`: the run planned to fit a time ([`crate::budget`]); its
    /// bound replaces `max_ms`, its env.start count the catalogue's.
    pub budget: Option<crate::budget::BudgetPlan>,
}

impl Plan {
    /// The request sent to the agent for `spec`.
    pub fn request(&self, spec: &MetricSpec) -> RunRequest {
        let iterations = self.iterations.unwrap_or(if self.quick { spec.quick_iterations } else { spec.iterations });
        RunRequest {
            warmup: (iterations / 20).min(1_000),
            bytes: working_set(spec),
            pin: self.pin,
            ..RunRequest::new(spec.name, iterations, self.budget.map_or(self.max_ms, |b| b.max_ms))
        }
    }
}

/// Records in run.json what pinning a measurement really had, as
/// `environments.<env>.pinning.<metric>`: `{ requested, applied, cpus }`.
/// `applied` differs from `requested` where `split` was impossible (one
/// allowed CPU) or the metric has no peer; report.md turns the first case
/// into a caveat.
pub fn record_pinning(out: &RunDir, kind: EnvKind, spec: &MetricSpec, requested: PinMode, r: &RunResult) -> Result<(), ResultsError> {
    let pin = PinRecord { requested, applied: r.pinning, cpus: r.cpus.clone() };
    out.update_run(|run| {
        run.env_mut(kind.as_str()).pinning.insert(spec.name.to_string(), pin);
    })
}

/// The working-set size the harness chooses for `spec`, the same for every
/// environment (mem.copy_bw: twice this host's last-level cache).
pub fn working_set(spec: &MetricSpec) -> Option<u64> {
    (spec.name == "mem.copy_bw").then(|| isobench_workloads::metrics::control::copy_bytes() as u64)
}

/// `bytes` (a [`working_set`]) made to fit a cgroup memory limit of
/// `memory` bytes the way the agent fits MemAvailable (two buffers in two
/// thirds of it, whole MiB, at least 1 MiB): isobench's container does not
/// show its cgroup inside, so the agent there cannot see the limit.
pub fn working_set_within(bytes: Option<u64>, memory: Option<u64>) -> Option<u64> {
    let b = bytes?;
    let cap = memory.map_or(b, |m| m / 3);
    Some((b.min(cap) >> 20).max(1) << 20)
}

/// What the run is doing, for a progress display.
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    /// A step of environment life cycle (preparing, started, stopped).
    Note(&'a str),
    /// Measurement `step` of `total` begins.
    Begin { step: usize, total: usize, what: &'a str },
    /// Measurement `step` of `total` ended; `line` has its p50/p99.
    Done { step: usize, total: usize, line: &'a str },
    /// An environment was skipped or a measurement failed (shown even when quiet).
    Problem(&'a str),
}

/// How a run ended.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Path of report.md.
    pub report: Option<std::path::PathBuf>,
    /// Environments that could not run, with the reason (one line each).
    pub skipped: Vec<String>,
    /// Measurements that failed, with the error.
    pub failed: Vec<String>,
    /// `*.boundary` metrics an environment has no boundary for (peers,
    /// rootless veth), and metrics not supported under runsc, with the
    /// reason: not failures, but not measured.
    pub not_measured: Vec<String>,
    pub measured: usize,
    pub interrupted: bool,
}

/// Writes the run.json facts every driver records (host, time, parameters):
/// `parameters` (with `driver` set) is added to what earlier writers
/// recorded; host facts and the start time are the first writer's.
pub fn record_host(out: &RunDir, driver: &str, parameters: Parameters) -> Result<(), ResultsError> {
    let first = out.run_record()?.host.is_none();
    let host = first.then(HostInfo::collect);
    let hostname = nix::unistd::gethostname().ok().and_then(|h| h.into_string().ok());
    out.update_run(|run| {
        run.isobench_version = Some(env!("CARGO_PKG_VERSION").into());
        if let Some(host) = host {
            run.host = Some(host);
            run.started_utc = Some(crate::results::rfc3339_now());
        }
        // `<stamp>-<pid>`, and a count where one process writes twice in a second.
        let mut run_id = format!("{}-{}", crate::results::utc_stamp(), std::process::id());
        let taken = run.runs.iter().filter(|p| p.run_id.starts_with(&run_id)).count();
        if taken > 0 {
            run_id = format!("{run_id}-{}", taken + 1);
        }
        run.runs.push(RunPart { run_id, driver: driver.into(), started_utc: crate::results::rfc3339_now(), hostname, ..RunPart::default() });
        let p = run.parameters_mut();
        p.update(parameters);
        p.driver = Some(driver.into());
    })
}

/// [`record_host`] for a command that adds its own file beside a run's
/// measurements (`startup`, `validate`, `layers`): the host facts when the
/// folder has none, and its name as the driver only when no driver is
/// recorded, since `driver` says who measured measurements.json.
pub fn record_host_beside(out: &RunDir, driver: &str) -> Result<(), ResultsError> {
    let first = out.run_record()?.host.is_none();
    let host = first.then(HostInfo::collect);
    out.update_run(|run| {
        run.isobench_version.get_or_insert_with(|| env!("CARGO_PKG_VERSION").into());
        if let Some(host) = host {
            run.host = Some(host);
            run.started_utc = Some(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        }
        run.parameters_mut().driver.get_or_insert_with(|| driver.into());
    })
}

/// Records an environment that is running (label, metadata, start time,
/// what its agent saw).
pub fn record_env(out: &RunDir, env: &dyn Environment, inst: &dyn Instance) -> Result<(), ResultsError> {
    let metadata: Option<EnvMetadata> = from_env_value("metadata", env.metadata())?;
    out.update_run(|run| {
        let e = run.env_mut(env.kind().as_str());
        e.label = Some(env.label());
        e.metadata = metadata;
        e.start_ms = Some(inst.ready_after().as_secs_f64() * 1e3);
        e.agent = Some(inst.info().clone());
    })
}

/// Re-records an environment's metadata (after shutdowns and env.start
/// loops, when it holds every boot's full phases).
///
/// Boot records (`metadata.boots`) also accumulate in
/// `environments.<env>.boots_all`, across every process that writes this run
/// (each bench binary boots its own guests), keyed by boot and replaced when a
/// later record of the same boot knows more; container starts
/// (`metadata.starts`) likewise in `starts_all`.
pub fn record_metadata(out: &RunDir, env: &dyn Environment) -> Result<(), ResultsError> {
    let metadata: Option<EnvMetadata> = from_env_value("metadata", env.metadata())?;
    out.update_run(|run| {
        let e = run.env_mut(env.kind().as_str());
        if let Some(boots) = metadata.as_ref().and_then(|m| m.boots.as_ref()) {
            let all: &mut Vec<BootRecord> = e.boots_all.get_or_insert_with(Vec::new);
            for b in boots {
                match all.iter_mut().find(|x| x.key() == b.key()) {
                    Some(slot) => *slot = b.clone(),
                    None => all.push(b.clone()),
                }
            }
        }
        if let Some(starts) = metadata.as_ref().and_then(|m| m.starts.as_ref()) {
            let all: &mut Vec<ContainerStartRecord> = e.starts_all.get_or_insert_with(Vec::new);
            for s in starts {
                match all.iter_mut().find(|x| x.key() == s.key()) {
                    Some(slot) => *slot = s.clone(),
                    None => all.push(s.clone()),
                }
            }
        }
        e.metadata = metadata;
    })
}

/// Records an environment that could not run.
pub fn record_skip(out: &RunDir, kind: EnvKind, reason: &str) -> Result<(), ResultsError> {
    out.update_run(|run| run.env_mut(kind.as_str()).skipped = Some(reason.into()))
}

/// "not supported <reason>" when the agent said the environment cannot
/// run the metric at all (`MetricError::NotSupported`: the marker right
/// after the metric's name, so an I/O error's "Operation not supported"
/// stays a failure).
fn not_supported(e: &MeasureError) -> Option<String> {
    if let MeasureError::App(e) = e {
        return e.not_supported();
    }
    let MeasureError::Agent(crate::agent::AgentError::Remote(message)) = e else { return None };
    let (_, rest) = message.split_once(": ")?;
    rest.starts_with(isobench_workloads::metrics::NOT_SUPPORTED).then(|| rest.to_string())
}

/// Records in run.json where an fs.* metric made its files
/// (`environments.<env>.storage`: the path, the file systems, what the
/// agent moved and verified) and returns the storage path in words for
/// the measurement's row.
fn record_storage(
    out: &RunDir,
    kind: EnvKind,
    env: &dyn Environment,
    spec: &MetricSpec,
    io: &isobench_workloads::protocol::IoCheck,
) -> Result<String, ResultsError> {
    let path = env.storage().ok();
    let mut described = String::new();
    out.update_run(|run| {
        let rec = run.env_mut(kind.as_str()).storage.get_or_insert_with(Default::default);
        if let Some(p) = &path {
            rec.kind = Some(p.kind);
            rec.agent_dir = p.agent_dir.clone();
            rec.host_dir = p.host_dir.as_ref().map(|d| d.display().to_string());
            rec.host_fs = p.host_dir.as_deref().map(isobench_workloads::metrics::spawn::fs_name);
            rec.detail = p.detail.clone();
            if let Some(fs) = &p.fs {
                rec.fs = Some(fs.clone());
            }
        }
        rec.fs.get_or_insert_with(|| io.fs.clone());
        rec.io.insert(spec.name.to_string(), io.clone());
        described = rec.describe();
    })?;
    Ok(described)
}

/// A loop whose own clock was refused, timed by the host instead: run.json's
/// `host_timed.<metric>` (replacing an earlier part's refusal of it) and
/// the progress line.
fn record_host_timed(out: &RunDir, kind: EnvKind, label: &str, spec: &MetricSpec, rec: HostTimedRecord) -> Result<String, ResultsError> {
    let line = format!(
        "{label} {}: host-timed mean {:.3} {} (n={} operations; the sandbox's clock gave {:.1} ms for the loop, the host's {:.1} ms)",
        spec.name,
        spec.unit.from_ns_per_op(rec.mean_ns(), rec.bytes_per_op),
        spec.unit.label(),
        rec.operations,
        rec.env_loop_ns as f64 / 1e6,
        rec.host_loop_ns as f64 / 1e6,
    );
    out.update_run(|run| {
        let rec = HostTimedRecord { run_id: run.current_run_id().map(String::from), ..rec };
        let e = run.env_mut(kind.as_str());
        e.not_supported.remove(spec.name);
        e.host_timed.insert(spec.name.to_string(), rec);
    })?;
    Ok(line)
}

/// A metric runsc could not measure: a progress note, a line in the
/// outcome, and run.json's `not_supported.<metric>`.
fn not_supported_under_runsc(
    out: &RunDir,
    outcome: &mut Outcome,
    progress: &mut dyn FnMut(Event<'_>),
    label: &str,
    kind: EnvKind,
    metric: &str,
    reason: &str,
) -> Result<(), ResultsError> {
    let why = format!("not supported under runsc: {reason}");
    let line = format!("{label}: {metric}: {why}");
    progress(Event::Note(&line));
    outcome.not_measured.push(line);
    out.update_run(|run| {
        let e = run.env_mut(kind.as_str());
        e.host_timed.remove(metric);
        e.not_supported.insert(metric.to_string(), why);
    })
}

/// Runs `plan` into `out`. `progress` receives one line per step;
/// `interrupted` (set by a signal handler to the signal's number: SIGINT,
/// SIGTERM; 0 while none came) stops the run after the current
/// measurement, keeping everything measured so far; run.json names the
/// signal (`interrupted_by`).
pub fn execute(
    plan: &Plan,
    opts: &Options,
    out: &RunDir,
    interrupted: &AtomicUsize,
    progress: &mut dyn FnMut(Event<'_>),
) -> Result<Outcome, RunError> {
    let mut outcome = Outcome::default();
    let appended = out.holds_run();
    record_host(
        out,
        "isobench run",
        Parameters {
            envs: Some(plan.envs.iter().map(|e| e.as_str().to_string()).collect()),
            metrics: Some(plan.metrics.iter().map(|m| m.name.to_string()).collect()),
            quick: Some(plan.quick),
            iterations: Some(plan.iterations),
            max_ms: Some(plan.budget.map_or(plan.max_ms, |b| b.max_ms)),
            budget_s: plan.budget.map(|b| b.budget.as_secs()),
            pin: Some(plan.pin),
            accel: Some(format!("{:?}", opts.accel).to_lowercase()),
            ..Parameters::default()
        },
    )?;
    open_run(out, appended)?;
    let began = std::time::Instant::now();
    let total = plan.envs.len() * plan.metrics.len();
    let mut step = 0;
    // Host-side agents of the *.boundary metrics, one per network namespace.
    let mut hosts = crate::boundary::HostSides::new(&opts.workloads);
    'envs: for &kind in &plan.envs {
        if interrupted.load(Ordering::SeqCst) != 0 {
            break;
        }
        progress(Event::Note(&format!("{kind}: preparing")));
        let started = env::prepare(kind, opts).and_then(|mut environment| {
            progress(Event::Note(&format!("{}: starting", environment.label())));
            environment.start().map(|inst| (environment, inst))
        });
        let (mut environment, mut inst) = match started {
            Ok(pair) => pair,
            Err(e) => {
                let line = e.to_string();
                progress(Event::Problem(&line));
                record_skip(out, kind, &reason_of(&e))?;
                outcome.skipped.push(line);
                step += plan.metrics.len();
                continue;
            }
        };
        record_env(out, environment.as_ref(), inst.as_ref())?;
        progress(Event::Note(&format!("{}: agent ready after {:.1} ms", environment.label(), inst.ready_after().as_secs_f64() * 1e3)));
        for spec in plan.metrics.iter().filter(|m| !m.host_timed) {
            step += 1;
            if interrupted.load(Ordering::SeqCst) != 0 {
                outcome.interrupted = true;
                break 'envs;
            }
            let mut req = plan.request(spec);
            // runsc's clock is checked against the host's over the loop itself.
            req.marks = kind == EnvKind::Runsc && !spec.across();
            if kind == EnvKind::Container {
                req.bytes = working_set_within(req.bytes, opts.container.limits.memory);
            }
            if spec.needs_data_dir() {
                match environment.storage() {
                    Ok(path) => req.data_dir = Some(path.agent_dir),
                    Err(reason) => {
                        // Not a failure: this environment has no storage path yet.
                        let line = format!("{}: {}: not measured: {reason}", environment.label(), spec.name);
                        progress(Event::Note(&line));
                        outcome.not_measured.push(line);
                        out.update_run(|run| run.env_mut(kind.as_str()).storage_not_measured = Some(reason))?;
                        continue;
                    }
                }
            }
            if spec.across() {
                if let Err(EnvError::Unavailable { reason, .. }) = inst.endpoint() {
                    // Not a failure: this environment has no boundary to measure.
                    let line = format!("{}: {}: not measured: {reason}", environment.label(), spec.name);
                    progress(Event::Note(&line));
                    outcome.not_measured.push(line);
                    out.update_run(|run| run.env_mut(kind.as_str()).boundary_not_measured = Some(reason))?;
                    continue;
                }
            }
            let what =
                format!("{} {} ({} iterations, ≤{} ms){}", environment.label(), spec.name, req.iterations, req.max_ms, budget_left(plan, began));
            progress(Event::Begin { step, total, what: &what });
            let probe = Probe::start();
            let asked = std::time::Instant::now();
            let result = match (spec.boundary, spec.family == Family::App) {
                (_, true) => measure_app(out, kind, inst.as_mut(), &mut hosts, spec, &req).map(|r| (r, None)),
                (false, false) => inst.agent().run_timed(&req).map_err(MeasureError::Agent),
                (true, false) => measure_boundary(out, kind, inst.as_mut(), &mut hosts, spec, &req).map(|r| (r, None)),
            };
            let host_wall = asked.elapsed();
            let interference = probe.finish();
            match result {
                Ok((r, host_loop)) => {
                    let mut m = Measurement::new(kind.as_str(), &environment.label(), spec);
                    m.add(&r)?;
                    // gVisor's clock may stand still across work without
                    // system calls; the host side of a boundary or app
                    // metric times with the host's clock (its elapsed time
                    // is the timed loop's, not the request's: an app
                    // metric's request also starts the server and an open
                    // loop calibrates its rate first).
                    let still = (kind == EnvKind::Runsc && !spec.across())
                        .then(|| env::runsc::clock_stood_still(&m.histogram, r.elapsed_ns, host_wall, host_loop))
                        .flatten();
                    // What the agent moved and verified is recorded even
                    // when its timing is refused: the bytes are checked
                    // whatever the clock did.
                    if let Some(io) = &r.io {
                        m.storage = Some(record_storage(out, kind, environment.as_ref(), spec, io)?);
                    }
                    if let Some(reason) = still {
                        let label = environment.label();
                        match host_loop.filter(|l| *l >= env::runsc::SANDBOX_LOOP_MIN_WALL && r.iterations > 0) {
                            Some(l) => {
                                let rec = HostTimedRecord {
                                    operations: r.iterations,
                                    host_loop_ns: l.as_nanos() as u64,
                                    env_loop_ns: r.elapsed_ns,
                                    bytes_per_op: m.bytes_per_op,
                                    refused: reason,
                                    storage: m.storage.clone(),
                                    run_id: None,
                                    interference,
                                };
                                let line = record_host_timed(out, kind, &label, spec, rec)?;
                                outcome.measured += 1;
                                progress(Event::Done { step, total, line: &line });
                            }
                            None => not_supported_under_runsc(out, &mut outcome, progress, &label, kind, spec.name, &reason)?,
                        }
                        continue;
                    }
                    if kind == EnvKind::Runsc {
                        // A figure of its own replaces an earlier part's refusal.
                        out.update_run(|run| {
                            let e = run.env_mut(kind.as_str());
                            e.host_timed.remove(spec.name);
                            e.not_supported.remove(spec.name);
                        })?;
                    }
                    m.interference = interference;
                    out.save(&m)?;
                    record_pinning(out, kind, spec, plan.pin, &r)?;
                    outcome.measured += 1;
                    let sm = m.summary();
                    let line = format!(
                        "{} {}: p50 {:.3} {}, p99 {:.3} {} (n={})",
                        environment.label(),
                        spec.name,
                        sm.p50,
                        spec.unit.label(),
                        sm.p99,
                        spec.unit.label(),
                        sm.n
                    );
                    progress(Event::Done { step, total, line: &line });
                }
                Err(e) if not_supported(&e).is_some() => {
                    // The environment cannot do it at all (O_DIRECT on tmpfs):
                    // a finding about it, not a failed measurement.
                    let why = not_supported(&e).unwrap_or_default();
                    let line = format!("{}: {}: {why}", environment.label(), spec.name);
                    progress(Event::Note(&line));
                    outcome.not_measured.push(line);
                    out.update_run(|run| {
                        run.env_mut(kind.as_str()).not_supported.insert(spec.name.to_string(), why);
                    })?;
                }
                Err(e) if kind == EnvKind::Runsc && interrupted.load(Ordering::SeqCst) == 0 => {
                    // gVisor implements most, not all, of Linux: a metric it
                    // cannot run is a finding about it, not a failed run.
                    not_supported_under_runsc(out, &mut outcome, progress, &environment.label(), kind, spec.name, &e.to_string())?;
                    if e.agent_gone() {
                        // The sandbox went with it: the next metrics get a new one.
                        match environment.start() {
                            Ok(fresh) => inst = fresh,
                            Err(e) => {
                                let line = format!("{}: restart after {}: {e}", kind, spec.name);
                                progress(Event::Problem(&line));
                                outcome.failed.push(line);
                                continue 'envs;
                            }
                        }
                    }
                }
                Err(e) => {
                    let line = format!("{}: {}: {e}", kind, spec.name);
                    progress(Event::Problem(&line));
                    outcome.failed.push(line);
                    if interrupted.load(Ordering::SeqCst) != 0 {
                        outcome.interrupted = true;
                        break 'envs;
                    }
                    if e.agent_gone() {
                        // The agent is gone; the next metric would fail the same way.
                        continue 'envs;
                    }
                }
            }
        }
        if let Some(usage) = from_env_value("usage", inst.resource_usage())? {
            out.update_run(|run| run.env_mut(kind.as_str()).usage = Some(usage))?;
        }
        match inst.shutdown() {
            Ok(d) => progress(Event::Note(&format!("{}: stopped in {:.1} ms", environment.label(), d.as_secs_f64() * 1e3))),
            Err(e) => progress(Event::Problem(&format!("{}: unclean stop: {e}", environment.label()))),
        }
        record_metadata(out, environment.as_ref())?;
        for spec in plan.metrics.iter().filter(|m| m.host_timed) {
            step += 1;
            if interrupted.load(Ordering::SeqCst) != 0 {
                outcome.interrupted = true;
                break 'envs;
            }
            let n = plan.iterations.or(plan.budget.map(|b| b.starts)).unwrap_or(if plan.quick { spec.quick_iterations } else { spec.iterations });
            let what = format!("{} {} ({n} starts){}", environment.label(), spec.name, budget_left(plan, began));
            progress(Event::Begin { step, total, what: &what });
            let probe = Probe::start();
            match measure_start(environment.as_mut(), spec, n, interrupted) {
                Ok(mut m) => {
                    m.interference = probe.finish();
                    out.save(&m)?;
                    outcome.measured += 1;
                    let sm = m.summary();
                    let line = format!("{} {}: p50 {:.2} ms (n={})", environment.label(), spec.name, sm.p50, sm.n);
                    progress(Event::Done { step, total, line: &line });
                }
                Err(e) => {
                    let line = format!("{}: {}: {e}", kind, spec.name);
                    progress(Event::Problem(&line));
                    outcome.failed.push(line);
                }
            }
            record_metadata(out, environment.as_ref())?;
        }
    }
    if interrupted.load(Ordering::SeqCst) != 0 {
        outcome.interrupted = true;
    }
    let by = outcome.interrupted.then(|| interrupted.load(Ordering::SeqCst));
    close_run(out, by)?;
    outcome.report = Some(crate::report::render(out)?);
    Ok(outcome)
}

/// Marks the run in progress in run.json until [`close_run`]: a run killed
/// part-way leaves its folder so (see results::claim).
pub fn open_run(out: &RunDir, appended: bool) -> Result<(), ResultsError> {
    out.update_run(|run| {
        run.in_progress = true;
        if let Some(part) = run.runs.last_mut() {
            part.appended = appended;
        }
    })
}

/// Marks the run's part finished in run.json, and the run interrupted by
/// signal `by` when it was (`isobench run` and `run --command`).
pub fn close_run(out: &RunDir, by: Option<usize>) -> Result<(), ResultsError> {
    if let Some(n) = by {
        out.update_run(|run| {
            run.interrupted = true;
            run.interrupted_by = signal_name(n);
        })?;
    }
    out.update_run(|run| {
        run.in_progress = false;
        if let Some(part) = run.runs.last_mut() {
            part.finished_utc = Some(crate::results::rfc3339_now());
        }
    })
}

/// ", budget: 2m10s left" for a run under `--budget` (nothing otherwise;
/// "0s left" once past it).
fn budget_left(plan: &Plan, began: std::time::Instant) -> String {
    match plan.budget {
        Some(b) => format!(", budget: {} left", crate::budget::words(b.budget.saturating_sub(began.elapsed()))),
        None => String::new(),
    }
}

/// The name of signal number `n` ("SIGTERM"); `None` for 0 or a number
/// that names no signal.
pub fn signal_name(n: usize) -> Option<String> {
    i32::try_from(n).ok().and_then(|n| nix::sys::signal::Signal::try_from(n).ok()).map(|s| s.as_str().to_string())
}

/// `env.start`, as its catalogue entry defines it: `n` instances one after
/// another, each timed on the host from the start being asked for
/// ([`Environment::start`], which does no per-start preparation) to its
/// agent's ready, then shut down at once and timed until its process is
/// reaped and what the start made is removed ([`Instance::shutdown`]: the
/// container's cgroup, the guest's QEMU). `isobench run` and `cargo bench`
/// both measure it here; the container records each start's phases
/// (`metadata.starts`).
pub fn measure_start(
    environment: &mut dyn Environment,
    spec: &'static MetricSpec,
    n: u64,
    interrupted: &AtomicUsize,
) -> Result<Measurement, EnvError> {
    let mut m = Measurement::new(environment.kind().as_str(), &environment.label(), spec);
    for _ in 0..n.max(1) {
        if interrupted.load(Ordering::SeqCst) != 0 {
            break;
        }
        let t0 = std::time::Instant::now();
        let inst = environment.start()?;
        inst.shutdown()?;
        let ns = t0.elapsed().as_nanos() as u64;
        m.histogram.record(ns.max(1)).expect("auto-resizing histogram");
        m.iterations += 1;
        m.elapsed_ns += ns;
    }
    Ok(m)
}

/// Why one measurement failed.
#[derive(Debug, thiserror::Error)]
pub enum MeasureError {
    #[error(transparent)]
    Agent(crate::agent::AgentError),
    #[error(transparent)]
    Boundary(#[from] crate::boundary::BoundaryError),
    #[error(transparent)]
    App(crate::apps::AppError),
    #[error(transparent)]
    Results(#[from] ResultsError),
}

impl MeasureError {
    /// True when the environment's agent is gone (its channel broke), so
    /// every further request to it would fail the same way.
    pub fn agent_gone(&self) -> bool {
        use crate::agent::AgentError::{Closed, Io};
        use crate::apps::AppError::Start;
        use crate::boundary::BoundaryError::Server;
        matches!(
            self,
            MeasureError::Agent(Io(_) | Closed(_))
                | MeasureError::Boundary(Server(Io(_) | Closed(_)))
                | MeasureError::App(Start { source: Io(_) | Closed(_), .. })
        )
    }
}

/// One `*.boundary` measurement (see [`crate::boundary`]); the path it took
/// is recorded in run.json as `environments.<env>.boundary`.
pub fn measure_boundary(
    out: &RunDir,
    kind: EnvKind,
    inst: &mut dyn Instance,
    hosts: &mut crate::boundary::HostSides,
    spec: &'static MetricSpec,
    req: &RunRequest,
) -> Result<isobench_workloads::protocol::RunResult, MeasureError> {
    let r = crate::boundary::measure(inst, hosts, spec, req)?;
    record_boundary(out, kind, inst)?;
    Ok(r)
}

/// The path a measurement across `inst`'s boundary took, into run.json's
/// `environments.<env>.boundary`.
fn record_boundary(out: &RunDir, kind: EnvKind, inst: &mut dyn Instance) -> Result<(), MeasureError> {
    if let Ok(ep) = inst.endpoint() {
        let boundary = from_env_value("boundary", ep.metadata())?;
        out.update_run(|run| run.env_mut(kind.as_str()).boundary = boundary)?;
    }
    Ok(())
}

/// One app measurement (see [`crate::apps`]); the path its load took is
/// recorded in run.json as `environments.<env>.boundary`, as for the
/// `*.boundary` metrics.
pub fn measure_app(
    out: &RunDir,
    kind: EnvKind,
    inst: &mut dyn Instance,
    hosts: &mut crate::boundary::HostSides,
    spec: &'static MetricSpec,
    req: &RunRequest,
) -> Result<RunResult, MeasureError> {
    let r = crate::apps::measure(inst, hosts, kind == EnvKind::Native, spec, req).map_err(MeasureError::App)?;
    record_boundary(out, kind, inst)?;
    Ok(r)
}

fn reason_of(e: &EnvError) -> String {
    match e {
        EnvError::Unavailable { reason, .. } => reason.clone(),
        other => other.to_string(),
    }
}

/// Default time bound of one measurement.
pub const DEFAULT_MAX: Duration = Duration::from_secs(10);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_container_memory_limit_shrinks_the_working_set_to_fit_two_buffers() {
        let gib = 1u64 << 30;
        assert_eq!(working_set_within(Some(gib), None), Some(gib), "no limit, no change");
        assert_eq!(working_set_within(Some(gib), Some(300 << 20)), Some(100 << 20), "a third of the limit, whole MiB");
        assert_eq!(working_set_within(Some(64 << 20), Some(gib)), Some(64 << 20), "a set that fits is kept");
        assert_eq!(working_set_within(Some(64 << 20), Some(1 << 20)), Some(1 << 20), "never below the agent's 1 MiB bound");
        assert_eq!(working_set_within(None, Some(gib)), None);
    }
    use serde_json::json;

    struct FakeVm(serde_json::Value);

    impl Environment for FakeVm {
        fn kind(&self) -> EnvKind {
            EnvKind::Vm
        }
        fn metadata(&self) -> serde_json::Value {
            self.0.clone()
        }
        fn start(&mut self) -> Result<Box<dyn Instance>, EnvError> {
            Err(EnvError::Start { env: "vm", reason: "fake".into() })
        }
    }

    #[test]
    fn boots_of_every_process_accumulate_and_later_records_win() {
        let d = tempfile::tempdir().unwrap();
        let out = RunDir::at(d.path()).unwrap();
        let boot = |start: u32, ready: f64, exited: Option<f64>| json!({ "start": start, "agent_ready_ms": ready, "qemu_exited_ms": exited, "guest_uptime_at_ready_ms": 1.0 });
        // one bench binary: boot 1 seen while running, then complete
        record_metadata(&out, &FakeVm(json!({ "boots": [boot(1, 2000.0, None)] }))).unwrap();
        record_metadata(&out, &FakeVm(json!({ "boots": [boot(1, 2000.0, Some(2100.0)), boot(2, 1900.0, Some(1990.0))] }))).unwrap();
        // the next bench binary starts counting at 1 again
        record_metadata(&out, &FakeVm(json!({ "boots": [boot(1, 2050.0, Some(2150.0))] }))).unwrap();
        let run = out.run_record().unwrap();
        let vm = &run.environments["vm"];
        let all = vm.boots_all.as_ref().unwrap();
        assert_eq!(all.len(), 3, "{all:?}");
        assert_eq!(all[0].qemu_exited_ms, Some(2100.0), "the complete record replaced the partial one");
        // metadata itself is the last process's view
        assert_eq!(vm.meta(|m| m.boots.as_ref().map(Vec::len)), Some(1));
    }

    #[test]
    fn each_writer_adds_its_parameters_and_the_first_one_the_host() {
        let d = tempfile::tempdir().unwrap();
        let out = RunDir::at(d.path()).unwrap();
        record_host(&out, "cargo bench", Parameters { criterion: Some(true), pin: Some(PinMode::Split), ..Parameters::default() }).unwrap();
        let first = out.run_record().unwrap();
        record_host(&out, "cargo bench", Parameters { criterion: Some(true), ..Parameters::default() }).unwrap();
        let run = out.run_record().unwrap();
        assert_eq!((run.host.as_ref(), run.started_utc.as_ref()), (first.host.as_ref(), first.started_utc.as_ref()));
        let p = run.parameters.clone().unwrap();
        assert_eq!((p.driver.as_deref(), p.pin, p.criterion), (Some("cargo bench"), Some(PinMode::Split), Some(true)));
        assert_eq!(run.schema, crate::results::SCHEMA_VERSION);
        assert_eq!(run.runs.len(), 2, "each writer is one of the folder's runs");
        assert_ne!(run.runs[0].run_id, run.runs[1].run_id);
        assert_eq!(run.current_run_id(), Some(run.runs[1].run_id.as_str()));
    }

    #[test]
    fn a_command_beside_the_measurements_keeps_their_driver() {
        let d = tempfile::tempdir().unwrap();
        let out = RunDir::at(d.path()).unwrap();
        record_host(&out, "isobench run", Parameters::default()).unwrap();
        let first = out.run_record().unwrap();
        record_host_beside(&out, "isobench startup").unwrap();
        let run = out.run_record().unwrap();
        assert_eq!(run.parameters.unwrap().driver.as_deref(), Some("isobench run"), "who measured measurements.json");
        assert_eq!(run.started_utc, first.started_utc);
        // Alone in a folder, startup records the host and itself.
        let d = tempfile::tempdir().unwrap();
        let out = RunDir::at(d.path()).unwrap();
        record_host_beside(&out, "isobench startup").unwrap();
        let run = out.run_record().unwrap();
        assert!(run.host.is_some());
        assert_eq!(run.parameters.unwrap().driver.as_deref(), Some("isobench startup"));
        // A run after it is the measurements' driver.
        record_host(&out, "isobench run", Parameters::default()).unwrap();
        assert_eq!(out.run_record().unwrap().parameters.unwrap().driver.as_deref(), Some("isobench run"));
    }
}
