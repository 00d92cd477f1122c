//! The hosted pages behind emailed links, in a real headless browser (Debian's Chromium through
//! chromedriver): the reset link from a delivered email opened, the form filled and submitted,
//! and the new password used; the confirmation page's button likewise. Screenshots go to
//! `target/test-artifacts/`.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{unique_ip, Backend, TestServer, PASSWORD};
use fantoccini::{Client, Locator};
use serde_json::json;
use tessera_testing::browser::{
    passkey_app_page, run_on_page, AddVirtualAuthenticator, Chromedriver,
};

const NEW_PASSWORD: &str = "a brand new and long passphrase";

async fn screenshot(browser: &Client, name: &str) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    let png = browser.screenshot().await.unwrap();
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
}

async fn text_of(browser: &Client, id: &str) -> String {
    browser
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Id(id))
        .await
        .unwrap_or_else(|e| panic!("#{id}: {e}"))
        .text()
        .await
        .unwrap()
}

/// The emailed link, pointed at the test server instead of the configured public URL.
fn local(server: &TestServer, link: &str) -> String {
    link.replace("https://auth.tessera.test", &server.base)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_is_reset_in_a_browser_from_the_emailed_link() {
    let (server, sink) = TestServer::with_sink(Backend::Sqlite, &[]).await;
    server
        .create_user("default", "ann@example.com", PASSWORD)
        .await;
    let forgot = json!({"tenant": "default", "email": "ann@example.com"});
    server
        .post_from("/api/auth/forgot-password", &forgot, &unique_ip())
        .await;
    let mail = sink.wait_for("ann@example.com", 1).await.remove(0);
    let link = local(&server, &mail.link());

    // The page's own policy: no script, forms to this origin only, no Referer, no cache.
    let page = server.http.get(&link).send().await.unwrap();
    let headers = page.headers().clone();
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.starts_with("default-src 'none'; style-src 'sha256-"),
        "{csp}"
    );
    assert!(csp.contains("form-action 'self'"), "{csp}");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert_eq!(headers["cache-control"], "no-store");
    assert!(!page.text().await.unwrap().contains("<script"));

    let driver = Chromedriver::start();
    let browser = driver.browser().await;
    browser.goto(&link).await.unwrap();
    assert_eq!(browser.title().await.unwrap(), "Choose a new password");
    // The stylesheet applies: its hash in the CSP is right.
    let color = browser
        .execute(
            "return getComputedStyle(document.querySelector('button')).backgroundColor",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(color, json!("rgb(31, 79, 209)"));

    // Two different passwords: the form says so and keeps the link usable.
    browser
        .find(Locator::Id("password"))
        .await
        .unwrap()
        .send_keys(NEW_PASSWORD)
        .await
        .unwrap();
    browser
        .find(Locator::Id("password_confirm"))
        .await
        .unwrap()
        .send_keys("something else entirely")
        .await
        .unwrap();
    browser
        .find(Locator::Id("submit"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    assert_eq!(
        text_of(&browser, "error").await,
        "The two passwords differ."
    );

    browser
        .find(Locator::Id("password"))
        .await
        .unwrap()
        .send_keys(NEW_PASSWORD)
        .await
        .unwrap();
    browser
        .find(Locator::Id("password_confirm"))
        .await
        .unwrap()
        .send_keys(NEW_PASSWORD)
        .await
        .unwrap();
    screenshot(&browser, "reset-password-form").await;
    browser
        .find(Locator::Id("submit"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let outcome = text_of(&browser, "outcome").await;
    assert!(
        outcome.starts_with("Your password was changed"),
        "{outcome}"
    );
    screenshot(&browser, "reset-password-done").await;

    // The link is used up; the new password signs in.
    browser.goto(&link).await.unwrap();
    browser
        .find(Locator::Id("password"))
        .await
        .unwrap()
        .send_keys(PASSWORD)
        .await
        .unwrap();
    browser
        .find(Locator::Id("password_confirm"))
        .await
        .unwrap()
        .send_keys(PASSWORD)
        .await
        .unwrap();
    browser
        .find(Locator::Id("submit"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let outcome = text_of(&browser, "outcome").await;
    assert!(outcome.contains("used already"), "{outcome}");
    browser.close().await.unwrap();
    server
        .login("default", "ann@example.com", NEW_PASSWORD)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_is_confirmed_in_a_browser_from_the_emailed_link() {
    let (server, sink) = TestServer::with_sink(Backend::Sqlite, &[]).await;
    let register = json!({"tenant": "default", "email": "ann@example.com", "password": PASSWORD, "name": "Ann"});
    assert_eq!(
        server
            .post_from("/api/auth/register", &register, &unique_ip())
            .await
            .status(),
        201
    );
    let mail = sink.wait_for("ann@example.com", 1).await.remove(0);
    let driver = Chromedriver::start();
    let browser = driver.browser().await;
    browser.goto(&local(&server, &mail.link())).await.unwrap();
    assert_eq!(browser.title().await.unwrap(), "Confirm your email");
    browser
        .find(Locator::Id("confirm"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let outcome = text_of(&browser, "outcome").await;
    assert!(outcome.contains("is confirmed"), "{outcome}");
    screenshot(&browser, "verify-email-done").await;
    browser.close().await.unwrap();
    let tokens = server.login("default", "ann@example.com", PASSWORD).await;
    server.clock.advance(Duration::from_secs(2));
    let me: serde_json::Value = server
        .get_auth("/api/auth/me", tokens["access_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["email_verified"], true);
    assert_eq!(me["teams"][0]["name"], "Ann's team");
}

/// A page of a browser app: served from its own origin, it signs in to Tessera with `fetch`.
async fn app_page() -> String {
    let page = r#"<!doctype html><html><head><title>app</title></head><body>app</body></html>"#;
    let app = axum::Router::new().route(
        "/",
        axum::routing::get(move || async move { axum::response::Html(page) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// What the page's `fetch` of a sign-in to `tenant` gave: the status, or the browser's refusal.
async fn sign_in_from_the_page(browser: &Client, tessera: &str, tenant: &str) -> String {
    let script = r#"
        const [base, tenant, done] = arguments;
        fetch(base + "/api/auth/login", {
            method: "POST",
            headers: {"content-type": "application/json", "x-tenant": tenant},
            body: JSON.stringify({email: "ann@example.com", password: "correct horse battery staple"}),
        }).then(r => done("status " + r.status), e => done("refused: " + e.name));
    "#;
    let answer = browser
        .execute_async(script, vec![json!(tessera), json!(tenant)])
        .await
        .unwrap();
    answer.as_str().unwrap().to_owned()
}

/// Issue 25, item 2: a browser app on its own origin signs in to a tenant that lists that
/// origin (the preflight, with its `X-Tenant` and JSON content type, is answered from the
/// origin alone), and the browser refuses the answer of a tenant that does not list it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_app_signs_in_to_the_tenant_that_lists_its_origin() {
    let server = TestServer::start(Backend::Sqlite).await;
    let app = app_page().await;
    for tenant in ["acme", "globex"] {
        server.create_tenant(tenant).await;
        server
            .create_user(tenant, "ann@example.com", PASSWORD)
            .await;
    }
    server
        .change_tenant(
            "acme",
            tessera_origin::store::TenantChanges {
                cors_origins: Some(vec![tessera_origin::allowed_origin::AllowedOrigin::parse(
                    &app,
                )
                .unwrap()]),
                ..tessera_origin::store::TenantChanges::default()
            },
        )
        .await;
    let driver = Chromedriver::start();
    let browser = driver.browser().await;
    browser.goto(&format!("{app}/")).await.unwrap();
    assert_eq!(
        sign_in_from_the_page(&browser, &server.base, "acme").await,
        "status 200"
    );
    assert_eq!(
        sign_in_from_the_page(&browser, &server.base, "globex").await,
        "refused: TypeError"
    );
    browser.close().await.unwrap();
}

/// Issue 25, item 5: the pages of a tenant's emailed link show its name, and once done lead
/// back to its app (`--app-url`); a person rate-limited at a page gets a page with the wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenants_pages_show_its_name_and_lead_back_to_its_app() {
    let (server, sink) = TestServer::with_sink(Backend::Sqlite, &[]).await;
    let acme = server.create_tenant("acme").await;
    server
        .state
        .store
        .update_tenant(
            &acme,
            &tessera_origin::store::TenantChanges {
                name: Some("Acme Inc".into()),
                app_url: Some(Some(
                    tessera_origin::app_url::AppUrl::parse("https://app.acme.example/home")
                        .unwrap(),
                )),
                ..tessera_origin::store::TenantChanges::default()
            },
        )
        .await
        .unwrap();
    server
        .create_user("acme", "ann@example.com", PASSWORD)
        .await;
    let forgot = json!({"tenant": "acme", "email": "ann@example.com"});
    server
        .post_from("/api/auth/forgot-password", &forgot, &unique_ip())
        .await;
    let mail = sink.wait_for("ann@example.com", 1).await.remove(0);
    let form = server
        .http
        .get(local(&server, &mail.link()))
        .send()
        .await
        .unwrap();
    assert!(form.text().await.unwrap().contains("Acme Inc"));
    let token = mail.token();
    let done = server
        .http
        .post(server.url("/auth/reset-password"))
        .form(&[
            ("token", token.as_str()),
            ("password", NEW_PASSWORD),
            ("password_confirm", NEW_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 200);
    let html = done.text().await.unwrap();
    // Auto-escaped as HTML (`/` as `&#x2f;`), which a browser reads back as the URL.
    let link = html
        .split(r#"<a id="continue" href=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no way back: {html}"))
        .replace("&#x2f;", "/");
    assert_eq!(link, "https://app.acme.example/home");
    assert!(html.contains("Continue to Acme Inc"), "{html}");

    // Five reset submissions a minute per address; the sixth is a page, not JSON.
    let mut last = None;
    for _ in 0..6 {
        last = Some(
            server
                .http
                .post(server.url("/auth/reset-password"))
                .header("x-tessera-edge-secret", common::EDGE_SECRET)
                .header("x-tessera-client-ip", "192.0.2.66")
                .form(&[
                    ("token", "tsr_el_acme_x"),
                    ("password", "x"),
                    ("password_confirm", "x"),
                ])
                .send()
                .await
                .unwrap(),
        );
    }
    let limited = last.unwrap();
    assert_eq!(limited.status(), 429);
    assert!(limited.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(limited.headers().contains_key("retry-after"));
    assert!(limited.text().await.unwrap().contains("Please wait"));
}

/// Issue 26: a browser app adds a passkey with the browser's own WebAuthn (Chromium's virtual
/// authenticator through WebDriver), signs out, and signs in again with the passkey alone, no
/// address typed (a discoverable credential). The tenant's relying party is the app's origin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_adds_a_passkey_and_signs_in_with_it() {
    let server = TestServer::start(Backend::Sqlite).await;
    let app = passkey_app_page().await;
    server.create_tenant("acme").await;
    server
        .create_user("acme", "ann@example.com", PASSWORD)
        .await;
    server
        .change_tenant(
            "acme",
            tessera_origin::store::TenantChanges {
                cors_origins: Some(vec![tessera_origin::allowed_origin::AllowedOrigin::parse(
                    &app,
                )
                .unwrap()]),
                relying_party: Some(Some(
                    tessera_origin::relying_party::RelyingParty::new("localhost", &app).unwrap(),
                )),
                ..tessera_origin::store::TenantChanges::default()
            },
        )
        .await;
    let tokens = server.login("acme", "ann@example.com", PASSWORD).await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();

    let driver = Chromedriver::start();
    let browser = driver.browser().await;
    browser.issue_cmd(AddVirtualAuthenticator).await.unwrap();
    browser.goto(&format!("{app}/")).await.unwrap();
    let added = run_on_page(
        &browser,
        "addPasskey(arguments[0], arguments[1], arguments[2])",
        vec![json!(server.base), json!(access), json!(PASSWORD)],
    )
    .await;
    assert_eq!(added, json!(201), "{added}");

    // Signed out: the session that added the passkey ends.
    let out = server
        .post_auth("/api/auth/logout", &access, &json!({}))
        .await;
    assert_eq!(out.status(), 204);

    let signed_in = run_on_page(
        &browser,
        "signInWithPasskey(arguments[0], arguments[1])",
        vec![json!(server.base), json!("acme")],
    )
    .await;
    assert_eq!(signed_in["status"], 200, "{signed_in}");
    assert_eq!(signed_in["body"]["user"]["email"], "ann@example.com");
    let token = signed_in["body"]["access_token"].as_str().unwrap();
    assert_eq!(common::claims(token)["amr"], json!(["webauthn"]));
    assert_eq!(server.get_auth("/api/auth/me", token).await.status(), 200);
    screenshot(&browser, "passkey-signed-in").await;
    browser.close().await.unwrap();
}
