//! Charts (plotters), each written as SVG and PNG at 900×500 px:
//!
//! - `plots/<metric>.svg|png`: one bar per environment, p50 with a p10–p90
//!   whisker, in the metric's unit; the environment labels carry the vm's
//!   accelerator ("vm (emulated (TCG))").
//! - `plots/<metric>.percentiles.svg|png`: latency by percentile, one line per
//!   environment, x on HdrHistogram's "nines" axis (p90, p99, p99.9, …).
//! - `plots/storage-<metric>.svg|png`: for each fs.* metric, latency per
//!   operation by percentile, one line per environment and storage path
//!   (the legend, outside the plot, names both), µs on a log axis.
//! - `plots/overhead.svg|png`: p50 ratio to native per metric and
//!   environment, horizontal bars on a log axis growing from 1× (no
//!   overhead); one row per metric × environment.
//!
//! Environment colours are fixed ([`env_color`]) so every chart agrees.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{register_font, FontStyle};

use crate::collect::{Measurement, Summary};
use crate::results::startup::{StartupRow, StartupRun};
use crate::workloads::Noop;

use super::columns::{baseline_for, by_metric, env_order, is_baseline, split_env};
use super::format::num;
use super::phases::Phases;
use super::ReportError;

/// Pixel size of every chart.
pub const SIZE: (u32, u32) = (900, 500);

/// TrueType fonts tried for chart text, in order (Debian's fonts-dejavu-core
/// first; scripts/setup installs it).
pub const FONT_CANDIDATES: [&str; 4] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
];

const FONT: &str = "sans-serif";

/// Registers the chart font with plotters (its `ab_glyph` text backend has no
/// system font lookup). Every chart in the process needs it, criterion's own
/// included, so the benches call this before criterion draws anything.
///
/// Errors: no usable TrueType font (the message names the package).
pub fn ensure_font() -> Result<(), String> {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| {
        let from_env = std::env::var("ISOBENCH_FONT").ok();
        for path in from_env.iter().map(String::as_str).chain(FONT_CANDIDATES) {
            if let Ok(bytes) = std::fs::read(path) {
                // plotters keeps registered fonts for the life of the process.
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                for style in [FontStyle::Normal, FontStyle::Bold, FontStyle::Italic, FontStyle::Oblique] {
                    for family in [FONT, "serif", "monospace"] {
                        register_font(family, style, bytes).map_err(|_| format!("{path} is not a usable TrueType font"))?;
                    }
                }
                return Ok(());
            }
        }
        Err("no TrueType font found: install fonts-dejavu-core (scripts/setup does) or set ISOBENCH_FONT".into())
    })
    .clone()
}

/// The colour of an environment in every chart.
pub fn env_color(env: &str) -> RGBColor {
    match split_env(env).0 {
        "native" => RGBColor(31, 119, 180),
        "container" => RGBColor(44, 160, 44),
        "vm" => RGBColor(214, 39, 40),
        _ => RGBColor(148, 103, 189),
    }
}

/// Upper bound of a segmented axis holding `n` slots: plotters' segmented
/// coordinates over `0..m` have m + 1 segments.
fn last_slot(n: usize) -> usize {
    n.saturating_sub(1).max(1)
}

struct Bar {
    env: String,
    label: String,
    p10: f64,
    p50: f64,
    p90: f64,
}

/// Environments whose p50s differ by more than this factor are drawn on a
/// log axis, so native's bar stays visible beside an emulated guest's.
pub const LOG_AXIS_SPREAD: f64 = 20.0;

fn draw_metric<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, title: &str, unit: &str, rate: bool, bars: &[Bar]) -> Result<(), String> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(e)?;
    let n = bars.len();
    let positive = |v: f64| v.max(f64::MIN_POSITIVE);
    let (pmin, pmax) = bars.iter().fold((f64::MAX, 0f64), |(lo, hi), b| (lo.min(b.p50), hi.max(b.p50)));
    let log = pmin > 0.0 && pmax / pmin > LOG_AXIS_SPREAD;
    // On a log axis the drawing works in log10 space on a linear axis and the
    // labels print 10^y: one code path for both scales.
    let tf = |v: f64| if log { positive(v).log10() } else { v };
    let top = bars.iter().map(|b| b.p10.max(b.p90).max(b.p50)).fold(0.0, f64::max);
    let (y0, y1) = if log {
        let low = bars.iter().map(|b| b.p10.min(b.p90).min(b.p50)).fold(f64::MAX, f64::min);
        (positive(low).log10().floor(), tf(top) + 0.3)
    } else {
        (0.0, positive(top) * 1.2)
    };
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FONT, 22))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d((0..last_slot(n)).into_segmented(), y0..y1)
        .map_err(e)?;
    let labels: Vec<String> = bars.iter().map(|b| b.label.clone()).collect();
    let scale = if log { " (log scale)" } else { "" };
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n.max(1))
        .x_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => labels.get(*i).cloned().unwrap_or_default(),
            _ => String::new(),
        })
        .y_label_formatter(&|y| if log { num(10f64.powf(*y)) } else { num(*y) })
        .y_desc(if rate {
            format!("{unit}{scale} (bar p50, whisker p10–p90 of per-sample rate)")
        } else {
            format!("{unit} per operation{scale} (bar p50, whisker p10–p90)")
        })
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 14))
        .draw()
        .map_err(e)?;
    chart
        .draw_series(bars.iter().enumerate().map(|(i, b)| {
            let mut r = Rectangle::new([(SegmentValue::Exact(i), y0), (SegmentValue::Exact(i + 1), tf(b.p50))], env_color(&b.env).mix(0.85).filled());
            r.set_margin(0, 0, 25, 25);
            r
        }))
        .map_err(e)?;
    chart
        .draw_series(bars.iter().enumerate().map(|(i, b)| {
            PathElement::new(vec![(SegmentValue::CenterOf(i), tf(b.p10)), (SegmentValue::CenterOf(i), tf(b.p90))], BLACK.stroke_width(2))
        }))
        .map_err(e)?;
    chart
        .draw_series(bars.iter().enumerate().map(|(i, b)| {
            let above = tf(b.p10.max(b.p90).max(b.p50));
            Text::new(
                format!("{} {unit}", num(b.p50)),
                (SegmentValue::CenterOf(i), if log { above + 0.05 } else { above * 1.02 }),
                TextStyle::from((FONT, 14)).pos(Pos::new(HPos::Center, VPos::Bottom)),
            )
        }))
        .map_err(e)?;
    root.present().map_err(e)
}

/// `plots/start-per-namespace.svg|png` (`start-per-namespace-nolibc.*` for a
/// run with the nolibc no-op): the launcher's start-to-exit p50 per namespace
/// set (whisker p10–p90), from `isobench startup --per-namespace`.
pub fn per_namespace(dir: &Path, run: &StartupRun) -> Result<Vec<PathBuf>, ReportError> {
    ensure_font().map_err(|message| ReportError::Plot { path: dir.to_path_buf(), message })?;
    std::fs::create_dir_all(dir).map_err(|source| ReportError::Io { path: dir.to_path_buf(), source })?;
    let q = |r: &StartupRow, q: f64| r.quantile_ns(q) as f64 / 1e6;
    let bars: Vec<Bar> =
        run.rows.iter().map(|r| Bar { env: "container".into(), label: r.label.clone(), p10: q(r, 0.1), p50: q(r, 0.5), p90: q(r, 0.9) }).collect();
    let mut out = Vec::new();
    let (name, title) = match run.noop {
        Noop::Static => ("start-per-namespace", "isobench launcher: start → exit by namespace (ms)"),
        Noop::Nolibc => ("start-per-namespace-nolibc", "isobench launcher: start → exit by namespace, nolibc no-op (ms)"),
    };
    both(dir, name, &mut out, |svg, png| match (svg, png) {
        (Some(p), _) => draw_metric(SVGBackend::new(p, SIZE).into_drawing_area(), title, "ms", false, &bars),
        (_, Some(p)) => draw_metric(BitMapBackend::new(p, SIZE).into_drawing_area(), title, "ms", false, &bars),
        _ => Ok(()),
    })?;
    Ok(out)
}

/// "Nines" of the percentile axis: x = −log10(1 − q), so 1 = p90, 2 = p99,
/// 3 = p99.9 (HdrHistogram's percentile-distribution plot).
const MAX_NINES: f64 = 4.0;

struct Curve {
    env: String,
    label: String,
    /// (nines, value in the display unit)
    points: Vec<(f64, f64)>,
}

fn curve(m: &Measurement) -> Curve {
    let n = m.histogram.len().max(1) as f64;
    // No point beyond what the sample count can resolve.
    let top = n.log10().min(MAX_NINES);
    let steps = 200;
    let points = (0..=steps).map(|i| top * i as f64 / steps as f64).map(|x| (x, Summary::quantile(m, 1.0 - 10f64.powf(-x)))).collect();
    Curve { env: m.env.clone(), label: m.env_label.clone(), points }
}

fn draw_percentiles<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, title: &str, unit: &str, curves: &[Curve]) -> Result<(), String> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(e)?;
    let all = curves.iter().flat_map(|c| c.points.iter().map(|p| p.1)).filter(|v| *v > 0.0);
    let (lo, hi) = all.fold((f64::MAX, 0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let (lo, hi) = if hi > 0.0 { (lo / 1.3, hi * 1.3) } else { (0.1, 1.0) };
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FONT, 20))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(0f64..MAX_NINES, (lo..hi).log_scale())
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_labels(5)
        .x_label_formatter(&|x| {
            let p = 100.0 * (1.0 - 10f64.powf(-x));
            if p < 99.0 {
                format!("p{p:.0}")
            } else {
                format!("p{}", format!("{p:.4}").trim_end_matches('0').trim_end_matches('.'))
            }
        })
        .x_desc("percentile (log scale of nines)")
        .y_desc(format!("{unit} per operation (log scale)"))
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 14))
        .draw()
        .map_err(e)?;
    for c in curves {
        let color = env_color(&c.env);
        chart
            .draw_series(LineSeries::new(c.points.iter().copied(), color.stroke_width(2)))
            .map_err(e)?
            .label(c.label.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(3)));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font((FONT, 14))
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(e)?;
    root.present().map_err(e)
}

/// Colours of the phase segments, in order (the boot's four first).
const PHASE_COLORS: [RGBColor; 9] = [
    RGBColor(158, 202, 225),
    RGBColor(49, 130, 189),
    RGBColor(253, 174, 107),
    RGBColor(150, 150, 150),
    RGBColor(116, 196, 118),
    RGBColor(230, 85, 13),
    RGBColor(117, 107, 177),
    RGBColor(253, 208, 162),
    RGBColor(49, 163, 84),
];

/// Caption of the vm's boot-phase chart.
const BOOT_PHASES_CAPTION: &str = "boot phases (host-measured medians, ms from QEMU start)";
/// Caption of the container's start-phase chart.
const CONTAINER_PHASES_CAPTION: &str = "container start phases (host-measured medians, ms from the start asked)";

/// The container's start phases ([`crate::report::phases::container_from_run`])
/// as `container-start-phases.svg`/`.png` in `dir`; nothing without phases.
pub fn container_phases(dir: &Path, phases: &[Phases]) -> Result<Vec<PathBuf>, ReportError> {
    let mut out = Vec::new();
    if phases.is_empty() {
        return Ok(out);
    }
    ensure_font().map_err(|message| ReportError::Plot { path: dir.to_path_buf(), message })?;
    std::fs::create_dir_all(dir).map_err(|source| ReportError::Io { path: dir.to_path_buf(), source })?;
    let height = 320 + 70 * phases.len() as u32;
    both(dir, "container-start-phases", &mut out, |svg, png| match (svg, png) {
        (Some(p), _) => draw_phases(SVGBackend::new(p, (SIZE.0, height)).into_drawing_area(), CONTAINER_PHASES_CAPTION, phases),
        (_, Some(p)) => draw_phases(BitMapBackend::new(p, (SIZE.0, height)).into_drawing_area(), CONTAINER_PHASES_CAPTION, phases),
        _ => Ok(()),
    })?;
    Ok(out)
}

fn draw_phases<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, caption: &str, phases: &[Phases]) -> Result<(), String> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(e)?;
    let total = phases.iter().map(|p| p.segments.iter().map(|s| s.1).sum::<f64>()).fold(0.0, f64::max).max(1.0);
    let n = phases.len();
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, (FONT, 20))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(170)
        // One slot more than bars: the top one holds the legend.
        .build_cartesian_2d(0f64..total * 1.05, (0..n).into_segmented())
        .map_err(e)?;
    let labels: Vec<String> = phases.iter().map(|p| p.label.clone()).collect();
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(n.max(1))
        .y_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => labels.get(*i).cloned().unwrap_or_default(),
            _ => String::new(),
        })
        .x_desc("ms")
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 14))
        .draw()
        .map_err(e)?;
    let names: Vec<&str> = phases.iter().flat_map(|p| p.segments.iter().map(|s| s.0)).fold(Vec::new(), |mut v, n| {
        if !v.contains(&n) {
            v.push(n);
        }
        v
    });
    for (k, name) in names.iter().enumerate() {
        let color = PHASE_COLORS[k % PHASE_COLORS.len()];
        let rects: Vec<_> = phases
            .iter()
            .enumerate()
            .filter_map(|(i, p)| {
                let pos = p.segments.iter().position(|s| s.0 == *name)?;
                let start: f64 = p.segments[..pos].iter().map(|s| s.1).sum();
                Some((i, start, start + p.segments[pos].1))
            })
            .collect();
        chart
            .draw_series(rects.into_iter().map(move |(i, a, b)| {
                let mut r = Rectangle::new([(a, SegmentValue::Exact(i)), (b, SegmentValue::Exact(i + 1))], color.filled());
                r.set_margin(12, 12, 0, 0);
                r
            }))
            .map_err(e)?
            .label(name.to_string())
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], color.filled()));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font((FONT, 13))
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(e)?;
    root.present().map_err(e)
}

struct Group {
    metric: String,
    /// (env, label, ratio)
    ratios: Vec<(String, String, f64)>,
}

/// Height of the overhead chart: one row per metric × environment.
fn overhead_height(groups: &[Group]) -> u32 {
    let k = groups.iter().map(|g| g.ratios.len()).max().unwrap_or(1) as u32;
    (120 + groups.len() as u32 * (k + 1) * 16).max(SIZE.1)
}

fn draw_overhead<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, groups: &[Group]) -> Result<(), String> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(e)?;
    let mut envs: Vec<(String, String)> = Vec::new();
    for g in groups {
        for (env, label, _) in &g.ratios {
            if !envs.iter().any(|(x, _)| x == env) {
                envs.push((env.clone(), label.clone()));
            }
        }
    }
    envs.sort_by_key(|(e, _)| env_order(e));
    let k = envs.len().max(1);
    // Metrics top to bottom in catalogue order: row 0 is at the bottom.
    let slots = groups.len() * (k + 1);
    let row = |gi: usize, j: usize| slots - 1 - (gi * (k + 1) + j);
    let all = groups.iter().flat_map(|g| g.ratios.iter().map(|r| r.2));
    let (lo, hi) = all.fold((1.0f64, 1.0f64), |(lo, hi), r| (lo.min(r), hi.max(r)));
    let (lo, hi) = ((lo / 1.5).min(0.5), (hi * 1.5).max(2.0));
    let caption = match envs.iter().find(|(e, _)| split_env(e).0 == "vm") {
        Some((_, label)) => format!("overhead vs native (p50 ratio, log scale) — {label}"),
        None => "overhead vs native (p50 ratio, log scale)".to_string(),
    };
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, (FONT, 20))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(170)
        .build_cartesian_2d((lo..hi).log_scale(), (0..last_slot(slots)).into_segmented())
        .map_err(e)?;
    let names: Vec<String> = groups.iter().map(|g| g.metric.clone()).collect();
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(slots.max(1))
        .y_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) if *i < slots => {
                let from_top = slots - 1 - i;
                if from_top % (k + 1) == k / 2 {
                    names.get(from_top / (k + 1)).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            }
            _ => String::new(),
        })
        .x_desc("× native (1 = no overhead; < 1 = faster than native)")
        .x_label_formatter(&|v| format!("{v:.2}×"))
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 14))
        .draw()
        .map_err(e)?;
    for (j, (env, label)) in envs.iter().enumerate() {
        let color = env_color(env);
        let bars: Vec<_> = groups.iter().enumerate().filter_map(|(gi, g)| g.ratios.iter().find(|r| &r.0 == env).map(|r| (row(gi, j), r.2))).collect();
        chart
            .draw_series(bars.into_iter().map(move |(slot, r)| {
                let mut rect = Rectangle::new([(1.0, SegmentValue::Exact(slot)), (r, SegmentValue::Exact(slot + 1))], color.mix(0.85).filled());
                rect.set_margin(1, 1, 0, 0);
                rect
            }))
            .map_err(e)?
            .label(label.clone())
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], color.filled()));
    }
    chart
        .draw_series(std::iter::once(PathElement::new(
            vec![(1.0, SegmentValue::Exact(0)), (1.0, SegmentValue::Exact(last_slot(slots)))],
            BLACK.stroke_width(1),
        )))
        .map_err(e)?;
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font((FONT, 14))
        .position(SeriesLabelPosition::LowerLeft)
        .draw()
        .map_err(e)?;
    root.present().map_err(e)
}

fn both<F>(dir: &Path, stem: &str, out: &mut Vec<PathBuf>, draw: F) -> Result<(), ReportError>
where
    F: Fn(Option<&Path>, Option<&Path>) -> Result<(), String>,
{
    for ext in ["svg", "png"] {
        let final_path = dir.join(format!("{stem}.{ext}"));
        // Drawn to a temporary name, then renamed: no half-written chart.
        let tmp = dir.join(format!(".tmp-{stem}.{ext}"));
        let res = if ext == "svg" { draw(Some(&tmp), None) } else { draw(None, Some(&tmp)) };
        let res = res
            .map_err(|message| ReportError::Plot { path: final_path.clone(), message })
            .and_then(|()| std::fs::rename(&tmp, &final_path).map_err(|source| ReportError::Io { path: final_path.clone(), source }));
        if let Err(e) = res {
            // A full file system leaves a truncated temporary: never keep it.
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        out.push(PathBuf::from("plots").join(format!("{stem}.{ext}")));
    }
    Ok(())
}

/// Draws every chart for `ms` into `dir`; returns their paths relative to the
/// run folder (`plots/…`).
pub fn render_all(dir: &Path, ms: &[Measurement], phases: &[Phases]) -> Result<Vec<PathBuf>, ReportError> {
    ensure_font().map_err(|message| ReportError::Plot { path: dir.to_path_buf(), message })?;
    std::fs::create_dir_all(dir).map_err(|source| ReportError::Io { path: dir.to_path_buf(), source })?;
    let mut out = Vec::new();
    let mut groups = Vec::new();
    for ((_, name), group) in by_metric(ms) {
        let unit = group[0].unit().label();
        let rate = group[0].unit().is_rate();
        let bars: Vec<Bar> = group
            .iter()
            .map(|m| Bar {
                env: m.env.clone(),
                label: m.env_label.clone(),
                p10: Summary::quantile(m, 0.10),
                p50: Summary::quantile(m, 0.50),
                p90: Summary::quantile(m, 0.90),
            })
            .collect();
        // The vm's accelerator belongs on every figure that shows a vm bar.
        let vm_note: Vec<&str> = bars.iter().filter(|b| split_env(&b.env).0 == "vm").map(|b| b.label.as_str()).collect();
        let title = if vm_note.is_empty() { format!("{name} ({unit})") } else { format!("{name} ({unit}) — {}", vm_note.join(", ")) };
        both(dir, name, &mut out, |svg, png| match (svg, png) {
            (Some(p), _) => draw_metric(SVGBackend::new(p, SIZE).into_drawing_area(), &title, unit, rate, &bars),
            (_, Some(p)) => draw_metric(BitMapBackend::new(p, SIZE).into_drawing_area(), &title, unit, rate, &bars),
            _ => Ok(()),
        })?;
        // Latency distributions as HdrHistogram percentile curves (rates have
        // no meaningful tail plot of this kind).
        if !rate {
            let curves: Vec<Curve> = group.iter().filter(|m| m.histogram.len() >= 10).map(|m| curve(m)).collect();
            if !curves.is_empty() {
                let title = format!("{name}: latency by percentile");
                both(dir, &format!("{name}.percentiles"), &mut out, |svg, png| match (svg, png) {
                    (Some(p), _) => draw_percentiles(SVGBackend::new(p, SIZE).into_drawing_area(), &title, unit, &curves),
                    (_, Some(p)) => draw_percentiles(BitMapBackend::new(p, SIZE).into_drawing_area(), &title, unit, &curves),
                    _ => Ok(()),
                })?;
            }
        }
        let ratios: Vec<_> = group
            .iter()
            .filter(|m| !is_baseline(&m.env))
            .filter_map(|m| baseline_for(&group, m).and_then(|b| m.cost_ratio(b, 0.5)).map(|r| (m.env.clone(), m.env_label.clone(), r)))
            .collect();
        if !ratios.is_empty() {
            groups.push(Group { metric: name.to_string(), ratios });
        }
    }
    if !phases.is_empty() {
        both(dir, "boot-phases", &mut out, |svg, png| match (svg, png) {
            (Some(p), _) => {
                draw_phases(SVGBackend::new(p, (SIZE.0, 260 + 70 * phases.len() as u32)).into_drawing_area(), BOOT_PHASES_CAPTION, phases)
            }
            (_, Some(p)) => {
                draw_phases(BitMapBackend::new(p, (SIZE.0, 260 + 70 * phases.len() as u32)).into_drawing_area(), BOOT_PHASES_CAPTION, phases)
            }
            _ => Ok(()),
        })?;
    }
    if !groups.is_empty() {
        both(dir, "overhead", &mut out, |svg, png| match (svg, png) {
            (Some(p), _) => draw_overhead(SVGBackend::new(p, (SIZE.0, overhead_height(&groups))).into_drawing_area(), &groups),
            (_, Some(p)) => draw_overhead(BitMapBackend::new(p, (SIZE.0, overhead_height(&groups))).into_drawing_area(), &groups),
            _ => Ok(()),
        })?;
    }
    Ok(out)
}

/// `plots/layers-<metric>.svg|png` for every metric of an `isobench
/// layers` run: each layer's cost as a ratio to `bare` (bar: the median of
/// the per-round ratios; whisker: its 95 % interval), a line at 1.
pub fn layers(dir: &Path, run: &crate::results::layers::LayersRun) -> Result<Vec<PathBuf>, ReportError> {
    ensure_font().map_err(|message| ReportError::Plot { path: dir.to_path_buf(), message })?;
    std::fs::create_dir_all(dir).map_err(|source| ReportError::Io { path: dir.to_path_buf(), source })?;
    let mut out = Vec::new();
    for m in &run.metrics {
        let bars: Vec<Bar> = run
            .variants
            .iter()
            .filter(|v| v.name != "bare")
            .filter_map(|v| {
                run.ratio(&m.metric, &v.name).map(|r| Bar { env: "container".into(), label: v.name.clone(), p10: r.lo, p50: r.median, p90: r.hi })
            })
            .collect();
        if bars.is_empty() {
            continue;
        }
        let title = format!("{}: each layer's cost, × bare (median of {} rounds, 95 % interval)", m.metric, run.rounds);
        both(dir, &format!("layers-{}", m.metric), &mut out, |svg, png| match (svg, png) {
            (Some(p), _) => draw_ratios(SVGBackend::new(p, SIZE).into_drawing_area(), &title, &bars),
            (_, Some(p)) => draw_ratios(BitMapBackend::new(p, SIZE).into_drawing_area(), &title, &bars),
            _ => Ok(()),
        })?;
    }
    Ok(out)
}

fn draw_ratios<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, title: &str, bars: &[Bar]) -> Result<(), String> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(e)?;
    let n = bars.len();
    let top = bars.iter().map(|b| b.p90.max(b.p50)).fold(1.0, f64::max) * 1.15;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FONT, 16))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d((0..last_slot(n)).into_segmented(), 0f64..top)
        .map_err(e)?;
    let labels: Vec<String> = bars.iter().map(|b| b.label.clone()).collect();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n.max(1))
        .x_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => labels.get(*i).cloned().unwrap_or_default(),
            _ => String::new(),
        })
        .y_label_formatter(&|y| num(*y))
        .y_desc("× bare (bar median, whisker 95 % interval)")
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 14))
        .draw()
        .map_err(e)?;
    chart
        .draw_series(bars.iter().enumerate().map(|(i, b)| {
            let mut r = Rectangle::new([(SegmentValue::Exact(i), 0.0), (SegmentValue::Exact(i + 1), b.p50)], env_color(&b.env).mix(0.85).filled());
            r.set_margin(0, 0, 25, 25);
            r
        }))
        .map_err(e)?;
    chart
        .draw_series(
            bars.iter()
                .enumerate()
                .map(|(i, b)| PathElement::new(vec![(SegmentValue::CenterOf(i), b.p10), (SegmentValue::CenterOf(i), b.p90)], BLACK.stroke_width(2))),
        )
        .map_err(e)?;
    chart
        .draw_series(std::iter::once(PathElement::new(vec![(SegmentValue::Exact(0), 1.0), (SegmentValue::Last, 1.0)], RED.stroke_width(1))))
        .map_err(e)?;
    chart
        .draw_series(bars.iter().enumerate().map(|(i, b)| {
            Text::new(
                format!("{}×", num(b.p50)),
                (SegmentValue::CenterOf(i), b.p90.max(b.p50) * 1.02),
                TextStyle::from((FONT, 14)).pos(Pos::new(HPos::Center, VPos::Bottom)),
            )
        }))
        .map_err(e)?;
    root.present().map_err(e)
}

/// `plots/density-start-latency.svg|png` and `plots/density-throughput.svg|png`
/// for an `isobench density` run: per environment against the concurrency
/// C (log axes), the start latency's p50 (solid) and p99 (thin, with
/// crosses), and the ready instances per second.
pub fn density(dir: &Path, run: &crate::results::density::DensityRun) -> Result<Vec<PathBuf>, ReportError> {
    use super::section::density::{DENSITY_LATENCY_PLOT, DENSITY_THROUGHPUT_PLOT};
    ensure_font().map_err(|message| ReportError::Plot { path: dir.to_path_buf(), message })?;
    std::fs::create_dir_all(dir).map_err(|source| ReportError::Io { path: dir.to_path_buf(), source })?;
    let series = |f: &dyn Fn(&crate::results::density::Storm) -> Option<f64>| -> ConcurrencyLines {
        run.envs
            .iter()
            .map(|e| (e.env.clone(), e.label.clone(), e.storms.iter().filter_map(|s| Some((f64::from(s.concurrency), f(s)?))).collect::<Vec<_>>()))
            .filter(|(_, _, p)| !p.is_empty())
            .collect()
    };
    let p50 = series(&|s| s.latency_ms(0.5));
    let p99 = series(&|s| s.latency_ms(0.99));
    let rate = series(&|s| s.throughput_per_s());
    let mut out = Vec::new();
    if p50.is_empty() {
        return Ok(out);
    }
    let latency = [(p50, false), (p99, true)];
    both(dir, DENSITY_LATENCY_PLOT, &mut out, |svg, png| match (svg, png) {
        (Some(p), _) => draw_by_concurrency(
            SVGBackend::new(p, SIZE).into_drawing_area(),
            "start latency to agent-ready (ms): p50 solid, p99 thin ×",
            "ms (log scale), lower is better",
            &latency,
        ),
        (_, Some(p)) => draw_by_concurrency(
            BitMapBackend::new(p, SIZE).into_drawing_area(),
            "start latency to agent-ready (ms): p50 solid, p99 thin ×",
            "ms (log scale), lower is better",
            &latency,
        ),
        _ => Ok(()),
    })?;
    let rate = [(rate, false)];
    both(dir, DENSITY_THROUGHPUT_PLOT, &mut out, |svg, png| match (svg, png) {
        (Some(p), _) => draw_by_concurrency(
            SVGBackend::new(p, SIZE).into_drawing_area(),
            "start storm throughput (instances ready per second)",
            "instances/s (log scale), higher is better",
            &rate,
        ),
        (_, Some(p)) => draw_by_concurrency(
            BitMapBackend::new(p, SIZE).into_drawing_area(),
            "start storm throughput (instances ready per second)",
            "instances/s (log scale), higher is better",
            &rate,
        ),
        _ => Ok(()),
    })?;
    Ok(out)
}

/// One line of a storage chart: its legend text (environment — storage
/// path) and its points (nines, µs per operation).
struct StorageCurve {
    label: String,
    points: Vec<(f64, f64)>,
}

/// Colours of a storage chart's lines, in order (one chart may hold one
/// path of every environment, peers included, so not [`env_color`]).
const STORAGE_COLORS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(255, 127, 14),
    RGBColor(127, 127, 127),
    RGBColor(23, 190, 207),
    RGBColor(188, 189, 34),
    RGBColor(227, 119, 194),
];

/// Width of a storage chart's legend column, px: a label such as
/// `runsc (ptrace, default) — volume (host directory bind-mounted, served
/// by gVisor's gofer), 9p` wraps onto lines of [`STORAGE_LEGEND_CHARS`].
const STORAGE_LEGEND_WIDTH: u32 = 330;
/// Characters per legend line before it wraps.
const STORAGE_LEGEND_CHARS: usize = 44;

/// `plots/storage-<metric>.svg|png` for every fs.* metric of `ms` with
/// at least 10 samples: latency per operation by percentile (HdrHistogram's
/// nines axis), one line per environment and storage path.
pub fn storage(dir: &Path, ms: &[Measurement]) -> Result<Vec<PathBuf>, ReportError> {
    let mut out = Vec::new();
    for ((_, name), group) in by_metric(ms) {
        if group[0].metric.family != isobench_workloads::catalog::Family::Fs {
            continue;
        }
        let curves: Vec<StorageCurve> = group
            .iter()
            .filter(|m| m.histogram.len() >= 10)
            .map(|m| {
                let n = m.histogram.len() as f64;
                let top = n.log10().min(MAX_NINES);
                let steps = 200;
                let points = (0..=steps)
                    .map(|i| top * i as f64 / steps as f64)
                    .map(|x| (x, m.histogram.value_at_quantile(1.0 - 10f64.powf(-x)) as f64 / 1e3))
                    .collect();
                StorageCurve { label: format!("{} — {}", m.env_label, m.storage.as_deref().unwrap_or("storage path not recorded")), points }
            })
            .collect();
        if curves.is_empty() {
            continue;
        }
        ensure_font().map_err(|message| ReportError::Plot { path: dir.to_path_buf(), message })?;
        std::fs::create_dir_all(dir).map_err(|source| ReportError::Io { path: dir.to_path_buf(), source })?;
        let title = format!("{name}: latency per operation by percentile");
        both(dir, &format!("storage-{name}"), &mut out, |svg, png| match (svg, png) {
            (Some(p), _) => draw_storage(SVGBackend::new(p, SIZE).into_drawing_area(), &title, &curves),
            (_, Some(p)) => draw_storage(BitMapBackend::new(p, SIZE).into_drawing_area(), &title, &curves),
            _ => Ok(()),
        })?;
    }
    Ok(out)
}

/// `text` broken into lines of at most `width` characters at spaces.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for word in text.split_whitespace() {
        match lines.last_mut() {
            Some(l) if l.chars().count() + 1 + word.chars().count() <= width => {
                l.push(' ');
                l.push_str(word);
            }
            _ => lines.push(word.to_string()),
        }
    }
    lines
}

fn draw_storage<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, title: &str, curves: &[StorageCurve]) -> Result<(), String> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(e)?;
    let root = root.titled(title, (FONT, 20)).map_err(e)?;
    let (plot, legend) = root.split_horizontally(SIZE.0 - STORAGE_LEGEND_WIDTH);
    let all = curves.iter().flat_map(|c| c.points.iter().map(|p| p.1)).filter(|v| *v > 0.0);
    let (lo, hi) = all.fold((f64::MAX, 0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let (lo, hi) = if hi > 0.0 { (lo / 1.3, hi * 1.3) } else { (0.1, 1.0) };
    let mut chart = ChartBuilder::on(&plot)
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..MAX_NINES, (lo..hi).log_scale())
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_labels(5)
        .x_label_formatter(&|x| {
            let p = 100.0 * (1.0 - 10f64.powf(-x));
            if p < 99.0 {
                format!("p{p:.0}")
            } else {
                format!("p{}", format!("{p:.4}").trim_end_matches('0').trim_end_matches('.'))
            }
        })
        .y_label_formatter(&|v| num(*v))
        .x_desc("percentile (1 − 1/x, log scale)")
        .y_desc("µs per operation (log; lower is better)")
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 14))
        .draw()
        .map_err(e)?;
    for (i, c) in curves.iter().enumerate() {
        let color = STORAGE_COLORS[i % STORAGE_COLORS.len()];
        chart.draw_series(LineSeries::new(c.points.iter().copied(), color.stroke_width(2))).map_err(e)?;
    }
    // The legend, outside the plot: a swatch, then the wrapped label.
    let mut y = 20i32;
    for (i, c) in curves.iter().enumerate() {
        let color = STORAGE_COLORS[i % STORAGE_COLORS.len()];
        legend.draw(&PathElement::new(vec![(6, y + 7), (28, y + 7)], color.stroke_width(3))).map_err(e)?;
        for line in wrap(&c.label, STORAGE_LEGEND_CHARS) {
            legend.draw(&Text::new(line, (34, y), (FONT, 13).into_font())).map_err(e)?;
            y += 17;
        }
        y += 8;
    }
    root.present().map_err(e)
}

/// [`env_color`], with the peers told apart: the density charts draw
/// every peer on one chart.
fn peer_color(env: &str) -> RGBColor {
    match env {
        "runc" => RGBColor(148, 103, 189),
        "crun" => RGBColor(140, 86, 75),
        "bwrap" => RGBColor(255, 127, 14),
        "unshare" => RGBColor(127, 127, 127),
        "runsc" => RGBColor(23, 190, 207),
        _ => env_color(env),
    }
}

/// Lines of (env, label, (C, value)) on log axes; each group's second
/// member says whether it is drawn thin with crosses (the p99s).
type ConcurrencyLines = Vec<(String, String, Vec<(f64, f64)>)>;

/// The density charts' legend column, px: the longest label
/// (`crun (default, cgroups disabled)`) at 13 px.
const LEGEND_WIDTH: u32 = 300;

fn draw_by_concurrency<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    title: &str,
    y_desc: &str,
    groups: &[(ConcurrencyLines, bool)],
) -> Result<(), String> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(e)?;
    // The legend beside the plot, never over a point.
    let (plot, legend) = root.split_horizontally(root.dim_in_pixel().0.saturating_sub(LEGEND_WIDTH));
    let points = groups.iter().flat_map(|(g, _)| g.iter().flat_map(|(_, _, p)| p.iter().copied())).filter(|p| p.1 > 0.0);
    let (xmax, ylo, yhi) = points.fold((1f64, f64::MAX, 0f64), |(x, lo, hi), p| (x.max(p.0), lo.min(p.1), hi.max(p.1)));
    let (ylo, yhi) = if yhi > 0.0 { (ylo / 1.5, yhi * 1.5) } else { (0.1, 1.0) };
    let mut chart = ChartBuilder::on(&plot)
        .caption(title, (FONT, 18))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d((0.8f64..xmax * 1.25).log_scale(), (ylo..yhi).log_scale())
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("concurrency C (starts in flight, log scale)")
        .y_desc(y_desc)
        .x_label_formatter(&|x| if (x - x.round()).abs() < 1e-9 { format!("{x:.0}") } else { String::new() })
        .y_label_formatter(&|y| num(*y))
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 14))
        .draw()
        .map_err(e)?;
    for (lines, thin) in groups {
        for (env, _, pts) in lines {
            let color = peer_color(env);
            let pts: Vec<(f64, f64)> = pts.iter().copied().filter(|p| p.1 > 0.0).collect();
            let style = if *thin { color.stroke_width(1) } else { color.stroke_width(3) };
            chart.draw_series(LineSeries::new(pts.iter().copied(), style)).map_err(e)?;
            if !*thin {
                chart.draw_series(pts.iter().map(|&p| Circle::new(p, 4, color.filled()))).map_err(e)?;
            } else {
                chart.draw_series(pts.iter().map(|&p| Cross::new(p, 5, color.stroke_width(2)))).map_err(e)?;
            }
        }
    }
    let mut y = 60;
    for (lines, _) in groups.iter().take(1) {
        for (env, label, _) in lines {
            let color = peer_color(env);
            legend.draw(&PathElement::new(vec![(8, y), (28, y)], color.stroke_width(3))).map_err(e)?;
            legend.draw(&Text::new(label.clone(), (34, y - 7), (FONT, 13))).map_err(e)?;
            y += 22;
        }
    }
    if groups.iter().any(|(_, thin)| *thin) {
        legend.draw(&Text::new("thin ×: p99", (8, y + 4), (FONT, 13))).map_err(e)?;
    }
    root.present().map_err(e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use isobench_workloads::catalog;

    fn m(env: &str, label: &str, metric: &str, center: u64) -> Measurement {
        let mut m = Measurement::new(env, label, catalog::lookup(metric).unwrap());
        for i in 0..500u64 {
            m.histogram.record(center + i * center / 500).unwrap();
        }
        m
    }

    fn texts(svg: &str) -> Vec<String> {
        svg.split("<text")
            .skip(1)
            .filter_map(|t| t.split_once('>').and_then(|(_, r)| r.split_once("</text>")).map(|(x, _)| x.trim().to_string()))
            .collect()
    }

    #[test]
    fn every_chart_renders_with_its_title_and_series() {
        let d = tempfile::tempdir().unwrap();
        let ms = vec![
            m("native", "native", "syscall.getpid", 100),
            m("container", "container", "syscall.getpid", 100),
            m("vm", "vm (emulated (TCG))", "syscall.getpid", 5_000),
            m("native", "native", "net.tcp_stream", 10_000),
            m("vm", "vm (emulated (TCG))", "net.tcp_stream", 90_000),
        ];
        let plots = render_all(d.path(), &ms, &[]).unwrap();
        let names: Vec<String> = plots.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
        for want in
            ["syscall.getpid.svg", "syscall.getpid.png", "syscall.getpid.percentiles.svg", "net.tcp_stream.svg", "overhead.svg", "overhead.png"]
        {
            assert!(names.iter().any(|n| n == want), "{want} not drawn: {names:?}");
        }
        assert!(!names.iter().any(|n| n == "net.tcp_stream.percentiles.svg"), "no percentile curve for a rate");
        for p in &plots {
            let path = d.path().join(p.strip_prefix("plots").unwrap());
            let len = std::fs::metadata(&path).unwrap().len();
            assert!(len > 1000, "{} is {len} bytes", path.display());
        }
        let svg = |n: &str| texts(&std::fs::read_to_string(d.path().join(n)).unwrap());
        let bars = svg("syscall.getpid.svg");
        assert!(bars.iter().any(|t| t.starts_with("syscall.getpid (ns)") && t.contains("emulated (TCG)")), "title names the accelerator: {bars:?}");
        for label in ["native", "container", "vm (emulated (TCG))"] {
            assert!(bars.iter().any(|t| t == label), "no bar labelled {label}: {bars:?}");
        }
        assert!(bars.iter().any(|t| t.contains("log scale")), "50× apart: log axis: {bars:?}");
        let curves = svg("syscall.getpid.percentiles.svg");
        assert!(curves.iter().any(|t| t == "vm (emulated (TCG))") && curves.iter().any(|t| t == "p99"), "{curves:?}");
        let overhead = svg("overhead.svg");
        assert!(overhead.iter().any(|t| t == "container") && overhead.iter().any(|t| t == "net.tcp_stream"), "{overhead:?}");
    }
}
