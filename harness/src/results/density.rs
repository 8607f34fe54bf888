//! What `isobench density` measured (`density.json`, [`DensityRun`]): per
//! environment, storms of N starts at concurrency C (each start's latency,
//! time until all were ready, failures with their errors, where a storm
//! stopped and why), and with the N instances idle afterwards their memory
//! seen from the host (PSS and USS of each instance's process tree, the fall
//! in MemAvailable) and the CPU time they used over a fixed window. The
//! figures derived for the report (MiB per instance beyond the agent's own,
//! instances per GiB, start rate) are methods here, so the report and
//! `isobench density`'s table agree.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{ResultsError, RunDir};
use crate::collect::interference::Interference;

/// The file in a results folder.
pub const DENSITY_FILE: &str = "density.json";

/// KiB per MiB.
const KIB_PER_MIB: f64 = 1024.0;

/// One `isobench density` run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DensityRun {
    /// A start is refused when it would leave less than this, MiB of MemAvailable.
    pub min_available_mib: u64,
    /// The idle window over which each storm's instances' CPU time is taken, ms.
    pub idle_window_ms: u64,
    /// Where the memory figures come from, in words.
    pub memory_source: String,
    /// Where the idle CPU figures come from, in words.
    pub cpu_source: String,
    /// KSM's state while measured (`/sys/kernel/mm/ksm/`): merging pages
    /// would lower PSS and the MemAvailable fall. isobench does not change it.
    pub ksm: KsmState,
    /// The environments, `native` (the payload's own memory) first when measured.
    pub envs: Vec<DensityEnv>,
    /// Environments that could not run here: one line each.
    #[serde(default)]
    pub skipped: Vec<String>,
    /// Stopped by SIGINT or SIGTERM before every storm ran.
    #[serde(default)]
    pub interrupted: bool,
    /// The interference the whole run was taken under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interference: Option<Interference>,
}

/// `/sys/kernel/mm/ksm/run` and `pages_sharing`; `None` where the kernel has no KSM.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct KsmState {
    /// 0: stopped, 1: merging, 2: unmerged and stopped.
    pub run: Option<u32>,
    /// Pages currently shared through KSM.
    pub pages_sharing: Option<u64>,
}

/// One environment's storms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DensityEnv {
    /// `native`, `container`, `runc`, `vm`, ...
    pub env: String,
    /// Its column label with caveats (`vm (emulated (TCG))`, `container (default)`).
    pub label: String,
    /// For the vm: guest RAM and the TCG translation cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vm: Option<VmMemory>,
    pub storms: Vec<Storm>,
}

/// What a guest costs beyond its processes' count: its RAM as configured,
/// and under TCG QEMU's translation cache, both as QEMU maps them
/// (`/proc/PID/smaps` of the first instance's QEMU).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct VmMemory {
    /// The guest's RAM as asked of QEMU (`-m`), MiB.
    pub guest_ram_mib: u64,
    /// `tcg` or `kvm`.
    pub accelerator: String,
    /// How much of the guest's RAM mapping is resident, KiB.
    pub guest_ram_resident_kib: Option<u64>,
    /// The TCG translation cache's mapping (QEMU's code_gen_buffer: the
    /// largest executable anonymous mapping): its size, KiB. QEMU's default
    /// (`-accel tcg,tb-size=` unset) is used: the guest is started by the
    /// same vm-run as every other measurement.
    pub tcg_cache_reserved_kib: Option<u64>,
    /// The resident part of the translation cache, KiB.
    pub tcg_cache_resident_kib: Option<u64>,
    /// The guest's own view of its memory, from its agent at agent-ready
    /// (/proc/meminfo inside the guest: MemTotal, MemAvailable; the agent's
    /// VmRSS); absent from an older agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guest_view: Option<isobench_workloads::protocol::MemoryView>,
}

/// N starts at concurrency C, then the instances held idle and measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Storm {
    /// Starts asked for.
    pub requested: u32,
    /// Starts in flight at once.
    pub concurrency: u32,
    /// Instances that reached agent-ready.
    pub ready: u32,
    /// Each ready start's latency, ns, in order of readiness: the
    /// environment's `env.start` interval (start asked → the agent's `Ready`).
    pub latencies_ns: Vec<u64>,
    /// From the storm's first start asked to its last instance ready, ns.
    pub all_ready_ns: u64,
    /// Starts that failed, grouped by their error (the storm went on).
    #[serde(default)]
    pub failures: Vec<StartFailure>,
    /// Why the storm ended before `requested` starts, if it did (the
    /// MemAvailable margin, an interruption).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
    /// The ready instances' memory, measured while they idled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<MemorySample>,
    /// The ready instances' CPU time over the idle window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle: Option<IdleCost>,
}

/// Starts that failed with one error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StartFailure {
    pub error: String,
    pub count: u32,
}

/// The memory of a storm's ready instances, idle.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MemorySample {
    /// Instances measured.
    pub instances: u32,
    /// Processes found in the instances' trees, all together.
    pub processes: u32,
    /// Per instance: the PSS of its process tree, KiB (`smaps_rollup`'s `Pss`).
    pub pss_kib: Vec<u64>,
    /// Per instance: the USS of its process tree, KiB (`Private_Clean` + `Private_Dirty`).
    pub uss_kib: Vec<u64>,
    /// MemAvailable just before the storm's first start, KiB.
    pub available_before_kib: u64,
    /// MemAvailable with the instances idle, KiB.
    pub available_loaded_kib: u64,
    /// MemAvailable after the instances were stopped, KiB.
    pub available_after_kib: u64,
}

impl MemorySample {
    /// Mean PSS per instance, MiB.
    pub fn pss_mib(&self) -> f64 {
        mean_kib(&self.pss_kib) / KIB_PER_MIB
    }

    /// Mean USS per instance, MiB.
    pub fn uss_mib(&self) -> f64 {
        mean_kib(&self.uss_kib) / KIB_PER_MIB
    }

    /// The fall in MemAvailable from before the storm to the instances idle,
    /// per instance, MiB (gVisor's method); negative when something else on
    /// the machine freed more than the instances took.
    pub fn fall_mib(&self) -> Option<f64> {
        (self.instances > 0).then(|| (self.available_before_kib as f64 - self.available_loaded_kib as f64) / self.instances as f64 / KIB_PER_MIB)
    }

    /// The rise in MemAvailable when the instances were stopped, per
    /// instance, MiB: the same quantity measured the other way, so the two
    /// apart say how much the machine moved meanwhile.
    pub fn rise_mib(&self) -> Option<f64> {
        (self.instances > 0).then(|| (self.available_after_kib as f64 - self.available_loaded_kib as f64) / self.instances as f64 / KIB_PER_MIB)
    }
}

fn mean_kib(v: &[u64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.iter().sum::<u64>() as f64 / v.len() as f64
}

/// CPU time of idle instances over a window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct IdleCost {
    /// Instances measured.
    pub instances: u32,
    /// The window, ns.
    pub window_ns: u64,
    /// CPU time (user + system) of all the instances' processes over the window, ns.
    pub cpu_ns: u64,
}

impl IdleCost {
    /// CPU time per instance per second of wall time, µs/s.
    pub fn us_per_instance_per_s(&self) -> Option<f64> {
        (self.instances > 0 && self.window_ns > 0).then(|| self.cpu_ns as f64 / 1e3 / self.instances as f64 / (self.window_ns as f64 / 1e9))
    }
}

impl Storm {
    /// Quantile `q` of the ready starts' latencies, ms, through an
    /// hdrhistogram (3 significant digits) as every latency of isobench.
    pub fn latency_ms(&self, q: f64) -> Option<f64> {
        if self.latencies_ns.is_empty() {
            return None;
        }
        let mut h = isobench_workloads::hist::new_ns();
        for &ns in &self.latencies_ns {
            h.record(ns.max(1)).expect("an auto-resizing histogram takes any value");
        }
        Some(h.value_at_quantile(q) as f64 / 1e6)
    }

    /// Ready instances per second of the storm (ready / time until all ready).
    pub fn throughput_per_s(&self) -> Option<f64> {
        (self.ready > 0 && self.all_ready_ns > 0).then(|| self.ready as f64 / (self.all_ready_ns as f64 / 1e9))
    }

    /// Failed starts, all errors together.
    pub fn failed(&self) -> u32 {
        self.failures.iter().map(|f| f.count).sum()
    }
}

impl DensityEnv {
    /// The storms that measured memory, in order.
    fn samples(&self) -> impl Iterator<Item = &MemorySample> {
        self.storms.iter().filter_map(|s| s.memory.as_ref()).filter(|m| m.instances > 0)
    }

    /// The median over storms of a per-storm figure.
    fn median_of(&self, f: impl Fn(&MemorySample) -> Option<f64>) -> Option<f64> {
        let mut v: Vec<f64> = self.samples().filter_map(f).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        Some(v[v.len() / 2])
    }

    /// Mean PSS per instance, MiB (median over storms).
    pub fn pss_mib(&self) -> Option<f64> {
        self.median_of(|m| Some(m.pss_mib()))
    }

    /// Mean USS per instance, MiB (median over storms).
    pub fn uss_mib(&self) -> Option<f64> {
        self.median_of(|m| Some(m.uss_mib()))
    }

    /// MemAvailable fall per instance, MiB (median over storms).
    pub fn fall_mib(&self) -> Option<f64> {
        self.median_of(MemorySample::fall_mib)
    }

    /// How far the fall and the rise disagree per instance, MiB (the
    /// median over storms of |fall − rise|): what else moved MemAvailable.
    pub fn fall_noise_mib(&self) -> Option<f64> {
        self.median_of(|m| Some((m.fall_mib()? - m.rise_mib()?).abs()))
    }

    /// The storm at concurrency `c`.
    pub fn storm_at(&self, c: u32) -> Option<&Storm> {
        self.storms.iter().find(|s| s.concurrency == c)
    }

    /// Idle CPU per instance, µs per second (median over storms).
    pub fn idle_us_per_s(&self) -> Option<f64> {
        let mut v: Vec<f64> = self.storms.iter().filter_map(|s| s.idle.as_ref()?.us_per_instance_per_s()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        Some(v[v.len() / 2])
    }
}

impl DensityRun {
    pub fn env(&self, name: &str) -> Option<&DensityEnv> {
        self.envs.iter().find(|e| e.env == name)
    }

    /// `env`'s PSS per instance beyond the native agent's own, MiB.
    pub fn pss_beyond_agent_mib(&self, env: &str) -> Option<f64> {
        Some(self.env(env)?.pss_mib()? - self.env("native")?.pss_mib()?)
    }

    /// `env`'s MemAvailable fall per instance beyond the native agent's, MiB
    /// (kernel memory included: namespaces, cgroups, page tables).
    pub fn fall_beyond_agent_mib(&self, env: &str) -> Option<f64> {
        Some(self.env(env)?.fall_mib()? - self.env("native")?.fall_mib()?)
    }

    /// Instances per GiB and what it was taken from: 1024 MiB over the
    /// larger of the MemAvailable fall and the PSS per instance (the fall
    /// holds kernel memory PSS cannot see), or over the PSS alone when the
    /// fall is within its noise (|fall − rise| at least half the fall), as
    /// the machine's other use moved MemAvailable more than the instances did.
    pub fn per_gib(&self, env: &str) -> Option<(f64, PerGibBasis)> {
        let e = self.env(env)?;
        let pss = e.pss_mib()?;
        let (per, basis) = match (e.fall_mib(), e.fall_noise_mib()) {
            (Some(fall), Some(noise)) if fall > pss && noise < fall / 2.0 => (fall, PerGibBasis::Fall),
            (Some(_), Some(_)) => (pss, PerGibBasis::Pss),
            _ => (pss, PerGibBasis::PssOnly),
        };
        (per > 0.0).then(|| (KIB_PER_MIB / per, basis))
    }
}

/// What [`DensityRun::per_gib`] divided by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PerGibBasis {
    /// The MemAvailable fall (larger than PSS and above its noise).
    Fall,
    /// PSS: larger than the fall, or the fall within its noise.
    Pss,
    /// PSS: no fall was measured.
    PssOnly,
}

impl RunDir {
    /// Saves an `isobench density` run (density.json).
    pub fn save_density(&self, run: &DensityRun) -> Result<(), ResultsError> {
        self.write_json(DENSITY_FILE, run)
    }

    /// The saved `isobench density` run, if there is one.
    pub fn density(&self) -> Result<Option<DensityRun>, ResultsError> {
        self.read_json(DENSITY_FILE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(pss: &[u64], before: u64, loaded: u64, after: u64) -> MemorySample {
        MemorySample {
            instances: pss.len() as u32,
            processes: pss.len() as u32,
            pss_kib: pss.to_vec(),
            uss_kib: pss.iter().map(|p| p / 2).collect(),
            available_before_kib: before,
            available_loaded_kib: loaded,
            available_after_kib: after,
        }
    }

    fn storm(c: u32, lat_ms: &[u64], all_ms: u64, memory: MemorySample) -> Storm {
        Storm {
            requested: lat_ms.len() as u32,
            concurrency: c,
            ready: lat_ms.len() as u32,
            latencies_ns: lat_ms.iter().map(|ms| ms * 1_000_000).collect(),
            all_ready_ns: all_ms * 1_000_000,
            failures: vec![StartFailure { error: "x".into(), count: 2 }],
            stopped: None,
            memory: Some(memory),
            idle: Some(IdleCost { instances: 4, window_ns: 2_000_000_000, cpu_ns: 8_000_000 }),
        }
    }

    #[test]
    fn per_instance_figures_are_means_falls_and_the_difference_to_native() {
        let native = DensityEnv {
            env: "native".into(),
            label: "native".into(),
            vm: None,
            storms: vec![storm(1, &[1, 1, 1, 1], 4, sample(&[512, 512, 512, 512], 100_000, 96_000, 100_000))],
        };
        let container = DensityEnv {
            env: "container".into(),
            label: "container (default)".into(),
            vm: None,
            storms: vec![
                storm(1, &[2, 2, 2, 2], 8, sample(&[1024, 1024, 1024, 1024], 100_000, 88_000, 99_000)),
                storm(2, &[3, 3, 3, 3], 6, sample(&[2048; 4], 100_000, 84_000, 100_000)),
                storm(8, &[3, 3, 3, 9], 4, sample(&[1536; 4], 100_000, 80_000, 100_000)),
            ],
        };
        let run = DensityRun {
            min_available_mib: 2048,
            idle_window_ms: 2000,
            memory_source: String::new(),
            cpu_source: String::new(),
            ksm: KsmState::default(),
            envs: vec![native, container],
            skipped: Vec::new(),
            interrupted: false,
            interference: None,
        };
        let c = run.env("container").unwrap();
        // PSS means 1, 2, 1.5 MiB: the median storm is 1.5.
        assert_eq!(c.pss_mib(), Some(1.5));
        // Falls 12000, 16000, 20000 KiB over 4: median 16000/4/1024.
        assert!((c.fall_mib().unwrap() - 16_000.0 / 4.0 / 1024.0).abs() < 1e-9);
        assert_eq!(run.pss_beyond_agent_mib("container"), Some(1.0));
        assert!((run.fall_beyond_agent_mib("container").unwrap() - (3.90625 - 0.9765625)).abs() < 1e-9);
        let (per_gib, basis) = run.per_gib("container").unwrap();
        assert!((per_gib - 1024.0 / 3.90625).abs() < 1e-9 && basis == PerGibBasis::Fall, "{per_gib} {basis:?}");
        let s = c.storm_at(8).unwrap();
        assert_eq!(s.throughput_per_s(), Some(1000.0));
        assert_eq!(s.latency_ms(0.5).map(f64::round), Some(3.0));
        assert_eq!(s.latency_ms(0.99).map(f64::round), Some(9.0));
        assert_eq!(s.failed(), 2);
        // 8 ms over 4 instances over 2 s: 1000 µs/s per instance.
        assert_eq!(c.idle_us_per_s(), Some(1000.0));
        // |fall − rise| per storm: 250, 0, 0 KiB per instance; the median is 0.
        assert_eq!(c.fall_noise_mib(), Some(0.0));
        let m = &c.storm_at(1).unwrap().memory.as_ref().unwrap();
        assert!((m.rise_mib().unwrap() - 11_000.0 / 4.0 / 1024.0).abs() < 1e-9);
        assert!(run.pss_beyond_agent_mib("vm").is_none());
    }
}
