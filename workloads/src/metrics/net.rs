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
//!
//! `net.*.boundary`: the same three across the environment's boundary. The
//! environment's agent runs the server end ([`serve`]: echo, or sender) on a
//! thread bound to its address on the veth, tap or slirp network; an agent
//! on the host side (in the run's private network namespace) runs the
//! client end ([`boundary_client`]) and times it with the host's clock, which
//! stays trustworthy when a guest's does not. Natively both ends are agents
//! on the host's loopback: the same two processes and code with no boundary
//! in between, the baseline of the ratio.
//!
//! The echo and sender threads are spawned through
//! [`Placement::spawn_peer`] (a thread inherits its creator's CPU mask), so
//! `split` puts them on another CPU than the measuring thread. A boundary
//! server is pinned where the `Serve` request says ([`serve`]).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsFd;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::catalog::MetricSpec;
use crate::protocol::{PinMode, RunRequest, RunResult};

use super::{time_loop, MetricError, Placement};

fn io(metric: &'static str, context: &'static str) -> impl Fn(std::io::Error) -> MetricError {
    move |source| MetricError::Io { metric, context, source }
}

/// One closed-loop TCP round trip of one byte: the measured operation of
/// net.tcp_rr and net.tcp_rr.boundary alike.
fn tcp_round_trip(m: &'static str, c: &mut TcpStream, b: &mut [u8; 1]) -> Result<(), MetricError> {
    c.write_all(b).map_err(io(m, "write"))?;
    c.read_exact(b).map_err(io(m, "read"))
}

/// One closed-loop UDP round trip of one byte over a connected socket: the
/// measured operation of net.udp_rr and net.udp_rr.boundary alike. A lost
/// datagram ends as the socket's read timeout.
fn udp_round_trip(m: &'static str, c: &UdpSocket, b: &mut [u8; 1]) -> Result<(), MetricError> {
    c.send(b).map_err(io(m, "send"))?;
    match c.recv(b).map_err(io(m, "recv (no answer within the timeout: datagram lost?)"))? {
        1 => Ok(()),
        n => Err(MetricError::Failed { metric: m, message: format!("echo answered {n} bytes") }),
    }
}

pub fn tcp_rr(spec: &'static MetricSpec, req: &RunRequest, place: &Placement) -> Result<RunResult, MetricError> {
    let m = spec.name;
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(io(m, "bind 127.0.0.1 (is loopback up?)"))?;
    let addr = listener.local_addr().map_err(io(m, "local_addr"))?;
    #[cfg(test)]
    let creator = super::observe::creator();
    let server = place.spawn_peer(|| {
        std::thread::spawn(move || -> std::io::Result<()> {
            #[cfg(test)]
            super::observe::peer_thread(creator);
            tcp_echo(listener)
        })
    });
    let result = (|| {
        let mut c = TcpStream::connect(addr).map_err(io(m, "connect"))?;
        c.set_nodelay(true).map_err(io(m, "TCP_NODELAY"))?;
        let mut b = [0u8; 1];
        time_loop(spec, req, || tcp_round_trip(m, &mut c, &mut b))
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

/// The echo end of net.tcp_rr: one connection, every byte back, until end
/// of file.
fn tcp_echo(listener: TcpListener) -> std::io::Result<()> {
    let (mut s, _) = listener.accept()?;
    s.set_nodelay(true)?;
    let mut b = [0u8; 1];
    loop {
        match s.read(&mut b)? {
            0 => return Ok(()),
            _ => s.write_all(&b)?,
        }
    }
}

pub fn udp_rr(spec: &'static MetricSpec, req: &RunRequest, place: &Placement) -> Result<RunResult, MetricError> {
    let m = spec.name;
    let server = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).map_err(io(m, "bind 127.0.0.1 (is loopback up?)"))?;
    let client = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).map_err(io(m, "bind 127.0.0.1"))?;
    client.connect(server.local_addr().map_err(io(m, "local_addr"))?).map_err(io(m, "connect"))?;
    server.connect(client.local_addr().map_err(io(m, "local_addr"))?).map_err(io(m, "connect"))?;
    // Loopback does not drop datagrams unless a buffer overflows, which a
    // closed loop cannot cause; the timeout only turns a loss into an error.
    client.set_read_timeout(Some(Duration::from_secs(5))).map_err(io(m, "SO_RCVTIMEO"))?;
    #[cfg(test)]
    let creator = super::observe::creator();
    let echo = place.spawn_peer(|| {
        std::thread::spawn(move || -> std::io::Result<()> {
            #[cfg(test)]
            super::observe::peer_thread(creator);
            let mut b = [0u8; 1];
            loop {
                match server.recv(&mut b)? {
                    0 => return Ok(()),
                    n => {
                        server.send(&b[..n])?;
                    }
                }
            }
        })
    });
    let mut b = [0u8; 1];
    let result = time_loop(spec, req, || udp_round_trip(m, &client, &mut b));
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

pub fn tcp_stream(spec: &'static MetricSpec, req: &RunRequest, place: &Placement) -> Result<RunResult, MetricError> {
    let m = spec.name;
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(io(m, "bind 127.0.0.1 (is loopback up?)"))?;
    let addr = listener.local_addr().map_err(io(m, "local_addr"))?;
    // The sender stops when the receiver closes: its write fails.
    #[cfg(test)]
    let creator = super::observe::creator();
    let sender = place.spawn_peer(|| {
        std::thread::spawn(move || -> u64 {
            #[cfg(test)]
            super::observe::peer_thread(creator);
            let Ok((mut s, _)) = listener.accept() else { return 0 };
            let chunk = vec![0xa5u8; STREAM_CHUNK];
            let mut sent = 0u64;
            while s.write_all(&chunk).is_ok() {
                sent += STREAM_CHUNK as u64;
            }
            sent
        })
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

/// How long a boundary server waits for the host side to connect, and how
/// long either end waits for a datagram, before giving up with an error.
pub const BOUNDARY_WAIT: Duration = Duration::from_secs(20);

/// The environment's end of a cross-boundary metric, running on a thread of
/// its own until the host side is done.
pub struct Server {
    /// Where it listens (the real port when port 0 was asked).
    pub addr: SocketAddr,
    /// The CPU the server thread is pinned to; `None`: unpinned.
    pub cpu: Option<u32>,
    handle: JoinHandle<Result<u64, MetricError>>,
}

impl Server {
    /// Waits for the thread: the host side closed its connection (TCP) or
    /// sent the empty stop datagram (UDP). Returns the bytes the server wrote.
    pub fn join(self) -> Result<u64, MetricError> {
        self.handle.join().unwrap_or(Err(MetricError::Failed { metric: "net.*.boundary", message: "server thread panicked".into() }))
    }
}

/// Binds the server end of `spec` (a `*.boundary` metric) to `bind` and
/// starts its thread, pinned to `cpu` (or the CPU it starts on, or another
/// allowed one when `cpu` is not allowed here) under `PinMode::Same` and
/// `Split`, unpinned under `None`. Returns once the thread has pinned
/// itself, with the CPU it got in [`Server::cpu`].
///
/// Errors: `spec` is not a boundary metric, or binding fails (e.g. the
/// address is not on any interface of this namespace yet).
pub fn serve(spec: &'static MetricSpec, bind: SocketAddr, cpu: Option<u32>, pin: PinMode) -> Result<Server, MetricError> {
    let m = spec.name;
    let (pinned_tx, pinned_rx) = std::sync::mpsc::channel::<Option<u32>>();
    // Run first on the server thread: pins it and says where.
    let pin_here = move || {
        let guard = (pin != PinMode::None).then(|| super::CpuPin::to(cpu));
        let _ = pinned_tx.send(guard.as_ref().and_then(super::CpuPin::cpu));
        guard
    };
    match m {
        "net.tcp_rr.boundary" | "net.tcp_stream.boundary" => {
            let listener = TcpListener::bind(bind).map_err(io(m, "bind the boundary server"))?;
            let addr = listener.local_addr().map_err(io(m, "local_addr"))?;
            let stream = m == "net.tcp_stream.boundary";
            let handle = std::thread::spawn(move || -> Result<u64, MetricError> {
                let _pin = pin_here();
                let mut s = accept_within(&listener, BOUNDARY_WAIT).map_err(io(m, "accept the host side"))?;
                drop(listener);
                if stream {
                    // Until the receiver closes: then a write fails.
                    let chunk = vec![0xa5u8; STREAM_CHUNK];
                    let mut sent = 0u64;
                    while s.write_all(&chunk).is_ok() {
                        sent += STREAM_CHUNK as u64;
                    }
                    return Ok(sent);
                }
                s.set_nodelay(true).map_err(io(m, "TCP_NODELAY"))?;
                let mut b = [0u8; 1];
                let mut echoed = 0u64;
                loop {
                    match s.read(&mut b).map_err(io(m, "read"))? {
                        0 => return Ok(echoed),
                        _ => s.write_all(&b).map_err(io(m, "write"))?,
                    }
                    echoed += 1;
                }
            });
            let cpu = pinned_rx.recv().unwrap_or(None);
            Ok(Server { addr, cpu, handle })
        }
        "net.udp_rr.boundary" => {
            let sock = UdpSocket::bind(bind).map_err(io(m, "bind the boundary server"))?;
            let addr = sock.local_addr().map_err(io(m, "local_addr"))?;
            sock.set_read_timeout(Some(BOUNDARY_WAIT)).map_err(io(m, "SO_RCVTIMEO"))?;
            let handle = std::thread::spawn(move || -> Result<u64, MetricError> {
                let _pin = pin_here();
                let mut b = [0u8; 1];
                let mut echoed = 0u64;
                loop {
                    let (n, from) = sock.recv_from(&mut b).map_err(io(m, "recv_from (no datagram from the host side)"))?;
                    if n == 0 {
                        return Ok(echoed);
                    }
                    sock.send_to(&b[..n], from).map_err(io(m, "send_to"))?;
                    echoed += n as u64;
                }
            });
            let cpu = pinned_rx.recv().unwrap_or(None);
            Ok(Server { addr, cpu, handle })
        }
        _ => Err(MetricError::Failed { metric: m, message: "is not a metric measured across a boundary".into() }),
    }
}

/// accept(2) that gives up after `wait` (a host side that never comes must
/// not leave the agent blocked forever).
fn accept_within(listener: &TcpListener, wait: Duration) -> std::io::Result<TcpStream> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let ms = PollTimeout::try_from(wait.as_millis().min(i32::MAX as u128) as i32).unwrap_or(PollTimeout::MAX);
    let mut fds = [PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
    match poll(&mut fds, ms).map_err(std::io::Error::from)? {
        0 => Err(std::io::Error::new(std::io::ErrorKind::TimedOut, format!("nobody connected within {wait:?}"))),
        _ => listener.accept().map(|(s, _)| s),
    }
}

/// The host side's end of a `*.boundary` metric against the server at
/// `target`, timed here (see the module docs).
pub fn boundary_client(spec: &'static MetricSpec, req: &RunRequest, target: SocketAddr) -> Result<RunResult, MetricError> {
    let m = spec.name;
    match m {
        "net.tcp_rr.boundary" => {
            let mut c = TcpStream::connect_timeout(&target, BOUNDARY_WAIT).map_err(io(m, "connect to the environment"))?;
            c.set_nodelay(true).map_err(io(m, "TCP_NODELAY"))?;
            let mut b = [0u8; 1];
            time_loop(spec, req, || tcp_round_trip(m, &mut c, &mut b))
        }
        "net.udp_rr.boundary" => {
            let any = match target {
                SocketAddr::V4(_) => SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
                SocketAddr::V6(_) => SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, 0)),
            };
            let c = UdpSocket::bind(any).map_err(io(m, "bind"))?;
            c.connect(target).map_err(io(m, "connect"))?;
            c.set_read_timeout(Some(BOUNDARY_WAIT)).map_err(io(m, "SO_RCVTIMEO"))?;
            let mut b = [0u8; 1];
            let r = time_loop(spec, req, || udp_round_trip(m, &c, &mut b));
            // The empty datagram stops the echo thread, also after an error.
            let stop = c.send(&[]);
            let r = r?;
            stop.map_err(io(m, "stopping the environment's echo"))?;
            Ok(r)
        }
        "net.tcp_stream.boundary" => {
            let mut c = TcpStream::connect_timeout(&target, BOUNDARY_WAIT).map_err(io(m, "connect to the environment"))?;
            let mut b = vec![0u8; STREAM_CHUNK];
            let r = time_loop(spec, req, || c.read_exact(&mut b).map_err(io(m, "read")))?;
            if b.iter().any(|&x| x != 0xa5) {
                return Err(MetricError::Failed { metric: m, message: "bytes arrived corrupted".into() });
            }
            Ok(r)
        }
        _ => Err(MetricError::Failed { metric: m, message: "is not a metric measured across a boundary".into() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{catalog, hist};

    #[test]
    fn tcp_rr_on_loopback() {
        let spec = catalog::lookup("net.tcp_rr").unwrap();
        let r = tcp_rr(spec, &RunRequest { warmup: 10, ..RunRequest::new(spec.name, 300, 10_000) }, &Placement::UNPINNED).unwrap();
        assert_eq!(r.iterations, 300);
        let h = hist::decode(&r.histogram).unwrap();
        assert_eq!(h.len(), 300);
        assert!(h.min() > 500, "a TCP round trip through the stack takes more than 0.5 µs, got {} ns", h.min());
    }

    #[test]
    fn tcp_stream_moves_the_bytes_it_claims() {
        let spec = catalog::lookup("net.tcp_stream").unwrap();
        let r = tcp_stream(spec, &RunRequest { warmup: 8, ..RunRequest::new(spec.name, 320, 10_000) }, &Placement::UNPINNED).unwrap();
        assert_eq!(r.iterations, 320);
        assert_eq!(r.bytes_per_op, STREAM_CHUNK as u64);
        assert_eq!(hist::decode(&r.histogram).unwrap().len(), 5, "samples of 64 chunks (8 MiB)");
        let gbit = spec.unit.from_ns_per_op(r.elapsed_ns as f64 / r.iterations as f64, r.bytes_per_op);
        assert!(gbit.is_finite() && gbit > 0.0, "{gbit}");
    }

    /// Both ends as the harness drives them, here on loopback: serve, run the
    /// client against it, join; byte counts match what was timed.
    fn across(name: &str, iterations: u64, warmup: u64) -> (RunResult, u64) {
        let spec = catalog::lookup(name).unwrap();
        let server = serve(spec, (Ipv4Addr::LOCALHOST, 0).into(), None, PinMode::Same).unwrap();
        assert_ne!(server.addr.port(), 0);
        let mut req = RunRequest::new(name, iterations, 10_000);
        req.warmup = warmup;
        req.target = Some(server.addr.to_string());
        let r = boundary_client(spec, &req, server.addr).unwrap();
        let bytes = server.join().unwrap();
        (r, bytes)
    }

    #[test]
    fn boundary_round_trips_echo_every_byte() {
        for name in ["net.tcp_rr.boundary", "net.udp_rr.boundary"] {
            let (r, echoed) = across(name, 200, 10);
            assert_eq!(r.iterations, 200, "{name}");
            assert_eq!(echoed, 210, "{name}: one byte echoed per round trip, warm-up included");
            assert!(hist::decode(&r.histogram).unwrap().min() > 500, "{name}");
        }
    }

    #[test]
    fn boundary_stream_sender_wrote_at_least_what_was_received() {
        let (r, sent) = across("net.tcp_stream.boundary", 80, 8);
        // 80 rounded up to whole samples of 64 chunks
        assert_eq!(r.iterations, 128);
        assert!(sent >= 136 * STREAM_CHUNK as u64, "sent {sent}");
    }

    #[test]
    fn a_boundary_server_pins_where_it_is_asked_and_says_so() {
        let spec = catalog::lookup("net.udp_rr.boundary").unwrap();
        let allowed = super::super::allowed_cpus();
        let want = *allowed.last().unwrap();
        for (pin, expected) in [(PinMode::Same, Some(want)), (PinMode::Split, Some(want)), (PinMode::None, None)] {
            let server = serve(spec, (Ipv4Addr::LOCALHOST, 0).into(), Some(want), pin).unwrap();
            assert_eq!(server.cpu, expected, "{pin}");
            let c = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
            c.send_to(&[], server.addr).unwrap();
            assert_eq!(server.join().unwrap(), 0);
        }
    }

    #[test]
    fn an_inside_metric_has_no_server_end() {
        let spec = catalog::lookup("net.tcp_rr").unwrap();
        assert!(serve(spec, (Ipv4Addr::LOCALHOST, 0).into(), None, PinMode::Same).is_err(), "an inside metric has no server end");
    }

    #[test]
    fn udp_rr_on_loopback() {
        let spec = catalog::lookup("net.udp_rr").unwrap();
        let r = udp_rr(spec, &RunRequest { warmup: 10, ..RunRequest::new(spec.name, 300, 10_000) }, &Placement::UNPINNED).unwrap();
        assert_eq!(r.iterations, 300);
        let h = hist::decode(&r.histogram).unwrap();
        assert_eq!(h.len(), 300);
        assert!(h.min() > 500, "a UDP round trip through the stack takes more than 0.5 µs, got {} ns", h.min());
    }
}
