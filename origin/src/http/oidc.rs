//! Each tenant's OpenID provider over HTTP (`/oidc/{tenant}/*`): discovery, keys, the hosted
//! sign-in page at the authorization endpoint, and the token, userinfo, revocation,
//! introspection and logout endpoints. Errors are OAuth's (`error`, `error_description`), sent
//! back to the client's redirect URI where the spec says so, and shown as a page where a
//! redirect would go to an address the client never registered.

use axum::extract::rejection::FormRejection;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::Engine as _;
use minijinja::context;
use secrecy::SecretString;
use serde::Deserialize;
use tessera_core::oidc::Discovery;

use super::pages::{outcome, page_posting_to, too_many};
use super::problem::ApiError;
use crate::services::mfa::Answer;
use crate::services::oidc::{
    Authorization, AuthorizeParams, EndSession, NotRedirectable, Redirected, TokenForm,
};
use crate::services::oidc_clients::ClientAuth;
use crate::services::sign_in::Attempt;
use crate::services::{Client, Issued, ServiceError, SignedIn};
use crate::state::AppState;
use webauthn_rs::prelude::PublicKeyCredential;

/// The provider's routes (rows of core's policy table).
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/oidc/{tenant}/.well-known/openid-configuration",
            get(discovery),
        )
        .route("/oidc/{tenant}/jwks", get(provider_jwks))
        .route("/oidc/{tenant}/authorize", get(authorize).post(sign_in))
        .route(
            "/oidc/{tenant}/authorize/second-factor",
            post(second_factor),
        )
        .route("/oidc/{tenant}/authorize/passkey", post(passkey_sign_in))
        .route(
            "/oidc/{tenant}/authorize/email-code",
            get(email_code_form).post(email_code_request),
        )
        .route(
            "/oidc/{tenant}/authorize/email-code/verify",
            post(email_code_verify),
        )
        .route(
            "/oidc/{tenant}/authorize/forgot-password",
            get(forgot_password_form).post(forgot_password_request),
        )
        .route("/oidc/{tenant}/token", post(token))
        .route("/oidc/{tenant}/userinfo", get(userinfo).post(userinfo_post))
        .route("/oidc/{tenant}/revoke", post(revoke))
        .route("/oidc/{tenant}/introspect", post(introspect))
        .route(
            "/oidc/{tenant}/end-session",
            get(end_session).post(end_session_form),
        )
}

/// How long relying parties (and the edge) may cache discovery and keys: a new key signs at
/// once, but a client refetches the keys when it meets an unknown `kid`.
const CACHE_SECS: u32 = 300;

fn cached(body: impl IntoResponse) -> Response {
    let mut response = body.into_response();
    if let Ok(value) = HeaderValue::from_str(&format!("public, max-age={CACHE_SECS}")) {
        response.headers_mut().insert(header::CACHE_CONTROL, value);
    }
    response
}

/// An OAuth error document (RFC 6749 §5.2), never cached.
fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let body = serde_json::json!({ "error": error, "error_description": description });
    no_store((status, Json(body)).into_response())
}

fn no_store(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// A service error as OAuth words it at the token, revocation and introspection endpoints.
fn oauth_failure(error: ServiceError, basic: bool) -> Response {
    match error {
        ServiceError::InvalidClient => {
            let mut response = oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "The client is unknown or did not prove itself.",
            );
            if basic {
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"tessera\""),
                );
            }
            response
        }
        ServiceError::InvalidGrant(detail) => {
            oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", detail)
        }
        ServiceError::InvalidInput { code, detail } => {
            oauth_error(StatusCode::BAD_REQUEST, code, &detail)
        }
        // A limit, a busy server or a failure: answered as every Tessera API answers them
        // (problem+json, with `Retry-After` where a retry helps), at the edge too.
        other => ApiError::from(other).into_response(),
    }
}

/// An OAuth 2.0 error (RFC 6749 §5.2).
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct OAuthErrorBody {
    /// `invalid_request`, `invalid_client`, `invalid_grant`, `unauthorized_client`,
    /// `unsupported_grant_type`, `invalid_token`, `not_found`…
    pub error: String,
    /// For people.
    pub error_description: String,
}

/// The issuer's discovery document (OpenID Connect Discovery 1.0).
#[utoipa::path(get, path = "/oidc/{tenant}/.well-known/openid-configuration", tag = "oidc",
    params(("tenant" = String, Path, description = "The tenant (its slug): the issuer is `{public URL}/oidc/{tenant}`", example = "default")),
    responses(
        (status = 200, description = "The discovery document", body = tessera_core::oidc::Discovery),
        (status = 404, description = "No such tenant", body = OAuthErrorBody, content_type = "application/json"),
    ))]
pub async fn discovery(State(state): State<AppState>, Path(tenant): Path<String>) -> Response {
    match state.services.provider.tenant(&tenant).await {
        Ok(tenant) => cached(Json(Discovery::of(
            &state.services.provider.issuer(&tenant.slug),
        ))),
        Err(_) => oauth_error(StatusCode::NOT_FOUND, "not_found", "No such tenant."),
    }
}

/// The issuer's keys: the access tokens' Ed25519 keys and the ID tokens' RS256 keys.
#[utoipa::path(get, path = "/oidc/{tenant}/jwks", tag = "oidc",
    params(("tenant" = String, Path, description = "The tenant (its slug): the issuer is `{public URL}/oidc/{tenant}`", example = "default")),
    responses(
        (status = 200, description = "The JWK set", body = tessera_core::jwt::Jwks),
        (status = 404, description = "No such tenant", body = OAuthErrorBody, content_type = "application/json"),
    ))]
pub async fn provider_jwks(State(state): State<AppState>, Path(tenant): Path<String>) -> Response {
    match state.services.provider.tenant(&tenant).await {
        Ok(_) => cached(Json(state.keys.published().await.to_jwks())),
        Err(_) => oauth_error(StatusCode::NOT_FOUND, "not_found", "No such tenant."),
    }
}

// ----- The hosted sign-in page -----

/// The name of the browser-session cookie of a tenant's provider: `__Host-` so that only this
/// host, over a secure channel, sets it, for every path.
fn session_cookie_name(tenant: &str) -> String {
    format!("__Host-tessera-oidc-{tenant}")
}

/// The double-submit CSRF cookie of the sign-in forms.
const CSRF_COOKIE: &str = "__Host-tessera-csrf";

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, value)| value)
}

fn set_cookie(response: &mut Response, name: &str, value: &str, max_age: i64) {
    let text = format!("{name}={value}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age={max_age}");
    if let Ok(value) = HeaderValue::from_str(&text) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

/// The CSRF value of this browser: its cookie's, or a new one.
fn csrf_of(headers: &HeaderMap) -> (String, bool) {
    match cookie(headers, CSRF_COOKIE).filter(|v| v.len() == 43) {
        Some(value) => (value.to_owned(), false),
        None => (
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(crate::clock::random::<32>()),
            true,
        ),
    }
}

/// Whether a form's CSRF field is this browser's cookie: another site can make a browser post
/// the form but can neither read nor set the `__Host-` cookie.
fn csrf_ok(headers: &HeaderMap, field: &str) -> bool {
    cookie(headers, CSRF_COOKIE).is_some_and(|c| {
        !field.is_empty() && tessera_core::secret::ct_eq(c.as_bytes(), field.as_bytes())
    })
}

fn not_redirectable(refusal: &NotRedirectable) -> Response {
    match refusal {
        NotRedirectable::Refused(message) => outcome(
            StatusCode::BAD_REQUEST,
            "This sign-in link does not work",
            message,
            false,
        ),
        NotRedirectable::Unavailable => outcome(
            StatusCode::SERVICE_UNAVAILABLE,
            "Sign-in is unavailable",
            "Please try again in a moment.",
            false,
        ),
    }
}

fn redirect_to(location: &str) -> Response {
    Redirect::to(location).into_response()
}

fn redirect_error(state: &AppState, auth: &Authorization, refusal: &Redirected) -> Response {
    redirect_to(&state.services.provider.redirect(
        auth,
        &[
            ("error", refusal.error),
            ("error_description", refusal.description),
        ],
    ))
}

/// What a form on the page needs to post back to the same request.
struct Form_<'a> {
    tenant: &'a str,
    query: &'a str,
    csrf: String,
    new_csrf: bool,
    /// Whether passkey ceremonies can run on this page (the tenant's relying party is the
    /// provider's own origin).
    passkeys: bool,
}

/// What the pages of a request need: its form's parameters and whether passkeys work here.
fn form_for<'a>(
    state: &AppState,
    auth: &Authorization,
    tenant: &'a str,
    query: &'a str,
    headers: &HeaderMap,
) -> Form_<'a> {
    let (csrf, new_csrf) = csrf_of(headers);
    let origin = tessera_core::oidc::origin_of(&state.config.public_url).unwrap_or_default();
    Form_ {
        tenant,
        query,
        csrf,
        new_csrf,
        passkeys: state.services.passkeys.available_at(&auth.tenant, &origin),
    }
}

impl Form_<'_> {
    fn action(&self, step: &str) -> String {
        format!("/oidc/{}/authorize{step}?{}", self.tenant, self.query)
    }

    fn render(
        self,
        auth: &Authorization,
        status: StatusCode,
        name: &str,
        ctx: minijinja::Value,
    ) -> Response {
        let origin = tessera_core::oidc::origin_of(&auth.redirect_uri);
        let ctx = context! {
            tenant_name => auth.tenant.name.clone(),
            client_name => auth.client.name.clone(),
            csrf => self.csrf.clone(),
            ..ctx
        };
        let mut response = page_posting_to(status, name, ctx, origin.as_deref());
        if self.new_csrf {
            set_cookie(&mut response, CSRF_COOKIE, &self.csrf, 3600);
        }
        response
    }

    fn sign_in_page(
        self,
        auth: &Authorization,
        status: StatusCode,
        email: &str,
        error: Option<&str>,
    ) -> Response {
        let action = self.action("");
        let passkey_action = self.passkeys.then(|| self.action("/passkey"));
        let passkey_body = serde_json::json!({ "tenant": self.tenant }).to_string();
        let email_code_link = self.action("/email-code");
        let forgot_link = self.action("/forgot-password");
        self.render(
            auth,
            status,
            "oidc_sign_in.html",
            context! {
                action, email, error, passkey_action, passkey_body, email_code_link, forgot_link
            },
        )
    }

    /// The emailed-code sign-in: the address form, or (`sent`) the code form.
    fn email_code_page(
        self,
        auth: &Authorization,
        status: StatusCode,
        email: &str,
        sent: bool,
        error: Option<&str>,
    ) -> Response {
        let request_action = self.action("/email-code");
        let verify_action = self.action("/email-code/verify");
        let back = self.action("");
        self.render(
            auth,
            status,
            "oidc_email_code.html",
            context! { request_action, verify_action, back, email, sent, error },
        )
    }

    /// The forgotten-password form, or (`sent`) what happens next.
    fn forgot_password_page(
        self,
        auth: &Authorization,
        status: StatusCode,
        email: &str,
        sent: bool,
        error: Option<&str>,
    ) -> Response {
        let action = self.action("/forgot-password");
        let back = self.action("");
        self.render(
            auth,
            status,
            "oidc_forgot_password.html",
            context! { action, back, email, sent, error },
        )
    }

    fn second_factor_page(
        self,
        auth: &Authorization,
        status: StatusCode,
        mfa_token: &str,
        methods: &[&str],
        error: Option<&str>,
    ) -> Response {
        let action = self.action("/second-factor");
        let passkey = self.passkeys && methods.contains(&crate::services::mfa::WEBAUTHN_METHOD);
        let passkey_body = serde_json::json!({ "mfa_token": mfa_token }).to_string();
        self.render(
            auth,
            status,
            "oidc_second_factor.html",
            context! {
                action,
                mfa_token,
                error,
                passkey,
                passkey_body,
                methods => methods.join(" "),
                email_code => methods.contains(&"email"),
                totp => methods.contains(&"totp"),
            },
        )
    }
}

async fn authorize(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    RawQuery(query): RawQuery,
    Query(params): Query<AuthorizeParams>,
    headers: HeaderMap,
) -> Response {
    let provider = &state.services.provider;
    let auth = match provider.check_client(&tenant, params).await {
        Ok(auth) => auth,
        Err(refusal) => return not_redirectable(&refusal),
    };
    let prompt = match provider.check_request(&auth) {
        Ok(prompt) => prompt,
        Err(refusal) => return redirect_error(&state, &auth, &refusal),
    };
    let max_age = auth.params.max_age.as_deref().and_then(|m| m.parse().ok());
    if !prompt.login {
        let cookie_value = cookie(&headers, &session_cookie_name(&tenant));
        match provider
            .browser_session(&auth.tenant.slug, cookie_value, max_age)
            .await
        {
            Ok(Some(browser)) => {
                return match provider.issue_code(&auth, &browser).await {
                    Ok(location) => redirect_to(&location),
                    Err(error) => server_error_redirect(&state, &auth, &error),
                }
            }
            Ok(None) => {}
            Err(error) => return server_error_redirect(&state, &auth, &error),
        }
    }
    if prompt.none {
        return redirect_error(
            &state,
            &auth,
            &Redirected {
                error: "login_required",
                description: "The user is not signed in.",
            },
        );
    }
    let query = query.unwrap_or_default();
    let email = auth.params.login_hint.clone().unwrap_or_default();
    form_for(&state, &auth, &tenant, &query, &headers).sign_in_page(
        &auth,
        StatusCode::OK,
        &email,
        None,
    )
}

fn server_error_redirect(state: &AppState, auth: &Authorization, error: &ServiceError) -> Response {
    tracing::error!(%error, "authorization failed");
    redirect_error(
        state,
        auth,
        &Redirected {
            error: "server_error",
            description: "Something went wrong; try again.",
        },
    )
}

#[derive(Deserialize)]
struct SignInForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

#[derive(Deserialize)]
struct SecondFactorForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    mfa_token: String,
    #[serde(default)]
    methods: String,
    #[serde(default)]
    code: String,
    /// A passkey's answer (`credential.toJSON()`), instead of a code.
    #[serde(default)]
    credential: String,
}

#[derive(Deserialize)]
struct PasskeyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    ceremony: String,
    #[serde(default)]
    credential: String,
}

/// The checked request of a form's POST (its parameters ride in the form's action URL).
async fn posted_request(
    state: &AppState,
    tenant: &str,
    params: AuthorizeParams,
) -> Result<Authorization, Response> {
    let provider = &state.services.provider;
    let auth = provider
        .check_client(tenant, params)
        .await
        .map_err(|refusal| not_redirectable(&refusal))?;
    provider
        .check_request(&auth)
        .map_err(|refusal| redirect_error(state, &auth, &refusal))?;
    Ok(auth)
}

const FORM_EXPIRED: &str = "The form had expired. Please try again.";

#[allow(clippy::too_many_arguments)]
async fn sign_in(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    RawQuery(query): RawQuery,
    Query(params): Query<AuthorizeParams>,
    headers: HeaderMap,
    client: Client,
    form: Result<Form<SignInForm>, FormRejection>,
) -> Response {
    let auth = match posted_request(&state, &tenant, params).await {
        Ok(auth) => auth,
        Err(response) => return response,
    };
    // The session a sign-in here opens is the provider's.
    let client = Client {
        api: tessera_core::policy::Api::OpenId,
        ..client
    };
    let query = query.unwrap_or_default();
    let page = form_for(&state, &auth, &tenant, &query, &headers);
    let form = match form {
        Ok(Form(form)) if csrf_ok(&headers, &form.csrf) => form,
        Ok(Form(form)) => {
            return page.sign_in_page(
                &auth,
                StatusCode::FORBIDDEN,
                &form.email,
                Some(FORM_EXPIRED),
            )
        }
        Err(_) => return page.sign_in_page(&auth, StatusCode::BAD_REQUEST, "", Some(FORM_EXPIRED)),
    };
    let attempt = Attempt {
        named_tenant: Some(&auth.tenant.slug),
        tenant: auth.tenant.slug.as_str(),
        email: &form.email,
        password: SecretString::from(form.password),
    };
    match state.services.sign_in.login(attempt, &client).await {
        Ok(SignedIn::Tokens(issued)) => signed_in(&state, &auth, &tenant, &issued).await,
        Ok(SignedIn::SecondFactor(challenge)) => page.second_factor_page(
            &auth,
            StatusCode::OK,
            &challenge.mfa_token,
            &challenge.methods,
            None,
        ),
        Ok(SignedIn::EnrolmentRequired { .. }) => outcome(
            StatusCode::FORBIDDEN,
            "Set up a second factor first",
            "Your organisation requires a second factor. Set up an authenticator app in your account, then sign in again.",
            false,
        ),
        Err(error) => {
            let message = match &error {
                ServiceError::InvalidCredentials => "Wrong email or password.",
                ServiceError::EmailNotVerified => {
                    "Confirm your email address with the link we sent, then sign in."
                }
                ServiceError::SecondFactorRequired => {
                    "This account needs its second factor, which this page cannot take yet."
                }
                ServiceError::RateLimited { decision, .. } => {
                    return too_many(decision.retry_after_secs().unwrap_or(1).max(1))
                }
                ServiceError::Busy => return too_many(1),
                other => {
                    tracing::error!(error = %other, "hosted sign-in failed");
                    "Something went wrong; try again."
                }
            };
            let status = match error {
                ServiceError::InvalidCredentials => StatusCode::UNAUTHORIZED,
                ServiceError::EmailNotVerified | ServiceError::SecondFactorRequired => {
                    StatusCode::FORBIDDEN
                }
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            page.sign_in_page(&auth, status, &form.email, Some(message))
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn second_factor(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    RawQuery(query): RawQuery,
    Query(params): Query<AuthorizeParams>,
    headers: HeaderMap,
    client: Client,
    form: Result<Form<SecondFactorForm>, FormRejection>,
) -> Response {
    let auth = match posted_request(&state, &tenant, params).await {
        Ok(auth) => auth,
        Err(response) => return response,
    };
    // The session a sign-in here opens is the provider's.
    let client = Client {
        api: tessera_core::policy::Api::OpenId,
        ..client
    };
    let query = query.unwrap_or_default();
    let page = form_for(&state, &auth, &tenant, &query, &headers);
    let form = match form {
        Ok(Form(form)) if csrf_ok(&headers, &form.csrf) => form,
        _ => return page.sign_in_page(&auth, StatusCode::FORBIDDEN, "", Some(FORM_EXPIRED)),
    };
    let credential = serde_json::from_str::<PublicKeyCredential>(&form.credential).ok();
    let answer = match &credential {
        Some(credential) => Answer::Passkey(credential),
        None => Answer::Code(form.code.trim()),
    };
    match state
        .services
        .mfa
        .verify(&form.mfa_token, answer, &client)
        .await
    {
        Ok(issued) if issued.tenant == auth.tenant.slug => {
            signed_in(&state, &auth, &tenant, &issued).await
        }
        Ok(_) | Err(ServiceError::InvalidMfaToken) => page.sign_in_page(
            &auth,
            StatusCode::UNAUTHORIZED,
            "",
            Some("That sign-in step has expired or had too many wrong codes. Sign in again."),
        ),
        Err(ServiceError::InvalidCode) => {
            // The challenge's methods ride in the form, for the page's wording only.
            let methods: Vec<&str> = form.methods.split(' ').collect();
            page.second_factor_page(
                &auth,
                StatusCode::UNAUTHORIZED,
                &form.mfa_token,
                &methods,
                Some("That code is not correct."),
            )
        }
        Err(ServiceError::RateLimited { decision, .. }) => {
            too_many(decision.retry_after_secs().unwrap_or(1).max(1))
        }
        Err(error) => server_error_redirect(&state, &auth, &error),
    }
}

/// A sign-in with a passkey alone (a discoverable credential, no address typed).
#[allow(clippy::too_many_arguments)]
async fn passkey_sign_in(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    RawQuery(query): RawQuery,
    Query(params): Query<AuthorizeParams>,
    headers: HeaderMap,
    client: Client,
    form: Result<Form<PasskeyForm>, FormRejection>,
) -> Response {
    let auth = match posted_request(&state, &tenant, params).await {
        Ok(auth) => auth,
        Err(response) => return response,
    };
    // The session a sign-in here opens is the provider's.
    let client = Client {
        api: tessera_core::policy::Api::OpenId,
        ..client
    };
    let query = query.unwrap_or_default();
    let page = form_for(&state, &auth, &tenant, &query, &headers);
    let form = match form {
        Ok(Form(form)) if csrf_ok(&headers, &form.csrf) => form,
        _ => return page.sign_in_page(&auth, StatusCode::FORBIDDEN, "", Some(FORM_EXPIRED)),
    };
    let Ok(credential) = serde_json::from_str::<PublicKeyCredential>(&form.credential) else {
        return page.sign_in_page(&auth, StatusCode::BAD_REQUEST, "", Some(PASSKEY_REFUSED));
    };
    match state
        .services
        .passkeys
        .login(&form.ceremony, &credential, &client)
        .await
    {
        Ok(issued) if issued.tenant == auth.tenant.slug => {
            signed_in(&state, &auth, &tenant, &issued).await
        }
        Err(ServiceError::RateLimited { decision, .. }) => {
            too_many(decision.retry_after_secs().unwrap_or(1).max(1))
        }
        Ok(_) | Err(_) => {
            page.sign_in_page(&auth, StatusCode::UNAUTHORIZED, "", Some(PASSKEY_REFUSED))
        }
    }
}

#[derive(Deserialize)]
struct EmailForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    code: String,
}

/// Which of the page's side flows a request is for.
#[derive(Clone, Copy)]
enum SideFlow {
    EmailCode,
    ForgotPassword,
}

impl Form_<'_> {
    fn side_page(
        self,
        flow: SideFlow,
        auth: &Authorization,
        status: StatusCode,
        email: &str,
        sent: bool,
        error: Option<&str>,
    ) -> Response {
        match flow {
            SideFlow::EmailCode => self.email_code_page(auth, status, email, sent, error),
            SideFlow::ForgotPassword => self.forgot_password_page(auth, status, email, sent, error),
        }
    }
}

async fn side_form(
    state: &AppState,
    flow: SideFlow,
    tenant: &str,
    query: Option<String>,
    params: AuthorizeParams,
    headers: &HeaderMap,
) -> Response {
    let auth = match posted_request(state, tenant, params).await {
        Ok(auth) => auth,
        Err(response) => return response,
    };
    let query = query.unwrap_or_default();
    let email = auth.params.login_hint.clone().unwrap_or_default();
    form_for(state, &auth, tenant, &query, headers).side_page(
        flow,
        &auth,
        StatusCode::OK,
        &email,
        false,
        None,
    )
}

/// The address form of the emailed-code sign-in.
async fn email_code_form(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    RawQuery(query): RawQuery,
    Query(params): Query<AuthorizeParams>,
    headers: HeaderMap,
) -> Response {
    side_form(
        &state,
        SideFlow::EmailCode,
        &tenant,
        query,
        params,
        &headers,
    )
    .await
}

/// The forgotten-password form.
async fn forgot_password_form(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    RawQuery(query): RawQuery,
    Query(params): Query<AuthorizeParams>,
    headers: HeaderMap,
) -> Response {
    side_form(
        &state,
        SideFlow::ForgotPassword,
        &tenant,
        query,
        params,
        &headers,
    )
    .await
}

/// Sends a sign-in code or a reset link, as the canonical API does (the same answer whether
/// or not the address has an account).
async fn side_request(
    state: &AppState,
    flow: SideFlow,
    tenant: &str,
    query: Option<String>,
    params: AuthorizeParams,
    headers: &HeaderMap,
    form: Result<Form<EmailForm>, FormRejection>,
) -> Response {
    let auth = match posted_request(state, tenant, params).await {
        Ok(auth) => auth,
        Err(response) => return response,
    };
    let query = query.unwrap_or_default();
    let page = form_for(state, &auth, tenant, &query, headers);
    let form = match form {
        Ok(Form(form)) if csrf_ok(headers, &form.csrf) => form,
        _ => {
            return page.side_page(
                flow,
                &auth,
                StatusCode::FORBIDDEN,
                "",
                false,
                Some(FORM_EXPIRED),
            )
        }
    };
    let slug = &auth.tenant.slug;
    let sent = match flow {
        SideFlow::EmailCode => {
            state
                .services
                .email_codes
                .request(Some(slug), slug.as_str(), &form.email)
                .await
        }
        SideFlow::ForgotPassword => {
            state
                .services
                .password_reset
                .forgot(Some(slug), slug.as_str(), &form.email)
                .await
        }
    };
    match sent {
        Ok(()) => page.side_page(flow, &auth, StatusCode::OK, &form.email, true, None),
        Err(ServiceError::InvalidInput { detail, .. }) => page.side_page(
            flow,
            &auth,
            StatusCode::BAD_REQUEST,
            &form.email,
            false,
            Some(&detail),
        ),
        Err(ServiceError::RateLimited { decision, .. }) => too_many(decision_wait(decision)),
        Err(ServiceError::TooSoon { retry_after_secs }) => too_many(retry_after_secs.max(1)),
        Err(error) => server_error_redirect(state, &auth, &error),
    }
}

async fn email_code_request(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    RawQuery(query): RawQuery,
    Query(params): Query<AuthorizeParams>,
    headers: HeaderMap,
    form: Result<Form<EmailForm>, FormRejection>,
) -> Response {
    side_request(
        &state,
        SideFlow::EmailCode,
        &tenant,
        query,
        params,
        &headers,
        form,
    )
    .await
}

async fn forgot_password_request(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    RawQuery(query): RawQuery,
    Query(params): Query<AuthorizeParams>,
    headers: HeaderMap,
    form: Result<Form<EmailForm>, FormRejection>,
) -> Response {
    side_request(
        &state,
        SideFlow::ForgotPassword,
        &tenant,
        query,
        params,
        &headers,
        form,
    )
    .await
}

/// Signs in with the emailed code.
#[allow(clippy::too_many_arguments)]
async fn email_code_verify(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    RawQuery(query): RawQuery,
    Query(params): Query<AuthorizeParams>,
    headers: HeaderMap,
    client: Client,
    form: Result<Form<EmailForm>, FormRejection>,
) -> Response {
    let auth = match posted_request(&state, &tenant, params).await {
        Ok(auth) => auth,
        Err(response) => return response,
    };
    let client = Client {
        api: tessera_core::policy::Api::OpenId,
        ..client
    };
    let query = query.unwrap_or_default();
    let page = form_for(&state, &auth, &tenant, &query, &headers);
    let form = match form {
        Ok(Form(form)) if csrf_ok(&headers, &form.csrf) => form,
        _ => {
            return page.email_code_page(
                &auth,
                StatusCode::FORBIDDEN,
                "",
                false,
                Some(FORM_EXPIRED),
            )
        }
    };
    let slug = &auth.tenant.slug;
    match state
        .services
        .email_codes
        .verify(
            Some(slug),
            slug.as_str(),
            &form.email,
            form.code.trim(),
            &client,
        )
        .await
    {
        Ok(issued) => signed_in(&state, &auth, &tenant, &issued).await,
        Err(ServiceError::RateLimited { decision, .. }) => too_many(decision_wait(decision)),
        Err(ServiceError::InvalidCode | ServiceError::InvalidCredentials) => page.email_code_page(
            &auth,
            StatusCode::UNAUTHORIZED,
            &form.email,
            true,
            Some("That code is not correct, or has expired. Ask for a new one."),
        ),
        Err(ServiceError::EmailNotVerified) => page.email_code_page(
            &auth,
            StatusCode::FORBIDDEN,
            &form.email,
            false,
            Some("Confirm your email address with the link we sent, then sign in."),
        ),
        Err(error) => server_error_redirect(&state, &auth, &error),
    }
}

/// Seconds until a limited request may be retried, at least one.
fn decision_wait(decision: tessera_core::ratelimit::Decision) -> u64 {
    decision.retry_after_secs().unwrap_or(1).max(1)
}

const PASSKEY_REFUSED: &str = "The passkey did not sign you in. Try again, or use your password.";

/// A finished sign-in: the browser session's cookie, and the code on its way to the client.
async fn signed_in(
    state: &AppState,
    auth: &Authorization,
    tenant: &str,
    issued: &Issued,
) -> Response {
    let provider = &state.services.provider;
    let cookie_value = match provider.start_browser_session(issued).await {
        Ok(value) => value,
        Err(error) => return server_error_redirect(state, auth, &error),
    };
    let browser = crate::services::oidc::BrowserSession {
        session: issued.session.clone(),
        user: issued.user.clone(),
    };
    let mut response = match provider.issue_code(auth, &browser).await {
        Ok(location) => redirect_to(&location),
        Err(error) => return server_error_redirect(state, auth, &error),
    };
    set_cookie(
        &mut response,
        &session_cookie_name(tenant),
        &cookie_value,
        tessera_core::oidc::BROWSER_SESSION_SECS,
    );
    response
}

// ----- The back channel -----

/// The client's credentials: HTTP Basic (RFC 6749 §2.3.1, form-encoded parts) or the form's
/// `client_id` and `client_secret`. Answers whether Basic was used.
fn client_auth(
    headers: &HeaderMap,
    client_id: Option<&str>,
    secret: Option<&str>,
) -> (ClientAuth, bool) {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b64| {
            base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .ok()
        })
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| {
            let (id, secret) = text.split_once(':')?;
            let decode = |s: &str| {
                url::form_urlencoded::parse(format!("x={s}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
            };
            Some((decode(id)?, decode(secret)?))
        });
    match basic {
        Some((client_id, secret)) => (
            ClientAuth {
                client_id,
                secret: Some(secret),
            },
            true,
        ),
        None => (
            ClientAuth {
                client_id: client_id.unwrap_or_default().to_owned(),
                secret: secret.filter(|s| !s.is_empty()).map(str::to_owned),
            },
            false,
        ),
    }
}

/// The token endpoint: a code (with PKCE), a refresh token, or the client's own credentials
/// for tokens. The client authenticates by HTTP Basic, by the form, or (public clients) by
/// its id and the PKCE verifier.
#[utoipa::path(post, path = "/oidc/{tenant}/token", tag = "oidc",
    params(("tenant" = String, Path, description = "The tenant (its slug): the issuer is `{public URL}/oidc/{tenant}`", example = "default")),
    request_body(content = TokenForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Tokens", body = crate::services::oidc::TokenResponse),
        (status = 400, description = "`invalid_request`, `invalid_grant`, `unsupported_grant_type`, `unauthorized_client`", body = OAuthErrorBody, content_type = "application/json"),
        (status = 401, description = "`invalid_client`", body = OAuthErrorBody, content_type = "application/json"),
    ))]
pub async fn token(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    client: Client,
    form: Result<Form<TokenForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "The body must be an application/x-www-form-urlencoded form.",
        );
    };
    let (auth, basic) = client_auth(
        &headers,
        form.client_id.as_deref(),
        form.client_secret.as_deref(),
    );
    match state
        .services
        .provider
        .token(&tenant, &auth, &form, &client)
        .await
    {
        Ok(tokens) => no_store(Json(tokens).into_response()),
        Err(error) => oauth_failure(error, basic),
    }
}

/// A token a client presents to revoke or introspect, with the client's credentials when they
/// are not in HTTP Basic.
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(default)]
pub struct TokenOfClient {
    token: String,
    client_id: Option<String>,
    client_secret: Option<String>,
}

/// Revocation (RFC 7009): ends the session of a refresh or access token of this client; any
/// other token is answered the same.
#[utoipa::path(post, path = "/oidc/{tenant}/revoke", tag = "oidc",
    params(("tenant" = String, Path, description = "The tenant (its slug): the issuer is `{public URL}/oidc/{tenant}`", example = "default")),
    request_body(content = TokenOfClient, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Revoked, or nothing to revoke"),
        (status = 400, description = "`invalid_request`", body = OAuthErrorBody, content_type = "application/json"),
        (status = 401, description = "`invalid_client`", body = OAuthErrorBody, content_type = "application/json"),
    ))]
pub async fn revoke(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    client: Client,
    form: Result<Form<TokenOfClient>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "token is missing.",
        );
    };
    let (auth, basic) = client_auth(
        &headers,
        form.client_id.as_deref(),
        form.client_secret.as_deref(),
    );
    match state
        .services
        .provider
        .revoke(&tenant, &auth, &form.token, &client)
        .await
    {
        Ok(()) => no_store(StatusCode::OK.into_response()),
        Err(error) => oauth_failure(error, basic),
    }
}

/// Introspection (RFC 7662), for confidential clients.
#[utoipa::path(post, path = "/oidc/{tenant}/introspect", tag = "oidc",
    params(("tenant" = String, Path, description = "The tenant (its slug): the issuer is `{public URL}/oidc/{tenant}`", example = "default")),
    request_body(content = TokenOfClient, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Whether the token is active, and what it carries", body = crate::services::oidc::Introspection),
        (status = 400, description = "`invalid_request`", body = OAuthErrorBody, content_type = "application/json"),
        (status = 401, description = "`invalid_client`", body = OAuthErrorBody, content_type = "application/json"),
    ))]
pub async fn introspect(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    form: Result<Form<TokenOfClient>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "token is missing.",
        );
    };
    let (auth, basic) = client_auth(
        &headers,
        form.client_id.as_deref(),
        form.client_secret.as_deref(),
    );
    match state
        .services
        .provider
        .introspect(&tenant, &auth, &form.token)
        .await
    {
        Ok(answer) => no_store(Json(answer).into_response()),
        Err(error) => oauth_failure(error, basic),
    }
}

/// Userinfo: `sub`, and by the grant's scopes `email`, `email_verified`, `name`.
#[utoipa::path(get, path = "/oidc/{tenant}/userinfo", tag = "oidc", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "The tenant (its slug): the issuer is `{public URL}/oidc/{tenant}`", example = "default")),
    responses(
        (status = 200, description = "The user's claims", body = Object),
        (status = 401, description = "`invalid_request` (no token) or `invalid_token`; see WWW-Authenticate", body = OAuthErrorBody, content_type = "application/json"),
    ))]
pub async fn userinfo(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Response {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(tessera_core::api::bearer_token);
    let refused = |error: &str| {
        let mut response = oauth_error(
            StatusCode::UNAUTHORIZED,
            error,
            "A valid access token is required.",
        );
        let challenge = format!("Bearer error=\"{error}\"");
        if let Ok(value) = HeaderValue::from_str(&challenge) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, value);
        }
        response
    };
    let Some(bearer) = bearer else {
        return refused("invalid_request");
    };
    match state.services.provider.userinfo(&tenant, bearer).await {
        Ok(claims) => no_store(Json(claims).into_response()),
        Err(
            ServiceError::InvalidToken(_)
            | ServiceError::SessionEnded
            | ServiceError::RestrictedToken
            | ServiceError::TenantMismatch,
        ) => refused("invalid_token"),
        Err(error) => oauth_failure(error, false),
    }
}

/// Userinfo by POST (Core §5.3.1): the same answer.
#[utoipa::path(post, path = "/oidc/{tenant}/userinfo", tag = "oidc", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "The tenant (its slug)", example = "default")),
    responses(
        (status = 200, description = "The user's claims", body = Object),
        (status = 401, description = "`invalid_request` (no token) or `invalid_token`; see WWW-Authenticate", body = OAuthErrorBody, content_type = "application/json"),
    ))]
pub async fn userinfo_post(
    state: State<AppState>,
    tenant: Path<String>,
    headers: HeaderMap,
) -> Response {
    userinfo(state, tenant, headers).await
}

async fn end_session(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    Query(request): Query<EndSession>,
    headers: HeaderMap,
    client: Client,
) -> Response {
    logout(&state, &tenant, &request, &headers, &client).await
}

async fn end_session_form(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    client: Client,
    form: Result<Form<EndSession>, FormRejection>,
) -> Response {
    let request = form.map(|Form(f)| f).unwrap_or_default();
    logout(&state, &tenant, &request, &headers, &client).await
}

async fn logout(
    state: &AppState,
    tenant: &str,
    request: &EndSession,
    headers: &HeaderMap,
    client: &Client,
) -> Response {
    let cookie_name = session_cookie_name(tenant);
    let cookie_value = cookie(headers, &cookie_name);
    let mut response = match state
        .services
        .provider
        .end_session(tenant, request, cookie_value, client)
        .await
    {
        Ok(Some(location)) => redirect_to(&location),
        Ok(None) => outcome(
            StatusCode::OK,
            "Signed out",
            "You are signed out. You can close this window.",
            true,
        ),
        Err(ServiceError::TenantNotFound) => outcome(
            StatusCode::NOT_FOUND,
            "Not found",
            "This sign-out address names no organisation.",
            false,
        ),
        Err(error) => {
            tracing::error!(%error, "sign-out failed");
            outcome(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "Please try again in a moment.",
                false,
            )
        }
    };
    set_cookie(&mut response, &cookie_name, "", 0);
    response
}
