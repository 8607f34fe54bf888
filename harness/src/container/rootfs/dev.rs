//! The container's /dev made once per launch spec on the host
//! ([`DevTemplate`]) and bound read-only into each container, rather than
//! built on a tmpfs in every one.

use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;

use nix::sys::stat::{Mode, SFlag};

use super::mount::{DEVICES, DEV_LINKS};
use super::{io_err, RootfsError};
use crate::leftovers;

/// A container /dev made once on the host, in a temp dir
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
            .prefix(&leftovers::temp_prefix("dev"))
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
