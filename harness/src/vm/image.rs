//! The guest image: a kernel and an initramfs (agent as /init, virtio modules,
//! their load order) that scripts/build-guest writes into the cache as
//! `guest/<kver>/` with a `guest.json` describing it, and points
//! `guest/current` at. The harness never builds it: fetching a kernel is a
//! step the user sees and runs once.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Overrides where the image is looked for: a folder holding `guest.json`.
pub const GUEST_DIR_ENV: &str = "ISOBENCH_GUEST";

/// The file scripts/build-guest writes next to the kernel and initramfs.
pub const MANIFEST_FILE: &str = "guest.json";

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("no guest image in {}; run scripts/build-guest", .0.display())]
    Missing(PathBuf),
    #[error("guest image {}: {reason}; run scripts/build-guest", path.display())]
    Bad { path: PathBuf, reason: String },
}

/// `guest.json` as scripts/build-guest writes it (file names relative to it).
#[derive(Debug, Deserialize)]
struct Manifest {
    kernel_version: String,
    #[serde(default)]
    kernel_source: String,
    kernel: String,
    initrd: String,
    #[serde(default)]
    kernel_sha256: String,
    #[serde(default)]
    initrd_sha256: String,
    #[serde(default)]
    agent_sha256: String,
    #[serde(default)]
    modules: Vec<String>,
}

/// A built guest image, with absolute paths.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GuestImage {
    pub dir: PathBuf,
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    /// `uname -r` of the guest kernel, e.g. `6.1.0-57-amd64`.
    pub kernel_version: String,
    /// Where the kernel came from (distro package and version, or ISOBENCH_KERNEL).
    pub kernel_source: String,
    pub kernel_sha256: String,
    pub initrd_sha256: String,
    pub agent_sha256: String,
    /// Modules the agent loads, in load order.
    pub modules: Vec<String>,
}

impl GuestImage {
    /// Reads `dir/guest.json` and checks that the files it names exist.
    pub fn load(dir: &Path) -> Result<GuestImage, ImageError> {
        let path = dir.join(MANIFEST_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(ImageError::Missing(dir.to_path_buf())),
            Err(e) => return Err(ImageError::Bad { path, reason: e.to_string() }),
        };
        let m: Manifest = serde_json::from_str(&text).map_err(|e| ImageError::Bad { path: path.clone(), reason: e.to_string() })?;
        // Resolve guest/current to guest/<kver>, so the paths recorded in run.json stay valid.
        let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
        let image = GuestImage {
            kernel: dir.join(&m.kernel),
            initrd: dir.join(&m.initrd),
            dir,
            kernel_version: m.kernel_version,
            kernel_source: m.kernel_source,
            kernel_sha256: m.kernel_sha256,
            initrd_sha256: m.initrd_sha256,
            agent_sha256: m.agent_sha256,
            modules: m.modules,
        };
        for f in [&image.kernel, &image.initrd] {
            if !f.is_file() {
                return Err(ImageError::Bad { path: f.clone(), reason: "missing".into() });
            }
        }
        Ok(image)
    }

    /// True when `agent` (the static agent binary) is newer than the
    /// initramfs, i.e. the guest would run an older agent than the host.
    pub fn older_than(&self, agent: &Path) -> bool {
        let mtime = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        match (mtime(&self.initrd), mtime(agent)) {
            (Some(img), Some(bin)) => bin > img,
            _ => false,
        }
    }
}

/// The folder the harness looks in: `$ISOBENCH_GUEST`, else
/// `<cache>/guest/current`.
pub fn default_dir() -> PathBuf {
    match std::env::var_os(GUEST_DIR_ENV).filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => super::cache_dir().join("guest").join("current"),
    }
}

/// Finds the guest image, or says in one line to run scripts/build-guest.
pub fn locate() -> Result<GuestImage, ImageError> {
    GuestImage::load(&default_dir())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_a_manifest_and_resolves_paths() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("vmlinuz"), b"k").unwrap();
        std::fs::write(dir.path().join("initramfs.cpio"), b"i").unwrap();
        std::fs::write(
            dir.path().join(MANIFEST_FILE),
            r#"{"kernel_version":"6.1.0-57-amd64","kernel_source":"test","kernel":"vmlinuz","initrd":"initramfs.cpio",
                "kernel_sha256":"ab","modules":["virtio_ring","virtio"]}"#,
        )
        .unwrap();
        let img = GuestImage::load(dir.path()).unwrap();
        assert_eq!(img.kernel_version, "6.1.0-57-amd64");
        assert!(img.kernel.ends_with("vmlinuz") && img.kernel.is_absolute());
        assert_eq!(img.modules, ["virtio_ring", "virtio"]);
    }

    #[test]
    fn missing_image_says_what_to_run() {
        let dir = tempfile::tempdir().unwrap();
        let e = GuestImage::load(&dir.path().join("nope")).unwrap_err();
        assert!(matches!(e, ImageError::Missing(_)));
        assert!(e.to_string().ends_with("; run scripts/build-guest"), "{e}");
        std::fs::write(dir.path().join(MANIFEST_FILE), r#"{"kernel_version":"x","kernel":"vmlinuz","initrd":"i"}"#).unwrap();
        let e = GuestImage::load(dir.path()).unwrap_err();
        assert!(matches!(e, ImageError::Bad { .. }), "{e}");
    }
}
