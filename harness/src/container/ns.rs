//! Linux namespaces: which ones a container gets, and the clone(2) flags for
//! them.
//!
//! A namespace wraps one global resource so that the processes inside see
//! their own instance of it (namespaces(7)): mount table (mnt), host and
//! domain name (uts), System V IPC and POSIX message queues (ipc), network
//! devices, addresses and ports (net), process IDs (pid), user and group IDs
//! (user) and the cgroup root (cgroup). Each one is switchable, so the cost of
//! each can be measured on its own (`--ns pid,net`, `--ns all`, `--ns none`).

use std::fmt;
use std::str::FromStr;

use nix::sched::CloneFlags;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NsError {
    #[error("unknown namespace {0:?}; use a comma-separated list of {names}, or all, or none", names = Namespace::names())]
    Unknown(String),
    #[error("{which} without mnt would leave the container an empty /proc (it runs chrooted in its rootfs, and a new /proc can be mounted only in a mount namespace of its own): add mnt to --ns")]
    ProcNeedsMount { which: String },
}

/// One kind of namespace, named as in `/proc/<pid>/ns/` and `lsns`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Namespace {
    User,
    Pid,
    Net,
    Ipc,
    Uts,
    Mount,
    Cgroup,
}

/// The order in which namespaces are created when they cannot all come from
/// one clone(2) (rootless mode, setns/unshare steps, joining existing ones):
///
/// 1. `user` first: every other namespace is owned by the user namespace that
///    is current when it is created, and the capabilities needed to create
///    them (and to mount, set the hostname, configure the network) come from
///    being root in that user namespace once its uid/gid maps are written.
/// 2. `pid` next: unshare(CLONE_NEWPID) moves only the *children* into the
///    new namespace, so it must exist before the container's init is forked.
/// 3. `net`, `ipc`, `uts`: independent of each other.
/// 4. `mnt` after `net`: sysfs mounted inside shows the network devices of
///    the net namespace current at mount time, and the kernel refuses the
///    mount unless the mounter owns that net namespace.
/// 5. `cgroup` last: the cgroup namespace's root is the cgroup the process is
///    in when it is created, so it comes after the process has been moved
///    into the container's cgroup.
///
/// The launcher's single clone(2) creates all but the cgroup namespace at
/// once (the kernel itself creates the user namespace first and makes it the
/// owner of the others); the child then waits until the parent has written
/// its uid/gid maps and placed it in its cgroup, and unshares the cgroup
/// namespace last.
pub const CREATION_ORDER: [Namespace; 7] =
    [Namespace::User, Namespace::Pid, Namespace::Net, Namespace::Ipc, Namespace::Uts, Namespace::Mount, Namespace::Cgroup];

impl Namespace {
    /// The kernel's name (`/proc/self/ns/<name>`).
    pub fn as_str(self) -> &'static str {
        match self {
            Namespace::User => "user",
            Namespace::Pid => "pid",
            Namespace::Net => "net",
            Namespace::Ipc => "ipc",
            Namespace::Uts => "uts",
            Namespace::Mount => "mnt",
            Namespace::Cgroup => "cgroup",
        }
    }

    /// The clone(2)/unshare(2) flag that creates it.
    pub fn clone_flag(self) -> CloneFlags {
        match self {
            Namespace::User => CloneFlags::CLONE_NEWUSER,
            Namespace::Pid => CloneFlags::CLONE_NEWPID,
            Namespace::Net => CloneFlags::CLONE_NEWNET,
            Namespace::Ipc => CloneFlags::CLONE_NEWIPC,
            Namespace::Uts => CloneFlags::CLONE_NEWUTS,
            Namespace::Mount => CloneFlags::CLONE_NEWNS,
            Namespace::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }

    /// The supported names, for messages.
    fn names() -> String {
        NamespaceSet::all().names().join(", ")
    }

    fn parse(name: &str) -> Option<Namespace> {
        match name {
            "mount" => Some(Namespace::Mount),
            "network" => Some(Namespace::Net),
            _ => CREATION_ORDER.into_iter().find(|ns| ns.as_str() == name),
        }
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of namespaces, each switchable. Parses from `--ns` syntax:
/// `pid,mnt,uts,ipc,net`, `all` (every supported one) or `none`; `mount` and
/// `network` are accepted as aliases.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct NamespaceSet(u8);

impl NamespaceSet {
    /// No new namespace: the command runs chrooted into the rootfs, nothing else.
    pub const NONE: NamespaceSet = NamespaceSet(0);

    /// What the container environment and `isobench exec` use unless told
    /// otherwise: pid, mnt, uts, ipc and net.
    pub const DEFAULT: NamespaceSet = NamespaceSet(
        (1 << Namespace::Pid as u8)
            | (1 << Namespace::Mount as u8)
            | (1 << Namespace::Uts as u8)
            | (1 << Namespace::Ipc as u8)
            | (1 << Namespace::Net as u8),
    );

    /// The word for every namespace.
    pub const ALL_WORD: &'static str = "all";
    /// The word for no namespace.
    pub const NONE_WORD: &'static str = "none";

    /// All seven (`--ns all`).
    pub fn all() -> NamespaceSet {
        CREATION_ORDER.into_iter().collect()
    }

    pub fn contains(self, ns: Namespace) -> bool {
        self.0 & ns.bit() != 0
    }

    pub fn insert(&mut self, ns: Namespace) {
        self.0 |= ns.bit();
    }

    pub fn remove(&mut self, ns: Namespace) {
        self.0 &= !ns.bit();
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The members, in [`CREATION_ORDER`].
    /// Refuses a set whose container would have an empty /proc: a pid or
    /// user namespace without a mount namespace (the process is chrooted
    /// into the rootfs, whose /proc cannot be mounted without leaking the
    /// mount onto the host). `user_added`: the user namespace was added
    /// because isobench runs without root, which the error says.
    pub fn check_proc(self, user_added: bool) -> Result<(), NsError> {
        if self.contains(Namespace::Mount) {
            return Ok(());
        }
        let mut which: Vec<&str> = Vec::new();
        if self.contains(Namespace::Pid) {
            which.push("--ns pid");
        }
        if self.contains(Namespace::User) {
            which.push(if user_added { "the user namespace added without root" } else { "--ns user" });
        }
        match which.is_empty() {
            true => Ok(()),
            false => Err(NsError::ProcNeedsMount { which: which.join(" and ") }),
        }
    }

    pub fn iter(self) -> impl Iterator<Item = Namespace> {
        CREATION_ORDER.into_iter().filter(move |ns| self.contains(*ns))
    }

    /// Flags for one clone(2) creating all members.
    pub fn clone_flags(self) -> CloneFlags {
        self.iter().fold(CloneFlags::empty(), |acc, ns| acc | ns.clone_flag())
    }

    /// Names in creation order, for metadata and messages.
    pub fn names(self) -> Vec<&'static str> {
        self.iter().map(Namespace::as_str).collect()
    }

    /// Every word a `--ns` list takes: the seven names in creation order,
    /// then `all` and `none`.
    pub fn words() -> impl Iterator<Item = &'static str> {
        CREATION_ORDER.into_iter().map(Namespace::as_str).chain([NamespaceSet::ALL_WORD, NamespaceSet::NONE_WORD])
    }
}

impl FromIterator<Namespace> for NamespaceSet {
    fn from_iter<I: IntoIterator<Item = Namespace>>(iter: I) -> Self {
        let mut set = NamespaceSet::NONE;
        for ns in iter {
            set.insert(ns);
        }
        set
    }
}

impl FromStr for NamespaceSet {
    type Err = NsError;

    fn from_str(s: &str) -> Result<Self, NsError> {
        match s.trim() {
            NamespaceSet::ALL_WORD => return Ok(NamespaceSet::all()),
            NamespaceSet::NONE_WORD | "" => return Ok(NamespaceSet::NONE),
            _ => {}
        }
        let mut set = NamespaceSet::NONE;
        for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let ns = Namespace::parse(name).ok_or_else(|| NsError::Unknown(name.to_string()))?;
            set.insert(ns);
        }
        Ok(set)
    }
}

impl fmt::Display for NamespaceSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("none");
        }
        f.write_str(&self.names().join(","))
    }
}

impl fmt::Debug for NamespaceSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NamespaceSet({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lists_in_any_order_and_prints_in_creation_order() {
        let set: NamespaceSet = "net, uts,pid".parse().unwrap();
        assert_eq!(set.names(), ["pid", "net", "uts"]);
        assert_eq!(set.to_string(), "pid,net,uts");
        assert!(set.contains(Namespace::Net) && !set.contains(Namespace::Mount));
        assert_eq!(set.clone_flags(), CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWUTS);
    }

    #[test]
    fn default_is_the_five_of_the_issue() {
        let set: NamespaceSet = "pid,mnt,uts,ipc,net".parse().unwrap();
        assert_eq!(set, NamespaceSet::DEFAULT);
        assert_eq!(
            NamespaceSet::DEFAULT.clone_flags(),
            CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWUTS | CloneFlags::CLONE_NEWIPC | CloneFlags::CLONE_NEWNET
        );
        assert_eq!("mount,network,pid,uts,ipc".parse::<NamespaceSet>().unwrap(), NamespaceSet::DEFAULT);
    }

    #[test]
    fn all_and_none() {
        let all: NamespaceSet = "all".parse().unwrap();
        assert_eq!(all.to_string(), "user,pid,net,ipc,uts,mnt,cgroup");
        let none: NamespaceSet = "none".parse().unwrap();
        assert!(none.is_empty());
        assert_eq!(none.clone_flags(), CloneFlags::empty());
        assert_eq!(none.to_string(), "none");
    }

    #[test]
    fn unknown_names_are_refused_by_name_and_user_is_accepted() {
        let err = "pid,nett".parse::<NamespaceSet>().unwrap_err();
        assert_eq!(err, NsError::Unknown("nett".into()));
        assert_eq!(
            "pid".parse::<NamespaceSet>().unwrap().check_proc(false).unwrap_err().to_string(),
            "--ns pid without mnt would leave the container an empty /proc (it runs chrooted in its rootfs, and a new /proc can be mounted only in a mount namespace of its own): add mnt to --ns"
        );
        let e = "user,pid".parse::<NamespaceSet>().unwrap().check_proc(true).unwrap_err().to_string();
        assert!(e.starts_with("--ns pid and the user namespace added without root without mnt"), "{e}");
        assert!("user".parse::<NamespaceSet>().unwrap().check_proc(false).unwrap_err().to_string().starts_with("--ns user without mnt"));
        for ok in ["pid,mnt", "user,mnt", "none", "net,uts,ipc", "all"] {
            assert_eq!(ok.parse::<NamespaceSet>().unwrap().check_proc(false), Ok(()), "{ok}");
        }
        let msg = err.to_string();
        assert_eq!(msg, "unknown namespace \"nett\"; use a comma-separated list of user, pid, net, ipc, uts, mnt, cgroup, or all, or none");
        assert!(!msg.ends_with('.'));
        assert_eq!("pid,user".parse::<NamespaceSet>().unwrap().names(), ["user", "pid"]);
    }

    #[test]
    fn creation_order_has_every_namespace_once_user_first_cgroup_last() {
        let mut sorted = CREATION_ORDER;
        sorted.sort();
        sorted.windows(2).for_each(|w| assert_ne!(w[0], w[1]));
        assert_eq!(CREATION_ORDER[0], Namespace::User);
        assert_eq!(CREATION_ORDER[6], Namespace::Cgroup);
        let pos = |ns| CREATION_ORDER.iter().position(|x| *x == ns).unwrap();
        assert!(pos(Namespace::Net) < pos(Namespace::Mount));
    }

    #[test]
    fn every_word_parses_and_an_unknown_one_names_the_choices() {
        for w in NamespaceSet::words() {
            assert!(w.parse::<NamespaceSet>().is_ok(), "{w}");
        }
        assert_eq!(NamespaceSet::words().count(), CREATION_ORDER.len() + 2);
        let e = "pid,time".parse::<NamespaceSet>().unwrap_err().to_string();
        assert_eq!(e, "unknown namespace \"time\"; use a comma-separated list of user, pid, net, ipc, uts, mnt, cgroup, or all, or none");
    }

    #[test]
    fn insert_remove() {
        let mut set = NamespaceSet::DEFAULT;
        set.remove(Namespace::Net);
        assert_eq!(set.to_string(), "pid,ipc,uts,mnt");
        set.insert(Namespace::Cgroup);
        assert!(set.contains(Namespace::Cgroup));
    }
}
