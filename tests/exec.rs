//! `isobench exec` as a user meets it (root only; a skip otherwise): the
//! launcher's init is PID 1 and reaps orphans, SIGTERM to isobench ends the
//! command with 143, SIGKILL to isobench takes the container with it and the
//! next start sweeps its cgroup, `--show-ns` lists what was created, the
//! limits are enforced, bad input is one line, and a command that ignores
//! SIGTERM is stopped as `docker stop` stops it (`--stop-timeout`); under
//! `--profile docker`, `--net veth` puts the container behind a bridge and a
//! DNAT'd published port that vanish with the run.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use isobench_testkit::{trial, wait_until, Need, Need::*};

fn isobench() -> Command {
    Command::new(env!("CARGO_BIN_EXE_isobench"))
}

/// `isobench exec` as root, with busybox for the commands.
const EXEC: &[Need] = &[Root, Busybox];

fn main() {
    isobench_testkit::run(vec![
        trial!(ps_shows_the_init_as_pid_1_and_only_the_container).needs(EXEC),
        trial!(orphans_are_reaped_and_sigterm_to_isobench_gives_143).needs(EXEC),
        trial!(sigkill_of_isobench_kills_the_container_and_the_next_start_sweeps_its_cgroup).needs(EXEC),
        trial!(show_ns_lists_each_namespace_host_vs_container).needs(EXEC),
        trial!(limits_from_the_command_line_are_enforced).needs(EXEC),
        trial!(bad_input_is_one_line_and_a_non_zero_exit),
        trial!(a_command_that_ignores_sigterm_is_killed_after_the_stop_timeout).needs(&[Root, Busybox, Cgroups]),
        trial!(a_second_sigint_kills_the_container_at_once).needs(EXEC),
        trial!(a_second_exec_creates_nothing_in_the_cache_and_a_changed_binary_gets_a_new_rootfs).needs(EXEC),
        trial!(a_rootless_exec_under_an_overmounted_proc_says_the_cause_and_the_remedy).needs(&[Root, Busybox, UserNamespaces, Setpriv, Nobody]),
        trial!(the_command_keeps_ignored_signals_and_gets_no_blocked_or_caught_ones).needs(EXEC),
        trial!(docker_veth_is_reached_through_the_published_port_and_leaves_nothing).needs(&[Root, Busybox, SeccompProfile, Nft]),
    ]);
}

fn exec(args: &[&str]) -> Output {
    isobench().arg("exec").args(args).output().expect("isobench runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Kills and reaps on drop, so a failed assertion leaves no isobench behind.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn children(pid: i32) -> Vec<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

fn ns_of(pid: i32, kind: &str) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/ns/{kind}")).ok()
}

/// (pid, state) of every process in the pid namespace `ns`.
fn members_of(ns: &Path) -> Vec<(i32, char)> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| ns_of(*pid, "pid").as_deref() == Some(ns))
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let state = stat.rsplit_once(") ")?.1.chars().next()?;
            Some((pid, state))
        })
        .collect()
}

/// The cgroup directories isobench process `pid` made (`isobench-<pid>-*`).
fn cgroups_of(pid: u32) -> Vec<PathBuf> {
    let prefix = format!("isobench-{pid}-");
    let mut found = Vec::new();
    let mut parents = vec![PathBuf::from("/sys/fs/cgroup/isobench")];
    if let Ok(d) = std::fs::read_dir("/sys/fs/cgroup") {
        parents.extend(d.flatten().map(|e| e.path().join("isobench")));
    }
    for p in parents {
        if let Ok(d) = std::fs::read_dir(&p) {
            found.extend(d.flatten().filter(|e| e.file_name().to_string_lossy().starts_with(&prefix)).map(|e| e.path()));
        }
    }
    found
}

/// Starts `isobench exec -- ARGS` and returns it with its container init's
/// host pid once the init has a child (the command).
fn start(args: &[&str]) -> (Reaped, i32) {
    let child = Reaped(isobench().arg("exec").arg("--").args(args).stdout(Stdio::null()).spawn().unwrap());
    let pid = child.0.id() as i32;
    let mut init = 0;
    wait_until("the container's command runs", Duration::from_secs(30), || {
        init = children(pid).into_iter().find(|c| !children(*c).is_empty()).unwrap_or(0);
        init != 0
    });
    (child, init)
}

fn ps_shows_the_init_as_pid_1_and_only_the_container() {
    let o = exec(&["--", "ps", "-o", "pid,comm"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    println!("isobench exec -- ps -o pid,comm\n{out}");
    let rows: Vec<Vec<&str>> = out.lines().skip(1).map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows, [vec!["1", "isobench-init"], vec!["2", "ps"]], "{out}");
    // A different host name, no host port: the other two seed demonstrations.
    let o = exec(&["--hostname", "box", "--", "sh", "-c", "hostname; wc -l < /proc/net/tcp"]);
    assert_eq!(text(&o.stdout).split_whitespace().collect::<Vec<_>>(), ["box", "1"]);
}

fn orphans_are_reaped_and_sigterm_to_isobench_gives_143() {
    let (mut isob, init) = start(&["sh", "-c", "(sleep 0.2 &); exec sleep 30"]);
    let ns = ns_of(init, "pid").unwrap();
    // The orphaned `sleep 0.2` was re-parented to the init, which reaps it:
    // left are the init and `sleep 30`, neither a zombie.
    wait_until("the orphan is reaped", Duration::from_secs(10), || {
        let m = members_of(&ns);
        m.len() == 2 && m.iter().all(|(_, s)| *s != 'Z')
    });
    let isobench_pid = isob.0.id();
    assert!(!cgroups_of(isobench_pid).is_empty(), "exec runs in a cgroup of its own");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(isobench_pid as i32), nix::sys::signal::Signal::SIGTERM).unwrap();
    let status = isob.0.wait().unwrap();
    assert_eq!(status.code(), Some(143), "{status:?}");
    assert!(members_of(&ns).is_empty(), "something outlived the container");
    assert_eq!(cgroups_of(isobench_pid), Vec::<PathBuf>::new(), "the cgroup outlived the container");
}

fn sigkill_of_isobench_kills_the_container_and_the_next_start_sweeps_its_cgroup() {
    // The payload ignores SIGTERM; only the kill-all of the cgroup and
    // PDEATHSIG can end it.
    let (mut isob, init) = start(&["sh", "-c", "trap '' TERM; sleep 1000 & sleep 1000"]);
    let ns = ns_of(init, "pid").unwrap();
    let isobench_pid = isob.0.id();
    let groups = cgroups_of(isobench_pid);
    assert!(!groups.is_empty());
    isob.0.kill().unwrap();
    isob.0.wait().unwrap();
    wait_until("the container died with isobench", Duration::from_secs(10), || members_of(&ns).is_empty());
    // The next isobench sweeps the dead run's group (as does any concurrent one).
    let o = exec(&["--no-cgroup", "--", "true"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    for g in groups {
        assert!(!g.exists(), "{} survived the next start", g.display());
    }
}

fn show_ns_lists_each_namespace_host_vs_container() {
    let o = exec(&["--ns", "pid,mnt,net,cgroup", "--show-ns", "--", "true"]);
    assert_eq!(o.status.code(), Some(0));
    let err = text(&o.stderr);
    println!("{err}");
    let row = |kind: &str| -> Vec<String> {
        err.lines()
            .find(|l| l.split_whitespace().next() == Some(kind))
            .unwrap_or_else(|| panic!("no {kind} row in\n{err}"))
            .split_whitespace()
            .map(String::from)
            .collect()
    };
    assert_eq!(err.lines().next().unwrap().split_whitespace().collect::<Vec<_>>(), ["NS", "HOST", "CONTAINER", "STATUS"]);
    for kind in ["pid", "mnt", "net", "cgroup"] {
        let r = row(kind);
        let mine = ns_of(std::process::id() as i32, kind).unwrap().to_string_lossy().into_owned();
        assert!(mine.contains(&format!("[{}]", r[1])), "host inode of {kind}: {mine} vs {r:?}");
        assert_ne!(r[1], r[2], "{kind}");
        assert_eq!(r[3], "new", "{r:?}");
    }
    for kind in ["uts", "ipc", "user"] {
        let r = row(kind);
        assert_eq!(r[1], r[2], "{kind} is shared with the host");
        assert_eq!(r[3..].join(" "), "shared with the host");
    }
    assert!(err.lines().any(|l| l.starts_with("cgroup  /sys/fs/cgroup/")), "{err}");
}

fn limits_from_the_command_line_are_enforced() {
    let o = exec(&["--memory", "32m", "--", "sh", "-c", "dd if=/dev/zero of=/dev/null bs=128M count=1 2>/dev/null; echo $?"]);
    assert_eq!(text(&o.stdout).trim(), "137", "{}", text(&o.stderr));
    let o = exec(&["--pids", "4", "--", "sh", "-c", "sleep 5 & sleep 5 & sleep 5 & sleep 5 & echo $?"]);
    assert!(text(&o.stderr).contains("can't fork"), "{}", text(&o.stderr));
    let o = exec(&["--cpus", "0.5", "--", "sh", "-c", "exit 4"]);
    assert_eq!(o.status.code(), Some(4));
}

fn bad_input_is_one_line_and_a_non_zero_exit() {
    for (args, needle) in [
        (&["--memory", "12x", "--", "true"][..], "invalid value '12x' for '--memory <SIZE>': expected bytes"),
        (&["--cpus", "0", "--", "true"][..], "invalid value '0' for '--cpus <N>': must be at least 0.01"),
        (&["--pids", "0", "--", "true"][..], "invalid value '0' for '--pids <N>': must be at least 1"),
        (&["--ns", "pid,nett", "--", "true"][..], "unknown namespace \"nett\""),
        (&["--rootfs", "/nonexistent/rootfs", "--", "true"][..], "/nonexistent/rootfs"),
        (&["--no-cgroup", "--pids", "5", "--", "true"][..], "limits need a cgroup"),
        // The trial's input: a pid namespace alone gave an empty /proc.
        (&["--ns", "pid", "--", "ls", "/proc"][..], "without mnt would leave the container an empty /proc"),
        (&["--ns", "user", "--", "true"][..], "without mnt would leave the container an empty /proc"),
    ] {
        let o = exec(args);
        let e = text(&o.stderr);
        assert!(!o.status.success(), "{args:?}");
        assert_eq!(e.trim().lines().count(), 1, "{args:?}: {e}");
        if nix::unistd::geteuid().is_root() || !needle.starts_with('/') && !needle.starts_with("limits") {
            assert!(e.contains(needle), "{args:?}: {e}");
        }
    }
}

/// The pid namespace and cgroups of the container of `isobench` (pid), once
/// its command (`sh -c "trap ...; sleep 1000"`) runs `sleep`, either as the
/// shell's child or in its place: by then the shell has set its traps.
fn container_of(isobench_pid: i32) -> (PathBuf, Vec<PathBuf>) {
    let comm = |pid: i32| std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    let sleeping = |pid: i32| comm(pid).trim() == "sleep" || children(pid).into_iter().any(|c| comm(c).trim() == "sleep");
    let mut init = 0;
    wait_until("the container's command runs sleep", Duration::from_secs(30), || {
        init = children(isobench_pid).into_iter().find(|i| children(*i).into_iter().any(sleeping)).unwrap_or(0);
        init != 0
    });
    (ns_of(init, "pid").unwrap(), cgroups_of(isobench_pid as u32))
}

fn a_command_that_ignores_sigterm_is_killed_after_the_stop_timeout() {
    // The issue's case: `timeout 5` sends SIGTERM to isobench, which the
    // command ignores; `timeout -s KILL 15` is the backstop that once fired.
    const TERM_AFTER_S: u64 = 5;
    const STOP_TIMEOUT_S: u64 = 2;
    let t0 = std::time::Instant::now();
    let child = Command::new("timeout")
        .args(["-s", "KILL", "15", "timeout", "--preserve-status", &TERM_AFTER_S.to_string()])
        .arg(env!("CARGO_BIN_EXE_isobench"))
        .args(["exec", "--memory", "64m", "--pids", "32", "--stop-timeout", &STOP_TIMEOUT_S.to_string(), "--"])
        .args(["sh", "-c", "trap '' TERM; sleep 1000"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = Reaped(child);
    let outer = child.0.id() as i32;
    let mut isobench_pid = 0;
    wait_until("isobench runs under both timeouts", Duration::from_secs(10), || {
        isobench_pid = children(outer).into_iter().flat_map(children).next().unwrap_or(0);
        isobench_pid != 0
    });
    let (ns, groups) = container_of(isobench_pid);
    assert!(!groups.is_empty(), "a cgroup for the limits");
    let status = child.0.wait().unwrap();
    let took = t0.elapsed();
    println!("ended after {took:?} with {status:?}");
    assert_eq!(status.code(), Some(143), "isobench's own status after SIGTERM: 128+15");
    // The backstop would end it at 15 s (and with 137): 3 s of slack for the
    // teardown on a loaded machine still tells the two apart.
    assert!(took < Duration::from_secs(TERM_AFTER_S + STOP_TIMEOUT_S + 3), "{took:?}: not within the grace period plus three seconds of the SIGTERM");
    assert!(
        took >= Duration::from_secs(TERM_AFTER_S + STOP_TIMEOUT_S) - Duration::from_millis(300),
        "{took:?}: killed before the grace period ran out"
    );
    assert!(members_of(&ns).is_empty(), "a process of the container outlived it: {:?}", members_of(&ns));
    for g in groups {
        assert!(!g.exists(), "{} outlived the container", g.display());
    }
    assert!(children(isobench_pid).is_empty() && !Path::new(&format!("/proc/{isobench_pid}")).exists(), "isobench still runs");
}

fn a_second_sigint_kills_the_container_at_once() {
    let child =
        isobench().args(["exec", "--stop-timeout", "100", "--", "sh", "-c", "trap '' INT TERM; sleep 1000"]).stdout(Stdio::null()).spawn().unwrap();
    let mut child = Reaped(child);
    let pid = nix::unistd::Pid::from_raw(child.0.id() as i32);
    let (ns, _) = container_of(pid.as_raw());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(child.0.try_wait().unwrap().is_none(), "one SIGINT is passed on; the command ignores it and the grace period runs");
    assert!(!members_of(&ns).is_empty());
    let t0 = std::time::Instant::now();
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let status = child.0.wait().unwrap();
    println!("second SIGINT: ended after {:?} with {status:?}", t0.elapsed());
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    assert_eq!(status.code(), Some(130), "128 + SIGINT");
    assert!(members_of(&ns).is_empty());
}

/// The minimal rootfs entries in a cache's `rootfs/`.
fn minimal_entries(cache: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(cache.join("rootfs"))
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with("minimal-"))
        .collect();
    v.sort();
    v
}

/// `isobench exec` pays the launch only: the first one builds the minimal
/// rootfs (and the /dev template) into the cache, a second one finds them
/// and writes nothing there (the same paths, inodes and times), and one
/// whose workloads changed (ISOBENCH_WORKLOADS_DIR at a copy with one byte
/// more in a binary) gets an entry of its own, the first one staying.
fn a_second_exec_creates_nothing_in_the_cache_and_a_changed_binary_gets_a_new_rootfs() {
    let cache = tempfile::tempdir().unwrap();
    let run = |workloads: Option<&Path>| {
        let mut cmd = isobench();
        cmd.env("ISOBENCH_CACHE", cache.path()).args(["exec", "--", "/noop"]);
        if let Some(w) = workloads {
            cmd.env("ISOBENCH_WORKLOADS_DIR", w);
        }
        let o = cmd.output().unwrap();
        assert!(o.status.success(), "{}", text(&o.stderr));
    };
    run(None);
    let first = isobench_testkit::tree_listing(cache.path());
    assert_eq!(minimal_entries(cache.path()).len(), 1, "{first:?}");
    assert!(first.iter().any(|(p, ..)| p.ends_with("rootfs/dev-v1/null")), "the /dev template is cached too");
    run(None);
    assert_eq!(isobench_testkit::tree_listing(cache.path()), first, "a second exec created or changed nothing in the cache");

    let w = isobench_harness::workloads::locate().unwrap();
    let copy = tempfile::tempdir().unwrap();
    for (from, name) in w.rootfs_files() {
        std::fs::copy(from, copy.path().join(name)).unwrap();
    }
    let nolibc = copy.path().join("noop-nolibc");
    let mut bytes = std::fs::read(&nolibc).unwrap();
    bytes.push(0);
    std::fs::write(&nolibc, bytes).unwrap();
    let before = minimal_entries(cache.path());
    run(Some(copy.path()));
    let after = minimal_entries(cache.path());
    assert_eq!(after.len(), 2, "a changed binary gets a rootfs of its own: {after:?}");
    assert!(before.iter().all(|e| after.contains(e)), "the first entry stays");
}

/// The trial's input: part of the host's /proc over-mounted (a tmpfs on
/// /proc/acpi, in a private mount namespace so the host keeps its own),
/// then a rootless exec with a pid namespace, run as nobody.
fn a_rootless_exec_under_an_overmounted_proc_says_the_cause_and_the_remedy() {
    // nobody's own cache (HOME stays /root across setpriv).
    let cache = tempfile::tempdir().unwrap();
    std::fs::set_permissions(cache.path(), std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let as_nobody = format!(
        "ISOBENCH_CACHE={cache} setpriv --reuid=nobody --regid=nogroup --clear-groups {bin} exec",
        cache = cache.path().display(),
        bin = env!("CARGO_BIN_EXE_isobench")
    );
    // /proc/acpi as in the trial; another non-empty /proc directory without ACPI.
    let over = ["/proc/acpi", "/proc/driver", "/proc/tty"].into_iter().find(|d| Path::new(d).is_dir()).unwrap();
    let script = format!(
        "mount -t tmpfs isobench-test {over} || exit 99; {as_nobody} -- true; echo rc=$?; {as_nobody} --ns mnt,uts,ipc,net -- true; echo rc=$?"
    );
    let o = Command::new("unshare").args(["-m", "--propagation", "private", "sh", "-c", &script]).output().unwrap();
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    if o.status.code() == Some(99) {
        panic!("cannot mount over /proc/acpi here: {err}");
    }
    assert_eq!(out.lines().collect::<Vec<_>>(), ["rc=125", "rc=0"], "refused with pid, fine without: {out}{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("mount proc on proc: EPERM"), "{err}");
    assert!(
        err.contains(&format!(
            "the kernel refuses a new procfs in a user namespace while the host's /proc has file systems mounted over parts of it: {over} (tmpfs)"
        )),
        "the cause, with the mount: {err}"
    );
    assert!(err.contains("unmount them, run as root, or leave pid out of --ns"), "the remedy: {err}");
}

/// A signal mask field of /proc/PID/status (`SigIgn`, `SigBlk`, `SigCgt`).
fn sig_mask(status: &str, field: &str) -> u64 {
    let line = status.lines().find(|l| l.starts_with(&format!("{field}:"))).unwrap_or_else(|| panic!("no {field} in {status}"));
    u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap()
}

/// The init starts the command as posix_spawn does (in the init's memory
/// until the exec): the command must still get what a forked child would,
/// an ignored signal still ignored (nohup(1) and friends rely on it),
/// nothing blocked, nothing caught; and isobench's own handler for SIGTERM
/// must not come through as SIGTERM ignored or blocked.
fn the_command_keeps_ignored_signals_and_gets_no_blocked_or_caught_ones() {
    use std::os::unix::process::CommandExt;
    let mut cmd = isobench();
    cmd.args(["exec", "--ns", "all", "--", "cat", "/proc/self/status"]);
    // SAFETY: signal(2) between fork and exec, async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            nix::libc::signal(nix::libc::SIGUSR1, nix::libc::SIG_IGN);
            Ok(())
        });
    }
    let out = cmd.output().expect("isobench runs");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let status = text(&out.stdout);
    let bit = |sig: i32| 1u64 << (sig - 1);
    let ignored = sig_mask(&status, "SigIgn");
    assert_ne!(ignored & bit(nix::libc::SIGUSR1), 0, "SIGUSR1 was ignored by isobench's parent: {status}");
    for sig in [nix::libc::SIGTERM, nix::libc::SIGINT, nix::libc::SIGHUP, nix::libc::SIGPIPE, nix::libc::SIGCHLD] {
        assert_eq!(ignored & bit(sig), 0, "signal {sig} ignored in the command: {status}");
    }
    assert_eq!(sig_mask(&status, "SigBlk"), 0, "{status}");
    assert_eq!(sig_mask(&status, "SigCgt"), 0, "{status}");
}

/// The host's own firewall state: `nft list ruleset`, and `iptables-save`
/// where it exists, without its dated comment lines.
fn host_rules() -> (Vec<u8>, Option<String>) {
    let nft = Command::new("nft").args(["list", "ruleset"]).output().unwrap();
    assert!(nft.status.success(), "{}", text(&nft.stderr));
    let ipt = Command::new("iptables-save")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| text(&o.stdout).lines().filter(|l| !l.starts_with('#')).collect::<Vec<_>>().join("\n"));
    (nft.stdout, ipt)
}

/// The host's own interfaces (`/sys/class/net`).
fn host_links() -> Vec<String> {
    std::fs::read_dir("/sys/class/net").unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect()
}

/// The word after `key ` in `line`.
fn word_after<'a>(line: &'a str, key: &str) -> &'a str {
    line.split_once(key).unwrap_or_else(|| panic!("no {key:?} in {line:?}")).1.split_whitespace().next().unwrap()
}

fn docker_veth_is_reached_through_the_published_port_and_leaves_nothing() {
    use std::io::{BufRead, BufReader, Read};
    let before = host_rules();
    let links_before = host_links();
    // The container serves one line on its own port 8080 only; the test
    // connects to the bridge's address and port 18080, which only the DNAT
    // of the run namespace's table can take to it.
    let mut child = Reaped(
        isobench()
            .args(["exec", "--profile", "docker", "--net", "veth", "--", "sh", "-c", "echo through-the-nat | nc -l -p 8080"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let pid = child.0.id();
    let mut err = BufReader::new(child.0.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    assert!(line.contains("(veth+bridge+NAT)"), "exec says which path the container got: {line:?}");
    let netns = word_after(&line, "network namespace ");
    let published = line.split_whitespace().find(|w| w.ends_with(":18080")).unwrap_or_else(|| panic!("no published address in {line:?}")).to_string();
    assert!(netns.starts_with(&format!("isobench-{pid}-")), "the run's own namespace: {line:?}");
    let bridge = word_after(&line, "on bridge ");
    // While it runs: the bridge and the table exist there, not on the host.
    let ns_links = text(&Command::new("ip").args(["-n", netns, "-br", "link"]).output().unwrap().stdout);
    assert!(ns_links.contains(bridge), "{ns_links}");
    let tables = text(&Command::new("ip").args(["netns", "exec", netns, "nft", "list", "tables"]).output().unwrap().stdout);
    assert!(tables.contains(&format!("isobench_{bridge}")), "{tables}");
    assert!(!host_links().iter().any(|l| l == bridge || l.starts_with("ibv")), "{:?}", host_links());
    assert_eq!(host_rules(), before, "the host's rules are untouched while the container runs");
    let ns = std::fs::File::open(format!("/run/netns/{netns}")).unwrap();
    let mut got = String::new();
    wait_until("the container's server answers on the published port", Duration::from_secs(30), || {
        let addr: std::net::SocketAddr = published.parse().unwrap();
        let read = isobench_harness::container::net::run_in_ns(std::os::fd::AsFd::as_fd(&ns), || -> std::io::Result<String> {
            let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
            let mut out = String::new();
            s.read_to_string(&mut out)?;
            Ok(out)
        })
        .unwrap();
        match read {
            Ok(text) if !text.is_empty() => {
                got = text;
                true
            }
            _ => false,
        }
    });
    assert_eq!(got.trim(), "through-the-nat");
    drop(ns);
    let status = child.0.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let mut rest = String::new();
    err.read_to_string(&mut rest).unwrap();
    assert!(rest.is_empty(), "one line on stderr: {rest}");
    // After: no namespace, veth, bridge or table anywhere; the host's rules byte-identical.
    assert!(!std::path::Path::new(&format!("/run/netns/{netns}")).exists(), "the run's namespace is gone");
    let left: Vec<_> =
        std::fs::read_dir("/run/netns").map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect()).unwrap_or_default();
    assert!(!left.iter().any(|n| n.starts_with(&format!("isobench-{pid}-"))), "{left:?}");
    assert_eq!(host_links(), links_before);
    assert_eq!(host_rules(), before, "the host's nftables and iptables rulesets are byte-identical after");
}
