//! The host's TSC rate, for the guest's `tsc_early_khz=`.
//!
//! Under TCG the guest's TSC is the host's (QEMU returns the host's cycle
//! counter plus an offset), so the host's rate is the guest's, exactly. A
//! guest kernel told the rate skips calibrating the TSC against the PIT,
//! which fails under TCG on a loaded host and, on microvm (no HPET, no ACPI
//! PM timer as a second reference), hangs the boot. The rate comes from the
//! kernel when it exports it (`tsc_freq_khz`, on some kernels), else from a
//! measurement: TSC ticks against CLOCK_MONOTONIC over a few short
//! intervals, the median taken so that a preemption in one does not count.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Where some kernels export the rate they calibrated.
const SYSFS: &str = "/sys/devices/system/cpu/cpu0/tsc_freq_khz";

/// Length of one measured interval and how many are taken.
const INTERVAL: Duration = Duration::from_millis(10);
const ROUNDS: usize = 5;

/// The host's TSC rate in kHz, computed once per process; `None` on a CPU
/// without a TSC (not x86-64).
pub fn host_khz() -> Option<u64> {
    static KHZ: OnceLock<Option<u64>> = OnceLock::new();
    *KHZ.get_or_init(|| from_sysfs().or_else(measure))
}

fn from_sysfs() -> Option<u64> {
    std::fs::read_to_string(SYSFS).ok()?.trim().parse().ok().filter(|&k| k > 0)
}

#[cfg(target_arch = "x86_64")]
fn rdtsc() -> u64 {
    // SAFETY: RDTSC reads a counter and has no memory effects; every x86-64
    // CPU implements it, and Linux leaves it enabled for user space.
    unsafe { core::arch::x86_64::_rdtsc() }
}

#[cfg(target_arch = "x86_64")]
fn measure() -> Option<u64> {
    let mut rates: Vec<u64> = (0..ROUNDS)
        .filter_map(|_| {
            let (c0, t0) = (rdtsc(), Instant::now());
            std::thread::sleep(INTERVAL);
            let (c1, t1) = (rdtsc(), Instant::now());
            let us = (t1 - t0).as_micros() as u64;
            (us > 0 && c1 > c0).then(|| (c1 - c0) * 1000 / us)
        })
        .collect();
    rates.sort_unstable();
    rates.get(rates.len() / 2).copied().filter(|&k| k > 0)
}

#[cfg(not(target_arch = "x86_64"))]
fn measure() -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn measured_rate_is_plausible() {
        let khz = measure().expect("a TSC on x86-64");
        eprintln!("host TSC: {khz} kHz measured, {:?} kHz from sysfs", from_sysfs());
        // Any x86-64 made this century: 0.5 to 10 GHz.
        assert!((500_000..10_000_000).contains(&khz), "{khz} kHz");
        assert_eq!(host_khz(), host_khz(), "computed once");
    }
}
