//! The vm environment end to end: a TCG guest boots (microvm through PVH by
//! default, q35 through the bzImage as the fallback), its agent answers, it
//! powers off, its boot phases are recorded in order, and no QEMU process or
//! temp dir of ours outlives a run, a failed boot or a `kill -9` of the
//! process that started it. `--require-kvm` on a host where KVM cannot boot
//! the guest fails with the reason instead of falling back.
//!
//! Needs qemu-system-x86_64 and a guest image (scripts/build-guest); a skip
//! without them. scripts/test builds the image first. What CI's machine
//! cannot have, a KVM that boots a stock guest, is an ignored test of its
//! own.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use isobench_harness::env::vm::Vm;
use isobench_harness::env::{EnvError, Environment, Instance, Options};
use isobench_harness::vm::{image, qemu, Accel, AccelChoice, BootProtocol, Machine, VmSettings};
use isobench_testkit::{trial, Need, Need::*};
use isobench_workloads::protocol::RunRequest;

/// QEMU and the guest image scripts/build-guest makes.
const GUEST: &[Need] = &[Qemu, GuestImage];

fn main() {
    isobench_testkit::run(vec![
        trial!(boots_under_tcg_answers_and_powers_off).needs(GUEST),
        trial!(a_guest_missing_its_timeout_is_killed_and_reported).needs(GUEST),
        trial!(dropping_a_running_guest_kills_qemu).needs(GUEST),
        trial!(helper_boot_and_wait).helper("run by kill_9_of_the_starter_takes_qemu_along, then SIGKILLed"),
        trial!(kill_9_of_the_starter_takes_qemu_along).needs(GUEST),
        trial!(auto_accel_gives_a_verdict_with_its_reason).needs(&[Qemu, GuestImage, KvmAccess]),
        trial!(require_kvm_fails_with_the_reason_instead_of_falling_back).needs(&[Qemu, GuestImage, KvmAccess]),
        trial!(helper_fallback).helper("run by a_vmlinux_qemu_refuses_falls_back_to_the_bzimage_on_q35 with its own image"),
        trial!(a_vmlinux_qemu_refuses_falls_back_to_the_bzimage_on_q35).needs(GUEST),
        trial!(helper_dead_init).helper("run by a_guest_whose_init_dies_is_reported_at_once with its own image"),
        trial!(a_guest_whose_init_dies_is_reported_at_once).needs(&[Qemu, GuestImage, Cpio]),
        trial!(a_kvm_probe_whose_guest_stays_silent_gives_up_early).needs(&[Qemu, GuestImage, KvmAccess, KvmPvm]),
        trial!(boots_under_kvm_answers_and_powers_off).needs(&[Qemu, GuestImage, KvmBoots]),
    ]);
}

/// One guest at a time: guests share the host's cores, and a TCG boot on a
/// loaded host is slow. A mutex serializes the tests of one process (cargo
/// test), an exclusive flock those in separate processes (cargo nextest).
static SERIAL: Mutex<()> = Mutex::new(());

struct OneGuest {
    _thread: std::sync::MutexGuard<'static, ()>,
    _process: nix::fcntl::Flock<std::fs::File>,
}

fn one_guest() -> OneGuest {
    let thread = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // In the build tree, not /tmp: nothing of isobench outlives the run.
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("isobench-vm-tests.lock");
    let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(path).unwrap();
    let process = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive).map_err(|(_, e)| e).unwrap();
    OneGuest { _thread: thread, _process: process }
}

/// The vm environment under TCG.
fn prepared(log_dir: Option<PathBuf>) -> Vm {
    prepared_with(log_dir, VmSettings::default())
}

fn prepared_with(log_dir: Option<PathBuf>, vm: VmSettings) -> Vm {
    let workloads = isobench_harness::workloads::locate().expect("static workloads");
    let opts = Options { accel: AccelChoice::Tcg, log_dir, vm, ..Options::new(workloads) };
    Vm::prepare(&opts).expect("vm prepares when qemu and the image exist")
}

/// Starts a guest, panicking with its console log when it does not come up.
fn start_or_show_console(vm: &mut Vm, logs: &std::path::Path, n: u32) -> Box<dyn Instance> {
    match vm.start() {
        Ok(i) => i,
        Err(e) => {
            let log = logs.join(format!("vm-console-{}-{n}.log", std::process::id()));
            panic!("guest did not boot: {e}\n--- console ---\n{}", std::fs::read_to_string(log).unwrap_or_default());
        }
    }
}

/// The phases of a running guest are the expected ones, positive and in
/// order, and end at the host-measured ready time.
fn assert_running_phases(inst: &dyn Instance) {
    let phases = inst.phases();
    let names: Vec<&str> = phases.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["first_console_output", "agent_ready"], "{phases:?}");
    assert!(phases[0].1 > 0.0 && phases[0].1 <= phases[1].1, "{phases:?}");
    assert!((phases[1].1 - inst.ready_after().as_secs_f64() * 1e3).abs() < 1e-6, "agent_ready is ready_after: {phases:?}");
}

/// After a clean shutdown the environment's record has all four phases, in order.
fn assert_full_record(vm: &Vm, start: u32) {
    let meta = vm.metadata();
    let boot = meta["boots"].as_array().unwrap().iter().find(|b| b["start"] == start).expect("a record of the boot").clone();
    let at = |k: &str| boot[k].as_f64().unwrap_or_else(|| panic!("{k} missing in {boot}"));
    let order = ["first_console_output_ms", "agent_ready_ms", "shutdown_requested_ms", "qemu_exited_ms"].map(at);
    assert!(order[0] > 0.0 && order.windows(2).all(|w| w[0] <= w[1]), "phases out of order: {boot}");
    assert!(at("guest_uptime_at_ready_ms") > 0.0, "{boot}");
    assert!(at("guest_uptime_at_ready_ms") < order[1] * 1.5 + 1000.0, "guest uptime is of the order of the boot: {boot}");
}

/// Pids of QEMUs started by process `owner` (their socket lives in
/// `isobench-<owner>-vm-*`).
fn qemus_of(owner: u32) -> Vec<u32> {
    let needle = format!("isobench-{owner}-vm-");
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline);
        if cmdline.contains("qemu-system") && cmdline.contains(&needle) {
            pids.push(pid);
        }
    }
    pids
}

fn temp_dirs_of(owner: u32) -> Vec<PathBuf> {
    let prefix = format!("isobench-{owner}-vm-");
    std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .collect()
}

fn assert_nothing_left(owner: u32) {
    assert_eq!(qemus_of(owner), Vec::<u32>::new(), "QEMU processes left");
    assert_eq!(temp_dirs_of(owner), Vec::<PathBuf>::new(), "vm temp dirs left");
}

/// Once the environment is dropped: no network namespace of `owner` (and so
/// no tap, which lives only inside it), and no tap in the host's namespace.
fn assert_no_network_left(owner: u32) {
    let prefix = format!("isobench-{owner}-");
    let netns: Vec<_> = std::fs::read_dir("/run/netns")
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| n.starts_with(&prefix)).collect())
        .unwrap_or_default();
    assert_eq!(netns, Vec::<String>::new(), "network namespaces left");
    let dev = std::fs::read_to_string("/proc/net/dev").unwrap();
    assert!(!dev.lines().any(|l| l.trim_start().starts_with(&format!("ibt{owner}-"))), "a tap in the host's namespace: {dev}");
}

fn boots_under_tcg_answers_and_powers_off() {
    let _one = one_guest();
    let logs = tempfile::tempdir().unwrap();
    let mut vm = prepared(Some(logs.path().to_path_buf()));
    assert_eq!(vm.verdict().accel, Accel::Tcg);
    assert_eq!(vm.label(), "vm (emulated (TCG))");
    let meta = vm.metadata();
    assert_eq!(meta["accel"], "tcg");
    assert_eq!(meta["machine"], "microvm", "microvm is the default");
    assert_eq!(meta["memory_mib"], 256);
    assert_eq!(meta["cpus"], 1);
    let pvh = vm.image().vmlinux.is_some();
    assert_eq!(meta["boot_protocol"], if pvh { "pvh" } else { "bzimage" }, "PVH whenever the image has a vmlinux");
    assert!(meta["tsc_khz"].as_u64().is_some_and(|k| k > 100_000), "a TCG guest is told the TSC rate: {}", meta["tsc_khz"]);
    assert!(meta["accel_reason"].as_str().unwrap().contains("--accel tcg"));

    let t0 = Instant::now();
    let mut inst = start_or_show_console(&mut vm, logs.path(), 1);
    eprintln!(
        "TCG guest ready after {:?} (host-measured), guest uptime {:.2} s, phases {:?}",
        inst.ready_after(),
        inst.info().uptime_s,
        inst.phases()
    );
    assert!(inst.ready_after() <= t0.elapsed());
    assert_running_phases(inst.as_ref());
    // The TSC hints keep the guest on a fine-grained clock even on a loaded
    // host, where the watchdog would otherwise demote it to jiffies (4 ms).
    let cs = inst.info().clocksource.clone().expect("the guest's clocksource");
    assert!(cs.starts_with("tsc"), "guest clocksource {cs}");
    assert_eq!(inst.info().pid, 1, "the agent is the guest's init");
    assert_eq!(qemus_of(std::process::id()).len(), 1);

    let info = inst.agent().info().expect("info");
    assert_eq!(info.pid, 1);
    assert_eq!(info.kernel, vm.image().kernel_version);
    if info.metrics.iter().any(|m| m == "syscall.getpid") {
        let req = RunRequest { warmup: 100, ..RunRequest::new("syscall.getpid", 2000, 2000) };
        let r = inst.agent().run(&req).expect("syscall.getpid runs in the guest");
        assert!(r.iterations > 0 && r.elapsed_ns > 0, "{r:?}");
    } else {
        eprintln!("note: this agent does not implement syscall.getpid yet");
    }

    let took = inst.shutdown().expect("guest powers off");
    eprintln!("power-off took {took:?}");
    assert_nothing_left(std::process::id());
    assert_full_record(&vm, 1);
    assert_eq!(vm.metadata()["clocksource"], cs.as_str());
    let console = logs.path().join(format!("vm-console-{}-1.log", std::process::id()));
    let text = std::fs::read_to_string(&console).expect("console log kept in log_dir");
    assert!(text.contains("Linux version"), "console log has the kernel's messages");
    assert!(text.contains("tsc_early_khz="), "the TCG guest's command line carries the TSC rate");
}

fn a_guest_missing_its_timeout_is_killed_and_reported() {
    let _one = one_guest();
    let mut vm = prepared(None);
    vm.set_boot_timeout(Duration::from_millis(500));
    let t0 = Instant::now();
    let err = match vm.start() {
        Ok(_) => panic!("a TCG guest cannot boot in 0.5 s"),
        Err(e) => e,
    };
    assert!(t0.elapsed() < Duration::from_secs(5), "the timeout is honoured: {:?}", t0.elapsed());
    let msg = err.to_string();
    assert!(matches!(err, EnvError::Start { .. }), "{msg}");
    assert!(msg.starts_with("vm: start failed: guest did not reach the agent within"), "{msg}");
    let log = PathBuf::from(msg.rsplit_once("console log: ").expect("names the log").1);
    assert!(log.is_file(), "the console log of the failed boot is kept: {msg}");
    let _ = std::fs::remove_file(&log);
    assert_nothing_left(std::process::id());
    drop(vm);
    assert_no_network_left(std::process::id());
}

fn dropping_a_running_guest_kills_qemu() {
    let _one = one_guest();
    let mut vm = prepared(None);
    let inst = vm.start().expect("guest boots");
    assert_eq!(qemus_of(std::process::id()).len(), 1);
    drop(inst);
    assert_nothing_left(std::process::id());
    drop(vm);
    assert_no_network_left(std::process::id());
}

/// Helper: the child half of the kill -9 test. Boots a guest and waits to
/// be killed.
fn helper_boot_and_wait() {
    let mut vm = prepared(None);
    vm.set_boot_timeout(Duration::from_secs(300));
    let _inst = vm.start();
    std::thread::sleep(Duration::from_secs(300));
}

fn kill_9_of_the_starter_takes_qemu_along() {
    let _one = one_guest();
    let mut child = isobench_testkit::helper("helper_boot_and_wait").spawn().unwrap();
    let owner = child.id();
    let deadline = Instant::now() + Duration::from_secs(20);
    while qemus_of(owner).is_empty() {
        assert!(Instant::now() < deadline, "the helper never started QEMU");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !qemus_of(owner).is_empty() {
        assert!(Instant::now() < deadline, "QEMU outlived a kill -9 of its starter: {:?}", qemus_of(owner));
        std::thread::sleep(Duration::from_millis(20));
    }
    // Its temp dir cannot remove itself; the next start's sweep does.
    isobench_harness::cleanup::sweep();
    assert_eq!(temp_dirs_of(owner), Vec::<PathBuf>::new(), "the sweep removes a killed run's vm temp dir");
    assert_no_network_left(owner);
}

fn auto_accel_gives_a_verdict_with_its_reason() {
    let _one = one_guest();
    let (qemu_bin, img) = (qemu::find_qemu().unwrap(), image::locate().unwrap());
    let version = qemu::qemu_version(&qemu_bin).unwrap();
    // Probes once per (host kernel, guest kernel, QEMU) and caches: up to
    // KVM_PROBE_TIMEOUT the first time on a host where KVM cannot boot the guest.
    let v = isobench_harness::vm::accel::decide(AccelChoice::Auto, &img, &qemu_bin, &version).unwrap();
    eprintln!("auto: {} ({:?}): {}", v.accel, v.source, v.reason);
    assert!(!v.reason.is_empty());
    if v.accel == Accel::Tcg && std::path::Path::new("/sys/module/kvm_pvm").exists() && std::path::Path::new("/dev/kvm").exists() {
        assert!(v.reason.contains("kvm-pvm") || v.reason.contains("started the kernel"), "{}", v.reason);
    }
    assert_nothing_left(std::process::id());
}

fn require_kvm_fails_with_the_reason_instead_of_falling_back() {
    let _one = one_guest();
    let workloads = isobench_harness::workloads::locate().expect("static workloads");
    let require = VmSettings { require_kvm: true, ..Default::default() };
    let opts = Options { accel: AccelChoice::Tcg, vm: require.clone(), ..Options::new(workloads.clone()) };
    let e = Vm::prepare(&opts).err().expect("--require-kvm with --accel tcg is refused");
    assert_eq!(e.to_string(), "vm: skipped: --require-kvm contradicts --accel tcg; drop one of them");

    let opts = Options { accel: AccelChoice::Auto, vm: require, ..Options::new(workloads) };
    match Vm::prepare(&opts) {
        // A host where KVM really boots the guest: the requirement is met.
        Ok(vm) => assert_eq!(vm.verdict().accel, Accel::Kvm),
        Err(e) => {
            let msg = e.to_string();
            eprintln!("{msg}");
            assert!(matches!(e, EnvError::Unavailable { .. }), "{msg}");
            assert!(msg.starts_with("vm: skipped: --require-kvm: KVM not usable: "), "{msg}");
            assert!(!msg.contains('\n'), "one line: {msg}");
            if std::path::Path::new("/sys/module/kvm_pvm").exists() && std::path::Path::new("/dev/kvm").exists() {
                assert!(msg.contains("kvm-pvm") && msg.contains("ISOBENCH_KERNEL"), "names kvm-pvm and the remedy: {msg}");
            }
        }
    }
    assert_nothing_left(std::process::id());
}

/// Writes a guest.json into `dir` naming these files (absolute paths work:
/// they are joined onto the folder).
fn write_manifest(dir: &std::path::Path, kernel: &std::path::Path, vmlinux: Option<&std::path::Path>, initrd: &std::path::Path) {
    let manifest = serde_json::json!({
        "kernel_version": image::locate().unwrap().kernel_version,
        "kernel_source": "test",
        "kernel": kernel, "vmlinux": vmlinux, "initrd": initrd,
    });
    std::fs::write(dir.join(image::MANIFEST_FILE), manifest.to_string()).unwrap();
}

/// Runs `test` (an ignored helper below) in a child process whose guest
/// image is `dir`, and fails with its output unless it passes.
fn run_with_image(test: &str, dir: &std::path::Path) {
    let out = isobench_testkit::helper(test).env(image::GUEST_DIR_ENV, dir).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    eprintln!("{text}");
    assert!(out.status.success() && text.contains("1 passed"), "{test} failed in the child:\n{text}");
}

fn helper_fallback() {
    // q35 and a memory size: the settings reach QEMU, and the fallback is
    // the bzImage through q35's firmware, the other boot path there is.
    let settings = VmSettings { machine: Some(Machine::Q35), memory_mib: Some(192), ..Default::default() };
    let logs = tempfile::tempdir().unwrap();
    let mut vm = prepared_with(Some(logs.path().to_path_buf()), settings);
    assert_eq!(vm.boot(), BootProtocol::Pvh, "an image with a vmlinux boots PVH by default");
    let meta = vm.metadata();
    assert_eq!((meta["machine"].as_str(), meta["memory_mib"].as_u64()), (Some("q35"), Some(192)));
    let mut inst = start_or_show_console(&mut vm, logs.path(), 1);
    eprintln!("q35/bzImage TCG guest ready after {:?}, phases {:?}", inst.ready_after(), inst.phases());
    let meta = vm.metadata();
    assert_eq!(meta["boot_protocol"], "bzimage");
    assert!(meta["kernel_booted"].as_str().unwrap().ends_with("vmlinuz"), "{}", meta["kernel_booted"]);
    assert!(meta["warning"].as_str().unwrap().contains("booting the bzImage instead"), "{meta}");
    assert_running_phases(inst.as_ref());
    assert_eq!(inst.agent().info().expect("info").pid, 1);
    inst.shutdown().expect("powers off");
    assert_full_record(&vm, 1);
    assert_nothing_left(std::process::id());
}

fn a_vmlinux_qemu_refuses_falls_back_to_the_bzimage_on_q35() {
    let _one = one_guest();
    let real = image::locate().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let bogus = dir.path().join("vmlinux");
    std::fs::write(&bogus, vec![0x5au8; 8192]).unwrap();
    write_manifest(dir.path(), &real.kernel, Some(&bogus), &real.initrd);
    run_with_image("helper_fallback", dir.path());
}

fn helper_dead_init() {
    let mut vm = prepared(None);
    let t0 = Instant::now();
    let err = vm.start().err().expect("an /init that exits cannot answer");
    let msg = err.to_string();
    eprintln!("{msg} (after {:?})", t0.elapsed());
    // panic=-1 reboot=t: the kernel's panic ends QEMU long before the boot timeout.
    assert!(msg.starts_with("vm: start failed: QEMU exited"), "{msg}");
    let log = PathBuf::from(msg.rsplit_once("console log: ").expect("names the log").1);
    let console = std::fs::read_to_string(&log).expect("the failed boot's console log is kept");
    assert!(console.contains("Attempted to kill init"), "{console}");
    let _ = std::fs::remove_file(&log);
    assert_nothing_left(std::process::id());
    drop(vm);
    assert_no_network_left(std::process::id());
}

fn a_guest_whose_init_dies_is_reported_at_once() {
    let _one = one_guest();
    let (real, workloads) = (image::locate().unwrap(), isobench_harness::workloads::locate().expect("static workloads"));
    // An initramfs whose /init is the static `noop`: it exits at once, and
    // the kernel panics ("Attempted to kill init").
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("dev")).unwrap();
    std::fs::copy(&workloads.noop, root.join("init")).unwrap();
    let cpio = dir.path().join("dead-init.cpio");
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!("cd '{}' && printf 'init\\ndev\\n' | cpio -o -H newc -R 0:0 --quiet > '{}'", root.display(), cpio.display()))
        .status()
        .unwrap();
    assert!(status.success());
    write_manifest(dir.path(), &real.kernel, real.vmlinux.as_deref(), &cpio);
    run_with_image("helper_dead_init", dir.path());
}

fn a_kvm_probe_whose_guest_stays_silent_gives_up_early() {
    let _one = one_guest();
    let (qemu_bin, img) = (qemu::find_qemu().unwrap(), image::locate().unwrap());
    // Not through the cache: a real probe boot now.
    let failure = isobench_harness::vm::accel::probe_kvm(&img, &qemu_bin).expect_err("a stock kernel does not boot under kvm-pvm");
    eprintln!("{}", failure.reason);
    assert!(failure.reason.contains("printed nothing on the guest console"), "the silence check ended it: {}", failure.reason);
    assert!(failure.reason.contains("kvm-pvm") && failure.cacheable, "{failure:?}");
    assert_nothing_left(std::process::id());
}

/// On a host whose KVM boots a stock guest kernel (not CI's, whose /dev/kvm
/// is kvm-pvm): `--accel kvm` boots the guest under KVM, its agent answers as
/// PID 1, its phases are recorded, it powers off and nothing is left.
fn boots_under_kvm_answers_and_powers_off() {
    let _one = one_guest();
    let logs = tempfile::tempdir().unwrap();
    let workloads = isobench_harness::workloads::locate().expect("static workloads");
    let opts = Options { accel: AccelChoice::Kvm, log_dir: Some(logs.path().to_path_buf()), ..Options::new(workloads) };
    let mut vm = Vm::prepare(&opts).expect("--accel kvm prepares on a host with KVM");
    assert_eq!(vm.verdict().accel, Accel::Kvm);
    assert_eq!(vm.metadata()["accel"], "kvm");
    let mut inst = start_or_show_console(&mut vm, logs.path(), 1);
    eprintln!("KVM guest ready after {:?}, phases {:?}", inst.ready_after(), inst.phases());
    assert_running_phases(inst.as_ref());
    assert_eq!(inst.agent().info().expect("info").pid, 1);
    inst.shutdown().expect("guest powers off");
    assert_full_record(&vm, 1);
    assert_nothing_left(std::process::id());
    drop(vm);
    assert_no_network_left(std::process::id());
}
