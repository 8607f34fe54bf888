//! Docker's overlayfs root (the `overlay` layer of `--profile docker`):
//! the image (the cached minimal rootfs, or the debian one) as the read-only
//! lowerdir, a per-container upperdir and workdir, and the merged view as
//! the container's `/`. This is what Docker's and containerd's `overlay2`
//! snapshotter and Podman's `overlay` driver mount (the kernel's
//! Documentation/filesystems/overlayfs.rst); a write to `/` inside lands in
//! the upper, never in the image.
//!
//! Everything is mounted by the container's init in its own mount namespace
//! before pivot_root, from steps prepared in the parent ([`OverlayStage::steps`]),
//! so nothing of it is visible on the host and it all goes when the mount
//! namespace does:
//!
//! - [`UpperKind::Tmpfs`] (the default): the child mounts a tmpfs on the
//!   stage's `scratch` directory and makes `upper` and `work` in it. Each
//!   container's tmpfs is its own (its own mount namespace), so one stage
//!   serves every container of a launch spec, and the upper vanishes with
//!   the container.
//! - [`UpperKind::Disk`]: the upper on the filesystem of the temp dir (as
//!   Docker's `/var/lib/docker/overlay2/<id>/diff`): the child makes a
//!   directory of its own under `disk/` with mkdtemp(3) (so containers of
//!   one spec never share an upper), enters it, makes `upper` and `work`,
//!   and names them relative to it in the mount options, as
//!   containers/storage does. They stay until the stage is dropped.
//!
//! The stage is a pid-stamped temp dir (`isobench-<pid>-overlay-*`, see
//! [`leftovers`](crate::leftovers)), removed with the launch spec and swept
//! at the next start when isobench was killed.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::mount::MsFlags;

use super::mount::Step;
use super::{io_err, RootfsError};
use crate::leftovers;

/// Where a container's upperdir and workdir live (`--overlay-upper`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum UpperKind {
    /// A tmpfs of the container's own, gone with it.
    #[default]
    Tmpfs,
    /// A directory on the temp dir's filesystem, removed after the run.
    Disk,
}

isobench_workloads::named_values!(UpperKind, "overlay upper", { Tmpfs = "tmpfs", Disk = "disk" });

/// Mode of the upper's root directory, as Docker's overlay2 makes `diff`.
const UPPER_MODE: u32 = 0o755;
/// Mode of the workdir (overlayfs makes its own `work/work` inside, 000).
const WORK_MODE: u32 = 0o700;

/// The mkdtemp(3) template of a container's directory on disk, relative to
/// the stage; the child copies it to its stack and fills in the X's.
const DISK_TEMPLATE: &str = "disk/c-XXXXXX";

/// A container's upper on a tmpfs: "mode" as Docker's upper root; no size
/// limit beyond the kernel's default (half of memory), as Docker sets none.
const SCRATCH_TMPFS_OPTS: &str = "mode=755";

/// The overlay of one launch spec: the stage directory and the steps that
/// mount the merged root in a child.
#[derive(Debug)]
pub struct OverlayStage {
    dir: tempfile::TempDir,
    lower: PathBuf,
    upper: UpperKind,
}

impl OverlayStage {
    /// A stage for `lower` (absolute, canonical: the image), with `merged/`
    /// (the container's root, a mount point in each child) and `scratch/`
    /// or `disk/` for the upper.
    pub fn prepare(lower: &Path, upper: UpperKind) -> Result<OverlayStage, RootfsError> {
        let dir = tempfile::Builder::new()
            .prefix(&leftovers::temp_prefix("overlay"))
            .tempdir()
            .map_err(io_err("make the overlay's stage directory in the temp dir"))?;
        for sub in ["merged", "scratch", "disk"] {
            std::fs::create_dir(dir.path().join(sub)).map_err(io_err(format!("mkdir {}", dir.path().join(sub).display())))?;
        }
        Ok(OverlayStage { dir, lower: lower.to_path_buf(), upper })
    }

    /// The merged root every child mounts: the rootfs its plan binds and
    /// pivots into.
    pub fn merged(&self) -> PathBuf {
        self.dir.path().join("merged")
    }

    pub fn lower(&self) -> &Path {
        &self.lower
    }

    pub fn upper(&self) -> UpperKind {
        self.upper
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The filesystem type of the upper's directory (`tmpfs` for a tmpfs
    /// upper; for `disk`, what the temp dir is on, e.g. ext4, or tmpfs where
    /// /tmp is one), as statfs(2) says.
    pub fn upper_fs(&self) -> String {
        match self.upper {
            UpperKind::Tmpfs => "tmpfs".into(),
            UpperKind::Disk => fs_type(&self.dir.path().join("disk")),
        }
    }

    /// The steps a child runs, right after making its mounts private and
    /// before binding the merged root: the upper's directories, then the
    /// overlay mount on `merged`.
    pub fn steps(&self) -> Result<Vec<Step>, RootfsError> {
        let path = |p: &Path| CString::new(p.as_os_str().as_bytes()).map_err(|_| RootfsError::Nul(p.to_path_buf()));
        let lower = self.lower.to_str().filter(|s| !s.contains([',', ':'])).ok_or_else(|| RootfsError::OverlayPath(self.lower.clone()))?;
        let merged = path(&self.merged())?;
        let overlay = |upper: &str, work: &str| -> Result<Step, RootfsError> {
            let data = format!("lowerdir={lower},upperdir={upper},workdir={work}");
            Ok(Step::Mount {
                source: Some(c("overlay")),
                target: merged.clone(),
                fstype: Some(c("overlay")),
                flags: MsFlags::empty(),
                data: Some(CString::new(data).map_err(|_| RootfsError::Nul(self.lower.clone()))?),
            })
        };
        let dir = self.dir.path().to_str().filter(|s| !s.contains([',', ':'])).ok_or_else(|| RootfsError::OverlayPath(self.dir.path().into()))?;
        Ok(match self.upper {
            UpperKind::Tmpfs => {
                let scratch = format!("{dir}/scratch");
                vec![
                    Step::Mount {
                        source: Some(c("tmpfs")),
                        target: c(&scratch),
                        fstype: Some(c("tmpfs")),
                        flags: MsFlags::MS_NOSUID,
                        data: Some(c(SCRATCH_TMPFS_OPTS)),
                    },
                    Step::Mkdir { path: c(&format!("{scratch}/upper")), mode: UPPER_MODE },
                    Step::Mkdir { path: c(&format!("{scratch}/work")), mode: WORK_MODE },
                    overlay(&format!("{scratch}/upper"), &format!("{scratch}/work"))?,
                ]
            }
            UpperKind::Disk => vec![
                Step::EnterScratchDir { template: c(&format!("{dir}/{DISK_TEMPLATE}")) },
                Step::Mkdir { path: c("upper"), mode: UPPER_MODE },
                Step::Mkdir { path: c("work"), mode: WORK_MODE },
                overlay("upper", "work")?,
            ],
        })
    }

    /// What run.json records of the layer (`metadata.profile.overlay`).
    pub fn record(&self) -> OverlayRecord {
        OverlayRecord {
            lowerdir: self.lower.clone(),
            upper: self.upper,
            upper_fs: self.upper_fs(),
            stage: self.dir.path().to_path_buf(),
            mount_options: match self.upper {
                UpperKind::Tmpfs => format!("lowerdir={},upperdir=<tmpfs>/upper,workdir=<tmpfs>/work", self.lower.display()),
                UpperKind::Disk => format!("lowerdir={},upperdir=<stage>/{DISK_TEMPLATE}/upper,workdir=…/work", self.lower.display()),
            },
        }
    }
}

/// The overlay layer's settings as run.json records them.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct OverlayRecord {
    /// The image: the read-only lower layer.
    pub lowerdir: PathBuf,
    /// `tmpfs` or `disk` (`--overlay-upper`).
    pub upper: UpperKind,
    /// The upper's filesystem type as statfs(2) names it.
    pub upper_fs: String,
    /// The pid-stamped stage directory (gone after the run).
    pub stage: PathBuf,
    /// The overlay mount's options, per container.
    pub mount_options: String,
}

fn c(s: &str) -> CString {
    CString::new(s).expect("a path checked for NUL bytes")
}

/// statfs(2)'s f_type of `path` by name, or its hex number.
fn fs_type(path: &Path) -> String {
    use nix::sys::statfs::{statfs, EXT4_SUPER_MAGIC, TMPFS_MAGIC};
    match statfs(path) {
        Ok(s) if s.filesystem_type() == TMPFS_MAGIC => "tmpfs".into(),
        Ok(s) if s.filesystem_type() == EXT4_SUPER_MAGIC => "ext4".into(),
        Ok(s) => format!("{:#x}", s.filesystem_type().0),
        Err(e) => format!("unknown ({e})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::rootfs::apply;
    use crate::container::syscall::recording::Recorder;

    #[test]
    fn tmpfs_upper_mounts_a_tmpfs_then_the_overlay_on_merged() {
        let stage = OverlayStage::prepare(Path::new("/cache/rootfs/abc"), UpperKind::Tmpfs).unwrap();
        let sys = Recorder::default();
        apply(&stage.steps().unwrap(), &sys).unwrap();
        let d = stage.dir().display().to_string();
        assert_eq!(
            sys.lines(),
            [
                format!("mount tmpfs {d}/scratch tmpfs MS_NOSUID mode=755"),
                format!("mkdir {d}/scratch/upper 755"),
                format!("mkdir {d}/scratch/work 700"),
                format!("mount overlay {d}/merged overlay  lowerdir=/cache/rootfs/abc,upperdir={d}/scratch/upper,workdir={d}/scratch/work"),
            ]
        );
        assert_eq!(stage.upper_fs(), "tmpfs");
        assert!(stage.merged().is_dir());
        let dir = stage.dir().to_path_buf();
        drop(stage);
        assert!(!dir.exists(), "the stage goes with the spec");
    }

    #[test]
    fn disk_upper_is_a_fresh_directory_per_container() {
        let stage = OverlayStage::prepare(Path::new("/img"), UpperKind::Disk).unwrap();
        let steps = stage.steps().unwrap();
        let sys = Recorder::default();
        apply(&steps, &sys).unwrap();
        let d = stage.dir().display().to_string();
        let lines = sys.lines();
        assert_eq!(lines[0], format!("mkdtemp+chdir {d}/disk/c-XXXXXX"));
        assert_eq!(lines[3], format!("mount overlay {d}/merged overlay  lowerdir=/img,upperdir=upper,workdir=work"));
        assert_eq!(steps[0].to_string(), format!("make a directory of its own under {d}/disk and enter it"));
    }

    #[test]
    fn a_lower_the_mount_options_cannot_carry_is_refused() {
        let stage = OverlayStage::prepare(Path::new("/a,b"), UpperKind::Tmpfs).unwrap();
        assert!(matches!(stage.steps(), Err(RootfsError::OverlayPath(_))));
        assert_eq!("disk".parse::<UpperKind>(), Ok(UpperKind::Disk));
        assert!("zfs".parse::<UpperKind>().unwrap_err().contains("tmpfs"));
    }
}
