//! The container's root filesystem: the minimal one isobench builds from its
//! static binaries, once, into the cache (see [`cache`]), a distribution's
//! (see [`distro`]), the checks on a rootfs the user gives, and the mount
//! plan that turns a directory into the container's `/`.
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
//! allocated, and applied in the child through
//! [`Syscall`](super::syscall::Syscall) without allocating.
//!
//! - [`build`]: the minimal rootfs's tree and the static busybox it carries
//! - [`cache`]: the minimal rootfs built once, content-addressed, shared
//!   read-only, pruned and swept
//! - [`distro`]: a distribution's rootfs from debootstrap (`--rootfs debian`)
//! - [`choice`]: `--rootfs minimal|debian|DIR` and the rootfs it becomes
//! - [`mount`]: the mount plan and its application in the child
//! - [`overlay`]: Docker's overlayfs root, the image as lowerdir (`--profile docker`)
//! - [`dev`]: the /dev template bound into every container of a launch spec

use std::io;
use std::path::PathBuf;

pub mod build;
pub mod cache;
pub mod choice;
pub mod dev;
pub mod distro;
pub mod mount;
pub mod overlay;

pub use build::{find_static_busybox, is_static_elf, populate, MinimalRootfs};
pub use cache::CachedRootfs;
pub use choice::{check_rootfs, PreparedRootfs, RootfsChoice};
pub use dev::DevTemplate;
pub use mount::{apply, harden_plan, mount_plan, mount_plan_dev, mount_plan_for, mount_plan_with, Step};
pub use overlay::{OverlayRecord, OverlayStage, UpperKind};

use distro::DistroError;

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
    #[error("overlay: path {0:?} cannot be named in overlayfs mount options (it has a ',' or ':'); use a rootfs path without them")]
    OverlayPath(PathBuf),
    #[error("the overlay root is mounted in the container's own mount namespace; add mnt to --ns or use --profile default")]
    OverlayNeedsMountNs,
    #[error("a volume is bind-mounted in the container's own mount namespace; add mnt to --ns (or use --container-storage root)")]
    VolumeNeedsMountNs,
    #[error("volume path {0:?} has a NUL byte")]
    VolumePath(PathBuf),
    #[error(transparent)]
    Distro(#[from] DistroError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
}

/// Removes what killed builders left in the cache (the minimal rootfs's
/// temp entries; the distribution rootfs's half-made builds, as root): see
/// [`cache::sweep`] and [`distro::sweep`].
pub fn sweep() -> Vec<PathBuf> {
    let mut removed = cache::sweep();
    if nix::unistd::geteuid().is_root() {
        removed.extend(distro::sweep());
    }
    removed
}

fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> RootfsError {
    let context = context.into();
    move |source| RootfsError::Io { context, source }
}
