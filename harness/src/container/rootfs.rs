//! The container's root filesystem: the minimal one isobench builds from its
//! static binaries, a distribution's (see [`super::distro`]), the checks on a
//! rootfs the user gives, and the mount plan that turns a directory into the
//! container's `/`.
//!
//! The plan follows runc's and bubblewrap's: make every mount private (so
//! nothing mounted inside propagates to the host), bind the rootfs onto
//! itself (pivot_root(2) wants a mount point), mount /proc, a small /dev and a
//! read-only /sys inside it, then `pivot_root(".", ".")` and detach the old
//! root, which leaves no path back to the host's filesystem. As root, /dev
//! is a [`DevTemplate`] made once per launch spec on the host and bound
//! read-only (with the container's own devpts and shm tmpfs on top): 4 mount
//! calls per container instead of a tmpfs and 20-odd nodes, links and binds.
//!
//! The plan is data ([`Step`]), built before clone(2) with every C string
//! allocated, and applied in the child through [`Syscall`] without allocating.

use std::ffi::{CStr, CString, OsStr};
use std::fmt;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};
use nix::sys::stat::{Mode, SFlag};

use super::distro::{DistroError, DistroRootfs};
use super::ns::{Namespace, NamespaceSet};
use super::syscall::Syscall;
use crate::workloads::Workloads;

#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error("rootfs {0} is not a directory")]
    NotADirectory(PathBuf),
    #[error("rootfs {rootfs} has no /{dir} directory to mount on; isobench does not modify a given rootfs, so create the mount points first: mkdir -p {rootfs}/proc {rootfs}/dev {rootfs}/sys", rootfs = .rootfs.display())]
    NoMountpoint { rootfs: PathBuf, dir: &'static str },
    #[error("path {0:?} contains a NUL byte")]
    Nul(PathBuf),
    #[error("the {0} rootfs is shared and mounted read-only, which needs a mount namespace; add mnt to --ns")]
    ReadOnlyNeedsMountNs(String),
    #[error(transparent)]
    Distro(#[from] DistroError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
}

fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> RootfsError {
    let context = context.into();
    move |source| RootfsError::Io { context, source }
}

/// Where a static busybox may be installed (Debian's busybox-static: /bin).
pub const BUSYBOX_CANDIDATES: [&str; 3] = ["/bin/busybox", "/usr/bin/busybox", "/usr/local/bin/busybox"];

/// Name of the agent inside the rootfs (at its root, next to [`NOOP_NAME`]).
pub const AGENT_NAME: &str = "isobench-agent";
pub const NOOP_NAME: &str = "noop";
/// Name of the no-op without C library start-up inside the rootfs
/// (`isobench startup --noop nolibc`).
pub const NOOP_NOLIBC_NAME: &str = "noop-nolibc";

/// `PATH` inside the container.
pub const CONTAINER_PATH: &str = "/bin:/sbin:/usr/bin:/usr/sbin";

/// Every temp dir isobench creates is named `isobench-<pid>-<what>-<random>`
/// in [`std::env::temp_dir`], so [`cleanup`] can tell whose it is.
pub const TEMP_PREFIX: &str = "isobench-";

/// The prefix for a new temp dir of this process.
pub fn temp_prefix(what: &str) -> String {
    format!("{TEMP_PREFIX}{}-{what}-", std::process::id())
}

/// Removes temp dirs left by isobench processes that no longer exist (a run
/// killed with SIGKILL cannot remove its own). Dirs of live processes are
/// left alone, so concurrent runs are safe. Returns the dirs removed.
///
/// Call it at program start; [`MinimalRootfs::build`] calls it too.
pub fn cleanup() -> Vec<PathBuf> {
    cleanup_in(&std::env::temp_dir())
}

/// [`cleanup`] in another base directory.
pub fn cleanup_in(base: &Path) -> Vec<PathBuf> {
    sweep(base)
}

fn owner_pid(name: &OsStr) -> Option<i32> {
    let rest = name.to_str()?.strip_prefix(TEMP_PREFIX)?;
    let (pid, what) = rest.split_once('-')?;
    if what.is_empty() {
        return None;
    }
    pid.parse().ok().filter(|p| *p > 0)
}

pub(crate) fn alive(pid: i32) -> bool {
    // EPERM means it exists but is not ours to signal: alive too.
    !matches!(nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None), Err(Errno::ESRCH))
}

fn sweep(base: &Path) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    let Ok(entries) = std::fs::read_dir(base) else { return removed };
    for entry in entries.flatten() {
        let Some(pid) = owner_pid(&entry.file_name()) else { continue };
        // Only real directories: never follow a symlink someone planted.
        if !entry.file_type().is_ok_and(|t| t.is_dir()) || alive(pid) {
            continue;
        }
        if std::fs::remove_dir_all(entry.path()).is_ok() {
            removed.push(entry.path());
        }
    }
    removed
}

/// Returns the first static busybox found, if any. A dynamically linked one
/// would not run in a rootfs without a libc, so it does not count.
pub fn find_static_busybox() -> Option<PathBuf> {
    BUSYBOX_CANDIDATES.iter().map(PathBuf::from).find(|p| p.is_file() && is_static_elf(p).unwrap_or(false))
}

/// True when `path` is an ELF file with no program interpreter (PT_INTERP).
pub fn is_static_elf(path: &Path) -> io::Result<bool> {
    const PT_INTERP: u32 = 3;
    let data = std::fs::read(path)?;
    let u16_at = |o: usize| data.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]]) as usize);
    let u32_at = |o: usize| data.get(o..o + 4).map(|b| u32::from_le_bytes(b.try_into().unwrap()));
    let u64_at = |o: usize| data.get(o..o + 8).map(|b| u64::from_le_bytes(b.try_into().unwrap()) as usize);
    // 64-bit little-endian ELF only (the target isobench builds for).
    if data.get(..6) != Some(b"\x7fELF\x02\x01".as_slice()) {
        return Ok(false);
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38)) else {
        return Ok(false);
    };
    for i in 0..phnum {
        match u32_at(phoff + i * phentsize) {
            Some(PT_INTERP) => return Ok(false),
            Some(_) => {}
            None => return Ok(false),
        }
    }
    Ok(true)
}

/// The minimal rootfs, built once in a temp dir and removed on drop:
///
/// ```text
/// /isobench-agent  /noop          the static workloads (the agent finds noop next to itself)
/// /noop-nolibc                    the no-op without C library start-up
/// /bin/busybox     /bin/<applet>  static busybox and its applet links, when installed
/// /proc /dev /sys /tmp /mnt       mount points and empty dirs
/// /etc/passwd /etc/group          root and nobody
/// ```
///
/// The binaries are copied, not hard-linked: the container's root is
/// writable, and a write through a hard link would change the host's build.
#[derive(Debug)]
pub struct MinimalRootfs {
    dir: tempfile::TempDir,
    busybox: Option<PathBuf>,
}

impl MinimalRootfs {
    pub fn build(workloads: &Workloads) -> Result<MinimalRootfs, RootfsError> {
        cleanup();
        let dir = tempfile::Builder::new()
            .prefix(&temp_prefix("rootfs"))
            .tempdir()
            .map_err(io_err(format!("create a temp dir in {}", std::env::temp_dir().display())))?;
        let root = dir.path();
        std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755)).map_err(io_err(format!("chmod {}", root.display())))?;
        for (sub, mode) in [("bin", 0o755), ("proc", 0o555), ("dev", 0o755), ("sys", 0o555), ("tmp", 0o1777), ("mnt", 0o755), ("etc", 0o755)] {
            let p = root.join(sub);
            std::fs::create_dir(&p).map_err(io_err(format!("mkdir {}", p.display())))?;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).map_err(io_err(format!("chmod {}", p.display())))?;
        }
        // So that ps, ls -l and id print names instead of numbers.
        for (file, text) in
            [("etc/passwd", "root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"), ("etc/group", "root:x:0:\nnogroup:x:65534:\n")]
        {
            std::fs::write(root.join(file), text).map_err(io_err(format!("write {file} in the rootfs")))?;
        }
        for (src, name) in [(&workloads.agent, AGENT_NAME), (&workloads.noop, NOOP_NAME), (&workloads.noop_nolibc, NOOP_NOLIBC_NAME)] {
            std::fs::copy(src, root.join(name)).map_err(io_err(format!("copy {} into the rootfs", src.display())))?;
        }
        let busybox = find_static_busybox();
        if let Some(bb) = &busybox {
            install_busybox(bb, &root.join("bin"))?;
        }
        Ok(MinimalRootfs { dir, busybox })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The host's busybox copied in, if one was found.
    pub fn busybox(&self) -> Option<&Path> {
        self.busybox.as_deref()
    }
}

fn install_busybox(busybox: &Path, bin: &Path) -> Result<(), RootfsError> {
    std::fs::copy(busybox, bin.join("busybox")).map_err(io_err(format!("copy {} into the rootfs", busybox.display())))?;
    let out = Command::new(busybox).arg("--list").output().map_err(io_err(format!("run {} --list", busybox.display())))?;
    for applet in out.stdout.split(|b| *b == b'\n') {
        // An applet name is a plain file name; anything else is skipped.
        if applet.is_empty() || applet == b"busybox" || applet.contains(&b'/') || applet.starts_with(b".") {
            continue;
        }
        let link = bin.join(OsStr::from_bytes(applet));
        symlink("busybox", &link).map_err(io_err(format!("symlink {}", link.display())))?;
    }
    Ok(())
}

/// Which root filesystem a container gets (`--rootfs minimal|debian|DIR`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum RootfsChoice {
    /// [`MinimalRootfs`]: built in a temp dir per run, writable.
    #[default]
    Minimal,
    /// The host distribution's rootfs from debootstrap ([`DistroRootfs`]),
    /// cached and shared, mounted read-only (`--rootfs debian`).
    Distro,
    /// A directory of the user's, used as it is (`--rootfs DIR`; write
    /// `./debian` for a directory of that name).
    Dir(PathBuf),
}

impl FromStr for RootfsChoice {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "minimal" => RootfsChoice::Minimal,
            "debian" => RootfsChoice::Distro,
            dir => RootfsChoice::Dir(PathBuf::from(dir)),
        })
    }
}

/// A rootfs ready for containers: what [`RootfsChoice`] became. A minimal
/// one is removed on drop; the others stay.
#[derive(Debug)]
pub enum PreparedRootfs {
    Minimal { rootfs: MinimalRootfs, path: PathBuf },
    Distro(DistroRootfs),
    Dir(PathBuf),
}

impl PreparedRootfs {
    /// Builds the minimal rootfs, builds or reuses the distribution one, or
    /// checks the user's directory (its mount points, when `mount_ns`).
    pub fn prepare(choice: &RootfsChoice, workloads: &Workloads, mount_ns: bool) -> Result<PreparedRootfs, RootfsError> {
        match choice {
            RootfsChoice::Minimal => {
                let rootfs = MinimalRootfs::build(workloads)?;
                let path = rootfs.path().canonicalize().map_err(io_err(format!("rootfs {}", rootfs.path().display())))?;
                Ok(PreparedRootfs::Minimal { rootfs, path })
            }
            RootfsChoice::Distro => {
                let distro = DistroRootfs::prepare(workloads)?;
                if !mount_ns {
                    return Err(RootfsError::ReadOnlyNeedsMountNs(distro.name()));
                }
                Ok(PreparedRootfs::Distro(distro))
            }
            RootfsChoice::Dir(dir) => Ok(PreparedRootfs::Dir(check_rootfs(dir, mount_ns)?)),
        }
    }

    /// The directory (absolute, canonical).
    pub fn path(&self) -> &Path {
        match self {
            PreparedRootfs::Minimal { path, .. } | PreparedRootfs::Dir(path) => path,
            PreparedRootfs::Distro(d) => d.path(),
        }
    }

    /// Which image, for the results: `minimal`, `debian-bookworm` or the path.
    pub fn label(&self) -> String {
        match self {
            PreparedRootfs::Minimal { .. } => "minimal".into(),
            PreparedRootfs::Distro(d) => d.name(),
            PreparedRootfs::Dir(p) => p.display().to_string(),
        }
    }

    /// A longer description, for the metadata's `rootfs_kind`.
    pub fn description(&self) -> String {
        match self {
            PreparedRootfs::Minimal { .. } => "minimal (isobench-agent, noop, busybox when installed)".into(),
            PreparedRootfs::Distro(d) => {
                format!(
                    "{} (debootstrap --variant=minbase {} from {}, isobench-agent and noop added; shared, read-only)",
                    d.name(),
                    d.source().suite,
                    d.source().mirror
                )
            }
            PreparedRootfs::Dir(_) => "a directory given with --rootfs".into(),
        }
    }

    /// Shared between containers, so mounted read-only.
    pub fn read_only(&self) -> bool {
        matches!(self, PreparedRootfs::Distro(_))
    }

    /// The host's busybox copied into a minimal rootfs, if one was found.
    pub fn busybox(&self) -> Option<&Path> {
        match self {
            PreparedRootfs::Minimal { rootfs, .. } => rootfs.busybox(),
            _ => None,
        }
    }
}

/// Checks that a user-given rootfs can be used as is: a directory with the
/// mount points the plan needs (only when a mount namespace is used).
pub fn check_rootfs(rootfs: &Path, mount_ns: bool) -> Result<PathBuf, RootfsError> {
    let abs = rootfs.canonicalize().map_err(io_err(format!("rootfs {}", rootfs.display())))?;
    if !abs.is_dir() {
        return Err(RootfsError::NotADirectory(rootfs.to_path_buf()));
    }
    if mount_ns {
        for dir in MOUNTPOINTS {
            if !abs.join(dir).is_dir() {
                return Err(RootfsError::NoMountpoint { rootfs: rootfs.to_path_buf(), dir });
            }
        }
    }
    Ok(abs)
}

/// Directories the plan mounts on, which must exist in the rootfs.
pub const MOUNTPOINTS: [&str; 3] = ["proc", "dev", "sys"];

/// Character devices made in the container's /dev: (name, major, minor), the
/// set the OCI runtime spec requires.
pub const DEVICES: [(&str, u32, u32); 6] = [("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8), ("urandom", 1, 9), ("tty", 5, 0)];

/// One step of the mount plan. Paths after [`Step::Chdir`] into the rootfs
/// are relative to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Mount {
        source: Option<CString>,
        target: CString,
        fstype: Option<CString>,
        flags: MsFlags,
        data: Option<CString>,
    },
    Mkdir {
        path: CString,
        mode: u32,
    },
    Mknod {
        path: CString,
        mode: u32,
        major: u32,
        minor: u32,
    },
    /// An empty regular file (a mount point for a bind-mounted device).
    Touch {
        path: CString,
        mode: u32,
    },
    Symlink {
        target: CString,
        link: CString,
    },
    Chdir(CString),
    Chroot(CString),
    /// `pivot_root(".", ".")`: the new root and the old one stacked on the same
    /// directory, so no put_old directory is needed in the rootfs.
    PivotRoot,
    /// `umount2(".", MNT_DETACH)`: takes the old root (now on top) away.
    DetachOldRoot,
}

fn c(s: &str) -> CString {
    CString::new(s).expect("constant has no NUL")
}

fn c_path(p: &Path) -> Result<CString, RootfsError> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| RootfsError::Nul(p.to_path_buf()))
}

/// A recursive bind of a host directory (the host's own mounts under it come along).
fn rbind(source: &str, target: &str) -> Step {
    Step::Mount { source: Some(c(source)), target: c(target), fstype: None, flags: MsFlags::MS_BIND | MsFlags::MS_REC, data: None }
}

fn mount(source: &str, target: &str, fstype: Option<&str>, flags: MsFlags, data: Option<&str>) -> Step {
    Step::Mount { source: Some(c(source)), target: c(target), fstype: fstype.map(c), flags, data: data.map(c) }
}

/// The plan that makes `rootfs` (absolute, canonical) the container's `/`.
///
/// With a mount namespace: private propagation, bind, /proc, /dev, /sys,
/// pivot_root. Without one nothing may be mounted (it would show on the
/// host), so the plan is a plain chroot and the rootfs has no /proc, /dev or
/// /sys of its own.
pub fn mount_plan(rootfs: &Path, mount_ns: bool) -> Result<Vec<Step>, RootfsError> {
    let ns = if mount_ns { [Namespace::Mount, Namespace::Pid, Namespace::Net].into_iter().collect() } else { NamespaceSet::NONE };
    mount_plan_for(rootfs, ns)
}

/// The plan for a container with the namespaces `ns`.
///
/// Inside a user namespace the kernel refuses what would give more than the
/// owner of the namespace has (user_namespaces(7)): mknod(2) of a device
/// (so each device is an empty file with the host's node bind-mounted on it,
/// as runc and bubblewrap do), and a fresh proc or sysfs unless the user
/// namespace also owns the pid or net namespace they show (then the host's
/// are bind-mounted, recursively, instead).
pub fn mount_plan_for(rootfs: &Path, ns: NamespaceSet) -> Result<Vec<Step>, RootfsError> {
    mount_plan_with(rootfs, ns, false)
}

/// [`mount_plan_for`], with the rootfs bound read-only when `read_only` (a
/// rootfs shared between containers, see [`PreparedRootfs::read_only`]):
/// the bind is remounted read-only right after it is made, keeping the flags
/// of the mount it comes from (the kernel refuses to clear them inside a user
/// namespace), and a tmpfs goes on /tmp when the rootfs has one, so programs
/// still find a writable scratch directory. Refused without a mount
/// namespace: a chroot cannot be made read-only.
pub fn mount_plan_with(rootfs: &Path, ns: NamespaceSet, read_only: bool) -> Result<Vec<Step>, RootfsError> {
    mount_plan_dev(rootfs, ns, read_only, None)
}

/// [`mount_plan_with`], with the container's /dev bound read-only from a
/// [`DevTemplate`] made on the host when `dev` is given (4 steps: bind,
/// remount read-only, devpts, shm) instead of built per container on a fresh
/// tmpfs (up to 22 steps: tmpfs, 6 mknod or 6 create + bind inside a user
/// namespace, 2 mkdir, 5 symlinks, devpts, shm).
pub fn mount_plan_dev(rootfs: &Path, ns: NamespaceSet, read_only: bool, dev: Option<&Path>) -> Result<Vec<Step>, RootfsError> {
    let mount_ns = ns.contains(Namespace::Mount);
    let user_ns = ns.contains(Namespace::User);
    let root = c_path(rootfs)?;
    if !mount_ns {
        if read_only {
            return Err(RootfsError::ReadOnlyNeedsMountNs(rootfs.display().to_string()));
        }
        return Ok(vec![Step::Chroot(root), Step::Chdir(c("/"))]);
    }
    let nosuid_nodev_noexec = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let mut plan = vec![
        // The new mount namespace starts as a copy of the host's, with the
        // host's propagation: on systemd hosts `/` is shared, and a mount made
        // here would appear on the host. Private, recursively, before anything.
        Step::Mount { source: None, target: c("/"), fstype: None, flags: MsFlags::MS_REC | MsFlags::MS_PRIVATE, data: None },
        // pivot_root(2) needs the new root to be a mount point; binding the
        // directory onto itself makes it one, without touching the host.
        Step::Mount { source: Some(root.clone()), target: root.clone(), fstype: None, flags: MsFlags::MS_BIND | MsFlags::MS_REC, data: None },
    ];
    if read_only {
        // A bind mount takes MS_RDONLY only through a remount of the bind.
        let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | locked_flags(rootfs);
        plan.push(Step::Mount { source: Some(root.clone()), target: root.clone(), fstype: None, flags, data: None });
    }
    plan.extend([
        // After the bind, so "." is the new mount and not the directory under it.
        Step::Chdir(root),
        // Mounted by the container's PID 1, so it shows the new pid namespace.
        if user_ns && !ns.contains(Namespace::Pid) { rbind("/proc", "proc") } else { mount("proc", "proc", Some("proc"), nosuid_nodev_noexec, None) },
    ]);
    if read_only && rootfs.join("tmp").is_dir() {
        plan.push(mount("tmpfs", "tmp", Some("tmpfs"), MsFlags::MS_NOSUID | MsFlags::MS_NODEV, Some("mode=1777,size=65536k")));
    }
    if let Some(dev) = dev {
        let src = c_path(dev)?;
        // The template's nodes were made by root on the host, on a mount
        // without nodev, so they open even inside a user namespace (where a
        // node on a tmpfs mounted there would not). Read-only, because every
        // container of this spec shares the directory; a device node stays
        // writable on a read-only mount (only the inode is read-only).
        let ro = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | locked_flags(dev);
        plan.extend([
            Step::Mount { source: Some(src.clone()), target: c("dev"), fstype: None, flags: MsFlags::MS_BIND, data: None },
            Step::Mount { source: Some(src), target: c("dev"), fstype: None, flags: ro, data: None },
        ]);
        plan.extend(dev_mounts());
        plan.push(sysfs_step(ns));
        plan.extend([Step::PivotRoot, Step::DetachOldRoot, Step::Chdir(c("/"))]);
        return Ok(plan);
    }
    // A small tmpfs /dev holding only the devices a container needs, not
    // the host's devtmpfs (no disks, no /dev/kmsg). Not nodev, obviously.
    plan.push(mount("tmpfs", "dev", Some("tmpfs"), MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME, Some("mode=755,size=65536")));
    for (name, major, minor) in DEVICES {
        let path = c(&format!("dev/{name}"));
        if user_ns {
            plan.push(Step::Touch { path: path.clone(), mode: 0o666 });
            plan.push(Step::Mount { source: Some(c(&format!("/dev/{name}"))), target: path, fstype: None, flags: MsFlags::MS_BIND, data: None });
        } else {
            plan.push(Step::Mknod { path, mode: 0o666, major, minor });
        }
    }
    plan.extend([Step::Mkdir { path: c("dev/pts"), mode: 0o755 }, Step::Mkdir { path: c("dev/shm"), mode: 0o1777 }]);
    plan.extend(dev_mounts());
    for (name, target) in DEV_LINKS {
        plan.push(Step::Symlink { target: c(target), link: c(&format!("dev/{name}")) });
    }
    plan.extend([sysfs_step(ns), Step::PivotRoot, Step::DetachOldRoot, Step::Chdir(c("/"))]);
    Ok(plan)
}

/// The symbolic links of a container's /dev: (name, target).
pub const DEV_LINKS: [(&str, &str); 5] =
    [("ptmx", "pts/ptmx"), ("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")];

/// The container's own ptys and shared memory, on dev/pts and dev/shm.
fn dev_mounts() -> [Step; 2] {
    [
        // newinstance: the container's own ptys, not the host's.
        mount("devpts", "dev/pts", Some("devpts"), MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC, Some("newinstance,ptmxmode=0666,mode=0620")),
        mount("shm", "dev/shm", Some("tmpfs"), MsFlags::MS_NOSUID | MsFlags::MS_NODEV, Some("mode=1777,size=65536k")),
    ]
}

/// /sys, read-only: a container must not write the host's kernel knobs.
fn sysfs_step(ns: NamespaceSet) -> Step {
    if ns.contains(Namespace::User) && !ns.contains(Namespace::Net) {
        rbind("/sys", "sys")
    } else {
        mount("sysfs", "sys", Some("sysfs"), MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC | MsFlags::MS_RDONLY, None)
    }
}

/// A container /dev made once on the host, in a temp dir
/// `isobench-<pid>-dev-*` (swept by [`cleanup`] if isobench is killed): the
/// [`DEVICES`] as real nodes, `pts/` and `shm/` as mount points, and the
/// [`DEV_LINKS`]. Each container binds it read-only on its /dev and mounts
/// its own devpts and shm tmpfs on top ([`mount_plan_dev`]), which costs 4
/// mount calls instead of building the same tree on a tmpfs in every
/// container (the nodes would be bind mounts of the host's inside a user
/// namespace, where mknod(2) of a device is refused). The directory must
/// outlive every container bound to it: removing a directory detaches the
/// mounts on it in every namespace.
#[derive(Debug)]
pub struct DevTemplate {
    dir: tempfile::TempDir,
}

impl DevTemplate {
    /// Makes the template; `Ok(None)` when it cannot serve: not root
    /// (mknod(2) of a device needs CAP_MKNOD in the initial user namespace)
    /// or the temp dir is on a nodev mount (the nodes would not open).
    /// Errors: creating the temp dir or a node, link or directory in it.
    pub fn build() -> Result<Option<DevTemplate>, RootfsError> {
        if !nix::unistd::geteuid().is_root() {
            return Ok(None);
        }
        let dir = tempfile::Builder::new()
            .prefix(&temp_prefix("dev"))
            .tempdir()
            .map_err(io_err(format!("create a temp dir in {}", std::env::temp_dir().display())))?;
        let root = dir.path();
        if nix::sys::statvfs::statvfs(root).is_ok_and(|st| st.flags().contains(nix::sys::statvfs::FsFlags::ST_NODEV)) {
            return Ok(None);
        }
        let chmod = |p: &Path, mode: u32| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).map_err(io_err(format!("chmod {}", p.display())))
        };
        chmod(root, 0o755)?;
        for (name, major, minor) in DEVICES {
            let p = root.join(name);
            nix::sys::stat::mknod(&p, SFlag::S_IFCHR, Mode::from_bits_truncate(0o666), libc::makedev(major, minor))
                .map_err(|e| RootfsError::Io { context: format!("mknod {}", p.display()), source: e.into() })?;
            chmod(&p, 0o666)?;
        }
        for (sub, mode) in [("pts", 0o755), ("shm", 0o1777)] {
            let p = root.join(sub);
            std::fs::create_dir(&p).map_err(io_err(format!("mkdir {}", p.display())))?;
            chmod(&p, mode)?;
        }
        for (name, target) in DEV_LINKS {
            symlink(target, root.join(name)).map_err(io_err(format!("symlink {name} in {}", root.display())))?;
        }
        Ok(Some(DevTemplate { dir }))
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// The per-mount flags of the mount holding `dir`, which a read-only remount
/// of a bind of it must repeat (runc does the same): inside a user namespace
/// they are locked, and a remount that would clear one fails with EPERM.
fn locked_flags(dir: &Path) -> MsFlags {
    use nix::sys::statvfs::FsFlags;
    let Ok(st) = nix::sys::statvfs::statvfs(dir) else { return MsFlags::empty() };
    let mut flags = MsFlags::empty();
    for (fs, ms) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if st.flags().contains(fs) {
            flags |= ms;
        }
    }
    flags
}

/// Applies the plan; on failure returns the index of the failed step and its
/// errno. Allocates nothing (runs in the cloned child).
pub fn apply(plan: &[Step], sys: &dyn Syscall) -> Result<(), (usize, Errno)> {
    for (i, step) in plan.iter().enumerate() {
        apply_step(step, sys).map_err(|e| (i, e))?;
    }
    Ok(())
}

const DOT: &CStr = c".";

fn apply_step(step: &Step, sys: &dyn Syscall) -> nix::Result<()> {
    match step {
        Step::Mount { source, target, fstype, flags, data } => sys.mount(source.as_deref(), target, fstype.as_deref(), *flags, data.as_deref()),
        Step::Mkdir { path, mode } => sys.mkdir(path, Mode::from_bits_truncate(*mode)),
        Step::Mknod { path, mode, major, minor } => sys.mknod(path, SFlag::S_IFCHR, Mode::from_bits_truncate(*mode), libc::makedev(*major, *minor)),
        Step::Touch { path, mode } => sys.mknod(path, SFlag::S_IFREG, Mode::from_bits_truncate(*mode), 0),
        Step::Symlink { target, link } => sys.symlink(target, link),
        Step::Chdir(path) => sys.chdir(path),
        Step::Chroot(path) => sys.chroot(path),
        Step::PivotRoot => sys.pivot_root(DOT, DOT),
        Step::DetachOldRoot => sys.umount2(DOT, MntFlags::MNT_DETACH),
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = |c: &CString| c.to_string_lossy().into_owned();
        match self {
            Step::Mount { source: None, target, .. } => write!(f, "make {} and every mount under it private", s(target)),
            Step::Mount { target, flags, .. } if flags.contains(MsFlags::MS_REMOUNT) => write!(f, "remount {} read-only", s(target)),
            Step::Mount { source: Some(src), target, fstype: None, .. } => write!(f, "bind-mount {} on {}", s(src), s(target)),
            Step::Mount { fstype: Some(t), target, .. } => write!(f, "mount {} on {}", s(t), s(target)),
            Step::Mkdir { path, .. } => write!(f, "mkdir {}", s(path)),
            Step::Mknod { path, .. } => write!(f, "mknod {}", s(path)),
            Step::Touch { path, .. } => write!(f, "create {}", s(path)),
            Step::Symlink { target, link } => write!(f, "symlink {} -> {}", s(link), s(target)),
            Step::Chdir(p) => write!(f, "chdir {}", s(p)),
            Step::Chroot(p) => write!(f, "chroot {}", s(p)),
            Step::PivotRoot => f.write_str("pivot_root into the rootfs"),
            Step::DetachOldRoot => f.write_str("detach the old root"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::syscall::recording::Recorder;
    use super::*;

    #[test]
    fn plan_order_private_first_pivot_last() {
        let plan = mount_plan(Path::new("/tmp/r"), true).unwrap();
        let sys = Recorder::default();
        apply(&plan, &sys).unwrap();
        let lines = sys.lines();
        let pos = |prefix: &str| lines.iter().position(|l| l.starts_with(prefix)).unwrap_or_else(|| panic!("no {prefix} in {lines:#?}"));
        assert_eq!(lines[0], "mount - / - MS_REC|MS_PRIVATE -", "propagation is made private before any other mount");
        assert_eq!(lines[1], "mount /tmp/r /tmp/r - MS_BIND|MS_REC -");
        assert_eq!(lines[2], "chdir /tmp/r");
        assert!(pos("mount proc proc proc") > 2);
        assert!(pos("mount tmpfs dev tmpfs") < pos("mknod dev/null 666 1,3"));
        assert!(pos("mkdir dev/pts") < pos("mount devpts dev/pts devpts"));
        assert!(pos("mount sysfs sys sysfs") < pos("pivot_root"));
        assert!(lines.iter().find(|l| l.starts_with("mount sysfs")).unwrap().contains("MS_RDONLY"));
        let n = lines.len();
        assert_eq!(lines[n - 3..], ["pivot_root . .", "umount2 . MNT_DETACH", "chdir /"]);
        for (name, _, _) in DEVICES {
            pos(&format!("mknod dev/{name} 666"));
        }
    }

    #[test]
    fn in_a_user_namespace_devices_are_bound_not_made() {
        let ns: NamespaceSet = "user,mnt,pid,net".parse().unwrap();
        let sys = Recorder::default();
        apply(&mount_plan_for(Path::new("/tmp/r"), ns).unwrap(), &sys).unwrap();
        let lines = sys.lines();
        assert!(!lines.iter().any(|l| l.contains(" 1,3")), "no mknod of a device in a user namespace: {lines:#?}");
        let touch = lines.iter().position(|l| l == "mknod dev/null 666 0,0").unwrap();
        assert_eq!(lines[touch + 1], "mount /dev/null dev/null - MS_BIND -");
        assert!(lines.iter().any(|l| l.starts_with("mount proc proc proc")) && lines.iter().any(|l| l.starts_with("mount sysfs sys sysfs")));
        // Without its own pid and net namespaces, proc and sysfs are the host's, bound.
        let sys = Recorder::default();
        apply(&mount_plan_for(Path::new("/tmp/r"), "user,mnt".parse().unwrap()).unwrap(), &sys).unwrap();
        let lines = sys.lines();
        assert!(lines.contains(&"mount /proc proc - MS_BIND|MS_REC -".to_string()), "{lines:#?}");
        assert!(lines.contains(&"mount /sys sys - MS_BIND|MS_REC -".to_string()), "{lines:#?}");
    }

    #[test]
    fn a_dev_template_is_bound_read_only_with_pts_and_shm_on_top() {
        let ns: NamespaceSet = "user,mnt,pid,net".parse().unwrap();
        let sys = Recorder::default();
        apply(&mount_plan_dev(Path::new("/tmp/r"), ns, false, Some(Path::new("/tmp/d"))).unwrap(), &sys).unwrap();
        let lines = sys.lines();
        let bind = lines.iter().position(|l| l == "mount /tmp/d dev - MS_BIND -").expect("the template bound on dev");
        for flag in ["MS_RDONLY", "MS_REMOUNT", "MS_BIND", "MS_NOSUID"] {
            assert!(lines[bind + 1].starts_with("mount /tmp/d dev - ") && lines[bind + 1].contains(flag), "{flag}: {lines:#?}");
        }
        assert!(lines[bind + 2].starts_with("mount devpts dev/pts devpts") && lines[bind + 3].starts_with("mount shm dev/shm tmpfs"), "{lines:#?}");
        assert!(!lines.iter().any(|l| l.starts_with("mknod") || l.starts_with("symlink") || l.starts_with("mkdir")), "{lines:#?}");
        assert_eq!(lines[lines.len() - 3..], ["pivot_root . .", "umount2 . MNT_DETACH", "chdir /"]);
    }

    #[test]
    fn a_shared_rootfs_is_remounted_read_only_with_a_tmpfs_on_tmp() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("tmp")).unwrap();
        let plan = mount_plan_with(dir.path(), NamespaceSet::DEFAULT, true).unwrap();
        let sys = Recorder::default();
        apply(&plan, &sys).unwrap();
        let lines = sys.lines();
        let root = dir.path().display().to_string();
        assert_eq!(lines[1], format!("mount {root} {root} - MS_BIND|MS_REC -"));
        assert!(lines[2].starts_with(&format!("mount {root} {root} - ")), "{lines:#?}");
        for flag in ["MS_RDONLY", "MS_REMOUNT", "MS_BIND"] {
            assert!(lines[2].contains(flag), "{flag} missing: {}", lines[2]);
        }
        assert_eq!(plan[2].to_string(), format!("remount {root} read-only"));
        assert_eq!(lines[3], format!("chdir {root}"));
        let tmp = lines.iter().position(|l| l.starts_with("mount tmpfs tmp tmpfs")).expect("a tmpfs on /tmp");
        assert!(tmp < lines.iter().position(|l| l == "pivot_root . .").unwrap());
        // Writable plans are as before: no remount, no /tmp mount.
        let lines = {
            let sys = Recorder::default();
            apply(&mount_plan_with(dir.path(), NamespaceSet::DEFAULT, false).unwrap(), &sys).unwrap();
            sys.lines()
        };
        assert!(!lines.iter().any(|l| l.contains("MS_REMOUNT") || l.starts_with("mount tmpfs tmp")), "{lines:#?}");
        // And a chroot cannot be read-only.
        assert!(matches!(mount_plan_with(dir.path(), NamespaceSet::NONE, true), Err(RootfsError::ReadOnlyNeedsMountNs(_))));
    }

    #[test]
    fn rootfs_choice_parses_names_and_paths() {
        assert_eq!("minimal".parse::<RootfsChoice>().unwrap(), RootfsChoice::Minimal);
        assert_eq!("debian".parse::<RootfsChoice>().unwrap(), RootfsChoice::Distro);
        assert_eq!("./debian".parse::<RootfsChoice>().unwrap(), RootfsChoice::Dir("./debian".into()));
        assert_eq!("/srv/r".parse::<RootfsChoice>().unwrap(), RootfsChoice::Dir("/srv/r".into()));
    }

    #[test]
    fn without_mount_namespace_nothing_is_mounted() {
        let plan = mount_plan(Path::new("/tmp/r"), false).unwrap();
        let sys = Recorder::default();
        apply(&plan, &sys).unwrap();
        assert_eq!(sys.lines(), ["chroot /tmp/r", "chdir /"]);
    }

    #[test]
    fn apply_stops_at_the_failing_step_and_names_it() {
        let plan = mount_plan(Path::new("/tmp/r"), true).unwrap();
        let sys = Recorder { fail_on: Some("mount sysfs"), ..Default::default() };
        let (i, errno) = apply(&plan, &sys).unwrap_err();
        assert_eq!(errno, Errno::EPERM);
        assert_eq!(plan[i].to_string(), "mount sysfs on sys");
        assert!(sys.lines().last().unwrap().starts_with("mount sysfs"));
        assert!(!sys.lines().iter().any(|l| l.starts_with("pivot_root")), "nothing after a failed step");
    }

    #[test]
    fn stale_temp_dirs_of_dead_pids_are_swept_live_ones_kept() {
        let base = tempfile::tempdir().unwrap();
        // A pid that cannot exist (above pid_max's hard limit of 2^22).
        let dead = base.path().join("isobench-4194399-rootfs-abc");
        let live = base.path().join(format!("isobench-{}-rootfs-xyz", std::process::id()));
        let other = base.path().join("isobench-notapid-rootfs");
        for d in [&dead, &live, &other] {
            std::fs::create_dir_all(d.join("bin")).unwrap();
        }
        let removed = sweep(base.path());
        assert_eq!(removed, std::slice::from_ref(&dead));
        assert!(!dead.exists() && live.exists() && other.exists());
    }

    #[test]
    fn owner_pid_parses_only_our_names() {
        assert_eq!(owner_pid(OsStr::new("isobench-123-rootfs-x")), Some(123));
        assert_eq!(owner_pid(OsStr::new("isobench-123-")), None);
        assert_eq!(owner_pid(OsStr::new("isobench-0-rootfs")), None);
        assert_eq!(owner_pid(OsStr::new("other-123-rootfs")), None);
    }

    #[test]
    fn elf_check_tells_static_from_dynamic() {
        assert!(!is_static_elf(Path::new("/bin/sh")).unwrap(), "/bin/sh is dynamically linked on Debian");
        let not_elf = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(not_elf.path(), b"#!/bin/sh\n").unwrap();
        assert!(!is_static_elf(not_elf.path()).unwrap());
        if let Some(bb) = find_static_busybox() {
            assert!(is_static_elf(&bb).unwrap());
        }
    }

    #[test]
    fn user_rootfs_without_mountpoints_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("proc")).unwrap();
        let err = check_rootfs(dir.path(), true).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, RootfsError::NoMountpoint { dir: "dev", .. }), "{msg}");
        assert!(msg.contains("mkdir -p"), "{msg}");
        // Without a mount namespace nothing is mounted, so nothing is needed.
        assert!(check_rootfs(dir.path(), false).is_ok());
    }
}
