//! isobench's own signals while a container runs in the foreground
//! (`isobench exec`), handled as `docker stop` handles a container
//! ([`StopSignals`]): the first SIGTERM, SIGINT or SIGHUP is passed on to the
//! container's init, which passes it on to the command; when the container
//! has not ended a grace period later (`--stop-timeout`, Docker's default
//! [`DEFAULT_STOP_TIMEOUT`]) or a second such signal arrives (not a copy of
//! the first, see [`SAME_REQUEST_WINDOW`]), everything in
//! the container is killed (SIGKILL of the init ends its pid namespace, and
//! its cgroup is killed as a whole) and isobench exits 128+n, n being the
//! first signal. SIGQUIT is ignored while the command runs, as system(3)
//! does ([`IgnoreQuit`]). SIGKILL of isobench still takes the container
//! along (PR_SET_PDEATHSIG, see [`process`](super::process)).

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering::SeqCst};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};

/// `docker stop`'s grace period between SIGTERM and SIGKILL.
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// The signals that stop a container.
const STOP: [Signal; 3] = [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP];

/// A stop signal this soon after the first is the same request delivered
/// twice, not a second one: timeout(1) signals its child and then its whole
/// process group, so `timeout 5 isobench exec ...` gets two SIGTERMs within
/// microseconds.
const SAME_REQUEST_WINDOW: Duration = Duration::from_millis(100);

/// How often the wait looks at the container where pidfd_open(2) is missing
/// (before Linux 5.3); with a pidfd the wait sleeps until something happens.
const POLL_WITHOUT_PIDFD: Duration = Duration::from_millis(100);

/// The pid the first stop signal is forwarded to; 0 while there is none.
static FORWARD_TO: AtomicI32 = AtomicI32::new(0);
/// The first stop signal received; 0: none yet.
static FIRST: AtomicI32 = AtomicI32::new(0);
/// Stop signals received.
static COUNT: AtomicU32 = AtomicU32::new(0);
/// The write end of the wake-up pipe; -1 when there is none.
static WAKE: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_stop_signal(sig: libc::c_int) {
    let _ = FIRST.compare_exchange(0, sig, SeqCst, SeqCst);
    let n = COUNT.fetch_add(1, SeqCst) + 1;
    let pid = FORWARD_TO.load(SeqCst);
    if n == 1 && pid > 0 {
        // SAFETY: kill(2) is async-signal-safe.
        unsafe { libc::kill(pid, sig) };
    }
    let fd = WAKE.load(SeqCst);
    if fd >= 0 {
        // SAFETY: write(2) of one byte from a static; async-signal-safe. A
        // full pipe (EAGAIN) already holds a wake-up.
        unsafe { libc::write(fd, b"s".as_ptr().cast(), 1) };
    }
}

/// How a container in the foreground ended ([`StopSignals::wait`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// It exited by itself (after a forwarded signal, perhaps): its status.
    Exited(i32),
    /// It was killed after the grace period or at a second signal; the first
    /// signal was this one.
    Killed(i32),
}

impl Ended {
    /// isobench's exit status: the container's, or 128+n when it was killed
    /// after signal n.
    pub fn status(self) -> i32 {
        match self {
            Ended::Exited(s) => s,
            Ended::Killed(sig) => 128 + sig,
        }
    }
}

/// While alive, SIGTERM, SIGINT and SIGHUP to isobench stop the container as
/// `docker stop` does (see the module comment). Installed before anything of
/// the container exists: a signal that arrives during the setup is held and
/// forwarded once the init is there ([`to`](Self::to)).
pub(super) struct StopSignals {
    saved: Vec<(Signal, SigAction)>,
    wake_r: OwnedFd,
    _wake_w: OwnedFd,
}

impl StopSignals {
    pub(super) fn install() -> Result<StopSignals, Errno> {
        let (wake_r, wake_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK)?;
        FORWARD_TO.store(0, SeqCst);
        FIRST.store(0, SeqCst);
        COUNT.store(0, SeqCst);
        WAKE.store(wake_w.as_raw_fd(), SeqCst);
        let action = SigAction::new(SigHandler::Handler(on_stop_signal), SaFlags::SA_RESTART, SigSet::empty());
        let mut saved = Vec::new();
        for sig in STOP {
            // SAFETY: the handler only touches atomics and calls kill(2) and
            // write(2), which are async-signal-safe.
            if let Ok(old) = unsafe { sigaction(sig, &action) } {
                saved.push((sig, old));
            }
        }
        Ok(StopSignals { saved, wake_r, _wake_w: wake_w })
    }

    /// Forwards to `pid` (the container's init) from now on, and delivers a
    /// signal that arrived before.
    pub(super) fn to(&self, pid: nix::unistd::Pid) {
        FORWARD_TO.store(pid.as_raw(), SeqCst);
        let held = FIRST.load(SeqCst);
        if held != 0 {
            let _ = nix::sys::signal::kill(pid, Signal::try_from(held).ok());
        }
    }

    /// Waits until `child` ends by itself, or kills it `grace` after the
    /// first stop signal or at the second.
    pub(super) fn wait(&self, child: &mut super::ContainerProcess, grace: Duration) -> Result<Ended, super::ContainerError> {
        let pidfd = pidfd_open(child.pid());
        let mut first_at: Option<Instant> = None;
        // Signals counted as copies of the first (SAME_REQUEST_WINDOW).
        let mut copies = 0;
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(Ended::Exited(status));
            }
            let count = COUNT.load(SeqCst);
            if count > 0 && first_at.is_none() {
                first_at = Some(Instant::now());
            }
            if first_at.is_some_and(|t| t.elapsed() < SAME_REQUEST_WINDOW) {
                copies = count.saturating_sub(1);
            }
            let left = first_at.map(|t| grace.saturating_sub(t.elapsed()));
            if count >= 2 + copies || left == Some(Duration::ZERO) {
                child.kill()?;
                return Ok(Ended::Killed(FIRST.load(SeqCst)));
            }
            let timeout = match (left, &pidfd) {
                (Some(l), None) => l.min(POLL_WITHOUT_PIDFD),
                (Some(l), Some(_)) => l,
                (None, None) => POLL_WITHOUT_PIDFD,
                (None, Some(_)) => Duration::MAX,
            };
            self.sleep(pidfd.as_ref(), timeout);
        }
    }

    /// Sleeps until the init exits (its pidfd is readable), a stop signal
    /// arrives (the wake-up pipe) or `timeout` passes.
    fn sleep(&self, pidfd: Option<&OwnedFd>, timeout: Duration) {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        let mut fds = vec![PollFd::new(self.wake_r.as_fd(), PollFlags::POLLIN)];
        if let Some(fd) = pidfd {
            fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
        }
        let ms = PollTimeout::try_from(timeout.as_millis().min(i32::MAX as u128) as i32).unwrap_or(PollTimeout::MAX);
        let ms = if timeout == Duration::MAX { PollTimeout::NONE } else { ms };
        let _ = poll(&mut fds, ms);
        let mut buf = [0u8; 16];
        while nix::unistd::read(self.wake_r.as_raw_fd(), &mut buf).is_ok_and(|n| n > 0) {}
    }
}

impl Drop for StopSignals {
    fn drop(&mut self) {
        for (sig, old) in &self.saved {
            // SAFETY: restores the action that was installed before.
            let _ = unsafe { sigaction(*sig, old) };
        }
        WAKE.store(-1, SeqCst);
        FORWARD_TO.store(0, SeqCst);
    }
}

/// pidfd_open(2) of `pid`: readable once it has exited. `None` before Linux
/// 5.3 (the wait then looks every [`POLL_WITHOUT_PIDFD`]).
fn pidfd_open(pid: nix::unistd::Pid) -> Option<OwnedFd> {
    // SAFETY: pidfd_open(2) with a pid and no flags; nix has no wrapper. A
    // returned fd is new and ours.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    // SAFETY: as above: a fresh fd owned by nobody else.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// SIGQUIT ignored for its lifetime, as system(3) does while a command runs
/// (the terminal sends it to the command too); restored on drop.
pub(super) struct IgnoreQuit {
    saved: Option<SigAction>,
}

impl IgnoreQuit {
    pub(super) fn new() -> Self {
        let ignore = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
        // SAFETY: installs SIG_IGN, which runs no code in a handler.
        IgnoreQuit { saved: unsafe { sigaction(Signal::SIGQUIT, &ignore) }.ok() }
    }
}

impl Drop for IgnoreQuit {
    fn drop(&mut self) {
        if let Some(old) = &self.saved {
            // SAFETY: restores the action that was installed before.
            let _ = unsafe { sigaction(Signal::SIGQUIT, old) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn killed_after_signal_n_is_128_plus_n_and_an_exit_is_its_own_status() {
        assert_eq!(Ended::Killed(libc::SIGTERM).status(), 143);
        assert_eq!(Ended::Killed(libc::SIGINT).status(), 130);
        assert_eq!(Ended::Exited(3).status(), 3);
        assert_eq!(DEFAULT_STOP_TIMEOUT, Duration::from_secs(10));
    }
}
