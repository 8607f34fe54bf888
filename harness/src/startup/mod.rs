//! `env.start` side by side: how long starting an isolated `noop` takes, from
//! "start it" to "it ran and exited", through isobench's own launcher and
//! through each peer the way each is really used — runc and crun: `run` of
//! an OCI bundle in the foreground; bubblewrap and unshare(1): the command to
//! its exit — with three floors below them: a raw clone(2) into the same new
//! namespaces whose child exits at once (what the kernel alone costs), the
//! same clone whose child execs the no-op (the raw clone+exec floor
//! the launcher is held to: issue #3 asks for within 1.3× of it), and a
//! plain fork+exec of the no-op on the host (what any process start costs).
//! The no-op is `noop`, a static glibc binary, or with `--noop nolibc`
//! `noop-nolibc`, which runs no C library start-up ([`Noop`]).
//!
//! Samples are interleaved in rounds, one sample of every column per round,
//! so drift of the machine (frequency, page cache, another tenant) hits every
//! column alike, after a few warm-up rounds that are not kept (the first runc
//! pays its binary's page-ins). Each round runs the columns in a new random
//! order (a fixed seed: the same order on every run): a start leaves work
//! behind that the kernel finishes later (a network namespace is torn down
//! by a kworker, runc's exit is followed by its cgroup's removal), and in a
//! fixed order the same column would always pay for its predecessor's.
//! Preparation (a rootfs, a bundle, config.json for the next container ID) is
//! outside the timed region; each timed region is spawn → the no-op's exit
//! reaped → what the start made removed (isobench+cgroup: its groups, read
//! and removed, as env.start's container removes them; runc: its own
//! cleanup before it exits), the same end as env.start's. The
//! isobench-exec columns time whole `isobench exec` processes, the binary's
//! own start included, beside unshare(1), the tool `isobench exec` stands
//! in for.
//! The method follows Firecracker's boot-time test (time to the workload, on
//! the host clock) and hyperfine's (repeat, interleave, report percentiles).
//!
//! The run's record (its rows of samples) is [`crate::results::startup`];
//! report.md's sections and the tables printed here are the report's
//! (`report::section::startup`). Here: the columns ([`Column`]), the timed
//! loop (`measure`) and the clone floors (`floors`).

mod column;
mod floors;
mod measure;

pub use crate::workloads::Noop;
pub use column::Column;
pub use measure::{measure, per_namespace};

use crate::container::ContainerError;

/// Rounds run before the kept ones, per column.
pub const DEFAULT_WARMUP: usize = 3;
/// Kept rounds of `isobench startup` without `--n`.
pub const DEFAULT_N: usize = 50;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Container(#[from] ContainerError),
    #[error("unknown start column {0:?}; choose from {names} (or all, peers)", names = Column::names())]
    Unknown(String),
    #[error("--n must be at least 1")]
    NoRounds,
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}
