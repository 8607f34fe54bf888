//! Control metrics: work that isolation should not slow, so a reader can
//! tell a real overhead from a noisy machine.
//!
//! - `cpu.spin`: 1000 rounds of a dependent xorshift64 chain per operation,
//!   all in registers: no memory traffic, no system call, no page fault.
//!   Namespaces cannot touch it; a hypervisor only through steal time.
//! - `mem.copy_bw`: memcpy of a buffer twice the size of the last-level cache
//!   (so it streams from memory), counted as bytes copied per second, as
//!   lmbench's `bw_mem bcopy` (STREAM's "copy" counts read + write, i.e.
//!   twice this figure). Both buffers are touched before the clock starts, so
//!   page faults are not part of it.

use crate::catalog::MetricSpec;
use crate::protocol::{RunRequest, RunResult};

use super::{time_loop, MetricError};

/// Rounds of the arithmetic chain in one cpu.spin operation.
pub const SPIN_ROUNDS: u32 = 1000;

pub fn cpu_spin(spec: &'static MetricSpec, req: &RunRequest) -> Result<RunResult, MetricError> {
    let mut x = std::hint::black_box(0x9E37_79B9_7F4A_7C15u64);
    time_loop::<MetricError>(spec, req, || {
        for _ in 0..SPIN_ROUNDS {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
        }
        std::hint::black_box(x);
        Ok(())
    })
}

/// Smallest copy buffer, whatever the cache size reads as.
pub const MIN_COPY_BYTES: usize = 16 << 20;
/// Largest copy buffer (hosts report shared L3s of hundreds of MiB).
pub const MAX_COPY_BYTES: usize = 1 << 30;

/// Size of the largest CPU cache in bytes, from sysfs (absent in some guests).
pub fn last_level_cache_bytes() -> Option<usize> {
    let dir = std::fs::read_dir("/sys/devices/system/cpu/cpu0/cache").ok()?;
    dir.flatten()
        .filter_map(|e| {
            let size = std::fs::read_to_string(e.path().join("size")).ok()?;
            let size = size.trim();
            let (num, mult) = match size.strip_suffix('K') {
                Some(n) => (n, 1024),
                None => match size.strip_suffix('M') {
                    Some(n) => (n, 1 << 20),
                    None => (size, 1),
                },
            };
            num.parse::<usize>().ok().map(|n| n * mult)
        })
        .max()
}

fn mem_available_bytes() -> Option<usize> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The copy size for this machine: twice the LLC, between
/// [`MIN_COPY_BYTES`] and [`MAX_COPY_BYTES`], whole MiB.
pub fn copy_bytes() -> usize {
    let want = last_level_cache_bytes().map_or(MIN_COPY_BYTES, |llc| 2 * llc);
    (want.clamp(MIN_COPY_BYTES, MAX_COPY_BYTES) >> 20) << 20
}

/// Memory this process may still use under its memory cgroup's limit, when
/// the cgroup file system shows it (natively and in runtimes that mount
/// it; isobench's container does not, so the harness sizes its request:
/// `runner::working_set_within`): the limit less the usage, v2
/// (`memory.max` - `memory.current`, also under a hybrid host's
/// `unified/`) or v1 (`memory.limit_in_bytes` - `memory.usage_in_bytes`).
pub fn cgroup_memory_left() -> Option<usize> {
    let cgroups = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let read = |p: String| std::fs::read_to_string(p).ok()?.trim().parse::<u64>().ok();
    let mut left: Option<u64> = None;
    for line in cgroups.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let path = path.trim_end_matches('/');
        let candidates: Vec<(String, &str, &str)> = match controllers {
            "" => ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"].iter().map(|root| (format!("{root}{path}"), "memory.max", "memory.current")).collect(),
            c if c.split(',').any(|c| c == "memory") => {
                vec![(format!("/sys/fs/cgroup/memory{path}"), "memory.limit_in_bytes", "memory.usage_in_bytes")]
            }
            _ => continue,
        };
        for (dir, limit, usage) in candidates {
            // "max" (v2) does not parse; v1's "no limit" is a huge number.
            if let (Some(l), Some(u)) = (read(format!("{dir}/{limit}")), read(format!("{dir}/{usage}"))) {
                let here = l.saturating_sub(u);
                left = Some(left.map_or(here, |x| x.min(here)));
            }
        }
    }
    left.map(|b| usize::try_from(b).unwrap_or(usize::MAX))
}

/// `wanted` bytes, or less when two buffers of it would take more than two
/// thirds of the memory available here: MemAvailable (a guest's own) and
/// what its memory cgroup's limit leaves (a 256 MiB guest or a limited
/// cgroup must not OOM); the result reports the size really used.
pub fn fit_in_memory(wanted: usize) -> usize {
    let available = [mem_available_bytes(), cgroup_memory_left()].into_iter().flatten().min();
    let cap = available.map_or(wanted, |m| m / 3);
    (wanted.min(cap) >> 20).max(1) << 20
}

pub fn mem_copy_bw(spec: &'static MetricSpec, req: &RunRequest) -> Result<RunResult, MetricError> {
    let size = fit_in_memory(req.bytes.map_or_else(copy_bytes, |b| b as usize));
    // vec![1; n] writes every page: no fault inside the timed loop.
    let src = vec![1u8; size];
    let mut dst = vec![2u8; size];
    let mut r = time_loop::<MetricError>(spec, req, || {
        dst.copy_from_slice(&src);
        std::hint::black_box(dst.as_ptr());
        Ok(())
    })?;
    if dst[size - 1] != 1 {
        return Err(MetricError::Failed { metric: spec.name, message: "the copy did not arrive".into() });
    }
    r.bytes_per_op = size as u64;
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{catalog, hist};

    #[test]
    fn spin_and_copy_report_positive_figures_and_the_bytes_they_moved() {
        let spec = catalog::lookup("cpu.spin").unwrap();
        let r = cpu_spin(spec, &RunRequest { warmup: 1, ..RunRequest::new(spec.name, 100, 10_000) }).unwrap();
        let h = hist::decode(&r.histogram).unwrap();
        assert_eq!(h.len(), 10);
        // 3000 dependent ALU operations take more than 300 ns on any CPU
        assert!(h.min() > 300, "{}", h.min());
        assert_eq!(r.bytes_per_op, 0);

        let spec = catalog::lookup("mem.copy_bw").unwrap();
        let r = mem_copy_bw(spec, &RunRequest { warmup: 0, bytes: Some(4 << 20), ..RunRequest::new(spec.name, 3, 10_000) }).unwrap();
        assert_eq!(r.iterations, 3);
        assert_eq!(r.bytes_per_op, 4 << 20, "the requested working set is what was copied");
        assert!(r.elapsed_ns > 0);
    }

    #[test]
    fn copy_size_is_twice_the_llc_within_bounds() {
        let size = copy_bytes();
        assert!((MIN_COPY_BYTES..=MAX_COPY_BYTES).contains(&size));
        if let Some(llc) = last_level_cache_bytes() {
            if 2 * llc <= MAX_COPY_BYTES {
                assert!(size + (1 << 20) > 2 * llc, "{size} vs llc {llc}");
            }
        }
        assert!(fit_in_memory(size) <= size);
        // Whatever limits this process, two buffers fit in two thirds of it.
        let left = [cgroup_memory_left(), mem_available_bytes()].into_iter().flatten().min().unwrap();
        assert!(2 * fit_in_memory(MAX_COPY_BYTES) <= (2 * left / 3).max(2 << 20), "{left}");
    }
}
