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
//! [`Endpoint`](crate::env::Endpoint): in the run's private network namespace
//! for a container's veth or a guest's tap (the networking rule: isobench
//! never changes the host's network, see [`crate::container::net`]), in the
//! host's own namespace for user-mode networking (slirp's forwarded loopback
//! ports) and for the native baseline (two processes on the host's loopback,
//! the same code with no boundary in between).
//!
//! CPU placement follows the run's pinning mode ([`PinMode`]). When both
//! ends share the host's scheduler (native, container) the harness picks
//! their CPUs from its own allowed set: one CPU for both (`same`), the CPU it
//! runs on for the host side and the lowest other allowed CPU for the
//! environment's server (`split`), none (`none`). The server reports the CPU
//! it really got (a container's cpuset may refuse it), and the result's
//! `pinning` says what was applied: `same` when both ends ended up on one
//! CPU. A guest's end is pinned inside the guest to the vCPU it runs on and
//! the host side to the host CPU it runs on (`same`, `split` alike: the two
//! kernels do not share CPU numbers and QEMU's vCPU threads are not pinned on
//! the host), or neither (`none`); its `pinning` is the requested mode.

use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};

use isobench_workloads::catalog::MetricSpec;
use isobench_workloads::metrics::net::STREAM_CHUNK;
use isobench_workloads::metrics::Placement;
use isobench_workloads::protocol::{PinMode, RunRequest, RunResult, ServeRequest};

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

    /// The agent of the host side in `netns` (`None`: the host's own
    /// namespace), started on first use: the app metrics' load generator
    /// runs there too (`apps`).
    pub fn client(&mut self, netns: Option<&RunNetns>) -> Result<&mut AgentClient, BoundaryError> {
        self.get(netns).map(|h| &mut h.agent)
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
    // (host side, environment's server); a guest's end picks its own vCPU.
    let (client_cpu, server_cpu) = match ep.host_scheduler {
        true => {
            let p = Placement::choose(req.pin, None, true);
            (p.own, p.peer)
        }
        false => (None, None),
    };
    let host = hosts.get(ep.netns.as_deref())?;
    let serve = ServeRequest { metric: spec.name.to_string(), bind: SocketAddr::new(ep.bind, bind_port).to_string(), cpu: server_cpu, pin: req.pin };
    let (served, served_cpu) = inst.agent().serve(&serve).map_err(BoundaryError::Server)?;
    let target = SocketAddr::new(ep.connect, host_port.unwrap_or(served.port()));
    let client = RunRequest { target: Some(target.to_string()), cpu: client_cpu, ..req.clone() };
    let result = host.agent.run(&client).map(|r| applied(r, req.pin, ep.host_scheduler, served_cpu));
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

/// Sets what a boundary measurement really applied, from the host side's
/// CPU (`r.cpus`, as its agent pinned it) and the server's (`served_cpu`):
/// on the host's scheduler `split` only when they differ, `same` when they
/// are one CPU; for a guest the requested mode (see the module docs).
fn applied(mut r: RunResult, requested: PinMode, host_scheduler: bool, served_cpu: Option<u32>) -> RunResult {
    let client_cpu = r.cpus.first().copied();
    r.pinning = match (requested, host_scheduler, client_cpu, served_cpu) {
        (PinMode::None, ..) => PinMode::None,
        (_, true, Some(a), Some(b)) if a != b => PinMode::Split,
        (_, true, Some(_), Some(_)) => PinMode::Same,
        (mode, ..) => mode,
    };
    if host_scheduler {
        r.cpus = match (client_cpu, served_cpu) {
            (Some(a), Some(b)) if a != b => vec![a, b],
            (Some(a), _) => vec![a],
            _ => Vec::new(),
        };
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(cpus: Vec<u32>) -> RunResult {
        RunResult {
            metric: "net.tcp_rr.boundary".into(),
            iterations: 1,
            elapsed_ns: 1,
            ops_per_sample: 1,
            histogram: String::new(),
            truncated: false,
            bytes_per_op: 0,
            timer_overhead_ns: 0.0,
            pinning: PinMode::Same,
            cpus,
            io: None,
            load: None,
        }
    }

    #[test]
    fn what_a_boundary_measurement_applied() {
        // host scheduler: the two CPUs decide
        let r = applied(result(vec![0]), PinMode::Split, true, Some(1));
        assert_eq!((r.pinning, r.cpus), (PinMode::Split, vec![0, 1]));
        let r = applied(result(vec![0]), PinMode::Split, true, Some(0));
        assert_eq!((r.pinning, r.cpus), (PinMode::Same, vec![0]), "a cpuset refused the other CPU");
        let r = applied(result(vec![1]), PinMode::Same, true, Some(1));
        assert_eq!((r.pinning, r.cpus), (PinMode::Same, vec![1]));
        let r = applied(result(vec![]), PinMode::None, true, None);
        assert_eq!((r.pinning, r.cpus), (PinMode::None, vec![]));
        // a guest: what was asked, the host side's CPU only
        let r = applied(result(vec![1]), PinMode::Split, false, Some(0));
        assert_eq!((r.pinning, r.cpus), (PinMode::Split, vec![1]));
    }
}
