//! Process and thread creation cost.
//!
//! - `spawn.fork_exit`: fork, the child `_exit(0)`s, waitpid (lmbench lat_proc fork).
//! - `spawn.fork_exec`: fork, execve of the static `noop` (no dynamic
//!   loader), waitpid (lmbench lat_proc exec, which also execs a static program).
//! - `spawn.posix_spawn`: the same program through posix_spawn(3), which glibc
//!   implements with clone(CLONE_VM|CLONE_VFORK): no page-table copy.
//! - `spawn.thread`: create and join an empty thread.
//!
//! Every argument vector is built before the clock starts: a forked child of
//! a multi-threaded process must not allocate.
//!
//! Like with like: every environment execs the no-op by the same relative
//! path ([`NOOP_EXEC_PATH`]) from the no-op's own directory, which the agent
//! makes its working directory for the loop ([`Cwd`]), with the same empty
//! environment ([`NOOP_ENVP`]). So the path walk is one lookup everywhere,
//! however deep the directory is (natively the cached rootfs's, in a
//! container `/`), and what the no-op's start reads is the same; what is left
//! to differ is what holds the file and the environment's own isolation.
//! [`target`] says what that is, for the report.

use std::ffi::{CStr, CString};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::ptr;

use crate::catalog::MetricSpec;
use crate::protocol::{RunRequest, RunResult, SpawnTarget};

use super::{time_loop, Context, MetricError};

/// The path the spawn metrics give execve(2): relative to the no-op's
/// directory, the working directory while they run.
pub const NOOP_EXEC_PATH: &CStr = c"./noop";

/// The no-op's environment: none. Its start reads no variable; an empty
/// list is the same in every environment (the agents' own environments are
/// not: a container's has PATH and HOME, a guest's the kernel's).
pub const NOOP_ENVP: [*const libc::c_char; 1] = [ptr::null()];

/// The agent's working directory set to the no-op's for as long as this
/// lives, the previous one restored on drop.
pub struct Cwd {
    previous: Option<OwnedFd>,
}

impl Cwd {
    /// Changes into `dir`. Errors: `dir` cannot be entered.
    pub fn enter(metric: &'static str, dir: &CStr) -> Result<Cwd, MetricError> {
        let previous = std::fs::File::open(".").ok().map(OwnedFd::from);
        // SAFETY: chdir(2) of a NUL-terminated path.
        if unsafe { libc::chdir(dir.as_ptr()) } != 0 {
            return Err(last_os(metric, "chdir to the no-op's directory"));
        }
        Ok(Cwd { previous })
    }
}

impl Drop for Cwd {
    fn drop(&mut self) {
        if let Some(fd) = &self.previous {
            // SAFETY: fchdir(2) to a directory fd we own.
            unsafe { libc::fchdir(fd.as_raw_fd()) };
        }
    }
}

/// The no-op's directory: `noop`'s parent, or `/`.
fn noop_dir(noop: &CStr) -> CString {
    let p = Path::new(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(noop.to_bytes()));
    let dir = p.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("/"));
    CString::new(dir.as_os_str().as_encoded_bytes()).unwrap_or_else(|_| c"/".to_owned())
}

/// What the spawn metrics exec for the no-op at `noop`, as this agent sees it.
pub fn target(noop: &Path) -> SpawnTarget {
    let meta = std::fs::metadata(noop).ok();
    let dir = noop.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("/"));
    SpawnTarget {
        path: NOOP_EXEC_PATH.to_string_lossy().into_owned(),
        dir: dir.display().to_string(),
        envp: Vec::new(),
        fs: fs_name(dir),
        dev: meta.as_ref().map_or(0, |m| m.dev()),
        ino: meta.as_ref().map_or(0, |m| m.ino()),
    }
}

/// The file system type of `dir` by name (statfs(2)'s magic number).
pub fn fs_name(dir: &Path) -> String {
    let Ok(c) = CString::new(dir.as_os_str().as_encoded_bytes()) else { return "unknown".into() };
    // SAFETY: statfs(2) fills the struct on our stack.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 {
        return "unknown".into();
    }
    match st.f_type as i64 {
        0xEF53 => "ext4".into(),
        0x0102_1994 => "tmpfs".into(),
        0x8584_58f6 => "ramfs".into(),
        0x794c_7630 => "overlay".into(),
        0x5846_5342 => "xfs".into(),
        0x9123_683e => "btrfs".into(),
        0x6573_5546 => "fuse".into(),
        0x0102_1997 => "9p".into(),
        0x6e73_6673 => "nsfs".into(),
        other => format!("{other:#x}"),
    }
}

fn last_os(metric: &'static str, context: &'static str) -> MetricError {
    MetricError::Io { metric, context, source: std::io::Error::last_os_error() }
}

/// Waits for `pid` and checks it exited 0.
fn reap(metric: &'static str, pid: libc::pid_t) -> Result<(), MetricError> {
    let mut status = 0;
    // SAFETY: status is a valid out-pointer; pid is our child.
    if unsafe { libc::waitpid(pid, &mut status, 0) } != pid {
        return Err(last_os(metric, "waitpid"));
    }
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        return Err(MetricError::Failed { metric, message: format!("child exited with wait status {status:#x}") });
    }
    Ok(())
}

fn check_noop(metric: &'static str, path: &CString) -> Result<(), MetricError> {
    if std::path::Path::new(path.to_str().unwrap_or("")).is_file() {
        Ok(())
    } else {
        Err(MetricError::Failed { metric, message: format!("noop binary {path:?} not found") })
    }
}

/// The relative path execve(2) gets for `noop` once in its directory:
/// [`NOOP_EXEC_PATH`] when the file is called `noop`, else `./<its name>`.
fn exec_path(noop: &CStr) -> CString {
    let bytes = noop.to_bytes();
    let name = bytes.rsplit(|b| *b == b'/').next().unwrap_or(bytes);
    if name == b"noop" {
        return NOOP_EXEC_PATH.to_owned();
    }
    let mut v = b"./".to_vec();
    v.extend_from_slice(name);
    CString::new(v).unwrap_or_else(|_| NOOP_EXEC_PATH.to_owned())
}

pub fn fork_exit(spec: &'static MetricSpec, req: &RunRequest) -> Result<RunResult, MetricError> {
    time_loop(spec, req, || {
        // SAFETY: the child calls only _exit.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            unsafe { libc::_exit(0) };
        }
        if pid < 0 {
            return Err(last_os(spec.name, "fork"));
        }
        reap(spec.name, pid)
    })
}

pub fn fork_exec(spec: &'static MetricSpec, req: &RunRequest, ctx: &Context) -> Result<RunResult, MetricError> {
    let m = spec.name;
    check_noop(m, &ctx.noop)?;
    let _cwd = Cwd::enter(m, &noop_dir(&ctx.noop))?;
    let path = exec_path(&ctx.noop);
    let argv: [*const libc::c_char; 2] = [path.as_ptr(), ptr::null()];
    let envp = NOOP_ENVP;
    time_loop(spec, req, || {
        // SAFETY: the child calls only execve and _exit (async-signal-safe)
        // on memory prepared before fork.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            unsafe {
                libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr());
                libc::_exit(127);
            }
        }
        if pid < 0 {
            return Err(last_os(m, "fork"));
        }
        reap(m, pid)
    })
}

pub fn posix_spawn(spec: &'static MetricSpec, req: &RunRequest, ctx: &Context) -> Result<RunResult, MetricError> {
    let m = spec.name;
    check_noop(m, &ctx.noop)?;
    let _cwd = Cwd::enter(m, &noop_dir(&ctx.noop))?;
    let path = exec_path(&ctx.noop);
    let argv: [*mut libc::c_char; 2] = [path.as_ptr().cast_mut(), ptr::null_mut()];
    let envp: [*mut libc::c_char; 1] = [NOOP_ENVP[0].cast_mut()];
    time_loop(spec, req, || {
        let mut pid: libc::pid_t = 0;
        // SAFETY: path, argv and envp are NUL-terminated and outlive the
        // call; posix_spawn does not write through argv/envp.
        let rc = unsafe { libc::posix_spawn(&mut pid, path.as_ptr(), ptr::null(), ptr::null(), argv.as_ptr(), envp.as_ptr()) };
        if rc != 0 {
            return Err(MetricError::Io { metric: m, context: "posix_spawn", source: std::io::Error::from_raw_os_error(rc) });
        }
        reap(m, pid)
    })
}

pub fn thread(spec: &'static MetricSpec, req: &RunRequest) -> Result<RunResult, MetricError> {
    time_loop(spec, req, || {
        std::thread::Builder::new()
            .spawn(|| {})
            .map_err(|e| MetricError::Io { metric: spec.name, context: "thread spawn", source: e })?
            .join()
            .map_err(|_| MetricError::Failed { metric: spec.name, message: "empty thread panicked".into() })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{catalog, hist};

    fn req(spec: &MetricSpec, n: u64) -> RunRequest {
        RunRequest { warmup: 1, ..RunRequest::new(spec.name, n, 10_000) }
    }

    #[test]
    fn fork_exec_and_posix_spawn_of_true_and_of_a_missing_binary() {
        for name in ["spawn.fork_exec", "spawn.posix_spawn"] {
            let spec = catalog::lookup(name).unwrap();
            let f = if name == "spawn.fork_exec" { fork_exec } else { posix_spawn };
            let ctx = Context { noop: CString::new("/bin/true").unwrap() };
            let r = f(spec, &req(spec, 20), &ctx).unwrap();
            let h = hist::decode(&r.histogram).unwrap();
            assert_eq!(h.len(), 20);
            assert!(h.min() > 10_000, "{name}: spawning a program takes more than 10 µs, got {} ns", h.min());

            let ctx = Context { noop: CString::new("/nonexistent/noop").unwrap() };
            assert!(f(spec, &req(spec, 20), &ctx).unwrap_err().to_string().contains("not found"));
            // a program that fails is an error, not a fast sample
            let ctx = Context { noop: CString::new("/bin/false").unwrap() };
            assert!(f(spec, &req(spec, 20), &ctx).unwrap_err().to_string().contains("wait status"), "{name}");
        }
    }

    /// A probe in the no-op's place says what it was given: `./noop` as its
    /// name and an empty environment, from its own directory, by both ways
    /// of spawning; and the agent's working directory is its own again after.
    #[test]
    fn the_noop_is_exec_d_as_dot_slash_noop_with_an_empty_environment() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("seen");
        let probe = dir.path().join("noop");
        // /proc/$$/environ is the environment execve(2) gave the shell, before
        // the shell adds its own variables.
        std::fs::write(&probe, format!("#!/bin/sh\nprintf '%s\\n' \"$0\" \"$(pwd)\" >> {o}\nwc -c < /proc/$$/environ >> {o}\n", o = out.display()))
            .unwrap();
        std::fs::set_permissions(&probe, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let cwd = std::env::current_dir().unwrap();
        for name in ["spawn.fork_exec", "spawn.posix_spawn"] {
            let spec = catalog::lookup(name).unwrap();
            let f = if name == "spawn.fork_exec" { fork_exec } else { posix_spawn };
            std::fs::remove_file(&out).ok();
            f(spec, &RunRequest { warmup: 0, ..RunRequest::new(spec.name, 1, 10_000) }, &Context::for_noop(&probe)).unwrap();
            let seen = std::fs::read_to_string(&out).unwrap();
            let lines: Vec<&str> = seen.lines().collect();
            assert_eq!(lines[0], "./noop", "{name}: {seen}");
            assert_eq!(Path::new(lines[1]).canonicalize().unwrap(), dir.path().canonicalize().unwrap(), "{name}: run from its directory");
            assert_eq!(lines[2].trim(), "0", "{name}: an empty environment");
            assert_eq!(std::env::current_dir().unwrap(), cwd, "{name}: the working directory is restored");
        }
        let t = target(&probe);
        assert_eq!((t.path.as_str(), t.dir.as_str(), t.envp.len()), ("./noop", dir.path().to_str().unwrap(), 0));
        assert_eq!(t.ino, std::fs::metadata(&probe).unwrap().ino());
        assert_eq!(exec_path(c"/x/y/noop-nolibc"), c"./noop-nolibc");
    }

    #[test]
    fn fork_exit_and_thread() {
        let spec = catalog::lookup("spawn.fork_exit").unwrap();
        let h = hist::decode(&fork_exit(spec, &req(spec, 30)).unwrap().histogram).unwrap();
        assert_eq!(h.len(), 30);
        assert!(h.min() > 1_000, "fork+exit+wait takes more than 1 µs, got {} ns", h.min());
        let spec = catalog::lookup("spawn.thread").unwrap();
        let h = hist::decode(&thread(spec, &req(spec, 30)).unwrap().histogram).unwrap();
        assert_eq!(h.len(), 30);
        assert!(h.min() > 500, "thread create+join takes more than 0.5 µs, got {} ns", h.min());
    }
}
