//! The authenticator-app second factor, on SQLite and PostgreSQL. Codes are computed by an
//! independent implementation (pyotp), never core's own; the QR code is rendered (resvg) and
//! decoded (rqrr) back to the URI.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{assert_problem, claims, unique_ip, Backend, TestServer, PASSWORD};
use serde_json::{json, Value};
use tessera_origin::clock::Clock as _;

use tessera_testing::pyotp;

/// The text of the QR code in `svg`.
fn decode_qr(svg: &str) -> String {
    let tree = resvg::usvg::Tree::from_str(svg, &resvg::usvg::Options::default()).unwrap();
    let size = tree.size().to_int_size();
    let (w, h) = (size.width() * 2, size.height() * 2);
    let mut pixmap = resvg::tiny_skia::Pixmap::new(w, h).unwrap();
    pixmap.fill(resvg::tiny_skia::Color::WHITE);
    resvg::render(
        &tree,
        resvg::tiny_skia::Transform::from_scale(2.0, 2.0),
        &mut pixmap.as_mut(),
    );
    let pixels = pixmap.data();
    let mut image = rqrr::PreparedImage::prepare_from_greyscale(w as usize, h as usize, |x, y| {
        pixels[(y * w as usize + x) * 4]
    });
    let grids = image.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code");
    grids[0].decode().unwrap().1
}

fn amr(tokens: &Value) -> Value {
    claims(tokens["access_token"].as_str().unwrap())["amr"].clone()
}

fn now(server: &TestServer) -> u64 {
    u64::try_from(server.clock.now_secs()).unwrap()
}

/// Signs in with the password; returns the challenge.
async fn challenge(server: &TestServer) -> Value {
    // Five sign-ins a minute per account: the clock moves past that limit.
    server.clock.advance(Duration::from_secs(13));
    let login = json!({"tenant": "default", "email": "ann@example.com", "password": PASSWORD});
    let response = server
        .post_from("/api/auth/login", &login, &unique_ip())
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["mfa_required"], true, "{body}");
    body
}

async fn answer(server: &TestServer, challenge: &Value, code: &str) -> reqwest::Response {
    // Three tries a minute per IP and per account: the clock moves past that limit.
    server.clock.advance(Duration::from_secs(21));
    server
        .post_from(
            "/api/auth/mfa/verify",
            &json!({"mfa_token": challenge["mfa_token"], "code": code}),
            &unique_ip(),
        )
        .await
}

/// Ann with a confirmed authenticator; returns her secret and recovery codes.
async fn enrolled(server: &TestServer) -> (String, Vec<String>) {
    server
        .create_user("default", "ann@example.com", PASSWORD)
        .await;
    let tokens = server.login("default", "ann@example.com", PASSWORD).await;
    let access = tokens["access_token"].as_str().unwrap();
    server.enrol_totp(access, PASSWORD).await
}

async fn enrolment_shows_a_qr_code_of_the_uri_and_a_first_code_confirms_it(backend: Backend) {
    let server = TestServer::start(backend).await;
    server
        .create_user("default", "ann@example.com", PASSWORD)
        .await;
    let tokens = server.login("default", "ann@example.com", PASSWORD).await;
    let access = tokens["access_token"].as_str().unwrap();
    let enrolment = server
        .post_auth(
            "/api/auth/mfa/totp/enroll",
            access,
            &json!({"password": PASSWORD}),
        )
        .await;
    assert_eq!(enrolment.status(), 200);
    let enrolment: Value = enrolment.json().await.unwrap();
    let secret = enrolment["secret"].as_str().unwrap();
    assert_eq!(secret.len(), 32, "160 bits in base32");
    let uri = enrolment["otpauth_uri"].as_str().unwrap();
    assert_eq!(
        uri,
        format!("otpauth://totp/Default:ann%40example.com?secret={secret}&issuer=Default&algorithm=SHA1&digits=6&period=30")
    );
    assert_eq!(decode_qr(enrolment["qr_svg"].as_str().unwrap()), uri);

    // Until confirmed, sign-in asks for nothing more.
    server.login("default", "ann@example.com", PASSWORD).await;
    let wrong = server
        .post_auth(
            "/api/auth/mfa/totp/confirm",
            access,
            &json!({"code": "000000", "password": PASSWORD}),
        )
        .await;
    assert_problem(wrong, 400, "invalid_code").await;
    let bad = server
        .post_auth(
            "/api/auth/mfa/totp/confirm",
            access,
            &json!({"password": PASSWORD}),
        )
        .await;
    assert_problem(bad, 400, "invalid_request").await;
    let first = pyotp(secret, now(&server));
    let confirmed = server
        .post_auth(
            "/api/auth/mfa/totp/confirm",
            access,
            &json!({"code": first, "password": PASSWORD}),
        )
        .await;
    assert_eq!(confirmed.status(), 200);
    let codes: Value = confirmed.json().await.unwrap();
    assert_eq!(codes["recovery_codes"].as_array().unwrap().len(), 10);
    let again = server
        .post_auth(
            "/api/auth/mfa/totp/enroll",
            access,
            &json!({"password": PASSWORD}),
        )
        .await;
    assert_problem(again, 409, "totp_active").await;

    // Sign-in now asks for a code; the confirming code is spent and cannot sign in.
    let pending = challenge(&server).await;
    assert_eq!(pending["methods"], json!(["totp", "recovery_code"]));
    assert!(pending.get("access_token").is_none());
    server.clock.advance(Duration::from_secs(0));
    let replay = server
        .post_from(
            "/api/auth/mfa/verify",
            &json!({"mfa_token": pending["mfa_token"], "code": first}),
            &unique_ip(),
        )
        .await;
    assert_problem(replay, 400, "invalid_code").await;
    let code = pyotp(secret, now(&server) + 21);
    let done = answer(&server, &pending, &code).await;
    assert_eq!(done.status(), 200);
    assert_eq!(amr(&done.json().await.unwrap()), json!(["pwd", "otp"]));
}
both!(enrolment_shows_a_qr_code_of_the_uri_and_a_first_code_confirms_it);

async fn recovery_codes_work_once_and_wrong_codes_end_a_challenge(backend: Backend) {
    let (server, sink) = TestServer::with_sink(backend, &[]).await;
    let (secret, codes) = enrolled(&server).await;

    let pending = challenge(&server).await;
    let done = answer(&server, &pending, &codes[0].to_uppercase()).await;
    assert_eq!(done.status(), 200);
    assert_eq!(amr(&done.json().await.unwrap()), json!(["pwd", "recovery"]));
    let pending = challenge(&server).await;
    assert_problem(
        answer(&server, &pending, &codes[0]).await,
        400,
        "invalid_code",
    )
    .await;

    // Five wrong codes end the challenge: a right one then fails too.
    for _ in 0..4 {
        assert_problem(
            answer(&server, &pending, "000000").await,
            400,
            "invalid_code",
        )
        .await;
    }
    let code = pyotp(&secret, now(&server) + 21);
    assert_problem(
        answer(&server, &pending, &code).await,
        401,
        "invalid_mfa_token",
    )
    .await;

    // New recovery codes replace the old ones.
    let pending = challenge(&server).await;
    let tokens: Value = answer(&server, &pending, &codes[1])
        .await
        .json()
        .await
        .unwrap();
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    server.clock.advance(Duration::from_secs(30));
    let renewed = server
        .post_auth(
            "/api/auth/mfa/recovery-codes",
            &access,
            &json!({"code": pyotp(&secret, now(&server)), "password": PASSWORD}),
        )
        .await;
    assert_eq!(renewed.status(), 200);
    let renewed: Value = renewed.json().await.unwrap();
    let pending = challenge(&server).await;
    assert_problem(
        answer(&server, &pending, &codes[2]).await,
        400,
        "invalid_code",
    )
    .await;
    let fresh = renewed["recovery_codes"][0].as_str().unwrap();
    assert_eq!(answer(&server, &pending, fresh).await.status(), 200);

    // Turning it off takes the password, and the user is told.
    server.clock.advance(Duration::from_secs(2));
    let wrong = server
        .delete_auth(
            "/api/auth/mfa/totp",
            &access,
            &json!({"password": "not the password at all"}),
        )
        .await;
    assert_problem(wrong, 403, "wrong_password").await;
    let off = server
        .delete_auth(
            "/api/auth/mfa/totp",
            &access,
            &json!({"password": PASSWORD}),
        )
        .await;
    assert_eq!(off.status(), 204);
    // Told of the app (at confirmation), of the new recovery codes, and of the app turned off.
    let subjects: Vec<String> = sink
        .wait_for("ann@example.com", 3)
        .await
        .into_iter()
        .map(|m| m.subject)
        .collect();
    assert_eq!(
        subjects,
        [
            "A second factor was added to your account",
            "A second factor was added to your account",
            "Two-factor authentication was turned off"
        ]
    );
    server.clock.advance(Duration::from_secs(13));
    server.login("default", "ann@example.com", PASSWORD).await;
}
both!(recovery_codes_work_once_and_wrong_codes_end_a_challenge);

/// Whether `tokens` (a sign-in's answer) still work: the access token at `/me`, and the
/// refresh token (rotated in `tokens` when it works).
async fn still_signed_in(server: &TestServer, tokens: &mut Value) -> bool {
    let access = tokens["access_token"].as_str().unwrap();
    let me = server.get_auth("/api/auth/me", access).await.status();
    let refreshed = server.refresh(tokens).await;
    let refresh = refreshed.status();
    assert_eq!(me == 200, refresh == 200, "/me {me}, refresh {refresh}");
    if refresh == 200 {
        *tokens = refreshed.json().await.unwrap();
    }
    me == 200
}

/// Turning a second factor on or off ends every other session of the user (ASVS 7.4.3): a
/// session opened by whoever else knew the password does not outlive the owner's new factor.
async fn a_second_factor_turned_on_or_off_ends_the_other_sessions(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ann = server
        .create_user("default", "ann@example.com", PASSWORD)
        .await;
    let slug = tessera_core::model::TenantSlug::parse("default").unwrap();
    let mut tx = server.state.store.write(&slug).await.unwrap();
    tx.users().mark_email_verified(&ann, 1).await.unwrap();
    tx.commit().await.unwrap();
    let mut here = server.login("default", "ann@example.com", PASSWORD).await;
    let mut elsewhere = server.login("default", "ann@example.com", PASSWORD).await;
    let access = here["access_token"].as_str().unwrap().to_owned();

    // The authenticator app, on.
    let enrolment: Value = server
        .post_auth(
            "/api/auth/mfa/totp/enroll",
            &access,
            &json!({"password": PASSWORD}),
        )
        .await
        .json()
        .await
        .unwrap();
    let secret = enrolment["secret"].as_str().unwrap().to_owned();
    assert!(
        still_signed_in(&server, &mut elsewhere).await,
        "enrolling is not yet a change"
    );
    let confirmed = server
        .post_auth(
            "/api/auth/mfa/totp/confirm",
            &access,
            &json!({"code": pyotp(&secret, now(&server)), "password": PASSWORD}),
        )
        .await;
    assert_eq!(confirmed.status(), 200);
    assert!(!still_signed_in(&server, &mut elsewhere).await);
    assert!(still_signed_in(&server, &mut here).await);

    // Off again.
    let pending = challenge(&server).await;
    let mut elsewhere: Value = answer(&server, &pending, &pyotp(&secret, now(&server) + 21))
        .await
        .json()
        .await
        .unwrap();
    let access = here["access_token"].as_str().unwrap().to_owned();
    let off = server
        .delete_auth(
            "/api/auth/mfa/totp",
            &access,
            &json!({"password": PASSWORD}),
        )
        .await;
    assert_eq!(off.status(), 204);
    assert!(!still_signed_in(&server, &mut elsewhere).await);
    assert!(still_signed_in(&server, &mut here).await);

    // The emailed code, on.
    let mut elsewhere = server.login("default", "ann@example.com", PASSWORD).await;
    let access = here["access_token"].as_str().unwrap().to_owned();
    let on = server
        .put_auth(
            "/api/auth/mfa/email",
            &access,
            &json!({"enabled": true, "password": PASSWORD}),
        )
        .await;
    assert_eq!(on.status(), 200);
    assert!(!still_signed_in(&server, &mut elsewhere).await);
    assert!(still_signed_in(&server, &mut here).await);
    let events = server.audit_events("default").await;
    for event in [
        "totp_enabled sessions_ended=1",
        "totp_disabled sessions_ended=1",
        "mfa_email_enabled sessions_ended=1",
    ] {
        assert!(events.iter().any(|e| e == event), "{event}: {events:?}");
    }
}
both!(a_second_factor_turned_on_or_off_ends_the_other_sessions);

/// Twenty challenges of one user answered at once with the same valid code: one sign-in.
async fn one_code_signs_in_once_however_many_ask(servers: &[&TestServer], secret: &str) {
    let first = servers[0];
    let mut challenges = Vec::new();
    for n in 0..20 {
        challenges.push((servers[n % servers.len()], challenge(first).await));
    }
    // Every node's clock at the first's.
    for server in &servers[1..] {
        let behind = first.clock.now_secs() - server.clock.now_secs();
        server
            .clock
            .advance(Duration::from_secs(u64::try_from(behind).unwrap_or(0)));
    }
    let code = pyotp(secret, now(first));
    let answers = futures::future::join_all(challenges.iter().map(|(server, challenge)| {
        let code = code.clone();
        async move {
            server
                .post_from(
                    "/api/auth/mfa/verify",
                    &json!({"mfa_token": challenge["mfa_token"], "code": code}),
                    &unique_ip(),
                )
                .await
                .status()
                .as_u16()
        }
    }))
    .await;
    assert_eq!(
        answers.iter().filter(|s| **s == 200).count(),
        1,
        "{answers:?}"
    );
    assert!(
        answers.iter().all(|s| [200, 400, 429].contains(s)),
        "{answers:?}"
    );
}

async fn a_code_is_accepted_once_across_concurrent_requests(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (secret, _) = enrolled(&server).await;
    server.clock.advance(Duration::from_secs(30));
    one_code_signs_in_once_however_many_ask(&[&server], &secret).await;
}
both!(a_code_is_accepted_once_across_concurrent_requests);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_code_is_accepted_once_across_two_nodes() {
    let one = TestServer::start(Backend::Postgres).await;
    let two = one.second_node(&[]).await;
    let (secret, _) = enrolled(&one).await;
    one.clock.advance(Duration::from_secs(30));
    one_code_signs_in_once_however_many_ask(&[&one, &two], &secret).await;
}

async fn a_tenant_that_requires_a_second_factor_gives_an_enrol_only_token(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.create_tenant("secure").await;
    let policy = tessera_origin::store::TenantPolicy {
        require_mfa: true,
        ..tessera_origin::store::TenantPolicy::default()
    };
    server.change_tenant("secure", policy).await;
    server
        .create_user("secure", "bob@example.com", PASSWORD)
        .await;
    let login = json!({"tenant": "secure", "email": "bob@example.com", "password": PASSWORD});
    let answer: Value = server
        .post_from("/api/auth/login", &login, &unique_ip())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(answer["mfa_enrollment_required"], true, "{answer}");
    assert_eq!(answer["expires_in"], 900);
    assert!(answer.get("refresh_token").is_none());
    let restricted = answer["access_token"].as_str().unwrap();

    // Good for nothing but enrolment.
    for path in ["/api/auth/me", "/api/auth/verify", "/api/auth/sessions"] {
        assert_problem(
            server.get_auth(path, restricted).await,
            401,
            "restricted_token",
        )
        .await;
    }
    let change =
        json!({"current_password": PASSWORD, "new_password": "another long passphrase here"});
    assert_problem(
        server
            .post_auth("/api/auth/password", restricted, &change)
            .await,
        401,
        "restricted_token",
    )
    .await;
    // Nor can an emailed code skip the tenant's rule. Enrolment needs no password with this
    // token: it was issued for the password a moment ago.
    let enrolment: Value = server
        .post_auth("/api/auth/mfa/totp/enroll", restricted, &json!({}))
        .await
        .json()
        .await
        .unwrap();
    let secret = enrolment["secret"].as_str().unwrap().to_owned();
    let confirmed = server
        .post_auth(
            "/api/auth/mfa/totp/confirm",
            restricted,
            &json!({"code": pyotp(&secret, now(&server))}),
        )
        .await;
    assert_eq!(confirmed.status(), 200);

    // Then sign-in asks for the app's code, and a full session follows.
    server.clock.advance(Duration::from_secs(30));
    let challenge: Value = server
        .post_from("/api/auth/login", &login, &unique_ip())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(challenge["methods"], json!(["totp", "recovery_code"]));
    let done = server
        .post_from(
            "/api/auth/mfa/verify",
            &json!({"mfa_token": challenge["mfa_token"], "code": pyotp(&secret, now(&server))}),
            &unique_ip(),
        )
        .await;
    assert_eq!(done.status(), 200);
    let tokens: Value = done.json().await.unwrap();
    assert_eq!(
        server
            .get_auth("/api/auth/me", tokens["access_token"].as_str().unwrap())
            .await
            .status(),
        200
    );
}
both!(a_tenant_that_requires_a_second_factor_gives_an_enrol_only_token);

/// Attack (issue 24, item 1): whoever holds an access token but not the password enrols their
/// own authenticator app, turns the owner's off, takes new recovery codes or switches the
/// emailed code, and so keeps the account. Every change of second factors needs the current
/// password in the same request, and adding one tells the owner.
async fn a_stolen_access_token_cannot_change_the_second_factors(backend: Backend) {
    let (server, sink) = TestServer::with_sink(backend, &[]).await;
    let (secret, _) = enrolled(&server).await;
    let pending = challenge(&server).await;
    let stolen: Value = answer(&server, &pending, &pyotp(&secret, now(&server) + 21))
        .await
        .json()
        .await
        .unwrap();
    let stolen = stolen["access_token"].as_str().unwrap().to_owned();
    let code = || json!({"code": pyotp(&secret, now(&server) + 60)});
    for password in [None, Some("not the password at all")] {
        let (status, problem) = match password {
            None => (403, "password_required"),
            Some(_) => (403, "wrong_password"),
        };
        let with = |mut body: Value| {
            if let Some(password) = password {
                body["password"] = json!(password);
            }
            body
        };
        let off = server
            .delete_auth("/api/auth/mfa/totp", &stolen, &with(json!({})))
            .await;
        assert_problem(off, status, problem).await;
        let renew = server
            .post_auth("/api/auth/mfa/recovery-codes", &stolen, &with(code()))
            .await;
        assert_problem(renew, status, problem).await;
        let email = server
            .put_auth(
                "/api/auth/mfa/email",
                &stolen,
                &with(json!({"enabled": true})),
            )
            .await;
        assert_problem(email, status, problem).await;
    }
    // The owner's app still guards sign-in.
    let pending = challenge(&server).await;
    assert_eq!(pending["methods"], json!(["totp", "recovery_code"]));

    // With the app off (by the owner, who knows the password), the attacker cannot add theirs.
    server.clock.advance(Duration::from_secs(30));
    let off = server
        .delete_auth(
            "/api/auth/mfa/totp",
            &stolen,
            &json!({"password": PASSWORD}),
        )
        .await;
    assert_eq!(off.status(), 204);
    let fresh = server.login("default", "ann@example.com", PASSWORD).await;
    let stolen = fresh["access_token"].as_str().unwrap();
    // Past the account's minute of credential requests spent above.
    server.clock.advance(Duration::from_secs(61));
    let enrol = server
        .post_auth("/api/auth/mfa/totp/enroll", stolen, &json!({}))
        .await;
    assert_problem(enrol, 403, "password_required").await;
    let bodiless = server
        .http
        .post(server.url("/api/auth/mfa/totp/enroll"))
        .bearer_auth(stolen)
        .send()
        .await
        .unwrap();
    assert_problem(bodiless, 403, "password_required").await;
    let empty_json = server
        .http
        .post(server.url("/api/auth/mfa/totp/enroll"))
        .bearer_auth(stolen)
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_problem(empty_json, 403, "password_required").await;
    let null = server
        .http
        .post(server.url("/api/auth/mfa/totp/enroll"))
        .bearer_auth(stolen)
        .header("content-type", "application/json")
        .body("null")
        .send()
        .await
        .unwrap();
    assert_problem(null, 403, "password_required").await;
    let not_json = server
        .http
        .post(server.url("/api/auth/mfa/totp/enroll"))
        .bearer_auth(stolen)
        .body("password=guess")
        .send()
        .await
        .unwrap();
    assert_problem(not_json, 415, "unsupported_media_type").await;
    // Past the account's minute of credential requests spent on those refusals.
    server.clock.advance(Duration::from_secs(61));
    let enrolment: Value = server
        .post_auth(
            "/api/auth/mfa/totp/enroll",
            stolen,
            &json!({"password": PASSWORD}),
        )
        .await
        .json()
        .await
        .unwrap();
    let theirs = enrolment["secret"].as_str().unwrap();
    let confirm = server
        .post_auth(
            "/api/auth/mfa/totp/confirm",
            stolen,
            &json!({"code": pyotp(theirs, now(&server))}),
        )
        .await;
    assert_problem(confirm, 403, "password_required").await;
    let seen = sink.messages_to("ann@example.com").len();
    let confirm = server
        .post_auth(
            "/api/auth/mfa/totp/confirm",
            stolen,
            &json!({"code": pyotp(theirs, now(&server)), "password": PASSWORD}),
        )
        .await;
    assert_eq!(confirm.status(), 200);
    let told = sink.next_to("ann@example.com", seen).await;
    assert_eq!(told.subject, "A second factor was added to your account");
    assert!(
        told.text.contains("An authenticator app now guards"),
        "{}",
        told.text
    );
}
both!(a_stolen_access_token_cannot_change_the_second_factors);
