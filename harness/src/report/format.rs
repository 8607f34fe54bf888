//! How numbers look in every table isobench writes (report.md, the
//! terminal tables of `isobench startup`, `validate` and `compare`): values in
//! a metric's unit, cost ratios, percentages, milliseconds.

/// A value in a metric's display unit with sensible precision: four
/// significant digits or so (1234, 123.4, 12.34, 1.234).
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

/// A cost ratio (time per operation ÷ native's) as "1.23×, +23.0 %".
pub fn ratio(r: f64) -> String {
    format!("{r:.2}×, {:+.1} %", (r - 1.0) * 100.0)
}

/// Overhead of `value` against the native `base`, as "1.23×, +23.0 %"
/// ("n/a" without a base).
pub fn overhead(value: f64, base: f64) -> String {
    if base <= 0.0 {
        return "n/a".into();
    }
    ratio(value / base)
}

/// Decimals that keep about three significant digits of a ratio: 1.23,
/// 12.3, 123.
fn ratio_decimals(r: f64) -> usize {
    match r.abs() {
        x if x >= 100.0 => 0,
        x if x >= 10.0 => 1,
        _ => 2,
    }
}

/// The half-width of an interval around `r` (its wider side, as the
/// interval of a ratio is not symmetric).
fn half_width(r: f64, low: f64, high: f64) -> f64 {
    (high - r).max(r - low).max(0.0)
}

/// A ratio with its 95 % interval, in hyperfine's words: "1.02 ± 0.03".
pub fn pm_times(r: f64, low: f64, high: f64) -> String {
    let d = ratio_decimals(r);
    format!("{r:.d$} ± {:.d$}", half_width(r, low, high))
}

/// A cost ratio with its 95 % interval: "1.99× ±0.05", "1319× ±12".
pub fn ratio_ci(r: f64, low: f64, high: f64) -> String {
    let d = ratio_decimals(r);
    format!("{r:.d$}× ±{:.d$}", half_width(r, low, high))
}

/// [`ratio_ci`] with the change as a percentage where it reads better
/// (under 2×): "1.05× ±0.02, +5.0 %", "3.20× ±0.04".
pub fn ratio_ci_percent(r: f64, low: f64, high: f64) -> String {
    match r < 2.0 {
        true => format!("{}, {:+.1} %", ratio_ci(r, low, high), (r - 1.0) * 100.0),
        false => ratio_ci(r, low, high),
    }
}

/// A ratio alone, as "1.23×".
pub fn times(r: f64) -> String {
    format!("{r:.2}×")
}

/// A change between two runs (B ÷ A), finer: "1.234× (+23.4 %)".
pub fn change(r: f64) -> String {
    format!("{r:.3}× ({:+.1} %)", (r - 1.0) * 100.0)
}

/// A fraction as a whole percentage: 0.15 → "15 %".
pub fn percent(fraction: f64) -> String {
    format!("{:.0} %", fraction * 100.0)
}

/// ns → ms.
pub fn ns_to_ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

/// Milliseconds of a start, to the µs: "1.234".
pub fn ms(ms: f64) -> String {
    format!("{ms:.3}")
}

/// A difference of milliseconds, signed: "+0.123", "-0.045".
pub fn ms_signed(ms: f64) -> String {
    format!("{ms:+.3}")
}

/// A number as run.json holds it (JSON's shortest form: 2.48, 1.0, 1e-7).
pub fn json_number(v: f64) -> String {
    serde_json::Value::from(v).to_string()
}

/// A duration in ns as hyperfine prints it: µs below a millisecond, ms
/// below a second, else s ("812.4 µs", "3.21 ms", "1.204 s").
pub fn duration(ns: f64) -> String {
    match ns {
        x if x < 1e6 => format!("{:.1} µs", x / 1e3),
        x if x < 1e9 => format!("{:.2} ms", x / 1e6),
        x => format!("{:.3} s", x / 1e9),
    }
}

/// A ratio with its (asymmetric) 95 % interval spelled out:
/// "1.50× [1.41, 1.62]".
pub fn ratio_interval(r: f64, low: f64, high: f64) -> String {
    let d = ratio_decimals(r);
    format!("{r:.d$}× [{low:.d$}, {high:.d$}]")
}

/// Text for a markdown table cell: `|` escaped.
pub fn cell(s: &str) -> String {
    s.replace('|', "\\|")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overhead_formats_ratio_and_percent() {
        assert_eq!(overhead(150.0, 100.0), "1.50×, +50.0 %");
        assert_eq!(overhead(90.0, 100.0), "0.90×, -10.0 %");
        assert_eq!(overhead(1.0, 0.0), "n/a");
    }

    #[test]
    fn numbers_keep_about_four_digits() {
        assert_eq!([num(1234.5), num(123.45), num(12.345), num(1.2345)], ["1234", "123.5", "12.35", "1.234"].map(String::from));
        assert_eq!(change(1.2345), "1.234× (+23.4 %)");
        assert_eq!((times(0.5), percent(0.15)), ("0.50×".into(), "15 %".into()));
        assert_eq!((ms(ns_to_ms(1_234_567)), ms_signed(-0.0451)), ("1.235".into(), "-0.045".into()));
        assert_eq!([json_number(2.48), json_number(1.0)], ["2.48", "1.0"].map(String::from));
        assert_eq!(cell("a|b"), "a\\|b");
    }

    #[test]
    fn ratios_carry_their_interval() {
        assert_eq!(ratio_ci(1.99, 1.95, 2.04), "1.99× ±0.05");
        assert_eq!(ratio_ci(1319.3, 1310.0, 1331.0), "1319× ±12");
        assert_eq!(ratio_ci(12.34, 12.0, 12.5), "12.3× ±0.3");
        assert_eq!(ratio_ci_percent(1.05, 1.03, 1.07), "1.05× ±0.02, +5.0 %");
        assert_eq!(ratio_ci_percent(3.2, 3.16, 3.24), "3.20× ±0.04");
        assert_eq!(pm_times(1.02, 0.99, 1.05), "1.02 ± 0.03");
    }
}
