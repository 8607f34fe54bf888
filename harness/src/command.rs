//! `isobench run --command CMD`: the user's own command in every selected
//! environment's image, timed hyperfine's way (warm-up runs, then N timed
//! runs; mean, σ, median, min, max; a run that exits non-zero fails and is
//! not timed). Every environment is started first and held, then each
//! round runs the command once in each, in an order rotated every round,
//! so that the machine's drifts fall on all environments alike (the
//! interleaving of `isobench startup`). Each run is timed twice: by the
//! host, from sending the agent's `exec` request to its answer, and by the
//! agent inside, around fork, exec and wait (`isobench_workloads::exec`).
//!
//! The command is exec'd by path inside the environment's own root, the
//! image (`--rootfs`); environments whose agent runs in the host's file
//! system (native, unshare) chroot(2) the command into the image first,
//! inside a mount namespace of the command's own in which the image is
//! bound read-only (with a tmpfs on /tmp, as the container's read-only
//! root has), so that every environment runs the same files and no
//! command can change the cached image that later runs use
//! (`isobench_workloads::exec::private_namespace`). The vm runs it on the
//! image's disk under `--rootfs debian` and says why not otherwise
//! (`Environment::command_root`).
//!
//! `--data-dir DIR` gives every environment the user's directory itself,
//! where its fs.* metrics' volume goes (`Options::command_data`): /mnt in
//! isobench's container and the peers (a bind mount), the vm's
//! `/isobench-data` (virtio-9p), /mnt inside native's and unshare's
//! private namespace; the command starts there (its working directory),
//! so relative paths name the same files everywhere.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use isobench_workloads::protocol::{ExecRequest, ExecResult, PrivateRoot};

use crate::container::rootfs::{PreparedRootfs, RootfsChoice};
use crate::env::{self, CommandRoot, EnvKind, Environment, Instance, Options};
use crate::report::ReportError;
use crate::results::command::{CommandEnv, CommandParameters, CommandResult, CommandRun, Verdict, HOST_CLOCK, INSIDE_CLOCK};
use crate::results::run::Parameters;
use crate::results::{ResultsError, RunDir};
use crate::runner::{close_run, open_run, record_env, record_host, record_metadata, record_skip, Event};

/// Timed runs per environment by default: hyperfine's minimum.
pub const DEFAULT_RUNS: u32 = 10;
/// Untimed runs first by default: the first runs of a command pay for
/// reading its files into the page cache (and, natively, for making the
/// private mount namespace); three leave the timed runs the steady state.
pub const DEFAULT_WARMUP: u32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("--command {0:?}: unbalanced quotes or a trailing backslash; quote it as a POSIX shell would")]
    Split(String),
    #[error("--command {0:?}: no program in it")]
    Empty(String),
    #[error("--shell {0:?}: give `none` (exec without a shell) or an absolute path inside the image, such as /bin/sh")]
    Shell(String),
    #[error(transparent)]
    Results(#[from] ResultsError),
    #[error(transparent)]
    Report(#[from] ReportError),
}

/// How a command line becomes a program and its arguments (`--shell`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Shell {
    /// Split into words as a POSIX shell would (quotes, backslashes) and
    /// exec'd without a shell: hyperfine's `--shell=none`. The default,
    /// since the minimal rootfs has no shell and a shell's own start would
    /// be timed with the command.
    #[default]
    None,
    /// `SHELL -c CMD`, the shell being the image's (e.g. `/bin/sh`).
    Path(String),
}

impl std::str::FromStr for Shell {
    type Err = CommandError;

    fn from_str(s: &str) -> Result<Shell, CommandError> {
        match s.trim() {
            "none" => Ok(Shell::None),
            p if p.starts_with('/') && !p.contains('\0') => Ok(Shell::Path(p.into())),
            other => Err(CommandError::Shell(other.into())),
        }
    }
}

impl std::fmt::Display for Shell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Shell::None => f.write_str("none"),
            Shell::Path(p) => f.write_str(p),
        }
    }
}

/// What to run where.
#[derive(Debug, Clone)]
pub struct CommandPlan {
    pub envs: Vec<EnvKind>,
    /// The command lines, each measured in every environment.
    pub commands: Vec<String>,
    pub shell: Shell,
    /// Timed runs per environment.
    pub runs: u32,
    /// Untimed runs first.
    pub warmup: u32,
}

impl CommandPlan {
    /// The argument vector the agent execs for `command`.
    pub fn argv(&self, command: &str) -> Result<Vec<String>, CommandError> {
        match &self.shell {
            Shell::None => {
                let words = shlex::split(command).ok_or_else(|| CommandError::Split(command.into()))?;
                if words.is_empty() {
                    return Err(CommandError::Empty(command.into()));
                }
                Ok(words)
            }
            Shell::Path(sh) if command.trim().is_empty() => Err(CommandError::Empty(format!("{sh} -c {command:?}"))),
            Shell::Path(sh) => Ok(vec![sh.clone(), "-c".into(), command.into()]),
        }
    }

    /// Every command line splits: checked before anything starts.
    pub fn check(&self) -> Result<(), CommandError> {
        self.commands.iter().try_for_each(|c| self.argv(c).map(drop))
    }
}

/// How a `--command` run ended.
#[derive(Debug, Default)]
pub struct CommandOutcome {
    pub run: CommandRun,
    /// Path of report.md.
    pub report: Option<std::path::PathBuf>,
    /// Environment × command pairs that failed or could not run, one line each.
    pub problems: Vec<String>,
    pub interrupted: bool,
}

/// One environment held for the whole run.
struct Held {
    kind: EnvKind,
    label: String,
    env: Box<dyn Environment>,
    inst: Box<dyn Instance>,
    /// The directory the command's child chroots into, or none.
    root: Option<String>,
    /// The private mount namespace the child enters before the chroot.
    private_root: Option<PrivateRoot>,
    /// The working directory: the data directory as the command sees it.
    cwd: Option<String>,
    /// Where the command's files come from, in words.
    files: String,
    /// Where `--data-dir` is and how it got there, in words.
    data: Option<String>,
}

/// Where native's and unshare's private namespace binds `--data-dir`
/// inside the image: /mnt, where the containers get their volume.
pub const DATA_TARGET: &str = "/mnt";

/// The environment variables every command gets: the container's.
fn command_env() -> Vec<String> {
    crate::container::process::container_environment().into_iter().map(|(k, v)| format!("{k}={v}")).collect()
}

/// Runs `plan` into `out`: starts every environment, measures each command
/// interleaved across them, saves command.json after each command and
/// renders the report. `interrupted` (a signal's number, 0 while none came)
/// stops it after the current run, keeping what was measured.
pub fn measure(
    plan: &CommandPlan,
    opts: &Options,
    out: &RunDir,
    interrupted: &AtomicUsize,
    progress: &mut dyn FnMut(Event<'_>),
) -> Result<CommandOutcome, CommandError> {
    plan.check()?;
    let appended = out.holds_run();
    let parameters = CommandParameters { commands: plan.commands.clone(), shell: plan.shell.to_string(), runs: plan.runs, warmup: plan.warmup };
    record_host(
        out,
        "isobench run --command",
        Parameters {
            envs: Some(plan.envs.iter().map(|e| e.as_str().to_string()).collect()),
            accel: Some(format!("{:?}", opts.accel).to_lowercase()),
            command: Some(parameters),
            ..Parameters::default()
        },
    )?;
    open_run(out, appended)?;
    let mut outcome = CommandOutcome {
        run: CommandRun {
            runs: plan.runs,
            warmup: plan.warmup,
            shell: plan.shell.to_string(),
            order: "every environment started first and held; each round one run in each, the order rotated every round".into(),
            host_clock: HOST_CLOCK.into(),
            inside_clock: INSIDE_CLOCK.into(),
            ..CommandRun::default()
        },
        ..CommandOutcome::default()
    };
    // The image for environments in the host's file system, made once.
    let mut host_image: Option<Result<PreparedRootfs, String>> = None;
    let mut held: Vec<Held> = Vec::new();
    // (kind, label, files, reason) of environments that cannot run commands.
    let mut absent: Vec<(EnvKind, String, String, String)> = Vec::new();
    for &kind in &plan.envs {
        if interrupted.load(Ordering::SeqCst) != 0 {
            break;
        }
        progress(Event::Note(&format!("{kind}: preparing")));
        let prepared = env::prepare(kind, opts);
        if let Ok(Err(reason)) = prepared.as_ref().map(|e| e.command_root()) {
            // Not started at all: a guest boot would buy nothing.
            let label = prepared.as_ref().map(|e| e.label()).unwrap_or_else(|_| kind.to_string());
            progress(Event::Note(&format!("{label}: not measured: {reason}")));
            absent.push((kind, label, "not the image".into(), reason));
            continue;
        }
        let started = prepared.and_then(|mut e| {
            progress(Event::Note(&format!("{}: starting", e.label())));
            e.start().map(|i| (e, i))
        });
        let (environment, inst) = match started {
            Ok(pair) => pair,
            Err(e) => {
                let line = e.to_string();
                progress(Event::Problem(&line));
                record_skip(out, kind, &line)?;
                absent.push((kind, kind.to_string(), String::new(), line));
                continue;
            }
        };
        record_env(out, environment.as_ref(), inst.as_ref())?;
        let label = environment.label();
        // The data directory as the environment sees it, when asked.
        let storage = opts.command_data.as_ref().map(|_| environment.storage());
        let (root, files) = match environment.command_root() {
            Err(reason) => {
                absent.push((kind, label.clone(), "not the image".into(), reason));
                let _ = inst.shutdown();
                record_metadata(out, environment.as_ref())?;
                continue;
            }
            Ok(CommandRoot::Image) => (None, format!("the image ({}), the environment's own root", rootfs_name(&opts.container.rootfs))),
            Ok(CommandRoot::Host) if !nix::unistd::geteuid().is_root() => {
                (None, "the host's own files (not root: no chroot(2) into the image)".to_string())
            }
            Ok(CommandRoot::Host) => {
                let image = host_image.get_or_insert_with(|| {
                    // The cached image itself (held, never pruned while in
                    // use), bound read-only in the command's namespace.
                    PreparedRootfs::prepare(&opts.container.rootfs, &opts.workloads, true).map_err(|e| format!("the image for a chroot: {e}"))
                });
                match image {
                    Ok(img) => {
                        let files = format!(
                            "the image ({}) by chroot(2) into {}, bound read-only in a private mount namespace (a tmpfs on /tmp), the host's mount table untouched",
                            rootfs_name(&opts.container.rootfs),
                            img.path().display()
                        );
                        (Some(img.path().display().to_string()), files)
                    }
                    Err(reason) => {
                        absent.push((kind, label.clone(), String::new(), reason.clone()));
                        let _ = inst.shutdown();
                        continue;
                    }
                }
            }
        };
        let private_root = root.as_ref().map(|_| PrivateRoot { tmp: true, volume: None });
        let (private_root, cwd, data) = match storage {
            None => (private_root, None, None),
            Some(Err(reason)) => {
                absent.push((kind, label.clone(), files, format!("--data-dir: {reason}")));
                let _ = inst.shutdown();
                record_metadata(out, environment.as_ref())?;
                continue;
            }
            Some(Ok(path)) => {
                let host = path.host_dir.as_ref().map(|d| d.display().to_string()).unwrap_or_default();
                match private_root {
                    Some(mut p) => {
                        p.volume = Some((path.agent_dir.clone(), DATA_TARGET.to_string()));
                        let data = format!("{host} on {DATA_TARGET} (bound read-write in the private mount namespace), the working directory");
                        (Some(p), Some(DATA_TARGET.to_string()), Some(data))
                    }
                    None => {
                        let how = match &path.detail {
                            Some(d) => format!("{}, {d}", path.kind.describe()),
                            None => path.kind.describe().to_string(),
                        };
                        (None, Some(path.agent_dir.clone()), Some(format!("{host} on {} ({how}), the working directory", path.agent_dir)))
                    }
                }
            }
        };
        let data_note = data.as_deref().map(|d| format!("; --data-dir: {d}")).unwrap_or_default();
        progress(Event::Note(&format!("{label}: agent ready; the command's files: {files}{data_note}")));
        held.push(Held { kind, label, env: environment, inst, root, private_root, cwd, files, data });
    }
    for command in &plan.commands {
        if interrupted.load(Ordering::SeqCst) != 0 {
            break;
        }
        let argv = plan.argv(command)?;
        let result = measure_one(plan, command, argv, &mut held, &absent, interrupted, progress, &mut outcome.problems);
        outcome.run.commands.push(result);
        outcome.run.interrupted = interrupted.load(Ordering::SeqCst) != 0;
        out.save_command(&outcome.run)?;
    }
    for h in held {
        match h.inst.shutdown() {
            Ok(d) => progress(Event::Note(&format!("{}: stopped in {:.1} ms", h.label, d.as_secs_f64() * 1e3))),
            Err(e) => progress(Event::Problem(&format!("{}: unclean stop: {e}", h.label))),
        }
        record_metadata(out, h.env.as_ref())?;
    }
    drop(host_image);
    outcome.interrupted = interrupted.load(Ordering::SeqCst) != 0;
    if outcome.interrupted {
        outcome.run.interrupted = true;
        out.save_command(&outcome.run)?;
    }
    close_run(out, outcome.interrupted.then(|| interrupted.load(Ordering::SeqCst)))?;
    outcome.report = Some(crate::report::render(out)?);
    Ok(outcome)
}

/// `--rootfs`'s choice in words.
fn rootfs_name(choice: &RootfsChoice) -> String {
    match choice {
        RootfsChoice::Minimal => "--rootfs minimal".into(),
        RootfsChoice::Distro => "--rootfs debian".into(),
        RootfsChoice::Dir(d) => format!("--rootfs {}", d.display()),
    }
}

/// One command in every held environment: warm-ups, then the interleaved
/// rounds; an environment whose run fails leaves the rounds.
#[allow(clippy::too_many_arguments)]
fn measure_one(
    plan: &CommandPlan,
    command: &str,
    argv: Vec<String>,
    held: &mut [Held],
    absent: &[(EnvKind, String, String, String)],
    interrupted: &AtomicUsize,
    progress: &mut dyn FnMut(Event<'_>),
    problems: &mut Vec<String>,
) -> CommandResult {
    let env_vars = command_env();
    let request = |h: &Held| ExecRequest {
        argv: argv.clone(),
        env: env_vars.clone(),
        cwd: h.cwd.clone(),
        root: h.root.clone(),
        private_root: h.private_root.clone(),
        runs: 1,
        warmup: 0,
    };
    let mut rows: Vec<CommandEnv> = held
        .iter()
        .map(|h| CommandEnv {
            env: h.kind.to_string(),
            label: h.label.clone(),
            files: h.files.clone(),
            data: h.data.clone(),
            ..CommandEnv::default()
        })
        .collect();
    let mut fail = |row: &mut CommandEnv, reason: String, progress: &mut dyn FnMut(Event<'_>)| {
        row.verdict = Verdict::Failed;
        row.host_ns.clear();
        row.inside_ns.clear();
        let line = format!("{}: {command}: {reason}", row.label);
        progress(Event::Problem(&line));
        problems.push(line);
        row.reason = Some(reason);
    };
    // One run in `h`; Err(reason) when it failed.
    let once = |h: &mut Held, row: &mut CommandEnv, timed: bool| -> Result<(), String> {
        let req = request(h);
        let t0 = Instant::now();
        let r: ExecResult = h.inst.agent().exec(&req).map_err(|e| match e {
            crate::agent::AgentError::Remote(message) => message,
            other => other.to_string(),
        })?;
        let host = t0.elapsed().as_nanos() as u64;
        row.path = Some(r.path.clone());
        let Some(run) = r.runs.first() else { return Err("the agent answered no run".into()) };
        if !run.status.success() {
            row.status = Some(run.status);
            let which = if timed { "a timed run" } else { "a warm-up run" };
            return Err(format!("{} ({which} of {}; not timed)", run.status, r.path));
        }
        if timed {
            row.host_ns.push(host);
            row.inside_ns.push(run.ns);
        }
        Ok(())
    };
    progress(Event::Note(&format!("{command}: {} warm-up run(s) in each environment", plan.warmup)));
    for (h, row) in held.iter_mut().zip(rows.iter_mut()) {
        for _ in 0..plan.warmup {
            if interrupted.load(Ordering::SeqCst) != 0 {
                break;
            }
            if let Err(reason) = once(h, row, false) {
                // A terminal's Ctrl-C reaches the command (and a native
                // agent) too: what it broke is the signal's, not a failure.
                if interrupted.load(Ordering::SeqCst) == 0 {
                    fail(row, reason, progress);
                }
                break;
            }
        }
    }
    let total = plan.runs as usize;
    for round in 0..total {
        if interrupted.load(Ordering::SeqCst) != 0 || rows.iter().all(|r| r.verdict != Verdict::Measured) {
            break;
        }
        progress(Event::Begin { step: round + 1, total, what: &format!("{command}: round {} of {total}", round + 1) });
        let n = held.len();
        for k in 0..n {
            let i = (k + round) % n;
            if rows[i].verdict != Verdict::Measured || interrupted.load(Ordering::SeqCst) != 0 {
                continue;
            }
            if let Err(reason) = once(&mut held[i], &mut rows[i], true) {
                if interrupted.load(Ordering::SeqCst) != 0 {
                    break;
                }
                fail(&mut rows[i], reason, progress);
            }
        }
    }
    for (kind, label, files, reason) in absent {
        // Said once when the environment was found unable; counted per command.
        problems.push(format!("{label}: {command}: not measured: {reason}"));
        rows.push(CommandEnv {
            env: kind.to_string(),
            label: label.clone(),
            files: files.clone(),
            verdict: Verdict::NotMeasured,
            reason: Some(reason.clone()),
            ..CommandEnv::default()
        });
    }
    // Report order: the environments as asked.
    rows.sort_by_key(|r| plan.envs.iter().position(|k| k.as_str() == r.env));
    let mut result = CommandResult { command: command.into(), argv, envs: rows };
    result.compute();
    for e in result.envs.iter().filter(|e| e.verdict == Verdict::Measured) {
        if let Some(s) = e.inside {
            let line = format!(
                "{} {command}: median {} inside, {} from the host (n={})",
                e.label,
                crate::report::format::duration(s.p50_ns),
                e.host.map(|h| crate::report::format::duration(h.p50_ns)).unwrap_or_default(),
                s.n
            );
            progress(Event::Done { step: total, total, line: &line });
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(shell: Shell) -> CommandPlan {
        CommandPlan { envs: vec![EnvKind::Native], commands: vec![], shell, runs: 1, warmup: 0 }
    }

    #[test]
    fn a_command_line_is_split_as_a_shell_would_or_given_to_the_shell() {
        let p = plan(Shell::None);
        assert_eq!(p.argv("grep -c 'a b' \"/etc/x y\"").unwrap(), ["grep", "-c", "a b", "/etc/x y"]);
        assert_eq!(
            p.argv("echo 'open").unwrap_err().to_string(),
            "--command \"echo 'open\": unbalanced quotes or a trailing backslash; quote it as a POSIX shell would"
        );
        assert_eq!(p.argv("  ").unwrap_err().to_string(), "--command \"  \": no program in it");
        let p = plan("/bin/sh".parse().unwrap());
        assert_eq!(p.argv("true | false").unwrap(), ["/bin/sh", "-c", "true | false"]);
        assert_eq!("none".parse::<Shell>().unwrap(), Shell::None);
        assert_eq!(
            "sh".parse::<Shell>().unwrap_err().to_string(),
            "--shell \"sh\": give `none` (exec without a shell) or an absolute path inside the image, such as /bin/sh"
        );
    }
}
