//! The results folder and the typed records written into it and read back:
//!
//! ```text
//! results/<UTC timestamp>-<hostname>/
//!   run.json            host facts, environments (accelerator and why), parameters: RunRecord
//!   measurements.json   one record per env × metric (counts, elapsed, histogram file)
//!   summary.csv         one row per env × metric: n, min, p50, p90, p99, p99.9, max, mean, stdev, unit
//!   summary.json        the same rows as JSON
//!   host_timed.csv      loops timed by the host (runsc's slow clock): a mean each, no histogram
//!   histograms/         hdrhistogram V2 files, ns per operation
//!   startup*.json       `isobench startup` runs: StartupRun
//!   density.json        `isobench density`: memory per instance, start storms, idle cost (DensityRun)
//!   layers.json         `isobench layers`: what each layer of `--profile docker` costs (LayersRun)
//!   validate.json       `isobench validate`'s cross-checks: [Check]
//!   plots/              SVG and PNG charts
//!   report.md           overhead vs native per metric, plots inline, caveats
//!   report.html         the same, self-contained (charts inlined)
//! results/latest -> <newest folder>
//! ```
//!
//! results/README.md describes every field.
//!
//! Every file is written to a temporary name and renamed into place, so an
//! interrupted run leaves what it finished and never a half-written file.
//! Measurements are saved as soon as they exist, run.json is updated the same
//! way as a run goes; the derived files (summary, plots, report) are rendered
//! from them by the report module, which reads the records here and nothing
//! else.

pub mod claim;
pub mod command;
pub mod density;
pub mod layers;
pub mod run;
pub mod startup;
pub mod validate;

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use crate::collect::{CollectError, Measurement, MeasurementRecord};
use crate::workloads::Noop;

pub use claim::{Reuse, WriteLock};
pub use run::RunRecord;
pub use startup::StartupRun;
pub use validate::Check;

/// Version of the results schema (run.json `schema`; csv columns are stable
/// within a version).
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("run.json: {what} does not fit its record: {source}")]
    Record {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{} already holds a run; --append adds this run to it (the report lists both), --force replaces it", path.display())]
    HoldsRun { path: PathBuf },
    #[error("{} is being written by another isobench run (it holds the folder's lock)", path.display())]
    Busy { path: PathBuf },
    #[error(
        "{} holds a run that did not finish (killed part-way?): its measurements may not belong together; --allow-incomplete uses it anyway",
        path.display()
    )]
    Incomplete { path: PathBuf },
    #[error(transparent)]
    Collect(#[from] CollectError),
    #[error(transparent)]
    Hist(#[from] isobench_workloads::hist::HistError),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ResultsError + '_ {
    move |source| ResultsError::Io { path: path.to_path_buf(), source }
}

/// Writes `bytes` to `path` through a temporary file in the same folder and a
/// rename, so readers never see a partial file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ResultsError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let mut tmp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir).map_err(io_err(dir))?;
    // The file itself, not tempfile's wrapper, whose errors name the
    // temporary instead of `path`.
    tmp.as_file_mut().write_all(bytes).map_err(io_err(path))?;
    // Results are for reading by anyone (tempfile creates 0600).
    use std::os::unix::fs::PermissionsExt;
    tmp.as_file().set_permissions(std::fs::Permissions::from_mode(0o644)).map_err(io_err(path))?;
    tmp.as_file().sync_data().map_err(io_err(path))?;
    tmp.persist(path).map_err(|e| ResultsError::Io { path: path.to_path_buf(), source: e.error })?;
    Ok(())
}

/// Now as RFC 3339 UTC, to the second: how run.json and measurements.json
/// write times.
pub fn rfc3339_now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// `20261130T024500Z`-style UTC timestamp.
pub fn utc_stamp() -> String {
    chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string()
}

/// One results folder.
#[derive(Debug, Clone)]
pub struct RunDir {
    pub path: PathBuf,
}

impl RunDir {
    /// Uses (and creates) exactly `path`.
    pub fn at(path: &Path) -> Result<RunDir, ResultsError> {
        std::fs::create_dir_all(path.join("histograms")).map_err(io_err(path))?;
        Ok(RunDir { path: path.to_path_buf() })
    }

    /// Creates `<results_root>/<UTC timestamp>-<hostname>` and points
    /// `<results_root>/latest` at it.
    pub fn create_in(results_root: &Path) -> Result<RunDir, ResultsError> {
        let host = nix::unistd::gethostname().ok().and_then(|h| h.into_string().ok()).unwrap_or_else(|| "host".into());
        let mut name = format!("{}-{}", utc_stamp(), host);
        let mut n = 1;
        while results_root.join(&name).exists() {
            n += 1;
            name = format!("{}-{}-{}", utc_stamp(), host, n);
        }
        let dir = RunDir::at(&results_root.join(&name))?;
        dir.point_latest()?;
        Ok(dir)
    }

    /// The folder for this `cargo bench` invocation: `$ISOBENCH_RUN_DIR` when
    /// set, else one folder shared by all bench binaries that the same cargo
    /// process (our parent) runs, so `cargo bench` gives one results folder.
    pub fn for_cargo_bench(results_root: &Path) -> Result<RunDir, ResultsError> {
        if let Some(dir) = std::env::var_os("ISOBENCH_RUN_DIR") {
            let d = RunDir::at(Path::new(&dir))?;
            d.point_latest()?;
            return Ok(d);
        }
        std::fs::create_dir_all(results_root).map_err(io_err(results_root))?;
        let ppid = nix::unistd::getppid().as_raw();
        // The parent's start time (field 22 of /proc/PID/stat) tells two
        // cargo processes with a recycled PID apart.
        let start = std::fs::read_to_string(format!("/proc/{ppid}/stat"))
            .ok()
            .and_then(|s| s.rsplit(')').next().and_then(|rest| rest.split_whitespace().nth(19).map(String::from)))
            .unwrap_or_default();
        let marker = results_root.join(format!(".cargo-bench-{ppid}-{start}"));
        if let Ok(name) = std::fs::read_to_string(&marker) {
            let path = results_root.join(name.trim());
            if path.is_dir() {
                return Ok(RunDir { path });
            }
        }
        // Markers of finished cargo processes are stale.
        if let Ok(entries) = std::fs::read_dir(results_root) {
            for e in entries.flatten() {
                let n = e.file_name().to_string_lossy().into_owned();
                if let Some(pid) = n.strip_prefix(".cargo-bench-").and_then(|r| r.split('-').next()) {
                    if !Path::new(&format!("/proc/{pid}")).exists() {
                        let _ = std::fs::remove_file(e.path());
                    }
                }
            }
        }
        let dir = RunDir::create_in(results_root)?;
        let name = dir.path.file_name().expect("run dir has a name").to_string_lossy().into_owned();
        write_atomic(&marker, name.as_bytes())?;
        Ok(dir)
    }

    fn point_latest(&self) -> Result<(), ResultsError> {
        let Some(root) = self.path.parent() else { return Ok(()) };
        let name = self.path.file_name().expect("run dir has a name");
        let tmp = root.join(".latest.tmp");
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(name, &tmp).map_err(io_err(&tmp))?;
        std::fs::rename(&tmp, root.join("latest")).map_err(io_err(root))?;
        Ok(())
    }

    /// The record in `file`, `None` when the file does not exist.
    fn read_json<T: DeserializeOwned>(&self, file: &str) -> Result<Option<T>, ResultsError> {
        let path = self.path.join(file);
        match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b).map(Some).map_err(|source| ResultsError::Json { path, source }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ResultsError::Io { path, source: e }),
        }
    }

    /// Writes `v` as pretty JSON (and a newline) to `file`, atomically.
    pub fn write_json(&self, file: &str, v: &impl serde::Serialize) -> Result<(), ResultsError> {
        let path = self.path.join(file);
        let mut bytes = serde_json::to_vec_pretty(v).map_err(|source| ResultsError::Json { path: path.clone(), source })?;
        bytes.push(b'\n');
        write_atomic(&path, &bytes)
    }

    /// run.json as it is now (an empty record when absent).
    pub fn run_record(&self) -> Result<RunRecord, ResultsError> {
        Ok(self.read_json("run.json")?.unwrap_or_default())
    }

    /// Read-modify-writes run.json: `f` changes the record as it is on disk
    /// (what earlier bench binaries or steps of this run wrote), and the
    /// result is written back atomically with the current `schema`.
    pub fn update_run(&self, f: impl FnOnce(&mut RunRecord)) -> Result<(), ResultsError> {
        let mut record = self.run_record()?;
        f(&mut record);
        record.schema = SCHEMA_VERSION;
        // Through a JSON value, whose maps keep their keys sorted: run.json
        // lists every object's keys alphabetically, as it always has.
        let value = serde_json::to_value(&record).map_err(|source| ResultsError::Json { path: self.path.join("run.json"), source })?;
        self.write_json("run.json", &value)
    }

    /// Saves one measurement (histogram file + its record), replacing an
    /// earlier one of the same env × metric.
    /// The measurement is stamped with the run writing now and the time,
    /// unless it carries its own (a merge keeps the measured run's).
    pub fn save(&self, m: &Measurement) -> Result<(), ResultsError> {
        let mut rec = m.record();
        if rec.run_id.is_none() {
            rec.run_id = self.run_record()?.current_run_id().map(String::from);
        }
        rec.measured_utc.get_or_insert_with(rfc3339_now);
        write_atomic(&self.path.join(&rec.histogram), &isobench_workloads::hist::to_v2_bytes(&m.histogram)?)?;
        let mut records = self.records()?;
        records.retain(|r| !(r.env == rec.env && r.metric == rec.metric));
        records.push(rec);
        self.write_json("measurements.json", &records)
    }

    fn records(&self) -> Result<Vec<MeasurementRecord>, ResultsError> {
        Ok(self.read_json("measurements.json")?.unwrap_or_default())
    }

    /// Every saved measurement, in the order saved (the report sorts them).
    pub fn measurements(&self) -> Result<Vec<Measurement>, ResultsError> {
        let mut out = Vec::new();
        for rec in self.records()? {
            let path = self.path.join(&rec.histogram);
            let bytes = std::fs::read(&path).map_err(io_err(&path))?;
            let h = isobench_workloads::hist::from_v2_bytes(&bytes)?;
            out.push(Measurement::from_record(&rec, h)?);
        }
        Ok(out)
    }

    /// Saves an `isobench startup` run (startup.json, or startup-nolibc.json
    /// for `--noop nolibc`); the report shows each.
    pub fn save_startup(&self, run: &StartupRun) -> Result<(), ResultsError> {
        self.write_json(&startup_file("startup", run.noop), run)
    }

    /// Saves an `isobench startup --per-namespace` run (startup-ns.json, or
    /// startup-ns-nolibc.json).
    pub fn save_startup_per_namespace(&self, run: &StartupRun) -> Result<(), ResultsError> {
        self.write_json(&startup_file("startup-ns", run.noop), run)
    }

    /// The saved `isobench startup` run with `noop`, if there is one.
    pub fn startup(&self, noop: Noop) -> Result<Option<StartupRun>, ResultsError> {
        self.read_json(&startup_file("startup", noop))
    }

    /// The saved `isobench startup --per-namespace` run with `noop`, if
    /// there is one.
    pub fn startup_per_namespace(&self, noop: Noop) -> Result<Option<StartupRun>, ResultsError> {
        self.read_json(&startup_file("startup-ns", noop))
    }

    /// Saves the `isobench validate` checks (validate.json); the report shows
    /// them.
    pub fn save_validation(&self, checks: &[Check]) -> Result<(), ResultsError> {
        self.write_json("validate.json", &checks)
    }

    /// The saved `isobench validate` checks, if there are any.
    pub fn validation(&self) -> Result<Option<Vec<Check>>, ResultsError> {
        self.read_json("validate.json")
    }
}

/// `startup.json`, `startup-nolibc.json`, `startup-ns.json`, …: one file per
/// kind of run and no-op.
fn startup_file(stem: &str, noop: Noop) -> String {
    match noop {
        Noop::Static => format!("{stem}.json"),
        other => format!("{stem}-{}.json", other.as_str()),
    }
}
