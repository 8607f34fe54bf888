//! Charts (plotters draws each as SVG; resvg rasterises that SVG into the
//! PNG beside it, so both show one drawing with the text laid out by a real
//! text engine):
//!
//! - `plots/<metric>.svg|png`: one horizontal bar per environment, p50 with
//!   a p10–p90 whisker, in the metric's unit; the environment labels carry
//!   the vm's accelerator ("vm (emulated (TCG))").
//! - `plots/<metric>.percentiles.svg|png`: latency by percentile, one line per
//!   environment, x on HdrHistogram's "nines" axis (p90, p99, p99.9, …).
//! - `plots/storage-<metric>.svg|png`: for each fs.* metric, latency per
//!   operation by percentile, one line per environment and storage path
//!   (the legend, outside the plot, names both), µs on a log axis.
//! - `plots/apps-<metric>.svg|png`: for each app.* metric, requests per
//!   second at saturation per environment with its ratio to native
//!   (closed loop), or latency by percentile with the corrected and the
//!   uncorrected line per environment (open loop, [`apps`]).
//! - `plots/overhead.svg|png`: p50 cost ratio to native per metric and
//!   environment with its 95 % interval, bars growing from 1× (no overhead);
//!   on a log axis when the ratios span more than [`LOG_AXIS_SPREAD`], and
//!   then `plots/overhead-near-native.svg|png` beside it: the environments
//!   other than the vm on a linear axis, where their bars near 1× are not
//!   slivers.
//!
//! The conventions every chart follows, here for the charts of every
//! section (gnuplot's and matplotlib's defaults, made rules): ticks at
//! 1-2-5 steps on linear axes and at 1, 2, 5 × 10ⁿ on log axes, labelled
//! with no more decimals than the step needs ([`linear_ticks`],
//! [`log_ticks`]); every value axis names its unit, its scale and which way
//! is better ([`value_axis`], [`Better`]); the title names what is plotted
//! and fits the width ([`titled`]); legends sit in a column beside the data,
//! never over it ([`legend_column`]); category labels sit on the left of
//! horizontal bars, in an area as wide as the longest, so none is clipped
//! or overprinted. Environment colours are fixed ([`env_color`]) so every
//! chart agrees. Draw a new chart with these and write it with
//! [`write_chart`].

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, SegmentValue};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{register_font, FontStyle};
use resvg::{tiny_skia, usvg};

use crate::collect::{Measurement, Summary};
use crate::results::startup::{StartupRow, StartupRun};
use crate::results::write_atomic;
use crate::workloads::Noop;

use super::columns::{baseline_for, by_metric, env_order, is_baseline, split_env};
use super::format::num;
use super::phases::Phases;
use super::ReportError;

/// Pixel size of every chart (the height grows with the rows of a chart
/// that has many).
pub const SIZE: (u32, u32) = (900, 500);

/// TrueType fonts tried for chart text, in order (Debian's fonts-dejavu-core
/// first; scripts/setup installs it). DejaVu Sans has µ, ×, ≈ and the
/// arrows the titles use.
pub const FONT_CANDIDATES: [&str; 4] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
];

const FONT: &str = "sans-serif";

/// Font sizes, px: the title's largest, shrunk to fit the width down to
/// its smallest; labels and axis descriptions.
const TITLE_PX: f64 = 19.0;
const TITLE_MIN_PX: f64 = 12.0;
const LABEL_PX: f64 = 13.0;
const AXIS_PX: f64 = 14.0;

/// The font file's bytes, read once (`ISOBENCH_FONT`, else the first of
/// [`FONT_CANDIDATES`] that exists).
fn font_bytes() -> Result<&'static [u8], String> {
    static BYTES: OnceLock<Result<&'static [u8], String>> = OnceLock::new();
    BYTES
        .get_or_init(|| {
            let from_env = std::env::var("ISOBENCH_FONT").ok();
            for path in from_env.iter().map(String::as_str).chain(FONT_CANDIDATES) {
                if let Ok(bytes) = std::fs::read(path) {
                    // plotters keeps registered fonts for the life of the process.
                    return Ok(Box::leak(bytes.into_boxed_slice()));
                }
            }
            Err("no TrueType font found: install fonts-dejavu-core (scripts/setup does) or set ISOBENCH_FONT".into())
        })
        .clone()
}

/// Registers the chart font with plotters (its `ab_glyph` text backend has no
/// system font lookup). Every chart in the process needs it, criterion's own
/// included, so the benches call this before criterion draws anything.
///
/// Errors: no usable TrueType font (the message names the package).
pub fn ensure_font() -> Result<(), String> {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| {
        let bytes = font_bytes()?;
        for style in [FontStyle::Normal, FontStyle::Bold, FontStyle::Italic, FontStyle::Oblique] {
            for family in [FONT, "serif", "monospace"] {
                register_font(family, style, bytes).map_err(|_| "the chart font is not a usable TrueType font".to_string())?;
            }
        }
        Ok(())
    })
    .clone()
}

/// The font database resvg lays the SVG's text out with: the same font
/// file, as every generic family.
fn font_db() -> Result<Arc<usvg::fontdb::Database>, String> {
    static DB: OnceLock<Result<Arc<usvg::fontdb::Database>, String>> = OnceLock::new();
    DB.get_or_init(|| {
        let mut db = usvg::fontdb::Database::new();
        db.load_font_data(font_bytes()?.to_vec());
        let family = db.faces().next().and_then(|f| f.families.first()).map(|f| f.0.clone()).ok_or("the chart font has no family name")?;
        db.set_sans_serif_family(family.clone());
        db.set_serif_family(family.clone());
        db.set_monospace_family(family);
        Ok(Arc::new(db))
    })
    .clone()
}

/// `svg` rasterised into a PNG of its own size.
fn rasterise(svg: &str) -> Result<Vec<u8>, String> {
    let opt = usvg::Options { fontdb: font_db()?, ..usvg::Options::default() };
    let tree = usvg::Tree::from_str(svg, &opt).map_err(|e| format!("the SVG does not parse: {e}"))?;
    let size = tree.size().to_int_size();
    let mut pixmap = tiny_skia::Pixmap::new(size.width(), size.height()).ok_or("empty chart")?;
    resvg::render(&tree, tiny_skia::Transform::default(), &mut pixmap.as_mut());
    pixmap.encode_png().map_err(|e| e.to_string())
}

/// Which way a value axis reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    /// Time, a cost ratio, a start: less is better.
    Lower,
    /// A rate, a throughput: more is better.
    Higher,
}

impl Better {
    pub fn words(self) -> &'static str {
        match self {
            Better::Lower => "lower is better",
            Better::Higher => "higher is better",
        }
    }
}

/// The description of a value axis: what is read on it with its unit, its
/// scale, and which way is better: "ns per operation (log scale) — lower is
/// better".
pub fn value_axis(what: &str, log: bool, better: Better) -> String {
    format!("{what}{} — {}", if log { " (log scale)" } else { "" }, better.words())
}

/// One tick of an axis: where, and its label.
#[derive(Debug, Clone, PartialEq)]
pub struct Tick {
    pub value: f64,
    pub label: String,
}

/// `v` with no more decimals than a step of `step` needs and no trailing
/// zeros: "0", "0.5", "20", "0.002"; never "0.000" or "-0".
pub fn tick_label(v: f64, step: f64) -> String {
    let d = if step >= 1.0 { 0 } else { (-step.log10() - 1e-9).ceil().max(0.0) as usize };
    let s = format!("{v:.d$}");
    let s = if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.') } else { &s };
    if s == "-0" {
        return "0".into();
    }
    s.to_string()
}

/// Ticks of a linear axis over `lo..=hi` at a step of 1, 2 or 5 × 10ⁿ, at
/// most `max` of them.
pub fn linear_ticks(lo: f64, hi: f64, max: usize) -> Vec<Tick> {
    let span = hi - lo;
    if !(span > 0.0 && span.is_finite()) {
        return vec![Tick { value: lo, label: tick_label(lo, lo.abs().max(1.0)) }];
    }
    let max = max.max(2) as f64;
    let mag = 10f64.powf((span / max).log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0, 20.0].iter().map(|m| m * mag).find(|s| span / s <= max).unwrap_or(50.0 * mag);
    let (first, last) = ((lo / step - 1e-9).ceil() as i64, (hi / step + 1e-9).floor() as i64);
    (first..=last).map(|k| k as f64 * step).map(|v| Tick { value: v, label: tick_label(v, step) }).collect()
}

/// Ticks of a log axis over `lo..=hi` (both > 0): 1, 2 and 5 × 10ⁿ where at
/// most `max` fit, else the powers of ten (every k-th where there are too
/// many); a range narrower than that gets [`linear_ticks`].
pub fn log_ticks(lo: f64, hi: f64, max: usize) -> Vec<Tick> {
    if !(lo > 0.0 && hi > lo && hi.is_finite()) {
        return linear_ticks(lo, hi, max);
    }
    let (a, b) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
    let within = |v: &f64| *v >= lo * (1.0 - 1e-9) && *v <= hi * (1.0 + 1e-9);
    let tick = |v: f64| Tick { value: v, label: tick_label(v, v) };
    for mantissas in [&[1.0, 2.0, 5.0][..], &[1.0][..]] {
        let t: Vec<f64> = (a..=b).flat_map(|e| mantissas.iter().map(move |m| m * 10f64.powi(e))).filter(within).collect();
        if t.len() <= max && t.len() >= 3 {
            return t.into_iter().map(tick).collect();
        }
        if t.len() < 3 && mantissas.len() == 3 {
            // Less than a 1-2-5 step apart: a linear axis's ticks read better.
            return linear_ticks(lo, hi, max);
        }
    }
    let every = ((b - a) as usize).div_ceil(max.max(1)).max(1);
    (a..=b).step_by(every).map(|e| 10f64.powi(e)).filter(within).map(tick).collect()
}

/// A linear axis over f64 whose ticks are given ([`linear_ticks`]):
/// plotters' own `with_key_points` over f64 has no value formatter to build
/// a mesh with.
pub struct Ticked {
    range: RangedCoordf64,
    ticks: Vec<f64>,
}

impl Ticked {
    pub fn new(range: std::ops::Range<f64>, ticks: &[Tick]) -> Self {
        Ticked { range: range.into(), ticks: ticks.iter().map(|t| t.value).collect() }
    }
}

impl Ranged for Ticked {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.range.map(value, limit)
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        // Grid lines at the ticks only, no lighter ones between.
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.range.range()
    }
}

/// The label of the tick nearest `v` (plotters asks for the labels of the
/// key points it was given, in its own arithmetic).
fn label_at(ticks: &[Tick], v: f64, suffix: &str) -> String {
    let near = ticks.iter().min_by(|a, b| (a.value - v).abs().total_cmp(&(b.value - v).abs()));
    match near {
        Some(t) if (t.value - v).abs() <= 1e-6 * t.value.abs().max(1e-12) => format!("{}{suffix}", t.label),
        _ => String::new(),
    }
}

/// The width in px of `text` at `px`, as the chart's font lays it out.
fn text_width<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, text: &str, px: f64) -> u32 {
    area.estimate_text_size(text, &TextStyle::from((FONT, px))).map(|s| s.0).unwrap_or((text.chars().count() as f64 * px * 0.6) as u32)
}

/// Fills `root` white and draws `title` across its top, in the largest size
/// up to [`TITLE_PX`] that fits the width; returns the area below it.
pub fn titled<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, title: &str) -> Result<DrawingArea<DB, Shift>, String> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(e)?;
    let room = root.dim_in_pixel().0.saturating_sub(20);
    let mut px = TITLE_PX;
    while px > TITLE_MIN_PX && text_width(root, title, px) > room {
        px -= 1.0;
    }
    root.titled(title, (FONT, px)).map_err(e)
}

/// What a legend entry shows beside its label.
#[derive(Debug, Clone, Copy)]
pub enum Mark {
    /// A filled square (bars, segments).
    Box,
    /// A thick line (curves).
    Line,
}

/// One legend entry.
#[derive(Debug, Clone)]
pub struct LegendEntry {
    pub label: String,
    pub color: RGBColor,
    pub mark: Mark,
}

/// Splits `area` into the data's part and a legend column at its right,
/// as wide as the longest label, and draws the legend there: never over
/// the data. With no entries the whole area is the data's.
pub fn legend_column<DB: DrawingBackend>(area: DrawingArea<DB, Shift>, entries: &[LegendEntry]) -> Result<DrawingArea<DB, Shift>, String> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    if entries.is_empty() {
        return Ok(area);
    }
    let widest = entries.iter().map(|l| text_width(&area, &l.label, LABEL_PX)).max().unwrap_or(0);
    let width = area.dim_in_pixel().0;
    let column = (widest + 44).min(width / 2);
    let (plot, legend) = area.split_horizontally(width - column);
    let mut y = 40;
    for l in entries {
        match l.mark {
            Mark::Box => legend.draw(&Rectangle::new([(8, y - 6), (22, y + 6)], l.color.filled())).map_err(e)?,
            Mark::Line => legend.draw(&PathElement::new(vec![(6, y), (26, y)], l.color.stroke_width(3))).map_err(e)?,
        }
        legend.draw(&Text::new(l.label.clone(), (32, y), TextStyle::from((FONT, LABEL_PX)).pos(Pos::new(HPos::Left, VPos::Center)))).map_err(e)?;
        y += 22;
    }
    Ok(plot)
}

/// Writes a chart as `<stem>.svg` and `<stem>.png` in `dir` (each to a
/// temporary name, renamed: no half-written chart), drawn once by `draw` on
/// an SVG of `size` and rasterised; adds both paths, relative to the run
/// folder, to `out`.
pub fn write_chart<F>(dir: &Path, stem: &str, size: (u32, u32), out: &mut Vec<PathBuf>, draw: F) -> Result<(), ReportError>
where
    F: FnOnce(DrawingArea<SVGBackend<'_>, Shift>) -> Result<(), String>,
{
    let svg_path = dir.join(format!("{stem}.svg"));
    let png_path = dir.join(format!("{stem}.png"));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        draw(root).map_err(|message| ReportError::Plot { path: svg_path.clone(), message })?;
    }
    let png = rasterise(&svg).map_err(|message| ReportError::Plot { path: png_path.clone(), message })?;
    // A chart that cannot be written (a full file system) is a chart's
    // failure, named as such.
    let written = |path: &Path, bytes: &[u8]| {
        write_atomic(path, bytes).map_err(|e| ReportError::Plot {
            path: path.to_path_buf(),
            message: match e {
                crate::results::ResultsError::Io { source, .. } => source.to_string(),
                other => other.to_string(),
            },
        })
    };
    written(&svg_path, svg.as_bytes())?;
    written(&png_path, &png)?;
    out.push(PathBuf::from("plots").join(format!("{stem}.svg")));
    out.push(PathBuf::from("plots").join(format!("{stem}.png")));
    Ok(())
}

/// The colour of an environment in every chart.
pub fn env_color(env: &str) -> RGBColor {
    match split_env(env).0 {
        "native" => RGBColor(31, 119, 180),
        "container" => RGBColor(44, 160, 44),
        "vm" => RGBColor(214, 39, 40),
        "crun" => RGBColor(140, 86, 75),
        "bwrap" => RGBColor(255, 127, 14),
        "unshare" => RGBColor(127, 127, 127),
        "runsc" => RGBColor(23, 190, 207),
        // runc, and any environment this list does not know.
        _ => RGBColor(148, 103, 189),
    }
}

/// Upper bound of a segmented axis holding `n` slots: plotters' segmented
/// coordinates over `0..m` have m + 1 segments.
fn last_slot(n: usize) -> usize {
    n.saturating_sub(1).max(1)
}

/// One bar: a centre value with a whisker.
pub struct Bar {
    pub env: String,
    pub label: String,
    /// Whisker's ends and the bar's value.
    pub p10: f64,
    pub p50: f64,
    pub p90: f64,
}

/// Environments whose p50s differ by more than this factor are drawn on a
/// log axis, so native's bar stays visible beside an emulated guest's.
pub const LOG_AXIS_SPREAD: f64 = 20.0;

/// Height of a horizontal bar chart of `rows` rows, px.
fn rows_height(rows: usize, per_row: u32) -> u32 {
    (110 + rows as u32 * per_row).max(SIZE.1)
}

/// A horizontal bar chart: one row per bar, its label on the left.
struct BarChart<'a> {
    title: &'a str,
    /// What the value axis reads, with its unit ("ns per operation").
    what: &'a str,
    better: Better,
    bars: &'a [Bar],
    /// The text beside a bar, from its value.
    value: &'a dyn Fn(f64) -> String,
    /// Appended to the tick labels ("×" on a ratio axis).
    tick_suffix: &'a str,
    /// A vertical reference line (1× on a ratio axis).
    reference: Option<f64>,
    /// Log axis; else linear from 0.
    log: bool,
}

/// The value-axis range in drawing space (log10 of the value on a log
/// axis) that holds `low..=top` and leaves `label_px` of `plot_px` free
/// at the right of `top` for a value label.
fn value_range(low: f64, top: f64, log: bool, label_px: u32, plot_px: u32) -> (f64, f64) {
    let free = (f64::from(label_px) / f64::from(plot_px.max(1))).min(0.6);
    if log {
        let x0 = low.max(f64::MIN_POSITIVE).log10().floor();
        let t = top.max(f64::MIN_POSITIVE).log10().max(x0 + 0.5);
        (x0, x0 + (t - x0) / (1.0 - free))
    } else {
        let t = if top > 0.0 { top } else { 1.0 };
        (0.0, t / (1.0 - free) * 1.02)
    }
}

fn draw_bars<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, c: &BarChart<'_>) -> Result<(), String> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let area = titled(&root, c.title)?;
    let n = c.bars.len();
    let label_area = c.bars.iter().map(|b| text_width(&area, &b.label, LABEL_PX)).max().unwrap_or(0) + 16;
    let value_px = c.bars.iter().map(|b| text_width(&area, &(c.value)(b.p50), LABEL_PX)).max().unwrap_or(0) + 14;
    let plot_px = area.dim_in_pixel().0.saturating_sub(label_area + 30);
    let positive = |v: f64| v.max(f64::MIN_POSITIVE);
    let tf = |v: f64| if c.log { positive(v).log10() } else { v };
    let top = c.bars.iter().map(|b| b.p10.max(b.p90).max(b.p50)).fold(0.0, f64::max).max(c.reference.unwrap_or(0.0));
    let low = c.bars.iter().map(|b| b.p10.min(b.p90).min(b.p50)).fold(f64::MAX, f64::min).min(c.reference.unwrap_or(f64::MAX));
    let (x0, x1) = value_range(low, top, c.log, value_px, plot_px);
    let ticks = if c.log { log_ticks(10f64.powf(x0), 10f64.powf(x1), 10) } else { linear_ticks(x0, x1, 8) };
    let key: Vec<Tick> = ticks.iter().map(|t| Tick { value: tf(t.value), label: t.label.clone() }).collect();
    let mut chart = ChartBuilder::on(&area)
        .margin(15)
        .margin_top(5)
        .x_label_area_size(50)
        .y_label_area_size(label_area)
        .build_cartesian_2d(Ticked::new(x0..x1, &key), (0..last_slot(n)).into_segmented())
        .map_err(e)?;
    let labels: Vec<String> = c.bars.iter().map(|b| b.label.clone()).collect();
    let row = |i: usize| n - 1 - i;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(n.max(1))
        .y_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) if *i < n => labels[row(*i)].clone(),
            _ => String::new(),
        })
        .x_label_formatter(&|x| label_at(&ticks, if c.log { 10f64.powf(*x) } else { *x }, c.tick_suffix))
        .x_desc(value_axis(c.what, c.log, c.better))
        .label_style((FONT, LABEL_PX))
        .axis_desc_style((FONT, AXIS_PX))
        .draw()
        .map_err(e)?;
    chart
        .draw_series(c.bars.iter().enumerate().map(|(i, b)| {
            let mut r = Rectangle::new(
                [(x0, SegmentValue::Exact(row(i))), (tf(b.p50), SegmentValue::Exact(row(i) + 1))],
                env_color(&b.env).mix(0.85).filled(),
            );
            r.set_margin(8, 8, 0, 0);
            r
        }))
        .map_err(e)?;
    chart
        .draw_series(c.bars.iter().enumerate().map(|(i, b)| {
            PathElement::new(vec![(tf(b.p10), SegmentValue::CenterOf(row(i))), (tf(b.p90), SegmentValue::CenterOf(row(i)))], BLACK.stroke_width(2))
        }))
        .map_err(e)?;
    if let Some(r) = c.reference {
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(tf(r), SegmentValue::Exact(0)), (tf(r), SegmentValue::Exact(last_slot(n) + 1))],
                BLACK.stroke_width(1),
            )))
            .map_err(e)?;
    }
    chart
        .draw_series(c.bars.iter().enumerate().map(|(i, b)| {
            let end = tf(b.p10.max(b.p90).max(b.p50));
            EmptyElement::at((end, SegmentValue::CenterOf(row(i))))
                + Text::new((c.value)(b.p50), (6, 0), TextStyle::from((FONT, LABEL_PX)).pos(Pos::new(HPos::Left, VPos::Center)))
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
        Noop::Static => ("start-per-namespace", "isobench launcher: start → exit of a no-op, by namespace set (p50, whisker p10–p90)"),
        Noop::Nolibc => {
            ("start-per-namespace-nolibc", "isobench launcher: start → exit of the nolibc no-op, by namespace set (p50, whisker p10–p90)")
        }
    };
    let value = |v: f64| format!("{} ms", num(v));
    let chart = BarChart {
        title,
        what: "ms from start to exit",
        better: Better::Lower,
        bars: &bars,
        value: &value,
        tick_suffix: "",
        reference: None,
        log: false,
    };
    write_chart(dir, name, (SIZE.0, rows_height(bars.len(), 36)), &mut out, |root| draw_bars(root, &chart))?;
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

/// The percentile axis's ticks: the minimum, the median, p90, p99, ….
fn nines_ticks() -> Vec<Tick> {
    let mut t = vec![Tick { value: 0.0, label: "min".into() }, Tick { value: 2f64.log10(), label: "p50".into() }];
    for k in 1..=MAX_NINES as i32 {
        let p = 100.0 * (1.0 - 10f64.powi(-k));
        t.push(Tick { value: f64::from(k), label: format!("p{}", format!("{p:.4}").trim_end_matches('0').trim_end_matches('.')) });
    }
    t
}

fn draw_percentiles<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, title: &str, unit: &str, curves: &[Curve]) -> Result<(), String> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let area = titled(&root, title)?;
    let legend: Vec<LegendEntry> =
        curves.iter().map(|c| LegendEntry { label: c.label.clone(), color: env_color(&c.env), mark: Mark::Line }).collect();
    let plot = legend_column(area, &legend)?;
    let lines: Vec<(RGBColor, &[(f64, f64)])> = curves.iter().map(|c| (env_color(&c.env), c.points.as_slice())).collect();
    draw_nines(&plot, &value_axis(&format!("{unit} per operation"), true, Better::Lower), &lines)?;
    root.present().map_err(e)
}

/// Lines of latency by percentile on `plot`: x on HdrHistogram's nines
/// axis, y on a log axis described by `y_desc`.
fn draw_nines<DB: DrawingBackend>(plot: &DrawingArea<DB, Shift>, y_desc: &str, lines: &[(RGBColor, &[(f64, f64)])]) -> Result<(), String> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let all = lines.iter().flat_map(|(_, p)| p.iter().map(|p| p.1)).filter(|v| *v > 0.0);
    let (lo, hi) = all.fold((f64::MAX, 0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let (lo, hi) = if hi > 0.0 { (lo / 1.3, hi * 1.3) } else { (0.1, 1.0) };
    let yt = log_ticks(lo, hi, 10);
    let xt = nines_ticks();
    let mut chart = ChartBuilder::on(plot)
        .margin(15)
        .margin_top(5)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(Ticked::new(0f64..MAX_NINES, &xt), (lo..hi).log_scale().with_key_points(yt.iter().map(|t| t.value).collect()))
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_label_formatter(&|x| label_at(&xt, *x, ""))
        .y_label_formatter(&|y| label_at(&yt, *y, ""))
        .x_desc("percentile (log scale of nines: p90, p99, p99.9, …)")
        .y_desc(y_desc)
        .label_style((FONT, LABEL_PX))
        .axis_desc_style((FONT, AXIS_PX))
        .draw()
        .map_err(e)?;
    for (color, points) in lines {
        chart.draw_series(LineSeries::new(points.iter().copied(), color.stroke_width(2))).map_err(e)?;
    }
    Ok(())
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

/// The blank above and below each row's bar, as a fraction of the row.
const PHASE_ROW_GAP: f64 = 0.17;

/// Caption of the vm's boot-phase chart.
const BOOT_PHASES_CAPTION: &str = "vm boot phases: host-measured medians, ms from QEMU's start to the agent's ready line";
/// Caption of the container's start-phase chart.
const CONTAINER_PHASES_CAPTION: &str = "container start phases: host-measured medians, ms from the start asked to the agent's ready line";

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
    write_chart(dir, "container-start-phases", (SIZE.0, height), &mut out, |root| draw_phases(root, CONTAINER_PHASES_CAPTION, phases))?;
    Ok(out)
}

fn draw_phases<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, caption: &str, phases: &[Phases]) -> Result<(), String> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let area = titled(&root, caption)?;
    let names: Vec<&str> = phases.iter().flat_map(|p| p.segments.iter().map(|s| s.0)).fold(Vec::new(), |mut v, n| {
        if !v.contains(&n) {
            v.push(n);
        }
        v
    });
    let legend: Vec<LegendEntry> = names
        .iter()
        .enumerate()
        .map(|(k, n)| LegendEntry { label: n.to_string(), color: PHASE_COLORS[k % PHASE_COLORS.len()], mark: Mark::Box })
        .collect();
    let plot = legend_column(area, &legend)?;
    let total = phases.iter().map(|p| p.segments.iter().map(|s| s.1).sum::<f64>()).fold(0.0, f64::max).max(1.0);
    let n = phases.len();
    let label_area = phases.iter().map(|p| text_width(&plot, &p.label, LABEL_PX)).max().unwrap_or(0) + 16;
    let ticks = linear_ticks(0.0, total * 1.05, 8);
    // One row per environment, row i over [i, i + 1), its label at its
    // middle: a continuous axis, since a segmented one over a single
    // value (one environment: the vm's boot) has two segments and left
    // the top one empty.
    let rows: Vec<Tick> = phases.iter().enumerate().map(|(i, p)| Tick { value: i as f64 + 0.5, label: p.label.clone() }).collect();
    let mut chart = ChartBuilder::on(&plot)
        .margin(15)
        .margin_top(5)
        .x_label_area_size(50)
        .y_label_area_size(label_area)
        .build_cartesian_2d(Ticked::new(0f64..total * 1.05, &ticks), Ticked::new(0f64..n.max(1) as f64, &rows))
        .map_err(e)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(n.max(1))
        .y_label_formatter(&|v| label_at(&rows, *v, ""))
        .x_label_formatter(&|x| label_at(&ticks, *x, ""))
        .x_desc(value_axis("ms since the start was asked", false, Better::Lower))
        .label_style((FONT, LABEL_PX))
        .axis_desc_style((FONT, AXIS_PX))
        .draw()
        .map_err(e)?;
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
            .draw_series(
                rects
                    .into_iter()
                    .map(move |(i, a, b)| Rectangle::new([(a, i as f64 + PHASE_ROW_GAP), (b, i as f64 + 1.0 - PHASE_ROW_GAP)], color.filled())),
            )
            .map_err(e)?;
    }
    root.present().map_err(e)
}

/// One metric's overheads: (env, label, ratio, 95 % interval low, high).
struct Group {
    metric: String,
    ratios: Vec<(String, String, f64, f64, f64)>,
}

/// Height of the overhead chart: one row per metric × environment.
fn overhead_height(groups: &[Group]) -> u32 {
    let k = groups.iter().map(|g| g.ratios.len()).max().unwrap_or(1) as u32;
    (140 + groups.len() as u32 * (k + 1) * 16).max(SIZE.1)
}

/// Whether the overheads span more than [`LOG_AXIS_SPREAD`] (an emulated
/// vm beside a container near 1×): then the overview is drawn on a log
/// axis, with a linear companion for the rest.
fn overhead_needs_log(groups: &[Group]) -> bool {
    let all = groups.iter().flat_map(|g| g.ratios.iter().map(|r| r.2)).filter(|r| *r > 0.0);
    let (lo, hi) = all.fold((1.0f64, 1.0f64), |(lo, hi), r| (lo.min(r), hi.max(r)));
    hi / lo > LOG_AXIS_SPREAD
}

fn draw_overhead<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, title: &str, groups: &[Group], log: bool, note: &[String]) -> Result<(), String> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let area = titled(&root, title)?;
    // A note under the title (what the chart leaves out), one line each.
    let (head, area) = area.split_vertically(NOTE_LINE_PX * note.len() as u32);
    for (i, line) in note.iter().enumerate() {
        let at = (12, (NOTE_LINE_PX * i as u32 + NOTE_LINE_PX / 2) as i32);
        head.draw(&Text::new(line.clone(), at, TextStyle::from((FONT, LABEL_PX)).pos(Pos::new(HPos::Left, VPos::Center)))).map_err(e)?;
    }
    let mut envs: Vec<(String, String)> = Vec::new();
    for g in groups {
        for (env, label, ..) in &g.ratios {
            if !envs.iter().any(|(x, _)| x == env) {
                envs.push((env.clone(), label.clone()));
            }
        }
    }
    envs.sort_by_key(|(e, _)| env_order(e));
    let legend: Vec<LegendEntry> =
        envs.iter().map(|(env, label)| LegendEntry { label: label.clone(), color: env_color(env), mark: Mark::Box }).collect();
    let plot = legend_column(area, &legend)?;
    let k = envs.len().max(1);
    // Metrics top to bottom in catalogue order: row 0 is at the bottom.
    // Each metric's blank row is above its bars, so the first bar does not
    // touch the chart's top edge and the last sits on the axis.
    let slots = groups.len() * (k + 1);
    let row = |gi: usize, j: usize| slots - 1 - (gi * (k + 1) + j + 1);
    // The axis holds the ratios; an interval reaching past it (a smoke
    // run's few samples) is cut at its end rather than squeezing the bars.
    let all = groups.iter().flat_map(|g| g.ratios.iter().map(|r| r.2)).filter(|r| *r > 0.0);
    let (lo, hi) = all.fold((1.0f64, 1.0f64), |(lo, hi), r| (lo.min(r), hi.max(r)));
    let (lo, hi, ticks) = if log {
        let (lo, hi) = ((lo / 2.0).min(0.8), (hi * 2.0).max(2.0));
        (lo, hi, log_ticks(lo, hi, 10))
    } else {
        let hi = (hi * 1.3).max(1.5);
        (0.0, hi, linear_ticks(0.0, hi, 8))
    };
    let clamp = |v: f64| v.clamp(lo.max(f64::MIN_POSITIVE), hi);
    let label_area = groups.iter().map(|g| text_width(&plot, &g.metric, LABEL_PX)).max().unwrap_or(0) + 16;
    let key: Vec<f64> = ticks.iter().map(|t| t.value).collect();
    let desc = value_axis("p50 cost ratio, × native (1× = no overhead)", log, Better::Lower);
    let mut builder = ChartBuilder::on(&plot);
    builder.margin(15).margin_top(5).x_label_area_size(50).y_label_area_size(label_area);
    // The two scales are two coordinate types: one drawing for both.
    macro_rules! draw {
        ($x:expr) => {{
            let mut chart = builder.build_cartesian_2d($x, (0..last_slot(slots)).into_segmented()).map_err(e)?;
            let names: Vec<String> = groups.iter().map(|g| g.metric.clone()).collect();
            chart
                .configure_mesh()
                .disable_y_mesh()
                .y_labels(slots.max(1))
                .y_label_formatter(&|v| match v {
                    SegmentValue::CenterOf(i) if *i < slots => {
                        let from_top = slots - 1 - i;
                        if from_top % (k + 1) == 1 + (k - 1) / 2 {
                            names.get(from_top / (k + 1)).cloned().unwrap_or_default()
                        } else {
                            String::new()
                        }
                    }
                    _ => String::new(),
                })
                .x_desc(desc.clone())
                .x_label_formatter(&|v| label_at(&ticks, *v, "×"))
                .label_style((FONT, LABEL_PX))
                .axis_desc_style((FONT, AXIS_PX))
                .draw()
                .map_err(e)?;
            let from = if log { 1.0 } else { 0.0 };
            for (j, (env, _)) in envs.iter().enumerate() {
                let color = env_color(env);
                let bars: Vec<_> = groups
                    .iter()
                    .enumerate()
                    .filter_map(|(gi, g)| g.ratios.iter().find(|r| &r.0 == env).map(|r| (row(gi, j), r.2, r.3, r.4)))
                    .collect();
                chart
                    .draw_series(bars.iter().map(|&(slot, r, _, _)| {
                        let mut rect =
                            Rectangle::new([(from, SegmentValue::Exact(slot)), (r, SegmentValue::Exact(slot + 1))], color.mix(0.85).filled());
                        rect.set_margin(1, 1, 0, 0);
                        rect
                    }))
                    .map_err(e)?;
                chart
                    .draw_series(bars.iter().filter(|b| b.2 > 0.0).map(|&(slot, _, l, h)| {
                        PathElement::new(
                            vec![(clamp(l), SegmentValue::CenterOf(slot)), (clamp(h), SegmentValue::CenterOf(slot))],
                            BLACK.stroke_width(1),
                        )
                    }))
                    .map_err(e)?;
            }
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(1.0, SegmentValue::Exact(0)), (1.0, SegmentValue::Exact(last_slot(slots) + 1))],
                    BLACK.stroke_width(1),
                )))
                .map_err(e)?;
        }};
    }
    if log {
        draw!((lo..hi).log_scale().with_key_points(key));
    } else {
        draw!(Ticked::new(lo..hi, &ticks));
    }
    root.present().map_err(e)
}

/// The overview's title, naming what is plotted and, when a vm is among
/// them, its accelerator.
fn overhead_title(groups: &[Group], near_native: bool) -> String {
    let vm = groups.iter().flat_map(|g| g.ratios.iter()).find(|r| split_env(&r.0).0 == "vm").map(|r| r.1.clone());
    // "vm (emulated (TCG))" → "emulated (TCG)".
    let how = |label: &str| label.strip_prefix("vm (").and_then(|l| l.strip_suffix(')')).map(str::to_string).unwrap_or_else(|| label.to_string());
    match (near_native, vm) {
        (true, _) => format!("overhead near native: p50 cost ratio to native, whisker 95 % interval (the ratios within {NEAR_NATIVE}× of native)"),
        (false, Some(vm)) => format!("overhead: p50 cost ratio to native, whisker 95 % interval (vm: {})", how(&vm)),
        (false, None) => "overhead: p50 cost ratio to native, whisker 95 % interval".into(),
    }
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
        let (pmin, pmax) = bars.iter().fold((f64::MAX, 0f64), |(lo, hi), b| (lo.min(b.p50), hi.max(b.p50)));
        let log = pmin > 0.0 && pmax / pmin > LOG_AXIS_SPREAD;
        let (title, what, better) = if rate {
            (format!("{name}: {unit} by environment (bar p50, whisker p10–p90 of the per-sample rate)"), unit.to_string(), Better::Higher)
        } else {
            (format!("{name}: {unit} per operation by environment (bar p50, whisker p10–p90)"), format!("{unit} per operation"), Better::Lower)
        };
        let value = |v: f64| format!("{} {unit}", num(v));
        let chart = BarChart { title: &title, what: &what, better, bars: &bars, value: &value, tick_suffix: "", reference: None, log };
        write_chart(dir, name, (SIZE.0, rows_height(bars.len(), 44)), &mut out, |root| draw_bars(root, &chart))?;
        // Latency distributions as HdrHistogram percentile curves (rates have
        // no meaningful tail plot of this kind).
        if !rate {
            let curves: Vec<Curve> = group.iter().filter(|m| m.histogram.len() >= 10).map(|m| curve(m)).collect();
            if !curves.is_empty() {
                let title = format!("{name}: {unit} per operation by percentile, one line per environment");
                write_chart(dir, &format!("{name}.percentiles"), SIZE, &mut out, |root| draw_percentiles(root, &title, unit, &curves))?;
            }
        }
        let ratios: Vec<_> = group
            .iter()
            .filter(|m| !is_baseline(&m.env))
            .filter_map(|m| {
                let b = baseline_for(&group, m)?;
                let r = m.cost_ratio(b, 0.5)?;
                let (lo, hi) = m.cost_ratio_ci95(b).unwrap_or((0.0, 0.0));
                Some((m.env.clone(), m.env_label.clone(), r, lo, hi))
            })
            .collect();
        if !ratios.is_empty() {
            groups.push(Group { metric: name.to_string(), ratios });
        }
    }
    if !phases.is_empty() {
        let height = 260 + 70 * phases.len() as u32;
        write_chart(dir, "boot-phases", (SIZE.0, height), &mut out, |root| draw_phases(root, BOOT_PHASES_CAPTION, phases))?;
    }
    if !groups.is_empty() {
        let log = overhead_needs_log(&groups);
        let title = overhead_title(&groups, false);
        write_chart(dir, "overhead", (SIZE.0, overhead_height(&groups)), &mut out, |root| draw_overhead(root, &title, &groups, log, &[]))?;
        if log {
            // Beside the log chart: the ratios near 1×, on a linear axis
            // where their bars are not slivers. Only the bars beyond the
            // band are left out (runc's env.start at 16× does not take its
            // near-1× bars along), and the chart says which.
            let near_1 = |r: &f64| (1.0 / NEAR_NATIVE..=NEAR_NATIVE).contains(r);
            let near: Vec<Group> = groups
                .iter()
                .map(|g| Group { metric: g.metric.clone(), ratios: g.ratios.iter().filter(|r| near_1(&r.2)).cloned().collect() })
                .filter(|g| !g.ratios.is_empty())
                .collect();
            let note = left_out_note(&groups, &near_1);
            if !note.is_empty() && !near.is_empty() {
                let title = overhead_title(&near, true);
                let height = overhead_height(&near) + NOTE_LINE_PX * note.len() as u32;
                write_chart(dir, NEAR_NATIVE_PLOT, (SIZE.0, height), &mut out, |root| draw_overhead(root, &title, &near, false, &note))?;
            }
        }
    }
    Ok(out)
}

/// Height of one line of a note under a chart's title, px.
const NOTE_LINE_PX: u32 = 20;
/// Characters per line of such a note (at [`LABEL_PX`] across [`SIZE`]'s width).
const NOTE_LINE_CHARS: usize = 150;
/// Per environment, the metrics named one by one up to this many; a count beyond.
const NOTE_MAX_NAMED: usize = 3;

/// What the near-native chart leaves out, in lines: per environment (its
/// label), the metrics whose ratio lies beyond the band and their ratios,
/// or how many when there are more than [`NOTE_MAX_NAMED`]. Empty when
/// nothing is left out.
fn left_out_note(groups: &[Group], near_1: &dyn Fn(&f64) -> bool) -> Vec<String> {
    let mut by_env: Vec<(String, Vec<(String, f64)>)> = Vec::new();
    for g in groups {
        for r in g.ratios.iter().filter(|r| r.2 > 0.0 && !near_1(&r.2)) {
            match by_env.iter_mut().find(|(label, _)| *label == r.1) {
                Some((_, v)) => v.push((g.metric.clone(), r.2)),
                None => by_env.push((r.1.clone(), vec![(g.metric.clone(), r.2)])),
            }
        }
    }
    if by_env.is_empty() {
        return Vec::new();
    }
    let total: usize = groups.iter().map(|g| g.ratios.len()).sum();
    let parts: Vec<String> = by_env
        .iter()
        .map(|(label, v)| match v.len() {
            n if n <= NOTE_MAX_NAMED => {
                format!("{label}: {}", v.iter().map(|(m, r)| format!("{m} {}×", num(*r))).collect::<Vec<_>>().join(", "))
            }
            n => format!("{label}: {n} metrics"),
        })
        .collect();
    let count: usize = by_env.iter().map(|(_, v)| v.len()).sum();
    let text = format!(
        "Left out, beyond {NEAR_NATIVE}× of native ({count} of {total} bars; the log-axis chart \"overhead\" has them): {}.",
        parts.join("; ")
    );
    wrap(&text, NOTE_LINE_CHARS)
}

/// Stem of the linear companion of the overview chart.
pub const NEAR_NATIVE_PLOT: &str = "overhead-near-native";

/// The linear companion holds the ratios within this factor of 1× (a
/// container's, most peers'; not an emulated vm's); the others are named
/// in its note.
pub const NEAR_NATIVE: f64 = 5.0;

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
        let title = format!("{}: each layer's cost, × bare (bar median of {} rounds, whisker 95 % interval)", m.metric, run.rounds);
        let value = |v: f64| format!("{}× bare", num(v));
        let chart = BarChart {
            title: &title,
            what: "cost ratio, × bare (1× = the layer costs nothing)",
            better: Better::Lower,
            bars: &bars,
            value: &value,
            tick_suffix: "×",
            reference: Some(1.0),
            log: false,
        };
        write_chart(dir, &format!("layers-{}", m.metric), (SIZE.0, rows_height(bars.len(), 44)), &mut out, |root| draw_bars(root, &chart))?;
    }
    Ok(out)
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
    write_chart(dir, DENSITY_LATENCY_PLOT, SIZE, &mut out, |root| {
        draw_by_concurrency(
            root,
            "start storms: ms from asked to agent-ready per instance, by concurrency (p50 solid, p99 thin ×)",
            &value_axis("ms to agent-ready", true, Better::Lower),
            &latency,
        )
    })?;
    let rate = [(rate, false)];
    write_chart(dir, DENSITY_THROUGHPUT_PLOT, SIZE, &mut out, |root| {
        draw_by_concurrency(
            root,
            "start storms: instances ready per second, by concurrency",
            &value_axis("instances ready per second", true, Better::Higher),
            &rate,
        )
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
        let title = format!("{name}: µs per operation by percentile, one line per environment and storage path");
        write_chart(dir, &format!("storage-{name}"), SIZE, &mut out, |root| draw_storage(root, &title, &curves))?;
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
    let area = titled(&root, title)?;
    let (plot, legend) = area.split_horizontally(SIZE.0 - STORAGE_LEGEND_WIDTH);
    let lines: Vec<(RGBColor, &[(f64, f64)])> =
        curves.iter().enumerate().map(|(i, c)| (STORAGE_COLORS[i % STORAGE_COLORS.len()], c.points.as_slice())).collect();
    draw_nines(&plot, &value_axis("µs per operation", true, Better::Lower), &lines)?;
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

/// Lines of (env, label, (C, value)) on log axes; each group's second
/// member says whether it is drawn thin with crosses (the p99s).
type ConcurrencyLines = Vec<(String, String, Vec<(f64, f64)>)>;

fn draw_by_concurrency<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    title: &str,
    y_desc: &str,
    groups: &[(ConcurrencyLines, bool)],
) -> Result<(), String> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let area = titled(&root, title)?;
    let mut legend: Vec<LegendEntry> = groups
        .iter()
        .take(1)
        .flat_map(|(lines, _)| lines.iter().map(|(env, label, _)| LegendEntry { label: label.clone(), color: env_color(env), mark: Mark::Line }))
        .collect();
    if groups.iter().any(|(_, thin)| *thin) {
        legend.push(LegendEntry { label: "thin, ×: p99".into(), color: BLACK, mark: Mark::Line });
    }
    let plot = legend_column(area, &legend)?;
    let points = groups.iter().flat_map(|(g, _)| g.iter().flat_map(|(_, _, p)| p.iter().copied())).filter(|p| p.1 > 0.0);
    let (xmax, ylo, yhi) = points.fold((1f64, f64::MAX, 0f64), |(x, lo, hi), p| (x.max(p.0), lo.min(p.1), hi.max(p.1)));
    let (ylo, yhi) = if yhi > 0.0 { (ylo / 1.5, yhi * 1.5) } else { (0.1, 1.0) };
    // The concurrencies measured are the x ticks.
    let mut xs: Vec<f64> = groups.iter().flat_map(|(g, _)| g.iter().flat_map(|(_, _, p)| p.iter().map(|p| p.0))).collect();
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    let xt: Vec<Tick> = xs.iter().map(|&x| Tick { value: x, label: tick_label(x, 1.0) }).collect();
    let yt = log_ticks(ylo, yhi, 10);
    let mut chart = ChartBuilder::on(&plot)
        .margin(15)
        .margin_top(5)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(
            (0.8f64..xmax * 1.25).log_scale().with_key_points(xs.clone()),
            (ylo..yhi).log_scale().with_key_points(yt.iter().map(|t| t.value).collect()),
        )
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("concurrency C: starts in flight (log scale)")
        .y_desc(y_desc)
        .x_label_formatter(&|x| label_at(&xt, *x, ""))
        .y_label_formatter(&|y| label_at(&yt, *y, ""))
        .label_style((FONT, LABEL_PX))
        .axis_desc_style((FONT, AXIS_PX))
        .draw()
        .map_err(e)?;
    for (lines, thin) in groups {
        for (env, _, pts) in lines {
            let color = env_color(env);
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
    root.present().map_err(e)
}

/// `plots/apps-<metric>.svg|png` for the app metrics of `ms`: for each
/// closed-loop metric, one bar per environment of the whole loop's
/// completed requests per second (whisker: p10–p90 of its 20 ms windows'
/// rates), its ratio to native beside it — higher is better; for each
/// open-loop (`.latency`) metric, latency by percentile on HdrHistogram's
/// nines axis, per environment the coordinated-omission corrected line
/// (intended send → reply, the environment's colour) and the uncorrected
/// service time (actual send → reply, the same colour lighter), the
/// legend naming both.
pub fn apps(dir: &Path, ms: &[Measurement]) -> Result<Vec<PathBuf>, ReportError> {
    use isobench_workloads::app::load::LoadMode;
    let mut out = Vec::new();
    for ((_, name), mut group) in by_metric(ms) {
        if group[0].metric.family != isobench_workloads::catalog::Family::App {
            continue;
        }
        group.sort_by_key(|m| env_order(&m.env));
        let mode = |m: &Measurement| m.load.as_ref().map(|l| l.mode);
        ensure_font().map_err(|message| ReportError::Plot { path: dir.to_path_buf(), message })?;
        std::fs::create_dir_all(dir).map_err(|source| ReportError::Io { path: dir.to_path_buf(), source })?;
        if group.iter().all(|m| mode(m) == Some(LoadMode::Closed)) {
            let whole = |m: &Measurement| m.load.as_ref().map_or(0.0, |l| l.achieved_per_s);
            let native = group.iter().find(|m| is_baseline(&m.env)).map(|m| whole(m));
            let bars: Vec<Bar> = group
                .iter()
                .map(|m| Bar {
                    env: m.env.clone(),
                    label: m.env_label.clone(),
                    p10: Summary::quantile(m, 0.10),
                    p50: whole(m),
                    p90: Summary::quantile(m, 0.90),
                })
                .collect();
            let texts: Vec<(f64, String)> = group
                .iter()
                .map(|m| {
                    let vs = match native {
                        Some(n) if n > 0.0 && !is_baseline(&m.env) => format!(" · {:.2}× native", whole(m) / n),
                        _ => String::new(),
                    };
                    (whole(m), format!("{} req/s{vs}", num(whole(m))))
                })
                .collect();
            let value = |v: f64| texts.iter().find(|(w, _)| *w == v).map(|(_, t)| t.clone()).unwrap_or_else(|| format!("{} req/s", num(v)));
            let (pmin, pmax) = bars.iter().fold((f64::MAX, 0f64), |(lo, hi), b| (lo.min(b.p50), hi.max(b.p50)));
            let log = pmin > 0.0 && pmax / pmin > LOG_AXIS_SPREAD;
            let title = format!("{name}: requests per second at saturation by environment (bar: whole loop, whisker: p10–p90 of 20 ms windows)");
            let chart = BarChart {
                title: &title,
                what: "requests per second",
                better: Better::Higher,
                bars: &bars,
                value: &value,
                tick_suffix: "",
                reference: None,
                log,
            };
            write_chart(dir, &format!("apps-{name}"), (SIZE.0, rows_height(bars.len(), 44)), &mut out, |root| draw_bars(root, &chart))?;
        } else {
            let mut lines: Vec<(LegendEntry, Vec<(f64, f64)>)> = Vec::new();
            for m in group.iter().filter(|m| m.histogram.len() >= 10) {
                let color = env_color(&m.env);
                let corrected = curve(m).points;
                lines.push((LegendEntry { label: format!("{} — corrected", m.env_label), color, mark: Mark::Line }, corrected));
                let service = m.load.as_ref().and_then(|l| l.service_histogram.as_deref()).and_then(|h| isobench_workloads::hist::decode(h).ok());
                if let Some(h) = service.filter(|h| h.len() >= 10) {
                    let top = (h.len() as f64).log10().min(MAX_NINES);
                    let steps = 200;
                    let points = (0..=steps)
                        .map(|i| top * i as f64 / steps as f64)
                        .map(|x| (x, h.value_at_quantile(1.0 - 10f64.powf(-x)) as f64 / 1e3))
                        .collect();
                    lines.push((LegendEntry { label: format!("{} — uncorrected", m.env_label), color: lighter(color), mark: Mark::Line }, points));
                }
            }
            if lines.is_empty() {
                continue;
            }
            let title = format!("{name}: µs from send to reply by percentile at a fixed offered rate, corrected and uncorrected per environment");
            write_chart(dir, &format!("apps-{name}"), SIZE, &mut out, |root| {
                let e = |e: DrawingAreaErrorKind<_>| e.to_string();
                let area = titled(&root, &title)?;
                let legend: Vec<LegendEntry> = lines.iter().map(|(l, _)| l.clone()).collect();
                let plot = legend_column(area, &legend)?;
                let drawn: Vec<(RGBColor, &[(f64, f64)])> = lines.iter().map(|(l, p)| (l.color, p.as_slice())).collect();
                draw_nines(&plot, &value_axis("µs per request", true, Better::Lower), &drawn)?;
                root.present().map_err(e)
            })?;
        }
    }
    Ok(out)
}

/// `c` mixed two thirds of the way to white: the uncorrected line beside its
/// environment's corrected one.
fn lighter(c: RGBColor) -> RGBColor {
    let mix = |v: u8| ((u16::from(v) + 2 * 255) / 3) as u8;
    RGBColor(mix(c.0), mix(c.1), mix(c.2))
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

    fn labels(t: &[Tick]) -> Vec<&str> {
        t.iter().map(|t| t.label.as_str()).collect()
    }

    #[test]
    fn linear_ticks_step_by_one_two_five_with_the_decimals_the_step_needs() {
        assert_eq!(labels(&linear_ticks(0.0, 11.0, 8)), ["0", "2", "4", "6", "8", "10"]);
        assert_eq!(labels(&linear_ticks(0.0, 1.3, 8)), ["0", "0.2", "0.4", "0.6", "0.8", "1", "1.2"]);
        assert_eq!(labels(&linear_ticks(0.0, 0.012, 8)), ["0", "0.002", "0.004", "0.006", "0.008", "0.01", "0.012"]);
        assert_eq!(labels(&linear_ticks(0.0, 4700.0, 8)), ["0", "1000", "2000", "3000", "4000"]);
        assert_eq!(labels(&linear_ticks(0.0, 1250.0, 6)), ["0", "500", "1000"]);
    }

    #[test]
    fn log_ticks_are_one_two_five_per_decade_or_powers_of_ten() {
        assert_eq!(labels(&log_ticks(1.0, 1000.0, 10)), ["1", "2", "5", "10", "20", "50", "100", "200", "500", "1000"]);
        assert_eq!(labels(&log_ticks(0.5, 5000.0, 10)), ["1", "10", "100", "1000"], "too many for 1-2-5: powers of ten");
        assert_eq!(labels(&log_ticks(0.05, 12.0, 10)), ["0.05", "0.1", "0.2", "0.5", "1", "2", "5", "10"]);
        assert_eq!(labels(&log_ticks(1.0, 1e9, 5)), ["1", "100", "10000", "1000000", "100000000"], "every other decade");
        // Narrower than a 1-2-5 step: linear ticks, never 3.162.
        assert_eq!(labels(&log_ticks(2.1, 4.6, 8)), ["2.5", "3", "3.5", "4", "4.5"]);
    }

    #[test]
    fn value_axes_name_their_scale_and_direction() {
        assert_eq!(value_axis("ns per operation", true, Better::Lower), "ns per operation (log scale) — lower is better");
        assert_eq!(value_axis("GiB/s", false, Better::Higher), "GiB/s — higher is better");
    }

    #[test]
    fn every_chart_renders_with_its_title_axis_and_direction() {
        let d = tempfile::tempdir().unwrap();
        let ms = vec![
            m("native", "native", "syscall.getpid", 100),
            m("container", "container", "syscall.getpid", 100),
            m("vm", "vm (emulated (TCG))", "syscall.getpid", 5_000),
            m("native", "native", "net.tcp_stream", 10_000),
            m("container", "container", "net.tcp_stream", 10_500),
            m("vm", "vm (emulated (TCG))", "net.tcp_stream", 90_000),
            // runc: one ratio far out (16×), one near 1×.
            m("runc", "runc", "syscall.getpid", 1_600),
            m("runc", "runc", "net.tcp_stream", 10_200),
        ];
        let plots = render_all(d.path(), &ms, &[]).unwrap();
        let names: Vec<String> = plots.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
        for want in [
            "syscall.getpid.svg",
            "syscall.getpid.png",
            "syscall.getpid.percentiles.svg",
            "net.tcp_stream.svg",
            "overhead.svg",
            "overhead.png",
            "overhead-near-native.svg",
            "overhead-near-native.png",
        ] {
            assert!(names.iter().any(|n| n == want), "{want} not drawn: {names:?}");
        }
        assert!(!names.iter().any(|n| n == "net.tcp_stream.percentiles.svg"), "no percentile curve for a rate");
        for p in &plots {
            let path = d.path().join(p.strip_prefix("plots").unwrap());
            let bytes = std::fs::read(&path).unwrap();
            assert!(bytes.len() > 1000, "{} is {} bytes", path.display(), bytes.len());
            if path.extension().is_some_and(|e| e == "png") {
                assert_eq!(&bytes[1..4], b"PNG", "{} is a PNG", path.display());
            }
        }
        let svg = |n: &str| texts(&std::fs::read_to_string(d.path().join(n)).unwrap());
        let bars = svg("syscall.getpid.svg");
        assert!(bars.iter().any(|t| t.starts_with("syscall.getpid: ns per operation")), "title names what is plotted: {bars:?}");
        for label in ["native", "container", "vm (emulated (TCG))"] {
            assert!(bars.iter().any(|t| t == label), "no bar labelled {label}: {bars:?}");
        }
        assert!(bars.iter().any(|t| t == "ns per operation (log scale) — lower is better"), "50× apart: log axis: {bars:?}");
        let rate = svg("net.tcp_stream.svg");
        assert!(rate.iter().any(|t| t.contains("Gbit/s") && t.ends_with("higher is better")), "{rate:?}");
        let curves = svg("syscall.getpid.percentiles.svg");
        assert!(curves.iter().any(|t| t == "vm (emulated (TCG))") && curves.iter().any(|t| t == "p99"), "{curves:?}");
        let overhead = svg("overhead.svg");
        assert!(overhead.iter().any(|t| t == "container") && overhead.iter().any(|t| t == "net.tcp_stream"), "{overhead:?}");
        assert!(overhead.iter().any(|t| t.contains("(log scale) — lower is better")), "{overhead:?}");
        let near = svg("overhead-near-native.svg");
        assert!(near.iter().any(|t| t == "container") && !near.iter().any(|t| t == "vm (emulated (TCG))"), "no vm bar on the linear chart: {near:?}");
        assert!(near.iter().any(|t| t == "runc"), "runc's near-1× bar stays though its getpid is 16×: {near:?}");
        let from = near.iter().position(|t| t.starts_with("Left out")).expect("a note");
        let note = near[from..].iter().take_while(|t| !t.contains("lower is better")).cloned().collect::<Vec<_>>().join(" ");
        assert!(
            note.starts_with("Left out, beyond 5× of native (3 of 6 bars; the log-axis chart &quot;overhead&quot; has them):")
                && note.contains("runc: syscall.getpid 16")
                && note.contains("vm (emulated (TCG)): syscall.getpid 50"),
            "the chart names what it leaves out: {note}"
        );
        assert!(near.iter().any(|t| t == "p50 cost ratio, × native (1× = no overhead) — lower is better"), "linear: {near:?}");
    }

    /// The `<rect>`s of an SVG filled with `color` (plotters writes
    /// `fill="#RRGGBB"`): (y, height).
    fn rects(svg: &str, color: RGBColor) -> Vec<(f64, f64)> {
        let fill = format!("fill=\"#{:02X}{:02X}{:02X}\"", color.0, color.1, color.2);
        let attr = |tag: &str, name: &str| -> Option<f64> {
            let at = tag.find(&format!(" {name}=\""))? + name.len() + 3;
            tag[at..].split('"').next()?.parse().ok()
        };
        svg.split("<rect").skip(1).filter(|t| t.contains(&fill)).filter_map(|t| Some((attr(t, "y")?, attr(t, "height")?))).collect()
    }

    #[test]
    fn one_boot_phase_row_fills_its_plot_with_no_empty_row_above() {
        let d = tempfile::tempdir().unwrap();
        let one = Phases {
            env: "vm".into(),
            label: "vm (emulated (TCG))".into(),
            n: 3,
            segments: vec![("qemu → console", 900.0), ("console → ready", 3000.0)],
            ready_ms: 3900.0,
            guest_uptime_ms: None,
            clocksource: None,
        };
        render_all(d.path(), &[], std::slice::from_ref(&one)).unwrap();
        let svg = std::fs::read_to_string(d.path().join("boot-phases.svg")).unwrap();
        let bars = rects(&svg, PHASE_COLORS[0]);
        let legend_and_bar: Vec<_> = bars.iter().filter(|(_, h)| *h > 20.0).collect();
        assert_eq!(legend_and_bar.len(), 1, "one bar of the first phase: {bars:?}");
        let (y, h) = *legend_and_bar[0];
        // The plot spans from under the title to above the x axis; one
        // row's bar fills most of it, with the same blank above and below.
        let height = 260.0 + 70.0;
        let plot_top = 50.0;
        let plot_bottom = height - 15.0 - 50.0;
        assert!(h > (plot_bottom - plot_top) * 0.5, "the bar fills its row, not half the plot: y {y} h {h}");
        let (above, below) = (y - plot_top, plot_bottom - (y + h));
        assert!((above - below).abs() < 30.0, "the bar is centred in the plot, no empty row on top: above {above} below {below}");
    }

    #[test]
    fn the_png_is_the_svg_rasterised() {
        ensure_font().unwrap();
        let d = tempfile::tempdir().unwrap();
        let mut out = Vec::new();
        write_chart(d.path(), "t", (200, 100), &mut out, |root| {
            let area = titled(&root, "µs × 2")?;
            area.present().map_err(|e| e.to_string())
        })
        .unwrap();
        let png = std::fs::read(d.path().join("t.png")).unwrap();
        // The IHDR chunk: width and height, big-endian, at bytes 16..24.
        assert_eq!((&png[16..20], &png[20..24]), (&200u32.to_be_bytes()[..], &100u32.to_be_bytes()[..]));
        assert_eq!(out, [PathBuf::from("plots/t.svg"), PathBuf::from("plots/t.png")]);
    }
}
