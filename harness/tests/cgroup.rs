//! cgroups for real (root only; a skip otherwise): detection on fake v1,
//! v2, hybrid and empty layouts mounted in a private mount namespace, limits
//! enforced by this host's kernel (a memory hog is OOM-killed, a fork bomb
//! stops at the pids limit), and the groups really gone after a container
//! ends or after its isobench was SIGKILLed.

use isobench_testkit::{trial, wait_until, Need, Need::*};

use std::io::{BufRead, BufReader, Read};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use isobench_harness::container::cgroup::{self, v2, Cgroup, CgroupError, CgroupMode, Limits};
use isobench_harness::container::{self, LaunchSpec, MinimalRootfs, NamespaceSet, Stdio};

/// The launcher in a group: root and a cgroup file system.
const GROUPS: &[Need] = &[Root, Cgroups];
/// And a shell in the container.
const GROUPS_SH: &[Need] = &[Root, Cgroups, Busybox];

fn main() {
    isobench_testkit::run(vec![
        trial!(fake_layouts_in_a_private_mount_namespace).helper("run by detection_and_groups_on_fake_layouts under unshare --mount"),
        trial!(detection_and_groups_on_fake_layouts).needs(&[Root, Cgroups, Unshare]),
        trial!(this_hosts_mode_is_detected).needs(GROUPS),
        trial!(memory_hog_over_the_limit_is_oom_killed).needs(GROUPS_SH),
        trial!(fork_bomb_stops_at_the_pids_limit).needs(GROUPS_SH),
        trial!(cpu_limit_is_written_and_cpu_time_is_accounted).needs(GROUPS_SH),
        trial!(limits_the_host_cannot_express_are_refused_in_one_line).needs(GROUPS),
        trial!(hold_a_group_for_the_sweep_test).helper("run by sigkilled_owner_leaves_a_group_that_sweep_removes, then SIGKILLed"),
        trial!(sigkilled_owner_leaves_a_group_that_sweep_removes).needs(GROUPS),
        trial!(a_specs_containers_share_held_parents_and_groups_go_after_release).needs(GROUPS),
        trial!(the_command_is_in_its_group_from_exec_on_with_and_without_a_user_namespace).needs(GROUPS_SH),
        trial!(launch_on_a_v2_layout_in_a_private_mount_namespace).helper("run by clone_into_cgroup_on_a_v2_layout under unshare --mount"),
        trial!(clone_into_cgroup_on_a_v2_layout).needs(&[Root, Cgroups, Busybox, Unshare]),
        trial!(limits_on_a_pure_v2_host_with_controllers).needs(&[Root, Busybox, CgroupV2Controllers]),
    ]);
}

fn workloads() -> isobench_harness::workloads::Workloads {
    isobench_harness::workloads::locate().expect("static workloads")
}

fn args(v: &[&str]) -> Vec<std::ffi::OsString> {
    v.iter().map(Into::into).collect()
}

/// A `sleep` child that is killed and reaped on drop.
struct Sleeper(std::process::Child);

impl Sleeper {
    fn new() -> Sleeper {
        Sleeper(Command::new("sleep").arg("1000").spawn().unwrap())
    }
    fn pid(&self) -> nix::unistd::Pid {
        nix::unistd::Pid::from_raw(self.0.id() as i32)
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn mount(fstype: &str, target: &Path, data: Option<&str>) {
    std::fs::create_dir_all(target).unwrap();
    nix::mount::mount(Some(fstype), target, Some(fstype), nix::mount::MsFlags::empty(), data)
        .unwrap_or_else(|e| panic!("mount -t {fstype} -o {data:?} {}: {e}", target.display()));
}

/// Helper: runs in a private mount namespace (`unshare -m`, started by
/// `detection_and_groups_on_fake_layouts`): mounts fake cgroup roots under a
/// temp dir and checks detection and groups on each. The mounts vanish with
/// the namespace when the process exits; they are unmounted before that too.
fn fake_layouts_in_a_private_mount_namespace() {
    let base = tempfile::tempdir().unwrap();
    let b = base.path();
    let mut mounted: Vec<PathBuf> = Vec::new();

    // Nothing mounted: a plain directory and an empty tmpfs.
    assert_eq!(cgroup::cgroup_mode_at(b), CgroupMode::None);
    mount("tmpfs", &b.join("empty"), None);
    mounted.push(b.join("empty"));
    assert_eq!(cgroup::cgroup_mode_at(&b.join("empty")), CgroupMode::None);

    // Pure v2: cgroup2 at the root.
    let v2root = b.join("v2");
    mount("cgroup2", &v2root, None);
    mounted.push(v2root.clone());
    assert_eq!(cgroup::cgroup_mode_at(&v2root), CgroupMode::V2);
    {
        let group = Cgroup::create_at(&v2root, &Limits::default()).unwrap();
        assert_eq!(group.mode(), CgroupMode::V2);
        let paths = group.paths();
        assert_eq!(paths.len(), 1);
        assert!(paths[0].starts_with(v2root.join("isobench")), "{paths:?}");
        let mut sleeper = Sleeper::new();
        group.add(sleeper.pid()).unwrap();
        assert_eq!(group.members(), [sleeper.pid().as_raw()]);
        group.destroy().unwrap();
        assert!(!paths[0].exists(), "v2 group left behind");
        let status = sleeper.0.wait().unwrap();
        assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(9), "cgroup.kill sent SIGKILL");
    }
    // A limit needs its controller; on a hybrid host the cgroup2 has none.
    let limits = Limits { memory: Some(64 << 20), pids: Some(10), ..Default::default() };
    match Cgroup::create_at(&v2root, &limits) {
        Ok(g) => {
            assert!(v2::available(&v2root).iter().any(|c| c == "memory"));
            assert_eq!(std::fs::read_to_string(g.paths()[0].join("memory.max")).unwrap().trim(), (64u64 << 20).to_string());
            assert_eq!(std::fs::read_to_string(g.paths()[0].join("pids.max")).unwrap().trim(), "10");
            println!("v2 limits applied");
        }
        Err(e @ CgroupError::ControllerMissing { controller: "memory", flag: "memory", .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("--memory") && !msg.ends_with('.'), "{msg}");
            println!("v2 without controllers: {msg}");
        }
        Err(e) => panic!("unexpected: {e}"),
    }
    assert!(!v2root.join("isobench").exists(), "the isobench parent outlived its last group");

    // v1: a tmpfs with one mount per controller (re-mounting an existing
    // hierarchy with the same controllers gives the same tree).
    let v1root = b.join("v1");
    mount("tmpfs", &v1root, None);
    mounted.push(v1root.clone());
    let mut v1_mounts = Vec::new();
    for c in ["memory", "pids", "freezer"] {
        mount("cgroup", &v1root.join(c), Some(c));
        v1_mounts.push(v1root.join(c));
    }
    assert_eq!(cgroup::cgroup_mode_at(&v1root), CgroupMode::V1);
    {
        let limits = Limits { memory: Some(64 << 20), pids: Some(7), ..Default::default() };
        let group = Cgroup::create_at(&v1root, &limits).unwrap();
        assert_eq!(group.mode(), CgroupMode::V1);
        let paths = group.paths();
        assert_eq!(paths.len(), 3, "one directory per hierarchy: {paths:?}");
        let mem = paths.iter().find(|p| p.starts_with(v1root.join("memory"))).unwrap();
        let pids = paths.iter().find(|p| p.starts_with(v1root.join("pids"))).unwrap();
        assert_eq!(std::fs::read_to_string(mem.join("memory.limit_in_bytes")).unwrap().trim(), (64u64 << 20).to_string());
        assert_eq!(std::fs::read_to_string(pids.join("pids.max")).unwrap().trim(), "7");
        let mut sleeper = Sleeper::new();
        group.add(sleeper.pid()).unwrap();
        assert_eq!(group.members(), [sleeper.pid().as_raw()]);
        group.destroy().unwrap();
        for p in &paths {
            assert!(!p.exists(), "v1 group left behind: {}", p.display());
        }
        let status = sleeper.0.wait().unwrap();
        assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(9), "freeze + SIGKILL + thaw");
    }
    // No cpu hierarchy in this layout: --cpus is refused by name.
    let err = Cgroup::create_at(&v1root, &Limits { cpus: Some(0.5), ..Default::default() }).unwrap_err();
    assert!(matches!(err, CgroupError::ControllerMissing { controller: "cpu", flag: "cpus", mode: CgroupMode::V1, .. }), "{err}");

    // A stale group of a dead isobench is swept, and what runs in it killed.
    let dead = {
        let mut c = Command::new("true").spawn().unwrap();
        c.wait().unwrap();
        c.id()
    };
    let stale: Vec<PathBuf> = v1_mounts.iter().map(|m| m.join("isobench").join(format!("isobench-{dead}-0"))).collect();
    for d in &stale {
        std::fs::create_dir_all(d).unwrap();
    }
    let mut sleeper = Sleeper::new();
    for d in &stale {
        std::fs::write(d.join("cgroup.procs"), sleeper.pid().to_string()).unwrap();
    }
    let removed = cgroup::sweep_at(&v1root);
    for d in &stale {
        assert!(!d.exists(), "sweep left {}", d.display());
        assert!(removed.contains(d), "{removed:?}");
    }
    assert_eq!(std::os::unix::process::ExitStatusExt::signal(&sleeper.0.wait().unwrap()), Some(9));

    // Hybrid: v1 controllers plus a cgroup2 at unified.
    mount("cgroup2", &v1root.join("unified"), None);
    v1_mounts.push(v1root.join("unified"));
    assert_eq!(cgroup::cgroup_mode_at(&v1root), CgroupMode::Hybrid);
    let group = Cgroup::create_at(&v1root, &Limits { pids: Some(5), ..Default::default() }).unwrap();
    assert_eq!(group.mode(), CgroupMode::Hybrid);
    assert!(group.paths().iter().all(|p| !p.starts_with(v1root.join("unified"))), "limits live in the v1 controllers");
    group.destroy().unwrap();
    // A controller neither v1 nor the unified hierarchy has: the v1 error.
    if !v2::available(&v1root.join("unified")).iter().any(|c| c == "cpu") {
        let err = Cgroup::create_at(&v1root, &Limits { cpus: Some(1.0), ..Default::default() }).unwrap_err();
        assert!(matches!(err, CgroupError::ControllerMissing { controller: "cpu", mode: CgroupMode::Hybrid, .. }), "{err}");
    }
    assert!(!v1root.join("unified").join("isobench").exists(), "the failed try left a group in the unified hierarchy");

    for m in v1_mounts.iter().chain(mounted.iter().rev()) {
        nix::mount::umount2(m, nix::mount::MntFlags::MNT_DETACH).unwrap();
    }
    println!("FAKE LAYOUTS OK");
}

fn detection_and_groups_on_fake_layouts() {
    in_a_private_mount_namespace("fake_layouts_in_a_private_mount_namespace", "FAKE LAYOUTS OK");
}

/// Runs the helper test `helper` of this binary under `unshare --mount
/// --propagation private`, and asserts it succeeded, printed `ok_line`, and
/// left the host's mount table as it was.
fn in_a_private_mount_namespace(helper: &str, ok_line: &str) {
    let before = isobench_testkit::mount_table();
    let out =
        isobench_testkit::helper_under("unshare", &["--mount", "--propagation", "private"], helper).output().expect("unshare(1) from util-linux");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    println!("{text}");
    assert!(out.status.success() && text.contains(ok_line), "{text}");
    assert_eq!(isobench_testkit::mount_table(), before, "a mount of {helper} reached the host");
}

fn this_hosts_mode_is_detected() {
    let mode = cgroup::cgroup_mode();
    println!("/sys/fs/cgroup: {mode}");
    let root = Path::new(cgroup::CGROUP_ROOT);
    let expected = match (cgroup_fs(root), root.join("unified").join("cgroup.controllers").exists()) {
        ("cgroup2", _) => CgroupMode::V2,
        ("tmpfs", true) => CgroupMode::Hybrid,
        ("tmpfs", false) => CgroupMode::V1,
        (other, _) => panic!("unexpected filesystem {other} at /sys/fs/cgroup"),
    };
    assert_eq!(mode, expected);
}

/// The filesystem type of a mount point, from the mount table (an independent
/// check of the statfs detection).
fn cgroup_fs(path: &Path) -> &'static str {
    let table = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let p = path.to_str().unwrap();
    let fs = table.lines().rfind(|l| l.split(' ').nth(4) == Some(p)).and_then(|l| l.split(" - ").nth(1)?.split(' ').next().map(String::from));
    match fs.as_deref() {
        Some("cgroup2") => "cgroup2",
        Some("tmpfs") => "tmpfs",
        _ => "other",
    }
}

/// A container in a group with `limits`, stdout piped to the test.
fn launch(rootfs: &MinimalRootfs, cmd: &[&str], limits: Limits) -> (container::ContainerProcess, BufReader<std::fs::File>) {
    let (out_r, out_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    let root = rootfs.path().canonicalize().unwrap();
    let spec = LaunchSpec::new(NamespaceSet::DEFAULT, &root, &args(cmd), None).unwrap().with_cgroup(limits);
    let process = container::spawn(&spec, Stdio { stdin: None, stdout: Some(out_w.as_fd()) }).unwrap();
    (process, BufReader::new(out_r.into()))
}

fn memory_hog_over_the_limit_is_oom_killed() {
    let rootfs = MinimalRootfs::build(&workloads()).unwrap();
    let limit = 32u64 << 20;
    // dd's 128 MiB buffer, filled from /dev/zero, is charged to the group.
    let (mut p, mut out) = launch(
        &rootfs,
        &["sh", "-c", "dd if=/dev/zero of=/dev/null bs=128M count=1 2>/dev/null; echo $?"],
        Limits { memory: Some(limit), ..Default::default() },
    );
    let paths = p.cgroup().unwrap().paths();
    let mut text = String::new();
    out.read_to_string(&mut text).unwrap();
    assert_eq!(p.wait().unwrap(), 0);
    assert_eq!(text.trim(), "137", "dd was not SIGKILLed by the OOM killer");
    let usage = p.usage().unwrap().clone();
    println!("{usage:?}");
    assert!(usage.oom_kills.unwrap_or(1) >= 1, "{usage:?}");
    let peak = usage.memory_peak_bytes.unwrap();
    assert!(peak <= limit && peak > limit / 2, "peak {peak} vs limit {limit}");
    for d in paths {
        assert!(!d.exists(), "group outlived the container: {}", d.display());
    }
}

fn fork_bomb_stops_at_the_pids_limit() {
    let rootfs = MinimalRootfs::build(&workloads()).unwrap();
    let max = 16;
    let (mut p, mut out) =
        launch(&rootfs, &["sh", "-c", "echo up; exec 2>/dev/null; b() { b | b & }; b; sleep 1000"], Limits { pids: Some(max), ..Default::default() });
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "up");
    let group = p.cgroup().unwrap();
    let paths = group.paths();
    let mut most = 0;
    wait_until("a fork was refused", Duration::from_secs(30), || {
        most = most.max(group.members().len());
        assert!(group.members().len() as u64 <= max, "more than {max} tasks");
        group.usage().pids_limit_hits.unwrap_or(0) > 0
    });
    println!("fork bomb: at most {most} tasks seen, limit {max}");
    // The bomb goes on forking at the limit; killing the container ends it.
    assert_eq!(p.kill().unwrap(), 137);
    assert!(p.usage().unwrap().pids_limit_hits.unwrap() > 0);
    for d in paths {
        assert!(!d.exists(), "group outlived the container: {}", d.display());
    }
}

fn cpu_limit_is_written_and_cpu_time_is_accounted() {
    let rootfs = MinimalRootfs::build(&workloads()).unwrap();
    let (mut p, mut out) =
        launch(&rootfs, &["sh", "-c", "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; echo $i"], Limits { cpus: Some(0.5), ..Default::default() });
    let paths = p.cgroup().unwrap().paths();
    let quota =
        paths.iter().find_map(|d| std::fs::read_to_string(d.join("cpu.cfs_quota_us")).or_else(|_| std::fs::read_to_string(d.join("cpu.max"))).ok());
    assert!(matches!(quota.as_deref().map(str::trim), Some("50000" | "50000 100000")), "{quota:?}");
    let mut text = String::new();
    out.read_to_string(&mut text).unwrap();
    assert_eq!(p.wait().unwrap(), 0);
    assert_eq!(text.trim(), "20000");
    let usage = p.usage().unwrap();
    assert!(usage.cpu_ns.unwrap() > 0, "{usage:?}");
    for d in paths {
        assert!(!d.exists(), "{}", d.display());
    }
}

fn limits_the_host_cannot_express_are_refused_in_one_line() {
    // What each mode cannot do here: on a hybrid host the cgroup2 has no
    // controllers; elsewhere every limit is expressible.
    let e = Limits::parse_memory("0.5g").unwrap_err().to_string();
    assert!(!e.contains('\n') && e.starts_with("invalid --memory value"), "{e}");
    let g = Cgroup::create(&Limits { cpus: Some(1.0), memory: Some(1 << 30), pids: Some(100) });
    match cgroup::cgroup_mode() {
        CgroupMode::Hybrid | CgroupMode::V1 => drop(g.unwrap()),
        _ => println!("{:?}", g.map(drop)),
    }
}

/// Helper for `sigkilled_owner_leaves_a_group_that_sweep_removes`, which
/// SIGKILLs it once it said HOLD.
fn hold_a_group_for_the_sweep_test() {
    let group = Cgroup::create(&Limits { pids: Some(50), ..Default::default() }).unwrap();
    // Never waited for: this process is SIGKILLed with the sleep still in
    // the group, which is the point.
    #[allow(clippy::zombie_processes)]
    let sleeper = Command::new("sleep").arg("1000").spawn().unwrap();
    group.add(nix::unistd::Pid::from_raw(sleeper.id() as i32)).unwrap();
    let paths: Vec<String> = group.paths().iter().map(|p| p.display().to_string()).collect();
    println!("HOLD {} {}", sleeper.id(), paths.join(" "));
    std::thread::sleep(Duration::from_secs(1000));
}

fn sigkilled_owner_leaves_a_group_that_sweep_removes() {
    let line = isobench_testkit::hold_then_kill(&mut isobench_testkit::helper("hold_a_group_for_the_sweep_test"));
    let line = line.expect("the holder never reported its group");
    let mut it = line.split(' ');
    let sleeper: i32 = it.next().unwrap().parse().unwrap();
    let paths: Vec<PathBuf> = it.map(PathBuf::from).collect();
    assert!(!paths.is_empty());
    // Another isobench starting now may sweep it first; either way it goes.
    cgroup::sweep();
    for p in &paths {
        assert!(!p.exists(), "sweep left {}", p.display());
    }
    wait_until("the orphaned sleep is killed", Duration::from_secs(10), || {
        std::fs::read_to_string(format!("/proc/{sleeper}/stat")).map_or(true, |s| s.contains(") Z "))
    });
}

/// One spec's containers share the `isobench` parents, which stay between
/// them and go with the spec; `wait_exit` returns with the container gone
/// and its emptied group still there until `release_cgroup`.
fn a_specs_containers_share_held_parents_and_groups_go_after_release() {
    let rootfs = MinimalRootfs::build(&workloads()).unwrap();
    let root = rootfs.path().canonicalize().unwrap();
    let spec = LaunchSpec::new(NamespaceSet::DEFAULT, &root, &args(&["/noop"]), None).unwrap().with_cgroup(Limits::default());
    let mut parents = Vec::new();
    for _ in 0..2 {
        let mut p = container::spawn(&spec, Stdio::default()).unwrap();
        let groups = p.cgroup().unwrap().paths();
        assert!(!groups.iter().any(|g| g.starts_with("/sys/fs/cgroup/freezer")), "a pid namespace needs no freezer group: {groups:?}");
        assert_eq!(p.wait_exit().unwrap(), 0);
        assert!(groups.iter().all(|g| g.is_dir()), "wait_exit leaves the group: {groups:?}");
        p.release_cgroup().unwrap();
        assert!(groups.iter().all(|g| !g.exists()), "release_cgroup removes it: {groups:?}");
        parents = groups.iter().map(|g| g.parent().unwrap().to_path_buf()).collect();
        assert!(parents.iter().all(|d| d.is_dir()), "the spec holds the parents: {parents:?}");
    }
    drop(spec);
    // Another run's groups may keep a parent; ours is gone unless one is there.
    for d in &parents {
        let others = std::fs::read_dir(d).map(|e| e.flatten().any(|e| e.file_type().is_ok_and(|t| t.is_dir()))).unwrap_or(false);
        assert!(!d.exists() || others, "{} outlived the spec", d.display());
    }
}

/// Runs `cat /proc/self/cgroup` as a container's command (as PID 1, so the
/// file shows where the command itself is from its first instruction) in a
/// group with `limits`; returns what it printed and the group's directories,
/// and checks they are gone once it has been waited for.
fn command_sees_its_group(ns: NamespaceSet, limits: Limits) -> (String, Vec<PathBuf>) {
    let rootfs = MinimalRootfs::build(&workloads()).unwrap();
    let root = rootfs.path().canonicalize().unwrap();
    let (out_r, out_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    let spec = LaunchSpec::new(ns, &root, &args(&["cat", "/proc/self/cgroup"]), None).unwrap().with_cgroup(limits);
    let mut p = container::spawn(&spec, Stdio { stdin: None, stdout: Some(out_w.as_fd()) }).unwrap();
    drop(out_w);
    let paths = p.cgroup().unwrap().paths();
    let mut out = String::new();
    std::fs::File::from(out_r).read_to_string(&mut out).unwrap();
    assert_eq!(p.wait().unwrap(), 0, "{out}");
    for d in &paths {
        assert!(!d.exists(), "{} outlived the container", d.display());
    }
    (out, paths)
}

/// Every directory of the group appears in the command's /proc/self/cgroup
/// as `/isobench/<group>` (no cgroup namespace: the host's view).
fn assert_in_group(out: &str, paths: &[PathBuf]) {
    assert!(!paths.is_empty());
    let name = paths[0].file_name().unwrap().to_str().unwrap();
    assert!(name.starts_with(&format!("isobench-{}-", std::process::id())), "{name}");
    let lines: Vec<&str> = out.lines().filter(|l| l.ends_with(&format!(":/isobench/{name}"))).collect();
    assert_eq!(lines.len(), paths.len(), "one line per hierarchy of the group {paths:?}, in:\n{out}");
}

fn the_command_is_in_its_group_from_exec_on_with_and_without_a_user_namespace() {
    let with_user: NamespaceSet = "user,pid,mnt,uts,ipc,net".parse().unwrap();
    for ns in [NamespaceSet::DEFAULT, with_user] {
        // On v1 the child moves itself in (0 to tasks, a file the parent
        // opened: in a user namespace too); on v2 clone3 creates it there.
        let limits = match cgroup::cgroup_mode() {
            CgroupMode::V2 => Limits::default(),
            _ => Limits { pids: Some(64), memory: Some(256 << 20), cpus: None },
        };
        let (out, paths) = command_sees_its_group(ns, limits);
        println!("{ns}: {paths:?}\n{out}");
        assert_in_group(&out, &paths);
    }
}

/// Helper for `clone_into_cgroup_on_a_v2_layout`, which runs it in a private
/// mount namespace, where it mounts the cgroup2 hierarchy on /sys/fs/cgroup (a pure v2 layout, as most
/// hosts have) unless it is there already, and launches containers in it.
fn launch_on_a_v2_layout_in_a_private_mount_namespace() {
    let root = Path::new(cgroup::CGROUP_ROOT);
    if cgroup::cgroup_mode() != CgroupMode::V2 {
        mount("cgroup2", root, None);
    }
    assert_eq!(cgroup::cgroup_mode(), CgroupMode::V2);
    let with_user: NamespaceSet = "user,pid,mnt,uts,ipc,net".parse().unwrap();
    for ns in [NamespaceSet::DEFAULT, with_user] {
        let (out, paths) = command_sees_its_group(ns, Limits::default());
        println!("{ns}: {paths:?}\n{out}");
        assert!(paths[0].starts_with(root));
        assert_in_group(&out, &paths);
    }
    println!("V2 LAUNCH OK");
}

fn clone_into_cgroup_on_a_v2_layout() {
    in_a_private_mount_namespace("launch_on_a_v2_layout_in_a_private_mount_namespace", "V2 LAUNCH OK");
}

/// On a pure cgroup v2 host whose root has the memory, pids and cpu
/// controllers (most hosts today; not CI's hybrid one, where a v2 group can
/// hold no limit): the limits are written to the v2 files, the group goes
/// on destroy, and a memory hog over its limit is OOM-killed.
fn limits_on_a_pure_v2_host_with_controllers() {
    assert_eq!(cgroup::cgroup_mode(), CgroupMode::V2, "this test needs a pure cgroup v2 host");
    let root = Path::new(cgroup::CGROUP_ROOT);
    let have = v2::available(root);
    for c in ["memory", "pids", "cpu"] {
        assert!(have.iter().any(|a| a == c), "{} has no {c} controller: {have:?}", root.display());
    }
    let group = Cgroup::create(&Limits { memory: Some(64 << 20), pids: Some(10), cpus: Some(0.5) }).unwrap();
    assert_eq!(group.mode(), CgroupMode::V2);
    let paths = group.paths();
    assert_eq!(paths.len(), 1, "{paths:?}");
    let read = |f: &str| std::fs::read_to_string(paths[0].join(f)).unwrap().trim().to_string();
    assert_eq!(read("memory.max"), (64u64 << 20).to_string());
    assert_eq!(read("pids.max"), "10");
    assert_eq!(read("cpu.max"), "50000 100000");
    group.destroy().unwrap();
    assert!(!paths[0].exists(), "v2 group left behind");

    let rootfs = MinimalRootfs::build(&workloads()).unwrap();
    let limit = 32u64 << 20;
    let (mut p, mut out) = launch(
        &rootfs,
        &["sh", "-c", "dd if=/dev/zero of=/dev/null bs=128M count=1 2>/dev/null; echo $?"],
        Limits { memory: Some(limit), ..Default::default() },
    );
    let mut text = String::new();
    out.read_to_string(&mut text).unwrap();
    assert_eq!(p.wait().unwrap(), 0);
    assert_eq!(text.trim(), "137", "dd was not SIGKILLed by the OOM killer");
    assert!(p.usage().unwrap().oom_kills.unwrap_or(0) >= 1, "{:?}", p.usage());
}
