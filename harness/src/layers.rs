//! `isobench layers`: what each layer of `--profile docker` costs. The
//! container environment is prepared once per variant: `bare` (namespaces
//! only), each layer alone (`hardening`, which is `default`; `seccomp`;
//! `overlay`; `bridge`), and all of them (`docker`). Each round starts
//! every variant once in a new random order (as `isobench startup` orders
//! its columns) and measures there, one after another, `env.start`, the
//! in-container metrics and the cross-boundary ones, so that a slow moment
//! of a shared machine falls on every variant alike; the ratio to `bare` is
//! taken within each round ([`LayersRun::ratio`]). Each measurement is
//! taken inside a [`Probe`], and the rounds whose measurement of a metric
//! under a variant was disturbed are recorded with it
//! ([`LayerMetric::interfered`]), so the report can mark those cells and
//! not only the run as a whole. The method follows
//! Felter et al. 2015 (IBM RC25482), which measured Docker's NAT and its
//! other layers one at a time against the same workload natively.

use std::sync::atomic::AtomicUsize;

use isobench_workloads::catalog::{self, MetricSpec};
use isobench_workloads::protocol::PinMode;

use crate::collect::interference::Probe;
use crate::collect::Measurement;
use crate::container::profile::Layer;
use crate::env::container::Container;
use crate::env::{EnvError, Environment, Options};
use crate::results::layers::{InterferedRound, LayerMetric, LayerVariant, LayersRun};
use crate::runner::{measure_start, Plan};

/// The variants, in the order of the report's columns: (name, layers).
pub const VARIANTS: [(&str, &[Layer]); 6] = [
    ("bare", &[]),
    ("hardening", &[Layer::Hardening]),
    ("seccomp", &[Layer::Seccomp]),
    ("overlay", &[Layer::Overlay]),
    ("bridge", &[Layer::Bridge]),
    ("docker", &[Layer::Hardening, Layer::Seccomp, Layer::Overlay, Layer::Bridge]),
];

/// The metrics measured unless told: every syscall.*, ipc.pipe_rtt, every
/// net.*.boundary and env.start.
pub fn default_metrics() -> Vec<&'static MetricSpec> {
    catalog::CATALOG
        .iter()
        .filter(|m| m.name.starts_with("syscall.") || m.name == "ipc.pipe_rtt" || (m.name.starts_with("net.") && m.boundary) || m.name == "env.start")
        .collect()
}

/// Rounds unless told: enough for an interval that excludes its ends (at
/// 8 rounds the 95 % interval of a median spans ranks 1 to 8; at 12, 3 to 10).
pub const DEFAULT_ROUNDS: usize = 12;

/// Starts timed per variant and round for `env.start`.
pub const STARTS_PER_ROUND: u64 = 3;

/// A fixed seed, so that a run's order can be repeated.
const ORDER_SEED: u64 = 0x1a7e_5eed;

#[derive(Debug, thiserror::Error)]
pub enum LayersError {
    #[error("layers: {0}")]
    Env(#[from] EnvError),
    #[error("layers: at least one round is needed")]
    NoRounds,
    #[error("layers: {metric} under {variant}: {reason}")]
    Measure { metric: &'static str, variant: &'static str, reason: String },
    #[error(transparent)]
    Collect(#[from] crate::collect::CollectError),
}

/// What to measure: the metrics, the rounds and the runner's plan for each
/// request (iterations, time bound, pinning).
pub struct LayersPlan {
    pub metrics: Vec<&'static MetricSpec>,
    pub rounds: usize,
    pub quick: bool,
    pub max_ms: u64,
}

/// Runs the rounds (see the module docs). `progress` gets one line per step.
pub fn measure(plan: &LayersPlan, opts: &Options, progress: &mut dyn FnMut(&str)) -> Result<LayersRun, LayersError> {
    if plan.rounds == 0 {
        return Err(LayersError::NoRounds);
    }
    crate::container::require_root().map_err(|e| EnvError::Unavailable { env: "container", reason: e.to_string() })?;
    let runner = Plan {
        envs: Vec::new(),
        metrics: plan.metrics.clone(),
        quick: plan.quick,
        iterations: None,
        max_ms: plan.max_ms,
        pin: PinMode::Same,
        budget: None,
    };
    let mut envs = Vec::new();
    let mut skipped = Vec::new();
    for (name, layers) in VARIANTS {
        let mut o = opts.clone();
        o.container.layers = Some(layers.to_vec());
        match Container::prepare(&o) {
            Ok(env) => envs.push((name, layers, env)),
            Err(e) if name == "bare" => return Err(e.into()),
            Err(e) => skipped.push(format!("{name}: {e}")),
        }
    }
    for line in &skipped {
        progress(&format!("skipped: {line}"));
    }
    let mut metrics: Vec<LayerMetric> = plan
        .metrics
        .iter()
        .map(|m| LayerMetric {
            metric: m.name.to_string(),
            unit: m.unit.label().to_string(),
            p50: Default::default(),
            ns_per_op: Default::default(),
            interfered: Default::default(),
        })
        .collect();
    let mut boundary_paths = std::collections::BTreeMap::new();
    let mut hosts = crate::boundary::HostSides::new(&opts.workloads);
    let mut rng = fastrand::Rng::with_seed(ORDER_SEED);
    let interrupted = AtomicUsize::new(0);
    let probe = Probe::start();
    for round in 1..=plan.rounds {
        let mut order: Vec<usize> = (0..envs.len()).collect();
        rng.shuffle(&mut order);
        for &i in &order {
            let (name, _, env) = &mut envs[i];
            let name: &'static str = name;
            progress(&format!("round {round}/{}: {}", plan.rounds, env.label()));
            let record = |spec: &'static MetricSpec, m: &Measurement, probe: Probe, metrics: &mut Vec<LayerMetric>| {
                if let Some(lm) = metrics.iter_mut().find(|lm| lm.metric == spec.name) {
                    lm.p50.entry(name.to_string()).or_default().push(m.summary().p50);
                    lm.ns_per_op.entry(name.to_string()).or_default().push(m.histogram.value_at_quantile(0.5) as f64);
                    if let Some(i) = probe.finish().filter(|i| i.flagged()) {
                        lm.interfered.entry(name.to_string()).or_default().push(InterferedRound { round, reasons: i.reasons() });
                    }
                }
            };
            for spec in plan.metrics.iter().filter(|m| m.host_timed) {
                let probe = Probe::start();
                let m = measure_start(env, spec, STARTS_PER_ROUND, &interrupted)?;
                record(spec, &m, probe, &mut metrics);
            }
            let mut inst = env.start()?;
            for spec in plan.metrics.iter().filter(|m| !m.host_timed) {
                let req = runner.request(spec);
                let probe = Probe::start();
                let fail = |reason: String| LayersError::Measure { metric: spec.name, variant: name, reason };
                let r = match spec.boundary {
                    false => inst.agent().run(&req).map_err(|e| fail(e.to_string()))?,
                    true => crate::boundary::measure(inst.as_mut(), &mut hosts, spec, &req).map_err(|e| fail(e.to_string()))?,
                };
                if spec.boundary {
                    if let Ok(ep) = inst.endpoint() {
                        boundary_paths.entry(name).or_insert_with(|| ep.metadata());
                    }
                }
                let mut m = Measurement::new("container", &env.label(), spec);
                m.add(&r)?;
                record(spec, &m, probe, &mut metrics);
            }
            inst.shutdown()?;
        }
    }
    let variants = envs
        .iter()
        .map(|(name, layers, env)| {
            let mut settings = env.metadata()["profile"].clone();
            if let Some(b) = boundary_paths.get(name) {
                settings["boundary"] = b.clone();
            }
            LayerVariant { name: name.to_string(), label: env.label(), layers: layers.iter().map(|l| l.to_string()).collect(), settings }
        })
        .collect();
    Ok(LayersRun { rounds: plan.rounds, starts_per_round: STARTS_PER_ROUND, variants, metrics, skipped, interference: probe.finish() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::profile::Profile;

    #[test]
    fn the_variants_are_bare_each_layer_alone_and_docker() {
        assert_eq!(VARIANTS[0], ("bare", &[][..]));
        assert_eq!(VARIANTS[5].1, Profile::Docker.layers(), "docker is every layer");
        let alone: Vec<Layer> = VARIANTS[1..5]
            .iter()
            .map(|(_, l)| {
                assert_eq!(l.len(), 1);
                l[0]
            })
            .collect();
        assert_eq!(alone, Layer::ALL, "each layer once, alone");
        let names: Vec<&str> = default_metrics().iter().map(|m| m.name).collect();
        for m in ["syscall.getpid", "ipc.pipe_rtt", "net.tcp_rr.boundary", "env.start"] {
            assert!(names.contains(&m), "{m} in {names:?}");
        }
        assert!(!names.contains(&"net.tcp_rr"), "the in-environment loopback net metrics are not the boundary");
    }
}
