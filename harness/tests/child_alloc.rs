//! The launcher's child must not allocate between clone(2) and execve(2)
//! (container::process's module comment): it runs in the harness's memory
//! (CLONE_VM) or in a copy of a multi-threaded process, where another thread
//! may hold the allocator's lock. A `String` built there once corrupted the
//! heap; this test catches the next one.
//!
//! The binary's global allocator counts every allocation made by a process
//! other than the test process (the child has its own pid, even as PID 1 of a
//! new pid namespace), in a MAP_SHARED page so that a child running in a copy
//! of memory (init mode, no CLONE_VM) is counted too. The test launches
//! containers in each mode the launcher has, under each security profile
//! (capabilities, no_new_privs and the seccomp filter are set in the child),
//! and expects the count to stay 0.

use std::alloc::{GlobalAlloc, Layout, System};
use std::ffi::OsString;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicI32, AtomicPtr, AtomicU64, Ordering};

use isobench_harness::container::rootfs::UpperKind;
use isobench_harness::container::{self, cgroup, LaunchSpec, Layer, Limits, MinimalRootfs, NamespaceSet, PreparedProfile, Profile, Stdio};
use isobench_testkit::{trial, Need::*};

fn main() {
    isobench_testkit::run(vec![trial!(the_child_allocates_nothing_between_clone_and_exec).needs(&[Root])]);
}

/// The test process's pid; 0 until the test starts counting.
static TEST_PID: AtomicI32 = AtomicI32::new(0);
/// Allocations made outside the test process, in shared memory.
static FOREIGN: AtomicPtr<AtomicU64> = AtomicPtr::new(std::ptr::null_mut());

struct Counting;

// SAFETY: every call is forwarded to the system allocator unchanged; the
// bookkeeping only reads atomics and calls getpid(2).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note();
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn note() {
    let test = TEST_PID.load(Ordering::Relaxed);
    if test == 0 {
        return;
    }
    // SAFETY: getpid(2) has no memory effects.
    if unsafe { libc::getpid() } != test {
        let counter = FOREIGN.load(Ordering::Relaxed);
        if !counter.is_null() {
            // SAFETY: a live MAP_SHARED page made by the test, never unmapped.
            unsafe { (*counter).fetch_add(1, Ordering::Relaxed) };
        }
    }
}

fn args(v: &[&str]) -> Vec<OsString> {
    v.iter().map(OsString::from).collect()
}

fn the_child_allocates_nothing_between_clone_and_exec() {
    // SAFETY: a new shared anonymous page, never unmapped (the counter lives
    // as long as the test binary).
    let page = unsafe { libc::mmap(std::ptr::null_mut(), 4096, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED | libc::MAP_ANONYMOUS, -1, 0) };
    assert_ne!(page, libc::MAP_FAILED);
    FOREIGN.store(page.cast(), Ordering::SeqCst);
    let workloads = isobench_harness::workloads::locate().expect("static workloads");
    let rootfs = MinimalRootfs::build(&workloads).unwrap();
    let root = rootfs.path().canonicalize().unwrap();
    let with_cgroup = cgroup::cgroup_mode() != cgroup::CgroupMode::None;
    // Every profile there is: default drops capabilities and sets
    // no_new_privs in the child, docker loads a seccomp filter there too
    // (where the distribution's profile is installed: else it is bare and
    // default only, said below).
    let mut profiles = vec![PreparedProfile::bare(), PreparedProfile::prepare(Profile::Default).unwrap()];
    match PreparedProfile::prepare(Profile::Docker) {
        Ok(p) => profiles.push(p),
        Err(e) => println!("docker profile not tested: {e}"),
    }
    // The overlay with its upper on disk: the child's mkdtemp(3) on its stack.
    profiles.push(PreparedProfile::prepare_layers(&[Layer::Overlay], UpperKind::Disk).unwrap());
    let mut cases = Vec::new();
    for ns in [NamespaceSet::DEFAULT, NamespaceSet::all(), NamespaceSet::NONE] {
        for init in [false, true] {
            for cg in [false, with_cgroup] {
                for profile in &profiles {
                    // An overlay root needs a mount namespace (refused without one).
                    if profile.has(Layer::Overlay) && !ns.contains(container::Namespace::Mount) {
                        continue;
                    }
                    cases.push((ns, init, cg, profile));
                }
            }
        }
    }
    cases.dedup_by(|a, b| (a.0, a.1, a.2, a.3.label()) == (b.0, b.1, b.2, b.3.label()));
    let devnull = std::fs::File::options().read(true).write(true).open("/dev/null").unwrap();
    TEST_PID.store(std::process::id() as i32, Ordering::SeqCst);
    for (ns, init, cg, profile) in &cases {
        let mut spec =
            LaunchSpec::new(*ns, &root, &args(&["/noop"]), Some("isobench-alloc")).unwrap().with_init(*init).with_profile(profile).unwrap();
        if *cg {
            spec = spec.with_cgroup(Limits::default());
        }
        let mut p = container::spawn(&spec, Stdio { stdin: Some(devnull.as_fd()), stdout: Some(devnull.as_fd()) }).unwrap();
        assert_eq!(p.wait().unwrap(), 0, "ns {ns}, init {init}, cgroup {cg}, profile {}", profile.profile());
    }
    TEST_PID.store(0, Ordering::SeqCst);
    // SAFETY: the page made above.
    let foreign = unsafe { (*FOREIGN.load(Ordering::SeqCst)).load(Ordering::SeqCst) };
    assert_eq!(foreign, 0, "a container's child allocated {foreign} times before exec, across {} launches", cases.len());
    println!("{} launches, no allocation in a child", cases.len());
}
