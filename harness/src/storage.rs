//! The storage paths of the fs.* metrics: the run's data directory on the
//! host (`--data-dir`), what each environment makes of it, and the sweep of
//! a killed run's data directory.
//!
//! A run that measures fs.* metrics makes one directory,
//! `<data dir>/isobench-<pid>-data` ([`RunData`]), and gives each
//! environment a subdirectory of it; the agent writes only under the
//! directory it is given (`RunRequest::data_dir`). Since `--data-dir` may be
//! anywhere, a link in the temp dir, `isobench-<pid>-datalink`, points at
//! it, so that the next start's sweep ([`sweep`]) finds a killed run's data
//! directory the way it finds its temp dirs (runc's state dir under
//! `--root` is found the same way, by a name that says whose it is).

use std::path::{Path, PathBuf};

use crate::leftovers;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("data directory {dir}: {source}")]
    Io {
        dir: String,
        #[source]
        source: std::io::Error,
    },
    #[error("data directory {0} is not a directory")]
    NotADirectory(String),
}

/// What the name of a run's data directory says after `isobench-<pid>-`.
const DATA_WHAT: &str = "data";
/// What the name of its link in the temp dir says after `isobench-<pid>-`.
const LINK_WHAT: &str = "datalink";

/// The storage path a row was measured on: where the agent's data
/// directory lives, seen from the environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StorageKind {
    /// A directory of the host's file system, used directly (native).
    HostDirectory,
    /// A host directory bind-mounted into the container (`docker run -v`).
    Volume,
    /// The container's own writable root: a tmpfs on /tmp over the
    /// read-only image, or the overlay's upper layer under `--profile
    /// docker`; the agent's file system type says which.
    ContainerRoot,
    /// A guest's virtio-blk disk: a raw image file on the host's file
    /// system, ext4 inside, QEMU's cache and aio modes in the detail.
    VirtioBlk,
    /// A host directory shared with a guest over virtio-9p (QEMU's local
    /// backend), its msize in the detail.
    #[serde(rename = "virtio_9p")]
    Virtio9p,
    /// A host directory shared with a guest over virtiofs (FUSE on a
    /// vhost-user-fs device, served by a virtiofsd per guest), its cache
    /// mode in the detail.
    Virtiofs,
    /// A host directory bind-mounted into gVisor's sandbox: the Sentry
    /// reaches it through the gofer process, never by its own system calls.
    GoferVolume,
    /// runsc's own overlay on the sandbox's root (`--overlay2=root:memory`):
    /// writes go to a file system in the Sentry's memory, the image below
    /// it read through the gofer.
    SandboxOverlay,
    /// The host's overlayfs root (`--profile docker`), served to gVisor's
    /// Sentry by the gofer.
    GoferRoot,
}

impl StorageKind {
    /// Words for the report and progress lines.
    pub fn describe(self) -> &'static str {
        match self {
            StorageKind::HostDirectory => "host directory",
            StorageKind::Volume => "volume (host directory bind-mounted)",
            StorageKind::ContainerRoot => "container's writable root",
            StorageKind::VirtioBlk => "virtio-blk disk (raw image file on the host)",
            StorageKind::Virtio9p => "host directory over virtio-9p",
            StorageKind::Virtiofs => "host directory over virtiofs",
            StorageKind::GoferVolume => "volume (host directory bind-mounted, served by gVisor's gofer)",
            StorageKind::SandboxOverlay => "sandbox's writable root (runsc --overlay2=root:memory, in the Sentry's memory)",
            StorageKind::GoferRoot => "container's writable root (the host's overlayfs, served by gVisor's gofer)",
        }
    }

    /// Whether the path drops the agent's O_DIRECT before the host, so the
    /// host's page cache serves the "direct" metrics: QEMU's 9p server,
    /// virtiofsd (its default), and runsc's gofer (its host descriptors
    /// lack O_DIRECT; `env::runsc::GOFER_DETAIL`).
    pub fn drops_o_direct(self) -> bool {
        matches!(self, StorageKind::Virtio9p | StorageKind::Virtiofs | StorageKind::GoferVolume | StorageKind::GoferRoot)
    }
}

/// Which storage path the containers' fs.* metrics use (`isobench run
/// --container-storage`): isobench's container and every peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ContainerStorage {
    /// A host directory under the run's data directory, bind-mounted on /mnt.
    #[default]
    Volume,
    /// The container's /tmp: a tmpfs over the read-only image, or the
    /// overlay root under `--profile docker`.
    Root,
}

impl ContainerStorage {
    pub const ALL: [ContainerStorage; 2] = [ContainerStorage::Volume, ContainerStorage::Root];

    pub fn as_str(self) -> &'static str {
        match self {
            ContainerStorage::Volume => "volume",
            ContainerStorage::Root => "root",
        }
    }
}

impl std::str::FromStr for ContainerStorage {
    type Err = String;

    fn from_str(s: &str) -> Result<ContainerStorage, String> {
        ContainerStorage::ALL.into_iter().find(|c| c.as_str() == s.trim()).ok_or_else(|| {
            format!("unknown container storage {s:?}; choose volume (a host directory bind-mounted) or root (the container's writable root)")
        })
    }
}

/// Which storage path the vm's fs.* metrics use (`isobench run
/// --vm-storage`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VmStorage {
    /// An ext4 data disk on virtio-blk, a raw image under the run's data
    /// directory.
    #[default]
    Disk,
    /// A directory under the run's data directory shared over virtio-9p.
    NineP,
    /// The same directory shared over virtiofs, served by virtiofsd.
    Virtiofs,
}

impl VmStorage {
    pub const ALL: [VmStorage; 3] = [VmStorage::Disk, VmStorage::NineP, VmStorage::Virtiofs];

    pub fn as_str(self) -> &'static str {
        match self {
            VmStorage::Disk => "disk",
            VmStorage::NineP => "9p",
            VmStorage::Virtiofs => "virtiofs",
        }
    }
}

impl std::str::FromStr for VmStorage {
    type Err = String;

    fn from_str(s: &str) -> Result<VmStorage, String> {
        VmStorage::ALL
            .into_iter()
            .find(|c| c.as_str() == s.trim())
            .ok_or_else(|| format!("unknown vm storage {s:?}; choose disk (an ext4 image on virtio-blk), 9p (a host directory over virtio-9p) or virtiofs (the same over virtiofs)"))
    }
}

/// Where an environment's agent makes its fs.* files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoragePath {
    pub kind: StorageKind,
    /// The directory as the agent sees it (`RunRequest::data_dir`).
    pub agent_dir: String,
    /// The host directory behind it, where there is one (for a virtio-blk
    /// disk, the image file).
    pub host_dir: Option<PathBuf>,
    /// How the path is attached, where that decides its speed: QEMU's
    /// `cache=none,aio=io_uring`, a 9p `msize=512000`, virtiofsd's
    /// `cache=none`.
    pub detail: Option<String>,
    /// The file system as the environment mounted it, where the agent's
    /// statfs(2) cannot tell (a 9p mount reports the host's file system).
    pub fs: Option<String>,
}

/// The run's data directory, `<base>/isobench-<pid>-data`, and its link in
/// the temp dir; both removed on drop.
#[derive(Debug)]
pub struct RunData {
    dir: PathBuf,
    link: PathBuf,
}

impl RunData {
    /// Makes the run's data directory under `base` (which must exist) and
    /// its link in the temp dir. Errors name `base`.
    pub fn create(base: &Path) -> Result<RunData, StorageError> {
        RunData::create_in(base, &std::env::temp_dir())
    }

    /// [`create`](Self::create) with the link in `temp` (tests).
    pub fn create_in(base: &Path, temp: &Path) -> Result<RunData, StorageError> {
        let io = |source| StorageError::Io { dir: base.display().to_string(), source };
        if !base.is_dir() {
            return Err(StorageError::NotADirectory(base.display().to_string()));
        }
        let base = base.canonicalize().map_err(io)?;
        let dir = base.join(leftovers::name(DATA_WHAT));
        let link = temp.join(leftovers::name(LINK_WHAT));
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&dir, &link).map_err(io)?;
        if let Err(e) = std::fs::create_dir(&dir) {
            let _ = std::fs::remove_file(&link);
            return Err(io(e));
        }
        Ok(RunData { dir, link })
    }

    /// The run's data directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// A new subdirectory for environment `name`.
    pub fn subdir(&self, name: &str) -> Result<PathBuf, StorageError> {
        let d = self.dir.join(name);
        std::fs::create_dir_all(&d).map_err(|source| StorageError::Io { dir: d.display().to_string(), source })?;
        Ok(d)
    }
}

impl Drop for RunData {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        let _ = std::fs::remove_file(&self.link);
    }
}

/// Removes the data directories of dead runs whose links are in `temp`, and
/// the links. A link is followed only to a directory whose own name is the
/// `isobench-<pid>-data` of the link's pid: never anything else.
pub fn sweep(temp: &Path) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    let is_link = |name: &str| leftovers::owner(name).filter(|(_, rest)| *rest == LINK_WHAT).map(|(pid, _)| pid);
    leftovers::sweep(temp, is_link, |entry| {
        let Ok(target) = std::fs::read_link(entry.path()) else { return false };
        let pid = entry.file_name().to_str().and_then(leftovers::owner_pid);
        let expected = pid.map(|p| format!("{}{p}-{DATA_WHAT}", leftovers::PREFIX));
        let ours = target.file_name().and_then(|n| n.to_str()) == expected.as_deref();
        if ours && std::fs::symlink_metadata(&target).is_ok_and(|m| m.is_dir()) && std::fs::remove_dir_all(&target).is_ok() {
            removed.push(target);
        }
        std::fs::remove_file(entry.path()).is_ok()
    });
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pid that cannot exist (above pid_max's hard limit of 2^22).
    const DEAD: i32 = 4_194_398;

    #[test]
    fn a_run_data_dir_and_its_link_go_with_the_run() {
        let base = tempfile::tempdir().unwrap();
        let temp = tempfile::tempdir().unwrap();
        let d = RunData::create_in(base.path(), temp.path()).unwrap();
        let sub = d.subdir("native").unwrap();
        std::fs::write(sub.join("f"), "x").unwrap();
        assert_eq!(std::fs::read_dir(temp.path()).unwrap().count(), 1);
        assert!(sweep(temp.path()).is_empty(), "a live run's data stays");
        drop(d);
        assert_eq!(std::fs::read_dir(base.path()).unwrap().count(), 0);
        assert_eq!(std::fs::read_dir(temp.path()).unwrap().count(), 0);
        let e = RunData::create_in(&base.path().join("nope"), temp.path()).unwrap_err().to_string();
        assert_eq!(e, format!("data directory {}/nope is not a directory", base.path().display()));
    }

    #[test]
    fn a_dead_runs_data_dir_is_swept_through_its_link_and_nothing_else() {
        let base = tempfile::tempdir().unwrap();
        let temp = tempfile::tempdir().unwrap();
        let dead = base.path().join(format!("isobench-{DEAD}-data"));
        std::fs::create_dir_all(dead.join("container")).unwrap();
        std::os::unix::fs::symlink(&dead, temp.path().join(format!("isobench-{DEAD}-datalink"))).unwrap();
        // A planted link to something that is not a data dir: only the link goes.
        let precious = base.path().join("precious");
        std::fs::create_dir(&precious).unwrap();
        std::os::unix::fs::symlink(&precious, temp.path().join(format!("isobench-{}-datalink", DEAD - 1))).unwrap();
        let removed = sweep(temp.path());
        assert_eq!(removed, std::slice::from_ref(&dead));
        assert!(!dead.exists() && precious.exists());
        assert_eq!(std::fs::read_dir(temp.path()).unwrap().count(), 0);
    }
}
