//! The measured instances themselves: how long each took to its first
//! agent-ready (one cold sample per environment), and what it used as its
//! cgroup accounts it.

use std::fmt::Write;

use crate::report::columns::env_order;
use crate::report::format::num;
use crate::report::ReportError;

use super::{Context, Section};

/// `## First start of each measured instance`.
pub struct FirstStart;

impl Section for FirstStart {
    fn markdown(&self, cx: &Context<'_>) -> Result<String, ReportError> {
        let mut o = String::new();
        let mut starts: Vec<_> = cx.run.environments.iter().filter_map(|(n, e)| e.start_ms.map(|v| (n, e, v))).collect();
        starts.sort_by_key(|(n, _, _)| env_order(n));
        if !starts.is_empty() {
            let _ = writeln!(o, "## First start of each measured instance (host-timed: start → agent ready)\n");
            let warm = match cx.measurements.iter().any(|m| m.metric.name == "env.start") {
                true => "; `env.start` above has the distribution of warm starts",
                false => "",
            };
            let _ = writeln!(o, "One cold sample per environment (first page-cache, cgroup and rootfs touches included){warm}.\n");
            let _ = writeln!(o, "| environment | start → agent ready (ms) |\n|---|---:|");
            for (n, e, v) in starts {
                let _ = writeln!(o, "| {} | {} |", e.label_or(n), num(v));
            }
            o.push('\n');
        }
        Ok(o)
    }
}

/// `## Resources the measured instance used`.
pub struct Usage;

impl Section for Usage {
    fn markdown(&self, cx: &Context<'_>) -> Result<String, ReportError> {
        let mut o = String::new();
        let used: Vec<_> = cx.run.environments.iter().filter_map(|(n, e)| e.usage.as_ref().map(|u| (n, e, u))).collect();
        if !used.is_empty() {
            let _ = writeln!(o, "## Resources the measured instance used (its cgroup's accounting)\n");
            let _ =
                writeln!(o, "| environment | CPU time (s) | peak memory (MiB) | OOM kills | forks refused (pids limit) |\n|---|---:|---:|---:|---:|");
            for (n, e, u) in used {
                let f = |v: Option<u64>, scale: f64| v.map_or("–".to_string(), |v| num(v as f64 / scale));
                let count = |v: Option<u64>| v.map_or("–".to_string(), |v| v.to_string());
                let _ = writeln!(
                    o,
                    "| {} | {} | {} | {} | {} |",
                    e.label_or(n),
                    f(u.cpu_ns, 1e9),
                    f(u.memory_peak_bytes, 1048576.0),
                    count(u.oom_kills),
                    count(u.pids_limit_hits)
                );
            }
            o.push('\n');
        }
        Ok(o)
    }
}
