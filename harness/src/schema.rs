//! JSON Schemas of every JSON file and output isobench writes, generated
//! from the very types that write them (schemars reads their serde
//! attributes), so a schema cannot disagree with its file. `isobench schema
//! NAME` prints one; `isobench schema --out DIR` writes them all, and the
//! copies checked in under `results/schema/` are compared with the types by
//! a test that regenerates them and fails when they were stale. Draft
//! 2020-12, as schemars writes.

use std::path::{Path, PathBuf};

use crate::collect::{MeasurementRecord, Summary};
use crate::doctor::Diagnosis;
use crate::list::Listing;
use crate::report::compare::Comparison;
use crate::results::startup::StartupSummary;
use crate::results::{Check, RunRecord, StartupRun};

/// One JSON document isobench writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    /// run.json: [`RunRecord`].
    Run,
    /// measurements.json: [`MeasurementRecord`]s.
    Measurements,
    /// summary.json (and `isobench run --json`): [`Summary`] rows.
    Summary,
    /// startup.json and its kin (and `isobench startup --samples`): [`StartupRun`].
    Startup,
    /// `isobench startup --json`: [`StartupSummary`].
    StartupSummary,
    /// layers.json (and `isobench layers --json`): [`LayersRun`].
    Layers,
    /// validate.json: [`Check`]s.
    Validate,
    /// density.json (and `isobench density --json`): [`DensityRun`](crate::results::density::DensityRun).
    Density,
    /// command.json (`isobench run --command`): [`CommandRun`](crate::results::command::CommandRun).
    Command,
    /// `isobench compare --json`: [`Comparison`].
    Compare,
    /// `isobench doctor --json`: [`Diagnosis`].
    Doctor,
    /// `isobench list --json`: [`Listing`].
    List,
}

isobench_workloads::named_values!(Schema, "schema", {
    Run = "run",
    Measurements = "measurements",
    Summary = "summary",
    Startup = "startup",
    StartupSummary = "startup-summary",
    Layers = "layers",
    Validate = "validate",
    Density = "density",
    Command = "command",
    Compare = "compare",
    Doctor = "doctor",
    List = "list",
});

impl Schema {
    /// What the schema describes, in a few words.
    pub fn describe(self) -> &'static str {
        match self {
            Schema::Run => "run.json",
            Schema::Measurements => "measurements.json",
            Schema::Summary => "summary.json and `isobench run --json`",
            Schema::Startup => "startup*.json and `isobench startup --samples FILE`",
            Schema::StartupSummary => "`isobench startup --json`",
            Schema::Layers => "layers.json and `isobench layers --json`",
            Schema::Validate => "validate.json",
            Schema::Density => "density.json and `isobench density --json`",
            Schema::Command => "command.json (`isobench run --command`)",
            Schema::Compare => "`isobench compare --json`",
            Schema::Doctor => "`isobench doctor --json`",
            Schema::List => "`isobench list --json`",
        }
    }

    /// The schema as JSON.
    pub fn generate(self) -> serde_json::Value {
        let schema = match self {
            Schema::Run => schemars::schema_for!(RunRecord),
            Schema::Measurements => schemars::schema_for!(Vec<MeasurementRecord>),
            Schema::Summary => schemars::schema_for!(Vec<Summary>),
            Schema::Startup => schemars::schema_for!(StartupRun),
            Schema::StartupSummary => schemars::schema_for!(StartupSummary),
            Schema::Layers => schemars::schema_for!(crate::results::layers::LayersRun),
            Schema::Validate => schemars::schema_for!(Vec<Check>),
            Schema::Density => schemars::schema_for!(crate::results::density::DensityRun),
            Schema::Command => schemars::schema_for!(crate::results::command::CommandRun),
            Schema::Compare => schemars::schema_for!(Comparison),
            Schema::Doctor => schemars::schema_for!(Diagnosis),
            Schema::List => schemars::schema_for!(Listing),
        };
        let mut v = schema.to_value();
        if let Some(o) = v.as_object_mut() {
            o.insert("description".into(), format!("isobench: {}", self.describe()).into());
        }
        v
    }

    /// `<name>.schema.json`.
    pub fn file_name(self) -> String {
        format!("{}.schema.json", self.as_str())
    }

    /// The schema as written to a file: pretty JSON and a newline.
    pub fn text(self) -> String {
        let mut s = serde_json::to_string_pretty(&self.generate()).expect("a schema is JSON");
        s.push('\n');
        s
    }
}

/// Writes every schema into `dir` (created when missing); returns the files.
pub fn write_all(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    for s in Schema::ALL {
        let path = dir.join(s.file_name());
        std::fs::write(&path, s.text())?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checked_in_schemas_are_those_of_the_types() {
        let dir = crate::paths::repo_root().join("results/schema");
        let mut stale = Vec::new();
        for s in Schema::ALL {
            let path = dir.join(s.file_name());
            if std::fs::read_to_string(&path).ok().as_deref() != Some(s.text().as_str()) {
                stale.push(path.display().to_string());
            }
        }
        let listed: Vec<String> =
            std::fs::read_dir(&dir).into_iter().flatten().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
        let unknown: Vec<&String> = listed.iter().filter(|f| !Schema::ALL.iter().any(|s| s.file_name() == **f)).collect();
        if !stale.is_empty() {
            // Regenerated, so the fix is to review the diff and commit it.
            write_all(&dir).unwrap();
        }
        assert!(
            stale.is_empty() && unknown.is_empty(),
            "stale schemas {stale:?} (now regenerated from the types: review and commit them), unknown files {unknown:?} (remove them)"
        );
    }

    #[test]
    fn a_schema_is_named_and_an_unknown_name_lists_the_choices() {
        assert_eq!("startup-summary".parse::<Schema>(), Ok(Schema::StartupSummary));
        let e = "runs".parse::<Schema>().unwrap_err();
        assert!(e.starts_with("unknown schema \"runs\"; choose from run, measurements,"), "{e}");
        let run = Schema::Run.generate();
        assert_eq!(run["$schema"], "https://json-schema.org/draft/2020-12/schema");
        assert!(run["properties"]["environments"].is_object(), "{run}");
    }
}
