//! The application metrics (app.*): per environment, redis's and nginx's
//! throughput at saturation (closed loop) and latency percentiles at a
//! fixed offered rate (open loop, coordinated-omission corrected, with the
//! uncorrected service time beside it), each against native, with the
//! path the load took. The methods are redis-benchmark's, wrk's and
//! wrk2's (`app::load`).

use std::fmt::Write;

use isobench_workloads::app::load::LoadMode;
use isobench_workloads::catalog::Family;
use isobench_workloads::hist;

use crate::collect::Measurement;
use crate::report::columns::env_order;
use crate::report::format::{cell, num, overhead};
use crate::report::ReportError;

use super::{Context, Section};

/// `## Applications (app.*)`.
pub struct Apps;

/// A quantile of the open loop's uncorrected service times, µs.
fn service_us(m: &Measurement, q: f64) -> Option<f64> {
    let h = hist::decode(m.load.as_ref()?.service_histogram.as_deref()?).ok()?;
    Some(h.value_at_quantile(q) as f64 / 1e3)
}

/// The whole loop's requests per second (completed ÷ wall time).
fn per_s(m: &Measurement) -> f64 {
    m.load.as_ref().map(|l| l.achieved_per_s).unwrap_or_else(|| 1e9 * m.iterations as f64 / m.elapsed_ns.max(1) as f64)
}

/// The charts of `metrics` (`plots/apps-<metric>.svg`), each once, in order.
fn charts<'a>(o: &mut String, cx: &Context<'_>, metrics: impl Iterator<Item = &'a str>) {
    let mut seen: Vec<&str> = Vec::new();
    for name in metrics {
        if seen.contains(&name) {
            continue;
        }
        seen.push(name);
        if let Some(svg) = cx.svg(&format!("apps-{name}")) {
            let _ = writeln!(o, "![apps-{name}]({})\n", svg.display());
        }
    }
}

impl Section for Apps {
    fn markdown(&self, cx: &Context<'_>) -> Result<String, ReportError> {
        let mut o = String::new();
        let mut rows: Vec<&Measurement> = cx.measurements.iter().filter(|m| m.metric.family == Family::App).collect();
        let mut skipped: Vec<(String, String, String)> = Vec::new();
        for (name, e) in &cx.run.environments {
            for (metric, why) in e.not_supported.iter().filter(|(k, _)| k.starts_with("app.")) {
                skipped.push((e.label_or(name).to_string(), metric.clone(), why.clone()));
            }
        }
        if rows.is_empty() && skipped.is_empty() {
            return Ok(o);
        }
        rows.sort_by_key(|m| (env_order(&m.env), m.metric.name));
        let _ = writeln!(o, "## Applications (app.*)\n");
        let _ = writeln!(
            o,
            "A real server started inside each environment by its agent (natively the host's redis-server and nginx; in isobench's container, \
             under runc, crun and runsc, and in the vm booted from it as its root disk, the `--rootfs debian --image-packages \
             redis-server,nginx-light` image's: the same Debian binaries), loaded by isobench's own generator \
             from the host side across the environment's boundary (the path is named per row). **Closed loop**: fixed connections each \
             waiting for its replies (redis: 4 connections, pipeline 16; nginx: 4 keep-alive connections), completed requests per second \
             of wall time — higher is better. **Open loop** (wrk2's method): a constant offered rate, half of what a closed loop of the \
             open loop's own shape (4 connections, one request outstanding each) achieved against the same server just before; latency \
             from each request's intended send time (coordinated-omission corrected) — lower is better; the uncorrected service time \
             (actual send → reply) is beside it; in the charts the corrected line has the environment's colour and the uncorrected the same colour lighter. No published figure is quoted here: none was traced to its paper and hardware.\n"
        );
        for (env, metric, why) in &skipped {
            let _ = writeln!(o, "- **{}**: `{metric}` {}", cell(env), cell(why));
        }
        if !skipped.is_empty() {
            o.push('\n');
        }
        let native = |metric: &str| cx.measurements.iter().find(|m| m.env == "native" && m.metric.name == metric);
        let path =
            |env: &str| cx.run.environments.get(env).and_then(|e| e.boundary.as_ref()).and_then(|b| b.path.clone()).unwrap_or_else(|| "–".into());
        let closed: Vec<_> = rows.iter().filter(|m| m.load.as_ref().is_some_and(|l| l.mode == LoadMode::Closed)).collect();
        if !closed.is_empty() {
            let _ = writeln!(
                o,
                "| environment | path | metric | load | req/s (whole loop; higher is better) | median 20 ms window | vs native |\n|---|---|---|---|---:|---:|---:|"
            );
            for m in &closed {
                let l = m.load.as_ref().expect("filtered");
                let vs = native(m.metric.name).filter(|n| n.env != m.env).map(|n| overhead(per_s(m), per_s(n))).unwrap_or_else(|| "–".into());
                let _ = writeln!(
                    o,
                    "| {} | {} | `{}` | {} conn × depth {} | {} | {} | {vs} |",
                    cell(&m.env_label),
                    cell(&path(&m.env)),
                    m.metric.name,
                    l.connections,
                    l.depth,
                    num(per_s(m)),
                    num(m.summary().p50),
                );
            }
            o.push('\n');
            charts(&mut o, cx, closed.iter().map(|m| m.metric.name));
        }
        let open: Vec<_> = rows.iter().filter(|m| m.load.as_ref().is_some_and(|l| l.mode == LoadMode::Open)).collect();
        if !open.is_empty() {
            let _ = writeln!(
                o,
                "| environment | path | metric | offered rate (basis) | p50 | p99 | p99.9 (lower is better) | uncorrected p99 | p99 vs native |\n|---|---|---|---|---:|---:|---:|---:|---:|"
            );
            for m in &open {
                let l = m.load.as_ref().expect("filtered");
                let s = m.summary();
                let basis = match &l.rate_basis {
                    Some(b) => format!(
                        "{} req/s ({} × {} req/s closed, {} conn)",
                        num(l.offered_per_s.unwrap_or(0.0)),
                        b.fraction,
                        num(b.closed_per_s),
                        b.connections
                    ),
                    None => format!("{} req/s", num(l.offered_per_s.unwrap_or(0.0))),
                };
                let vs = native(m.metric.name).filter(|n| n.env != m.env).map(|n| overhead(s.p99, n.summary().p99)).unwrap_or_else(|| "–".into());
                let _ = writeln!(
                    o,
                    "| {} | {} | `{}` | {} | {} µs | {} µs | {} µs | {} | {vs} |",
                    cell(&m.env_label),
                    cell(&path(&m.env)),
                    m.metric.name,
                    cell(&basis),
                    num(s.p50),
                    num(s.p99),
                    num(s.p999),
                    service_us(m, 0.99).map(|v| format!("{} µs", num(v))).unwrap_or_else(|| "–".into()),
                );
            }
            o.push('\n');
            let _ = writeln!(
                o,
                "Each environment's open loop offers a share of its own closed-loop figure, so the rates differ between environments: \
                 the p99 ratio compares latency at the same relative load, not at the same rate.\n"
            );
            for m in &open {
                if let Some(n) = m.load.as_ref().and_then(|l| l.clipped) {
                    let _ = writeln!(
                        o,
                        "- **{}** `{}`: {n} latencies past the histograms' fixed bound were recorded as {} s: its top percentiles are at least that.\n",
                        cell(&m.env_label),
                        m.metric.name,
                        isobench_workloads::app::load::HIGHEST_NS / 1_000_000_000
                    );
                }
            }
            charts(&mut o, cx, open.iter().map(|m| m.metric.name));
        }
        Ok(o)
    }
}
