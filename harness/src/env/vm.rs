//! The vm environment: a QEMU guest whose /init is the agent, driven over a
//! virtio-serial port. `prepare` finds the guest image and QEMU and decides
//! the accelerator (probing KVM with a real boot when asked to choose); each
//! `start` boots a fresh guest and returns once its agent said `ready`, so the
//! host-side start time is a full boot (Firecracker's boot-time method: from
//! process start to the guest's first sign of life in user space).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use isobench_workloads::protocol::AgentInfo;

use super::{EnvError, EnvKind, Environment, Instance, Options};
use crate::agent::AgentClient;
use crate::vm::accel::{self, Accel, Verdict};
use crate::vm::image::{self, GuestImage};
use crate::vm::qemu::{self, Machine, Qemu, QemuError, QemuSpec};

const ENV: &str = "vm";

/// Guest memory (MiB): the agent needs a few MiB; the rest is page cache.
pub const DEFAULT_MEMORY_MIB: u32 = 256;
pub const DEFAULT_CPUS: u32 = 1;

/// From QEMU start to the agent's `ready` under KVM (a boot takes < 1 s).
pub const BOOT_TIMEOUT_KVM: Duration = Duration::from_secs(20);
/// The same under TCG (about 5 s on a 2-core VM; slow CI hosts need slack).
pub const BOOT_TIMEOUT_TCG: Duration = Duration::from_secs(90);
/// From the agent's `bye` to QEMU having exited after the guest powered off.
pub const POWER_OFF_TIMEOUT: Duration = Duration::from_secs(20);

pub struct Vm {
    image: GuestImage,
    qemu_bin: PathBuf,
    qemu_version: String,
    verdict: Verdict,
    machine: Machine,
    memory_mib: u32,
    cpus: u32,
    boot_timeout: Duration,
    log_dir: Option<PathBuf>,
    starts: u32,
    /// A caveat for run.json, e.g. an image older than the agent.
    warning: Option<String>,
}

fn unavailable(reason: impl std::fmt::Display) -> EnvError {
    EnvError::Unavailable { env: ENV, reason: reason.to_string() }
}

impl Vm {
    /// Finds QEMU, scripts/vm-run and the guest image, then decides the
    /// accelerator (`auto` may take one KVM probe boot, cached afterwards).
    pub fn prepare(opts: &Options) -> Result<Self, EnvError> {
        let qemu_bin = qemu::find_qemu().map_err(unavailable)?;
        qemu::vm_run_script().map_err(unavailable)?;
        let image = image::locate().map_err(unavailable)?;
        let qemu_version = qemu::qemu_version(&qemu_bin).map_err(unavailable)?;
        let warning = image
            .older_than(&opts.workloads.agent)
            .then(|| format!("the guest image ({}) is older than the agent binary; run scripts/build-guest", image.dir.display()));
        if let Some(w) = &warning {
            eprintln!("vm: warning: {w}");
        }
        let verdict = accel::decide(opts.accel, &image, &qemu_bin, &qemu_version).map_err(unavailable)?;
        let boot_timeout = match verdict.accel {
            Accel::Kvm => BOOT_TIMEOUT_KVM,
            Accel::Tcg => BOOT_TIMEOUT_TCG,
        };
        Ok(Vm {
            image,
            qemu_bin,
            qemu_version,
            verdict,
            machine: Machine::default(),
            memory_mib: DEFAULT_MEMORY_MIB,
            cpus: DEFAULT_CPUS,
            boot_timeout,
            log_dir: opts.log_dir.clone(),
            starts: 0,
            warning,
        })
    }

    /// The accelerator and why.
    pub fn verdict(&self) -> &Verdict {
        &self.verdict
    }

    pub fn image(&self) -> &GuestImage {
        &self.image
    }

    /// How long `start` waits for the agent before killing the guest.
    pub fn set_boot_timeout(&mut self, timeout: Duration) {
        self.boot_timeout = timeout;
    }

    pub fn set_machine(&mut self, machine: Machine) {
        self.machine = machine;
    }

    pub fn set_memory_mib(&mut self, mib: u32) {
        self.memory_mib = mib;
    }

    fn spec(&self) -> QemuSpec {
        QemuSpec {
            kernel: self.image.kernel.clone(),
            initrd: self.image.initrd.clone(),
            accel: self.verdict.accel,
            machine: self.machine,
            memory_mib: self.memory_mib,
            cpus: self.cpus,
        }
    }

    /// Where a failed boot's console log is kept when there is no log dir.
    fn failed_log(&self) -> PathBuf {
        let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        crate::vm::cache_dir().join("logs").join(format!("vm-console-failed-{stamp}-{}.log", std::process::id()))
    }
}

impl Environment for Vm {
    fn kind(&self) -> EnvKind {
        EnvKind::Vm
    }

    fn label(&self) -> String {
        format!("vm ({})", self.verdict.accel.label())
    }

    fn metadata(&self) -> serde_json::Value {
        serde_json::json!({
            "accel": self.verdict.accel.as_str(),
            "accel_label": self.verdict.accel.label(),
            "accel_reason": self.verdict.reason,
            "accel_source": self.verdict.source,
            "machine": self.machine.as_str(),
            "memory_mib": self.memory_mib,
            "cpus": self.cpus,
            "qemu": self.qemu_bin,
            "qemu_version": self.qemu_version,
            "kernel_version": self.image.kernel_version,
            "kernel_source": self.image.kernel_source,
            "kernel": self.image.kernel,
            "initrd": self.image.initrd,
            "kernel_sha256": self.image.kernel_sha256,
            "initrd_sha256": self.image.initrd_sha256,
            "modules": self.image.modules,
            "boot_timeout_s": self.boot_timeout.as_secs_f64(),
            "console_logs": self.log_dir,
            "warning": self.warning,
        })
    }

    fn start(&mut self) -> Result<Box<dyn Instance>, EnvError> {
        self.starts += 1;
        let console = match &self.log_dir {
            Some(dir) => {
                std::fs::create_dir_all(dir).map_err(|e| EnvError::Io { env: ENV, context: format!("create {}", dir.display()), source: e })?;
                Some(dir.join(format!("vm-console-{}.log", self.starts)))
            }
            None => None,
        };
        let failed_log = self.failed_log();
        let booted = qemu::boot(&self.qemu_bin, &self.spec(), console.as_deref(), Some(&failed_log), self.boot_timeout).map_err(|e| match e {
            QemuError::NotFound | QemuError::Script(_) => unavailable(e),
            e => EnvError::Start { env: ENV, reason: e.to_string() },
        })?;
        Ok(Box::new(VmInstance { qemu: booted.qemu, agent: booted.agent, info: booted.info, ready_after: booted.ready_after }))
    }
}

/// A running guest. Dropping it kills QEMU and removes its temp dir.
pub struct VmInstance {
    qemu: Qemu,
    agent: AgentClient,
    info: AgentInfo,
    ready_after: Duration,
}

impl VmInstance {
    /// QEMU's pid (tests check that it is gone afterwards).
    pub fn qemu_pid(&self) -> u32 {
        self.qemu.pid()
    }
}

impl Instance for VmInstance {
    fn agent(&mut self) -> &mut AgentClient {
        &mut self.agent
    }

    fn info(&self) -> &AgentInfo {
        &self.info
    }

    fn ready_after(&self) -> Duration {
        self.ready_after
    }

    fn shutdown(mut self: Box<Self>) -> Result<Duration, EnvError> {
        let t0 = Instant::now();
        self.agent.shutdown().map_err(|e| EnvError::Agent { env: ENV, source: e })?;
        let exited = self.qemu.wait_timeout(POWER_OFF_TIMEOUT).map_err(|e| EnvError::Io { env: ENV, context: "wait for QEMU".into(), source: e })?;
        let took = t0.elapsed();
        match exited {
            Some(status) if status.success() => Ok(took),
            Some(status) => Err(EnvError::Start { env: ENV, reason: format!("QEMU exited with {status} after the guest powered off") }),
            None => Err(EnvError::Io {
                env: ENV,
                context: format!("guest power-off (console log: {})", self.qemu.console().display()),
                source: std::io::Error::new(std::io::ErrorKind::TimedOut, format!("QEMU still running {} s after bye; killed", POWER_OFF_TIMEOUT.as_secs())),
            }),
        }
        // Drop kills QEMU if it is still there and removes its temp dir.
    }
}
