//! Golden-file test of report.md: a fixed run.json and fixed histograms must
//! give exactly harness/tests/golden/report.md (numbers → table text), read
//! through the run record as any run.json is. Run with UPDATE_GOLDEN=1 to
//! accept a deliberate change, then review the diff.

use std::path::{Path, PathBuf};

use isobench_harness::collect::Measurement;
use isobench_harness::report::section::{self, Context};
use isobench_harness::results::{RunDir, RunRecord};
use isobench_workloads::catalog;

/// 1000 samples spread evenly over ±10 % of `center` ns.
fn measurement(env: &str, label: &str, metric: &str, center: u64) -> Measurement {
    let mut m = Measurement::new(env, label, catalog::lookup(metric).unwrap());
    for i in 0..1000u64 {
        m.histogram.record(center - center / 10 + i * center / 5 / 1000).unwrap();
    }
    m.iterations = 1000 * m.metric.ops_per_sample;
    m.elapsed_ns = center * m.iterations;
    m
}

#[test]
fn report_md_matches_the_golden_file() {
    let run: RunRecord = serde_json::from_value(serde_json::json!({
        "schema": 1,
        "started_utc": "2026-11-30T00:00:00Z",
        "host": { "hostname": "golden", "cpu_model": "Test CPU", "cpus": 2, "kernel": "6.1.0-test", "cgroup_mode": "hybrid",
                  "governor": "performance", "clocksource": "tsc", "load_avg_1m": 0.1, "isobench_revision": "abc123",
                  "smt": false, "boost": null, "rcu_expedited": false, "mitigations": { "meltdown": "Not affected" } },
        "parameters": { "driver": "isobench run", "quick": true, "pin": "split" },
        "environments": {
            "native": { "label": "native", "start_ms": 1.5 },
            "container": { "label": "container", "start_ms": 2.5 },
            "vm": { "label": "vm (emulated (TCG))", "start_ms": 4700.0, "metadata": { "accel": "tcg", "accel_reason": "forced by --accel tcg" } }
        }
    }))
    .expect("the golden run.json reads as a run record");
    let ms = vec![
        measurement("native", "native", "syscall.getpid", 100),
        measurement("container", "container", "syscall.getpid", 150),
        measurement("vm", "vm (emulated (TCG))", "syscall.getpid", 400),
        measurement("native", "native", "ipc.pipe_bw", 10_000),
        measurement("container", "container", "ipc.pipe_bw", 10_000),
        measurement("vm", "vm (emulated (TCG))", "ipc.pipe_bw", 40_000),
    ];
    let plots = vec![PathBuf::from("plots/syscall.getpid.svg"), PathBuf::from("plots/overhead.svg")];
    // An empty folder: no startup or validate records of its own.
    let d = tempfile::tempdir().unwrap();
    let dir = RunDir::at(d.path()).unwrap();
    let md = section::markdown(&Context { dir: &dir, run: &run, measurements: &ms, plots: &plots, warnings: &[] }).unwrap();
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/report.md");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden, &md).unwrap();
    }
    let want = std::fs::read_to_string(&golden).expect("golden file (UPDATE_GOLDEN=1 creates it)");
    assert_eq!(md, want, "report.md changed; if deliberate, rerun with UPDATE_GOLDEN=1 and review the diff");

    // The answer comes first: the verdict, then the chart and the table.
    let at = |s: &str| md.find(s).unwrap_or_else(|| panic!("no {s:?} in report.md"));
    assert!(
        at("## Verdict") < at("## Overhead at a glance")
            && at("## Overhead at a glance") < at("## Summary")
            && at("## Summary") < at("## Host and method")
    );
    // A smoke run: no significance marks anywhere, and it says so.
    assert!(md.contains("do not quote") && !md.contains(") *") && !md.contains(" ≈") && !md.contains('‡'), "{md}");

    // report.html: no stray markdown, no empty header row, no raw JSON.
    let html = isobench_harness::report::html::render(&md, d.path());
    assert!(html.contains("<code>ipc.*</code>") && !html.contains("<em>"), "`ipc.*` renders literally:\n{html}");
    assert!(!html.contains("<th></th>"), "no empty header row");
    assert!(!md.contains("`{\""), "no raw JSON parameters row");
}

/// The verdict of a full (not `--quick`) run: hyperfine-style sentences
/// from the geometric mean of each family's ratios, the start column, the
/// TCG caveat; compared as text.
#[test]
fn the_verdict_of_a_full_run_reads_as_written() {
    let run: RunRecord = serde_json::from_value(serde_json::json!({
        "schema": 1,
        "parameters": { "driver": "isobench run", "quick": false },
        "environments": {
            "native": { "label": "native", "start_ms": 1.5 },
            "container": { "label": "container", "start_ms": 2.5 },
            "vm": { "label": "vm (emulated (TCG))", "start_ms": 4700.0 },
            "runc": { "skipped": "runc not found" }
        }
    }))
    .unwrap();
    let ms = vec![
        measurement("native", "native", "syscall.getpid", 100),
        measurement("container", "container", "syscall.getpid", 102),
        measurement("vm", "vm (emulated (TCG))", "syscall.getpid", 400),
        measurement("native", "native", "syscall.clock_gettime", 50),
        measurement("container", "container", "syscall.clock_gettime", 51),
        measurement("vm", "vm (emulated (TCG))", "syscall.clock_gettime", 800),
        measurement("native", "native", "ipc.pipe_rtt", 10_000),
        measurement("container", "container", "ipc.pipe_rtt", 10_000),
        measurement("vm", "vm (emulated (TCG))", "ipc.pipe_rtt", 40_000),
    ];
    let d = tempfile::tempdir().unwrap();
    let dir = RunDir::at(d.path()).unwrap();
    let cx = Context { dir: &dir, run: &run, measurements: &ms, plots: &[], warnings: &[] };
    let md = section::markdown(&cx).unwrap();
    let verdict = &md[md.find("## Verdict").unwrap()..md.find("Each family's figure").unwrap()];
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/verdict.md");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden, verdict).unwrap();
    }
    assert_eq!(verdict, std::fs::read_to_string(&golden).unwrap(), "the verdict changed; if deliberate, UPDATE_GOLDEN=1 and review");
    // syscall in the vm: the geometric mean of 4× and 16× is 8×.
    assert!(verdict.contains("ran syscall 8."), "{verdict}");
    assert!(!md.contains("do not quote"), "a full run is not a smoke run");
}

/// A run without native says why it has no ratios.
#[test]
fn a_run_without_native_says_why_there_are_no_ratios() {
    let run = RunRecord::default();
    let ms = vec![measurement("container", "container", "syscall.getpid", 102), measurement("runc", "runc", "syscall.getpid", 103)];
    let d = tempfile::tempdir().unwrap();
    let dir = RunDir::at(d.path()).unwrap();
    let md = section::markdown(&Context { dir: &dir, run: &run, measurements: &ms, plots: &[], warnings: &[] }).unwrap();
    assert!(md.contains("No overhead ratios: this run did not measure `native`") && md.contains("--env native,"), "{md}");
}

/// Results folders written before run.json had a type (schema 1, by the
/// `isobench` binary of that time: a run with every section, a run with a
/// skipped vm and `--pin split`, and their merge), trimmed, each with the
/// report.md that binary rendered from it (plus what was added since: the
/// caveat on their hosts' unexposed governor and boost state; the verdict
/// first and the host table last, ratios with their intervals; the
/// near-native chart of run-b, whose container's env.start at 18× no longer
/// hides its near-1× bars): the typed record reads
/// them and the report comes out the same, byte for byte.
#[test]
fn results_folders_from_before_the_typed_record_render_as_they_did() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/schema1");
    for name in ["run-a", "run-b", "merged"] {
        let src = fixtures.join(name);
        let d = tempfile::tempdir().unwrap();
        copy_dir(&src, d.path());
        let dir = RunDir { path: d.path().to_path_buf() };
        let md = std::fs::read_to_string(isobench_harness::report::render(&dir).unwrap()).unwrap();
        let want = std::fs::read_to_string(src.join("report.md")).unwrap();
        assert!(md == want, "{name}: report.md differs from the one rendered before:\n{}", first_difference(&want, &md));

        // The record holds everything the file held (an explicit null aside).
        let raw: serde_json::Value = serde_json::from_slice(&std::fs::read(src.join("run.json")).unwrap()).unwrap();
        let record: RunRecord = serde_json::from_value(raw.clone()).unwrap();
        assert_eq!(without_nulls(serde_json::to_value(&record).unwrap()), without_nulls(raw), "{name}: run.json lost something");
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

fn first_difference(want: &str, got: &str) -> String {
    let line = want.lines().zip(got.lines()).position(|(a, b)| a != b).unwrap_or(want.lines().count().min(got.lines().count()));
    format!("line {}:\n- {}\n+ {}", line + 1, want.lines().nth(line).unwrap_or(""), got.lines().nth(line).unwrap_or(""))
}

/// `v` without the object keys whose value is null.
fn without_nulls(v: serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(m) => m.into_iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k, without_nulls(v))).collect(),
        serde_json::Value::Array(a) => a.into_iter().map(without_nulls).collect(),
        other => other,
    }
}

/// Every chart of a run with every environment (the schema-1 run-a:
/// native, container, vm, runc, and its startup records) names in its SVG
/// text what it plots (a metric chart: the metric, first), the unit on its
/// value axis and which way is better; tick labels are 1-2-5 values with no
/// spare decimals ("0.000", "3.162" and "5.000" are not).
#[test]
fn every_chart_names_its_title_unit_and_better_direction() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/schema1/run-a");
    let d = tempfile::tempdir().unwrap();
    copy_dir(&src, d.path());
    isobench_harness::report::render(&RunDir { path: d.path().to_path_buf() }).unwrap();
    let mut seen = 0;
    for e in std::fs::read_dir(d.path().join("plots")).unwrap().flatten() {
        let path = e.path();
        if path.extension().is_none_or(|x| x != "svg") {
            continue;
        }
        seen += 1;
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        let texts = svg_texts(&std::fs::read_to_string(&path).unwrap());
        let title = texts.first().cloned().unwrap_or_default();
        assert!(title.len() > 20, "{stem}: no title: {texts:?}");
        assert!(texts.iter().any(|t| t.ends_with("lower is better") || t.ends_with("higher is better")), "{stem}: no better-direction: {texts:?}");
        let metric = stem.strip_suffix(".percentiles").unwrap_or(&stem);
        if let Some(m) = catalog::lookup(metric) {
            assert!(title.starts_with(&format!("{metric}: ")), "{stem}: the title names the metric first: {title}");
            let unit = m.unit.label();
            assert!(texts.iter().any(|t| t.contains(unit) && t.contains("is better")), "{stem}: the value axis names {unit}: {texts:?}");
        }
        for t in &texts {
            let n = t.trim_end_matches('×');
            if n.parse::<f64>().is_ok() {
                let digits: String = n.chars().filter(char::is_ascii_digit).collect();
                let significant = digits.trim_start_matches('0').trim_end_matches('0').len();
                assert!(significant <= 2, "{stem}: tick {t:?} is not a 1-2-5 value");
                assert!(!(n.contains('.') && n.ends_with('0')), "{stem}: tick {t:?} has spare decimals");
            }
        }
    }
    assert!(seen >= 10, "only {seen} charts drawn");
}

fn svg_texts(svg: &str) -> Vec<String> {
    svg.split("<text")
        .skip(1)
        .filter_map(|t| t.split_once('>').and_then(|(_, r)| r.split_once("</text>")).map(|(x, _)| x.trim().to_string()))
        .collect()
}

/// A full run with every environment (native, container, the vm under
/// TCG, every peer) renders as written (harness/tests/golden/report-all.md),
/// its verdict has one sentence per environment, and no cell carries two
/// markers (`*`, `≈`, `‡`): one significance marker per cell.
#[test]
fn a_full_run_with_every_environment_reads_as_written_with_one_marker_per_cell() {
    let envs = [
        ("native", "native", 100),
        ("container", "container (default)", 101),
        ("vm", "vm (emulated (TCG))", 400),
        ("runc", "runc (default)", 103),
        ("crun", "crun (default, cgroups disabled)", 160),
        ("bwrap", "bwrap", 100),
        ("unshare", "unshare", 99),
        ("runsc", "runsc (ptrace, default)", 2_000),
    ];
    let mut environments = serde_json::Map::new();
    for (env, label, _) in envs {
        let start_ms = if env == "vm" { 4700.0 } else { 2.5 };
        environments.insert(env.into(), serde_json::json!({ "label": label, "start_ms": start_ms }));
    }
    let run: RunRecord = serde_json::from_value(serde_json::json!({
        "schema": 1,
        "started_utc": "2026-12-07T00:00:00Z",
        "host": { "hostname": "golden", "cpu_model": "Test CPU", "cpus": 2, "kernel": "6.1.0-test", "cgroup_mode": "hybrid",
                  "governor": "performance", "clocksource": "tsc", "load_avg_1m": 0.1, "isobench_revision": "abc123" },
        "parameters": { "driver": "isobench run", "quick": false },
        "environments": environments
    }))
    .unwrap();
    let mut ms = Vec::new();
    for (env, label, scale) in envs {
        ms.push(measurement(env, label, "syscall.getpid", scale * 1_000));
        ms.push(measurement(env, label, "ipc.pipe_rtt", 10_000 * scale / 100));
        ms.push(measurement(env, label, "spawn.fork_exit", 100_000 * scale / 100));
    }
    let d = tempfile::tempdir().unwrap();
    let dir = RunDir::at(d.path()).unwrap();
    let md = section::markdown(&Context { dir: &dir, run: &run, measurements: &ms, plots: &[], warnings: &[] }).unwrap();
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/report-all.md");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden, &md).unwrap();
    }
    assert_eq!(md, std::fs::read_to_string(&golden).unwrap(), "report-all.md changed; if deliberate, UPDATE_GOLDEN=1 and review");
    let verdict = &md[md.find("## Verdict").unwrap()..md.find("## Summary").unwrap_or(md.len())];
    for (env, label, _) in envs.iter().skip(1) {
        assert!(verdict.contains(&format!("**{label}**")), "no sentence for {env}:\n{verdict}");
    }
    assert!(!md.contains("do not quote"), "a full run is not a smoke run");
    let summary = &md[md.find("## Summary").unwrap()..];
    let table = summary.lines().filter(|l| l.starts_with("| ") && !l.starts_with("| metric"));
    for row in table {
        for cell in row.split(" | ") {
            let marks = ["*", "≈", "‡"].iter().filter(|m| cell.contains(**m)).count();
            assert!(marks <= 1, "two markers in one cell: {cell:?} in {row}");
        }
    }
    // the crun column (1.6×) is significant, runc's 3 % is within this machine's noise
    let row = summary.lines().find(|l| l.starts_with("| syscall.getpid")).unwrap();
    let cells: Vec<&str> = row.split(" | ").collect();
    assert!(cells[5].contains("(1.03× ±") && cells[5].ends_with('≈'), "runc: {row}");
    assert!(cells[6].contains("(1.60× ±") && cells[6].ends_with('*'), "crun: {row}");
}

/// The application section's charts from constructed app measurements
/// (native and a container, a closed and an open loop of redis GET): the
/// throughput bars read higher-is-better with each environment's ratio to
/// native beside its bar; the latency curves read lower-is-better with a
/// corrected and an uncorrected line per environment; both are in the
/// section, on the project's tick conventions.
#[test]
fn the_application_charts_show_throughput_against_native_and_both_latency_curves() {
    use isobench_workloads::app::load::{LoadMode, LoadReport};
    let d = tempfile::tempdir().unwrap();
    let run = RunDir::at(d.path()).unwrap();
    for (env, rate, lat_us) in [("native", 300_000.0, 50u64), ("container", 210_000.0, 70)] {
        let closed = catalog::lookup("app.redis.get").unwrap();
        let mut m = Measurement::new(env, env, closed);
        for i in 0..100u64 {
            // ns per request of one window, around 1e9 / rate
            m.histogram.record((1e9 / rate) as u64 + i % 5).unwrap();
        }
        m.iterations = 1_000_000;
        m.load = Some(LoadReport {
            mode: LoadMode::Closed,
            connections: 4,
            depth: 16,
            offered_per_s: None,
            achieved_per_s: rate,
            service_histogram: None,
            late_sends: None,
            rate_basis: None,
            clipped: None,
        });
        run.save(&m).unwrap();
        let open = catalog::lookup("app.redis.get.latency").unwrap();
        let mut m = Measurement::new(env, env, open);
        let mut service = isobench_workloads::hist::new_ns();
        for i in 0..2_000u64 {
            m.histogram.record(lat_us * 1_000 + i * 100).unwrap();
            service.record(lat_us * 800 + i * 10).unwrap();
        }
        m.iterations = 2_000;
        m.load = Some(LoadReport {
            mode: LoadMode::Open,
            connections: 4,
            depth: 1,
            offered_per_s: Some(rate / 20.0),
            achieved_per_s: rate / 20.0,
            service_histogram: Some(isobench_workloads::hist::encode(&service).unwrap()),
            late_sends: Some(0),
            rate_basis: None,
            clipped: None,
        });
        run.save(&m).unwrap();
    }
    isobench_harness::report::render(&run).unwrap();
    let texts = |stem: &str| svg_texts(&std::fs::read_to_string(d.path().join(format!("plots/{stem}.svg"))).unwrap());
    let bars = texts("apps-app.redis.get");
    assert!(bars[0].starts_with("app.redis.get: requests per second"), "{bars:?}");
    assert!(bars.iter().any(|t| t == "requests per second — higher is better"), "{bars:?}");
    assert!(bars.iter().any(|t| t == "210000 req/s · 0.70× native"), "the container's bar names its ratio: {bars:?}");
    assert!(bars.iter().any(|t| t == "300000 req/s"), "native's bar is the baseline: {bars:?}");
    let curves = texts("apps-app.redis.get.latency");
    assert!(curves.iter().any(|t| t == "µs per request (log scale) — lower is better"), "{curves:?}");
    for env in ["native", "container"] {
        for line in ["corrected", "uncorrected"] {
            assert!(curves.iter().any(|t| *t == format!("{env} — {line}")), "{env} {line}: {curves:?}");
        }
    }
    for t in bars.iter().chain(&curves) {
        if let Ok(v) = t.parse::<f64>() {
            let digits: String = t.chars().filter(char::is_ascii_digit).collect();
            assert!(digits.trim_start_matches('0').trim_end_matches('0').len() <= 2 && v >= 0.0, "tick {t:?} is not a 1-2-5 value");
        }
    }
    let md = std::fs::read_to_string(d.path().join("report.md")).unwrap();
    let section = &md[md.find("## Applications").expect("the section")..];
    assert!(section.contains("![apps-app.redis.get](plots/apps-app.redis.get.svg)"), "{section}");
    assert!(section.contains("![apps-app.redis.get.latency](plots/apps-app.redis.get.latency.svg)"), "{section}");
}

/// A runsc loop whose own clock was refused and the host timed instead
/// (`environments.runsc.host_timed`): its row says so in the metric's
/// section and the storage section, gives a mean and no percentile, is
/// compared with native's loop mean, and the caveats give the reason.
#[test]
fn a_host_timed_runsc_loop_is_a_mean_on_its_own_row_named_as_such() {
    let refused = "the sandbox's clock advanced 320.3 ms while the host's advanced 1031.2 ms over the same timed loop, so its timing of this operation would be wrong";
    let path = "volume (host directory bind-mounted, served by gVisor's gofer), 9p";
    let run: RunRecord = serde_json::from_value(serde_json::json!({
        "schema": 1,
        "parameters": { "driver": "isobench run" },
        "environments": {
            "native": { "label": "native", "storage": { "kind": "host_directory", "agent_dir": "/d/native", "fs": "ext4" } },
            "runsc": { "label": "runsc (ptrace, default)",
                       "storage": { "kind": "gofer_volume", "agent_dir": "/mnt", "fs": "9p",
                                    "io": { "fs.seq_read_bw": { "dir": "/mnt/x", "fs": "9p", "direct": true, "moved_bytes": 1, "file_bytes": 1,
                                                                "verified_bytes": 1, "checksum": 0 } } },
                       "host_timed": { "fs.rand_read": { "operations": 20000, "host_loop_ns": 1_031_200_000u64, "env_loop_ns": 320_300_000u64,
                                                         "refused": refused, "storage": path },
                                       "ipc.pipe_rtt": { "operations": 1000, "host_loop_ns": 150_000_000u64, "env_loop_ns": 110_000_000u64,
                                                         "refused": refused,
                                                         // A second CPU busy outside the run throughout.
                                                         "interference": { "wall_ns": 150_000_000u64, "cpus": 2, "machine_busy_ns": 300_000_000u64,
                                                                           "tree_ns": 150_000_000i64, "steal_ns": 0, "quantization_ns": 1_000_000u64,
                                                                           "tree_processes": 2, "tick_ns": 10_000_000u64 } } } }
        }
    }))
    .expect("run.json with a host-timed loop reads");
    // Native: a 40 µs loop mean.
    let mut native = measurement("native", "native", "fs.rand_read", 40_000);
    native.storage = Some("host directory, ext4".into());
    // runsc's column exists by metrics its clock kept; one of them O_DIRECT
    // through the gofer, which drops it.
    let ms = vec![
        native,
        measurement("native", "native", "fs.stat", 2_500),
        measurement("runsc", "runsc (ptrace, default)", "fs.stat", 90_000),
        measurement("native", "native", "fs.seq_read_bw", 2_000_000),
        measurement("runsc", "runsc (ptrace, default)", "fs.seq_read_bw", 200_000),
        measurement("native", "native", "ipc.pipe_rtt", 10_000),
    ];
    let d = tempfile::tempdir().unwrap();
    let dir = RunDir::at(d.path()).unwrap();
    let md = section::markdown(&Context { dir: &dir, run: &run, measurements: &ms, plots: &[], warnings: &[] }).unwrap();
    // 1031.2 ms ÷ 20000 = 51.56 µs, 1.29× native's 40 µs mean.
    let row = "| runsc (ptrace, default) · timed by the host | 20000 ops | mean 51.56 | – | – | – | 1.29×, +28.9 % (means; native's 40.00) | – |";
    assert!(md.contains(row), "no {row:?} in:\n{md}");
    let storage = format!("| runsc (ptrace, default) · timed by the host | {path} | `fs.rand_read` | 19395 IOPS | mean 51.56 µs | – | – |");
    assert!(md.contains(&storage), "no {storage:?} in:\n{md}");
    assert!(
        md.contains(&format!("runsc: fs.rand_read: timed by the host (a mean per operation over 20000 operations, no percentiles): {refused}")),
        "{md}"
    );
    // The summary's cell: the mean, its ratio of means, and what it is.
    assert!(md.contains("| fs.rand_read | µs | 40.00 | host-timed mean 51.56 (1.29×, +28.9 %) |"), "{md}");
    assert!(md.contains("A *host-timed mean* stands where"), "{md}");
    // The verdict's fs figure for runsc does not pass for all of fs.
    let verdict = md.split("## Verdict").nth(1).unwrap().split("\n## ").next().unwrap();
    assert!(verdict.contains("runsc (ptrace, default)'s fs figure stands on 2 of the 3 fs metrics its baseline measured"), "{verdict}");
    assert!(verdict.contains("see Summary and Caveats): fs.rand_read."), "{verdict}");
    assert!(verdict.contains("runsc (ptrace, default) has no ipc figure: its ipc loops were timed by the host"), "{verdict}");
    // A host-timed loop under interference is marked as a measurement is.
    assert!(md.contains("| ipc.pipe_rtt | µs | 9.999 | host-timed mean 150.0 ⚠ (15.00×"), "{md}");
    assert!(md.contains("| runsc (ptrace, default) · timed by the host ⚠ | 1000 ops |"), "{md}");
    assert!(
        md.contains("runsc: ipc.pipe_rtt: timed by the host (a mean per operation over 1000 operations, no percentiles; under interference ⚠)"),
        "{md}"
    );
    assert!(md.contains("| runsc (ptrace, default) · timed by the host | 20000 ops |"), "not the quiet one: {md}");
    assert!(verdict.contains("passed to the host without O_DIRECT, so the host's page cache served them where its baseline's went to the host's file system with O_DIRECT: fs.seq_read_bw."), "{verdict}");
    // Neither a percentile of the sandbox's clock nor a "not supported".
    let rand_read = md.split("## fs.rand_read").nth(1).unwrap().split("\n## ").next().unwrap();
    assert!(!rand_read.contains("| runsc (ptrace, default) |") && !md.contains("not supported under runsc"), "{md}");

    // Merged (`isobench merge`): the input's record keeps it, under its column's name.
    let merged: RunRecord = serde_json::from_value(serde_json::json!({
        "schema": 1,
        "merged_from": [{ "name": "a", "dir": "/r/a", "environments": run.environments }]
    }))
    .unwrap();
    let ms: Vec<Measurement> = ms
        .into_iter()
        .map(|mut m| {
            m.env = format!("{}@a", m.env);
            m.env_label = format!("{} @ a", m.env_label);
            m
        })
        .collect();
    let md = section::markdown(&Context { dir: &dir, run: &merged, measurements: &ms, plots: &[], warnings: &[] }).unwrap();
    assert!(md.contains("| runsc (ptrace, default) @ a · timed by the host | 20000 ops | mean 51.56 |"), "{md}");
    assert!(md.contains("| fs.rand_read | µs | 40.00 | host-timed mean 51.56 (1.29×, +28.9 %) |"), "{md}");
    assert!(md.contains("runsc@a: fs.rand_read: timed by the host"), "{md}");
    assert!(md.contains(&format!("| runsc (ptrace, default) @ a · timed by the host | {path} | `fs.rand_read` | 19395 IOPS |")), "{md}");
    assert!(
        md.contains("- **runsc (ptrace, default) @ a**: volume (host directory bind-mounted, served by gVisor's gofer), 9p — the agent's `/mnt`"),
        "{md}"
    );
}

/// A loop timed by the host is no histogram, so no summary.csv row: it is a
/// row of host_timed.csv, with its mean, both clocks and its ratio of means
/// against native's loop; the file goes once no such loop is left.
#[test]
fn a_host_timed_loop_is_a_row_of_host_timed_csv_and_not_of_summary_csv() {
    let mut run: RunRecord = serde_json::from_value(serde_json::json!({
        "schema": 1,
        "parameters": { "driver": "isobench run" },
        "environments": {
            "native": { "label": "native" },
            "runsc": { "label": "runsc (ptrace, default)",
                       "host_timed": { "fs.rand_read": { "operations": 20000, "host_loop_ns": 1_031_200_000u64, "env_loop_ns": 320_300_000u64,
                                                         "refused": "slow clock", "storage": "volume, 9p", "run_id": "r1" } } }
        }
    }))
    .unwrap();
    let d = tempfile::tempdir().unwrap();
    let dir = RunDir::at(d.path()).unwrap();
    dir.write_json("run.json", &run).unwrap();
    dir.save(&measurement("native", "native", "fs.rand_read", 40_000)).unwrap();
    dir.save(&measurement("native", "native", "fs.stat", 2_500)).unwrap();
    dir.save(&measurement("runsc", "runsc (ptrace, default)", "fs.stat", 90_000)).unwrap();
    let md = std::fs::read_to_string(isobench_harness::report::render(&dir).unwrap()).unwrap();
    // The overhead chart draws p50 ratios: it names what it leaves out, and
    // the files line names the file.
    let glance = md.split("## Overhead at a glance").nth(1).expect("the overhead chart").split("\n## ").next().unwrap();
    assert!(glance.contains("Not drawn: the loops timed by the host") && glance.contains("runsc (ptrace, default): fs.rand_read."), "{glance}");
    assert!(md.contains("Files: summary.csv, summary.json, host_timed.csv (the loops timed by the host), histograms/"), "{md}");
    let summary = std::fs::read_to_string(d.path().join("summary.csv")).unwrap();
    assert!(!summary.lines().any(|l| l.starts_with("runsc,") && l.contains("fs.rand_read")), "{summary}");
    let rows: Vec<std::collections::HashMap<String, String>> =
        csv::Reader::from_path(d.path().join("host_timed.csv")).unwrap().deserialize().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 1, "{rows:?}");
    let r = &rows[0];
    // 1031.2 ms ÷ 20000 = 51.56 µs; gVisor's clock saw 0.31 of the loop;
    // 1.289× native's 40 µs loop mean.
    for (k, v) in [
        ("env", "runsc"),
        ("env_label", "runsc (ptrace, default)"),
        ("metric", "fs.rand_read"),
        ("unit", "µs"),
        ("operations", "20000"),
        ("mean", "51.5600"),
        ("host_loop_ns", "1031200000"),
        ("env_loop_ns", "320300000"),
        ("clock_share", "0.3106"),
        ("baseline", "native"),
        ("baseline_mean", "40.0000"),
        ("mean_overhead", "1.2890"),
        ("storage", "volume, 9p"),
        ("run_id", "r1"),
    ] {
        assert_eq!(r[k], v, "{k} in {r:?}");
    }
    // A later measurement of it replaces the record: the file goes.
    run.environments.get_mut("runsc").unwrap().host_timed.clear();
    dir.write_json("run.json", &run).unwrap();
    let md = std::fs::read_to_string(isobench_harness::report::render(&dir).unwrap()).unwrap();
    assert!(!d.path().join("host_timed.csv").exists());
    assert!(!md.contains("host_timed.csv") && !md.contains("Not drawn"), "{md}");
}
