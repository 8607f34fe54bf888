//! The cached minimal rootfs (`container::rootfs::cache`): built once and
//! found again without writing anything, a new entry when an input's bytes
//! change (and the old one found again when they are the same), entries in
//! use never pruned, and a builder killed midway leaving a temp entry that
//! the next sweep removes. Each test uses a cache directory of its own.

use std::path::{Path, PathBuf};

use isobench_harness::container::rootfs::cache::{self, CachedRootfs, ENTRY_PREFIX, KEEP};
use isobench_harness::workloads::Workloads;
use isobench_testkit::trial;

fn main() {
    isobench_testkit::run(vec![
        trial!(a_second_use_creates_nothing_and_a_changed_input_gets_a_new_entry),
        trial!(entries_in_use_are_never_pruned_and_the_oldest_unused_go),
        trial!(hold_a_build_for_the_kill_test).helper("run by a_killed_builder_leaves_a_temp_entry_the_next_sweep_removes, then SIGKILLed"),
        trial!(a_killed_builder_leaves_a_temp_entry_the_next_sweep_removes),
    ]);
}

fn workloads() -> Workloads {
    isobench_harness::workloads::locate().expect("static workloads")
}

/// A copy of the workloads in `dir`; `change` appends a byte to its
/// noop-nolibc (another build, as far as the cache can tell).
fn copy_of(w: &Workloads, dir: &Path, change: &[u8]) -> Workloads {
    let copy = Workloads::in_dir(dir);
    for (from, to) in [(&w.agent, &copy.agent), (&w.noop, &copy.noop), (&w.noop_nolibc, &copy.noop_nolibc), (&w.probe, &copy.probe)] {
        std::fs::copy(from, to).unwrap();
    }
    let mut bytes = std::fs::read(&copy.noop_nolibc).unwrap();
    bytes.extend_from_slice(change);
    std::fs::write(&copy.noop_nolibc, bytes).unwrap();
    copy
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(dir).unwrap().flatten().filter_map(|e| e.file_name().into_string().ok()).filter(|n| n.starts_with(ENTRY_PREFIX)).collect();
    v.sort();
    v
}

fn a_second_use_creates_nothing_and_a_changed_input_gets_a_new_entry() {
    let cache = tempfile::tempdir().unwrap();
    let w = workloads();
    let first = CachedRootfs::prepare_in(cache.path(), &w).unwrap();
    assert!(first.path().join("isobench-agent").is_file() && first.path().join("noop").is_file() && first.path().join("proc").is_dir());
    assert_eq!(std::fs::read(first.path().join("noop-nolibc")).unwrap(), std::fs::read(&w.noop_nolibc).unwrap());
    let before = isobench_testkit::tree_listing(cache.path());
    let second = CachedRootfs::prepare_in(cache.path(), &w).unwrap();
    assert_eq!(second.path(), first.path());
    assert_eq!(isobench_testkit::tree_listing(cache.path()), before, "the second use wrote nothing in the cache");
    drop((first, second));

    // Another build of the same bytes: new inodes and times, the same entry.
    let same = tempfile::tempdir().unwrap();
    let same_w = copy_of(&w, same.path(), b"");
    let again = CachedRootfs::prepare_in(cache.path(), &same_w).unwrap();
    assert_eq!(entries(cache.path()).len(), 1, "content-addressed: identical inputs share the entry");
    let name = again.name().to_string();
    drop(again);

    // One changed byte: a new entry with the new bytes; the old one stays.
    let changed = tempfile::tempdir().unwrap();
    let changed_w = copy_of(&w, changed.path(), b"\0");
    let rebuilt = CachedRootfs::prepare_in(cache.path(), &changed_w).unwrap();
    assert_ne!(rebuilt.name(), name);
    assert_eq!(std::fs::read(rebuilt.path().join("noop-nolibc")).unwrap(), std::fs::read(&changed_w.noop_nolibc).unwrap());
    assert_eq!(entries(cache.path()), {
        let mut v = vec![name, rebuilt.name().to_string()];
        v.sort();
        v
    });
    let leftovers: Vec<_> =
        isobench_testkit::tree_listing(cache.path()).into_iter().filter(|(p, ..)| p.to_string_lossy().contains(".tmp-")).collect();
    assert!(leftovers.is_empty(), "no temp entry after a build: {leftovers:?}");
}

fn entries_in_use_are_never_pruned_and_the_oldest_unused_go() {
    let cache = tempfile::tempdir().unwrap();
    let w = workloads();
    let dirs: Vec<_> = (0..KEEP + 2).map(|_| tempfile::tempdir().unwrap()).collect();
    let inputs: Vec<Workloads> = dirs.iter().enumerate().map(|(i, d)| copy_of(&w, d.path(), &[i as u8 + 1])).collect();
    // The oldest entry stays in use throughout; the second oldest does not.
    let held = CachedRootfs::prepare_in(cache.path(), &inputs[0]).unwrap();
    let unheld = CachedRootfs::prepare_in(cache.path(), &inputs[1]).unwrap().path().to_path_buf();
    let mut last = None;
    for input in &inputs[2..] {
        // Distinct modification times, so "oldest" is well defined.
        std::thread::sleep(std::time::Duration::from_millis(20));
        last = Some(CachedRootfs::prepare_in(cache.path(), input).unwrap());
    }
    let names = entries(cache.path());
    assert!(held.path().join("isobench-agent").is_file(), "the entry in use was pruned: {names:?}");
    assert!(!unheld.exists(), "the oldest unused entry stayed: {names:?}");
    assert_eq!(names.len(), KEEP + 1, "the newest {KEEP} and the one in use: {names:?}");
    assert!(names.contains(&last.unwrap().name().to_string()));
    // The index keeps no link to a pruned entry.
    for link in std::fs::read_dir(cache.path().join(cache::INDEX_DIR)).unwrap().flatten() {
        let target = std::fs::read_link(link.path()).unwrap();
        assert!(cache.path().join(&target).is_dir(), "dangling index link to {}", target.display());
    }
}

/// Helper for `a_killed_builder_leaves_a_temp_entry_the_next_sweep_removes`:
/// starts a build in `$ROOTFS_CACHE_TEST_DIR` the way a builder does, says
/// where, and waits to be SIGKILLed.
fn hold_a_build_for_the_kill_test() {
    let dir = PathBuf::from(std::env::var_os("ROOTFS_CACHE_TEST_DIR").expect("the parent test sets it"));
    let tmp = cache::begin_build(&dir, "minimal-0123456789abcdef").unwrap();
    std::fs::create_dir(tmp.join("bin")).unwrap();
    println!("HOLD {}", tmp.display());
    std::thread::sleep(std::time::Duration::from_secs(1000));
}

fn a_killed_builder_leaves_a_temp_entry_the_next_sweep_removes() {
    let cache = tempfile::tempdir().unwrap();
    // A live builder's temp entry (ours) is never swept.
    let live = cache::begin_build(cache.path(), "minimal-fedcba9876543210").unwrap();
    let held =
        isobench_testkit::hold_then_kill(isobench_testkit::helper("hold_a_build_for_the_kill_test").env("ROOTFS_CACHE_TEST_DIR", cache.path()))
            .expect("the helper started its build");
    let held = PathBuf::from(held);
    assert!(held.starts_with(cache.path()) && held.join("bin").is_dir(), "a SIGKILLed builder cannot clean up after itself");
    let removed = cache::sweep_in(cache.path());
    assert_eq!(removed, std::slice::from_ref(&held), "the sweep removes the dead builder's temp entry only");
    assert!(!held.exists() && live.is_dir());
}
