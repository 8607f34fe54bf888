//! The `docker` profile's system call filter, parent side: the
//! distribution's default container profile
//! (`/usr/share/containers/seccomp.json`, Debian's
//! golang-github-containers-common, the file Podman and CRI-O read; the
//! same JSON format as Docker's own default profile) resolved for this
//! machine's architecture and the container's capabilities the way Docker's
//! and Podman's loaders do ([`SeccompProfile::load`]), into oci-spec's
//! `LinuxSeccomp`, which the OCI peers get in config.json as it is and which
//! isobench compiles to classic BPF with libseccomp ([`SeccompProfile::compile`],
//! the method youki uses). The launcher's child only loads the compiled
//! program, right before exec (`process/harden.rs`): compiling allocates.
//!
//! What the profile decides, Debian 12's copy (containers/common 0.50): by
//! default a call fails with ENOSYS (so that a program falls back from a
//! call the profile does not know yet, e.g. clone3), a list of ~370 calls is
//! allowed, some (kexec_load, userfaultfd, ...) fail with EPERM, and some are
//! allowed only with a capability the container has (init_module with
//! CAP_SYS_MODULE, bpf with CAP_SYS_ADMIN, ...). Unlike Docker's own
//! profile, it allows unshare, mount, keyctl, reboot and ptrace and leaves
//! them to the capability checks.

#[cfg(feature = "seccomp")]
use std::io::{Read, Seek};
use std::path::{Path, PathBuf};

use oci_spec::runtime::{Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompArgBuilder, LinuxSeccompOperator, LinuxSyscall};
use serde::Deserialize;

/// Where the distribution installs its default container profile.
pub const PROFILE_PATH: &str = "/usr/share/containers/seccomp.json";
/// The Debian package that installs [`PROFILE_PATH`].
pub const PROFILE_PACKAGE: &str = "golang-github-containers-common";
/// Names another profile file in the same format (e.g. Docker's own
/// `profiles/seccomp/default.json`) to use instead of [`PROFILE_PATH`].
pub const PROFILE_ENV: &str = "ISOBENCH_SECCOMP_PROFILE";
/// The errno of `SCMP_ACT_ERRNO` without `errnoRet`, as Docker and runc use.
const DEFAULT_ERRNO: u32 = libc::EPERM as u32;

#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("the docker profile needs the seccomp profile {path}, which is missing: apt-get install {PROFILE_PACKAGE} (scripts/setup installs it)", path = .0.display())]
    Missing(PathBuf),
    #[error("seccomp profile {path}: {why}", path = .path.display())]
    Invalid { path: PathBuf, why: String },
    #[error("the docker profile needs libseccomp, and this isobench was built without it (cargo feature `seccomp`): apt-get install libseccomp-dev and rebuild")]
    NoLibseccomp,
    #[error("compile the seccomp profile {path} with libseccomp: {why}", path = .path.display())]
    Compile { path: PathBuf, why: String },
}

/// A profile file in Docker's format (what `docker run --security-opt
/// seccomp=FILE` and Podman read).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProfileFile {
    default_action: LinuxSeccompAction,
    #[serde(default)]
    default_errno_ret: Option<u32>,
    #[serde(default)]
    arch_map: Option<Vec<ArchMap>>,
    #[serde(default)]
    architectures: Option<Vec<Arch>>,
    #[serde(default)]
    syscalls: Option<Vec<Group>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArchMap {
    architecture: Arch,
    #[serde(default)]
    sub_architectures: Option<Vec<Arch>>,
}

/// One rule of the file: calls, an action, and when it applies.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Group {
    #[serde(default)]
    names: Option<Vec<String>>,
    #[serde(default)]
    name: Option<String>,
    action: LinuxSeccompAction,
    #[serde(default)]
    errno_ret: Option<u32>,
    #[serde(default)]
    args: Option<Vec<FileArg>>,
    #[serde(default)]
    includes: Option<Filter>,
    #[serde(default)]
    excludes: Option<Filter>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FileArg {
    index: usize,
    value: u64,
    #[serde(default)]
    value_two: u64,
    op: LinuxSeccompOperator,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Filter {
    #[serde(default)]
    arches: Option<Vec<String>>,
    #[serde(default)]
    caps: Option<Vec<String>>,
    #[serde(default)]
    min_kernel: Option<String>,
}

/// The architecture names profiles use in `includes.arches` (Go's).
fn native_arch() -> (&'static str, Arch) {
    #[cfg(target_arch = "x86_64")]
    return ("amd64", Arch::ScmpArchX86_64);
    #[cfg(target_arch = "aarch64")]
    return ("arm64", Arch::ScmpArchAarch64);
}

/// A profile resolved for this machine and a capability set: what the
/// filter will say, as oci-spec's type.
#[derive(Debug, Clone, PartialEq)]
pub struct SeccompProfile {
    path: PathBuf,
    oci: LinuxSeccomp,
}

impl SeccompProfile {
    /// The profile file to use: `$ISOBENCH_SECCOMP_PROFILE`, else [`PROFILE_PATH`].
    pub fn default_path() -> PathBuf {
        std::env::var_os(PROFILE_ENV).map_or_else(|| PathBuf::from(PROFILE_PATH), PathBuf::from)
    }

    /// [`load`](Self::load) of [`default_path`](Self::default_path).
    pub fn load_default(caps: &[&str]) -> Result<SeccompProfile, SeccompError> {
        Self::load(&Self::default_path(), caps)
    }

    /// Reads `path` and resolves it for this machine and a container holding
    /// `caps`, as Docker's and Podman's loaders do: a rule applies when its
    /// `includes` (architectures, capabilities, a minimum kernel) all hold
    /// and none of its `excludes` does; the architectures are the native
    /// one and its `archMap` sub-architectures (x86 and x32 beside x86_64).
    pub fn load(path: &Path, caps: &[&str]) -> Result<SeccompProfile, SeccompError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(SeccompError::Missing(path.to_path_buf())),
            Err(e) => return Err(SeccompError::Invalid { path: path.to_path_buf(), why: e.to_string() }),
        };
        let file: ProfileFile = serde_json::from_str(&text).map_err(|e| SeccompError::Invalid { path: path.to_path_buf(), why: e.to_string() })?;
        Ok(SeccompProfile { path: path.to_path_buf(), oci: resolve(file, caps, kernel_version()) })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The resolved profile, as config.json's `linux.seccomp`.
    pub fn oci(&self) -> &LinuxSeccomp {
        &self.oci
    }

    /// Calls named by the resolved rules.
    pub fn rule_names(&self) -> usize {
        self.oci.syscalls().iter().flatten().map(|s| s.names().len()).sum()
    }

    /// The action of the first resolved rule naming `call` without argument
    /// conditions, else the default: (action, errno).
    pub fn action_for(&self, call: &str) -> (LinuxSeccompAction, Option<u32>) {
        self.oci
            .syscalls()
            .iter()
            .flatten()
            .find(|s| s.names().iter().any(|n| n == call) && s.args().as_ref().map_or(true, |a| a.is_empty()))
            .map_or((self.oci.default_action(), self.oci.default_errno_ret()), |s| (s.action(), s.errno_ret()))
    }

    /// The errno the profile answers `call` with when it refuses it outright
    /// (its rule, or the default action); `None` when it lets it through.
    pub fn errno_for(&self, call: &str) -> Option<u32> {
        match self.action_for(call) {
            (LinuxSeccompAction::ScmpActErrno, e) => Some(e.unwrap_or(DEFAULT_ERRNO)),
            _ => None,
        }
    }

    /// Whether the profile lets `call` through unconditionally.
    pub fn allows(&self, call: &str) -> bool {
        self.action_for(call).0 == LinuxSeccompAction::ScmpActAllow
    }

    /// Compiles the resolved profile to a classic BPF program with
    /// libseccomp, as runc and crun do before they load it. Calls this
    /// libseccomp does not know are left out (Docker does the same).
    #[cfg(feature = "seccomp")]
    pub fn compile(&self) -> Result<BpfProgram, SeccompError> {
        use libseccomp::{ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall};
        let err = |why: String| SeccompError::Compile { path: self.path.clone(), why };
        let action = |a: LinuxSeccompAction, errno: Option<u32>| -> Result<ScmpAction, SeccompError> {
            Ok(match a {
                LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
                LinuxSeccompAction::ScmpActErrno => ScmpAction::Errno(errno.unwrap_or(DEFAULT_ERRNO) as i32),
                LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => ScmpAction::KillThread,
                LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
                LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
                LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
                LinuxSeccompAction::ScmpActTrace => ScmpAction::Trace(errno.unwrap_or(DEFAULT_ERRNO) as u16),
                LinuxSeccompAction::ScmpActNotify => return Err(err("SCMP_ACT_NOTIFY needs a seccomp agent, which isobench does not run".into())),
            })
        };
        let default = action(self.oci.default_action(), self.oci.default_errno_ret())?;
        let mut ctx = ScmpFilterContext::new(default).map_err(|e| err(e.to_string()))?;
        for arch in self.oci.architectures().iter().flatten() {
            let scmp = match arch {
                Arch::ScmpArchX86_64 => ScmpArch::X8664,
                Arch::ScmpArchX86 => ScmpArch::X86,
                Arch::ScmpArchX32 => ScmpArch::X32,
                Arch::ScmpArchAarch64 => ScmpArch::Aarch64,
                Arch::ScmpArchArm => ScmpArch::Arm,
                _ => continue,
            };
            if !ctx.is_arch_present(scmp).map_err(|e| err(e.to_string()))? {
                ctx.add_arch(scmp).map_err(|e| err(format!("add architecture {arch}: {e}")))?;
            }
        }
        for rule in self.oci.syscalls().iter().flatten() {
            let act = action(rule.action(), rule.errno_ret())?;
            // libseccomp refuses a rule whose action is the default.
            if act == default {
                continue;
            }
            let cmps: Vec<ScmpArgCompare> = rule
                .args()
                .iter()
                .flatten()
                .map(|a| {
                    let op = match a.op() {
                        LinuxSeccompOperator::ScmpCmpNe => ScmpCompareOp::NotEqual,
                        LinuxSeccompOperator::ScmpCmpLt => ScmpCompareOp::Less,
                        LinuxSeccompOperator::ScmpCmpLe => ScmpCompareOp::LessOrEqual,
                        LinuxSeccompOperator::ScmpCmpEq => ScmpCompareOp::Equal,
                        LinuxSeccompOperator::ScmpCmpGe => ScmpCompareOp::GreaterEqual,
                        LinuxSeccompOperator::ScmpCmpGt => ScmpCompareOp::Greater,
                        // value is the mask, valueTwo the datum.
                        LinuxSeccompOperator::ScmpCmpMaskedEq => {
                            return ScmpArgCompare::new(a.index() as u32, ScmpCompareOp::MaskedEqual(a.value()), a.value_two().unwrap_or(0))
                        }
                    };
                    ScmpArgCompare::new(a.index() as u32, op, a.value())
                })
                .collect();
            // Conditions on distinct arguments are one rule (AND); several
            // on the same argument are one rule each (OR), as runc reads them.
            let mut indices: Vec<usize> = rule.args().iter().flatten().map(|a| a.index()).collect();
            indices.sort_unstable();
            let distinct = indices.windows(2).all(|w| w[0] != w[1]);
            for name in rule.names() {
                let Ok(call) = ScmpSyscall::from_name(name) else { continue };
                let added = if cmps.is_empty() {
                    ctx.add_rule(act, call).map(drop)
                } else if distinct {
                    ctx.add_rule_conditional(act, call, &cmps).map(drop)
                } else {
                    cmps.iter().try_for_each(|c| ctx.add_rule_conditional(act, call, std::slice::from_ref(c)).map(drop))
                };
                added.map_err(|e| err(format!("rule for {name}: {e}")))?;
            }
        }
        let mut file = tempfile::tempfile().map_err(|e| err(format!("a temp file for the program: {e}")))?;
        ctx.export_bpf(&file).map_err(|e| err(format!("export: {e}")))?;
        let mut bytes = Vec::new();
        file.rewind().and_then(|()| file.read_to_end(&mut bytes)).map_err(|e| err(format!("read the exported program: {e}")))?;
        BpfProgram::from_bytes(&bytes).ok_or_else(|| err(format!("the exported program is {} bytes, not whole instructions", bytes.len())))
    }

    /// Without libseccomp: refused with one line naming what is missing.
    #[cfg(not(feature = "seccomp"))]
    pub fn compile(&self) -> Result<BpfProgram, SeccompError> {
        Err(SeccompError::NoLibseccomp)
    }
}

/// `profile` for the architecture `native_arch()`, `caps` and the kernel
/// `kernel` (major, minor).
fn resolve(file: ProfileFile, caps: &[&str], kernel: (u32, u32)) -> LinuxSeccomp {
    let (go_arch, native) = native_arch();
    let mut arches = vec![native];
    match &file.arch_map {
        Some(map) => {
            for m in map.iter().filter(|m| m.architecture == native) {
                arches.extend(m.sub_architectures.iter().flatten().copied());
            }
        }
        None => arches.extend(file.architectures.iter().flatten().copied().filter(|a| *a != native)),
    }
    let has_cap = |c: &String| caps.iter().any(|k| k.eq_ignore_ascii_case(c));
    let applies = |g: &Group| {
        let inc = g.includes.as_ref();
        let exc = g.excludes.as_ref();
        let inc_arches = inc.and_then(|f| f.arches.as_ref()).filter(|a| !a.is_empty());
        let inc_caps = inc.and_then(|f| f.caps.as_ref());
        let min_kernel = inc.and_then(|f| f.min_kernel.as_deref()).and_then(parse_version);
        let exc_arches = exc.and_then(|f| f.arches.as_ref());
        let exc_caps = exc.and_then(|f| f.caps.as_ref());
        inc_arches.map_or(true, |a| a.iter().any(|x| x == go_arch))
            && inc_caps.map_or(true, |c| c.iter().all(has_cap))
            && min_kernel.map_or(true, |m| kernel >= m)
            && !exc_arches.is_some_and(|a| a.iter().any(|x| x == go_arch))
            && !exc_caps.is_some_and(|c| c.iter().any(has_cap))
    };
    let mut syscalls = Vec::new();
    for g in file.syscalls.into_iter().flatten().filter(|g| applies(g)) {
        let names: Vec<String> = g.names.clone().unwrap_or_default().into_iter().chain(g.name.clone()).collect();
        if names.is_empty() {
            continue;
        }
        let mut s = LinuxSyscall::default();
        s.set_names(names);
        s.set_action(g.action);
        s.set_errno_ret(match g.action {
            LinuxSeccompAction::ScmpActErrno => Some(g.errno_ret.unwrap_or(DEFAULT_ERRNO)),
            _ => g.errno_ret,
        });
        let args: Vec<LinuxSeccompArg> = g
            .args
            .iter()
            .flatten()
            .filter_map(|a| {
                let arg = LinuxSeccompArgBuilder::default().index(a.index).value(a.value).op(a.op);
                let arg = if a.value_two != 0 { arg.value_two(a.value_two) } else { arg };
                arg.build().ok()
            })
            .collect();
        s.set_args((!args.is_empty()).then_some(args));
        syscalls.push(s);
    }
    let mut oci = LinuxSeccomp::default();
    oci.set_default_action(file.default_action);
    oci.set_default_errno_ret(match file.default_action {
        LinuxSeccompAction::ScmpActErrno => Some(file.default_errno_ret.unwrap_or(DEFAULT_ERRNO)),
        _ => file.default_errno_ret,
    });
    oci.set_architectures(Some(arches));
    oci.set_syscalls(Some(syscalls));
    oci
}

/// `"4.8"` → (4, 8).
fn parse_version(s: &str) -> Option<(u32, u32)> {
    let mut it = s.split(|c: char| !c.is_ascii_digit()).filter(|p| !p.is_empty()).map(|p| p.parse().ok());
    Some((it.next()??, it.next().flatten().unwrap_or(0)))
}

/// The running kernel's (major, minor), for `includes.minKernel`.
fn kernel_version() -> (u32, u32) {
    nix::sys::utsname::uname().ok().and_then(|u| parse_version(&u.release().to_string_lossy())).unwrap_or((0, 0))
}

/// A classic BPF program for seccomp(SECCOMP_SET_MODE_FILTER), compiled
/// before clone(2) so that the child only hands the kernel a pointer.
#[derive(Clone)]
pub struct BpfProgram(Vec<libc::sock_filter>);

impl std::fmt::Debug for BpfProgram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BpfProgram({} instructions)", self.0.len())
    }
}

impl PartialEq for BpfProgram {
    fn eq(&self, other: &Self) -> bool {
        self.0.len() == other.0.len() && self.0.iter().zip(&other.0).all(|(a, b)| (a.code, a.jt, a.jf, a.k) == (b.code, b.jt, b.jf, b.k))
    }
}

/// Bytes of one `struct sock_filter` (u16 code, u8 jt, u8 jf, u32 k).
const INSTRUCTION_BYTES: usize = 8;

impl BpfProgram {
    /// Instructions in the byte order of this machine, as libseccomp exports them.
    pub fn from_bytes(bytes: &[u8]) -> Option<BpfProgram> {
        if bytes.is_empty() || bytes.len() % INSTRUCTION_BYTES != 0 {
            return None;
        }
        let insns = bytes
            .chunks_exact(INSTRUCTION_BYTES)
            .map(|c| libc::sock_filter {
                code: u16::from_ne_bytes([c[0], c[1]]),
                jt: c[2],
                jf: c[3],
                k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
            })
            .collect();
        Some(BpfProgram(insns))
    }

    /// Instructions in the program (what run.json records: the kernel runs
    /// up to this many on every system call of the container).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn instructions(&self) -> &[libc::sock_filter] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: &str = r#"{
        "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
        "archMap": [{ "architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"] },
                    { "architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"] }],
        "syscalls": [
            { "names": ["kexec_load"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1 },
            { "names": ["getpid", "read", "write", "exit_group", "no_such_call_anywhere"], "action": "SCMP_ACT_ALLOW" },
            { "names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{ "index": 0, "value": 8, "op": "SCMP_CMP_EQ" }] },
            { "names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW", "includes": { "arches": ["amd64", "x32"] } },
            { "names": ["init_module"], "action": "SCMP_ACT_ALLOW", "includes": { "caps": ["CAP_SYS_MODULE"] } },
            { "names": ["init_module"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1, "excludes": { "caps": ["CAP_SYS_MODULE"] } },
            { "names": ["future_call"], "action": "SCMP_ACT_ALLOW", "includes": { "minKernel": "99.0" } },
            { "names": ["mount"], "action": "SCMP_ACT_ERRNO" }
        ]}"#;

    fn small(caps: &[&str]) -> SeccompProfile {
        let file: ProfileFile = serde_json::from_str(SMALL).unwrap();
        SeccompProfile { path: "small.json".into(), oci: resolve(file, caps, (6, 1)) }
    }

    fn names(p: &SeccompProfile) -> Vec<String> {
        p.oci().syscalls().iter().flatten().flat_map(|s| s.names().clone()).collect()
    }

    #[test]
    fn rules_apply_by_architecture_capability_and_kernel() {
        let p = small(&["CAP_CHOWN"]);
        assert_eq!(p.oci().default_action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(p.oci().default_errno_ret(), Some(38));
        assert_eq!(p.oci().architectures().as_deref(), Some(&[Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32][..]));
        let n = names(&p);
        assert!(n.contains(&"arch_prctl".to_string()), "amd64 rule applies: {n:?}");
        assert!(!n.contains(&"future_call".to_string()), "a kernel too old for it");
        assert_eq!(p.action_for("init_module"), (LinuxSeccompAction::ScmpActErrno, Some(1)), "no CAP_SYS_MODULE: EPERM");
        assert_eq!(p.action_for("mount"), (LinuxSeccompAction::ScmpActErrno, Some(1)), "errno without errnoRet is EPERM");
        assert_eq!(p.action_for("getpid").0, LinuxSeccompAction::ScmpActAllow);
        assert_eq!(p.action_for("add_key"), (LinuxSeccompAction::ScmpActErrno, Some(38)), "unlisted: the default");
        let with = small(&["CAP_SYS_MODULE"]);
        assert_eq!(with.action_for("init_module").0, LinuxSeccompAction::ScmpActAllow);
    }

    #[test]
    fn a_missing_or_broken_file_is_one_line_naming_the_package() {
        let e = SeccompProfile::load(Path::new("/nonexistent/seccomp.json"), &[]).unwrap_err().to_string();
        assert_eq!(
            e,
            "the docker profile needs the seccomp profile /nonexistent/seccomp.json, which is missing: apt-get install golang-github-containers-common (scripts/setup installs it)"
        );
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), "{\"syscalls\": 3}").unwrap();
        let e = SeccompProfile::load(f.path(), &[]).unwrap_err().to_string();
        assert!(e.starts_with(&format!("seccomp profile {}: ", f.path().display())) && !e.contains('\n'), "{e}");
    }

    #[test]
    fn the_oci_form_round_trips_through_config_json() {
        let p = small(&[]);
        let json = serde_json::to_value(p.oci()).unwrap();
        assert_eq!(json["defaultAction"], "SCMP_ACT_ERRNO");
        assert_eq!(json["architectures"][0], "SCMP_ARCH_X86_64");
        let back: LinuxSeccomp = serde_json::from_value(json).unwrap();
        assert_eq!(&back, p.oci());
    }

    #[cfg(feature = "seccomp")]
    #[test]
    fn the_compiled_program_is_whole_instructions_and_grows_with_the_rules() {
        let small_bpf = small(&[]).compile().unwrap();
        assert!(small_bpf.len() > 5, "{small_bpf:?}");
        // The last instruction of a seccomp program is a return (BPF_RET = 0x06).
        assert_eq!(small_bpf.instructions().last().unwrap().code & 0x07, 0x06);
        if Path::new(PROFILE_PATH).is_file() {
            let real = SeccompProfile::load(Path::new(PROFILE_PATH), &crate::container::profile::DOCKER_CAPABILITIES).unwrap();
            let bpf = real.compile().unwrap();
            assert!(bpf.len() > small_bpf.len() * 10, "{} vs {}", bpf.len(), small_bpf.len());
            assert!(real.rule_names() > 300, "{}", real.rule_names());
        }
    }

    #[test]
    fn byte_programs_must_be_whole_instructions() {
        assert!(BpfProgram::from_bytes(&[0; 12]).is_none());
        assert!(BpfProgram::from_bytes(&[]).is_none());
        assert_eq!(BpfProgram::from_bytes(&[0; 16]).unwrap().len(), 2);
    }
}
