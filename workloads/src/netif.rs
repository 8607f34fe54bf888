//! Network interface flags: bringing `lo` up in a fresh network namespace or a
//! guest, where every interface starts down. This is what `ip link set lo up`
//! does, through the classic SIOCGIFFLAGS/SIOCSIFFLAGS ioctls on any socket
//! (netdevice(7)), so no netlink code is needed for this one flag.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};

/// Sets IFF_UP on the loopback interface of the caller's network namespace.
/// Needs CAP_NET_ADMIN there; already up is fine.
pub fn loopback_up() -> io::Result<()> {
    set_up("lo")
}

/// Sets IFF_UP on interface `name` (read-modify-write of its flags).
fn set_up(name: &str) -> io::Result<()> {
    let sock = socket(AddressFamily::Inet, SockType::Datagram, SockFlag::SOCK_CLOEXEC, None)?;
    let mut req = ifreq_named(name)?;
    ioctl_ifreq(&sock, libc::SIOCGIFFLAGS, &mut req)?;
    // SAFETY: SIOCGIFFLAGS filled the `ifru_flags` member of the union.
    let flags = unsafe { req.ifr_ifru.ifru_flags };
    if flags & libc::IFF_UP as libc::c_short != 0 {
        return Ok(());
    }
    req.ifr_ifru.ifru_flags = flags | libc::IFF_UP as libc::c_short;
    ioctl_ifreq(&sock, libc::SIOCSIFFLAGS, &mut req)
}

fn ifreq_named(name: &str) -> io::Result<libc::ifreq> {
    // SAFETY: ifreq is plain old data (a name array and a union of integers
    // and sockaddrs); all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() >= req.ifr_name.len() || bytes.contains(&0) {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("bad interface name {name:?}")));
    }
    for (dst, &src) in req.ifr_name.iter_mut().zip(bytes) {
        *dst = src as libc::c_char;
    }
    Ok(req)
}

/// ioctl(2) with a `struct ifreq` argument.
fn ioctl_ifreq(sock: &OwnedFd, request: libc::c_ulong, req: &mut libc::ifreq) -> io::Result<()> {
    // SAFETY: `sock` is an open socket and `req` a valid, exclusively borrowed
    // ifreq with a NUL-terminated name; SIOCGIFFLAGS/SIOCSIFFLAGS read and write
    // only within it.
    let rc = unsafe { libc::ioctl(sock.as_raw_fd(), request as _, req as *mut libc::ifreq) };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_names() {
        assert!(ifreq_named("").is_err());
        assert!(ifreq_named("a-name-much-too-long-for-ifnamsiz").is_err());
        assert!(ifreq_named("lo").is_ok());
    }

    #[test]
    fn loopback_up_in_own_namespace_is_idempotent() {
        // lo is already up on any host that runs tests; this only reads flags
        // then returns, or (as root in a fresh netns) sets the flag.
        if nix::unistd::geteuid().is_root() {
            loopback_up().unwrap();
        }
    }
}
