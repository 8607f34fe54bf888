//! A real distribution rootfs (`--rootfs debian`): Debian's own minimal
//! system, built once with `debootstrap --variant=minbase SUITE DIR MIRROR`
//! from the host's package mirror into the cache
//! (`<cache>/rootfs/<id>-<suite>/`, e.g. `debian-bookworm`), with isobench's
//! static agent and noop at `/isobench-agent` and `/noop` as in the minimal
//! rootfs. It shows the numbers inside the kind of image users deploy (a
//! dynamically linked /bin/sh, a full /etc), not only isobench's own.
//!
//! Packages on request (`--image-packages redis-server,nginx-light`, which
//! sets [`PACKAGES_ENV`]): each name is checked first (its syntax, then
//! `apt-cache show` against the host's package lists: a name that does not
//! exist is one line and nothing is built), then debootstrap installs them
//! with `--include` (its own policy-rc.d forbids starting their services
//! while it runs). The image's name carries the sorted list
//! (`debian-bookworm+nginx-light+redis-server`), so each list has its own
//! cache entry and the plain image stays as it is.
//!
//! The build runs in a temp dir next to the final one and is renamed into
//! place, so an interrupted build leaves nothing half-made; a lock file makes
//! concurrent first uses wait for one build. The result is shared by every
//! container and is never written by one: isobench's launcher binds it
//! read-only (with a tmpfs on /tmp), runc and crun get `root.readonly`,
//! bubblewrap `--ro-bind`. Only the agent and noop are refreshed (by rename)
//! when the workload build changed.

use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use nix::fcntl::{Flock, FlockArg};

use crate::workloads::Workloads;

#[derive(Debug, thiserror::Error)]
pub enum DistroError {
    #[error("debootstrap is not installed; install it (apt-get install debootstrap, or run scripts/setup)")]
    NoDebootstrap,
    #[error("building a distribution rootfs needs root (debootstrap creates device nodes and chroots); run isobench as root")]
    NotRoot,
    #[error("no apt source for suite {suite:?} found in /etc/apt/sources.list or /etc/apt/sources.list.d/; set ISOBENCH_ROOTFS_MIRROR=URL")]
    NoMirror { suite: String },
    #[error("cannot tell the host's distribution suite (no VERSION_CODENAME in /etc/os-release); set ISOBENCH_ROOTFS_SUITE")]
    NoSuite,
    #[error("debootstrap {suite} from {mirror} failed ({status}); its log: {log}")]
    Debootstrap { suite: String, mirror: String, status: String, log: PathBuf },
    #[error("--image-packages: {0:?} is not a Debian package name (lower-case letters, digits, '+', '-', '.'; at least two characters, starting with a letter or digit)")]
    BadPackageName(String),
    #[error("--image-packages: no package {name:?} in the host's package lists (apt-cache show {name}: {why})")]
    NoSuchPackage { name: String, why: String },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
}

fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> DistroError {
    let context = context.into();
    move |source| DistroError::Io { context, source }
}

/// Overrides of the suite and mirror read from the host's apt sources.
pub const SUITE_ENV: &str = "ISOBENCH_ROOTFS_SUITE";
pub const MIRROR_ENV: &str = "ISOBENCH_ROOTFS_MIRROR";
/// Packages to install into the image, comma-separated
/// (`--image-packages` sets it).
pub const PACKAGES_ENV: &str = "ISOBENCH_IMAGE_PACKAGES";

/// Parses a comma-separated package list: trimmed, sorted, each once, each
/// a valid Debian package name (Debian Policy 5.6.1). Errors: the first bad
/// name, in one line.
pub fn parse_packages(list: &str) -> Result<Vec<String>, DistroError> {
    let mut out: Vec<String> = Vec::new();
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let valid = name.len() >= 2
            && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '+' | '-' | '.'));
        if !valid {
            return Err(DistroError::BadPackageName(name.to_string()));
        }
        out.push(name.to_string());
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// The packages [`PACKAGES_ENV`] asks for (none when unset).
pub fn packages_from_env() -> Result<Vec<String>, DistroError> {
    parse_packages(&std::env::var(PACKAGES_ENV).unwrap_or_default())
}

/// Checks that each package exists in the host's package lists
/// (`apt-cache show`, the mirror debootstrap installs from serves the same
/// suite). Without apt-cache nothing is checked here; debootstrap's own
/// failure says it then.
pub fn check_packages_exist(packages: &[String]) -> Result<(), DistroError> {
    if packages.is_empty() || !Path::new("/usr/bin/apt-cache").is_file() {
        return Ok(());
    }
    for name in packages {
        let out = Command::new("/usr/bin/apt-cache").args(["show", "--no-all-versions", "--", name]).stdin(Stdio::null()).output();
        match out {
            Ok(o) if o.status.success() && !o.stdout.is_empty() => {}
            Ok(o) => {
                let err = String::from_utf8_lossy(&o.stderr);
                let why = err.lines().find(|l| !l.trim().is_empty()).unwrap_or("no record").trim().to_string();
                return Err(DistroError::NoSuchPackage { name: name.clone(), why });
            }
            Err(e) => return Err(DistroError::NoSuchPackage { name: name.clone(), why: e.to_string() }),
        }
    }
    Ok(())
}

/// The cache entry's name: `debian-bookworm`, or with packages
/// `debian-bookworm+nginx-light+redis-server` (sorted).
pub fn image_name(source: &Source, packages: &[String]) -> String {
    std::iter::once(source.name()).chain(packages.iter().cloned()).collect::<Vec<_>>().join("+")
}

/// Where the distribution and its mirror come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// `ID` of /etc/os-release (`debian`), the first half of the name.
    pub distro: String,
    /// The suite debootstrap installs (`bookworm`).
    pub suite: String,
    pub mirror: String,
}

impl Source {
    /// The host's: its os-release codename and the apt source serving it.
    pub fn host() -> Result<Source, DistroError> {
        let os_release = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
        let field = |key: &str| {
            os_release.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix('=')).map(|v| v.trim_matches('"').to_string()).filter(|v| !v.is_empty())
        };
        let distro = field("ID").unwrap_or_else(|| "debian".into());
        let suite = std::env::var(SUITE_ENV).ok().filter(|s| !s.is_empty()).or_else(|| field("VERSION_CODENAME")).ok_or(DistroError::NoSuite)?;
        let mirror = match std::env::var(MIRROR_ENV).ok().filter(|s| !s.is_empty()) {
            Some(m) => m,
            None => mirror_for(&apt_sources_text(), &suite).ok_or_else(|| DistroError::NoMirror { suite: suite.clone() })?,
        };
        Ok(Source { distro, suite, mirror })
    }

    /// `debian-bookworm`: the directory name in the cache and the label in
    /// the results.
    pub fn name(&self) -> String {
        format!("{}-{}", self.distro, self.suite)
    }
}

/// The text of every apt source file (one-line `.list` and deb822 `.sources`).
fn apt_sources_text() -> String {
    let mut files = vec![PathBuf::from("/etc/apt/sources.list")];
    if let Ok(dir) = std::fs::read_dir("/etc/apt/sources.list.d") {
        let mut more: Vec<PathBuf> = dir.flatten().map(|e| e.path()).collect();
        more.sort();
        files.extend(more);
    }
    let mut text = String::new();
    for f in files.iter().filter(|f| f.extension().is_some_and(|e| e == "list" || e == "sources") || f.ends_with("sources.list")) {
        if let Ok(t) = std::fs::read_to_string(f) {
            text.push_str(&t);
            // deb822 stanzas end at a blank line; files must not run together.
            text.push_str("\n\n");
        }
    }
    text
}

/// The URI of the first `deb` source serving `suite`, from apt source text in
/// either format: `deb [opts] URI SUITE COMPONENTS` lines or deb822 stanzas
/// (`Types: deb`, `URIs:`, `Suites:`).
pub fn mirror_for(sources: &str, suite: &str) -> Option<String> {
    let mut stanza: Vec<&str> = Vec::new();
    for line in sources.lines().chain([""]) {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        if let Some(rest) = line.strip_prefix("deb ") {
            let mut words = rest.split_whitespace();
            let mut uri = words.next()?;
            if uri.starts_with('[') {
                // Options may hold spaces: skip to the closing bracket.
                let mut w = uri;
                while !w.ends_with(']') {
                    w = words.next()?;
                }
                uri = words.next()?;
            }
            if words.next() == Some(suite) {
                return Some(uri.to_string());
            }
            continue;
        }
        if !line.is_empty() {
            stanza.push(line);
            continue;
        }
        let get = |key: &str| stanza.iter().find_map(|l| l.strip_prefix(key)).map(str::trim);
        let is_deb = get("Types:").is_some_and(|t| t.split_whitespace().any(|t| t == "deb"));
        let serves = get("Suites:").is_some_and(|s| s.split_whitespace().any(|s| s == suite));
        if let (true, true, Some(uris)) = (is_deb, serves, get("URIs:")) {
            if let Some(uri) = uris.split_whitespace().next() {
                return Some(uri.to_string());
            }
        }
        stanza.clear();
    }
    None
}

/// The distribution rootfs in the cache, ready to be used read-only.
#[derive(Debug, Clone)]
pub struct DistroRootfs {
    path: PathBuf,
    source: Source,
    packages: Vec<String>,
}

impl DistroRootfs {
    /// The host distribution's rootfs: built on first use (minutes, once per
    /// machine: its progress goes to stderr), then reused; the agent and
    /// noop are refreshed when the workload build changed.
    /// With the packages of [`PACKAGES_ENV`] (`--image-packages`).
    pub fn prepare(workloads: &Workloads) -> Result<DistroRootfs, DistroError> {
        let packages = packages_from_env()?;
        Self::prepare_in_with(&crate::paths::cache_dir().join("rootfs"), Source::host()?, &packages, workloads)
    }

    /// [`prepare`](Self::prepare) with the cache directory and source given,
    /// no packages added.
    pub fn prepare_in(cache: &Path, source: Source, workloads: &Workloads) -> Result<DistroRootfs, DistroError> {
        Self::prepare_in_with(cache, source, &[], workloads)
    }

    /// [`prepare_in`](Self::prepare_in) with `packages` (sorted, checked
    /// names: [`parse_packages`]) installed into the image.
    pub fn prepare_in_with(cache: &Path, source: Source, packages: &[String], workloads: &Workloads) -> Result<DistroRootfs, DistroError> {
        std::fs::create_dir_all(cache).map_err(io_err(format!("create {}", cache.display())))?;
        let name = image_name(&source, packages);
        let path = cache.join(&name);
        if !path.join("etc").is_dir() {
            // Before anything is written: a name that does not exist leaves
            // nothing in the cache, not even a lock file.
            check_packages_exist(packages)?;
        }
        let lock_path = cache.join(format!(".{name}.lock"));
        let lock_file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_err(format!("open {}", lock_path.display())))?;
        // Held until the end of this function: one build, and agent refreshes
        // that do not race.
        let _lock = Flock::lock(lock_file, FlockArg::LockExclusive)
            .map_err(|(_, e)| DistroError::Io { context: format!("lock {}", lock_path.display()), source: e.into() })?;
        if !path.join("etc").is_dir() {
            build(cache, &name, &source, packages)?;
        }
        for (src, dest) in workloads.rootfs_files() {
            refresh(src, &path.join(dest))?;
        }
        Ok(DistroRootfs { path, source, packages: packages.to_vec() })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn source(&self) -> &Source {
        &self.source
    }

    /// `debian-bookworm`, or `debian-bookworm+nginx-light+redis-server`
    /// with packages.
    pub fn name(&self) -> String {
        image_name(&self.source, &self.packages)
    }

    /// The packages installed on top of minbase (sorted).
    pub fn packages(&self) -> &[String] {
        &self.packages
    }
}

/// Temp build dirs are `.tmp-<name>-<pid>` in the cache dir.
fn temp_name(name: &str) -> String {
    // Swept by pid if we die midway: a sweep must know to look.
    crate::leftovers::mark_owner();
    format!(".tmp-{name}-{}", std::process::id())
}

/// debootstrap into a temp dir, then rename. Called with the lock held, so
/// any temp dir already there is from a build that was killed: it is removed
/// first, after detaching what debootstrap had mounted in it (/proc, /sys).
fn build(cache: &Path, name: &str, source: &Source, packages: &[String]) -> Result<(), DistroError> {
    if !nix::unistd::geteuid().is_root() {
        return Err(DistroError::NotRoot);
    }
    let debootstrap = ["/usr/sbin/debootstrap", "/usr/bin/debootstrap", "/sbin/debootstrap"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .ok_or(DistroError::NoDebootstrap)?;
    let stale_prefix = format!(".tmp-{name}-");
    for entry in std::fs::read_dir(cache).map_err(io_err(format!("read {}", cache.display())))?.flatten() {
        if entry.file_name().to_string_lossy().starts_with(&stale_prefix) {
            remove_build_dir(&entry.path())?;
        }
    }
    let tmp = cache.join(temp_name(name));
    let log = cache.join(format!("{name}.debootstrap.log"));
    let include: Vec<String> = (!packages.is_empty()).then(|| format!("--include={}", packages.join(","))).into_iter().collect();
    eprintln!(
        "isobench: building the {name} rootfs once: debootstrap --variant=minbase {}{} {} {} (log: {})",
        include.iter().map(|i| format!("{i} ")).collect::<String>(),
        source.suite,
        tmp.display(),
        source.mirror,
        log.display()
    );
    let t0 = Instant::now();
    let log_file = std::fs::File::create(&log).map_err(io_err(format!("create {}", log.display())))?;
    // debootstrap dies with isobench (PR_SET_PDEATHSIG); a half-built dir is
    // swept at the next start.
    let status = crate::process::spawn_agent(
        Command::new(&debootstrap)
            .arg("--variant=minbase")
            .args(&include)
            .arg(&source.suite)
            .arg(&tmp)
            .arg(&source.mirror)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().map_err(io_err("dup the log"))?)
            .stderr(log_file),
    )
    .and_then(|mut child| child.wait())
    .map_err(io_err(format!("run {}", debootstrap.display())));
    let failed = |status: String| {
        let _ = remove_build_dir(&tmp);
        DistroError::Debootstrap { suite: source.suite.clone(), mirror: source.mirror.clone(), status, log: log.clone() }
    };
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => return Err(failed(s.to_string())),
        Err(e) => return Err(failed(e.to_string())),
    }
    // What the image is, for whoever looks at the cache.
    let about = format!(
        "built by isobench: debootstrap --variant=minbase {}{} DIR {}\n",
        include.iter().map(|i| format!("{i} ")).collect::<String>(),
        source.suite,
        source.mirror
    );
    std::fs::write(tmp.join("isobench-rootfs.txt"), about).map_err(io_err("write isobench-rootfs.txt"))?;
    std::fs::rename(&tmp, cache.join(name)).map_err(io_err(format!("rename {} into place", tmp.display())))?;
    eprintln!("isobench: {name} rootfs built in {:.0} s", t0.elapsed().as_secs_f64());
    Ok(())
}

/// Removes the build dirs of builds whose isobench process is gone (a run
/// killed while debootstrap ran), unmounting what debootstrap had mounted in
/// them first. Called at every start (`cleanup::sweep`).
pub fn sweep() -> Vec<PathBuf> {
    sweep_in(&crate::paths::cache_dir().join("rootfs"))
}

fn sweep_in(cache: &Path) -> Vec<PathBuf> {
    crate::leftovers::sweep(cache, build_owner_pid, |e| e.file_type().is_ok_and(|t| t.is_dir()) && remove_build_dir(&e.path()).is_ok())
}

/// The pid in a build dir's name ([`temp_name`]).
fn build_owner_pid(name: &str) -> Option<i32> {
    name.strip_prefix(".tmp-")?.rsplit_once('-')?.1.parse().ok()
}

/// Detaches every mount at or under `dir` (deepest first), then removes it.
fn remove_build_dir(dir: &Path) -> Result<(), DistroError> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut under: Vec<PathBuf> = mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(p.replace("\\040", " ")))
        .filter(|p| p.starts_with(dir))
        .collect();
    under.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for m in &under {
        nix::mount::umount2(m, nix::mount::MntFlags::MNT_DETACH)
            .map_err(|e| DistroError::Io { context: format!("unmount {}", m.display()), source: e.into() })?;
    }
    std::fs::remove_dir_all(dir).map_err(io_err(format!("remove {}", dir.display())))
}

/// Puts a copy of `src` at `dest` unless the same bytes are there: written
/// to a temp name and renamed, so a container running the old one keeps it.
fn refresh(src: &Path, dest: &Path) -> Result<(), DistroError> {
    let new = std::fs::read(src).map_err(io_err(format!("read {}", src.display())))?;
    if std::fs::read(dest).is_ok_and(|old| old == new) {
        return Ok(());
    }
    let tmp = dest.with_extension(format!("new-{}", std::process::id()));
    let mut f = std::fs::File::create(&tmp).map_err(io_err(format!("create {}", tmp.display())))?;
    f.write_all(&new).map_err(io_err(format!("write {}", tmp.display())))?;
    f.set_permissions(std::fs::Permissions::from_mode(0o755)).map_err(io_err(format!("chmod {}", tmp.display())))?;
    drop(f);
    std::fs::rename(&tmp, dest).map_err(io_err(format!("rename {} to {}", tmp.display(), dest.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirror_from_deb822_skips_other_suites_and_types() {
        let text = "Types: deb-src\nURIs: http://src.example/debian\nSuites: bookworm\n\n\
                    Types: deb\n# a comment\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\n\
                    Types: deb\nURIs: http://deb.debian.org/debian-security\nSuites: bookworm-security\n";
        assert_eq!(mirror_for(text, "bookworm").as_deref(), Some("http://deb.debian.org/debian"));
        assert_eq!(mirror_for(text, "bookworm-security").as_deref(), Some("http://deb.debian.org/debian-security"));
        assert_eq!(mirror_for(text, "trixie"), None);
    }

    #[test]
    fn mirror_from_one_line_sources_with_options() {
        let text = "# deb http://old.example/debian bookworm main\n\
                    deb [arch=amd64 signed-by=/k.gpg] https://packages.cloud.google.com/apt cloud-sdk-bookworm main\n\
                    deb [ arch=amd64 ] http://mirror.example/debian bookworm main contrib\n";
        assert_eq!(mirror_for(text, "bookworm").as_deref(), Some("http://mirror.example/debian"));
        assert_eq!(mirror_for("deb http://a/ubuntu jammy main\n", "jammy").as_deref(), Some("http://a/ubuntu"));
    }

    #[test]
    fn a_package_list_is_sorted_once_each_and_a_bad_name_is_one_line() {
        assert_eq!(parse_packages(" redis-server, nginx-light,redis-server,").unwrap(), ["nginx-light", "redis-server"]);
        assert_eq!(parse_packages("").unwrap(), Vec::<String>::new());
        assert_eq!(parse_packages("g++,libc6.1-dev").unwrap(), ["g++", "libc6.1-dev"]);
        for bad in ["Redis", "a", "-x", "x y", "x;rm", "../x"] {
            let e = parse_packages(bad).unwrap_err().to_string();
            assert!(e.starts_with("--image-packages: ") && !e.contains('\n'), "{bad}: {e}");
        }
        let s = Source { distro: "debian".into(), suite: "bookworm".into(), mirror: "http://x".into() };
        assert_eq!(image_name(&s, &[]), "debian-bookworm");
        assert_eq!(image_name(&s, &parse_packages("redis-server,nginx-light").unwrap()), "debian-bookworm+nginx-light+redis-server");
    }

    #[test]
    fn the_name_is_distro_and_suite() {
        let s = Source { distro: "debian".into(), suite: "bookworm".into(), mirror: "http://x".into() };
        assert_eq!(s.name(), "debian-bookworm");
        assert_eq!(temp_name("debian-bookworm"), format!(".tmp-debian-bookworm-{}", std::process::id()));
        assert_eq!(build_owner_pid(&temp_name("debian-bookworm")), Some(std::process::id() as i32));
    }
}
