//! Faults: PostgreSQL's connections killed (`pg_terminate_backend`) again and again during a
//! mixed load of sign-ins, refreshes and verifications.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{unique_ip, Backend, TestServer, PASSWORD};
use serde_json::{json, Value};

const USERS: usize = 8;
const LOAD: Duration = Duration::from_secs(3);

/// Status → count, and the bodies of any 5xx.
type Seen = Arc<Mutex<(BTreeMap<u16, u32>, Vec<String>)>>;

async fn record(seen: &Seen, response: reqwest::Response) -> Option<Value> {
    let status = response.status().as_u16();
    if status == 503 {
        assert!(
            response.headers().contains_key("retry-after"),
            "503 without Retry-After"
        );
    }
    let text = response.text().await.unwrap_or_default();
    let mut seen = seen.lock().unwrap();
    *seen.0.entry(status).or_default() += 1;
    if status >= 500 {
        seen.1.push(text.clone());
    }
    serde_json::from_str(&text).ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_database_connections_give_503_never_500_and_no_family_forks() {
    let server = Arc::new(TestServer::start(Backend::Postgres).await);
    let pg_url = server.storage.pg.as_ref().unwrap().url.clone();
    let mut chains = Vec::new();
    for u in 0..USERS {
        let email = format!("u{u}@example.com");
        server.create_user("default", &email, PASSWORD).await;
        let tokens = server.login("default", &email, PASSWORD).await;
        chains.push((
            tokens["refresh_token"].as_str().unwrap().to_owned(),
            tokens["access_token"].as_str().unwrap().to_owned(),
        ));
    }
    let seen: Seen = Arc::default();
    let stop = Instant::now() + LOAD;

    // Each family refreshes in a loop, keeping the newest pair; verifications ride along.
    let workers = chains.into_iter().enumerate().map(|(u, (mut refresh, mut access))| {
        let (server, seen) = (server.clone(), seen.clone());
        tokio::spawn(async move {
            while Instant::now() < stop {
                let answer = server
                    .post_from("/api/auth/refresh", &json!({"refresh_token": refresh}), &unique_ip())
                    .await;
                if let Some(body) = record(&seen, answer).await {
                    if let (Some(r), Some(a)) =
                        (body["refresh_token"].as_str(), body["access_token"].as_str())
                    {
                        (refresh, access) = (r.to_owned(), a.to_owned());
                    }
                }
                let verify = server
                    .http
                    .get(server.url("/api/auth/verify"))
                    .bearer_auth(&access)
                    .header("x-tessera-edge-secret", common::EDGE_SECRET)
                    .header("x-tessera-client-ip", unique_ip())
                    .send()
                    .await
                    .unwrap();
                record(&seen, verify).await;
                if u == 0 {
                    let sign_in = server
                        .post_from(
                            "/api/auth/login",
                            &json!({"tenant": "default", "email": "u0@example.com", "password": PASSWORD}),
                            &unique_ip(),
                        )
                        .await;
                    record(&seen, sign_in).await;
                }
            }
            (refresh, access)
        })
    });
    let workers: Vec<_> = workers.collect();

    // Meanwhile, every backend of the test database is killed, several times.
    sqlx::any::install_default_drivers();
    let admin = sqlx::AnyPool::connect(&pg_url).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut killed = 0i64;
    while Instant::now() + Duration::from_millis(500) < stop {
        let row: (i64,) = sqlx::query_as(
            "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        .fetch_one(&admin)
        .await
        .unwrap();
        killed += row.0;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let mut last = Vec::new();
    for worker in workers {
        last.push(worker.await.unwrap());
    }

    let (statuses, server_errors) = seen.lock().unwrap().clone();
    assert!(
        killed > 0,
        "no connection was killed: the test proved nothing"
    );
    assert!(
        statuses
            .keys()
            .all(|s| matches!(s, 200 | 204 | 401 | 429 | 503)),
        "unexpected statuses: {statuses:?}"
    );
    for body in &server_errors {
        assert!(body.contains("\"code\":\"unavailable\""), "{body}");
        assert!(
            !body.to_lowercase().contains("terminat"),
            "a database detail leaked: {body}"
        );
    }

    // Recovery without a restart: every family's newest pair works again.
    for (refresh, access) in &last {
        let started = Instant::now();
        loop {
            let verify = server.get_auth("/api/auth/verify", access).await.status();
            if verify == 200 {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "no recovery: {verify}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let next = server
            .post_from(
                "/api/auth/refresh",
                &json!({"refresh_token": refresh}),
                &unique_ip(),
            )
            .await;
        assert_eq!(
            next.status(),
            200,
            "a family's newest refresh token was lost"
        );
    }

    // No family forked: at most one unused refresh token per session.
    let forked: Vec<(String, i64)> = sqlx::query_as(
        "SELECT session_id, COUNT(*) FROM tenant_default.refresh_tokens \
         WHERE rotated_at IS NULL GROUP BY session_id HAVING COUNT(*) > 1",
    )
    .fetch_all(&admin)
    .await
    .unwrap();
    assert_eq!(forked, [], "families with more than one live refresh token");
    admin.close().await;
    eprintln!("statuses under faults: {statuses:?}, connections killed: {killed}");
}
