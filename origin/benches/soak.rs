//! Soak: a mixed workload (sign-ins, refreshes, verifications, sign-outs) for N minutes against
//! the release `tessera` binary on PostgreSQL; reports requests, errors (every answer but 2xx
//! and 429 is one) and resident memory at the start and the end. Run: `scripts/soak [minutes]`
//! (default 10). Needs the PostgreSQL of the tests.

#![allow(missing_docs, clippy::expect_used, clippy::unwrap_used, clippy::panic)]
#![allow(clippy::cast_precision_loss)]

mod support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{client_ip, Server, EDGE_SECRET, PASSWORD};
use tessera_core::model::{Email, TenantSlug, UserId};
use tessera_origin::config::Argon2Params;
use tessera_origin::password::Hasher;
use tessera_origin::store::{DynStore, NewUser, Store};

const USERS: usize = 64;
const WORKERS: usize = 16;

fn main() {
    let minutes: u64 = std::env::var("SOAK_MINUTES")
        .ok()
        .and_then(|m| m.parse().ok())
        .unwrap_or(10);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async move {
        sqlx::any::install_default_drivers();
        let admin_url = std::env::var("TESSERA_TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let admin = sqlx::AnyPool::connect(&admin_url).await.expect("PostgreSQL for the soak");
        let db = format!("tessera_soak_{}", std::process::id());
        sqlx::query(&format!("CREATE DATABASE {db}")).execute(&admin).await.unwrap();
        let url = format!("{}/{db}", admin_url.rsplit_once('/').unwrap().0);
        let dir = tempfile::tempdir().unwrap();
        let master = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [5u8; 32]);
        let server = Server::start(&[
            ("TESSERA_DATABASE_URL", url.clone()),
            // Required with PostgreSQL; this benchmark sends no mail.
            ("TESSERA_SMTP_URL", "smtp://127.0.0.1:9".into()),
            ("TESSERA_MASTER_KEY", master),
            ("TESSERA_DATA_DIR", dir.path().display().to_string()),
        ]);
        let store: DynStore = Arc::new(Store::postgres(&url, 2).await.unwrap());
        let tenant = TenantSlug::parse("default").unwrap();
        let hash = Hasher::new(Argon2Params::OWASP, 1, 4).unwrap().hash(PASSWORD.into()).await.unwrap();
        let mut tx = store.write(&tenant).await.unwrap();
        for u in 0..USERS {
            tx.users()
                .create(&NewUser {
                    id: UserId::from_random_bytes(rand::random()),
                    email: Email::parse(&format!("soak{u}@bench.test")).unwrap(),
                    name: String::new(),
                    role: "user".into(),
                    password_hash: Some(hash.clone()),
                    now: 0,
                })
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();

        let http = reqwest::Client::new();
        let statuses: Arc<Mutex<BTreeMap<u16, u64>>> = Arc::default();
        let ip = Arc::new(AtomicU64::new(1));
        let stop = Instant::now() + Duration::from_secs(minutes * 60);
        // "Start" is after a warm-up (a tenth of the run, at least 20 s): the hashing threads'
        // argon2 memory and the pools are allocated by the first requests, not leaked.
        let warm_up = Duration::from_secs((minutes * 6).max(20));
        let pid = server.child.id();
        let start_rss = tokio::spawn(async move {
            tokio::time::sleep(warm_up).await;
            support::memory_mib(pid).0
        });
        // Resident memory every minute, to tell a leak (a steady climb) from bounded caches and
        // maps filling up (a climb that flattens).
        let samples = tokio::spawn(async move {
            let mut samples = Vec::new();
            for _ in 0..minutes {
                tokio::time::sleep(Duration::from_secs(60)).await;
                samples.push(support::memory_mib(pid).0);
            }
            samples
        });
        let base = server.base.clone();
        // Each worker: sign in, then verify and refresh in turn for a while, then sign out.
        let workers: Vec<_> = (0..WORKERS)
            .map(|w| {
                let (http, base, statuses, ip) = (http.clone(), base.clone(), statuses.clone(), ip.clone());
                tokio::spawn(async move {
                    let mut round = 0usize;
                    while Instant::now() < stop {
                        let send = |request: reqwest::RequestBuilder| {
                            let (statuses, ip) = (statuses.clone(), ip.clone());
                            async move {
                                let n = ip.fetch_add(1, Ordering::Relaxed);
                                let response = request
                                    .header("x-tessera-edge-secret", EDGE_SECRET)
                                    .header("x-tessera-client-ip", client_ip(n))
                                    .send()
                                    .await;
                                let Ok(response) = response else {
                                    *statuses.lock().unwrap().entry(0).or_default() += 1;
                                    return None;
                                };
                                *statuses.lock().unwrap().entry(response.status().as_u16()).or_default() += 1;
                                response.json::<Value>().await.ok()
                            }
                        };
                        let user = (w + round * WORKERS) % USERS;
                        round += 1;
                        let Some(tokens) = send(http.post(format!("{base}/api/auth/login")).json(
                            &json!({"tenant": "default", "email": format!("soak{user}@bench.test"), "password": PASSWORD}),
                        ))
                        .await
                        .filter(|t| t["access_token"].is_string()) else {
                            tokio::time::sleep(Duration::from_millis(200)).await;
                            continue;
                        };
                        let mut access = tokens["access_token"].as_str().unwrap().to_owned();
                        let mut refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
                        for _ in 0..50 {
                            send(http.get(format!("{base}/api/auth/verify")).bearer_auth(&access)).await;
                            if let Some(next) = send(
                                http.post(format!("{base}/api/auth/refresh"))
                                    .json(&json!({"refresh_token": refresh})),
                            )
                            .await
                            .filter(|t| t["access_token"].is_string())
                            {
                                access = next["access_token"].as_str().unwrap().to_owned();
                                refresh = next["refresh_token"].as_str().unwrap().to_owned();
                            }
                        }
                        send(http.post(format!("{base}/api/auth/logout")).bearer_auth(&access)).await;
                    }
                })
            })
            .collect();
        for worker in workers {
            worker.await.unwrap();
        }
        let start_rss = start_rss.await.unwrap();
        let (end_rss, peak_rss) = server.memory_mib();
        let samples = samples.await.unwrap();
        drop(server);
        let statuses = statuses.lock().unwrap().clone();
        let total: u64 = statuses.values().sum();
        let errors: u64 = statuses
            .iter()
            .filter(|(s, _)| !(200..300).contains(*s) && **s != 429)
            .map(|(_, n)| n)
            .sum();
        println!("| measure | result |");
        println!("|---|---|");
        println!("| duration | {minutes} min, {WORKERS} clients, {USERS} accounts, PostgreSQL |");
        println!("| requests | {total} ({:.0}/s) |", total as f64 / (minutes * 60) as f64);
        println!("| answers by status | {statuses:?} |");
        println!("| errors (not 2xx or 429) | {errors} |");
        println!(
            "| resident memory | {start_rss:.1} MiB after the warm-up ({}s) → {end_rss:.1} MiB at the end ({:+.1} %), peak {peak_rss:.1} MiB |",
            warm_up.as_secs(),
            100.0 * (end_rss - start_rss) / start_rss
        );
        let curve: Vec<String> = samples.iter().map(|mib| format!("{mib:.1}")).collect();
        println!("| resident memory each minute (MiB) | {} |", curve.join(", "));
        sqlx::query(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)")).execute(&admin).await.unwrap();
    });
}
