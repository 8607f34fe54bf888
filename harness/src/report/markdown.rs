//! report.md: what each isolation costs here, as tables of p50/p99 with the
//! overhead against native (ratio and percent), the plots inline, and the
//! caveats a reader needs (emulated guests, noise, truncated loops).

use std::fmt::Write;
use std::path::PathBuf;

use serde_json::Value;

use isobench_workloads::catalog::Family;

use crate::collect::{Measurement, Summary};

use super::by_metric;

/// Overhead of `value` against the native `base`, as "1.23×, +23.0 %".
pub fn overhead(value: f64, base: f64) -> String {
    if base <= 0.0 {
        return "n/a".into();
    }
    ratio(value / base)
}

/// A cost ratio (time per operation ÷ native's) as "1.23×, +23.0 %".
pub fn ratio(r: f64) -> String {
    format!("{r:.2}×, {:+.1} %", (r - 1.0) * 100.0)
}

/// Families where a namespace container should cost nothing: the report
/// flags a container/native p50 ratio outside [`SANE_RATIO`] there.
pub const SANE_FAMILIES: [Family; 3] = [Family::Syscall, Family::Ipc, Family::Control];
/// Container/native ratio band expected for [`SANE_FAMILIES`].
pub const SANE_RATIO: (f64, f64) = (0.9, 1.1);

/// The sanity gate: "suspicious: check noise" when a container figure of a
/// family that namespaces cannot slow is more than 10 % off native.
pub fn suspicious(m: &Measurement, native: &Measurement) -> bool {
    super::split_env(&m.env).0 == "container"
        && SANE_FAMILIES.contains(&m.metric.family)
        && m.cost_ratio(native, 0.5).is_some_and(|r| r < SANE_RATIO.0 || r > SANE_RATIO.1)
}

/// x86 clocksources whose clock_gettime is answered in the vDSO, without a
/// system call (others, e.g. hpet or acpi_pm, trap into the kernel).
/// `tsc-early` is the TSC before its refined calibration (what a guest told
/// `tsc_early_khz` still runs on when its agent starts): the same
/// VDSO_CLOCKMODE_TSC read as `tsc`.
pub const VDSO_CLOCKSOURCES: [&str; 4] = ["tsc", "tsc-early", "kvm-clock", "hyperv_clocksource_tsc_page"];

/// Formats a value in a metric's display unit with sensible precision.
pub fn num(v: f64) -> String {
    if v >= 1000.0 {
        format!("{v:.0}")
    } else if v >= 100.0 {
        format!("{v:.1}")
    } else if v >= 10.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

fn s(v: &Value, path: &[&str]) -> Option<String> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    match cur {
        Value::String(x) => Some(x.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// Environments present in `ms`, in column order, with their labels.
fn columns(ms: &[Measurement]) -> Vec<(String, String)> {
    let mut cols: Vec<(String, String)> = Vec::new();
    for m in ms {
        if !cols.iter().any(|(e, _)| *e == m.env) {
            cols.push((m.env.clone(), m.env_label.clone()));
        }
    }
    cols.sort_by_key(|(e, _)| super::env_order(e));
    cols
}

/// Renders report.md. `plots` are paths relative to the run folder.
/// "env: path (address, netns)" for every environment whose boundary was
/// measured, from run.json's `environments.<env>.boundary`.
fn boundary_paths(run: &Value) -> Option<String> {
    let envs = run.get("environments")?.as_object()?;
    let parts: Vec<String> = envs
        .iter()
        .filter_map(|(name, e)| {
            let b = e.get("boundary")?;
            let mut line = format!("{name}: {}", s(b, &["description"])?);
            if let Some(ns) = s(b, &["netns"]) {
                line.push_str(&format!(" (host side in netns {ns}, environment at {})", s(b, &["environment_address"]).unwrap_or_default()));
            }
            Some(line)
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// What a `--pin` mode means, for the report's header.
fn pin_description(mode: &str) -> String {
    let words = match mode {
        "same" => "the measuring thread and its peer on one CPU (round trips are context switches)",
        "split" => "the measuring thread on one CPU, its peer on another (cross-CPU wake-ups)",
        "none" => "not pinned: the scheduler placed both ends",
        _ => "unknown mode",
    };
    format!("{mode}: {words}")
}

/// Caveats from run.json's `environments.<env>.pinning`: where `split` was
/// asked for a two-party metric but `same` was applied (one allowed CPU),
/// and that `none` may give bimodal figures.
fn pinning_notes(run: &Value) -> Vec<String> {
    let mut notes = Vec::new();
    if s(run, &["parameters", "pin"]).as_deref() == Some("none") {
        notes.push(
            "CPU pinning was off (--pin none): a round trip's two ends landed on one CPU or two as the scheduler chose, \
             so ipc.* and net.* figures may be a bimodal mix of both"
                .into(),
        );
    }
    let Some(envs) = run.get("environments").and_then(Value::as_object) else { return notes };
    for (name, e) in envs {
        let Some(pins) = e.get("pinning").and_then(Value::as_object) else { continue };
        let fell_back: Vec<&str> = pins
            .iter()
            .filter(|(metric, p)| {
                isobench_workloads::catalog::lookup(metric).is_some_and(|m| m.two_party())
                    && s(p, &["requested"]).as_deref() == Some("split")
                    && s(p, &["applied"]).as_deref() == Some("same")
            })
            .map(|(metric, _)| metric.as_str())
            .collect();
        if !fell_back.is_empty() {
            notes.push(format!(
                "{name}: --pin split could not be applied to {}: only one CPU is allowed there (a 1-vCPU guest or a cpuset), \
                 so both ends ran on one CPU (same); compare them with same-CPU figures, not split ones",
                fell_back.join(", ")
            ));
        }
    }
    notes
}

/// The caveat for a host whose CPUID costs `ns`, when the static no-op's
/// CPUIDs add at least [`START_CPUID_CAVEAT_US`](crate::collect::host::START_CPUID_CAVEAT_US).
pub fn cpuid_caveat(ns: f64) -> Option<String> {
    use crate::collect::host::{start_cpuid_us, GLIBC_START_CPUIDS, START_CPUID_CAVEAT_US};
    (start_cpuid_us(ns) >= START_CPUID_CAVEAT_US).then(|| {
        format!(
            "a CPUID instruction costs {:.1} µs here: it exits to a hypervisor. glibc runs dozens before main (the static noop: \
             {GLIBC_START_CPUIDS}), so spawn.fork_exec, spawn.posix_spawn and every env.start carry ≈{:.2} ms of CPUID in the static \
             no-op's own start-up; `isobench startup --noop nolibc` measures the starts without it",
            ns / 1e3,
            start_cpuid_us(ns) / 1e3
        )
    })
}

/// The host row for run.json's `host.cpuid_ns`: its cost, and whether that
/// is an exit to a hypervisor.
fn cpuid_description(run: &Value) -> Option<String> {
    let ns = run.pointer("/host/cpuid_ns").and_then(Value::as_f64)?;
    let guest = run.pointer("/host/hypervisor").and_then(Value::as_bool).unwrap_or(false);
    Some(match (ns > crate::collect::host::CPUID_EXIT_NS, guest) {
        (true, _) => format!("{:.1} µs each: exits to the hypervisor (the host is a guest)", ns / 1e3),
        (false, true) => format!("{ns:.0} ns each: a guest whose CPUID exits are cheap"),
        (false, false) => format!("{ns:.0} ns each: native"),
    })
}

pub fn report(run: &Value, ms: &[Measurement], plots: &[PathBuf], warnings: &[String]) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "# isobench report: what isolation costs on host {}\n", s(run, &["host", "hostname"]).unwrap_or_else(|| "(unnamed)".into()));
    let _ = writeln!(o, "| | |\n|---|---|");
    let rows = [
        ("date (UTC)", s(run, &["started_utc"])),
        ("CPU", s(run, &["host", "cpu_model"]).map(|m| format!("{m} ({} CPUs)", s(run, &["host", "cpus"]).unwrap_or_default()))),
        ("kernel", s(run, &["host", "kernel"])),
        ("cgroup mode", s(run, &["host", "cgroup_mode"])),
        ("governor", s(run, &["host", "governor"]).or(Some("not exposed".into()))),
        (
            "SMT / boost",
            Some(format!(
                "{} / {}",
                s(run, &["host", "smt"]).unwrap_or_else(|| "?".into()),
                s(run, &["host", "boost"]).unwrap_or_else(|| "?".into())
            )),
        ),
        ("rcu_expedited", s(run, &["host", "rcu_expedited"])),
        (
            "mitigations",
            run.pointer("/host/mitigations").and_then(Value::as_object).filter(|m| !m.is_empty()).map(|m| {
                let affected: Vec<&str> =
                    m.iter().filter(|(_, v)| v.as_str().is_some_and(|v| v != "Not affected")).map(|(k, _)| k.as_str()).collect();
                if affected.is_empty() {
                    "not affected by any listed vulnerability".to_string()
                } else {
                    format!("active for {} (run.json has the details)", affected.join(", "))
                }
            }),
        ),
        ("clocksource", s(run, &["host", "clocksource"])),
        ("CPUID", cpuid_description(run)),
        ("load average at start", s(run, &["host", "load_avg_1m"])),
        ("isobench revision", s(run, &["host", "isobench_revision"])),
        ("QEMU", s(run, &["host", "qemu_version"])),
        (
            "vm accelerator",
            s(run, &["environments", "vm", "metadata", "accel"])
                .map(|a| format!("{a} — {}", s(run, &["environments", "vm", "metadata", "accel_reason"]).unwrap_or_default())),
        ),
        ("container rootfs", s(run, &["environments", "container", "metadata", "rootfs_image"])),
        ("cross-boundary paths (net.*.boundary)", boundary_paths(run)),
        ("driver", s(run, &["parameters", "driver"])),
        ("CPU pinning (ipc.*, net.*)", s(run, &["parameters", "pin"]).map(|p| pin_description(&p))),
        (
            "criterion's report",
            s(run, &["parameters", "criterion_report"])
                .map(|p| format!("[{p}](file://{p}) (statistics of the same samples; baselines: `cargo bench -- --save-baseline NAME`)")),
        ),
        (
            "merged from",
            run.get("merged_from").and_then(Value::as_array).map(|a| {
                a.iter()
                    .map(|r| {
                        format!(
                            "{} ({}, {})",
                            s(r, &["name"]).unwrap_or_default(),
                            s(r, &["host", "cpu_model"]).unwrap_or_default(),
                            s(r, &["host", "kernel"]).unwrap_or_default()
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
            }),
        ),
        ("parameters", run.get("parameters").map(|p| format!("`{p}`"))),
    ];
    for (k, v) in rows {
        if let Some(v) = v {
            let _ = writeln!(o, "| {k} | {} |", v.replace('|', "\\|"));
        }
    }
    o.push('\n');

    let mut notes: Vec<String> = warnings.to_vec();
    if run.get("interrupted").and_then(Value::as_bool) == Some(true) {
        notes.push("the run was interrupted (Ctrl-C): only what finished before is here; missing columns were never measured".into());
    }
    if let Some(Value::Object(envs)) = run.get("environments") {
        for (name, e) in envs {
            if let Some(reason) = s(e, &["skipped"]) {
                notes.push(format!("{name}: skipped: {reason}"));
            }
        }
    }
    if ms.iter().any(|m| m.env_label.contains("TCG")) {
        notes.push(
            "the vm ran under TCG: QEMU emulated the CPU, so its column measures emulation, not a hypervisor; \
             its ratios are labelled \"emulated (TCG)\" and must not be read as KVM overhead"
                .into(),
        );
    }
    if let Some(Value::Object(envs)) = run.get("environments") {
        for (name, e) in envs {
            if let Some(w) = s(e, &["metadata", "warning"]) {
                notes.push(format!("{name}: {w}"));
            }
            if let Some(cs) = s(e, &["agent", "clocksource"]) {
                if !VDSO_CLOCKSOURCES.contains(&cs.as_str()) {
                    notes.push(format!(
                        "{name}: clocksource {cs} has no vDSO path, so syscall.clock_gettime there is a real system call and every in-environment timing pays it"
                    ));
                }
            }
        }
    }
    if let Some(Value::Object(envs)) = run.get("environments") {
        for (name, e) in envs {
            if let Some(reason) = s(e, &["boundary_not_measured"]) {
                notes.push(format!("{name}: net.*.boundary not measured: {reason}"));
            }
            if s(e, &["boundary", "path"]).as_deref() == Some("slirp") {
                notes.push(format!(
                    "{name}: the net.*.boundary figures went through QEMU's user-mode networking (slirp: without root, or --vm-net user), a userspace TCP/IP stack: \
                     a different data path from a tap device, not comparable with a tap run"
                ));
            }
        }
    }
    notes.extend(pinning_notes(run));
    if ms.iter().any(|m| m.truncated) {
        notes.push("some loops hit their time bound before their iteration count (marked †); their n is smaller".into());
    }
    if let Some(g) = s(run, &["host", "governor"]) {
        if g != "performance" {
            notes.push(format!(
                "the CPU frequency governor is {g:?}, not \"performance\": frequency changes add noise (cpupower frequency-set -g performance)"
            ));
        }
    }
    if let Some(ns) = run.pointer("/host/cpuid_ns").and_then(Value::as_f64) {
        if let Some(note) = cpuid_caveat(ns) {
            notes.push(note);
        }
    }
    if let Some(load) = run.pointer("/host/load_avg_1m").and_then(Value::as_f64) {
        let cpus = run.pointer("/host/cpus").and_then(Value::as_f64).unwrap_or(1.0);
        if load > 0.5 * cpus {
            notes.push(format!("the machine was busy at start (load average {load:.2} on {cpus} CPUs): expect noise"));
        }
    }
    if !notes.is_empty() {
        let _ = writeln!(o, "**Caveats**\n");
        for n in &notes {
            let _ = writeln!(o, "- {n}");
        }
        o.push('\n');
    }

    let cols = columns(ms);
    let groups = by_metric(ms);
    let _ = writeln!(o, "## Summary: p50, and overhead vs native\n");
    let _ = write!(o, "| metric | unit |");
    for (_, label) in &cols {
        let _ = write!(o, " {label} |");
    }
    let _ = write!(o, "\n|---|---|");
    for _ in &cols {
        o.push_str("---:|");
    }
    o.push('\n');
    let mut flagged = Vec::new();
    for ((_, name), group) in &groups {
        let unit = group[0].unit().label();
        let _ = write!(o, "| {name} | {unit} |");
        for (env, _) in &cols {
            match group.iter().find(|m| &m.env == env) {
                None => o.push_str(" – |"),
                Some(m) => {
                    let p50 = m.summary().p50;
                    let mark = if m.truncated { "†" } else { "" };
                    let native = super::baseline_for(group, m);
                    match native.and_then(|b| m.cost_ratio(b, 0.5).map(|r| (b, r))) {
                        Some((b, r)) if !super::is_baseline(env) => {
                            let flag = if suspicious(m, b) {
                                flagged.push(format!("{name} ({})", m.env_label));
                                " ‡ suspicious: check noise"
                            } else {
                                ""
                            };
                            // Significance against native: median CIs apart and beyond noise.
                            let sig = match super::compare::judge(b, m, super::compare::DEFAULT_NOISE) {
                                Some((_, super::compare::Verdict::Regressed | super::compare::Verdict::Improved)) => " *",
                                Some(_) => " ≈",
                                None => "",
                            };
                            let _ = write!(o, " {}{mark} ({}){sig}{flag} |", num(p50), ratio(r));
                        }
                        _ => {
                            let _ = write!(o, " {}{mark} |", num(p50));
                        }
                    }
                }
            }
        }
        o.push('\n');
    }
    o.push('\n');
    let _ = writeln!(
        o,
        "Overhead is the cost ratio at p50: time per operation ÷ native's (for a rate, native's bandwidth ÷ this one's), so > 1× always means slower than native. \
         `*` significant: the 95 % confidence intervals of the two medians do not overlap (distribution-free, from the order statistics at ranks n/2 ± 1.96·√n/2) and the difference exceeds {:.0} %; `≈` within noise.",
        super::compare::DEFAULT_NOISE * 100.0
    );
    if !flagged.is_empty() {
        let _ = writeln!(
            o,
            "\n‡ Sanity gate: namespaces do not slow syscalls, IPC or plain compute, so a container/native ratio outside {:.1}–{:.1}× there means the machine was too noisy to trust this run: {}.",
            SANE_RATIO.0,
            SANE_RATIO.1,
            flagged.join(", ")
        );
    }
    o.push('\n');

    for ((_, name), group) in &groups {
        let spec = group[0].metric;
        let unit = spec.unit.label();
        let _ = writeln!(o, "## {name}\n\n{} — method: {}.\n", spec.operation, spec.reference);
        let _ = writeln!(o, "| environment | n | p50 ({unit}) | p90 | p99 | max | overhead vs native (p50) | overhead (p99) |");
        let _ = writeln!(o, "|---|---:|---:|---:|---:|---:|---:|---:|");
        for m in group {
            let native = super::baseline_for(group, m);
            let sm: Summary = m.summary();
            let r = |q: f64| native.and_then(|b| m.cost_ratio(b, q)).map_or_else(|| "n/a".to_string(), ratio);
            let (o50, o99) = match native {
                Some(_) if !super::is_baseline(&m.env) => (r(0.5), r(0.99)),
                Some(_) => ("baseline".into(), "baseline".into()),
                None => ("no native run".into(), "".into()),
            };
            let mark = if m.truncated { " †" } else { "" };
            let _ = writeln!(
                o,
                "| {}{mark} | {} | {} | {} | {} | {} | {o50} | {o99} |",
                m.env_label,
                sm.n,
                num(sm.p50),
                num(sm.p90),
                num(sm.p99),
                num(sm.max)
            );
        }
        if spec.unit.is_rate() {
            let _ = writeln!(
                o,
                "\nFor a rate, p90 and p99 are the slow tail (the bandwidth 90 % and 99 % of samples exceeded) and max is the fastest sample."
            );
        }
        o.push('\n');
        for stem in [name.to_string(), format!("{name}.percentiles")] {
            for p in plots.iter().filter(|p| p.file_stem().is_some_and(|st| *st == *stem) && p.extension().is_some_and(|e| e == "svg")) {
                let _ = writeln!(o, "![{stem}]({})\n", p.display());
            }
        }
    }

    if let Some(Value::Object(envs)) = run.get("environments") {
        let mut starts: Vec<_> = envs.iter().filter_map(|(n, e)| e.get("start_ms").and_then(Value::as_f64).map(|v| (n, e, v))).collect();
        starts.sort_by_key(|(n, _, _)| super::env_order(n));
        if !starts.is_empty() {
            let _ = writeln!(o, "## First start of each measured instance (host-timed: start → agent ready)\n");
            let warm = match ms.iter().any(|m| m.metric.name == "env.start") {
                true => "; `env.start` above has the distribution of warm starts",
                false => "",
            };
            let _ = writeln!(o, "One cold sample per environment (first page-cache, cgroup and rootfs touches included){warm}.\n");
            let _ = writeln!(o, "| environment | start → agent ready (ms) |\n|---|---:|");
            for (n, e, v) in starts {
                let label = s(e, &["label"]).unwrap_or_else(|| n.clone());
                let _ = writeln!(o, "| {label} | {} |", num(v));
            }
            o.push('\n');
        }
    }
    if let Some(Value::Object(envs)) = run.get("environments") {
        let used: Vec<_> = envs.iter().filter_map(|(n, e)| e.get("usage").filter(|u| u.is_object()).map(|u| (n, e, u))).collect();
        if !used.is_empty() {
            let _ = writeln!(o, "## Resources the measured instance used (its cgroup's accounting)\n");
            let _ =
                writeln!(o, "| environment | CPU time (s) | peak memory (MiB) | OOM kills | forks refused (pids limit) |\n|---|---:|---:|---:|---:|");
            for (n, e, u) in used {
                let f = |k: &str, scale: f64| u.get(k).and_then(Value::as_f64).map_or("–".to_string(), |v| num(v / scale));
                let count = |k: &str| u.get(k).and_then(Value::as_u64).map_or("–".to_string(), |v| v.to_string());
                let label = s(e, &["label"]).unwrap_or_else(|| n.clone());
                let _ = writeln!(
                    o,
                    "| {label} | {} | {} | {} | {} |",
                    f("cpu_ns", 1e9),
                    f("memory_peak_bytes", 1048576.0),
                    count("oom_kills"),
                    count("pids_limit_hits")
                );
            }
            o.push('\n');
        }
    }
    o.push_str(&super::phases::section(run));
    if plots.iter().any(|p| p.file_stem().is_some_and(|s| s == "overhead")) {
        let _ = writeln!(o, "## Overhead at a glance\n\n![overhead](plots/overhead.svg)\n");
    }
    let _ = writeln!(
        o,
        "---\nLatencies are per operation, recorded in HdrHistogram (3 significant digits); round trips are closed-loop. \
         Overhead = environment p50 ÷ native p50 from the same run. Files: summary.csv, summary.json, histograms/ (HdrHistogram V2), run.json."
    );
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_split_that_fell_back_to_same_is_a_caveat() {
        let run = serde_json::json!({
            "parameters": { "pin": "split" },
            "environments": {
                "native": { "pinning": { "ipc.pipe_rtt": { "requested": "split", "applied": "split", "cpus": [0, 1] } } },
                "vm": { "pinning": {
                    "ipc.pipe_rtt": { "requested": "split", "applied": "same", "cpus": [0] },
                    "syscall.getpid": { "requested": "split", "applied": "same", "cpus": [0] },
                } },
            },
        });
        let notes = pinning_notes(&run);
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].starts_with("vm: --pin split could not be applied to ipc.pipe_rtt:"), "{notes:?}");
        assert!(!notes[0].contains("syscall.getpid"), "a one-party metric has nothing to split");
        let md = report(&run, &[], &[], &[]);
        assert!(md.contains("| CPU pinning (ipc.*, net.*) | split: the measuring thread on one CPU"), "{md}");
        assert!(md.contains("- vm: --pin split could not be applied"), "{md}");
        let none = pinning_notes(&serde_json::json!({ "parameters": { "pin": "none" } }));
        assert!(none[0].contains("bimodal"), "{none:?}");
    }

    #[test]
    fn overhead_formats_ratio_and_percent() {
        assert_eq!(overhead(150.0, 100.0), "1.50×, +50.0 %");
        assert_eq!(overhead(90.0, 100.0), "0.90×, -10.0 %");
        assert_eq!(overhead(1.0, 0.0), "n/a");
    }

    #[test]
    fn cpuid_row_and_caveat_follow_its_cost() {
        let host = |ns: f64, guest: bool| serde_json::json!({ "host": { "cpuid_ns": ns, "hypervisor": guest } });
        assert_eq!(cpuid_description(&host(45.0, false)).unwrap(), "45 ns each: native");
        assert_eq!(cpuid_description(&host(180.0, true)).unwrap(), "180 ns each: a guest whose CPUID exits are cheap");
        assert_eq!(cpuid_description(&host(12_300.0, true)).unwrap(), "12.3 µs each: exits to the hypervisor (the host is a guest)");
        assert_eq!(cpuid_description(&serde_json::json!({ "host": {} })), None, "not recorded (older run.json)");
        assert_eq!(cpuid_caveat(300.0), None, "68 × 0.3 µs is noise next to a start");
        let c = cpuid_caveat(12_300.0).unwrap();
        assert!(c.contains("12.3 µs") && c.contains("≈0.84 ms") && c.contains("--noop nolibc"), "{c}");
    }
}
