//! Links isobench makes in a namespace of its own: a veth pair whose peer is
//! created directly in a container's namespace, a persistent tap for a VM
//! ([`RunNetns::add_veth`], [`RunNetns::add_tap`]), deleted on drop
//! ([`Link`]); interface names checked as the kernel does; a link's state as
//! rtnetlink reports it ([`LinkState`]).

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use netlink_packet_route::link::{InfoData, LinkAttribute, LinkFlags, LinkInfo, LinkMessage};
use nix::errno::Errno;

use super::rtnl::Rtnl;
use super::{io_err, run_in_ns, NetError, RunNetns, Subnet};

/// The longest interface name Linux accepts, in bytes (IFNAMSIZ - 1).
pub const MAX_IFNAME_LEN: usize = libc::IFNAMSIZ - 1;

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

impl RunNetns {
    /// A veth pair: `host_if` in this namespace with `subnet.host`, its peer
    /// `peer_if` created directly in the namespace `peer_ns` (an open
    /// `/proc/<pid>/ns/net` of a container, say) with `subnet.peer`, both up,
    /// and loopback up in `peer_ns`. `mtu` in bytes for both ends; `None`
    /// keeps the kernel's default (1500).
    ///
    /// Deleting the returned host end (dropping the [`Link`]) deletes the peer
    /// too; so does the end of either namespace.
    pub fn add_veth(&self, host_if: &str, peer_ns: BorrowedFd<'_>, peer_if: &str, subnet: &Subnet, mtu: Option<u32>) -> Result<Link, NetError> {
        self.add_veth_with(host_if, peer_ns, peer_if, subnet, mtu, true)
    }

    /// [`add_veth`](Self::add_veth) with the host end up but without an
    /// address (a bridge port: the bridge holds `subnet.host`).
    pub(super) fn add_veth_unaddressed(&self, host_if: &str, peer_ns: BorrowedFd<'_>, peer_if: &str, subnet: &Subnet) -> Result<Link, NetError> {
        self.add_veth_with(host_if, peer_ns, peer_if, subnet, None, false)
    }

    fn add_veth_with(
        &self,
        host_if: &str,
        peer_ns: BorrowedFd<'_>,
        peer_if: &str,
        subnet: &Subnet,
        mtu: Option<u32>,
        host_address: bool,
    ) -> Result<Link, NetError> {
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
            if host_address {
                rtnl.address_and_up_or_delete(index, host_if, subnet.host, subnet.prefix_len, what)?;
            } else if let Err(e) = rtnl.set_up(index, None) {
                let _ = rtnl.del_link(index);
                return Err(io_err(what, format!("set {host_if} up"))(e));
            }
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

/// A link isobench created in a namespace of its own; deleted on drop.
#[derive(Debug)]
pub struct Link {
    pub(super) name: String,
    pub(super) index: u32,
    /// The namespace it was made in, reopened by path on drop so that a
    /// `Link` does not keep the namespace alive; `ns_ino` tells whether the
    /// namespace at that path is still the same one.
    pub(super) ns_path: PathBuf,
    pub(super) ns_ino: u64,
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
}
