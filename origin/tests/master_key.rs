//! Rotating the master key (issue 24, item 8): `tessera keys rotate-master` re-seals every
//! sealed secret under the new key while the servers accept both, after which the new key alone
//! serves everything sealed before, on SQLite and PostgreSQL.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;

use std::process::Command;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use common::{Backend, TestServer, TestStore, PASSWORD};
use serde_json::{json, Value};
use tessera_origin::clock::Clock as _;
use tessera_origin::keys::MasterKey;
use tessera_testing::pyotp;

const OLD: [u8; 32] = [1; 32];
const NEW: [u8; 32] = [2; 32];

fn now(server: &TestServer) -> u64 {
    u64::try_from(server.clock.now_secs()).unwrap()
}

/// `tessera keys rotate-master` against `storage`, with the two keys as the servers run
/// meanwhile; answers what it printed.
fn rotate_master(storage: &TestStore) -> String {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tessera"));
    command
        .args(["keys", "rotate-master"])
        .env("TESSERA_DATA_DIR", storage.dir.path())
        .env("TESSERA_MASTER_KEY", STANDARD.encode(NEW))
        .env("TESSERA_MASTER_KEY_ACCEPTED", STANDARD.encode(OLD))
        .env("TESSERA_LOG", "warn");
    if let Some(pg) = &storage.pg {
        command
            .env("TESSERA_DATABASE_URL", &pg.url)
            .env("TESSERA_SMTP_URL", "smtp://127.0.0.1:9");
    }
    let output = command.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{text}");
    text
}

/// Signs Ann in with the password and answers the challenge with `code`.
async fn sign_in_with(server: &TestServer, code: &str) -> reqwest::Response {
    server.clock.advance(Duration::from_secs(30));
    let login = json!({"tenant": "default", "email": "ann@example.com", "password": PASSWORD});
    let challenge: Value = server
        .post_from("/api/auth/login", &login, &common::unique_ip())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(challenge["mfa_required"], true, "{challenge}");
    server
        .post_from(
            "/api/auth/mfa/verify",
            &json!({"mfa_token": challenge["mfa_token"], "code": code}),
            &common::unique_ip(),
        )
        .await
}

async fn the_master_key_rotates_without_losing_a_secret(backend: Backend) {
    let storage = TestStore::new(backend).await;
    let mut old = TestServer::start_with_master(storage.clone(), &[], MasterKey::new(OLD)).await;
    old.create_user("default", "ann@example.com", PASSWORD)
        .await;
    let tokens = old.login("default", "ann@example.com", PASSWORD).await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let (secret, recovery) = old.enrol_totp(&access, PASSWORD).await;
    let recovery = recovery[0].clone();
    let slug = tessera_core::model::TenantSlug::parse("default").unwrap();
    let hook = old
        .state
        .services
        .webhooks
        .create(
            &slug,
            "https://hooks.example.com/",
            &["user.created".into()],
        )
        .await
        .unwrap();
    old.stop();

    // The new key alone opens nothing sealed so far: no server starts on it.
    let refused = TestServer::try_start_with_master(storage.clone(), MasterKey::new(NEW)).await;
    assert!(refused.is_err(), "a server started with the new key alone");

    // While the rotation runs, servers accept both keys and every secret works.
    let both = MasterKey::new(NEW).also_accepting(Some(OLD));
    let mut during = TestServer::start_with_master(storage.clone(), &[], both).await;
    let code = pyotp(&secret, now(&during) + 30);
    assert_eq!(sign_in_with(&during, &code).await.status(), 200);
    let first = rotate_master(&storage);
    // The two signing keys (EdDSA for access tokens, RS256 for ID tokens), the three derived
    // keys, Ann's TOTP secret and the webhook endpoint's secret.
    assert!(first.contains("re-sealed 7 secret(s)"), "{first}");
    let again = rotate_master(&storage);
    assert!(
        again.contains("re-sealed 0 secret(s) under the new master key (7 already were"),
        "{again}"
    );
    during.stop();

    // Then the new key alone serves everything sealed before it.
    let after = TestServer::start_with_master(storage, &[], MasterKey::new(NEW)).await;
    assert_eq!(after.get_auth("/api/auth/me", &access).await.status(), 200);
    // Past the time steps the servers before accepted (each clock started at the real time).
    after.clock.advance(Duration::from_secs(300));
    let code = pyotp(&secret, now(&after) + 30);
    assert_eq!(sign_in_with(&after, &code).await.status(), 200);
    assert_eq!(sign_in_with(&after, &recovery).await.status(), 200);
    // The webhook secret still signs: it opens under the new key alone.
    let mut tx = after.state.store.read(&slug).await.unwrap();
    let endpoints = tx.webhooks().endpoints().await.unwrap();
    drop(tx);
    let context = tessera_origin::services::webhooks::seal_context(&slug, &hook.endpoint.id);
    let key = MasterKey::new(NEW).open(&context, &endpoints[0].secret_sealed);
    assert_eq!(
        key.map(|k| format!("whsec_{}", STANDARD.encode(k))),
        Some(hook.secret)
    );
}
both!(the_master_key_rotates_without_losing_a_secret);
