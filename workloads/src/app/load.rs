//! isobench's load generator for the app metrics, run by the host-side
//! agent against a server inside the environment.
//!
//! Two modes, each reported as such ([`LoadMode`]):
//!
//! - **Closed loop** ([`closed`]), for throughput at saturation, as
//!   redis-benchmark and wrk measure it: a fixed number of connections,
//!   each sending a batch of `depth` pipelined requests and reading their
//!   replies before the next batch. The figure is completed requests per
//!   second of wall time; the histogram holds one value per
//!   [`WINDOW`]: the wall time of the window over the requests completed in
//!   it (ns per request, all connections together), so its median is the
//!   median throughput over windows.
//! - **Open loop** ([`open`]), for latency at a fixed offered rate, as wrk2
//!   measures it: each connection sends on a constant-rate schedule (the
//!   offered rate split evenly, connections staggered), one request
//!   outstanding at a time; a request's latency is measured from its
//!   *intended* send time, so a server stall also counts against the
//!   requests that could not be sent while it lasted (HdrHistogram's
//!   coordinated-omission correction, Gil Tene's "How NOT to measure
//!   latency"). The uncorrected service time (actual send → reply) is
//!   recorded beside it, so the difference is visible.
//!
//! Both loops stop at a request count or a time bound, whichever comes
//! first, so a slow environment (TCG) still finishes.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::proto::{Conn, Op};
use crate::catalog::{self, MetricSpec};
use crate::hist;
use crate::metrics::MetricError;
use crate::protocol::{RunRequest, RunResult};

/// Width of one throughput sample of the closed loop: long enough for tens
/// of requests under TCG, short enough for a hundred samples in a few
/// seconds natively.
pub const WINDOW: Duration = Duration::from_millis(20);

/// How a load was applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum LoadMode {
    /// Fixed connections, each waiting for its replies before sending more:
    /// throughput at saturation.
    Closed,
    /// A constant-rate schedule; latency from each request's intended send
    /// time (wrk2).
    Open,
}

/// The shape of the load behind an app measurement (recorded with it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct LoadReport {
    pub mode: LoadMode,
    /// Client connections, each on a thread of its own.
    pub connections: u32,
    /// Requests pipelined per connection (closed loop; 1 for the open loop).
    pub depth: u32,
    /// Open loop: the offered rate, requests per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offered_per_s: Option<f64>,
    /// Requests completed per second of the timed wall time.
    pub achieved_per_s: f64,
    /// Open loop: the uncorrected service times (actual send → reply), ns,
    /// hdrhistogram V2 base64; the result's histogram holds the corrected
    /// latencies (intended send → reply).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_histogram: Option<String>,
    /// Open loop: sends that left later than scheduled by more than
    /// [`LATE_SEND`] because the previous reply was not back yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub late_sends: Option<u64>,
    /// Open loop: how the offered rate was chosen (`None`: the request
    /// named it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_basis: Option<RateBasis>,
    /// Values past the histograms' fixed bound ([`HIGHEST_NS`]), recorded
    /// as the bound (absent: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clipped: Option<u64>,
}

/// Where an open loop's offered rate came from: a closed loop of the same
/// shape (the open loop's connections, one request outstanding each, no
/// pipeline) run just before against the same server, whose throughput is
/// the most this shape can offer; the open loop offers `fraction` of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RateBasis {
    /// The calibrating closed loop's requests per second.
    pub closed_per_s: f64,
    /// Its connections (the open loop's) and depth (1).
    pub connections: u32,
    pub depth: u32,
    /// The share of it offered (`catalog::OPEN_LOAD_FRACTION`).
    pub fraction: f64,
}

/// A send this much past its intended time counts as late (the server
/// held the connection's previous request): well above the sleep's
/// wake-up error.
pub const LATE_SEND: Duration = Duration::from_millis(1);

/// The largest latency the open loop's histograms hold, ns: one minute,
/// past [`REPLY_WAIT`](super::proto::REPLY_WAIT) (a reply that takes longer
/// fails the connection) plus the schedule's lag behind it. A larger value
/// (a loop far behind its schedule) is recorded as this bound and counted
/// in [`LoadReport::clipped`]. Fixed bounds, as wrk2's `hdr_init(1,
/// MAX_LATENCY, 3)`: the histograms are allocated whole before the clock
/// starts, so recording never allocates on the measured path.
pub const HIGHEST_NS: u64 = 60_000_000_000;

/// The largest ns-per-request of one closed-loop window: a window with one
/// request completed in it at the time bound's scale (a stalled server);
/// the same clipping as [`HIGHEST_NS`].
pub const HIGHEST_WINDOW_NS: u64 = HIGHEST_NS;

/// A histogram of 1 ns ..= `highest` ns at isobench's significant figures,
/// allocated whole (no auto-resize).
pub fn fixed_ns(highest: u64) -> Histogram<u64> {
    Histogram::new_with_bounds(1, highest, hist::SIGFIG).expect("1 ns .. 60 s at 3 significant figures is valid")
}

/// Records `v` clipped into `h`'s range; true when it was clipped.
fn record_clipped(h: &mut Histogram<u64>, v: u64) -> bool {
    let top = h.high();
    h.saturating_record(v.max(1));
    v > top
}

/// Requests of the closed loop that calibrates an open loop's rate (at
/// most; twice the open loop's count when that is less).
pub const CALIBRATION_REQUESTS: u64 = 20_000;

/// What a loop measured.
pub struct Outcome {
    /// Requests completed in the timed part.
    pub requests: u64,
    /// Wall time of the timed part.
    pub elapsed: Duration,
    /// Closed: ns per request per window; open: corrected latency per
    /// request, ns.
    pub histogram: Histogram<u64>,
    pub report: LoadReport,
    /// The time bound stopped it before the count.
    pub truncated: bool,
}

/// Throughput at saturation: `connections` × `depth` outstanding requests
/// of `op` against `target` until `requests` completed (after `warmup`
/// untimed ones) or `max` passed.
pub fn closed(target: SocketAddr, op: Op, connections: u32, depth: u32, warmup: u64, requests: u64, max: Duration) -> std::io::Result<Outcome> {
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let batch: Vec<u8> = (0..depth.max(1)).flat_map(|_| op.encode()).collect();
    let mut conns = Vec::new();
    for _ in 0..connections.max(1) {
        conns.push(Conn::connect(target)?);
    }
    let threads: Vec<_> = conns
        .into_iter()
        .map(|mut c| {
            let (done, stop, batch) = (done.clone(), stop.clone(), batch.clone());
            std::thread::spawn(move || -> std::io::Result<()> {
                while !stop.load(Ordering::Relaxed) {
                    c.send(&batch)?;
                    for _ in 0..depth.max(1) {
                        c.recv(op)?;
                    }
                    done.fetch_add(u64::from(depth.max(1)), Ordering::Relaxed);
                }
                Ok(())
            })
        })
        .collect();
    let begun = Instant::now();
    let alive = || threads.iter().all(|t| !t.is_finished());
    while done.load(Ordering::Relaxed) < warmup && begun.elapsed() < max && alive() {
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut h = fixed_ns(HIGHEST_WINDOW_NS);
    let mut clipped = 0u64;
    let start = Instant::now();
    let base = done.load(Ordering::Relaxed);
    let (mut t_prev, mut n_prev) = (start, base);
    let (mut truncated, mut now, mut n) = (false, start, base);
    while alive() {
        std::thread::sleep(WINDOW.saturating_sub(now.elapsed()));
        now = Instant::now();
        n = done.load(Ordering::Relaxed);
        if n > n_prev {
            let per = ((now - t_prev).as_nanos() / u128::from(n - n_prev)).max(1) as u64;
            clipped += u64::from(record_clipped(&mut h, per));
            (t_prev, n_prev) = (now, n);
        }
        if n - base >= requests {
            break;
        }
        // The bound covers the warm-up too.
        if now - begun >= max {
            truncated = true;
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap_or_else(|_| Err(std::io::Error::other("a load thread panicked")))?;
    }
    let elapsed = now - start;
    let requests = n - base;
    if requests == 0 {
        return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, format!("no request completed within {max:?}")));
    }
    let achieved = requests as f64 / elapsed.as_secs_f64();
    let report = LoadReport {
        mode: LoadMode::Closed,
        connections: connections.max(1),
        depth: depth.max(1),
        offered_per_s: None,
        achieved_per_s: achieved,
        service_histogram: None,
        late_sends: None,
        rate_basis: None,
        clipped: (clipped > 0).then_some(clipped),
    };
    Ok(Outcome { requests, elapsed, histogram: h, report, truncated })
}

/// One open-loop connection's: corrected and service-time histograms, late
/// sends, clipped values, and whether the time bound stopped it.
type ConnOutcome = (Histogram<u64>, Histogram<u64>, u64, u64, bool);

/// Latency at `rate` requests per second offered over `connections`
/// connections on a constant schedule, `requests` in all (after `warmup`
/// untimed ones, sent on the same schedule) or until `max` passed.
pub fn open(target: SocketAddr, op: Op, connections: u32, rate: f64, warmup: u64, requests: u64, max: Duration) -> std::io::Result<Outcome> {
    if !(rate.is_finite() && rate > 0.0) {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("offered rate {rate} is not a positive number")));
    }
    let connections = connections.max(1);
    let interval = Duration::from_secs_f64(f64::from(connections) / rate);
    let request = op.encode();
    let mut conns = Vec::new();
    for _ in 0..connections {
        conns.push(Conn::connect(target)?);
    }
    let per_conn = requests.div_ceil(u64::from(connections));
    let warm_per_conn = warmup.div_ceil(u64::from(connections));
    // The schedule starts a little ahead so every thread is waiting for it.
    let t0 = Instant::now() + Duration::from_millis(5);
    let timed_from = t0 + interval * warm_per_conn as u32;
    let threads: Vec<_> = conns
        .into_iter()
        .enumerate()
        .map(|(i, mut c)| {
            let request = request.clone();
            std::thread::spawn(move || -> std::io::Result<ConnOutcome> {
                // Sleeps end within the kernel's default 50 µs slack otherwise.
                // SAFETY: prctl(PR_SET_TIMERSLACK) takes a value and touches no memory.
                unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong) };
                // Allocated whole here, before the schedule starts.
                let (mut corrected, mut service) = (fixed_ns(HIGHEST_NS), fixed_ns(HIGHEST_NS));
                let (mut late, mut clipped) = (0u64, 0u64);
                let offset = interval / connections * i as u32;
                for k in 0..warm_per_conn + per_conn {
                    let intended = t0 + offset + interval * k as u32;
                    let timed = k >= warm_per_conn;
                    if timed && intended.saturating_duration_since(timed_from) >= max {
                        return Ok((corrected, service, late, clipped, true));
                    }
                    let now = Instant::now();
                    if intended > now {
                        std::thread::sleep(intended - now);
                    }
                    let sent = Instant::now();
                    c.send(&request)?;
                    c.recv(op)?;
                    let back = Instant::now();
                    if timed {
                        clipped += u64::from(record_clipped(&mut corrected, (back - intended).as_nanos() as u64));
                        clipped += u64::from(record_clipped(&mut service, (back - sent).as_nanos() as u64));
                        late += u64::from(sent - intended > LATE_SEND);
                    }
                }
                Ok((corrected, service, late, clipped, false))
            })
        })
        .collect();
    let (mut corrected, mut service) = (fixed_ns(HIGHEST_NS), fixed_ns(HIGHEST_NS));
    let (mut late, mut clipped, mut truncated) = (0u64, 0u64, false);
    for t in threads {
        let (c, s, l, k, cut) = t.join().unwrap_or_else(|_| Err(std::io::Error::other("a load thread panicked")))?;
        corrected.add(&c).expect("histograms of the same bounds");
        service.add(&s).expect("histograms of the same bounds");
        late += l;
        clipped += k;
        truncated |= cut;
    }
    let elapsed = Instant::now().saturating_duration_since(timed_from);
    let requests = corrected.len();
    if requests == 0 {
        return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, format!("no request completed within {max:?}")));
    }
    let report = LoadReport {
        mode: LoadMode::Open,
        connections,
        depth: 1,
        offered_per_s: Some(rate),
        achieved_per_s: requests as f64 / elapsed.as_secs_f64().max(1e-9),
        service_histogram: Some(hist::encode(&service).map_err(|e| std::io::Error::other(e.to_string()))?),
        late_sends: Some(late),
        rate_basis: None,
        clipped: (clipped > 0).then_some(clipped),
    };
    Ok(Outcome { requests, elapsed, histogram: corrected, report, truncated })
}

/// The host side's end of an app metric against the server at `target`:
/// the closed loop, or the open loop at `req.rate` for `*.latency`.
pub fn measure(spec: &'static MetricSpec, req: &RunRequest, target: SocketAddr) -> Result<RunResult, MetricError> {
    let m = spec.name;
    let op = Op::of_metric(m).ok_or_else(|| MetricError::Failed { metric: m, message: "is not an app metric".into() })?;
    let failed = |e: std::io::Error| MetricError::Failed { metric: m, message: format!("against {target}: {e}") };
    if op == Op::RedisGet {
        // The value GET reads back.
        let mut c = Conn::connect(target).map_err(failed)?;
        c.send(&Op::RedisSet.encode()).and_then(|()| c.recv(Op::RedisSet)).map_err(failed)?;
    }
    let max = Duration::from_millis(req.max_ms);
    let out = match spec.open_loop() {
        false => {
            let (connections, depth) = match op {
                Op::RedisGet | Op::RedisSet => (catalog::REDIS_CONNECTIONS, catalog::REDIS_PIPELINE),
                Op::HttpGet { .. } => (catalog::NGINX_CONNECTIONS, 1),
            };
            closed(target, op, connections, depth, req.warmup, req.iterations, max)
        }
        true => {
            let (rate, basis) = match req.rate {
                Some(rate) => (rate, None),
                None => {
                    // Calibration: the most this shape of load can offer,
                    // within a quarter of the time bound.
                    let n = CALIBRATION_REQUESTS.min(req.iterations * 2);
                    let probe = closed(target, op, catalog::OPEN_CONNECTIONS, 1, req.warmup, n, max / 4).map_err(failed)?;
                    let per_s = probe.report.achieved_per_s;
                    let basis =
                        RateBasis { closed_per_s: per_s, connections: catalog::OPEN_CONNECTIONS, depth: 1, fraction: catalog::OPEN_LOAD_FRACTION };
                    ((per_s * catalog::OPEN_LOAD_FRACTION).max(1.0), Some(basis))
                }
            };
            open(target, op, catalog::OPEN_CONNECTIONS, rate, req.warmup, req.iterations, max).map(|mut o| {
                o.report.rate_basis = basis;
                o
            })
        }
    }
    .map_err(failed)?;
    Ok(RunResult {
        metric: m.to_string(),
        iterations: out.requests,
        elapsed_ns: out.elapsed.as_nanos() as u64,
        ops_per_sample: 1,
        histogram: hist::encode(&out.histogram)?,
        truncated: out.truncated,
        bytes_per_op: 0,
        timer_overhead_ns: 0.0,
        pinning: crate::protocol::PinMode::None,
        cpus: Vec::new(),
        io: None,
        load: Some(out.report),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;

    /// A RESP server that answers every GET with the 64-byte value and,
    /// once, after `stall_after` requests, sleeps `stall` before answering:
    /// a known stall (a fork for a snapshot, a page fault storm).
    fn stalling_server(stall_after: u64, stall: Duration) -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            s.set_nodelay(true).unwrap();
            let mut w = s.try_clone().unwrap();
            let mut r = BufReader::new(s);
            let mut reply = b"$64\r\n".to_vec();
            reply.extend_from_slice(&super::super::proto::value());
            reply.extend_from_slice(b"\r\n");
            let mut line = String::new();
            let mut served = 0u64;
            loop {
                // *2, $3, GET, $12, key: five lines per request
                for _ in 0..5 {
                    line.clear();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                }
                served += 1;
                if served == stall_after {
                    std::thread::sleep(stall);
                }
                if w.write_all(&reply).is_err() {
                    return;
                }
            }
        });
        addr
    }

    /// The trial: 1000 requests/s for 2 s on one connection against a
    /// server that stalls 200 ms once. From their intended send times, the
    /// ~200 requests that should have gone out during the stall waited up
    /// to 200 ms: more than 1 % of 2000, so the corrected p99 shows the
    /// stall. Measured from their actual send, only the one request that
    /// met the stall took long: the uncorrected p99 does not.
    #[test]
    fn the_open_loop_counts_a_stall_against_every_request_it_delayed() {
        let stall = Duration::from_millis(200);
        let addr = stalling_server(1000, stall);
        let out = open(addr, Op::RedisGet, 1, 1000.0, 0, 2000, Duration::from_secs(20)).unwrap();
        assert_eq!(out.requests, 2000);
        let service = hist::decode(out.report.service_histogram.as_deref().unwrap()).unwrap();
        let ms = |ns: u64| ns as f64 / 1e6;
        let (c99, s99) = (ms(out.histogram.value_at_quantile(0.99)), ms(service.value_at_quantile(0.99)));
        assert!(c99 >= 100.0, "corrected p99 {c99:.3} ms must show the 200 ms stall");
        assert!(s99 < 50.0, "uncorrected p99 {s99:.3} ms must not (one request in 2000 met it)");
        assert!(ms(service.max()) >= 190.0, "the stalled request itself took the stall: {:.3} ms", ms(service.max()));
        assert!(out.report.late_sends.unwrap() >= 100, "requests held behind the stall: {:?}", out.report.late_sends);
        assert_eq!(out.report.mode, LoadMode::Open);
    }

    #[test]
    fn the_histograms_are_allocated_whole_and_clip_at_their_bound() {
        let mut h = fixed_ns(HIGHEST_NS);
        assert!(!h.is_auto_resize() && h.high() >= HIGHEST_NS && h.low() == 1);
        let buckets = h.distinct_values();
        assert!(!record_clipped(&mut h, 0), "0 ns is recorded as 1 ns, not clipped");
        assert!(!record_clipped(&mut h, 5_000));
        assert!(record_clipped(&mut h, 2 * HIGHEST_NS), "past the bound: clipped");
        assert_eq!(h.distinct_values(), buckets, "recording allocated no bucket");
        assert_eq!(h.len(), 3);
        assert!(h.max() >= HIGHEST_NS && h.max() < 2 * HIGHEST_NS, "the clipped value is the bound: {}", h.max());
    }

    #[test]
    fn the_closed_loop_counts_what_completed() {
        let addr = stalling_server(u64::MAX, Duration::ZERO);
        let out = closed(addr, Op::RedisGet, 1, 4, 40, 2000, Duration::from_secs(20)).unwrap();
        assert!(out.requests >= 2000 && out.requests % 4 == 0, "{}", out.requests);
        assert!(out.report.achieved_per_s > 0.0 && !out.histogram.is_empty());
        let median_rate = 1e9 / out.histogram.value_at_quantile(0.5) as f64;
        assert!(median_rate > 0.0 && median_rate.is_finite());
    }
}
