//! The email flows end to end, on SQLite and PostgreSQL, reading the messages a real SMTP
//! server process received: registration and confirmation (with the default team), resend,
//! forgotten passwords, sign-in by code, the emailed second factor, password changes and the
//! breached-password check.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{assert_problem, claims, free_port, unique_ip, Backend, TestServer, PASSWORD};
use serde_json::{json, Value};
use sha1::{Digest as _, Sha1};
use tessera_core::model::TenantSlug;
use tessera_origin::store::TenantPolicy;

const NEW_PASSWORD: &str = "a brand new and long passphrase";

async fn register(server: &TestServer, tenant: &str, email: &str, password: &str) -> (u16, String) {
    let response = server
        .post_from(
            "/api/auth/register",
            &json!({"tenant": tenant, "email": email, "password": password, "name": "Ann Lee"}),
            &unique_ip(),
        )
        .await;
    (response.status().as_u16(), response.text().await.unwrap())
}

async fn set_policy(server: &TestServer, tenant: &str, policy: TenantPolicy) {
    let slug = TenantSlug::parse(tenant).unwrap();
    server
        .state
        .store
        .update_tenant(&slug, &policy.into())
        .await
        .unwrap();
}

async fn registration_confirms_the_address_and_makes_a_team(backend: Backend) {
    let (server, sink) = TestServer::with_sink(backend, &[]).await;
    let (status, body) = register(&server, "default", "ann@example.com", PASSWORD).await;
    assert_eq!(status, 201, "{body}");
    let mail = sink.wait_for("ann@example.com", 1).await.remove(0);
    assert_eq!(mail.subject, "Confirm your email");
    assert!(mail.text.contains("Ann Lee"), "{}", mail.text);
    assert!(mail.html.contains("Confirm my email"));
    assert!(
        mail.link()
            .starts_with("https://auth.tessera.test/auth/verify-email?token=tsr_el_default_"),
        "{}",
        mail.link()
    );

    // Unverified users may sign in here; their tokens say so.
    let tokens = server.login("default", "ann@example.com", PASSWORD).await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    assert_eq!(claims(&access)["email_verified"], false);
    let me: Value = server
        .get_auth("/api/auth/me", &access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["email_verified"], false);
    assert_eq!(me["teams"], json!([]));

    // Opening the page (as a mail scanner would) does not use the token.
    let page = server
        .http
        .get(server.url(&format!("/auth/verify-email?token={}", mail.token())))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Confirm my email"));

    let verified = server
        .post_from(
            "/api/auth/verify-email",
            &json!({"token": mail.token()}),
            &unique_ip(),
        )
        .await;
    assert_eq!(verified.status(), 200);
    assert_eq!(
        verified.json::<Value>().await.unwrap(),
        json!({"email_verified": true})
    );
    let again = server
        .post_from(
            "/api/auth/verify-email",
            &json!({"token": mail.token()}),
            &unique_ip(),
        )
        .await;
    assert_problem(again, 400, "invalid_link").await;

    // The first proof of the mailbox ends every session opened before it (a pre-registered
    // address's squatter must not stay signed in): signed in again, the profile says so.
    server.clock.advance(Duration::from_secs(2));
    let ended = server.get_auth("/api/auth/me", &access).await;
    assert_eq!(ended.status(), 401);
    server.clock.advance(Duration::from_secs(60));
    let tokens = server.login("default", "ann@example.com", PASSWORD).await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let me: Value = server
        .get_auth("/api/auth/me", &access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["email_verified"], true);
    assert_eq!(me["teams"].as_array().unwrap().len(), 1, "{me}");
    assert_eq!(me["teams"][0]["name"], "Ann Lee's team");
    assert_eq!(me["teams"][0]["role"], "owner");
    assert_eq!(me["projects"].as_array().unwrap().len(), 1, "{me}");
    assert_eq!(me["projects"][0]["team_id"], me["teams"][0]["id"]);
    let fresh = server.login("default", "ann@example.com", PASSWORD).await;
    assert_eq!(
        claims(fresh["access_token"].as_str().unwrap())["email_verified"],
        true
    );
}
both!(registration_confirms_the_address_and_makes_a_team);

async fn registering_a_taken_address_answers_the_same_and_tells_its_owner(backend: Backend) {
    let (server, sink) = TestServer::with_sink(backend, &[]).await;
    let first = register(&server, "default", "ann@example.com", PASSWORD).await;
    sink.wait_for("ann@example.com", 1).await;
    let second = register(&server, "default", "ann@example.com", NEW_PASSWORD).await;
    assert_eq!(first, second, "identical status and body");
    let mails = sink.wait_for("ann@example.com", 2).await;
    assert_eq!(
        mails[1].subject,
        "Someone tried to register with your address"
    );
    // No second account: the second password does not sign in, the first still does.
    let response = server
        .post_from(
            "/api/auth/login",
            &json!({"tenant": "default", "email": "ann@example.com", "password": NEW_PASSWORD}),
            &unique_ip(),
        )
        .await;
    assert_problem(response, 401, "invalid_credentials").await;
    server.login("default", "ann@example.com", PASSWORD).await;

    // Bad input is a clear 4xx, and nothing is created.
    let (status, body) = register(&server, "default", "not-an-email", PASSWORD).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("invalid_email"));
    let (status, body) = register(&server, "default", "bob@example.com", "password").await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("weak_password"));
    let (status, _) = register(&server, "nowhere", "bob@example.com", PASSWORD).await;
    assert_eq!(status, 404);
}
both!(registering_a_taken_address_answers_the_same_and_tells_its_owner);

async fn tenants_can_close_registration_and_require_confirmed_addresses(backend: Backend) {
    let (server, sink) = TestServer::with_sink(backend, &[]).await;
    server.create_tenant("closed").await;
    set_policy(
        &server,
        "closed",
        TenantPolicy {
            registration_open: false,
            ..TenantPolicy::default()
        },
    )
    .await;
    let (status, body) = register(&server, "closed", "ann@example.com", PASSWORD).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("registration_closed"));

    server.create_tenant("strict").await;
    set_policy(
        &server,
        "strict",
        TenantPolicy {
            require_verified_email: true,
            ..TenantPolicy::default()
        },
    )
    .await;
    let (status, _) = register(&server, "strict", "ann@example.com", PASSWORD).await;
    assert_eq!(status, 201);
    let mail = sink.wait_for("ann@example.com", 1).await.remove(0);
    let login = json!({"tenant": "strict", "email": "ann@example.com", "password": PASSWORD});
    let refused = server
        .post_from("/api/auth/login", &login, &unique_ip())
        .await;
    assert_problem(refused, 403, "email_not_verified").await;
    // A wrong password still gets the one answer for every credential failure.
    let wrong = json!({"tenant": "strict", "email": "ann@example.com", "password": NEW_PASSWORD});
    let refused = server
        .post_from("/api/auth/login", &wrong, &unique_ip())
        .await;
    assert_problem(refused, 401, "invalid_credentials").await;
    let verified = server
        .post_from(
            "/api/auth/verify-email",
            &json!({"token": mail.token()}),
            &unique_ip(),
        )
        .await;
    assert_eq!(verified.status(), 200);
    let tokens = server.login("strict", "ann@example.com", PASSWORD).await;
    assert_eq!(
        claims(tokens["access_token"].as_str().unwrap())["email_verified"],
        true
    );
}
both!(tenants_can_close_registration_and_require_confirmed_addresses);

async fn resending_voids_the_old_link_and_is_limited(backend: Backend) {
    let (server, sink) = TestServer::with_sink(backend, &[]).await;
    register(&server, "default", "ann@example.com", PASSWORD).await;
    let first = sink.wait_for("ann@example.com", 1).await.remove(0);
    let tokens = server.login("default", "ann@example.com", PASSWORD).await;
    let access = tokens["access_token"].as_str().unwrap();
    let resend = server
        .post_auth("/api/auth/resend-verification", access, &json!({}))
        .await;
    assert_eq!(resend.status(), 202);
    let second = sink.next_to("ann@example.com", 1).await;
    assert_ne!(first.token(), second.token());
    // At most one a minute...
    let again = server
        .post_auth("/api/auth/resend-verification", access, &json!({}))
        .await;
    assert_problem(again, 429, "rate_limited").await;
    // ... and five an hour.
    for n in 2..=5 {
        server.clock.advance(Duration::from_secs(61));
        let resend = server
            .post_auth("/api/auth/resend-verification", access, &json!({}))
            .await;
        assert_eq!(resend.status(), 202, "resend {n}");
        // Each delivered before the next is asked for, so that the newest is known.
        sink.wait_for("ann@example.com", n + 1).await;
    }
    server.clock.advance(Duration::from_secs(61));
    let sixth = server
        .post_auth("/api/auth/resend-verification", access, &json!({}))
        .await;
    assert_problem(sixth, 429, "rate_limited").await;
    let last = sink.messages_to("ann@example.com").pop().unwrap();
    // Every link but the newest is void.
    for stale in [&first, &second] {
        let response = server
            .post_from(
                "/api/auth/verify-email",
                &json!({"token": stale.token()}),
                &unique_ip(),
            )
            .await;
        assert_problem(response, 400, "invalid_link").await;
    }
    let ok = server
        .post_from(
            "/api/auth/verify-email",
            &json!({"token": last.token()}),
            &unique_ip(),
        )
        .await;
    assert_eq!(ok.status(), 200);
    // A confirmed address needs no link: 409, whatever the limits (the confirmation ended the
    // session opened before it; a new one asks).
    let tokens = server.login("default", "ann@example.com", PASSWORD).await;
    let access = tokens["access_token"].as_str().unwrap();
    let done = server
        .post_auth("/api/auth/resend-verification", access, &json!({}))
        .await;
    assert_problem(done, 409, "already_verified").await;
}
both!(resending_voids_the_old_link_and_is_limited);

async fn a_password_reset_ends_every_session(backend: Backend) {
    let (server, sink) = TestServer::with_sink(backend, &[]).await;
    server
        .create_user("default", "ann@example.com", PASSWORD)
        .await;
    let one = server.login("default", "ann@example.com", PASSWORD).await;
    let two = server.login("default", "ann@example.com", PASSWORD).await;

    let forgot = |email: &'static str| {
        let server = &server;
        async move {
            let response = server
                .post_from(
                    "/api/auth/forgot-password",
                    &json!({"tenant": "default", "email": email}),
                    &unique_ip(),
                )
                .await;
            (response.status().as_u16(), response.bytes().await.unwrap())
        }
    };
    let known = forgot("ann@example.com").await;
    let unknown = forgot("nobody@example.com").await;
    assert_eq!(known.0, 202);
    assert_eq!(known, unknown, "byte-identical answers");
    let older = sink.wait_for("ann@example.com", 1).await.remove(0);
    assert_eq!(older.subject, "Reset your password");
    forgot("ann@example.com").await;
    let newer = sink.next_to("ann@example.com", 1).await;
    assert!(newer
        .link()
        .starts_with("https://auth.tessera.test/auth/reset-password?token="));

    let reset = |token: String, password: &'static str| {
        let server = &server;
        async move {
            server
                .post_from(
                    "/api/auth/reset-password",
                    &json!({"token": token, "password": password}),
                    &unique_ip(),
                )
                .await
        }
    };
    // A newer request voids the older link; a weak password is refused without using the link.
    assert_problem(
        reset(older.token(), NEW_PASSWORD).await,
        400,
        "invalid_link",
    )
    .await;
    assert_problem(reset(newer.token(), "password").await, 400, "weak_password").await;
    let done = reset(newer.token(), NEW_PASSWORD).await;
    assert_eq!(done.status(), 200);
    assert_problem(
        reset(newer.token(), NEW_PASSWORD).await,
        400,
        "invalid_link",
    )
    .await;

    let changed = sink.next_to("ann@example.com", 2).await;
    assert_eq!(changed.subject, "Your password was changed");
    for tokens in [&one, &two] {
        let me = server
            .get_auth("/api/auth/me", tokens["access_token"].as_str().unwrap())
            .await;
        assert_eq!(me.status(), 401);
        let refresh = server
            .post_from(
                "/api/auth/refresh",
                &json!({"refresh_token": tokens["refresh_token"]}),
                &unique_ip(),
            )
            .await;
        assert_eq!(refresh.status(), 401);
    }
    let old = json!({"tenant": "default", "email": "ann@example.com", "password": PASSWORD});
    assert_problem(
        server
            .post_from("/api/auth/login", &old, &unique_ip())
            .await,
        401,
        "invalid_credentials",
    )
    .await;
    server
        .login("default", "ann@example.com", NEW_PASSWORD)
        .await;

    // Nobody else got mail, and a link expires after 30 minutes.
    assert!(sink.messages_to("nobody@example.com").is_empty());
    forgot("ann@example.com").await;
    let late = sink.next_to("ann@example.com", 3).await;
    server.clock.advance(Duration::from_secs(31 * 60));
    assert_problem(reset(late.token(), PASSWORD).await, 400, "invalid_link").await;
}
both!(a_password_reset_ends_every_session);

async fn sign_in_by_emailed_code(backend: Backend) {
    let (server, sink) = TestServer::with_sink(backend, &[]).await;
    server
        .create_user("default", "ann@example.com", PASSWORD)
        .await;
    let request = |email: &'static str| {
        let server = &server;
        async move {
            let response = server
                .post_from(
                    "/api/auth/email-code",
                    &json!({"tenant": "default", "email": email}),
                    &unique_ip(),
                )
                .await;
            (response.status().as_u16(), response.bytes().await.unwrap())
        }
    };
    let verify = |code: String| {
        let server = &server;
        async move {
            // Three code checks a minute per account: the clock moves past that limit.
            server.clock.advance(Duration::from_secs(21));
            server
                .post_from(
                    "/api/auth/email-code/verify",
                    &json!({"tenant": "default", "email": "ann@example.com", "code": code}),
                    &unique_ip(),
                )
                .await
        }
    };
    let known = request("ann@example.com").await;
    assert_eq!(
        known,
        request("nobody@example.com").await,
        "byte-identical answers"
    );
    assert_eq!(known.0, 202);
    let first = sink.wait_for("ann@example.com", 1).await.remove(0);
    assert_eq!(first.subject, "Your sign-in code");
    let code = first.code();
    let wrong = if code == "000000" { "111111" } else { "000000" }.to_owned();

    // Five wrong codes end the code: the right one then fails too.
    for _ in 0..5 {
        assert_problem(verify(wrong.clone()).await, 400, "invalid_code").await;
    }
    assert_problem(verify(code).await, 400, "invalid_code").await;

    // A new code voids the previous one.
    request("ann@example.com").await;
    let second = sink.next_to("ann@example.com", 1).await;
    request("ann@example.com").await;
    let third = sink.next_to("ann@example.com", 2).await;
    if second.code() != third.code() {
        assert_problem(verify(second.code()).await, 400, "invalid_code").await;
    }
    let signed_in = verify(third.code()).await;
    assert_eq!(signed_in.status(), 200);
    let tokens: Value = signed_in.json().await.unwrap();
    assert_eq!(
        claims(tokens["access_token"].as_str().unwrap())["amr"],
        json!(["otp"])
    );
    assert_problem(verify(third.code()).await, 400, "invalid_code").await;
    assert!(sink.messages_to("nobody@example.com").is_empty());
}
both!(sign_in_by_emailed_code);

async fn the_emailed_second_factor(backend: Backend) {
    let (server, sink) = TestServer::with_sink(backend, &[]).await;
    let ann = server
        .create_user("default", "ann@example.com", PASSWORD)
        .await;
    let slug = TenantSlug::parse("default").unwrap();
    let mut tx = server.state.store.write(&slug).await.unwrap();
    tx.users().mark_email_verified(&ann, 1).await.unwrap();
    tx.commit().await.unwrap();
    let plain = server.login("default", "ann@example.com", PASSWORD).await;
    let access = plain["access_token"].as_str().unwrap();

    // Turning it on takes the password.
    let wrong = server
        .put_auth(
            "/api/auth/mfa/email",
            access,
            &json!({"enabled": true, "password": NEW_PASSWORD}),
        )
        .await;
    assert_problem(wrong, 403, "wrong_password").await;
    let on = server
        .put_auth(
            "/api/auth/mfa/email",
            access,
            &json!({"enabled": true, "password": PASSWORD}),
        )
        .await;
    assert_eq!(on.status(), 200);

    let login = json!({"tenant": "default", "email": "ann@example.com", "password": PASSWORD});
    let challenged = server
        .post_from("/api/auth/login", &login, &unique_ip())
        .await;
    assert_eq!(challenged.status(), 200);
    let challenge: Value = challenged.json().await.unwrap();
    assert_eq!(challenge["mfa_required"], true);
    assert_eq!(challenge["methods"], json!(["email"]));
    assert_eq!(challenge["expires_in"], 300);
    assert!(challenge.get("access_token").is_none());
    let mfa_token = challenge["mfa_token"].as_str().unwrap().to_owned();
    // The mfa_token is never an access token.
    assert_eq!(
        server.get_auth("/api/auth/me", &mfa_token).await.status(),
        401
    );
    // The owner is told of the factor turned on, then sent the code.
    let mail = sink.wait_for("ann@example.com", 2).await.remove(1);
    assert_eq!(mail.subject, "Your sign-in code");
    let code = mail.code();
    let answer = |code: String| {
        let server = &server;
        let mfa_token = mfa_token.clone();
        async move {
            server.clock.advance(Duration::from_secs(21));
            server
                .post_from(
                    "/api/auth/mfa/verify",
                    &json!({"mfa_token": mfa_token, "code": code}),
                    &unique_ip(),
                )
                .await
        }
    };
    let wrong_code = if code == "000000" { "111111" } else { "000000" }.to_owned();
    assert_problem(answer(wrong_code).await, 400, "invalid_code").await;
    let done = answer(code.clone()).await;
    assert_eq!(done.status(), 200);
    let tokens: Value = done.json().await.unwrap();
    assert_eq!(
        claims(tokens["access_token"].as_str().unwrap())["amr"],
        json!(["pwd", "otp"])
    );
    assert_problem(answer(code).await, 401, "invalid_mfa_token").await;

    // Five wrong codes end a challenge; a challenge ends after 5 minutes.
    let challenge: Value = server
        .post_from("/api/auth/login", &login, &unique_ip())
        .await
        .json()
        .await
        .unwrap();
    let second = challenge["mfa_token"].as_str().unwrap().to_owned();
    let code = sink.next_to("ann@example.com", 2).await.code();
    let wrong_code = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..5 {
        server.clock.advance(Duration::from_secs(21));
        let response = server
            .post_from(
                "/api/auth/mfa/verify",
                &json!({"mfa_token": second, "code": wrong_code}),
                &unique_ip(),
            )
            .await;
        assert_problem(response, 400, "invalid_code").await;
    }
    let response = server
        .post_from(
            "/api/auth/mfa/verify",
            &json!({"mfa_token": second, "code": code}),
            &unique_ip(),
        )
        .await;
    assert_problem(response, 401, "invalid_mfa_token").await;
    let challenge: Value = server
        .post_from("/api/auth/login", &login, &unique_ip())
        .await
        .json()
        .await
        .unwrap();
    let code = sink.next_to("ann@example.com", 3).await.code();
    server.clock.advance(Duration::from_secs(301));
    let response = server
        .post_from(
            "/api/auth/mfa/verify",
            &json!({"mfa_token": challenge["mfa_token"], "code": code}),
            &unique_ip(),
        )
        .await;
    assert_problem(response, 401, "invalid_mfa_token").await;

    // An emailed sign-in code cannot skip the password of such an account.
    server
        .post_from(
            "/api/auth/email-code",
            &json!({"tenant": "default", "email": "ann@example.com"}),
            &unique_ip(),
        )
        .await;
    let code = sink.next_to("ann@example.com", 4).await.code();
    let response = server
        .post_from(
            "/api/auth/email-code/verify",
            &json!({"tenant": "default", "email": "ann@example.com", "code": code}),
            &unique_ip(),
        )
        .await;
    assert_problem(response, 403, "mfa_required").await;

    // In a tenant that requires a second factor, a user with the emailed one answers it.
    server.create_tenant("secure").await;
    set_policy(
        &server,
        "secure",
        TenantPolicy {
            require_mfa: true,
            ..TenantPolicy::default()
        },
    )
    .await;
    let bob = server
        .create_user("secure", "bob@example.com", PASSWORD)
        .await;
    let slug = TenantSlug::parse("secure").unwrap();
    let mut tx = server.state.store.write(&slug).await.unwrap();
    tx.users().set_mfa_email(&bob, true, 1).await.unwrap();
    tx.commit().await.unwrap();
    let bob = json!({"tenant": "secure", "email": "bob@example.com", "password": PASSWORD});
    let challenge: Value = server
        .post_from("/api/auth/login", &bob, &unique_ip())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(challenge["mfa_required"], true);
    assert_eq!(challenge["methods"], json!(["email"]));
    sink.wait_for("bob@example.com", 1).await;
}
both!(the_emailed_second_factor);

async fn a_password_change_ends_the_other_sessions(backend: Backend) {
    let (server, sink) = TestServer::with_sink(backend, &[]).await;
    server
        .create_user("default", "ann@example.com", PASSWORD)
        .await;
    let here = server.login("default", "ann@example.com", PASSWORD).await;
    let elsewhere = server.login("default", "ann@example.com", PASSWORD).await;
    let access = here["access_token"].as_str().unwrap();
    let wrong = server
        .post_auth(
            "/api/auth/password",
            access,
            &json!({"current_password": NEW_PASSWORD, "new_password": NEW_PASSWORD}),
        )
        .await;
    assert_problem(wrong, 403, "wrong_password").await;
    let changed = server
        .post_auth(
            "/api/auth/password",
            access,
            &json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD}),
        )
        .await;
    assert_eq!(changed.status(), 204);
    assert_eq!(server.get_auth("/api/auth/me", access).await.status(), 200);
    assert_eq!(
        server
            .get_auth("/api/auth/me", elsewhere["access_token"].as_str().unwrap())
            .await
            .status(),
        401
    );
    let mail = sink.wait_for("ann@example.com", 1).await.remove(0);
    assert_eq!(mail.subject, "Your password was changed");
    server
        .login("default", "ann@example.com", NEW_PASSWORD)
        .await;
}
both!(a_password_change_ends_the_other_sessions);

/// A Turnstile-compatible verifier: `{"success": true}` for the answer `good` with the secret.
async fn captcha_verifier() -> String {
    use axum::routing::post;
    let app = axum::Router::new().route(
        "/siteverify",
        post(
            |form: axum::Form<std::collections::HashMap<String, String>>| async move {
                let ok = form.get("secret").map(String::as_str) == Some("captcha-secret")
                    && form.get("response").map(String::as_str) == Some("good")
                    && form.contains_key("remoteip");
                axum::Json(json!({"success": ok}))
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/siteverify", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

async fn a_configured_captcha_guards_resending(backend: Backend) {
    let verify_url = captcha_verifier().await;
    let (server, sink) = TestServer::with_sink(
        backend,
        &[
            ("TESSERA_CAPTCHA_SECRET", "captcha-secret"),
            ("TESSERA_CAPTCHA_VERIFY_URL", verify_url.as_str()),
        ],
    )
    .await;
    register(&server, "default", "ann@example.com", PASSWORD).await;
    sink.wait_for("ann@example.com", 1).await;
    let tokens = server.login("default", "ann@example.com", PASSWORD).await;
    let access = tokens["access_token"].as_str().unwrap();
    for body in [json!({}), json!({"captcha": "bad"})] {
        let response = server
            .post_auth("/api/auth/resend-verification", access, &body)
            .await;
        assert_problem(response, 400, "captcha_failed").await;
    }
    let ok = server
        .post_auth(
            "/api/auth/resend-verification",
            access,
            &json!({"captcha": "good"}),
        )
        .await;
    assert_eq!(ok.status(), 202);
    sink.wait_for("ann@example.com", 2).await;
}
both!(a_configured_captcha_guards_resending);

/// A Pwned Passwords range API that knows one breached password (seen 42 times); it records
/// each prefix asked and whether padding was asked for.
async fn range_api(breached: &str) -> (String, Arc<Mutex<Vec<(String, bool)>>>) {
    use axum::extract::Path;
    use axum::http::HeaderMap;
    use axum::routing::get;
    let digest = format!("{:X}", Sha1::digest(breached.as_bytes()));
    let asked = Arc::new(Mutex::new(Vec::new()));
    let seen = asked.clone();
    let app = axum::Router::new().route(
        "/range/{prefix}",
        get(move |Path(prefix): Path<String>, headers: HeaderMap| {
            let digest = digest.clone();
            let padded = headers.get("add-padding").is_some_and(|v| v == "true");
            seen.lock().unwrap().push((prefix.clone(), padded));
            async move {
                let mut body = String::from("0018A45C4D1DEF81644B54AB7F969B88D65:0\r\n");
                if digest.starts_with(&prefix) {
                    body.push_str(&format!("{}:42\r\n", &digest[5..]));
                }
                body
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/range/", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, asked)
}

/// With `TESSERA_BREACHED_PASSWORDS_URL`, a new password known from breaches is refused at
/// registration and at a change, and only five hex digits of its SHA-1 leave the server.
async fn a_password_known_from_breaches_is_refused(backend: Backend) {
    const BREACHED: &str = "violet kettle overcoat maple";
    let (url, asked) = range_api(BREACHED).await;
    let (server, _sink) =
        TestServer::with_sink(backend, &[("TESSERA_BREACHED_PASSWORDS_URL", url.as_str())]).await;
    let (status, body) = register(&server, "default", "ann@example.com", BREACHED).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("weak_password") && body.contains("42 known data breach"),
        "{body}"
    );
    let (status, body) = register(&server, "default", "ann@example.com", PASSWORD).await;
    assert_eq!(status, 201, "{body}");

    let tokens = server.login("default", "ann@example.com", PASSWORD).await;
    let change = server
        .post_auth(
            "/api/auth/password",
            tokens["access_token"].as_str().unwrap(),
            &json!({"current_password": PASSWORD, "new_password": BREACHED}),
        )
        .await;
    assert_problem(change, 400, "weak_password").await;

    let breached_prefix = format!("{:X}", Sha1::digest(BREACHED.as_bytes()))[..5].to_owned();
    let asked = asked.lock().unwrap().clone();
    assert_eq!(asked.len(), 3, "{asked:?}");
    assert_eq!(asked[0], (breached_prefix.clone(), true));
    assert_eq!(asked[2], (breached_prefix, true));
    for (prefix, _) in &asked {
        assert!(
            prefix.len() == 5 && prefix.bytes().all(|b| b.is_ascii_hexdigit()),
            "{prefix}"
        );
    }
}
both!(a_password_known_from_breaches_is_refused);

/// A range API that does not answer does not stop registration: the local checks passed.
async fn an_unreachable_breach_list_does_not_block_a_password(backend: Backend) {
    let url = format!("http://127.0.0.1:{}/range/", free_port());
    let (server, _sink) =
        TestServer::with_sink(backend, &[("TESSERA_BREACHED_PASSWORDS_URL", url.as_str())]).await;
    let (status, body) = register(&server, "default", "ann@example.com", PASSWORD).await;
    assert_eq!(status, 201, "{body}");
}
both!(an_unreachable_breach_list_does_not_block_a_password);
