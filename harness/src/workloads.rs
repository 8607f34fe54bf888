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

/// Overrides where the binaries are looked for (a folder holding all three).
pub const DIR_ENV: &str = "ISOBENCH_WORKLOADS_DIR";

#[derive(Debug, thiserror::Error)]
pub enum WorkloadsError {
    #[error("static workloads not found: {}; run scripts/build-workloads (or point ISOBENCH_WORKLOADS_DIR at a folder with isobench-agent, noop, noop-nolibc and isobench-sysprobe)", .0.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "))]
    Missing(Vec<PathBuf>),
    #[error("building the static workloads failed ({0}); run scripts/build-workloads to see why")]
    Build(String),
}

/// Name of the agent at the root of a container's rootfs (`/isobench-agent`),
/// next to [`NOOP_NAME`] and [`NOOP_NOLIBC_NAME`]: the minimal rootfs, the
/// distribution rootfs and the OCI bundles carry the binaries there.
pub const AGENT_NAME: &str = "isobench-agent";
/// Name of the static glibc no-op at the root of a container's rootfs.
pub const NOOP_NAME: &str = "noop";
/// Name of the no-op without C library start-up at the root of a container's
/// rootfs (`isobench startup --noop nolibc`).
pub const NOOP_NOLIBC_NAME: &str = "noop-nolibc";

/// Paths of the static workload binaries.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Workloads {
    pub agent: PathBuf,
    /// The static glibc no-op the spawn metrics and `isobench startup` exec.
    pub noop: PathBuf,
    /// The no-op without C library start-up (`isobench startup --noop nolibc`).
    pub noop_nolibc: PathBuf,
    /// `isobench-sysprobe`: raw system calls a profile should refuse (the
    /// tests of `--profile` run it inside containers).
    pub probe: PathBuf,
}

impl Workloads {
    /// The binaries as `scripts/build-workloads` names them in `dir`.
    pub fn in_dir(dir: &Path) -> Workloads {
        Workloads { agent: dir.join("isobench-agent"), noop: dir.join("noop"), noop_nolibc: dir.join("noop-nolibc"), probe: dir.join(PROBE_NAME) }
    }

    /// Each binary with its name at the root of a container's rootfs.
    pub fn rootfs_files(&self) -> [(&Path, &'static str); 4] {
        [(&self.agent, AGENT_NAME), (&self.noop, NOOP_NAME), (&self.noop_nolibc, NOOP_NOLIBC_NAME), (&self.probe, PROBE_NAME)]
    }

    /// The binaries that are not there (empty: all are).
    fn missing(&self) -> Vec<PathBuf> {
        [&self.agent, &self.noop, &self.noop_nolibc, &self.probe].into_iter().filter(|p| !p.is_file()).cloned().collect()
    }
}

/// Name of `isobench-sysprobe` at the root of a container's rootfs.
pub const PROBE_NAME: &str = "isobench-sysprobe";

/// The no-op a start measurement execs (`isobench startup --noop`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Noop {
    /// `noop`: a static Rust binary with glibc, as lmbench's lat_proc execs
    /// a static "hello". Before `main`, glibc probes the CPU (dozens of CPUID
    /// instructions, counted in `collect::host::GLIBC_START_CPUIDS`) and
    /// Rust's runtime sets up (a poll of fds 0–2, signal handlers, the main
    /// thread's guard): cheap on bare metal, while in a guest each CPUID
    /// exits to the hypervisor (run.json's `host.cpuid_ns`).
    #[default]
    Static,
    /// `noop-nolibc`: `exit_group(0)` at the ELF entry point, three
    /// instructions; no C library or Rust runtime start-up.
    Nolibc,
}

isobench_workloads::named_values!(Noop, "no-op", { Static = "static", Nolibc = "nolibc" });

impl Noop {
    /// What the no-op is, for tables and reports.
    pub fn describe(self) -> &'static str {
        match self {
            Noop::Static => "noop, a static glibc binary (its start-up before main runs dozens of CPUID instructions)",
            Noop::Nolibc => "noop-nolibc, exit_group(0) at the entry point (no C library start-up)",
        }
    }

    /// The host's copy among `workloads`.
    pub fn path(self, workloads: &Workloads) -> &Path {
        match self {
            Noop::Static => &workloads.noop,
            Noop::Nolibc => &workloads.noop_nolibc,
        }
    }

    /// Its file name at the root of a container's rootfs ([`NOOP_NAME`],
    /// [`NOOP_NOLIBC_NAME`]).
    pub fn name_in_rootfs(self) -> &'static str {
        match self {
            Noop::Static => NOOP_NAME,
            Noop::Nolibc => NOOP_NOLIBC_NAME,
        }
    }
}

/// Cargo target dir of the static build.
pub fn static_target_dir() -> PathBuf {
    crate::paths::repo_root().join("target").join("static")
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
        let missing = w.missing();
        return if missing.is_empty() { Ok(w) } else { Err(WorkloadsError::Missing(missing)) };
    }
    let _guard = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let root = crate::paths::repo_root();
    let out = static_target_dir().join(TARGET).join("release");
    let w = Workloads::in_dir(&out);
    let src = root.join("workloads");
    // Cargo relinks only the binaries a change reaches (an edit to one bin's
    // source leaves the others' mtimes alone), so the sources are compared
    // with the newest binary; cargo's own fingerprints decide the rest.
    let built = [&w.agent, &w.noop, &w.noop_nolibc, &w.probe].into_iter().filter_map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok()).max();
    let stale = match (built, newest_mtime(&src)) {
        (Some(bin), Some(srct)) => srct > bin,
        (Some(_), None) => false,
        (None, _) => true,
    };
    if stale || !w.missing().is_empty() {
        if !src.is_dir() {
            return Err(WorkloadsError::Missing(w.missing()));
        }
        build(&root)?;
    }
    let missing = w.missing();
    if missing.is_empty() {
        Ok(w)
    } else {
        Err(WorkloadsError::Missing(missing))
    }
}

/// The static binaries as they are built, without [`locate`]'s comparison
/// with the sources (a walk of `workloads/`, ~0.3 ms): for `isobench exec`,
/// whose whole start is a few ms and which runs the user's command, not the
/// workloads. Builds them, as [`locate`] does, only when one is missing.
pub fn locate_built() -> Result<Workloads, WorkloadsError> {
    if std::env::var_os(DIR_ENV).is_none() {
        let w = Workloads::in_dir(&static_target_dir().join(TARGET).join("release"));
        if w.missing().is_empty() {
            return Ok(w);
        }
    }
    locate()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_noop_parses_back_and_the_error_names_every_one() {
        let e = "musl".parse::<Noop>().unwrap_err();
        for n in Noop::ALL {
            assert_eq!(n.to_string().parse::<Noop>(), Ok(n));
            assert!(e.contains(n.as_str()), "{e}");
        }
        assert_eq!(Noop::default(), Noop::Static);
    }

    #[test]
    fn a_folder_without_every_binary_is_named_with_what_it_lacks() {
        let d = tempfile::tempdir().unwrap();
        for b in ["isobench-agent", "noop", "isobench-sysprobe"] {
            std::fs::write(d.path().join(b), "").unwrap();
        }
        let w = Workloads::in_dir(d.path());
        assert_eq!(w.missing(), [d.path().join("noop-nolibc")]);
        let e = WorkloadsError::Missing(w.missing()).to_string();
        assert!(
            e.starts_with(&format!("static workloads not found: {}; run scripts/build-workloads", d.path().join("noop-nolibc").display())),
            "{e}"
        );
        std::fs::write(d.path().join("noop-nolibc"), "").unwrap();
        assert!(w.missing().is_empty());
        assert_eq!(Noop::Nolibc.path(&w), d.path().join("noop-nolibc"));
        assert_eq!(Noop::Nolibc.name_in_rootfs(), "noop-nolibc");
        assert_eq!(Noop::Static.name_in_rootfs(), "noop");
    }
}
