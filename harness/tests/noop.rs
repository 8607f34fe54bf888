//! The two no-ops, instruction by instruction: `noop-nolibc` is exit_group(0)
//! at its entry point and nothing else, while the static glibc `noop` probes
//! the CPU with CPUID before it exits — the start-up `isobench startup
//! --noop nolibc` leaves out. Counted by single-stepping each under ptrace(2).

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use isobench_harness::collect::host::GLIBC_START_CPUIDS;
use isobench_harness::workloads;

/// What a traced run of `bin` executed: (instructions, CPUIDs, syscalls).
fn single_step(bin: &Path) -> (u64, u64, u64) {
    let path = CString::new(bin.as_os_str().as_bytes()).unwrap();
    let argv = [path.as_ptr(), std::ptr::null()];
    let envp = [std::ptr::null()];
    // SAFETY: the child only calls ptrace, execve and _exit on data prepared
    // before the fork; the parent traces it with ptrace(2) and waitpid(2) on
    // plain integers and a register struct on its stack.
    unsafe {
        let pid = libc::fork();
        assert!(pid >= 0, "fork");
        if pid == 0 {
            libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0);
            libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr());
            libc::_exit(127);
        }
        let mut status = 0;
        libc::waitpid(pid, &mut status, 0); // stopped at the exec
        assert!(libc::WIFSTOPPED(status), "{bin:?} did not stop after exec: {status:#x}");
        let (mut steps, mut cpuid, mut syscall) = (0, 0, 0);
        loop {
            let mut regs: libc::user_regs_struct = std::mem::zeroed();
            libc::ptrace(libc::PTRACE_GETREGS, pid, 0, &mut regs);
            *libc::__errno_location() = 0;
            let word = libc::ptrace(libc::PTRACE_PEEKTEXT, pid, regs.rip as usize, 0);
            if *libc::__errno_location() == 0 {
                match (word & 0xff, (word >> 8) & 0xff) {
                    (0x0f, 0xa2) => cpuid += 1,
                    (0x0f, 0x05) => syscall += 1,
                    _ => {}
                }
            }
            assert_eq!(libc::ptrace(libc::PTRACE_SINGLESTEP, pid, 0, 0), 0, "single-step {bin:?}");
            libc::waitpid(pid, &mut status, 0);
            steps += 1;
            if libc::WIFEXITED(status) {
                assert_eq!(libc::WEXITSTATUS(status), 0, "{bin:?} exit status");
                return (steps, cpuid, syscall);
            }
            assert!(steps < 5_000_000, "{bin:?} runs away");
        }
    }
}

#[test]
fn the_nolibc_noop_is_one_exit_group_and_the_static_one_probes_the_cpu() {
    let w = workloads::locate().unwrap();
    let (steps, cpuid, syscalls) = single_step(&w.noop_nolibc);
    assert_eq!((cpuid, syscalls), (0, 1), "noop-nolibc: {steps} instructions");
    assert!(steps <= 3, "noop-nolibc ran {steps} instructions: more than mov, xor, syscall");

    let (steps, cpuid, syscalls) = single_step(&w.noop);
    eprintln!("static noop: {steps} instructions, {cpuid} CPUID, {syscalls} syscalls");
    // GLIBC_START_CPUIDS is what this host's glibc ran; another glibc or CPU
    // differs a little, never by this much.
    let expected = u64::from(GLIBC_START_CPUIDS);
    assert!((expected / 3..=expected * 3).contains(&cpuid), "{cpuid} CPUIDs, documented {expected}");
    assert!(syscalls > 1, "{syscalls} syscalls");
}
