//! The two no-ops, instruction by instruction: `noop-nolibc` is exit_group(0)
//! at its entry point and nothing else, while the static glibc `noop` probes
//! the CPU with CPUID before it exits — the start-up `isobench startup
//! --noop nolibc` leaves out. Counted by single-stepping each under ptrace(2).

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::ptr::null_mut;

use isobench_harness::collect::host::GLIBC_START_CPUIDS;
use isobench_harness::workloads;
use isobench_testkit::{trial, Need::*};

fn main() {
    isobench_testkit::run(vec![trial!(the_nolibc_noop_is_one_exit_group_and_the_static_one_probes_the_cpu).needs(&[Ptrace])]);
}

/// Kills and reaps the traced child unless it exited (an assert that fires
/// mid-trace must not leave a stopped process behind).
struct Tracee(libc::pid_t, bool);

impl Drop for Tracee {
    fn drop(&mut self) {
        if !self.1 {
            // SAFETY: kill(2) and waitpid(2) of our own child.
            unsafe {
                libc::kill(self.0, libc::SIGKILL);
                libc::waitpid(self.0, null_mut(), 0);
            }
        }
    }
}

/// What a traced run of `bin` executed: (instructions, CPUIDs, syscalls);
/// `None` where ptrace is not allowed (a sandbox without CAP_SYS_PTRACE).
fn single_step(bin: &Path) -> Option<(u64, u64, u64)> {
    let path = CString::new(bin.as_os_str().as_bytes()).unwrap();
    let argv = [path.as_ptr(), std::ptr::null()];
    let envp = [std::ptr::null()];
    let none = null_mut::<libc::c_void>();
    // SAFETY: the child only calls ptrace, execve and _exit on data prepared
    // before the fork; the parent traces it with ptrace(2) and waitpid(2) on
    // plain integers and a register struct on its stack.
    unsafe {
        let pid = libc::fork();
        assert!(pid >= 0, "fork");
        if pid == 0 {
            if libc::ptrace(libc::PTRACE_TRACEME, 0, none, none) != 0 {
                libc::_exit(126);
            }
            libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr());
            libc::_exit(127);
        }
        let mut child = Tracee(pid, false);
        let mut status = 0;
        libc::waitpid(pid, &mut status, 0); // stopped at the exec
        if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 126 {
            child.1 = true;
            return None;
        }
        assert!(libc::WIFSTOPPED(status), "{bin:?} did not stop after exec: {status:#x}");
        let (mut steps, mut cpuid, mut syscall) = (0, 0, 0);
        loop {
            let mut regs: libc::user_regs_struct = std::mem::zeroed();
            assert_eq!(libc::ptrace(libc::PTRACE_GETREGS, pid, none, &mut regs as *mut libc::user_regs_struct), 0, "GETREGS");
            *libc::__errno_location() = 0;
            let word = libc::ptrace(libc::PTRACE_PEEKTEXT, pid, regs.rip as *mut libc::c_void, none);
            assert_eq!(*libc::__errno_location(), 0, "PEEKTEXT at {:#x}", regs.rip);
            match (word & 0xff, (word >> 8) & 0xff) {
                (0x0f, 0xa2) => cpuid += 1,
                (0x0f, 0x05) => syscall += 1,
                _ => {}
            }
            assert_eq!(libc::ptrace(libc::PTRACE_SINGLESTEP, pid, none, none), 0, "single-step {bin:?}");
            libc::waitpid(pid, &mut status, 0);
            steps += 1;
            if libc::WIFEXITED(status) {
                child.1 = true;
                assert_eq!(libc::WEXITSTATUS(status), 0, "{bin:?} exit status");
                return Some((steps, cpuid, syscall));
            }
            assert!(libc::WIFSTOPPED(status), "{bin:?}: {status:#x} after {steps} steps");
            assert!(steps < 5_000_000, "{bin:?} runs away");
        }
    }
}

fn the_nolibc_noop_is_one_exit_group_and_the_static_one_probes_the_cpu() {
    let w = workloads::locate().unwrap();
    let (steps, cpuid, syscalls) = single_step(&w.noop_nolibc).expect("ptrace is allowed (Need::Ptrace)");
    assert_eq!((steps, cpuid, syscalls), (3, 0, 1), "noop-nolibc: mov, xor, syscall and nothing else");

    let (steps, cpuid, syscalls) = single_step(&w.noop).unwrap();
    eprintln!("static noop: {steps} instructions, {cpuid} CPUID, {syscalls} syscalls");
    // GLIBC_START_CPUIDS is what this host's glibc ran; another glibc or CPU
    // differs a little, never by this much.
    let expected = u64::from(GLIBC_START_CPUIDS);
    assert!((expected / 3..=expected * 3).contains(&cpuid), "{cpuid} CPUIDs, documented {expected}");
    assert!(syscalls > 1, "{syscalls} syscalls");
}
