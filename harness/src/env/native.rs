//! The native environment: the agent as a plain child process on the host,
//! talking over stdin/stdout pipes. It is the baseline of every ratio.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use isobench_workloads::protocol::AgentInfo;

use super::{EnvError, EnvKind, Environment, Instance, Options};
use crate::agent::AgentClient;
use crate::workloads::Workloads;

const ENV: &str = "native";

pub struct Native {
    workloads: Workloads,
}

impl Native {
    pub fn prepare(opts: &Options) -> Result<Self, EnvError> {
        Ok(Native { workloads: opts.workloads.clone() })
    }
}

impl Environment for Native {
    fn kind(&self) -> EnvKind {
        EnvKind::Native
    }

    fn metadata(&self) -> serde_json::Value {
        serde_json::json!({ "agent": self.workloads.agent })
    }

    fn start(&mut self) -> Result<Box<dyn Instance>, EnvError> {
        let t0 = Instant::now();
        let mut child = crate::process::spawn_agent(Command::new(&self.workloads.agent).stdin(Stdio::piped()).stdout(Stdio::piped()))
            .map_err(|e| EnvError::Io { env: ENV, context: format!("spawn {}", self.workloads.agent.display()), source: e })?;
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
