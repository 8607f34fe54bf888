//! Boot phases of environments that record them (the vm's `metadata.boots`
//! in run.json): host-measured QEMU start → first console output → agent
//! ready (/init reached) → workload done → QEMU exited, as medians over every
//! boot of the run, with the guest's own uptime at `ready` beside them
//! (Firecracker's boot-time method: measured from the host, from VMM start
//! to the guest's user space); and the container's start phases
//! (`metadata.starts`, [`container_from_run`]) the same way.

use crate::results::run::{BootRecord, ContainerStartRecord, RunRecord};

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

/// Container start phases (from `starts_all`, else `metadata.starts`):
/// one [`Phases`] per environment with starts, whose segments are the
/// medians of the time to each step from the step before it, in the order
/// they happen: the launcher's preparation to clone(2), then the child's
/// steps (mounts done, placed in its cgroup, execve: in the order each start
/// took them), the agent's own start, and after the shutdown the reap and
/// the cgroup's removal (the time between the agent's ready and the
/// shutdown, the workload's, is left out). clone(2) returning in the parent
/// overlaps the child's steps, so it is not a segment: [`clone_returned_ms`]
/// gives it. `ready_ms` is the median start → agent ready.
pub fn container_from_run(run: &RunRecord) -> Vec<Phases> {
    let mut out = Vec::new();
    for (env, e) in &run.environments {
        let Some(starts) = container_starts(e) else { continue };
        let segments = CONTAINER_SEGMENTS
            .iter()
            .filter_map(|name| {
                let v: Vec<f64> = starts.iter().filter_map(|r| segments(r).into_iter().find(|s| s.0 == *name).map(|s| s.1)).collect();
                Some((*name, median(v)?))
            })
            .collect();
        let Some(ready_ms) = median(starts.iter().map(|r| r.agent_ready_ms).collect()) else { continue };
        out.push(Phases {
            env: env.clone(),
            label: e.label_or(env).to_string(),
            n: starts.len(),
            segments,
            ready_ms,
            guest_uptime_ms: None,
            clocksource: None,
        });
    }
    out
}

/// The median time from clone(2) called to clone(2) returned in the
/// launcher, over `env`'s starts.
pub fn clone_returned_ms(run: &RunRecord, env: &str) -> Option<f64> {
    let starts = container_starts(run.environments.get(env)?)?;
    median(starts.iter().map(|r| r.namespaces_ready_ms - r.clone_ms).collect())
}

fn container_starts(e: &crate::results::run::EnvRecord) -> Option<&Vec<ContainerStartRecord>> {
    e.starts_all.as_ref().filter(|s| !s.is_empty()).or_else(|| e.meta(|m| m.starts.as_ref()).filter(|s| !s.is_empty()))
}

/// The container's segments, by the step each ends at, in table order.
pub const CONTAINER_SEGMENTS: [&str; 7] = [
    "launcher's preparation (→ clone)",
    "clone(2) → namespaces, mounts, host name, loopback done",
    "→ placed in its cgroup",
    "→ execve of the agent",
    AGENT_START,
    AGENT_STOP,
    "→ cgroup read and removed",
];

/// The segment whose median is the agent's own start.
pub const AGENT_START: &str = "agent's own start (exec → ready)";

/// The segment whose median is the agent's shutdown: asked to stop → its
/// exit reaped.
pub const AGENT_STOP: &str = "shutdown → init reaped";

/// One start's segments: (name, ms from the step before).
fn segments(r: &ContainerStartRecord) -> Vec<(&'static str, f64)> {
    let mut child: Vec<(&'static str, f64)> =
        [(CONTAINER_SEGMENTS[1], r.mounts_done_ms), (CONTAINER_SEGMENTS[2], r.cgroup_placed_ms), (CONTAINER_SEGMENTS[3], r.exec_ms)]
            .into_iter()
            .filter_map(|(n, t)| Some((n, t?)))
            .collect();
    child.sort_by(|a, b| a.1.total_cmp(&b.1));
    let mut steps = vec![("", 0.0), (CONTAINER_SEGMENTS[0], r.clone_ms)];
    steps.extend(child);
    steps.push((AGENT_START, r.agent_ready_ms));
    let mut out: Vec<(&'static str, f64)> = steps.windows(2).map(|w| (w[1].0, (w[1].1 - w[0].1).max(0.0))).collect();
    if let (Some(shutdown), Some(reaped)) = (r.shutdown_requested_ms, r.reaped_ms) {
        out.push((CONTAINER_SEGMENTS[5], (reaped - shutdown).max(0.0)));
        if let Some(clean) = r.cleaned_up_ms.filter(|_| r.cgroup_placed_ms.is_some()) {
            out.push((CONTAINER_SEGMENTS[6], (clean - reaped).max(0.0)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_segments_are_medians_between_steps_without_the_workload() {
        let start = |n: u32, k: f64, shutdown: f64| {
            serde_json::json!({"start": n, "clone_ms": 0.1 * k, "namespaces_ready_ms": 1.0 * k, "mounts_done_ms": 1.5 * k, "cgroup_placed_ms": 1.6 * k,
                               "exec_ms": 1.7 * k, "agent_ready_ms": 2.5 * k, "shutdown_requested_ms": shutdown, "reaped_ms": shutdown + 0.5,
                               "cleaned_up_ms": shutdown + 0.8})
        };
        // A start whose launcher was scheduled back after its child had done its mounts.
        let late = serde_json::json!({"start": 4, "clone_ms": 0.1, "namespaces_ready_ms": 3.0, "mounts_done_ms": 1.6, "cgroup_placed_ms": 3.1,
                                      "exec_ms": 3.2, "agent_ready_ms": 4.0, "shutdown_requested_ms": 4.0, "reaped_ms": 4.5, "cleaned_up_ms": 4.8});
        let run: RunRecord = serde_json::from_value(serde_json::json!({"environments": {
            "container": {"label": "container", "starts_all": [start(1, 2.0, 5000.0), start(2, 1.0, 2.5), start(3, 1.0, 2.5), late]}
        }}))
        .unwrap();
        let p = &container_from_run(&run)[0];
        assert_eq!((p.env.as_str(), p.n, p.ready_ms), ("container", 4, 3.25));
        let names: Vec<&str> = p.segments.iter().map(|s| s.0).collect();
        assert_eq!(names, CONTAINER_SEGMENTS);
        let seg = |n: &str| p.segments.iter().find(|s| s.0 == n).unwrap().1;
        // clone → mounts done: 1.4 (k = 1), 1.4, 2.8 (k = 2), 1.5: median 1.45.
        assert!((seg("clone(2) → namespaces, mounts, host name, loopback done") - 1.45).abs() < 1e-9, "{:?}", p.segments);
        assert!((seg("shutdown → init reaped") - 0.5).abs() < 1e-9, "the 5 s workload of the measured instance is left out");
        // clone → returned: 1.8, 0.9, 0.9, 2.9: median 1.35.
        assert!((clone_returned_ms(&run, "container").unwrap() - 1.35).abs() < 1e-9);
        assert!(from_run(&run).is_empty(), "no boots");
    }

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
