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

/// Runs wrk (one thread, `connections` connections, `seconds`) POSTing to `path` the JSON
/// bodies of `bodies` in turn (one a line; wrapping round when they run out), each from a new
/// client address as the edge would send it. Returns (2xx answers per second, other answers).
pub fn wrk_bodies(
    base: &str,
    path: &str,
    bodies: &[String],
    connections: u32,
    seconds: u64,
) -> (f64, u64) {
    wrk_bodies_of_type(base, path, "application/json", bodies, connections, seconds)
}

/// [`wrk_bodies`] with bodies of `content_type` (a form, say).
pub fn wrk_bodies_of_type(
    base: &str,
    path: &str,
    content_type: &str,
    bodies: &[String],
    connections: u32,
    seconds: u64,
) -> (f64, u64) {
    let dir = tempfile::tempdir().unwrap();
    let lines = dir.path().join("bodies.jsonl");
    std::fs::write(&lines, bodies.join("\n")).unwrap();
    let script = format!(
        "local bodies = {{}}\n\
         local n = 0\n\
         for line in io.lines(\"{lines}\") do bodies[#bodies + 1] = line end\n\
         request = function()\n\
           n = n + 1\n\
           wrk.headers[\"x-tessera-edge-secret\"] = \"{EDGE_SECRET}\"\n\
           wrk.headers[\"x-tessera-client-ip\"] = \"10.\" .. (math.floor(n / 65536) % 256) .. \".\" .. (math.floor(n / 256) % 256) .. \".\" .. (n % 256)\n\
           wrk.headers[\"content-type\"] = \"{content_type}\"\n\
           return wrk.format(\"POST\", \"{path}\", nil, bodies[((n - 1) % #bodies) + 1])\n\
         end\n",
        lines = lines.display()
    );
    let file = dir.path().join("script.lua");
    std::fs::write(&file, script).unwrap();
    let output = std::process::Command::new("wrk")
        .args([
            "-t1",
            &format!("-c{connections}"),
            &format!("-d{seconds}s"),
            "-s",
        ])
        .arg(&file)
        .arg(base)
        .output()
        .expect("wrk (apt-get install wrk; scripts/bench-origin installs it)");
    let text = String::from_utf8_lossy(&output.stdout);
    // "12345 requests in 10.00s, …"
    let (requests, elapsed) = text
        .lines()
        .find_map(|l| {
            let l = l.trim();
            let (count, rest) = l.split_once(" requests in ")?;
            let secs = rest.split(['s', ',']).next()?.parse::<f64>().ok()?;
            Some((count.parse::<f64>().ok()?, secs))
        })
        .unwrap_or((0.0, 1.0));
    let failed = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Non-2xx or 3xx responses:"))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    ((requests - failed as f64) / elapsed, failed)
}
