//! isobench-harness: environments, the container launcher, the VM driver,
//! collectors and reports. The `isobench` binary and the criterion benches are
//! thin layers over this crate.

pub mod agent;
pub mod apps;
pub mod boundary;
pub mod budget;
pub mod cleanup;
pub mod collect;
pub mod command;
pub mod container;
pub mod density;
pub mod doctor;
pub mod env;
pub mod layers;
pub mod leftovers;
pub mod list;
pub mod paths;
pub mod process;
pub mod registry;
pub mod report;
pub mod results;
pub mod runner;
pub mod schema;
pub mod startup;
pub mod storage;
pub mod validate;
pub mod vm;
pub mod workloads;
