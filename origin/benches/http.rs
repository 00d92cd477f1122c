//! HTTP benchmarks of the real `tessera` binary over loopback, each with a baseline measured in
//! the same run. Run: `cargo bench -p tessera-origin --bench http` (or `scripts/bench-origin`).
//! Prints a Markdown table for docs/BENCHMARKS.md. PostgreSQL figures need the server of the
//! tests (TESSERA_TEST_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/test).

#![allow(missing_docs, clippy::expect_used, clippy::unwrap_used, clippy::panic)]
#![allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss
)]

use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tessera_core::model::{Email, TenantSlug, UserId};
use tessera_origin::config::Argon2Params;
use tessera_origin::password::Hasher;
use tessera_origin::store::{DynStore, NewUser};

mod support;

use support::{client_ip, Server, EDGE_SECRET, PASSWORD};

const SECONDS: u64 = 10;

/// Runs `workers` loops of `request` for SECONDS; returns completed requests per second and
/// how many answers were not the expected status.
async fn load<F, Fut>(workers: usize, request: F) -> (f64, u64)
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let request = Arc::new(request);
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let stop = Instant::now() + Duration::from_secs(SECONDS);
    let started = Instant::now();
    let tasks: Vec<_> = (0..workers)
        .map(|w| {
            let (request, done, failed) = (request.clone(), done.clone(), failed.clone());
            tokio::spawn(async move {
                let mut i = 0u64;
                while Instant::now() < stop {
                    let ok = request(w, i).await;
                    i += 1;
                    done.fetch_add(1, Ordering::Relaxed);
                    if !ok {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    (
        done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64(),
        failed.load(Ordering::Relaxed),
    )
}

async fn seed_users(store: &DynStore, count: usize) {
    let tenant = TenantSlug::parse("default").unwrap();
    let hasher = Hasher::new(Argon2Params::OWASP, 2, 4096).unwrap();
    let hash = hasher.hash(PASSWORD.into()).await.unwrap();
    for i in 0..count {
        let user = NewUser {
            id: UserId::from_random_bytes(tessera_origin::clock::random()),
            email: Email::parse(&format!("user{i}@bench.test")).unwrap(),
            name: String::new(),
            role: "user".into(),
            password_hash: Some(hash.clone()),
            now: 0,
        };
        let mut tx = store.write(&tenant).await.unwrap();
        tx.users().create(&user).await.unwrap();
        tx.commit().await.unwrap();
    }
}

/// Runs wrk against `path` for SECONDS, each request from a new client IP (10.x.y.z, 16 million
/// of them, sent as the edge would): the origin sees traffic behind the edge so, and the per-IP
/// limit is paid but never reached; returns requests/s and non-2xx.
fn wrk(base: &str, path: &str, extra_lua: &str, connections: u32) -> (f64, u64) {
    let script = format!(
        "counter = 0\n\
         request = function()\n\
           counter = counter + 1\n\
           wrk.headers[\"x-tessera-edge-secret\"] = \"{EDGE_SECRET}\"\n\
           wrk.headers[\"x-tessera-client-ip\"] = \"10.\" .. (math.floor(counter / 65536) % 256) .. \".\" .. (math.floor(counter / 256) % 256) .. \".\" .. (counter % 256)\n\
           {extra_lua}\n\
           return wrk.format(nil, \"{path}\")\n\
         end\n"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("script.lua");
    std::fs::write(&file, script).unwrap();
    let output = Command::new("wrk")
        .args([
            "-t1",
            &format!("-c{connections}"),
            &format!("-d{SECONDS}s"),
            "-s",
        ])
        .arg(&file)
        .arg(base)
        .output()
        .expect("wrk (apt-get install wrk; scripts/bench-origin installs it)");
    let text = String::from_utf8_lossy(&output.stdout);
    let number = |prefix: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (
        number("Requests/sec:"),
        number("Non-2xx or 3xx responses:") as u64,
    )
}

/// One sign-in through the edge's client-IP header; panics unless it succeeds.
async fn sign_in(http: &reqwest::Client, base: &str, ip: &str, body: &Value) -> Value {
    let response = http
        .post(format!("{base}/api/auth/login"))
        .header("x-tessera-edge-secret", EDGE_SECRET)
        .header("x-tessera-client-ip", ip)
        .json(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "sign-in for the benchmark");
    response.json().await.unwrap()
}

fn login_body(i: u64, users: u64) -> Value {
    json!({"email": format!("user{}@bench.test", i % users), "password": PASSWORD, "tenant": "default"})
}

/// argon2id verifications per second on every core, outside any server: the ceiling for
/// sign-ins.
fn argon2_baseline() -> f64 {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let hasher = Hasher::new(Argon2Params::OWASP, cores, 4096).unwrap();
    let hash = runtime.block_on(hasher.hash(PASSWORD.into())).unwrap();
    let count = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let threads: Vec<_> = (0..cores)
        .map(|_| {
            let (count, hash) = (count.clone(), hash.clone());
            std::thread::spawn(move || {
                use argon2::password_hash::{PasswordHash, PasswordVerifier as _};
                let p = Argon2Params::OWASP;
                let argon2 = argon2::Argon2::new(
                    argon2::Algorithm::Argon2id,
                    argon2::Version::V0x13,
                    argon2::Params::new(p.m_kib, p.t, p.p, None).unwrap(),
                );
                let parsed = PasswordHash::new(&hash).unwrap();
                while started.elapsed() < Duration::from_secs(SECONDS) {
                    argon2
                        .verify_password(PASSWORD.as_bytes(), &parsed)
                        .unwrap();
                    count.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    count.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // cargo's bench discovery
    }
    let mut rows = Vec::new();
    let raw = argon2_baseline();

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let http = reqwest::Client::builder().pool_max_idle_per_host(1024).build().unwrap();

        // Embedded SQLite: idle memory, sign-ins, verification.
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().display().to_string();
        let server = Server::start(&[("TESSERA_DATA_DIR", data.clone())]);
        tokio::time::sleep(Duration::from_secs(2)).await;
        let (idle, _) = server.memory_mib();
        rows.push(format!("| resident memory, idle (SQLite) | {idle:.1} MiB | goal < 40 MB | |"));

        const USERS: u64 = 1_000;
        let store: DynStore = Arc::new(tessera_origin::store::Store::sqlite(dir.path()).await.unwrap());
        seed_users(&store, USERS as usize).await;

        let base = server.base.clone();
        let body = format!(
            "wrk.method = \"POST\"\n\
             wrk.headers[\"content-type\"] = \"application/json\"\n\
             wrk.body = '{{\"email\":\"user' .. (counter % {USERS}) .. '@bench.test\",\"password\":\"{PASSWORD}\",\"tenant\":\"default\"}}'"
        );
        let (signins, failed) = wrk(&base, "/api/auth/login", &body, 16);
        rows.push(format!(
            "| sign-ins/s (wrk, 16 connections, SQLite) | {signins:.1}/s ({failed} not 2xx) | raw argon2id verify loop on all cores: {raw:.1}/s | {:.0} % (goal ≥ 90 %) |",
            100.0 * signins / raw
        ));

        // 500 sign-ins at once: peak memory.
        let burst: Vec<_> = (0..500u64)
            .map(|n| {
                let (http, base) = (http.clone(), base.clone());
                tokio::spawn(async move {
                    http.post(format!("{base}/api/auth/login"))
                        .header("x-tessera-edge-secret", EDGE_SECRET)
                        .header("x-tessera-client-ip", client_ip(100_000 + n))
                        .json(&login_body(n + 500, USERS))
                        .send()
                        .await
                        .map(|r| r.status().as_u16())
                })
            })
            .collect();
        let mut ok = 0;
        for task in burst {
            if task.await.unwrap().is_ok_and(|s| s == 200) {
                ok += 1;
            }
        }
        let (_, peak) = server.memory_mib();
        rows.push(format!("| peak resident memory, 500 concurrent sign-ins ({ok} × 200) | {peak:.1} MiB | idle {idle:.1} MiB | goal < 200 MB |"));

        let tokens = sign_in(&http, &base, &client_ip(150_000), &login_body(999, USERS)).await;
        let access = tokens["access_token"].as_str().unwrap().to_owned();
        let (health, _) = wrk(&base, "/healthz", "", 64);
        let bearer = format!("wrk.headers[\"authorization\"] = \"Bearer {access}\"");
        let (verify, non_2xx) = wrk(&base, "/api/auth/verify", &bearer, 64);
        rows.push(format!(
            "| `GET /api/auth/verify` (wrk, 1 thread, 64 connections, SQLite) | {verify:.0}/s ({non_2xx} not 2xx) | `GET /healthz` on the same server: {health:.0}/s | {:.0} % (goal ≥ 20,000/s) |",
            100.0 * verify / health
        ));
        drop(server);

        // PostgreSQL: refresh rotations.
        let admin_url = std::env::var("TESSERA_TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        sqlx::any::install_default_drivers();
        let admin = sqlx::AnyPool::connect(&admin_url).await.expect("PostgreSQL for the refresh benchmark");
        let name = format!("tessera_bench_{}", std::process::id());
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name}")).execute(&admin).await.unwrap();
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&admin).await.unwrap();
        let url = format!("{}/{name}", admin_url.rsplit_once('/').unwrap().0);
        let master = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [7u8; 32]);
        let pg_dir = tempfile::tempdir().unwrap();
        let server = Server::start(&[
            ("TESSERA_DATABASE_URL", url.clone()),
            // Required with PostgreSQL; this benchmark sends no mail.
            ("TESSERA_SMTP_URL", "smtp://127.0.0.1:9".into()),
            ("TESSERA_MASTER_KEY", master),
            ("TESSERA_DATA_DIR", pg_dir.path().display().to_string()),
        ]);
        let store: DynStore = Arc::new(tessera_origin::store::Store::postgres(&url, 4).await.unwrap());
        const FAMILIES: u64 = 64;
        seed_users(&store, FAMILIES as usize).await;
        let base = server.base.clone();
        let mut chains = Vec::new();
        for n in 0..FAMILIES {
            let body = sign_in(&http, &base, &client_ip(200_000 + n), &login_body(n, FAMILIES)).await;
            chains.push(tokio::sync::Mutex::new(body["refresh_token"].as_str().unwrap().to_owned()));
        }
        let chains = Arc::new(chains);
        let (refreshes, failed) = load(FAMILIES as usize, {
            let (http, base) = (http.clone(), base.clone());
            move |w, i| {
                let (http, base, chains) = (http.clone(), base.clone(), chains.clone());
                async move {
                    let mut token = chains[w].lock().await;
                    let r = http
                        .post(format!("{base}/api/auth/refresh"))
                        .header("x-tessera-edge-secret", EDGE_SECRET)
                        .header("x-tessera-client-ip", client_ip(300_000 + i * 64 + w as u64))
                        .json(&json!({"refresh_token": *token}))
                        .send()
                        .await;
                    let Ok(r) = r else { return false };
                    let Ok(body) = r.json::<Value>().await else { return false };
                    match body["refresh_token"].as_str() {
                        Some(next) => {
                            *token = next.to_owned();
                            true
                        }
                        None => false,
                    }
                }
            }
        })
        .await;
        drop(server);
        // Baseline: the bare database work of one rotation (a transaction with one conditional
        // UPDATE and one INSERT), 64 clients, no HTTP, no crypto.
        let pool = sqlx::AnyPool::connect(&url).await.unwrap();
        sqlx::query("CREATE TABLE bench_rotation (digest TEXT PRIMARY KEY, rotated BIGINT)").execute(&pool).await.unwrap();
        let pool = Arc::new(pool);
        let (raw_tx, _) = load(FAMILIES as usize, move |w, i| {
            let pool = pool.clone();
            async move {
                let Ok(mut tx) = pool.begin().await else { return false };
                let key = format!("{w}-{i}");
                let a = sqlx::query("UPDATE bench_rotation SET rotated = 1 WHERE digest = $1 AND rotated IS NULL").bind(&key).execute(&mut *tx).await;
                let b = sqlx::query("INSERT INTO bench_rotation (digest) VALUES ($1)").bind(&key).execute(&mut *tx).await;
                a.is_ok() && b.is_ok() && tx.commit().await.is_ok()
            }
        })
        .await;
        let cores = std::thread::available_parallelism().map_or(1, usize::from) as f64;
        rows.push(format!(
            "| refreshes/s (64 families, PostgreSQL) | {refreshes:.0}/s = {:.0}/s per core ({failed} failed) | bare rotation transaction, 64 clients: {raw_tx:.0}/s | {:.0} % (goal ≥ 1,000/s per core) |",
            refreshes / cores,
            100.0 * refreshes / raw_tx
        ));
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&admin).await.unwrap();
    });

    println!("| measure | result | baseline (same run) | ratio / goal |");
    println!("|---|---|---|---|");
    for row in rows {
        println!("{row}");
    }
}
