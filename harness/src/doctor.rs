//! `isobench doctor`: what each environment needs and whether this host has
//! it, one line each, with the command that fixes what is missing; with
//! `--json`, the same findings as a [`Diagnosis`].

use std::io::Write;
use std::path::Path;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::collect::host::{cgroup_mode, qemu_version};
use crate::env::{self, EnvKind, Options};

/// What `isobench doctor` found (`isobench doctor --json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Diagnosis {
    /// Host facts and tools, in the order printed.
    pub facts: Vec<Fact>,
    /// Every environment, core ones first, then the peer runtimes.
    pub environments: Vec<EnvCheck>,
    /// Every core environment (native, container, vm) can run; the peers are
    /// never required. `isobench doctor` exits 1 when this is false.
    pub ready: bool,
}

/// One host fact: `root`, `cgroup mode`, `qemu`, ...
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Fact {
    pub name: String,
    /// What was found, and the remedy when something is missing.
    pub status: String,
}

/// Whether one environment can run here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EnvCheck {
    pub env: String,
    /// A peer runtime (optional).
    pub peer: bool,
    pub ready: bool,
    /// The column label when ready (`vm (emulated (TCG))`), else why not.
    pub status: String,
    /// The vm's accelerator (`kvm`, `tcg`) and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accel: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accel_reason: Option<String>,
}

/// One step of the diagnosis as it happens, for the text output.
enum Step<'a> {
    Line(&'a str, &'a str),
    Note(&'a str),
}

fn line(out: &mut dyn Write, what: &str, status: &str) {
    let _ = writeln!(out, "  {what:<22} {status}");
}

/// Whether the net.*.boundary metrics can use a veth and a tap: a real
/// check, creating (and removing) the run's network namespace and a tap.
fn boundary_network(root: bool) -> String {
    use crate::container::net::RunNetns;
    if !root {
        return "no root: no veth for the container (its boundary is skipped); the vm uses user-mode networking (slirp)".into();
    }
    let check = || -> Result<String, String> {
        let ns = RunNetns::create().map_err(|e| e.to_string())?;
        let subnet = ns.try_allocate_subnet().map_err(|e| e.to_string())?;
        let tap = ns.add_tap(&format!("ibt{}-doc", std::process::id() % 100_000), &subnet).map_err(|e| format!("tap: {e}"))?;
        drop(tap);
        Ok(format!("ready: a private network namespace per run (like {}), veth for the container, tap for the vm", ns.name()))
    };
    check().unwrap_or_else(|e| format!("unavailable ({e}): the container's boundary is skipped and the vm uses user-mode networking (slirp)"))
}

/// Runs every check, telling `step` about each as it is found (the vm's
/// probe boot can take a while).
fn diagnose_with(step: &mut dyn FnMut(Step<'_>)) -> Diagnosis {
    let mut facts = Vec::new();
    let mut fact = |step: &mut dyn FnMut(Step<'_>), name: &str, status: String| {
        step(Step::Line(name, &status));
        facts.push(Fact { name: name.into(), status });
    };
    let root = nix::unistd::geteuid().is_root();
    fact(
        step,
        "root",
        if root { "yes" } else { "no: the container runs rootless through a user namespace (no cgroup limits); run as root for limits" }.into(),
    );
    fact(step, "cgroup mode", format!("{:?}", cgroup_mode()).to_lowercase());
    let busybox = crate::container::rootfs::find_static_busybox();
    fact(
        step,
        "busybox (static)",
        busybox.map_or("missing: apt-get install busybox-static (isobench exec -- ps needs it)".into(), |p| p.display().to_string()),
    );
    fact(
        step,
        "debootstrap",
        if std::process::Command::new("debootstrap").arg("--version").output().is_ok_and(|o| o.status.success()) {
            "present (--rootfs debian builds a Debian rootfs once into the cache)"
        } else {
            "missing: apt-get install debootstrap for --rootfs debian (optional)"
        }
        .into(),
    );
    fact(step, "qemu", qemu_version().unwrap_or_else(|| "missing: apt-get install qemu-system-x86 (scripts/setup)".into()));
    fact(
        step,
        "virtiofsd",
        match crate::vm::virtiofsd::find() {
            Ok(p) if root => format!("{} (--vm-storage virtiofs)", p.display()),
            Ok(p) => format!("{} (--vm-storage virtiofs needs root)", p.display()),
            Err(_) => "missing: apt-get install qemu-system-common for --vm-storage virtiofs (optional; scripts/setup)".into(),
        },
    );
    fact(
        step,
        "/dev/kvm",
        match nix::unistd::access(Path::new("/dev/kvm"), nix::unistd::AccessFlags::R_OK | nix::unistd::AccessFlags::W_OK) {
            Ok(()) => "present, read-write (whether a guest boots under it is the probe's verdict below)",
            Err(nix::errno::Errno::ENOENT) => "missing: the vm runs under TCG (emulation)",
            Err(_) => "present but not accessible: the vm runs under TCG (add yourself to group kvm)",
        }
        .into(),
    );
    fact(step, "boundary network", boundary_network(root));
    let workloads = match crate::workloads::locate() {
        Ok(w) => {
            fact(step, "static workloads", w.agent.display().to_string());
            w
        }
        Err(e) => {
            fact(step, "static workloads", e.to_string());
            return Diagnosis { facts, environments: Vec::new(), ready: false };
        }
    };
    let opts = Options::new(workloads);
    if crate::vm::accel::cached_verdict_missing() {
        step(Step::Note("(checking the vm boots a probe guest under KVM first: up to ~40 s, once per host and kernel)"));
    }
    let mut environments = Vec::new();
    let mut ready = true;
    for kind in EnvKind::ALL.into_iter().chain(EnvKind::PEERS) {
        let peer = EnvKind::PEERS.contains(&kind);
        let check = match env::prepare(kind, &opts) {
            Ok(e) => {
                let meta = e.metadata();
                let text = |k: &str| meta.get(k).and_then(|v| v.as_str()).map(String::from);
                let (accel, accel_reason) = (text("accel"), text("accel_reason"));
                let extra = match (&accel, &accel_reason) {
                    (Some(a), Some(r)) => format!(" — accelerator {a}: {r}"),
                    (Some(a), None) => format!(" — accelerator {a}"),
                    _ => String::new(),
                };
                EnvCheck { env: kind.as_str().into(), peer, ready: true, status: format!("ready as {}{extra}", e.label()), accel, accel_reason }
            }
            Err(e) => {
                // Peers are optional columns: a missing one is information.
                ready &= peer;
                EnvCheck { env: kind.as_str().into(), peer, ready: false, status: e.to_string(), accel: None, accel_reason: None }
            }
        };
        step(Step::Line(kind.as_str(), &check.status));
        environments.push(check);
    }
    Diagnosis { facts, environments, ready }
}

/// Every check, quietly (`isobench doctor --json`).
pub fn diagnose() -> Diagnosis {
    diagnose_with(&mut |_| {})
}

/// Prints the checks as they are made; returns true when every core
/// environment (native, container, vm) can run; the peer runtimes are
/// listed, never required.
pub fn print(out: &mut dyn Write) -> bool {
    let _ = writeln!(out, "isobench doctor");
    diagnose_with(&mut |s| match s {
        Step::Line(what, status) => line(out, what, status),
        Step::Note(text) => {
            let _ = writeln!(out, "  {text}");
            let _ = out.flush();
        }
    })
    .ready
}
