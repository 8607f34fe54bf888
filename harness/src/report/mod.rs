//! Results folders and the files in them (DESIGN.md "Results"):
//!
//! ```text
//! results/<UTC timestamp>-<hostname>/
//!   run.json            host facts, environments (accelerator and why), parameters
//!   measurements.json   one record per env × metric (counts, elapsed, histogram file)
//!   summary.csv         one row per env × metric: n, min, p50, p90, p99, p99.9, max, mean, stdev, unit
//!   summary.json        the same rows as JSON
//!   histograms/         hdrhistogram V2 files, ns per operation
//!   plots/              SVG and PNG charts
//!   report.md           overhead vs native per metric, plots inline, caveats
//!   report.html         the same, self-contained (charts inlined)
//! results/latest -> <newest folder>
//! ```
//!
//! Every file is written to a temporary name and renamed into place, so an
//! interrupted run leaves what it finished and never a half-written file.
//! Measurements are saved as soon as they exist; the derived files are
//! re-rendered from them.

pub mod compare;
mod csv;
pub mod html;
pub mod markdown;
pub mod merge;
pub mod phases;
pub mod plot;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::collect::{CollectError, Measurement, MeasurementRecord};
use crate::startup::Noop;

/// Version of the results schema (run.json `schema`; csv columns are stable
/// within a version).
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
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
    #[error("summary.csv: {0}")]
    Csv(#[from] ::csv::Error),
    #[error("plot {path}: {message}")]
    Plot { path: PathBuf, message: String },
    #[error(transparent)]
    Collect(#[from] CollectError),
    #[error(transparent)]
    Hist(#[from] isobench_workloads::hist::HistError),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ReportError + '_ {
    move |source| ReportError::Io { path: path.to_path_buf(), source }
}

/// Writes `bytes` to `path` through a temporary file in the same folder and a
/// rename, so readers never see a partial file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let mut tmp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir).map_err(io_err(dir))?;
    tmp.write_all(bytes).map_err(io_err(path))?;
    // Results are for reading by anyone (tempfile creates 0600).
    use std::os::unix::fs::PermissionsExt;
    tmp.as_file().set_permissions(std::fs::Permissions::from_mode(0o644)).map_err(io_err(path))?;
    tmp.as_file().sync_data().map_err(io_err(path))?;
    tmp.persist(path).map_err(|e| ReportError::Io { path: path.to_path_buf(), source: e.error })?;
    Ok(())
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
    pub fn at(path: &Path) -> Result<RunDir, ReportError> {
        std::fs::create_dir_all(path.join("histograms")).map_err(io_err(path))?;
        Ok(RunDir { path: path.to_path_buf() })
    }

    /// Creates `<results_root>/<UTC timestamp>-<hostname>` and points
    /// `<results_root>/latest` at it.
    pub fn create_in(results_root: &Path) -> Result<RunDir, ReportError> {
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
    pub fn for_cargo_bench(results_root: &Path) -> Result<RunDir, ReportError> {
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

    fn point_latest(&self) -> Result<(), ReportError> {
        let Some(root) = self.path.parent() else { return Ok(()) };
        let name = self.path.file_name().expect("run dir has a name");
        let tmp = root.join(".latest.tmp");
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(name, &tmp).map_err(io_err(&tmp))?;
        std::fs::rename(&tmp, root.join("latest")).map_err(io_err(root))?;
        Ok(())
    }

    fn read_json(&self, file: &str) -> Result<Option<Value>, ReportError> {
        let path = self.path.join(file);
        match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b).map(Some).map_err(|source| ReportError::Json { path, source }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ReportError::Io { path, source: e }),
        }
    }

    fn write_json(&self, file: &str, v: &impl serde::Serialize) -> Result<(), ReportError> {
        let path = self.path.join(file);
        let mut bytes = serde_json::to_vec_pretty(v).map_err(|source| ReportError::Json { path: path.clone(), source })?;
        bytes.push(b'\n');
        write_atomic(&path, &bytes)
    }

    /// run.json as it is now (an empty object when absent).
    pub fn run_json(&self) -> Result<Value, ReportError> {
        Ok(self.read_json("run.json")?.unwrap_or_else(|| serde_json::json!({})))
    }

    /// Read-modify-writes run.json; keys set by `f` are merged into what
    /// earlier bench binaries wrote (objects merge, other values replace).
    pub fn update_run_json(&self, patch: Value) -> Result<(), ReportError> {
        let mut v = self.run_json()?;
        merge(&mut v, patch);
        if let Value::Object(m) = &mut v {
            m.insert("schema".into(), SCHEMA_VERSION.into());
        }
        self.write_json("run.json", &v)
    }

    /// Saves one measurement (histogram file + its record), replacing an
    /// earlier one of the same env × metric.
    pub fn save(&self, m: &Measurement) -> Result<(), ReportError> {
        let rec = m.record();
        write_atomic(&self.path.join(&rec.histogram), &isobench_workloads::hist::to_v2_bytes(&m.histogram)?)?;
        let mut records = self.records()?;
        records.retain(|r| !(r.env == rec.env && r.metric == rec.metric));
        records.push(rec);
        self.write_json("measurements.json", &records)
    }

    fn records(&self) -> Result<Vec<MeasurementRecord>, ReportError> {
        let path = self.path.join("measurements.json");
        match self.read_json("measurements.json")? {
            None => Ok(Vec::new()),
            Some(v) => serde_json::from_value(v).map_err(|source| ReportError::Json { path, source }),
        }
    }

    /// Every saved measurement, in catalogue × environment order.
    pub fn measurements(&self) -> Result<Vec<Measurement>, ReportError> {
        let mut out = Vec::new();
        for rec in self.records()? {
            let path = self.path.join(&rec.histogram);
            let bytes = std::fs::read(&path).map_err(io_err(&path))?;
            let h = isobench_workloads::hist::from_v2_bytes(&bytes)?;
            out.push(Measurement::from_record(&rec, h)?);
        }
        out.sort_by_key(|m| (catalog_index(m.metric.name), env_order(&m.env)));
        Ok(out)
    }

    /// Saves an `isobench startup` run (startup.json, or startup-nolibc.json
    /// for `--noop nolibc`); the report shows each.
    pub fn save_startup(&self, run: &crate::startup::StartupRun) -> Result<(), ReportError> {
        self.write_json(&startup_file("startup", run.noop), run)
    }

    /// Saves an `isobench startup --per-namespace` run (startup-ns.json, or
    /// startup-ns-nolibc.json).
    pub fn save_startup_per_namespace(&self, run: &crate::startup::StartupRun) -> Result<(), ReportError> {
        self.write_json(&startup_file("startup-ns", run.noop), run)
    }

    /// The saved startup run in `file`, if there is one.
    fn startup_run(&self, file: &str) -> Result<Option<crate::startup::StartupRun>, ReportError> {
        let Some(v) = self.read_json(file)? else { return Ok(None) };
        let path = self.path.join(file);
        serde_json::from_value(v).map(Some).map_err(|source| ReportError::Json { path, source })
    }

    /// Saves the `isobench validate` table (validate.json); the report shows it.
    pub fn save_validation(&self, checks: &[crate::validate::Check]) -> Result<(), ReportError> {
        self.write_json("validate.json", &checks)
    }

    /// Writes summary.csv, summary.json, plots/ and report.md from what is
    /// saved. Returns the path of report.md. A chart that cannot be drawn is a
    /// warning in the report, never a lost result.
    pub fn render(&self) -> Result<PathBuf, ReportError> {
        let ms = self.measurements()?;
        let summaries: Vec<_> = ms.iter().map(Measurement::summary).collect();
        write_atomic(&self.path.join("summary.csv"), &csv::summary_csv(&summaries)?)?;
        self.write_json("summary.json", &summaries)?;
        let run = self.run_json()?;
        let mut warnings = Vec::new();
        let plots = match plot::render_all(&self.path.join("plots"), &ms, &phases::from_run(&run)) {
            Ok(p) => p,
            Err(e) => {
                warnings.push(format!("plots were not drawn: {e}"));
                Vec::new()
            }
        };
        let mut md = markdown::report(&run, &ms, &plots, &warnings);
        let starts: Vec<_> = Noop::ALL.into_iter().map(|noop| self.startup_run(&startup_file("startup", noop))).collect::<Result<_, _>>()?;
        let both = starts.iter().all(Option::is_some);
        for run in starts.iter().flatten() {
            md.push_str(&format!(
                "\n## Container start: isobench's launcher beside the runtimes people deploy{}\n\nStart-to-exit of a no-op, interleaved rounds (A B C A B C …) so machine drift hits every column alike; {} rounds after {} warm-up.\n\n{}",
                noop_heading(run.noop, both),
                run.n,
                run.warmup,
                run.markdown()
            ));
        }
        if let [Some(a), Some(b)] = &starts[..] {
            md.push_str(&crate::startup::noop_share_markdown(a, b));
        }
        let per_ns: Vec<_> = Noop::ALL.into_iter().map(|noop| self.startup_run(&startup_file("startup-ns", noop))).collect::<Result<_, _>>()?;
        let both = per_ns.iter().all(Option::is_some);
        for run in per_ns.iter().flatten() {
            md.push_str(&format!("\n## Per-namespace start cost{}\n\n{}\n", noop_heading(run.noop, both), run.per_namespace_markdown()));
            if let Ok(files) = plot::per_namespace(&self.path.join("plots"), run) {
                if let Some(svg) = files.iter().find(|p| p.extension().is_some_and(|e| e == "svg")).and_then(|p| p.file_name()) {
                    md.push_str(&format!("\n![per-namespace start cost, {} no-op](plots/{})\n", run.noop.as_str(), svg.to_string_lossy()));
                }
            }
        }
        if let Some(v) = self.read_json("validate.json")? {
            let path = self.path.join("validate.json");
            let checks: Vec<crate::validate::Check> = serde_json::from_value(v).map_err(|source| ReportError::Json { path, source })?;
            md.push_str(&format!(
                "\n## Cross-check against independent tools (native, same session)\n\nMeans on both sides; \"within\" is ±{:.0} %. A difference comes with the method difference that explains it.\n\n{}",
                crate::validate::TOLERANCE * 100.0,
                crate::validate::table(&checks)
            ));
        }
        let path = self.path.join("report.md");
        write_atomic(&path, md.as_bytes())?;
        write_atomic(&self.path.join("report.html"), html::render(&md, &self.path).as_bytes())?;
        Ok(path)
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

/// The heading suffix that tells the two no-ops' sections apart; the static
/// one is named only when the other is there too.
fn noop_heading(noop: Noop, both: bool) -> &'static str {
    match (noop, both) {
        (Noop::Static, false) => "",
        (Noop::Static, true) => " (static glibc no-op)",
        (Noop::Nolibc, _) => " (no-op without C library start-up)",
    }
}

/// Position of a metric in the catalogue (report order).
pub fn catalog_index(metric: &str) -> usize {
    isobench_workloads::catalog::CATALOG.iter().position(|m| m.name == metric).unwrap_or(usize::MAX)
}

/// Report column order of an environment name (native first). A merged
/// report names columns `<env>@<host or config>`; they sort by environment,
/// then by that suffix.
pub fn env_order(env: &str) -> (usize, String) {
    let (kind, suffix) = split_env(env);
    let i = crate::env::EnvKind::ALL.iter().chain(crate::env::EnvKind::PEERS.iter()).position(|k| k.as_str() == kind).unwrap_or(usize::MAX);
    (i, format!("{suffix}\u{0}{kind}"))
}

/// `vm@laptop` → ("vm", "laptop"); `vm` → ("vm", "").
pub fn split_env(env: &str) -> (&str, &str) {
    env.split_once('@').unwrap_or((env, ""))
}

/// True for a baseline column (`native`, or `native@…` in a merged report).
pub fn is_baseline(env: &str) -> bool {
    split_env(env).0 == "native"
}

/// The native measurement `m` is compared with: the one of the same host or
/// configuration (same `@suffix`).
pub fn baseline_for<'a>(group: &[&'a Measurement], m: &Measurement) -> Option<&'a Measurement> {
    let suffix = split_env(&m.env).1;
    group.iter().copied().find(|b| is_baseline(&b.env) && split_env(&b.env).1 == suffix)
}

/// Deep-merges `patch` into `base`: objects merge key by key, anything else
/// replaces.
pub fn merge(base: &mut Value, patch: Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                merge(b.entry(k).or_insert(Value::Null), v);
            }
        }
        (b, p) => *b = p,
    }
}

/// Groups measurements by metric, keeping report order.
pub fn by_metric(ms: &[Measurement]) -> BTreeMap<(usize, &'static str), Vec<&Measurement>> {
    let mut g: BTreeMap<(usize, &'static str), Vec<&Measurement>> = BTreeMap::new();
    for m in ms {
        g.entry((catalog_index(m.metric.name), m.metric.name)).or_default().push(m);
    }
    g
}
