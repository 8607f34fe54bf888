//! The harness side of the agent protocol (`isobench_workloads::protocol`):
//! one [`AgentClient`] drives an agent over any byte stream (pipes for native
//! and container, the virtio-serial socket for the guest).

use std::io::{BufRead, BufReader, Read, Write};
use std::time::{Duration, Instant};

use isobench_workloads::protocol::{
    to_line, AgentInfo, AppStartRequest, ExecRequest, ExecResult, LoopPhase, Request, Response, RunRequest, RunResult, ServeRequest,
};

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("agent i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("agent closed its channel{0}")]
    Closed(String),
    #[error("agent sent a line that is not protocol JSON ({err}): {line:?}")]
    BadLine { line: String, err: serde_json::Error },
    #[error("agent answered {got} where {expected} was expected")]
    Unexpected { expected: &'static str, got: String },
    #[error("agent: {0}")]
    Remote(String),
}

/// A connection to one running agent.
pub struct AgentClient {
    reader: BufReader<Box<dyn Read + Send>>,
    writer: Box<dyn Write + Send>,
    /// Lines that were not protocol JSON (e.g. kernel messages on a shared
    /// console) are skipped up to this many times before giving up.
    noise_budget: usize,
}

impl AgentClient {
    pub fn new(reader: Box<dyn Read + Send>, writer: Box<dyn Write + Send>) -> Self {
        AgentClient { reader: BufReader::new(reader), writer, noise_budget: 64 }
    }

    fn read_response(&mut self) -> Result<Response, AgentError> {
        let mut line = String::new();
        loop {
            line.clear();
            let n = self.reader.read_line(&mut line)?;
            if n == 0 {
                return Err(AgentError::Closed(String::new()));
            }
            let trimmed = line.trim();
            if trimmed.is_empty() {
                continue;
            }
            match serde_json::from_str::<Response>(trimmed) {
                Ok(r) => return Ok(r),
                Err(err) if self.noise_budget == 0 || trimmed.starts_with('{') => return Err(AgentError::BadLine { line: trimmed.to_string(), err }),
                Err(_) => self.noise_budget -= 1,
            }
        }
    }

    fn send(&mut self, req: &Request) -> Result<(), AgentError> {
        self.writer.write_all(to_line(req).as_bytes())?;
        self.writer.flush()?;
        Ok(())
    }

    /// Waits for the unprompted `Ready` line an agent sends on start.
    pub fn wait_ready(&mut self) -> Result<AgentInfo, AgentError> {
        match self.read_response()? {
            Response::Ready(info) => Ok(info),
            Response::Error { message } => Err(AgentError::Remote(message)),
            other => Err(AgentError::Unexpected { expected: "ready", got: format!("{other:?}") }),
        }
    }

    /// Asks the agent where it runs.
    pub fn info(&mut self) -> Result<AgentInfo, AgentError> {
        self.send(&Request::Info)?;
        match self.read_response()? {
            Response::Info(info) => Ok(info),
            Response::Error { message } => Err(AgentError::Remote(message)),
            other => Err(AgentError::Unexpected { expected: "info", got: format!("{other:?}") }),
        }
    }

    /// Runs one metric and returns what the agent measured.
    pub fn run(&mut self, req: &RunRequest) -> Result<RunResult, AgentError> {
        self.run_timed(req).map(|(r, _)| r)
    }

    /// Runs one metric and returns what the agent measured with the host's
    /// time for its timed loop: from the arrival of the agent's mark before
    /// the loop to that of its mark after (`RunRequest::marks`; `None`
    /// when the request asked for none or the metric wrote none). Each
    /// line's way out of the environment is in it once, so the two cancel
    /// but for their difference.
    pub fn run_timed(&mut self, req: &RunRequest) -> Result<(RunResult, Option<Duration>), AgentError> {
        self.send(&Request::Run(req.clone()))?;
        let mut begin = None;
        let mut timed = None;
        loop {
            match self.read_response()? {
                Response::Mark { phase: LoopPhase::Begin } => begin = Some(Instant::now()),
                Response::Mark { phase: LoopPhase::End } => timed = begin.take().map(|b| b.elapsed()),
                Response::Result(r) => return Ok((r, timed)),
                Response::Error { message } => return Err(AgentError::Remote(message)),
                other => return Err(AgentError::Unexpected { expected: "result", got: format!("{other:?}") }),
            }
        }
    }

    /// Starts the environment's end of a cross-boundary metric and returns
    /// the address its server is bound to and the CPU its thread is pinned
    /// to (`None`: unpinned, or an agent too old to say).
    pub fn serve(&mut self, req: &ServeRequest) -> Result<(std::net::SocketAddr, Option<u32>), AgentError> {
        self.send(&Request::Serve(req.clone()))?;
        match self.read_response()? {
            Response::Serving { addr, cpu } => {
                addr.parse().map(|a| (a, cpu)).map_err(|_| AgentError::Unexpected { expected: "serving ip:port", got: addr })
            }
            Response::Error { message } => Err(AgentError::Remote(message)),
            other => Err(AgentError::Unexpected { expected: "serving", got: format!("{other:?}") }),
        }
    }

    /// Waits for the server started by [`serve`](Self::serve) to end; returns
    /// the bytes it wrote.
    pub fn join(&mut self) -> Result<u64, AgentError> {
        self.send(&Request::Join)?;
        match self.read_response()? {
            Response::Served { bytes } => Ok(bytes),
            Response::Error { message } => Err(AgentError::Remote(message)),
            other => Err(AgentError::Unexpected { expected: "served", got: format!("{other:?}") }),
        }
    }

    /// Starts an application server in the environment (the app metrics)
    /// and returns the address it accepts connections on and its process
    /// group.
    pub fn app_start(&mut self, req: &AppStartRequest) -> Result<(std::net::SocketAddr, u32), AgentError> {
        self.send(&Request::AppStart(req.clone()))?;
        match self.read_response()? {
            Response::AppServing { addr, pgid } => {
                addr.parse().map(|a| (a, pgid)).map_err(|_| AgentError::Unexpected { expected: "app_serving ip:port", got: addr })
            }
            Response::Error { message } => Err(AgentError::Remote(message)),
            other => Err(AgentError::Unexpected { expected: "app_serving", got: format!("{other:?}") }),
        }
    }

    /// Stops the server of [`app_start`](Self::app_start); returns how it
    /// exited.
    pub fn app_stop(&mut self) -> Result<String, AgentError> {
        self.send(&Request::AppStop)?;
        match self.read_response()? {
            Response::AppStopped { status } => Ok(status),
            Response::Error { message } => Err(AgentError::Remote(message)),
            other => Err(AgentError::Unexpected { expected: "app_stopped", got: format!("{other:?}") }),
        }
    }

    /// Runs the user's command inside the environment
    /// (`isobench run --command`) and returns each run's time and status.
    pub fn exec(&mut self, req: &ExecRequest) -> Result<ExecResult, AgentError> {
        self.send(&Request::Exec(req.clone()))?;
        match self.read_response()? {
            Response::Executed(r) => Ok(r),
            Response::Error { message } => Err(AgentError::Remote(message)),
            other => Err(AgentError::Unexpected { expected: "executed", got: format!("{other:?}") }),
        }
    }

    /// The text of a small file as the agent sees it (at most
    /// `protocol::MAX_READ_BYTES`), e.g. a guest's /etc/debian_version.
    pub fn read_file(&mut self, path: &str) -> Result<String, AgentError> {
        self.send(&Request::ReadFile { path: path.to_string() })?;
        match self.read_response()? {
            Response::File { text } => Ok(text),
            Response::Error { message } => Err(AgentError::Remote(message)),
            other => Err(AgentError::Unexpected { expected: "file", got: format!("{other:?}") }),
        }
    }

    /// Tells the agent to exit (or power the guest off) and waits for `Bye`.
    pub fn shutdown(&mut self) -> Result<(), AgentError> {
        self.send(&Request::Shutdown)?;
        match self.read_response()? {
            Response::Bye => Ok(()),
            other => Err(AgentError::Unexpected { expected: "bye", got: format!("{other:?}") }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use isobench_workloads::protocol::PinMode;
    use std::os::unix::net::UnixStream;

    fn result() -> RunResult {
        RunResult {
            metric: "fs.rand_read".into(),
            iterations: 10,
            elapsed_ns: 1_000,
            ops_per_sample: 1,
            histogram: String::new(),
            truncated: false,
            bytes_per_op: 0,
            timer_overhead_ns: 0.0,
            pinning: PinMode::None,
            cpus: Vec::new(),
            io: None,
            load: None,
        }
    }

    /// A client whose agent writes `lines`, sleeping `gap` after the first.
    fn client_of(lines: Vec<Response>, gap: Duration) -> (AgentClient, std::thread::JoinHandle<()>) {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let agent = std::thread::spawn(move || {
            let mut w = theirs.try_clone().unwrap();
            let mut r = BufReader::new(theirs);
            let mut request = String::new();
            r.read_line(&mut request).unwrap();
            for (i, l) in lines.iter().enumerate() {
                w.write_all(to_line(l).as_bytes()).unwrap();
                if i == 0 {
                    std::thread::sleep(gap);
                }
            }
        });
        (AgentClient::new(Box::new(ours.try_clone().unwrap()), Box::new(ours)), agent)
    }

    #[test]
    fn run_timed_times_the_loop_between_the_marks_by_the_hosts_clock() {
        let gap = Duration::from_millis(200);
        let mark = |phase| Response::Mark { phase };
        let (mut c, agent) = client_of(vec![mark(LoopPhase::Begin), mark(LoopPhase::End), Response::Result(result())], gap);
        let (r, timed) = c.run_timed(&RunRequest { marks: true, ..RunRequest::new("fs.rand_read", 10, 1000) }).unwrap();
        agent.join().unwrap();
        assert_eq!(r, result());
        // The agent's pause between its marks, whatever its own clock said
        // (less only by however late the client read the first mark).
        assert!(timed.unwrap() >= gap / 2, "{timed:?}");
        // No marks, no loop time; an end without a beginning is none either.
        for lines in [vec![Response::Result(result())], vec![mark(LoopPhase::End), Response::Result(result())]] {
            let (mut c, agent) = client_of(lines, Duration::ZERO);
            assert_eq!(c.run_timed(&RunRequest::new("fs.rand_read", 10, 1000)).unwrap(), (result(), None));
            agent.join().unwrap();
        }
    }
}
