//! The agent's serve loop: read JSON-line requests, run metrics, answer.
//!
//! The same loop runs natively, as a container's PID 1 and as a guest's
//! /init; only the channel differs (stdin/stdout or a virtio-serial port).

use std::io::{BufRead, Write};
use std::path::PathBuf;

use crate::catalog;
use crate::metrics::{self, Context};
use crate::protocol::{to_line, AgentInfo, Request, Response, ServeRequest, MAX_LINE_BYTES, MAX_READ_BYTES};

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
        memory: crate::protocol::MemoryView::of_self(),
        mounts: crate::guest::mounts(),
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

/// The text of `path` when it is at most `MAX_READ_BYTES` long.
fn read_small_file(path: &str) -> Result<String, String> {
    use std::io::Read;
    let f = std::fs::File::open(path).map_err(|e| format!("read {path}: {e}"))?;
    let mut bytes = Vec::new();
    f.take(MAX_READ_BYTES + 1).read_to_end(&mut bytes).map_err(|e| format!("read {path}: {e}"))?;
    if bytes.len() as u64 > MAX_READ_BYTES {
        return Err(format!("read {path}: longer than the {MAX_READ_BYTES} bytes a reply may carry"));
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
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
    if let Some(cpu) = req.cpu.filter(|c| !crate::protocol::bounds::CPU.contains(c)) {
        let r = crate::protocol::bounds::CPU;
        return Err(format!("{}: cpu {cpu} is out of range {}..={}", req.metric, r.start(), r.end()));
    }
    let bind = req.bind.parse().map_err(|e| format!("{}: bad bind address {:?}: {e}", req.metric, req.bind))?;
    metrics::net::serve(spec, bind, req.cpu, req.pin).map_err(|e| e.to_string())
}

/// Starts the application server of an `AppStart` (see `app::server`).
fn start_app(req: &crate::protocol::AppStartRequest) -> Result<crate::app::server::Server, String> {
    let bind = req.bind.parse().map_err(|e| format!("{}: bad bind address {:?}: {e}", req.app, req.bind))?;
    let dir = std::path::Path::new(&req.dir);
    if !dir.is_absolute() || req.dir.len() > *crate::protocol::bounds::DATA_DIR_BYTES.end() {
        return Err(format!("{}: dir {:?} is not an absolute path of at most 4095 bytes", req.app, req.dir));
    }
    crate::app::server::start(req.app, bind, dir).map_err(|e| e.to_string())
}

/// One line of input, as [`read_line`] found it.
#[derive(Debug, PartialEq, Eq)]
enum Line {
    /// A whole line, its newline removed, at most [`MAX_LINE_BYTES`].
    Text(Vec<u8>),
    /// A line longer than [`MAX_LINE_BYTES`]: its first bytes (for the
    /// error) and its whole length; the rest was read and dropped.
    TooLong {
        head: Vec<u8>,
        len: usize,
    },
    Eof,
}

/// Reads one line of at most [`MAX_LINE_BYTES`] from `input` without ever
/// holding more: beyond the bound the rest of the line is consumed from
/// the reader's buffer and dropped up to the newline. A last line without
/// a newline counts as a line.
fn read_line(input: &mut impl BufRead) -> std::io::Result<Line> {
    let mut line = Vec::new();
    let mut len = 0usize;
    let mut any = false;
    loop {
        let buf = match input.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf.is_empty() {
            break;
        }
        any = true;
        let (chunk, newline) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (&buf[..i], true),
            None => (buf, false),
        };
        let room = (MAX_LINE_BYTES - 1).saturating_sub(line.len());
        line.extend_from_slice(&chunk[..chunk.len().min(room)]);
        len += chunk.len();
        let used = chunk.len() + usize::from(newline);
        input.consume(used);
        if newline {
            break;
        }
    }
    Ok(match (any, len) {
        (false, _) => Line::Eof,
        (true, n) if n >= MAX_LINE_BYTES => Line::TooLong { head: line, len: n },
        (true, _) => Line::Text(line),
    })
}

/// The first characters of a bad line, for an error message that names it.
fn excerpt(bytes: &[u8]) -> String {
    /// Characters of a bad line quoted in its error.
    const EXCERPT_CHARS: usize = 80;
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(4 * EXCERPT_CHARS)]);
    let mut out: String = text.chars().take(EXCERPT_CHARS).collect();
    if out.len() < bytes.len() {
        out.push('…');
    }
    format!("{out:?}")
}

/// Sends `Ready`, then serves requests until `Shutdown` or end of file.
pub fn serve(mut input: impl BufRead, mut output: impl Write) -> std::io::Result<Exit> {
    let overhead = metrics::timer_overhead_ns();
    let noop = noop_path();
    let ctx = Context::for_noop(&noop);
    let is_init = std::process::id() == 1;
    // The server thread of a cross-boundary metric, between Serve and Join.
    let mut server: Option<metrics::net::Server> = None;
    // The application server of the app metrics, between AppStart and
    // AppStop; dropped (stopped, its directory removed) when serving ends.
    let mut app: Option<crate::app::server::Server> = None;
    output.write_all(to_line(&Response::Ready(info_with(overhead, &noop))).as_bytes())?;
    output.flush()?;
    let mut number = 0u64;
    loop {
        number += 1;
        let bad = |message: String| format!("request line {number}: {message}");
        let parsed = match read_line(&mut input)? {
            Line::Eof => break,
            Line::TooLong { head, len } => {
                Err(bad(format!("{len} bytes, longer than the {MAX_LINE_BYTES} a request may have; line dropped: {}", excerpt(&head))))
            }
            Line::Text(bytes) => match String::from_utf8(bytes) {
                Err(e) => {
                    let at = e.utf8_error().valid_up_to();
                    Err(bad(format!("not UTF-8 (byte 0x{:02x} at offset {at}): {}", e.as_bytes()[at], excerpt(e.as_bytes()))))
                }
                Ok(text) if text.trim().is_empty() => continue,
                Ok(text) => Ok(text),
            },
        };
        let request =
            parsed.and_then(|line| serde_json::from_str::<Request>(&line).map_err(|e| format!("bad request ({e}): {}", excerpt(line.as_bytes()))));
        let response = match request {
            Err(message) => Response::Error { message },
            Ok(Request::Info) => Response::Info(info_with(overhead, &noop)),
            Ok(Request::Shutdown) => {
                app.take().map(crate::app::server::Server::stop);
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
            Ok(Request::AppStart(req)) if app.is_some() => {
                Response::Error { message: format!("{}: an application server is already running; send app_stop first", req.app) }
            }
            Ok(Request::AppStart(req)) => match start_app(&req) {
                Ok(s) => {
                    let (addr, pgid) = (s.addr.to_string(), s.pgid);
                    app = Some(s);
                    Response::AppServing { addr, pgid }
                }
                Err(message) => Response::Error { message },
            },
            Ok(Request::AppStop) => match app.take() {
                None => Response::Error { message: "app_stop: no application server is running".into() },
                Some(s) => Response::AppStopped { status: s.stop() },
            },
            Ok(Request::Exec(_)) if server.is_some() => {
                Response::Error { message: "exec: a boundary server is still running; send join first".into() }
            }
            Ok(Request::Exec(req)) => match crate::exec::run(&req) {
                Ok(r) => Response::Executed(r),
                Err(e) => Response::Error { message: e.to_string() },
            },
            Ok(Request::ReadFile { path }) => match read_small_file(&path) {
                Ok(text) => Response::File { text },
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

    /// A mark sink that keeps its lines in `lines` and takes `delay` to
    /// write each.
    struct SlowSink {
        lines: std::rc::Rc<std::cell::RefCell<Vec<u8>>>,
        delay: std::time::Duration,
    }

    impl std::io::Write for SlowSink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            std::thread::sleep(self.delay);
            self.lines.borrow_mut().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn marks_come_only_when_asked_and_stand_outside_the_timed_loop() {
        use crate::protocol::LoopPhase;
        let lines = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        // A sink far slower than the loop: were a mark written inside the
        // clock, the loop's time would include it.
        let delay = std::time::Duration::from_millis(300);
        crate::marks::install(Box::new(SlowSink { lines: lines.clone(), delay }));
        let input = concat!(
            r#"{"op":"run","metric":"syscall.getpid","iterations":1000,"max_ms":5000}"#,
            "\n",
            r#"{"op":"run","metric":"syscall.getpid","iterations":1000,"max_ms":5000,"marks":true}"#,
            "\n",
        );
        let mut out = Vec::new();
        serve(input.as_bytes(), &mut out).unwrap();
        crate::marks::uninstall();
        let r = responses(&out);
        for res in &r[1..] {
            match res {
                Response::Result(res) => assert!(res.elapsed_ns < delay.as_nanos() as u64, "a mark inside the loop: {res:?}"),
                other => panic!("{other:?}"),
            }
        }
        // Only the second request asked, and got one mark each side.
        let marks = responses(&lines.borrow());
        assert_eq!(marks, [Response::Mark { phase: LoopPhase::Begin }, Response::Mark { phase: LoopPhase::End }]);
    }

    #[test]
    fn read_file_answers_a_small_files_text_and_refuses_a_large_or_missing_one() {
        let dir = tempfile::tempdir().unwrap();
        let small = dir.path().join("debian_version");
        std::fs::write(&small, "12.9\n").unwrap();
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'x'; MAX_READ_BYTES as usize + 1]).unwrap();
        let line = |p: &std::path::Path| format!("{{\"op\":\"read_file\",\"path\":{:?}}}\n", p.display().to_string());
        let input = [line(&small), line(&big), line(&dir.path().join("nope"))].concat();
        let mut out = Vec::new();
        assert_eq!(serve(input.as_bytes(), &mut out).unwrap(), Exit::Eof);
        let r = responses(&out);
        assert_eq!(r[1], Response::File { text: "12.9\n".into() });
        assert!(matches!(&r[2], Response::Error { message } if message.contains("longer than the 16384 bytes")), "{:?}", r[2]);
        assert!(matches!(&r[3], Response::Error { message } if message.contains("nope") && message.contains("No such file")), "{:?}", r[3]);
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

    /// The trial's input: `printf '\xff\n' | isobench-agent`, then a request
    /// that must still be answered.
    #[test]
    fn a_line_that_is_not_utf8_gets_an_error_naming_it_and_serving_goes_on() {
        let mut input = b"\xff\n".to_vec();
        input.extend_from_slice(b"{\"op\":\"info\"}\n\xc3(bad\xff{\"op\":\"shutdown\"}\n{\"op\":\"shutdown\"}\n");
        let mut out = Vec::new();
        assert_eq!(serve(&input[..], &mut out).unwrap(), Exit::Shutdown);
        let r = responses(&out);
        assert_eq!(r.len(), 5, "{r:?}");
        let Response::Error { message } = &r[1] else { panic!("{:?}", r[1]) };
        assert_eq!(message, "request line 1: not UTF-8 (byte 0xff at offset 0): \"\u{fffd}\"");
        assert!(matches!(r[2], Response::Info(_)));
        let Response::Error { message } = &r[3] else { panic!("{:?}", r[3]) };
        assert!(message.starts_with("request line 3: not UTF-8 (byte 0xc3 at offset 0): ") && message.contains("(bad"), "{message}");
        assert_eq!(r[4], Response::Bye);
    }

    /// The trial's input: a 10 MB request line.
    #[test]
    fn a_line_over_the_bound_gets_an_error_and_is_dropped_unheld() {
        let mut input = vec![b'x'; 10_000_000];
        input.push(b'\n');
        input.extend_from_slice(b"{\"op\":\"info\"}\n");
        let mut out = Vec::new();
        assert_eq!(serve(&input[..], &mut out).unwrap(), Exit::Eof);
        let r = responses(&out);
        assert_eq!(r.len(), 3, "{r:?}");
        let Response::Error { message } = &r[1] else { panic!("{:?}", r[1]) };
        assert!(message.starts_with("request line 1: 10000000 bytes, longer than the 65536 a request may have; line dropped: \"xxx"), "{message}");
        assert!(message.len() < 300, "the error quotes an excerpt only: {} bytes", message.len());
        assert!(matches!(r[2], Response::Info(_)), "serving goes on after the long line");

        // What is held never exceeds the bound, whatever the line's length.
        let mut reader = std::io::BufReader::with_capacity(4096, &input[..]);
        match read_line(&mut reader).unwrap() {
            Line::TooLong { head, len } => assert_eq!((head.len(), len), (MAX_LINE_BYTES - 1, 10_000_000)),
            other => panic!("{other:?}"),
        }
        assert_eq!(read_line(&mut reader).unwrap(), Line::Text(b"{\"op\":\"info\"}".to_vec()));
        assert_eq!(read_line(&mut reader).unwrap(), Line::Eof);
        // The bound itself: a line of MAX_LINE_BYTES - 1 bytes and its newline is served.
        let mut exact = vec![b' '; MAX_LINE_BYTES - 1];
        exact.extend_from_slice(b"\nlast");
        let mut reader = std::io::BufReader::with_capacity(1000, &exact[..]);
        assert_eq!(read_line(&mut reader).unwrap(), Line::Text(vec![b' '; MAX_LINE_BYTES - 1]));
        assert_eq!(read_line(&mut reader).unwrap(), Line::Text(b"last".to_vec()), "a last line without a newline counts");
    }

    /// The trial's input: mem.copy_bw with a huge `bytes`, and every other
    /// parameter out of its range; each gets an error before anything runs.
    #[test]
    fn every_parameter_out_of_its_range_gets_an_error() {
        let cases = [
            (
                r#"{"op":"run","metric":"mem.copy_bw","iterations":1,"max_ms":1000,"bytes":1099511627776}"#,
                "mem.copy_bw: bytes 1099511627776 is out of range 1048576..=1073741824",
            ),
            (
                r#"{"op":"run","metric":"mem.copy_bw","iterations":1,"max_ms":1000,"bytes":4096}"#,
                "mem.copy_bw: bytes 4096 is out of range 1048576..=1073741824",
            ),
            (
                r#"{"op":"run","metric":"syscall.getpid","iterations":1,"max_ms":1000,"bytes":1048576}"#,
                "syscall.getpid: takes no bytes (got 1048576): only mem.copy_bw has a working set",
            ),
            (r#"{"op":"run","metric":"syscall.getpid","iterations":0,"max_ms":1000}"#, "syscall.getpid: iterations 0 is out of range 1..=1000000000"),
            (
                r#"{"op":"run","metric":"syscall.getpid","iterations":18446744073709551615,"max_ms":1000}"#,
                "syscall.getpid: iterations 18446744073709551615 is out of range 1..=1000000000",
            ),
            (r#"{"op":"run","metric":"syscall.getpid","iterations":1,"max_ms":0}"#, "syscall.getpid: max_ms 0 is out of range 1..=3600000"),
            (
                r#"{"op":"run","metric":"syscall.getpid","iterations":1,"max_ms":3600001}"#,
                "syscall.getpid: max_ms 3600001 is out of range 1..=3600000",
            ),
            (
                r#"{"op":"run","metric":"spawn.fork_exit","iterations":1,"max_ms":10,"warmup":100001}"#,
                "spawn.fork_exit: warmup 100001 is out of range 0..=100000",
            ),
            (r#"{"op":"run","metric":"ipc.pipe_rtt","iterations":1,"max_ms":10,"cpu":1024}"#, "ipc.pipe_rtt: cpu 1024 is out of range 0..=1023"),
            (r#"{"op":"run","metric":"fs.stat","iterations":1,"max_ms":10,"data_dir":"tmp"}"#, "fs.stat: data_dir \"tmp\" is not an absolute path"),
            (
                r#"{"op":"run","metric":"syscall.stat","iterations":1,"max_ms":10,"data_dir":"/tmp"}"#,
                "syscall.stat: takes no data_dir (got \"/tmp\"): only the fs metrics make files",
            ),
            (r#"{"op":"exec","argv":[],"runs":1}"#, "exec: argv of 0 words is out of range 1..=4096"),
            (r#"{"op":"exec","argv":["true"],"runs":10001}"#, "exec: runs 10001 is out of range 1..=10000"),
            (
                r#"{"op":"serve","metric":"net.tcp_rr.boundary","bind":"127.0.0.1:0","cpu":4096}"#,
                "net.tcp_rr.boundary: cpu 4096 is out of range 0..=1023",
            ),
        ];
        // A data_dir longer than PATH_MAX is refused by its length, unread.
        let long = format!(r#"{{"op":"run","metric":"fs.stat","iterations":1,"max_ms":10,"data_dir":"/{}"}}"#, "a".repeat(5000));
        let long_error = "fs.stat: data_dir of 5001 bytes is out of range 1..=4095 bytes".to_string();
        let cases: Vec<(&str, &str)> = cases.iter().copied().chain([(long.as_str(), long_error.as_str())]).collect();
        let mut input = String::new();
        for &(line, _) in &cases {
            input.push_str(line);
            input.push('\n');
        }
        let mut out = Vec::new();
        let started = std::time::Instant::now();
        serve(input.as_bytes(), &mut out).unwrap();
        assert!(started.elapsed() < std::time::Duration::from_secs(5), "nothing ran: {:?}", started.elapsed());
        let r = responses(&out);
        assert_eq!(r.len(), cases.len() + 1);
        for ((_, want), got) in cases.iter().zip(&r[1..]) {
            assert_eq!(got, &Response::Error { message: want.to_string() });
        }
    }

    #[test]
    fn end_of_file_ends_the_loop() {
        let mut out = Vec::new();
        assert_eq!(serve(&b""[..], &mut out).unwrap(), Exit::Eof);
        assert_eq!(responses(&out).len(), 1);
    }
}
