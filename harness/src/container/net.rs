//! The run's private network namespace: where container veth peers and VM
//! tap devices live, so that no test traffic touches the host's own network
//! (network_namespaces(7), veth(4), the kernel's Documentation/networking/tuntap.rst).
//!
//! **The networking rule**: isobench never changes the host's
//! network configuration. Per run it creates one network namespace,
//! `isobench-<pid>-<seq>`, that plays "the host side": the host end of each
//! container's veth pair and each VM's tap device are made inside it, with
//! addresses from a /24 of 10.199.0.0/16 that only exists inside it
//! ([`RunNetns::allocate_subnet`]), and the host-side peer of a cross-boundary
//! test runs inside it too ([`RunNetns::run_in`]). The host's own namespace
//! never sees a link, an address or a route of isobench's.
//!
//! The namespace is made the way `ip netns add` makes one, so `ip netns list`
//! and `ip -n NAME link` show it: a short-lived thread unshares a new network
//! namespace (unshare(2) with CLONE_NEWNET changes the calling thread only)
//! and bind-mounts its /proc/thread-self/ns/net onto an empty file
//! /run/netns/NAME; the mount keeps the namespace alive after the thread
//! ends. Links and addresses are configured through rtnetlink with the
//! `netlink-packet-route` messages over a `netlink-sys` socket, never by
//! running `ip`; a netlink socket belongs to the namespace of the thread that
//! opened it, so every request runs on a thread that setns(2)'d into the
//! namespace it is meant for ([`run_in_ns`]). A veth pair is created in one
//! request with its peer placed directly in the container's namespace
//! (IFLA_NET_NS_FD), so the peer never exists in any other namespace, not
//! even for a moment. A tap is made with the TUNSETIFF and TUNSETPERSIST
//! ioctls on /dev/net/tun, opened inside the namespace.
//!
//! **Removal**: dropping a [`Link`] deletes it (RTM_DELLINK); dropping the
//! [`RunNetns`] unmounts and unlinks /run/netns/NAME, after which the kernel
//! frees the namespace and deletes every veth end (and with it its peer in a
//! container) and tap still in it. A run killed before it could do so leaves
//! the bind mount behind: [`sweep`], called at every start, removes the
//! /run/netns entries whose `<pid>` no longer runs, like the cgroups of
//! [`super::cgroup::sweep`].

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, Weak};

use netlink_packet_core::{NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REQUEST};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use nix::errno::Errno;
use nix::sched::CloneFlags;

use crate::leftovers;

/// Where network namespaces are bound by name (iproute2's NETNS_RUN_DIR), so
/// that `ip netns` sees them.
pub const NETNS_DIR: &str = "/run/netns";

/// The first two octets of every run subnet: 10.199.N.0/24, N = 1..=254.
/// 10.199.0.0/16 is private (RFC 1918) and, being only ever configured inside
/// the run's namespace, cannot clash with the host's networks.
pub const SUBNET_BASE: [u8; 2] = [10, 199];

/// The prefix length of every run subnet: one /24 per veth pair or tap.
pub const SUBNET_PREFIX_LEN: u8 = 24;

/// How many /24s one namespace can hand out (10.199.1.0 to 10.199.254.0).
pub const MAX_SUBNETS: u32 = 254;

/// The longest interface name Linux accepts, in bytes (IFNAMSIZ - 1).
pub const MAX_IFNAME_LEN: usize = libc::IFNAMSIZ - 1;

/// What asks for root in the errors: creating namespaces and links needs
/// CAP_SYS_ADMIN and CAP_NET_ADMIN.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("{what}: needs root (CAP_NET_ADMIN); run isobench as root or use --net loopback")]
    NotRoot { what: &'static str },
    #[error("invalid interface name {name:?}: {why} (Linux allows 1 to 15 bytes without '/', ':' or white space)")]
    BadIfName { name: String, why: &'static str },
    #[error("{what} {name:?}: an interface of that name already exists in that network namespace; choose another name")]
    Exists { what: &'static str, name: String },
    #[error("no interface {name:?} in network namespace {ns}")]
    NoSuchLink { name: String, ns: String },
    #[error("tap: /dev/net/tun is missing; load the tun module (modprobe tun)")]
    NoTun,
    #[error("all {MAX_SUBNETS} subnets of network namespace {ns} are in use")]
    SubnetsExhausted { ns: String },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
}

/// Maps an error of a step of `what`: EPERM/EACCES become [`NetError::NotRoot`].
fn io_err(what: &'static str, step: impl Into<String>) -> impl FnOnce(io::Error) -> NetError {
    let step = step.into();
    move |source| match source.raw_os_error() {
        Some(libc::EPERM | libc::EACCES) => NetError::NotRoot { what },
        _ => NetError::Io { context: format!("{what}: {step}"), source },
    }
}

/// A /24 inside the run's namespace: the host side's address and the
/// peer's (container or VM).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    /// 10.199.N.1: the host end of the veth pair, or the tap.
    pub host: Ipv4Addr,
    /// 10.199.N.2: the container's end, or the VM's address.
    pub peer: Ipv4Addr,
    /// Always [`SUBNET_PREFIX_LEN`].
    pub prefix_len: u8,
}

impl Subnet {
    /// The `n`th run subnet, 10.199.`n`.0/24 (`n` from 1 to 254).
    pub fn nth(n: u8) -> Subnet {
        let [a, b] = SUBNET_BASE;
        Subnet { host: Ipv4Addr::new(a, b, n, 1), peer: Ipv4Addr::new(a, b, n, 2), prefix_len: SUBNET_PREFIX_LEN }
    }

    /// The network address, 10.199.N.0.
    pub fn network(&self) -> Ipv4Addr {
        let o = self.host.octets();
        Ipv4Addr::new(o[0], o[1], o[2], 0)
    }
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network(), self.prefix_len)
    }
}

/// Checks an interface name as the kernel's dev_valid_name() does, so a bad
/// name fails with a clear error before anything is created.
pub fn check_ifname(name: &str) -> Result<(), NetError> {
    let bad = |why| Err(NetError::BadIfName { name: name.to_string(), why });
    if name.is_empty() {
        return bad("it is empty");
    }
    if name.len() > MAX_IFNAME_LEN {
        return bad("it is longer than 15 bytes");
    }
    if name == "." || name == ".." {
        return bad("it is a path component");
    }
    if name.chars().any(|c| c == '/' || c == ':' || c.is_whitespace() || c == '\0') {
        return bad("it contains '/', ':', white space or NUL");
    }
    Ok(())
}

/// A link's state as rtnetlink reports it (tests, doctor).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkState {
    pub name: String,
    /// The interface index inside its namespace.
    pub index: u32,
    /// IFF_UP: administratively up.
    pub up: bool,
    /// MTU in bytes.
    pub mtu: u32,
    /// IPv4 addresses with their prefix lengths.
    pub ipv4: Vec<(Ipv4Addr, u8)>,
    /// The driver's rtnetlink kind ("veth", "tun", ...); `None` for lo and
    /// physical devices.
    pub kind: Option<String>,
    /// For a tun/tap device, its settings.
    pub tun: Option<TunState>,
}

/// A tun/tap device's settings, from the IFLA_TUN_* attributes of its link
/// info (linux/if_link.h).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TunState {
    /// IFF_TAP (Ethernet frames) rather than IFF_TUN (IP packets).
    pub tap: bool,
    /// Frames carry the 4-byte packet information header (no IFF_NO_PI).
    pub packet_info: bool,
    /// TUNSETPERSIST: the device outlives the fd that made it.
    pub persist: bool,
}

const IFLA_TUN_TYPE: u16 = 3;
const IFLA_TUN_PI: u16 = 4;
const IFLA_TUN_PERSIST: u16 = 6;

impl TunState {
    fn from_link(link: &LinkMessage) -> Option<TunState> {
        use netlink_packet_core::Nla;
        let infos = link.attributes.iter().find_map(|a| if let LinkAttribute::LinkInfo(i) = a { Some(i) } else { None })?;
        let nlas = infos.iter().find_map(|i| if let LinkInfo::Data(InfoData::Tun(t)) = i { Some(t) } else { None })?;
        let byte = |kind: u16| {
            nlas.iter().find(|n| n.kind() == kind).and_then(|n| {
                let mut v = vec![0; n.value_len()];
                n.emit_value(&mut v);
                v.first().copied()
            })
        };
        Some(TunState {
            tap: byte(IFLA_TUN_TYPE)? == libc::IFF_TAP as u8,
            packet_info: byte(IFLA_TUN_PI)? != 0,
            persist: byte(IFLA_TUN_PERSIST)? != 0,
        })
    }
}

/// A network namespace of this run, bound at /run/netns/NAME; removed on drop.
#[derive(Debug)]
pub struct RunNetns {
    name: String,
    path: PathBuf,
    /// Keeps an fd of the namespace for setns(2); closed on drop, after the
    /// unmount, so that nothing of ours pins the namespace any more.
    file: File,
    /// The namespace's inode (nsfs), which tells it apart from any later
    /// namespace bound at the same path.
    ino: u64,
    /// Subnets handed out so far.
    subnets: AtomicU32,
}

/// The namespace [`RunNetns::shared`] hands out while anyone holds it.
static SHARED: Mutex<Weak<RunNetns>> = Mutex::new(Weak::new());

impl RunNetns {
    /// Creates a fresh network namespace bound at
    /// /run/netns/isobench-<pid>-<seq> (visible to `ip netns list`), with
    /// loopback up inside. Root only ([`NetError::NotRoot`] otherwise).
    pub fn create() -> Result<RunNetns, NetError> {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let what = "network namespace";
        std::fs::create_dir_all(NETNS_DIR).map_err(io_err(what, format!("create {NETNS_DIR}")))?;
        // An empty file to bind the namespace onto. `create_new` skips a name
        // left by an earlier, killed process that had our pid.
        let (name, path) = loop {
            let name = leftovers::name(SEQ.fetch_add(1, Ordering::Relaxed));
            let path = Path::new(NETNS_DIR).join(&name);
            match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(_) => break (name, path),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(io_err(what, format!("create {}", path.display()))(e)),
            }
        };
        let made = std::thread::scope(|s| {
            s.spawn(|| -> Result<(), NetError> {
                // Only this thread enters the new namespace; it ends right after.
                nix::sched::unshare(CloneFlags::CLONE_NEWNET).map_err(|e| io_err(what, "unshare(CLONE_NEWNET)")(e.into()))?;
                nix::mount::mount(Some("/proc/thread-self/ns/net"), &path, None::<&str>, nix::mount::MsFlags::MS_BIND, None::<&str>)
                    .map_err(|e| io_err(what, format!("bind-mount it on {}", path.display()))(e.into()))?;
                let mut rtnl = Rtnl::open().map_err(io_err(what, "open a netlink socket"))?;
                let lo =
                    rtnl.link("lo").map_err(io_err(what, "find lo"))?.ok_or_else(|| NetError::NoSuchLink { name: "lo".into(), ns: name.clone() })?;
                rtnl.set_up(lo.header.index, None).map_err(io_err(what, "set lo up"))
            })
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
        });
        let opened = made.and_then(|()| File::open(&path).map_err(io_err(what, format!("open {}", path.display()))));
        let file = match opened {
            Ok(f) => f,
            Err(e) => {
                unbind(&path);
                return Err(e);
            }
        };
        let ino = file.metadata().map_err(io_err(what, format!("stat {}", path.display())))?.ino();
        Ok(RunNetns { name, path, file, ino, subnets: AtomicU32::new(0) })
    }

    /// The process' shared namespace: created on the first call, the same one
    /// returned while any `Arc` of it is alive, removed when the last one drops.
    pub fn shared() -> Result<Arc<RunNetns>, NetError> {
        let mut shared = SHARED.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(ns) = shared.upgrade() {
            return Ok(ns);
        }
        let ns = Arc::new(RunNetns::create()?);
        *shared = Arc::downgrade(&ns);
        Ok(ns)
    }

    /// `isobench-<pid>-<seq>`, the name `ip netns` knows it by.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// /run/netns/NAME.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// An open fd of the namespace, for setns(2) (e.g. in a child's pre_exec).
    pub fn file(&self) -> &File {
        &self.file
    }

    /// The next unused /24 of this namespace: 10.199.1.0/24, 10.199.2.0/24, ...
    ///
    /// # Panics
    /// After [`MAX_SUBNETS`]; see [`RunNetns::try_allocate_subnet`].
    pub fn allocate_subnet(&self) -> Subnet {
        self.try_allocate_subnet().unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`RunNetns::allocate_subnet`], failing once all [`MAX_SUBNETS`] are used.
    pub fn try_allocate_subnet(&self) -> Result<Subnet, NetError> {
        let n = self.subnets.fetch_add(1, Ordering::Relaxed) + 1;
        match u8::try_from(n) {
            Ok(n) if u32::from(n) <= MAX_SUBNETS => Ok(Subnet::nth(n)),
            _ => Err(NetError::SubnetsExhausted { ns: self.name.clone() }),
        }
    }

    /// A veth pair: `host_if` in this namespace with `subnet.host`, its peer
    /// `peer_if` created directly in the namespace `peer_ns` (an open
    /// /proc/<pid>/ns/net of a container, say) with `subnet.peer`, both up,
    /// and loopback up in `peer_ns`. `mtu` in bytes for both ends; `None`
    /// keeps the kernel's default (1500).
    ///
    /// Deleting the returned host end (dropping the [`Link`]) deletes the peer
    /// too; so does the end of either namespace.
    pub fn add_veth(&self, host_if: &str, peer_ns: BorrowedFd<'_>, peer_if: &str, subnet: &Subnet, mtu: Option<u32>) -> Result<Link, NetError> {
        let what = "veth";
        check_ifname(host_if)?;
        check_ifname(peer_if)?;
        let peer_fd = peer_ns.as_raw_fd();
        let index = self.run_in(|| -> Result<u32, NetError> {
            let mut rtnl = Rtnl::open().map_err(io_err(what, "open a netlink socket"))?;
            rtnl.new_veth(host_if, peer_if, peer_fd, mtu).map_err(|e| match e.raw_os_error() {
                Some(libc::EEXIST) => NetError::Exists { what, name: format!("{host_if}/{peer_if}") },
                _ => io_err(what, format!("create {host_if} with its peer {peer_if}"))(e),
            })?;
            let index = rtnl.index_of(host_if, &self.name).map_err(io_err(what, format!("find {host_if}")))??;
            // A failure from here on deletes the pair again.
            rtnl.address_and_up_or_delete(index, host_if, subnet.host, subnet.prefix_len, what)?;
            Ok(index)
        })??;
        let link = Link { name: host_if.to_string(), index, ns_path: self.path.clone(), ns_ino: self.ino };
        run_in_ns(peer_ns, || -> Result<(), NetError> {
            let mut rtnl = Rtnl::open().map_err(io_err(what, "open a netlink socket in the peer's namespace"))?;
            let index = rtnl.index_of(peer_if, "of the peer").map_err(io_err(what, format!("find {peer_if}")))??;
            rtnl.add_ipv4(index, subnet.peer, subnet.prefix_len)
                .map_err(io_err(what, format!("add {}/{} to {peer_if}", subnet.peer, subnet.prefix_len)))?;
            rtnl.set_up(index, None).map_err(io_err(what, format!("set {peer_if} up")))?;
            let lo = rtnl.index_of("lo", "of the peer").map_err(io_err(what, "find lo in the peer's namespace"))??;
            rtnl.set_up(lo, None).map_err(io_err(what, "set lo up in the peer's namespace"))
        })??;
        Ok(link)
    }

    /// A persistent tap `name` (IFF_TAP | IFF_NO_PI) in this namespace with
    /// `subnet.host`, link up (its carrier comes when a VM attaches). A QEMU
    /// started inside this namespace attaches to it with
    /// `-netdev tap,id=..,ifname=NAME,script=no,downscript=no`.
    pub fn add_tap(&self, name: &str, subnet: &Subnet) -> Result<Link, NetError> {
        let what = "tap";
        check_ifname(name)?;
        let index = self.run_in(|| -> Result<u32, NetError> {
            let mut rtnl = Rtnl::open().map_err(io_err(what, "open a netlink socket"))?;
            // TUNSETIFF on an existing tap attaches to it instead of failing.
            if rtnl.link(name).map_err(io_err(what, format!("look up {name}")))?.is_some() {
                return Err(NetError::Exists { what, name: name.to_string() });
            }
            make_persistent_tap(name)?;
            let index = rtnl.index_of(name, &self.name).map_err(io_err(what, format!("find {name}")))??;
            rtnl.address_and_up_or_delete(index, name, subnet.host, subnet.prefix_len, what)?;
            Ok(index)
        })??;
        Ok(Link { name: name.to_string(), index, ns_path: self.path.clone(), ns_ino: self.ino })
    }

    /// Runs `f` on a new thread that has setns(2)'d into this namespace, and
    /// returns its result; sockets `f` creates stay in this namespace. A
    /// panic in `f` is resumed on the caller's thread.
    pub fn run_in<T: Send>(&self, f: impl FnOnce() -> T + Send) -> Result<T, NetError> {
        run_in_ns(self.file.as_fd(), f)
    }

    /// Names of the links in this namespace.
    pub fn links(&self) -> Result<Vec<String>, NetError> {
        let links = self.run_in(|| Rtnl::open()?.dump_links())?.map_err(io_err("links", format!("list the links of {}", self.name)))?;
        Ok(links.into_iter().filter_map(|l| link_name(&l)).collect())
    }

    /// The state of link `name` in this namespace.
    pub fn link_state(&self, name: &str) -> Result<LinkState, NetError> {
        link_state_in(self.file.as_fd(), name)
    }
}

impl Drop for RunNetns {
    fn drop(&mut self) {
        unbind(&self.path);
        // `file` closes after this: then nothing of ours refers to the
        // namespace and the kernel frees it with the links in it.
    }
}

/// Detaches the namespace mount at `path` (if any) and removes the file.
fn unbind(path: &Path) -> bool {
    // EINVAL: not a mount point (bind never made), which is fine.
    let _ = nix::mount::umount2(path, nix::mount::MntFlags::MNT_DETACH);
    match std::fs::remove_file(path) {
        Ok(()) => true,
        Err(e) => e.kind() == io::ErrorKind::NotFound,
    }
}

/// A link isobench created in a namespace of its own; deleted on drop.
#[derive(Debug)]
pub struct Link {
    name: String,
    index: u32,
    /// The namespace it was made in, reopened by path on drop so that a
    /// `Link` does not keep the namespace alive; `ns_ino` tells whether the
    /// namespace at that path is still the same one.
    ns_path: PathBuf,
    ns_ino: u64,
}

impl Link {
    /// The interface name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The interface index in its namespace.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// Deletes the link now (RTM_DELLINK); Ok when it is already gone (its
    /// namespace removed, or the peer's end of a veth pair gone with its
    /// container).
    pub fn delete(&self) -> Result<(), NetError> {
        let Ok(ns) = File::open(&self.ns_path) else { return Ok(()) };
        if ns.metadata().map(|m| m.ino()).ok() != Some(self.ns_ino) {
            return Ok(());
        }
        let deleted = run_in_ns(ns.as_fd(), || Rtnl::open()?.del_link(self.index))?;
        match deleted {
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(()),
            r => r.map_err(io_err("delete link", self.name.clone())),
        }
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        let _ = self.delete();
    }
}

/// Runs `f` on a new thread that has setns(2)'d into the network namespace
/// `ns` (any open nsfs file of one, e.g. /proc/<pid>/ns/net), and returns its
/// result; sockets `f` creates stay in that namespace. A panic in `f` is
/// resumed on the caller's thread.
pub fn run_in_ns<T: Send>(ns: BorrowedFd<'_>, f: impl FnOnce() -> T + Send) -> Result<T, NetError> {
    std::thread::scope(|s| {
        s.spawn(|| {
            // setns(2) changes the network namespace of this thread only.
            nix::sched::setns(ns, CloneFlags::CLONE_NEWNET).map_err(|e| io_err("enter network namespace", "setns(2)")(e.into()))?;
            Ok(f())
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

/// The state of link `name` in the network namespace `ns`.
pub fn link_state_in(ns: BorrowedFd<'_>, name: &str) -> Result<LinkState, NetError> {
    let what = "link state";
    let (link, addrs) = run_in_ns(ns, || -> io::Result<_> {
        let mut rtnl = Rtnl::open()?;
        Ok((rtnl.link(name)?, rtnl.dump_ipv4()?))
    })?
    .map_err(io_err(what, format!("look up {name}")))?;
    let link = link.ok_or_else(|| NetError::NoSuchLink { name: name.to_string(), ns: ns_label(ns) })?;
    let index = link.header.index;
    let mtu = link.attributes.iter().find_map(|a| if let LinkAttribute::Mtu(m) = a { Some(*m) } else { None }).unwrap_or(0);
    Ok(LinkState {
        name: name.to_string(),
        index,
        up: link.header.flags.contains(LinkFlags::Up),
        mtu,
        ipv4: addrs.into_iter().filter(|(i, ..)| *i == index).map(|(_, a, p)| (a, p)).collect(),
        kind: link_kind(&link),
        tun: TunState::from_link(&link),
    })
}

/// `net:[inode]` of a namespace fd, for messages.
fn ns_label(ns: BorrowedFd<'_>) -> String {
    nix::sys::stat::fstat(ns.as_raw_fd()).map_or_else(|_| "?".into(), |st| format!("net:[{}]", st.st_ino))
}

fn link_kind(link: &LinkMessage) -> Option<String> {
    let infos = link.attributes.iter().find_map(|a| if let LinkAttribute::LinkInfo(i) = a { Some(i) } else { None })?;
    infos.iter().find_map(|i| if let LinkInfo::Kind(k) = i { Some(k.to_string()) } else { None })
}

fn link_name(link: &LinkMessage) -> Option<String> {
    link.attributes.iter().find_map(|a| if let LinkAttribute::IfName(n) = a { Some(n.clone()) } else { None })
}

nix::ioctl_write_ptr_bad!(tunsetiff, libc::TUNSETIFF, libc::ifreq);
nix::ioctl_write_int_bad!(tunsetpersist, libc::TUNSETPERSIST);

/// Makes the persistent tap `name` in the calling thread's network namespace
/// (a tun device belongs to the namespace /dev/net/tun was opened in).
fn make_persistent_tap(name: &str) -> Result<(), NetError> {
    let what = "tap";
    let tun = match std::fs::OpenOptions::new().read(true).write(true).open("/dev/net/tun") {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(NetError::NoTun),
        Err(e) => return Err(io_err(what, "open /dev/net/tun")(e)),
    };
    let cname = CString::new(name).map_err(|_| NetError::BadIfName { name: name.to_string(), why: "it contains NUL" })?;
    // SAFETY: ifreq is plain old data (a name and a union of integers and
    // sockaddrs), for which all zero bytes is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(cname.as_bytes_with_nul()) {
        *dst = *src as libc::c_char;
    }
    req.ifr_ifru.ifru_flags = (libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short;
    // SAFETY: `tun` is an open /dev/net/tun, and TUNSETIFF reads a struct
    // ifreq through a pointer valid for the whole call; the name holds at
    // most 15 bytes and a NUL (checked by check_ifname).
    unsafe { tunsetiff(tun.as_raw_fd(), &req) }.map_err(|e| match e {
        Errno::EBUSY | Errno::EINVAL => NetError::Exists { what, name: name.to_string() },
        e => io_err(what, format!("TUNSETIFF {name}"))(e.into()),
    })?;
    // SAFETY: TUNSETPERSIST takes an integer argument (1: the device outlives
    // this fd) on the fd TUNSETIFF just attached.
    unsafe { tunsetpersist(tun.as_raw_fd(), 1) }.map_err(|e| io_err(what, format!("TUNSETPERSIST {name}"))(e.into()))?;
    Ok(())
}

/// Removes the /run/netns/isobench-<pid>-<seq> entries whose pid no longer
/// runs (namespaces of killed runs); the kernel then frees each namespace
/// and every link in it. Returns what was removed. Called at every start;
/// touches nothing when isobench itself runs in a pid namespace other than
/// the host's (a live owner could not be seen from there).
pub fn sweep() -> Vec<PathBuf> {
    sweep_at(Path::new(NETNS_DIR))
}

/// [`sweep`] in another directory than /run/netns.
pub fn sweep_at(dir: &Path) -> Vec<PathBuf> {
    if !leftovers::in_initial_pid_namespace() {
        return Vec::new();
    }
    leftovers::sweep(dir, leftovers::counted_owner_pid, |e| unbind(&e.path()))
}

/// An rtnetlink socket of the calling thread's network namespace, and the
/// few requests isobench makes, each waiting for the kernel's answer.
struct Rtnl {
    socket: netlink_sys::Socket,
    seq: u32,
}

impl Rtnl {
    fn open() -> io::Result<Rtnl> {
        let mut socket = netlink_sys::Socket::new(netlink_sys::protocols::NETLINK_ROUTE)?;
        socket.bind_auto()?;
        socket.connect(&netlink_sys::SocketAddr::new(0, 0))?;
        Ok(Rtnl { socket, seq: 0 })
    }

    /// Sends `message` and collects the answers until the kernel's ACK (or
    /// NLMSG_DONE, for a dump); an error answer becomes the io::Error of its
    /// errno.
    fn request(&mut self, message: RouteNetlinkMessage, flags: u16) -> io::Result<Vec<RouteNetlinkMessage>> {
        self.seq += 1;
        let mut header = NetlinkHeader::default();
        // A dump ends with NLMSG_DONE, and is not ACKed; anything else is.
        header.flags = NLM_F_REQUEST | flags | if flags & NLM_F_DUMP == NLM_F_DUMP { 0 } else { NLM_F_ACK };
        header.sequence_number = self.seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(message));
        packet.finalize();
        let mut buf = vec![0; packet.buffer_len()];
        packet.serialize(&mut buf);
        self.socket.send(&buf, 0)?;
        let bad = |e: String| io::Error::new(io::ErrorKind::InvalidData, format!("undecodable rtnetlink answer: {e}"));
        let mut answers = Vec::new();
        loop {
            let (data, _) = self.socket.recv_from_full()?;
            let mut at = 0;
            // One datagram holds one or more messages, each 4-byte aligned.
            while at + 4 <= data.len() {
                let len = u32::from_ne_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]) as usize;
                if len < 16 || at + len > data.len() {
                    return Err(bad(format!("message length {len} at {at} of {}", data.len())));
                }
                let packet = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&data[at..at + len]).map_err(|e| bad(e.to_string()))?;
                at += (len + 3) & !3;
                if packet.header.sequence_number != self.seq {
                    continue;
                }
                match packet.payload {
                    NetlinkPayload::Done(_) => return Ok(answers),
                    NetlinkPayload::Error(e) if e.code.is_none() => return Ok(answers),
                    NetlinkPayload::Error(e) => return Err(e.to_io()),
                    NetlinkPayload::InnerMessage(m) => answers.push(m),
                    _ => {}
                }
            }
        }
    }

    /// The link called `name`, if there is one.
    fn link(&mut self, name: &str) -> io::Result<Option<LinkMessage>> {
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.to_string()));
        match self.request(RouteNetlinkMessage::GetLink(m), 0) {
            Ok(answers) => Ok(answers.into_iter().find_map(|a| if let RouteNetlinkMessage::NewLink(l) = a { Some(l) } else { None })),
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The index of link `name`, or [`NetError::NoSuchLink`] naming namespace `ns`.
    fn index_of(&mut self, name: &str, ns: &str) -> io::Result<Result<u32, NetError>> {
        Ok(self.link(name)?.map(|l| l.header.index).ok_or_else(|| NetError::NoSuchLink { name: name.to_string(), ns: ns.to_string() }))
    }

    fn dump_links(&mut self) -> io::Result<Vec<LinkMessage>> {
        let answers = self.request(RouteNetlinkMessage::GetLink(LinkMessage::default()), NLM_F_DUMP)?;
        Ok(answers.into_iter().filter_map(|a| if let RouteNetlinkMessage::NewLink(l) = a { Some(l) } else { None }).collect())
    }

    /// Every IPv4 address of the namespace: (link index, address, prefix length).
    fn dump_ipv4(&mut self) -> io::Result<Vec<(u32, Ipv4Addr, u8)>> {
        let mut m = AddressMessage::default();
        m.header.family = AddressFamily::Inet;
        let answers = self.request(RouteNetlinkMessage::GetAddress(m), NLM_F_DUMP)?;
        let mut out = Vec::new();
        for a in answers {
            let RouteNetlinkMessage::NewAddress(a) = a else { continue };
            // IFA_LOCAL is the interface's own address (IFA_ADDRESS is the
            // peer's on point-to-point links).
            let local = a.attributes.iter().find_map(|at| match at {
                AddressAttribute::Local(IpAddr::V4(v4)) => Some(*v4),
                _ => None,
            });
            if let Some(v4) = local {
                out.push((a.header.index, v4, a.header.prefix_len));
            }
        }
        Ok(out)
    }

    /// Sets link `index` up (IFF_UP), and its MTU when given.
    fn set_up(&mut self, index: u32, mtu: Option<u32>) -> io::Result<()> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        m.header.flags = LinkFlags::Up;
        m.header.change_mask = LinkFlags::Up;
        m.attributes.extend(mtu.map(LinkAttribute::Mtu));
        self.request(RouteNetlinkMessage::SetLink(m), 0).map(drop)
    }

    /// Adds `addr/prefix_len` to link `index` (`ip addr add`), which also
    /// adds the connected route of the subnet in this namespace.
    fn add_ipv4(&mut self, index: u32, addr: Ipv4Addr, prefix_len: u8) -> io::Result<()> {
        let mut m = AddressMessage::default();
        m.header.family = AddressFamily::Inet;
        m.header.prefix_len = prefix_len;
        m.header.index = index;
        m.attributes.push(AddressAttribute::Local(IpAddr::V4(addr)));
        m.attributes.push(AddressAttribute::Address(IpAddr::V4(addr)));
        self.request(RouteNetlinkMessage::NewAddress(m), NLM_F_CREATE | NLM_F_EXCL).map(drop)
    }

    /// Creates the veth pair `host`/`peer` (`ip link add HOST type veth peer
    /// name PEER netns FD`), `host` in this namespace, `peer` in the namespace
    /// of the fd `peer_ns`.
    fn new_veth(&mut self, host: &str, peer: &str, peer_ns: std::os::fd::RawFd, mtu: Option<u32>) -> io::Result<()> {
        let mut peer_msg = LinkMessage::default();
        peer_msg.attributes.push(LinkAttribute::IfName(peer.to_string()));
        peer_msg.attributes.push(LinkAttribute::NetNsFd(peer_ns));
        peer_msg.attributes.extend(mtu.map(LinkAttribute::Mtu));
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(host.to_string()));
        m.attributes.extend(mtu.map(LinkAttribute::Mtu));
        m.attributes.push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Veth), LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer_msg)))]));
        self.request(RouteNetlinkMessage::NewLink(m), NLM_F_CREATE | NLM_F_EXCL).map(drop)
    }

    /// Adds `addr/prefix_len` to link `index` (named `name` in errors) and
    /// sets it up; if either fails, deletes the link (a half-configured
    /// interface this run made must not stay) and returns that error.
    fn address_and_up_or_delete(&mut self, index: u32, name: &str, addr: Ipv4Addr, prefix_len: u8, what: &'static str) -> Result<(), NetError> {
        let configured = self
            .add_ipv4(index, addr, prefix_len)
            .map_err(io_err(what, format!("add {addr}/{prefix_len} to {name}")))
            .and_then(|()| self.set_up(index, None).map_err(io_err(what, format!("set {name} up"))));
        if configured.is_err() {
            let _ = self.del_link(index);
        }
        configured
    }

    fn del_link(&mut self, index: u32) -> io::Result<()> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        self.request(RouteNetlinkMessage::DelLink(m), 0).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names_are_checked_like_the_kernel_does() {
        assert!(check_ifname("ib-veth0").is_ok());
        assert!(check_ifname("a23456789012345").is_ok(), "15 bytes is the most");
        let e = check_ifname("a234567890123456").unwrap_err().to_string();
        assert_eq!(
            e,
            "invalid interface name \"a234567890123456\": it is longer than 15 bytes (Linux allows 1 to 15 bytes without '/', ':' or white space)"
        );
        for bad in ["", ".", "..", "a/b", "a:1", "a b", "tab\t"] {
            assert!(matches!(check_ifname(bad), Err(NetError::BadIfName { .. })), "{bad:?}");
        }
    }

    #[test]
    fn subnets_are_slash_24s_of_10_199() {
        let s = Subnet::nth(3);
        assert_eq!((s.host, s.peer, s.prefix_len), (Ipv4Addr::new(10, 199, 3, 1), Ipv4Addr::new(10, 199, 3, 2), 24));
        assert_eq!(s.to_string(), "10.199.3.0/24");
    }

    #[test]
    fn not_root_tells_what_to_do() {
        let e = io_err("veth", "create")(io::Error::from_raw_os_error(libc::EPERM));
        assert_eq!(e.to_string(), "veth: needs root (CAP_NET_ADMIN); run isobench as root or use --net loopback");
        let e = io_err("veth", "create x")(io::Error::from_raw_os_error(libc::ENOMEM));
        assert!(e.to_string().starts_with("veth: create x: "), "{e}");
    }

    #[test]
    fn sweep_removes_entries_of_dead_pids_only() {
        let dir = tempfile::tempdir().unwrap();
        // i32::MAX is above any pid_max, so never a live process.
        let dead = dir.path().join(format!("isobench-{}-0", i32::MAX));
        let ours = dir.path().join(leftovers::name(0));
        let other = dir.path().join("someone-elses");
        for p in [&dead, &ours, &other] {
            std::fs::write(p, "").unwrap();
        }
        let removed = sweep_at(dir.path());
        if !leftovers::in_initial_pid_namespace() {
            assert!(removed.is_empty());
            return;
        }
        assert_eq!(removed, vec![dead.clone()]);
        assert!(!dead.exists() && ours.exists() && other.exists());
    }

    #[test]
    fn requests_serialize_as_rtnetlink() {
        // The veth request as `ip link add h type veth peer name p netns FD`
        // sends it: RTM_NEWLINK (16) with the peer nested in IFLA_LINKINFO.
        let mut peer = LinkMessage::default();
        peer.attributes.push(LinkAttribute::IfName("p".into()));
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName("h".into()));
        m.attributes.push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Veth), LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer)))]));
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(m)));
        packet.finalize();
        assert_eq!(packet.header.message_type, libc::RTM_NEWLINK);
        let mut buf = vec![0; packet.buffer_len()];
        packet.serialize(&mut buf);
        let back = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&buf).unwrap();
        assert_eq!(back.header.length as usize, buf.len());
        assert!(buf.windows(5).any(|w| w == b"veth\0"));
    }
}
