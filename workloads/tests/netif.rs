//! Interface flags and addresses through netdevice(7) ioctls, for real
//! (root only; a skip otherwise): `lo` of a fresh network namespace starts
//! down, `loopback_up` brings it up with 127.0.0.1, twice without harm, and
//! a TCP connection over it works; an address for a missing interface is
//! refused with ENODEV.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};

use isobench_testkit::{trial, Need::*};
use isobench_workloads::netif;
use nix::net::if_::InterfaceFlags;

fn main() {
    isobench_testkit::run(vec![
        trial!(loopback_up_in_a_fresh_namespace_gives_lo_127_0_0_1_and_is_idempotent).needs(&[Root]),
        trial!(set_ipv4_on_a_missing_interface_says_enodev).needs(&[Root]),
    ]);
}

/// Runs `f` on a thread of its own in a new network namespace (unshare(2)
/// of CLONE_NEWNET moves only the calling thread; the host's is untouched).
fn in_a_fresh_netns<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(move || {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET)");
        f()
    })
    .join()
    .unwrap()
}

/// `lo` as the calling thread's network namespace sees it: (up, its IPv4 addresses).
fn lo() -> (bool, Vec<Ipv4Addr>) {
    let mut up = false;
    let mut addrs = Vec::new();
    for ifa in nix::ifaddrs::getifaddrs().unwrap().filter(|i| i.interface_name == "lo") {
        up |= ifa.flags.contains(InterfaceFlags::IFF_UP);
        if let Some(sin) = ifa.address.as_ref().and_then(|a| a.as_sockaddr_in()) {
            addrs.push(sin.ip());
        }
    }
    (up, addrs)
}

fn loopback_up_in_a_fresh_namespace_gives_lo_127_0_0_1_and_is_idempotent() {
    in_a_fresh_netns(|| {
        assert_eq!(lo(), (false, vec![]), "lo of a new network namespace starts down, without an address");
        for _ in 0..2 {
            netif::loopback_up().unwrap();
            assert_eq!(lo(), (true, vec![Ipv4Addr::LOCALHOST]), "lo is up with 127.0.0.1");
        }
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        client.write_all(b"ping").unwrap();
        let mut buf = [0u8; 4];
        server.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"ping");
    });
}

fn set_ipv4_on_a_missing_interface_says_enodev() {
    let e = netif::set_ipv4("isobench-nope0", Ipv4Addr::new(10, 199, 9, 2), 24).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENODEV), "{e}");
}
