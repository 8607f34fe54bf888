//! `isobench density` end to end: a container storm's memory figures and
//! its failures, the safety margin (through the MemAvailable test hook),
//! and that nothing a storm started outlives it, after SIGINT (clean, 130)
//! and after SIGKILL (the next start sweeps).

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use isobench_testkit::trial;
use isobench_testkit::Need::{Busybox, GuestImage, Qemu, Root, Runc};

fn main() {
    isobench_testkit::run(vec![
        trial!(a_container_storm_of_20_at_c2_has_no_failure_and_every_instance_its_memory).needs(&[Root, Busybox]),
        trial!(the_sum_of_the_instances_pss_is_the_memavailable_falls_order_of_magnitude).needs(&[Root, Busybox]),
        trial!(the_safety_margin_stops_a_storm_and_says_how_far_it_got).needs(&[Root, Busybox]),
        trial!(sigint_mid_storm_exits_130_and_stops_every_instance).needs(&[Root, Busybox, Runc]),
        trial!(sigkill_mid_storm_leaves_nothing_after_the_next_start).needs(&[Root, Busybox, Runc]),
        trial!(a_vm_storm_records_the_guests_ram_and_translation_cache_and_leaves_no_qemu).needs(&[Root, Qemu, GuestImage]),
        trial!(bad_density_options_are_one_line),
    ]);
}

fn isobench() -> Command {
    Command::new(env!("CARGO_BIN_EXE_isobench"))
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn density_json(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("density.json")).unwrap()).unwrap()
}

/// `isobench density --env container` with `args`, into `out`.
fn container_density(out: &Path, args: &[&str]) -> Output {
    isobench().args(["density", "--quiet", "--env", "container", "--out"]).arg(out).args(args).output().unwrap()
}

fn env<'a>(run: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    run["envs"].as_array().unwrap().iter().find(|e| e["env"] == name).unwrap_or_else(|| panic!("no {name} in {run}"))
}

fn a_container_storm_of_20_at_c2_has_no_failure_and_every_instance_its_memory() {
    let d = tempfile::tempdir().unwrap();
    let o = container_density(d.path(), &["--instances", "20", "--concurrency", "2", "--idle-window", "300"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let run = density_json(d.path());
    let schema = isobench().args(["schema", "density"]).output().unwrap();
    let schema: serde_json::Value = serde_json::from_slice(&schema.stdout).unwrap();
    assert!(jsonschema::is_valid(&schema, &run), "density.json does not fit `isobench schema density`");
    for name in ["native", "container"] {
        let s = &env(&run, name)["storms"][0];
        assert_eq!((s["requested"].as_u64(), s["concurrency"].as_u64(), s["ready"].as_u64()), (Some(20), Some(2), Some(20)), "{name}: {s}");
        assert!(s["failures"].as_array().unwrap().is_empty() && s["stopped"].is_null(), "{name}: {s}");
        assert_eq!(s["latencies_ns"].as_array().unwrap().len(), 20);
        let all_ready = s["all_ready_ns"].as_u64().unwrap();
        assert!(s["latencies_ns"].as_array().unwrap().iter().all(|l| (1..=all_ready).contains(&l.as_u64().unwrap())), "{s}");
        let m = &s["memory"];
        let (pss, uss) = (m["pss_kib"].as_array().unwrap(), m["uss_kib"].as_array().unwrap());
        assert_eq!((pss.len(), uss.len()), (20, 20), "{m}");
        for (p, u) in pss.iter().zip(uss) {
            let (p, u) = (p.as_u64().unwrap(), u.as_u64().unwrap());
            assert!(u > 0 && u <= p, "{name}: every instance has memory of its own (USS {u} KiB ≤ PSS {p} KiB)");
        }
        // One process per instance: the agent (natively, and as the container's init).
        assert_eq!(m["processes"].as_u64(), Some(20), "{m}");
        assert!(s["idle"]["window_ns"].as_u64().unwrap() >= 300_000_000, "{s}");
    }
    let report = std::fs::read_to_string(d.path().join("report.md")).unwrap();
    assert!(report.contains("## How many fit") && report.contains("| container (default) | 2 | 20 | 20 | 0 |"), "{report}");
    assert!(d.path().join("plots/density-start-latency.svg").exists() && d.path().join("plots/density-throughput.png").exists());
}

/// Per storm: the MemAvailable fall and rise averaged (a drift of the
/// machine's other use between the readings cancels), over N, KiB.
fn fall_per_instance_kib(m: &serde_json::Value) -> f64 {
    let kib = |k: &str| m[k].as_u64().unwrap() as f64;
    let n = m["instances"].as_u64().unwrap() as f64;
    ((kib("available_before_kib") - kib("available_loaded_kib")) + (kib("available_after_kib") - kib("available_loaded_kib"))) / 2.0 / n
}

fn the_sum_of_the_instances_pss_is_the_memavailable_falls_order_of_magnitude() {
    let d = tempfile::tempdir().unwrap();
    // Six storms of 100: MemAvailable is the whole machine's, and the other
    // tests running beside this one (a guest booting, a storm of their own)
    // move it by more than 100 containers take; a quiet storm among six
    // shows the fall, and a unit slip (bytes for KiB) fails all six alike.
    let o = container_density(d.path(), &["--instances", "100", "--concurrency", "8,8,8,8,8,8", "--idle-window", "0"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let run = density_json(d.path());
    let storms = env(&run, "container")["storms"].as_array().unwrap();
    assert_eq!(storms.len(), 6);
    let ratios: Vec<f64> = storms
        .iter()
        .map(|s| {
            let m = &s["memory"];
            let pss: u64 = m["pss_kib"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).sum();
            assert!(pss > 0, "{m}");
            fall_per_instance_kib(m) * m["instances"].as_f64().unwrap() / pss as f64
        })
        .collect();
    assert!(ratios.iter().any(|r| (0.1..=10.0).contains(r)), "the MemAvailable fall over the PSS sum, per storm: {ratios:?}");
}

fn the_safety_margin_stops_a_storm_and_says_how_far_it_got() {
    let d = tempfile::tempdir().unwrap();
    // 2100 MiB, 10 MiB less per instance, 2048 kept: the fifth instance
    // leaves 2050 and a sixth would leave about 2040.
    let o = isobench()
        .args([
            "density",
            "--quiet",
            "--env",
            "container",
            "--instances",
            "20",
            "--concurrency",
            "1",
            "--idle-window",
            "0",
            "--min-available",
            "2048",
            "--out",
        ])
        .arg(d.path())
        .env("ISOBENCH_TEST_MEMAVAILABLE_MIB", "2100:10")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let run = density_json(d.path());
    assert_eq!(run["min_available_mib"], 2048);
    for name in ["native", "container"] {
        let s = &env(&run, name)["storms"][0];
        assert_eq!(s["ready"].as_u64(), Some(5), "{name}: {s}");
        let why = s["stopped"].as_str().unwrap();
        assert!(why.starts_with("safety margin:") && why.contains("stopped after 5 of 20 starts") && why.contains("2048 MiB kept free"), "{why}");
    }
    let report = std::fs::read_to_string(d.path().join("report.md")).unwrap();
    assert!(report.contains("C=1: stopped after 5 ready: safety margin"), "{report}");
}

/// Every pid under `root`.
fn descendants(root: u32) -> Vec<i32> {
    let mut children: std::collections::BTreeMap<i32, Vec<i32>> = Default::default();
    for p in procfs::process::all_processes().unwrap().flatten() {
        if let Ok(s) = p.stat() {
            children.entry(s.ppid).or_default().push(s.pid);
        }
    }
    let mut out = Vec::new();
    let mut todo = vec![root as i32];
    while let Some(p) = todo.pop() {
        out.extend(children.get(&p).into_iter().flatten());
        todo.extend(children.get(&p).into_iter().flatten());
    }
    out
}

fn running(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.rsplit_once(") ").is_some_and(|(_, a)| !a.starts_with('Z')))
}

/// A storm of container and runc instances, 400 each at C=2 (far more than
/// can start before `signal`), signalled once at least `held` processes run
/// under isobench; returns isobench's pid, the tree it had, and its output.
fn signalled_mid_storm(out: &Path, signal: nix::sys::signal::Signal) -> (u32, Vec<i32>, Output) {
    let child = isobench()
        .args(["density", "--quiet", "--env", "container,runc", "--instances", "400", "--concurrency", "2", "--idle-window", "0", "--out"])
        .arg(out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    // Mid-storm: in runc's storm (native's and the container's are done, their
    // instances stopped), with instances running.
    let t0 = Instant::now();
    let mut tree;
    loop {
        tree = descendants(pid);
        let in_runc = tree.iter().any(|p| std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == "runc"));
        if in_runc && tree.len() >= 10 {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(120), "the storm never got to runc with instances: {tree:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), signal).unwrap();
    let o = child.wait_with_output().unwrap();
    (pid, tree, o)
}

/// What of run `pid` is left: processes of `tree`, temp dirs, cgroups and
/// network namespaces named `isobench-<pid>-…`.
fn left_of(pid: u32, tree: &[i32]) -> Vec<String> {
    let t0 = Instant::now();
    while tree.iter().any(|p| running(*p)) && t0.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut left: Vec<String> = tree.iter().filter(|p| running(**p)).map(|p| format!("process {p}")).collect();
    let prefix = format!("isobench-{pid}-");
    let mut dirs = vec![std::env::temp_dir(), "/run/netns".into(), "/sys/fs/cgroup".into()];
    dirs.extend(std::fs::read_dir("/sys/fs/cgroup").into_iter().flatten().flatten().map(|e| e.path()));
    for dir in dirs {
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(&prefix) || name == format!("isobench-{pid}") {
                left.push(e.path().display().to_string());
            }
        }
    }
    left
}

fn sigint_mid_storm_exits_130_and_stops_every_instance() {
    let d = tempfile::tempdir().unwrap();
    let (pid, tree, o) = signalled_mid_storm(d.path(), nix::sys::signal::SIGINT);
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    assert!(stderr(&o).contains("interrupted by SIGINT"), "{}", stderr(&o));
    // Nothing is swept here: the run itself removed what it made.
    let left = left_of(pid, &tree);
    assert!(left.is_empty(), "left after SIGINT: {left:?}");
    let run = density_json(d.path());
    assert_eq!(run["interrupted"], true);
    let runc = env(&run, "runc")["storms"][0].clone();
    assert_eq!(runc["stopped"], "interrupted", "{runc}");
    assert!(runc["ready"].as_u64().unwrap() < 400, "{runc}");
    assert_eq!(env(&run, "container")["storms"].as_array().unwrap().len(), 1, "the container's storm was measured before");
}

fn sigkill_mid_storm_leaves_nothing_after_the_next_start() {
    let d = tempfile::tempdir().unwrap();
    let (pid, tree, o) = signalled_mid_storm(d.path(), nix::sys::signal::SIGKILL);
    assert_eq!(o.status.code(), None, "killed: {}", stderr(&o));
    assert!(tree.len() >= 10);
    // The next start sweeps what the killed run left.
    let next = tempfile::tempdir().unwrap();
    let o = isobench()
        .args(["density", "--quiet", "--env", "container", "--instances", "1", "--concurrency", "1", "--idle-window", "0", "--out"])
        .arg(next.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let left = left_of(pid, &tree);
    assert!(left.is_empty(), "left after SIGKILL and the next start: {left:?}");
}

fn bad_density_options_are_one_line() {
    for (args, want) in [
        (&["density", "--instances", "0"][..], "--instances must be at least 1"),
        (&["density", "--concurrency", "1,0"][..], "a concurrency must be at least 1"),
        (&["density", "--env", "kvmx"][..], "kvmx"),
    ] {
        let d = tempfile::tempdir().unwrap();
        let o = isobench().args(args).arg("--out").arg(d.path()).output().unwrap();
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
}

fn a_vm_storm_records_the_guests_ram_and_translation_cache_and_leaves_no_qemu() {
    let d = tempfile::tempdir().unwrap();
    let o = isobench()
        .args([
            "density",
            "--quiet",
            "--env",
            "vm",
            "--instances",
            "1",
            "--vm-instances",
            "2",
            "--vm-concurrency",
            "2",
            "--idle-window",
            "500",
            "--out",
        ])
        .arg(d.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let run = density_json(d.path());
    let vm = env(&run, "vm");
    let s = &vm["storms"][0];
    assert_eq!((s["ready"].as_u64(), s["failures"].as_array().map(Vec::len)), (Some(2), Some(0)), "two live guests at once: {s}");
    let m = &s["memory"];
    for pss in m["pss_kib"].as_array().unwrap() {
        // QEMU holds at least the guest's kernel and initramfs in its RAM.
        assert!(pss.as_u64().unwrap() > 10 * 1024, "{m}");
    }
    let mem = &vm["vm"];
    assert!(mem["guest_ram_mib"].as_u64().unwrap() > 0 && mem["guest_ram_resident_kib"].as_u64().unwrap() > 0, "{mem}");
    // The guest's own view: its kernel manages less than the RAM QEMU gave
    // it (firmware and the kernel's own image are taken first), and part of
    // it is in use.
    let view = &mem["guest_view"];
    let (total, avail) = (view["mem_total_kib"].as_u64().unwrap(), view["mem_available_kib"].as_u64().unwrap());
    assert!(total <= mem["guest_ram_mib"].as_u64().unwrap() * 1024 && avail < total && view["agent_rss_kib"].as_u64().unwrap() > 0, "{mem}");
    if mem["accelerator"] == "tcg" {
        assert!(mem["tcg_cache_reserved_kib"].as_u64().unwrap() >= mem["tcg_cache_resident_kib"].as_u64().unwrap(), "{mem}");
        assert!(vm["label"].as_str().unwrap().contains("emulated (TCG)"), "{vm}");
    }
    assert!(s["idle"]["cpu_ns"].as_u64().unwrap() > 0, "a guest's emulated timer ticks cost CPU even idle: {s}");
    // Every QEMU of the run had its console log in the results folder.
    let dir = d.path().to_string_lossy().into_owned();
    let qemus: Vec<_> = procfs::process::all_processes()
        .unwrap()
        .flatten()
        .filter(|p| p.cmdline().is_ok_and(|c| c.iter().any(|a| a.contains(&dir))))
        .map(|p| p.pid)
        .collect();
    assert!(qemus.is_empty(), "QEMU outlived the storm: {qemus:?}");
}
