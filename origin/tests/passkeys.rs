//! Passkeys, on SQLite and PostgreSQL, with real WebAuthn ceremonies: a software
//! authenticator (webauthn-authenticator-rs's `SoftPasskey`, which signs with its own P-256
//! keys and counts its signatures) answers the options the API gives, as a browser would hand
//! them to a security key.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{assert_problem, claims, unique_ip, Backend, TestServer, PASSWORD};
use serde_json::{json, Value};
use webauthn_authenticator_rs::prelude::Url;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_rs_proto::{CreationChallengeResponse, RequestChallengeResponse};

/// The origin of the tests' `TESSERA_PUBLIC_URL`, which is the default relying party.
const ORIGIN: &str = "https://auth.tessera.test";

/// An origin under the RP ID that is not the tenant's origin.
const SIBLING: &str = "https://evil.auth.tessera.test";

/// A software authenticator that verifies its user (as a platform authenticator's PIN or
/// biometrics would).
fn authenticator() -> WebauthnAuthenticator<SoftPasskey> {
    WebauthnAuthenticator::new(SoftPasskey::new(true))
}

/// Ann, signed in with her password: her access token.
async fn ann(server: &TestServer) -> String {
    server
        .create_user("default", "ann@example.com", PASSWORD)
        .await;
    let tokens = server.login("default", "ann@example.com", PASSWORD).await;
    tokens["access_token"].as_str().unwrap().to_owned()
}

/// Adds a passkey of `key` to the account of `access`, answering from `origin`.
async fn add_passkey(
    server: &TestServer,
    access: &str,
    key: &mut WebauthnAuthenticator<SoftPasskey>,
    origin: &str,
) -> reqwest::Response {
    let response = server
        .post_auth(
            "/api/auth/passkeys/register/options",
            access,
            &json!({ "password": PASSWORD }),
        )
        .await;
    assert_eq!(response.status(), 200);
    let options: Value = response.json().await.unwrap();
    let selection = &options["publicKey"]["authenticatorSelection"];
    assert_eq!(selection["residentKey"], "preferred", "{options}");
    assert_eq!(selection["userVerification"], "required");
    let creation: CreationChallengeResponse =
        serde_json::from_value(json!({ "publicKey": options["publicKey"] })).unwrap();
    let credential = key
        .do_registration(Url::parse(origin).unwrap(), creation)
        .unwrap();
    server
        .post_auth(
            "/api/auth/passkeys/register",
            access,
            &json!({ "ceremony": options["ceremony"], "credential": credential, "name": "Laptop" }),
        )
        .await
}

/// A server with Ann signed in and a passkey of hers added: the server, her access token and
/// the authenticator holding the passkey.
async fn ann_with_a_passkey(
    backend: Backend,
) -> (TestServer, String, WebauthnAuthenticator<SoftPasskey>) {
    let server = TestServer::start(backend).await;
    let access = ann(&server).await;
    let mut key = authenticator();
    let added = add_passkey(&server, &access, &mut key, ORIGIN).await;
    assert_eq!(added.status(), 201);
    (server, access, key)
}

/// Whether sign-in `options` name no passkey that `key` holds (it cannot answer them).
fn offers_none_of(key: &mut WebauthnAuthenticator<SoftPasskey>, options: &Value) -> bool {
    let request: RequestChallengeResponse =
        serde_json::from_value(json!({ "publicKey": options["publicKey"] })).unwrap();
    key.do_authentication(Url::parse(ORIGIN).unwrap(), request)
        .is_err()
}

/// Starts a passkey sign-in for `email` (none: discoverable); the options.
async fn login_options(server: &TestServer, tenant: &str, email: Option<&str>) -> Value {
    let mut body = json!({ "tenant": tenant });
    if let Some(email) = email {
        body["email"] = json!(email);
    }
    let response = server
        .post_from("/api/auth/passkeys/login/options", &body, &unique_ip())
        .await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// The authenticator's answer to sign-in `options`, from `origin`.
fn assertion(key: &mut WebauthnAuthenticator<SoftPasskey>, options: &Value, origin: &str) -> Value {
    let request: RequestChallengeResponse =
        serde_json::from_value(json!({ "publicKey": options["publicKey"] })).unwrap();
    let credential = key
        .do_authentication(Url::parse(origin).unwrap(), request)
        .unwrap();
    json!({ "ceremony": options["ceremony"], "credential": credential })
}

async fn finish(server: &TestServer, answer: &Value) -> reqwest::Response {
    server
        .post_from("/api/auth/passkeys/login", answer, &unique_ip())
        .await
}

async fn passkey_sign_in_replaces_the_password(backend: Backend) {
    let (server, sink) = TestServer::with_sink(backend, &[]).await;
    let access = ann(&server).await;
    let mut key = authenticator();

    // Adding one needs the password behind an ordinary token.
    let bare = server
        .post_auth("/api/auth/passkeys/register/options", &access, &json!({}))
        .await;
    assert_problem(bare, 403, "password_required").await;
    let added = add_passkey(&server, &access, &mut key, ORIGIN).await;
    assert_eq!(added.status(), 201);
    let added: Value = added.json().await.unwrap();
    assert_eq!(added["name"], "Laptop");
    let told = sink.next_to("ann@example.com", 0).await;
    assert_eq!(told.subject, "A second factor was added to your account");
    assert!(told.text.contains("A passkey now guards"), "{}", told.text);
    // Adding it ended the owner's other sessions, not the one that added it.
    let listed = server.get_auth("/api/auth/passkeys", &access).await;
    assert_eq!(listed.status(), 200);
    let listed: Value = listed.json().await.unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["id"], added["id"]);
    assert_eq!(listed[0]["last_used_at"], Value::Null);

    // Username-first sign-in: tokens, multi-factor, no password.
    let options = login_options(&server, "default", Some("ann@example.com")).await;
    assert_eq!(
        options["publicKey"]["allowCredentials"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let answer = assertion(&mut key, &options, ORIGIN);
    let signed_in = finish(&server, &answer).await;
    assert_eq!(signed_in.status(), 200);
    let tokens: Value = signed_in.json().await.unwrap();
    assert_eq!(
        claims(tokens["access_token"].as_str().unwrap())["amr"],
        json!(["webauthn"])
    );
    let me = server
        .get_auth("/api/auth/me", tokens["access_token"].as_str().unwrap())
        .await;
    assert_eq!(me.status(), 200);

    // A ceremony is single use: the same answer again is refused.
    assert_problem(finish(&server, &answer).await, 401, "invalid_credentials").await;
    let events = server.audit_events("default").await;
    assert!(
        events.iter().any(|e| e.starts_with("passkey_login ")),
        "{events:?}"
    );
    assert!(
        events.iter().any(|e| e.starts_with("passkey_added")),
        "{events:?}"
    );

    let listed: Value = server
        .get_auth("/api/auth/passkeys", &access)
        .await
        .json()
        .await
        .unwrap();
    assert!(listed[0]["last_used_at"].is_string(), "{listed}");
}
both!(passkey_sign_in_replaces_the_password);

async fn an_unknown_address_gets_options_of_the_same_shape(backend: Backend) {
    let (server, _, _) = ann_with_a_passkey(backend).await;
    let known = login_options(&server, "default", Some("ann@example.com")).await;
    let unknown = login_options(&server, "default", Some("nobody@example.com")).await;
    let shape = |options: &Value| {
        let mut keys: Vec<String> = options["publicKey"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        keys.sort();
        (
            keys,
            options["publicKey"]["allowCredentials"]
                .as_array()
                .unwrap()
                .len(),
            options["publicKey"]["allowCredentials"][0]["id"]
                .as_str()
                .unwrap()
                .len()
                > 20,
        )
    };
    assert_eq!(shape(&known), shape(&unknown));
    // The same decoy every time: nobody can tell it from a real one by asking twice.
    let again = login_options(&server, "default", Some("nobody@example.com")).await;
    assert_eq!(
        unknown["publicKey"]["allowCredentials"],
        again["publicKey"]["allowCredentials"]
    );
}
both!(an_unknown_address_gets_options_of_the_same_shape);

async fn a_counter_that_goes_backwards_is_refused_as_a_clone(backend: Backend) {
    let (server, _, mut key) = ann_with_a_passkey(backend).await;
    // Two ceremonies answered in order (counters 1 and 2), finished in the other order: the
    // second finish presents a counter below the stored one, as a cloned key would.
    let first = login_options(&server, "default", Some("ann@example.com")).await;
    let second = login_options(&server, "default", Some("ann@example.com")).await;
    let older = assertion(&mut key, &first, ORIGIN);
    let newer = assertion(&mut key, &second, ORIGIN);
    assert_eq!(finish(&server, &newer).await.status(), 200);
    assert_problem(finish(&server, &older).await, 401, "invalid_credentials").await;
    let events = server.audit_events("default").await;
    assert!(
        events
            .iter()
            .any(|e| e.starts_with("passkey_clone_suspected")),
        "{events:?}"
    );
}
both!(a_counter_that_goes_backwards_is_refused_as_a_clone);

async fn a_wrong_origin_or_another_tenants_ceremony_is_refused(backend: Backend) {
    let server = TestServer::start(backend).await;
    let access = ann(&server).await;
    // Registration answered on another origin under the RP ID (which an authenticator
    // allows): the server accepts only the tenant's origin.
    let mut phished = authenticator();
    let response = add_passkey(&server, &access, &mut phished, SIBLING).await;
    assert_problem(response, 400, "invalid_passkey").await;

    let mut key = authenticator();
    assert_eq!(
        add_passkey(&server, &access, &mut key, ORIGIN)
            .await
            .status(),
        201
    );
    // A sign-in answered on another origin: refused.
    let options = login_options(&server, "default", Some("ann@example.com")).await;
    let answer = assertion(&mut key, &options, SIBLING);
    assert_problem(finish(&server, &answer).await, 401, "invalid_credentials").await;
    // Ann's five credential requests a minute are spent: a minute passes.
    server.clock.advance(Duration::from_secs(61));
    // A sign-in for another RP ID (the parent domain, which the origin may also claim): the
    // authenticator signs for that RP ID, the server expects its own.
    let mut options = login_options(&server, "default", Some("ann@example.com")).await;
    options["publicKey"]["rpId"] = json!("tessera.test");
    let answer = assertion(&mut key, &options, ORIGIN);
    assert_problem(finish(&server, &answer).await, 401, "invalid_credentials").await;
    let failures = server
        .audit_events("default")
        .await
        .into_iter()
        .filter(|e| e.starts_with("passkey_login_failed"))
        .count();
    assert_eq!(
        failures, 2,
        "the wrong origin and the wrong RP ID are audited"
    );

    // Tenant B, with its own relying party: Ann's key of tenant "default" is no credential
    // there, even for the same address.
    server.create_tenant("other").await;
    server
        .create_user("other", "ann@example.com", PASSWORD)
        .await;
    let options = login_options(&server, "other", Some("ann@example.com")).await;
    // The decoy is all it offers; the authenticator has no key for it.
    assert!(offers_none_of(&mut key, &options));
    server.clock.advance(Duration::from_secs(61));
    // And an answer to tenant A's ceremony sent with tenant B's name in front is no ceremony
    // of B's.
    let options = login_options(&server, "default", Some("ann@example.com")).await;
    let mut answer = assertion(&mut key, &options, ORIGIN);
    let forged =
        answer["ceremony"]
            .as_str()
            .unwrap()
            .replacen("tsr_wc_default_", "tsr_wc_other_", 1);
    answer["ceremony"] = json!(forged);
    assert_problem(finish(&server, &answer).await, 401, "invalid_credentials").await;
}
both!(a_wrong_origin_or_another_tenants_ceremony_is_refused);

async fn a_passkey_can_be_renamed_and_removed_with_the_password(backend: Backend) {
    let server = TestServer::start(backend).await;
    let access = ann(&server).await;
    let mut key = authenticator();
    let added: Value = add_passkey(&server, &access, &mut key, ORIGIN)
        .await
        .json()
        .await
        .unwrap();
    let path = format!("/api/auth/passkeys/{}", added["id"].as_str().unwrap());
    let renamed = server
        .send_auth(
            reqwest::Method::PATCH,
            &path,
            &access,
            &json!({"name": "Phone"}),
        )
        .await;
    assert_eq!(renamed.status(), 200);
    let renamed: Value = renamed.json().await.unwrap();
    assert_eq!(renamed["name"], "Phone");
    server.clock.advance(Duration::from_secs(61));
    let bare = server.delete_auth(&path, &access, &json!({})).await;
    assert_problem(bare, 403, "password_required").await;
    let removed = server
        .delete_auth(&path, &access, &json!({"password": PASSWORD}))
        .await;
    assert_eq!(removed.status(), 204);
    let listed: Value = server
        .get_auth("/api/auth/passkeys", &access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed, json!([]));
    // Its key signs in no more.
    let options = login_options(&server, "default", Some("ann@example.com")).await;
    assert!(offers_none_of(&mut key, &options));
}
both!(a_passkey_can_be_renamed_and_removed_with_the_password);

/// A ceremony begun on one node finishes on another (the state is in the database), once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_ceremony_begun_on_one_node_finishes_on_another() {
    let one = TestServer::start(Backend::Postgres).await;
    let two = one.second_node(&[]).await;
    let access = ann(&one).await;
    let mut key = authenticator();
    assert_eq!(
        add_passkey(&one, &access, &mut key, ORIGIN).await.status(),
        201
    );
    let options = login_options(&one, "default", Some("ann@example.com")).await;
    let answer = assertion(&mut key, &options, ORIGIN);
    assert_eq!(finish(&two, &answer).await.status(), 200);
    assert_problem(finish(&one, &answer).await, 401, "invalid_credentials").await;
}

/// A password sign-in's challenge answered with a passkey.
async fn answer_challenge_with(
    server: &TestServer,
    key: &mut WebauthnAuthenticator<SoftPasskey>,
    tenant: &str,
    email: &str,
) -> reqwest::Response {
    let login = json!({"tenant": tenant, "email": email, "password": PASSWORD});
    let challenge: Value = server
        .post_from("/api/auth/login", &login, &unique_ip())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(challenge["mfa_required"], true, "{challenge}");
    assert_eq!(challenge["methods"], json!(["webauthn"]));
    let token = challenge["mfa_token"].as_str().unwrap();
    let options = server
        .post_from(
            "/api/auth/mfa/webauthn/options",
            &json!({ "mfa_token": token }),
            &unique_ip(),
        )
        .await;
    assert_eq!(options.status(), 200);
    let options: Value = options.json().await.unwrap();
    let request: RequestChallengeResponse =
        serde_json::from_value(json!({ "publicKey": options["publicKey"] })).unwrap();
    let credential = key
        .do_authentication(Url::parse(ORIGIN).unwrap(), request)
        .unwrap();
    server
        .post_from(
            "/api/auth/mfa/verify",
            &json!({ "mfa_token": token, "credential": credential }),
            &unique_ip(),
        )
        .await
}

async fn a_passkey_is_the_second_factor_after_a_password(backend: Backend) {
    let (server, _, mut key) = ann_with_a_passkey(backend).await;
    server.clock.advance(Duration::from_secs(61));
    let verified = answer_challenge_with(&server, &mut key, "default", "ann@example.com").await;
    assert_eq!(verified.status(), 200);
    let tokens: Value = verified.json().await.unwrap();
    assert_eq!(
        claims(tokens["access_token"].as_str().unwrap())["amr"],
        json!(["pwd", "webauthn"])
    );

    // A tenant that requires a second factor: the enrol-only token adds a passkey (no
    // password asked: it was given a moment ago), and the passkey is that factor from then on.
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
    let enrol: Value = server
        .post_from("/api/auth/login", &login, &unique_ip())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(enrol["mfa_enrollment_required"], true, "{enrol}");
    let restricted = enrol["access_token"].as_str().unwrap();
    let options: Value = server
        .post_auth(
            "/api/auth/passkeys/register/options",
            restricted,
            &json!({}),
        )
        .await
        .json()
        .await
        .unwrap();
    let creation: CreationChallengeResponse =
        serde_json::from_value(json!({ "publicKey": options["publicKey"] })).unwrap();
    let mut bobs = authenticator();
    let credential = bobs
        .do_registration(Url::parse(ORIGIN).unwrap(), creation)
        .unwrap();
    let added = server
        .post_auth(
            "/api/auth/passkeys/register",
            restricted,
            &json!({ "ceremony": options["ceremony"], "credential": credential }),
        )
        .await;
    assert_eq!(added.status(), 201);
    let verified = answer_challenge_with(&server, &mut bobs, "secure", "bob@example.com").await;
    assert_eq!(verified.status(), 200);
    // And a passkey alone signs in to that tenant: it is multi-factor by itself.
    let options = login_options(&server, "secure", Some("bob@example.com")).await;
    let answer = assertion(&mut bobs, &options, ORIGIN);
    assert_eq!(finish(&server, &answer).await.status(), 200);
}
both!(a_passkey_is_the_second_factor_after_a_password);

/// 1Password's software authenticator: a platform authenticator that keeps its passkeys
/// (discoverable credentials, with the account's handle) and verifies its user.
mod discoverable {
    use passkey::authenticator::{Authenticator, UiHint, UserCheck, UserValidationMethod};
    use passkey::client::{Client, DefaultClientData};
    use passkey::crypto::rust_crypto::RustCryptoBackend;
    use passkey::types::ctap2::{Aaguid, Ctap2Error};
    use passkey::types::webauthn::{CredentialCreationOptions, CredentialRequestOptions};
    use passkey::types::Passkey;
    use serde_json::{json, Value};

    pub struct VerifiedUser;

    #[async_trait::async_trait]
    impl UserValidationMethod for VerifiedUser {
        type PasskeyItem = Passkey;

        async fn check_user<'a>(
            &self,
            _hint: UiHint<'a, Self::PasskeyItem>,
            _presence: bool,
            _verification: bool,
        ) -> Result<UserCheck, Ctap2Error> {
            Ok(UserCheck {
                presence: true,
                verification: true,
            })
        }

        fn is_verification_enabled(&self) -> Option<bool> {
            Some(true)
        }

        fn is_presence_enabled(&self) -> bool {
            true
        }
    }

    pub type Device = Client<
        Option<Passkey>,
        VerifiedUser,
        RustCryptoBackend,
        public_suffix::PublicSuffixList,
        (),
    >;

    /// A device with no passkey yet.
    pub fn device() -> Device {
        Client::new(Authenticator::new(
            Aaguid::new_empty(),
            None,
            VerifiedUser,
            RustCryptoBackend,
        ))
    }

    /// The device's answer to creation `options` from `origin`.
    pub async fn create(device: &mut Device, options: &Value, origin: &str) -> Value {
        let request: CredentialCreationOptions =
            serde_json::from_value(json!({ "publicKey": options["publicKey"] })).unwrap();
        let created = device
            .register(
                &url::Url::parse(origin).unwrap(),
                request,
                DefaultClientData,
            )
            .await
            .unwrap();
        serde_json::to_value(created).unwrap()
    }

    /// The device's answer to request `options` from `origin`.
    pub async fn get(device: &mut Device, options: &Value, origin: &str) -> Value {
        let request: CredentialRequestOptions =
            serde_json::from_value(json!({ "publicKey": options["publicKey"] })).unwrap();
        let asserted = device
            .authenticate(
                &url::Url::parse(origin).unwrap(),
                request,
                DefaultClientData,
            )
            .await
            .unwrap();
        serde_json::to_value(asserted).unwrap()
    }
}

async fn a_discoverable_passkey_signs_in_without_an_address(backend: Backend) {
    let server = TestServer::start(backend).await;
    let access = ann(&server).await;
    let mut device = discoverable::device();
    let options: Value = server
        .post_auth(
            "/api/auth/passkeys/register/options",
            &access,
            &json!({ "password": PASSWORD }),
        )
        .await
        .json()
        .await
        .unwrap();
    let credential = discoverable::create(&mut device, &options, ORIGIN).await;
    let added = server
        .post_auth(
            "/api/auth/passkeys/register",
            &access,
            &json!({ "ceremony": options["ceremony"], "credential": credential }),
        )
        .await;
    assert_eq!(added.status(), 201);

    // No address: the options name no credential and ask for conditional mediation; the
    // device offers its passkey, whose user handle names Ann.
    let options = login_options(&server, "default", None).await;
    assert_eq!(options["publicKey"]["allowCredentials"], json!([]));
    let credential = discoverable::get(&mut device, &options, ORIGIN).await;
    let signed_in = finish(
        &server,
        &json!({ "ceremony": options["ceremony"], "credential": credential }),
    )
    .await;
    assert_eq!(signed_in.status(), 200);
    let tokens: Value = signed_in.json().await.unwrap();
    assert_eq!(tokens["user"]["email"], "ann@example.com");

    // Another tenant's discoverable ceremony: the device's passkey is for the same RP ID, but
    // the account it names is not of that tenant.
    server.create_tenant("other").await;
    let options = login_options(&server, "other", None).await;
    let credential = discoverable::get(&mut device, &options, ORIGIN).await;
    assert_problem(
        finish(
            &server,
            &json!({ "ceremony": options["ceremony"], "credential": credential }),
        )
        .await,
        401,
        "invalid_credentials",
    )
    .await;
}
both!(a_discoverable_passkey_signs_in_without_an_address);

/// `tessera user reset-mfa` (the operator's service it calls) removes passkeys with every
/// other factor.
async fn an_operators_reset_of_the_factors_removes_the_passkeys(backend: Backend) {
    let (server, _, mut key) = ann_with_a_passkey(backend).await;
    let tenant = tessera_core::model::TenantSlug::parse("default").unwrap();
    let ann = tessera_origin::services::UserKey::Email(
        tessera_core::model::Email::parse("ann@example.com").unwrap(),
    );
    server
        .state
        .services
        .accounts
        .reset_mfa(&tenant, &ann, &tessera_origin::services::Actor::Cli)
        .await
        .unwrap();
    server.clock.advance(Duration::from_secs(61));
    let options = login_options(&server, "default", Some("ann@example.com")).await;
    assert!(
        offers_none_of(&mut key, &options),
        "the options name no passkey of Ann's any more"
    );
    // And a password sign-in asks for no second factor.
    let tokens = server.login("default", "ann@example.com", PASSWORD).await;
    assert!(tokens["access_token"].is_string(), "{tokens}");
}
both!(an_operators_reset_of_the_factors_removes_the_passkeys);

/// The passkey routes are credential routes: per account as well as per IP, whichever address
/// a request comes from. Options and assertions both count against the account.
async fn passkey_sign_ins_are_limited_per_account(backend: Backend) {
    let (server, _, mut key) = ann_with_a_passkey(backend).await;
    server.clock.advance(Duration::from_secs(61));
    let body = json!({"tenant": "default", "email": "ann@example.com"});
    let mut options = Vec::new();
    for _ in 0..3 {
        options.push(login_options(&server, "default", Some("ann@example.com")).await);
    }
    // Two wrong answers (another origin) and a right one: five requests of Ann's this minute.
    for wrong in &options[..2] {
        let answer = assertion(&mut key, wrong, SIBLING);
        assert_problem(finish(&server, &answer).await, 401, "invalid_credentials").await;
    }
    // The sixth, from yet another address, is over Ann's budget.
    let sixth = server
        .post_from("/api/auth/passkeys/login/options", &body, &unique_ip())
        .await;
    assert_problem(sixth, 429, "rate_limited").await;
    let answer = assertion(&mut key, &options[2], ORIGIN);
    assert_problem(finish(&server, &answer).await, 429, "rate_limited").await;
    // A minute later she signs in.
    server.clock.advance(Duration::from_secs(61));
    let options = login_options(&server, "default", Some("ann@example.com")).await;
    let answer = assertion(&mut key, &options, ORIGIN);
    assert_eq!(finish(&server, &answer).await.status(), 200);
}
both!(passkey_sign_ins_are_limited_per_account);
