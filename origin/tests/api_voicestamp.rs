//! VoiceStamp v1 (`/api/v1/auth/*`) as its document shows it, on SQLite and PostgreSQL:
//! passwordless sign-in by emailed code, the 30-day session token, token verification (session
//! tokens and the tenant's service tokens), logout, and this API's error shape.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{unique_ip, Backend, TestServer, PASSWORD};
use serde_json::{json, Value};
use tessera_core::model::{Email, TenantSlug};
use tessera_origin::clock::Clock as _;
use tessera_origin::services::api_tokens::NewApiToken;

async fn login(server: &TestServer, email: &str) -> (u16, String) {
    let response = server
        .post_from("/api/v1/auth/login", &json!({"email": email}), &unique_ip())
        .await;
    (response.status().as_u16(), response.text().await.unwrap())
}

async fn verify(server: &TestServer, token: &str) -> (u16, Value) {
    let response = server.get_fresh("/api/v1/auth/verify", Some(token)).await;
    (response.status().as_u16(), response.json().await.unwrap())
}

/// An error of this API: problem+json that also says `success: false` and a `message`.
fn assert_error(body: &Value, code: &str) {
    assert_eq!(body["success"], false, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert_eq!(body["code"], code, "{body}");
}

async fn code_sign_in_session_token_and_logout(backend: Backend) {
    let (server, sink) = TestServer::with_sink(backend, &[]).await;
    let id = server
        .create_user("default", "user@example.com", PASSWORD)
        .await;

    // The same answer for a known and an unknown address; no account is created.
    let known = login(&server, "user@example.com").await;
    let unknown = login(&server, "nobody@example.com").await;
    assert_eq!(known, unknown);
    assert_eq!(known.0, 200);
    let body: Value = serde_json::from_str(&known.1).unwrap();
    assert_eq!(
        body,
        json!({"success": true, "message": "Verification code sent to email"})
    );
    let code = sink.wait_for("user@example.com", 1).await.remove(0).code();
    let tenant = TenantSlug::parse("default").unwrap();
    let nobody = Email::parse("nobody@example.com").unwrap();
    let mut read = server.state.store.read(&tenant).await.unwrap();
    assert!(read.users().by_email(&nobody).await.unwrap().is_none());
    drop(read);

    // A wrong code: this API's error shape.
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let response = server
        .post_from(
            "/api/v1/auth/verify-code",
            &json!({"email": "user@example.com", "code": wrong}),
            &unique_ip(),
        )
        .await;
    assert_eq!(response.status(), 400);
    assert_error(&response.json().await.unwrap(), "invalid_code");

    let now = server.clock.now_secs();
    let response = server
        .post_from(
            "/api/v1/auth/verify-code",
            &json!({"email": "user@example.com", "code": code}),
            &unique_ip(),
        )
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["success"], true, "{body}");
    let data = &body["data"];
    assert_eq!(
        data["user"],
        json!({"id": id.to_string(), "email": "user@example.com", "name": "Test User"})
    );
    let expires_at = tessera_core::api::rfc3339(now + 30 * 86_400);
    assert_eq!(data["expires_at"], expires_at.as_str());
    let token = data["token"].as_str().unwrap();

    let (status, answer) = verify(&server, token).await;
    assert_eq!(status, 200);
    assert_eq!(answer["valid"], true);
    assert_eq!(
        answer["user"],
        json!({"id": id.to_string(), "email": "user@example.com", "role": "user"})
    );
    assert_eq!(answer["expires_at"], expires_at.as_str());

    // Still good on day 29, long after an access token's 15 minutes.
    server.clock.advance(Duration::from_secs(29 * 86_400));
    assert_eq!(verify(&server, token).await.0, 200);

    // Logout ends the session: the token is refused from then on.
    let response = server
        .post_auth("/api/v1/auth/logout", token, &json!({}))
        .await;
    assert_eq!(response.status(), 200);
    let (status, body) = verify(&server, token).await;
    assert_eq!(status, 401);
    assert_eq!(body["valid"], false, "{body}");
    assert_error(&body, "invalid_token");

    // The code was single use.
    let response = server
        .post_from(
            "/api/v1/auth/verify-code",
            &json!({"email": "user@example.com", "code": code}),
            &unique_ip(),
        )
        .await;
    assert_eq!(response.status(), 400);
}
both!(code_sign_in_session_token_and_logout);

/// A server whose user@example.com has signed in by emailed code: its 30-day session token.
async fn server_with_a_session_token(backend: Backend) -> (TestServer, String) {
    let (server, sink) = TestServer::with_sink(backend, &[]).await;
    server
        .create_user("default", "user@example.com", PASSWORD)
        .await;
    login(&server, "user@example.com").await;
    let code = sink.wait_for("user@example.com", 1).await.remove(0).code();
    let body: Value = server
        .post_from(
            "/api/v1/auth/verify-code",
            &json!({"email": "user@example.com", "code": code}),
            &unique_ip(),
        )
        .await
        .json()
        .await
        .unwrap();
    let token = body["data"]["token"].as_str().unwrap();
    let token = token.to_owned();
    (server, token)
}

async fn the_session_token_ends_after_thirty_days(backend: Backend) {
    let (server, token) = server_with_a_session_token(backend).await;
    let token = token.as_str();
    server.clock.advance(Duration::from_secs(30 * 86_400 + 31));
    let (status, body) = verify(&server, token).await;
    assert_eq!(status, 401);
    assert_eq!(body["valid"], false);
}
both!(the_session_token_ends_after_thirty_days);

/// A key rotated away keeps verifying the 30-day tokens it signed (20 days on, on the manual
/// clock), and `keys remove` ends that at once.
async fn a_rotated_keys_session_token_verifies_for_its_thirty_days_until_the_key_is_removed(
    backend: Backend,
) {
    let (server, token) = server_with_a_session_token(backend).await;
    let token = token.as_str();
    let old = server.state.keys.signer().await.kid().to_owned();
    server.state.keys.rotate().await.unwrap();
    server.clock.advance(Duration::from_secs(20 * 86_400));
    server.state.keys.reload().await.unwrap();
    assert_ne!(server.state.keys.signer().await.kid(), old);
    let (status, body) = verify(&server, token).await;
    assert_eq!(status, 200, "{body}");
    assert!(server
        .state
        .store
        .remove_retired_key(&old, server.clock.now_secs())
        .await
        .unwrap());
    server.state.keys.reload().await.unwrap();
    let (status, body) = verify(&server, token).await;
    assert_eq!(status, 401);
    assert_eq!(body["valid"], false);
}
both!(a_rotated_keys_session_token_verifies_for_its_thirty_days_until_the_key_is_removed);

async fn service_tokens_verify_without_expiry_until_revoked(backend: Backend) {
    let server = TestServer::start(backend).await;
    let tenant = TenantSlug::parse("default").unwrap();
    let created = server
        .state
        .services
        .api_tokens
        .create(
            &tenant,
            NewApiToken {
                name: "website".into(),
                scopes: vec!["voice:read".into()],
                expires_in_days: None,
            },
        )
        .await
        .unwrap();
    let (status, answer) = verify(&server, &created.token).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["valid"], true);
    assert_eq!(answer["user"]["id"], created.record.id.as_str());
    assert_eq!(answer["user"]["role"], "service");
    assert_eq!(answer["expires_at"], Value::Null);
    assert_eq!(answer["service"]["name"], "website");

    // Always valid, as the document says of its static token...
    server.clock.advance(Duration::from_secs(400 * 86_400));
    assert_eq!(verify(&server, &created.token).await.0, 200);
    // ...until revoked.
    server
        .state
        .services
        .api_tokens
        .revoke(&tenant, "website")
        .await
        .unwrap()
        .expect("revoked");
    let (status, body) = verify(&server, &created.token).await;
    assert_eq!(status, 401);
    assert_eq!(body["valid"], false);

    // A garbled service token is refused the same way.
    let (status, body) = verify(&server, "tsr_sk_default_garbage").await;
    assert_eq!(status, 401);
    assert_error(&body, "invalid_token");
}
both!(service_tokens_verify_without_expiry_until_revoked);

async fn bad_input_is_a_clear_error_in_this_apis_shape(backend: Backend) {
    let server = TestServer::start(backend).await;
    let response = server
        .post_from(
            "/api/v1/auth/login",
            &json!({"email": "not an email"}),
            &unique_ip(),
        )
        .await;
    assert_eq!(response.status(), 400);
    assert_error(&response.json().await.unwrap(), "invalid_email");
    let response = server
        .http
        .post(server.url("/api/v1/auth/login"))
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_error(&response.json().await.unwrap(), "malformed_json");
    let response = server.get_fresh("/api/v1/auth/verify", None).await;
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["valid"], false);
    assert_error(&body, "missing_token");
    let response = server
        .post_auth("/api/v1/auth/logout", "not-a-token", &json!({}))
        .await;
    assert_eq!(response.status(), 401);
    assert_error(&response.json().await.unwrap(), "invalid_token");
    // A mistyped route or method under this API's paths is worded as this API's errors too.
    let response = server.get_fresh("/api/v1/auth/nowhere", None).await;
    assert_eq!(response.status(), 404);
    assert_error(&response.json().await.unwrap(), "not_found");
    let response = server.get_fresh("/api/v1/auth/login", None).await;
    assert_eq!(response.status(), 405);
    assert_error(&response.json().await.unwrap(), "method_not_allowed");

    // Over the sign-in quota (5 a minute per IP): refused before any handler, in this shape.
    for i in 0..5 {
        let email = format!("user{i}@example.com");
        let response = server
            .post_from("/api/v1/auth/login", &json!({"email": email}), "192.0.2.9")
            .await;
        assert_eq!(response.status(), 200);
    }
    let response = server
        .post_from(
            "/api/v1/auth/login",
            &json!({"email": "user9@example.com"}),
            "192.0.2.9",
        )
        .await;
    assert_eq!(response.status(), 429);
    assert!(response.headers().contains_key("retry-after"));
    assert_error(&response.json().await.unwrap(), "rate_limited");
}
both!(bad_input_is_a_clear_error_in_this_apis_shape);
