//! Passkey sign-ins against password sign-ins, on the same release `tessera` binary (embedded
//! SQLite), in the same run. Run: `cargo bench -p tessera-origin --bench passkeys`. Prints a
//! Markdown table for docs/BENCHMARKS.md.
//!
//! The passkeys are registered ahead, in process, by a software authenticator
//! (webauthn-authenticator-rs's `SoftPasskey`) through webauthn-rs itself, and stored in the
//! tenant; every sign-in's ceremony is begun and its assertion signed ahead too, so that the
//! measured requests are only the finishes: a signature check and the sign-in's transaction.
//! One sign-in per account, so that neither the per-account limit nor the signature counter's
//! order (an older assertion after a newer one is a clone) is what is measured.

#![allow(missing_docs, clippy::expect_used, clippy::unwrap_used, clippy::panic)]
#![allow(clippy::cast_precision_loss)]

use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Value};
use tessera_core::model::{Email, TenantSlug, UserId};
use tessera_origin::config::Argon2Params;
use tessera_origin::password::Hasher;
use tessera_origin::relying_party::RelyingParty;
use tessera_origin::store::passkeys::StoredPasskey;
use tessera_origin::store::{DynStore, NewUser};
use webauthn_authenticator_rs::prelude::Url;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_rs_proto::RequestChallengeResponse;

mod support;

use support::{client_ip, wrk_bodies, Server, EDGE_SECRET, PASSWORD};

const SECONDS: u64 = 10;
const PUBLIC_URL: &str = "https://auth.bench.test";
/// Accounts, each with one passkey: more than the passkey sign-ins of one run.
const ACCOUNTS: usize = 40_000;
/// wrk's connections, as for the password sign-ins of the HTTP benchmark.
const CONNECTIONS: u32 = 16;

/// Seeds the accounts and their passkeys (registered through webauthn-rs with `key`).
async fn seed(store: &DynStore, key: &mut WebauthnAuthenticator<SoftPasskey>) {
    let tenant = TenantSlug::parse("default").unwrap();
    let hasher = Hasher::new(Argon2Params::OWASP, 2, 4096).unwrap();
    let hash = hasher.hash(PASSWORD.into()).await.unwrap();
    let webauthn = RelyingParty::of_public_url(PUBLIC_URL)
        .unwrap()
        .webauthn("bench")
        .unwrap();
    let origin = Url::parse(PUBLIC_URL).unwrap();
    for batch in 0..ACCOUNTS / 1000 {
        let mut tx = store.write(&tenant).await.unwrap();
        for i in batch * 1000..(batch + 1) * 1000 {
            let id = UserId::from_random_bytes(tessera_origin::clock::random());
            let email = format!("user{i}@bench.test");
            tx.users()
                .create(&NewUser {
                    id,
                    email: Email::parse(&email).unwrap(),
                    name: String::new(),
                    role: "user".into(),
                    password_hash: Some(hash.clone()),
                    now: 0,
                })
                .await
                .unwrap();
            let (options, state) = webauthn
                .start_passkey_registration(*id.as_uuid(), &email, &email, None)
                .unwrap();
            let credential = key.do_registration(origin.clone(), options).unwrap();
            let passkey = webauthn
                .finish_passkey_registration(&credential, &state)
                .unwrap();
            tx.passkeys()
                .add(&StoredPasskey {
                    id: UserId::from_random_bytes(tessera_origin::clock::random()).to_string(),
                    user_id: id,
                    credential_id: passkey.cred_id().as_ref().to_vec(),
                    name: "bench".into(),
                    passkey: serde_json::to_string(&passkey).unwrap(),
                    backup_eligible: false,
                    backed_up: false,
                    created_at: 0,
                    last_used_at: None,
                })
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
    }
}

/// POSTs `body` to `path` from client address `n`, as the edge would forward it.
async fn post(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    n: u64,
    body: &Value,
) -> Option<Value> {
    let response = http
        .post(format!("{base}{path}"))
        .header("x-tessera-edge-secret", EDGE_SECRET)
        .header("x-tessera-client-ip", client_ip(n))
        .json(body)
        .send()
        .await
        .ok()?;
    if !response.status().is_success() {
        return None;
    }
    response.json().await.ok()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // cargo's bench discovery
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let http = reqwest::Client::builder().pool_max_idle_per_host(1024).build().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().display().to_string();
        let server = Server::start(&[
            ("TESSERA_DATA_DIR", data),
            ("TESSERA_PUBLIC_URL", PUBLIC_URL.into()),
        ]);
        let store: DynStore = Arc::new(tessera_origin::store::Store::sqlite(dir.path()).await.unwrap());
        let mut key = WebauthnAuthenticator::new(SoftPasskey::new(true));
        let seeding = Instant::now();
        seed(&store, &mut key).await;
        eprintln!("seeded {ACCOUNTS} accounts with passkeys in {:?}", seeding.elapsed());
        let base = server.base.clone();

        // Every ceremony begun and its assertion signed before the clock starts.
        let preparing = Instant::now();
        let mut answers = Vec::with_capacity(ACCOUNTS);
        for i in 0..ACCOUNTS {
            let body = json!({"tenant": "default", "email": format!("user{i}@bench.test")});
            let options = post(&http, &base, "/api/auth/passkeys/login/options", i as u64, &body)
                .await
                .expect("options");
            let request: RequestChallengeResponse =
                serde_json::from_value(json!({ "publicKey": options["publicKey"] })).unwrap();
            let credential = key.do_authentication(Url::parse(PUBLIC_URL).unwrap(), request).unwrap();
            answers.push(json!({ "ceremony": options["ceremony"], "credential": credential }));
        }
        eprintln!("prepared {ACCOUNTS} assertions in {:?}", preparing.elapsed());

        let passwords: Vec<String> = (0..ACCOUNTS)
            .map(|i| json!({"tenant": "default", "email": format!("user{i}@bench.test"), "password": PASSWORD}).to_string())
            .collect();
        let answers: Vec<String> = answers.iter().map(Value::to_string).collect();
        let (password, password_failed) = wrk_bodies(&base, "/api/auth/login", &passwords, CONNECTIONS, SECONDS);
        let (passkey, passkey_failed) = wrk_bodies(&base, "/api/auth/passkeys/login", &answers, CONNECTIONS, SECONDS);
        println!("| measure | result | baseline (same run) | ratio / goal |");
        println!("|---|---|---|---|");
        println!(
            "| passkey sign-ins/s (wrk, {CONNECTIONS} connections, SQLite, both cores) | {passkey:.0}/s ({passkey_failed} not 2xx) | password sign-ins/s, same server and load: {password:.0}/s ({password_failed} not 2xx) | {:.1}× (goal ≥ 10×) |",
            passkey / password
        );
        drop(server);
    });
}
