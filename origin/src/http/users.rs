//! A tenant's users moved in and out: an admin's import of accounts with their password hashes,
//! and erasure, by the user or by an admin.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, post};
use axum::{Json, Router};
use secrecy::SecretString;
use serde::Deserialize;
use tessera_core::api::Problem;
use utoipa::ToSchema;

use super::extract::{ApiJson, Auth};
use super::problem::ApiError;
use crate::imported_hash::FirebaseParams;
use crate::services::user_transfer::{ImportSummary, Importer, UserLine};
use crate::services::Client;
use crate::state::AppState;

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/auth/admin/users/import", post(import_users))
        .route("/api/auth/admin/users/{id}", delete(delete_user))
        .route("/api/auth/me", delete(delete_me))
}

/// An import: the users, each as one line of `tessera user import`'s file. `Debug` prints how
/// many, never their hashes.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportRequest {
    /// The users, in order; each refused or skipped one is reported by its position (from 1).
    #[schema(value_type = Vec<UserLine>)]
    pub users: Vec<serde_json::Value>,
    /// The Firebase project's password hash parameters, for users with Firebase's
    /// `password_hash` and `password_salt`.
    #[serde(default)]
    pub firebase_params: Option<FirebaseParams>,
}

impl std::fmt::Debug for ImportRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportRequest")
            .field("users", &self.users.len())
            .finish_non_exhaustive()
    }
}

/// Import users with their password hashes (admins only). Idempotent: an address already in
/// the tenant is skipped and reported. All-or-nothing per batch of 1,000 users; the body may
/// be up to 8 MiB.
#[utoipa::path(post, path = "/api/auth/admin/users/import", tag = "account", security(("bearer" = [])),
    request_body = ImportRequest,
    responses(
        (status = 200, description = "Imported; every user skipped or refused is listed with why", body = ImportSummary),
        (status = 400, description = "Malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The caller is not an admin (`forbidden`)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is larger than 8 MiB", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn import_users(
    State(state): State<AppState>,
    client: Client,
    Auth(auth): Auth,
    ApiJson(body): ApiJson<ImportRequest>,
) -> Result<Json<ImportSummary>, ApiError> {
    let lines: Vec<std::io::Result<String>> =
        body.users.iter().map(|user| Ok(user.to_string())).collect();
    let summary = state
        .services
        .user_transfer
        .import(
            &auth.tenant,
            lines,
            body.firebase_params.as_ref(),
            Importer::Admin(&auth, &client),
            |_| {},
        )
        .await?;
    Ok(Json(summary))
}

/// Erase a user of the caller's tenant (admins only): every session ends, and the account, its
/// factors, tokens and pending email go. The address may register again.
#[utoipa::path(delete, path = "/api/auth/admin/users/{id}", tag = "account", security(("bearer" = [])),
    params(("id" = String, Path, description = "The user's id")),
    responses(
        (status = 204, description = "Erased"),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The caller is not an admin (`forbidden`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user in the tenant (`not_found`)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn delete_user(
    State(state): State<AppState>,
    client: Client,
    Auth(auth): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state
        .services
        .accounts
        .delete_as_admin(&auth, &id, &client)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's password, which erasing their account needs. `Debug` never prints it.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct DeleteAccount {
    /// The current password; an account without one (emailed codes, passkeys) goes without.
    #[schema(value_type = Option<String>)]
    #[serde(default)]
    pub password: Option<SecretString>,
}

/// Erase the caller's own account, confirmed by their password: every session ends, and the
/// account, its factors, tokens and pending email go. The address may register again.
#[utoipa::path(delete, path = "/api/auth/me", tag = "account", security(("bearer" = [])),
    request_body = DeleteAccount,
    responses(
        (status = 204, description = "Erased"),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Wrong password (`wrong_password`) or none sent (`password_required`)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn delete_me(
    State(state): State<AppState>,
    client: Client,
    Auth(auth): Auth,
    ApiJson(body): ApiJson<DeleteAccount>,
) -> Result<StatusCode, ApiError> {
    state
        .services
        .accounts
        .delete_own(&auth, body.password, &client)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
