//! The mount plan that turns a directory into the container's `/` (runc's
//! and bubblewrap's order: private propagation, bind, /proc, /dev, /sys,
//! pivot_root): data ([`Step`]) built before clone(2) with every C string
//! allocated, and applied in the child through [`Syscall`] without
//! allocating ([`apply`]).

use std::ffi::{CStr, CString};
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};
use nix::sys::stat::{Mode, SFlag};

use super::RootfsError;
use crate::container::ns::{Namespace, NamespaceSet};
use crate::container::syscall::{PathKind, Syscall};

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
    /// Hides a path of the container's /proc or /sys (runc's masked paths):
    /// /dev/null bound over a file, an empty read-only tmpfs over a
    /// directory; nothing when the kernel has no such path.
    Mask {
        path: CString,
    },
    /// Makes a path read-only (runc's read-only paths): bound onto itself,
    /// then the bind remounted read-only with `flags` kept; nothing when the
    /// kernel has no such path.
    ReadOnlyPath {
        path: CString,
        flags: MsFlags,
    },
    /// A directory of the child's own made with mkdtemp(3) from `template`,
    /// and entered (an overlay's upper on disk, see [`super::overlay`]).
    EnterScratchDir {
        template: CString,
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
/// rootfs shared between containers, see [`PreparedRootfs::read_only`](super::PreparedRootfs::read_only)):
/// the bind is remounted read-only right after it is made, keeping the flags
/// of the mount it comes from (the kernel refuses to clear them inside a user
/// namespace), and a tmpfs goes on /tmp when the rootfs has one, so programs
/// still find a writable scratch directory. Refused without a mount
/// namespace: a chroot cannot be made read-only.
pub fn mount_plan_with(rootfs: &Path, ns: NamespaceSet, read_only: bool) -> Result<Vec<Step>, RootfsError> {
    mount_plan_dev(rootfs, ns, read_only, None)
}

/// [`mount_plan_with`], with the container's /dev bound read-only from a
/// [`DevTemplate`](super::DevTemplate) made on the host when `dev` is given (4 steps: bind,
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
        // Device nodes made here work under `bare`, as on the writable copy a
        // rootfs without this tmpfs has; a hardened profile adds nodev
        // (`harden_plan`).
        plan.push(mount("tmpfs", "tmp", Some("tmpfs"), MsFlags::MS_NOSUID, Some("mode=1777,size=65536k")));
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

/// Adds a hardened profile's mounts to `plan` (see
/// [`profile`](crate::container::profile)): the rootfs bind remounted nodev
/// (so a device node made inside cannot be opened: Docker keeps CAP_MKNOD
/// and relies on a device cgroup for that, which a cgroup v2 host or a
/// container without a cgroup does not have), and runc's masked and
/// read-only /proc and /sys paths, after /proc and /sys are mounted and
/// before pivot_root. A plan without a mount namespace (a chroot) is left
/// as it is: it mounts nothing. Applying it twice changes nothing more.
pub fn harden_plan(plan: &mut Vec<Step>) {
    use crate::container::profile::{MASKED_PATHS, READONLY_PATHS};
    let Some(pivot) = plan.iter().position(|s| *s == Step::PivotRoot) else { return };
    if plan.iter().any(|s| matches!(s, Step::Mask { .. })) {
        return;
    }
    let rel = |p: &str| c(p.trim_start_matches('/'));
    // /proc's own flags, which a read-only remount of a path in it repeats.
    let proc_flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC | locked_flags(Path::new("/proc"));
    let mut steps: Vec<Step> = MASKED_PATHS.iter().map(|p| Step::Mask { path: rel(p) }).collect();
    steps.extend(READONLY_PATHS.iter().map(|p| Step::ReadOnlyPath { path: rel(p), flags: proc_flags }));
    plan.splice(pivot..pivot, steps);
    // The shared rootfs's tmpfs /tmp: no device nodes either.
    for step in plan.iter_mut() {
        if let Step::Mount { target, fstype: Some(fs), flags, .. } = step {
            if target.as_bytes() == b"tmp" && fs.as_bytes() == b"tmpfs" {
                *flags |= MsFlags::MS_NODEV;
            }
        }
    }
    // The rootfs bind: source and target the rootfs itself.
    let is_root_bind = |s: &Step| matches!(s, Step::Mount { source: Some(src), target, flags, .. } if src == target && flags.contains(MsFlags::MS_BIND) && !flags.contains(MsFlags::MS_REMOUNT));
    let Some(bind) = plan.iter().position(is_root_bind) else { return };
    match plan.get_mut(bind + 1) {
        Some(Step::Mount { flags, .. }) if flags.contains(MsFlags::MS_REMOUNT) => *flags |= MsFlags::MS_NODEV,
        _ => {
            let Step::Mount { source: Some(root), .. } = &plan[bind] else { return };
            let root = root.clone();
            let flags =
                MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_NODEV | locked_flags(Path::new(std::ffi::OsStr::from_bytes(root.as_bytes())));
            plan.insert(bind + 1, Step::Mount { source: Some(root.clone()), target: root, fstype: None, flags, data: None });
        }
    }
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
/// What a masked file gets bound over it (the host's, before pivot_root).
const DEV_NULL: &CStr = c"/dev/null";

fn apply_step(step: &Step, sys: &dyn Syscall) -> nix::Result<()> {
    match step {
        Step::Mount { source, target, fstype, flags, data } => sys.mount(source.as_deref(), target, fstype.as_deref(), *flags, data.as_deref()),
        Step::Mkdir { path, mode } => sys.mkdir(path, Mode::from_bits_truncate(*mode)),
        Step::Mknod { path, mode, major, minor } => sys.mknod(path, SFlag::S_IFCHR, Mode::from_bits_truncate(*mode), libc::makedev(*major, *minor)),
        Step::Touch { path, mode } => sys.mknod(path, SFlag::S_IFREG, Mode::from_bits_truncate(*mode), 0),
        Step::Symlink { target, link } => sys.symlink(target, link),
        // Which mount a path gets is decided by what is there
        // (`Syscall::path_kind`), not by the errno of a failed attempt,
        // which the launching thread may overwrite meanwhile.
        Step::Mask { path } => match sys.path_kind(path) {
            // This kernel has no such file: nothing to hide.
            PathKind::Missing => Ok(()),
            // A directory: an empty read-only tmpfs over it, as runc does.
            PathKind::Directory => sys.mount(
                Some(c"tmpfs"),
                path,
                Some(c"tmpfs"),
                MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
                None,
            ),
            PathKind::Other => sys.mount(Some(DEV_NULL), path, None, MsFlags::MS_BIND, None),
        },
        Step::ReadOnlyPath { path, flags } => match sys.path_kind(path) {
            PathKind::Missing => Ok(()),
            _ => sys
                .mount(Some(path), path, None, MsFlags::MS_BIND | MsFlags::MS_REC, None)
                .and_then(|()| sys.mount(Some(path), path, None, MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | *flags, None)),
        },
        Step::EnterScratchDir { template } => sys.mkdtemp_chdir(template),
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
            Step::Mount { target, flags, .. } if flags.contains(MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY) => {
                write!(f, "remount {} read-only", s(target))
            }
            Step::Mount { target, flags, .. } if flags.contains(MsFlags::MS_REMOUNT) => write!(f, "remount {} nodev", s(target)),
            Step::Mount { source: Some(src), target, fstype: None, .. } => write!(f, "bind-mount {} on {}", s(src), s(target)),
            Step::Mount { fstype: Some(t), target, .. } => write!(f, "mount {} on {}", s(t), s(target)),
            Step::Mkdir { path, .. } => write!(f, "mkdir {}", s(path)),
            Step::Mknod { path, .. } => write!(f, "mknod {}", s(path)),
            Step::Touch { path, .. } => write!(f, "create {}", s(path)),
            Step::Symlink { target, link } => write!(f, "symlink {} -> {}", s(link), s(target)),
            Step::Mask { path } => write!(f, "mask {}", s(path)),
            Step::ReadOnlyPath { path, .. } => write!(f, "make {} read-only", s(path)),
            Step::EnterScratchDir { template } => {
                let t = s(template);
                let parent = t.rsplit_once('/').map_or(t.as_str(), |(dir, _)| dir);
                write!(f, "make a directory of its own under {parent} and enter it")
            }
            Step::Chdir(p) => write!(f, "chdir {}", s(p)),
            Step::Chroot(p) => write!(f, "chroot {}", s(p)),
            Step::PivotRoot => f.write_str("pivot_root into the rootfs"),
            Step::DetachOldRoot => f.write_str("detach the old root"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::syscall::recording::Recorder;

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
        assert!(!lines[tmp].contains("MS_NODEV"), "bare: nodes on /tmp work as on a writable copy: {}", lines[tmp]);
        let mut hardened = plan.clone();
        harden_plan(&mut hardened);
        let sys = Recorder::default();
        apply(&hardened, &sys).unwrap();
        let tmp_line = sys.lines().into_iter().find(|l| l.starts_with("mount tmpfs tmp tmpfs")).unwrap();
        assert!(tmp_line.contains("MS_NODEV"), "a hardened profile's /tmp is nodev: {tmp_line}");
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
    fn hardening_masks_and_protects_proc_before_pivot_and_mounts_the_root_nodev() {
        use crate::container::profile::{MASKED_PATHS, READONLY_PATHS};
        let mut plan = mount_plan(Path::new("/tmp/r"), true).unwrap();
        let plain = plan.len();
        harden_plan(&mut plan);
        harden_plan(&mut plan);
        assert_eq!(plan.len(), plain + MASKED_PATHS.len() + READONLY_PATHS.len() + 1, "once, however often it is asked");
        let sys = Recorder::default();
        apply(&plan, &sys).unwrap();
        let lines = sys.lines();
        let pos = |prefix: &str| lines.iter().position(|l| l.starts_with(prefix)).unwrap_or_else(|| panic!("no {prefix} in {lines:#?}"));
        assert_eq!(lines[1], "mount /tmp/r /tmp/r - MS_BIND|MS_REC -");
        assert!(lines[2].starts_with("mount /tmp/r /tmp/r - ") && lines[2].contains("MS_NODEV") && lines[2].contains("MS_REMOUNT"), "{lines:#?}");
        assert!(!lines[2].contains("MS_RDONLY"), "a writable rootfs stays writable");
        assert_eq!(plan[2].to_string(), "remount /tmp/r nodev");
        let kcore = pos("mount /dev/null proc/kcore - MS_BIND");
        assert!(pos("mount proc proc proc") < kcore && pos("mount sysfs sys sysfs") < kcore, "masks go over the mounted /proc and /sys");
        let sys_ro = pos("mount proc/sys proc/sys - MS_BIND|MS_REC");
        assert!(lines[sys_ro + 1].starts_with("mount proc/sys proc/sys - ") && lines[sys_ro + 1].contains("MS_RDONLY"), "{}", lines[sys_ro + 1]);
        assert!(sys_ro < pos("pivot_root"));
        assert!(plan.iter().any(|s| s.to_string() == "mask sys/firmware"));
        assert!(plan.iter().any(|s| s.to_string() == "make proc/sysrq-trigger read-only"));
        // A read-only rootfs gets nodev in its read-only remount.
        let dir = tempfile::tempdir().unwrap();
        let mut ro = mount_plan_with(dir.path(), NamespaceSet::DEFAULT, true).unwrap();
        let n = ro.len();
        harden_plan(&mut ro);
        assert_eq!(ro.len(), n + MASKED_PATHS.len() + READONLY_PATHS.len());
        assert!(matches!(&ro[2], Step::Mount { flags, .. } if flags.contains(MsFlags::MS_RDONLY | MsFlags::MS_NODEV)));
        // A chroot mounts nothing, hardened or not.
        let mut chroot = mount_plan(Path::new("/tmp/r"), false).unwrap();
        harden_plan(&mut chroot);
        assert_eq!(chroot.len(), 2);
    }

    #[test]
    fn a_masked_directory_gets_a_read_only_tmpfs_and_a_missing_path_nothing() {
        let dir = Step::Mask { path: c("proc/acpi") };
        let sys = Recorder { dirs: vec!["proc/acpi"], ..Default::default() };
        apply(std::slice::from_ref(&dir), &sys).unwrap();
        assert_eq!(sys.lines(), ["mount tmpfs proc/acpi tmpfs MS_RDONLY|MS_NOSUID|MS_NODEV|MS_NOEXEC -"]);
        for step in [Step::Mask { path: c("proc/timer_stats") }, Step::ReadOnlyPath { path: c("proc/nope"), flags: MsFlags::empty() }] {
            // Whatever errno a mount would leave: nothing is tried.
            let sys = Recorder { missing: vec!["proc/timer_stats", "proc/nope"], fail_on: Some("mount"), fail_with: Some(Errno::ENOTDIR), ..Default::default() };
            apply(std::slice::from_ref(&step), &sys).unwrap();
            assert!(sys.lines().is_empty(), "{step}: skipped, missing");
        }
        // A file gets /dev/null; its failure is the step's.
        let file = Step::Mask { path: c("proc/kcore") };
        let sys = Recorder { fail_on: Some("mount /dev/null"), fail_with: Some(Errno::EACCES), ..Default::default() };
        assert_eq!(apply(std::slice::from_ref(&file), &sys), Err((0, Errno::EACCES)));
        let sys = Recorder::default();
        apply(std::slice::from_ref(&file), &sys).unwrap();
        assert_eq!(sys.lines(), ["mount /dev/null proc/kcore - MS_BIND -"]);
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
}
