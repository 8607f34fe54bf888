//! The run's private network namespace for real (root only; a skip
//! otherwise): the namespace bound under /run/netns and gone after the run,
//! a veth pair into a child's own namespace carrying a real TCP connection,
//! a tap, Docker's bridge with a published port DNAT'd by nftables, and the
//! sweep of a SIGKILLed run's namespace. The host's own namespace (its
//! links and its nftables ruleset) must never see any of it.

use isobench_testkit::{trial, wait_until, Need::*};

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use isobench_harness::container::net::{self, NetError, RunNetns};

fn main() {
    isobench_testkit::run(vec![
        trial!(create_binds_a_new_namespace_with_lo_up_and_drop_removes_it).needs(&[Root]),
        trial!(shared_is_one_namespace_while_held).needs(&[Root]),
        trial!(veth_into_a_child_namespace_carries_tcp).needs(&[Root]),
        trial!(dropping_the_namespace_removes_the_veth_pair).needs(&[Root]),
        trial!(tap_is_made_in_the_namespace_and_removed_on_drop).needs(&[Root, Tun]),
        trial!(a_tap_left_in_the_namespace_is_not_moved_to_the_host).needs(&[Root, Tun]),
        trial!(long_interface_names_are_refused_clearly).needs(&[Root]),
        trial!(a_bridge_with_nat_publishes_a_port_inside_the_run_namespace_only).needs(&[Root, Nft]),
        trial!(hold_a_netns_for_the_sweep_test).helper("run by sigkilled_run_leaves_a_namespace_that_sweep_removes, then SIGKILLed"),
        trial!(sigkilled_run_leaves_a_namespace_that_sweep_removes).needs(&[Root, Tun]),
        trial!(create_as_an_unprivileged_user).helper("run by without_root_the_error_says_what_to_do as nobody"),
        trial!(without_root_the_error_says_what_to_do).needs(&[Root, Nobody]),
    ]);
}

/// The nsfs inode of a namespace file.
fn ino(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().ino()
}

/// Whether anything still reaches the network namespace `ino`: a mount (the
/// /run/netns bind), a task in it, or an open fd of it. When nothing does,
/// the kernel frees it.
fn netns_reachable(ino: u64) -> bool {
    let tag = format!("net:[{ino}]");
    if std::fs::read_to_string("/proc/self/mountinfo").unwrap().contains(&tag) {
        return true;
    }
    let links = |dir: PathBuf| std::fs::read_dir(dir).into_iter().flatten().flatten().map(|e| e.path()).collect::<Vec<_>>();
    for proc in links(PathBuf::from("/proc")) {
        if !proc.file_name().unwrap().to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let tasks = links(proc.join("task")).into_iter().map(|t| t.join("ns/net"));
        let fds = links(proc.join("fd"));
        if tasks.chain(fds).any(|p| std::fs::read_link(p).is_ok_and(|l| l.to_string_lossy() == tag)) {
            return true;
        }
    }
    false
}

/// True when the host's own namespace has an interface called `name`.
fn on_host(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// A `sleep` in a network namespace of its own (unshared before exec), and
/// an open fd of that namespace. Killed on drop.
struct Child {
    child: std::process::Child,
    ns: std::fs::File,
}

impl Child {
    fn spawn() -> Child {
        let mut cmd = Command::new("sleep");
        cmd.arg("60");
        // SAFETY: unshare(2) is a plain system call, safe between fork and exec.
        unsafe {
            cmd.pre_exec(|| nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).map_err(Into::into));
        }
        let child = cmd.spawn().unwrap();
        // spawn() returns after the exec, so the unshare has happened.
        let ns = std::fs::File::open(format!("/proc/{}/ns/net", child.id())).unwrap();
        assert_ne!(ns.metadata().unwrap().ino(), ino(Path::new("/proc/self/ns/net")));
        Child { child, ns }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn create_binds_a_new_namespace_with_lo_up_and_drop_removes_it() {
    let ns = RunNetns::create().unwrap();
    assert!(ns.name().starts_with(&format!("isobench-{}-", std::process::id())), "{}", ns.name());
    assert_eq!(ns.path(), Path::new("/run/netns").join(ns.name()));
    assert!(ns.path().exists());
    let id = ino(ns.path());
    assert_ne!(id, ino(Path::new("/proc/self/ns/net")), "the run namespace is the test's own");
    assert_eq!(ns.file().metadata().unwrap().ino(), id);
    let lo = ns.link_state("lo").unwrap();
    assert!(lo.up, "{lo:?}");
    assert_eq!(ns.links().unwrap(), vec!["lo".to_string()]);
    // A thread of run_in is in the namespace, and sees it as its own.
    let inside = ns.run_in(|| ino(Path::new("/proc/thread-self/ns/net"))).unwrap();
    assert_eq!(inside, id);
    let path = ns.path().to_path_buf();
    drop(ns);
    assert!(!path.exists(), "{} left behind", path.display());
    assert!(!netns_reachable(id), "something still holds net:[{id}]");
}

fn shared_is_one_namespace_while_held() {
    let a = RunNetns::shared().unwrap();
    let b = RunNetns::shared().unwrap();
    assert_eq!(a.name(), b.name());
    let (path, id) = (a.path().to_path_buf(), ino(a.path()));
    drop(a);
    assert!(path.exists(), "dropped while an Arc was alive");
    drop(b);
    assert!(!path.exists());
    assert!(!netns_reachable(id));
    let c = RunNetns::shared().unwrap();
    assert_ne!(c.path(), path, "a fresh one after the last drop");
}

fn veth_into_a_child_namespace_carries_tcp() {
    let child = Child::spawn();
    let ns = RunNetns::create().unwrap();
    let subnet = ns.allocate_subnet();
    assert_eq!(subnet.host.octets()[..2], [10, 199]);
    let (host_if, peer_if) = ("ibt-vh0", "ibt-vp0");
    let link = ns.add_veth(host_if, child.ns.as_fd(), peer_if, &subnet, Some(1400)).unwrap();
    assert_eq!(link.name(), host_if);

    let host = ns.link_state(host_if).unwrap();
    assert!(host.up, "{host:?}");
    assert_eq!(host.ipv4, vec![(subnet.host, 24)]);
    assert_eq!(host.mtu, 1400);
    assert_eq!(host.kind.as_deref(), Some("veth"));
    let peer = net::link_state_in(child.ns.as_fd(), peer_if).unwrap();
    assert!(peer.up, "{peer:?}");
    assert_eq!(peer.ipv4, vec![(subnet.peer, 24)]);
    assert!(net::link_state_in(child.ns.as_fd(), "lo").unwrap().up);
    assert!(!ns.links().unwrap().contains(&peer_if.to_string()), "the peer end is in the child's namespace only");
    assert!(!on_host(host_if) && !on_host(peer_if), "the host's namespace got a link");

    // A listener inside the child's namespace, a client in the run's.
    let listener = net::run_in_ns(child.ns.as_fd(), || TcpListener::bind((subnet.peer, 0))).unwrap().unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut s, from) = listener.accept().unwrap();
        let mut buf = [0u8; 5];
        s.read_exact(&mut buf).unwrap();
        s.write_all(&buf.map(|b| b.to_ascii_uppercase())).unwrap();
        from.ip()
    });
    let mut client = ns.run_in(|| TcpStream::connect_timeout(&(subnet.peer, port).into(), Duration::from_secs(5))).unwrap().unwrap();
    client.write_all(b"hello").unwrap();
    let mut answer = [0u8; 5];
    client.read_exact(&mut answer).unwrap();
    assert_eq!(&answer, b"HELLO");
    assert_eq!(server.join().unwrap(), std::net::IpAddr::V4(subnet.host));

    // Dropping the host end removes the pair.
    drop(link);
    assert!(!ns.links().unwrap().contains(&host_if.to_string()));
    wait_until("the peer end goes with the host end", Duration::from_secs(5), || {
        matches!(net::link_state_in(child.ns.as_fd(), peer_if), Err(NetError::NoSuchLink { .. }))
    });
}

fn dropping_the_namespace_removes_the_veth_pair() {
    let child = Child::spawn();
    let ns = RunNetns::create().unwrap();
    let subnet = ns.allocate_subnet();
    let link = ns.add_veth("ibt-vh1", child.ns.as_fd(), "ibt-vp1", &subnet, None).unwrap();
    assert_eq!(ns.link_state("ibt-vh1").unwrap().mtu, 1500, "the kernel's default");
    let id = ino(ns.path());
    drop(ns);
    assert!(!netns_reachable(id));
    // The kernel frees the namespace asynchronously (cleanup_net), deleting
    // the host end and with it the peer in the child's namespace.
    wait_until("the peer end goes with the run namespace", Duration::from_secs(10), || {
        matches!(net::link_state_in(child.ns.as_fd(), "ibt-vp1"), Err(NetError::NoSuchLink { .. }))
    });
    assert!(!on_host("ibt-vh1"));
    link.delete().unwrap(); // already gone: fine
}

fn tap_is_made_in_the_namespace_and_removed_on_drop() {
    let ns = RunNetns::create().unwrap();
    let first = ns.allocate_subnet();
    let subnet = ns.allocate_subnet();
    assert_eq!(subnet.host, Ipv4Addr::new(10, 199, first.host.octets()[2] + 1, 1));
    let tap = ns.add_tap("ibt-tap0", &subnet).unwrap();
    assert!(ns.links().unwrap().contains(&"ibt-tap0".to_string()));
    let state = ns.link_state("ibt-tap0").unwrap();
    assert!(state.up, "{state:?}");
    assert_eq!(state.ipv4, vec![(subnet.host, 24)]);
    assert!(!on_host("ibt-tap0"), "the tap is on the host");
    // The tun driver says what it is: a persistent tap without packet information.
    assert_eq!(state.kind.as_deref(), Some("tun"));
    assert_eq!(state.tun, Some(net::TunState { tap: true, packet_info: false, persist: true }));
    // A second one of the same name is refused, not attached to.
    assert!(matches!(ns.add_tap("ibt-tap0", &subnet), Err(NetError::Exists { .. })));
    drop(tap);
    assert!(!ns.links().unwrap().contains(&"ibt-tap0".to_string()));
}

fn a_tap_left_in_the_namespace_is_not_moved_to_the_host() {
    let ns = RunNetns::create().unwrap();
    let tap = ns.add_tap("ibt-tap1", &ns.allocate_subnet()).unwrap();
    let id = ino(ns.path());
    drop(ns);
    assert!(!netns_reachable(id));
    // A device without rtnl_link_ops would be moved to the initial namespace
    // when its namespace dies; a tun device is deleted.
    std::thread::sleep(Duration::from_millis(500));
    assert!(!on_host("ibt-tap1"));
    drop(tap);
}

fn long_interface_names_are_refused_clearly() {
    let ns = RunNetns::create().unwrap();
    let subnet = ns.allocate_subnet();
    let e = ns.add_tap("isobench-tap-0000", &subnet).unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid interface name \"isobench-tap-0000\": it is longer than 15 bytes (Linux allows 1 to 15 bytes without '/', ':' or white space)"
    );
    let child = Child::spawn();
    let e = ns.add_veth("ok0", child.ns.as_fd(), "a-much-too-long-name", &subnet, None).unwrap_err();
    assert!(matches!(e, NetError::BadIfName { .. }), "{e}");
    assert_eq!(ns.links().unwrap(), vec!["lo".to_string()], "nothing was made");
}

/// Helper for `sigkilled_run_leaves_a_namespace_that_sweep_removes`: run
/// only by that test, as `--ignored --exact` in a process of its own.
fn hold_a_netns_for_the_sweep_test() {
    let ns = RunNetns::create().unwrap();
    let tap = ns.add_tap("ibt-held0", &ns.allocate_subnet()).unwrap();
    println!("HOLD {}", ns.path().display());
    std::thread::sleep(Duration::from_secs(1000));
    drop(tap);
}

fn sigkilled_run_leaves_a_namespace_that_sweep_removes() {
    let line = isobench_testkit::hold_then_kill(&mut isobench_testkit::helper("hold_a_netns_for_the_sweep_test"));
    let path = PathBuf::from(line.expect("the holder never reported its namespace"));
    assert!(path.exists(), "the killed run's namespace should still be bound");
    let id = ino(&path);
    assert_ne!(id, ino(Path::new("/proc/self/ns/net")));
    // Another isobench starting now may sweep it first; either way it goes.
    let removed = net::sweep();
    assert!(!path.exists(), "sweep left {}", path.display());
    assert!(removed.is_empty() || removed.contains(&path), "{removed:?}");
    assert!(!netns_reachable(id), "something still holds the swept namespace");
    std::thread::sleep(Duration::from_millis(200));
    assert!(!on_host("ibt-held0"), "the swept namespace's tap moved to the host");
    assert!(!net::sweep().contains(&path));
}

/// Helper for `without_root_the_error_says_what_to_do`: run only by that
/// test, as an unprivileged user.
fn create_as_an_unprivileged_user() {
    match RunNetns::create() {
        Ok(ns) => println!("MADE {}", ns.name()),
        Err(e) => println!("ERROR {e}"),
    }
}

fn without_root_the_error_says_what_to_do() {
    let mut cmd = isobench_testkit::helper("create_as_an_unprivileged_user");
    // SAFETY: setgroups, setgid and setuid are plain system calls, safe
    // between fork and exec; 65534 is nobody.
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setgroups(&[])?;
            nix::unistd::setgid(nix::unistd::Gid::from_raw(65534))?;
            nix::unistd::setuid(nix::unistd::Uid::from_raw(65534))?;
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let at = stdout.find("ERROR ").or_else(|| stdout.find("MADE ")).unwrap_or_else(|| panic!("{stdout}"));
    let line = stdout[at..].lines().next().unwrap();
    assert_eq!(line, "ERROR network namespace: needs root (CAP_NET_ADMIN); run isobench as root or use --net loopback");
}

/// The host's own nftables ruleset, as `nft list ruleset` prints it.
fn host_ruleset() -> Vec<u8> {
    let o = Command::new("nft").args(["list", "ruleset"]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    o.stdout
}

fn a_bridge_with_nat_publishes_a_port_inside_the_run_namespace_only() {
    let before = host_ruleset();
    let child = Child::spawn();
    let ns = RunNetns::create().unwrap();
    let subnet = ns.allocate_subnet();
    let bridged = ns.add_bridged_veth("ibt-br0", "ibt-bh0", child.ns.as_fd(), "ibt-bp0", &subnet).unwrap();
    let br = ns.link_state("ibt-br0").unwrap();
    assert_eq!((br.kind.as_deref(), br.up, br.ipv4.clone()), (Some("bridge"), true, vec![(subnet.host, 24)]), "{br:?}");
    assert!(ns.link_state("ibt-bh0").unwrap().ipv4.is_empty(), "the bridge port has no address of its own");
    assert_eq!(net::link_state_in(child.ns.as_fd(), "ibt-bp0").unwrap().ipv4, vec![(subnet.peer, 24)]);
    assert_eq!(ns.nft_tables().unwrap(), ["table ip isobench_ibt-br0"]);
    assert!(!on_host("ibt-br0") && !on_host("ibt-bh0"));
    assert_eq!(host_ruleset(), before, "the host's ruleset is untouched while the rules exist");

    // The server listens on the container port; the client connects to the
    // published address and port, and the server sees the masquerade's source.
    let listener = net::run_in_ns(child.ns.as_fd(), || TcpListener::bind((subnet.peer, net::CONTAINER_PORT))).unwrap().unwrap();
    let server = std::thread::spawn(move || {
        let (mut s, from) = listener.accept().unwrap();
        let mut buf = [0u8; 3];
        s.read_exact(&mut buf).unwrap();
        s.write_all(&buf.map(|b| b.to_ascii_uppercase())).unwrap();
        (from.ip(), s.local_addr().unwrap())
    });
    let published = std::net::SocketAddr::from((bridged.published, net::PUBLISHED_PORT));
    assert_eq!(bridged.published, subnet.host);
    let mut client = ns.run_in(|| TcpStream::connect_timeout(&published, Duration::from_secs(5))).unwrap().unwrap();
    client.write_all(b"nat").unwrap();
    let mut answer = [0u8; 3];
    client.read_exact(&mut answer).unwrap();
    assert_eq!(&answer, b"NAT");
    let (from, local) = server.join().unwrap();
    assert_eq!(from, std::net::IpAddr::V4(subnet.host), "masqueraded to the bridge's address");
    assert_eq!(local, std::net::SocketAddr::from((subnet.peer, net::CONTAINER_PORT)), "DNAT'd to the container's port");
    // Without the DNAT the published port is closed: the rules did the work.
    drop(client);
    drop(bridged);
    assert!(ns.nft_tables().unwrap().is_empty(), "the table goes with the bridged veth");
    assert!(matches!(ns.link_state("ibt-br0"), Err(NetError::NoSuchLink { .. })), "the bridge goes too");
    let refused = ns.run_in(|| TcpStream::connect_timeout(&published, Duration::from_secs(2))).unwrap();
    assert!(refused.is_err(), "nothing answers the published port without the rules");

    // A namespace dropped with its rules in place takes them along.
    let bridged = ns.add_bridged_veth("ibt-br1", "ibt-bh1", child.ns.as_fd(), "ibt-bp1", &ns.allocate_subnet()).unwrap();
    assert_eq!(ns.nft_tables().unwrap().len(), 1);
    let id = ino(ns.path());
    std::mem::forget(bridged); // as a SIGKILL would: nothing deletes the table
    drop(ns);
    assert_eq!(host_ruleset(), before, "the host's ruleset is byte-identical after");
    assert!(!netns_reachable(id), "nothing holds the namespace, so the kernel frees it with its table");
}
