//! The report's title and its first table: the host (CPU, kernel, cgroup
//! mode, frequency governor, mitigations, clocksource, CPUID cost, load),
//! the vm's accelerator and why, the container's rootfs, the boundary
//! paths, and how the run was asked for.

use std::fmt::Write;

use isobench_workloads::protocol::PinMode;

use crate::collect::host::{HostInfo, CPUID_EXIT_NS};
use crate::report::format::{cell, json_number};
use crate::report::ReportError;
use crate::results::run::Parameters;
use crate::results::RunRecord;

use super::{Context, Section};

/// `# isobench report: … on host X`, the report's first line.
pub struct Title;

impl Section for Title {
    fn markdown(&self, cx: &Context<'_>) -> Result<String, ReportError> {
        let host = cx.run.host.as_ref();
        let mut o = format!("# isobench report: what isolation costs on host {}\n\n", host.map_or("(unnamed)", |h| h.hostname.as_str()));
        if let Some(date) = &cx.run.started_utc {
            let _ = writeln!(o, "Measured {date} (UTC); the host and how the run was asked for are at the end.\n");
        }
        Ok(o)
    }
}

/// `## Host and method`: the host table, at the end of the report.
pub struct Host;

impl Section for Host {
    fn markdown(&self, cx: &Context<'_>) -> Result<String, ReportError> {
        let run = cx.run;
        let host = run.host.as_ref();
        let params = run.parameters.as_ref();
        let h = |f: fn(&HostInfo) -> Option<String>| host.and_then(f);
        let mut o = String::new();
        let _ = writeln!(o, "## Host and method\n");
        let _ = writeln!(o, "| fact | value |\n|---|---|");
        let yes_no = |b: Option<bool>| b.map_or_else(|| "?".to_string(), |b| b.to_string());
        let rows = [
            ("date (UTC)", run.started_utc.clone()),
            ("CPU", h(|h| Some(format!("{} ({} CPUs)", h.cpu_model, h.cpus)))),
            ("kernel", h(|h| Some(h.kernel.clone()))),
            ("cgroup mode", h(|h| Some(h.cgroup_mode.as_str().to_string()))),
            ("governor", h(|h| h.governor.clone()).or(Some("not exposed".into()))),
            ("SMT / boost", Some(format!("{} / {}", yes_no(host.and_then(|h| h.smt)), yes_no(host.and_then(|h| h.boost))))),
            ("rcu_expedited", h(|h| h.rcu_expedited.map(|b| b.to_string()))),
            ("mitigations", h(mitigations)),
            ("clocksource", h(|h| h.clocksource.clone())),
            ("CPUID", h(cpuid_description)),
            ("load average at start", h(|h| Some(json_number(h.load_avg_1m)))),
            ("isobench revision", h(|h| h.isobench_revision.clone())),
            ("QEMU", h(|h| h.qemu_version.clone())),
            ("vm accelerator", vm_accelerator(run)),
            ("container rootfs", run.environments.get("container").and_then(|e| e.meta(|m| m.rootfs_image.clone()))),
            ("cross-boundary paths (`net.*.boundary`)", boundary_paths(run)),
            ("driver", params.and_then(|p| p.driver.clone())),
            ("CPU pinning (`ipc.*`, `net.*`)", params.and_then(|p| p.pin).map(pin_description)),
            (
                "criterion's report",
                params.and_then(|p| p.criterion_report.as_ref()).map(|p| {
                    let p = p.display();
                    format!("[{p}](file://{p}) (statistics of the same samples; baselines: `cargo bench -- --save-baseline NAME`)")
                }),
            ),
            ("merged from", merged_from(run)),
            ("parameters", params.and_then(parameters_description)),
        ];
        for (k, v) in rows {
            if let Some(v) = v {
                let _ = writeln!(o, "| {k} | {} |", cell(&v));
            }
        }
        o.push('\n');
        Ok(o)
    }
}

/// How the run was asked for, in words: "environments native, container;
/// metrics syscall.getpid; --quick (smoke run); ≤ 10000 ms per measurement;
/// vm accelerator auto".
fn parameters_description(p: &Parameters) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(envs) = &p.envs {
        parts.push(format!("environments {}", envs.join(", ")));
    }
    if let Some(metrics) = &p.metrics {
        parts.push(format!("metrics {}", metrics.join(", ")));
    }
    if p.quick == Some(true) {
        parts.push("--quick (smoke run)".into());
    }
    match p.iterations {
        Some(Some(n)) => parts.push(format!("{n} iterations per metric")),
        Some(None) => parts.push("the catalogue's iteration counts".into()),
        None => {}
    }
    if let Some(ms) = p.max_ms {
        parts.push(format!("≤ {ms} ms per measurement"));
    }
    if let Some(accel) = &p.accel {
        parts.push(format!("vm accelerator {accel}"));
    }
    if p.criterion == Some(true) {
        parts.push("measured through criterion".into());
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// "active for …" or "not affected …"; `None` when none were read.
fn mitigations(h: &HostInfo) -> Option<String> {
    let m = &h.mitigations;
    (!m.is_empty()).then(|| {
        let affected: Vec<&str> = m.iter().filter(|(_, v)| *v != "Not affected").map(|(k, _)| k.as_str()).collect();
        if affected.is_empty() {
            "not affected by any listed vulnerability".to_string()
        } else {
            format!("active for {} (run.json has the details)", affected.join(", "))
        }
    })
}

/// The host's CPUID cost, and whether that is an exit to a hypervisor.
fn cpuid_description(h: &HostInfo) -> Option<String> {
    let ns = h.cpuid_ns?;
    Some(match (ns > CPUID_EXIT_NS, h.hypervisor) {
        (true, _) => format!("{:.1} µs each: exits to the hypervisor (the host is a guest)", ns / 1e3),
        (false, true) => format!("{ns:.0} ns each: a guest whose CPUID exits are cheap"),
        (false, false) => format!("{ns:.0} ns each: native"),
    })
}

/// "tcg — why" from the vm's metadata.
fn vm_accelerator(run: &RunRecord) -> Option<String> {
    let vm = run.environments.get("vm")?;
    let accel = vm.meta(|m| m.accel.clone())?;
    Some(format!("{accel} — {}", vm.meta(|m| m.accel_reason.clone()).unwrap_or_default()))
}

/// "env: path (address, netns)" for every environment whose boundary was
/// measured.
fn boundary_paths(run: &RunRecord) -> Option<String> {
    let parts: Vec<String> = run
        .environments
        .iter()
        .filter_map(|(name, e)| {
            let b = e.boundary.as_ref()?;
            let mut line = format!("{name}: {}", b.description.as_ref()?);
            if let Some(ns) = &b.netns {
                line.push_str(&format!(" (host side in netns {ns}, environment at {})", b.environment_address.clone().unwrap_or_default()));
            }
            Some(line)
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// What a `--pin` mode means.
fn pin_description(mode: PinMode) -> String {
    let words = match mode {
        PinMode::Same => "the measuring thread and its peer on one CPU (round trips are context switches)",
        PinMode::Split => "the measuring thread on one CPU, its peer on another (cross-CPU wake-ups)",
        PinMode::None => "not pinned: the scheduler placed both ends",
    };
    format!("{mode}: {words}")
}

/// "name (CPU, kernel)" of each folder a merge was made from.
fn merged_from(run: &RunRecord) -> Option<String> {
    let runs = run.merged_from.as_ref()?;
    Some(
        runs.iter()
            .map(|r| {
                let (cpu, kernel) = r.host.as_ref().map_or((String::new(), String::new()), |h| (h.cpu_model.clone(), h.kernel.clone()));
                format!("{} ({cpu}, {kernel})", r.name)
            })
            .collect::<Vec<_>>()
            .join("; "),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpuid_row_follows_its_cost() {
        let host = |ns: Option<f64>, guest: bool| -> HostInfo {
            serde_json::from_value(serde_json::json!({ "hostname": "h", "cpu_model": "c", "cpus": 1, "kernel": "k", "cgroup_mode": "v2",
                "load_avg_1m": 0.0, "cpuid_ns": ns, "hypervisor": guest }))
            .unwrap()
        };
        assert_eq!(cpuid_description(&host(Some(45.0), false)).unwrap(), "45 ns each: native");
        assert_eq!(cpuid_description(&host(Some(180.0), true)).unwrap(), "180 ns each: a guest whose CPUID exits are cheap");
        assert_eq!(cpuid_description(&host(Some(12_300.0), true)).unwrap(), "12.3 µs each: exits to the hypervisor (the host is a guest)");
        assert_eq!(cpuid_description(&host(None, false)), None, "not recorded (older run.json)");
    }
}
