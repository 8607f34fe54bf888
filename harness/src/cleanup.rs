//! The start-of-run sweep: removes what an earlier, killed isobench left
//! behind, each kind by the module that makes it, all of them told apart by
//! their pid-stamped names ([`crate::leftovers`]): temp dirs (rootfs, /dev
//! templates, peer runtimes' bundles), half-made cached rootfs builds,
//! container cgroups (killing anything still in them), the run's network
//! namespaces, the peer runtimes' cgroups, runsc processes still holding a
//! dead run's state dir (killed first, listed as `/proc/<pid>`), and the
//! registry entries of runs
//! ([`crate::registry`]), of processes that no longer exist. Called at every
//! start; a live run's things are never touched.

use std::path::PathBuf;

use crate::container::{cgroup, net, rootfs};
use crate::leftovers;

/// Removes leftovers of dead isobench processes and returns what was removed.
pub fn sweep() -> Vec<PathBuf> {
    // Before the temp dirs: they hold the state dirs these processes name.
    let mut removed: Vec<PathBuf> = crate::env::runsc::sweep().into_iter().map(|pid| PathBuf::from(format!("/proc/{pid}"))).collect();
    removed.extend(leftovers::sweep_temp_dirs(&std::env::temp_dir()));
    removed.extend(crate::storage::sweep(&std::env::temp_dir()));
    removed.extend(rootfs::sweep());
    if nix::unistd::geteuid().is_root() {
        removed.extend(cgroup::sweep());
        removed.extend(net::sweep());
    }
    removed.extend(crate::env::oci::sweep_cgroups());
    removed.extend(crate::registry::sweep());
    removed
}
