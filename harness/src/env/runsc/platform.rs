//! gVisor's platform: how the Sentry (gVisor's user-space kernel) takes the
//! sandboxed application's system calls and page faults, and which one this
//! host can run (`--gvisor-platform`).
//!
//! Chosen the way the vm's accelerator is (see [`crate::vm::accel`]): `auto`
//! tries each platform in [`PROBE_ORDER`] by running the bundle's no-op
//! through `runsc run` under it, bounded by a time per probe (a platform
//! that hangs, as `kvm` does on nested paravirtual KVM, is killed with its
//! sandbox and given up), and takes the first that exits cleanly. The
//! verdict, with why every other platform was not taken, is cached per runsc
//! version and host kernel in `<cache>/gvisor-platform.json`, since a
//! probe that hangs costs its bound.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// `--gvisor-platform`: what the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PlatformChoice {
    /// Probe in [`PROBE_ORDER`], take the first that runs the no-op.
    #[default]
    Auto,
    Systrap,
    Kvm,
    Ptrace,
}

isobench_workloads::named_values!(PlatformChoice, "gVisor platform", { Auto = "auto", Systrap = "systrap", Kvm = "kvm", Ptrace = "ptrace" });

/// A gVisor platform (`runsc --platform=NAME`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    /// seccomp's SECCOMP_RET_TRAP plus stub threads in the application's
    /// address spaces (gVisor's default since 2023; not in older releases).
    Systrap,
    /// The Sentry as a guest of /dev/kvm: system calls and faults are VM exits.
    Kvm,
    /// Every system call and fault of the application stops it under
    /// ptrace(2) (PTRACE_SYSEMU) and is handled by the Sentry.
    Ptrace,
}

isobench_workloads::named_values!(Platform, "gVisor platform", { Systrap = "systrap", Kvm = "kvm", Ptrace = "ptrace" });

impl Platform {
    /// What the Sentry intercepts on this platform and how, for run.json and
    /// the report.
    pub fn intercepts(self) -> &'static str {
        match self {
            Platform::Ptrace => {
                "every system call and page fault of the sandboxed processes stops them under ptrace(2) (PTRACE_SYSEMU) \
                 and is served by the Sentry, gVisor's kernel in user space: two host context switches per call at least"
            }
            Platform::Systrap => {
                "every system call of the sandboxed processes traps through a seccomp filter (SECCOMP_RET_TRAP) into stub \
                 code that hands it to the Sentry, gVisor's kernel in user space"
            }
            Platform::Kvm => {
                "the Sentry runs as a guest kernel on /dev/kvm: every system call and page fault of the sandboxed processes \
                 is a trap into it, without a host kernel in between"
            }
        }
    }
}

impl PlatformChoice {
    /// The one platform asked for, `None` for `auto`.
    pub fn platform(self) -> Option<Platform> {
        match self {
            PlatformChoice::Auto => None,
            PlatformChoice::Systrap => Some(Platform::Systrap),
            PlatformChoice::Kvm => Some(Platform::Kvm),
            PlatformChoice::Ptrace => Some(Platform::Ptrace),
        }
    }
}

/// The order `auto` tries: fastest first where it works, ptrace last as the
/// one that works everywhere. systrap is gVisor's own default where the
/// release has it; kvm needs a /dev/kvm that runs the Sentry as a guest
/// (bare metal, or nested virtualisation that forwards it); ptrace needs
/// nothing but ptrace(2) and is the slowest (two host context switches per
/// system call).
pub const PROBE_ORDER: [Platform; 3] = [Platform::Systrap, Platform::Kvm, Platform::Ptrace];

/// How long one probe (a no-op's `runsc run` to its exit) may take before
/// the platform is given up and its sandbox killed. A no-op runs to its exit
/// in about half a second under ptrace on the 2-core development VM; `kvm`
/// there prints nothing for 40 s and more.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(15);

/// The verdict cache, in the cache folder.
pub const CACHE_FILE: &str = "gvisor-platform.json";

/// How the verdict was reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// `--gvisor-platform NAME`: checked by running the no-op, not chosen.
    Requested,
    /// Probes just now.
    Probed,
    /// Probes earlier, read from the cache.
    Cached,
}

/// What one platform's probe gave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    pub platform: Platform,
    pub ran: bool,
    /// "ran a no-op in 0.48 s", "runsc refused it: …", "no exit within 15 s:
    /// given up, its sandbox killed", "not tried: no /dev/kvm".
    pub detail: String,
}

/// The platform that runs, why, and why each other one does not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    pub platform: Platform,
    pub reason: String,
    pub source: Source,
    /// Every platform tried or ruled out, in [`PROBE_ORDER`].
    pub attempts: Vec<Attempt>,
}

impl Verdict {
    /// For run.json: the platform, why, what it intercepts, the others.
    pub fn metadata(&self) -> serde_json::Value {
        let not_taken: BTreeMap<&str, &str> =
            self.attempts.iter().filter(|a| a.platform != self.platform).map(|a| (a.platform.as_str(), a.detail.as_str())).collect();
        serde_json::json!({
            "platform": self.platform.as_str(),
            "reason": self.reason,
            "source": self.source,
            "intercepts": self.platform.intercepts(),
            "not_taken": not_taken,
        })
    }
}

/// Why a platform cannot run (the probe's words).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeFailure {
    pub reason: String,
    /// False when it may be transient (the probe itself could not be set
    /// up): such a verdict is not cached.
    pub cacheable: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    /// `--gvisor-platform NAME` and it does not run here.
    #[error("--gvisor-platform {platform}: {reason}; use --gvisor-platform auto")]
    Requested { platform: Platform, reason: String },
    /// `auto` and none ran.
    #[error("no gVisor platform runs here: {0}")]
    NoneRuns(String),
}

/// What a probe verdict depends on: the runsc release and the host kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeKey {
    pub runsc_version: String,
    pub host_kernel: String,
}

impl ProbeKey {
    /// `runsc --version`'s first line and the host's `uname -r -v`.
    pub fn new(runsc_version: &str) -> ProbeKey {
        let uts = nix::sys::utsname::uname().ok();
        let host_kernel =
            uts.map(|u| format!("{} {}", u.release().to_string_lossy(), u.version().to_string_lossy())).unwrap_or_else(|| "unknown".into());
        ProbeKey { runsc_version: runsc_version.to_string(), host_kernel }
    }

    fn as_string(&self) -> String {
        format!("runsc={} | host={}", self.runsc_version, self.host_kernel)
    }
}

/// Whether a platform can be tried at all without running anything (kvm
/// needs /dev/kvm).
pub fn precondition(platform: Platform) -> Result<(), String> {
    match platform {
        Platform::Kvm => crate::vm::accel::kvm_device(),
        Platform::Systrap | Platform::Ptrace => Ok(()),
    }
}

/// Decides the platform for `choice`: a requested one is run once through
/// `probe` (an error naming why when it does not run); `auto` reads the
/// cache for `key` or probes [`PROBE_ORDER`] and caches what it found.
pub fn decide_with(
    choice: PlatformChoice,
    key: &ProbeKey,
    cache: &Path,
    mut probe: impl FnMut(Platform) -> Result<Duration, ProbeFailure>,
) -> Result<Verdict, PlatformError> {
    if let Some(platform) = choice.platform() {
        precondition(platform).map_err(|reason| PlatformError::Requested { platform, reason })?;
        let took = probe(platform).map_err(|f| PlatformError::Requested { platform, reason: f.reason })?;
        let detail = format!("ran a no-op in {:.2} s", took.as_secs_f64());
        return Ok(Verdict {
            platform,
            reason: format!("requested (--gvisor-platform {platform}); {detail}"),
            source: Source::Requested,
            attempts: vec![Attempt { platform, ran: true, detail }],
        });
    }
    let mut known = read_cache(cache);
    if let Some(v) = known.get(&key.as_string()) {
        return Ok(Verdict { source: Source::Cached, ..v.clone() });
    }
    let mut attempts = Vec::new();
    let mut cacheable = true;
    let mut chosen = None;
    for platform in PROBE_ORDER {
        if chosen.is_some() {
            attempts.push(Attempt { platform, ran: false, detail: format!("not tried: {} runs and comes first", chosen.unwrap_or(platform)) });
            continue;
        }
        if let Err(why) = precondition(platform) {
            attempts.push(Attempt { platform, ran: false, detail: format!("not tried: {why}") });
            continue;
        }
        match probe(platform) {
            Ok(took) => {
                attempts.push(Attempt { platform, ran: true, detail: format!("ran a no-op in {:.2} s", took.as_secs_f64()) });
                chosen = Some(platform);
            }
            Err(f) => {
                cacheable &= f.cacheable;
                attempts.push(Attempt { platform, ran: false, detail: f.reason });
            }
        }
    }
    let summary = |attempts: &[Attempt]| attempts.iter().map(|a| format!("{}: {}", a.platform, a.detail)).collect::<Vec<_>>().join("; ");
    let Some(platform) = chosen else {
        return Err(PlatformError::NoneRuns(summary(&attempts)));
    };
    let earlier: Vec<Attempt> = attempts.iter().take_while(|a| a.platform != platform).cloned().collect();
    let reason = if earlier.is_empty() {
        format!("probed first in the order {}: it ran the no-op", order_words())
    } else {
        format!("probed in the order {}: the first that ran the no-op ({})", order_words(), summary(&earlier))
    };
    let verdict = Verdict { platform, reason, source: Source::Probed, attempts };
    if cacheable {
        known.insert(key.as_string(), verdict.clone());
        write_cache(cache, &known);
    }
    Ok(verdict)
}

fn order_words() -> String {
    PROBE_ORDER.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(", ")
}

fn read_cache(path: &Path) -> BTreeMap<String, Verdict> {
    crate::paths::read_verdicts(path)
}

fn write_cache(path: &Path, known: &BTreeMap<String, Verdict>) {
    crate::paths::write_verdicts(path, known)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> ProbeKey {
        ProbeKey { runsc_version: "runsc version 0.0~20221219.0".into(), host_kernel: "6.18.44 #1".into() }
    }

    fn hang(p: Platform) -> ProbeFailure {
        ProbeFailure { reason: format!("{p}: no exit within 15 s: given up, its sandbox killed"), cacheable: true }
    }

    #[test]
    fn auto_takes_the_first_that_runs_says_why_not_the_others_and_caches_it() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join(CACHE_FILE);
        let mut tried = Vec::new();
        let v = decide_with(PlatformChoice::Auto, &key(), &cache, |p| {
            tried.push(p);
            match p {
                Platform::Systrap => Err(ProbeFailure { reason: "runsc refused it: invalid platform \"systrap\"".into(), cacheable: true }),
                Platform::Kvm => Err(hang(p)),
                Platform::Ptrace => Ok(Duration::from_millis(480)),
            }
        })
        .unwrap();
        // kvm is skipped without a probe where there is no /dev/kvm.
        let kvm_tried = precondition(Platform::Kvm).is_ok();
        assert_eq!(tried.len(), if kvm_tried { 3 } else { 2 });
        assert_eq!((v.platform, v.source), (Platform::Ptrace, Source::Probed));
        assert!(
            v.reason.starts_with("probed in the order systrap, kvm, ptrace: the first that ran the no-op (systrap: runsc refused it"),
            "{}",
            v.reason
        );
        assert_eq!(v.attempts.len(), 3);
        assert!(v.attempts.iter().all(|a| a.ran == (a.platform == Platform::Ptrace)));
        let m = v.metadata();
        assert_eq!(m["platform"], "ptrace");
        assert!(m["not_taken"]["systrap"].as_str().unwrap().contains("invalid platform"));
        assert!(m["not_taken"].get("ptrace").is_none());
        // The second decision reads the cache, probing nothing.
        let again = decide_with(PlatformChoice::Auto, &key(), &cache, |_| panic!("no probe")).unwrap();
        assert_eq!((again.platform, again.source, again.attempts.clone()), (Platform::Ptrace, Source::Cached, v.attempts));
        // Another runsc release probes again.
        let other = ProbeKey { runsc_version: "runsc version release-20240101.0".into(), ..key() };
        let v = decide_with(PlatformChoice::Auto, &other, &cache, |_| Ok(Duration::from_millis(300))).unwrap();
        assert_eq!((v.platform, v.source), (Platform::Systrap, Source::Probed));
        assert!(v.attempts[1..].iter().all(|a| a.detail == "not tried: systrap runs and comes first"), "{:?}", v.attempts);
    }

    #[test]
    fn a_requested_platform_is_run_once_and_its_failure_is_one_line() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join(CACHE_FILE);
        let v = decide_with(PlatformChoice::Ptrace, &key(), &cache, |_| Ok(Duration::from_millis(500))).unwrap();
        assert_eq!((v.platform, v.source), (Platform::Ptrace, Source::Requested));
        assert_eq!(v.reason, "requested (--gvisor-platform ptrace); ran a no-op in 0.50 s");
        let e = decide_with(PlatformChoice::Systrap, &key(), &cache, |p| Err(hang(p))).unwrap_err().to_string();
        assert_eq!(e, "--gvisor-platform systrap: systrap: no exit within 15 s: given up, its sandbox killed; use --gvisor-platform auto");
        assert!(!cache.exists(), "a requested platform is not cached");
    }

    #[test]
    fn none_running_is_an_error_naming_each_and_an_uncacheable_failure_is_not_kept() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join(CACHE_FILE);
        let e = decide_with(PlatformChoice::Auto, &key(), &cache, |p| Err(ProbeFailure { reason: format!("{p} failed"), cacheable: false }))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("no gVisor platform runs here: systrap: systrap failed; kvm: "), "{e}");
        assert!(e.ends_with("ptrace: ptrace failed"), "{e}");
        assert!(!cache.exists());
    }

    #[test]
    fn choices_parse_and_name_themselves() {
        for c in PlatformChoice::ALL {
            assert_eq!(c.as_str().parse::<PlatformChoice>(), Ok(c));
        }
        assert_eq!(PlatformChoice::default(), PlatformChoice::Auto);
        assert_eq!("vmx".parse::<PlatformChoice>().unwrap_err(), "unknown gVisor platform \"vmx\"; choose from auto, systrap, kvm or ptrace");
        assert_eq!(serde_json::to_value(Platform::Ptrace).unwrap(), "ptrace");
    }
}
