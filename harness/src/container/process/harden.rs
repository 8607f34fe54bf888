//! The child's last step before its init forks or it execs ([`apply`]):
//! dropping what its profile takes away, in runc's order (libcontainer's
//! `finalizeNamespace`, then `initSeccomp` last): the bounding set down to
//! the kept capabilities, the ambient set emptied, then capset(2) of the
//! permitted and effective sets (the inheritable set empty, as Docker has
//! it since CVE-2022-24769), then no_new_privs, then the seccomp filter, so
//! that the filter does not have to allow the calls before it. Everything
//! privileged (mounts, sethostname, the loopback, the cgroup namespace) is
//! done by then.
//!
//! Why the bounding set matters: when root execs a program the kernel
//! gives it every capability of the bounding set (capabilities(7), "root"),
//! so a capset alone would be undone by the exec.
//!
//! [`Hardening`] is prepared before clone(2) (masks, the compiled filter);
//! [`apply`] only makes system calls, through [`Syscall`], so the order is
//! unit-tested with the recording double.

use std::sync::Arc;

use nix::errno::Errno;

use super::channel::{STAGE_CAPS, STAGE_NO_NEW_PRIVS, STAGE_SECCOMP};
use crate::container::profile::{last_capability, PreparedProfile};
use crate::container::seccomp::{BpfProgram, SeccompProfile};
use crate::container::syscall::Syscall;

/// What the child drops, prepared before clone(2).
#[derive(Debug, Clone)]
pub(super) struct Hardening {
    /// Capabilities kept (bit n = capability n); `None`: all are kept and
    /// no_new_privs is left alone.
    keep: Option<u64>,
    /// The highest capability number the kernel knows.
    last_cap: u32,
    /// The compiled seccomp filter (and the profile it came from, kept for
    /// as long as the spec).
    filter: Option<Arc<(SeccompProfile, BpfProgram)>>,
}

impl Hardening {
    /// `None` for a profile that drops nothing (bare).
    pub(super) fn new(profile: &PreparedProfile) -> Option<Hardening> {
        let filter = profile.filter_arc();
        (profile.keep().is_some() || filter.is_some()).then(|| Hardening { keep: profile.keep(), last_cap: last_capability(), filter })
    }
}

/// Drops what `h` says, through `sys`; on failure the stage and errno.
/// System calls only (no allocation: it runs in the cloned child).
pub(super) fn apply(h: &Hardening, sys: &dyn Syscall) -> Result<(), (u32, Errno)> {
    if let Some(keep) = h.keep {
        for cap in 0..=h.last_cap.min(63) {
            if keep & (1u64 << cap) != 0 {
                continue;
            }
            match sys.drop_bounding_cap(cap) {
                Ok(()) => {}
                // A number past what this kernel knows: nothing left to drop.
                Err(Errno::EINVAL) => break,
                Err(e) => return Err((STAGE_CAPS, e)),
            }
        }
        // Ambient capabilities were never raised; clearing needs no
        // privilege and fails only on kernels before 4.3 (EINVAL).
        match sys.clear_ambient_caps() {
            Ok(()) | Err(Errno::EINVAL) => {}
            Err(e) => return Err((STAGE_CAPS, e)),
        }
        sys.set_caps(keep, keep, 0).map_err(|e| (STAGE_CAPS, e))?;
        sys.set_no_new_privs().map_err(|e| (STAGE_NO_NEW_PRIVS, e))?;
    }
    if let Some(filter) = &h.filter {
        sys.seccomp_filter(filter.1.instructions()).map_err(|e| (STAGE_SECCOMP, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::profile::Profile;
    use crate::container::syscall::recording::Recorder;

    #[test]
    fn default_drops_the_bounding_set_then_capsets_then_no_new_privs() {
        let p = PreparedProfile::prepare(Profile::Default).unwrap();
        let h = Hardening { last_cap: 40, ..Hardening::new(&p).unwrap() };
        let sys = Recorder { last_cap: Some(40), ..Default::default() };
        apply(&h, &sys).unwrap();
        let lines = sys.lines();
        let dropped: Vec<u32> = lines.iter().filter_map(|l| l.strip_prefix("capbset_drop ")).map(|n| n.parse().unwrap()).collect();
        // 41 capabilities (0..=40), 14 kept.
        assert_eq!(dropped.len(), 41 - 14, "{lines:#?}");
        for kept in [0u32, 1, 5, 27, 29, 31] {
            assert!(!dropped.contains(&kept), "CAP {kept} is Docker's and stays");
        }
        assert!(dropped.contains(&21), "CAP_SYS_ADMIN goes");
        let n = lines.len();
        assert_eq!(lines[n - 3..], ["ambient_clear", "capset permitted=a80425fb effective=a80425fb inheritable=0", "no_new_privs"]);
    }

    #[test]
    fn the_bounding_loop_stops_where_the_kernel_does() {
        let p = PreparedProfile::prepare(Profile::Default).unwrap();
        // The parent read 63 (no /proc): the kernel answers EINVAL past 40.
        let h = Hardening { last_cap: 63, ..Hardening::new(&p).unwrap() };
        let sys = Recorder { last_cap: Some(40), ..Default::default() };
        apply(&h, &sys).unwrap();
        assert!(sys.lines().iter().all(|l| l != "capbset_drop 41"));
        assert!(sys.lines().contains(&"no_new_privs".to_string()));
    }

    #[test]
    fn a_failed_capset_names_its_stage_and_nothing_follows() {
        let p = PreparedProfile::prepare(Profile::Default).unwrap();
        let h = Hardening::new(&p).unwrap();
        let sys = Recorder { fail_on: Some("capset"), ..Default::default() };
        assert_eq!(apply(&h, &sys), Err((STAGE_CAPS, Errno::EPERM)));
        assert!(!sys.lines().iter().any(|l| l == "no_new_privs"));
    }

    #[test]
    fn bare_drops_nothing() {
        assert!(Hardening::new(&PreparedProfile::bare()).is_none());
    }

    #[cfg(feature = "seccomp")]
    #[test]
    fn docker_loads_its_filter_last() {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["getpid"],"action":"SCMP_ACT_ALLOW"}]}"#).unwrap();
        let resolved = SeccompProfile::load(f.path(), &[]).unwrap();
        let bpf = resolved.compile().unwrap();
        let n = bpf.len();
        let p = PreparedProfile::prepare(Profile::Default).unwrap();
        let h = Hardening { filter: Some(Arc::new((resolved, bpf))), ..Hardening::new(&p).unwrap() };
        let sys = Recorder::default();
        apply(&h, &sys).unwrap();
        let lines = sys.lines();
        assert_eq!(lines[lines.len() - 2..], ["no_new_privs".to_string(), format!("seccomp {n} instructions")]);
    }
}
