//! `--rootfs debian`, for real (root only; a skip otherwise): the host
//! distribution's rootfs, built once per machine with debootstrap into the
//! cache (the first test to need it builds it, the others wait on its lock),
//! runs commands and the agent in isobench's container and in the peers, is
//! never written by them, and a killed build's leftovers are swept.

use isobench_testkit::{own_temp_dirs, trial, Need, Need::*};

use std::ffi::OsString;
use std::io::Read;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use isobench_harness::container::rootfs::distro::{self, DistroRootfs};
use isobench_harness::container::{self, ExecOptions, LaunchSpec, NamespaceSet, RootfsChoice, Stdio};
use isobench_harness::env::{self, EnvError, EnvKind, Options};
use isobench_workloads::protocol::RunRequest;

fn workloads() -> isobench_harness::workloads::Workloads {
    isobench_harness::workloads::locate().expect("static workloads")
}

/// Root and the distribution rootfs (cached, or debootstrap to build it).
const DEBIAN: &[Need] = &[Root, DebianRootfs];

fn main() {
    isobench_testkit::run(vec![
        trial!(a_command_in_the_debian_rootfs_is_pid_1_sees_debian_and_cannot_write_it).needs(DEBIAN),
        trial!(isobench_exec_with_rootfs_debian_runs_behind_its_init).needs(DEBIAN),
        trial!(the_agent_in_the_container_env_on_debian_answers_getpid).needs(DEBIAN),
        trial!(the_peers_run_the_agent_on_the_read_only_debian_rootfs).needs(&[Root, DebianRootfs, Runc, Crun, Bwrap]),
        trial!(a_killed_builds_dir_is_unmounted_then_removed).needs(&[Root]),
    ]);
}

/// The distribution rootfs, built on first use (the first test to need it
/// builds it, the others wait on its lock).
fn debian() -> DistroRootfs {
    DistroRootfs::prepare(&workloads()).expect("the distribution rootfs builds")
}

/// Every path in the rootfs outside the kernel file systems' mount points,
/// as a sorted list: what a container must not change.
fn listing(root: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            out.push(p.strip_prefix(root).unwrap().to_path_buf());
            if e.file_type().unwrap().is_dir() {
                walk(&p, root, out);
            }
        }
    }
    let mut out = Vec::new();
    for top in ["", "tmp", "root", "etc", "dev", "proc", "sys", "run"] {
        let dir = root.join(top);
        if top.is_empty() {
            out.extend(std::fs::read_dir(&dir).unwrap().flatten().map(|e| PathBuf::from(e.file_name())));
        } else if dir.is_dir() {
            walk(&dir, root, &mut out);
        }
    }
    out.sort();
    out
}

fn mounted_under(root: &Path) -> Vec<String> {
    let root = root.to_str().unwrap();
    std::fs::read_to_string("/proc/self/mountinfo").unwrap().lines().filter(|l| l.contains(root)).map(String::from).collect()
}

fn a_command_in_the_debian_rootfs_is_pid_1_sees_debian_and_cannot_write_it() {
    let debian = debian();
    let root = debian.path();
    let before = listing(root);
    let want_version = std::fs::read_to_string(root.join("etc/debian_version")).unwrap();
    let script = "cat /etc/debian_version; echo pid=$$; \
                  if touch /isobench-written 2>/dev/null; then echo root-writable; else echo root-read-only; fi; \
                  echo x > /tmp/isobench-written && echo tmp-writable";
    let cmd: Vec<OsString> = ["/bin/sh", "-c", script].iter().map(OsString::from).collect();
    let (out_r, out_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    let spec = LaunchSpec::new(NamespaceSet::DEFAULT, root, &cmd, Some("isobench-debian")).unwrap().with_read_only_root(root).unwrap();
    let mut process = container::spawn(&spec, Stdio { stdin: None, stdout: Some(out_w.as_fd()) }).unwrap();
    drop(out_w);
    let mut out = String::new();
    std::fs::File::from(out_r).read_to_string(&mut out).unwrap();
    assert_eq!(process.wait().unwrap(), 0, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines, [want_version.trim(), "pid=1", "root-read-only", "tmp-writable"], "{out}");
    // Nothing written inside reached the cache, and nothing stays mounted.
    assert!(!root.join("isobench-written").exists() && !root.join("tmp/isobench-written").exists());
    assert_eq!(listing(root), before, "the container changed the shared rootfs");
    assert!(mounted_under(root).is_empty(), "left mounted: {:?}", mounted_under(root));
}

fn isobench_exec_with_rootfs_debian_runs_behind_its_init() {
    let debian = debian();
    let before = listing(debian.path());
    // PID 1 is the launcher's init, the command PID 2; the exit status tells.
    let check = "test -s /etc/debian_version && test $$ = 2 && test -d /proc/1 && ! touch /isobench-written 2>/dev/null";
    let opts = ExecOptions { rootfs: RootfsChoice::Distro, ..ExecOptions::new(["sh", "-c", check].iter().map(OsString::from).collect()) };
    assert_eq!(container::exec(&opts, &workloads()).unwrap(), 0);
    // Without a mount namespace the shared rootfs cannot be read-only: refused.
    let opts = ExecOptions { namespaces: NamespaceSet::NONE, ..opts };
    let err = container::exec(&opts, &workloads()).unwrap_err().to_string();
    assert!(err.contains("needs a mount namespace"), "{err}");
    assert_eq!(listing(debian.path()), before);
    assert!(mounted_under(debian.path()).is_empty());
}

/// Starts `kind` on the debian rootfs, checks its metadata names the image
/// and that the agent measures syscall.getpid; `None` when the runtime
/// refuses this host (crun on a hybrid cgroup host where even the
/// workaround fails: reported, never a failed run). The tests' needs make
/// sure every runtime is installed, so nothing else may be unavailable.
fn agent_in(kind: EnvKind, debian: &DistroRootfs) -> Option<()> {
    let mut opts = Options::new(workloads());
    opts.container.rootfs = RootfsChoice::Distro;
    let temp_before = own_temp_dirs();
    let mut e = match env::prepare(kind, &opts) {
        Ok(e) => e,
        Err(EnvError::Unavailable { reason, .. }) => {
            assert!(kind == EnvKind::Crun && reason.starts_with("unsupported here: "), "{kind} is installed but unavailable: {reason}");
            eprintln!("{kind}: {reason}");
            return None;
        }
        Err(err) => panic!("{kind}: prepare: {err}"),
    };
    let meta = e.metadata();
    assert_eq!(meta["rootfs_image"], debian.name(), "{kind}: {meta}");
    assert_eq!(meta["rootfs"], debian.path().to_str().unwrap(), "{kind}: {meta}");
    assert_eq!(meta["rootfs_read_only"], true);
    let mut inst = e.start().unwrap_or_else(|err| panic!("{kind}: start: {err}"));
    let req: RunRequest =
        serde_json::from_value(serde_json::json!({ "metric": "syscall.getpid", "iterations": 200, "max_ms": 5_000, "warmup": 10 })).unwrap();
    let r = inst.agent().run(&req).unwrap_or_else(|err| panic!("{kind}: syscall.getpid: {err}"));
    assert_eq!(r.metric, "syscall.getpid");
    assert!(r.iterations > 0 && r.elapsed_ns > 0, "{kind}: measured nothing: {r:?}");
    inst.shutdown().unwrap_or_else(|err| panic!("{kind}: shutdown: {err}"));
    drop(e);
    assert_eq!(own_temp_dirs(), temp_before, "{kind}: temp dirs left");
    Some(())
}

fn the_agent_in_the_container_env_on_debian_answers_getpid() {
    let debian = debian();
    let before = listing(debian.path());
    agent_in(EnvKind::Container, &debian).expect("the container environment runs as root");
    assert_eq!(listing(debian.path()), before, "the container changed the shared rootfs");
    assert!(mounted_under(debian.path()).is_empty(), "left mounted: {:?}", mounted_under(debian.path()));
}

fn the_peers_run_the_agent_on_the_read_only_debian_rootfs() {
    let debian = debian();
    let before = listing(debian.path());
    for kind in [EnvKind::Runc, EnvKind::Crun, EnvKind::Bwrap] {
        agent_in(kind, &debian);
    }
    assert_eq!(listing(debian.path()), before, "a peer changed the shared rootfs");
    assert!(mounted_under(debian.path()).is_empty(), "left mounted: {:?}", mounted_under(debian.path()));
}

/// What debootstrap leaves when killed mid-build (its target, with /proc
/// mounted inside, named after a dead isobench) is unmounted and removed by
/// the sweep at the next start; a live build's dir is left alone.
fn a_killed_builds_dir_is_unmounted_then_removed() {
    let cache = isobench_harness::paths::cache_dir().join("rootfs");
    // Above pid_max (4194304 at most): never a live process.
    let tmp = cache.join(".tmp-debian-test-4194399");
    std::fs::create_dir_all(tmp.join("proc")).unwrap();
    std::fs::create_dir_all(tmp.join("usr/bin")).unwrap();
    nix::mount::mount(Some("proc"), &tmp.join("proc"), Some("proc"), nix::mount::MsFlags::empty(), None::<&str>).unwrap();
    let live = cache.join(format!(".tmp-debian-test-{}", std::process::id()));
    std::fs::create_dir(&live).unwrap();
    // Another isobench starting now (with this cache) may sweep it first;
    // either way it goes.
    let removed = distro::sweep();
    let live_kept = live.exists();
    std::fs::remove_dir(&live).unwrap();
    assert!(!tmp.exists(), "the dead build's dir is left: {removed:?}");
    assert!(!removed.contains(&live) && live_kept, "a live build's dir is left alone");
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mountinfo.contains(tmp.to_str().unwrap()), "left mounted:\n{mountinfo}");
}
