//! System call cost, each timed in batches (see `catalog::MetricSpec::ops_per_sample`).
//!
//! `syscall.getpid` issues the raw `getpid` system call (the `syscall`
//! instruction through libc's generic `syscall()`), so neither a libc PID
//! cache nor the vDSO can answer it: one user→kernel→user transition, as
//! lmbench's lat_syscall "null" and `perf bench syscall basic`.
//! `syscall.clock_gettime` is the vDSO path (no transition unless the
//! clocksource forces one, as some guests' do). The /dev/null, open, stat and
//! mmap metrics follow lmbench's lat_syscall read/write/open/stat (whose
//! default file is /dev/null) and lat_pagefault.

use std::ffi::CStr;
use std::io;

use crate::catalog::MetricSpec;
use crate::protocol::{RunRequest, RunResult};

use super::{time_loop, MetricError};

const DEV_NULL: &CStr = c"/dev/null";

#[inline(always)]
fn raw_getpid() -> libc::c_long {
    // SAFETY: SYS_getpid takes no arguments, touches no memory and cannot fail.
    unsafe { libc::syscall(libc::SYS_getpid) }
}

fn os_err(metric: &'static str, context: &'static str) -> MetricError {
    MetricError::Io { metric, context, source: io::Error::last_os_error() }
}

pub fn getpid(spec: &'static MetricSpec, req: &RunRequest) -> Result<RunResult, MetricError> {
    time_loop(spec, req, || {
        std::hint::black_box(raw_getpid());
        Ok(())
    })
}

pub fn clock_gettime(spec: &'static MetricSpec, req: &RunRequest) -> Result<RunResult, MetricError> {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    time_loop(spec, req, || {
        // SAFETY: ts is a valid, writable timespec.
        if unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) } != 0 {
            return Err(os_err(spec.name, "clock_gettime"));
        }
        std::hint::black_box(&ts);
        Ok(())
    })
}

/// An fd of /dev/null, closed on drop.
struct DevNull(libc::c_int);

impl DevNull {
    fn open(metric: &'static str, flags: libc::c_int) -> Result<DevNull, MetricError> {
        // SAFETY: DEV_NULL is a NUL-terminated path.
        let fd = unsafe { libc::open(DEV_NULL.as_ptr(), flags | libc::O_CLOEXEC) };
        if fd < 0 {
            Err(os_err(metric, "open /dev/null"))
        } else {
            Ok(DevNull(fd))
        }
    }
}

impl Drop for DevNull {
    fn drop(&mut self) {
        // SAFETY: we own the fd.
        unsafe { libc::close(self.0) };
    }
}

pub fn read_devnull(spec: &'static MetricSpec, req: &RunRequest) -> Result<RunResult, MetricError> {
    let f = DevNull::open(spec.name, libc::O_RDONLY)?;
    let mut b = [0u8; 1];
    time_loop(spec, req, || {
        // SAFETY: b is a writable 1-byte buffer, f.0 an open fd.
        if unsafe { libc::read(f.0, b.as_mut_ptr().cast(), 1) } < 0 {
            return Err(os_err(spec.name, "read /dev/null"));
        }
        Ok(())
    })
}

pub fn write_devnull(spec: &'static MetricSpec, req: &RunRequest) -> Result<RunResult, MetricError> {
    let f = DevNull::open(spec.name, libc::O_WRONLY)?;
    let b = [0u8; 1];
    time_loop(spec, req, || {
        // SAFETY: b is a readable 1-byte buffer, f.0 an open fd.
        if unsafe { libc::write(f.0, b.as_ptr().cast(), 1) } != 1 {
            return Err(os_err(spec.name, "write /dev/null"));
        }
        Ok(())
    })
}

pub fn open_close(spec: &'static MetricSpec, req: &RunRequest) -> Result<RunResult, MetricError> {
    time_loop(spec, req, || {
        // SAFETY: NUL-terminated path; the fd is closed right away.
        let fd = unsafe { libc::open(DEV_NULL.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
        if fd < 0 {
            return Err(os_err(spec.name, "open /dev/null"));
        }
        unsafe { libc::close(fd) };
        Ok(())
    })
}

pub fn stat(spec: &'static MetricSpec, req: &RunRequest) -> Result<RunResult, MetricError> {
    // SAFETY: an all-zero `stat` is a valid value to be overwritten.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    time_loop(spec, req, || {
        // SAFETY: NUL-terminated path, st is writable.
        if unsafe { libc::stat(DEV_NULL.as_ptr(), &mut st) } != 0 {
            return Err(os_err(spec.name, "stat /dev/null"));
        }
        Ok(())
    })
}

/// One page, the unit of lmbench's lat_pagefault.
const PAGE: usize = 4096;

pub fn mmap_munmap(spec: &'static MetricSpec, req: &RunRequest) -> Result<RunResult, MetricError> {
    time_loop(spec, req, || {
        // SAFETY: a fresh private anonymous mapping of one page; we write one
        // byte inside it and unmap exactly what was mapped.
        unsafe {
            let p = libc::mmap(std::ptr::null_mut(), PAGE, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0);
            if p == libc::MAP_FAILED {
                return Err(os_err(spec.name, "mmap"));
            }
            std::ptr::write_volatile(p.cast::<u8>(), 1);
            if libc::munmap(p, PAGE) != 0 {
                return Err(os_err(spec.name, "munmap"));
            }
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{catalog, hist};

    #[test]
    fn raw_getpid_is_our_pid() {
        assert_eq!(raw_getpid() as u32, std::process::id());
    }

    #[test]
    fn each_syscall_metric_measures_whole_samples() {
        for (name, f) in [
            ("syscall.clock_gettime", clock_gettime as fn(&'static MetricSpec, &RunRequest) -> Result<RunResult, MetricError>),
            ("syscall.read_devnull", read_devnull),
            ("syscall.write_devnull", write_devnull),
            ("syscall.open_close", open_close),
            ("syscall.stat", stat),
            ("syscall.mmap_munmap", mmap_munmap),
        ] {
            let spec = catalog::lookup(name).unwrap();
            let r = f(spec, &RunRequest { warmup: 10, ..RunRequest::new(name, spec.ops_per_sample * 50, 10_000) }).unwrap();
            assert_eq!(r.iterations, spec.ops_per_sample * 50, "{name}");
            let h = hist::decode(&r.histogram).unwrap();
            assert_eq!(h.len(), 50, "{name}");
            assert!(h.min() >= 1, "{name}");
        }
    }
}
