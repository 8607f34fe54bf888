//! `isobench-sysprobe CALL...`: makes raw system calls a container profile is
//! meant to refuse, each one built so that it cannot hurt the host when it
//! succeeds, and prints one line per call: `CALL ok` or `CALL ERRNO`
//! (`userns EPERM`). The tests of `--profile` run it inside the minimal
//! rootfs, where there is no libc and busybox has no applet for most of
//! these. Each call runs in a child process of its own. Exits 0 unless a
//! call is unknown or its child failed (2).
//!
//! Calls:
//! - `userns`: unshare(CLONE_NEWUSER): a user namespace for this process only.
//! - `keyctl`: keyctl(KEYCTL_GET_KEYRING_ID) of the user keyring: reads an id.
//! - `add_key`: add_key of a "user" key to this process's own keyring, which
//!   dies with it.
//! - `mount`: a tmpfs on /tmp, in the container's own mount namespace.
//! - `reboot`: reboot(2) with an invalid magic number: past the permission
//!   check the kernel answers EINVAL and does nothing.
//! - `init_module`: init_module(2) of an empty image: EPERM without
//!   CAP_SYS_MODULE, else the loader refuses the image (ENOEXEC, EINVAL).
//! - `finit_module`: finit_module(2) of fd -1: EPERM without the capability,
//!   else EBADF.
//! - `ptrace:PID`: PTRACE_SEIZE of PID (which does not stop it), then exit,
//!   which detaches.

use nix::errno::Errno;

/// linux/keyctl.h
const KEYCTL_GET_KEYRING_ID: libc::c_long = 0;
const KEY_SPEC_USER_KEYRING: libc::c_long = -4;
const KEY_SPEC_PROCESS_KEYRING: libc::c_long = -2;
/// Not LINUX_REBOOT_MAGIC1 (0xfee1dead): reboot(2) refuses it with EINVAL
/// after its capability check.
const NOT_A_REBOOT_MAGIC: libc::c_int = 0x1234_5678;

fn result(rc: libc::c_long) -> Result<libc::c_long, Errno> {
    Errno::result(rc)
}

fn call(name: &str) -> Option<Result<libc::c_long, Errno>> {
    // SAFETY (every arm): raw system calls with integer arguments or
    // pointers to C strings and buffers that outlive the call; none of them
    // changes anything outside this process and its container (see the
    // module comment).
    Some(unsafe {
        match name {
            "userns" => result(libc::unshare(libc::CLONE_NEWUSER) as libc::c_long),
            "keyctl" => result(libc::syscall(libc::SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_USER_KEYRING, 0)),
            "add_key" => result(libc::syscall(
                libc::SYS_add_key,
                c"user".as_ptr(),
                c"isobench-sysprobe".as_ptr(),
                b"x".as_ptr(),
                1usize,
                KEY_SPEC_PROCESS_KEYRING,
            )),
            "mount" => result(libc::mount(c"isobench-sysprobe".as_ptr(), c"/tmp".as_ptr(), c"tmpfs".as_ptr(), 0, std::ptr::null()) as libc::c_long),
            "reboot" => result(libc::syscall(libc::SYS_reboot, NOT_A_REBOOT_MAGIC, NOT_A_REBOOT_MAGIC, libc::LINUX_REBOOT_CMD_CAD_OFF, 0)),
            "init_module" => result(libc::syscall(libc::SYS_init_module, std::ptr::null::<u8>(), 0usize, c"".as_ptr())),
            "finit_module" => result(libc::syscall(libc::SYS_finit_module, -1, c"".as_ptr(), 0)),
            other => {
                let pid: libc::pid_t = other.strip_prefix("ptrace:")?.parse().ok()?;
                result(libc::ptrace(libc::PTRACE_SEIZE, pid, 0, 0))
            }
        }
    })
}

fn main() {
    let mut status = 0;
    for arg in std::env::args().skip(1) {
        // Each call in a child of its own, so that one (a user namespace
        // entered, a keyring made) cannot change what the next one finds.
        // SAFETY: a single-threaded process forks; the child prints one line
        // and exits without returning into main.
        match unsafe { nix::unistd::fork() } {
            Ok(nix::unistd::ForkResult::Child) => {
                let (line, code) = match call(&arg) {
                    Some(Ok(_)) => (format!("{arg} ok"), 0),
                    Some(Err(e)) => (format!("{arg} {e:?}"), 0),
                    None => (format!("{arg} unknown call"), 2),
                };
                println!("{line}");
                std::process::exit(code);
            }
            Ok(nix::unistd::ForkResult::Parent { child }) => {
                if !matches!(nix::sys::wait::waitpid(child, None), Ok(nix::sys::wait::WaitStatus::Exited(_, 0))) {
                    status = 2;
                }
            }
            Err(e) => {
                println!("{arg} fork {e:?}");
                status = 2;
            }
        }
    }
    std::process::exit(status);
}
