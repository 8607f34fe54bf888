//! `isobench validate`: isobench's native figures beside independent tools
//! run in the same session, so a reader can check the method before trusting
//! the overhead ratios.
//!
//! | isobench metric | reference tool |
//! |---|---|
//! | syscall.getpid | `perf bench syscall basic` (getppid loop) |
//! | ipc.pipe_rtt | `perf bench sched pipe`, pinned to one CPU with taskset as isobench pins |
//! | net.tcp_stream | `iperf3` over loopback, 128 KiB writes, both ends pinned to one CPU |
//! | spawn.fork_exec, spawn.posix_spawn | `hyperfine -N` of the same static noop |
//! | fs.rand_read, fs.rand_write | `fio` psync, depth 1, 4 KiB, O_DIRECT: clat p50 beside isobench's p50 |
//! | fs.seq_read_bw, fs.seq_write_bw | `fio` psync, depth 1, 1 MiB, O_DIRECT: bandwidth |
//! | app.redis.get, app.redis.set | `redis-benchmark -d 64 -c 4 -P 16` (GET: `-t set,get`, so it reads the value) against the same redis configuration |
//! | app.nginx.1k, app.nginx.64k | `wrk -t 4 -c 4` against the same nginx configuration |
//!
//! The open-loop latency metrics (app.*.latency) have no row: wrk2, the
//! tool whose method they follow, is not packaged by Debian.
//!
//! fio's write jobs get `--overwrite=1`: fio lays the file out before its
//! clock and overwrites it, as isobench's fs.seq_write_bw and fs.rand_write
//! do. Without it fio fallocates the file, so its first pass converts
//! unwritten extents, which isobench's writes never do.
//!
//! The fs rows ([`storage`]) run both sides in one data directory of the
//! run's own (`storage::RunData`, as `isobench run --data-dir`), on a 32 MiB
//! file as the fs metrics use; where that file system refuses O_DIRECT the
//! rows say so and carry no figures.
//!
//! Each side runs [`ROUNDS`] times (once with `--quick`) and keeps its median
//! round; the app rows interleave the two sides' rounds and give each
//! round's ratio. Each row compares means (what the tools report; fio's latency rows
//! its clat p50 with isobench's p50) and is "within" when the
//! ratio is inside ±[`TOLERANCE`]; otherwise the note explains the method
//! difference. Missing tools are listed, never fatal. The rows are
//! [`Check`] records (validate.json); report.md's section and the table
//! printed here are the report's.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::agent::{AgentClient, AgentError};
use crate::results::validate::{Check, TOLERANCE};
use isobench_workloads::catalog;
use isobench_workloads::protocol::RunRequest;

/// `usecs/op` from `perf bench syscall basic` or `perf bench sched pipe`.
pub fn parse_perf_bench(out: &str) -> Option<f64> {
    out.lines().find_map(|l| l.trim().strip_suffix("usecs/op").and_then(|v| v.trim().parse().ok()))
}

/// Receiver-side bits per second from `iperf3 -J`.
pub fn parse_iperf3_json(json: &str) -> Option<f64> {
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    v.pointer("/end/sum_received/bits_per_second")?.as_f64()
}

/// One direction (read or write) of the first job of `fio --output-format=json`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FioFigures {
    /// Bytes per second.
    pub bw_bytes: f64,
    pub iops: f64,
    /// Completion latency (the I/O syscall itself under psync), ns.
    pub clat_p50_ns: f64,
    pub clat_mean_ns: f64,
}

/// `jobs[0].<dir>` of `fio --output-format=json`, `dir` "read" or "write".
pub fn parse_fio_json(json: &str, dir: &str) -> Option<FioFigures> {
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    let d = v.pointer("/jobs/0")?.get(dir)?;
    let f = |p: &str| d.pointer(p).and_then(serde_json::Value::as_f64);
    Some(FioFigures {
        bw_bytes: f("/bw_bytes")?,
        iops: f("/iops")?,
        clat_p50_ns: f("/clat_ns/percentile/50.000000")?,
        clat_mean_ns: f("/clat_ns/mean")?,
    })
}

/// Mean seconds of the first command in `hyperfine --export-json`.
pub fn parse_hyperfine_json(json: &str) -> Option<f64> {
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    v.pointer("/results/0/mean")?.as_f64()
}

fn have(tool: &str) -> bool {
    Command::new(tool).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok()
}

/// The CPU this process runs on now (what the agent pins to is its own).
fn cpu() -> String {
    // SAFETY: sched_getcpu has no arguments.
    let c = unsafe { libc::sched_getcpu() };
    c.max(0).to_string()
}

fn output(cmd: &mut Command) -> Result<String, String> {
    let o = cmd.stdin(Stdio::null()).output().map_err(|e| e.to_string())?;
    if o.status.success() {
        Ok(String::from_utf8_lossy(&o.stdout).into_owned())
    } else {
        Err(format!("exited with {}: {}", o.status, String::from_utf8_lossy(&o.stderr).lines().last().unwrap_or("")))
    }
}

/// isobench's native mean for `metric`, in the metric's unit.
fn isobench_mean(agent: &mut AgentClient, metric: &str, quick: bool) -> Result<f64, String> {
    isobench_native(agent, metric, quick, None, false)
}

/// isobench's native figure for `metric` in the metric's unit: the mean, or
/// the median of its histogram when `p50`; fs metrics get `data_dir`.
fn isobench_native(agent: &mut AgentClient, metric: &str, quick: bool, data_dir: Option<&Path>, p50: bool) -> Result<f64, String> {
    let spec = catalog::lookup(metric).expect("validate names catalogue metrics");
    let iterations = if quick { spec.quick_iterations } else { spec.iterations };
    let req = RunRequest {
        warmup: (iterations / 20).min(1_000),
        bytes: crate::runner::working_set(spec),
        data_dir: data_dir.map(|d| d.display().to_string()),
        ..RunRequest::new(metric, iterations, 20_000)
    };
    let r = agent.run(&req).map_err(|e: AgentError| e.to_string())?;
    if p50 {
        let h = isobench_workloads::hist::decode(&r.histogram).map_err(|e| format!("histogram: {e}"))?;
        return Ok(spec.unit.from_ns_per_op(h.value_at_quantile(0.5) as f64, r.bytes_per_op));
    }
    Ok(spec.unit.from_ns_per_op(r.elapsed_ns as f64 / r.iterations.max(1) as f64, r.bytes_per_op))
}

fn check(metric: &str, tool: String, unit: &str, tool_value: Result<f64, String>, isobench: Result<f64, String>, method: &str) -> Check {
    let (tool_value, err) = match tool_value {
        Ok(v) => (Some(v), None),
        Err(e) => (None, Some(e)),
    };
    let isobench_value = isobench.as_ref().ok().copied();
    let ratio = tool_value.zip(isobench_value).filter(|(t, _)| *t > 0.0).map(|(t, i)| i / t);
    let within = ratio.map(|r| (r - 1.0).abs() <= TOLERANCE);
    let note = match (&err, &isobench, within) {
        (Some(e), _, _) => e.clone(),
        (_, Err(e), _) => format!("isobench: {e}"),
        (_, _, Some(true)) => "agrees within ±15 %".into(),
        _ => format!("differs: {method}"),
    };
    Check { metric: metric.into(), tool, unit: unit.into(), tool_value, isobench_value, ratio, within_tolerance: within, note }
}

/// Rounds of each side in a full (not `--quick`) validation; the median is
/// kept, so one noisy round on a shared machine does not flip a verdict.
pub const ROUNDS: usize = 3;

/// The median of `rounds` results of `f` (errors only when every round failed).
fn median_of<E>(rounds: usize, mut f: impl FnMut() -> Result<f64, E>) -> Result<f64, E> {
    let mut ok = Vec::new();
    let mut last_err = None;
    for _ in 0..rounds.max(1) {
        match f() {
            Ok(v) => ok.push(v),
            Err(e) => last_err = Some(e),
        }
    }
    if ok.is_empty() {
        return Err(last_err.expect("at least one round ran"));
    }
    ok.sort_by(f64::total_cmp);
    Ok(ok[ok.len() / 2])
}

/// Runs every cross-check. `agent` is a native agent; `noop` the static
/// binary spawn metrics exec. `quick` shortens both sides.
pub fn run(agent: &mut AgentClient, noop: &Path, quick: bool) -> Vec<Check> {
    let rounds = if quick { 1 } else { ROUNDS };
    let mut out = Vec::new();
    let cpu = cpu();
    let perf = have("perf");
    let missing = |tool: &str, pkg: &str| Err(format!("{tool} not installed (apt-get install {pkg}; scripts/setup installs it)"));

    // perf bench syscall basic: 10M getppid() by default.
    let loops = if quick { "200000" } else { "10000000" };
    let cmd = format!("perf bench syscall basic --loop {loops}");
    let tool = if perf {
        median_of(rounds, || {
            output(Command::new("perf").args(["bench", "syscall", "basic", "--loop", loops]))
                .and_then(|o| parse_perf_bench(&o).map(|us| us * 1e3).ok_or_else(|| "no usecs/op in perf's output".into()))
        })
    } else {
        missing("perf", "linux-perf")
    };
    out.push(check(
        "syscall.getpid",
        cmd,
        "ns",
        tool,
        median_of(rounds, || isobench_mean(agent, "syscall.getpid", quick)),
        "perf calls getppid(), which takes an RCU read lock to read the parent; isobench calls getpid()",
    ));

    // perf bench sched pipe, pinned to one CPU as isobench pins.
    let loops = if quick { "20000" } else { "200000" };
    let cmd = format!("taskset -c {cpu} perf bench sched pipe --loop {loops}");
    let tool = if perf {
        median_of(rounds, || {
            output(Command::new("taskset").args(["-c", &cpu, "perf", "bench", "sched", "pipe", "--loop", loops]))
                .and_then(|o| parse_perf_bench(&o).ok_or_else(|| "no usecs/op in perf's output".into()))
        })
    } else {
        missing("perf", "linux-perf")
    };
    out.push(check(
        "ipc.pipe_rtt",
        cmd,
        "us",
        tool,
        median_of(rounds, || isobench_mean(agent, "ipc.pipe_rtt", quick)),
        "perf bench sched pipe passes 4-byte ints and counts its own loop; isobench 1 byte",
    ));

    // iperf3 over loopback, both ends on one CPU.
    let secs = if quick { "1" } else { "5" };
    let cmd = format!("taskset -c {cpu} iperf3 -c 127.0.0.1 -l 128K -t {secs} -J (server: taskset -c {cpu} iperf3 -s -1)");
    let tool = if have("iperf3") { median_of(rounds, || iperf3(&cpu, secs)) } else { missing("iperf3", "iperf3") };
    out.push(check(
        "net.tcp_stream",
        cmd,
        "Gbit/s",
        tool.map(|bps| bps / 1e9),
        median_of(rounds, || isobench_mean(agent, "net.tcp_stream", quick)),
        "iperf3 averages over its whole run with its own buffers and timers; isobench times 128 KiB reads",
    ));

    // hyperfine -N of the static noop.
    let runs = if quick { "30" } else { "300" };
    let cmd = format!("hyperfine -N --warmup 10 --runs {runs} {}", noop.display());
    let tool = if have("hyperfine") { median_of(rounds, || hyperfine(noop, runs)) } else { missing("hyperfine", "hyperfine") };
    let tool_us = tool.map(|s| s * 1e6);
    out.push(check(
        "spawn.fork_exec",
        cmd.clone(),
        "us",
        tool_us.clone(),
        median_of(rounds, || isobench_mean(agent, "spawn.fork_exec", quick)),
        "hyperfine spawns with Rust's std::process (posix_spawn, pipes, wall clock around it), not fork + exec",
    ));
    out.push(check(
        "spawn.posix_spawn",
        cmd,
        "us",
        tool_us,
        median_of(rounds, || isobench_mean(agent, "spawn.posix_spawn", quick)),
        "hyperfine adds its own process bookkeeping and timing around each spawn",
    ));
    out
}

/// fio's runtime of one round, seconds (time-based, after fio lays its file out).
const FIO_SECS: &str = "3";
const FIO_QUICK_SECS: &str = "1";
/// The file both sides use: the fs metrics' 32 MiB (`fs::RAND_FILE_BYTES`, `fs::SEQ_FILE_BYTES`).
const FIO_SIZE: &str = "32M";

/// The fs rows: fio and isobench's native agent on the same file system,
/// in `data` (a directory of the run's own, which the caller removes).
pub fn storage(agent: &mut AgentClient, data: &Path, quick: bool) -> Vec<Check> {
    let rounds = if quick { 1 } else { ROUNDS };
    let secs = if quick { FIO_QUICK_SECS } else { FIO_SECS };
    // (metric, fio --rw, --bs, side fio reports, unit, compare p50 latency (else bandwidth), method)
    let rows: [(&str, &str, &str, &str, &str, bool, &str); 4] = [
        (
            "fs.rand_read",
            "randread",
            "4k",
            "read",
            "us",
            true,
            "fio's clat p50 (1 % buckets) is the pread alone; isobench's p50 is of its timed loop around pread, a different random sequence",
        ),
        (
            "fs.rand_write",
            "randwrite",
            "4k",
            "write",
            "us",
            true,
            "fio's clat p50 is the pwrite alone; both overwrite a file laid out with data first (fio --overwrite=1)",
        ),
        (
            "fs.seq_read_bw",
            "read",
            "1M",
            "read",
            "MB/s",
            false,
            "fio reports bytes over its whole runtime; isobench times its pread loop (decimal MB/s both)",
        ),
        (
            "fs.seq_write_bw",
            "write",
            "1M",
            "write",
            "MB/s",
            false,
            "fio reports bytes over its whole runtime, isobench times its pwrite loop; both overwrite a 32 MiB file laid out first (fio --overwrite=1), pass after pass",
        ),
    ];
    let direct = probe_direct(data);
    let fio = have("fio");
    let mut out = Vec::new();
    for (metric, rw, bs, side, unit, p50, method) in rows {
        let file = data.join("fio.dat");
        // The write jobs overwrite a file fio lays out before its clock, as
        // isobench's do: never a write that allocates or extends.
        let overwrite = if side == "write" { " --overwrite=1" } else { "" };
        let cmd = format!(
            "fio --filename=<data dir>/fio.dat --rw={rw} --bs={bs} --size={FIO_SIZE} --direct=1 --ioengine=psync --iodepth=1 --runtime={secs} --time_based{overwrite}"
        );
        if let Err(e) = &direct {
            out.push(check(metric, cmd, unit, Err(e.clone()), Err(e.clone()), method));
            continue;
        }
        let tool = if fio {
            median_of(rounds, || {
                let json = output(
                    Command::new("fio")
                        .args([
                            "--name=isobench",
                            &format!("--filename={}", file.display()),
                            &format!("--rw={rw}"),
                            &format!("--bs={bs}"),
                            &format!("--size={FIO_SIZE}"),
                            "--direct=1",
                            "--ioengine=psync",
                            "--iodepth=1",
                            &format!("--runtime={secs}"),
                            "--time_based",
                            "--output-format=json",
                        ])
                        .args(overwrite.split_whitespace()),
                );
                let _ = std::fs::remove_file(&file);
                let f = parse_fio_json(&json?, side).ok_or_else(|| format!("no jobs[0].{side} in fio's JSON"))?;
                Ok(if p50 { f.clat_p50_ns / 1e3 } else { f.bw_bytes / 1e6 })
            })
        } else {
            Err("fio not installed (apt-get install fio; scripts/setup installs it)".to_string())
        };
        let native = median_of(rounds, || isobench_native(agent, metric, quick, Some(data), p50));
        out.push(check(metric, cmd, unit, tool, native, method));
    }
    out
}

/// Whether `dir`'s file system takes O_DIRECT (one that refuses it answers EINVAL,
/// as tmpfs before Linux 6.6).
fn probe_direct(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::OpenOptionsExt;
    let probe = dir.join("odirect-probe");
    let r = std::fs::OpenOptions::new().write(true).create(true).truncate(true).custom_flags(libc::O_DIRECT).open(&probe);
    let _ = std::fs::remove_file(&probe);
    match r {
        Ok(_) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Err(format!("skipped: {} has no O_DIRECT", dir.display())),
        Err(e) => Err(format!("{}: {e}", dir.display())),
    }
}

fn iperf3(cpu: &str, secs: &str) -> Result<f64, String> {
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map_err(|e| e.to_string())?.port().to_string();
    let mut server = crate::process::spawn_agent(
        Command::new("taskset").args(["-c", cpu, "iperf3", "-s", "-1", "-B", "127.0.0.1", "-p", &port]).stdout(Stdio::null()).stderr(Stdio::null()),
    )
    .map_err(|e| format!("iperf3 -s: {e}"))?;
    let mut last = String::new();
    let mut result = Err("iperf3 server did not come up".to_string());
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(100));
        match output(Command::new("taskset").args(["-c", cpu, "iperf3", "-c", "127.0.0.1", "-p", &port, "-l", "128K", "-t", secs, "-J"])) {
            Ok(json) => {
                result = parse_iperf3_json(&json).ok_or_else(|| "no end.sum_received.bits_per_second in iperf3 -J".to_string());
                break;
            }
            Err(e) => last = e,
        }
    }
    let _ = server.kill();
    let _ = server.wait();
    result.map_err(|e| if last.is_empty() { e } else { format!("{e} ({last})") })
}

fn hyperfine(noop: &Path, runs: &str) -> Result<f64, String> {
    let json = tempfile::NamedTempFile::new().map_err(|e| e.to_string())?;
    output(Command::new("hyperfine").args(["-N", "--warmup", "10", "--runs", runs, "--style", "none", "--export-json"]).arg(json.path()).arg(noop))?;
    let text = std::fs::read_to_string(json.path()).map_err(|e| e.to_string())?;
    parse_hyperfine_json(&text).ok_or_else(|| "no results[0].mean in hyperfine's JSON".into())
}

/// Requests per second of one test in `redis-benchmark --csv` output
/// (`"GET","185185.19",...`; redis 7 adds latency columns after it).
pub fn parse_redis_benchmark_csv(out: &str, test: &str) -> Option<f64> {
    out.lines().find_map(|l| {
        let mut cols = l.split(',').map(|c| c.trim().trim_matches('"'));
        (cols.next()? == test).then(|| cols.next()?.parse().ok()).flatten()
    })
}

/// `Requests/sec:` of wrk's summary.
pub fn parse_wrk(out: &str) -> Option<f64> {
    out.lines().find_map(|l| l.trim().strip_prefix("Requests/sec:").and_then(|v| v.trim().parse().ok()))
}

/// The app rows: redis-benchmark and wrk against a server started the way
/// the app metrics start it (`apps`, natively: the host's binaries, the
/// same configuration, a port of its own), beside isobench's closed loop
/// against another start of the same server. Both are throughput at
/// saturation with the same load shape: redis-benchmark `-c 4 -P 16 -d 64`
/// on one key (no `-r`; isobench's `isobench:key`), its GET row measured
/// after its SET row in the same invocation (`-t set,get`) so that GET
/// reads the 64-byte value, as isobench's GET does (alone, `-t get` against
/// a fresh server reads a missing key: a 5-byte nil reply); wrk `-t 4 -c 4`.
///
/// The rounds are interleaved (tool, isobench, tool, isobench, ...), so a
/// change of the machine's load between them falls on both sides; the row
/// keeps each side's median round and the note gives every round's ratio,
/// their spread on a shared machine.
pub fn apps(inst: &mut dyn crate::env::Instance, hosts: &mut crate::boundary::HostSides, quick: bool) -> Vec<Check> {
    use isobench_workloads::app::App;
    use isobench_workloads::catalog::{NGINX_CONNECTIONS, REDIS_CONNECTIONS, REDIS_PIPELINE};
    let rounds = if quick { 1 } else { ROUNDS };
    let secs = if quick { "1" } else { "3" };
    let requests = if quick { "100000" } else { "1000000" };
    let clients = "one redis-benchmark thread drives the 4 connections from an event loop; isobench runs a blocking thread per connection, \
                   which on a machine of few CPUs share them with the server";
    // (metric, tool, its arguments with PORT, the row of its output, method difference)
    let (c, p, nc) = (REDIS_CONNECTIONS.to_string(), REDIS_PIPELINE.to_string(), NGINX_CONNECTIONS.to_string());
    let redis = |tests: &str| -> Vec<String> {
        ["-h", "127.0.0.1", "-p", "PORT", "-t", tests, "-d", "64", "-c", &c, "-P", &p, "-n", requests, "--csv"].map(String::from).to_vec()
    };
    let rows: [(&str, &str, Vec<String>, &str, String); 4] = [
        (
            "app.redis.get",
            "redis-benchmark",
            redis("set,get"),
            "GET",
            format!("{clients}; both read a 64-byte value of one key (the tool's GET row after its SET row)"),
        ),
        ("app.redis.set", "redis-benchmark", redis("set"), "SET", format!("{clients}; both write a 64-byte value to one key")),
        (
            "app.nginx.1k",
            "wrk",
            ["-t", &nc, "-c", &nc, "-d", &format!("{secs}s"), "http://127.0.0.1:PORT/1k.bin"].map(String::from).to_vec(),
            "",
            "wrk runs an event loop per thread in C (LuaJIT scripting off); isobench a blocking thread per connection that parses every reply".into(),
        ),
        (
            "app.nginx.64k",
            "wrk",
            ["-t", &nc, "-c", &nc, "-d", &format!("{secs}s"), "http://127.0.0.1:PORT/64k.bin"].map(String::from).to_vec(),
            "",
            "wrk runs an event loop per thread in C; isobench a blocking thread per connection that copies every body".into(),
        ),
    ];
    let mut out = Vec::new();
    for (metric, tool, args, row, method) in rows {
        let spec = catalog::lookup(metric).expect("app rows name catalogue metrics");
        let app = App::of_metric(metric).expect("an app metric");
        let shown = format!("{tool} {}", args.join(" "));
        let installed = have(tool);
        let n = if quick { spec.quick_iterations } else { spec.iterations };
        let (mut tools, mut ours, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        let (mut tool_err, mut our_err) = (None, None);
        for _ in 0..rounds {
            let t = match installed {
                false => Err(format!(
                    "{tool} not installed (apt-get install {}; scripts/setup installs it)",
                    if tool == "wrk" { "wrk" } else { "redis-tools" }
                )),
                true => tool_round(inst, app, tool, &args, row),
            };
            let req = RunRequest { warmup: n / 20, ..RunRequest::new(metric, n, 20_000) };
            let i = crate::apps::measure(inst, hosts, true, spec, &req)
                .map_err(|e| e.to_string())
                .and_then(|r| r.load.map(|l| l.achieved_per_s).ok_or_else(|| "no load in the result".to_string()));
            if let (Ok(t), Ok(i)) = (&t, &i) {
                ratios.push(i / t);
            }
            match t {
                Ok(v) => tools.push(v),
                Err(e) => tool_err = Some(e),
            }
            match i {
                Ok(v) => ours.push(v),
                Err(e) => our_err = Some(e),
            }
        }
        let median = |v: &mut Vec<f64>, err: Option<String>| -> Result<f64, String> {
            v.sort_by(f64::total_cmp);
            v.get(v.len() / 2).copied().ok_or_else(|| err.unwrap_or_else(|| "no round ran".into()))
        };
        let mut check = check(metric, shown, "req/s", median(&mut tools, tool_err), median(&mut ours, our_err), &method);
        if ratios.len() > 1 {
            check.note = format!("{}; {}", check.note, round_ratios(&ratios));
        }
        out.push(check);
    }
    out
}

/// "ratio per interleaved round 0.95, 1.02, 1.10 (spread 0.15)".
pub fn round_ratios(ratios: &[f64]) -> String {
    let lo = ratios.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let list: Vec<String> = ratios.iter().map(|r| format!("{r:.2}")).collect();
    format!("ratio per interleaved round {} (spread {:.2})", list.join(", "), hi - lo)
}

/// One round of the reference tool: a fresh server started the way the app
/// metrics start it, `tool` run against its port, the server stopped; the
/// tool's requests per second (`row` of redis-benchmark's CSV, or wrk's
/// summary).
fn tool_round(inst: &mut dyn crate::env::Instance, app: isobench_workloads::app::App, tool: &str, args: &[String], row: &str) -> Result<f64, String> {
    let start = isobench_workloads::protocol::AppStartRequest {
        app,
        bind: "127.0.0.1:0".into(),
        dir: crate::apps::server_dir(app, true).display().to_string(),
    };
    let (addr, _) = inst.agent().app_start(&start).map_err(|e| format!("starting {app}: {e}"))?;
    let args: Vec<String> = args.iter().map(|a| a.replace("PORT", &addr.port().to_string())).collect();
    let got = output(Command::new(tool).args(&args));
    let _ = inst.agent().app_stop();
    let text = got?;
    match tool {
        "wrk" => parse_wrk(&text),
        _ => parse_redis_benchmark_csv(&text, row),
    }
    .ok_or_else(|| format!("no requests per second in {tool}'s output"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_benchmark_csv_and_wrk_summaries_parse() {
        let csv = "\"test\",\"rps\",\"avg_latency_ms\"\n\"SET\",\"150000.00\",\"0.4\"\n\"GET\",\"185185.19\",\"0.287\"\n";
        assert_eq!(parse_redis_benchmark_csv(csv, "GET"), Some(185185.19));
        assert_eq!(parse_redis_benchmark_csv(csv, "SET"), Some(150000.0));
        assert_eq!(parse_redis_benchmark_csv(csv, "LPUSH"), None);
        let wrk = "Running 1s test @ http://127.0.0.1:1/1k.bin\n  4 threads and 4 connections\nRequests/sec:  12345.67\nTransfer/sec:      1.2MB\n";
        assert_eq!(parse_wrk(wrk), Some(12345.67));
        assert_eq!(parse_wrk("nothing"), None);
    }

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/validate").join(name)).unwrap()
    }

    #[test]
    fn parses_the_tools_real_output() {
        // recorded on the project's 2-core Debian 12 machine
        assert_eq!(parse_perf_bench(&fixture("perf-syscall-basic.txt")), Some(0.155336));
        assert_eq!(parse_perf_bench(&fixture("perf-sched-pipe.txt")), Some(2.3447));
        let bps = parse_iperf3_json(&fixture("iperf3.json")).unwrap();
        assert!((bps / 1e9 - 12.54).abs() < 0.01, "{bps}");
        let mean = parse_hyperfine_json(&fixture("hyperfine.json")).unwrap();
        assert!((mean - 0.00160193812).abs() < 1e-12, "{mean}");
        let fio = parse_fio_json(&fixture("fio-randread.json"), "read").unwrap();
        assert_eq!(fio, FioFigures { bw_bytes: 25596931.0, iops: 6249.250749, clat_p50_ns: 70144.0, clat_mean_ns: 157211.559667 });
        // a read job's write side has no clat percentiles: no figures, not zeros
        assert_eq!(parse_fio_json(&fixture("fio-randread.json"), "write"), None);
        assert_eq!(parse_fio_json("{\"jobs\":[]}", "read"), None);
        assert_eq!(parse_perf_bench("nothing here"), None);
        assert_eq!(parse_iperf3_json("{\"start\":{}}"), None);
    }

    #[test]
    fn the_median_round_is_kept_and_errors_only_when_all_fail() {
        let mut v = [30.0, 10.0, 20.0].into_iter();
        assert_eq!(median_of::<String>(3, || Ok(v.next().unwrap())), Ok(20.0));
        let mut n = 0;
        assert_eq!(
            median_of(3, || {
                n += 1;
                if n == 2 {
                    Ok(5.0)
                } else {
                    Err("noisy")
                }
            }),
            Ok(5.0)
        );
        assert_eq!(median_of::<&str>(2, || Err("gone")), Err("gone"));
        assert_eq!(round_ratios(&[0.95, 1.1, 1.02]), "ratio per interleaved round 0.95, 1.10, 1.02 (spread 0.15)");
    }

    #[test]
    fn verdicts_follow_the_tolerance() {
        let ok = check("m", "t".into(), "ns", Ok(100.0), Ok(110.0), "why");
        assert_eq!(ok.within_tolerance, Some(true));
        assert!((ok.ratio.unwrap() - 1.1).abs() < 1e-9);
        let off = check("m", "t".into(), "ns", Ok(100.0), Ok(130.0), "perf calls getppid");
        assert_eq!(off.within_tolerance, Some(false));
        assert!(off.note.contains("perf calls getppid"));
        let missing = check("m", "t".into(), "ns", Err("perf not installed".into()), Ok(1.0), "why");
        assert_eq!(missing.ratio, None);
        assert_eq!(missing.note, "perf not installed");
        let table = crate::report::section::cross_check::table(&[ok, off, missing]);
        assert_eq!(table.lines().count(), 5, "{table}");
    }
}
