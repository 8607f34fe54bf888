//! The columns of `isobench startup` (`--env`): the floors, isobench's
//! launcher with and without a cgroup, whole `isobench exec` processes, the
//! peer runtimes, and the launcher with one namespace set (the
//! per-namespace breakdown).

use crate::container::NamespaceSet;
use crate::env::EnvKind;

use super::StartupError;

/// One column of the startup table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Column {
    /// clone(2) with the container's namespace flags, child `_exit(0)`, waitpid:
    /// what creating and destroying the namespaces alone costs.
    Clone,
    /// clone(2) with the same flags, child execve(2) of the no-op
    /// (the host's copy, no rootfs), waitpid: the raw floor the launcher is
    /// held to (issue #3: within 1.3× of it).
    CloneExec,
    /// fork+exec of the no-op on the host, wait: any process start.
    Exec,
    /// isobench's launcher: clone into new namespaces, pivot_root into the
    /// cached minimal rootfs (read-only, a tmpfs /tmp), /proc /dev /sys,
    /// exec the no-op, reaped: the container environment's launch, with the
    /// no-op in place of the agent.
    Isobench,
    /// The same with a cgroup of its own (no limits), created before the
    /// exec and removed after the exit, within the timed region, as
    /// env.start's container removes it and runc does for every container.
    IsobenchCgroup,
    /// A whole `isobench exec --no-cgroup --ns SET -- /noop` process: the
    /// binary's own start, its sweep, the launch, the exit (what a user of
    /// `isobench exec` waits for, beside unshare(1)).
    IsobenchExec,
    /// The same with exec's default cgroup (created and removed).
    IsobenchExecCgroup,
    /// A whole `isobench --version` process: the binary's own start and
    /// exit, launching nothing (the floor under the exec columns: what any
    /// `isobench exec` pays before its own work).
    IsobenchVersion,
    /// A peer runtime.
    Peer(EnvKind),
    /// isobench's launcher with this namespace set instead of the options'
    /// (the per-namespace breakdown).
    IsobenchWith(NamespaceSet),
}

impl Column {
    /// Every column, in table order.
    pub fn all() -> Vec<Column> {
        let mut v = vec![
            Column::Clone,
            Column::CloneExec,
            Column::Exec,
            Column::Isobench,
            Column::IsobenchCgroup,
            Column::IsobenchExec,
            Column::IsobenchExecCgroup,
            Column::IsobenchVersion,
        ];
        v.extend(EnvKind::PEERS.map(Column::Peer));
        v
    }

    pub fn name(self) -> String {
        match self {
            Column::Clone => "clone".into(),
            Column::CloneExec => "clone+exec".into(),
            Column::Exec => "exec".into(),
            Column::Isobench => "isobench".into(),
            Column::IsobenchCgroup => "isobench+cgroup".into(),
            Column::IsobenchExec => "isobench-exec".into(),
            Column::IsobenchExecCgroup => "isobench-exec+cgroup".into(),
            Column::IsobenchVersion => "isobench-version".into(),
            Column::Peer(k) => k.as_str().into(),
            Column::IsobenchWith(set) => format!("isobench[{set}]"),
        }
    }

    pub fn names() -> String {
        Column::all().iter().map(|c| c.name()).collect::<Vec<_>>().join(", ")
    }

    /// A comma list of names, `all`, or `peers` (also `container` for
    /// `isobench`).
    pub fn parse_list(s: &str) -> Result<Vec<Column>, StartupError> {
        let mut out: Vec<Column> = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let cols = match part {
                "all" => Column::all(),
                "peers" => EnvKind::PEERS.map(Column::Peer).to_vec(),
                "container" => vec![Column::Isobench],
                _ => vec![Column::all().into_iter().find(|c| c.name() == part).ok_or_else(|| StartupError::Unknown(part.to_string()))?],
            };
            for c in cols {
                if !out.contains(&c) {
                    out.push(c);
                }
            }
        }
        if out.is_empty() {
            return Err(StartupError::Unknown(s.to_string()));
        }
        Ok(out)
    }
}
