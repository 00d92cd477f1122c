//! Token verification through the real Worker (workerd under Miniflare) in front of the real
//! origin: VoiceStamp's `GET /api/v1/auth/verify` with a 30-day session token (answered at the
//! edge) and with a service token (the origin asked once, then the edge's memory), against the
//! canonical `GET /api/auth/verify` with an access token, in the same run. Requests rotate over
//! 256 client addresses, so that the verify quota (6,000 a minute per address) is not what is
//! measured. Run: `cargo bench -p tessera-tests --bench verify` (after
//! `scripts/build-edge`); prints Markdown rows for docs/BENCHMARKS.md.

#![allow(missing_docs, clippy::expect_used, clippy::unwrap_used, clippy::panic)]
#![allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss
)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tessera_core::model::TenantSlug;
use tessera_origin::services::api_tokens::NewApiToken;
use tessera_tests::Stack;

const SEQUENTIAL: usize = 2_000;
const CONCURRENT_CLIENTS: usize = 16;
const CONCURRENT_SECS: u64 = 5;

/// One of 256 client addresses: each stays far under the verify quota for the whole run, and
/// its rate-limit object is warm, as a real client's would be.
fn client_ip(n: u64) -> String {
    format!("10.0.0.{}", n % 256)
}

async fn verify(stack: &Stack, path: &str, token: &str, n: u64) -> bool {
    stack
        .http
        .get(stack.edge(path))
        .bearer_auth(token)
        .header("cf-connecting-ip", client_ip(n))
        .send()
        .await
        .is_ok_and(|r| r.status() == 200)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index].as_secs_f64() * 1000.0
}

/// p50 and p99 in ms of sequential requests, and requests/s with concurrent clients.
async fn measure(
    stack: &Arc<Stack>,
    path: &str,
    token: &str,
    next: &Arc<AtomicU64>,
) -> (f64, f64, f64) {
    for _ in 0..200 {
        assert!(verify(stack, path, token, next.fetch_add(1, Ordering::Relaxed)).await);
    }
    let mut times = Vec::with_capacity(SEQUENTIAL);
    for _ in 0..SEQUENTIAL {
        let started = Instant::now();
        assert!(verify(stack, path, token, next.fetch_add(1, Ordering::Relaxed)).await);
        times.push(started.elapsed());
    }
    times.sort();
    let done = Arc::new(AtomicU64::new(0));
    let stop = Instant::now() + Duration::from_secs(CONCURRENT_SECS);
    let started = Instant::now();
    let tasks: Vec<_> = (0..CONCURRENT_CLIENTS)
        .map(|_| {
            let (stack, done, next) = (stack.clone(), done.clone(), next.clone());
            let (path, token) = (path.to_owned(), token.to_owned());
            tokio::spawn(async move {
                while Instant::now() < stop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    assert!(verify(&stack, &path, &token, n).await);
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let rate = done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    (percentile(&times, 0.5), percentile(&times, 0.99), rate)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let stack = Arc::new(Stack::start().await);
    stack.create_user("ann@example.com").await;
    let access = stack.sign_in("ann@example.com", "198.51.100.1").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let signed = stack
        .voicestamp_sign_in("ann@example.com", "198.51.100.2")
        .await;
    let session = signed["data"]["token"].as_str().unwrap().to_owned();
    let tenant = TenantSlug::parse("default").unwrap();
    let service = stack
        .state
        .services
        .api_tokens
        .create(
            &tenant,
            NewApiToken {
                name: "bench".into(),
                scopes: vec![],
                expires_in_days: None,
            },
        )
        .await
        .unwrap()
        .token;

    let next = Arc::new(AtomicU64::new(1));
    // Every client address's rate-limit object, and each token's first verification, before
    // anything is timed.
    for token in [&access, &session, &service] {
        for _ in 0..512 {
            let n = next.fetch_add(1, Ordering::Relaxed);
            assert!(verify(&stack, "/api/v1/auth/verify", token, n).await);
        }
    }
    let baseline = measure(&stack, "/api/auth/verify", &access, &next).await;
    let rows = [
        (
            "`GET /api/v1/auth/verify`, VoiceStamp session token (JWT, 30 days)",
            measure(&stack, "/api/v1/auth/verify", &session, &next).await,
        ),
        (
            "`GET /api/v1/auth/verify`, service token (the edge's memory of the origin's answer)",
            measure(&stack, "/api/v1/auth/verify", &service, &next).await,
        ),
        (
            "`GET /api/auth/verify`, access token again (drift check)",
            measure(&stack, "/api/auth/verify", &access, &next).await,
        ),
    ];
    println!("| request through the Worker | p50 / p99 sequential | req/s ({CONCURRENT_CLIENTS} clients) | baseline: `GET /api/auth/verify`, access token, same run |");
    println!("|---|---|---|---|");
    for (name, (p50, p99, rate)) in rows {
        println!(
            "| {name} | {p50:.2} / {p99:.2} ms | {rate:.0} | {:.2} / {:.2} ms, {:.0}/s (p50 {:.2}×) |",
            baseline.0,
            baseline.1,
            baseline.2,
            p50 / baseline.0
        );
    }
}
