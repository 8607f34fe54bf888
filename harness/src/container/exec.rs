//! `isobench exec`: any command in a new container ([`exec`]), with what it
//! runs and where ([`ExecOptions`]), its network ([`NetMode`]: none,
//! loopback, or a veth from the run's namespace, on a bridge with a
//! DNAT'd published port under `--profile docker`) and the namespaces it got
//! (`--show-ns`, [`show_ns`]).

use std::ffi::OsString;

use std::time::Duration;

use super::profile::{PreparedProfile, Profile};
use super::signals::{IgnoreQuit, StopSignals, DEFAULT_STOP_TIMEOUT};
use super::{
    decide_cgroup, default_hostname, effective_namespaces, net, rootless, spawn, ContainerError, ContainerProcess, Limits, Namespace, NamespaceSet,
    ParentSetup, PreparedRootfs, RootfsChoice, Stdio,
};
use crate::container::process::LaunchSpec;
use crate::workloads::Workloads;

/// What `isobench exec` runs, and where.
#[derive(Debug, Clone)]
pub struct ExecOptions {
    /// Namespaces to create (`--ns`); [`NamespaceSet::DEFAULT`] unless told.
    pub namespaces: NamespaceSet,
    /// `--rootfs DIR`: run in DIR (never modified by isobench; it must hold
    /// /proc, /dev and /sys directories when a mount namespace is used).
    /// `--rootfs debian`: the host distribution's rootfs, built once with
    /// debootstrap into the cache and mounted read-only.
    /// Default: the minimal rootfs (the agent, noop and a static busybox when
    /// installed), built once into the cache and bound read-only with a tmpfs
    /// on /tmp (a private writable copy without a mount namespace).
    pub rootfs: RootfsChoice,
    /// The command and its arguments; a bare name is searched in the
    /// container's PATH (/bin:/sbin:/usr/bin:/usr/sbin).
    pub command: Vec<OsString>,
    /// Host name inside a new uts namespace; `None`: `isobench-XXXX`.
    pub hostname: Option<String>,
    /// cgroup limits (`--cpus`, `--memory`, `--pids`).
    pub limits: Limits,
    /// A cgroup for the container; `None`: when the host has cgroups.
    pub cgroup: Option<bool>,
    /// Print the namespaces created, `lsns` style, on stderr (`--show-ns`).
    pub show_ns: bool,
    /// The container's network (`--net`): loopback only, or a veth pair too.
    pub net: NetMode,
    /// The security profile (`--profile`): `default` unless told.
    pub profile: Profile,
    /// Where an overlay root's upper lives (`--overlay-upper`).
    pub overlay_upper: crate::container::rootfs::UpperKind,
    /// How long a stop signal to isobench gives the container before
    /// everything in it is killed (`--stop-timeout`, `docker stop -t`).
    pub stop_timeout: Duration,
}

/// What network a container with a network namespace gets (`--net`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NetMode {
    /// Nothing: the loopback stays down, as the kernel creates it.
    None,
    /// Only its loopback, up (the default).
    #[default]
    Loopback,
    /// Loopback plus `eth0`, one end of a veth pair whose other end is in
    /// the run's private network namespace ([`net::RunNetns`]), addresses
    /// .2 (container) and .1 of a /24 that exists only there. Root only.
    /// Under a profile with the bridge layer (`--profile docker`) the host
    /// end is attached to a bridge holding .1 and the bridge's port
    /// [`net::PUBLISHED_PORT`] is DNAT'd to the container's
    /// [`net::CONTAINER_PORT`] with masquerade, as `docker run -p` does
    /// (see [`net::bridge`]); the path is then `veth+bridge+NAT`.
    Veth,
}

isobench_workloads::named_values!(NetMode, "network", { None = "none", Loopback = "loopback", Veth = "veth" });

impl ExecOptions {
    /// The defaults for `command`: default namespaces, minimal rootfs.
    pub fn new(command: Vec<OsString>) -> ExecOptions {
        ExecOptions {
            namespaces: NamespaceSet::DEFAULT,
            rootfs: RootfsChoice::Minimal,
            command,
            hostname: None,
            limits: Limits::default(),
            cgroup: None,
            show_ns: false,
            net: NetMode::Loopback,
            profile: Profile::Default,
            overlay_upper: Default::default(),
            stop_timeout: DEFAULT_STOP_TIMEOUT,
        }
    }
}

/// Runs a command in a new container, like `unshare -fp --mount-proc` with
/// the other namespaces of the set, and returns its exit status (128+n when
/// signal n killed it). Without root it runs rootless: in a user namespace
/// where the caller is root, without cgroup (limits are refused).
///
/// The container runs under `opts.profile` (see [`profile`](super::profile)):
/// by default Docker's capabilities, no_new_privs and runc's masked paths;
/// `docker` adds the seccomp filter; `bare` is namespaces only.
///
/// PID 1 is the launcher's minimal init ([`process`](super::process)): it forwards signals to
/// the command, reaps orphans and exits with the command's status; then the
/// kernel kills whatever else runs in the pid namespace, and the cgroup (when
/// there is one) is killed as a whole and removed. A SIGTERM, SIGINT or
/// SIGHUP to isobench is passed on to the init, and `opts.stop_timeout`
/// later, or at a second one, everything in the container is killed and the
/// status is 128+n, as `docker stop` does (see `signals`); SIGQUIT is
/// ignored as system(3) does. If isobench itself is killed, the container
/// dies with it (PR_SET_PDEATHSIG) and its cgroup (and a private rootfs
/// copy, without a mount namespace) are swept at the next start
/// (`cleanup::sweep`).
pub fn exec(opts: &ExecOptions, workloads: &Workloads) -> Result<i32, ContainerError> {
    exec_beside(opts, workloads, || {})
}

/// [`exec`], running `beside` in this thread once the command has been
/// started and before waiting for it (not at all when the container could
/// not be started): work that needs no second thread, and no copy of one's
/// stack in the container's init (`isobench exec` runs the start-of-run
/// sweep there).
pub fn exec_beside(opts: &ExecOptions, workloads: &Workloads, beside: impl FnOnce()) -> Result<i32, ContainerError> {
    if opts.command.is_empty() {
        return Err(ContainerError::NoCommand);
    }
    // Installed before anything is created: a SIGTERM that arrives while the
    // container is being set up is held and delivered to its init once it
    // exists, so every clean-up below still runs.
    let _quit = IgnoreQuit::new();
    let stop = StopSignals::install().map_err(|e| ContainerError::Io { context: "a pipe for isobench's stop signals".into(), source: e.into() })?;
    let profile = PreparedProfile::prepare_layers(opts.profile.layers(), opts.overlay_upper)?;
    let namespaces = effective_namespaces(opts.namespaces);
    namespaces.check_proc(!opts.namespaces.contains(Namespace::User))?;
    let with_cgroup = decide_cgroup(opts.cgroup, &opts.limits)?;
    // The network is checked before anything is built: a refusal costs nothing.
    if opts.net == NetMode::None && !namespaces.contains(Namespace::Net) {
        return Err(ContainerError::Net("--net none needs a network namespace: add net to --ns".into()));
    }
    let veth: VethSlot = Default::default();
    let bridge = profile.has(super::profile::Layer::Bridge);
    let veth_hook = if opts.net == NetMode::Veth { Some(veth_setup(namespaces, bridge, std::sync::Arc::clone(&veth))?) } else { None };
    let mount_ns = namespaces.contains(Namespace::Mount);
    let rootfs = PreparedRootfs::prepare(&opts.rootfs, workloads, mount_ns)?;
    let hostname = opts.hostname.clone().unwrap_or_else(default_hostname);
    let mut spec = LaunchSpec::new(namespaces, rootfs.path(), &opts.command, Some(&hostname))?.with_init(true).with_profile(&profile)?;
    if rootfs.read_only() {
        spec = spec.with_read_only_root(rootfs.path())?;
    }
    if with_cgroup {
        spec = spec.with_cgroup(opts.limits);
    }
    // The veth's host end lives as long as this call (in `veth`); the kernel
    // also removes the pair when the container's network namespace goes.
    if opts.net == NetMode::None {
        spec = spec.with_loopback(false);
    }
    if let Some(hook) = veth_hook {
        spec = spec.with_parent_setup(hook);
    }
    let mut child = spawn(&spec, Stdio::default())?;
    stop.to(child.pid());
    if opts.show_ns {
        eprint!("{}", show_ns(&child, namespaces));
    }
    beside();
    Ok(stop.wait(&mut child, opts.stop_timeout)?.status())
}

/// Where the hook of [`veth_setup`] leaves the veth's host end (or the
/// bridged veth with its NAT table) and the run's namespace it is in, all
/// kept for as long as the container runs. Dropped in field order: the link
/// (and table) before the namespace.
type VethSlot = std::sync::Arc<std::sync::Mutex<Option<(HostEnd, std::sync::Arc<net::RunNetns>)>>>;

/// The run namespace's end of an exec'd container's `eth0`.
#[derive(Debug)]
#[allow(dead_code)] // held for its Drop
enum HostEnd {
    Veth(net::Link),
    Bridged(net::BridgedVeth),
}

/// The line `isobench exec --net veth` prints on stderr under the bridge
/// layer: where the container's published port is reached from.
pub fn bridged_line(netns: &str, bridge: &str, subnet: &net::Subnet) -> String {
    format!(
        "isobench exec: eth0 {}/{} on bridge {bridge} in network namespace {netns} (veth+bridge+NAT); \
         {}:{} there is DNAT'd to the container's port {} (tcp, udp), e.g. `ip netns exec {netns} nc {} {}`",
        subnet.peer,
        subnet.prefix_len,
        subnet.host,
        net::PUBLISHED_PORT,
        net::CONTAINER_PORT,
        subnet.host,
        net::PUBLISHED_PORT
    )
}

/// The parent-side hook that gives a container `eth0`: a veth pair from the
/// run's network namespace, created directly in the child's (see
/// [`NetMode::Veth`]), on a bridge with the published port's NAT table when
/// `bridge` (the profile's bridge layer). Refused without root or without a
/// network namespace.
fn veth_setup(namespaces: NamespaceSet, bridge: bool, keep: VethSlot) -> Result<ParentSetup, ContainerError> {
    if rootless() {
        return Err(ContainerError::Net("--net veth needs root (CAP_NET_ADMIN on the host); use --net loopback".into()));
    }
    if !namespaces.contains(Namespace::Net) {
        return Err(ContainerError::Net("--net veth needs a network namespace: add net to --ns".into()));
    }
    let netns = net::RunNetns::shared().map_err(|e| ContainerError::Net(e.to_string()))?;
    Ok(Box::new(move |pid: nix::unistd::Pid| {
        let subnet = netns.try_allocate_subnet().map_err(|e| e.to_string())?;
        let path = format!("/proc/{pid}/ns/net");
        let peer = std::fs::File::open(&path).map_err(|e| format!("open {path}: {e}"))?;
        let peer = std::os::fd::AsFd::as_fd(&peer);
        let end = match bridge {
            true => {
                let name = format!("ibr{pid}");
                let bridged = netns.add_bridged_veth(&name, &format!("ibv{pid}"), peer, "eth0", &subnet).map_err(|e| e.to_string())?;
                eprintln!("{}", bridged_line(netns.name(), &name, &subnet));
                HostEnd::Bridged(bridged)
            }
            false => HostEnd::Veth(netns.add_veth(&format!("ibv{pid}"), peer, "eth0", &subnet, None).map_err(|e| e.to_string())?),
        };
        *keep.lock().unwrap_or_else(|e| e.into_inner()) = Some((end, netns));
        Ok(())
    }))
}

/// `lsns`-style lines for `--show-ns`: each kind, its inode on the host and
/// in the container, and whether the container got a new one.
pub fn show_ns(child: &ContainerProcess, asked: NamespaceSet) -> String {
    let mut out = format!("{:<7} {:>12} {:>12}  {}\n", "NS", "HOST", "CONTAINER", "STATUS");
    for info in child.namespaces() {
        let status = match (info.is_new(), asked.contains(info.namespace)) {
            (true, _) => "new",
            (false, true) => "NOT NEW",
            (false, false) => "shared with the host",
        };
        out.push_str(&format!("{:<7} {:>12} {:>12}  {}\n", info.namespace.as_str(), info.host, info.container, status));
    }
    if let Some(cg) = child.cgroup() {
        for p in cg.paths() {
            out.push_str(&format!("cgroup  {} ({})\n", p.display(), cg.mode()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_network_parses_back_and_the_error_names_every_one() {
        let e = "bridge".parse::<NetMode>().unwrap_err();
        assert_eq!(e, "unknown network \"bridge\"; choose from none, loopback or veth");
        for m in NetMode::ALL {
            assert_eq!(m.to_string().parse::<NetMode>(), Ok(m));
            assert!(e.contains(m.as_str()));
        }
        assert_eq!(NetMode::default(), NetMode::Loopback);
    }
}
