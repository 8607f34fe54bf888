//! How the host mounts cgroups: v2, v1 or hybrid ([`CgroupMode`]), told
//! apart by the filesystem magic of what is mounted (statfs(2)), as systemd
//! and runc do, never by guessing from path names; and the [`Layout`] a
//! launch spec detects once: the mode and the mount of each v1 controller.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{v1, CGROUP_ROOT, PARENT};

/// How the host mounts cgroups, detected by filesystem magic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum CgroupMode {
    /// cgroup2 mounted at /sys/fs/cgroup.
    V2,
    /// v1 controllers under a tmpfs at /sys/fs/cgroup, no cgroup2.
    V1,
    /// v1 controllers plus a cgroup2 at /sys/fs/cgroup/unified.
    Hybrid,
    /// Nothing recognisable at /sys/fs/cgroup.
    None,
}

impl CgroupMode {
    pub fn as_str(self) -> &'static str {
        match self {
            CgroupMode::V2 => "v2",
            CgroupMode::V1 => "v1",
            CgroupMode::Hybrid => "hybrid",
            CgroupMode::None => "none",
        }
    }
}

impl fmt::Display for CgroupMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn fs_type(path: &Path) -> Option<nix::sys::statfs::FsType> {
    nix::sys::statfs::statfs(path).ok().map(|s| s.filesystem_type())
}

pub(crate) fn is_cgroup2(path: &Path) -> bool {
    fs_type(path) == Some(nix::sys::statfs::CGROUP2_SUPER_MAGIC)
}

pub(crate) fn is_cgroup1(path: &Path) -> bool {
    fs_type(path) == Some(nix::sys::statfs::CGROUP_SUPER_MAGIC)
}

/// Detects the cgroup mode of the host (by `statfs` magic, as systemd and
/// runc do, not by guessing from paths).
pub fn cgroup_mode() -> CgroupMode {
    cgroup_mode_at(Path::new(CGROUP_ROOT))
}

/// [`cgroup_mode`] for a cgroup root other than /sys/fs/cgroup.
pub fn cgroup_mode_at(root: &Path) -> CgroupMode {
    use nix::sys::statfs::{CGROUP2_SUPER_MAGIC, CGROUP_SUPER_MAGIC, TMPFS_MAGIC};
    match fs_type(root) {
        Some(t) if t == CGROUP2_SUPER_MAGIC => CgroupMode::V2,
        Some(t) if t == TMPFS_MAGIC => {
            let v1 = std::fs::read_dir(root).map(|d| d.flatten().any(|e| is_cgroup1(&e.path()))).unwrap_or(false);
            match (v1, is_cgroup2(&root.join("unified"))) {
                (true, true) => CgroupMode::Hybrid,
                (true, false) => CgroupMode::V1,
                // Only a cgroup2 under a tmpfs: usable as v2, but not a layout
                // any distribution ships; call it what it has.
                (false, true) => CgroupMode::V2,
                (false, false) => CgroupMode::None,
            }
        }
        Some(t) if t == CGROUP_SUPER_MAGIC => CgroupMode::V1,
        _ => CgroupMode::None,
    }
}

/// A host's cgroup layout, detected once: its mode and, for v1 and hybrid,
/// the mount of each controller's hierarchy.
#[derive(Debug, Clone)]
pub struct Layout {
    pub(super) root: PathBuf,
    pub(super) mode: CgroupMode,
    pub(super) v1: Vec<(&'static str, PathBuf)>,
}

impl Layout {
    /// Detects the layout under `root` (statfs(2) magic, see [`cgroup_mode_at`]).
    pub fn detect(root: &Path) -> Layout {
        let mode = cgroup_mode_at(root);
        let v1 = if matches!(mode, CgroupMode::V1 | CgroupMode::Hybrid) { v1::controller_mounts(root) } else { Vec::new() };
        Layout { root: root.to_path_buf(), mode, v1 }
    }

    pub fn mode(&self) -> CgroupMode {
        self.mode
    }

    /// The `isobench` parent directory of every hierarchy the layout has.
    pub(super) fn parents(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = Vec::new();
        for (_, h) in &self.v1 {
            if !v.contains(&h.join(PARENT)) {
                v.push(h.join(PARENT));
            }
        }
        match self.mode {
            CgroupMode::V2 if is_cgroup2(&self.root) => v.push(self.root.join(PARENT)),
            CgroupMode::V2 | CgroupMode::Hybrid => v.push(self.root.join("unified").join(PARENT)),
            _ => {}
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_serialize_and_print_in_lower_case() {
        for (m, s) in [(CgroupMode::V1, "v1"), (CgroupMode::V2, "v2"), (CgroupMode::Hybrid, "hybrid"), (CgroupMode::None, "none")] {
            assert_eq!(serde_json::to_value(m).unwrap(), serde_json::json!(s));
            assert_eq!(m.to_string(), s);
        }
    }
}
