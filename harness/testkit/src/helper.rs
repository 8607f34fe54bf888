//! Re-exec helpers: a test that needs a process of its own to hold
//! something (a cgroup, a network namespace, a container) and be SIGKILLed,
//! or to run in a private mount namespace or as another user, runs a helper
//! test of its own binary (`--exact NAME --ignored`) and reads what it
//! prints.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::trial::HELPER_ENV;

/// The arguments that run helper `name` alone in this test binary.
fn helper_args(name: &str) -> [&str; 5] {
    ["--exact", name, "--ignored", "--nocapture", "--test-threads=1"]
}

/// This test binary running only its helper `name` (registered with
/// [`Test::helper`](crate::Test::helper)); the caller adds its own
/// environment, stdio and `pre_exec`.
pub fn helper(name: &str) -> Command {
    let mut cmd = Command::new(std::env::current_exe().expect("the test binary's path"));
    cmd.args(helper_args(name)).env(HELPER_ENV, name);
    cmd
}

/// [`helper`] run through `program ARGS...` (`unshare --mount ...`,
/// `setpriv ... --`), which execs it.
pub fn helper_under<S: AsRef<OsStr>>(program: &str, args: &[S], name: &str) -> Command {
    let mut cmd = Command::new(program);
    cmd.args(args).arg(std::env::current_exe().expect("the test binary's path")).args(helper_args(name)).env(HELPER_ENV, name);
    cmd
}

/// Runs `holder` (a [`helper`]), waits for the line `HOLD <value>` it
/// prints once it holds something (a cgroup, a network namespace), then
/// SIGKILLs it, so no destructor of the holder runs, and returns `<value>`;
/// `None` when it never said HOLD within a minute.
pub fn hold_then_kill(holder: &mut Command) -> Option<String> {
    let mut holder = holder.stdout(Stdio::piped()).spawn().unwrap();
    let line = hold_line(&mut holder);
    holder.kill().unwrap(); // SIGKILL
    holder.wait().unwrap();
    line
}

/// The `<value>` of the first `HOLD <value>` line on `holder`'s piped
/// stdout, within a minute. The harness prints "test NAME ... " before the
/// test's own output on the same line, so the marker is looked for
/// anywhere, from a thread, with a timeout.
pub fn hold_line(holder: &mut Child) -> Option<String> {
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
