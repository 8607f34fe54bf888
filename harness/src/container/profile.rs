//! Security profiles of a container (`--profile bare|default|docker`): what
//! isobench's launcher and the OCI peers add to the namespaces so that the
//! container is the one people deploy, and what each addition costs.
//!
//! A profile is a set of [`Layer`]s, so that the layers still to come
//! (Docker's overlayfs root and its bridge with NAT) are one variant each:
//!
//! - `bare`: namespaces only, every capability of the caller, /proc and
//!   /sys as the kernel makes them. **Not a security boundary**: root in it
//!   can write the host's /proc/sys, mount the host's disks and load
//!   modules. It is there to measure what namespaces alone cost.
//! - `default` ([`Layer::Hardening`]): what runc's and Docker's defaults
//!   give: Docker's default capability set ([`DOCKER_CAPABILITIES`]) in the
//!   bounding, permitted and effective sets, none inheritable or ambient,
//!   no_new_privs, runc's masked and read-only /proc and /sys paths
//!   ([`MASKED_PATHS`], [`READONLY_PATHS`]), /sys read-only, and a root
//!   filesystem mounted nodev so that a device node made with CAP_MKNOD
//!   cannot be opened.
//! - `docker` (every layer): `default` plus [`Layer::Seccomp`], the
//!   distribution's default container seccomp profile
//!   ([`seccomp`](super::seccomp)) compiled to BPF in the parent and loaded
//!   by the child right before exec, and [`Layer::Overlay`], the image as
//!   the lowerdir of an overlayfs root with a per-container upper
//!   ([`overlay`](super::rootfs::overlay)), and [`Layer::Bridge`], the
//!   boundary network's veth on a bridge with a published port reached by
//!   DNAT and masquerade inside the run's network namespace
//!   ([`bridge`](super::net::bridge)).
//!
//! A [`PreparedProfile`] may also hold any set of layers
//! ([`PreparedProfile::prepare_layers`]), so that each layer's cost can be
//! measured alone (`isobench layers`).
//!
//! [`PreparedProfile`] is a profile made ready once per environment (the
//! capability mask, the compiled filter), so that a container start pays for
//! loading it, not for compiling it.

use std::sync::Arc;

use super::rootfs::UpperKind;
use super::seccomp::{BpfProgram, SeccompError, SeccompProfile};

/// Docker's default capability set, as moby's `oci/caps/defaults.go`
/// (`DefaultCapabilities`) lists it, in its order. runc's own `runc spec`
/// keeps only three (AUDIT_WRITE, KILL, NET_BIND_SERVICE); this is what
/// `docker run` gives a container.
pub const DOCKER_CAPABILITIES: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Paths hidden from the container, as runc's default spec
/// (`libcontainer/specconv/example.go`, `MaskedPaths`) lists them: a file
/// gets /dev/null bound over it, a directory an empty read-only tmpfs; a
/// path this kernel does not have is skipped.
pub const MASKED_PATHS: [&str; 11] = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/sys/firmware",
    "/proc/scsi",
    "/sys/devices/virtual/tpm",
];

/// Paths the container may read but not write, as runc's default spec
/// lists them (`ReadonlyPaths`): bound onto themselves and remounted
/// read-only. /proc/sys among them is what keeps a container from setting
/// the host's `kernel.core_pattern`.
pub const READONLY_PATHS: [&str; 5] = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

/// One addition to the namespaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Layer {
    /// Docker's capabilities, no_new_privs, runc's masked and read-only
    /// paths, nodev root.
    Hardening,
    /// The distribution's default container seccomp profile as a BPF filter.
    Seccomp,
    /// An overlayfs root: the image as lowerdir, a per-container upper.
    Overlay,
    /// The container's veth on a bridge of the run's network namespace,
    /// reached through a published port (DNAT) with masquerade.
    Bridge,
}

isobench_workloads::named_values!(Layer, "layer", { Hardening = "hardening", Seccomp = "seccomp", Overlay = "overlay", Bridge = "bridge" });

impl Layer {
    pub fn describe(self) -> &'static str {
        match self {
            Layer::Hardening => {
                "Docker's 14 default capabilities, no_new_privs, runc's masked and read-only /proc and /sys paths, /sys read-only, a nodev root"
            }
            Layer::Seccomp => "the distribution's default container seccomp profile (/usr/share/containers/seccomp.json) as a BPF filter",
            Layer::Overlay => "an overlayfs root: the image as the read-only lowerdir, a per-container upperdir (tmpfs unless --overlay-upper disk)",
            Layer::Bridge => {
                "the container's veth on a Linux bridge of the run's network namespace, its server reached through a published port (nftables DNAT + masquerade, inside that namespace only)"
            }
        }
    }
}

/// A container's security profile (`--profile`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// Namespaces only: not a security boundary.
    Bare,
    /// runc's and Docker's hardening without seccomp.
    #[default]
    Default,
    /// Every layer: hardening, seccomp, overlayfs root, bridge+NAT.
    Docker,
}

isobench_workloads::named_values!(Profile, "profile", { Bare = "bare", Default = "default", Docker = "docker" });

/// What `bare` is, wherever it is shown (labels, report, run.json, `--help`).
pub const NOT_A_BOUNDARY: &str = "not a security boundary";

impl Profile {
    /// The layers it adds to the namespaces.
    pub fn layers(self) -> &'static [Layer] {
        match self {
            Profile::Bare => &[],
            Profile::Default => &[Layer::Hardening],
            Profile::Docker => &[Layer::Hardening, Layer::Seccomp, Layer::Overlay, Layer::Bridge],
        }
    }

    pub fn has(self, layer: Layer) -> bool {
        self.layers().contains(&layer)
    }

    /// False for `bare`: root in it holds every capability of the host's root.
    pub fn is_security_boundary(self) -> bool {
        self != Profile::Bare
    }

    /// What a column label carries: `docker`, `default`, or `bare: not a
    /// security boundary`.
    pub fn label(self) -> String {
        match self {
            Profile::Bare => format!("bare: {NOT_A_BOUNDARY}"),
            p => p.as_str().to_string(),
        }
    }

    /// `env (profile)`: a column label with the profile in it.
    pub fn column_label(self, env: &str) -> String {
        format!("{env} ({})", self.label())
    }

    /// One line per profile for `--help` and the README.
    pub fn describe(self) -> &'static str {
        match self {
            Profile::Bare => "namespaces only, every capability: NOT A SECURITY BOUNDARY (to measure what namespaces alone cost)",
            Profile::Default => {
                "runc's and Docker's defaults: Docker's 14 capabilities, no_new_privs, masked and read-only /proc and /sys paths, nodev root"
            }
            Profile::Docker => {
                "default + the distribution's seccomp profile (/usr/share/containers/seccomp.json, package golang-github-containers-common) \
                 + an overlayfs root over the image (upper on tmpfs unless --overlay-upper disk) + a bridge with a DNAT'd published port \
                 for the boundary network (isobench's container; runc and crun get seccomp only)"
            }
        }
    }

    /// The capabilities a container of this profile keeps; `None`: all of
    /// the caller's (bare).
    pub fn capabilities(self) -> Option<&'static [&'static str]> {
        self.has(Layer::Hardening).then_some(&DOCKER_CAPABILITIES[..])
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error(transparent)]
    Seccomp(#[from] SeccompError),
    #[error("unknown capability {0:?}")]
    Capability(String),
}

/// The capabilities in `names` as a bit mask (bit n = capability number n).
pub fn capability_mask(names: &[&str]) -> Result<u64, ProfileError> {
    names.iter().try_fold(0u64, |mask, name| {
        let cap: caps::Capability = name.parse().map_err(|_| ProfileError::Capability(name.to_string()))?;
        Ok(mask | cap.bitmask())
    })
}

/// The highest capability number this kernel knows
/// (/proc/sys/kernel/cap_last_cap), read in the parent for the child's
/// bounding-set loop; 63 when it cannot be read (the child then stops at the
/// first number the kernel refuses).
pub fn last_capability() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap").ok().and_then(|s| s.trim().parse().ok()).unwrap_or(63)
}

/// A profile made ready once: the capability mask and, for `docker`, the
/// resolved seccomp profile and its compiled filter, shared by every
/// container started with it.
#[derive(Debug, Clone)]
pub struct PreparedProfile {
    profile: Profile,
    /// The layers, in [`Layer`]'s order: `profile.layers()` unless made
    /// with [`PreparedProfile::prepare_layers`].
    layers: Vec<Layer>,
    /// Where an overlay root's upper lives.
    upper: UpperKind,
    /// Capabilities kept (bounding, permitted, effective); `None`: untouched.
    keep: Option<u64>,
    seccomp: Option<Arc<(SeccompProfile, BpfProgram)>>,
}

impl PreparedProfile {
    /// Prepares `profile`: for `docker`, loads the seccomp profile
    /// ([`SeccompProfile::load_default`]) and compiles it. Errors: one line
    /// naming the package that is missing (the profile file or libseccomp).
    pub fn prepare(profile: Profile) -> Result<PreparedProfile, ProfileError> {
        Self::prepare_layers(profile.layers(), UpperKind::default())
    }

    /// Prepares any set of layers, an overlay's upper on `upper`. The
    /// seccomp filter is resolved for Docker's capabilities whether or not
    /// the hardening layer is there (it is the filter `docker run` loads);
    /// without the hardening layer the child, holding CAP_SYS_ADMIN, loads
    /// it without no_new_privs. [`profile`](Self::profile) is the named
    /// profile of exactly these layers, else `bare` without hardening and
    /// `default` with it (what it is as a security boundary).
    pub fn prepare_layers(layers: &[Layer], upper: UpperKind) -> Result<PreparedProfile, ProfileError> {
        let mut layers = layers.to_vec();
        layers.sort();
        layers.dedup();
        let profile = Profile::ALL.into_iter().find(|p| p.layers() == layers.as_slice()).unwrap_or(match layers.contains(&Layer::Hardening) {
            true => Profile::Default,
            false => Profile::Bare,
        });
        let keep = match layers.contains(&Layer::Hardening) {
            true => Some(capability_mask(&DOCKER_CAPABILITIES)?),
            false => None,
        };
        let seccomp = match layers.contains(&Layer::Seccomp) {
            true => {
                let resolved = SeccompProfile::load_default(&DOCKER_CAPABILITIES)?;
                let bpf = resolved.compile()?;
                Some(Arc::new((resolved, bpf)))
            }
            false => None,
        };
        Ok(PreparedProfile { profile, layers, upper, keep, seccomp })
    }

    /// `bare`, which needs no preparation.
    pub fn bare() -> PreparedProfile {
        PreparedProfile { profile: Profile::Bare, layers: Vec::new(), upper: UpperKind::default(), keep: None, seccomp: None }
    }

    /// The named profile of these layers (see [`prepare_layers`](Self::prepare_layers)).
    pub fn profile(&self) -> Profile {
        self.profile
    }

    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }

    pub fn has(&self, layer: Layer) -> bool {
        self.layers.contains(&layer)
    }

    /// Whether the layers are exactly a named profile's.
    pub fn is_named(&self) -> bool {
        self.profile.layers() == self.layers.as_slice()
    }

    /// Where an overlay root's upper lives (`--overlay-upper`).
    pub fn overlay_upper(&self) -> UpperKind {
        self.upper
    }

    /// The profile's label ([`Profile::label`]), or for another set of
    /// layers `bare + seccomp: not a security boundary`, `default + overlay`.
    pub fn label(&self) -> String {
        if self.is_named() {
            return self.profile.label();
        }
        let mut s = self.profile.as_str().to_string();
        for l in self.layers.iter().filter(|l| !self.profile.has(**l)) {
            s.push_str(" + ");
            s.push_str(l.as_str());
        }
        if !self.profile.is_security_boundary() {
            s.push_str(": ");
            s.push_str(NOT_A_BOUNDARY);
        }
        s
    }

    /// `env (label)`: a column label with the layers in it.
    pub fn column_label(&self, env: &str) -> String {
        format!("{env} ({})", self.label())
    }

    /// The capability mask kept; `None` for bare.
    pub fn keep(&self) -> Option<u64> {
        self.keep
    }

    /// The resolved seccomp profile, for `docker`.
    pub fn seccomp(&self) -> Option<&SeccompProfile> {
        self.seccomp.as_deref().map(|(p, _)| p)
    }

    /// The compiled filter, for `docker`.
    pub fn filter(&self) -> Option<&BpfProgram> {
        self.seccomp.as_deref().map(|(_, b)| b)
    }

    pub(crate) fn filter_arc(&self) -> Option<Arc<(SeccompProfile, BpfProgram)>> {
        self.seccomp.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_profile_parses_back_and_the_error_names_every_one() {
        let e = "podman".parse::<Profile>().unwrap_err();
        assert_eq!(e, "unknown profile \"podman\"; choose from bare, default or docker");
        for p in Profile::ALL {
            assert_eq!(p.to_string().parse::<Profile>(), Ok(p));
        }
        assert_eq!(Profile::default(), Profile::Default);
    }

    #[test]
    fn docker_is_every_layer_and_bare_none_and_says_so() {
        assert!(Profile::Bare.layers().is_empty());
        assert_eq!(Profile::Docker.layers(), Layer::ALL, "docker = every layer there is");
        assert!(!Profile::Bare.is_security_boundary() && Profile::Default.is_security_boundary());
        assert_eq!(Profile::Bare.column_label("container"), "container (bare: not a security boundary)");
        assert_eq!(Profile::Docker.column_label("runc"), "runc (docker)");
        assert!(Profile::Bare.capabilities().is_none());
    }

    #[test]
    fn dockers_capabilities_are_the_mask_docker_containers_show() {
        // `docker run --rm alpine grep CapEff /proc/self/status` prints
        // 00000000a80425fb: bits 0-8, 10, 13, 18, 27, 29, 31.
        assert_eq!(capability_mask(&DOCKER_CAPABILITIES).unwrap(), 0xa804_25fb);
        assert!(matches!(capability_mask(&["CAP_NOPE"]), Err(ProfileError::Capability(_))));
    }

    #[test]
    fn bare_and_default_need_nothing_outside() {
        let bare = PreparedProfile::prepare(Profile::Bare).unwrap();
        assert!(bare.keep().is_none() && bare.filter().is_none());
        let default = PreparedProfile::prepare(Profile::Default).unwrap();
        assert_eq!(default.keep(), Some(0xa804_25fb));
        assert!(default.filter().is_none());
    }

    #[test]
    fn a_set_of_layers_is_labelled_by_what_it_adds_to_its_profile() {
        let overlay = PreparedProfile::prepare_layers(&[Layer::Overlay], UpperKind::Disk).unwrap();
        assert_eq!((overlay.profile(), overlay.is_named()), (Profile::Bare, false));
        assert_eq!(overlay.column_label("container"), "container (bare + overlay: not a security boundary)");
        assert_eq!(overlay.overlay_upper(), UpperKind::Disk);
        assert!(overlay.keep().is_none() && overlay.has(Layer::Overlay) && !overlay.has(Layer::Hardening));
        let hardened = PreparedProfile::prepare_layers(&[Layer::Overlay, Layer::Hardening], UpperKind::Tmpfs).unwrap();
        assert_eq!(hardened.label(), "default + overlay");
        assert_eq!(hardened.layers(), [Layer::Hardening, Layer::Overlay]);
        let default = PreparedProfile::prepare_layers(&[Layer::Hardening], UpperKind::Tmpfs).unwrap();
        assert_eq!((default.label(), default.is_named()), ("default".to_string(), true));
    }

    /// Built without libseccomp (`-p isobench-harness --no-default-features`,
    /// run by scripts/test): `docker` is one line naming the package to
    /// install, and `bare` and `default` prepare as before.
    #[cfg(not(feature = "seccomp"))]
    #[test]
    fn without_libseccomp_docker_is_one_line_naming_the_package_and_the_others_prepare() {
        let e = PreparedProfile::prepare(Profile::Docker).unwrap_err().to_string();
        assert!(e.contains("libseccomp-dev") && !e.contains('\n'), "{e}");
        assert!(PreparedProfile::prepare(Profile::Bare).is_ok());
        assert!(PreparedProfile::prepare(Profile::Default).is_ok_and(|p| p.seccomp().is_none()));
    }
}
