//! The runsc environment for real, as root: gVisor runs the agent on the
//! runc bundle and gives positive figures for syscall.getpid, ipc.pipe_rtt,
//! spawn.fork_exec and net.tcp_rr.boundary (across netstack and a veth); the
//! platform probe records its verdict and reason and gives up a platform
//! that does not finish within its bound, killing its sandbox; a kill -9 of
//! the harness leaves, after the next start's sweep, no runsc process, state
//! dir, network namespace, veth, mount or cgroup; the sweep kills a runsc
//! process of a dead run by itself; a missing runsc is skipped with its
//! exact line. Skipped without root or without runsc (scripts/setup installs
//! it).

use isobench_testkit::{own_temp_dirs, trial, Need::*};

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use isobench_harness::container::profile::{PreparedProfile, Profile};
use isobench_harness::container::NamespaceSet;
use isobench_harness::env::oci::OciBundle;
use isobench_harness::env::peer::RUNSC;
use isobench_harness::env::runsc::platform::{self, Platform, PlatformChoice, ProbeKey, Source};
use isobench_harness::env::{self, EnvError, EnvKind, Options, PathKind};
use isobench_workloads::protocol::RunRequest;

static SERIAL: Mutex<()> = Mutex::new(());

fn lock() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn opts() -> Options {
    Options::new(isobench_harness::workloads::locate().expect("static workloads"))
}

fn main() {
    isobench_testkit::run(vec![
        trial!(runsc_runs_the_agent_and_four_metrics_give_positive_figures).needs(&[Root, Runsc]),
        trial!(each_profile_runs_under_runsc_and_names_itself).needs(&[Root, Runsc, SeccompProfile]),
        trial!(docker_overlay_takes_the_agents_writes_and_leaves_the_image_unchanged).needs(&[Root, Runsc, SeccompProfile]),
        trial!(the_probe_gives_up_a_platform_past_its_bound_and_records_why).needs(&[Root, Runsc]),
        trial!(kill_9_of_the_harness_leaves_nothing_after_the_sweep).needs(&[Root, Runsc]),
        trial!(hold_a_sandbox_helper).helper("run by kill_9_of_the_harness_leaves_nothing_after_the_sweep, then SIGKILLed"),
        trial!(the_sweep_kills_a_runsc_process_of_a_dead_run).needs(&[Root]),
        trial!(a_missing_runsc_is_skipped_with_the_exact_line),
        trial!(prepare_helper).helper("run by a_missing_runsc_is_skipped_with_the_exact_line with ISOBENCH_RUNSC set"),
    ]);
}

/// Entries named `isobench-<pid>-…` in `dir`.
fn stamped(dir: &Path, pid: u32) -> Vec<PathBuf> {
    let prefix = format!("isobench-{pid}-");
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .collect();
    v.sort();
    v
}

/// cgroups named after `pid` at the root of any hierarchy.
fn cgroups_of(pid: u32) -> Vec<PathBuf> {
    let root = Path::new("/sys/fs/cgroup");
    let mut found = stamped(root, pid);
    for parent in std::fs::read_dir(root).into_iter().flatten().flatten().map(|e| e.path()).filter(|p| p.is_dir()) {
        found.extend(stamped(&parent, pid));
    }
    found
}

/// Pids of live processes whose command line mentions `needle`.
fn processes_naming(needle: &str) -> Vec<i32> {
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else { continue };
        let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) else { continue };
        let zombie = std::fs::read_to_string(e.path().join("stat")).is_ok_and(|s| s.rsplit_once(") ").is_some_and(|(_, a)| a.starts_with('Z')));
        if !zombie && String::from_utf8_lossy(&cmdline).contains(needle) {
            v.push(pid);
        }
    }
    v
}

fn request(metric: &str, iterations: u64) -> RunRequest {
    serde_json::from_value(serde_json::json!({ "metric": metric, "iterations": iterations, "max_ms": 10_000, "warmup": 5 })).unwrap()
}

fn runsc_runs_the_agent_and_four_metrics_give_positive_figures() {
    let _g = lock();
    let before = own_temp_dirs();
    let me = std::process::id();
    let mut e = env::prepare(EnvKind::Runsc, &opts()).unwrap_or_else(|err| panic!("runsc is installed, so it must run: {err}"));
    let label = e.label();
    let meta = e.metadata();
    let chosen = meta["platform"]["platform"].as_str().unwrap().to_string();
    assert_eq!(label, format!("runsc ({chosen}, default)"));
    assert!(!meta["platform"]["reason"].as_str().unwrap().is_empty(), "{meta}");
    assert!(meta["platform"]["intercepts"].as_str().unwrap().contains("Sentry"), "{meta}");
    let mut inst = e.start().unwrap_or_else(|err| panic!("{label}: {err}"));
    // The agent is PID 1 of gVisor's own pid namespace and sees gVisor's kernel.
    assert_eq!(inst.info().pid, 1, "{:?}", inst.info());
    assert_ne!(inst.info().hostname, nix::unistd::gethostname().unwrap().into_string().unwrap());
    let phases: Vec<String> = inst.phases().into_iter().map(|(n, _)| n).collect();
    assert_eq!(phases, ["network_ready", "agent_ready"]);
    for metric in ["syscall.getpid", "ipc.pipe_rtt", "spawn.fork_exec"] {
        let r = inst.agent().run(&request(metric, 200)).unwrap_or_else(|err| panic!("{label}: {metric}: {err}"));
        assert!(r.iterations > 0 && r.elapsed_ns > 0, "{label}: {metric} measured nothing: {r:?}");
        assert!(!r.histogram.is_empty(), "{label}: {metric}: no samples");
    }
    // Marks asked for come out of the sandbox around the loop: the host's
    // time for it lies within the request's.
    let asked = std::time::Instant::now();
    let req = RunRequest { marks: true, ..request("fs.stat", 200) };
    let req = RunRequest { data_dir: Some("/tmp".into()), ..req };
    let (r, host_loop) = inst.agent().run_timed(&req).unwrap_or_else(|err| panic!("{label}: fs.stat: {err}"));
    let wall = asked.elapsed();
    let host_loop = host_loop.unwrap_or_else(|| panic!("{label}: no marks came back: {r:?}"));
    assert!(!host_loop.is_zero() && host_loop < wall, "{label}: loop {host_loop:?} outside the request's {wall:?}");
    // Without the ask, none.
    let (_, none) = inst.agent().run_timed(&request("syscall.getpid", 200)).unwrap();
    assert_eq!(none, None, "{label}: marks nobody asked for");
    let endpoint = inst.endpoint().unwrap();
    assert_eq!(endpoint.path, PathKind::Netstack);
    let run_ns = endpoint.netns.as_ref().expect("the host side runs in the run's namespace").name().to_string();
    assert!(run_ns.starts_with(&format!("isobench-{me}-")), "{run_ns}");
    let mut hosts = isobench_harness::boundary::HostSides::new(&isobench_harness::workloads::locate().unwrap());
    let spec = isobench_workloads::catalog::lookup("net.tcp_rr.boundary").unwrap();
    let r = isobench_harness::boundary::measure(inst.as_mut(), &mut hosts, spec, &request("net.tcp_rr.boundary", 200))
        .unwrap_or_else(|err| panic!("{label}: net.tcp_rr.boundary: {err}"));
    assert!(r.iterations > 0 && r.elapsed_ns > 0, "{label}: net.tcp_rr.boundary measured nothing: {r:?}");
    // The sandbox's own namespace, beside the run's, while it runs.
    assert_eq!(stamped(Path::new("/run/netns"), me).len(), 2, "{:?}", stamped(Path::new("/run/netns"), me));
    inst.shutdown().unwrap_or_else(|err| panic!("{label}: shutdown: {err}"));
    drop((hosts, endpoint, e));
    assert_eq!(own_temp_dirs(), before, "{label}: temp dirs left");
    assert!(stamped(Path::new("/run/netns"), me).is_empty(), "network namespaces left: {:?}", stamped(Path::new("/run/netns"), me));
    assert!(cgroups_of(me).is_empty(), "cgroups left: {:?}", cgroups_of(me));
    assert!(processes_naming(&format!("isobench-{me}-runsc")).is_empty(), "runsc processes left");
}

/// `--profile docker` gives runsc the overlay runc gets: config.json's root
/// is the merged view mounted in `runsc run`'s private mount namespace (not
/// the host's), the gofer serves it, so a write of the agent under /mnt
/// copies /mnt up into the upper while the image's /mnt is unchanged
/// (not /tmp, over which the Sentry mounts a tmpfs of its own); every
/// layer is applied, and the stage is gone after.
fn docker_overlay_takes_the_agents_writes_and_leaves_the_image_unchanged() {
    let _g = lock();
    let mut o = opts();
    o.container.profile = Profile::Docker;
    let mut e = env::prepare(EnvKind::Runsc, &o).unwrap_or_else(|err| panic!("{err}"));
    let label = e.label();
    assert!(label.ends_with(", docker)"), "{label}");
    let meta = e.metadata();
    assert_eq!(meta["profile"]["layers"], serde_json::json!(["hardening", "seccomp", "overlay", "bridge"]), "{label}: {}", meta["profile"]);
    assert!(meta["profile"].get("layers_not_applied").is_none(), "{label}: {}", meta["profile"]);
    assert_eq!(meta["profile"]["overlay"]["upper"], "tmpfs", "{}", meta["profile"]);
    let stage = PathBuf::from(meta["profile"]["overlay"]["stage"].as_str().unwrap());
    let image_mnt = PathBuf::from(meta["rootfs"].as_str().unwrap()).join("mnt");
    let listing =
        |p: &Path| -> Vec<String> { std::fs::read_dir(p).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect() };
    let (before, mtime) = (listing(&image_mnt), std::fs::metadata(&image_mnt).unwrap().modified().unwrap());
    let mut inst = e.start().unwrap_or_else(|err| panic!("{label}: {err}"));
    let pid = inst.host_pid().unwrap();
    let upper = PathBuf::from(format!("/proc/{pid}/root{}/scratch/upper", stage.display()));
    assert!(upper.is_dir() && !upper.join("mnt").exists(), "{label}: an empty upper at the start: {:?}", listing(&upper));
    let mut req = request("fs.create_unlink", 50);
    req.data_dir = Some("/mnt".into());
    let r = inst.agent().run(&req).unwrap_or_else(|err| panic!("{label}: {err}"));
    assert!(r.iterations > 0, "{label}: {r:?}");
    assert!(upper.join("mnt").is_dir(), "{label}: the agent's writes under /mnt copied it up into the upper: {:?}", listing(&upper));
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&stage.display().to_string()), "{label}: the overlay is not in the host's mount table");
    inst.shutdown().unwrap();
    assert_eq!(listing(&image_mnt), before, "{label}: the image's /mnt");
    assert_eq!(std::fs::metadata(&image_mnt).unwrap().modified().unwrap(), mtime, "{label}: the image's /mnt is not written");
    drop(e);
    assert!(!stage.exists(), "{label}: the stage is removed");
}

/// bare, default and docker each start the agent in gVisor, and the agent
/// sees what the profile says: docker's seccomp filter (loaded by the
/// Sentry, `--oci-seccomp`), default's capabilities (Docker's 14 but
/// CAP_NET_RAW, which runsc drops), bare's more.
fn each_profile_runs_under_runsc_and_names_itself() {
    let _g = lock();
    for profile in [Profile::Bare, Profile::Default, Profile::Docker] {
        let mut o = opts();
        o.container.profile = profile;
        let mut e = env::prepare(EnvKind::Runsc, &o).unwrap_or_else(|err| panic!("{profile:?}: {err}"));
        let label = e.label();
        assert!(label.starts_with("runsc (") && label.contains(&profile.label()), "{label}");
        // What runsc does not get is named in the label and in run.json.
        let not_applied = &e.metadata()["profile"]["layers_not_applied"];
        match profile {
            Profile::Docker => {
                assert!(label.ends_with(", docker)"), "{label}");
                assert!(not_applied.is_null(), "{label}: {not_applied}");
            }
            _ => assert!(not_applied.is_null() && !label.contains("without"), "{label}: {not_applied}"),
        }
        let mut inst = e.start().unwrap_or_else(|err| panic!("{label}: {err}"));
        let security = inst.info().security.clone().expect("the agent reports its security status");
        let r = inst.agent().run(&request("syscall.getpid", 100)).unwrap_or_else(|err| panic!("{label}: {err}"));
        assert!(r.iterations > 0 && r.elapsed_ns > 0, "{label}: {r:?}");
        inst.shutdown().unwrap();
        let caps = u64::from_str_radix(security.cap_eff.as_deref().unwrap_or("0"), 16).unwrap().count_ones();
        let seccomp = security.seccomp.unwrap_or(0);
        // Docker's 14 less CAP_NET_RAW (bit 13), which runsc takes away
        // unless run with --net-raw.
        let net_raw = u64::from_str_radix(security.cap_eff.as_deref().unwrap_or("0"), 16).unwrap() & (1 << 13) != 0;
        match profile {
            Profile::Docker => assert_eq!((caps, net_raw, seccomp), (13, false, 2), "{label}: {security:?}"),
            Profile::Default => assert_eq!((caps, net_raw, seccomp), (13, false, 0), "{label}: {security:?}"),
            Profile::Bare => assert!(caps > 14 && seccomp == 0, "{label}: {security:?}"),
        }
    }
}

fn the_probe_gives_up_a_platform_past_its_bound_and_records_why() {
    let _g = lock();
    let before = own_temp_dirs();
    let binary = RUNSC.locate().unwrap();
    let bundle = OciBundle::build(&isobench_harness::workloads::locate().unwrap(), "runsc-probe-test").unwrap();
    let profile = PreparedProfile::prepare(Profile::Default).unwrap();
    // Nothing runsc does is over within 50 ms (a Go binary starting a gofer
    // and a sandbox): a bound that small gives any platform up.
    let tiny = Duration::from_millis(50);
    let probe =
        |p: Platform, bound: Duration| isobench_harness::env::runsc::probe_platform(&binary, &bundle, &profile, NamespaceSet::DEFAULT, p, bound);
    let failure = probe(Platform::Kvm, tiny).expect_err("50 ms is too short for any sandbox");
    assert_eq!(failure.reason, "no exit within 0.05 s: given up, its sandbox killed");
    assert!(failure.cacheable);
    let dir = bundle.dir().to_string_lossy().into_owned();
    isobench_testkit::wait_until("the given-up sandbox is gone", Duration::from_secs(10), || processes_naming(&dir).is_empty());
    assert!(std::fs::read_dir(bundle.state_root()).unwrap().next().is_none(), "runsc state left in {}", bundle.state_root().display());
    // `auto` over the real probes, kvm's with the tiny bound: the verdict
    // and every platform's reason are recorded and cached.
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = cache_dir.path().join(platform::CACHE_FILE);
    let key = ProbeKey::new("test-key");
    let verdict =
        platform::decide_with(PlatformChoice::Auto, &key, &cache, |p| probe(p, if p == Platform::Kvm { tiny } else { platform::PROBE_TIMEOUT }))
            .unwrap_or_else(|e| panic!("a platform runs here (ptrace at least): {e}"));
    assert_eq!(verdict.source, Source::Probed);
    assert_eq!(verdict.attempts.iter().map(|a| a.platform).collect::<Vec<_>>(), platform::PROBE_ORDER);
    let kvm = verdict.attempts.iter().find(|a| a.platform == Platform::Kvm).unwrap();
    assert!(!kvm.ran);
    if verdict.platform != Platform::Systrap {
        // Tried (and given up) where /dev/kvm is there, else ruled out without a probe.
        let want = if Path::new("/dev/kvm").exists() { "no exit within 0.05 s: given up, its sandbox killed" } else { "not tried: no /dev/kvm" };
        assert_eq!(kvm.detail, want);
        assert!(verdict.reason.contains("kvm: "), "{}", verdict.reason);
    }
    let ran = verdict.attempts.iter().find(|a| a.platform == verdict.platform).unwrap();
    assert!(ran.ran && ran.detail.starts_with("ran a no-op in "), "{ran:?}");
    let cached: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&cache).unwrap()).unwrap();
    let entry = cached.as_object().unwrap().values().next().unwrap();
    assert_eq!(entry["platform"], verdict.platform.as_str());
    assert_eq!(entry["attempts"].as_array().unwrap().len(), 3);
    assert!(processes_naming(&dir).is_empty(), "probe processes left");
    drop(bundle);
    assert_eq!(own_temp_dirs(), before, "temp dirs left");
}

/// Prepares runsc, starts a sandbox with its veth, prints `HOLD`, waits.
fn hold_a_sandbox_helper() {
    let mut e = env::prepare(EnvKind::Runsc, &opts()).unwrap();
    let mut inst = e.start().unwrap();
    inst.endpoint().unwrap();
    println!("HOLD {}", std::process::id());
    std::thread::sleep(Duration::from_secs(120));
}

fn kill_9_of_the_harness_leaves_nothing_after_the_sweep() {
    let _g = lock();
    let mut holder = isobench_testkit::helper("hold_a_sandbox_helper");
    let mut child = holder.stdout(Stdio::piped()).spawn().unwrap();
    let pid = child.id();
    let line = isobench_testkit::hold_line(&mut child);
    let needle = format!("isobench-{pid}-runsc");
    let sandbox = processes_naming(&needle);
    let netns = stamped(Path::new("/run/netns"), pid);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert_eq!(line.as_deref(), Some(pid.to_string().as_str()), "the helper held a sandbox");
    // runsc run, its gofer and its sandbox were there: at least three.
    assert!(sandbox.len() >= 3, "runsc processes of the helper: {sandbox:?}");
    assert_eq!(netns.len(), 2, "the run's namespace and the sandbox's: {netns:?}");
    // The next start's sweep.
    isobench_harness::cleanup::sweep();
    isobench_testkit::wait_until("the helper's runsc processes are gone", Duration::from_secs(10), || processes_naming(&needle).is_empty());
    let tmp = stamped(&std::env::temp_dir(), pid);
    assert!(tmp.is_empty(), "temp dirs (bundle, runsc state) left: {tmp:?}");
    let ns = stamped(Path::new("/run/netns"), pid);
    assert!(ns.is_empty(), "network namespaces (and with them the veth) left: {ns:?}");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&format!("isobench-{pid}-")), "mounts left:\n{mounts}");
    let links = Command::new("ip").args(["-o", "link"]).output().unwrap();
    assert!(!String::from_utf8_lossy(&links.stdout).contains("gvisor"), "a veth end in the host's namespace");
    isobench_testkit::wait_until("the helper's cgroups are swept", Duration::from_secs(10), || {
        isobench_harness::env::oci::sweep_cgroups();
        cgroups_of(pid).is_empty()
    });
}

fn the_sweep_kills_a_runsc_process_of_a_dead_run() {
    // A pid that ran and is gone.
    let mut gone = Command::new("true").spawn().unwrap();
    let dead = gone.id();
    gone.wait().unwrap();
    let state = format!("{}/isobench-{dead}-runsc-XXXX/state", std::env::temp_dir().display());
    // What a sandbox's command line looks like: runsc-sandbox --root=STATE boot …
    let fake_sandbox = |root: &str| {
        // cat blocks reading its piped stdin (`-`) before it would look at the rest.
        Command::new("bash").args(["-c", &format!("exec -a runsc-sandbox cat -- - --root={root} boot")]).stdin(Stdio::piped()).spawn().unwrap()
    };
    // Exec'd: its argv[0] is runsc-sandbox (bash's own command line, before
    // the exec, names the state directory too, and a sweep then would find
    // no runsc to kill).
    let execd = |child: &std::process::Child| {
        std::fs::read(format!("/proc/{}/cmdline", child.id())).is_ok_and(|c| c.starts_with(b"runsc-sandbox\0"))
    };
    let mut fake = fake_sandbox(&state);
    isobench_testkit::wait_until("the fake sandbox has exec'd", Duration::from_secs(10), || execd(&fake));
    // What the dead run left first: its owner entry, which makes a start
    // sweep at all (without one the sweep has nothing to look for, and this
    // test passed only where other tests had left a dead owner).
    use isobench_harness::leftovers;
    assert!(leftovers::mark_owner(), "the owners folder");
    let entry = leftovers::owners_dir().join(format!("{}{dead}-owner", leftovers::PREFIX));
    std::fs::File::create(&entry).unwrap();
    let removed = isobench_harness::cleanup::sweep();
    // Killed with SIGKILL: by this sweep, or by another test's start that
    // swept first (then it is not in this sweep's list).
    let mut status = None;
    isobench_testkit::wait_until("the sweep kills the fake sandbox", Duration::from_secs(10), || {
        status = fake.try_wait().unwrap();
        status.is_some()
    });
    let status = status.unwrap();
    assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(libc::SIGKILL), "{removed:?}");
    let _ = std::fs::remove_file(&entry);
    // A live run's runsc is left alone.
    let live = format!("{}/isobench-{}-runsc-XXXX/state", std::env::temp_dir().display(), std::process::id());
    let mut mine = fake_sandbox(&live);
    isobench_testkit::wait_until("the live fake has exec'd", Duration::from_secs(10), || execd(&mine));
    isobench_harness::cleanup::sweep();
    assert!(mine.try_wait().unwrap().is_none(), "the sweep killed a live run's runsc");
    mine.kill().unwrap();
    mine.wait().unwrap();
}

fn a_missing_runsc_is_skipped_with_the_exact_line() {
    let empty = tempfile::tempdir().unwrap();
    let reason = RUNSC.locate_with(None, empty.path().as_os_str()).unwrap_err();
    assert_eq!(
        EnvError::Unavailable { env: "runsc", reason }.to_string(),
        "runsc: skipped: runsc not found; apt-get install runsc (scripts/setup installs it)"
    );
    // Through env::prepare, with the override pointing nowhere.
    let out = isobench_testkit::helper("prepare_helper").env("ISOBENCH_RUNSC", "/nonexistent").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("PREPARE: runsc: skipped: runsc not found at /nonexistent (ISOBENCH_RUNSC); unset it or apt-get install runsc"), "{text}");
}

fn prepare_helper() {
    match env::prepare(EnvKind::Runsc, &opts()) {
        Ok(_) => println!("PREPARE: ready"),
        Err(e) => println!("PREPARE: {e}"),
    }
}
