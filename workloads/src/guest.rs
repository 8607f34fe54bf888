//! The agent as a guest's /init: mount /proc, /sys and devtmpfs, load the
//! virtio modules shipped in the initramfs in dependency order, bring up
//! loopback, open the virtio-serial port the harness talks on, and power the
//! guest off when told.
//!
//! The kernel starts /init with nothing mounted but the initramfs (a tmpfs) and
//! /dev/console from the kernel's built-in initramfs. A distro kernel builds
//! virtio as modules, so /init loads them itself (there is no udev or modprobe):
//! scripts/build-guest resolves their dependencies with `modinfo -F depends` at
//! image build time and writes the load order to [`MODULES_ORDER`]. Once
//! virtio_console binds, the port appears asynchronously as
//! /sys/class/virtio-ports/vportNpM with a `name` file, and devtmpfs creates
//! /dev/vportNpM; both are polled for. A write to the port blocks until the host
//! side (QEMU's chardev socket) is connected, which is what we want for the
//! unprompted `ready` line.
//!
//! Storage comes from the kernel command line, as scripts/vm-run writes it:
//! `isobench.root=<serial>` names a virtio-blk disk (by the serial QEMU gives
//! it, since vda/vdb follow probe order) holding an ext4 image of a
//! distribution's root; /init mounts it, moves /dev, /proc and /sys into it
//! and makes it `/` (util-linux switch_root's method: `mount --move` onto /,
//! then chroot; the agent keeps running from the initramfs in memory).
//! `isobench.data=blk:<serial>` or `isobench.data=9p:<tag>:<msize>` then
//! mounts the fs.* metrics' data disk or shared directory on [`DATA_DIR`].
//! A failed mount is reported in `AgentInfo::mounts`, never fatal: the
//! harness says "not measured" for what needed it.

use std::ffi::CStr;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::kmod::{finit_module, ModuleInitFlags};
use nix::mount::{mount, MsFlags};

use crate::protocol::{GuestMount, VIRTIO_PORT_NAME};

/// The module list scripts/build-guest writes: one file name per line,
/// relative to this file's folder, dependencies first.
pub const MODULES_ORDER: &str = "/lib/modules/modules.order";

/// How long to wait for the port (sysfs entry and device node) after the
/// modules are loaded: it appears within milliseconds on KVM, tens of
/// milliseconds under TCG.
pub const PORT_WAIT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum GuestError {
    #[error("guest init: {0}")]
    Setup(String),
    #[error("guest init: mount {fstype} on {target}: {source}")]
    Mount { fstype: &'static str, target: &'static str, source: Errno },
    #[error("guest init: read {}: {source}", path.display())]
    ModuleList { path: PathBuf, source: std::io::Error },
    #[error("guest init: load module {}: {source}", path.display())]
    Module { path: PathBuf, source: ModuleError },
    #[error(
        "guest init: no virtio-serial port named {name} after {waited:?} (is virtio_console loaded and -device virtserialport,name={name} given?)"
    )]
    PortNotFound { name: &'static str, waited: Duration },
    #[error("guest init: open {}: {source}", path.display())]
    OpenPort { path: PathBuf, source: std::io::Error },
}

/// Why one module did not load.
#[derive(Debug, thiserror::Error)]
pub enum ModuleError {
    #[error("{0}")]
    Open(std::io::Error),
    #[error("finit_module: {0}")]
    Init(Errno),
}

/// Kernel command line parameter: the serial of the virtio-blk disk that
/// holds the guest's root (scripts/vm-run --root-disk).
pub const ROOT_PARAM: &str = "isobench.root";
/// Kernel command line parameter: the fs.* metrics' storage,
/// `blk:<serial>` (an ext4 data disk), `9p:<tag>:<msize>` (a shared
/// directory over virtio-9p) or `virtiofs:<tag>` (the same over virtiofs)
/// (scripts/vm-run --data-disk / --share / --virtiofs).
pub const DATA_PARAM: &str = "isobench.data";
/// Where the data disk or shared directory is mounted in the guest.
pub const DATA_DIR: &str = "/isobench-data";
/// Where the root disk is mounted before it becomes `/`.
const NEW_ROOT: &str = "/newroot";
/// The 9p mount options besides msize: virtio transport, the Linux dialect
/// QEMU's local backend speaks.
pub const NINEP_OPTIONS: &str = "trans=virtio,version=9p2000.L";

static MOUNTS: OnceLock<Vec<GuestMount>> = OnceLock::new();

/// What [`setup`] mounted for the harness (empty outside a guest).
pub fn mounts() -> Vec<GuestMount> {
    MOUNTS.get().cloned().unwrap_or_default()
}

/// Prepares the guest and returns the agent's channel (the virtio-serial port
/// named `protocol::VIRTIO_PORT_NAME`, opened read-write).
pub fn setup() -> Result<File, GuestError> {
    mount_pseudo_filesystems()?;
    load_modules(Path::new(MODULES_ORDER))?;
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    let mut mounts = Vec::new();
    if let Some(serial) = kernel_param(&cmdline, ROOT_PARAM) {
        mounts.push(switch_root(&serial));
    }
    if let Some(spec) = kernel_param(&cmdline, DATA_PARAM) {
        mounts.push(mount_data(&spec));
    }
    for m in mounts.iter().filter(|m| m.error.is_some()) {
        eprintln!("isobench-agent: guest init: {} {}: {}", m.role, m.source, m.error.as_deref().unwrap_or_default());
    }
    let _ = MOUNTS.set(mounts);
    // Loopback is a convenience for the net.* metrics inside the guest; the
    // agent channel does not need it, so a failure is only reported.
    if let Err(e) = crate::netif::loopback_up() {
        eprintln!("isobench-agent: guest init: loopback up: {e}");
    }
    // The guest's end of the boundary: eth0 (virtio-net) with the static
    // address the harness put on the kernel command line. Without it only
    // the cross-boundary metrics fail, each with this reason.
    if let Some(cidr) = kernel_param(&std::fs::read_to_string("/proc/cmdline").unwrap_or_default(), NET_PARAM) {
        if let Err(e) = configure_eth0(&cidr) {
            eprintln!("isobench-agent: guest init: eth0 {cidr}: {e}");
        }
    }
    let path = find_port(VIRTIO_PORT_NAME, PORT_WAIT)?;
    OpenOptions::new().read(true).write(true).open(&path).map_err(|source| GuestError::OpenPort { path, source })
}

/// Kernel command line parameter with the guest's address on the boundary
/// network, `A.B.C.D/N` (set by the harness through scripts/vm-run --net).
pub const NET_PARAM: &str = "isobench.ip";

/// The network interface the guest's virtio-net device shows up as.
pub const NET_IF: &str = "eth0";

/// The value of `name=value` on a kernel command line.
fn kernel_param(cmdline: &str, name: &str) -> Option<String> {
    cmdline.split_whitespace().find_map(|w| w.strip_prefix(name)?.strip_prefix('=').map(str::to_string))
}

/// Waits for eth0 (virtio_net binds asynchronously, like the port), then sets
/// its address and brings it up.
fn configure_eth0(cidr: &str) -> Result<(), String> {
    let (addr, prefix) = crate::netif::parse_cidr(cidr).ok_or("not an A.B.C.D/N address")?;
    let sys = Path::new("/sys/class/net").join(NET_IF);
    let deadline = Instant::now() + PORT_WAIT;
    while !sys.exists() {
        if Instant::now() >= deadline {
            return Err(format!("no {NET_IF} after {PORT_WAIT:?} (is virtio_net loaded and a virtio-net device given?)"));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    crate::netif::set_ipv4(NET_IF, addr, prefix).map_err(|e| e.to_string())
}

/// The /dev node of the virtio-blk disk whose serial is `serial`, once the
/// driver has bound it and devtmpfs made the node.
fn find_disk(serial: &str, wait: Duration) -> Result<PathBuf, String> {
    if !Path::new("/sys/bus/virtio/drivers/virtio_blk").exists() {
        return Err("virtio_blk is not in this guest kernel (neither built in nor in the image's modules)".into());
    }
    let deadline = Instant::now() + wait;
    loop {
        if let Some(name) = disk_by_serial(Path::new("/sys/block"), serial) {
            let node = Path::new("/dev").join(name);
            if node.exists() {
                return Ok(node);
            }
        }
        if Instant::now() >= deadline {
            return Err(format!("no virtio-blk disk with serial {serial} after {wait:?}"));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The block device name (e.g. `vdb`) under `class` whose `serial` file says `serial`.
fn disk_by_serial(class: &Path, serial: &str) -> Option<String> {
    std::fs::read_dir(class).ok()?.flatten().find_map(|e| {
        let s = std::fs::read_to_string(e.path().join("serial")).ok()?;
        (s.trim() == serial).then(|| e.file_name().to_string_lossy().into_owned())
    })
}

/// mount(2) with the error in words; ENODEV for a file system type means the
/// kernel lacks it.
fn mount_fs(source: &str, target: &str, fstype: &str, options: Option<&str>) -> Result<(), String> {
    std::fs::create_dir_all(target).map_err(|e| format!("mkdir {target}: {e}"))?;
    match mount(Some(source), target, Some(fstype), MsFlags::empty(), options) {
        Ok(()) => Ok(()),
        Err(Errno::ENODEV) => Err(format!("mount {source} on {target}: {fstype} is not in this guest kernel (ENODEV)")),
        Err(e) => Err(format!("mount {source} ({fstype}) on {target}: {e}")),
    }
}

/// Mounts the root disk and makes it `/`, with /dev, /proc and /sys moved
/// into it (switch_root's steps without deleting the initramfs).
fn switch_root(serial: &str) -> GuestMount {
    let mut m = GuestMount { role: "root".into(), source: serial.into(), target: "/".into(), fstype: "ext4".into(), ..GuestMount::default() };
    let steps = || -> Result<String, String> {
        let dev = find_disk(serial, PORT_WAIT)?;
        let dev = dev.display().to_string();
        mount_fs(&dev, NEW_ROOT, "ext4", None)?;
        for d in ["/dev", "/proc", "/sys"] {
            let target = format!("{NEW_ROOT}{d}");
            std::fs::create_dir_all(&target).map_err(|e| format!("mkdir {target}: {e}"))?;
            mount(Some(d), target.as_str(), None::<&str>, MsFlags::MS_MOVE, None::<&str>).map_err(|e| format!("move {d} to {target}: {e}"))?;
        }
        nix::unistd::chdir(NEW_ROOT).map_err(|e| format!("chdir {NEW_ROOT}: {e}"))?;
        mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>).map_err(|e| format!("move {NEW_ROOT} onto /: {e}"))?;
        nix::unistd::chroot(".").map_err(|e| format!("chroot {NEW_ROOT}: {e}"))?;
        nix::unistd::chdir("/").map_err(|e| format!("chdir /: {e}"))?;
        Ok(dev)
    };
    match steps() {
        Ok(dev) => m.source = dev,
        Err(e) => m.error = Some(e),
    }
    m
}

/// Mounts the fs.* metrics' storage named by `spec` (`blk:<serial>`,
/// `9p:<tag>:<msize>` or `virtiofs:<tag>`) on [`DATA_DIR`].
fn mount_data(spec: &str) -> GuestMount {
    let mut m = GuestMount { role: "data".into(), target: DATA_DIR.into(), ..GuestMount::default() };
    let result = match spec.split(':').collect::<Vec<_>>()[..] {
        ["blk", serial] => {
            m.fstype = "ext4".into();
            m.source = serial.into();
            find_disk(serial, PORT_WAIT).and_then(|dev| {
                m.source = dev.display().to_string();
                mount_fs(&m.source, DATA_DIR, "ext4", None)
            })
        }
        ["9p", tag, msize] if msize.parse::<u32>().is_ok() => {
            m.fstype = "9p".into();
            m.source = tag.into();
            m.options = format!("{NINEP_OPTIONS},msize={msize}");
            if Path::new("/sys/bus/virtio/drivers/9pnet_virtio").exists() {
                mount_fs(tag, DATA_DIR, "9p", Some(&m.options))
            } else {
                Err("9pnet_virtio is not in this guest kernel (neither built in nor in the image's modules)".into())
            }
        }
        ["virtiofs", tag] if !tag.is_empty() => {
            // The tag is the file system's source; virtiofs takes no other
            // options (the cache mode is virtiofsd's, on the host).
            m.fstype = "virtiofs".into();
            m.source = tag.into();
            if Path::new("/sys/bus/virtio/drivers/virtiofs").exists() {
                mount_fs(tag, DATA_DIR, "virtiofs", None)
            } else {
                Err("virtiofs is not in this guest kernel (neither built in nor in the image's modules)".into())
            }
        }
        _ => Err(format!("{DATA_PARAM}={spec}: expected blk:<serial>, 9p:<tag>:<msize> or virtiofs:<tag>")),
    };
    m.error = result.err();
    m
}

/// Syncs and powers the guest off (reboot(RB_POWER_OFF)); never returns.
pub fn power_off() -> ! {
    nix::unistd::sync();
    let _ = nix::sys::reboot::reboot(nix::sys::reboot::RebootMode::RB_POWER_OFF);
    std::process::exit(0)
}

/// /proc, /sys and /dev (devtmpfs: the kernel creates device nodes there as
/// drivers bind, standing in for udev). Already mounted (EBUSY) is fine.
fn mount_pseudo_filesystems() -> Result<(), GuestError> {
    const MOUNTS: [(&str, &str); 3] = [("proc", "/proc"), ("sysfs", "/sys"), ("devtmpfs", "/dev")];
    for (fstype, target) in MOUNTS {
        let _ = std::fs::create_dir_all(target);
        let flags = MsFlags::MS_NOSUID | if fstype == "devtmpfs" { MsFlags::empty() } else { MsFlags::MS_NOEXEC | MsFlags::MS_NODEV };
        match mount(Some(fstype), target, Some(fstype), flags, None::<&str>) {
            Ok(()) | Err(Errno::EBUSY) => {}
            Err(source) => return Err(GuestError::Mount { fstype, target, source }),
        }
    }
    Ok(())
}

/// Loads the modules named in `list` in its order. A missing list means a
/// kernel with everything built in; a module already loaded (EEXIST) is fine.
fn load_modules(list: &Path) -> Result<(), GuestError> {
    let text = match std::fs::read_to_string(list) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => return Err(GuestError::ModuleList { path: list.to_path_buf(), source }),
    };
    let dir = list.parent().unwrap_or(Path::new("/"));
    for name in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let path = dir.join(name);
        load_module(&path).map_err(|source| GuestError::Module { path, source })?;
    }
    Ok(())
}

fn load_module(path: &Path) -> Result<(), ModuleError> {
    let file = File::open(path).map_err(ModuleError::Open)?;
    let no_params: &CStr = c"";
    match finit_module(&file, no_params, ModuleInitFlags::empty()) {
        Ok(()) | Err(Errno::EEXIST) => Ok(()),
        Err(e) => Err(ModuleError::Init(e)),
    }
}

/// Polls /sys/class/virtio-ports/*/name for `name` and returns the matching
/// /dev node once devtmpfs has created it.
fn find_port(name: &'static str, wait: Duration) -> Result<PathBuf, GuestError> {
    let deadline = Instant::now() + wait;
    loop {
        if let Some(dev) = port_by_name(Path::new("/sys/class/virtio-ports"), name) {
            let node = Path::new("/dev").join(dev);
            if node.exists() {
                return Ok(node);
            }
        }
        if Instant::now() >= deadline {
            return Err(GuestError::PortNotFound { name, waited: wait });
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The device name (e.g. `vport0p1`) of the port called `name` under `class`.
fn port_by_name(class: &Path, name: &str) -> Option<String> {
    let mut entries: Vec<_> = std::fs::read_dir(class).ok()?.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    entries.into_iter().find_map(|e| {
        let port_name = std::fs::read_to_string(e.path().join("name")).ok()?;
        (port_name.trim() == name).then(|| e.file_name().to_string_lossy().into_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_port_by_name_in_sysfs_layout() {
        let dir = tempfile_dir();
        for (dev, name) in [("vport0p0", ""), ("vport0p1", "org.other"), ("vport1p1", VIRTIO_PORT_NAME)] {
            std::fs::create_dir_all(dir.join(dev)).unwrap();
            std::fs::write(dir.join(dev).join("name"), format!("{name}\n")).unwrap();
        }
        assert_eq!(port_by_name(&dir, VIRTIO_PORT_NAME).as_deref(), Some("vport1p1"));
        assert_eq!(port_by_name(&dir, "missing"), None);
        assert_eq!(port_by_name(&dir.join("nope"), VIRTIO_PORT_NAME), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn kernel_param_is_found_by_exact_name() {
        let cmdline = "console=ttyS0 isobench.ipx=1 isobench.ip=10.199.2.2/24 quiet\n";
        assert_eq!(kernel_param(cmdline, NET_PARAM).as_deref(), Some("10.199.2.2/24"));
        assert_eq!(kernel_param("console=ttyS0", NET_PARAM), None);
    }

    #[test]
    fn a_disk_is_found_by_its_serial_not_its_name() {
        let dir = tempfile_dir();
        for (dev, serial) in [("vda", "isobench-root"), ("vdb", "isobench-data")] {
            std::fs::create_dir_all(dir.join(dev)).unwrap();
            std::fs::write(dir.join(dev).join("serial"), serial).unwrap();
        }
        std::fs::create_dir_all(dir.join("loop0")).unwrap();
        assert_eq!(disk_by_serial(&dir, "isobench-data").as_deref(), Some("vdb"));
        assert_eq!(disk_by_serial(&dir, "isobench-root").as_deref(), Some("vda"));
        assert_eq!(disk_by_serial(&dir, "other"), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_malformed_data_parameter_is_reported_not_mounted() {
        for spec in ["nfs:x", "9p:tag", "9p:tag:big", "blk", "virtiofs", "virtiofs:", "virtiofs:a:b"] {
            let m = mount_data(spec);
            assert_eq!(m.role, "data");
            assert!(m.error.as_deref().is_some_and(|e| e.contains("expected blk:<serial>, 9p:<tag>:<msize> or virtiofs:<tag>")), "{spec}: {m:?}");
        }
    }

    #[test]
    fn missing_module_list_means_built_in() {
        assert!(load_modules(Path::new("/nonexistent/isobench/modules.order")).is_ok());
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("isobench-guest-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
