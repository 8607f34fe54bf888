//! The noise threshold: how far apart two figures must be before the
//! report marks an overhead significant (`*`) or `isobench compare` calls a
//! change regressed or improved. criterion judges a change against a fixed
//! noise threshold (2 %); here the threshold is what identical runs on this
//! project's machine actually differ by, per metric, and never finer than
//! the histogram can resolve.
//!
//! How [`RUN_TO_RUN`] was measured: 2026-12-07, 07:28–07:41 UTC, on the
//! 2-core nested Debian 12 VM this project is developed on (AMD EPYC, kernel
//! 6.18, TCG/kvm-pvm), while four to five other cargo builds and test runs
//! shared its two cores (load average 3.3): six identical runs of
//! `isobench run --env native --metric all --max-ms 1500`, back to back.
//! For each metric, the p50 of every run against the p50 of every other run
//! (30 ordered pairs); the figure is the 95th percentile of |ratio − 1|,
//! rounded up to the next whole percent: a change larger than it is
//! something identical runs show less than one time in twenty. The
//! spread is that of a busy shared machine, and it is large (syscalls ~35 %,
//! a start ~240 %): figures from such a machine differ by that much from
//! one run to the next, and the report does not claim finer. A metric not
//! in the table gets its family's median ([`FAMILY`]).
//!
//! The histogram's resolution: HdrHistogram at 3 significant digits
//! records values below 2048 exactly, so at p50 = 29 ns one bucket is 1 ns,
//! 3.4 %. A threshold is never less than two buckets at the median
//! ([`resolution`]).

use isobench_workloads::catalog::Family;

use crate::collect::Measurement;

/// Per metric: the 95th percentile of |p50 ratio − 1| between identical
/// runs (see the module documentation for the method, date and host).
pub const RUN_TO_RUN: &[(&str, f64)] = &[
    ("env.start", 2.40),
    ("spawn.fork_exit", 0.39),
    ("spawn.fork_exec", 0.68),
    ("spawn.posix_spawn", 1.39),
    ("spawn.thread", 0.73),
    ("syscall.getpid", 0.46),
    ("syscall.clock_gettime", 0.13),
    ("syscall.read_devnull", 0.39),
    ("syscall.write_devnull", 0.36),
    ("syscall.open_close", 0.34),
    ("syscall.stat", 0.34),
    ("syscall.mmap_munmap", 0.33),
    ("ipc.pipe_rtt", 0.31),
    ("ipc.unix_rtt", 0.32),
    ("ipc.eventfd_rtt", 0.25),
    ("net.tcp_rr", 0.07),
    ("net.udp_rr", 0.25),
    ("ipc.pipe_bw", 0.23),
    ("ipc.unix_bw", 0.27),
    ("net.tcp_stream", 2.60),
    ("net.tcp_rr.boundary", 0.21),
    ("net.udp_rr.boundary", 0.09),
    ("net.tcp_stream.boundary", 2.41),
    ("fs.seq_write_bw", 0.57),
    ("fs.seq_write_buffered_bw", 0.63),
    ("fs.seq_read_bw", 1.40),
    ("fs.seq_read_buffered_bw", 0.32),
    ("fs.rand_read", 0.16),
    ("fs.rand_write", 0.39),
    ("fs.fsync", 0.26),
    ("fs.create_unlink", 1.25),
    ("fs.stat", 0.34),
    ("fs.open_close", 0.32),
    ("cpu.spin", 0.04),
    ("mem.copy_bw", 0.85),
];

/// Per family, for a metric [`RUN_TO_RUN`] does not list: the median of
/// the family's metrics there.
pub const FAMILY: [(Family, f64); 6] =
    [(Family::Spawn, 0.73), (Family::Syscall, 0.34), (Family::Ipc, 0.27), (Family::Net, 0.25), (Family::Fs, 0.39), (Family::Control, 0.85)];

/// A threshold is at least this many histogram buckets at the median.
pub const MIN_BUCKETS: f64 = 2.0;

/// Where the thresholds come from, in the report's and compare's words.
pub const SOURCE: &str = "the 95th percentile of the p50 change between six identical native runs on this project's 2-core nested VM \
     (2026-12-07, shared with other builds), per metric; at least two histogram buckets";

/// The run-to-run threshold of `metric` (a fraction: 0.34 = 34 %).
pub fn run_to_run(metric: &str, family: Family) -> f64 {
    RUN_TO_RUN.iter().find(|(m, _)| *m == metric).map(|p| p.1).unwrap_or_else(|| FAMILY.iter().find(|(f, _)| *f == family).map_or(0.5, |p| p.1))
}

/// The width of the histogram's bucket at `m`'s median, as a fraction of
/// the median.
pub fn resolution(m: &Measurement) -> f64 {
    let p50 = m.histogram.value_at_quantile(0.5);
    if p50 == 0 {
        return 0.0;
    }
    let lo = m.histogram.lowest_equivalent(p50);
    let hi = m.histogram.next_non_equivalent(p50);
    (hi - lo) as f64 / p50 as f64
}

/// The threshold for a change between `a` and `b` (two measurements of one
/// metric): the metric's run-to-run figure, or the histograms' resolution
/// where that is coarser.
pub fn threshold(a: &Measurement, b: &Measurement) -> f64 {
    let run = run_to_run(a.metric.name, a.metric.family);
    run.max(MIN_BUCKETS * resolution(a).max(resolution(b)))
}

/// Whether a cost ratio `r` lies beyond the threshold `noise`, in either
/// direction (1.5× slower and 1.5× faster are as far from 1).
pub fn beyond(r: f64, noise: f64) -> bool {
    r > 1.0 + noise || r < 1.0 / (1.0 + noise)
}

#[cfg(test)]
mod tests {
    use super::*;
    use isobench_workloads::catalog;

    fn m(metric: &str, center: u64) -> Measurement {
        let mut m = Measurement::new("native", "native", catalog::lookup(metric).unwrap());
        m.histogram.record_n(center, 100).unwrap();
        m
    }

    #[test]
    fn the_measured_thresholds_name_catalogue_metrics() {
        for (name, _) in RUN_TO_RUN {
            assert!(catalog::names().any(|n| n == *name), "{name} is not a metric");
        }
        assert_eq!(run_to_run("no.such", Family::Ipc), 0.27, "a metric not measured gets its family's");
    }

    #[test]
    fn the_threshold_is_never_finer_than_the_histogram() {
        // 10 ns: one bucket is 1 ns, 10 %; two buckets 20 % > cpu.spin's 4 %.
        let (a, b) = (m("cpu.spin", 10), m("cpu.spin", 10));
        assert!((resolution(&a) - 0.1).abs() < 1e-9, "{}", resolution(&a));
        assert!((threshold(&a, &b) - 0.2).abs() < 1e-9);
        // 1 ms: buckets are far finer than the measured 4 %.
        assert_eq!(threshold(&m("cpu.spin", 1_000_000), &m("cpu.spin", 1_000_000)), 0.04);
    }

    #[test]
    fn beyond_is_symmetric_in_ratio() {
        assert!(beyond(1.5, 0.4) && beyond(1.0 / 1.5, 0.4));
        assert!(!beyond(1.3, 0.4) && !beyond(1.0 / 1.3, 0.4));
    }
}
