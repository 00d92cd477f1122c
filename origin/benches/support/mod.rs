//! What the benchmarks share: the release `tessera` binary as a separate process, measured
//! from outside.

#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const EDGE_SECRET: &str = "bench-edge-secret-0123456789abcdef0123";
pub const PASSWORD: &str = "correct horse battery staple";

/// A running `tessera serve`, killed when dropped.
pub struct Server {
    pub child: Child,
    pub base: String,
    /// From spawn to the first accepted connection.
    pub started_in: Duration,
}

impl Server {
    pub fn start(vars: &[(&str, String)]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut command = Command::new(env!("CARGO_BIN_EXE_tessera"));
        command
            .arg("serve")
            .env("TESSERA_BIND", format!("127.0.0.1:{port}"))
            .env("TESSERA_EDGE_SECRET", EDGE_SECRET)
            .env("TESSERA_OPS_BIND", "127.0.0.1:0")
            .env("TESSERA_LOG", "error")
            .env("TESSERA_HASH_QUEUE", "2048")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (k, v) in vars {
            command.env(k, v);
        }
        let spawned = Instant::now();
        let child = command.spawn().expect("start tessera");
        let mut server = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            started_in: Duration::ZERO,
        };
        let deadline = Instant::now() + Duration::from_secs(120);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "tessera did not start");
            std::thread::sleep(Duration::from_millis(5));
        }
        server.started_in = spawned.elapsed();
        server
    }

    /// (current RSS, peak RSS) in MiB, from /proc.
    pub fn memory_mib(&self) -> (f64, f64) {
        memory_mib(self.child.id())
    }

    /// File descriptors the server holds open.
    pub fn open_files(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id())).map_or(0, Iterator::count)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// (current RSS, peak RSS) of process `pid` in MiB, from /proc.
pub fn memory_mib(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// A distinct client address for request `n`, sent as the edge would, so that per-IP limits
/// are not what a benchmark measures.
pub fn client_ip(n: u64) -> String {
    format!("10.{}.{}.{}", (n >> 16) & 255, (n >> 8) & 255, n & 255)
}
