//! Network round trips inside the environment.
//!
//! `net.tcp_rr`: one byte request, one byte response over a loopback TCP
//! connection with Nagle off, as netperf's TCP_RR with 1-byte messages. The
//! server is a thread of the agent that echoes until end of file; it is
//! joined before the result is returned, so the agent is single-threaded
//! again for the fork-based metrics. A closed-loop round trip.
//!
//! `net.udp_rr`: the same over a connected loopback UDP socket pair (netperf
//! UDP_RR); an empty datagram tells the echo thread to stop.
//!
//! `net.tcp_stream`: a sender thread writes 128 KiB chunks into a loopback TCP
//! connection; the agent times receiving 128 KiB at a time (receiver-side
//! throughput, as iperf3 reports it).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream, UdpSocket};
use std::time::Duration;

use crate::catalog::MetricSpec;
use crate::protocol::{RunRequest, RunResult};

use super::{time_loop, MetricError};

fn io(metric: &'static str, context: &'static str) -> impl Fn(std::io::Error) -> MetricError {
    move |source| MetricError::Io { metric, context, source }
}

pub fn tcp_rr(spec: &'static MetricSpec, req: &RunRequest) -> Result<RunResult, MetricError> {
    let m = spec.name;
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(io(m, "bind 127.0.0.1 (is loopback up?)"))?;
    let addr = listener.local_addr().map_err(io(m, "local_addr"))?;
    let server = std::thread::spawn(move || -> std::io::Result<()> {
        let (mut s, _) = listener.accept()?;
        s.set_nodelay(true)?;
        let mut b = [0u8; 1];
        loop {
            match s.read(&mut b)? {
                0 => return Ok(()),
                _ => s.write_all(&b)?,
            }
        }
    });
    let result = (|| {
        let mut c = TcpStream::connect(addr).map_err(io(m, "connect"))?;
        c.set_nodelay(true).map_err(io(m, "TCP_NODELAY"))?;
        let mut b = [0u8; 1];
        time_loop(spec, req, || {
            c.write_all(&b).map_err(io(m, "write"))?;
            c.read_exact(&mut b).map_err(io(m, "read"))
        })
    })();
    // The client stream is dropped above, so the server sees EOF and ends.
    let joined = server.join();
    match (result, joined) {
        (Ok(r), Ok(Ok(()))) => Ok(r),
        (Err(e), _) => Err(e),
        (Ok(_), Ok(Err(e))) => Err(MetricError::Io { metric: m, context: "echo server", source: e }),
        (Ok(_), Err(_)) => Err(MetricError::Failed { metric: m, message: "echo server panicked".into() }),
    }
}

pub fn udp_rr(spec: &'static MetricSpec, req: &RunRequest) -> Result<RunResult, MetricError> {
    let m = spec.name;
    let server = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).map_err(io(m, "bind 127.0.0.1 (is loopback up?)"))?;
    let client = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).map_err(io(m, "bind 127.0.0.1"))?;
    client.connect(server.local_addr().map_err(io(m, "local_addr"))?).map_err(io(m, "connect"))?;
    server.connect(client.local_addr().map_err(io(m, "local_addr"))?).map_err(io(m, "connect"))?;
    // Loopback does not drop datagrams unless a buffer overflows, which a
    // closed loop cannot cause; the timeout only turns a loss into an error.
    client.set_read_timeout(Some(Duration::from_secs(5))).map_err(io(m, "SO_RCVTIMEO"))?;
    let echo = std::thread::spawn(move || -> std::io::Result<()> {
        let mut b = [0u8; 1];
        loop {
            match server.recv(&mut b)? {
                0 => return Ok(()),
                n => {
                    server.send(&b[..n])?;
                }
            }
        }
    });
    let mut b = [0u8; 1];
    let result = time_loop(spec, req, || {
        client.send(&b).map_err(io(m, "send"))?;
        match client.recv(&mut b).map_err(io(m, "recv"))? {
            1 => Ok(()),
            n => Err(MetricError::Failed { metric: m, message: format!("echo answered {n} bytes") }),
        }
    });
    let stop = client.send(&[]);
    let joined = echo.join();
    match (result, stop, joined) {
        (Err(e), _, _) => Err(e),
        (Ok(_), Err(e), _) => Err(MetricError::Io { metric: m, context: "stopping the echo thread", source: e }),
        (Ok(_), _, Ok(Err(e))) => Err(MetricError::Io { metric: m, context: "echo thread", source: e }),
        (Ok(_), _, Err(_)) => Err(MetricError::Failed { metric: m, message: "echo thread panicked".into() }),
        (Ok(r), Ok(_), Ok(Ok(()))) => Ok(r),
    }
}

/// Write size of net.tcp_stream (iperf3's default TCP length).
pub const STREAM_CHUNK: usize = 128 * 1024;

pub fn tcp_stream(spec: &'static MetricSpec, req: &RunRequest) -> Result<RunResult, MetricError> {
    let m = spec.name;
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(io(m, "bind 127.0.0.1 (is loopback up?)"))?;
    let addr = listener.local_addr().map_err(io(m, "local_addr"))?;
    // The sender stops when the receiver closes: its write fails.
    let sender = std::thread::spawn(move || -> u64 {
        let Ok((mut s, _)) = listener.accept() else { return 0 };
        let chunk = vec![0xa5u8; STREAM_CHUNK];
        let mut sent = 0u64;
        while s.write_all(&chunk).is_ok() {
            sent += STREAM_CHUNK as u64;
        }
        sent
    });
    let result = (|| {
        let mut c = TcpStream::connect(addr).map_err(io(m, "connect"))?;
        let mut b = vec![0u8; STREAM_CHUNK];
        let r = time_loop(spec, req, || c.read_exact(&mut b).map_err(io(m, "read")))?;
        if b.iter().any(|&x| x != 0xa5) {
            return Err(MetricError::Failed { metric: m, message: "bytes arrived corrupted".into() });
        }
        Ok(r)
    })();
    let sent = sender.join().map_err(|_| MetricError::Failed { metric: m, message: "sender thread panicked".into() })?;
    let r = result?;
    let received = (r.iterations + req.warmup) * STREAM_CHUNK as u64;
    if sent < received.saturating_sub(STREAM_CHUNK as u64) {
        return Err(MetricError::Failed { metric: m, message: format!("received {received} bytes but the sender wrote only {sent}") });
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{catalog, hist};

    #[test]
    fn tcp_rr_on_loopback() {
        let spec = catalog::lookup("net.tcp_rr").unwrap();
        let r = tcp_rr(spec, &RunRequest { metric: spec.name.into(), iterations: 300, max_ms: 10_000, warmup: 10, bytes: None }).unwrap();
        assert_eq!(r.iterations, 300);
        let h = hist::decode(&r.histogram).unwrap();
        assert_eq!(h.len(), 300);
        assert!(h.min() > 500, "a TCP round trip through the stack takes more than 0.5 µs, got {} ns", h.min());
    }

    #[test]
    fn tcp_stream_moves_the_bytes_it_claims() {
        let spec = catalog::lookup("net.tcp_stream").unwrap();
        let r = tcp_stream(spec, &RunRequest { metric: spec.name.into(), iterations: 160, max_ms: 10_000, warmup: 8, bytes: None }).unwrap();
        assert_eq!(r.iterations, 160);
        assert_eq!(r.bytes_per_op, STREAM_CHUNK as u64);
        assert_eq!(hist::decode(&r.histogram).unwrap().len(), 20);
        let gbit = spec.unit.from_ns_per_op(r.elapsed_ns as f64 / r.iterations as f64, r.bytes_per_op);
        assert!(gbit.is_finite() && gbit > 0.0, "{gbit}");
    }

    #[test]
    fn udp_rr_on_loopback() {
        let spec = catalog::lookup("net.udp_rr").unwrap();
        let r = udp_rr(spec, &RunRequest { metric: spec.name.into(), iterations: 300, max_ms: 10_000, warmup: 10, bytes: None }).unwrap();
        assert_eq!(r.iterations, 300);
        let h = hist::decode(&r.histogram).unwrap();
        assert_eq!(h.len(), 300);
        assert!(h.min() > 500, "a UDP round trip through the stack takes more than 0.5 µs, got {} ns", h.min());
    }
}
