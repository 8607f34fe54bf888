//! Which isobench runs are active on this machine, so that figures measured
//! while another run measured say so, in both runs' reports.
//!
//! Every measuring command (`isobench run`, `startup`, `validate`, each
//! `cargo bench` binary) registers for its lifetime ([`register`]): an entry
//! `isobench-<pid>-run.json` in the registry folder ([`dir`]: `/run/isobench/runs`
//! as root) holding the command, its results folder and its start. At
//! registration it also leaves a note of itself in every other live run's
//! `isobench-<pid>-seen/` folder, and when it ends it writes its end time
//! into those notes: a run that starts and ends inside one of another run's
//! measurements is still found by that run ([`others_between`]). The method
//! is the pid file's (as systemd's `/run/*.pid`), stamped like
//! [`crate::leftovers`] so the entries of a killed run are swept at the next
//! start ([`sweep`]) and each entry carries its owner's start time
//! (`/proc/<pid>/stat` field 22), so a recycled pid is never taken for a
//! live run. The folder itself is removed by the last run that leaves it.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::leftovers;

/// The registry folder as root: tmpfs, gone at reboot like the runs it lists.
pub const ROOT_DIR: &str = "/run/isobench/runs";

/// Writes that race with the last run removing the folder are retried this
/// many times.
const WRITE_TRIES: usize = 3;

/// One registered run (`isobench-<pid>-run.json`, and each note in a
/// `seen/` folder).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RunEntry {
    pub pid: i32,
    /// The process's start, clock ticks after boot (`/proc/<pid>/stat` field
    /// 22): with the pid, it names one process across pid reuse.
    pub pid_start: u64,
    /// `isobench run`, `isobench startup`, `cargo bench (spawn)`, ...
    pub command: String,
    /// The results folder it writes, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub results: Option<PathBuf>,
    /// When it registered (RFC 3339, UTC).
    pub started_utc: String,
    /// When it registered, ms since the Unix epoch.
    pub started_ms: u64,
    /// When it ended, ms since the Unix epoch (notes only; set by the run at
    /// its end, or by the note's reader when it finds the run gone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_ms: Option<u64>,
}

impl RunEntry {
    /// "isobench run (pid 123, results/20260101T000000Z-host)".
    pub fn describe(&self) -> String {
        match &self.results {
            Some(r) => format!("{} (pid {}, {})", self.command, self.pid, r.display()),
            None => format!("{} (pid {})", self.command, self.pid),
        }
    }

    /// Whether the process that wrote this entry still runs.
    pub fn alive(&self) -> bool {
        pid_start(self.pid) == Some(self.pid_start)
    }

    /// Whether the run was active at some time of `[from_ms, to_ms]`.
    pub fn overlaps(&self, from_ms: u64, to_ms: u64) -> bool {
        self.started_ms <= to_ms && self.ended_ms.map_or(true, |e| e >= from_ms)
    }
}

/// The registry folder: [`ROOT_DIR`] as root, else
/// `$XDG_RUNTIME_DIR/isobench/runs` or `<temp>/isobench-runs-<uid>` (runs of
/// different users then do not see each other).
pub fn dir() -> PathBuf {
    let uid = nix::unistd::geteuid();
    if uid.is_root() {
        return PathBuf::from(ROOT_DIR);
    }
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(d) => Path::new(&d).join("isobench").join("runs"),
        None => std::env::temp_dir().join(format!("isobench-runs-{uid}")),
    }
}

/// ms since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// The start of process `pid` in clock ticks after boot, when it exists.
pub fn pid_start(pid: i32) -> Option<u64> {
    procfs::process::Process::new(pid).ok()?.stat().ok().map(|s| s.starttime)
}

fn entry_name(pid: i32) -> String {
    format!("{}{pid}-run.json", leftovers::PREFIX)
}

fn seen_name(pid: i32) -> String {
    format!("{}{pid}-seen", leftovers::PREFIX)
}

/// Writes `entry` as `path`, through a pid-stamped temporary name and a
/// rename; the folder is (re)made first, since the last run leaving removes it.
fn write_entry(path: &Path, entry: &RunEntry) -> std::io::Result<()> {
    let bytes = serde_json::to_vec_pretty(entry).map_err(std::io::Error::other)?;
    let dir = path.parent().expect("an entry lies in a folder");
    let tmp = dir.join(format!("{}.tmp", leftovers::name("entry")));
    let mut last = Ok(());
    for _ in 0..WRITE_TRIES {
        last = std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&tmp, &bytes)).and_then(|()| std::fs::rename(&tmp, path));
        if last.is_ok() {
            return Ok(());
        }
        let _ = std::fs::remove_file(&tmp);
    }
    last
}

fn read_entry(path: &Path) -> Option<RunEntry> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// Makes `dir` and its parent reachable by every user's runs (sticky, like
/// /tmp), when this process created them.
fn make_shared(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    for d in [Some(dir), dir.parent()].into_iter().flatten() {
        if d.starts_with("/run/isobench") {
            let _ = std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o1777));
        }
    }
}

/// This process's registration; dropping it removes the entry and its
/// `seen/` folder and stamps its end into the notes it left.
#[derive(Debug)]
pub struct Registration {
    dir: PathBuf,
    entry: RunEntry,
    /// Notes of this run left in other runs' `seen/` folders.
    notes: Vec<PathBuf>,
}

impl Registration {
    pub fn entry(&self) -> &RunEntry {
        &self.entry
    }
}

/// Registers this process as a run of `command` writing `results`. A
/// registry that cannot be written (a read-only /run) costs the detection of
/// concurrent runs, never the run: the registration is then empty.
pub fn register(command: &str, results: Option<&Path>) -> Registration {
    register_in(&dir(), command, results)
}

/// [`register`] in the registry folder `dir`.
pub fn register_in(dir: &Path, command: &str, results: Option<&Path>) -> Registration {
    let pid = std::process::id() as i32;
    let now = now_ms();
    let entry = RunEntry {
        pid,
        pid_start: pid_start(pid).unwrap_or(0),
        command: command.to_string(),
        results: results.map(|r| std::path::absolute(r).unwrap_or_else(|_| r.to_path_buf())),
        started_utc: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        started_ms: now,
        ended_ms: None,
    };
    let mut reg = Registration { dir: dir.to_path_buf(), entry, notes: Vec::new() };
    if write_entry(&dir.join(entry_name(pid)), &reg.entry).is_err() {
        return reg;
    }
    make_shared(dir);
    for other in live_in(dir) {
        let note = dir.join(seen_name(other.pid)).join(entry_name(pid));
        if write_entry(&note, &reg.entry).is_ok() {
            reg.notes.push(note);
        }
    }
    reg
}

impl Drop for Registration {
    fn drop(&mut self) {
        let pid = self.entry.pid;
        let _ = std::fs::remove_file(self.dir.join(entry_name(pid)));
        let _ = std::fs::remove_dir_all(self.dir.join(seen_name(pid)));
        let ended = RunEntry { ended_ms: Some(now_ms()), ..self.entry.clone() };
        for note in &self.notes {
            // Only where the other run still keeps its seen/ folder.
            if note.parent().is_some_and(Path::is_dir) {
                let _ = write_entry(note, &ended);
            }
        }
        // The last run out removes the folder (a registering run recreates it).
        if std::fs::remove_dir(&self.dir).is_ok() {
            if let Some(parent) = self.dir.parent().filter(|p| p.ends_with("isobench")) {
                let _ = std::fs::remove_dir(parent);
            }
        }
    }
}

/// The live runs registered in `dir` other than this process.
fn live_in(dir: &Path) -> Vec<RunEntry> {
    let me = std::process::id() as i32;
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut live: Vec<RunEntry> = entries
        .flatten()
        .filter(|e| e.file_name().to_str().is_some_and(|n| n.ends_with("-run.json")))
        .filter_map(|e| read_entry(&e.path()))
        .filter(|r| r.pid != me && r.alive())
        .collect();
    live.sort_by_key(|r| (r.started_ms, r.pid));
    live
}

/// The other runs registered now.
pub fn live() -> Vec<RunEntry> {
    live_in(&dir())
}

/// The other runs active at some time of `[from_ms, to_ms]`: those live now,
/// those `at_start` (live at `from_ms`), and those that left a note in this
/// process's `seen/` folder and overlap. A note of a run that is gone
/// without stamping its end (killed) gets now as its end, so later intervals
/// do not count it.
pub fn others_between(from_ms: u64, to_ms: u64, at_start: &[RunEntry]) -> Vec<RunEntry> {
    others_between_in(&dir(), from_ms, to_ms, at_start)
}

/// [`others_between`] in the registry folder `dir`.
pub fn others_between_in(dir: &Path, from_ms: u64, to_ms: u64, at_start: &[RunEntry]) -> Vec<RunEntry> {
    let mut found: Vec<RunEntry> = at_start.to_vec();
    found.extend(live_in(dir));
    let seen = dir.join(seen_name(std::process::id() as i32));
    for e in std::fs::read_dir(&seen).into_iter().flatten().flatten() {
        let Some(mut note) = read_entry(&e.path()) else { continue };
        if note.ended_ms.is_none() && !note.alive() {
            note.ended_ms = Some(now_ms());
            let _ = write_entry(&e.path(), &note);
        }
        if note.overlaps(from_ms, to_ms) {
            found.push(RunEntry { ended_ms: None, ..note });
        }
    }
    let mut out: Vec<RunEntry> = Vec::new();
    for r in found {
        if !out.iter().any(|o| o.pid == r.pid && o.pid_start == r.pid_start) {
            out.push(RunEntry { ended_ms: None, ..r });
        }
    }
    out.sort_by_key(|r| (r.started_ms, r.pid));
    out
}

/// Removes the entries and `seen/` folders of runs that no longer exist
/// (killed: a run that ends removes its own).
pub fn sweep() -> Vec<PathBuf> {
    sweep_in(&dir())
}

/// [`sweep`] in the registry folder `dir`.
pub fn sweep_in(dir: &Path) -> Vec<PathBuf> {
    leftovers::sweep(dir, leftovers::owner_pid, |e| {
        let p = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() => std::fs::remove_dir_all(&p).is_ok(),
            Ok(_) => std::fs::remove_file(&p).is_ok(),
            Err(_) => false,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pid that cannot exist (above pid_max's hard limit of 2^22).
    const DEAD: i32 = 4_194_399;

    fn entry(pid: i32, started_ms: u64, ended_ms: Option<u64>) -> RunEntry {
        RunEntry {
            pid,
            pid_start: 1,
            command: "isobench run".into(),
            results: Some("results/x".into()),
            started_utc: "2026-01-01T00:00:00Z".into(),
            started_ms,
            ended_ms,
        }
    }

    #[test]
    fn a_run_is_listed_while_registered_and_its_entry_goes_with_it() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("runs");
        let reg = register_in(&dir, "isobench run", Some(Path::new("/tmp/r")));
        let path = dir.join(entry_name(std::process::id() as i32));
        let written = read_entry(&path).unwrap();
        assert_eq!(&written, reg.entry());
        assert!(written.alive() && written.pid_start > 0);
        assert!(live_in(&dir).is_empty(), "a run does not list itself");
        drop(reg);
        assert!(!dir.exists(), "the last run out removes the folder");
    }

    #[test]
    fn a_run_that_came_and_went_during_an_interval_is_found_through_its_note() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("runs");
        let me = std::process::id() as i32;
        let _reg = register_in(&dir, "isobench run", None);
        // Another run's note in our seen/ folder: it ran 100..200 ms.
        let seen = dir.join(seen_name(me));
        write_entry(&seen.join(entry_name(DEAD)), &entry(DEAD, 100, Some(200))).unwrap();
        let found = others_between_in(&dir, 150, 300, &[]);
        assert_eq!(found.iter().map(|r| r.pid).collect::<Vec<_>>(), [DEAD]);
        assert!(others_between_in(&dir, 250, 300, &[]).is_empty(), "it ended before the interval");
        assert!(others_between_in(&dir, 10, 50, &[]).is_empty(), "it started after the interval");
        // A killed run's note, without an end: counted once, then stamped.
        write_entry(&seen.join(entry_name(DEAD - 1)), &entry(DEAD - 1, 100, None)).unwrap();
        let t = now_ms();
        assert!(others_between_in(&dir, 150, t, &[]).iter().any(|r| r.pid == DEAD - 1));
        let stamped = read_entry(&seen.join(entry_name(DEAD - 1))).unwrap();
        assert!(stamped.ended_ms.is_some_and(|e| e >= t));
        assert!(!others_between_in(&dir, t + 10_000, t + 20_000, &[]).iter().any(|r| r.pid == DEAD - 1));
        // Runs live at the interval's start count, once each (beside the
        // two notes: the killed run may have run until it was found gone).
        let at_start = [entry(DEAD - 2, 0, None), entry(DEAD - 2, 0, None)];
        let found: Vec<i32> = others_between_in(&dir, 150, 300, &at_start).iter().map(|r| r.pid).collect();
        assert_eq!(found, [DEAD - 2, DEAD - 1, DEAD]);
    }

    #[test]
    fn a_dead_runs_entry_is_swept_and_a_recycled_pid_is_not_live() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("runs");
        write_entry(&dir.join(entry_name(DEAD)), &entry(DEAD, 0, None)).unwrap();
        std::fs::create_dir_all(dir.join(seen_name(DEAD))).unwrap();
        // This process's pid with another start time: a recycled pid.
        let me = std::process::id() as i32;
        let mut recycled = entry(me, 0, None);
        recycled.pid_start = 1;
        assert!(!recycled.alive());
        let removed = sweep_in(&dir);
        assert_eq!(removed.len(), 2, "{removed:?}");
        assert!(std::fs::read_dir(&dir).unwrap().next().is_none());
    }
}
