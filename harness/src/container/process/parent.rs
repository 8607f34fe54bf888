//! The parent's side of a launch ([`spawn`]): the pipes and the handshake
//! socket, the cgroup made before or after the clone, the clone itself, then
//! the uid/gid maps, the cgroup placement and the parent-side setup while
//! the child sets up, and the child's report read until it has exec'd.

use std::os::fd::AsRawFd;

use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
use nix::sys::signal::{kill, Signal};

use super::channel::{self, read_report, STAGE_EXEC};
use super::child::ChildCtx;
use super::clone::{clone_child, ChildStack};
use super::timeline::{monotonic_ns, ChildStamps, LaunchTimes, Stamp};
use super::{ContainerProcess, LaunchSpec, Stdio};
use crate::container::cgroup::{Cgroup, CgroupMode, Placement};
use crate::container::ns::Namespace;
use crate::container::ContainerError;

/// Clones the container's init into new namespaces and execs the command
/// there. Returns once the command has been exec'd (or the setup failed, in
/// which case the error names the step and the child is already reaped and
/// its cgroup removed).
pub fn spawn(spec: &LaunchSpec, stdio: Stdio<'_>) -> Result<ContainerProcess, ContainerError> {
    let mut times = LaunchTimes { spawn_ns: monotonic_ns(), ..LaunchTimes::default() };
    let pipe =
        |what: &str| nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| ContainerError::Io { context: format!("pipe for {what}"), source: e.into() });
    let (err_r, err_w) = pipe("setup errors")?;
    let (alive_r, alive_w) = pipe("parent liveness")?;
    // A v1 (or hybrid) group is made after the clone, while the child sets
    // up, and the child moves itself in (see `Placement`); a v2 group is
    // made before, and the child is cloned into it (`clone_child`).
    let make_cgroup = || match (&spec.cgroup, &spec.cgroup_hold) {
        (Some(limits), Some(hold)) => Cgroup::create_in(hold.layout(), limits).map(Some),
        (Some(limits), None) => Cgroup::create(limits).map(Some),
        (None, _) => Ok(None),
    };
    let cgroup_after_clone = match &spec.cgroup_hold {
        Some(hold) => matches!(hold.layout().mode(), CgroupMode::V1 | CgroupMode::Hybrid),
        None => false,
    };
    let cgroup = if cgroup_after_clone { None } else { make_cgroup()? };
    // Taken before the clone: a spec whose hook already ran fails here, with
    // nothing started yet.
    let parent_setup = match &spec.parent_setup {
        Some(slot) => Some(slot.lock().unwrap_or_else(|e| e.into_inner()).take().ok_or_else(|| {
            ContainerError::ParentSetup("the parent setup of this launch spec already ran in an earlier spawn; build a new spec".into())
        })?),
        None => None,
    };
    let handshake = spec.cgroup.is_some() || spec.id_maps.is_some() || parent_setup.is_some();
    let go = if handshake { Some(channel::handshake_socket()?) } else { None };
    let release = if spec.init { Some(pipe("init release")?) } else { None };
    let stamps = ChildStamps::new().map_err(|e| ContainerError::Io { context: "map the launch's timeline page".into(), source: e.into() })?;
    let ctx = ChildCtx {
        spec,
        err_fd: err_w.as_raw_fd(),
        alive_r: alive_r.as_raw_fd(),
        alive_w: alive_w.as_raw_fd(),
        go_r: go.as_ref().map(|(r, _)| r.as_raw_fd()),
        go_w: go.as_ref().map(|(_, w)| w.as_raw_fd()),
        release_r: release.as_ref().map(|(r, _)| r.as_raw_fd()),
        stdin: stdio.stdin.map(|f| f.as_raw_fd()),
        stdout: stdio.stdout.map(|f| f.as_raw_fd()),
        stamps: stamps.as_ptr(),
    };
    let mut stack = ChildStack::new().map_err(|e| ContainerError::Io { context: "map the child's stack".into(), source: e.into() })?;
    let mut flags = spec.clone_flags();
    if spec.shares_memory() {
        flags |= CloneFlags::CLONE_VM;
    }
    // SAFETY: the callback only makes system calls (see the module comment)
    // and never returns (execve or _exit). Without CLONE_VM the child gets a
    // copy of our memory, so the borrowed `ctx` stays valid in it. With
    // CLONE_VM (see `shares_memory`) it runs in our memory, on `stack`, and
    // reads `spec` and `ctx`, which outlive its pre-exec life: this function
    // returns only after the error pipe's end-of-file (the child exec'd or
    // died) or, on every error path, after `process` is dropped, which kills
    // and reaps the child, and `process` is declared after `stack` and `ctx`
    // so it is dropped first.
    let into_cgroup = cgroup.as_ref().map(Cgroup::clone_into_fd).transpose()?.flatten();
    times.clone_ns = monotonic_ns();
    let (pid, born_in_group) = unsafe { clone_child(&ctx, stack.as_mut_slice(), flags, into_cgroup.as_ref().map(|f| f.as_raw_fd())) }
        .map_err(|errno| ContainerError::Clone { namespaces: spec.namespaces, errno })?;
    times.cloned_ns = monotonic_ns();
    if born_in_group {
        times.cgroup_placed_ns = Some(times.cloned_ns);
    }
    drop(into_cgroup);
    let (release_r, release_w) = release.map_or((None, None), |(r, w)| (Some(r), Some(w)));
    drop(release_r);
    let mut process = ContainerProcess {
        pid,
        status: None,
        cgroup,
        usage: None,
        release: release_w,
        _dev: spec.dev.clone(),
        pid_ns: spec.namespaces.contains(Namespace::Pid),
        times,
    };
    let mut parent_error = None;
    if let Some((go_r, go_w)) = go {
        drop(go_r);
        // Map its ids, place it, run the parent setup, then let it go on; if
        // any fails, dropping go_w unwritten makes it exit, and `process`
        // (dropped on the way out) kills and reaps it. The child may be in
        // its own setup meanwhile (see `waits_before_setup`) and fail there:
        // its report, read below, is then the error that counts.
        let handshake = || -> Result<(), ContainerError> {
            if let Some(maps) = &spec.id_maps {
                maps.write(pid)?;
            }
            let mut tasks = Vec::new();
            if cgroup_after_clone {
                process.cgroup = make_cgroup()?;
            }
            if let (false, Some(cgroup)) = (born_in_group, &process.cgroup) {
                match cgroup.placement()? {
                    Some(Placement::MoveSelf(fds)) => tasks = fds,
                    None => cgroup.add(pid)?,
                }
            }
            if let Some(setup) = parent_setup {
                setup(pid).map_err(ContainerError::ParentSetup)?;
            }
            channel::release(&go_w, &tasks)
        };
        parent_error = handshake().err();
        if parent_error.is_some() {
            // Not waiting for the child to notice: its report, if it failed
            // first, is already in the pipe.
            let _ = kill(pid, Signal::SIGKILL);
        }
    }
    // Our copy of the write end must go, or the read below never ends.
    drop(err_w);
    let report = read_report(&err_r);
    process.times.exec_seen_ns = monotonic_ns();
    // The child has exec'd or exited: nothing writes the page any more.
    process.times.child_started_ns = stamps.read(Stamp::Started);
    process.times.mounts_done_ns = stamps.read(Stamp::MountsDone);
    process.times.cgroup_placed_ns = process.times.cgroup_placed_ns.or(stamps.read(Stamp::CgroupPlaced));
    process.times.exec_ns = stamps.read(Stamp::Exec);
    drop(alive_w);
    match report {
        Ok(None) if parent_error.is_none() => Ok(process),
        Ok(None) => Err(parent_error.expect("checked above")),
        Ok(Some((stage, errno))) => {
            let _ = process.wait();
            Err(match stage {
                STAGE_EXEC => ContainerError::Exec { command: spec.argv[0].to_string_lossy().into_owned(), errno },
                _ => {
                    let step = spec.describe(stage);
                    let hint = setup_hint(&step, errno, spec.namespaces, &std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default());
                    ContainerError::Setup { step, errno, hint }
                }
            })
        }
        Err(e) => Err(ContainerError::Io { context: "read the container's setup report".into(), source: e }),
    }
}

/// The cause and remedy of a setup failure whose errno alone misleads:
/// a new procfs refused with EPERM in a user namespace. The kernel mounts
/// proc there only when the host's /proc is "fully visible", with nothing
/// mounted over a non-empty part of it (fs/namespace.c, mount_too_revealing);
/// a tmpfs over /proc/acpi, or another runtime's masks, make it refuse.
/// `mountinfo`: the host's /proc/self/mountinfo, for the mounts to name.
pub(crate) fn setup_hint(step: &str, errno: nix::errno::Errno, namespaces: crate::container::NamespaceSet, mountinfo: &str) -> String {
    if errno != nix::errno::Errno::EPERM || !step.starts_with("mount proc ") || !namespaces.contains(crate::container::Namespace::User) {
        return String::new();
    }
    // Field 5 is the mount point, field 9 (after " - ") the fs type.
    let over: Vec<String> = mountinfo
        .lines()
        .filter_map(|l| {
            let point = l.split(' ').nth(4)?;
            let fstype = l.split(" - ").nth(1)?.split(' ').next()?;
            (point.starts_with("/proc/") && !point.starts_with("/proc/sys/fs/binfmt_misc")).then(|| format!("{point} ({fstype})"))
        })
        .collect();
    let which = match over.is_empty() {
        true => String::new(),
        false => format!(": {}", over.join(", ")),
    };
    format!(
        " (the kernel refuses a new procfs in a user namespace while the host's /proc has file systems mounted over parts of it{which}; \
         unmount them, run as root, or leave pid out of --ns)"
    )
}

#[cfg(test)]
mod hint_tests {
    use super::setup_hint;
    use nix::errno::Errno;

    /// The trial's host: `mount -t tmpfs none /proc/acpi`, a rootless exec.
    #[test]
    fn a_refused_procfs_in_a_user_namespace_names_the_mounts_over_proc_and_the_remedy() {
        let mountinfo = "22 1 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw\n\
                         40 22 0:35 / /proc/sys/fs/binfmt_misc rw,relatime shared:20 - autofs systemd-1 rw\n\
                         90 22 0:50 / /proc/acpi rw,relatime - tmpfs none rw\n";
        let rootless = "user,pid,mnt".parse().unwrap();
        let hint = setup_hint("mount proc on proc", Errno::EPERM, rootless, mountinfo);
        assert_eq!(
            hint,
            " (the kernel refuses a new procfs in a user namespace while the host's /proc has file systems mounted over parts of it: /proc/acpi (tmpfs); \
             unmount them, run as root, or leave pid out of --ns)"
        );
        assert_eq!(setup_hint("mount proc on proc", Errno::EPERM, "pid,mnt".parse().unwrap(), mountinfo), "", "as root the errno is the cause");
        assert_eq!(setup_hint("mount proc on proc", Errno::EBUSY, rootless, mountinfo), "");
        assert_eq!(setup_hint("mount sysfs on sys", Errno::EPERM, rootless, mountinfo), "");
    }
}
