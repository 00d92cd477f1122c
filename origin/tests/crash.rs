//! The origin process killed with SIGKILL in the middle of a refresh storm, then restarted on
//! the same PostgreSQL database: it starts, serves, and no refresh family has forked.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{PgDatabase, EDGE_SECRET, PASSWORD};
use serde_json::{json, Value};

const FAMILIES: usize = 8;

/// The `tessera` binary as a separate process, killed when dropped (pass, fail or panic).
struct Origin {
    child: Child,
    base: String,
}

impl Origin {
    fn start(db: &PgDatabase, port: u16) -> Self {
        let master = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [9u8; 32]);
        let child = Command::new(env!("CARGO_BIN_EXE_tessera"))
            .arg("serve")
            .env("TESSERA_DATABASE_URL", &db.url)
            // Required with PostgreSQL; this test sends no mail.
            .env("TESSERA_SMTP_URL", "smtp://127.0.0.1:9")
            .env("TESSERA_MASTER_KEY", master)
            .env("TESSERA_BIND", format!("127.0.0.1:{port}"))
            .env("TESSERA_OPS_BIND", "off")
            .env("TESSERA_EDGE_SECRET", EDGE_SECRET)
            .env("TESSERA_ARGON2_M_KIB", "1024")
            .env("TESSERA_ARGON2_T", "1")
            .env("TESSERA_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start tessera");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "tessera did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn post(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    body: &Value,
    n: u64,
) -> Option<Value> {
    let response = http
        .post(format!("{base}{path}"))
        .header("x-tessera-edge-secret", EDGE_SECRET)
        .header("x-tessera-client-ip", common::unique_ip())
        .header("x-request-n", n.to_string())
        .json(body)
        .send()
        .await
        .ok()?;
    if response.status() != 200 {
        return None;
    }
    response.json().await.ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_origin_restarts_and_no_refresh_family_forks() {
    let db = PgDatabase::create().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let http = reqwest::Client::new();
    let origin = Origin::start(&db, port);

    // Accounts through the CLI-free path: the store, then sign-ins over HTTP.
    let store: tessera_origin::store::DynStore = Arc::new(
        tessera_origin::store::Store::postgres(&db.url, 2)
            .await
            .unwrap(),
    );
    let tenant = tessera_core::model::TenantSlug::parse("default").unwrap();
    let hasher = tessera_origin::password::Hasher::new(common::WEAK_ARGON2, 1, 16).unwrap();
    let hash = hasher.hash(PASSWORD.into()).await.unwrap();
    let mut chains = Vec::new();
    for u in 0..FAMILIES {
        let email = format!("u{u}@example.com");
        let mut tx = store.write(&tenant).await.unwrap();
        tx.users()
            .create(&tessera_origin::store::NewUser {
                id: tessera_core::model::UserId::from_random_bytes(tessera_origin::clock::random()),
                email: tessera_core::model::Email::parse(&email).unwrap(),
                name: String::new(),
                role: "user".into(),
                password_hash: Some(hash.clone()),
                now: 0,
            })
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let body = post(
            &http,
            &origin.base,
            "/api/auth/login",
            &json!({"tenant": "default", "email": email, "password": PASSWORD}),
            0,
        )
        .await
        .expect("sign-in");
        chains.push(body["refresh_token"].as_str().unwrap().to_owned());
    }

    // The storm: every family refreshes as fast as it can; the process is killed in the middle.
    let chains = Arc::new(tokio::sync::Mutex::new(chains));
    let storm: Vec<_> = (0..FAMILIES)
        .map(|f| {
            let (http, base, chains) = (http.clone(), origin.base.clone(), chains.clone());
            tokio::spawn(async move {
                for n in 0u64.. {
                    let token = chains.lock().await[f].clone();
                    match post(
                        &http,
                        &base,
                        "/api/auth/refresh",
                        &json!({"refresh_token": token}),
                        n,
                    )
                    .await
                    {
                        Some(body) => {
                            chains.lock().await[f] =
                                body["refresh_token"].as_str().unwrap().to_owned()
                        }
                        None => return n,
                    }
                }
                0
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(700)).await;
    drop(origin); // SIGKILL
    let mut refreshed = 0;
    for task in storm {
        refreshed += task.await.unwrap();
    }
    assert!(
        refreshed > FAMILIES as u64,
        "the storm never got going ({refreshed} refreshes)"
    );

    // Restarted on the same database: it serves, and each family's newest token the clients
    // hold still refreshes (at worst a rotation whose answer the kill swallowed, which the
    // grace window hands out again).
    let origin = Origin::start(&db, port);
    for token in chains.lock().await.iter() {
        let next = post(
            &http,
            &origin.base,
            "/api/auth/refresh",
            &json!({"refresh_token": token}),
            0,
        )
        .await;
        assert!(
            next.is_some(),
            "a family's newest refresh token no longer works"
        );
    }
    let forked: Vec<(String, i64)> = sqlx::query_as(
        "SELECT session_id, COUNT(*) FROM tenant_default.refresh_tokens \
         WHERE rotated_at IS NULL GROUP BY session_id HAVING COUNT(*) > 1",
    )
    .fetch_all(&sqlx::AnyPool::connect(&db.url).await.unwrap())
    .await
    .unwrap();
    assert_eq!(forked, [], "families with more than one live refresh token");
    drop(origin);
    drop(store);
}
