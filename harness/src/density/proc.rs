//! What the host sees of running instances, from /proc: the process tree
//! under each instance's host process, its memory (PSS and USS from
//! `/proc/PID/smaps_rollup`, Kata's footprint measure), its CPU time
//! (`/proc/PID/task/TID/schedstat`, ns, every thread), MemAvailable
//! (`/proc/meminfo`, gVisor's density measure), KSM's state, and for a
//! QEMU guest its RAM and TCG translation-cache mappings
//! (`/proc/PID/smaps`).

use std::collections::BTreeMap;

use procfs::process::{MMPermissions, MMapPath, Process};
use procfs::Current;

use crate::results::density::{KsmState, VmMemory};

/// The test hook: `START_MIB[:STEP_MIB]` replaces MemAvailable by START
/// less STEP for every instance started so far, so a test can make the
/// safety margin stop a storm without exhausting the machine's memory.
pub const FAKE_AVAILABLE_ENV: &str = "ISOBENCH_TEST_MEMAVAILABLE_MIB";

/// Bytes per KiB.
const KIB: u64 = 1024;

#[derive(Debug, thiserror::Error)]
pub enum ProcError {
    #[error("/proc/meminfo has no MemAvailable: {0}")]
    Meminfo(String),
    #[error("{FAKE_AVAILABLE_ENV}={0:?} is not START_MIB[:STEP_MIB]")]
    Hook(String),
    #[error("listing /proc: {0}")]
    List(String),
}

/// MemAvailable, KiB, or the test hook's value when set; `started` is the
/// number of instances started so far (what the hook's STEP multiplies).
pub fn available_kib(started: u32) -> Result<u64, ProcError> {
    if let Ok(hook) = std::env::var(FAKE_AVAILABLE_ENV) {
        let (start, step) = hook.split_once(':').unwrap_or((hook.as_str(), "0"));
        let parse = |s: &str| s.trim().parse::<u64>().map_err(|_| ProcError::Hook(hook.clone()));
        let (start, step) = (parse(start)?, parse(step)?);
        return Ok(start.saturating_sub(step * u64::from(started)) * KIB);
    }
    let m = procfs::Meminfo::current().map_err(|e| ProcError::Meminfo(e.to_string()))?;
    m.mem_available.map(|b| b / KIB).ok_or_else(|| ProcError::Meminfo("a kernel before 3.14".into()))
}

/// `/sys/kernel/mm/ksm/{run,pages_sharing}` as they are (read, never written).
pub fn ksm() -> KsmState {
    let read = |f: &str| std::fs::read_to_string(format!("/sys/kernel/mm/ksm/{f}")).ok().and_then(|s| s.trim().parse::<u64>().ok());
    KsmState { run: read("run").map(|v| v as u32), pages_sharing: read("pages_sharing") }
}

/// The process tree under each root pid, roots in the order given: every
/// pid whose chain of parents reaches the root. A root that is gone has an
/// empty tree.
pub fn trees(roots: &[u32]) -> Result<Vec<Vec<i32>>, ProcError> {
    let mut children: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
    let mut alive = std::collections::BTreeSet::new();
    for p in procfs::process::all_processes().map_err(|e| ProcError::List(e.to_string()))?.flatten() {
        // A process that exits between the listing and its read is gone.
        let Ok(stat) = p.stat() else { continue };
        alive.insert(stat.pid);
        children.entry(stat.ppid).or_default().push(stat.pid);
    }
    Ok(roots
        .iter()
        .map(|&root| {
            let root = root as i32;
            let mut tree = Vec::new();
            let mut todo: Vec<i32> = alive.contains(&root).then_some(root).into_iter().collect();
            while let Some(pid) = todo.pop() {
                tree.push(pid);
                todo.extend(children.get(&pid).into_iter().flatten());
            }
            tree
        })
        .collect())
}

/// PSS and USS of a set of processes, KiB: sums of `smaps_rollup`'s `Pss`
/// and `Private_Clean` + `Private_Dirty`. A process gone meanwhile counts 0.
pub fn pss_uss_kib(pids: &[i32]) -> (u64, u64) {
    let (mut pss, mut uss) = (0, 0);
    for &pid in pids {
        let Ok(r) = Process::new(pid).and_then(|p| p.smaps_rollup()) else { continue };
        for m in r.memory_map_rollup.iter() {
            let get = |k: &str| m.extension.map.get(k).copied().unwrap_or(0);
            pss += get("Pss") / KIB;
            uss += (get("Private_Clean") + get("Private_Dirty")) / KIB;
        }
    }
    (pss, uss)
}

/// CPU time of every thread of a set of processes so far, ns
/// (`schedstat`'s run time). Threads gone meanwhile are not counted.
pub fn cpu_ns(pids: &[i32]) -> u64 {
    let mut ns = 0;
    for &pid in pids {
        let Ok(tasks) = Process::new(pid).and_then(|p| p.tasks()) else { continue };
        ns += tasks.flatten().filter_map(|t| t.schedstat().ok()).map(|s| s.sum_exec_runtime).sum::<u64>();
    }
    ns
}

/// The guest's RAM and TCG translation-cache mappings of QEMU `pid`:
/// RAM is the anonymous mapping of `guest_ram_mib` (QEMU may round it up
/// by its alignment, at most [`RAM_SLACK_MIB`]); the translation cache is
/// the largest anonymous executable mapping (QEMU's code_gen_buffer, mapped
/// read-write-execute).
pub fn vm_memory(pid: u32, guest_ram_mib: u64, accelerator: &str) -> VmMemory {
    let mut out = VmMemory { guest_ram_mib, accelerator: accelerator.to_string(), ..Default::default() };
    let Ok(maps) = Process::new(pid as i32).and_then(|p| p.smaps()) else { return out };
    let mib = |b: u64| b / KIB / KIB;
    let ram = guest_ram_mib..=guest_ram_mib + RAM_SLACK_MIB;
    let rss = |m: &procfs::process::MemoryMap| m.extension.map.get("Rss").copied().unwrap_or(0) / KIB;
    let mut code: Option<&procfs::process::MemoryMap> = None;
    for m in maps.iter().filter(|m| m.pathname == MMapPath::Anonymous) {
        let size = m.address.1 - m.address.0;
        if out.guest_ram_resident_kib.is_none() && ram.contains(&mib(size)) && !m.perms.contains(MMPermissions::EXECUTE) {
            out.guest_ram_resident_kib = Some(rss(m));
        }
        if m.perms.contains(MMPermissions::EXECUTE | MMPermissions::WRITE) && code.map_or(true, |c| size > c.address.1 - c.address.0) {
            code = Some(m);
        }
    }
    if accelerator == "tcg" {
        if let Some(c) = code {
            out.tcg_cache_reserved_kib = Some((c.address.1 - c.address.0) / KIB);
            out.tcg_cache_resident_kib = Some(rss(c));
        }
    }
    out
}

/// How far above `-m` QEMU's RAM mapping may be (its alignment), MiB.
pub const RAM_SLACK_MIB: u64 = 4;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_a_tree_memory_and_cpu_time() {
        let me = std::process::id();
        let mut child = std::process::Command::new("sleep").arg("5").spawn().unwrap();
        let t = trees(&[me, u32::MAX - 1]).unwrap();
        assert!(t[0].contains(&(me as i32)) && t[0].contains(&(child.id() as i32)), "{t:?}");
        assert!(t[1].is_empty());
        let (pss, uss) = pss_uss_kib(&t[0]);
        assert!(pss > 0 && uss > 0 && uss <= pss + 1, "pss {pss} uss {uss}");
        assert!(cpu_ns(&[me as i32]) > 0);
        child.kill().unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn the_hook_replaces_mem_available_and_falls_per_instance() {
        // One test touches the variable, so no other test sees it.
        std::env::set_var(FAKE_AVAILABLE_ENV, "2100:10");
        assert_eq!(available_kib(0).unwrap(), 2100 * 1024);
        assert_eq!(available_kib(5).unwrap(), 2050 * 1024);
        std::env::set_var(FAKE_AVAILABLE_ENV, "lots");
        assert!(available_kib(0).unwrap_err().to_string().contains("START_MIB[:STEP_MIB]"));
        std::env::remove_var(FAKE_AVAILABLE_ENV);
        assert!(available_kib(0).unwrap() > 0);
    }
}
