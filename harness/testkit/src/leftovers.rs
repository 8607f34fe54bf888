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

/// Polls `cond` every 10 ms; fails the test after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let t0 = std::time::Instant::now();
    while !cond() {
        assert!(t0.elapsed() < timeout, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}
