//! The commands that print what isobench knows rather than measure:
//! `isobench list` (environments and metrics), `isobench doctor` (what this
//! host has), `isobench schema` (the JSON Schemas of what isobench writes);
//! each as text, or with `--json` as the library's record.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context as _, Result};
use isobench_harness::schema::{self, Schema};
use isobench_harness::{doctor, list};

/// Prints `v` as pretty JSON on stdout.
fn print_json(v: &impl serde::Serialize) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

/// `isobench list [--json]`.
pub fn list(json: bool) -> Result<ExitCode> {
    if json {
        print_json(&list::listing())?;
    } else {
        // A closed pipe (`isobench list | head`) ends the listing quietly.
        let _ = list::print(&mut std::io::stdout().lock());
    }
    Ok(ExitCode::SUCCESS)
}

/// `isobench doctor [--json]`: exit status 1 when a core environment
/// cannot run.
pub fn doctor(json: bool) -> Result<ExitCode> {
    let ready = if json {
        let d = doctor::diagnose();
        print_json(&d)?;
        d.ready
    } else {
        doctor::print(&mut std::io::stdout())
    };
    Ok(if ready { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// `isobench schema NAME` prints one schema; `--out DIR` writes them all.
pub fn schema(name: Option<Schema>, out: Option<PathBuf>) -> Result<ExitCode> {
    match (name, out) {
        (_, Some(dir)) => {
            for path in schema::write_all(&dir).with_context(|| format!("writing the schemas to {}", dir.display()))? {
                println!("{}", path.display());
            }
        }
        (Some(s), None) => print!("{}", s.text()),
        (None, None) => bail!("name a schema ({}) or give --out DIR", Schema::ALL.map(Schema::as_str).join(", ")),
    }
    Ok(ExitCode::SUCCESS)
}
