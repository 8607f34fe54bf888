//! Network interface flags and IPv4 addresses: bringing `lo` up in a fresh
//! network namespace or a guest, where every interface starts down, and
//! giving a guest's virtio-net `eth0` its static address. This is what
//! `ip link set lo up` and `ip addr add A/N dev eth0` do, through the classic
//! netdevice(7) ioctls on any socket (SIOCSIFFLAGS, SIOCSIFADDR,
//! SIOCSIFNETMASK), so the static agent needs no netlink code. (The harness
//! configures veth and tap devices on the host side through netlink.)

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

/// Gives interface `name` the IPv4 address `addr/prefix_len` and sets it up,
/// as `ip addr add addr/prefix_len dev name; ip link set name up` would.
/// Needs CAP_NET_ADMIN. Errors: no such interface (ENODEV), a prefix over 32.
pub fn set_ipv4(name: &str, addr: std::net::Ipv4Addr, prefix_len: u8) -> io::Result<()> {
    if prefix_len > 32 {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("prefix length {prefix_len} is over 32")));
    }
    let sock = socket(AddressFamily::Inet, SockType::Datagram, SockFlag::SOCK_CLOEXEC, None)?;
    let mask = if prefix_len == 0 { 0 } else { u32::MAX << (32 - prefix_len) };
    for (request, value) in [(libc::SIOCSIFADDR, u32::from(addr)), (libc::SIOCSIFNETMASK, mask)] {
        let mut req = ifreq_named(name)?;
        // SAFETY: sockaddr_in fits in the ifreq union (it holds a sockaddr of
        // the same size), and all-zero is a valid sockaddr_in.
        let sin = unsafe { &mut *(&mut req.ifr_ifru.ifru_addr as *mut libc::sockaddr as *mut libc::sockaddr_in) };
        sin.sin_family = libc::AF_INET as libc::sa_family_t;
        sin.sin_addr.s_addr = value.to_be();
        ioctl_ifreq(&sock, request, &mut req)?;
    }
    set_up(name)
}

/// Parses `A.B.C.D/N` (an IPv4 address with its prefix length).
pub fn parse_cidr(s: &str) -> Option<(std::net::Ipv4Addr, u8)> {
    let (a, n) = s.split_once('/')?;
    let n: u8 = n.parse().ok().filter(|n| *n <= 32)?;
    Some((a.parse().ok()?, n))
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
    fn cidr_parsing() {
        assert_eq!(parse_cidr("10.199.2.2/24"), Some((std::net::Ipv4Addr::new(10, 199, 2, 2), 24)));
        assert_eq!(parse_cidr("10.199.2.2/33"), None);
        assert_eq!(parse_cidr("10.199.2.2"), None);
        assert_eq!(parse_cidr("x/24"), None);
    }

    #[test]
    fn a_prefix_over_32_is_refused_before_any_ioctl() {
        assert_eq!(set_ipv4("lo", std::net::Ipv4Addr::LOCALHOST, 40).unwrap_err().kind(), io::ErrorKind::InvalidInput);
    }
}
