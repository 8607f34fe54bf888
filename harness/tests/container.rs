//! The container launcher, for real (root only; a skip otherwise): the
//! classic `unshare -pf --mount-proc` and `unshare -n` demonstrations,
//! asserted, and the invariant that nothing a run creates (mounts, temp
//! dirs, processes) outlives it.
//!
//! The tests take one lock: they count this process's temp dirs and look at
//! the host's mount table, which concurrent containers would disturb.

use isobench_testkit::{own_temp_dirs, trial, wait_until, Need, Need::*};

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use isobench_harness::container::{self, ContainerError, ExecOptions, LaunchSpec, MinimalRootfs, NamespaceSet, RootfsError, Stdio};
use isobench_harness::env::{self, EnvKind};

static SERIAL: Mutex<()> = Mutex::new(());

/// The launcher, and busybox for the tests' commands.
const LAUNCHER: &[Need] = &[Root, Busybox];

fn main() {
    isobench_testkit::run(vec![
        trial!(command_is_pid_1_and_ps_shows_only_the_container).needs(LAUNCHER),
        trial!(hostname_is_the_containers_own).needs(LAUNCHER),
        trial!(host_tcp_port_is_not_visible_and_loopback_is_up).needs(LAUNCHER),
        trial!(mounts_made_inside_never_reach_the_host).needs(LAUNCHER),
        trial!(exec_returns_the_commands_status_and_leaves_no_temp_dir).needs(LAUNCHER),
        trial!(killed_container_reports_128_plus_signal_and_leaves_no_process).needs(LAUNCHER),
        trial!(given_rootfs_is_used_as_is_and_not_modified).needs(LAUNCHER),
        trial!(minimal_rootfs_layout_and_removal).needs(LAUNCHER),
        trial!(the_dev_template_holds_the_nodes_links_and_mount_points).needs(&[Root]),
        trial!(failing_setup_names_the_step).needs(LAUNCHER),
        trial!(parent_setup_runs_in_the_childs_namespaces_before_the_command).needs(LAUNCHER),
        trial!(hold_a_container_for_the_kill_test).helper("run by kill_9_of_isobench_takes_the_container_and_cleanup_sweeps, then SIGKILLed"),
        trial!(kill_9_of_isobench_takes_the_container_and_cleanup_sweeps).needs(LAUNCHER),
        trial!(container_env_runs_the_agent_as_pid_1).needs(LAUNCHER),
        trial!(user_namespace_as_root_maps_every_id_to_itself_and_owns_the_others).needs(LAUNCHER),
        trial!(rootless_helper).helper("run by rootless_exec_runs_through_a_user_namespace as nobody"),
        trial!(rootless_exec_runs_through_a_user_namespace).needs(&[Root, Busybox, UserNamespaces, Setpriv, Nobody]),
        trial!(daemon_that_ignores_sigterm_dies_with_the_cgroup).needs(&[Root, Busybox, Cgroups]),
        trial!(launching_from_a_process_with_busy_threads_works).needs(LAUNCHER),
        trial!(rshared_host_helper).helper("run by shared_propagation_on_the_host_does_not_leak_container_mounts under unshare --mount"),
        trial!(launch_loop_helper).helper("run by rshared_host_helper, then SIGKILLed"),
        trial!(shared_propagation_on_the_host_does_not_leak_container_mounts).needs(&[Root, Busybox, Unshare]),
        trial!(container_env_records_its_cgroup_and_runs_in_all_seven_namespaces).needs(&[Root, Busybox, Cgroups]),
        trial!(sigterm_kills_the_command_behind_the_init_but_not_a_command_as_pid_1).needs(LAUNCHER),
        trial!(each_start_records_its_phases_positive_and_in_order).needs(&[Root, Busybox, Cgroups]),
        trial!(native_and_container_exec_the_same_noop_by_the_same_path_and_environment).needs(LAUNCHER),
    ]);
}

/// The lock every test takes.
fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn workloads() -> isobench_harness::workloads::Workloads {
    isobench_harness::workloads::locate().expect("static workloads")
}

fn args(v: &[&str]) -> Vec<OsString> {
    v.iter().map(OsString::from).collect()
}

/// A container running `cmd` with its stdin and stdout as pipes to the test.
struct Running {
    process: container::ContainerProcess,
    stdin: Option<std::fs::File>,
    stdout: BufReader<std::fs::File>,
}

fn launch(rootfs: &Path, ns: NamespaceSet, cmd: &[&str], hostname: Option<&str>) -> Result<Running, ContainerError> {
    let (in_r, in_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    let (out_r, out_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    let spec = LaunchSpec::new(ns, &rootfs.canonicalize().unwrap(), &args(cmd), hostname)?;
    let process = container::spawn(&spec, Stdio { stdin: Some(in_r.as_fd()), stdout: Some(out_w.as_fd()) })?;
    Ok(Running { process, stdin: Some(in_w.into()), stdout: BufReader::new(out_r.into()) })
}

/// Runs `cmd` to the end in the minimal rootfs: (exit status, stdout).
fn run(rootfs: &Path, ns: NamespaceSet, cmd: &[&str]) -> (i32, String) {
    let mut r = launch(rootfs, ns, cmd, Some("isobench-test")).unwrap();
    r.stdin = None;
    let mut out = String::new();
    r.stdout.read_to_string(&mut out).unwrap();
    (r.process.wait().unwrap(), out)
}

/// The mount table, less what tests running beside this one mount.
fn host_mountinfo() -> String {
    isobench_testkit::mount_table()
}

/// The inode of a process's pid namespace, from the host.
fn pid_ns_of(pid: i32) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok()
}

/// Host pids of every process in the pid namespace `ns`.
fn members_of(ns: &Path) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| pid_ns_of(*pid).as_deref() == Some(ns))
        .collect()
}

fn command_is_pid_1_and_ps_shows_only_the_container() {
    let _l = serial();
    let rootfs = MinimalRootfs::build(&workloads()).unwrap();
    let (status, out) = run(rootfs.path(), NamespaceSet::DEFAULT, &["sh", "-c", "echo $$"]);
    assert_eq!((status, out.trim()), (0, "1"));

    // The seed's demonstration: `sh` is PID 1, `ps` its child is 2, nothing else.
    let (status, out) = run(rootfs.path(), NamespaceSet::DEFAULT, &["sh", "-c", "ps -o pid,comm; true"]);
    println!("isobench exec -- sh -c 'ps -o pid,comm':\n{out}");
    assert_eq!(status, 0);
    let rows: Vec<Vec<&str>> = out.lines().skip(1).map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows, [vec!["1", "sh"], vec!["2", "ps"]], "{out}");

    // Without a pid namespace the host's processes are there (the test itself).
    let ns: NamespaceSet = "mnt,uts,ipc,net".parse().unwrap();
    let (_, out) = run(rootfs.path(), ns, &["sh", "-c", "echo $$; ps -o pid | wc -l"]);
    let mut it = out.split_whitespace().map(|s| s.parse::<u32>().unwrap());
    assert_ne!(it.next(), Some(1));
    assert!(it.next().unwrap() > 3, "{out}");
}

fn hostname_is_the_containers_own() {
    let _l = serial();
    let host = nix::unistd::gethostname().unwrap().into_string().unwrap();
    let rootfs = MinimalRootfs::build(&workloads()).unwrap();
    let (_, out) = run(rootfs.path(), NamespaceSet::DEFAULT, &["hostname"]);
    assert_eq!(out.trim(), "isobench-test");
    assert_ne!(out.trim(), host);
    assert_eq!(nix::unistd::gethostname().unwrap().into_string().unwrap(), host, "the host's name is unchanged");
}

fn host_tcp_port_is_not_visible_and_loopback_is_up() {
    let _l = serial();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = format!(":{:04X} ", listener.local_addr().unwrap().port());
    let host_tcp = std::fs::read_to_string("/proc/net/tcp").unwrap();
    assert!(host_tcp.contains(&port), "the host sees its own listener {port} in\n{host_tcp}");

    let rootfs = MinimalRootfs::build(&workloads()).unwrap();
    let (status, tcp) = run(rootfs.path(), NamespaceSet::DEFAULT, &["cat", "/proc/net/tcp"]);
    assert_eq!(status, 0);
    assert!(!tcp.contains(&port), "port {port} visible in the container:\n{tcp}");
    assert_eq!(tcp.lines().count(), 1, "a new net namespace has no sockets:\n{tcp}");

    // lo is up (IFF_UP = 0x1) so loopback benchmarks work, and is the only link.
    let (_, out) = run(rootfs.path(), NamespaceSet::DEFAULT, &["sh", "-c", "cat /sys/class/net/lo/flags; ls /sys/class/net"]);
    let mut lines = out.lines();
    let flags = u32::from_str_radix(lines.next().unwrap().trim_start_matches("0x"), 16).unwrap();
    assert_eq!(flags & 1, 1, "lo is down: {out}");
    assert_eq!(lines.collect::<Vec<_>>(), ["lo"]);

    // Without a net namespace the host's socket is there.
    let ns: NamespaceSet = "pid,mnt".parse().unwrap();
    let (_, tcp) = run(rootfs.path(), ns, &["cat", "/proc/net/tcp"]);
    assert!(tcp.contains(&port), "{tcp}");
}

fn mounts_made_inside_never_reach_the_host() {
    let _l = serial();
    let rootfs = MinimalRootfs::build(&workloads()).unwrap();
    let root = rootfs.path().canonicalize().unwrap();
    let before = host_mountinfo();
    let mut r = launch(
        &root,
        NamespaceSet::DEFAULT,
        &["sh", "-c", "mount -t tmpfs isobench-probe /mnt && grep -c isobench-probe /proc/self/mountinfo && cut -d' ' -f5 /proc/self/mountinfo | grep -cx / && read x"],
        None,
    )
    .unwrap();
    let mut line = String::new();
    r.stdout.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "1", "the mount is there inside");
    // While the container runs: neither its tmpfs, nor its /proc, /dev, nor
    // the rootfs bind are in the host's table.
    let during = host_mountinfo();
    assert!(!during.contains("isobench-probe"), "{during}");
    assert!(!during.contains(root.to_str().unwrap()), "rootfs bind visible on the host:\n{during}");
    assert_eq!(during, before);
    line.clear();
    r.stdout.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "1", "exactly one root mount inside: the old root is detached");
    r.stdin.take().unwrap().write_all(b"\n").unwrap();
    assert_eq!(r.process.wait().unwrap(), 0);
    assert_eq!(host_mountinfo(), before);
    // The host-side rootfs directory was not written by the mounts.
    assert_eq!(std::fs::read_dir(root.join("dev")).unwrap().count(), 0, "mknod went to the host's rootfs dir");
}

fn exec_returns_the_commands_status_and_leaves_no_temp_dir() {
    let _l = serial();
    let w = workloads();
    let before = own_temp_dirs();
    assert_eq!(container::exec(&ExecOptions::new(args(&["sh", "-c", "exit 7"])), &w).unwrap(), 7);
    assert_eq!(container::exec(&ExecOptions::new(args(&["/noop"])), &w).unwrap(), 0);
    assert_eq!(container::exec(&ExecOptions::new(args(&["true"])), &w).unwrap(), 0);
    // Every namespace combination the CLI offers launches.
    for ns in ["none", "all", "pid,mnt", "net", "mnt", "uts,ipc"] {
        let opts = ExecOptions { namespaces: ns.parse().unwrap(), ..ExecOptions::new(args(&["/noop"])) };
        assert_eq!(container::exec(&opts, &w).unwrap(), 0, "--ns {ns}");
    }
    let err = container::exec(&ExecOptions::new(args(&["no-such-command"])), &w).unwrap_err();
    assert!(matches!(err, ContainerError::Exec { errno: nix::errno::Errno::ENOENT, .. }), "{err}");
    assert_eq!(err.exit_status(), 127);
    assert_eq!(own_temp_dirs(), before, "a temp dir outlived exec");
}

fn killed_container_reports_128_plus_signal_and_leaves_no_process() {
    let _l = serial();
    let rootfs = MinimalRootfs::build(&workloads()).unwrap();
    let mut r = launch(rootfs.path(), NamespaceSet::DEFAULT, &["sh", "-c", "sleep 1000 & sleep 1000 & echo up; wait"], None).unwrap();
    let mut line = String::new();
    r.stdout.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "up");
    let ns = pid_ns_of(r.process.pid().as_raw()).unwrap();
    assert_eq!(members_of(&ns).len(), 3, "sh and two sleeps");
    assert_eq!(r.process.kill().unwrap(), 128 + 9);
    // PID 1 gone: the kernel kills the rest of its namespace.
    wait_until("the sleeps are gone", Duration::from_secs(5), || members_of(&ns).is_empty());
}

fn given_rootfs_is_used_as_is_and_not_modified() {
    let _l = serial();
    let w = workloads();
    let dir = tempfile::tempdir().unwrap();
    // Without mount points: refused before anything is created.
    let before = own_temp_dirs();
    let opts = ExecOptions { rootfs: container::RootfsChoice::Dir(dir.path().into()), ..ExecOptions::new(args(&["/bin/busybox", "true"])) };
    let err = container::exec(&opts, &w).unwrap_err();
    assert!(matches!(err, ContainerError::Rootfs(RootfsError::NoMountpoint { dir: "proc", .. })), "{err}");
    assert!(err.to_string().contains("mkdir -p"), "{err}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "the failing run wrote into the rootfs");
    assert_eq!(own_temp_dirs(), before);

    for d in ["proc", "dev", "sys", "bin", "tmp"] {
        std::fs::create_dir(dir.path().join(d)).unwrap();
    }
    std::fs::copy(container::rootfs::find_static_busybox().unwrap(), dir.path().join("bin/busybox")).unwrap();
    let listing = |p: &Path| {
        let mut v: Vec<_> = walk(p);
        v.sort();
        v
    };
    let tree = listing(dir.path());
    let opts = ExecOptions {
        rootfs: container::RootfsChoice::Dir(dir.path().into()),
        // The trial's input: the command writes into the given rootfs. It is
        // bound read-only (the write fails) with a tmpfs on /tmp (that works).
        ..ExecOptions::new(args(&[
            "/bin/busybox",
            "sh",
            "-c",
            "/bin/busybox touch /written 2>/dev/null && exit 9; /bin/busybox touch /tmp/scratch || exit 8; \
             test -c /dev/null && test -r /proc/1/stat && exit 3",
        ]))
    };
    assert_eq!(container::exec(&opts, &w).unwrap(), 3, "9: the rootfs was writable; 8: /tmp was not");
    assert_eq!(listing(dir.path()), tree, "the rootfs changed on the host");
    assert_eq!(own_temp_dirs(), before, "a given rootfs needs no temp dir");
}

fn walk(p: &Path) -> Vec<PathBuf> {
    let mut out = vec![p.to_path_buf()];
    if p.is_dir() && !p.is_symlink() {
        for e in std::fs::read_dir(p).unwrap().flatten() {
            out.extend(walk(&e.path()));
        }
    }
    out
}

fn minimal_rootfs_layout_and_removal() {
    let _l = serial();
    let rootfs = MinimalRootfs::build(&workloads()).unwrap();
    let p = rootfs.path().to_path_buf();
    for f in ["isobench-agent", "noop", "bin/busybox"] {
        assert!(container::rootfs::is_static_elf(&p.join(f)).unwrap(), "{f}");
    }
    assert_eq!(std::fs::read_link(p.join("bin/sh")).unwrap(), Path::new("busybox"));
    assert!(p.join("bin/ps").is_symlink());
    drop(rootfs);
    assert!(!p.exists(), "rootfs temp dir outlived its owner");
}

/// The /dev every container binds read-only: the device nodes, links and
/// mount points, made once on the host (in the cache, where it stays; or in
/// a temp dir removed on drop). `None` only where it cannot serve: a temp
/// dir on a nodev mount.
fn the_dev_template_holds_the_nodes_links_and_mount_points() {
    let _l = serial();
    use container::rootfs::mount::{DEVICES, DEV_LINKS};
    use container::rootfs::DevTemplate;
    use std::os::unix::fs::FileTypeExt;
    let cache = tempfile::tempdir().unwrap();
    let cached = DevTemplate::cached_in(cache.path()).expect("the cache dir allows devices");
    let again = DevTemplate::cached_in(cache.path()).unwrap();
    assert!(cached.is_cached() && cached.path() == again.path(), "made once, then found");
    for (name, _, _) in DEVICES {
        assert!(std::fs::symlink_metadata(cached.path().join(name)).unwrap().file_type().is_char_device(), "{name}");
    }
    let path = cached.path().to_path_buf();
    drop((cached, again));
    assert!(path.join("pts").is_dir(), "the cached template stays");
    let names: Vec<_> = std::fs::read_dir(cache.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, [path.file_name().unwrap()], "no temp entry left beside it");
    let Some(t) = DevTemplate::build().unwrap() else {
        let st = nix::sys::statvfs::statvfs(&std::env::temp_dir()).unwrap();
        assert!(st.flags().contains(nix::sys::statvfs::FsFlags::ST_NODEV), "no template as root, though the temp dir allows devices");
        return;
    };
    for (name, _, _) in DEVICES {
        assert!(std::fs::symlink_metadata(t.path().join(name)).unwrap().file_type().is_char_device(), "{name}");
    }
    for (name, target) in DEV_LINKS {
        assert_eq!(std::fs::read_link(t.path().join(name)).unwrap(), Path::new(target));
    }
    assert!(t.path().join("pts").is_dir() && t.path().join("shm").is_dir());
    let dir = t.path().to_path_buf();
    drop(t);
    assert!(!dir.exists(), "removed on drop");
}

/// A failing setup step is reported by name, and the child is reaped.
fn failing_setup_names_the_step() {
    let _l = serial();
    let rootfs = MinimalRootfs::build(&workloads()).unwrap();
    // An over-long host name: sethostname says EINVAL.
    let long = "x".repeat(100);
    let err = launch(rootfs.path(), NamespaceSet::DEFAULT, &["/noop"], Some(&long)).err().unwrap();
    assert!(matches!(&err, ContainerError::Setup { step, errno: nix::errno::Errno::EINVAL, .. } if step == "sethostname"), "{err}");
}

/// The parent-side setup runs with the child's pid while the child is in its
/// new network namespace, and before the command: what the hook writes into
/// the rootfs, the command reads. A failing hook aborts the launch by name
/// and leaves nothing running; a spec's hook runs once.
fn parent_setup_runs_in_the_childs_namespaces_before_the_command() {
    let _l = serial();
    let rootfs = MinimalRootfs::build(&workloads()).unwrap();
    let root = rootfs.path().canonicalize().unwrap();
    let ours = std::fs::read_link("/proc/self/ns/net").unwrap();
    let seen = std::sync::Arc::new(Mutex::new(None));
    let (seen2, marker) = (seen.clone(), root.join("parent-setup"));
    let hook: container::ParentSetup = Box::new(move |pid| {
        let theirs = std::fs::read_link(format!("/proc/{pid}/ns/net")).map_err(|e| format!("read its netns: {e}"))?;
        *seen2.lock().unwrap() = Some((pid, theirs));
        std::fs::write(&marker, format!("ran for {pid}\n")).map_err(|e| e.to_string())
    });
    let (out_r, out_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    let spec = LaunchSpec::new(NamespaceSet::DEFAULT, &root, &args(&["cat", "/parent-setup"]), None).unwrap().with_parent_setup(hook);
    let mut p = container::spawn(&spec, Stdio { stdin: None, stdout: Some(out_w.as_fd()) }).unwrap();
    drop(out_w);
    let mut out = String::new();
    std::fs::File::from(out_r).read_to_string(&mut out).unwrap();
    assert_eq!(p.wait().unwrap(), 0, "the command found the hook's file: it started after the hook");
    let (pid, theirs) = seen.lock().unwrap().take().expect("the hook ran");
    assert_eq!(pid, p.pid());
    assert_ne!(theirs, ours, "the hook saw the child already in its new net namespace");
    assert_eq!(out, format!("ran for {pid}\n"));
    // The hook is taken by the first spawn: a second one refuses to start without it.
    let again = container::spawn(&spec, Stdio::default()).err().unwrap();
    assert!(matches!(again, ContainerError::ParentSetup(_)), "{again}");

    // A failing hook aborts the launch, by name, and the child is gone.
    let child = std::sync::Arc::new(Mutex::new(None));
    let child2 = child.clone();
    let spec = LaunchSpec::new(NamespaceSet::DEFAULT, &root, &args(&["/noop"]), None).unwrap().with_parent_setup(Box::new(move |pid| {
        *child2.lock().unwrap() = Some(pid);
        Err("veth: no such device".into())
    }));
    let err = container::spawn(&spec, Stdio::default()).err().unwrap();
    assert_eq!(err.to_string(), "container setup failed: parent setup: veth: no such device");
    let pid = child.lock().unwrap().expect("the hook ran");
    assert!(nix::sys::signal::kill(pid, None).is_err(), "the child of a failed launch is reaped");
}

/// Helper for `kill_9_of_isobench_takes_the_container_and_cleanup_sweeps`,
/// which SIGKILLs it once it said HOLD.
fn hold_a_container_for_the_kill_test() {
    let rootfs = MinimalRootfs::build(&workloads()).unwrap();
    let r = launch(rootfs.path(), NamespaceSet::DEFAULT, &["sleep", "1000"], None).unwrap();
    println!("HOLD {} {}", r.process.pid(), rootfs.path().display());
    std::io::stdout().flush().unwrap();
    std::thread::sleep(Duration::from_secs(1000));
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn kill_9_of_isobench_takes_the_container_and_cleanup_sweeps() {
    let _l = serial();
    // The holder's temp dirs go to a private base, where no concurrent
    // isobench process (which sweeps dead owners' dirs) can reach them first.
    let base = tempfile::tempdir().unwrap();
    let mut holder = KillOnDrop(
        isobench_testkit::helper("hold_a_container_for_the_kill_test")
            .env("TMPDIR", base.path())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let holder = &mut holder.0;
    let Some(line) = isobench_testkit::hold_line(holder) else {
        let _ = holder.kill();
        panic!("the holder never reported its container");
    };
    let (pid, rootfs) = line.split_once(' ').unwrap();
    let (pid, rootfs) = (pid.parse::<i32>().unwrap(), PathBuf::from(rootfs));
    let ns = pid_ns_of(pid).expect("container running");
    assert!(rootfs.starts_with(base.path()) && rootfs.is_dir(), "{}", rootfs.display());
    holder.kill().unwrap(); // SIGKILL: no destructor runs in the holder
    holder.wait().unwrap();
    wait_until("the container died with its launcher", Duration::from_secs(5), || members_of(&ns).is_empty());
    assert!(rootfs.is_dir(), "a SIGKILLed run cannot clean up after itself");
    let removed = isobench_harness::leftovers::sweep_temp_dirs(base.path());
    assert!(removed.contains(&rootfs), "cleanup removed {removed:?}, not {}", rootfs.display());
    assert!(!rootfs.exists());
}

fn container_env_runs_the_agent_as_pid_1() {
    let _l = serial();
    let opts = env::Options::new(workloads());
    let host = nix::unistd::gethostname().unwrap().into_string().unwrap();
    let env = env::prepare(EnvKind::Container, &opts).unwrap();
    let meta = env.metadata();
    let rootfs = PathBuf::from(meta["rootfs"].as_str().unwrap());
    assert_eq!(meta["namespaces"], serde_json::json!(["pid", "net", "ipc", "uts", "mnt"]));
    let mut env = env;
    let mut inst = env.start().unwrap();
    assert_eq!(inst.info().pid, 1, "{:?}", inst.info());
    assert_ne!(inst.info().hostname, host);
    assert!(inst.info().hostname.starts_with("isobench-"), "{}", inst.info().hostname);
    assert_eq!(inst.agent().info().unwrap().pid, 1);
    // Every metric the agent has works inside: loopback is up for net.*,
    // /dev/null is there for syscall.*_devnull, /noop for spawn.fork_exec.
    let metrics = inst.info().metrics.clone();
    for m in ["net.tcp_rr", "spawn.fork_exec", "syscall.read_devnull"] {
        assert!(metrics.iter().any(|x| x == m), "agent lacks {m}: {metrics:?}");
    }
    let mut hosts = isobench_harness::boundary::HostSides::new(&workloads());
    // The app metrics need an image with their servers (harness/tests/apps.rs).
    for metric in metrics {
        let spec = isobench_workloads::catalog::lookup(&metric).unwrap();
        if spec.family == isobench_workloads::catalog::Family::App {
            continue;
        }
        // The fs metrics on the container's writable /tmp (harness/tests/storage.rs checks their bytes).
        let data_dir = spec.needs_data_dir().then(|| "/tmp".to_string());
        let req = isobench_workloads::protocol::RunRequest {
            warmup: 2,
            data_dir,
            ..isobench_workloads::protocol::RunRequest::new(metric.clone(), 20, 2000)
        };
        // Across the boundary: over a veth from the run's network namespace.
        let res = match spec.boundary {
            false => inst.agent().run(&req).map_err(|e| e.to_string()),
            true => isobench_harness::boundary::measure(inst.as_mut(), &mut hosts, spec, &req).map_err(|e| e.to_string()),
        };
        let res = res.unwrap_or_else(|e| panic!("{metric} in the container: {e}"));
        assert!(res.iterations > 0 && res.elapsed_ns > 0, "{metric}: {res:?}");
    }
    inst.shutdown().unwrap();
    // A second instance from the same prepared rootfs, dropped without shutdown.
    let inst = env.start().unwrap();
    assert_eq!(inst.info().pid, 1);
    drop(inst);
    drop(env);
    // The minimal rootfs is the cache's, shared: it stays for the next run,
    // and this process no longer holds it (its shared lock went with the
    // last descriptor; other test processes may hold the same entry).
    let cache = container::rootfs::cache::cache_root().canonicalize().unwrap();
    assert!(rootfs.starts_with(&cache) && rootfs.join("isobench-agent").is_file(), "{}", rootfs.display());
    let held: Vec<PathBuf> =
        std::fs::read_dir("/proc/self/fd").unwrap().flatten().filter_map(|fd| std::fs::read_link(fd.path()).ok()).filter(|p| p == &rootfs).collect();
    assert!(held.is_empty(), "the environment's lock on the cached rootfs outlives it: {held:?}");
}

fn user_namespace_as_root_maps_every_id_to_itself_and_owns_the_others() {
    let _l = serial();
    let rootfs = MinimalRootfs::build(&workloads()).unwrap();
    let ns: NamespaceSet = "user,pid,mnt,uts,ipc,net".parse().unwrap();
    let mut r = launch(
        rootfs.path(),
        ns,
        &["sh", "-c", "cat /proc/self/uid_map /proc/self/gid_map /proc/self/setgroups; id -u; test -c /dev/null && echo x > /dev/null && echo devnull-ok; hostname; read x"],
        Some("userns"),
    )
    .unwrap();
    let mut lines = Vec::new();
    for _ in 0..6 {
        let mut l = String::new();
        r.stdout.read_line(&mut l).unwrap();
        lines.push(l.split_whitespace().collect::<Vec<_>>().join(" "));
    }
    assert_eq!(lines, ["0 0 4294967295", "0 0 4294967295", "allow", "0", "devnull-ok", "userns"], "setgroups stays allowed for root");
    let pid = r.process.pid().as_raw();
    let host_user = std::fs::read_link("/proc/self/ns/user").unwrap();
    assert_ne!(std::fs::read_link(format!("/proc/{pid}/ns/user")).unwrap(), host_user, "a new user namespace");
    r.stdin.take().unwrap().write_all(b"\n").unwrap();
    assert_eq!(r.process.wait().unwrap(), 0);
}

/// Helper for `rootless_exec_runs_through_a_user_namespace`, which runs it
/// as nobody.
fn rootless_helper() {
    assert!(!nix::unistd::geteuid().is_root());
    let w = workloads();
    let opts = ExecOptions::new(args(&["sh", "-c", "echo uid=$(id -u) pid=$$; cat /proc/self/uid_map; cat /proc/self/setgroups; ps -o pid | wc -l"]));
    let status = container::exec(&opts, &w).unwrap();
    println!("status={status}");
    let limited = ExecOptions { limits: container::Limits { pids: Some(10), ..Default::default() }, ..ExecOptions::new(args(&["true"])) };
    let err = container::exec(&limited, &w).unwrap_err();
    println!("limits: {err}");
    // The container environment too: the agent as PID 1 of a rootless container.
    let opts = env::Options::new(w);
    let mut c = env::container::Container::prepare(&opts).unwrap();
    let meta = env::Environment::metadata(&c);
    println!("rootless={} cgroup={} namespaces={}", meta["rootless"], meta["cgroup"], meta["namespaces"]);
    let mut inst = c.start_instance().unwrap();
    let req = isobench_workloads::protocol::RunRequest { warmup: 2, ..isobench_workloads::protocol::RunRequest::new("syscall.getpid", 100, 2000) };
    let res = env::Instance::agent(&mut inst).run(&req).unwrap();
    println!("agent pid={} iterations={}", env::Instance::info(&inst).pid, res.iterations);
    env::Instance::shutdown(Box::new(inst)).unwrap();
    // A clean end, as isobench's main has it: nothing of this process is
    // left for a sweep to find.
    drop(c);
    isobench_harness::leftovers::unmark_owner();
    std::io::stdout().flush().unwrap();
}

fn rootless_exec_runs_through_a_user_namespace() {
    let _l = serial();
    // The rootless run's temp dir in a base nobody may write.
    let base = tempfile::tempdir().unwrap();
    std::fs::set_permissions(base.path(), std::os::unix::fs::PermissionsExt::from_mode(0o1777)).unwrap();
    // HOME stays root's across setpriv: nobody gets a cache of its own.
    let cache = tempfile::tempdir().unwrap();
    std::fs::set_permissions(cache.path(), std::os::unix::fs::PermissionsExt::from_mode(0o1777)).unwrap();
    let out = isobench_testkit::helper_under("setpriv", &["--reuid=65534", "--regid=65534", "--clear-groups", "--"], "rootless_helper")
        .env("TMPDIR", base.path())
        .env("ISOBENCH_CACHE", cache.path())
        .output()
        .expect("setpriv(1) from util-linux");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    println!("{text}");
    assert!(out.status.success(), "{text}");
    assert!(text.contains("uid=0 pid=2"), "root inside, the command under the init: {text}");
    let map: Vec<&str> =
        text.lines().find(|l| l.trim().starts_with("0 ") && l.contains(" 65534 ")).expect("uid_map line").split_whitespace().collect();
    assert_eq!(map, ["0", "65534", "1"], "root inside is nobody outside");
    assert!(text.contains("deny"), "setgroups denied for an unprivileged writer: {text}");
    assert!(text.contains("status=0"), "{text}");
    assert!(text.contains("limits: cgroup limits are unavailable in rootless mode"), "{text}");
    assert!(text.contains("rootless=true cgroup=null namespaces=[\"user\",\"pid\",\"net\",\"ipc\",\"uts\",\"mnt\"]"), "{text}");
    assert!(text.contains("agent pid=1 iterations="), "{text}");
    assert_eq!(std::fs::read_dir(base.path()).unwrap().count(), 0, "the rootless run left a temp dir");
}

/// Without a pid namespace nothing kills the command's background children
/// when it exits; the cgroup does, and then it is gone.
fn daemon_that_ignores_sigterm_dies_with_the_cgroup() {
    let _l = serial();
    let rootfs = MinimalRootfs::build(&workloads()).unwrap();
    let (out_r, out_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    let ns: NamespaceSet = "mnt,uts".parse().unwrap();
    let spec =
        LaunchSpec::new(ns, &rootfs.path().canonicalize().unwrap(), &args(&["sh", "-c", "trap '' TERM HUP; sleep 1000 >/dev/null & echo $!"]), None)
            .unwrap()
            .with_cgroup(container::Limits::default())
            .with_init(true);
    let mut process = container::spawn(&spec, Stdio { stdin: None, stdout: Some(out_w.as_fd()) }).unwrap();
    drop(out_w);
    let mut line = String::new();
    BufReader::new(std::fs::File::from(out_r)).read_line(&mut line).unwrap();
    let daemon: i32 = line.trim().parse().unwrap();
    let paths = process.cgroup().unwrap().paths();
    assert!(process.cgroup().unwrap().members().contains(&daemon));
    assert_eq!(process.wait().unwrap(), 0);
    for p in &paths {
        assert!(!p.exists(), "{} outlived the container", p.display());
    }
    wait_until("the daemon is gone", Duration::from_secs(10), || {
        std::fs::read_to_string(format!("/proc/{daemon}/stat")).map_or(true, |s| s.contains(") Z "))
    });
}

/// The child after clone(2) must not allocate: with threads allocating and
/// freeing all the time, one of them is likely to hold the allocator's lock
/// at the moment of some clone, and a child that allocated would hang.
fn launching_from_a_process_with_busy_threads_works() {
    let _l = serial();
    let rootfs = MinimalRootfs::build(&workloads()).unwrap();
    let root = rootfs.path().canonicalize().unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut n = 0usize;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let v: Vec<String> = (0..64).map(|i| format!("{i}")).collect();
                    n += v.len();
                }
                n
            })
        })
        .collect();
    for ns in ["pid,mnt,uts,ipc,net", "all", "none"] {
        for _ in 0..10 {
            let spec = LaunchSpec::new(ns.parse().unwrap(), &root, &args(&["/noop"]), Some("t"))
                .unwrap()
                .with_cgroup(container::Limits::default())
                .with_init(true);
            let mut p = container::spawn(&spec, Stdio::default()).unwrap();
            assert_eq!(p.wait().unwrap(), 0, "--ns {ns}");
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in threads {
        assert!(t.join().unwrap() > 0);
    }
}

/// Helper for `shared_propagation_on_the_host_does_not_leak_container_mounts`,
/// which runs it under `unshare --mount --propagation shared`.
fn rshared_host_helper() {
    let own = host_mountinfo();
    assert!(own.lines().next().unwrap().contains("shared:"), "/ is not shared here:\n{own}");
    let rootfs = MinimalRootfs::build(&workloads()).unwrap();
    let root = rootfs.path().canonicalize().unwrap();
    let before = host_mountinfo();
    let mut r = launch(&root, NamespaceSet::DEFAULT, &["sh", "-c", "mount -t tmpfs isobench-probe /mnt && echo mounted && read x"], None).unwrap();
    let mut line = String::new();
    r.stdout.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "mounted");
    let during = host_mountinfo();
    assert!(!during.contains("isobench-probe"), "the container's mount propagated to the shared host:\n{during}");
    assert_eq!(during, before, "no mount of the container (proc, dev, rootfs bind) reached the host");
    r.stdin.take().unwrap().write_all(b"\n").unwrap();
    assert_eq!(r.process.wait().unwrap(), 0);
    assert_eq!(host_mountinfo(), before);

    // A launcher killed with SIGKILL in the middle of launching containers
    // (some child is between clone and exec, mounting): no mount of it shows
    // here, and the next container still pivots.
    let base = tempfile::tempdir().unwrap();
    let mut looper =
        KillOnDrop(isobench_testkit::helper("launch_loop_helper").env("TMPDIR", base.path()).stdout(std::process::Stdio::piped()).spawn().unwrap());
    let looper_pid = looper.0.id();
    let mut out = BufReader::new(looper.0.stdout.take().unwrap());
    let mut launched = 0;
    let mut line = String::new();
    while launched < 20 && out.read_line(&mut line).unwrap() > 0 {
        launched += line.matches("LAUNCHED").count();
        line.clear();
    }
    assert_eq!(launched, 20, "the launch loop stopped early");
    looper.0.kill().unwrap();
    looper.0.wait().unwrap();
    assert_eq!(host_mountinfo(), before, "a killed launcher's mounts reached the host");
    let (status, out) = run(&root, NamespaceSet::all(), &["sh", "-c", "cut -d' ' -f5 /proc/self/mountinfo | grep -cx /"]);
    assert_eq!((status, out.trim()), (0, "1"), "pivot_root still works after the kill");
    // What the killed launcher could not remove, the next start's sweep does.
    isobench_harness::leftovers::sweep_temp_dirs(base.path());
    // The killed launcher's owner entry is what made that sweep look; once
    // it found everything, the entry is forgotten (cleanup::sweep's order).
    let dead = isobench_harness::leftovers::dead_owners_in(base.path()).unwrap();
    assert!(dead.iter().any(|e| e.ends_with(format!("isobench-{looper_pid}-owner"))), "the killed launcher asks for a sweep: {dead:?}");
    isobench_harness::leftovers::forget_owners(&dead);
    assert_eq!(std::fs::read_dir(base.path()).unwrap().count(), 0);
    container::cgroup::sweep();
    let prefix = format!("isobench-{looper_pid}-");
    for h in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        for dir in [h.path().join("isobench"), h.path()] {
            if let Ok(d) = std::fs::read_dir(dir) {
                assert!(
                    !d.flatten().any(|e| e.file_name().to_string_lossy().starts_with(&prefix)),
                    "a group of the killed launcher survived the sweep"
                );
            }
        }
    }
    println!("RSHARED OK");
}

/// Helper for `rshared_host_helper`: launches containers until killed.
fn launch_loop_helper() {
    let rootfs = MinimalRootfs::build(&workloads()).unwrap();
    let root = rootfs.path().canonicalize().unwrap();
    loop {
        let spec = LaunchSpec::new(NamespaceSet::all(), &root, &args(&["/noop"]), Some("loop"))
            .unwrap()
            .with_cgroup(container::Limits::default())
            .with_init(true);
        let mut p = container::spawn(&spec, Stdio::default()).unwrap();
        p.wait().unwrap();
        println!("LAUNCHED");
        std::io::stdout().flush().unwrap();
    }
}

fn shared_propagation_on_the_host_does_not_leak_container_mounts() {
    let _l = serial();
    let out = isobench_testkit::helper_under("unshare", &["--mount", "--propagation", "shared"], "rshared_host_helper")
        .output()
        .expect("unshare(1) from util-linux");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && text.contains("RSHARED OK"), "{text}");
}

fn container_env_records_its_cgroup_and_runs_in_all_seven_namespaces() {
    let _l = serial();
    let mut opts = env::Options::new(workloads());
    opts.container.namespaces = Some(NamespaceSet::all());
    opts.container.limits = container::Limits { pids: Some(64), memory: Some(256 << 20), cpus: None };
    let mut c = env::container::Container::prepare(&opts).unwrap();
    let meta = env::Environment::metadata(&c);
    println!("{}", serde_json::to_string_pretty(&meta).unwrap());
    assert_eq!(meta["namespaces"], serde_json::json!(["user", "pid", "net", "ipc", "uts", "mnt", "cgroup"]));
    let mode = container::cgroup::cgroup_mode();
    assert_eq!(meta["cgroup"]["mode"], serde_json::json!(mode.as_str()));
    assert_eq!(meta["cgroup"]["limits"], serde_json::json!({"cpus": null, "memory": 256u64 << 20, "pids": 64}));
    assert_eq!(meta["rootless"], serde_json::json!(false));
    let mut inst = c.start_instance().unwrap();
    let paths = inst.cgroup_paths();
    assert!(!paths.is_empty());
    let host_pid = inst.host_pid();
    let user_ns = std::fs::read_link(format!("/proc/{host_pid}/ns/user")).unwrap();
    assert_ne!(user_ns, std::fs::read_link("/proc/self/ns/user").unwrap());
    let cgroup_ns = std::fs::read_link(format!("/proc/{host_pid}/ns/cgroup")).unwrap();
    assert_ne!(cgroup_ns, std::fs::read_link("/proc/self/ns/cgroup").unwrap());
    // The cgroup namespace was made after placement: inside, the group is "/".
    let own = std::fs::read_to_string(format!("/proc/{host_pid}/cgroup")).unwrap();
    assert!(own.contains("/isobench/isobench-"), "seen from the host it is in its group: {own}");
    let req = isobench_workloads::protocol::RunRequest { warmup: 2, ..isobench_workloads::protocol::RunRequest::new("spawn.fork_exec", 20, 2000) };
    let res = env::Instance::agent(&mut inst).run(&req).unwrap();
    assert!(res.iterations > 0);
    let usage = inst.cgroup_usage().unwrap();
    println!("{usage:?}");
    assert!(usage.cpu_ns.unwrap() > 0 && usage.memory_peak_bytes.unwrap() > 0, "{usage:?}");
    env::Instance::shutdown(Box::new(inst)).unwrap();
    for p in &paths {
        assert!(!p.exists(), "{} outlived the instance", p.display());
    }
}

/// The kernel shields a pid namespace's init from signals it has no handler
/// for, so a shell as PID 1 survives `kill -TERM $$`; behind the launcher's
/// init it is an ordinary process and dies, and the status says so (143).
fn sigterm_kills_the_command_behind_the_init_but_not_a_command_as_pid_1() {
    let _l = serial();
    let rootfs = MinimalRootfs::build(&workloads()).unwrap();
    let root = rootfs.path().canonicalize().unwrap();
    let cmd = args(&["sh", "-c", "kill -TERM $$; exit 3"]);
    for (init, expected) in [(false, 3), (true, 143)] {
        let spec = LaunchSpec::new(NamespaceSet::DEFAULT, &root, &cmd, None).unwrap().with_init(init);
        let mut p = container::spawn(&spec, Stdio::default()).unwrap();
        assert_eq!(p.wait().unwrap(), expected, "with_init({init})");
    }
    // And a command killed by a signal behind the init: 128 + 9.
    let spec = LaunchSpec::new(NamespaceSet::DEFAULT, &root, &args(&["sh", "-c", "kill -KILL $$"]), None).unwrap().with_init(true);
    assert_eq!(container::spawn(&spec, Stdio::default()).unwrap().wait().unwrap(), 137);
}

/// Every start of the container environment records when each step
/// happened (run.json's `metadata.starts`): all after the start was asked
/// for, in the order the launcher takes them (the child mounts while the
/// parent makes its cgroup, then moves in, then execs the agent), the
/// record's end agreeing with the host-timed start, and the record kept in
/// the environment's metadata.
fn each_start_records_its_phases_positive_and_in_order() {
    let _l = serial();
    let opts = env::Options::new(workloads());
    let mut c = env::container::Container::prepare(&opts).unwrap();
    assert!(c.cgroup_limits().is_some(), "a host with cgroups gives each instance a group");
    for n in 1..=3u32 {
        let t0 = std::time::Instant::now();
        let inst = c.start_instance().unwrap();
        let ready = env::Instance::ready_after(&inst).as_secs_f64() * 1e3;
        let (_, r) = inst.stop().unwrap();
        let whole = t0.elapsed().as_secs_f64() * 1e3;
        assert_eq!(r.start, n);
        let names: Vec<String> = r.phases().into_iter().map(|(name, _)| name).collect();
        assert_eq!(
            names,
            ["clone", "namespaces_ready", "mounts_done", "cgroup_placed", "exec", "agent_ready", "shutdown_requested", "reaped", "cleaned_up"],
            "{r:?}"
        );
        let times: Vec<f64> = r.phases().into_iter().map(|(_, ms)| ms).collect();
        assert!(times[0] > 0.0, "the launcher prepares before it clones: {r:?}");
        assert!(times.windows(2).all(|w| w[0] < w[1]), "strictly ordered: {r:?}");
        assert_eq!(r.agent_ready_ms, ready);
        assert!(r.cleaned_up_ms.unwrap() <= whole, "every step within the host-timed start and stop: {r:?} vs {whole} ms");
    }
    let meta = env::Environment::metadata(&c);
    let starts: Vec<isobench_harness::results::run::ContainerStartRecord> = serde_json::from_value(meta["starts"].clone()).unwrap();
    assert_eq!(starts.iter().map(|s| s.start).collect::<Vec<_>>(), [1, 2, 3]);
    assert!(starts.iter().all(|s| s.cleaned_up_ms.is_some()), "each record completed at its stop");
}

/// spawn.* compares like with like: asked what they exec, the native and
/// the container agent name the same relative path, the same (empty)
/// environment and the very same file (device and inode: the cached
/// rootfs's, bound read-only into the container), from their own view of
/// its directory; and both agents got the same environment variables.
fn native_and_container_exec_the_same_noop_by_the_same_path_and_environment() {
    let _l = serial();
    let opts = env::Options::new(workloads());
    let mut native = env::prepare(EnvKind::Native, &opts).unwrap();
    let mut container = env::prepare(EnvKind::Container, &opts).unwrap();
    let mut n = native.start().unwrap();
    let mut c = container.start().unwrap();
    let (ns, cs) = (n.agent().info().unwrap().spawn.unwrap(), c.agent().info().unwrap().spawn.unwrap());
    assert_eq!(ns.path, "./noop");
    assert_eq!((&ns.path, &ns.envp, ns.dev, ns.ino, &ns.fs), (&cs.path, &cs.envp, cs.dev, cs.ino, &cs.fs), "{ns:?} vs {cs:?}");
    assert!(ns.envp.is_empty());
    assert_eq!(cs.dir, "/");
    let rootfs = PathBuf::from(container.metadata()["rootfs"].as_str().unwrap());
    assert_eq!(Path::new(&ns.dir), rootfs, "natively the no-op is the cached rootfs's");
    // The agents themselves: the same variables, by name.
    let environ = |pid: i32| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read(format!("/proc/{pid}/environ"))
            .unwrap()
            .split(|b| *b == 0)
            .filter(|e| !e.is_empty())
            .map(|e| String::from_utf8_lossy(e).split('=').next().unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    let native_pid = n.info().pid as i32;
    let container_pid = container_agent_pid();
    assert_eq!(environ(native_pid), environ(container_pid));
    for inst in [&mut n, &mut c] {
        let req =
            isobench_workloads::protocol::RunRequest { warmup: 2, ..isobench_workloads::protocol::RunRequest::new("spawn.fork_exec", 20, 2000) };
        assert!(inst.agent().run(&req).unwrap().iterations > 0);
    }
    n.shutdown().unwrap();
    c.shutdown().unwrap();
}

/// The container's agent's host pid: its init, the newest isobench-agent
/// child of this process whose pid namespace is not ours.
fn container_agent_pid() -> i32 {
    let ours = pid_ns_of(std::process::id() as i32);
    let me = std::process::id().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let ppid = stat.rsplit_once(") ").and_then(|(_, r)| r.split_whitespace().nth(1).map(str::to_string));
            ppid.as_deref() == Some(me.as_str()) && pid_ns_of(*pid) != ours
        })
        .max()
        .expect("the container's init is our child")
}
