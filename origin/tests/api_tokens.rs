//! Service API tokens over the canonical API (`/api/auth/api-tokens`), on SQLite and
//! PostgreSQL: only a tenant's admins manage them; a token verifies as a service principal of
//! its tenant and stops at once when revoked.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;

use common::{assert_problem, Backend, TestServer, PASSWORD};
use serde_json::{json, Value};

async fn admin_token(server: &TestServer, tenant: &str, email: &str) -> String {
    server
        .create_user_as(tenant, email, PASSWORD, "admin")
        .await;
    server.login(tenant, email, PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn last_used(server: &TestServer, admin: &str) -> String {
    let listed: Value = server
        .get_fresh("/api/auth/api-tokens", Some(admin))
        .await
        .json()
        .await
        .unwrap();
    listed[0]["last_used_at"].as_str().unwrap().to_owned()
}

async fn admins_create_list_and_revoke(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = admin_token(&server, "default", "admin@example.com").await;

    let response = server
        .post_auth(
            "/api/auth/api-tokens",
            &admin,
            &json!({"name": "billing", "scopes": ["invoices:read"], "expires_in_days": 90}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    let token = created["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("tsr_sk_default_"));
    assert_eq!(created["scopes"], json!(["invoices:read"]));
    assert!(created["expires_at"].is_string());
    let id = created["id"].as_str().unwrap().to_owned();

    let verified = server.get_fresh("/api/auth/verify", Some(&token)).await;
    assert_eq!(verified.status(), 200);
    let answer: Value = verified.json().await.unwrap();
    assert_eq!(answer["tenant"], "default");
    assert_eq!(answer["user"]["role"], "service");
    assert_eq!(answer["service"]["name"], "billing");
    assert_eq!(answer["expires_at"], created["expires_at"]);
    // A service token is not a user's: the user routes refuse it.
    let me = server.get_fresh("/api/auth/me", Some(&token)).await;
    assert_eq!(me.status(), 401);

    let listed: Value = server
        .get_fresh("/api/auth/api-tokens", Some(&admin))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["id"], id.as_str());
    assert!(listed[0].get("token").is_none());
    assert!(listed[0]["last_used_at"].is_string(), "{listed}");

    // Uses are recorded at most once a minute.
    let first = last_used(&server, &admin).await;
    server.clock.advance(std::time::Duration::from_secs(30));
    assert_eq!(
        server
            .get_fresh("/api/auth/verify", Some(&token))
            .await
            .status(),
        200
    );
    assert_eq!(last_used(&server, &admin).await, first);
    server.clock.advance(std::time::Duration::from_secs(31));
    assert_eq!(
        server
            .get_fresh("/api/auth/verify", Some(&token))
            .await
            .status(),
        200
    );
    assert_ne!(last_used(&server, &admin).await, first);

    let taken = server
        .post_auth("/api/auth/api-tokens", &admin, &json!({"name": "billing"}))
        .await;
    assert_problem(taken, 409, "name_taken").await;
    let bad = server
        .post_auth(
            "/api/auth/api-tokens",
            &admin,
            &json!({"name": "x", "scopes": ["has space"]}),
        )
        .await;
    assert_problem(bad, 400, "invalid_scope").await;

    let revoked = server
        .delete_auth(&format!("/api/auth/api-tokens/{id}"), &admin, &json!({}))
        .await;
    assert_eq!(revoked.status(), 204);
    let refused = server.get_fresh("/api/auth/verify", Some(&token)).await;
    let body = assert_problem(refused, 401, "invalid_token").await;
    assert_eq!(body["valid"], false);
    let again = server
        .delete_auth(&format!("/api/auth/api-tokens/{id}"), &admin, &json!({}))
        .await;
    assert_problem(again, 404, "not_found").await;
    let garbage = server
        .delete_auth("/api/auth/api-tokens/not-an-id", &admin, &json!({}))
        .await;
    assert_problem(garbage, 404, "not_found").await;
}
both!(admins_create_list_and_revoke);

async fn only_admins_and_only_their_tenant(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.create_tenant("acme").await;
    let admin = admin_token(&server, "default", "admin@example.com").await;
    server
        .create_user("default", "user@example.com", PASSWORD)
        .await;
    let user = server.login("default", "user@example.com", PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    for response in [
        server
            .post_auth("/api/auth/api-tokens", &user, &json!({"name": "x"}))
            .await,
        server.get_fresh("/api/auth/api-tokens", Some(&user)).await,
    ] {
        assert_problem(response, 403, "forbidden").await;
    }
    let created: Value = server
        .post_auth("/api/auth/api-tokens", &admin, &json!({"name": "ci"}))
        .await
        .json()
        .await
        .unwrap();
    let token = created["token"].as_str().unwrap();
    // Another tenant's admin cannot see or revoke it.
    let other = admin_token(&server, "acme", "admin@acme.test").await;
    let listed: Value = server
        .get_fresh("/api/auth/api-tokens", Some(&other))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed, json!([]));
    let id = created["id"].as_str().unwrap();
    let revoke = server
        .delete_auth(&format!("/api/auth/api-tokens/{id}"), &other, &json!({}))
        .await;
    assert_problem(revoke, 404, "not_found").await;
    // A request naming another tenant is refused.
    let crossed = server
        .http
        .get(server.url("/api/auth/verify"))
        .header("x-tenant", "acme")
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_problem(crossed, 403, "tenant_mismatch").await;
}
both!(only_admins_and_only_their_tenant);
