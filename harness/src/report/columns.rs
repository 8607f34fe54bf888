//! The order of everything in a report: metrics in catalogue order,
//! environments as columns (native first, then the other environments and
//! the peers as `isobench list` has them), and in a merged report each
//! column's baseline (`native@<host>` for `vm@<host>`).

use std::collections::BTreeMap;

use crate::collect::Measurement;
use crate::env::EnvKind;

/// Position of a metric in the catalogue (report order).
pub fn catalog_index(metric: &str) -> usize {
    isobench_workloads::catalog::CATALOG.iter().position(|m| m.name == metric).unwrap_or(usize::MAX)
}

/// Report column order of an environment name (native first). A merged
/// report names columns `<env>@<host or config>`; they sort by environment,
/// then by that suffix.
pub fn env_order(env: &str) -> (usize, String) {
    let (kind, suffix) = split_env(env);
    let i = EnvKind::ALL.iter().chain(EnvKind::PEERS.iter()).position(|k| k.as_str() == kind).unwrap_or(usize::MAX);
    (i, format!("{suffix}\u{0}{kind}"))
}

/// `vm@laptop` → ("vm", "laptop"); `vm` → ("vm", "").
pub fn split_env(env: &str) -> (&str, &str) {
    env.split_once('@').unwrap_or((env, ""))
}

/// True for a baseline column (`native`, or `native@…` in a merged report).
pub fn is_baseline(env: &str) -> bool {
    split_env(env).0 == "native"
}

/// The native measurement `m` is compared with: the one of the same host or
/// configuration (same `@suffix`).
pub fn baseline_for<'a>(group: &[&'a Measurement], m: &Measurement) -> Option<&'a Measurement> {
    baseline_of(group, &m.env)
}

/// The native measurement column `env` is compared with (same `@suffix`),
/// where `env` may have no measurement of its own (a loop timed by the host).
pub fn baseline_of<'a>(group: &[&'a Measurement], env: &str) -> Option<&'a Measurement> {
    let suffix = split_env(env).1;
    group.iter().copied().find(|b| is_baseline(&b.env) && split_env(&b.env).1 == suffix)
}

/// Sorts measurements into report order: catalogue × environment.
pub fn sort(ms: &mut [Measurement]) {
    ms.sort_by_key(|m| (catalog_index(m.metric.name), env_order(&m.env)));
}

/// Groups measurements by metric, keeping report order.
pub fn by_metric(ms: &[Measurement]) -> BTreeMap<(usize, &'static str), Vec<&Measurement>> {
    let mut g: BTreeMap<(usize, &'static str), Vec<&Measurement>> = BTreeMap::new();
    for m in ms {
        g.entry((catalog_index(m.metric.name), m.metric.name)).or_default().push(m);
    }
    g
}

/// Environments present in `ms`, in column order, with their labels.
pub fn columns(ms: &[Measurement]) -> Vec<(String, String)> {
    let mut cols: Vec<(String, String)> = Vec::new();
    for m in ms {
        if !cols.iter().any(|(e, _)| *e == m.env) {
            cols.push((m.env.clone(), m.env_label.clone()));
        }
    }
    cols.sort_by_key(|(e, _)| env_order(e));
    cols
}

/// The host-timed figures of `metric` (`environments.<env>.host_timed`:
/// loops whose own clock was refused), in column order: (label, record).
/// Each is (column name, column label, record); a merged folder's inputs
/// give theirs as `env@name`, labelled `<label> @ name` as their
/// measurements are.
pub fn host_timed<'a>(run: &'a crate::results::RunRecord, metric: &str) -> Vec<(String, String, &'a crate::results::run::HostTimedRecord)> {
    let mut v: Vec<_> = run
        .columns_environments()
        .into_iter()
        .filter_map(|(name, e)| {
            let h = e.host_timed.get(metric)?;
            Some((name.clone(), column_label(&name, e), h))
        })
        .collect();
    v.sort_by_key(|(name, _, _)| env_order(name));
    v
}

/// A host-timed figure's cost relative to a measurement's loop mean (its
/// time ÷ operations, the same interval): > 1 is slower, per byte for rates.
pub fn host_timed_cost(h: &crate::results::run::HostTimedRecord, base: &Measurement) -> Option<f64> {
    let per = |ns: f64, bytes: u64| if base.unit().is_rate() && bytes > 0 { ns / bytes as f64 } else { ns };
    let b = per(base.loop_mean_ns(), base.bytes_per_op);
    let v = per(h.mean_ns(), h.bytes_per_op);
    (b > 0.0 && v > 0.0).then(|| v / b)
}

/// The column label of environment record `e` named `name` in
/// [`crate::results::RunRecord::columns_environments`]: its own label, and
/// for a merged input's `env@name` `<label> @ name`, as its measurements'.
pub fn column_label(name: &str, e: &crate::results::run::EnvRecord) -> String {
    match split_env(name) {
        (kind, "") => e.label_or(kind).to_string(),
        (kind, suffix) => format!("{} @ {suffix}", e.label_or(kind)),
    }
}
