//! The accelerator verdict: KVM or TCG, and why.
//!
//! A usable-looking /dev/kvm is not proof that KVM boots a guest: nested
//! paravirtual KVM ("kvm-pvm", as in some cloud sandboxes) opens fine, then a
//! stock guest kernel hangs in its decompressor. So `auto` boots the real
//! guest image under KVM once and accepts KVM only when the agent answers
//! within [`KVM_PROBE_TIMEOUT`] (giving up after [`KVM_PROBE_SILENCE`] when
//! the guest has not printed a line by then); otherwise the vm runs under TCG (QEMU's
//! emulator, one or two orders of magnitude slower for guest-kernel work) and
//! every figure says so. The verdict is cached per (host kernel, guest
//! kernel, QEMU version) in `<cache>/accel.json`, since a probe costs its
//! timeout when it fails.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::image::GuestImage;
use super::qemu::{self, Accel, BootProtocol, Machine, QemuError, QemuSpec};
use super::AccelChoice;

/// How long a KVM probe boot may take to reach the agent. A KVM guest with
/// this image is up in well under a second; TCG needs about five.
pub const KVM_PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// A KVM probe whose guest has printed nothing on its console by then is
/// given up on: under KVM the kernel's banner comes within milliseconds of
/// QEMU's start (PVH) or after a sub-second decompression (bzImage).
pub const KVM_PROBE_SILENCE: Duration = Duration::from_secs(4);

/// The verdict cache, in the cache folder.
pub const CACHE_FILE: &str = "accel.json";

#[derive(Debug, thiserror::Error)]
pub enum AccelError {
    #[error("--accel kvm: {0}; use --accel auto or tcg")]
    KvmUnavailable(String),
    /// `--require-kvm` and the verdict is TCG: the reason, not a fallback.
    #[error("--require-kvm: KVM not usable: {0}; drop --require-kvm to run the vm emulated (TCG)")]
    KvmRequired(String),
    #[error("--require-kvm contradicts --accel tcg; drop one of them")]
    RequireKvmWithTcg,
}

/// How the verdict was reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// `--accel kvm|tcg`.
    Requested,
    /// /dev/kvm missing or not accessible: no probe needed.
    Checked,
    /// A probe boot just now.
    Probed,
    /// A probe boot earlier, read from the cache.
    Cached,
}

/// KVM or TCG, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    pub accel: Accel,
    pub reason: String,
    pub source: Source,
}

/// What a probe verdict depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeKey {
    pub host_kernel: String,
    pub guest_kernel: String,
    pub qemu_version: String,
}

impl ProbeKey {
    /// Host `uname -r` and version string, the guest kernel's version and hash.
    pub fn new(image: &GuestImage, qemu_version: &str) -> ProbeKey {
        let uts = nix::sys::utsname::uname().ok();
        let host_kernel =
            uts.map(|u| format!("{} {}", u.release().to_string_lossy(), u.version().to_string_lossy())).unwrap_or_else(|| "unknown".into());
        // The probe boots the preferred kernel file: a verdict for the bzImage
        // says nothing about the PVH vmlinux, so the key names which one.
        let (sha, boot) = match (&image.vmlinux_sha256, image.preferred_boot()) {
            (Some(v), BootProtocol::Pvh) => (v.as_str(), " pvh"),
            _ => (image.kernel_sha256.as_str(), ""),
        };
        let hash: String = sha.chars().take(16).collect();
        ProbeKey { host_kernel, guest_kernel: format!("{} {hash}{boot}", image.kernel_version), qemu_version: qemu_version.to_string() }
    }

    fn as_string(&self) -> String {
        format!("host={} | guest={} | qemu={}", self.host_kernel, self.guest_kernel, self.qemu_version)
    }
}

/// Why a probe boot did not give KVM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeFailure {
    pub reason: String,
    /// False when the failure may not be KVM's fault (the kernel ran but the
    /// agent did not answer): such a verdict is not cached.
    pub cacheable: bool,
}

/// Whether /dev/kvm exists and can be opened read-write.
pub fn kvm_device() -> Result<(), String> {
    let dev = Path::new("/dev/kvm");
    if !dev.exists() {
        return Err("no /dev/kvm".into());
    }
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(dev)
        .map(drop)
        .map_err(|e| format!("/dev/kvm not accessible ({e}); add the user to group kvm or run as root"))
}

/// Decides the accelerator for `choice`. `auto` may boot the image under KVM
/// once (up to [`KVM_PROBE_TIMEOUT`]); the verdict is then cached.
pub fn decide(choice: AccelChoice, image: &GuestImage, qemu_bin: &Path, qemu_version: &str) -> Result<Verdict, AccelError> {
    let key = ProbeKey::new(image, qemu_version);
    let cache = crate::paths::cache_dir().join(CACHE_FILE);
    decide_with(choice, &key, &cache, kvm_device(), || probe_kvm(image, qemu_bin))
}

/// True when an `auto` decision would boot a KVM probe guest now: /dev/kvm
/// is usable, a guest image and QEMU are there, and no verdict is cached for
/// them (so a caller can say why the next step may take a while).
pub fn cached_verdict_missing() -> bool {
    let (Ok(image), Ok(qemu)) = (super::image::locate(), super::qemu::find_qemu()) else { return false };
    let Ok(version) = super::qemu::qemu_version(&qemu) else { return false };
    kvm_device().is_ok() && !read_cache(&crate::paths::cache_dir().join(CACHE_FILE)).contains_key(&ProbeKey::new(&image, &version).as_string())
}

/// `--require-kvm`: the verdict itself when it is KVM, else an error naming
/// why KVM is not usable here.
pub fn require_kvm(choice: AccelChoice, verdict: Result<Verdict, AccelError>) -> Result<Verdict, AccelError> {
    if choice == AccelChoice::Tcg {
        return Err(AccelError::RequireKvmWithTcg);
    }
    match verdict {
        Ok(v) if v.accel == Accel::Kvm => Ok(v),
        Ok(v) => Err(AccelError::KvmRequired(v.reason)),
        Err(AccelError::KvmUnavailable(why)) => Err(AccelError::KvmRequired(why)),
        Err(e) => Err(e),
    }
}

/// [`decide`] with its inputs given: the device check and the probe.
pub fn decide_with(
    choice: AccelChoice,
    key: &ProbeKey,
    cache: &Path,
    device: Result<(), String>,
    probe: impl FnOnce() -> Result<Duration, ProbeFailure>,
) -> Result<Verdict, AccelError> {
    match choice {
        AccelChoice::Tcg => return Ok(Verdict { accel: Accel::Tcg, reason: "requested (--accel tcg)".into(), source: Source::Requested }),
        AccelChoice::Kvm => {
            device.map_err(AccelError::KvmUnavailable)?;
            return Ok(Verdict { accel: Accel::Kvm, reason: "requested (--accel kvm), not probed".into(), source: Source::Requested });
        }
        AccelChoice::Auto => {}
    }
    if let Err(why) = device {
        return Ok(Verdict { accel: Accel::Tcg, reason: why, source: Source::Checked });
    }
    let mut known = read_cache(cache);
    if let Some(v) = known.get(&key.as_string()) {
        return Ok(Verdict { source: Source::Cached, ..v.clone() });
    }
    let (verdict, cacheable) = match probe() {
        Ok(took) => (
            Verdict {
                accel: Accel::Kvm,
                reason: format!("a KVM probe boot reached the agent in {:.2} s", took.as_secs_f64()),
                source: Source::Probed,
            },
            true,
        ),
        Err(f) => (Verdict { accel: Accel::Tcg, reason: f.reason, source: Source::Probed }, f.cacheable),
    };
    if cacheable {
        known.insert(key.as_string(), verdict.clone());
        write_cache(cache, &known);
    }
    Ok(verdict)
}

fn read_cache(path: &Path) -> BTreeMap<String, Verdict> {
    crate::paths::read_verdicts(path)
}

fn write_cache(path: &Path, known: &BTreeMap<String, Verdict>) {
    crate::paths::write_verdicts(path, known)
}

/// The console log of the last KVM probe (kept for the curious).
pub fn probe_log() -> PathBuf {
    crate::paths::cache_dir().join("logs").join("kvm-probe-console.log")
}

/// Boots `image` under KVM and returns the time to the agent's `ready`.
pub fn probe_kvm(image: &GuestImage, qemu_bin: &Path) -> Result<Duration, ProbeFailure> {
    // The way the vm boots by default: PVH when the image has a vmlinux.
    let kernel = image.kernel_for(image.preferred_boot()).unwrap_or(&image.kernel).to_path_buf();
    let spec = QemuSpec {
        kernel,
        initrd: image.initrd.clone(),
        accel: Accel::Kvm,
        machine: Machine::default(),
        memory_mib: 256,
        cpus: 1,
        tsc_khz: None,
        net: None,
        root_disk: None,
        data: None,
    };
    let log = probe_log();
    if let Some(dir) = log.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let secs = KVM_PROBE_TIMEOUT.as_secs();
    match qemu::boot_with(qemu_bin, &spec, Some(&log), None, KVM_PROBE_TIMEOUT, Some(KVM_PROBE_SILENCE)) {
        Ok(mut booted) => {
            let took = booted.ready_after;
            if booted.agent.shutdown().is_ok() {
                let _ = booted.qemu.wait_timeout(Duration::from_secs(5));
            }
            Ok(took)
        }
        Err(QemuError::Timeout { .. }) => {
            // Did the kernel itself start (it prints "Linux version" first)?
            let started = std::fs::read(&log).is_ok_and(|b| String::from_utf8_lossy(&b).contains("Linux version"));
            if started {
                Err(ProbeFailure {
                    reason: format!("a KVM probe boot started the kernel but did not reach the agent within {secs} s (see {})", log.display()),
                    cacheable: false,
                })
            } else {
                Err(ProbeFailure { reason: format!("KVM probe boot did not reach the agent within {secs} s{}", pvm_hint()), cacheable: true })
            }
        }
        Err(QemuError::Silent { waited, .. }) => Err(ProbeFailure {
            reason: format!("a KVM probe boot printed nothing on the guest console within {:.0} s{}", waited.as_secs_f64(), pvm_hint()),
            cacheable: true,
        }),
        Err(e @ QemuError::Exited { .. }) => Err(ProbeFailure { reason: format!("KVM probe boot failed: {e}"), cacheable: true }),
        Err(e) => Err(ProbeFailure { reason: format!("KVM probe boot failed: {e}"), cacheable: false }),
    }
}

/// The likely cause when the host's KVM is nested paravirtual KVM.
fn pvm_hint() -> &'static str {
    if Path::new("/sys/module/kvm_pvm").exists() {
        " (the host's KVM is nested paravirtual KVM 'kvm-pvm', where a stock guest kernel never starts, \
         neither through its bzImage decompressor nor through PVH; a PVM guest kernel is needed: \
         set ISOBENCH_KERNEL and rerun scripts/build-guest)"
    } else {
        " (the guest kernel never printed on the console)"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> ProbeKey {
        ProbeKey { host_kernel: "6.18".into(), guest_kernel: "6.1.0-57-amd64 abcd".into(), qemu_version: "7.2.22".into() }
    }

    #[test]
    fn requested_accelerators_are_not_probed() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join(CACHE_FILE);
        let v = decide_with(AccelChoice::Tcg, &key(), &cache, Ok(()), || panic!("no probe")).unwrap();
        assert_eq!((v.accel, v.source), (Accel::Tcg, Source::Requested));
        let e = decide_with(AccelChoice::Kvm, &key(), &cache, Err("no /dev/kvm".into()), || panic!("no probe")).unwrap_err();
        assert_eq!(e.to_string(), "--accel kvm: no /dev/kvm; use --accel auto or tcg");
    }

    #[test]
    fn require_kvm_turns_a_tcg_verdict_into_its_reason() {
        let tcg =
            Verdict { accel: Accel::Tcg, reason: "KVM probe boot did not reach the agent within 10 s (kvm-pvm)".into(), source: Source::Cached };
        let e = require_kvm(AccelChoice::Auto, Ok(tcg)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--require-kvm: KVM not usable: KVM probe boot did not reach the agent within 10 s (kvm-pvm); drop --require-kvm to run the vm emulated (TCG)"
        );
        let e = require_kvm(AccelChoice::Kvm, Err(AccelError::KvmUnavailable("no /dev/kvm".into()))).unwrap_err();
        assert!(e.to_string().starts_with("--require-kvm: KVM not usable: no /dev/kvm;"), "{e}");
        let kvm = Verdict { accel: Accel::Kvm, reason: "probed".into(), source: Source::Probed };
        assert_eq!(require_kvm(AccelChoice::Auto, Ok(kvm.clone())).unwrap(), kvm);
        assert!(matches!(require_kvm(AccelChoice::Tcg, Ok(kvm)), Err(AccelError::RequireKvmWithTcg)));
    }

    #[test]
    fn no_device_means_tcg_without_probe() {
        let dir = tempfile::tempdir().unwrap();
        let v = decide_with(AccelChoice::Auto, &key(), &dir.path().join(CACHE_FILE), Err("no /dev/kvm".into()), || panic!("no probe")).unwrap();
        assert_eq!(v, Verdict { accel: Accel::Tcg, reason: "no /dev/kvm".into(), source: Source::Checked });
    }

    #[test]
    fn probe_verdicts_are_cached_per_key() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join(CACHE_FILE);
        let fail = || Err(ProbeFailure { reason: "KVM probe boot did not reach the agent within 10 s".into(), cacheable: true });
        let v = decide_with(AccelChoice::Auto, &key(), &cache, Ok(()), fail).unwrap();
        assert_eq!((v.accel, v.source), (Accel::Tcg, Source::Probed));
        let again = decide_with(AccelChoice::Auto, &key(), &cache, Ok(()), || panic!("cached")).unwrap();
        assert_eq!((again.accel, again.source, again.reason), (Accel::Tcg, Source::Cached, v.reason));
        // another guest kernel: probed again
        let other = ProbeKey { guest_kernel: "6.1.0-58-amd64 ef01".into(), ..key() };
        let v = decide_with(AccelChoice::Auto, &other, &cache, Ok(()), || Ok(Duration::from_millis(700))).unwrap();
        assert_eq!((v.accel, v.source), (Accel::Kvm, Source::Probed));
        assert_eq!(v.reason, "a KVM probe boot reached the agent in 0.70 s");
    }

    #[test]
    fn uncertain_failures_are_not_cached() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join(CACHE_FILE);
        let fail = || Err(ProbeFailure { reason: "kernel started, agent silent".into(), cacheable: false });
        decide_with(AccelChoice::Auto, &key(), &cache, Ok(()), fail).unwrap();
        let v = decide_with(AccelChoice::Auto, &key(), &cache, Ok(()), || Ok(Duration::from_secs(1))).unwrap();
        assert_eq!(v.accel, Accel::Kvm);
    }
}
