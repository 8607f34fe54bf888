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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{catalog, hist};

    #[test]
    fn tcp_rr_on_loopback() {
        let spec = catalog::lookup("net.tcp_rr").unwrap();
        let r = tcp_rr(spec, &RunRequest { metric: spec.name.into(), iterations: 300, max_ms: 10_000, warmup: 10 }).unwrap();
        assert_eq!(r.iterations, 300);
        let h = hist::decode(&r.histogram).unwrap();
        assert_eq!(h.len(), 300);
        assert!(h.min() > 500, "a TCP round trip through the stack takes more than 0.5 µs, got {} ns", h.min());
    }

    #[test]
    fn udp_rr_on_loopback() {
        let spec = catalog::lookup("net.udp_rr").unwrap();
        let r = udp_rr(spec, &RunRequest { metric: spec.name.into(), iterations: 300, max_ms: 10_000, warmup: 10 }).unwrap();
        assert_eq!(r.iterations, 300);
        let h = hist::decode(&r.histogram).unwrap();
        assert_eq!(h.len(), 300);
        assert!(h.min() > 500, "a UDP round trip through the stack takes more than 0.5 µs, got {} ns", h.min());
    }
}
