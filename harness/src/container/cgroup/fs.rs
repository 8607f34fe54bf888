//! The cgroup filesystem as [`super::v1`] and [`super::v2`] use it: group
//! directories made under a parent that a concurrent run may remove, removed
//! deepest first while the kernel still tears down their last members
//! (with a backoff), and control files written and read.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{io_err, CgroupError};

/// How long removing a group may be retried while the kernel still tears down
/// its last members (rmdir says EBUSY until then).
const REMOVE_PATIENCE: Duration = Duration::from_secs(5);

/// Pauses between two tries of a retried step: from [`FIRST_PAUSE`],
/// doubling up to [`LONGEST_PAUSE`]. Most waits (a task leaving its group
/// just after it was reaped) end within microseconds, and a fixed
/// millisecond pause would be most of a container's start-to-exit time.
const FIRST_PAUSE: Duration = Duration::from_micros(20);
const LONGEST_PAUSE: Duration = Duration::from_millis(5);

/// Retries with exponential pauses for at most [`REMOVE_PATIENCE`].
pub(crate) struct Backoff {
    t0: std::time::Instant,
    pause: Duration,
}

impl Backoff {
    pub(crate) fn new() -> Backoff {
        Backoff { t0: std::time::Instant::now(), pause: FIRST_PAUSE }
    }

    /// Sleeps before the next try; false once patience has run out.
    pub(crate) fn pause(&mut self) -> bool {
        if self.t0.elapsed() >= REMOVE_PATIENCE {
            return false;
        }
        std::thread::sleep(self.pause);
        self.pause = (self.pause * 2).min(LONGEST_PAUSE);
        true
    }
}

/// Removes a group directory and any groups below it, deepest first, retrying
/// while the kernel still says EBUSY (its last members are exiting); then the
/// parent, when it has become empty.
pub(crate) fn remove_tree(dir: &Path) -> Result<(), CgroupError> {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree(&e.path())?;
            }
        }
    }
    let mut backoff = Backoff::new();
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && backoff.pause() => {}
            Err(e) => return Err(io_err(format!("remove cgroup {}", dir.display()))(e)),
        }
    }
}

/// Creates `parent/name`, creating `parent` first; retries when a concurrent
/// run removed the parent in between.
pub(crate) fn make_group_dir(
    parent: &Path,
    name: &str,
    mut prepare_parent: impl FnMut(&Path) -> Result<(), CgroupError>,
) -> Result<PathBuf, CgroupError> {
    let dir = parent.join(name);
    for _ in 0..100 {
        match std::fs::create_dir(parent) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io_err(format!("create cgroup {}", parent.display()))(e)),
        }
        match prepare_parent(parent) {
            Err(CgroupError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => continue,
            r => r?,
        }
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_err(format!("create cgroup {}", dir.display()))(e)),
        }
    }
    Err(CgroupError::Io { context: format!("create cgroup {}", dir.display()), source: std::io::Error::other("its parent kept disappearing") })
}

/// Writes `value` to a control file of a group.
pub(crate) fn write_file(dir: &Path, file: &str, value: &str) -> Result<(), CgroupError> {
    let p = dir.join(file);
    std::fs::write(&p, value).map_err(io_err(format!("write {value:?} to {}", p.display())))
}

pub(crate) fn read_u64(dir: &Path, file: &str) -> Option<u64> {
    std::fs::read_to_string(dir.join(file)).ok()?.trim().parse().ok()
}

/// The value of `key` in a flat-keyed file (`key value` per line).
pub(crate) fn read_keyed(dir: &Path, file: &str, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(dir.join(file)).ok()?;
    text.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok())
}

/// The pids listed in a `cgroup.procs` file.
pub(crate) fn read_procs(dir: &Path) -> Vec<i32> {
    std::fs::read_to_string(dir.join("cgroup.procs")).map(|t| t.lines().filter_map(|l| l.trim().parse().ok()).collect()).unwrap_or_default()
}

/// Members of a group and the groups below it.
pub(crate) fn members_of(dir: &Path) -> Vec<i32> {
    let mut pids = read_procs(dir);
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                pids.extend(members_of(&e.path()));
            }
        }
    }
    pids
}
