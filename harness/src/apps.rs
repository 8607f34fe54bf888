//! The app metrics, the harness' side: a real server (redis, nginx) started
//! inside the environment by its agent, loaded from the host side across
//! the environment's boundary by isobench's own load generator, then
//! stopped.
//!
//! One measurement is: `AppStart` to the environment's agent (it writes the
//! server's configuration into a directory of its own, execs the binary of
//! the environment's files by path and answers once the server accepts),
//! `Run` of the app metric on the host-side agent of the same network
//! namespace as the `*.boundary` metrics use ([`crate::boundary`]: the
//! run's private namespace for a veth or tap, the host's loopback natively),
//! then `AppStop`, whatever happened. The open loop's offered rate is
//! chosen by the host-side agent against the same server (`app::load`: a
//! share of what a closed loop of the open loop's shape achieves there).
//!
//! Natively the server's directory is a pid-stamped temp dir
//! (`isobench-<pid>-app-<name>`), so that after a SIGKILL the next start's
//! [`sweep`] kills what is left of the server's process group and removes
//! the directory; in a container or guest it is in the environment's own
//! /tmp and goes with it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use isobench_workloads::app::server::PGID_FILE;
use isobench_workloads::app::App;
use isobench_workloads::catalog::MetricSpec;
use isobench_workloads::protocol::{AppStartRequest, RunRequest, RunResult};

use crate::agent::AgentError;
use crate::boundary::{BoundaryError, HostSides};
use crate::env::{EnvError, Instance};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Env(#[from] EnvError),
    #[error(transparent)]
    Boundary(#[from] BoundaryError),
    #[error("starting {app} in the environment: {source}")]
    Start {
        app: App,
        #[source]
        source: AgentError,
    },
    #[error("the host side's load: {0}")]
    Load(AgentError),
    #[error("{0} is not an app metric")]
    NotApp(&'static str),
}

impl AppError {
    /// "not supported: <why>" when the environment's files hold no server
    /// binary (a container without the image, the vm's initramfs): not a
    /// failed measurement.
    pub fn not_supported(&self) -> Option<String> {
        let AppError::Start { source: AgentError::Remote(message), .. } = self else { return None };
        let marker = isobench_workloads::metrics::NOT_SUPPORTED;
        message.find(marker).map(|at| message[at..].to_string())
    }
}

/// The server's directory as the agent will see it: natively a pid-stamped
/// temp dir of the host (swept after a SIGKILL), else in the environment's
/// own /tmp.
pub fn server_dir(app: App, native: bool) -> PathBuf {
    match native {
        true => std::env::temp_dir().join(crate::leftovers::name(format!("app-{app}"))),
        false => PathBuf::from(format!("/tmp/isobench-app-{app}")),
    }
}

/// Measures the app metric `spec` against a server started in `inst`.
pub fn measure(
    inst: &mut dyn Instance,
    hosts: &mut HostSides,
    native: bool,
    spec: &'static MetricSpec,
    req: &RunRequest,
) -> Result<RunResult, AppError> {
    let app = App::of_metric(spec.name).ok_or(AppError::NotApp(spec.name))?;
    let ep = inst.endpoint()?;
    let (bind_port, host_port) = match ep.forwards {
        Some(f) => (f.tcp.0, Some(f.tcp.1)),
        None => (0, None),
    };
    let start = AppStartRequest { app, bind: SocketAddr::new(ep.bind, bind_port).to_string(), dir: server_dir(app, native).display().to_string() };
    let (served, _pgid) = inst.agent().app_start(&start).map_err(|source| AppError::Start { app, source })?;
    let target = SocketAddr::new(ep.connect, host_port.unwrap_or(served.port()));
    let host = hosts.client(ep.netns.as_deref())?;
    let result = host.run(&RunRequest { target: Some(target.to_string()), cpu: None, ..req.clone() }).map_err(AppError::Load);
    // Stopped whatever happened, so the next metric starts a fresh server.
    let stopped = inst.agent().app_stop();
    let out = result?;
    stopped.map_err(|source| AppError::Start { app, source })?;
    Ok(out)
}

/// Kills what is left of the servers of isobench runs that died (their
/// `isobench-<pid>-app-*` directories in `temp`: the processes of the
/// process group in `server.pgid` that are still redis-server or nginx)
/// and removes the directories. Called by every start (`cleanup::sweep`),
/// before the temp dirs are swept.
pub fn sweep(temp: &Path) -> Vec<PathBuf> {
    let owner = |name: &str| name.contains("-app-").then(|| crate::leftovers::owner_pid(name)).flatten();
    crate::leftovers::sweep(temp, owner, |entry| {
        if let Some(pgid) = std::fs::read_to_string(entry.path().join(PGID_FILE)).ok().and_then(|s| s.trim().parse::<i32>().ok()) {
            kill_group(pgid);
        }
        std::fs::remove_dir_all(entry.path()).is_ok()
    })
}

/// SIGKILLs every process of group `pgid` whose command is a server
/// isobench starts (never another program that got the number since).
fn kill_group(pgid: i32) {
    let Ok(procs) = std::fs::read_dir("/proc") else { return };
    for p in procs.flatten() {
        let Some(pid) = p.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(p.path().join("stat")) else { continue };
        // pid (comm) state ppid pgrp ...: comm may hold spaces, so split at its ')'.
        let Some((head, rest)) = stat.rsplit_once(") ") else { continue };
        let comm = head.split_once(" (").map(|(_, c)| c).unwrap_or_default();
        let group = rest.split_whitespace().nth(2).and_then(|g| g.parse::<i32>().ok());
        if group == Some(pgid) && (comm.starts_with("redis-server") || comm == "nginx") {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_server_dirs_are_pid_stamped_and_an_environments_are_its_own() {
        let d = server_dir(App::Redis, true);
        let name = d.file_name().unwrap().to_str().unwrap();
        assert_eq!(crate::leftovers::owner_pid(name), Some(std::process::id() as i32));
        assert!(name.ends_with("-app-redis"), "{name}");
        assert_eq!(server_dir(App::Nginx, false), PathBuf::from("/tmp/isobench-app-nginx"));
    }
}
