//! The vm environment: a QEMU guest whose /init is the agent, driven over a
//! virtio-serial port. `prepare` finds the guest image and QEMU and decides
//! the accelerator (probing KVM with a real boot when asked to choose); each
//! `start` boots a fresh guest and returns once its agent said `ready`, so the
//! host-side start time is a full boot (Firecracker's boot-time method: from
//! process start to the guest's first sign of life in user space).
//!
//! Each boot is also split into phases measured from the host, all in ms from
//! QEMU's start: the console's first byte (the kernel is running), the agent's
//! `ready` (/init reached), the shutdown request (the workload is done) and
//! QEMU having exited; beside them the guest's own view (its uptime at
//! `ready`) and its clocksource, since in-guest timings are only as good as
//! its clock. [`Instance::phases`] gives those known while the guest runs;
//! `metadata()["boots"]` every boot's full record.
//!
//! Storage: with `--rootfs debian` the guest's root is the same
//! distribution tree the container runs from, imaged as ext4 once and
//! cached beside it (`vm::disk::root_image`), attached `snapshot=on`; the
//! agent (still /init from the initramfs) makes it `/`. With a run data
//! directory the fs.* metrics get an ext4 data disk on virtio-blk (a raw
//! image under the run's data directory, QEMU's cache/aio modes probed)
//! or, under `--vm-storage 9p`, a directory of it shared over virtio-9p,
//! or under `--vm-storage virtiofs` the same directory over virtiofs (a
//! virtiofsd per guest, `vm::virtiofsd`); each is mounted at
//! `guest::DATA_DIR`.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use isobench_workloads::guest::DATA_DIR;
use isobench_workloads::protocol::{AgentInfo, GuestMount};

use super::{Endpoint, EnvError, EnvKind, Environment, Instance, Options, PathKind};
use crate::agent::AgentClient;
use crate::container::net::{Link, RunNetns};
use crate::results::run::BootRecord;
use crate::storage::{StorageKind, StoragePath, VmStorage};
use crate::vm::accel::{self, Verdict};
use crate::vm::disk;
use crate::vm::image::{self, GuestImage};
use crate::vm::qemu::Forwards;
use crate::vm::qemu::{self, Accel, BootProtocol, GuestData, GuestNet, Machine, Qemu, QemuError, QemuSpec};
use crate::vm::virtiofsd;
use crate::vm::VmNet;

const ENV: &str = "vm";

/// Guest memory (MiB): the agent needs a few MiB; the rest is page cache.
pub const DEFAULT_MEMORY_MIB: u32 = 256;
pub const DEFAULT_CPUS: u32 = 1;

/// From QEMU start to the agent's `ready` under KVM (a boot takes < 1 s).
pub const BOOT_TIMEOUT_KVM: Duration = Duration::from_secs(20);
/// The same under TCG (about 5 s on a 2-core VM; slow CI hosts need slack).
pub const BOOT_TIMEOUT_TCG: Duration = Duration::from_secs(90);
/// From the agent's `bye` to QEMU having exited after the guest powered off.
pub const POWER_OFF_TIMEOUT: Duration = Duration::from_secs(20);

/// Boot records kept for `metadata()["boots"]`; older ones are dropped.
pub const MAX_BOOT_RECORDS: usize = 100;

/// The 9p msize (the largest message, bytes) the share is mounted with:
/// the most the guest's virtio transport takes in Linux 6.1 (a virtqueue of
/// 128 descriptors less 3, of one 4 KiB page each: net/9p/trans_virtio.c),
/// what QEMU's documentation suggests; its 8 KiB default would split every
/// 1 MiB request into 128 messages.
pub const NINEP_MSIZE: u32 = 512_000;

/// The guest's root: the initramfs, or a distribution tree imaged as ext4.
#[derive(Debug, Clone)]
struct RootDisk {
    /// The tree in the cache (what the container runs from).
    tree: PathBuf,
    /// Its cached ext4 image.
    image: PathBuf,
    /// `debian-bookworm`.
    name: String,
}

/// The fs.* metrics' path in the guest, made in `prepare`.
#[derive(Debug, Clone)]
struct DataPath {
    path: StoragePath,
    data: GuestData,
    /// Why QEMU's preferred disk modes were not used, when they were not.
    fallback: Option<String>,
}

/// Makes the vm's data path under the run's data directory `base`: an
/// ext4 image (`vm/data-<n>.img`, [`disk::DATA_DISK_BYTES`]) with the
/// cache/aio modes QEMU takes on its file system, or the directory `vm/`
/// for 9p and virtiofs.
fn prepare_data(base: &std::path::Path, choice: VmStorage, qemu_bin: &std::path::Path) -> Result<DataPath, String> {
    static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let dir = base.join(ENV);
    std::fs::create_dir_all(&dir).map_err(|e| format!("data directory {}: {e}", dir.display()))?;
    match choice {
        VmStorage::Disk => {
            let image = dir.join(format!("data-{}.img", SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)));
            let _ = std::fs::remove_file(&image);
            disk::make_ext4(&image, None, disk::DATA_DISK_BYTES, "isobench-data").map_err(|e| e.to_string())?;
            let modes = disk::probe_modes(qemu_bin, &image).map_err(|e| e.to_string())?;
            let path = StoragePath {
                kind: StorageKind::VirtioBlk,
                agent_dir: DATA_DIR.into(),
                host_dir: Some(image.clone()),
                detail: Some(modes.describe()),
                fs: None,
            };
            Ok(DataPath { path, data: GuestData::Disk { image, cache: modes.cache, aio: modes.aio }, fallback: modes.fallback })
        }
        VmStorage::NineP => {
            let path = StoragePath {
                kind: StorageKind::Virtio9p,
                agent_dir: DATA_DIR.into(),
                host_dir: Some(dir.clone()),
                // QEMU's 9p server drops O_DIRECT from the guest's open
                // flags (hw/9pfs/9p.c, get_dotl_openflags): every write
                // lands in the host's page cache, and the row must say so.
                detail: Some(format!("msize={NINEP_MSIZE}; QEMU drops O_DIRECT, the host's page cache serves")),
                fs: Some("9p".into()),
            };
            Ok(DataPath { path, data: GuestData::Share { dir, msize: NINEP_MSIZE }, fallback: None })
        }
        VmStorage::Virtiofs => {
            let daemon = virtiofsd::find().map_err(|e| e.to_string())?;
            if !nix::unistd::geteuid().is_root() {
                return Err(virtiofsd::VirtiofsdError::NeedsRoot.to_string());
            }
            let cache = virtiofsd::CACHE_MODE;
            let path = StoragePath {
                kind: StorageKind::Virtiofs,
                agent_dir: DATA_DIR.into(),
                host_dir: Some(dir.clone()),
                // cache=none: no guest page cache, every request crosses
                // (as over 9p); virtiofsd drops O_DIRECT by default
                // (no_allow_direct_io), so the host's page cache serves.
                detail: Some(format!("virtiofsd cache={cache}; it drops O_DIRECT, the host's page cache serves")),
                fs: Some("virtiofs".into()),
            };
            Ok(DataPath { path, data: GuestData::Virtiofs { dir, daemon, cache }, fallback: None })
        }
    }
}

/// `--command`'s data directory (`Options::command_data`): the user's
/// directory itself over virtio-9p on [`DATA_DIR`], so the files put there
/// are read, and what the command writes lands there, as in the other
/// environments (an ext4 disk image would be a copy).
fn command_share(dir: &std::path::Path) -> DataPath {
    let path = StoragePath {
        kind: StorageKind::Virtio9p,
        agent_dir: DATA_DIR.into(),
        host_dir: Some(dir.to_path_buf()),
        detail: Some(format!("msize={NINEP_MSIZE}")),
        fs: Some("9p".into()),
    };
    DataPath { path, data: GuestData::Share { dir: dir.to_path_buf(), msize: NINEP_MSIZE }, fallback: None }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

type Boots = Arc<Mutex<Vec<BootRecord>>>;

pub struct Vm {
    image: GuestImage,
    qemu_bin: PathBuf,
    qemu_version: String,
    verdict: Verdict,
    machine: Machine,
    boot: BootProtocol,
    /// The user chose `boot` (no fallback to the bzImage then).
    boot_requested: bool,
    memory_mib: u32,
    cpus: u32,
    /// The TSC rate a TCG guest is told (`tsc_early_khz=`).
    tsc_khz: Option<u64>,
    boots: Boots,
    boot_timeout: Duration,
    log_dir: Option<PathBuf>,
    starts: u32,
    /// A caveat for run.json, e.g. an image older than the agent.
    warning: Option<String>,
    /// The guest's end of the boundary network, set up on the first start.
    net: GuestNetState,
    net_choice: Option<VmNet>,
    /// A distribution root disk (`--rootfs debian`), else the initramfs.
    root: Option<RootDisk>,
    /// The fs.* metrics' path, or why there is none (`None`: no data dir).
    data: Option<Result<DataPath, String>>,
    /// What the last boot's agent mounted (its root disk, its data path).
    mounts: Vec<GuestMount>,
}

/// The network every boot of this environment is attached to.
enum GuestNetState {
    /// Decided on the first start.
    Pending,
    /// As root: a tap in the run's private network namespace, held for the
    /// environment's life (deleted with it), the guest at .2 of its /24.
    Tap { endpoint: Endpoint, net: GuestNet, _tap: Link },
    /// Without root: QEMU's user-mode network with forwarded loopback ports.
    User { endpoint: Endpoint, net: GuestNet },
}

/// Guest ports of the boundary servers under user-mode networking (forwarded
/// from free host loopback ports).
const SLIRP_GUEST_PORTS: (u16, u16) = (5201, 5202);
/// The address QEMU's user-mode network gives a guest (its built-in DHCP's).
const SLIRP_GUEST_CIDR: &str = "10.0.2.15/24";

impl GuestNetState {
    fn setup(choice: Option<VmNet>) -> Result<(GuestNetState, Option<String>), String> {
        let root = nix::unistd::geteuid().is_root();
        match choice {
            Some(VmNet::User) => return Self::user().map(|s| (s, None)),
            Some(VmNet::Tap) if !root => return Err("--vm-net tap needs root (CAP_NET_ADMIN); use --vm-net user".into()),
            Some(VmNet::Tap) => return Self::tap().map(|s| (s, None)),
            None => {}
        }
        if root {
            match Self::tap() {
                Ok(state) => return Ok((state, None)),
                Err(e) => {
                    let w = format!("no tap in the run's network namespace ({e}); using user-mode networking (slirp) instead");
                    eprintln!("vm: warning: {w}");
                    return Self::user().map(|s| (s, Some(w)));
                }
            }
        }
        Self::user().map(|s| (s, None))
    }

    fn tap() -> Result<GuestNetState, String> {
        static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let netns = RunNetns::shared().map_err(|e| e.to_string())?;
        let subnet = netns.try_allocate_subnet().map_err(|e| e.to_string())?;
        let ifname = format!("ibt{}-{}", std::process::id(), SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 100);
        let tap = netns.add_tap(&ifname, &subnet).map_err(|e| e.to_string())?;
        let net = GuestNet::Tap { ifname, netns: netns.path().to_path_buf(), guest_cidr: format!("{}/{}", subnet.peer, subnet.prefix_len) };
        let endpoint = Endpoint {
            path: PathKind::Tap,
            netns: Some(netns),
            bind: subnet.peer.into(),
            connect: subnet.peer.into(),
            forwards: None,
            host_scheduler: false,
        };
        Ok(GuestNetState::Tap { endpoint, net, _tap: tap })
    }

    fn user() -> Result<GuestNetState, String> {
        let free_port = |udp: bool| -> Result<u16, String> {
            let lo = (std::net::Ipv4Addr::LOCALHOST, 0);
            let port = match udp {
                false => std::net::TcpListener::bind(lo).and_then(|l| l.local_addr()),
                true => std::net::UdpSocket::bind(lo).and_then(|s| s.local_addr()),
            };
            port.map(|a| a.port()).map_err(|e| format!("no free loopback port for user-mode networking: {e}"))
        };
        let forwards = Forwards { tcp: (SLIRP_GUEST_PORTS.0, free_port(false)?), udp: (SLIRP_GUEST_PORTS.1, free_port(true)?) };
        let net = GuestNet::User { forwards, guest_cidr: SLIRP_GUEST_CIDR.into() };
        let any = std::net::IpAddr::from(std::net::Ipv4Addr::UNSPECIFIED);
        let endpoint = Endpoint {
            path: PathKind::Slirp,
            netns: None,
            bind: any,
            connect: std::net::Ipv4Addr::LOCALHOST.into(),
            forwards: Some(forwards),
            host_scheduler: false,
        };
        Ok(GuestNetState::User { endpoint, net })
    }

    fn spec(&self) -> Option<GuestNet> {
        match self {
            GuestNetState::Pending => None,
            GuestNetState::Tap { net, .. } | GuestNetState::User { net, .. } => Some(net.clone()),
        }
    }

    fn endpoint(&self) -> Option<Endpoint> {
        match self {
            GuestNetState::Pending => None,
            GuestNetState::Tap { endpoint, .. } | GuestNetState::User { endpoint, .. } => Some(endpoint.clone()),
        }
    }
}

fn unavailable(reason: impl std::fmt::Display) -> EnvError {
    EnvError::Unavailable { env: ENV, reason: reason.to_string() }
}

impl Vm {
    /// Finds QEMU, scripts/vm-run and the guest image, then decides the
    /// accelerator (`auto` may take one KVM probe boot, cached afterwards).
    pub fn prepare(opts: &Options) -> Result<Self, EnvError> {
        let qemu_bin = qemu::find_qemu().map_err(unavailable)?;
        qemu::vm_run_script().map_err(unavailable)?;
        let image = image::locate().map_err(unavailable)?;
        let qemu_version = qemu::qemu_version(&qemu_bin).map_err(unavailable)?;
        let warning = image.older_than(&opts.workloads.agent).then(|| {
            format!(
                "the guest image ({}) holds another agent build than {}; run scripts/build-guest",
                image.dir.display(),
                opts.workloads.agent.display()
            )
        });
        if let Some(w) = &warning {
            eprintln!("vm: warning: {w}");
        }
        let settings = &opts.vm;
        let boot = settings.boot.unwrap_or_else(|| image.preferred_boot());
        image.kernel_for(boot).map_err(unavailable)?;
        if settings.require_kvm && opts.accel == crate::vm::AccelChoice::Tcg {
            return Err(unavailable(accel::AccelError::RequireKvmWithTcg));
        }
        let verdict = accel::decide(opts.accel, &image, &qemu_bin, &qemu_version);
        let verdict = if settings.require_kvm { accel::require_kvm(opts.accel, verdict) } else { verdict }.map_err(unavailable)?;
        let boot_timeout = match verdict.accel {
            Accel::Kvm => BOOT_TIMEOUT_KVM,
            Accel::Tcg => BOOT_TIMEOUT_TCG,
        };
        // The container's distribution tree as the guest's root: the
        // user asked for that image, so a vm without it is unavailable.
        let root = match &opts.container.rootfs {
            crate::container::RootfsChoice::Distro => {
                let tree = crate::container::rootfs::distro::DistroRootfs::prepare(&opts.workloads)
                    .map_err(|e| unavailable(format!("--rootfs debian: {e}")))?;
                let image = disk::root_image(tree.path()).map_err(|e| unavailable(format!("root disk of {}: {e}", tree.path().display())))?;
                Some(RootDisk { tree: tree.path().to_path_buf(), image, name: tree.name() })
            }
            _ => None,
        };
        // A data path that cannot be made costs the fs.* metrics only.
        let data = match &opts.command_data {
            Some(dir) => Some(Ok(command_share(dir))),
            None => opts.data_dir.as_deref().map(|base| prepare_data(base, opts.vm_storage, &qemu_bin)),
        };
        if let Some(Ok(DataPath { fallback: Some(why), .. })) = &data {
            eprintln!("vm: warning: the data disk is not on cache=none with io_uring: {why}");
        }
        Ok(Vm {
            image,
            qemu_bin,
            qemu_version,
            tsc_khz: match verdict.accel {
                Accel::Tcg => crate::vm::tsc::host_khz(),
                Accel::Kvm => None,
            },
            verdict,
            machine: settings.machine.unwrap_or_default(),
            boot,
            boot_requested: settings.boot.is_some(),
            memory_mib: settings.memory_mib.unwrap_or(DEFAULT_MEMORY_MIB),
            cpus: settings.cpus.unwrap_or(DEFAULT_CPUS),
            boots: Boots::default(),
            boot_timeout,
            log_dir: opts.log_dir.clone(),
            starts: 0,
            warning,
            net: GuestNetState::Pending,
            net_choice: settings.net,
            root,
            data,
            mounts: Vec::new(),
        })
    }

    /// The accelerator and why.
    pub fn verdict(&self) -> &Verdict {
        &self.verdict
    }

    pub fn image(&self) -> &GuestImage {
        &self.image
    }

    /// How long `start` waits for the agent before killing the guest.
    pub fn set_boot_timeout(&mut self, timeout: Duration) {
        self.boot_timeout = timeout;
    }

    pub fn set_machine(&mut self, machine: Machine) {
        self.machine = machine;
    }

    pub fn set_memory_mib(&mut self, mib: u32) {
        self.memory_mib = mib;
    }

    /// How the kernel is entered; `prepare` checked the default exists.
    pub fn set_boot(&mut self, boot: BootProtocol) -> Result<(), EnvError> {
        self.image.kernel_for(boot).map_err(unavailable)?;
        self.boot = boot;
        self.boot_requested = true;
        Ok(())
    }

    pub fn machine(&self) -> Machine {
        self.machine
    }

    pub fn boot(&self) -> BootProtocol {
        self.boot
    }

    /// Every boot's phases so far (the last [`MAX_BOOT_RECORDS`]).
    pub fn boots(&self) -> Vec<BootRecord> {
        self.boots.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn spec(&self) -> QemuSpec {
        QemuSpec {
            kernel: self.image.kernel_for(self.boot).unwrap_or(&self.image.kernel).to_path_buf(),
            initrd: self.image.initrd.clone(),
            accel: self.verdict.accel,
            machine: self.machine,
            memory_mib: self.memory_mib,
            cpus: self.cpus,
            tsc_khz: self.tsc_khz,
            net: self.net.spec(),
            root_disk: self.root.as_ref().map(|r| r.image.clone()),
            data: self.data.as_ref().and_then(|d| d.as_ref().ok()).map(|d| d.data.clone()),
        }
    }

    /// Where the guest's `/` comes from, for run.json.
    fn root_metadata(&self) -> serde_json::Value {
        match &self.root {
            None => serde_json::json!({ "kind": "initramfs", "description": "the initramfs (agent and noop only)" }),
            Some(r) => serde_json::json!({
                "kind": "disk",
                "name": r.name,
                "tree": r.tree,
                "image": r.image,
                "description": format!("{} (the container's tree, imaged as ext4 on virtio-blk, snapshot=on)", r.name),
            }),
        }
    }

    /// Where a failed boot's console log is kept when there is no log dir.
    fn failed_log(&self) -> PathBuf {
        let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        crate::paths::cache_dir().join("logs").join(format!("vm-console-failed-{stamp}-{}.log", std::process::id()))
    }
}

impl Environment for Vm {
    fn kind(&self) -> EnvKind {
        EnvKind::Vm
    }

    /// The guest's `/` is the initramfs (the agent, the no-ops, modules),
    /// not the image: a command there would run other files than in the
    /// other environments. Once the guest boots from the image's disk
    /// (`--rootfs debian` as a virtio-blk root), the agent execs by path
    /// in its own root and this becomes `Ok(CommandRoot::Image)`.
    /// The image when the guest booted from its disk (the agent made it
    /// `/`); the initramfs otherwise, which holds only the agent and its
    /// no-ops.
    fn command_root(&self) -> Result<super::CommandRoot, String> {
        match &self.root {
            Some(_) => Ok(super::CommandRoot::Image),
            None => Err("the vm's root is the initramfs (the agent and its no-ops), not an image; run with --rootfs debian to boot the vm from that image's disk".into()),
        }
    }

    fn label(&self) -> String {
        format!("vm ({})", self.verdict.accel.label())
    }

    fn metadata(&self) -> serde_json::Value {
        let boots = self.boots();
        serde_json::json!({
            "accel": self.verdict.accel.as_str(),
            "accel_label": self.verdict.accel.label(),
            "accel_reason": self.verdict.reason,
            "accel_source": self.verdict.source,
            "machine": self.machine.as_str(),
            "boot_protocol": self.boot.as_str(),
            "kernel_booted": self.spec().kernel,
            "tsc_khz": self.tsc_khz,
            "memory_mib": self.memory_mib,
            "cpus": self.cpus,
            "qemu": self.qemu_bin,
            "qemu_version": self.qemu_version,
            "kernel_version": self.image.kernel_version,
            "kernel_source": self.image.kernel_source,
            "kernel": self.image.kernel,
            "initrd": self.image.initrd,
            "kernel_sha256": self.image.kernel_sha256,
            "vmlinux": self.image.vmlinux,
            "vmlinux_sha256": self.image.vmlinux_sha256,
            "initrd_sha256": self.image.initrd_sha256,
            "modules": self.image.modules,
            "boot_timeout_s": self.boot_timeout.as_secs_f64(),
            "console_logs": self.log_dir,
            "warning": self.warning,
            "clocksource": boots.last().and_then(|b| b.clocksource.clone()),
            "network": self.net.endpoint().map(|e| e.metadata()),
            "root": self.root_metadata(),
            "data_path": match &self.data {
                None => serde_json::Value::Null,
                Some(Ok(d)) => serde_json::json!({
                    "kind": d.path.kind,
                    "host": d.path.host_dir,
                    "detail": d.path.detail,
                    "fallback": d.fallback,
                    "virtiofsd": match &d.data {
                        GuestData::Virtiofs { daemon, cache, .. } => serde_json::json!({ "binary": daemon, "cache": cache }),
                        _ => serde_json::Value::Null,
                    },
                }),
                Some(Err(e)) => serde_json::json!({ "error": e }),
            },
            "mounts": self.mounts,
            "boots": boots,
        })
    }

    fn storage(&self) -> Result<StoragePath, String> {
        let data = match &self.data {
            None => return Err("no data directory was given".into()),
            Some(Err(why)) => return Err(why.clone()),
            Some(Ok(d)) => d,
        };
        match self.mounts.iter().find(|m| m.role == "data") {
            Some(GuestMount { error: Some(why), .. }) => Err(format!("the guest could not mount its {}: {why}", data.path.kind.describe())),
            Some(_) => Ok(data.path.clone()),
            None => {
                Err(format!("the guest's agent mounted no {} (an image older than the feature? run scripts/build-guest)", data.path.kind.describe()))
            }
        }
    }

    fn start(&mut self) -> Result<Box<dyn Instance>, EnvError> {
        self.starts += 1;
        if let GuestNetState::Pending = self.net {
            let (net, warning) = GuestNetState::setup(self.net_choice).map_err(|reason| EnvError::Start { env: ENV, reason })?;
            self.net = net;
            if let Some(w) = warning {
                self.warning = Some(match self.warning.take() {
                    Some(earlier) => format!("{earlier}; {w}"),
                    None => w,
                });
            }
        }
        let console = match &self.log_dir {
            Some(dir) => {
                std::fs::create_dir_all(dir).map_err(|e| EnvError::Io { env: ENV, context: format!("create {}", dir.display()), source: e })?;
                Some(dir.join(format!("vm-console-{}-{}.log", std::process::id(), self.starts)))
            }
            None => None,
        };
        let failed_log = self.failed_log();
        let mut booted = qemu::boot(&self.qemu_bin, &self.spec(), console.as_deref(), Some(&failed_log), self.boot_timeout);
        // QEMU refusing the vmlinux (no PVH note, a kernel it cannot load)
        // exits before the guest printed anything: the bzImage is the
        // fallback, for this and every later start, with a warning.
        if let Err(QemuError::Exited { console: log, .. }) = &booted {
            let silent = std::fs::metadata(log).map_or(true, |m| m.len() == 0);
            if silent && self.boot == BootProtocol::Pvh && !self.boot_requested {
                let why = booted.as_ref().err().map(ToString::to_string).unwrap_or_default();
                let w = format!("PVH boot of {} failed ({why}); booting the bzImage instead", self.spec().kernel.display());
                eprintln!("vm: warning: {w}");
                self.warning = Some(match self.warning.take() {
                    Some(earlier) => format!("{earlier}; {w}"),
                    None => w,
                });
                self.boot = BootProtocol::Bzimage;
                booted = qemu::boot(&self.qemu_bin, &self.spec(), console.as_deref(), Some(&failed_log), self.boot_timeout);
            }
        }
        let booted = booted.map_err(|e| match e {
            QemuError::NotFound | QemuError::Script(_) => unavailable(e),
            e => EnvError::Start { env: ENV, reason: e.to_string() },
        })?;
        self.mounts = booted.info.mounts.clone();
        if let Some(root) = &self.root {
            // Not on the image asked for: no figure of this boot may count.
            let why = match self.mounts.iter().find(|m| m.role == "root") {
                Some(GuestMount { error: Some(why), .. }) => Some(why.clone()),
                Some(_) => None,
                None => Some("the guest's agent did not switch roots (an image older than the feature? run scripts/build-guest)".into()),
            };
            if let Some(why) = why {
                return Err(EnvError::Start { env: ENV, reason: format!("the guest could not make {} its root: {why}", root.name) });
            }
        }
        let record = BootRecord {
            start: self.starts,
            first_console_output_ms: booted.first_output.map(ms),
            agent_ready_ms: ms(booted.ready_after),
            shutdown_requested_ms: None,
            qemu_exited_ms: None,
            guest_uptime_at_ready_ms: booted.info.uptime_s * 1e3,
            clocksource: booted.info.clocksource.clone(),
        };
        {
            let mut boots = self.boots.lock().unwrap_or_else(|e| e.into_inner());
            if boots.len() >= MAX_BOOT_RECORDS {
                boots.remove(0);
            }
            boots.push(record.clone());
        }
        // From the first process started for the guest (its virtiofsd,
        // where it has one), as every other environment's start counts.
        let ready_after = booted.ready_after + (booted.qemu.started() - booted.qemu.launched());
        Ok(Box::new(VmInstance {
            qemu: booted.qemu,
            agent: booted.agent,
            info: booted.info,
            ready_after,
            record,
            boots: Arc::clone(&self.boots),
            endpoint: self.net.endpoint(),
        }))
    }
}

/// A running guest. Dropping it kills QEMU and removes its temp dir.
pub struct VmInstance {
    qemu: Qemu,
    agent: AgentClient,
    info: AgentInfo,
    ready_after: Duration,
    /// This boot's phases; copied into the environment's list as they happen.
    record: BootRecord,
    boots: Boots,
    endpoint: Option<Endpoint>,
}

impl VmInstance {
    /// QEMU's pid (tests check that it is gone afterwards).
    pub fn qemu_pid(&self) -> u32 {
        self.qemu.pid()
    }

    /// This boot's record (phases known so far).
    pub fn record(&self) -> &BootRecord {
        &self.record
    }

    /// Writes this boot's record back into the environment's list.
    fn publish(&self) {
        let mut boots = self.boots.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(b) = boots.iter_mut().rev().find(|b| b.start == self.record.start) {
            *b = self.record.clone();
        }
    }
}

impl Instance for VmInstance {
    fn agent(&mut self) -> &mut AgentClient {
        &mut self.agent
    }

    fn info(&self) -> &AgentInfo {
        &self.info
    }

    fn ready_after(&self) -> Duration {
        self.ready_after
    }

    fn phases(&self) -> Vec<(String, f64)> {
        self.record.phases()
    }

    /// QEMU (vm-run execs it): the guest's RAM, the TCG translation cache
    /// and the device model are all in this process.
    fn host_pid(&self) -> Option<u32> {
        Some(self.qemu_pid())
    }

    /// The guest's virtio-net eth0: on a tap in the run's network namespace
    /// (root) or behind user-mode networking's forwarded ports.
    fn endpoint(&mut self) -> Result<Endpoint, EnvError> {
        self.endpoint.clone().ok_or_else(|| unavailable("the guest has no network device"))
    }

    fn shutdown(mut self: Box<Self>) -> Result<Duration, EnvError> {
        let t0 = Instant::now();
        self.record.shutdown_requested_ms = Some(ms(t0 - self.qemu.started()));
        self.publish();
        self.agent.shutdown().map_err(|e| EnvError::Agent { env: ENV, source: e })?;
        let exited = self.qemu.wait_timeout(POWER_OFF_TIMEOUT).map_err(|e| EnvError::Io { env: ENV, context: "wait for QEMU".into(), source: e })?;
        let took = t0.elapsed();
        if matches!(exited, Some(status) if status.success()) {
            self.record.qemu_exited_ms = Some(ms(self.qemu.started().elapsed()));
            self.publish();
        }
        match exited {
            Some(status) if status.success() => Ok(took),
            Some(status) => Err(EnvError::Start { env: ENV, reason: format!("QEMU exited with {status} after the guest powered off") }),
            None => Err(EnvError::Io {
                env: ENV,
                context: format!("guest power-off (console log: {})", self.qemu.console().display()),
                source: std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("QEMU still running {} s after bye; killed", POWER_OFF_TIMEOUT.as_secs()),
                ),
            }),
        }
        // Drop kills QEMU if it is still there and removes its temp dir.
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_record_phases_are_those_that_happened_in_order() {
        let mut r = BootRecord {
            start: 1,
            first_console_output_ms: Some(350.0),
            agent_ready_ms: 2000.0,
            shutdown_requested_ms: None,
            qemu_exited_ms: None,
            guest_uptime_at_ready_ms: 1500.0,
            clocksource: Some("tsc".into()),
        };
        let names = |r: &BootRecord| r.phases().into_iter().map(|(n, _)| n).collect::<Vec<_>>().join(",");
        assert_eq!(names(&r), "first_console_output,agent_ready");
        r.shutdown_requested_ms = Some(2500.0);
        r.qemu_exited_ms = Some(2560.0);
        assert_eq!(names(&r), "first_console_output,agent_ready,shutdown_requested,qemu_exited");
        r.first_console_output_ms = None;
        assert_eq!(r.phases()[0], ("agent_ready".to_string(), 2000.0));
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["qemu_exited_ms"], 2560.0);
        assert_eq!(json["first_console_output_ms"], serde_json::Value::Null);
    }
}
