//! The environment's end of an app metric: a real server started by the
//! agent, configured by isobench, stopped with its process group.
//!
//! [`start`] makes the server's directory (the harness names it: natively a
//! pid-stamped temp dir the next start's sweep can find, in a container or
//! guest a path in its own /tmp), writes the configuration there (the port,
//! no persistence for redis, the docroot with a 1 KiB and a 64 KiB file for
//! nginx, logs off, one nginx worker), execs the binary by its absolute path
//! in a session of its own (so the whole group, nginx's worker too, is
//! signalled together) with `PR_SET_PDEATHSIG` (the server dies with the
//! agent), writes the group's id to `server.pgid` for the sweep, and waits
//! until the server accepts a TCP connection. [`Server::stop`] (and drop)
//! sends SIGTERM to the group, SIGKILL after [`STOP_WAIT`], reaps the
//! server and removes the directory.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

use super::{App, NGINX_FILES, NGINX_WORKERS};
use crate::metrics::NOT_SUPPORTED;

/// How long a server may take to accept its first connection: redis and
/// nginx start in milliseconds natively; a guest under TCG is two orders
/// of magnitude slower.
pub const START_WAIT: Duration = Duration::from_secs(60);

/// How long a server may take to exit after SIGTERM before SIGKILL.
pub const STOP_WAIT: Duration = Duration::from_secs(5);

/// The file in the server's directory holding its process group id, read
/// by the sweep of a run that was killed.
pub const PGID_FILE: &str = "server.pgid";

/// The file its stdout and stderr go to (kept for an error message only;
/// both servers are configured to log nothing but failures).
pub const LOG_FILE: &str = "server.log";

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("{app}: {NOT_SUPPORTED}: {binary} is not in this environment's files (the {package} package: natively scripts/setup installs it; a container needs --rootfs debian --image-packages {packages})", packages = super::packages())]
    Missing { app: App, binary: &'static str, package: &'static str },
    #[error("{app}: {context}: {source}")]
    Io {
        app: App,
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{app}: the server exited ({status}) before it accepted a connection; its output: {log}")]
    Exited { app: App, status: String, log: String },
    #[error("{app}: the server did not accept a connection on {addr} within {wait:?}")]
    NoAccept { app: App, addr: SocketAddr, wait: Duration },
}

/// A running server.
pub struct Server {
    pub app: App,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its process group (= its pid).
    pub pgid: u32,
    dir: PathBuf,
    child: Option<Child>,
}

/// Starts `app` bound to `bind` (port 0: a free one is picked) with its
/// files in `dir`, which must not exist yet (its parent must), and waits
/// until it accepts.
pub fn start(app: App, bind: SocketAddr, dir: &Path) -> Result<Server, ServerError> {
    let io = |context: String| move |source| ServerError::Io { app, context, source };
    if !Path::new(app.binary()).is_file() {
        return Err(ServerError::Missing { app, binary: app.binary(), package: app.package() });
    }
    let port = match bind.port() {
        0 => TcpListener::bind(SocketAddr::new(bind.ip(), 0))
            .and_then(|l| l.local_addr())
            .map_err(io(format!("pick a free port on {}", bind.ip())))?
            .port(),
        p => p,
    };
    let addr = SocketAddr::new(bind.ip(), port);
    std::fs::create_dir(dir).map_err(io(format!("create {}", dir.display())))?;
    // From here on the directory is the server's: dropped, it is removed.
    let mut server = Server { app, addr, pgid: 0, dir: dir.to_path_buf(), child: None };
    let args = configure(app, addr, dir).map_err(io(format!("write the configuration into {}", dir.display())))?;
    let log = std::fs::File::create(dir.join(LOG_FILE)).map_err(io(format!("create {}", dir.join(LOG_FILE).display())))?;
    let mut cmd = Command::new(app.binary());
    cmd.args(&args).current_dir(dir).stdin(Stdio::null()).stdout(log.try_clone().map_err(io("dup the log".into()))?).stderr(log);
    // SAFETY: between fork and exec only async-signal-safe calls: setsid(2)
    // and prctl(2), no allocation.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn().map_err(io(format!("exec {}", app.binary())))?;
    server.pgid = child.id();
    server.child = Some(child);
    std::fs::write(dir.join(PGID_FILE), format!("{}\n", server.pgid)).map_err(io(format!("write {PGID_FILE}")))?;
    server.wait_accepting()?;
    Ok(server)
}

/// Writes `app`'s configuration into `dir` and returns the server's
/// arguments.
fn configure(app: App, addr: SocketAddr, dir: &Path) -> std::io::Result<Vec<String>> {
    let d = dir.display();
    match app {
        App::Redis => {
            // No persistence (no RDB snapshot, no AOF), no pid file
            // (daemonize no), warnings only, to stdout (the log file).
            let conf = format!(
                "bind {ip}\nport {port}\nprotected-mode no\ndaemonize no\nsave \"\"\nappendonly no\ndir {d}\nloglevel warning\nlogfile \"\"\ndatabases 1\n",
                ip = addr.ip(),
                port = addr.port()
            );
            std::fs::write(dir.join("redis.conf"), conf)?;
            Ok(vec![dir.join("redis.conf").display().to_string()])
        }
        App::Nginx => {
            let root = dir.join("www");
            std::fs::create_dir(&root)?;
            for (path, bytes) in NGINX_FILES {
                let body: Vec<u8> = (0..bytes).map(|i| b'a' + (i % 26) as u8).collect();
                std::fs::File::create(root.join(path.trim_start_matches('/')))?.write_all(&body)?;
            }
            // The worker may run as nobody: the docroot must be readable by all.
            for p in [dir, root.as_path()] {
                std::fs::set_permissions(p, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
            }
            let listen = match addr.ip() {
                IpAddr::V6(ip) => format!("[{ip}]:{}", addr.port()),
                IpAddr::V4(ip) => format!("{ip}:{}", addr.port()),
            };
            let conf = format!(
                "daemon off;\nmaster_process on;\nworker_processes {NGINX_WORKERS};\npid {d}/nginx.pid;\nerror_log stderr crit;\n\
                 events {{ worker_connections 1024; }}\n\
                 http {{\n  access_log off;\n  sendfile on;\n  tcp_nopush on;\n  keepalive_requests 1000000;\n  keepalive_timeout 300s;\n  \
                 client_body_temp_path {d}/tmp-body;\n  proxy_temp_path {d}/tmp-proxy;\n  fastcgi_temp_path {d}/tmp-fastcgi;\n  \
                 uwsgi_temp_path {d}/tmp-uwsgi;\n  scgi_temp_path {d}/tmp-scgi;\n  types {{ application/octet-stream bin; }}\n  \
                 server {{\n    listen {listen};\n    root {root};\n  }}\n}}\n",
                root = root.display()
            );
            std::fs::write(dir.join("nginx.conf"), conf)?;
            // -e: the error log before the configuration is read (the
            // compiled-in path may be read-only in an image).
            Ok(["-c", &dir.join("nginx.conf").display().to_string(), "-p", &d.to_string(), "-e", "stderr"].map(String::from).to_vec())
        }
    }
}

impl Server {
    /// Polls a TCP connect until the server accepts, it exits, or
    /// [`START_WAIT`] passes.
    fn wait_accepting(&mut self) -> Result<(), ServerError> {
        let app = self.app;
        let target = match self.addr.ip() {
            ip if ip.is_unspecified() => SocketAddr::new(Ipv4Addr::LOCALHOST.into(), self.addr.port()),
            _ => self.addr,
        };
        let t0 = Instant::now();
        loop {
            if TcpStream::connect_timeout(&target, Duration::from_millis(500)).is_ok() {
                return Ok(());
            }
            let child = self.child.as_mut().expect("started");
            if let Some(status) = child.try_wait().map_err(|source| ServerError::Io { app, context: "wait for the server".into(), source })? {
                self.child = None;
                let log = std::fs::read_to_string(self.dir.join(LOG_FILE)).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(3).collect();
                let log = tail.into_iter().rev().collect::<Vec<_>>().join(" / ");
                return Err(ServerError::Exited { app, status: status.to_string(), log });
            }
            if t0.elapsed() >= START_WAIT {
                return Err(ServerError::NoAccept { app, addr: self.addr, wait: START_WAIT });
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stops the server (SIGTERM to its group, SIGKILL after [`STOP_WAIT`]),
    /// reaps it and removes its directory. Returns how it exited.
    pub fn stop(mut self) -> String {
        self.shut()
    }

    fn shut(&mut self) -> String {
        let mut how = String::from("not running");
        if let Some(mut child) = self.child.take() {
            let group = Pid::from_raw(self.pgid as i32);
            let _ = killpg(group, Signal::SIGTERM);
            let t0 = Instant::now();
            let status = loop {
                match child.try_wait() {
                    Ok(Some(s)) => break Some(s),
                    Ok(None) if t0.elapsed() < STOP_WAIT => std::thread::sleep(Duration::from_millis(5)),
                    _ => {
                        let _ = killpg(group, Signal::SIGKILL);
                        break child.wait().ok();
                    }
                }
            };
            // nginx's worker leaves with its master; a straggler goes now.
            let _ = killpg(group, Signal::SIGKILL);
            how = status.map(|s| s.to_string()).unwrap_or_else(|| "unknown".into());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        how
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shut();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_binary_is_one_clear_line_and_leaves_no_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("srv");
        if Path::new(App::Redis.binary()).is_file() {
            return; // the host has it: the integration tests start it
        }
        let e = start(App::Redis, "127.0.0.1:0".parse().unwrap(), &dir).err().unwrap().to_string();
        assert!(e.contains("/usr/bin/redis-server") && e.contains("redis-server package"), "{e}");
        assert!(!dir.exists());
    }

    #[test]
    fn nginx_and_redis_configurations_name_the_port_and_turn_persistence_and_logs_off() {
        let tmp = tempfile::tempdir().unwrap();
        let addr: SocketAddr = "10.0.0.2:6390".parse().unwrap();
        let args = configure(App::Redis, addr, tmp.path()).unwrap();
        let conf = std::fs::read_to_string(tmp.path().join("redis.conf")).unwrap();
        assert!(conf.contains("bind 10.0.0.2\nport 6390\n") && conf.contains("save \"\"\nappendonly no\n"), "{conf}");
        assert_eq!(args, [tmp.path().join("redis.conf").display().to_string()]);
        let n = tmp.path().join("n");
        std::fs::create_dir(&n).unwrap();
        configure(App::Nginx, addr, &n).unwrap();
        let conf = std::fs::read_to_string(n.join("nginx.conf")).unwrap();
        assert!(conf.contains("listen 10.0.0.2:6390;") && conf.contains("access_log off;") && conf.contains("worker_processes 1;"), "{conf}");
        assert_eq!(std::fs::metadata(n.join("www/64k.bin")).unwrap().len(), 65536);
        assert_eq!(std::fs::metadata(n.join("www/1k.bin")).unwrap().len(), 1024);
    }
}
