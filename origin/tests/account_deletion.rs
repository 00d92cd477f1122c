//! Leaving, on SQLite and PostgreSQL: a user erases their own account behind their password, an
//! admin erases one by id. Every session ends, the factors and pending email go, the audit log
//! keeps the events under a pseudonymous id, and the address can register again.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{assert_problem, unique_ip, Backend, TestServer, PASSWORD};
use serde_json::json;
use tessera_core::model::TenantSlug;
use tessera_origin::services::account_deletion::pseudonym;

/// No relay answers: the mail an account caused stays queued, where erasure must find it.
async fn server(backend: Backend) -> TestServer {
    TestServer::start_with(backend, &[("TESSERA_SMTP_URL", "smtp://127.0.0.1:9")]).await
}

async fn queued_mail(server: &TestServer, tenant: &str) -> i64 {
    let tenant = TenantSlug::parse(tenant).unwrap();
    let mut tx = server.state.store.read(&tenant).await.unwrap();
    let (pending, _, sent, failed) = tx.outbox().counts().await.unwrap();
    pending + sent + failed
}

async fn a_user_erases_their_own_account(backend: Backend) {
    let server = server(backend).await;
    server.create_tenant("acme").await;
    let ann = server
        .create_user("acme", "ann@example.com", PASSWORD)
        .await;
    let tokens = server.login("acme", "ann@example.com", PASSWORD).await;
    let other = server.login("acme", "ann@example.com", PASSWORD).await;
    let access = tokens["access_token"].as_str().unwrap();
    server.enrol_totp(access, PASSWORD).await;
    let forgot = json!({"tenant": "acme", "email": "ann@example.com"});
    server
        .post_from("/api/auth/forgot-password", &forgot, &unique_ip())
        .await;
    assert!(queued_mail(&server, "acme").await > 0);

    let response = server.delete_auth("/api/auth/me", access, &json!({})).await;
    assert_problem(response, 403, "password_required").await;
    let wrong = json!({"password": "not the password at all"});
    let response = server.delete_auth("/api/auth/me", access, &wrong).await;
    assert_problem(response, 403, "wrong_password").await;
    let right = json!({"password": PASSWORD});
    let response = server.delete_auth("/api/auth/me", access, &right).await;
    assert_eq!(response.status(), 204);

    // Every session ended: the caller's and the other one, access and refresh tokens alike.
    server.clock.advance(Duration::from_secs(2));
    for tokens in [&tokens, &other] {
        let me = server
            .get_auth("/api/auth/me", tokens["access_token"].as_str().unwrap())
            .await;
        assert_eq!(me.status(), 401);
        assert_eq!(server.refresh(tokens).await.status(), 401);
    }
    let login = json!({"tenant": "acme", "email": "ann@example.com", "password": PASSWORD});
    assert_eq!(
        server
            .post_from("/api/auth/login", &login, &unique_ip())
            .await
            .status(),
        401
    );
    assert_eq!(queued_mail(&server, "acme").await, 0);

    // The audit log keeps the events, under the pseudonym only.
    let slug = TenantSlug::parse("acme").unwrap();
    let mut tx = server.state.store.read(&slug).await.unwrap();
    let events = tx.audit().latest(100).await.unwrap();
    drop(tx);
    assert!(events.len() > 3);
    assert!(events
        .iter()
        .all(|e| e.user_id.as_deref() != Some(ann.to_string().as_str())));
    let deleted = events.iter().find(|e| e.event == "user_deleted").unwrap();
    assert_eq!(deleted.user_id.as_deref(), Some(pseudonym(&ann).as_str()));
    assert!(events
        .iter()
        .any(|e| e.event == "login_succeeded" && e.user_id == deleted.user_id));

    // The address is free: a new account, a new id, no old factor.
    let again = server
        .create_user("acme", "ann@example.com", PASSWORD)
        .await;
    assert_ne!(again, ann);
    let fresh = server.login("acme", "ann@example.com", PASSWORD).await;
    assert!(fresh.get("access_token").is_some(), "{fresh}");
}
both!(a_user_erases_their_own_account);

async fn admins_erase_a_user_by_id(backend: Backend) {
    let server = server(backend).await;
    server.create_tenant("acme").await;
    server
        .create_user_as("acme", "root@example.com", PASSWORD, "admin")
        .await;
    let ann = server
        .create_user("acme", "ann@example.com", PASSWORD)
        .await;
    let bob = server
        .create_user("acme", "bob@example.com", PASSWORD)
        .await;
    let admin = server.login("acme", "root@example.com", PASSWORD).await;
    let admin = admin["access_token"].as_str().unwrap();
    let anns = server.login("acme", "ann@example.com", PASSWORD).await;
    let bobs = server.login("acme", "bob@example.com", PASSWORD).await;
    let bobs = bobs["access_token"].as_str().unwrap();

    let path = format!("/api/auth/admin/users/{ann}");
    let response = server.delete_auth(&path, bobs, &json!({})).await;
    assert_problem(response, 403, "forbidden").await;
    let response = server
        .delete_auth(&format!("/api/auth/admin/users/{bob}x"), admin, &json!({}))
        .await;
    assert_problem(response, 404, "not_found").await;
    let response = server.delete_auth(&path, admin, &json!({})).await;
    assert_eq!(response.status(), 204);
    let response = server.delete_auth(&path, admin, &json!({})).await;
    assert_problem(response, 404, "not_found").await;

    server.clock.advance(Duration::from_secs(2));
    let me = server
        .get_auth("/api/auth/me", anns["access_token"].as_str().unwrap())
        .await;
    assert_eq!(me.status(), 401);
    assert_eq!(server.refresh(&anns).await.status(), 401);
    // Bob is untouched.
    assert_eq!(server.get_auth("/api/auth/me", bobs).await.status(), 200);
    assert!(server
        .audit_events("acme")
        .await
        .iter()
        .any(|e| e.starts_with("user_deleted by=admin:")));
}
both!(admins_erase_a_user_by_id);
