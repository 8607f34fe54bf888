//! `isobench doctor`: what each environment needs and whether this host has
//! it, one line each, with the command that fixes what is missing.

use std::io::Write;
use std::path::Path;

use crate::collect::host::{cgroup_mode, qemu_version};
use crate::env::{self, EnvKind, Options};

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

/// Prints the checks; returns true when every core environment (native,
/// container, vm) can run; the peer runtimes are listed, never required.
pub fn print(out: &mut dyn Write) -> bool {
    let _ = writeln!(out, "isobench doctor");
    let root = nix::unistd::geteuid().is_root();
    line(
        out,
        "root",
        if root { "yes" } else { "no: the container runs rootless through a user namespace (no cgroup limits); run as root for limits" },
    );
    line(out, "cgroup mode", &format!("{:?}", cgroup_mode()).to_lowercase());
    let busybox = crate::container::rootfs::find_static_busybox();
    line(
        out,
        "busybox (static)",
        &busybox.map_or("missing: apt-get install busybox-static (isobench exec -- ps needs it)".into(), |p| p.display().to_string()),
    );
    line(
        out,
        "debootstrap",
        if std::process::Command::new("debootstrap").arg("--version").output().is_ok_and(|o| o.status.success()) {
            "present (--rootfs debian builds a Debian rootfs once into the cache)"
        } else {
            "missing: apt-get install debootstrap for --rootfs debian (optional)"
        },
    );
    line(out, "qemu", &qemu_version().unwrap_or_else(|| "missing: apt-get install qemu-system-x86 (scripts/setup)".into()));
    line(
        out,
        "/dev/kvm",
        match nix::unistd::access(Path::new("/dev/kvm"), nix::unistd::AccessFlags::R_OK | nix::unistd::AccessFlags::W_OK) {
            Ok(()) => "present, read-write (whether a guest boots under it is the probe's verdict below)",
            Err(nix::errno::Errno::ENOENT) => "missing: the vm runs under TCG (emulation)",
            Err(_) => "present but not accessible: the vm runs under TCG (add yourself to group kvm)",
        },
    );
    line(out, "boundary network", &boundary_network(root));
    let workloads = match crate::workloads::locate() {
        Ok(w) => {
            line(out, "static workloads", &w.agent.display().to_string());
            w
        }
        Err(e) => {
            line(out, "static workloads", &e.to_string());
            return false;
        }
    };
    let opts = Options::new(workloads);
    if crate::vm::accel::cached_verdict_missing() {
        let _ = writeln!(out, "  (checking the vm boots a probe guest under KVM first: up to ~40 s, once per host and kernel)");
        let _ = out.flush();
    }
    let mut all = true;
    for kind in EnvKind::ALL.into_iter().chain(EnvKind::PEERS) {
        let peer = EnvKind::PEERS.contains(&kind);
        match env::prepare(kind, &opts) {
            Ok(e) => {
                let meta = e.metadata();
                let extra = match (meta.get("accel").and_then(|v| v.as_str()), meta.get("accel_reason").and_then(|v| v.as_str())) {
                    (Some(a), Some(r)) => format!(" — accelerator {a}: {r}"),
                    (Some(a), None) => format!(" — accelerator {a}"),
                    _ => String::new(),
                };
                line(out, kind.as_str(), &format!("ready as {}{extra}", e.label()));
            }
            Err(e) => {
                // Peers are optional columns: a missing one is information.
                all &= peer;
                line(out, kind.as_str(), &e.to_string());
            }
        }
    }
    all
}
