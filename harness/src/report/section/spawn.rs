//! The note under the spawn rows that exec the no-op (`spawn.fork_exec`,
//! `spawn.posix_spawn`): what each environment's agent exec'd and from
//! where, as it reported it (run.json's `environments.<env>.agent.spawn`),
//! and what still differs between the columns.

use crate::report::columns::env_order;
use crate::results::run::RunRecord;

/// The metrics whose operation execs the no-op.
pub const EXECS_THE_NOOP: [&str; 2] = ["spawn.fork_exec", "spawn.posix_spawn"];

/// The note for `metric`'s table, when it execs the no-op and at least one
/// agent said what it exec'd.
pub fn note(run: &RunRecord, metric: &str) -> Option<String> {
    if !EXECS_THE_NOOP.contains(&metric) {
        return None;
    }
    let mut envs: Vec<_> = run.environments.iter().filter_map(|(name, e)| Some((name, e, e.agent.as_ref()?.spawn.as_ref()?))).collect();
    if envs.is_empty() {
        return None;
    }
    envs.sort_by_key(|(name, ..)| env_order(name));
    let native = envs.iter().find(|(name, ..)| name.as_str() == "native").map(|(_, _, t)| (t.dev, t.ino));
    let mut where_ = Vec::new();
    for (name, e, t) in &envs {
        let same = match native {
            Some(file) if name.as_str() != "native" && (t.dev, t.ino) == file && t.ino != 0 => ", the same file as native's",
            _ => "",
        };
        let env = if t.envp.is_empty() { String::new() } else { format!(", environment {}", t.envp.join(" ")) };
        where_.push(format!("{}: `{}` in `{}` ({}{same}{env})", e.label_or(name), t.path, t.dir, t.fs));
    }
    let paths: Vec<&str> = envs.iter().map(|(_, _, t)| t.path.as_str()).collect();
    let one_path = paths.windows(2).all(|w| w[0] == w[1]);
    let mut s = String::from("Like with like: ");
    s += if one_path {
        "every agent execs the no-op by the same relative path from the no-op's own directory (its working directory for the loop), so the path walk is one lookup however deep the directory, "
    } else {
        "the agents exec the no-op by different paths (an agent older than this report's isobench), "
    };
    s += &format!(
        "with an empty environment. Where: {}. What still differs: a container's agent forks in its own pid namespace (a pid allocated at each level) and is charged to its own cgroup (memory, cpuacct); its no-op is on a read-only bind of the rootfs; a guest's runs under another kernel (and, under TCG, emulated).",
        where_.join("; ")
    );
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_note_names_each_agents_noop_and_the_shared_file() {
        let target = |dir: &str, fs: &str, ino: u64| serde_json::json!({"path": "./noop", "dir": dir, "envp": [], "fs": fs, "dev": 7, "ino": ino});
        let agent = |t: serde_json::Value| serde_json::json!({"pid": 1, "hostname": "h", "kernel": "k", "clocksource": null, "uptime_s": 1.0, "timer_overhead_ns": 20.0, "version": "0", "metrics": [], "spawn": t});
        let run: RunRecord = serde_json::from_value(serde_json::json!({"environments": {
            "native": {"label": "native", "agent": agent(target("/c/rootfs/minimal-1", "ext4", 42))},
            "container": {"label": "container", "agent": agent(target("/", "ext4", 42))},
            "vm": {"label": "vm (emulated (TCG))", "agent": agent(target("/", "ramfs", 9))}
        }}))
        .unwrap();
        let n = note(&run, "spawn.fork_exec").unwrap();
        assert!(n.contains("native: `./noop` in `/c/rootfs/minimal-1` (ext4); container: `./noop` in `/` (ext4, the same file as native's); vm (emulated (TCG)): `./noop` in `/` (ramfs)"), "{n}");
        assert!(n.contains("same relative path"), "{n}");
        assert_eq!(note(&run, "spawn.fork_exit"), None, "fork_exit execs nothing");
        assert_eq!(note(&RunRecord::default(), "spawn.fork_exec"), None);
    }
}
