//! The `isobench startup` sections: the side-by-side of isobench's launcher,
//! the floors and the peer runtimes (one per no-op run), what the static
//! no-op's own start adds (when both no-ops ran), and the per-namespace
//! breakdown; with the plain-text tables `isobench startup` prints, which
//! read the same numbers.

use crate::collect::host::{start_cpuid_us, GLIBC_START_CPUIDS, START_CPUID_CAVEAT_US};
use crate::env::EnvKind;
use crate::report::format::{cell, ms, ms_signed, ns_to_ms, times};
use crate::report::ReportError;
use crate::results::startup::{StartupRow, StartupRun};
use crate::workloads::Noop;

use super::{Context, Section};

/// What the isobench+cgroup column times.
pub const CGROUP_METHOD: &str = "isobench+cgroup times creating the container's groups (one per cgroup v1 hierarchy used, or one v2 group), \
placing the init in them before it execs, the container's run to its reaped exit, and reading the groups' usage and removing them \
(rmdir): the same interval as env.start's container, which ends when its cgroup is gone (`cleaned_up`). On v1 and hybrid hosts the \
groups are made while the init sets up its mounts and the init moves itself in (0 written to each hierarchy's tasks file), which \
the kernel does without its global cgroup_threadgroup_rwsem. On v2 the group is made first and the init is cloned into it \
(clone3 with CLONE_INTO_CGROUP, Linux 5.7, x86-64). Only where neither applies does isobench write the init's pid into cgroup.procs, \
which takes that rwsem for writing and, when no move happened for a while, first waits for an RCU grace period (several ms) unless \
the kernel was booted with cgroup_favordynmods=true or built with CONFIG_CGROUP_FAVOR_DYNMODS, or the cgroup2 is mounted with \
favordynmods; isobench does not change the host's settings.";

/// What the isobench+cgroup column timed in runs before its groups' removal
/// was in the timed region (`StartupRun::cgroup_removal_timed` false).
pub const CGROUP_METHOD_BEFORE: &str = "isobench+cgroup times creating the container's groups (one per cgroup v1 hierarchy used, or one v2 group), \
placing the init in them before it execs, and the container's run to its reaped exit. Removing the emptied groups (rmdir) and reading \
their usage happen after the timed region, before the next sample starts: nothing outlives the run. On v1 and hybrid hosts the \
groups are made while the init sets up its mounts and the init moves itself in (0 written to each hierarchy's tasks file), which \
the kernel does without its global cgroup_threadgroup_rwsem. On v2 the group is made first and the init is cloned into it \
(clone3 with CLONE_INTO_CGROUP, Linux 5.7, x86-64). Only where neither applies does isobench write the init's pid into cgroup.procs, \
which takes that rwsem for writing and, when no move happened for a while, first waits for an RCU grace period (several ms) unless \
the kernel was booted with cgroup_favordynmods=true or built with CONFIG_CGROUP_FAVOR_DYNMODS, or the cgroup2 is mounted with \
favordynmods; isobench does not change the host's settings.";

/// What the isobench-exec columns time.
pub const EXEC_METHOD: &str = "isobench-exec times a whole `isobench exec --no-cgroup -- /noop` process from its spawn to its reaped exit, \
as hyperfine -N would: the binary's own start (a Rust program several MB large; the row says how it was linked), its start-of-run sweep (in its \
main thread once the container has started; it reads the places only when an isobench process died without removing its owner entry), finding the cached rootfs, the launch and the container's exit; isobench-exec+cgroup adds exec's default \
cgroup, made and removed. unshare(1) is the tool `isobench exec` stands in for. What exec does beyond it: a read-only bind of the \
rootfs with a tmpfs /tmp, the /dev template, devpts, /dev/shm, a read-only /sys, pivot_root and the detach of the host's mounts, the \
host name, the loopback brought up, and a minimal init in front of the command (one more process, which starts the command as \
posix_spawn does, without a copy of memory). isobench-version times a whole `isobench --version` process: the binary's own start and \
exit, launching nothing, which every `isobench exec` pays first; when it alone exceeds the goal, no launcher inside this binary can \
meet it.";

/// The goal of issue #14 for `isobench exec` as a whole process: at most
/// this fraction of `unshare -pfmnuiC --mount-proc` running the same no-op.
pub const EXEC_GOAL: f64 = 0.8;

/// `## Container start: isobench's launcher beside the runtimes people
/// deploy`, once per no-op that has a run.
pub struct ContainerStart;

impl Section for ContainerStart {
    fn markdown(&self, cx: &Context<'_>) -> Result<String, ReportError> {
        let runs = Noop::ALL.into_iter().map(|noop| cx.dir.startup(noop)).collect::<Result<Vec<_>, _>>()?;
        let both = runs.iter().all(Option::is_some);
        let mut o = String::new();
        for run in runs.iter().flatten() {
            o.push_str(&format!(
                "\n## Container start: isobench's launcher beside the runtimes people deploy{}\n\nStart-to-exit of a no-op, interleaved rounds (A B C A B C …) so machine drift hits every column alike; {} rounds after {} warm-up.\n\n{}",
                noop_heading(run.noop, both),
                run.n,
                run.warmup,
                markdown(run)
            ));
        }
        Ok(o)
    }
}

/// `## What the no-op's own start adds`, when a run with each no-op is there.
pub struct NoopShare;

impl Section for NoopShare {
    fn markdown(&self, cx: &Context<'_>) -> Result<String, ReportError> {
        Ok(match (cx.dir.startup(Noop::Static)?, cx.dir.startup(Noop::Nolibc)?) {
            (Some(a), Some(b)) => noop_share(&a, &b),
            _ => String::new(),
        })
    }
}

/// `## Per-namespace start cost`, once per no-op that has a run, with its
/// chart.
pub struct PerNamespace;

impl Section for PerNamespace {
    fn markdown(&self, cx: &Context<'_>) -> Result<String, ReportError> {
        let runs = Noop::ALL.into_iter().map(|noop| cx.dir.startup_per_namespace(noop)).collect::<Result<Vec<_>, _>>()?;
        let both = runs.iter().all(Option::is_some);
        let mut o = String::new();
        for run in runs.iter().flatten() {
            o.push_str(&format!("\n## Per-namespace start cost{}\n\n{}\n", noop_heading(run.noop, both), per_namespace_markdown(run)));
            let stem = match run.noop {
                Noop::Static => "start-per-namespace",
                Noop::Nolibc => "start-per-namespace-nolibc",
            };
            if let Some(svg) = cx.svg(stem).and_then(|p| p.file_name()) {
                o.push_str(&format!("\n![per-namespace start cost, {} no-op](plots/{})\n", run.noop.as_str(), svg.to_string_lossy()));
            }
        }
        Ok(o)
    }
}

/// The heading suffix that tells the two no-ops' sections apart; the static
/// one is named only when the other is there too.
fn noop_heading(noop: Noop, both: bool) -> &'static str {
    match (noop, both) {
        (Noop::Static, false) => "",
        (Noop::Static, true) => " (static glibc no-op)",
        (Noop::Nolibc, _) => " (no-op without C library start-up)",
    }
}

/// `env`'s p50 over `base`'s as "1.23×", or `none` without both.
fn p50_ratio(run: &StartupRun, env: &str, base: &str, none: &str) -> String {
    run.ratio(env, base, 0.5).map_or(none.to_string(), times)
}

/// A run's table for report.md: one row per column with p50, p90 (ms) and
/// the p50 ratios to isobench's launcher and to the clone floors, then the
/// skipped columns and their reasons.
pub fn markdown(run: &StartupRun) -> String {
    let mut s = format!(
        "env.start: host-side time from starting a no-op isolated to its exit, {} interleaved rounds after {} warm-up (the columns in a new random order each round, so none always follows the same one); lower is better. The no-op: {}.\n\n",
        run.n,
        run.warmup,
        run.noop.describe()
    );
    s += "The two clone floors run their child in the harness's memory until it exits or execs (CLONE_VM|CLONE_VFORK, as \
          posix_spawn(3) does, and as isobench's launcher runs its child with CLONE_VM), so neither pays for a copy of the harness's \
          page tables; exec (host) is Rust's Command, which uses posix_spawn too. They are floors for the columns here only: the \
          harness process is larger than the agent whose spawn.fork_exit / spawn.fork_exec they resemble.\n\n";
    s += if run.cgroup_removal_timed { CGROUP_METHOD } else { CGROUP_METHOD_BEFORE };
    s += "\n\n| env | what runs | p50 ms | p90 ms | p50 / isobench | p50 / clone floor | p50 / clone+exec floor |\n|---|---|---:|---:|---:|---:|---:|\n";
    for r in &run.rows {
        s += &format!(
            "| {} | `{}` | {} | {} | {} | {} | {} |\n",
            r.label,
            cell(&without_run_paths(&r.command)),
            ms(ns_to_ms(r.quantile_ns(0.5))),
            ms(ns_to_ms(r.quantile_ns(0.9))),
            p50_ratio(run, &r.env, "isobench", "–"),
            p50_ratio(run, &r.env, "clone", "–"),
            p50_ratio(run, &r.env, "clone+exec", "–")
        );
    }
    for (env, why) in &run.skipped {
        s += &format!("\n- {env}: skipped: {why}");
    }
    if !run.skipped.is_empty() {
        s += "\n";
    }
    if let Some(note) = cpuid_note(run) {
        s += &format!("\nNote: {note}.\n");
    }
    s += &exec_markdown(run);
    s
}

/// The `isobench exec` rows beside unshare(1): each one's p50 over
/// unshare's with its 95 % interval, against [`EXEC_GOAL`]; empty without
/// both.
pub fn exec_markdown(run: &StartupRun) -> String {
    let rows: Vec<_> =
        ["isobench-exec", "isobench-exec+cgroup"].into_iter().filter_map(|env| Some((env, run.p50_ratio_ci(env, "unshare")?))).collect();
    if rows.is_empty() {
        return String::new();
    }
    let mut s = format!(
        "\n### `isobench exec` beside unshare(1), whole processes\n\n{EXEC_METHOD}\n\n| command | p50 ms | p50 / unshare (95 % CI) | goal ≤ {EXEC_GOAL}× |\n|---|---:|---:|---|\n"
    );
    for (env, (r, lo, hi)) in rows {
        let row = run.row(env).expect("a ratio has its row");
        s += &format!(
            "| {} | {} | {} ({}–{}) | {} |\n",
            what(row),
            ms(ns_to_ms(row.quantile_ns(0.5))),
            times(r),
            times(lo),
            times(hi),
            goal_verdict(lo, hi)
        );
    }
    if let (Some(v), Some((r, lo, hi))) = (run.row("isobench-version"), run.p50_ratio_ci("isobench-version", "unshare")) {
        s += &format!(
            "| {} (the binary's own start, nothing launched) | {} | {} ({}–{}) | {} |\n",
            what(v),
            ms(ns_to_ms(v.quantile_ns(0.5))),
            times(r),
            times(lo),
            times(hi),
            start_verdict(lo, hi)
        );
    }
    if let Some(u) = run.row("unshare") {
        s += &format!("| {} | {} | 1× | |\n", what(u), ms(ns_to_ms(u.quantile_ns(0.5))));
    }
    if let Some(floor) = start_and_launch(run) {
        s += &format!(
            "\nThe binary's own start (`isobench --version`) and the launch alone (the `isobench` column: the same launch from a process \
             already running) add up to {} of unshare's p50: {} before the exec's other work (the rootfs lookup, the sweep, the init, \
             its exit).\n",
            times(floor),
            if floor > EXEC_GOAL { "above the goal" } else { "within the goal" }
        );
    }
    s
}

/// (p50 of isobench-version + p50 of the in-process launcher) ÷ p50 of
/// unshare: what an exec cannot go below, as a multiple of unshare.
fn start_and_launch(run: &StartupRun) -> Option<f64> {
    let p50 = |env: &str| run.row(env).map(|r| r.quantile_ns(0.5) as f64);
    Some((p50("isobench-version")? + p50("isobench")?) / p50("unshare")?)
}

/// What the binary's own start ([`Column::IsobenchVersion`](crate::startup::Column)) leaves of
/// [`EXEC_GOAL`]: an exec is that start plus its own work, so a start whose
/// interval lies above the goal rules the goal out for this binary.
fn start_verdict(lo: f64, hi: f64) -> &'static str {
    if lo > EXEC_GOAL {
        "above the goal by itself: no exec of this binary can meet it"
    } else if hi > EXEC_GOAL {
        "within noise of the goal by itself: no room left for the launch"
    } else {
        "below the goal: the rest is the exec's own work"
    }
}

/// A row's command as code, or its name when it has none; with what its
/// label adds to its name (the isobench columns: the binary's version and
/// linkage).
fn what(row: &StartupRow) -> String {
    let extra = row.label.strip_prefix(row.env.as_str()).map(str::trim).filter(|s| !s.is_empty());
    match (row.command.is_empty(), extra) {
        (true, _) => row.env.clone(),
        (false, None) => format!("`{}`", cell(&without_run_paths(&row.command))),
        (false, Some(extra)) => format!("`{}` {}", cell(&without_run_paths(&row.command)), cell(extra)),
    }
}

/// A command as a reader can use it: the run's own temporary folders
/// (`/tmp/isobench-<pid>-runc-XXXX/state`), gone once it ended, become
/// `<runc dir>/state`, and pid-stamped names (`isobench-18592-runc-1`) lose
/// their pid (`isobench-<pid>-runc-1`).
pub fn without_run_paths(command: &str) -> String {
    let word = |w: &str| -> String {
        let mut out = String::new();
        let mut rest = w;
        // A path whose segment is pid-stamped: everything up to that segment
        // becomes its name.
        if let Some(i) = rest.find("/isobench-") {
            let seg_end = rest[i + 1..].find('/').map_or(rest.len(), |j| i + 1 + j);
            if let Some((_, what)) = crate::leftovers::owner(&rest[i + 1..seg_end]) {
                let kind = what.split('-').next().unwrap_or(what);
                out.push_str(&format!("<{kind} dir>"));
                rest = &rest[seg_end..];
                return out + rest;
            }
        }
        match crate::leftovers::owner(rest) {
            Some((_, what)) => format!("isobench-<pid>-{what}"),
            None => rest.to_string(),
        }
    };
    command.split(' ').map(word).collect::<Vec<_>>().join(" ")
}

/// Whether an interval of a ratio meets [`EXEC_GOAL`].
fn goal_verdict(lo: f64, hi: f64) -> &'static str {
    if hi <= EXEC_GOAL {
        "met"
    } else if lo > EXEC_GOAL {
        "not met"
    } else {
        "within noise of it"
    }
}

/// The table `isobench startup` prints.
pub fn table(run: &StartupRun) -> String {
    let mut s = format!("env.start: start to exit of a no-op, {} interleaved rounds in random order (+{} warm-up)\n", run.n, run.warmup);
    s += &format!("no-op: {}\n", run.noop.describe());
    if let Some(ns) = &run.namespaces {
        s += &format!("namespaces: {ns} (unshare: pid,mnt,net,uts,ipc,cgroup)\n");
    }
    s += &format!("{:<26} {:>9} {:>9} {:>12} {:>9} {:>14}\n", "env", "p50 ms", "p90 ms", "vs isobench", "vs clone", "vs clone+exec");
    for r in &run.rows {
        s += &format!(
            "{:<26} {:>9} {:>9} {:>12} {:>9} {:>14}\n",
            r.label,
            ms(ns_to_ms(r.quantile_ns(0.5))),
            ms(ns_to_ms(r.quantile_ns(0.9))),
            p50_ratio(run, &r.env, "isobench", "-"),
            p50_ratio(run, &r.env, "clone", "-"),
            p50_ratio(run, &r.env, "clone+exec", "-")
        );
    }
    for (env, why) in &run.skipped {
        s += &format!("{env}: skipped: {why}\n");
    }
    for env in ["isobench-exec", "isobench-exec+cgroup"] {
        if let Some((r, lo, hi)) = run.p50_ratio_ci(env, "unshare") {
            s += &format!("{env} / unshare: p50 {} (95% CI {}-{}), goal <= {EXEC_GOAL}x: {}\n", times(r), times(lo), times(hi), goal_verdict(lo, hi));
        }
    }
    if let Some((r, lo, hi)) = run.p50_ratio_ci("isobench-version", "unshare") {
        s += &format!(
            "isobench-version / unshare: p50 {} (95% CI {}-{}), the binary's own start: {}\n",
            times(r),
            times(lo),
            times(hi),
            start_verdict(lo, hi)
        );
    }
    if let Some(floor) = start_and_launch(run) {
        s += &format!("(isobench-version + isobench) / unshare: p50 {}, the start and the launch alone\n", times(floor));
    }
    if let Some(note) = cpuid_note(run) {
        s += &format!("note: {note}\n");
    }
    s
}

/// One line when this host's CPUID exits to a hypervisor and the run used
/// the static no-op, whose libc start-up then weighs on every column.
pub fn cpuid_note(run: &StartupRun) -> Option<String> {
    let ns = run.cpuid_ns.filter(|&ns| start_cpuid_us(ns) >= START_CPUID_CAVEAT_US && run.noop == Noop::Static)?;
    Some(format!(
        "CPUID costs {:.1} µs here (it exits to the hypervisor): the static no-op's {GLIBC_START_CPUIDS} CPUIDs add ≈{:.2} ms to \
         every column that execs it, which pulls every ratio towards 1 (the peers, glibc programs themselves, pay them in their \
         own start too, with either no-op); `--noop nolibc` measures without them",
        ns / 1e3,
        start_cpuid_us(ns) / 1e3
    ))
}

/// The peer column with the lowest p50 in `run`, if any ran.
pub fn fastest_peer(run: &StartupRun) -> Option<&StartupRow> {
    let peers: Vec<&str> = EnvKind::PEERS.iter().map(|k| k.as_str()).collect();
    run.rows.iter().filter(|r| peers.contains(&r.env.as_str())).min_by_key(|r| r.quantile_ns(0.5))
}

/// The side-by-side of a run with the static no-op and one with
/// `noop-nolibc` (two runs, one after the other, so drift between them is
/// not cancelled as it is within a run; the `clone` row, which execs
/// nothing, shows how large that drift was): each column's p50 with both,
/// their difference (what the static no-op's own start adds to that column),
/// and the launcher's ratios to the floor and to the fastest peer with each.
/// Runs with different namespaces are not compared: one line says so.
pub fn noop_share(with_static: &StartupRun, with_nolibc: &StartupRun) -> String {
    let mut s = String::from("\n## What the no-op's own start adds\n\n");
    if with_static.namespaces != with_nolibc.namespaces {
        let ns = |r: &StartupRun| r.namespaces.clone().unwrap_or_else(|| "not recorded".into());
        s += &format!(
            "Not compared: the two runs have different namespaces (static no-op: {}; noop-nolibc: {}). Run both with the same --ns.\n",
            ns(with_static),
            ns(with_nolibc)
        );
        return s;
    }
    let p50 = |r: &StartupRow| ns_to_ms(r.quantile_ns(0.5));
    s += "The same columns once with the static glibc `noop` and once with `noop-nolibc` (two runs, one after the other; the clone \
          floor execs nothing, so its difference is the drift between the runs). The difference is the static no-op's own start-up, \
          which every column pays alike; where CPUID exits to a hypervisor (`cpuid_ns` in run.json and startup.json) it can be most \
          of a start, and it pulls every ratio towards 1. The peers are themselves glibc programs (runc a Go one): their own start-up \
          is in their columns with either no-op, so their ratios to isobench, which starts from a running process, depend on the \
          host as much as on the isolation.\n\n\
          | env | p50 ms, static noop | p50 ms, noop-nolibc | difference ms |\n|---|---:|---:|---:|\n";
    for a in &with_static.rows {
        if let Some(b) = with_nolibc.row(&a.env) {
            s += &format!("| {} | {} | {} | {} |\n", a.label, ms(p50(a)), ms(p50(b)), ms_signed(p50(a) - p50(b)));
        }
    }
    let peer = |run: &StartupRun| {
        fastest_peer(run).and_then(|p| Some(format!("{} ({})", times(run.ratio(&p.env, "isobench", 0.5)?), p.label))).unwrap_or_else(|| "–".into())
    };
    s += "\n| ratio of p50s | static noop | noop-nolibc |\n|---|---:|---:|\n";
    s += &format!(
        "| isobench / clone+exec floor | {} | {} |\n",
        p50_ratio(with_static, "isobench", "clone+exec", "–"),
        p50_ratio(with_nolibc, "isobench", "clone+exec", "–")
    );
    s += &format!(
        "| isobench+cgroup / clone+exec floor | {} | {} |\n",
        p50_ratio(with_static, "isobench+cgroup", "clone+exec", "–"),
        p50_ratio(with_nolibc, "isobench+cgroup", "clone+exec", "–")
    );
    s += &format!("| fastest peer / isobench | {} | {} |\n", peer(with_static), peer(with_nolibc));
    s
}

/// One namespace set's start cost in a per-namespace run (ms).
struct NamespaceCost {
    label: String,
    p50: f64,
    p90: f64,
    /// 95 % confidence interval of the p50: distribution-free, the order
    /// statistics at ranks n/2 ± 1.96·√n/2, as `isobench compare` judges
    /// changes ([`crate::report::compare::median_ci`]).
    ci: (f64, f64),
    /// p50 − the `none` row's p50, and whether that is within noise (the two
    /// intervals overlap); `None` for the `none` row itself or without one.
    over_none: Option<(f64, bool)>,
}

/// One [`NamespaceCost`] per row, compared with the row `none`.
fn namespace_costs(run: &StartupRun) -> Vec<NamespaceCost> {
    let ci = |r: &StartupRow| {
        let (lo, hi) = r.median_ci_ns();
        (ns_to_ms(lo), ns_to_ms(hi))
    };
    let base = run.rows.iter().find(|r| r.label == "none").map(|r| (ns_to_ms(r.quantile_ns(0.5)), ci(r)));
    run.rows
        .iter()
        .map(|r| {
            let (p50, interval) = (ns_to_ms(r.quantile_ns(0.5)), ci(r));
            let over_none = base.filter(|_| r.label != "none").map(|(b, (blo, bhi))| (p50 - b, interval.0 <= bhi && blo <= interval.1));
            NamespaceCost { label: r.label.clone(), p50, p90: ns_to_ms(r.quantile_ns(0.9)), ci: interval, over_none }
        })
        .collect()
}

/// The per-namespace table for report.md: each set's p50/p90, the p50's
/// confidence interval and its cost over no namespace at all.
pub fn per_namespace_markdown(run: &StartupRun) -> String {
    let mut s = format!(
        "isobench's launcher starting a no-op with one namespace at a time; {} interleaved rounds in random order after {} warm-up. The no-op: {}.\n\n\
         | namespaces | p50 ms | p50 95 % CI | p90 ms | p50 − no namespace (ms) |\n|---|---:|---:|---:|---:|\n",
        run.n,
        run.warmup,
        run.noop.describe()
    );
    for NamespaceCost { label, p50, p90, ci: (lo, hi), over_none } in namespace_costs(run) {
        let delta = over_none.map_or("–".to_string(), |(d, noise)| format!("{}{}", ms_signed(d), if noise { " ≈" } else { "" }));
        s += &format!("| {label} | {} | {}–{} | {} | {delta} |\n", ms(p50), ms(lo), ms(hi), ms(p90));
    }
    s += "\n≈: within noise, the 95 % confidence intervals of this median and of no namespace's overlap (distribution-free, \
          from the order statistics at ranks n/2 ± 1.96·√n/2; with fewer than ~10 rounds an interval is the whole range).\n";
    for (what, why) in &run.skipped {
        s += &format!("\n- {what}: skipped: {why}");
    }
    s
}

/// The same as a plain table, as `isobench startup --per-namespace` prints
/// it.
pub fn per_namespace_table(run: &StartupRun) -> String {
    let mut s =
        format!("env.start per namespace: start to exit of a no-op, {} interleaved rounds in random order (+{} warm-up)\n", run.n, run.warmup);
    s += &format!("no-op: {}\n", run.noop.describe());
    s += &format!("{:<34} {:>9} {:>15} {:>9} {:>14}\n", "namespaces", "p50 ms", "p50 95% CI", "p90 ms", "Δ vs none (ms)");
    for NamespaceCost { label, p50, p90, ci: (lo, hi), over_none } in namespace_costs(run) {
        let delta = over_none.map_or("-".to_string(), |(d, noise)| format!("{}{}", ms_signed(d), if noise { " ~" } else { "  " }));
        s += &format!("{label:<34} {:>9} {:>15} {:>9} {delta:>14}\n", ms(p50), format!("{}-{}", ms(lo), ms(hi)), ms(p90));
    }
    s += "~: within noise (the two medians' 95% confidence intervals overlap; with fewer than ~10 rounds an interval is the whole range)\n";
    for (what, why) in &run.skipped {
        s += &format!("{what}: skipped: {why}\n");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(label: &str, samples_ns: Vec<u64>) -> StartupRow {
        StartupRow { env: label.into(), label: label.into(), command: String::new(), samples_ns, command_ns: Vec::new() }
    }

    /// 200 samples spread evenly over [base, base + 100 µs).
    fn spread(base: u64) -> Vec<u64> {
        (0..200).map(|i| base + i * 500).collect()
    }

    fn run_of(noop: Noop, namespaces: Option<&str>, rows: Vec<StartupRow>) -> StartupRun {
        StartupRun {
            n: 200,
            warmup: 3,
            namespaces: namespaces.map(str::to_string),
            noop,
            cpuid_ns: None,
            rows,
            cgroup_removal_timed: true,
            skipped: vec![],
            interference: None,
        }
    }

    #[test]
    fn per_namespace_deltas_say_when_they_are_within_noise() {
        let run = run_of(Noop::Static, None, vec![row("none", spread(1_000_000)), row("uts", spread(1_001_000)), row("net", spread(1_400_000))]);
        let rows = namespace_costs(&run);
        let delta = |label: &str| rows.iter().find(|r| r.label == label).unwrap().over_none.unwrap();
        assert!(rows[0].over_none.is_none(), "none is not compared with itself");
        assert!(delta("uts").1, "1 µs over a 100 µs spread is noise");
        let (d, noise) = delta("net");
        assert!(!noise && (d - 0.4).abs() < 0.001, "{d}");
        let table = per_namespace_table(&run);
        assert!(table.lines().any(|l| l.starts_with("uts") && l.trim_end().ends_with('~')), "{table}");
        assert!(table.lines().any(|l| l.starts_with("none") && l.trim_end().ends_with(" -")), "{table}");
        assert!(table.lines().any(|l| l.starts_with("net") && l.contains("+0.400") && !l.trim_end().ends_with('~')), "{table}");
        let md = per_namespace_markdown(&run);
        assert!(md.contains("| uts | 1.050 |") && md.contains(" ≈ |"), "{md}");
    }

    #[test]
    fn the_side_by_side_subtracts_per_column_and_refuses_other_namespaces() {
        let rows = |floor: u64, iso: u64, unshare: u64| {
            vec![
                row("clone+exec", spread(floor)),
                row("isobench", spread(iso)),
                StartupRow {
                    env: "unshare".into(),
                    label: "unshare".into(),
                    command: String::new(),
                    samples_ns: spread(unshare),
                    command_ns: Vec::new(),
                },
            ]
        };
        let a = run_of(Noop::Static, Some("user,pid"), rows(1_800_000, 2_200_000, 4_200_000));
        let b = run_of(Noop::Nolibc, Some("user,pid"), rows(800_000, 1_200_000, 3_200_000));
        let md = noop_share(&a, &b);
        // The p50 of each row is its base + 49.5 µs: every difference is 1 ms.
        let p50 = |base: u64| (base + 49_500) as f64 / 1e6;
        assert!(md.contains(&format!("| isobench | {:.3} | {:.3} | +1.000 |", p50(2_200_000), p50(1_200_000))), "{md}");
        assert!(md.contains(&format!("| clone+exec | {:.3} | {:.3} | +1.000 |", p50(1_800_000), p50(800_000))), "{md}");
        let ratio = |a: u64, b: u64| p50(a) / p50(b);
        assert!(
            md.contains(&format!("| isobench / clone+exec floor | {:.2}× | {:.2}× |", ratio(2_200_000, 1_800_000), ratio(1_200_000, 800_000))),
            "{md}"
        );
        assert!(
            md.contains(&format!(
                "| fastest peer / isobench | {:.2}× (unshare) | {:.2}× (unshare) |",
                ratio(4_200_000, 2_200_000),
                ratio(3_200_000, 1_200_000)
            )),
            "{md}"
        );
        let other = run_of(Noop::Nolibc, Some("pid"), rows(800_000, 1_200_000, 3_200_000));
        let md = noop_share(&a, &other);
        assert!(md.contains("Not compared") && !md.contains("| isobench |"), "{md}");
    }

    #[test]
    fn the_exec_rows_carry_their_ratio_to_unshare_and_the_goals_verdict() {
        let mut exec = row("isobench-exec", spread(1_500_000));
        exec.command = "isobench exec --no-cgroup -- /noop".into();
        let run = run_of(
            Noop::Static,
            Some("pid"),
            vec![exec, row("isobench-exec+cgroup", spread(4_000_000)), row("unshare", spread(2_000_000)), row("isobench", spread(900_000))],
        );
        let md = exec_markdown(&run);
        let p50 = |base: u64| (base + 49_500) as f64;
        assert!(md.contains(&format!("| `isobench exec --no-cgroup -- /noop` | 1.550 | {:.2}× (", p50(1_500_000) / p50(2_000_000))), "{md}");
        let line = |env: &str| md.lines().find(|l| l.starts_with("| ") && l.contains(env)).unwrap().to_string();
        assert!(line("--no-cgroup").ends_with("| met |"), "{md}");
        assert!(line("isobench-exec+cgroup").ends_with("| not met |"), "{md}");
        assert!(table(&run).contains("isobench-exec / unshare: p50 0.76×"), "{}", table(&run));
        let no_unshare = run_of(Noop::Static, None, vec![row("isobench-exec", spread(1_000_000))]);
        assert!(exec_markdown(&no_unshare).is_empty(), "no ratio without unshare's column");
        assert_eq!(goal_verdict(0.7, 0.9), "within noise of it");
    }

    #[test]
    fn the_binarys_own_start_says_whether_it_leaves_room_for_the_goal() {
        let mut version = row("isobench-version", spread(1_800_000));
        version.command = "isobench --version".into();
        let rows = |v: StartupRow| vec![row("isobench-exec", spread(5_000_000)), v, row("unshare", spread(2_000_000))];
        let run = run_of(Noop::Static, Some("pid"), rows(version.clone()));
        let md = exec_markdown(&run);
        let line = md.lines().find(|l| l.starts_with("| `isobench --version`")).unwrap_or_else(|| panic!("{md}"));
        let r = run.p50_ratio_ci("isobench-version", "unshare").unwrap().0;
        assert!((r - 1.85 / 2.05).abs() < 0.01, "{r}");
        assert!(line.starts_with("| `isobench --version` (the binary's own start, nothing launched) | 1.84"), "{md}");
        assert!(line.contains(&format!("| {r:.2}× (")), "{md}");
        assert!(line.ends_with("| above the goal by itself: no exec of this binary can meet it |"), "{md}");
        assert!(table(&run).contains(&format!("isobench-version / unshare: p50 {r:.2}×")), "{}", table(&run));
        version.samples_ns = spread(500_000);
        let md = exec_markdown(&run_of(Noop::Static, Some("pid"), rows(version)));
        assert!(md.contains("| below the goal: the rest is the exec's own work |"), "{md}");
        assert_eq!(start_verdict(0.7, 0.9), "within noise of the goal by itself: no room left for the launch");
        let without =
            exec_markdown(&run_of(Noop::Static, Some("pid"), vec![row("isobench-exec", spread(5_000_000)), row("unshare", spread(2_000_000))]));
        assert!(!without.contains("nothing launched)"), "no version row without its column: {without}");
        // With the in-process launcher's column, their sum against unshare.
        let mut with_launcher = rows(row("isobench-version", spread(900_000)));
        with_launcher.push(row("isobench", spread(800_000)));
        let run = run_of(Noop::Static, Some("pid"), with_launcher);
        let sum = (900_000.0 + 800_000.0 + 2.0 * 49_500.0) / (2_000_000.0 + 49_500.0);
        assert!((start_and_launch(&run).unwrap() - sum).abs() < 0.01);
        assert!(exec_markdown(&run).contains(&format!("add up to {sum:.2}× of unshare's p50: above the goal before")), "{}", exec_markdown(&run));
        assert_eq!(start_and_launch(&run_of(Noop::Static, None, rows(row("isobench-version", spread(900_000))))), None);
    }

    #[test]
    fn the_cpuid_note_needs_a_static_run_on_a_host_whose_cpuid_exits() {
        let mut run = run_of(Noop::Static, None, vec![]);
        run.cpuid_ns = Some(40.0);
        assert_eq!(cpuid_note(&run), None, "native CPUID");
        run.cpuid_ns = Some(10_000.0);
        let note = cpuid_note(&run).unwrap();
        assert!(note.starts_with("CPUID costs 10.0 µs here") && note.contains("≈0.68 ms"), "{note}");
        assert!(table(&run).contains(&note));
        run.noop = Noop::Nolibc;
        assert_eq!(cpuid_note(&run), None, "the nolibc no-op runs no CPUID");
    }

    #[test]
    fn commands_lose_the_runs_temporary_paths() {
        assert_eq!(
            without_run_paths("/usr/sbin/runc --root /tmp/isobench-18592-runc-fBnLs8/state run --bundle /tmp/isobench-18592-runc-fBnLs8 isobench-18592-runc-1 (process: /noop)"),
            "/usr/sbin/runc --root <runc dir>/state run --bundle <runc dir> isobench-<pid>-runc-1 (process: /noop)"
        );
        assert_eq!(
            without_run_paths("/usr/bin/bwrap --bind /tmp/isobench-1-rootfs-Ee2zNa / --proc /proc"),
            "/usr/bin/bwrap --bind <rootfs dir> / --proc /proc"
        );
        assert_eq!(without_run_paths("isobench exec --no-cgroup -- /noop"), "isobench exec --no-cgroup -- /noop");
    }
}
