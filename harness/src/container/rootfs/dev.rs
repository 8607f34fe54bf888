//! The container's /dev made once on the host ([`DevTemplate`]) and bound
//! read-only into each container, rather than built on a tmpfs in every
//! one: in the cache, made once per machine (its content never changes), or
//! per launch spec in a temp dir where the cache cannot hold device nodes.

use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::sys::stat::{Mode, SFlag};

use super::mount::{DEVICES, DEV_LINKS};
use super::{io_err, RootfsError};
use crate::leftovers;

/// A container /dev made once on the host, in the cache or in a temp dir
/// `isobench-<pid>-dev-*` (swept by [`leftovers::sweep_temp_dirs`] if isobench is killed): the
/// [`DEVICES`] as real nodes, `pts/` and `shm/` as mount points, and the
/// [`DEV_LINKS`]. Each container binds it read-only on its /dev and mounts
/// its own devpts and shm tmpfs on top ([`mount_plan_dev`](super::mount_plan_dev)), which costs 4
/// mount calls instead of building the same tree on a tmpfs in every
/// container (the nodes would be bind mounts of the host's inside a user
/// namespace, where mknod(2) of a device is refused). The directory must
/// outlive every container bound to it: removing a directory detaches the
/// mounts on it in every namespace.
#[derive(Debug)]
pub struct DevTemplate {
    dir: Place,
}

#[derive(Debug)]
enum Place {
    /// `<cache>/rootfs/dev-v<N>`, shared, never removed by isobench.
    Cached(PathBuf),
    /// A temp dir of this process, removed on drop.
    Temp(tempfile::TempDir),
}

/// Version of the template's content ([`DEVICES`], [`DEV_LINKS`], the mount
/// points); a new one gets a new cached directory.
pub const DEV_LAYOUT_VERSION: u32 = 1;
/// What the cached template's name starts with (`dev-v<N>`).
pub const DEV_PREFIX: &str = "dev-v";

impl DevTemplate {
    /// The template in the cache (`<cache>/rootfs/dev-v<N>`), made once under
    /// a pid-stamped temp name and renamed into place (swept as the cached
    /// rootfs's temp entries are); where the cache cannot serve (not root,
    /// a nodev mount, an error), a per-spec temp one ([`build`](Self::build)).
    /// A launch pays a few stats instead of ~25 calls to make and ~15 to
    /// remove the nodes.
    pub fn prepare() -> Result<Option<DevTemplate>, RootfsError> {
        if !nix::unistd::geteuid().is_root() {
            return Ok(None);
        }
        match Self::cached_in(&super::cache::cache_root()) {
            Some(t) => Ok(Some(t)),
            None => Self::build(),
        }
    }

    /// The cached template in `dir`, made first when missing; `None` when it
    /// cannot be (see [`prepare`](Self::prepare)).
    pub fn cached_in(dir: &Path) -> Option<DevTemplate> {
        let path = dir.join(format!("{DEV_PREFIX}{DEV_LAYOUT_VERSION}"));
        if path.join("pts").is_dir() {
            return Some(DevTemplate { dir: Place::Cached(path) });
        }
        std::fs::create_dir_all(dir).ok()?;
        if nix::sys::statvfs::statvfs(dir).is_ok_and(|st| st.flags().contains(nix::sys::statvfs::FsFlags::ST_NODEV)) {
            return None;
        }
        let tmp = super::cache::begin_build(dir, &format!("{DEV_PREFIX}{DEV_LAYOUT_VERSION}")).ok()?;
        if make_nodes(&tmp).is_err() {
            let _ = std::fs::remove_dir_all(&tmp);
            return None;
        }
        // Another process's rename may have come first: theirs is the same.
        if std::fs::rename(&tmp, &path).is_err() {
            let _ = std::fs::remove_dir_all(&tmp);
        }
        path.join("pts").is_dir().then_some(DevTemplate { dir: Place::Cached(path) })
    }

    /// Makes the template; `Ok(None)` when it cannot serve: not root
    /// (mknod(2) of a device needs CAP_MKNOD in the initial user namespace)
    /// or the temp dir is on a nodev mount (the nodes would not open).
    /// Errors: creating the temp dir or a node, link or directory in it.
    pub fn build() -> Result<Option<DevTemplate>, RootfsError> {
        if !nix::unistd::geteuid().is_root() {
            return Ok(None);
        }
        let dir = tempfile::Builder::new()
            .prefix(&leftovers::temp_prefix("dev"))
            .tempdir()
            .map_err(io_err(format!("create a temp dir in {}", std::env::temp_dir().display())))?;
        let root = dir.path();
        if nix::sys::statvfs::statvfs(root).is_ok_and(|st| st.flags().contains(nix::sys::statvfs::FsFlags::ST_NODEV)) {
            return Ok(None);
        }
        make_nodes(root)?;
        Ok(Some(DevTemplate { dir: Place::Temp(dir) }))
    }

    pub fn path(&self) -> &Path {
        match &self.dir {
            Place::Cached(p) => p,
            Place::Temp(d) => d.path(),
        }
    }

    /// Whether this is the shared one in the cache (never removed).
    pub fn is_cached(&self) -> bool {
        matches!(self.dir, Place::Cached(_))
    }
}

/// The nodes, mount points and links of a template, in the empty `root`.
fn make_nodes(root: &Path) -> Result<(), RootfsError> {
    let chmod =
        |p: &Path, mode: u32| std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).map_err(io_err(format!("chmod {}", p.display())));
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
    Ok(())
}
