//! The two channels between the parent and the child until the exec: the
//! child's failure report (stage and errno, 8 bytes on a close-on-exec pipe
//! whose end-of-file without data says the exec succeeded) and the
//! handshake socket, on which the parent sends one byte once it has mapped
//! the child's ids, made its cgroup and run its setup, with the group's v1
//! `tasks` files the child moves itself in through.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use nix::errno::Errno;

use super::child::ChildCtx;
use crate::container::ContainerError;

/// Stages reported by the child (a mount plan step is reported by index).
pub(super) const STAGE_PDEATHSIG: u32 = 0x1000_0000;
pub(super) const STAGE_HOSTNAME: u32 = 0x1000_0001;
pub(super) const STAGE_LOOPBACK: u32 = 0x1000_0002;
pub(super) const STAGE_STDIO: u32 = 0x1000_0003;
pub(super) const STAGE_EXEC: u32 = 0x1000_0004;
pub(super) const STAGE_CGROUP_NS: u32 = 0x1000_0005;
pub(super) const STAGE_INIT_FORK: u32 = 0x1000_0006;
pub(super) const STAGE_CGROUP_MOVE: u32 = 0x1000_0007;
pub(super) const STAGE_CAPS: u32 = 0x1000_0008;
pub(super) const STAGE_NO_NEW_PRIVS: u32 = 0x1000_0009;
pub(super) const STAGE_SECCOMP: u32 = 0x1000_000a;

/// Exit status of a child that failed before exec (the parent reports the
/// real error from the pipe; this is only what waitpid sees).
pub(super) const SETUP_FAILED: i32 = 127;

/// Reads the child's (stage, errno) report; `None` at end-of-file: it exec'd.
pub(super) fn read_report(fd: &OwnedFd) -> std::io::Result<Option<(u32, Errno)>> {
    let mut buf = [0u8; 8];
    let mut got = 0;
    while got < buf.len() {
        match nix::unistd::read(fd.as_raw_fd(), &mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    if got < buf.len() {
        return Ok(None);
    }
    let stage = u32::from_le_bytes(buf[..4].try_into().unwrap());
    let errno = i32::from_le_bytes(buf[4..].try_into().unwrap());
    Ok(Some((stage, Errno::from_raw(errno))))
}

/// The handshake socket, (child's end, parent's end): a unix socket pair
/// rather than a pipe, so that the go byte can carry the group's `tasks`
/// files (SCM_RIGHTS), opened after the clone.
pub(super) fn handshake_socket() -> Result<(OwnedFd, OwnedFd), ContainerError> {
    nix::sys::socket::socketpair(
        nix::sys::socket::AddressFamily::Unix,
        nix::sys::socket::SockType::SeqPacket,
        None,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| ContainerError::Io { context: "socket pair for the uid/gid maps, cgroup placement and parent setup".into(), source: e.into() })
}

/// Lets the child go on: the go byte on the parent's end `go_w`, with the
/// group's `tasks` files the child moves itself in through ([`wait_for_parent`]).
pub(super) fn release(go_w: &OwnedFd, tasks: &[OwnedFd]) -> Result<(), ContainerError> {
    let raw: Vec<RawFd> = tasks.iter().map(|f| f.as_raw_fd()).collect();
    let cmsg = [nix::sys::socket::ControlMessage::ScmRights(&raw)];
    let cmsgs: &[nix::sys::socket::ControlMessage] = if raw.is_empty() { &[] } else { &cmsg };
    // The byte says how many fds come with it, so that the child
    // can tell a truncated message from none.
    let count = [raw.len() as u8];
    nix::sys::socket::sendmsg::<()>(go_w.as_raw_fd(), &[std::io::IoSlice::new(&count)], cmsgs, nix::sys::socket::MsgFlags::empty(), None)
        .map_err(|e| ContainerError::Io { context: "release the container after its parent-side setup".into(), source: e.into() })?;
    Ok(())
}

/// Writes the failure report and exits; async-signal-safe.
pub(super) fn fail(ctx: &ChildCtx<'_>, stage: u32, errno: Errno) -> ! {
    let mut buf = [0u8; 8];
    buf[..4].copy_from_slice(&stage.to_le_bytes());
    buf[4..].copy_from_slice(&(errno as i32).to_le_bytes());
    // SAFETY: write(2) of a stack buffer and _exit(2) are async-signal-safe.
    unsafe {
        libc::write(ctx.err_fd, buf.as_ptr().cast(), buf.len());
        libc::_exit(SETUP_FAILED)
    }
}

/// Most `tasks` files the parent sends: one per v1 hierarchy isobench uses.
pub(super) const MAX_TASKS_FDS: usize = 8;

/// Waits until the parent has written our uid/gid maps, made our cgroup and
/// run its setup (the byte on the handshake socket: the number of `tasks`
/// files that come with it), then moves into the group through them; without a handshake
/// there is nothing to wait for. End of file without the byte: the parent
/// gave up (or died); so do we. System calls only (recvmsg into buffers on
/// the stack).
pub(super) fn wait_for_parent(ctx: &ChildCtx<'_>) {
    let Some(go) = ctx.go_r else { return };
    /// Control-message buffer, aligned for `cmsghdr`.
    #[repr(C, align(8))]
    struct Cmsg([u8; 128]);
    const _: () = assert!(std::mem::size_of::<libc::cmsghdr>() + MAX_TASKS_FDS * std::mem::size_of::<RawFd>() <= 128);
    let mut b = 0u8;
    let mut cbuf = Cmsg([0; 128]);
    let n = loop {
        let mut iov = libc::iovec { iov_base: (&mut b as *mut u8).cast(), iov_len: 1 };
        // SAFETY: msghdr is plain data; every pointer in it points to a
        // buffer on this stack frame that outlives the call.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.0.as_mut_ptr().cast();
        msg.msg_controllen = cbuf.0.len() as _;
        // SAFETY: recvmsg(2) into the buffers described by msg; the received
        // fds are close-on-exec (MSG_CMSG_CLOEXEC).
        let n = unsafe { libc::recvmsg(go, &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if n < 0 && Errno::last() == Errno::EINTR {
            continue;
        }
        if n == 1 {
            // Fds the kernel could not pass (MSG_CTRUNC: no room in cbuf or
            // no free fd slot) would leave us outside our group, silently.
            if msg.msg_flags & libc::MSG_CTRUNC != 0 {
                fail(ctx, STAGE_CGROUP_MOVE, Errno::EMFILE);
            }
            let mut moved_into = 0u8;
            // SAFETY: walking the control messages the kernel wrote into
            // cbuf with the CMSG_* accessors; each SCM_RIGHTS payload is
            // an array of ints of the length its header says.
            unsafe {
                let mut c = libc::CMSG_FIRSTHDR(&msg);
                while !c.is_null() {
                    if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                        let data = libc::CMSG_DATA(c).cast::<RawFd>();
                        let count = ((*c).cmsg_len as usize - (data as usize - c as usize)) / std::mem::size_of::<RawFd>();
                        for i in 0..count {
                            let fd = data.add(i).read_unaligned();
                            // A single thread moving itself: no global lock
                            // (see `Placement`).
                            let moved = libc::write(fd, b"0".as_ptr().cast(), 1);
                            let errno = Errno::last();
                            libc::close(fd);
                            if moved != 1 {
                                fail(ctx, STAGE_CGROUP_MOVE, errno);
                            }
                            moved_into += 1;
                        }
                    }
                    c = libc::CMSG_NXTHDR(&msg, c);
                }
            }
            if moved_into != b {
                fail(ctx, STAGE_CGROUP_MOVE, Errno::EBADMSG);
            }
        }
        break n;
    };
    if n != 1 {
        // SAFETY: _exit(2) is async-signal-safe.
        unsafe { libc::_exit(SETUP_FAILED) }
    }
}
