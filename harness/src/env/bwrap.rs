//! The bwrap environment: the agent sandboxed by bubblewrap, Flatpak's
//! sandbox, with the same minimal rootfs bound as `/` and the same
//! namespaces as isobench's container:
//!
//! ```text
//! bwrap --unshare-pid --unshare-net --unshare-uts --unshare-ipc
//!       --bind ROOTFS / --proc /proc --dev /dev --die-with-parent /isobench-agent
//! ```
//!
//! bubblewrap keeps a small reaper of its own as PID 1 of the pid namespace,
//! so the agent is PID 2 there (Flatpak's way; `--as-pid-1` is not used).
//! /sys is not mounted (bubblewrap mounts only what it is told).
//!
//! The fs.* metrics' storage path: the volume is `--bind DATA /mnt` (a host
//! directory of the run's data directory, as Flatpak binds a user's
//! directory); the root is the `--tmpfs /tmp` over the read-only image.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use super::peer::{self, start_agent, NoopStart, PeerCommand, BWRAP};
use super::{EnvError, EnvKind, Environment, Instance, Options};
use crate::container::{Namespace, NamespaceSet, PreparedRootfs};
use crate::leftovers::temp_prefix;
use crate::storage::{StorageKind, StoragePath};
use crate::workloads::AGENT_NAME;

const ENV: &str = "bwrap";

pub struct Bwrap {
    binary: PathBuf,
    version: Option<String>,
    namespaces: NamespaceSet,
    rootfs: PreparedRootfs,
    root: PathBuf,
    /// Holds the tool's stderr log.
    work: tempfile::TempDir,
    /// The fs.* metrics' storage path, when a data directory was given.
    storage: Option<StoragePath>,
}

/// Prepares bubblewrap, or says in one line why it cannot run here.
pub fn prepare(opts: &Options) -> Result<Bwrap, EnvError> {
    let binary = BWRAP.locate().map_err(|reason| EnvError::Unavailable { env: ENV, reason })?;
    Bwrap::with_binary(binary, opts)
}

impl Bwrap {
    /// [`prepare`] with the bwrap binary given.
    pub fn with_binary(binary: PathBuf, opts: &Options) -> Result<Bwrap, EnvError> {
        crate::container::require_root().map_err(|e| EnvError::Unavailable { env: ENV, reason: e.to_string() })?;
        let rootfs = PreparedRootfs::prepare(&opts.container.rootfs, &opts.workloads, true)
            .map_err(|e| EnvError::Start { env: ENV, reason: e.to_string() })?;
        let root = rootfs.path().to_path_buf();
        let work = tempfile::Builder::new().prefix(&temp_prefix(ENV)).tempdir().map_err(|e| EnvError::Io {
            env: ENV,
            context: "create a temp dir".into(),
            source: e,
        })?;
        let namespaces = opts.container.namespaces.unwrap_or(NamespaceSet::DEFAULT);
        let storage = peer::storage_path(opts, ENV, StorageKind::Volume, StorageKind::ContainerRoot)?;
        Ok(Bwrap { version: peer::version(&binary), binary, namespaces, rootfs, root, work, storage })
    }

    /// The command line around `program` (a path inside the rootfs).
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(&self.binary);
        for (ns, flag) in [
            (Namespace::Pid, "--unshare-pid"),
            (Namespace::Net, "--unshare-net"),
            (Namespace::Uts, "--unshare-uts"),
            (Namespace::Ipc, "--unshare-ipc"),
            (Namespace::Cgroup, "--unshare-cgroup"),
            (Namespace::User, "--unshare-user"),
        ] {
            if self.namespaces.contains(ns) {
                cmd.arg(flag);
            }
        }
        if self.rootfs.read_only() {
            // A shared rootfs: read-only, with a scratch /tmp (as isobench's launcher).
            cmd.arg("--ro-bind").arg(&self.root).arg("/").args(["--tmpfs", "/tmp"]);
        } else {
            cmd.arg("--bind").arg(&self.root).arg("/");
        }
        if let Some(StoragePath { kind: StorageKind::Volume, host_dir: Some(host), agent_dir, .. }) = &self.storage {
            cmd.arg("--bind").arg(host).arg(agent_dir);
        }
        cmd.args(["--proc", "/proc", "--dev", "/dev", "--die-with-parent"]);
        cmd.arg(OsString::from(program));
        cmd
    }
}

impl Environment for Bwrap {
    fn kind(&self) -> EnvKind {
        EnvKind::Bwrap
    }

    /// `--bind DATA /mnt`, or the `--tmpfs /tmp` over the image.
    fn storage(&self) -> Result<StoragePath, String> {
        peer::storage_or_reason(&self.storage)
    }

    fn metadata(&self) -> serde_json::Value {
        serde_json::json!({
            "tool": self.binary,
            "version": self.version,
            "rootfs": self.root,
            "rootfs_image": self.rootfs.label(),
            "rootfs_kind": format!("{}, bound as /", self.rootfs.description()),
            "rootfs_read_only": self.rootfs.read_only(),
            "busybox": self.rootfs.busybox(),
            "namespaces": self.namespaces.names(),
            "launcher": "bwrap --bind ROOTFS / --proc /proc --dev /dev --die-with-parent (bubblewrap's reaper is PID 1, the agent PID 2; no /sys)",
        })
    }

    fn start(&mut self) -> Result<Box<dyn Instance>, EnvError> {
        let t0 = Instant::now();
        let cmd = self.command(&format!("/{AGENT_NAME}"));
        Ok(Box::new(start_agent(ENV, cmd, &self.work.path().join("stderr.log"), None, t0)?))
    }
}

impl NoopStart for Bwrap {
    fn noop_command(&mut self, noop: crate::workloads::Noop) -> Result<PeerCommand, EnvError> {
        Ok(PeerCommand { cmd: self.command(&format!("/{}", noop.name_in_rootfs())), cleanup: None })
    }
}
