//! Which rootfs a container gets (`--rootfs minimal|debian|DIR`:
//! [`RootfsChoice`]) and what that choice becomes once ready
//! ([`PreparedRootfs`]): the cached minimal rootfs (or a private copy of it
//! where no mount namespace can bind it read-only), the shared distribution
//! rootfs, or a directory of the user's, checked for the mount points the
//! plan needs.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use super::build::MinimalRootfs;
use super::cache::CachedRootfs;
use super::distro::DistroRootfs;
use super::mount::MOUNTPOINTS;
use super::{io_err, RootfsError};
use crate::workloads::Workloads;

/// Which root filesystem a container gets (`--rootfs minimal|debian|DIR`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum RootfsChoice {
    /// The minimal rootfs: [`CachedRootfs`], built once and shared
    /// read-only; a private writable copy ([`MinimalRootfs`]) for a
    /// container without a mount namespace.
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

/// A rootfs ready for containers: what [`RootfsChoice`] became. A private
/// minimal one is removed on drop; the others stay.
#[derive(Debug)]
pub enum PreparedRootfs {
    /// The cached minimal rootfs, in use (bound read-only).
    Cached(CachedRootfs),
    /// A private, writable copy of the minimal rootfs (no mount namespace).
    Minimal {
        rootfs: MinimalRootfs,
        path: PathBuf,
    },
    Distro(DistroRootfs),
    /// A directory of the user's: bound read-only (with a tmpfs on /tmp
    /// when it has one) in a mount namespace, so the container never
    /// writes into it; without one, a chroot into it as it is.
    Dir {
        path: PathBuf,
        read_only: bool,
    },
}

impl PreparedRootfs {
    /// Finds (or builds once) the cached minimal rootfs, builds or reuses
    /// the distribution one, or checks the user's directory (its mount
    /// points, when `mount_ns`). Without a mount namespace the minimal rootfs
    /// is a private copy: a chroot cannot be made read-only, and the cache
    /// must never be written.
    pub fn prepare(choice: &RootfsChoice, workloads: &Workloads, mount_ns: bool) -> Result<PreparedRootfs, RootfsError> {
        match choice {
            RootfsChoice::Minimal if mount_ns => Ok(PreparedRootfs::Cached(CachedRootfs::prepare(workloads)?)),
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
            RootfsChoice::Dir(dir) => Ok(PreparedRootfs::Dir { path: check_rootfs(dir, mount_ns)?, read_only: mount_ns }),
        }
    }

    /// The directory (absolute, canonical).
    pub fn path(&self) -> &Path {
        match self {
            PreparedRootfs::Minimal { path, .. } | PreparedRootfs::Dir { path, .. } => path,
            PreparedRootfs::Cached(c) => c.path(),
            PreparedRootfs::Distro(d) => d.path(),
        }
    }

    /// Which image, for the results: `minimal`, `debian-bookworm` or the path.
    pub fn label(&self) -> String {
        match self {
            PreparedRootfs::Minimal { .. } | PreparedRootfs::Cached(_) => "minimal".into(),
            PreparedRootfs::Distro(d) => d.name(),
            PreparedRootfs::Dir { path, .. } => path.display().to_string(),
        }
    }

    /// A longer description, for the metadata's `rootfs_kind`.
    pub fn description(&self) -> String {
        match self {
            PreparedRootfs::Cached(c) => format!(
                "minimal (isobench-agent, noop, busybox when installed; {} in the cache, built once, shared, read-only, a tmpfs on /tmp)",
                c.name()
            ),
            PreparedRootfs::Minimal { .. } => {
                "minimal (isobench-agent, noop, busybox when installed; a private writable copy: no mount namespace to bind the cached one read-only)"
                    .into()
            }
            PreparedRootfs::Distro(d) => {
                format!(
                    "{} (debootstrap --variant=minbase {} from {}, isobench-agent and noop added; shared, read-only)",
                    d.name(),
                    d.source().suite,
                    d.source().mirror
                )
            }
            PreparedRootfs::Dir { read_only: true, .. } => "a directory given with --rootfs (bound read-only, a tmpfs on /tmp)".into(),
            PreparedRootfs::Dir { read_only: false, .. } => {
                "a directory given with --rootfs (writable: no mount namespace to bind it read-only)".into()
            }
        }
    }

    /// Shared between containers, or the user's own directory, so mounted
    /// read-only (the user's only where a mount namespace can).
    pub fn read_only(&self) -> bool {
        matches!(self, PreparedRootfs::Distro(_) | PreparedRootfs::Cached(_) | PreparedRootfs::Dir { read_only: true, .. })
    }

    /// The host's busybox copied into a minimal rootfs, if one was found.
    pub fn busybox(&self) -> Option<PathBuf> {
        match self {
            PreparedRootfs::Minimal { rootfs, .. } => rootfs.busybox().map(Path::to_path_buf),
            PreparedRootfs::Cached(c) => c.busybox(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rootfs_choice_parses_names_and_paths() {
        assert_eq!("minimal".parse::<RootfsChoice>().unwrap(), RootfsChoice::Minimal);
        assert_eq!("debian".parse::<RootfsChoice>().unwrap(), RootfsChoice::Distro);
        assert_eq!("./debian".parse::<RootfsChoice>().unwrap(), RootfsChoice::Dir("./debian".into()));
        assert_eq!("/srv/r".parse::<RootfsChoice>().unwrap(), RootfsChoice::Dir("/srv/r".into()));
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
