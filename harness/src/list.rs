//! `isobench list`: every environment with whether it can run on this host,
//! and every metric of the catalogue with its display unit, what one
//! operation is and the reference method it follows; with `--json`, the same
//! as a [`Listing`].

use std::io::{self, Write};

use isobench_workloads::catalog::{Family, MetricSpec, Unit, CATALOG};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::env::{self, EnvError, EnvKind, Options};
use crate::workloads::{self, Workloads};

/// Whether an environment can run here, as [`env::prepare`] finds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum Availability {
    /// Prepared: it runs, with this column label (e.g. `vm (emulated (TCG))`).
    Available { label: String },
    /// It cannot run here, for this one-line reason.
    Unavailable { reason: String },
    /// Not known: the static workloads are not built, so nothing was tried.
    Unknown,
}

impl std::fmt::Display for Availability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Availability::Available { label } => write!(f, "available as {label}"),
            Availability::Unavailable { reason } => write!(f, "unavailable: {reason}"),
            Availability::Unknown => f.write_str("unknown: static workloads not built (scripts/build-workloads)"),
        }
    }
}

/// Whether `kind` can run here: prepares it with the default options (a
/// rootfs is built, the accelerator probed) and drops it again.
pub fn availability(kind: EnvKind, workloads: Option<&Workloads>) -> Availability {
    let Some(w) = workloads else { return Availability::Unknown };
    match env::prepare(kind, &Options::new(w.clone())) {
        Ok(e) => Availability::Available { label: e.label() },
        Err(EnvError::Unavailable { reason, .. }) => Availability::Unavailable { reason },
        Err(e) => Availability::Unavailable { reason: e.to_string() },
    }
}

/// The environment sections of the listing, in order: a title and its kinds.
pub const ENV_SECTIONS: [(&str, &[EnvKind]); 2] =
    [("Environments:", &EnvKind::ALL), ("Peer runtimes (--env peers, or by name; skipped with one line when not installed):", &EnvKind::PEERS)];

/// `isobench list --json`: every environment and metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Listing {
    pub environments: Vec<ListedEnv>,
    pub metrics: Vec<ListedMetric>,
}

/// One environment of the listing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ListedEnv {
    /// The name `--env` takes.
    pub name: String,
    pub description: String,
    /// A peer runtime (`--env peers`), not one of the core three.
    pub peer: bool,
    pub availability: Availability,
}

/// One metric of the catalogue (`workloads/src/catalog.rs`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ListedMetric {
    pub name: String,
    pub family: Family,
    /// The unit figures are shown in (`ns`, `us`, `ms`, `GiB/s`, `Gbit/s`);
    /// histograms always hold ns per operation.
    pub unit: Unit,
    /// What one operation is.
    pub operation: String,
    /// The method it follows.
    pub reference: String,
    /// Operations timed together as one histogram sample.
    pub ops_per_sample: u64,
    /// Iterations of a full run and of `--quick`.
    pub iterations: u64,
    pub quick_iterations: u64,
    /// Bytes one operation moves (rates; 0 for latencies).
    pub bytes_per_op: u64,
    /// Timed by the harness from outside the environment (env.start).
    pub host_timed: bool,
    /// Measured across the environment's boundary.
    pub boundary: bool,
}

impl From<&MetricSpec> for ListedMetric {
    fn from(m: &MetricSpec) -> ListedMetric {
        ListedMetric {
            name: m.name.into(),
            family: m.family,
            unit: m.unit,
            operation: m.operation.into(),
            reference: m.reference.into(),
            ops_per_sample: m.ops_per_sample,
            iterations: m.iterations,
            quick_iterations: m.quick_iterations,
            bytes_per_op: m.bytes_per_op,
            host_timed: m.host_timed,
            boundary: m.boundary,
        }
    }
}

/// The whole listing, each environment's availability found by preparing it.
pub fn listing() -> Listing {
    let workloads = workloads::locate().ok();
    let environments = ENV_SECTIONS
        .iter()
        .flat_map(|(_, kinds)| kinds.iter())
        .map(|&k| ListedEnv {
            name: k.as_str().into(),
            description: k.describe().into(),
            peer: EnvKind::PEERS.contains(&k),
            availability: availability(k, workloads.as_ref()),
        })
        .collect();
    Listing { environments, metrics: CATALOG.iter().map(ListedMetric::from).collect() }
}

/// Writes the listing as `isobench list` prints it, each environment's
/// availability found as its line is written. The first write error (a
/// closed pipe: `isobench list | head`) ends it.
pub fn print(out: &mut dyn Write) -> io::Result<()> {
    let workloads = workloads::locate().ok();
    for (title, kinds) in ENV_SECTIONS {
        writeln!(out, "{title}")?;
        for &k in kinds {
            writeln!(out, "  {:<10} {}\n  {:<10} → {}", k.as_str(), k.describe(), "", availability(k, workloads.as_ref()))?;
        }
    }
    writeln!(out, "\nMetrics (histograms in ns per operation; shown in the unit below):")?;
    // The longest name sets the column, so a long one does not shift its row.
    let w = CATALOG.iter().map(|m| m.name.len()).max().unwrap_or(0);
    for m in CATALOG {
        writeln!(out, "  {:<w$} {:<6} {}\n  {:<w$} {:<6} method: {}", m.name, m.unit.label(), m.operation, "", "", m.reference)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_environment_is_in_one_section() {
        let listed: Vec<EnvKind> = ENV_SECTIONS.iter().flat_map(|(_, kinds)| kinds.iter().copied()).collect();
        assert_eq!(listed, EnvKind::every().collect::<Vec<_>>());
    }

    #[test]
    fn without_workloads_the_availability_is_unknown_with_the_remedy() {
        assert_eq!(availability(EnvKind::Native, None).to_string(), "unknown: static workloads not built (scripts/build-workloads)");
        let a = Availability::Unavailable { reason: "no guest image; run scripts/build-guest".into() };
        assert_eq!(a.to_string(), "unavailable: no guest image; run scripts/build-guest");
        assert_eq!(
            serde_json::to_value(&a).unwrap(),
            serde_json::json!({ "state": "unavailable", "reason": "no guest image; run scripts/build-guest" })
        );
        assert_eq!(serde_json::to_value(Availability::Unknown).unwrap(), serde_json::json!({ "state": "unknown" }));
    }
}
