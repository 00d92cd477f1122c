//! The OpenID provider's hosted sign-in page in a real headless browser (Debian's Chromium
//! through chromedriver): password and authenticator code, then single sign-on for a second
//! client, `prompt=login` and `prompt=none`. The client's redirect URI is a real page on
//! loopback, so that the browser really follows the redirect that comes after the form's POST
//! (which the page's CSP `form-action` must allow). Screenshots go to `target/test-artifacts/`.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{Backend, TestServer, PASSWORD, SELF_LOCALHOST_URL, SELF_URL};
use fantoccini::{Client, Locator};
use tessera_core::jwt::KeyAlgorithm;
use tessera_core::model::TenantSlug;
use tessera_origin::clock::Clock as _;
use tessera_origin::services::oidc_clients::ClientSettings;
use tessera_testing::browser::Chromedriver;
use tessera_testing::form_browser::query_param;

/// RFC 7636's example: a verifier and its S256 challenge.
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// An application's callback page on loopback: it only has to load.
async fn callback_page() -> String {
    let app = axum::Router::new().route(
        "/callback",
        axum::routing::get(|| async { axum::response::Html("<p id=\"app\">back at the app</p>") }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/callback", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

async fn register(server: &TestServer, callback: &str, name: &str) -> String {
    let settings = ClientSettings {
        name: name.into(),
        redirect_uris: vec![callback.into()],
        post_logout_redirect_uris: vec![],
        grants: vec![],
        id_token_alg: KeyAlgorithm::RS256,
    };
    server
        .state
        .services
        .oidc_clients
        .create(&TenantSlug::parse("default").unwrap(), settings, true)
        .await
        .unwrap()
        .client
        .id
}

fn authorize_url(server: &TestServer, client: &str, callback: &str, extra: &str) -> String {
    let redirect: String = url::form_urlencoded::byte_serialize(callback.as_bytes()).collect();
    server.url(&format!(
        "/oidc/default/authorize?response_type=code&scope=openid%20email&client_id={client}\
         &redirect_uri={redirect}&state=st4te&nonce=n0nce&code_challenge={CHALLENGE}\
         &code_challenge_method=S256{extra}"
    ))
}

async fn screenshot(browser: &Client, name: &str) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    let png = browser.screenshot().await.unwrap();
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
}

async fn fill(browser: &Client, id: &str, value: &str) {
    browser
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Id(id))
        .await
        .unwrap_or_else(|e| panic!("#{id}: {e}"))
        .send_keys(value)
        .await
        .unwrap();
}

async fn press(browser: &Client, id: &str) {
    browser
        .find(Locator::Id(id))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// Waits until the browser is at the app's callback; answers its URL.
async fn at_callback(browser: &Client) -> String {
    let reached = browser
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Id("app"))
        .await;
    let url = browser.current_url().await.unwrap().to_string();
    if reached.is_err() {
        let source = browser.source().await.unwrap_or_default();
        panic!("the browser did not reach the app's callback: at {url}: {source}");
    }
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_signs_in_with_password_and_code_then_single_sign_on() {
    let server = TestServer::start_with(Backend::Sqlite, &[("TESSERA_PUBLIC_URL", SELF_URL)]).await;
    server
        .create_user("default", "ann@example.com", PASSWORD)
        .await;
    let tokens = server.login("default", "ann@example.com", PASSWORD).await;
    let (secret, _) = server
        .enrol_totp(tokens["access_token"].as_str().unwrap(), PASSWORD)
        .await;
    let callback = callback_page().await;
    let first = register(&server, &callback, "First App").await;
    let second = register(&server, &callback, "Second App").await;
    let driver = Chromedriver::start();
    let browser = driver.browser().await;

    // No session yet: prompt=none goes straight back with login_required.
    browser
        .goto(&authorize_url(&server, &first, &callback, "&prompt=none"))
        .await
        .unwrap();
    let back = at_callback(&browser).await;
    assert_eq!(
        query_param(&back, "error").as_deref(),
        Some("login_required")
    );

    // Password, then the authenticator's code, on the hosted page.
    browser
        .goto(&authorize_url(&server, &first, &callback, ""))
        .await
        .unwrap();
    fill(&browser, "email", "ann@example.com").await;
    fill(&browser, "password", PASSWORD).await;
    screenshot(&browser, "oidc-sign-in").await;
    press(&browser, "submit").await;
    // The next time step: the enrolment's own code may not be used again.
    server.clock.advance(Duration::from_secs(30));
    let now = u64::try_from(server.clock.now_secs()).unwrap();
    fill(&browser, "code", &tessera_testing::pyotp(&secret, now)).await;
    screenshot(&browser, "oidc-second-factor").await;
    press(&browser, "submit").await;
    let back = at_callback(&browser).await;
    assert_eq!(query_param(&back, "state").as_deref(), Some("st4te"));
    assert!(query_param(&back, "code").is_some(), "{back}");

    // A second client: straight back with a code, no form (single sign-on).
    browser
        .goto(&authorize_url(&server, &second, &callback, ""))
        .await
        .unwrap();
    let back = at_callback(&browser).await;
    assert!(query_param(&back, "code").is_some(), "{back}");

    // prompt=login asks again.
    browser
        .goto(&authorize_url(&server, &second, &callback, "&prompt=login"))
        .await
        .unwrap();
    browser
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Id("password"))
        .await
        .expect("prompt=login shows the form");
    browser.close().await.unwrap();
}

/// A person with a passkey signs in at the hosted page with it alone: the page's one script
/// runs the ceremony with the browser's own WebAuthn (Chromium's virtual authenticator).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_signs_in_with_a_passkey_at_the_hosted_page() {
    use tessera_testing::browser::{run_on_page, AddVirtualAuthenticator};
    let server = TestServer::start_with(
        Backend::Sqlite,
        &[("TESSERA_PUBLIC_URL", SELF_LOCALHOST_URL)],
    )
    .await;
    let public = format!("http://localhost:{}", server.addr.port());
    server
        .create_user("default", "ann@example.com", PASSWORD)
        .await;
    let tokens = server.login("default", "ann@example.com", PASSWORD).await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let callback = callback_page().await;
    let client = register(&server, &callback, "First App").await;
    let driver = Chromedriver::start();
    let browser = driver.browser().await;
    browser.issue_cmd(AddVirtualAuthenticator).await.unwrap();
    let page = authorize_url(&server, &client, &callback, "").replace(&server.base, &public);
    browser.goto(&page).await.unwrap();

    // Ann adds a passkey from this origin (as her account page would).
    let added = run_on_page(
        &browser,
        r#"(async (token, password) => {
            const post = (path, body) => fetch(path, {method: "POST",
                headers: {"content-type": "application/json", authorization: "Bearer " + token},
                body: JSON.stringify(body)});
            const options = await (await post("/api/auth/passkeys/register/options", {password})).json();
            const publicKey = PublicKeyCredential.parseCreationOptionsFromJSON(options.publicKey);
            const credential = await navigator.credentials.create({publicKey});
            const added = await post("/api/auth/passkeys/register",
                {ceremony: options.ceremony, credential: credential.toJSON(), name: "This browser"});
            return added.status;
        })(arguments[0], arguments[1])"#,
        vec![serde_json::json!(access), serde_json::json!(PASSWORD)],
    )
    .await;
    assert_eq!(added, serde_json::json!(201), "{added}");

    browser.goto(&page).await.unwrap();
    let button = browser
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Id("passkey"))
        .await
        .unwrap();
    assert!(
        button.is_displayed().await.unwrap(),
        "the script shows the button"
    );
    screenshot(&browser, "oidc-passkey").await;
    button.click().await.unwrap();
    let back = at_callback(&browser).await;
    assert_eq!(query_param(&back, "state").as_deref(), Some("st4te"));
    assert!(query_param(&back, "code").is_some(), "{back}");
    browser.close().await.unwrap();
}
