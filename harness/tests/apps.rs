//! The app metrics through the harness API: redis and nginx started by the
//! environment's agent answer isobench's load natively, in isobench's
//! container, under runc, crun and runsc (gVisor, ptrace platform) and in
//! the vm under TCG booted from the same image (`--rootfs debian
//! --image-packages redis-server,nginx-light`), with positive throughput and
//! latency; each names the network path its load took. Nothing of a server
//! is left after a metric or after the environment: no process of this
//! test's (it is the subreaper of what it starts, so an orphan would stay
//! its descendant), no temp entry or disk image of its pid, no mount. After
//! a SIGKILL of the process that ran it the next start's sweep kills what
//! is left and removes its directory.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

use isobench_harness::collect::Measurement;
use isobench_harness::env::{self, EnvKind, Options};
use isobench_harness::{boundary::HostSides, workloads};
use isobench_testkit::{trial, Need::*};
use isobench_workloads::app::load::LoadMode;
use isobench_workloads::app::App;
use isobench_workloads::catalog::{Family, Unit, CATALOG};
use isobench_workloads::protocol::{AppStartRequest, RunRequest};

fn main() {
    isobench_testkit::run(vec![
        trial!(redis_and_nginx_answer_natively_with_positive_figures_and_leave_nothing).needs(&[AppServers]),
        trial!(redis_and_nginx_answer_in_the_container_from_the_image).needs(&[Root, Cgroups, Busybox, DebianRootfs]),
        trial!(redis_and_nginx_answer_under_runc_from_the_image).needs(&[Root, Cgroups, Runc, DebianRootfs]),
        trial!(redis_and_nginx_answer_under_crun_from_the_image).needs(&[Root, Cgroups, Crun, DebianRootfs]),
        trial!(redis_and_nginx_answer_under_runsc_from_the_image).needs(&[Root, Runsc, DebianRootfs]),
        trial!(the_runner_measures_an_open_loop_under_runsc_on_the_hosts_clock).needs(&[Root, Runsc, DebianRootfs]),
        trial!(redis_and_nginx_answer_in_the_vm_booted_from_the_image).needs(&[Qemu, GuestImage, Mkfs, DebianRootfs]),
        trial!(hold_a_server_for_the_kill_test).helper("run by a_killed_runs_server_is_swept_by_the_next_start, then SIGKILLed"),
        trial!(a_killed_runs_server_is_swept_by_the_next_start).needs(&[AppServers]),
    ]);
}

/// Short loops: a few thousand requests, at most 10 s each.
fn request(spec: &isobench_workloads::catalog::MetricSpec) -> RunRequest {
    let n = if spec.open_loop() { 1_000 } else { spec.quick_iterations / 10 };
    RunRequest { warmup: 20, ..RunRequest::new(spec.name, n, 10_000) }
}

/// Bounded loops for a guest under TCG (two orders of magnitude slower):
/// a few hundred requests, at most 10 s each.
fn tcg_request(spec: &isobench_workloads::catalog::MetricSpec) -> RunRequest {
    let n = if spec.open_loop() { 200 } else { 400 };
    RunRequest { warmup: 10, ..RunRequest::new(spec.name, n, 10_000) }
}

/// Every app metric against `kind`, each figure positive, the load's path
/// named; then the environment shut down and nothing of it left.
fn every_app_metric(kind: EnvKind, opts: &Options) {
    every_app_metric_with(kind, opts, request)
}

fn every_app_metric_with(kind: EnvKind, opts: &Options, request: fn(&isobench_workloads::catalog::MetricSpec) -> RunRequest) {
    become_subreaper();
    let mounts = isobench_testkit::leftovers::mount_table();
    let mut environment = env::prepare(kind, opts).unwrap_or_else(|e| panic!("{kind}: {e}"));
    let mut inst = environment.start().unwrap_or_else(|e| panic!("{kind}: {e}"));
    let path = inst.endpoint().unwrap_or_else(|e| panic!("{kind} has an endpoint: {e}")).metadata()["path"].as_str().unwrap().to_string();
    let want = match kind {
        EnvKind::Native => "loopback",
        EnvKind::Vm => "tap|slirp",
        EnvKind::Runsc => "netstack",
        _ => "veth",
    };
    assert!(want.split('|').any(|w| w == path), "{kind}: the load's path is {path}, not {want}");
    let mut hosts = HostSides::new(&opts.workloads);
    for spec in CATALOG.iter().filter(|m| m.family == Family::App) {
        let r = isobench_harness::apps::measure(inst.as_mut(), &mut hosts, kind == EnvKind::Native, spec, &request(spec))
            .unwrap_or_else(|e| panic!("{kind} {}: {e}", spec.name));
        let load = r.load.clone().expect("an app result says its load");
        let mut m = Measurement::new(kind.as_str(), kind.as_str(), spec);
        m.add(&r).unwrap();
        let s = m.summary();
        assert!(s.p50 > 0.0 && s.p50.is_finite() && load.achieved_per_s > 0.0, "{kind} {}: {s:?} {load:?}", spec.name);
        match spec.open_loop() {
            false => {
                assert_eq!((spec.unit, load.mode), (Unit::ReqPerS, LoadMode::Closed));
                // the median window's rate and the whole loop's agree within 3x
                let ratio = s.p50 / load.achieved_per_s;
                assert!((1.0 / 3.0..3.0).contains(&ratio), "{kind} {}: p50 {} vs {}", spec.name, s.p50, load.achieved_per_s);
            }
            true => {
                assert_eq!((spec.unit, load.mode), (Unit::Us, LoadMode::Open));
                let basis = load.rate_basis.clone().expect("the open loop says where its rate came from");
                let offered = load.offered_per_s.unwrap();
                assert!((offered - basis.closed_per_s * basis.fraction).abs() < 1.0, "{kind} {}: {load:?}", spec.name);
                assert!(load.service_histogram.is_some() && s.p99 >= s.p50);
            }
        }
        if kind == EnvKind::Native {
            assert_eq!(servers_of_mine(), vec![], "{}: the server is stopped after its metric", spec.name);
        }
    }
    inst.shutdown().unwrap();
    drop(hosts);
    drop(environment);
    let t0 = std::time::Instant::now();
    while !descendants().is_empty() && t0.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(descendants(), vec![], "{kind}: processes this test started are left");
    assert_eq!(isobench_testkit::leftovers::own_temp_dirs(), Vec::<PathBuf>::new(), "{kind}: temp entries (bundles, disk images) left");
    assert_eq!(isobench_testkit::leftovers::mount_table(), mounts, "{kind}: a mount is left");
}

/// Makes this test process the subreaper of what it starts: a server (or a
/// runtime's, a guest's process) that outlived its parent is reparented
/// here, so [`descendants`] sees every process left behind.
fn become_subreaper() {
    // SAFETY: prctl(PR_SET_CHILD_SUBREAPER) takes a value and touches no memory.
    assert_eq!(unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong) }, 0);
}

/// The live processes below this test process (pid, command), whatever
/// their depth (zombies are dead: an orphan that exited is this
/// subreaper's to reap, which the test does not do).
fn descendants() -> Vec<(i32, String)> {
    let me = std::process::id() as i32;
    let mut parent = std::collections::HashMap::new();
    let mut comm = std::collections::HashMap::new();
    for p in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = p.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(p.path().join("stat")) else { continue };
        let Some((head, rest)) = stat.rsplit_once(") ") else { continue };
        let mut fields = rest.split_whitespace();
        let state = fields.next().unwrap_or_default();
        let Some(ppid) = fields.next().and_then(|s| s.parse::<i32>().ok()) else { continue };
        parent.insert(pid, ppid);
        if state != "Z" {
            comm.insert(pid, head.split_once(" (").map(|(_, c)| c.to_string()).unwrap_or_default());
        }
    }
    let below = |mut pid: i32| {
        while let Some(&pp) = parent.get(&pid) {
            if pp == me {
                return true;
            }
            pid = pp;
        }
        false
    };
    let mut out: Vec<(i32, String)> = comm.iter().filter(|(&p, _)| below(p)).map(|(&p, c)| (p, c.clone())).collect();
    out.sort();
    out
}

/// Options for a peer runtime or the vm run from the image with the two packages.
fn image_options() -> Options {
    // What `--rootfs debian --image-packages redis-server,nginx-light` sets.
    std::env::set_var(isobench_harness::container::rootfs::distro::PACKAGES_ENV, isobench_workloads::app::packages());
    let mut opts = Options::new(workloads::locate().unwrap());
    opts.container.rootfs = isobench_harness::container::RootfsChoice::Distro;
    opts
}

fn redis_and_nginx_answer_under_runc_from_the_image() {
    every_app_metric(EnvKind::Runc, &image_options());
}

fn redis_and_nginx_answer_under_crun_from_the_image() {
    every_app_metric(EnvKind::Crun, &image_options());
}

fn redis_and_nginx_answer_under_runsc_from_the_image() {
    let mut opts = image_options();
    opts.gvisor_platform = isobench_harness::env::runsc::platform::PlatformChoice::Ptrace;
    every_app_metric(EnvKind::Runsc, &opts);
}

/// Through the runner, as `isobench run --env runsc` measures it: the open
/// loop is timed on the host side, so runsc's check of its own clock (which
/// compares the agent's elapsed time with the request's host wall time, here
/// also the server's start and the rate's calibration) does not refuse it.
/// The row records its path.
fn the_runner_measures_an_open_loop_under_runsc_on_the_hosts_clock() {
    let mut opts = image_options();
    opts.gvisor_platform = isobench_harness::env::runsc::platform::PlatformChoice::Ptrace;
    let results = tempfile::tempdir().unwrap();
    let out = isobench_harness::results::RunDir::at(&results.path().join("run")).unwrap();
    let metrics = vec![isobench_workloads::catalog::lookup("app.redis.get.latency").unwrap()];
    let plan = isobench_harness::runner::Plan {
        envs: vec![EnvKind::Runsc],
        metrics,
        quick: true,
        iterations: Some(1_000),
        max_ms: 10_000,
        pin: Default::default(),
        budget: None,
    };
    let outcome = isobench_harness::runner::execute(&plan, &opts, &out, &std::sync::atomic::AtomicUsize::new(0), &mut |_| {}).unwrap();
    assert_eq!((outcome.measured, &outcome.not_measured, &outcome.failed), (1, &vec![], &vec![]), "{:?}", outcome.skipped);
    let ms = out.measurements().unwrap();
    assert!(ms[0].summary().p99 > 0.0 && ms[0].load.as_ref().is_some_and(|l| l.service_histogram.is_some()));
    let run = out.run_record().unwrap();
    let path = run.environments["runsc"].boundary.as_ref().and_then(|b| b.path.clone());
    assert_eq!(path.as_deref(), Some("netstack"));
}

fn redis_and_nginx_answer_in_the_vm_booted_from_the_image() {
    let _guest = one_guest();
    let mut opts = image_options();
    opts.accel = isobench_harness::vm::AccelChoice::Tcg;
    every_app_metric_with(EnvKind::Vm, &opts, tcg_request);
}

/// One guest at a time across test processes (the vm tests' lock).
fn one_guest() -> nix::fcntl::Flock<std::fs::File> {
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("isobench-vm-tests.lock");
    let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(path).unwrap();
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive).map_err(|(_, e)| e).unwrap()
}

/// Pids of the servers this test process started natively: their working
/// directory (nginx's worker inherits its master's) is one of this
/// process's server directories (tests run in parallel: other servers may
/// be running).
fn servers_of_mine() -> Vec<(i32, PathBuf)> {
    let prefix = std::env::temp_dir().join(format!("isobench-{}-app-", std::process::id()));
    let mut out = Vec::new();
    for p in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = p.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else { continue };
        if let Ok(cwd) = std::fs::read_link(p.path().join("cwd")) {
            if cwd.to_string_lossy().starts_with(&*prefix.to_string_lossy()) {
                out.push((pid, cwd));
            }
        }
    }
    out
}

fn app_dirs(base: &std::path::Path) -> Vec<PathBuf> {
    std::fs::read_dir(base).map(|d| d.flatten().map(|e| e.path()).filter(|p| p.to_string_lossy().contains("-app-")).collect()).unwrap_or_default()
}

fn redis_and_nginx_answer_natively_with_positive_figures_and_leave_nothing() {
    let opts = Options::new(workloads::locate().unwrap());
    every_app_metric(EnvKind::Native, &opts);
    let mine: Vec<PathBuf> =
        app_dirs(&std::env::temp_dir()).into_iter().filter(|p| p.to_string_lossy().contains(&format!("isobench-{}-", std::process::id()))).collect();
    assert!(mine.is_empty(), "server directories left: {mine:?}");
}

fn redis_and_nginx_answer_in_the_container_from_the_image() {
    // What `--rootfs debian --image-packages redis-server,nginx-light` sets.
    std::env::set_var(isobench_harness::container::rootfs::distro::PACKAGES_ENV, isobench_workloads::app::packages());
    let mut opts = Options::new(workloads::locate().unwrap());
    opts.container.rootfs = isobench_harness::container::RootfsChoice::Distro;
    every_app_metric(EnvKind::Container, &opts);

    // Without the image the container says why, in one line, as "not supported".
    std::env::remove_var(isobench_harness::container::rootfs::distro::PACKAGES_ENV);
    let opts = Options::new(workloads::locate().unwrap());
    let mut environment = env::prepare(EnvKind::Container, &opts).unwrap();
    let mut inst = environment.start().unwrap();
    let mut hosts = HostSides::new(&opts.workloads);
    let spec = isobench_workloads::catalog::lookup("app.redis.get").unwrap();
    let e = isobench_harness::apps::measure(inst.as_mut(), &mut hosts, false, spec, &request(spec)).unwrap_err();
    let why = e.not_supported().unwrap_or_else(|| panic!("{e}"));
    assert!(why.starts_with("not supported: /usr/bin/redis-server is not in this environment's files") && why.contains("--image-packages"), "{why}");
    inst.shutdown().unwrap();
}

/// Helper: a native agent serving nginx, until SIGKILLed.
fn hold_a_server_for_the_kill_test() {
    let opts = Options::new(workloads::locate().unwrap());
    let mut environment = env::prepare(EnvKind::Native, &opts).unwrap();
    let mut inst = environment.start().unwrap();
    let dir = isobench_harness::apps::server_dir(App::Nginx, true);
    let req = AppStartRequest { app: App::Nginx, bind: "127.0.0.1:0".into(), dir: dir.display().to_string() };
    let (addr, pgid) = inst.agent().app_start(&req).unwrap();
    println!("HOLD {addr} {pgid} {}", dir.display());
    std::io::stdout().flush().unwrap();
    std::thread::sleep(Duration::from_secs(1000));
}

fn a_killed_runs_server_is_swept_by_the_next_start() {
    // A private temp base: no concurrent isobench sweeps it first.
    let base = tempfile::tempdir().unwrap();
    let mut holder =
        isobench_testkit::helper("hold_a_server_for_the_kill_test").env("TMPDIR", base.path()).stdout(std::process::Stdio::piped()).spawn().unwrap();
    let Some(line) = isobench_testkit::hold_line(&mut holder) else {
        let _ = holder.kill();
        panic!("the holder never reported its server");
    };
    let mut words = line.split(' ');
    let addr: SocketAddr = words.next().unwrap().parse().unwrap();
    let pgid: i32 = words.next().unwrap().parse().unwrap();
    let dir = PathBuf::from(words.next().unwrap());
    assert!(TcpStream::connect(addr).is_ok(), "nginx accepts while held");
    assert!(dir.starts_with(base.path()) && dir.join("nginx.conf").is_file());
    holder.kill().unwrap(); // SIGKILL: no destructor runs
    holder.wait().unwrap();
    assert!(dir.is_dir(), "a SIGKILLed run cannot clean up after itself");
    let removed = isobench_harness::apps::sweep(base.path());
    assert_eq!(removed, vec![dir.clone()]);
    assert!(!dir.exists());
    let group = |pgid: i32| nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pgid), None).is_ok();
    let t0 = std::time::Instant::now();
    while group(pgid) && t0.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(!group(pgid), "no process of the server's group is left");
    assert!(TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err(), "nothing listens on {addr}");
}
