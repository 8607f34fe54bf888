//! "How many fit" (`isobench density`, density.json): memory per instance
//! beyond the agent's own and instances per GiB, the start storms (latency
//! p50/p99 and throughput per concurrency, failures with their errors), the
//! idle cost, the goals as rows, and published figures beside the
//! measured ones with their hardware and accelerator named.

use std::fmt::Write;

use crate::report::format::num;
use crate::report::ReportError;
use crate::results::density::{DensityEnv, DensityRun, PerGibBasis};

use super::{Context, Section};

/// The section.
pub struct Density;

impl Section for Density {
    fn markdown(&self, cx: &Context<'_>) -> Result<String, ReportError> {
        let Some(run) = cx.dir.density()? else { return Ok(String::new()) };
        let mut o = table(&run);
        for stem in [DENSITY_LATENCY_PLOT, DENSITY_THROUGHPUT_PLOT] {
            if let Some(svg) = cx.svg(stem) {
                let _ = writeln!(o, "![{stem}]({})\n", svg.display());
            }
        }
        Ok(o)
    }
}

/// The start latency chart's file stem.
pub const DENSITY_LATENCY_PLOT: &str = "density-start-latency";
/// The throughput chart's file stem.
pub const DENSITY_THROUGHPUT_PLOT: &str = "density-throughput";

/// The concurrency at which the start-rate goal compares.
pub const GOAL_CONCURRENCY: u32 = 2;
/// The start-rate goal: isobench's launcher over the fastest peer at C=2.
pub const GOAL_RATE_RATIO: f64 = 1.5;
/// The memory goal: isobench's container beyond the agent's own, MiB per instance.
pub const GOAL_BEYOND_AGENT_MIB: f64 = 1.0;

/// The peers the start-rate goal compares with.
const PEERS: [&str; 5] = ["runc", "crun", "bwrap", "unshare", "runsc"];

/// A figure published by another project, shown beside the measured one.
pub struct Published {
    pub what: &'static str,
    pub figure: &'static str,
    pub source: &'static str,
    pub hardware: &'static str,
}

/// The published figures the report stands beside the measured ones. Only
/// figures whose source states them are given; a method without a figure
/// says so.
pub const PUBLISHED: [Published; 5] = [
    Published {
        what: "VMM memory overhead per microVM",
        figure: "≤ 5 MiB",
        source: "Firecracker SPECIFICATION.md",
        hardware: "Firecracker's CI hosts, KVM (hardware virtualization)",
    },
    Published {
        what: "start rate per host",
        figure: "up to 150 microVMs/s",
        source: "Agache et al., Firecracker, NSDI 2020",
        hardware: "a bare-metal EC2 host, KVM (hardware virtualization)",
    },
    Published {
        what: "start latency at 50 concurrent starts",
        figure: "p99 146 ms",
        source: "Agache et al., Firecracker, NSDI 2020",
        hardware: "a bare-metal EC2 host, KVM (hardware virtualization)",
    },
    Published {
        what: "memory per sandbox",
        figure: "method only: the fall in MemAvailable divided by the containers (no figure quoted here)",
        source: "gVisor's performance guide",
        hardware: "runsc on gVisor's own benchmark hosts",
    },
    Published {
        what: "memory footprint per pod",
        figure: "method only: PSS of the runtime's processes (no figure quoted here)",
        source: "Kata Containers' density metrics",
        hardware: "Kata's metrics CI, KVM (hardware virtualization)",
    },
];

fn mib(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".into(), |v| format!("{} MiB", num(v)))
}

fn signed_mib(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".into(), |v| format!("{}{} MiB", if v >= 0.0 { "+" } else { "−" }, num(v.abs())))
}

/// The section's text, as `isobench density` prints it too.
pub fn table(run: &DensityRun) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "## How many fit: memory per instance, start storms, idle cost\n");
    let ksm = match run.ksm.run {
        Some(0) => "KSM stopped (`/sys/kernel/mm/ksm/run` = 0): no page was merged".to_string(),
        Some(r) => format!("KSM run = {r} ({} pages shared): merged pages lower PSS and the MemAvailable fall", run.ksm.pages_sharing.unwrap_or(0)),
        None => "no KSM on this kernel".to_string(),
    };
    let _ = writeln!(
        o,
        "`isobench density`: per environment, one storm of N starts per concurrency C; then the N instances idle (the agent waiting) and measured from the host. \
         Memory: {}. Per instance is the mean over the instances of a storm, then the median over the storms; \"beyond the agent\" subtracts the native agent's \
         own figure at the same N (the payload), so what remains is what the isolation adds. The MemAvailable fall holds kernel memory PSS cannot see \
         (namespaces, cgroups, page tables) but also whatever else the machine did meanwhile: the rise when the instances stopped is shown beside it, and \
         the two apart are its noise. Instances per GiB: 1024 MiB over the larger of PSS and the fall, or over PSS where the fall is within its noise (kernel memory then unseen). Idle CPU: {}, over {} ms. {ksm}; isobench changes no \
         host setting. Safety margin: no start that would leave under {} MiB of MemAvailable.\n",
        run.memory_source, run.cpu_source, run.idle_window_ms, run.min_available_mib
    );
    let _ = writeln!(
        o,
        "| environment | instances | PSS / instance | USS / instance | MemAvailable fall / instance (rise when stopped) | beyond the agent: PSS | beyond the agent: fall | instances per GiB | idle CPU per instance |"
    );
    let _ = writeln!(o, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for e in &run.envs {
        let n = e.storms.iter().filter_map(|s| s.memory.as_ref()).map(|m| m.instances).max().unwrap_or(0);
        let rise = e.storms.iter().filter_map(|s| s.memory.as_ref()?.rise_mib()).collect::<Vec<_>>();
        let rise = rise.get(rise.len() / 2).copied();
        let base = e.env == "native";
        let _ = writeln!(
            o,
            "| {} | {n} | {} | {} | {} ({}) | {} | {} | {} | {} |",
            e.label,
            mib(e.pss_mib()),
            mib(e.uss_mib()),
            signed_mib(e.fall_mib()),
            signed_mib(rise),
            if base { "(the baseline)".into() } else { signed_mib(run.pss_beyond_agent_mib(&e.env)) },
            if base { "(the baseline)".into() } else { signed_mib(run.fall_beyond_agent_mib(&e.env)) },
            run.per_gib(&e.env).map_or_else(
                || "n/a".into(),
                |(v, basis)| match basis {
                    PerGibBasis::Fall => format!("{v:.0} (fall)"),
                    PerGibBasis::Pss | PerGibBasis::PssOnly => format!("{v:.0} (PSS)"),
                }
            ),
            e.idle_us_per_s().map_or_else(|| "n/a".into(), |v| format!("{} µs/s", num(v))),
        );
    }
    let _ = writeln!(o);
    for e in run.envs.iter().filter(|e| e.vm.is_some()) {
        let vm = e.vm.as_ref().expect("filtered");
        let kib = |v: Option<u64>| v.map_or_else(|| "not found".into(), |k| format!("{} MiB", num(k as f64 / 1024.0)));
        let _ = writeln!(
            o,
            "{}: guest RAM {} MiB (resident {}{}); {}. Each guest start gets an environment of its own (its own tap or forwarded ports), prepared before the start is asked: outside its latency, inside the storm's time.\n",
            e.label,
            vm.guest_ram_mib,
            kib(vm.guest_ram_resident_kib),
            vm.guest_view.as_ref().map_or_else(String::new, |g| format!(
                "; inside, at agent-ready: MemTotal {} MiB, {} MiB in use by the guest's kernel and agent (MemTotal − MemAvailable)",
                num(g.mem_total_kib as f64 / 1024.0),
                num(g.mem_total_kib.saturating_sub(g.mem_available_kib) as f64 / 1024.0)
            )),
            match vm.accelerator.as_str() {
                "tcg" => format!(
                    "TCG translation cache (QEMU's default size, as every vm measurement runs): reserved {}, resident {}; \
                     emulated (TCG): QEMU translates the guest's code, no hypervisor runs it",
                    kib(vm.tcg_cache_reserved_kib),
                    kib(vm.tcg_cache_resident_kib)
                ),
                a => format!("accelerator {a}: no translation cache"),
            }
        );
    }
    storms(&mut o, run);
    goals(&mut o, run);
    published(&mut o, run);
    if !run.skipped.is_empty() {
        let _ = writeln!(o, "Not measured here: {}.\n", run.skipped.join("; "));
    }
    if run.interrupted {
        let _ = writeln!(o, "The run was interrupted: only the storms above were measured.\n");
    }
    o
}

fn storms(o: &mut String, run: &DensityRun) {
    let _ = writeln!(
        o,
        "Start storms: each start's latency is `env.start`'s interval (start asked → the agent's `Ready` read by the host), into an hdrhistogram; \
         \"all ready\" runs from the storm's first start asked to its last instance ready; throughput is ready instances over that time. A failed start \
         is counted with its error and the storm goes on.\n"
    );
    let _ = writeln!(o, "| environment | C | asked | ready | failed | p50 | p99 | max | all ready | instances/s |");
    let _ = writeln!(o, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let ms = |v: Option<f64>| v.map_or_else(|| "n/a".into(), |v| format!("{} ms", num(v)));
    for e in &run.envs {
        for s in &e.storms {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} s | {} |",
                e.label,
                s.concurrency,
                s.requested,
                s.ready,
                s.failed(),
                ms(s.latency_ms(0.5)),
                ms(s.latency_ms(0.99)),
                ms(s.latency_ms(1.0)),
                num(s.all_ready_ns as f64 / 1e9),
                s.throughput_per_s().map_or_else(|| "n/a".into(), num)
            );
        }
    }
    let _ = writeln!(o);
    for e in &run.envs {
        for s in &e.storms {
            for f in &s.failures {
                let _ = writeln!(o, "- {} C={}: {} start(s) failed: {}", e.label, s.concurrency, f.count, f.error);
            }
            if let Some(why) = &s.stopped {
                let _ = writeln!(o, "- {} C={}: stopped after {} ready: {why}", e.label, s.concurrency, s.ready);
            }
        }
    }
    if run.envs.iter().flat_map(|e| &e.storms).any(|s| !s.failures.is_empty() || s.stopped.is_some()) {
        let _ = writeln!(o);
    }
}

fn rate_at(e: &DensityEnv, c: u32) -> Option<f64> {
    e.storm_at(c)?.throughput_per_s()
}

fn goals(o: &mut String, run: &DensityRun) {
    let _ = writeln!(o, "| goal | measured | verdict |");
    let _ = writeln!(o, "|---|---|---|");
    let ours = run.env("container").and_then(|e| rate_at(e, GOAL_CONCURRENCY).map(|r| (e.label.as_str(), r)));
    let fastest = run
        .envs
        .iter()
        .filter(|e| PEERS.contains(&e.env.as_str()))
        .filter_map(|e| rate_at(e, GOAL_CONCURRENCY).map(|r| (e.label.as_str(), r)))
        .max_by(|a, b| a.1.total_cmp(&b.1));
    let (measured, verdict) = match (ours, fastest) {
        (Some((l, r)), Some((pl, pr))) if pr > 0.0 => (
            format!("{l}: {} /s; fastest peer {pl}: {} /s; {:.2}×", num(r), num(pr), r / pr),
            if r / pr >= GOAL_RATE_RATIO { "met" } else { "not met" }.to_string(),
        ),
        _ => ("n/a".into(), "not measured (needs the container and a peer at C=2)".into()),
    };
    let _ =
        writeln!(o, "| isobench's start rate ≥ {GOAL_RATE_RATIO}× the fastest peer's at C={GOAL_CONCURRENCY} (same run) | {measured} | {verdict} |");
    let noise = ["native", "container"].iter().filter_map(|e| run.env(e)?.fall_noise_mib()).fold(0.0, f64::max);
    let (measured, verdict) = match (run.fall_beyond_agent_mib("container"), run.pss_beyond_agent_mib("container")) {
        (Some(fall), pss) => (
            format!(
                "MemAvailable fall {} per instance beyond the agent's, noise ±{} MiB (PSS {})",
                signed_mib(Some(fall)),
                num(noise),
                signed_mib(pss)
            ),
            if noise > GOAL_BEYOND_AGENT_MIB {
                format!(
                    "inconclusive: MemAvailable moved by up to {} MiB per instance between the fall and the rise (the machine's other use)",
                    num(noise)
                )
            } else if fall <= GOAL_BEYOND_AGENT_MIB {
                "met".into()
            } else {
                "not met".into()
            },
        ),
        _ => ("n/a".into(), "not measured (needs native and the container)".into()),
    };
    let _ = writeln!(
        o,
        "| isobench's container adds ≤ {} MiB per instance beyond the agent's own | {measured} | {verdict} |",
        num(GOAL_BEYOND_AGENT_MIB)
    );
    let _ = writeln!(o);
}

fn published(o: &mut String, run: &DensityRun) {
    let vm = run.env("vm");
    let vm_label = vm.map_or("vm", |e| e.label.as_str());
    let best_rate = vm.and_then(|e| e.storms.iter().filter_map(|s| s.throughput_per_s()).max_by(f64::total_cmp));
    let top_c = vm.and_then(|e| e.storms.iter().max_by_key(|s| s.concurrency));
    let here = |i: usize| -> String {
        match i {
            0 => vm.map_or("n/a".into(), |e| {
                let ram = e.vm.as_ref().and_then(|v| v.guest_ram_resident_kib).map(|k| k as f64 / 1024.0);
                let tcg = e.vm.as_ref().and_then(|v| v.tcg_cache_resident_kib).map(|k| k as f64 / 1024.0);
                match (e.pss_mib(), ram) {
                    (Some(pss), Some(ram)) => format!(
                        "{vm_label}: QEMU's PSS less the guest's resident RAM: {}{}",
                        mib(Some(pss - ram)),
                        tcg.map_or(String::new(), |t| format!(", of which the TCG translation cache {}", mib(Some(t))))
                    ),
                    _ => "n/a".into(),
                }
            }),
            1 => best_rate.map_or("n/a".into(), |r| format!("{vm_label}: {} /s at best", num(r))),
            2 => top_c.map_or("n/a".into(), |s| {
                format!("{vm_label}: p99 {} ms at {} concurrent", s.latency_ms(0.99).map_or("n/a".into(), num), s.concurrency)
            }),
            3 => run.env("runsc").map_or("n/a".into(), |e| format!("{}: {} per instance", e.label, signed_mib(e.fall_mib()))),
            _ => run.env("runsc").map_or("n/a".into(), |e| format!("{} (closest here: gVisor, not Kata): PSS {}", e.label, mib(e.pss_mib()))),
        }
    };
    let _ = writeln!(o, "Published figures beside this host's (the hardware and accelerator of each are named; a figure on other hardware is context, not a target):\n");
    let _ = writeln!(o, "| what | published | source | their hardware, accelerator | measured here |");
    let _ = writeln!(o, "|---|---|---|---|---|");
    for (i, p) in PUBLISHED.iter().enumerate() {
        let _ = writeln!(o, "| {} | {} | {} | {} | {} |", p.what, p.figure, p.source, p.hardware, here(i));
    }
    let _ = writeln!(o);
}
