//! The native environment through the harness API: the static agent starts,
//! says ready, measures every catalogue metric with positive latencies, and
//! exits on shutdown.

use isobench_harness::collect::Measurement;
use isobench_harness::env::{self, EnvKind, Options};
use isobench_harness::{vm::AccelChoice, workloads};
use isobench_workloads::catalog::{Family, CATALOG};
use isobench_workloads::protocol::RunRequest;

#[test]
fn every_metric_returns_positive_latencies_natively() {
    let opts = Options { accel: AccelChoice::Tcg, ..Options::new(workloads::locate().expect("static workloads")) };
    let mut native = env::prepare(EnvKind::Native, &opts).expect("native is always available");
    let mut inst = native.start().expect("agent starts");
    assert_eq!(inst.info().pid, {
        // the agent is our child, not us
        let p = inst.info().pid;
        assert_ne!(p, std::process::id());
        p
    });
    assert!(inst.ready_after().as_nanos() > 0);
    let mut hosts = isobench_harness::boundary::HostSides::new(&workloads::locate().unwrap());
    // The fs metrics' files (harness/tests/storage.rs checks their bytes).
    let data = tempfile::tempdir().unwrap();
    // The app metrics start servers: harness/tests/apps.rs.
    for spec in CATALOG.iter().filter(|m| !m.host_timed && m.family != Family::App) {
        // A working set only where the metric has one (the agent refuses it elsewhere).
        let bytes = (spec.name == "mem.copy_bw").then_some(4 << 20);
        let data_dir = spec.needs_data_dir().then(|| data.path().display().to_string());
        let req = RunRequest { warmup: 5, bytes, data_dir, ..RunRequest::new(spec.name, spec.quick_iterations, 20_000) };
        // Across the boundary: a host-side agent times it against this one.
        let r = match spec.boundary {
            false => inst.agent().run(&req).map_err(|e| e.to_string()),
            true => isobench_harness::boundary::measure(inst.as_mut(), &mut hosts, spec, &req).map_err(|e| e.to_string()),
        };
        let r = r.unwrap_or_else(|e| panic!("{}: {e}", spec.name));
        assert_eq!(r.metric, spec.name);
        assert!(r.iterations >= spec.quick_iterations, "{}: {} iterations", spec.name, r.iterations);
        assert!(r.elapsed_ns > 0);
        let mut m = Measurement::new("native", "native", spec);
        m.add(&r).unwrap();
        let s = m.summary();
        assert!(s.min > 0.0 && s.min.is_finite() && s.max.is_finite(), "{}: {s:?}", spec.name);
        if spec.unit.is_rate() {
            // p99 is the slow tail of a rate
            assert!(s.p99 <= s.p50 && s.p50 <= s.max, "{}: {s:?}", spec.name);
            assert!(r.bytes_per_op > 0, "{}", spec.name);
        } else {
            assert!(s.p50 >= s.min && s.p99 >= s.p50 && s.max >= s.p99, "{}: {s:?}", spec.name);
        }
        // per-operation mean from the histogram agrees with the loop's own clock within 2×
        let loop_mean_ns = r.elapsed_ns as f64 / r.iterations as f64;
        let hist_mean_ns = m.histogram.mean();
        assert!(hist_mean_ns / loop_mean_ns < 2.0 && loop_mean_ns / hist_mean_ns < 2.0, "{}: {hist_mean_ns} vs {loop_mean_ns}", spec.name);
    }
    let err = inst.agent().run(&RunRequest::new("syscall.nope", 1, 1)).unwrap_err();
    assert!(err.to_string().contains("unknown metric"), "{err}");
    inst.shutdown().expect("agent exits 0 on shutdown");

    // env.start: host-timed start → ready → shutdown → exit, three times
    let spec = isobench_workloads::catalog::lookup("env.start").unwrap();
    let m = isobench_harness::runner::measure_start(native.as_mut(), spec, 3, &std::sync::atomic::AtomicUsize::new(0)).unwrap();
    assert_eq!(m.iterations, 3);
    assert_eq!(m.histogram.len(), 3);
    assert!(m.summary().p50 > 0.0, "{:?}", m.summary());
    // the agent refuses to time it itself
    let mut inst = native.start().unwrap();
    let err = inst.agent().run(&RunRequest::new("env.start", 1, 1)).unwrap_err();
    assert!(err.to_string().contains("timed by the harness"), "{err}");
    inst.shutdown().unwrap();
}
