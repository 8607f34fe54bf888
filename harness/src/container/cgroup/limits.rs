//! A container's resource limits (`--cpus`, `--memory`, `--pids`: [`Limits`],
//! parsed from the command line) and what its group used ([`Usage`], read
//! when it has ended); [`super::v1`] and [`super::v2`] write and read each in
//! their hierarchy's own files.

use serde::Serialize;

use super::CgroupError;

/// The CFS period isobench sets with `--cpus` (the kernel's default, 100 ms):
/// `--cpus 1.5` is a quota of 150 ms of CPU time per 100 ms.
pub const CPU_PERIOD_US: u64 = 100_000;

/// Resource limits of a container (`--cpus`, `--memory`, `--pids`); `None`
/// leaves a resource unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Limits {
    /// CPUs' worth of time per period (1.5 = one and a half CPUs).
    pub cpus: Option<f64>,
    /// Memory in bytes, beyond which the kernel reclaims and then OOM-kills
    /// inside the group. Swap is not allowed on top.
    pub memory: Option<u64>,
    /// Maximum number of tasks (processes and threads); fork fails with EAGAIN
    /// beyond it.
    pub pids: Option<u64>,
}

impl Limits {
    pub fn is_empty(&self) -> bool {
        self.cpus.is_none() && self.memory.is_none() && self.pids.is_none()
    }

    /// The CFS quota for [`CPU_PERIOD_US`].
    pub fn cpu_quota_us(&self) -> Option<u64> {
        self.cpus.map(|c| ((c * CPU_PERIOD_US as f64).round() as u64).max(1000))
    }

    /// Parses `--cpus`: a positive decimal number of CPUs (0.01 or more).
    pub fn parse_cpus(s: &str) -> Result<f64, CgroupError> {
        let bad = |why| CgroupError::InvalidLimit { flag: "--cpus", value: s.to_string(), why };
        let v: f64 = s.trim().parse().map_err(|_| bad("expected a number of CPUs such as 0.5 or 2"))?;
        if !v.is_finite() || v < 0.01 {
            return Err(bad("must be at least 0.01 (the kernel's smallest quota is 1 ms per 100 ms period)"));
        }
        Ok(v)
    }

    /// Parses `--memory`: bytes, or a number with a binary suffix k, m, g
    /// (`64m` = 64 MiB); at least 1 MiB.
    pub fn parse_memory(s: &str) -> Result<u64, CgroupError> {
        let bad = |why| CgroupError::InvalidLimit { flag: "--memory", value: s.to_string(), why };
        let t = s.trim().to_ascii_lowercase();
        let t = t.strip_suffix("ib").or_else(|| t.strip_suffix('b')).unwrap_or(&t);
        let (num, shift) = match t.chars().last() {
            Some('k') => (&t[..t.len() - 1], 10),
            Some('m') => (&t[..t.len() - 1], 20),
            Some('g') => (&t[..t.len() - 1], 30),
            _ => (t, 0),
        };
        let n: u64 = num.parse().map_err(|_| bad("expected bytes or a size such as 64m or 1g"))?;
        let bytes = n.checked_shl(shift).filter(|b| b >> shift == n).ok_or_else(|| bad("too large"))?;
        if bytes < 1 << 20 {
            return Err(bad("must be at least 1m (a smaller limit kills the container before it starts)"));
        }
        Ok(bytes)
    }

    /// Parses `--pids`: a positive number of tasks.
    pub fn parse_pids(s: &str) -> Result<u64, CgroupError> {
        let bad = |why| CgroupError::InvalidLimit { flag: "--pids", value: s.to_string(), why };
        match s.trim().parse::<u64>() {
            Ok(0) => Err(bad("must be at least 1 (the container's init is a task)")),
            Ok(n) => Ok(n),
            Err(_) => Err(bad("expected a number of tasks such as 64")),
        }
    }
}

/// What a container's group used, read when the container has ended.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Usage {
    /// CPU time of all members, user + system, nanoseconds.
    pub cpu_ns: Option<u64>,
    /// Highest memory charged to the group at any time, bytes.
    pub memory_peak_bytes: Option<u64>,
    /// Members killed by the OOM killer because of the memory limit.
    pub oom_kills: Option<u64>,
    /// Forks refused because of the pids limit.
    pub pids_limit_hits: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_limits() {
        assert_eq!(Limits::parse_memory("64m").unwrap(), 64 << 20);
        assert_eq!(Limits::parse_memory("1G").unwrap(), 1 << 30);
        assert_eq!(Limits::parse_memory("2MiB").unwrap(), 2 << 20);
        assert_eq!(Limits::parse_memory("1048576").unwrap(), 1 << 20);
        let e = Limits::parse_memory("12x").unwrap_err().to_string();
        assert_eq!(e, "invalid --memory value \"12x\": expected bytes or a size such as 64m or 1g");
        assert!(Limits::parse_memory("4k").is_err(), "below 1 MiB");
        assert!(Limits::parse_memory("99999999999g").is_err());
        assert_eq!(Limits::parse_cpus("1.5").unwrap(), 1.5);
        assert!(Limits::parse_cpus("0").is_err() && Limits::parse_cpus("x").is_err() && Limits::parse_cpus("NaN").is_err());
        assert_eq!(Limits::parse_pids("64").unwrap(), 64);
        assert!(Limits::parse_pids("0").is_err() && Limits::parse_pids("-1").is_err());
        let l = Limits { cpus: Some(0.5), ..Default::default() };
        assert_eq!(l.cpu_quota_us(), Some(50_000));
        assert!(Limits::default().is_empty() && !l.is_empty());
    }
}
