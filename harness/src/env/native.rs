//! The native environment: the agent as a plain child process on the host,
//! talking over stdin/stdout pipes. It is the baseline of every ratio.
//!
//! Like with like: the native agent is the container's very file, run from
//! the cached minimal rootfs on the host (so the no-op its spawn metrics
//! exec, next to it, is the same file on the same file system as the
//! container's `/noop`), with the container's environment variables
//! ([`container_environment`]). What differs from the container is then
//! the isolation alone: namespaces, the container's cgroup, the read-only
//! bind of the rootfs. Where the cache cannot be used, the agent runs from
//! the workload build, and run.json's metadata says so.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use isobench_workloads::protocol::AgentInfo;

use super::{EnvError, EnvKind, Environment, Instance, Options};
use crate::agent::AgentClient;
use crate::container::process::container_environment;
use crate::container::rootfs::CachedRootfs;
use crate::storage::{StorageKind, StoragePath};
use crate::workloads::AGENT_NAME;

const ENV: &str = "native";

pub struct Native {
    agent: PathBuf,
    /// The cached rootfs the agent runs from (held: never pruned while in
    /// use), or why the workload build is used instead.
    rootfs: Result<CachedRootfs, String>,
    /// The fs.* metrics' directory: `native/` of the run's data directory.
    storage: Option<PathBuf>,
}

impl Native {
    pub fn prepare(opts: &Options) -> Result<Self, EnvError> {
        let rootfs = CachedRootfs::prepare(&opts.workloads).map_err(|e| e.to_string());
        let agent = match &rootfs {
            Ok(r) => r.path().join(AGENT_NAME),
            Err(_) => opts.workloads.agent.clone(),
        };
        let storage = match &opts.command_data {
            Some(dir) => Some(dir.clone()),
            None => opts
                .data_dir
                .as_ref()
                .map(|d| std::fs::create_dir_all(d.join(ENV)).map(|()| d.join(ENV)))
                .transpose()
                .map_err(|e| EnvError::Start { env: ENV, reason: format!("data directory: {e}") })?,
        };
        Ok(Native { agent, rootfs, storage })
    }
}

impl Environment for Native {
    fn kind(&self) -> EnvKind {
        EnvKind::Native
    }

    fn command_root(&self) -> Result<super::CommandRoot, String> {
        Ok(super::CommandRoot::Host)
    }

    fn storage(&self) -> Result<StoragePath, String> {
        let dir = self.storage.as_ref().ok_or("no data directory was given")?;
        Ok(StoragePath {
            kind: StorageKind::HostDirectory,
            agent_dir: dir.display().to_string(),
            host_dir: Some(dir.clone()),
            detail: None,
            fs: None,
        })
    }

    fn metadata(&self) -> serde_json::Value {
        let source = match &self.rootfs {
            Ok(r) => format!("the cached minimal rootfs {} (the container's files), on the host", r.name()),
            Err(why) => format!("the workload build (the cached rootfs could not be used: {why})"),
        };
        serde_json::json!({
            "agent": self.agent,
            "agent_source": source,
            "environment": container_environment().into_iter().map(|(k, _)| k).collect::<Vec<_>>(),
        })
    }

    fn start(&mut self) -> Result<Box<dyn Instance>, EnvError> {
        let t0 = Instant::now();
        let mut cmd = Command::new(&self.agent);
        cmd.env_clear().envs(container_environment()).stdin(Stdio::piped()).stdout(Stdio::piped());
        let mut child = crate::process::spawn_agent(&mut cmd).map_err(|e| EnvError::Io {
            env: ENV,
            context: format!("spawn {}", self.agent.display()),
            source: e,
        })?;
        let stdin = child.stdin.take().expect("piped");
        let stdout = child.stdout.take().expect("piped");
        let mut agent = AgentClient::new(Box::new(stdout), Box::new(stdin));
        let info = agent.wait_ready().map_err(|e| EnvError::Agent { env: ENV, source: e })?;
        let ready_after = t0.elapsed();
        Ok(Box::new(ChildInstance { env: ENV, child, agent, info, ready_after }))
    }
}

/// An agent running as a direct child process, driven over its stdin/stdout
/// (native and container). Dropping it kills the child.
pub struct ChildInstance {
    pub env: &'static str,
    pub child: Child,
    pub agent: AgentClient,
    pub info: AgentInfo,
    pub ready_after: Duration,
}

impl Instance for ChildInstance {
    fn agent(&mut self) -> &mut AgentClient {
        &mut self.agent
    }

    fn info(&self) -> &AgentInfo {
        &self.info
    }

    fn ready_after(&self) -> Duration {
        self.ready_after
    }

    /// Natively there is no boundary: the baseline is a host-side agent
    /// talking to this one over the host's loopback.
    fn endpoint(&mut self) -> Result<crate::env::Endpoint, EnvError> {
        Ok(crate::env::Endpoint::loopback(crate::env::PathKind::Loopback))
    }

    fn host_pid(&self) -> Option<u32> {
        Some(self.child.id())
    }

    fn shutdown(mut self: Box<Self>) -> Result<Duration, EnvError> {
        let t0 = Instant::now();
        self.agent.shutdown().map_err(|e| EnvError::Agent { env: self.env, source: e })?;
        let status = self.child.wait().map_err(|e| EnvError::Io { env: self.env, context: "wait for agent".into(), source: e })?;
        let took = t0.elapsed();
        if !status.success() {
            return Err(EnvError::Start { env: self.env, reason: format!("agent exited with {status}") });
        }
        Ok(took)
    }
}

impl Drop for ChildInstance {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
