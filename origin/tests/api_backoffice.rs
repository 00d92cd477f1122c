//! Back Office v2 (`/api/v2/*`) as its document shows it, on SQLite and PostgreSQL: sign-in
//! with and without 2FA, 2FA confirmation, refresh rotating both tokens, sign-out, and the
//! document's limits (sign-in 5 a minute per account even from other addresses, 2FA confirm 3
//! a minute).

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;

use common::{assert_problem, unique_ip, Backend, TestServer, PASSWORD};
use serde_json::{json, Value};
use tessera_origin::clock::Clock as _;

/// `2022-01-01T00:00:00+00:00` as the document writes times; answers Unix seconds.
fn document_time(value: &Value) -> i64 {
    let text = value.as_str().expect("a string time");
    assert!(text.ends_with("+00:00") && text.len() == 25, "{text}");
    let parsed = time_of(&text.replace("+00:00", "Z"));
    assert!(parsed > 1_600_000_000, "{text}");
    parsed
}

fn time_of(rfc3339: &str) -> i64 {
    let days = |y: i64, m: i64, d: i64| {
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let mp = (m + 9) % 12;
        let doy = (153 * mp + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    };
    let n = |range: std::ops::Range<usize>| rfc3339[range].parse::<i64>().unwrap();
    days(n(0..4), n(5..7), n(8..10)) * 86_400 + n(11..13) * 3600 + n(14..16) * 60 + n(17..19)
}

fn assert_token_pair(body: &Value) {
    for name in ["accessToken", "refreshToken"] {
        let token = &body[name];
        assert!(
            token["token"].as_str().is_some_and(|t| !t.is_empty()),
            "{body}"
        );
        let created = document_time(&token["createdAt"]);
        let expires = document_time(&token["expiresAt"]);
        let lifetime = if name == "accessToken" {
            900
        } else {
            7 * 86_400
        };
        assert_eq!(expires - created, lifetime, "{name}: {body}");
    }
}

async fn sign_in(server: &TestServer, email: &str, password: &str, ip: &str) -> reqwest::Response {
    server
        .post_from(
            "/api/v2/signin",
            &json!({"email": email, "password": password}),
            ip,
        )
        .await
}

async fn sign_in_refresh_and_sign_out(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.create_user("default", "foo@bar.com", PASSWORD).await;

    let response = sign_in(&server, "foo@bar.com", PASSWORD, &unique_ip()).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["2faRequired"], false, "{body}");
    assert!(body.get("2faDetails").is_none(), "{body}");
    assert_token_pair(&body);

    // Refresh rotates both; the old refresh token is spent, and reusing it ends the family.
    let old_refresh = body["refreshToken"]["token"].as_str().unwrap().to_owned();
    let response = server
        .post_from(
            "/api/v2/refresh",
            &json!({"refreshToken": old_refresh}),
            &unique_ip(),
        )
        .await;
    assert_eq!(response.status(), 200);
    let rotated: Value = response.json().await.unwrap();
    assert_token_pair(&rotated);
    assert_ne!(
        rotated["refreshToken"]["token"],
        body["refreshToken"]["token"]
    );
    assert_ne!(
        rotated["accessToken"]["token"],
        body["accessToken"]["token"]
    );
    server.clock.advance(std::time::Duration::from_secs(10));
    let reused = server
        .post_from(
            "/api/v2/refresh",
            &json!({"refreshToken": old_refresh}),
            &unique_ip(),
        )
        .await;
    assert_problem(reused, 401, "invalid_refresh_token").await;
    let family_over = server
        .post_from(
            "/api/v2/refresh",
            &json!({"refreshToken": rotated["refreshToken"]["token"]}),
            &unique_ip(),
        )
        .await;
    assert_problem(family_over, 401, "invalid_refresh_token").await;

    // Sign out: 200, then that access token gets 401.
    let body: Value = sign_in(&server, "foo@bar.com", PASSWORD, &unique_ip())
        .await
        .json()
        .await
        .unwrap();
    let access = body["accessToken"]["token"].as_str().unwrap();
    let verified = server.get_fresh("/api/auth/verify", Some(access)).await;
    assert_eq!(verified.status(), 200);
    let out = server
        .post_auth("/api/v2/signout", access, &json!({}))
        .await;
    assert_eq!(out.status(), 200);
    let after = server.get_fresh("/api/auth/verify", Some(access)).await;
    assert_problem(after, 401, "invalid_token").await;
    let again = server
        .post_auth("/api/v2/signout", access, &json!({}))
        .await;
    assert_problem(again, 401, "invalid_token").await;

    let wrong = sign_in(&server, "foo@bar.com", "not the password", &unique_ip()).await;
    assert_problem(wrong, 401, "invalid_credentials").await;
}
both!(sign_in_refresh_and_sign_out);

async fn two_factor_sign_in_by_emailed_code(backend: Backend) {
    let (server, sink) = TestServer::with_sink(backend, &[]).await;
    let id = server.create_user("default", "foo@bar.com", PASSWORD).await;
    // The emailed factor goes to a confirmed address only.
    let tenant = tessera_core::model::TenantSlug::parse("default").unwrap();
    let mut tx = server.state.store.write(&tenant).await.unwrap();
    tx.users()
        .mark_email_verified(&id, server.clock.now_secs())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let tokens = server.login("default", "foo@bar.com", PASSWORD).await;
    let access = tokens["access_token"].as_str().unwrap();
    let on = server
        .put_auth(
            "/api/auth/mfa/email",
            access,
            &json!({"enabled": true, "password": PASSWORD}),
        )
        .await;
    assert_eq!(on.status(), 200);

    let started = server.clock.now_secs();
    let response = sign_in(&server, "foo@bar.com", PASSWORD, &unique_ip()).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["2faRequired"], true, "{body}");
    assert!(body.get("accessToken").is_none(), "{body}");
    let details = &body["2faDetails"];
    assert_eq!(details["provider"], "email");
    assert_eq!(document_time(&details["expiresAt"]), started + 300);
    let token = details["token"].as_str().unwrap();
    // The owner is told of the factor turned on, then sent the code.
    let code = sink.wait_for("foo@bar.com", 2).await.remove(1).code();

    let ip = unique_ip();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let response = server
        .post_from(
            "/api/v2/2fa/confirm",
            &json!({"token": token, "code": wrong}),
            &ip,
        )
        .await;
    assert_problem(response, 400, "invalid_code").await;
    let response = server
        .post_from(
            "/api/v2/2fa/confirm",
            &json!({"token": token, "code": code}),
            &ip,
        )
        .await;
    assert_eq!(response.status(), 200);
    let pair: Value = response.json().await.unwrap();
    assert_token_pair(&pair);
    let spent = server
        .post_from(
            "/api/v2/2fa/confirm",
            &json!({"token": token, "code": code}),
            &ip,
        )
        .await;
    assert_problem(spent, 401, "invalid_mfa_token").await;
    // Three a minute per address: the fourth is refused.
    let limited = server
        .post_from(
            "/api/v2/2fa/confirm",
            &json!({"token": token, "code": code}),
            &ip,
        )
        .await;
    let body = assert_problem(limited, 429, "rate_limited").await;
    assert!(
        body["detail"].as_str().unwrap().contains("At most 3"),
        "{body}"
    );
}
both!(two_factor_sign_in_by_emailed_code);

async fn five_sign_ins_a_minute_per_account_then_locked_even_for_the_right_password(
    backend: Backend,
) {
    let server = TestServer::start(backend).await;
    server.create_user("default", "foo@bar.com", PASSWORD).await;
    for _ in 0..5 {
        let wrong = sign_in(&server, "foo@bar.com", "not the password", &unique_ip()).await;
        assert_eq!(wrong.status(), 401);
    }
    let locked = sign_in(&server, "foo@bar.com", PASSWORD, &unique_ip()).await;
    let retry_after: u64 = locked.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_problem(locked, 429, "rate_limited").await;
    // Another account is not locked.
    server.create_user("default", "bar@bar.com", PASSWORD).await;
    let other = sign_in(&server, "bar@bar.com", PASSWORD, &unique_ip()).await;
    assert_eq!(other.status(), 200);
    // After Retry-After the account signs in again.
    server
        .clock
        .advance(std::time::Duration::from_secs(retry_after));
    let back = sign_in(&server, "foo@bar.com", PASSWORD, &unique_ip()).await;
    assert_eq!(back.status(), 200);
}
both!(five_sign_ins_a_minute_per_account_then_locked_even_for_the_right_password);

async fn the_tenant_comes_from_x_tenant_else_the_default(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.create_tenant("acme").await;
    server.create_user("acme", "foo@bar.com", PASSWORD).await;
    let without = sign_in(&server, "foo@bar.com", PASSWORD, &unique_ip()).await;
    assert_problem(without, 401, "invalid_credentials").await;
    let with = server
        .http
        .post(server.url("/api/v2/signin"))
        .header("x-tenant", "acme")
        .json(&json!({"email": "foo@bar.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(with.status(), 200);
    let body: Value = with.json().await.unwrap();
    let access = body["accessToken"]["token"].as_str().unwrap();
    let verified: Value = server
        .get_fresh("/api/auth/verify", Some(access))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(verified["tenant"], "acme");
}
both!(the_tenant_comes_from_x_tenant_else_the_default);
