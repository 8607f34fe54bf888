//! `## Container start phases`: where a container's start goes, from the
//! host's clock (the launcher's preparation, clone, mounts, cgroup, exec,
//! the agent's own start, shutdown, reap, cgroup removal), as medians over
//! every start of the run, like the vm's boot phases; and one table that
//! puts the three figures for a container start side by side: env.start as
//! this folder's driver measured it (`isobench run` or `cargo bench`),
//! `isobench startup`'s launcher column, and that plus the agent's own
//! start.

use crate::collect::interval::{self, Z95, Z975};
use crate::collect::Measurement;
use crate::report::format::{ms, times};
use crate::report::phases::{clone_returned_ms, container_from_run, AGENT_START, AGENT_STOP};
use crate::report::ReportError;
use crate::results::startup::StartupRow;
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
            let segment = |name: &str| p.segments.iter().find(|s| s.0 == name).map(|s| s.1);
            let with_cgroup = p.segments.iter().any(|s| s.0.contains("cgroup"));
            let column = if with_cgroup { "isobench+cgroup" } else { "isobench" };
            let launcher = startup.as_ref().and_then(|r| r.row(column));
            if env_start.is_some() || launcher.is_some() {
                let driver = cx.run.parameters.as_ref().and_then(|p| p.driver.clone()).unwrap_or_else(|| "isobench run".into());
                o.push_str(&three_figures(column, &driver, env_start, launcher, segment(AGENT_START), segment(AGENT_STOP)));
            }
            o.push('\n');
        }
        Ok(o)
    }
}

/// The table of the three figures for one container start: env.start as
/// `driver` measured it, `isobench startup`'s launcher `column`, and that
/// column made into the same interval: less the no-op's own run (its execve
/// → its exit reaped, recorded per sample), plus the agent's own start
/// (execve → ready) and its shutdown (shutdown → reaped) from this run's
/// phases. Medians with their 95 % intervals; the ratio's interval from the
/// two medians' intervals at 97.5 % ([`interval::ratio_ci`]).
fn three_figures(
    column: &str,
    driver: &str,
    env_start: Option<&Measurement>,
    launcher: Option<&StartupRow>,
    agent_start: Option<f64>,
    agent_stop: Option<f64>,
) -> String {
    let ns_ms = |ns: u64| ns as f64 / 1e6;
    let range = |(lo, hi): (f64, f64)| format!("{}–{}", ms(lo), ms(hi));
    let mut o = format!(
        "\n### One container start, three figures\n\nenv.start is one whole start and stop: asked to start → the agent's ready \
         → shutdown asked at once → the init reaped → its cgroup removed. `isobench startup`'s `{column}` column times the \
         same launch with a no-op in place of the agent: spawn → the no-op's exit reaped → its cgroup removed. Made into \
         env.start's interval it loses the no-op's own run (its execve → its exit reaped, stamped in every sample) and gains \
         the agent's own start (execve → ready) and the agent's shutdown (shutdown → init reaped), medians of this run's \
         phases above. Medians, with 95 % intervals.\n\n| figure | p50 ms | 95 % interval |\n|---|---:|---:|\n"
    );
    if let Some(m) = env_start {
        let (lo, hi) = interval::median_ci(&m.histogram, Z95);
        let n = m.summary().n;
        o.push_str(&format!("| env.start, {n} starts measured by {driver} | {} | {} |\n", ms(m.summary().p50), range((ns_ms(lo), ns_ms(hi)))));
    }
    let Some(row) = launcher else {
        o.push_str("\n(No startup.json here: `isobench startup --out DIR` adds the launcher's column.)\n");
        return o;
    };
    let (lo, hi) = row.median_ci_ns();
    let p50 = ns_ms(row.quantile_ns(0.5));
    o.push_str(&format!(
        "| `isobench startup`: {column}, {} rounds (startup.json) | {} | {} |\n",
        row.samples_ns.len(),
        ms(p50),
        range((ns_ms(lo), ns_ms(hi)))
    ));
    let (Some(command), Some(start), Some(stop)) = (row.command_p50_ns().map(ns_ms), agent_start, agent_stop) else {
        o.push_str(
            "\n(The launcher's column and env.start are not one interval without the no-op's own run, recorded by `isobench startup` \
             since issue #14, and the agent's start and shutdown phases: no sum shown.)\n",
        );
        return o;
    };
    let shift = start + stop - command;
    o.push_str(&format!("| − the no-op's own run (execve → exit reaped) | {} | |\n", ms(command)));
    o.push_str(&format!("| + the agent's own start (execve → ready) | {} | |\n", ms(start)));
    o.push_str(&format!("| + the agent's shutdown (shutdown → init reaped) | {} | |\n", ms(stop)));
    o.push_str(&format!("| = {column} as one env.start | **{}** | {} |\n", ms(p50 + shift), range((ns_ms(lo) + shift, ns_ms(hi) + shift))));
    if let Some(m) = env_start {
        let p = m.summary().p50;
        let (elo, ehi) = interval::median_ci(&m.histogram, Z975);
        let (llo, lhi) = row.median_ci_at(Z975);
        let ci = interval::ratio_ci((ns_ms(elo), ns_ms(ehi)), (ns_ms(llo) + shift, ns_ms(lhi) + shift));
        o.push_str(&format!(
            "| env.start ÷ ({column} as one env.start) | **{}** | {} |\n",
            times(p / (p50 + shift)),
            ci.map_or_else(String::new, |(a, b)| format!("{}–{}", times(a), times(b)))
        ));
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
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
        // With startup's launcher column: its no-op's own run out, the
        // agent's start and shutdown in (0.9 ms and 0.4 ms in `start` above).
        let row = StartupRow {
            env: "isobench+cgroup".into(),
            label: "isobench+cgroup".into(),
            command: String::new(),
            samples_ns: vec![3_000_000; 20],
            command_ns: vec![600_000; 20],
        };
        let t = three_figures("isobench+cgroup", "cargo bench", Some(&ms_[0]), Some(&row), Some(1.0), Some(0.5));
        assert!(t.contains("| `isobench startup`: isobench+cgroup, 20 rounds (startup.json) | 3.000 | 3.000–3.000 |"), "{t}");
        assert!(t.contains("| − the no-op's own run (execve → exit reaped) | 0.600 | |"), "{t}");
        assert!(t.contains("| = isobench+cgroup as one env.start | **3.900** | 3.900–3.900 |"), "{t}");
        assert!(t.contains("| env.start ÷ (isobench+cgroup as one env.start) | **0.90×** |"), "{t}");
        // A startup.json from before the no-op's run was recorded: no sum.
        let old = StartupRow { command_ns: Vec::new(), ..row };
        let t = three_figures("isobench+cgroup", "cargo bench", Some(&ms_[0]), Some(&old), Some(1.0), Some(0.5));
        assert!(!t.contains("as one env.start |") && t.contains("no sum shown"), "{t}");
        let empty = Context { dir: &dir, run: &RunRecord::default(), measurements: &[], plots: &[], warnings: &[] };
        assert!(ContainerStartPhases.markdown(&empty).unwrap().is_empty());
    }
}
