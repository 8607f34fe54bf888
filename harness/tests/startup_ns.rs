//! The per-namespace breakdown of the launcher's start: one interleaved
//! column per namespace set (none, each alone, all), every one with its
//! samples, and the report section and chart drawn from it.

use isobench_harness::env::Options;
use isobench_harness::results::RunDir;
use isobench_harness::{report, startup, workloads};
use isobench_testkit::{trial, Need::*};

fn main() {
    isobench_testkit::run(vec![trial!(every_namespace_set_gets_its_samples_and_a_report_section).needs(&[Root])]);
}

fn every_namespace_set_gets_its_samples_and_a_report_section() {
    let opts = Options::new(workloads::locate().unwrap());
    let run = startup::per_namespace(&opts, startup::Noop::Static, 5, 1, &mut |_| {}).unwrap();
    let labels: Vec<&str> = run.rows.iter().map(|r| r.label.as_str()).collect();
    assert_eq!(labels.first(), Some(&"none"), "{labels:?}");
    for ns in ["user", "pid", "net", "ipc", "uts", "mnt", "cgroup"] {
        assert!(labels.contains(&ns), "{ns} missing: {labels:?}");
    }
    assert_eq!(run.rows.len(), 9, "{labels:?}");
    for r in &run.rows {
        assert_eq!(r.samples_ns.len(), 5, "{}", r.label);
        assert!(r.samples_ns.iter().all(|&s| s > 0), "{}", r.label);
    }
    let d = tempfile::tempdir().unwrap();
    let dir = RunDir::at(d.path()).unwrap();
    dir.save_startup_per_namespace(&run).unwrap();
    let md = std::fs::read_to_string(report::render(&dir).unwrap()).unwrap();
    assert!(md.contains("## Per-namespace start cost") && md.contains("| none |"), "{md}");
    assert!(d.path().join("plots/start-per-namespace.svg").is_file());

    // With the nolibc no-op too: its own file, section and chart, and both
    // headings say which no-op they are.
    let nolibc = startup::per_namespace(&opts, startup::Noop::Nolibc, 3, 1, &mut |_| {}).unwrap();
    assert_eq!(nolibc.rows.len(), 9);
    dir.save_startup_per_namespace(&nolibc).unwrap();
    assert!(d.path().join("startup-ns.json").is_file() && d.path().join("startup-ns-nolibc.json").is_file());
    let md = std::fs::read_to_string(report::render(&dir).unwrap()).unwrap();
    assert!(md.contains("## Per-namespace start cost (static glibc no-op)"), "{md}");
    assert!(md.contains("## Per-namespace start cost (no-op without C library start-up)"), "{md}");
    assert!(md.contains("(plots/start-per-namespace-nolibc.svg)") && md.contains("(plots/start-per-namespace.svg)"), "{md}");
    assert!(d.path().join("plots/start-per-namespace-nolibc.svg").is_file());
}
