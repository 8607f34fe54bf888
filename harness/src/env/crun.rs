//! The crun environment: the agent in a container run by crun, Podman's OCI
//! runtime (C, no Go runtime to start), from the same bundle as runc (see
//! [`super::oci`]).
//!
//! crun 1.x refuses hybrid cgroup hosts whose cgroup2 has a controller
//! ("cgroups in hybrid mode not supported, drop all controllers from
//! cgroupv2"). There isobench runs it with `--cgroup-manager=disabled` in a
//! private mount namespace without /sys/fs/cgroup/unified, and the column is
//! labelled `crun (cgroups disabled)`; if crun still refuses, the
//! environment is skipped with "unsupported here: <crun's message>".

use super::oci::OciEnvironment;
use super::peer::CRUN;
use super::{EnvError, EnvKind, Options};

/// Prepares crun, or says in one line why it cannot run here.
pub fn prepare(opts: &Options) -> Result<OciEnvironment, EnvError> {
    OciEnvironment::prepare(EnvKind::Crun, CRUN, opts)
}
