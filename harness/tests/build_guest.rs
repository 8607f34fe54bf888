//! scripts/build-guest's kernel source order: `ISOBENCH_KERNEL`, then the
//! host's /boot kernel when readable and usable (a bzImage or ELF vmlinux
//! with the virtio modules present or built in), then the distro package.
//! The choice is tested with `--select` on fake /boot trees
//! (`ISOBENCH_HOST_ROOT`), which fetches nothing; a whole image is built from
//! the unpacked distro package posing as the host's /boot when it is cached.

use std::path::{Path, PathBuf};
use std::process::Command;

use isobench_testkit::{trial, Need::*};

const KVER: &str = "9.9.9-isobench-test";

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/build-guest")
}

fn main() {
    isobench_testkit::run(vec![
        trial!(a_usable_host_kernel_comes_before_the_distro_package).needs(&[GuestTools]),
        trial!(an_unusable_host_kernel_falls_back_to_the_distro_package_and_says_why).needs(&[GuestTools]),
        trial!(an_image_is_built_around_the_host_kernel).needs(&[GuestTools, DistroKernel]),
    ]);
}

/// A fake host root: boot/vmlinuz-KVER (a bzImage header, or `kernel` as
/// given) and lib/modules/KVER/kernel/<m>.ko for each of `modules`.
fn fake_root(kernel: Option<&[u8]>, modules: &[&str], config: &str) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let boot = root.path().join("boot");
    std::fs::create_dir_all(&boot).unwrap();
    let bzimage = {
        let mut b = vec![0u8; 1024];
        b[0x202..0x206].copy_from_slice(b"HdrS");
        b
    };
    std::fs::write(boot.join(format!("vmlinuz-{KVER}")), kernel.unwrap_or(&bzimage)).unwrap();
    if !config.is_empty() {
        std::fs::write(boot.join(format!("config-{KVER}")), config).unwrap();
    }
    let mods = root.path().join("lib/modules").join(KVER).join("kernel/drivers");
    std::fs::create_dir_all(&mods).unwrap();
    for m in modules {
        std::fs::write(mods.join(format!("{m}.ko.xz")), b"").unwrap();
    }
    root
}

/// `build-guest --select` with the host root at `root`: its one line.
fn select(root: &Path, env: &[(&str, &str)]) -> String {
    let mut cmd = Command::new("bash");
    cmd.arg(script())
        .arg("--select")
        .env("ISOBENCH_HOST_ROOT", root)
        .env("ISOBENCH_HOST_KVER", KVER)
        .env_remove("ISOBENCH_KERNEL")
        .env_remove("ISOBENCH_NO_HOST_KERNEL");
    cmd.envs(env.iter().copied());
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "build-guest --select failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

const VIRTIO: [&str; 3] = ["virtio_mmio", "virtio_pci", "virtio_console"];

fn a_usable_host_kernel_comes_before_the_distro_package() {
    let root = fake_root(None, &VIRTIO, "");
    let kernel = root.path().join(format!("boot/vmlinuz-{KVER}"));
    assert_eq!(
        select(root.path(), &[]),
        format!("host kernel {} (modules {})", kernel.display(), root.path().join("lib/modules").join(KVER).display())
    );
    // ISOBENCH_KERNEL still comes first, and the host step can be switched off.
    assert_eq!(select(root.path(), &[("ISOBENCH_KERNEL", kernel.to_str().unwrap())]), format!("ISOBENCH_KERNEL={}", kernel.display()));
    let off = select(root.path(), &[("ISOBENCH_NO_HOST_KERNEL", "1")]);
    assert!(off.starts_with("distro package linux-image-amd64") && off.contains("ISOBENCH_NO_HOST_KERNEL"), "{off}");
}

fn an_unusable_host_kernel_falls_back_to_the_distro_package_and_says_why() {
    let not_a_kernel = fake_root(Some(b"#!/bin/sh\necho not a kernel\n"), &VIRTIO, "");
    let out = select(not_a_kernel.path(), &[]);
    assert!(out.starts_with("distro package") && out.contains("neither a bzImage nor an ELF vmlinux"), "{out}");

    let no_console = fake_root(None, &["virtio_mmio", "virtio_pci"], "");
    let out = select(no_console.path(), &[]);
    assert!(out.starts_with("distro package") && out.contains("virtio_console is neither a module"), "{out}");

    // Built in, as its config says: usable without the module file.
    let built_in = fake_root(None, &["virtio_mmio", "virtio_pci"], "CONFIG_VIRTIO=y\nCONFIG_VIRTIO_CONSOLE=y\n");
    assert!(select(built_in.path(), &[]).starts_with("host kernel "));

    let empty = tempfile::tempdir().unwrap();
    let out = select(empty.path(), &[]);
    assert!(out.starts_with("distro package") && out.contains(&format!("no {}/boot/vmlinuz-{KVER}", empty.path().display())), "{out}");
}

fn an_image_is_built_around_the_host_kernel() {
    let (root, kver) = isobench_testkit::cached_distro_kernel().expect("checked by Need::DistroKernel");
    let workloads = isobench_harness::workloads::locate().expect("static workloads");
    let cache = tempfile::tempdir().unwrap();
    let out = Command::new("bash")
        .arg(script())
        .env("ISOBENCH_CACHE", cache.path())
        .env("ISOBENCH_WORKLOADS_DIR", workloads.agent.parent().unwrap())
        .env("ISOBENCH_HOST_ROOT", &root)
        .env("ISOBENCH_HOST_KVER", &kver)
        .env_remove("ISOBENCH_KERNEL")
        .env_remove("ISOBENCH_NO_HOST_KERNEL")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("host kernel"), "it says what it used: {stderr}");
    let guest: serde_json::Value = serde_json::from_slice(&std::fs::read(cache.path().join("guest/current/guest.json")).unwrap()).unwrap();
    assert_eq!(guest["kernel_version"], kver.as_str());
    assert!(guest["kernel_source"].as_str().unwrap().starts_with(&format!("host kernel {}/boot/vmlinuz-{kver}", root.display())), "{guest}");
    let modules: Vec<&str> = guest["modules"].as_array().unwrap().iter().filter_map(|m| m.as_str()).collect();
    for m in VIRTIO {
        assert!(modules.contains(&m), "{m} not in {modules:?}");
    }
    // Decompressed for finit_module: plain ELF objects in the initramfs.
    let cpio = std::fs::read(cache.path().join("guest/current/initramfs.cpio")).unwrap();
    let name = b"lib/modules/virtio_console.ko\0";
    let at = cpio.windows(name.len()).position(|w| w == name).expect("virtio_console.ko in the initramfs");
    let data = &cpio[at + name.len()..];
    let elf = data.iter().position(|b| *b != 0).map(|i| &data[i..i + 4]);
    assert_eq!(elf, Some(&b"\x7fELF"[..]), "virtio_console.ko is stored decompressed");
}
