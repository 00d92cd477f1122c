//! The background sweep of the session cache and the verified-token cache: entries past their
//! use leave without waiting for capacity to evict them.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::{Backend, TestServer, PASSWORD};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_cache_entries_are_swept_in_the_background() {
    let server =
        TestServer::start_with(Backend::Sqlite, &[("TESSERA_CACHE_SWEEP_SECS", "1")]).await;
    server
        .create_user("default", "ann@example.com", PASSWORD)
        .await;
    for _ in 0..3 {
        let tokens = server.login("default", "ann@example.com", PASSWORD).await;
        let access = tokens["access_token"].as_str().unwrap();
        assert_eq!(
            server
                .get_fresh("/api/auth/me", Some(access))
                .await
                .status(),
            200
        );
    }
    let authenticate = &server.state.services.authenticate;
    assert_eq!(authenticate.cache_sizes(), (3, 3));

    // Past the session cache's TTL: its entries go at the next sweep; the tokens stay.
    server.clock.advance(Duration::from_secs(2));
    wait_for(|| authenticate.cache_sizes() == (0, 3)).await;

    // Past the tokens' expiry and the leeway: they go too.
    server.clock.advance(Duration::from_secs(15 * 60 + 31));
    wait_for(|| authenticate.cache_sizes() == (0, 0)).await;
}

async fn wait_for(done: impl Fn() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "no sweep within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
