//! The runc environment: the agent in a container run by runc, the OCI
//! runtime under Docker, containerd and Kubernetes, from a bundle generated
//! with the same rootfs and namespaces as isobench's own container (see
//! [`super::oci`]): `runc --root STATE run --bundle DIR ID`, foreground, so
//! the agent's stdin/stdout reach the harness through runc's stdio relay.

use super::oci::OciEnvironment;
use super::peer::RUNC;
use super::{EnvError, EnvKind, Options};

/// Prepares runc, or says in one line why it cannot run here (not
/// installed: "runc not found; apt-get install runc (scripts/setup installs it)").
pub fn prepare(opts: &Options) -> Result<OciEnvironment, EnvError> {
    OciEnvironment::prepare(EnvKind::Runc, RUNC, opts)
}
