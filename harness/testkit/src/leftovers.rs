//! What a test looks at to tell that nothing of isobench outlived it, and
//! how it waits for the kernel to finish tearing something down.

use std::path::PathBuf;
use std::time::Duration;

/// This process's temp dirs (`isobench-<pid>-*`): what a test must not leave.
pub fn own_temp_dirs() -> Vec<PathBuf> {
    let prefix = format!("isobench-{}-", std::process::id());
    let mut v: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .collect();
    v.sort();
    v
}

/// This process's mount table (/proc/self/mountinfo) without the mounts
/// other tests running beside it make in the host's namespace, for a test
/// that asserts nothing of its own reached that table: the /run/netns binds
/// of runs' network namespaces, and the /proc of a killed debootstrap build
/// a distro test fakes. (Under shared propagation these show up in a new
/// mount namespace too.) The containers of such a test make neither.
pub fn mount_table() -> String {
    let table = std::fs::read_to_string("/proc/self/mountinfo").expect("read /proc/self/mountinfo");
    table.lines().filter(|l| !l.contains("/run/netns/isobench-") && !l.contains("/.tmp-debian-")).map(|l| format!("{l}\n")).collect()
}

/// Polls `cond` every 10 ms; fails the test after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let t0 = std::time::Instant::now();
    while !cond() {
        assert!(t0.elapsed() < timeout, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Every path under `dir` with its inode and modification time, sorted:
/// what "nothing was created or written there" compares.
pub fn tree_listing(dir: &std::path::Path) -> Vec<(std::path::PathBuf, u64, i64, i64)> {
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let m = std::fs::symlink_metadata(e.path()).unwrap();
            out.push((e.path(), m.ino(), m.mtime(), m.mtime_nsec()));
            if m.is_dir() {
                todo.push(e.path());
            }
        }
    }
    out.sort();
    out
}
