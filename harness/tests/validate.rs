//! `isobench validate` live: every installed reference tool runs and yields a
//! finite figure beside isobench's own; a missing tool is listed, not fatal.
//! fio's rows run in a data directory of their own, gone afterwards.

use isobench_harness::env::{self, EnvKind, Options};
use isobench_harness::storage::RunData;
use isobench_harness::{validate, workloads};
use isobench_testkit::{trial, Need::*};

fn main() {
    isobench_testkit::run(vec![
        trial!(each_installed_tool_gives_a_figure_beside_isobench).needs(&[Perf, Iperf3, Hyperfine]),
        trial!(fio_gives_each_fs_row_a_figure_beside_isobench).needs(&[Fio]),
        trial!(redis_benchmark_and_wrk_give_each_app_row_a_figure_beside_isobench).needs(&[AppServers, AppLoadTools]),
    ]);
}

fn redis_benchmark_and_wrk_give_each_app_row_a_figure_beside_isobench() {
    let w = workloads::locate().expect("static workloads");
    let mut hosts = isobench_harness::boundary::HostSides::new(&w);
    let mut native = env::prepare(EnvKind::Native, &Options::new(w)).unwrap();
    let mut inst = native.start().unwrap();
    let checks = validate::apps(inst.as_mut(), &mut hosts, true);
    inst.shutdown().unwrap();
    let metrics: Vec<&str> = checks.iter().map(|c| c.metric.as_str()).collect();
    assert_eq!(metrics, ["app.redis.get", "app.redis.set", "app.nginx.1k", "app.nginx.64k"]);
    // GET reads the value its own SET row wrote, as isobench's GET reads one: not a missing key's nil.
    assert!(checks[0].tool.contains("-t set,get -d 64 -c 4 -P 16"), "{}", checks[0].tool);
    for c in &checks {
        let (t, i) = (
            c.tool_value.unwrap_or_else(|| panic!("{}: {}", c.metric, c.note)),
            c.isobench_value.unwrap_or_else(|| panic!("{}: {}", c.metric, c.note)),
        );
        assert!(t > 0.0 && i > 0.0 && t.is_finite() && i.is_finite(), "{c:?}");
        // The same server and load shape: the same order of magnitude (the
        // ±15 % verdict is the report's, on a quiet machine).
        let r = c.ratio.unwrap();
        assert!((0.2..5.0).contains(&r), "{}: isobench/tool = {r}: {c:?}", c.metric);
        assert_eq!(c.unit, "req/s");
    }
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

fn fio_gives_each_fs_row_a_figure_beside_isobench() {
    // the target dir is on a disk file system (O_DIRECT), unlike a tmpfs /tmp
    let data = RunData::create(std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))).unwrap();
    let dir = data.path().to_path_buf();
    let w = workloads::locate().expect("static workloads");
    let mut native = env::prepare(EnvKind::Native, &Options::new(w)).unwrap();
    let mut inst = native.start().unwrap();
    let checks = validate::storage(inst.agent(), &dir, true);
    inst.shutdown().unwrap();
    let metrics: Vec<&str> = checks.iter().map(|c| c.metric.as_str()).collect();
    assert_eq!(metrics, ["fs.rand_read", "fs.rand_write", "fs.seq_read_bw", "fs.seq_write_bw"]);
    for c in &checks {
        assert!(c.tool.starts_with("fio ") && c.tool.contains("--direct=1") && c.tool.contains("--ioengine=psync"), "{c:?}");
        let t = c.tool_value.unwrap_or_else(|| panic!("{}: fio gave no figure: {}", c.metric, c.note));
        let v = c.isobench_value.unwrap_or_else(|| panic!("{}: no isobench figure: {}", c.metric, c.note));
        assert!(t.is_finite() && t > 0.0 && v.is_finite() && v > 0.0, "{c:?}");
        assert!(c.ratio.is_some_and(f64::is_finite) && c.within_tolerance.is_some(), "{c:?}");
    }
    // fio's file went with each round; the directory goes with the RunData
    assert_eq!(std::fs::read_dir(&dir).unwrap().filter_map(Result::ok).filter(|e| e.file_name() == "fio.dat").count(), 0);
    drop(data);
    assert!(!dir.exists(), "{} outlived its RunData", dir.display());
}
