//! The container's process: clone(2) into new namespaces, and what the child
//! does before it execs the command, which then runs as the namespace's PID 1.
//!
//! The harness is multi-threaded (cargo test, criterion). A child cloned from
//! a multi-threaded process holds a copy of memory in which another thread may
//! have owned the allocator's lock (or, with CLONE_VM, which the launcher
//! uses unless an init is put in front, shares that memory while the other
//! threads run: see `LaunchSpec::shares_memory`), so the child must not
//! allocate or lock:
//! [`LaunchSpec`] prepares every C string, pointer array and the mount plan
//! before the clone, and the child only makes system calls. A failure is
//! reported to the parent as 8 bytes (stage, errno) on a close-on-exec pipe,
//! whose end-of-file without data tells the parent the exec succeeded (the
//! fork/exec error pipe of posix_spawn and Rust's std::process).
//!
//! Lifetime: the child sets PR_SET_PDEATHSIG(SIGKILL), so if isobench dies
//! (even by SIGKILL) its container's PID 1 dies, and with it every process in
//! the pid namespace, and with them the mount namespace and its mounts. With
//! a cgroup ([`LaunchSpec::with_cgroup`]) the group is killed as a whole when
//! the container ends, and a group left by a killed isobench is swept at the
//! next start.
//!
//! The handshake: after the clone the parent writes the child's uid/gid
//! maps, makes its cgroup and runs a parent-side setup
//! ([`LaunchSpec::with_parent_setup`], e.g. a veth into the child's network
//! namespace), then sends one byte on a socket pair; without any of the
//! three there is no handshake at all. The child meanwhile mounts its
//! rootfs, sets its hostname and brings its loopback up, and waits for the
//! byte only before it execs, so the two halves overlap (it waits before
//! its mounts instead when they need its ids mapped or a parent setup is
//! promised first: `LaunchSpec::waits_before_setup`).
//!
//! cgroup placement: on v1 and hybrid hosts the byte carries the group's
//! `tasks` files (SCM_RIGHTS) and the child moves itself by writing `0` to
//! each, which the kernel does without the global lock a parent's
//! `cgroup.procs` write takes (see [`Placement`](crate::container::cgroup::Placement)); on v2 the group is made
//! before the clone and the child is born in it (clone3 with
//! CLONE_INTO_CGROUP), and only without that does the parent write the
//! child's pid into `cgroup.procs`. Either way the child execs already
//! limited and accounted, and creates its cgroup namespace
//! (unshare(CLONE_NEWCGROUP)) only after, so the namespace's root is the
//! container's own group rather than isobench's.
//!
//! PID 1 ([`LaunchSpec::with_init`]): a command that was not written to be an
//! init (a shell, `sleep`) neither reaps the orphans re-parented to it nor
//! gets the default action of SIGTERM (the kernel protects a namespace's init
//! from signals it has no handler for). In init mode the child starts the
//! command after the setup (as posix_spawn does: CLONE_VM|CLONE_VFORK, no
//! copy of memory) and stays behind as a minimal init, as tini and
//! `docker --init` provide, which forwards SIGTERM, SIGINT, SIGHUP, SIGQUIT,
//! SIGUSR1/2 and SIGWINCH to the command, reaps every zombie, and exits with
//! the command's status (128+n when signal n killed it). It too only makes
//! system calls: it is still the clone of a multi-threaded process.
//!
//! - [`spec`]: what to launch ([`LaunchSpec`]), the uid/gid maps, `PATH`
//! - `parent`: the parent's side, [`spawn`]
//! - `clone`: the raw clone(2)/clone3(2) and the child's stack
//! - `child`: the child's setup between clone and exec
//! - `channel`: the failure report and the handshake between the two
//! - `harden`: what the profile drops before exec (capabilities,
//!   no_new_privs, the seccomp filter)
//! - `pid1`: the minimal init of init mode
//! - [`handle`]: the parent's handle on the running container
//!   ([`ContainerProcess`]: wait, kill, namespaces)
//! - [`timeline`]: when each step of a launch happened ([`LaunchTimes`])

mod channel;
mod child;
mod clone;
pub mod handle;
mod harden;
mod parent;
mod pid1;
pub mod spec;
pub mod timeline;

pub use handle::{ContainerProcess, NsInfo};
pub use parent::spawn;
pub use spec::{container_environment, IdMaps, LaunchSpec, ParentSetup, Stdio, CONTAINER_PATH};
pub use timeline::{monotonic_ns, LaunchTimes};
