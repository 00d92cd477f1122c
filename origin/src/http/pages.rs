//! The hosted pages behind emailed links: confirming an address and choosing a new password.
//! They work without JavaScript, under a strict CSP (no script at all, the one stylesheet by
//! its hash, forms posting only to this origin), send no Referer (the token is in the URL),
//! and are never cached. A GET only shows a form: mail scanners prefetch links, so only the
//! form's POST uses the token.

use std::sync::LazyLock;

use axum::extract::rejection::FormRejection;
use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Form, Router};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use minijinja::{context, Environment};
use secrecy::SecretString;
use serde::Deserialize;

use super::account::RESET_DONE;
use crate::services::password_reset::RESET_PAGE;
use crate::services::registration::VERIFY_PAGE;
use crate::services::{Client, ServiceError};
use crate::state::AppState;
use crate::store::Tenant;

/// The pages' routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(VERIFY_PAGE, get(verify_form).post(verify_submit))
        .route(RESET_PAGE, get(reset_form).post(reset_submit))
}

const STYLE: &str = include_str!("../../templates/pages/style.css");

/// The OpenID sign-in pages' one script: the passkey button (password sign-in needs none).
pub(super) const PASSKEY_SCRIPT: &str = include_str!("../../templates/pages/oidc_passkey.js");

/// The permissions policy of the pages that run [`PASSKEY_SCRIPT`]: core's, but the page
/// itself may ask for a passkey.
static PASSKEY_PERMISSIONS: LazyLock<String> = LazyLock::new(|| {
    tessera_core::headers::SECURITY_HEADERS
        .iter()
        .find(|(name, _)| *name == "permissions-policy")
        .map(|(_, value)| {
            value.replace(
                "publickey-credentials-get=()",
                "publickey-credentials-get=(self)",
            )
        })
        .unwrap_or_default()
});

/// The CSP source of [`PASSKEY_SCRIPT`], by its hash.
static PASSKEY_SCRIPT_SOURCE: LazyLock<String> = LazyLock::new(|| {
    let hash = STANDARD.encode(tessera_core::secret::sha256(PASSKEY_SCRIPT.as_bytes()));
    format!("'sha256-{hash}'")
});

/// The pages' Content-Security-Policy: nothing but the inline stylesheet (by hash), and forms
/// that post to this origin only.
static CSP: LazyLock<String> = LazyLock::new(|| {
    let hash = STANDARD.encode(tessera_core::secret::sha256(STYLE.as_bytes()));
    format!(
        "default-src 'none'; style-src 'sha256-{hash}'; form-action 'self'; \
         frame-ancestors 'none'; base-uri 'none'"
    )
});

static PAGES: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    for (name, source) in [
        (
            "layout.html",
            include_str!("../../templates/pages/layout.html"),
        ),
        (
            "verify_email.html",
            include_str!("../../templates/pages/verify_email.html"),
        ),
        (
            "reset_password.html",
            include_str!("../../templates/pages/reset_password.html"),
        ),
        (
            "outcome.html",
            include_str!("../../templates/pages/outcome.html"),
        ),
        (
            "oidc_sign_in.html",
            include_str!("../../templates/pages/oidc_sign_in.html"),
        ),
        (
            "oidc_second_factor.html",
            include_str!("../../templates/pages/oidc_second_factor.html"),
        ),
        (
            "oidc_email_code.html",
            include_str!("../../templates/pages/oidc_email_code.html"),
        ),
        (
            "oidc_forgot_password.html",
            include_str!("../../templates/pages/oidc_forgot_password.html"),
        ),
    ] {
        // Checked by the pages' tests; a broken one renders the error page, never a panic.
        if let Err(error) = env.add_template(name, source) {
            tracing::error!(%error, page = name, "page template does not parse");
        }
    }
    env
});

/// A rendered page with the pages' headers.
fn page(status: StatusCode, name: &str, ctx: minijinja::Value) -> Response {
    page_posting_to(status, name, ctx, None)
}

/// A rendered page whose form's answer may redirect to `redirect_origin` (the sign-in page of
/// the OpenID provider: browsers hold the redirect after a POST to the CSP's `form-action`),
/// and which may run [`PASSKEY_SCRIPT`] (by its hash; it fetches from this origin only).
pub(super) fn page_posting_to(
    status: StatusCode,
    name: &str,
    ctx: minijinja::Value,
    redirect_origin: Option<&str>,
) -> Response {
    let ctx = context! { script => PASSKEY_SCRIPT, ..ctx };
    let ctx = context! { style => STYLE, ..ctx };
    let html = PAGES
        .get_template(name)
        .and_then(|t| t.render(ctx))
        .unwrap_or_else(|error| {
            tracing::error!(%error, page = name, "page failed to render");
            "<!doctype html><title>Error</title><p>Something went wrong.</p>".into()
        });
    let mut response = (status, Html(html)).into_response();
    let headers = response.headers_mut();
    let csp = match redirect_origin {
        Some(origin) => CSP
            .replace(
                "form-action 'self'",
                &format!("form-action 'self' {origin}"),
            )
            .replace(
                "default-src 'none';",
                &format!(
                    "default-src 'none'; script-src {}; connect-src 'self';",
                    *PASSKEY_SCRIPT_SOURCE
                ),
            ),
        None => CSP.clone(),
    };
    if let Ok(csp) = HeaderValue::from_str(&csp) {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    if redirect_origin.is_some() {
        if let Ok(policy) = HeaderValue::from_str(&PASSKEY_PERMISSIONS) {
            headers.insert("permissions-policy", policy);
        }
    }
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

pub(super) fn outcome(status: StatusCode, title: &str, message: &str, ok: bool) -> Response {
    outcome_for(None, status, title, message, ok)
}

/// An outcome page of `tenant`'s link: its name shown, and on success the way back to its app
/// (`--app-url`), when it has one.
fn outcome_for(
    tenant: Option<&Tenant>,
    status: StatusCode,
    title: &str,
    message: &str,
    ok: bool,
) -> Response {
    let app_url = tenant.filter(|_| ok).and_then(|t| t.app_url.clone());
    page(
        status,
        "outcome.html",
        context! {
            title,
            message,
            class => if ok { "done" } else { "error" },
            tenant_name => tenant.map(|t| t.name.clone()),
            app_url,
        },
    )
}

/// The tenant an emailed link's token belongs to, for its name and app on the pages.
async fn tenant_of_link(state: &AppState, token: &str) -> Option<Tenant> {
    let token =
        tessera_core::token::OpaqueToken::parse(tessera_core::token::TokenKind::EmailLink, token)
            .ok()?;
    state.tenants.get(token.tenant()).await.ok().flatten()
}

/// The page a rate-limited request for a hosted page gets: the wait, in words and in
/// `Retry-After`, not the API's problem+json.
#[must_use]
pub fn too_many(retry_after_secs: u64) -> Response {
    let message = format!(
        "Too many attempts from your network right now. Wait {retry_after_secs} seconds and try again."
    );
    let mut response = outcome(
        StatusCode::TOO_MANY_REQUESTS,
        "Please wait",
        &message,
        false,
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
    response
}

fn invalid_link() -> Response {
    outcome(
        StatusCode::BAD_REQUEST,
        "This link does not work",
        "It was used already, has expired, or was replaced by a newer one. Ask for a new one.",
        false,
    )
}

/// What a failed submission shows; `None` for failures the form itself can show.
fn failure(error: &ServiceError) -> Response {
    match error {
        ServiceError::InvalidLink => invalid_link(),
        ServiceError::RateLimited { .. } | ServiceError::Busy => outcome(
            StatusCode::TOO_MANY_REQUESTS,
            "Please wait",
            "Too many attempts right now. Wait a minute and try again.",
            false,
        ),
        other => {
            tracing::error!(error = %other, "page submission failed");
            outcome(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "Please try again in a moment.",
                false,
            )
        }
    }
}

#[derive(Deserialize)]
struct TokenQuery {
    #[serde(default)]
    token: String,
}

/// A token worth showing a form for: the shape of an emailed link's token.
fn well_formed(token: &str) -> bool {
    tessera_core::token::OpaqueToken::parse(tessera_core::token::TokenKind::EmailLink, token)
        .is_ok()
}

async fn verify_form(State(state): State<AppState>, Query(query): Query<TokenQuery>) -> Response {
    if !well_formed(&query.token) {
        return invalid_link();
    }
    let tenant = tenant_of_link(&state, &query.token).await;
    page(
        StatusCode::OK,
        "verify_email.html",
        context! { token => query.token, tenant_name => tenant.map(|t| t.name) },
    )
}

async fn verify_submit(
    State(state): State<AppState>,
    client: Client,
    form: Result<Form<TokenQuery>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return invalid_link();
    };
    match state
        .services
        .registration
        .verify_email(&form.token, &client)
        .await
    {
        Ok((tenant, _)) => outcome_for(
            Some(&tenant),
            StatusCode::OK,
            "Email confirmed",
            "Thank you: your email address is confirmed.",
            true,
        ),
        Err(error) => failure(&error),
    }
}

async fn reset_form(State(state): State<AppState>, Query(query): Query<TokenQuery>) -> Response {
    if !well_formed(&query.token) {
        return invalid_link();
    }
    reset_page(&state, StatusCode::OK, &query.token, None).await
}

async fn reset_page(
    state: &AppState,
    status: StatusCode,
    token: &str,
    error: Option<&str>,
) -> Response {
    let tenant = tenant_of_link(state, token).await;
    page(
        status,
        "reset_password.html",
        context! {
            token,
            error,
            min_length => state.config.password_min_length,
            tenant_name => tenant.map(|t| t.name),
        },
    )
}

#[derive(Deserialize)]
struct ResetForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_confirm: String,
}

async fn reset_submit(
    State(state): State<AppState>,
    client: Client,
    form: Result<Form<ResetForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return invalid_link();
    };
    if form.password != form.password_confirm {
        return reset_page(
            &state,
            StatusCode::BAD_REQUEST,
            &form.token,
            Some("The two passwords differ."),
        )
        .await;
    }
    let password = SecretString::from(form.password);
    let tenant = tenant_of_link(&state, &form.token).await;
    match state
        .services
        .password_reset
        .reset(&form.token, password, &client)
        .await
    {
        Ok(()) => outcome_for(
            tenant.as_ref(),
            StatusCode::OK,
            "Password changed",
            RESET_DONE,
            true,
        ),
        Err(ServiceError::InvalidInput { detail, .. }) => {
            reset_page(&state, StatusCode::BAD_REQUEST, &form.token, Some(&detail)).await
        }
        Err(error) => failure(&error),
    }
}
