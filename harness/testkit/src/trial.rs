//! Registering and running a test binary's tests through libtest-mimic, so
//! that a missing prerequisite is a visible skip instead of a silent pass.
//!
//! A test file with `harness = false` lists its tests in `main`:
//!
//! ```text
//! fn main() {
//!     isobench_testkit::run(vec![
//!         trial!(memory_hog_over_the_limit_is_oom_killed).needs(&[Root, Cgroups, Busybox]),
//!         trial!(hold_a_group_for_the_sweep_test).helper("run by sigkilled_owner_leaves_a_group_that_sweep_removes"),
//!     ]);
//! }
//! ```
//!
//! - A test whose [`Need`]s are all there runs. Its needs are part of its
//!   name as libtest-mimic's "kind" (`[needs root, busybox] name`), the same
//!   on every machine, so any runner's output says what each test needs.
//! - A missing need marks the test ignored when the binary lists its tests:
//!   nextest shows it as `SKIP` (.config/nextest.toml sets `status-level =
//!   "skip"`), cargo test as `ignored`. The reason and its remedy (`skip
//!   BINARY::NAME: needs root: not root (euid 1000); run the tests as root
//!   ...`) go to stderr when the binary runs tests (cargo test shows it;
//!   nextest hides what a listing prints, and never runs a skipped test),
//!   and to the file `$ISOBENCH_SKIP_LOG` names, which scripts/test fills by
//!   listing the tests and prints before nextest runs them.
//! - With `ISOBENCH_REQUIRE_PRIVILEGED=1` a missing [`Class::Required`] need
//!   is not a skip: the test runs and fails at once, naming it and its remedy.
//!   [`Class::Host`] and [`Class::Elsewhere`] needs stay skips.
//! - A re-exec helper (a test its parent runs in a process of its own, to be
//!   SIGKILLed, or in a private mount namespace, or as nobody) is ignored,
//!   shown as `[helper]`, and runs only when its parent starts it through
//!   [`crate::helper`]; `--include-ignored` passes over it.

use std::io::Write;

use libtest_mimic::{Arguments, Completion, Failed, Trial};

use crate::need::{Class, Need};

/// Set to `1` (by .ci/run) to turn a missing required prerequisite into a failure.
pub const REQUIRE_ENV: &str = "ISOBENCH_REQUIRE_PRIVILEGED";
/// A file each test binary appends its skip reasons to (scripts/test sets it).
pub const SKIP_LOG_ENV: &str = "ISOBENCH_SKIP_LOG";
/// Set by [`crate::helper`] to the name of the helper it starts.
pub const HELPER_ENV: &str = "ISOBENCH_TEST_HELPER";

/// One test: a name, an ordinary function that panics on failure, and what
/// it needs. Made with [`trial!`](crate::trial).
pub struct Test {
    name: &'static str,
    body: fn(),
    needs: &'static [Need],
    helper: Option<&'static str>,
}

/// `trial!(f)` is `Test::new("f", f)`: the name can't drift from the function.
#[macro_export]
macro_rules! trial {
    ($f:ident) => {
        $crate::Test::new(stringify!($f), $f)
    };
}

impl Test {
    pub fn new(name: &'static str, body: fn()) -> Test {
        Test { name, body, needs: &[], helper: None }
    }

    /// What the test needs from the machine.
    pub fn needs(self, needs: &'static [Need]) -> Test {
        Test { needs, ..self }
    }

    /// Marks a re-exec helper; `why` says which test runs it and how (the
    /// `#[ignore = "helper: ..."]` of the built-in harness).
    pub fn helper(self, why: &'static str) -> Test {
        Test { helper: Some(why), ..self }
    }

    /// `needs root, busybox`, `helper`, or nothing.
    fn kind(&self) -> String {
        match (self.helper, self.needs) {
            (Some(_), _) => "helper".into(),
            (None, []) => String::new(),
            (None, needs) => format!("needs {}", needs.iter().map(|n| n.label()).collect::<Vec<_>>().join(", ")),
        }
    }
}

/// What [`run`] decided for one test.
enum Plan {
    Run,
    /// Ignored: the reasons, one per missing need.
    Skip(Vec<String>),
    /// Under REQUIRE_PRIVILEGED: fails at once with this message.
    Fail(String),
}

/// Decides from the missing needs (each with what the check said).
fn plan(missing: &[(Need, String)], require: bool) -> Plan {
    if missing.is_empty() {
        return Plan::Run;
    }
    let line = |(n, why): &(Need, String)| format!("needs {}: {why}; {}", n.label(), n.remedy());
    let reasons: Vec<String> = missing.iter().map(line).collect();
    let only_required = missing.iter().all(|(n, _)| n.class() == Class::Required);
    match require && only_required {
        true => Plan::Fail(format!("missing prerequisite ({REQUIRE_ENV}=1): {}", reasons.join("; "))),
        false => Plan::Skip(reasons),
    }
}

/// Whether `ISOBENCH_REQUIRE_PRIVILEGED` asks for failures instead of skips.
pub fn require_privileged() -> bool {
    std::env::var(REQUIRE_ENV).is_ok_and(|v| !v.is_empty() && v != "0")
}

/// Runs the binary's tests as libtest-mimic would with these arguments
/// (`--list`, `--exact`, `--ignored`, `--include-ignored`, `--nocapture`,
/// filters) and exits with its status.
pub fn run(tests: Vec<Test>) -> ! {
    let args = Arguments::from_args();
    let require = require_privileged();
    let binary = binary_name();
    let mut skipped = Vec::new();
    let mut trials = Vec::new();
    for t in tests {
        let body = t.body;
        let name = t.name;
        let kind = t.kind();
        if let Some(why) = t.helper {
            let helper = Trial::ignorable_test(name, move || match std::env::var(HELPER_ENV).as_deref() == Ok(name) {
                true => run_body(body),
                false => Ok(Completion::ignored_with(format!("helper: {why}"))),
            });
            trials.push(helper.with_kind(kind).with_ignored_flag(true));
            continue;
        }
        // Needs are checked only for the tests this invocation's name filter
        // lets through (nextest runs one test per process). Flagged ignored
        // so that `--ignored` does not filter it: a skip must be listed there.
        let plain = Trial::test(name, || Ok(())).with_kind(kind.clone()).with_ignored_flag(true);
        let missing: Vec<(Need, String)> = match args.is_filtered_out(&plain) {
            true => Vec::new(),
            false => t.needs.iter().filter_map(|n| n.check().err().map(|why| (*n, why))).collect(),
        };
        let trial = match plan(&missing, require) {
            Plan::Run => Trial::ignorable_test(name, move || run_body(body)),
            Plan::Fail(msg) => Trial::test(name, move || Err(Failed::from(msg))),
            Plan::Skip(reasons) => {
                let elsewhere = missing.iter().all(|(n, _)| n.class() == Class::Elsewhere);
                skipped.push(format!("skip {binary}::{name}: {}", reasons.join("; ")));
                // Run anyway by --include-ignored: a test that only needs
                // another kind of host runs (it may be one); a missing
                // requirement fails at once rather than half-way.
                let msg = format!("skipped for a missing prerequisite: {}", reasons.join("; "));
                Trial::ignorable_test(name, move || if elsewhere { run_body(body) } else { Err(Failed::from(msg)) }).with_ignored_flag(true)
            }
        };
        trials.push(trial.with_kind(kind));
    }
    report_skips(&skipped, args.list);
    libtest_mimic::run(&args, trials).exit()
}

fn run_body(body: fn()) -> Result<Completion, Failed> {
    body();
    Ok(Completion::Completed)
}

/// The skip lines: on stderr when tests run (not when listing, which
/// nextest's output hides and which would print them twice), and appended to
/// `$ISOBENCH_SKIP_LOG` whenever it is set.
fn report_skips(lines: &[String], listing: bool) {
    if lines.is_empty() {
        return;
    }
    if !listing {
        for l in lines {
            eprintln!("{l}");
        }
    }
    if let Some(path) = std::env::var_os(SKIP_LOG_ENV).filter(|p| !p.is_empty()) {
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        let written = std::fs::OpenOptions::new().create(true).append(true).open(&path).and_then(|mut f| f.write_all(text.as_bytes()));
        if let Err(e) = written {
            eprintln!("{SKIP_LOG_ENV}={}: {e}", path.to_string_lossy());
        }
    }
}

/// This test binary's name without cargo's hash (`container-1a2b…` → `container`).
fn binary_name() -> String {
    let exe = std::env::current_exe().ok().and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned())).unwrap_or_default();
    match exe.rsplit_once('-') {
        Some((name, hash)) if hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => name.to_string(),
        _ => exe,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_requirement_skips_or_fails_under_require_privileged() {
        let missing = [(Need::Root, "not root (euid 1000)".to_string())];
        let Plan::Skip(r) = plan(&missing, false) else { panic!("a skip") };
        assert_eq!(r, ["needs root: not root (euid 1000); run the tests as root (sudo -E scripts/test)"]);
        let Plan::Fail(msg) = plan(&missing, true) else { panic!("a failure") };
        assert!(msg.starts_with("missing prerequisite (ISOBENCH_REQUIRE_PRIVILEGED=1): needs root: not root"), "{msg}");
        assert!(matches!(plan(&[], true), Plan::Run));
    }

    #[test]
    fn what_ci_cannot_have_stays_a_skip_under_require_privileged() {
        for need in [Need::KvmBoots, Need::CgroupV2Controllers, Need::KvmPvm, Need::ModularGuest] {
            let missing = [(Need::Root, "not root".to_string()), (need, "absent".to_string())];
            assert!(matches!(plan(&missing, true), Plan::Skip(_)), "{need:?}");
        }
        assert!(Need::KvmBoots.check().is_err() && Need::CgroupV2Controllers.check().is_err(), "never checked");
    }

    #[test]
    fn the_kind_lists_the_needs_or_says_helper() {
        fn f() {}
        assert_eq!(Test::new("f", f).kind(), "");
        assert_eq!(Test::new("f", f).needs(&[Need::Root, Need::Busybox]).kind(), "needs root, busybox");
        assert_eq!(Test::new("f", f).needs(&[Need::Root]).helper("run by g").kind(), "helper");
    }
}
