//! The unshare environment: the agent behind util-linux's unshare(1), the
//! command the classic namespace demonstrations use, in the host's own
//! filesystem (no rootfs, no pivot_root: the agent finds `noop` next to
//! itself):
//!
//! ```text
//! unshare -pfmnuiC --mount-proc --kill-child AGENT
//! ```
//!
//! A new network namespace has only a loopback device, and it is down;
//! isobench's launcher, runc, crun and bubblewrap bring it up, unshare(1)
//! does not. For the agent (whose net metrics need it) the command is
//! `/bin/sh -c 'ip link set lo up && exec AGENT'` inside the namespaces,
//! when `ip` is installed. `--kill-child` makes the agent die with unshare,
//! and unshare dies with isobench.
//!
//! The fs.* metrics' storage path is the host directory itself, under the
//! same path (`<data dir>/unshare`): unshare(1) binds nothing, the agent
//! sees the host's file system through a copy of its mount table, so
//! `--container-storage` (volume or root) does not apply and the row says
//! "host directory".

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use super::peer::{self, start_agent, NoopStart, PeerCommand, UNSHARE};
use super::{EnvError, EnvKind, Environment, Instance, Options};
use crate::leftovers::temp_prefix;
use crate::storage::{StorageKind, StoragePath};
use crate::workloads::Workloads;

const ENV: &str = "unshare";

/// unshare(1)'s flags: new pid (forking into it), mount, net, uts, ipc and
/// cgroup namespaces, a /proc of the new pid namespace.
pub const FLAGS: [&str; 3] = ["-pfmnuiC", "--mount-proc", "--kill-child"];

pub struct Unshare {
    binary: PathBuf,
    version: Option<String>,
    workloads: Workloads,
    /// `ip` from iproute2, to bring the loopback up.
    ip: Option<PathBuf>,
    work: tempfile::TempDir,
    /// The fs.* metrics' host directory, when a data directory was given.
    storage: Option<StoragePath>,
}

/// Prepares unshare(1), or says in one line why it cannot run here.
pub fn prepare(opts: &Options) -> Result<Unshare, EnvError> {
    let binary = UNSHARE.locate().map_err(|reason| EnvError::Unavailable { env: ENV, reason })?;
    Unshare::with_binary(binary, opts)
}

impl Unshare {
    /// [`prepare`] with the unshare binary given.
    pub fn with_binary(binary: PathBuf, opts: &Options) -> Result<Unshare, EnvError> {
        crate::container::require_root().map_err(|e| EnvError::Unavailable { env: ENV, reason: e.to_string() })?;
        let work = tempfile::Builder::new().prefix(&temp_prefix(ENV)).tempdir().map_err(|e| EnvError::Io {
            env: ENV,
            context: "create a temp dir".into(),
            source: e,
        })?;
        let ip = peer::Tool { name: "ip", package: "iproute2", env_var: "ISOBENCH_IP", by_setup: true }.locate().ok();
        let storage = match &opts.data_dir {
            _ if opts.command_data.is_some() => opts.command_data.clone().map(|host| StoragePath {
                kind: StorageKind::HostDirectory,
                agent_dir: host.display().to_string(),
                host_dir: Some(host),
                detail: None,
                fs: None,
            }),
            Some(data) => {
                let host = data.join(ENV);
                std::fs::create_dir_all(&host).map_err(|e| EnvError::Io { env: ENV, context: format!("create {}", host.display()), source: e })?;
                Some(StoragePath {
                    kind: StorageKind::HostDirectory,
                    agent_dir: host.display().to_string(),
                    host_dir: Some(host),
                    detail: None,
                    fs: None,
                })
            }
            None => None,
        };
        Ok(Unshare { version: peer::version(&binary), binary, workloads: opts.workloads.clone(), ip, work, storage })
    }

    fn base(&self) -> Command {
        let mut cmd = Command::new(&self.binary);
        cmd.args(FLAGS);
        cmd
    }

    /// `unshare FLAGS NOOP`: what env.start times (the host's copy of the
    /// no-op: unshare(1) keeps the host's filesystem).
    pub fn noop(&self, noop: crate::workloads::Noop) -> Command {
        let mut cmd = self.base();
        cmd.arg(noop.path(&self.workloads));
        cmd
    }
}

impl Environment for Unshare {
    fn kind(&self) -> EnvKind {
        EnvKind::Unshare
    }

    fn command_root(&self) -> Result<super::CommandRoot, String> {
        Ok(super::CommandRoot::Host)
    }

    /// The host directory, seen through a copy of the host's mount table.
    fn storage(&self) -> Result<StoragePath, String> {
        peer::storage_or_reason(&self.storage)
    }

    fn label(&self) -> String {
        if self.ip.is_some() {
            ENV.to_string()
        } else {
            format!("{ENV} (loopback down)")
        }
    }

    fn metadata(&self) -> serde_json::Value {
        serde_json::json!({
            "tool": self.binary,
            "version": self.version,
            "rootfs": "the host's (no pivot_root)",
            "namespaces": ["pid", "mnt", "net", "uts", "ipc", "cgroup"],
            "launcher": format!("unshare {}", FLAGS.join(" ")),
            "loopback": if self.ip.is_some() { "brought up by `ip link set lo up` before the agent" } else { "down: ip (iproute2) not found, net metrics fail" },
        })
    }

    fn start(&mut self) -> Result<Box<dyn Instance>, EnvError> {
        let t0 = Instant::now();
        let mut cmd = self.base();
        match &self.ip {
            Some(ip) => {
                cmd.args(["/bin/sh", "-c", "\"$1\" link set lo up && exec \"$0\""]).arg(&self.workloads.agent).arg(ip);
            }
            None => {
                cmd.arg(&self.workloads.agent);
            }
        }
        Ok(Box::new(start_agent(ENV, cmd, &self.work.path().join("stderr.log"), None, t0)?))
    }
}

impl NoopStart for Unshare {
    fn noop_command(&mut self, noop: crate::workloads::Noop) -> Result<PeerCommand, EnvError> {
        Ok(PeerCommand { cmd: self.noop(noop), cleanup: None })
    }
}
