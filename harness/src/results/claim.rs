//! Who may write a results folder, so that two runs can never be mixed up in
//! one: `isobench run --out DIR` on a folder that already holds measurements
//! is refused unless the user says `--append` (the report then lists each
//! run) or `--force` (the old run's files are removed first); while a run
//! writes, the folder itself is locked with flock(2), as cargo locks its
//! build directory, so a second run into it is refused at once and the lock
//! goes with the process, even after SIGKILL; and a folder whose run began
//! but never finished (run.json `in_progress`) is refused by `compare` and
//! `merge` unless they are told `--allow-incomplete`.

use std::fs::File;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use super::{ResultsError, RunDir};

/// What `isobench run --out DIR` does with a folder that holds a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reuse {
    /// Refuse it (the default).
    #[default]
    Refuse,
    /// Add this run's measurements to it (`--append`).
    Append,
    /// Remove the run's files first (`--force`).
    Force,
}

/// The files and folders a run writes into its folder, which `--force`
/// removes: nothing else of the folder is touched.
const RUN_FILES: &[&str] = &[
    "run.json",
    "measurements.json",
    "summary.csv",
    "summary.json",
    "host_timed.csv",
    "report.md",
    "report.html",
    "validate.json",
    "layers.json",
    "histograms",
    "plots",
];

/// The lock a writer holds on its folder while it writes; dropping it (or
/// the process ending, however it ends) releases it.
#[derive(Debug)]
pub struct WriteLock {
    _lock: Flock<File>,
}

impl RunDir {
    /// Opens `path` for a new `isobench run`: creates it, locks it (refused
    /// at once when another run holds the lock), and, when it already holds
    /// measurements, refuses it, keeps it for appending or clears it,
    /// as `reuse` says.
    pub fn claim(path: &Path, reuse: Reuse) -> Result<(RunDir, WriteLock), ResultsError> {
        std::fs::create_dir_all(path).map_err(super::io_err(path))?;
        let lock = lock(path)?.ok_or_else(|| ResultsError::Busy { path: path.to_path_buf() })?;
        let dir = RunDir { path: path.to_path_buf() };
        if dir.holds_run() {
            match reuse {
                Reuse::Refuse => return Err(ResultsError::HoldsRun { path: path.to_path_buf() }),
                Reuse::Append => {}
                Reuse::Force => dir.clear_run()?,
            }
        }
        let dir = RunDir::at(path)?;
        Ok((dir, WriteLock { _lock: lock }))
    }

    /// Whether the folder holds a run's measurements.
    pub fn holds_run(&self) -> bool {
        self.path.join("measurements.json").exists()
    }

    /// Whether a process holds the folder's write lock now.
    pub fn being_written(&self) -> bool {
        matches!(lock(&self.path), Ok(None))
    }

    /// Removes what a run wrote ([`RUN_FILES`] and the startup records).
    fn clear_run(&self) -> Result<(), ResultsError> {
        let startup = |n: &str| n.starts_with("startup") && n.ends_with(".json");
        let entries = std::fs::read_dir(&self.path).map_err(super::io_err(&self.path))?;
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !(RUN_FILES.contains(&name.as_str()) || startup(&name)) {
                continue;
            }
            let p = e.path();
            let removed = if e.file_type().is_ok_and(|t| t.is_dir()) { std::fs::remove_dir_all(&p) } else { std::fs::remove_file(&p) };
            removed.map_err(super::io_err(&p))?;
        }
        Ok(())
    }

    /// Refuses a folder that a run began and did not finish (still writing,
    /// or killed part-way), unless `allow_incomplete`; also refuses a run.json
    /// that cannot be read. Returns the record.
    pub fn complete_run(&self, allow_incomplete: bool) -> Result<super::RunRecord, ResultsError> {
        let run = self.run_record()?;
        if run.in_progress && !allow_incomplete {
            let path = self.path.clone();
            return Err(if self.being_written() { ResultsError::Busy { path } } else { ResultsError::Incomplete { path } });
        }
        Ok(run)
    }
}

/// An exclusive flock(2) on the folder `path` itself; `None` when another
/// open file description holds it.
fn lock(path: &Path) -> Result<Option<Flock<File>>, ResultsError> {
    let f = File::open(path).map_err(super::io_err(path))?;
    match Flock::lock(f, FlockArg::LockExclusiveNonblock) {
        Ok(l) => Ok(Some(l)),
        Err((_, Errno::EWOULDBLOCK)) => Ok(None),
        Err((_, e)) => Err(ResultsError::Io { path: path.to_path_buf(), source: e.into() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::Measurement;
    use isobench_workloads::catalog;

    fn measured(dir: &RunDir) {
        let mut m = Measurement::new("native", "native", catalog::lookup("syscall.getpid").unwrap());
        m.histogram.record(100).unwrap();
        dir.save(&m).unwrap();
    }

    #[test]
    fn a_folder_holding_a_run_is_refused_unless_appended_or_forced() {
        let d = tempfile::tempdir().unwrap();
        let (dir, lock) = RunDir::claim(d.path(), Reuse::Refuse).unwrap();
        measured(&dir);
        std::fs::write(d.path().join("notes.txt"), "mine").unwrap();
        drop(lock);
        let e = RunDir::claim(d.path(), Reuse::Refuse).unwrap_err();
        assert!(e.to_string().contains("already holds a run") && e.to_string().contains("--append"), "{e}");
        let (dir, lock) = RunDir::claim(d.path(), Reuse::Append).unwrap();
        assert_eq!(dir.measurements().unwrap().len(), 1, "append keeps what was measured");
        drop(lock);
        let (dir, _lock) = RunDir::claim(d.path(), Reuse::Force).unwrap();
        assert!(dir.measurements().unwrap().is_empty() && !dir.holds_run());
        assert!(d.path().join("notes.txt").exists(), "--force removes the run's files only");
    }

    #[test]
    fn a_second_writer_is_refused_while_the_first_holds_the_lock() {
        let d = tempfile::tempdir().unwrap();
        let (dir, lock) = RunDir::claim(d.path(), Reuse::Refuse).unwrap();
        assert!(dir.being_written());
        for reuse in [Reuse::Refuse, Reuse::Append, Reuse::Force] {
            let e = RunDir::claim(d.path(), reuse).unwrap_err();
            assert!(matches!(e, ResultsError::Busy { .. }), "{e}");
        }
        drop(lock);
        assert!(!dir.being_written());
        RunDir::claim(d.path(), Reuse::Refuse).unwrap();
    }

    #[test]
    fn a_run_that_did_not_finish_is_refused_unless_allowed() {
        let d = tempfile::tempdir().unwrap();
        let (dir, lock) = RunDir::claim(d.path(), Reuse::Refuse).unwrap();
        dir.update_run(|r| r.in_progress = true).unwrap();
        let e = dir.complete_run(false).unwrap_err();
        assert!(matches!(e, ResultsError::Busy { .. }), "still locked: being written: {e}");
        drop(lock);
        let e = dir.complete_run(false).unwrap_err();
        assert!(e.to_string().contains("did not finish") && e.to_string().contains("--allow-incomplete"), "{e}");
        assert!(dir.complete_run(true).unwrap().in_progress);
        dir.update_run(|r| r.in_progress = false).unwrap();
        dir.complete_run(false).unwrap();
        std::fs::write(d.path().join("run.json"), "{\"schema\": 1, \"host\": {").unwrap();
        assert!(matches!(dir.complete_run(true), Err(ResultsError::Json { .. })), "a truncated run.json is refused");
    }
}
