//! The network boundary as a user meets it: `isobench run` measures
//! net.*.boundary through a veth (container) and a tap (vm) in a private
//! network namespace of the run, `isobench exec --net veth` gives the command
//! an eth0, and nothing of it (namespace, veth, tap) outlives the run, even a
//! killed one, after the next start's sweep. Under `--profile docker` the
//! container's boundary crosses a bridge and a DNAT'd published port made
//! in the run's namespace, and the host's own ruleset is byte-identical
//! before and after; runc and crun under `--profile docker` cross the same
//! bridge and DNAT, with every layer named in run.json; so does runsc,
//! whose netstack drives the bridged eth0 (`netstack+bridge+NAT`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use isobench_testkit::{trial, wait_until, Need::*};

const BOUNDARY: &str = "net.tcp_rr.boundary,net.udp_rr.boundary,net.tcp_stream.boundary";

fn isobench() -> Command {
    Command::new(env!("CARGO_BIN_EXE_isobench"))
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn main() {
    isobench_testkit::run(vec![
        trial!(container_boundary_goes_through_a_veth_that_is_gone_afterwards).needs(&[Root]),
        trial!(docker_boundary_crosses_a_bridge_and_a_dnat_and_leaves_the_hosts_rules_as_they_were).needs(&[Root, Nft, SeccompProfile]),
        trial!(runc_and_crun_under_docker_cross_the_same_bridge_and_dnat_and_leave_nothing).needs(&[Root, Nft, SeccompProfile, Runc, Crun]),
        trial!(runsc_under_docker_crosses_the_bridge_and_dnat_through_netstack_and_leaves_nothing).needs(&[Root, Nft, SeccompProfile, Runsc]),
        trial!(vm_boundary_goes_through_a_tap_or_slirp_and_leaves_no_qemu_or_namespace).needs(&[Root, Qemu, GuestImage, Tun]),
        trial!(exec_net_modes_none_loopback_and_veth).needs(&[Root, Busybox]),
        trial!(veth_refusals_are_one_clear_line).needs(&[Root, Nobody]),
        trial!(sigterm_and_sigkill_of_a_veth_exec_leave_nothing_after_the_next_start).needs(&[Root, Busybox]),
        trial!(ctrl_c_during_a_veth_measurement_keeps_results_and_leaves_no_namespace).needs(&[Root]),
    ]);
}

/// /run/netns entries of isobench process `pid`.
fn netns_of(pid: u32) -> Vec<PathBuf> {
    let prefix = format!("isobench-{pid}-");
    std::fs::read_dir("/run/netns")
        .map(|d| d.flatten().filter(|e| e.file_name().to_string_lossy().starts_with(&prefix)).map(|e| e.path()).collect())
        .unwrap_or_default()
}

/// Links of the host's own network namespace (through /proc/net/dev, which
/// shows the namespace of the reading process, unlike a sysfs mounted long ago).
fn host_links() -> Vec<String> {
    std::fs::read_to_string("/proc/net/dev").unwrap().lines().skip(2).filter_map(|l| l.split(':').next()).map(|s| s.trim().to_string()).collect()
}

/// Runs `isobench run --env ENVS --metric BOUNDARY --quick` and returns its
/// pid, output and results folder.
fn run_boundary(envs: &str, dir: &Path, extra: &[&str]) -> (u32, Output) {
    let child = isobench()
        .args(["run", "--env", envs, "--metric", BOUNDARY, "--quick", "--out", dir.to_str().unwrap()])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    (pid, child.wait_with_output().unwrap())
}

/// The fields of one summary.csv line (a label with a comma is quoted).
fn csv_fields(line: &str) -> Vec<String> {
    let (mut out, mut cur, mut quoted) = (Vec::new(), String::new(), false);
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// Every env × boundary metric has a positive p50 in summary.csv.
fn assert_rows(dir: &Path, envs: &[&str]) {
    let csv = std::fs::read_to_string(dir.join("summary.csv")).unwrap();
    for env in envs {
        for metric in BOUNDARY.split(',') {
            let row: Vec<String> =
                csv.lines().map(csv_fields).find(|r| r[0] == *env && r[2] == metric).unwrap_or_else(|| panic!("no {env} × {metric} row:\n{csv}"));
            let p50: f64 = row[6].parse().unwrap();
            assert!(p50.is_finite() && p50 > 0.0, "{row:?}");
        }
    }
}

fn container_boundary_goes_through_a_veth_that_is_gone_afterwards() {
    let d = tempfile::tempdir().unwrap();
    let (pid, o) = run_boundary("native,container", d.path(), &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_rows(d.path(), &["native", "container"]);
    let run: serde_json::Value = serde_json::from_slice(&std::fs::read(d.path().join("run.json")).unwrap()).unwrap();
    let b = &run["environments"]["container"]["boundary"];
    assert_eq!(b["path"], "veth", "{b}");
    assert!(b["netns"].as_str().unwrap().starts_with(&format!("isobench-{pid}-")), "{b}");
    assert!(b["environment_address"].as_str().unwrap().starts_with("10.199."), "{b}");
    assert_eq!(run["environments"]["native"]["boundary"]["path"], "loopback");
    let report = std::fs::read_to_string(d.path().join("report.md")).unwrap();
    assert!(report.contains("cross-boundary paths") && report.contains("## net.tcp_rr.boundary"), "{report}");
    assert!(netns_of(pid).is_empty(), "left behind: {:?}", netns_of(pid));
    let veths: Vec<String> = host_links().into_iter().filter(|l| l.starts_with("ibv")).collect();
    assert!(veths.is_empty(), "veth ends in the host's namespace: {veths:?}");
}

fn vm_boundary_goes_through_a_tap_or_slirp_and_leaves_no_qemu_or_namespace() {
    for (net, path) in [("tap", "tap"), ("user", "slirp")] {
        let d = tempfile::tempdir().unwrap();
        let (pid, o) = run_boundary("vm", d.path(), &["--vm-net", net]);
        let err = stderr(&o);
        assert!(o.status.success(), "{err}");
        assert_rows(d.path(), &["vm"]);
        let run: serde_json::Value = serde_json::from_slice(&std::fs::read(d.path().join("run.json")).unwrap()).unwrap();
        assert_eq!(run["environments"]["vm"]["boundary"]["path"], path, "{}", run["environments"]["vm"]);
        if path == "slirp" {
            let report = std::fs::read_to_string(d.path().join("report.md")).unwrap();
            assert!(report.contains("user-mode networking (slirp"), "the report names the other data path: {report}");
        }
        assert!(netns_of(pid).is_empty(), "left behind: {:?}", netns_of(pid));
        assert!(!host_links().iter().any(|l| l.starts_with("ibt")), "a tap in the host's namespace: {:?}", host_links());
        // QEMU's console log lives in the results folder: no process names it now.
        let qemus = std::process::Command::new("pgrep").args(["-f", d.path().to_str().unwrap()]).output().unwrap();
        assert!(qemus.stdout.is_empty(), "QEMU still running: {}", String::from_utf8_lossy(&qemus.stdout));
    }
}

fn exec_net_modes_none_loopback_and_veth() {
    // After a pause: the pair must outlive the launch, not only be there at exec.
    let o = isobench().args(["exec", "--net", "veth", "--", "sh", "-c", "sleep 0.3; cat /proc/net/fib_trie /proc/net/dev"]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("10.199.") && out.contains("eth0:"), "{out}");
    assert!(!out.contains(" ibv"), "the host end stays in the run's namespace: {out}");
    // Loopback only without --net veth; with --net none not even that is up.
    let o = isobench().args(["exec", "--", "cat", "/proc/net/dev", "/sys/class/net/lo/operstate", "/sys/class/net/lo/flags"]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(!out.contains("eth0") && out.contains("lo:"), "{out}");
    let up = |out: &str| u32::from_str_radix(out.trim().lines().last().unwrap().trim_start_matches("0x"), 16).unwrap() & 1 == 1;
    assert!(up(&out), "lo is up by default: {out}");
    let o = isobench().args(["exec", "--net", "none", "--", "cat", "/sys/class/net/lo/flags"]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!up(&String::from_utf8_lossy(&o.stdout)), "--net none leaves lo down");
}

fn veth_refusals_are_one_clear_line() {
    let o = isobench().args(["exec", "--ns", "pid,mnt", "--net", "veth", "--", "true"]).output().unwrap();
    assert_eq!(o.status.code(), Some(125));
    let err = stderr(&o);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("--net veth needs a network namespace"), "{err}");
    // Without root (here: as nobody), a veth is refused before anything starts.
    let o = {
        use std::os::unix::process::CommandExt;
        isobench().args(["exec", "--net", "veth", "--", "true"]).uid(65534).gid(65534).output().unwrap()
    };
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    assert_eq!(stderr(&o).trim(), "isobench exec: --net veth needs root (CAP_NET_ADMIN on the host); use --net loopback");
    let o = isobench().args(["exec", "--net", "bridge", "--", "true"]).output().unwrap();
    assert!(!o.status.success());
    assert!(stderr(&o).contains("choose from none, loopback or veth"), "{}", stderr(&o));
}

fn sigterm_and_sigkill_of_a_veth_exec_leave_nothing_after_the_next_start() {
    for signal in [nix::sys::signal::Signal::SIGTERM, nix::sys::signal::Signal::SIGKILL] {
        let mut child = isobench().args(["exec", "--net", "veth", "--", "sleep", "30"]).stderr(Stdio::piped()).spawn().unwrap();
        let pid = child.id();
        wait_until("the run's network namespace", Duration::from_secs(20), || !netns_of(pid).is_empty());
        let ns = netns_of(pid);
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), signal).unwrap();
        let status = child.wait().unwrap();
        match signal {
            nix::sys::signal::Signal::SIGTERM => {
                assert_eq!(status.code(), Some(143), "SIGTERM reaches sleep through the init");
                assert!(netns_of(pid).is_empty(), "a clean exit removes its namespace: {ns:?}");
            }
            _ => {
                // Nothing could run on SIGKILL: the mount stays until a sweep.
                assert!(ns.iter().all(|p| p.exists()), "{ns:?}");
                let o = isobench().args(["exec", "--ns", "none", "--", "true"]).output().unwrap();
                assert!(o.status.success(), "{}", stderr(&o));
                assert!(ns.iter().all(|p| !p.exists()), "the next start sweeps a killed run's namespace: {ns:?}");
            }
        }
        assert!(!std::fs::read_to_string("/proc/self/mountinfo").unwrap().contains(&format!("isobench-{pid}-")));
    }
}

fn ctrl_c_during_a_veth_measurement_keeps_results_and_leaves_no_namespace() {
    let d = tempfile::tempdir().unwrap();
    // Each metric runs until its 1.5 s bound; the interrupt comes during the boundary ones.
    let child = isobench()
        .args(["run", "--env", "container", "--metric", BOUNDARY, "--iterations", "1000000000", "--max-ms", "1500", "--out"])
        .arg(d.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    wait_until("the run's network namespace", Duration::from_secs(20), || !netns_of(pid).is_empty());
    std::thread::sleep(Duration::from_millis(300));
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::SIGINT).unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    assert!(netns_of(pid).is_empty(), "left behind: {:?}", netns_of(pid));
    assert!(!host_links().iter().any(|l| l.starts_with("ibv")), "{:?}", host_links());
    let records: serde_json::Value = serde_json::from_slice(&std::fs::read(d.path().join("measurements.json")).unwrap()).unwrap();
    assert!(!records.as_array().unwrap().is_empty(), "the measurement that finished is kept");
}

/// The host's own firewall state: `nft list ruleset`, and `iptables-save`
/// where it exists without its dated comment lines.
fn host_rules() -> (String, Option<String>) {
    let nft = Command::new("nft").args(["list", "ruleset"]).output().unwrap();
    assert!(nft.status.success(), "{}", stderr(&nft));
    let ipt = Command::new("iptables-save")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).lines().filter(|l| !l.starts_with('#')).collect::<Vec<_>>().join("\n"));
    (String::from_utf8_lossy(&nft.stdout).into_owned(), ipt)
}

fn docker_boundary_crosses_a_bridge_and_a_dnat_and_leaves_the_hosts_rules_as_they_were() {
    let before = host_rules();
    let d = tempfile::tempdir().unwrap();
    let (pid, o) = run_boundary("native,container", d.path(), &["--profile", "docker"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_rows(d.path(), &["native", "container"]);
    let run: serde_json::Value = serde_json::from_slice(&std::fs::read(d.path().join("run.json")).unwrap()).unwrap();
    let b = &run["environments"]["container"]["boundary"];
    assert_eq!(b["path"], "veth_bridge_nat", "{b}");
    assert_eq!(b["forwards"]["tcp"], serde_json::json!([8080, 18080]), "the published port: {b}");
    let (published, container) = (b["host_side_connects_to"].as_str().unwrap(), b["environment_address"].as_str().unwrap());
    assert!(published.starts_with("10.199.") && published.ends_with(".1") && container.ends_with(".2"), "{b}");
    assert!(run["environments"]["container"]["metadata"]["profile"]["layers"].as_array().unwrap().contains(&"bridge".into()));
    let report = std::fs::read_to_string(d.path().join("report.md")).unwrap();
    assert!(report.contains("| container (docker) · veth+bridge+NAT"), "the rows name the path:\n{report}");
    assert!(netns_of(pid).is_empty(), "left behind: {:?}", netns_of(pid));
    let links: Vec<String> = host_links().into_iter().filter(|l| l.starts_with("ibv") || l.starts_with("ibr")).collect();
    assert!(links.is_empty(), "links in the host's namespace: {links:?}");
    assert_eq!(host_rules(), before, "the host's nftables and iptables rules are byte-identical");
}

fn runc_and_crun_under_docker_cross_the_same_bridge_and_dnat_and_leave_nothing() {
    let before = host_rules();
    let links_before = host_links();
    let d = tempfile::tempdir().unwrap();
    let (pid, o) = run_boundary("runc,crun", d.path(), &["--profile", "docker"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_rows(d.path(), &["runc", "crun"]);
    let run: serde_json::Value = serde_json::from_slice(&std::fs::read(d.path().join("run.json")).unwrap()).unwrap();
    for env in ["runc", "crun"] {
        let e = &run["environments"][env];
        let b = &e["boundary"];
        assert_eq!(b["path"], "veth_bridge_nat", "{env}: {b}");
        assert_eq!(b["forwards"]["tcp"], serde_json::json!([8080, 18080]), "{env}: the published port: {b}");
        let (published, container) = (b["host_side_connects_to"].as_str().unwrap(), b["environment_address"].as_str().unwrap());
        assert!(published.ends_with(".1") && container.ends_with(".2"), "{env}: {b}");
        let profile = &e["metadata"]["profile"];
        assert_eq!(profile["layers"], serde_json::json!(["hardening", "seccomp", "overlay", "bridge"]), "{env}: {profile}");
        assert!(profile.get("layers_not_applied").is_none(), "{env}: {profile}");
        assert_eq!(profile["overlay"]["upper"], "tmpfs", "{env}: {profile}");
    }
    let report = std::fs::read_to_string(d.path().join("report.md")).unwrap();
    assert!(report.contains("| runc (docker) · veth+bridge+NAT"), "the rows name the profile and the path:\n{report}");
    assert!(netns_of(pid).is_empty(), "left behind: {:?}", netns_of(pid));
    assert_eq!(host_links(), links_before, "links in the host's namespace");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&format!("isobench-{pid}-")), "a mount of the run is left on the host");
    assert_eq!(host_rules(), before, "the host's nftables and iptables rules are byte-identical");
}

/// runsc under `--profile docker`: the sandbox's netstack takes over the
/// bridged `eth0` runc and crun join, the boundary rows say
/// `netstack+bridge+NAT`, run.json lists the bridge among the layers
/// applied, and nothing is left: no namespace, no link, the host's rules
/// byte-identical.
fn runsc_under_docker_crosses_the_bridge_and_dnat_through_netstack_and_leaves_nothing() {
    let before = host_rules();
    let links_before = host_links();
    let d = tempfile::tempdir().unwrap();
    let (pid, o) = run_boundary("runsc", d.path(), &["--profile", "docker"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_rows(d.path(), &["runsc"]);
    let run: serde_json::Value = serde_json::from_slice(&std::fs::read(d.path().join("run.json")).unwrap()).unwrap();
    let e = &run["environments"]["runsc"];
    let b = &e["boundary"];
    assert_eq!(b["path"], "netstack_bridge_nat", "{b}");
    assert_eq!(b["forwards"]["tcp"], serde_json::json!([8080, 18080]), "the published port: {b}");
    let (published, container) = (b["host_side_connects_to"].as_str().unwrap(), b["environment_address"].as_str().unwrap());
    assert!(published.starts_with("10.199.") && published.ends_with(".1") && container.ends_with(".2"), "{b}");
    assert_eq!(e["metadata"]["profile"]["layers"], serde_json::json!(["hardening", "seccomp", "overlay", "bridge"]), "{}", e["metadata"]["profile"]);
    assert!(e["metadata"]["profile"].get("layers_not_applied").is_none(), "{}", e["metadata"]["profile"]);
    assert!(e["metadata"]["network"]["mode"].as_str().unwrap().starts_with("netstack+bridge+NAT"), "{}", e["metadata"]["network"]);
    let report = std::fs::read_to_string(d.path().join("report.md")).unwrap();
    // `runsc (<platform>, docker)`: no layer missing; the rows name the path.
    assert!(report.contains(", docker) · netstack+bridge+NAT"), "the rows name the profile and the path:\n{report}");
    assert!(netns_of(pid).is_empty(), "left behind: {:?}", netns_of(pid));
    assert_eq!(host_links(), links_before, "links in the host's namespace");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&format!("isobench-{pid}-")), "a mount of the run is left on the host");
    assert_eq!(host_rules(), before, "the host's nftables and iptables rules are byte-identical");
}
