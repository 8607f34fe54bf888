//! The VM side: guest image lookup ([`image`]), the accelerator verdict
//! ([`accel`]: KVM only when a real probe boot under KVM reaches the agent,
//! else TCG), starting QEMU through scripts/vm-run ([`qemu`]) and the host's
//! TSC rate that a TCG guest is told ([`tsc`]).
//!
//! The guest is a kernel plus an initramfs whose /init is the static agent
//! (scripts/build-guest); the agent talks over a virtio-serial port that QEMU
//! exposes as a unix socket on the host. Its speed depends on the accelerator
//! more than on anything else, so the verdict and its reason travel with every
//! figure of the vm column.

pub mod accel;
pub mod image;
pub mod qemu;
pub mod tsc;

pub use accel::Verdict;
pub use image::GuestImage;
pub use qemu::{Accel, BootProtocol, Machine};

/// vm settings a user can choose (`isobench run` flags); `None` keeps the
/// environment's default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VmSettings {
    /// Machine type (`--machine`; default microvm).
    pub machine: Option<Machine>,
    /// How the kernel is entered (default: PVH when the image has a vmlinux).
    pub boot: Option<BootProtocol>,
    /// Guest memory, MiB.
    pub memory_mib: Option<u32>,
    /// vCPUs.
    pub cpus: Option<u32>,
    /// Fail instead of falling back to TCG (`--require-kvm`).
    pub require_kvm: bool,
    /// The guest's network (`--vm-net`); default: a tap as root, slirp without.
    pub net: Option<VmNet>,
}

/// `--vm-net`: what the guest's virtio-net device is connected to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VmNet {
    /// A tap device in the run's private network namespace (root only).
    Tap,
    /// QEMU's user-mode network (slirp) with forwarded loopback ports.
    User,
}

impl std::str::FromStr for VmNet {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "tap" => Ok(VmNet::Tap),
            "user" | "slirp" => Ok(VmNet::User),
            other => Err(format!("unknown vm network {other:?}; use tap or user")),
        }
    }
}

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
