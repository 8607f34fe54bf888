//! The guest image: a kernel (the bzImage, and the uncompressed vmlinux
//! extracted from it for PVH direct boot when it has the PVH note) and an initramfs (agent as /init, virtio modules,
//! their load order) that scripts/build-guest writes into the cache as
//! `guest/<kver>/` with a `guest.json` describing it, and points
//! `guest/current` at. The harness never builds it: fetching a kernel is a
//! step the user sees and runs once.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::qemu::BootProtocol;

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
    /// The PVH-capable ELF kernel, when build-guest could extract one.
    #[serde(default)]
    vmlinux: Option<String>,
    initrd: String,
    #[serde(default)]
    kernel_sha256: String,
    #[serde(default)]
    vmlinux_sha256: Option<String>,
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
    /// The kernel as built (a bzImage for the distro kernel).
    pub kernel: PathBuf,
    /// The uncompressed ELF kernel with the PVH entry note, when there is one.
    pub vmlinux: Option<PathBuf>,
    pub initrd: PathBuf,
    /// `uname -r` of the guest kernel, e.g. `6.1.0-57-amd64`.
    pub kernel_version: String,
    /// Where the kernel came from (distro package and version, or ISOBENCH_KERNEL).
    pub kernel_source: String,
    pub kernel_sha256: String,
    pub vmlinux_sha256: Option<String>,
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
            vmlinux: m.vmlinux.map(|v| dir.join(v)),
            initrd: dir.join(&m.initrd),
            dir,
            kernel_version: m.kernel_version,
            kernel_source: m.kernel_source,
            kernel_sha256: m.kernel_sha256,
            vmlinux_sha256: m.vmlinux_sha256,
            initrd_sha256: m.initrd_sha256,
            agent_sha256: m.agent_sha256,
            modules: m.modules,
        };
        for f in [Some(&image.kernel), image.vmlinux.as_ref(), Some(&image.initrd)].into_iter().flatten() {
            if !f.is_file() {
                return Err(ImageError::Bad { path: f.clone(), reason: "missing".into() });
            }
        }
        Ok(image)
    }

    /// The fastest way in: PVH through the vmlinux when the image has one,
    /// else the bzImage.
    pub fn preferred_boot(&self) -> BootProtocol {
        if self.vmlinux.is_some() {
            BootProtocol::Pvh
        } else {
            BootProtocol::Bzimage
        }
    }

    /// The kernel file QEMU gets for `boot`, or why there is none.
    pub fn kernel_for(&self, boot: BootProtocol) -> Result<&Path, ImageError> {
        match boot {
            BootProtocol::Bzimage => Ok(&self.kernel),
            BootProtocol::Pvh => self.vmlinux.as_deref().ok_or_else(|| ImageError::Bad {
                path: self.dir.clone(),
                reason: "no PVH vmlinux (the kernel lacks CONFIG_PVH or its payload could not be extracted); boot the bzImage".into(),
            }),
        }
    }

    /// True when the guest would run another agent than `agent` (the static
    /// agent binary on the host): its sha256 differs from the one
    /// scripts/build-guest recorded in guest.json. An image without that
    /// record is compared by time (older than the binary).
    pub fn older_than(&self, agent: &Path) -> bool {
        if !self.agent_sha256.is_empty() {
            return sha256_hex(agent).is_some_and(|sha| sha != self.agent_sha256);
        }
        let mtime = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        match (mtime(&self.initrd), mtime(agent)) {
            (Some(img), Some(bin)) => bin > img,
            _ => false,
        }
    }
}

/// sha256 of a file as lowercase hex (what sha256sum(1) prints); `None` when
/// it cannot be read.
fn sha256_hex(path: &Path) -> Option<String> {
    use sha2::Digest;
    let mut file = std::fs::File::open(path).ok()?;
    let mut hasher = sha2::Sha256::new();
    std::io::copy(&mut file, &mut hasher).ok()?;
    Some(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// The folder the harness looks in: `$ISOBENCH_GUEST`, else
/// `<cache>/guest/current`.
pub fn default_dir() -> PathBuf {
    match std::env::var_os(GUEST_DIR_ENV).filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => crate::paths::cache_dir().join("guest").join("current"),
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
        assert_eq!((img.vmlinux.as_ref(), img.preferred_boot()), (None, BootProtocol::Bzimage));
        assert!(img.kernel_for(BootProtocol::Pvh).unwrap_err().to_string().contains("no PVH vmlinux"));
    }

    #[test]
    fn prefers_the_pvh_vmlinux_when_there_is_one() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["vmlinuz", "vmlinux", "initramfs.cpio"] {
            std::fs::write(dir.path().join(f), b"x").unwrap();
        }
        std::fs::write(
            dir.path().join(MANIFEST_FILE),
            r#"{"kernel_version":"6.1","kernel":"vmlinuz","vmlinux":"vmlinux","initrd":"initramfs.cpio","vmlinux_sha256":"cd"}"#,
        )
        .unwrap();
        let img = GuestImage::load(dir.path()).unwrap();
        assert_eq!(img.preferred_boot(), BootProtocol::Pvh);
        assert!(img.kernel_for(BootProtocol::Pvh).unwrap().ends_with("vmlinux"));
        assert!(img.kernel_for(BootProtocol::Bzimage).unwrap().ends_with("vmlinuz"));
        std::fs::remove_file(dir.path().join("vmlinux")).unwrap();
        assert!(matches!(GuestImage::load(dir.path()), Err(ImageError::Bad { .. })), "a vmlinux named but missing is an error");
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
