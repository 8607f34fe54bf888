//! "Your command" (`isobench run --command`, command.json): per command and
//! environment, one row per clock (the host's request→answer and the
//! agent's own around fork, exec and wait) with hyperfine's mean ± σ,
//! median, min … max and runs, and the median over native's with its 95 %
//! interval; a failure (its exit status, not timed) or an environment that
//! could not run the command is one row with its reason. The same rows make
//! the terminal table `isobench run --command` prints.

use std::fmt::Write;

use crate::report::format::{cell, duration, ratio_interval};
use crate::report::ReportError;
use crate::results::command::{CommandRun, Verdict};

use super::{Context, Section};

/// The section.
pub struct Command;

impl Section for Command {
    fn markdown(&self, cx: &Context<'_>) -> Result<String, ReportError> {
        let Some(run) = cx.dir.command()? else { return Ok(String::new()) };
        Ok(markdown(&run))
    }
}

/// The column heads of [`rows`].
pub const HEADS: [&str; 8] = ["command", "environment", "clock", "mean ± σ", "median", "min … max", "runs", "median vs native [95 %]"];

/// One row per command, environment and clock; a failure or an
/// environment not measured is one row whose clock is "–" and whose fourth
/// cell holds its reason.
pub fn rows(run: &CommandRun) -> Vec<[String; 8]> {
    let mut rows = Vec::new();
    for c in &run.commands {
        for e in &c.envs {
            if e.verdict != Verdict::Measured {
                let word = if e.verdict == Verdict::Failed { "FAILED" } else { "not measured" };
                let why = e.reason.clone().unwrap_or_default();
                rows.push([
                    c.command.clone(),
                    e.label.clone(),
                    "–".into(),
                    format!("{word}: {why}"),
                    String::new(),
                    String::new(),
                    "0".into(),
                    "–".into(),
                ]);
                continue;
            }
            for (clock, s, r) in [("host", e.host, e.host_vs_native), ("inside", e.inside, e.inside_vs_native)] {
                let Some(s) = s else { continue };
                let vs = match (e.env.as_str(), r) {
                    ("native", _) => "baseline".to_string(),
                    (_, Some(r)) => ratio_interval(r.ratio, r.low, r.high),
                    (_, None) => "– (no native baseline)".to_string(),
                };
                rows.push([
                    c.command.clone(),
                    e.label.clone(),
                    clock.into(),
                    format!("{} ± {}", duration(s.mean_ns), duration(s.stdev_ns)),
                    duration(s.p50_ns),
                    format!("{} … {}", duration(s.min_ns as f64), duration(s.max_ns as f64)),
                    s.n.to_string(),
                    vs,
                ]);
            }
        }
    }
    rows
}

/// Whether a row of [`rows`] is a failure or a skip.
fn is_failure(r: &[String; 8]) -> bool {
    r[2] == "–"
}

/// The section's markdown: how the command ran, the clocks, the table.
pub fn markdown(run: &CommandRun) -> String {
    let mut o = String::from("## Your command\n\n");
    let shell = match run.shell.as_str() {
        "none" => "split into words and exec'd without a shell (hyperfine's `--shell=none`)".to_string(),
        sh => format!("run as `{sh} -c CMD` by the image's shell"),
    };
    let _ = writeln!(
        o,
        "Each command was {shell}, its output sent to /dev/null, {} warm-up run(s) then {} timed run(s) per environment, {}. \
         Clocks: **{}**; **{}**. A run that exits non-zero fails its environment and is not timed.{}\n",
        run.warmup,
        run.runs,
        run.order,
        run.host_clock,
        run.inside_clock,
        if run.interrupted { " **Interrupted**: only the runs before the signal are here." } else { "" }
    );
    o.push_str(&format!("| {} |\n", HEADS.join(" | ")));
    // Words left, figures right (the HTML's default is right after the first column).
    o.push_str("|:---|:---|:---|---:|---:|---:|---:|---:|\n");
    for r in rows(run) {
        let _ = writeln!(o, "| {} |", r.iter().map(|c| cell(c)).collect::<Vec<_>>().join(" | "));
    }
    let files: Vec<String> = run
        .commands
        .first()
        .map(|c| c.envs.iter().filter(|e| !e.files.is_empty()).map(|e| format!("{}: {}", e.label, e.files)).collect())
        .unwrap_or_default();
    if !files.is_empty() {
        let _ = writeln!(o, "\nWhere each environment's command found its files: {}.", files.join("; "));
    }
    let data: Vec<String> = run
        .commands
        .first()
        .map(|c| c.envs.iter().filter_map(|e| e.data.as_ref().map(|d| format!("{}: {d}", e.label))).collect())
        .unwrap_or_default();
    if !data.is_empty() {
        let _ = writeln!(o, "\nThe data directory (`--data-dir`) in each environment: {}.", data.join("; "));
    }
    o.push('\n');
    o
}

/// The table for a terminal: columns padded to their widest cell; a
/// failure's or a skip's reason runs to the end of its line.
pub fn text_table(run: &CommandRun) -> String {
    let rows = rows(run);
    let mut width = HEADS.map(|h| h.chars().count());
    for r in &rows {
        let n = if is_failure(r) { 2 } else { r.len() };
        for (w, c) in width.iter_mut().zip(&r[..n]) {
            *w = (*w).max(c.chars().count());
        }
    }
    let pad = |c: &str, w: usize| format!("{c}{}  ", " ".repeat(w.saturating_sub(c.chars().count())));
    let mut out = String::new();
    for r in std::iter::once(&HEADS.map(String::from)).chain(&rows) {
        let line: String = match is_failure(r) {
            true => format!("{}{}", r[..3].iter().zip(width).map(|(c, w)| pad(c, w)).collect::<String>(), r[3]),
            false => r.iter().zip(width).map(|(c, w)| pad(c, w)).collect(),
        };
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_name_each_clock_the_ratio_and_each_failure_with_its_reason() {
        let c = crate::results::command::example(100_000, "vm (emulated (TCG))");
        let run = CommandRun { runs: 20, shell: "none".into(), commands: vec![c], ..CommandRun::default() };
        let t = text_table(&run);
        let line = |env: &str, clock: &str| t.lines().find(|l| l.contains(env) && l.contains(clock)).unwrap_or_else(|| panic!("{t}")).to_string();
        assert!(line("container", "inside").ends_with("150.0 µs ± 0.0 µs  150.0 µs  150.0 µs … 150.0 µs  20    1.50× [1.50, 1.50]"), "{t}");
        assert!(line("container", "host").contains("300.0 µs"), "{t}");
        assert!(line("native", "inside").ends_with("baseline"), "{t}");
        assert!(t.lines().any(|l| l.starts_with("true") && l.ends_with("  not measured: the vm's root is the initramfs")), "{t}");
        let md = markdown(&run);
        assert!(md.contains("| true | vm (emulated (TCG)) | – | not measured: the vm's root is the initramfs |"), "{md}");
        assert!(md.contains("hyperfine's `--shell=none`"), "{md}");
    }
}
