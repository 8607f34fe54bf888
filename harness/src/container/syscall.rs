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
    fn mknod(&self, path: &CStr, kind: SFlag, mode: Mode, dev: libc::dev_t) -> nix::Result<()>;
    fn symlink(&self, target: &CStr, link: &CStr) -> nix::Result<()>;
    fn sethostname(&self, name: &CStr) -> nix::Result<()>;
    /// Sets IFF_UP on the interface `name` (the loopback of a new net namespace
    /// starts down).
    fn link_up(&self, name: &CStr) -> nix::Result<()>;
}

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
}

#[cfg(test)]
pub mod recording {
    //! A [`Syscall`] that records each call as one line and fails on request.

    use std::cell::RefCell;

    use super::*;

    #[derive(Default)]
    pub struct Recorder {
        pub calls: RefCell<Vec<String>>,
        /// A call whose line starts with this fails with EPERM.
        pub fail_on: Option<&'static str>,
    }

    impl Recorder {
        fn record(&self, line: String) -> nix::Result<()> {
            let fail = self.fail_on.is_some_and(|p| line.starts_with(p));
            self.calls.borrow_mut().push(line);
            if fail {
                Err(Errno::EPERM)
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
    }
}
