//! Full authorization-code exchanges at the OpenID provider's token endpoint, on PostgreSQL,
//! against the bare database work of one (INSERT + UPDATE + COMMIT) in the same run. Run:
//! `cargo bench -p tessera-origin --bench oidc` (needs the tests' PostgreSQL and wrk). Prints a
//! Markdown table for docs/BENCHMARKS.md.
//!
//! Each measured request is a whole exchange as a confidential client makes it: a form with
//! the code, the redirect URI, the PKCE verifier and the client's secret (client_secret_post).
//! The server checks the secret, locks and redeems the code, checks PKCE, opens a session with
//! its refresh family, records the grant, commits, and signs an access token (EdDSA) and an ID
//! token (RS256, the default, or EdDSA for clients that ask). The codes are issued ahead, in the
//! tenant's database, as the authorization endpoint issues them; one per request.

#![allow(missing_docs, clippy::expect_used, clippy::unwrap_used, clippy::panic)]
#![allow(clippy::cast_precision_loss)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use tessera_core::model::{Email, SessionId, TenantSlug, UserId};
use tessera_core::oidc::Grant;
use tessera_core::token::{OpaqueToken, TokenKind};
use tessera_origin::store::oidc::{AuthorizationCode, OidcClient};
use tessera_origin::store::{DynStore, NewUser, Session};

mod support;

use support::{wrk_bodies_of_type, Server};

const SECONDS: u64 = 10;
const CONNECTIONS: u32 = 16;
/// Codes per algorithm: more than one run exchanges.
const CODES: usize = 40_000;
/// Clients per algorithm, so that no client's own quota (6,000 a minute) is what is measured.
const CLIENTS: usize = 100;
const CALLBACK: &str = "https://app.bench.test/callback";
/// RFC 7636's example verifier and challenge.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// Seeds a user, a browser session, `CLIENTS` clients signing with `alg`, and `CODES` codes;
/// answers the token requests' form bodies.
async fn seed(store: &DynStore, alg: &str) -> Vec<String> {
    let tenant = TenantSlug::parse("default").unwrap();
    let now = tessera_origin::clock::system_now_secs();
    let user = UserId::from_random_bytes(tessera_origin::clock::random());
    let browser = Session {
        id: SessionId::from_random_bytes(tessera_origin::clock::random()),
        user_id: user,
        created_at: now,
        last_used_at: now,
        expires_at: now + 86_400,
        revoked_at: None,
        ip: "127.0.0.1".into(),
        user_agent: "bench".into(),
        amr: vec!["pwd".into()],
        api: "oidc".into(),
    };
    let mut clients = Vec::new();
    let mut tx = store.write(&tenant).await.unwrap();
    tx.users()
        .create(&NewUser {
            id: user,
            email: Email::parse(&format!("{alg}@bench.test")).unwrap(),
            name: String::new(),
            role: "user".into(),
            password_hash: None,
            now,
        })
        .await
        .unwrap();
    let family =
        OpaqueToken::generate(TokenKind::Refresh, &tenant, tessera_origin::clock::random());
    tx.sessions()
        .create(&browser, &family.digest())
        .await
        .unwrap();
    for i in 0..CLIENTS {
        let secret = format!("tsr_cs_bench_{alg}_{i}");
        let client = OidcClient {
            id: format!("bench-{alg}-{i}"),
            name: "bench".into(),
            secret_digest: Some(tessera_core::secret::sha256(secret.as_bytes()).to_vec()),
            redirect_uris: vec![CALLBACK.into()],
            post_logout_redirect_uris: vec![],
            grants: vec![Grant::AuthorizationCode],
            id_token_alg: alg.into(),
            created_at: now,
            updated_at: now,
        };
        tx.oidc().add_client(&client).await.unwrap();
        clients.push((client.id, secret));
    }
    tx.commit().await.unwrap();
    let mut bodies = Vec::with_capacity(CODES);
    for batch in 0..CODES / 1000 {
        let mut tx = store.write(&tenant).await.unwrap();
        for i in batch * 1000..(batch + 1) * 1000 {
            let (client, secret) = &clients[i % CLIENTS];
            let code = OpaqueToken::generate(
                TokenKind::AuthorizationCode,
                &tenant,
                tessera_origin::clock::random(),
            );
            let stored = AuthorizationCode {
                client_id: client.clone(),
                user_id: user,
                browser_session: browser.id,
                redirect_uri: CALLBACK.into(),
                scope: "openid email".into(),
                nonce: Some("bench".into()),
                code_challenge: Some(CHALLENGE.into()),
                auth_time: now,
                // Issued for the run: a real code lasts a minute.
                expires_at: now + 3_600,
                session_id: None,
            };
            tx.oidc()
                .add_code(&code.digest(), &stored, now)
                .await
                .unwrap();
            bodies.push(
                url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("grant_type", "authorization_code")
                    .append_pair("code", code.expose())
                    .append_pair("redirect_uri", CALLBACK)
                    .append_pair("code_verifier", VERIFIER)
                    .append_pair("client_id", client)
                    .append_pair("client_secret", secret)
                    .finish(),
            );
        }
        tx.commit().await.unwrap();
    }
    bodies
}

/// The bare database work of an exchange, with nothing else: one INSERT and one UPDATE in a
/// transaction, from `CONNECTIONS` concurrent clients, for `SECONDS`.
async fn bare_transactions(url: &str) -> f64 {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(CONNECTIONS)
        .connect(url)
        .await
        .unwrap();
    sqlx::query("CREATE TABLE bench_exchange (id TEXT PRIMARY KEY, used BIGINT)")
        .execute(&pool)
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(SECONDS);
    let started = Instant::now();
    let mut workers = Vec::new();
    for w in 0..CONNECTIONS {
        let pool = pool.clone();
        workers.push(tokio::spawn(async move {
            let mut done = 0u64;
            while Instant::now() < deadline {
                let key = format!("{w}-{done}");
                let mut tx = pool.begin().await.unwrap();
                sqlx::query("INSERT INTO bench_exchange (id) VALUES ($1)")
                    .bind(&key)
                    .execute(&mut *tx)
                    .await
                    .unwrap();
                sqlx::query("UPDATE bench_exchange SET used = 1 WHERE id = $1")
                    .bind(&key)
                    .execute(&mut *tx)
                    .await
                    .unwrap();
                tx.commit().await.unwrap();
                done += 1;
            }
            done
        }));
    }
    let mut total = 0;
    for worker in workers {
        total += worker.await.unwrap();
    }
    total as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // cargo's bench discovery
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let admin_url = std::env::var("TESSERA_TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        sqlx::any::install_default_drivers();
        let admin = sqlx::AnyPool::connect(&admin_url)
            .await
            .expect("PostgreSQL for the code-exchange benchmark");
        let name = format!("tessera_bench_oidc_{}", std::process::id());
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&admin)
            .await
            .unwrap();
        let url = format!("{}/{name}", admin_url.rsplit_once('/').unwrap().0);
        let master = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [7u8; 32]);
        let dir = tempfile::tempdir().unwrap();
        let server = Server::start(&[
            ("TESSERA_DATABASE_URL", url.clone()),
            ("TESSERA_SMTP_URL", "smtp://127.0.0.1:9".into()),
            ("TESSERA_MASTER_KEY", master),
            ("TESSERA_DATA_DIR", dir.path().display().to_string()),
            ("TESSERA_PUBLIC_URL", "https://auth.bench.test".into()),
        ]);
        let store: DynStore =
            Arc::new(tessera_origin::store::Store::postgres(&url, 4).await.unwrap());
        let seeding = Instant::now();
        let rs256 = seed(&store, "RS256").await;
        let eddsa = seed(&store, "EdDSA").await;
        eprintln!("seeded {} codes in {:?}", 2 * CODES, seeding.elapsed());
        let form = "application/x-www-form-urlencoded";
        let path = "/oidc/default/token";
        let (rs, rs_failed) =
            wrk_bodies_of_type(&server.base, path, form, &rs256, CONNECTIONS, SECONDS);
        let (ed, ed_failed) =
            wrk_bodies_of_type(&server.base, path, form, &eddsa, CONNECTIONS, SECONDS);
        drop(server);
        let bare = bare_transactions(&url).await;
        let cores = std::thread::available_parallelism().map_or(1, usize::from) as f64;
        println!("| measure | result | baseline (same run) | ratio / goal |");
        println!("|---|---|---|---|");
        for (label, rate, failed) in [("RS256", rs, rs_failed), ("EdDSA", ed, ed_failed)] {
            println!(
                "| code exchanges/s, ID token {label} (wrk, {CONNECTIONS} connections, PostgreSQL, {cores:.0} cores) | {rate:.0}/s = {:.0}/s per core ({failed} not 2xx) | bare INSERT + UPDATE + COMMIT, {CONNECTIONS} clients: {bare:.0}/s | {:.0} % of bare (goal ≥ 1,000/s per core) |",
                rate / cores,
                100.0 * rate / bare
            );
        }
        admin.close().await;
        let admin = sqlx::AnyPool::connect(&admin_url).await.unwrap();
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&admin)
            .await
            .unwrap();
    });
}
