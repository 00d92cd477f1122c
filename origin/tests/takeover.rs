//! Account takeover, performed as an attacker would (issue 24): each test is one attack that
//! worked before its fix, on SQLite and PostgreSQL. docs/SECURITY.md lists them.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;

use common::{assert_problem, Backend, TestServer, PASSWORD};
use serde_json::json;

/// The JSON answer to a POST from a new client address.
async fn answer(server: &TestServer, path: &str, body: serde_json::Value) -> serde_json::Value {
    server
        .post_from(path, &body, &common::unique_ip())
        .await
        .json()
        .await
        .unwrap()
}

/// Item 5: a stolen access token guesses the password behind it (password change, second
/// factor changes) from a new address each time. The per-IP limit never bites; the account's
/// does: five wrong guesses a minute, then 429 even for the right password.
async fn a_stolen_token_guesses_the_password_at_most_five_times_a_minute(backend: Backend) {
    let server = TestServer::start(backend).await;
    server
        .create_user("default", "ann@example.com", PASSWORD)
        .await;
    let tokens = server.login("default", "ann@example.com", PASSWORD).await;
    let stolen = tokens["access_token"].as_str().unwrap();
    // Every request of send_auth comes from a new client address.
    for guess in 0..5 {
        let change = json!({
            "current_password": format!("guess number {guess} of many"),
            "new_password": "the attacker's own passphrase",
        });
        let refused = server
            .post_auth("/api/auth/password", stolen, &change)
            .await;
        assert_problem(refused, 403, "wrong_password").await;
    }
    // The other routes that check a secret behind the token share the account's budget of
    // their class: the emailed factor's switch is a credential route too.
    let email = json!({"enabled": false, "password": PASSWORD});
    let limited = server.put_auth("/api/auth/mfa/email", stolen, &email).await;
    assert_problem(limited, 429, "rate_limited").await;
    let right =
        json!({"current_password": PASSWORD, "new_password": "the attacker's own passphrase"});
    let limited = server.post_auth("/api/auth/password", stolen, &right).await;
    assert_eq!(limited.status(), 429);
    assert!(limited.headers().contains_key("retry-after"));

    // A minute on, the owner (or anyone with the password) gets through.
    server.clock.advance(std::time::Duration::from_secs(61));
    let ok = server.post_auth("/api/auth/password", stolen, &right).await;
    assert_eq!(ok.status(), 204);
}
both!(a_stolen_token_guesses_the_password_at_most_five_times_a_minute);

/// Item 6: whoever holds an IPv6 /64 picks a new address for every request. Per-IP limits
/// charge the network, so the sixth refresh guess a minute from one /64 is refused, while
/// another /64 has its own budget.
async fn an_ipv6_network_shares_one_per_ip_budget(backend: Backend) {
    let server = TestServer::start(backend).await;
    let guess = json!({"refresh_token": "tsr_rt_default_not-a-real-token"});
    for n in 1..=5 {
        let ip = format!("2001:db8:aa:bb:{n:x}::{n:x}");
        let refused = server.post_from("/api/auth/refresh", &guess, &ip).await;
        assert_eq!(refused.status(), 401, "{ip}");
    }
    let limited = server
        .post_from("/api/auth/refresh", &guess, "2001:db8:aa:bb:ffff:1:2:3")
        .await;
    assert_problem(limited, 429, "rate_limited").await;
    let elsewhere = server
        .post_from("/api/auth/refresh", &guess, "2001:db8:aa:cc::1")
        .await;
    assert_eq!(elsewhere.status(), 401);
    // An IPv4 client keeps its own address as its subject.
    let v4 = server
        .post_from("/api/auth/refresh", &guess, "192.0.2.200")
        .await;
    assert_eq!(v4.status(), 401);
}
both!(an_ipv6_network_shares_one_per_ip_budget);

/// Item 6, configured: `TESSERA_IPV6_PREFIX=128` keys every IPv6 address on its own (a network
/// known to give each client one address).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ipv6_prefix_is_configurable() {
    let server = TestServer::start_with(Backend::Sqlite, &[("TESSERA_IPV6_PREFIX", "128")]).await;
    let guess = json!({"refresh_token": "tsr_rt_default_not-a-real-token"});
    for n in 1..=6 {
        let ip = format!("2001:db8:aa:bb::{n:x}");
        let refused = server.post_from("/api/auth/refresh", &guess, &ip).await;
        assert_eq!(refused.status(), 401, "{ip}");
    }
}

/// Item 2: an access token of a canonical or Back Office session, found expired in an
/// application's log, renews at the team/vault API's `GET /api/refresh` every 15 minutes until
/// day 7. Only sessions that API opened renew that way.
async fn an_expired_access_token_of_another_api_does_not_renew(backend: Backend) {
    let server = TestServer::start(backend).await;
    server
        .create_user("default", "ann@example.com", PASSWORD)
        .await;
    let canonical = server.login("default", "ann@example.com", PASSWORD).await;
    let canonical = canonical["access_token"].as_str().unwrap().to_owned();
    let back_office: serde_json::Value = answer(
        &server,
        "/api/v2/signin",
        json!({"email": "ann@example.com", "password": PASSWORD}),
    )
    .await;
    let back_office = back_office["accessToken"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let team_vault: serde_json::Value = answer(
        &server,
        "/api/login",
        json!({"email": "ann@example.com", "password": PASSWORD}),
    )
    .await;
    let team_vault = team_vault["userToken"].as_str().unwrap().to_owned();

    // A day later every access token has long expired; every session is still active.
    server.clock.advance(std::time::Duration::from_secs(86_400));
    for (api, found) in [("canonical", &canonical), ("Back Office", &back_office)] {
        let renewed = server.get_fresh("/api/refresh", Some(found)).await;
        assert_eq!(
            renewed.status(),
            401,
            "a {api} session's expired token renewed"
        );
    }
    // Not even while it is valid: the route renews team/vault sessions only.
    let fresh = server.login("default", "ann@example.com", PASSWORD).await;
    let fresh = fresh["access_token"].as_str().unwrap();
    assert_eq!(
        server.get_fresh("/api/refresh", Some(fresh)).await.status(),
        401
    );
    // The team/vault session's own token renews, as its API documents.
    let renewed = server.get_fresh("/api/refresh", Some(&team_vault)).await;
    assert_eq!(renewed.status(), 200);
}
both!(an_expired_access_token_of_another_api_does_not_renew);

/// Item 2: the idle limit holds for team/vault renewals too. A session renewed within the limit
/// lives on (each renewal is its last use); one left idle past it ends at its next renewal.
async fn a_team_vault_session_idle_past_the_limit_ends(backend: Backend) {
    let server = TestServer::start_with(backend, &[("TESSERA_SESSION_IDLE_SECS", "3600")]).await;
    server
        .create_user("default", "ann@example.com", PASSWORD)
        .await;
    let signed_in: serde_json::Value = answer(
        &server,
        "/api/login",
        json!({"email": "ann@example.com", "password": PASSWORD}),
    )
    .await;
    let token = signed_in["userToken"].as_str().unwrap().to_owned();
    for _ in 0..3 {
        server.clock.advance(std::time::Duration::from_secs(3_000));
        let renewed = server.get_fresh("/api/refresh", Some(&token)).await;
        assert_eq!(renewed.status(), 200, "renewed within the idle limit");
    }
    server.clock.advance(std::time::Duration::from_secs(3_601));
    let idle = server.get_fresh("/api/refresh", Some(&token)).await;
    assert_problem(idle, 401, "invalid_token").await;
    let events = server.audit_events("default").await;
    assert_eq!(events[0], "session_idle_timeout", "{events:?}");
    // Ended for good: not even a renewal at once works.
    let again = server.get_fresh("/api/refresh", Some(&token)).await;
    assert_eq!(again.status(), 401);
}
both!(a_team_vault_session_idle_past_the_limit_ends);

/// The attacker of item 3: registers the victim's address with a password of their own and
/// keeps a session open. Answers that session's tokens.
async fn squat(server: &TestServer) -> serde_json::Value {
    let registered = server
        .post_from(
            "/api/auth/register",
            &json!({"tenant": "default", "email": "victim@example.com", "password": PASSWORD}),
            &common::unique_ip(),
        )
        .await;
    assert_eq!(registered.status(), 201);
    server
        .login("default", "victim@example.com", PASSWORD)
        .await
}

/// Item 3: the victim later signs in with an emailed code, the first proof of the mailbox.
/// The squatter's session ends, their password no longer signs in, and the victim is told.
async fn a_pre_registered_address_is_taken_back_by_an_emailed_code(backend: Backend) {
    let (server, sink) = TestServer::with_sink(backend, &[]).await;
    let squatter = squat(&server).await;
    // The confirmation link goes to the victim, who ignores it.
    sink.wait_for("victim@example.com", 1).await;
    server
        .post_from(
            "/api/auth/email-code",
            &json!({"tenant": "default", "email": "victim@example.com"}),
            &common::unique_ip(),
        )
        .await;
    let code = sink.next_to("victim@example.com", 1).await.code();
    let signed_in = server
        .post_from(
            "/api/auth/email-code/verify",
            &json!({"tenant": "default", "email": "victim@example.com", "code": code}),
            &common::unique_ip(),
        )
        .await;
    assert_eq!(signed_in.status(), 200);

    server.clock.advance(std::time::Duration::from_secs(2));
    let access = squatter["access_token"].as_str().unwrap();
    assert_eq!(server.get_auth("/api/auth/me", access).await.status(), 401);
    assert_eq!(server.refresh(&squatter).await.status(), 401);
    let login = json!({"tenant": "default", "email": "victim@example.com", "password": PASSWORD});
    let refused = server
        .post_from("/api/auth/login", &login, &common::unique_ip())
        .await;
    assert_problem(refused, 401, "invalid_credentials").await;
    let told = sink.next_to("victim@example.com", 2).await;
    assert_eq!(told.subject, "Your account's earlier password was removed");
    let events = server.audit_events("default").await;
    assert!(
        events.iter().any(|e| e == "login_succeeded otp"),
        "{events:?}"
    );
}
both!(a_pre_registered_address_is_taken_back_by_an_emailed_code);

/// Item 3: the squatter also enrolled an authenticator app (they know the password they set);
/// the victim's reset link, the first proof of the mailbox, removes it with the squatter's
/// sessions, and the new password alone signs in.
async fn a_pre_registered_address_is_taken_back_by_a_reset(backend: Backend) {
    let (server, sink) = TestServer::with_sink(backend, &[]).await;
    let squatter = squat(&server).await;
    let access = squatter["access_token"].as_str().unwrap();
    server.enrol_totp(access, PASSWORD).await;
    // The confirmation link and the notice of the new factor go to the victim.
    let seen = sink.wait_for("victim@example.com", 2).await.len();

    server
        .post_from(
            "/api/auth/forgot-password",
            &json!({"tenant": "default", "email": "victim@example.com"}),
            &common::unique_ip(),
        )
        .await;
    let link = sink.next_to("victim@example.com", seen).await.token();
    let new_password = "the rightful owner's passphrase";
    let reset = server
        .post_from(
            "/api/auth/reset-password",
            &json!({"token": link, "password": new_password}),
            &common::unique_ip(),
        )
        .await;
    assert!(reset.status().is_success(), "{}", reset.status());
    server.clock.advance(std::time::Duration::from_secs(2));
    assert_eq!(server.get_auth("/api/auth/me", access).await.status(), 401);
    // No challenge: the squatter's app is gone.
    let tokens = server
        .login("default", "victim@example.com", new_password)
        .await;
    assert!(tokens["access_token"].is_string(), "{tokens}");
}
both!(a_pre_registered_address_is_taken_back_by_a_reset);

/// Item 3: the victim only clicks the confirmation link. The squatter keeps the password they
/// set (the link is the registrant's to click), but not the session they opened before it.
async fn the_confirmation_link_ends_sessions_opened_before_it(backend: Backend) {
    let (server, sink) = TestServer::with_sink(backend, &[]).await;
    let squatter = squat(&server).await;
    let link = sink
        .wait_for("victim@example.com", 1)
        .await
        .remove(0)
        .token();
    let confirmed = server
        .post_from(
            "/api/auth/verify-email",
            &json!({"token": link}),
            &common::unique_ip(),
        )
        .await;
    assert_eq!(confirmed.status(), 200);
    server.clock.advance(std::time::Duration::from_secs(2));
    let access = squatter["access_token"].as_str().unwrap();
    assert_eq!(server.get_auth("/api/auth/me", access).await.status(), 401);
    assert_eq!(server.refresh(&squatter).await.status(), 401);
    let events = server.audit_events("default").await;
    assert!(
        events
            .iter()
            .any(|e| e == "email_verified sessions_ended=1"),
        "{events:?}"
    );
}
both!(the_confirmation_link_ends_sessions_opened_before_it);

/// Item 7: CORS preflights were answered before any limit, each looking up the tenant its
/// made-up `X-Tenant` names. They are charged as every other request is (30 a minute per IP),
/// before the look-up.
async fn preflights_are_limited_before_the_tenant_is_looked_up(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut statuses = Vec::new();
    for n in 0..31 {
        let response = server
            .http
            .request(reqwest::Method::OPTIONS, server.url("/api/auth/login"))
            .header("x-tessera-edge-secret", common::EDGE_SECRET)
            .header("x-tessera-client-ip", "192.0.2.31")
            .header("origin", "https://app.example")
            .header("access-control-request-method", "POST")
            .header("x-tenant", format!("made-up-{n}"))
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
    }
    assert!(statuses[..30].iter().all(|s| *s == 204), "{statuses:?}");
    assert_eq!(statuses[30], 429);
}
both!(preflights_are_limited_before_the_tenant_is_looked_up);
