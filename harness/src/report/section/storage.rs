//! The storage paths of the fs.* metrics: per environment, where its files
//! were (host directory, volume, container root; the file system the agent
//! found), and each metric's bandwidth or IOPS with its latency
//! percentiles, as fio's summary gives them (bw, iops, clat percentiles),
//! and per fs.* metric a chart of latency by percentile with one line per
//! environment and storage path (`plot::storage`).

use std::fmt::Write;

use isobench_workloads::catalog::{Family, MetricSpec};

use crate::report::columns::{catalog_index, column_label, env_order};
use crate::report::format::{cell, num};
use crate::report::ReportError;

use super::{Context, Section};

/// What the published studies of storage across containers and VMs say,
/// and why no figure of theirs stands beside these rows: a figure is quoted
/// only with its paper's passage and hardware, and the copies this project
/// could read of those papers stop at the abstract.
pub const PUBLISHED: &str = "Published figures: none is quoted beside these rows. \
     The studies that measured storage natively, in containers and in VMs (Felter et al., IBM Research RC25482, 2014, KVM and Docker; Agache et al., Firecracker, NSDI 2020) were readable here only up to their abstracts, and this report quotes a \
     figure only with the passage and hardware it comes from. Felter et al.'s abstract, in words: containers performed as well as or better \
     than the VM in almost every case, and both needed tuning for I/O-intensive work.";

/// The loop's total for a row: bandwidth for a rate, IOPS for an I/O
/// operation, ops/s for stat and open; `per_op_ns` is loop time ÷ operations.
fn loop_total(spec: &MetricSpec, per_op_ns: f64, bytes_per_op: u64) -> String {
    let unit = spec.unit;
    match unit.is_rate() {
        true => format!("{} {}", num(unit.from_ns_per_op(per_op_ns, bytes_per_op)), unit.label()),
        // I/O operations are IOPS; stat and open are plain operations.
        false if per_op_ns > 0.0 && matches!(spec.name, "fs.rand_read" | "fs.rand_write" | "fs.fsync") => format!("{} IOPS", num(1e9 / per_op_ns)),
        false if per_op_ns > 0.0 => format!("{} ops/s", num(1e9 / per_op_ns)),
        false => "–".into(),
    }
}

/// `## Storage paths (fs.*)`.
pub struct Storage;

impl Section for Storage {
    fn markdown(&self, cx: &Context<'_>) -> Result<String, ReportError> {
        let mut o = String::new();
        let mut rows: Vec<_> = cx.measurements.iter().filter(|m| m.metric.family == Family::Fs).collect();
        // A merged folder's inputs' records too, under their column names.
        let mut envs: Vec<_> = cx
            .run
            .columns_environments()
            .into_iter()
            .filter(|(_, e)| {
                e.storage.is_some()
                    || e.storage_not_measured.is_some()
                    || e.not_supported.keys().chain(e.host_timed.keys()).any(|k| k.starts_with("fs."))
            })
            .collect();
        if rows.is_empty() && envs.is_empty() {
            return Ok(o);
        }
        envs.sort_by_key(|(n, _)| env_order(n));
        rows.sort_by_key(|m| env_order(&m.env));
        let _ = writeln!(o, "## Storage paths (fs.*)\n");
        let _ = writeln!(
            o,
            "Where each environment's fs.* files were, and what the agent moved there (every file read back and checked after its loop). \
             Bandwidth and IOPS are the timed loop's totals (operations ÷ loop time); percentiles are per operation (rand, fsync, create) \
             or per sample of operations (seq, stat, open). A figure is the path's: a volume is the host's file system seen through a bind mount \
             (under runsc, served to the Sentry by gVisor's gofer); a container's root is a tmpfs over the read-only image, the overlay under \
             `--profile docker`, or under runsc its own overlay in the Sentry's memory (`--overlay2=root:memory`). A vm's disk is a raw image \
             file on virtio-blk with the guest's own ext4; its shared directory is the host's, served over virtio-9p by QEMU itself or over \
             virtiofs by a virtiofsd per guest (FUSE on a vhost-user device), with the cache mode on the row.\n"
        );
        for (name, e) in &envs {
            let label = &column_label(name, e);
            if let Some(st) = &e.storage {
                // A vm's data disk is an image file on the host, not a directory.
                let what = if st.kind == Some(crate::storage::StorageKind::VirtioBlk) { "image file" } else { "directory" };
                let host = match (&st.host_dir, &st.host_fs) {
                    (Some(d), _) if *d == st.agent_dir => String::new(),
                    (Some(d), Some(fs)) => format!("; host {what} `{d}` ({fs})"),
                    (Some(d), None) => format!("; host {what} `{d}`"),
                    _ => String::new(),
                };
                let _ = writeln!(o, "- **{}**: {} — the agent's `{}`{host}", cell(label), st.describe(), st.agent_dir);
            }
            if let Some(why) = &e.storage_not_measured {
                let _ = writeln!(o, "- **{}**: fs.* not measured: {}", cell(label), cell(why));
            }
            for (metric, why) in e.not_supported.iter().filter(|(k, _)| k.starts_with("fs.")) {
                let _ = writeln!(o, "- **{}**: `{metric}` {}", cell(label), cell(why));
            }
            for (metric, h) in e.host_timed.iter().filter(|(k, _)| k.starts_with("fs.")) {
                let _ = writeln!(o, "- **{}**: `{metric}` timed by the host, not by the sandbox: {}", cell(label), cell(&h.refused));
            }
        }
        o.push('\n');
        // Measured rows and host-timed ones (a mean only), in column order.
        let mut table: Vec<((usize, String), usize, String)> = Vec::new();
        for m in rows {
            let s = m.summary();
            let u = m.metric.unit.label();
            let line = format!(
                "| {} | {} | `{}` | {} | {} {u} | {} {u} | {} {u} |",
                cell(&m.env_label),
                cell(m.storage.as_deref().unwrap_or("–")),
                m.metric.name,
                loop_total(m.metric, m.loop_mean_ns(), m.bytes_per_op),
                num(s.p50),
                num(s.p99),
                num(s.p999),
            );
            table.push((env_order(&m.env), catalog_index(m.metric.name), line));
        }
        for (name, e) in &envs {
            for (metric, h) in e.host_timed.iter().filter(|(k, _)| k.starts_with("fs.")) {
                let Some(spec) = isobench_workloads::catalog::lookup(metric) else { continue };
                let line = format!(
                    "| {} · timed by the host | {} | `{metric}` | {} | mean {} {} | – | – |",
                    cell(&column_label(name, e)),
                    cell(h.storage.as_deref().unwrap_or("–")),
                    loop_total(spec, h.mean_ns(), h.bytes_per_op),
                    num(spec.unit.from_ns_per_op(h.mean_ns(), h.bytes_per_op)),
                    spec.unit.label(),
                );
                table.push((env_order(name), catalog_index(metric), line));
            }
        }
        table.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
        if !table.is_empty() {
            let _ = writeln!(
                o,
                "| environment | storage path | metric | bandwidth, IOPS or ops/s (loop) | p50 | p99 | p99.9 |\n|---|---|---|---:|---:|---:|---:|"
            );
            for (_, _, line) in &table {
                let _ = writeln!(o, "{line}");
            }
            o.push('\n');
            if table.iter().any(|(_, _, l)| l.contains("· timed by the host")) {
                let _ = writeln!(
                    o,
                    "A row *timed by the host* is one whose sandbox clock ran slow over the loop (gVisor's, named above with the two clocks' figures): \
                     its figure is the host's time from the agent's mark before the loop to its mark after, ÷ the operations. That is a mean, \
                     with no percentiles; the loop totals of the other rows are the same interval by their own clock.\n"
                );
            }
        }
        // Latency by percentile, one chart per operation, one line per
        // environment and storage path.
        let mut names: Vec<&str> = Vec::new();
        for m in cx.measurements.iter().filter(|m| m.metric.family == Family::Fs) {
            if !names.contains(&m.metric.name) {
                names.push(m.metric.name);
            }
        }
        let mut charted = false;
        for name in names {
            let stem = format!("storage-{name}");
            if let Some(svg) = cx.svg(&stem) {
                if !charted {
                    let _ =
                        writeln!(o, "Latency per operation by percentile (x: p50, p90, p99, … on HdrHistogram's 1 − 1/x scale; lower is better):\n");
                    charted = true;
                }
                let _ = writeln!(o, "![{stem}]({})\n", svg.display());
            }
        }
        let _ = writeln!(o, "{PUBLISHED}\n");
        Ok(o)
    }
}
