//! The scripts the README names, as a user on a fresh machine meets them:
//! each one's `--help` works in a clean environment (nothing but PATH and
//! HOME), an argument it does not take is one line and a non-zero exit,
//! and `scripts/build-kernel` on a machine without any linux-source package
//! says why it stops (it used to exit 1 silently: `dpkg-query` fails when
//! nothing matches, and `set -euo pipefail` ended the script there).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use isobench_testkit::trial;

fn main() {
    isobench_testkit::run(vec![
        trial!(every_script_the_readme_names_answers_help_in_a_clean_environment),
        trial!(an_argument_a_script_does_not_take_is_one_line_and_a_non_zero_exit),
        trial!(build_kernel_without_linux_source_says_why_it_stops),
        trial!(a_failing_command_under_set_e_is_named_not_silent),
    ]);
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The `scripts/NAME` the README mentions that are files of this repo.
fn readme_scripts() -> Vec<String> {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let mut names: Vec<String> = readme
        .match_indices("scripts/")
        .map(|(i, _)| readme[i + "scripts/".len()..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect::<String>())
        .filter(|n| !n.is_empty() && root().join("scripts").join(n).is_file())
        .collect();
    names.sort();
    names.dedup();
    names
}

/// `scripts/NAME ARGS` with nothing of this environment but a plain PATH
/// (`extra_path` first, when given), a HOME and a cache of its own.
fn clean(name: &str, args: &[&str], extra_path: Option<&Path>) -> Output {
    let home = tempfile::tempdir().unwrap();
    let path = match extra_path {
        Some(p) => format!("{}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", p.display()),
        None => "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
    };
    Command::new(root().join("scripts").join(name))
        .args(args)
        .env_clear()
        .env("PATH", path)
        .env("HOME", home.path())
        .env("ISOBENCH_CACHE", home.path().join("cache"))
        .current_dir(home.path())
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn every_script_the_readme_names_answers_help_in_a_clean_environment() {
    let names = readme_scripts();
    for expected in ["bench", "build-guest", "build-kernel", "build-workloads", "setup", "test", "vm-run"] {
        assert!(names.iter().any(|n| n == expected), "README names scripts/{expected}: {names:?}");
    }
    for name in &names {
        let o = clean(name, &["--help"], None);
        assert_eq!(o.status.code(), Some(0), "scripts/{name} --help: {}", text(&o.stderr));
        let help = text(&o.stdout);
        assert!(help.lines().count() >= 2, "scripts/{name} --help says what it does: {help:?}");
        assert!(!help.contains("#!/"), "scripts/{name}: {help}");
    }
}

fn an_argument_a_script_does_not_take_is_one_line_and_a_non_zero_exit() {
    // bench and test pass their arguments on to cargo: not theirs to refuse.
    for name in readme_scripts().iter().filter(|n| !matches!(n.as_str(), "bench" | "test")) {
        let o = clean(name, &["--no-such-option"], None);
        let err = text(&o.stderr);
        assert!(!o.status.success(), "scripts/{name} --no-such-option: {err}");
        assert_eq!(err.trim().lines().count(), 1, "scripts/{name}: one line: {err}");
        assert!(err.contains("--no-such-option"), "scripts/{name}: {err}");
    }
}

/// A directory of stand-ins for a fresh Debian machine's package tools:
/// dpkg-query knows no linux-source-* package (exit 1, as the real one),
/// apt-cache knows no linux-source, apt-get does nothing.
fn fresh_machine_tools() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let tool = |name: &str, body: &str| {
        let p = d.path().join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    };
    tool("dpkg-query", "echo \"dpkg-query: no packages found matching $3\" >&2; exit 1");
    tool("apt-cache", "echo \"E: No packages found\" >&2; exit 100");
    tool("apt-get", "exit 0");
    d
}

fn build_kernel_without_linux_source_says_why_it_stops() {
    let tools = fresh_machine_tools();
    let o = clean("build-kernel", &[], Some(tools.path()));
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("build-kernel: error: no linux-source package known to apt (is the Debian main archive in sources.list?)"),
        "the script reaches its own branch for a machine without linux-source: {err:?}"
    );
}

fn a_failing_command_under_set_e_is_named_not_silent() {
    // A linux-source apt knows, but whose install leaves dpkg without it:
    // the script fails at a command of its own, which must be named.
    let tools = fresh_machine_tools();
    let apt_cache = tools.path().join("apt-cache");
    std::fs::write(&apt_cache, "#!/bin/sh\n[ \"$1\" = depends ] && echo '  Depends: linux-source-6.1'\nexit 0\n").unwrap();
    std::fs::set_permissions(&apt_cache, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let o = clean("build-kernel", &[], Some(tools.path()));
    let err = text(&o.stderr);
    assert!(!o.status.success(), "{err}");
    let last = err.trim().lines().last().unwrap_or_default();
    assert!(last.starts_with("build-kernel: error: "), "every exit says why: {err:?}");
}
