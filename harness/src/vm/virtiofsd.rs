//! virtiofsd, the daemon behind a guest's virtiofs share: one per guest,
//! started before QEMU, gone with it.
//!
//! virtiofs is FUSE carried over a virtio queue: the guest's kernel sends
//! FUSE requests to a `vhost-user-fs` device, whose queues QEMU hands to a
//! separate process over a vhost-user unix socket; that process (QEMU 7.2's
//! C virtiofsd, Debian's qemu-system-common) maps the guest's RAM (hence a
//! shared `memory-backend-memfd` in scripts/vm-run) and serves the requests
//! from a host directory. It follows Kata Containers' and QEMU's own
//! documentation (docs/tools/virtiofsd.rst): `--socket-path`, `-o
//! source=DIR`, a cache mode, the default namespace sandbox (which needs
//! root). The daemon is a child of isobench with `PR_SET_PDEATHSIG`
//! ([`crate::process::spawn_agent`]); its socket lies in the QEMU's
//! pid-stamped temp dir, so a killed run's daemon is found by that path on
//! its command line at the next start ([`sweep`], as runsc's processes are)
//! and its socket goes with the temp dir.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::leftovers;

/// Overrides the daemon's path.
pub const VIRTIOFSD_ENV: &str = "ISOBENCH_VIRTIOFSD";
/// Where distributions install it: Debian 12's qemu-system-common (QEMU
/// 7.2's C daemon), then the Rust virtiofsd of newer distributions.
pub const VIRTIOFSD_PATHS: [&str; 3] = ["/usr/lib/qemu/virtiofsd", "/usr/libexec/virtiofsd", "/usr/lib/virtiofsd"];

/// The cache mode the daemon runs with, named on every row: `none` tells the
/// guest to keep no page cache of the share (FUSE's direct I/O for every
/// open file), so that each read and write crosses to the host as it does
/// over 9p (whose mount keeps no cache either) and the two transports are
/// compared on the same terms; virtiofsd then drops the guest's O_DIRECT
/// (its default `no_allow_direct_io`), so the host's page cache serves.
pub const CACHE_MODE: &str = "none";

/// From the daemon's start to its socket existing (it binds before
/// anything else; under load it still takes milliseconds).
pub const SOCKET_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a daemon whose QEMU is gone gets to exit on its own (it does
/// when its vhost-user peer disconnects) before it is killed.
pub const EXIT_GRACE: Duration = Duration::from_millis(500);
/// How often its socket and state are polled.
const POLL: Duration = Duration::from_millis(5);
/// Lines of its stderr quoted in an error.
const STDERR_TAIL_LINES: usize = 5;

/// The name the daemon's processes carry (its binary's file name).
const NAME: &str = "virtiofsd";

#[derive(Debug, thiserror::Error)]
pub enum VirtiofsdError {
    #[error("virtiofsd not found (looked at ${VIRTIOFSD_ENV} and {}); run scripts/setup (Debian: apt-get install qemu-system-common)", VIRTIOFSD_PATHS.join(", "))]
    NotFound,
    #[error("virtiofsd needs root (its namespace sandbox and file ownership)")]
    NeedsRoot,
    #[error("start {}: {source}", bin.display())]
    Spawn {
        bin: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("virtiofsd exited ({status}) before its socket existed: {stderr}")]
    Exited { status: std::process::ExitStatus, stderr: String },
    #[error("virtiofsd exited ({status}) while its guest booted: {stderr}")]
    Died { status: std::process::ExitStatus, stderr: String },
    #[error("virtiofsd made no socket {} within {} s: {stderr}", socket.display(), SOCKET_TIMEOUT.as_secs())]
    NoSocket { socket: PathBuf, stderr: String },
}

/// Finds the daemon: `$ISOBENCH_VIRTIOFSD`, else the first of
/// [`VIRTIOFSD_PATHS`] that is a file.
pub fn find() -> Result<PathBuf, VirtiofsdError> {
    if let Some(p) = std::env::var_os(VIRTIOFSD_ENV).filter(|v| !v.is_empty()) {
        let p = PathBuf::from(p);
        return if p.is_file() { Ok(p) } else { Err(VirtiofsdError::NotFound) };
    }
    VIRTIOFSD_PATHS.iter().map(PathBuf::from).find(|p| p.is_file()).ok_or(VirtiofsdError::NotFound)
}

/// The daemon's command line: serve `source` on `socket` with `cache`.
pub fn command(bin: &Path, source: &Path, socket: &Path, cache: &str) -> Command {
    let mut cmd = Command::new(bin);
    cmd.arg(format!("--socket-path={}", socket.display()))
        .arg("-o")
        .arg(format!("source={}", source.display()))
        .arg("-o")
        .arg(format!("cache={cache}"));
    cmd
}

/// A running daemon. Dropping it waits [`EXIT_GRACE`] for it to exit (it
/// does once QEMU is gone), then kills and reaps it.
pub struct Virtiofsd {
    child: Child,
    socket: PathBuf,
    stderr: PathBuf,
}

impl Virtiofsd {
    /// Starts the daemon serving `source` on `socket` (in a temp dir of the
    /// caller's, beside `stderr`) and returns once the socket exists.
    pub fn spawn(bin: &Path, source: &Path, socket: &Path, stderr: &Path, cache: &str) -> Result<Virtiofsd, VirtiofsdError> {
        if !nix::unistd::geteuid().is_root() {
            return Err(VirtiofsdError::NeedsRoot);
        }
        let io = |context: String| move |source| VirtiofsdError::Io { context, source };
        let err_file = File::create(stderr).map_err(io(format!("create {}", stderr.display())))?;
        let out_file = err_file.try_clone().map_err(io("dup virtiofsd's stderr".into()))?;
        let mut cmd = command(bin, source, socket, cache);
        cmd.stdin(Stdio::null()).stdout(out_file).stderr(err_file);
        let child = crate::process::spawn_agent(&mut cmd).map_err(|source| VirtiofsdError::Spawn { bin: bin.to_path_buf(), source })?;
        let mut d = Virtiofsd { child, socket: socket.to_path_buf(), stderr: stderr.to_path_buf() };
        let deadline = Instant::now() + SOCKET_TIMEOUT;
        loop {
            if let Some(status) = d.child.try_wait().map_err(io("wait for virtiofsd".into()))? {
                return Err(VirtiofsdError::Exited { status, stderr: d.stderr_tail() });
            }
            if std::fs::symlink_metadata(&d.socket).is_ok() {
                return Ok(d);
            }
            if Instant::now() >= deadline {
                return Err(VirtiofsdError::NoSocket { socket: d.socket.clone(), stderr: d.stderr_tail() });
            }
            std::thread::sleep(POLL);
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// `Err` with its last words when the daemon has exited: a guest whose
    /// virtiofsd is gone would wait forever on its first file request.
    pub fn check(&mut self) -> Result<(), VirtiofsdError> {
        match self.child.try_wait() {
            Ok(Some(status)) => Err(VirtiofsdError::Died { status, stderr: self.stderr_tail() }),
            Ok(None) => Ok(()),
            Err(e) => Err(VirtiofsdError::Io { context: "wait for virtiofsd".into(), source: e }),
        }
    }

    /// The last lines the daemon printed.
    pub fn stderr_tail(&self) -> String {
        crate::vm::qemu::last_lines(&self.stderr, STDERR_TAIL_LINES)
    }

    /// Waits [`EXIT_GRACE`] for the daemon to exit by itself, then kills
    /// it; reaps it either way. Its sandboxed child (it forks into new
    /// namespaces) has `PR_SET_PDEATHSIG` and goes with it.
    pub fn stop(&mut self) {
        let deadline = Instant::now() + EXIT_GRACE;
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(POLL);
        }
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

impl Drop for Virtiofsd {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// The pids of virtiofsd processes whose `--socket-path` lies in a
/// pid-stamped temp dir of `tmp` for which `dead` holds.
fn stale(tmp: &Path, dead: impl Fn(i32) -> bool) -> Vec<i32> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else { continue };
        let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) else { continue };
        let args: Vec<String> = cmdline.split(|b| *b == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
        if !args.first().and_then(|a| Path::new(a).file_name()).is_some_and(|n| n.to_string_lossy() == NAME) {
            continue;
        }
        let socket = args.iter().find_map(|a| a.strip_prefix("--socket-path="));
        let owner = socket
            .and_then(|s| Path::new(s).strip_prefix(tmp).ok())
            .and_then(|rest| rest.components().next())
            .and_then(|c| leftovers::owner_pid(&c.as_os_str().to_string_lossy()));
        if owner.is_some_and(&dead) {
            found.push(pid);
        }
    }
    found
}

/// The pids of every virtiofsd serving a socket in a temp dir of the
/// isobench process `owner` (tests: nothing of a run outlives it).
pub fn of_owner(owner: i32) -> Vec<i32> {
    stale(&std::env::temp_dir(), |pid| pid == owner)
}

/// Kills the virtiofsd processes whose socket is in a temp dir of an
/// isobench process that no longer runs, and returns their pids. Called by
/// every start's sweep before the temp dirs go (the socket is removed with
/// its dir); with the daemon dying with isobench (`PR_SET_PDEATHSIG`) and
/// exiting when QEMU disconnects, it finds something only when both broke.
pub fn sweep() -> Vec<i32> {
    if !leftovers::in_initial_pid_namespace() {
        return Vec::new();
    }
    let killed = stale(&std::env::temp_dir(), |pid| !leftovers::alive(pid));
    for &pid in &killed {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
    }
    killed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_names_socket_source_and_cache_mode() {
        let cmd = command(Path::new("/usr/lib/qemu/virtiofsd"), Path::new("/d/vm"), Path::new("/t/isobench-1-vm-x/virtiofs.sock"), CACHE_MODE);
        let args: Vec<String> = cmd.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
        assert_eq!(args.join(" "), "--socket-path=/t/isobench-1-vm-x/virtiofs.sock -o source=/d/vm -o cache=none");
    }
}
