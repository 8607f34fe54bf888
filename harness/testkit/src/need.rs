//! What a test needs from the machine it runs on: root, a tool, an image, a
//! kernel feature. Each [`Need`] has a check, a short label (shown in the
//! test's name as `[needs root, busybox]`) and a remedy line. The checks use
//! the library's own locators where it has one, so a test is skipped exactly
//! where isobench itself would say the thing is missing.

use std::path::{Path, PathBuf};
use std::process::Command;

use isobench_harness::container::cgroup::{self, CgroupMode};
use isobench_harness::container::rootfs::{self, distro};
use isobench_harness::env::peer::{BWRAP, CRUN, RUNC, RUNSC, UNSHARE};
use isobench_harness::vm::{image, qemu};

/// A prerequisite of a test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Effective uid 0: namespaces, mounts, cgroups, veth and tap devices.
    Root,
    /// A cgroup file system at /sys/fs/cgroup (v1, v2 or hybrid).
    Cgroups,
    /// A static busybox: the shell and tools of the minimal rootfs.
    Busybox,
    /// unshare(1): the `unshare` peer and the tests' private mount namespaces.
    Unshare,
    /// setpriv(1): the rootless test runs a helper as nobody through it.
    Setpriv,
    /// The test binaries (and isobench's, next to them) can be run by
    /// nobody (uid 65534): every directory above them is searchable by others.
    Nobody,
    /// User namespaces enabled (user.max_user_namespaces > 0).
    UserNamespaces,
    /// /dev/net/tun: the guest's tap device.
    Tun,
    /// The peer runtimes.
    Runc,
    Crun,
    Bwrap,
    /// gVisor's runsc.
    Runsc,
    /// The host distribution's rootfs (`--rootfs debian`): cached, or
    /// debootstrap to build it.
    DebianRootfs,
    /// qemu-system-x86_64.
    Qemu,
    /// virtiofsd: the daemon behind the vm's virtiofs share.
    Virtiofsd,
    /// The guest image scripts/build-guest makes.
    GuestImage,
    /// What scripts/build-guest runs: cpio, modinfo, sha256sum.
    GuestTools,
    /// The guest image's kernel takes virtio_blk as a module the agent
    /// loads (the distro kernel's image), so a test can build an initramfs
    /// without it; a minimal kernel has it built in. Which image was built
    /// is the user's choice, so a missing one stays a skip.
    ModularGuest,
    /// cpio(1): a test builds an initramfs of its own.
    Cpio,
    /// An unpacked distro kernel package in the cache (scripts/build-guest
    /// leaves it there when it used one).
    DistroKernel,
    /// ptrace(2) of a child (single-stepping the no-ops).
    Ptrace,
    /// The distribution's container seccomp profile (`--profile docker`).
    SeccompProfile,
    /// Loop devices, losetup(8) and mkfs.ext4(8): a scratch disk for a
    /// container to (try to) mount.
    LoopDevice,
    /// The reference tools of `isobench validate`.
    Perf,
    Iperf3,
    Hyperfine,
    Fio,
    /// The app metrics' servers natively: /usr/bin/redis-server and
    /// /usr/sbin/nginx (Debian's redis-server and nginx-light).
    AppServers,
    /// The app metrics' reference load generators: redis-benchmark, wrk.
    AppLoadTools,
    /// mkfs.ext4 (e2fsprogs): the vm's data and root disk images.
    Mkfs,
    /// nftables' `nft` (the bridge+NAT layer of `--profile docker`).
    Nft,
    /// Where the host has a /dev/kvm, this user may open it (the KVM
    /// verdict's reason is then about KVM itself, not a permission).
    KvmAccess,
    /// A kvm-pvm host (/dev/kvm from the kvm_pvm module), where a stock
    /// guest kernel never boots under KVM: a property of the host, never
    /// turned into a failure.
    KvmPvm,
    /// A KVM that boots a stock guest kernel: CI's machine has none (its
    /// /dev/kvm is kvm-pvm), so tests needing it are always ignored and run
    /// only with `--include-ignored` on a host that has one.
    KvmBoots,
    /// A pure cgroup v2 host whose root delegates the memory, pids and cpu
    /// controllers: CI's machine is hybrid (its cgroup2 has no controllers),
    /// so tests needing it are always ignored, as with [`Need::KvmBoots`].
    CgroupV2Controllers,
}

/// How a missing [`Need`] is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Root or something scripts/setup and scripts/build-guest provide: a
    /// skip, and a failure under `ISOBENCH_REQUIRE_PRIVILEGED=1`.
    Required,
    /// A property of the host that nothing installs: checked, and a skip
    /// when missing even under `ISOBENCH_REQUIRE_PRIVILEGED=1`.
    Host,
    /// What CI's machine cannot have: not checked, always ignored; runs with
    /// `--include-ignored` on a host that has it.
    Elsewhere,
}

impl Need {
    /// The short name shown in the test's name (`[needs root, busybox]`).
    pub fn label(self) -> &'static str {
        match self {
            Need::Root => "root",
            Need::Cgroups => "cgroups",
            Need::Busybox => "busybox",
            Need::Unshare => "unshare",
            Need::Setpriv => "setpriv",
            Need::Nobody => "nobody",
            Need::UserNamespaces => "user namespaces",
            Need::Tun => "tun",
            Need::Runc => "runc",
            Need::Crun => "crun",
            Need::Bwrap => "bwrap",
            Need::Runsc => "runsc",
            Need::DebianRootfs => "debian rootfs",
            Need::Qemu => "qemu",
            Need::Virtiofsd => "virtiofsd",
            Need::GuestImage => "guest image",
            Need::GuestTools => "guest tools",
            Need::ModularGuest => "modular guest",
            Need::Cpio => "cpio",
            Need::DistroKernel => "distro kernel",
            Need::Ptrace => "ptrace",
            Need::SeccompProfile => "seccomp profile",
            Need::LoopDevice => "loop device",
            Need::Perf => "perf",
            Need::Iperf3 => "iperf3",
            Need::Hyperfine => "hyperfine",
            Need::Fio => "fio",
            Need::AppServers => "redis-server and nginx",
            Need::AppLoadTools => "redis-benchmark and wrk",
            Need::Mkfs => "mkfs.ext4",
            Need::Nft => "nft",
            Need::KvmAccess => "kvm access",
            Need::KvmPvm => "kvm-pvm",
            Need::KvmBoots => "bootable kvm",
            Need::CgroupV2Controllers => "cgroup v2 controllers",
        }
    }

    pub fn class(self) -> Class {
        match self {
            Need::KvmPvm | Need::ModularGuest => Class::Host,
            Need::KvmBoots | Need::CgroupV2Controllers => Class::Elsewhere,
            _ => Class::Required,
        }
    }

    /// What to do about it, in one line.
    pub fn remedy(self) -> &'static str {
        match self {
            Need::Root => "run the tests as root (sudo -E scripts/test)",
            Need::Cgroups => "mount a cgroup file system at /sys/fs/cgroup (v1, v2 or hybrid)",
            Need::Busybox => "apt-get install busybox-static (scripts/setup installs it)",
            Need::Unshare | Need::Setpriv => "apt-get install util-linux",
            Need::Nobody => "build in a directory others may search (not under /root), or chmod o+x the directories above target/",
            Need::UserNamespaces => "sysctl -w user.max_user_namespaces=15000",
            Need::Tun => "modprobe tun",
            Need::Runc => "apt-get install runc (scripts/setup installs it as root)",
            Need::Crun => "apt-get install crun (scripts/setup installs it as root)",
            Need::Bwrap => "apt-get install bubblewrap (scripts/setup installs it as root)",
            Need::Runsc => "apt-get install runsc (scripts/setup installs it as root)",
            Need::DebianRootfs => "apt-get install debootstrap (scripts/setup installs it as root); the first test that needs the rootfs builds it",
            Need::Qemu => "apt-get install qemu-system-x86 (scripts/setup installs it)",
            Need::Virtiofsd => "apt-get install qemu-system-common (Debian 12's /usr/lib/qemu/virtiofsd; scripts/setup installs it)",
            Need::GuestImage => "run scripts/build-guest",
            Need::ModularGuest => "build the guest from the distro kernel (scripts/build-guest without ISOBENCH_KERNEL)",
            Need::GuestTools => "apt-get install cpio kmod coreutils (scripts/setup installs them)",
            Need::Cpio => "apt-get install cpio (scripts/setup installs it)",
            Need::DistroKernel => "ISOBENCH_NO_HOST_KERNEL=1 scripts/build-guest unpacks the distro kernel package into the cache",
            Need::Ptrace => "allow ptrace(2) of a child (CAP_SYS_PTRACE, kernel.yama.ptrace_scope below 3, no seccomp filter against it)",
            Need::SeccompProfile => "apt-get install golang-github-containers-common (scripts/setup installs it)",
            Need::LoopDevice => "modprobe loop; apt-get install mount e2fsprogs",
            Need::Perf => "apt-get install linux-perf (scripts/setup installs it as root)",
            Need::Iperf3 => "apt-get install iperf3 (scripts/setup installs it as root)",
            Need::Hyperfine => "apt-get install hyperfine (scripts/setup installs it as root)",
            Need::Fio => "apt-get install fio (scripts/setup installs it as root)",
            Need::AppServers => "apt-get install redis-server nginx-light (scripts/setup installs them as root, services disabled)",
            Need::AppLoadTools => "apt-get install redis-tools wrk (scripts/setup installs them as root)",
            Need::Mkfs => "apt-get install e2fsprogs (scripts/setup installs it)",
            Need::Nft => "apt-get install nftables (scripts/setup installs it)",
            Need::KvmAccess => "add the user to group kvm, or run the tests as root",
            Need::KvmPvm => "nothing to install: only a kvm-pvm host has it",
            Need::KvmBoots => "run with --include-ignored on a host whose KVM boots a stock guest kernel (CI's /dev/kvm is kvm-pvm, which never does)",
            Need::CgroupV2Controllers => {
                "run with --include-ignored on a pure cgroup v2 host with the memory, pids and cpu controllers (CI's host is hybrid: its cgroup2 has none)"
            }
        }
    }

    /// `Ok` when the machine has it, else what is missing. [`Class::Elsewhere`]
    /// needs are not checked: always missing.
    pub fn check(self) -> Result<(), String> {
        match self {
            Need::Root => match nix::unistd::geteuid() {
                uid if uid.is_root() => Ok(()),
                uid => Err(format!("not root (euid {uid})")),
            },
            Need::Cgroups => match cgroup::cgroup_mode() {
                CgroupMode::None => Err(format!("no cgroup file system at {}", cgroup::CGROUP_ROOT)),
                _ => Ok(()),
            },
            Need::Busybox => match rootfs::find_static_busybox() {
                Some(_) => Ok(()),
                None => Err(format!("no static busybox at {}", rootfs::build::BUSYBOX_CANDIDATES.join(", "))),
            },
            Need::Unshare => UNSHARE.locate().map(drop),
            Need::Setpriv => on_path("setpriv"),
            Need::Nobody => nobody_can_run_this_binary(),
            Need::UserNamespaces => match std::fs::read_to_string("/proc/sys/user/max_user_namespaces") {
                Ok(v) if v.trim() != "0" => Ok(()),
                Ok(_) => Err("user namespaces are disabled (user.max_user_namespaces=0)".into()),
                Err(e) => Err(format!("read /proc/sys/user/max_user_namespaces: {e}")),
            },
            Need::Tun => exists(Path::new("/dev/net/tun")),
            Need::Runc => RUNC.locate().map(drop),
            Need::Crun => CRUN.locate().map(drop),
            Need::Bwrap => BWRAP.locate().map(drop),
            Need::Runsc => RUNSC.locate().map(drop),
            Need::DebianRootfs => {
                let source = distro::Source::host().map_err(|e| e.to_string())?;
                let cached = isobench_harness::paths::cache_dir().join("rootfs").join(source.name()).join("etc").is_dir();
                let debootstrap = ["/usr/sbin/debootstrap", "/usr/bin/debootstrap", "/sbin/debootstrap"].iter().any(|p| Path::new(p).is_file());
                match cached || debootstrap {
                    true => Ok(()),
                    false => Err(format!("no debootstrap and no {} rootfs in the cache", source.name())),
                }
            }
            Need::Qemu => qemu::find_qemu().map(drop).map_err(|e| e.to_string()),
            Need::Virtiofsd => isobench_harness::vm::virtiofsd::find().map(drop).map_err(|e| e.to_string()),
            Need::GuestImage => image::locate().map(drop).map_err(|e| e.to_string()),
            Need::ModularGuest => match image::locate() {
                Ok(g) if g.modules.iter().any(|m| m == "virtio_blk") => Ok(()),
                Ok(g) => Err(format!("the guest image in {} loads no virtio_blk module (its kernel has it built in)", g.dir.display())),
                Err(e) => Err(e.to_string()),
            },
            Need::GuestTools => {
                let missing: Vec<&str> = ["cpio", "modinfo", "sha256sum"].into_iter().filter(|t| on_path(t).is_err()).collect();
                match missing.is_empty() {
                    true => Ok(()),
                    false => Err(format!("{} not installed", missing.join(", "))),
                }
            }
            Need::Cpio => on_path("cpio"),
            Need::DistroKernel => match cached_distro_kernel() {
                Some(_) => Ok(()),
                None => Err(format!("no unpacked distro kernel in {}", isobench_harness::paths::cache_dir().join("kernel").display())),
            },
            Need::Ptrace => ptrace_allowed(),
            Need::SeccompProfile => {
                let p = isobench_harness::container::seccomp::SeccompProfile::default_path();
                if p.is_file() {
                    Ok(())
                } else {
                    Err(format!("no {}", p.display()))
                }
            }
            Need::LoopDevice => match Path::new("/dev/loop-control").exists() {
                true => on_path("losetup").and_then(|()| on_path("mkfs.ext4")),
                false => Err("no /dev/loop-control".into()),
            },
            Need::Perf => runs("perf"),
            Need::Iperf3 => runs("iperf3"),
            Need::Hyperfine => runs("hyperfine"),
            Need::Fio => runs("fio"),
            Need::AppServers => match ["/usr/bin/redis-server", "/usr/sbin/nginx"].into_iter().find(|p| !Path::new(p).is_file()) {
                Some(p) => Err(format!("{p} is missing")),
                None => Ok(()),
            },
            Need::AppLoadTools => runs("redis-benchmark")
                .or_else(|_| Command::new("redis-benchmark").arg("--help").output().map(drop).map_err(|e| format!("redis-benchmark: {e}")))
                .and_then(|()| Command::new("wrk").arg("--version").output().map(drop).map_err(|e| format!("wrk: {e}"))),
            Need::Mkfs => match Command::new("mkfs.ext4").arg("-V").output() {
                Ok(o) if o.status.success() => Ok(()),
                Ok(o) => Err(format!("mkfs.ext4 -V failed ({})", o.status)),
                Err(e) => Err(format!("mkfs.ext4: {e}")),
            },
            Need::Nft => runs("nft"),
            Need::KvmAccess => match Path::new("/dev/kvm").exists() {
                true => std::fs::OpenOptions::new().read(true).write(true).open("/dev/kvm").map(drop).map_err(|e| format!("/dev/kvm: {e}")),
                false => Ok(()),
            },
            Need::KvmPvm => {
                exists(Path::new("/dev/kvm"))?;
                exists(Path::new("/sys/module/kvm_pvm")).map_err(|_| "/dev/kvm is not kvm-pvm's (no /sys/module/kvm_pvm)".to_string())
            }
            Need::KvmBoots | Need::CgroupV2Controllers => Err("ignored on every machine, not checked (CI's cannot have it)".into()),
        }
    }
}

/// The unpacked distro kernel package in the cache (scripts/build-guest
/// leaves it there): (its root, its kernel version).
pub fn cached_distro_kernel() -> Option<(PathBuf, String)> {
    for e in std::fs::read_dir(isobench_harness::paths::cache_dir().join("kernel")).ok()?.flatten() {
        if !e.path().join(".complete").exists() {
            continue;
        }
        for k in std::fs::read_dir(e.path().join("boot")).ok()?.flatten() {
            if let Some(kver) = k.file_name().to_str().and_then(|n| n.strip_prefix("vmlinuz-")) {
                return Some((e.path(), kver.to_string()));
            }
        }
    }
    None
}

fn exists(p: &Path) -> Result<(), String> {
    match p.exists() {
        true => Ok(()),
        false => Err(format!("no {}", p.display())),
    }
}

/// `command -v TOOL` in a shell: on this process's PATH.
fn on_path(tool: &str) -> Result<(), String> {
    match Command::new("sh").args(["-c", &format!("command -v {tool}")]).output() {
        Ok(o) if o.status.success() => Ok(()),
        _ => Err(format!("{tool} not found on PATH")),
    }
}

/// `TOOL --version` runs and succeeds (what `isobench validate` relies on).
fn runs(tool: &str) -> Result<(), String> {
    match Command::new(tool).arg("--version").output() {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(format!("{tool} --version failed ({})", o.status)),
        Err(e) => Err(format!("{tool}: {e}")),
    }
}

/// Whether others (nobody) may search every directory above this test
/// binary and execute it: its mode bits, ACLs aside.
fn nobody_can_run_this_binary() -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let exe = std::env::current_exe().map_err(|e| format!("the test binary's path: {e}"))?;
    for p in exe.ancestors() {
        let mode = std::fs::metadata(p).map_err(|e| format!("{}: {e}", p.display()))?.permissions().mode();
        if mode & 0o001 == 0 {
            return Err(format!("{} is not executable or searchable by others (mode {:o})", p.display(), mode & 0o7777));
        }
    }
    Ok(())
}

/// Whether a child may ask to be traced: fork, PTRACE_TRACEME, exit with
/// what it said.
fn ptrace_allowed() -> Result<(), String> {
    // SAFETY: the child calls only ptrace(2) and _exit(2), both
    // async-signal-safe, on no shared data.
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Child) => {
            let none = std::ptr::null_mut::<libc::c_void>();
            // SAFETY: PTRACE_TRACEME takes no pointers (nix has no ptrace
            // without its feature); _exit(2) ends the forked child without
            // running the parent's atexit handlers or destructors.
            unsafe {
                let rc = libc::ptrace(libc::PTRACE_TRACEME, 0, none, none);
                libc::_exit(if rc == 0 { 0 } else { 1 })
            }
        }
        Ok(nix::unistd::ForkResult::Parent { child }) => match nix::sys::wait::waitpid(child, None) {
            Ok(nix::sys::wait::WaitStatus::Exited(_, 0)) => Ok(()),
            Ok(_) => Err("PTRACE_TRACEME is refused here".into()),
            Err(e) => Err(format!("waitpid: {e}")),
        },
        Err(e) => Err(format!("fork: {e}")),
    }
}
