//! The operator's account commands (`tessera user disable|enable|set-password|sign-out|reset-mfa`)
//! against a
//! running origin's data: they end the user's sessions, and tell the edge before exiting.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::routing::post;
use common::{unique_ip, Backend, TestServer, EDGE_SECRET, PASSWORD};
use serde_json::{json, Value};

/// Records the revocations pushed to it, as the edge's endpoint receives them.
async fn edge_recorder() -> (String, Arc<Mutex<Vec<Value>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let app = axum::Router::new().route(
        tessera_core::edge::REVOCATIONS_PATH,
        post(
            move |headers: axum::http::HeaderMap, body: axum::Json<Value>| {
                let record = record.clone();
                async move {
                    assert_eq!(headers[tessera_core::edge::EDGE_SECRET], EDGE_SECRET);
                    // A batch from the revocation log: its entries, in order.
                    let entries = body.0["revocations"].as_array().cloned().unwrap();
                    record.lock().unwrap().extend(entries);
                    axum::http::StatusCode::NO_CONTENT
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

/// The sessions (or `sk-` keys) the recorder received, in order.
fn delivered_sessions(pushed: &Mutex<Vec<Value>>) -> Vec<String> {
    pushed
        .lock()
        .unwrap()
        .iter()
        .map(|r| r["session"].as_str().unwrap().to_owned())
        .collect()
}

fn tessera(server: &TestServer, edge: &str, args: &[&str], stdin: &str) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(args)
        .env("TESSERA_DATA_DIR", server.storage.dir.path())
        .env("TESSERA_EDGE_URL", edge)
        .env("TESSERA_EDGE_SECRET", EDGE_SECRET)
        .env("TESSERA_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "tessera {args:?}: {text}");
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_commands_end_sessions_and_tell_the_edge() {
    let server = TestServer::start(Backend::Sqlite).await;
    server
        .create_user("default", "ann@example.com", PASSWORD)
        .await;
    let (edge, pushed) = edge_recorder().await;
    let sessions = [
        server.login("default", "ann@example.com", PASSWORD).await,
        server.login("default", "ann@example.com", PASSWORD).await,
    ];
    let who = ["--tenant", "default", "--email", "ann@example.com"];

    let out = tessera(
        &server,
        &edge,
        &[&["user", "disable"][..], &who].concat(),
        "",
    );
    assert!(out.contains("2 session(s) ended"), "{out}");
    // Told before the command exited: one revocation per session.
    let sids = delivered_sessions(&pushed);
    assert_eq!(sids.len(), 2, "{sids:?}");
    server.clock.advance(Duration::from_secs(2));
    for tokens in &sessions {
        let me = server
            .get_auth("/api/auth/me", tokens["access_token"].as_str().unwrap())
            .await;
        assert_eq!(me.status(), 401);
    }
    let login = json!({"tenant": "default", "email": "ann@example.com", "password": PASSWORD});
    assert_eq!(
        server
            .post_from("/api/auth/login", &login, &unique_ip())
            .await
            .status(),
        401
    );

    tessera(
        &server,
        &edge,
        &[&["user", "enable"][..], &who].concat(),
        "",
    );
    let again = server.login("default", "ann@example.com", PASSWORD).await;

    let new_password = "an operator's long new passphrase";
    let out = tessera(
        &server,
        &edge,
        &[&["user", "set-password"][..], &who].concat(),
        &format!("{new_password}\n"),
    );
    assert!(out.contains("1 session(s) ended"), "{out}");
    assert_eq!(pushed.lock().unwrap().len(), 3);
    server.clock.advance(Duration::from_secs(2));
    let me = server
        .get_auth("/api/auth/me", again["access_token"].as_str().unwrap())
        .await;
    assert_eq!(me.status(), 401);
    let last = server
        .login("default", "ann@example.com", new_password)
        .await;

    // Signed out everywhere, and still free to sign in.
    let out = tessera(
        &server,
        &edge,
        &[&["user", "sign-out"][..], &who].concat(),
        "",
    );
    assert!(out.contains("1 session(s) of ann@example.com"), "{out}");
    let events = server.audit_events("default").await;
    assert_eq!(
        events[0], "sessions_ended_by_operator by=operator sessions_ended=1",
        "{events:?}"
    );
    assert_eq!(pushed.lock().unwrap().len(), 4);
    server.clock.advance(Duration::from_secs(2));
    let me = server
        .get_auth("/api/auth/me", last["access_token"].as_str().unwrap())
        .await;
    assert_eq!(me.status(), 401);
    // Past the minute's five sign-ins of the account.
    server.clock.advance(Duration::from_secs(60));
    server
        .login("default", "ann@example.com", new_password)
        .await;
}

/// The way back from a takeover of the second factors (issue 24, item 1): the operator removes
/// every factor of the account, all its sessions end (the edge is told), the owner is told by
/// email, and the password alone signs in again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_mfa_removes_every_factor_ends_the_sessions_and_tells_the_owner() {
    let (server, sink) = TestServer::with_sink(Backend::Sqlite, &[]).await;
    let ann = server
        .create_user("default", "ann@example.com", PASSWORD)
        .await;
    let slug = tessera_core::model::TenantSlug::parse("default").unwrap();
    let mut tx = server.state.store.write(&slug).await.unwrap();
    tx.users().mark_email_verified(&ann, 1).await.unwrap();
    tx.commit().await.unwrap();
    let tokens = server.login("default", "ann@example.com", PASSWORD).await;
    let access = tokens["access_token"].as_str().unwrap();
    // Someone with the password and a session enrols their app and turns the emailed code on.
    server.enrol_totp(access, PASSWORD).await;
    let on = json!({"enabled": true, "password": PASSWORD});
    assert_eq!(
        server
            .put_auth("/api/auth/mfa/email", access, &on)
            .await
            .status(),
        200
    );
    let login = json!({"tenant": "default", "email": "ann@example.com", "password": PASSWORD});
    let challenged: Value = server
        .post_from("/api/auth/login", &login, &unique_ip())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(challenged["mfa_required"], true, "{challenged}");
    // Told of the app and of the emailed code, and sent the challenge's code.
    let seen = sink.wait_for("ann@example.com", 3).await.len();

    let (edge, pushed) = edge_recorder().await;
    let out = tessera(
        &server,
        &edge,
        &[
            "user",
            "reset-mfa",
            "--tenant",
            "default",
            "--email",
            "ann@example.com",
        ],
        "",
    );
    assert!(out.contains("1 session(s) ended"), "{out}");
    assert_eq!(delivered_sessions(&pushed).len(), 1);
    server.clock.advance(Duration::from_secs(2));
    assert_eq!(server.get_auth("/api/auth/me", access).await.status(), 401);
    let told = sink.next_to("ann@example.com", seen).await;
    assert_eq!(
        told.subject,
        "A second factor was removed from your account"
    );
    assert!(
        told.text
            .contains("An administrator removed every second factor"),
        "{}",
        told.text
    );
    let events = server.audit_events("default").await;
    assert!(
        events[0].starts_with("mfa_reset_by_operator by=operator sessions_ended="),
        "{events:?}"
    );
    // The password alone signs in again.
    server.clock.advance(Duration::from_secs(60));
    let tokens = server.login("default", "ann@example.com", PASSWORD).await;
    assert!(tokens["access_token"].is_string(), "{tokens}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_tokens_are_created_listed_and_revoked_by_the_operator() {
    let server = TestServer::start(Backend::Sqlite).await;
    let (edge, pushed) = edge_recorder().await;
    let created = tessera(
        &server,
        &edge,
        &[
            "token",
            "create",
            "--tenant",
            "default",
            "--name",
            "website",
            "--scope",
            "voice:read",
            "--scope",
            "voice:write",
        ],
        "",
    );
    let token = created.lines().last().unwrap().trim().to_owned();
    assert!(token.starts_with("tsr_sk_default_"), "{created}");
    let verified = server.get_fresh("/api/v1/auth/verify", Some(&token)).await;
    assert_eq!(verified.status(), 200);
    let answer: Value = verified.json().await.unwrap();
    assert_eq!(
        answer["service"]["scopes"],
        json!(["voice:read", "voice:write"])
    );
    let id = answer["user"]["id"].as_str().unwrap().to_owned();

    let listed = tessera(
        &server,
        &edge,
        &["token", "list", "--tenant", "default"],
        "",
    );
    let secret = token.rsplit('_').next().unwrap();
    assert!(!listed.contains(secret), "{listed}");
    let row = listed.lines().find(|l| l.starts_with(&id)).expect(&listed);
    assert!(
        row.contains("website") && row.contains("voice:read voice:write"),
        "{row}"
    );
    assert!(row.ends_with("active"), "{row}");
    // The use above was recorded.
    assert!(!row.contains("never"), "{row}");

    let revoked = tessera(
        &server,
        &edge,
        &["token", "revoke", "--tenant", "default", "website"],
        "",
    );
    assert!(revoked.contains(&id), "{revoked}");
    // The edge was told before the command exited.
    let pushes = pushed.lock().unwrap().clone();
    assert_eq!(pushes.len(), 1, "{pushes:?}");
    assert_eq!(pushes[0]["tenant"], "default");
    assert_eq!(pushes[0]["session"], format!("sk-{id}"));
    let refused = server.get_fresh("/api/v1/auth/verify", Some(&token)).await;
    assert_eq!(refused.status(), 401);
    let listed = tessera(
        &server,
        &edge,
        &["token", "list", "--tenant", "default"],
        "",
    );
    assert!(listed.contains("revoked"), "{listed}");

    // Names are unique; revoking twice is an error.
    let dup = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["token", "create", "--name", "website"])
        .env("TESSERA_DATA_DIR", server.storage.dir.path())
        .env("TESSERA_LOG", "warn")
        .output()
        .unwrap();
    assert!(!dup.status.success());
    let again = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["token", "revoke", "website"])
        .env("TESSERA_DATA_DIR", server.storage.dir.path())
        .env("TESSERA_LOG", "warn")
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("no active token"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_edge_down_a_sign_out_says_delivery_is_pending_and_is_delivered_later() {
    let server = TestServer::start(Backend::Sqlite).await;
    server
        .create_user("default", "ann@example.com", PASSWORD)
        .await;
    let tokens = server.login("default", "ann@example.com", PASSWORD).await;
    let sid = common::claims(tokens["access_token"].as_str().unwrap())["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let who = ["--tenant", "default", "--email", "ann@example.com"];
    let down = format!("http://127.0.0.1:{}", common::free_port());
    let out = tessera(
        &server,
        &down,
        &[&["user", "sign-out"][..], &who].concat(),
        "",
    );
    assert!(out.contains("delivery to the edge is pending"), "{out}");
    // The next command that reaches the edge delivers what the log still holds for it.
    let (edge, pushed) = edge_recorder().await;
    let out = tessera(
        &server,
        &edge,
        &[&["user", "sign-out"][..], &who].concat(),
        "",
    );
    assert!(out.contains("the edge has been told"), "{out}");
    let sids = delivered_sessions(&pushed);
    assert_eq!(sids, [sid]);
}

/// `tessera user delete`: the account goes, its sessions end and the edge hears before the
/// command exits; the address is free again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_deletes_a_user_and_the_edge_hears() {
    let server = TestServer::start(Backend::Sqlite).await;
    server
        .create_user("default", "ann@example.com", PASSWORD)
        .await;
    let tokens = server.login("default", "ann@example.com", PASSWORD).await;
    let (edge, pushed) = edge_recorder().await;
    let who = ["--tenant", "default", "--email", "ann@example.com"];
    let out = tessera(
        &server,
        &edge,
        &[&["user", "delete"][..], &who].concat(),
        "",
    );
    assert!(
        out.contains("deleted ann@example.com from tenant default"),
        "{out}"
    );
    assert!(out.contains("the edge has been told"), "{out}");
    assert_eq!(delivered_sessions(&pushed).len(), 1);
    server.clock.advance(Duration::from_secs(2));
    let me = server
        .get_auth("/api/auth/me", tokens["access_token"].as_str().unwrap())
        .await;
    assert_eq!(me.status(), 401);
    let events = server.audit_events("default").await;
    assert!(
        events[0].starts_with("user_deleted by=operator sessions_ended=1"),
        "{events:?}"
    );
    server
        .create_user("default", "ann@example.com", PASSWORD)
        .await;
}
