//! A tenant's users, for its admins and services (`/api/auth/admin/users…`: an admin's
//! access token, or a service token with `users:read` / `users:write`): pages and search,
//! creation (with a password or an invitation), a user's profile, disabling, signing out,
//! removing second factors, importing with password hashes and erasing; and a user's erasure
//! of their own account. Every change calls the same service as the `tessera user` command.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use tessera_core::api::Problem;
use tessera_core::model::Email;
use utoipa::{IntoParams, ToSchema};

use super::extract::{ApiJson, ApiQuery, Auth, TenantAdmin};
use super::problem::ApiError;
use crate::clock::rfc3339;
use crate::imported_hash::FirebaseParams;
use crate::services::account::NewAccount;
use crate::services::user_admin::{AdminView, UserChanges};
use crate::services::user_transfer::{ImportSummary, UserLine};
use crate::services::{Client, ServiceError, UserKey};
use crate::state::AppState;
use crate::store::User;

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/auth/admin/users", get(list_users).post(create_user))
        .route("/api/auth/admin/users/import", post(import_users))
        .route(
            "/api/auth/admin/users/{id}",
            get(get_user).patch(update_user).delete(delete_user),
        )
        .route("/api/auth/admin/users/{id}/disable", post(disable_user))
        .route("/api/auth/admin/users/{id}/enable", post(enable_user))
        .route("/api/auth/admin/users/{id}/sign-out", post(sign_out_user))
        .route("/api/auth/admin/users/{id}/reset-mfa", post(reset_user_mfa))
        .route("/api/auth/me", delete(delete_me))
}

/// A user, as a tenant's admins see one.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminUser {
    /// User id.
    pub id: String,
    /// Email.
    #[schema(format = Email)]
    pub email: String,
    /// Display name.
    pub name: String,
    /// Role: `user` or `admin`.
    pub role: String,
    /// Whether sign-in is refused.
    pub disabled: bool,
    /// Whether the address is confirmed.
    pub email_verified: bool,
    /// Whether the account has a password (an invited user has none until they choose one).
    pub has_password: bool,
    /// Whether sign-in asks for an emailed code after the password.
    pub mfa_email: bool,
    /// Account creation (RFC 3339).
    pub created_at: String,
    /// A new address an admin gave the account, until its owner confirms it from the link
    /// emailed to it (then it replaces `email`).
    #[schema(format = Email)]
    pub pending_email: Option<String>,
}

impl AdminUser {
    /// The view of `user`, with the address waiting for confirmation if known.
    #[must_use]
    pub fn of(user: User, pending_email: Option<&Email>) -> Self {
        Self {
            id: user.id.to_string(),
            email: user.email.to_string(),
            disabled: user.disabled,
            email_verified: user.email_verified(),
            has_password: user.password_hash.is_some(),
            mfa_email: user.mfa_email,
            created_at: rfc3339(user.created_at),
            name: user.name,
            role: user.role,
            pending_email: pending_email.map(ToString::to_string),
        }
    }
}

impl From<AdminView> for AdminUser {
    fn from(view: AdminView) -> Self {
        Self::of(view.user, view.pending_email.as_ref())
    }
}

/// A page of users.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserList {
    /// The users, in address order.
    pub users: Vec<AdminUser>,
    /// Pass as `cursor` for the next page; absent on the last.
    pub next_cursor: Option<String>,
}

/// Which users.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UserQuery {
    /// Only users whose address or name starts with this (any case).
    #[param(max_length = 254)]
    pub query: Option<String>,
    /// The `next_cursor` of the previous page.
    #[param(max_length = 512)]
    pub cursor: Option<String>,
    /// Users per page, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
}

/// List a tenant's users, a page at a time, in address order; `query` finds them by address or
/// name prefix, any case (admins, or `users:read`).
#[utoipa::path(get, path = "/api/auth/admin/users", tag = "users", security(("bearer" = [])),
    params(UserQuery),
    responses(
        (status = 200, description = "A page of users", body = UserList),
        (status = 400, description = "A malformed cursor (`invalid_cursor`), a limit outside 1–200 (`invalid_limit`), an unknown parameter", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin, or a service token without `users:read` (`forbidden`)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_users(
    State(state): State<AppState>,
    caller: TenantAdmin,
    ApiQuery(query): ApiQuery<UserQuery>,
) -> Result<Json<UserList>, ApiError> {
    let page = state
        .services
        .accounts
        .page(
            &caller.tenant,
            query.query.as_deref(),
            query.cursor.as_deref(),
            query.limit,
        )
        .await?;
    Ok(Json(UserList {
        users: page
            .users
            .into_iter()
            .map(|u| AdminUser::of(u, None))
            .collect(),
        next_cursor: page.next_cursor,
    }))
}

/// A user's role: `admin` may act on the other accounts of the tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// An ordinary account.
    User,
    /// An admin of the tenant.
    Admin,
}

impl Role {
    /// The stored name (one of the account service's `ROLES`).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Admin => "admin",
        }
    }
}

/// A new user. `Debug` never prints the password.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    /// Email.
    #[schema(format = Email)]
    pub email: String,
    /// Display name (may be empty; at most 100 characters).
    #[serde(default)]
    #[schema(max_length = 100, pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*$")]
    pub name: String,
    /// `user` (default; `admin` for a tenant's first user made by the operator) or `admin`.
    #[serde(default)]
    pub role: Option<Role>,
    /// A password, checked against the tenant's policy. Leave it out to invite the user, or
    /// for an account that signs in by emailed code.
    #[schema(value_type = Option<String>, min_length = 12, max_length = 1024)]
    #[serde(default)]
    pub password: Option<SecretString>,
    /// Email the user a link to choose their password (valid 7 days, single use, on the
    /// hosted page). Not with `password`.
    #[serde(default)]
    pub invite: bool,
}

impl std::fmt::Debug for CreateUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateUser")
            .field("email", &self.email)
            .field("role", &self.role)
            .field("invite", &self.invite)
            .finish_non_exhaustive()
    }
}

impl CreateUser {
    /// The account to create, its address parsed.
    pub fn into_account(self) -> Result<NewAccount, ApiError> {
        let email = Email::parse(&self.email).map_err(|e| {
            ApiError::from(ServiceError::InvalidInput {
                code: "invalid_email",
                detail: e.to_string(),
            })
        })?;
        Ok(NewAccount {
            email,
            name: self.name,
            role: self.role.unwrap_or(Role::User).as_str().to_owned(),
            password: self.password,
            invite: self.invite,
            mfa_email: false,
        })
    }
}

/// Create a user of the caller's tenant, with a password or an invitation (admins, or
/// `users:write`).
#[utoipa::path(post, path = "/api/auth/admin/users", tag = "users", security(("bearer" = [])),
    request_body = CreateUser,
    responses(
        (status = 201, description = "Created", body = AdminUser),
        (status = 400, description = "Malformed body, unknown field, bad address or role, weak password, a password and an invitation at once (`password_and_invite`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin, or a service token without `users:write` (`forbidden`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The address has an account (`email_taken`)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_user(
    State(state): State<AppState>,
    caller: TenantAdmin,
    ApiJson(body): ApiJson<CreateUser>,
) -> Result<(StatusCode, Json<AdminUser>), ApiError> {
    let user = state
        .services
        .accounts
        .create(&caller.tenant, body.into_account()?, &caller.actor)
        .await?;
    Ok((StatusCode::CREATED, Json(AdminUser::of(user, None))))
}

/// One user of the caller's tenant (admins, or `users:read`).
#[utoipa::path(get, path = "/api/auth/admin/users/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = String, Path, description = "The user's id")),
    responses(
        (status = 200, description = "The user", body = AdminUser),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin, or a service token without `users:read` (`forbidden`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user in the tenant (`not_found`)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_user(
    State(state): State<AppState>,
    caller: TenantAdmin,
    Path(id): Path<String>,
) -> Result<Json<AdminUser>, ApiError> {
    let view = state
        .services
        .accounts
        .view(&caller.tenant, &UserKey::id(&id)?)
        .await?;
    Ok(Json(view.into()))
}

/// What to change of a user; what is left out stays.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    /// A new display name (at most 100 characters).
    #[schema(max_length = 100, pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*$")]
    pub name: Option<String>,
    /// A new role: the user's sessions end (their tokens carry it).
    pub role: Option<Role>,
    /// A new address: emailed a confirmation link, it replaces the old one once its owner
    /// confirms it (until then it shows as `pending_email`); then every session ends.
    #[schema(format = Email)]
    pub email: Option<String>,
}

/// Change a user's name, role or address (admins, or `users:write`).
#[utoipa::path(patch, path = "/api/auth/admin/users/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = String, Path, description = "The user's id")),
    request_body = UpdateUser,
    responses(
        (status = 200, description = "The user as it is now", body = AdminUser),
        (status = 400, description = "Malformed body, unknown field, bad name, role or address", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin, or a service token without `users:write` (`forbidden`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user in the tenant (`not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The new address has an account (`email_taken`)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn update_user(
    State(state): State<AppState>,
    caller: TenantAdmin,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateUser>,
) -> Result<Json<AdminUser>, ApiError> {
    let changes = UserChanges {
        name: body.name,
        role: body.role.map(|r| r.as_str().to_owned()),
        email: body.email,
    };
    let view = state
        .services
        .accounts
        .update(&caller.tenant, &UserKey::id(&id)?, changes, &caller.actor)
        .await?;
    Ok(Json(view.into()))
}

/// How many sessions a change ended.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionsEnded {
    /// Sessions ended (each refused at the edge too).
    pub sessions_ended: usize,
}

/// Disable a user: sign-in is refused, and every session ends at once, at the edge too
/// (admins, or `users:write`).
#[utoipa::path(post, path = "/api/auth/admin/users/{id}/disable", tag = "users", security(("bearer" = [])),
    params(("id" = String, Path, description = "The user's id")),
    responses(
        (status = 200, description = "Disabled", body = SessionsEnded),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin, or a service token without `users:write` (`forbidden`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user in the tenant (`not_found`)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn disable_user(
    State(state): State<AppState>,
    caller: TenantAdmin,
    Path(id): Path<String>,
) -> Result<Json<SessionsEnded>, ApiError> {
    let ended = state
        .services
        .accounts
        .set_disabled(&caller.tenant, &UserKey::id(&id)?, true, &caller.actor)
        .await?;
    Ok(Json(SessionsEnded {
        sessions_ended: ended,
    }))
}

/// Enable a disabled user (admins, or `users:write`).
#[utoipa::path(post, path = "/api/auth/admin/users/{id}/enable", tag = "users", security(("bearer" = [])),
    params(("id" = String, Path, description = "The user's id")),
    responses(
        (status = 200, description = "Enabled", body = SessionsEnded),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin, or a service token without `users:write` (`forbidden`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user in the tenant (`not_found`)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn enable_user(
    State(state): State<AppState>,
    caller: TenantAdmin,
    Path(id): Path<String>,
) -> Result<Json<SessionsEnded>, ApiError> {
    let ended = state
        .services
        .accounts
        .set_disabled(&caller.tenant, &UserKey::id(&id)?, false, &caller.actor)
        .await?;
    Ok(Json(SessionsEnded {
        sessions_ended: ended,
    }))
}

/// End every session of a user, at the edge too; they may sign in again at once (admins, or
/// `users:write`).
#[utoipa::path(post, path = "/api/auth/admin/users/{id}/sign-out", tag = "users", security(("bearer" = [])),
    params(("id" = String, Path, description = "The user's id")),
    responses(
        (status = 200, description = "Signed out", body = SessionsEnded),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin, or a service token without `users:write` (`forbidden`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user in the tenant (`not_found`)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn sign_out_user(
    State(state): State<AppState>,
    caller: TenantAdmin,
    Path(id): Path<String>,
) -> Result<Json<SessionsEnded>, ApiError> {
    let ended = state
        .services
        .accounts
        .end_sessions(&caller.tenant, &UserKey::id(&id)?, &caller.actor)
        .await?;
    Ok(Json(SessionsEnded {
        sessions_ended: ended,
    }))
}

/// Remove every second factor of a user (authenticator app, recovery codes, emailed code,
/// passkeys): every session ends and the user is told by email (admins, or `users:write`).
#[utoipa::path(post, path = "/api/auth/admin/users/{id}/reset-mfa", tag = "users", security(("bearer" = [])),
    params(("id" = String, Path, description = "The user's id")),
    responses(
        (status = 200, description = "Second factors removed", body = SessionsEnded),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin, or a service token without `users:write` (`forbidden`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user in the tenant (`not_found`)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn reset_user_mfa(
    State(state): State<AppState>,
    caller: TenantAdmin,
    Path(id): Path<String>,
) -> Result<Json<SessionsEnded>, ApiError> {
    let ended = state
        .services
        .accounts
        .reset_mfa(&caller.tenant, &UserKey::id(&id)?, &caller.actor)
        .await?;
    Ok(Json(SessionsEnded {
        sessions_ended: ended,
    }))
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
#[utoipa::path(post, path = "/api/auth/admin/users/import", tag = "users", security(("bearer" = [])),
    request_body = ImportRequest,
    responses(
        (status = 200, description = "Imported; every user skipped or refused is listed with why", body = ImportSummary),
        (status = 400, description = "Malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin, or a service token without `users:write` (`forbidden`)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is larger than 8 MiB", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn import_users(
    State(state): State<AppState>,
    caller: TenantAdmin,
    ApiJson(body): ApiJson<ImportRequest>,
) -> Result<Json<ImportSummary>, ApiError> {
    let lines: Vec<std::io::Result<String>> =
        body.users.iter().map(|user| Ok(user.to_string())).collect();
    let summary = state
        .services
        .user_transfer
        .import(
            &caller.tenant,
            lines,
            body.firebase_params.as_ref(),
            &caller.actor,
            |_| {},
        )
        .await?;
    Ok(Json(summary))
}

/// Erase a user of the caller's tenant: every session ends, and the account, its factors,
/// tokens and pending email go. The address may register again (admins, or `users:write`).
#[utoipa::path(delete, path = "/api/auth/admin/users/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = String, Path, description = "The user's id")),
    responses(
        (status = 204, description = "Erased"),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin, or a service token without `users:write` (`forbidden`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user in the tenant (`not_found`)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn delete_user(
    State(state): State<AppState>,
    caller: TenantAdmin,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state
        .services
        .accounts
        .delete(&caller.tenant, &UserKey::id(&id)?, &caller.actor)
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
