//! `isobench-agent`: the static workload server that runs in every
//! environment. It answers JSON-line requests (see
//! `isobench_workloads::protocol`) on stdin/stdout, or — as a guest's /init
//! (argv[0] ending in "init", or `--guest`) — on the virtio-serial port
//! `org.isobench.agent`, and powers the guest off when told.

use std::io::{BufReader, Write};
use std::os::fd::AsFd;

use isobench_workloads::{agent, guest};

const USAGE: &str = "usage: isobench-agent [--guest]

Serves isobench's JSON-lines protocol on stdin/stdout (one request per line,
one response per line; a {\"kind\":\"ready\"} line is sent first).
  --guest    run as a guest's /init: mount /proc /sys /dev, load the virtio
             modules, serve on the virtio-serial port org.isobench.agent and
             power off on shutdown (implied when started as /init)
  --list     print the metrics this agent implements";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let argv0 = args.first().map(String::as_str).unwrap_or("");
    let mut guest_mode = argv0.ends_with("init");
    for a in &args[1..] {
        match a.as_str() {
            "--guest" => guest_mode = true,
            "--list" => {
                for m in isobench_workloads::catalog::CATALOG {
                    println!("{}\t{}\t{}", m.name, m.unit.as_str(), m.operation);
                }
                return;
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return;
            }
            "-V" | "--version" => {
                println!("isobench-agent {}", env!("CARGO_PKG_VERSION"));
                return;
            }
            other => {
                eprintln!("isobench-agent: unknown argument {other:?}\n{USAGE}");
                std::process::exit(2);
            }
        }
    }

    if guest_mode {
        let port = match guest::setup() {
            Ok(p) => p,
            Err(e) => {
                // The console is the guest's serial line: the harness keeps it.
                eprintln!("isobench-agent: {e}");
                guest::power_off();
            }
        };
        let reader = match port.try_clone() {
            Ok(r) => BufReader::new(r),
            Err(e) => {
                eprintln!("isobench-agent: cannot duplicate the virtio port: {e}");
                guest::power_off();
            }
        };
        match port.try_clone() {
            Ok(marks) => isobench_workloads::marks::install(Box::new(marks)),
            Err(e) => eprintln!("isobench-agent: cannot duplicate the virtio port for loop marks: {e}"),
        }
        if let Err(e) = agent::serve(reader, port) {
            eprintln!("isobench-agent: {e}");
        }
        guest::power_off();
    }

    // Driven by the harness, ended by `shutdown` or end of file: a ^C at the
    // terminal (which reaches the whole process group) is the harness's to
    // handle, so a measurement in progress finishes.
    // SAFETY: installs SIG_IGN, which runs no code in a handler.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_IGN);
        libc::signal(libc::SIGQUIT, libc::SIG_IGN);
    }
    // Loop marks go to a duplicate of stdout, written whole and unbuffered
    // between a request and its (flushed) response.
    match std::io::stdout().as_fd().try_clone_to_owned() {
        Ok(fd) => isobench_workloads::marks::install(Box::new(std::fs::File::from(fd))),
        Err(e) => eprintln!("isobench-agent: cannot duplicate stdout for loop marks: {e}"),
    }
    let stdin = std::io::stdin().lock();
    let stdout = std::io::stdout().lock();
    match agent::serve(stdin, stdout) {
        Ok(_) => {}
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "isobench-agent: {e}");
            std::process::exit(1);
        }
    }
}
