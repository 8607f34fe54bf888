//! The guest's disks: an ext4 image made from a directory without root
//! (e2fsprogs' `mkfs.ext4 -d DIR`, the way Debian's and Yocto's image tools
//! populate a file system from a staging tree), for the vm's data disk
//! (empty) and its root disk (a distribution rootfs from the cache, imaged
//! once and cached next to it); and which of QEMU's cache and aio modes a
//! disk image's host file system takes, asked of QEMU itself (it opens the
//! image with those modes and quits).
//!
//! Images are preallocated (fallocate(2)), so a host file system without
//! room fails here, naming the directory and the space, and never as an
//! I/O error inside the guest; mke2fs is told not to discard them again.
//! A cached root image is built under a temp name holding the builder's pid
//! (`.tmp-<name>-<pid>.ext4`, removed by [`sweep`] once that pid is gone)
//! and renamed into place; QEMU attaches it with `snapshot=on`, so guests
//! write to a temporary overlay QEMU unlinks as it opens it, never to the
//! cached image.

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use isobench_workloads::metrics::fs::{FSYNC_FILE_BYTES, RAND_FILE_BYTES, SEQ_FILE_BYTES};

#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    #[error("mkfs.ext4 not found; run scripts/setup (Debian: apt-get install e2fsprogs)")]
    NoMkfs,
    #[error("mkfs.ext4 {image} failed ({status}): {stderr}")]
    Mkfs { image: String, status: String, stderr: String },
    #[error("data directory {dir}: needs {need_mib} MiB free, {free_mib} MiB free")]
    Space { dir: String, need_mib: u64, free_mib: u64 },
    #[error("QEMU opens {image} with none of the cache/aio modes tried ({tried}): {last}")]
    NoModes { image: String, tried: String, last: String },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
}

fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> DiskError {
    let context = context.into();
    move |source| DiskError::Io { context, source }
}

/// mke2fs as ext4.
pub const MKFS: &str = "mkfs.ext4";

/// What an ext4 file system of the data disk's size spends beside the
/// metric's file: its journal (4 MiB at this size), inode tables, the 5 %
/// reserved blocks and the 1 MiB margin the fs.* metrics ask for.
const EXT4_OVERHEAD_BYTES: u64 = 32 << 20;

/// The data disk's size: the largest file an fs.* metric makes (they run
/// one at a time and remove their files) plus ext4's own overhead.
pub const DATA_DISK_BYTES: u64 = max3(SEQ_FILE_BYTES, RAND_FILE_BYTES, FSYNC_FILE_BYTES) + EXT4_OVERHEAD_BYTES;

const fn max3(a: u64, b: u64, c: u64) -> u64 {
    let ab = if a > b { a } else { b };
    if ab > c {
        ab
    } else {
        c
    }
}

/// Room a root image leaves beside the tree's files: what applications
/// write while they run (logs, dumps) goes to QEMU's snapshot overlay but
/// must fit the file system; also ext4's journal and inode tables.
const ROOT_SLACK_BYTES: u64 = 128 << 20;
/// ext4 needs more than the files' sizes (block rounding, directories,
/// metadata): the tree's size is scaled by this before the slack is added.
const ROOT_SIZE_FACTOR: f64 = 1.25;

fn mib(bytes: u64) -> u64 {
    bytes.div_ceil(1 << 20)
}

/// Bytes free for an unprivileged writer on the file system of `dir`.
pub fn free_bytes(dir: &Path) -> Result<u64, DiskError> {
    let st = nix::sys::statvfs::statvfs(dir).map_err(|e| DiskError::Io { context: format!("statvfs {}", dir.display()), source: e.into() })?;
    Ok(st.blocks_available() as u64 * st.fragment_size() as u64)
}

/// Makes `image` (which must not exist) an ext4 file system of `bytes`,
/// holding a copy of `from`'s tree when given (owners, modes, links and
/// device nodes as they are), labelled `label`. The file is preallocated
/// first: a directory without the room gets [`DiskError::Space`].
pub fn make_ext4(image: &Path, from: Option<&Path>, bytes: u64, label: &str) -> Result<(), DiskError> {
    let dir = image.parent().unwrap_or(Path::new("."));
    let free = free_bytes(dir)?;
    if free < bytes {
        return Err(DiskError::Space { dir: dir.display().to_string(), need_mib: mib(bytes), free_mib: free >> 20 });
    }
    let file = std::fs::OpenOptions::new().write(true).create_new(true).open(image).map_err(io_err(format!("create {}", image.display())))?;
    let made = (|| {
        match nix::fcntl::fallocate(std::os::fd::AsRawFd::as_raw_fd(&file), nix::fcntl::FallocateFlags::empty(), 0, bytes as i64) {
            Ok(()) => {}
            Err(nix::errno::Errno::ENOSPC) => {
                return Err(DiskError::Space { dir: dir.display().to_string(), need_mib: mib(bytes), free_mib: free_bytes(dir)? >> 20 })
            }
            // A file system without fallocate(2) (9p, some FUSE): a sparse
            // file of the right size; the space check above still stands.
            Err(nix::errno::Errno::EOPNOTSUPP) => file.set_len(bytes).map_err(io_err(format!("size {}", image.display())))?,
            Err(e) => return Err(DiskError::Io { context: format!("fallocate {}", image.display()), source: e.into() }),
        }
        drop(file);
        mkfs(image, from, label)
    })();
    if made.is_err() {
        let _ = std::fs::remove_file(image);
    }
    made
}

/// The mkfs.ext4 command line: quiet, no questions, no discard of the
/// preallocated blocks, the label, and `-d` with the tree when there is one.
fn mkfs_command(mkfs: &Path, image: &Path, from: Option<&Path>, label: &str) -> Command {
    let mut cmd = Command::new(mkfs);
    cmd.args(["-q", "-F", "-E", "nodiscard", "-L", label]);
    if let Some(from) = from {
        cmd.arg("-d").arg(from);
    }
    cmd.arg(image);
    cmd
}

fn find_mkfs() -> Result<PathBuf, DiskError> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|d| d.join(MKFS))
        .find(|p| p.is_file())
        .ok_or(DiskError::NoMkfs)
}

fn mkfs(image: &Path, from: Option<&Path>, label: &str) -> Result<(), DiskError> {
    let mkfs = find_mkfs()?;
    let out = mkfs_command(&mkfs, image, from, label).stdin(Stdio::null()).output().map_err(io_err(format!("run {}", mkfs.display())))?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stderr = stderr.lines().rfind(|l| !l.trim().is_empty()).unwrap_or("").trim().to_string();
    Err(DiskError::Mkfs { image: image.display().to_string(), status: out.status.to_string(), stderr })
}

/// The cache and aio modes QEMU opens a disk image with (`-drive
/// cache=...,aio=...`), and why when not the first choice.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DiskModes {
    pub cache: &'static str,
    pub aio: &'static str,
    /// Why the preferred modes were not used; `None` when they were.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
}

impl DiskModes {
    /// `cache=none,aio=io_uring`, for rows and run.json.
    pub fn describe(&self) -> String {
        format!("cache={},aio={}", self.cache, self.aio)
    }
}

/// Modes in order of preference: O_DIRECT on the host (`cache=none`, the
/// host's page cache out of the guest's I/O path, as Felter et al. and
/// Firecracker measure) with io_uring, then Linux native AIO, then the
/// host's page cache with QEMU's thread pool, which every file system takes.
pub const MODE_PREFERENCE: [(&str, &str); 3] = [("none", "io_uring"), ("none", "native"), ("writeback", "threads")];

/// The first of [`MODE_PREFERENCE`] QEMU opens `image` with. QEMU is started
/// paused, with no board (`-M none`), the drive and a monitor on stdin that
/// says `quit`: it exits 0 when it opened the drive, 1 with the reason when
/// not (a file system without O_DIRECT, no io_uring).
pub fn probe_modes(qemu: &Path, image: &Path) -> Result<DiskModes, DiskError> {
    let mut failures = Vec::new();
    for (cache, aio) in MODE_PREFERENCE {
        let drive = format!("file={},if=none,id=probe,format=raw,cache={cache},aio={aio}", image.display());
        let mut child = Command::new(qemu)
            .args(["-M", "none", "-nodefaults", "-no-user-config", "-display", "none", "-S", "-monitor", "stdio", "-drive", &drive])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(io_err(format!("run {}", qemu.display())))?;
        if let Some(mut stdin) = child.stdin.take() {
            use std::io::Write;
            let _ = stdin.write_all(b"quit\n");
        }
        let out = child.wait_with_output().map_err(io_err(format!("wait for {}", qemu.display())))?;
        if out.status.success() {
            let fallback = (!failures.is_empty()).then(|| failures.join("; "));
            return Ok(DiskModes { cache, aio, fallback });
        }
        let why = String::from_utf8_lossy(&out.stderr).lines().next_back().unwrap_or("").trim().to_string();
        failures.push(format!("cache={cache},aio={aio}: {why}"));
    }
    let tried = MODE_PREFERENCE.iter().map(|(c, a)| format!("cache={c},aio={a}")).collect::<Vec<_>>().join(", ");
    Err(DiskError::NoModes { image: image.display().to_string(), tried, last: failures.pop().unwrap_or_default() })
}

/// Files whose (inode, size, mtime) stand for a rootfs tree's build: the
/// tree itself, /etc, the package database (packages added), and
/// isobench's agent and no-op (refreshed by rename when the workload build
/// changes).
const ROOT_IDENTITY: [&str; 5] = [".", "etc", "var/lib/dpkg/status", "isobench-agent", "noop"];

/// A short key for `dir`'s build: an FNV-1a hash of its path and of
/// [`ROOT_IDENTITY`]'s inode, size and mtime.
pub fn tree_key(dir: &Path) -> String {
    use std::os::unix::fs::MetadataExt;
    let mut h: u64 = 0xCBF2_9CE4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            h = (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01B3);
        }
    };
    feed(dir.as_os_str().as_encoded_bytes());
    for rel in ROOT_IDENTITY {
        let m = std::fs::symlink_metadata(dir.join(rel));
        let stamp = m.map(|m| format!("{rel}:{}:{}:{}.{}", m.ino(), m.size(), m.mtime(), m.mtime_nsec())).unwrap_or_else(|_| format!("{rel}:-"));
        feed(stamp.as_bytes());
    }
    format!("{h:016x}")
}

/// Bytes in the files under `dir` (not following links).
fn tree_bytes(dir: &Path) -> io::Result<u64> {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)? {
            let e = e?;
            let t = e.file_type()?;
            if t.is_dir() {
                stack.push(e.path());
            } else if t.is_file() {
                total += e.metadata()?.len();
            }
        }
    }
    Ok(total)
}

/// The root image of the rootfs tree `dir`: `<dir>.<key>.ext4` beside it,
/// built when missing (under a temp name, then renamed); older images of
/// the same tree are removed once the new one is in place.
pub fn root_image(dir: &Path) -> Result<PathBuf, DiskError> {
    let parent = dir.parent().unwrap_or(Path::new("."));
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "root".into());
    let image = parent.join(format!("{name}.{}.ext4", tree_key(dir)));
    if image.is_file() {
        return Ok(image);
    }
    crate::leftovers::mark_owner();
    let tmp = parent.join(format!(".tmp-{name}-{}.ext4", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let used = tree_bytes(dir).map_err(io_err(format!("measure {}", dir.display())))?;
    let bytes = ((used as f64 * ROOT_SIZE_FACTOR) as u64 + ROOT_SLACK_BYTES).next_multiple_of(1 << 20);
    eprintln!("isobench: imaging {} as ext4 ({} MiB) for the vm's root disk", dir.display(), mib(bytes));
    make_ext4(&tmp, Some(dir), bytes, "isobench-root")?;
    if let Err(e) = std::fs::rename(&tmp, &image) {
        let _ = std::fs::remove_file(&tmp);
        return Err(io_err(format!("rename {} into place", tmp.display()))(e));
    }
    // Images of earlier builds of this tree: nothing names them any more.
    if let Ok(entries) = std::fs::read_dir(parent) {
        let prefix = format!("{name}.");
        for e in entries.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.starts_with(&prefix) && n.ends_with(".ext4") && e.path() != image && n.len() == prefix.len() + 16 + ".ext4".len() {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    Ok(image)
}

/// The pid in a root image's temp name (`.tmp-<name>-<pid>.ext4`).
fn temp_owner_pid(name: &str) -> Option<i32> {
    name.strip_prefix(".tmp-")?.strip_suffix(".ext4")?.rsplit_once('-')?.1.parse().ok()
}

/// Removes root images half-built by isobench processes that are gone
/// from the rootfs cache (`<cache>/rootfs`). Called at every start.
pub fn sweep() -> Vec<PathBuf> {
    sweep_in(&crate::paths::cache_dir().join("rootfs"))
}

fn sweep_in(dir: &Path) -> Vec<PathBuf> {
    crate::leftovers::sweep(dir, temp_owner_pid, |e| e.file_type().is_ok_and(|t| t.is_file()) && std::fs::remove_file(e.path()).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pid that cannot exist (above pid_max's hard limit of 2^22).
    const DEAD: i32 = 4_194_398;

    #[test]
    fn the_data_disk_holds_the_largest_fs_file_and_ext4s_overhead() {
        assert_eq!(DATA_DISK_BYTES, (32 << 20) + EXT4_OVERHEAD_BYTES);
        assert!(DATA_DISK_BYTES >= SEQ_FILE_BYTES.max(RAND_FILE_BYTES) + (1 << 20));
    }

    #[test]
    fn mkfs_gets_no_discard_the_label_and_the_tree() {
        let args = |from: Option<&Path>| {
            let c = mkfs_command(Path::new("/sbin/mkfs.ext4"), Path::new("/d/x.img"), from, "isobench-data");
            c.get_args().map(|a| a.to_string_lossy().into_owned()).collect::<Vec<_>>().join(" ")
        };
        assert_eq!(args(None), "-q -F -E nodiscard -L isobench-data /d/x.img");
        assert_eq!(args(Some(Path::new("/c/rootfs/debian-bookworm"))), "-q -F -E nodiscard -L isobench-data -d /c/rootfs/debian-bookworm /d/x.img");
    }

    #[test]
    fn an_image_is_made_from_a_tree_and_a_failed_one_leaves_nothing() {
        if find_mkfs().is_err() {
            eprintln!("skipped: no mkfs.ext4");
            return;
        }
        let base = tempfile::tempdir().unwrap();
        let tree = base.path().join("tree");
        std::fs::create_dir_all(tree.join("etc")).unwrap();
        std::fs::write(tree.join("etc/debian_version"), "12.9\n").unwrap();
        let image = base.path().join("root.ext4");
        make_ext4(&image, Some(&tree), 8 << 20, "isobench-root").unwrap();
        assert_eq!(std::fs::metadata(&image).unwrap().len(), 8 << 20);
        // debugfs (e2fsprogs) reads the file back out of the image, no mount.
        let cat = Command::new("debugfs").args(["-R", "cat /etc/debian_version"]).arg(&image).output();
        if let Ok(out) = cat {
            assert_eq!(String::from_utf8_lossy(&out.stdout), "12.9\n");
        }
        // An existing image is not overwritten; mkfs on a tree that does not exist fails and removes its file.
        assert!(matches!(make_ext4(&image, None, 8 << 20, "x"), Err(DiskError::Io { .. })));
        let bad = base.path().join("bad.ext4");
        let e = make_ext4(&bad, Some(&base.path().join("nope")), 8 << 20, "x").unwrap_err();
        assert!(matches!(e, DiskError::Mkfs { .. }), "{e}");
        assert!(!bad.exists());
    }

    #[test]
    fn a_disk_larger_than_the_free_space_is_refused_naming_the_directory() {
        let base = tempfile::tempdir().unwrap();
        let e = make_ext4(&base.path().join("x.img"), None, u64::MAX / 2, "x").unwrap_err().to_string();
        assert!(e.starts_with(&format!("data directory {}: needs ", base.path().display())), "{e}");
        assert!(e.ends_with(" MiB free"), "{e}");
        assert!(!base.path().join("x.img").exists());
    }

    #[test]
    fn the_tree_key_changes_with_the_agent_and_the_root_image_is_cached() {
        let base = tempfile::tempdir().unwrap();
        let tree = base.path().join("debian-test");
        std::fs::create_dir_all(tree.join("etc")).unwrap();
        std::fs::write(tree.join("noop"), "a").unwrap();
        let k1 = tree_key(&tree);
        assert_eq!(k1, tree_key(&tree));
        std::fs::write(tree.join("noop.new"), "bb").unwrap();
        std::fs::rename(tree.join("noop.new"), tree.join("noop")).unwrap();
        assert_ne!(k1, tree_key(&tree), "a refreshed no-op is a new build");
        if find_mkfs().is_err() {
            return;
        }
        let image = root_image(&tree).unwrap();
        assert_eq!(image, base.path().join(format!("debian-test.{}.ext4", tree_key(&tree))));
        let made = std::fs::metadata(&image).unwrap().modified().unwrap();
        assert_eq!(root_image(&tree).unwrap(), image);
        assert_eq!(std::fs::metadata(&image).unwrap().modified().unwrap(), made, "reused, not rebuilt");
        let names: Vec<_> = std::fs::read_dir(base.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 2, "the tree and one image, no temp file: {names:?}");
    }

    #[test]
    fn a_dead_builders_temp_image_is_swept_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let dead = dir.path().join(format!(".tmp-debian-bookworm-{DEAD}.ext4"));
        let live = dir.path().join(format!(".tmp-debian-bookworm-{}.ext4", std::process::id()));
        let image = dir.path().join("debian-bookworm.0123456789abcdef.ext4");
        for f in [&dead, &live, &image] {
            std::fs::write(f, "x").unwrap();
        }
        assert_eq!(sweep_in(dir.path()), vec![dead.clone()]);
        assert!(!dead.exists() && live.exists() && image.exists());
    }
}
