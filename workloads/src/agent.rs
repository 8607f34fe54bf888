//! The agent's serve loop: read JSON-line requests, run metrics, answer.
//!
//! The same loop runs natively, as a container's PID 1 and as a guest's
//! /init; only the channel differs (stdin/stdout or a virtio-serial port).

use std::io::{BufRead, Write};
use std::path::PathBuf;

use crate::catalog;
use crate::metrics::{self, Context};
use crate::protocol::{to_line, AgentInfo, Request, Response, ServeRequest};

/// Why [`serve`] returned.
#[derive(Debug, PartialEq, Eq)]
pub enum Exit {
    /// The harness sent `Shutdown` (and got `Bye`).
    Shutdown,
    /// The channel reached end of file: the harness went away.
    Eof,
}

/// Where the agent runs, as seen from inside.
pub fn info(timer_overhead_ns: f64) -> AgentInfo {
    info_with(timer_overhead_ns, &noop_path())
}

/// [`info`], for the no-op at `noop`.
fn info_with(timer_overhead_ns: f64, noop: &std::path::Path) -> AgentInfo {
    let uname = nix::sys::utsname::uname().ok();
    let uptime_s = nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME).map(|t| t.tv_sec() as f64 + t.tv_nsec() as f64 * 1e-9).unwrap_or(0.0);
    AgentInfo {
        pid: std::process::id(),
        hostname: nix::unistd::gethostname().ok().and_then(|h| h.into_string().ok()).unwrap_or_default(),
        kernel: uname.map(|u| u.release().to_string_lossy().into_owned()).unwrap_or_default(),
        clocksource: std::fs::read_to_string("/sys/devices/system/clocksource/clocksource0/current_clocksource").ok().map(|s| s.trim().to_string()),
        uptime_s,
        timer_overhead_ns,
        version: env!("CARGO_PKG_VERSION").to_string(),
        metrics: catalog::CATALOG.iter().filter(|m| !m.host_timed).map(|m| m.name.to_string()).collect(),
        security: crate::protocol::SecurityStatus::of_self(),
        spawn: Some(metrics::spawn::target(noop)),
    }
}

/// The `noop` binary: `$ISOBENCH_NOOP`, else `noop` beside the agent's own
/// executable (natively the cached rootfs's, the container's very file;
/// in a container `/noop`), else `/noop`. The spawn metrics exec it by a
/// relative path from its directory (`metrics::spawn`).
pub fn noop_path() -> PathBuf {
    if let Some(p) = std::env::var_os("ISOBENCH_NOOP") {
        return p.into();
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join("noop")))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("/noop"))
}

/// Reaps exited children we did not wait for (our duty as PID 1).
fn reap_orphans() {
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    while let Ok(status) = waitpid(None, Some(WaitPidFlag::WNOHANG)) {
        if status == WaitStatus::StillAlive {
            break;
        }
    }
}

/// Starts the server end of a `*.boundary` metric (see `metrics::net`).
fn start_server(req: &ServeRequest) -> Result<metrics::net::Server, String> {
    let spec = catalog::lookup(&req.metric).ok_or_else(|| format!("unknown metric {:?}", req.metric))?;
    let bind = req.bind.parse().map_err(|e| format!("{}: bad bind address {:?}: {e}", req.metric, req.bind))?;
    metrics::net::serve(spec, bind, req.cpu, req.pin).map_err(|e| e.to_string())
}

/// Sends `Ready`, then serves requests until `Shutdown` or end of file.
pub fn serve(input: impl BufRead, mut output: impl Write) -> std::io::Result<Exit> {
    let overhead = metrics::timer_overhead_ns();
    let noop = noop_path();
    let ctx = Context::for_noop(&noop);
    let is_init = std::process::id() == 1;
    // The server thread of a cross-boundary metric, between Serve and Join.
    let mut server: Option<metrics::net::Server> = None;
    output.write_all(to_line(&Response::Ready(info_with(overhead, &noop))).as_bytes())?;
    output.flush()?;
    for line in input.lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let response = match serde_json::from_str::<Request>(&line) {
            Err(e) => Response::Error { message: format!("bad request ({e}): {line}") },
            Ok(Request::Info) => Response::Info(info_with(overhead, &noop)),
            Ok(Request::Shutdown) => {
                output.write_all(to_line(&Response::Bye).as_bytes())?;
                output.flush()?;
                return Ok(Exit::Shutdown);
            }
            Ok(Request::Run(req)) if server.is_some() => {
                Response::Error { message: format!("{}: a boundary server is still running; send join first", req.metric) }
            }
            Ok(Request::Run(req)) => match metrics::run(&req, &ctx) {
                Ok(r) => Response::Result(r),
                Err(e) => Response::Error { message: e.to_string() },
            },
            Ok(Request::Serve(_)) if server.is_some() => Response::Error { message: "a boundary server is already running; send join first".into() },
            Ok(Request::Serve(req)) => match start_server(&req) {
                Ok(s) => {
                    let (addr, cpu) = (s.addr.to_string(), s.cpu);
                    server = Some(s);
                    Response::Serving { addr, cpu }
                }
                Err(message) => Response::Error { message },
            },
            Ok(Request::Join) => match server.take().map(metrics::net::Server::join) {
                None => Response::Error { message: "join: no boundary server is running".into() },
                Some(Ok(bytes)) => Response::Served { bytes },
                Some(Err(e)) => Response::Error { message: e.to_string() },
            },
        };
        if is_init {
            reap_orphans();
        }
        output.write_all(to_line(&response).as_bytes())?;
        output.flush()?;
    }
    Ok(Exit::Eof)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Response;

    fn responses(out: &[u8]) -> Vec<Response> {
        std::str::from_utf8(out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    #[test]
    fn serves_ready_run_error_and_bye() {
        let input = concat!(
            r#"{"op":"run","metric":"syscall.getpid","iterations":1000,"max_ms":5000}"#,
            "\n",
            "this is not json\n",
            r#"{"op":"run","metric":"syscall.nope","iterations":1,"max_ms":1}"#,
            "\n",
            r#"{"op":"info"}"#,
            "\n",
            r#"{"op":"shutdown"}"#,
            "\n",
            r#"{"op":"info"}"#,
            "\n"
        );
        let mut out = Vec::new();
        assert_eq!(serve(input.as_bytes(), &mut out).unwrap(), Exit::Shutdown);
        let r = responses(&out);
        assert_eq!(r.len(), 6, "nothing is answered after shutdown: {r:?}");
        match &r[0] {
            Response::Ready(i) => {
                assert_eq!(i.pid, std::process::id());
                assert!(i.metrics.iter().any(|m| m == "syscall.getpid"));
            }
            other => panic!("first line must be ready, got {other:?}"),
        }
        match &r[1] {
            Response::Result(res) => {
                assert_eq!(res.iterations, 1000);
                assert!(res.elapsed_ns > 0);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(&r[2], Response::Error { message } if message.contains("bad request")));
        assert!(matches!(&r[3], Response::Error { message } if message.contains("unknown metric")));
        assert!(matches!(&r[4], Response::Info(_)));
        assert_eq!(r[5], Response::Bye);
    }

    #[test]
    fn serve_and_join_bracket_a_boundary_server() {
        use std::io::{Read, Write};
        // The host side is this test: it connects to the address the agent
        // reports between serve and join.
        let (to_agent_r, mut to_agent_w) = std::io::pipe().unwrap();
        let (from_agent_r, from_agent_w) = std::io::pipe().unwrap();
        let agent = std::thread::spawn(move || serve(std::io::BufReader::new(to_agent_r), from_agent_w).unwrap());
        let mut lines = std::io::BufReader::new(from_agent_r).lines();
        let mut next = || serde_json::from_str::<Response>(&lines.next().unwrap().unwrap()).unwrap();
        assert!(matches!(next(), Response::Ready(_)));
        to_agent_w.write_all(b"{\"op\":\"join\"}\n").unwrap();
        assert!(matches!(next(), Response::Error { message } if message.contains("no boundary server")));
        to_agent_w.write_all(b"{\"op\":\"serve\",\"metric\":\"net.tcp_rr.boundary\",\"bind\":\"127.0.0.1:0\"}\n").unwrap();
        let Response::Serving { addr, .. } = next() else { panic!("serving expected") };
        to_agent_w.write_all(b"{\"op\":\"run\",\"metric\":\"syscall.getpid\",\"iterations\":10,\"max_ms\":100}\n").unwrap();
        assert!(matches!(next(), Response::Error { message } if message.contains("send join first")), "no fork metric beside a live thread");
        let mut c = std::net::TcpStream::connect(&addr).unwrap();
        for _ in 0..5 {
            c.write_all(b"x").unwrap();
            let mut b = [0u8; 1];
            c.read_exact(&mut b).unwrap();
            assert_eq!(&b, b"x");
        }
        drop(c);
        to_agent_w.write_all(b"{\"op\":\"join\"}\n").unwrap();
        assert_eq!(next(), Response::Served { bytes: 5 });
        to_agent_w.write_all(b"{\"op\":\"shutdown\"}\n").unwrap();
        assert_eq!(next(), Response::Bye);
        assert_eq!(agent.join().unwrap(), Exit::Shutdown);
    }

    #[test]
    fn end_of_file_ends_the_loop() {
        let mut out = Vec::new();
        assert_eq!(serve(&b""[..], &mut out).unwrap(), Exit::Eof);
        assert_eq!(responses(&out).len(), 1);
    }
}
