//! `noop-nolibc`: a no-op with no C library start-up, the control for
//! `noop`. What runs is `exit_group(0)` at the ELF entry point: three
//! instructions, no libc or Rust runtime initialisation, no relocation
//! processing. (The file still carries the standard library, linked in but
//! never entered: only the page holding `_start` is touched.)
//!
//! Why it exists: a static glibc binary (`noop`, like lmbench's static
//! "hello") probes the CPU before `main` (`init_cpu_features` and the cache
//! descriptors: dozens of CPUID instructions). On bare metal that costs a few
//! microseconds; in a virtual machine every CPUID exits to the hypervisor
//! (about 1 µs under KVM, 8–14 µs measured in a nested paravirtual guest),
//! and there the no-op's own start can be most of a container's start time.
//! `isobench startup --noop nolibc` runs every column with this binary, so
//! the ratios to the clone floor show the isolation and not the C library's
//! start-up; the host fact `cpuid_ns` in run.json says which case a host is.
//!
//! Linked without the C runtime's start files (`-nostartfiles`, set for this
//! binary only in build.rs), so the `_start` below is the entry point.

#![no_main]

#[cfg(not(target_arch = "x86_64"))]
compile_error!("noop-nolibc's _start is x86-64 assembly; add the exit_group entry for this architecture");

// The entry point: the kernel starts the process here with rsp at argc.
// exit_group(0) (syscall 231 on x86-64) ends it; ud2 traps should it return.
#[cfg(target_arch = "x86_64")]
std::arch::global_asm!(".globl _start", "_start:", "mov eax, 231", "xor edi, edi", "syscall", "ud2");
