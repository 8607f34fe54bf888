//! Real applications as workloads (the `app.*` metrics): redis and nginx,
//! each started inside the environment by its agent from the binary the
//! environment's own files hold, and loaded from the host side across the
//! environment's boundary by isobench's own load generator.
//!
//! [`server`] is the environment's end: it writes the server's
//! configuration (a port, no persistence, no logs) into a directory of its
//! own, execs the binary by path (`/usr/bin/redis-server`,
//! `/usr/sbin/nginx`: natively the host's, in a container or a guest the
//! image's), waits until it accepts connections and stops it with its whole
//! process group. [`load`] is the host side's end: a closed loop for
//! throughput at saturation and an open loop at a constant rate with wrk2's
//! coordinated-omission correction for latency; [`proto`] speaks RESP and
//! HTTP/1.1 for it.

pub mod load;
pub mod proto;
pub mod server;

use serde::{Deserialize, Serialize};

/// The applications isobench can start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum App {
    /// redis-server: one event-loop thread, no persistence.
    Redis,
    /// nginx: one master and [`NGINX_WORKERS`] worker, static files.
    Nginx,
}

/// nginx worker processes: one, as redis serves on one thread, so both
/// servers use one CPU for requests (the machines this runs on have two).
pub const NGINX_WORKERS: u32 = 1;

/// Bytes of the value every redis GET reads and SET writes (the issue's
/// 64-byte values; redis-benchmark `-d 64`).
pub const REDIS_VALUE_BYTES: usize = 64;

/// The two files nginx serves: (path, bytes).
pub const NGINX_FILES: [(&str, usize); 2] = [("/1k.bin", 1024), ("/64k.bin", 64 * 1024)];

impl App {
    pub const ALL: [App; 2] = [App::Redis, App::Nginx];

    pub fn as_str(self) -> &'static str {
        match self {
            App::Redis => "redis",
            App::Nginx => "nginx",
        }
    }

    /// The binary the agent execs, by absolute path: the same path natively
    /// (Debian's redis-server and nginx-light packages) and in the image.
    pub fn binary(self) -> &'static str {
        match self {
            App::Redis => "/usr/bin/redis-server",
            App::Nginx => "/usr/sbin/nginx",
        }
    }

    /// The Debian package that holds [`App::binary`].
    pub fn package(self) -> &'static str {
        match self {
            App::Redis => "redis-server",
            App::Nginx => "nginx-light",
        }
    }

    /// The application of an `app.<name>.*` metric.
    pub fn of_metric(metric: &str) -> Option<App> {
        let name = metric.strip_prefix("app.")?.split('.').next()?;
        App::ALL.into_iter().find(|a| a.as_str() == name)
    }
}

impl std::fmt::Display for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The packages every app metric needs in an image, for messages:
/// `redis-server,nginx-light`.
pub fn packages() -> String {
    App::ALL.map(App::package).join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_app_metric_names_its_application() {
        assert_eq!(App::of_metric("app.redis.get"), Some(App::Redis));
        assert_eq!(App::of_metric("app.nginx.64k.latency"), Some(App::Nginx));
        assert_eq!(App::of_metric("net.tcp_rr"), None);
        assert_eq!(App::of_metric("app.mysql.x"), None);
        assert_eq!(packages(), "redis-server,nginx-light");
    }
}
