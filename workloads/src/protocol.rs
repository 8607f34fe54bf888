//! The agent protocol: JSON lines, one request and one response per line.
//!
//! The harness writes a [`Request`]; the agent answers with one [`Response`].
//! On start the agent sends `Response::Ready` before reading anything, so the
//! harness can time "environment started → agent running". The transport is a
//! pair of pipes (native, container) or a virtio-serial port (guest); the bytes
//! are the same everywhere.
//!
//! ```text
//! harness → {"op":"run","metric":"syscall.getpid","iterations":100000,"max_ms":5000}
//! agent   → {"kind":"result","metric":"syscall.getpid","iterations":100000,...}
//! ```

use serde::{Deserialize, Serialize};

/// Name of the virtio-serial port the guest agent serves on
/// (`/sys/class/virtio-ports/*/name`).
pub const VIRTIO_PORT_NAME: &str = "org.isobench.agent";

/// A request from the harness.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Ask for [`AgentInfo`] again.
    Info,
    /// Run one metric. For a metric measured across the environment's
    /// boundary this is sent to the *host-side* agent, with
    /// [`RunRequest::target`] naming the environment agent's server.
    Run(RunRequest),
    /// Start the environment's end of a cross-boundary metric: a server thread
    /// (echo for round trips, sender for streams) bound to
    /// [`ServeRequest::bind`]. Answered with `Response::Serving`.
    Serve(ServeRequest),
    /// Wait for the server thread of the last `Serve` to end (the host side
    /// closed its connection) and report what it moved (`Response::Served`).
    Join,
    /// Exit (native, container) or power the guest off (vm). The agent answers
    /// `Response::Bye` first.
    Shutdown,
}

/// "Run metric M for n iterations, or at most t ms".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRequest {
    /// Dotted metric name from the catalogue.
    pub metric: String,
    /// Operations to time (rounded up to a whole number of samples).
    pub iterations: u64,
    /// Wall-clock bound in milliseconds: the loop stops after the sample in
    /// which it is exceeded, even if fewer iterations ran.
    pub max_ms: u64,
    /// Untimed operations run first (cache and branch-predictor warm-up).
    #[serde(default)]
    pub warmup: u64,
    /// Working-set size in bytes for metrics that have one (mem.copy_bw): the
    /// harness picks it from the host, so every environment copies the same
    /// amount. `None`: the agent picks (`metrics::control::copy_bytes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// Cross-boundary metrics only: the `ip:port` of the environment agent's
    /// server (what `Response::Serving` said, mapped to an address the host
    /// side can reach).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Pin the measuring thread (and what it creates) to this CPU instead of
    /// the one it happens to run on (see `metrics::CpuPin`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<u32>,
}

impl RunRequest {
    /// A request for `iterations` operations of `metric`, at most `max_ms`
    /// ms, no warm-up, no working set, no target, no CPU choice.
    pub fn new(metric: impl Into<String>, iterations: u64, max_ms: u64) -> RunRequest {
        RunRequest { metric: metric.into(), iterations, max_ms, warmup: 0, bytes: None, target: None, cpu: None }
    }
}

/// "Serve the environment's end of cross-boundary metric M on this address".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServeRequest {
    /// A `*.boundary` metric of the catalogue.
    pub metric: String,
    /// `ip:port` to bind; port 0 picks a free one (user-mode networking
    /// forwards fixed ports, so it names them).
    pub bind: String,
    /// Pin the server thread to this CPU (else the one it runs on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<u32>,
}

/// What the agent knows about where it runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct AgentInfo {
    /// The agent's PID as the agent sees it (1 in a container or guest).
    pub pid: u32,
    pub hostname: String,
    /// `uname -r` as seen from inside.
    pub kernel: String,
    /// Current clocksource, when /sys is readable.
    pub clocksource: Option<String>,
    /// Seconds since boot (CLOCK_BOOTTIME), as seen from inside.
    pub uptime_s: f64,
    /// Measured cost of one clock_gettime(CLOCK_MONOTONIC), ns.
    pub timer_overhead_ns: f64,
    /// Agent crate version.
    pub version: String,
    /// Metrics this agent implements.
    pub metrics: Vec<String>,
}

/// The result of one [`RunRequest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    pub metric: String,
    /// Operations timed.
    pub iterations: u64,
    /// CLOCK_MONOTONIC time of the whole measured loop, ns (what criterion's
    /// `iter_custom` receives).
    pub elapsed_ns: u64,
    /// Operations per histogram sample (see `catalog::MetricSpec`).
    pub ops_per_sample: u64,
    /// hdrhistogram V2 serialization (base64) of per-operation latency in ns,
    /// 3 significant digits; one value per sample.
    pub histogram: String,
    /// True when `max_ms` stopped the loop before `iterations`.
    pub truncated: bool,
    /// Bytes one operation moved (rates: ipc.*_bw, net.tcp_stream,
    /// mem.copy_bw); 0 for latencies.
    #[serde(default)]
    pub bytes_per_op: u64,
    /// The clock-read cost subtracted from every sample, ns.
    #[serde(default)]
    pub timer_overhead_ns: f64,
}

/// A response from the agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Response {
    /// Sent once, unprompted, when the agent is ready.
    Ready(AgentInfo),
    Info(AgentInfo),
    Result(RunResult),
    /// Answer to `Serve`: the server is bound and accepting.
    Serving {
        /// The bound `ip:port` (the real port when 0 was asked).
        addr: String,
    },
    /// Answer to `Join`: the server thread ended cleanly.
    Served {
        /// Bytes the server wrote to the host side (echoes or stream).
        bytes: u64,
    },
    /// The request failed; the agent keeps serving.
    Error {
        message: String,
    },
    /// Answer to `Shutdown`.
    Bye,
}

/// Serializes a message as one JSON line (with the trailing newline).
pub fn to_line<T: Serialize>(msg: &T) -> String {
    let mut s = serde_json::to_string(msg).expect("protocol types always serialize");
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_wire_format() {
        let r = Request::Run(RunRequest::new("syscall.getpid", 10, 5));
        let line = to_line(&r);
        assert!(line.ends_with('\n'));
        assert!(line.starts_with(r#"{"op":"run","metric":"syscall.getpid""#), "{line}");
        let back: Request = serde_json::from_str(line.trim()).unwrap();
        assert_eq!(back, r);
        let s: Request = serde_json::from_str(r#"{"op":"shutdown"}"#).unwrap();
        assert_eq!(s, Request::Shutdown);
        // warmup is optional on the wire
        let r: Request = serde_json::from_str(r#"{"op":"run","metric":"m","iterations":1,"max_ms":1}"#).unwrap();
        assert!(matches!(r, Request::Run(RunRequest { warmup: 0, target: None, cpu: None, .. })));
        let s: Request = serde_json::from_str(r#"{"op":"serve","metric":"net.tcp_rr.boundary","bind":"10.199.1.2:0"}"#).unwrap();
        assert_eq!(s, Request::Serve(ServeRequest { metric: "net.tcp_rr.boundary".into(), bind: "10.199.1.2:0".into(), cpu: None }));
        assert_eq!(to_line(&Request::Join), "{\"op\":\"join\"}\n");
    }

    #[test]
    fn response_wire_format() {
        let line = to_line(&Response::Error { message: "unknown metric".into() });
        assert_eq!(line, "{\"kind\":\"error\",\"message\":\"unknown metric\"}\n");
        assert_eq!(to_line(&Response::Serving { addr: "10.199.1.2:4000".into() }), "{\"kind\":\"serving\",\"addr\":\"10.199.1.2:4000\"}\n");
        let r: Response = serde_json::from_str(r#"{"kind":"bye"}"#).unwrap();
        assert_eq!(r, Response::Bye);
    }
}
