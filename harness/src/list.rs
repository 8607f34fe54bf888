//! `isobench list`: every environment with whether it can run on this host,
//! and every metric of the catalogue with its display unit, what one
//! operation is and the reference method it follows.

use std::io::{self, Write};

use isobench_workloads::catalog::CATALOG;

use crate::env::{self, EnvError, EnvKind, Options};
use crate::workloads::{self, Workloads};

/// Whether an environment can run here, as [`env::prepare`] finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    for m in CATALOG {
        writeln!(out, "  {:<22} {:<6} {}\n  {:<22} {:<6} method: {}", m.name, m.unit.label(), m.operation, "", "", m.reference)?;
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
    }
}
