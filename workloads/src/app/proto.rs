//! The two wire protocols of the app metrics, client side: RESP (redis's
//! protocol, as redis-benchmark sends it) and HTTP/1.1 keep-alive GETs (as
//! wrk sends them). Each request is encoded once before the clock starts;
//! each reply is read whole and checked (a redis error or a short HTTP body
//! fails the measurement instead of being timed as a success).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use super::{NGINX_FILES, REDIS_VALUE_BYTES};

/// The key every redis request names (one key, as redis-benchmark without
/// `-r`).
pub const REDIS_KEY: &str = "isobench:key";

/// How long a reply may take before the connection is given up (a server
/// that stopped answering must not hang the load generator).
pub const REPLY_WAIT: Duration = Duration::from_secs(30);

/// One kind of request an app metric sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// RESP `GET isobench:key` of a 64-byte value.
    RedisGet,
    /// RESP `SET isobench:key <64 bytes>`.
    RedisSet,
    /// HTTP/1.1 `GET path` of a static file of `bytes`.
    HttpGet { path: &'static str, bytes: usize },
}

impl Op {
    /// The operation of an `app.*` metric: `app.redis.get[.latency]`,
    /// `app.redis.set[.latency]`, `app.nginx.1k[.latency]`,
    /// `app.nginx.64k[.latency]`.
    pub fn of_metric(metric: &str) -> Option<Op> {
        let base = metric.strip_suffix(".latency").unwrap_or(metric);
        match base {
            "app.redis.get" => Some(Op::RedisGet),
            "app.redis.set" => Some(Op::RedisSet),
            "app.nginx.1k" => Some(Op::HttpGet { path: NGINX_FILES[0].0, bytes: NGINX_FILES[0].1 }),
            "app.nginx.64k" => Some(Op::HttpGet { path: NGINX_FILES[1].0, bytes: NGINX_FILES[1].1 }),
            _ => None,
        }
    }

    /// The request's bytes on the wire.
    pub fn encode(self) -> Vec<u8> {
        match self {
            Op::RedisGet => resp(&[b"GET", REDIS_KEY.as_bytes()]),
            Op::RedisSet => resp(&[b"SET", REDIS_KEY.as_bytes(), &value()]),
            Op::HttpGet { path, .. } => format!("GET {path} HTTP/1.1\r\nHost: isobench\r\n\r\n").into_bytes(),
        }
    }

    /// Payload bytes one reply carries (the value or the file).
    pub fn reply_bytes(self) -> usize {
        match self {
            Op::RedisGet => REDIS_VALUE_BYTES,
            Op::RedisSet => 0,
            Op::HttpGet { bytes, .. } => bytes,
        }
    }
}

/// The 64-byte value SET writes and GET must read back.
pub fn value() -> Vec<u8> {
    (0..REDIS_VALUE_BYTES).map(|i| b'a' + (i % 26) as u8).collect()
}

/// A RESP array of bulk strings.
fn resp(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// One client connection: requests written, replies read and checked.
pub struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    line: Vec<u8>,
    body: Vec<u8>,
}

impl Conn {
    /// Connects with TCP_NODELAY (both reference tools set it).
    pub fn connect(target: SocketAddr) -> std::io::Result<Conn> {
        let s = TcpStream::connect_timeout(&target, REPLY_WAIT)?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(REPLY_WAIT))?;
        let writer = s.try_clone()?;
        Ok(Conn { reader: BufReader::with_capacity(128 * 1024, s), writer, line: Vec::new(), body: Vec::new() })
    }

    /// Writes `bytes` (one or more encoded requests).
    pub fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.writer.write_all(bytes)
    }

    /// Reads one reply to `op` and checks it.
    pub fn recv(&mut self, op: Op) -> std::io::Result<()> {
        match op {
            Op::RedisGet | Op::RedisSet => self.recv_resp(op),
            Op::HttpGet { bytes, .. } => self.recv_http(bytes),
        }
    }

    fn read_line(&mut self) -> std::io::Result<()> {
        self.line.clear();
        let n = self.reader.read_until(b'\n', &mut self.line)?;
        if n == 0 || !self.line.ends_with(b"\r\n") {
            return Err(bad("the server closed the connection mid-reply"));
        }
        self.line.truncate(n - 2);
        Ok(())
    }

    fn recv_resp(&mut self, op: Op) -> std::io::Result<()> {
        self.read_line()?;
        match (op, self.line.first()) {
            (Op::RedisSet, Some(b'+')) => Ok(()),
            (Op::RedisGet, Some(b'$')) => {
                let n: i64 = parse(&self.line[1..])?;
                if n != REDIS_VALUE_BYTES as i64 {
                    return Err(bad(&format!("GET answered a value of {n} bytes, not {REDIS_VALUE_BYTES} (was the key set?)")));
                }
                self.body.resize(REDIS_VALUE_BYTES + 2, 0);
                self.reader.read_exact(&mut self.body)
            }
            (_, Some(b'-')) => Err(bad(&format!("redis answered an error: {}", String::from_utf8_lossy(&self.line[1..])))),
            _ => Err(bad(&format!("unexpected redis reply {:?}", String::from_utf8_lossy(&self.line)))),
        }
    }

    fn recv_http(&mut self, want: usize) -> std::io::Result<()> {
        self.read_line()?;
        if !self.line.starts_with(b"HTTP/1.1 200") {
            return Err(bad(&format!("HTTP status line {:?}", String::from_utf8_lossy(&self.line))));
        }
        let mut length = None;
        loop {
            self.read_line()?;
            if self.line.is_empty() {
                break;
            }
            if let Some(v) = strip_header(&self.line, b"content-length:") {
                length = Some(parse::<usize>(v)?);
            }
        }
        match length {
            Some(n) if n == want => {
                self.body.resize(n, 0);
                self.reader.read_exact(&mut self.body)
            }
            other => Err(bad(&format!("HTTP body of {other:?} bytes, not {want}"))),
        }
    }
}

fn strip_header<'a>(line: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    (line.len() >= name.len() && line[..name.len()].eq_ignore_ascii_case(name)).then(|| &line[name.len()..])
}

fn parse<T: std::str::FromStr>(bytes: &[u8]) -> std::io::Result<T> {
    std::str::from_utf8(bytes)
        .ok()
        .map(str::trim)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad(&format!("not a number: {:?}", String::from_utf8_lossy(bytes))))
}

fn bad(message: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, message.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_what_the_reference_tools_send() {
        assert_eq!(Op::RedisGet.encode(), b"*2\r\n$3\r\nGET\r\n$12\r\nisobench:key\r\n");
        let set = String::from_utf8(Op::RedisSet.encode()).unwrap();
        assert!(set.starts_with("*3\r\n$3\r\nSET\r\n$12\r\nisobench:key\r\n$64\r\nabc"), "{set}");
        assert_eq!(Op::of_metric("app.nginx.64k.latency"), Some(Op::HttpGet { path: "/64k.bin", bytes: 65536 }));
        assert_eq!(Op::of_metric("app.nginx.1k").unwrap().encode(), b"GET /1k.bin HTTP/1.1\r\nHost: isobench\r\n\r\n");
        assert_eq!(Op::of_metric("app.redis.nope"), None);
    }

    #[test]
    fn replies_are_read_whole_and_checked() {
        use std::net::TcpListener;
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut reply = b"+OK\r\n$64\r\n".to_vec();
            reply.extend_from_slice(&value());
            reply.extend_from_slice(b"\r\n-ERR wrong\r\nHTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc$5\r\n");
            s.write_all(&reply).unwrap();
        });
        let mut c = Conn::connect(addr).unwrap();
        c.recv(Op::RedisSet).unwrap();
        c.recv(Op::RedisGet).unwrap();
        assert!(c.recv(Op::RedisSet).unwrap_err().to_string().contains("ERR wrong"));
        c.recv(Op::HttpGet { path: "/x", bytes: 3 }).unwrap();
        assert!(c.recv(Op::RedisGet).unwrap_err().to_string().contains("5 bytes"));
        server.join().unwrap();
    }
}
