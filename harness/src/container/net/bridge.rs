//! Docker's bridge network inside the run's namespace (the `bridge` layer
//! of `--profile docker`): a Linux bridge holding the subnet's host address,
//! the container's veth attached to it, and a published port reached by
//! DNAT with masquerade, as `docker run -p HOST:CONTAINER` sets it up on
//! `docker0` (moby's libnetwork `drivers/bridge`, with its userland proxy
//! off: locally made connections are DNAT'd in the nat OUTPUT hook and
//! masqueraded on the way out to the bridge).
//!
//! **The networking rule** holds: the bridge, the veth and the nftables
//! table all live in the run's own network namespace ([`RunNetns`]), never
//! in the host's. The rules are written with the `nft` tool (Debian's
//! nftables, installed by scripts/setup), started from a thread that has
//! entered the run's namespace, so `nft` itself runs there and its netlink
//! socket sees that namespace's tables only. Dropping a [`BridgedVeth`]
//! deletes its table, its veth and its bridge; the kernel would also free
//! them with the namespace (a killed run's namespace is swept at the next
//! start, see [`super::sweep`]).

use std::io::Write;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::MetadataExt;
use std::process::{Command, Stdio};

use super::link::{check_ifname, Link};
use super::rtnl::Rtnl;
use super::{io_err, run_in_ns, NetError, RunNetns, Subnet};

/// The port the container's server listens on behind the published port
/// (Docker's `-p PUBLISHED:CONTAINER`), TCP and UDP alike; the run's
/// namespace is private, so fixed numbers collide with nothing.
pub const CONTAINER_PORT: u16 = 8080;
/// The port published on the bridge's address and DNAT'd to [`CONTAINER_PORT`].
pub const PUBLISHED_PORT: u16 = 18080;

/// The nftables tool, run inside the run's namespace.
pub const NFT: &str = "nft";

/// The NAT rules of one bridged container: the nftables table `table` in
/// family `ip`, with a DNAT of `published:published_port` to
/// `container:container_port` (TCP and UDP) in the output and prerouting
/// hooks and a masquerade of what leaves through `bridge`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatRules {
    pub table: String,
    pub bridge: String,
    pub published: Ipv4Addr,
    pub container: Ipv4Addr,
    pub subnet: Ipv4Addr,
    pub prefix_len: u8,
}

impl NatRules {
    /// The ruleset `nft -f -` reads: Docker's DNAT (its `DOCKER` chain,
    /// reached from PREROUTING and from OUTPUT) and its masquerade rules
    /// (`-s SUBNET ! -o BRIDGE` for the containers' own traffic, and `-o
    /// BRIDGE` from a local address for a published port reached from the
    /// host itself).
    pub fn ruleset(&self) -> String {
        let NatRules { table, bridge, published, container, subnet, prefix_len } = self;
        let dnat = format!(
            "ip daddr {published} tcp dport {PUBLISHED_PORT} dnat to {container}:{CONTAINER_PORT}; \
             ip daddr {published} udp dport {PUBLISHED_PORT} dnat to {container}:{CONTAINER_PORT}"
        );
        format!(
            "table ip {table} {{\n\
             \tchain prerouting {{ type nat hook prerouting priority dstnat; {dnat}; }}\n\
             \tchain output {{ type nat hook output priority -100; {dnat}; }}\n\
             \tchain postrouting {{ type nat hook postrouting priority srcnat; \
             ip saddr {subnet}/{prefix_len} oifname != \"{bridge}\" masquerade; oifname \"{bridge}\" fib saddr type local masquerade; }}\n\
             }}\n"
        )
    }
}

/// A container's veth on a bridge of the run's namespace, with its NAT
/// table; removed on drop (table, veth, bridge).
#[derive(Debug)]
pub struct BridgedVeth {
    /// Deleted first: the rules name the bridge.
    rules: Option<NatRules>,
    /// The run's namespace (path and nsfs inode), entered to delete the table.
    ns_path: std::path::PathBuf,
    ns_ino: u64,
    _veth: Link,
    _bridge: Link,
    /// The published address (the bridge's) and port the host side connects to.
    pub published: Ipv4Addr,
}

impl Drop for BridgedVeth {
    fn drop(&mut self) {
        let Some(rules) = self.rules.take() else { return };
        // Reopened by path, as a `Link` is: holding an fd would keep the
        // namespace alive. A namespace already gone took the table along.
        let Ok(ns) = std::fs::File::open(&self.ns_path) else { return };
        if ns.metadata().map(|m| m.ino()).ok() == Some(self.ns_ino) {
            let _ = run_in_ns(ns.as_fd(), || nft(&format!("delete table ip {}\n", rules.table)));
        }
    }
}

/// Runs `nft -f -` with `script` on its stdin in the calling thread's
/// network namespace; its stderr is the error.
fn nft(script: &str) -> Result<(), NetError> {
    let what = "nft";
    let mut child = Command::new(NFT).args(["-f", "-"]).stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().map_err(|e| {
        match e.kind() {
            std::io::ErrorKind::NotFound => NetError::NoNft,
            _ => io_err(what, "start nft")(e),
        }
    })?;
    let _ = child.stdin.take().expect("piped").write_all(script.as_bytes());
    let out = child.wait_with_output().map_err(io_err(what, "wait for nft"))?;
    match out.status.success() {
        true => Ok(()),
        false => Err(NetError::Nft(String::from_utf8_lossy(&out.stderr).trim().replace('\n', "; "))),
    }
}

impl RunNetns {
    /// Docker's bridge network for one container: the bridge `bridge`
    /// with `subnet.host`, the veth `host_if` attached to it (no address of
    /// its own) with its peer `peer_if` in `peer_ns` holding `subnet.peer`,
    /// and the NAT table publishing [`PUBLISHED_PORT`] on `subnet.host`.
    /// A failure removes what was made.
    pub fn add_bridged_veth(
        &self,
        bridge: &str,
        host_if: &str,
        peer_ns: BorrowedFd<'_>,
        peer_if: &str,
        subnet: &Subnet,
    ) -> Result<BridgedVeth, NetError> {
        let what = "bridge";
        check_ifname(bridge)?;
        check_ifname(host_if)?;
        let bridge_index = self.run_in(|| -> Result<u32, NetError> {
            let mut rtnl = Rtnl::open().map_err(io_err(what, "open a netlink socket"))?;
            rtnl.new_bridge(bridge).map_err(|e| match e.raw_os_error() {
                Some(libc::EEXIST) => NetError::Exists { what, name: bridge.to_string() },
                _ => io_err(what, format!("create {bridge}"))(e),
            })?;
            let index = rtnl.index_of(bridge, &self.name).map_err(io_err(what, format!("find {bridge}")))??;
            rtnl.address_and_up_or_delete(index, bridge, subnet.host, subnet.prefix_len, what)?;
            Ok(index)
        })??;
        let bridge_link = Link { name: bridge.to_string(), index: bridge_index, ns_path: self.path.clone(), ns_ino: self.ino };
        let veth = self.add_veth_unaddressed(host_if, peer_ns, peer_if, subnet)?;
        self.run_in(|| -> Result<(), NetError> {
            let mut rtnl = Rtnl::open().map_err(io_err(what, "open a netlink socket"))?;
            rtnl.set_master(veth.index(), bridge_index).map_err(io_err(what, format!("attach {host_if} to {bridge}")))
        })??;
        let rules = NatRules {
            table: format!("isobench_{bridge}"),
            bridge: bridge.to_string(),
            published: subnet.host,
            container: subnet.peer,
            subnet: subnet.network(),
            prefix_len: subnet.prefix_len,
        };
        self.run_in(|| nft(&rules.ruleset()))??;
        // From here the table exists: dropping the result deletes it.
        Ok(BridgedVeth {
            rules: Some(rules),
            ns_path: self.path.clone(),
            ns_ino: self.ino,
            _veth: veth,
            _bridge: bridge_link,
            published: subnet.host,
        })
    }

    /// The tables of this namespace's nftables ruleset (`nft list tables`).
    pub fn nft_tables(&self) -> Result<Vec<String>, NetError> {
        let out = self.run_in(|| Command::new(NFT).args(["list", "tables"]).output())?.map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                NetError::NoNft
            } else {
                io_err("nft", "list tables")(e)
            }
        })?;
        Ok(String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ruleset_dnats_the_published_port_and_masquerades_to_the_bridge() {
        let s = Subnet::nth(7);
        let r = NatRules {
            table: "isobench_ibr1".into(),
            bridge: "ibr1".into(),
            published: s.host,
            container: s.peer,
            subnet: s.network(),
            prefix_len: s.prefix_len,
        };
        let text = r.ruleset();
        assert!(text.starts_with("table ip isobench_ibr1 {"), "{text}");
        assert!(
            text.contains("chain output { type nat hook output priority -100; ip daddr 10.199.7.1 tcp dport 18080 dnat to 10.199.7.2:8080;"),
            "{text}"
        );
        assert!(text.contains("udp dport 18080 dnat to 10.199.7.2:8080"), "{text}");
        assert!(text.contains("ip saddr 10.199.7.0/24 oifname != \"ibr1\" masquerade"), "{text}");
    }
}
