//! `## Boot phases`: where a guest's start goes, from the host's clock
//! (QEMU start → first console output → agent ready → workload done → QEMU
//! exited), beside Firecracker's published target.

use crate::report::format::num;
use crate::report::phases::{from_run, FIRECRACKER_BOOT_MS};
use crate::report::ReportError;

use super::{Context, Section};

/// One boot-phase table per environment that recorded boots.
pub struct BootPhases;

impl Section for BootPhases {
    fn markdown(&self, cx: &Context<'_>) -> Result<String, ReportError> {
        let mut o = String::new();
        for p in from_run(cx.run) {
            o.push_str(&format!("## Boot phases: {} ({} boots, host-measured medians)\n\n| phase | ms |\n|---|---:|\n", p.label, p.n));
            for (name, ms) in &p.segments {
                o.push_str(&format!("| {name} | {} |\n", num(*ms)));
            }
            o.push_str(&format!("| **QEMU start → agent ready** | **{}** |\n", num(p.ready_ms)));
            if let Some(u) = p.guest_uptime_ms {
                o.push_str(&format!("| guest's own uptime at ready (CLOCK_BOOTTIME) | {} |\n", num(u)));
            }
            o.push_str(&format!(
                "\nReference: Firecracker boots a microVM to /init in ≤ {FIRECRACKER_BOOT_MS:.0} ms on KVM (its SPECIFICATION.md); this guest took {} ms as {}.",
                num(p.ready_ms),
                p.label
            ));
            if let Some(c) = &p.clocksource {
                o.push_str(&format!(" Guest clocksource: {c} (in-guest timings are only as good as this clock)."));
            }
            o.push_str("\n\n![boot phases](plots/boot-phases.svg)\n\n");
        }
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::{RunDir, RunRecord};

    #[test]
    fn a_vms_boots_get_a_table_and_nothing_else_does() {
        let boot = |r: f64| {
            serde_json::json!({"start": 1, "first_console_output_ms": 100.0, "agent_ready_ms": r, "shutdown_requested_ms": null,
                                               "qemu_exited_ms": null, "guest_uptime_at_ready_ms": 50.0, "clocksource": "tsc"})
        };
        let run: RunRecord = serde_json::from_value(serde_json::json!({"environments": {
            "vm": {"label": "vm (emulated (TCG))", "metadata": {"boots": [boot(3000.0), boot(3200.0), boot(3100.0)]}}
        }}))
        .unwrap();
        let d = tempfile::tempdir().unwrap();
        let dir = RunDir::at(d.path()).unwrap();
        let cx = |run| Context { dir: &dir, run, measurements: &[], plots: &[], warnings: &[] };
        let s = BootPhases.markdown(&cx(&run)).unwrap();
        assert!(s.contains("| **QEMU start → agent ready** | **3100** |") && s.contains("125 ms"), "{s}");
        assert!(BootPhases.markdown(&cx(&RunRecord::default())).unwrap().is_empty());
    }
}
