//! validate.json: `isobench validate`'s cross-checks of isobench's native
//! figures against independent tools, one [`Check`] per row.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Agreement band between isobench and a reference tool (±15 %).
pub const TOLERANCE: f64 = 0.15;

/// One comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Check {
    pub metric: String,
    /// The reference command as run.
    pub tool: String,
    pub unit: String,
    /// The tool's figure (mean), in `unit`; `None` when the tool is missing or failed.
    pub tool_value: Option<f64>,
    /// isobench's native figure (mean), in `unit`.
    pub isobench_value: Option<f64>,
    /// isobench ÷ tool.
    pub ratio: Option<f64>,
    /// The ratio is within ±[`TOLERANCE`] of 1.
    pub within_tolerance: Option<bool>,
    /// Why the methods differ, or why there is no figure.
    pub note: String,
}
