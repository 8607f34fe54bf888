//! Where isobench's own files are: the repository checkout it was built from
//! ([`repo_root`]: scripts, the static workload build, results) and the cache
//! folder ([`cache_dir`]: guest images and kernels, the accelerator verdicts,
//! the distribution rootfs, logs of failed boots).

use std::path::{Path, PathBuf};

/// Overrides isobench's cache folder (guest images, downloaded kernels, the
/// accelerator verdicts, logs of failed boots).
pub const CACHE_ENV: &str = "ISOBENCH_CACHE";

/// The repository root (this crate lives in `<root>/harness`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("harness has a parent").to_path_buf()
}

/// `$ISOBENCH_CACHE`, else `$XDG_CACHE_HOME/isobench`, else
/// `$HOME/.cache/isobench`: the same rule as scripts/build-guest.
pub fn cache_dir() -> PathBuf {
    let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(dir) = var(CACHE_ENV) {
        return dir;
    }
    if let Some(xdg) = var("XDG_CACHE_HOME") {
        return xdg.join("isobench");
    }
    var("HOME").unwrap_or_else(std::env::temp_dir).join(".cache").join("isobench")
}
