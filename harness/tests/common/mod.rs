//! Helpers shared by the integration tests (each test binary includes this
//! module with `mod common;`; each uses some of it).
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::Command;
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

/// Runs `holder` (this test binary with `--ignored --exact HELPER`), waits
/// for the line `HOLD <value>` it prints once it holds something (a cgroup, a
/// network namespace), then SIGKILLs it, so no destructor of the holder runs,
/// and returns `<value>`; `None` when it never said HOLD within a minute.
pub fn hold_then_kill(holder: &mut Command) -> Option<String> {
    let mut holder = holder.stdout(std::process::Stdio::piped()).spawn().unwrap();
    let line = hold_line(&mut holder);
    holder.kill().unwrap(); // SIGKILL
    holder.wait().unwrap();
    line
}

/// The `<value>` of the first `HOLD <value>` line on `holder`'s piped
/// stdout, within a minute. libtest prints "test NAME ... " before the
/// test's own output on the same line, so the marker is looked for anywhere,
/// from a thread, with a timeout.
pub fn hold_line(holder: &mut std::process::Child) -> Option<String> {
    let out = BufReader::new(holder.stdout.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in out.lines().map_while(Result::ok) {
            if let Some(at) = line.find("HOLD ") {
                let _ = tx.send(line[at + 5..].to_string());
                return;
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(60)).ok()
}

/// Polls `cond` every 10 ms; fails the test after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let t0 = std::time::Instant::now();
    while !cond() {
        assert!(t0.elapsed() < timeout, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}
