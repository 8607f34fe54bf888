//! Starting QEMU and reaching the guest's agent.
//!
//! QEMU is started through scripts/vm-run, which `exec`s it, so the child
//! pid is QEMU's own and `PR_SET_PDEATHSIG` ([`crate::process::spawn_agent`])
//! kills it when isobench dies. Each QEMU gets a temp dir
//! (`isobench-<pid>-vm-*`, swept by name after a `kill -9`) for the agent's
//! unix socket (`-chardev socket,server=on,wait=off`, the host end of the
//! virtio-serial port) and, unless the caller keeps it elsewhere, the serial
//! console log. [`boot`] connects to the socket as soon as QEMU creates it and
//! waits for the agent's `ready` line under a deadline; a guest that misses it
//! is killed and its console log kept and named in the error. Meanwhile a
//! watcher thread notes when the console log first grows (the kernel's first
//! line), one of the boot phases. A guest whose data path is virtiofs gets
//! its virtiofsd ([`super::virtiofsd`]) started first, its vhost-user socket
//! in the same temp dir. Dropping a [`Qemu`] kills and reaps it (and its
//! virtiofsd) and removes its temp dir.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use isobench_workloads::protocol::AgentInfo;
use serde::{Deserialize, Serialize};

use super::virtiofsd::{Virtiofsd, VirtiofsdError};
use crate::agent::{AgentClient, AgentError};

/// Overrides the QEMU binary (also read by scripts/vm-run).
pub const QEMU_ENV: &str = "ISOBENCH_QEMU";
pub const QEMU_BINARY: &str = "qemu-system-x86_64";

/// Per-read/write timeout on the agent socket once the guest is up: longer
/// than any bounded metric run (`max_ms`), short enough that a wedged guest
/// cannot hang a run forever.
pub const AGENT_IO_TIMEOUT: Duration = Duration::from_secs(600);

/// How often the socket and QEMU's state are polled while booting.
const POLL: Duration = Duration::from_millis(5);

/// How often the console log is looked at for its first byte while booting.
const CONSOLE_POLL: Duration = Duration::from_millis(1);

/// Lines of QEMU's own stderr quoted in an error.
const STDERR_TAIL_LINES: usize = 5;

#[derive(Debug, thiserror::Error)]
pub enum QemuError {
    #[error("{QEMU_BINARY} not found; run scripts/setup (Debian: apt-get install qemu-system-x86)")]
    NotFound,
    #[error("{} not found or not executable; isobench needs its scripts/ folder", .0.display())]
    Script(PathBuf),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    #[error("QEMU exited ({status}) before the agent was ready{stderr}; console log: {}", console.display())]
    Exited { status: ExitStatus, stderr: String, console: PathBuf },
    #[error("guest did not reach the agent within {:.1} s under {accel}; QEMU killed; last console line {last_line:?}; console log: {}", waited.as_secs_f64(), console.display())]
    Timeout { waited: Duration, accel: &'static str, last_line: String, console: PathBuf },
    #[error("guest printed nothing on its console within {:.1} s under {accel}; QEMU killed; console log: {}", waited.as_secs_f64(), console.display())]
    Silent { waited: Duration, accel: &'static str, console: PathBuf },
    #[error(transparent)]
    Virtiofsd(#[from] VirtiofsdError),
    #[error("agent: {source}; console log: {}", console.display())]
    Agent {
        #[source]
        source: AgentError,
        console: PathBuf,
    },
}

fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> QemuError {
    let context = context.into();
    move |source| QemuError::Io { context, source }
}

/// The board QEMU emulates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Machine {
    /// No PCI, qboot instead of SeaBIOS, no option ROMs, virtio-mmio: what
    /// Firecracker-style VMMs offer. It has no HPET or ACPI PM timer, so under
    /// TCG the guest is told the TSC rate (`--tsc-khz`; see scripts/vm-run),
    /// without which a loaded host makes its TSC calibration hang.
    #[default]
    Microvm,
    /// A PC with PCIe, HPET and ACPI PM timer; virtio-serial-pci; SeaBIOS.
    Q35,
}

isobench_workloads::named_values!(Machine, "machine type", { Microvm = "microvm", Q35 = "q35" });

/// How QEMU enters the guest kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BootProtocol {
    /// The uncompressed ELF vmlinux through its PVH entry note: no real-mode
    /// setup, no decompressor (under TCG, 3 s less than a bzImage here).
    #[default]
    Pvh,
    /// The distro's bzImage through the Linux boot protocol (the fallback
    /// when the image has no PVH vmlinux).
    Bzimage,
}

isobench_workloads::named_values!(BootProtocol, "boot protocol", { Pvh = "pvh", Bzimage = "bzimage" });

/// What to boot and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QemuSpec {
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    pub accel: Accel,
    pub machine: Machine,
    pub memory_mib: u32,
    pub cpus: u32,
    /// The guest's TSC rate under TCG (`tsc_early_khz=`); vm-run reads the
    /// host's when `None`.
    pub tsc_khz: Option<u64>,
    /// The guest's network device (its end of the boundary); `None`: none.
    pub net: Option<GuestNet>,
    /// An ext4 image the guest makes its root (attached `snapshot=on`);
    /// `None`: the initramfs stays the root.
    pub root_disk: Option<PathBuf>,
    /// The fs.* metrics' storage; `None`: none.
    pub data: Option<GuestData>,
}

/// The guest's data path for the fs.* metrics (scripts/vm-run --data-disk
/// or --share).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuestData {
    /// A raw ext4 image on virtio-blk with QEMU's cache and aio modes.
    Disk { image: PathBuf, cache: &'static str, aio: &'static str },
    /// A host directory over virtio-9p, mounted with this msize.
    Share { dir: PathBuf, msize: u32 },
    /// A host directory over virtiofs, served by the virtiofsd at `daemon`
    /// with this cache mode (started by [`Qemu::spawn`]).
    Virtiofs { dir: PathBuf, daemon: PathBuf, cache: &'static str },
}

/// Where a guest's virtiofsd listens: beside its agent socket, in the
/// QEMU's temp dir.
pub fn virtiofs_socket(agent_socket: &Path) -> PathBuf {
    agent_socket.with_file_name("virtiofs.sock")
}

impl GuestData {
    /// scripts/vm-run's arguments for it, for the guest whose agent socket
    /// is `agent_socket`.
    pub fn args(&self, agent_socket: &Path) -> Vec<String> {
        match self {
            GuestData::Disk { image, cache, aio } => {
                vec![
                    "--data-disk".into(),
                    image.display().to_string(),
                    "--disk-cache".into(),
                    cache.to_string(),
                    "--disk-aio".into(),
                    aio.to_string(),
                ]
            }
            GuestData::Share { dir, msize } => vec!["--share".into(), dir.display().to_string(), "--share-msize".into(), msize.to_string()],
            GuestData::Virtiofs { .. } => vec!["--virtiofs".into(), virtiofs_socket(agent_socket).display().to_string()],
        }
    }
}

/// The accelerator a guest runs under (QEMU's `-accel`); which one a run
/// gets is the `accel` module's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Accel {
    Kvm,
    Tcg,
}

impl Accel {
    /// QEMU's name (`-accel kvm|tcg`).
    pub fn as_str(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }
    }

    /// What a reader of a table or plot must see.
    pub fn label(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "emulated (TCG)",
        }
    }
}

impl std::fmt::Display for Accel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Ports QEMU's user-mode network forwards (its `hostfwd` rules, passed as
/// scripts/vm-run's `--user-net`): (port in the guest, port on the host's
/// loopback).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Forwards {
    pub tcp: (u16, u16),
    pub udp: (u16, u16),
}

/// The guest's virtio-net device and what it is connected to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuestNet {
    /// A tap device that exists in the network namespace bound at `netns`
    /// (the run's private one); QEMU is started inside that namespace.
    Tap { ifname: String, netns: PathBuf, guest_cidr: String },
    /// QEMU's user-mode network (slirp) forwarding these host
    /// loopback ports to these guest ports: used without root.
    User { forwards: Forwards, guest_cidr: String },
}

impl GuestNet {
    /// scripts/vm-run's arguments for it.
    pub fn args(&self) -> Vec<String> {
        match self {
            GuestNet::Tap { ifname, guest_cidr, .. } => vec!["--tap".into(), ifname.clone(), "--guest-ip".into(), guest_cidr.clone()],
            GuestNet::User { forwards: f, guest_cidr } => vec![
                "--user-net".into(),
                format!("tcp:127.0.0.1:{}-:{},udp:127.0.0.1:{}-:{}", f.tcp.1, f.tcp.0, f.udp.1, f.udp.0),
                "--guest-ip".into(),
                guest_cidr.clone(),
            ],
        }
    }
}

/// Finds QEMU: `$ISOBENCH_QEMU`, else `qemu-system-x86_64` on `PATH`.
pub fn find_qemu() -> Result<PathBuf, QemuError> {
    if let Some(q) = std::env::var_os(QEMU_ENV).filter(|v| !v.is_empty()) {
        let q = PathBuf::from(q);
        return if q.is_file() { Ok(q) } else { Err(QemuError::NotFound) };
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    std::env::split_paths(&path).map(|d| d.join(QEMU_BINARY)).find(|p| p.is_file()).ok_or(QemuError::NotFound)
}

/// QEMU's version, e.g. `7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)`.
pub fn qemu_version(qemu: &Path) -> Result<String, QemuError> {
    let out = Command::new(qemu).arg("--version").stdin(Stdio::null()).output().map_err(io_err(format!("{} --version", qemu.display())))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let first = text.lines().next().unwrap_or("").trim();
    Ok(first.strip_prefix("QEMU emulator version ").unwrap_or(first).to_string())
}

/// scripts/vm-run in the repository (`$ISOBENCH_VM_RUN` overrides).
pub fn vm_run_script() -> Result<PathBuf, QemuError> {
    let script = std::env::var_os("ISOBENCH_VM_RUN")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::paths::repo_root().join("scripts").join("vm-run"));
    let executable = std::fs::metadata(&script).is_ok_and(|m| {
        use std::os::unix::fs::PermissionsExt;
        m.is_file() && m.permissions().mode() & 0o111 != 0
    });
    if executable {
        Ok(script)
    } else {
        Err(QemuError::Script(script))
    }
}

/// The scripts/vm-run command line for `spec` (without spawning it).
pub fn command(script: &Path, qemu: &Path, spec: &QemuSpec, socket: &Path, console: &Path) -> Command {
    let mut cmd = Command::new(script);
    cmd.env(QEMU_ENV, qemu)
        .arg("--kernel")
        .arg(&spec.kernel)
        .arg("--initrd")
        .arg(&spec.initrd)
        .args(["--accel", spec.accel.as_str(), "--machine", spec.machine.as_str()])
        .args(["--memory", &spec.memory_mib.to_string(), "--cpus", &spec.cpus.to_string()])
        .arg("--socket")
        .arg(socket)
        .arg("--console")
        .arg(console);
    if let Some(khz) = spec.tsc_khz {
        cmd.args(["--tsc-khz", &khz.to_string()]);
    }
    if let Some(net) = &spec.net {
        cmd.args(net.args());
    }
    if let Some(root) = &spec.root_disk {
        cmd.arg("--root-disk").arg(root);
    }
    if let Some(data) = &spec.data {
        cmd.args(data.args(socket));
    }
    cmd
}

/// A running QEMU. Dropping it kills and reaps QEMU and removes its temp dir.
pub struct Qemu {
    child: Child,
    /// The guest's virtiofsd, when its data path is virtiofs.
    virtiofsd: Option<Virtiofsd>,
    dir: tempfile::TempDir,
    socket: PathBuf,
    console: PathBuf,
    stderr: PathBuf,
    accel: Accel,
    started: Instant,
    launched: Instant,
}

impl Qemu {
    /// Starts QEMU through scripts/vm-run. The console goes to `console` when
    /// given, else into the temp dir (gone with the [`Qemu`]).
    pub fn spawn(qemu: &Path, spec: &QemuSpec, console: Option<&Path>) -> Result<Qemu, QemuError> {
        let script = vm_run_script()?;
        let prefix = crate::leftovers::temp_prefix("vm");
        let dir = tempfile::Builder::new().prefix(&prefix).tempdir().map_err(io_err("create the vm temp dir"))?;
        let socket = dir.path().join("agent.sock");
        let console = console.map(Path::to_path_buf).unwrap_or_else(|| dir.path().join("console.log"));
        let stderr = dir.path().join("qemu.stderr");
        let err_file = File::create(&stderr).map_err(io_err("create qemu.stderr"))?;
        let out_file = err_file.try_clone().map_err(io_err("dup qemu.stderr"))?;
        // Before QEMU, which connects to its socket at start.
        let launched = Instant::now();
        let virtiofsd = match &spec.data {
            Some(GuestData::Virtiofs { dir: source, daemon, cache }) => {
                Some(Virtiofsd::spawn(daemon, source, &virtiofs_socket(&socket), &dir.path().join("virtiofsd.stderr"), cache)?)
            }
            _ => None,
        };
        let mut cmd = command(&script, qemu, spec, &socket, &console);
        cmd.stdin(Stdio::null()).stdout(out_file).stderr(err_file);
        // Kept open until the spawn: the child enters it before exec.
        let _netns = match &spec.net {
            Some(GuestNet::Tap { netns, .. }) => {
                let file = File::open(netns).map_err(io_err(format!("open network namespace {}", netns.display())))?;
                let fd = std::os::fd::AsRawFd::as_raw_fd(&file);
                // SAFETY: runs between fork and exec; setns(2) is
                // async-signal-safe and `fd` is open until after the spawn.
                unsafe {
                    std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
                        if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                            return Err(io::Error::last_os_error());
                        }
                        Ok(())
                    });
                }
                Some(file)
            }
            _ => None,
        };
        let started = Instant::now();
        let child = crate::process::spawn_agent(&mut cmd).map_err(io_err(format!("start {}", script.display())))?;
        // Without a daemon QEMU is the first process, and its start the guest's.
        let launched = if virtiofsd.is_some() { launched } else { started };
        Ok(Qemu { child, virtiofsd, dir, socket, console, stderr, accel: spec.accel, started, launched })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The guest's virtiofsd's pid, when it has one.
    pub fn virtiofsd_pid(&self) -> Option<u32> {
        self.virtiofsd.as_ref().map(Virtiofsd::pid)
    }

    pub fn console(&self) -> &Path {
        &self.console
    }

    pub fn temp_dir(&self) -> &Path {
        self.dir.path()
    }

    /// When QEMU was started.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// When the first process of this guest was started: its virtiofsd
    /// where it has one, else QEMU (= [`Qemu::started`]).
    pub fn launched(&self) -> Instant {
        self.launched
    }

    /// The last lines QEMU itself printed (errors about options, KVM, files).
    pub fn stderr_tail(&self) -> String {
        last_lines(&self.stderr, STDERR_TAIL_LINES)
    }

    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        self.child.try_wait()
    }

    /// Waits up to `timeout` for QEMU to exit on its own.
    pub fn wait_timeout(&mut self, timeout: Duration) -> io::Result<Option<ExitStatus>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(Some(status));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            std::thread::sleep(POLL);
        }
    }

    /// SIGKILLs QEMU (if still running) and reaps it, then stops its
    /// virtiofsd (which exits by itself once QEMU is gone).
    pub fn kill(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        if let Some(d) = self.virtiofsd.as_mut() {
            d.stop();
        }
    }

    /// Connects to the agent socket, retrying until QEMU has created it.
    fn connect(&mut self, deadline: Instant) -> Result<UnixStream, QemuError> {
        loop {
            if let Some(status) = self.child.try_wait().map_err(io_err("wait for QEMU"))? {
                return Err(self.exited(status));
            }
            match UnixStream::connect(&self.socket) {
                Ok(s) => return Ok(s),
                Err(e) if matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused) => {}
                Err(e) => return Err(io_err(format!("connect {}", self.socket.display()))(e)),
            }
            if Instant::now() >= deadline {
                return Err(self.timeout());
            }
            std::thread::sleep(POLL);
        }
    }

    fn exited(&self, status: ExitStatus) -> QemuError {
        let mut tail = self.stderr_tail();
        if let Some(d) = self.virtiofsd.as_ref().map(Virtiofsd::stderr_tail).filter(|t| !t.is_empty()) {
            tail = if tail.is_empty() { format!("virtiofsd: {d}") } else { format!("{tail}; virtiofsd: {d}") };
        }
        let stderr = if tail.is_empty() { String::new() } else { format!(": {tail}") };
        QemuError::Exited { status, stderr, console: self.console.clone() }
    }

    fn timeout(&self) -> QemuError {
        let last_line = console_tail(&self.console, 1).pop().unwrap_or_default();
        QemuError::Timeout { waited: self.started.elapsed(), accel: self.accel.label(), last_line, console: self.console.clone() }
    }
}

impl Drop for Qemu {
    fn drop(&mut self) {
        self.kill();
        // self.dir (socket, stderr, a console log not kept elsewhere) goes with it
    }
}

/// A guest whose agent said `ready`.
pub struct Booted {
    pub qemu: Qemu,
    pub agent: AgentClient,
    pub info: AgentInfo,
    /// From spawning scripts/vm-run to the agent's `ready` line.
    pub ready_after: Duration,
    /// From spawning scripts/vm-run to the console log's first byte (the
    /// kernel's first line; a bzImage's decompressor may print before it),
    /// never later than `ready_after`; `None` when the console stayed empty.
    pub first_output: Option<Duration>,
}

/// Notes when a console log first has a byte in it, from a thread polling
/// its size every [`CONSOLE_POLL`] until told to stop.
struct ConsoleWatch {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Option<Duration>>,
}

impl ConsoleWatch {
    fn start(console: &Path, since: Instant) -> ConsoleWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let (flag, path) = (Arc::clone(&stop), console.to_path_buf());
        let thread = std::thread::spawn(move || loop {
            let stopping = flag.load(Ordering::Acquire);
            if std::fs::metadata(&path).is_ok_and(|m| m.len() > 0) {
                return Some(since.elapsed());
            }
            if stopping {
                return None;
            }
            std::thread::sleep(CONSOLE_POLL);
        });
        ConsoleWatch { stop, thread }
    }

    /// Stops the watcher and returns when it saw the first byte.
    fn finish(self) -> Option<Duration> {
        self.stop.store(true, Ordering::Release);
        self.thread.join().ok().flatten()
    }
}

/// Starts QEMU and waits, at most `timeout`, for the agent's `ready`.
///
/// On failure QEMU is killed and reaped before this returns. When `console`
/// is `None` the log would vanish with the temp dir, so a failed boot's log is
/// copied to `failed_log` first (when given) and the error names that copy.
pub fn boot(qemu_bin: &Path, spec: &QemuSpec, console: Option<&Path>, failed_log: Option<&Path>, timeout: Duration) -> Result<Booted, QemuError> {
    boot_with(qemu_bin, spec, console, failed_log, timeout, None)
}

/// [`boot`], and when `silence` is given, a guest whose console is still
/// empty that long after QEMU's start is given up on early
/// ([`QemuError::Silent`]): a kernel that runs prints its banner within
/// milliseconds under KVM, so a KVM probe need not wait its whole timeout.
pub fn boot_with(
    qemu_bin: &Path,
    spec: &QemuSpec,
    console: Option<&Path>,
    failed_log: Option<&Path>,
    timeout: Duration,
    silence: Option<Duration>,
) -> Result<Booted, QemuError> {
    let mut qemu = Qemu::spawn(qemu_bin, spec, console)?;
    let watch = ConsoleWatch::start(qemu.console(), qemu.started);
    let ready = wait_ready(&mut qemu, timeout, silence);
    let ready_after = qemu.started.elapsed();
    let first_output = watch.finish().map(|d| d.min(ready_after));
    // The guest is up, but a virtiofsd that refused it (or died) would
    // leave its first file request waiting forever.
    let ready = ready.and_then(|r| match qemu.virtiofsd.as_mut().map(Virtiofsd::check) {
        Some(Err(e)) => Err(QemuError::Virtiofsd(e)),
        _ => Ok(r),
    });
    match ready {
        Ok((agent, info)) => Ok(Booted { qemu, agent, info, ready_after, first_output }),
        Err(mut e) => {
            qemu.kill();
            if console.is_none() {
                if let Some(kept) = failed_log.and_then(|dst| keep_log(qemu.console(), dst)) {
                    set_console(&mut e, kept);
                }
            }
            Err(e)
        }
    }
}

fn wait_ready(qemu: &mut Qemu, timeout: Duration, silence: Option<Duration>) -> Result<(AgentClient, AgentInfo), QemuError> {
    let deadline = qemu.started + timeout;
    // First wait until the silence check (when there is one), then the rest.
    let mut check_at = silence.map(|s| qemu.started + s).filter(|&at| at < deadline);
    let stream = qemu.connect(deadline)?;
    let until = |at: Instant| Some(at.saturating_duration_since(Instant::now()).max(Duration::from_millis(1)));
    stream.set_read_timeout(until(check_at.unwrap_or(deadline))).map_err(io_err("set socket timeout"))?;
    stream.set_write_timeout(Some(AGENT_IO_TIMEOUT)).map_err(io_err("set socket timeout"))?;
    let reader = stream.try_clone().map_err(io_err("dup the agent socket"))?;
    let mut agent = AgentClient::new(Box::new(reader), Box::new(stream.try_clone().map_err(io_err("dup the agent socket"))?));
    let ready = loop {
        match agent.wait_ready() {
            Err(AgentError::Io(e)) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) && check_at.take().is_some() => {
                // Nothing from the agent yet, and nothing can have come
                // from it while the console is still empty.
                if std::fs::metadata(&qemu.console).map_or(true, |m| m.len() == 0) {
                    return Err(QemuError::Silent { waited: qemu.started.elapsed(), accel: qemu.accel.label(), console: qemu.console.clone() });
                }
                stream.set_read_timeout(until(deadline)).map_err(io_err("set socket timeout"))?;
            }
            other => break other,
        }
    };
    match ready {
        Ok(info) => {
            stream.set_read_timeout(Some(AGENT_IO_TIMEOUT)).map_err(io_err("set socket timeout"))?;
            Ok((agent, info))
        }
        Err(AgentError::Io(e)) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => Err(qemu.timeout()),
        Err(e) => {
            // The channel closing usually means QEMU is exiting (the guest's
            // /init died, the kernel panicked): report its status if it has one.
            if let Ok(Some(status)) = qemu.wait_timeout(Duration::from_millis(500)) {
                return Err(qemu.exited(status));
            }
            Err(QemuError::Agent { source: e, console: qemu.console.clone() })
        }
    }
}

/// Copies a console log out of a temp dir that is about to go.
fn keep_log(src: &Path, dst: &Path) -> Option<PathBuf> {
    if let Some(parent) = dst.parent() {
        std::fs::create_dir_all(parent).ok()?;
    }
    std::fs::copy(src, dst).ok()?;
    Some(dst.to_path_buf())
}

fn set_console(e: &mut QemuError, kept: PathBuf) {
    match e {
        QemuError::Exited { console, .. }
        | QemuError::Timeout { console, .. }
        | QemuError::Silent { console, .. }
        | QemuError::Agent { console, .. } => *console = kept,
        _ => {}
    }
}

/// The last `n` lines of a console log, for messages (empty when unreadable).
pub fn console_tail(path: &Path, n: usize) -> Vec<String> {
    let text = std::fs::read(path).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines[lines.len().saturating_sub(n)..].to_vec()
}

/// The last `n` non-empty lines of a log file, joined by " | " (empty when
/// it cannot be read): what a child process printed before it failed.
pub fn last_lines(path: &Path, n: usize) -> String {
    let mut text = String::new();
    if let Ok(mut f) = File::open(path) {
        let _ = f.read_to_string(&mut text);
    }
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_passes_every_option_to_vm_run() {
        let mut spec = QemuSpec {
            kernel: "/g/vmlinuz".into(),
            initrd: "/g/initramfs.cpio".into(),
            accel: Accel::Tcg,
            machine: Machine::Q35,
            memory_mib: 256,
            cpus: 1,
            tsc_khz: None,
            net: None,
            root_disk: None,
            data: None,
        };
        let args = |spec: &QemuSpec| {
            let cmd = command(Path::new("/r/scripts/vm-run"), Path::new("/usr/bin/qemu"), spec, Path::new("/t/agent.sock"), Path::new("/t/c.log"));
            cmd.get_args().map(|a| a.to_string_lossy().into_owned()).collect::<Vec<_>>().join(" ")
        };
        assert_eq!(
            args(&spec),
            "--kernel /g/vmlinuz --initrd /g/initramfs.cpio --accel tcg --machine q35 --memory 256 --cpus 1 --socket /t/agent.sock --console /t/c.log"
        );
        spec.machine = Machine::Microvm;
        spec.tsc_khz = Some(2_600_000);
        assert!(args(&spec).contains("--machine microvm "), "{}", args(&spec));
        assert!(args(&spec).ends_with(" --tsc-khz 2600000"), "{}", args(&spec));
        spec.net = Some(GuestNet::Tap { ifname: "ibt1".into(), netns: "/run/netns/x".into(), guest_cidr: "10.199.2.2/24".into() });
        assert!(args(&spec).ends_with(" --tap ibt1 --guest-ip 10.199.2.2/24"), "{}", args(&spec));
        let forwards = Forwards { tcp: (5201, 40001), udp: (5202, 40002) };
        spec.net = Some(GuestNet::User { forwards, guest_cidr: "10.0.2.15/24".into() });
        assert!(args(&spec).ends_with(" --user-net tcp:127.0.0.1:40001-:5201,udp:127.0.0.1:40002-:5202 --guest-ip 10.0.2.15/24"), "{}", args(&spec));
        spec.net = None;
        spec.root_disk = Some("/c/rootfs/debian-bookworm.0123456789abcdef.ext4".into());
        spec.data = Some(GuestData::Disk { image: "/d/vm/data.img".into(), cache: "none", aio: "io_uring" });
        assert!(
            args(&spec).ends_with(
                " --root-disk /c/rootfs/debian-bookworm.0123456789abcdef.ext4 --data-disk /d/vm/data.img --disk-cache none --disk-aio io_uring"
            ),
            "{}",
            args(&spec)
        );
        spec.data = Some(GuestData::Share { dir: "/d/vm-share".into(), msize: 512_000 });
        assert!(args(&spec).ends_with(" --share /d/vm-share --share-msize 512000"), "{}", args(&spec));
        spec.data = Some(GuestData::Virtiofs { dir: "/d/vm".into(), daemon: "/usr/lib/qemu/virtiofsd".into(), cache: "none" });
        assert!(args(&spec).ends_with(" --virtiofs /t/virtiofs.sock"), "{}", args(&spec));
    }

    #[test]
    fn machine_and_boot_protocol_parse() {
        assert_eq!("microvm".parse::<Machine>(), Ok(Machine::Microvm));
        assert_eq!("q35".parse::<Machine>(), Ok(Machine::Q35));
        assert_eq!("pc".parse::<Machine>(), Err("unknown machine type \"pc\"; choose from microvm or q35".into()));
        assert_eq!(Machine::default(), Machine::Microvm);
        assert_eq!("bzimage".parse::<BootProtocol>(), Ok(BootProtocol::Bzimage));
        assert!("elf".parse::<BootProtocol>().is_err());
        // Each name parses back, and the error line names every choice.
        let (machine_err, boot_err) = ("pc".parse::<Machine>().unwrap_err(), "elf".parse::<BootProtocol>().unwrap_err());
        for m in Machine::ALL {
            assert_eq!(m.to_string().parse::<Machine>(), Ok(m));
            assert!(machine_err.contains(m.as_str()), "{machine_err}");
        }
        for b in BootProtocol::ALL {
            assert_eq!(b.to_string().parse::<BootProtocol>(), Ok(b));
            assert!(boot_err.contains(b.as_str()), "{boot_err}");
        }
    }

    #[test]
    fn failed_boot_error_names_the_kept_log() {
        let mut e = QemuError::Timeout {
            waited: Duration::from_millis(1500),
            accel: "emulated (TCG)",
            last_line: "[    0.9] Run /init as init process".into(),
            console: "/tmp/x/console.log".into(),
        };
        set_console(&mut e, "/cache/logs/vm-failed.log".into());
        assert_eq!(
            e.to_string(),
            "guest did not reach the agent within 1.5 s under emulated (TCG); QEMU killed; \
             last console line \"[    0.9] Run /init as init process\"; console log: /cache/logs/vm-failed.log"
        );
    }
}
