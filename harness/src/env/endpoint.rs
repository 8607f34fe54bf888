//! How the host side reaches an environment's agent for the cross-boundary
//! metrics ([`Endpoint`], from [`Instance::endpoint`](super::Instance::endpoint)):
//! the data path ([`PathKind`]), the network namespace the host-side agent
//! runs in, the addresses each end uses and the forwarded ports of a guest's
//! user-mode network. The boundary measurement (`boundary`) drives both ends
//! through it; run.json records it per environment ([`Endpoint::metadata`]).

use std::net::IpAddr;
use std::sync::Arc;

use crate::container::net::RunNetns;
use crate::vm::qemu::Forwards;

/// The data path between the host side and an environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PathKind {
    /// Native: two processes on the host's loopback (no boundary).
    Loopback,
    /// A container without its own network namespace: the host's network.
    HostNetwork,
    /// A veth pair between the run's network namespace and the container's.
    Veth,
    /// A veth pair from the run's network namespace whose other end gVisor's
    /// netstack drives (runsc `--network=sandbox`).
    Netstack,
    /// Docker's bridge network: the veth on a bridge of the run's network
    /// namespace, the host side connecting to a published port that
    /// nftables DNATs to the container and masquerades (`--profile docker`).
    VethBridgeNat,
    /// Docker's bridge network in front of gVisor's netstack: the veth of
    /// [`PathKind::VethBridgeNat`] (bridge, published port DNAT'd and
    /// masqueraded in the run's namespace) whose container end runsc's
    /// netstack drives (`--profile docker` under runsc).
    NetstackBridgeNat,
    /// A tap device in the run's network namespace, virtio-net in the guest.
    Tap,
    /// QEMU's user-mode network (slirp) with ports forwarded on loopback: a
    /// different data path (a userspace TCP/IP stack in QEMU), used without
    /// root.
    Slirp,
}

impl PathKind {
    /// Words for reports: "veth", "tap + virtio-net", ...
    pub fn describe(self) -> &'static str {
        match self {
            PathKind::Loopback => "loopback (MTU 65536) between two host processes (no boundary)",
            PathKind::HostNetwork => "the host's network (no network namespace)",
            PathKind::Veth => "veth pair (MTU 1500) from the run's network namespace",
            PathKind::Netstack => "veth pair (MTU 1500) from the run's network namespace into gVisor's netstack (runsc --network=sandbox)",
            PathKind::VethBridgeNat => {
                "veth+bridge+NAT: veth pair on a Linux bridge of the run's network namespace, published port DNAT'd and masqueraded by nftables there"
            }
            PathKind::NetstackBridgeNat => {
                "netstack+bridge+NAT: veth pair on a Linux bridge of the run's network namespace, published port DNAT'd and masqueraded by nftables there, its container end driven by gVisor's netstack (runsc --network=sandbox)"
            }
            PathKind::Tap => "tap (MTU 1500) in the run's network namespace + virtio-net (QEMU's userspace backend, no vhost-net)",
            PathKind::Slirp => "user-mode networking (slirp)",
        }
    }
}

/// How the host side reaches an environment's agent.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub path: PathKind,
    /// Where the host-side agent runs; `None`: the host's own namespace.
    pub netns: Option<Arc<RunNetns>>,
    /// The address the environment's agent binds.
    pub bind: IpAddr,
    /// The address the host side connects to.
    pub connect: IpAddr,
    /// Fixed forwarded ports (slirp, or a published port DNAT'd to the
    /// container: (port the environment binds, port the host side connects
    /// to)); `None`: the server picks a free port.
    pub forwards: Option<Forwards>,
    /// Both ends share the host's scheduler (native, container), so the
    /// harness picks their CPUs by the pinning mode; false for a guest, whose
    /// end pins itself inside the guest (see the module docs).
    pub host_scheduler: bool,
}

impl Endpoint {
    /// The native baseline: both ends on 127.0.0.1 in the host's namespace.
    pub fn loopback(path: PathKind) -> Endpoint {
        let lo = IpAddr::from(std::net::Ipv4Addr::LOCALHOST);
        Endpoint { path, netns: None, bind: lo, connect: lo, forwards: None, host_scheduler: true }
    }

    /// For run.json: the path, addresses and namespace.
    pub fn metadata(&self) -> serde_json::Value {
        serde_json::json!({
            "path": self.path,
            "description": self.path.describe(),
            "netns": self.netns.as_ref().map(|n| n.name().to_string()),
            "environment_address": self.bind,
            "host_side_connects_to": self.connect,
            "forwards": self.forwards,
            "host_scheduler": self.host_scheduler,
        })
    }
}
