//! `isobench run`'s progress on stderr: a bar with the current
//! environment × metric and an ETA on a terminal, one line per step
//! otherwise (logs, CI); problems always, everything else not with `--quiet`.

use isobench_harness::runner;

/// Progress of `isobench run` on stderr: a bar with the current env × metric
/// and an ETA on a terminal, one line per step otherwise (logs, CI).
pub struct Progress {
    quiet: bool,
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    pub fn new(quiet: bool) -> Progress {
        Progress { quiet, bar: None }
    }

    fn bar(&mut self, total: usize) -> Option<&indicatif::ProgressBar> {
        use std::io::IsTerminal;
        if self.quiet || !std::io::stderr().is_terminal() {
            return None;
        }
        Some(self.bar.get_or_insert_with(|| {
            let b = indicatif::ProgressBar::new(total as u64);
            b.set_style(
                indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} [{elapsed_precise}, ETA {eta}] {msg}").expect("a valid template"),
            );
            b
        }))
    }

    pub fn show(&mut self, ev: runner::Event<'_>) {
        use runner::Event;
        match ev {
            Event::Problem(line) => match &self.bar {
                Some(b) => b.println(format!("isobench: {line}")),
                None => eprintln!("isobench: {line}"),
            },
            _ if self.quiet => {}
            Event::Note(line) => match &self.bar {
                Some(b) => b.set_message(line.to_string()),
                None => eprintln!("isobench: {line}"),
            },
            Event::Begin { step, total, what } => match self.bar(total) {
                Some(b) => b.set_message(what.to_string()),
                None => eprintln!("isobench: [{step}/{total}] {what}"),
            },
            Event::Done { step, total, line } => match self.bar(total) {
                Some(b) => {
                    b.set_position(step as u64);
                    b.println(format!("  {line}"));
                }
                None => eprintln!("isobench: [{step}/{total}] {line}"),
            },
        }
    }

    pub fn finish(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}
