//! The VM side: guest image lookup ([`image`]), the accelerator verdict
//! ([`accel`]: KVM only when a real probe boot under KVM reaches the agent,
//! else TCG), starting QEMU through scripts/vm-run ([`qemu`]) and the host's
//! TSC rate that a TCG guest is told ([`tsc`]), and its disks ([`disk`]:
//! ext4 images made from a directory without root, QEMU's cache/aio modes)
//! and the daemon behind a virtiofs share ([`virtiofsd`]).
//!
//! The guest is a kernel plus an initramfs whose /init is the static agent
//! (scripts/build-guest); the agent talks over a virtio-serial port that QEMU
//! exposes as a unix socket on the host. Its speed depends on the accelerator
//! more than on anything else, so the verdict and its reason travel with every
//! figure of the vm column.

pub mod accel;
pub mod disk;
pub mod image;
pub mod qemu;
pub mod tsc;
pub mod virtiofsd;

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

isobench_workloads::named_values!(VmNet, "vm network", { Tap = "tap", User = "user" }, aliases { "slirp" = User });

/// `--accel`: what the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AccelChoice {
    /// Probe: KVM only when a real guest boot under KVM reaches the agent.
    #[default]
    Auto,
    Kvm,
    Tcg,
}

isobench_workloads::named_values!(AccelChoice, "accelerator", { Auto = "auto", Kvm = "kvm", Tcg = "tcg" });

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_choice_parses_back_and_the_error_names_every_one() {
        let e = "hvf".parse::<AccelChoice>().unwrap_err();
        assert_eq!(e, "unknown accelerator \"hvf\"; choose from auto, kvm or tcg");
        for a in AccelChoice::ALL {
            assert_eq!(a.to_string().parse::<AccelChoice>(), Ok(a));
            assert!(e.contains(a.as_str()));
        }
        assert_eq!(AccelChoice::default().as_str(), "auto");
        let e = "bridge".parse::<VmNet>().unwrap_err();
        for n in VmNet::ALL {
            assert_eq!(n.to_string().parse::<VmNet>(), Ok(n));
            assert!(e.contains(n.as_str()), "{e}");
        }
        assert_eq!("slirp".parse::<VmNet>(), Ok(VmNet::User));
    }
}
