//! `noop-nolibc`: a no-op with no C library start-up, the control for
//! `noop`. Its whole program is `exit_group(0)` at the ELF entry point:
//! no libc initialisation, no relocation, no TLS, one page of code.
//!
//! Why it exists: a static glibc binary (`noop`, like lmbench's static
//! "hello") probes the CPU before `main` (`init_cpu_features` and the cache
//! descriptors: dozens of CPUID instructions). On bare metal that costs a few
//! microseconds; in a virtual machine every CPUID exits to the hypervisor
//! (about 1 µs under KVM, 11–13 µs measured in a nested paravirtual guest),
//! and there the no-op's own start can be most of a container's start time.
//! `isobench startup --noop nolibc` runs every column with this binary, so
//! the ratios show the isolation and not the C library's start-up; the host
//! fact `cpuid_ns` in run.json says which case a host is.
//!
//! Linked without the C runtime's start files (`-nostartfiles`, set for this
//! binary only in build.rs), so the `_start` below is the entry point. The
//! standard library is linked but nothing calls into it.

#![no_main]

// The entry point: the kernel starts the process here with rsp at argc.
// exit_group(0) (syscall 231 on x86-64) ends it; ud2 traps should it return.
#[cfg(target_arch = "x86_64")]
std::arch::global_asm!(".globl _start", "_start:", "mov eax, 231", "xor edi, edi", "syscall", "ud2");
