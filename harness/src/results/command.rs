//! What `isobench run --command` measured (`command.json`, [`CommandRun`]):
//! per command and environment, each timed run's duration on two clocks —
//! the host's, from the request being sent to the agent's answer, and the
//! environment's own, the agent's CLOCK_MONOTONIC around fork, exec and
//! wait — with hyperfine's statistics of each (mean, standard deviation,
//! median, minimum, maximum), the median's overhead against native as a
//! ratio with its 95 % interval, and the runs that failed (their exit
//! status, never timed) or could not run (why, in one line).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use isobench_workloads::protocol::ExitStatus;

use super::{ResultsError, RunDir};
use crate::collect::interval::{median_ci_sorted, ratio_ci, Z975};

/// The file in a results folder.
pub const COMMAND_FILE: &str = "command.json";

/// The host's clock, in words (the row's name for it).
pub const HOST_CLOCK: &str = "host: request sent → agent's answer (includes the agent channel's round trip)";
/// The environment's clock, in words.
pub const INSIDE_CLOCK: &str = "inside: the agent's CLOCK_MONOTONIC around fork, exec and wait";

/// What run.json's `parameters.command` records.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CommandParameters {
    /// The command lines, in order.
    pub commands: Vec<String>,
    /// `none` or the shell's path inside the image.
    pub shell: String,
    pub runs: u32,
    pub warmup: u32,
}

/// One `isobench run --command` run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CommandRun {
    /// Timed runs per command and environment.
    pub runs: u32,
    /// Untimed runs first, per command and environment.
    pub warmup: u32,
    /// How each command line became a program and its arguments:
    /// `none` (split into words as a POSIX shell would, exec'd without a
    /// shell: hyperfine's `--shell=none`) or the shell's path (`SHELL -c
    /// CMD`, the shell taken from the image).
    pub shell: String,
    /// How the environments' runs were ordered.
    pub order: String,
    /// What each clock times.
    pub host_clock: String,
    pub inside_clock: String,
    pub commands: Vec<CommandResult>,
    /// Stopped by SIGINT or SIGTERM: only the runs before it are here.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub interrupted: bool,
}

/// One command line in every environment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CommandResult {
    /// The command line as given.
    pub command: String,
    /// What the agent exec'd: the program (searched in PATH inside the
    /// image) and its arguments.
    pub argv: Vec<String>,
    pub envs: Vec<CommandEnv>,
}

/// What became of one command in one environment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every run exited 0 and was timed.
    #[default]
    Measured,
    /// A run exited non-zero (or was killed), or the program could not be
    /// exec'd: not timed.
    Failed,
    /// The environment could not run it (not startable here, or its root
    /// is not the image).
    NotMeasured,
}

/// One environment's runs of one command.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CommandEnv {
    /// `native`, `container`, `vm`, ...
    pub env: String,
    /// Its column label with caveats.
    pub label: String,
    /// Where the command's files came from, in words.
    pub files: String,
    /// `--data-dir`: the host directory, where the command saw it and how
    /// it got there (a bind mount, virtio-9p), in words; the command's
    /// working directory. Absent without `--data-dir`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    pub verdict: Verdict,
    /// Why it failed or was not measured: one line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The failed run's status, when it ran and did not exit 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ExitStatus>,
    /// The path the agent exec'd, inside the command's root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Each timed run on the host's clock ([`HOST_CLOCK`]), ns, in order.
    #[serde(default)]
    pub host_ns: Vec<u64>,
    /// Each timed run on the environment's clock ([`INSIDE_CLOCK`]), ns.
    #[serde(default)]
    pub inside_ns: Vec<u64>,
    /// Statistics of `host_ns` and `inside_ns` (absent when not measured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<Stats>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inside: Option<Stats>,
    /// The median over native's, on each clock, with its 95 % interval
    /// (absent for native itself and when either was not measured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_vs_native: Option<Ratio>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inside_vs_native: Option<Ratio>,
}

/// hyperfine's statistics of exact samples, ns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Stats {
    pub n: usize,
    pub mean_ns: f64,
    /// The sample standard deviation (n − 1), 0 for one run.
    pub stdev_ns: f64,
    pub p50_ns: f64,
    pub min_ns: u64,
    pub max_ns: u64,
    /// The median's 97.5 % interval from order statistics
    /// (`collect::interval`), what the ratio's 95 % interval is made of.
    pub p50_ci_ns: (u64, u64),
}

impl Stats {
    /// Of `samples`; `None` when there are none.
    pub fn of(samples: &[u64]) -> Option<Stats> {
        if samples.is_empty() {
            return None;
        }
        let mut s = samples.to_vec();
        s.sort_unstable();
        let n = s.len();
        let mean = s.iter().map(|&x| x as f64).sum::<f64>() / n as f64;
        let var = if n > 1 { s.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / (n - 1) as f64 } else { 0.0 };
        let p50 = if n % 2 == 1 { s[n / 2] as f64 } else { (s[n / 2 - 1] as f64 + s[n / 2] as f64) / 2.0 };
        Some(Stats { n, mean_ns: mean, stdev_ns: var.sqrt(), p50_ns: p50, min_ns: s[0], max_ns: s[n - 1], p50_ci_ns: median_ci_sorted(&s, Z975) })
    }
}

/// A ratio of two medians and its 95 % interval (Bonferroni over the two
/// medians' 97.5 % intervals: `collect::interval::ratio_ci`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Ratio {
    pub ratio: f64,
    pub low: f64,
    pub high: f64,
}

impl Ratio {
    /// `value`'s median over `base`'s; `None` when a median or an interval
    /// end is not positive.
    pub fn of(value: &Stats, base: &Stats) -> Option<Ratio> {
        let ci = |s: &Stats| (s.p50_ci_ns.0 as f64, s.p50_ci_ns.1 as f64);
        let (low, high) = ratio_ci(ci(value), ci(base))?;
        (base.p50_ns > 0.0).then(|| Ratio { ratio: value.p50_ns / base.p50_ns, low, high })
    }
}

impl CommandResult {
    /// Fills each environment's statistics and its ratios to native.
    pub fn compute(&mut self) {
        for e in &mut self.envs {
            e.host = Stats::of(&e.host_ns);
            e.inside = Stats::of(&e.inside_ns);
        }
        let native = self.envs.iter().find(|e| e.env == "native" && e.verdict == Verdict::Measured).map(|e| (e.host, e.inside));
        for e in &mut self.envs {
            if e.env == "native" || e.verdict != Verdict::Measured {
                continue;
            }
            if let Some((nh, ni)) = native {
                e.host_vs_native = e.host.zip(nh).and_then(|(v, b)| Ratio::of(&v, &b));
                e.inside_vs_native = e.inside.zip(ni).and_then(|(v, b)| Ratio::of(&v, &b));
            }
        }
    }
}

impl RunDir {
    /// Writes command.json.
    pub fn save_command(&self, run: &CommandRun) -> Result<(), ResultsError> {
        self.write_json(COMMAND_FILE, run)
    }

    /// command.json, when `isobench run --command` wrote one here.
    pub fn command(&self) -> Result<Option<CommandRun>, ResultsError> {
        self.read_json(COMMAND_FILE)
    }
}

/// A computed result for the tests of this record and of its report
/// section: `true` run 20 times natively (`ns` each inside, twice that on
/// the host's clock), in the container at 1.5× that, and a vm labelled
/// `vm_label` that was not measured.
#[cfg(test)]
pub(crate) fn example(ns: u64, vm_label: &str) -> CommandResult {
    let env = |name: &str, v: Verdict, ns: Vec<u64>| CommandEnv {
        env: name.into(),
        label: name.into(),
        verdict: v,
        host_ns: ns.iter().map(|x| x * 2).collect(),
        inside_ns: ns,
        ..CommandEnv::default()
    };
    let mut c = CommandResult {
        command: "true".into(),
        argv: vec!["true".into()],
        envs: vec![
            env("native", Verdict::Measured, vec![ns; 20]),
            env("container", Verdict::Measured, vec![ns * 3 / 2; 20]),
            env(vm_label, Verdict::NotMeasured, vec![]),
        ],
    };
    c.envs[2].reason = Some("the vm's root is the initramfs".into());
    c.compute();
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistics_are_hyperfines() {
        let s = Stats::of(&[10, 20, 30, 40]).unwrap();
        assert_eq!((s.n, s.mean_ns, s.p50_ns, s.min_ns, s.max_ns), (4, 25.0, 25.0, 10, 40));
        assert!((s.stdev_ns - 12.909_944).abs() < 1e-5, "sample stdev (n − 1): {}", s.stdev_ns);
        let one = Stats::of(&[7]).unwrap();
        assert_eq!((one.stdev_ns, one.p50_ns, one.p50_ci_ns), (0.0, 7.0, (7, 7)));
        assert_eq!(Stats::of(&[]), None);
    }

    #[test]
    fn each_environment_gets_its_ratio_to_native_on_each_clock() {
        let c = example(100, "vm");
        let r = c.envs[1].inside_vs_native.unwrap();
        assert_eq!((r.ratio, r.low, r.high), (1.5, 1.5, 1.5));
        assert_eq!(c.envs[1].host_vs_native.unwrap().ratio, 1.5);
        assert_eq!((c.envs[0].inside_vs_native, c.envs[2].inside), (None, None));
    }
}
