//! The team/vault API (`/api/*`) as its document shows it, on SQLite and PostgreSQL:
//! registration, login and confirmation answering `{userToken, vaultToken}`, resend, `GET`
//! refresh, forgotten passwords under the document's three-s spellings, and `exist-email`.
//! Also: one user, created through this API, signs in through all four.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{assert_problem, claims, unique_ip, Backend, TestServer, PASSWORD};
use serde_json::{json, Value};
use tessera_core::model::TenantSlug;
use tessera_origin::store::TenantPolicy;

const NEW_PASSWORD: &str = "a brand new and long passphrase";

/// A `{userToken, vaultToken}` answer: both access tokens of one session.
async fn tokens(response: reqwest::Response) -> (String, String) {
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let object = body.as_object().unwrap();
    assert_eq!(object.len(), 2, "{body}");
    let user = body["userToken"].as_str().unwrap().to_owned();
    let vault = body["vaultToken"].as_str().unwrap().to_owned();
    assert_eq!(claims(&user)["sid"], claims(&vault)["sid"]);
    (user, vault)
}

async fn register(server: &TestServer, email: &str) -> reqwest::Response {
    server
        .post_from(
            "/api/register",
            &json!({"email": email, "password": PASSWORD, "name": "Ann Lee"}),
            &unique_ip(),
        )
        .await
}

async fn sign_in(server: &TestServer, password: &str) -> reqwest::Response {
    server
        .post_from(
            "/api/login",
            &json!({"email": "ann@example.com", "password": password}),
            &unique_ip(),
        )
        .await
}

async fn register_confirm_login_and_refresh(backend: Backend) {
    let (server, sink) = TestServer::with_sink(backend, &[]).await;
    let (user, vault) = tokens(register(&server, "ann@example.com").await).await;
    // Before the address is confirmed there is no team: the vault token names none.
    assert!(claims(&vault).get("team").is_none(), "{}", claims(&vault));
    assert_eq!(claims(&user)["email_verified"], false);

    let again = register(&server, "ann@example.com").await;
    assert_problem(again, 409, "email_taken").await;

    // Confirmation spends the link on GET, creates the team and signs in with it.
    let link = sink.wait_for("ann@example.com", 1).await.remove(0).token();
    let confirmed = server
        .get_fresh(&format!("/api/verify-email/{link}"), None)
        .await;
    let (user, vault) = tokens(confirmed).await;
    let vault_claims = claims(&vault);
    assert_eq!(vault_claims["team_role"], "owner", "{vault_claims}");
    assert_eq!(claims(&user)["email_verified"], true);
    let me: Value = server
        .get_fresh("/api/auth/me", Some(&user))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["teams"][0]["id"], vault_claims["team"]);
    assert_eq!(me["projects"][0]["name"], "Default project");
    let spent = server
        .get_fresh(&format!("/api/verify-email/{link}"), None)
        .await;
    assert_problem(spent, 400, "invalid_link").await;

    let login = sign_in(&server, PASSWORD).await;
    let (user, vault) = tokens(login).await;
    assert_eq!(claims(&vault)["team"], vault_claims["team"]);

    // GET /api/refresh renews the pair, also from an expired userToken, within the session.
    let (renewed, _) = tokens(server.get_fresh("/api/refresh", Some(&user)).await).await;
    assert_ne!(renewed, user);
    server.clock.advance(Duration::from_secs(3_600));
    let expired = server.get_fresh("/api/auth/me", Some(&user)).await;
    assert_problem(expired, 401, "token_expired").await;
    let (renewed, _) = tokens(server.get_fresh("/api/refresh", Some(&user)).await).await;
    assert_eq!(
        server
            .get_fresh("/api/auth/me", Some(&renewed))
            .await
            .status(),
        200
    );
    // ...but not past the session's end (7 days).
    server.clock.advance(Duration::from_secs(7 * 86_400));
    let over = server.get_fresh("/api/refresh", Some(&renewed)).await;
    assert_eq!(over.status(), 401);

    // Nor after sign-out.
    let login = sign_in(&server, PASSWORD).await;
    let (user, _) = tokens(login).await;
    let out = server
        .post_auth("/api/auth/logout", &user, &json!({}))
        .await;
    assert_eq!(out.status(), 204);
    let refused = server.get_fresh("/api/refresh", Some(&user)).await;
    assert_problem(refused, 401, "invalid_token").await;
    let wrong = sign_in(&server, "not the password").await;
    assert_problem(wrong, 401, "invalid_credentials").await;
}
both!(register_confirm_login_and_refresh);

async fn resend_confirmation_with_capcha_parameter(backend: Backend) {
    let (server, sink) = TestServer::with_sink(backend, &[]).await;
    let (user, _) = tokens(register(&server, "ann@example.com").await).await;
    sink.wait_for("ann@example.com", 1).await;
    let resent = server
        .get_fresh(
            "/api/resend-email-verification?capcha=anything",
            Some(&user),
        )
        .await;
    let (renewed, _) = tokens(resent).await;
    assert_eq!(claims(&renewed)["sid"], claims(&user)["sid"]);
    let second = sink.wait_for("ann@example.com", 2).await.remove(1);
    assert_eq!(second.subject, "Confirm your email");
    // One a minute.
    let again = server
        .get_fresh(
            "/api/resend-email-verification?capcha=anything",
            Some(&user),
        )
        .await;
    assert_problem(again, 429, "rate_limited").await;
    let anonymous = server
        .get_fresh("/api/resend-email-verification?capcha=x", None)
        .await;
    assert_problem(anonymous, 401, "missing_token").await;
}
both!(resend_confirmation_with_capcha_parameter);

async fn forgotten_passwords_under_both_spellings(backend: Backend) {
    let (server, sink) = TestServer::with_sink(backend, &[]).await;
    server
        .create_user("default", "ann@example.com", PASSWORD)
        .await;
    let ask = |email: &'static str, path: &'static str| {
        let server = &server;
        async move {
            let response = server
                .post_from(path, &json!({"email": email}), &unique_ip())
                .await;
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };
    let known = ask("ann@example.com", "/api/forgot-passsword").await;
    let unknown = ask("nobody@example.com", "/api/forgot-passsword").await;
    assert_eq!(known, unknown);
    assert_eq!(known, (200, r#"{"status":"ok"}"#.to_owned()));
    let link = sink.wait_for("ann@example.com", 1).await.remove(0).token();
    let reset = server
        .post_from(
            "/api/reset-passsword",
            &json!({"token": link, "newPassword": NEW_PASSWORD}),
            &unique_ip(),
        )
        .await;
    assert_eq!(reset.status(), 200);
    assert_eq!(reset.text().await.unwrap(), r#"{"status":"ok"}"#);
    server
        .login("default", "ann@example.com", NEW_PASSWORD)
        .await;
    let spent = server
        .post_from(
            "/api/reset-passsword",
            &json!({"token": link, "newPassword": PASSWORD}),
            &unique_ip(),
        )
        .await;
    assert_problem(spent, 400, "invalid_link").await;

    // The two-s spellings answer the same way.
    assert_eq!(
        ask("ann@example.com", "/api/forgot-password").await,
        (200, r#"{"status":"ok"}"#.to_owned())
    );
    let link = sink.wait_for("ann@example.com", 3).await.remove(2).token();
    let reset = server
        .post_from(
            "/api/reset-password",
            &json!({"token": link, "newPassword": PASSWORD}),
            &unique_ip(),
        )
        .await;
    assert_eq!(reset.status(), 200);
    server.login("default", "ann@example.com", PASSWORD).await;
}
both!(forgotten_passwords_under_both_spellings);

async fn exist_email_answers_unless_the_tenant_turned_it_off(backend: Backend) {
    let server = TestServer::start(backend).await;
    server
        .create_user("default", "ann@example.com", PASSWORD)
        .await;
    let ask = |path: String| {
        let server = &server;
        async move {
            let response = server.get_fresh(&path, None).await;
            assert_eq!(response.status(), 200);
            response.text().await.unwrap()
        }
    };
    assert_eq!(ask("/api/exist-email/ann@example.com".into()).await, "true");
    assert_eq!(ask("/api/exist-email/ANN@example.com".into()).await, "true");
    assert_eq!(
        ask("/api/exist-email/bob@example.com".into()).await,
        "false"
    );
    assert_eq!(ask("/api/exist-email/not-an-address".into()).await, "false");
    // Limited like sign-in: five a minute per IP.
    for _ in 0..5 {
        let response = server
            .http
            .get(server.url("/api/exist-email/bob@example.com"))
            .header("x-tessera-edge-secret", common::EDGE_SECRET)
            .header("x-tessera-client-ip", "192.0.2.77")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let limited = server
        .http
        .get(server.url("/api/exist-email/bob@example.com"))
        .header("x-tessera-edge-secret", common::EDGE_SECRET)
        .header("x-tessera-client-ip", "192.0.2.77")
        .send()
        .await
        .unwrap();
    assert_problem(limited, 429, "rate_limited").await;

    let slug = TenantSlug::parse("default").unwrap();
    let policy = TenantPolicy {
        email_lookup: false,
        ..TenantPolicy::default()
    };
    server
        .state
        .store
        .update_tenant(&slug, &policy.into())
        .await
        .unwrap();
    // Nodes see a tenant's changed rules within the directory's 30 s.
    server.clock.advance(Duration::from_secs(31));
    let off = server
        .get_fresh("/api/exist-email/ann@example.com", None)
        .await;
    assert_problem(off, 403, "exist_email_disabled").await;
}
both!(exist_email_answers_unless_the_tenant_turned_it_off);

async fn one_user_signs_in_through_all_four_apis(backend: Backend) {
    let (server, sink) = TestServer::with_sink(backend, &[]).await;
    tokens(register(&server, "ann@example.com").await).await;
    sink.wait_for("ann@example.com", 1).await;
    // The canonical API.
    let canonical = server.login("default", "ann@example.com", PASSWORD).await;
    assert!(canonical["access_token"].is_string());
    // Back Office v2.
    let office = server
        .post_from(
            "/api/v2/signin",
            &json!({"email": "ann@example.com", "password": PASSWORD}),
            &unique_ip(),
        )
        .await;
    assert_eq!(office.status(), 200);
    let office: Value = office.json().await.unwrap();
    assert_eq!(office["2faRequired"], false);
    // VoiceStamp v1.
    let asked = server
        .post_from(
            "/api/v1/auth/login",
            &json!({"email": "ann@example.com"}),
            &unique_ip(),
        )
        .await;
    assert_eq!(asked.status(), 200);
    let code = sink.wait_for("ann@example.com", 2).await.remove(1).code();
    let voice = server
        .post_from(
            "/api/v1/auth/verify-code",
            &json!({"email": "ann@example.com", "code": code}),
            &unique_ip(),
        )
        .await;
    assert_eq!(voice.status(), 200);
    let voice: Value = voice.json().await.unwrap();
    // Every API's token names the same user.
    let id = claims(canonical["access_token"].as_str().unwrap())["sub"].clone();
    assert_eq!(voice["data"]["user"]["id"], id);
    assert_eq!(
        claims(office["accessToken"]["token"].as_str().unwrap())["sub"],
        id
    );
}
both!(one_user_signs_in_through_all_four_apis);

async fn a_confirmation_link_signs_in_no_disabled_account(backend: Backend) {
    let (server, sink) = TestServer::with_sink(backend, &[]).await;
    tokens(register(&server, "ann@example.com").await).await;
    let link = sink.wait_for("ann@example.com", 1).await.remove(0).token();
    let slug = TenantSlug::parse("default").unwrap();
    let ann = tessera_core::model::Email::parse("ann@example.com").unwrap();
    let mut tx = server.state.store.write(&slug).await.unwrap();
    let user = tx.users().by_email(&ann).await.unwrap().unwrap();
    tx.users().set_disabled(&user.id, true, 0).await.unwrap();
    tx.commit().await.unwrap();
    let confirmed = server
        .get_fresh(&format!("/api/verify-email/{link}"), None)
        .await;
    assert_problem(confirmed, 401, "invalid_credentials").await;
}
both!(a_confirmation_link_signs_in_no_disabled_account);

/// What the store holds for Ann that a sign-in could add to: mail rows of the tenant (a
/// challenge code is one) and her active sessions.
async fn mail_and_sessions(server: &TestServer) -> (i64, usize) {
    let slug = TenantSlug::parse("default").unwrap();
    let ann = tessera_core::model::Email::parse("ann@example.com").unwrap();
    let mut tx = server.state.store.read(&slug).await.unwrap();
    let (pending, _, sent, failed) = tx.outbox().counts().await.unwrap();
    let user = tx.users().by_email(&ann).await.unwrap().unwrap();
    let sessions = tx.sessions().active_for(&user.id, 0).await.unwrap();
    (pending + sent + failed, sessions.len())
}

/// This API has no second step: an account with a second factor is refused after its correct
/// password, and no code is emailed and no session opened for a step nobody can take.
async fn login_with_a_second_factor_is_refused_and_sends_nothing(backend: Backend) {
    let (server, sink) = TestServer::with_sink(backend, &[]).await;
    tokens(register(&server, "ann@example.com").await).await;
    // A second factor goes to a confirmed address.
    let link = sink.wait_for("ann@example.com", 1).await.remove(0).token();
    let confirmed = server
        .get_fresh(&format!("/api/verify-email/{link}"), None)
        .await;
    let (user, _) = tokens(confirmed).await;
    let on = server
        .put_auth(
            "/api/auth/mfa/email",
            &user,
            &json!({"enabled": true, "password": PASSWORD}),
        )
        .await;
    assert_eq!(on.status(), 200);
    let before = mail_and_sessions(&server).await;
    let login = sign_in(&server, PASSWORD).await;
    assert_problem(login, 403, "mfa_required").await;
    assert_eq!(mail_and_sessions(&server).await, before);
}
both!(login_with_a_second_factor_is_refused_and_sends_nothing);
