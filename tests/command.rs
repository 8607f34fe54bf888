//! `isobench run --command` end to end: `true` timed in native and the
//! container on both clocks with the right run counts, `false` a failure
//! with its exit status and not timed, a program missing from the image
//! one clear line while the other environments are still measured, the
//! vm (whose root is still the initramfs) not measured with its reason,
//! and command.json valid against `isobench schema command`. With
//! `--rootfs debian`: `--data-dir` is the working directory in native, the
//! container, runc and the vm (TCG), its files read and written back; and
//! native's and unshare's chroot cannot write into the cached image.

use std::path::Path;
use std::process::{Command, Output};

use isobench_testkit::trial;
use isobench_testkit::Need::{Busybox, DebianRootfs, GuestImage, Qemu, Root, Runc, Unshare};

fn main() {
    isobench_testkit::run(vec![
        trial!(true_is_timed_and_false_fails_with_its_status_in_native_and_the_container).needs(&[Root, Busybox]),
        trial!(a_program_missing_from_the_image_is_one_line_and_the_next_command_still_runs).needs(&[Root, Busybox]),
        trial!(a_shell_the_minimal_image_lacks_is_one_line).needs(&[Root, Busybox]),
        trial!(the_vm_whose_root_is_the_initramfs_is_not_measured_and_says_why).needs(&[Root, Busybox, Qemu, GuestImage]),
        trial!(sigint_stops_after_the_current_run_and_keeps_the_runs_so_far).needs(&[Root, Busybox]),
        trial!(bad_command_options_are_one_line),
        trial!(the_data_dir_is_the_working_directory_in_native_the_container_runc_and_the_vm).needs(&[Root, DebianRootfs, Runc, Qemu, GuestImage]),
        trial!(native_and_unshare_see_the_image_read_only_and_the_cache_is_unchanged).needs(&[Root, DebianRootfs, Unshare]),
    ]);
}

fn isobench() -> Command {
    Command::new(env!("CARGO_BIN_EXE_isobench"))
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `isobench run --env native,container --runs 5 --warmup 1` with `args`, into `out`.
fn run(out: &Path, args: &[&str]) -> Output {
    isobench().args(["run", "--quiet", "--env", "native,container", "--runs", "5", "--warmup", "1", "--out"]).arg(out).args(args).output().unwrap()
}

fn command_json(dir: &Path) -> serde_json::Value {
    let run: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("command.json")).unwrap()).unwrap();
    let schema = isobench().args(["schema", "command"]).output().unwrap();
    let schema: serde_json::Value = serde_json::from_slice(&schema.stdout).unwrap();
    assert!(jsonschema::is_valid(&schema, &run), "command.json does not fit `isobench schema command`: {run}");
    run
}

/// The row of environment `env` for command `cmd`.
fn row<'a>(run: &'a serde_json::Value, cmd: &str, env: &str) -> &'a serde_json::Value {
    let c = run["commands"].as_array().unwrap().iter().find(|c| c["command"] == cmd).unwrap_or_else(|| panic!("no {cmd} in {run}"));
    c["envs"].as_array().unwrap().iter().find(|e| e["env"] == env).unwrap_or_else(|| panic!("no {env} for {cmd} in {run}"))
}

fn true_is_timed_and_false_fails_with_its_status_in_native_and_the_container() {
    let d = tempfile::tempdir().unwrap();
    let o = run(d.path(), &["--command", "true", "--command", "false"]);
    assert_eq!(o.status.code(), Some(3), "false fails, so the run is incomplete: {}", stderr(&o));
    let run = command_json(d.path());
    assert_eq!((run["runs"].as_u64(), run["warmup"].as_u64(), run["shell"].as_str()), (Some(5), Some(1), Some("none")));
    for env in ["native", "container"] {
        let t = row(&run, "true", env);
        assert_eq!(t["verdict"], "measured", "{t}");
        assert_eq!((t["host_ns"].as_array().unwrap().len(), t["inside_ns"].as_array().unwrap().len()), (5, 5), "{t}");
        for (h, i) in t["host_ns"].as_array().unwrap().iter().zip(t["inside_ns"].as_array().unwrap()) {
            let (h, i) = (h.as_u64().unwrap(), i.as_u64().unwrap());
            assert!(i > 10_000 && h > i, "{env}: fork+exec+wait takes over 10 µs, and the host's request→answer holds the agent's run: {h} {i}");
        }
        assert_eq!(t["inside"]["n"].as_u64(), Some(5));
        assert!(t["path"].as_str().unwrap().ends_with("/true"), "{t}");
        let f = row(&run, "false", env);
        assert_eq!(f["verdict"], "failed", "{f}");
        assert_eq!(f["status"]["code"].as_i64(), Some(1), "{f}");
        assert!(f["host_ns"].as_array().unwrap().is_empty() && f["inside"].is_null(), "a failure is not timed: {f}");
        assert!(f["reason"].as_str().unwrap().starts_with("exit status 1 (a warm-up run of "), "{f}");
    }
    // native runs the image's files through a chroot, as root.
    assert!(row(&run, "true", "native")["files"].as_str().unwrap().contains("chroot(2)"), "{run}");
    let ratio = &row(&run, "true", "container")["inside_vs_native"];
    assert!(ratio["low"].as_f64().unwrap() <= ratio["ratio"].as_f64().unwrap() && ratio["ratio"].as_f64() <= ratio["high"].as_f64(), "{ratio}");
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(
        table.lines().any(|l| l.starts_with("false")
            && l.contains("container")
            && l.ends_with("FAILED: exit status 1 (a warm-up run of /bin/false; not timed)")),
        "{table}"
    );
    assert!(table.lines().filter(|l| l.starts_with("true")).count() == 4, "two clocks in two environments: {table}");
    let e = stderr(&o);
    assert!(e.lines().any(|l| l == "isobench: container (default): false: exit status 1 (a warm-up run of /bin/false; not timed)"), "{e}");
    let report = std::fs::read_to_string(d.path().join("report.md")).unwrap();
    assert!(report.contains("## Your command") && report.contains("| true | container (default) | inside |"), "{report}");
    let rec: serde_json::Value = serde_json::from_slice(&std::fs::read(d.path().join("run.json")).unwrap()).unwrap();
    assert_eq!(rec["parameters"]["command"]["commands"], serde_json::json!(["true", "false"]), "{rec}");
    assert_eq!(rec["in_progress"], serde_json::Value::Null, "the run finished: {rec}");
}

fn a_program_missing_from_the_image_is_one_line_and_the_next_command_still_runs() {
    let d = tempfile::tempdir().unwrap();
    let o = run(d.path(), &["--command", "isobench-no-such-program --flag", "--command", "true"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let e = stderr(&o);
    let missing: Vec<&str> = e.lines().filter(|l| l.contains("isobench-no-such-program")).collect();
    assert_eq!(missing.len(), 2, "one line per environment: {e}");
    for l in missing {
        assert!(l.contains("\"isobench-no-such-program\": not found in ") && l.contains("(searched PATH="), "{l}");
    }
    let run = command_json(d.path());
    for env in ["native", "container"] {
        assert_eq!(row(&run, "isobench-no-such-program --flag", env)["verdict"], "failed");
        assert!(row(&run, "isobench-no-such-program --flag", env)["status"].is_null(), "it never ran");
        assert_eq!(row(&run, "true", env)["verdict"], "measured", "the next command still runs in {env}");
    }
}

fn a_shell_the_minimal_image_lacks_is_one_line() {
    let d = tempfile::tempdir().unwrap();
    let o = run(d.path(), &["--shell", "/no/such/sh", "--command", "true"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let run = command_json(d.path());
    let r = row(&run, "true", "container");
    assert!(r["reason"].as_str().unwrap().starts_with("\"/no/such/sh\": not found in the environment's root file system"), "{r}");
}

fn bad_command_options_are_one_line() {
    let cases: [(&[&str], &str); 4] = [
        (&["--command", "echo 'open"], "unbalanced quotes"),
        (&["--command", "true", "--shell", "sh"], "--shell \"sh\": give `none`"),
        (&["--runs", "5"], "required arguments were not provided"),
        (&["--command", "true", "--metric", "syscall.getpid"], "cannot be used with"),
    ];
    for (args, want) in cases {
        let d = tempfile::tempdir().unwrap();
        let o = isobench().args(["run", "--env", "native", "--out"]).arg(d.path()).args(args).output().unwrap();
        let e = stderr(&o);
        assert!(!o.status.success() && e.lines().next().is_some_and(|l| l.contains(want)), "{args:?}: the first line says it: {e}");
        assert!(
            !e.contains("writing") && std::fs::read_dir(d.path()).unwrap().next().is_none(),
            "{args:?}: refused before anything was written: {e}"
        );
    }
}

fn the_vm_whose_root_is_the_initramfs_is_not_measured_and_says_why() {
    let d = tempfile::tempdir().unwrap();
    let o = isobench()
        .args(["run", "--quiet", "--env", "native,vm", "--runs", "3", "--warmup", "0", "--command", "true", "--command", "false", "--out"])
        .arg(d.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let run = command_json(d.path());
    for cmd in ["true", "false"] {
        let vm = row(&run, cmd, "vm");
        assert_eq!(vm["verdict"], "not_measured", "{vm}");
        assert!(vm["reason"].as_str().unwrap().starts_with("the vm's root is the initramfs"), "{vm}");
        assert!(vm["label"].as_str().unwrap().contains("TCG") || vm["label"].as_str().unwrap().contains("KVM"), "the accelerator is named: {vm}");
    }
    assert_eq!(row(&run, "true", "native")["verdict"], "measured");
    assert_eq!(row(&run, "false", "native")["verdict"], "failed");
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(table.lines().any(|l| l.starts_with("true") && l.contains("not measured: the vm's root is the initramfs")), "{table}");
}

fn sigint_stops_after_the_current_run_and_keeps_the_runs_so_far() {
    let d = tempfile::tempdir().unwrap();
    let child = isobench()
        .args(["run", "--quiet", "--env", "native,container", "--runs", "1000", "--warmup", "0", "--command", "sleep 0.05", "--out"])
        .arg(d.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Long enough for both environments to start and some rounds to run.
    let started = std::time::Instant::now();
    while !d.path().join("command.json").exists() && started.elapsed() < std::time::Duration::from_secs(2) {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_millis(1500));
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGINT).unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    assert!(started.elapsed() < std::time::Duration::from_secs(20), "stopped after the current run, not after 1000 rounds");
    let run = command_json(d.path());
    assert_eq!(run["interrupted"], true, "{run}");
    for env in ["native", "container"] {
        let r = row(&run, "sleep 0.05", env);
        let n = r["inside_ns"].as_array().unwrap().len();
        assert_eq!(r["verdict"], "measured", "{r}");
        assert!((1..1000).contains(&n), "{env}: some runs kept ({n})");
        assert!(r["inside_ns"].as_array().unwrap().iter().all(|x| x.as_u64().unwrap() >= 50_000_000), "sleep 0.05 takes 50 ms: {r}");
    }
    let rec: serde_json::Value = serde_json::from_slice(&std::fs::read(d.path().join("run.json")).unwrap()).unwrap();
    assert_eq!(rec["interrupted_by"], "SIGINT", "{rec}");
}

/// The cached debian image's tree (built by the first test that needs it).
fn debian_tree() -> std::path::PathBuf {
    let w = isobench_harness::workloads::locate().expect("static workloads");
    isobench_harness::container::rootfs::distro::DistroRootfs::prepare(&w).expect("the debian rootfs").path().to_path_buf()
}

/// What a tree holds at its top and in /etc and /tmp: names, sizes and
/// modification times, to tell that nothing was written.
fn snapshot(tree: &Path) -> Vec<(String, u64, i64)> {
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    for dir in [tree.to_path_buf(), tree.join("etc"), tree.join("tmp"), tree.join("mnt")] {
        let m = std::fs::symlink_metadata(&dir).unwrap();
        out.push((dir.display().to_string(), m.size(), m.mtime_nsec() + m.mtime() * 1_000_000_000));
        for e in std::fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            out.push((e.path().display().to_string(), m.size(), m.mtime_nsec() + m.mtime() * 1_000_000_000));
        }
    }
    out.sort();
    out
}

fn the_data_dir_is_the_working_directory_in_native_the_container_runc_and_the_vm() {
    let d = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("in.txt"), "hello\n").unwrap();
    let o = isobench()
        .args(["run", "--quiet", "--env", "native,container,runc,vm", "--accel", "tcg", "--rootfs", "debian", "--shell", "/bin/sh"])
        .args(["--runs", "1", "--warmup", "0", "--data-dir"])
        .arg(data.path())
        .args(["--command", r#"read x < in.txt && test "$x" = hello && echo "$x" >> out.txt"#, "--command", "cat missing.txt", "--out"])
        .arg(d.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3), "cat missing.txt fails, so the run is incomplete: {}", stderr(&o));
    let run = command_json(d.path());
    let read = r#"read x < in.txt && test "$x" = hello && echo "$x" >> out.txt"#;
    for (env, at) in [("native", "/mnt"), ("container", "/mnt"), ("runc", "/mnt"), ("vm", "/isobench-data")] {
        let r = row(&run, read, env);
        assert_eq!(r["verdict"], "measured", "{env} read in.txt from --data-dir: {r}");
        let where_ = r["data"].as_str().unwrap_or_else(|| panic!("{env}: the row names the data directory: {r}"));
        assert!(where_.starts_with(&format!("{} on {at} (", data.path().canonicalize().unwrap().display())), "{env}: {where_}");
        assert!(where_.ends_with("the working directory"), "{env}: {where_}");
        let f = row(&run, "cat missing.txt", env);
        assert_eq!((f["verdict"].as_str(), f["status"]["code"].as_i64()), (Some("failed"), Some(1)), "{env}: {f}");
    }
    assert!(row(&run, read, "vm")["data"].as_str().unwrap().contains("virtio-9p"), "{run}");
    assert!(row(&run, read, "runc")["data"].as_str().unwrap().contains("bind-mounted"), "{run}");
    let out = std::fs::read_to_string(data.path().join("out.txt")).unwrap();
    assert_eq!(out, "hello\n".repeat(4), "each environment wrote its line back into --data-dir");
    let report = std::fs::read_to_string(d.path().join("report.md")).unwrap();
    assert!(report.contains("The data directory (`--data-dir`) in each environment: native: "), "{report}");
    // Bad input: one line, nothing written.
    let e = tempfile::tempdir().unwrap();
    let o = isobench().args(["run", "--env", "native", "--data-dir", "/no/such/dir", "--command", "true", "--out"]).arg(e.path()).output().unwrap();
    assert!(!o.status.success() && stderr(&o).lines().next().is_some_and(|l| l.contains("--data-dir /no/such/dir: ")), "{}", stderr(&o));
}

fn native_and_unshare_see_the_image_read_only_and_the_cache_is_unchanged() {
    let tree = debian_tree();
    let before = snapshot(&tree);
    let mounts_before = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let d = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let probe = "touch /etc/isobench-cmdfix-probe";
    let o = isobench()
        .args(["run", "--quiet", "--env", "native,unshare", "--rootfs", "debian", "--runs", "2", "--warmup", "1", "--data-dir"])
        .arg(data.path())
        .args(["--command", probe, "--command", "touch /tmp/scratch", "--command", "touch written-back", "--out"])
        .arg(d.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3), "the write into the image fails: {}", stderr(&o));
    let run = command_json(d.path());
    for env in ["native", "unshare"] {
        let w = row(&run, probe, env);
        assert_eq!((w["verdict"].as_str(), w["status"]["code"].as_i64()), (Some("failed"), Some(1)), "{env}: EROFS: {w}");
        assert!(w["files"].as_str().unwrap().contains("read-only in a private mount namespace"), "{w}");
        assert_eq!(row(&run, "touch /tmp/scratch", env)["verdict"], "measured", "{env}: a tmpfs on /tmp, as the container's");
        assert_eq!(row(&run, "touch written-back", env)["verdict"], "measured", "{env}: the data directory is writable");
    }
    assert!(data.path().join("written-back").exists());
    assert!(!tree.join("etc/isobench-cmdfix-probe").exists() && !tree.join("tmp/scratch").exists() && !tree.join("mnt/written-back").exists());
    assert_eq!(snapshot(&tree), before, "the cached image is unchanged");
    let mounts_after = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let tree_s = tree.display().to_string();
    assert!(!mounts_after.lines().any(|l| l.contains(&tree_s)), "nothing of the private namespace on the host: {mounts_after}");
    assert_eq!(mounts_before.lines().filter(|l| l.contains(&tree_s)).count(), 0);
}
