//! Boot phases of environments that record them (the vm's `metadata.boots`
//! in run.json): host-measured QEMU start → first console output → agent
//! ready (/init reached) → workload done → QEMU exited, as medians over every
//! boot of the run, with the guest's own uptime at `ready` beside them
//! (Firecracker's boot-time method: measured from the host, from VMM start
//! to the guest's user space).

use crate::results::run::{BootRecord, RunRecord};

/// Firecracker's published target: guest boot to /init in ≤ 125 ms on KVM
/// (firecracker SPECIFICATION.md).
pub const FIRECRACKER_BOOT_MS: f64 = 125.0;

/// Phase medians of one environment.
#[derive(Debug, Clone, PartialEq)]
pub struct Phases {
    pub env: String,
    pub label: String,
    /// Boots measured.
    pub n: usize,
    /// (segment name, median duration in ms), in order; they add up to the
    /// median boot-to-exit time only approximately (medians of parts).
    pub segments: Vec<(&'static str, f64)>,
    /// Median QEMU start → agent ready, ms.
    pub ready_ms: f64,
    /// Median of the guest's CLOCK_BOOTTIME at ready, ms.
    pub guest_uptime_ms: Option<f64>,
    pub clocksource: Option<String>,
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 })
}

/// Phases of every environment in run.json that recorded boots.
pub fn from_run(run: &RunRecord) -> Vec<Phases> {
    let mut out = Vec::new();
    for (env, e) in &run.environments {
        // Every boot of the run when several processes wrote it, else the last one's.
        let Some(boots) = e.boots_all.as_ref().filter(|b| !b.is_empty()).or_else(|| e.meta(|m| m.boots.as_ref()).filter(|b| !b.is_empty())) else {
            continue;
        };
        let diffs = |a: fn(&BootRecord) -> Option<f64>, b: fn(&BootRecord) -> Option<f64>| -> Vec<f64> {
            boots.iter().filter_map(|x| Some(b(x)? - a(x).unwrap_or(0.0))).filter(|d| *d >= 0.0).collect()
        };
        let console = |b: &BootRecord| b.first_console_output_ms;
        let ready = |b: &BootRecord| Some(b.agent_ready_ms);
        let shutdown = |b: &BootRecord| b.shutdown_requested_ms;
        let exited = |b: &BootRecord| b.qemu_exited_ms;
        let mut segments = Vec::new();
        if let Some(m) = median(boots.iter().filter_map(console).collect()) {
            segments.push(("QEMU start → first console output", m));
            if let Some(m) = median(diffs(console, ready)) {
                segments.push(("console → agent ready (/init)", m));
            }
        } else if let Some(m) = median(boots.iter().filter_map(ready).collect()) {
            segments.push(("QEMU start → agent ready (/init)", m));
        }
        if let Some(m) = median(diffs(ready, shutdown)) {
            segments.push(("agent ready → workload done", m));
        }
        if let Some(m) = median(diffs(shutdown, exited)) {
            segments.push(("shutdown → QEMU exited", m));
        }
        let Some(ready_ms) = median(boots.iter().filter_map(ready).collect()) else { continue };
        out.push(Phases {
            env: env.clone(),
            label: e.label_or(env).to_string(),
            n: boots.len(),
            segments,
            ready_ms,
            guest_uptime_ms: median(boots.iter().map(|b| b.guest_uptime_at_ready_ms).collect()),
            clocksource: boots.iter().rev().find_map(|b| b.clocksource.clone()),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_of_each_segment() {
        let boot = |c: f64, r: f64, s: f64, q: f64| {
            serde_json::json!({"start": 1, "first_console_output_ms": c, "agent_ready_ms": r, "shutdown_requested_ms": s, "qemu_exited_ms": q,
                               "guest_uptime_at_ready_ms": r / 4.0, "clocksource": "tsc"})
        };
        let run: RunRecord = serde_json::from_value(serde_json::json!({"environments": {
            "vm": {"label": "vm (emulated (TCG))", "metadata": {"boots": [boot(100.0, 3000.0, 3010.0, 3030.0), boot(120.0, 3200.0, 3205.0, 3225.0), boot(110.0, 3100.0, 9000.0, 9020.0)]}},
            "native": {"label": "native"}
        }}))
        .unwrap();
        let p = from_run(&run);
        assert_eq!(p.len(), 1);
        let p = &p[0];
        assert_eq!((p.env.as_str(), p.n), ("vm", 3));
        assert_eq!(p.ready_ms, 3100.0);
        assert_eq!(p.segments[0], ("QEMU start → first console output", 110.0));
        assert_eq!(p.segments[1], ("console → agent ready (/init)", 2990.0));
        assert_eq!(p.segments[2], ("agent ready → workload done", 10.0));
        assert_eq!(p.segments[3], ("shutdown → QEMU exited", 20.0));
        assert_eq!(p.guest_uptime_ms, Some(775.0));
        assert!(from_run(&RunRecord::default()).is_empty());
    }
}
