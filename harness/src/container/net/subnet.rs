//! The run subnets: one /24 of 10.199.0.0/16 per veth pair or tap
//! ([`Subnet`]), handed out in turn by the run's namespace
//! ([`RunNetns::allocate_subnet`]); they exist only inside it, so they cannot
//! clash with the host's networks.

use std::net::Ipv4Addr;
use std::sync::atomic::Ordering;

use super::{NetError, RunNetns};

/// The first two octets of every run subnet: 10.199.N.0/24, N = 1..=254.
/// 10.199.0.0/16 is private (RFC 1918) and, being only ever configured inside
/// the run's namespace, cannot clash with the host's networks.
pub const SUBNET_BASE: [u8; 2] = [10, 199];

/// The prefix length of every run subnet: one /24 per veth pair or tap.
pub const SUBNET_PREFIX_LEN: u8 = 24;

/// How many /24s one namespace can hand out (10.199.1.0 to 10.199.254.0).
pub const MAX_SUBNETS: u32 = 254;

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

impl RunNetns {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_are_slash_24s_of_10_199() {
        let s = Subnet::nth(3);
        assert_eq!((s.host, s.peer, s.prefix_len), (Ipv4Addr::new(10, 199, 3, 1), Ipv4Addr::new(10, 199, 3, 2), 24));
        assert_eq!(s.to_string(), "10.199.3.0/24");
    }
}
