//! The vm's storage paths end to end, under TCG: every fs.* metric through
//! the runner on the guest's virtio-blk data disk, on its virtio-9p share
//! and on its virtiofs share, each moving the bytes it claims (the agent's
//! read-back, recorded in run.json), each row naming the path with QEMU's
//! modes or virtiofsd's cache mode; no disk image or shared directory left
//! after the run, and no virtiofsd, even after a kill -9 of the run and the
//! next start's sweep. With `--rootfs debian` the guest
//! runs on the container's very tree: its /etc/debian_version read through
//! the agent, its /noop exec'd by the spawn metric, and the cached image
//! never written (QEMU's snapshot=on). A guest kernel without virtio_blk
//! still boots and serves the other metrics; the fs.* ones are "not
//! measured" with the agent's reason.
//!
//! Needs qemu-system-x86_64, a guest image with the storage modules
//! (scripts/build-guest) and mkfs.ext4; a skip without them.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicUsize;
use std::time::{Duration, Instant};

use isobench_harness::env::vm::Vm;
use isobench_harness::env::{EnvKind, Environment, Options};
use isobench_harness::results::RunDir;
use isobench_harness::runner::{self, Outcome, Plan};
use isobench_harness::storage::{RunData, StorageKind, VmStorage};
use isobench_harness::vm::virtiofsd;
use isobench_harness::vm::AccelChoice;
use isobench_harness::workloads;
use isobench_testkit::fs::sizes;
use isobench_testkit::{trial, Need, Need::*};
use isobench_workloads::catalog::{self, Family, MetricSpec};
use isobench_workloads::metrics::fs::SMALL_FILE_BYTES;
use isobench_workloads::protocol::{PinMode, RunRequest};

const GUEST: &[Need] = &[Qemu, GuestImage, Mkfs];

fn main() {
    isobench_testkit::run(vec![
        trial!(every_fs_metric_moves_its_bytes_on_the_vm_data_disk).needs(GUEST),
        trial!(every_fs_metric_moves_its_bytes_on_the_vm_9p_share).needs(GUEST),
        trial!(every_fs_metric_moves_its_bytes_on_the_vm_virtiofs_share).needs(&[Root, Qemu, GuestImage, Mkfs, Virtiofsd]),
        trial!(helper_virtiofs_boot_and_wait).helper("run by kill_9_of_a_virtiofs_run_leaves_no_virtiofsd_after_the_sweep, then SIGKILLed"),
        trial!(kill_9_of_a_virtiofs_run_leaves_no_virtiofsd_after_the_sweep).needs(&[Root, Qemu, GuestImage, Virtiofsd]),
        trial!(an_orphaned_virtiofsd_of_a_dead_run_is_killed_by_the_sweep).needs(&[Root, Virtiofsd]),
        trial!(the_vm_runs_on_the_debian_tree_and_never_writes_its_cached_image).needs(&[Qemu, GuestImage, Mkfs, DebianRootfs]),
        trial!(a_tiny_data_dir_is_one_clear_line_and_the_other_rows_stay).needs(&[Root, Qemu, GuestImage, Mkfs]),
        trial!(helper_no_virtio_blk).helper("run by a_guest_kernel_without_virtio_blk_says_why_the_fs_metrics_are_not_measured with its own image"),
        trial!(a_guest_kernel_without_virtio_blk_says_why_the_fs_metrics_are_not_measured).needs(&[Qemu, GuestImage, ModularGuest, Mkfs, Cpio]),
    ]);
}

/// One guest at a time across test processes (the vm tests' lock).
fn one_guest() -> nix::fcntl::Flock<std::fs::File> {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("isobench-vm-tests.lock");
    let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(path).unwrap();
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive).map_err(|(_, e)| e).unwrap()
}

fn fs_metrics() -> Vec<&'static MetricSpec> {
    catalog::CATALOG.iter().filter(|m| m.family == Family::Fs).collect()
}

/// Quick counts and a 30 s bound: TCG is slow.
fn plan(metrics: Vec<&'static MetricSpec>) -> Plan {
    Plan { envs: vec![EnvKind::Vm], metrics, quick: true, iterations: None, max_ms: 30_000, pin: PinMode::Same, budget: None }
}

/// Runs the fs metrics in the vm with the run's data directory under a
/// temp dir; checks that the data directory (disk image or share) is gone
/// with the run.
fn run(storage: VmStorage, results: &Path) -> (Outcome, RunDir) {
    let base = tempfile::tempdir().unwrap();
    let data = RunData::create(base.path()).unwrap();
    let opts = Options {
        accel: AccelChoice::Tcg,
        data_dir: Some(data.path().to_path_buf()),
        vm_storage: storage,
        log_dir: Some(results.join("logs")),
        ..Options::new(workloads::locate().expect("static workloads"))
    };
    let out = RunDir::at(&results.join("run")).unwrap();
    let outcome = runner::execute(&plan(fs_metrics()), &opts, &out, &AtomicUsize::new(0), &mut |_| {}).unwrap();
    drop(data);
    let left: Vec<_> = std::fs::read_dir(base.path()).unwrap().map(|e| e.unwrap().path()).collect();
    assert!(left.is_empty(), "nothing of the run's data stays: {left:?}");
    (outcome, out)
}

/// A run of `metrics` in the vm with a data directory; returns the outcome
/// and the results folder.
fn run_metrics(storage: VmStorage, metrics: Vec<&'static MetricSpec>, results: &Path) -> (Outcome, RunDir) {
    let base = tempfile::tempdir().unwrap();
    run_metrics_in(base.path(), storage, metrics, results)
}

fn run_metrics_in(base: &Path, storage: VmStorage, metrics: Vec<&'static MetricSpec>, results: &Path) -> (Outcome, RunDir) {
    let data = RunData::create(base).unwrap();
    let opts = Options {
        accel: AccelChoice::Tcg,
        data_dir: Some(data.path().to_path_buf()),
        vm_storage: storage,
        log_dir: Some(results.join("logs")),
        ..Options::new(workloads::locate().expect("static workloads"))
    };
    let out = RunDir::at(&results.join("run")).unwrap();
    let outcome = runner::execute(&plan(metrics), &opts, &out, &AtomicUsize::new(0), &mut |_| {}).unwrap();
    (outcome, out)
}

/// Every fs metric measured in the vm on `kind`, each with its bytes moved,
/// its file's size and a verified read-back, its row naming the path.
/// Returns run.json's storage record and the vm's record.
fn check_all(storage: VmStorage, kind: StorageKind) -> (isobench_harness::results::run::StorageRecord, isobench_harness::results::run::EnvRecord) {
    let _guest = one_guest();
    let results = tempfile::tempdir().unwrap();
    let (outcome, out) = run(storage, results.path());
    assert!(outcome.failed.is_empty() && outcome.skipped.is_empty() && outcome.not_measured.is_empty(), "{outcome:?}");
    let record = out.run_record().unwrap();
    let e = &record.environments["vm"];
    let st = e.storage.clone().expect("run.json names the storage path");
    assert_eq!(st.kind, Some(kind));
    assert_eq!(st.agent_dir, isobench_workloads::guest::DATA_DIR);
    let rows = out.measurements().unwrap();
    for spec in fs_metrics() {
        assert!(!e.not_supported.contains_key(spec.name), "{}: {:?}", spec.name, e.not_supported);
        let row = rows.iter().find(|m| m.metric.name == spec.name).unwrap_or_else(|| panic!("{} has no row", spec.name));
        assert_eq!(row.storage.as_deref(), Some(st.describe().as_str()), "{}", spec.name);
        let io = &st.io[spec.name];
        // The write metrics lay their whole file out before the clock.
        let (file, per_op) = sizes(spec.name);
        assert_eq!(io.moved_bytes, row.iterations * per_op, "{}", spec.name);
        assert_eq!(io.file_bytes, file, "{}", spec.name);
        assert_eq!(io.verified_bytes, file.max(SMALL_FILE_BYTES), "{}", spec.name);
        assert!(io.dir.starts_with(isobench_workloads::guest::DATA_DIR), "{}: {}", spec.name, io.dir);
    }
    // The report's storage section names the path, with its modes, on the
    // environment's line and on every fs.* row.
    let md = std::fs::read_to_string(isobench_harness::report::render(&out).unwrap()).unwrap();
    let section = md.split("## Storage paths (fs.*)").nth(1).expect("a storage section");
    assert!(section.contains(&format!(": {} — the agent's `{}`", st.describe(), st.agent_dir)), "{section}");
    for spec in fs_metrics() {
        assert!(section.contains(&format!(" | {} | `{}` |", st.describe(), spec.name)), "{}: {section}", spec.name);
    }
    (st, e.clone())
}

fn every_fs_metric_moves_its_bytes_on_the_vm_data_disk() {
    let (st, _) = check_all(VmStorage::Disk, StorageKind::VirtioBlk);
    assert_eq!(st.fs.as_deref(), Some("ext4"), "the guest's own ext4 on the disk");
    let detail = st.detail.as_deref().unwrap_or_default();
    assert!(detail.starts_with("cache=") && detail.contains(",aio="), "QEMU's modes are named: {detail}");
    assert!(st.describe().contains(detail), "{}", st.describe());
    assert!(st.host_dir.as_deref().is_some_and(|h| h.ends_with(".img")), "{st:?}");
    // The O_DIRECT metrics ran with O_DIRECT inside the guest.
    assert!(st.io["fs.rand_read"].direct && !st.io["fs.seq_read_buffered_bw"].direct, "{st:?}");
}

fn every_fs_metric_moves_its_bytes_on_the_vm_9p_share() {
    let (st, _) = check_all(VmStorage::NineP, StorageKind::Virtio9p);
    // The agent's statfs reports the host's file system through 9p; the
    // record names the mount's.
    assert_eq!(st.fs.as_deref(), Some("9p"));
    let detail = st.detail.as_deref().unwrap_or_default();
    assert!(detail.contains("msize=512000") && detail.contains("O_DIRECT"), "{detail}");
    assert!(st.describe().contains("virtio-9p"), "{}", st.describe());
}

fn every_fs_metric_moves_its_bytes_on_the_vm_virtiofs_share() {
    let (st, vm) = check_all(VmStorage::Virtiofs, StorageKind::Virtiofs);
    // The instance's start counts from its virtiofsd's, before QEMU's,
    // which the boot's phases count from.
    let boot = vm.metadata.as_ref().and_then(|m| m.boots.as_ref()?.first()).expect("the measured instance's boot");
    assert!(vm.start_ms.unwrap() > boot.agent_ready_ms, "{:?} vs {boot:?}", vm.start_ms);
    assert_eq!(st.fs.as_deref(), Some("virtiofs"));
    let detail = st.detail.as_deref().unwrap_or_default();
    assert!(detail.contains(&format!("cache={}", virtiofsd::CACHE_MODE)) && detail.contains("O_DIRECT"), "{detail}");
    assert!(st.describe().contains("virtiofs") && st.describe().contains("cache="), "{}", st.describe());
    assert!(st.host_dir.as_deref().is_some_and(|h| h.ends_with("/vm")), "{st:?}");
    assert_eq!(virtiofsd::of_owner(std::process::id() as i32), Vec::<i32>::new(), "no virtiofsd outlives the run");
}

/// Temp dirs of isobench process `owner` (QEMU's, which hold the sockets).
fn temp_dirs_of(owner: u32) -> Vec<PathBuf> {
    let prefix = format!("isobench-{owner}-");
    std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .collect()
}

fn alive(pid: i32) -> bool {
    // A zombie is not alive: its parent has not reaped it yet.
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.rsplit(')').next().is_some_and(|r| !r.trim_start().starts_with('Z')))
}

/// Helper: boots a guest with a virtiofs share, says `HOLD <virtiofsd pid>`
/// and waits to be killed.
fn helper_virtiofs_boot_and_wait() {
    let base = tempfile::tempdir().unwrap();
    let data = RunData::create(base.path()).unwrap();
    let opts = Options {
        accel: AccelChoice::Tcg,
        data_dir: Some(data.path().to_path_buf()),
        vm_storage: VmStorage::Virtiofs,
        ..Options::new(workloads::locate().expect("static workloads"))
    };
    let mut vm = Vm::prepare(&opts).expect("the vm prepares");
    let _inst = vm.start().expect("the guest boots with its virtiofs share");
    let daemons = virtiofsd::of_owner(std::process::id() as i32);
    assert!(!daemons.is_empty(), "a virtiofsd serves the guest");
    println!("HOLD {}", daemons.iter().map(i32::to_string).collect::<Vec<_>>().join(","));
    std::thread::sleep(Duration::from_secs(300));
}

/// A run killed with its guest up: its virtiofsd goes (it dies with its
/// starter and exits once QEMU is gone) and the next start's sweep leaves
/// no daemon and no socket of it.
fn kill_9_of_a_virtiofs_run_leaves_no_virtiofsd_after_the_sweep() {
    let _guest = one_guest();
    let mut holder = isobench_testkit::helper("helper_virtiofs_boot_and_wait");
    let mut child = holder.stdout(std::process::Stdio::piped()).spawn().unwrap();
    let owner = child.id();
    let held = isobench_testkit::hold_line(&mut child);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let daemons: Vec<i32> = held.expect("the helper booted its guest").split(',').map(|p| p.parse().unwrap()).collect();
    isobench_harness::cleanup::sweep();
    let deadline = Instant::now() + Duration::from_secs(5);
    while daemons.iter().any(|&p| alive(p)) || !virtiofsd::of_owner(owner as i32).is_empty() {
        assert!(Instant::now() < deadline, "virtiofsd outlived a kill -9 of its run and the sweep: {daemons:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(temp_dirs_of(owner), Vec::<PathBuf>::new(), "the sweep removes the killed run's temp dir with the socket");
}

/// A virtiofsd that neither died with its run nor saw a QEMU (its starter
/// gone before QEMU connected): the sweep finds it by the dead run's temp
/// dir on its command line, kills it, and the socket goes with the dir.
fn an_orphaned_virtiofsd_of_a_dead_run_is_killed_by_the_sweep() {
    // A pid that just exited: a dead run's.
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    let dead = gone.id();
    gone.wait().unwrap();
    let dir = std::env::temp_dir().join(format!("isobench-{dead}-vm-orphan"));
    std::fs::create_dir_all(&dir).unwrap();
    let share = tempfile::tempdir().unwrap();
    let socket = dir.join("virtiofs.sock");
    // Not through isobench's spawn: no parent-death signal ties it to us.
    let mut d = virtiofsd::command(&virtiofsd::find().unwrap(), share.path(), &socket, virtiofsd::CACHE_MODE)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !socket.exists() {
        assert!(Instant::now() < deadline && d.try_wait().unwrap().is_none(), "virtiofsd made no socket");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(virtiofsd::of_owner(dead as i32).contains(&(d.id() as i32)), "the daemon is found by its socket's dir");
    let killed = virtiofsd::sweep();
    assert!(killed.contains(&(d.id() as i32)), "{killed:?}");
    let status = d.wait().unwrap();
    assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(libc::SIGKILL), "{status}");
    isobench_harness::cleanup::sweep_all();
    assert!(!dir.exists() && !socket.exists(), "the socket goes with the dead run's temp dir");
}

fn the_vm_runs_on_the_debian_tree_and_never_writes_its_cached_image() {
    let _guest = one_guest();
    let workloads = workloads::locate().expect("static workloads");
    let mut opts = Options { accel: AccelChoice::Tcg, ..Options::new(workloads) };
    opts.container.rootfs = isobench_harness::container::RootfsChoice::Distro;
    let mut vm = Vm::prepare(&opts).expect("the vm prepares with the debian root");
    let meta = vm.metadata();
    assert_eq!(meta["root"]["kind"], "disk", "{}", meta["root"]);
    let tree = std::path::PathBuf::from(meta["root"]["tree"].as_str().unwrap());
    let image = std::path::PathBuf::from(meta["root"]["image"].as_str().unwrap());
    let before = std::fs::metadata(&image).unwrap();
    let mut inst = vm.start().unwrap_or_else(|e| panic!("the guest boots on its root disk: {e}"));
    // The container's file, read by the agent inside the guest.
    let want = std::fs::read_to_string(tree.join("etc/debian_version")).unwrap();
    assert_eq!(inst.agent().read_file("/etc/debian_version").unwrap(), want);
    let mounts = inst.agent().read_file("/proc/mounts").unwrap();
    assert!(mounts.lines().any(|l| l.starts_with("/dev/vd") && l.split(' ').nth(1) == Some("/") && l.contains(" ext4 ")), "{mounts}");
    assert!(inst.agent().read_file("/bin/sh").is_err_and(|e| e.to_string().contains("longer than")), "the image's /bin/sh is there");
    // The spawn metric execs the image's /noop (a file of the tree).
    let r = inst.agent().run(&RunRequest::new("spawn.fork_exec", 5, 30_000)).unwrap();
    assert!(r.iterations >= 5, "{r:?}");
    // A write to the root goes to QEMU's snapshot overlay: the fs metric's
    // files under /root, then the cached image unchanged.
    let mut req = RunRequest::new("fs.create_unlink", 20, 30_000);
    req.data_dir = Some("/root".into());
    inst.agent().run(&req).unwrap();
    inst.shutdown().unwrap();
    let after = std::fs::metadata(&image).unwrap();
    assert_eq!((after.len(), after.modified().unwrap()), (before.len(), before.modified().unwrap()), "the cached image is never written");
    let meta = vm.metadata();
    let root = meta["mounts"].as_array().unwrap().iter().find(|m| m["role"] == "root").cloned().unwrap_or_default();
    assert_eq!(root["fstype"], "ext4", "{meta}");
    assert!(root.get("error").is_none(), "{root}");
}

/// In a child whose guest image lacks virtio_blk: the data disk cannot be
/// mounted, the fs metric is not measured with the agent's reason, the
/// other metric is measured.
fn helper_no_virtio_blk() {
    let results = tempfile::tempdir().unwrap();
    let metrics = ["syscall.getpid", "fs.stat"].map(|n| catalog::lookup(n).unwrap()).to_vec();
    let (outcome, out) = run_metrics(VmStorage::Disk, metrics, results.path());
    assert!(outcome.failed.is_empty() && outcome.skipped.is_empty(), "{outcome:?}");
    assert_eq!(outcome.measured, 1, "{outcome:?}");
    assert_eq!(outcome.not_measured.len(), 1, "{outcome:?}");
    let line = &outcome.not_measured[0];
    assert!(line.contains("fs.stat: not measured: the guest could not mount its virtio-blk disk"), "{line}");
    assert!(line.contains("virtio_blk is not in this guest kernel"), "{line}");
    let record = out.run_record().unwrap();
    assert!(record.environments["vm"].storage_not_measured.as_deref().is_some_and(|w| w.contains("virtio_blk")), "{record:?}");
}

fn a_guest_kernel_without_virtio_blk_says_why_the_fs_metrics_are_not_measured() {
    let _guest = one_guest();
    let real = isobench_harness::vm::image::locate().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    let sh = |script: String| {
        let status = std::process::Command::new("sh").arg("-c").arg(&script).status().unwrap();
        assert!(status.success(), "{script}");
    };
    // The real initramfs, its module list without virtio_blk: what a kernel
    // that lacks the driver gives the agent.
    sh(format!("cd '{}' && cpio -id --quiet < '{}'", root.display(), real.initrd.display()));
    let order = root.join("lib/modules/modules.order");
    let text = std::fs::read_to_string(&order).unwrap();
    assert!(text.lines().any(|l| l == "virtio_blk.ko"), "the real image loads virtio_blk: {text}");
    std::fs::write(&order, text.lines().filter(|l| *l != "virtio_blk.ko").map(|l| format!("{l}\n")).collect::<String>()).unwrap();
    let cpio = dir.path().join("no-blk.cpio");
    sh(format!("cd '{}' && find . -mindepth 1 | cpio -o -H newc -R 0:0 --quiet > '{}'", root.display(), cpio.display()));
    let manifest = serde_json::json!({
        "kernel_version": real.kernel_version, "kernel_source": "test",
        "kernel": real.kernel, "vmlinux": real.vmlinux, "initrd": cpio,
    });
    std::fs::write(dir.path().join(isobench_harness::vm::image::MANIFEST_FILE), manifest.to_string()).unwrap();
    let out = isobench_testkit::helper("helper_no_virtio_blk").env(isobench_harness::vm::image::GUEST_DIR_ENV, dir.path()).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    eprintln!("{text}");
    assert!(out.status.success() && text.contains("1 passed"), "the helper failed in the child:\n{text}");
}

/// A data directory without room for the disk image: one line naming the
/// directory and the space needed, as natively; the other metric measured.
fn a_tiny_data_dir_is_one_clear_line_and_the_other_rows_stay() {
    let _guest = one_guest();
    let tiny = tempfile::tempdir().unwrap();
    nix::mount::mount(Some("tmpfs"), tiny.path(), Some("tmpfs"), nix::mount::MsFlags::empty(), Some("size=8m")).unwrap();
    let results = tempfile::tempdir().unwrap();
    let metrics = ["syscall.getpid", "fs.stat"].map(|n| catalog::lookup(n).unwrap()).to_vec();
    let (outcome, out) = run_metrics_in(tiny.path(), VmStorage::Disk, metrics, results.path());
    let left: Vec<_> = std::fs::read_dir(tiny.path()).unwrap().map(|e| e.unwrap().path()).collect();
    let _ = nix::mount::umount2(tiny.path(), nix::mount::MntFlags::MNT_DETACH);
    assert!(left.is_empty(), "nothing stays: {left:?}");
    assert_eq!(outcome.measured, 1, "{outcome:?}");
    assert_eq!(outcome.not_measured.len(), 1, "{outcome:?}");
    let line = &outcome.not_measured[0];
    assert!(!line.contains('\n'), "{line}");
    let want = format!("fs.stat: not measured: data directory {}/isobench-", tiny.path().display());
    let need = format!("/vm: needs {} MiB free, ", isobench_harness::vm::disk::DATA_DISK_BYTES >> 20);
    assert!(line.contains(&want) && line.contains(&need) && line.ends_with(" MiB free"), "{line}");
    assert!(out.measurements().unwrap().iter().any(|m| m.metric.name == "syscall.getpid"));
}
