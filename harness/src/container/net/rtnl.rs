//! The rtnetlink client: a `netlink-sys` socket of the calling thread's
//! network namespace and the few `netlink-packet-route` requests isobench
//! makes (links, addresses, a veth pair, deletion), each waiting for the
//! kernel's answer. Never `ip`.

use std::io;
use std::net::{IpAddr, Ipv4Addr};

use netlink_packet_core::{NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REQUEST};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::{io_err, NetError};

/// An rtnetlink socket of the calling thread's network namespace, and the
/// few requests isobench makes, each waiting for the kernel's answer.
pub(super) struct Rtnl {
    socket: netlink_sys::Socket,
    seq: u32,
}

impl Rtnl {
    pub(super) fn open() -> io::Result<Rtnl> {
        let mut socket = netlink_sys::Socket::new(netlink_sys::protocols::NETLINK_ROUTE)?;
        socket.bind_auto()?;
        socket.connect(&netlink_sys::SocketAddr::new(0, 0))?;
        Ok(Rtnl { socket, seq: 0 })
    }

    /// Sends `message` and collects the answers until the kernel's ACK (or
    /// NLMSG_DONE, for a dump); an error answer becomes the io::Error of its
    /// errno.
    pub(super) fn request(&mut self, message: RouteNetlinkMessage, flags: u16) -> io::Result<Vec<RouteNetlinkMessage>> {
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
    pub(super) fn link(&mut self, name: &str) -> io::Result<Option<LinkMessage>> {
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.to_string()));
        match self.request(RouteNetlinkMessage::GetLink(m), 0) {
            Ok(answers) => Ok(answers.into_iter().find_map(|a| if let RouteNetlinkMessage::NewLink(l) = a { Some(l) } else { None })),
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The index of link `name`, or [`NetError::NoSuchLink`] naming namespace `ns`.
    pub(super) fn index_of(&mut self, name: &str, ns: &str) -> io::Result<Result<u32, NetError>> {
        Ok(self.link(name)?.map(|l| l.header.index).ok_or_else(|| NetError::NoSuchLink { name: name.to_string(), ns: ns.to_string() }))
    }

    pub(super) fn dump_links(&mut self) -> io::Result<Vec<LinkMessage>> {
        let answers = self.request(RouteNetlinkMessage::GetLink(LinkMessage::default()), NLM_F_DUMP)?;
        Ok(answers.into_iter().filter_map(|a| if let RouteNetlinkMessage::NewLink(l) = a { Some(l) } else { None }).collect())
    }

    /// Every IPv4 address of the namespace: (link index, address, prefix length).
    pub(super) fn dump_ipv4(&mut self) -> io::Result<Vec<(u32, Ipv4Addr, u8)>> {
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
    pub(super) fn set_up(&mut self, index: u32, mtu: Option<u32>) -> io::Result<()> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        m.header.flags = LinkFlags::Up;
        m.header.change_mask = LinkFlags::Up;
        m.attributes.extend(mtu.map(LinkAttribute::Mtu));
        self.request(RouteNetlinkMessage::SetLink(m), 0).map(drop)
    }

    /// Adds `addr/prefix_len` to link `index` (`ip addr add`), which also
    /// adds the connected route of the subnet in this namespace.
    pub(super) fn add_ipv4(&mut self, index: u32, addr: Ipv4Addr, prefix_len: u8) -> io::Result<()> {
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
    pub(super) fn new_veth(&mut self, host: &str, peer: &str, peer_ns: std::os::fd::RawFd, mtu: Option<u32>) -> io::Result<()> {
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
    pub(super) fn address_and_up_or_delete(
        &mut self,
        index: u32,
        name: &str,
        addr: Ipv4Addr,
        prefix_len: u8,
        what: &'static str,
    ) -> Result<(), NetError> {
        let configured = self
            .add_ipv4(index, addr, prefix_len)
            .map_err(io_err(what, format!("add {addr}/{prefix_len} to {name}")))
            .and_then(|()| self.set_up(index, None).map_err(io_err(what, format!("set {name} up"))));
        if configured.is_err() {
            let _ = self.del_link(index);
        }
        configured
    }

    /// Creates the bridge `name` (`ip link add NAME type bridge`).
    pub(super) fn new_bridge(&mut self, name: &str) -> io::Result<()> {
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.to_string()));
        m.attributes.push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Bridge)]));
        self.request(RouteNetlinkMessage::NewLink(m), NLM_F_CREATE | NLM_F_EXCL).map(drop)
    }

    /// Attaches link `index` to the bridge `master` (`ip link set DEV master BR`).
    pub(super) fn set_master(&mut self, index: u32, master: u32) -> io::Result<()> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        m.attributes.push(LinkAttribute::Controller(master));
        self.request(RouteNetlinkMessage::SetLink(m), 0).map(drop)
    }

    pub(super) fn del_link(&mut self, index: u32) -> io::Result<()> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        self.request(RouteNetlinkMessage::DelLink(m), 0).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
