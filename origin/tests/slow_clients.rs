//! Slow and greedy clients against the real listener: headers trickled a line at a time, an
//! idle keep-alive connection, a body that never finishes.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::{Backend, TestServer};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// Every wait below is for the server to act, bounded so that a broken server fails the test
/// instead of hanging it.
const BOUND: Duration = Duration::from_secs(30);

async fn slow_server() -> TestServer {
    TestServer::start_with(
        Backend::Sqlite,
        &[
            ("TESSERA_HEADER_READ_TIMEOUT_SECS", "2"),
            ("TESSERA_BODY_READ_TIMEOUT_SECS", "2"),
        ],
    )
    .await
}

/// Whether the server has closed the connection (reading gives end of stream or an error).
async fn closed_by_server(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 1024];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return true,
            // A 408 or similar may come first; the close follows.
            Ok(_) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hundred_connections_trickling_headers_are_closed_and_others_are_served() {
    let server = slow_server().await;
    let mut slow = Vec::new();
    for _ in 0..300 {
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: tessera\r\n")
            .await
            .unwrap();
        slow.push(stream);
    }
    // Each keeps sending a header line every half second, never the blank line that ends them.
    let trickling = slow
        .into_iter()
        .map(|mut stream| {
            tokio::spawn(async move {
                let started = Instant::now();
                loop {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    if stream.write_all(b"X-Slow: 1\r\n").await.is_err() {
                        return true;
                    }
                    let mut probe = [0u8; 1];
                    match tokio::time::timeout(Duration::from_millis(1), stream.read(&mut probe))
                        .await
                    {
                        Ok(Ok(0) | Err(_)) => return true,
                        _ if started.elapsed() > BOUND => return false,
                        _ => {}
                    }
                }
            })
        })
        .collect::<Vec<_>>();
    // Meanwhile a normal client is answered.
    let normal = server
        .http
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(normal.status(), 200);
    for task in trickling {
        assert!(
            task.await.unwrap(),
            "a trickling connection was still open after {BOUND:?}"
        );
    }
    // And afterwards too.
    assert_eq!(
        server
            .http
            .get(server.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_connection_is_closed() {
    let server = slow_server().await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: tessera\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 4096];
    let n = stream.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    // Kept alive, then idle: the server closes it.
    assert!(tokio::time::timeout(BOUND, closed_by_server(&mut stream))
        .await
        .unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_never_finishes_gets_408() {
    let server = slow_server().await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(
            b"POST /api/auth/login HTTP/1.1\r\nHost: tessera\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"email\":",
        )
        .await
        .unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let read = tokio::time::timeout(BOUND, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    answer.extend_from_slice(&buf[..n]);
                    if answer.windows(4).any(|w| w == b"\r\n\r\n") && answer.ends_with(b"}") {
                        break;
                    }
                }
            }
        }
    })
    .await;
    assert!(read.is_ok(), "no answer within {BOUND:?}");
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("\"code\":\"request_timeout\""), "{text}");
}
