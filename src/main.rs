//! `isobench`: measure what isolation costs on this machine.
//!
//! A thin command line over `isobench-harness`: argument parsing, progress
//! output and exit statuses live here, everything else in the library.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::{bail, Context as _, Result};
use clap::{Parser, Subcommand};
use isobench_harness::container::{self, ContainerSettings, ExecOptions, Limits, NamespaceSet, RootfsChoice};
use isobench_harness::env::{EnvKind, Options};
use isobench_harness::results::RunDir;
use isobench_harness::runner::{self, Plan};
use isobench_harness::vm::{AccelChoice, BootProtocol, Machine, VmSettings};
use isobench_harness::{doctor, workloads};
use isobench_workloads::catalog::{self, Family, MetricSpec};
use isobench_workloads::protocol::PinMode;

/// Exit status when the run finished but some environment or metric could
/// not be measured (the results folder still holds everything else).
const EXIT_INCOMPLETE: u8 = 3;
/// Exit status after Ctrl-C (128 + SIGINT), results kept.
const EXIT_INTERRUPTED: u8 = 130;

#[derive(Parser)]
#[command(
    name = "isobench",
    version,
    about = "Measure what isolation costs: the same workloads natively, in isobench's own namespace container and in a QEMU/KVM guest"
)]
#[command(long_about = "Measure what isolation costs: the same static workloads natively, in isobench's own \
namespace container and in a QEMU/KVM guest, with spawn, syscall, IPC and network metrics, and an \
overhead report (ratio to native) with plots.\n\nEnvironments:\n  native     the agent as a plain child process (the baseline)\n  \
container  isobench's launcher: new namespaces, pivot_root into a rootfs, a cgroup\n  \
vm         a QEMU guest, KVM when a probe boot works, else TCG (emulation;\n             labelled so everywhere)\n  \
runc, crun, bwrap, unshare\n             peer runtimes around the same agent (--env peers)\n\n\
Metric families: spawn, syscall, ipc, net, control (see `isobench list`).\n\
`cargo bench` runs the same measurements through criterion.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Measure environments × metrics and write a results folder with report.md
    Run(RunArgs),
    /// Run a command in a new container (like unshare(1)); exits with its status
    #[command(trailing_var_arg = true)]
    Exec {
        /// Namespaces to create: a comma list of user,pid,net,ipc,uts,mnt,cgroup,
        /// or `all`, or `none` (a plain chroot); without root a user namespace
        /// is always added (rootless mode)
        #[arg(long = "ns", value_name = "LIST", default_value = "pid,mnt,uts,ipc,net")]
        namespaces: String,
        /// Root filesystem: `minimal` (default: the agent, noop and a static
        /// busybox), `debian` (the host distribution's, built once with
        /// debootstrap into the cache, mounted read-only) or a directory
        /// (never modified)
        #[arg(long, value_name = "minimal|debian|DIR", default_value = "minimal")]
        rootfs: RootfsChoice,
        /// Host name inside the container (default isobench-XXXX)
        #[arg(long)]
        hostname: Option<String>,
        #[command(flatten)]
        limits: LimitArgs,
        /// Print what was created, lsns style, on stderr: each namespace type
        /// with its inode on the host and in the container
        #[arg(long)]
        show_ns: bool,
        /// Network of a container with a net namespace: `none` (lo down),
        /// `loopback` (lo up) or `veth` (also eth0 at 10.199.N.2/24, its peer
        /// at .1 in a private network namespace isobench creates for the run;
        /// root only)
        #[arg(long, value_name = "none|loopback|veth", default_value = "loopback")]
        net: String,
        /// The command and its arguments (put `--` before it)
        #[arg(required = true, value_name = "CMD")]
        command: Vec<OsString>,
    },
    /// Time env.start: a no-op started and exited through isobench's launcher and each peer runtime, interleaved
    Startup {
        /// Kept rounds per column (after 3 warm-up rounds)
        #[arg(long, value_name = "N", default_value_t = isobench_harness::startup::DEFAULT_N)]
        n: usize,
        /// Columns, comma-separated: clone, clone+exec, exec, isobench, isobench+cgroup, runc, crun, bwrap, unshare (or `all`, `peers`)
        #[arg(long = "env", value_name = "LIST", default_value = "all")]
        envs: String,
        /// Also write every sample as JSON to FILE
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
        /// Results folder to add the table to (startup.json, or startup-nolibc.json with
        /// `--noop nolibc`; report.md)
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Instead: the launcher's cost per namespace (none, each alone, all seven)
        #[arg(long, conflicts_with_all = ["ns", "envs"])]
        per_namespace: bool,
        /// Namespaces for the clone floors, isobench, runc, crun and bwrap (unshare
        /// always runs -pfmnuiC): a comma list of user,pid,net,ipc,uts,mnt,cgroup, or
        /// `all` (default pid,mnt,uts,ipc,net)
        #[arg(long = "ns", value_name = "LIST")]
        ns: Option<String>,
        /// The no-op every column runs: `static` (glibc, as lmbench's static hello), or
        /// `nolibc` (exit_group at the entry point: no C library start-up, which on a
        /// guest whose CPUID exits to the hypervisor is most of a start)
        #[arg(long, value_name = "KIND", default_value = "static", value_parser = clap::builder::PossibleValuesParser::new(isobench_harness::startup::Noop::ALL.map(|n| n.as_str())))]
        noop: String,
    },
    /// Show what each environment needs and whether this host has it
    Doctor,
    /// Cross-check isobench's native figures against perf bench, iperf3 and hyperfine
    Validate {
        /// Fewer iterations on both sides (a smoke check, not a verdict)
        #[arg(long)]
        quick: bool,
        /// Results folder to add the table to (validate.json, report.md)
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Compare two results folders: per env × metric change with a significance verdict
    #[command(long_about = "Compare two results folders: per environment × metric, the cost ratio of B's median to A's \
(> 1 = slower), significant when the 95 % confidence intervals of the medians (order statistics) do not overlap \
and the change exceeds --noise. Exits 1 when a significant regression exceeds --threshold, so it can gate CI.")]
    Compare {
        /// The baseline results folder
        a: PathBuf,
        /// The results folder to judge
        b: PathBuf,
        /// Fail (exit 1) on a significant regression larger than this fraction
        #[arg(long, default_value_t = 0.05)]
        threshold: f64,
        /// Changes smaller than this fraction are noise
        #[arg(long, default_value_t = isobench_harness::report::compare::DEFAULT_NOISE)]
        noise: f64,
        /// Also write the table as markdown to this file
        #[arg(long, value_name = "FILE")]
        markdown: Option<PathBuf>,
    },
    /// Merge results folders (hosts, configurations) into one report, columns named env@host
    Merge {
        /// Results folders to merge
        #[arg(required = true, num_args = 2..)]
        runs: Vec<PathBuf>,
        /// The merged results folder to write
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// List environments and metrics (with units and reference methods)
    List,
    /// Re-render summary.csv, plots and report.md of a results folder
    Report {
        /// The results folder (e.g. results/latest)
        dir: PathBuf,
    },
}

#[derive(clap::Args)]
struct RunArgs {
    /// Environments, comma-separated: native, container, vm, runc, crun, bwrap, unshare (or `all`: the first three, `peers`: the last four)
    #[arg(long = "env", value_name = "LIST", default_value = "all")]
    envs: String,
    /// Metrics, comma-separated: names (syscall.getpid), families (syscall) or `all`
    #[arg(long = "metric", value_name = "LIST", default_value = "all")]
    metrics: String,
    /// Few iterations per metric: a smoke run in seconds, not a measurement to quote
    #[arg(long)]
    quick: bool,
    /// Iterations per metric (overrides the catalogue's default and --quick)
    #[arg(long, value_name = "N")]
    iterations: Option<u64>,
    /// Time bound of one measurement, milliseconds
    #[arg(long, value_name = "MS", default_value_t = 10_000)]
    max_ms: u64,
    /// CPU pinning, the same in every environment: `same` (default: the measuring
    /// thread and its peer — echo, writer or sender, boundary server — on one CPU:
    /// round trips are context switches), `split` (the peer on another CPU: cross-CPU
    /// wake-ups; recorded as `same` where only one CPU is allowed, e.g. a 1-vCPU guest),
    /// `none` (no pinning: the scheduler decides, so figures may be bimodal).
    /// One-party metrics (spawn, syscall, control) stay on one CPU under `split`
    #[arg(long, value_name = "same|split|none", default_value = "same")]
    pin: String,
    /// Results folder to write (default: results/<UTC timestamp>-<host>)
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Print only problems (skipped environments, failed measurements) and the report path
    #[arg(long, short)]
    quiet: bool,
    /// Print the summary rows as JSON on stdout at the end (instead of the report path)
    #[arg(long)]
    json: bool,
    /// VM accelerator: auto (probe KVM with a real boot, else TCG), kvm, tcg
    #[arg(long, value_name = "ACCEL", default_value = "auto")]
    accel: AccelChoice,
    /// VM machine type: microvm (default: virtio-mmio, no PCI, no firmware ROMs) or q35
    #[arg(long, value_name = "TYPE")]
    machine: Option<Machine>,
    /// VM kernel entry: pvh (default when the image has a vmlinux) or bzimage
    #[arg(long = "vm-boot", value_name = "PROTOCOL")]
    vm_boot: Option<BootProtocol>,
    /// VM guest memory in MiB (default 256)
    #[arg(long = "vm-memory", value_name = "MIB", value_parser = clap::value_parser!(u32).range(1..))]
    vm_memory: Option<u32>,
    /// VM vCPUs (default 1)
    #[arg(long = "vm-cpus", value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    vm_cpus: Option<u32>,
    /// Exit non-zero (vm skipped, with the reason) instead of running the vm under TCG
    #[arg(long)]
    require_kvm: bool,
    /// VM network for net.*.boundary: tap (default as root: a tap in the run's private
    /// network namespace) or user (QEMU's slirp with loopback port forwards; default without root)
    #[arg(long = "vm-net", value_name = "tap|user")]
    vm_net: Option<String>,
    /// Namespaces of the container environment: a comma list of
    /// user,pid,net,ipc,uts,mnt,cgroup, or `all`, or `none` (default pid,mnt,uts,ipc,net)
    #[arg(long = "ns", value_name = "LIST")]
    container_ns: Option<String>,
    /// Rootfs of the container, runc, crun and bwrap environments: `minimal`
    /// (default), `debian` (built once with debootstrap, read-only) or a directory
    #[arg(long, value_name = "minimal|debian|DIR", default_value = "minimal")]
    rootfs: RootfsChoice,
    #[command(flatten)]
    container_limits: LimitArgs,
}

/// cgroup limits of a container (`isobench exec`, the container environment).
#[derive(clap::Args)]
struct LimitArgs {
    /// CPU limit in CPUs, e.g. 0.5 (a cgroup CPU quota per 100 ms period)
    #[arg(long, value_name = "N")]
    cpus: Option<String>,
    /// Memory limit: bytes or 64m, 1g (over it the kernel OOM-kills inside; no swap)
    #[arg(long, value_name = "SIZE")]
    memory: Option<String>,
    /// Most tasks (processes + threads) in the container; fork fails beyond
    #[arg(long, value_name = "N")]
    pids: Option<String>,
    /// No cgroup for the container (no accounting, no kill-all; no limits)
    #[arg(long)]
    no_cgroup: bool,
}

impl LimitArgs {
    fn limits(&self) -> Result<Limits> {
        Ok(Limits {
            cpus: self.cpus.as_deref().map(Limits::parse_cpus).transpose()?,
            memory: self.memory.as_deref().map(Limits::parse_memory).transpose()?,
            pids: self.pids.as_deref().map(Limits::parse_pids).transpose()?,
        })
    }

    /// `Some(false)` with --no-cgroup, else the default (a cgroup when the host has them).
    fn cgroup(&self) -> Option<bool> {
        self.no_cgroup.then_some(false)
    }
}

fn parse_envs(s: &str) -> Result<Vec<EnvKind>> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let kinds = match part {
            "all" => EnvKind::ALL.to_vec(),
            "peers" => EnvKind::PEERS.to_vec(),
            _ => match EnvKind::parse(part) {
                Some(k) => vec![k],
                None => bail!(
                    "unknown environment {part:?}; choose from native, container, vm, runc, crun, bwrap, unshare, all or peers (see `isobench list`)"
                ),
            },
        };
        for k in kinds {
            if !out.contains(&k) {
                out.push(k);
            }
        }
    }
    if out.is_empty() {
        bail!("--env is empty; choose from native, container, vm");
    }
    Ok(out)
}

fn parse_metrics(s: &str) -> Result<Vec<&'static MetricSpec>> {
    let mut out: Vec<&'static MetricSpec> = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let matched: Vec<&'static MetricSpec> = if part == "all" {
            catalog::CATALOG.iter().collect()
        } else if let Some(f) = Family::ALL.iter().find(|f| f.as_str() == part) {
            catalog::CATALOG.iter().filter(|m| m.family == *f).collect()
        } else if let Some(m) = catalog::lookup(part) {
            vec![m]
        } else {
            bail!("unknown metric {part:?}; known: {} (or a family: spawn, syscall, ipc, net)", catalog::names().collect::<Vec<_>>().join(", "));
        };
        for m in matched {
            if !out.iter().any(|x| x.name == m.name) {
                out.push(m);
            }
        }
    }
    if out.is_empty() {
        bail!("--metric matched no metric (see `isobench list`)");
    }
    Ok(out)
}

fn run(args: RunArgs) -> Result<ExitCode> {
    let envs = parse_envs(&args.envs)?;
    let metrics = parse_metrics(&args.metrics)?;
    let pin: PinMode = args.pin.parse().map_err(anyhow::Error::msg)?;
    let vm_net: Option<isobench_harness::vm::VmNet> = args.vm_net.as_deref().map(str::parse).transpose().map_err(anyhow::Error::msg)?;
    if vm_net.is_some() && !envs.contains(&EnvKind::Vm) {
        eprintln!("isobench: note: --vm-net has no effect without the vm environment (--env)");
    }
    let container_settings = ContainerSettings {
        namespaces: args.container_ns.as_deref().map(str::parse::<NamespaceSet>).transpose()?,
        limits: args.container_limits.limits()?,
        cgroup: args.container_limits.cgroup(),
        rootfs: args.rootfs.clone(),
    };
    let interrupted = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&interrupted)).context("installing the Ctrl-C handler")?;
    }
    isobench_harness::cleanup::sweep();
    let workloads = workloads::locate()?;
    let out = match &args.out {
        Some(dir) => RunDir::at(dir)?,
        None => RunDir::create_in(&PathBuf::from("results"))?,
    };
    let vm = VmSettings {
        machine: args.machine,
        boot: args.vm_boot,
        memory_mib: args.vm_memory,
        cpus: args.vm_cpus,
        require_kvm: args.require_kvm,
        net: vm_net,
    };
    let opts = Options { accel: args.accel, log_dir: Some(out.path.clone()), container: container_settings, vm, ..Options::new(workloads) };
    let plan = Plan { envs, metrics, quick: args.quick, iterations: args.iterations, max_ms: args.max_ms, pin };
    if !args.quiet {
        eprintln!("isobench: writing {}", out.path.display());
    }
    let mut display = Progress::new(args.quiet);
    let outcome = runner::execute(&plan, &opts, &out, &interrupted, &mut |ev| display.show(ev))?;
    display.finish();
    if args.json {
        println!("{}", std::fs::read_to_string(out.path.join("summary.json")).context("reading summary.json")?.trim());
    } else if let Some(report) = &outcome.report {
        println!("{}", report.display());
    }
    if outcome.interrupted {
        eprintln!("isobench: interrupted; {} measurement(s) kept in {}", outcome.measured, out.path.display());
        return Ok(ExitCode::from(EXIT_INTERRUPTED));
    }
    if !outcome.skipped.is_empty() || !outcome.failed.is_empty() {
        eprintln!(
            "isobench: incomplete: {} skipped environment(s), {} failed measurement(s), {} not measured (no boundary); the rest is in {}",
            outcome.skipped.len(),
            outcome.failed.len(),
            outcome.not_measured.len(),
            out.path.display()
        );
        return Ok(ExitCode::from(EXIT_INCOMPLETE));
    }
    Ok(ExitCode::SUCCESS)
}

/// A results folder, or one clear error naming it.
fn results_folder(dir: &std::path::Path) -> Result<RunDir> {
    if !dir.join("measurements.json").is_file() {
        bail!("{} is not an isobench results folder (no measurements.json)", dir.display());
    }
    Ok(RunDir { path: dir.to_path_buf() })
}

fn compare(a: &std::path::Path, b: &std::path::Path, threshold: f64, noise: f64, markdown: Option<PathBuf>) -> Result<ExitCode> {
    use isobench_harness::report::compare;
    let (ra, rb) = (results_folder(a)?, results_folder(b)?);
    let changes = compare::compare(&isobench_harness::report::measurements(&ra)?, &isobench_harness::report::measurements(&rb)?, noise);
    if changes.is_empty() {
        bail!("{} and {} have no environment × metric in common", a.display(), b.display());
    }
    let name = |p: &std::path::Path| p.file_name().map_or_else(|| p.display().to_string(), |n| n.to_string_lossy().into_owned());
    let table = compare::table(&changes, &name(a), &name(b));
    print!("{table}");
    println!(
        "\nregressed/improved: the 95 % confidence intervals of the medians do not overlap and the change exceeds {:.0} %; \
         within noise: intervals apart but the change is smaller; no change: the intervals overlap. \
         Only regressions beyond --threshold ({:.0} %) fail the comparison.",
        noise * 100.0,
        threshold * 100.0
    );
    let quick = |r: &RunDir| r.run_record().ok().and_then(|v| v.parameters?.quick);
    if let (Some(qa), Some(qb)) = (quick(&ra), quick(&rb)) {
        if qa != qb {
            eprintln!("isobench compare: warning: one run used --quick and the other did not; their iteration counts and warm-ups differ");
        }
    }
    if let Some(file) = markdown {
        std::fs::write(&file, &table).with_context(|| format!("writing {}", file.display()))?;
    }
    let bad = compare::regressions(&changes, threshold);
    if bad.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        let list: Vec<String> = bad.iter().map(|c| format!("{} {} {:.2}×", c.env, c.metric, c.ratio)).collect();
        eprintln!("isobench compare: {} significant regression(s) beyond {:.0} %: {}", bad.len(), threshold * 100.0, list.join(", "));
        Ok(ExitCode::from(1))
    }
}

fn validate(quick: bool, out: Option<PathBuf>) -> Result<ExitCode> {
    let workloads = workloads::locate()?;
    let noop = workloads.noop.clone();
    let mut native = isobench_harness::env::prepare(EnvKind::Native, &Options::new(workloads))?;
    let mut inst = native.start()?;
    eprintln!("isobench: validating against independent tools (perf bench, iperf3, hyperfine){}", if quick { ", quick" } else { "" });
    let checks = isobench_harness::validate::run(inst.agent(), &noop, quick);
    inst.shutdown()?;
    print!("{}", isobench_harness::report::section::cross_check::table(&checks));
    if let Some(dir) = out {
        let run = RunDir::at(&dir)?;
        run.save_validation(&checks)?;
        println!("{}", isobench_harness::report::render(&run)?.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// Progress of `isobench run` on stderr: a bar with the current env × metric
/// and an ETA on a terminal, one line per step otherwise (logs, CI).
struct Progress {
    quiet: bool,
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    fn new(quiet: bool) -> Progress {
        Progress { quiet, bar: None }
    }

    fn bar(&mut self, total: usize) -> Option<&indicatif::ProgressBar> {
        use std::io::IsTerminal;
        if self.quiet || !std::io::stderr().is_terminal() {
            return None;
        }
        Some(self.bar.get_or_insert_with(|| {
            let b = indicatif::ProgressBar::new(total as u64);
            b.set_style(
                indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} [{elapsed_precise}, ETA {eta}] {msg}").expect("a valid template"),
            );
            b
        }))
    }

    fn show(&mut self, ev: runner::Event<'_>) {
        use runner::Event;
        match ev {
            Event::Problem(line) => match &self.bar {
                Some(b) => b.println(format!("isobench: {line}")),
                None => eprintln!("isobench: {line}"),
            },
            _ if self.quiet => {}
            Event::Note(line) => match &self.bar {
                Some(b) => b.set_message(line.to_string()),
                None => eprintln!("isobench: {line}"),
            },
            Event::Begin { step, total, what } => match self.bar(total) {
                Some(b) => b.set_message(what.to_string()),
                None => eprintln!("isobench: [{step}/{total}] {what}"),
            },
            Event::Done { step, total, line } => match self.bar(total) {
                Some(b) => {
                    b.set_position(step as u64);
                    b.println(format!("  {line}"));
                }
                None => eprintln!("isobench: [{step}/{total}] {line}"),
            },
        }
    }

    fn finish(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}

/// Whether `kind` can run here: "available" or the one-line reason.
fn availability(kind: EnvKind, workloads: &Option<workloads::Workloads>) -> String {
    let Some(w) = workloads else { return "unknown: static workloads not built (scripts/build-workloads)".into() };
    match isobench_harness::env::prepare(kind, &Options::new(w.clone())) {
        Ok(e) => format!("available as {}", e.label()),
        Err(isobench_harness::env::EnvError::Unavailable { reason, .. }) => format!("unavailable: {reason}"),
        Err(e) => format!("unavailable: {e}"),
    }
}

fn list() {
    // A closed pipe (`isobench list | head`) ends the listing quietly.
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let workloads = workloads::locate().ok();
    let sections: [(&str, &[EnvKind]); 2] =
        [("Environments:", &EnvKind::ALL), ("Peer runtimes (--env peers, or by name; skipped with one line when not installed):", &EnvKind::PEERS)];
    for (title, kinds) in sections {
        let _ = writeln!(out, "{title}");
        for &k in kinds {
            let _ = writeln!(out, "  {:<10} {}\n  {:<10} → {}", k.as_str(), k.describe(), "", availability(k, &workloads));
        }
    }
    let _ = writeln!(out, "\nMetrics (histograms in ns per operation; shown in the unit below):");
    for m in catalog::CATALOG {
        let _ = writeln!(out, "  {:<22} {:<6} {}\n  {:<22} {:<6} method: {}", m.name, m.unit.label(), m.operation, "", "", m.reference);
    }
}

/// `isobench startup`: env.start of isobench's launcher beside the peers.
fn startup(
    n: usize,
    envs: &str,
    json: Option<PathBuf>,
    ns: Option<String>,
    out: Option<PathBuf>,
    per_namespace: bool,
    noop: &str,
) -> Result<ExitCode> {
    use isobench_harness::startup::{self, Column, Noop};
    let columns = Column::parse_list(envs)?;
    let noop: Noop = noop.parse().map_err(anyhow::Error::msg)?;
    let namespaces = ns.as_deref().map(str::parse::<NamespaceSet>).transpose()?;
    isobench_harness::cleanup::sweep();
    let mut opts = Options::new(workloads::locate()?);
    opts.container.namespaces = namespaces;
    if per_namespace {
        let run = startup::per_namespace(&opts, noop, n, startup::DEFAULT_WARMUP, &mut |line| eprintln!("isobench: {line}"))?;
        print!("{}", isobench_harness::report::section::startup::per_namespace_table(&run));
        if let Some(path) = json {
            std::fs::write(&path, serde_json::to_vec_pretty(&run)?).with_context(|| format!("writing {}", path.display()))?;
        }
        if let Some(dir) = out {
            let dir = RunDir::at(&dir)?;
            dir.save_startup_per_namespace(&run)?;
            println!("{}", isobench_harness::report::render(&dir)?.display());
        }
        return Ok(ExitCode::SUCCESS);
    }
    let run = startup::measure(&columns, &opts, noop, n, startup::DEFAULT_WARMUP, &mut |line| eprintln!("isobench: {line}"))?;
    print!("{}", isobench_harness::report::section::startup::table(&run));
    if let Some(path) = json {
        std::fs::write(&path, serde_json::to_vec_pretty(&run)?).with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(dir) = out {
        let dir = RunDir::at(&dir)?;
        dir.save_startup(&run)?;
        println!("{}", isobench_harness::report::render(&dir)?.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run(args),
        Command::Exec { namespaces, rootfs, hostname, limits, show_ns, net, command } => (|| {
            let namespaces: NamespaceSet = namespaces.parse()?;
            let net: container::NetMode = net.parse().map_err(anyhow::Error::msg)?;
            let workloads = workloads::locate()?;
            isobench_harness::cleanup::sweep();
            let opts = ExecOptions { namespaces, rootfs, command, hostname, limits: limits.limits()?, cgroup: limits.cgroup(), show_ns, net };
            match container::exec(&opts, &workloads) {
                Ok(status) => Ok(ExitCode::from(status.clamp(0, 255) as u8)),
                Err(e) => {
                    eprintln!("isobench exec: {e}");
                    Ok(ExitCode::from(e.exit_status().clamp(0, 255) as u8))
                }
            }
        })(),
        Command::Startup { n, envs, json, ns, out, per_namespace, noop } => startup(n, &envs, json, ns, out, per_namespace, &noop),
        Command::Doctor => {
            let ok = doctor::print(&mut std::io::stdout());
            Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        Command::Validate { quick, out } => validate(quick, out),
        Command::Compare { a, b, threshold, noise, markdown } => compare(&a, &b, threshold, noise, markdown),
        Command::Merge { runs, out } => (|| {
            for r in &runs {
                results_folder(r)?;
            }
            let report = isobench_harness::report::merge::merge(&runs, &out)?;
            println!("{}", report.display());
            Ok(ExitCode::SUCCESS)
        })(),
        Command::List => {
            list();
            Ok(ExitCode::SUCCESS)
        }
        Command::Report { dir } => (|| {
            let report = isobench_harness::report::render(&results_folder(&dir)?)?;
            println!("{}", report.display());
            Ok(ExitCode::SUCCESS)
        })(),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("isobench: {e:#}");
            ExitCode::from(2)
        }
    }
}
