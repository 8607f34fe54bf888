//! The VM side: guest image lookup, accelerator probe (kvm|tcg) and starting
//! QEMU through scripts/vm-run.

/// `--accel`: what the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AccelChoice {
    /// Probe: KVM only when a real guest boot under KVM reaches the agent.
    #[default]
    Auto,
    Kvm,
    Tcg,
}

impl std::str::FromStr for AccelChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(AccelChoice::Auto),
            "kvm" => Ok(AccelChoice::Kvm),
            "tcg" => Ok(AccelChoice::Tcg),
            other => Err(format!("unknown accelerator {other:?}; use auto, kvm or tcg")),
        }
    }
}
