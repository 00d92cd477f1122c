//! The admin API: the operator API (`/api/admin/*`, operator tokens) and the tenant admin API
//! (`/api/auth/admin/users*`, a tenant's admins and its `users:*` service tokens), on both
//! backends: a tenant made over HTTP signs its first admin in, who invites a user who chooses a
//! password on the hosted page in Chromium; pages and search; who may reach what; an address
//! change confirmed by its new owner; a tenant's deletion; bad input.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::{assert_problem, Backend, TestServer, PASSWORD};
use fantoccini::Locator;
use serde_json::{json, Value};
use tessera_core::model::TenantSlug;
use tessera_origin::services::api_tokens::NewApiToken;
use tessera_testing::browser::Chromedriver;

const NEW_PASSWORD: &str = "an invited user's own passphrase";

/// A service token of `tenant` named `name` with the one scope `scope`.
async fn service_token(server: &TestServer, tenant: &str, name: &str, scope: &str) -> String {
    let new = NewApiToken {
        name: name.into(),
        scopes: vec![scope.into()],
        expires_in_days: None,
    };
    let tenant = TenantSlug::parse(tenant).unwrap();
    let created = server.state.services.api_tokens.create(&tenant, new).await;
    created.unwrap().token
}

/// An operator token made by `tessera operator-token create` (its last line).
fn operator_token(server: &TestServer) -> String {
    let output = server
        .cli(&["operator-token", "create", "--name", "backend"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let token = text.lines().last().unwrap().to_owned();
    assert!(token.starts_with("tsr_op_"), "{text}");
    token
}

async fn send(
    server: &TestServer,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<&Value>,
) -> reqwest::Response {
    let mut request = server
        .http
        .request(method, server.url(path))
        .header("x-tessera-edge-secret", common::EDGE_SECRET)
        .header("x-tessera-client-ip", common::unique_ip())
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(body);
    }
    request.send().await.unwrap()
}

async fn get(server: &TestServer, path: &str, token: &str) -> reqwest::Response {
    send(server, reqwest::Method::GET, path, token, None).await
}

async fn json_of(response: reqwest::Response, status: u16) -> Value {
    let got = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert_eq!(got, status, "{body}");
    body
}

/// A tenant made over the operator API, and its first admin signed in: the admin's tokens.
async fn tenant_with_admin(server: &TestServer, operator: &str, slug: &str) -> Value {
    let created = send(
        server,
        reqwest::Method::POST,
        "/api/admin/tenants",
        operator,
        Some(&json!({"slug": slug, "name": "Acme Inc", "cors_origins": ["https://app.acme.test"]})),
    )
    .await;
    let tenant = json_of(created, 201).await;
    assert_eq!(tenant["slug"], slug);
    assert_eq!(tenant["registration"], "open");
    let admin = send(
        server,
        reqwest::Method::POST,
        &format!("/api/admin/tenants/{slug}/users"),
        operator,
        Some(&json!({"email": format!("admin@{slug}.test"), "name": "Ada", "password": PASSWORD})),
    )
    .await;
    let admin = json_of(admin, 201).await;
    assert_eq!(
        admin["role"], "admin",
        "the first user is the tenant's admin"
    );
    server
        .login(slug, &format!("admin@{slug}.test"), PASSWORD)
        .await
}

/// The whole path of issue 29's first check: a tenant created over the API signs its first
/// admin in; the admin invites a user, who sets a password from the emailed link on the hosted
/// page in a real browser, and signs in.
async fn a_tenant_made_over_http_invites_a_user_who_signs_in(backend: Backend) {
    let (server, sink) = TestServer::with_sink(backend, &[]).await;
    let operator = operator_token(&server);
    let admin = tenant_with_admin(&server, &operator, "acme").await;
    let admin = admin["access_token"].as_str().unwrap().to_owned();
    let again = send(
        &server,
        reqwest::Method::POST,
        "/api/admin/tenants",
        &operator,
        Some(&json!({"slug": "acme"})),
    )
    .await;
    assert_problem(again, 409, "tenant_exists").await;

    let invited = send(
        &server,
        reqwest::Method::POST,
        "/api/auth/admin/users",
        &admin,
        Some(&json!({"email": "bob@acme.test", "name": "Bob", "invite": true})),
    )
    .await;
    let bob = json_of(invited, 201).await;
    assert_eq!(bob["has_password"], false);
    let mail = sink.wait_for("bob@acme.test", 1).await.remove(0);
    assert!(mail.subject.contains("invited"), "{}", mail.subject);
    assert!(mail.text.contains("Acme Inc"), "{}", mail.text);
    let link = mail
        .link()
        .replace("https://auth.tessera.test", &server.base);

    let driver = Chromedriver::start();
    let browser = driver.browser().await;
    browser.goto(&link).await.unwrap();
    for id in ["password", "password_confirm"] {
        browser
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Id(id))
            .await
            .unwrap()
            .send_keys(NEW_PASSWORD)
            .await
            .unwrap();
    }
    browser
        .find(Locator::Id("submit"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let outcome = browser
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Id("outcome"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(outcome.starts_with("Your password was"), "{outcome}");
    // Single use: the link is spent.
    let reused = server
        .http
        .post(server.url("/auth/reset-password"))
        .form(&[
            ("token", mail.token().as_str()),
            ("password", NEW_PASSWORD),
            ("password_confirm", NEW_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(reused.status(), 400);
    browser.close().await.unwrap();

    let tokens = server.login("acme", "bob@acme.test", NEW_PASSWORD).await;
    assert!(tokens["access_token"].is_string(), "{tokens}");
    let id = bob["id"].as_str().unwrap();
    let shown = json_of(
        get(&server, &format!("/api/auth/admin/users/{id}"), &admin).await,
        200,
    )
    .await;
    assert_eq!(shown["has_password"], true);
    assert_eq!(shown["email_verified"], true, "the link proved the mailbox");
    let events = server.audit_events("acme").await;
    assert!(
        events.iter().any(|e| e.starts_with("invitation_accepted")),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| e.starts_with("user_created_by_admin by=admin:") && e.contains("invited=true")),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| e.starts_with("user_created_by_operator by=operator_token:")),
        "{events:?}"
    );
}
both!(a_tenant_made_over_http_invites_a_user_who_signs_in);

/// Pages and search over 250 users return each exactly once, in address order; search finds by
/// address or name prefix in any case.
async fn pages_and_search_return_each_user_once(backend: Backend) {
    let server = TestServer::start(backend).await;
    let operator = operator_token(&server);
    let admin = tenant_with_admin(&server, &operator, "acme").await;
    let admin = admin["access_token"].as_str().unwrap().to_owned();
    let mut users: Vec<Value> = (0..250)
        .map(|i| {
            json!({
                "email": format!("user{i:03}@acme.test"),
                "name": if i % 5 == 0 { format!("ZOË Member {i}") } else { format!("Member {i}") },
            })
        })
        .collect();
    // Three found by name only (`ad…`), beside the admin, found by address (and named Ada).
    users.extend(
        (0..3).map(|i| json!({"email": format!("zz{i}@acme.test"), "name": format!("Adam {i}")})),
    );
    let imported = send(
        &server,
        reqwest::Method::POST,
        "/api/auth/admin/users/import",
        &admin,
        Some(&json!({"users": users})),
    )
    .await;
    assert_eq!(json_of(imported, 200).await["imported"], 253);

    let pages = |query: &'static str, limit: u32| {
        let server = &server;
        let admin = admin.clone();
        async move {
            let mut seen = Vec::new();
            let mut cursor: Option<String> = None;
            let mut requests = 0;
            loop {
                let mut path = format!("/api/auth/admin/users?limit={limit}&query={query}");
                if let Some(cursor) = &cursor {
                    path.push_str(&format!("&cursor={cursor}"));
                }
                let page = json_of(get(server, &path, &admin).await, 200).await;
                requests += 1;
                let batch = page["users"].as_array().unwrap();
                assert!(batch.len() <= limit as usize);
                seen.extend(
                    batch
                        .iter()
                        .map(|u| u["email"].as_str().unwrap().to_owned()),
                );
                match page["next_cursor"].as_str() {
                    Some(next) => cursor = Some(next.to_owned()),
                    None => break,
                }
            }
            (seen, requests)
        }
    };
    let (all, requests) = pages("", 50).await;
    assert_eq!(all.len(), 254, "253 users and the admin");
    assert_eq!(all.iter().collect::<HashSet<_>>().len(), 254, "each once");
    let mut sorted = all.clone();
    sorted.sort();
    assert_eq!(all, sorted, "in address order");
    assert!(requests <= 7, "{requests} pages");
    // By address prefix, any case, across pages of 7.
    let (found, _) = pages("USER1", 7).await;
    assert_eq!(found.len(), 100);
    assert!(found.iter().all(|e| e.starts_with("user1")));
    // By name prefix, any case, beyond ASCII too (`ZOË` found by `zoË`).
    let (zoe, _) = pages("zoË%20mem", 20).await;
    assert_eq!(zoe.len(), 50, "{zoe:?}");
    assert_eq!(zoe.iter().collect::<HashSet<_>>().len(), 50);
    // Address matches first, then name matches, a page of one at a time across the two: each
    // once, the admin (both) once.
    let (ad, requests) = pages("AD", 1).await;
    assert_eq!(
        ad,
        [
            "admin@acme.test",
            "zz0@acme.test",
            "zz1@acme.test",
            "zz2@acme.test"
        ]
    );
    assert_eq!(requests, 4);
    let (none, _) = pages("nobody", 20).await;
    assert!(none.is_empty());
}
both!(pages_and_search_return_each_user_once);

/// Who reaches what: a tenant's admin reaches only its own tenant's users and never the
/// operator API; a plain user reaches neither; a `users:read` service token reads and cannot
/// write; every change is audited with who made it and ends sessions where the command line's
/// does.
async fn each_credential_reaches_only_what_it_may(backend: Backend) {
    let server = TestServer::start(backend).await;
    let operator = operator_token(&server);
    let admin = tenant_with_admin(&server, &operator, "acme").await;
    let admin = admin["access_token"].as_str().unwrap().to_owned();
    let other = tenant_with_admin(&server, &operator, "globex").await;
    let other_admin = other["access_token"].as_str().unwrap().to_owned();
    let other_id = common::claims(&other_admin)["sub"]
        .as_str()
        .unwrap()
        .to_owned();
    let bob_id = server
        .create_user("acme", "bob@acme.test", PASSWORD)
        .await
        .to_string();
    let bob = server.login("acme", "bob@acme.test", PASSWORD).await;
    let bob_access = bob["access_token"].as_str().unwrap().to_owned();

    // Another tenant's user is not found; the operator API is closed to a tenant's admin.
    let path = format!("/api/auth/admin/users/{other_id}");
    assert_problem(get(&server, &path, &admin).await, 404, "not_found").await;
    assert_problem(
        get(&server, "/api/admin/tenants", &admin).await,
        403,
        "forbidden",
    )
    .await;
    assert_problem(
        get(&server, "/api/auth/admin/users", &bob_access).await,
        403,
        "forbidden",
    )
    .await;
    assert_problem(
        get(&server, "/api/admin/tenants", "tsr_op_made-up").await,
        401,
        "invalid_token",
    )
    .await;
    assert_problem(
        get(&server, "/api/admin/tenants", &"tsr_op_".repeat(8)).await,
        401,
        "invalid_token",
    )
    .await;

    // A service token that may read, reads; it may not write.
    let reader = service_token(&server, "acme", "reader", "users:read").await;
    let writer = service_token(&server, "acme", "writer", "users:write").await;
    let listed = json_of(get(&server, "/api/auth/admin/users", &reader).await, 200).await;
    assert_eq!(listed["users"].as_array().unwrap().len(), 2);
    let disable = format!("/api/auth/admin/users/{bob_id}/disable");
    let refused = send(&server, reqwest::Method::POST, &disable, &reader, None).await;
    assert_problem(refused, 403, "forbidden").await;
    assert_eq!(
        get(&server, "/api/auth/me", &bob_access).await.status(),
        200,
        "a refused change changed nothing"
    );

    // The writer disables Bob: his tokens are refused at once, and the audit log names the
    // token.
    let done = send(&server, reqwest::Method::POST, &disable, &writer, None).await;
    assert_eq!(json_of(done, 200).await["sessions_ended"], 1);
    assert_problem(
        get(&server, "/api/auth/me", &bob_access).await,
        401,
        "invalid_token",
    )
    .await;
    assert_problem(server.refresh(&bob).await, 401, "invalid_refresh_token").await;
    let login = server
        .post_from(
            "/api/auth/login",
            &json!({"tenant": "acme", "email": "bob@acme.test", "password": PASSWORD}),
            &common::unique_ip(),
        )
        .await;
    assert_eq!(login.status(), 401, "a disabled account cannot sign in");
    let events = server.audit_events("acme").await;
    assert!(
        events
            .iter()
            .any(|e| e.starts_with("user_disabled by=service_token:")
                && e.ends_with("sessions_ended=1")),
        "{events:?}"
    );
    // The admin enables him again, signs him out, resets his factors.
    let enable = format!("/api/auth/admin/users/{bob_id}/enable");
    json_of(
        send(&server, reqwest::Method::POST, &enable, &admin, None).await,
        200,
    )
    .await;
    let bob = server.login("acme", "bob@acme.test", PASSWORD).await;
    let sign_out = format!("/api/auth/admin/users/{bob_id}/sign-out");
    let ended = json_of(
        send(&server, reqwest::Method::POST, &sign_out, &admin, None).await,
        200,
    )
    .await;
    assert_eq!(ended["sessions_ended"], 1);
    assert_problem(server.refresh(&bob).await, 401, "invalid_refresh_token").await;
    let reset = format!("/api/auth/admin/users/{bob_id}/reset-mfa");
    json_of(
        send(&server, reqwest::Method::POST, &reset, &admin, None).await,
        200,
    )
    .await;
    let events = server.audit_events("acme").await;
    assert!(
        events
            .iter()
            .any(|e| e.starts_with("mfa_reset_by_admin by=admin:")),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| e.starts_with("sessions_ended_by_admin by=admin:")),
        "{events:?}"
    );

    // A role change ends the sessions (tokens carry the role); the new token says admin.
    let bob = server.login("acme", "bob@acme.test", PASSWORD).await;
    let path = format!("/api/auth/admin/users/{bob_id}");
    let patched = send(
        &server,
        reqwest::Method::PATCH,
        &path,
        &admin,
        Some(&json!({"role": "admin", "name": "Robert"})),
    )
    .await;
    let patched = json_of(patched, 200).await;
    assert_eq!(patched["role"], "admin");
    assert_eq!(patched["name"], "Robert");
    assert_problem(server.refresh(&bob).await, 401, "invalid_refresh_token").await;
    let bob = server.login("acme", "bob@acme.test", PASSWORD).await;
    assert_eq!(
        common::claims(bob["access_token"].as_str().unwrap())["role"],
        "admin"
    );

    // The admin erases him; the service token (write) erases nobody of another tenant.
    let gone = send(&server, reqwest::Method::DELETE, &path, &writer, None).await;
    assert_eq!(gone.status(), 204);
    assert_problem(get(&server, &path, &admin).await, 404, "not_found").await;
    let elsewhere = format!("/api/auth/admin/users/{other_id}");
    let refused = send(&server, reqwest::Method::DELETE, &elsewhere, &writer, None).await;
    assert_problem(refused, 404, "not_found").await;
    assert_eq!(
        get(&server, "/api/auth/me", &other_admin).await.status(),
        200
    );
}
both!(each_credential_reaches_only_what_it_may);

/// An address an admin gives a user replaces the old one only once its owner confirms it from
/// the link mailed to the new address; the old address is told.
async fn a_new_address_waits_for_its_owner(backend: Backend) {
    let (server, sink) = TestServer::with_sink(backend, &[]).await;
    let operator = operator_token(&server);
    let admin = tenant_with_admin(&server, &operator, "acme").await;
    let admin = admin["access_token"].as_str().unwrap().to_owned();
    let bob_id = server
        .create_user("acme", "bob@acme.test", PASSWORD)
        .await
        .to_string();
    server
        .create_user("acme", "taken@acme.test", PASSWORD)
        .await;
    let path = format!("/api/auth/admin/users/{bob_id}");
    let taken = send(
        &server,
        reqwest::Method::PATCH,
        &path,
        &admin,
        Some(&json!({"email": "taken@acme.test"})),
    )
    .await;
    assert_problem(taken, 409, "email_taken").await;
    let patched = send(
        &server,
        reqwest::Method::PATCH,
        &path,
        &admin,
        Some(&json!({"email": "Robert@New.test"})),
    )
    .await;
    let patched = json_of(patched, 200).await;
    assert_eq!(
        patched["email"], "bob@acme.test",
        "not before its owner confirms"
    );
    assert_eq!(patched["pending_email"], "robert@new.test");
    // The old address still signs in meanwhile.
    server.login("acme", "bob@acme.test", PASSWORD).await;

    let mail = sink.wait_for("robert@new.test", 1).await.remove(0);
    assert!(
        mail.link().contains("/auth/verify-email?token="),
        "{}",
        mail.text
    );
    let confirmed = server
        .http
        .post(server.url("/auth/verify-email"))
        .form(&[("token", mail.token())])
        .send()
        .await
        .unwrap();
    assert_eq!(confirmed.status(), 200);
    let shown = json_of(get(&server, &path, &admin).await, 200).await;
    assert_eq!(shown["email"], "robert@new.test");
    assert_eq!(shown["pending_email"], Value::Null);
    server.login("acme", "robert@new.test", PASSWORD).await;
    let told = sink.wait_for("bob@acme.test", 1).await.remove(0);
    assert!(told.text.contains("robert@new.test"), "{}", told.text);
    // The link is spent.
    let again = server
        .http
        .post(server.url("/auth/verify-email"))
        .form(&[("token", mail.token())])
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 400);
}
both!(a_new_address_waits_for_its_owner);

/// Deleting a tenant refuses every token of it (users' and service tokens) and frees its slug;
/// its old users are not in the tenant made again.
async fn deleting_a_tenant_refuses_its_tokens_and_frees_the_slug(backend: Backend) {
    let server = TestServer::start(backend).await;
    let operator = operator_token(&server);
    let admin = tenant_with_admin(&server, &operator, "acme").await;
    let access = admin["access_token"].as_str().unwrap().to_owned();
    let service = service_token(&server, "acme", "backend", "users:read").await;
    assert_eq!(
        get(&server, "/api/auth/admin/users", &service)
            .await
            .status(),
        200
    );
    let path = "/api/admin/tenants/acme";
    let wrong = send(
        &server,
        reqwest::Method::DELETE,
        path,
        &operator,
        Some(&json!({"confirm": "acm"})),
    )
    .await;
    assert_problem(wrong, 400, "confirmation_mismatch").await;
    let deleted = send(
        &server,
        reqwest::Method::DELETE,
        path,
        &operator,
        Some(&json!({"confirm": "acme"})),
    )
    .await;
    let deleted = json_of(deleted, 200).await;
    assert_eq!(deleted["sessions_ended"], 1);
    assert_eq!(deleted["tokens_revoked"], 1);
    let log = server
        .state
        .store
        .revocations_after(0, 0, 100)
        .await
        .unwrap();
    let subjects: Vec<&str> = log
        .iter()
        .filter(|e| e.tenant == "acme")
        .map(|e| e.subject.as_str())
        .collect();
    assert_eq!(
        subjects.len(),
        3,
        "the session, the service token and the deletion are in the revocation log: {log:?}"
    );
    assert!(subjects[1].starts_with("sk-") && subjects[2] == "tenant:deleted");
    assert_eq!(get(&server, "/api/auth/me", &access).await.status(), 401);
    assert_eq!(
        get(&server, "/api/auth/verify", &access).await.status(),
        401
    );
    assert_eq!(
        get(&server, "/api/auth/admin/users", &service)
            .await
            .status(),
        401
    );
    assert_problem(server.refresh(&admin).await, 401, "invalid_refresh_token").await;
    assert_problem(get(&server, path, &operator).await, 404, "tenant_not_found").await;

    // The slug is free, and the tenant made again has none of the old one's users.
    server.clock.advance(Duration::from_secs(1));
    let made = send(
        &server,
        reqwest::Method::POST,
        "/api/admin/tenants",
        &operator,
        Some(&json!({"slug": "acme"})),
    )
    .await;
    json_of(made, 201).await;
    let login = server
        .post_from(
            "/api/auth/login",
            &json!({"tenant": "acme", "email": "admin@acme.test", "password": PASSWORD}),
            &common::unique_ip(),
        )
        .await;
    assert_eq!(login.status(), 401);
    assert_eq!(
        get(&server, "/api/auth/me", &access).await.status(),
        401,
        "still refused"
    );
    let listed = json_of(get(&server, "/api/admin/tenants", &operator).await, 200).await;
    assert_eq!(listed["tenants"][0]["slug"], "acme", "newest first");
    // The operator's token, revoked, opens nothing from the next request on.
    let revoked = server
        .cli(&["operator-token", "revoke", "backend"])
        .output()
        .unwrap();
    assert!(revoked.status.success());
    assert_problem(
        get(&server, "/api/admin/tenants", &operator).await,
        401,
        "invalid_token",
    )
    .await;
}
both!(deleting_a_tenant_refuses_its_tokens_and_frees_the_slug);

/// Bad input is a 400 with a stable code: unknown fields, limits outside 1–200, malformed
/// cursors, bad slugs and settings; tenant pages are newest first and each tenant once.
async fn bad_input_is_refused_and_tenants_page_newest_first(backend: Backend) {
    let server = TestServer::start(backend).await;
    let operator = operator_token(&server);
    let admin = tenant_with_admin(&server, &operator, "acme").await;
    let admin = admin["access_token"].as_str().unwrap().to_owned();
    let post = |path: &'static str, token: String, body: Value| {
        let server = &server;
        async move { send(server, reqwest::Method::POST, path, &token, Some(&body)).await }
    };
    for (body, code) in [
        (
            json!({"slug": "globex", "colour": "red"}),
            "invalid_request",
        ),
        (json!({"slug": "Not A Slug"}), "invalid_slug"),
        (
            json!({"slug": "globex", "cors_origins": ["*"]}),
            "invalid_origin",
        ),
        (json!({"slug": "globex", "name": " "}), "invalid_name"),
        (
            json!({"slug": "globex", "registration": "ajar"}),
            "invalid_request",
        ),
    ] {
        assert_problem(
            post("/api/admin/tenants", operator.clone(), body).await,
            400,
            code,
        )
        .await;
    }
    for (body, code) in [
        (
            json!({"email": "x@acme.test", "pasword": "typo"}),
            "invalid_request",
        ),
        (json!({"email": "not an address"}), "invalid_email"),
        (
            json!({"email": "x@acme.test", "role": "owner"}),
            "invalid_request",
        ),
        (
            json!({"email": "x@acme.test", "password": PASSWORD, "invite": true}),
            "password_and_invite",
        ),
        (
            json!({"email": "x@acme.test", "password": "short"}),
            "weak_password",
        ),
    ] {
        let refused = post("/api/auth/admin/users", admin.clone(), body).await;
        assert_eq!(refused.status(), 400);
        let problem: Value = refused.json().await.unwrap();
        assert!(
            problem["code"] == code
                || (code == "weak_password"
                    && problem["code"].as_str().unwrap().starts_with("password")),
            "{problem}"
        );
    }
    for query in [
        "limit=0",
        "limit=201",
        "limit=ten",
        "cursor=%25%25",
        "cursor=_w",
        "colour=red",
    ] {
        let path = format!("/api/auth/admin/users?{query}");
        let refused = get(&server, &path, &admin).await;
        assert_eq!(refused.status(), 400, "{query}");
        let path = format!("/api/admin/tenants?{query}");
        assert_eq!(
            get(&server, &path, &operator).await.status(),
            400,
            "{query}"
        );
    }
    let patch = send(
        &server,
        reqwest::Method::PATCH,
        "/api/admin/tenants/acme",
        &operator,
        Some(&json!({"require_mfa": true, "colour": 1})),
    )
    .await;
    assert_problem(patch, 400, "invalid_request").await;
    let patch = send(
        &server,
        reqwest::Method::PATCH,
        "/api/admin/tenants/acme",
        &operator,
        Some(&json!({"require_mfa": true, "registration": "closed"})),
    )
    .await;
    let patched = json_of(patch, 200).await;
    assert_eq!(patched["require_mfa"], true);
    assert_eq!(patched["registration"], "closed");
    assert_eq!(
        patched["cors_origins"],
        json!(["https://app.acme.test"]),
        "untouched"
    );
    let shown = json_of(
        get(&server, "/api/admin/tenants/acme", &operator).await,
        200,
    )
    .await;
    assert_eq!(shown["require_mfa"], true);
    assert_problem(
        get(&server, "/api/admin/tenants/no-such", &operator).await,
        404,
        "tenant_not_found",
    )
    .await;
    assert_problem(
        get(&server, "/api/admin/tenants/NOT_A_SLUG", &operator).await,
        404,
        "tenant_not_found",
    )
    .await;

    // Tenants, newest first, a page of two at a time, each once.
    for slug in ["t-one", "t-two", "t-three", "t-four"] {
        server.clock.advance(Duration::from_secs(1));
        json_of(
            post(
                "/api/admin/tenants",
                operator.clone(),
                json!({"slug": slug}),
            )
            .await,
            201,
        )
        .await;
    }
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = json_of(
            get(
                &server,
                &format!("/api/admin/tenants?limit=2{cursor}"),
                &operator,
            )
            .await,
            200,
        )
        .await;
        seen.extend(
            page["tenants"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["slug"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => break,
        }
    }
    assert_eq!(&seen[..4], ["t-four", "t-three", "t-two", "t-one"]);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), seen.len());
    assert!(
        seen.contains(&"acme".to_owned()) && seen.contains(&"default".to_owned()),
        "{seen:?}"
    );
}
both!(bad_input_is_refused_and_tenants_page_newest_first);

/// A tenant deleted on one node is forgotten by another at its next read of the revocation log
/// (every `TESSERA_REVOCATION_POLL_MS`): a sign-in there is then refused as for any unknown
/// tenant (401 `invalid_credentials`, the canonical sign-in's one answer), no longer a query of
/// the dropped schema (a 500, which it stays for the directory's 30 s without the log's entry;
/// this test's clock never moves them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_node_forgets_a_deleted_tenant() {
    let one = TestServer::start(Backend::Postgres).await;
    let two = one.second_node(&[]).await;
    let operator = operator_token(&one);
    tenant_with_admin(&one, &operator, "acme").await;
    // The second node knows the tenant (its directory trusts it for 30 s).
    two.login("acme", "admin@acme.test", PASSWORD).await;
    let deleted = send(
        &one,
        reqwest::Method::DELETE,
        "/api/admin/tenants/acme",
        &operator,
        Some(&json!({"confirm": "acme"})),
    )
    .await;
    assert_eq!(deleted.status(), 200);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    for n in 0.. {
        // Another address each time: the per-account quota is not what this waits on.
        let email = format!("probe{n}@acme.test");
        let body = json!({"tenant": "acme", "email": email, "password": PASSWORD});
        let login = two
            .post_from("/api/auth/login", &body, &common::unique_ip())
            .await;
        if login.status() != 500 {
            assert_problem(login, 401, "invalid_credentials").await;
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the second node still queries the dropped schema"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
