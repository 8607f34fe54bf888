//! isobench's own signals while a container runs in the foreground
//! (`isobench exec`): SIGINT and SIGQUIT ignored as system(3) does
//! ([`IgnoreInteractiveSignals`]), SIGTERM and SIGHUP passed on to the
//! container's init ([`ForwardTermination`]).

/// While alive, SIGTERM and SIGHUP to isobench are passed on to the container's
/// init (which passes them on to the command), so `kill <isobench>` ends the
/// command the way it would end it outside, and isobench can still remove the
/// cgroup and exit with the command's status (143 after SIGTERM).
pub(super) struct ForwardTermination {
    saved: Vec<(nix::sys::signal::Signal, nix::sys::signal::SigAction)>,
}

/// The pid signals are forwarded to; 0 when none.
static FORWARD_TO: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);
/// A signal that arrived before there was a pid to forward it to.
static PENDING: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

extern "C" fn forward_signal(sig: libc::c_int) {
    use std::sync::atomic::Ordering::SeqCst;
    let pid = FORWARD_TO.load(SeqCst);
    if pid > 0 {
        // SAFETY: kill(2) is async-signal-safe.
        unsafe { libc::kill(pid, sig) };
    } else {
        PENDING.store(sig, SeqCst);
    }
}

impl ForwardTermination {
    /// Catches SIGTERM and SIGHUP from now on; until [`to`](Self::to) names
    /// the target, the last one is held.
    pub(super) fn install() -> Self {
        use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
        use std::sync::atomic::Ordering::SeqCst;
        FORWARD_TO.store(0, SeqCst);
        PENDING.store(0, SeqCst);
        let action = SigAction::new(SigHandler::Handler(forward_signal), SaFlags::SA_RESTART, SigSet::empty());
        let mut saved = Vec::new();
        for sig in [Signal::SIGTERM, Signal::SIGHUP] {
            // SAFETY: the handler only reads an atomic and calls kill(2).
            if let Ok(old) = unsafe { sigaction(sig, &action) } {
                saved.push((sig, old));
            }
        }
        ForwardTermination { saved }
    }

    /// Forwards to `pid` from now on, and delivers a held signal.
    pub(super) fn to(&self, pid: nix::unistd::Pid) {
        use std::sync::atomic::Ordering::SeqCst;
        FORWARD_TO.store(pid.as_raw(), SeqCst);
        let held = PENDING.swap(0, SeqCst);
        if held != 0 {
            // SAFETY: kill(2) with a pid we own and a signal number that was
            // delivered to us.
            unsafe { libc::kill(pid.as_raw(), held) };
        }
    }
}

impl Drop for ForwardTermination {
    fn drop(&mut self) {
        for (sig, old) in &self.saved {
            // SAFETY: restores the action that was installed before.
            let _ = unsafe { nix::sys::signal::sigaction(*sig, old) };
        }
        FORWARD_TO.store(0, std::sync::atomic::Ordering::Relaxed);
    }
}

/// SIGINT and SIGQUIT ignored for its lifetime, the previous actions restored
/// on drop.
pub(super) struct IgnoreInteractiveSignals {
    saved: Vec<(nix::sys::signal::Signal, nix::sys::signal::SigAction)>,
}

impl IgnoreInteractiveSignals {
    pub(super) fn new() -> Self {
        use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
        let ignore = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
        let mut saved = Vec::new();
        for sig in [Signal::SIGINT, Signal::SIGQUIT] {
            // SAFETY: installs SIG_IGN, which runs no code in a handler.
            if let Ok(old) = unsafe { sigaction(sig, &ignore) } {
                saved.push((sig, old));
            }
        }
        IgnoreInteractiveSignals { saved }
    }
}

impl Drop for IgnoreInteractiveSignals {
    fn drop(&mut self) {
        for (sig, old) in &self.saved {
            // SAFETY: restores the action that was installed before.
            let _ = unsafe { nix::sys::signal::sigaction(*sig, old) };
        }
    }
}
