//! Finds (and when needed builds) the static workload binaries: the
//! `isobench-agent`, `noop` and `noop-nolibc` from crate `isobench-workloads`, linked with
//! `-C target-feature=+crt-static` so the very same files run on the host, in
//! a rootfs with no libc and as a guest's /init.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::SystemTime;

/// Target triple the static binaries are built for.
pub const TARGET: &str = "x86_64-unknown-linux-gnu";

/// Overrides where the binaries are looked for (a folder holding both).
pub const DIR_ENV: &str = "ISOBENCH_WORKLOADS_DIR";

#[derive(Debug, thiserror::Error)]
pub enum WorkloadsError {
    #[error("static workloads (isobench-agent, noop, noop-nolibc) not found in {0}; run scripts/build-workloads (or set ISOBENCH_WORKLOADS_DIR)")]
    Missing(PathBuf),
    #[error("building the static workloads failed ({0}); run scripts/build-workloads to see why")]
    Build(String),
}

/// Paths of the static workload binaries.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Workloads {
    pub agent: PathBuf,
    /// The static glibc no-op the spawn metrics and `isobench startup` exec.
    pub noop: PathBuf,
    /// The no-op without C library start-up (`isobench startup --noop nolibc`).
    pub noop_nolibc: PathBuf,
}

impl Workloads {
    fn in_dir(dir: &Path) -> Workloads {
        Workloads { agent: dir.join("isobench-agent"), noop: dir.join("noop"), noop_nolibc: dir.join("noop-nolibc") }
    }

    fn exist(&self) -> bool {
        self.agent.is_file() && self.noop.is_file() && self.noop_nolibc.is_file()
    }
}

/// The repository root (this crate lives in `<root>/harness`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("harness has a parent").to_path_buf()
}

/// Cargo target dir of the static build.
pub fn static_target_dir() -> PathBuf {
    repo_root().join("target").join("static")
}

fn newest_mtime(dir: &Path) -> Option<SystemTime> {
    let mut newest = None;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        let t = if path.is_dir() { newest_mtime(&path) } else { entry.metadata().ok()?.modified().ok() };
        newest = newest.max(t);
    }
    newest
}

/// Returns the static binaries, building them first when they are missing or
/// older than `workloads/` sources (only inside the repository, with cargo).
///
/// Errors: [`WorkloadsError::Missing`] when they cannot be found or built.
pub fn locate() -> Result<Workloads, WorkloadsError> {
    static BUILD: Mutex<()> = Mutex::new(());
    if let Some(dir) = std::env::var_os(DIR_ENV) {
        let w = Workloads::in_dir(Path::new(&dir));
        return if w.exist() { Ok(w) } else { Err(WorkloadsError::Missing(dir.into())) };
    }
    let _guard = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let root = repo_root();
    let out = static_target_dir().join(TARGET).join("release");
    let w = Workloads::in_dir(&out);
    let src = root.join("workloads");
    let stale = match (std::fs::metadata(&w.agent).and_then(|m| m.modified()), newest_mtime(&src)) {
        (Ok(bin), Some(srct)) => srct > bin,
        (Ok(_), None) => false,
        (Err(_), _) => true,
    };
    if stale || !w.exist() {
        if !src.is_dir() {
            return Err(WorkloadsError::Missing(out));
        }
        build(&root)?;
    }
    if w.exist() {
        Ok(w)
    } else {
        Err(WorkloadsError::Missing(out))
    }
}

/// Runs the same build as scripts/build-workloads.
fn build(root: &Path) -> Result<(), WorkloadsError> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(root)
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        .args(["build", "--quiet", "--release", "--locked", "-p", "isobench-workloads", "--target", TARGET, "--target-dir"])
        .arg(static_target_dir())
        .status()
        .map_err(|e| WorkloadsError::Build(e.to_string()))?;
    if status.success() {
        Ok(())
    } else {
        Err(WorkloadsError::Build(format!("cargo exited with {status}")))
    }
}
