//! The agent as a guest's /init: mount /proc, /sys and devtmpfs, load the
//! virtio modules shipped in the initramfs in dependency order, bring up
//! loopback, open the virtio-serial port the harness talks on, and power the
//! guest off when told.
//!
//! (Skeleton: filled in by the VM driver work.)

use std::fs::File;

#[derive(Debug, thiserror::Error)]
pub enum GuestError {
    #[error("guest init: {0}")]
    Setup(String),
}

/// Prepares the guest and returns the agent's channel (the virtio-serial port
/// named `protocol::VIRTIO_PORT_NAME`, opened read-write).
pub fn setup() -> Result<File, GuestError> {
    Err(GuestError::Setup("guest mode is not implemented yet".into()))
}

/// Syncs and powers the guest off (reboot(RB_POWER_OFF)); never returns.
pub fn power_off() -> ! {
    nix::unistd::sync();
    let _ = nix::sys::reboot::reboot(nix::sys::reboot::RebootMode::RB_POWER_OFF);
    std::process::exit(0)
}
