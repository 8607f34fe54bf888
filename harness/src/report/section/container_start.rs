//! `## Container start phases`: where a container's start goes, from the
//! host's clock (the launcher's preparation, clone, mounts, cgroup, exec,
//! the agent's own start, shutdown, reap, cgroup removal), as medians over
//! every start of the run, like the vm's boot phases; and one table that
//! puts the three figures for a container start side by side: env.start as
//! this folder's driver measured it (`isobench run` or `cargo bench`),
//! `isobench startup`'s launcher column, and that plus the agent's own
//! start.

use crate::report::format::{ms, times};
use crate::report::phases::{clone_returned_ms, container_from_run, AGENT_START};
use crate::report::ReportError;
use crate::workloads::Noop;

use super::{Context, Section};

/// One table (and chart) per environment with container starts.
pub struct ContainerStartPhases;

impl Section for ContainerStartPhases {
    fn markdown(&self, cx: &Context<'_>) -> Result<String, ReportError> {
        let mut o = String::new();
        let startup = cx.dir.startup(Noop::Static)?;
        for p in container_from_run(cx.run) {
            o.push_str(&format!(
                "## Container start phases: {} ({} starts, host-measured medians)\n\n\
                 Each start's steps on the host's monotonic clock, from the start being asked for: the launcher stamps its own, the \
                 container's child stamps what only it sees (mounts done, placed in its cgroup, execve) into a page it shares with the \
                 launcher. Medians of the time between consecutive steps; the time between the agent's ready and the shutdown (the \
                 workload's, for the measured instance) is left out.\n\n| phase | ms |\n|---|---:|\n",
                p.label, p.n
            ));
            for (name, v) in &p.segments {
                o.push_str(&format!("| {name} | {} |\n", ms(*v)));
            }
            o.push_str(&format!("| **start → agent ready** | **{}** |\n", ms(p.ready_ms)));
            if let Some(c) = clone_returned_ms(cx.run, &p.env) {
                o.push_str(&format!("| clone(2) called → returned in the launcher (beside the child's steps) | {} |\n", ms(c)));
            }
            let whole: f64 = p.segments.iter().map(|s| s.1).sum();
            o.push_str(&format!("| sum of the medians (start → cgroup removed, without the workload) | {} |\n", ms(whole)));
            if let Some(svg) = cx.svg("container-start-phases").and_then(|p| p.file_name()) {
                o.push_str(&format!("\n![container start phases](plots/{})\n", svg.to_string_lossy()));
            }
            // The three figures for one container start, side by side.
            let env_start = cx.measurements.iter().find(|m| m.metric.name == "env.start" && m.env == p.env);
            let agent = p.segments.iter().find(|s| s.0 == AGENT_START).map(|s| s.1);
            let with_cgroup = p.segments.iter().any(|s| s.0.contains("cgroup"));
            let column = if with_cgroup { "isobench+cgroup" } else { "isobench" };
            let launcher = startup.as_ref().and_then(|r| r.row(column)).map(|r| r.quantile_ns(0.5) as f64 / 1e6);
            if env_start.is_some() || launcher.is_some() {
                let driver = cx.run.parameters.as_ref().and_then(|p| p.driver.clone()).unwrap_or_else(|| "isobench run".into());
                o.push_str(&format!(
                    "\n### One container start, three figures\n\nenv.start is one whole start and stop: asked to start → the agent's ready \
                     → shutdown asked at once → the init reaped → its cgroup removed. `isobench startup`'s `{column}` column times the \
                     same launch with a no-op in place of the agent, to its exit reaped and its cgroup removed; adding the agent's own \
                     start (the exec → ready phase above) should give env.start, less the no-op's own run and plus the agent's shutdown.\n\n\
                     | figure | p50 ms |\n|---|---:|\n"
                ));
                if let Some(m) = env_start {
                    o.push_str(&format!("| env.start, {} starts measured by {driver} | {} |\n", m.summary().n, ms(m.summary().p50)));
                }
                if let Some(l) = launcher {
                    o.push_str(&format!("| `isobench startup`: {column} (startup.json) | {} |\n", ms(l)));
                }
                if let (Some(l), Some(a)) = (launcher, agent) {
                    o.push_str(&format!("| {column} + the agent's own start ({}) | {} |\n", ms(a), ms(l + a)));
                    if let Some(m) = env_start {
                        o.push_str(&format!("| env.start ÷ ({column} + agent's start) | {} |\n", times(m.summary().p50 / (l + a))));
                    }
                }
                if launcher.is_none() {
                    o.push_str("\n(No startup.json here: `isobench startup --out DIR` adds the launcher's column.)\n");
                }
            }
            o.push('\n');
        }
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::Measurement;
    use crate::results::{RunDir, RunRecord};

    #[test]
    fn the_phases_table_and_the_three_figures() {
        let start = |n: u32, ready: f64| {
            serde_json::json!({"start": n, "clone_ms": 0.1, "namespaces_ready_ms": 1.0, "mounts_done_ms": 1.5, "cgroup_placed_ms": 1.6,
                               "exec_ms": 1.7, "agent_ready_ms": ready, "shutdown_requested_ms": ready, "reaped_ms": ready + 0.5, "cleaned_up_ms": ready + 0.8})
        };
        let run: RunRecord = serde_json::from_value(serde_json::json!({
            "parameters": {"driver": "cargo bench"},
            "environments": {"container": {"label": "container", "starts_all": [start(1, 2.7), start(2, 2.7), start(3, 2.7)]}}
        }))
        .unwrap();
        let d = tempfile::tempdir().unwrap();
        let dir = RunDir::at(d.path()).unwrap();
        let mut m = Measurement::new("container", "container", isobench_workloads::catalog::lookup("env.start").unwrap());
        for _ in 0..10 {
            m.histogram.record(3_500_000).unwrap();
        }
        m.iterations = 10;
        let ms_ = [m];
        let cx = Context { dir: &dir, run: &run, measurements: &ms_, plots: &[], warnings: &[] };
        let s = ContainerStartPhases.markdown(&cx).unwrap();
        assert!(s.contains("## Container start phases: container (3 starts"), "{s}");
        assert!(s.contains("| agent's own start (exec → ready) | 1.000 |"), "{s}");
        assert!(s.contains("| **start → agent ready** | **2.700** |"), "{s}");
        assert!(s.contains("| env.start, 10 starts measured by cargo bench | 3.500 |"), "{s}");
        assert!(s.contains("No startup.json here"), "{s}");
        let empty = Context { dir: &dir, run: &RunRecord::default(), measurements: &[], plots: &[], warnings: &[] };
        assert!(ContainerStartPhases.markdown(&empty).unwrap().is_empty());
    }
}
