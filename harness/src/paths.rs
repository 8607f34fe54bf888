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

/// A verdict cache in the cache folder (the vm's accelerator, gVisor's
/// platform): a JSON map from the key the verdict holds for (a version, a
/// kernel) to the verdict. Missing or unreadable reads as empty.
pub fn read_verdicts<V: serde::de::DeserializeOwned>(path: &Path) -> std::collections::BTreeMap<String, V> {
    std::fs::read_to_string(path).ok().and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default()
}

/// Writes a verdict cache through a pid-stamped temporary renamed over it.
/// Best effort: a cache that cannot be written only costs a probe next time.
pub fn write_verdicts<V: serde::Serialize>(path: &Path, known: &std::collections::BTreeMap<String, V>) {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else { return };
    if std::fs::create_dir_all(dir).is_err() {
        return;
    }
    let tmp = dir.join(format!(".{}.{}", name.to_string_lossy(), std::process::id()));
    let Ok(text) = serde_json::to_string_pretty(known) else { return };
    if std::fs::write(&tmp, text).is_ok() && std::fs::rename(&tmp, path).is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
}
