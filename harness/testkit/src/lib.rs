//! isobench's test convention, shared by the integration tests of every
//! crate of the workspace: each test binary with prerequisites is
//! `harness = false` and lists its tests with what they need
//! ([`trial`](crate::trial) module: skips that show, failures under
//! `ISOBENCH_REQUIRE_PRIVILEGED=1`), re-exec helpers are started through
//! [`helper`], and the checks that nothing outlived a test live here once.

pub mod fs;
pub mod helper;
pub mod leftovers;
pub mod need;
pub mod trial;

pub use helper::{helper, helper_under, hold_line, hold_then_kill};
pub use leftovers::{mount_table, own_temp_dirs, tree_listing, wait_until};
pub use need::{cached_distro_kernel, Class, Need};
pub use trial::{require_privileged, run, Test};
