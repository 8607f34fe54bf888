//! **Caveats**: what a reader must know before trusting a figure:
//! measurements taken under interference (first: the machine busy outside
//! the run, stolen time, another isobench run), skipped environments, an
//! emulated vm, clocksources without a vDSO path, boundary paths not
//! measured or through slirp, pinning that fell back, truncated loops, a
//! governor other than `performance`, expensive CPUID, a busy machine.

use std::collections::BTreeMap;
use std::fmt::Write;

use isobench_workloads::protocol::PinMode;

use crate::collect::host::{start_cpuid_us, GLIBC_START_CPUIDS, START_CPUID_CAVEAT_US};
use crate::collect::interference::{INTERFERENCE_CPUS, STEAL_CPUS};
use crate::collect::Measurement;
use crate::report::ReportError;
use crate::results::{RunDir, RunRecord};
use crate::workloads::Noop;

use super::{Context, Section};

/// x86 clocksources whose clock_gettime is answered in the vDSO, without a
/// system call (others, e.g. hpet or acpi_pm, trap into the kernel).
/// `tsc-early` is the TSC before its refined calibration (what a guest told
/// `tsc_early_khz` still runs on when its agent starts): the same
/// What a hypervisor changes, for a vm column measured under TCG: no KVM
/// figure of this project's own exists (none was measured on real KVM),
/// so the caveat says which metrics exit to the hypervisor and which do
/// not, with the one published exit cost it can trace.
pub const KVM_EXPECTATION: &str = "what a hypervisor (KVM) would change, as this project has not measured one: \
     the guest's own instructions run on the CPU, so what stays inside the guest costs about what it costs natively: \
     system calls (`syscall.*`, with clock_gettime read through kvm-clock's vDSO), pipes, unix sockets and eventfds (`ipc.*`), \
     threads, loopback TCP and UDP inside the guest (net.tcp_rr, net.udp_rr, net.tcp_stream), cpu.spin and mem.copy_bw; \
     page faults and TLB misses add a second level of address translation (EPT/NPT: syscall.mmap_munmap, `spawn.fork_*`). \
     What leaves the guest exits to the hypervisor: the start (env.start: QEMU, firmware and the guest kernel's boot), \
     network I/O across the boundary through virtio (the `*.boundary` metrics), file I/O on the virtio-blk disk, the 9p share or virtiofs (`fs.*`), timers, interrupts and CPUID. \
     One exit's direct cost was about 2,000 cycles with KVM on the Intel machines of 2011, its indirect and synchronous costs (cold caches, the exit's handling) in some cases an order of magnitude more \
     (Landau, Ben-Yehuda and Gordon, \"SplitX: Split Guest/Hypervisor Execution on Multi-Core\", USENIX WIOV 2011)";

/// VDSO_CLOCKMODE_TSC read as `tsc`.
pub const VDSO_CLOCKSOURCES: [&str; 4] = ["tsc", "tsc-early", "kvm-clock", "hyperv_clocksource_tsc_page"];

/// What a container's security profile means for its column
/// (`metadata.profile`): `bare` is not a security boundary; `docker`'s
/// filter runs on every system call.
fn profile_notes(run: &RunRecord) -> Vec<String> {
    let mut notes = Vec::new();
    for (name, e) in &run.environments {
        let Some(p) = e.meta(|m| m.profile.as_ref()) else { continue };
        if !p.security_boundary {
            notes.push(format!(
                "{name}: profile {}: {}: namespaces only, with every capability of isobench's root (it can write the host's /proc/sys, mount its disks); it measures what namespaces alone cost, not a container anyone should deploy",
                p.name,
                p.note.as_deref().unwrap_or("not a security boundary")
            ));
        }
        if let Some(sc) = &p.seccomp {
            let length = sc
                .bpf_instructions
                .map_or_else(|| format!("compiled by {}", sc.compiled_by.as_deref().unwrap_or("the runtime")), |n| format!("{n} BPF instructions"));
            notes.push(format!(
                "{name}: profile {}: every system call runs the seccomp filter of {} ({length}) before the kernel handles it",
                p.name,
                sc.profile.display()
            ));
        }
    }
    notes
}

/// A folder of several runs (`isobench run --append`) or of a run that did
/// not finish: the reader must know which measurements belong together.
fn runs_notes(run: &RunRecord) -> Vec<String> {
    let mut notes = Vec::new();
    let appended: Vec<String> = run
        .appended()
        .map(|p| format!("{} (started {}{})", p.run_id, p.started_utc, p.hostname.as_ref().map(|h| format!(" on {h}")).unwrap_or_default()))
        .collect();
    if !appended.is_empty() {
        let first = run
            .runs
            .iter()
            .find(|p| !p.appended)
            .map(|p| format!("{} (started {})", p.run_id, p.started_utc))
            .unwrap_or_else(|| "an earlier run".into());
        notes.push(format!(
            "this folder holds {} runs: {first}, then appended with --append: {}; each measurement names its run (run_id in measurements.json), and the host facts above are the first run's",
            appended.len() + 1,
            appended.join(", ")
        ));
    }
    if run.in_progress {
        notes.push("the last run into this folder did not finish (it was killed part-way, or is still running): what it measured may not match the rest; compare and merge refuse this folder without --allow-incomplete".into());
    }
    notes
}

/// The list of caveats (nothing when there are none).
pub struct Caveats;

impl Section for Caveats {
    fn markdown(&self, cx: &Context<'_>) -> Result<String, ReportError> {
        let run = cx.run;
        let ms = cx.measurements;
        let mut notes = interference_notes(ms);
        notes.extend(startup_interference_notes(cx.dir)?);
        notes.extend(cx.warnings.iter().cloned());
        if run.interrupted {
            let by = match run.interrupted_by.as_deref() {
                Some("SIGINT") => " by SIGINT (Ctrl-C)".to_string(),
                Some(signal) => format!(" by {signal}"),
                None => String::new(),
            };
            notes.push(format!("the run was interrupted{by}: only what finished before is here; missing columns were never measured"));
        }
        notes.extend(runs_notes(run));
        for (name, e) in &run.environments {
            if let Some(reason) = &e.skipped {
                notes.push(format!("{name}: skipped: {reason}"));
            }
        }
        if ms.iter().any(|m| m.env_label.contains("TCG")) {
            notes.push(
                "the vm ran under TCG: QEMU emulated the CPU, so its column measures emulation, not a hypervisor; \
                 its ratios are labelled \"emulated (TCG)\" and must not be read as KVM overhead"
                    .into(),
            );
            notes.push(KVM_EXPECTATION.into());
        }
        for (name, e) in &run.environments {
            if let Some(w) = e.meta(|m| m.warning.as_ref()) {
                notes.push(format!("{name}: {w}"));
            }
            if let Some(cs) = e.agent.as_ref().and_then(|a| a.clocksource.as_ref()) {
                if !VDSO_CLOCKSOURCES.contains(&cs.as_str()) {
                    notes.push(format!(
                        "{name}: clocksource {cs} has no vDSO path, so syscall.clock_gettime there is a real system call and every in-environment timing pays it"
                    ));
                }
            }
        }
        notes.extend(profile_notes(run));
        for (name, e) in &run.environments {
            if let Some(reason) = &e.boundary_not_measured {
                notes.push(format!("{name}: `net.*.boundary` not measured: {reason}"));
            }
            for (metric, reason) in &e.not_supported {
                notes.push(format!("{name}: {metric}: {reason}"));
            }
            if let Some(note) = e.meta(|m| m.other.get("platform")).and_then(gvisor_note) {
                notes.push(format!("{}: {note}", e.label.as_deref().unwrap_or(name)));
            }
            if e.boundary.as_ref().and_then(|b| b.path.as_deref()) == Some("slirp") {
                notes.push(format!(
                    "{name}: the `net.*.boundary` figures went through QEMU's user-mode networking (slirp: without root, or --vm-net user), a userspace TCP/IP stack: \
                     a different data path from a tap device, not comparable with a tap run"
                ));
            }
        }
        // A merged folder's inputs' too, under their column names.
        for (name, e) in run.columns_environments() {
            for (metric, h) in &e.host_timed {
                notes.push(format!(
                    "{name}: {metric}: timed by the host (a mean per operation over {} operations, no percentiles{}): {}",
                    h.operations,
                    if h.interference_mark().is_empty() { "" } else { "; under interference ⚠" },
                    h.refused
                ));
            }
        }
        notes.extend(pinning_notes(run));
        if ms.iter().any(|m| m.truncated) {
            notes.push("some loops hit their time bound before their iteration count (marked †); their n is smaller".into());
        }
        if let Some(host) = &run.host {
            if let Some(g) = &host.governor {
                if g != "performance" {
                    notes.push(format!(
                        "the CPU frequency governor is {g:?}, not \"performance\": frequency changes add noise (cpupower frequency-set -g performance)"
                    ));
                }
            }
            if let Some(note) = frequency_caveat(host.governor.as_deref(), host.boost) {
                notes.push(note);
            }
            if let Some(note) = host.cpuid_ns.and_then(cpuid_caveat) {
                notes.push(note);
            }
            let (load, cpus) = (host.load_avg_1m, host.cpus as f64);
            if load > 0.5 * cpus {
                notes.push(format!("the machine was busy at start (load average {load:.2} on {cpus} CPUs): expect noise"));
            }
        }
        let mut o = String::new();
        if !notes.is_empty() {
            let _ = writeln!(o, "**Caveats**\n");
            for n in &notes {
                let _ = writeln!(o, "- {n}");
            }
            o.push('\n');
        }
        Ok(o)
    }
}

/// The mark of a table row or cell measured under interference.
pub const INTERFERENCE_MARK: &str = "⚠";

/// [`INTERFERENCE_MARK`] with a leading space for a flagged measurement,
/// else nothing.
pub fn interference_mark(m: &Measurement) -> &'static str {
    if m.interference.as_ref().is_some_and(|i| i.flagged()) {
        " ⚠"
    } else {
        ""
    }
}

/// Caveats from the measurements' interference records: how many were
/// taken while the machine was busy outside the run or had time stolen (the
/// worst of each named), and each other isobench run they overlapped.
fn interference_notes(ms: &[Measurement]) -> Vec<String> {
    let recorded: Vec<(&Measurement, &crate::collect::Interference)> = ms.iter().filter_map(|m| m.interference.as_ref().map(|i| (m, i))).collect();
    let mut notes = Vec::new();
    let worst = |pick: &dyn Fn(&crate::collect::Interference) -> Option<f64>| {
        let hits: Vec<(&Measurement, f64)> = recorded.iter().filter_map(|(m, i)| pick(i).map(|v| (*m, v))).collect();
        let top = hits.iter().copied().max_by(|a, b| a.1.total_cmp(&b.1));
        (hits.len(), top)
    };
    // The worst is the one surely busiest: the highest figure less its rounding.
    let (busy, top) = worst(&|i| i.busy().then(|| i.outside_cpus() - i.quantization_cpus()));
    if let Some((m, _)) = top {
        let i = m.interference.as_ref().expect("a recorded measurement");
        notes.push(format!(
            "{INTERFERENCE_MARK} interference: {busy} of {} measurements were taken while the machine spent more than {INTERFERENCE_CPUS:.2} CPU \
             outside this run beyond the counters' rounding (the most: {:.2} ± {:.2} CPUs during {} {}): another program competed for the CPUs, \
             so those figures may be slower than this machine's; they are marked {INTERFERENCE_MARK}",
            recorded.len(),
            i.outside_cpus(),
            i.quantization_cpus(),
            m.env_label,
            m.metric.name
        ));
    }
    let (stolen, top) = worst(&|i| i.stolen().then(|| i.steal_cpus()));
    if let Some((m, cpus)) = top {
        notes.push(format!(
            "{INTERFERENCE_MARK} steal: during {stolen} of {} measurements the hypervisor took more than {STEAL_CPUS:.2} CPU from this machine \
             (up to {cpus:.2} CPUs, during {} {}): every stolen tick lengthens what was being timed; marked {INTERFERENCE_MARK}",
            recorded.len(),
            m.env_label,
            m.metric.name
        ));
    }
    let mut others: BTreeMap<(u64, i32), (String, usize)> = BTreeMap::new();
    for (_, i) in &recorded {
        for o in &i.concurrent_runs {
            others.entry((o.started_ms, o.pid)).or_insert_with(|| (o.describe(), 0)).1 += 1;
        }
    }
    for (what, n) in others.values() {
        notes.push(format!(
            "{INTERFERENCE_MARK} measured while {what} ran: {n} of {} measurements overlapped it, and two benchmarks on one machine \
             slow each other; marked {INTERFERENCE_MARK}",
            recorded.len()
        ));
    }
    notes
}

/// Caveats for `isobench startup` records of the folder that ran under
/// interference.
fn startup_interference_notes(dir: &RunDir) -> Result<Vec<String>, ReportError> {
    let mut notes = Vec::new();
    for noop in Noop::ALL {
        for (what, run) in [("isobench startup", dir.startup(noop)?), ("isobench startup --per-namespace", dir.startup_per_namespace(noop)?)] {
            if let Some(i) = run.as_ref().and_then(|r| r.interference.as_ref()).filter(|i| i.flagged()) {
                notes.push(format!("{INTERFERENCE_MARK} {what} (--noop {noop}) ran under interference: {}", i.reasons().join("; ")));
            }
        }
    }
    Ok(notes)
}

/// Caveats from the environments' pinning records: where `split` was asked
/// for a two-party metric but `same` was applied (one allowed CPU), and that
/// `none` may give bimodal figures.
fn pinning_notes(run: &RunRecord) -> Vec<String> {
    let mut notes = Vec::new();
    if run.parameters.as_ref().and_then(|p| p.pin) == Some(PinMode::None) {
        notes.push(
            "CPU pinning was off (--pin none): a round trip's two ends landed on one CPU or two as the scheduler chose, \
             so `ipc.*` and `net.*` figures may be a bimodal mix of both"
                .into(),
        );
    }
    for (name, e) in &run.environments {
        let fell_back: Vec<&str> = e
            .pinning
            .iter()
            .filter(|(metric, p)| {
                isobench_workloads::catalog::lookup(metric).is_some_and(|m| m.two_party())
                    && p.requested == PinMode::Split
                    && p.applied == PinMode::Same
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
/// CPUIDs add at least [`START_CPUID_CAVEAT_US`].
pub fn cpuid_caveat(ns: f64) -> Option<String> {
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

/// What gVisor's user-space kernel intercepts on the platform that ran
/// (runsc's `metadata.platform`), and why the other platforms did not run.
fn gvisor_note(platform: &serde_json::Value) -> Option<String> {
    let name = platform.get("platform")?.as_str()?;
    let intercepts = platform.get("intercepts")?.as_str()?;
    let mut note = format!(
        "gVisor on its {name} platform: {intercepts}. Its `syscall.*`, `ipc.*` and `spawn.*` figures are the Sentry's implementation plus that trap, \
         not the host kernel's; its `net.*` go through gVisor's own TCP/IP stack (netstack)"
    );
    if let Some(others) = platform.get("not_taken").and_then(|o| o.as_object()).filter(|o| !o.is_empty()) {
        let list: Vec<String> = others.iter().map(|(p, why)| format!("{p}: {}", why.as_str().unwrap_or("?"))).collect();
        note.push_str(&format!(". Not run here: {}", list.join("; ")));
    }
    Some(note)
}

/// What the run cannot say about CPU frequency: a governor or a boost
/// state the host does not expose (a guest without cpufreq, a driver
/// without a boost switch) may still move the clock under the figures.
fn frequency_caveat(governor: Option<&str>, boost: Option<bool>) -> Option<String> {
    let unknown: Vec<&str> = [(governor.is_none(), "the CPU frequency governor"), (boost.is_none(), "the boost (turbo) state")]
        .into_iter()
        .filter_map(|(missing, what)| missing.then_some(what))
        .collect();
    (!unknown.is_empty()).then(|| {
        format!(
            "{} {} not exposed to isobench: the figures may include frequency scaling (a CPU that changes its clock between or within measurements)",
            unknown.join(" and "),
            if unknown.len() == 1 { "is" } else { "are" }
        )
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_unknown_governor_or_boost_state_is_a_caveat_about_frequency_scaling() {
        use super::frequency_caveat;
        assert_eq!(frequency_caveat(Some("performance"), Some(false)), None);
        assert_eq!(frequency_caveat(Some("schedutil"), Some(true)), None, "known, and the governor has its own caveat");
        let both = frequency_caveat(None, None).unwrap();
        assert!(both.starts_with("the CPU frequency governor and the boost (turbo) state are not exposed"), "{both}");
        assert!(both.contains("may include frequency scaling"), "{both}");
        let boost = frequency_caveat(Some("performance"), None).unwrap();
        assert!(boost.starts_with("the boost (turbo) state is not exposed") && !boost.contains("governor"), "{boost}");
        let governor = frequency_caveat(None, Some(false)).unwrap();
        assert!(governor.starts_with("the CPU frequency governor is not exposed") && !governor.contains("boost"), "{governor}");
    }

    use super::*;

    #[test]
    fn gvisor_says_what_its_platform_intercepts_and_why_not_the_others() {
        let platform = serde_json::json!({
            "platform": "ptrace",
            "intercepts": "every system call and page fault of the sandboxed processes stops them under ptrace(2)",
            "not_taken": { "kvm": "no exit within 15.00 s: given up, its sandbox killed", "systrap": "runsc refused it: unknown platform: systrap (exit status: 128)" },
        });
        let note = gvisor_note(&platform).unwrap();
        assert!(note.starts_with("gVisor on its ptrace platform: every system call and page fault"), "{note}");
        assert!(note.ends_with("Not run here: kvm: no exit within 15.00 s: given up, its sandbox killed; systrap: runsc refused it: unknown platform: systrap (exit status: 128)"), "{note}");
        assert_eq!(gvisor_note(&serde_json::json!({ "accel": "tcg" })), None, "not a runsc column");
    }

    #[test]
    fn a_split_that_fell_back_to_same_is_a_caveat() {
        let run: RunRecord = serde_json::from_value(serde_json::json!({
            "parameters": { "pin": "split" },
            "environments": {
                "native": { "pinning": { "ipc.pipe_rtt": { "requested": "split", "applied": "split", "cpus": [0, 1] } } },
                "vm": { "pinning": {
                    "ipc.pipe_rtt": { "requested": "split", "applied": "same", "cpus": [0] },
                    "syscall.getpid": { "requested": "split", "applied": "same", "cpus": [0] },
                } },
            },
        }))
        .unwrap();
        let notes = pinning_notes(&run);
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].starts_with("vm: --pin split could not be applied to ipc.pipe_rtt:"), "{notes:?}");
        assert!(!notes[0].contains("syscall.getpid"), "a one-party metric has nothing to split");
        let d = tempfile::tempdir().unwrap();
        let dir = crate::results::RunDir::at(d.path()).unwrap();
        let md = super::super::markdown(&Context { dir: &dir, run: &run, measurements: &[], plots: &[], warnings: &[] }).unwrap();
        assert!(md.contains("| CPU pinning (`ipc.*`, `net.*`) | split: the measuring thread on one CPU"), "{md}");
        assert!(md.contains("- vm: --pin split could not be applied"), "{md}");
        let none: RunRecord = serde_json::from_value(serde_json::json!({ "parameters": { "pin": "none" } })).unwrap();
        assert!(pinning_notes(&none)[0].contains("bimodal"));
    }

    #[test]
    fn the_cpuid_caveat_needs_an_expensive_cpuid() {
        assert_eq!(cpuid_caveat(300.0), None, "68 × 0.3 µs is noise next to a start");
        let c = cpuid_caveat(12_300.0).unwrap();
        assert!(c.contains("12.3 µs") && c.contains("≈0.84 ms") && c.contains("--noop nolibc"), "{c}");
    }
}
