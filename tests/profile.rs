//! `isobench exec --profile` as a user meets it (root only; a skip
//! otherwise): every reproduction of issue 16 (CapEff, NoNewPrivs, a write
//! of the host's core_pattern, mknod and mount of a disk, /sys remounted
//! read-write) fails under the default profile and succeeds under `bare`,
//! which shows that each check can fail; under `docker` the raw calls of
//! `isobench-sysprobe` get what the seccomp profile and Docker's capabilities
//! say; a missing seccomp profile is one line while `bare` and `default`
//! still run. Nothing is changed on the host: core_pattern is written with
//! the value it has, the disk is a scratch image on a loop device, reboot(2)
//! gets an invalid magic number, ptrace(2) seizes a `sleep` of the test's own.
//! Under `docker` the root is an overlay over the image: a write to `/`
//! lands in the container's upper (a tmpfs of its own, or a directory on
//! disk), the image is unchanged and nothing of the overlay is left after.
//! `isobench layers` measures the container bare, with each layer alone and
//! with all, and reports each layer's cost as a ratio to bare.

use std::collections::BTreeMap;
use std::process::{Command, Output, Stdio};

use isobench_harness::container::profile::DOCKER_CAPABILITIES;
use isobench_harness::container::seccomp::SeccompProfile;
use isobench_testkit::{trial, Need, Need::*};

fn isobench() -> Command {
    Command::new(env!("CARGO_BIN_EXE_isobench"))
}

const EXEC: &[Need] = &[Root, Busybox];

fn main() {
    isobench_testkit::run(vec![
        trial!(the_issues_reproductions_fail_under_default_and_succeed_under_bare).needs(EXEC),
        trial!(a_disk_node_made_inside_cannot_be_read_or_mounted_under_default).needs(&[Root, Busybox, LoopDevice]),
        trial!(docker_refuses_each_call_as_its_seccomp_profile_and_capabilities_say).needs(&[Root, Busybox, SeccompProfile]),
        trial!(a_missing_seccomp_profile_is_one_line_and_bare_and_default_still_run).needs(EXEC),
        trial!(under_docker_a_write_to_root_lands_in_a_tmpfs_upper_never_in_the_image).needs(&[Root, Busybox, SeccompProfile]),
        trial!(a_disk_upper_holds_the_write_while_the_container_runs_and_goes_after).needs(&[Root, Busybox, SeccompProfile]),
        trial!(layers_measures_bare_each_layer_alone_and_docker_and_reports_ratios).needs(&[Root, SeccompProfile, Nft]),
    ]);
}

fn exec(args: &[&str]) -> Output {
    isobench().arg("exec").args(args).stdin(Stdio::null()).output().expect("isobench runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn core_pattern() -> String {
    std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap()
}

fn status_line(out: &str, key: &str) -> String {
    out.lines().find_map(|l| l.strip_prefix(key)).map(|v| v.trim().to_string()).unwrap_or_else(|| panic!("no {key} in\n{out}"))
}

fn the_issues_reproductions_fail_under_default_and_succeed_under_bare() {
    let host_caps = status_line(&std::fs::read_to_string("/proc/self/status").unwrap(), "CapEff:");
    let before = core_pattern();
    // The issue's script: the capability lines, core_pattern written with
    // the value it has, /sys remounted read-write.
    let script = "grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status; \
                  v=$(cat /proc/sys/kernel/core_pattern); echo \"$v\" > /proc/sys/kernel/core_pattern && echo CORE_PATTERN_WRITTEN; \
                  mount -o remount,rw /sys && echo SYS_REMOUNTED_RW; true";
    for ns in ["pid,mnt,uts,ipc,net", "all"] {
        let run = |profile: &str| {
            let o = exec(&["--ns", ns, "--profile", profile, "--", "sh", "-c", script]);
            assert_eq!(o.status.code(), Some(0), "{profile}, --ns {ns}: {}", text(&o.stderr));
            (text(&o.stdout), text(&o.stderr))
        };
        let (bare, _) = run("bare");
        println!("--profile bare --ns {ns}:\n{bare}");
        // Every capability isobench's root has (in a user namespace of its
        // own, every one there is).
        let caps = |s: &str| u64::from_str_radix(s, 16).unwrap();
        let bare_caps = caps(&status_line(&bare, "CapEff:"));
        assert_eq!(bare_caps & caps(&host_caps), caps(&host_caps), "bare keeps every capability of isobench's root: {bare_caps:x}");
        assert_eq!(status_line(&bare, "NoNewPrivs:"), "0");
        assert!(bare.contains("CORE_PATTERN_WRITTEN"), "bare can write the host's core_pattern (the check can fail): {bare}");
        // The issue remounted /sys with the default namespaces (under --ns all
        // the kernel locks the flags of a sysfs a user namespace mounted).
        if ns != "all" {
            assert!(bare.contains("SYS_REMOUNTED_RW"), "{bare}");
        }
        let (default, err) = run("default");
        println!("--profile default --ns {ns}:\n{default}{err}");
        assert_eq!(status_line(&default, "CapEff:"), "00000000a80425fb", "Docker's 14 capabilities");
        assert_eq!(status_line(&default, "NoNewPrivs:"), "1");
        assert_eq!(status_line(&default, "Seccomp:"), "0", "no filter without docker");
        assert!(!default.contains("CORE_PATTERN_WRITTEN") && err.contains("Read-only file system"), "{default}{err}");
        assert!(!default.contains("SYS_REMOUNTED_RW") && err.contains("permission denied"), "{default}{err}");
        assert_eq!(core_pattern(), before, "core_pattern is as it was");
    }
}

/// A loop device on a scratch ext4 image, detached on drop.
struct ScratchDisk {
    _dir: tempfile::TempDir,
    dev: String,
}

impl ScratchDisk {
    fn new() -> ScratchDisk {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("disk.img");
        std::fs::File::create(&img).unwrap().set_len(8 << 20).unwrap();
        let ok = Command::new("mkfs.ext4").args(["-q", "-F"]).arg(&img).status().unwrap();
        assert!(ok.success(), "mkfs.ext4");
        let o = Command::new("losetup").args(["--find", "--show"]).arg(&img).output().unwrap();
        assert!(o.status.success(), "losetup: {}", text(&o.stderr));
        ScratchDisk { _dir: dir, dev: text(&o.stdout).trim().to_string() }
    }

    fn major_minor(&self) -> (u64, u64) {
        use std::os::unix::fs::MetadataExt;
        let rdev = std::fs::metadata(&self.dev).unwrap().rdev();
        (nix::sys::stat::major(rdev), nix::sys::stat::minor(rdev))
    }
}

impl Drop for ScratchDisk {
    fn drop(&mut self) {
        let _ = Command::new("losetup").args(["-d", &self.dev]).status();
    }
}

fn a_disk_node_made_inside_cannot_be_read_or_mounted_under_default() {
    // The issue mounted the host's /dev/vda this way; here a scratch disk
    // stands in for it.
    let disk = ScratchDisk::new();
    let (major, minor) = disk.major_minor();
    let script = format!(
        "mknod /tmp/vda b {major} {minor} && echo MKNOD; head -c 512 /tmp/vda >/dev/null && echo READ; \
         mkdir /tmp/m; mount -t ext4 /tmp/vda /tmp/m && ls /tmp/m; true"
    );
    let mounts_before = isobench_testkit::mount_table();
    let run = |profile: &str| {
        let o = exec(&["--profile", profile, "--", "sh", "-c", &script]);
        assert_eq!(o.status.code(), Some(0), "{profile}: {}", text(&o.stderr));
        println!("--profile {profile} ({}):\n{}{}", disk.dev, text(&o.stdout), text(&o.stderr));
        text(&o.stdout)
    };
    let bare = run("bare");
    assert!(bare.contains("MKNOD") && bare.contains("READ") && bare.contains("lost+found"), "bare mounts the disk (the check can fail): {bare}");
    let default = run("default");
    // CAP_MKNOD is Docker's: the node is made, but the root is nodev and
    // mount(2) needs CAP_SYS_ADMIN.
    assert!(!default.contains("READ"), "a node on the nodev root cannot be opened: {default}");
    assert!(!default.contains("lost+found"), "the disk was mounted: {default}");
    assert_eq!(isobench_testkit::mount_table(), mounts_before, "nothing of the containers' mounts reached the host");
}

/// `CALL RESULT` lines of isobench-sysprobe.
fn probe_results(out: &str) -> BTreeMap<String, String> {
    out.lines().filter_map(|l| l.split_once(' ')).map(|(c, r)| (c.to_string(), r.to_string())).collect()
}

fn errno_name(n: u32) -> String {
    format!("{:?}", nix::errno::Errno::from_raw(n as i32))
}

fn docker_refuses_each_call_as_its_seccomp_profile_and_capabilities_say() {
    let profile = SeccompProfile::load_default(&DOCKER_CAPABILITIES).unwrap();
    // A process outside the container to seize: the test's own sleep. No pid
    // namespace, so that the container can name it.
    let mut outside = Command::new("sleep").arg("60").spawn().unwrap();
    let ptrace = format!("ptrace:{}", outside.id());
    let calls = ["userns", "keyctl", "add_key", "mount", "reboot", "init_module", "finit_module", ptrace.as_str()];
    let before = core_pattern();
    let script = format!(
        "grep '^Seccomp:' /proc/self/status; /isobench-sysprobe {}; v=$(cat /proc/sys/kernel/core_pattern); echo \"$v\" > /proc/sys/kernel/core_pattern && echo PROC_SYS_WRITTEN; true",
        calls.join(" ")
    );
    let run = |p: &str| {
        let o = exec(&["--ns", "mnt,uts,ipc,net", "--profile", p, "--", "sh", "-c", &script]);
        assert_eq!(o.status.code(), Some(0), "{p}: {}", text(&o.stderr));
        println!("--profile {p}:\n{}", text(&o.stdout));
        text(&o.stdout)
    };
    let (bare, default, docker) = (run("bare"), run("default"), run("docker"));
    let _ = outside.kill();
    let _ = outside.wait();
    assert_eq!(core_pattern(), before);
    let (bare_r, default_r, docker_r) = (probe_results(&bare), probe_results(&default), probe_results(&docker));
    assert_eq!(status_line(&docker, "Seccomp:"), "2", "a filter is loaded");
    // Root with every capability: what the kernel itself says. (reboot(2)
    // gets EINVAL, the invalid magic number, where the host lets root reboot;
    // init_module ENOSYS on a kernel without modules: past every check.)
    assert_eq!(bare_r["mount"], "ok");
    assert_eq!(bare_r[&ptrace], "ok", "bare may seize a process outside (the check can fail)");
    assert!(bare.contains("PROC_SYS_WRITTEN"), "{bare}");
    assert!(!docker.contains("PROC_SYS_WRITTEN") && !default.contains("PROC_SYS_WRITTEN"));
    for call in calls {
        // The system call each probe makes.
        let name = match call.split(':').next().unwrap() {
            "userns" => "unshare",
            other => other,
        };
        let got = &docker_r[call];
        match profile.errno_for(name) {
            // The filter answers before the kernel looks at the call.
            Some(errno) => assert_eq!(got, &errno_name(errno), "{call}: the profile says errno {errno}"),
            // Allowed: what Docker's capabilities leave, as under default.
            None if profile.allows(name) => assert_eq!(got, &default_r[call], "{call}: allowed by the profile, so as under default"),
            None => {}
        }
    }
    // What Docker's capabilities refuse whatever the filter says: EPERM.
    for call in ["mount", "reboot", ptrace.as_str()] {
        assert_eq!(docker_r[call], "EPERM", "{call}");
        assert_eq!(default_r[call], "EPERM", "{call}");
    }
    // Module loading: refused by the filter with EPERM (the kernel's own
    // answer, in bare, is a different one: ENOSYS without module support,
    // EBADF/ENOEXEC with it).
    for call in ["init_module", "finit_module"] {
        assert_eq!(docker_r[call], "EPERM", "{call}");
        assert_ne!(bare_r[call], "EPERM", "{call}: bare is past the filter and the capability check");
    }
    // add_key: the profile does not list it, so its default action answers
    // (ENOSYS in Debian's copy); default, without a filter, lets it through.
    assert_eq!(default_r["add_key"], "ok");
    assert_ne!(docker_r["add_key"], "ok", "the filter refuses add_key");
}

fn a_missing_seccomp_profile_is_one_line_and_bare_and_default_still_run() {
    let o =
        isobench().env("ISOBENCH_SECCOMP_PROFILE", "/nonexistent/seccomp.json").args(["exec", "--profile", "docker", "--", "true"]).output().unwrap();
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(125), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("golang-github-containers-common") && err.contains("/nonexistent/seccomp.json"), "{err}");
    for p in ["bare", "default"] {
        let o =
            isobench().env("ISOBENCH_SECCOMP_PROFILE", "/nonexistent/seccomp.json").args(["exec", "--profile", p, "--", "true"]).output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{p}: {}", text(&o.stderr));
    }
}

/// The options of the `/` mount line of `/proc/mounts` in `out`: (fstype, options).
fn root_mount(out: &str) -> (String, BTreeMap<String, String>) {
    let line = out.lines().find(|l| l.split(' ').nth(1) == Some("/")).unwrap_or_else(|| panic!("no / in\n{out}"));
    let f: Vec<&str> = line.split(' ').collect();
    let opts = f[3].split(',').map(|o| o.split_once('=').map_or((o.to_string(), String::new()), |(k, v)| (k.to_string(), v.to_string()))).collect();
    (f[2].to_string(), opts)
}

/// Names and sizes of every file under `dir`, sorted: what "unchanged" compares.
fn tree(dir: &std::path::Path) -> Vec<(std::path::PathBuf, u64)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let m = std::fs::symlink_metadata(e.path()).unwrap();
            if m.is_dir() {
                stack.push(e.path());
            }
            out.push((e.path(), m.len()));
        }
    }
    out.sort();
    out
}

const MARKER: &str = "isobench-overlay-marker";

fn under_docker_a_write_to_root_lands_in_a_tmpfs_upper_never_in_the_image() {
    let script = format!("echo layered > /{MARKER} && cat /{MARKER}; grep ' / ' /proc/mounts; grep ' /tmp ' /proc/mounts; true");
    // The check can fail: under default the shared image is read-only.
    let o = exec(&["--profile", "default", "--", "sh", "-c", &script]);
    assert!(!text(&o.stdout).contains("layered") && text(&o.stderr).contains("Read-only file system"), "{}", text(&o.stderr));
    let o = exec(&["--profile", "docker", "--", "sh", "-c", &script]);
    let out = text(&o.stdout);
    println!("{out}");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(out.starts_with("layered\n"), "the write to / works: {out}");
    let (fstype, opts) = root_mount(&out);
    assert_eq!(fstype, "overlay", "{out}");
    assert!(opts.contains_key("nodev"), "the hardening's nodev root: {opts:?}");
    let lower = std::path::PathBuf::from(&opts["lowerdir"]);
    let upper = std::path::PathBuf::from(&opts["upperdir"]);
    assert!(upper.ends_with("scratch/upper"), "{upper:?}");
    assert!(!out.lines().any(|l| l.contains(" /tmp tmpfs ")), "no tmpfs over /tmp under docker: / itself is writable\n{out}");
    assert!(lower.join("isobench-agent").is_file(), "the image is the lowerdir: {lower:?}");
    assert!(!lower.join(MARKER).exists(), "the image is unchanged");
    let before = tree(&lower);
    let stage = upper.parent().unwrap().parent().unwrap().to_path_buf();
    assert!(!stage.exists(), "the overlay's stage {stage:?} is gone with the run");
    let o = exec(&["--profile", "docker", "--", "sh", "-c", &format!("test -e /{MARKER} && echo SEEN; true")]);
    assert!(!text(&o.stdout).contains("SEEN"), "each container starts from the image");
    assert_eq!(tree(&lower), before, "a second container changed nothing in the image");
}

fn a_disk_upper_holds_the_write_while_the_container_runs_and_goes_after() {
    use std::io::{BufRead, BufReader, Write};
    let mut child = isobench()
        .args(["exec", "--profile", "docker", "--overlay-upper", "disk", "--"])
        .args(["sh", "-c", &format!("echo layered > /{MARKER}; grep ' / ' /proc/mounts; echo READY; read x")])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut out = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if line == "READY" {
            break;
        }
        out.push_str(&line);
        out.push('\n');
    }
    let (_, opts) = root_mount(&out);
    assert_eq!((opts["upperdir"].as_str(), opts["workdir"].as_str()), ("upper", "work"), "relative to the container's own directory: {out}");
    let lower = std::path::PathBuf::from(&opts["lowerdir"]);
    // The container's upper, on the host's disk while it runs.
    let prefix = format!("isobench-{}-overlay-", child.id());
    let stage = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with(&prefix))
        .expect("the stage is a pid-stamped temp dir");
    let dirs: Vec<_> = std::fs::read_dir(stage.join("disk")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(dirs.len(), 1, "one directory per container: {dirs:?}");
    assert_eq!(std::fs::read_to_string(dirs[0].join("upper").join(MARKER)).unwrap(), "layered\n", "the write landed in the upper");
    assert!(!lower.join(MARKER).exists(), "and not in the image");
    child.stdin.take().unwrap().write_all(b"\n").unwrap();
    assert!(child.wait().unwrap().success());
    assert!(!stage.exists(), "{stage:?} is removed after the run");
}

fn layers_measures_bare_each_layer_alone_and_docker_and_reports_ratios() {
    let d = tempfile::tempdir().unwrap();
    let child = isobench()
        .args(["layers", "--quick", "--rounds", "2", "--metric", "syscall.getpid,net.tcp_rr.boundary,env.start", "--out"])
        .arg(d.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(out.contains("| container (docker) |") && out.contains("container (bare: not a security boundary) p50"), "{out}");
    let run: serde_json::Value = serde_json::from_slice(&std::fs::read(d.path().join("layers.json")).unwrap()).unwrap();
    let variants = run["variants"].as_array().unwrap();
    let names: Vec<&str> = variants.iter().map(|v| v["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["bare", "hardening", "seccomp", "overlay", "bridge", "docker"]);
    let v = |name: &str| variants.iter().find(|v| v["name"] == name).unwrap();
    assert_eq!(v("docker")["layers"], serde_json::json!(["hardening", "seccomp", "overlay", "bridge"]));
    assert_eq!(v("docker")["label"], "container (docker)");
    assert_eq!(v("seccomp")["label"], "container (bare + seccomp: not a security boundary)");
    // Each variant's settings are its own: the overlay's lowerdir, the
    // seccomp filter, the boundary path (bridge+NAT only with the bridge).
    assert!(v("overlay")["settings"]["overlay"]["lowerdir"].is_string() && v("bare")["settings"]["overlay"].is_null());
    assert!(v("seccomp")["settings"]["seccomp"]["bpf_instructions"].as_u64().unwrap() > 0);
    assert_eq!(v("bridge")["settings"]["boundary"]["path"], "veth_bridge_nat");
    assert_eq!(v("docker")["settings"]["boundary"]["path"], "veth_bridge_nat");
    assert_eq!(v("bare")["settings"]["boundary"]["path"], "veth");
    for m in run["metrics"].as_array().unwrap() {
        for name in &names {
            let rounds = m["ns_per_op"][name].as_array().unwrap_or_else(|| panic!("{name} in {m}"));
            assert_eq!(rounds.len(), 2, "one median per round: {m}");
            assert!(rounds.iter().all(|x| x.as_f64().unwrap() > 0.0), "{m}");
        }
    }
    let report = std::fs::read_to_string(d.path().join("report.md")).unwrap();
    assert!(report.contains("## What each layer of `--profile docker` costs"), "{report}");
    assert!(report.contains("![layers-net.tcp_rr.boundary](plots/layers-net.tcp_rr.boundary.svg)"), "{report}");
    assert!(d.path().join("plots/layers-syscall.getpid.png").is_file());
    // Interference is flagged per cell: a cell is marked exactly when a
    // round of its variant (or, for a ratio, of bare) was flagged in layers.json.
    for m in run["metrics"].as_array().unwrap() {
        let flagged = |name: &str| -> Vec<u64> {
            let list = m["interfered"][name].as_array().cloned().unwrap_or_default();
            for r in &list {
                let round = r["round"].as_u64().unwrap();
                assert!((1..=2).contains(&round) && !r["reasons"].as_array().unwrap().is_empty(), "{r}");
            }
            list.iter().map(|r| r["round"].as_u64().unwrap()).collect()
        };
        let metric = m["metric"].as_str().unwrap();
        let row = report.lines().find(|l| l.starts_with(&format!("| {metric} |"))).unwrap_or_else(|| panic!("no row for {metric}"));
        let cells: Vec<&str> = row.trim_matches('|').split(" | ").map(str::trim).collect();
        assert_eq!(cells[1].contains('⚠'), !flagged("bare").is_empty(), "bare's cell of {metric}: {row}");
        for (i, name) in names.iter().skip(1).enumerate() {
            let marked = !flagged(name).is_empty() || !flagged("bare").is_empty();
            assert_eq!(cells[2 + i].contains('⚠'), marked, "{name}'s cell of {metric}: {row}");
        }
    }
    // Nothing of the six containers is left.
    let left: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&format!("isobench-{pid}-")))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    let netns: Vec<_> = std::fs::read_dir("/run/netns")
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| n.starts_with(&format!("isobench-{pid}-"))).collect())
        .unwrap_or_default();
    assert!(netns.is_empty(), "{netns:?}");
}
