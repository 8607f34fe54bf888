//! The peer environments for real (runc, crun, bubblewrap, unshare(1)), as
//! root: each installed peer runs the same agent and measures syscall.getpid
//! and net.tcp_rr, its agent is PID 1 of a new pid namespace (PID 2 under
//! bubblewrap's reaper), the generated OCI config round-trips through
//! oci-spec's types and runc runs it, a missing tool is skipped with its
//! exact line, crun on a hybrid cgroup host is labelled or reported (never a
//! failed run), under `--profile docker` runc and crun run on the overlay
//! root and in the bridged network namespace isobench prepared, and nothing
//! (runtime state, cgroup, process, temp dir, mount, namespace) outlives an
//! instance. A test is skipped without root or without its
//! tools (scripts/setup installs them).

use isobench_testkit::{own_temp_dirs, trial, Need, Need::*};

use std::path::Path;
use std::process::Stdio;
use std::sync::{Mutex, MutexGuard};

use isobench_harness::container::NamespaceSet;
use isobench_harness::env::oci::{self, CgroupUse, OciBundle, OciEnvironment};
use isobench_harness::env::peer::{self, BWRAP, CRUN, RUNC, RUNSC, UNSHARE};
use isobench_harness::env::{self, EnvError, EnvKind, Environment, Options};
use isobench_workloads::protocol::RunRequest;

/// Tests that count this process's temp dirs take it.
static SERIAL: Mutex<()> = Mutex::new(());

fn lock() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn opts() -> Options {
    Options::new(isobench_harness::workloads::locate().expect("static workloads"))
}

/// Root and every peer runtime.
const ALL_PEERS: &[Need] = &[Root, Runc, Crun, Bwrap, Unshare, Runsc];

fn main() {
    isobench_testkit::run(vec![
        trial!(runc_runs_the_agent_as_pid_1).needs(&[Root, Runc]),
        trial!(runc_and_crun_run_each_profile_as_the_launcher_does).needs(&[Root, Runc, Crun, SeccompProfile]),
        trial!(runc_and_crun_under_docker_run_on_the_overlay_and_join_the_bridged_namespace).needs(&[Root, Runc, Crun, SeccompProfile, Nft]),
        trial!(bwrap_runs_the_agent_under_its_reaper).needs(&[Root, Bwrap]),
        trial!(unshare_runs_the_agent_as_pid_1).needs(&[Root, Unshare]),
        trial!(crun_runs_the_agent_or_says_why_not).needs(&[Root, Crun]),
        trial!(oci_config_round_trips_and_runc_runs_it).needs(&[Root, Runc]),
        trial!(dropping_a_runc_instance_deletes_its_container).needs(&[Root, Runc]),
        trial!(missing_peer_is_skipped_with_the_exact_message),
        trial!(prepare_with_runc_overridden_to_nowhere_is_skipped),
        trial!(prepare_runc_helper).helper("run by the tests that prepare a peer with its override variable set"),
        trial!(peers_parse_by_name_and_stay_out_of_all),
        trial!(kill_9_of_the_harness_leaves_nothing_the_sweep_misses).needs(ALL_PEERS),
        trial!(start_and_hang_helper).helper("run by kill_9_of_the_harness_leaves_nothing_the_sweep_misses, then SIGKILLed"),
        trial!(startup_measures_every_available_column).needs(ALL_PEERS),
        trial!(startup_with_the_nolibc_noop_runs_it_everywhere_and_reports_both).needs(ALL_PEERS),
        trial!(startup_columns_parse),
        trial!(a_runtime_refusing_this_host_is_reported_unsupported).needs(&[Root]),
    ]);
}

/// cgroups named after this process, at the root of any hierarchy.
fn own_cgroups() -> Vec<std::path::PathBuf> {
    let prefix = format!("isobench-{}-", std::process::id());
    let mut found = Vec::new();
    let root = Path::new("/sys/fs/cgroup");
    let mut parents = vec![root.to_path_buf()];
    parents.extend(std::fs::read_dir(root).into_iter().flatten().flatten().map(|e| e.path()).filter(|p| p.is_dir()));
    for parent in parents {
        for e in std::fs::read_dir(&parent).into_iter().flatten().flatten() {
            if e.file_name().to_string_lossy().starts_with(&prefix) {
                found.push(e.path());
            }
        }
    }
    found
}

/// Children of this process still alive (a peer's command or container).
fn own_children() -> Vec<String> {
    let me = std::process::id().to_string();
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else { continue };
        // pid (comm) state ppid ...
        let Some(after) = stat.rsplit_once(") ") else { continue };
        let mut f = after.1.split_whitespace();
        let state = f.next().unwrap_or("");
        if f.next() == Some(me.as_str()) && state != "Z" {
            v.push(stat.split(") ").next().unwrap_or("").to_string());
        }
    }
    v
}

/// Starts `kind`, checks the agent's view and two metrics, shuts it down.
/// Returns the label, or `None` when the peer is not usable here.
fn agent_round_trip(kind: EnvKind, want_pid: u32) -> Option<String> {
    let before = own_temp_dirs();
    let mut e = match env::prepare(kind, &opts()) {
        Ok(e) => e,
        Err(EnvError::Unavailable { reason, .. }) => {
            eprintln!("skipping {kind}: {reason}");
            return None;
        }
        Err(e) => panic!("{kind}: prepare failed: {e}"),
    };
    let label = e.label();
    let mut inst = e.start().unwrap_or_else(|err| panic!("{label}: {err}"));
    let info = inst.info().clone();
    assert_eq!(info.pid, want_pid, "{label}: the agent's pid as it sees it");
    let host_hostname = nix::unistd::gethostname().unwrap().into_string().unwrap();
    if kind != EnvKind::Unshare && kind != EnvKind::Bwrap {
        assert_ne!(info.hostname, host_hostname, "{label}: a uts namespace with its own name");
    }
    for metric in ["syscall.getpid", "net.tcp_rr"] {
        // Built from JSON so that optional fields keep their defaults.
        let req: RunRequest =
            serde_json::from_value(serde_json::json!({ "metric": metric, "iterations": 200, "max_ms": 5_000, "warmup": 10 })).unwrap();
        let r = inst.agent().run(&req).unwrap_or_else(|err| panic!("{label}: {metric}: {err}"));
        assert_eq!(r.metric, metric);
        assert!(r.iterations > 0 && r.elapsed_ns > 0, "{label}: {metric} measured nothing: {r:?}");
    }
    inst.shutdown().unwrap_or_else(|err| panic!("{label}: shutdown: {err}"));
    drop(e);
    assert_eq!(own_temp_dirs(), before, "{label}: temp dirs left");
    assert!(own_cgroups().is_empty(), "{label}: cgroups left: {:?}", own_cgroups());
    assert!(own_children().is_empty(), "{label}: processes left: {:?}", own_children());
    Some(label)
}

fn runc_runs_the_agent_as_pid_1() {
    let _g = lock();
    assert_eq!(agent_round_trip(EnvKind::Runc, 1).as_deref(), Some("runc (default)"), "runc is installed, so it must run");
}

fn bwrap_runs_the_agent_under_its_reaper() {
    let _g = lock();
    assert!(agent_round_trip(EnvKind::Bwrap, 2).is_some(), "bwrap is installed, so it must run");
}

fn unshare_runs_the_agent_as_pid_1() {
    let _g = lock();
    assert!(agent_round_trip(EnvKind::Unshare, 1).is_some(), "unshare is installed, so it must run");
}

/// crun runs, or (on a host where even the workaround fails) is skipped with
/// "unsupported here: <its message>": never a failed run. On a hybrid host
/// the column says cgroups are disabled, and the host's cgroup2 mount is
/// still there afterwards.
fn crun_runs_the_agent_or_says_why_not() {
    let _g = lock();
    let hybrid = oci::hybrid_with_cgroup2_controllers();
    match env::prepare(EnvKind::Crun, &opts()) {
        Ok(e) => {
            let label = e.label();
            eprintln!("crun: ready as {label}; metadata: {}", e.metadata());
            assert_eq!(label, if hybrid { "crun (default, cgroups disabled)" } else { "crun (default)" });
            drop(e);
            assert_eq!(agent_round_trip(EnvKind::Crun, 1), Some(label));
        }
        Err(EnvError::Unavailable { reason, .. }) => {
            eprintln!("crun: reported, not fatal: {reason}");
            assert!(reason.starts_with("unsupported here: "), "{reason}");
        }
        Err(e) => panic!("crun must be ready or unavailable, never a failure: {e}"),
    }
    if hybrid {
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(mounts.lines().any(|l| l.contains(" /sys/fs/cgroup/unified ")), "the host's cgroup2 must stay mounted");
    }
}

/// The generated config is valid OCI runtime-spec as oci-spec reads it, and
/// runc runs it: `/noop` exits 0, the container is gone from runc's state.
fn oci_config_round_trips_and_runc_runs_it() {
    let _g = lock();
    let runc = RUNC.locate().expect("runc is installed (Need::Runc)");
    let before = own_temp_dirs();
    let bundle = OciBundle::build(&opts().workloads, "runc-test").unwrap();
    let id = oci::container_id("runc");
    let spec = oci::config(
        bundle.rootfs(),
        NamespaceSet::DEFAULT,
        &oci::noop_args(isobench_harness::workloads::Noop::Static),
        "isobench-oci",
        &CgroupUse::Path(format!("/{id}")),
    )
    .unwrap();
    bundle.write_config(&spec).unwrap();
    let back = oci_spec::runtime::Spec::load(bundle.config_path()).unwrap();
    assert_eq!(back, spec, "config.json round-trips through oci-spec's types");

    let runtime = oci::OciRuntime { binary: runc, state_root: bundle.state_root(), hybrid_workaround: false, overlay: None };
    let out = runtime.run(bundle.dir(), &id).stdin(Stdio::null()).output().unwrap();
    assert!(out.status.success(), "runc refused the config: {}", String::from_utf8_lossy(&out.stderr));
    assert!(runtime.list().is_empty(), "runc deletes a foreground container when it exits");
    assert!(!runtime.has_state(&id));
    drop(bundle);
    assert!(own_cgroups().is_empty(), "cgroups left: {:?}", own_cgroups());
    assert_eq!(own_temp_dirs(), before);
}

/// Dropping a running runc instance without shutdown (an error path, a
/// panic) kills the container and removes its state and cgroup.
fn dropping_a_runc_instance_deletes_its_container() {
    let _g = lock();
    let runc = RUNC.locate().expect("runc is installed (Need::Runc)");
    let mut e = OciEnvironment::with_binary(EnvKind::Runc, RUNC, runc, &opts()).unwrap();
    let inst = e.start().unwrap();
    assert_eq!(e.runtime().list().len(), 1, "one container while the agent runs");
    assert!(!own_cgroups().is_empty(), "runc made a cgroup named after this process");
    drop(inst);
    assert!(e.runtime().list().is_empty(), "runc list is empty after the drop");
    assert!(own_cgroups().is_empty(), "cgroups left: {:?}", own_cgroups());
    assert!(own_children().is_empty(), "processes left: {:?}", own_children());
}

/// A tool that is not there gives exactly one line naming the package.
fn missing_peer_is_skipped_with_the_exact_message() {
    let empty = tempfile::tempdir().unwrap();
    let cases = [
        (RUNC, "runc: skipped: runc not found; apt-get install runc (scripts/setup installs it)"),
        (CRUN, "crun: skipped: crun not found; apt-get install crun (scripts/setup installs it)"),
        (BWRAP, "bwrap: skipped: bwrap not found; apt-get install bubblewrap (scripts/setup installs it)"),
        (UNSHARE, "unshare: skipped: unshare not found; apt-get install util-linux"),
        (RUNSC, "runsc: skipped: runsc not found; apt-get install runsc (scripts/setup installs it)"),
    ];
    for (tool, want) in cases {
        let reason = tool.locate_with(None, empty.path().as_os_str()).unwrap_err();
        let env = EnvKind::parse(tool.name).unwrap().as_str();
        assert_eq!(EnvError::Unavailable { env, reason }.to_string(), want);
        let bad = tool.locate_with(Some("/nonexistent".as_ref()), empty.path().as_os_str()).unwrap_err();
        assert_eq!(bad, format!("{} not found at /nonexistent ({}); unset it or apt-get install {}", tool.name, tool.env_var, tool.package));
    }
}

/// Through the real entry point (`env::prepare`) with the override variable
/// pointing nowhere: the test binary runs itself with ISOBENCH_RUNC set.
fn prepare_with_runc_overridden_to_nowhere_is_skipped() {
    let _g = lock();
    let out =
        isobench_testkit::helper("prepare_runc_helper").env("ISOBENCH_RUNC", "/nonexistent").env("ISOBENCH_PEERS_HELPER", "1").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("PREPARE: runc: skipped: runc not found at /nonexistent (ISOBENCH_RUNC); unset it or apt-get install runc"), "{text}");
}

fn prepare_runc_helper() {
    let name = std::env::var("ISOBENCH_PEERS_HELPER").unwrap_or_default();
    let kind = EnvKind::parse(&name).unwrap_or(EnvKind::Runc);
    match env::prepare(kind, &opts()) {
        Ok(_) => println!("PREPARE: ready"),
        Err(e) => println!("PREPARE: {e}"),
    }
}

fn peers_parse_by_name_and_stay_out_of_all() {
    for k in EnvKind::PEERS {
        assert_eq!(EnvKind::parse(k.as_str()), Some(k));
        assert!(!EnvKind::ALL.contains(&k));
        assert!(!k.describe().is_empty());
    }
    assert_eq!(peer::RUNC.missing(), "runc not found; apt-get install runc (scripts/setup installs it)");
}

/// Pids of every descendant of `pid` (children first found through
/// /proc/*/stat's ppid).
fn descendants(pid: u32) -> Vec<u32> {
    let mut parent_of = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(p) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else { continue };
        let Some((_, after)) = stat.rsplit_once(") ") else { continue };
        if let Some(ppid) = after.split_whitespace().nth(1).and_then(|s| s.parse::<u32>().ok()) {
            parent_of.push((p, ppid));
        }
    }
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() {
        let cur = out[i];
        out.extend(parent_of.iter().filter(|(_, pp)| *pp == cur).map(|(p, _)| *p));
        i += 1;
    }
    out.remove(0);
    out
}

fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.rsplit_once(") ").is_some_and(|(_, a)| !a.starts_with('Z')))
}

/// `kill -9` of the process running a peer (isobench, here a helper copy of
/// this test binary): the tool and the agent die with it, and what the next
/// start sweeps (temp dirs, runc's cgroups) is all that is left.
fn kill_9_of_the_harness_leaves_nothing_the_sweep_misses() {
    let _g = lock();
    for kind in EnvKind::PEERS {
        let tool = [RUNC, CRUN, BWRAP, UNSHARE, RUNSC].into_iter().find(|t| t.name == kind.as_str()).unwrap();
        if tool.locate().is_err() {
            eprintln!("{kind}: not installed, not checked");
            continue;
        }
        let mut helper =
            isobench_testkit::helper("start_and_hang_helper").env("ISOBENCH_PEERS_HELPER", kind.as_str()).stdout(Stdio::piped()).spawn().unwrap();
        let mut line = String::new();
        let mut out = std::io::BufReader::new(helper.stdout.take().unwrap());
        loop {
            line.clear();
            // libtest may print "test NAME ... " on the same line first.
            if std::io::BufRead::read_line(&mut out, &mut line).unwrap() == 0 || line.contains("READY ") || line.contains("UNAVAILABLE ") {
                break;
            }
        }
        if !line.contains("READY ") {
            let _ = helper.kill();
            let _ = helper.wait();
            eprintln!("{kind}: helper said {line:?}; not checked");
            continue;
        }
        let helper_pid = helper.id();
        let tree = descendants(helper_pid);
        assert!(tree.len() >= 2, "{kind}: the tool and the agent run under the helper: {tree:?}");
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(helper_pid as i32), nix::sys::signal::Signal::SIGKILL).unwrap();
        helper.wait().unwrap();
        let t0 = std::time::Instant::now();
        while tree.iter().any(|p| running(*p)) && t0.elapsed() < std::time::Duration::from_secs(10) {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let alive: Vec<_> = tree.iter().filter(|p| running(**p)).collect();
        assert!(alive.is_empty(), "{kind}: processes outlived kill -9 of the harness: {alive:?}");
        // The next start's sweep removes the rest.
        isobench_harness::cleanup::sweep();
        oci::sweep_cgroups();
        let prefix = format!("isobench-{helper_pid}-");
        let temp_left: Vec<_> = std::fs::read_dir(std::env::temp_dir())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
            .map(|e| e.path())
            .collect();
        assert!(temp_left.is_empty(), "{kind}: temp dirs left after the sweep: {temp_left:?}");
        let mut cg_left = Vec::new();
        for parent in std::iter::once(std::path::PathBuf::from("/sys/fs/cgroup"))
            .chain(std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten().map(|e| e.path()))
        {
            for e in std::fs::read_dir(&parent).into_iter().flatten().flatten() {
                if e.file_name().to_string_lossy().starts_with(&prefix) {
                    cg_left.push(e.path());
                }
            }
        }
        assert!(cg_left.is_empty(), "{kind}: cgroups left after the sweep: {cg_left:?}");
    }
}

fn start_and_hang_helper() {
    let name = std::env::var("ISOBENCH_PEERS_HELPER").expect("the peer to start, in ISOBENCH_PEERS_HELPER");
    let kind = EnvKind::parse(&name).unwrap();
    match env::prepare(kind, &opts()) {
        Ok(mut e) => {
            let _inst = e.start().unwrap();
            println!("READY {}", e.label());
            std::thread::sleep(std::time::Duration::from_secs(60));
        }
        Err(err) => println!("UNAVAILABLE {err}"),
    }
}

/// `isobench startup`: every column that can run here gets n samples of
/// start-to-exit, taken interleaved; a peer that cannot run is listed with
/// its reason; nothing is left behind.
fn startup_measures_every_available_column() {
    use isobench_harness::startup::{self, Column};
    let _g = lock();
    let before = own_temp_dirs();
    let mut lines = Vec::new();
    let run = startup::measure(&Column::all(), &opts(), startup::Noop::Static, 3, 1, &mut |l| lines.push(l.to_string())).unwrap();
    eprint!("{}", isobench_harness::report::section::startup::table(&run));
    for r in &run.rows {
        assert_eq!(r.samples_ns.len(), 3, "{}: {:?}", r.env, r.samples_ns);
        assert!(r.samples_ns.iter().all(|&s| s > 0), "{}", r.env);
        assert_eq!(r.histogram().len(), 3);
        assert!(isobench_harness::report::section::startup::table(&run).contains(&r.label));
    }
    for must in ["clone", "clone+exec", "exec", "isobench"] {
        assert!(run.row(must).is_some(), "{must} always runs as root: skipped {:?}", run.skipped);
    }
    assert_eq!(run.ratio("isobench", "isobench", 0.5), Some(1.0));
    let md = isobench_harness::report::section::startup::markdown(&run);
    // The main table has one row per column (the `isobench exec` table that
    // may follow has its own).
    let main = md.split("\n### ").next().unwrap();
    assert_eq!(main.lines().filter(|l| l.starts_with("| ") && !l.starts_with("| env")).count(), run.rows.len(), "{md}");
    if run.row("isobench-exec").is_some() && run.row("unshare").is_some() {
        assert!(md.contains("### `isobench exec` beside unshare(1)"), "{md}");
    }
    // The JSON `isobench startup --json` writes: rows with every sample.
    let json = serde_json::to_value(&run).unwrap();
    assert_eq!(json["n"], 3);
    assert_eq!(json["rows"].as_array().unwrap().len(), run.rows.len());
    assert_eq!(json["rows"][0]["samples_ns"].as_array().unwrap().len(), 3);
    for kind in EnvKind::PEERS {
        let installed = [RUNC, CRUN, BWRAP, UNSHARE, RUNSC].iter().any(|t| t.name == kind.as_str() && t.locate().is_ok());
        let skipped = run.skipped.iter().find(|(e, _)| e == kind.as_str());
        match (run.row(kind.as_str()), skipped) {
            (Some(_), None) => assert!(installed),
            (None, Some((_, why))) if kind == EnvKind::Crun && why.starts_with("unsupported here: ") => {}
            (None, Some((_, why))) => assert!(!installed, "{kind} is installed but was skipped: {why}"),
            other => panic!("{kind}: a row or a reason, not {other:?}"),
        }
    }
    drop(run);
    assert_eq!(own_temp_dirs(), before, "temp dirs left");
    assert!(own_cgroups().is_empty(), "cgroups left: {:?}", own_cgroups());
    assert!(own_children().is_empty(), "processes left: {:?}", own_children());
}

/// `--noop nolibc`: every column, peers included, runs `noop-nolibc` (the
/// host's copy or the one its rootfs or bundle was built with) to a clean
/// exit, the run says so, and a results folder holding a run with each no-op
/// gets the side-by-side section with a row per column both ran.
fn startup_with_the_nolibc_noop_runs_it_everywhere_and_reports_both() {
    use isobench_harness::startup::{self, Column, Noop};
    let _g = lock();
    let before = own_temp_dirs();
    let nolibc = startup::measure(&Column::all(), &opts(), Noop::Nolibc, 2, 1, &mut |_| {}).unwrap();
    assert_eq!(nolibc.noop, Noop::Nolibc);
    // Every column names the binary it execs: the host's copy (floors,
    // unshare), or the one at the root of its rootfs or bundle; the clone
    // floor execs nothing, isobench-version only isobench itself.
    for r in &nolibc.rows {
        if r.env == "isobench-version" {
            assert!(r.command.ends_with("isobench --version"), "{}", r.command);
        } else if r.env != "clone" {
            assert!(r.command.contains("/noop-nolibc"), "{} runs {}", r.env, r.command);
        }
    }
    assert!(nolibc.row("isobench").is_some(), "skipped: {:?}", nolibc.skipped);
    // A column whose no-op did not exit 0 is dropped with "failed: …".
    assert!(nolibc.skipped.iter().all(|(_, why)| !why.starts_with("failed")), "{:?}", nolibc.skipped);
    let table = isobench_harness::report::section::startup::table(&nolibc);
    assert!(table.contains("no-op: noop-nolibc"), "{table}");
    let json = serde_json::to_value(&nolibc).unwrap();
    assert_eq!(json["noop"], "nolibc");

    let with_static =
        startup::measure(&[Column::CloneExec, Column::Isobench, Column::Peer(EnvKind::Unshare)], &opts(), Noop::Static, 2, 1, &mut |_| {}).unwrap();
    let d = tempfile::tempdir().unwrap();
    let dir = isobench_harness::results::RunDir::at(d.path()).unwrap();
    dir.save_startup(&with_static).unwrap();
    dir.save_startup(&nolibc).unwrap();
    assert!(d.path().join("startup.json").is_file() && d.path().join("startup-nolibc.json").is_file());
    let md = std::fs::read_to_string(isobench_harness::report::render(&dir).unwrap()).unwrap();
    assert!(md.contains("(no-op without C library start-up)"), "{md}");
    let share = &md[md.find("## What the no-op's own start adds").expect("the side-by-side section")..];
    for r in &with_static.rows {
        assert!(share.contains(&format!("| {} |", r.label)), "{} missing from:\n{share}", r.label);
    }
    assert!(share.contains("| isobench / clone+exec floor |"), "{share}");
    drop((nolibc, with_static));
    assert_eq!(own_temp_dirs(), before, "temp dirs left");
    assert!(own_cgroups().is_empty(), "cgroups left: {:?}", own_cgroups());
}

fn startup_columns_parse() {
    use isobench_harness::startup::Column;
    assert_eq!(Column::parse_list("all").unwrap(), Column::all());
    assert_eq!(Column::parse_list("peers").unwrap(), EnvKind::PEERS.map(Column::Peer).to_vec());
    assert_eq!(Column::parse_list("container, runc,isobench").unwrap(), [Column::Isobench, Column::Peer(EnvKind::Runc)]);
    let e = Column::parse_list("kata").unwrap_err().to_string();
    assert_eq!(
        e,
        "unknown start column \"kata\"; choose from clone, clone+exec, exec, isobench, isobench+cgroup, isobench-exec, isobench-exec+cgroup, isobench-version, runc, crun, bwrap, unshare, runsc (or all, peers)"
    );
    assert_eq!(Column::parse_list("isobench-exec,isobench-exec+cgroup").unwrap(), [Column::IsobenchExec, Column::IsobenchExecCgroup]);
}

/// A runtime that refuses to run here (crun on a hybrid cgroup host when
/// even the workaround fails; simulated by a stand-in that answers with
/// crun's words) makes the environment `Unavailable` with "unsupported here:
/// <its message>", which a run records as skipped: never a failed run.
fn a_runtime_refusing_this_host_is_reported_unsupported() {
    let _g = lock();
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("crun");
    std::fs::write(
        &fake,
        "#!/bin/sh\nfor a in \"$@\"; do [ \"$a\" = run ] && { echo 'cgroups in hybrid mode not supported, drop all controllers from cgroupv2' >&2; exit 1; }; done\nexit 0\n",
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let before = own_temp_dirs();
    let err = OciEnvironment::with_binary(EnvKind::Crun, CRUN, fake.clone(), &opts()).err().expect("a refusing runtime is not ready");
    assert_eq!(err.to_string(), "crun: skipped: unsupported here: cgroups in hybrid mode not supported, drop all controllers from cgroupv2");
    assert!(matches!(err, EnvError::Unavailable { .. }));
    assert_eq!(own_temp_dirs(), before, "the bundle is removed");

    // Through env::prepare, as `isobench run --env crun` calls it.
    let out = isobench_testkit::helper("prepare_runc_helper").env("ISOBENCH_CRUN", &fake).env("ISOBENCH_PEERS_HELPER", "crun").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("PREPARE: crun: skipped: unsupported here: cgroups in hybrid mode not supported"), "{text}");
}

/// `--profile` reaches the OCI peers: the agent inside runc and crun sees
/// Docker's capabilities and no_new_privs under `default`, a seccomp filter
/// under `docker`, every capability of the harness under `bare`; the label
/// names the profile.
fn runc_and_crun_run_each_profile_as_the_launcher_does() {
    use isobench_harness::container::Profile;
    let _g = lock();
    let own = isobench_workloads::protocol::SecurityStatus::of_self().unwrap();
    for kind in [EnvKind::Runc, EnvKind::Crun] {
        for profile in Profile::ALL {
            let mut o = opts();
            o.container.profile = profile;
            let mut e = match env::prepare(kind, &o) {
                Ok(e) => e,
                Err(EnvError::Unavailable { reason, .. }) => {
                    eprintln!("skipping {kind}: {reason}");
                    continue;
                }
                Err(err) => panic!("{kind} {profile}: {err}"),
            };
            let label = e.label();
            assert!(label.starts_with(&format!("{kind} ({}", profile.label())), "{label}");
            let inst = e.start().unwrap_or_else(|err| panic!("{label}: {err}"));
            let sec = inst.info().security.clone().expect("the agent reports /proc/self/status");
            println!("{label}: {sec:?}");
            match profile {
                Profile::Bare => {
                    assert_eq!(sec.cap_eff, own.cap_eff, "{label}");
                    assert_eq!(sec.no_new_privs, Some(false), "{label}");
                }
                Profile::Default | Profile::Docker => {
                    assert_eq!(sec.cap_eff.as_deref(), Some("00000000a80425fb"), "{label}");
                    assert_eq!(sec.no_new_privs, Some(true), "{label}");
                }
            }
            assert_eq!(sec.seccomp, Some(if profile == Profile::Docker { 2 } else { 0 }), "{label}");
            inst.shutdown().unwrap_or_else(|err| panic!("{label}: shutdown: {err}"));
        }
    }
}

/// The parent pid of `pid` (`/proc/PID/stat`'s fourth field).
fn ppid_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")?.1.split_whitespace().nth(1)?.parse().ok()
}

/// The host pid of the agent a peer of this process runs (its command's
/// descendant whose command line is `/isobench-agent`).
fn own_agent() -> Option<u32> {
    let me = std::process::id();
    std::fs::read_dir("/proc").unwrap().flatten().filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok()).find(|pid| {
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        cmd.starts_with(b"/isobench-agent\0") && std::iter::successors(ppid_of(*pid), |p| ppid_of(*p)).take(4).any(|p| p == me)
    })
}

/// The mount of `/` in `/proc/PID/mountinfo`: (fstype, super options).
fn root_mount_of(pid: u32) -> (String, String) {
    let info = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
    let line = info.lines().rfind(|l| l.split_whitespace().nth(4) == Some("/")).expect("a root mount");
    let after = line.split_once(" - ").unwrap().1;
    let mut f = after.split_whitespace();
    let fstype = f.next().unwrap().to_string();
    (fstype, f.nth(1).unwrap_or("").to_string())
}

fn own_netns() -> Vec<String> {
    let prefix = format!("isobench-{}-", std::process::id());
    std::fs::read_dir("/run/netns")
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| n.starts_with(&prefix)).collect())
        .unwrap_or_default()
}

/// `--profile docker` gives runc and crun every layer isobench's container
/// gets: the agent's `/` is an overlay whose lowerdir is the image, mounted
/// where the host cannot see it; its network namespace is one isobench made
/// (with the bridged eth0), and its endpoint is the bridge's published
/// port; the label and run.json name every layer and none as not applied;
/// after the instance nothing is left (namespace, mount, stage dir).
fn runc_and_crun_under_docker_run_on_the_overlay_and_join_the_bridged_namespace() {
    use isobench_harness::container::Profile;
    use isobench_harness::env::PathKind;
    let _g = lock();
    let before = own_temp_dirs();
    let host_mounts = || std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    for kind in [EnvKind::Runc, EnvKind::Crun] {
        let mut o = opts();
        o.container.profile = Profile::Docker;
        let mut e = match env::prepare(kind, &o) {
            Ok(e) => e,
            Err(EnvError::Unavailable { reason, .. }) => {
                eprintln!("skipping {kind}: {reason}");
                continue;
            }
            Err(err) => panic!("{kind}: {err}"),
        };
        let label = e.label();
        assert!(label.starts_with(&format!("{kind} (docker")) && !label.contains("without"), "{label}");
        let meta = e.metadata();
        assert_eq!(meta["profile"]["layers"], serde_json::json!(["hardening", "seccomp", "overlay", "bridge"]), "{label}");
        assert!(meta["profile"].get("layers_not_applied").is_none(), "{label}: {}", meta["profile"]);
        let stage = meta["profile"]["overlay"]["stage"].as_str().unwrap().to_string();
        let image = meta["rootfs"].as_str().unwrap().to_string();
        let mut inst = e.start().unwrap_or_else(|err| panic!("{label}: {err}"));
        let agent = own_agent().unwrap_or_else(|| panic!("{label}: no agent among this process's descendants"));
        let (fstype, options) = root_mount_of(agent);
        assert_eq!(fstype, "overlay", "{label}: the agent's / ({options})");
        assert!(options.contains(&format!("lowerdir={image},")), "{label}: the image is the lowerdir: {options}");
        assert!(!host_mounts().contains(&stage), "{label}: the overlay is not in the host's mount table");
        let ep = inst.endpoint().unwrap_or_else(|err| panic!("{label}: {err}"));
        assert_eq!(ep.path, PathKind::VethBridgeNat, "{label}");
        // The endpoint holds the run's namespace: let it go with the instance.
        drop(ep);
        let agent_ns = std::fs::read_link(format!("/proc/{agent}/ns/net")).unwrap();
        let made = own_netns();
        assert!(
            made.iter().any(|n| std::fs::metadata(format!("/run/netns/{n}")).map(|m| std::os::unix::fs::MetadataExt::ino(&m)).ok()
                == agent_ns.to_string_lossy().trim_start_matches("net:[").trim_end_matches(']').parse().ok()),
            "{label}: the agent's network namespace {agent_ns:?} is one isobench made: {made:?}"
        );
        inst.shutdown().unwrap_or_else(|err| panic!("{label}: shutdown: {err}"));
        drop(e);
        assert!(own_netns().is_empty(), "{label}: namespaces left: {:?}", own_netns());
        assert!(!host_mounts().contains(&stage), "{label}");
        assert!(!Path::new(&stage).exists(), "{label}: the overlay's stage is removed");
        assert_eq!(own_temp_dirs(), before, "{label}: temp dirs left");
        assert!(own_children().is_empty(), "{label}: processes left: {:?}", own_children());
    }
}
