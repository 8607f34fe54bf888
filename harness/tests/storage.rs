//! The fs.* metrics through the runner, on each storage path: natively in
//! a host directory, in the container and the peers (runc, crun, runsc,
//! bwrap) on a volume and on their writable root (a tmpfs over the
//! read-only image, `docker`'s overlay, runsc's own overlay), unshare's
//! host directory.
//! Each metric must move the bytes it claims (the agent's read-back: file
//! sizes and checksums, recorded in run.json), never timing; the run's
//! data directory must be gone afterwards. A tiny tmpfs data directory
//! gives one clear line naming it and the space needed, with the other
//! rows kept; a file system without O_DIRECT (ramfs) makes the direct
//! metrics "not supported" while the buffered ones run.

use std::path::Path;
use std::sync::atomic::AtomicUsize;

use isobench_harness::container::profile::Profile;
use isobench_harness::env::{EnvKind, Options};
use isobench_harness::results::RunDir;
use isobench_harness::runner::{self, Outcome, Plan};
use isobench_harness::storage::{ContainerStorage, RunData, StorageKind};
use isobench_harness::workloads;
use isobench_testkit::fs::sizes;
use isobench_testkit::{trial, Need::*};
use isobench_workloads::catalog::{self, Family, MetricSpec};
use isobench_workloads::metrics::fs::{SEQ_FILE_BYTES, SMALL_FILE_BYTES};
use isobench_workloads::protocol::PinMode;

fn main() {
    isobench_testkit::run(vec![
        trial!(every_fs_metric_moves_its_bytes_natively),
        trial!(every_fs_metric_moves_its_bytes_on_a_container_volume).needs(&[Root]),
        trial!(every_fs_metric_moves_its_bytes_on_the_container_root).needs(&[Root]),
        trial!(every_fs_metric_moves_its_bytes_on_a_runc_volume).needs(&[Root, Runc]),
        trial!(every_fs_metric_moves_its_bytes_on_the_runc_root).needs(&[Root, Runc]),
        trial!(every_fs_metric_moves_its_bytes_on_the_runc_overlay_root_under_docker).needs(&[Root, Runc, SeccompProfile, Nft]),
        trial!(every_fs_metric_moves_its_bytes_on_a_crun_volume).needs(&[Root, Crun]),
        trial!(every_fs_metric_moves_its_bytes_on_the_crun_root).needs(&[Root, Crun]),
        trial!(every_fs_metric_moves_its_bytes_on_a_runsc_volume_through_the_gofer).needs(&[Root, Runsc]),
        trial!(every_fs_metric_moves_its_bytes_on_runscs_own_root_overlay).needs(&[Root, Runsc]),
        trial!(every_fs_metric_moves_its_bytes_on_the_runsc_overlayfs_root_under_docker).needs(&[Root, Runsc, SeccompProfile, Nft]),
        trial!(runscs_gofer_opens_the_host_file_without_o_direct_as_its_row_says).needs(&[Root, Runsc]),
        trial!(every_fs_metric_moves_its_bytes_on_a_bwrap_volume_and_root).needs(&[Root, Bwrap]),
        trial!(every_fs_metric_moves_its_bytes_in_unshares_host_directory).needs(&[Root, Unshare]),
        trial!(a_tiny_tmpfs_data_dir_is_one_clear_error_and_earlier_rows_stay).needs(&[Root]),
        trial!(without_o_direct_the_direct_metrics_are_not_supported_and_buffered_ones_run).needs(&[Root]),
    ]);
}

fn fs_metrics() -> Vec<&'static MetricSpec> {
    catalog::CATALOG.iter().filter(|m| m.family == Family::Fs).collect()
}

/// The tests' plan: quick counts, a 20 s bound.
fn plan(envs: Vec<EnvKind>, metrics: Vec<&'static MetricSpec>) -> Plan {
    Plan { envs, metrics, quick: true, iterations: None, max_ms: 20_000, pin: PinMode::Same, budget: None }
}

/// Runs `metrics` in `env` with the run's data directory under `base`;
/// returns the outcome and the results folder (in `results`).
fn run(env: EnvKind, storage: ContainerStorage, metrics: Vec<&'static MetricSpec>, base: &Path, results: &Path) -> (Outcome, RunDir) {
    run_as(env, storage, Profile::Default, metrics, base, results)
}

/// [`run`] under a security profile.
fn run_as(
    env: EnvKind,
    storage: ContainerStorage,
    profile: Profile,
    metrics: Vec<&'static MetricSpec>,
    base: &Path,
    results: &Path,
) -> (Outcome, RunDir) {
    run_plan(&plan(vec![env], metrics), storage, profile, base, results)
}

/// [`run_as`] of any plan.
fn run_plan(plan: &Plan, storage: ContainerStorage, profile: Profile, base: &Path, results: &Path) -> (Outcome, RunDir) {
    let data = RunData::create(base).unwrap();
    let mut opts = Options {
        data_dir: Some(data.path().to_path_buf()),
        container_storage: storage,
        ..Options::new(workloads::locate().expect("static workloads"))
    };
    opts.container.profile = profile;
    let out = RunDir::at(&results.join("run")).unwrap();
    let outcome = runner::execute(plan, &opts, &out, &AtomicUsize::new(0), &mut |_| {}).unwrap();
    let dir = data.path().to_path_buf();
    drop(data);
    assert!(!dir.exists(), "the run's data directory {} is removed with it", dir.display());
    (outcome, out)
}

/// Every fs metric of `env` measured on `kind`, each with its bytes moved,
/// its file's size and a verified read-back in run.json, and its row naming
/// the storage path. Returns the file system the agent saw.
fn check_all(env: EnvKind, storage: ContainerStorage, kind: StorageKind) -> String {
    check_all_as(env, storage, Profile::Default, kind)
}

/// [`check_all`] under a security profile.
fn check_all_as(env: EnvKind, storage: ContainerStorage, profile: Profile, kind: StorageKind) -> String {
    let base = tempfile::tempdir().unwrap();
    let results = tempfile::tempdir().unwrap();
    let (outcome, out) = run_as(env, storage, profile, fs_metrics(), base.path(), results.path());
    assert!(outcome.failed.is_empty() && outcome.skipped.is_empty(), "{outcome:?}");
    // Only a refused O_DIRECT, or under runsc a timing refused because the
    // sandbox's clock stood still and its loop was too short for the host to
    // time, may leave a metric without its row or a host-timed figure.
    let refused =
        |l: &String| l.contains("not supported on ") || (env == EnvKind::Runsc && l.contains("not supported under runsc: the sandbox's clock"));
    assert!(outcome.not_measured.iter().all(refused), "{outcome:?}");
    let record = out.run_record().unwrap();
    let e = &record.environments[env.as_str()];
    let st = e.storage.as_ref().expect("run.json names the storage path");
    assert_eq!(st.kind, Some(kind));
    let fs = st.fs.clone().expect("the agent's file system");
    let rows = out.measurements().unwrap();
    for spec in fs_metrics() {
        let why = e.not_supported.get(spec.name);
        if let Some(why) = why.filter(|w| w.starts_with("not supported on ")) {
            assert!(why.ends_with(": O_DIRECT refused (EINVAL)"), "{}: {why}", spec.name);
            continue;
        }
        // A row, or (runsc) a timing refused: the agent's check is in run.json either way.
        let io = st.io.get(spec.name).unwrap_or_else(|| panic!("{}: no io check in run.json", spec.name));
        let (file, per_op) = sizes(spec.name);
        let row = rows.iter().find(|m| m.metric.name == spec.name);
        let timed = e.host_timed.get(spec.name);
        match (row, timed) {
            (Some(row), None) => assert_eq!(row.storage.as_deref(), Some(st.describe().as_str()), "{}", spec.name),
            // runsc's clock refused, the host timed the loop: the same path named.
            (None, Some(h)) => {
                assert_eq!(env, EnvKind::Runsc, "{}: only runsc's timing is refused", spec.name);
                assert_eq!(h.storage.as_deref(), Some(st.describe().as_str()), "{}", spec.name);
                assert!(h.host_loop_ns > 0 && why.is_none(), "{}: {h:?} {why:?}", spec.name);
            }
            (None, None) => assert!(why.is_some(), "{} has no row and no reason", spec.name),
            (Some(_), Some(h)) => panic!("{}: a row and a host-timed figure: {h:?}", spec.name),
        }
        // The timed iterations: the row's or the host-timed loop's, else
        // what the check says it moved.
        let iterations = row.map(|r| r.iterations).or(timed.map(|h| h.operations)).unwrap_or(io.moved_bytes / per_op.max(1));
        // The row's iterations are the timed ones; the check counts them too.
        assert_eq!(io.moved_bytes, iterations * per_op, "{}", spec.name);
        assert!(io.moved_bytes > 0 || per_op == 0, "{}: moved nothing", spec.name);
        assert_eq!(io.file_bytes, file, "{}", spec.name);
        assert_eq!(io.verified_bytes, file.max(SMALL_FILE_BYTES), "{}", spec.name);
        assert_eq!(io.fs, fs, "{}", spec.name);
    }
    // The report's storage section has a row for each, naming the path.
    let md = std::fs::read_to_string(out.path.join("report.md")).unwrap();
    assert!(md.contains("## Storage paths (fs.*)"), "{md}");
    for m in rows.iter().filter(|m| m.metric.family == Family::Fs) {
        let row = format!("| {} | `{}` |", st.describe(), m.metric.name);
        assert!(md.contains(&row), "no row {row} in:\n{md}");
    }
    for metric in e.host_timed.keys() {
        let row = format!("· timed by the host | {} | `{metric}` |", st.describe());
        assert!(md.contains(&row), "no row {row} in:\n{md}");
    }
    fs
}

fn every_fs_metric_moves_its_bytes_natively() {
    let fs = check_all(EnvKind::Native, ContainerStorage::Volume, StorageKind::HostDirectory);
    assert_ne!(fs, "unknown");
}

fn every_fs_metric_moves_its_bytes_on_a_container_volume() {
    let base = tempfile::tempdir().unwrap();
    let host_fs = isobench_workloads::metrics::spawn::fs_name(base.path());
    let fs = check_all(EnvKind::Container, ContainerStorage::Volume, StorageKind::Volume);
    assert_eq!(fs, host_fs, "a volume shows the host directory's file system");
}

fn every_fs_metric_moves_its_bytes_on_the_container_root() {
    let fs = check_all(EnvKind::Container, ContainerStorage::Root, StorageKind::ContainerRoot);
    // The default profile's read-only image has a tmpfs /tmp; docker's an overlay root.
    assert!(fs == "tmpfs" || fs == "overlay", "{fs}");
}

/// The host directory's file system, as the agent on a volume must see it.
fn host_fs() -> String {
    isobench_workloads::metrics::spawn::fs_name(&std::env::temp_dir())
}

fn every_fs_metric_moves_its_bytes_on_a_runc_volume() {
    assert_eq!(check_all(EnvKind::Runc, ContainerStorage::Volume, StorageKind::Volume), host_fs());
}

fn every_fs_metric_moves_its_bytes_on_the_runc_root() {
    // The minimal image is read-only, with a tmpfs /tmp (read_only_root).
    assert_eq!(check_all(EnvKind::Runc, ContainerStorage::Root, StorageKind::ContainerRoot), "tmpfs");
}

fn every_fs_metric_moves_its_bytes_on_the_runc_overlay_root_under_docker() {
    assert_eq!(check_all_as(EnvKind::Runc, ContainerStorage::Root, Profile::Docker, StorageKind::ContainerRoot), "overlay");
}

fn every_fs_metric_moves_its_bytes_on_a_crun_volume() {
    assert_eq!(check_all(EnvKind::Crun, ContainerStorage::Volume, StorageKind::Volume), host_fs());
}

fn every_fs_metric_moves_its_bytes_on_the_crun_root() {
    assert_eq!(check_all(EnvKind::Crun, ContainerStorage::Root, StorageKind::ContainerRoot), "tmpfs");
}

fn every_fs_metric_moves_its_bytes_on_a_runsc_volume_through_the_gofer() {
    // gVisor's gofer mounts answer statfs as 9p, whatever the host's file system.
    assert_eq!(check_all(EnvKind::Runsc, ContainerStorage::Volume, StorageKind::GoferVolume), "9p");
}

/// The flags (octal, as /proc's fdinfo gives them) of every descriptor a
/// runsc process (`runsc…` as its argv[0]: the sandbox, the gofer) holds on
/// a file whose path ends with `suffix`.
fn runsc_descriptors_of(suffix: &str) -> Vec<u32> {
    let mut flags = Vec::new();
    for p in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmdline) = std::fs::read(p.path().join("cmdline")) else { continue };
        let argv0 = cmdline.split(|b| *b == 0).next().map(String::from_utf8_lossy).unwrap_or_default();
        if !Path::new(argv0.as_ref()).file_name().is_some_and(|n| n.to_string_lossy().starts_with("runsc")) {
            continue;
        }
        for fd in std::fs::read_dir(p.path().join("fd")).into_iter().flatten().flatten() {
            if !std::fs::read_link(fd.path()).is_ok_and(|l| l.to_string_lossy().ends_with(suffix)) {
                continue;
            }
            let info = std::fs::read_to_string(p.path().join("fdinfo").join(fd.file_name())).unwrap_or_default();
            let octal = info.lines().find_map(|l| l.strip_prefix("flags:")).map(str::trim);
            flags.extend(octal.and_then(|o| u32::from_str_radix(o, 8).ok()));
        }
    }
    flags
}

/// The gofer volume's row says the host's page cache serves runsc's
/// O_DIRECT I/O; so it must be: while the agent reads its O_DIRECT file,
/// every descriptor runsc holds on that file on the host lacks O_DIRECT.
fn runscs_gofer_opens_the_host_file_without_o_direct_as_its_row_says() {
    let base = tempfile::tempdir().unwrap();
    let results = tempfile::tempdir().unwrap();
    let spec = catalog::lookup("fs.rand_read").unwrap();
    // A loop of seconds, long enough to catch it open.
    let plan = Plan { iterations: Some(50_000), ..plan(vec![EnvKind::Runsc], vec![spec]) };
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = std::thread::spawn({
        let done = done.clone();
        move || {
            let mut seen = Vec::new();
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                seen.extend(runsc_descriptors_of("/isobench-fs.rand_read/rand"));
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            seen
        }
    });
    let (outcome, out) = run_plan(&plan, ContainerStorage::Volume, Profile::Default, base.path(), results.path());
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let seen = watcher.join().unwrap();
    assert!(outcome.failed.is_empty() && outcome.skipped.is_empty(), "{outcome:?}");
    assert!(!seen.is_empty(), "no runsc process was seen holding the file");
    let octal: Vec<String> = seen.iter().map(|f| format!("{f:o}")).collect();
    assert!(seen.iter().all(|f| f & libc::O_DIRECT as u32 == 0), "O_DIRECT on the host: {octal:?}");
    let st = out.run_record().unwrap().environments["runsc"].storage.clone().unwrap();
    assert_eq!(st.kind, Some(StorageKind::GoferVolume));
    assert!(st.describe().contains("without O_DIRECT"), "{}", st.describe());
}

fn every_fs_metric_moves_its_bytes_on_runscs_own_root_overlay() {
    // gVisor's overlay answers statfs as overlayfs: had the writes gone to
    // the image through the gofer, the agent would have seen 9p.
    let fs = check_all(EnvKind::Runsc, ContainerStorage::Root, StorageKind::SandboxOverlay);
    assert_eq!(fs, "overlay");
}

fn every_fs_metric_moves_its_bytes_on_the_runsc_overlayfs_root_under_docker() {
    assert_eq!(check_all_as(EnvKind::Runsc, ContainerStorage::Root, Profile::Docker, StorageKind::GoferRoot), "9p");
}

fn every_fs_metric_moves_its_bytes_on_a_bwrap_volume_and_root() {
    assert_eq!(check_all(EnvKind::Bwrap, ContainerStorage::Volume, StorageKind::Volume), host_fs());
    assert_eq!(check_all(EnvKind::Bwrap, ContainerStorage::Root, StorageKind::ContainerRoot), "tmpfs");
}

fn every_fs_metric_moves_its_bytes_in_unshares_host_directory() {
    // unshare(1) binds nothing: the host directory whatever --container-storage says.
    assert_eq!(check_all(EnvKind::Unshare, ContainerStorage::Root, StorageKind::HostDirectory), host_fs());
}

/// A file system mounted on a temp dir for one test, unmounted on drop.
struct Mounted(tempfile::TempDir);

impl Mounted {
    fn new(fstype: &str, data: Option<&str>) -> Mounted {
        let d = tempfile::tempdir().unwrap();
        nix::mount::mount(Some(fstype), d.path(), Some(fstype), nix::mount::MsFlags::empty(), data).unwrap();
        Mounted(d)
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(self.0.path(), nix::mount::MntFlags::MNT_DETACH);
    }
}

fn a_tiny_tmpfs_data_dir_is_one_clear_error_and_earlier_rows_stay() {
    let tiny = Mounted::new("tmpfs", Some("size=2m"));
    let results = tempfile::tempdir().unwrap();
    let metrics = ["syscall.getpid", "fs.seq_write_bw", "fs.stat"].map(|n| catalog::lookup(n).unwrap()).to_vec();
    let (outcome, out) = run(EnvKind::Native, ContainerStorage::Volume, metrics, tiny.0.path(), results.path());
    assert_eq!(outcome.failed.len(), 1, "{outcome:?}");
    let line = &outcome.failed[0];
    assert!(!line.contains('\n'), "{line}");
    let want = format!("data directory {}/isobench-", tiny.0.path().display());
    let need = format!("needs {} MiB free, ", (SEQ_FILE_BYTES >> 20) + 1);
    assert!(line.contains("fs.seq_write_bw") && line.contains(&want) && line.contains(&need), "{line}");
    let rows: Vec<&str> = out.measurements().unwrap().iter().map(|m| m.metric.name).collect();
    assert_eq!(rows, ["syscall.getpid", "fs.stat"], "the rows before and after are kept");
}

fn without_o_direct_the_direct_metrics_are_not_supported_and_buffered_ones_run() {
    let ramfs = Mounted::new("ramfs", None);
    let results = tempfile::tempdir().unwrap();
    let metrics = ["fs.seq_write_bw", "fs.seq_write_buffered_bw", "fs.rand_read"].map(|n| catalog::lookup(n).unwrap()).to_vec();
    let (outcome, out) = run(EnvKind::Native, ContainerStorage::Volume, metrics, ramfs.0.path(), results.path());
    assert!(outcome.failed.is_empty(), "{outcome:?}");
    assert_eq!(outcome.not_measured.len(), 2, "{outcome:?}");
    let record = out.run_record().unwrap();
    let e = &record.environments["native"];
    for m in ["fs.seq_write_bw", "fs.rand_read"] {
        assert_eq!(e.not_supported.get(m).map(String::as_str), Some("not supported on ramfs: O_DIRECT refused (EINVAL)"), "{m}");
    }
    let rows: Vec<&str> = out.measurements().unwrap().iter().map(|m| m.metric.name).collect();
    assert_eq!(rows, ["fs.seq_write_buffered_bw"]);
}
