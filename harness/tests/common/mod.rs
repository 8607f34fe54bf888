//! Helpers shared by the integration tests (each test binary includes this
//! module with `mod common;`).

use std::path::PathBuf;

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
