//! The user's own command (`Request::Exec`, `isobench run --command`):
//! hyperfine's method with `--shell=none` and `--output=null`, run inside
//! the environment. The program is exec'd by path (searched in the
//! request's `PATH` when it has no slash), with /dev/null as its stdin,
//! stdout and stderr, `warmup` times untimed and then `runs` times, each
//! run timed by the agent's own CLOCK_MONOTONIC from before fork(2) to
//! after waitpid(2). Every argument vector is built before the clock
//! starts; the child calls only async-signal-safe functions (prctl, dup2,
//! setns, chroot, chdir, execve, write, _exit) on memory prepared before
//! fork.
//!
//! With [`ExecRequest::private_root`] (native and unshare, whose agent
//! runs in the host's file system) the child first enters a mount
//! namespace of its own, made once by [`private_namespace`] and held by a
//! file descriptor: the image bound read-only onto itself (youki's and
//! runc's readonly rootfs: a bind, then a remount with `MS_RDONLY`), a
//! tmpfs on its /tmp and the user's data directory bound on /mnt, all
//! under a recursively private / so that nothing reaches the host's mount
//! table. setns(2) into a held namespace costs each run little and tears
//! nothing down at its exit; unshare(2) per run would time a copy of the
//! host's mount table with the command.
//!
//! A program that cannot be exec'd is told apart from one that exits 127:
//! the child writes the failing step and errno to a close-on-exec pipe,
//! which stays empty when execve(2) succeeded (the method of Rust's
//! `std::process::Command` and of runc's exec fifo).

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::protocol::{bounds, ExecRequest, ExecResult, ExecRun, ExitStatus, PrivateRoot};

/// `PATH` when the request's environment has none: the one Docker and
/// isobench's container give a process.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Why a command could not be run (its exit status is not an error: it is
/// reported in [`ExecRun::status`]).
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("exec: {0}")]
    Bounds(String),
    #[error("{program:?}: not found in {root} (searched PATH={path})")]
    NotFound { program: String, root: String, path: String },
    #[error("{path}: {step} failed in the child: {source}")]
    Child {
        path: String,
        step: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("exec: the command's private mount namespace: {step} failed: {source}")]
    Namespace {
        step: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("exec: {context}: {source}")]
    Io {
        context: &'static str,
        #[source]
        source: std::io::Error,
    },
}

/// The child's steps, as written to the error pipe.
const STEPS: [&str; 6] = ["prctl(PR_SET_PDEATHSIG)", "dup2 of /dev/null", "chroot", "chdir", "execve", "setns(CLONE_NEWNS)"];

/// The namespace maker's steps, as written to its pipe.
const NS_STEPS: [&str; 7] = [
    "prctl(PR_SET_PDEATHSIG)",
    "unshare(CLONE_NEWNS)",
    "making / recursively private",
    "binding the image onto itself",
    "remounting the image read-only",
    "mounting a tmpfs on the image's /tmp",
    "binding the data directory",
];
/// What the maker writes when every step succeeded.
const NS_READY: u32 = u32::MAX;
/// The image's /tmp: what the container's read-only root gets
/// (`container/rootfs/mount.rs`), the same size.
const TMP_OPTIONS: &std::ffi::CStr = c"mode=1777,size=65536k";

/// The last private namespace made: its request and its descriptor. A
/// mount namespace lives while a descriptor of it is open, so it goes with
/// the agent, killed or not, and nothing of it is ever on the host.
type HeldNamespace = (String, PrivateRoot, Arc<OwnedFd>);
static NAMESPACE: Mutex<Option<HeldNamespace>> = Mutex::new(None);

/// Runs the request: the warm-ups, then the timed runs, stopping at the
/// first that does not exit 0.
pub fn run(req: &ExecRequest) -> Result<ExecResult, ExecError> {
    check(req)?;
    let root = req.root.as_deref().unwrap_or("/");
    let cwd = req.cwd.as_deref().unwrap_or("/");
    let volume = req.private_root.as_ref().and_then(|p| p.volume.as_ref());
    let path = resolve_with(&req.argv[0], Path::new(root), cwd, &req.env, volume)?;
    let namespace = match (&req.private_root, &req.root) {
        (Some(p), Some(root)) => Some(private_namespace(root, p)?),
        (Some(_), None) => return Err(ExecError::Bounds("private_root without root".into())),
        _ => None,
    };
    let cstr = |s: &str| CString::new(s).map_err(|_| ExecError::Bounds(format!("{s:?} holds a NUL byte")));
    let path_c = cstr(&path)?;
    let argv: Vec<CString> = req.argv.iter().map(|a| cstr(a)).collect::<Result<_, _>>()?;
    let envp: Vec<CString> = req.env.iter().map(|e| cstr(e)).collect::<Result<_, _>>()?;
    let root_c = req.root.as_deref().map(cstr).transpose()?;
    let cwd_c = cstr(cwd)?;
    let mut argv_p: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_p.push(std::ptr::null());
    let mut envp_p: Vec<*const libc::c_char> = envp.iter().map(|e| e.as_ptr()).collect();
    envp_p.push(std::ptr::null());
    // Opened here, before any chroot: the image may have no /dev.
    let null =
        std::fs::OpenOptions::new().read(true).write(true).open("/dev/null").map_err(|source| ExecError::Io { context: "open /dev/null", source })?;
    let child = Child {
        path: &path_c,
        argv: &argv_p,
        envp: &envp_p,
        root: root_c.as_ref(),
        cwd: &cwd_c,
        null: null.as_raw_fd(),
        namespace: namespace.as_ref().map(|n| n.as_raw_fd()),
    };
    let mut out = ExecResult { path: path.clone(), warmup: Vec::new(), runs: Vec::new() };
    for i in 0..req.warmup + req.runs {
        let run = child.run_once().map_err(|e| e.with_path(&path))?;
        let failed = !run.status.success();
        if i < req.warmup {
            out.warmup.push(run);
        } else {
            out.runs.push(run);
        }
        if failed {
            break;
        }
    }
    Ok(out)
}

/// Each parameter within `protocol::bounds`, before anything runs.
fn check(req: &ExecRequest) -> Result<(), ExecError> {
    let bad = |m: String| Err(ExecError::Bounds(m));
    if !bounds::EXEC_ARGS.contains(&req.argv.len()) {
        return bad(format!("argv of {} words is out of range {}..={}", req.argv.len(), bounds::EXEC_ARGS.start(), bounds::EXEC_ARGS.end()));
    }
    if req.argv[0].is_empty() {
        return bad("an empty program name".into());
    }
    if !bounds::EXEC_RUNS.contains(&req.runs) {
        return bad(format!("runs {} is out of range {}..={}", req.runs, bounds::EXEC_RUNS.start(), bounds::EXEC_RUNS.end()));
    }
    if !bounds::EXEC_WARMUP.contains(&req.warmup) {
        return bad(format!("warmup {} is out of range {}..={}", req.warmup, bounds::EXEC_WARMUP.start(), bounds::EXEC_WARMUP.end()));
    }
    for (name, dir) in [("root", &req.root), ("cwd", &req.cwd)] {
        if let Some(d) = dir.as_deref().filter(|d| !d.starts_with('/')) {
            return bad(format!("{name} {d:?} is not an absolute path"));
        }
    }
    Ok(())
}

/// The path execve(2) gets for `program`, as the command sees it inside
/// `root`: the program itself when it has a slash, else the first entry
/// of `PATH` (from `env`, else [`DEFAULT_PATH`]) under which `root` holds
/// it (lstat(2): a dangling applet link still counts, execve then says).
pub fn resolve(program: &str, root: &Path, cwd: &str, env: &[String]) -> Result<String, ExecError> {
    resolve_with(program, root, cwd, env, None)
}

/// [`resolve`] with a private namespace's volume `(source, target)`: a
/// path under the target is looked up in the source, as the child will
/// see it (the agent itself is not in that namespace).
fn resolve_with(program: &str, root: &Path, cwd: &str, env: &[String], volume: Option<&(String, String)>) -> Result<String, ExecError> {
    let inside = |p: &str| -> PathBuf {
        let abs = if p.starts_with('/') { PathBuf::from(p) } else { Path::new(cwd).join(p) };
        if let Some((source, target)) = volume {
            if let Ok(rest) = abs.strip_prefix(target) {
                return Path::new(source).join(rest);
            }
        }
        root.join(abs.strip_prefix("/").unwrap_or(&abs))
    };
    let search = env.iter().find_map(|e| e.strip_prefix("PATH=")).unwrap_or(DEFAULT_PATH);
    let where_ = || match root == Path::new("/") {
        true => "the environment's root file system".to_string(),
        false => format!("the image at {}", root.display()),
    };
    if program.contains('/') {
        return match inside(program).symlink_metadata() {
            Ok(_) => Ok(program.to_string()),
            Err(_) => Err(ExecError::NotFound { program: program.into(), root: where_(), path: "(not searched: the name has a slash)".into() }),
        };
    }
    search
        .split(':')
        .filter(|d| !d.is_empty())
        .map(|d| format!("{}/{program}", d.trim_end_matches('/')))
        .find(|p| inside(p).symlink_metadata().is_ok())
        .ok_or_else(|| ExecError::NotFound { program: program.into(), root: where_(), path: search.into() })
}

/// Everything the child needs, prepared before fork.
struct Child<'a> {
    path: &'a CString,
    argv: &'a [*const libc::c_char],
    envp: &'a [*const libc::c_char],
    root: Option<&'a CString>,
    cwd: &'a CString,
    null: libc::c_int,
    /// A held mount namespace to enter before the chroot.
    namespace: Option<libc::c_int>,
}

/// A failure of one child before or at execve(2), before the path is known.
struct ChildFailure {
    step: &'static str,
    source: std::io::Error,
}

impl ChildFailure {
    fn with_path(self, path: &str) -> ExecError {
        match self.step {
            "" => ExecError::Io { context: "fork", source: self.source },
            step => ExecError::Child { path: path.into(), step, source: self.source },
        }
    }
}

impl Child<'_> {
    /// One fork, exec and wait, timed from before fork to after wait.
    fn run_once(&self) -> Result<ExecRun, ChildFailure> {
        let os = |step| ChildFailure { step, source: std::io::Error::last_os_error() };
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: fds is a valid array of two ints for pipe2 to fill.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(os(""));
        }
        // SAFETY: pipe2 returned two new descriptors that nothing else owns.
        let (rd, wr) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        let t0 = now_ns();
        // SAFETY: the child calls only async-signal-safe functions on memory
        // prepared before fork, and leaves through execve or _exit.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            unsafe { self.child(wr.as_raw_fd()) };
        }
        if pid < 0 {
            return Err(os(""));
        }
        drop(wr);
        let mut status = 0;
        // SAFETY: status is a valid out-pointer; pid is our child.
        let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
        let ns = now_ns().saturating_sub(t0);
        if waited != pid {
            return Err(os(""));
        }
        let mut report = [0u8; 8];
        let n = std::io::Read::read(&mut std::fs::File::from(rd), &mut report).unwrap_or(0);
        if n == report.len() {
            let step = u32::from_ne_bytes(report[..4].try_into().unwrap_or_default()) as usize;
            let errno = i32::from_ne_bytes(report[4..].try_into().unwrap_or_default());
            return Err(ChildFailure { step: STEPS.get(step).copied().unwrap_or("exec"), source: std::io::Error::from_raw_os_error(errno) });
        }
        let exit = match (libc::WIFEXITED(status), libc::WIFSIGNALED(status)) {
            (true, _) => ExitStatus { code: Some(libc::WEXITSTATUS(status)), signal: None },
            (_, true) => ExitStatus { code: None, signal: Some(libc::WTERMSIG(status)) },
            _ => ExitStatus { code: None, signal: None },
        };
        Ok(ExecRun { ns, status: exit })
    }

    /// The forked child: dies with the agent, /dev/null as its stdio, the
    /// root and directory, execve. On failure it writes the step and errno
    /// to `report` and exits 127.
    ///
    /// # Safety
    /// Only in the child of fork(2): it never returns.
    unsafe fn child(&self, report: libc::c_int) -> ! {
        let fail = |step: u32| -> ! {
            // SAFETY: errno is this thread's; msg lives on the stack.
            unsafe {
                let errno = *libc::__errno_location();
                let mut msg = [0u8; 8];
                msg[..4].copy_from_slice(&step.to_ne_bytes());
                msg[4..].copy_from_slice(&errno.to_ne_bytes());
                libc::write(report, msg.as_ptr().cast(), msg.len());
                libc::_exit(127)
            }
        };
        // SAFETY: each call gets pointers to NUL-terminated strings and
        // NULL-terminated arrays built before fork.
        unsafe {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                fail(0);
            }
            for fd in 0..3 {
                if libc::dup2(self.null, fd) < 0 {
                    fail(1);
                }
            }
            if let Some(ns) = self.namespace {
                if libc::setns(ns, libc::CLONE_NEWNS) != 0 {
                    fail(5);
                }
            }
            if let Some(root) = self.root {
                if libc::chroot(root.as_ptr()) != 0 {
                    fail(2);
                }
            }
            if libc::chdir(self.cwd.as_ptr()) != 0 {
                fail(3);
            }
            libc::execve(self.path.as_ptr(), self.argv.as_ptr(), self.envp.as_ptr());
        }
        fail(4)
    }
}

/// The mount namespace for `root` and `private`: the one held when the
/// last request asked the same, else a new one (the old one let go).
/// Made by a forked child that unshares, mounts and waits until the agent
/// has opened its `/proc/<pid>/ns/mnt`, then exits; the agent's mount
/// table and the host's stay as they were.
pub fn private_namespace(root: &str, private: &PrivateRoot) -> Result<Arc<OwnedFd>, ExecError> {
    let mut held = NAMESPACE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((r, p, fd)) = held.as_ref() {
        if r == root && p == private {
            return Ok(Arc::clone(fd));
        }
    }
    *held = None;
    let fd = Arc::new(make_namespace(root, private)?);
    *held = Some((root.to_string(), private.clone(), Arc::clone(&fd)));
    Ok(fd)
}

fn make_namespace(root: &str, private: &PrivateRoot) -> Result<OwnedFd, ExecError> {
    let bad = |m: String| ExecError::Bounds(m);
    let cstr = |s: &str| CString::new(s).map_err(|_| bad(format!("{s:?} holds a NUL byte")));
    let root_c = cstr(root)?;
    let tmp = Path::new(root).join("tmp");
    let tmp_c = match private.tmp && tmp.is_dir() {
        true => Some(cstr(&tmp.display().to_string())?),
        false => None,
    };
    let volume = match &private.volume {
        None => None,
        Some((source, target)) => {
            let at = Path::new(root).join(target.trim_start_matches('/'));
            if !target.starts_with('/') || !at.is_dir() {
                return Err(bad(format!("the data directory's mount point {target} is not a directory in the image {root}")));
            }
            Some((cstr(source)?, cstr(&at.display().to_string())?))
        }
    };
    let os = |step: &'static str| ExecError::Namespace { step, source: std::io::Error::last_os_error() };
    let pipe = || -> Result<(OwnedFd, OwnedFd), ExecError> {
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: fds is a valid array of two ints for pipe2 to fill.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(os("pipe2"));
        }
        // SAFETY: pipe2 returned two new descriptors that nothing else owns.
        Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
    };
    let (ready_rd, ready_wr) = pipe()?;
    let (hold_rd, hold_wr) = pipe()?;
    let (ready, hold, hold_w) = (ready_wr.as_raw_fd(), hold_rd.as_raw_fd(), hold_wr.as_raw_fd());
    // SAFETY: the child calls only async-signal-safe functions on memory
    // prepared before fork, and leaves through _exit.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: in the child of fork; every pointer is to a CString above.
        unsafe {
            let say = |step: u32| {
                let errno = *libc::__errno_location();
                let mut msg = [0u8; 8];
                msg[..4].copy_from_slice(&step.to_ne_bytes());
                msg[4..].copy_from_slice(&errno.to_ne_bytes());
                libc::write(ready, msg.as_ptr().cast(), msg.len());
            };
            let fail = |step: u32| -> ! {
                say(step);
                libc::_exit(127)
            };
            let null = std::ptr::null::<libc::c_char>();
            libc::close(hold_w);
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                fail(0);
            }
            if libc::unshare(libc::CLONE_NEWNS) != 0 {
                fail(1);
            }
            if libc::mount(null, c"/".as_ptr(), null, libc::MS_REC | libc::MS_PRIVATE, std::ptr::null()) != 0 {
                fail(2);
            }
            if libc::mount(root_c.as_ptr(), root_c.as_ptr(), null, libc::MS_BIND, std::ptr::null()) != 0 {
                fail(3);
            }
            if libc::mount(null, root_c.as_ptr(), null, libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY, std::ptr::null()) != 0 {
                fail(4);
            }
            if let Some(tmp) = &tmp_c {
                let flags = libc::MS_NOSUID | libc::MS_NODEV;
                if libc::mount(c"tmpfs".as_ptr(), tmp.as_ptr(), c"tmpfs".as_ptr(), flags, TMP_OPTIONS.as_ptr().cast()) != 0 {
                    fail(5);
                }
            }
            if let Some((source, target)) = &volume {
                if libc::mount(source.as_ptr(), target.as_ptr(), null, libc::MS_BIND | libc::MS_REC, std::ptr::null()) != 0 {
                    fail(6);
                }
            }
            say(NS_READY);
            // Held until the agent has opened the namespace and closes its end.
            let mut byte = 0u8;
            libc::read(hold, (&mut byte as *mut u8).cast(), 1);
            libc::_exit(0)
        }
    }
    if pid < 0 {
        return Err(os("fork"));
    }
    drop((ready_wr, hold_rd));
    let mut msg = [0u8; 8];
    let n = std::io::Read::read(&mut std::fs::File::from(ready_rd), &mut msg).unwrap_or(0);
    let step = u32::from_ne_bytes(msg[..4].try_into().unwrap_or_default());
    let opened = match (n, step) {
        (8, NS_READY) => std::fs::File::open(format!("/proc/{pid}/ns/mnt"))
            .map(OwnedFd::from)
            .map_err(|source| ExecError::Namespace { step: "opening /proc/<pid>/ns/mnt", source }),
        (8, step) => Err(ExecError::Namespace {
            step: NS_STEPS.get(step as usize).copied().unwrap_or("setup"),
            source: std::io::Error::from_raw_os_error(i32::from_ne_bytes(msg[4..].try_into().unwrap_or_default())),
        }),
        _ => Err(ExecError::Namespace { step: "setup", source: std::io::Error::other("the maker exited without a word") }),
    };
    drop(hold_wr);
    let mut status = 0;
    // SAFETY: status is a valid out-pointer; pid is our child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    opened
}

/// CLOCK_MONOTONIC, ns.
fn now_ns() -> u64 {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).unwrap_or(nix::sys::time::TimeSpec::new(0, 0));
    t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(argv: &[&str], runs: u32, warmup: u32) -> ExecRequest {
        ExecRequest {
            argv: argv.iter().map(|s| s.to_string()).collect(),
            env: vec![format!("PATH={DEFAULT_PATH}")],
            cwd: None,
            root: None,
            private_root: None,
            runs,
            warmup,
        }
    }

    #[test]
    fn true_is_timed_each_run_and_false_stops_at_its_exit_status() {
        let r = run(&req(&["true"], 5, 2)).unwrap();
        assert_eq!((r.warmup.len(), r.runs.len()), (2, 5));
        assert!(r.path.ends_with("/true"), "{}", r.path);
        assert!(r.runs.iter().all(|x| x.status.success() && x.ns > 10_000), "fork+exec+wait takes over 10 µs: {r:?}");
        let r = run(&req(&["false"], 5, 2)).unwrap();
        assert_eq!((r.warmup.len(), r.runs.len()), (1, 0), "stopped at the first warm-up: {r:?}");
        assert_eq!(r.warmup[0].status, ExitStatus { code: Some(1), signal: None });
        assert_eq!(r.warmup[0].status.to_string(), "exit status 1");
        let r = run(&req(&["sh", "-c", "kill -9 $$"], 1, 0)).unwrap();
        assert_eq!(r.runs[0].status.signal, Some(9));
        assert!(!r.runs[0].status.success());
    }

    #[test]
    fn a_missing_program_or_an_unexecutable_file_is_an_error_not_an_exit_status() {
        let e = run(&req(&["isobench-no-such-program"], 1, 0)).unwrap_err().to_string();
        assert_eq!(e, format!("\"isobench-no-such-program\": not found in the environment's root file system (searched PATH={DEFAULT_PATH})"));
        // A file without an execute bit: EACCES, even for root.
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("data");
        std::fs::write(&f, b"not a program").unwrap();
        let e = run(&req(&[f.to_str().unwrap()], 1, 0)).unwrap_err().to_string();
        assert_eq!(e, format!("{}: execve failed in the child: Permission denied (os error 13)", f.display()));
        let e = run(&req(&["/no/such"], 1, 0)).unwrap_err().to_string();
        assert!(e.contains("not found") && e.contains("has a slash"), "{e}");
    }

    #[test]
    fn out_of_range_parameters_are_refused_before_anything_runs() {
        assert!(run(&req(&[], 1, 0)).unwrap_err().to_string().contains("argv of 0 words"));
        assert!(run(&req(&["true"], 0, 0)).unwrap_err().to_string().contains("runs 0 is out of range"));
        assert!(run(&req(&["true"], 1, 1001)).unwrap_err().to_string().contains("warmup 1001"));
        let mut r = req(&["true"], 1, 0);
        r.root = Some("rel".into());
        assert!(run(&r).unwrap_err().to_string().contains("root \"rel\" is not an absolute path"));
    }

    #[test]
    fn the_program_is_searched_inside_the_root() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("usr/bin")).unwrap();
        std::fs::write(d.path().join("usr/bin/tool"), b"").unwrap();
        let env = vec!["PATH=/bin:/usr/bin".to_string()];
        assert_eq!(resolve("tool", d.path(), "/", &env).unwrap(), "/usr/bin/tool");
        assert_eq!(resolve("usr/bin/tool", d.path(), "/", &env).unwrap(), "usr/bin/tool", "relative to cwd, inside the root");
        let e = resolve("sh", d.path(), "/", &env).unwrap_err().to_string();
        assert_eq!(e, format!("\"sh\": not found in the image at {} (searched PATH=/bin:/usr/bin)", d.path().display()));
    }
}
