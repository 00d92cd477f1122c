//! The canonical API's passkeys: adding one, signing in with one, the owner's list.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tessera_core::api::Problem;
use utoipa::ToSchema;
use webauthn_rs::prelude::{PublicKeyCredential, RegisterPublicKeyCredential};

use super::auth::TokenResponse;
use super::extract::{ApiJson, Auth, EnrolAuth, OptionalJson};
use super::mfa::FactorChange;
use super::problem::ApiError;
use super::tenant::{named_by_request, of_body};
use crate::clock::rfc3339;
use crate::services::passkeys::{Options, PasskeyInfo};
use crate::services::Client;
use crate::state::AppState;

/// The passkeys' routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/auth/passkeys", get(list_passkeys))
        .route(
            "/api/auth/passkeys/register/options",
            post(passkey_register_options),
        )
        .route("/api/auth/passkeys/register", post(passkey_register))
        .route(
            "/api/auth/passkeys/login/options",
            post(passkey_login_options),
        )
        .route("/api/auth/passkeys/login", post(passkey_login))
        .route(
            "/api/auth/passkeys/{id}",
            patch(rename_passkey).delete(remove_passkey),
        )
}

/// A ceremony's options: pass `publicKey` to `navigator.credentials.create()` or `.get()`
/// (binary fields are base64url: `PublicKeyCredential.parseCreationOptionsFromJSON` and
/// `parseRequestOptionsFromJSON` take them as they are), and send `ceremony` back with the
/// authenticator's answer within 5 minutes.
#[derive(Debug, Serialize, ToSchema)]
pub struct CeremonyOptions {
    /// The ceremony (single use, 5 minutes).
    pub ceremony: String,
    /// WebAuthn's options (`PublicKeyCredentialCreationOptions` or `…RequestOptions`).
    #[serde(rename = "publicKey")]
    #[schema(value_type = Object)]
    pub public_key: serde_json::Value,
}

impl From<Options> for CeremonyOptions {
    fn from(options: Options) -> Self {
        Self {
            ceremony: options.ceremony,
            public_key: options.public_key,
        }
    }
}

/// A passkey as its owner sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PasskeyBody {
    /// Id.
    pub id: String,
    /// The owner's name for it.
    pub name: String,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339; `null` before its first sign-in.
    pub last_used_at: Option<String>,
    /// Whether it is synced to the owner's other devices.
    pub backed_up: bool,
}

impl From<PasskeyInfo> for PasskeyBody {
    fn from(info: PasskeyInfo) -> Self {
        Self {
            id: info.id,
            name: info.name,
            created_at: rfc3339(info.created_at),
            last_used_at: info.last_used_at.map(rfc3339),
            backed_up: info.backed_up,
        }
    }
}

// The binary fields below are unpadded base64url with canonical last characters (what
// webauthn-rs decodes): whole quads, then 2 or 3 characters whose unused bits are zero.

/// What `navigator.credentials.create()` answers, as `credential.toJSON()` gives it
/// (binary fields base64url). Documentation of the shape webauthn-rs reads.
#[derive(ToSchema)]
#[allow(dead_code)]
#[schema(as = PasskeyCreationCredential)]
pub struct CreationCredentialShape {
    /// The credential id, base64url.
    #[schema(
        min_length = 2,
        pattern = "^(?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-][AQgw]|[A-Za-z0-9_-]{2}[AEIMQUYcgkosw048])?$"
    )]
    id: String,
    /// The same id.
    #[schema(
        rename = "rawId",
        min_length = 2,
        pattern = "^(?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-][AQgw]|[A-Za-z0-9_-]{2}[AEIMQUYcgkosw048])?$"
    )]
    raw_id: String,
    /// The authenticator's attestation.
    response: CreationResponseShape,
    /// `public-key`.
    #[schema(rename = "type", pattern = "^public-key$")]
    type_: String,
}

/// An `AuthenticatorAttestationResponse`.
#[derive(ToSchema)]
#[allow(dead_code)]
#[schema(as = PasskeyCreationResponse)]
pub struct CreationResponseShape {
    /// CBOR, base64url.
    #[schema(
        rename = "attestationObject",
        min_length = 2,
        pattern = "^(?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-][AQgw]|[A-Za-z0-9_-]{2}[AEIMQUYcgkosw048])?$"
    )]
    attestation_object: String,
    /// The client data, base64url.
    #[schema(
        rename = "clientDataJSON",
        min_length = 2,
        pattern = "^(?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-][AQgw]|[A-Za-z0-9_-]{2}[AEIMQUYcgkosw048])?$"
    )]
    client_data_json: String,
}

/// What `navigator.credentials.get()` answers, as `credential.toJSON()` gives it (binary
/// fields base64url). Documentation of the shape webauthn-rs reads.
#[derive(ToSchema)]
#[allow(dead_code)]
#[schema(as = PasskeyAssertionCredential)]
pub struct AssertionCredentialShape {
    /// The credential id, base64url.
    #[schema(
        min_length = 2,
        pattern = "^(?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-][AQgw]|[A-Za-z0-9_-]{2}[AEIMQUYcgkosw048])?$"
    )]
    id: String,
    /// The same id.
    #[schema(
        rename = "rawId",
        min_length = 2,
        pattern = "^(?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-][AQgw]|[A-Za-z0-9_-]{2}[AEIMQUYcgkosw048])?$"
    )]
    raw_id: String,
    /// The authenticator's assertion.
    response: AssertionResponseShape,
    /// `public-key`.
    #[schema(rename = "type", pattern = "^public-key$")]
    type_: String,
}

/// An `AuthenticatorAssertionResponse`.
#[derive(ToSchema)]
#[allow(dead_code)]
#[schema(as = PasskeyAssertionResponse)]
pub struct AssertionResponseShape {
    /// Base64url.
    #[schema(
        rename = "authenticatorData",
        min_length = 2,
        pattern = "^(?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-][AQgw]|[A-Za-z0-9_-]{2}[AEIMQUYcgkosw048])?$"
    )]
    authenticator_data: String,
    /// The client data, base64url.
    #[schema(
        rename = "clientDataJSON",
        min_length = 2,
        pattern = "^(?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-][AQgw]|[A-Za-z0-9_-]{2}[AEIMQUYcgkosw048])?$"
    )]
    client_data_json: String,
    /// Base64url.
    #[schema(
        min_length = 2,
        pattern = "^(?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-][AQgw]|[A-Za-z0-9_-]{2}[AEIMQUYcgkosw048])?$"
    )]
    signature: String,
    /// The account's handle, base64url (discoverable credentials).
    #[schema(
        rename = "userHandle",
        pattern = "^(?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-][AQgw]|[A-Za-z0-9_-]{2}[AEIMQUYcgkosw048])?$"
    )]
    user_handle: Option<String>,
}

/// The authenticator's answer to `navigator.credentials.create()`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RegisterPasskeyRequest {
    /// The `ceremony` of the options.
    pub ceremony: String,
    /// The `PublicKeyCredential` as JSON (`credential.toJSON()`).
    #[schema(value_type = CreationCredentialShape)]
    pub credential: RegisterPublicKeyCredential,
    /// A name for it, e.g. "Work laptop" (default "Passkey").
    #[serde(default)]
    #[schema(
        max_length = 100,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    pub name: Option<String>,
}

/// Where a passkey sign-in starts.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PasskeyLoginOptionsRequest {
    /// Tenant slug; left out, the tenant the request names (`X-Tenant`, subdomain), else the
    /// default tenant.
    #[serde(default)]
    pub tenant: Option<String>,
    /// The account's address, for username-first sign-in; left out, a discoverable one (the
    /// authenticator offers its passkeys: conditional UI).
    #[serde(default)]
    #[schema(format = Email)]
    pub email: Option<String>,
}

/// The authenticator's answer to `navigator.credentials.get()`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PasskeyLoginRequest {
    /// The `ceremony` of the options.
    pub ceremony: String,
    /// The `PublicKeyCredential` as JSON (`credential.toJSON()`).
    #[schema(value_type = AssertionCredentialShape)]
    pub credential: PublicKeyCredential,
}

/// A passkey's new name.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RenamePasskeyRequest {
    /// 1 to 100 printable characters.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    pub name: String,
}

/// The caller's passkeys, oldest first.
#[utoipa::path(get, path = "/api/auth/passkeys", tag = "passkeys", security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's passkeys", body = [PasskeyBody]),
    ))]
pub async fn list_passkeys(
    State(state): State<AppState>,
    Auth(auth): Auth,
) -> Result<Json<Vec<PasskeyBody>>, ApiError> {
    let passkeys = state.services.passkeys.list(&auth).await?;
    Ok(Json(passkeys.into_iter().map(PasskeyBody::from).collect()))
}

/// Start adding a passkey. With an ordinary access token the body carries the current
/// `password`; the enrol-only token of a tenant that requires a second factor goes without.
#[utoipa::path(post, path = "/api/auth/passkeys/register/options", tag = "passkeys",
    security(("bearer" = [])), request_body = Option<FactorChange>,
    responses(
        (status = 200, description = "Creation options (resident key preferred, user verification required)", body = CeremonyOptions),
        (status = 400, description = "Passkeys need a domain (`passkeys_unavailable`)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Wrong password (`wrong_password`) or none sent (`password_required`)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn passkey_register_options(
    State(state): State<AppState>,
    client: Client,
    EnrolAuth(auth): EnrolAuth,
    OptionalJson(body): OptionalJson<FactorChange>,
) -> Result<Json<CeremonyOptions>, ApiError> {
    let options = state
        .services
        .passkeys
        .register_options(&auth, body.password, &client)
        .await?;
    Ok(Json(options.into()))
}

/// Finish adding a passkey with the authenticator's answer. The owner is emailed and their
/// other sessions end.
#[utoipa::path(post, path = "/api/auth/passkeys/register", tag = "passkeys",
    security(("bearer" = [])), request_body = RegisterPasskeyRequest,
    responses(
        (status = 201, description = "Added", body = PasskeyBody),
        (status = 400, description = "Unknown, finished or expired ceremony (`invalid_ceremony`), an answer that does not verify (`invalid_passkey`), a bad name (`invalid_name`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "This authenticator's passkey is registered already (`passkey_exists`)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn passkey_register(
    State(state): State<AppState>,
    client: Client,
    EnrolAuth(auth): EnrolAuth,
    ApiJson(body): ApiJson<RegisterPasskeyRequest>,
) -> Result<(StatusCode, Json<PasskeyBody>), ApiError> {
    let added = state
        .services
        .passkeys
        .register(
            &auth,
            &body.ceremony,
            &body.credential,
            body.name.as_deref(),
            &client,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(added.into())))
}

/// Start a passkey sign-in: with `email`, for that account (an address without passkeys gets
/// options of the same shape); without, discoverable.
#[utoipa::path(post, path = "/api/auth/passkeys/login/options", tag = "passkeys",
    request_body = PasskeyLoginOptionsRequest,
    responses(
        (status = 200, description = "Request options (user verification required)", body = CeremonyOptions),
        (status = 400, description = "Passkeys need a domain (`passkeys_unavailable`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such tenant (`tenant_not_found`)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn passkey_login_options(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<PasskeyLoginOptionsRequest>,
) -> Result<Json<CeremonyOptions>, ApiError> {
    let named = named_by_request(&headers, &state.config)?;
    let tenant = of_body(body.tenant.as_deref(), named.as_ref(), &state.config);
    let options = state
        .services
        .passkeys
        .login_options(&tenant, named.as_ref(), body.email.as_deref())
        .await?;
    Ok(Json(options.into()))
}

/// Finish a passkey sign-in: tokens as a password sign-in gives them, `amr: ["webauthn"]`,
/// no second step.
#[utoipa::path(post, path = "/api/auth/passkeys/login", tag = "passkeys",
    request_body = PasskeyLoginRequest,
    responses(
        (status = 200, description = "Signed in", body = TokenResponse),
        (status = 401, description = "Unknown, finished or expired ceremony, or an answer that does not verify (`invalid_credentials`)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The address is not confirmed and the tenant requires it (`email_not_verified`)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn passkey_login(
    State(state): State<AppState>,
    client: Client,
    ApiJson(body): ApiJson<PasskeyLoginRequest>,
) -> Result<Json<TokenResponse>, ApiError> {
    let issued = state
        .services
        .passkeys
        .login(&body.ceremony, &body.credential, &client)
        .await?;
    Ok(Json(issued.into()))
}

/// Rename one of the caller's passkeys.
#[utoipa::path(patch, path = "/api/auth/passkeys/{id}", tag = "passkeys",
    security(("bearer" = [])), request_body = RenamePasskeyRequest,
    params(("id" = String, Path, description = "The passkey's id")),
    responses(
        (status = 200, description = "Renamed", body = PasskeyBody),
        (status = 400, description = "A bad name (`invalid_name`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "The caller has no passkey with this id", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn rename_passkey(
    State(state): State<AppState>,
    client: Client,
    Auth(auth): Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<RenamePasskeyRequest>,
) -> Result<Json<PasskeyBody>, ApiError> {
    let renamed = state
        .services
        .passkeys
        .rename(&auth, &id, &body.name, &client)
        .await?;
    Ok(Json(renamed.into()))
}

/// Remove one of the caller's passkeys, confirmed by the current password. The owner is
/// emailed and their other sessions end.
#[utoipa::path(delete, path = "/api/auth/passkeys/{id}", tag = "passkeys",
    security(("bearer" = [])), request_body = FactorChange,
    params(("id" = String, Path, description = "The passkey's id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 403, description = "Wrong password (`wrong_password`) or none sent (`password_required`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "The caller has no passkey with this id", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn remove_passkey(
    State(state): State<AppState>,
    client: Client,
    Auth(auth): Auth,
    Path(id): Path<String>,
    OptionalJson(body): OptionalJson<FactorChange>,
) -> Result<StatusCode, ApiError> {
    state
        .services
        .passkeys
        .remove(&auth, &id, body.password, &client)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
