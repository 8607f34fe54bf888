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
//!
//! - [`netns`]: the run's namespace ([`RunNetns`]), entering a namespace, the sweep
//! - [`subnet`]: the /24s of 10.199.0.0/16 handed out inside it ([`Subnet`])
//! - [`bridge`]: Docker's bridge with a published port by DNAT and masquerade, inside it (`--profile docker`)
//! - [`link`]: veth pairs and taps made in it ([`Link`]), and their state
//! - [`rtnl`]: the rtnetlink requests behind them

use std::io;

pub mod bridge;
pub mod link;
pub mod netns;
pub mod rtnl;
pub mod subnet;

pub use bridge::{BridgedVeth, NatRules, CONTAINER_PORT, PUBLISHED_PORT};
pub use link::{check_ifname, link_state_in, Link, LinkState, TunState, MAX_IFNAME_LEN};
pub use netns::{run_in_ns, sweep, sweep_at, RunNetns, NETNS_DIR};
pub use subnet::{Subnet, MAX_SUBNETS, SUBNET_BASE, SUBNET_PREFIX_LEN};

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
    #[error("nft: not found; the bridge+NAT layer of --profile docker writes its rules with it: apt-get install nftables (scripts/setup)")]
    NoNft,
    #[error("nft refused the run namespace's NAT rules: {0}")]
    Nft(String),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_root_tells_what_to_do() {
        let e = io_err("veth", "create")(io::Error::from_raw_os_error(libc::EPERM));
        assert_eq!(e.to_string(), "veth: needs root (CAP_NET_ADMIN); run isobench as root or use --net loopback");
        let e = io_err("veth", "create x")(io::Error::from_raw_os_error(libc::ENOMEM));
        assert!(e.to_string().starts_with("veth: create x: "), "{e}");
    }
}
