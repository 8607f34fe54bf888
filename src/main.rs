//! `isobench`: measure what isolation costs on this machine.
//!
//! The command line (hyperfine's main.rs is the model): the options, each
//! parsed by clap into the library's own types, and the dispatch to the code
//! that runs each command (run.rs, exec.rs, startup.rs, validate.rs,
//! folders.rs for report, compare and merge, info.rs for list, doctor and
//! schema). Options with an `ISOBENCH_*` twin read it when not given.

mod command;
mod density;
mod exec;
mod folders;
mod info;
mod layers;
mod progress;
mod run;
mod startup;
mod validate;
mod values;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use isobench_harness::container::rootfs::UpperKind;
use isobench_harness::container::{Limits, NamespaceSet, NetMode, Profile, RootfsChoice, DEFAULT_STOP_TIMEOUT};
use isobench_harness::env::runsc::platform::PlatformChoice;
use isobench_harness::env::{EnvKind, EnvSelection};
use isobench_harness::report::compare::DEFAULT_THRESHOLD;
use isobench_harness::schema::Schema;
use isobench_harness::startup::{Column, Noop, DEFAULT_N, DEFAULT_WARMUP};
use isobench_harness::storage::{ContainerStorage, VmStorage};
use isobench_harness::vm::{AccelChoice, BootProtocol, Machine, VmNet};
use isobench_harness::{env, runner};
use isobench_workloads::catalog::{Family, MetricSelection};
use isobench_workloads::protocol::PinMode;

/// `isobench --version`: the version and how this binary was linked, which
/// `isobench startup`'s exec columns carry into their labels (a static
/// build starts without the dynamic loader's work).
#[cfg(target_feature = "crt-static")]
const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (statically linked)");
#[cfg(not(target_feature = "crt-static"))]
const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (dynamically linked)");

#[derive(Parser)]
#[command(
    name = "isobench",
    version = VERSION,
    about = "Measure what isolation costs: the same workloads natively, in isobench's own namespace container and in a QEMU/KVM guest",
    long_about = long_about()
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// `isobench --help`'s description, its lists made from the library's types.
fn long_about() -> String {
    let core: String = EnvKind::ALL.iter().map(|k| format!("  {:<10} {}\n", k.as_str(), hanging(k.describe(), 13))).collect();
    let peers = EnvKind::PEERS.map(EnvKind::as_str).join(", ");
    let families = Family::ALL.map(Family::as_str).join(", ");
    format!(
        "Measure what isolation costs: the same static workloads natively, in isobench's own namespace container \
         and in a QEMU/KVM guest, with spawn, syscall, IPC and network metrics, and an overhead report (ratio to \
         native) with plots.\n\nEnvironments:\n{core}  {peers}\n             peer runtimes around the same agent \
         (--env peers)\n\nMetric families: {families} (see `isobench list`).\n`cargo bench` runs the same \
         measurements through criterion."
    )
}

/// `text` wrapped at 80 columns for a list item, its continuation lines
/// indented by `indent` (clap would wrap them at the left margin).
fn hanging(text: &str, indent: usize) -> String {
    let mut out = String::new();
    let mut column = indent;
    for word in text.split(' ') {
        if column > indent && column + 1 + word.chars().count() > 80 {
            out.push('\n');
            out.push_str(&" ".repeat(indent));
            column = indent;
        } else if column > indent {
            out.push(' ');
            column += 1;
        }
        out.push_str(word);
        column += word.chars().count();
    }
    out
}

#[derive(Subcommand)]
enum Command {
    /// Measure environments × metrics and write a results folder with report.md
    Run(RunArgs),
    /// Run a command in a new container (like unshare(1)); exits with its status
    #[command(trailing_var_arg = true)]
    Exec(ExecArgs),
    /// Time env.start: a no-op started and exited through isobench's launcher and each peer runtime, interleaved
    Startup(StartupArgs),
    /// What each layer of --profile docker costs: the container bare, with each layer alone, and with all, interleaved
    Layers(LayersArgs),
    /// How many fit: memory per instance, start storms (N starts, C at once) and idle CPU, per environment
    #[command(long_about = DENSITY_ABOUT)]
    Density(DensityArgs),
    /// Show what each environment needs and whether this host has it
    Doctor {
        /// Print the findings as JSON on stdout (`isobench schema doctor`)
        #[arg(long)]
        json: bool,
    },
    /// Cross-check isobench's native figures against perf bench, iperf3, hyperfine, fio, redis-benchmark and wrk
    Validate {
        /// Fewer iterations on both sides (a smoke check, not a verdict)
        #[arg(long)]
        quick: bool,
        /// Results folder to add the table to (validate.json, report.md)
        #[arg(long, value_name = "DIR", env = "ISOBENCH_RUN_DIR")]
        out: Option<PathBuf>,
        /// Where fio and the fs metrics make their files (a directory isobench-<pid>-data is made
        /// in it and removed after; default: the results folder's parent, else the current directory)
        #[arg(long, value_name = "DIR", env = "ISOBENCH_DATA_DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Compare two results folders: per env × metric change with a significance verdict
    #[command(long_about = "Compare two results folders: per environment × metric, the cost ratio of B's median to A's \
(> 1 = slower), significant when the 95 % confidence intervals of the medians (order statistics) do not overlap \
and the change exceeds the noise threshold (each metric's run-to-run variation measured on this project's machine, \
or --noise). A smoke run (--quick) on either side is not judged. Exits 1 when a significant regression exceeds --threshold, so it can gate CI.")]
    Compare {
        /// The baseline results folder
        a: PathBuf,
        /// The results folder to judge
        b: PathBuf,
        /// Fail (exit 1) on a significant regression larger than this fraction
        #[arg(long, default_value_t = DEFAULT_THRESHOLD)]
        threshold: f64,
        /// Changes smaller than this fraction are noise, for every metric (default: each
        /// metric's run-to-run variation measured on this project's machine, at least two
        /// histogram buckets; `isobench compare` prints the figure used per row)
        #[arg(long, value_name = "FRACTION")]
        noise: Option<f64>,
        /// Also write the table as markdown to this file
        #[arg(long, value_name = "FILE")]
        markdown: Option<PathBuf>,
        /// Print the comparison as JSON on stdout instead of the table: each change
        /// with its 95 % intervals, and the regressions (`isobench schema compare`)
        #[arg(long)]
        json: bool,
        /// Accept a folder whose run did not finish (killed part-way)
        #[arg(long)]
        allow_incomplete: bool,
    },
    /// Merge results folders (hosts, configurations) into one report, columns named env@host
    Merge {
        /// Results folders to merge
        #[arg(required = true, num_args = 2..)]
        runs: Vec<PathBuf>,
        /// The merged results folder to write: new (or empty), never one of the inputs
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Accept folders whose run did not finish (killed part-way)
        #[arg(long)]
        allow_incomplete: bool,
    },
    /// List environments and metrics (with units and reference methods)
    List {
        /// Print the listing as JSON on stdout (`isobench schema list`)
        #[arg(long)]
        json: bool,
    },
    /// Print the JSON Schema of a file or JSON output isobench writes, or write them all
    Schema {
        /// The schema to print
        #[arg(value_name = "NAME", value_parser = values::choice::<Schema>(Schema::ALL.map(Schema::as_str)))]
        name: Option<Schema>,
        /// Write every schema to DIR as <name>.schema.json instead (results/schema holds them)
        #[arg(long, value_name = "DIR", conflicts_with = "name")]
        out: Option<PathBuf>,
    },
    /// Re-render summary.csv (and host_timed.csv), plots and report.md of a results folder
    Report {
        /// The results folder (e.g. results/latest)
        dir: PathBuf,
    },
}

#[derive(clap::Args)]
struct RunArgs {
    /// Environments, comma-separated (`all`: the core three, `peers`: the peer runtimes)
    #[arg(long = "env", value_name = "LIST", env = "ISOBENCH_ENVS", default_value_t,
          value_parser = values::described_choice::<EnvSelection>(EnvSelection::words()))]
    envs: EnvSelection,
    /// Metrics, comma-separated: names (syscall.getpid; `isobench list` lists them), families (every metric of one),
    /// a name's first part (cpu: every cpu.* metric) or `all`
    #[arg(long = "metric", value_name = "LIST", default_value_t,
          value_parser = values::choice::<MetricSelection>(Family::ALL.map(Family::as_str).into_iter().chain(isobench_workloads::catalog::prefixes()).chain([MetricSelection::ALL_WORD])))]
    metrics: MetricSelection,
    /// Few iterations per metric: a smoke run in seconds, not a measurement to quote
    #[arg(long)]
    quick: bool,
    /// Iterations per metric (overrides the catalogue's default and --quick)
    #[arg(long, value_name = "N")]
    iterations: Option<u64>,
    /// Fit the run into about this time (3m, 1m30s, 1h): each environment's start and
    /// env.start samples come off first, the rest is shared as every measurement's time
    /// bound; between --quick (a smoke run) and the full job, with figures to quote
    #[arg(long, value_name = "DURATION", value_parser = isobench_harness::budget::parse_duration,
          conflicts_with_all = ["quick", "iterations", "max_ms"])]
    budget: Option<std::time::Duration>,
    /// Time bound of one measurement, milliseconds
    #[arg(long, value_name = "MS", default_value_t = runner::DEFAULT_MAX.as_millis() as u64)]
    max_ms: u64,
    /// CPU pinning, the same in every environment: `same` (default: the measuring
    /// thread and its peer — echo, writer or sender, boundary server — on one CPU:
    /// round trips are context switches), `split` (the peer on another CPU: cross-CPU
    /// wake-ups; recorded as `same` where only one CPU is allowed, e.g. a 1-vCPU guest),
    /// `none` (no pinning: the scheduler decides, so figures may be bimodal).
    /// One-party metrics (spawn, syscall, control) stay on one CPU under `split`
    #[arg(long, value_name = "MODE", env = "ISOBENCH_PIN", default_value_t,
          value_parser = values::choice::<PinMode>(PinMode::ALL.map(PinMode::as_str)))]
    pin: PinMode,
    /// Results folder to write (default: results/<UTC timestamp>-<host>); one that
    /// already holds a run is refused unless --append or --force
    #[arg(long, value_name = "DIR", env = "ISOBENCH_RUN_DIR")]
    out: Option<PathBuf>,
    /// Add this run's measurements to the run already in --out (the report lists
    /// each run; a measurement of the same environment × metric replaces the earlier)
    #[arg(long, conflicts_with = "force")]
    append: bool,
    /// Replace the run already in --out (its measurements, records and report are removed first)
    #[arg(long)]
    force: bool,
    /// Where the fs metrics make their files on the host (a directory isobench-<pid>-data
    /// is made in it and removed with the run; default: the results folder's parent, so the
    /// results' file system); its file system type is recorded. With --command: DIR itself is
    /// the command's working directory in every environment (its files read, its writes kept)
    #[arg(long, value_name = "DIR", env = "ISOBENCH_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// The containers' storage path for the fs metrics (isobench's container, runc, crun, bwrap,
    /// runsc): `volume` (a host directory under the data directory bind-mounted on /mnt, as
    /// docker run -v) or `root` (the container's writable root: a tmpfs /tmp over the read-only
    /// image, the overlay under --profile docker; runsc's own overlay, --overlay2=root:memory)
    #[arg(long, value_name = "PATH", default_value = "volume",
          value_parser = values::choice::<ContainerStorage>(ContainerStorage::ALL.map(ContainerStorage::as_str)))]
    container_storage: ContainerStorage,
    /// The vm's storage path for the fs metrics: `disk` (an ext4 image under the data directory
    /// on virtio-blk, QEMU cache=none with io_uring or native AIO where the file system takes
    /// O_DIRECT, else the host's page cache; run.json says which), `9p` (a directory under
    /// the data directory shared over virtio-9p, msize 512000) or `virtiofs` (the same directory
    /// over virtiofs, a virtiofsd per guest with cache=none; needs root)
    #[arg(long, value_name = "PATH", default_value = "disk",
          value_parser = values::choice::<VmStorage>(VmStorage::ALL.map(VmStorage::as_str)))]
    vm_storage: VmStorage,
    /// Print only problems (skipped environments, failed measurements) and the report path
    #[arg(long, short)]
    quiet: bool,
    /// Print the summary rows as JSON on stdout at the end (instead of the report path)
    #[arg(long)]
    json: bool,
    /// VM accelerator (`auto`: KVM when a probe boot under KVM reaches the agent, else TCG)
    #[arg(long, value_name = "ACCEL", env = "ISOBENCH_ACCEL", default_value_t,
          value_parser = values::choice::<AccelChoice>(AccelChoice::ALL.map(AccelChoice::as_str)))]
    accel: AccelChoice,
    /// gVisor platform of the runsc environment (`auto`: the first of systrap, kvm,
    /// ptrace whose probe runs a no-op within its bound; cached per runsc and kernel)
    #[arg(long, value_name = "PLATFORM", env = "ISOBENCH_GVISOR_PLATFORM", default_value_t,
          value_parser = values::choice::<PlatformChoice>(PlatformChoice::ALL.map(PlatformChoice::as_str)))]
    gvisor_platform: PlatformChoice,
    /// VM machine type: microvm (virtio-mmio, no PCI, no firmware ROMs) or q35
    #[arg(long, value_name = "TYPE", env = "ISOBENCH_MACHINE", default_value_t,
          value_parser = values::choice::<Machine>(Machine::ALL.map(Machine::as_str)))]
    machine: Machine,
    /// VM kernel entry (default: pvh when the image has a vmlinux, else bzimage)
    #[arg(long = "vm-boot", value_name = "PROTOCOL",
          value_parser = values::choice::<BootProtocol>(BootProtocol::ALL.map(BootProtocol::as_str)))]
    vm_boot: Option<BootProtocol>,
    /// VM guest memory in MiB
    #[arg(long = "vm-memory", value_name = "MIB", default_value_t = env::vm::DEFAULT_MEMORY_MIB,
          value_parser = clap::value_parser!(u32).range(1..))]
    vm_memory: u32,
    /// VM vCPUs
    #[arg(long = "vm-cpus", value_name = "N", default_value_t = env::vm::DEFAULT_CPUS,
          value_parser = clap::value_parser!(u32).range(1..))]
    vm_cpus: u32,
    /// Exit non-zero (vm skipped, with the reason) instead of running the vm under TCG
    #[arg(long)]
    require_kvm: bool,
    /// VM network for net.*.boundary: tap (default as root: a tap in the run's private
    /// network namespace) or user (QEMU's slirp with loopback port forwards; default without root)
    #[arg(long = "vm-net", value_name = "NET", value_parser = values::choice::<VmNet>(VmNet::ALL.map(VmNet::as_str)))]
    vm_net: Option<VmNet>,
    /// Namespaces of the container environment, comma-separated (`all`: all seven,
    /// `none`: a plain chroot; default pid,mnt,uts,ipc,net); pid and user need mnt
    /// (the container's own /proc)
    #[arg(long = "ns", value_name = "LIST", value_parser = values::choice::<NamespaceSet>(NamespaceSet::words()))]
    container_ns: Option<NamespaceSet>,
    /// Rootfs of the container, runc, crun and bwrap environments: `minimal`
    /// (default), `debian` (built once with debootstrap, read-only) or a directory
    #[arg(long, value_name = "minimal|debian|DIR", default_value = "minimal")]
    rootfs: RootfsChoice,
    /// Debian packages installed into the `--rootfs debian` image (comma-separated;
    /// each list is its own cached image): `redis-server,nginx-light` gives the app.*
    /// metrics their servers in the container and peers (natively the host's own)
    #[arg(long = "image-packages", value_name = "LIST", value_parser = values::image_packages)]
    image_packages: Option<String>,
    #[command(flatten)]
    container_limits: LimitArgs,
    #[command(flatten)]
    profile: ProfileArg,
    #[command(flatten)]
    command: command::CommandArgs,
}

/// `--profile`: the container's security profile (`isobench exec`, the
/// container environment and the runc and crun peers, `isobench startup`'s
/// isobench columns).
#[derive(clap::Args)]
struct ProfileArg {
    /// Security profile of the container (and of runc and crun): `bare` is namespaces
    /// only, NOT A SECURITY BOUNDARY; `default` adds runc's and Docker's hardening;
    /// `docker` adds the distribution's seccomp filter, an overlayfs root over the image
    /// and, for the boundary network, a bridge with a DNAT'd published port (runc and
    /// crun get all of it: the overlay mounted as their bundle's root, a network namespace
    /// prepared on the bridge; runsc the hardening and the filter only, its label says so)
    #[arg(long = "profile", value_name = "PROFILE", default_value_t,
          value_parser = values::described_choice::<Profile>(Profile::ALL.map(|p| (p.as_str(), p.describe().to_string()))))]
    profile: Profile,
    /// Where the overlay root's upperdir lives under `--profile docker`: a tmpfs of the
    /// container's own (default), or a directory on the temp dir's filesystem (removed
    /// after the run)
    #[arg(long = "overlay-upper", value_name = "tmpfs|disk", default_value_t,
          value_parser = values::choice::<UpperKind>(UpperKind::ALL.map(UpperKind::as_str)))]
    overlay_upper: UpperKind,
}

/// `isobench density --help`'s description.
const DENSITY_ABOUT: &str = "How many instances of each environment fit on this host, and how fast they start when load \
arrives. Per environment (the native agent first: the payload's own memory), one start storm per concurrency: N starts \
with C in flight, each start's latency to agent-ready (env.start's interval) in a histogram, the time until all were \
ready, failures counted with their error (the storm goes on). Then, with the N instances idle: PSS and USS of each \
instance's host process tree (/proc/PID/smaps_rollup), the MemAvailable fall over N, and their CPU time over \
--idle-window. No start is made that would leave less than --min-available of MemAvailable: the storm stops there \
and says how far it got. Host settings (KSM) are recorded, never changed. Writes density.json and report.md into \
a results folder; Ctrl-C stops at once, stops every instance, keeps what was measured and exits 130.";

/// `isobench density`.
#[derive(clap::Args)]
struct DensityArgs {
    /// Environments besides native (always measured first, as the baseline), comma-separated
    #[arg(long = "env", value_name = "LIST", default_value = "container,runc,crun,bwrap,runsc,vm",
          value_parser = values::described_choice::<EnvSelection>(EnvSelection::words()))]
    envs: EnvSelection,
    /// Starts per storm (N), every environment but the vm
    #[arg(long, value_name = "N", default_value_t = isobench_harness::density::DEFAULT_INSTANCES)]
    instances: u32,
    /// Concurrencies (C), comma-separated: one storm each
    #[arg(long, value_name = "LIST", value_delimiter = ',', default_value = isobench_harness::density::DEFAULT_CONCURRENCY_ARG)]
    concurrency: Vec<u32>,
    /// Starts per storm of the vm
    #[arg(long, value_name = "N", default_value_t = isobench_harness::density::DEFAULT_VM_INSTANCES)]
    vm_instances: u32,
    /// Concurrencies of the vm, comma-separated
    #[arg(long, value_name = "LIST", value_delimiter = ',', default_value = isobench_harness::density::DEFAULT_VM_CONCURRENCY_ARG)]
    vm_concurrency: Vec<u32>,
    /// Never start an instance that would leave less MemAvailable than this, MiB
    #[arg(long, value_name = "MIB", default_value_t = isobench_harness::density::DEFAULT_MIN_AVAILABLE_MIB)]
    min_available: u64,
    /// How long the idle instances' CPU time is taken over, milliseconds (0: not measured)
    #[arg(long, value_name = "MS", default_value_t = isobench_harness::density::DEFAULT_IDLE_WINDOW_MS)]
    idle_window: u64,
    /// Accelerator for the vm: auto (KVM when a probe boot works, else TCG), kvm or tcg
    #[arg(long, value_name = "auto|kvm|tcg", default_value_t,
          value_parser = values::choice::<AccelChoice>(AccelChoice::ALL.map(AccelChoice::as_str)))]
    accel: AccelChoice,
    /// Results folder to write into (default: a new one under results/)
    #[arg(long, value_name = "DIR", env = "ISOBENCH_RUN_DIR")]
    out: Option<PathBuf>,
    /// Also print density.json on stdout (the table goes to stderr)
    #[arg(long)]
    json: bool,
    /// Only problems on stderr
    #[arg(long)]
    quiet: bool,
}

/// `isobench layers`.
#[derive(clap::Args)]
struct LayersArgs {
    /// Rounds: each starts the container bare, with each layer alone and with all of
    /// them (docker), in a new random order, and measures every metric in each
    #[arg(long, value_name = "N", default_value_t = isobench_harness::layers::DEFAULT_ROUNDS)]
    rounds: usize,
    /// Metrics, comma-separated (default: every syscall.*, ipc.pipe_rtt, every net.*.boundary and env.start)
    #[arg(long = "metric", value_name = "LIST",
          value_parser = values::choice::<MetricSelection>(Family::ALL.map(Family::as_str).into_iter().chain(isobench_workloads::catalog::prefixes()).chain([MetricSelection::ALL_WORD])))]
    metrics: Option<MetricSelection>,
    /// Few iterations per metric: a smoke run, not a measurement to quote
    #[arg(long)]
    quick: bool,
    /// Time bound of one measurement, milliseconds
    #[arg(long, value_name = "MS", default_value_t = 2000)]
    max_ms: u64,
    /// Where the overlay layer's upperdir lives: tmpfs (default) or disk
    #[arg(long = "overlay-upper", value_name = "tmpfs|disk", default_value_t,
          value_parser = values::choice::<UpperKind>(UpperKind::ALL.map(UpperKind::as_str)))]
    overlay_upper: UpperKind,
    /// Results folder to add the table to (layers.json, report.md)
    #[arg(long, value_name = "DIR", env = "ISOBENCH_RUN_DIR")]
    out: Option<PathBuf>,
    /// Also print the record as JSON on stdout (the table goes to stderr)
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct ExecArgs {
    /// Namespaces to create, comma-separated (`all`: all seven, `none`: a plain
    /// chroot); without root a user namespace is always added (rootless mode); pid and
    /// user need mnt (the container's own /proc)
    #[arg(long = "ns", value_name = "LIST", default_value_t = NamespaceSet::DEFAULT,
          value_parser = values::choice::<NamespaceSet>(NamespaceSet::words()))]
    namespaces: NamespaceSet,
    /// Root filesystem: `minimal` (default: the agent, noop and a static
    /// busybox), `debian` (the host distribution's, built once with
    /// debootstrap into the cache, mounted read-only) or a directory (bound
    /// read-only with a tmpfs on /tmp, so never modified; with no mnt in --ns
    /// a plain chroot into it, which the command can write)
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
    /// root only). Under `--profile docker` the .1 end is a bridge and its
    /// port 18080 is DNAT'd to the container's 8080 (Docker's `-p 18080:8080`,
    /// path veth+bridge+NAT); a line on stderr says where
    #[arg(long, value_name = "NET", default_value_t, value_parser = values::choice::<NetMode>(NetMode::ALL.map(NetMode::as_str)))]
    net: NetMode,
    #[command(flatten)]
    profile: ProfileArg,
    /// Seconds a SIGTERM, SIGINT or SIGHUP to isobench gives the container (passed
    /// on to its command) before everything in it is killed; a second signal kills
    /// at once (`docker stop -t`)
    #[arg(long, value_name = "SECONDS", default_value_t = DEFAULT_STOP_TIMEOUT.as_secs())]
    stop_timeout: u64,
    /// The command and its arguments (put `--` before it)
    #[arg(required = true, value_name = "CMD")]
    command: Vec<OsString>,
}

#[derive(clap::Args)]
struct StartupArgs {
    #[arg(long, value_name = "N", default_value_t = DEFAULT_N,
          help = format!("Kept rounds per column (after {DEFAULT_WARMUP} warm-up rounds)"))]
    n: usize,
    // Columns: a list parsed by `Column::parse_list` (the path `std::vec::Vec`
    // keeps clap from taking the field for a repeated option).
    #[arg(long = "env", value_name = "LIST", default_value = "all", value_parser = Column::parse_list,
          help = format!("Columns, comma-separated: {} (or `all`, `peers`)", Column::names()))]
    envs: std::vec::Vec<Column>,
    /// Print each column's p50, p90, the p50's 95 % interval and its ratio to
    /// isobench as JSON on stdout (the table goes to stderr)
    #[arg(long)]
    json: bool,
    /// Also write every sample as JSON to FILE (what `--json FILE` wrote before
    /// `--json` printed the statistics)
    #[arg(long, value_name = "FILE")]
    samples: Option<PathBuf>,
    /// Results folder to add the table to (startup.json, or startup-nolibc.json with
    /// `--noop nolibc`; report.md)
    #[arg(long, value_name = "DIR", env = "ISOBENCH_RUN_DIR")]
    out: Option<PathBuf>,
    /// Instead: the launcher's cost per namespace (none, each alone, all seven)
    #[arg(long, conflicts_with_all = ["ns", "envs"])]
    per_namespace: bool,
    /// Namespaces for the clone floors, isobench, runc, crun and bwrap (unshare
    /// always runs -pfmnuiC), comma-separated (`all`: all seven; default pid,mnt,uts,ipc,net)
    #[arg(long = "ns", value_name = "LIST", value_parser = values::choice::<NamespaceSet>(NamespaceSet::words()))]
    ns: Option<NamespaceSet>,
    /// The no-op every column runs: `static` (glibc, as lmbench's static hello), or
    /// `nolibc` (exit_group at the entry point: no C library start-up, which on a
    /// guest whose CPUID exits to the hypervisor is most of a start)
    #[arg(long, value_name = "KIND", default_value_t, value_parser = values::choice::<Noop>(Noop::ALL.map(Noop::as_str)))]
    noop: Noop,
    #[command(flatten)]
    profile: ProfileArg,
    /// gVisor platform of the runsc column (`auto`: probed as for `isobench run`)
    #[arg(long, value_name = "PLATFORM", env = "ISOBENCH_GVISOR_PLATFORM", default_value_t,
          value_parser = values::choice::<PlatformChoice>(PlatformChoice::ALL.map(PlatformChoice::as_str)))]
    gvisor_platform: PlatformChoice,
}

/// cgroup limits of a container (`isobench exec`, the container environment).
#[derive(clap::Args)]
struct LimitArgs {
    /// CPU limit in CPUs, e.g. 0.5 (a cgroup CPU quota per 100 ms period)
    #[arg(long, value_name = "N", value_parser = values::limit(Limits::parse_cpus))]
    cpus: Option<f64>,
    /// Memory limit: bytes or 64m, 1g (over it the kernel OOM-kills inside; no swap)
    #[arg(long, value_name = "SIZE", value_parser = values::limit(Limits::parse_memory))]
    memory: Option<u64>,
    /// Most tasks (processes + threads) in the container; fork fails beyond
    #[arg(long, value_name = "N", value_parser = values::limit(Limits::parse_pids))]
    pids: Option<u64>,
    /// No cgroup for the container (no accounting, no kill-all; no limits)
    #[arg(long)]
    no_cgroup: bool,
}

impl LimitArgs {
    fn limits(&self) -> Limits {
        Limits { cpus: self.cpus, memory: self.memory, pids: self.pids }
    }

    /// `Some(false)` with --no-cgroup, else the default (a cgroup when the host has them).
    fn cgroup(&self) -> Option<bool> {
        self.no_cgroup.then_some(false)
    }
}

fn main() -> ExitCode {
    let cli: Cli = values::parse_or_exit();
    let result = match cli.command {
        Command::Run(args) => run::run(args),
        Command::Exec(args) => exec::exec(args),
        Command::Startup(args) => startup::startup(args),
        Command::Layers(args) => layers::layers(args),
        Command::Density(args) => density::density(args),
        Command::Doctor { json } => info::doctor(json),
        Command::Validate { quick, out, data_dir } => validate::validate(quick, out, data_dir),
        Command::Compare { a, b, threshold, noise, markdown, json, allow_incomplete } => {
            folders::compare(&a, &b, threshold, noise, markdown, json, allow_incomplete)
        }
        Command::Merge { runs, out, allow_incomplete } => folders::merge(&runs, &out, allow_incomplete),
        Command::List { json } => info::list(json),
        Command::Schema { name, out } => info::schema(name, out),
        Command::Report { dir } => folders::report(&dir),
    };
    match result {
        Ok(code) => {
            // The command ended and its guards removed what it made: the
            // next start need not sweep for this process
            // (harness/src/leftovers.rs, the owners folder).
            isobench_harness::leftovers::unmark_owner();
            code
        }
        Err(e) => {
            eprintln!("isobench: {}", one_line(&e));
            ExitCode::from(2)
        }
    }
}

/// The error and its causes on one line, each cause once: a message that
/// already ends with its cause's text (thiserror's `"{path}: {source}"`
/// beside `#[source]`) is not followed by it again.
fn one_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if line.is_empty() {
            line = text;
        } else if !line.ends_with(&text) {
            line = format!("{line}: {text}");
        }
    }
    line
}
