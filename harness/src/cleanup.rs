//! The start-of-run sweep: removes what an earlier, killed isobench left
//! behind, each kind by the module that makes it, all of them told apart by
//! their pid-stamped names ([`crate::leftovers`]): temp dirs (rootfs, /dev
//! templates, peer runtimes' bundles), half-made cached rootfs builds,
//! container cgroups (killing anything still in them), the run's network
//! namespaces, the peer runtimes' cgroups, runsc processes still holding a
//! dead run's state dir and virtiofsd processes serving a socket in a dead
//! run's temp dir (killed first, listed as `/proc/<pid>`), and the
//! registry entries of runs
//! ([`crate::registry`]), of processes that no longer exist. Called at every
//! start; a live run's things are never touched. Skipped when no process
//! that named something has died without removing its entry from the
//! owners folder ([`leftovers::owners_dir`]).

use std::path::PathBuf;

use crate::container::{cgroup, net, rootfs};
use crate::leftovers;

/// Removes leftovers of dead isobench processes and returns what was removed.
/// Reads every place only when a process that named something is gone
/// without saying it removed it all ([`leftovers::dead_owners`]): when every
/// owner is alive, nothing of a dead one can exist, and the sweep is one
/// read of a small folder (an `isobench exec` no longer waits for a walk of
/// every cgroup hierarchy).
pub fn sweep() -> Vec<PathBuf> {
    let dead = leftovers::dead_owners();
    if dead.as_ref().is_some_and(Vec::is_empty) {
        return Vec::new();
    }
    let removed = sweep_all();
    // Forgotten only once a whole sweep finds nothing left: what could not
    // be removed this time (a cgroup still emptying) is looked for again.
    if let Some(dead) = dead.filter(|_| removed.is_empty()) {
        leftovers::forget_owners(&dead);
    }
    removed
}

/// Every place, whatever the owners folder says (see [`sweep`]).
pub fn sweep_all() -> Vec<PathBuf> {
    // Before the temp dirs: they hold the state dirs these processes name.
    let mut removed: Vec<PathBuf> = crate::env::runsc::sweep().into_iter().map(|pid| PathBuf::from(format!("/proc/{pid}"))).collect();
    // Before the temp dirs: a killed run's virtiofsd is found by its socket's.
    removed.extend(crate::vm::virtiofsd::sweep().into_iter().map(|pid| PathBuf::from(format!("/proc/{pid}"))));
    // Before the temp dirs: a killed run's servers are found by their dirs.
    removed.extend(crate::apps::sweep(&std::env::temp_dir()));
    removed.extend(leftovers::sweep_temp_dirs(&std::env::temp_dir()));
    removed.extend(crate::storage::sweep(&std::env::temp_dir()));
    removed.extend(rootfs::sweep());
    removed.extend(crate::vm::disk::sweep());
    if nix::unistd::geteuid().is_root() {
        removed.extend(cgroup::sweep());
        removed.extend(net::sweep());
    }
    removed.extend(crate::env::oci::sweep_cgroups());
    removed.extend(crate::registry::sweep());
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pid that cannot exist (above pid_max's hard limit of 2^22).
    const DEAD: i32 = 4_194_398;

    #[test]
    fn a_dead_owner_makes_the_sweep_look_and_is_forgotten_once_nothing_is_left() {
        let left = std::env::temp_dir().join(format!("{}{DEAD}-cleanup-test", leftovers::PREFIX));
        std::fs::create_dir_all(&left).unwrap();
        // What a killed owner leaves: its things, then (written first by
        // the owner, here after them) its entry.
        assert!(leftovers::mark_owner());
        let entry = leftovers::owners_dir().join(format!("{}{DEAD}-owner", leftovers::PREFIX));
        std::fs::File::create(&entry).unwrap();
        sweep();
        assert!(!left.exists(), "the dead owner's temp dir is swept");
        // A later sweep finds nothing more and forgets the owner (another
        // process's sweep may have done both already).
        sweep();
        assert!(!entry.exists(), "the dead owner is forgotten");
        assert!(leftovers::dead_owners().is_some_and(|d| !d.iter().any(|p| p == &entry)));
    }
}
