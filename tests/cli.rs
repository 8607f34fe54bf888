//! The `isobench` command line as a user meets it: bad input gets one clear
//! line and a non-zero exit; `run` writes a results folder whose files hold a
//! row per environment × metric; Ctrl-C keeps what was measured.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use isobench_testkit::{trial, Need::*};

fn main() {
    isobench_testkit::run(vec![
        trial!(unknown_environment_is_one_line_and_exit_2),
        trial!(unknown_metric_names_the_known_ones),
        trial!(a_bad_pinning_mode_is_one_line),
        trial!(pin_split_is_recorded_in_run_json_with_a_measured_row),
        trial!(report_of_a_folder_that_is_not_a_run_fails_clearly),
        trial!(list_names_every_metric_with_unit_and_method),
        trial!(run_writes_a_report_with_a_row_per_env_and_metric),
        trial!(ctrl_c_stops_after_the_current_measurement_and_keeps_results),
        trial!(sigterm_stops_the_run_with_143_and_the_caveat_names_it),
        trial!(sigint_during_an_app_metric_leaves_no_server).needs(&[AppServers]),
        trial!(startup_out_records_the_host_facts_and_the_report_shows_them),
        trial!(a_full_file_system_leaves_no_temporary_and_the_error_names_the_file).needs(&[Root]),
        trial!(compare_gates_on_a_significant_regression),
        trial!(merge_names_columns_by_run_and_keeps_each_runs_baseline),
        trial!(quiet_json_run_prints_only_the_summary_rows),
        trial!(exec_leaves_sigint_and_sigquit_to_the_command).needs(&[Root, Busybox]),
        trial!(an_unknown_family_lists_the_families_and_control_is_one),
        trial!(bad_option_values_are_refused_by_the_parser_in_one_line),
        trial!(a_data_dir_that_is_no_directory_is_one_line_and_makes_no_results_folder),
        trial!(help_lists_the_variables_and_the_choices_of_the_types),
        trial!(an_isobench_variable_takes_effect_and_the_option_wins),
        trial!(the_readme_table_lists_every_isobench_variable_and_no_other),
        trial!(a_run_beside_a_cpu_hog_is_flagged_and_a_quiet_one_is_not),
        trial!(two_runs_at_the_same_time_name_each_other_in_their_reports),
        trial!(runs_into_one_folder_cannot_be_mixed_up),
        trial!(a_run_without_native_gets_it_for_its_ratios).needs(&[Root]),
        trial!(every_json_output_validates_against_its_schema).needs(&[Root]),
        trial!(bad_input_to_the_json_and_schema_options_is_one_line),
        trial!(the_readmes_container_start_figures_are_dated_and_tied_to_their_host),
    ]);
}

fn isobench() -> Command {
    Command::new(env!("CARGO_BIN_EXE_isobench"))
}

fn run(args: &[&str]) -> Output {
    isobench().args(args).output().expect("isobench runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The text elements of an SVG, trimmed.
fn svg_texts(svg: &str) -> Vec<String> {
    svg.split("<text")
        .skip(1)
        .filter_map(|t| t.split_once('>').and_then(|(_, rest)| rest.split_once("</text>")).map(|(x, _)| x.trim().to_string()))
        .collect()
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

fn unknown_environment_is_one_line_and_exit_2() {
    let o = run(&["run", "--env", "native,kvmx", "--quick", "--out", "/nonexistent/never-created"]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert_eq!(e.trim().lines().count(), 1, "{e}");
    assert!(e.contains("unknown environment \"kvmx\"") && e.contains("native, container, vm"), "{e}");
    assert!(!Path::new("/nonexistent/never-created").exists());
}

fn unknown_metric_names_the_known_ones() {
    let o = run(&["run", "--env", "native", "--metric", "syscall.getpidd"]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert_eq!(e.trim().lines().count(), 1, "{e}");
    assert!(e.contains("unknown metric \"syscall.getpidd\"") && e.contains("syscall.getpid,"), "{e}");
}

fn a_bad_pinning_mode_is_one_line() {
    let o = run(&["run", "--env", "native", "--metric", "ipc.pipe_rtt", "--pin", "bogus", "--out", "/nonexistent/never-created"]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert_eq!(e.trim().lines().count(), 1, "{e}");
    assert!(e.contains("unknown pinning mode \"bogus\"") && e.contains("same") && e.contains("split") && e.contains("none"), "{e}");
}

fn pin_split_is_recorded_in_run_json_with_a_measured_row() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("run");
    let o = run(&["run", "--pin", "split", "--env", "native", "--metric", "ipc.pipe_rtt", "--quick", "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let run: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(run["parameters"]["pin"], "split");
    let pin = &run["environments"]["native"]["pinning"]["ipc.pipe_rtt"];
    assert_eq!(pin["requested"], "split", "{run}");
    let cpus: Vec<u64> = pin["cpus"].as_array().unwrap().iter().map(|c| c.as_u64().unwrap()).collect();
    let allowed = std::fs::read_to_string("/proc/self/status").unwrap();
    let one_cpu = allowed.lines().any(|l| l.starts_with("Cpus_allowed_list:") && !l.contains(['-', ',']));
    if one_cpu {
        assert_eq!((pin["applied"].as_str(), cpus.len()), (Some("same"), 1), "{pin}");
        assert!(std::fs::read_to_string(out.join("report.md")).unwrap().contains("--pin split could not be applied to ipc.pipe_rtt"));
    } else {
        assert_eq!(pin["applied"], "split", "{pin}");
        assert!(cpus.len() == 2 && cpus[0] != cpus[1], "{pin}");
    }
    let csv = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    let row: Vec<&str> = csv.lines().find(|l| l.starts_with("native,") && l.contains(",ipc.pipe_rtt,")).expect("a native row").split(',').collect();
    assert!(row[6].parse::<f64>().unwrap() > 0.0, "{row:?}");
    assert!(std::fs::read_to_string(out.join("report.md")).unwrap().contains("| CPU pinning (`ipc.*`, `net.*`) | split:"));
}

fn report_of_a_folder_that_is_not_a_run_fails_clearly() {
    let d = tempfile::tempdir().unwrap();
    let o = run(&["report", d.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("is not an isobench results folder"), "{}", stderr(&o));
}

fn list_names_every_metric_with_unit_and_method() {
    let o = run(&["list"]);
    assert!(o.status.success());
    let out = String::from_utf8_lossy(&o.stdout);
    for m in isobench_workloads::catalog::CATALOG {
        let line = out.lines().find(|l| l.trim_start().starts_with(m.name)).unwrap_or_else(|| panic!("{} missing:\n{out}", m.name));
        assert!(line.contains(m.unit.label()), "{line}");
    }
    assert!(out.contains("lmbench lat_pipe"));
}

fn run_writes_a_report_with_a_row_per_env_and_metric() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("run");
    let envs = if is_root() { "native,container" } else { "native" };
    let child = isobench()
        .args(["run", "--env", envs, "--metric", "syscall.getpid,ipc.pipe_rtt", "--quick", "--out", out.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    // Nothing the run created outlives it: no temp dir named after its pid.
    let prefix = format!("isobench-{pid}-");
    let left: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    assert!(!std::fs::read_to_string("/proc/self/mountinfo").unwrap().contains(&prefix));
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), out.join("report.md").to_str().unwrap());
    let envs: Vec<&str> = envs.split(',').collect();

    let csv = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    let mut lines = csv.lines();
    assert!(lines.next().unwrap().starts_with("env,env_label,metric,unit,n,min,p50,p90,p99,p99_9,max,mean,stdev"));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), envs.len() * 2, "{csv}");
    for env in &envs {
        for metric in ["syscall.getpid", "ipc.pipe_rtt"] {
            let row = rows.iter().find(|r| r[0] == *env && r[2] == metric).unwrap_or_else(|| panic!("no {env} × {metric} row:\n{csv}"));
            let p50: f64 = row[6].parse().unwrap();
            assert!(p50 > 0.0, "{row:?}");
        }
    }

    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("## syscall.getpid") && report.contains("## ipc.pipe_rtt"), "{report}");
    assert!(report.contains("| native | ") && report.contains("baseline"));
    if envs.contains(&"container") {
        // The container's column names its security profile (`default` unless told).
        assert!(
            report.lines().any(|l| (l.starts_with("| container (default) | ") || l.starts_with("| container (default) ⚠ | ")) && l.contains('×')),
            "{report}"
        );
    }
    for metric in ["syscall.getpid", "ipc.pipe_rtt"] {
        let svg = std::fs::read_to_string(out.join(format!("plots/{metric}.svg"))).unwrap();
        let texts = svg_texts(&svg);
        assert!(texts.iter().any(|t| t.starts_with(metric)), "{metric}.svg has no title: {texts:?}");
        for env in &envs {
            let label = if *env == "container" { "container (default)" } else { env };
            assert!(texts.iter().any(|t| t == label), "{metric}.svg has no bar labelled {label}: {texts:?}");
        }
        assert!(std::fs::metadata(out.join(format!("plots/{metric}.png"))).unwrap().len() > 1000);
        assert!(out.join(format!("histograms/native.{metric}.hdr")).is_file());
    }
    let run: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(run["schema"], 1);
    assert!(run["host"]["cpus"].as_u64().unwrap() >= 1);
    assert!(run["environments"]["native"]["start_ms"].as_f64().unwrap() > 0.0);
}

fn ctrl_c_stops_after_the_current_measurement_and_keeps_results() {
    let report = interrupted_by(nix::sys::signal::SIGINT, 130);
    assert!(report.contains("the run was interrupted by SIGINT (Ctrl-C)"), "{report}");
}

/// The trial's input: SIGINT to `isobench run` while redis serves its first
/// app metric (the server seen in its pid-stamped directory of a private
/// TMPDIR): exit 130, that measurement kept, the second never started, and
/// no server process, directory or other temp entry of the run left.
fn sigint_during_an_app_metric_leaves_no_server() {
    let d = tempfile::tempdir().unwrap();
    let (tmp, out) = (d.path().join("tmp"), d.path().join("run"));
    std::fs::create_dir(&tmp).unwrap();
    let child = isobench()
        .args(["run", "--env", "native", "--metric", "app.redis.get,app.redis.set", "--iterations", "1000000000", "--max-ms", "3000", "--out"])
        .arg(&out)
        .env("TMPDIR", &tmp)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let dir = tmp.join(format!("isobench-{}-app-redis", child.id()));
    let pgid_file = dir.join("server.pgid");
    let t0 = std::time::Instant::now();
    let pgid = loop {
        if let Some(p) = std::fs::read_to_string(&pgid_file).ok().and_then(|s| s.trim().parse::<i32>().ok()) {
            break p;
        }
        assert!(t0.elapsed() < Duration::from_secs(60), "redis never started in {}", dir.display());
        std::thread::sleep(Duration::from_millis(10));
    };
    let group = |pgid: i32| nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pgid), None).is_ok();
    assert!(group(pgid), "redis-server runs while the metric does");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::SIGINT).unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    assert!(!group(pgid), "no process of the server's group is left");
    let left: Vec<_> = std::fs::read_dir(&tmp).unwrap().flatten().map(|e| e.path()).collect();
    assert!(left.is_empty(), "the run left {left:?}");
    let records: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("measurements.json")).unwrap()).unwrap();
    let metrics: Vec<&str> = records.as_array().unwrap().iter().map(|m| m["metric"].as_str().unwrap()).collect();
    assert_eq!(metrics, ["app.redis.get"], "the measurement under way is kept, the next one never starts");
}

/// The trial's input: SIGTERM to `isobench run` (a service manager's stop).
fn sigterm_stops_the_run_with_143_and_the_caveat_names_it() {
    let report = interrupted_by(nix::sys::signal::SIGTERM, 143);
    assert!(report.contains("the run was interrupted by SIGTERM:") && !report.contains("Ctrl-C"), "{report}");
}

/// The trial's input: `isobench startup --out DIR` into a new folder.
fn startup_out_records_the_host_facts_and_the_report_shows_them() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("startup");
    let o = isobench().args(["startup", "--env", "exec", "--n", "2", "--out"]).arg(&out).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let run: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap();
    assert!(run["host"]["cpus"].as_u64().unwrap() >= 1, "{run}");
    assert_eq!(run["parameters"]["driver"], "isobench startup");
    let rcu = std::fs::read_to_string("/sys/kernel/rcu_expedited").ok().map(|s| s.trim() == "1");
    assert_eq!(run["host"]["rcu_expedited"].as_bool(), rcu);
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(!report.contains("host (unnamed)") && !report.contains("## Summary"), "no empty summary table: {report}");
    let hostname = nix::unistd::gethostname().unwrap().into_string().unwrap();
    assert!(report.contains(&hostname), "{report}");
    if rcu.is_some() {
        assert!(report.contains("rcu_expedited"), "{report}");
    }
}

/// The trial's input: `--out` on a tiny (100 KiB) tmpfs (mounted in a private
/// mount namespace, so the host never sees it).
fn a_full_file_system_leaves_no_temporary_and_the_error_names_the_file() {
    let d = tempfile::tempdir().unwrap();
    let script = format!(
        "mount -t tmpfs -o size=100k isobench-test {dir} && {bin} run -q --env native --metric syscall.getpid,cpu.spin --quick --out {dir}/r; \
         echo rc=$?; find {dir} -name '.tmp-*'; cat {dir}/r/measurements.json >/dev/null && echo measurements kept; grep -h 'were not drawn' {dir}/r/report.md 2>/dev/null",
        dir = d.path().display(),
        bin = env!("CARGO_BIN_EXE_isobench")
    );
    let o = Command::new("unshare").args(["-m", "--propagation", "private", "sh", "-c", &script]).output().unwrap();
    let (out, err) = (String::from_utf8_lossy(&o.stdout), stderr(&o));
    assert!(!out.contains(".tmp-"), "a temporary was left behind: {out}");
    assert!(out.contains("measurements kept"), "{out}{err}");
    // Where the space runs out varies by a few KiB: either a chart fails and
    // the report still fits (a warning in it names the chart), or the report
    // does not fit either (the error names the chart that failed first).
    let cause = "No space left on device";
    if out.contains("rc=0\n") {
        // The tmpfs is gone with its namespace: the script printed the line.
        let warning = out.lines().find(|l| l.contains("were not drawn")).unwrap_or_else(|| panic!("no chart failed at 100 KiB? {out}"));
        assert!(warning.contains(": plot ") && warning.contains("/plots/") && warning.matches(cause).count() == 1, "{warning}");
    } else {
        assert!(out.contains("rc=2\n"), "{out}{err}");
        let line = err.lines().last().unwrap_or_default();
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        assert!(line.starts_with("isobench: plot ") && line.contains("/plots/"), "the error names the chart that failed first: {line}");
        assert_eq!(line.matches(cause).count(), 1, "the cause once: {line}");
    }
}

/// Sends `signal` to a running `isobench run` during its second
/// measurement and checks the exit status, the kept results and run.json;
/// returns report.md.
fn interrupted_by(signal: nix::sys::signal::Signal, status: i32) -> String {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("run");
    // Each metric runs until its 1.5 s bound; the interrupt comes during the second.
    let child = isobench()
        .args(["run", "--env", "native", "--metric", "all", "--iterations", "1000000000", "--max-ms", "1500", "--out"])
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal).unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(status), "{}", stderr(&o));
    assert!(stderr(&o).contains(&format!("interrupted by {}", signal.as_str())), "{}", stderr(&o));
    let records: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("measurements.json")).unwrap()).unwrap();
    let n = records.as_array().unwrap().len();
    assert!((1..isobench_workloads::catalog::CATALOG.len()).contains(&n), "{n} measurements kept");
    let run: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(run["interrupted"], true);
    assert_eq!(run["interrupted_by"], signal.as_str());
    std::fs::read_to_string(out.join("report.md")).unwrap()
}

/// A results folder holding one constructed measurement per (env, metric,
/// median ns), each a tight ±1 % distribution of 1000 samples.
fn constructed_run(dir: &Path, rows: &[(&str, &str, u64)]) {
    use isobench_harness::collect::Measurement;
    let run = isobench_harness::results::RunDir::at(dir).unwrap();
    for &(env, metric, center) in rows {
        let mut m = Measurement::new(env, env, isobench_workloads::catalog::lookup(metric).unwrap());
        for i in 0..1000u64 {
            m.histogram.record(center - center / 100 + i * center / 50 / 1000).unwrap();
        }
        m.iterations = 1000;
        run.save(&m).unwrap();
    }
    isobench_harness::report::render(&run).unwrap();
}

fn compare_gates_on_a_significant_regression() {
    let d = tempfile::tempdir().unwrap();
    let (a, b) = (d.path().join("a"), d.path().join("b"));
    constructed_run(&a, &[("native", "syscall.getpid", 100_000), ("container", "syscall.getpid", 101_000), ("native", "ipc.pipe_rtt", 2_000_000)]);
    constructed_run(&b, &[("native", "syscall.getpid", 100_000), ("container", "syscall.getpid", 202_000), ("native", "ipc.pipe_rtt", 2_000_000)]);
    let o = run(&["compare", a.to_str().unwrap(), b.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "a 2× regression fails the gate: {}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let row = |env: &str, metric: &str| {
        out.lines().find(|l| l.starts_with(&format!("| {env} | {metric} |"))).unwrap_or_else(|| panic!("no {env} {metric} row:\n{out}")).to_string()
    };
    assert!(row("container", "syscall.getpid").contains("regressed"), "{out}");
    assert!(row("native", "syscall.getpid").contains("no change"), "{out}");
    assert!(row("native", "ipc.pipe_rtt").contains("no change"), "{out}");
    assert!(stderr(&o).contains("container syscall.getpid"), "{}", stderr(&o));
    // the other way round it is an improvement, and a 150 % threshold lets 2× pass
    assert_eq!(run(&["compare", b.to_str().unwrap(), a.to_str().unwrap()]).status.code(), Some(0));
    assert_eq!(run(&["compare", "--threshold", "1.5", a.to_str().unwrap(), b.to_str().unwrap()]).status.code(), Some(0));
    let bad = run(&["compare", a.to_str().unwrap(), d.path().to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("is not an isobench results folder"));
}

fn merge_names_columns_by_run_and_keeps_each_runs_baseline() {
    let d = tempfile::tempdir().unwrap();
    let (a, b, out) = (d.path().join("laptop"), d.path().join("server"), d.path().join("merged"));
    constructed_run(&a, &[("native", "syscall.getpid", 100_000), ("vm", "syscall.getpid", 400_000)]);
    constructed_run(&b, &[("native", "syscall.getpid", 50_000), ("vm", "syscall.getpid", 100_000)]);
    let o = run(&["merge", a.to_str().unwrap(), b.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let csv = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    for env in ["native@laptop", "vm@laptop", "native@server", "vm@server"] {
        assert!(csv.lines().any(|l| l.starts_with(&format!("{env},"))), "{env} missing:\n{csv}");
    }
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    // each vm is compared with its own host's native: 4× on the laptop, 2× on the server
    let line = report.lines().find(|l| l.starts_with("| syscall.getpid |")).unwrap();
    assert!(line.contains("4.00×") && line.contains("2.00×"), "{line}");
    assert!(report.contains("merged from"), "{report}");
}

fn quiet_json_run_prints_only_the_summary_rows() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("run");
    let o = run(&["run", "--env", "native", "--metric", "syscall.getpid", "--quick", "--quiet", "--json", "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).trim().is_empty(), "quiet prints nothing on success: {}", stderr(&o));
    let rows: serde_json::Value = serde_json::from_slice(&o.stdout).expect("stdout is the summary JSON");
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["env"], "native");
    assert_eq!(rows[0]["metric"], "syscall.getpid");
    assert_eq!(rows[0]["unit"], "ns");
    assert!(rows[0]["p50"].as_f64().unwrap() > 0.0);
    assert!(out.join("report.html").is_file());
}

fn exec_leaves_sigint_and_sigquit_to_the_command() {
    // isobench exec ignores them itself (as system(3) does); a ^C must still
    // reach the command: neither may be ignored inside.
    let o = run(&["exec", "--", "grep", "SigIgn", "/proc/self/status"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let mask = u64::from_str_radix(out.split_whitespace().last().unwrap(), 16).unwrap();
    assert_eq!(mask & (1 << (nix::libc::SIGINT - 1) | 1 << (nix::libc::SIGQUIT - 1)), 0, "{out}");
}

/// Runs isobench with `vars` added to its environment.
fn run_with(vars: &[(&str, &str)], args: &[&str]) -> Output {
    isobench().envs(vars.iter().copied()).args(args).output().expect("isobench runs")
}

/// Asserts `o` is a refusal: exit status 2 and one line on stderr, which it returns.
fn one_line_refusal(o: &Output) -> String {
    assert_eq!(o.status.code(), Some(2), "{}", stderr(o));
    let e = stderr(o);
    assert_eq!(e.trim().lines().count(), 1, "{e}");
    e
}

fn an_unknown_family_lists_the_families_and_control_is_one() {
    let families: Vec<&str> = isobench_workloads::catalog::Family::ALL.iter().map(|f| f.as_str()).collect();
    let e = one_line_refusal(&run(&["run", "--env", "native", "--metric", "sycall", "--out", "/nonexistent/never-created"]));
    assert!(e.contains("unknown metric family \"sycall\"") && e.contains(&families.join(", ")), "{e}");
    // every environment name is a choice of the unknown-environment line
    let e = one_line_refusal(&run(&["run", "--env", "kvmx"]));
    for k in isobench_harness::env::EnvKind::every() {
        assert!(e.contains(k.as_str()), "{e}");
    }
    let e = one_line_refusal(&run(&["run", "--env", "runsc", "--gvisor-platform", "vmx"]));
    assert!(e.contains("unknown gVisor platform \"vmx\"; choose from auto, systrap, kvm or ptrace"), "{e}");
    let e = one_line_refusal(&run(&["startup", "--env", "kata"]));
    assert!(e.contains("unknown start column \"kata\"") && e.contains(&isobench_harness::startup::Column::names()), "{e}");
    assert!(!Path::new("/nonexistent/never-created").exists());

    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("run");
    let o = run(&["run", "--env", "native", "--metric", "control", "--quick", "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let csv = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    for metric in ["cpu.spin", "mem.copy_bw"] {
        assert!(csv.lines().any(|l| l.starts_with("native,") && l.contains(&format!(",{metric},"))), "no {metric} row:\n{csv}");
    }
    // A name's first part works as a family does: `cpu` is cpu.spin.
    let o = run(&["run", "--env", "native", "--metric", "cpu", "--quick", "--force", "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let csv = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    assert_eq!(csv.lines().skip(1).map(|l| l.split(',').nth(2).unwrap().to_string()).collect::<Vec<_>>(), ["cpu.spin"], "{csv}");
}

fn a_data_dir_that_is_no_directory_is_one_line_and_makes_no_results_folder() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("run");
    for cmd in [&["--metric", "fs.stat"][..], &["--command", "true"][..]] {
        let o = isobench().args(["run", "--env", "native", "--data-dir", "/no/such/dir", "--out"]).arg(&out).args(cmd).output().unwrap();
        let e = one_line_refusal(&o);
        assert!(e.contains("/no/such/dir"), "{cmd:?}: {e}");
        assert!(!out.exists(), "{cmd:?}: a results folder was left: {:?}", std::fs::read_dir(&out).map(|r| r.count()));
    }
}

fn bad_option_values_are_refused_by_the_parser_in_one_line() {
    let cases: [(&[&str], &str); 7] = [
        (&["run", "--pin", "both"], "invalid value 'both' for '--pin <MODE>': unknown pinning mode \"both\""),
        (&["run", "--memory", "12x"], "invalid value '12x' for '--memory <SIZE>': expected bytes or a size such as 64m or 1g"),
        (&["exec", "--cpus", "0", "--", "true"], "invalid value '0' for '--cpus <N>': must be at least 0.01"),
        (&["exec", "--pids", "none", "--", "true"], "invalid value 'none' for '--pids <N>': expected a number of tasks"),
        (&["exec", "--ns", "pid,time", "--", "true"], "unknown namespace \"time\""),
        (&["run", "--vm-net", "bridge"], "invalid value 'bridge' for '--vm-net <NET>': unknown vm network \"bridge\""),
        (&["startup", "--noop", "musl"], "invalid value 'musl' for '--noop <KIND>': unknown no-op \"musl\""),
    ];
    for (args, expected) in cases {
        let e = one_line_refusal(&run(args));
        assert!(e.starts_with("error: ") && e.contains(expected), "{args:?}: {e}");
    }
}

fn help_lists_the_variables_and_the_choices_of_the_types() {
    let help = |args: &[&str]| {
        let o = run(args);
        assert!(o.status.success(), "{}", stderr(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let run_help = help(&["run", "--help"]);
    for var in ["ISOBENCH_ENVS", "ISOBENCH_PIN", "ISOBENCH_ACCEL", "ISOBENCH_MACHINE", "ISOBENCH_RUN_DIR", "ISOBENCH_GVISOR_PLATFORM"] {
        assert!(run_help.contains(&format!("[env: {var}=")), "{var} missing:\n{run_help}");
    }
    assert!(run_help.contains("[possible values: auto, systrap, kvm, ptrace]"), "{run_help}");
    for k in isobench_harness::env::EnvKind::every() {
        // each environment with its description (wrapped by clap, so its first words)
        let first_words: String = k.describe().split(' ').take(3).collect::<Vec<_>>().join(" ");
        assert!(
            run_help.lines().any(|l| l.trim_start().starts_with(&format!("- {}:", k.as_str())) && l.contains(&first_words)),
            "{k} missing:\n{run_help}"
        );
    }
    let families: Vec<&str> = isobench_workloads::catalog::Family::ALL.iter().map(|f| f.as_str()).collect();
    let prefixes = isobench_workloads::catalog::prefixes().join(", ");
    assert!(run_help.contains(&format!("[possible values: {}, {prefixes}, all]", families.join(", "))), "{run_help}");
    assert!(run_help.contains("[possible values: same, split, none]") && run_help.contains("[default: 10000]"), "{run_help}");
    assert!(help(&["--help"]).contains(&format!("Metric families: {} ", families.join(", "))));
    let startup_help = help(&["startup", "--help"]).split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(startup_help.contains(&isobench_harness::startup::Column::names()), "{startup_help}");
}

fn an_isobench_variable_takes_effect_and_the_option_wins() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("run");
    // ISOBENCH_ENVS picks the environments, ISOBENCH_RUN_DIR the folder; --pin beats ISOBENCH_PIN.
    let vars = [("ISOBENCH_ENVS", "native"), ("ISOBENCH_PIN", "split"), ("ISOBENCH_RUN_DIR", out.to_str().unwrap())];
    let o = run_with(&vars, &["run", "--metric", "syscall.getpid", "--pin", "none", "--quick"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let run: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(run["parameters"]["pin"], "none", "{run}");
    assert_eq!(run["parameters"]["envs"], serde_json::json!(["native"]), "{run}");
    let o = run_with(
        &[("ISOBENCH_PIN", "split"), ("ISOBENCH_RUN_DIR", out.to_str().unwrap())],
        &["run", "--env", "native", "--metric", "syscall.getpid", "--quick", "--force"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let run: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(run["parameters"]["pin"], "split", "{run}");
    // a bad value in a variable is refused like the option's
    let e = one_line_refusal(&run_with(&[("ISOBENCH_ENVS", "native,kvmx")], &["run", "--out", "/nonexistent/never-created"]));
    assert!(e.contains("unknown environment \"kvmx\""), "{e}");
}

/// Every `ISOBENCH_` name in a file's text.
fn isobench_variables(text: &str) -> std::collections::BTreeSet<String> {
    let mut found = std::collections::BTreeSet::new();
    for (i, _) in text.match_indices("ISOBENCH_") {
        let name: String = text[i..].chars().take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_').collect();
        if name.len() > "ISOBENCH_".len() && !name.ends_with('_') {
            found.insert(name);
        }
    }
    found
}

fn the_readme_table_lists_every_isobench_variable_and_no_other() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    fn walk(dir: &Path, found: &mut std::collections::BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() && !matches!(path.file_name().and_then(|n| n.to_str()), Some("target" | "results")) {
                walk(&path, found);
            } else if let Ok(text) = std::fs::read_to_string(&path) {
                found.extend(isobench_variables(&text));
            }
        }
    }
    let mut in_code = std::collections::BTreeSet::new();
    for dir in ["harness", "src", "benches", "workloads", "scripts", "tests", ".ci"] {
        walk(&root.join(dir), &mut in_code);
    }
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let section = readme.split("### Environment variables").nth(1).expect("a variables section").split("\n## ").next().unwrap();
    let in_table: std::collections::BTreeSet<String> =
        section.lines().filter(|l| l.starts_with("| `ISOBENCH_")).flat_map(|l| isobench_variables(l.split(" | ").next().unwrap())).collect();
    let missing: Vec<_> = in_code.difference(&in_table).collect();
    let stale: Vec<_> = in_table.difference(&in_code).collect();
    assert!(missing.is_empty() && stale.is_empty(), "README's variable table lacks {missing:?}; lists {stale:?}, which nothing reads");
}

/// `/proc/stat`'s busy ticks (user + nice + system + irq + softirq) over all CPUs.
fn machine_busy_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap();
    let f: Vec<u64> = stat.lines().next().unwrap().split_whitespace().skip(1).map(|v| v.parse().unwrap()).collect();
    f[0] + f[1] + f[2] + f[5] + f[6]
}

fn json_file(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

/// A native run of `metrics`, each measurement spinning until its 1.5 s
/// bound, into `out`; the run's output.
fn long_native_run(metrics: &str, out: &Path) -> Output {
    run(&["run", "--env", "native", "--metric", metrics, "--iterations", "1000000000", "--max-ms", "1500", "--out", out.to_str().unwrap()])
}

fn a_run_beside_a_cpu_hog_is_flagged_and_a_quiet_one_is_not() {
    let d = tempfile::tempdir().unwrap();
    // Quiet: cpu.spin keeps one CPU busy inside the run's own tree (the
    // agent); that must not count as interference. Asserted only when the
    // machine had nothing else to do (a shared machine seldom is quiet).
    let quiet = d.path().join("quiet");
    let (busy0, t0) = (machine_busy_ticks(), std::time::Instant::now());
    let o = long_native_run("cpu.spin", &quiet);
    let machine_cpus = (machine_busy_ticks() - busy0) as f64 / 100.0 / t0.elapsed().as_secs_f64();
    assert!(o.status.success(), "{}", stderr(&o));
    let rec = &json_file(&quiet.join("measurements.json"))[0]["interference"];
    let own = rec["tree_ns"].as_f64().unwrap() / rec["wall_ns"].as_f64().unwrap();
    assert!(own > 0.5, "the spinning agent is the run's own: {rec}");
    if machine_cpus < own + 0.05 {
        let outside =
            |i: &serde_json::Value| (i["machine_busy_ns"].as_f64().unwrap() - i["tree_ns"].as_f64().unwrap()) / i["wall_ns"].as_f64().unwrap();
        let rounding = rec["quantization_ns"].as_f64().unwrap() / rec["wall_ns"].as_f64().unwrap();
        assert!(outside(rec) - rounding <= 0.10, "a quiet run is not busy: {rec}");
    } else {
        eprintln!("quiet half not asserted: the machine was busy ({machine_cpus:.2} CPUs while the run used {own:.2})");
    }

    // Beside a busy loop that is not in isobench's tree (a sibling: a child of this test).
    let mut hog = Command::new("sh").args(["-c", "while :; do :; done"]).spawn().unwrap();
    let busy = d.path().join("busy");
    let o = long_native_run("cpu.spin,syscall.getpid", &busy);
    hog.kill().unwrap();
    hog.wait().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let records = json_file(&busy.join("measurements.json"));
    for r in records.as_array().unwrap() {
        let i = &r["interference"];
        let (wall, busy_ns, tree, q) = (
            i["wall_ns"].as_f64().unwrap(),
            i["machine_busy_ns"].as_f64().unwrap(),
            i["tree_ns"].as_f64().unwrap(),
            i["quantization_ns"].as_f64().unwrap(),
        );
        let outside = (busy_ns - tree) / wall;
        assert!(outside - q / wall > 0.10, "the hog is outside the run: {outside:.2} CPUs, rounding {:.2}: {i}", q / wall);
    }
    let csv = std::fs::read_to_string(busy.join("summary.csv")).unwrap();
    assert!(csv.lines().skip(1).all(|l| l.ends_with(",true")), "{csv}");
    let report = std::fs::read_to_string(busy.join("report.md")).unwrap();
    let caveats = report.split("**Caveats**").nth(1).expect("a caveats list");
    assert!(caveats.trim_start().starts_with("- ⚠ interference: 2 of 2 measurements"), "{report}");
    assert!(report.lines().any(|l| l.starts_with("| cpu.spin |") && l.contains('⚠')), "{report}");
}

fn two_runs_at_the_same_time_name_each_other_in_their_reports() {
    let d = tempfile::tempdir().unwrap();
    let (a, b) = (d.path().join("a"), d.path().join("b"));
    let first = isobench()
        .args(["run", "--env", "native", "--metric", "cpu.spin,syscall.getpid", "--iterations", "1000000000", "--max-ms", "1500", "--out"])
        .arg(&a)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid_a = first.id();
    let registry = match is_root() {
        true => std::path::PathBuf::from("/run/isobench/runs"),
        false => match std::env::var_os("XDG_RUNTIME_DIR") {
            Some(d) => Path::new(&d).join("isobench/runs"),
            None => std::env::temp_dir().join(format!("isobench-runs-{}", nix::unistd::geteuid())),
        },
    };
    let entry = registry.join(format!("isobench-{pid_a}-run.json"));
    isobench_testkit::wait_until("the first run registered", Duration::from_secs(20), || entry.is_file());
    // B starts once A runs, and ends before A does.
    let b_run = isobench()
        .args(["run", "--env", "native", "--metric", "syscall.getpid", "--quick", "--out"])
        .arg(&b)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid_b = b_run.id();
    let o = b_run.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let o = first.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!entry.exists(), "a finished run's entry goes with it");
    let (ra, rb) = (std::fs::read_to_string(a.join("report.md")).unwrap(), std::fs::read_to_string(b.join("report.md")).unwrap());
    assert!(rb.contains(&format!("measured while isobench run (pid {pid_a}, {}) ran", a.display())), "{rb}");
    assert!(ra.contains(&format!("measured while isobench run (pid {pid_b}, {}) ran", b.display())), "{ra}");
    // A's measurements that overlapped B say so in measurements.json.
    let overlapped: Vec<bool> = json_file(&a.join("measurements.json"))
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["interference"]["concurrent_runs"].as_array().is_some_and(|c| c.iter().any(|x| x["pid"] == pid_b)))
        .collect();
    assert!(overlapped.len() == 2 && overlapped.contains(&true), "{overlapped:?}");
}

/// `isobench schema NAME` as JSON.
fn schema_of(name: &str) -> serde_json::Value {
    let o = run(&["schema", name]);
    assert!(o.status.success(), "{}", stderr(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// Asserts `instance` (`what`, for the message) fits the schema `name`.
fn assert_fits(name: &str, instance: &serde_json::Value, what: &str) {
    let schema = schema_of(name);
    let validator = jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("{name}: not a schema: {e}"));
    let errors: Vec<String> = validator.iter_errors(instance).map(|e| format!("{e} (at {})", e.instance_path())).collect();
    assert!(errors.is_empty(), "{what} does not fit {name}.schema.json: {errors:#?}");
}

fn stdout_json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}\n{}", String::from_utf8_lossy(&o.stdout), stderr(o)))
}

fn every_json_output_validates_against_its_schema() {
    let d = tempfile::tempdir().unwrap();
    let (a, b, samples) = (d.path().join("a"), d.path().join("b"), d.path().join("samples.json"));
    let o = run(&[
        "run",
        "--env",
        "native,container",
        "--metric",
        "syscall.getpid,ipc.pipe_rtt",
        "--quick",
        "--quiet",
        "--json",
        "--out",
        a.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let rows = stdout_json(&o);
    assert_fits("summary", &rows, "isobench run --json");
    // The schema has teeth: a row whose p50 is not a number does not fit.
    let mut bad = rows.clone();
    bad[0]["p50"] = "fast".into();
    assert!(!jsonschema::is_valid(&schema_of("summary"), &bad), "{bad}");
    let container = rows.as_array().unwrap().iter().find(|r| r["env"] == "container" && r["metric"] == "syscall.getpid").expect("a container row");
    let (ratio, lo, hi) = (
        container["overhead"].as_f64().unwrap(),
        container["overhead_ci95_low"].as_f64().unwrap(),
        container["overhead_ci95_high"].as_f64().unwrap(),
    );
    assert!(container["baseline"] == "native" && lo <= ratio && ratio <= hi, "{container}");

    let o =
        run(&["startup", "--n", "5", "--env", "clone+exec,isobench", "--json", "--samples", samples.to_str().unwrap(), "--out", a.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let summary = stdout_json(&o);
    assert_fits("startup-summary", &summary, "isobench startup --json");
    for c in summary["columns"].as_array().unwrap() {
        let (p50, ci) = (c["p50_ns"].as_u64().unwrap(), &c["p50_ci95_ns"]);
        assert!(ci[0].as_u64().unwrap() <= p50 && p50 <= ci[1].as_u64().unwrap() && c["p90_ns"].as_u64().unwrap() >= p50, "{c}");
    }
    let clone_exec = summary["columns"].as_array().unwrap().iter().find(|c| c["env"] == "clone+exec").unwrap();
    assert!(clone_exec["base"] == "isobench" && clone_exec["vs_base"].as_f64().unwrap() > 0.0, "{clone_exec}");
    assert_fits("startup", &json_file(&samples), "isobench startup --samples");
    assert_eq!(json_file(&samples), json_file(&a.join("startup.json")), "--samples holds what startup.json holds");

    for (file, schema) in [("run.json", "run"), ("measurements.json", "measurements"), ("summary.json", "summary"), ("startup.json", "startup")] {
        assert_fits(schema, &json_file(&a.join(file)), file);
    }

    let o = run(&["run", "--env", "native", "--metric", "syscall.getpid", "--quick", "--quiet", "--out", b.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(&["compare", a.to_str().unwrap(), b.to_str().unwrap(), "--json"]);
    assert!(matches!(o.status.code(), Some(0 | 1)), "{}", stderr(&o));
    let comparison = stdout_json(&o);
    assert_fits("compare", &comparison, "isobench compare --json");
    assert_eq!(comparison["changes"].as_array().unwrap().len(), 1, "native syscall.getpid is the one pair in both: {comparison}");
    assert_eq!(o.status.code() == Some(1), !comparison["regressions"].as_array().unwrap().is_empty());

    let o = run(&["doctor", "--json"]);
    assert!(matches!(o.status.code(), Some(0 | 1)), "{}", stderr(&o));
    let doctor = stdout_json(&o);
    assert_fits("doctor", &doctor, "isobench doctor --json");
    assert_eq!(o.status.code() == Some(0), doctor["ready"] == true);
    let o = run(&["list", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let listing = stdout_json(&o);
    assert_fits("list", &listing, "isobench list --json");
    assert_eq!(listing["metrics"].as_array().unwrap().len(), isobench_workloads::catalog::CATALOG.len());
}

fn bad_input_to_the_json_and_schema_options_is_one_line() {
    let d = tempfile::tempdir().unwrap();
    let cases: [(&[&str], &str); 9] = [
        (&["startup", "--json", "/tmp/samples.json"], "unexpected argument '/tmp/samples.json'; --json takes no value"),
        (&["startup", "--samples", "/nonexistent/dir/s.json"], "--samples /nonexistent/dir/s.json: no folder /nonexistent/dir"),
        (&["schema", "runs"], "invalid value 'runs' for '[NAME]': unknown schema \"runs\"; choose from run, measurements,"),
        (&["schema"], "name a schema (run, measurements,"),
        (&["schema", "run", "--out", "/tmp/x"], "the argument '[NAME]' cannot be used with '--out <DIR>'"),
        (&["schema", "--out", "/proc/self/isobench-none"], "writing the schemas to /proc/self/isobench-none"),
        (&["list", "--json=yes"], "unexpected value 'yes' for '--json': it takes none"),
        (&["doctor", "--json", "all"], "unexpected argument 'all'"),
        (&["compare", "--json", d.path().to_str().unwrap(), d.path().to_str().unwrap()], "is not an isobench results folder"),
    ];
    for (args, expected) in cases {
        let e = one_line_refusal(&run(args));
        assert!(e.contains(expected), "{args:?}: {e}");
    }
    assert!(!Path::new("/tmp/x").join("run.schema.json").exists());
}

/// The figures README's "Container start" quotes for issue #14's goals
/// (`isobench exec` beside unshare(1), env.start by each driver) say when and
/// where they were measured: a `measured YYYY-MM-DD on the …` line in each
/// of their subsections, which names the host's cores and kernel.
fn the_readmes_container_start_figures_are_dated_and_tied_to_their_host() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let section = readme.split("\n## Container start\n").nth(1).expect("a Container start section").split("\n## ").next().unwrap();
    for heading in ["### `isobench exec` beside unshare(1)", "### One env.start"] {
        let sub =
            section.split(heading).nth(1).unwrap_or_else(|| panic!("no {heading:?} in README's Container start")).split("\n### ").next().unwrap();
        // Wrapped lines and a sentence's capital are no different.
        let sub = sub.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase();
        let dated = sub.match_indices("measured ").any(|(i, _)| {
            let d = &sub.as_bytes()[i + "measured ".len()..];
            d.len() > 14
                && d[..10].iter().enumerate().all(|(k, b)| if k == 4 || k == 7 { *b == b'-' } else { b.is_ascii_digit() })
                && sub[i + "measured ".len() + 10..].starts_with(" on the ")
        });
        assert!(dated, "{heading}: no `measured YYYY-MM-DD on the …` line");
        assert!(sub.contains("2-core") && sub.contains("kernel 6."), "{heading}: the host is not named (cores, kernel)");
    }
}

/// `--out` on a folder that holds a run is refused unless --append or
/// --force; a folder being written is refused at once; a run killed
/// part-way leaves a folder compare and merge refuse; a truncated run.json
/// is refused by compare; a folder compared with itself has no change.
fn runs_into_one_folder_cannot_be_mixed_up() {
    let d = tempfile::tempdir().unwrap();
    let (x, y) = (d.path().join("x"), d.path().join("y"));
    let quick = |out: &Path, extra: &[&str]| {
        let mut args = vec!["run", "--env", "native", "--metric", "syscall.getpid", "--quick", "--quiet", "--out", out.to_str().unwrap()];
        args.extend_from_slice(extra);
        run(&args)
    };
    assert!(quick(&x, &[]).status.success());
    let first = json_file(&x.join("run.json"));
    let e = one_line_refusal(&quick(&x, &[]));
    assert!(e.contains("already holds a run") && e.contains("--append") && e.contains("--force"), "{e}");
    assert_eq!(json_file(&x.join("run.json")), first, "a refused run changes nothing");
    let o = quick(&x, &["--append"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let run_json = json_file(&x.join("run.json"));
    let runs = run_json["runs"].as_array().unwrap();
    assert!(runs.len() == 2 && runs[1]["appended"] == true && runs[0].get("appended").is_none(), "{run_json}");
    let rows = json_file(&x.join("measurements.json"));
    assert_eq!(rows[0]["run_id"], runs[1]["run_id"], "the appended run's measurement names it: {rows}");
    assert!(rows[0]["measured_utc"].as_str().is_some_and(|t| t.ends_with('Z')), "{rows}");
    let report = std::fs::read_to_string(x.join("report.md")).unwrap();
    assert!(report.contains("this folder holds 2 runs") && report.contains("appended with --append"), "{report}");
    assert!(quick(&x, &["--force"]).status.success());
    assert_eq!(json_file(&x.join("run.json"))["runs"].as_array().unwrap().len(), 1, "--force replaced both");
    // The folder with itself: no change.
    let o = run(&["compare", x.to_str().unwrap(), x.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let table = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(table.lines().any(|l| l.contains("syscall.getpid") && l.contains("no change")), "{table}");
    // Two smoke runs of the same thing: nothing regressed, whatever the machine did between them.
    let x2 = d.path().join("x2");
    assert!(quick(&x2, &[]).status.success());
    let o = run(&["compare", x.to_str().unwrap(), x2.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let table = String::from_utf8_lossy(&o.stdout).into_owned();
    let rows: Vec<&str> = table.lines().filter(|l| l.starts_with("| native")).collect();
    assert!(!rows.is_empty() && rows.iter().all(|r| !r.contains("regressed") && !r.contains("improved")), "{table}");
    assert!(stderr(&o).contains("smoke run"), "{}", stderr(&o));

    // A long run into y holds the folder; a second is refused at once.
    let mut long = isobench()
        .args(["run", "--env", "native", "--metric", "syscall.getpid,cpu.spin", "--iterations", "1000000000", "--max-ms", "3000", "--quiet", "--out"])
        .arg(&y)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    isobench_testkit::wait_until("the first measurement saved", Duration::from_secs(30), || y.join("measurements.json").is_file());
    let t0 = std::time::Instant::now();
    let e = one_line_refusal(&quick(&y, &["--append"]));
    assert!(e.contains("is being written by another isobench run"), "{e}");
    assert!(t0.elapsed() < Duration::from_secs(2), "refused at once, not after waiting");
    let e = one_line_refusal(&run(&["compare", x.to_str().unwrap(), y.to_str().unwrap()]));
    assert!(e.contains("is being written"), "{e}");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(long.id() as i32), nix::sys::signal::Signal::SIGKILL).unwrap();
    long.wait().unwrap();
    assert_eq!(json_file(&y.join("run.json"))["in_progress"], true);
    for args in [
        vec!["compare", x.to_str().unwrap(), y.to_str().unwrap()],
        vec!["merge", x.to_str().unwrap(), y.to_str().unwrap(), "--out", d.path().join("m").to_str().unwrap()],
    ] {
        let e = one_line_refusal(&run(&args));
        assert!(e.contains("did not finish") && e.contains("--allow-incomplete"), "{args:?}: {e}");
    }
    assert!(!d.path().join("m").exists());
    let o = run(&["compare", "--allow-incomplete", x.to_str().unwrap(), y.to_str().unwrap()]);
    assert!(matches!(o.status.code(), Some(0 | 1)), "{}", stderr(&o));
    // A truncated run.json is refused, as `report` refuses it.
    let text = std::fs::read_to_string(x.join("run.json")).unwrap();
    std::fs::write(x.join("run.json"), &text[..text.len() / 2]).unwrap();
    let e = one_line_refusal(&run(&["compare", x.to_str().unwrap(), x.to_str().unwrap()]));
    assert!(e.contains("run.json"), "{e}");
}

/// `--env container` alone: native is added (a note says so), so the
/// report has ratios.
fn a_run_without_native_gets_it_for_its_ratios() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("r");
    let o = run(&["run", "--env", "container", "--metric", "syscall.getpid", "--quick", "--quiet", "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("native added"), "{}", stderr(&o));
    assert_eq!(json_file(&out.join("run.json"))["parameters"]["envs"], serde_json::json!(["native", "container"]));
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("- **container (default)** ran syscall"), "{report}");
}
