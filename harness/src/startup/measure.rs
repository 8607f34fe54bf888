//! The timed loop of `isobench startup`: every column prepared outside the
//! timed region (a rootfs, a bundle, a launch spec), then rounds of one
//! sample per column in a new random order each round (a fixed seed), after
//! warm-up rounds that are not kept; a column that fails once is dropped
//! with its reason. The per-namespace breakdown is the same loop over the
//! launcher with one namespace set per column.

use std::ffi::OsString;
use std::fs::File;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::container::{self, ContainerError, LaunchSpec, NamespaceSet, PreparedRootfs, RootfsChoice};
use crate::env::peer::{NoopStart, PeerCommand};
use crate::env::{self, EnvError, EnvKind, Options};
use crate::results::startup::{StartupRow, StartupRun};
use crate::workloads::Noop;

use super::floors::Floor;
use super::{Column, StartupError};

/// Seed of the per-round column order (see the module comment of
/// [`crate::startup`]).
const ORDER_SEED: u64 = 0x1503_b0c4;

/// One column ready to be sampled.
struct Starter {
    row: StartupRow,
    kind: StarterKind,
}

enum StarterKind {
    Floor(Floor),
    Exec {
        noop: PathBuf,
    },
    Isobench {
        spec: Box<LaunchSpec>,
        _rootfs: PreparedRootfs,
    },
    /// A whole isobench process (`isobench exec`, `isobench --version`):
    /// the binary and its arguments.
    IsobenchExec {
        exe: PathBuf,
        args: Vec<OsString>,
        log: PathBuf,
        _dir: tempfile::TempDir,
    },
    Peer {
        env: Box<dyn NoopStart>,
        noop: Noop,
        log: PathBuf,
        _dir: tempfile::TempDir,
    },
}

fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> StartupError {
    let context = context.into();
    move |source| StartupError::Io { context, source }
}

fn devnull() -> Result<File, StartupError> {
    File::options().read(true).write(true).open("/dev/null").map_err(io_err("open /dev/null"))
}

impl Starter {
    /// One sample: ns from spawn to reaped exit (and, for the launcher, the
    /// no-op's own part of it: execve called → reaped), or why it failed.
    fn sample(&mut self) -> Result<(u64, Option<u64>), String> {
        let whole = |r: Result<u64, String>| r.map(|ns| (ns, None));
        match &mut self.kind {
            StarterKind::Floor(floor) => whole(floor.sample()),
            StarterKind::Exec { noop } => {
                let t0 = Instant::now();
                let status =
                    Command::new(&*noop).stdin(Stdio::null()).stdout(Stdio::null()).status().map_err(|e| format!("exec {}: {e}", noop.display()))?;
                let ns = t0.elapsed().as_nanos() as u64;
                whole(status.success().then_some(ns).ok_or_else(|| format!("noop exited with {status}")))
            }
            StarterKind::Isobench { spec, .. } => launch(spec),
            StarterKind::IsobenchExec { exe, args, log, .. } => {
                let err = File::create(&*log).map_err(|e| format!("create {}: {e}", log.display()))?;
                let mut cmd = Command::new(&*exe);
                cmd.args(&*args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(err);
                let t0 = Instant::now();
                let status = crate::process::spawn_agent(&mut cmd).and_then(|mut c| c.wait());
                let ns = t0.elapsed().as_nanos() as u64;
                match status {
                    Ok(s) if s.success() => Ok((ns, None)),
                    Ok(s) => Err(format!("{} ({s})", crate::env::peer::stderr_tail(log))),
                    Err(e) => Err(format!("spawn {}: {e}", exe.display())),
                }
            }
            StarterKind::Peer { env, noop, log, .. } => {
                let PeerCommand { mut cmd, cleanup } = env.noop_command(*noop).map_err(|e| e.to_string())?;
                let err = File::create(&*log).map_err(|e| format!("create {}: {e}", log.display()))?;
                cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(err);
                let t0 = Instant::now();
                let status = crate::process::spawn_agent(&mut cmd).and_then(|mut c| c.wait());
                let ns = t0.elapsed().as_nanos() as u64;
                if let Some(c) = cleanup {
                    c();
                }
                match status {
                    Ok(s) if s.success() => Ok((ns, None)),
                    Ok(s) => Err(format!("{} ({s})", crate::env::peer::stderr_tail(log))),
                    Err(e) => Err(format!("spawn {}: {e}", cmd.get_program().to_string_lossy())),
                }
            }
        }
    }
}

/// One sample of the launcher's column: spawn → the no-op's exit reaped →
/// its cgroup (if any) read and removed, the same end as env.start's
/// (`cleaned_up`); with the no-op's own part of it (its execve called →
/// reaped), which a start of the agent does not run.
fn launch(spec: &LaunchSpec) -> Result<(u64, Option<u64>), String> {
    let null = devnull().map_err(|e| e.to_string())?;
    let stdio = container::Stdio { stdin: Some(null.as_fd()), stdout: Some(null.as_fd()) };
    let t0 = Instant::now();
    let mut p = container::spawn(spec, stdio).map_err(|e| e.to_string())?;
    let status = p.wait().map_err(|e| e.to_string())?;
    let ns = t0.elapsed().as_nanos() as u64;
    let t = p.times();
    let command = t.exec_ns.zip(t.reaped_ns).map(|(exec, reaped)| reaped.saturating_sub(exec));
    (status == 0).then_some((ns, command)).ok_or_else(|| format!("noop exited with status {status}"))
}

fn describe(cmd: &Command) -> String {
    std::iter::once(cmd.get_program()).chain(cmd.get_args()).map(|a| a.to_string_lossy().into_owned()).collect::<Vec<_>>().join(" ")
}

fn prepare_peer(kind: EnvKind, opts: &Options) -> Result<(Box<dyn NoopStart>, String), EnvError> {
    Ok(match kind {
        EnvKind::Runc | EnvKind::Crun => {
            let e = if kind == EnvKind::Runc { env::runc::prepare(opts)? } else { env::crun::prepare(opts)? };
            let label = env::Environment::label(&e);
            (Box::new(e), label)
        }
        EnvKind::Bwrap => (Box::new(env::bwrap::prepare(opts)?), "bwrap".into()),
        EnvKind::Unshare => (Box::new(env::unshare::prepare(opts)?), "unshare".into()),
        EnvKind::Runsc => {
            let e = env::runsc::prepare(opts)?;
            let label = env::Environment::label(&e);
            (Box::new(e), label)
        }
        other => return Err(EnvError::Unavailable { env: other.as_str(), reason: "not a peer runtime".into() }),
    })
}

/// Measures `columns` (`n` kept rounds after `warmup`), interleaved.
/// `progress` gets one line per step. A column that cannot run here, or
/// fails during the run, lands in `skipped` with its reason; only isobench's
/// own launcher failing to prepare is an error.
///
/// Every column execs the `noop_kind` no-op: the floors and unshare(1) the
/// host's copy, the launcher, the OCI bundles and bwrap the copy at the root
/// of their rootfs (`/noop` or `/noop-nolibc`, both always installed there).
pub fn measure(
    columns: &[Column],
    opts: &Options,
    noop_kind: Noop,
    n: usize,
    warmup: usize,
    progress: &mut dyn FnMut(&str),
) -> Result<StartupRun, StartupError> {
    if n == 0 {
        return Err(StartupError::NoRounds);
    }
    container::require_root()?;
    // Before the rounds, so that it is the host the rounds start on.
    let cpuid_ns = crate::collect::host::cpuid_ns();
    let host_noop = noop_kind.path(&opts.workloads);
    let namespaces = opts.container.namespaces.unwrap_or(NamespaceSet::DEFAULT);
    let noop = format!("/{}", noop_kind.name_in_rootfs());
    let mut starters = Vec::new();
    let mut skipped = Vec::new();
    // The launcher's columns run under the settings' profile, compiled once.
    let profile = opts.container.prepare_profile().map_err(ContainerError::from)?;
    progress(&format!("no-op: {}", noop_kind.describe()));
    for &col in columns {
        let row = |label: String, command: String| StartupRow {
            env: col.name(),
            label,
            command,
            samples_ns: Vec::with_capacity(n),
            command_ns: Vec::new(),
        };
        match col {
            Column::Clone => starters.push(Starter {
                row: row("clone+_exit (floor)".into(), format!("clone({}) + _exit + waitpid", namespaces.names().join(","))),
                kind: StarterKind::Floor(Floor::exit(namespaces)),
            }),
            Column::CloneExec => starters.push(Starter {
                row: row("clone+exec (floor)".into(), format!("clone({}) + execve {} + waitpid", namespaces.names().join(","), host_noop.display())),
                kind: StarterKind::Floor(Floor::exec(namespaces, host_noop)?),
            }),
            Column::Exec => starters.push(Starter {
                row: row("exec (host)".into(), format!("fork+exec {} + wait", host_noop.display())),
                kind: StarterKind::Exec { noop: host_noop.to_path_buf() },
            }),
            Column::Isobench | Column::IsobenchCgroup | Column::IsobenchWith(_) => {
                let namespaces = if let Column::IsobenchWith(set) = col { set } else { namespaces };
                // The container environment's rootfs: the cached one, bound
                // read-only (a private copy without a mount namespace).
                let mount_ns = namespaces.contains(container::Namespace::Mount);
                if profile.has(container::profile::Layer::Overlay) && !mount_ns {
                    skipped.push((col.name(), "the overlay root of this profile needs a mount namespace".to_string()));
                    continue;
                }
                let rootfs = PreparedRootfs::prepare(&RootfsChoice::Minimal, &opts.workloads, mount_ns).map_err(ContainerError::from)?;
                let root = rootfs.path().to_path_buf();
                let mut spec =
                    LaunchSpec::new(namespaces, &root, &[OsString::from(&noop)], Some(&container::default_hostname()))?.with_profile(&profile)?;
                if rootfs.read_only() {
                    spec = spec.with_read_only_root(&root)?;
                }
                let mut what = format!("isobench launcher ({}; profile {})", namespaces.names().join(","), profile.profile().label());
                if col == Column::IsobenchCgroup {
                    if container::cgroup::cgroup_mode() == container::cgroup::CgroupMode::None {
                        skipped.push((col.name(), "no cgroup fs mounted at /sys/fs/cgroup".to_string()));
                        continue;
                    }
                    spec = spec.with_cgroup(container::cgroup::Limits::default());
                    what += " + a cgroup (made and removed)";
                }
                starters.push(Starter {
                    row: row(
                        if let Column::IsobenchWith(set) = col { set.to_string() } else { profile.profile().column_label(&col.name()) },
                        format!("{what} {noop}"),
                    ),
                    kind: StarterKind::Isobench { spec: Box::new(spec), _rootfs: rootfs },
                });
            }
            Column::IsobenchVersion => {
                let Some(exe) = isobench_exe() else {
                    skipped.push((col.name(), "no isobench binary: run `isobench startup` itself, or cargo build --release".into()));
                    continue;
                };
                let args = vec![OsString::from("--version")];
                let command = format!("{} --version", exe.display());
                let dir =
                    tempfile::Builder::new().prefix(&crate::leftovers::temp_prefix("startup")).tempdir().map_err(io_err("create a temp dir"))?;
                let log = dir.path().join("stderr.log");
                starters.push(Starter { row: row(build_label(col, &exe), command), kind: StarterKind::IsobenchExec { exe, args, log, _dir: dir } });
            }
            Column::IsobenchExec | Column::IsobenchExecCgroup => {
                let Some(exe) = isobench_exe() else {
                    skipped.push((col.name(), "no isobench binary: run `isobench startup` itself, or cargo build --release".into()));
                    continue;
                };
                if col == Column::IsobenchExecCgroup && container::cgroup::cgroup_mode() == container::cgroup::CgroupMode::None {
                    skipped.push((col.name(), "no cgroup fs mounted at /sys/fs/cgroup".to_string()));
                    continue;
                }
                let mut args: Vec<OsString> = ["exec", "--ns", &namespaces.to_string()].map(OsString::from).to_vec();
                // Without --no-cgroup, exec gives the container a cgroup on a
                // host that has them (checked above).
                if col == Column::IsobenchExec {
                    args.push("--no-cgroup".into());
                }
                args.extend(["--".into(), OsString::from(&noop)]);
                let command = std::iter::once(exe.as_os_str())
                    .chain(args.iter().map(OsString::as_os_str))
                    .map(|a| a.to_string_lossy())
                    .collect::<Vec<_>>()
                    .join(" ");
                let dir =
                    tempfile::Builder::new().prefix(&crate::leftovers::temp_prefix("startup")).tempdir().map_err(io_err("create a temp dir"))?;
                let log = dir.path().join("stderr.log");
                starters.push(Starter { row: row(build_label(col, &exe), command), kind: StarterKind::IsobenchExec { exe, args, log, _dir: dir } });
            }
            Column::Peer(kind) => match prepare_peer(kind, opts) {
                Ok((mut e, label)) => {
                    let command = match e.noop_command(noop_kind) {
                        Ok(PeerCommand { cmd, cleanup }) => {
                            let mut d = describe(&cmd);
                            // An OCI runtime's command line names the bundle,
                            // whose config.json names the no-op.
                            if !d.contains(noop.as_str()) {
                                d += &format!(" (process: {noop})");
                            }
                            if let Some(c) = cleanup {
                                c();
                            }
                            d
                        }
                        Err(err) => {
                            skipped.push((kind.as_str().to_string(), err.to_string()));
                            continue;
                        }
                    };
                    let dir =
                        tempfile::Builder::new().prefix(&crate::leftovers::temp_prefix("startup")).tempdir().map_err(io_err("create a temp dir"))?;
                    let log = dir.path().join("stderr.log");
                    starters.push(Starter { row: row(label, command), kind: StarterKind::Peer { env: e, noop: noop_kind, log, _dir: dir } });
                }
                Err(err) => {
                    let why = match err {
                        EnvError::Unavailable { reason, .. } => reason,
                        other => other.to_string(),
                    };
                    progress(&format!("{}: skipped: {why}", kind.as_str()));
                    skipped.push((kind.as_str().to_string(), why));
                }
            },
        }
    }
    progress(&format!("{} columns, {n} rounds (+{warmup} warm-up), interleaved in random order", starters.len()));
    let mut rng = fastrand::Rng::with_seed(ORDER_SEED);
    for round in 0..warmup + n {
        let mut failed = Vec::new();
        let mut order: Vec<usize> = (0..starters.len()).collect();
        rng.shuffle(&mut order);
        for i in order {
            let s = &mut starters[i];
            match s.sample() {
                Ok((ns, command)) if round >= warmup => {
                    s.row.samples_ns.push(ns);
                    s.row.command_ns.extend(command);
                }
                Ok(_) => {}
                Err(why) => failed.push((i, why)),
            }
        }
        // A column that fails once is dropped (with its reason): the others go on.
        failed.sort_by_key(|(i, _)| *i);
        for (i, why) in failed.into_iter().rev() {
            let s = starters.remove(i);
            progress(&format!("{}: failed: {why}", s.row.env));
            skipped.push((s.row.env, format!("failed: {why}")));
        }
        if (round + 1) % 10 == 0 {
            progress(&format!("round {}/{}", round + 1, warmup + n));
        }
    }
    let namespaces = columns.iter().all(|c| !matches!(c, Column::IsobenchWith(_))).then(|| namespaces.names().join(","));
    let rows = starters.into_iter().map(|s| s.row).collect();
    Ok(StartupRun { n, warmup, namespaces, noop: noop_kind, cpuid_ns, rows, cgroup_removal_timed: true, skipped, interference: None })
}

/// The label of a column that runs the isobench binary `exe`: its name and
/// what `exe --version` says (the version and how it was linked, e.g.
/// `isobench-exec (isobench 0.1.0 (statically linked))`), asked once
/// before the rounds; the name alone when it says nothing.
fn build_label(col: Column, exe: &std::path::Path) -> String {
    let said = Command::new(exe).arg("--version").stdin(Stdio::null()).stderr(Stdio::null()).output().ok().filter(|o| o.status.success());
    match said.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string()).filter(|s| !s.is_empty()) {
        Some(version) => format!("{} ({version})", col.name()),
        None => col.name(),
    }
}

/// The isobench binary whose `exec` the exec columns time: this process
/// when it is isobench (`isobench startup`), else the workspace's build of
/// this process's profile, then the other (tests and benches run from other
/// binaries).
pub fn isobench_exe() -> Option<PathBuf> {
    let me = std::env::current_exe().ok()?;
    if me.file_name().is_some_and(|n| n == "isobench") {
        return Some(me);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| crate::paths::repo_root().join("target"), PathBuf::from);
    // The build of this process's profile first: the other may be stale.
    let release_first = me.components().any(|c| c.as_os_str() == "release");
    let profiles = if release_first { ["release", "debug"] } else { ["debug", "release"] };
    profiles.into_iter().map(|p| target.join(p).join("isobench")).find(|p| p.is_file())
}

/// The per-namespace cost breakdown of isobench's launcher: start-to-exit of
/// the `noop` no-op with no namespace, with each namespace alone (in
/// [`container::ns::CREATION_ORDER`]), and with all of them, interleaved
/// round by round like every startup column.
pub fn per_namespace(opts: &Options, noop: Noop, n: usize, warmup: usize, progress: &mut dyn FnMut(&str)) -> Result<StartupRun, StartupError> {
    let mut columns = vec![Column::IsobenchWith(NamespaceSet::NONE)];
    for ns in container::ns::CREATION_ORDER {
        let mut one = NamespaceSet::NONE;
        one.insert(ns);
        columns.push(Column::IsobenchWith(one));
    }
    columns.push(Column::IsobenchWith(NamespaceSet::all()));
    measure(&columns, opts, noop, n, warmup, progress)
}
