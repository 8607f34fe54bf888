//! `isobench validate` live: every installed reference tool runs and yields a
//! finite figure beside isobench's own; a missing tool is listed, not fatal.

use isobench_harness::env::{self, EnvKind, Options};
use isobench_harness::{validate, workloads};
use isobench_testkit::{trial, Need::*};

fn main() {
    isobench_testkit::run(vec![trial!(each_installed_tool_gives_a_figure_beside_isobench).needs(&[Perf, Iperf3, Hyperfine])]);
}

fn installed(tool: &str) -> bool {
    std::process::Command::new(tool).arg("--version").output().is_ok_and(|o| o.status.success())
}

fn each_installed_tool_gives_a_figure_beside_isobench() {
    let w = workloads::locate().expect("static workloads");
    let noop = w.noop.clone();
    let mut native = env::prepare(EnvKind::Native, &Options::new(w)).unwrap();
    let mut inst = native.start().unwrap();
    let checks = validate::run(inst.agent(), &noop, true);
    inst.shutdown().unwrap();
    let metrics: Vec<&str> = checks.iter().map(|c| c.metric.as_str()).collect();
    assert_eq!(metrics, ["syscall.getpid", "ipc.pipe_rtt", "net.tcp_stream", "spawn.fork_exec", "spawn.posix_spawn"]);
    for c in &checks {
        let v = c.isobench_value.unwrap_or_else(|| panic!("{}: no isobench figure: {}", c.metric, c.note));
        assert!(v.is_finite() && v > 0.0, "{c:?}");
        let tool = c.tool.split_whitespace().find(|w| ["perf", "iperf3", "hyperfine"].contains(w)).unwrap();
        if installed(tool) {
            let t = c.tool_value.unwrap_or_else(|| panic!("{}: {tool} is installed but gave no figure: {}", c.metric, c.note));
            assert!(t.is_finite() && t > 0.0, "{c:?}");
            assert!(c.ratio.is_some_and(f64::is_finite) && c.within_tolerance.is_some(), "{c:?}");
        } else {
            assert!(c.tool_value.is_none() && c.note.contains("not installed"), "{c:?}");
        }
    }
    // nothing of the tools is left running (iperf3's one-off server exits or is killed)
    let left = std::process::Command::new("pgrep").args(["-x", "iperf3"]).output().unwrap();
    assert!(String::from_utf8_lossy(&left.stdout).trim().is_empty(), "iperf3 left running");
}
