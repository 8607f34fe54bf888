//! The privileged system calls the container's init makes, behind one trait:
//! [`Linux`] makes them, and the recording double in the tests writes them
//! down, so the order of the mount plan is unit-tested without root (youki's
//! `Syscall` trait is the model).
//!
//! Every method takes C strings prepared before clone(2) and must not
//! allocate: [`Linux`] runs in a child cloned from a possibly multi-threaded
//! process, where another thread may have held the allocator's lock at the
//! moment of the clone.

use std::ffi::CStr;

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};
use nix::sys::stat::{Mode, SFlag};

pub trait Syscall {
    fn mount(&self, source: Option<&CStr>, target: &CStr, fstype: Option<&CStr>, flags: MsFlags, data: Option<&CStr>) -> nix::Result<()>;
    fn umount2(&self, target: &CStr, flags: MntFlags) -> nix::Result<()>;
    fn pivot_root(&self, new_root: &CStr, put_old: &CStr) -> nix::Result<()>;
    fn chroot(&self, path: &CStr) -> nix::Result<()>;
    fn chdir(&self, path: &CStr) -> nix::Result<()>;
    fn mkdir(&self, path: &CStr, mode: Mode) -> nix::Result<()>;
    /// mkdtemp(3) of `template` (ending in `XXXXXX`, copied to the stack:
    /// nothing is allocated), then chdir(2) into the new directory.
    fn mkdtemp_chdir(&self, template: &CStr) -> nix::Result<()>;
    fn mknod(&self, path: &CStr, kind: SFlag, mode: Mode, dev: libc::dev_t) -> nix::Result<()>;
    fn symlink(&self, target: &CStr, link: &CStr) -> nix::Result<()>;
    fn sethostname(&self, name: &CStr) -> nix::Result<()>;
    /// Sets IFF_UP on the interface `name` (the loopback of a new net namespace
    /// starts down).
    fn link_up(&self, name: &CStr) -> nix::Result<()>;
    /// prctl(PR_CAPBSET_DROP): capability number `cap` leaves the bounding set.
    fn drop_bounding_cap(&self, cap: u32) -> nix::Result<()>;
    /// prctl(PR_CAP_AMBIENT_CLEAR_ALL): an empty ambient set.
    fn clear_ambient_caps(&self) -> nix::Result<()>;
    /// capset(2) of this thread: the permitted, effective and inheritable
    /// sets as masks (bit n = capability n).
    fn set_caps(&self, permitted: u64, effective: u64, inheritable: u64) -> nix::Result<()>;
    /// prctl(PR_SET_NO_NEW_PRIVS): execve(2) grants nothing more (no setuid,
    /// no file capabilities), and an unprivileged process may load a filter.
    fn set_no_new_privs(&self) -> nix::Result<()>;
    /// seccomp(SECCOMP_SET_MODE_FILTER) of a classic BPF program.
    fn seccomp_filter(&self, program: &[libc::sock_filter]) -> nix::Result<()>;
    /// What is at `path` (symbolic links followed, as mount(2) follows
    /// them), told by stat(2)'s return value and mode, never by errno: the
    /// cloned child shares the errno of the thread that launched it, which
    /// that thread's own libc calls may write meanwhile (see
    /// `ContainerSpec::shares_memory`), so the child decides nothing by it.
    fn path_kind(&self, path: &CStr) -> PathKind;
}

/// What [`Syscall::path_kind`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathKind {
    /// Nothing there (or nothing stat(2) could reach).
    Missing,
    Directory,
    /// A file, device or anything else that is not a directory.
    Other,
}

/// `_LINUX_CAPABILITY_VERSION_3` (linux/capability.h): 64-bit sets, as two
/// 32-bit halves.
const CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// `struct __user_cap_header_struct` (libc has no binding).
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

/// `struct __user_cap_data_struct`, one per 32-bit half.
#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// The longest mkdtemp(3) template [`Linux::mkdtemp_chdir`] takes, with its
/// NUL (a stack buffer: the child allocates nothing); PATH_MAX.
const MAX_TEMPLATE: usize = libc::PATH_MAX as usize;

/// The real thing.
pub struct Linux;

impl Syscall for Linux {
    fn mount(&self, source: Option<&CStr>, target: &CStr, fstype: Option<&CStr>, flags: MsFlags, data: Option<&CStr>) -> nix::Result<()> {
        nix::mount::mount(source, target, fstype, flags, data)
    }

    fn umount2(&self, target: &CStr, flags: MntFlags) -> nix::Result<()> {
        nix::mount::umount2(target, flags)
    }

    fn pivot_root(&self, new_root: &CStr, put_old: &CStr) -> nix::Result<()> {
        nix::unistd::pivot_root(new_root, put_old)
    }

    fn chroot(&self, path: &CStr) -> nix::Result<()> {
        nix::unistd::chroot(path)
    }

    fn chdir(&self, path: &CStr) -> nix::Result<()> {
        nix::unistd::chdir(path)
    }

    fn mkdir(&self, path: &CStr, mode: Mode) -> nix::Result<()> {
        nix::unistd::mkdir(path, mode)
    }

    fn mkdtemp_chdir(&self, template: &CStr) -> nix::Result<()> {
        let bytes = template.to_bytes_with_nul();
        let mut buf = [0u8; MAX_TEMPLATE];
        if bytes.len() > buf.len() {
            return Err(Errno::ENAMETOOLONG);
        }
        buf[..bytes.len()].copy_from_slice(bytes);
        // SAFETY: `buf` holds a NUL-terminated copy of the template, which
        // mkdtemp(3) rewrites in place; nix's mkdtemp returns a PathBuf (an
        // allocation), so libc's is called directly.
        if unsafe { libc::mkdtemp(buf.as_mut_ptr().cast()) }.is_null() {
            return Err(Errno::last());
        }
        // SAFETY: `buf` is still NUL-terminated (mkdtemp only replaced X's).
        Errno::result(unsafe { libc::chdir(buf.as_ptr().cast()) }).map(drop)
    }

    fn mknod(&self, path: &CStr, kind: SFlag, mode: Mode, dev: libc::dev_t) -> nix::Result<()> {
        nix::sys::stat::mknod(path, kind, mode, dev)
    }

    fn symlink(&self, target: &CStr, link: &CStr) -> nix::Result<()> {
        nix::unistd::symlinkat(target, None, link)
    }

    fn sethostname(&self, name: &CStr) -> nix::Result<()> {
        // SAFETY: name points to name.len() valid bytes for the call.
        let rc = unsafe { libc::sethostname(name.as_ptr(), name.to_bytes().len()) };
        Errno::result(rc).map(drop)
    }

    fn link_up(&self, name: &CStr) -> nix::Result<()> {
        let bytes = name.to_bytes_with_nul();
        if bytes.len() > libc::IFNAMSIZ {
            return Err(Errno::ENAMETOOLONG);
        }
        // SAFETY: a plain socket(2); the fd is closed below on every path.
        let fd = Errno::result(unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) })?;
        // SAFETY: ifreq is plain old data, all-zero is a valid value.
        let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
        for (dst, src) in ifr.ifr_name.iter_mut().zip(bytes) {
            *dst = *src as libc::c_char;
        }
        // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read and write only the ifreq we
        // pass, which lives on this stack frame for the duration of the calls;
        // ifr_name is NUL-terminated (checked length above, zeroed rest).
        let rc = unsafe {
            let mut rc = libc::ioctl(fd, libc::SIOCGIFFLAGS as _, &mut ifr);
            if rc == 0 {
                ifr.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
                rc = libc::ioctl(fd, libc::SIOCSIFFLAGS as _, &mut ifr);
            }
            rc
        };
        let result = Errno::result(rc).map(drop);
        // SAFETY: fd is ours and not used after this.
        unsafe { libc::close(fd) };
        result
    }

    fn path_kind(&self, path: &CStr) -> PathKind {
        // SAFETY: all-zero is a valid `struct stat`, which stat(2) fills in;
        // `path` is NUL-terminated and both outlive the call.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        if unsafe { libc::stat(path.as_ptr(), &mut st) } != 0 {
            return PathKind::Missing;
        }
        match st.st_mode & libc::S_IFMT {
            libc::S_IFDIR => PathKind::Directory,
            _ => PathKind::Other,
        }
    }

    fn drop_bounding_cap(&self, cap: u32) -> nix::Result<()> {
        // SAFETY: prctl(2) with integer arguments only.
        Errno::result(unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) }).map(drop)
    }

    fn clear_ambient_caps(&self) -> nix::Result<()> {
        // SAFETY: prctl(2) with integer arguments only.
        Errno::result(unsafe { libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong, 0, 0, 0) }).map(drop)
    }

    fn set_caps(&self, permitted: u64, effective: u64, inheritable: u64) -> nix::Result<()> {
        let mut header = CapHeader { version: CAPABILITY_VERSION_3, pid: 0 };
        let half = |m: u64, i: u32| (m >> (32 * i)) as u32;
        let data = [0, 1].map(|i| CapData { effective: half(effective, i), permitted: half(permitted, i), inheritable: half(inheritable, i) });
        // SAFETY: capset(2) reads the header and two data structs, both on
        // this stack frame; nix and libc have no wrapper.
        Errno::result(unsafe { libc::syscall(libc::SYS_capset, &mut header as *mut CapHeader, data.as_ptr()) }).map(drop)
    }

    fn set_no_new_privs(&self) -> nix::Result<()> {
        // SAFETY: prctl(2) with integer arguments only.
        Errno::result(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1 as libc::c_ulong, 0, 0, 0) }).map(drop)
    }

    fn seccomp_filter(&self, program: &[libc::sock_filter]) -> nix::Result<()> {
        let len = u16::try_from(program.len()).map_err(|_| Errno::E2BIG)?;
        let prog = libc::sock_fprog { len, filter: program.as_ptr().cast_mut() };
        // SAFETY: seccomp(2) copies the program `prog` points to, which lives
        // as long as `program`; flags 0 as libseccomp's seccomp_load uses
        // them. nix has no wrapper.
        Errno::result(unsafe { libc::syscall(libc::SYS_seccomp, libc::SECCOMP_SET_MODE_FILTER, 0, &prog as *const libc::sock_fprog) }).map(drop)
    }
}

#[cfg(test)]
pub mod recording {
    //! A [`Syscall`] that records each call as one line and fails on request.

    use std::cell::RefCell;

    use super::*;

    #[derive(Default)]
    pub struct Recorder {
        pub calls: RefCell<Vec<String>>,
        /// A call whose line starts with this fails with `fail_with`.
        pub fail_on: Option<&'static str>,
        /// The errno of `fail_on`; `None`: EPERM.
        pub fail_with: Option<Errno>,
        /// The kernel's last capability: dropping a higher one fails (EINVAL).
        pub last_cap: Option<u32>,
        /// Paths [`Syscall::path_kind`] finds directories, and finds missing;
        /// any other path is a file. Asking is not recorded as a call.
        pub dirs: Vec<&'static str>,
        pub missing: Vec<&'static str>,
    }

    impl Recorder {
        fn record(&self, line: String) -> nix::Result<()> {
            let fail = self.fail_on.is_some_and(|p| line.starts_with(p));
            self.calls.borrow_mut().push(line);
            if fail {
                Err(self.fail_with.unwrap_or(Errno::EPERM))
            } else {
                Ok(())
            }
        }

        pub fn lines(&self) -> Vec<String> {
            self.calls.borrow().clone()
        }
    }

    fn s(c: Option<&CStr>) -> String {
        c.map_or("-".into(), |c| c.to_string_lossy().into_owned())
    }

    impl Syscall for Recorder {
        fn mount(&self, source: Option<&CStr>, target: &CStr, fstype: Option<&CStr>, flags: MsFlags, data: Option<&CStr>) -> nix::Result<()> {
            let flags: Vec<_> = flags.iter_names().map(|(name, _)| name).collect();
            self.record(format!("mount {} {} {} {} {}", s(source), s(Some(target)), s(fstype), flags.join("|"), s(data)))
        }
        fn umount2(&self, target: &CStr, flags: MntFlags) -> nix::Result<()> {
            let flags: Vec<_> = flags.iter_names().map(|(name, _)| name).collect();
            self.record(format!("umount2 {} {}", s(Some(target)), flags.join("|")))
        }
        fn pivot_root(&self, new_root: &CStr, put_old: &CStr) -> nix::Result<()> {
            self.record(format!("pivot_root {} {}", s(Some(new_root)), s(Some(put_old))))
        }
        fn chroot(&self, path: &CStr) -> nix::Result<()> {
            self.record(format!("chroot {}", s(Some(path))))
        }
        fn chdir(&self, path: &CStr) -> nix::Result<()> {
            self.record(format!("chdir {}", s(Some(path))))
        }
        fn mkdir(&self, path: &CStr, mode: Mode) -> nix::Result<()> {
            self.record(format!("mkdir {} {:o}", s(Some(path)), mode.bits()))
        }
        fn mkdtemp_chdir(&self, template: &CStr) -> nix::Result<()> {
            self.record(format!("mkdtemp+chdir {}", template.to_string_lossy()))
        }
        fn mknod(&self, path: &CStr, _kind: SFlag, mode: Mode, dev: libc::dev_t) -> nix::Result<()> {
            self.record(format!("mknod {} {:o} {},{}", s(Some(path)), mode.bits(), libc::major(dev), libc::minor(dev)))
        }
        fn symlink(&self, target: &CStr, link: &CStr) -> nix::Result<()> {
            self.record(format!("symlink {} -> {}", s(Some(link)), s(Some(target))))
        }
        fn sethostname(&self, name: &CStr) -> nix::Result<()> {
            self.record(format!("sethostname {}", s(Some(name))))
        }
        fn link_up(&self, name: &CStr) -> nix::Result<()> {
            self.record(format!("link_up {}", s(Some(name))))
        }
        fn drop_bounding_cap(&self, cap: u32) -> nix::Result<()> {
            // The kernel's answer past its last capability.
            if self.last_cap.is_some_and(|last| cap > last) {
                return Err(Errno::EINVAL);
            }
            self.record(format!("capbset_drop {cap}"))
        }
        fn clear_ambient_caps(&self) -> nix::Result<()> {
            self.record("ambient_clear".into())
        }
        fn set_caps(&self, permitted: u64, effective: u64, inheritable: u64) -> nix::Result<()> {
            self.record(format!("capset permitted={permitted:x} effective={effective:x} inheritable={inheritable:x}"))
        }
        fn set_no_new_privs(&self) -> nix::Result<()> {
            self.record("no_new_privs".into())
        }
        fn seccomp_filter(&self, program: &[libc::sock_filter]) -> nix::Result<()> {
            self.record(format!("seccomp {} instructions", program.len()))
        }
        fn path_kind(&self, path: &CStr) -> PathKind {
            let path = path.to_string_lossy();
            match (self.dirs.iter().any(|d| *d == path), self.missing.iter().any(|m| *m == path)) {
                (true, _) => PathKind::Directory,
                (_, true) => PathKind::Missing,
                _ => PathKind::Other,
            }
        }
    }
}
