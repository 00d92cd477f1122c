//! Each tenant's OpenID provider, on SQLite and PostgreSQL, with a stock relying party: the
//! `openidconnect` crate discovers the issuer, builds the authorization URL with PKCE and a
//! nonce, exchanges the code, verifies the ID token with its own verifier (signature, issuer,
//! audience, nonce, `at_hash`), reads userinfo and refreshes. The user's side is a browser
//! without JavaScript: it follows the hosted page's forms, keeping its cookies.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;

use common::{unique_ip, Backend, TestServer, EDGE_SECRET, PASSWORD, SELF_URL};
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreProviderMetadata, CoreTokenResponse, CoreUserInfoClaims,
};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken, Scope,
    TokenResponse,
};
use tessera_core::jwt::KeyAlgorithm;
use tessera_core::model::TenantSlug;
use tessera_core::oidc::Grant;
use tessera_origin::services::oidc_clients::ClientSettings;
use tessera_testing::form_browser::{form_action, query_param, FormBrowser, Page};

const CALLBACK: &str = "https://app.example.com/callback";
const LOGGED_OUT: &str = "https://app.example.com/bye";

async fn provider(backend: Backend) -> TestServer {
    TestServer::start_with(backend, &[("TESSERA_PUBLIC_URL", SELF_URL)]).await
}

/// Registers a client in `tenant`: its id and, unless public, its secret.
async fn register(
    server: &TestServer,
    tenant: &str,
    public: bool,
    alg: KeyAlgorithm,
) -> (String, Option<String>) {
    let settings = ClientSettings {
        name: "Example App".into(),
        redirect_uris: vec![CALLBACK.into()],
        post_logout_redirect_uris: vec![LOGGED_OUT.into()],
        grants: vec![Grant::AuthorizationCode, Grant::RefreshToken],
        id_token_alg: alg,
    };
    let registered = server
        .state
        .services
        .oidc_clients
        .create(&TenantSlug::parse(tenant).unwrap(), settings, public)
        .await
        .expect("client");
    (registered.client.id, registered.secret)
}

fn http() -> openidconnect::reqwest::Client {
    openidconnect::reqwest::Client::builder()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

type Rp = CoreClient<
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointMaybeSet,
    openidconnect::EndpointMaybeSet,
>;

/// The relying party of `client` at `tenant`'s issuer, by discovery.
async fn relying_party(server: &TestServer, tenant: &str, id: &str, secret: Option<&str>) -> Rp {
    let issuer = IssuerUrl::new(server.url(&format!("/oidc/{tenant}"))).unwrap();
    let metadata = CoreProviderMetadata::discover_async(issuer, &http())
        .await
        .expect("discovery");
    CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(id.to_owned()),
        secret.map(|s| ClientSecret::new(s.to_owned())),
    )
    .set_redirect_uri(RedirectUrl::new(CALLBACK.to_owned()).unwrap())
}

/// A browser of its own address (so that per-IP limits of one test do not meet another's),
/// which the test origin believes as the edge's.
fn new_browser() -> FormBrowser {
    FormBrowser::new()
        .with_header("x-tessera-edge-secret", EDGE_SECRET)
        .with_header("x-tessera-client-ip", &unique_ip())
}

/// Exchanges `code` with the stock client, PKCE verifier and all.
async fn redeem(rp: &Rp, code: String, verifier: PkceCodeVerifier) -> CoreTokenResponse {
    rp.exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http())
        .await
        .expect("code exchange")
}

/// The ID token's `amr`, as strings.
fn amr_of(claims: &openidconnect::core::CoreIdTokenClaims) -> Vec<String> {
    claims
        .auth_method_refs()
        .unwrap()
        .iter()
        .map(|m| m.to_string())
        .collect()
}

struct Started {
    url: String,
    state: CsrfToken,
    nonce: Nonce,
    verifier: PkceCodeVerifier,
}

fn start(rp: &Rp, scopes: &[&str]) -> Started {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = rp.authorize_url(
        CoreAuthenticationFlow::AuthorizationCode,
        CsrfToken::new_random,
        Nonce::new_random,
    );
    for scope in scopes {
        request = request.add_scope(Scope::new((*scope).to_owned()));
    }
    let (url, state, nonce) = request.set_pkce_challenge(challenge).url();
    Started {
        url: url.to_string(),
        state,
        nonce,
        verifier,
    }
}

/// Signs in at the hosted page with a password: answers the code the browser is sent back
/// with, after checking `state` and `iss`.
async fn sign_in(
    server: &TestServer,
    browser: &mut FormBrowser,
    started: &Started,
    tenant: &str,
) -> String {
    let form = browser.get(&started.url).await;
    assert_eq!(form.status, 200, "{}", form.html);
    assert!(form.html.contains("Example App"), "{}", form.html);
    let done = browser
        .submit(
            &server.base,
            &form,
            &[("email", "ann@example.com"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.html);
    code_of(server, &done, started, tenant)
}

fn code_of(server: &TestServer, page: &Page, started: &Started, tenant: &str) -> String {
    let location = page.location.clone().expect("a redirect");
    assert!(location.starts_with(CALLBACK), "{location}");
    assert_eq!(
        query_param(&location, "state").as_deref(),
        Some(started.state.secret().as_str())
    );
    assert_eq!(
        query_param(&location, "iss"),
        Some(server.url(&format!("/oidc/{tenant}")))
    );
    query_param(&location, "code").unwrap_or_else(|| panic!("no code in {location}"))
}

async fn a_stock_client_signs_in_refreshes_and_revokes(backend: Backend) {
    let server = provider(backend).await;
    server
        .create_user("default", "ann@example.com", PASSWORD)
        .await;
    let (id, secret) = register(&server, "default", false, KeyAlgorithm::RS256).await;
    let rp = relying_party(&server, "default", &id, secret.as_deref()).await;
    let started = start(&rp, &["email", "offline_access"]);
    let mut browser = new_browser();
    let code = sign_in(&server, &mut browser, &started, "default").await;

    let tokens = redeem(&rp, code, started.verifier).await;
    let id_token = tokens.id_token().expect("an ID token");
    let verifier = rp.id_token_verifier();
    let claims = id_token
        .claims(&verifier, &started.nonce)
        .expect("ID token verifies");
    assert_eq!(claims.email().map(|e| e.as_str()), Some("ann@example.com"));
    assert_eq!(claims.issuer().as_str(), server.url("/oidc/default"),);
    assert_eq!(amr_of(claims), vec!["pwd"]);
    assert!(claims.auth_time().is_some());
    let at_hash = AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&verifier).unwrap(),
    )
    .unwrap();
    assert_eq!(claims.access_token_hash(), Some(&at_hash));
    assert_eq!(
        id_token.signing_alg().unwrap(),
        &openidconnect::core::CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256
    );

    let info: CoreUserInfoClaims = rp
        .user_info(tokens.access_token().clone(), None)
        .unwrap()
        .request_async(&http())
        .await
        .expect("userinfo");
    assert_eq!(info.subject(), claims.subject());
    assert_eq!(info.email().map(|e| e.as_str()), Some("ann@example.com"));

    // The provider's access token is an access token like any other.
    let access = tokens.access_token().secret().clone();
    let verified = server.get_auth("/api/auth/verify", &access).await;
    assert_eq!(verified.status(), 200);

    let refresh = tokens
        .refresh_token()
        .expect("offline_access gives a refresh token");
    let renewed = rp
        .exchange_refresh_token(refresh)
        .unwrap()
        .request_async(&http())
        .await
        .expect("refresh");
    assert_ne!(renewed.access_token().secret(), &access);
    // Past the grace window for concurrent presentations, the rotated-out token is a reuse:
    // the family ends.
    server.clock.advance(std::time::Duration::from_secs(120));
    let reused = rp
        .exchange_refresh_token(refresh)
        .unwrap()
        .request_async(&http())
        .await;
    assert!(reused.is_err());
    let after = server
        .get_auth("/api/auth/me", renewed.access_token().secret())
        .await;
    assert_eq!(after.status(), 401, "reuse ended the session");
}
both!(a_stock_client_signs_in_refreshes_and_revokes);

async fn revocation_ends_the_session_everywhere(backend: Backend) {
    let server = provider(backend).await;
    server
        .create_user("default", "ann@example.com", PASSWORD)
        .await;
    let (id, secret) = register(&server, "default", false, KeyAlgorithm::EdDSA).await;
    let rp = relying_party(&server, "default", &id, secret.as_deref()).await;
    let started = start(&rp, &["offline_access"]);
    let code = sign_in(&server, &mut new_browser(), &started, "default").await;
    let tokens = redeem(&rp, code, started.verifier).await;
    // EdDSA ID tokens verify with the stock client too.
    tokens
        .id_token()
        .unwrap()
        .claims(&rp.id_token_verifier(), &started.nonce)
        .expect("EdDSA ID token verifies");
    let refresh: RefreshToken = tokens.refresh_token().unwrap().clone();

    let introspected: serde_json::Value = server
        .http
        .post(server.url("/oidc/default/introspect"))
        .basic_auth(&id, secret.as_deref())
        .form(&[("token", refresh.secret().as_str())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(introspected["active"], true, "{introspected}");
    assert_eq!(introspected["client_id"], id.as_str());

    let revoked = server
        .http
        .post(server.url("/oidc/default/revoke"))
        .basic_auth(&id, secret.as_deref())
        .form(&[("token", refresh.secret().as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    let me = server
        .get_auth("/api/auth/me", tokens.access_token().secret())
        .await;
    assert_eq!(me.status(), 401, "the access token's session ended with it");
    let introspected: serde_json::Value = server
        .http
        .post(server.url("/oidc/default/introspect"))
        .basic_auth(&id, secret.as_deref())
        .form(&[("token", tokens.access_token().secret().as_str())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(introspected, serde_json::json!({ "active": false }));
}
both!(revocation_ends_the_session_everywhere);

/// A token request by hand, for the refusals a stock client would never make.
async fn exchange(
    server: &TestServer,
    id: &str,
    secret: Option<&str>,
    code: &str,
    verifier: &str,
) -> (u16, serde_json::Value) {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", CALLBACK),
        ("code_verifier", verifier),
        ("client_id", id),
    ];
    if let Some(secret) = secret {
        form.push(("client_secret", secret));
    }
    let response = server
        .http
        .post(server.url("/oidc/default/token"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers().get("cache-control").unwrap(), "no-store");
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn codes_are_single_use_bound_and_short_lived(backend: Backend) {
    let server = provider(backend).await;
    server
        .create_user("default", "ann@example.com", PASSWORD)
        .await;
    let (id, secret) = register(&server, "default", false, KeyAlgorithm::RS256).await;
    let (other, other_secret) = register(&server, "default", false, KeyAlgorithm::RS256).await;
    let rp = relying_party(&server, "default", &id, secret.as_deref()).await;
    let mut browser = new_browser();

    // PKCE: a verifier that is not the challenge's is refused.
    let started = start(&rp, &[]);
    let code = sign_in(&server, &mut browser, &started, "default").await;
    let wrong = PkceCodeChallenge::new_random_sha256().1;
    let (status, body) = exchange(&server, &id, secret.as_deref(), &code, wrong.secret()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );

    // Another client cannot redeem this client's code.
    let started = start(&rp, &[]);
    let code = code_of(
        &server,
        &browser.get(&started.url).await,
        &started,
        "default",
    );
    let (status, body) = exchange(
        &server,
        &other,
        other_secret.as_deref(),
        &code,
        started.verifier.secret(),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );

    // A wrong secret is invalid_client.
    let (status, body) = exchange(
        &server,
        &id,
        Some("tsr_cs_wrong"),
        &code,
        started.verifier.secret(),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client")),
        "{body}"
    );

    // Used once, a code is spent; used twice, the tokens of its first use are revoked.
    let started = start(&rp, &[]);
    let code = code_of(
        &server,
        &browser.get(&started.url).await,
        &started,
        "default",
    );
    let (status, first) = exchange(
        &server,
        &id,
        secret.as_deref(),
        &code,
        started.verifier.secret(),
    )
    .await;
    assert_eq!(status, 200, "{first}");
    let access = first["access_token"].as_str().unwrap();
    assert_eq!(server.get_auth("/api/auth/me", access).await.status(), 200);
    let (status, body) = exchange(
        &server,
        &id,
        secret.as_deref(),
        &code,
        started.verifier.secret(),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    assert_eq!(server.get_auth("/api/auth/me", access).await.status(), 401);

    // A code lives a minute.
    let started = start(&rp, &[]);
    let code = code_of(
        &server,
        &browser.get(&started.url).await,
        &started,
        "default",
    );
    server.clock.advance(std::time::Duration::from_secs(61));
    let (status, body) = exchange(
        &server,
        &id,
        secret.as_deref(),
        &code,
        started.verifier.secret(),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
}
both!(codes_are_single_use_bound_and_short_lived);

async fn requests_are_refused_where_the_spec_says(backend: Backend) {
    let server = provider(backend).await;
    server
        .create_user("default", "ann@example.com", PASSWORD)
        .await;
    let (id, secret) = register(&server, "default", false, KeyAlgorithm::RS256).await;
    let (public, _) = register(&server, "default", true, KeyAlgorithm::RS256).await;
    let rp = relying_party(&server, "default", &id, secret.as_deref()).await;
    let mut browser = new_browser();

    // An unregistered redirect URI: an error page, never a redirect.
    let started = start(&rp, &[]);
    let evil = started.url.replace(
        &url::form_urlencoded::byte_serialize(CALLBACK.as_bytes()).collect::<String>(),
        "https%3A%2F%2Fevil.example.com%2Fcallback",
    );
    let page = browser.get(&evil).await;
    assert_eq!(page.status, 400);
    assert!(page.location.is_none());
    assert!(page.html.contains("has not registered"), "{}", page.html);

    // prompt=none without a session: login_required, back at the client.
    let page = browser.get(&format!("{}&prompt=none", started.url)).await;
    assert_eq!(page.status, 303);
    let location = page.location.unwrap();
    assert_eq!(
        query_param(&location, "error").as_deref(),
        Some("login_required")
    );
    assert_eq!(
        query_param(&location, "state").as_deref(),
        Some(started.state.secret().as_str())
    );

    // A public client must use PKCE.
    let no_pkce = server.url(&format!(
        "/oidc/default/authorize?response_type=code&scope=openid&client_id={public}&redirect_uri={}&state=s1",
        url::form_urlencoded::byte_serialize(CALLBACK.as_bytes()).collect::<String>()
    ));
    let page = browser.get(&no_pkce).await;
    let location = page.location.expect("redirected");
    assert_eq!(
        query_param(&location, "error").as_deref(),
        Some("invalid_request")
    );
    assert_eq!(query_param(&location, "state").as_deref(), Some("s1"));

    // The form without its CSRF token is refused, and nothing signs in.
    let form = browser.get(&started.url).await;
    let action = form_action(&form.html);
    let forged = browser
        .send(
            browser
                .http
                .post(server.url(&action))
                .form(&[("email", "ann@example.com"), ("password", PASSWORD)]),
        )
        .await;
    assert_eq!(forged.status, 403);
    assert!(forged.location.is_none());
    assert!(forged.html.contains("The form had expired"));

    // The nonce comes back in the ID token (the stock client checks it), and a wrong nonce is
    // refused by it.
    let code = sign_in(&server, &mut new_browser(), &started, "default").await;
    let tokens = redeem(&rp, code, started.verifier).await;
    let id_token = tokens.id_token().unwrap();
    assert_eq!(
        id_token
            .claims(&rp.id_token_verifier(), &started.nonce)
            .unwrap()
            .nonce()
            .map(|n| n.secret().clone()),
        Some(started.nonce.secret().clone())
    );
    assert!(id_token
        .claims(&rp.id_token_verifier(), &Nonce::new("another".into()))
        .is_err());

    // An RP of tenant B refuses tenant A's ID token.
    server.create_tenant("bravo").await;
    let rp_b = relying_party(&server, "bravo", &id, secret.as_deref()).await;
    assert!(id_token
        .claims(&rp_b.id_token_verifier(), &started.nonce)
        .is_err());
}
both!(requests_are_refused_where_the_spec_says);

async fn single_sign_on_second_factor_and_logout(backend: Backend) {
    let server = provider(backend).await;
    server
        .create_user("default", "ann@example.com", PASSWORD)
        .await;
    let tokens = server.login("default", "ann@example.com", PASSWORD).await;
    let (_, recovery) = server
        .enrol_totp(tokens["access_token"].as_str().unwrap(), PASSWORD)
        .await;
    let (first, first_secret) = register(&server, "default", false, KeyAlgorithm::RS256).await;
    let (second, second_secret) = register(&server, "default", false, KeyAlgorithm::RS256).await;
    let rp1 = relying_party(&server, "default", &first, first_secret.as_deref()).await;
    let rp2 = relying_party(&server, "default", &second, second_secret.as_deref()).await;
    let mut browser = new_browser();

    // Password, then the second factor on its own form.
    let started = start(&rp1, &[]);
    let form = browser.get(&started.url).await;
    let step = browser
        .submit(
            &server.base,
            &form,
            &[("email", "ann@example.com"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(step.status, 200, "{}", step.html);
    assert!(step.html.contains("Confirm it is you"));
    let wrong = browser
        .submit(&server.base, &step, &[("code", "000000")])
        .await;
    assert_eq!(wrong.status, 401);
    let done = browser
        .submit(&server.base, &wrong, &[("code", &recovery[0])])
        .await;
    assert_eq!(done.status, 303, "{}", done.html);
    let code = code_of(&server, &done, &started, "default");
    let tokens = redeem(&rp1, code, started.verifier).await;
    let id_token = tokens.id_token().unwrap().clone();
    let claims = id_token
        .claims(&rp1.id_token_verifier(), &started.nonce)
        .unwrap();
    assert_eq!(amr_of(claims), vec!["pwd", "recovery"]);

    // A second client: no form at all.
    let started2 = start(&rp2, &[]);
    let page = browser.get(&started2.url).await;
    assert_eq!(page.status, 303, "single sign-on: {}", page.html);
    let code2 = code_of(&server, &page, &started2, "default");
    let tokens2 = redeem(&rp2, code2, started2.verifier).await;

    // prompt=login shows the form again; max_age=0 does once time has passed.
    let page = browser.get(&format!("{}&prompt=login", started2.url)).await;
    assert_eq!(page.status, 200);
    assert!(page.html.contains("Sign in"));
    server.clock.advance(std::time::Duration::from_secs(5));
    let page = browser.get(&format!("{}&max_age=0", started2.url)).await;
    assert_eq!(page.status, 200);

    // RP-initiated logout ends the browser session and both clients' sessions.
    let logout = format!(
        "{}?id_token_hint={}&post_logout_redirect_uri={}&state=bye",
        server.url("/oidc/default/end-session"),
        id_token,
        url::form_urlencoded::byte_serialize(LOGGED_OUT.as_bytes()).collect::<String>()
    );
    let page = browser.get(&logout).await;
    assert_eq!(page.status, 303, "{}", page.html);
    assert_eq!(
        page.location.as_deref(),
        Some(&*format!("{LOGGED_OUT}?state=bye"))
    );
    for access in [tokens.access_token(), tokens2.access_token()] {
        let me = server.get_auth("/api/auth/me", access.secret()).await;
        assert_eq!(me.status(), 401);
    }
    let page = browser.get(&start(&rp1, &[]).url).await;
    assert_eq!(page.status, 200, "signed out: the form again");
}
both!(single_sign_on_second_factor_and_logout);

async fn the_form_has_a_per_account_limit(backend: Backend) {
    let server = provider(backend).await;
    server
        .create_user("default", "ann@example.com", PASSWORD)
        .await;
    let (id, secret) = register(&server, "default", false, KeyAlgorithm::RS256).await;
    let rp = relying_party(&server, "default", &id, secret.as_deref()).await;
    let started = start(&rp, &[]);
    let mut statuses = Vec::new();
    for _ in 0..6 {
        // A new address each time: only the account's own quota can stop the sixth.
        let mut browser = new_browser();
        let form = browser.get(&started.url).await;
        let page = browser
            .submit(
                &server.base,
                &form,
                &[("email", "ann@example.com"), ("password", "wrong")],
            )
            .await;
        statuses.push(page.status);
    }
    assert_eq!(statuses, vec![401, 401, 401, 401, 401, 429]);
}
both!(the_form_has_a_per_account_limit);

async fn discovery_describes_the_issuer(backend: Backend) {
    let server = provider(backend).await;
    let doc: serde_json::Value = server
        .http
        .get(server.url("/oidc/default/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["issuer"], server.url("/oidc/default"));
    assert_eq!(
        doc["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(doc["jwks_uri"], server.url("/oidc/default/jwks"));
    let jwks: serde_json::Value = server
        .http
        .get(server.url("/oidc/default/jwks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let types: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kty"].as_str().unwrap())
        .collect();
    assert!(types.contains(&"RSA") && types.contains(&"OKP"), "{jwks}");
    let unknown = server
        .http
        .get(server.url("/oidc/nobody/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
}
both!(discovery_describes_the_issuer);

async fn a_service_signs_in_as_itself(backend: Backend) {
    let server = provider(backend).await;
    let settings = ClientSettings {
        name: "Billing worker".into(),
        redirect_uris: vec![CALLBACK.into()],
        post_logout_redirect_uris: vec![],
        grants: vec![Grant::ClientCredentials],
        id_token_alg: KeyAlgorithm::RS256,
    };
    let tenant = TenantSlug::parse("default").unwrap();
    let clients = &server.state.services.oidc_clients;
    let registered = clients
        .create(&tenant, settings.clone(), false)
        .await
        .unwrap();
    let (id, secret) = (registered.client.id, registered.secret.unwrap());
    assert!(
        clients.create(&tenant, settings, true).await.is_err(),
        "a public client has no secret to prove itself with"
    );

    let answer: serde_json::Value = server
        .http
        .post(server.url("/oidc/default/token"))
        .basic_auth(&id, Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = answer["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("{answer}"));
    assert!(answer.get("refresh_token").is_none() && answer.get("id_token").is_none());
    let verified: serde_json::Value = server
        .get_auth("/api/auth/verify", access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(verified["user"]["id"], id.as_str(), "{verified}");
    assert_eq!(verified["user"]["role"], "client");
    let introspected: serde_json::Value = server
        .http
        .post(server.url("/oidc/default/introspect"))
        .basic_auth(&id, Some(&secret))
        .form(&[("token", access)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(introspected["active"], true);
    assert_eq!(introspected["client_id"], id.as_str());

    // A grant the client is not registered for.
    let refused: serde_json::Value = server
        .http
        .post(server.url("/oidc/default/token"))
        .basic_auth(&id, Some(&secret))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", "x")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(refused["error"], "unauthorized_client");

    // Deleting the client ends its tokens.
    clients.delete(&tenant, &id).await.unwrap();
    assert_eq!(
        server.get_auth("/api/auth/verify", access).await.status(),
        401
    );
}
both!(a_service_signs_in_as_itself);

/// A second, independent relying party: Authlib (Python), which validates the ID token by its
/// own reading of the spec (tests/oidc/authlib_rp.py).
async fn authlib_signs_in_too(backend: Backend) {
    let server = provider(backend).await;
    server
        .create_user("default", "ann@example.com", PASSWORD)
        .await;
    let (id, secret) = register(&server, "default", false, KeyAlgorithm::RS256).await;
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/oidc/authlib_rp.py");
    let issuer = server.url("/oidc/default");
    let secret = secret.unwrap();
    // Off the runtime's threads: the server answers the script meanwhile.
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .arg(script)
            .args([&issuer, &id, &secret, CALLBACK, "ann@example.com", PASSWORD])
            .output()
            .expect("python3")
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("No module named"),
        "Authlib is needed (scripts/setup-test-services installs it): {stderr}"
    );
    assert!(
        output.status.success(),
        "the Authlib relying party failed: {stderr}"
    );
    let seen: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(seen["email"], "ann@example.com", "{seen}");
    assert_eq!(seen["userinfo_sub"], seen["sub"]);
    assert_eq!(seen["userinfo_email"], "ann@example.com");
    assert_eq!(seen["amr"], serde_json::json!(["pwd"]));
    assert_eq!(seen["refreshed"], true);
}
both!(authlib_signs_in_too);

/// A tenant's admins manage its clients over the canonical API, as the operator does with
/// `tessera client`; nobody else may.
async fn admins_manage_clients_over_the_api(backend: Backend) {
    use reqwest::Method;
    let server = provider(backend).await;
    server
        .create_user_as("default", "admin@example.com", PASSWORD, "admin")
        .await;
    server
        .create_user("default", "ann@example.com", PASSWORD)
        .await;
    let admin = server.login("default", "admin@example.com", PASSWORD).await;
    let admin = admin["access_token"].as_str().unwrap();
    let ann = server.login("default", "ann@example.com", PASSWORD).await;
    let ann = ann["access_token"].as_str().unwrap();
    let body = serde_json::json!({
        "name": "Example App",
        "redirect_uris": [CALLBACK],
        "post_logout_redirect_uris": [LOGGED_OUT],
    });

    let refused = server
        .send_auth(Method::POST, "/api/auth/clients", ann, &body)
        .await;
    common::assert_problem(refused, 403, "forbidden").await;
    let created = server
        .send_auth(Method::POST, "/api/auth/clients", admin, &body)
        .await;
    assert_eq!(created.status(), 201);
    let created: serde_json::Value = created.json().await.unwrap();
    assert_eq!(created["type"], "confidential");
    assert_eq!(
        created["grants"],
        serde_json::json!(["authorization_code", "refresh_token"])
    );
    let id = created["client_id"].as_str().unwrap().to_owned();
    let secret = created["client_secret"].as_str().unwrap().to_owned();

    // The registered client works with a stock relying party.
    let rp = relying_party(&server, "default", &id, Some(&secret)).await;
    let started = start(&rp, &[]);
    let code = sign_in(&server, &mut new_browser(), &started, "default").await;
    let tokens = redeem(&rp, code, started.verifier).await;

    let listed: serde_json::Value = server
        .send_auth(
            Method::GET,
            "/api/auth/clients",
            admin,
            &serde_json::json!({}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert!(listed[0].get("client_secret").is_none(), "never the secret");
    let path = format!("/api/auth/clients/{id}");
    let changed = server
        .send_auth(
            Method::PUT,
            &path,
            admin,
            &serde_json::json!({"name": "Renamed", "redirect_uris": [CALLBACK], "id_token_alg": "EdDSA"}),
        )
        .await;
    assert_eq!(changed.status(), 200);
    let changed: serde_json::Value = changed.json().await.unwrap();
    assert_eq!(
        (changed["name"].as_str(), changed["id_token_alg"].as_str()),
        (Some("Renamed"), Some("EdDSA"))
    );
    let bad = server
        .send_auth(
            Method::PUT,
            &path,
            admin,
            &serde_json::json!({"name": "x", "redirect_uris": ["http://app.example.com/cb"]}),
        )
        .await;
    common::assert_problem(bad, 400, "invalid_client_settings").await;

    let deleted = server
        .send_auth(Method::DELETE, &path, admin, &serde_json::json!({}))
        .await;
    assert_eq!(deleted.status(), 204);
    let gone = server
        .send_auth(Method::GET, &path, admin, &serde_json::json!({}))
        .await;
    common::assert_problem(gone, 404, "not_found").await;
    let me = server
        .get_auth("/api/auth/me", tokens.access_token().secret())
        .await;
    assert_eq!(me.status(), 401, "deleting the client ended its sessions");
}
both!(admins_manage_clients_over_the_api);

/// The page's other ways in: a code by email instead of the password, and the reset link for a
/// forgotten one (whose own page then leads back to sign in with the new password).
async fn the_page_offers_an_emailed_code_and_a_reset_link(backend: Backend) {
    let (server, sink) = TestServer::with_sink(backend, &[("TESSERA_PUBLIC_URL", SELF_URL)]).await;
    server
        .create_user("default", "ann@example.com", PASSWORD)
        .await;
    let (id, secret) = register(&server, "default", false, KeyAlgorithm::RS256).await;
    let rp = relying_party(&server, "default", &id, secret.as_deref()).await;
    let mut browser = new_browser();

    // An emailed code instead of the password.
    let started = start(&rp, &[]);
    let form = browser.get(&started.url).await;
    let link = tessera_testing::form_browser::link(&form.html, "email-code");
    let ask = browser.get(&server.url(&link)).await;
    assert_eq!(ask.status, 200, "{}", ask.html);
    let sent = browser
        .submit(&server.base, &ask, &[("email", "ann@example.com")])
        .await;
    assert_eq!(sent.status, 200, "{}", sent.html);
    assert!(sent.html.contains("is on its way"));
    let code = sink.next_to("ann@example.com", 0).await.code();
    let wrong = browser
        .submit(&server.base, &sent, &[("code", "000000")])
        .await;
    assert_eq!(wrong.status, 401);
    let done = browser
        .submit(&server.base, &wrong, &[("code", &code)])
        .await;
    assert_eq!(done.status, 303, "{}", done.html);
    let code = code_of(&server, &done, &started, "default");
    let tokens = redeem(&rp, code, started.verifier).await;
    let claims = tokens
        .id_token()
        .unwrap()
        .claims(&rp.id_token_verifier(), &started.nonce)
        .unwrap();
    assert_eq!(amr_of(claims), vec!["otp"]);

    // The reset link for a forgotten password, from the page.
    let mut other = new_browser();
    let started = start(&rp, &[]);
    let form = other.get(&started.url).await;
    let link = tessera_testing::form_browser::link(&form.html, "forgot");
    let ask = other.get(&server.url(&link)).await;
    assert_eq!(ask.status, 200, "{}", ask.html);
    let sent = other
        .submit(&server.base, &ask, &[("email", "ann@example.com")])
        .await;
    assert_eq!(sent.status, 200, "{}", sent.html);
    // (The second message told Ann that her first emailed code cleared the password someone
    // could have set before her: the account-takeover defence of an unconfirmed address.)
    let mail = sink.next_to("ann@example.com", 2).await;
    assert!(
        mail.text
            .contains(&server.url("/auth/reset-password?token=")),
        "{}",
        mail.text
    );
}
both!(the_page_offers_an_emailed_code_and_a_reset_link);
