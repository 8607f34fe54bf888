//! Sweeping what an earlier, killed isobench left behind (DESIGN.md
//! invariants): temp rootfs and VM folders, container cgroups and the peer
//! runtimes' cgroups whose owning process is gone.
//! Called at every start; a live run's files are never touched.

/// Removes leftovers of dead isobench processes and returns what was removed.
pub fn sweep() -> Vec<std::path::PathBuf> {
    let mut removed = crate::container::cleanup();
    removed.extend(crate::env::oci::sweep_cgroups());
    removed
}
