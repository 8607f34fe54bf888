//! The run's network namespace ([`RunNetns`]): made the way `ip netns add`
//! makes one and bound at `/run/netns/isobench-<pid>-<seq>`, entered by a
//! thread of its own for each request ([`run_in_ns`]), removed on drop, and
//! swept at the next start when a killed run left it ([`sweep`]).

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, Weak};

use nix::sched::CloneFlags;

use super::rtnl::Rtnl;
use super::{io_err, NetError};
use crate::leftovers;

/// Where network namespaces are bound by name (iproute2's NETNS_RUN_DIR), so
/// that `ip netns` sees them.
pub const NETNS_DIR: &str = "/run/netns";

/// A network namespace of this run, bound at /run/netns/NAME; removed on drop.
#[derive(Debug)]
pub struct RunNetns {
    pub(super) name: String,
    pub(super) path: PathBuf,
    /// Keeps an fd of the namespace for setns(2); closed on drop, after the
    /// unmount, so that nothing of ours pins the namespace any more.
    pub(super) file: File,
    /// The namespace's inode (nsfs), which tells it apart from any later
    /// namespace bound at the same path.
    pub(super) ino: u64,
    /// Subnets handed out so far.
    pub(super) subnets: AtomicU32,
}

/// The namespace [`RunNetns::shared`] hands out while anyone holds it.
static SHARED: Mutex<Weak<RunNetns>> = Mutex::new(Weak::new());

impl RunNetns {
    /// Creates a fresh network namespace bound at
    /// `/run/netns/isobench-<pid>-<seq>` (visible to `ip netns list`), with
    /// loopback up inside. Root only ([`NetError::NotRoot`] otherwise).
    pub fn create() -> Result<RunNetns, NetError> {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let what = "network namespace";
        std::fs::create_dir_all(NETNS_DIR).map_err(io_err(what, format!("create {NETNS_DIR}")))?;
        // An empty file to bind the namespace onto. `create_new` skips a name
        // left by an earlier, killed process that had our pid.
        let (name, path) = loop {
            let name = leftovers::name(SEQ.fetch_add(1, Ordering::Relaxed));
            let path = Path::new(NETNS_DIR).join(&name);
            match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(_) => break (name, path),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(io_err(what, format!("create {}", path.display()))(e)),
            }
        };
        let made = std::thread::scope(|s| {
            s.spawn(|| -> Result<(), NetError> {
                // Only this thread enters the new namespace; it ends right after.
                nix::sched::unshare(CloneFlags::CLONE_NEWNET).map_err(|e| io_err(what, "unshare(CLONE_NEWNET)")(e.into()))?;
                nix::mount::mount(Some("/proc/thread-self/ns/net"), &path, None::<&str>, nix::mount::MsFlags::MS_BIND, None::<&str>)
                    .map_err(|e| io_err(what, format!("bind-mount it on {}", path.display()))(e.into()))?;
                let mut rtnl = Rtnl::open().map_err(io_err(what, "open a netlink socket"))?;
                let lo =
                    rtnl.link("lo").map_err(io_err(what, "find lo"))?.ok_or_else(|| NetError::NoSuchLink { name: "lo".into(), ns: name.clone() })?;
                rtnl.set_up(lo.header.index, None).map_err(io_err(what, "set lo up"))
            })
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
        });
        let opened = made.and_then(|()| File::open(&path).map_err(io_err(what, format!("open {}", path.display()))));
        let file = match opened {
            Ok(f) => f,
            Err(e) => {
                unbind(&path);
                return Err(e);
            }
        };
        let ino = file.metadata().map_err(io_err(what, format!("stat {}", path.display())))?.ino();
        Ok(RunNetns { name, path, file, ino, subnets: AtomicU32::new(0) })
    }

    /// The process' shared namespace: created on the first call, the same one
    /// returned while any `Arc` of it is alive, removed when the last one drops.
    pub fn shared() -> Result<Arc<RunNetns>, NetError> {
        let mut shared = SHARED.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(ns) = shared.upgrade() {
            return Ok(ns);
        }
        let ns = Arc::new(RunNetns::create()?);
        *shared = Arc::downgrade(&ns);
        Ok(ns)
    }

    /// `isobench-<pid>-<seq>`, the name `ip netns` knows it by.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// /run/netns/NAME.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// An open fd of the namespace, for setns(2) (e.g. in a child's pre_exec).
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Runs `f` on a new thread that has setns(2)'d into this namespace, and
    /// returns its result; sockets `f` creates stay in this namespace. A
    /// panic in `f` is resumed on the caller's thread.
    pub fn run_in<T: Send>(&self, f: impl FnOnce() -> T + Send) -> Result<T, NetError> {
        run_in_ns(self.file.as_fd(), f)
    }
}

impl Drop for RunNetns {
    fn drop(&mut self) {
        unbind(&self.path);
        // `file` closes after this: then nothing of ours refers to the
        // namespace and the kernel frees it with the links in it.
    }
}

/// Detaches the namespace mount at `path` (if any) and removes the file.
fn unbind(path: &Path) -> bool {
    // EINVAL: not a mount point (bind never made), which is fine.
    let _ = nix::mount::umount2(path, nix::mount::MntFlags::MNT_DETACH);
    match std::fs::remove_file(path) {
        Ok(()) => true,
        Err(e) => e.kind() == io::ErrorKind::NotFound,
    }
}

/// Runs `f` on a new thread that has setns(2)'d into the network namespace
/// `ns` (any open nsfs file of one, e.g. `/proc/<pid>/ns/net`), and returns its
/// result; sockets `f` creates stay in that namespace. A panic in `f` is
/// resumed on the caller's thread.
pub fn run_in_ns<T: Send>(ns: BorrowedFd<'_>, f: impl FnOnce() -> T + Send) -> Result<T, NetError> {
    std::thread::scope(|s| {
        s.spawn(|| {
            // setns(2) changes the network namespace of this thread only.
            nix::sched::setns(ns, CloneFlags::CLONE_NEWNET).map_err(|e| io_err("enter network namespace", "setns(2)")(e.into()))?;
            Ok(f())
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

/// Removes the `/run/netns/isobench-<pid>-<seq>` entries whose pid no longer
/// runs (namespaces of killed runs); the kernel then frees each namespace
/// and every link in it. Returns what was removed. Called at every start;
/// touches nothing when isobench itself runs in a pid namespace other than
/// the host's (a live owner could not be seen from there).
pub fn sweep() -> Vec<PathBuf> {
    sweep_at(Path::new(NETNS_DIR))
}

/// [`sweep`] in another directory than /run/netns.
pub fn sweep_at(dir: &Path) -> Vec<PathBuf> {
    if !leftovers::in_initial_pid_namespace() {
        return Vec::new();
    }
    leftovers::sweep(dir, leftovers::counted_owner_pid, |e| unbind(&e.path()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweep_removes_entries_of_dead_pids_only() {
        let dir = tempfile::tempdir().unwrap();
        // i32::MAX is above any pid_max, so never a live process.
        let dead = dir.path().join(format!("isobench-{}-0", i32::MAX));
        let ours = dir.path().join(leftovers::name(0));
        let other = dir.path().join("someone-elses");
        for p in [&dead, &ours, &other] {
            std::fs::write(p, "").unwrap();
        }
        let removed = sweep_at(dir.path());
        if !leftovers::in_initial_pid_namespace() {
            assert!(removed.is_empty());
            return;
        }
        assert_eq!(removed, vec![dead.clone()]);
        assert!(!dead.exists() && ours.exists() && other.exists());
    }
}
