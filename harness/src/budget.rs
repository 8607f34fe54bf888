//! `isobench run --budget 3m`: a run between `--quick` (a smoke run) and
//! the full job, planned to finish in about the time given and still give
//! figures worth quoting. hyperfine bounds a benchmark by time as well as by
//! runs (`--min-runs`, `--max-runs`, its 3 s default); here the time is the
//! user's, and it is spread over the selected environments × metrics:
//! each environment's fixed cost (prepare, boot, stop; the vm's boot under
//! TCG takes seconds) and its env.start samples come off first, and the
//! rest is shared evenly as the time bound of every measurement (the
//! agent's loop stops at its bound or at the catalogue's iteration count).
//! The estimates are upper bounds measured on this project's 2-core nested
//! VM (2026-12-07): a quick run's vm boot took 8.5 s under TCG, a
//! container's start 16 ms.

use std::time::Duration;

use isobench_workloads::catalog::MetricSpec;

use crate::env::EnvKind;

#[derive(Debug, thiserror::Error)]
pub enum BudgetError {
    #[error("--budget {budget}: too short for {measurements} measurement(s) in {envs} environment(s); at least {need} (each environment's start and stop take {fixed}, and each measurement at least {min_ms} ms); give more time, fewer --env or fewer --metric")]
    TooShort { budget: String, measurements: usize, envs: usize, need: String, fixed: String, min_ms: u64 },
}

/// What preparing, starting and stopping one environment costs at most,
/// ms (the vm: a guest image, a TCG boot of 8.5 s measured, its stop).
pub fn env_fixed_ms(kind: EnvKind) -> u64 {
    match kind {
        EnvKind::Native => 500,
        EnvKind::Container => 2_000,
        EnvKind::Vm => 20_000,
        EnvKind::Runsc => 5_000,
        EnvKind::Runc | EnvKind::Crun | EnvKind::Bwrap | EnvKind::Unshare => 3_000,
    }
}

/// What one env.start sample (a whole start and stop) costs at most, ms.
pub fn start_ms(kind: EnvKind) -> u64 {
    match kind {
        EnvKind::Vm => 12_000,
        EnvKind::Runsc => 1_000,
        _ => 300,
    }
}

/// env.start samples per environment under a budget: enough for a median
/// and its interval (at n = 5 the 95 % interval of a median is the whole
/// range), no more, since the vm's each take seconds.
pub const STARTS: u64 = 5;

/// A measurement's bound is never less than this, ms: below it the
/// warm-up and the request's round trip are most of the time.
pub const MIN_MEASUREMENT_MS: u64 = 300;

/// What a measurement costs beyond its bound, ms: the warm-up, the
/// request and answer, the histogram saved, and its share of the report's
/// charts drawn at the end.
pub const PER_MEASUREMENT_MS: u64 = 350;

/// The budget spread over a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BudgetPlan {
    /// The budget asked for.
    pub budget: Duration,
    /// The time bound of each agent-measured metric, ms.
    pub max_ms: u64,
    /// env.start samples per environment.
    pub starts: u64,
    /// Environments' start, stop and env.start samples, ms.
    pub fixed_ms: u64,
    /// Agent-measured metrics × environments.
    pub measurements: usize,
}

impl BudgetPlan {
    /// The longest the plan can take by its estimates, ms: every
    /// environment's fixed cost and every measurement at its bound.
    pub fn worst_ms(&self) -> u64 {
        self.fixed_ms + self.measurements as u64 * (self.max_ms + PER_MEASUREMENT_MS)
    }
}

/// "3m", "1m30s", "45s" for `d`.
pub fn words(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 60, s % 60) {
        (0, s) => format!("{s}s"),
        (m, 0) => format!("{m}m"),
        (m, s) => format!("{m}m{s}s"),
    }
}

/// `--budget`'s value: whole hours, minutes and seconds as "3m", "90s",
/// "1m30s", "1h"; at least a second.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("{s:?} is not a duration: write it as 3m, 90s, 1m30s or 1h");
    let (mut total, mut digits) = (0u64, String::new());
    for c in s.trim().chars() {
        match c {
            '0'..='9' => digits.push(c),
            'h' | 'm' | 's' if !digits.is_empty() => {
                let n: u64 = digits.parse().map_err(|_| bad())?;
                total += n * match c {
                    'h' => 3600,
                    'm' => 60,
                    _ => 1,
                };
                digits.clear();
            }
            _ => return Err(bad()),
        }
    }
    if !digits.is_empty() || total == 0 {
        return Err(bad());
    }
    Ok(Duration::from_secs(total))
}

/// Spreads `budget` over `envs` × `metrics` (see the module
/// documentation).
pub fn plan(budget: Duration, envs: &[EnvKind], metrics: &[&MetricSpec]) -> Result<BudgetPlan, BudgetError> {
    let starts_measured = metrics.iter().any(|m| m.host_timed);
    let fixed_ms: u64 = envs.iter().map(|&k| env_fixed_ms(k) + if starts_measured { STARTS * start_ms(k) } else { 0 }).sum();
    let measurements = envs.len() * metrics.iter().filter(|m| !m.host_timed).count();
    let total = budget.as_millis() as u64;
    let left = total.saturating_sub(fixed_ms);
    let max_ms = match measurements {
        0 => MIN_MEASUREMENT_MS,
        n => (left / n as u64).saturating_sub(PER_MEASUREMENT_MS),
    };
    if max_ms < MIN_MEASUREMENT_MS || total < fixed_ms {
        let need = fixed_ms + measurements as u64 * (MIN_MEASUREMENT_MS + PER_MEASUREMENT_MS);
        return Err(BudgetError::TooShort {
            budget: words(budget),
            measurements,
            envs: envs.len(),
            need: words(Duration::from_millis(need).max(Duration::from_secs(1)) + Duration::from_millis(999)),
            fixed: words(Duration::from_millis(fixed_ms)),
            min_ms: MIN_MEASUREMENT_MS,
        });
    }
    Ok(BudgetPlan { budget, max_ms, starts: STARTS, fixed_ms, measurements })
}

#[cfg(test)]
mod tests {
    use super::*;
    use isobench_workloads::catalog::{self, CATALOG};

    fn all() -> Vec<&'static MetricSpec> {
        CATALOG.iter().collect()
    }

    #[test]
    fn the_plan_fits_its_budget() {
        let envs = [EnvKind::Native, EnvKind::Container, EnvKind::Vm];
        for minutes in [3, 5, 10, 30] {
            let budget = Duration::from_secs(60 * minutes);
            let p = plan(budget, &envs, &all()).unwrap();
            assert!(p.worst_ms() <= budget.as_millis() as u64, "{minutes} min: {p:?} takes {} ms", p.worst_ms());
            // and uses most of it: the bounds are not needlessly short
            assert!(p.worst_ms() * 10 >= budget.as_millis() as u64 * 9, "{minutes} min: {p:?}");
        }
    }

    #[test]
    fn the_vm_boot_and_its_starts_come_off_first() {
        let metrics = [catalog::lookup("env.start").unwrap(), catalog::lookup("syscall.getpid").unwrap()];
        let budget = Duration::from_secs(180);
        let with_vm = plan(budget, &[EnvKind::Native, EnvKind::Vm], &metrics).unwrap();
        let without = plan(budget, &[EnvKind::Native, EnvKind::Container], &metrics).unwrap();
        assert_eq!(with_vm.fixed_ms, 500 + 5 * 300 + 20_000 + 5 * 12_000);
        assert!(with_vm.max_ms < without.max_ms, "{with_vm:?} {without:?}");
        assert!(with_vm.worst_ms() <= 180_000 && without.worst_ms() <= 180_000);
    }

    #[test]
    fn a_budget_too_short_says_what_it_needs() {
        let e = plan(Duration::from_secs(30), &[EnvKind::Native, EnvKind::Container, EnvKind::Vm], &all()).unwrap_err().to_string();
        assert!(e.starts_with("--budget 30s: too short for") && e.contains("at least"), "{e}");
        assert_eq!(words(Duration::from_secs(90)), "1m30s");
    }

    #[test]
    fn durations_read_as_written() {
        assert_eq!(parse_duration("3m"), Ok(Duration::from_secs(180)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        for bad in ["", "3", "m", "0s", "3x", "-1m"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }
}
