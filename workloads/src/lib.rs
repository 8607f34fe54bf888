//! isobench's workloads: the static `isobench-agent` that runs inside every
//! environment (native, container, guest) and the `noop` binary its spawn
//! metrics exec.
//!
//! The harness and the agent share this crate's [`protocol`] (JSON lines) and
//! [`catalog`] (metric names, units, methods), so a metric is named and
//! described in exactly one place.

pub mod agent;
pub mod app;
pub mod catalog;
pub mod exec;
pub mod guest;
pub mod hist;
pub mod marks;
pub mod metrics;
pub mod names;
pub mod netif;
pub mod protocol;
