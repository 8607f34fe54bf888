//! Pid-stamped names of what isobench creates outside its own process, so
//! that what a killed run leaves behind can be found and removed by a later
//! start while a live run's things are never touched.
//!
//! A run killed with SIGKILL cannot remove its temp dirs, its cgroups, its
//! network namespace or an OCI runtime's cgroups. So each is named after the
//! process that made it: `isobench-<pid>-<rest>`, [`temp_prefix`] for temp
//! dirs (`isobench-<pid>-<what>-<random>`), [`name`] for counted things
//! (`isobench-<pid>-<seq>`: cgroups, network namespaces). At the next start
//! (`cleanup::sweep`) each owner of these sweeps its directory with
//! [`sweep`], which removes the entries whose owner pid no longer runs
//! ([`alive`]). Concurrent runs are safe: an entry of a live process stays.
//! The names are an on-disk format: a run killed by an older isobench is
//! swept by a newer one, so they do not change.

use std::fmt::Display;
use std::path::{Path, PathBuf};

use nix::errno::Errno;

/// What every pid-stamped name starts with.
pub const PREFIX: &str = "isobench-";

/// `isobench-<pid>-<rest>` for this process, which is from now on an owner
/// of things a sweep may have to remove ([`mark_owner`]).
pub fn name(rest: impl Display) -> String {
    mark_owner();
    format!("{PREFIX}{}-{rest}", std::process::id())
}

/// The owners folder: one empty file `isobench-<pid>-owner` per process
/// that has named something sweepable ([`name`], [`temp_prefix`], the
/// rootfs caches' temp builds), written before the first such thing is
/// made, so that a sweep that finds no entry of a dead process knows that
/// no dead process left anything and skips reading every place
/// ([`dead_owners`]), as a pid file tells a daemon's start whether its
/// predecessor ended cleanly. In the temp dir, sticky and writable by
/// every user like the temp dir itself, so root's sweep sees every user's
/// owners.
pub fn owners_dir() -> PathBuf {
    owners_dir_in(&std::env::temp_dir())
}

/// The owners folder of processes whose temp dir is `base`.
pub fn owners_dir_in(base: &Path) -> PathBuf {
    base.join(".isobench-owners")
}

/// The owners folder's mode: everyone may add an entry, only its owner may
/// remove it (the temp dir's own mode).
const OWNERS_MODE: u32 = 0o1777;

/// Writes this process's entry in [`owners_dir`] once (later calls do
/// nothing); the folder is (re)made first, since the last owner leaving
/// removes it. Returns whether the entry is there.
pub fn mark_owner() -> bool {
    static MARKED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *MARKED.get_or_init(|| {
        use std::os::unix::fs::PermissionsExt;
        let dir = owners_dir();
        let entry = dir.join(owner_entry(std::process::id() as i32));
        // A sweep may remove the emptied folder between our mkdir and our
        // create: try again.
        (0..3).any(|_| {
            if std::fs::create_dir(&dir).is_ok() {
                let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(OWNERS_MODE));
            }
            std::fs::File::create(&entry).is_ok()
        })
    })
}

/// Removes this process's entry from [`owners_dir`] (and the folder when
/// it was the last): for a command that has removed everything it made,
/// at its clean end, so that the next start needs no sweep.
pub fn unmark_owner() {
    let dir = owners_dir();
    let _ = std::fs::remove_file(dir.join(owner_entry(std::process::id() as i32)));
    let _ = std::fs::remove_dir(&dir);
}

fn owner_entry(pid: i32) -> String {
    format!("{PREFIX}{pid}-owner")
}

/// Whether a sweep has anything to look for: the entries of
/// [`owners_dir`] whose process is gone (what they named may still exist),
/// `Some(empty)` when every owner is alive or there is none (nothing of a
/// dead process can exist), `None` when the folder cannot be read (then
/// only a whole sweep can tell).
pub fn dead_owners() -> Option<Vec<PathBuf>> {
    dead_owners_in(&std::env::temp_dir())
}

/// [`dead_owners`] of processes whose temp dir is `base`.
pub fn dead_owners_in(base: &Path) -> Option<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(owners_dir_in(base)) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Some(Vec::new()),
        Err(_) => return None,
    };
    Some(entries.flatten().filter(|e| e.file_name().to_str().and_then(owner_pid).is_some_and(|pid| !alive(pid))).map(|e| e.path()).collect())
}

/// Forgets the `dead` owners (from [`dead_owners`], read before a whole
/// sweep removed what they left), and the folder when it is empty.
pub fn forget_owners(dead: &[PathBuf]) {
    for entry in dead {
        let _ = std::fs::remove_file(entry);
    }
    // Their folder, when that left it empty.
    let folders: std::collections::BTreeSet<&Path> = dead.iter().filter_map(|e| e.parent()).collect();
    for folder in folders {
        let _ = std::fs::remove_dir(folder);
    }
}

/// `isobench-<pid>-<what>-`: the prefix of a new temp dir of this process
/// (tempfile adds random characters), in [`std::env::temp_dir`], which
/// [`sweep_temp_dirs`] can tell whose it is.
pub fn temp_prefix(what: &str) -> String {
    format!("{}-", name(what))
}

/// The owner pid and the rest of a name `isobench-<pid>-<rest>`: the pid a
/// positive number, the rest not empty.
pub fn owner(name: &str) -> Option<(i32, &str)> {
    let rest = name.strip_prefix(PREFIX)?;
    let (pid, rest) = rest.split_once('-')?;
    if rest.is_empty() {
        return None;
    }
    Some((pid.parse().ok().filter(|p| *p > 0)?, rest))
}

/// The owner pid of any pid-stamped name (`isobench-<pid>-<rest>`).
pub fn owner_pid(name: &str) -> Option<i32> {
    owner(name).map(|(pid, _)| pid)
}

/// The owner pid of a counted name `isobench-<pid>-<seq>` (a cgroup, a
/// network namespace), whose rest is a number.
pub fn counted_owner_pid(name: &str) -> Option<i32> {
    owner(name).filter(|(_, seq)| seq.parse::<u32>().is_ok()).map(|(pid, _)| pid)
}

/// Whether process `pid` exists. EPERM means it exists but is not ours to
/// signal: alive too.
pub fn alive(pid: i32) -> bool {
    !matches!(nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None), Err(Errno::ESRCH))
}

/// The inode of the initial pid namespace (PROC_PID_INIT_INO in the kernel).
const INITIAL_PID_NS_INODE: u64 = 0xEFFF_FFFC;

/// Whether this process sees the host's pids. Inside another pid namespace
/// (isobench itself in a container that sees the host's cgroups) the owner
/// pid in a name may belong to a live process we cannot see, so the sweeps
/// of host-wide things (cgroups, network namespaces) touch nothing there.
pub fn in_initial_pid_namespace() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self/ns/pid").is_ok_and(|m| m.ino() == INITIAL_PID_NS_INODE)
}

/// Removes the entries of `dir` whose owner is dead: `owner` reads the owner
/// pid from an entry's name (`None`: not one of ours, left alone), and
/// `remove` removes an entry of a dead owner, saying whether it did. Returns
/// the paths removed; nothing when `dir` cannot be read.
pub fn sweep(dir: &Path, owner: impl Fn(&str) -> Option<i32>, mut remove: impl FnMut(&std::fs::DirEntry) -> bool) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return removed };
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(&owner).filter(|p| *p > 0) else { continue };
        if alive(pid) {
            continue;
        }
        if remove(&entry) {
            removed.push(entry.path());
        }
    }
    removed
}

/// Removes the temp dirs ([`temp_prefix`]) of isobench processes that no
/// longer exist from `base` (the temp dir, [`std::env::temp_dir`], unless a
/// test says otherwise): rootfs, /dev templates, peer runtimes' bundles and
/// work dirs. Only real directories: never a symlink someone planted.
pub fn sweep_temp_dirs(base: &Path) -> Vec<PathBuf> {
    sweep(base, owner_pid, |entry| entry.file_type().is_ok_and(|t| t.is_dir()) && std::fs::remove_dir_all(entry.path()).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pid that cannot exist (above pid_max's hard limit of 2^22).
    const DEAD: i32 = 4_194_399;

    #[test]
    fn names_carry_the_owner_pid() {
        let me = std::process::id() as i32;
        assert_eq!(owner_pid(&name("rootfs-x")), Some(me));
        assert_eq!(temp_prefix("rootfs"), format!("isobench-{me}-rootfs-"));
        assert_eq!(owner("isobench-123-rootfs-x"), Some((123, "rootfs-x")));
        assert_eq!(owner_pid("isobench-123-"), None);
        assert_eq!(owner_pid("isobench-0-rootfs"), None);
        assert_eq!(owner_pid("isobench-notapid-rootfs"), None);
        assert_eq!(owner_pid("other-123-rootfs"), None);
        assert_eq!(owner_pid("isobench"), None);
    }

    #[test]
    fn naming_marks_the_process_as_an_owner_and_a_dead_owner_asks_for_a_sweep() {
        let _ = name("x");
        let me = owners_dir().join(owner_entry(std::process::id() as i32));
        assert!(me.is_file(), "{me:?}");
        let dead = owners_dir().join(owner_entry(DEAD));
        std::fs::File::create(&dead).unwrap();
        let found = dead_owners().unwrap();
        assert!(found.contains(&dead) && !found.contains(&me), "{found:?}");
        forget_owners(std::slice::from_ref(&dead));
        assert!(!dead.exists() && me.is_file(), "a live owner stays");
    }

    #[test]
    fn counted_names_need_a_number_after_the_pid() {
        let n = name(7);
        assert_eq!(counted_owner_pid(&n), Some(std::process::id() as i32), "{n}");
        assert_eq!(counted_owner_pid("isobench"), None);
        assert_eq!(counted_owner_pid("isobench-12"), None);
        assert_eq!(counted_owner_pid("isobench-12-x"), None);
        assert_eq!(counted_owner_pid("other-12-1"), None);
    }

    #[test]
    fn only_entries_of_dead_owners_are_swept() {
        assert!(alive(std::process::id() as i32) && !alive(DEAD));
        let base = tempfile::tempdir().unwrap();
        let dead = base.path().join(format!("isobench-{DEAD}-rootfs-abc"));
        let live = base.path().join(format!("isobench-{}-rootfs-xyz", std::process::id()));
        let other = base.path().join("isobench-notapid-rootfs");
        let file = base.path().join(format!("isobench-{DEAD}-file-abc"));
        for d in [&dead, &live, &other] {
            std::fs::create_dir_all(d.join("bin")).unwrap();
        }
        std::fs::write(&file, "").unwrap();
        let removed = sweep_temp_dirs(base.path());
        assert_eq!(removed, std::slice::from_ref(&dead));
        assert!(!dead.exists() && live.exists() && other.exists() && file.exists(), "only directories are temp dirs");
        // The generic sweep asks `remove` about dead owners' entries only.
        let mut asked = Vec::new();
        let removed = sweep(base.path(), owner_pid, |e| {
            asked.push(e.path());
            false
        });
        assert!(removed.is_empty());
        assert_eq!(asked, [file]);
    }
}
