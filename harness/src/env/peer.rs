//! What the peer environments (runc, crun, bubblewrap, unshare(1)) share: an
//! agent behind a command that someone else wrote. Each peer is one file
//! (`runc.rs`, `crun.rs`, `bwrap.rs`, `unshare.rs`) that builds its command
//! line; this module finds the tool, starts the command with the agent's
//! stdin/stdout as pipes to the harness (so every metric works exactly as in
//! the native and container columns), keeps the tool's stderr for the error
//! message, and undoes on drop what the tool leaves behind.
//!
//! A peer missing on this host is [`EnvError::Unavailable`] with one line
//! naming the package, never a failure of the run.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use isobench_workloads::protocol::AgentInfo;

use super::native::ChildInstance;
use super::{EnvError, Instance};
use crate::agent::AgentClient;
use crate::storage::{ContainerStorage, StorageKind, StoragePath};

/// How much of a failed tool's stderr an error message quotes.
const STDERR_TAIL_BYTES: usize = 600;

/// How long a tool whose agent never said `Ready` gets to exit on its own
/// (and so to have written its error) before it is killed.
const EXIT_GRACE: Duration = Duration::from_millis(50);

/// A peer tool: its command name, the Debian package that provides it, and
/// the environment variable that overrides where it is (a path).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tool {
    pub name: &'static str,
    pub package: &'static str,
    pub env_var: &'static str,
    /// Whether scripts/setup installs it (util-linux is always there).
    pub by_setup: bool,
}

pub const RUNC: Tool = Tool { name: "runc", package: "runc", env_var: "ISOBENCH_RUNC", by_setup: true };
pub const CRUN: Tool = Tool { name: "crun", package: "crun", env_var: "ISOBENCH_CRUN", by_setup: true };
pub const BWRAP: Tool = Tool { name: "bwrap", package: "bubblewrap", env_var: "ISOBENCH_BWRAP", by_setup: true };
pub const RUNSC: Tool = Tool { name: "runsc", package: "runsc", env_var: "ISOBENCH_RUNSC", by_setup: true };
pub const UNSHARE: Tool = Tool { name: "unshare", package: "util-linux", env_var: "ISOBENCH_UNSHARE", by_setup: false };

/// Where to look when `PATH` does not say (root's sbin dirs are often not in
/// a user's `PATH`, and runc lives in /usr/sbin on Debian).
const FALLBACK_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

impl Tool {
    /// The one line a missing tool is skipped with, e.g. `runc not found;
    /// apt-get install runc (scripts/setup installs it)`.
    pub fn missing(&self) -> String {
        let hint = if self.by_setup { " (scripts/setup installs it)" } else { "" };
        format!("{} not found; apt-get install {}{hint}", self.name, self.package)
    }

    /// Finds the tool: the path in its environment variable when set, else
    /// the first executable in `PATH`, then in the usual bin and sbin dirs.
    pub fn locate(&self) -> Result<PathBuf, String> {
        let mut search = std::env::var_os("PATH").unwrap_or_default();
        search.push(":");
        search.push(FALLBACK_PATH);
        self.locate_with(std::env::var_os(self.env_var).as_deref(), &search)
    }

    /// [`locate`](Self::locate) with the override and the search path given
    /// (only `search` is searched).
    pub fn locate_with(&self, overridden: Option<&OsStr>, search: &OsStr) -> Result<PathBuf, String> {
        if let Some(p) = overridden {
            let p = PathBuf::from(p);
            return if is_executable(&p) {
                Ok(p)
            } else {
                Err(format!("{} not found at {} ({}); unset it or apt-get install {}", self.name, p.display(), self.env_var, self.package))
            };
        }
        std::env::split_paths(search).filter(|d| d.is_absolute()).map(|d| d.join(self.name)).find(|p| is_executable(p)).ok_or_else(|| self.missing())
    }
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `tool --version`'s first line, for run.json.
pub fn version(binary: &Path) -> Option<String> {
    let out = Command::new(binary).arg("--version").stdin(Stdio::null()).stderr(Stdio::null()).output().ok()?;
    String::from_utf8_lossy(&out.stdout).lines().next().map(|l| l.trim().to_string())
}

/// The last bytes of a log file, on one line, for an error message.
pub fn stderr_tail(log: &Path) -> String {
    let text = std::fs::read(log).unwrap_or_default();
    let start = text.len().saturating_sub(STDERR_TAIL_BYTES);
    let s = String::from_utf8_lossy(&text[start..]);
    let one_line = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.is_empty() {
        "no message on stderr".to_string()
    } else {
        one_line
    }
}

/// Runs on drop of a [`PeerInstance`] before its process is reaped (e.g.
/// `runc delete -f ID`).
pub type Cleanup = Box<dyn FnOnce() + Send>;

/// Starts `cmd` (the peer's command line around the agent) with piped
/// stdin/stdout and stderr into `stderr_log`, and waits for the agent's
/// `Ready`. The process dies with the spawning thread (PR_SET_PDEATHSIG).
/// `t0` is when starting the environment began (before any per-start
/// preparation such as writing config.json).
pub fn start_agent(env: &'static str, mut cmd: Command, stderr_log: &Path, cleanup: Option<Cleanup>, t0: Instant) -> Result<PeerInstance, EnvError> {
    let log = File::create(stderr_log).map_err(|e| EnvError::Io { env, context: format!("create {}", stderr_log.display()), source: e })?;
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(log);
    let program = cmd.get_program().to_os_string();
    let mut child = match crate::process::spawn_agent(&mut cmd) {
        Ok(c) => c,
        Err(e) => {
            if let Some(c) = cleanup {
                c();
            }
            return Err(EnvError::Io { env, context: format!("spawn {}", Path::new(&program).display()), source: e });
        }
    };
    let stdin = child.stdin.take().expect("piped");
    let stdout = child.stdout.take().expect("piped");
    let mut agent = AgentClient::new(Box::new(stdout), Box::new(stdin));
    let mut inst = PeerInstance { cleanup, child: None };
    match agent.wait_ready() {
        Ok(info) => {
            let ready_after = t0.elapsed();
            inst.child = Some(ChildInstance { env, child, agent, info, ready_after });
            Ok(inst)
        }
        Err(e) => {
            // The tool failed before the agent ran (or the agent died): its
            // own words are on stderr.
            drop(agent);
            let status = match child.try_wait() {
                Ok(Some(s)) => Some(s),
                _ => {
                    std::thread::sleep(EXIT_GRACE);
                    child.try_wait().ok().flatten()
                }
            };
            if status.is_none() {
                let _ = child.kill();
            }
            let status = status.map_or_else(|| child.wait().map(|s| s.to_string()).unwrap_or_default(), |s| s.to_string());
            drop(inst);
            Err(EnvError::Start { env, reason: format!("{} ({status}; agent: {e})", stderr_tail(stderr_log)) })
        }
    }
}

/// An agent behind a peer's command. Dropping it runs the peer's cleanup
/// (which stops the container where the tool would leave it running), then
/// kills and reaps the command.
pub struct PeerInstance {
    cleanup: Option<Cleanup>,
    child: Option<ChildInstance>,
}

impl PeerInstance {
    fn inner(&self) -> &ChildInstance {
        self.child.as_ref().expect("a started instance has a child")
    }

    fn inner_mut(&mut self) -> &mut ChildInstance {
        self.child.as_mut().expect("a started instance has a child")
    }

    /// The host pid of the peer's command (runc, bwrap, unshare), not of the agent.
    pub fn command_pid(&self) -> u32 {
        self.inner().child.id()
    }
}

impl Instance for PeerInstance {
    fn agent(&mut self) -> &mut AgentClient {
        &mut self.inner_mut().agent
    }

    fn info(&self) -> &AgentInfo {
        &self.inner().info
    }

    fn ready_after(&self) -> Duration {
        self.inner().ready_after
    }

    /// The peer's command (runc, crun, bwrap, unshare): the agent and any
    /// process the tool keeps are in its tree.
    fn host_pid(&self) -> Option<u32> {
        Some(self.command_pid())
    }

    fn shutdown(mut self: Box<Self>) -> Result<Duration, EnvError> {
        let child = self.child.take().expect("a started instance has a child");
        // The agent exits, the tool sees its container end and exits too.
        let took = Box::new(child).shutdown();
        if let Some(c) = self.cleanup.take() {
            c();
        }
        took
    }
}

impl Drop for PeerInstance {
    fn drop(&mut self) {
        if let Some(c) = self.cleanup.take() {
            c();
        }
        // ChildInstance's own drop kills and reaps the command.
        self.child = None;
    }
}

/// A command that starts an environment with a no-op as its only workload
/// and exits when the no-op does: what `isobench startup` times, start to exit.
pub struct PeerCommand {
    pub cmd: Command,
    /// Runs after the command exited (removes what the tool left, if any).
    pub cleanup: Option<Cleanup>,
}

/// An environment whose start can be timed with a no-op (the peers).
pub trait NoopStart {
    /// Prepares one start of `noop` (e.g. writes config.json); the caller
    /// times running the command to its exit.
    fn noop_command(&mut self, noop: crate::workloads::Noop) -> Result<PeerCommand, EnvError>;
}

/// Arguments as owned strings, for `Command::args`.
pub fn os_args(v: &[&str]) -> Vec<OsString> {
    v.iter().map(OsString::from).collect()
}

/// Where a peer's volume is bound inside its container: `/mnt`, as
/// isobench's container binds it.
pub const VOLUME_TARGET: &str = "/mnt";
/// The fs.* metrics' directory on a peer container's writable root.
pub const ROOT_DATA_DIR: &str = "/tmp";

/// A peer's storage path for the fs.* metrics (`Options::data_dir` given,
/// else `None`): with `--container-storage volume` the host directory
/// `<data dir>/<env>` (made here) bound on [`VOLUME_TARGET`] as `volume`;
/// with `root` the container's [`ROOT_DATA_DIR`] as `root`. `--command`'s
/// data directory (`Options::command_data`) is that volume itself.
pub fn storage_path(opts: &super::Options, env: &'static str, volume: StorageKind, root: StorageKind) -> Result<Option<StoragePath>, EnvError> {
    storage_path_in(opts, env, volume, root, ROOT_DATA_DIR)
}

/// [`storage_path`] with the root's directory `root_dir` (runsc's: gVisor
/// puts a tmpfs of its own on an empty /tmp).
pub fn storage_path_in(
    opts: &super::Options,
    env: &'static str,
    volume: StorageKind,
    root: StorageKind,
    root_dir: &str,
) -> Result<Option<StoragePath>, EnvError> {
    if let Some(dir) = &opts.command_data {
        return Ok(Some(StoragePath { kind: volume, agent_dir: VOLUME_TARGET.into(), host_dir: Some(dir.clone()), detail: None, fs: None }));
    }
    let Some(data) = &opts.data_dir else { return Ok(None) };
    Ok(Some(match opts.container_storage {
        ContainerStorage::Volume => {
            let host = data.join(env);
            std::fs::create_dir_all(&host).map_err(|e| EnvError::Io { env, context: format!("create {}", host.display()), source: e })?;
            StoragePath { kind: volume, agent_dir: VOLUME_TARGET.into(), host_dir: Some(host), detail: None, fs: None }
        }
        ContainerStorage::Root => StoragePath { kind: root, agent_dir: root_dir.into(), host_dir: None, detail: None, fs: None },
    }))
}

/// The answer of a peer's `Environment::storage` when no data directory
/// was given.
pub fn storage_or_reason(storage: &Option<StoragePath>) -> Result<StoragePath, String> {
    storage.clone().ok_or_else(|| "no data directory was given".into())
}
