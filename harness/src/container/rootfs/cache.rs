//! The minimal rootfs, built once and cached ([`CachedRootfs`]), as the
//! guest image is (scripts/build-guest): content-addressed by what goes into
//! it, in `<cache>/rootfs/minimal-<hash>/`, where `<hash>` is the start of the
//! sha256 of the layout's version, the three workload binaries and the
//! static busybox (when the host has one). A container binds it read-only
//! and gets a tmpfs on /tmp for what it writes
//! ([`mount_plan_with`](super::mount_plan_with)), so an entry is never
//! written once it is in place, and `isobench exec` and the container
//! environment pay the launch only.
//!
//! Finding the entry must cost less than the launch it serves, so its hash
//! is not recomputed every time: an index (`.minimal-index/<key>`, a symlink
//! to the entry's name) is keyed by the inputs' paths and `stat` (device,
//! inode, size, modification and change times), as ccache's direct mode and
//! make trust them; a rebuilt binary has new times, so a new key, and its
//! content is hashed again (an identical build finds its old entry).
//!
//! An entry is built under a pid-stamped temp name (`.tmp-minimal-<hash>-
//! <seq>-<pid>`) and renamed into place; of concurrent builders one rename
//! wins and the others drop their copy and use it. A builder killed midway
//! leaves its temp entry, which the next start's sweep ([`sweep`]) removes
//! once its pid is gone. After a build the oldest entries beyond [`KEEP`]
//! are pruned, never one a live process uses: each user holds a shared
//! flock(2) on the entry's directory for as long as it uses it, and the
//! pruner removes only what it can lock exclusively, renaming it to a temp
//! name first so that no one can open it half-removed.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use sha2::{Digest, Sha256};

use super::build::{find_static_busybox, populate, BUSYBOX_CANDIDATES};
use super::{io_err, RootfsError};
use crate::workloads::Workloads;

/// Version of the tree [`populate`] makes; part of every hash, so a change
/// of the layout gets new entries.
pub const LAYOUT_VERSION: u32 = 1;
/// Entries kept after a build: the new one and the two newest others (as
/// scripts/build-guest keeps guest images), in case another run, or a
/// results folder, still names them.
pub const KEEP: usize = 3;
/// What every entry's name starts with.
pub const ENTRY_PREFIX: &str = "minimal-";
/// The index's directory (see the module comment).
pub const INDEX_DIR: &str = ".minimal-index";
/// Hex digits of sha256 in a name: 64 bits, plenty for a handful of entries.
const HASH_HEX: usize = 16;
/// Temp names: `.tmp-<entry>-<seq>-<pid>`, as the distribution rootfs's.
const TEMP_PREFIX: &str = ".tmp-";
/// Lookups retried when an entry vanished between finding and locking it
/// (pruned by another process).
const ATTEMPTS: usize = 4;
/// What the entry says about itself, for whoever looks at the cache.
pub const ABOUT_FILE: &str = "isobench-rootfs.txt";

/// Temp names of this process, told apart by a counter (threads may build).
static SEQ: AtomicU32 = AtomicU32::new(0);

/// `<cache>/rootfs`: where the entries are (beside the distribution rootfs).
pub fn cache_root() -> PathBuf {
    crate::paths::cache_dir().join("rootfs")
}

/// The minimal rootfs in the cache, in use: the entry's directory is locked
/// shared while this lives, so no pruner removes it.
#[derive(Debug)]
pub struct CachedRootfs {
    /// Canonical path of the entry.
    path: PathBuf,
    /// `minimal-<hash>`.
    name: String,
    /// The shared lock on the entry's directory.
    _in_use: Flock<File>,
}

impl CachedRootfs {
    /// The entry for `workloads` and this host's busybox in the default cache
    /// ([`cache_root`]), built first when there is none.
    pub fn prepare(workloads: &Workloads) -> Result<CachedRootfs, RootfsError> {
        let dir = cache_root();
        Self::prepare_in(&dir, workloads).map_err(|e| match e {
            // Another user's cache (a HOME inherited across su or setpriv):
            // say which variable picks another.
            RootfsError::Io { context, source } if source.kind() == io::ErrorKind::PermissionDenied => RootfsError::Io {
                context: format!("{context} (the cache is {}: set {} to a directory this user may write)", dir.display(), crate::paths::CACHE_ENV),
                source,
            },
            e => e,
        })
    }

    /// [`prepare`](Self::prepare) in the cache directory `dir`.
    pub fn prepare_in(dir: &Path, workloads: &Workloads) -> Result<CachedRootfs, RootfsError> {
        let key = stat_key(workloads)?;
        let index = dir.join(INDEX_DIR).join(&key);
        for _ in 0..ATTEMPTS {
            // The fast path: the index names the entry for these very files.
            if let Ok(name) = std::fs::read_link(&index) {
                if let Some(name) = name.to_str().filter(|n| is_entry_name(n)) {
                    if let Some(found) = open_entry(dir, name)? {
                        return Ok(found);
                    }
                }
            }
            let busybox = find_static_busybox();
            let name = format!("{ENTRY_PREFIX}{}", content_hash(workloads, busybox.as_deref())?);
            let found = match open_entry(dir, &name)? {
                Some(found) => found,
                None => {
                    build(dir, &name, workloads, busybox.as_deref())?;
                    prune(dir, &name);
                    match open_entry(dir, &name)? {
                        Some(found) => found,
                        // Pruned by another builder between our rename and
                        // our lock: start over.
                        None => continue,
                    }
                }
            };
            write_index(dir, &key, &name)?;
            return Ok(found);
        }
        Err(RootfsError::Io {
            context: format!("use the cached rootfs in {}", dir.display()),
            source: io::Error::other("its entry kept vanishing (pruned by other isobench processes); try again"),
        })
    }

    /// The entry's directory (absolute, canonical).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `minimal-<hash>`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the entry carries a static busybox (`/bin/busybox`).
    pub fn has_busybox(&self) -> bool {
        self.path.join("bin/busybox").is_file()
    }

    /// The host's busybox the entry's copy came from (its [`ABOUT_FILE`]
    /// says), if it has one.
    pub fn busybox(&self) -> Option<PathBuf> {
        let about = std::fs::read_to_string(self.path.join(ABOUT_FILE)).ok()?;
        about.lines().find_map(|l| l.strip_prefix("busybox: ")).filter(|p| *p != "none").map(PathBuf::from)
    }
}

fn is_entry_name(name: &str) -> bool {
    name.strip_prefix(ENTRY_PREFIX).is_some_and(|h| h.len() == HASH_HEX && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The index key of `workloads` and the busybox candidates as they are on
/// disk now: their paths and stat, not their bytes (see the module comment).
/// Errors: a workload binary cannot be stat'ed.
pub fn stat_key(workloads: &Workloads) -> Result<String, RootfsError> {
    let mut h = Sha256::new();
    h.update(format!("isobench minimal rootfs index v{LAYOUT_VERSION}\n"));
    let inputs = workloads.rootfs_files().map(|(p, _)| (p.to_path_buf(), true));
    for (path, required) in inputs.into_iter().chain(BUSYBOX_CANDIDATES.map(|c| (PathBuf::from(c), false))) {
        h.update(path.as_os_str().as_encoded_bytes());
        match std::fs::metadata(&path) {
            Ok(m) => h.update(format!(" {} {} {} {}.{} {}.{}\n", m.dev(), m.ino(), m.size(), m.mtime(), m.mtime_nsec(), m.ctime(), m.ctime_nsec())),
            Err(e) if !required && e.kind() == io::ErrorKind::NotFound => h.update(" absent\n"),
            Err(e) => return Err(io_err(format!("stat {}", path.display()))(e)),
        }
    }
    Ok(hex(&h.finalize()))
}

/// The entry's hash: the layout's version and every file that goes in, by
/// its name in the rootfs, its length and its bytes.
pub fn content_hash(workloads: &Workloads, busybox: Option<&Path>) -> Result<String, RootfsError> {
    let mut h = Sha256::new();
    h.update(format!("isobench minimal rootfs v{LAYOUT_VERSION}\n"));
    let files = workloads.rootfs_files().map(|(p, n)| (p.to_path_buf(), n));
    for (path, name) in files.into_iter().chain(busybox.map(|b| (b.to_path_buf(), "bin/busybox"))) {
        let mut f = File::open(&path).map_err(io_err(format!("open {}", path.display())))?;
        let len = f.metadata().map_err(io_err(format!("stat {}", path.display())))?.len();
        h.update(format!("{name} {len}\n"));
        let mut buf = vec![0u8; 1 << 16];
        loop {
            match f.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => h.update(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_err(format!("read {}", path.display()))(e)),
            }
        }
    }
    Ok(hex(&h.finalize()))
}

fn hex(digest: &[u8]) -> String {
    digest.iter().take(HASH_HEX / 2).map(|b| format!("{b:02x}")).collect()
}

/// Opens entry `name` of `dir` for use: its directory locked shared and
/// still under that name. `None` when there is no such entry, or it is being
/// pruned or was renamed away meanwhile.
fn open_entry(dir: &Path, name: &str) -> Result<Option<CachedRootfs>, RootfsError> {
    let path = dir.join(name);
    let fd = match std::fs::OpenOptions::new().read(true).custom_flags(libc::O_DIRECTORY).open(&path) {
        Ok(f) => f,
        Err(e) if matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory) => return Ok(None),
        Err(e) => return Err(io_err(format!("open {}", path.display()))(e)),
    };
    let lock = match Flock::lock(fd, FlockArg::LockSharedNonblock) {
        Ok(l) => l,
        // A pruner holds it exclusively: it is going away.
        Err((_, Errno::EWOULDBLOCK)) => return Ok(None),
        Err((_, e)) => return Err(RootfsError::Io { context: format!("lock {}", path.display()), source: e.into() }),
    };
    let held = lock.metadata().map_err(io_err(format!("stat {}", path.display())))?;
    match std::fs::metadata(&path) {
        Ok(now) if now.dev() == held.dev() && now.ino() == held.ino() => {}
        _ => return Ok(None),
    }
    // The fd's own path is canonical: one readlink instead of one per component.
    let path = std::fs::read_link(format!("/proc/self/fd/{}", lock.as_raw_fd()))
        .or_else(|_| path.canonicalize())
        .map_err(io_err(format!("rootfs {}", path.display())))?;
    Ok(Some(CachedRootfs { path, name: name.to_string(), _in_use: lock }))
}

/// `.tmp-<name>-<seq>-<pid>` in `dir`.
fn temp_path(dir: &Path, name: &str) -> PathBuf {
    // Swept by pid if we die midway: a sweep must know to look.
    crate::leftovers::mark_owner();
    dir.join(format!("{TEMP_PREFIX}{name}-{}-{}", SEQ.fetch_add(1, Ordering::Relaxed), std::process::id()))
}

/// Builds entry `name` under a temp name and renames it into place; when
/// another builder's rename came first, drops ours (theirs has the same
/// content).
fn build(dir: &Path, name: &str, workloads: &Workloads, busybox: Option<&Path>) -> Result<(), RootfsError> {
    std::fs::create_dir_all(dir).map_err(io_err(format!("create {}", dir.display())))?;
    let tmp = begin_build(dir, name)?;
    let made = populate(&tmp, workloads, busybox).and_then(|()| {
        let mut about = format!("built by isobench: the minimal rootfs, layout v{LAYOUT_VERSION}, shared read-only by containers\n");
        for (src, dest) in workloads.rootfs_files() {
            about += &format!("{dest}: {}\n", src.display());
        }
        about += &format!("busybox: {}\n", busybox.map_or("none".to_string(), |b| b.display().to_string()));
        std::fs::write(tmp.join(ABOUT_FILE), about).map_err(io_err(format!("write {ABOUT_FILE}")))
    });
    if let Err(e) = made {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    let dest = dir.join(name);
    match std::fs::rename(&tmp, &dest) {
        Ok(()) => Ok(()),
        // rename(2) onto a directory that is not empty: another builder won.
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOTEMPTY | libc::EEXIST)) => {
            let _ = std::fs::remove_dir_all(&tmp);
            Ok(())
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            Err(io_err(format!("rename {} to {}", tmp.display(), dest.display()))(e))
        }
    }
}

/// Creates the empty temp directory a build of entry `name` fills
/// (`.tmp-<name>-<seq>-<pid>`): what a builder killed midway leaves behind
/// for [`sweep`].
pub fn begin_build(dir: &Path, name: &str) -> Result<PathBuf, RootfsError> {
    let tmp = temp_path(dir, name);
    std::fs::create_dir(&tmp).map_err(io_err(format!("create {}", tmp.display())))?;
    Ok(tmp)
}

/// Points the index at `name` for `key`: a symlink made under a temp name
/// and renamed over the old one.
fn write_index(dir: &Path, key: &str, name: &str) -> Result<(), RootfsError> {
    let index = dir.join(INDEX_DIR);
    std::fs::create_dir_all(&index).map_err(io_err(format!("create {}", index.display())))?;
    let link = index.join(key);
    if std::fs::read_link(&link).is_ok_and(|t| t == Path::new(name)) {
        return Ok(());
    }
    let tmp = temp_path(&index, key);
    std::os::unix::fs::symlink(name, &tmp).map_err(io_err(format!("symlink {}", tmp.display())))?;
    std::fs::rename(&tmp, &link).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io_err(format!("rename {} to {}", tmp.display(), link.display()))(e)
    })
}

/// Removes the entries beyond the [`KEEP`] newest (`keep` always stays),
/// each only if no process uses it, and the index links to entries that are
/// gone. Best effort: a failure leaves the entry for the next build.
pub fn prune(dir: &Path, keep: &str) -> Vec<PathBuf> {
    let mut entries: Vec<(std::time::SystemTime, String)> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| {
                    let name = e.file_name().into_string().ok().filter(|n| is_entry_name(n) && n != keep)?;
                    let mtime = e.metadata().ok().filter(|m| m.is_dir())?.modified().ok()?;
                    Some((mtime, name))
                })
                .collect()
        })
        .unwrap_or_default();
    entries.sort_by(|a, b| b.cmp(a));
    let mut removed = Vec::new();
    for (_, name) in entries.into_iter().skip(KEEP.saturating_sub(1)) {
        if remove_unused(dir, &name) {
            removed.push(dir.join(&name));
        }
    }
    if let Ok(links) = std::fs::read_dir(dir.join(INDEX_DIR)) {
        for link in links.flatten() {
            if std::fs::read_link(link.path()).is_ok_and(|t| !dir.join(t).is_dir()) {
                let _ = std::fs::remove_file(link.path());
            }
        }
    }
    removed
}

/// Removes entry `name` if no process holds it: locked exclusively, renamed
/// to a temp name (swept if we are killed now), then deleted.
fn remove_unused(dir: &Path, name: &str) -> bool {
    let path = dir.join(name);
    let Ok(fd) = File::open(&path) else { return false };
    let Ok(_lock) = Flock::lock(fd, FlockArg::LockExclusiveNonblock) else { return false };
    let trash = temp_path(dir, name);
    if std::fs::rename(&path, &trash).is_err() {
        return false;
    }
    std::fs::remove_dir_all(&trash).is_ok()
}

/// Removes the temp entries (of the minimal rootfs and the /dev template)
/// and temp index links of builders that no longer run (killed midway), from the default cache ([`cache_root`]). Called at
/// every start (`cleanup::sweep`); a live builder's are never touched.
pub fn sweep() -> Vec<PathBuf> {
    sweep_in(&cache_root())
}

/// [`sweep`] in the cache directory `dir`.
pub fn sweep_in(dir: &Path) -> Vec<PathBuf> {
    // The distribution rootfs's temp dirs are its own sweep's (it unmounts first).
    let ours = |name: &str| {
        name.strip_prefix(TEMP_PREFIX).filter(|r| r.starts_with(ENTRY_PREFIX) || r.starts_with(super::dev::DEV_PREFIX)).and_then(temp_owner_pid)
    };
    let mut removed = crate::leftovers::sweep(dir, ours, |e| e.file_type().is_ok_and(|t| t.is_dir()) && std::fs::remove_dir_all(e.path()).is_ok());
    let link_owner = |name: &str| name.strip_prefix(TEMP_PREFIX).and_then(temp_owner_pid);
    removed.extend(crate::leftovers::sweep(&dir.join(INDEX_DIR), link_owner, |e| std::fs::remove_file(e.path()).is_ok()));
    removed
}

/// The pid at the end of a temp name's rest (`<what>-<seq>-<pid>`).
fn temp_owner_pid(rest: &str) -> Option<i32> {
    rest.rsplit_once('-')?.1.parse().ok().filter(|p| *p > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_temp_names_are_told_apart() {
        assert!(is_entry_name("minimal-0123456789abcdef"));
        assert!(!is_entry_name("minimal-0123"));
        assert!(!is_entry_name("minimal-0123456789abcdeg"));
        assert!(!is_entry_name("debian-bookworm"));
        let d = tempfile::tempdir().unwrap();
        let t = temp_path(d.path(), "minimal-0123456789abcdef");
        let n = t.file_name().unwrap().to_str().unwrap();
        assert!(n.starts_with(".tmp-minimal-0123456789abcdef-") && n.ends_with(&format!("-{}", std::process::id())), "{n}");
        assert_eq!(temp_owner_pid(n.strip_prefix(TEMP_PREFIX).unwrap()), Some(std::process::id() as i32));
    }

    #[test]
    fn a_dead_builders_temp_entry_and_link_are_swept_a_live_ones_kept() {
        /// A pid that cannot exist (above pid_max's hard limit of 2^22).
        const DEAD: i32 = 4_194_399;
        let d = tempfile::tempdir().unwrap();
        let dead = d.path().join(format!(".tmp-minimal-0123456789abcdef-0-{DEAD}"));
        let live = begin_build(d.path(), "minimal-0123456789abcdef").unwrap();
        let other = d.path().join(format!(".tmp-debian-bookworm-{DEAD}"));
        for p in [&dead, &other] {
            std::fs::create_dir_all(p.join("bin")).unwrap();
        }
        std::fs::create_dir(d.path().join(INDEX_DIR)).unwrap();
        let link = d.path().join(INDEX_DIR).join(format!(".tmp-abc-3-{DEAD}"));
        std::os::unix::fs::symlink("minimal-0123456789abcdef", &link).unwrap();
        let mut removed = sweep_in(d.path());
        removed.sort();
        let mut expected = vec![dead.clone(), link.clone()];
        expected.sort();
        assert_eq!(removed, expected);
        assert!(!dead.exists() && live.exists() && other.exists(), "the distribution rootfs's temp dirs are its own sweep's");
    }
}
