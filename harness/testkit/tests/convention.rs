//! The convention holds across the workspace: a test file with
//! `harness = false` lists its tests through `isobench_testkit::run`, and
//! holds no `#[test]` (which such a binary compiles out: the test would
//! silently never run). An unlisted test function is dead code, which
//! clippy (`-D warnings`, scripts/test) refuses.

use std::path::{Path, PathBuf};

/// (test name, its file) of every `[[test]]` with `harness = false` in `manifest`.
fn custom_harness_tests(manifest: &Path) -> Vec<(String, PathBuf)> {
    let text = std::fs::read_to_string(manifest).unwrap();
    let dir = manifest.parent().unwrap();
    let mut found = Vec::new();
    for block in text.split("[[test]]").skip(1) {
        let block = block.split("\n[").next().unwrap();
        let value = |key: &str| {
            block.lines().find_map(|l| {
                let (k, v) = l.split_once('=')?;
                (k.trim() == key).then(|| v.trim().trim_matches('"').to_string())
            })
        };
        if value("harness").as_deref() == Some("false") {
            let name = value("name").expect("a [[test]] has a name");
            let path = value("path").map(|p| dir.join(p)).unwrap_or_else(|| dir.join("tests").join(format!("{name}.rs")));
            found.push((name, path));
        }
    }
    found
}

#[test]
fn every_custom_harness_test_file_lists_its_tests_and_has_no_test_attribute() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files = Vec::new();
    for manifest in ["Cargo.toml", "harness/Cargo.toml", "workloads/Cargo.toml"] {
        files.extend(custom_harness_tests(&root.join(manifest)));
    }
    assert!(files.len() >= 15, "the [[test]] entries were not found: {files:?}");
    for (name, path) in files {
        let src = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{name}: {}: {e}", path.display()));
        assert!(src.contains("isobench_testkit::run("), "{}: harness = false but no isobench_testkit::run", path.display());
        let attrs: Vec<&str> = src.lines().filter(|l| l.trim_start().starts_with("#[test]")).collect();
        assert!(attrs.is_empty(), "{}: #[test] in a harness = false file never runs; list it with trial!", path.display());
    }
}
