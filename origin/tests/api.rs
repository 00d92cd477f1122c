//! The canonical API against the real server, on SQLite and on PostgreSQL.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;

use common::{
    assert_problem, assert_security_headers, claims, unique_ip, Backend, TestServer, PASSWORD,
};
use futures::future::join_all;
use serde_json::{json, Value};
use tessera_core::model::SessionId;
use tessera_origin::allowed_origin::AllowedOrigin;
use tessera_origin::store::TenantChanges;

async fn server_with_ann(backend: Backend) -> TestServer {
    let server = TestServer::start(backend).await;
    server
        .create_user("default", "ann@example.com", PASSWORD)
        .await;
    server
}

async fn sign_in_succeeds_with_the_documented_shape(backend: Backend) {
    let server = server_with_ann(backend).await;
    let response = server
        .post(
            "/api/auth/login",
            &json!({"email": "ANN@example.com ", "password": PASSWORD, "tenant": "default"}),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_security_headers(response.headers());
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    assert_eq!(body["refresh_expires_in"], 604_800);
    assert_eq!(body["user"]["email"], "ann@example.com");
    assert!(body["refresh_token"]
        .as_str()
        .unwrap()
        .starts_with("tsr_rt_default_"));
    let me = server
        .get_auth("/api/auth/me", body["access_token"].as_str().unwrap())
        .await;
    assert_eq!(me.status(), 200);
    let me: Value = me.json().await.unwrap();
    assert_eq!(me["tenant"], "default");
    assert_eq!(me["email"], "ann@example.com");
}
both!(sign_in_succeeds_with_the_documented_shape);

async fn every_sign_in_failure_looks_the_same(backend: Backend) {
    let server = server_with_ann(backend).await;
    let bob = server
        .create_user("default", "bob@example.com", PASSWORD)
        .await;
    let mut tx = server
        .state
        .store
        .write(&"default".parse_slug())
        .await
        .unwrap();
    tx.users().set_disabled(&bob, true, 0).await.unwrap();
    tx.commit().await.unwrap();
    let attempts = [
        json!({"email": "ann@example.com", "password": PASSWORD, "tenant": "nowhere"}),
        json!({"email": "ann@example.com", "password": PASSWORD, "tenant": "NOT a slug"}),
        json!({"email": "nobody@example.com", "password": PASSWORD, "tenant": "default"}),
        json!({"email": "ann@example.com", "password": "a wrong passphrase", "tenant": "default"}),
        json!({"email": "bob@example.com", "password": PASSWORD, "tenant": "default"}),
        json!({"email": "not an email", "password": PASSWORD, "tenant": "default"}),
    ];
    let mut bodies = Vec::new();
    for attempt in &attempts {
        let response = server
            .post_from("/api/auth/login", attempt, &unique_ip())
            .await;
        bodies.push(assert_problem(response, 401, "invalid_credentials").await);
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "{bodies:#?}");
}
both!(every_sign_in_failure_looks_the_same);

trait ParseSlug {
    fn parse_slug(&self) -> tessera_core::model::TenantSlug;
}
impl ParseSlug for str {
    fn parse_slug(&self) -> tessera_core::model::TenantSlug {
        tessera_core::model::TenantSlug::parse(self).unwrap()
    }
}

async fn refresh_rotates_and_a_reuse_after_the_grace_window_revokes_the_family(backend: Backend) {
    let server = TestServer::start_with(backend, &[("TESSERA_REFRESH_GRACE_SECS", "0")]).await;
    server
        .create_user("default", "ann@example.com", PASSWORD)
        .await;
    let first = server.login("default", "ann@example.com", PASSWORD).await;
    let old = first["refresh_token"].as_str().unwrap();
    let rotated = server
        .post_from(
            "/api/auth/refresh",
            &json!({"refresh_token": old}),
            &unique_ip(),
        )
        .await;
    assert_eq!(rotated.status(), 200);
    let rotated: Value = rotated.json().await.unwrap();
    let new = rotated["refresh_token"].as_str().unwrap();
    assert_ne!(new, old);
    assert!(rotated["refresh_expires_in"].as_i64().unwrap() <= 604_800);
    // Past the grace window (0 s here): the clock moves, no test sleeps.
    server.clock.advance(std::time::Duration::from_secs(1));
    let reused = server
        .post_from(
            "/api/auth/refresh",
            &json!({"refresh_token": old}),
            &unique_ip(),
        )
        .await;
    assert_problem(reused, 401, "invalid_refresh_token").await;
    // The whole family is gone: the successor and the access tokens of the session too.
    let successor = server
        .post_from(
            "/api/auth/refresh",
            &json!({"refresh_token": new}),
            &unique_ip(),
        )
        .await;
    assert_problem(successor, 401, "invalid_refresh_token").await;
    let access = server
        .get_auth(
            "/api/auth/verify",
            rotated["access_token"].as_str().unwrap(),
        )
        .await;
    let body = assert_problem(access, 401, "invalid_token").await;
    assert_eq!(body["valid"], false);
    let events: Vec<String> = server
        .state
        .store
        .read(&"default".parse_slug())
        .await
        .unwrap()
        .audit()
        .latest(20)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event)
        .collect();
    assert!(
        events.contains(&"refresh_reuse_detected".to_owned()),
        "{events:?}"
    );
}
both!(refresh_rotates_and_a_reuse_after_the_grace_window_revokes_the_family);

/// With `TESSERA_SESSION_IDLE_SECS`, a session whose refresh token goes unused for longer ends:
/// each refresh starts the limit again, and the first presentation after it is refused and ends
/// the session.
async fn a_session_unused_past_the_idle_limit_ends(backend: Backend) {
    let server = TestServer::start_with(backend, &[("TESSERA_SESSION_IDLE_SECS", "3600")]).await;
    server
        .create_user("default", "ann@example.com", PASSWORD)
        .await;
    let mut idle = server.login("default", "ann@example.com", PASSWORD).await;
    // Three refreshes 50 minutes apart: 150 minutes in all, never an hour unused.
    for _ in 0..3 {
        server
            .clock
            .advance(std::time::Duration::from_secs(50 * 60));
        let refreshed = server.refresh(&idle).await;
        assert_eq!(refreshed.status(), 200);
        idle = refreshed.json().await.unwrap();
    }
    server.clock.advance(std::time::Duration::from_secs(3601));
    assert_problem(server.refresh(&idle).await, 401, "invalid_refresh_token").await;
    // Ended, not only refused.
    let claims = claims(idle["access_token"].as_str().unwrap());
    let sid = SessionId::parse(claims["sid"].as_str().unwrap()).unwrap();
    let session = server
        .state
        .store
        .read(&"default".parse_slug())
        .await
        .unwrap()
        .sessions()
        .by_id(&sid)
        .await
        .unwrap()
        .unwrap();
    assert!(session.revoked_at.is_some());
    let events = server.audit_events("default").await;
    assert_eq!(events[0], "session_idle_timeout", "{events:?}");
}
both!(a_session_unused_past_the_idle_limit_ends);

/// An admin of a tenant signs one of its users out everywhere; nobody else can, and no other
/// tenant's user can be named.
async fn an_admin_signs_a_user_out_everywhere(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin_id = server
        .create_user_as("default", "admin@example.com", PASSWORD, "admin")
        .await;
    server
        .create_user("default", "bob@example.com", PASSWORD)
        .await;
    server.create_tenant("acme").await;
    server
        .create_user("acme", "carol@example.com", PASSWORD)
        .await;
    let admin = server.login("default", "admin@example.com", PASSWORD).await;
    let admin = admin["access_token"].as_str().unwrap();
    let bob = [
        server.login("default", "bob@example.com", PASSWORD).await,
        server.login("default", "bob@example.com", PASSWORD).await,
    ];
    let sign_out = |token: &str, email: &str| {
        let (token, body) = (token.to_owned(), json!({ "email": email }));
        let server = &server;
        async move {
            server
                .post_auth("/api/auth/admin/sign-out", &token, &body)
                .await
        }
    };

    let by_bob = sign_out(bob[0]["access_token"].as_str().unwrap(), "bob@example.com").await;
    assert_problem(by_bob, 403, "forbidden").await;
    assert_problem(sign_out(admin, "carol@example.com").await, 404, "not_found").await;
    assert_problem(
        sign_out(admin, "nobody@example.com").await,
        404,
        "not_found",
    )
    .await;
    assert_problem(
        sign_out(admin, "not an address").await,
        400,
        "invalid_email",
    )
    .await;

    let done = sign_out(admin, "bob@example.com").await;
    assert_eq!(done.status(), 200);
    let done: Value = done.json().await.unwrap();
    assert_eq!(done["sessions_ended"], 2);
    for tokens in &bob {
        let me = server
            .get_auth("/api/auth/me", tokens["access_token"].as_str().unwrap())
            .await;
        assert_eq!(me.status(), 401);
        assert_problem(server.refresh(tokens).await, 401, "invalid_refresh_token").await;
    }
    assert_eq!(server.get_auth("/api/auth/me", admin).await.status(), 200);
    let events = server.audit_events("default").await;
    assert_eq!(
        events[0],
        format!("sessions_ended_by_admin by=admin:{admin_id} sessions_ended=2")
    );
    server.login("default", "bob@example.com", PASSWORD).await;
}
both!(an_admin_signs_a_user_out_everywhere);

async fn fifty_concurrent_refreshes_yield_one_successor(backend: Backend) {
    let server = server_with_ann(backend).await;
    let first = server.login("default", "ann@example.com", PASSWORD).await;
    let token = first["refresh_token"].as_str().unwrap().to_owned();
    let calls = (0..50).map(|_| {
        let token = token.clone();
        let server = &server;
        async move {
            server
                .post_from(
                    "/api/auth/refresh",
                    &json!({"refresh_token": token}),
                    &unique_ip(),
                )
                .await
        }
    });
    let responses = join_all(calls).await;
    let mut successors = std::collections::BTreeSet::new();
    for response in responses {
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        successors.insert(body["refresh_token"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        successors.len(),
        1,
        "one successor for all 50 presentations"
    );
    let user = server
        .state
        .store
        .read(&"default".parse_slug())
        .await
        .unwrap()
        .users()
        .by_email(&tessera_core::model::Email::parse("ann@example.com").unwrap())
        .await
        .unwrap()
        .unwrap();
    let live = server
        .state
        .store
        .read(&"default".parse_slug())
        .await
        .unwrap()
        .sessions()
        .active_for(&user.id, server.state.clock.now_secs())
        .await
        .unwrap();
    assert_eq!(live.len(), 1, "one live family");
    let successor = successors.into_iter().next().unwrap();
    let next = server
        .post_from(
            "/api/auth/refresh",
            &json!({"refresh_token": successor}),
            &unique_ip(),
        )
        .await;
    assert_eq!(next.status(), 200, "the successor is live");
}
both!(fifty_concurrent_refreshes_yield_one_successor);

async fn an_access_token_is_refused_after_logout(backend: Backend) {
    let server = server_with_ann(backend).await;
    let tokens = server.login("default", "ann@example.com", PASSWORD).await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(
        server.get_auth("/api/auth/verify", access).await.status(),
        200
    );
    let logout = server
        .http
        .post(server.url("/api/auth/logout"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 204);
    for path in ["/api/auth/verify", "/api/auth/me", "/api/auth/sessions"] {
        assert_problem(server.get_auth(path, access).await, 401, "invalid_token").await;
    }
    let refresh = server
        .post(
            "/api/auth/refresh",
            &json!({"refresh_token": tokens["refresh_token"]}),
        )
        .await;
    assert_problem(refresh, 401, "invalid_refresh_token").await;
}
both!(an_access_token_is_refused_after_logout);

async fn the_sixth_sign_in_in_a_minute_is_limited_and_spoofing_changes_nothing(backend: Backend) {
    let server = server_with_ann(backend).await;
    let attempt =
        json!({"email": "ann@example.com", "password": "a wrong passphrase", "tenant": "default"});
    for _ in 0..5 {
        let response = server.post("/api/auth/login", &attempt).await;
        assert_eq!(response.status(), 401);
    }
    let limited = server.post("/api/auth/login", &attempt).await;
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after));
    assert!(limited.headers()["ratelimit"]
        .to_str()
        .unwrap()
        .contains("r=0"));
    assert_problem(limited, 429, "rate_limited").await;
    let spoofed = server
        .http
        .post(server.url("/api/auth/login"))
        .header("x-forwarded-for", "203.0.113.9")
        .header("x-tessera-client-ip", "203.0.113.9")
        .header("x-tessera-edge-secret", "a guess at the edge secret, wrong")
        .json(&attempt)
        .send()
        .await
        .unwrap();
    assert_problem(spoofed, 429, "rate_limited").await;
}
both!(the_sixth_sign_in_in_a_minute_is_limited_and_spoofing_changes_nothing);

async fn an_account_is_limited_whatever_ip_the_guesses_come_from(backend: Backend) {
    let server = server_with_ann(backend).await;
    let attempt =
        json!({"email": "ann@example.com", "password": "a wrong passphrase", "tenant": "default"});
    for _ in 0..5 {
        assert_eq!(
            server
                .post_from("/api/auth/login", &attempt, &unique_ip())
                .await
                .status(),
            401
        );
    }
    let limited = server
        .post_from("/api/auth/login", &attempt, &unique_ip())
        .await;
    assert_problem(limited, 429, "rate_limited").await;
    // Another account from those addresses is not affected.
    server
        .create_user("default", "bob@example.com", PASSWORD)
        .await;
    server.login("default", "bob@example.com", PASSWORD).await;
}
both!(an_account_is_limited_whatever_ip_the_guesses_come_from);

async fn two_tenants_with_the_same_email_are_isolated(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.create_tenant("acme").await;
    server.create_tenant("globex").await;
    server
        .create_user("acme", "ann@example.com", PASSWORD)
        .await;
    server
        .create_user(
            "globex",
            "ann@example.com",
            "a different passphrase for globex",
        )
        .await;
    // Each password opens only its own tenant.
    let wrong = server
        .post_from(
            "/api/auth/login",
            &json!({"email": "ann@example.com", "password": PASSWORD, "tenant": "globex"}),
            &unique_ip(),
        )
        .await;
    assert_problem(wrong, 401, "invalid_credentials").await;
    let acme = server.login("acme", "ann@example.com", PASSWORD).await;
    let globex = server
        .login(
            "globex",
            "ann@example.com",
            "a different passphrase for globex",
        )
        .await;
    assert_ne!(acme["user"]["id"], globex["user"]["id"]);
    // A token of one tenant naming the other is refused.
    let access = acme["access_token"].as_str().unwrap();
    let crossed = server
        .http
        .get(server.url("/api/auth/me"))
        .bearer_auth(access)
        .header("x-tenant", "globex")
        .send()
        .await
        .unwrap();
    assert_problem(crossed, 403, "tenant_mismatch").await;
    let same = server
        .http
        .get(server.url("/api/auth/me"))
        .bearer_auth(access)
        .header("x-tenant", "acme")
        .send()
        .await
        .unwrap();
    assert_eq!(same.status(), 200);
    // A refresh token of one tenant presented as the other's is refused.
    let refresh = server
        .http
        .post(server.url("/api/auth/refresh"))
        .header("x-tenant", "globex")
        .json(&json!({"refresh_token": acme["refresh_token"]}))
        .send()
        .await
        .unwrap();
    assert_problem(refresh, 403, "tenant_mismatch").await;
    // Sessions are per tenant.
    let sessions: Value = server
        .get_auth("/api/auth/sessions", access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(sessions.as_array().unwrap().len(), 1);
    // Sign-in naming a tenant in the header other than the body's is refused.
    let mixed = server
        .http
        .post(server.url("/api/auth/login"))
        .header("x-tenant", "globex")
        .json(&json!({"email": "ann@example.com", "password": PASSWORD, "tenant": "acme"}))
        .send()
        .await
        .unwrap();
    assert_problem(mixed, 403, "tenant_mismatch").await;
}
both!(two_tenants_with_the_same_email_are_isolated);

async fn sessions_are_listed_and_ended_one_by_one(backend: Backend) {
    let server = server_with_ann(backend).await;
    let one = server.login("default", "ann@example.com", PASSWORD).await;
    let two = server.login("default", "ann@example.com", PASSWORD).await;
    let access_one = one["access_token"].as_str().unwrap();
    let access_two = two["access_token"].as_str().unwrap();
    let listed: Value = server
        .get_auth("/api/auth/sessions", access_one)
        .await
        .json()
        .await
        .unwrap();
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed.iter().filter(|s| s["current"] == true).count(), 1);
    let other = listed.iter().find(|s| s["current"] == false).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let ended = server
        .http
        .delete(server.url(&format!("/api/auth/sessions/{other}")))
        .bearer_auth(access_one)
        .send()
        .await
        .unwrap();
    assert_eq!(ended.status(), 204);
    assert_problem(
        server.get_auth("/api/auth/me", access_two).await,
        401,
        "invalid_token",
    )
    .await;
    let again = server
        .http
        .delete(server.url(&format!("/api/auth/sessions/{other}")))
        .bearer_auth(access_one)
        .send()
        .await
        .unwrap();
    assert_problem(again, 404, "not_found").await;
    let garbage = server
        .http
        .delete(server.url("/api/auth/sessions/not-a-uuid"))
        .bearer_auth(access_one)
        .send()
        .await
        .unwrap();
    assert_problem(garbage, 404, "not_found").await;
}
both!(sessions_are_listed_and_ended_one_by_one);

async fn key_rotation_keeps_issued_tokens_valid(backend: Backend) {
    let server = server_with_ann(backend).await;
    let before = server.login("default", "ann@example.com", PASSWORD).await;
    server.state.keys.rotate().await.unwrap();
    server.state.keys.reload().await.unwrap();
    let after = server.login("default", "ann@example.com", PASSWORD).await;
    let jwks: Value = server
        .http
        .get(server.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // Both access-token keys (the new and the retired one), and both ID-token keys.
    let algorithms: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["alg"].as_str().unwrap())
        .collect();
    assert_eq!(
        (
            algorithms.iter().filter(|a| **a == "EdDSA").count(),
            algorithms.iter().filter(|a| **a == "RS256").count()
        ),
        (2, 2),
        "{jwks}"
    );
    for tokens in [&before, &after] {
        let verified = server
            .get_auth("/api/auth/verify", tokens["access_token"].as_str().unwrap())
            .await;
        assert_eq!(verified.status(), 200);
    }
    let kid = |t: &Value| jsonwebtoken_kid(t["access_token"].as_str().unwrap());
    assert_ne!(kid(&before), kid(&after));
}
both!(key_rotation_keeps_issued_tokens_valid);

fn jsonwebtoken_kid(token: &str) -> String {
    use base64::Engine as _;
    let header = token.split('.').next().unwrap();
    let header: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(header)
            .unwrap(),
    )
    .unwrap();
    header["kid"].as_str().unwrap().to_owned()
}

async fn bad_input_gets_a_problem_never_a_500(backend: Backend) {
    let server = TestServer::start(backend).await;
    let login = server.url("/api/auth/login");
    let malformed = server
        .http
        .post(&login)
        .header("content-type", "application/json")
        .body("{\"email\":")
        .send()
        .await
        .unwrap();
    assert_problem(malformed, 400, "malformed_json").await;
    let missing = server
        .post("/api/auth/login", &json!({"email": "a@b.io"}))
        .await;
    assert_problem(missing, 400, "invalid_request").await;
    let wrong_type = server
        .http
        .post(&login)
        .header("content-type", "text/plain")
        .body("hi")
        .send()
        .await
        .unwrap();
    assert_problem(wrong_type, 415, "unsupported_media_type").await;
    // A body is an object: serde would read a struct's fields from an array, in order.
    for path in ["/api/auth/login", "/api/auth/passkeys/login/options"] {
        let array = json!(["ann@example.com", PASSWORD, "default"]);
        let refused = server.post_from(path, &array, &unique_ip()).await;
        assert_problem(refused, 400, "invalid_request").await;
        let nulls = server
            .post_from(path, &json!([null, null]), &unique_ip())
            .await;
        assert_problem(nulls, 400, "invalid_request").await;
    }
    let huge = json!({"email": "a@b.io", "password": "x".repeat(70 * 1024), "tenant": "default"});
    assert_problem(
        server.post("/api/auth/login", &huge).await,
        413,
        "payload_too_large",
    )
    .await;
    assert_problem(
        server
            .http
            .get(server.url("/nowhere"))
            .send()
            .await
            .unwrap(),
        404,
        "not_found",
    )
    .await;
    assert_problem(
        server.http.get(&login).send().await.unwrap(),
        405,
        "method_not_allowed",
    )
    .await;
    let no_token = server
        .http
        .get(server.url("/api/auth/verify"))
        .send()
        .await
        .unwrap();
    let body = assert_problem(no_token, 401, "missing_token").await;
    assert_eq!(body["valid"], false);
    let garbage = server.get_auth("/api/auth/verify", "not.a.jwt").await;
    assert_problem(garbage, 401, "invalid_token").await;
    let bad_refresh = server
        .post("/api/auth/refresh", &json!({"refresh_token": "tsr_rt_x"}))
        .await;
    assert_problem(bad_refresh, 401, "invalid_refresh_token").await;
    let bad_header = server
        .http
        .get(server.url("/api/auth/me"))
        .header("x-tenant", "Bad Slug!")
        .bearer_auth("x.y.z")
        .send()
        .await
        .unwrap();
    assert_eq!(bad_header.status(), 401);
}
both!(bad_input_gets_a_problem_never_a_500);

async fn a_sign_in_rehashes_a_password_with_old_parameters(backend: Backend) {
    let server = TestServer::start(backend).await;
    let weak = tessera_origin::password::Hasher::new(common::WEAK_ARGON2, 1, 4).unwrap();
    let hash = weak.hash(PASSWORD.into()).await.unwrap();
    let id = server
        .create_user("default", "ann@example.com", "placeholder passphrase 123")
        .await;
    let mut tx = server
        .state
        .store
        .write(&"default".parse_slug())
        .await
        .unwrap();
    tx.users().set_password_hash(&id, &hash, 0).await.unwrap();
    tx.commit().await.unwrap();
    server.login("default", "ann@example.com", PASSWORD).await;
    let user = server
        .state
        .store
        .read(&"default".parse_slug())
        .await
        .unwrap()
        .users()
        .by_id(&id)
        .await
        .unwrap()
        .unwrap();
    let stored = user.password_hash.unwrap();
    assert_ne!(stored, hash);
    assert!(stored.contains("m=19456,t=2,p=1"), "{stored}");
    server.login("default", "ann@example.com", PASSWORD).await;
}
both!(a_sign_in_rehashes_a_password_with_old_parameters);

async fn a_full_hash_queue_answers_503_with_retry_after(backend: Backend) {
    let server = TestServer::start_with(
        backend,
        &[
            ("TESSERA_HASH_CONCURRENCY", "1"),
            ("TESSERA_HASH_QUEUE", "2"),
        ],
    )
    .await;
    let calls = (0..40).map(|i| {
        let server = &server;
        async move {
            let body = json!({"email": format!("u{i}@example.com"), "password": PASSWORD, "tenant": "default"});
            server.post_from("/api/auth/login", &body, &unique_ip()).await
        }
    });
    let responses = join_all(calls).await;
    let busy: Vec<_> = responses
        .into_iter()
        .filter(|r| r.status() == 503)
        .collect();
    assert!(!busy.is_empty(), "some sign-ins must be turned away");
    for response in busy {
        assert_eq!(response.headers()["retry-after"], "1");
        assert_problem(response, 503, "busy").await;
    }
}
both!(a_full_hash_queue_answers_503_with_retry_after);

async fn the_audit_log_records_security_events_without_secrets(backend: Backend) {
    let server = server_with_ann(backend).await;
    let bad = server
        .post_from("/api/auth/login", &json!({"email": "ann@example.com", "password": "a wrong passphrase", "tenant": "default"}), &unique_ip())
        .await;
    assert_eq!(bad.status(), 401);
    let tokens = server.login("default", "ann@example.com", PASSWORD).await;
    let refreshed: Value = server
        .post_from(
            "/api/auth/refresh",
            &json!({"refresh_token": tokens["refresh_token"]}),
            &unique_ip(),
        )
        .await
        .json()
        .await
        .unwrap();
    server
        .http
        .post(server.url("/api/auth/logout"))
        .bearer_auth(refreshed["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let events = server
        .state
        .store
        .read(&"default".parse_slug())
        .await
        .unwrap()
        .audit()
        .latest(10)
        .await
        .unwrap();
    let names: Vec<&str> = events.iter().rev().map(|e| e.event.as_str()).collect();
    assert_eq!(
        names,
        ["login_failed", "login_succeeded", "refresh", "logout"]
    );
    for event in &events {
        let text = format!("{event:?}");
        assert!(
            !text.contains("wrong passphrase")
                && !text.contains(PASSWORD)
                && !text.contains("tsr_rt_"),
            "{text}"
        );
        assert!(event.ip.parse::<std::net::IpAddr>().is_ok(), "{text}");
    }
    // The failed attempt came through the edge: its client IP is the edge's, not the socket's.
    assert!(events.last().unwrap().ip.starts_with("10."));
}
both!(the_audit_log_records_security_events_without_secrets);

async fn operations_endpoints_answer(backend: Backend) {
    let server = TestServer::start(backend).await;
    for path in [
        "/healthz",
        "/readyz",
        "/openapi.json",
        "/.well-known/jwks.json",
    ] {
        let response = server.http.get(server.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert_security_headers(response.headers());
        assert!(response.headers().contains_key("x-request-id"));
    }
    let openapi: Value = server
        .http
        .get(server.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for path in [
        "/api/auth/login",
        "/api/auth/refresh",
        "/api/auth/logout",
        "/api/auth/verify",
        "/api/auth/me",
        "/api/auth/sessions",
        "/api/auth/sessions/{id}",
    ] {
        assert!(
            openapi["paths"][path].is_object(),
            "{path} missing from OpenAPI"
        );
    }
    // Metrics are not public without a token: they are on the operations listener.
    let public = server
        .http
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_problem(public, 404, "not_found").await;
    let metrics = server
        .http
        .get(format!("{}/metrics", server.ops_base))
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), 200);
    assert_security_headers(metrics.headers());
    let metrics = metrics.text().await.unwrap();
    assert!(metrics.contains("tessera_hash_queue_depth"), "{metrics}");
}
both!(operations_endpoints_answer);

async fn cors_allows_only_the_tenants_origins(backend: Backend) {
    let server = TestServer::start(backend).await;
    let acme = server.create_tenant("acme").await;
    for (tenant, origin) in [
        ("default", "https://app.example"),
        ("acme", "https://acme.example"),
    ] {
        server
            .state
            .store
            .update_tenant(
                &tenant.parse_slug(),
                &TenantChanges {
                    cors_origins: Some(vec![AllowedOrigin::parse(origin).unwrap()]),
                    ..TenantChanges::default()
                },
            )
            .await
            .unwrap();
    }
    server
        .create_user("acme", "ann@example.com", PASSWORD)
        .await;
    let preflight = |origin: &'static str| {
        server
            .http
            .request(reqwest::Method::OPTIONS, server.url("/api/auth/mfa/email"))
            .header("origin", origin)
            .header("access-control-request-method", "PUT")
            .send()
    };
    // A preflight carries no tenant: any tenant's origin is allowed, with every method the
    // APIs use (PUT and PATCH included), for ten minutes.
    for origin in ["https://app.example", "https://acme.example"] {
        let allowed = preflight(origin).await.unwrap();
        assert_eq!(allowed.status(), 204);
        assert_eq!(allowed.headers()["access-control-allow-origin"], origin);
        let methods = allowed.headers()["access-control-allow-methods"]
            .to_str()
            .unwrap();
        assert!(
            methods.contains("PUT") && methods.contains("PATCH"),
            "{methods}"
        );
        assert_eq!(allowed.headers()["access-control-max-age"], "600");
    }
    let refused = preflight("https://evil.example").await.unwrap();
    assert!(!refused
        .headers()
        .contains_key("access-control-allow-origin"));

    // The request itself is readable only by an origin of the tenant it is for: here the
    // tenant its body names.
    let sign_in = |origin: &'static str| {
        server
            .http
            .post(server.url("/api/auth/login"))
            .header("origin", origin)
            .json(&json!({"tenant": "acme", "email": "ann@example.com", "password": PASSWORD}))
            .send()
    };
    let ours = sign_in("https://acme.example").await.unwrap();
    assert_eq!(ours.status(), 200);
    assert_eq!(
        ours.headers()["access-control-allow-origin"],
        "https://acme.example"
    );
    let tokens: Value = ours.json().await.unwrap();
    let theirs = sign_in("https://app.example").await.unwrap();
    assert!(!theirs.headers().contains_key("access-control-allow-origin"));
    // ...or its bearer token's tenant.
    let me = server
        .http
        .get(server.url("/api/auth/me"))
        .header("origin", "https://acme.example")
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(
        me.headers()["access-control-allow-origin"],
        "https://acme.example"
    );
    // ...or the tenant of the opaque token in its body.
    let refreshed = server
        .http
        .post(server.url("/api/auth/refresh"))
        .header("origin", "https://acme.example")
        .json(&json!({"refresh_token": tokens["refresh_token"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(refreshed.status(), 200);
    assert_eq!(
        refreshed.headers()["access-control-allow-origin"],
        "https://acme.example"
    );
    // A cross-origin body is read under the same size limit as any other.
    let huge = server
        .http
        .post(server.url("/api/auth/login"))
        .header("origin", "https://acme.example")
        .json(&json!({"tenant": "x".repeat(70_000)}))
        .send()
        .await
        .unwrap();
    assert_problem(huge, 413, "payload_too_large").await;
    assert_eq!(acme.as_str(), "acme");
}
both!(cors_allows_only_the_tenants_origins);

/// Issue 25, item 5: the canonical API's bodies may leave `tenant` out; the tenant the request
/// names (`X-Tenant`, as docs/API.md says) is used, else the default tenant.
async fn a_body_without_a_tenant_is_for_the_tenant_the_request_names(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.create_tenant("acme").await;
    server
        .create_user("acme", "ann@example.com", PASSWORD)
        .await;
    let login = json!({"email": "ann@example.com", "password": PASSWORD});
    let signed_in = server
        .http
        .post(server.url("/api/auth/login"))
        .header("x-tenant", "acme")
        .json(&login)
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 200);
    let tokens: Value = signed_in.json().await.unwrap();
    assert_eq!(
        claims(tokens["access_token"].as_str().unwrap())["tid"],
        "acme"
    );
    // Without a header, the default tenant, where Ann has no account.
    assert_problem(
        server.post("/api/auth/login", &login).await,
        401,
        "invalid_credentials",
    )
    .await;
    // A body naming another tenant than the header is still refused.
    let both = json!({"email": "ann@example.com", "password": PASSWORD, "tenant": "default"});
    let mismatch = server
        .http
        .post(server.url("/api/auth/login"))
        .header("x-tenant", "acme")
        .json(&both)
        .send()
        .await
        .unwrap();
    assert_problem(mismatch, 403, "tenant_mismatch").await;
}
both!(a_body_without_a_tenant_is_for_the_tenant_the_request_names);

/// Issue 25, item 4: development mode relaxes every limit a hundredfold, so that a developer
/// trying things by hand does not meet the credential quota.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn development_mode_relaxes_the_limits() {
    let server = TestServer::start_with(Backend::Sqlite, &[("TESSERA_DEV", "1")]).await;
    let attempt =
        json!({"email": "ann@example.com", "password": "a wrong passphrase", "tenant": "default"});
    for n in 0..20 {
        let refused = server.post("/api/auth/login", &attempt).await;
        assert_eq!(refused.status(), 401, "attempt {n}");
    }
}

async fn limits_shared_in_the_database_refuse_the_sixth_sign_in(backend: Backend) {
    let server = TestServer::start_with(backend, &[("TESSERA_RATE_LIMIT_STORE", "database")]).await;
    let attempt =
        json!({"email": "ann@example.com", "password": "a wrong passphrase", "tenant": "default"});
    for _ in 0..5 {
        assert_eq!(server.post("/api/auth/login", &attempt).await.status(), 401);
    }
    assert_problem(
        server.post("/api/auth/login", &attempt).await,
        429,
        "rate_limited",
    )
    .await;
}
both!(limits_shared_in_the_database_refuse_the_sixth_sign_in);

async fn idle_shared_limit_rows_are_swept_in_the_background(backend: Backend) {
    let server = TestServer::start_with(
        backend,
        &[
            ("TESSERA_RATE_LIMIT_STORE", "database"),
            ("TESSERA_RATE_LIMIT_SWEEP_SECS", "1"),
        ],
    )
    .await;
    for _ in 0..3 {
        let ip = unique_ip();
        server.post_from("/api/auth/login", &json!({"email": "ann@example.com", "password": "a wrong passphrase", "tenant": "default"}), &ip).await;
    }
    // Three client IPs and one account: four keys, all busy until a minute has passed.
    assert_eq!(server.state.store.rate_limit_keys().await.unwrap(), 4);
    server.clock.advance(std::time::Duration::from_secs(61));
    // The sweeper runs every second of real time: wait for it, not for a lifetime.
    let started = std::time::Instant::now();
    while server.state.store.rate_limit_keys().await.unwrap() > 0 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "rows never swept"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
both!(idle_shared_limit_rows_are_swept_in_the_background);

async fn forwarded_for_is_believed_only_from_a_trusted_proxy(backend: Backend) {
    let server = TestServer::start_with(backend, &[("TESSERA_TRUSTED_PROXIES", "127.0.0.1")]).await;
    let attempts = std::sync::atomic::AtomicU32::new(0);
    // A new account each time, so that only the per-IP limit is in play.
    let from = |ip: &'static str| {
        let n = attempts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let attempt = json!({"email": format!("u{n}@example.com"), "password": "a wrong passphrase", "tenant": "default"});
        server
            .http
            .post(server.url("/api/auth/login"))
            .header("x-forwarded-for", format!("198.51.100.7, {ip}"))
            .json(&attempt)
            .send()
    };
    // The right-most address the trusted proxy saw is the client: two clients, two buckets.
    for _ in 0..5 {
        assert_eq!(from("203.0.113.1").await.unwrap().status(), 401);
    }
    assert_problem(from("203.0.113.1").await.unwrap(), 429, "rate_limited").await;
    assert_eq!(from("203.0.113.2").await.unwrap().status(), 401);
}
both!(forwarded_for_is_believed_only_from_a_trusted_proxy);

async fn a_revocation_on_another_node_is_seen_within_the_cache_ttl(backend: Backend) {
    let first = server_with_ann(backend).await;
    // A second node over the same storage.
    let config = common::config(&first.storage, &[]);
    let second_state = tessera_origin::state::AppState::with_clock(
        config,
        first.storage.store.clone(),
        tessera_origin::keys::MasterKey::new([42; 32]),
        first.clock.clone(),
    )
    .await
    .unwrap();
    let tokens = first.login("default", "ann@example.com", PASSWORD).await;
    let access = tokens["access_token"].as_str().unwrap();
    let on_second = || {
        second_state
            .services
            .authenticate
            .authenticate(access, None)
    };
    assert!(
        on_second().await.is_ok(),
        "the second node has now cached the session"
    );
    let logout = first
        .http
        .post(first.url("/api/auth/logout"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 204);
    assert_problem(
        first.get_auth("/api/auth/verify", access).await,
        401,
        "invalid_token",
    )
    .await;
    assert!(on_second().await.is_ok(), "still cached on the second node");
    first.clock.advance(std::time::Duration::from_millis(1_000));
    assert!(matches!(
        on_second().await.map(|_| ()).unwrap_err(),
        tessera_origin::services::ServiceError::SessionEnded
    ));
}
both!(a_revocation_on_another_node_is_seen_within_the_cache_ttl);

async fn metrics_can_require_a_token(backend: Backend) {
    const METRICS_TOKEN: &str = "a-metrics-token-of-at-least-32-characters";
    let server = TestServer::start_with(backend, &[("TESSERA_METRICS_TOKEN", METRICS_TOKEN)]).await;
    let anonymous = server
        .http
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_problem(anonymous, 401, "missing_token").await;
    let wrong = server.get_auth("/metrics", "another-token").await;
    assert_eq!(wrong.status(), 401);
    let scraped = server.get_auth("/metrics", METRICS_TOKEN).await;
    assert_eq!(scraped.status(), 200);
    assert!(scraped.text().await.unwrap().contains("tessera_"));

    // Guesses at the token are charged like any request (issue 24, item 8): 30 a minute.
    let mut statuses = Vec::new();
    for n in 0..31 {
        let guess = server
            .http
            .get(server.url("/metrics"))
            .header("x-tessera-edge-secret", common::EDGE_SECRET)
            .header("x-tessera-client-ip", "192.0.2.77")
            .bearer_auth(format!("guess-{n}"))
            .send()
            .await
            .unwrap();
        statuses.push(guess.status().as_u16());
    }
    assert!(statuses[..30].iter().all(|s| *s == 401), "{statuses:?}");
    assert_eq!(statuses[30], 429);
}
both!(metrics_can_require_a_token);

async fn a_remembered_token_is_refused_once_its_key_is_removed(backend: Backend) {
    let server = server_with_ann(backend).await;
    let tokens = server.login("default", "ann@example.com", PASSWORD).await;
    let access = tokens["access_token"].as_str().unwrap();
    // Verified once, and so remembered by the node.
    assert_eq!(
        server.get_auth("/api/auth/verify", access).await.status(),
        200
    );
    let old = server.state.keys.signer().await.kid().to_owned();
    server.state.keys.rotate().await.unwrap();
    assert!(server
        .state
        .store
        .remove_retired_key(&old, tessera_origin::clock::Clock::now_secs(&*server.clock))
        .await
        .unwrap());
    server.state.keys.reload().await.unwrap();
    let body = assert_problem(
        server.get_auth("/api/auth/verify", access).await,
        401,
        "invalid_token",
    )
    .await;
    assert_eq!(body["valid"], false);
}
both!(a_remembered_token_is_refused_once_its_key_is_removed);

async fn the_tenant_a_request_names_is_case_insensitive(backend: Backend) {
    let server = server_with_ann(backend).await;
    let response = server
        .http
        .post(server.url("/api/auth/login"))
        .header("x-tenant", "DEFAULT")
        .header("x-tessera-edge-secret", common::EDGE_SECRET)
        .header("x-tessera-client-ip", unique_ip())
        .json(&json!({"email": "ann@example.com", "password": PASSWORD, "tenant": "Default"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let verified: Value = server
        .get_auth("/api/auth/verify", body["access_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(verified["tenant"], "default");
}
both!(the_tenant_a_request_names_is_case_insensitive);
