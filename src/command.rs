//! `isobench run --command CMD`: the options of the user's own command (an
//! option of `run`, not a command of its own, because it takes every
//! environment option of `run` and writes the same results folder), and the
//! glue that runs it through `isobench_harness::command` and prints its
//! table.

use std::sync::atomic::AtomicUsize;

use anyhow::Result;
use isobench_harness::command::{self, CommandOutcome, CommandPlan, Shell};
use isobench_harness::env::{EnvKind, Options};
use isobench_harness::report::section::command::text_table;
use isobench_harness::results::RunDir;

use crate::progress::Progress;

/// `isobench run --command` and its options.
#[derive(clap::Args, Debug, Clone)]
pub struct CommandArgs {
    /// Run CMD in every environment's image instead of the metrics, hyperfine's way: --warmup
    /// untimed runs, then --runs timed runs, each timed from the host (request → the agent's
    /// answer) and inside (the agent's clock around fork, exec and wait); mean ± σ, median,
    /// min … max and the median over native's with its 95 % interval. A run that exits non-zero
    /// fails its environment (not timed; the others go on). CMD is split into words and exec'd
    /// without a shell unless --shell; the program is searched in PATH inside the image
    /// (--rootfs; native and unshare chroot into it; the vm boots from the image's disk under
    /// --rootfs debian, and says "not measured" on the initramfs of the minimal rootfs; native's
    /// and unshare's chroot sees the image read-only in a private mount namespace, a tmpfs on
    /// /tmp). With --data-dir DIR the command starts in DIR, in every environment: /mnt in
    /// the containers and peers (a bind mount) and under native's and unshare's chroot, the vm's
    /// /isobench-data (virtio-9p); what it writes there lands in DIR. Repeat for several commands. An option of `run` because it
    /// takes every environment option (--env, --rootfs, --profile, --ns, the vm's) and writes
    /// the same results folder (command.json, report.md); it cannot be combined with --metric
    #[arg(long = "command", visible_alias = "cmd", value_name = "CMD", conflicts_with = "metrics")]
    pub commands: Vec<String>,
    /// Timed runs of each --command per environment
    #[arg(long, value_name = "N", default_value_t = command::DEFAULT_RUNS, requires = "commands",
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub runs: u32,
    /// Untimed runs of each --command per environment first (page cache; native's private mount namespace)
    #[arg(long, value_name = "N", default_value_t = command::DEFAULT_WARMUP, requires = "commands",
          value_parser = clap::value_parser!(u32).range(0..=1_000))]
    pub warmup: u32,
    /// How --command's CMD becomes a program: `none` (default: split into words as a POSIX
    /// shell would and exec'd directly, hyperfine's --shell=none; the minimal rootfs has no
    /// shell) or a shell's absolute path inside the image (`/bin/sh`: `/bin/sh -c CMD`, the
    /// shell's own start timed with it; an image without it fails with one line)
    #[arg(long, value_name = "none|PATH", default_value = "none", requires = "commands")]
    pub shell: Shell,
}

/// Checks every command line splits (and that the options make sense)
/// before any folder is written: bad input is one line.
pub fn check(args: &CommandArgs) -> Result<()> {
    let plan = CommandPlan { envs: Vec::new(), commands: args.commands.clone(), shell: args.shell.clone(), runs: args.runs, warmup: args.warmup };
    Ok(plan.check()?)
}

/// `--data-dir` for `--command`: the user's directory, absolute. Errors:
/// one line naming it.
pub fn data_dir(dir: &std::path::Path) -> Result<std::path::PathBuf> {
    let abs = dir.canonicalize().map_err(|e| anyhow::anyhow!("--data-dir {}: {e}", dir.display()))?;
    if !abs.is_dir() {
        anyhow::bail!("--data-dir {}: not a directory", dir.display());
    }
    Ok(abs)
}

/// Runs the commands into `out` and prints the table on stdout.
pub fn run(
    args: &CommandArgs,
    envs: Vec<EnvKind>,
    opts: &Options,
    out: &RunDir,
    interrupted: &AtomicUsize,
    display: &mut Progress,
) -> Result<CommandOutcome> {
    let plan = CommandPlan { envs, commands: args.commands.clone(), shell: args.shell.clone(), runs: args.runs, warmup: args.warmup };
    let outcome = command::measure(&plan, opts, out, interrupted, &mut |ev| display.show(ev))?;
    display.finish();
    print!("{}", text_table(&outcome.run));
    Ok(outcome)
}
