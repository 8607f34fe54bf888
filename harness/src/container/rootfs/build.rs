//! The minimal rootfs's tree ([`populate`]): isobench's static binaries, a
//! static busybox with its applets when the host has one, mount points and
//! a passwd; built once into the cache and shared read-only
//! ([`CachedRootfs`](super::CachedRootfs)), or into a private temp dir
//! ([`MinimalRootfs`]) where it must be writable (a container without a
//! mount namespace, which cannot bind it read-only; tests).

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, FileExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{io_err, RootfsError};
use crate::leftovers;
use crate::workloads::Workloads;

/// Where a static busybox may be installed (Debian's busybox-static: /bin).
pub const BUSYBOX_CANDIDATES: [&str; 3] = ["/bin/busybox", "/usr/bin/busybox", "/usr/local/bin/busybox"];

/// Returns the first static busybox found, if any. A dynamically linked one
/// would not run in a rootfs without a libc, so it does not count.
pub fn find_static_busybox() -> Option<PathBuf> {
    BUSYBOX_CANDIDATES.iter().map(PathBuf::from).find(|p| p.is_file() && is_static_elf(p).unwrap_or(false))
}

/// Bytes of an ELF file read to find its program headers: the ELF header and,
/// in every binary linkers make, the program header table right after it.
const ELF_HEAD_BYTES: usize = 4096;

/// True when `path` is an ELF file with no program interpreter (PT_INTERP).
/// Reads the headers only (a static busybox is a megabyte or two).
pub fn is_static_elf(path: &Path) -> io::Result<bool> {
    const PT_INTERP: u32 = 3;
    let file = std::fs::File::open(path)?;
    let mut data = vec![0u8; ELF_HEAD_BYTES];
    let n = read_at_most(&file, &mut data, 0)?;
    data.truncate(n);
    let u16_at = |d: &[u8], o: usize| d.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]]) as usize);
    let u64_at = |d: &[u8], o: usize| d.get(o..o + 8).map(|b| u64::from_le_bytes(b.try_into().unwrap()) as usize);
    // 64-bit little-endian ELF only (the target isobench builds for).
    if data.get(..6) != Some(b"\x7fELF\x02\x01".as_slice()) {
        return Ok(false);
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(&data, 0x20), u16_at(&data, 0x36), u16_at(&data, 0x38)) else {
        return Ok(false);
    };
    let table = phentsize.saturating_mul(phnum);
    if phoff.saturating_add(table) > data.len() {
        // A program header table further in: read it where it is.
        data = vec![0u8; table];
        if read_at_most(&file, &mut data, phoff as u64)? < table {
            return Ok(false);
        }
    } else {
        data.drain(..phoff);
    }
    for i in 0..phnum {
        match data.get(i * phentsize..i * phentsize + 4).map(|b| u32::from_le_bytes(b.try_into().unwrap())) {
            Some(PT_INTERP) => return Ok(false),
            Some(_) => {}
            None => return Ok(false),
        }
    }
    Ok(true)
}

/// Fills `buf` from `offset` as far as the file goes; returns the bytes read.
fn read_at_most(file: &std::fs::File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read_at(&mut buf[got..], offset + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Writes the minimal rootfs's tree into the empty directory `root`:
///
/// ```text
/// /isobench-agent  /noop          the static workloads (the agent finds noop next to itself)
/// /noop-nolibc                    the no-op without C library start-up
/// /bin/busybox     /bin/<applet>  static busybox and its applet links, when `busybox` is given
/// /proc /dev /sys /tmp /mnt       mount points and empty dirs
/// /etc/passwd /etc/group          root and nobody
/// ```
///
/// The binaries are copied, not hard-linked: a rebuild of the workloads must
/// not change a rootfs in use, nor a write in a writable rootfs the build.
pub fn populate(root: &Path, workloads: &Workloads, busybox: Option<&Path>) -> Result<(), RootfsError> {
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755)).map_err(io_err(format!("chmod {}", root.display())))?;
    for (sub, mode) in [("bin", 0o755), ("proc", 0o555), ("dev", 0o755), ("sys", 0o555), ("tmp", 0o1777), ("mnt", 0o755), ("etc", 0o755)] {
        let p = root.join(sub);
        std::fs::create_dir(&p).map_err(io_err(format!("mkdir {}", p.display())))?;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).map_err(io_err(format!("chmod {}", p.display())))?;
    }
    // So that ps, ls -l and id print names instead of numbers.
    for (file, text) in
        [("etc/passwd", "root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"), ("etc/group", "root:x:0:\nnogroup:x:65534:\n")]
    {
        std::fs::write(root.join(file), text).map_err(io_err(format!("write {file} in the rootfs")))?;
    }
    for (src, name) in workloads.rootfs_files() {
        std::fs::copy(src, root.join(name)).map_err(io_err(format!("copy {} into the rootfs", src.display())))?;
    }
    if let Some(bb) = busybox {
        install_busybox(bb, &root.join("bin"))?;
    }
    Ok(())
}

/// A private, writable copy of the minimal rootfs ([`populate`]) in a temp
/// dir `isobench-<pid>-rootfs-*`, removed on drop (swept by
/// [`leftovers::sweep_temp_dirs`] if isobench is killed). Containers with a
/// mount namespace use the cached one ([`CachedRootfs`](super::CachedRootfs)) instead.
#[derive(Debug)]
pub struct MinimalRootfs {
    dir: tempfile::TempDir,
    busybox: Option<PathBuf>,
}

impl MinimalRootfs {
    pub fn build(workloads: &Workloads) -> Result<MinimalRootfs, RootfsError> {
        leftovers::sweep_temp_dirs(&std::env::temp_dir());
        let dir = tempfile::Builder::new()
            .prefix(&leftovers::temp_prefix("rootfs"))
            .tempdir()
            .map_err(io_err(format!("create a temp dir in {}", std::env::temp_dir().display())))?;
        let busybox = find_static_busybox();
        populate(dir.path(), workloads, busybox.as_deref())?;
        Ok(MinimalRootfs { dir, busybox })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The host's busybox copied in, if one was found.
    pub fn busybox(&self) -> Option<&Path> {
        self.busybox.as_deref()
    }
}

fn install_busybox(busybox: &Path, bin: &Path) -> Result<(), RootfsError> {
    std::fs::copy(busybox, bin.join("busybox")).map_err(io_err(format!("copy {} into the rootfs", busybox.display())))?;
    let out = Command::new(busybox).arg("--list").output().map_err(io_err(format!("run {} --list", busybox.display())))?;
    for applet in out.stdout.split(|b| *b == b'\n') {
        // An applet name is a plain file name; anything else is skipped.
        if applet.is_empty() || applet == b"busybox" || applet.contains(&b'/') || applet.starts_with(b".") {
            continue;
        }
        let link = bin.join(OsStr::from_bytes(applet));
        symlink("busybox", &link).map_err(io_err(format!("symlink {}", link.display())))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elf_check_tells_static_from_dynamic() {
        assert!(!is_static_elf(Path::new("/bin/sh")).unwrap(), "/bin/sh is dynamically linked on Debian");
        let not_elf = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(not_elf.path(), b"#!/bin/sh\n").unwrap();
        assert!(!is_static_elf(not_elf.path()).unwrap());
        if let Some(bb) = find_static_busybox() {
            assert!(is_static_elf(&bb).unwrap());
        }
    }
}
