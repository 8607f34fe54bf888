//! `## Cross-check against independent tools`: `isobench validate`'s
//! comparisons of isobench's native figures with perf bench, iperf3,
//! hyperfine and fio; the same table `isobench validate` prints.

use crate::report::format::{num, percent};
use crate::report::ReportError;
use crate::results::validate::{Check, TOLERANCE};

use super::{Context, Section};

/// The cross-check table, when validate.json is there.
pub struct CrossCheck;

impl Section for CrossCheck {
    fn markdown(&self, cx: &Context<'_>) -> Result<String, ReportError> {
        Ok(match cx.dir.validation()? {
            Some(checks) => format!(
                "\n## Cross-check against independent tools (native, same session)\n\nMeans on both sides; \"within\" is ±{}. A difference comes with the method difference that explains it.\n\n{}",
                percent(TOLERANCE),
                table(&checks)
            ),
            None => String::new(),
        })
    }
}

/// The table as text (terminal and markdown alike).
pub fn table(checks: &[Check]) -> String {
    let mut s = String::from("| metric | reference tool | tool | isobench (native) | isobench ÷ tool | verdict |\n|---|---|---:|---:|---:|---|\n");
    for c in checks {
        let f = |v: Option<f64>| v.map_or("–".to_string(), |v| format!("{} {}", num(v), c.unit));
        s.push_str(&format!(
            "| {} | `{}` | {} | {} | {} | {} |\n",
            c.metric,
            c.tool,
            f(c.tool_value),
            f(c.isobench_value),
            c.ratio.map_or("–".into(), |r| format!("{r:.2}")),
            c.note
        ));
    }
    s
}
