//! Cross-boundary network metrics, the harness' side: `net.tcp_rr.boundary`,
//! `net.udp_rr.boundary` and `net.tcp_stream.boundary` between an agent on
//! the host side and the environment's agent.
//!
//! One measurement is three requests: the environment's agent is told to
//! `serve` (it binds its end on the environment's address and answers with
//! the port), the host-side agent `run`s the client end against it and times
//! it with the host's clock, then the environment's agent is told to `join`
//! and says how many bytes it wrote, which must match what the host side
//! received. Where the host side is depends on the environment's
//! [`Endpoint`]: in the run's private network namespace for a container's
//! veth or a guest's tap (DESIGN.md's networking rule), in the host's own
//! namespace for user-mode networking (slirp's forwarded loopback ports) and
//! for the native baseline (two processes on the host's loopback, the same
//! code with no boundary in between).
//!
//! Both ends run pinned to one CPU when they share the host's scheduler
//! (native, container), as every in-environment round trip is; a guest's end
//! is pinned inside the guest to its vCPU.

use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use isobench_workloads::catalog::MetricSpec;
use isobench_workloads::metrics::net::STREAM_CHUNK;
use isobench_workloads::protocol::{RunRequest, RunResult, ServeRequest};

use crate::agent::{AgentClient, AgentError};
use crate::container::net::RunNetns;
use crate::env::{EnvError, Instance};
use crate::workloads::Workloads;

#[derive(Debug, thiserror::Error)]
pub enum BoundaryError {
    #[error(transparent)]
    Env(#[from] EnvError),
    #[error("the environment's end: {0}")]
    Server(AgentError),
    #[error("the host side's end: {0}")]
    Client(AgentError),
    #[error("starting the host-side agent{netns}: {source}", netns = .netns.as_deref().map(|n| format!(" in network namespace {n}")).unwrap_or_default())]
    Spawn {
        netns: Option<String>,
        #[source]
        source: std::io::Error,
    },
    #[error("{metric}: the host side received {received} bytes but the environment wrote {written}")]
    Bytes { metric: &'static str, received: u64, written: u64 },
}

/// The data path between the host side and an environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PathKind {
    /// Native: two processes on the host's loopback (no boundary).
    Loopback,
    /// A container without its own network namespace: the host's network.
    HostNetwork,
    /// A veth pair between the run's network namespace and the container's.
    Veth,
    /// A tap device in the run's network namespace, virtio-net in the guest.
    Tap,
    /// QEMU's user-mode network (slirp) with ports forwarded on loopback: a
    /// different data path (a userspace TCP/IP stack in QEMU), used without
    /// root.
    Slirp,
}

impl PathKind {
    /// Words for reports: "veth", "tap + virtio-net", ...
    pub fn describe(self) -> &'static str {
        match self {
            PathKind::Loopback => "loopback between two host processes (no boundary)",
            PathKind::HostNetwork => "the host's network (no network namespace)",
            PathKind::Veth => "veth pair from the run's network namespace",
            PathKind::Tap => "tap in the run's network namespace + virtio-net",
            PathKind::Slirp => "user-mode networking (slirp)",
        }
    }
}

/// Ports QEMU's user-mode network forwards: (port in the guest, port on the
/// host's loopback).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Forwards {
    pub tcp: (u16, u16),
    pub udp: (u16, u16),
}

/// How the host side reaches an environment's agent.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub path: PathKind,
    /// Where the host-side agent runs; `None`: the host's own namespace.
    pub netns: Option<Arc<RunNetns>>,
    /// The address the environment's agent binds.
    pub bind: IpAddr,
    /// The address the host side connects to.
    pub connect: IpAddr,
    /// Fixed forwarded ports (slirp); `None`: the server picks a free port.
    pub forwards: Option<Forwards>,
    /// Pin both ends to the CPU the harness runs on (they share the host's
    /// scheduler); false for a guest.
    pub same_cpu: bool,
}

impl Endpoint {
    /// The native baseline: both ends on 127.0.0.1 in the host's namespace.
    pub fn loopback(path: PathKind) -> Endpoint {
        let lo = IpAddr::from(std::net::Ipv4Addr::LOCALHOST);
        Endpoint { path, netns: None, bind: lo, connect: lo, forwards: None, same_cpu: true }
    }

    /// For run.json: the path, addresses and namespace.
    pub fn metadata(&self) -> serde_json::Value {
        serde_json::json!({
            "path": self.path,
            "description": self.path.describe(),
            "netns": self.netns.as_ref().map(|n| n.name().to_string()),
            "environment_address": self.bind,
            "host_side_connects_to": self.connect,
            "forwards": self.forwards,
            "same_cpu": self.same_cpu,
        })
    }
}

/// An agent on the host side of a boundary: the native agent binary, started
/// inside a network namespace (or the host's own). Killed on drop.
pub struct HostSide {
    netns: Option<String>,
    child: Child,
    agent: AgentClient,
}

impl HostSide {
    /// Starts the agent in `netns` (setns(2) between fork and exec), with
    /// isobench's usual PR_SET_PDEATHSIG, and waits for its `Ready`.
    pub fn spawn(workloads: &Workloads, netns: Option<&RunNetns>) -> Result<HostSide, BoundaryError> {
        let name = netns.map(|n| n.name().to_string());
        let spawn_err = |source| BoundaryError::Spawn { netns: name.clone(), source };
        let mut cmd = Command::new(&workloads.agent);
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
        if let Some(ns) = netns {
            let fd = ns.file().as_raw_fd();
            // SAFETY: runs between fork and exec; setns(2) is async-signal-safe
            // and `fd` stays open (the RunNetns outlives this call).
            unsafe {
                cmd.pre_exec(move || {
                    if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let mut child = crate::process::spawn_agent(&mut cmd).map_err(spawn_err)?;
        let stdin = child.stdin.take().expect("piped");
        let stdout = child.stdout.take().expect("piped");
        let mut agent = AgentClient::new(Box::new(stdout), Box::new(stdin));
        agent.wait_ready().map_err(BoundaryError::Client)?;
        Ok(HostSide { netns: name, child, agent })
    }

    /// The namespace it runs in (`None`: the host's).
    pub fn netns(&self) -> Option<&str> {
        self.netns.as_deref()
    }

    /// The host pid of the agent.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for HostSide {
    fn drop(&mut self) {
        let _ = self.agent.shutdown();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The host-side agents of a run, one per network namespace, started on
/// first use.
pub struct HostSides {
    workloads: Workloads,
    agents: Vec<HostSide>,
}

impl HostSides {
    pub fn new(workloads: &Workloads) -> HostSides {
        HostSides { workloads: workloads.clone(), agents: Vec::new() }
    }

    fn get(&mut self, netns: Option<&RunNetns>) -> Result<&mut HostSide, BoundaryError> {
        let name = netns.map(RunNetns::name);
        match self.agents.iter().position(|a| a.netns() == name) {
            Some(i) => Ok(&mut self.agents[i]),
            None => {
                self.agents.push(HostSide::spawn(&self.workloads, netns)?);
                Ok(self.agents.last_mut().expect("just pushed"))
            }
        }
    }
}

/// Measures the `*.boundary` metric of `req` between `inst` and the host side
/// (see the module docs) and returns the host side's timing.
///
/// Errors: the instance has no boundary ([`EnvError::Unavailable`]), either
/// agent failed, or the bytes the environment wrote do not match what the
/// host side received.
pub fn measure(inst: &mut dyn Instance, hosts: &mut HostSides, spec: &'static MetricSpec, req: &RunRequest) -> Result<RunResult, BoundaryError> {
    let ep = inst.endpoint()?;
    let udp = spec.name.starts_with("net.udp_");
    let (bind_port, host_port) = match ep.forwards {
        Some(f) if udp => (f.udp.0, Some(f.udp.1)),
        Some(f) => (f.tcp.0, Some(f.tcp.1)),
        None => (0, None),
    };
    let cpu = ep.same_cpu.then(current_cpu).flatten();
    let host = hosts.get(ep.netns.as_deref())?;
    let serve = ServeRequest { metric: spec.name.to_string(), bind: SocketAddr::new(ep.bind, bind_port).to_string(), cpu, pin: Default::default() };
    let served: SocketAddr = inst.agent().serve(&serve).map_err(BoundaryError::Server)?;
    let target = SocketAddr::new(ep.connect, host_port.unwrap_or(served.port()));
    let client = RunRequest { target: Some(target.to_string()), cpu, ..req.clone() };
    let result = host.agent.run(&client);
    // Joined whatever happened, so the environment's agent serves again.
    let written = inst.agent().join();
    let result = result.map_err(BoundaryError::Client)?;
    let written = written.map_err(BoundaryError::Server)?;
    let received = (result.iterations + req.warmup) * if spec.bytes_per_op > 0 { STREAM_CHUNK as u64 } else { 1 };
    let consistent = match spec.bytes_per_op {
        // A stream's sender is ahead by what sits in the socket buffers.
        0 => written == received,
        _ => written >= received,
    };
    if !consistent {
        return Err(BoundaryError::Bytes { metric: spec.name, received, written });
    }
    Ok(result)
}

/// The CPU the calling thread runs on.
fn current_cpu() -> Option<u32> {
    // SAFETY: sched_getcpu has no arguments and only reads the current CPU.
    let cpu = unsafe { libc::sched_getcpu() };
    u32::try_from(cpu).ok()
}
